//! Copy-up: an object of the lower layer copied into UPPER with its content, mode, owner
//! (where vurs may set it), times and extended attributes; directories up the path are
//! copied first (their metadata only) and keep their times.
use crate::layers::{lstat, Layers, KEEPER, WH};
use std::ffi::{CString, OsStr};
use std::fs::Metadata;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(r: libc::c_int) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Owner, extended attributes, mode (after the owner: chown clears set-id bits) and
/// times of `md` (the lower object at `from`) onto `to`, never following a final symlink.
/// What vurs may not set (another owner when not root, trusted.* attributes) is left.
pub fn copy_meta(from: &Path, md: &Metadata, to: &Path) -> io::Result<()> {
    let t = cpath(to)?;
    // SAFETY: t is a NUL-terminated path; lchown has no memory arguments otherwise.
    let _ = unsafe { libc::lchown(t.as_ptr(), md.uid(), md.gid()) };
    copy_xattrs(from, to);
    if !md.file_type().is_symlink() {
        // SAFETY: as above.
        check(unsafe { libc::chmod(t.as_ptr(), md.mode() & 0o7777) })?;
    }
    set_times(to, md)
}

/// atime and mtime of `md` onto `to` (not following it).
pub fn set_times(to: &Path, md: &Metadata) -> io::Result<()> {
    let t = cpath(to)?;
    let ts = [
        libc::timespec { tv_sec: md.atime(), tv_nsec: md.atime_nsec() },
        libc::timespec { tv_sec: md.mtime(), tv_nsec: md.mtime_nsec() },
    ];
    // SAFETY: t is NUL-terminated and ts an array of two timespecs, as utimensat reads.
    check(unsafe { libc::utimensat(libc::AT_FDCWD, t.as_ptr(), ts.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) })
}

fn copy_xattrs(from: &Path, to: &Path) {
    let (Ok(f), Ok(t)) = (cpath(from), cpath(to)) else { return };
    let mut names = vec![0u8; 64 * 1024];
    // SAFETY: f is NUL-terminated; names is a writable buffer of its length.
    let n = unsafe { libc::llistxattr(f.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if n <= 0 {
        return;
    }
    names.truncate(n as usize);
    let mut value = vec![0u8; 64 * 1024];
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let Ok(cn) = CString::new(name) else { continue };
        // SAFETY: NUL-terminated path and name; value is writable for its length.
        let len = unsafe { libc::lgetxattr(f.as_ptr(), cn.as_ptr(), value.as_mut_ptr().cast(), value.len()) };
        if len < 0 {
            continue;
        }
        // SAFETY: NUL-terminated path and name; value holds len bytes.
        let _ = unsafe { libc::lsetxattr(t.as_ptr(), cn.as_ptr(), value.as_ptr().cast(), len as usize, 0) };
    }
}

/// A copy of lower object `low` (`md`; not a directory's entries) made at `tmp`.
fn copy_object(low: &Path, md: &Metadata, tmp: &Path) -> io::Result<()> {
    let ft = md.file_type();
    if ft.is_file() {
        let mut src = std::fs::File::open(low)?;
        let mut dst = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(tmp)?;
        io::copy(&mut src, &mut dst)?;
    } else if ft.is_dir() {
        std::fs::DirBuilder::new().mode(0o700).create(tmp)?;
    } else if ft.is_symlink() {
        symlink(std::fs::read_link(low)?, tmp)?;
    } else {
        let t = cpath(tmp)?;
        // SAFETY: t is NUL-terminated; mknod reads nothing else from memory.
        check(unsafe { libc::mknod(t.as_ptr(), md.mode(), md.rdev()) })?;
    }
    copy_meta(low, md, tmp)
}

static TMP: AtomicU64 = AtomicU64::new(0);

/// A hidden name for a copy being made in `dir` (renamed into place when complete).
fn temp_in(dir: &Path) -> std::path::PathBuf {
    let mut n = WH.to_vec();
    n.extend_from_slice(
        format!(".wh.cow-tmp.{}.{}", std::process::id(), TMP.fetch_add(1, Ordering::Relaxed)).as_bytes(),
    );
    dir.join(OsStr::from_bytes(&n))
}

impl Layers {
    /// Make the upper directory of `sub` and of every directory above it exist, copying
    /// each missing one from the lower layer (its metadata). Returns the directories made
    /// (their times are set again by `restore_times` once their child is in place).
    pub fn copy_up_parents(&self, sub: &Path) -> io::Result<Vec<(std::path::PathBuf, Metadata)>> {
        let mut made = Vec::new();
        let Some(parent) = sub.parent() else { return Ok(made) };
        let mut rel = std::path::PathBuf::new();
        for c in parent.components() {
            rel.push(c);
            let up = self.upper(&rel);
            match lstat(&up) {
                Some(md) if md.is_dir() => continue,
                Some(_) => return Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
                None => {}
            }
            let low = self.lower(&rel);
            let md = lstat(&low).filter(|m| m.is_dir()).ok_or(io::Error::from_raw_os_error(libc::ENOENT))?;
            match std::fs::DirBuilder::new().mode(0o700).create(&up) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
                Err(e) => return Err(e),
            }
            self.changed_in(&up);
            copy_meta(&low, &md, &up)?;
            made.push((up, md));
        }
        Ok(made)
    }

    /// The directories `copy_up_parents` made get their lower times back (adding the
    /// child changed their mtime; the view's directory did not change).
    pub fn restore_times(made: &[(std::path::PathBuf, Metadata)]) {
        for (p, md) in made.iter().rev() {
            let _ = set_times(p, md);
        }
    }

    /// Copy the lower object at `sub` (not a directory's entries) into UPPER.
    pub fn copy_up(&self, sub: &Path) -> io::Result<()> {
        let made = self.copy_up_parents(sub)?;
        let r = self.copy_up_one(sub);
        Self::restore_times(&made);
        r
    }

    fn copy_up_one(&self, sub: &Path) -> io::Result<()> {
        let low = self.lower(sub);
        let up = self.upper(sub);
        let md = std::fs::symlink_metadata(&low)?;
        if !md.is_dir() && md.nlink() > 1 {
            // one copy for all the names of a hard-linked object, each a link to it
            let entry = self.index_entry(&low, &md)?;
            let r = std::fs::hard_link(&entry, &up);
            self.changed_in(&up);
            return r;
        }
        let dir = up.parent().ok_or(io::Error::from_raw_os_error(libc::EINVAL))?;
        let tmp = temp_in(dir);
        let r = copy_object(&low, &md, &tmp).and_then(|()| std::fs::rename(&tmp, &up));
        if r.is_err() {
            let _ = std::fs::remove_file(&tmp).or_else(|_| std::fs::remove_dir(&tmp));
        }
        self.changed_in(&up);
        r
    }

    /// The index entry of lower object `low` (`md`), copied up there first if it is not.
    fn index_entry(&self, low: &Path, md: &Metadata) -> io::Result<std::path::PathBuf> {
        let entry = self.index.path(md.dev(), md.ino());
        if self.index.has(md.dev(), md.ino()) {
            return Ok(entry);
        }
        match std::fs::DirBuilder::new().mode(0o700).create(&self.index.dir) {
            Err(e) if e.raw_os_error() != Some(libc::EEXIST) => return Err(e),
            _ => {}
        }
        let tmp = temp_in(&self.index.dir);
        let r = copy_object(low, md, &tmp).and_then(|()| std::fs::rename(&tmp, &entry));
        if let Err(e) = r {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        self.index.add(md.dev(), md.ino());
        Ok(entry)
    }

    /// When the view shows at `sub` (no upper object, not hidden) a lower non-directory
    /// whose copy is in the index, link the copy to the upper name (its directories
    /// copied up first). Returns whether it did.
    pub fn link_indexed(&self, sub: &Path) -> bool {
        if self.index.is_empty() {
            return false;
        }
        let Some(md) = lstat(&self.lower(sub)) else { return false };
        if md.is_dir() || md.nlink() < 2 || !self.index.has(md.dev(), md.ino()) {
            return false;
        }
        let Ok(made) = self.copy_up_parents(sub) else { return false };
        let up = self.upper(sub);
        let r = std::fs::hard_link(self.index.path(md.dev(), md.ino()), &up);
        Self::restore_times(&made);
        self.changed_in(&up);
        r.is_ok() || lstat(&up).is_some()
    }

    /// The module added or removed `path` in UPPER: its directory's cached names go.
    pub fn changed_in(&self, path: &Path) {
        if let Some(sub) = path.parent().and_then(|d| d.strip_prefix(&self.upper).ok()) {
            self.cache.changed(sub);
        }
    }

    /// Copy the whole directory `sub` of the view into UPPER (every entry the view lists
    /// in it, recursively), so that nothing below it depends on the lower layer any more,
    /// and drop the whiteouts inside it (the caller hides the lower `sub` itself).
    pub fn copy_up_tree(&self, sub: &Path) -> io::Result<()> {
        if lstat(&self.upper(sub)).is_none() {
            self.copy_up(sub)?;
        }
        let up = self.upper(sub);
        let times = lstat(&up);
        for (_, _, name) in self.merged_entries(sub)?.iter().skip(2) {
            let child = sub.join(OsStr::from_bytes(name));
            let st = self.state(&child);
            match (&st.upper, self.visible_lower(&child, &st)) {
                (Some(u), Some(_)) if u.is_dir() => self.copy_up_tree(&child)?,
                (None, Some(l)) if l.is_dir() => self.copy_up_tree(&child)?,
                (None, Some(_)) => self.copy_up_one(&child)?,
                _ => {}
            }
        }
        self.clear_hidden_files(&up)?;
        if let Some(md) = times {
            let _ = set_times(&up, &md);
        }
        Ok(())
    }

    /// Remove the whiteouts and keeper of upper directory `dir`.
    pub fn clear_hidden_files(&self, dir: &Path) -> io::Result<()> {
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            if e.file_name().as_bytes().starts_with(WH) {
                let _ = std::fs::remove_file(e.path());
            }
        }
        self.changed_in(&dir.join("x"));
        Ok(())
    }

    /// Make the kernel see upper directory `sub` as non-empty while the view lists
    /// entries in it (rmdir: ENOTEMPTY; rename over it: ENOTEMPTY).
    pub fn keep_nonempty(&self, sub: &Path) -> io::Result<()> {
        let k = self.upper(sub).join(OsStr::from_bytes(KEEPER));
        self.touch(&k)
    }

    /// Create an empty file `p` in UPPER (a whiteout).
    pub fn touch(&self, p: &Path) -> io::Result<()> {
        let r = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(p)
            .map(drop);
        self.changed_in(p);
        r
    }
}
