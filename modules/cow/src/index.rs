//! Hard links of the lower tree kept together in the view (overlayfs' `index=on`, for an
//! unprivileged UPPER): a lower non-directory with more than one link is copied up once,
//! into `UPPER/.wh..wh..index/<dev hex>-<ino hex>` (its lower device and inode), and each
//! of its names is a hard link to that copy in UPPER: the name copied up at once, every
//! other name when the view first resolves it. The index is read at mount (it persists
//! with UPPER) and kept in memory; the module alone adds to it.
use parking_lot::Mutex;
use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// The index directory's name in UPPER (a `.wh.` name: never shown in the view).
pub const INDEX: &[u8] = b".wh..wh..index";

pub struct Index {
    pub dir: PathBuf,
    /// (dev, ino) of the lower objects copied up into the index.
    entries: Mutex<HashSet<(u64, u64)>>,
    /// Nothing indexed yet: no lookup needs to look at the lower object.
    empty: AtomicBool,
}

fn parse(name: &[u8]) -> Option<(u64, u64)> {
    let s = std::str::from_utf8(name).ok()?;
    let (d, i) = s.split_once('-')?;
    Some((u64::from_str_radix(d, 16).ok()?, u64::from_str_radix(i, 16).ok()?))
}

impl Index {
    /// The index of layer `upper`, as it is on disk.
    pub fn load(upper: &Path) -> Index {
        let dir = upper.join(OsStr::from_bytes(INDEX));
        let entries: HashSet<(u64, u64)> = std::fs::read_dir(&dir)
            .map(|rd| rd.flatten().filter_map(|e| parse(e.file_name().as_bytes())).collect())
            .unwrap_or_default();
        let empty = AtomicBool::new(entries.is_empty());
        Index { dir, entries: Mutex::new(entries), empty }
    }

    pub fn is_empty(&self) -> bool {
        self.empty.load(Ordering::Relaxed)
    }

    pub fn has(&self, dev: u64, ino: u64) -> bool {
        !self.is_empty() && self.entries.lock().contains(&(dev, ino))
    }

    /// The index entry of lower object (dev, ino).
    pub fn path(&self, dev: u64, ino: u64) -> PathBuf {
        self.dir.join(format!("{dev:x}-{ino:x}"))
    }

    /// Entry (dev, ino) now exists in the index directory.
    pub fn add(&self, dev: u64, ino: u64) {
        self.entries.lock().insert((dev, ino));
        self.empty.store(false, Ordering::Relaxed);
    }
}
