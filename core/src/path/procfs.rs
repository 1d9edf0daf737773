//! The parts of /proc a tracee must see virtualized: magic links whose text is a host
//! path (translated back at the readlink's exit), and the mount lists, which gain the
//! session's virtual mounts (a synthesized copy is opened instead of the real file).
#![forbid(unsafe_code)]
use crate::path::mounts::MountTable;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicU64, Ordering};

/// /proc/<pid>/{cwd,exe,root,fd/N} (also under task/<tid>/).
pub fn is_magic_link(p: &[u8]) -> bool {
    match proc_tail(p) {
        Some(tail) => {
            let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
            matches!(tail.as_slice(), [t] if *t == "cwd" || *t == "exe" || *t == "root")
                || matches!(tail.as_slice(), ["fd", n] if digits(n))
        }
        None => false,
    }
}

/// /proc/<pid>/mounts or /proc/<pid>/mountinfo (also under task/<tid>/); /proc/mounts
/// resolves to the first. The file matched is remembered for the `synth_mounts` that
/// follows on the same thread (the call site asks one, then the other).
pub fn is_mounts_file(p: &[u8]) -> bool {
    let kind = match proc_tail(p).as_deref() {
        Some(["mounts"]) => MountsFile::Mounts,
        Some(["mountinfo"]) => MountsFile::MountInfo,
        _ => return false,
    };
    MATCHED.with(|m| *m.borrow_mut() = Some((kind, p.to_vec())));
    true
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum MountsFile {
    Mounts,
    MountInfo,
}

thread_local! {
    /// The mounts file `is_mounts_file` last matched on this thread, and its path.
    static MATCHED: std::cell::RefCell<Option<(MountsFile, Vec<u8>)>> = const { std::cell::RefCell::new(None) };
}

/// The components after /proc/<pid>[/task/<tid>].
fn proc_tail(p: &[u8]) -> Option<Vec<&str>> {
    if !p.starts_with(b"/proc/") {
        return None; // the common case, without any parsing
    }
    let s = std::str::from_utf8(p).ok()?;
    let parts: Vec<&str> = s.trim_start_matches('/').split('/').collect();
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    let tail = match parts.as_slice() {
        ["proc", pid, rest @ ..] if digits(pid) => rest,
        _ => return None,
    };
    let tail = match tail {
        ["task", tid, rest @ ..] if digits(tid) => rest,
        t => t,
    };
    Some(tail.to_vec())
}

/// /proc/<pid>/status (also under task/<tid>/): the pid it names, when a module set the
/// session's view of that process's ids (fakeroot), for `synth_status`.
pub fn status_file_with_view(p: &[u8]) -> Option<i32> {
    match proc_tail(p).as_deref() {
        Some(["status"]) => {}
        _ => return None,
    }
    let s = std::str::from_utf8(p).ok()?;
    let parts: Vec<&str> = s.trim_start_matches('/').split('/').collect();
    // /proc/<pid>/status or /proc/<pid>/task/<tid>/status: the last number names the task.
    let tid: i32 = parts.iter().rev().find_map(|x| x.parse().ok())?;
    Some(tid)
}

/// A copy of /proc/<tid>/status whose Uid, Gid and Groups lines show `ids` (real,
/// effective, saved, fs), written to a private file; returns its path (opened instead of
/// the real file and unlinked at the open's exit, as the mount lists are).
pub fn synth_status(real_path: &[u8], ids: &crate::module::Ids) -> Option<Vec<u8>> {
    let text = std::fs::read_to_string(std::ffi::OsStr::from_bytes(real_path)).ok()?;
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if line.starts_with("Uid:") {
            out += &format!("Uid:\t{}\t{}\t{}\t{}\n", ids.uid, ids.euid, ids.suid, ids.fsuid);
        } else if line.starts_with("Gid:") {
            out += &format!("Gid:\t{}\t{}\t{}\t{}\n", ids.gid, ids.egid, ids.sgid, ids.fsgid);
        } else if line.starts_with("Groups:") {
            // As the kernel writes it: each group followed by a space.
            let g: String = ids.groups.iter().map(|g| format!("{g} ")).collect();
            out += &format!("Groups:\t{g}\n");
        } else {
            out += line;
            out.push('\n');
        }
    }
    let dir = make_session_dir();
    let path = dir.join(format!("status.{}", SERIAL.fetch_add(1, Ordering::Relaxed)));
    std::fs::write(&path, out).ok()?;
    Some(path.as_os_str().as_bytes().to_vec())
}

/// The text of /proc/<pid>/status.
pub fn status(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/status")).ok()
}

/// The value of one "Name:\tvalue" line of a status text, trimmed.
pub fn status_field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')).map(str::trim)
}

static SERIAL: AtomicU64 = AtomicU64::new(0);

/// Write the mount list `is_mounts_file` matched (the caller's if none), with the virtual
/// mounts added in the same format, to a private file; returns its path. The caller opens
/// it and unlinks it at the open's exit, so nothing stays behind.
pub fn synth_mounts(mounts: &MountTable, tid: i32) -> Option<Vec<u8>> {
    let matched = MATCHED.with(|m| m.borrow_mut().take());
    let (kind, real_path) = match matched {
        Some((kind, path)) => (kind, String::from_utf8(path).ok()?),
        None => (MountsFile::Mounts, format!("/proc/{tid}/mounts")),
    };
    let mut text = std::fs::read(&real_path).ok()?;
    match kind {
        MountsFile::Mounts => text.extend_from_slice(mounts_lines(mounts).as_bytes()),
        MountsFile::MountInfo => {
            let real = String::from_utf8_lossy(&text).into_owned();
            text.extend_from_slice(mountinfo_lines(mounts, &real).as_bytes());
        }
    }
    let dir = make_session_dir();
    let path = dir.join(format!("mounts.{}", SERIAL.fetch_add(1, Ordering::Relaxed)));
    std::fs::write(&path, text).ok()?;
    Some(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()).to_vec())
}

/// A path as the kernel writes it in mount lists: space, tab, newline and backslash in octal.
fn escape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            ' ' | '\t' | '\n' | '\\' => out.push_str(&format!("\\{:03o}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The virtual mounts in /proc/mounts format ("source target type options 0 0").
pub fn mounts_lines(mounts: &MountTable) -> String {
    let mut s = String::new();
    for m in &mounts.mounts {
        let opts = if m.options.is_empty() { "rw".to_string() } else { m.options.clone() };
        let (src, dst) = (escape(&m.source), escape(&m.target));
        s += &format!("{src} {dst} {} {opts} 0 0\n", m.module.name);
    }
    s
}

/// The virtual mounts in /proc/PID/mountinfo format (proc(5)), after the `real` lines:
/// "ID PARENT MAJ:MIN ROOT TARGET OPTIONS - TYPE SOURCE SUPER-OPTIONS". A virtual mount's
/// ID follows the real ones; its parent is the mount (real or virtual, newest first) whose
/// mount point is the longest prefix of its target; its device is its source's (a served
/// mount's is 0:0); ROOT is "/".
pub fn mountinfo_lines(mounts: &MountTable, real: &str) -> String {
    let unescape = |p: &str| {
        p.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
    };
    // (id, mount point) of every mount so far, real ones first.
    let mut known: Vec<(u64, String)> = real
        .lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            let id = f.next()?.parse().ok()?;
            let point = f.nth(3)?;
            Some((id, unescape(point)))
        })
        .collect();
    let first_id = known.iter().map(|k| k.0).max().unwrap_or(0) + 1;
    let mut s = String::new();
    for (next_id, m) in (first_id..).zip(mounts.mounts.iter()) {
        // max_by_key keeps the last of equals: the newest mount on that point.
        let parent = known
            .iter()
            .filter(|(_, p)| crate::path::mounts::under(m.target.as_bytes(), p.as_bytes()))
            .max_by_key(|(_, p)| p.len())
            .map(|k| k.0)
            .unwrap_or(next_id);
        let dev = m
            .host_root()
            .as_deref()
            .and_then(|h| std::fs::metadata(std::ffi::OsStr::from_bytes(h)).ok())
            .map(|md| md.dev())
            .unwrap_or(0);
        let (major, minor) = (libc::major(dev), libc::minor(dev));
        let mode = if m.read_only { "ro" } else { "rw" };
        let sup = if m.options.is_empty() { "rw".to_string() } else { m.options.clone() };
        s += &format!(
            "{next_id} {parent} {major}:{minor} / {} {mode} - {} {} {sup}\n",
            escape(&m.target),
            m.module.name,
            escape(&m.source)
        );
        known.push((next_id, m.target.clone()));
    }
    s
}

/// The session's private directory for synthesized files: in $TMPDIR if that is a real
/// host directory (a session may point TMPDIR into a virtual tree), else in /tmp.
fn session_dir() -> std::path::PathBuf {
    static BASE: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let base = BASE.get_or_init(|| {
        std::env::var_os("TMPDIR")
            .map(std::path::PathBuf::from)
            .filter(|p| p.is_absolute() && p.is_dir())
            .unwrap_or_else(|| "/tmp".into())
    });
    base.join(format!("vurs-{}", std::process::id()))
}

/// A new empty private directory (stands in for a directory that exists only virtually).
pub fn private_dir() -> Option<Vec<u8>> {
    let dir = make_session_dir();
    let path = dir.join(format!("dir.{}", SERIAL.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir(&path).ok()?;
    let _ = std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o555));
    Some(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()).to_vec())
}

/// The parking directory: an empty directory of the session's private directory, where
/// the kernel's cwd of a process stays while its virtual cwd lies in a served mount (the
/// kernel cannot be there). Made at the first need, searchable by every user (a root
/// vurs's tracees may run as others), canonical (as /proc/TID/cwd reads it); None until
/// then, or if it cannot be made.
pub fn parking_dir() -> Option<&'static [u8]> {
    PARKING.get().and_then(|p| p.as_deref())
}

static PARKING: std::sync::OnceLock<Option<Vec<u8>>> = std::sync::OnceLock::new();

/// The parking directory, made if need be.
pub fn make_parking_dir() -> Option<&'static [u8]> {
    PARKING
        .get_or_init(|| {
            let dir = private_dir()?;
            let canonical = std::fs::canonicalize(std::ffi::OsStr::from_bytes(&dir)).ok()?;
            Some(std::os::unix::ffi::OsStringExt::into_vec(canonical.into_os_string()))
        })
        .as_deref()
}

/// Remove the private directory of synthesized files (at the end of the session), if
/// one was made.
pub fn cleanup() {
    if MADE_DIR.load(Ordering::Relaxed) {
        let _ = std::fs::remove_dir_all(session_dir());
    }
}

static MADE_DIR: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The session's private directory, made if need be.
fn make_session_dir() -> std::path::PathBuf {
    let dir = session_dir();
    MADE_DIR.store(true, Ordering::Relaxed);
    let _ = std::fs::create_dir(&dir);
    let _ = std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755));
    dir
}
