//! Served trees and virtual descriptors: calls on paths below a serving module's mount,
//! and on descriptors it owns (numbers in the virtual range, see vfd/range.rs), are
//! answered by the module; the kernel never sees them.
#![forbid(unsafe_code)]
// Helpers here return Result<T, Outcome>, as everywhere in dispatch: `?` settles the call
// (a failure, or the kernel's own answer).
use crate::dispatch::{Action, Caller, Decision, Outcome, Scratch};
use crate::dispatch::{Plan, Then};
use crate::errno::Errno;
use crate::path::mounts::{self, Mount};
use crate::syscall::Call;
use crate::tracee::memory;
use crate::vfd::fdtable::{Entry, OpenFile};
use crate::vfd::{shadow, vfd_base};
use std::sync::Arc;
use syscalls::Sysno;
use vurs_abi::{vurs_stat, vurs_timespec};

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

/// A served path call: where it lies and what the resolution found.
pub struct ServedPath<'a> {
    pub m: &'a Arc<Mount>,
    /// The canonical virtual path (the final component followed as the call asks).
    pub virt: &'a [u8],
    pub access: u32,
    /// The path ended in `/` (or in a symlink whose text does): it must name a directory.
    pub trailing_slash: bool,
}

/// Permission bits asked of `check`.
const MAY_READ: u32 = 4;
const MAY_WRITE: u32 = 2;
const MAY_EXEC: u32 = 1;

fn is_dir(st: &vurs_stat) -> bool {
    st.mode & libc::S_IFMT == libc::S_IFDIR
}

/// The ids a permission check uses: the file-system ids (the real ones for access(2)
/// without AT_EACCESS).
struct Who {
    uid: u32,
    gid: u32,
}

impl Who {
    fn fs(c: &Caller) -> Who {
        Who { uid: c.creds.fsuid, gid: c.creds.fsgid }
    }
    fn real(c: &Caller) -> Who {
        Who { uid: c.creds.uid, gid: c.creds.gid }
    }
}

fn in_group(c: &Caller, who: &Who, gid: u32) -> bool {
    who.gid == gid || c.creds.groups.contains(&gid)
}

/// The kernel's DAC rule (generic_permission) on a module's stat answer: owner, group or
/// other bits; uid 0 passes, but executes only something with an x bit (or a directory).
fn check(c: &Caller, who: &Who, st: &vurs_stat, want: u32) -> Result<(), i32> {
    if who.uid == 0 {
        if want & MAY_EXEC != 0 && !is_dir(st) && st.mode & 0o111 == 0 {
            return Err(libc::EACCES);
        }
        return Ok(());
    }
    let bits = if st.uid == who.uid {
        st.mode >> 6
    } else if in_group(c, who, st.gid) {
        st.mode >> 3
    } else {
        st.mode
    } & 7;
    if bits & want == want {
        Ok(())
    } else {
        Err(libc::EACCES)
    }
}

/// `sub` split into its parent and its last name ("" for the mount's root).
fn split(sub: &[u8]) -> (&[u8], &[u8]) {
    match sub.iter().rposition(|&b| b == b'/') {
        Some(i) => (&sub[..i], &sub[i + 1..]),
        None => (&b""[..], sub),
    }
}

/// What a served call works with: the mount, the caller, and permission checks made from
/// the module's stat answers (unless the module checks itself).
struct Op<'a> {
    c: &'a Caller,
    m: &'a Arc<Mount>,
    own: bool,
}

impl<'a> Op<'a> {
    fn new(c: &'a Caller, m: &'a Arc<Mount>) -> Op<'a> {
        Op { c, m, own: m.module.own_permissions() }
    }
    fn stat(&self, sub: &[u8]) -> Result<vurs_stat, i32> {
        self.m.module.stat(self.m.mnt, sub)
    }
    fn ro(&self) -> Result<(), i32> {
        if self.m.read_only {
            Err(libc::EROFS)
        } else {
            Ok(())
        }
    }
    /// Search permission on every directory from the mount's root down to `sub`'s parent
    /// (each must exist and be a directory: ENOENT, ENOTDIR).
    fn walk(&self, sub: &[u8]) -> Result<(), i32> {
        if sub.is_empty() {
            return Ok(());
        }
        let who = Who::fs(self.c);
        let dirs =
            std::iter::once(0).chain(sub.iter().enumerate().filter(|(_, &b)| b == b'/').map(|(i, _)| i));
        for end in dirs {
            let st = self.stat(&sub[..end])?;
            if !is_dir(&st) {
                return Err(libc::ENOTDIR);
            }
            if !self.own {
                check(self.c, &who, &st, MAY_EXEC)?;
            }
        }
        Ok(())
    }
    /// `want` on the object itself.
    fn may(&self, st: &vurs_stat, want: u32) -> Result<(), i32> {
        if self.own {
            return Ok(());
        }
        check(self.c, &Who::fs(self.c), st, want)
    }
    /// Creating or removing `name` in directory `parent`: write and search on it.
    fn may_change_dir(&self, parent: &[u8]) -> Result<vurs_stat, i32> {
        let st = self.stat(parent)?;
        if !is_dir(&st) {
            return Err(libc::ENOTDIR);
        }
        self.may(&st, MAY_WRITE | MAY_EXEC)?;
        Ok(st)
    }
    /// Removing (or renaming away, or over) `victim` of directory `dir`: the sticky bit
    /// lets only the owner of the file or of the directory (or root) do it.
    fn sticky(&self, dir: &vurs_stat, victim: &vurs_stat) -> Result<(), i32> {
        let uid = self.c.creds.fsuid;
        if self.own || dir.mode & libc::S_ISVTX == 0 || uid == 0 || victim.uid == uid || dir.uid == uid {
            return Ok(());
        }
        Err(libc::EPERM)
    }
    /// Owner (or root): chmod, utimens with explicit times, xattrs of the trusted kind.
    fn owner(&self, st: &vurs_stat) -> Result<(), i32> {
        let uid = self.c.creds.fsuid;
        if self.own || uid == 0 || st.uid == uid {
            Ok(())
        } else {
            Err(libc::EPERM)
        }
    }
}

/// chdir (or chroot) to `virt` in served mount `m`: search permission on the way and on
/// the directory itself (ENOENT, ENOTDIR, EACCES, as the kernel's lookup and
/// `inode_permission(MAY_EXEC)`). `trailing_slash` changes nothing: a directory is asked.
pub fn enter_dir(c: &Caller, m: &Arc<Mount>, virt: &[u8]) -> Result<(), i32> {
    let op = Op::new(c, m);
    let sub = mounts::subpath(virt, m.target.as_bytes());
    op.walk(sub)?;
    let st = op.stat(sub)?;
    if !is_dir(&st) {
        return Err(libc::ENOTDIR);
    }
    op.may(&st, MAY_EXEC)
}

/// A path call whose path lies in a served mount.
pub fn path_call(c: &Caller, call: &Call, sp: &ServedPath<'_>) -> Decision {
    shadow::sync();
    match served(c, call, sp) {
        Ok(d) => d,
        Err(e) => err(e),
    }
}

fn done(note: &'static str) -> Result<Decision, i32> {
    Ok(ok(0, note))
}

fn read_name(c: &Caller, addr: u64) -> Result<Vec<u8>, i32> {
    // XATTR_NAME_MAX is 255: a longer name is ERANGE, as in the kernel.
    match memory::read_cstring(c.tid, addr, 256) {
        Ok(n) if n.is_empty() => Err(libc::ERANGE),
        Ok(n) => Ok(n),
        Err(e) if e.errno() == libc::ENAMETOOLONG => Err(libc::ERANGE),
        Err(e) => Err(e.errno()),
    }
}

/// Largest xattr value or list (XATTR_SIZE_MAX).
const XATTR_MAX: usize = 65536;

fn served(c: &Caller, call: &Call, sp: &ServedPath<'_>) -> Result<Decision, i32> {
    let m = sp.m;
    let sub = mounts::subpath(sp.virt, m.target.as_bytes());
    let module = &m.module;
    let op = Op::new(c, m);
    let nr = call.nr;
    let a = call.args;
    let Some(sys) = Sysno::new(nr as usize) else {
        return Err(libc::ENOSYS);
    };
    op.walk(sub)?;
    // The object, when the call needs it; a trailing slash wants a directory.
    let object = || -> Result<vurs_stat, i32> {
        let st = op.stat(sub)?;
        if sp.trailing_slash && !is_dir(&st) {
            return Err(libc::ENOTDIR);
        }
        Ok(st)
    };
    use Sysno::*;
    match sys {
        open | openat | creat | openat2 => {
            let (flags, mode) = match sys {
                open => (a[1], a[2]),
                openat => (a[2], a[3]),
                creat => ((libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as u64, a[1]),
                _ => {
                    let mut b = [0u8; 16];
                    memory::read(c.tid, a[2], &mut b).map_err(|_| libc::EFAULT)?;
                    let f = u64::from_ne_bytes(b[..8].try_into().expect("8 bytes"));
                    (f, u64::from_ne_bytes(b[8..].try_into().expect("8 bytes")))
                }
            };
            open_file(c, sp, &op, sub, flags as i32, mode as u32)
        }
        stat | lstat | newfstatat | statx => {
            let st = object()?;
            let buf = match sys {
                stat | lstat => a[1],
                newfstatat => a[2],
                _ => a[4],
            };
            Ok(put_stat(c.tid, nr, buf, &st))
        }
        access | faccessat | faccessat2 => {
            let (mask, flags) = match sys {
                access => (a[1] as i32, 0),
                faccessat => (a[2] as i32, 0),
                _ => (a[2] as i32, a[3] as i32),
            };
            if mask & !(libc::R_OK | libc::W_OK | libc::X_OK) != 0 {
                return Err(libc::EINVAL);
            }
            let st = object()?;
            if mask & libc::W_OK != 0 && m.read_only {
                return Err(libc::EROFS);
            }
            if op.own {
                module.access(m.mnt, sub, mask)?;
            } else if mask != libc::F_OK {
                let who = if flags & libc::AT_EACCESS != 0 { Who::fs(c) } else { Who::real(c) };
                check(c, &who, &st, mask as u32)?;
            }
            done("served access")
        }
        readlink | readlinkat => {
            let (buf, size) = if sys == readlink { (a[1], a[2]) } else { (a[2], a[3]) };
            if (size as i64) <= 0 {
                return Err(libc::EINVAL);
            }
            let t = module.readlink(m.mnt, sub)?;
            let n = t.len().min(size as usize);
            memory::write(c.tid, buf, &t[..n]).map_err(|e| e.errno())?;
            Ok(ok(n as i64, "served readlink"))
        }
        mkdir | mkdirat => {
            let mode = if sys == mkdir { a[1] } else { a[2] } as u32;
            create_checks(&op, sub)?;
            let mode = mode & (0o777 | libc::S_ISVTX) & !c.creds.umask;
            module.mkdir(m.mnt, sub, mode)?;
            done("served mkdir")
        }
        mknod | mknodat => {
            let (mode, dev) = if sys == mknod { (a[1], a[2]) } else { (a[2], a[3]) };
            let mode = mode as u32;
            let kind = match mode & libc::S_IFMT {
                0 => libc::S_IFREG,
                k @ (libc::S_IFREG | libc::S_IFIFO | libc::S_IFSOCK | libc::S_IFCHR | libc::S_IFBLK) => k,
                libc::S_IFDIR => return Err(libc::EPERM),
                _ => return Err(libc::EINVAL),
            };
            create_checks(&op, sub)?;
            if matches!(kind, libc::S_IFCHR | libc::S_IFBLK) && c.creds.fsuid != 0 && !op.own {
                return Err(libc::EPERM);
            }
            let mode = kind | (mode & 0o7777 & !c.creds.umask);
            module.mknod(m.mnt, sub, mode, dev)?;
            done("served mknod")
        }
        symlink | symlinkat => {
            let target = memory::read_cstring(c.tid, a[0], memory::PATH_MAX).map_err(|e| e.errno())?;
            if target.is_empty() {
                return Err(libc::ENOENT);
            }
            create_checks(&op, sub)?;
            module.symlink(m.mnt, &target, sub)?;
            done("served symlink")
        }
        rmdir => remove(&op, sub, true),
        unlink => remove(&op, sub, false),
        unlinkat => remove(&op, sub, a[2] & libc::AT_REMOVEDIR as u64 != 0),
        chmod | fchmodat | fchmodat2 => {
            let mode = if sys == chmod { a[1] } else { a[2] } as u32;
            let st = object()?;
            op.ro()?;
            chmod_checked(c, &op, sub, None, &st, mode)
        }
        chown | lchown | fchownat => {
            let (uid, gid) = if sys == fchownat { (a[2], a[3]) } else { (a[1], a[2]) };
            let st = object()?;
            op.ro()?;
            chown_checked(c, &op, sub, None, &st, uid as u32, gid as u32)
        }
        truncate => {
            let st = object()?;
            if is_dir(&st) {
                return Err(libc::EISDIR);
            }
            op.ro()?;
            op.may(&st, MAY_WRITE)?;
            if (a[1] as i64) < 0 {
                return Err(libc::EINVAL);
            }
            module.truncate(m.mnt, sub, None, a[1] as i64)?;
            done("served truncate")
        }
        utime | utimes | futimesat | utimensat => {
            let tv = read_times(c, sys, a)?;
            let st = object()?;
            utimens_checked(c, &op, sub, None, &st, tv)
        }
        statfs => {
            object()?;
            statfs_out(c, &op, sub, a[1])
        }
        getxattr | lgetxattr => {
            let st = object()?;
            xattr_get(c, &op, sub, None, &st, a[1], a[2], a[3])
        }
        listxattr | llistxattr => {
            object()?;
            xattr_list(c, &op, sub, None, a[1], a[2])
        }
        setxattr | lsetxattr => {
            let st = object()?;
            xattr_set(c, &op, sub, None, &st, [a[1], a[2], a[3], a[4]])
        }
        removexattr | lremovexattr => {
            let st = object()?;
            xattr_remove(c, &op, sub, None, &st, a[1])
        }
        // chdir, execve... into a served tree: not served (see docs/modules.md).
        _ => Err(libc::EOPNOTSUPP),
    }
}

/// A new name `sub`: it must not exist, its parent must be a directory the caller may
/// write, and the mount must be writable (EEXIST before EROFS, as the kernel).
fn create_checks(op: &Op<'_>, sub: &[u8]) -> Result<(), i32> {
    if sub.is_empty() || op.stat(sub).is_ok() {
        return Err(libc::EEXIST);
    }
    op.ro()?;
    let (parent, _) = split(sub);
    op.may_change_dir(parent)?;
    Ok(())
}

fn remove(op: &Op<'_>, sub: &[u8], dir: bool) -> Result<Decision, i32> {
    if sub.is_empty() {
        return Err(libc::EBUSY); // the mount point itself
    }
    let st = op.stat(sub)?;
    match (dir, is_dir(&st)) {
        (true, false) => return Err(libc::ENOTDIR),
        (false, true) => return Err(libc::EISDIR),
        _ => {}
    }
    op.ro()?;
    let (parent, _) = split(sub);
    let pst = op.may_change_dir(parent)?;
    op.sticky(&pst, &st)?;
    let m = op.m;
    if dir {
        m.module.rmdir(m.mnt, sub)?;
        done("served rmdir")
    } else {
        m.module.unlink(m.mnt, sub)?;
        done("served unlink")
    }
}

fn chmod_checked(
    c: &Caller,
    op: &Op<'_>,
    sub: &[u8],
    h: Option<usize>,
    st: &vurs_stat,
    mode: u32,
) -> Result<Decision, i32> {
    op.owner(st)?;
    let mut mode = mode & 0o7777;
    // Not in the file's group: the set-group-id bit goes (as the kernel's setattr_prepare).
    if !op.own && c.creds.fsuid != 0 && !in_group(c, &Who::fs(c), st.gid) {
        mode &= !libc::S_ISGID;
    }
    op.m.module.chmod(op.m.mnt, sub, h, mode)?;
    done("served chmod")
}

fn chown_checked(
    c: &Caller,
    op: &Op<'_>,
    sub: &[u8],
    h: Option<usize>,
    st: &vurs_stat,
    uid: u32,
    gid: u32,
) -> Result<Decision, i32> {
    let me = c.creds.fsuid;
    if !op.own && me != 0 {
        // Only root changes the owner; the owner may change the group to one of its own.
        let uid_changes = uid != u32::MAX && uid != st.uid;
        let gid_ok = gid == u32::MAX || gid == st.gid || (st.uid == me && in_group(c, &Who::fs(c), gid));
        if uid_changes || !gid_ok || (gid != u32::MAX && st.uid != me && gid != st.gid) {
            return Err(libc::EPERM);
        }
    }
    op.m.module.chown(op.m.mnt, sub, h, uid, gid)?;
    done("served chown")
}

const UTIME_NOW: i64 = (1 << 30) - 1;

/// The two times of a utime-family call (None: "now" for both, as a NULL pointer).
fn read_times(c: &Caller, sys: Sysno, a: [u64; 6]) -> Result<Option<[vurs_timespec; 2]>, i32> {
    let (addr, micro, utimbuf) = match sys {
        Sysno::utime => (a[1], false, true),
        Sysno::utimes => (a[1], true, false),
        Sysno::futimesat => (a[2], true, false),
        _ => (a[2], false, false),
    };
    if addr == 0 {
        return Ok(None);
    }
    let mut b = [0u8; 32];
    let n = if utimbuf { 16 } else { 32 };
    memory::read(c.tid, addr, &mut b[..n]).map_err(|e| e.errno())?;
    let w = |i: usize| i64::from_ne_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    let t = if utimbuf {
        [vurs_timespec { sec: w(0), nsec: 0 }, vurs_timespec { sec: w(1), nsec: 0 }]
    } else if micro {
        for u in [w(1), w(3)] {
            if !(0..1_000_000).contains(&u) {
                return Err(libc::EINVAL);
            }
        }
        [vurs_timespec { sec: w(0), nsec: w(1) * 1000 }, vurs_timespec { sec: w(2), nsec: w(3) * 1000 }]
    } else {
        for ns in [w(1), w(3)] {
            if !(0..1_000_000_000).contains(&ns) && ns != UTIME_NOW && ns != vurs_abi::VURS_UTIME_OMIT {
                return Err(libc::EINVAL);
            }
        }
        [vurs_timespec { sec: w(0), nsec: w(1) }, vurs_timespec { sec: w(2), nsec: w(3) }]
    };
    Ok(Some(t))
}

fn utimens_checked(
    c: &Caller,
    op: &Op<'_>,
    sub: &[u8],
    h: Option<usize>,
    st: &vurs_stat,
    times: Option<[vurs_timespec; 2]>,
) -> Result<Decision, i32> {
    let omit = vurs_abi::VURS_UTIME_OMIT;
    let t = times.unwrap_or([vurs_timespec { sec: 0, nsec: UTIME_NOW }; 2]);
    if t[0].nsec == omit && t[1].nsec == omit {
        return done("served utimens");
    }
    op.ro()?;
    let explicit = t.iter().any(|x| x.nsec != UTIME_NOW && x.nsec != omit);
    if explicit {
        op.owner(st)?;
    } else if !op.own && c.creds.fsuid != 0 && st.uid != c.creds.fsuid {
        // "now" only: the owner, or whoever may write the file
        op.may(st, MAY_WRITE)?;
    }
    let now = crate::module::session_clock(libc::CLOCK_REALTIME).map_err(|_| libc::EIO)?;
    let t = t.map(|x| if x.nsec == UTIME_NOW { now } else { x });
    op.m.module.utimens(op.m.mnt, sub, h, &t)?;
    done("served utimens")
}

/// ST_RDONLY of statfs's f_flags.
const ST_RDONLY: u64 = 1;

/// struct statfs (x86_64 and aarch64: eleven 64-bit words, then f_spare).
fn statfs_out(c: &Caller, op: &Op<'_>, sub: &[u8], buf: u64) -> Result<Decision, i32> {
    let s = op.m.module.statfs(op.m.mnt, sub)?;
    let flags = s.flags | if op.m.read_only { ST_RDONLY } else { 0 };
    let words: [u64; 15] = [
        s.type_, s.bsize, s.blocks, s.bfree, s.bavail, s.files, s.ffree, 0, // f_fsid
        s.namelen, s.frsize, flags, 0, 0, 0, 0,
    ];
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    memory::write(c.tid, buf, &bytes).map_err(|e| e.errno())?;
    done("served statfs")
}

/// Permission for an xattr of namespace `name` (user.* follows the file's mode; trusted.*
/// and security.* writes need root; system.* is the module's).
fn xattr_may(c: &Caller, op: &Op<'_>, st: &vurs_stat, name: &[u8], want: u32) -> Result<(), i32> {
    if op.own {
        return Ok(());
    }
    if name.starts_with(b"user.") {
        if !matches!(st.mode & libc::S_IFMT, libc::S_IFREG | libc::S_IFDIR) {
            return Err(if want == MAY_WRITE { libc::EPERM } else { libc::ENODATA });
        }
        return op.may(st, want);
    }
    if name.starts_with(b"trusted.") && c.creds.fsuid != 0 {
        return Err(if want == MAY_WRITE { libc::EPERM } else { libc::ENODATA });
    }
    if want == MAY_WRITE && name.starts_with(b"security.") && c.creds.fsuid != 0 {
        return op.owner(st);
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn xattr_get(
    c: &Caller,
    op: &Op<'_>,
    sub: &[u8],
    h: Option<usize>,
    st: &vurs_stat,
    name: u64,
    value: u64,
    size: u64,
) -> Result<Decision, i32> {
    let name = read_name(c, name)?;
    xattr_may(c, op, st, &name, MAY_READ)?;
    let mut buf = vec![0u8; (size as usize).min(XATTR_MAX)];
    let n = op.m.module.getxattr(op.m.mnt, sub, h, &name, &mut buf)?;
    if size != 0 {
        memory::write(c.tid, value, &buf[..n.min(buf.len())]).map_err(|e| e.errno())?;
    }
    Ok(ok(n as i64, "served getxattr"))
}

fn xattr_list(
    c: &Caller,
    op: &Op<'_>,
    sub: &[u8],
    h: Option<usize>,
    list: u64,
    size: u64,
) -> Result<Decision, i32> {
    let mut buf = vec![0u8; (size as usize).min(XATTR_MAX)];
    let n = op.m.module.listxattr(op.m.mnt, sub, h, &mut buf)?;
    if size != 0 {
        memory::write(c.tid, list, &buf[..n.min(buf.len())]).map_err(|e| e.errno())?;
    }
    Ok(ok(n as i64, "served listxattr"))
}

/// `args`: name, value, size, flags.
fn xattr_set(
    c: &Caller,
    op: &Op<'_>,
    sub: &[u8],
    h: Option<usize>,
    st: &vurs_stat,
    args: [u64; 4],
) -> Result<Decision, i32> {
    let name = read_name(c, args[0])?;
    let (size, flags) = (args[2] as usize, args[3] as i32);
    if flags & !(libc::XATTR_CREATE | libc::XATTR_REPLACE) != 0 {
        return Err(libc::EINVAL);
    }
    if size > XATTR_MAX {
        return Err(libc::E2BIG);
    }
    let mut value = vec![0u8; size];
    memory::read(c.tid, args[1], &mut value).map_err(|e| e.errno())?;
    op.ro()?;
    xattr_may(c, op, st, &name, MAY_WRITE)?;
    op.m.module.setxattr(op.m.mnt, sub, h, &name, &value, flags)?;
    done("served setxattr")
}

fn xattr_remove(
    c: &Caller,
    op: &Op<'_>,
    sub: &[u8],
    h: Option<usize>,
    st: &vurs_stat,
    name: u64,
) -> Result<Decision, i32> {
    let name = read_name(c, name)?;
    op.ro()?;
    xattr_may(c, op, st, &name, MAY_WRITE)?;
    op.m.module.removexattr(op.m.mnt, sub, h, &name)?;
    done("served removexattr")
}

/// open and creat: create (O_CREAT, O_EXCL) or open an existing object (permission by
/// O_ACCMODE, O_TRUNC), then a virtual descriptor for the module's handle.
fn open_file(
    c: &Caller,
    sp: &ServedPath<'_>,
    op: &Op<'_>,
    sub: &[u8],
    flags: i32,
    mode: u32,
) -> Result<Decision, i32> {
    let m = sp.m;
    let module = &m.module;
    let acc = flags & libc::O_ACCMODE;
    let writes = acc != libc::O_RDONLY || flags & libc::O_TRUNC != 0;
    let mut flags = flags;
    let mut mode = mode;
    match op.stat(sub) {
        // O_TMPFILE: an unnamed file in directory `sub`, made by the module (as the
        // kernel: a writable access mode, write and search permission on the directory).
        Ok(st) if flags & libc::O_TMPFILE == libc::O_TMPFILE => {
            if !is_dir(&st) {
                return Err(libc::ENOTDIR);
            }
            if acc == libc::O_RDONLY {
                return Err(libc::EINVAL);
            }
            op.ro()?;
            op.may_change_dir(sub)?;
            mode = mode & 0o7777 & !c.creds.umask;
        }
        Ok(st) => {
            if flags & libc::O_CREAT != 0 && flags & libc::O_EXCL != 0 {
                return Err(libc::EEXIST);
            }
            if sp.trailing_slash && !is_dir(&st) {
                return Err(if flags & libc::O_CREAT != 0 { libc::EISDIR } else { libc::ENOTDIR });
            }
            if is_dir(&st) && (acc != libc::O_RDONLY || flags & libc::O_CREAT != 0) {
                return Err(libc::EISDIR);
            }
            if flags & libc::O_DIRECTORY != 0 && !is_dir(&st) {
                return Err(libc::ENOTDIR);
            }
            if writes && m.read_only {
                return Err(libc::EROFS);
            }
            let want = match acc {
                libc::O_RDONLY => MAY_READ,
                libc::O_WRONLY => MAY_WRITE,
                _ => MAY_READ | MAY_WRITE,
            } | if flags & libc::O_TRUNC != 0 { MAY_WRITE } else { 0 };
            op.may(&st, want)?;
            // O_CREAT on an existing file is a plain open for the module.
            flags &= !(libc::O_CREAT | libc::O_EXCL);
        }
        Err(libc::ENOENT) if flags & libc::O_CREAT != 0 => {
            if sp.trailing_slash {
                return Err(libc::EISDIR);
            }
            if sub.is_empty() {
                return Err(libc::EEXIST);
            }
            op.ro()?;
            let (parent, _) = split(sub);
            op.may_change_dir(parent)?;
            mode = mode & 0o7777 & !c.creds.umask;
        }
        Err(e) => return Err(e),
    }
    let h = module.open(m.mnt, sub, flags, mode)?;
    m.open_files.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let file = Arc::new(OpenFile {
        module: module.clone(),
        mount: m.clone(),
        handle: h,
        path: String::from_utf8_lossy(sp.virt).into_owned(),
        flags,
        offset: parking_lot::Mutex::new(0),
    });
    module.users.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let entry = Entry { file, cloexec: flags & libc::O_CLOEXEC != 0 };
    match c.fds.lock().alloc(vfd_base(), entry) {
        Some(fd) => Ok(ok(fd as i64, crate::note!("virtual fd by {}", module.name))),
        None => Err(libc::EMFILE),
    }
}

/// rename and link with both paths in served mount `m` (`from`, `to`: canonical virtual
/// paths). Two different mounts never reach here: that is EXDEV.
pub fn two_path_call(c: &Caller, call: &Call, m: &Arc<Mount>, from: &[u8], to: &[u8]) -> Decision {
    shadow::sync();
    let r = (|| -> Result<Decision, i32> {
        let op = Op::new(c, m);
        let (a, b) = (mounts::subpath(from, m.target.as_bytes()), mounts::subpath(to, m.target.as_bytes()));
        op.walk(a)?;
        op.walk(b)?;
        let sta = op.stat(a)?;
        let is_link = matches!(Sysno::new(call.nr as usize), Some(Sysno::link) | Some(Sysno::linkat));
        if is_link {
            if is_dir(&sta) {
                return Err(libc::EPERM);
            }
            if b.is_empty() || op.stat(b).is_ok() {
                return Err(libc::EEXIST);
            }
            op.ro()?;
            op.may_change_dir(split(b).0)?;
            m.module.link(m.mnt, a, b)?;
            return done("served link");
        }
        let flags = if call.nr == libc::SYS_renameat2 { call.args[4] as u32 } else { 0 };
        let (noreplace, exchange) = (flags & libc::RENAME_NOREPLACE != 0, flags & libc::RENAME_EXCHANGE != 0);
        if flags & !(libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE | libc::RENAME_WHITEOUT) != 0
            || (noreplace && exchange)
        {
            return Err(libc::EINVAL);
        }
        if flags & libc::RENAME_WHITEOUT != 0 {
            return Err(libc::EINVAL);
        }
        if a.is_empty() || b.is_empty() {
            return Err(libc::EBUSY);
        }
        let stb = op.stat(b);
        match (&stb, exchange) {
            (Err(libc::ENOENT), true) => return Err(libc::ENOENT),
            (Err(libc::ENOENT), false) => {}
            (Err(e), _) => return Err(*e),
            (Ok(_), false) if noreplace => return Err(libc::EEXIST),
            (Ok(stb), false) => {
                if is_dir(&sta) && !is_dir(stb) {
                    return Err(libc::ENOTDIR);
                }
                if !is_dir(&sta) && is_dir(stb) {
                    return Err(libc::EISDIR);
                }
            }
            (Ok(_), true) => {}
        }
        // A directory moved into itself
        if is_dir(&sta) && b.len() > a.len() && b.starts_with(a) && b[a.len()] == b'/' {
            return Err(libc::EINVAL);
        }
        if a == b {
            return done("served rename");
        }
        op.ro()?;
        let pa = op.may_change_dir(split(a).0)?;
        let pb = op.may_change_dir(split(b).0)?;
        op.sticky(&pa, &sta)?;
        if let Ok(stb) = &stb {
            op.sticky(&pb, stb)?;
        }
        m.module.rename(m.mnt, a, b, flags)?;
        done("served rename")
    })();
    r.unwrap_or_else(err)
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
    // Calls whose descriptors are in memory trap in every process: most have none.
    if fd_set_call(call.nr) {
        return match fd_set_inner(c, call) {
            Ok(d) => d,
            Err(Outcome::Fail(e)) => err(e.0),
            Err(o) => o.into(),
        };
    }
    shadow::sync();
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
        Some(Sysno::mmap) => return mmap(c, a, scratch),
        Some(Sysno::epoll_ctl) => {
            // What epoll says of a regular file (no poll operation): EPERM.
            entry(c, a[2] as i32)?;
            return Ok(err(libc::EPERM));
        }
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
        Some(Sysno::fsync) | Some(Sysno::fdatasync) => {
            f.module.fsync(f.handle, sys == Some(Sysno::fdatasync)).map_err(fail)?;
            ok(0, "served fsync")
        }
        Some(Sysno::fadvise64) | Some(Sysno::flock) => ok(0, "served"),
        Some(sys) if fd_meta_call(sys) => fd_meta(c, call, f, sys).unwrap_or_else(err),
        Some(Sysno::fchdir) => err(libc::EOPNOTSUPP),
        // fexecve: execveat(fd, "", argv, envp, AT_EMPTY_PATH).
        Some(Sysno::execveat) => exec_virtual(c, call, f, scratch)?,
        _ => err(libc::EROFS),
    };
    Ok(d)
}

/// Metadata calls on a virtual descriptor: the module's operation with the handle.
fn fd_meta_call(sys: Sysno) -> bool {
    use Sysno::*;
    matches!(
        sys,
        fchmod
            | fchown
            | ftruncate
            | fstatfs
            | fgetxattr
            | fsetxattr
            | flistxattr
            | fremovexattr
            | utimensat
            | futimesat
            | fchmodat
            | fchmodat2
            | fchownat
    )
}

fn fd_meta(c: &Caller, call: &Call, f: &OpenFile, sys: Sysno) -> Result<Decision, i32> {
    let m = &f.mount;
    let op = Op::new(c, m);
    let sub = mounts::subpath(f.path.as_bytes(), m.target.as_bytes());
    let h = Some(f.handle);
    let st = f.module.fstat(f.handle)?;
    let a = call.args;
    use Sysno::*;
    match sys {
        fchmod | fchmodat | fchmodat2 => {
            op.ro()?;
            chmod_checked(c, &op, sub, h, &st, if sys == fchmod { a[1] } else { a[2] } as u32)
        }
        fchown | fchownat => {
            op.ro()?;
            let (uid, gid) = if sys == fchown { (a[1], a[2]) } else { (a[2], a[3]) };
            chown_checked(c, &op, sub, h, &st, uid as u32, gid as u32)
        }
        ftruncate => {
            if f.flags & libc::O_ACCMODE == libc::O_RDONLY || is_dir(&st) {
                return Err(libc::EINVAL);
            }
            if (a[1] as i64) < 0 {
                return Err(libc::EINVAL);
            }
            f.module.truncate(m.mnt, sub, h, a[1] as i64)?;
            done("served ftruncate")
        }
        fstatfs => statfs_out(c, &op, sub, a[1]),
        fgetxattr => xattr_get(c, &op, sub, h, &st, a[1], a[2], a[3]),
        flistxattr => xattr_list(c, &op, sub, h, a[1], a[2]),
        fsetxattr => xattr_set(c, &op, sub, h, &st, [a[1], a[2], a[3], a[4]]),
        fremovexattr => xattr_remove(c, &op, sub, h, &st, a[1]),
        _ => {
            // utimensat(fd, NULL, times, 0), futimesat(fd, NULL, times)
            let tv = read_times(c, sys, a)?;
            utimens_checked(c, &op, sub, h, &st, tv)
        }
    }
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
        // Record locks are not kept for served files (documented in docs/modules.md).
        libc::F_GETLK
        | libc::F_SETLK
        | libc::F_SETLKW
        | libc::F_OFD_GETLK
        | libc::F_OFD_SETLK
        | libc::F_OFD_SETLKW => err(libc::ENOLCK),
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

/// dup2 of a virtual file onto a real number: the caller gets its own description of a
/// shadow copy there (vfd/shadow.rs, tracer/materialize.rs).
fn materialize(
    c: &Caller,
    f: &Arc<OpenFile>,
    newfd: i32,
    cloexec: bool,
    scratch: &mut Scratch,
) -> Result<Decision, Outcome> {
    let _ = c;
    let plan = shadow_plan(f, Then::Dup { newfd, cloexec }, scratch)?;
    Ok(Decision {
        action: Action::Materialize(std::sync::Arc::new(parking_lot::Mutex::new(Some(plan)))),
        exit: None,
        note: crate::note!("shadow copy of {} at fd {newfd}", f.path),
    })
}

/// A shadow copy of `f` for the caller to `then` (a writable one is tracked, so that its
/// changes go back to the module).
fn shadow_plan(f: &Arc<OpenFile>, then: Then, scratch: &mut Scratch) -> Result<Plan, Outcome> {
    let memfd = shadow::copy(f).map_err(fail)?;
    let offset = *f.offset.lock();
    let flags = shadow::open_flags(f);
    // The notification engine installs a description vurs opens; the ptrace engine has the
    // tracee open one (vurs must not hold a writable one: its release is the signal).
    let desc = match scratch.local.is_some() {
        true => Some(shadow::reopen(&memfd, f, offset).map_err(fail)?),
        false => None,
    };
    if flags & libc::O_ACCMODE != libc::O_RDONLY {
        let copy = memfd.try_clone().map_err(|_| fail(libc::EMFILE))?;
        shadow::track(f.clone(), copy).map_err(fail)?;
    }
    let path_addr = scratch.put_cstr(shadow::proc_path(&memfd).as_bytes())?;
    Ok(Plan { path_addr, flags, offset, then, memfd: memfd.into(), desc })
}

/// mmap of a virtual descriptor: of a shadow copy, which the caller opens with the
/// virtual file's access mode (so the kernel's EACCES rules hold). A shared writable
/// mapping writes the copy, which goes back to the module (vfd/shadow.rs).
fn mmap(c: &Caller, a: [u64; 6], scratch: &mut Scratch) -> Result<Decision, Outcome> {
    if a[3] & libc::MAP_ANONYMOUS as u64 != 0 {
        return Err(Outcome::Pass); // the descriptor is ignored
    }
    let e = entry(c, a[4] as i32)?;
    let st = e.file.module.fstat(e.file.handle).map_err(fail)?;
    if st.mode & libc::S_IFMT != libc::S_IFREG {
        return Ok(err(libc::ENODEV));
    }
    let plan = shadow_plan(&e.file, Then::Mmap { args: a }, scratch)?;
    Ok(Decision {
        action: Action::Materialize(std::sync::Arc::new(parking_lot::Mutex::new(Some(plan)))),
        exit: None,
        note: crate::note!("mmap of a shadow copy of {}", e.file.path),
    })
}

/// Executing a served file: the kernel needs a real file, so the program is copied into
/// a memfd and the call names /proc/<vurs>/fd/<memfd> instead (kept open until the process
/// execs again). `check` is the module's answer for the file and the caller's permission.
fn exec_image(
    c: &Caller,
    module: &crate::module::Module,
    handle: usize,
    virt: &str,
    scratch: &mut Scratch,
) -> Result<u64, Outcome> {
    let image = shadow::copy_handle(module, handle, virt).map_err(fail)?;
    let path = scratch.put_cstr(shadow::proc_path(&image).as_bytes())?;
    shadow::keep_exec_image(c.tgid, image);
    Ok(path)
}

/// Whether the object may be executed by the caller: a regular file with permission.
fn may_exec(op: &Op<'_>, st: &vurs_stat) -> Result<(), i32> {
    if st.mode & libc::S_IFMT != libc::S_IFREG {
        return Err(libc::EACCES);
    }
    // Root too needs an x bit somewhere (`check` says so).
    if op.own {
        return Ok(());
    }
    check(op.c, &Who::fs(op.c), st, MAY_EXEC).map_err(|_| libc::EACCES)
}

/// fexecve of a virtual descriptor: execveat of its image.
fn exec_virtual(c: &Caller, call: &Call, f: &OpenFile, scratch: &mut Scratch) -> Result<Decision, Outcome> {
    let st = f.module.fstat(f.handle).map_err(fail)?;
    let op = Op::new(c, &f.mount);
    may_exec(&op, &st).map_err(fail)?;
    let mut args = call.args;
    args[0] = libc::AT_FDCWD as u64;
    args[1] = exec_image(c, &f.module, f.handle, &f.path, scratch)?;
    args[4] &= !(libc::AT_EMPTY_PATH as u64);
    Ok(Decision {
        action: Action::Rewrite(args),
        exit: None,
        note: crate::note!("exec of a copy of {}", f.path),
    })
}

/// execve/execveat of a path in a served mount (`raw`: the path as the caller gave it).
/// A `#!` script runs its interpreter with the script's path as given (the interpreter
/// then reads it through the mount); a binary runs from a copy (`exec_image`).
pub fn exec_call(
    mounts: &crate::path::mounts::MountTable,
    c: &Caller,
    call: &Call,
    sp: &ServedPath<'_>,
    raw: &[u8],
    scratch: &mut Scratch,
) -> Decision {
    shadow::sync();
    let r = (|| -> Result<Decision, Outcome> {
        let m = sp.m;
        let sub = mounts::subpath(sp.virt, m.target.as_bytes());
        let op = Op::new(c, m);
        op.walk(sub).map_err(fail)?;
        let st = op.stat(sub).map_err(fail)?;
        if sp.trailing_slash {
            return Err(fail(if is_dir(&st) { libc::EACCES } else { libc::ENOTDIR }));
        }
        may_exec(&op, &st).map_err(fail)?;
        let h = m.module.open(m.mnt, sub, libc::O_RDONLY, 0).map_err(fail)?;
        struct Close<'a>(&'a crate::module::Module, usize);
        impl Drop for Close<'_> {
            fn drop(&mut self) {
                self.0.close(self.1);
            }
        }
        let _close = Close(&m.module, h);
        let mut head = [0u8; 256];
        let n = m.module.pread(h, &mut head, 0).map_err(fail)?;
        let path_arg = if call.nr == libc::SYS_execveat { 1 } else { 0 };
        let mut args = call.args;
        if let Some(sb) = crate::dispatch::exec::shebang_of(&head[..n]) {
            let resolver = crate::dispatch::resolver(mounts, c);
            let cwd = || crate::dispatch::cwd(mounts, c).unwrap_or_else(|| b"/".to_vec());
            let sc = crate::dispatch::exec::ScriptCall {
                script_host: b"",
                script_arg: raw,
                script_in_mount: true,
                argv: call.args[path_arg + 1],
                tid: c.tid,
            };
            let (path, argv) = crate::dispatch::exec::interpreter_args(&resolver, &cwd, sb, &sc, scratch)?;
            args[path_arg] = path;
            args[path_arg + 1] = argv;
            let note = crate::note!("script {} run by its interpreter", String::from_utf8_lossy(sp.virt));
            return Ok(Decision { action: Action::Rewrite(args), exit: None, note });
        }
        let virt = String::from_utf8_lossy(sp.virt).into_owned();
        args[path_arg] = exec_image(c, &m.module, h, &virt, scratch)?;
        Ok(Decision {
            action: Action::Rewrite(args),
            exit: None,
            note: crate::note!("exec of a copy of {virt}"),
        })
    })();
    match r {
        Ok(d) => d,
        Err(Outcome::Fail(e)) => err(e.0),
        Err(o) => o.into(),
    }
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

/// Calls whose descriptors are in the caller's memory (pollfd arrays, fd_sets, SCM_RIGHTS):
/// the filter cannot see them, so poll, ppoll and sendmsg trap in every process once a
/// serving module is loaded (select and pselect6 only when nfds reaches the virtual range),
/// and pass at once when the caller has no virtual descriptor.
fn fd_set_call(nr: i64) -> bool {
    matches!(nr, libc::SYS_poll | libc::SYS_ppoll | libc::SYS_select | libc::SYS_pselect6 | libc::SYS_sendmsg)
}

fn fd_set_inner(c: &Caller, call: &Call) -> Result<Decision, Outcome> {
    if c.fds.lock().is_empty() {
        return Err(Outcome::Pass);
    }
    match call.nr {
        libc::SYS_poll | libc::SYS_ppoll => poll(c, call.args[0], call.args[1]),
        libc::SYS_select | libc::SYS_pselect6 => select(c, call.args),
        _ => {
            shadow::sync();
            send_rights(c, call.args)
        }
    }
}

/// What poll says of a served file: ready for reading and writing, as a regular file (and
/// a FUSE file without a poll operation); None for a number the caller does not have.
fn virtual_revents(c: &Caller, fd: i32, events: i16) -> i16 {
    const READY: i16 = libc::POLLIN | libc::POLLOUT | libc::POLLRDNORM | libc::POLLWRNORM;
    match c.fds.lock().get(fd) {
        Some(_) => events & READY,
        None => libc::POLLNVAL,
    }
}

/// The caller's real descriptors polled now (timeout 0) from copies in vurs: revents per
/// descriptor (POLLNVAL for one the caller does not have).
fn poll_real(c: &Caller, fds: &[(i32, i16)]) -> Vec<i16> {
    let mut copies = Vec::with_capacity(fds.len());
    let mut pfds = Vec::with_capacity(fds.len());
    for &(fd, events) in fds {
        match crate::tracee::seccomp::caller_fd(c.tgid, fd) {
            Ok(copy) => {
                pfds.push(libc::pollfd { fd: std::os::fd::AsRawFd::as_raw_fd(&copy), events, revents: 0 });
                copies.push(copy);
            }
            Err(_) => pfds.push(libc::pollfd { fd: -1, events: 0, revents: libc::POLLNVAL }),
        }
    }
    let nval: Vec<bool> = pfds.iter().map(|p| p.fd < 0).collect();
    let _ = crate::tracee::sys::poll_now(&mut pfds);
    pfds.iter().zip(nval).map(|(p, bad)| if bad { libc::POLLNVAL } else { p.revents }).collect()
}

/// poll/ppoll with virtual descriptors in the set. A served file is always ready for
/// what it is asked (as a regular file), so such a call returns at once: the real
/// descriptors are polled with a timeout of 0 and every revents written back. When no
/// virtual entry asks for reading or writing, the kernel runs the call (virtual entries
/// then report POLLNVAL: documented).
fn poll(c: &Caller, addr: u64, n: u64) -> Result<Decision, Outcome> {
    if n == 0 || n > 1 << 20 {
        return Err(Outcome::Pass);
    }
    let mut raw = vec![0u8; n as usize * 8];
    memory::read(c.tid, addr, &mut raw).map_err(|e| fail(e.errno()))?;
    let entries: Vec<(i32, i16)> = raw
        .chunks(8)
        .map(|e| {
            (
                i32::from_ne_bytes(e[..4].try_into().expect("4")),
                i16::from_ne_bytes(e[4..6].try_into().expect("2")),
            )
        })
        .collect();
    let mut revents = vec![0i16; entries.len()];
    let mut ready = false;
    let mut real = Vec::new();
    for (i, &(fd, events)) in entries.iter().enumerate() {
        if crate::vfd::is_virtual(fd as i64) {
            revents[i] = virtual_revents(c, fd, events);
            ready |= revents[i] != 0;
        } else if fd >= 0 {
            real.push((i, fd, events));
        }
    }
    if !ready {
        return Err(Outcome::Pass);
    }
    let asked: Vec<(i32, i16)> = real.iter().map(|&(_, fd, ev)| (fd, ev)).collect();
    for (&(i, _, ev), r) in real.iter().zip(poll_real(c, &asked)) {
        // POLLERR, POLLHUP and POLLNVAL are reported whatever was asked.
        revents[i] = r & (ev | libc::POLLERR | libc::POLLHUP | libc::POLLNVAL);
    }
    for (i, r) in revents.iter().enumerate() {
        raw[i * 8 + 6..i * 8 + 8].copy_from_slice(&r.to_ne_bytes());
    }
    memory::write(c.tid, addr, &raw).map_err(|e| fail(e.errno()))?;
    Ok(ok(revents.iter().filter(|&&r| r != 0).count() as i64, "served poll"))
}

/// select/pselect6 whose nfds reaches the virtual range (fd_sets of nfds bits, as the
/// kernel reads them): as poll, virtual descriptors in the read and write sets are ready,
/// the call returns at once with the real ones polled now.
fn select(c: &Caller, a: [u64; 6]) -> Result<Decision, Outcome> {
    let nfds = a[0] as i32;
    if nfds <= vfd_base() {
        return Err(Outcome::Pass);
    }
    let words = (nfds as usize).div_ceil(64);
    let read_set = |addr: u64| -> Result<Option<Vec<u64>>, Outcome> {
        if addr == 0 {
            return Ok(None);
        }
        let mut b = vec![0u8; words * 8];
        memory::read(c.tid, addr, &mut b).map_err(|e| fail(e.errno()))?;
        Ok(Some(b.chunks(8).map(|w| u64::from_ne_bytes(w.try_into().expect("8"))).collect()))
    };
    let sets = [read_set(a[1])?, read_set(a[2])?, read_set(a[3])?];
    // The descriptors named in any set, with the poll events each set asks.
    let asks = [libc::POLLIN, libc::POLLOUT, libc::POLLPRI];
    let mut named: std::collections::BTreeMap<i32, i16> = Default::default();
    for (set, ask) in sets.iter().zip(asks) {
        let Some(set) = set else { continue };
        for (w, &bits) in set.iter().enumerate() {
            let mut bits = bits;
            while bits != 0 {
                let fd = (w * 64) as i32 + bits.trailing_zeros() as i32;
                bits &= bits - 1;
                if fd < nfds {
                    *named.entry(fd).or_default() |= ask;
                }
            }
        }
    }
    let mut result: std::collections::BTreeMap<i32, i16> = Default::default();
    let mut ready = false;
    let mut real = Vec::new();
    for (&fd, &ev) in &named {
        if crate::vfd::is_virtual(fd as i64) {
            let r = virtual_revents(c, fd, ev);
            if r == libc::POLLNVAL {
                return Ok(err(libc::EBADF));
            }
            ready |= r != 0;
            result.insert(fd, r);
        } else {
            real.push((fd, libc::POLLIN | libc::POLLOUT | libc::POLLPRI));
        }
    }
    if !ready {
        return Err(Outcome::Pass);
    }
    for (&(fd, _), r) in real.iter().zip(poll_real(c, &real)) {
        if r & libc::POLLNVAL != 0 {
            return Ok(err(libc::EBADF));
        }
        result.insert(fd, r);
    }
    // The kernel's mapping of poll bits to the three sets (fs/select.c POLL*_SET).
    let in_set = libc::POLLIN | libc::POLLRDNORM | libc::POLLRDBAND | libc::POLLHUP | libc::POLLERR;
    let out_set = libc::POLLOUT | libc::POLLWRNORM | libc::POLLWRBAND | libc::POLLERR;
    let masks = [in_set, out_set, libc::POLLPRI];
    let mut count = 0i64;
    for ((set, addr), mask) in sets.iter().zip([a[1], a[2], a[3]]).zip(masks) {
        let Some(set) = set else { continue };
        let mut out = vec![0u64; set.len()];
        for (&fd, &r) in &result {
            let (w, b) = (fd as usize / 64, fd as usize % 64);
            if set[w] & (1 << b) != 0 && r & mask != 0 {
                out[w] |= 1 << b;
                count += 1;
            }
        }
        let bytes: Vec<u8> = out.iter().flat_map(|w| w.to_ne_bytes()).collect();
        memory::write(c.tid, addr, &bytes).map_err(|e| fail(e.errno()))?;
    }
    Ok(ok(count, "served select"))
}

/// sendmsg with a virtual descriptor in SCM_RIGHTS: vurs sends the message itself, from a
/// copy of the caller's socket, with the caller's description of a shadow copy
/// (vfd/shadow.rs) in place of each virtual descriptor: the receiver gets a real
/// descriptor of the file's contents. Sent with MSG_DONTWAIT | MSG_NOSIGNAL (a full socket
/// buffer is EAGAIN, a closed peer EPIPE without SIGPIPE); other control messages go.
fn send_rights(c: &Caller, a: [u64; 6]) -> Result<Decision, Outcome> {
    let mut h = [0u8; 56];
    memory::read(c.tid, a[1], &mut h).map_err(|e| fail(e.errno()))?;
    let w = |i: usize| u64::from_ne_bytes(h[i..i + 8].try_into().expect("8"));
    let (name, namelen, iov, iovlen, control, controllen) = (w(0), w(8) as u32, w(16), w(24), w(32), w(40));
    if control == 0 || !(16..=1 << 16).contains(&controllen) {
        return Err(Outcome::Pass);
    }
    let mut ctl = vec![0u8; controllen as usize];
    memory::read(c.tid, control, &mut ctl).map_err(|e| fail(e.errno()))?;
    let mut fds = Vec::new();
    let mut i = 0usize;
    while i + 16 <= ctl.len() {
        let len = u64::from_ne_bytes(ctl[i..i + 8].try_into().expect("8")) as usize;
        let level = i32::from_ne_bytes(ctl[i + 8..i + 12].try_into().expect("4"));
        let kind = i32::from_ne_bytes(ctl[i + 12..i + 16].try_into().expect("4"));
        if len < 16 || i + len > ctl.len() {
            break;
        }
        if level == libc::SOL_SOCKET && kind == libc::SCM_RIGHTS {
            fds.extend(
                ctl[i + 16..i + len].chunks_exact(4).map(|b| i32::from_ne_bytes(b.try_into().expect("4"))),
            );
        }
        i += (len + 7) & !7;
    }
    if !fds.iter().any(|&fd| crate::vfd::is_virtual(fd as i64)) {
        return Err(Outcome::Pass);
    }
    // What goes in the message: a description per descriptor, held until it is sent.
    let mut held: Vec<std::os::fd::OwnedFd> = Vec::new();
    for &fd in &fds {
        let d = if crate::vfd::is_virtual(fd as i64) {
            let e = entry(c, fd)?;
            let f = &e.file;
            let memfd = shadow::copy(f).map_err(fail)?;
            let desc = shadow::reopen(&memfd, f, *f.offset.lock()).map_err(fail)?;
            if shadow::open_flags(f) & libc::O_ACCMODE != libc::O_RDONLY {
                shadow::track(f.clone(), memfd).map_err(fail)?;
            }
            desc
        } else {
            crate::tracee::seccomp::caller_fd(c.tgid, fd).map_err(|_| fail(libc::EBADF))?
        };
        held.push(d);
    }
    let mut data = Vec::new();
    for (b, l) in iovecs(c, iov, iovlen)? {
        let mut chunk = vec![0u8; l.min(MAX_IO.saturating_sub(data.len()))];
        memory::read(c.tid, b, &mut chunk).map_err(|e| fail(e.errno()))?;
        data.extend_from_slice(&chunk);
    }
    let mut addr = vec![0u8; if name != 0 { namelen.min(128) as usize } else { 0 }];
    if !addr.is_empty() {
        memory::read(c.tid, name, &mut addr).map_err(|e| fail(e.errno()))?;
    }
    let sock = crate::tracee::seccomp::caller_fd(c.tgid, a[0] as i32).map_err(|_| fail(libc::EBADF))?;
    let raw: Vec<i32> = held.iter().map(std::os::fd::AsRawFd::as_raw_fd).collect();
    let flags = a[2] as i32 | libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
    match crate::tracee::sys::sendmsg_rights(&sock, &data, &addr, &raw, flags) {
        Ok(n) => Ok(ok(n as i64, "served sendmsg (shadow copies passed)")),
        Err(e) => Ok(err(e.raw_os_error().unwrap_or(libc::EIO))),
    }
}
