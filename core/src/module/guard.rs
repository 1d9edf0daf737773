//! Calls into module code with faults contained: the Rust side of csrc/guard.c.
//!
//! A callback runs through `call`, which hands the C shim the function pointer and its
//! arguments as machine words; the shim sets a sigsetjmp point and makes the call, so a
//! SIGSEGV/SIGBUS/SIGFPE/SIGILL raised by the module's own code comes back as
//! `Err(signal)` instead of killing the session (the jump never crosses a Rust frame).
//! `Paused` leaves the guarded region while vurs's own code runs inside a callback (the
//! services table), and `copy` / `strnlen` touch memory through module pointers under a
//! guard of their own.
use std::ffi::{c_char, c_int, c_void};

/// Which callback (its C signature); mirrors `enum vurs_guard_kind` in csrc/guard.c.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Kind {
    Init = 0,
    Fini,
    Mount,
    Umount,
    Redirect,
    Open,
    Stat,
    Readlink,
    Pread,
    Pwrite,
    Fstat,
    Readdir,
    Close,
    Syscall,
    // ABI 1.1
    Mkdir,
    Rmdir,
    Unlink,
    Rename,
    Link,
    Symlink,
    Mknod,
    Chmod,
    Chown,
    Truncate,
    Utimens,
    Statfs,
    Fsync,
    Getxattr,
    Setxattr,
    Listxattr,
    Removexattr,
    Access,
    ProcFork,
    ProcExec,
    ProcExit,
    SyscallExit,
    Clock,
    List,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Init => "init",
            Kind::Fini => "fini",
            Kind::Mount => "mount",
            Kind::Umount => "umount",
            Kind::Redirect => "redirect",
            Kind::Open => "open",
            Kind::Stat => "stat",
            Kind::Readlink => "readlink",
            Kind::Pread => "pread",
            Kind::Pwrite => "pwrite",
            Kind::Fstat => "fstat",
            Kind::Readdir => "readdir",
            Kind::Close => "close",
            Kind::Syscall => "syscall",
            Kind::Mkdir => "mkdir",
            Kind::Rmdir => "rmdir",
            Kind::Unlink => "unlink",
            Kind::Rename => "rename",
            Kind::Link => "link",
            Kind::Symlink => "symlink",
            Kind::Mknod => "mknod",
            Kind::Chmod => "chmod",
            Kind::Chown => "chown",
            Kind::Truncate => "truncate",
            Kind::Utimens => "utimens",
            Kind::Statfs => "statfs",
            Kind::Fsync => "fsync",
            Kind::Getxattr => "getxattr",
            Kind::Setxattr => "setxattr",
            Kind::Listxattr => "listxattr",
            Kind::Removexattr => "removexattr",
            Kind::Access => "access",
            Kind::ProcFork => "proc_fork",
            Kind::ProcExec => "proc_exec",
            Kind::ProcExit => "proc_exit",
            Kind::SyscallExit => "syscall_exit",
            Kind::Clock => "clock",
            Kind::List => "list",
        }
    }
}

/// `struct vurs_guard_call` of csrc/guard.c.
#[repr(C)]
struct GuardCall {
    kind: u32,
    func: *const c_void,
    args: [u64; 8],
    ret: i64,
    ret_ptr: *mut c_void,
}

extern "C" {
    fn vurs_guard_call(c: *mut GuardCall) -> c_int;
    fn vurs_guard_pause() -> *mut c_void;
    fn vurs_guard_resume(token: *mut c_void);
    fn vurs_guard_copy(dst: *mut c_void, src: *const c_void, n: usize) -> c_int;
    fn vurs_guard_strnlen(s: *const c_char, max: usize) -> i64;
}

/// What a guarded callback returned: its integer result and its pointer result (init).
pub struct Returned {
    pub value: i64,
    pub ptr: *mut c_void,
}

/// Call `func` (a callback of signature `kind`) with `args` as machine words, in order.
/// `Err(signal)` if the module's code faulted.
///
/// # Safety
/// `func` must be a function of the C signature `kind` stands for (see csrc/guard.c), and
/// `args` valid arguments for it (pointers valid for what the callback may do with them).
pub unsafe fn call(kind: Kind, func: *const c_void, args: &[u64]) -> Result<Returned, i32> {
    let mut c = GuardCall { kind: kind as u32, func, args: [0; 8], ret: 0, ret_ptr: std::ptr::null_mut() };
    c.args[..args.len()].copy_from_slice(args);
    // SAFETY: per this function's contract; the shim only calls `func` with `args`.
    let sig = unsafe { vurs_guard_call(&mut c) };
    if sig != 0 {
        return Err(sig);
    }
    Ok(Returned { value: c.ret, ptr: c.ret_ptr })
}

/// While alive, this thread is outside any guarded region (vurs's own code runs).
pub struct Paused(*mut c_void);

impl Paused {
    pub fn new() -> Paused {
        // SAFETY: reads and clears a thread-local of the shim.
        Paused(unsafe { vurs_guard_pause() })
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        // SAFETY: gives back the token vurs_guard_pause returned on this thread.
        unsafe { vurs_guard_resume(self.0) }
    }
}

/// Copy `n` bytes between pointers a module gave: Err(EFAULT) if one of them faults.
///
/// # Safety
/// `dst` must not overlap vurs memory that Rust code holds a reference to.
pub unsafe fn copy(dst: *mut c_void, src: *const c_void, n: usize) -> Result<(), i32> {
    // SAFETY: the shim catches a fault on either pointer; see the contract above.
    match unsafe { vurs_guard_copy(dst, src, n) } {
        0 => Ok(()),
        _ => Err(libc::EFAULT),
    }
}

/// The bytes of a NUL-terminated string a module gave (at most `max`), or None if the
/// pointer is NULL or faults.
pub fn c_string(p: *const c_char, max: usize) -> Option<Vec<u8>> {
    if p.is_null() {
        return None;
    }
    // SAFETY: the shim catches a fault while it looks for the NUL.
    let n = unsafe { vurs_guard_strnlen(p, max) };
    let n = usize::try_from(n).ok()?;
    let mut out = vec![0u8; n];
    // SAFETY: the n bytes were just read by strnlen; the copy is guarded again.
    unsafe { copy(out.as_mut_ptr().cast(), p.cast(), n) }.ok()?;
    Some(out)
}

/// Name of a fault signal, for the logged line.
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGILL => "SIGILL",
        _ => "a signal",
    }
}
