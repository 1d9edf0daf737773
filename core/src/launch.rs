//! Start COMMAND as the first tracee: fork, let the parent PTRACE_SEIZE the child while
//! it waits on a pipe, then the child installs the seccomp filter and execs. A failed exec
//! reports its errno through a close-on-exec pipe.
use crate::filter::BpfProgram;
use crate::tracee::ptrace::{self, Pid};
use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;

pub struct Child {
    pub pid: Pid,
    /// Read end of the exec-error pipe.
    pub err_fd: i32,
    /// The filter's notification listener (the notification engine).
    pub listener: Option<std::os::fd::OwnedFd>,
}

fn pipe(flags: i32) -> Result<[i32; 2], String> {
    let mut fds = [0i32; 2];
    // SAFETY: fds has room for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), flags) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    Ok(fds)
}

/// The signals vurs changes the disposition of for itself (see `remember_inherited_signals`).
const INHERITED_SIGNALS: [i32; 3] = [libc::SIGINT, libc::SIGQUIT, libc::SIGPIPE];

/// What vurs was started with, for COMMAND.
struct Inherited {
    /// Bit i: INHERITED_SIGNALS[i] was ignored.
    ignored: u8,
    mask: libc::sigset_t,
}

static INHERITED: std::sync::OnceLock<Inherited> = std::sync::OnceLock::new();

/// Note the dispositions and signal mask vurs was started with, before it changes any:
/// COMMAND gets them back.
pub fn remember_inherited_signals() {
    // SAFETY: querying dispositions and the mask into local plain data.
    let inherited = unsafe {
        let mut ignored = 0u8;
        for (i, sig) in INHERITED_SIGNALS.iter().enumerate() {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(*sig, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN {
                ignored |= 1 << i;
            }
        }
        let mut mask: libc::sigset_t = std::mem::zeroed();
        libc::sigprocmask(libc::SIG_SETMASK, std::ptr::null(), &mut mask);
        Inherited { ignored, mask }
    };
    let _ = INHERITED.set(inherited);
}

/// Start `argv` under `filter`, in directory `cwd` if given (changed to after the filter is
/// installed, so the session's mounts apply to it); with `listen`, the filter's
/// notification listener comes back in `Child::listener`.
pub fn spawn(
    argv: &[OsString],
    filter: &BpfProgram,
    cwd: Option<&str>,
    listen: bool,
) -> Result<Child, String> {
    let cwd =
        cwd.map(|d| CString::new(d).map_err(|_| "directory contains a NUL byte".to_string())).transpose()?;
    let cargs: Vec<CString> = argv
        .iter()
        .map(|a| CString::new(a.as_bytes()).map_err(|_| "argument contains a NUL byte".to_string()))
        .collect::<Result<_, _>>()?;
    let mut cptrs: Vec<*const libc::c_char> = cargs.iter().map(|c| c.as_ptr()).collect();
    cptrs.push(std::ptr::null());
    let prog =
        libc::sock_fprog { len: filter.len() as u16, filter: filter.as_ptr() as *mut libc::sock_filter };
    let sync = pipe(libc::O_CLOEXEC)?;
    let err = pipe(libc::O_CLOEXEC)?;
    // The child sends the filter's listener back over this socket pair.
    let mut sock = [-1i32; 2];
    // SAFETY: sock has room for two descriptors.
    if listen
        && unsafe {
            libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0, sock.as_mut_ptr())
        } != 0
    {
        return Err(format!("socketpair: {}", std::io::Error::last_os_error()));
    }
    let filter_flags = if listen { crate::tracee::seccomp::LISTENER_FLAGS } else { 0 };

    // SAFETY: the child only calls async-signal-safe functions before exec or _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        unsafe {
            libc::close(sync[1]);
            libc::close(err[0]);
            let mut b = 0u8;
            // Wait until the parent has seized us (or died: read returns 0).
            if libc::read(sync[0], (&mut b as *mut u8).cast(), 1) != 1 {
                libc::_exit(125);
            }
            libc::close(sync[0]);
            // vurs ignores SIGINT/SIGQUIT/SIGPIPE and blocks signals of its own; COMMAND
            // gets the dispositions and the mask vurs was started with (what it would
            // have inherited natively: a background job of a script ignores SIGINT).
            // (Not remembered, as in a test calling spawn: the defaults and an empty mask.)
            let (ignored, mask) = match INHERITED.get() {
                Some(i) => (i.ignored, i.mask),
                None => (0, std::mem::zeroed()),
            };
            for (i, sig) in INHERITED_SIGNALS.iter().enumerate() {
                libc::signal(*sig, if ignored & (1 << i) != 0 { libc::SIG_IGN } else { libc::SIG_DFL });
            }
            libc::sigprocmask(libc::SIG_SETMASK, &mask, std::ptr::null_mut());
            let fail = |e: i32| -> ! {
                libc::write(err[1], (&e as *const i32).cast(), 4);
                libc::_exit(if e == libc::ENOENT { 127 } else { 126 });
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                fail(*libc::__errno_location());
            }
            let listener =
                libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, filter_flags, &prog);
            if listener < 0 {
                fail(*libc::__errno_location());
            }
            if listen {
                // Its number, not the descriptor: sendmsg may trap now (SCM_RIGHTS of
                // virtual descriptors), and nobody receives notifications yet. The parent
                // takes a copy with pidfd_getfd and says when it has.
                let n = listener as i32;
                let mut ack = 0u8;
                if libc::write(sock[1], (&n as *const i32).cast(), 4) != 4
                    || libc::read(sock[1], (&mut ack as *mut u8).cast(), 1) != 1
                {
                    fail(*libc::__errno_location());
                }
                libc::close(listener as i32);
            }
            if let Some(dir) = &cwd {
                if libc::chdir(dir.as_ptr()) != 0 {
                    let e = *libc::__errno_location();
                    libc::write(err[1], (&(e | CHDIR_FAILED) as *const i32).cast(), 4);
                    libc::_exit(125);
                }
            }
            libc::execvp(cptrs[0], cptrs.as_ptr());
            fail(*libc::__errno_location());
        }
    }
    // SAFETY: closing our copies of the child's ends.
    unsafe {
        libc::close(sync[0]);
        libc::close(err[1]);
        if listen {
            libc::close(sock[1]);
        }
    }
    let seized = ptrace::seize(pid);
    // SAFETY: wake the child (or let it exit if seizing failed).
    unsafe {
        if seized.is_ok() {
            libc::write(sync[1], b"g".as_ptr().cast(), 1);
        }
        libc::close(sync[1]);
    }
    if let Err(e) = seized {
        // SAFETY: reap the child, which exits on EOF.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
        return Err(match e.raw_os_error() {
            Some(libc::EPERM) => "cannot trace COMMAND: ptrace is not permitted here (is vurs itself \
                                  traced, by strace, gdb or proot? a traced program cannot be traced again)"
                .into(),
            Some(errno) => {
                format!("cannot trace COMMAND: ptrace(PTRACE_SEIZE): {}", crate::errno::strerror(errno))
            }
            None => format!("cannot trace COMMAND: ptrace(PTRACE_SEIZE): {e}"),
        });
    }
    let listener = if listen {
        // EOF: the child failed before sending it (its errno is in the error pipe).
        let mut n = -1i32;
        // SAFETY: reading 4 bytes into an int.
        let got = unsafe { libc::read(sock[0], (&mut n as *mut i32).cast(), 4) };
        let l = if got == 4 { crate::tracee::seccomp::caller_fd(pid, n).ok() } else { None };
        // SAFETY: writing one byte from a local (the child waits for it).
        unsafe { libc::write(sock[0], b"k".as_ptr().cast(), 1) };
        // SAFETY: closing our end of the socket pair.
        unsafe { libc::close(sock[0]) };
        l
    } else {
        None
    };
    Ok(Child { pid, err_fd: err[0], listener })
}

/// Marks an errno sent through the error pipe as chdir's, not exec's.
const CHDIR_FAILED: i32 = 1 << 20;

/// Why COMMAND did not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartError {
    /// The initial chdir failed with this errno.
    Chdir(i32),
    /// The exec failed with this errno.
    Exec(i32),
}

/// After the session: why COMMAND did not start, if it did not.
pub fn start_error(err_fd: i32) -> Option<StartError> {
    let mut e = 0i32;
    // SAFETY: reading 4 bytes into an i32 from our pipe end, then closing it.
    let n = unsafe { libc::read(err_fd, (&mut e as *mut i32).cast(), 4) };
    // SAFETY: closing our own descriptor.
    unsafe { libc::close(err_fd) };
    (n == 4).then_some(if e & CHDIR_FAILED != 0 {
        StartError::Chdir(e & !CHDIR_FAILED)
    } else {
        StartError::Exec(e)
    })
}
