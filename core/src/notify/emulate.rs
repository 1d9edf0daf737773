//! Carry out a decision for a caller stopped in a seccomp notification. The kernel will
//! not run a changed call for it, so vurs runs it itself, exactly as the kernel would
//! have run the rewritten call for that caller: with its file-system identity and umask,
//! relative to its own directories (copies of its descriptors), results delivered to its
//! memory (process_vm_writev) and new descriptors installed in it with
//! SECCOMP_IOCTL_NOTIF_ADDFD. Nothing happens once the caller is gone (ID_VALID).
use super::Supervisor;
use crate::dispatch::ExitHook;
use crate::dispatch::{Action, Caller, Decision, Scratch};
use crate::errno::Errno;
use crate::syscall::Call;
use crate::tracee::memory::{self, PATH_MAX};
use crate::tracee::seccomp;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

/// How the call is answered.
pub enum Answer {
    /// The kernel runs it as it was made.
    Continue,
    /// It returns this value (-errno for an error).
    Value(i64),
    /// Already answered (a descriptor installed with SECCOMP_ADDFD_FLAG_SEND).
    Sent,
}

fn errno(e: i32) -> Answer {
    Answer::Value(Errno(e).neg())
}

/// The answer to `d`, carried out.
pub fn carry_out(
    sv: &Supervisor,
    id: u64,
    c: &Caller,
    call: &Call,
    d: Decision,
    scratch: &Scratch,
) -> Answer {
    match (d.action, d.exit) {
        (Action::Pass, None | Some(ExitHook::Log)) => Answer::Continue,
        (Action::Pass, Some(ExitHook::ReverseLink { buf, size, path })) => {
            reverse_link(sv, c, buf, size, &path)
        }
        (Action::Pass, Some(ExitHook::Dirents { fd, buf, cap, entries })) => {
            dirents(sv, c, fd, buf, cap as usize, &entries)
        }
        // A change of the tree outside every mount: run here, so the caches can be
        // forgotten after it (no walk of another tracee can slip in between).
        (Action::Pass, Some(ExitHook::ForgetWalks)) => {
            let a = emulate(sv, id, c, call.nr, &call.args, scratch);
            sv.session.mounts.read().nodecache.clear();
            a
        }
        (Action::Pass, Some(_)) => Answer::Continue,
        (Action::Return(v), _) => Answer::Value(v),
        // A magic link reached through a mount (/proc bound in a --root): the link's
        // text is the host's, translated back as for a passed call.
        (Action::Rewrite(_), Some(ExitHook::ReverseLink { buf, size, path })) => {
            reverse_link(sv, c, buf, size, &path)
        }
        (Action::Rewrite(args), exit) => {
            let a = emulate(sv, id, c, call.nr, &args, scratch);
            match exit {
                Some(ExitHook::Unlink(path)) => {
                    let _ = std::fs::remove_file(std::ffi::OsStr::from_bytes(&path));
                }
                Some(ExitHook::ForgetWalks) => sv.session.mounts.read().nodecache.clear(),
                _ => {}
            }
            a
        }
        (Action::Materialize(plan), _) => {
            let Some(plan) = plan.lock().take() else { return errno(libc::EIO) };
            if !sv.listener.id_valid(id) {
                return Answer::Sent;
            }
            // Only a dup2 is carried out here (mmap of a virtual descriptor is a ptrace
            // stop): the caller's own description of the shadow goes at `newfd`.
            let (crate::dispatch::Then::Dup { newfd, cloexec }, Some(desc)) = (plan.then, &plan.desc) else {
                return errno(libc::EIO);
            };
            match sv.listener.add_fd_here(c.tid, id, desc.as_raw_fd(), Some(newfd), cloexec, true) {
                Ok(_) => Answer::Sent,
                Err(e) => errno(e.raw_os_error().unwrap_or(libc::EIO)),
            }
        }
        // Scratch in vurs is never missing; a call that changes its number stays a
        // ptrace stop (the filter traces fchdir).
        (Action::NeedScratch | Action::RewriteAs(..), _) => errno(libc::EIO),
    }
}

/// readlink of a magic link (/proc/PID/cwd, exe, fd/N): read by vurs, translated back.
fn reverse_link(sv: &Supervisor, c: &Caller, buf: u64, size: u64, path: &[u8]) -> Answer {
    let text = match std::fs::read_link(std::ffi::OsStr::from_bytes(path)) {
        Ok(t) => std::os::unix::ffi::OsStringExt::into_vec(t.into_os_string()),
        Err(e) => return errno(e.raw_os_error().unwrap_or(libc::EINVAL)),
    };
    let text = match crate::dispatch::shown_link(&sv.session.mounts.read(), Some(&c.fs), path, text.clone()) {
        Some(shown) => shown,
        None => text,
    };
    if (size as i64) <= 0 {
        return errno(libc::EINVAL);
    }
    let n = text.len().min(size as usize);
    match memory::write(c.tid, buf, &text[..n]) {
        Ok(()) => Answer::Value(n as i64),
        Err(e) => errno(e.errno()),
    }
}

/// getdents64 on a real directory that lists mount points missing on the host: the
/// caller's own directory stream (a copy of its descriptor shares the offset), then,
/// once at its end, the virtual entries.
fn dirents(sv: &Supervisor, c: &Caller, fd: i32, buf: u64, cap: usize, entries: &[(Vec<u8>, u8)]) -> Answer {
    let dir = match seccomp::caller_fd(c.tid, fd) {
        Ok(d) => d,
        Err(_) => return Answer::Continue, // the kernel gives the caller its own error
    };
    let mut local = vec![0u8; cap.min(1 << 20)];
    let args = [dir.as_raw_fd() as u64, local.as_mut_ptr() as u64, local.len() as u64, 0, 0, 0];
    // SAFETY: getdents64 writes at most `local.len()` bytes into `local`.
    let n = unsafe { seccomp::raw_syscall(libc::SYS_getdents64, args) };
    let key = (c.tgid, fd);
    let data = if n > 0 {
        sv.dirents_done.lock().remove(&key);
        local.truncate(n as usize);
        local
    } else if n == 0 && sv.dirents_done.lock().insert(key) {
        crate::dispatch::synthetic_dirents(entries, cap)
    } else {
        return Answer::Value(n);
    };
    match memory::write(c.tid, buf, &data) {
        Ok(()) => Answer::Value(data.len() as i64),
        Err(e) => errno(e.errno()),
    }
}

/// The arguments of a call being emulated: paths and buffers either in vurs (tagged
/// addresses of `scratch`) or in the caller, and copies of the caller's directories.
struct Args<'a> {
    c: &'a Caller,
    a: [u64; 6],
    scratch: &'a Scratch,
    /// Strings and buffers the real call points at.
    strings: Vec<CString>,
    /// Copies of the caller's directory descriptors, closed when the call is done.
    dirs: Vec<OwnedFd>,
}

type Fail = i64;

impl Args<'_> {
    /// Path argument `i` as a C string: vurs's rewritten path, or the caller's as given.
    fn path(&mut self, i: usize) -> Result<u64, Fail> {
        let bytes = match self.scratch.local_buf(self.a[i]) {
            Some(b) => b.strip_suffix(b"\0").unwrap_or(b).to_vec(),
            None if self.a[i] == 0 => return Ok(0),
            None => {
                let raw = memory::read_cstring(self.c.tid, self.a[i], PATH_MAX)
                    .map_err(|e| Errno(e.errno()).neg())?;
                self.callers_proc(raw)
            }
        };
        let s = CString::new(bytes).map_err(|_| Errno(libc::EINVAL).neg())?;
        let p = s.as_ptr() as u64;
        self.strings.push(s);
        Ok(p)
    }

    /// /proc/self and /proc/thread-self are the caller's, not vurs's.
    fn callers_proc(&self, raw: Vec<u8>) -> Vec<u8> {
        let (tgid, tid) = (self.c.tgid, self.c.tid);
        for (prefix, mine) in [
            (&b"/proc/thread-self"[..], format!("/proc/{tgid}/task/{tid}")),
            (&b"/proc/self"[..], format!("/proc/{tgid}")),
        ] {
            if raw.starts_with(prefix) && matches!(raw.get(prefix.len()), None | Some(b'/')) {
                let mut out = mine.into_bytes();
                out.extend_from_slice(&raw[prefix.len()..]);
                return out;
            }
        }
        raw
    }

    /// A string argument of the caller's that is not a path (an xattr name, a symlink's
    /// target), up to `max` bytes.
    fn string(&mut self, i: usize, max: usize) -> Result<u64, Fail> {
        let bytes = memory::read_cstring(self.c.tid, self.a[i], max).map_err(|e| Errno(e.errno()).neg())?;
        let s = CString::new(bytes).map_err(|_| Errno(libc::EINVAL).neg())?;
        let p = s.as_ptr() as u64;
        self.strings.push(s);
        Ok(p)
    }

    /// The directory a legacy call's relative path argument `p` starts from: the caller's
    /// cwd.
    fn cwd(&mut self, p: usize) -> Result<u64, Fail> {
        self.dir_of(libc::AT_FDCWD, p)
    }

    /// Directory argument `d` for path argument `p`: none needed for an absolute path;
    /// otherwise a copy of the caller's directory (its cwd for AT_FDCWD).
    fn dir(&mut self, d: usize, p: usize) -> Result<u64, Fail> {
        self.dir_of(self.a[d] as i32, p)
    }

    fn dir_of(&mut self, fd: i32, p: usize) -> Result<u64, Fail> {
        let absolute = match self.scratch.local_buf(self.a[p]) {
            Some(b) => b.first() == Some(&b'/'),
            None => {
                let mut first = [0u8; 1];
                self.a[p] != 0 && memory::read(self.c.tid, self.a[p], &mut first).is_ok() && first[0] == b'/'
            }
        };
        if absolute {
            return Ok(libc::AT_FDCWD as i64 as u64);
        }
        let link = if fd == libc::AT_FDCWD {
            format!("/proc/{}/cwd", self.c.tid)
        } else {
            format!("/proc/{}/fd/{fd}", self.c.tid)
        };
        let dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH)
            .open(&link)
            .map_err(|e| -(e.raw_os_error().unwrap_or(libc::EBADF) as i64))?;
        let raw = dir.as_raw_fd() as u64;
        self.dirs.push(dir.into());
        Ok(raw)
    }
}

use std::os::unix::fs::OpenOptionsExt;

/// What the caller's identity asks of the emulating thread.
struct Identity<'a> {
    sv: &'a Supervisor,
    switched: bool,
}

impl<'a> Identity<'a> {
    /// Take the caller's file-system identity (only when vurs runs as root: otherwise a
    /// tracee cannot have another one) — for access(2), its real ids.
    fn of(sv: &'a Supervisor, c: &Caller, real: bool) -> Identity<'a> {
        let cr = &c.creds;
        let (uid, gid) = if real { (cr.uid, cr.gid) } else { (cr.fsuid, cr.fsgid) };
        let own = &sv.own;
        let switched = own.euid == 0 && (uid != own.fsuid || gid != own.fsgid || cr.groups != own.groups);
        if switched {
            seccomp::set_thread_identity(uid, gid, &cr.groups);
        }
        Identity { sv, switched }
    }
}

impl Drop for Identity<'_> {
    fn drop(&mut self) {
        if self.switched {
            let own = &self.sv.own;
            seccomp::set_thread_identity(own.fsuid, own.fsgid, &own.groups);
        }
    }
}

/// Run call `nr` with arguments `a` (rewritten by the decision) for the caller.
fn emulate(sv: &Supervisor, id: u64, c: &Caller, nr: i64, a: &[u64; 6], scratch: &Scratch) -> Answer {
    let mut x = Args { c, a: *a, scratch, strings: Vec::new(), dirs: Vec::new() };
    match run(sv, id, &mut x, nr) {
        Ok(ans) => ans,
        Err(e) => Answer::Value(e),
    }
}

/// Sizes of the kernel structures a call writes.
const STAT_BYTES: usize = std::mem::size_of::<libc::stat>();
const STATX_BYTES: usize = 256;
const PATH_LEN: usize = PATH_MAX;
const STATFS_BYTES: usize = std::mem::size_of::<libc::statfs>();
/// Largest xattr value or list the kernel handles (XATTR_SIZE_MAX, XATTR_LIST_MAX).
const XATTR_MAX: usize = 65536;

// libc's SYS_* names are constants, matched as such.
#[allow(non_upper_case_globals)]
fn run(sv: &Supervisor, id: u64, x: &mut Args<'_>, nr: i64) -> Result<Answer, Fail> {
    use libc::*;
    let a = x.a;
    let c = x.c;
    // Arguments of the real call, and where its output goes in the caller: (local
    // buffer, caller's address) written back on success, up to the result's length
    // when `by_result`.
    let mut out: Option<(Vec<u8>, u64, bool)> = None;
    let mut real_ids = false;
    let mut umask = false;
    let buf = |len: usize, dst: u64, by_result: bool, out: &mut Option<(Vec<u8>, u64, bool)>| {
        *out = Some((vec![0u8; len], dst, by_result));
        out.as_mut().map(|o| o.0.as_mut_ptr() as u64).unwrap_or(0)
    };
    let args: [u64; 6] = match nr {
        SYS_open | SYS_creat => {
            let flags = if nr == SYS_creat { (O_CREAT | O_WRONLY | O_TRUNC) as u64 } else { a[1] };
            let mode = if nr == SYS_creat { a[1] } else { a[2] };
            let args = [x.cwd(0)?, x.path(0)?, flags, mode, 0, 0];
            return finish_open(sv, id, x, SYS_openat, args, flags as i32 & O_CLOEXEC != 0);
        }
        SYS_openat => {
            let args = [x.dir(0, 1)?, x.path(1)?, a[2], a[3], 0, 0];
            return finish_open(sv, id, x, nr, args, a[2] as i32 & O_CLOEXEC != 0);
        }
        SYS_stat | SYS_lstat => {
            let flags = if nr == SYS_lstat { AT_SYMLINK_NOFOLLOW as u64 } else { 0 };
            let p = x.path(0)?;
            [x.cwd(0)?, p, buf(STAT_BYTES, a[1], false, &mut out), flags, 0, 0]
        }
        SYS_newfstatat => [x.dir(0, 1)?, x.path(1)?, buf(STAT_BYTES, a[2], false, &mut out), a[3], 0, 0],
        SYS_statx => [x.dir(0, 1)?, x.path(1)?, a[2], a[3], buf(STATX_BYTES, a[4], false, &mut out), 0],
        SYS_access => {
            real_ids = true;
            [x.cwd(0)?, x.path(0)?, a[1], 0, 0, 0]
        }
        SYS_faccessat => {
            real_ids = true;
            [x.dir(0, 1)?, x.path(1)?, a[2], 0, 0, 0]
        }
        SYS_faccessat2 => {
            real_ids = a[3] & AT_EACCESS as u64 == 0;
            [x.dir(0, 1)?, x.path(1)?, a[2], a[3], 0, 0]
        }
        SYS_readlink => {
            let len = (a[2] as usize).min(PATH_LEN);
            [x.cwd(0)?, x.path(0)?, buf(len, a[1], true, &mut out), len as u64, 0, 0]
        }
        SYS_readlinkat => {
            let len = (a[3] as usize).min(PATH_LEN);
            [x.dir(0, 1)?, x.path(1)?, buf(len, a[2], true, &mut out), len as u64, 0, 0]
        }
        SYS_mkdir => {
            umask = true;
            [x.cwd(0)?, x.path(0)?, a[1], 0, 0, 0]
        }
        SYS_mkdirat => {
            umask = true;
            [x.dir(0, 1)?, x.path(1)?, a[2], 0, 0, 0]
        }
        SYS_rmdir => [x.cwd(0)?, x.path(0)?, AT_REMOVEDIR as u64, 0, 0, 0],
        SYS_unlink => [x.cwd(0)?, x.path(0)?, 0, 0, 0, 0],
        SYS_unlinkat => [x.dir(0, 1)?, x.path(1)?, a[2], 0, 0, 0],
        SYS_rename => [x.cwd(0)?, x.path(0)?, x.cwd(1)?, x.path(1)?, 0, 0],
        SYS_renameat => [x.dir(0, 1)?, x.path(1)?, x.dir(2, 3)?, x.path(3)?, 0, 0],
        SYS_renameat2 => [x.dir(0, 1)?, x.path(1)?, x.dir(2, 3)?, x.path(3)?, a[4], 0],
        SYS_link => [x.cwd(0)?, x.path(0)?, x.cwd(1)?, x.path(1)?, 0, 0],
        SYS_linkat => [x.dir(0, 1)?, x.path(1)?, x.dir(2, 3)?, x.path(3)?, a[4], 0],
        SYS_symlink => [x.string(0, PATH_LEN)?, x.cwd(1)?, x.path(1)?, 0, 0, 0],
        SYS_symlinkat => [x.string(0, PATH_LEN)?, x.dir(1, 2)?, x.path(2)?, 0, 0, 0],
        SYS_chmod => [x.cwd(0)?, x.path(0)?, a[1], 0, 0, 0],
        SYS_fchmodat => [x.dir(0, 1)?, x.path(1)?, a[2], 0, 0, 0],
        SYS_fchmodat2 => [x.dir(0, 1)?, x.path(1)?, a[2], a[3], 0, 0],
        SYS_chown => [x.cwd(0)?, x.path(0)?, a[1], a[2], 0, 0],
        SYS_lchown => [x.cwd(0)?, x.path(0)?, a[1], a[2], AT_SYMLINK_NOFOLLOW as u64, 0],
        SYS_fchownat => [x.dir(0, 1)?, x.path(1)?, a[2], a[3], a[4], 0],
        SYS_truncate => [x.path(0)?, a[1], 0, 0, 0, 0],
        SYS_utimensat => {
            let times = if a[2] == 0 { None } else { Some(scratch_or_caller(x, a[2], 32)?) };
            let tp = times.as_ref().map(|t| t.as_ptr() as u64).unwrap_or(0);
            let args = [x.dir(0, 1)?, x.path(1)?, tp, a[3], 0, 0];
            let r = call_as(sv, id, x, nr_of(nr), args, false, false);
            drop(times);
            return Ok(r.map_or_else(Answer::Value, Answer::Value));
        }
        SYS_statfs => [x.path(0)?, buf(STATFS_BYTES, a[1], false, &mut out), 0, 0, 0, 0],
        SYS_getxattr | SYS_lgetxattr => {
            let len = (a[3] as usize).min(XATTR_MAX);
            [x.path(0)?, x.string(1, 256)?, buf(len, a[2], true, &mut out), len as u64, 0, 0]
        }
        SYS_listxattr | SYS_llistxattr => {
            let len = (a[2] as usize).min(XATTR_MAX);
            [x.path(0)?, buf(len, a[1], true, &mut out), len as u64, 0, 0, 0]
        }
        SYS_setxattr | SYS_lsetxattr => {
            let len = a[3] as usize;
            if len > XATTR_MAX {
                return Ok(errno(E2BIG));
            }
            let value = scratch_or_caller(x, a[2], len)?;
            let args = [x.path(0)?, x.string(1, 256)?, value.as_ptr() as u64, len as u64, a[4], 0];
            let r = call_as(sv, id, x, nr, args, false, false);
            drop(value);
            return Ok(r.map_or_else(Answer::Value, Answer::Value));
        }
        SYS_removexattr | SYS_lremovexattr => [x.path(0)?, x.string(1, 256)?, 0, 0, 0, 0],
        _ => {
            crate::tracelog::internal_error(&format!(
                "{} cannot be emulated: ENOSYS",
                crate::syscall::table::name(nr)
            ));
            return Ok(errno(ENOSYS));
        }
    };
    let real_nr = nr_of(nr);
    let r = match call_as(sv, id, x, real_nr, args, real_ids, umask) {
        Ok(r) => r,
        Err(e) => return Ok(Answer::Value(e)),
    };
    if let Some((data, dst, by_result)) = out {
        let n = if by_result { (r.max(0) as usize).min(data.len()) } else { data.len() };
        // A query of the size (getxattr with size 0) writes nothing.
        if n > 0 {
            if let Err(e) = memory::write(c.tid, dst, &data[..n]) {
                return Ok(errno(e.errno()));
            }
        }
    }
    Ok(Answer::Value(r))
}

/// The *at form that carries out legacy call `nr` (the arguments were laid out for it).
#[allow(non_upper_case_globals)]
fn nr_of(nr: i64) -> i64 {
    use libc::*;
    match nr {
        SYS_stat | SYS_lstat => SYS_newfstatat,
        SYS_access => SYS_faccessat,
        SYS_readlink => SYS_readlinkat,
        SYS_mkdir => SYS_mkdirat,
        SYS_rmdir | SYS_unlink => SYS_unlinkat,
        SYS_rename => SYS_renameat,
        SYS_link => SYS_linkat,
        SYS_symlink => SYS_symlinkat,
        SYS_chmod => SYS_fchmodat,
        SYS_chown | SYS_lchown => SYS_fchownat,
        n => n,
    }
}

/// Bytes of an input buffer: vurs's own (a tagged address) or the caller's.
fn scratch_or_caller(x: &Args<'_>, addr: u64, len: usize) -> Result<Vec<u8>, Fail> {
    if let Some(b) = x.scratch.local_buf(addr) {
        let mut v = b.to_vec();
        v.resize(len, 0);
        return Ok(v);
    }
    let mut v = vec![0u8; len];
    memory::read(x.c.tid, addr, &mut v).map_err(|e| Errno(e.errno()).neg())?;
    Ok(v)
}

/// Run the real call with the caller's identity (and umask), once the caller is known to
/// still wait for it.
fn call_as(
    sv: &Supervisor,
    id: u64,
    x: &Args<'_>,
    nr: i64,
    mut args: [u64; 6],
    real_ids: bool,
    umask: bool,
) -> Result<i64, Fail> {
    if !sv.listener.id_valid(id) {
        return Err(Errno(libc::EINTR).neg()); // the caller is gone: nothing is done
    }
    if umask {
        seccomp::set_umask(x.c.creds.umask);
    }
    // access(2) checks the real ids: with the caller's real ids as this thread's
    // file-system ids, the effective check (AT_EACCESS) is that check.
    let identity = Identity::of(sv, x.c, real_ids);
    if real_ids && identity.switched {
        if nr == libc::SYS_faccessat {
            args[3] = libc::AT_EACCESS as u64;
            return Ok(raw(libc::SYS_faccessat2, args));
        }
        args[3] |= libc::AT_EACCESS as u64;
    }
    let r = raw(nr, args);
    drop(identity);
    Ok(r)
}

fn raw(nr: i64, args: [u64; 6]) -> i64 {
    // SAFETY: every pointer argument points into a buffer of the emulation (`Args`
    // strings, copies, output buffers) that outlives the call, sized for what the call
    // writes (see `run`).
    unsafe { seccomp::raw_syscall(nr, args) }
}

/// An open (openat's arguments: openat2 stays a ptrace stop, see syscall/table.rs): run it,
/// then install the new descriptor in the caller as the call's result.
fn finish_open(
    sv: &Supervisor,
    id: u64,
    x: &Args<'_>,
    nr: i64,
    args: [u64; 6],
    cloexec: bool,
) -> Result<Answer, Fail> {
    // Opening a FIFO blocks until its other end is opened, maybe by another tracee whose
    // open needs this thread: such an open waits on a thread of its own.
    if args[2] & libc::O_NONBLOCK as u64 == 0 && names_a_fifo(&args) {
        return Ok(open_on_own_thread(sv, id, x, nr, args, cloexec));
    }
    // The mode of a new file is the caller's, less its umask.
    let fd = match call_as(sv, id, x, nr, args, false, true) {
        Ok(fd) if fd >= 0 => seccomp::owned(fd),
        Ok(e) | Err(e) => return Ok(Answer::Value(e)),
    };
    match sv.listener.add_fd_here(x.c.tid, id, fd.as_raw_fd(), None, cloexec, true) {
        Ok(_) => Ok(Answer::Sent),
        Err(e) => Ok(errno(e.raw_os_error().unwrap_or(libc::EMFILE))),
    }
}

/// Whether the open `args` (dirfd, path, flags) would open a FIFO.
fn names_a_fifo(args: &[u64; 6]) -> bool {
    let mut st = vec![0u8; STAT_BYTES];
    let nofollow = if args[2] & libc::O_NOFOLLOW as u64 != 0 { libc::AT_SYMLINK_NOFOLLOW as u64 } else { 0 };
    let r = raw(libc::SYS_newfstatat, [args[0], args[1], st.as_mut_ptr() as u64, nofollow, 0, 0]);
    // st_mode is the u32 at offset 24 of x86_64's struct stat.
    r == 0 && u32::from_ne_bytes(st[24..28].try_into().expect("4 bytes")) & libc::S_IFMT == libc::S_IFIFO
}

/// Carry out a blocking open on a thread of its own, which answers the call itself.
fn open_on_own_thread(
    sv: &Supervisor,
    id: u64,
    x: &Args<'_>,
    nr: i64,
    args: [u64; 6],
    cloexec: bool,
) -> Answer {
    let path = x.strings.iter().find(|s| s.as_ptr() as u64 == args[1]).cloned();
    let dir = if args[0] as i32 == libc::AT_FDCWD {
        None
    } else {
        x.dirs.iter().find(|d| d.as_raw_fd() as u64 == args[0]).and_then(|d| d.try_clone().ok())
    };
    let (Some(path), listener, umask) = (path, sv.listener.clone(), x.c.creds.umask) else {
        return errno(libc::EIO);
    };
    let spawned = std::thread::Builder::new().name("vurs-fifo-open".into()).spawn(move || {
        let _ = seccomp::unshare_fs();
        seccomp::set_umask(umask);
        let dirfd = dir.as_ref().map(|d| d.as_raw_fd() as u64).unwrap_or(args[0]);
        let mut a = args;
        a[0] = dirfd;
        a[1] = path.as_ptr() as u64;
        let fd = raw(nr, a);
        if fd < 0 {
            let _ = listener.respond(id, fd, false);
            return;
        }
        let fd = seccomp::owned(fd);
        if let Err(e) = listener.add_fd(id, fd.as_raw_fd(), None, cloexec, true) {
            let _ = listener.respond(id, -(e.raw_os_error().unwrap_or(libc::EMFILE) as i64), false);
        }
    });
    match spawned {
        Ok(_) => Answer::Sent,
        Err(_) => errno(libc::EAGAIN),
    }
}
