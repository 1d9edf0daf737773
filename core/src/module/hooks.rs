//! Lifecycle hooks (ABI 1.1): tell every loaded module that has the hook that a process of
//! the session forked, exec'd or exited, so a module can keep per-process state. The
//! tracer calls these; no caller is current during a hook (`vurs_services.caller` answers
//! NULL), since none of them is a call a module serves.
use crate::session::Session;
use crate::tracee::ptrace::Pid;

/// `child` (a new thread group) was forked by process `parent`.
pub fn proc_fork(s: &Session, parent: Pid, child: Pid) {
    for m in hooked(s) {
        m.proc_fork(parent, child);
    }
}

/// Process `pid` completed an execve.
pub fn proc_exec(s: &Session, pid: Pid) {
    for m in hooked(s) {
        m.proc_exec(pid);
    }
}

/// Process `pid` exited: its last thread is gone.
pub fn proc_exit(s: &Session, pid: Pid) {
    for m in hooked(s) {
        m.proc_exit(pid);
    }
}

/// The loaded modules with a lifecycle hook, in load order (a copy of the list: a hook may
/// take time, and insmod/rmmod must not wait for it).
fn hooked(s: &Session) -> Vec<std::sync::Arc<super::Module>> {
    s.modules.read().iter().filter(|m| m.has_proc_hooks()).cloned().collect()
}
