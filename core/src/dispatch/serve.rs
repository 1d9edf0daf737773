//! Served trees and virtual descriptors: calls on paths below a serving module's mount,
//! and on descriptors it owns (numbers in the virtual range, see vfd/range.rs), are
//! answered by the module; the kernel never sees them.
#![forbid(unsafe_code)]
// Helpers here return Result<T, Outcome>, as everywhere in dispatch: `?` settles the call
// (a failure, or the kernel's own answer).
use crate::dispatch::Plan;
use crate::dispatch::{Action, Caller, Decision, Outcome, Scratch};
use crate::errno::Errno;
use crate::path::mounts::{self, Mount};
use crate::syscall::Call;
use crate::tracee::memory;
use crate::vfd::fdtable::{Entry, OpenFile};
use crate::vfd::vfd_base;
use std::sync::Arc;
use syscalls::Sysno;
use vurs_abi::vurs_stat;

/// Largest single transfer we copy for a tracee (bigger reads return short counts).
const MAX_IO: usize = 1 << 20;

fn err(e: i32) -> Decision {
    Decision { action: Action::Return(Errno(e).neg()), exit: None, note: "served".into() }
}
/// A served call fails with `e` (the early-exit form of `err`).
fn fail(e: i32) -> Outcome {
    Outcome::Fail(Errno(e))
}
fn ok(v: i64, note: impl Into<crate::dispatch::Note>) -> Decision {
    Decision { action: Action::Return(v), exit: None, note: note.into() }
}

fn put_stat(tid: i32, nr: i64, buf: u64, st: &vurs_stat) -> Decision {
    match memory::write_stat(tid, buf, st, nr == Sysno::statx as i64) {
        Ok(()) => ok(0, "served stat"),
        Err(e) => err(e.errno()),
    }
}

/// A path call whose path lies in a served mount.
pub fn path_call(c: &Caller, call: &Call, m: &Arc<Mount>, virt: &[u8], access: u32) -> Decision {
    let sub = mounts::subpath(virt, m.target.as_bytes());
    let module = &m.module;
    let nr = call.nr;
    let a = call.args;
    let stat = || module.stat(m.mnt, sub);
    let open = |flags: u64, mode: u64| -> Decision {
        let flags = flags as i32;
        // A read-only mount: the core refuses a write, whatever the module would do.
        if let Err(e) = m.read_only_check(access, || stat().is_ok()) {
            return err(e);
        }
        match module.open(m.mnt, sub, flags, mode as u32) {
            Ok(h) => {
                m.open_files.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let file = Arc::new(OpenFile {
                    module: module.clone(),
                    mount: m.clone(),
                    handle: h,
                    path: String::from_utf8_lossy(virt).into_owned(),
                    flags,
                    offset: parking_lot::Mutex::new(0),
                });
                module.users.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let entry = Entry { file, cloexec: flags & libc::O_CLOEXEC != 0 };
                match c.fds.lock().alloc(vfd_base(), entry) {
                    Some(fd) => ok(fd as i64, crate::note!("virtual fd by {}", module.name)),
                    None => err(libc::EMFILE),
                }
            }
            Err(e) => err(e),
        }
    };
    match Sysno::new(nr as usize) {
        Some(Sysno::open) => open(a[1], a[2]),
        Some(Sysno::openat) => open(a[2], a[3]),
        Some(Sysno::creat) => open((libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as u64, a[1]),
        Some(Sysno::openat2) => {
            let mut how = [0u64; 2];
            let mut b = [0u8; 16];
            if memory::read(c.tid, a[2], &mut b).is_err() {
                return err(libc::EFAULT);
            }
            how[0] = u64::from_ne_bytes(b[..8].try_into().expect("8 bytes"));
            how[1] = u64::from_ne_bytes(b[8..].try_into().expect("8 bytes"));
            open(how[0], how[1])
        }
        Some(Sysno::stat) | Some(Sysno::lstat) => match stat() {
            Ok(st) => put_stat(c.tid, nr, a[1], &st),
            Err(e) => err(e),
        },
        Some(Sysno::newfstatat) => match stat() {
            Ok(st) => put_stat(c.tid, nr, a[2], &st),
            Err(e) => err(e),
        },
        Some(Sysno::statx) => match stat() {
            Ok(st) => put_stat(c.tid, nr, a[4], &st),
            Err(e) => err(e),
        },
        Some(Sysno::access) | Some(Sysno::faccessat) | Some(Sysno::faccessat2) => match stat() {
            Ok(_) if access & vurs_abi::VURS_ACCESS_WRITE != 0 => err(libc::EROFS),
            Ok(_) => ok(0, "served access"),
            Err(e) => err(e),
        },
        Some(Sysno::readlink) | Some(Sysno::readlinkat) => {
            let (buf, size) = if nr == Sysno::readlink as i64 { (a[1], a[2]) } else { (a[2], a[3]) };
            match module.readlink(m.mnt, sub) {
                Ok(t) => {
                    let n = t.len().min(size as usize);
                    match memory::write(c.tid, buf, &t[..n]) {
                        Ok(()) => ok(n as i64, "served readlink"),
                        Err(e) => err(e.errno()),
                    }
                }
                Err(e) => err(e),
            }
        }
        // Served mounts take no other writes in ABI 1.0 (read-only mount or not).
        _ if access & vurs_abi::VURS_ACCESS_WRITE != 0 => err(libc::EROFS),
        // chdir, execve, xattrs, statfs... into a served tree: not in ABI 1.0.
        _ => err(libc::EOPNOTSUPP),
    }
}

/// The virtual path of a virtual descriptor (for *at calls relative to it).
pub fn fd_path(c: &Caller, fd: i32) -> Option<Vec<u8>> {
    c.fds.lock().get(fd).map(|e| e.file.path.clone().into_bytes())
}

fn entry(c: &Caller, fd: i32) -> Result<Entry, Outcome> {
    c.fds.lock().get(fd).cloned().ok_or_else(|| fail(libc::EBADF))
}

/// A call on a virtual descriptor (`fd` is in the virtual range).
pub fn fd_call(c: &Caller, call: &Call, scratch: &mut Scratch) -> Decision {
    match fd_call_inner(c, call, scratch) {
        Ok(d) => d,
        Err(Outcome::Fail(e)) => err(e.0),
        Err(o) => o.into(),
    }
}

fn read_into(c: &Caller, f: &OpenFile, buf: u64, len: usize, off: i64) -> Result<usize, Outcome> {
    let mut data = vec![0u8; len.min(MAX_IO)];
    let n = f.module.pread(f.handle, &mut data, off).map_err(fail)?;
    memory::write(c.tid, buf, &data[..n]).map_err(|e| fail(e.errno()))?;
    Ok(n)
}

fn write_from(c: &Caller, f: &OpenFile, buf: u64, len: usize, off: i64) -> Result<usize, Outcome> {
    let mut data = vec![0u8; len.min(MAX_IO)];
    memory::read(c.tid, buf, &mut data).map_err(|e| fail(e.errno()))?;
    f.module.pwrite(f.handle, &data, off).map_err(fail)
}

/// preadv2/pwritev2 take -1 for "at the current offset".
fn position(off: u64) -> Option<i64> {
    (off as i64 != -1).then_some(off as i64)
}

/// Read into (or write from) the caller's buffers, at `at` or else at the file's offset,
/// which then moves. A short read ends the transfer, as in the kernel.
fn transfer(
    c: &Caller,
    f: &OpenFile,
    bufs: Vec<(u64, usize)>,
    at: Option<i64>,
    write: bool,
) -> Result<usize, Outcome> {
    let mut off = f.offset.lock();
    let mut pos = at.unwrap_or(*off);
    let mut total = 0usize;
    for (b, l) in bufs {
        let n = if write { write_from(c, f, b, l, pos)? } else { read_into(c, f, b, l, pos)? };
        total += n;
        pos += n as i64;
        if n < l {
            break;
        }
    }
    if at.is_none() {
        *off = pos;
    }
    Ok(total)
}

fn iovecs(c: &Caller, addr: u64, n: u64) -> Result<Vec<(u64, usize)>, Outcome> {
    if n > 1024 {
        return Err(fail(libc::EINVAL));
    }
    let mut raw = vec![0u8; n as usize * 16];
    memory::read(c.tid, addr, &mut raw).map_err(|e| fail(e.errno()))?;
    Ok(raw
        .chunks(16)
        .map(|ch| {
            let b = u64::from_ne_bytes(ch[..8].try_into().expect("8"));
            let l = u64::from_ne_bytes(ch[8..].try_into().expect("8"));
            (b, l as usize)
        })
        .collect())
}

fn fd_call_inner(c: &Caller, call: &Call, scratch: &mut Scratch) -> Result<Decision, Outcome> {
    let a = call.args;
    let fd = a[0] as i32;
    let sys = Sysno::new(call.nr as usize);
    // Calls whose virtual descriptor is not the first argument.
    match sys {
        Some(Sysno::dup2) => return dup2(c, a[0] as i32, a[1] as i32, 0, scratch),
        Some(Sysno::dup3) => return dup2(c, a[0] as i32, a[1] as i32, a[2], scratch),
        Some(Sysno::mmap) => return Ok(err(libc::ENODEV)),
        Some(Sysno::close_range) => {
            let (lo, hi) = (a[0] as u32, a[1] as u32);
            let (lo, hi) = (lo.min(i32::MAX as u32) as i32, hi.min(i32::MAX as u32) as i32);
            let mut t = c.fds.lock();
            if a[2] & libc::CLOSE_RANGE_CLOEXEC as u64 != 0 {
                t.set_cloexec_range(lo, hi);
            } else {
                t.remove_range(lo, hi);
            }
            // The kernel does the real descriptors of the range.
            return Err(Outcome::Pass);
        }
        _ => {}
    }
    let e = entry(c, fd)?;
    let f = &e.file;
    let d = match sys {
        Some(Sysno::read) => {
            ok(transfer(c, f, vec![(a[1], a[2] as usize)], None, false)? as i64, "served read")
        }
        Some(Sysno::pread64) => {
            ok(transfer(c, f, vec![(a[1], a[2] as usize)], Some(a[3] as i64), false)? as i64, "served pread")
        }
        Some(Sysno::readv) => ok(transfer(c, f, iovecs(c, a[1], a[2])?, None, false)? as i64, "served readv"),
        Some(Sysno::preadv) | Some(Sysno::preadv2) => {
            ok(transfer(c, f, iovecs(c, a[1], a[2])?, position(a[3]), false)? as i64, "served preadv")
        }
        Some(Sysno::write) => {
            ok(transfer(c, f, vec![(a[1], a[2] as usize)], None, true)? as i64, "served write")
        }
        Some(Sysno::pwrite64) => {
            ok(transfer(c, f, vec![(a[1], a[2] as usize)], Some(a[3] as i64), true)? as i64, "served pwrite")
        }
        Some(Sysno::writev) => {
            ok(transfer(c, f, iovecs(c, a[1], a[2])?, None, true)? as i64, "served writev")
        }
        Some(Sysno::pwritev) | Some(Sysno::pwritev2) => {
            ok(transfer(c, f, iovecs(c, a[1], a[2])?, position(a[3]), true)? as i64, "served pwritev")
        }
        Some(Sysno::lseek) => {
            let mut off = f.offset.lock();
            let base = match a[2] as i32 {
                libc::SEEK_SET => 0,
                libc::SEEK_CUR => *off,
                libc::SEEK_END => f.module.fstat(f.handle).map_err(fail)?.size,
                _ => return Ok(err(libc::EINVAL)),
            };
            let new = base.checked_add(a[1] as i64).filter(|&n| n >= 0).ok_or(fail(libc::EINVAL))?;
            *off = new;
            ok(new, "served lseek")
        }
        Some(Sysno::fstat) => put_stat(c.tid, call.nr, a[1], &f.module.fstat(f.handle).map_err(fail)?),
        Some(Sysno::newfstatat) | Some(Sysno::statx) => {
            // Only the AT_EMPTY_PATH form ("the descriptor itself") reaches here with a
            // virtual dirfd and an empty path; a non-empty path is resolved like any path.
            let buf = if sys == Some(Sysno::statx) { a[4] } else { a[2] };
            put_stat(c.tid, call.nr, buf, &f.module.fstat(f.handle).map_err(fail)?)
        }
        Some(Sysno::getdents) => err(libc::ENOSYS),
        Some(Sysno::getdents64) => getdents(c, f, a[1], a[2] as usize)?,
        Some(Sysno::close) => {
            c.fds.lock().remove(fd);
            ok(0, "served close")
        }
        Some(Sysno::dup) => {
            let entry = Entry { file: e.file.clone(), cloexec: false };
            match c.fds.lock().alloc(vfd_base(), entry) {
                Some(n) => ok(n as i64, "served dup"),
                None => err(libc::EMFILE),
            }
        }
        Some(Sysno::fcntl) => fcntl(c, fd, &e, a[1] as i32, a[2])?,
        Some(Sysno::ioctl) if matches!(a[1], libc::FIOCLEX | libc::FIONCLEX) => {
            let entry = Entry { file: e.file.clone(), cloexec: a[1] == libc::FIOCLEX };
            c.fds.lock().set(fd, entry);
            ok(0, "served ioctl")
        }
        Some(Sysno::ioctl) => err(libc::ENOTTY),
        Some(Sysno::fsync) | Some(Sysno::fdatasync) | Some(Sysno::fadvise64) | Some(Sysno::flock) => {
            ok(0, "served")
        }
        Some(Sysno::fchdir) => err(libc::EOPNOTSUPP),
        _ => err(libc::EROFS),
    };
    Ok(d)
}

fn fcntl(c: &Caller, fd: i32, e: &Entry, cmd: i32, arg: u64) -> Result<Decision, Outcome> {
    Ok(match cmd {
        libc::F_GETFD => ok(if e.cloexec { libc::FD_CLOEXEC as i64 } else { 0 }, "served fcntl"),
        libc::F_SETFD => {
            let mut t = c.fds.lock();
            let entry = Entry { file: e.file.clone(), cloexec: arg as i32 & libc::FD_CLOEXEC != 0 };
            t.set(fd, entry);
            ok(0, "served fcntl")
        }
        libc::F_GETFL => ok(e.file.flags as i64, "served fcntl"),
        libc::F_SETFL => ok(0, "served fcntl"),
        libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => {
            // A minimum below the virtual range still gives a virtual number (documented).
            let entry = Entry { file: e.file.clone(), cloexec: cmd == libc::F_DUPFD_CLOEXEC };
            match c.fds.lock().alloc((arg as i32).max(vfd_base()), entry) {
                Some(n) => ok(n as i64, "served dup"),
                None => err(libc::EMFILE),
            }
        }
        _ => err(libc::EINVAL),
    })
}

fn dup2(c: &Caller, old: i32, new: i32, flags: u64, scratch: &mut Scratch) -> Result<Decision, Outcome> {
    if !crate::vfd::is_virtual(old as i64) {
        // A real descriptor onto a virtual number: the kernel cannot hold it there.
        return Ok(err(libc::EBADF));
    }
    let e = entry(c, old)?;
    let cloexec = flags as i32 & libc::O_CLOEXEC != 0;
    if !crate::vfd::is_virtual(new as i64) {
        return materialize(c, &e.file, new, cloexec, scratch);
    }
    if old == new {
        return Ok(ok(new as i64, "served dup2"));
    }
    c.fds.lock().set(new, Entry { file: e.file.clone(), cloexec });
    Ok(ok(new as i64, "served dup2"))
}

/// Largest virtual file copied to a real descriptor by dup2.
const MAX_MATERIALIZE: usize = 64 << 20;

/// dup2 of a virtual file onto a real number: a snapshot of its contents from the current
/// offset on, in a memfd of vurs's that the tracee opens there (tracer/materialize.rs).
fn materialize(
    c: &Caller,
    f: &OpenFile,
    newfd: i32,
    cloexec: bool,
    scratch: &mut Scratch,
) -> Result<Decision, Outcome> {
    if f.flags & libc::O_ACCMODE != libc::O_RDONLY {
        return Ok(err(libc::EOPNOTSUPP)); // a snapshot cannot take writes back
    }
    let Ok(memfd) = crate::tracee::sys::memfd(c"vurs-virtual-file") else {
        return Ok(err(libc::EMFILE));
    };
    let mut file = std::fs::File::from(memfd);
    let mut off = *f.offset.lock();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0usize;
    loop {
        let n = f.module.pread(f.handle, &mut buf, off).map_err(fail)?;
        if n == 0 {
            break;
        }
        total += n;
        if total > MAX_MATERIALIZE {
            return Ok(err(libc::EFBIG));
        }
        std::io::Write::write_all(&mut file, &buf[..n]).map_err(|_| fail(libc::EIO))?;
        off += n as i64;
    }
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(0)).map_err(|_| fail(libc::EIO))?;
    let path = format!("/proc/{}/fd/{}", std::process::id(), std::os::fd::AsRawFd::as_raw_fd(&file));
    let path_addr = scratch.put_cstr(path.as_bytes())?;
    let plan = Plan { path_addr, newfd, cloexec, memfd: file.into() };
    let _ = c;
    Ok(Decision {
        action: Action::Materialize(std::sync::Arc::new(parking_lot::Mutex::new(Some(plan)))),
        exit: None,
        note: crate::note!("virtual file copied to fd {newfd}"),
    })
}

fn getdents(c: &Caller, f: &OpenFile, buf: u64, cap: usize) -> Result<Decision, Outcome> {
    let mut out = Vec::with_capacity(cap.min(64 * 1024));
    let mut off = f.offset.lock();
    while let Some((ino, kind, name)) = f.module.readdir(f.handle, *off as u64).map_err(fail)? {
        // struct linux_dirent64: ino, off, reclen, type, name, NUL, padded to 8.
        let reclen = (8 + 8 + 2 + 1 + name.len() + 1 + 7) & !7;
        if out.len() + reclen > cap {
            if out.is_empty() {
                return Ok(err(libc::EINVAL));
            }
            break;
        }
        let start = out.len();
        out.extend_from_slice(&ino.to_ne_bytes());
        out.extend_from_slice(&(*off + 1).to_ne_bytes());
        out.extend_from_slice(&(reclen as u16).to_ne_bytes());
        out.push(kind);
        out.extend_from_slice(&name);
        out.resize(start + reclen, 0);
        *off += 1;
    }
    memory::write(c.tid, buf, &out).map_err(|e| fail(e.errno()))?;
    Ok(ok(out.len() as i64, "served getdents64"))
}
