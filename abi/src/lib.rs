//! The vurs module ABI: `#[repr(C)]` mirror of `include/vurs_module.h` (the single source
//! of truth; `tests/abi_layout.rs` checks that both agree), and a small SDK ([`sdk`]) for
//! writing modules in Rust.
#![allow(non_camel_case_types)]
#![deny(missing_docs)]

pub mod sdk;

use std::ffi::{c_char, c_int, c_void};

/// Major version of the ABI: a module's `abi_major` must equal it (a new major is a new
/// symbol name).
pub const VURS_ABI_MAJOR: u32 = 1;
/// Minor version of the ABI: a new minor only appends struct fields and adds constants.
pub const VURS_ABI_MINOR: u32 = 2;
/// Name of the exported descriptor symbol (without the trailing NUL).
pub const VURS_MODULE_SYMBOL: &str = "vurs_module_v1";

/// Flag: mounts map paths to host paths (callback `redirect`).
pub const VURS_F_PATH_REDIRECT: u32 = 0x0001;
/// Flag: mounts are served: `open`/`stat`/... callbacks, virtual descriptors.
pub const VURS_F_PATH_SERVE: u32 = 0x0002;
/// Flag: calls may block: vurs runs them on worker threads.
pub const VURS_F_MAY_BLOCK: u32 = 0x0004;
/// Flag: vurs never calls this instance from two threads at once.
pub const VURS_F_SERIAL: u32 = 0x0008;
/// Flag: clock calls must trap: vurs hides the vDSO from tracees.
pub const VURS_F_HIDE_VDSO: u32 = 0x0010;
/// Flag: `redirect` maps the mount one-to-one onto a host tree (`redirect(sub)` is
/// `redirect("") + "/" + sub` for reads), so the kernel may resolve a plain name relative to
/// a directory inside it without asking the module.
pub const VURS_F_SUBTREE: u32 = 0x0020;
/// Flag: the module reads [`vurs_caller`]'s credentials: vurs keeps them current (set*id
/// calls trap; since ABI 1.1).
pub const VURS_F_CREDS: u32 = 0x0040;
/// Flag: a serving module checks permissions itself (its `access` callback and its
/// errors); without it vurs applies the kernel's DAC rules to the module's stat answers,
/// as FUSE's `default_permissions` (since ABI 1.1).
pub const VURS_F_OWN_PERMISSIONS: u32 = 0x0080;

/// Verdict ([`vurs_result::verdict`]): let the kernel run the call unchanged.
pub const VURS_PASS: u32 = 0;
/// Verdict: skip the call; the caller sees `retval` (a value or -errno).
pub const VURS_RETURN: u32 = 1;
/// Verdict: let the kernel run the call with `args` changed per `args_mask`.
pub const VURS_REWRITE: u32 = 2;
/// Verdict: let the call go on (kernel or path modules), with `args` changed per
/// `args_mask` as for [`VURS_REWRITE`] when the mask is not zero, then call the module's
/// `syscall_exit` with its result (since ABI 1.1).
pub const VURS_PASS_EXIT: u32 = 3;
/// [`vurs_timespec::nsec`] for `utimens`: leave this time as it is (as `UTIME_OMIT`).
pub const VURS_UTIME_OMIT: i64 = (1 << 30) - 2;

/// Access intent of a path lookup (`redirect`'s `access`): reads the object or its
/// metadata.
pub const VURS_ACCESS_READ: u32 = 0x1;
/// Access intent: changes the object, its metadata or its directory.
pub const VURS_ACCESS_WRITE: u32 = 0x2;
/// Access intent: executes the object.
pub const VURS_ACCESS_EXEC: u32 = 0x4;
/// Access intent: may create the object.
pub const VURS_ACCESS_CREATE: u32 = 0x8;
/// Access intent: removes the name (unlink, rmdir, the source of a rename), with
/// [`VURS_ACCESS_WRITE`] (since ABI 1.1).
pub const VURS_ACCESS_REMOVE: u32 = 0x10;

/// Log level for [`vurs_services::log`]: error.
pub const VURS_LOG_ERROR: c_int = 0;
/// Log level for [`vurs_services::log`]: warning.
pub const VURS_LOG_WARN: c_int = 1;
/// Log level for [`vurs_services::log`]: information.
pub const VURS_LOG_INFO: c_int = 2;
/// Log level for [`vurs_services::log`]: debugging detail.
pub const VURS_LOG_DEBUG: c_int = 3;

/// The process that made the call, as libfuse's `fuse_context`. The ids are the session's
/// view of the caller: the kernel's ids of that process, unless a module (fakeroot) set
/// other ones with [`vurs_services::set_ids`]. Fields after `egid` exist since ABI 1.1:
/// read them only when [`vurs_services::abi_minor`] >= 1.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct vurs_caller {
    /// Thread-group id (the process id).
    pub pid: i32,
    /// Thread id.
    pub tid: i32,
    /// Real user id.
    pub uid: u32,
    /// Effective user id.
    pub euid: u32,
    /// Real group id.
    pub gid: u32,
    /// Effective group id.
    pub egid: u32,
    /// Saved set-user id (since 1.1).
    pub suid: u32,
    /// Saved set-group id (since 1.1).
    pub sgid: u32,
    /// User id for file-system access checks (since 1.1).
    pub fsuid: u32,
    /// Group id for file-system access checks (since 1.1).
    pub fsgid: u32,
    /// File mode creation mask (since 1.1).
    pub umask: u32,
    /// Number of supplementary groups at `groups` (since 1.1).
    pub ngroups: u32,
    /// Supplementary groups (since 1.1).
    pub groups: *const u32,
}

/// A process's ids for [`vurs_services::set_ids`] (since ABI 1.1).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct vurs_ids {
    /// `size_of::<vurs_ids>()` as the module was built.
    pub size: u32,
    /// Real user id.
    pub uid: u32,
    /// Effective user id.
    pub euid: u32,
    /// Saved set-user id.
    pub suid: u32,
    /// File-system user id.
    pub fsuid: u32,
    /// Real group id.
    pub gid: u32,
    /// Effective group id.
    pub egid: u32,
    /// Saved set-group id.
    pub sgid: u32,
    /// File-system group id.
    pub fsgid: u32,
    /// Number of supplementary groups at `groups` (at most 65536).
    pub ngroups: u32,
    /// Supplementary groups.
    pub groups: *const u32,
}

/// A time for `utimens` and the clock services (since ABI 1.1).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct vurs_timespec {
    /// Seconds.
    pub sec: i64,
    /// Nanoseconds, 0..999999999, or [`VURS_UTIME_OMIT`].
    pub nsec: i64,
}

/// File-system statistics for `statfs`, as `struct statfs` (since ABI 1.1).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct vurs_statfs {
    /// `f_type` magic number.
    pub type_: u64,
    /// Block size (`f_bsize`).
    pub bsize: u64,
    /// Fragment size (`f_frsize`).
    pub frsize: u64,
    /// Total blocks.
    pub blocks: u64,
    /// Free blocks.
    pub bfree: u64,
    /// Free blocks for unprivileged users.
    pub bavail: u64,
    /// Total inodes.
    pub files: u64,
    /// Free inodes.
    pub ffree: u64,
    /// Longest name.
    pub namelen: u64,
    /// Mount flags (`ST_RDONLY`, ...; vurs adds `ST_RDONLY` on a read-only mount).
    pub flags: u64,
}

#[repr(C)]
#[derive(Debug)]
/// One trapped system call, as the module sees it.
pub struct vurs_call {
    /// `size_of::<vurs_call>()` as vurs was built.
    pub size: u32,
    /// System call number of the host architecture.
    pub nr: i32,
    /// Raw arguments.
    pub args: [u64; 6],
    /// The process that made the call.
    pub caller: *const vurs_caller,
    /// Opaque: pass it to the memory services of [`vurs_services`].
    pub ctx: *mut c_void,
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
/// What a handler decided. vurs zeroes it and sets `size` before the call.
pub struct vurs_result {
    /// `size_of::<vurs_result>()` as vurs was built.
    pub size: u32,
    /// [`VURS_PASS`], [`VURS_RETURN`] or [`VURS_REWRITE`].
    pub verdict: u32,
    /// [`VURS_RETURN`]: the value the caller sees, or -errno.
    pub retval: i64,
    /// [`VURS_REWRITE`]: bit i set = `args[i]` replaces the caller's argument i.
    pub args_mask: u32,
    /// Unused; zero.
    pub reserved: u32,
    /// [`VURS_REWRITE`]: the replacement arguments selected by `args_mask`.
    pub args: [u64; 6],
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
/// File metadata in an architecture-neutral layout; vurs converts it to the caller's
/// `struct stat` or `struct statx`.
pub struct vurs_stat {
    /// Device of the file (`st_dev`).
    pub dev: u64,
    /// Inode number (`st_ino`).
    pub ino: u64,
    /// File type and permission bits (`st_mode`, `S_IF*` | mode).
    pub mode: u32,
    /// Number of hard links.
    pub nlink: u32,
    /// Owner's user id.
    pub uid: u32,
    /// Owner's group id.
    pub gid: u32,
    /// Device number, for a device file (`st_rdev`).
    pub rdev: u64,
    /// Size in bytes.
    pub size: i64,
    /// Preferred I/O block size.
    pub blksize: i64,
    /// Number of 512-byte blocks allocated.
    pub blocks: i64,
    /// Last access time, seconds.
    pub atime_sec: i64,
    /// Last modification time, seconds.
    pub mtime_sec: i64,
    /// Last status change time, seconds.
    pub ctime_sec: i64,
    /// Last access time, nanoseconds part.
    pub atime_nsec: u32,
    /// Last modification time, nanoseconds part.
    pub mtime_nsec: u32,
    /// Last status change time, nanoseconds part.
    pub ctime_nsec: u32,
    /// Unused; zero.
    pub reserved: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
/// One directory entry for `readdir`.
pub struct vurs_dirent {
    /// Inode number.
    pub ino: u64,
    /// File type, `d_type` as in `<dirent.h>` (`DT_REG`, `DT_DIR`, ...); `type` in C.
    pub type_: u8,
    /// Entry name, NUL-terminated.
    pub name: [c_char; 256],
}

/// [`vurs_services::read_mem`]: `(ctx, addr, buf, len)`, copies the caller's memory at
/// `addr` into `buf`; returns bytes copied or -EFAULT.
pub type ReadMemFn = unsafe extern "C" fn(*mut c_void, u64, *mut c_void, usize) -> i64;
/// [`vurs_services::write_mem`]: `(ctx, addr, buf, len)`, copies `buf` into the caller's
/// memory at `addr`; returns bytes copied or -EFAULT.
pub type WriteMemFn = unsafe extern "C" fn(*mut c_void, u64, *const c_void, usize) -> i64;
/// [`vurs_services::read_string`]: `(ctx, addr, buf, cap)`, reads a NUL-terminated string
/// of at most `cap`-1 bytes; returns its length, -EFAULT or -ENAMETOOLONG.
pub type ReadStringFn = unsafe extern "C" fn(*mut c_void, u64, *mut c_char, usize) -> i64;
/// [`vurs_services::scratch`]: `(ctx, data, len)`, copies `data` into scratch memory of
/// the caller; returns its address, or 0 if none is left (see the field).
pub type ScratchFn = unsafe extern "C" fn(*mut c_void, *const c_void, usize) -> u64;
/// [`vurs_services::log`]: `(level, module, msg)`, writes one line to vurs's log.
pub type LogFn = unsafe extern "C" fn(c_int, *const c_char, *const c_char);
/// [`vurs_services::cwd`]: `(ctx, buf, cap)`, writes the caller's virtual working
/// directory; returns its length, -ERANGE or another -errno.
pub type CwdFn = unsafe extern "C" fn(*mut c_void, *mut c_char, usize) -> i64;
/// [`vurs_services::caller`]: the caller of the callback running on this thread, or null.
pub type CallerFn = unsafe extern "C" fn() -> *const vurs_caller;
/// [`vurs_services::clock_gettime`]: `(clockid, ts)`, the session's view of a clock.
pub type ClockGettimeFn = unsafe extern "C" fn(i32, *mut vurs_timespec) -> c_int;
/// [`vurs_services::stat_at`]: `(ctx, dirfd, path, flags, st)`, fstatat as the caller.
pub type StatAtFn = unsafe extern "C" fn(*mut c_void, i32, *const c_char, i32, *mut vurs_stat) -> c_int;
/// [`vurs_services::set_ids`]: `(ctx, ids)`, sets the session's view of the caller's ids.
pub type SetIdsFn = unsafe extern "C" fn(*mut c_void, *const vurs_ids) -> c_int;
/// [`vurs_services::host_path`]: `(ctx, dirfd, path, flags, buf, cap)`, the host path of
/// what the caller names.
pub type HostPathFn = unsafe extern "C" fn(*mut c_void, i32, *const c_char, i32, *mut c_char, usize) -> i64;
/// [`vurs_services::set_plain`]: `(mnt, plain)`, whether a mount is a plain subtree now.
pub type SetPlainFn = unsafe extern "C" fn(*mut c_void, i32) -> c_int;

/// Services vurs offers to a module; valid from `init` until `fini`.
#[repr(C)]
pub struct vurs_services {
    /// `size_of::<vurs_services>()` as vurs was built.
    pub size: u32,
    /// [`VURS_ABI_MINOR`] of vurs.
    pub abi_minor: u32,
    /// Copies the caller's memory into ours; returns bytes copied or -EFAULT.
    pub read_mem: Option<ReadMemFn>,
    /// Copies our memory into the caller's; returns bytes copied or -EFAULT.
    pub write_mem: Option<WriteMemFn>,
    /// Reads a NUL-terminated string of at most cap-1 bytes; returns its length, -EFAULT or
    /// -ENAMETOOLONG.
    pub read_string: Option<ReadStringFn>,
    /// Copies `len` bytes into memory of the caller that no program owns and that stays
    /// valid until the call completes; returns its address, or 0 if none is left. The first
    /// time a process needs scratch memory it has none yet: the call returns 0, vurs maps
    /// some and calls the handler again for the same system call, so ask for scratch before
    /// doing anything that must not happen twice.
    pub scratch: Option<ScratchFn>,
    /// Writes one line to vurs's log (`--trace` / stderr).
    pub log: Option<LogFn>,
    /// Writes the caller's virtual working directory (NUL-terminated) into `buf`; returns its
    /// length, -ERANGE if `cap` is too small, or another -errno. Costs a /proc lookup, so it
    /// is not part of [`vurs_caller`].
    pub cwd: Option<CwdFn>,
    /// The caller of the callback running on this thread, as `fuse_get_context()`; null
    /// outside one (init, mounts from the command line, lifecycle hooks). Since 1.1.
    pub caller: Option<CallerFn>,
    /// The session's view of clock `clockid`: the newest loaded module with a `clock`
    /// callback answers (the time module), else the host. 0 or -errno. Since 1.1.
    pub clock_gettime: Option<ClockGettimeFn>,
    /// `fstatat(dirfd, path, st, flags)` as the caller would see it (its cwd, descriptors,
    /// virtual mounts and root); flags `AT_SYMLINK_NOFOLLOW`, `AT_EMPTY_PATH`. Only from a
    /// syscall or syscall_exit handler. 0 or -errno. Since 1.1.
    pub stat_at: Option<StatAtFn>,
    /// Sets the session's view of the calling process's ids (what [`vurs_caller`] shows and
    /// vurs's own permission checks use); inherited by fork, kept by exec; the kernel's ids
    /// do not change. Only from a syscall or syscall_exit handler. 0 or -errno. Since 1.1.
    pub set_ids: Option<SetIdsFn>,
    /// The host path of the file the caller names with `(dirfd, path, flags)`, as `stat_at`
    /// resolves it (the final component need not exist), NUL-terminated into `buf`: where
    /// the kernel finds it, whatever the caller's mounts and root. Its length, -ERANGE,
    /// -EXDEV for a file a module serves, or another -errno. Only from a syscall or
    /// syscall_exit handler. Since 1.1.
    pub host_path: Option<HostPathFn>,
    /// Mount `mnt` (the pointer the module's `mount` returned) is a plain subtree from now
    /// on (1) or no longer (0): for this mount and for now, what [`VURS_F_SUBTREE`] says of
    /// every mount of a module (`redirect(sub)` is `redirect("") + "/" + sub` for reads,
    /// and each directory lists itself). Withdraw it before answering the call that changes
    /// the view. Returns 0. Since 1.2.
    pub set_plain: Option<SetPlainFn>,
}

/// [`vurs_module::init`]: `(svc, options, err, errlen)`, returns an instance or NULL with
/// a reason in `err`.
pub type InitFn =
    unsafe extern "C" fn(*const vurs_services, *const c_char, *mut c_char, usize) -> *mut c_void;
/// [`vurs_module::fini`]: `(inst)`, releases an instance.
pub type FiniFn = unsafe extern "C" fn(*mut c_void);
/// [`vurs_module::mount`]: `(inst, source, target, options, mnt, err, errlen)`, returns 0
/// and a per-mount pointer in `*mnt`, or -errno with a reason in `err`.
pub type MountFn = unsafe extern "C" fn(
    *mut c_void,
    *const c_char,
    *const c_char,
    *const c_char,
    *mut *mut c_void,
    *mut c_char,
    usize,
) -> c_int;
/// [`vurs_module::umount`]: `(inst, mnt)`, releases a mount.
pub type UmountFn = unsafe extern "C" fn(*mut c_void, *mut c_void);
/// [`vurs_module::redirect`]: `(inst, mnt, subpath, access, out, outcap)`, writes the host
/// path of `subpath`; returns 0 or -errno.
pub type RedirectFn =
    unsafe extern "C" fn(*mut c_void, *mut c_void, *const c_char, u32, *mut c_char, usize) -> c_int;
/// [`vurs_module::open`]: `(inst, mnt, subpath, flags, mode, handle)`, returns 0 and a
/// handle in `*handle`, or -errno.
pub type OpenFn =
    unsafe extern "C" fn(*mut c_void, *mut c_void, *const c_char, i32, u32, *mut *mut c_void) -> c_int;
/// [`vurs_module::stat`]: `(inst, mnt, subpath, st)`, lstat semantics; returns 0 or -errno.
pub type StatFn = unsafe extern "C" fn(*mut c_void, *mut c_void, *const c_char, *mut vurs_stat) -> c_int;
/// [`vurs_module::readlink`]: `(inst, mnt, subpath, buf, cap)`, returns the length of the
/// target written to `buf`, or -errno.
pub type ReadlinkFn =
    unsafe extern "C" fn(*mut c_void, *mut c_void, *const c_char, *mut c_char, usize) -> i64;
/// [`vurs_module::pread`]: `(inst, handle, buf, len, off)`, returns bytes read or -errno.
pub type PreadFn = unsafe extern "C" fn(*mut c_void, *mut c_void, *mut c_void, usize, i64) -> i64;
/// [`vurs_module::pwrite`]: `(inst, handle, buf, len, off)`, returns bytes written or
/// -errno.
pub type PwriteFn = unsafe extern "C" fn(*mut c_void, *mut c_void, *const c_void, usize, i64) -> i64;
/// [`vurs_module::fstat`]: `(inst, handle, st)`, returns 0 or -errno.
pub type FstatFn = unsafe extern "C" fn(*mut c_void, *mut c_void, *mut vurs_stat) -> c_int;
/// [`vurs_module::readdir`]: `(inst, handle, index, out)`, returns 1 (filled), 0 (end) or
/// -errno.
pub type ReaddirFn = unsafe extern "C" fn(*mut c_void, *mut c_void, u64, *mut vurs_dirent) -> c_int;
/// [`vurs_module::close`]: `(inst, handle)`, releases a handle.
pub type CloseFn = unsafe extern "C" fn(*mut c_void, *mut c_void);
/// [`vurs_module::syscall`]: `(inst, call, res)`, returns 0 with `res` filled, or -E as a
/// shortcut for [`VURS_RETURN`] with `retval` -E.
pub type SyscallFn = unsafe extern "C" fn(*mut c_void, *const vurs_call, *mut vurs_result) -> c_int;
/// `(inst, mnt, subpath, mode)`: [`vurs_module::mkdir`], and `mode` variants.
pub type PathModeFn = unsafe extern "C" fn(*mut c_void, *mut c_void, *const c_char, u32) -> c_int;
/// `(inst, mnt, subpath)`: [`vurs_module::rmdir`], [`vurs_module::unlink`].
pub type PathFn = unsafe extern "C" fn(*mut c_void, *mut c_void, *const c_char) -> c_int;
/// [`vurs_module::rename`]: `(inst, mnt, from, to, flags)`.
pub type RenameFn =
    unsafe extern "C" fn(*mut c_void, *mut c_void, *const c_char, *const c_char, u32) -> c_int;
/// `(inst, mnt, a, b)`: [`vurs_module::link`] (from, to) and [`vurs_module::symlink`]
/// (target text, subpath).
pub type TwoPathFn = unsafe extern "C" fn(*mut c_void, *mut c_void, *const c_char, *const c_char) -> c_int;
/// [`vurs_module::mknod`]: `(inst, mnt, subpath, mode, rdev)`.
pub type MknodFn = unsafe extern "C" fn(*mut c_void, *mut c_void, *const c_char, u32, u64) -> c_int;
/// [`vurs_module::chmod`]: `(inst, mnt, subpath, handle, mode)`.
pub type ChmodFn = unsafe extern "C" fn(*mut c_void, *mut c_void, *const c_char, *mut c_void, u32) -> c_int;
/// [`vurs_module::chown`]: `(inst, mnt, subpath, handle, uid, gid)`.
pub type ChownFn =
    unsafe extern "C" fn(*mut c_void, *mut c_void, *const c_char, *mut c_void, u32, u32) -> c_int;
/// [`vurs_module::truncate`]: `(inst, mnt, subpath, handle, size)`.
pub type TruncateFn =
    unsafe extern "C" fn(*mut c_void, *mut c_void, *const c_char, *mut c_void, i64) -> c_int;
/// [`vurs_module::utimens`]: `(inst, mnt, subpath, handle, tv)` with `tv[0]` atime, `tv[1]`
/// mtime.
pub type UtimensFn =
    unsafe extern "C" fn(*mut c_void, *mut c_void, *const c_char, *mut c_void, *const vurs_timespec) -> c_int;
/// [`vurs_module::statfs`]: `(inst, mnt, subpath, st)`.
pub type StatfsFn = unsafe extern "C" fn(*mut c_void, *mut c_void, *const c_char, *mut vurs_statfs) -> c_int;
/// [`vurs_module::fsync`]: `(inst, handle, datasync)`.
pub type FsyncFn = unsafe extern "C" fn(*mut c_void, *mut c_void, i32) -> c_int;
/// [`vurs_module::getxattr`]: `(inst, mnt, subpath, handle, name, buf, cap)`, a length or
/// -errno.
pub type GetxattrFn = unsafe extern "C" fn(
    *mut c_void,
    *mut c_void,
    *const c_char,
    *mut c_void,
    *const c_char,
    *mut c_void,
    usize,
) -> i64;
/// [`vurs_module::setxattr`]: `(inst, mnt, subpath, handle, name, value, len, flags)`.
pub type SetxattrFn = unsafe extern "C" fn(
    *mut c_void,
    *mut c_void,
    *const c_char,
    *mut c_void,
    *const c_char,
    *const c_void,
    usize,
    i32,
) -> c_int;
/// [`vurs_module::listxattr`]: `(inst, mnt, subpath, handle, buf, cap)`, a length or -errno.
pub type ListxattrFn =
    unsafe extern "C" fn(*mut c_void, *mut c_void, *const c_char, *mut c_void, *mut c_char, usize) -> i64;
/// [`vurs_module::removexattr`]: `(inst, mnt, subpath, handle, name)`.
pub type RemovexattrFn =
    unsafe extern "C" fn(*mut c_void, *mut c_void, *const c_char, *mut c_void, *const c_char) -> c_int;
/// [`vurs_module::access`]: `(inst, mnt, subpath, mask)`.
pub type AccessFn = unsafe extern "C" fn(*mut c_void, *mut c_void, *const c_char, i32) -> c_int;
/// [`vurs_module::proc_fork`]: `(inst, parent, child)`.
pub type ProcForkFn = unsafe extern "C" fn(*mut c_void, i32, i32);
/// [`vurs_module::proc_exec`], [`vurs_module::proc_exit`]: `(inst, pid)`.
pub type ProcFn = unsafe extern "C" fn(*mut c_void, i32);
/// [`vurs_module::syscall_exit`]: `(inst, call, retval)`.
pub type SyscallExitFn = unsafe extern "C" fn(*mut c_void, *const vurs_call, *mut i64);
/// [`vurs_module::list`]: `(inst, mnt, subpath, index, out)`, 1 filled, 0 end, -ENOSYS
/// (list the host directory) or -errno.
pub type ListFn =
    unsafe extern "C" fn(*mut c_void, *mut c_void, *const c_char, u64, *mut vurs_dirent) -> c_int;
/// [`vurs_module::clock`]: `(inst, clockid, ts)`.
pub type ClockFn = unsafe extern "C" fn(*mut c_void, i32, *mut vurs_timespec) -> c_int;

/// The module descriptor exported as [`VURS_MODULE_SYMBOL`]. Callbacks a module does not
/// implement are `None`; a missing handler means "not served here" (the call goes on as if
/// no module claimed it, or fails with ENOSYS where it cannot: see docs/modules.md).
#[repr(C)]
pub struct vurs_module {
    /// [`VURS_ABI_MAJOR`].
    pub abi_major: u32,
    /// [`VURS_ABI_MINOR`] the module was built against.
    pub abi_minor: u32,
    /// `size_of::<vurs_module>()` as the module was built; fields beyond it are treated as
    /// absent.
    pub size: u32,
    /// `VURS_F_*` flags.
    pub flags: u32,
    /// Mount type and lsmod name, e.g. "fsremap" (NUL-terminated).
    pub name: *const c_char,
    /// One line (NUL-terminated).
    pub description: *const c_char,
    /// Syscall service: the numbers this module handles (`nsyscalls` of them).
    pub syscalls: *const i32,
    /// Length of `syscalls`.
    pub nsyscalls: u32,
    /// Unused; zero.
    pub reserved: u32,
    /// Parses `options` ("k=v,k=v", may be empty) and returns an instance (any non-null
    /// pointer), or null with a one-line reason in `err`. Called once per load.
    pub init: Option<InitFn>,
    /// Releases an instance.
    pub fini: Option<FiniFn>,
    /// Path modules: mounts `source` on `target` (an absolute canonical virtual path) with
    /// the mount's `options` ("ro,k=v"); returns 0 and a per-mount pointer in `*mnt`, or
    /// -errno with a reason in `err`.
    pub mount: Option<MountFn>,
    /// Releases a mount made by `mount`.
    pub umount: Option<UmountFn>,
    /// Redirect service: maps `subpath` (relative to the mount's target, "" for the target
    /// itself, never starting with '/') to a host path written to `out` (NUL-terminated).
    /// Returns 0 or -errno (e.g. -EROFS for [`VURS_ACCESS_WRITE`] on a read-only mount).
    pub redirect: Option<RedirectFn>,
    /// Serve service: opens canonical `subpath` (vurs resolves symlinks and ".." inside the
    /// mount itself; the final component is already followed unless `O_NOFOLLOW`).
    pub open: Option<OpenFn>,
    /// Serve service: metadata of `subpath`, never following a final symlink (lstat).
    pub stat: Option<StatFn>,
    /// Serve service: target of the symlink `subpath`.
    pub readlink: Option<ReadlinkFn>,
    /// Serve service: reads from an open handle at an offset.
    pub pread: Option<PreadFn>,
    /// Serve service: writes to an open handle at an offset.
    pub pwrite: Option<PwriteFn>,
    /// Serve service: metadata of an open handle.
    pub fstat: Option<FstatFn>,
    /// Serve service: directory entry number `index` (0, 1, ...): 1 = filled, 0 = end, or
    /// -errno.
    pub readdir: Option<ReaddirFn>,
    /// Serve service: releases an open handle.
    pub close: Option<CloseFn>,
    /// Syscall service: called for each call whose number is in `syscalls`. Returns 0 and
    /// fills `res`; a negative return -E is a shortcut for [`VURS_RETURN`] with `retval` -E.
    pub syscall: Option<SyscallFn>,
    /// Targets a serving module mounts itself when loaded at start (null-terminated list, or
    /// null): each gets `mount(inst, NAME, target, "", ...)`. E.g. the uname module serves
    /// /proc/sys/kernel/hostname.
    pub auto_mounts: *const *const c_char,

    // ---- since ABI 1.1: vurs treats them as None when `size` does not cover them ----
    /// Serve: creates directory `subpath` (mode already masked by the caller's umask).
    pub mkdir: Option<PathModeFn>,
    /// Serve: removes the empty directory `subpath`.
    pub rmdir: Option<PathFn>,
    /// Serve: removes the non-directory `subpath`.
    pub unlink: Option<PathFn>,
    /// Serve: renames `from` to `to` (flags `RENAME_NOREPLACE`, `RENAME_EXCHANGE`).
    pub rename: Option<RenameFn>,
    /// Serve: makes `to` a hard link to the existing `from`.
    pub link: Option<TwoPathFn>,
    /// Serve: creates symlink `subpath` (the 4th argument) whose text is `target` (the
    /// 3rd).
    pub symlink: Option<TwoPathFn>,
    /// Serve: creates a node (regular, fifo, socket, device); `None` answers EPERM.
    pub mknod: Option<MknodFn>,
    /// Serve: changes permission bits (handle non-null for fchmod).
    pub chmod: Option<ChmodFn>,
    /// Serve: changes owner and group (`u32::MAX` leaves one).
    pub chown: Option<ChownFn>,
    /// Serve: changes the size.
    pub truncate: Option<TruncateFn>,
    /// Serve: sets access and modification times (`nsec` may be [`VURS_UTIME_OMIT`]).
    pub utimens: Option<UtimensFn>,
    /// Serve: file-system statistics.
    pub statfs: Option<StatfsFn>,
    /// Serve: flushes an open handle (`datasync` for fdatasync).
    pub fsync: Option<FsyncFn>,
    /// Serve: reads an extended attribute; `cap` 0 asks for the size. `None` answers ENOTSUP.
    pub getxattr: Option<GetxattrFn>,
    /// Serve: sets an extended attribute (`XATTR_CREATE`, `XATTR_REPLACE`).
    pub setxattr: Option<SetxattrFn>,
    /// Serve: lists extended attribute names (NUL-separated); `cap` 0 asks for the size.
    pub listxattr: Option<ListxattrFn>,
    /// Serve: removes an extended attribute.
    pub removexattr: Option<RemovexattrFn>,
    /// Serve: access(2) check, asked only with [`VURS_F_OWN_PERMISSIONS`].
    pub access: Option<AccessFn>,
    /// Lifecycle: process `child` was forked by `parent`.
    pub proc_fork: Option<ProcForkFn>,
    /// Lifecycle: process `pid` completed an execve.
    pub proc_exec: Option<ProcFn>,
    /// Lifecycle: process `pid` exited (its last thread is gone).
    pub proc_exit: Option<ProcFn>,
    /// Syscall service: at the exit of a call its handler answered [`VURS_PASS_EXIT`];
    /// `*retval` holds the result and may be changed.
    pub syscall_exit: Option<SyscallExitFn>,
    /// The module's view of clock `clockid`: what [`vurs_services::clock_gettime`] answers
    /// while this module is loaded.
    pub clock: Option<ClockFn>,
    /// Redirecting modules: entry `index` of directory `subpath` when its listing is not
    /// the host directory's (a merged view); 1 filled, 0 end, -ENOSYS list the host
    /// directory. vurs answers getdents64 from it, the entry number as the offset.
    pub list: Option<ListFn>,
}

/// The exported symbol's type: a descriptor in a `static` (raw pointers are not `Sync`).
#[repr(transparent)]
pub struct ModuleExport(
    /// The descriptor itself.
    pub vurs_module,
);
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
        vurs_caller { pid, tid, uid, euid, gid, egid, suid, sgid, fsuid, fsgid, umask, ngroups, groups }
        vurs_ids { size, uid, euid, suid, fsuid, gid, egid, sgid, fsgid, ngroups, groups }
        vurs_timespec { sec, nsec }
        vurs_statfs { bsize, frsize, blocks, bfree, bavail, files, ffree, namelen, flags }
        vurs_call { size, nr, args, caller, ctx }
        vurs_result { size, verdict, retval, args_mask, reserved, args }
        vurs_stat { dev, ino, mode, nlink, uid, gid, rdev, size, blksize, blocks, atime_sec,
                    mtime_sec, ctime_sec, atime_nsec, mtime_nsec, ctime_nsec, reserved }
        vurs_dirent { ino, name }
        vurs_services { size, abi_minor, read_mem, write_mem, read_string, scratch, log, cwd,
                        caller, clock_gettime, stat_at, set_ids, host_path, set_plain }
        vurs_module { abi_major, abi_minor, size, flags, name, description, syscalls, nsyscalls,
                      reserved, init, fini, mount, umount, redirect, open, stat, readlink,
                      pread, pwrite, fstat, readdir, close, syscall, auto_mounts, mkdir, rmdir,
                      unlink, rename, link, symlink, mknod, chmod, chown, truncate, utimens,
                      statfs, fsync, getxattr, setxattr, listxattr, removexattr, access,
                      proc_fork, proc_exec, proc_exit, syscall_exit, clock, list }
    };
    v.push(("vurs_dirent.type".into(), offset_of!(vurs_dirent, type_)));
    v.push(("vurs_statfs.type".into(), offset_of!(vurs_statfs, type_)));
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
        ("VURS_F_OWN_PERMISSIONS", VURS_F_OWN_PERMISSIONS),
        ("VURS_PASS_EXIT", VURS_PASS_EXIT),
        ("VURS_UTIME_OMIT", VURS_UTIME_OMIT as u32),
        ("VURS_PASS", VURS_PASS),
        ("VURS_RETURN", VURS_RETURN),
        ("VURS_REWRITE", VURS_REWRITE),
        ("VURS_ACCESS_READ", VURS_ACCESS_READ),
        ("VURS_ACCESS_WRITE", VURS_ACCESS_WRITE),
        ("VURS_ACCESS_EXEC", VURS_ACCESS_EXEC),
        ("VURS_ACCESS_CREATE", VURS_ACCESS_CREATE),
        ("VURS_ACCESS_REMOVE", VURS_ACCESS_REMOVE),
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
