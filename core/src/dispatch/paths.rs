//! Path calls: resolution of each path argument, translation through the mounts, and
//! the special cases (getcwd, readlink of /proc magic links, getdents of directories with
//! virtual-only entries, AF_UNIX socket paths, #! scripts, calls that fail closed).
use super::*;
use crate::dispatch::ExitHook;
use crate::errno::Errno;
use crate::path::mounts::{self, MountTable};
use crate::path::resolve::Resolver;
use crate::session::Session;
use crate::syscall::table::{Follow, PathArg};
use crate::syscall::Call;
use crate::tracee::memory::{self, PATH_MAX};
use crate::tracee::ptrace::Pid;
use std::os::unix::ffi::OsStrExt;
use vurs_abi::*;

/// The directory a relative path of `p` starts from, as a virtual path.
pub(super) fn start_dir(
    mounts: &MountTable,
    c: &Caller,
    call: &Call,
    p: &PathArg,
) -> Result<Vec<u8>, Outcome> {
    start_dir_real(mounts, c, call, p).map(|(v, _)| v)
}

/// The start directory, and whether the kernel's directory behind it lies in a mount's
/// host tree (a process whose cwd was the mount point's host directory before the mount
/// was made, or when vurs started, has the virtual path of the mount but not its tree).
pub(super) fn start_dir_real(
    mounts: &MountTable,
    c: &Caller,
    call: &Call,
    p: &PathArg,
) -> Result<(Vec<u8>, bool), Outcome> {
    start_dir_host(mounts, c, call, p).map(|(v, in_tree, _)| (v, in_tree))
}

/// A start directory: its virtual path, whether the kernel's directory lies in a mount's
/// host tree, and that host directory (none for a virtual descriptor).
type StartDir = (Vec<u8>, bool, Option<Vec<u8>>);

/// As `start_dir_real`, and the kernel's directory behind it (none for a virtual one).
fn start_dir_host(mounts: &MountTable, c: &Caller, call: &Call, p: &PathArg) -> Result<StartDir, Outcome> {
    let dirfd = start_fd(call, p);
    if crate::vfd::is_virtual(dirfd as i64) {
        let v = crate::dispatch::serve::fd_path(c, dirfd).ok_or(Outcome::Fail(Errno(libc::EBADF)))?;
        return Ok((v, false, None));
    }
    let link = if dirfd == libc::AT_FDCWD {
        format!("/proc/{}/cwd", c.tid)
    } else {
        format!("/proc/{}/fd/{}", c.tid, dirfd)
    };
    // Not a directory, or not open: the kernel gives the right error itself.
    let host = readlink_host(&link).ok_or(Outcome::Pass)?;
    if host.first() != Some(&b'/') {
        return Err(Outcome::Pass);
    }
    if let Some(v) = c.fs.parked_cwd(&host).filter(|_| dirfd == libc::AT_FDCWD) {
        return Ok((v.to_vec(), false, None)); // the kernel's cwd stands in for another
    }
    Ok(match mounts.reverse(&host) {
        Some(v) => (v, true, Some(host)),
        None => (host.clone(), false, Some(host)),
    })
}

/// Whether host path `host` is what the kernel reaches from the path `raw` as given: the
/// same text when absolute, the start directory's host path `start` and `raw` when
/// relative (a canonical directory joined with a path without `.`, `..` or repeated `/`).
fn names_same(raw: &[u8], host: &[u8], start: Option<&[u8]>) -> bool {
    if raw[0] == b'/' {
        return raw == host;
    }
    let Some(start) = start else { return false };
    let plain = raw.split(|&b| b == b'/').enumerate().all(|(i, c)| {
        let last = i == raw.iter().filter(|&&b| b == b'/').count();
        (!c.is_empty() || last) && c != b"." && c != b".."
    });
    plain
        && host.len() == start.len() + 1 + raw.len()
        && host.starts_with(start)
        && host[start.len()] == b'/'
        && &host[start.len() + 1..] == raw
}

/// VURS_ACCESS_* of path argument `p`: the table's intent, with VURS_ACCESS_REMOVE for
/// the name an unlink, rmdir or rename takes away, and READ too for a rename's source
/// (the object lives on under its new name; both names of RENAME_EXCHANGE are sources).
pub(super) fn access_of(tid: Pid, call: &Call, p: &PathArg) -> u32 {
    use crate::syscall::table::Access;
    let a = call.access(tid, p);
    match call.nr {
        libc::SYS_unlink | libc::SYS_unlinkat | libc::SYS_rmdir => a | VURS_ACCESS_REMOVE,
        libc::SYS_rename | libc::SYS_renameat | libc::SYS_renameat2 => {
            let exchange = call.nr == libc::SYS_renameat2 && call.args[4] & libc::RENAME_EXCHANGE as u64 != 0;
            if p.access == Access::Write || exchange {
                a | VURS_ACCESS_REMOVE | VURS_ACCESS_READ
            } else {
                a
            }
        }
        _ => a,
    }
}

/// A path in a mount whose module lists directories itself (a merged view, as the cow
/// module's): the kernel only sees one layer of it, so what depends on the whole view is
/// decided here. unlink of a directory is EISDIR, rmdir of a non-directory ENOTDIR, rmdir
/// of a directory the view lists entries in ENOTEMPTY (the module is then asked to remove
/// an empty name only); access(W_OK) and opening a socket or device for writing only
/// read, opening a fifo writes it; the source of a link is written (a copy-on-write module copies
/// it up: a hard link to a lower file would let writes through the new name reach it).
fn merged_view_access(
    m: &mounts::Mount,
    sub: &[u8],
    call: &Call,
    p: &PathArg,
    access: u32,
    trailing_slash: bool,
) -> Result<u32, Outcome> {
    use crate::syscall::table::Access;
    let is_link = call.nr == libc::SYS_link || call.nr == libc::SYS_linkat;
    if is_link && p.access == Access::Read {
        return Ok(access | VURS_ACCESS_WRITE);
    }
    if matches!(call.nr, libc::SYS_access | libc::SYS_faccessat | libc::SYS_faccessat2) {
        return Ok(VURS_ACCESS_READ); // a question, not a write: nothing to copy up
    }
    // Opening a fifo, in either direction, writes to it (its times change): both ends
    // must meet in one copy. Opening a socket or device for writing writes to what it
    // stands for, not to the file: it is opened where it is (as overlayfs does).
    if is_open(call.nr) || call.nr == libc::SYS_creat {
        use std::os::unix::fs::FileTypeExt;
        let kind = m
            .module
            .redirect(m.mnt, sub, VURS_ACCESS_READ)
            .ok()
            .and_then(|h| std::fs::metadata(std::ffi::OsStr::from_bytes(&h)).ok())
            .map(|md| md.file_type());
        match kind {
            Some(t) if t.is_fifo() => return Ok(access | VURS_ACCESS_WRITE),
            Some(t) if t.is_socket() || t.is_char_device() || t.is_block_device() => {
                return Ok(VURS_ACCESS_READ)
            }
            _ => {}
        }
    }
    let rmdir = call.nr == libc::SYS_rmdir
        || (call.nr == libc::SYS_unlinkat && call.args[2] & libc::AT_REMOVEDIR as u64 != 0);
    let unlink = !rmdir && (call.nr == libc::SYS_unlink || call.nr == libc::SYS_unlinkat);
    if !rmdir && !unlink {
        return Ok(access);
    }
    let Ok(host) = m.module.redirect(m.mnt, sub, VURS_ACCESS_READ) else {
        return Ok(access);
    };
    let Ok(md) = std::fs::symlink_metadata(std::ffi::OsStr::from_bytes(&host)) else {
        return Ok(access); // missing: the kernel says so
    };
    let fail = |e| Err(Outcome::Fail(Errno(e)));
    match (md.is_dir(), rmdir) {
        (true, false) => fail(libc::EISDIR),
        (false, true) => fail(libc::ENOTDIR),
        (false, false) if trailing_slash => fail(libc::ENOTDIR),
        (true, true) if lists_entries(m, sub, &host) => fail(libc::ENOTEMPTY),
        _ => Ok(access),
    }
}

/// Resolution of one path argument: None when the kernel may see it unchanged.
pub(super) struct Translated {
    host: Vec<u8>,
    mount: Option<std::sync::Arc<mounts::Mount>>,
    /// Set when the mount is served by its module (no host path): the virtual path, the
    /// access intent, and whether the path ended in `/`.
    served: Option<(Vec<u8>, u32, bool)>,
    /// `host` is a synthesized file to remove once the call has opened it.
    synthesized: bool,
    /// The argument stays as the tracee gave it: a relative path whose walk stays in the
    /// plain-subtree mount its real start directory lies in, which the kernel walks from
    /// that directory exactly as vurs would (with its own errors, openat2 rules and
    /// length limits: the host path could be longer than PATH_MAX). `host` is then only
    /// what the path names on the host, for the error checks of link and rename.
    keep: bool,
    /// openat2: RESOLVE_* bits vurs checked itself, to clear in the `struct open_how` the
    /// kernel gets with the rewritten (absolute) path.
    resolve_checked: u64,
    /// An open in a mount whose module merges listings (`list`): the subpath opened.
    opened_in_merged_view: Option<Vec<u8>>,
}

impl Translated {
    fn rewritten(host: Vec<u8>, mount: Option<std::sync::Arc<mounts::Mount>>) -> Translated {
        Translated {
            host,
            mount,
            served: None,
            synthesized: false,
            keep: false,
            resolve_checked: 0,
            opened_in_merged_view: None,
        }
    }
}

/// openat2(2) `resolve` flags (linux/openat2.h).
const RESOLVE_NO_XDEV: u64 = 0x01;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;
const RESOLVE_BENEATH: u64 = 0x08;
const RESOLVE_IN_ROOT: u64 = 0x10;

/// `struct open_how.resolve` (its third u64) of openat2's argument `a`.
fn open_how_resolve(tid: Pid, call: &Call, a: u8) -> Result<u64, Outcome> {
    let mut b = [0u8; 8];
    memory::read(tid, call.args[a as usize] + 16, &mut b).map_err(|_| Outcome::Pass)?;
    Ok(u64::from_ne_bytes(b))
}

/// The virtual path of the served file behind `/proc/<pid>/fd/N` when N is one of the
/// caller's virtual descriptors (pid: its process or thread).
fn virtual_fd_link(c: &Caller, virt: &[u8]) -> Option<Vec<u8>> {
    let rest = virt.strip_prefix(b"/proc/")?;
    let s = std::str::from_utf8(rest).ok()?;
    let parts: Vec<&str> = s.split('/').collect();
    let (pid, fd) = match parts.as_slice() {
        [pid, "fd", n] | [_, "task", pid, "fd", n] => (pid.parse::<i32>().ok()?, n.parse::<i64>().ok()?),
        _ => return None,
    };
    if (pid != c.tgid && pid != c.tid) || !crate::vfd::is_virtual(fd) {
        return None;
    }
    let fds = c.fds.lock();
    Some(fds.get(fd as i32)?.file.path.as_bytes().to_vec())
}

/// Resolve path argument `p` (`pre`: its text, if already read) and translate it if it
/// lies in a mount. `virt_out`, when given, receives the resolved virtual path (then the
/// walk is always made: the caller needs the path it reached).
pub(super) fn translate(
    mounts: &MountTable,
    c: &Caller,
    call: &Call,
    p: &PathArg,
    pre: Option<Vec<u8>>,
    virt_out: Option<&mut Option<Vec<u8>>>,
) -> Result<Option<Translated>, Outcome> {
    let addr = call.args[p.arg as usize];
    if addr == 0 && p.null_ok {
        return Ok(None);
    }
    let mut raw = match pre {
        Some(r) => r,
        None => memory::read_cstring(c.tid, addr, PATH_MAX).map_err(|e| Outcome::Fail(Errno(e.errno())))?,
    };
    if raw.is_empty() {
        if !p.empty.applies(&call.args) {
            return Err(Outcome::Fail(Errno(libc::ENOENT)));
        }
        // The cwd itself, when it is virtual: ".".
        if start_fd(call, p) != libc::AT_FDCWD || c.fs.cwd.is_none() {
            return Ok(None);
        }
        raw = b".".to_vec();
    }
    let follow = call.follows(c.tid, p);
    // The fast path: a plain name, not followed, read-only, relative to a real directory.
    // (Not for link/rename: their two paths must be compared for EXDEV.)
    let single = call.spec.is_some_and(|sp| sp.paths.len() == 1);
    if single
        && !follow
        && raw[0] != b'/'
        && c.fs.cwd.is_none()
        && mounts.plain_name_passes(&raw)
        && call.access(c.tid, p) == VURS_ACCESS_READ
    {
        let dirfd = p.dirfd.map(|i| call.fd_arg(i as usize)).unwrap_or(libc::AT_FDCWD);
        if !crate::vfd::is_virtual(dirfd as i64) {
            return Ok(None);
        }
    }
    // An absolute path seen before, that stayed out of every mount (and /proc). (A path
    // ending in "." or ".." is remembered too: `dot_final` answers the same each time.)
    let cacheable = raw[0] == b'/' && virt_out.is_none() && c.fs.root.is_none();
    if cacheable && mounts.nodecache.passes(&raw, follow) {
        return Ok(None);
    }
    let (start, start_in_tree, start_host) = if raw[0] == b'/' {
        (b"/".to_vec(), false, None)
    } else {
        let (v, in_tree, host) = start_dir_host(mounts, c, call, p)?;
        (v, in_tree, host)
    };
    // openat2's RESOLVE_* flags (read once: the struct is in the caller's memory).
    let resolve = match p.follow {
        Follow::OpenHow(a) => open_how_resolve(c.tid, call, a)?,
        _ => 0,
    };
    if resolve != 0 && confined_walk_passes(mounts, c, call, p, resolve, raw[0] == b'/')? {
        return Ok(None);
    }
    let resolver = crate::dispatch::resolver(mounts, c);
    if !follow {
        if let Some(t) = dot_final(&resolver, call, p, &start, &raw)? {
            return Ok(Some(t));
        }
    }
    // A new name in a directory known from an earlier walk: only the name is walked.
    let generation = mounts.nodecache.generation();
    let split = if cacheable { split_dir(&raw) } else { None };
    let known = split.and_then(|(dir, name)| Some((name, mounts.nodecache.dir(dir)?)));
    let r = match &known {
        Some((name, (canonical, links))) => resolver.resolve_in(canonical, name, follow, *links),
        None => resolver.resolve(&start, &raw, follow),
    }
    .map_err(|e| Outcome::Fail(Errno(e)))?;
    // /proc/<pid>/fd/N of the caller's own virtual descriptor N names its served file (as
    // the magic link of a real descriptor names its file): glibc's fchmodat(...,
    // AT_SYMLINK_NOFOLLOW) and `mkfifo -m` go through it.
    let r = match virtual_fd_link(c, &r.virt) {
        Some(file) => resolver.resolve(b"/", &file, false).map_err(|e| Outcome::Fail(Errno(e)))?,
        None => r,
    };
    if let (Some((dir, _)), None, Some((canonical, links))) = (split, &known, &r.dir_of_last) {
        if !mounts::under(canonical, b"/proc") {
            mounts.nodecache.note_dir(generation, dir, canonical, *links);
        }
    }
    if let Some(v) = virt_out {
        *v = Some(r.virt.clone());
    }
    // The kernel would not walk the same way: the walk depended on the caller's root, or
    // started from its virtual cwd (`FsView::cwd`).
    let from_view =
        r.met_root || (raw[0] != b'/' && start_fd(call, p) == libc::AT_FDCWD && c.fs.cwd.is_some());
    if !r.crossed_mount && !from_view {
        if is_open(call.nr) && crate::path::procfs::is_mounts_file(&r.virt) {
            if let Some(host) = crate::path::procfs::synth_mounts(mounts, c.tid) {
                return Ok(Some(Translated { synthesized: true, ..Translated::rewritten(host, None) }));
            }
        }
        // The ids a fakeroot module shows, in /proc/PID/status too.
        if is_open(call.nr) {
            let view = crate::path::procfs::status_file_with_view(&r.virt).and_then(crate::dispatch::view_of);
            if let Some(host) = view.and_then(|ids| crate::path::procfs::synth_status(&r.virt, &ids)) {
                return Ok(Some(Translated { synthesized: true, ..Translated::rewritten(host, None) }));
            }
        }
        // /proc paths depend on the caller (/proc/self) and are never remembered.
        if cacheable && !mounts::under(&r.virt, b"/proc") {
            mounts.nodecache.note_pass(generation, &raw, follow);
        }
        return Ok(None);
    }
    let mut access = access_of(c.tid, call, p);
    if let Some(m) = r.mount.as_ref().filter(|m| m.module.serves_paths()) {
        return Ok(Some(Translated {
            served: Some((r.virt, access, r.trailing_slash)),
            ..Translated::rewritten(Vec::new(), Some(m.clone()))
        }));
    }
    let relative = raw[0] != b'/';
    let keep = relative && r.stayed_in_start_mount && start_in_tree;
    let mut resolve_checked = 0;
    if !keep && resolve != 0 {
        // The kernel gets an absolute host path: what the flags forbid, vurs checks.
        if resolve & RESOLVE_NO_SYMLINKS != 0 && r.links > 0 {
            return Err(Outcome::Fail(Errno(libc::ELOOP)));
        }
        if resolve & RESOLVE_NO_XDEV != 0 {
            return Err(Outcome::Fail(Errno(libc::EXDEV)));
        }
        if resolve & (RESOLVE_BENEATH | RESOLVE_IN_ROOT) != 0 {
            // Beneath the directory the walk was (an absolute path is not, for BENEATH).
            // IN_ROOT's clamping of `..` and absolute symlinks at the root is not done by
            // vurs: such a walk across a mount fails with EXDEV (docs/paths.md).
            if !(relative && r.stayed_beneath_start) {
                return Err(Outcome::Fail(Errno(libc::EXDEV)));
            }
            resolve_checked = resolve & (RESOLVE_BENEATH | RESOLVE_IN_ROOT);
        }
    }
    let mut opened_in_merged_view = None;
    if let Some(m) = r.mount.as_ref().filter(|m| m.module.has_list()) {
        let sub = mounts::subpath(&r.virt, m.target.as_bytes());
        access = merged_view_access(m, sub, call, p, access, r.trailing_slash)?;
        if is_open(call.nr) {
            opened_in_merged_view = Some(sub.to_vec());
        }
    }
    let mut host = match &r.mount {
        Some(m) => {
            let sub = mounts::subpath(&r.virt, m.target.as_bytes());
            match m.redirect(sub, access) {
                // A kept path may name a host path longer than PATH_MAX (the kernel does
                // not mind): the module's answer for its mount's root holds for it, and
                // the read-only rule is checked on the object through the kept path.
                Err(libc::ENAMETOOLONG) if keep => {
                    m.module.redirect(m.mnt, b"", access).map_err(|e| Outcome::Fail(Errno(e)))?;
                    m.read_only_check(access, || kept_path_exists(c, call, p, &raw, follow))
                        .map_err(|e| Outcome::Fail(Errno(e)))?;
                    Vec::new()
                }
                r => r.map_err(|e| Outcome::Fail(Errno(e)))?,
            }
        }
        None => resolver.host_path(&r.virt, access).map_err(|e| Outcome::Fail(Errno(e)))?,
    };
    // A mount plain until now may have stopped being one in this very answer (a cow view's
    // first write): the kernel's own walk no longer reaches what the module named.
    let keep = keep && r.mount.as_ref().is_none_or(|m| m.is_subtree());
    if r.trailing_slash && !host.ends_with(b"/") {
        host.push(b'/');
    }
    // The host path is the path as given (from the root, or from the caller's real start
    // directory): the kernel's own walk reaches it, so the call need not be rewritten.
    let keep = keep || (resolve_checked == 0 && names_same(&raw, &host, start_host.as_deref()));
    Ok(Some(Translated {
        keep,
        resolve_checked,
        opened_in_merged_view,
        ..Translated::rewritten(host, r.mount)
    }))
}

/// openat2 with RESOLVE_BENEATH or RESOLVE_IN_ROOT: the kernel's walk never leaves the
/// directory it starts from. When that (real) directory lies outside every mount or in a
/// plain-subtree mount, and no other mount lies below it, the kernel's walk is vurs's: the
/// call passes as it is, with the kernel's own rules (IN_ROOT's clamping of `..` and of
/// absolute paths and symlinks, BENEATH's refusals).
fn confined_walk_passes(
    mounts: &MountTable,
    c: &Caller,
    call: &Call,
    p: &PathArg,
    resolve: u64,
    absolute: bool,
) -> Result<bool, Outcome> {
    if resolve & (RESOLVE_BENEATH | RESOLVE_IN_ROOT) == 0 || crate::vfd::is_virtual(start_fd(call, p) as i64)
    {
        return Ok(false);
    }
    if absolute && resolve & RESOLVE_IN_ROOT == 0 {
        return Ok(true); // BENEATH refuses an absolute path itself (EXDEV)
    }
    let (dir, in_tree) = start_dir_real(mounts, c, call, p)?;
    // The kernel's directory must be the one vurs sees: in the mount's tree, or outside
    // every mount.
    let plain = match mounts.find(&dir) {
        Some(m) => in_tree && m.is_subtree(),
        None => !in_tree,
    };
    let below = |t: &[u8]| t != dir.as_slice() && mounts::under(t, &dir);
    let mount_below = mounts.mounts.iter().any(|m| below(m.target.as_bytes()))
        || mounts.implicit.iter().any(|(v, _)| below(v) || v == &dir);
    if !plain || mount_below {
        return Ok(false);
    }
    // Whatever the walk reaches lies in the directory's mount: its module's answer for
    // this access holds for it. On a read-only mount, a write is EROFS; whether a
    // creation is one depends on the object, which the full translation looks at.
    if let Some(m) = mounts.find(&dir) {
        let access = access_of(c.tid, call, p);
        if m.read_only && access & VURS_ACCESS_CREATE != 0 && access & VURS_ACCESS_WRITE == 0 {
            return Ok(false);
        }
        let sub = mounts::subpath(&dir, m.target.as_bytes());
        m.redirect(sub, access).map_err(|e| Outcome::Fail(Errno(e)))?;
        // plain until this answer (a cow view's first write): the full translation
        return Ok(m.is_subtree());
    }
    Ok(true)
}

/// A kept (relative) path names an existing object, looked up from the caller's real
/// start directory as the kernel will (for the read-only rule of a creation).
fn kept_path_exists(c: &Caller, call: &Call, p: &PathArg, raw: &[u8], follow: bool) -> bool {
    let dirfd = start_fd(call, p);
    let dir = if dirfd == libc::AT_FDCWD {
        format!("/proc/{}/cwd", c.tid)
    } else {
        format!("/proc/{}/fd/{}", c.tid, dirfd)
    };
    let Ok(d) = std::fs::File::open(dir) else {
        return false;
    };
    let Ok(name) = std::ffi::CString::new(raw) else {
        return false;
    };
    crate::tracee::sys::exists_at(&d, &name, follow)
}

/// The directory descriptor a relative path of `p` starts from (AT_FDCWD for the cwd).
fn start_fd(call: &Call, p: &PathArg) -> i32 {
    p.dirfd.map(|i| call.fd_arg(i as usize)).unwrap_or(libc::AT_FDCWD)
}

/// A path not followed whose last component is "." or "..". The kernel's answer to a call
/// on the name itself (rmdir, unlink, mkdir, rename...) depends on that name (rmdir(".")
/// is EINVAL, rmdir("..") ENOTEMPTY), so the name is kept where the host path can keep it;
/// a call on the object (lstat, lchown, utimensat...) must reach the virtual parent.
/// `MOUNT/..` is the parent of the mount point, never the host parent of the mount's
/// source (which may lie outside every mount, or in a read-only one), and `/..` is `/`.
pub(super) fn dot_final(
    r: &Resolver<'_>,
    call: &Call,
    p: &PathArg,
    start: &[u8],
    raw: &[u8],
) -> Result<Option<Translated>, Outcome> {
    let trimmed = raw.strip_suffix(b"/").unwrap_or(raw);
    let (dir, last) = match trimmed.iter().rposition(|&b| b == b'/') {
        Some(i) => (&trimmed[..i.max(1)], &trimmed[i + 1..]),
        None => (&b"."[..], trimmed),
    };
    if last != b"." && last != b".." {
        return Ok(None);
    }
    let res = r.resolve(start, dir, true).map_err(|e| Outcome::Fail(Errno(e)))?;
    if !res.crossed_mount {
        return Ok(None);
    }
    let mounts = r.mounts;
    let access = access_of(r.tid, call, p);
    let parent_of = |v: &[u8]| match v.iter().rposition(|&b| b == b'/') {
        Some(0) | None => b"/".to_vec(),
        Some(i) => v[..i].to_vec(),
    };
    // In a served mount, `DIR/.` is DIR and `DIR/..` its parent, asked of the module
    // (lstat of them is what `ls -la` shows); `..` of the mount point leaves the mount.
    if let Some(m) = res.mount.as_ref().filter(|m| m.module.serves_paths()) {
        if !(last == b".." && m.target.as_bytes() == res.virt.as_slice()) {
            if let Some(e) = dot_name_error(call, p, last) {
                return Err(Outcome::Fail(Errno(e)));
            }
            let virt = if last == b"." { res.virt.clone() } else { parent_of(&res.virt) };
            return Ok(Some(Translated {
                served: Some((virt, access, false)),
                ..Translated::rewritten(Vec::new(), Some(m.clone()))
            }));
        }
    }
    let host_of = |v: &[u8]| r.host_path(v, access).map_err(|e| Outcome::Fail(Errno(e)));
    let with_name = |mut host: Vec<u8>, name: &[u8]| {
        host.push(b'/');
        host.extend_from_slice(name);
        host
    };
    // Only a mount point's `..` (a virtual-only directory's, `/`'s under a mount on `/`)
    // differs from the host's: elsewhere the name can stay (strictly inside a mount, the
    // host's `..` of the directory is the virtual one; outside every mount the paths are
    // the host's), and the kernel then also gives its errors for a directory that is
    // missing or not one.
    // In a merged view (cow) the host's `..` is the parent in one layer, not the view's.
    let merged = res.mount.as_ref().is_some_and(|m| m.module.has_list());
    let at_mount_point = mounts.mounts.iter().any(|m| m.target.as_bytes() == res.virt.as_slice())
        || mounts.implicit.iter().any(|(v, _)| v == &res.virt)
        || merged;
    if last == b"." || !at_mount_point {
        let host = with_name(host_of(&res.virt)?, last);
        return Ok(Some(Translated::rewritten(host, res.mount)));
    }
    // `..` of a mount point, of a virtual-only directory or of `/`: the virtual parent.
    let parent = parent_of(&res.virt);
    if let Some(e) = dot_name_error(call, p, b"..") {
        return Err(Outcome::Fail(Errno(e)));
    }
    let host = host_of(&parent)?;
    // open keeps a name that is not a plain one ("." gives the kernel's answers for "..").
    let host = if is_open(call.nr) { with_name(host, b".") } else { host };
    let mount = mounts.find(&parent).cloned();
    Ok(Some(Translated::rewritten(host, mount)))
}

/// A call on the name "." or ".." itself: its answer depends on the name alone, once the
/// directory was found (fs/namei.c checks the name before the mount's write access).
fn dot_name_error(call: &Call, p: &PathArg, last: &[u8]) -> Option<i32> {
    let dot = last == b".";
    match call.nr {
        libc::SYS_rmdir => Some(if dot { libc::EINVAL } else { libc::ENOTEMPTY }),
        libc::SYS_unlinkat if call.args[2] & libc::AT_REMOVEDIR as u64 != 0 => {
            Some(if dot { libc::EINVAL } else { libc::ENOTEMPTY })
        }
        libc::SYS_unlink | libc::SYS_unlinkat => Some(libc::EISDIR),
        libc::SYS_mkdir | libc::SYS_mkdirat | libc::SYS_mknod | libc::SYS_mknodat => Some(libc::EEXIST),
        libc::SYS_symlink | libc::SYS_symlinkat => Some(libc::EEXIST),
        // The new name of a link (the old one is an object: a directory gives EPERM).
        libc::SYS_link | libc::SYS_linkat if p.access == crate::syscall::table::Access::Create => {
            Some(libc::EEXIST)
        }
        libc::SYS_rename | libc::SYS_renameat | libc::SYS_renameat2 => Some(libc::EBUSY),
        _ => None,
    }
}

pub(super) fn path_call(
    s: &Session,
    c: &Caller,
    call: &Call,
    paths: &[PathArg],
    scratch: &mut Scratch,
    mut pre: Option<Vec<u8>>,
) -> Result<Decision, Outcome> {
    let mounts = s.mounts.read();
    if mounts.is_empty() && c.fs.is_none() && !crate::dispatch::views_exist() {
        return Ok(Decision::pass());
    }
    let mut args = call.args;
    // Whether a path was rewritten; `notes` says how, for --trace/--summary only.
    let mut rewritten = false;
    let mut notes = Vec::new();
    let mut exit = None;
    // execve: the program's path is looked at again for a `#!` line.
    let exec_raw = if is_exec(call.nr) {
        let raw = match pre.take() {
            Some(r) => r,
            None => memory::read_cstring(c.tid, call.args[paths[0].arg as usize], PATH_MAX)
                .map_err(|e| Outcome::Fail(Errno(e.errno())))?,
        };
        pre = Some(raw.clone());
        Some(raw)
    } else {
        None
    };
    let mut exec_passed = false;
    let change = tree_change(c.tid, call);
    let mut forget_at_exit = false;
    // rename and link: where each path lies, and what it names on the host.
    let mut sides: Vec<Side> = Vec::new();
    // rename and link in served mounts: (mount, virtual path) of each path served.
    let mut served_sides: Vec<(std::sync::Arc<mounts::Mount>, Vec<u8>)> = Vec::new();
    for p in paths {
        // The AT_EMPTY_PATH form on a virtual descriptor: a call on that descriptor.
        if let Some(dfd) = p.dirfd {
            if crate::vfd::is_virtual(call.args[dfd as usize] as i64) && is_empty_path(c, call, p) {
                return Ok(crate::dispatch::serve::fd_call(c, call, scratch));
            }
        }
        let mut virt = None;
        let want_virt = !matches!(change, TreeChange::None);
        let t = translate(&mounts, c, call, p, pre.take(), want_virt.then_some(&mut virt));
        // What this call may change, the resolution caches must forget: now, and again at
        // its exit for a change that may alter where walks lead (walks of other tracees
        // between this stop and the kernel's change would remember the old tree).
        forget_at_exit |= match (change, &virt) {
            (TreeChange::None, _) => false,
            (TreeChange::Created, Some(v)) => {
                mounts.nodecache.forget_plain(v);
                false
            }
            (TreeChange::Removed, Some(v)) => mounts.nodecache.forget_removed(v),
            _ => {
                mounts.nodecache.clear();
                true
            }
        };
        let t = t?;
        exec_passed = t.is_none();
        if let Some((m, (virt, access, trailing_slash))) =
            t.as_ref().and_then(|t| Some((t.mount.as_ref()?, t.served.clone()?)))
        {
            if paths.len() == 1 {
                let sp = crate::dispatch::serve::ServedPath { m, virt: &virt, access, trailing_slash };
                if let Some(raw) = &exec_raw {
                    return Ok(crate::dispatch::serve::exec_call(&mounts, c, call, &sp, raw, scratch));
                }
                return Ok(crate::dispatch::serve::path_call(c, call, &sp));
            }
            served_sides.push((m.clone(), virt));
            continue;
        }
        if !served_sides.is_empty() {
            // One path served, the other not: two file systems.
            return Ok(Decision::err(libc::EXDEV, "across a mount boundary"));
        }
        if paths.len() == 2 {
            sides.push(Side::of(&mounts, c, call, p, t.as_ref(), virt));
        }
        let Some(t) = t else { continue };
        if let (Some(sub), Some(m)) = (&t.opened_in_merged_view, &t.mount) {
            trap_dirents_if_merged(s, m, sub);
        }
        if t.synthesized {
            exit = Some(ExitHook::Unlink(t.host.clone()));
        }
        if t.keep {
            continue;
        }
        args[p.arg as usize] = scratch.put_cstr(&t.host)?;
        if t.resolve_checked != 0 {
            if let Follow::OpenHow(a) = p.follow {
                args[a as usize] = open_how_without(c.tid, call, a, t.resolve_checked, scratch)?;
            }
        }
        let who = t.mount.as_ref().map(|m| m.module.name.as_str()).unwrap_or("symlink");
        rewritten = true;
        if crate::tracelog::notes_wanted() {
            notes.push(format!("{who}: -> {:?}", String::from_utf8_lossy(&t.host)));
        }
    }
    match served_sides.as_slice() {
        [] => {}
        [(ma, a), (mb, b)] if ma.id == mb.id => {
            return Ok(crate::dispatch::serve::two_path_call(c, call, ma, a, b));
        }
        _ => return Ok(Decision::err(libc::EXDEV, "across a mount boundary")),
    }
    // rename/link across a mount boundary: EXDEV, as between two file systems, after the
    // errors the kernel finds first on either path.
    if let [a, b] = sides.as_slice() {
        if a.mount != b.mount {
            let e = cross_mount_error(call, a, b);
            return Ok(Decision::err(e, "across a mount boundary"));
        }
    }
    if let Some(raw) = &exec_raw {
        if exec_script(&mounts, c, call, &paths[0], raw, exec_passed, &mut args, scratch)? {
            rewritten = true;
            if crate::tracelog::notes_wanted() {
                notes.push("#! interpreter in a mount".to_string());
            }
        }
    }
    if forget_at_exit && exit.is_none() {
        exit = Some(ExitHook::ForgetWalks);
    }
    if !rewritten {
        return Ok(Decision { action: Action::Pass, exit, note: "".into() });
    }
    // The note is for --trace only: nothing is formatted otherwise.
    let note = crate::note!("rewritten {}", notes.join(", "));
    Ok(Decision { action: Action::Rewrite(args), exit, note })
}

/// One path of a two-path call (rename, link): the mount it lies in, and the host path
/// it names (for the lookup errors the kernel reports before EXDEV).
struct Side {
    mount: Option<u64>,
    host: Vec<u8>,
    follow: bool,
    /// The new name (link's second path): it must not exist.
    creates: bool,
}

impl Side {
    fn of(
        mounts: &MountTable,
        c: &Caller,
        call: &Call,
        p: &PathArg,
        t: Option<&Translated>,
        virt: Option<Vec<u8>>,
    ) -> Side {
        let follow = call.follows(c.tid, p);
        let creates = p.access == crate::syscall::table::Access::Create;
        let virt = virt.unwrap_or_default();
        // A magic link followed (linkat of /proc/self/fd/N, the O_TMPFILE idiom) lies
        // where its descriptor's file lies.
        if t.is_none() && follow && crate::path::procfs::is_magic_link(&virt) {
            let target = std::str::from_utf8(&virt).ok().and_then(readlink_host);
            if let Some(mut host) = target {
                if let Some(n) = host.len().checked_sub(b" (deleted)".len()) {
                    if host.ends_with(b" (deleted)") {
                        host.truncate(n);
                    }
                }
                let mount = mounts.reverse(&host).and_then(|v| mounts.find(&v).map(|m| m.id));
                return Side { mount, host: virt, follow, creates };
            }
        }
        match t {
            Some(t) => Side { mount: t.mount.as_ref().map(|m| m.id), host: t.host.clone(), follow, creates },
            None => Side { mount: None, host: virt, follow, creates },
        }
    }
}

/// The error of a link or rename whose two paths lie in different mounts: the lookup
/// errors the kernel finds first (fs/namei.c: link looks up the old path, then the new
/// one's directory, and refuses an existing new name; rename looks up both directories),
/// else EXDEV. Lookups are made with vurs's own credentials.
fn cross_mount_error(call: &Call, a: &Side, b: &Side) -> i32 {
    let errno = |r: std::io::Result<std::fs::Metadata>| r.err().and_then(|e| e.raw_os_error());
    let os = |p: &[u8]| std::path::PathBuf::from(std::ffi::OsStr::from_bytes(p));
    let parent = |p: &[u8]| {
        let p = p.strip_suffix(b"/").unwrap_or(p);
        match p.iter().rposition(|&x| x == b'/') {
            Some(0) | None => b"/".to_vec(),
            Some(i) => p[..i].to_vec(),
        }
    };
    let dir_error = |p: &[u8]| match std::fs::metadata(os(&parent(p))) {
        Err(e) => e.raw_os_error(),
        Ok(m) if !m.is_dir() => Some(libc::ENOTDIR),
        Ok(_) => None,
    };
    let is_link = call.nr == libc::SYS_link || call.nr == libc::SYS_linkat;
    let first = if is_link {
        let old =
            if a.follow { std::fs::metadata(os(&a.host)) } else { std::fs::symlink_metadata(os(&a.host)) };
        errno(old)
            .or_else(|| dir_error(&b.host))
            .or_else(|| (b.creates && std::fs::symlink_metadata(os(&b.host)).is_ok()).then_some(libc::EEXIST))
    } else {
        dir_error(&a.host).or_else(|| dir_error(&b.host))
    };
    first.unwrap_or(libc::EXDEV)
}

/// A copy of openat2's `struct open_how` (argument `a`) in scratch memory, with the
/// `resolve` bits `clear` cleared; its address.
fn open_how_without(tid: Pid, call: &Call, a: u8, clear: u64, scratch: &mut Scratch) -> Result<u64, Outcome> {
    let size = call.args[a as usize + 1] as usize;
    if !(24..=4096).contains(&size) {
        return Err(Outcome::Pass); // the kernel answers E2BIG or EINVAL itself
    }
    let mut how = vec![0u8; size];
    memory::read(tid, call.args[a as usize], &mut how).map_err(|e| Outcome::Fail(Errno(e.errno())))?;
    let resolve = u64::from_ne_bytes(how[16..24].try_into().expect("8 bytes")) & !clear;
    how[16..24].copy_from_slice(&resolve.to_ne_bytes());
    scratch.put(&how)
}

/// bind/connect on an AF_UNIX socket path: the path is translated like any other.
pub(super) fn sockaddr_call(
    s: &Session,
    c: &Caller,
    call: &Call,
    scratch: &mut Scratch,
) -> Result<Decision, Outcome> {
    const SUN_PATH: usize = 108;
    let mounts = s.mounts.read();
    let (addr, len) = (call.args[1], call.args[2] as usize);
    if (mounts.is_empty() && c.fs.is_none()) || !(3..=2 + SUN_PATH).contains(&len) {
        return Ok(Decision::pass());
    }
    let mut sa = vec![0u8; len];
    if memory::read(c.tid, addr, &mut sa).is_err() {
        return Ok(Decision::pass()); // the kernel says EFAULT itself
    }
    let family = u16::from_ne_bytes([sa[0], sa[1]]);
    if family != libc::AF_UNIX as u16 || sa[2] == 0 {
        return Ok(Decision::pass()); // not a path (or an abstract name)
    }
    let raw: Vec<u8> = sa[2..].iter().copied().take_while(|&b| b != 0).collect();
    let cwd_in_tree = |host: Vec<u8>| match (c.fs.parked_cwd(&host), mounts.reverse(&host)) {
        (Some(v), _) => (v.to_vec(), false),
        (None, Some(v)) => (v, true),
        (None, None) => (host, false),
    };
    let (start, start_in_tree) = if raw[0] == b'/' {
        (b"/".to_vec(), false)
    } else {
        readlink_host(&format!("/proc/{}/cwd", c.tid)).map(cwd_in_tree).ok_or(Outcome::Pass)?
    };
    let resolver = crate::dispatch::resolver(&mounts, c);
    let bind = call.nr == libc::SYS_bind;
    let r = resolver.resolve(&start, &raw, !bind).map_err(|e| Outcome::Fail(Errno(e)))?;
    let from_view = r.met_root || (raw[0] != b'/' && c.fs.cwd.is_some());
    if !r.crossed_mount && !from_view {
        return Ok(Decision::pass());
    }
    let access = if bind { VURS_ACCESS_WRITE | VURS_ACCESS_CREATE } else { VURS_ACCESS_READ };
    let host = resolver.host_path(&r.virt, access).map_err(|e| Outcome::Fail(Errno(e)))?;
    // A relative path that stays in the mount of the cwd: the kernel finds the same
    // socket from the real cwd (and `sun_path` need not hold the longer host path).
    if raw[0] != b'/' && r.stayed_in_start_mount && start_in_tree {
        return Ok(Decision::pass());
    }
    if host.len() >= SUN_PATH {
        return Ok(Decision::err(libc::ENAMETOOLONG, "socket path too long on the host"));
    }
    let mut new = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
    new.extend_from_slice(&host);
    new.push(0);
    let mut args = call.args;
    args[1] = scratch.put(&new)?;
    args[2] = new.len() as u64;
    Ok(Decision {
        action: Action::Rewrite(args),
        exit: None,
        note: crate::note!("rewritten socket path -> {:?}", String::from_utf8_lossy(&host)),
    })
}

/// What a call may change about the paths the resolution caches know.
#[derive(Clone, Copy)]
pub(super) enum TreeChange {
    None,
    /// A regular file may be created at its path (open with O_CREAT, creat).
    Created,
    /// A name other than a directory is removed at its path.
    Removed,
    /// Anything else: a directory, a symlink, a link or a node made, a directory removed,
    /// a rename.
    Any,
}

pub(super) fn tree_change(tid: crate::tracee::ptrace::Pid, call: &Call) -> TreeChange {
    let creates = |flags: u64| flags & libc::O_CREAT as u64 != 0;
    let created_if = |b: bool| if b { TreeChange::Created } else { TreeChange::None };
    match call.nr {
        libc::SYS_rename | libc::SYS_renameat | libc::SYS_renameat2 | libc::SYS_rmdir => TreeChange::Any,
        libc::SYS_unlinkat if call.args[2] & libc::AT_REMOVEDIR as u64 != 0 => TreeChange::Any,
        libc::SYS_unlink | libc::SYS_unlinkat => TreeChange::Removed,
        libc::SYS_mkdir | libc::SYS_mkdirat | libc::SYS_mknod | libc::SYS_mknodat => TreeChange::Any,
        libc::SYS_symlink | libc::SYS_symlinkat | libc::SYS_link | libc::SYS_linkat => TreeChange::Any,
        libc::SYS_creat => TreeChange::Created,
        libc::SYS_open => created_if(creates(call.args[1])),
        libc::SYS_openat => created_if(creates(call.args[2])),
        libc::SYS_openat2 => created_if(creates(call.open_how_flags(tid, 2))),
        _ => TreeChange::None,
    }
}

/// An absolute path's directory part (not the root) and its last component (a name, not
/// "." or ".."; none when the path ends in '/').
fn split_dir(raw: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = raw.iter().rposition(|&b| b == b'/')?;
    let (dir, name) = (&raw[..i], &raw[i + 1..]);
    let plain = !name.is_empty() && name != b"." && name != b"..";
    (i > 0 && raw[0] == b'/' && plain).then_some((dir, name))
}

pub(super) fn is_open(nr: i64) -> bool {
    nr == libc::SYS_open || nr == libc::SYS_openat || nr == libc::SYS_openat2
}

pub(super) fn is_exec(nr: i64) -> bool {
    nr == libc::SYS_execve || nr == libc::SYS_execveat
}

/// execve of a `#!` script whose interpreter lies in a mount (see exec.rs). `raw` is the
/// program's path as given; `passed`: it resolved outside every mount.
#[allow(clippy::too_many_arguments)]
pub(super) fn exec_script(
    mounts: &MountTable,
    c: &Caller,
    call: &Call,
    p: &PathArg,
    raw: &[u8],
    passed: bool,
    args: &mut [u64; 6],
    scratch: &mut Scratch,
) -> Result<bool, Outcome> {
    if raw.is_empty() {
        return Ok(false);
    }
    let resolver = crate::dispatch::resolver(mounts, c);
    // An absolute path that passes names the same file for vurs as for the caller.
    let (host, in_mount) = if passed && raw[0] == b'/' {
        (raw.to_vec(), false)
    } else {
        let start = if raw[0] == b'/' { b"/".to_vec() } else { start_dir(mounts, c, call, p)? };
        let Ok(r) = resolver.resolve(&start, raw, true) else {
            return Ok(false);
        };
        let Ok(host) = resolver.host_path(&r.virt, VURS_ACCESS_EXEC) else {
            return Ok(false);
        };
        (host, r.crossed_mount || r.met_root)
    };
    let argv_arg = p.arg as usize + 1;
    let args_in = crate::dispatch::exec::ScriptCall {
        script_host: &host,
        script_arg: raw,
        script_in_mount: in_mount,
        argv: call.args[argv_arg],
        tid: c.tid,
    };
    let cwd_v = || cwd(mounts, c).unwrap_or_else(|| b"/".to_vec());
    match crate::dispatch::exec::script_args(&resolver, &cwd_v, &args_in, scratch)? {
        Some((path, argv)) => {
            args[p.arg as usize] = path;
            args[argv_arg] = argv;
            Ok(true)
        }
        None => Ok(false),
    }
}

pub(super) fn is_empty_path(c: &Caller, call: &Call, p: &PathArg) -> bool {
    let addr = call.args[p.arg as usize];
    if addr == 0 {
        return p.null_ok;
    }
    let mut b = [0u8; 1];
    memory::read(c.tid, addr, &mut b).is_ok() && b[0] == 0
}

/// getdents64 on a real directory: of a merged view (a mount whose module lists it), or
/// one that has mount points missing on the host.
pub(super) fn getdents(s: &Session, c: &Caller, call: &Call) -> Result<Decision, Outcome> {
    let mounts = s.mounts.read();
    let merged = mounts.mounts.iter().any(|m| m.module.has_list());
    if mounts.synthetic.is_empty() && !merged {
        return Ok(Decision::pass());
    }
    let fd = call.fd_arg(0);
    let host = readlink_host(&format!("/proc/{}/fd/{}", c.tid, fd)).ok_or(Outcome::Pass)?;
    let dir = to_virtual(&mounts, host);
    if let Some(m) = mounts.find(&dir).filter(|m| merged && m.module.has_list()) {
        let sub = mounts::subpath(&dir, m.target.as_bytes());
        if let Some(d) = merged_getdents(m, sub, c, call)? {
            return Ok(d);
        }
    }
    if mounts.synthetic.is_empty() {
        return Ok(Decision::pass());
    }
    let entries: Vec<(Vec<u8>, u8)> =
        mounts.synthetic.iter().filter(|(p, _, _)| *p == dir).map(|(_, n, k)| (n.clone(), *k)).collect();
    if entries.is_empty() {
        return Ok(Decision::pass());
    }
    let exit = ExitHook::Dirents { fd, buf: call.args[1], cap: call.args[2], entries };
    Ok(Decision { action: Action::Pass, exit: Some(exit), note: "mount points listed".into() })
}

pub(super) fn getcwd(s: &Session, c: &Caller, call: &Call) -> Result<Decision, Outcome> {
    let mounts = s.mounts.read();
    if mounts.is_empty() {
        return Ok(Decision::pass());
    }
    let host = readlink_host(&format!("/proc/{}/cwd", c.tid)).ok_or(Outcome::Pass)?;
    let Some(virt) = mounts.reverse(&host) else {
        return Ok(Decision::pass());
    };
    Ok(cwd_answer(c, call, virt))
}

/// getcwd(buf, size) answered with `cwd` (NUL added): ERANGE when it does not fit, EFAULT
/// for a bad buffer, else its length.
pub(super) fn cwd_answer(c: &Caller, call: &Call, mut cwd: Vec<u8>) -> Decision {
    cwd.push(0);
    if (call.args[1] as usize) < cwd.len() {
        return Decision::err(libc::ERANGE, "virtual cwd");
    }
    if memory::write(c.tid, call.args[0], &cwd).is_err() {
        return Decision::err(libc::EFAULT, "virtual cwd");
    }
    Decision::ret(cwd.len() as i64, "virtual cwd")
}

pub(super) fn readlink(
    s: &Session,
    c: &Caller,
    call: &Call,
    paths: &[PathArg],
    scratch: &mut Scratch,
    pre: Option<Vec<u8>>,
) -> Result<Decision, Outcome> {
    let mounts = s.mounts.read();
    if mounts.is_empty() && c.fs.is_none() {
        return Ok(Decision::pass());
    }
    let p = &paths[0];
    let (buf, size) = (call.args[p.arg as usize + 1], call.args[p.arg as usize + 2]);
    // The link itself is resolved like any path; magic /proc links are translated back.
    let addr = call.args[p.arg as usize];
    let raw = match pre {
        Some(r) => r,
        None => memory::read_cstring(c.tid, addr, PATH_MAX).map_err(|e| Outcome::Fail(Errno(e.errno())))?,
    };
    // Only paths under /proc (directly, through /dev/fd, or relative) can name one.
    let maybe_magic = raw.first() != Some(&b'/') || raw.starts_with(b"/proc/") || raw.starts_with(b"/dev/");
    let magic = if maybe_magic {
        let start = if raw.first() == Some(&b'/') { b"/".to_vec() } else { start_dir(&mounts, c, call, p)? };
        // By its host path: /proc may be bound elsewhere (into a root the caller
        // chroot'ed to).
        let resolver = crate::dispatch::resolver(&mounts, c);
        resolver
            .resolve(&start, &raw, false)
            .ok()
            .and_then(|r| resolver.host_path(&r.virt, VURS_ACCESS_READ).ok())
            .filter(|v| crate::path::procfs::is_magic_link(v))
    } else {
        None
    };
    drop(mounts); // path_call takes it again
    let mut d = path_call(s, c, call, paths, scratch, Some(raw))?;
    if let Some(path) = magic {
        d.exit = Some(ExitHook::ReverseLink { buf, size, path });
    }
    Ok(d)
}

/// At the exit of a readlink of magic link `link`: translate the host path back.
pub fn reverse_link(s: &Session, tid: Pid, link: &[u8], buf: u64, size: u64, ret: i64) -> Option<i64> {
    if ret <= 0 {
        return None;
    }
    let mut text = vec![0u8; ret as usize];
    memory::read(tid, buf, &mut text).ok()?;
    let reader = crate::dispatch::caller::fs_of(tid);
    let virt = crate::dispatch::shown_link(&s.mounts.read(), reader.as_ref(), link, text)?;
    let n = virt.len().min(size as usize);
    memory::write(tid, buf, &virt[..n]).ok()?;
    Some(n as i64)
}

pub(super) fn unsupported(s: &Session, call: &Call) -> Result<Decision, Outcome> {
    if s.mounts.read().is_empty() {
        return Ok(Decision::pass());
    }
    crate::tracelog::module_line(
        VURS_LOG_WARN,
        "core",
        &format!("{} is not virtualized: ENOSYS", call.name()),
    );
    Ok(Decision::err(libc::ENOSYS, "not virtualized (fails closed)"))
}

/// linux_dirent64 records for virtual entries (as many as fit in `cap`).
pub fn synthetic_dirents(entries: &[(Vec<u8>, u8)], cap: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, (name, kind)) in entries.iter().enumerate() {
        let reclen = (8 + 8 + 2 + 1 + name.len() + 1 + 7) & !7;
        if out.len() + reclen > cap {
            break;
        }
        let start = out.len();
        let ino = 0x7653_0000u64 + i as u64;
        out.extend_from_slice(&ino.to_ne_bytes());
        out.extend_from_slice(&(i64::MAX - entries.len() as i64 + i as i64).to_ne_bytes());
        out.extend_from_slice(&(reclen as u16).to_ne_bytes());
        out.push(*kind);
        out.extend_from_slice(name);
        out.resize(start + reclen, 0);
    }
    out
}

/// An open of `sub` in mount `m`, whose module merges listings: when that directory's
/// listing is the module's (not the host directory's own), getdents64 traps from now on.
/// Until the first such open, getdents64 runs at full speed in every process (a view
/// no one wrote to lists itself). A descriptor opened before then on a directory that
/// becomes merged later keeps listing the host directory (docs/architecture.md).
fn trap_dirents_if_merged(s: &Session, m: &mounts::Mount, sub: &[u8]) {
    if !s.traps_dirents() && !matches!(m.module.list(m.mnt, sub, 0), Err(libc::ENOSYS)) {
        s.trap_dirents();
    }
}

/// Whether the view lists a name other than "." and ".." in directory `sub` (`host`: the
/// directory `redirect` names, which lists itself when the module says so).
fn lists_entries(m: &mounts::Mount, sub: &[u8], host: &[u8]) -> bool {
    if let Err(libc::ENOSYS) = m.module.list(m.mnt, sub, 0) {
        return std::fs::read_dir(std::ffi::OsStr::from_bytes(host)).is_ok_and(|mut d| d.next().is_some());
    }
    (0..).map_while(|i| m.module.list(m.mnt, sub, i).ok().flatten()).any(|(_, _, n)| n != b"." && n != b"..")
}

/// getdents64 on a directory of a merged view: the module's entries from the one at the
/// descriptor's offset on, each with the number of the next as its `d_off`, and the
/// offset moved past them (a copy of the caller's descriptor shares its offset, so
/// lseek, telldir, seekdir and rewinddir work on entry numbers). None when the module
/// says the host directory lists itself.
fn merged_getdents(
    m: &mounts::Mount,
    sub: &[u8],
    c: &Caller,
    call: &Call,
) -> Result<Option<Decision>, Outcome> {
    use std::io::{Seek, SeekFrom};
    let (buf, cap) = (call.args[1], call.args[2] as usize);
    let mut dir = match crate::tracee::seccomp::caller_fd(c.tgid, call.fd_arg(0)) {
        Ok(d) => std::fs::File::from(d),
        Err(_) => return Err(Outcome::Pass), // the kernel gives the caller its own error
    };
    let start = dir.stream_position().map_err(|_| Outcome::Pass)?;
    let mut out = Vec::with_capacity(cap.min(64 * 1024));
    let mut index = start;
    loop {
        let (ino, kind, name) = match m.module.list(m.mnt, sub, index) {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(libc::ENOSYS) if index == start => return Ok(None),
            Err(e) if out.is_empty() => return Ok(Some(Decision::err(e, "merged listing"))),
            Err(_) => break,
        };
        let reclen = (8 + 8 + 2 + 1 + name.len() + 1 + 7) & !7;
        if out.len() + reclen > cap {
            if out.is_empty() {
                return Ok(Some(Decision::err(libc::EINVAL, "merged listing: buffer too small")));
            }
            break;
        }
        let at = out.len();
        out.extend_from_slice(&ino.to_ne_bytes());
        out.extend_from_slice(&(index as i64 + 1).to_ne_bytes());
        out.extend_from_slice(&(reclen as u16).to_ne_bytes());
        out.push(kind);
        out.extend_from_slice(&name);
        out.resize(at + reclen, 0);
        index += 1;
    }
    if memory::write(c.tid, buf, &out).is_err() {
        return Ok(Some(Decision::err(libc::EFAULT, "merged listing")));
    }
    let _ = dir.seek(SeekFrom::Start(index));
    Ok(Some(Decision::ret(out.len() as i64, "merged listing")))
}
