//! The two layers of a cow mount and what a name is in the merged view.
//!
//! Format of UPPER (docs/shipped-modules.md): an ordinary directory tree holding every
//! object written through the view, plus whiteouts: an empty file `.wh.NAME` in an upper
//! directory hides the lower NAME (and all below it). If NAME also exists in UPPER, the
//! upper NAME is shown and, when it is a directory, nothing of the lower NAME is merged into
//! it (it is opaque). Names beginning with `.wh.` are never shown.
use std::ffi::{OsStr, OsString};
use std::fs::Metadata;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::cache::DirCache;
use crate::index::Index;

/// The prefix of whiteouts and of the module's own hidden files.
pub const WH: &[u8] = b".wh.";
/// Hidden file that keeps an upper directory non-empty for the kernel while the view
/// still lists lower entries in it (so rmdir says ENOTEMPTY, rename over it too).
pub const KEEPER: &[u8] = b".wh..wh..keep";

pub struct Layers {
    pub upper: PathBuf,
    pub lower: PathBuf,
    /// What UPPER's directories hold (see cache.rs).
    pub cache: DirCache,
    /// Copies of hard-linked lower objects (see index.rs).
    pub index: Index,
}

/// What a name of the view is.
pub struct State {
    /// The upper object (lstat), if any.
    pub upper: Option<Metadata>,
    /// The lower name is hidden by a whiteout (or by an upper non-directory on the way).
    pub hidden: bool,
}

pub fn lstat(p: &Path) -> Option<Metadata> {
    std::fs::symlink_metadata(p).ok()
}

pub fn join(root: &Path, sub: &Path) -> PathBuf {
    if sub.as_os_str().is_empty() {
        root.to_path_buf()
    } else {
        root.join(sub)
    }
}

/// The whiteout of the last component of `p` (a path with a parent).
pub fn whiteout_of(p: &Path) -> Option<PathBuf> {
    let name = p.file_name()?;
    let mut w = WH.to_vec();
    w.extend_from_slice(name.as_bytes());
    Some(p.with_file_name(OsString::from_vec(w)))
}

pub fn is_hidden_name(name: &OsStr) -> bool {
    name.as_bytes().starts_with(WH)
}

impl Layers {
    pub fn new(upper: PathBuf, lower: PathBuf) -> Layers {
        let index = Index::load(&upper);
        Layers { upper, lower, cache: DirCache::default(), index }
    }

    pub fn upper(&self, sub: &Path) -> PathBuf {
        join(&self.upper, sub)
    }
    pub fn lower(&self, sub: &Path) -> PathBuf {
        join(&self.lower, sub)
    }

    /// Whether the lower object at `sub` is hidden: a whiteout of a component on the way
    /// (or of `sub` itself), or an upper non-directory standing where a lower directory on
    /// the way is. Whiteouts lie in upper directories only, so the walk ends at the first
    /// component missing in UPPER.
    pub fn hidden(&self, sub: &Path) -> bool {
        self.state(sub).hidden
    }

    /// One walk down UPPER answers both: whiteouts on the way, and the upper object (the
    /// walk reaches it, or stops at the first missing directory, below which nothing is).
    /// The directories walked through are asked from the cache: no system call for a
    /// path whose upper part is absent, one lstat for an upper object.
    pub fn state(&self, sub: &Path) -> State {
        let n = sub.components().count();
        if n == 0 {
            return State { upper: lstat(&self.upper), hidden: false };
        }
        let mut dir = PathBuf::new();
        let mut hidden = false;
        for (i, c) in sub.components().enumerate() {
            let name = c.as_os_str();
            let (whiteout, entry) = match self.cache.dir(&dir, || self.upper(&dir)) {
                Some(d) => d.get(name),
                None => {
                    let up = self.upper(&dir);
                    let mut w = WH.to_vec();
                    w.extend_from_slice(name.as_bytes());
                    let md = if name.as_bytes().starts_with(WH) { None } else { lstat(&up.join(name)) };
                    (lstat(&up.join(OsStr::from_bytes(&w))).is_some(), md.map(|m| m.is_dir()))
                }
            };
            hidden = hidden || whiteout;
            match entry {
                None => return State { upper: None, hidden },
                // an upper file where the path goes on: nothing below it is lower
                Some(false) if i + 1 < n => return State { upper: None, hidden: true },
                Some(_) => {}
            }
            dir.push(c);
        }
        State { upper: lstat(&self.upper(sub)), hidden }
    }

    /// The lower object at `sub` when the view shows it (exists and not hidden).
    pub fn visible_lower(&self, sub: &Path, st: &State) -> Option<Metadata> {
        if st.hidden {
            return None;
        }
        lstat(&self.lower(sub))
    }
}
