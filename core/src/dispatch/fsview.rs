//! A process's own root and cwd (`FsView`): chroot(2) is followed by vurs, not done by
//! the kernel (which would need CAP_SYS_CHROOT, and after which vurs would no longer see
//! the process's paths as host paths), and a cwd may lie in a served mount, where the
//! kernel cannot be (its cwd then waits in the parking directory). The resolver applies
//! the root (path/resolve.rs); here are the calls that change or show them: chroot,
//! chdir and fchdir into a served directory, getcwd, and the text of /proc magic links.
#![forbid(unsafe_code)]
use super::*;
use crate::errno::Errno;
use crate::path::FsView;
use crate::tracee::memory::{self, PATH_MAX};

/// The decision for `call` when the process's root or cwd are concerned; None when the
/// rest of the dispatch decides (a chdir outside served mounts, a getcwd with no view).
pub(super) fn decide(s: &Session, c: &Caller, call: &Call, scratch: &mut Scratch) -> Option<Decision> {
    let r = match call.nr {
        libc::SYS_chroot => chroot(s, c, call),
        libc::SYS_chdir if s.traps_paths() => chdir(s, c, call, scratch)?,
        libc::SYS_fchdir if crate::vfd::is_virtual(call.args[0] as i32 as i64) => fchdir(s, c, call, scratch),
        libc::SYS_getcwd if !c.fs.is_none() => getcwd(s, c, call),
        _ => return None,
    };
    Some(r.unwrap_or_else(Decision::from))
}

/// Where a path argument of the caller leads, followed: its virtual path and mount.
fn resolve(
    s: &Session,
    c: &Caller,
    call: &Call,
    raw: &[u8],
) -> Result<(Vec<u8>, Option<std::sync::Arc<crate::path::mounts::Mount>>), Outcome> {
    let mounts = s.mounts.read();
    let start = if raw.first() == Some(&b'/') {
        b"/".to_vec()
    } else {
        let p = &call.spec.ok_or(Outcome::Pass)?.paths[0];
        paths::start_dir(&mounts, c, call, p)?
    };
    let r = resolver(&mounts, c).resolve(&start, raw, true).map_err(|e| Outcome::Fail(Errno(e)))?;
    Ok((r.virt, r.mount))
}

fn read_path(c: &Caller, addr: u64) -> Result<Vec<u8>, Outcome> {
    let raw = memory::read_cstring(c.tid, addr, PATH_MAX).map_err(|e| Outcome::Fail(Errno(e.errno())))?;
    if raw.is_empty() {
        return Err(Outcome::Fail(Errno(libc::ENOENT)));
    }
    Ok(raw)
}

/// chroot(path): the lookup and search-permission errors of the kernel, then EPERM
/// unless the caller is root in the session's view (the fakeroot module's fake root
/// counts); then the process's root is the directory (the tracer made path calls trap
/// before: `Session::trap_paths`).
fn chroot(s: &Session, c: &Caller, call: &Call) -> Result<Decision, Outcome> {
    let raw = read_path(c, call.args[0])?;
    let (virt, mount) = resolve(s, c, call, &raw)?;
    let privileged = c.creds.effective().euid == 0;
    match mount.filter(|m| m.module.serves_paths()) {
        Some(m) => serve::enter_dir(c, &m, &virt).map_err(|e| Outcome::Fail(Errno(e)))?,
        None => {
            let host = resolver(&s.mounts.read(), c)
                .host_path(&virt, VURS_ACCESS_READ)
                .map_err(|e| Outcome::Fail(Errno(e)))?;
            let md = std::fs::metadata(std::ffi::OsStr::from_bytes(&host))
                .map_err(|e| Outcome::Fail(Errno(e.raw_os_error().unwrap_or(libc::ENOENT))))?;
            if !md.is_dir() {
                return Err(Outcome::Fail(Errno(libc::ENOTDIR)));
            }
            if !privileged && !searchable(c, &md) {
                return Err(Outcome::Fail(Errno(libc::EACCES)));
            }
        }
    }
    if !privileged {
        return Ok(Decision::err(libc::EPERM, "chroot needs root"));
    }
    let root: Option<std::sync::Arc<[u8]>> = (virt != b"/").then(|| virt.as_slice().into());
    caller::set_fs(c.tid, |fs| fs.root = root).map_err(|e| Outcome::Fail(Errno(e)))?;
    Ok(Decision::ret(0, "chroot followed"))
}

/// The kernel's search permission on a host directory, for the caller's ids.
fn searchable(c: &Caller, md: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    let ids = c.creds.effective();
    let bits = if md.uid() == ids.fsuid {
        md.mode() >> 6
    } else if md.gid() == ids.fsgid || ids.groups.contains(&md.gid()) {
        md.mode() >> 3
    } else {
        md.mode()
    };
    ids.fsuid == 0 || bits & 1 != 0
}

/// chdir(path) to a directory of a served mount: checked as the kernel would, then the
/// process's cwd is that virtual directory and the kernel's goes to the parking
/// directory. None for any other directory (the path is translated as for any call).
fn chdir(s: &Session, c: &Caller, call: &Call, scratch: &mut Scratch) -> Option<Result<Decision, Outcome>> {
    let raw = match read_path(c, call.args[0]) {
        Ok(r) => r,
        Err(o) => return Some(Err(o)),
    };
    let (virt, mount) = match resolve(s, c, call, &raw) {
        Ok(r) => r,
        Err(o) => return Some(Err(o)),
    };
    let m = mount.filter(|m| m.module.serves_paths())?;
    Some(park(c, call, &m, virt, scratch))
}

/// fchdir(fd) of a virtual descriptor: its directory, as for chdir (fchdir checks search
/// permission too).
fn fchdir(s: &Session, c: &Caller, call: &Call, scratch: &mut Scratch) -> Result<Decision, Outcome> {
    let fd = call.args[0] as i32;
    let virt = serve::fd_path(c, fd).ok_or(Outcome::Fail(Errno(libc::EBADF)))?;
    let m = s.mounts.read().find(&virt).cloned().filter(|m| m.module.serves_paths());
    let Some(m) = m else { return Err(Outcome::Fail(Errno(libc::ENOTDIR))) };
    park(c, call, &m, virt, scratch)
}

/// Make `virt` in served mount `m` the caller's cwd: the call becomes chdir(parking
/// directory).
fn park(
    c: &Caller,
    call: &Call,
    m: &std::sync::Arc<crate::path::mounts::Mount>,
    virt: Vec<u8>,
    scratch: &mut Scratch,
) -> Result<Decision, Outcome> {
    serve::enter_dir(c, m, &virt).map_err(|e| Outcome::Fail(Errno(e)))?;
    let parking = crate::path::procfs::make_parking_dir().ok_or(Outcome::Fail(Errno(libc::ENOMEM)))?;
    let mut args = call.args;
    args[0] = scratch.put_cstr(parking)?;
    let note = crate::note!("cwd {:?} in {}", String::from_utf8_lossy(&virt), m.module.name);
    let cwd: std::sync::Arc<[u8]> = virt.as_slice().into();
    caller::set_fs(c.tid, |fs| fs.cwd = Some(cwd)).map_err(|e| Outcome::Fail(Errno(e)))?;
    let action = if call.nr == libc::SYS_chdir {
        Action::Rewrite(args)
    } else {
        Action::RewriteAs(libc::SYS_chdir, args)
    };
    Ok(Decision { action, exit: None, note })
}

/// getcwd(buf, size) of a process with a view: its virtual cwd, shown from its root
/// ("(unreachable)/..." outside it, as the kernel).
fn getcwd(s: &Session, c: &Caller, call: &Call) -> Result<Decision, Outcome> {
    let virt = cwd(&s.mounts.read(), c).ok_or(Outcome::Pass)?;
    Ok(super::paths::cwd_answer(c, call, c.fs.shown(&virt, true)))
}

/// The text a readlink of magic link `link` shows, the kernel having answered `text` (a
/// host path): the parking directory is the virtual cwd of the link's process, a host
/// path is translated back through the mounts, and the result is shown from the reader's
/// root (`reader`). None when the text stays as it is.
pub fn shown_link(
    mounts: &crate::path::mounts::MountTable,
    reader: Option<&FsView>,
    link: &[u8],
    text: Vec<u8>,
) -> Option<Vec<u8>> {
    let parked = (Some(text.as_slice()) == crate::path::procfs::parking_dir())
        .then(|| {
            let pid: i32 =
                std::str::from_utf8(link.strip_prefix(b"/proc/")?).ok()?.split('/').next()?.parse().ok()?;
            Some(caller::fs_of(pid)?.cwd?.to_vec())
        })
        .flatten();
    let virt = match parked {
        Some(v) => v,
        None => mounts.reverse(&text).unwrap_or_else(|| text.clone()),
    };
    let shown = match reader {
        Some(view) => view.shown(&virt, false),
        None => virt,
    };
    (shown != text).then_some(shown)
}
