//! fakeroot: the session believes it runs as root, and what root would have done to files
//! (chown, chmod of any bit, mknod of devices, security/trusted xattrs) is remembered in a
//! database instead of done, as fakeroot and pseudo do, but at the system-call level: static
//! binaries and raw system calls are covered too. The host never changes beyond what the
//! real user could do: chown is not attempted, chmod sets what the user may (the owner
//! keeps read and write), mknod of a device makes an empty regular file.
//!
//! `-m fakeroot[,db=FILE][,uid=N,gid=N]`: the fake ids (default 0/0); FILE keeps the
//! database between sessions (see db.rs). Choices are written in docs/shipped-modules.md.
use parking_lot::Mutex;
use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use vurs_abi::sdk::{Call, CallerInfo, Errno, Ids, Module, Options, Services, Verdict};
use vurs_abi::*;

mod db;
use db::{Db, DbFile, Entry, Key};

const S_IFMT: u32 = libc::S_IFMT;
const SYS_FCHMODAT2: i64 = 452;
/// The highest capability number of Linux 6.x (CAP_CHECKPOINT_RESTORE).
const CAP_LAST_CAP: u32 = 40;

/// What a handler that answered PASS_EXIT needs at the exit of the same call.
enum Pending {
    Chmod { key: Key, perm: u32, path: Vec<u8> },
    Mknod { dev_node: (u32, u64), perm: u32, path: Vec<u8> },
    Remove { key: Key, last: bool, path: Vec<u8> },
    Rename { from: Option<(Key, Vec<u8>)>, to: Option<(Key, bool)>, to_path: Vec<u8>, exchange: bool },
    Link { key: Key, path: Vec<u8> },
    ListXattr { key: Key },
}

pub struct Fakeroot {
    fake_uid: u32,
    fake_gid: u32,
    /// vurs's own ids: a file they own shows the fake ids unless the database says more.
    real_uid: u32,
    real_gid: u32,
    db: Mutex<Db>,
    file: Option<DbFile>,
    svc: Services,
    /// Processes that have been given their fake ids (or inherited them).
    seen: Mutex<HashSet<i32>>,
    /// Per thread: what the exit of its current call needs.
    pending: Mutex<HashMap<i32, Pending>>,
    /// When the file was last written, and whether changes wait for the next write.
    saved: Mutex<(std::time::Instant, bool)>,
}

/// Changes are written at most this often (each write is the whole file), and at exit.
const SAVE_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

impl Drop for Fakeroot {
    fn drop(&mut self) {
        if self.saved.lock().1 {
            self.save(&self.db.lock());
        }
    }
}

thread_local! {
    /// Arguments a PASS_EXIT verdict rewrites (see `syscall_with_rewrite`).
    static REWRITE: Cell<Option<(u32, [u64; 6])>> = const { Cell::new(None) };
}

fn ret(v: i64) -> Verdict {
    Verdict::Return(v)
}
fn fail(e: i32) -> Verdict {
    Verdict::Return(-(e as i64))
}

/// Let the call go on with argument `i` replaced, and see its exit.
fn pass_exit_with(i: usize, v: u64) -> Verdict {
    let mut args = [0u64; 6];
    args[i] = v;
    REWRITE.with(|r| r.set(Some((1 << i, args))));
    Verdict::PassExit
}

/// A file a call names: (dirfd, path, flags for stat_at).
struct Target {
    dirfd: i32,
    path: Vec<u8>,
    flags: i32,
}

impl Target {
    fn path(call: &Call<'_>, dirfd: i32, arg: usize, flags: i32) -> Result<Target, Errno> {
        Ok(Target { dirfd, path: call.read_string(call.arg(arg), 4096)?, flags })
    }
    fn fd(fd: i32) -> Target {
        Target { dirfd: fd, path: Vec::new(), flags: libc::AT_EMPTY_PATH }
    }
    fn stat(&self, call: &Call<'_>) -> Result<vurs_stat, Errno> {
        call.stat_at(self.dirfd, &self.path, self.flags)
    }
    /// An absolute path of the file (for revalidation on load; not canonical).
    fn absolute(&self, call: &Call<'_>) -> Vec<u8> {
        if self.path.first() == Some(&b'/') {
            return self.path.clone();
        }
        let base = if self.dirfd == libc::AT_FDCWD {
            call.cwd().unwrap_or_default()
        } else {
            std::fs::read_link(format!("/proc/{}/fd/{}", call.pid(), self.dirfd))
                .map(|p| std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str()).to_vec())
                .unwrap_or_default()
        };
        if self.path.is_empty() {
            return base;
        }
        let mut p = base;
        if !p.ends_with(b"/") {
            p.push(b'/');
        }
        p.extend_from_slice(&self.path);
        p
    }
}

fn key(st: &vurs_stat) -> Key {
    (st.dev, st.ino)
}

fn nofollow(flags: u64) -> i32 {
    (flags as i32) & (libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH)
}

impl Fakeroot {
    fn root_ids(&self) -> Ids {
        let (u, g) = (self.fake_uid, self.fake_gid);
        Ids { uid: u, euid: u, suid: u, fsuid: u, gid: g, egid: g, sgid: g, fsgid: g, groups: vec![g] }
    }

    /// The caller's fake ids. A process met for the first time still showing the kernel's
    /// ids (none of its ancestors had fake ones yet) is given the fake root's.
    fn ids(&self, call: &Call<'_>) -> Ids {
        let c: CallerInfo = call.caller();
        if self.seen.lock().insert(c.pid) {
            let i = &c.ids;
            let real = [i.uid, i.euid, i.suid, i.fsuid] == [self.real_uid; 4]
                && [i.gid, i.egid, i.sgid, i.fsgid] == [self.real_gid; 4];
            if real {
                let ids = self.root_ids();
                let _ = call.set_ids(&ids);
                return ids;
            }
        }
        c.ids
    }

    fn set(&self, call: &Call<'_>, ids: Ids) -> Verdict {
        match call.set_ids(&ids) {
            Ok(()) => ret(0),
            Err(Errno(e)) => fail(e),
        }
    }

    /// The database changed: save it when there is a file and the last write is old
    /// enough (else the next change or the exit writes it).
    fn changed(&self, db: &Db) {
        let mut saved = self.saved.lock();
        if saved.0.elapsed() < SAVE_EVERY {
            saved.1 = true;
            return;
        }
        *saved = (std::time::Instant::now(), false);
        drop(saved);
        self.save(db);
    }

    /// Write the database atomically.
    fn save(&self, db: &Db) {
        if let Some(f) = &self.file {
            if let Err(e) = f.save(&db.to_text()) {
                self.svc.log(VURS_LOG_ERROR, "fakeroot", &format!("cannot save {}: {e}", f.path.display()));
            }
        }
    }

    fn record(&self, k: Key, path: Vec<u8>, f: impl FnOnce(&mut Entry)) {
        let mut db = self.db.lock();
        let e = db.entries.entry(k).or_default();
        if !path.is_empty() && !e.paths.contains(&path) {
            e.paths.push(path);
        }
        f(e);
        self.changed(&db);
    }

    /// What the session shows for a file the kernel reported as (uid, gid, mode, rdev).
    fn shown(&self, k: Key, uid: u32, gid: u32, mode: u32, rdev: u64) -> (u32, u32, u32, u64) {
        let db = self.db.lock();
        let e = db.entries.get(&k);
        let uid = e.and_then(|e| e.uid).unwrap_or(if uid == self.real_uid { self.fake_uid } else { uid });
        let gid = e.and_then(|e| e.gid).unwrap_or(if gid == self.real_gid { self.fake_gid } else { gid });
        let mut mode = mode;
        let mut rdev = rdev;
        if let Some(e) = e {
            if let Some((ty, r)) = e.dev_node {
                mode = ty | (mode & 0o7777);
                rdev = r;
            }
            if let Some(p) = e.perm {
                mode = (mode & S_IFMT) | p;
            }
        }
        (uid, gid, mode, rdev)
    }

    fn pend(&self, call: &Call<'_>, p: Pending) {
        self.pending.lock().insert(call.caller().tid, p);
    }

    fn id_call(&self, call: &Call<'_>, nr: i64) -> Verdict {
        let mut ids = self.ids(call);
        let root = ids.euid == 0;
        let a = |i: usize| call.arg(i) as u32;
        let keep = u32::MAX;
        match nr {
            libc::SYS_getuid => ret(ids.uid as i64),
            libc::SYS_geteuid => ret(ids.euid as i64),
            libc::SYS_getgid => ret(ids.gid as i64),
            libc::SYS_getegid => ret(ids.egid as i64),
            libc::SYS_getresuid | libc::SYS_getresgid => {
                let v = if nr == libc::SYS_getresuid {
                    [ids.uid, ids.euid, ids.suid]
                } else {
                    [ids.gid, ids.egid, ids.sgid]
                };
                for (i, v) in v.iter().enumerate() {
                    if call.write_pod(call.arg(i), v).is_err() {
                        return fail(libc::EFAULT);
                    }
                }
                ret(0)
            }
            libc::SYS_getgroups => {
                let size = call.arg(0) as i32;
                let n = ids.groups.len();
                if size == 0 {
                    return ret(n as i64);
                }
                if size < 0 || (size as usize) < n {
                    return fail(libc::EINVAL);
                }
                let bytes: Vec<u8> = ids.groups.iter().flat_map(|g| g.to_ne_bytes()).collect();
                match call.write(call.arg(1), &bytes) {
                    Ok(()) => ret(n as i64),
                    Err(_) => fail(libc::EFAULT),
                }
            }
            libc::SYS_setgroups => {
                if !root {
                    return fail(libc::EPERM);
                }
                let n = call.arg(0) as usize;
                if n > 65536 {
                    return fail(libc::EINVAL);
                }
                let mut b = vec![0u8; n * 4];
                if n > 0 && call.read(call.arg(1), &mut b).is_err() {
                    return fail(libc::EFAULT);
                }
                ids.groups = b.chunks(4).map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]])).collect();
                self.set(call, ids)
            }
            // The kernel's rules for each call, with the fake ids (CAP_SETUID/CAP_SETGID
            // = fake euid 0).
            libc::SYS_setuid | libc::SYS_setgid => {
                let u = a(0);
                let user = nr == libc::SYS_setuid;
                let (r, e, s, f) = if user {
                    (&mut ids.uid, &mut ids.euid, &mut ids.suid, &mut ids.fsuid)
                } else {
                    (&mut ids.gid, &mut ids.egid, &mut ids.sgid, &mut ids.fsgid)
                };
                if root {
                    (*r, *e, *s, *f) = (u, u, u, u);
                } else if u == *r || u == *s {
                    (*e, *f) = (u, u);
                } else {
                    return fail(libc::EPERM);
                }
                self.set(call, ids)
            }
            libc::SYS_setreuid | libc::SYS_setregid => {
                let (nr_, ne) = (a(0), a(1));
                let user = nr == libc::SYS_setreuid;
                let (r, e, s, f) = if user {
                    (&mut ids.uid, &mut ids.euid, &mut ids.suid, &mut ids.fsuid)
                } else {
                    (&mut ids.gid, &mut ids.egid, &mut ids.sgid, &mut ids.fsgid)
                };
                let old_r = *r;
                if !root
                    && ((nr_ != keep && nr_ != *r && nr_ != *e)
                        || (ne != keep && ne != *r && ne != *e && ne != *s))
                {
                    return fail(libc::EPERM);
                }
                if nr_ != keep {
                    *r = nr_;
                }
                if ne != keep {
                    *e = ne;
                }
                if nr_ != keep || (ne != keep && ne != old_r) {
                    *s = *e;
                }
                *f = *e;
                self.set(call, ids)
            }
            libc::SYS_setresuid | libc::SYS_setresgid => {
                let v = [a(0), a(1), a(2)];
                let user = nr == libc::SYS_setresuid;
                let (r, e, s, f) = if user {
                    (&mut ids.uid, &mut ids.euid, &mut ids.suid, &mut ids.fsuid)
                } else {
                    (&mut ids.gid, &mut ids.egid, &mut ids.sgid, &mut ids.fsgid)
                };
                let allowed = [*r, *e, *s];
                if !root && v.iter().any(|&x| x != keep && !allowed.contains(&x)) {
                    return fail(libc::EPERM);
                }
                for (slot, x) in [r, e, s].into_iter().zip(v) {
                    if x != keep {
                        *slot = x;
                    }
                }
                *f = if user { ids.euid } else { ids.egid };
                self.set(call, ids)
            }
            libc::SYS_setfsuid | libc::SYS_setfsgid => {
                let u = a(0);
                let user = nr == libc::SYS_setfsuid;
                let allowed = if user {
                    [ids.uid, ids.euid, ids.suid, ids.fsuid]
                } else {
                    [ids.gid, ids.egid, ids.sgid, ids.fsgid]
                };
                let old = allowed[3];
                if u != keep && (root || allowed.contains(&u)) {
                    if user {
                        ids.fsuid = u;
                    } else {
                        ids.fsgid = u;
                    }
                    let _ = call.set_ids(&ids);
                }
                ret(old as i64)
            }
            libc::SYS_capget => {
                // struct __user_cap_header_struct { u32 version; int pid; }, then one data
                // struct (v1) or two (v2, v3) of {effective, permitted, inheritable}.
                let Ok(version) = call.read_pod::<u32>(call.arg(0)) else { return fail(libc::EFAULT) };
                let n = match version {
                    0x1998_0330 => 1,
                    0x2007_1026 | 0x2008_0522 => 2,
                    _ => {
                        let _ = call.write_pod(call.arg(0), &0x2008_0522u32);
                        return fail(libc::EINVAL);
                    }
                };
                if call.arg(1) == 0 {
                    return ret(0);
                }
                let full: [u32; 2] = if root { [u32::MAX, (1 << (CAP_LAST_CAP - 31)) - 1] } else { [0, 0] };
                let mut data = Vec::new();
                for w in full.iter().take(n) {
                    data.extend_from_slice(&[*w, *w, 0]);
                }
                let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_ne_bytes()).collect();
                match call.write(call.arg(1), &bytes) {
                    Ok(()) => ret(0),
                    Err(_) => fail(libc::EFAULT),
                }
            }
            libc::SYS_capset => {
                if root {
                    ret(0)
                } else {
                    fail(libc::EPERM)
                }
            }
            _ => Verdict::Pass,
        }
    }

    fn chown(&self, call: &Call<'_>, t: Target, uid: u32, gid: u32) -> Verdict {
        if self.ids(call).euid != 0 {
            return Verdict::Pass; // a fake non-root: the kernel's answer
        }
        let st = match t.stat(call) {
            Ok(st) => st,
            Err(Errno(e)) => return fail(e),
        };
        self.record(key(&st), t.absolute(call), |e| {
            if uid != u32::MAX {
                e.uid = Some(uid);
            }
            if gid != u32::MAX {
                e.gid = Some(gid);
            }
        });
        ret(0)
    }

    fn chmod(&self, call: &Call<'_>, t: Target, mode_arg: usize) -> Verdict {
        let Ok(st) = t.stat(call) else { return Verdict::Pass };
        let perm = call.arg(mode_arg) as u32 & 0o7777;
        // What the host gets: no set-id or sticky bit, and the owner keeps what it needs
        // to go on using the file.
        let owner = if st.mode & S_IFMT == libc::S_IFDIR { 0o700 } else { 0o600 };
        let host = (perm & 0o777) | owner;
        self.pend(call, Pending::Chmod { key: key(&st), perm, path: t.absolute(call) });
        pass_exit_with(mode_arg, host as u64)
    }

    fn mknod(&self, call: &Call<'_>, t: Target, mode_arg: usize) -> Verdict {
        let mode = call.arg(mode_arg) as u32;
        let ty = mode & S_IFMT;
        if (ty != libc::S_IFCHR && ty != libc::S_IFBLK) || self.ids(call).euid != 0 {
            return Verdict::Pass; // fifos, sockets, files: the kernel makes them
        }
        let rdev = call.arg(mode_arg + 1);
        let perm = mode & 0o7777 & !call.caller().umask;
        self.pend(call, Pending::Mknod { dev_node: (ty, rdev), perm, path: t.absolute(call) });
        let mut args = [0u64; 6];
        args[mode_arg] = (libc::S_IFREG | (mode & 0o777) | 0o600) as u64;
        args[mode_arg + 1] = 0;
        REWRITE.with(|r| r.set(Some(((1 << mode_arg) | (1 << (mode_arg + 1)), args))));
        let _ = t;
        Verdict::PassExit
    }

    /// An unlink or rmdir of a file the database knows: forget it at the exit if it was
    /// the last name.
    fn remove(&self, call: &Call<'_>, t: Target) -> Verdict {
        if self.db.lock().entries.is_empty() {
            return Verdict::Pass;
        }
        let t = Target { flags: libc::AT_SYMLINK_NOFOLLOW, ..t };
        let Ok(st) = t.stat(call) else { return Verdict::Pass };
        if !self.db.lock().entries.contains_key(&key(&st)) {
            return Verdict::Pass;
        }
        let last = st.mode & S_IFMT == libc::S_IFDIR || st.nlink <= 1;
        self.pend(call, Pending::Remove { key: key(&st), last, path: t.absolute(call) });
        Verdict::PassExit
    }

    fn rename(&self, call: &Call<'_>, from: Target, to: Target, flags: u64) -> Verdict {
        if self.db.lock().entries.is_empty() {
            return Verdict::Pass;
        }
        let (from, to) = (
            Target { flags: libc::AT_SYMLINK_NOFOLLOW, ..from },
            Target { flags: libc::AT_SYMLINK_NOFOLLOW, ..to },
        );
        let db = self.db.lock();
        let known = |t: &Target| t.stat(call).ok().filter(|st| db.entries.contains_key(&key(st)));
        let f = known(&from).map(|st| (key(&st), from.absolute(call)));
        let g = known(&to).filter(|st| f.as_ref().is_none_or(|(k, _)| *k != key(st)));
        drop(db);
        if f.is_none() && g.is_none() {
            return Verdict::Pass;
        }
        let to_path = to.absolute(call);
        let exchange = flags & libc::RENAME_EXCHANGE as u64 != 0;
        let g = g.map(|st| (key(&st), st.mode & S_IFMT == libc::S_IFDIR || st.nlink <= 1));
        self.pend(call, Pending::Rename { from: f, to: g, to_path, exchange });
        Verdict::PassExit
    }

    fn link(&self, call: &Call<'_>, from: Target, to: Target) -> Verdict {
        if self.db.lock().entries.is_empty() {
            return Verdict::Pass;
        }
        let Ok(st) = from.stat(call) else { return Verdict::Pass };
        if !self.db.lock().entries.contains_key(&key(&st)) {
            return Verdict::Pass;
        }
        self.pend(call, Pending::Link { key: key(&st), path: to.absolute(call) });
        Verdict::PassExit
    }

    fn is_ours(name: &[u8]) -> bool {
        name.starts_with(b"security.") || name.starts_with(b"trusted.")
    }

    fn setxattr(&self, call: &Call<'_>, t: Target) -> Verdict {
        let Ok(name) = call.read_string(call.arg(1), 256) else { return Verdict::Pass };
        if !Self::is_ours(&name) || self.ids(call).euid != 0 {
            return Verdict::Pass;
        }
        let st = match t.stat(call) {
            Ok(st) => st,
            Err(Errno(e)) => return fail(e),
        };
        let len = call.arg(3) as usize;
        if len > 65536 {
            return fail(libc::E2BIG);
        }
        let mut value = vec![0u8; len];
        if len > 0 && call.read(call.arg(2), &mut value).is_err() {
            return fail(libc::EFAULT);
        }
        let flags = call.arg(4) as i32;
        let exists = self.db.lock().entries.get(&key(&st)).is_some_and(|e| e.xattrs.contains_key(&name));
        if flags & libc::XATTR_CREATE != 0 && exists {
            return fail(libc::EEXIST);
        }
        if flags & libc::XATTR_REPLACE != 0 && !exists {
            return fail(libc::ENODATA);
        }
        self.record(key(&st), t.absolute(call), |e| {
            e.xattrs.insert(name, value);
        });
        ret(0)
    }

    fn getxattr(&self, call: &Call<'_>, t: Target) -> Verdict {
        let Ok(name) = call.read_string(call.arg(1), 256) else { return Verdict::Pass };
        if !Self::is_ours(&name) {
            return Verdict::Pass;
        }
        let Ok(st) = t.stat(call) else { return Verdict::Pass };
        let Some(v) = self.db.lock().entries.get(&key(&st)).and_then(|e| e.xattrs.get(&name).cloned()) else {
            return Verdict::Pass;
        };
        let size = call.arg(3) as usize;
        if size == 0 {
            return ret(v.len() as i64);
        }
        if size < v.len() {
            return fail(libc::ERANGE);
        }
        match call.write(call.arg(2), &v) {
            Ok(()) => ret(v.len() as i64),
            Err(_) => fail(libc::EFAULT),
        }
    }

    fn removexattr(&self, call: &Call<'_>, t: Target) -> Verdict {
        let Ok(name) = call.read_string(call.arg(1), 256) else { return Verdict::Pass };
        if !Self::is_ours(&name) {
            return Verdict::Pass;
        }
        let Ok(st) = t.stat(call) else { return Verdict::Pass };
        let mut db = self.db.lock();
        match db.entries.get_mut(&key(&st)).and_then(|e| e.xattrs.remove(&name)) {
            Some(_) => {
                self.changed(&db);
                ret(0)
            }
            None => Verdict::Pass,
        }
    }

    fn listxattr(&self, call: &Call<'_>, t: Target) -> Verdict {
        let Ok(st) = t.stat(call) else { return Verdict::Pass };
        if self.db.lock().entries.get(&key(&st)).is_none_or(|e| e.xattrs.is_empty()) {
            return Verdict::Pass;
        }
        self.pend(call, Pending::ListXattr { key: key(&st) });
        Verdict::PassExit
    }

    /// Patch the struct stat or statx the kernel wrote at `buf`.
    fn patch_stat(&self, call: &Call<'_>, buf: u64, statx: bool) {
        if statx {
            let Ok(mut b) = call.read_pod::<[u8; 144]>(buf) else { return };
            let u32at = |b: &[u8; 144], o: usize| u32::from_ne_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
            let ino = u64::from_ne_bytes(b[32..40].try_into().unwrap_or_default());
            let dev = libc::makedev(u32at(&b, 136), u32at(&b, 140));
            let rdev = libc::makedev(u32at(&b, 128), u32at(&b, 132));
            let mode = u16::from_ne_bytes([b[28], b[29]]) as u32;
            let (uid, gid) = (u32at(&b, 20), u32at(&b, 24));
            let shown = self.shown((dev, ino), uid, gid, mode, rdev);
            if shown == (uid, gid, mode, rdev) {
                return;
            }
            b[20..24].copy_from_slice(&shown.0.to_ne_bytes());
            b[24..28].copy_from_slice(&shown.1.to_ne_bytes());
            b[28..30].copy_from_slice(&(shown.2 as u16).to_ne_bytes());
            b[128..132].copy_from_slice(&libc::major(shown.3).to_ne_bytes());
            b[132..136].copy_from_slice(&libc::minor(shown.3).to_ne_bytes());
            let _ = call.write(buf, &b);
        } else {
            // struct stat (x86_64): dev @0, ino @8, mode @24, uid @28, gid @32, rdev @40.
            let Ok(mut b) = call.read_pod::<[u8; 48]>(buf) else { return };
            let u64at =
                |b: &[u8; 48], o: usize| u64::from_ne_bytes(b[o..o + 8].try_into().unwrap_or_default());
            let u32at =
                |b: &[u8; 48], o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().unwrap_or_default());
            let (dev, ino, rdev) = (u64at(&b, 0), u64at(&b, 8), u64at(&b, 40));
            let (mode, uid, gid) = (u32at(&b, 24), u32at(&b, 28), u32at(&b, 32));
            let shown = self.shown((dev, ino), uid, gid, mode, rdev);
            if shown == (uid, gid, mode, rdev) {
                return;
            }
            b[24..28].copy_from_slice(&shown.2.to_ne_bytes());
            b[28..32].copy_from_slice(&shown.0.to_ne_bytes());
            b[32..36].copy_from_slice(&shown.1.to_ne_bytes());
            b[40..48].copy_from_slice(&shown.3.to_ne_bytes());
            let _ = call.write(buf, &b);
        }
    }
}

fn parse_id(opts: &Options, k: &str) -> Result<u32, String> {
    match opts.get(k) {
        None => Ok(0),
        Some(v) => v.parse().map_err(|_| format!("{k}={v}: not a numeric id")),
    }
}

impl Module for Fakeroot {
    type Mount = ();

    fn init(svc: Services, opts: &Options) -> Result<Self, String> {
        for (k, _) in &opts.0 {
            if !["db", "uid", "gid"].contains(&k.as_str()) {
                return Err(format!("unknown option {k} (db=FILE, uid=N, gid=N)"));
            }
        }
        let (file, mut db) = match opts.get("db") {
            Some(p) => {
                let p = std::path::absolute(p).map_err(|e| format!("db={p}: {e}"))?;
                let (f, db) = DbFile::open(&p)?;
                (Some(f), db)
            }
            None => (None, Db::default()),
        };
        let dropped = db.revalidate();
        if dropped > 0 {
            svc.log(
                VURS_LOG_INFO,
                "fakeroot",
                &format!("{dropped} entries of files gone or replaced dropped"),
            );
        }
        let m = Fakeroot {
            fake_uid: parse_id(opts, "uid")?,
            fake_gid: parse_id(opts, "gid")?,
            // SAFETY: getuid/getgid cannot fail.
            real_uid: unsafe { libc::getuid() },
            // SAFETY: as above.
            real_gid: unsafe { libc::getgid() },
            db: Mutex::new(db),
            file,
            svc,
            seen: Default::default(),
            pending: Default::default(),
            saved: Mutex::new((std::time::Instant::now() - SAVE_EVERY, false)),
        };
        if dropped > 0 {
            m.changed(&m.db.lock());
        }
        Ok(m)
    }

    fn syscall(&self, call: &Call<'_>) -> Verdict {
        let nr = call.nr() as i64;
        let a = |i: usize| call.arg(i);
        let fd = |i: usize| a(i) as i32;
        let path = |dirfd: i32, arg: usize, flags: i32| Target::path(call, dirfd, arg, flags);
        let cwd = libc::AT_FDCWD;
        let nf = libc::AT_SYMLINK_NOFOLLOW;
        macro_rules! t {
            ($e:expr) => {
                match $e {
                    Ok(t) => t,
                    Err(_) => return Verdict::Pass, // the kernel reports the bad pointer
                }
            };
        }
        match nr {
            libc::SYS_stat | libc::SYS_lstat | libc::SYS_fstat | libc::SYS_newfstatat | libc::SYS_statx => {
                Verdict::PassExit
            }
            libc::SYS_chown => self.chown(call, t!(path(cwd, 0, 0)), a(1) as u32, a(2) as u32),
            libc::SYS_lchown => self.chown(call, t!(path(cwd, 0, nf)), a(1) as u32, a(2) as u32),
            libc::SYS_fchown => self.chown(call, Target::fd(fd(0)), a(1) as u32, a(2) as u32),
            libc::SYS_fchownat => {
                self.chown(call, t!(path(fd(0), 1, nofollow(a(4)))), a(2) as u32, a(3) as u32)
            }
            libc::SYS_chmod => self.chmod(call, t!(path(cwd, 0, 0)), 1),
            libc::SYS_fchmod => self.chmod(call, Target::fd(fd(0)), 1),
            libc::SYS_fchmodat => self.chmod(call, t!(path(fd(0), 1, 0)), 2),
            SYS_FCHMODAT2 => self.chmod(call, t!(path(fd(0), 1, nofollow(a(3)))), 2),
            libc::SYS_mknod => self.mknod(call, t!(path(cwd, 0, nf)), 1),
            libc::SYS_mknodat => self.mknod(call, t!(path(fd(0), 1, nf)), 2),
            libc::SYS_unlink | libc::SYS_rmdir => self.remove(call, t!(path(cwd, 0, nf))),
            libc::SYS_unlinkat => self.remove(call, t!(path(fd(0), 1, nf))),
            libc::SYS_rename => self.rename(call, t!(path(cwd, 0, nf)), t!(path(cwd, 1, nf)), 0),
            libc::SYS_renameat => self.rename(call, t!(path(fd(0), 1, nf)), t!(path(fd(2), 3, nf)), 0),
            libc::SYS_renameat2 => self.rename(call, t!(path(fd(0), 1, nf)), t!(path(fd(2), 3, nf)), a(4)),
            libc::SYS_link => self.link(call, t!(path(cwd, 0, nf)), t!(path(cwd, 1, nf))),
            libc::SYS_linkat => {
                let follow = if a(4) as i32 & libc::AT_SYMLINK_FOLLOW != 0 { 0 } else { nf };
                self.link(call, t!(path(fd(0), 1, follow | nofollow(a(4)))), t!(path(fd(2), 3, nf)))
            }
            libc::SYS_setxattr => self.setxattr(call, t!(path(cwd, 0, 0))),
            libc::SYS_lsetxattr => self.setxattr(call, t!(path(cwd, 0, nf))),
            libc::SYS_fsetxattr => self.setxattr(call, Target::fd(fd(0))),
            libc::SYS_getxattr => self.getxattr(call, t!(path(cwd, 0, 0))),
            libc::SYS_lgetxattr => self.getxattr(call, t!(path(cwd, 0, nf))),
            libc::SYS_fgetxattr => self.getxattr(call, Target::fd(fd(0))),
            libc::SYS_removexattr => self.removexattr(call, t!(path(cwd, 0, 0))),
            libc::SYS_lremovexattr => self.removexattr(call, t!(path(cwd, 0, nf))),
            libc::SYS_fremovexattr => self.removexattr(call, Target::fd(fd(0))),
            libc::SYS_listxattr => self.listxattr(call, t!(path(cwd, 0, 0))),
            libc::SYS_llistxattr => self.listxattr(call, t!(path(cwd, 0, nf))),
            libc::SYS_flistxattr => self.listxattr(call, Target::fd(fd(0))),
            _ => self.id_call(call, nr),
        }
    }

    fn syscall_exit(&self, call: &Call<'_>, retval: i64) -> i64 {
        let nr = call.nr() as i64;
        match nr {
            libc::SYS_stat | libc::SYS_lstat | libc::SYS_fstat => {
                if retval == 0 {
                    self.patch_stat(call, call.arg(1), false);
                }
                return retval;
            }
            libc::SYS_newfstatat => {
                if retval == 0 {
                    self.patch_stat(call, call.arg(2), false);
                }
                return retval;
            }
            libc::SYS_statx => {
                if retval == 0 {
                    self.patch_stat(call, call.arg(4), true);
                }
                return retval;
            }
            _ => {}
        }
        let Some(p) = self.pending.lock().remove(&call.caller().tid) else { return retval };
        match p {
            // Not the owner on the host: the session's root may still chmod it.
            Pending::Chmod { key, perm, path } if retval == 0 || retval == -(libc::EPERM as i64) => {
                self.record(key, path, |e| e.perm = Some(perm));
                0
            }
            Pending::Mknod { dev_node, perm, path } if retval == 0 => {
                if let Ok(st) = call.stat_at(libc::AT_FDCWD, &path, libc::AT_SYMLINK_NOFOLLOW) {
                    self.record(key(&st), path, |e| {
                        e.dev_node = Some(dev_node);
                        e.perm = Some(perm);
                    });
                }
                0
            }
            Pending::Remove { key, last, path } if retval == 0 => {
                let mut db = self.db.lock();
                if last {
                    db.entries.remove(&key);
                } else if let Some(e) = db.entries.get_mut(&key) {
                    e.paths.retain(|p| *p != path);
                }
                self.changed(&db);
                0
            }
            Pending::Rename { from, to, to_path, exchange } if retval == 0 => {
                let mut db = self.db.lock();
                let from_path = from.as_ref().map(|(_, p)| p.clone()).unwrap_or_default();
                if let Some((k, last)) = to {
                    if exchange {
                        if let Some(e) = db.entries.get_mut(&k) {
                            e.paths.retain(|p| *p != to_path);
                            e.paths.push(from_path.clone());
                        }
                    } else if last {
                        db.entries.remove(&k);
                    } else if let Some(e) = db.entries.get_mut(&k) {
                        e.paths.retain(|p| *p != to_path);
                    }
                }
                if let Some((k, old)) = from {
                    if let Some(e) = db.entries.get_mut(&k) {
                        e.paths.retain(|p| *p != old);
                        e.paths.push(to_path);
                    }
                }
                self.changed(&db);
                0
            }
            Pending::Link { key, path } if retval == 0 => {
                self.record(key, path, |_| {});
                0
            }
            Pending::ListXattr { key } if retval >= 0 => {
                let names: Vec<u8> = self
                    .db
                    .lock()
                    .entries
                    .get(&key)
                    .map(|e| e.xattrs.keys().flat_map(|n| n.iter().copied().chain([0])).collect())
                    .unwrap_or_default();
                let size = call.arg(2) as i64;
                let total = retval + names.len() as i64;
                if size == 0 {
                    return total;
                }
                if total > size {
                    return -(libc::ERANGE as i64);
                }
                match call.write(call.arg(1) + retval as u64, &names) {
                    Ok(()) => total,
                    Err(_) => -(libc::EFAULT as i64),
                }
            }
            _ => retval,
        }
    }
}

/// The SDK's syscall trampoline, plus the argument rewrite of a PASS_EXIT verdict (the
/// SDK's `Verdict::PassExit` carries none; vurs applies `args_mask` with PASS_EXIT as
/// with REWRITE).
///
/// # Safety
/// As `trampolines::syscall`: called by vurs with valid pointers.
unsafe extern "C" fn syscall_with_rewrite(
    inst: *mut std::ffi::c_void,
    call: *const vurs_call,
    res: *mut vurs_result,
) -> std::ffi::c_int {
    REWRITE.with(|r| r.set(None));
    // SAFETY: per this function's contract.
    let r = unsafe { vurs_abi::sdk::trampolines::syscall::<Fakeroot>(inst, call, res) };
    if let Some((mask, args)) = REWRITE.with(|r| r.take()) {
        // SAFETY: res is valid for the call (header contract).
        let res = unsafe { &mut *res };
        if res.verdict == VURS_PASS_EXIT {
            res.args_mask = mask;
            res.args = args;
        }
    }
    r
}

unsafe extern "C" fn init(
    svc: *const vurs_services,
    options: *const std::ffi::c_char,
    err: *mut std::ffi::c_char,
    errlen: usize,
) -> *mut std::ffi::c_void {
    // SAFETY: called by vurs with valid pointers (header contract).
    unsafe { vurs_abi::sdk::trampolines::init::<Fakeroot>(svc, options, err, errlen, "fakeroot") }
}

static SYSCALLS: &[i32] = &[
    libc::SYS_getuid as i32,
    libc::SYS_geteuid as i32,
    libc::SYS_getgid as i32,
    libc::SYS_getegid as i32,
    libc::SYS_getresuid as i32,
    libc::SYS_getresgid as i32,
    libc::SYS_getgroups as i32,
    libc::SYS_setuid as i32,
    libc::SYS_setgid as i32,
    libc::SYS_setreuid as i32,
    libc::SYS_setregid as i32,
    libc::SYS_setresuid as i32,
    libc::SYS_setresgid as i32,
    libc::SYS_setfsuid as i32,
    libc::SYS_setfsgid as i32,
    libc::SYS_setgroups as i32,
    libc::SYS_capget as i32,
    libc::SYS_capset as i32,
    libc::SYS_stat as i32,
    libc::SYS_lstat as i32,
    libc::SYS_fstat as i32,
    libc::SYS_newfstatat as i32,
    libc::SYS_statx as i32,
    libc::SYS_chown as i32,
    libc::SYS_lchown as i32,
    libc::SYS_fchown as i32,
    libc::SYS_fchownat as i32,
    libc::SYS_chmod as i32,
    libc::SYS_fchmod as i32,
    libc::SYS_fchmodat as i32,
    SYS_FCHMODAT2 as i32,
    libc::SYS_mknod as i32,
    libc::SYS_mknodat as i32,
    libc::SYS_unlink as i32,
    libc::SYS_unlinkat as i32,
    libc::SYS_rmdir as i32,
    libc::SYS_rename as i32,
    libc::SYS_renameat as i32,
    libc::SYS_renameat2 as i32,
    libc::SYS_link as i32,
    libc::SYS_linkat as i32,
    libc::SYS_setxattr as i32,
    libc::SYS_lsetxattr as i32,
    libc::SYS_fsetxattr as i32,
    libc::SYS_getxattr as i32,
    libc::SYS_lgetxattr as i32,
    libc::SYS_fgetxattr as i32,
    libc::SYS_listxattr as i32,
    libc::SYS_llistxattr as i32,
    libc::SYS_flistxattr as i32,
    libc::SYS_removexattr as i32,
    libc::SYS_lremovexattr as i32,
    libc::SYS_fremovexattr as i32,
];

/// The descriptor, written out rather than by `export_module!` for the one difference
/// above (`syscall_with_rewrite`).
#[no_mangle]
#[used]
pub static vurs_module_v1: ModuleExport = ModuleExport(vurs_module {
    abi_major: VURS_ABI_MAJOR,
    abi_minor: VURS_ABI_MINOR,
    size: std::mem::size_of::<vurs_module>() as u32,
    // VURS_F_CREDS: /proc/PID/status shows the fake ids too (vurs traps its open).
    flags: VURS_F_CREDS,
    name: c"fakeroot".as_ptr(),
    description: c"fake root: ownership, modes and devices remembered, not done".as_ptr(),
    syscalls: SYSCALLS.as_ptr(),
    nsyscalls: SYSCALLS.len() as u32,
    reserved: 0,
    init: Some(init),
    fini: Some(vurs_abi::sdk::trampolines::fini::<Fakeroot>),
    mount: None,
    umount: None,
    redirect: None,
    open: None,
    stat: None,
    readlink: None,
    pread: None,
    pwrite: None,
    fstat: None,
    readdir: None,
    close: None,
    syscall: Some(syscall_with_rewrite),
    auto_mounts: std::ptr::null(),
    mkdir: None,
    rmdir: None,
    unlink: None,
    rename: None,
    link: None,
    symlink: None,
    mknod: None,
    chmod: None,
    chown: None,
    truncate: None,
    utimens: None,
    statfs: None,
    fsync: None,
    getxattr: None,
    setxattr: None,
    listxattr: None,
    removexattr: None,
    access: None,
    proc_fork: None,
    proc_exec: None,
    proc_exit: None,
    syscall_exit: Some(vurs_abi::sdk::trampolines::syscall_exit::<Fakeroot>),
    clock: None,
    list: None,
});
