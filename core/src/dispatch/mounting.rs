//! Virtual mounts made by programs (mount(2), umount2(2)) and the in-session control
//! call behind `vurs mount|umount|insmod|rmmod|lsmod|mounts`.
use super::*;
use crate::control;
use crate::errno::Errno;
use crate::session::Session;
use crate::syscall::Call;
use crate::tracee::memory::{self, PATH_MAX};
use crate::tracee::ptrace::Pid;
use vurs_abi::*;

pub(super) fn read_str(tid: Pid, addr: u64) -> Result<String, Outcome> {
    let b = memory::read_cstring(tid, addr, PATH_MAX).map_err(|e| Outcome::Fail(Errno(e.errno())))?;
    Ok(String::from_utf8_lossy(&b).into_owned())
}

/// Canonical virtual path of `path` for the caller (mount targets, umount).
pub(super) fn canonical(s: &Session, c: &Caller, path: &str) -> Result<Vec<u8>, i32> {
    let mounts = s.mounts.read();
    let start = if path.starts_with('/') { b"/".to_vec() } else { cwd(&mounts, c).ok_or(libc::ENOENT)? };
    let resolver = crate::dispatch::resolver(&mounts, c);
    Ok(resolver.resolve(&start, path.as_bytes(), true)?.virt)
}

/// Host path of `path` for the caller (mount sources).
pub(super) fn host_path(s: &Session, c: &Caller, path: &str) -> Result<String, i32> {
    let virt = canonical(s, c, path)?;
    let mounts = s.mounts.read();
    let resolver = crate::dispatch::resolver(&mounts, c);
    let host = resolver.host_path(&virt, VURS_ACCESS_READ)?;
    Ok(String::from_utf8_lossy(&host).into_owned())
}

pub(super) fn do_mount(
    s: &Session,
    c: &Caller,
    fstype: &str,
    source: &str,
    target: &str,
    opts: &str,
) -> Result<(), (i32, String)> {
    let target = canonical(s, c, target).map_err(|e| (e, format!("mount: {target}: {}", errstr(e))))?;
    // A source is handed to the new mount's module as a host path: one inside a served
    // mount has none (its files exist only in the serving module).
    if let Ok(virt) = canonical(s, c, source) {
        if let Some(m) = s.mounts.read().find(&virt).filter(|m| m.module.serves_paths()) {
            let msg = format!(
                "mount: {source}: lies in {} (served by module {}), which has no host path: a mount source must be a host file or directory",
                m.target, m.module.name
            );
            return Err((libc::EINVAL, msg));
        }
    }
    let host = host_path(s, c, source).map_err(|e| {
        // ENOSYS would read as "not inside a vurs session" to the client.
        let e = if e == libc::ENOSYS { libc::EINVAL } else { e };
        (e, format!("mount: {source}: {}", errstr(e)))
    });
    // A source that names no host file is passed as given: a name for modules that need
    // no source (`vurs mount -t tmpfs none /scratch`), an error for those that do.
    let source = match host {
        Ok(h) if std::path::Path::new(&h).symlink_metadata().is_ok() => h,
        Ok(_) => source.to_string(),
        Err(_) if !source.contains('/') => source.to_string(),
        Err(e) => return Err(e),
    };
    s.mount(fstype, &source, &String::from_utf8_lossy(&target), opts)
}

pub(super) fn errstr(e: i32) -> String {
    crate::errno::strerror(e)
}

/// mount(2) with a module's type name: a virtual mount.
pub(super) fn mount_call(s: &Session, c: &Caller, call: &Call) -> Result<Decision, Outcome> {
    if call.args[2] == 0 {
        return Ok(Decision::pass());
    }
    let fstype = read_str(c.tid, call.args[2])?;
    let known = s.find_module(&fstype).is_some() || crate::module::find_module_file(&fstype).is_ok();
    if !known || fstype.contains('/') {
        return Ok(Decision::pass());
    }
    let source = read_str(c.tid, call.args[0])?;
    let target = read_str(c.tid, call.args[1])?;
    let mut opts = if call.args[4] != 0 { read_str(c.tid, call.args[4])? } else { String::new() };
    if call.args[3] & libc::MS_RDONLY != 0 {
        opts = if opts.is_empty() { "ro".into() } else { format!("ro,{opts}") };
    }
    match do_mount(s, c, &fstype, &source, &target, &opts) {
        Ok(()) => Ok(Decision::ret(0, crate::note!("virtual mount {fstype}"))),
        Err((e, msg)) => Ok(Decision::err(e, msg)),
    }
}

pub(super) fn umount_call(s: &Session, c: &Caller, call: &Call) -> Result<Decision, Outcome> {
    let target = read_str(c.tid, call.args[0])?;
    let Ok(virt) = canonical(s, c, &target) else {
        return Ok(Decision::pass());
    };
    let virt = String::from_utf8_lossy(&virt).into_owned();
    if !s.mounts.read().mounts.iter().any(|m| m.target == virt) {
        return Ok(Decision::pass());
    }
    match s.umount(&virt, call.args[1] & libc::MNT_DETACH as u64 != 0) {
        Ok(()) => Ok(Decision::ret(0, "virtual umount")),
        Err((e, msg)) => Ok(Decision::err(e, msg)),
    }
}

pub(super) fn control_umount(
    s: &Session,
    c: &Caller,
    target: &str,
    lazy: bool,
) -> Result<String, (i32, String)> {
    let v = canonical(s, c, target).map_err(|e| (e, format!("umount: {target}: {}", errstr(e))))?;
    s.umount(&String::from_utf8_lossy(&v), lazy).map(|_| String::new())
}

/// `vurs insmod SPEC`: a module path is in the caller's view (the client made it absolute);
/// vurs loads the host file behind it.
fn insmod(s: &Session, c: &Caller, spec: &str) -> Result<(), (i32, String)> {
    let (name, opts) = spec.split_once(',').map_or((spec, None), |(n, o)| (n, Some(o)));
    let host_spec = if name.contains('/') {
        let host = host_path(s, c, name).map_err(|e| (e, format!("insmod: {name}: {}", errstr(e))))?;
        match opts {
            Some(o) => format!("{host},{o}"),
            None => host,
        }
    } else {
        spec.to_string()
    };
    s.insmod(&host_spec).map(drop)
}

/// The in-session control call (`vurs mount ...`).
pub(super) fn control_call(s: &Session, c: &Caller, call: &Call) -> Decision {
    let (req, req_len, ans, ans_cap) =
        (call.args[0], call.args[1] as usize, call.args[2], call.args[3] as usize);
    if req_len > 64 * 1024 {
        return Decision::err(libc::E2BIG, "control");
    }
    let mut buf = vec![0u8; req_len];
    if memory::read(c.tid, req, &mut buf).is_err() {
        return Decision::err(libc::EFAULT, "control");
    }
    let words = control::parse_request(&buf);
    let result: Result<String, (i32, String)> =
        match words.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            ["mount", fstype, source, target, opts] => {
                do_mount(s, c, fstype, source, target, opts).map(|_| String::new())
            }
            ["mount", fstype, source, target] => {
                do_mount(s, c, fstype, source, target, "").map(|_| String::new())
            }
            ["umount", target] => control_umount(s, c, target, false),
            ["umount", target, "lazy"] => control_umount(s, c, target, true),
            ["insmod", spec] => insmod(s, c, spec).map(|_| String::new()),
            ["rmmod", name] => s.rmmod(name).map(|_| String::new()),
            ["lsmod"] => Ok(s.lsmod()),
            ["mounts"] => Ok(s.mounts_text()),
            _ => Err((libc::EINVAL, format!("bad control request {words:?}"))),
        };
    let (text, ret) = match result {
        Ok(t) => (t.into_bytes(), None),
        Err((e, msg)) => {
            let mut m = msg.into_bytes();
            m.push(0);
            (m, Some(Errno(e).neg()))
        }
    };
    let n = text.len().min(ans_cap);
    if memory::write(c.tid, ans, &text[..n]).is_err() {
        return Decision::err(libc::EFAULT, "control");
    }
    Decision::ret(
        ret.unwrap_or(n as i64),
        crate::note!("control {}", words.first().map(String::as_str).unwrap_or("")),
    )
}
