//! The services table vurs offers to modules. `ctx` in every call is a `CallCtx`.
use crate::memory;
use crate::ptrace::Pid;
use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void};
use vurs_abi::*;

/// Per-call context behind the opaque `ctx` pointer.
pub struct CallCtx<'a> {
    pub tid: Pid,
    pub session: &'a crate::session::Session,
    /// Scratch memory of the caller's thread: (address, capacity), if mapped already.
    pub scratch: Option<(u64, usize)>,
    pub scratch_used: Cell<usize>,
    /// Set when a module asked for scratch memory that is not mapped yet: the core maps
    /// it and calls the module again.
    pub scratch_missing: Cell<bool>,
}

unsafe extern "C" fn read_mem(ctx: *mut c_void, addr: u64, buf: *mut c_void, len: usize) -> i64 {
    let ctx = &*(ctx as *const CallCtx);
    let out = std::slice::from_raw_parts_mut(buf.cast::<u8>(), len);
    match memory::read(ctx.tid, addr, out) {
        Ok(()) => len as i64,
        Err(e) => -(e.errno() as i64),
    }
}

unsafe extern "C" fn write_mem(ctx: *mut c_void, addr: u64, buf: *const c_void, len: usize) -> i64 {
    let ctx = &*(ctx as *const CallCtx);
    let data = std::slice::from_raw_parts(buf.cast::<u8>(), len);
    match memory::write(ctx.tid, addr, data) {
        Ok(()) => len as i64,
        Err(e) => -(e.errno() as i64),
    }
}

unsafe extern "C" fn read_string(ctx: *mut c_void, addr: u64, buf: *mut c_char, cap: usize) -> i64 {
    let ctx = &*(ctx as *const CallCtx);
    if cap == 0 {
        return -(libc::ENAMETOOLONG as i64);
    }
    match memory::read_cstring(ctx.tid, addr, cap) {
        Ok(s) => {
            std::ptr::copy_nonoverlapping(s.as_ptr(), buf.cast::<u8>(), s.len());
            *buf.add(s.len()) = 0;
            s.len() as i64
        }
        Err(e) => -(e.errno() as i64),
    }
}

unsafe extern "C" fn scratch(ctx: *mut c_void, data: *const c_void, len: usize) -> u64 {
    let ctx = &*(ctx as *const CallCtx);
    let Some((base, cap)) = ctx.scratch else {
        ctx.scratch_missing.set(true);
        return 0;
    };
    let used = ctx.scratch_used.get();
    let start = (used + 15) & !15;
    if start + len > cap {
        return 0;
    }
    let bytes = std::slice::from_raw_parts(data.cast::<u8>(), len);
    if memory::write(ctx.tid, base + start as u64, bytes).is_err() {
        return 0;
    }
    ctx.scratch_used.set(start + len);
    base + start as u64
}

unsafe extern "C" fn cwd(ctx: *mut c_void, buf: *mut c_char, cap: usize) -> i64 {
    let ctx = &*(ctx as *const CallCtx);
    let Some(cwd) = crate::dispatch::cwd_of(&ctx.session.mounts.read(), ctx.tid) else {
        return -(libc::ENOENT as i64);
    };
    if cwd.len() + 1 > cap {
        return -(libc::ERANGE as i64);
    }
    std::ptr::copy_nonoverlapping(cwd.as_ptr(), buf.cast::<u8>(), cwd.len());
    *buf.add(cwd.len()) = 0;
    cwd.len() as i64
}

unsafe extern "C" fn log(level: c_int, module: *const c_char, msg: *const c_char) {
    let module = super::c_str_lossy(module);
    let msg = super::c_str_lossy(msg);
    crate::tracelog::module_line(level, &module, &msg);
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
};

pub fn table() -> *const vurs_services {
    &SERVICES
}
