//! vurs: a user-mode hypervisor for partial virtualization (ptrace + seccomp).
//!
//! Data flow of one trapped call (docs/architecture.md):
//! stop (`tracer`) -> decode (`syscall`) -> resolve (`resolve`, `mounts`) ->
//! dispatch (`dispatch`) -> module (`module`) -> apply (`apply`) -> resume (`tracer`).
pub mod apply;
pub mod arch;
pub mod cli;
pub mod control;
pub mod dispatch;
pub mod errno;
pub mod exec;
pub mod fdtable;
pub mod filter;
pub mod launch;
pub mod memory;
pub mod module;
pub mod mounts;
pub mod notify;
pub mod procfs;
pub mod ptrace;
pub mod resolve;
pub mod seccomp;
pub mod serve;
pub mod session;
pub mod summary;
pub mod syscall;
pub mod tracelog;
pub mod tracer;
pub mod vdso;
pub mod workers;
