//! The parts of /proc a tracee must see virtualized: magic links whose text is a host
//! path (translated back at the readlink's exit), and the mount lists, which gain the
//! session's virtual mounts (a synthesized copy is opened instead of the real file).
use crate::mounts::MountTable;
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

/// /proc/<pid>/mounts (also under task/<tid>/); /proc/mounts resolves to it.
pub fn is_mounts_file(p: &[u8]) -> bool {
    proc_tail(p).is_some_and(|t| t == ["mounts"])
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

/// The text of /proc/<pid>/status.
pub fn status(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/status")).ok()
}

/// The value of one "Name:\tvalue" line of a status text, trimmed.
pub fn status_field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')).map(str::trim)
}

static SERIAL: AtomicU64 = AtomicU64::new(0);

/// Write the caller's mount list plus the virtual mounts to a private file; returns its
/// path. The caller opens it and unlinks it at the open's exit, so nothing stays behind.
pub fn synth_mounts(mounts: &MountTable, tid: i32) -> Option<Vec<u8>> {
    let mut text = std::fs::read(format!("/proc/{tid}/mounts")).ok()?;
    for m in &mounts.mounts {
        let opts = if m.options.is_empty() { "rw".to_string() } else { m.options.clone() };
        text.extend_from_slice(
            format!("{} {} {} {} 0 0\n", m.source, m.target, m.module.name, opts).as_bytes(),
        );
    }
    let dir = make_session_dir();
    let path = dir.join(format!("mounts.{}", SERIAL.fetch_add(1, Ordering::Relaxed)));
    std::fs::write(&path, text).ok()?;
    Some(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()).to_vec())
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
