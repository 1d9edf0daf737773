//! Path resolution in the virtual namespace: a raw path from a tracee, its starting
//! directory (cwd or dirfd, already virtual) and the follow rule become a canonical
//! virtual path; symlinks are read through the mounts they lie in, `..` is taken after
//! symlinks, ELOOP after 40 links, ENAMETOOLONG past PATH_MAX.
//!
//! Only what the kernel cannot see is decided here. When a prefix does not exist, the
//! walk stops and the rest is handed to the kernel literally, so it produces the exact
//! errno (ENOENT, ENOTDIR, EACCES) itself.
#![forbid(unsafe_code)]
use crate::path::mounts::{subpath, Mount, MountTable};
use crate::path::FsView;
use crate::tracee::memory::PATH_MAX;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

const MAX_LINKS: u32 = 40;

/// A resolved path.
pub struct Resolved {
    /// Canonical absolute virtual path (the unresolved rest appended as is).
    pub virt: Vec<u8>,
    /// The mount it lies in, if any.
    pub mount: Option<Arc<Mount>>,
    /// A mount was met on the way (the kernel's own walk would differ from ours).
    pub crossed_mount: bool,
    /// What the path names must be a directory (the host path gets a trailing '/'): the
    /// original path, or the text of a symlink followed at its end, ended in '/' or "/.".
    pub trailing_slash: bool,
    /// The canonical directory the original path's last component was looked up in, when
    /// the walk reached it through directories only and outside every mount, and the
    /// symlinks followed to get there (see `NodeCache::dir`).
    pub dir_of_last: Option<(Vec<u8>, u32)>,
    /// Symlinks followed on the way (openat2's RESOLVE_NO_SYMLINKS).
    pub links: u32,
    /// For a relative path starting in a plain-subtree mount: the walk stayed inside that
    /// mount (no `..` above its root, no absolute symlink, no other mount entered), so
    /// the kernel's own walk from the real start directory finds the same object.
    pub stayed_in_start_mount: bool,
    /// For a relative path: the walk never left the start directory (no `..` above it, no
    /// absolute symlink): what openat2's RESOLVE_BENEATH asks.
    pub stayed_beneath_start: bool,
    /// The walk depended on the caller's root (`FsView::root`, not `/`): it started there
    /// (an absolute path), restarted there (an absolute symlink) or stopped a `..` there.
    /// The kernel, which does not know that root, would walk elsewhere.
    pub met_root: bool,
}

/// What lstat of a virtual path found.
enum Node {
    Missing,
    Dir,
    Symlink(Vec<u8>),
    Other,
}

/// What a walk found at a virtual path, remembered so the next walk need not lstat it:
/// a directory, a symlink and its target, another file, or nothing. Forgotten when the
/// session mounts, unmounts, or changes the tree (see docs/paths.md for what each change
/// forgets). A change made outside the session is not seen; it matters only if it adds,
/// removes or retargets a symlink on the way to a mount (the kernel still resolves the
/// path itself).
///
/// Every invalidation bumps a generation first; a walk stores what it found only if no
/// invalidation happened since it started (a walk on a worker thread may overlap one).
pub struct NodeCache {
    nodes: parking_lot::RwLock<Table<Vec<u8>, Cached>>,
    walks: parking_lot::RwLock<Walks>,
    generation: std::sync::atomic::AtomicU64,
}

/// The results of whole walks.
struct Walks {
    /// Absolute paths, as tracees wrote them, whose resolution stays out of every mount
    /// and out of /proc (the kernel may see them unchanged): one lookup instead of a walk.
    /// Indexed by the follow rule of the last component.
    passes: [Table<Box<[u8]>, ()>; 2],
    /// Directory parts of absolute paths, as tracees wrote them, and the canonical
    /// directory outside every mount they lead to, with the symlinks followed on the way:
    /// a new name in a known directory is looked up with a one-component walk.
    dirs: Table<Box<[u8]>, KnownDir>,
}

/// A canonical directory and the number of symlinks followed to reach it.
type KnownDir = (Arc<[u8]>, u32);

/// A map with a budget: emptied when it holds too many entries or bytes (keys and
/// values are paths of up to 4 KiB chosen by tracees).
struct Table<K, V> {
    map: rustc_hash::FxHashMap<K, V>,
    bytes: usize,
}

const TABLE_MAX_ENTRIES: usize = 1 << 16;
const TABLE_MAX_BYTES: usize = 16 << 20;

impl<K: std::hash::Hash + Eq, V> Table<K, V> {
    fn with_capacity(n: usize) -> Self {
        Table { map: rustc_hash::FxHashMap::with_capacity_and_hasher(n, Default::default()), bytes: 0 }
    }
    fn insert(&mut self, k: K, v: V, bytes: usize) {
        if self.map.len() >= TABLE_MAX_ENTRIES || self.bytes + bytes > TABLE_MAX_BYTES {
            self.clear();
        }
        self.bytes += bytes;
        self.map.insert(k, v);
    }
    fn clear(&mut self) {
        self.map.clear();
        self.bytes = 0;
    }
}

#[derive(Clone, PartialEq, Eq)]
enum Cached {
    Dir,
    Symlink(Arc<[u8]>),
    Other,
    Missing,
}

impl Default for NodeCache {
    /// Sized for a compiler run's worth of paths, so the first thousands of walks do not
    /// pay for growing the tables.
    fn default() -> NodeCache {
        NodeCache {
            nodes: parking_lot::RwLock::new(Table::with_capacity(4096)),
            walks: parking_lot::RwLock::new(Walks {
                passes: [Table::with_capacity(2048), Table::with_capacity(2048)],
                dirs: Table::with_capacity(1024),
            }),
            generation: Default::default(),
        }
    }
}

impl NodeCache {
    /// The generation a walk starting now stores its findings under.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }
    fn current(&self, generation: u64) -> bool {
        self.generation() == generation
    }
    fn bump(&self) {
        self.generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }
    fn get(&self, p: &[u8]) -> Option<Cached> {
        self.nodes.read().map.get(p).cloned()
    }
    fn insert(&self, generation: u64, p: &[u8], c: Cached) {
        let mut d = self.nodes.write();
        if self.current(generation) {
            let bytes = p.len() + if let Cached::Symlink(t) = &c { t.len() } else { 0 };
            d.insert(p.to_vec(), c, bytes);
        }
    }
    /// Forget everything: the session mounted or unmounted, or changed the tree in a way
    /// that may change where walks lead (a symlink, a directory, a rename, a link...).
    /// Nodes are kept by virtual path and a file in a mount has two names (TARGET/x and
    /// SOURCE/x), so a change through one name must not leave the other remembered.
    pub fn clear(&self) {
        self.bump();
        self.nodes.write().clear();
        let mut w = self.walks.write();
        w.passes[0].clear();
        w.passes[1].clear();
        w.dirs.clear();
    }
    /// A regular file was created at `p`, where there was nothing, or a name known to be
    /// a plain file was removed there: no walk through `p` changes whether it meets a
    /// mount (past a plain file the kernel says ENOTDIR either way), so only the node is
    /// forgotten.
    pub fn forget_plain(&self, p: &[u8]) {
        self.bump();
        self.nodes.write().map.remove(p);
    }
    /// A name is removed at `p`: as `forget_plain` if it is known to be a plain file,
    /// otherwise (a symlink, or not known) as any change; true then.
    pub fn forget_removed(&self, p: &[u8]) -> bool {
        if self.get(p) == Some(Cached::Other) {
            self.forget_plain(p);
            false
        } else {
            self.clear();
            true
        }
    }
    /// Absolute path `raw` is known to pass unchanged.
    pub fn passes(&self, raw: &[u8], follow: bool) -> bool {
        self.walks.read().passes[follow as usize].map.contains_key(raw)
    }
    pub fn note_pass(&self, generation: u64, raw: &[u8], follow: bool) {
        let mut w = self.walks.write();
        if self.current(generation) {
            w.passes[follow as usize].insert(raw.into(), (), raw.len());
        }
    }
    /// The canonical directory absolute directory text `raw_dir` leads to, if known, and
    /// the number of symlinks followed to get there.
    pub fn dir(&self, raw_dir: &[u8]) -> Option<KnownDir> {
        self.walks.read().dirs.map.get(raw_dir).cloned()
    }
    pub fn note_dir(&self, generation: u64, raw_dir: &[u8], canonical: &[u8], links: u32) {
        let mut w = self.walks.write();
        if self.current(generation) {
            w.dirs.insert(raw_dir.into(), (Arc::from(canonical), links), raw_dir.len() + canonical.len());
        }
    }
}

/// A path that names a directory whatever its last name is: one ending in '/' or in "."
/// (`f/.` is ENOTDIR for a file, and follows a symlink `l/.`), as the kernel sees it.
fn names_dir(p: &[u8]) -> bool {
    p.ends_with(b"/") || p == b"." || p.ends_with(b"/.")
}

pub struct Resolver<'a> {
    pub mounts: &'a MountTable,
    /// The caller, for /proc/self and /proc/thread-self.
    pub tgid: i32,
    pub tid: i32,
    /// The caller's root and cwd (`FsView::NONE` for the session's).
    pub view: &'a FsView,
}

fn host_of(mounts: &MountTable, virt: &[u8], access: u32) -> Result<(Vec<u8>, bool), i32> {
    match mounts.find(virt) {
        Some(m) => {
            let sub = subpath(virt, m.target.as_bytes());
            Ok((m.redirect(sub, access)?, true))
        }
        None => match mounts.implicit_dir(virt) {
            Some(h) => {
                // A virtual-only directory: creating it again gives the kernel's EEXIST,
                // removing or renaming it EBUSY (as for a mount point), writing in it EROFS.
                let exact = mounts.implicit.iter().any(|(v, _)| v.as_slice() == virt);
                match (exact, access & vurs_abi::VURS_ACCESS_WRITE != 0) {
                    (_, false) => Ok((h, true)),
                    (true, true) if access & vurs_abi::VURS_ACCESS_CREATE != 0 => Ok((h, true)),
                    (true, true) => Err(libc::EBUSY),
                    (false, true) => Err(libc::EROFS),
                }
            }
            None => Ok((virt.to_vec(), false)),
        },
    }
}

/// lstat inside a served mount: asked of its module.
fn served_node(m: &Mount, virt: &[u8]) -> Node {
    let sub = subpath(virt, m.target.as_bytes());
    match m.module.stat(m.mnt, sub) {
        Ok(st) => match st.mode & libc::S_IFMT {
            libc::S_IFDIR => Node::Dir,
            libc::S_IFLNK => match m.module.readlink(m.mnt, sub) {
                Ok(t) => Node::Symlink(t),
                Err(_) => Node::Other,
            },
            _ => Node::Other,
        },
        Err(_) => Node::Missing,
    }
}

impl<'a> Resolver<'a> {
    /// Host path for a canonical virtual path (its mount's redirect, or itself).
    pub fn host_path(&self, virt: &[u8], access: u32) -> Result<Vec<u8>, i32> {
        host_of(self.mounts, virt, access).map(|(p, _)| p)
    }

    fn in_mount(&self, virt: &[u8]) -> bool {
        self.mounts.find(virt).is_some() || self.mounts.implicit_dir(virt).is_some()
    }

    fn lstat(&self, virt: &[u8], crossed: &mut bool, generation: u64) -> Node {
        // /proc/self is the caller's, not ours; magic links are the kernel's to follow.
        if virt == b"/proc/self" {
            return Node::Symlink(self.tgid.to_string().into_bytes());
        }
        if virt == b"/proc/thread-self" {
            return Node::Symlink(format!("{}/task/{}", self.tgid, self.tid).into_bytes());
        }
        if crate::path::procfs::is_magic_link(virt) {
            return self.own_magic_link(virt).unwrap_or(Node::Missing);
        }
        if let Some(c) = self.mounts.nodecache.get(virt) {
            *crossed |= self.in_mount(virt);
            return match c {
                Cached::Dir => Node::Dir,
                Cached::Symlink(t) => Node::Symlink(t.to_vec()),
                Cached::Other => Node::Other,
                Cached::Missing => Node::Missing,
            };
        }
        if let Some(m) = self.mounts.find(virt).filter(|m| m.module.serves_paths()) {
            *crossed = true;
            return served_node(m, virt);
        }
        let Ok((host, in_mount)) = host_of(self.mounts, virt, vurs_abi::VURS_ACCESS_READ) else {
            return Node::Missing;
        };
        *crossed |= in_mount;
        // The host's /proc seen under another name (bound into a root the caller chroot'ed
        // to): /proc/self is still the caller's, its magic links still the kernel's.
        if in_mount && host.starts_with(b"/proc/") {
            if let Some(node) = self.proc_node(&host) {
                return node;
            }
        }
        let path = std::path::Path::new(std::ffi::OsStr::from_bytes(&host));
        let Ok(md) = std::fs::symlink_metadata(path) else {
            // A mount target need not exist on the host: it is a directory here.
            if self.is_mount_ancestor(virt) {
                return Node::Dir;
            }
            self.mounts.nodecache.insert(generation, virt, Cached::Missing);
            return Node::Missing;
        };
        match md.mode() & libc::S_IFMT {
            libc::S_IFDIR => {
                self.mounts.nodecache.insert(generation, virt, Cached::Dir);
                Node::Dir
            }
            libc::S_IFLNK => {
                let Ok(target) = std::fs::read_link(path) else {
                    return Node::Missing;
                };
                let buf = target.into_os_string().into_vec();
                self.mounts.nodecache.insert(generation, virt, Cached::Symlink(Arc::from(buf.as_slice())));
                Node::Symlink(buf)
            }
            _ => {
                self.mounts.nodecache.insert(generation, virt, Cached::Other);
                Node::Other
            }
        }
    }

    /// What a host path under /proc is for the walk, when it is not a plain file: None
    /// when it is.
    fn proc_node(&self, host: &[u8]) -> Option<Node> {
        if host == b"/proc/self" {
            return Some(Node::Symlink(self.tgid.to_string().into_bytes()));
        }
        if host == b"/proc/thread-self" {
            return Some(Node::Symlink(format!("{}/task/{}", self.tgid, self.tid).into_bytes()));
        }
        if crate::path::procfs::is_magic_link(host) {
            return Some(self.own_magic_link(host).unwrap_or(Node::Missing));
        }
        None
    }

    /// The caller's own /proc/PID/root and /proc/PID/cwd (`p`, a host path) when its view
    /// differs from the kernel's: a symlink to its root, to its virtual cwd. Other magic
    /// links are the kernel's to follow (None).
    fn own_magic_link(&self, p: &[u8]) -> Option<Node> {
        if self.view.is_none() {
            return None;
        }
        let s = std::str::from_utf8(p).ok()?;
        let own = |name: &str| {
            s == format!("/proc/{}/{name}", self.tgid)
                || s == format!("/proc/{}/task/{}/{name}", self.tgid, self.tid)
        };
        if own("root") && self.view.root.is_some() {
            return Some(Node::Symlink(b"/".to_vec()));
        }
        if own("cwd") {
            let host = crate::path::readlink_host(&format!("/proc/{}/cwd", self.tid))?;
            let cwd = self.view.parked_cwd(&host)?;
            return Some(Node::Symlink(self.view.shown(cwd, false)));
        }
        None
    }

    /// A mount target lies at or below `virt`.
    fn is_mount_ancestor(&self, virt: &[u8]) -> bool {
        self.mounts.mounts.iter().any(|m| crate::path::mounts::under(m.target.as_bytes(), virt))
    }

    /// Resolve `path` relative to the virtual directory `start`.
    pub fn resolve(&self, start: &[u8], path: &[u8], follow_last: bool) -> Result<Resolved, i32> {
        self.walk(start, path, follow_last, 0)
    }

    /// Resolve the single name `name` in the canonical directory `dir`, reached by a walk
    /// that followed `links` symlinks (they count towards ELOOP).
    pub fn resolve_in(
        &self,
        dir: &[u8],
        name: &[u8],
        follow_last: bool,
        links: u32,
    ) -> Result<Resolved, i32> {
        self.walk(dir, name, follow_last, links)
    }

    fn walk(&self, start: &[u8], path: &[u8], follow_last: bool, links: u32) -> Result<Resolved, i32> {
        if path.is_empty() {
            return Err(libc::ENOENT);
        }
        if path.len() >= PATH_MAX {
            return Err(libc::ENAMETOOLONG);
        }
        let mut trailing_slash = names_dir(path);
        let mut crossed = false;
        let root = self.view.root();
        let mut met_root = false;
        let mut links = links;
        let generation = self.mounts.nodecache.generation();
        // Where the last component of `path` itself starts (it is the one ending there).
        let last_end = path.len() - path.iter().rev().take_while(|&&b| b == b'/').count();
        let mut cur_is_dir = true;
        let mut dir_of_last = None;
        // Components still to walk, last first, as (text, start, end) ranges: text 0 is the
        // path, further texts are symlink targets met on the way (no copy per component).
        let mut texts: Vec<Vec<u8>> = vec![path.to_vec()];
        let mut todo: Vec<(usize, usize, usize)> = Vec::with_capacity(16);
        // `cur` is canonical so far.
        let mut cur: Vec<u8> = Vec::with_capacity(256);
        fn push_components(todo: &mut Vec<(usize, usize, usize)>, t: usize, p: &[u8]) {
            let at = todo.len();
            let mut start = 0;
            for end in p.iter().enumerate().filter(|(_, &b)| b == b'/').map(|(i, _)| i).chain([p.len()]) {
                let c = &p[start..end];
                if !c.is_empty() && c != b"." {
                    todo.push((t, start, end));
                }
                start = end + 1;
            }
            todo[at..].reverse();
        }
        push_components(&mut todo, 0, path);
        // A relative walk is watched for leaving its start directory and its start mount.
        let mut watch = None;
        if path[0] == b'/' && !root.is_empty() {
            cur.extend_from_slice(root);
            met_root = true;
        } else if path[0] != b'/' {
            // The start directory comes from the kernel (/proc/<tid>/cwd or fd/N, translated
            // back): already canonical, so its components need no walk. Starting inside a
            // mount means the kernel's own walk would not match ours.
            cur.extend_from_slice(start.strip_suffix(b"/").unwrap_or(start));
            crossed = self.in_mount(&cur);
            let start_mount = self.mounts.find(&cur).filter(|m| m.is_subtree());
            watch = Some(Watch {
                start_len: cur.len(),
                mount: start_mount.cloned(),
                beneath: true,
                in_mount: true,
            });
        }
        while let Some((t, a, b)) = todo.pop() {
            let comp = &texts[t][a..b];
            if t == 0 && b == last_end && cur_is_dir && !crossed {
                dir_of_last = Some((if cur.is_empty() { b"/".to_vec() } else { cur.clone() }, links));
            }
            if comp == b".." {
                if !root.is_empty() && cur == root {
                    // `..` of the root is the root.
                    met_root = true;
                } else if let Some(i) = cur.iter().rposition(|&b| b == b'/') {
                    cur.truncate(i);
                }
                if let Some(w) = &mut watch {
                    w.note(self.mounts, &cur);
                }
                continue;
            }
            let prev_len = cur.len();
            cur.push(b'/');
            cur.extend_from_slice(comp);
            if let Some(w) = &mut watch {
                w.note(self.mounts, &cur);
            }
            let is_last = todo.is_empty();
            if is_last && !follow_last && !trailing_slash {
                // Don't follow, but still note whether this lands in a mount.
                crossed |= self.in_mount(&cur);
                break;
            }
            let node = self.lstat(&cur, &mut crossed, generation);
            cur_is_dir = matches!(node, Node::Dir);
            match node {
                Node::Symlink(target) => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(libc::ELOOP);
                    }
                    if target.first() == Some(&b'/') {
                        cur.clear();
                        cur.extend_from_slice(root);
                        met_root |= !root.is_empty();
                        if let Some(w) = &mut watch {
                            w.beneath = false;
                            w.in_mount = false;
                        }
                    } else {
                        cur.truncate(prev_len);
                    }
                    // `l -> f/` names a directory, as `l/` does.
                    trailing_slash |= todo.is_empty() && names_dir(&target);
                    push_components(&mut todo, texts.len(), &target);
                    texts.push(target);
                }
                // Nothing there, or a file with more components after it: hand the rest
                // to the kernel as it is (it says ENOENT or ENOTDIR; `..` does not undo
                // a file).
                Node::Missing | Node::Other => {
                    while let Some((t, a, b)) = todo.pop() {
                        cur.push(b'/');
                        cur.extend_from_slice(&texts[t][a..b]);
                    }
                    break;
                }
                Node::Dir => {}
            }
        }
        if cur.is_empty() {
            cur.push(b'/');
        }
        let mount = self.mounts.find(&cur).cloned();
        crossed |= mount.is_some();
        let (stayed_in_start_mount, stayed_beneath_start) = match &watch {
            Some(w) => (w.mount.is_some() && w.in_mount, w.beneath),
            None => (false, false),
        };
        Ok(Resolved {
            virt: cur,
            mount,
            crossed_mount: crossed,
            trailing_slash,
            dir_of_last,
            links,
            stayed_in_start_mount,
            stayed_beneath_start,
            met_root,
        })
    }
}

/// What a relative walk did relative to where it started (see `Resolved`).
struct Watch {
    /// Length of the start directory's path (`cur` is under it while it extends it).
    start_len: usize,
    /// The plain-subtree mount the walk started in.
    mount: Option<Arc<Mount>>,
    beneath: bool,
    in_mount: bool,
}

impl Watch {
    /// `cur` is the walk's position after a step.
    fn note(&mut self, mounts: &MountTable, cur: &[u8]) {
        if cur.len() < self.start_len {
            self.beneath = false;
        }
        if let (Some(m), true) = (&self.mount, self.in_mount) {
            let here = if cur.is_empty() { &b"/"[..] } else { cur };
            self.in_mount = mounts.find(here).is_some_and(|x| Arc::ptr_eq(x, m));
        }
    }
}
