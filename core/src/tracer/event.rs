//! Classify a wait status into the stop kinds ptrace(2) describes.
use libc::c_int;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Exited(i32),
    Killed(i32),
    /// SECCOMP_RET_TRACE: a trapped call at its entry.
    Seccomp,
    /// Syscall-exit-stop (we resumed with PTRACE_SYSCALL).
    SyscallExit,
    /// New task from fork/vfork/clone: the parent stops with this event.
    NewTask,
    Exec,
    /// PTRACE_EVENT_STOP with a stop signal: a group-stop.
    GroupStop(i32),
    /// PTRACE_EVENT_STOP otherwise: first stop of a new task, or an interrupt.
    EventStop,
    /// Signal-delivery-stop: the signal to re-inject.
    Signal(i32),
    /// Any other ptrace event we did not ask for.
    Other,
}

pub fn classify(status: c_int) -> Stop {
    if libc::WIFEXITED(status) {
        return Stop::Exited(libc::WEXITSTATUS(status));
    }
    if libc::WIFSIGNALED(status) {
        return Stop::Killed(libc::WTERMSIG(status));
    }
    let sig = libc::WSTOPSIG(status);
    let event = (status >> 16) & 0xff;
    match event {
        0 if sig == libc::SIGTRAP | 0x80 => Stop::SyscallExit,
        0 => Stop::Signal(sig),
        libc::PTRACE_EVENT_SECCOMP => Stop::Seccomp,
        libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK | libc::PTRACE_EVENT_CLONE => Stop::NewTask,
        libc::PTRACE_EVENT_EXEC => Stop::Exec,
        libc::PTRACE_EVENT_STOP => match sig {
            libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU => Stop::GroupStop(sig),
            _ => Stop::EventStop,
        },
        _ => Stop::Other,
    }
}
