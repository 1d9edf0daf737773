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

/// Interrupt thread `tid` of our own process `pid` in a blocking wait (waitpid, a
/// sigtimedwait): the supervisor's wake signal, whose handler does nothing
/// (`seccomp::install_wake_handler`), which the tracer thread does not block.
pub fn interrupt_wait(pid: Pid, tid: Pid) {
    // SAFETY: tgkill of a thread of this process with a signal whose handler does nothing.
    unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, crate::tracee::seccomp::WAKE_SUPERVISOR) };
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

/// A non-blocking, close-on-exec inotify instance (shadow copies of virtual files watch
/// their memfds for the release of a caller's descriptor: vfd/shadow.rs).
pub fn inotify() -> io::Result<OwnedFd> {
    // SAFETY: inotify_init1 with flags only; the descriptor is owned right away.
    let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor from the kernel, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// inotify_add_watch(ino, path, mask): the watch descriptor.
pub fn inotify_watch(ino: &OwnedFd, path: &std::ffi::CStr, mask: u32) -> io::Result<i32> {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid inotify descriptor and a NUL-terminated path.
    let wd = unsafe { libc::inotify_add_watch(ino.as_raw_fd(), path.as_ptr(), mask) };
    if wd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(wd)
}

/// poll(2) on vurs's own descriptors with a timeout of zero: how many are ready (revents
/// are filled in).
pub fn poll_now(fds: &mut [libc::pollfd]) -> io::Result<usize> {
    // SAFETY: `fds` is a valid array of `fds.len()` pollfd structures.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// sendmsg(sock, ...) with `data` as the one buffer, an optional address (`name`, a raw
/// sockaddr) and the descriptors `fds` as SCM_RIGHTS; the bytes sent.
pub fn sendmsg_rights(
    sock: &OwnedFd,
    data: &[u8],
    name: &[u8],
    fds: &[std::os::fd::RawFd],
    flags: i32,
) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let fd_bytes = std::mem::size_of_val(fds) as u32;
    // SAFETY: CMSG_SPACE/CMSG_LEN are arithmetic.
    let space = unsafe { libc::CMSG_SPACE(fd_bytes) } as usize;
    let mut control = vec![0u64; space.div_ceil(8)];
    let mut iov = libc::iovec { iov_base: data.as_ptr() as *mut libc::c_void, iov_len: data.len() };
    // SAFETY: msghdr is plain data; every pointer set below outlives the sendmsg call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !name.is_empty() {
        msg.msg_name = name.as_ptr() as *mut libc::c_void;
        msg.msg_namelen = name.len() as u32;
    }
    if !fds.is_empty() {
        msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = space;
        // SAFETY: the control buffer has CMSG_SPACE(fd_bytes) bytes, so the first header
        // and its data fit in it.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(fd_bytes) as usize;
            std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(cmsg) as *mut i32, fds.len());
        }
    }
    // SAFETY: a valid socket and a msghdr whose buffers are alive.
    let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, flags) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

thread_local! {
    // This thread's own mask as it was first seen (vurs narrows it only in wake_here and,
    // for the tracer, settle_tracer).
    static OURS: Option<libc::cpu_set_t> = {
        // SAFETY: a plain cpu_set_t filled by the kernel within its size.
        unsafe {
            let mut m: libc::cpu_set_t = std::mem::zeroed();
            (libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut m) == 0).then_some(m)
        }
    };
    // Set by the tracer before each stop it handles: whether its session runs serially now.
    static SERIAL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Milliseconds on CLOCK_MONOTONIC_COARSE: a few ns through the vDSO, a tick's precision —
/// enough to tell a call of 50 ms from a quick one.
pub fn coarse_ms() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

/// The tracer's guess, before it handles a stop, of whether the tasks of its session run
/// one at a time (see `settle_tracer`).
pub fn set_tracer_serial(serial: bool) {
    SERIAL.set(serial);
}

/// Place the tracer thread for its next wake-up, before it resumes a tracee (with
/// `wake_here`, which puts the tracee on this CPU). While the session runs serially, the
/// tracer stays on this CPU: the tracee's next stop then wakes it here, where the
/// scheduler would pick an idle CPU instead — on a VM whose idle vCPUs halt, tens of µs per
/// fork, exec or exit event (docs/architecture.md). Otherwise it may go anywhere, so that
/// tasks that run in parallel are not gathered on its CPU.
pub fn settle_tracer(tid: Pid) {
    use std::cell::Cell;
    use std::time::{Duration, Instant};
    /// How often a pinned tracer asks whether its CPU is shared with other work.
    const WINDOW: Duration = Duration::from_millis(2);
    /// How long the tracer then goes unpinned before it tries again.
    const FREE_FOR: Duration = Duration::from_millis(100);
    thread_local! {
        static PINNED: Cell<bool> = const { Cell::new(false) };
        static NEXT_LOOK: Cell<Option<Instant>> = const { Cell::new(None) };
        static FREE_UNTIL: Cell<Option<Instant>> = const { Cell::new(None) };
    }
    if !SERIAL.get() && !PINNED.get() {
        return; // the common case of a parallel session: nothing to change, no clock read
    }
    let now = Instant::now();
    let mut want = SERIAL.get() && FREE_UNTIL.get().is_none_or(|t| now >= t);
    if want && PINNED.get() && NEXT_LOOK.get().is_none_or(|t| now >= t) {
        NEXT_LOOK.set(Some(now + WINDOW));
        if cpu_shared(tid) {
            FREE_UNTIL.set(Some(now + FREE_FOR));
            want = false;
        }
    }
    if want == PINNED.get() {
        return;
    }
    let Some(ours) = OURS.with(|o| *o) else { return };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: sched_getcpu has no preconditions; the cpu_set_t values are plain data the
    // kernel reads within their size.
    unsafe {
        if !want {
            libc::sched_setaffinity(0, size, &ours);
            PINNED.set(false);
            return;
        }
        let cpu = libc::sched_getcpu();
        if cpu < 0 || !libc::CPU_ISSET(cpu as usize, &ours) || libc::CPU_COUNT(&ours) == 1 {
            return;
        }
        let mut here: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut here);
        if libc::sched_setaffinity(0, size, &here) == 0 {
            PINNED.set(true);
            NEXT_LOOK.set(Some(now + WINDOW));
        }
    }
}

/// Whether tracee `tid`, about to be resumed on the tracer's CPU, has been kept waiting
/// there by other work since it was last asked about: it waited on the run queue for more
/// than BUSY_PERCENT of its time, and more than BUSY_WAIT_NS on average each time before
/// it ran. (A resumed tracee waits a few µs for the tracer to go back to sleep, which in a
/// tight loop of ptrace stops is most of its time; behind a CPU hog it waits a time slice,
/// ms, 50–70 % of its time.)
fn cpu_shared(tid: Pid) -> bool {
    const BUSY_PERCENT: u64 = 40;
    const BUSY_WAIT_NS: u64 = 100_000;
    thread_local! {
        // The tracees last asked about, and their `sched_times` then.
        static SEEN: std::cell::RefCell<Vec<(Pid, SchedTimes)>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let Some(now) = sched_times(tid) else { return false };
    SEEN.with(|seen| {
        let mut seen = seen.borrow_mut();
        let before = seen.iter().position(|&(t, _)| t == tid).map(|i| seen.swap_remove(i));
        if seen.len() >= 8 {
            seen.clear();
        }
        seen.push((tid, now));
        let Some((_, then)) = before else { return false };
        let ran = now.ran.saturating_sub(then.ran);
        let waited = now.waited.saturating_sub(then.waited);
        let runs = now.runs.saturating_sub(then.runs).max(1);
        waited * 100 > (ran + waited) * BUSY_PERCENT && waited / runs > BUSY_WAIT_NS
    })
}

/// /proc/TID/schedstat: how long a thread has run and has waited on a run queue so far
/// (ns), and how many times it was put on a CPU.
#[derive(Clone, Copy)]
struct SchedTimes {
    ran: u64,
    waited: u64,
    runs: u64,
}

fn sched_times(tid: Pid) -> Option<SchedTimes> {
    let st = std::fs::read(format!("/proc/{tid}/schedstat")).ok()?;
    let mut fields =
        st.split(|&b| b == b' ').map(|f| std::str::from_utf8(f).ok()?.trim().parse::<u64>().ok());
    Some(SchedTimes { ran: fields.next()??, waited: fields.next()??, runs: fields.next()?? })
}

/// Run `wake` — which wakes thread `tid` (of a tracee), and with `with_self` waits to be
/// woken back by it — with `tid`'s CPU mask (and, `with_self`, this thread's) narrowed to
/// the CPU this thread runs on, then restore the masks. A plain wake-up of a thread that
/// last ran here goes to an idle CPU if there is one; on a VM whose idle vCPUs halt that
/// costs tens of µs, against a few µs here (docs/architecture.md). Nothing is narrowed
/// when `tid` may not run on this CPU, or may run on it alone.
pub fn wake_here<R>(tid: Pid, with_self: bool, wake: impl FnOnce() -> R) -> R {
    let size = std::mem::size_of::<libc::cpu_set_t>();
    let Some(ours) = OURS.with(|o| *o) else { return wake() };
    // SAFETY: sched_getcpu has no preconditions; the cpu_set_t values are plain data the
    // kernel fills or reads within their size.
    unsafe {
        let cpu = libc::sched_getcpu();
        let mut theirs: libc::cpu_set_t = std::mem::zeroed();
        if cpu < 0
            || !libc::CPU_ISSET(cpu as usize, &ours)
            || libc::sched_getaffinity(tid, size, &mut theirs) != 0
            || !libc::CPU_ISSET(cpu as usize, &theirs)
            || libc::CPU_COUNT(&theirs) == 1
        {
            return wake(); // not allowed here, or allowed nowhere else
        }
        let mut here: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut here);
        let narrowed = libc::sched_setaffinity(tid, size, &here) == 0;
        if with_self {
            libc::sched_setaffinity(0, size, &here);
        }
        let r = wake();
        if with_self {
            libc::sched_setaffinity(0, size, &ours);
        }
        if narrowed {
            libc::sched_setaffinity(tid, size, &theirs);
        }
        r
    }
}
