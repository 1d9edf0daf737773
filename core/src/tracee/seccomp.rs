//! The seccomp user-notification listener (Documentation/userspace-api/seccomp_filter.rst):
//! receive a trapped call, answer it with a value, an errno or "continue", install a
//! descriptor in the caller; and the pidfd calls that reach a caller's descriptors. Thin
//! wrappers over the ioctls and system calls: the unsafe code of the notification engine
//! lives here and nowhere else.
use crate::tracee::ptrace::Pid;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (Linux 6.6): the kernel hands the supervisor the
/// caller's CPU and back, instead of waking a (possibly halted) other CPU each way.
pub const SYNC_WAKE_UP: u64 = 1;

/// One trapped call, as the kernel reports it.
#[derive(Debug, Clone, Copy)]
pub struct Notif {
    pub id: u64,
    /// The calling thread (in vurs's pid namespace).
    pub tid: Pid,
    pub nr: i64,
    pub arch: u32,
    pub ip: u64,
    pub args: [u64; 6],
}

/// The listener descriptor of the session's filter.
pub struct Listener(OwnedFd);

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

impl Listener {
    pub fn from_fd(fd: OwnedFd) -> Listener {
        Listener(fd)
    }

    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// Wait for the next trapped call. ENOENT: the caller was killed before its call was
    /// received, or no task uses the filter any more (`orphaned`).
    pub fn recv(&self) -> io::Result<Notif> {
        // SAFETY: seccomp_notif is plain data; zero is what the kernel asks for.
        let mut n: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: RECV fills the struct we pass.
        check(unsafe { libc::ioctl(self.fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut n) })?;
        Ok(Notif {
            id: n.id,
            tid: n.pid as Pid,
            nr: n.data.nr as i64,
            arch: n.data.arch,
            ip: n.data.instruction_pointer,
            args: n.data.args,
        })
    }

    /// Whether no task uses the filter any more (the listener polls as hung up). From
    /// then on RECV fails with ENOENT at once instead of waiting, the same error as for a
    /// caller killed before its call was received.
    pub fn orphaned(&self) -> bool {
        let mut p = libc::pollfd { fd: self.fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: poll reads and writes the one pollfd we pass; timeout 0 never blocks.
        unsafe { libc::poll(&mut p, 1, 0) == 1 && p.revents & libc::POLLHUP != 0 }
    }

    /// Answer `id`: the call returns `val` (a negative value is -errno), or runs as it was
    /// made (`cont`). ENOENT: the caller is gone (killed meanwhile).
    pub fn respond(&self, id: u64, val: i64, cont: bool) -> io::Result<()> {
        let (val, error) = if (-4095..0).contains(&val) { (0, val as i32) } else { (val, 0) };
        let mut r = libc::seccomp_notif_resp {
            id,
            val: if cont { 0 } else { val },
            error: if cont { 0 } else { error },
            flags: if cont { libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32 } else { 0 },
        };
        // SAFETY: SEND reads the struct we pass.
        check(unsafe { libc::ioctl(self.fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &mut r) }).map(|_| ())
    }

    /// Whether call `id` still waits for its answer (its memory read so far was the
    /// caller's, and the caller was not killed meanwhile).
    pub fn id_valid(&self, id: u64) -> bool {
        let mut id = id;
        // SAFETY: ID_VALID reads the u64 we pass.
        unsafe { libc::ioctl(self.fd(), libc::SECCOMP_IOCTL_NOTIF_ID_VALID, &mut id) == 0 }
    }

    /// Install our descriptor `src` in the caller of `id`: at `at` (replacing what is
    /// there) or at the lowest free number; with `send`, this also answers the call with
    /// the new number. Returns the number.
    pub fn add_fd(&self, id: u64, src: RawFd, at: Option<i32>, cloexec: bool, send: bool) -> io::Result<i32> {
        let mut flags = 0u32;
        if at.is_some() {
            flags |= libc::SECCOMP_ADDFD_FLAG_SETFD as u32;
        }
        if send {
            flags |= libc::SECCOMP_ADDFD_FLAG_SEND as u32;
        }
        let mut a = libc::seccomp_notif_addfd {
            id,
            flags,
            srcfd: src as u32,
            newfd: at.unwrap_or(0) as u32,
            newfd_flags: if cloexec { libc::O_CLOEXEC as u32 } else { 0 },
        };
        // SAFETY: ADDFD reads the struct we pass.
        check(unsafe { libc::ioctl(self.fd(), libc::SECCOMP_IOCTL_NOTIF_ADDFD, &mut a) })
    }

    /// `add_fd` for caller thread `tid`, with both ends held on this CPU meanwhile:
    /// ADDFD wakes the caller to install the descriptor and is woken back by it, both
    /// with plain wake-ups (not the listener's synchronous one), which the scheduler sends
    /// to an idle CPU (`sys::wake_here`).
    pub fn add_fd_here(
        &self,
        tid: Pid,
        id: u64,
        src: RawFd,
        at: Option<i32>,
        cloexec: bool,
        send: bool,
    ) -> io::Result<i32> {
        crate::tracee::sys::wake_here(tid, true, || self.add_fd(id, src, at, cloexec, send))
    }

    /// SECCOMP_IOCTL_NOTIF_SET_FLAGS.
    pub fn set_flags(&self, flags: u64) -> io::Result<()> {
        // SAFETY: SET_FLAGS takes its argument by value.
        check(unsafe { libc::ioctl(self.fd(), libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS, flags) }).map(|_| ())
    }
}

/// A copy of descriptor `fd` of process `pid` (the same open file description: offsets
/// and sockets are shared), through pidfd_open + pidfd_getfd (Linux 5.6).
pub fn caller_fd(pid: Pid, fd: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain system calls; each new descriptor is owned right away.
    unsafe {
        let pidfd = libc::syscall(libc::SYS_pidfd_open, pid, 0);
        if pidfd < 0 {
            return Err(io::Error::last_os_error());
        }
        let pidfd = OwnedFd::from_raw_fd(pidfd as RawFd);
        let copy = libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0);
        if copy < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(copy as RawFd))
    }
}

/// A raw system call on behalf of a caller; the result as the kernel returns it (a value,
/// or -errno).
///
/// # Safety
/// Every pointer argument must be valid for what call `nr` reads or writes.
pub unsafe fn raw_syscall(nr: i64, a: [u64; 6]) -> i64 {
    let r = libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    if r < 0 {
        -(io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO) as i64)
    } else {
        r as i64
    }
}

/// Take ownership of a descriptor a raw system call returned.
pub fn owned(fd: i64) -> OwnedFd {
    // SAFETY: the caller hands over a descriptor it just got from the kernel.
    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
}

/// This thread's umask (and the previous one); each supervisor thread has its own file
/// system context (`unshare(CLONE_FS)` at its start), so this is per thread.
pub fn set_umask(mask: u32) -> u32 {
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(mask as libc::mode_t) as u32 }
}

/// Give this thread its own cwd, root and umask (CLONE_FS), so setting its umask for a
/// caller changes no other thread of vurs.
pub fn unshare_fs() -> io::Result<()> {
    // SAFETY: plain system call.
    check(unsafe { libc::unshare(libc::CLONE_FS) }).map(|_| ())
}

/// This thread's file-system identity and supplementary groups, set with the raw system
/// calls (glibc's wrappers would change every thread of vurs). Used only when vurs runs
/// as root and a caller's identity differs from vurs's own.
pub fn set_thread_identity(fsuid: u32, fsgid: u32, groups: &[u32]) {
    // SAFETY: plain system calls on the calling thread's credentials; the group list is
    // a valid array of `groups.len()` ids.
    unsafe {
        libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr());
        libc::syscall(libc::SYS_setfsgid, fsgid);
        libc::syscall(libc::SYS_setfsuid, fsuid);
    }
}

/// Flags of the filter the notification engine installs: a listener for vurs, and waits
/// for an answer that only a fatal signal ends (a signal arriving after vurs took a call
/// must not make the call run again: an emulated mkdir restarted would answer EEXIST).
pub const LISTENER_FLAGS: u64 =
    libc::SECCOMP_FILTER_FLAG_NEW_LISTENER | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;

/// The signal that interrupts a supervisor thread waiting in RECV at the end of the
/// session (its handler does nothing; the wait fails with EINTR).
pub const WAKE_SUPERVISOR: i32 = libc::SIGUSR2;

extern "C" fn ignore(_: libc::c_int) {}

/// Install the do-nothing handler of WAKE_SUPERVISOR (no SA_RESTART: the wait is not
/// resumed).
pub fn install_wake_handler() {
    // SAFETY: a plain sigaction with a handler that does nothing.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = ignore as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(WAKE_SUPERVISOR, &sa, std::ptr::null_mut());
    }
}

/// Interrupt thread `t` with WAKE_SUPERVISOR.
pub fn wake(t: &std::thread::JoinHandle<()>) {
    use std::os::unix::thread::JoinHandleExt;
    // SAFETY: the thread is alive until joined, and the signal's handler does nothing.
    unsafe { libc::pthread_kill(t.as_pthread_t(), WAKE_SUPERVISOR) };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listener whose only user is a thread that installed an allow-all filter and stays
    /// until `done` is dropped.
    fn listener_of_a_thread() -> (Listener, std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>) {
        let (fd_tx, fd_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            let mut allow = [libc::sock_filter { code: 0x06, jt: 0, jf: 0, k: libc::SECCOMP_RET_ALLOW }];
            let prog = libc::sock_fprog { len: 1, filter: allow.as_mut_ptr() };
            // SAFETY: no_new_privs and a filter on this thread only (no TSYNC); the program
            // outlives the call.
            let fd = unsafe {
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, LISTENER_FLAGS, &prog)
            };
            fd_tx.send(fd).unwrap();
            let _ = done_rx.recv();
        });
        let fd = fd_rx.recv().unwrap();
        assert!(fd >= 0, "seccomp(NEW_LISTENER): {}", io::Error::last_os_error());
        // SAFETY: the descriptor was just created and nobody else owns it.
        (Listener::from_fd(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }), done_tx, t)
    }

    /// Once the last task of the filter is gone, RECV fails at once with ENOENT (the
    /// supervisor must stop receiving, not spin): `orphaned` tells that apart.
    #[test]
    fn a_listener_is_orphaned_once_its_last_task_is_gone() {
        let (listener, done, t) = listener_of_a_thread();
        assert!(!listener.orphaned(), "a filter in use is not orphaned");
        drop(done);
        t.join().unwrap();
        // The thread's task is released a little after join returns.
        let start = std::time::Instant::now();
        while !listener.orphaned() {
            assert!(start.elapsed() < std::time::Duration::from_secs(10), "never orphaned");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let e = listener.recv().expect_err("RECV on an orphaned listener");
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
    }
}
