//! Safe Rust SDK for vurs modules: implement [`Module`] and export it with
//! [`export_module!`](crate::export_module). Every callback runs behind `catch_unwind`: a
//! panic becomes `-EIO` for the traced program and a logged line, never a dead session.
#![deny(unsafe_op_in_unsafe_fn)]
use crate::*;
use std::ffi::{CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// A negative-errno style error (`Errno(libc::ENOENT)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errno(
    /// The positive errno value (`libc::ENOENT`, ...).
    pub i32,
);

/// Plain old data: a type whose values may be read from and written to another process's
/// memory as raw bytes ([`Call::read_pod`], [`Call::write_pod`]).
///
/// A marker of our own rather than bytemuck's `Pod`: a module needs it for libc's structs
/// (`timespec`, `timeval`), which no foreign trait can be implemented for outside libc.
///
/// A `bool` (or any type with invalid bit patterns) cannot be read this way:
///
/// ```compile_fail
/// fn f(c: &vurs_abi::sdk::Call<'_>) -> bool {
///     c.read_pod::<bool>(0).unwrap()
/// }
/// ```
/// while an integer or a libc time struct can:
/// ```
/// fn f(c: &vurs_abi::sdk::Call<'_>) -> Option<(u64, libc::timespec)> {
///     Some((c.read_pod::<u64>(0).ok()?, c.read_pod(8).ok()?))
/// }
/// ```
///
/// # Safety
/// Implement it only for a `Copy` type, at most 256 bytes, for which every bit pattern of
/// its size is a valid value (integers, arrays of them, `#[repr(C)]` structs of them:
/// no `bool`, `char`, enum, reference or niche-carrying field) and which has no padding
/// bytes (its bytes are all initialized, so they may be viewed as `[u8]`).
pub unsafe trait Pod: Copy + 'static {
    /// The value's bytes, in memory order.
    fn as_bytes(&self) -> &[u8] {
        // SAFETY: Self: Pod has no padding, so all size_of::<Self>() bytes behind `self`
        // are initialized; the slice borrows `self`.
        unsafe { std::slice::from_raw_parts((self as *const Self).cast::<u8>(), std::mem::size_of::<Self>()) }
    }
}

macro_rules! pod {
    ($($t:ty),* $(,)?) => { $(
        // SAFETY: an integer or a struct of two i64 (x86_64): every bit pattern is valid,
        // no padding.
        unsafe impl Pod for $t {}
    )* };
}
pod!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, libc::timespec, libc::timeval);
// SAFETY: an array of Pod values is laid out without gaps and valid for every bit pattern
// of its elements.
unsafe impl<T: Pod, const N: usize> Pod for [T; N] {}
// SAFETY: #[repr(C)] struct of u64/u32/i64 fields in an order that leaves no padding
// (the `reserved` field fills the last 8 bytes; tests/abi_layout.rs checks the layout).
unsafe impl Pod for vurs_stat {}
// SAFETY: #[repr(C)] struct of two u32 and seven 64-bit fields, no padding.
unsafe impl Pod for vurs_result {}

/// Parsed `k=v,k=v,flag` options.
#[derive(Debug, Default, Clone)]
pub struct Options(
    /// The options in order: (key, `Some(value)` for `k=v`, `None` for a bare `flag`).
    pub Vec<(String, Option<String>)>,
);

impl Options {
    /// Parses `k=v,k=v,flag` (empty items are skipped; a value may contain `=`).
    pub fn parse(s: &str) -> Options {
        Options(
            s.split(',')
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (p.to_string(), None),
                })
                .collect(),
        )
    }
    /// The value of the last item named `key`; `None` if there is none or if that item is a
    /// bare `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == key).and_then(|(_, v)| v.as_deref())
    }
    /// Whether `key` appears at all, bare or with a value.
    pub fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }
}

/// The services vurs offers (memory of the calling process, scratch memory, log).
#[derive(Clone, Copy)]
pub struct Services(
    /// The table vurs passed to `init`; valid until `fini`.
    pub *const vurs_services,
);
// SAFETY: the table is immutable and lives as long as the instance.
unsafe impl Send for Services {}
// SAFETY: as for Send: the table is immutable and its functions may be called from any
// thread (the header's contract).
unsafe impl Sync for Services {}

/// A process's ids as the session sees them (the kernel's, unless a module such as
/// fakeroot set others): what [`Services::caller`] reports and [`Call::set_ids`] sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ids {
    /// Real user id.
    pub uid: u32,
    /// Effective user id.
    pub euid: u32,
    /// Saved set-user-id.
    pub suid: u32,
    /// File-system user id (permission checks).
    pub fsuid: u32,
    /// Real group id.
    pub gid: u32,
    /// Effective group id.
    pub egid: u32,
    /// Saved set-group-id.
    pub sgid: u32,
    /// File-system group id (permission checks).
    pub fsgid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
}

/// The process a callback acts for (libfuse's `fuse_context`), copied out of
/// [`vurs_caller`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallerInfo {
    /// Thread-group id.
    pub pid: i32,
    /// Thread id.
    pub tid: i32,
    /// Its ids (only uid, euid, gid, egid are known from a 1.0 vurs; the others copy them).
    pub ids: Ids,
    /// Its umask (0o022 from a 1.0 vurs, which does not say).
    pub umask: u32,
}

impl CallerInfo {
    /// Copies a [`vurs_caller`]; `minor` is the ABI minor of the vurs that filled it.
    ///
    /// # Safety
    /// `c` is a valid caller as vurs passed it (its `groups` valid for `ngroups` when
    /// `minor >= 1`).
    pub unsafe fn from_raw(c: &vurs_caller, minor: u32) -> CallerInfo {
        if minor == 0 {
            return CallerInfo {
                pid: c.pid,
                tid: c.tid,
                umask: 0o022,
                ids: Ids {
                    uid: c.uid,
                    euid: c.euid,
                    suid: c.euid,
                    fsuid: c.euid,
                    gid: c.gid,
                    egid: c.egid,
                    sgid: c.egid,
                    fsgid: c.egid,
                    groups: Vec::new(),
                },
            };
        }
        let groups = if c.groups.is_null() || c.ngroups == 0 {
            Vec::new()
        } else {
            // SAFETY: per this function's contract, groups is valid for ngroups entries.
            unsafe { std::slice::from_raw_parts(c.groups, c.ngroups as usize) }.to_vec()
        };
        CallerInfo {
            pid: c.pid,
            tid: c.tid,
            umask: c.umask,
            ids: Ids {
                uid: c.uid,
                euid: c.euid,
                suid: c.suid,
                fsuid: c.fsuid,
                gid: c.gid,
                egid: c.egid,
                sgid: c.sgid,
                fsgid: c.fsgid,
                groups,
            },
        }
    }
}

/// Whether a services table of `size` bytes holds the field at `offset`.
fn covers(size: u32, offset: usize) -> bool {
    offset + std::mem::size_of::<usize>() <= size as usize
}

macro_rules! service {
    ($svc:expr, $field:ident) => {{
        let t = $svc;
        if covers(t.size, std::mem::offset_of!(vurs_services, $field)) {
            t.$field
        } else {
            None
        }
    }};
}

impl Services {
    fn table(&self) -> &vurs_services {
        // SAFETY: vurs guarantees the pointer is valid from init to fini.
        unsafe { &*self.0 }
    }
    /// The ABI minor of the vurs that loaded the module.
    pub fn abi_minor(&self) -> u32 {
        self.table().abi_minor
    }
    /// Mount `mnt` (the module's own mount object, as its callbacks get it) is a plain
    /// subtree from now on, or no longer (`vurs_services.set_plain`). `ENOSYS` from a vurs
    /// without the service (before ABI 1.2): the mount is then never taken for plain.
    pub fn set_plain<T>(&self, mnt: &T, plain: bool) -> Result<(), Errno> {
        let f = service!(self.table(), set_plain).ok_or(Errno(libc::ENOSYS))?;
        // The SDK gave vurs this object's address as the mount pointer (`Box::into_raw`).
        let ptr = mnt as *const T as *mut c_void;
        // SAFETY: the service only compares the pointer with those of mounts.
        match unsafe { f(ptr, plain as i32) } {
            0 => Ok(()),
            e => Err(Errno(-e)),
        }
    }
    /// The process the callback running on this thread acts for (as `fuse_get_context()`):
    /// `ENOSYS` from a vurs without the service (ABI 1.0), `ESRCH` outside such a callback
    /// (init, a mount from the command line, a lifecycle hook).
    pub fn caller(&self) -> Result<CallerInfo, Errno> {
        let f = service!(self.table(), caller).ok_or(Errno(libc::ENOSYS))?;
        // SAFETY: the service takes no argument and returns NULL or a caller valid for the
        // running callback.
        let p = unsafe { f() };
        if p.is_null() {
            return Err(Errno(libc::ESRCH));
        }
        // SAFETY: p is valid for the running callback; a vurs offering `caller` is 1.1+.
        Ok(unsafe { CallerInfo::from_raw(&*p, self.abi_minor().max(1)) })
    }
    /// The session's view of clock `clockid` (`libc::CLOCK_REALTIME`, ...): the time module
    /// when one is loaded, else the host. `ENOSYS` from a vurs without the service.
    pub fn clock_gettime(&self, clockid: i32) -> Result<vurs_timespec, Errno> {
        let f = service!(self.table(), clock_gettime).ok_or(Errno(libc::ENOSYS))?;
        let mut ts = vurs_timespec::default();
        // SAFETY: ts is a valid out-pointer for the call.
        match unsafe { f(clockid, &mut ts) } {
            0 => Ok(ts),
            e => Err(Errno(-e)),
        }
    }
    /// Writes one line to vurs's log at `level` (`VURS_LOG_*`), tagged with `module`; NUL
    /// bytes in `msg` become spaces. Does nothing if vurs offers no log service.
    pub fn log(&self, level: i32, module: &str, msg: &str) {
        if let Some(f) = self.table().log {
            let m = CString::new(module).unwrap_or_default();
            let s = CString::new(msg.replace('\0', " ")).unwrap_or_default();
            // SAFETY: both strings are NUL-terminated and outlive the call.
            unsafe { f(level, m.as_ptr(), s.as_ptr()) }
        }
    }
}

/// One trapped call with access to the caller's memory.
pub struct Call<'a> {
    raw: &'a vurs_call,
    svc: Services,
}

impl<'a> Call<'a> {
    /// System call number of the host architecture.
    pub fn nr(&self) -> i32 {
        self.raw.nr
    }
    /// Raw argument `i` (0 to 5; panics beyond).
    pub fn arg(&self, i: usize) -> u64 {
        self.raw.args[i]
    }
    /// Thread-group id (process id) of the caller.
    pub fn pid(&self) -> i32 {
        // SAFETY: caller is valid for the duration of the call.
        unsafe { (*self.raw.caller).pid }
    }
    /// The calling process: its ids, groups and umask (see [`CallerInfo`]).
    pub fn caller(&self) -> CallerInfo {
        // SAFETY: caller is valid for the duration of the call, filled by a vurs of
        // abi_minor.
        unsafe { CallerInfo::from_raw(&*self.raw.caller, self.svc.abi_minor()) }
    }
    /// The services table (clock, log...).
    pub fn services(&self) -> Services {
        self.svc
    }
    /// `fstatat(dirfd, path, flags)` as the caller would see it (`AT_SYMLINK_NOFOLLOW`,
    /// `AT_EMPTY_PATH`); `ENOSYS` from a vurs without the service.
    pub fn stat_at(&self, dirfd: i32, path: &[u8], flags: i32) -> Result<vurs_stat, Errno> {
        let f = service!(self.svc.table(), stat_at).ok_or(Errno(libc::ENOSYS))?;
        let p = CString::new(path).map_err(|_| Errno(libc::EINVAL))?;
        let mut st = vurs_stat::default();
        // SAFETY: ctx is this call's, p is NUL-terminated and st a valid out-pointer.
        match unsafe { f(self.raw.ctx, dirfd, p.as_ptr(), flags, &mut st) } {
            0 => Ok(st),
            e => Err(Errno(-e)),
        }
    }
    /// The host path of what the caller names with `(dirfd, path, flags)` (the final
    /// component need not exist); `EXDEV` for a served file, `ENOSYS` from a vurs without
    /// the service.
    pub fn host_path(&self, dirfd: i32, path: &[u8], flags: i32) -> Result<Vec<u8>, Errno> {
        let f = service!(self.svc.table(), host_path).ok_or(Errno(libc::ENOSYS))?;
        let p = CString::new(path).map_err(|_| Errno(libc::EINVAL))?;
        let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
        // SAFETY: ctx is this call's, p is NUL-terminated and buf holds buf.len() bytes.
        match unsafe { f(self.raw.ctx, dirfd, p.as_ptr(), flags, buf.as_mut_ptr().cast(), buf.len()) } {
            n if n >= 0 => {
                buf.truncate(n as usize);
                Ok(buf)
            }
            e => Err(Errno(-e as i32)),
        }
    }
    /// Sets the session's view of the calling process's ids (inherited by fork, kept by
    /// exec; the kernel's ids do not change); `ENOSYS` from a vurs without the service.
    pub fn set_ids(&self, ids: &Ids) -> Result<(), Errno> {
        let f = service!(self.svc.table(), set_ids).ok_or(Errno(libc::ENOSYS))?;
        let raw = vurs_ids {
            size: std::mem::size_of::<vurs_ids>() as u32,
            uid: ids.uid,
            euid: ids.euid,
            suid: ids.suid,
            fsuid: ids.fsuid,
            gid: ids.gid,
            egid: ids.egid,
            sgid: ids.sgid,
            fsgid: ids.fsgid,
            ngroups: ids.groups.len() as u32,
            groups: ids.groups.as_ptr(),
        };
        // SAFETY: ctx is this call's; raw and the groups it points at outlive the call.
        match unsafe { f(self.raw.ctx, &raw) } {
            0 => Ok(()),
            e => Err(Errno(-e)),
        }
    }
    /// Fills `buf` from the caller's memory at `addr`; `EFAULT` unless all of it was read,
    /// `ENOSYS` if vurs offers no such service.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let f = self.svc.table().read_mem.ok_or(Errno(libc::ENOSYS))?;
        // SAFETY: buf is valid for buf.len() bytes.
        let n = unsafe { f(self.raw.ctx, addr, buf.as_mut_ptr().cast(), buf.len()) };
        if n == buf.len() as i64 {
            Ok(())
        } else {
            Err(Errno(libc::EFAULT))
        }
    }
    /// Writes `data` to the caller's memory at `addr`; `EFAULT` unless all of it was
    /// written, `ENOSYS` if vurs offers no such service.
    pub fn write(&self, addr: u64, data: &[u8]) -> Result<(), Errno> {
        let f = self.svc.table().write_mem.ok_or(Errno(libc::ENOSYS))?;
        // SAFETY: data is valid for data.len() bytes.
        let n = unsafe { f(self.raw.ctx, addr, data.as_ptr().cast(), data.len()) };
        if n == data.len() as i64 {
            Ok(())
        } else {
            Err(Errno(libc::EFAULT))
        }
    }
    /// Read a plain-old-data value (a C struct, an integer) from the caller.
    pub fn read_pod<T: Pod>(&self, addr: u64) -> Result<T, Errno> {
        let mut bytes = [0u8; 256];
        let bytes = bytes.get_mut(..std::mem::size_of::<T>()).ok_or(Errno(libc::EINVAL))?;
        self.read(addr, bytes)?;
        // SAFETY: `bytes` holds size_of::<T>() initialized bytes, and T: Pod says every bit
        // pattern of that size is a valid T; read_unaligned needs no alignment.
        Ok(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
    }
    /// Write a plain-old-data value (a C struct, an integer) to the caller.
    pub fn write_pod<T: Pod>(&self, addr: u64, v: &T) -> Result<(), Errno> {
        self.write(addr, v.as_bytes())
    }
    /// The caller's virtual working directory.
    pub fn cwd(&self) -> Result<Vec<u8>, Errno> {
        let f = self.svc.table().cwd.ok_or(Errno(libc::ENOSYS))?;
        let mut buf = vec![0u8; 4097];
        // SAFETY: buf is valid for its length.
        let n = unsafe { f(self.raw.ctx, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            return Err(Errno(-n as i32));
        }
        buf.truncate(n as usize);
        Ok(buf)
    }
    /// Reads the NUL-terminated string at `addr` (without its NUL), of at most `cap`-1
    /// bytes; `EFAULT` or `ENAMETOOLONG` otherwise.
    pub fn read_string(&self, addr: u64, cap: usize) -> Result<Vec<u8>, Errno> {
        let f = self.svc.table().read_string.ok_or(Errno(libc::ENOSYS))?;
        let mut buf = vec![0u8; cap.max(1)];
        // SAFETY: buf is valid for its length.
        let n = unsafe { f(self.raw.ctx, addr, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            return Err(Errno(-n as i32));
        }
        buf.truncate(n as usize);
        Ok(buf)
    }
    /// Copy `data` into scratch memory of the caller; returns its address there. `ENOMEM` when
    /// none is left, and the first time a process needs some (vurs then maps some and calls
    /// the handler again for the same call): ask for scratch before doing anything that
    /// must not happen twice.
    pub fn scratch(&self, data: &[u8]) -> Result<u64, Errno> {
        let f = self.svc.table().scratch.ok_or(Errno(libc::ENOSYS))?;
        // SAFETY: data is valid for data.len() bytes.
        match unsafe { f(self.raw.ctx, data.as_ptr().cast(), data.len()) } {
            0 => Err(Errno(libc::ENOMEM)),
            a => Ok(a),
        }
    }
}

/// What a syscall handler decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Let the kernel run the call unchanged.
    Pass,
    /// Skip the call; the caller sees this value (or `-errno`).
    Return(i64),
    /// Run the call with these arguments changed: `Some(v)` at index i replaces argument i.
    Rewrite([Option<u64>; 6]),
    /// Let the call go on, then call [`Module::syscall_exit`] with its result (ABI 1.1).
    PassExit,
}

impl From<Result<i64, Errno>> for Verdict {
    fn from(r: Result<i64, Errno>) -> Verdict {
        match r {
            Ok(v) => Verdict::Return(v),
            Err(Errno(e)) => Verdict::Return(-(e as i64)),
        }
    }
}

/// A vurs module. Only `init` is required; the rest default to "not served".
pub trait Module: Sized + Send + Sync + 'static {
    /// Per-mount state of a path module.
    type Mount: Send + Sync + 'static;

    /// Creates the instance from the load options ("k=v,k=v", may be empty), or fails with
    /// a one-line reason. Called once per load.
    fn init(svc: Services, options: &Options) -> Result<Self, String>;

    /// Path modules: mounts `source` on `target` (an absolute canonical virtual path) with
    /// the mount's options ("ro,k=v"). The default refuses with `ENODEV`.
    fn mount(
        &self,
        _source: &str,
        _target: &str,
        _options: &Options,
    ) -> Result<Self::Mount, (Errno, String)> {
        Err((Errno(libc::ENODEV), "this module has no mounts".into()))
    }
    /// Releases a mount made by [`Module::mount`].
    fn umount(&self, _mnt: Self::Mount) {}
    /// Redirect service: the host path that `subpath` of the mount stands for (subpaths are
    /// bytes, not necessarily UTF-8: hence `Path`).
    fn redirect(&self, _mnt: &Self::Mount, _subpath: &Path, _access: u32) -> Result<PathBuf, Errno> {
        Err(Errno(libc::ENOSYS))
    }
    /// Syscall service: called for each call whose number the module lists in
    /// `export_module!`'s `syscalls`. The default lets the kernel run it.
    fn syscall(&self, _call: &Call<'_>) -> Verdict {
        Verdict::Pass
    }

    // Serve service (set VURS_F_PATH_SERVE). `subpath` is canonical (vurs resolves
    // symlinks and `..` with `stat` and `readlink`); `stat` never follows a final symlink.
    /// Serve service: opens `subpath` with open(2) `flags` and `mode` (the final component
    /// is already followed unless `O_NOFOLLOW`).
    fn open(&self, _mnt: &Self::Mount, _subpath: &Path, _flags: i32, _mode: u32) -> Result<Handle, Errno> {
        Err(Errno(libc::ENOSYS))
    }
    /// Serve service: metadata of `subpath`, never following a final symlink (lstat).
    fn stat(&self, _mnt: &Self::Mount, _subpath: &Path) -> Result<vurs_stat, Errno> {
        Err(Errno(libc::ENOSYS))
    }
    /// Serve service: target of the symlink `subpath` (the default: `EINVAL`, not a
    /// symlink).
    fn readlink(&self, _mnt: &Self::Mount, _subpath: &Path) -> Result<Vec<u8>, Errno> {
        Err(Errno(libc::EINVAL))
    }
    /// Serve service: reads into `buf` at offset `off`; returns the number of bytes read.
    fn pread(&self, _h: &Handle, _buf: &mut [u8], _off: i64) -> Result<usize, Errno> {
        Err(Errno(libc::EINVAL))
    }
    /// Serve service: writes `data` at offset `off`; returns the number of bytes written
    /// (the default: `EBADF`, not open for writing).
    fn pwrite(&self, _h: &Handle, _data: &[u8], _off: i64) -> Result<usize, Errno> {
        Err(Errno(libc::EBADF))
    }
    /// Serve service: metadata of an open handle.
    fn fstat(&self, _h: &Handle) -> Result<vurs_stat, Errno> {
        Err(Errno(libc::ENOSYS))
    }
    /// Entry `index` of an open directory: (inode, d_type, name), or None at the end.
    fn readdir(&self, _h: &Handle, _index: u64) -> Result<Option<(u64, u8, Vec<u8>)>, Errno> {
        Err(Errno(libc::ENOTDIR))
    }
    /// Serve service: releases an open handle.
    fn close(&self, _h: Handle) {}

    // ABI 1.1: the rest of the file-system operation set. Unless the module sets
    // VURS_F_OWN_PERMISSIONS, vurs has checked the caller's permissions already; the caller
    // is [`Services::caller`]. `h` is the open handle for the f* calls (fchmod, ...), else
    // None. The defaults answer as a NULL callback would (ENOSYS; EPERM for mknod, ENOTSUP
    // for xattrs).
    /// Creates directory `subpath` (`mode` already masked by the caller's umask).
    fn mkdir(&self, _mnt: &Self::Mount, _subpath: &Path, _mode: u32) -> Result<(), Errno> {
        Err(Errno(libc::ENOSYS))
    }
    /// Removes the empty directory `subpath`.
    fn rmdir(&self, _mnt: &Self::Mount, _subpath: &Path) -> Result<(), Errno> {
        Err(Errno(libc::ENOSYS))
    }
    /// Removes the non-directory `subpath`.
    fn unlink(&self, _mnt: &Self::Mount, _subpath: &Path) -> Result<(), Errno> {
        Err(Errno(libc::ENOSYS))
    }
    /// Renames `from` to `to` (`flags`: `RENAME_NOREPLACE`, `RENAME_EXCHANGE`).
    fn rename(&self, _mnt: &Self::Mount, _from: &Path, _to: &Path, _flags: u32) -> Result<(), Errno> {
        Err(Errno(libc::ENOSYS))
    }
    /// Makes `to` a hard link to the existing `from`.
    fn link(&self, _mnt: &Self::Mount, _from: &Path, _to: &Path) -> Result<(), Errno> {
        Err(Errno(libc::ENOSYS))
    }
    /// Creates the symlink `subpath` whose text is `target`.
    fn symlink(&self, _mnt: &Self::Mount, _target: &Path, _subpath: &Path) -> Result<(), Errno> {
        Err(Errno(libc::ENOSYS))
    }
    /// Creates a node (regular file, fifo, socket, device); the default: `EPERM`.
    fn mknod(&self, _mnt: &Self::Mount, _subpath: &Path, _mode: u32, _rdev: u64) -> Result<(), Errno> {
        Err(Errno(libc::EPERM))
    }
    /// Changes the permission bits.
    fn chmod(
        &self,
        _mnt: &Self::Mount,
        _subpath: &Path,
        _h: Option<&Handle>,
        _mode: u32,
    ) -> Result<(), Errno> {
        Err(Errno(libc::ENOSYS))
    }
    /// Changes owner and group (`u32::MAX` leaves one as it is).
    fn chown(
        &self,
        _mnt: &Self::Mount,
        _subpath: &Path,
        _h: Option<&Handle>,
        _uid: u32,
        _gid: u32,
    ) -> Result<(), Errno> {
        Err(Errno(libc::ENOSYS))
    }
    /// Changes the size.
    fn truncate(
        &self,
        _mnt: &Self::Mount,
        _subpath: &Path,
        _h: Option<&Handle>,
        _size: i64,
    ) -> Result<(), Errno> {
        Err(Errno(libc::ENOSYS))
    }
    /// Sets `[atime, mtime]`; an `nsec` of [`VURS_UTIME_OMIT`] leaves that one.
    fn utimens(
        &self,
        _mnt: &Self::Mount,
        _subpath: &Path,
        _h: Option<&Handle>,
        _times: &[vurs_timespec; 2],
    ) -> Result<(), Errno> {
        Err(Errno(libc::ENOSYS))
    }
    /// File-system statistics (vurs adds `ST_RDONLY` on a read-only mount).
    fn statfs(&self, _mnt: &Self::Mount, _subpath: &Path) -> Result<vurs_statfs, Errno> {
        Err(Errno(libc::ENOSYS))
    }
    /// Flushes an open handle (`datasync` for fdatasync).
    fn fsync(&self, _h: &Handle, _datasync: bool) -> Result<(), Errno> {
        Err(Errno(libc::ENOSYS))
    }
    /// The value of extended attribute `name` (the SDK answers size queries and `ERANGE`).
    fn getxattr(
        &self,
        _mnt: &Self::Mount,
        _subpath: &Path,
        _h: Option<&Handle>,
        _name: &[u8],
    ) -> Result<Vec<u8>, Errno> {
        Err(Errno(libc::ENOTSUP))
    }
    /// Sets extended attribute `name` (`flags`: `XATTR_CREATE`, `XATTR_REPLACE`).
    fn setxattr(
        &self,
        _mnt: &Self::Mount,
        _subpath: &Path,
        _h: Option<&Handle>,
        _name: &[u8],
        _value: &[u8],
        _flags: i32,
    ) -> Result<(), Errno> {
        Err(Errno(libc::ENOTSUP))
    }
    /// The names of the extended attributes, each followed by a NUL.
    fn listxattr(&self, _mnt: &Self::Mount, _subpath: &Path, _h: Option<&Handle>) -> Result<Vec<u8>, Errno> {
        Err(Errno(libc::ENOTSUP))
    }
    /// Removes extended attribute `name`.
    fn removexattr(
        &self,
        _mnt: &Self::Mount,
        _subpath: &Path,
        _h: Option<&Handle>,
        _name: &[u8],
    ) -> Result<(), Errno> {
        Err(Errno(libc::ENOTSUP))
    }
    /// access(2) check of `mask` (`R_OK|W_OK|X_OK` or `F_OK`), asked only with
    /// `VURS_F_OWN_PERMISSIONS`.
    fn access(&self, _mnt: &Self::Mount, _subpath: &Path, _mask: i32) -> Result<(), Errno> {
        Err(Errno(libc::ENOSYS))
    }

    // ABI 1.1: lifecycle of the session's processes (thread groups).
    /// Process `child` was forked by `parent`.
    fn proc_fork(&self, _parent: i32, _child: i32) {}
    /// Process `pid` completed an execve.
    fn proc_exec(&self, _pid: i32) {}
    /// Process `pid` exited (its last thread is gone).
    fn proc_exit(&self, _pid: i32) {}

    /// Syscall service: the exit of a call whose handler answered [`Verdict::PassExit`];
    /// returns the result the caller sees (the default: `retval` unchanged).
    fn syscall_exit(&self, _call: &Call<'_>, retval: i64) -> i64 {
        retval
    }

    /// Whether [`Module::clock`] is the module's view of the clocks: only then does
    /// `export_module!` export it, and vurs's clock service asks it (a time module).
    const PROVIDES_CLOCK: bool = false;
    /// The module's view of clock `clockid` (used when [`Module::PROVIDES_CLOCK`]).
    fn clock(&self, _clockid: i32) -> Result<vurs_timespec, Errno> {
        Err(Errno(libc::ENOSYS))
    }

    /// Redirecting modules: set to export [`Module::list`] (a merged view, as a
    /// copy-on-write module shows). Without it `list` is NULL and vurs never asks.
    const PROVIDES_LIST: bool = false;
    /// Entry `index` (0, 1, ...) of directory `subpath` as the view lists it: (inode,
    /// d_type, name), or None at the end; `ENOSYS` when the host directory `redirect`
    /// names lists itself. vurs answers getdents64 from it with `index` as the offset.
    fn list(
        &self,
        _mnt: &Self::Mount,
        _subpath: &Path,
        _index: u64,
    ) -> Result<Option<(u64, u8, Vec<u8>)>, Errno> {
        Err(Errno(libc::ENOSYS))
    }
}

/// An open file of a serving module: whatever the module wants to keep per open.
pub type Handle = Box<dyn std::any::Any + Send + Sync>;

/// A NULL-terminated array of C strings in a `static` (for `auto_mounts`).
#[repr(transparent)]
pub struct PtrArray<const N: usize>(
    /// The pointers, the last one null.
    pub [*const c_char; N],
);
// SAFETY: the pointers point at 'static string literals.
unsafe impl<const N: usize> Sync for PtrArray<N> {}

/// Instance wrapper handed to vurs as the opaque instance pointer.
pub struct Instance<M: Module> {
    /// The module's own state, from [`Module::init`].
    pub module: M,
    /// The services vurs passed to `init`.
    pub svc: Services,
    /// The module's name (for log lines).
    pub name: &'static str,
}

fn write_err(err: *mut c_char, errlen: usize, msg: &str) {
    if err.is_null() || errlen == 0 {
        return;
    }
    let bytes = msg.as_bytes();
    let n = bytes.len().min(errlen - 1);
    // SAFETY: vurs gives a buffer of errlen bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), err.cast::<u8>(), n);
        *err.add(n) = 0;
    }
}

/// A directory entry (`readdir`, `list`) as the C ABI answers it: 1 with `d` filled (the
/// name cut at 255 bytes), 0 at the end, or -errno.
fn fill_dirent(r: Result<Option<(u64, u8, Vec<u8>)>, Errno>, d: &mut vurs_dirent) -> c_int {
    match r {
        Ok(Some((ino, kind, name))) => {
            d.ino = ino;
            d.type_ = kind;
            let n = name.len().min(255);
            for (i, b) in name[..n].iter().enumerate() {
                d.name[i] = *b as c_char;
            }
            d.name[n] = 0;
            1
        }
        Ok(None) => 0,
        Err(Errno(e)) => -e,
    }
}

fn guarded<M: Module, R>(inst: &Instance<M>, what: &str, on_panic: R, f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let msg = panic_text(&*payload);
            inst.svc.log(
                VURS_LOG_ERROR,
                inst.name,
                &format!("panic in {what} ({msg}); the call fails with EIO"),
            );
            on_panic
        }
    }
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}

/// Panics are reported through vurs's log as one line, not by the default hook on the
/// traced session's stderr. Installed once, at the first init.
fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::panic::set_hook(Box::new(|_| {})));
}

/// # Safety
/// `p` is NULL or a NUL-terminated string that outlives 'a.
unsafe fn cstr<'a>(p: *const c_char) -> &'a str {
    if p.is_null() {
        ""
    } else {
        // SAFETY: per this function's contract.
        unsafe { CStr::from_ptr(p) }.to_str().unwrap_or("")
    }
}

/// Trampolines from the C ABI to a [`Module`]; used by [`export_module!`](crate::export_module).
pub mod trampolines {
    use super::*;

    /// `init`: parses the options, calls [`Module::init`] and boxes the instance.
    ///
    /// # Safety
    /// Called by vurs with valid pointers, as the header documents.
    pub unsafe fn init<M: Module>(
        svc: *const vurs_services,
        options: *const c_char,
        err: *mut c_char,
        errlen: usize,
        name: &'static str,
    ) -> *mut c_void {
        // SAFETY: vurs passes a valid services table and NUL-terminated options, and an error buffer of errlen bytes (header contract).
        unsafe {
            quiet_panics();
            let svc = Services(svc);
            let opts = Options::parse(cstr(options));
            match catch_unwind(AssertUnwindSafe(|| M::init(svc, &opts))) {
                Ok(Ok(module)) => Box::into_raw(Box::new(Instance { module, svc, name })).cast(),
                Ok(Err(msg)) => {
                    write_err(err, errlen, &msg);
                    std::ptr::null_mut()
                }
                Err(payload) => {
                    write_err(err, errlen, &format!("init panicked: {}", panic_text(&*payload)));
                    std::ptr::null_mut()
                }
            }
        }
    }
    /// `fini`: drops the instance.
    ///
    /// # Safety
    /// `inst` comes from `init`.
    pub unsafe extern "C" fn fini<M: Module>(inst: *mut c_void) {
        // SAFETY: `inst` came from init (a Box<Instance<M>>) and vurs never uses it again.
        unsafe {
            if !inst.is_null() {
                let inst = Box::from_raw(inst.cast::<Instance<M>>());
                let _ = catch_unwind(AssertUnwindSafe(move || drop(inst)));
            }
        }
    }
    /// `mount`: calls [`Module::mount`] and boxes the mount.
    ///
    /// # Safety
    /// Valid pointers per the header.
    pub unsafe extern "C" fn mount<M: Module>(
        inst: *mut c_void,
        source: *const c_char,
        target: *const c_char,
        options: *const c_char,
        mnt: *mut *mut c_void,
        err: *mut c_char,
        errlen: usize,
    ) -> c_int {
        // SAFETY: `inst` came from init; the strings are NUL-terminated, `mnt` a valid out-pointer and `err` a buffer of errlen bytes (header contract).
        unsafe {
            let inst = &*inst.cast::<Instance<M>>();
            let (s, t, o) = (cstr(source), cstr(target), Options::parse(cstr(options)));
            let r = guarded(inst, "mount", Err((Errno(libc::EIO), "mount panicked".to_string())), || {
                inst.module.mount(s, t, &o)
            });
            match r {
                Ok(m) => {
                    *mnt = Box::into_raw(Box::new(m)).cast();
                    0
                }
                Err((Errno(e), msg)) => {
                    write_err(err, errlen, &msg);
                    -e
                }
            }
        }
    }
    /// `umount`: drops the mount after [`Module::umount`].
    ///
    /// # Safety
    /// `mnt` comes from `mount`.
    pub unsafe extern "C" fn umount<M: Module>(inst: *mut c_void, mnt: *mut c_void) {
        // SAFETY: `inst` came from init and `mnt` from mount (a Box<M::Mount>), not used again after this.
        unsafe {
            let inst = &*inst.cast::<Instance<M>>();
            let m = Box::from_raw(mnt.cast::<M::Mount>());
            guarded(inst, "umount", (), move || inst.module.umount(*m));
        }
    }
    /// `redirect`: calls [`Module::redirect`] and writes the host path to `out`.
    ///
    /// # Safety
    /// Valid pointers per the header.
    pub unsafe extern "C" fn redirect<M: Module>(
        inst: *mut c_void,
        mnt: *mut c_void,
        subpath: *const c_char,
        access: u32,
        out: *mut c_char,
        outcap: usize,
    ) -> c_int {
        // SAFETY: `inst` came from init, `mnt` from mount; `subpath` is NUL-terminated and `out` a buffer of outcap bytes (header contract).
        unsafe {
            let inst = &*inst.cast::<Instance<M>>();
            let m = &*mnt.cast::<M::Mount>();
            let sub = Path::new(OsStr::from_bytes(CStr::from_ptr(subpath).to_bytes()));
            let r = guarded(inst, "redirect", Err(Errno(libc::EIO)), || inst.module.redirect(m, sub, access));
            match r {
                Ok(p) => {
                    let b = p.as_os_str().as_bytes();
                    if b.len() + 1 > outcap {
                        return -libc::ENAMETOOLONG;
                    }
                    std::ptr::copy_nonoverlapping(b.as_ptr(), out.cast::<u8>(), b.len());
                    *out.add(b.len()) = 0;
                    0
                }
                Err(Errno(e)) => -e,
            }
        }
    }
    /// # Safety
    /// `p` is a NUL-terminated string that outlives 'a.
    unsafe fn sub<'a>(p: *const c_char) -> Result<&'a Path, Errno> {
        // SAFETY: per this function's contract.
        Ok(Path::new(OsStr::from_bytes(unsafe { CStr::from_ptr(p) }.to_bytes())))
    }
    fn errno(r: Result<i64, Errno>) -> i64 {
        match r {
            Ok(v) => v,
            Err(Errno(e)) => -(e as i64),
        }
    }

    /// `open`: calls [`Module::open`] and boxes the handle.
    ///
    /// # Safety
    /// Valid pointers per the header.
    pub unsafe extern "C" fn open<M: Module>(
        inst: *mut c_void,
        mnt: *mut c_void,
        subpath: *const c_char,
        flags: i32,
        mode: u32,
        handle: *mut *mut c_void,
    ) -> c_int {
        // SAFETY: `inst` came from init, `mnt` from mount; `subpath` is NUL-terminated and `handle` a valid out-pointer (header contract).
        unsafe {
            let inst = &*inst.cast::<Instance<M>>();
            let m = &*mnt.cast::<M::Mount>();
            let r = guarded(inst, "open", Err(Errno(libc::EIO)), || {
                inst.module.open(m, sub(subpath)?, flags, mode)
            });
            match r {
                Ok(h) => {
                    *handle = Box::into_raw(Box::new(h)).cast();
                    0
                }
                Err(Errno(e)) => -e,
            }
        }
    }
    /// `stat`: calls [`Module::stat`].
    ///
    /// # Safety
    /// Valid pointers per the header.
    pub unsafe extern "C" fn stat<M: Module>(
        inst: *mut c_void,
        mnt: *mut c_void,
        subpath: *const c_char,
        st: *mut vurs_stat,
    ) -> c_int {
        // SAFETY: `inst` came from init, `mnt` from mount; `subpath` is NUL-terminated and `st` a valid out-pointer (header contract).
        unsafe {
            let inst = &*inst.cast::<Instance<M>>();
            let m = &*mnt.cast::<M::Mount>();
            match guarded(inst, "stat", Err(Errno(libc::EIO)), || inst.module.stat(m, sub(subpath)?)) {
                Ok(v) => {
                    *st = v;
                    0
                }
                Err(Errno(e)) => -e,
            }
        }
    }
    /// `readlink`: calls [`Module::readlink`] and copies at most `cap` bytes.
    ///
    /// # Safety
    /// Valid pointers per the header.
    pub unsafe extern "C" fn readlink<M: Module>(
        inst: *mut c_void,
        mnt: *mut c_void,
        subpath: *const c_char,
        buf: *mut c_char,
        cap: usize,
    ) -> i64 {
        // SAFETY: `inst` came from init, `mnt` from mount; `subpath` is NUL-terminated and `buf` a buffer of cap bytes (at most cap are copied).
        unsafe {
            let inst = &*inst.cast::<Instance<M>>();
            let m = &*mnt.cast::<M::Mount>();
            errno(guarded(inst, "readlink", Err(Errno(libc::EIO)), || {
                let t = inst.module.readlink(m, sub(subpath)?)?;
                let n = t.len().min(cap);
                std::ptr::copy_nonoverlapping(t.as_ptr(), buf.cast::<u8>(), n);
                Ok(n as i64)
            }))
        }
    }
    /// `pread`: calls [`Module::pread`].
    ///
    /// # Safety
    /// `h` comes from `open`; `buf` is valid for `len` bytes.
    pub unsafe extern "C" fn pread<M: Module>(
        inst: *mut c_void,
        h: *mut c_void,
        buf: *mut c_void,
        len: usize,
        off: i64,
    ) -> i64 {
        // SAFETY: `inst` came from init, `h` from open (a Box<Handle>); `buf` is valid for len bytes (header contract).
        unsafe {
            let inst = &*inst.cast::<Instance<M>>();
            let h = &*h.cast::<Handle>();
            let out = std::slice::from_raw_parts_mut(buf.cast::<u8>(), len);
            errno(guarded(inst, "pread", Err(Errno(libc::EIO)), || {
                inst.module.pread(h, out, off).map(|n| n as i64)
            }))
        }
    }
    /// `pwrite`: calls [`Module::pwrite`].
    ///
    /// # Safety
    /// `h` comes from `open`; `buf` is valid for `len` bytes.
    pub unsafe extern "C" fn pwrite<M: Module>(
        inst: *mut c_void,
        h: *mut c_void,
        buf: *const c_void,
        len: usize,
        off: i64,
    ) -> i64 {
        // SAFETY: `inst` came from init, `h` from open (a Box<Handle>); `buf` is valid for len bytes (header contract).
        unsafe {
            let inst = &*inst.cast::<Instance<M>>();
            let h = &*h.cast::<Handle>();
            let data = std::slice::from_raw_parts(buf.cast::<u8>(), len);
            errno(guarded(inst, "pwrite", Err(Errno(libc::EIO)), || {
                inst.module.pwrite(h, data, off).map(|n| n as i64)
            }))
        }
    }
    /// `fstat`: calls [`Module::fstat`].
    ///
    /// # Safety
    /// `h` comes from `open`.
    pub unsafe extern "C" fn fstat<M: Module>(
        inst: *mut c_void,
        h: *mut c_void,
        st: *mut vurs_stat,
    ) -> c_int {
        // SAFETY: `inst` came from init, `h` from open; `st` is a valid out-pointer (header contract).
        unsafe {
            let inst = &*inst.cast::<Instance<M>>();
            let h = &*h.cast::<Handle>();
            match guarded(inst, "fstat", Err(Errno(libc::EIO)), || inst.module.fstat(h)) {
                Ok(v) => {
                    *st = v;
                    0
                }
                Err(Errno(e)) => -e,
            }
        }
    }
    /// `readdir`: calls [`Module::readdir`] and fills `out` (names cut at 255 bytes).
    ///
    /// # Safety
    /// `h` comes from `open`.
    pub unsafe extern "C" fn readdir<M: Module>(
        inst: *mut c_void,
        h: *mut c_void,
        index: u64,
        out: *mut vurs_dirent,
    ) -> c_int {
        // SAFETY: `inst` came from init, `h` from open; `out` is a valid out-pointer (at most 255 name bytes and a NUL are written).
        unsafe {
            let inst = &*inst.cast::<Instance<M>>();
            let h = &*h.cast::<Handle>();
            fill_dirent(
                guarded(inst, "readdir", Err(Errno(libc::EIO)), || inst.module.readdir(h, index)),
                &mut *out,
            )
        }
    }
    /// `list`: calls [`Module::list`] and fills `out` (names cut at 255 bytes; exported
    /// only when [`Module::PROVIDES_LIST`]).
    ///
    /// # Safety
    /// Valid pointers per the header.
    pub unsafe extern "C" fn list<M: Module>(
        inst: *mut c_void,
        mnt: *mut c_void,
        subpath: *const c_char,
        index: u64,
        out: *mut vurs_dirent,
    ) -> c_int {
        // SAFETY: `inst` came from init, `mnt` from mount; `subpath` is NUL-terminated and `out` a valid out-pointer (at most 255 name bytes and a NUL are written).
        unsafe {
            let inst = &*inst.cast::<Instance<M>>();
            let m = &*mnt.cast::<M::Mount>();
            let r =
                guarded(inst, "list", Err(Errno(libc::EIO)), || inst.module.list(m, sub(subpath)?, index));
            fill_dirent(r, &mut *out)
        }
    }
    /// `close`: drops the handle after [`Module::close`].
    ///
    /// # Safety
    /// `h` comes from `open` and is not used after this.
    pub unsafe extern "C" fn close<M: Module>(inst: *mut c_void, h: *mut c_void) {
        // SAFETY: `inst` came from init, `h` from open (a Box<Handle>), not used again after this.
        unsafe {
            let inst = &*inst.cast::<Instance<M>>();
            let h = *Box::from_raw(h.cast::<Handle>());
            guarded(inst, "close", (), move || inst.module.close(h));
        }
    }

    /// `syscall`: calls [`Module::syscall`] and fills `res` from its [`Verdict`].
    ///
    /// # Safety
    /// Valid pointers per the header.
    pub unsafe extern "C" fn syscall<M: Module>(
        inst: *mut c_void,
        call: *const vurs_call,
        res: *mut vurs_result,
    ) -> c_int {
        // SAFETY: `inst` came from init; `call` (and its `caller`) and `res` are valid for the call (header contract).
        unsafe {
            let inst = &*inst.cast::<Instance<M>>();
            let call = Call { raw: &*call, svc: inst.svc };
            let v =
                guarded(inst, "syscall", Verdict::Return(-(libc::EIO as i64)), || inst.module.syscall(&call));
            let res = &mut *res;
            match v {
                Verdict::Pass => res.verdict = VURS_PASS,
                Verdict::Return(x) => {
                    res.verdict = VURS_RETURN;
                    res.retval = x;
                }
                Verdict::PassExit => res.verdict = VURS_PASS_EXIT,
                Verdict::Rewrite(args) => {
                    res.verdict = VURS_REWRITE;
                    for (i, a) in args.iter().enumerate() {
                        if let Some(v) = a {
                            res.args_mask |= 1 << i;
                            res.args[i] = *v;
                        }
                    }
                }
            }
            0
        }
    }

    // ---- ABI 1.1 ----

    /// # Safety
    /// `inst` came from init and `mnt` from mount.
    unsafe fn im<'a, M: Module>(inst: *mut c_void, mnt: *mut c_void) -> (&'a Instance<M>, &'a M::Mount) {
        // SAFETY: per this function's contract.
        unsafe { (&*inst.cast::<Instance<M>>(), &*mnt.cast::<M::Mount>()) }
    }
    /// # Safety
    /// `h` is null or came from open (a Box<Handle>) and outlives 'a.
    unsafe fn opt_handle<'a>(h: *mut c_void) -> Option<&'a Handle> {
        // SAFETY: per this function's contract.
        (!h.is_null()).then(|| unsafe { &*h.cast::<Handle>() })
    }
    fn unit(r: Result<(), Errno>) -> c_int {
        match r {
            Ok(()) => 0,
            Err(Errno(e)) => -e,
        }
    }
    /// Copies `v` into the C buffer `buf` of `cap` bytes: `cap` 0 asks for the size, a
    /// smaller buffer is `ERANGE` (getxattr/listxattr).
    ///
    /// # Safety
    /// `buf` is valid for `cap` bytes.
    unsafe fn sized(v: Vec<u8>, buf: *mut c_void, cap: usize) -> Result<i64, Errno> {
        if cap == 0 {
            return Ok(v.len() as i64);
        }
        if v.len() > cap {
            return Err(Errno(libc::ERANGE));
        }
        // SAFETY: buf is valid for cap >= v.len() bytes.
        unsafe { std::ptr::copy_nonoverlapping(v.as_ptr(), buf.cast::<u8>(), v.len()) };
        Ok(v.len() as i64)
    }
    /// # Safety
    /// `p` is a NUL-terminated string that outlives 'a.
    unsafe fn bytes<'a>(p: *const c_char) -> &'a [u8] {
        // SAFETY: per this function's contract.
        unsafe { CStr::from_ptr(p) }.to_bytes()
    }

    /// `mkdir`: calls [`Module::mkdir`].
    ///
    /// # Safety
    /// Valid pointers per the header.
    pub unsafe extern "C" fn mkdir<M: Module>(
        inst: *mut c_void,
        mnt: *mut c_void,
        p: *const c_char,
        mode: u32,
    ) -> c_int {
        // SAFETY: `inst` came from init, `mnt` from mount, `p` is NUL-terminated (header contract).
        unsafe {
            let (i, m) = im::<M>(inst, mnt);
            unit(guarded(i, "mkdir", Err(Errno(libc::EIO)), || i.module.mkdir(m, sub(p)?, mode)))
        }
    }
    /// `rmdir`: calls [`Module::rmdir`].
    ///
    /// # Safety
    /// Valid pointers per the header.
    pub unsafe extern "C" fn rmdir<M: Module>(
        inst: *mut c_void,
        mnt: *mut c_void,
        p: *const c_char,
    ) -> c_int {
        // SAFETY: `inst` came from init, `mnt` from mount, `p` is NUL-terminated (header contract).
        unsafe {
            let (i, m) = im::<M>(inst, mnt);
            unit(guarded(i, "rmdir", Err(Errno(libc::EIO)), || i.module.rmdir(m, sub(p)?)))
        }
    }
    /// `unlink`: calls [`Module::unlink`].
    ///
    /// # Safety
    /// Valid pointers per the header.
    pub unsafe extern "C" fn unlink<M: Module>(
        inst: *mut c_void,
        mnt: *mut c_void,
        p: *const c_char,
    ) -> c_int {
        // SAFETY: `inst` came from init, `mnt` from mount, `p` is NUL-terminated (header contract).
        unsafe {
            let (i, m) = im::<M>(inst, mnt);
            unit(guarded(i, "unlink", Err(Errno(libc::EIO)), || i.module.unlink(m, sub(p)?)))
        }
    }
    /// `rename`: calls [`Module::rename`].
    ///
    /// # Safety
    /// Valid pointers per the header.
    pub unsafe extern "C" fn rename<M: Module>(
        inst: *mut c_void,
        mnt: *mut c_void,
        from: *const c_char,
        to: *const c_char,
        flags: u32,
    ) -> c_int {
        // SAFETY: `inst` came from init, `mnt` from mount, the paths are NUL-terminated (header contract).
        unsafe {
            let (i, m) = im::<M>(inst, mnt);
            unit(guarded(i, "rename", Err(Errno(libc::EIO)), || {
                i.module.rename(m, sub(from)?, sub(to)?, flags)
            }))
        }
    }
    /// `link`: calls [`Module::link`].
    ///
    /// # Safety
    /// Valid pointers per the header.
    pub unsafe extern "C" fn link<M: Module>(
        inst: *mut c_void,
        mnt: *mut c_void,
        from: *const c_char,
        to: *const c_char,
    ) -> c_int {
        // SAFETY: `inst` came from init, `mnt` from mount, the paths are NUL-terminated (header contract).
        unsafe {
            let (i, m) = im::<M>(inst, mnt);
            unit(guarded(i, "link", Err(Errno(libc::EIO)), || i.module.link(m, sub(from)?, sub(to)?)))
        }
    }
    /// `symlink`: calls [`Module::symlink`].
    ///
    /// # Safety
    /// Valid pointers per the header.
    pub unsafe extern "C" fn symlink<M: Module>(
        inst: *mut c_void,
        mnt: *mut c_void,
        target: *const c_char,
        p: *const c_char,
    ) -> c_int {
        // SAFETY: `inst` came from init, `mnt` from mount, the strings are NUL-terminated (header contract).
        unsafe {
            let (i, m) = im::<M>(inst, mnt);
            unit(guarded(i, "symlink", Err(Errno(libc::EIO)), || i.module.symlink(m, sub(target)?, sub(p)?)))
        }
    }
    /// `mknod`: calls [`Module::mknod`].
    ///
    /// # Safety
    /// Valid pointers per the header.
    pub unsafe extern "C" fn mknod<M: Module>(
        inst: *mut c_void,
        mnt: *mut c_void,
        p: *const c_char,
        mode: u32,
        rdev: u64,
    ) -> c_int {
        // SAFETY: `inst` came from init, `mnt` from mount, `p` is NUL-terminated (header contract).
        unsafe {
            let (i, m) = im::<M>(inst, mnt);
            unit(guarded(i, "mknod", Err(Errno(libc::EIO)), || i.module.mknod(m, sub(p)?, mode, rdev)))
        }
    }
    /// `chmod`: calls [`Module::chmod`].
    ///
    /// # Safety
    /// Valid pointers per the header; `h` null or from open.
    pub unsafe extern "C" fn chmod<M: Module>(
        inst: *mut c_void,
        mnt: *mut c_void,
        p: *const c_char,
        h: *mut c_void,
        mode: u32,
    ) -> c_int {
        // SAFETY: `inst` came from init, `mnt` from mount, `p` is NUL-terminated, `h` null or from open (header contract).
        unsafe {
            let (i, m) = im::<M>(inst, mnt);
            let h = opt_handle(h);
            unit(guarded(i, "chmod", Err(Errno(libc::EIO)), || i.module.chmod(m, sub(p)?, h, mode)))
        }
    }
    /// `chown`: calls [`Module::chown`].
    ///
    /// # Safety
    /// Valid pointers per the header; `h` null or from open.
    pub unsafe extern "C" fn chown<M: Module>(
        inst: *mut c_void,
        mnt: *mut c_void,
        p: *const c_char,
        h: *mut c_void,
        uid: u32,
        gid: u32,
    ) -> c_int {
        // SAFETY: `inst` came from init, `mnt` from mount, `p` is NUL-terminated, `h` null or from open (header contract).
        unsafe {
            let (i, m) = im::<M>(inst, mnt);
            let h = opt_handle(h);
            unit(guarded(i, "chown", Err(Errno(libc::EIO)), || i.module.chown(m, sub(p)?, h, uid, gid)))
        }
    }
    /// `truncate`: calls [`Module::truncate`].
    ///
    /// # Safety
    /// Valid pointers per the header; `h` null or from open.
    pub unsafe extern "C" fn truncate<M: Module>(
        inst: *mut c_void,
        mnt: *mut c_void,
        p: *const c_char,
        h: *mut c_void,
        size: i64,
    ) -> c_int {
        // SAFETY: `inst` came from init, `mnt` from mount, `p` is NUL-terminated, `h` null or from open (header contract).
        unsafe {
            let (i, m) = im::<M>(inst, mnt);
            let h = opt_handle(h);
            unit(guarded(i, "truncate", Err(Errno(libc::EIO)), || i.module.truncate(m, sub(p)?, h, size)))
        }
    }
    /// `utimens`: calls [`Module::utimens`].
    ///
    /// # Safety
    /// Valid pointers per the header (`tv` two times); `h` null or from open.
    pub unsafe extern "C" fn utimens<M: Module>(
        inst: *mut c_void,
        mnt: *mut c_void,
        p: *const c_char,
        h: *mut c_void,
        tv: *const vurs_timespec,
    ) -> c_int {
        // SAFETY: `inst` came from init, `mnt` from mount, `p` is NUL-terminated, `h` null or from open, `tv` points at two times (header contract).
        unsafe {
            let (i, m) = im::<M>(inst, mnt);
            let h = opt_handle(h);
            let times = [*tv, *tv.add(1)];
            unit(guarded(i, "utimens", Err(Errno(libc::EIO)), || i.module.utimens(m, sub(p)?, h, &times)))
        }
    }
    /// `statfs`: calls [`Module::statfs`].
    ///
    /// # Safety
    /// Valid pointers per the header.
    pub unsafe extern "C" fn statfs<M: Module>(
        inst: *mut c_void,
        mnt: *mut c_void,
        p: *const c_char,
        st: *mut vurs_statfs,
    ) -> c_int {
        // SAFETY: `inst` came from init, `mnt` from mount, `p` is NUL-terminated, `st` a valid out-pointer (header contract).
        unsafe {
            let (i, m) = im::<M>(inst, mnt);
            match guarded(i, "statfs", Err(Errno(libc::EIO)), || i.module.statfs(m, sub(p)?)) {
                Ok(v) => {
                    *st = v;
                    0
                }
                Err(Errno(e)) => -e,
            }
        }
    }
    /// `fsync`: calls [`Module::fsync`].
    ///
    /// # Safety
    /// `h` comes from open.
    pub unsafe extern "C" fn fsync<M: Module>(inst: *mut c_void, h: *mut c_void, datasync: i32) -> c_int {
        // SAFETY: `inst` came from init, `h` from open (header contract).
        unsafe {
            let i = &*inst.cast::<Instance<M>>();
            let h = &*h.cast::<Handle>();
            unit(guarded(i, "fsync", Err(Errno(libc::EIO)), || i.module.fsync(h, datasync != 0)))
        }
    }
    /// `getxattr`: calls [`Module::getxattr`] (`cap` 0: the size; too small: `ERANGE`).
    ///
    /// # Safety
    /// Valid pointers per the header; `buf` valid for `cap` bytes.
    pub unsafe extern "C" fn getxattr<M: Module>(
        inst: *mut c_void,
        mnt: *mut c_void,
        p: *const c_char,
        h: *mut c_void,
        name: *const c_char,
        buf: *mut c_void,
        cap: usize,
    ) -> i64 {
        // SAFETY: `inst` came from init, `mnt` from mount, the strings are NUL-terminated, `h` null or from open, `buf` valid for cap bytes (header contract).
        unsafe {
            let (i, m) = im::<M>(inst, mnt);
            let h = opt_handle(h);
            errno(guarded(i, "getxattr", Err(Errno(libc::EIO)), || {
                sized(i.module.getxattr(m, sub(p)?, h, bytes(name))?, buf, cap)
            }))
        }
    }
    /// `setxattr`: calls [`Module::setxattr`].
    ///
    /// # Safety
    /// Valid pointers per the header; `value` valid for `len` bytes.
    #[allow(clippy::too_many_arguments)]
    pub unsafe extern "C" fn setxattr<M: Module>(
        inst: *mut c_void,
        mnt: *mut c_void,
        p: *const c_char,
        h: *mut c_void,
        name: *const c_char,
        value: *const c_void,
        len: usize,
        flags: i32,
    ) -> c_int {
        // SAFETY: `inst` came from init, `mnt` from mount, the strings are NUL-terminated, `h` null or from open, `value` valid for len bytes (header contract).
        unsafe {
            let (i, m) = im::<M>(inst, mnt);
            let h = opt_handle(h);
            let v: &[u8] = if len == 0 { &[] } else { std::slice::from_raw_parts(value.cast::<u8>(), len) };
            unit(guarded(i, "setxattr", Err(Errno(libc::EIO)), || {
                i.module.setxattr(m, sub(p)?, h, bytes(name), v, flags)
            }))
        }
    }
    /// `listxattr`: calls [`Module::listxattr`] (`cap` 0: the size; too small: `ERANGE`).
    ///
    /// # Safety
    /// Valid pointers per the header; `buf` valid for `cap` bytes.
    pub unsafe extern "C" fn listxattr<M: Module>(
        inst: *mut c_void,
        mnt: *mut c_void,
        p: *const c_char,
        h: *mut c_void,
        buf: *mut c_char,
        cap: usize,
    ) -> i64 {
        // SAFETY: `inst` came from init, `mnt` from mount, `p` is NUL-terminated, `h` null or from open, `buf` valid for cap bytes (header contract).
        unsafe {
            let (i, m) = im::<M>(inst, mnt);
            let h = opt_handle(h);
            errno(guarded(i, "listxattr", Err(Errno(libc::EIO)), || {
                sized(i.module.listxattr(m, sub(p)?, h)?, buf.cast(), cap)
            }))
        }
    }
    /// `removexattr`: calls [`Module::removexattr`].
    ///
    /// # Safety
    /// Valid pointers per the header.
    pub unsafe extern "C" fn removexattr<M: Module>(
        inst: *mut c_void,
        mnt: *mut c_void,
        p: *const c_char,
        h: *mut c_void,
        name: *const c_char,
    ) -> c_int {
        // SAFETY: `inst` came from init, `mnt` from mount, the strings are NUL-terminated, `h` null or from open (header contract).
        unsafe {
            let (i, m) = im::<M>(inst, mnt);
            let h = opt_handle(h);
            unit(guarded(i, "removexattr", Err(Errno(libc::EIO)), || {
                i.module.removexattr(m, sub(p)?, h, bytes(name))
            }))
        }
    }
    /// `access`: calls [`Module::access`].
    ///
    /// # Safety
    /// Valid pointers per the header.
    pub unsafe extern "C" fn access<M: Module>(
        inst: *mut c_void,
        mnt: *mut c_void,
        p: *const c_char,
        mask: i32,
    ) -> c_int {
        // SAFETY: `inst` came from init, `mnt` from mount, `p` is NUL-terminated (header contract).
        unsafe {
            let (i, m) = im::<M>(inst, mnt);
            unit(guarded(i, "access", Err(Errno(libc::EIO)), || i.module.access(m, sub(p)?, mask)))
        }
    }
    /// `proc_fork`: calls [`Module::proc_fork`].
    ///
    /// # Safety
    /// `inst` comes from init.
    pub unsafe extern "C" fn proc_fork<M: Module>(inst: *mut c_void, parent: i32, child: i32) {
        // SAFETY: `inst` came from init.
        let i = unsafe { &*inst.cast::<Instance<M>>() };
        guarded(i, "proc_fork", (), || i.module.proc_fork(parent, child))
    }
    /// `proc_exec`: calls [`Module::proc_exec`].
    ///
    /// # Safety
    /// `inst` comes from init.
    pub unsafe extern "C" fn proc_exec<M: Module>(inst: *mut c_void, pid: i32) {
        // SAFETY: `inst` came from init.
        let i = unsafe { &*inst.cast::<Instance<M>>() };
        guarded(i, "proc_exec", (), || i.module.proc_exec(pid))
    }
    /// `proc_exit`: calls [`Module::proc_exit`].
    ///
    /// # Safety
    /// `inst` comes from init.
    pub unsafe extern "C" fn proc_exit<M: Module>(inst: *mut c_void, pid: i32) {
        // SAFETY: `inst` came from init.
        let i = unsafe { &*inst.cast::<Instance<M>>() };
        guarded(i, "proc_exit", (), || i.module.proc_exit(pid))
    }
    /// `syscall_exit`: calls [`Module::syscall_exit`] and stores its result.
    ///
    /// # Safety
    /// Valid pointers per the header.
    pub unsafe extern "C" fn syscall_exit<M: Module>(
        inst: *mut c_void,
        call: *const vurs_call,
        retval: *mut i64,
    ) {
        // SAFETY: `inst` came from init; `call` (and its caller) and `retval` are valid for the call (header contract).
        unsafe {
            let i = &*inst.cast::<Instance<M>>();
            let call = Call { raw: &*call, svc: i.svc };
            let old = *retval;
            *retval = guarded(i, "syscall_exit", old, || i.module.syscall_exit(&call, old));
        }
    }
    /// `clock`: calls [`Module::clock`] (exported only when [`Module::PROVIDES_CLOCK`]).
    ///
    /// # Safety
    /// `ts` is a valid out-pointer.
    pub unsafe extern "C" fn clock<M: Module>(
        inst: *mut c_void,
        clockid: i32,
        ts: *mut vurs_timespec,
    ) -> c_int {
        // SAFETY: `inst` came from init, `ts` is a valid out-pointer (header contract).
        unsafe {
            let i = &*inst.cast::<Instance<M>>();
            match guarded(i, "clock", Err(Errno(libc::EIO)), || i.module.clock(clockid)) {
                Ok(v) => {
                    *ts = v;
                    0
                }
                Err(Errno(e)) => -e,
            }
        }
    }
}

/// Export a [`Module`] implementation as the `vurs_module_v1` symbol.
///
/// ```ignore
/// vurs_abi::export_module! {
///     module: MyModule, name: "mymod", description: "does things",
///     flags: vurs_abi::VURS_F_PATH_REDIRECT, syscalls: [],
/// }
/// ```
#[macro_export]
macro_rules! export_module {
    (module: $m:ty, name: $name:literal, description: $desc:literal, flags: $flags:expr,
     syscalls: [$($nr:expr),* $(,)?] $(, auto_mounts: [$($am:literal),* $(,)?])? $(,)?) => {
        const _: () = {
            use $crate::sdk::trampolines as t;
            static SYSCALLS: &[i32] = &[$($nr as i32),*];
            const NAUTO: usize = {
                let names: &[&str] = &[$($($am),*)?];
                names.len()
            };
            static AUTO: $crate::sdk::PtrArray<{ NAUTO + 1 }> = $crate::sdk::PtrArray([
                $($(concat!($am, "\0").as_ptr().cast(),)*)?
                ::std::ptr::null(),
            ]);
            unsafe extern "C" fn init(
                svc: *const $crate::vurs_services,
                options: *const ::std::ffi::c_char,
                err: *mut ::std::ffi::c_char,
                errlen: usize,
            ) -> *mut ::std::ffi::c_void {
                t::init::<$m>(svc, options, err, errlen, $name)
            }
            #[no_mangle]
            #[used]
            pub static vurs_module_v1: $crate::ModuleExport = $crate::ModuleExport($crate::vurs_module {
                abi_major: $crate::VURS_ABI_MAJOR,
                abi_minor: $crate::VURS_ABI_MINOR,
                size: ::std::mem::size_of::<$crate::vurs_module>() as u32,
                flags: $flags,
                name: concat!($name, "\0").as_ptr().cast(),
                description: concat!($desc, "\0").as_ptr().cast(),
                syscalls: SYSCALLS.as_ptr(),
                nsyscalls: SYSCALLS.len() as u32,
                reserved: 0,
                init: Some(init),
                fini: Some(t::fini::<$m>),
                mount: Some(t::mount::<$m>),
                umount: Some(t::umount::<$m>),
                redirect: Some(t::redirect::<$m>),
                open: Some(t::open::<$m>),
                stat: Some(t::stat::<$m>),
                readlink: Some(t::readlink::<$m>),
                pread: Some(t::pread::<$m>),
                pwrite: Some(t::pwrite::<$m>),
                fstat: Some(t::fstat::<$m>),
                readdir: Some(t::readdir::<$m>),
                close: Some(t::close::<$m>),
                syscall: Some(t::syscall::<$m>),
                auto_mounts: if NAUTO == 0 { ::std::ptr::null() } else { AUTO.0.as_ptr() },
                mkdir: Some(t::mkdir::<$m>),
                rmdir: Some(t::rmdir::<$m>),
                unlink: Some(t::unlink::<$m>),
                rename: Some(t::rename::<$m>),
                link: Some(t::link::<$m>),
                symlink: Some(t::symlink::<$m>),
                mknod: Some(t::mknod::<$m>),
                chmod: Some(t::chmod::<$m>),
                chown: Some(t::chown::<$m>),
                truncate: Some(t::truncate::<$m>),
                utimens: Some(t::utimens::<$m>),
                statfs: Some(t::statfs::<$m>),
                fsync: Some(t::fsync::<$m>),
                getxattr: Some(t::getxattr::<$m>),
                setxattr: Some(t::setxattr::<$m>),
                listxattr: Some(t::listxattr::<$m>),
                removexattr: Some(t::removexattr::<$m>),
                access: Some(t::access::<$m>),
                proc_fork: Some(t::proc_fork::<$m>),
                proc_exec: Some(t::proc_exec::<$m>),
                proc_exit: Some(t::proc_exit::<$m>),
                syscall_exit: Some(t::syscall_exit::<$m>),
                // only a module that is a clock answers the session's clock service
                clock: if <$m as $crate::sdk::Module>::PROVIDES_CLOCK {
                    Some(t::clock::<$m>)
                } else {
                    None
                },
                // only a module with merged listings answers them (see PROVIDES_LIST)
                list: if <$m as $crate::sdk::Module>::PROVIDES_LIST {
                    Some(t::list::<$m>)
                } else {
                    None
                },
            });
        };
    };
}
