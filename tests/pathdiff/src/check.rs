//! The comparison: each lookup of a case is answered
//! - by the kernel on M (the virtual view made real), relative to a descriptor of the
//!   start directory;
//! - by vurs on V: the resolver walks the virtual path through the mounts, the result is
//!   translated to a host path as `dispatch/paths.rs::translate` does, and the kernel
//!   looks that up. Three times: with a session's caches learning (every lookup of the
//!   case, in order), again with what they learnt, and with caches emptied before each
//!   lookup.
//!
//! All answers must designate the same object, or fail with the same errno.
use crate::case::{path_text, Anchor, Case, PathSpec};
use crate::world::{Ident, Worlds};
use std::ffi::CString;
use std::fmt::Write;
use vurs::path::mounts::{under, MountTable};
use vurs::path::resolve::Resolver;
use vurs::session::Session;
use vurs_abi::VURS_ACCESS_READ;

pub type Answer = Result<Ident, i32>;

/// How `translate` is modelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Model {
    /// Use the walk caches (`passes`, known directories) as `translate` does for absolute
    /// paths.
    pub caches: bool,
    /// Take `dot_final`'s branch for a path ending in `.` or `..` not followed.
    pub dot_final: bool,
}

/// A descriptor closed on drop.
struct Fd(i32);
impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: closing a descriptor this struct owns.
        unsafe { libc::close(self.0) };
    }
}

fn cstr(b: &[u8]) -> CString {
    CString::new(b).expect("no NUL in generated paths")
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// openat(dirfd, path, O_PATH [| O_NOFOLLOW]) and fstat: the kernel's own lookup.
fn kernel(dirfd: i32, path: &[u8], follow: bool) -> Result<(u64, u64), i32> {
    let flags = libc::O_PATH | libc::O_CLOEXEC | if follow { 0 } else { libc::O_NOFOLLOW };
    let c = cstr(path);
    // SAFETY: a valid NUL-terminated path.
    let fd = unsafe { libc::openat(dirfd, c.as_ptr(), flags) };
    if fd < 0 {
        return Err(errno());
    }
    let fd = Fd(fd);
    // SAFETY: a zeroed stat filled by fstat on an open descriptor.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd.0, &mut st) } != 0 {
        return Err(errno());
    }
    Ok((st.st_dev, st.st_ino))
}

fn open_dir(path: &[u8]) -> Result<Fd, i32> {
    let c = cstr(path);
    // SAFETY: a valid NUL-terminated path.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    if fd < 0 {
        Err(errno())
    } else {
        Ok(Fd(fd))
    }
}

fn fd_path(fd: &Fd) -> Vec<u8> {
    let l = std::fs::read_link(format!("/proc/self/fd/{}", fd.0)).expect("readlink of an open descriptor");
    std::os::unix::ffi::OsStrExt::as_bytes(l.as_os_str()).to_vec()
}

/// A session with fsremap loaded and the case's kept mounts made.
pub fn session(w: &Worlds) -> Session {
    let fsremap = vurs::module::load("fsremap", "").unwrap_or_else(|e| {
        panic!("{e}: build the workspace (cargo build --release --workspace) and set VURS_MODULE_PATH")
    });
    let s = Session::new(vec![fsremap]);
    for k in &w.mounts {
        let (src, tgt) = (String::from_utf8_lossy(&k.source), String::from_utf8_lossy(&k.target));
        s.mount("fsremap", &src, &tgt, "")
            .unwrap_or_else(|e| panic!("vurs refused mount {src} on {tgt}: {e:?}"));
    }
    s
}

/// What a session's table designates by a host answer: its virtual-only directories'
/// stand-ins are known by their virtual path.
fn v_ident(t: &MountTable, (dev, ino): (u64, u64)) -> Ident {
    use std::os::unix::{ffi::OsStrExt, fs::MetadataExt};
    for (v, h) in &t.implicit {
        if let Ok(md) = std::fs::symlink_metadata(std::ffi::OsStr::from_bytes(h)) {
            if (md.dev(), md.ino()) == (dev, ino) {
                return Ident::Implicit(v.clone());
            }
        }
    }
    Ident::Obj(dev, ino)
}

/// `translate`'s split of an absolute path into its directory part and a plain last name.
fn split_dir(raw: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = raw.iter().rposition(|&b| b == b'/')?;
    let (dir, name) = (&raw[..i], &raw[i + 1..]);
    let plain = !name.is_empty() && name != b"." && name != b"..";
    (i > 0 && raw[0] == b'/' && plain).then_some((dir, name))
}

/// vurs's answer: the resolution and translation of `translate` (dispatch/paths.rs), then
/// the kernel's lookup of what it would hand the kernel. `start` is the canonical
/// virtual start directory.
pub fn vurs_answer(t: &MountTable, start: &[u8], raw: &[u8], follow: bool, model: Model) -> Answer {
    if raw.is_empty() {
        return Err(libc::ENOENT);
    }
    let pid = std::process::id() as i32;
    let resolver = Resolver { mounts: t, tgid: pid, tid: pid, view: &vurs::path::FsView::NONE };
    let real_start = || -> Fd {
        let host = resolver.host_path(start, VURS_ACCESS_READ).expect("host path of the start directory");
        open_dir(&host).unwrap_or_else(|e| panic!("start {:?}: errno {e}", String::from_utf8_lossy(&host)))
    };
    // The kernel given the path untouched, from the real start directory.
    let untouched = || -> Answer {
        let r = if raw[0] == b'/' {
            kernel(libc::AT_FDCWD, raw, follow)
        } else {
            kernel(real_start().0, raw, follow)
        };
        r.map(|o| v_ident(t, o))
    };
    let translated = |mut host: Vec<u8>, trailing_slash: bool| -> Answer {
        if trailing_slash && !host.ends_with(b"/") {
            host.push(b'/');
        }
        kernel(libc::AT_FDCWD, &host, follow).map(|o| v_ident(t, o))
    };
    // The plain-name fast path.
    if !follow && raw[0] != b'/' && t.plain_name_passes(raw) {
        return untouched();
    }
    let cacheable = model.caches && raw[0] == b'/';
    if cacheable && t.nodecache.passes(raw, follow) {
        return untouched();
    }
    let start_v: &[u8] = if raw[0] == b'/' { b"/" } else { start };
    if !follow && model.dot_final {
        let trimmed = raw.strip_suffix(b"/").unwrap_or(raw);
        let (dir, last) = match trimmed.iter().rposition(|&b| b == b'/') {
            Some(i) => (&trimmed[..i.max(1)], &trimmed[i + 1..]),
            None => (&b"."[..], trimmed),
        };
        if last == b"." || last == b".." {
            let res = resolver.resolve(start_v, dir, true)?;
            if res.crossed_mount {
                // As dispatch/paths.rs `dot_final`: only a mount point's (or a virtual-only
                // directory's) `..` is the virtual parent; elsewhere the name stays.
                let at_mount_point = t.mounts.iter().any(|m| m.target.as_bytes() == res.virt.as_slice())
                    || t.implicit.iter().any(|(v, _)| v == &res.virt);
                if last == b"." || !at_mount_point {
                    let mut host = resolver.host_path(&res.virt, VURS_ACCESS_READ)?;
                    host.push(b'/');
                    host.extend_from_slice(last);
                    return translated(host, false);
                }
                let parent = match res.virt.iter().rposition(|&b| b == b'/') {
                    Some(0) | None => b"/".to_vec(),
                    Some(i) => res.virt[..i].to_vec(),
                };
                return translated(resolver.host_path(&parent, VURS_ACCESS_READ)?, false);
            }
        }
    }
    let generation = t.nodecache.generation();
    let split = if cacheable { split_dir(raw) } else { None };
    let known = split.and_then(|(dir, name)| Some((name, t.nodecache.dir(dir)?)));
    let r = match &known {
        Some((name, (canonical, links))) => resolver.resolve_in(canonical, name, follow, *links),
        None => resolver.resolve(start_v, raw, follow),
    }?;
    if let (Some((dir, _)), None, Some((canonical, links))) = (split, &known, &r.dir_of_last) {
        if !under(canonical, b"/proc") {
            t.nodecache.note_dir(generation, dir, canonical, *links);
        }
    }
    if !r.crossed_mount {
        if cacheable && !under(&r.virt, b"/proc") {
            t.nodecache.note_pass(generation, raw, follow);
        }
        return untouched();
    }
    // A relative walk that stayed in its start mount is left to the kernel (the start is
    // in the mount's host tree here).
    if raw[0] != b'/' && r.stayed_in_start_mount {
        return untouched();
    }
    translated(resolver.host_path(&r.virt, VURS_ACCESS_READ)?, r.trailing_slash)
}

/// What a check found.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Lookups compared.
    pub lookups: usize,
    /// Mounts made (those the kernel would refuse are left out).
    pub mounts: usize,
    /// Lookups whose answer (the kernel's on the view made real) is an object, not an errno.
    pub found: usize,
    /// Differences known to come from dispatch/paths.rs (`dot_final`; a path made too
    /// long by translation), each described: see `known_difference`.
    pub known: Vec<String>,
}

fn show(a: &Answer) -> String {
    match a {
        Ok(Ident::Obj(d, i)) => format!("object {d}:{i}"),
        Ok(Ident::Implicit(v)) => format!("virtual-only dir {}", String::from_utf8_lossy(v)),
        Err(e) => format!("errno {e} ({})", std::io::Error::from_raw_os_error(*e)),
    }
}

/// Differences known to come from outside the resolver (dispatch/paths.rs, the lead's),
/// each with a case #[ignore]d in tests/regressions.rs: the reason, or None.
fn known_difference(_fresh: &Session, l: &Lookup, vurs: &Answer) -> Option<&'static str> {
    // An absolute path into a mount whose SOURCE is longer than its TARGET is handed to the
    // kernel as a host path that may pass PATH_MAX (docs/paths.md, known limits); relative
    // paths that stay in their mount are kept relative and do not hit this.
    if *vurs == Err(libc::ENAMETOOLONG)
        && l.kernel != Err(libc::ENAMETOOLONG)
        && l.raw_v.first() == Some(&b'/')
    {
        return Some("an absolute path made longer than PATH_MAX by translation (a known limit)");
    }
    None
}

/// Build the case and compare every lookup: Err describes the first difference.
pub fn check(case: &Case) -> Result<Outcome, String> {
    // One check at a time: the virtual-only directories of every session live in one
    // private folder of the process, removed after each check.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let w = Worlds::build(case).map_err(|e| format!("building the case failed: {e}"))?;
    let result = compare(case, &w);
    drop(w);
    vurs::path::procfs::cleanup();
    result
}

struct Lookup {
    start_virt: Vec<u8>,
    raw_v: Vec<u8>,
    follow: bool,
    kernel: Answer,
}

fn compare(case: &Case, w: &Worlds) -> Result<Outcome, String> {
    let mut lookups = Vec::new();
    for q in &case.queries {
        let root_start = PathSpec { anchor: Anchor::Root, comps: q.start.clone(), trailing_slash: false };
        let start_m = open_dir(&path_text(&w.m, &root_start, 1))
            .or_else(|_| open_dir(&[&w.m[..], b"/r"].concat()))
            .expect("M's root");
        let start_virt = w.to_v(&fd_path(&start_m));
        let raw_v = path_text(&w.v, &q.path, q.repetitions());
        let raw_m = if q.path.anchor == Anchor::Relative { raw_v.clone() } else { w.to_m(&raw_v) };
        let kernel = kernel(start_m.0, &raw_m, q.follow).map(|(d, i)| w.m_ident(d, i));
        lookups.push(Lookup { start_virt, raw_v, follow: q.follow, kernel });
    }
    let learning = session(w);
    let fresh = session(w);
    let found = lookups.iter().filter(|l| l.kernel.is_ok()).count();
    let mut out = Outcome { lookups: lookups.len(), mounts: w.mounts.len(), found, known: Vec::new() };
    let cached = Model { caches: true, dot_final: true };
    let uncached = Model { caches: false, dot_final: true };
    let mut runs: Vec<(&str, Vec<Answer>)> = Vec::new();
    {
        let t = learning.mounts.read();
        for pass in ["cached, first walk", "cached, second walk"] {
            let answers = lookups.iter().map(|l| vurs_answer(&t, &l.start_virt, &l.raw_v, l.follow, cached));
            runs.push((pass, answers.collect()));
        }
    }
    {
        let t = fresh.mounts.read();
        let answers = lookups.iter().map(|l| {
            t.nodecache.clear();
            vurs_answer(&t, &l.start_virt, &l.raw_v, l.follow, uncached)
        });
        runs.push(("uncached", answers.collect()));
    }
    for (i, l) in lookups.iter().enumerate() {
        for (run, answers) in &runs {
            if answers[i] == l.kernel {
                continue;
            }
            let mut msg = String::new();
            let _ = writeln!(msg, "MISMATCH ({run}) in lookup {} of:\n{case}", i + 1);
            let _ = writeln!(msg, "WORLD (vurs) = {}", String::from_utf8_lossy(&w.v));
            let _ = writeln!(msg, "start = {}", String::from_utf8_lossy(&l.start_virt));
            let _ = writeln!(msg, "path  = {}", String::from_utf8_lossy(&l.raw_v));
            let _ = writeln!(msg, "kernel on the view made real: {}", show(&l.kernel));
            let _ = writeln!(msg, "vurs:                         {}", show(&answers[i]));
            match known_difference(&fresh, l, &answers[i]) {
                Some(why) => {
                    let _ = writeln!(msg, "known: {why}");
                    out.known.push(msg);
                    break;
                }
                None => return Err(msg),
            }
        }
    }
    Ok(out)
}
