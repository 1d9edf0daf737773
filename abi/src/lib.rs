//! The vurs module ABI: `#[repr(C)]` mirror of `include/vurs_module.h` (the single source
//! of truth; `tests/abi_layout.rs` checks that both agree), and a small SDK ([`sdk`]) for
//! writing modules in Rust.
#![allow(non_camel_case_types)]

pub mod sdk;

use std::ffi::{c_char, c_int, c_void};

pub const VURS_ABI_MAJOR: u32 = 1;
pub const VURS_ABI_MINOR: u32 = 0;
/// Name of the exported descriptor symbol (without the trailing NUL).
pub const VURS_MODULE_SYMBOL: &str = "vurs_module_v1";

pub const VURS_F_PATH_REDIRECT: u32 = 0x0001;
pub const VURS_F_PATH_SERVE: u32 = 0x0002;
pub const VURS_F_MAY_BLOCK: u32 = 0x0004;
pub const VURS_F_SERIAL: u32 = 0x0008;
pub const VURS_F_HIDE_VDSO: u32 = 0x0010;
pub const VURS_F_SUBTREE: u32 = 0x0020;
pub const VURS_F_CREDS: u32 = 0x0040;

pub const VURS_PASS: u32 = 0;
pub const VURS_RETURN: u32 = 1;
pub const VURS_REWRITE: u32 = 2;

pub const VURS_ACCESS_READ: u32 = 0x1;
pub const VURS_ACCESS_WRITE: u32 = 0x2;
pub const VURS_ACCESS_EXEC: u32 = 0x4;
pub const VURS_ACCESS_CREATE: u32 = 0x8;

pub const VURS_LOG_ERROR: c_int = 0;
pub const VURS_LOG_WARN: c_int = 1;
pub const VURS_LOG_INFO: c_int = 2;
pub const VURS_LOG_DEBUG: c_int = 3;

#[repr(C)]
#[derive(Debug)]
pub struct vurs_caller {
    pub pid: i32,
    pub tid: i32,
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
}

#[repr(C)]
#[derive(Debug)]
pub struct vurs_call {
    pub size: u32,
    pub nr: i32,
    pub args: [u64; 6],
    pub caller: *const vurs_caller,
    pub ctx: *mut c_void,
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct vurs_result {
    pub size: u32,
    pub verdict: u32,
    pub retval: i64,
    pub args_mask: u32,
    pub reserved: u32,
    pub args: [u64; 6],
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct vurs_stat {
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: i64,
    pub blksize: i64,
    pub blocks: i64,
    pub atime_sec: i64,
    pub mtime_sec: i64,
    pub ctime_sec: i64,
    pub atime_nsec: u32,
    pub mtime_nsec: u32,
    pub ctime_nsec: u32,
    pub reserved: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct vurs_dirent {
    pub ino: u64,
    pub type_: u8,
    pub name: [c_char; 256],
}

pub type ReadMemFn = unsafe extern "C" fn(*mut c_void, u64, *mut c_void, usize) -> i64;
pub type WriteMemFn = unsafe extern "C" fn(*mut c_void, u64, *const c_void, usize) -> i64;
pub type ReadStringFn = unsafe extern "C" fn(*mut c_void, u64, *mut c_char, usize) -> i64;
pub type ScratchFn = unsafe extern "C" fn(*mut c_void, *const c_void, usize) -> u64;
pub type LogFn = unsafe extern "C" fn(c_int, *const c_char, *const c_char);
pub type CwdFn = unsafe extern "C" fn(*mut c_void, *mut c_char, usize) -> i64;

#[repr(C)]
pub struct vurs_services {
    pub size: u32,
    pub abi_minor: u32,
    pub read_mem: Option<ReadMemFn>,
    pub write_mem: Option<WriteMemFn>,
    pub read_string: Option<ReadStringFn>,
    pub scratch: Option<ScratchFn>,
    pub log: Option<LogFn>,
    pub cwd: Option<CwdFn>,
}

pub type InitFn =
    unsafe extern "C" fn(*const vurs_services, *const c_char, *mut c_char, usize) -> *mut c_void;
pub type FiniFn = unsafe extern "C" fn(*mut c_void);
pub type MountFn = unsafe extern "C" fn(
    *mut c_void,
    *const c_char,
    *const c_char,
    *const c_char,
    *mut *mut c_void,
    *mut c_char,
    usize,
) -> c_int;
pub type UmountFn = unsafe extern "C" fn(*mut c_void, *mut c_void);
pub type RedirectFn =
    unsafe extern "C" fn(*mut c_void, *mut c_void, *const c_char, u32, *mut c_char, usize) -> c_int;
pub type OpenFn =
    unsafe extern "C" fn(*mut c_void, *mut c_void, *const c_char, i32, u32, *mut *mut c_void) -> c_int;
pub type StatFn = unsafe extern "C" fn(*mut c_void, *mut c_void, *const c_char, *mut vurs_stat) -> c_int;
pub type ReadlinkFn =
    unsafe extern "C" fn(*mut c_void, *mut c_void, *const c_char, *mut c_char, usize) -> i64;
pub type PreadFn = unsafe extern "C" fn(*mut c_void, *mut c_void, *mut c_void, usize, i64) -> i64;
pub type PwriteFn = unsafe extern "C" fn(*mut c_void, *mut c_void, *const c_void, usize, i64) -> i64;
pub type FstatFn = unsafe extern "C" fn(*mut c_void, *mut c_void, *mut vurs_stat) -> c_int;
pub type ReaddirFn = unsafe extern "C" fn(*mut c_void, *mut c_void, u64, *mut vurs_dirent) -> c_int;
pub type CloseFn = unsafe extern "C" fn(*mut c_void, *mut c_void);
pub type SyscallFn = unsafe extern "C" fn(*mut c_void, *const vurs_call, *mut vurs_result) -> c_int;

#[repr(C)]
pub struct vurs_module {
    pub abi_major: u32,
    pub abi_minor: u32,
    pub size: u32,
    pub flags: u32,
    pub name: *const c_char,
    pub description: *const c_char,
    pub syscalls: *const i32,
    pub nsyscalls: u32,
    pub reserved: u32,
    pub init: Option<InitFn>,
    pub fini: Option<FiniFn>,
    pub mount: Option<MountFn>,
    pub umount: Option<UmountFn>,
    pub redirect: Option<RedirectFn>,
    pub open: Option<OpenFn>,
    pub stat: Option<StatFn>,
    pub readlink: Option<ReadlinkFn>,
    pub pread: Option<PreadFn>,
    pub pwrite: Option<PwriteFn>,
    pub fstat: Option<FstatFn>,
    pub readdir: Option<ReaddirFn>,
    pub close: Option<CloseFn>,
    pub syscall: Option<SyscallFn>,
    pub auto_mounts: *const *const c_char,
}

/// The exported symbol's type: a descriptor in a `static` (raw pointers are not `Sync`).
#[repr(transparent)]
pub struct ModuleExport(pub vurs_module);
// SAFETY: the descriptor is immutable and its pointers point at 'static data.
unsafe impl Sync for ModuleExport {}

/// Offsets of every field, for the layout agreement test (see tests/abi_layout.rs).
pub fn layout_report() -> Vec<(String, usize)> {
    use std::mem::{offset_of, size_of};
    macro_rules! rows {
        ($($t:ident { $($f:ident),* })*) => {{
            let mut v = Vec::new();
            $(
                v.push((format!("sizeof {}", stringify!($t)), size_of::<$t>()));
                $( v.push((format!("{}.{}", stringify!($t), stringify!($f)), offset_of!($t, $f))); )*
            )*
            v
        }};
    }
    let mut v = rows! {
        vurs_caller { pid, tid, uid, euid, gid, egid }
        vurs_call { size, nr, args, caller, ctx }
        vurs_result { size, verdict, retval, args_mask, reserved, args }
        vurs_stat { dev, ino, mode, nlink, uid, gid, rdev, size, blksize, blocks, atime_sec,
                    mtime_sec, ctime_sec, atime_nsec, mtime_nsec, ctime_nsec, reserved }
        vurs_dirent { ino, name }
        vurs_services { size, abi_minor, read_mem, write_mem, read_string, scratch, log, cwd }
        vurs_module { abi_major, abi_minor, size, flags, name, description, syscalls, nsyscalls,
                      reserved, init, fini, mount, umount, redirect, open, stat, readlink,
                      pread, pwrite, fstat, readdir, close, syscall, auto_mounts }
    };
    v.push(("vurs_dirent.type".into(), offset_of!(vurs_dirent, type_)));
    for (name, value) in [
        ("VURS_ABI_MAJOR", VURS_ABI_MAJOR),
        ("VURS_ABI_MINOR", VURS_ABI_MINOR),
        ("VURS_F_PATH_REDIRECT", VURS_F_PATH_REDIRECT),
        ("VURS_F_PATH_SERVE", VURS_F_PATH_SERVE),
        ("VURS_F_MAY_BLOCK", VURS_F_MAY_BLOCK),
        ("VURS_F_SERIAL", VURS_F_SERIAL),
        ("VURS_F_HIDE_VDSO", VURS_F_HIDE_VDSO),
        ("VURS_F_SUBTREE", VURS_F_SUBTREE),
        ("VURS_F_CREDS", VURS_F_CREDS),
        ("VURS_PASS", VURS_PASS),
        ("VURS_RETURN", VURS_RETURN),
        ("VURS_REWRITE", VURS_REWRITE),
        ("VURS_ACCESS_READ", VURS_ACCESS_READ),
        ("VURS_ACCESS_WRITE", VURS_ACCESS_WRITE),
        ("VURS_ACCESS_EXEC", VURS_ACCESS_EXEC),
        ("VURS_ACCESS_CREATE", VURS_ACCESS_CREATE),
        ("VURS_LOG_ERROR", VURS_LOG_ERROR as u32),
        ("VURS_LOG_WARN", VURS_LOG_WARN as u32),
        ("VURS_LOG_INFO", VURS_LOG_INFO as u32),
        ("VURS_LOG_DEBUG", VURS_LOG_DEBUG as u32),
    ] {
        v.push((name.to_string(), value as usize));
    }
    v.sort();
    v
}
