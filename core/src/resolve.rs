//! Path resolution in the virtual namespace: a raw path from a tracee, its starting
//! directory (cwd or dirfd, already virtual) and the follow rule become a canonical
//! virtual path; symlinks are read through the mounts they lie in, `..` is taken after
//! symlinks, ELOOP after 40 links, ENAMETOOLONG past PATH_MAX.
//!
//! Only what the kernel cannot see is decided here. When a prefix does not exist, the
//! walk stops and the rest is handed to the kernel literally, so it produces the exact
//! errno (ENOENT, ENOTDIR, EACCES) itself.
use crate::memory::PATH_MAX;
use crate::mounts::{subpath, Mount, MountTable};
use std::ffi::CString;
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
    /// The original path ended in '/'.
    pub trailing_slash: bool,
    /// The canonical directory the original path's last component was looked up in, when
    /// the walk reached it through directories only and outside every mount (see
    /// `NodeCache::dir`).
    pub dir_of_last: Option<Vec<u8>>,
}

/// What lstat of a virtual path found.
enum Node {
    Missing,
    Dir,
    Symlink(Vec<u8>),
    Other,
}

/// What a walk found at a virtual path, remembered so the next walk need not lstat it:
/// a directory, a symlink and its target, another file, or nothing. Cleared when the session mounts,
/// unmounts, creates, renames or removes something. A change made outside the session is
/// not seen; it matters only if it adds, removes or retargets a symlink on the way to a mount
/// (the kernel still resolves the path itself): see docs/paths.md.
/// Paths as tracees wrote them.
type PathSet = rustc_hash::FxHashSet<Box<[u8]>>;
/// Directory parts as tracees wrote them -> canonical directories.
type DirMap = rustc_hash::FxHashMap<Box<[u8]>, Arc<[u8]>>;

pub struct NodeCache {
    nodes: parking_lot::RwLock<rustc_hash::FxHashMap<Vec<u8>, Cached>>,
    /// Absolute paths, as tracees wrote them, whose resolution stays out of every mount
    /// and out of /proc (the kernel may see them unchanged): one lookup instead of a walk.
    /// Indexed by the follow rule of the last component.
    passes: parking_lot::RwLock<[PathSet; 2]>,
    /// Directory parts of absolute paths, as tracees wrote them, and the canonical
    /// directory outside every mount they lead to: a new name in a known directory is
    /// looked up with a one-component walk.
    dirs: parking_lot::RwLock<DirMap>,
}

#[derive(Clone, PartialEq, Eq)]
enum Cached {
    Dir,
    Symlink(Arc<[u8]>),
    Other,
    Missing,
}

const NODE_CACHE_MAX: usize = 1 << 16;

impl Default for NodeCache {
    /// Sized for a compiler run's worth of paths, so the first thousands of walks do not
    /// pay for growing the tables.
    fn default() -> NodeCache {
        use rustc_hash::FxHashMap;
        let set = || PathSet::with_capacity_and_hasher(2048, Default::default());
        NodeCache {
            nodes: parking_lot::RwLock::new(FxHashMap::with_capacity_and_hasher(4096, Default::default())),
            passes: parking_lot::RwLock::new([set(), set()]),
            dirs: parking_lot::RwLock::new(DirMap::with_capacity_and_hasher(1024, Default::default())),
        }
    }
}

impl NodeCache {
    fn get(&self, p: &[u8]) -> Option<Cached> {
        self.nodes.read().get(p).cloned()
    }
    fn insert(&self, p: &[u8], c: Cached) {
        let mut d = self.nodes.write();
        if d.len() >= NODE_CACHE_MAX {
            d.clear();
        }
        d.insert(p.to_vec(), c);
    }
    pub fn clear(&self) {
        self.nodes.write().clear();
        self.forget_walks();
    }
    /// Forget the results of whole walks (passes and directories).
    fn forget_walks(&self) {
        let mut p = self.passes.write();
        p[0].clear();
        p[1].clear();
        self.dirs.write().clear();
    }
    /// Something was created or removed at `p`: whatever resolution went through it may
    /// change.
    pub fn forget(&self, p: &[u8]) {
        self.nodes.write().remove(p);
        self.forget_walks();
    }
    /// A regular file was created at `p`, where there was nothing: walks through `p` still
    /// end where they did (in a mount or not), so only the node itself is forgotten.
    pub fn forget_created(&self, p: &[u8]) {
        self.nodes.write().remove(p);
    }
    /// A name is removed at `p`: if it was known to be a plain file, as for a creation;
    /// otherwise (a symlink, or not known) as for any change.
    pub fn forget_removed(&self, p: &[u8]) {
        if self.get(p) == Some(Cached::Other) {
            self.forget_created(p)
        } else {
            self.forget(p)
        }
    }
    /// Absolute path `raw` is known to pass unchanged.
    pub fn passes(&self, raw: &[u8], follow: bool) -> bool {
        self.passes.read()[follow as usize].contains(raw)
    }
    pub fn note_pass(&self, raw: &[u8], follow: bool) {
        let mut p = self.passes.write();
        let set = &mut p[follow as usize];
        if set.len() >= NODE_CACHE_MAX {
            set.clear();
        }
        set.insert(raw.into());
    }
    /// The canonical directory absolute directory text `raw_dir` leads to, if known.
    pub fn dir(&self, raw_dir: &[u8]) -> Option<Arc<[u8]>> {
        self.dirs.read().get(raw_dir).cloned()
    }
    pub fn note_dir(&self, raw_dir: &[u8], canonical: &[u8]) {
        let mut d = self.dirs.write();
        if d.len() >= NODE_CACHE_MAX {
            d.clear();
        }
        d.insert(raw_dir.into(), Arc::from(canonical));
    }
}

pub struct Resolver<'a> {
    pub mounts: &'a MountTable,
    /// The caller, for /proc/self and /proc/thread-self.
    pub tgid: i32,
    pub tid: i32,
}

fn host_of(mounts: &MountTable, virt: &[u8], access: u32) -> Result<(Vec<u8>, bool), i32> {
    match mounts.find(virt) {
        Some(m) => {
            let sub = subpath(virt, m.target.as_bytes());
            Ok((m.module.redirect(m.mnt, sub, access)?, true))
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

    fn lstat(&self, virt: &[u8], crossed: &mut bool) -> Node {
        // /proc/self is the caller's, not ours; magic links are the kernel's to follow.
        if virt == b"/proc/self" {
            return Node::Symlink(self.tgid.to_string().into_bytes());
        }
        if virt == b"/proc/thread-self" {
            return Node::Symlink(format!("{}/task/{}", self.tgid, self.tid).into_bytes());
        }
        if crate::procfs::is_magic_link(virt) {
            return Node::Missing;
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
        let Ok(c) = CString::new(host) else {
            return Node::Missing;
        };
        // SAFETY: plain lstat into a zeroed struct.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::lstat(c.as_ptr(), &mut st) } != 0 {
            // A mount target need not exist on the host: it is a directory here.
            if self.is_mount_ancestor(virt) {
                return Node::Dir;
            }
            self.mounts.nodecache.insert(virt, Cached::Missing);
            return Node::Missing;
        }
        match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => {
                self.mounts.nodecache.insert(virt, Cached::Dir);
                Node::Dir
            }
            libc::S_IFLNK => {
                let mut buf = vec![0u8; PATH_MAX];
                // SAFETY: buffer of buf.len() bytes.
                let n = unsafe { libc::readlink(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
                if n < 0 {
                    return Node::Missing;
                }
                buf.truncate(n as usize);
                self.mounts.nodecache.insert(virt, Cached::Symlink(Arc::from(buf.as_slice())));
                Node::Symlink(buf)
            }
            _ => {
                self.mounts.nodecache.insert(virt, Cached::Other);
                Node::Other
            }
        }
    }

    /// A mount target lies at or below `virt`.
    fn is_mount_ancestor(&self, virt: &[u8]) -> bool {
        self.mounts.mounts.iter().any(|m| crate::mounts::under(m.target.as_bytes(), virt))
    }

    /// Resolve `path` relative to the virtual directory `start`.
    pub fn resolve(&self, start: &[u8], path: &[u8], follow_last: bool) -> Result<Resolved, i32> {
        if path.is_empty() {
            return Err(libc::ENOENT);
        }
        if path.len() >= PATH_MAX {
            return Err(libc::ENAMETOOLONG);
        }
        let trailing_slash = path.ends_with(b"/");
        let mut crossed = false;
        let mut links = 0u32;
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
        if path[0] != b'/' {
            // The start directory comes from the kernel (/proc/<tid>/cwd or fd/N, translated
            // back): already canonical, so its components need no walk. Starting inside a
            // mount means the kernel's own walk would not match ours.
            cur.extend_from_slice(start.strip_suffix(b"/").unwrap_or(start));
            crossed = self.in_mount(&cur);
        }
        while let Some((t, a, b)) = todo.pop() {
            let comp = &texts[t][a..b];
            if t == 0 && b == last_end && cur_is_dir && !crossed {
                dir_of_last = Some(if cur.is_empty() { b"/".to_vec() } else { cur.clone() });
            }
            if comp == b".." {
                if let Some(i) = cur.iter().rposition(|&b| b == b'/') {
                    cur.truncate(i);
                }
                continue;
            }
            let prev_len = cur.len();
            cur.push(b'/');
            cur.extend_from_slice(comp);
            let is_last = todo.is_empty();
            if is_last && !follow_last && !trailing_slash {
                // Don't follow, but still note whether this lands in a mount.
                crossed |= self.in_mount(&cur);
                break;
            }
            let node = self.lstat(&cur, &mut crossed);
            cur_is_dir = matches!(node, Node::Dir);
            match node {
                Node::Symlink(target) => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(libc::ELOOP);
                    }
                    if target.first() == Some(&b'/') {
                        cur.clear();
                    } else {
                        cur.truncate(prev_len);
                    }
                    push_components(&mut todo, texts.len(), &target);
                    texts.push(target);
                }
                Node::Missing => {
                    // Hand the rest to the kernel as it is.
                    while let Some((t, a, b)) = todo.pop() {
                        cur.push(b'/');
                        cur.extend_from_slice(&texts[t][a..b]);
                    }
                    break;
                }
                Node::Dir | Node::Other => {}
            }
            if cur.len() >= PATH_MAX {
                return Err(libc::ENAMETOOLONG);
            }
        }
        if cur.is_empty() {
            cur.push(b'/');
        }
        let mount = self.mounts.find(&cur).cloned();
        crossed |= mount.is_some();
        Ok(Resolved { virt: cur, mount, crossed_mount: crossed, trailing_slash, dir_of_last })
    }
}
