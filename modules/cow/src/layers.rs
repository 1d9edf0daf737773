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

/// The prefix of whiteouts and of the module's own hidden files.
pub const WH: &[u8] = b".wh.";
/// Hidden file that keeps an upper directory non-empty for the kernel while the view
/// still lists lower entries in it (so rmdir says ENOTEMPTY, rename over it too).
pub const KEEPER: &[u8] = b".wh..wh..keep";

pub struct Layers {
    pub upper: PathBuf,
    pub lower: PathBuf,
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
    pub fn state(&self, sub: &Path) -> State {
        let mut dir = self.upper.clone();
        let n = sub.components().count();
        let mut md = if n == 0 { lstat(&dir) } else { None };
        let mut hidden = false;
        for (i, c) in sub.components().enumerate() {
            let mut w = WH.to_vec();
            w.extend_from_slice(c.as_os_str().as_bytes());
            hidden = hidden || lstat(&dir.join(OsStr::from_bytes(&w))).is_some();
            dir.push(c);
            md = lstat(&dir);
            match &md {
                None => return State { upper: None, hidden },
                // an upper file where the path goes on: nothing below it is lower
                Some(m) if !m.is_dir() && i + 1 < n => return State { upper: None, hidden: true },
                Some(_) => {}
            }
        }
        State { upper: md, hidden }
    }

    /// The lower object at `sub` when the view shows it (exists and not hidden).
    pub fn visible_lower(&self, sub: &Path, st: &State) -> Option<Metadata> {
        if st.hidden {
            return None;
        }
        lstat(&self.lower(sub))
    }
}
