//! Lifecycle hooks (ABI 1.1): tell every loaded module that has the hook that a process of
//! the session forked, exec'd or exited, so a module can keep per-process state. The
//! tracer calls these with the session's modules; no caller is current during a hook
//! (`vurs_services.caller` answers NULL), since none of them is a call a module serves.
use super::Module;
use crate::tracee::ptrace::Pid;
use parking_lot::RwLock;
use std::sync::Arc;

/// `child` (a new thread group) was forked by process `parent`.
pub fn proc_fork(modules: &RwLock<Vec<Arc<Module>>>, parent: Pid, child: Pid) {
    for m in hooked(modules) {
        m.proc_fork(parent, child);
    }
}

/// Process `pid` completed an execve.
pub fn proc_exec(modules: &RwLock<Vec<Arc<Module>>>, pid: Pid) {
    for m in hooked(modules) {
        m.proc_exec(pid);
    }
}

/// Process `pid` exited: its last thread is gone.
pub fn proc_exit(modules: &RwLock<Vec<Arc<Module>>>, pid: Pid) {
    for m in hooked(modules) {
        m.proc_exit(pid);
    }
}

/// The modules with a lifecycle hook, in load order (a copy, taken under the lock: a hook
/// may take time, and insmod/rmmod must not wait for it; empty, it allocates nothing).
fn hooked(modules: &RwLock<Vec<Arc<Module>>>) -> Vec<Arc<Module>> {
    modules.read().iter().filter(|m| m.has_proc_hooks()).cloned().collect()
}
