//! The services table vurs offers to modules. `ctx` in every call is a `CallCtx`.
use super::guard;
use crate::errno::Errno;
use crate::tracee::memory;
use crate::tracee::ptrace::Pid;
use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void};
use vurs_abi::*;

/// fstatat of the caller's (dirfd, path, flags), as `vurs_services.stat_at` answers.
pub type StatAt<'a> = dyn Fn(i32, &[u8], i32) -> Result<vurs_stat, i32> + 'a;
/// The host path of the caller's (dirfd, path, flags), as `vurs_services.host_path` answers.
pub type HostPathAt<'a> = dyn Fn(i32, &[u8], i32) -> Result<Vec<u8>, i32> + 'a;

/// A process's user and group ids, as `struct vurs_ids` gives them (the SDK's type).
pub use vurs_abi::sdk::Ids;

/// Per-call context behind the opaque `ctx` pointer.
pub struct CallCtx<'a> {
    pub tid: Pid,
    /// The caller's virtual cwd, computed when a module asks (`vurs_services.cwd`).
    pub cwd: &'a dyn Fn() -> Option<Vec<u8>>,
    /// Scratch memory of the caller's thread: (address, capacity), if mapped already.
    pub scratch: Option<(u64, usize)>,
    pub scratch_used: Cell<usize>,
    /// Set when a module asked for scratch memory that is not mapped yet: the core maps
    /// it and calls the module again.
    pub scratch_missing: Cell<bool>,
    /// fstatat as the caller sees it (`vurs_services.stat_at`): (dirfd, path, flags).
    pub stat_at: &'a StatAt<'a>,
    /// The host path of what the caller names (`vurs_services.host_path`).
    pub host_path: &'a HostPathAt<'a>,
    /// Sets the session's view of the caller's ids (`vurs_services.set_ids`).
    pub set_ids: &'a dyn Fn(Ids) -> Result<(), i32>,
}

// Each service runs vurs's own code inside a module's callback: it leaves the fault guard
// for that time (`guard::Paused`: a fault there is vurs's, never the module's) and touches
// the module's buffers only through the kernel (process_vm_readv/writev report EFAULT) or
// through guarded copies.

/// # Safety
/// `ctx` is the `CallCtx` vurs passed in `struct vurs_call`, alive for the call.
unsafe fn call_ctx<'a>(ctx: *mut c_void) -> &'a CallCtx<'a> {
    // SAFETY: per this function's contract.
    unsafe { &*(ctx as *const CallCtx) }
}

unsafe extern "C" fn read_mem(ctx: *mut c_void, addr: u64, buf: *mut c_void, len: usize) -> i64 {
    let _vurs = guard::Paused::new();
    // SAFETY: ctx is the CallCtx of this call (ABI contract).
    let ctx = unsafe { call_ctx(ctx) };
    let mut data = vec![0u8; len];
    if let Err(e) = memory::read(ctx.tid, addr, &mut data) {
        return Errno(e.errno()).neg();
    }
    // SAFETY: a guarded copy into the module's buffer of `len` bytes (ABI contract).
    match unsafe { guard::copy(buf, data.as_ptr().cast(), len) } {
        Ok(()) => len as i64,
        Err(e) => Errno(e).neg(),
    }
}

unsafe extern "C" fn write_mem(ctx: *mut c_void, addr: u64, buf: *const c_void, len: usize) -> i64 {
    let _vurs = guard::Paused::new();
    // SAFETY: ctx is the CallCtx of this call (ABI contract).
    let ctx = unsafe { call_ctx(ctx) };
    let mut data = vec![0u8; len];
    // SAFETY: a guarded copy out of the module's buffer of `len` bytes (ABI contract).
    if let Err(e) = unsafe { guard::copy(data.as_mut_ptr().cast(), buf, len) } {
        return Errno(e).neg();
    }
    match memory::write(ctx.tid, addr, &data) {
        Ok(()) => len as i64,
        Err(e) => Errno(e.errno()).neg(),
    }
}

/// Copy `s` and a NUL into a module's buffer (which holds at least s.len() + 1 bytes).
///
/// # Safety
/// `buf` is the module's buffer (a fault on it is caught and reported as EFAULT).
unsafe fn give_string(buf: *mut c_char, s: &[u8]) -> i64 {
    let mut z = Vec::with_capacity(s.len() + 1);
    z.extend_from_slice(s);
    z.push(0);
    // SAFETY: per this function's contract; the copy is guarded.
    match unsafe { guard::copy(buf.cast(), z.as_ptr().cast(), z.len()) } {
        Ok(()) => s.len() as i64,
        Err(e) => Errno(e).neg(),
    }
}

unsafe extern "C" fn read_string(ctx: *mut c_void, addr: u64, buf: *mut c_char, cap: usize) -> i64 {
    let _vurs = guard::Paused::new();
    // SAFETY: ctx is the CallCtx of this call (ABI contract).
    let ctx = unsafe { call_ctx(ctx) };
    if cap == 0 {
        return Errno(libc::ENAMETOOLONG).neg();
    }
    match memory::read_cstring(ctx.tid, addr, cap) {
        // SAFETY: read_cstring gives at most cap-1 bytes: with the NUL they fit in the
        // module's buffer of `cap` bytes.
        Ok(s) => unsafe { give_string(buf, &s) },
        Err(e) => Errno(e.errno()).neg(),
    }
}

unsafe extern "C" fn scratch(ctx: *mut c_void, data: *const c_void, len: usize) -> u64 {
    let _vurs = guard::Paused::new();
    // SAFETY: ctx is the CallCtx of this call (ABI contract).
    let ctx = unsafe { call_ctx(ctx) };
    let Some((base, cap)) = ctx.scratch else {
        ctx.scratch_missing.set(true);
        return 0;
    };
    let used = ctx.scratch_used.get();
    let start = (used + 15) & !15;
    if start + len > cap {
        return 0;
    }
    let mut bytes = vec![0u8; len];
    // SAFETY: a guarded copy out of the module's `len` bytes (ABI contract).
    if unsafe { guard::copy(bytes.as_mut_ptr().cast(), data, len) }.is_err() {
        return 0;
    }
    if memory::write(ctx.tid, base + start as u64, &bytes).is_err() {
        return 0;
    }
    ctx.scratch_used.set(start + len);
    base + start as u64
}

unsafe extern "C" fn cwd(ctx: *mut c_void, buf: *mut c_char, cap: usize) -> i64 {
    let _vurs = guard::Paused::new();
    // SAFETY: ctx is the CallCtx of this call (ABI contract).
    let ctx = unsafe { call_ctx(ctx) };
    let Some(cwd) = (ctx.cwd)() else {
        return Errno(libc::ENOENT).neg();
    };
    if cwd.len() + 1 > cap {
        return Errno(libc::ERANGE).neg();
    }
    // SAFETY: cwd and its NUL fit in the module's buffer of `cap` bytes (checked above).
    unsafe { give_string(buf, &cwd) }
}

thread_local! {
    /// The caller of the callback running on this thread (`vurs_services.caller`), or null.
    static CURRENT_CALLER: Cell<*const vurs_caller> = const { Cell::new(std::ptr::null()) };
}

/// While alive, `caller` is what `vurs_services.caller` answers on this thread: set around
/// the handling of one trapped call (serving, redirect, syscall callbacks). Scopes nest;
/// dropping one gives back the outer caller.
pub struct CallerScope<'a> {
    prev: *const vurs_caller,
    _caller: std::marker::PhantomData<&'a vurs_caller>,
}

impl<'a> CallerScope<'a> {
    /// `caller` (which points into the `Caller` it was made from, for its groups) is what
    /// `vurs_services.caller` answers until the scope ends; both outlive it.
    pub fn enter(caller: &'a vurs_caller) -> CallerScope<'a> {
        let prev = CURRENT_CALLER.with(|cur| cur.replace(caller));
        CallerScope { prev, _caller: std::marker::PhantomData }
    }
}

impl Drop for CallerScope<'_> {
    fn drop(&mut self) {
        CURRENT_CALLER.with(|cur| cur.set(self.prev));
    }
}

unsafe extern "C" fn caller() -> *const vurs_caller {
    // The pointer stays valid while the scope that set it lives, i.e. for the whole callback
    // (the groups it points at are the Caller's, borrowed by the scope).
    CURRENT_CALLER.with(|cur| cur.get())
}

unsafe extern "C" fn clock_gettime(clockid: i32, ts: *mut vurs_timespec) -> c_int {
    let _vurs = guard::Paused::new();
    match super::session_clock(clockid) {
        Ok(v) => {
            // SAFETY: a guarded copy into the module's out-pointer (ABI contract).
            match unsafe {
                guard::copy(
                    ts.cast(),
                    (&v as *const vurs_timespec).cast(),
                    std::mem::size_of::<vurs_timespec>(),
                )
            } {
                Ok(()) => 0,
                Err(e) => -e,
            }
        }
        Err(e) => -e,
    }
}

unsafe extern "C" fn log(level: c_int, module: *const c_char, msg: *const c_char) {
    let _vurs = guard::Paused::new();
    let module = super::c_str_lossy(module);
    let msg = super::c_str_lossy(msg);
    crate::tracelog::module_line(level, &module, &msg);
}

unsafe extern "C" fn stat_at(
    ctx: *mut c_void,
    dirfd: i32,
    path: *const c_char,
    flags: i32,
    st: *mut vurs_stat,
) -> c_int {
    let _vurs = guard::Paused::new();
    // SAFETY: ctx is the CallCtx of this call (ABI contract).
    let ctx = unsafe { call_ctx(ctx) };
    let Some(path) = guard::c_string(path, crate::tracee::memory::PATH_MAX) else {
        return Errno(libc::EFAULT).neg() as c_int;
    };
    match (ctx.stat_at)(dirfd, &path, flags) {
        // SAFETY: a guarded copy into the module's struct vurs_stat (ABI contract).
        Ok(v) => match unsafe {
            guard::copy(st.cast(), (&v as *const vurs_stat).cast(), std::mem::size_of::<vurs_stat>())
        } {
            Ok(()) => 0,
            Err(e) => Errno(e).neg() as c_int,
        },
        Err(e) => Errno(e).neg() as c_int,
    }
}

unsafe extern "C" fn host_path(
    ctx: *mut c_void,
    dirfd: i32,
    path: *const c_char,
    flags: i32,
    buf: *mut c_char,
    cap: usize,
) -> i64 {
    let _vurs = guard::Paused::new();
    // SAFETY: ctx is the CallCtx of this call (ABI contract).
    let ctx = unsafe { call_ctx(ctx) };
    let Some(path) = guard::c_string(path, crate::tracee::memory::PATH_MAX) else {
        return Errno(libc::EFAULT).neg();
    };
    match (ctx.host_path)(dirfd, &path, flags) {
        Ok(mut host) if host.len() < cap => {
            host.push(0);
            // SAFETY: a guarded copy into the module's buffer of `cap` bytes (ABI contract).
            match unsafe { guard::copy(buf.cast(), host.as_ptr().cast(), host.len()) } {
                Ok(()) => host.len() as i64 - 1,
                Err(e) => Errno(e).neg(),
            }
        }
        Ok(_) => Errno(libc::ERANGE).neg(),
        Err(e) => Errno(e).neg(),
    }
}

unsafe extern "C" fn set_ids(ctx: *mut c_void, ids: *const vurs_ids) -> c_int {
    let _vurs = guard::Paused::new();
    // SAFETY: ctx is the CallCtx of this call (ABI contract).
    let ctx = unsafe { call_ctx(ctx) };
    // The module's struct, read up to the size it declares (a later minor may append).
    let mut raw = vurs_ids {
        size: 0,
        uid: 0,
        euid: 0,
        suid: 0,
        fsuid: 0,
        gid: 0,
        egid: 0,
        sgid: 0,
        fsgid: 0,
        ngroups: 0,
        groups: std::ptr::null(),
    };
    let mut size = 0u32;
    // SAFETY: guarded copies out of the module's struct: its leading size, then at most
    // that many bytes of it (and never more than ours).
    let got = unsafe {
        guard::copy((&mut size as *mut u32).cast(), ids.cast(), 4).and_then(|()| {
            let n = (size as usize).min(std::mem::size_of::<vurs_ids>());
            guard::copy((&mut raw as *mut vurs_ids).cast(), ids.cast(), n)
        })
    };
    if let Err(e) = got {
        return Errno(e).neg() as c_int;
    }
    if (size as usize) < std::mem::size_of::<vurs_ids>() || raw.ngroups > 65536 {
        return Errno(libc::EINVAL).neg() as c_int;
    }
    let mut groups = vec![0u32; raw.ngroups as usize];
    if raw.ngroups > 0 {
        // SAFETY: a guarded copy of the module's ngroups ids.
        if let Err(e) =
            unsafe { guard::copy(groups.as_mut_ptr().cast(), raw.groups.cast(), groups.len() * 4) }
        {
            return Errno(e).neg() as c_int;
        }
    }
    let view = Ids {
        uid: raw.uid,
        euid: raw.euid,
        suid: raw.suid,
        fsuid: raw.fsuid,
        gid: raw.gid,
        egid: raw.egid,
        sgid: raw.sgid,
        fsgid: raw.fsgid,
        groups,
    };
    match (ctx.set_ids)(view) {
        Ok(()) => 0,
        Err(e) => Errno(e).neg() as c_int,
    }
}

unsafe extern "C" fn set_plain(mnt: *mut c_void, plain: i32) -> c_int {
    let _vurs = guard::Paused::new();
    super::plain::set(mnt as usize, plain != 0);
    0
}

static SERVICES: vurs_services = vurs_services {
    size: std::mem::size_of::<vurs_services>() as u32,
    abi_minor: VURS_ABI_MINOR,
    read_mem: Some(read_mem),
    write_mem: Some(write_mem),
    read_string: Some(read_string),
    scratch: Some(scratch),
    log: Some(log),
    cwd: Some(cwd),
    caller: Some(caller),
    clock_gettime: Some(clock_gettime),
    stat_at: Some(stat_at),
    set_ids: Some(set_ids),
    host_path: Some(host_path),
    set_plain: Some(set_plain),
};

pub fn table() -> *const vurs_services {
    &SERVICES
}
