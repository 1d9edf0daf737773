//! The one table of trapped system calls: for each call, which arguments are paths (and
//! how they resolve), which argument is a descriptor. Decoding, the seccomp filter, the
//! dispatch and the --trace formatting are all derived from it.
use syscalls::{Sysno, SysnoMap, SysnoSet};

/// Whether the last component of a path is followed when it is a symlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    Always,
    Never,
    /// Followed unless `flag` is set in argument `arg` (AT_SYMLINK_NOFOLLOW, ...).
    UnlessFlag(u8, u64),
    /// Followed only if `flag` is set in argument `arg` (AT_SYMLINK_FOLLOW).
    IfFlag(u8, u64),
    /// open(2) flags in argument `arg`: O_NOFOLLOW, or O_CREAT|O_EXCL, stop following.
    OpenFlags(u8),
    /// openat2(2): flags in the `struct open_how` that argument `arg` points to.
    OpenHow(u8),
}

/// What a call does to the object, for read-only mounts and modules' decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    Create,
    Exec,
    /// From open(2) flags in argument `arg`.
    OpenFlags(u8),
    OpenHow(u8),
    /// access(2) mode in argument `arg` (W_OK means write).
    Mode(u8),
}

/// Whether an empty path names the directory descriptor itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmptyPath {
    /// Never: an empty path is ENOENT.
    Never,
    /// When `flag` is set in argument `arg` (AT_EMPTY_PATH).
    IfFlag(u8, u64),
    /// Always (readlinkat since Linux 2.6.39: the link the descriptor refers to).
    Always,
}

impl EmptyPath {
    /// Whether an empty path names the descriptor, for a call with arguments `args`.
    pub fn applies(self, args: &[u64; 6]) -> bool {
        match self {
            EmptyPath::Never => false,
            EmptyPath::IfFlag(a, bit) => args[a as usize] & bit != 0,
            EmptyPath::Always => true,
        }
    }
}

/// One path argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathArg {
    pub arg: u8,
    /// Argument holding the directory fd a relative path starts from.
    pub dirfd: Option<u8>,
    pub follow: Follow,
    pub access: Access,
    /// When an empty path means "the dirfd itself".
    pub empty: EmptyPath,
    /// A NULL pointer means "the dirfd itself" (utimensat, fanotify_mark).
    pub null_ok: bool,
}

/// How the core treats a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Path arguments are resolved and dispatched by mount.
    Path,
    /// getcwd: answered from the virtual cwd.
    Getcwd,
    /// getdents64 on a real directory: entries for mount points missing on the host are
    /// added at its end.
    Getdents,
    /// readlink of /proc/<pid>/{cwd,exe,fd/N}: the result is reverse-translated.
    Readlink,
    /// AF_UNIX socket path in a sockaddr (bind, connect).
    SockAddr,
    /// mount(2) / umount2(2): may be a virtual mount.
    Mount,
    Umount,
    /// Path calls vurs cannot virtualize yet: fail closed with ENOSYS when a path module
    /// is loaded (see docs/paths.md).
    Unsupported,
}

#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub nr: Sysno,
    pub kind: Kind,
    pub paths: &'static [PathArg],
}

const AT_SYMLINK_NOFOLLOW: u64 = libc::AT_SYMLINK_NOFOLLOW as u64;
const AT_SYMLINK_FOLLOW: u64 = libc::AT_SYMLINK_FOLLOW as u64;
const AT_EMPTY_PATH: u64 = libc::AT_EMPTY_PATH as u64;
const IN_DONT_FOLLOW: u64 = libc::IN_DONT_FOLLOW as u64;

const fn p(arg: u8, follow: Follow, access: Access) -> PathArg {
    PathArg { arg, dirfd: None, follow, access, empty: EmptyPath::Never, null_ok: false }
}
const fn at(dirfd: u8, arg: u8, follow: Follow, access: Access) -> PathArg {
    PathArg { arg, dirfd: Some(dirfd), follow, access, empty: EmptyPath::Never, null_ok: false }
}
const fn at_e(dirfd: u8, arg: u8, follow: Follow, access: Access, flags: u8) -> PathArg {
    PathArg {
        arg,
        dirfd: Some(dirfd),
        follow,
        access,
        empty: EmptyPath::IfFlag(flags, AT_EMPTY_PATH),
        null_ok: false,
    }
}
const fn nofollow_at(flags: u8) -> Follow {
    Follow::UnlessFlag(flags, AT_SYMLINK_NOFOLLOW)
}

use Access::*;
use FdArg::{At, Range};
use Follow::{Always, Never};

macro_rules! spec {
    ($nr:expr, $kind:ident, [$($p:expr),* $(,)?]) => {
        Spec { nr: $nr, kind: Kind::$kind, paths: &[$($p),*] }
    };
}

/// Every path-taking system call of x86_64 Linux 6.18.
pub static PATH_CALLS: &[Spec] = &[
    spec!(Sysno::open, Path, [p(0, Follow::OpenFlags(1), Access::OpenFlags(1))]),
    spec!(Sysno::openat, Path, [at(0, 1, Follow::OpenFlags(2), Access::OpenFlags(2))]),
    spec!(Sysno::openat2, Path, [at(0, 1, Follow::OpenHow(2), Access::OpenHow(2))]),
    spec!(Sysno::creat, Path, [p(0, Always, Create)]),
    spec!(Sysno::stat, Path, [p(0, Always, Read)]),
    spec!(Sysno::lstat, Path, [p(0, Never, Read)]),
    spec!(Sysno::newfstatat, Path, [at_e(0, 1, nofollow_at(3), Read, 3)]),
    spec!(Sysno::statx, Path, [at_e(0, 1, nofollow_at(2), Read, 2)]),
    spec!(Sysno::access, Path, [p(0, Always, Mode(1))]),
    spec!(Sysno::faccessat, Path, [at(0, 1, Always, Mode(2))]),
    spec!(Sysno::faccessat2, Path, [at_e(0, 1, nofollow_at(3), Mode(2), 3)]),
    spec!(Sysno::execve, Path, [p(0, Always, Exec)]),
    spec!(Sysno::execveat, Path, [at_e(0, 1, nofollow_at(4), Exec, 4)]),
    spec!(Sysno::chdir, Path, [p(0, Always, Read)]),
    spec!(Sysno::chroot, Path, [p(0, Always, Read)]),
    spec!(Sysno::getcwd, Getcwd, []),
    spec!(Sysno::getdents64, Getdents, []),
    spec!(Sysno::readlink, Readlink, [p(0, Never, Read)]),
    spec!(Sysno::readlinkat, Readlink, [PathArg { empty: EmptyPath::Always, ..at(0, 1, Never, Read) }]),
    spec!(Sysno::mkdir, Path, [p(0, Never, Create)]),
    spec!(Sysno::mkdirat, Path, [at(0, 1, Never, Create)]),
    spec!(Sysno::mknod, Path, [p(0, Never, Create)]),
    spec!(Sysno::mknodat, Path, [at(0, 1, Never, Create)]),
    spec!(Sysno::rmdir, Path, [p(0, Never, Write)]),
    spec!(Sysno::unlink, Path, [p(0, Never, Write)]),
    spec!(Sysno::unlinkat, Path, [at(0, 1, Never, Write)]),
    spec!(Sysno::rename, Path, [p(0, Never, Write), p(1, Never, Create)]),
    spec!(Sysno::renameat, Path, [at(0, 1, Never, Write), at(2, 3, Never, Create)]),
    spec!(Sysno::renameat2, Path, [at(0, 1, Never, Write), at(2, 3, Never, Create)]),
    spec!(Sysno::link, Path, [p(0, Never, Read), p(1, Never, Create)]),
    spec!(
        Sysno::linkat,
        Path,
        [at_e(0, 1, Follow::IfFlag(4, AT_SYMLINK_FOLLOW), Read, 4), at(2, 3, Never, Create)]
    ),
    spec!(Sysno::symlink, Path, [p(1, Never, Create)]),
    spec!(Sysno::symlinkat, Path, [at(1, 2, Never, Create)]),
    spec!(Sysno::chmod, Path, [p(0, Always, Write)]),
    spec!(Sysno::fchmodat, Path, [at(0, 1, Always, Write)]),
    spec!(Sysno::fchmodat2, Path, [at_e(0, 1, nofollow_at(3), Write, 3)]),
    spec!(Sysno::chown, Path, [p(0, Always, Write)]),
    spec!(Sysno::lchown, Path, [p(0, Never, Write)]),
    spec!(Sysno::fchownat, Path, [at_e(0, 1, nofollow_at(4), Write, 4)]),
    spec!(Sysno::truncate, Path, [p(0, Always, Write)]),
    spec!(Sysno::utime, Path, [p(0, Always, Write)]),
    spec!(Sysno::utimes, Path, [p(0, Always, Write)]),
    spec!(Sysno::futimesat, Path, [PathArg { null_ok: true, ..at(0, 1, Always, Write) }]),
    spec!(Sysno::utimensat, Path, [PathArg { null_ok: true, ..at_e(0, 1, nofollow_at(3), Write, 3) }]),
    spec!(Sysno::statfs, Path, [p(0, Always, Read)]),
    spec!(Sysno::setxattr, Path, [p(0, Always, Write)]),
    spec!(Sysno::lsetxattr, Path, [p(0, Never, Write)]),
    spec!(Sysno::getxattr, Path, [p(0, Always, Read)]),
    spec!(Sysno::lgetxattr, Path, [p(0, Never, Read)]),
    spec!(Sysno::listxattr, Path, [p(0, Always, Read)]),
    spec!(Sysno::llistxattr, Path, [p(0, Never, Read)]),
    spec!(Sysno::removexattr, Path, [p(0, Always, Write)]),
    spec!(Sysno::lremovexattr, Path, [p(0, Never, Write)]),
    spec!(Sysno::setxattrat, Path, [at_e(0, 1, nofollow_at(2), Write, 2)]),
    spec!(Sysno::getxattrat, Path, [at_e(0, 1, nofollow_at(2), Read, 2)]),
    spec!(Sysno::listxattrat, Path, [at_e(0, 1, nofollow_at(2), Read, 2)]),
    spec!(Sysno::removexattrat, Path, [at_e(0, 1, nofollow_at(2), Write, 2)]),
    spec!(Sysno::inotify_add_watch, Path, [p(1, Follow::UnlessFlag(2, IN_DONT_FOLLOW), Read)]),
    spec!(Sysno::name_to_handle_at, Path, [at_e(0, 1, Follow::IfFlag(4, AT_SYMLINK_FOLLOW), Read, 4)]),
    spec!(Sysno::bind, SockAddr, []),
    spec!(Sysno::connect, SockAddr, []),
    spec!(Sysno::mount, Mount, []),
    spec!(Sysno::umount2, Umount, []),
    spec!(Sysno::fanotify_mark, Unsupported, []),
    spec!(Sysno::open_tree, Unsupported, []),
    spec!(Sysno::open_tree_attr, Unsupported, []),
    spec!(Sysno::move_mount, Unsupported, []),
    spec!(Sysno::mount_setattr, Unsupported, []),
    spec!(Sysno::fspick, Unsupported, []),
    spec!(Sysno::pivot_root, Unsupported, []),
    spec!(Sysno::swapon, Unsupported, []),
    spec!(Sysno::swapoff, Unsupported, []),
    spec!(Sysno::acct, Unsupported, []),
    spec!(Sysno::quotactl, Unsupported, []),
    spec!(Sysno::uselib, Unsupported, []),
    spec!(Sysno::file_getattr, Unsupported, []),
    spec!(Sysno::file_setattr, Unsupported, []),
];

/// Which arguments of a descriptor call name descriptors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdArg {
    /// Argument `n` is one descriptor.
    At(u8),
    /// Arguments `first` and `last` bound a range of descriptors (close_range).
    Range(u8, u8),
}

impl FdArg {
    /// Whether the call's descriptor (or range) meets the virtual range `[lo, hi)`. A
    /// descriptor is an int (an unsigned int for close_range): the low 32 bits count.
    pub fn meets(self, args: &[u64; 6], lo: u32, hi: u32) -> bool {
        match self {
            FdArg::At(n) => (lo..hi).contains(&(args[n as usize] as u32)),
            FdArg::Range(first, last) => {
                (args[first as usize] as u32) < hi && (args[last as usize] as u32) >= lo
            }
        }
    }
}

/// Descriptor-taking calls. Trapped only when their descriptor (or range) meets the
/// virtual-fd range (see `crate::vfd::fdtable::vfd_base`).
pub static FD_CALLS: &[(Sysno, FdArg)] = &[
    (Sysno::read, At(0)),
    (Sysno::write, At(0)),
    (Sysno::pread64, At(0)),
    (Sysno::pwrite64, At(0)),
    (Sysno::readv, At(0)),
    (Sysno::writev, At(0)),
    (Sysno::preadv, At(0)),
    (Sysno::pwritev, At(0)),
    (Sysno::preadv2, At(0)),
    (Sysno::pwritev2, At(0)),
    (Sysno::lseek, At(0)),
    (Sysno::fstat, At(0)),
    (Sysno::getdents64, At(0)),
    (Sysno::getdents, At(0)),
    (Sysno::close, At(0)),
    (Sysno::dup, At(0)),
    (Sysno::dup2, At(0)),
    (Sysno::dup2, At(1)),
    (Sysno::dup3, At(0)),
    (Sysno::dup3, At(1)),
    (Sysno::fcntl, At(0)),
    (Sysno::ioctl, At(0)),
    (Sysno::fchdir, At(0)),
    (Sysno::fchmod, At(0)),
    (Sysno::fchown, At(0)),
    (Sysno::fsync, At(0)),
    (Sysno::fdatasync, At(0)),
    (Sysno::ftruncate, At(0)),
    (Sysno::flock, At(0)),
    (Sysno::fadvise64, At(0)),
    (Sysno::fstatfs, At(0)),
    (Sysno::fgetxattr, At(0)),
    (Sysno::fsetxattr, At(0)),
    (Sysno::flistxattr, At(0)),
    (Sysno::fremovexattr, At(0)),
    (Sysno::mmap, At(4)),
    (Sysno::close_range, Range(0, 1)),
    (Sysno::newfstatat, At(0)),
    (Sysno::statx, At(0)),
    (Sysno::epoll_ctl, At(2)),
    // nfds reaching the virtual range: some fd_set bit may name a virtual descriptor.
    (Sysno::select, At(0)),
    (Sysno::pselect6, At(0)),
];

/// Descriptor calls that need the caller's registers (a shadow copy is opened and used
/// by injected calls, tracer/materialize.rs): ptrace stops under both engines.
pub const FD_CALLS_TRACED: SysnoSet = SysnoSet::new(&[Sysno::mmap]);

/// Calls whose descriptors are in the caller's memory (pollfd arrays, SCM_RIGHTS), which
/// the filter cannot read: trapped in every process whenever a serving module is loaded;
/// passed at once for a process without virtual descriptors (dispatch/serve.rs).
pub const FD_IN_MEMORY_CALLS: SysnoSet = SysnoSet::new(&[Sysno::poll, Sysno::ppoll, Sysno::sendmsg]);

/// Calls that change a process's credentials, which vurs keeps per process (`Creds`):
/// trapped when someone reads them (a module with VURS_F_CREDS; the notification engine of
/// a root vurs, which carries path calls out with the caller's fsuid/fsgid/groups), seen at
/// their exit.
pub const ID_CALLS: SysnoSet = SysnoSet::new(&[
    Sysno::setuid,
    Sysno::setgid,
    Sysno::setreuid,
    Sysno::setregid,
    Sysno::setresuid,
    Sysno::setresgid,
    Sysno::setfsuid,
    Sysno::setfsgid,
]);

/// The umask call: trapped when the notification engine carries creating calls out for a
/// caller (with the caller's umask), seen at its exit.
pub const UMASK_CALLS: SysnoSet = SysnoSet::new(&[Sysno::umask]);

/// Calls that change what vurs keeps per process (`ID_CALLS`, `UMASK_CALLS`).
pub const STATE_CALLS: SysnoSet = ID_CALLS.union(&UMASK_CALLS);

/// The `Sysno` of a number the kernel gave (None for a number Linux does not know, and
/// for vurs's control call).
pub fn sysno(nr: i64) -> Option<Sysno> {
    usize::try_from(nr).ok().and_then(Sysno::new)
}

/// The table entry of call `nr` (looked up at every stop: indexed, not searched).
pub fn path_spec(nr: i64) -> Option<&'static Spec> {
    static BY_NR: std::sync::OnceLock<SysnoMap<&'static Spec>> = std::sync::OnceLock::new();
    let by_nr = BY_NR.get_or_init(|| PATH_CALLS.iter().map(|s| (s.nr, s)).collect());
    by_nr.get(sysno(nr)?).copied()
}

/// A call that changes what vurs keeps per process (`STATE_CALLS`).
pub fn is_state_call(nr: i64) -> bool {
    sysno(nr).is_some_and(|s| STATE_CALLS.contains(s))
}

/// The call's name, for messages and --trace.
pub fn name(nr: i64) -> String {
    if nr == crate::control::CONTROL_NR {
        return "vurs_control".into();
    }
    match sysno(nr) {
        Some(s) => s.name().to_string(),
        None => format!("syscall_{nr}"),
    }
}

/// Path calls the notification engine carries out for a caller (notify/emulate.rs); the
/// other trapped calls stay ptrace stops: exec and chdir change the caller's registers or
/// state, the rest are rare enough not to need it.
const CARRIED_OUT: SysnoSet = SysnoSet::new(&[
    Sysno::open,
    Sysno::openat,
    Sysno::creat,
    Sysno::stat,
    Sysno::lstat,
    Sysno::newfstatat,
    Sysno::statx,
    Sysno::access,
    Sysno::faccessat,
    Sysno::faccessat2,
    Sysno::readlink,
    Sysno::readlinkat,
    Sysno::getcwd,
    Sysno::getdents64,
    Sysno::mkdir,
    Sysno::mkdirat,
    Sysno::rmdir,
    Sysno::unlink,
    Sysno::unlinkat,
    Sysno::rename,
    Sysno::renameat,
    Sysno::renameat2,
    Sysno::link,
    Sysno::linkat,
    Sysno::symlink,
    Sysno::symlinkat,
    Sysno::chmod,
    Sysno::fchmodat,
    Sysno::fchmodat2,
    Sysno::chown,
    Sysno::lchown,
    Sysno::fchownat,
    Sysno::truncate,
    Sysno::utimensat,
    Sysno::statfs,
    Sysno::getxattr,
    Sysno::lgetxattr,
    Sysno::listxattr,
    Sysno::llistxattr,
    Sysno::setxattr,
    Sysno::lsetxattr,
    Sysno::removexattr,
    Sysno::lremovexattr,
    Sysno::mount,
    Sysno::umount2,
]);

/// Calls carried out over a notification unless a flag is set in an argument: an O_PATH
/// descriptor cannot be installed in a caller (SECCOMP_IOCTL_NOTIF_ADDFD takes no O_PATH
/// file), so such opens stay ptrace stops. (openat2's flags are in memory the filter
/// cannot read: openat2 stays a ptrace stop.)
pub fn notified_unless_flag(nr: i64) -> Option<(u8, u32)> {
    match nr {
        libc::SYS_open => Some((1, libc::O_PATH as u32)),
        libc::SYS_openat => Some((2, libc::O_PATH as u32)),
        _ => None,
    }
}

/// Whether a trapped call `nr` is decided over a seccomp notification when the
/// notification engine runs (the control call too: its answer is a value).
pub fn carried_out_over_notification(nr: i64) -> bool {
    nr == crate::control::CONTROL_NR
        || sysno(nr).is_some_and(|s| CARRIED_OUT.contains(s))
        || path_spec(nr).is_some_and(|s| s.kind == Kind::Unsupported)
}
