//! The ownership database: what the session believes of each file that differs from the
//! host (owner, mode, device type and number, security/trusted xattrs), keyed by
//! (device, inode) so that renames and hard links keep their entry, as pseudo does.
//!
//! On disk (`db=FILE`): a text file, one entry a line, fields separated by spaces, paths
//! and xattrs hex-encoded; written to FILE.tmp and renamed over FILE (a killed vurs leaves
//! the old or the new file, never half of one). FILE.lock is flock'ed for the whole
//! session: a second session on the same database is refused.
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

const MAGIC: &str = "vurs-fakeroot-db 1";

/// What the session remembers of one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Permission bits (07777) set by chmod.
    pub perm: Option<u32>,
    /// A device node made by mknod: its type (S_IFCHR/S_IFBLK) and number.
    pub dev_node: Option<(u32, u64)>,
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Absolute paths the file was seen at (to revalidate the entry on load).
    pub paths: Vec<Vec<u8>>,
}

pub type Key = (u64, u64);

#[derive(Default)]
pub struct Db {
    pub entries: HashMap<Key, Entry>,
}

fn hex(b: &[u8]) -> String {
    if b.is_empty() {
        return "-".into();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s == "-" {
        return Some(Vec::new());
    }
    if s.len() & 1 != 0 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

fn parse_opt<T: std::str::FromStr>(s: &str) -> Option<Option<T>> {
    if s == "-" {
        Some(None)
    } else {
        s.parse().ok().map(Some)
    }
}

impl Db {
    /// The text of the database file.
    pub fn to_text(&self) -> String {
        let mut out = String::from(MAGIC);
        out.push('\n');
        let mut keys: Vec<_> = self.entries.keys().collect();
        keys.sort();
        for k in keys {
            let e = &self.entries[k];
            let (ty, rdev) = e
                .dev_node
                .map_or(("-".to_string(), "-".to_string()), |(t, r)| (t.to_string(), r.to_string()));
            let paths: Vec<String> = e.paths.iter().map(|p| hex(p)).collect();
            let xattrs: Vec<String> =
                e.xattrs.iter().map(|(n, v)| format!("{}={}", hex(n), hex(v))).collect();
            out.push_str(&format!(
                "{} {} {} {} {} {} {} {} {}\n",
                k.0,
                k.1,
                opt(e.uid),
                opt(e.gid),
                opt(e.perm),
                ty,
                rdev,
                if paths.is_empty() { "-".into() } else { paths.join(",") },
                if xattrs.is_empty() { "-".into() } else { xattrs.join(",") },
            ));
        }
        out
    }

    /// Parse a database file's text; Err names the first bad line.
    pub fn from_text(text: &str) -> Result<Db, String> {
        let mut lines = text.lines();
        if lines.next() != Some(MAGIC) {
            return Err("not a vurs fakeroot database (bad first line)".into());
        }
        let mut db = Db::default();
        for (i, line) in lines.enumerate() {
            let bad = || format!("line {}: malformed entry", i + 2);
            let f: Vec<&str> = line.split(' ').collect();
            if f.len() != 9 {
                return Err(bad());
            }
            let key = (f[0].parse().map_err(|_| bad())?, f[1].parse().map_err(|_| bad())?);
            let ty: Option<u32> = parse_opt(f[5]).ok_or_else(bad)?;
            let rdev: Option<u64> = parse_opt(f[6]).ok_or_else(bad)?;
            let list = |s: &str| -> Vec<String> {
                if s == "-" {
                    Vec::new()
                } else {
                    s.split(',').map(str::to_string).collect()
                }
            };
            let mut e = Entry {
                uid: parse_opt(f[2]).ok_or_else(bad)?,
                gid: parse_opt(f[3]).ok_or_else(bad)?,
                perm: parse_opt(f[4]).ok_or_else(bad)?,
                dev_node: ty.zip(rdev),
                ..Default::default()
            };
            for p in list(f[7]) {
                e.paths.push(unhex(&p).ok_or_else(bad)?);
            }
            for x in list(f[8]) {
                let (n, v) = x.split_once('=').ok_or_else(bad)?;
                e.xattrs.insert(unhex(n).ok_or_else(bad)?, unhex(v).ok_or_else(bad)?);
            }
            db.entries.insert(key, e);
        }
        Ok(db)
    }

    /// Drop what no longer holds on the host: an entry is kept when one of its paths still
    /// names the same (device, inode) — a file removed, or replaced by another, outside
    /// the session loses its entry. Returns how many were dropped.
    pub fn revalidate(&mut self) -> usize {
        let before = self.entries.len();
        self.entries.retain(|k, e| {
            e.paths.retain(|p| {
                std::fs::symlink_metadata(Path::new(std::ffi::OsStr::from_bytes(p)))
                    .is_ok_and(|m| (m.dev(), m.ino()) == *k)
            });
            !e.paths.is_empty()
        });
        before - self.entries.len()
    }
}

/// The database file of a session and the lock that keeps it to this session.
pub struct DbFile {
    pub path: PathBuf,
    /// FILE.lock, flock'ed exclusively while this session runs.
    _lock: File,
}

impl DbFile {
    /// Lock FILE (through FILE.lock) and read it (an absent FILE is an empty database).
    pub fn open(path: &Path) -> Result<(DbFile, Db), String> {
        let mut lock_path = path.as_os_str().to_owned();
        lock_path.push(".lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| format!("cannot open {}: {e}", Path::new(&lock_path).display()))?;
        // SAFETY: flock on a descriptor we own; no memory is involved.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(format!("database {} is in use by another vurs session", path.display()));
        }
        let db = match std::fs::read_to_string(path) {
            Ok(text) => Db::from_text(&text).map_err(|e| format!("database {}: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Db::default(),
            Err(e) => return Err(format!("cannot read database {}: {e}", path.display())),
        };
        Ok((DbFile { path: path.to_path_buf(), _lock: lock }, db))
    }

    /// Write `text` atomically: FILE.tmp, fsync, rename over FILE.
    pub fn save(&self, text: &str) -> std::io::Result<()> {
        let mut tmp = self.path.as_os_str().to_owned();
        tmp.push(".tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip() {
        let mut db = Db::default();
        let mut e = Entry { uid: Some(1234), gid: None, perm: Some(0o4755), ..Default::default() };
        e.paths.push(b"/tmp/a b".to_vec());
        e.xattrs.insert(b"security.capability".to_vec(), vec![1, 0, 0, 2]);
        db.entries.insert((5, 7), e);
        db.entries.insert(
            (5, 8),
            Entry { dev_node: Some((0o020000, 259)), paths: vec![b"/x".to_vec()], ..Default::default() },
        );
        let back = Db::from_text(&db.to_text()).unwrap();
        assert_eq!(back.entries, db.entries);
        assert!(Db::from_text("garbage").is_err());
        assert!(Db::from_text(&format!("{MAGIC}\n1 2 3\n")).is_err());
    }
}
