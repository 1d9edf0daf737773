//! Access to a tracee: ptrace requests (`ptrace`), its memory (`memory`), its vDSO at exec
//! (`vdso`), the seccomp listener that reports its calls as notifications (`seccomp`), and
//! vurs's own waits, signal masks and memfds (`sys`).
//! The unsafe code of the core that talks to the kernel about tracees lives here.
pub mod memory;
pub mod ptrace;
pub mod seccomp;
pub mod sys;
pub mod vdso;
