//! What UPPER's directories hold, kept in memory so that a lookup in a tree with no upper
//! part costs no system call: the entries (and whether each is a directory) and the
//! whiteouts of each upper directory a lookup walked through, read once (one `read_dir`).
//!
//! Assumption: nobody but this module and the calls it answered writes UPPER during the
//! session. The module's own changes (copy-ups, whiteouts, index links) are synchronous:
//! each one drops the listing of the directory it changed (`changed`). The creations,
//! removals and renames the module answers with an upper path are done by the kernel
//! *after* the answer, out of the module's sight: the directories involved (the name and
//! its parent) are then never cached again in this session (`volatile`), so a lookup made
//! between the answer and the kernel's change cannot leave a stale listing behind. Every
//! change bumps a generation; a listing read before a change is not stored after it.
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::layers::WH;

/// The names of one upper directory.
pub struct UpperDir {
    /// Entry name (never a `.wh.` one) -> is a directory.
    names: HashMap<OsString, bool>,
    /// NAME for each whiteout `.wh.NAME`.
    whiteouts: HashSet<OsString>,
}

impl UpperDir {
    fn read(dir: &Path) -> Option<UpperDir> {
        let mut d = UpperDir { names: HashMap::new(), whiteouts: HashSet::new() };
        for e in std::fs::read_dir(dir).ok()? {
            let e = e.ok()?;
            let name = e.file_name();
            if let Some(hidden) = name.as_bytes().strip_prefix(WH) {
                d.whiteouts.insert(OsStr::from_bytes(hidden).to_os_string());
            } else {
                // d_type, or an lstat when the file system gives none
                d.names.insert(name, e.file_type().ok()?.is_dir());
            }
        }
        Some(d)
    }

    /// Whether `name` is whited out here, and what this directory has under it
    /// (None: nothing; Some(true): a directory).
    pub fn get(&self, name: &OsStr) -> (bool, Option<bool>) {
        if name.as_bytes().starts_with(WH) {
            return (false, None); // the module's own names are no part of the view
        }
        (self.whiteouts.contains(name), self.names.get(name).copied())
    }
}

#[derive(Default)]
struct Inner {
    generation: u64,
    /// Upper directories read, by subpath.
    dirs: HashMap<PathBuf, Arc<UpperDir>>,
    /// Directories the kernel changes after an answer: asked live, never stored.
    volatile: HashSet<PathBuf>,
}

/// At most this many directories are kept (the whole cache is dropped beyond).
const MAX_DIRS: usize = 4096;

#[derive(Default)]
pub struct DirCache {
    inner: Mutex<Inner>,
}

impl DirCache {
    /// The names of upper directory `sub` (at `path()`), from the cache or read now; None
    /// when it is volatile (the caller asks the file system itself) or cannot be read.
    pub fn dir(&self, sub: &Path, path: impl FnOnce() -> PathBuf) -> Option<Arc<UpperDir>> {
        let generation = {
            let c = self.inner.lock();
            if let Some(d) = c.dirs.get(sub) {
                return Some(d.clone());
            }
            if c.volatile.contains(sub) {
                return None;
            }
            c.generation
        };
        let d = Arc::new(UpperDir::read(&path())?);
        let mut c = self.inner.lock();
        if c.generation == generation && !c.volatile.contains(sub) {
            if c.dirs.len() >= MAX_DIRS {
                c.dirs.clear();
            }
            c.dirs.insert(sub.to_path_buf(), d.clone());
        }
        Some(d)
    }

    /// The module changed the entries of upper directory `sub` itself (done by now).
    pub fn changed(&self, sub: &Path) {
        let mut c = self.inner.lock();
        c.generation += 1;
        c.dirs.remove(sub);
    }

    /// The kernel is about to create, remove or replace the object `sub` in UPPER (the
    /// module answered with its upper path): `sub` and its directory are asked live from
    /// now on, and nothing at or below `sub` is kept.
    pub fn volatile(&self, sub: &Path) {
        let mut c = self.inner.lock();
        c.generation += 1;
        c.dirs.retain(|k, _| !k.starts_with(sub));
        c.dirs.remove(sub.parent().unwrap_or(Path::new("")));
        c.volatile.insert(sub.to_path_buf());
        c.volatile.insert(sub.parent().unwrap_or(Path::new("")).to_path_buf());
    }
}
