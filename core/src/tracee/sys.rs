//! vurs's own system calls that std offers no safe API for: waiting for tracees, the
//! signal mask and wake-up of the tracer thread, memfd. Thin wrappers; with ptrace.rs,
//! memory.rs and seccomp.rs, the only files of the tracer side with unsafe code.
use crate::tracee::ptrace::Pid;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// waitpid(-1, .., flags | __WALL): Ok(Some((pid, status))), Ok(None) with WNOHANG and
/// nothing to report, Err(EINTR / ECHILD ...).
pub fn wait_any(flags: i32) -> io::Result<Option<(Pid, i32)>> {
    let mut status = 0;
    // SAFETY: plain waitpid into a local int.
    let pid = unsafe { libc::waitpid(-1, &mut status, flags | libc::__WALL) };
    match pid {
        0 => Ok(None),
        p if p > 0 => Ok(Some((p, status))),
        _ => Err(io::Error::last_os_error()),
    }
}

fn wake_set() -> libc::sigset_t {
    // SAFETY: a sigset_t built with the libc functions.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::sigaddset(&mut set, crate::tracee::sys::WAKE_SIGNAL);
        set
    }
}

/// The signal workers wake the tracer thread with.
pub const WAKE_SIGNAL: i32 = libc::SIGUSR1;

/// Block SIGCHLD and the wake signal in this thread (and the threads it starts).
pub fn block_wake_signals() {
    let set = wake_set();
    // SAFETY: changing this thread's signal mask.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

/// Wait up to `ms` for SIGCHLD or the wake signal (both blocked).
pub fn wait_wake(ms: i64) {
    let set = wake_set();
    let ts = libc::timespec { tv_sec: ms / 1000, tv_nsec: (ms % 1000) * 1_000_000 };
    // SAFETY: waiting on a set of blocked signals, no siginfo wanted.
    unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &ts) };
}

/// This thread, for `wake`.
pub fn this_thread() -> (Pid, Pid) {
    // SAFETY: getpid and gettid cannot fail.
    unsafe { (libc::getpid(), libc::gettid()) }
}

/// Send the wake signal to thread `tid` of our own process `pid`.
pub fn wake(pid: Pid, tid: Pid) {
    // SAFETY: tgkill of a thread of this process with a signal it blocks and collects.
    unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, WAKE_SIGNAL) };
}

/// A new memfd (close-on-exec).
pub fn memfd(name: &std::ffi::CStr) -> io::Result<OwnedFd> {
    // SAFETY: memfd_create with a valid name; the descriptor is owned right away.
    unsafe {
        let fd = libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// The in-session control call (vurs's reserved number `nr`): the request in `req`, the
/// answer written to `ans` by the hypervisor; the result, or -errno.
pub fn control_call(nr: i64, req: &[u8], ans: &mut [u8]) -> i64 {
    // SAFETY: a raw system call with two valid buffers of the lengths given; outside a
    // session the kernel answers ENOSYS, inside it vurs writes at most `ans.len()` bytes.
    let r = unsafe { libc::syscall(nr, req.as_ptr(), req.len(), ans.as_mut_ptr(), ans.len()) };
    if r < 0 {
        -(io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO) as i64)
    } else {
        r as i64
    }
}

/// Whether `name` exists relative to directory `dir` (fstatat; the name may be longer than
/// a path built from the directory's own path could be).
pub fn exists_at(dir: &std::fs::File, name: &std::ffi::CStr, follow: bool) -> bool {
    let flags = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: a valid descriptor, a NUL-terminated name and a buffer the size of `stat`.
    unsafe { libc::fstatat(std::os::fd::AsRawFd::as_raw_fd(dir), name.as_ptr(), st.as_mut_ptr(), flags) == 0 }
}
