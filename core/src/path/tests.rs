//! Unit tests of the resolver and its caches, without a session or a tracee: small trees
//! in a temporary directory, a mount table with no mounts (so every virtual path is the
//! host path), and the kernel's own resolution of the same paths as the reference.
//! Mount-related resolution is covered by tests/pathdiff.
use super::mounts::MountTable;
use super::resolve::{Resolved, Resolver};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A fresh directory under the system's temporary directory, removed on drop.
struct TempTree {
    root: PathBuf,
}

impl TempTree {
    fn new(tag: &str) -> TempTree {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("vurs-resolve-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the test tree");
        // The resolver works on canonical paths: /tmp itself may be a symlink.
        TempTree { root: std::fs::canonicalize(&dir).expect("canonicalize the test tree") }
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
    fn dir(&self, rel: &str) {
        std::fs::create_dir_all(self.path(rel)).unwrap();
    }
    fn file(&self, rel: &str) {
        std::fs::write(self.path(rel), b"x").unwrap();
    }
    fn link(&self, rel: &str, target: &str) {
        std::os::unix::fs::symlink(target, self.path(rel)).unwrap();
    }
    fn bytes(&self) -> &[u8] {
        self.root.as_os_str().as_bytes()
    }
}

impl Drop for TempTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The tree most cases walk:
///
/// ```text
/// d/ d/f d/sub/ d/sub/g   f
/// rel -> d/sub         abs -> ROOT/d        up -> ../ROOTNAME/d/sub
/// dots -> d/sub/..     dangling -> nowhere  dangling_abs -> ROOT/nowhere/x
/// tofile -> d/f        slash -> d/sub/      chain1 -> chain2 -> rel
/// loop1 <-> loop2      self -> self         deep -> rel/../sub/./g
/// ```
/// plus `c0 -> c1 -> ... -> c40 -> f`: `c1` is 40 links from `f`, `c0` 41.
fn build(t: &TempTree) {
    t.dir("d/sub");
    t.file("d/f");
    t.file("d/sub/g");
    t.file("f");
    let root = t.root.to_str().unwrap();
    let name = t.root.file_name().unwrap().to_str().unwrap();
    t.link("rel", "d/sub");
    t.link("abs", &format!("{root}/d"));
    t.link("up", &format!("../{name}/d/sub"));
    t.link("dots", "d/sub/..");
    t.link("dangling", "nowhere");
    t.link("dangling_abs", &format!("{root}/nowhere/x"));
    t.link("tofile", "d/f");
    t.link("slash", "d/sub/");
    t.link("chain1", "chain2");
    t.link("chain2", "rel");
    t.link("loop1", "loop2");
    t.link("loop2", "loop1");
    t.link("self", "self");
    t.link("deep", "rel/../sub/./g");
    for i in 0..=MAX_LINKS {
        let target = if i == MAX_LINKS { "f".to_string() } else { format!("c{}", i + 1) };
        t.link(&format!("c{i}"), &target);
    }
}

const MAX_LINKS: u32 = 40;

/// Paths relative to the tree's root, each resolved relative and absolute, followed and
/// not followed.
fn cases() -> Vec<String> {
    let mut v: Vec<String> = [
        ".",
        "./",
        "d",
        "d/",
        "d/.",
        "d//sub///g",
        "d/f",
        "d/f/",
        "d/f/.",
        "d/f/x",
        "d/f/..",
        "d/sub/..",
        "d/sub/../f",
        "d/sub/../../f",
        "d/../d/sub/g",
        "..",
        "../",
        "f",
        "missing",
        "missing/",
        "missing/x",
        "missing/../f",
        "rel",
        "rel/",
        "rel/.",
        "rel/g",
        "rel/..",
        "rel/../f",
        "rel/../..",
        "abs",
        "abs/",
        "abs/sub/g",
        "abs/..",
        "up",
        "up/g",
        "up/..",
        "dots",
        "dots/f",
        "dots/..",
        "dangling",
        "dangling/",
        "dangling/x",
        "dangling_abs",
        "dangling_abs/..",
        "tofile",
        "tofile/",
        "tofile/x",
        "slash",
        "slash/g",
        "chain1",
        "chain1/",
        "chain1/g",
        "loop1",
        "loop1/",
        "loop1/x",
        "self",
        "self/",
        "deep",
        "deep/",
        "c0",
        "c0/",
        "c1",
        "c1/",
        "c20",
        "d/sub/../../c1",
        "rel/../c1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Past PATH_MAX.
    v.push(format!("d/{}", "./".repeat(2100)));
    v
}

/// What a path names: its device and inode, or the errno of looking it up.
type Object = Result<(u64, u64), i32>;

/// The kernel's own resolution of `path` relative to `start` (fstatat).
fn kernel(start: &Path, path: &[u8], follow: bool) -> Object {
    let start = CString::new(start.as_os_str().as_bytes()).unwrap();
    let path = CString::new(path).unwrap();
    // SAFETY: a NUL-terminated path, O_PATH|O_DIRECTORY, no other effect.
    let dirfd = unsafe { libc::open(start.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    assert!(dirfd >= 0, "open the start directory");
    let flags = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
    // SAFETY: an fstatat into a zeroed struct owned here; dirfd is ours and closed below.
    let (rc, st, err) = unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        let rc = libc::fstatat(dirfd, path.as_ptr(), &mut st, flags);
        let err = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        libc::close(dirfd);
        (rc, st, err)
    };
    if rc == 0 {
        Ok((st.st_dev, st.st_ino))
    } else {
        Err(err)
    }
}

/// What the resolver's answer names, as the call's host path would: the virtual path
/// (which is the host path without mounts), with a '/' when it must be a directory, not
/// followed (a walk that follows the last link has followed it already).
fn named_by(r: &Resolved) -> Object {
    let mut p = r.virt.clone();
    if r.trailing_slash && p != b"/" {
        p.push(b'/');
    }
    kernel(Path::new("/"), &p, false)
}

/// The resolver's answer reduced to what cached and uncached walks must agree on.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    virt: String,
    trailing_slash: bool,
    links: u32,
    crossed_mount: bool,
    dir_of_last: Option<(String, u32)>,
}

fn answer(r: &Result<Resolved, i32>) -> Result<Answer, i32> {
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    r.as_ref().map_err(|e| *e).map(|r| Answer {
        virt: s(&r.virt),
        trailing_slash: r.trailing_slash,
        links: r.links,
        crossed_mount: r.crossed_mount,
        dir_of_last: r.dir_of_last.as_ref().map(|(d, n)| (s(d), *n)),
    })
}

fn resolver(mounts: &MountTable) -> Resolver<'_> {
    let pid = std::process::id() as i32;
    Resolver { mounts, tgid: pid, tid: pid, view: &crate::path::FsView::NONE }
}

/// The directory part and the last name of an absolute path, as dispatch/paths.rs splits
/// it for `NodeCache::dir` (none for a name that is empty, "." or "..").
fn split_dir(raw: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = raw.iter().rposition(|&b| b == b'/')?;
    let (dir, name) = (&raw[..i], &raw[i + 1..]);
    let plain = !name.is_empty() && name != b"." && name != b"..";
    (i > 0 && raw[0] == b'/' && plain).then_some((dir, name))
}

/// Resolve absolute path `raw` as `translate` in dispatch/paths.rs does: through a known
/// directory when `NodeCache::dir` has its directory part, else by a whole walk, noting
/// the directory and the pass for the next time. Returns the answer and whether the path
/// was already known to pass.
fn cached_resolve(mounts: &MountTable, raw: &[u8], follow: bool) -> (Result<Resolved, i32>, bool) {
    let cache = &mounts.nodecache;
    let passed = cache.passes(raw, follow);
    let generation = cache.generation();
    let split = split_dir(raw);
    let known = split.and_then(|(dir, name)| Some((name, cache.dir(dir)?)));
    let r = match &known {
        Some((name, (canonical, links))) => resolver(mounts).resolve_in(canonical, name, follow, *links),
        None => resolver(mounts).resolve(b"/", raw, follow),
    };
    if let (Some((dir, _)), None, Ok(Resolved { dir_of_last: Some((canonical, links)), .. })) =
        (split, &known, &r)
    {
        cache.note_dir(generation, dir, canonical, *links);
    }
    if let Ok(r) = &r {
        if !r.crossed_mount {
            cache.note_pass(generation, raw, follow);
        }
    }
    (r, passed)
}

fn abs(t: &TempTree, case: &str) -> Vec<u8> {
    let mut p = t.bytes().to_vec();
    p.push(b'/');
    p.extend_from_slice(case.as_bytes());
    p
}

/// (a): the resolver names what the kernel names, or fails as the kernel does.
fn check_against_kernel(mounts: &MountTable, start: &Path, path: &[u8], follow: bool) {
    let what = format!("{} (follow: {follow})", String::from_utf8_lossy(path));
    let expected = kernel(start, path, follow);
    let r = resolver(mounts).resolve(start.as_os_str().as_bytes(), path, follow);
    let got = match &r {
        Ok(r) => named_by(r),
        Err(e) => Err(*e),
    };
    assert_eq!(got, expected, "{what}: resolver vs kernel");
    if let (Ok(r), Ok(_)) = (&r, &expected) {
        assert!(!r.crossed_mount, "{what}: no mount to cross");
        // The virtual path is canonical: its directory part is what realpath says, and a
        // followed path is entirely.
        let virt = Path::new(std::ffi::OsStr::from_bytes(&r.virt));
        if follow {
            assert_eq!(std::fs::canonicalize(virt).unwrap(), virt, "{what}: canonical");
        } else if let Some(parent) = virt.parent() {
            assert_eq!(std::fs::canonicalize(parent).unwrap(), parent, "{what}: canonical directory");
        }
        // Links counted are those the kernel would count: never past the limit.
        assert!(r.links <= MAX_LINKS, "{what}: {} links", r.links);
    }
}

#[test]
fn resolution_matches_the_kernel() {
    let t = TempTree::new("kernel");
    build(&t);
    let mounts = MountTable::default();
    let subdir = t.path("d/sub");
    for case in cases() {
        for follow in [true, false] {
            // Relative to the tree's root, relative to a directory inside it (so `..` and
            // the cases' names mean something else), and absolute.
            check_against_kernel(&mounts, &t.root, case.as_bytes(), follow);
            check_against_kernel(&mounts, &subdir, case.as_bytes(), follow);
            check_against_kernel(&mounts, Path::new("/"), &abs(&t, &case), follow);
        }
    }
}

#[test]
fn links_are_counted_up_to_forty() {
    let t = TempTree::new("eloop");
    build(&t);
    let mounts = MountTable::default();
    let r = resolver(&mounts);
    assert_eq!(r.resolve(t.bytes(), b"c1", true).map(|r| r.links).ok(), Some(MAX_LINKS));
    assert_eq!(r.resolve(t.bytes(), b"c0", true).err(), Some(libc::ELOOP));
    assert_eq!(r.resolve(t.bytes(), b"c0", false).map(|r| r.links).ok(), Some(0));
    assert_eq!(r.resolve(t.bytes(), b"loop1", true).err(), Some(libc::ELOOP));
    // Links followed before a known directory count towards the limit (resolve_in).
    assert_eq!(r.resolve_in(t.bytes(), b"c20", true, 19).map(|r| r.links).ok(), Some(MAX_LINKS));
    assert_eq!(r.resolve_in(t.bytes(), b"c20", true, 20).err(), Some(libc::ELOOP));
}

/// Every path (absolute) through the caches of `mounts`, against a walk with empty caches.
fn check_cached(mounts: &MountTable, paths: &[Vec<u8>], round: &str) {
    for raw in paths {
        for follow in [true, false] {
            let what = format!("{} (follow: {follow}, {round})", String::from_utf8_lossy(raw));
            let uncached = answer(&resolver(&MountTable::default()).resolve(b"/", raw, follow));
            let (r, passed) = cached_resolve(mounts, raw, follow);
            assert_eq!(answer(&r), uncached, "{what}: cached vs uncached");
            // Known to pass: the path stays out of every mount, which a walk confirms.
            if passed {
                assert_eq!(uncached.as_ref().map(|a| a.crossed_mount).ok(), Some(false), "{what}: passes");
            }
        }
    }
}

#[test]
fn cached_and_uncached_resolution_agree() {
    let t = TempTree::new("cache");
    build(&t);
    let mounts = MountTable::default();
    let paths: Vec<Vec<u8>> = cases().iter().map(|c| abs(&t, c)).collect();
    // The first round fills the caches, the second reads them.
    check_cached(&mounts, &paths, "first");
    check_cached(&mounts, &paths, "second");
    // The second round did use them: every successful path is known to pass, and the
    // directory of a plain name is known.
    let cache = &mounts.nodecache;
    assert!(cache.passes(&abs(&t, "rel/g"), true));
    assert_eq!(
        cache.dir(&abs(&t, "rel")).map(|(d, n)| (d.to_vec(), n)),
        Some((t.path("d/sub").as_os_str().as_bytes().to_vec(), 1))
    );
    cache.clear();
    assert!(!cache.passes(&abs(&t, "rel/g"), true));
    assert!(cache.dir(&abs(&t, "rel")).is_none());
    check_cached(&mounts, &paths, "after clear");
    check_cached(&mounts, &paths, "after clear, cached");
}

#[test]
fn a_changed_tree_is_seen_after_clear() {
    let t = TempTree::new("change");
    build(&t);
    let mounts = MountTable::default();
    let paths: Vec<Vec<u8>> = cases().iter().map(|c| abs(&t, c)).collect();
    check_cached(&mounts, &paths, "before the change");
    let before = |case: &str| answer(&resolver(&MountTable::default()).resolve(b"/", &abs(&t, case), true));
    let (rel_g, rel_dot, abs_sub) = (before("rel/g"), before("rel/."), before("abs/sub/g"));
    // Retarget a symlink and remove a directory behind the session's back.
    std::fs::remove_file(t.path("rel")).unwrap();
    t.link("rel", "d");
    std::fs::remove_file(t.path("d/sub/g")).unwrap();
    std::fs::remove_dir(t.path("d/sub")).unwrap();
    // Without a clear, a change made outside the session is not seen (docs/paths.md,
    // `NodeCache`): the caches still give the old answers, not some third one.
    for (case, old) in [("rel/g", &rel_g), ("rel/.", &rel_dot), ("abs/sub/g", &abs_sub)] {
        let (r, _) = cached_resolve(&mounts, &abs(&t, case), true);
        assert_eq!(&answer(&r), old, "{case}: stale as documented");
    }
    mounts.nodecache.clear();
    check_cached(&mounts, &paths, "after the change and clear");
    for case in cases() {
        for follow in [true, false] {
            check_against_kernel(&mounts, &t.root, case.as_bytes(), follow);
            let raw = abs(&t, &case);
            let (r, _) = cached_resolve(&mounts, &raw, follow);
            let got = match &r {
                Ok(r) => named_by(r),
                Err(e) => Err(*e),
            };
            assert_eq!(
                got,
                kernel(Path::new("/"), &raw, follow),
                "{case} (follow: {follow}): cached vs kernel"
            );
        }
    }
    // The new answers differ from the old ones: the change was one the caches could miss.
    assert_ne!(before("rel/g"), rel_g);
    assert_ne!(before("abs/sub/g"), abs_sub);
}

#[test]
fn a_walk_overlapping_a_clear_stores_nothing() {
    let t = TempTree::new("generation");
    build(&t);
    let mounts = MountTable::default();
    let cache = &mounts.nodecache;
    let (raw, dir) = (abs(&t, "rel/g"), abs(&t, "rel"));
    let canonical = t.path("d/sub");
    let canonical = canonical.as_os_str().as_bytes();
    // A walk that started before an invalidation (a worker thread's) must not store what
    // it found: the tree may have changed under it.
    let started = cache.generation();
    cache.clear();
    cache.note_pass(started, &raw, true);
    cache.note_dir(started, &dir, canonical, 1);
    assert!(!cache.passes(&raw, true));
    assert!(cache.dir(&dir).is_none());
    // forget_plain invalidates too.
    let started = cache.generation();
    cache.forget_plain(&abs(&t, "f"));
    cache.note_pass(started, &raw, true);
    assert!(!cache.passes(&raw, true));
    // A walk that started after it does store, under the follow rule it used.
    let started = cache.generation();
    cache.note_pass(started, &raw, true);
    cache.note_dir(started, &dir, canonical, 1);
    assert!(cache.passes(&raw, true));
    assert!(!cache.passes(&raw, false));
    assert_eq!(cache.dir(&dir).map(|(d, n)| (d.to_vec(), n)), Some((canonical.to_vec(), 1)));
}
