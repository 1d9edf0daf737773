//! vurs: a user-mode hypervisor for partial virtualization (ptrace + seccomp).
//!
//! The top-level modules, from the engines down (docs/architecture.md, "Layout"); each
//! depends only on modules below it (tests/layout.rs checks there is no cycle):
//!
//! - `launch`: the first child (seccomp filter, listener, exec);
//! - `tracer` (the ptrace engine) and `notify` (the seccomp notification engine): receive a
//!   trapped call, have it decided, carry the decision out;
//! - `report`: the --trace line and the --summary counts of a decided call;
//! - `dispatch`: the decision (vocabulary, caller, fast path, paths, served files, mounting);
//! - `session`: what a session holds (modules, mount table, syscall owners, filter spec);
//! - `filter`: which calls trap, compiled to classic BPF;
//! - `vfd`: virtual descriptors (their range, each process's table);
//! - `path`: resolution, the mount table, /proc;
//! - `module`: loaded modules (loader, fault guard, services);
//! - `syscall`: the typed syscall table and the decoding of a stop into a `Call`;
//! - `tracee`: ptrace requests, tracee memory, vDSO, seccomp listener;
//! - leaves: `arch`, `control` (the control-call protocol), `tracelog` (the --trace sink),
//!   `errno`; `cli` is the command line (used by main.rs only).
pub mod arch;
pub mod cli;
pub mod control;
pub mod dispatch;
pub mod errno;
pub mod filter;
pub mod launch;
pub mod module;
pub mod notify;
pub mod path;
pub mod report;
pub mod session;
pub mod syscall;
pub mod tracee;
pub mod tracelog;
pub mod tracer;
pub mod vfd;
