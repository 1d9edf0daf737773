//! Loaded modules: the loader (dlopen + descriptor checks), the services table vurs hands
//! to modules, and `Module`, a safe wrapper around one instance's callbacks.
mod loader;
mod services;

pub use loader::{find_module_file, load};
pub use services::CallCtx;

use std::ffi::{c_char, c_void, CStr, CString};
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
    desc: *const vurs_module,
    inst: usize,
    /// Held while calling a VURS_F_SERIAL module.
    serial: parking_lot::Mutex<()>,
    /// Mounts and open files that use this module (rmmod answers EBUSY while > 0).
    pub users: std::sync::atomic::AtomicUsize,
    /// Unloaded when the module is dropped, unless vurs is ending (see `process_ending`).
    lib: Option<libloading::Library>,
}

static ENDING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The session is over: modules still loaded get their fini but are not unloaded (the
/// process exits right after; dlclose would only cost time).
pub fn process_ending() {
    ENDING.store(true, std::sync::atomic::Ordering::Relaxed);
}

// SAFETY: the descriptor is immutable; the instance is called under the module's own
// threading contract (VURS_F_SERIAL is honoured with `serial`).
unsafe impl Send for Module {}
unsafe impl Sync for Module {}

/// The result of a syscall handler, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Return(i64),
    Rewrite { mask: u32, args: [u64; 6] },
}

fn err_string(buf: &[u8]) -> String {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

impl Module {
    fn d(&self) -> &vurs_module {
        // SAFETY: points into the loaded library, which `lib` keeps mapped.
        unsafe { &*self.desc }
    }
    fn inst(&self) -> *mut c_void {
        self.inst as *mut c_void
    }
    fn guard(&self) -> Option<parking_lot::MutexGuard<'_, ()>> {
        (self.flags & VURS_F_SERIAL != 0).then(|| self.serial.lock())
    }
    pub fn is_path_module(&self) -> bool {
        self.flags & (VURS_F_PATH_REDIRECT | VURS_F_PATH_SERVE) != 0
    }

    pub fn mount(&self, source: &str, target: &str, options: &str) -> Result<usize, (i32, String)> {
        let f = self.d().mount.ok_or((libc::ENODEV, format!("{} has no mounts", self.name)))?;
        let (s, t, o) = (cstring(source)?, cstring(target)?, cstring(options)?);
        let mut mnt: *mut c_void = std::ptr::null_mut();
        let mut err = [0u8; 512];
        let _g = self.guard();
        // SAFETY: valid NUL-terminated strings and out-pointers for the duration of the call.
        let r = unsafe {
            f(self.inst(), s.as_ptr(), t.as_ptr(), o.as_ptr(), &mut mnt, err.as_mut_ptr().cast(), err.len())
        };
        if r < 0 {
            let msg = err_string(&err);
            let msg = if msg.is_empty() { crate::errno::strerror(-r) } else { msg };
            return Err((-r, msg));
        }
        Ok(mnt as usize)
    }

    pub fn umount(&self, mnt: usize) {
        if let Some(f) = self.d().umount {
            let _g = self.guard();
            // SAFETY: mnt came from this module's mount.
            unsafe { f(self.inst(), mnt as *mut c_void) }
        }
    }

    /// Redirect service: host path for `subpath` of mount `mnt`, or -errno.
    pub fn redirect(&self, mnt: usize, subpath: &[u8], access: u32) -> Result<Vec<u8>, i32> {
        let f = self.d().redirect.ok_or(libc::ENOSYS)?;
        let sub = CString::new(subpath).map_err(|_| libc::EINVAL)?;
        let mut out = vec![0u8; crate::memory::PATH_MAX + 1];
        let _g = self.guard();
        // SAFETY: valid string and a buffer of out.len() bytes.
        let r = unsafe {
            f(self.inst(), mnt as *mut c_void, sub.as_ptr(), access, out.as_mut_ptr().cast(), out.len())
        };
        if r < 0 {
            return Err(-r);
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
        let _g = self.guard();
        // SAFETY: call and res are valid for the call.
        let r = unsafe { f(self.inst(), call, &mut res) };
        if r < 0 {
            return Verdict::Return(r as i64);
        }
        match res.verdict {
            VURS_RETURN => Verdict::Return(res.retval),
            VURS_REWRITE => Verdict::Rewrite { mask: res.args_mask & 0x3f, args: res.args },
            _ => Verdict::Pass,
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

    pub fn may_block(&self) -> bool {
        self.flags & VURS_F_MAY_BLOCK != 0
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
        let _g = self.guard();
        // SAFETY: valid string and out-pointer.
        let r = unsafe { f(self.inst(), mnt as *mut c_void, sub.as_ptr(), flags, mode, &mut h) };
        if r < 0 {
            Err(-r)
        } else {
            Ok(h as usize)
        }
    }

    pub fn stat(&self, mnt: usize, subpath: &[u8]) -> Result<vurs_stat, i32> {
        let f = self.d().stat.ok_or(libc::ENOSYS)?;
        let sub = Self::sub(subpath)?;
        let mut st = vurs_stat::default();
        let _g = self.guard();
        // SAFETY: valid string and out-pointer.
        let r = unsafe { f(self.inst(), mnt as *mut c_void, sub.as_ptr(), &mut st) };
        if r < 0 {
            Err(-r)
        } else {
            Ok(st)
        }
    }

    pub fn readlink(&self, mnt: usize, subpath: &[u8]) -> Result<Vec<u8>, i32> {
        let f = self.d().readlink.ok_or(libc::EINVAL)?;
        let sub = Self::sub(subpath)?;
        let mut buf = vec![0u8; crate::memory::PATH_MAX];
        let _g = self.guard();
        // SAFETY: valid string and buffer.
        let r =
            unsafe { f(self.inst(), mnt as *mut c_void, sub.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if r < 0 {
            return Err(-r as i32);
        }
        buf.truncate((r as usize).min(buf.len()));
        Ok(buf)
    }

    pub fn pread(&self, handle: usize, buf: &mut [u8], off: i64) -> Result<usize, i32> {
        let f = self.d().pread.ok_or(libc::EINVAL)?;
        let _g = self.guard();
        // SAFETY: buffer of buf.len() bytes.
        let r = unsafe { f(self.inst(), handle as *mut c_void, buf.as_mut_ptr().cast(), buf.len(), off) };
        if r < 0 {
            Err(-r as i32)
        } else {
            Ok((r as usize).min(buf.len()))
        }
    }

    pub fn pwrite(&self, handle: usize, data: &[u8], off: i64) -> Result<usize, i32> {
        let f = self.d().pwrite.ok_or(libc::EBADF)?;
        let _g = self.guard();
        // SAFETY: data of data.len() bytes.
        let r = unsafe { f(self.inst(), handle as *mut c_void, data.as_ptr().cast(), data.len(), off) };
        if r < 0 {
            Err(-r as i32)
        } else {
            Ok((r as usize).min(data.len()))
        }
    }

    pub fn fstat(&self, handle: usize) -> Result<vurs_stat, i32> {
        let f = self.d().fstat.ok_or(libc::ENOSYS)?;
        let mut st = vurs_stat::default();
        let _g = self.guard();
        // SAFETY: out-pointer valid.
        let r = unsafe { f(self.inst(), handle as *mut c_void, &mut st) };
        if r < 0 {
            Err(-r)
        } else {
            Ok(st)
        }
    }

    /// Entry `index` of an open directory: Ok(None) at the end.
    pub fn readdir(&self, handle: usize, index: u64) -> Result<Option<(u64, u8, Vec<u8>)>, i32> {
        let f = self.d().readdir.ok_or(libc::ENOTDIR)?;
        // SAFETY: vurs_dirent is plain data.
        let mut d: vurs_dirent = unsafe { std::mem::zeroed() };
        let _g = self.guard();
        // SAFETY: out-pointer valid.
        let r = unsafe { f(self.inst(), handle as *mut c_void, index, &mut d) };
        if r < 0 {
            return Err(-r);
        }
        if r == 0 {
            return Ok(None);
        }
        let name: Vec<u8> = d.name.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
        Ok(Some((d.ino, d.type_, name)))
    }

    /// Serve service: close a handle (called when the last descriptor goes).
    pub fn close(&self, handle: usize) {
        if let Some(f) = self.d().close {
            let _g = self.guard();
            // SAFETY: handle came from this module's open.
            unsafe { f(self.inst(), handle as *mut c_void) }
        }
    }
}

impl Drop for Module {
    fn drop(&mut self) {
        if let Some(f) = self.d().fini {
            // SAFETY: the instance came from init and is not used after this.
            unsafe { f(self.inst()) }
        }
        if ENDING.load(std::sync::atomic::Ordering::Relaxed) {
            std::mem::forget(self.lib.take());
        }
    }
}

fn cstring(s: &str) -> Result<CString, (i32, String)> {
    CString::new(s).map_err(|_| (libc::EINVAL, "NUL byte in argument".to_string()))
}

pub(crate) unsafe fn c_str_lossy(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}
