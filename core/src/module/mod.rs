//! Loaded modules: the loader (dlopen + descriptor checks), the services table vurs hands
//! to modules, and `Module`, a safe wrapper around one instance's callbacks.
mod guard;
pub mod hooks;
mod loader;
pub mod plain;
mod services;

pub use loader::{caller_module_path, find_module_file, load};
pub use services::{CallCtx, CallerScope, Ids};

use crate::errno::Errno;
use guard::Kind;
use std::ffi::{c_char, c_void, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use vurs_abi::*;

/// One loaded module instance.
pub struct Module {
    pub name: String,
    pub path: std::path::PathBuf,
    pub description: String,
    pub flags: u32,
    pub syscalls: Vec<i32>,
    /// Targets the module mounts itself (serving modules).
    pub auto_mounts: Vec<String>,
    pub options: String,
    /// The module's descriptor, copied out of it at load (see loader.rs).
    desc: vurs_module,
    inst: usize,
    /// Held while calling a VURS_F_SERIAL module (shared with the clock registry).
    serial: std::sync::Arc<parking_lot::Mutex<()>>,
    /// Mounts and open files that use this module (rmmod answers EBUSY while > 0).
    pub users: std::sync::atomic::AtomicUsize,
    /// Set when the module's code faulted (see guard.rs): every later call fails with EIO
    /// (shared with the clock registry).
    broken: std::sync::Arc<AtomicBool>,
    /// Unloaded when the module is dropped, unless vurs is ending (see `process_ending`).
    lib: Option<libloading::Library>,
    /// Set when one call took longer than TURNS_SLOW although the module did not set
    /// VURS_F_MAY_BLOCK: from then on it is treated as if it had (`may_block`).
    turned_slow: AtomicBool,
}

static ENDING: AtomicBool = AtomicBool::new(false);

/// A call into a module without VURS_F_MAY_BLOCK that takes this long makes vurs treat the
/// module as blocking: its later calls go to worker threads, and the tracer, which nothing
/// can stand in for, is held up once, not at every call.
const TURNS_SLOW_MS: u64 = 50;

/// Whether some module turned slow (`Module::turned_slow`): then worker threads are needed.
static ANY_TURNED_SLOW: AtomicBool = AtomicBool::new(false);

pub fn any_turned_slow() -> bool {
    ANY_TURNED_SLOW.load(Ordering::Relaxed)
}

/// Call a module's callback through the fault guard: Err(EIO) if the module is disabled or
/// faults now; a fault disables it (`broken`) and logs one line naming the callback.
///
/// # Safety
/// `func` has the C signature `kind` stands for; `args` are valid arguments for it.
unsafe fn guarded_call(
    name: &str,
    broken: &AtomicBool,
    serial: Option<&parking_lot::Mutex<()>>,
    kind: Kind,
    func: *const c_void,
    args: &[u64],
) -> Result<guard::Returned, i32> {
    if broken.load(Ordering::Relaxed) {
        return Err(libc::EIO);
    }
    let _serial = serial.map(|m| m.lock());
    // SAFETY: per this function's contract.
    match unsafe { guard::call(kind, func, args) } {
        Ok(r) => Ok(r),
        Err(sig) => {
            if !broken.swap(true, Ordering::Relaxed) {
                crate::tracelog::module_line(
                    VURS_LOG_ERROR,
                    name,
                    &format!(
                        "{} in {}: the call fails with EIO, and so does every later call into \
                         the module (its state may be corrupt)",
                        guard::signal_name(sig),
                        kind.name()
                    ),
                );
            }
            Err(libc::EIO)
        }
    }
}

/// A loaded module's `clock` callback (kept in load order), for the clock service (`vurs_services
/// .clock_gettime`), which a module calls without naming a session.
struct ClockSource {
    name: String,
    inst: usize,
    func: ClockFn,
    broken: std::sync::Arc<AtomicBool>,
    serial: Option<std::sync::Arc<parking_lot::Mutex<()>>>,
}

/// The loaded modules with a `clock` callback, oldest first. Read-locked during a call, so
/// an unload (which write-locks to remove its entry) waits for calls in flight.
static CLOCKS: parking_lot::RwLock<Vec<ClockSource>> = parking_lot::RwLock::new(Vec::new());

/// The session's view of `clockid`: the newest loaded module with a `clock` callback,
/// else the host.
pub fn session_clock(clockid: i32) -> Result<vurs_timespec, i32> {
    let clocks = CLOCKS.read_recursive();
    // A module answering ENOSYS (for this clock, or for all: a Rust module's default) is
    // no clock: the next older one, then the host, answers.
    for c in clocks.iter().rev().filter(|c| !c.broken.load(Ordering::Relaxed)) {
        let mut ts = vurs_timespec::default();
        let args = [c.inst as u64, clockid as u32 as u64, &mut ts as *mut vurs_timespec as u64];
        // SAFETY: `func` has the ClockFn signature; inst is the live instance (its entry is
        // removed, under the write lock, before fini); ts is a valid out-pointer.
        let r = unsafe {
            guarded_call(&c.name, &c.broken, c.serial.as_deref(), Kind::Clock, c.func as *const c_void, &args)
        }?
        .value;
        match r {
            0.. => return Ok(ts),
            r if r == -(libc::ENOSYS as i64) => continue,
            r => return Err(-r as i32),
        }
    }
    drop(clocks);
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime into a local.
    if unsafe { libc::clock_gettime(clockid, &mut ts) } != 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EINVAL));
    }
    Ok(vurs_timespec { sec: ts.tv_sec, nsec: ts.tv_nsec })
}

/// The session is over: modules still loaded get their fini but are not unloaded (the
/// process exits right after; dlclose would only cost time).
pub fn process_ending() {
    ENDING.store(true, Ordering::Relaxed);
}

// SAFETY: the raw pointers are the module's descriptor fields (pointing at immutable
// data of the library `lib` keeps mapped) and its instance, which the ABI allows calling from any thread; the
// instance is called under the module's own threading contract (VURS_F_SERIAL is
// honoured with `serial`).
unsafe impl Send for Module {}
// SAFETY: as for Send: shared use only reads the descriptor and calls the instance under
// the module's threading contract.
unsafe impl Sync for Module {}

/// The result of a syscall handler, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Return(i64),
    Rewrite {
        mask: u32,
        args: [u64; 6],
    },
    /// VURS_PASS_EXIT: the call goes on (with the arguments in `mask` replaced, as for
    /// Rewrite; none when 0) and the module's `syscall_exit` sees its result.
    PassExit {
        mask: u32,
        args: [u64; 6],
    },
}

/// A handle argument of a descriptor call (fchmod, fsetxattr...): the module's handle, or
/// none for a path call.
pub type HandleArg = Option<usize>;

fn handle_word(h: HandleArg) -> u64 {
    h.unwrap_or(0) as u64
}

fn err_string(buf: &[u8]) -> String {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

impl Module {
    fn d(&self) -> &vurs_module {
        &self.desc
    }
    fn inst(&self) -> u64 {
        self.inst as u64
    }
    pub fn is_path_module(&self) -> bool {
        self.flags & (VURS_F_PATH_REDIRECT | VURS_F_PATH_SERVE) != 0
    }

    /// Whether a fault in the module's code disabled it (every later call fails with EIO).
    pub fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Relaxed)
    }

    /// Call a callback through the fault guard (see guard.rs): Err(EIO) if the module is
    /// disabled or faults now; a fault disables it and logs one line naming the callback.
    ///
    /// # Safety
    /// `func` has the C signature `kind` stands for; `args` are valid arguments for it.
    unsafe fn invoke(&self, kind: Kind, func: *const c_void, args: &[u64]) -> Result<guard::Returned, i32> {
        // Held here, so the timing below leaves out the wait for the lock.
        let _serial = (self.flags & VURS_F_SERIAL != 0).then(|| self.serial.lock());
        let per_call = !matches!(kind, Kind::Init | Kind::Fini | Kind::Mount | Kind::Umount);
        let started = (per_call && !self.may_block()).then(crate::tracee::sys::coarse_ms);
        // SAFETY: per this function's contract.
        let r = unsafe { guarded_call(&self.name, &self.broken, None, kind, func, args) };
        if let Some(took) = started.map(|t| crate::tracee::sys::coarse_ms().saturating_sub(t)) {
            if took >= TURNS_SLOW_MS {
                self.turn_slow(kind, took);
            }
        }
        r
    }

    /// One call took `took_ms`: the module blocks although it did not say so. (Or the
    /// thread was kept off the CPU that long: then the module's later calls are merely
    /// decided on workers, which is correct too.) Said in the trace only: a busy machine
    /// must not add lines to a program's stderr.
    fn turn_slow(&self, kind: Kind, took_ms: u64) {
        if self.turned_slow.swap(true, Ordering::Relaxed) {
            return;
        }
        ANY_TURNED_SLOW.store(true, Ordering::Relaxed);
        crate::tracelog::module_line(
            vurs_abi::VURS_LOG_INFO,
            &self.name,
            &format!(
                "{} took {} ms and the module does not set VURS_F_MAY_BLOCK: it is treated as \
                 if it did from now on",
                kind.name(),
                took_ms
            ),
        );
    }

    pub fn mount(&self, source: &str, target: &str, options: &str) -> Result<usize, (i32, String)> {
        let f = self.d().mount.ok_or((libc::ENODEV, format!("{} has no mounts", self.name)))?;
        let (s, t, o) = (cstring(source)?, cstring(target)?, cstring(options)?);
        let mut mnt: *mut c_void = std::ptr::null_mut();
        let mut err = [0u8; 512];
        let args = [
            self.inst(),
            s.as_ptr() as u64,
            t.as_ptr() as u64,
            o.as_ptr() as u64,
            &mut mnt as *mut *mut c_void as u64,
            err.as_mut_ptr() as u64,
            err.len() as u64,
        ];
        // SAFETY: `mount` has the MountFn signature; the strings are NUL-terminated and
        // the out-pointer and error buffer (of err.len() bytes) outlive the call.
        let r = unsafe { self.invoke(Kind::Mount, f as *const c_void, &args) }
            .map_err(|e| (e, format!("module {} failed", self.name)))?
            .value;
        if r < 0 {
            let msg = err_string(&err);
            let msg = if msg.is_empty() { crate::errno::strerror(-r as i32) } else { msg };
            return Err((-r as i32, msg));
        }
        Ok(mnt as usize)
    }

    pub fn umount(&self, mnt: usize) {
        if let Some(f) = self.d().umount {
            // SAFETY: `umount` has the UmountFn signature; mnt came from this module's mount.
            let _ = unsafe { self.invoke(Kind::Umount, f as *const c_void, &[self.inst(), mnt as u64]) };
        }
    }

    /// Redirect service: host path for `subpath` of mount `mnt`, or -errno.
    pub fn redirect(&self, mnt: usize, subpath: &[u8], access: u32) -> Result<Vec<u8>, i32> {
        let f = self.d().redirect.ok_or(libc::ENOSYS)?;
        let sub = CString::new(subpath).map_err(|_| libc::EINVAL)?;
        let mut out = vec![0u8; crate::tracee::memory::PATH_MAX + 1];
        let args = [
            self.inst(),
            mnt as u64,
            sub.as_ptr() as u64,
            access as u64,
            out.as_mut_ptr() as u64,
            out.len() as u64,
        ];
        // SAFETY: `redirect` has the RedirectFn signature; a NUL-terminated string and a
        // buffer of out.len() bytes, both alive for the call; mnt came from mount.
        let r = unsafe { self.invoke(Kind::Redirect, f as *const c_void, &args) }?.value;
        if r < 0 {
            return Err(-r as i32);
        }
        let end = out.iter().position(|&b| b == 0).unwrap_or(out.len());
        out.truncate(end);
        Ok(out)
    }

    /// Syscall service.
    pub fn syscall(&self, call: &vurs_call) -> Verdict {
        let Some(f) = self.d().syscall else {
            return Verdict::Pass;
        };
        let mut res = vurs_result { size: std::mem::size_of::<vurs_result>() as u32, ..Default::default() };
        let args = [self.inst(), call as *const vurs_call as u64, &mut res as *mut vurs_result as u64];
        // SAFETY: `syscall` has the SyscallFn signature; call and res are valid for the call.
        let r = match unsafe { self.invoke(Kind::Syscall, f as *const c_void, &args) } {
            Ok(r) => r.value as i32,
            Err(e) => return Verdict::Return(Errno(e).neg()),
        };
        if r < 0 {
            return Verdict::Return(r as i64);
        }
        match res.verdict {
            VURS_RETURN => Verdict::Return(res.retval),
            VURS_REWRITE => Verdict::Rewrite { mask: res.args_mask & 0x3f, args: res.args },
            VURS_PASS_EXIT if self.d().syscall_exit.is_some() => {
                Verdict::PassExit { mask: res.args_mask & 0x3f, args: res.args }
            }
            _ => Verdict::Pass,
        }
    }

    /// Syscall service, at the exit of a call its handler answered VURS_PASS_EXIT: the
    /// result the caller sees (`ret` unless the module changed it).
    pub fn syscall_exit(&self, call: &vurs_call, ret: i64) -> i64 {
        let Some(f) = self.d().syscall_exit else {
            return ret;
        };
        let mut r = ret;
        let args = [self.inst(), call as *const vurs_call as u64, &mut r as *mut i64 as u64];
        // SAFETY: `syscall_exit` has the SyscallExitFn signature; call and r are valid for
        // the call.
        match unsafe { self.invoke(Kind::SyscallExit, f as *const c_void, &args) } {
            Ok(_) => r,
            Err(e) => Errno(e).neg(),
        }
    }

    /// Whether `name` (a module name, or a path to its file) names this module.
    pub fn is_named(&self, name: &str) -> bool {
        if name.contains('/') {
            let canon = |p: &std::path::Path| std::fs::canonicalize(p).ok();
            canon(std::path::Path::new(name)).is_some_and(|p| Some(p) == canon(&self.path))
        } else {
            self.name == name
        }
    }

    /// Whether calls into the module may block: it says so (VURS_F_MAY_BLOCK), or one call
    /// took long (`turn_slow`).
    pub fn may_block(&self) -> bool {
        self.flags & VURS_F_MAY_BLOCK != 0 || self.turned_slow.load(Ordering::Relaxed)
    }

    pub fn serves_paths(&self) -> bool {
        self.flags & VURS_F_PATH_SERVE != 0
    }

    fn sub(subpath: &[u8]) -> Result<CString, i32> {
        CString::new(subpath).map_err(|_| libc::EINVAL)
    }

    /// Serve service: open `subpath`; returns the module's handle.
    pub fn open(&self, mnt: usize, subpath: &[u8], flags: i32, mode: u32) -> Result<usize, i32> {
        let f = self.d().open.ok_or(libc::ENOSYS)?;
        let sub = Self::sub(subpath)?;
        let mut h: *mut c_void = std::ptr::null_mut();
        let args = [
            self.inst(),
            mnt as u64,
            sub.as_ptr() as u64,
            flags as u32 as u64,
            mode as u64,
            &mut h as *mut *mut c_void as u64,
        ];
        // SAFETY: `open` has the OpenFn signature; valid string and out-pointer.
        let r = unsafe { self.invoke(Kind::Open, f as *const c_void, &args) }?.value;
        if r < 0 {
            Err(-r as i32)
        } else {
            Ok(h as usize)
        }
    }

    pub fn stat(&self, mnt: usize, subpath: &[u8]) -> Result<vurs_stat, i32> {
        let f = self.d().stat.ok_or(libc::ENOSYS)?;
        let sub = Self::sub(subpath)?;
        let mut st = vurs_stat::default();
        let args = [self.inst(), mnt as u64, sub.as_ptr() as u64, &mut st as *mut vurs_stat as u64];
        // SAFETY: `stat` has the StatFn signature; valid string and out-pointer.
        let r = unsafe { self.invoke(Kind::Stat, f as *const c_void, &args) }?.value;
        if r < 0 {
            Err(-r as i32)
        } else {
            Ok(st)
        }
    }

    pub fn readlink(&self, mnt: usize, subpath: &[u8]) -> Result<Vec<u8>, i32> {
        let f = self.d().readlink.ok_or(libc::EINVAL)?;
        let sub = Self::sub(subpath)?;
        let mut buf = vec![0u8; crate::tracee::memory::PATH_MAX];
        let args = [self.inst(), mnt as u64, sub.as_ptr() as u64, buf.as_mut_ptr() as u64, buf.len() as u64];
        // SAFETY: `readlink` has the ReadlinkFn signature; valid string and a buffer of
        // buf.len() bytes.
        let r = unsafe { self.invoke(Kind::Readlink, f as *const c_void, &args) }?.value;
        if r < 0 {
            return Err(-r as i32);
        }
        buf.truncate((r as usize).min(buf.len()));
        Ok(buf)
    }

    pub fn pread(&self, handle: usize, buf: &mut [u8], off: i64) -> Result<usize, i32> {
        let f = self.d().pread.ok_or(libc::EINVAL)?;
        let args = [self.inst(), handle as u64, buf.as_mut_ptr() as u64, buf.len() as u64, off as u64];
        // SAFETY: `pread` has the PreadFn signature; a buffer of buf.len() bytes.
        let r = unsafe { self.invoke(Kind::Pread, f as *const c_void, &args) }?.value;
        if r < 0 {
            Err(-r as i32)
        } else {
            Ok((r as usize).min(buf.len()))
        }
    }

    pub fn pwrite(&self, handle: usize, data: &[u8], off: i64) -> Result<usize, i32> {
        let f = self.d().pwrite.ok_or(libc::EBADF)?;
        let args = [self.inst(), handle as u64, data.as_ptr() as u64, data.len() as u64, off as u64];
        // SAFETY: `pwrite` has the PwriteFn signature; data of data.len() bytes.
        let r = unsafe { self.invoke(Kind::Pwrite, f as *const c_void, &args) }?.value;
        if r < 0 {
            Err(-r as i32)
        } else {
            Ok((r as usize).min(data.len()))
        }
    }

    pub fn fstat(&self, handle: usize) -> Result<vurs_stat, i32> {
        let f = self.d().fstat.ok_or(libc::ENOSYS)?;
        let mut st = vurs_stat::default();
        let args = [self.inst(), handle as u64, &mut st as *mut vurs_stat as u64];
        // SAFETY: `fstat` has the FstatFn signature; out-pointer valid.
        let r = unsafe { self.invoke(Kind::Fstat, f as *const c_void, &args) }?.value;
        if r < 0 {
            Err(-r as i32)
        } else {
            Ok(st)
        }
    }

    /// Entry `index` of an open directory: Ok(None) at the end.
    pub fn readdir(&self, handle: usize, index: u64) -> Result<Option<(u64, u8, Vec<u8>)>, i32> {
        let f = self.d().readdir.ok_or(libc::ENOTDIR)?;
        let mut d = vurs_dirent { ino: 0, type_: 0, name: [0; 256] };
        let args = [self.inst(), handle as u64, index, &mut d as *mut vurs_dirent as u64];
        // SAFETY: `readdir` has the ReaddirFn signature; out-pointer valid.
        let r = unsafe { self.invoke(Kind::Readdir, f as *const c_void, &args) }?.value;
        dirent_answer(r, &d)
    }

    /// Whether a redirecting module lists some directories itself (merged views).
    pub fn has_list(&self) -> bool {
        self.d().list.is_some()
    }

    /// Entry `index` of directory `subpath` of mount `mnt` as the module lists it: None at
    /// the end, Err(ENOSYS) when the host directory's own listing holds.
    pub fn list(&self, mnt: usize, subpath: &[u8], index: u64) -> Result<Option<(u64, u8, Vec<u8>)>, i32> {
        let f = self.d().list.ok_or(libc::ENOSYS)?;
        let sub = Self::sub(subpath)?;
        let mut d = vurs_dirent { ino: 0, type_: 0, name: [0; 256] };
        let args = [self.inst(), mnt as u64, sub.as_ptr() as u64, index, &mut d as *mut vurs_dirent as u64];
        // SAFETY: `list` has the ListFn signature (csrc/guard.c); a NUL-terminated string
        // and an out-pointer, both alive for the call; mnt came from mount.
        let r = unsafe { self.invoke(Kind::List, f as *const c_void, &args) }?.value;
        dirent_answer(r, &d)
    }

    // ---- ABI 1.1: the rest of the file-system operation set ----

    /// Call an int-returning 1.1 callback `f` (or answer `absent` if the module lacks it):
    /// Ok(value >= 0) or Err(errno).
    ///
    /// # Safety
    /// `f` has the C signature `kind` stands for; `args` are valid arguments for it.
    unsafe fn op(&self, kind: Kind, f: Option<*const c_void>, absent: i32, args: &[u64]) -> Result<i64, i32> {
        let f = f.ok_or(absent)?;
        // SAFETY: per this function's contract.
        let r = unsafe { self.invoke(kind, f, args) }?.value;
        if r < 0 {
            Err((-r).min(4095) as i32)
        } else {
            Ok(r)
        }
    }

    /// Whether the module implements this 1.1 callback (a field of the descriptor).
    pub fn has_op(&self, op: Op) -> bool {
        let d = self.d();
        match op {
            Op::Mkdir => d.mkdir.is_some(),
            Op::Rmdir => d.rmdir.is_some(),
            Op::Unlink => d.unlink.is_some(),
            Op::Rename => d.rename.is_some(),
            Op::Link => d.link.is_some(),
            Op::Symlink => d.symlink.is_some(),
            Op::Access => d.access.is_some(),
        }
    }

    /// Whether the module checks permissions itself (VURS_F_OWN_PERMISSIONS).
    pub fn own_permissions(&self) -> bool {
        self.flags & VURS_F_OWN_PERMISSIONS != 0
    }

    pub fn mkdir(&self, mnt: usize, sub: &[u8], mode: u32) -> Result<(), i32> {
        let p = Self::sub(sub)?;
        // SAFETY: PathModeFn signature; the string lives for the call.
        unsafe {
            self.op(
                Kind::Mkdir,
                self.d().mkdir.map(|f| f as *const c_void),
                libc::ENOSYS,
                &[self.inst(), mnt as u64, p.as_ptr() as u64, mode as u64],
            )
        }
        .map(drop)
    }

    pub fn rmdir(&self, mnt: usize, sub: &[u8]) -> Result<(), i32> {
        let p = Self::sub(sub)?;
        // SAFETY: PathFn signature; the string lives for the call.
        unsafe {
            self.op(
                Kind::Rmdir,
                self.d().rmdir.map(|f| f as *const c_void),
                libc::ENOSYS,
                &[self.inst(), mnt as u64, p.as_ptr() as u64],
            )
        }
        .map(drop)
    }

    pub fn unlink(&self, mnt: usize, sub: &[u8]) -> Result<(), i32> {
        let p = Self::sub(sub)?;
        // SAFETY: PathFn signature; the string lives for the call.
        unsafe {
            self.op(
                Kind::Unlink,
                self.d().unlink.map(|f| f as *const c_void),
                libc::ENOSYS,
                &[self.inst(), mnt as u64, p.as_ptr() as u64],
            )
        }
        .map(drop)
    }

    pub fn rename(&self, mnt: usize, from: &[u8], to: &[u8], flags: u32) -> Result<(), i32> {
        let (a, b) = (Self::sub(from)?, Self::sub(to)?);
        // SAFETY: RenameFn signature; the strings live for the call.
        unsafe {
            self.op(
                Kind::Rename,
                self.d().rename.map(|f| f as *const c_void),
                libc::ENOSYS,
                &[self.inst(), mnt as u64, a.as_ptr() as u64, b.as_ptr() as u64, flags as u64],
            )
        }
        .map(drop)
    }

    pub fn link(&self, mnt: usize, from: &[u8], to: &[u8]) -> Result<(), i32> {
        let (a, b) = (Self::sub(from)?, Self::sub(to)?);
        // SAFETY: TwoPathFn signature; the strings live for the call.
        unsafe {
            self.op(
                Kind::Link,
                self.d().link.map(|f| f as *const c_void),
                libc::ENOSYS,
                &[self.inst(), mnt as u64, a.as_ptr() as u64, b.as_ptr() as u64],
            )
        }
        .map(drop)
    }

    /// Create symlink `sub` whose text is `target`.
    pub fn symlink(&self, mnt: usize, target: &[u8], sub: &[u8]) -> Result<(), i32> {
        let (t, p) = (Self::sub(target)?, Self::sub(sub)?);
        // SAFETY: TwoPathFn signature; the strings live for the call.
        unsafe {
            self.op(
                Kind::Symlink,
                self.d().symlink.map(|f| f as *const c_void),
                libc::ENOSYS,
                &[self.inst(), mnt as u64, t.as_ptr() as u64, p.as_ptr() as u64],
            )
        }
        .map(drop)
    }

    pub fn mknod(&self, mnt: usize, sub: &[u8], mode: u32, rdev: u64) -> Result<(), i32> {
        let p = Self::sub(sub)?;
        // SAFETY: MknodFn signature; the string lives for the call.
        unsafe {
            self.op(
                Kind::Mknod,
                self.d().mknod.map(|f| f as *const c_void),
                libc::EPERM,
                &[self.inst(), mnt as u64, p.as_ptr() as u64, mode as u64, rdev],
            )
        }
        .map(drop)
    }

    pub fn chmod(&self, mnt: usize, sub: &[u8], h: HandleArg, mode: u32) -> Result<(), i32> {
        let p = Self::sub(sub)?;
        // SAFETY: ChmodFn signature; the string lives for the call, h came from open.
        unsafe {
            self.op(
                Kind::Chmod,
                self.d().chmod.map(|f| f as *const c_void),
                libc::ENOSYS,
                &[self.inst(), mnt as u64, p.as_ptr() as u64, handle_word(h), mode as u64],
            )
        }
        .map(drop)
    }

    pub fn chown(&self, mnt: usize, sub: &[u8], h: HandleArg, uid: u32, gid: u32) -> Result<(), i32> {
        let p = Self::sub(sub)?;
        // SAFETY: ChownFn signature; the string lives for the call, h came from open.
        unsafe {
            self.op(
                Kind::Chown,
                self.d().chown.map(|f| f as *const c_void),
                libc::ENOSYS,
                &[self.inst(), mnt as u64, p.as_ptr() as u64, handle_word(h), uid as u64, gid as u64],
            )
        }
        .map(drop)
    }

    pub fn truncate(&self, mnt: usize, sub: &[u8], h: HandleArg, size: i64) -> Result<(), i32> {
        let p = Self::sub(sub)?;
        // SAFETY: TruncateFn signature; the string lives for the call, h came from open.
        unsafe {
            self.op(
                Kind::Truncate,
                self.d().truncate.map(|f| f as *const c_void),
                libc::ENOSYS,
                &[self.inst(), mnt as u64, p.as_ptr() as u64, handle_word(h), size as u64],
            )
        }
        .map(drop)
    }

    pub fn utimens(&self, mnt: usize, sub: &[u8], h: HandleArg, tv: &[vurs_timespec; 2]) -> Result<(), i32> {
        let p = Self::sub(sub)?;
        // SAFETY: UtimensFn signature; the string and the two times live for the call.
        unsafe {
            self.op(
                Kind::Utimens,
                self.d().utimens.map(|f| f as *const c_void),
                libc::ENOSYS,
                &[self.inst(), mnt as u64, p.as_ptr() as u64, handle_word(h), tv.as_ptr() as u64],
            )
        }
        .map(drop)
    }

    pub fn statfs(&self, mnt: usize, sub: &[u8]) -> Result<vurs_statfs, i32> {
        let p = Self::sub(sub)?;
        let mut st = vurs_statfs::default();
        // SAFETY: StatfsFn signature; the string and the out-pointer live for the call.
        unsafe {
            self.op(
                Kind::Statfs,
                self.d().statfs.map(|f| f as *const c_void),
                libc::ENOSYS,
                &[self.inst(), mnt as u64, p.as_ptr() as u64, &mut st as *mut vurs_statfs as u64],
            )
        }?;
        Ok(st)
    }

    pub fn fsync(&self, h: usize, datasync: bool) -> Result<(), i32> {
        // SAFETY: FsyncFn signature; h came from open.
        unsafe {
            self.op(
                Kind::Fsync,
                self.d().fsync.map(|f| f as *const c_void),
                libc::ENOSYS,
                &[self.inst(), h as u64, datasync as u64],
            )
        }
        .map(drop)
    }

    /// getxattr into `buf` (empty: asks for the size); returns the value's length.
    pub fn getxattr(
        &self,
        mnt: usize,
        sub: &[u8],
        h: HandleArg,
        name: &[u8],
        buf: &mut [u8],
    ) -> Result<usize, i32> {
        let (p, n) = (Self::sub(sub)?, Self::sub(name)?);
        // SAFETY: GetxattrFn signature; strings and buf (of buf.len() bytes) live for the call.
        let r = unsafe {
            self.op(
                Kind::Getxattr,
                self.d().getxattr.map(|f| f as *const c_void),
                libc::ENOTSUP,
                &[
                    self.inst(),
                    mnt as u64,
                    p.as_ptr() as u64,
                    handle_word(h),
                    n.as_ptr() as u64,
                    buf.as_mut_ptr() as u64,
                    buf.len() as u64,
                ],
            )
        }?;
        Ok(r as usize)
    }

    pub fn setxattr(
        &self,
        mnt: usize,
        sub: &[u8],
        h: HandleArg,
        name: &[u8],
        value: &[u8],
        flags: i32,
    ) -> Result<(), i32> {
        let (p, n) = (Self::sub(sub)?, Self::sub(name)?);
        // SAFETY: SetxattrFn signature; strings and value live for the call.
        unsafe {
            self.op(
                Kind::Setxattr,
                self.d().setxattr.map(|f| f as *const c_void),
                libc::ENOTSUP,
                &[
                    self.inst(),
                    mnt as u64,
                    p.as_ptr() as u64,
                    handle_word(h),
                    n.as_ptr() as u64,
                    value.as_ptr() as u64,
                    value.len() as u64,
                    flags as u32 as u64,
                ],
            )
        }
        .map(drop)
    }

    /// listxattr into `buf` (empty: asks for the size); returns the list's length.
    pub fn listxattr(&self, mnt: usize, sub: &[u8], h: HandleArg, buf: &mut [u8]) -> Result<usize, i32> {
        let p = Self::sub(sub)?;
        // SAFETY: ListxattrFn signature; the string and buf (of buf.len() bytes) live for the call.
        let r = unsafe {
            self.op(
                Kind::Listxattr,
                self.d().listxattr.map(|f| f as *const c_void),
                libc::ENOTSUP,
                &[
                    self.inst(),
                    mnt as u64,
                    p.as_ptr() as u64,
                    handle_word(h),
                    buf.as_mut_ptr() as u64,
                    buf.len() as u64,
                ],
            )
        }?;
        Ok(r as usize)
    }

    pub fn removexattr(&self, mnt: usize, sub: &[u8], h: HandleArg, name: &[u8]) -> Result<(), i32> {
        let (p, n) = (Self::sub(sub)?, Self::sub(name)?);
        // SAFETY: RemovexattrFn signature; the strings live for the call.
        unsafe {
            self.op(
                Kind::Removexattr,
                self.d().removexattr.map(|f| f as *const c_void),
                libc::ENOTSUP,
                &[self.inst(), mnt as u64, p.as_ptr() as u64, handle_word(h), n.as_ptr() as u64],
            )
        }
        .map(drop)
    }

    pub fn access(&self, mnt: usize, sub: &[u8], mask: i32) -> Result<(), i32> {
        let p = Self::sub(sub)?;
        // SAFETY: AccessFn signature; the string lives for the call.
        unsafe {
            self.op(
                Kind::Access,
                self.d().access.map(|f| f as *const c_void),
                libc::ENOSYS,
                &[self.inst(), mnt as u64, p.as_ptr() as u64, mask as u32 as u64],
            )
        }
        .map(drop)
    }

    // ---- ABI 1.1: lifecycle hooks, syscall_exit ----

    /// Process `child` was forked by `parent` (no caller is current: these are not calls).
    pub fn proc_fork(&self, parent: i32, child: i32) {
        if let Some(f) = self.d().proc_fork {
            // SAFETY: ProcForkFn signature.
            let _ = unsafe {
                self.invoke(
                    Kind::ProcFork,
                    f as *const c_void,
                    &[self.inst(), parent as u32 as u64, child as u32 as u64],
                )
            };
        }
    }

    /// Process `pid` completed an execve.
    pub fn proc_exec(&self, pid: i32) {
        if let Some(f) = self.d().proc_exec {
            // SAFETY: ProcFn signature.
            let _ =
                unsafe { self.invoke(Kind::ProcExec, f as *const c_void, &[self.inst(), pid as u32 as u64]) };
        }
    }

    /// Process `pid` exited (its last thread is gone).
    pub fn proc_exit(&self, pid: i32) {
        if let Some(f) = self.d().proc_exit {
            // SAFETY: ProcFn signature.
            let _ =
                unsafe { self.invoke(Kind::ProcExit, f as *const c_void, &[self.inst(), pid as u32 as u64]) };
        }
    }

    /// Whether the module has any lifecycle hook.
    pub fn has_proc_hooks(&self) -> bool {
        let d = self.d();
        d.proc_fork.is_some() || d.proc_exec.is_some() || d.proc_exit.is_some()
    }

    /// Serve service: close a handle (called when the last descriptor goes).
    pub fn close(&self, handle: usize) {
        if let Some(f) = self.d().close {
            // SAFETY: `close` has the CloseFn signature; handle came from this module's open.
            let _ = unsafe { self.invoke(Kind::Close, f as *const c_void, &[self.inst(), handle as u64]) };
        }
    }
}

/// A 1.1 path operation whose presence the core asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Mkdir,
    Rmdir,
    Unlink,
    Rename,
    Link,
    Symlink,
    Access,
}

impl Drop for Module {
    fn drop(&mut self) {
        // No clock call may reach the instance once fini runs.
        CLOCKS.write().retain(|c| c.inst != self.inst);
        // A disabled module's state may be corrupt: its fini is not called.
        if let Some(f) = self.d().fini {
            // SAFETY: `fini` has the FiniFn signature; the instance came from init and is
            // not used after this.
            let _ = unsafe { self.invoke(Kind::Fini, f as *const c_void, &[self.inst()]) };
        }
        if ENDING.load(Ordering::Relaxed) {
            std::mem::forget(self.lib.take());
        }
    }
}

/// Register a just-loaded module's `clock` callback (the newest answers the service).
fn register_clock(m: &Module) {
    if let Some(func) = m.d().clock {
        CLOCKS.write().push(ClockSource {
            name: m.name.clone(),
            inst: m.inst,
            func,
            broken: m.broken.clone(),
            serial: (m.flags & VURS_F_SERIAL != 0).then(|| m.serial.clone()),
        });
    }
}

fn cstring(s: &str) -> Result<CString, (i32, String)> {
    CString::new(s).map_err(|_| (libc::EINVAL, "NUL byte in argument".to_string()))
}

/// A string a module gave (descriptor fields, log lines), read under the fault guard: a
/// bad pointer gives "" rather than a crash.
pub(crate) fn c_str_lossy(p: *const c_char) -> String {
    guard::c_string(p, 64 * 1024).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
}

/// What a `readdir` or `list` callback answered (`r`; `d` filled when 1): Ok(None) at the
/// end, the entry, or Err(errno).
fn dirent_answer(r: i64, d: &vurs_dirent) -> Result<Option<(u64, u8, Vec<u8>)>, i32> {
    if r < 0 {
        return Err(-r as i32);
    }
    if r == 0 {
        return Ok(None);
    }
    let name: Vec<u8> = d.name.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    Ok(Some((d.ino, d.type_, name)))
}
