//! Merged directory listings: ".", "..", then every name of the upper directory and every
//! name of the lower one that is neither in UPPER nor whited out, each once, sorted by name
//! (so the order is the same at each read: entry numbers are directory offsets).
use crate::layers::{is_hidden_name, lstat, Layers, WH};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirEntryExt, FileTypeExt, MetadataExt};
use std::path::Path;

/// (inode, d_type, name)
pub type Entry = (u64, u8, Vec<u8>);

fn d_type(ft: std::fs::FileType) -> u8 {
    if ft.is_dir() {
        libc::DT_DIR
    } else if ft.is_file() {
        libc::DT_REG
    } else if ft.is_symlink() {
        libc::DT_LNK
    } else if ft.is_fifo() {
        libc::DT_FIFO
    } else if ft.is_socket() {
        libc::DT_SOCK
    } else if ft.is_char_device() {
        libc::DT_CHR
    } else if ft.is_block_device() {
        libc::DT_BLK
    } else {
        libc::DT_UNKNOWN
    }
}

/// What identifies the content of both directories of a listing: (dev, ino, mtime, ctime)
/// of each, so a cached listing is used only while neither changed.
pub type Stamp = [(u64, u64, i64, i64, i64); 2];

fn stamp_of(md: Option<&std::fs::Metadata>) -> (u64, u64, i64, i64, i64) {
    md.map_or((0, 0, 0, 0, 0), |m| (m.dev(), m.ino(), m.mtime(), m.mtime_nsec(), m.ctime_nsec() ^ m.ctime()))
}

impl Layers {
    /// Whether directory `sub` of the view needs merging: it exists in UPPER, or is
    /// hidden (then the upper one alone lists). A directory of the lower layer alone lists
    /// itself (None).
    pub fn listing_stamp(&self, sub: &Path) -> Option<Stamp> {
        let up = lstat(&self.upper(sub)).filter(|m| m.is_dir())?;
        let low = if self.hidden(sub) { None } else { lstat(&self.lower(sub)).filter(|m| m.is_dir()) };
        Some([stamp_of(Some(&up)), stamp_of(low.as_ref())])
    }

    pub fn merged_entries(&self, sub: &Path) -> io::Result<Vec<Entry>> {
        let up_dir = self.upper(sub);
        let up_md = lstat(&up_dir);
        let st = self.state(sub);
        let low_dir = self.lower(sub);
        let low_md = self.visible_lower(sub, &st).filter(|m| m.is_dir());
        let this = up_md.as_ref().or(low_md.as_ref()).ok_or(io::Error::from_raw_os_error(libc::ENOENT))?;
        if !this.is_dir() {
            return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        let parent_ino = sub
            .parent()
            .map(|p| {
                let u = lstat(&self.upper(p));
                u.or_else(|| lstat(&self.lower(p))).map_or(0, |m| m.ino())
            })
            .unwrap_or_else(|| lstat(&up_dir.join("..")).map_or(0, |m| m.ino()));
        let mut names: BTreeMap<Vec<u8>, (u64, u8)> = BTreeMap::new();
        let mut whiteouts: Vec<Vec<u8>> = Vec::new();
        if up_md.as_ref().is_some_and(|m| m.is_dir()) {
            for e in std::fs::read_dir(&up_dir)? {
                let e = e?;
                let name = e.file_name();
                if is_hidden_name(&name) {
                    whiteouts.push(name.as_bytes()[WH.len()..].to_vec());
                    continue;
                }
                let t = e.file_type().map(d_type).unwrap_or(libc::DT_UNKNOWN);
                names.insert(name.as_bytes().to_vec(), (e.ino(), t));
            }
        }
        if low_md.is_some() {
            if let Ok(rd) = std::fs::read_dir(&low_dir) {
                for e in rd.flatten() {
                    let name = e.file_name().as_bytes().to_vec();
                    if names.contains_key(&name)
                        || whiteouts.contains(&name)
                        || is_hidden_name(OsStr::from_bytes(&name))
                    {
                        continue;
                    }
                    // UPPER itself, seen in the lower tree, is not part of the view.
                    if e.path() == self.upper {
                        continue;
                    }
                    let t = e.file_type().map(d_type).unwrap_or(libc::DT_UNKNOWN);
                    names.insert(name, (e.ino(), t));
                }
            }
        }
        let mut out = Vec::with_capacity(names.len() + 2);
        out.push((this.ino(), libc::DT_DIR, b".".to_vec()));
        out.push((parent_ino, libc::DT_DIR, b"..".to_vec()));
        out.extend(names.into_iter().map(|(n, (ino, t))| (ino, t, n)));
        Ok(out)
    }
}
