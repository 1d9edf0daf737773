//! `vurs cow-diff UPPER`: what a cow layer (modules/cow) changed relative to the lower
//! tree, as `git status --short` shows it: `A path`, `M path`, `D path`, sorted by path.
//!
//! The view is rebuilt from UPPER's format (docs/shipped-modules.md, cow): an upper name
//! shows; `.wh.NAME` hides the lower NAME and, beside an upper directory NAME, makes it
//! opaque; names beginning `.wh.` are the module's own. Each name of the view or of the
//! lower tree is then compared: a directory is modified when its type, mode or owner
//! differs (not its times: adding an entry changes them), anything else when its type,
//! mode, owner, size, mtime, content or link target does.
use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::fs::Metadata;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

const WH: &[u8] = b".wh.";

struct Diff<'a> {
    upper: PathBuf,
    lower: &'a Path,
    out: &'a mut dyn Write,
}

fn lstat(p: &Path) -> Option<Metadata> {
    std::fs::symlink_metadata(p).ok()
}

fn names(dir: &Path) -> io::Result<BTreeSet<OsString>> {
    std::fs::read_dir(dir)?.map(|e| e.map(|e| e.file_name())).collect()
}

fn same_content(a: &Path, b: &Path) -> io::Result<bool> {
    let (mut fa, mut fb) = (std::fs::File::open(a)?, std::fs::File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let na = fa.read(&mut ba)?;
        let mut nb = 0;
        while nb < na {
            let n = fb.read(&mut bb[nb..na])?;
            if n == 0 {
                return Ok(false);
            }
            nb += n;
        }
        if na == 0 {
            return Ok(fb.read(&mut bb[..1])? == 0);
        }
        if ba[..na] != bb[..na] {
            return Ok(false);
        }
    }
}

fn modified(v: &Path, vm: &Metadata, l: &Path, lm: &Metadata) -> io::Result<bool> {
    let kind = |m: &Metadata| m.mode() & libc::S_IFMT;
    if kind(vm) != kind(lm) || vm.mode() != lm.mode() || vm.uid() != lm.uid() || vm.gid() != lm.gid() {
        return Ok(true);
    }
    if vm.is_dir() {
        return Ok(false);
    }
    if vm.size() != lm.size() || (vm.mtime(), vm.mtime_nsec()) != (lm.mtime(), lm.mtime_nsec()) {
        return Ok(true);
    }
    if vm.rdev() != lm.rdev() {
        return Ok(true);
    }
    if vm.file_type().is_symlink() {
        return Ok(std::fs::read_link(v)? != std::fs::read_link(l)?);
    }
    if vm.is_file() {
        return Ok(!same_content(v, l)?);
    }
    Ok(false)
}

impl Diff<'_> {
    fn line(&mut self, tag: char, rel: &Path) -> io::Result<()> {
        let p = self.lower.join(rel);
        self.out.write_all(format!("{tag} ").as_bytes())?;
        self.out.write_all(p.as_os_str().as_bytes())?;
        self.out.write_all(b"\n")
    }

    /// Everything at and below `root`/`rel` (a whole added or deleted tree), tagged `tag`.
    fn all(&mut self, tag: char, root: &Path, rel: &Path) -> io::Result<()> {
        let p = root.join(rel);
        if p == self.upper {
            return Ok(()); // the layer itself, seen in the lower tree
        }
        self.line(tag, rel)?;
        if lstat(&p).is_some_and(|m| m.is_dir()) {
            for n in names(&p)? {
                if root == self.upper && n.as_bytes().starts_with(WH) {
                    continue;
                }
                self.all(tag, root, &rel.join(n))?;
            }
        }
        Ok(())
    }

    /// Directory `rel`, present in UPPER; `merged`: the lower directory's entries are part of
    /// the view (not opaque). `lower_dir`: it is a directory in the lower tree.
    fn dir(&mut self, rel: &Path, merged: bool, lower_dir: bool) -> io::Result<()> {
        let up = self.upper.join(rel);
        let low = self.lower.join(rel);
        let unames = names(&up)?;
        let lnames = if lower_dir { names(&low)? } else { BTreeSet::new() };
        let whited = |n: &OsStr| {
            let mut w = WH.to_vec();
            w.extend_from_slice(n.as_bytes());
            unames.contains(OsStr::from_bytes(&w))
        };
        let all: BTreeSet<&OsString> =
            unames.iter().filter(|n| !n.as_bytes().starts_with(WH)).chain(lnames.iter()).collect();
        for n in all {
            let r = rel.join(n);
            let (u, l) = (up.join(n), low.join(n));
            if l == self.upper {
                continue;
            }
            let um = if unames.contains(n) { lstat(&u) } else { None };
            let lm = if lnames.contains(n) { lstat(&l) } else { None };
            let lower_shows = merged && !whited(n);
            match (um, lm) {
                (Some(_), None) => self.all('A', &self.upper.clone(), &r)?,
                (None, Some(_)) if lower_shows => {} // the lower object itself
                (None, Some(_)) => self.all('D', self.lower, &r)?,
                (Some(um), Some(lm)) => {
                    if modified(&u, &um, &l, &lm)? {
                        self.line('M', &r)?;
                    }
                    if um.is_dir() && lm.is_dir() {
                        self.dir(&r, lower_shows, true)?;
                    } else if um.is_dir() {
                        for c in names(&u)?.into_iter().filter(|c| !c.as_bytes().starts_with(WH)) {
                            self.all('A', &self.upper.clone(), &r.join(c))?;
                        }
                    } else if lm.is_dir() {
                        for c in names(&l)? {
                            self.all('D', self.lower, &r.join(c))?;
                        }
                    }
                }
                (None, None) => {}
            }
        }
        Ok(())
    }
}

/// Write the changes of layer `upper` over `lower` to `out`.
pub fn diff(upper: &Path, lower: &Path, out: &mut dyn Write) -> Result<(), String> {
    let upper = std::fs::canonicalize(upper).map_err(|e| format!("{}: {e}", upper.display()))?;
    if !upper.is_dir() {
        return Err(format!("{}: not a directory", upper.display()));
    }
    let lower_dir = lstat(lower).is_some_and(|m| m.is_dir());
    if !lower_dir {
        return Err(format!("{}: not a directory (--lower)", lower.display()));
    }
    let mut d = Diff { upper, lower, out };
    d.dir(Path::new(""), true, true).map_err(|e| e.to_string())
}
