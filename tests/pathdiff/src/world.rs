//! The two real trees built from a case, side by side in one temporary directory:
//!
//! - `V` (the host as vurs sees it): the case's tree in `V/r`, the source trees in
//!   `V/s0..s2`; the mounts are vurs mounts made later, over `V/r/...`.
//! - `M` (the virtual view made real): `M/s0..s2` are plain copies of the sources, and
//!   `M/r` holds, at each path, what vurs's documented semantics show there: the newest of
//!   the longest-prefix mounts' SOURCE content, else the host's, and an empty directory
//!   for a missing ancestor of a mount target (docs/paths.md).
//!
//! Objects are compared by identity: in V, the host object (device, inode); in M, the
//! object each copy was made from. `V` and `M` have names of the same length, so paths and
//! symlink texts are as long in both.
use crate::case::{Case, Entry, Kind, MountSpec, SourceTree, SOURCES};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use vurs::path::mounts::under;

/// What an answer designates.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Ident {
    /// A host object, by (device, inode).
    Obj(u64, u64),
    /// A directory that exists only virtually (missing ancestor of a mount target), by its
    /// virtual path (in V's naming).
    Implicit(Vec<u8>),
}

/// A mount that was kept: canonical virtual target and canonical host SOURCE.
#[derive(Debug, Clone)]
pub struct Kept {
    pub target: Vec<u8>,
    pub source: Vec<u8>,
}

pub struct Worlds {
    base: PathBuf,
    pub v: Vec<u8>,
    pub m: Vec<u8>,
    pub mounts: Vec<Kept>,
    /// M object (device, inode) -> what it stands for.
    m_ident: HashMap<(u64, u64), Ident>,
}

impl Drop for Worlds {
    fn drop(&mut self) {
        // $PATHDIFF_KEEP keeps the trees, to look at a failing case.
        if std::env::var_os("PATHDIFF_KEEP").is_some() {
            eprintln!("kept {}", self.base.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

fn p(b: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(b))
}

fn join(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = a.to_vec();
    if !b.is_empty() {
        out.push(b'/');
        out.extend_from_slice(b);
    }
    out
}

fn names_path(top: &[u8], names: &[crate::case::Name]) -> Vec<u8> {
    names.iter().fold(top.to_vec(), |acc, n| join(&acc, &n.bytes()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum View {
    Dir,
    File,
    Symlink,
    /// Missing on the host, but an ancestor of a mount target.
    Implicit,
    Missing,
}

fn lstat_kind(h: &[u8]) -> Option<std::fs::FileType> {
    std::fs::symlink_metadata(p(h)).ok().map(|m| m.file_type())
}

fn obj(h: &[u8]) -> Option<Ident> {
    std::fs::symlink_metadata(p(h)).ok().map(|m| Ident::Obj(m.dev(), m.ino()))
}

/// Where cases are built: $VURS_PATHDIFF_DIR, else /dev/shm (tmpfs: many times faster
/// than a journalled disk), else the temporary directory.
fn scratch_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("VURS_PATHDIFF_DIR") {
        return d.into();
    }
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.into()
    } else {
        std::env::temp_dir()
    }
}

static SERIAL: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Worlds {
    /// Build V (tree, sources), decide which mounts are kept, then build M.
    pub fn build(case: &Case) -> std::io::Result<Worlds> {
        let n = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let base = scratch_dir().join(format!("vurs-pathdiff-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base)?;
        let bytes = |s: &str| base.join(s).as_os_str().as_bytes().to_vec();
        let mut w =
            Worlds { v: bytes("V"), m: bytes("M"), base, mounts: Vec::new(), m_ident: HashMap::new() };
        std::fs::create_dir(p(&w.v))?;
        std::fs::create_dir(p(&join(&w.v, b"r")))?;
        for (i, src) in case.sources.iter().enumerate().take(SOURCES) {
            let top = join(&w.v, format!("s{i}").as_bytes());
            std::fs::create_dir(p(&top))?;
            w.make_entries(&top, src);
        }
        for i in case.sources.len()..SOURCES {
            std::fs::create_dir(p(&join(&w.v, format!("s{i}").as_bytes())))?;
        }
        w.make_entries(&join(&w.v, b"r"), &case.tree);
        for m in &case.mounts {
            if let Some(k) = w.keep(m) {
                w.mounts.push(k);
            }
        }
        w.materialize()?;
        Ok(w)
    }

    fn make_entries(&self, top: &[u8], entries: &[Entry]) {
        for e in entries {
            if e.at.is_empty() {
                continue;
            }
            let path = names_path(top, &e.at);
            // Parents must be (or become) directories, not symlinks to one (a tree is
            // made only inside its top); a taken name stays as it is.
            let mut parent = top.to_vec();
            let parents_ok = e.at[..e.at.len() - 1].iter().all(|n| {
                parent = join(&parent, &n.bytes());
                match lstat_kind(&parent) {
                    Some(t) => t.is_dir(),
                    None => std::fs::create_dir(p(&parent)).is_ok(),
                }
            });
            if !parents_ok || lstat_kind(&path).is_some() {
                continue;
            }
            let _ = match &e.kind {
                Kind::Dir => std::fs::create_dir(p(&path)),
                // Each file holds its own path: readable when a test fails.
                Kind::File => std::fs::write(p(&path), &path),
                Kind::Symlink(spec) => {
                    let mut text = crate::case::path_text(&self.v, spec, 1);
                    if text.is_empty() {
                        text = b".".to_vec();
                    }
                    std::os::unix::fs::symlink(p(&text), p(&path))
                }
            };
        }
    }

    /// The host path behind canonical virtual path `virt` in the model: the newest of the
    /// mounts whose target is the longest prefix, else the host.
    fn backing(&self, virt: &[u8]) -> Vec<u8> {
        let mut best: Option<&Kept> = None;
        for k in self.mounts.iter().rev() {
            if under(virt, &k.target) && best.is_none_or(|b| k.target.len() > b.target.len()) {
                best = Some(k);
            }
        }
        match best {
            Some(k) => join(&k.source, vurs::path::mounts::subpath(virt, &k.target)),
            None => virt.to_vec(),
        }
    }

    fn view(&self, virt: &[u8]) -> View {
        match lstat_kind(&self.backing(virt)) {
            Some(t) if t.is_dir() => View::Dir,
            Some(t) if t.is_symlink() => View::Symlink,
            Some(_) => View::File,
            None if self.mounts.iter().any(|k| under(&k.target, virt)) => View::Implicit,
            None => View::Missing,
        }
    }

    /// The mount as vurs would make it, if the kernel would make it too.
    fn keep(&self, m: &MountSpec) -> Option<Kept> {
        let tree = match m.tree {
            SourceTree::Source(i) => format!("s{}", i as usize % SOURCES),
            SourceTree::Root => "r".into(),
        };
        let source =
            std::fs::canonicalize(p(&names_path(&join(&self.v, tree.as_bytes()), &m.source))).ok()?;
        let source = source.as_os_str().as_bytes().to_vec();
        if !under(&source, &self.v) {
            return None;
        }
        let source_is_dir = lstat_kind(&source)?.is_dir();
        let root = join(&self.v, b"r");
        let target = names_path(&root, &m.target);
        // Every parent below the root is a directory (real or virtual-only) or missing.
        let mut at = root.clone();
        for n in &m.target[..m.target.len().saturating_sub(1)] {
            if !matches!(self.view(&at), View::Dir | View::Implicit | View::Missing) {
                return None;
            }
            at = join(&at, &n.bytes());
        }
        if !m.target.is_empty() && !matches!(self.view(&at), View::Dir | View::Implicit | View::Missing) {
            return None;
        }
        match (self.view(&target), source_is_dir) {
            (View::Missing | View::Implicit, _) | (View::Dir, true) | (View::File, false) => {}
            _ => return None,
        }
        Some(Kept { target, source })
    }

    fn record(&mut self, m_path: &[u8], ident: Ident) -> std::io::Result<()> {
        let md = std::fs::symlink_metadata(p(m_path))?;
        self.m_ident.insert((md.dev(), md.ino()), ident);
        Ok(())
    }

    /// A symlink's text as it reads in M (absolute texts point into M's own world).
    fn m_text(&self, text: &[u8]) -> Vec<u8> {
        if under(text, &self.v) {
            [&self.m[..], &text[self.v.len()..]].concat()
        } else {
            text.to_vec()
        }
    }

    fn materialize(&mut self) -> std::io::Result<()> {
        std::fs::create_dir(p(&self.m))?;
        let (v, m) = (self.v.clone(), self.m.clone());
        self.record(&m, obj(&v).unwrap())?;
        for i in 0..SOURCES {
            let name = format!("s{i}");
            self.copy_plain(&join(&v, name.as_bytes()), &join(&m, name.as_bytes()))?;
        }
        self.copy_view(&join(&v, b"r"), &join(&m, b"r"))
    }

    /// Copy a host tree as it is (symlinks not followed).
    fn copy_plain(&mut self, from: &[u8], to: &[u8]) -> std::io::Result<()> {
        let md = std::fs::symlink_metadata(p(from))?;
        self.copy_one(from, to, md.file_type())?;
        if md.is_dir() {
            for e in std::fs::read_dir(p(from))? {
                let name = e?.file_name();
                self.copy_plain(&join(from, name.as_bytes()), &join(to, name.as_bytes()))?;
            }
        }
        Ok(())
    }

    fn copy_one(&mut self, from: &[u8], to: &[u8], t: std::fs::FileType) -> std::io::Result<()> {
        if t.is_dir() {
            std::fs::create_dir(p(to))?;
        } else if t.is_symlink() {
            let text = std::fs::read_link(p(from))?;
            std::os::unix::fs::symlink(p(&self.m_text(text.as_os_str().as_bytes())), p(to))?;
        } else {
            std::fs::copy(p(from), p(to))?;
        }
        self.record(to, obj(from).unwrap())
    }

    /// Make M's copy of virtual path `virt` (below V/r) at `to`, as the view shows it.
    fn copy_view(&mut self, virt: &[u8], to: &[u8]) -> std::io::Result<()> {
        let host = self.backing(virt);
        let view = self.view(virt);
        match view {
            View::Missing => return Ok(()),
            View::Implicit => {
                std::fs::create_dir(p(to))?;
                self.record(to, Ident::Implicit(virt.to_vec()))?;
            }
            _ => self.copy_one(&host, to, lstat_kind(&host).unwrap())?,
        }
        if matches!(view, View::Dir | View::Implicit) {
            let mut names: Vec<Vec<u8>> = Vec::new();
            if view == View::Dir {
                for e in std::fs::read_dir(p(&host))? {
                    names.push(e?.file_name().as_bytes().to_vec());
                }
            }
            for k in &self.mounts {
                if under(&k.target, virt) && k.target.len() > virt.len() {
                    let rest = vurs::path::mounts::subpath(&k.target, virt);
                    names.push(rest.split(|&b| b == b'/').next().unwrap().to_vec());
                }
            }
            names.sort();
            names.dedup();
            for n in names {
                self.copy_view(&join(virt, &n), &join(to, &n))?;
            }
        }
        Ok(())
    }

    /// What object in M stands for.
    pub fn m_ident(&self, dev: u64, ino: u64) -> Ident {
        self.m_ident.get(&(dev, ino)).cloned().unwrap_or(Ident::Obj(dev, ino))
    }

    /// M's name for a V path (and the reverse), for paths inside the worlds.
    pub fn to_m(&self, v_path: &[u8]) -> Vec<u8> {
        self.m_text(v_path)
    }
    pub fn to_v(&self, m_path: &[u8]) -> Vec<u8> {
        if under(m_path, &self.m) {
            [&self.v[..], &m_path[self.m.len()..]].concat()
        } else {
            m_path.to_vec()
        }
    }
}
