//! tmpfs: an in-memory read-write file system, as the kernel's tmpfs, served by vurs
//! (`--mount type=tmpfs,target=/scratch[,size=64M][,nr_inodes=N][,mode=1777][,uid=U][,gid=G]`,
//! or `vurs mount -t tmpfs [-o OPTS] none /scratch` inside a session). A private /tmp per
//! session is its first use. The tree lives in [`fs::Fs`]; this file maps the module ABI
//! onto it: who calls (for owners), the session's clock (for times), open handles.
use parking_lot::{Mutex, RwLock};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use vurs_abi::sdk::{Errno, Handle, Module, Options, Services};
use vurs_abi::{vurs_stat, vurs_statfs, vurs_timespec, VURS_F_CREDS, VURS_F_PATH_SERVE, VURS_UTIME_OMIT};

pub mod fs;
use fs::{Config, Fs, Ts, Who};

/// One mount: its tree behind a lock (vurs may call from several threads).
pub struct Mnt {
    fs: RwLock<Fs>,
}

/// An open file: it keeps its inode alive after unlink, and a readdir cursor.
struct Open {
    mnt: Arc<Mnt>,
    ino: u64,
    flags: i32,
    /// (index, sequence number) of the entry readdir gave last: positions stay stable
    /// while entries are removed.
    cursor: Mutex<Option<(u64, u64)>>,
}

pub struct Tmpfs {
    svc: Services,
    /// Options given at load (`-m tmpfs,size=...`): defaults for every mount.
    defaults: Options,
}

/// Device numbers handed to mounts: each mount is its own st_dev, as each kernel tmpfs
/// mount is (anonymous major 0; minors from high up, clear of the host's).
static NEXT_MINOR: AtomicU64 = AtomicU64::new(0xf_0000);

fn e(r: Result<impl Sized, i32>) -> Result<(), Errno> {
    r.map(|_| ()).map_err(Errno)
}
fn bytes(p: &Path) -> &[u8] {
    p.as_os_str().as_bytes()
}
fn open_of(h: &Handle) -> Result<&Open, Errno> {
    h.downcast_ref::<Open>().ok_or(Errno(libc::EBADF))
}

/// A size with an optional k/m/g/t/p/e suffix (powers of 1024), or N% of RAM.
fn parse_size(v: &str, ram: u64) -> Option<u64> {
    if let Some(p) = v.strip_suffix('%') {
        return p.parse::<u64>().ok().map(|p| ram / 100 * p);
    }
    let (num, mul) = match v.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_lowercase() {
                'k' => 10,
                'm' => 20,
                'g' => 30,
                't' => 40,
                'p' => 50,
                'e' => 60,
                _ => return None,
            };
            (&v[..i], 1u64 << shift)
        }
        _ => (v, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mul)
}

fn ram_bytes() -> u64 {
    // SAFETY: sysinfo fills the struct we own; all-zero is a valid initial value.
    let mut si: libc::sysinfo = unsafe { std::mem::zeroed() };
    // SAFETY: a valid out-pointer.
    if unsafe { libc::sysinfo(&mut si) } != 0 {
        return 1 << 30;
    }
    si.totalram * si.mem_unit as u64
}

/// The mount options a tmpfs takes; flags vurs or mount(8) pass along are accepted.
const FLAGS: [&str; 14] = [
    "ro",
    "rw",
    "nosuid",
    "suid",
    "nodev",
    "dev",
    "noexec",
    "exec",
    "relatime",
    "noatime",
    "strictatime",
    "atime",
    "sync",
    "async",
];

impl Tmpfs {
    fn now(&self) -> Ts {
        let t = self.svc.clock_gettime(libc::CLOCK_REALTIME).unwrap_or_else(|_| {
            let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            vurs_timespec { sec: d.as_secs() as i64, nsec: d.subsec_nanos() as i64 }
        });
        Ts { sec: t.sec, nsec: t.nsec as u32 }
    }

    /// The caller's ids; vurs's own when there is no caller (a mount from the command line).
    fn who(&self) -> Who {
        match self.svc.caller() {
            Ok(c) => Who { euid: c.ids.euid, fsuid: c.ids.fsuid, fsgid: c.ids.fsgid, groups: c.ids.groups },
            Err(_) => {
                // SAFETY: geteuid/getegid cannot fail.
                let (u, g) = unsafe { (libc::geteuid(), libc::getegid()) };
                Who { euid: u, fsuid: u, fsgid: g, groups: Vec::new() }
            }
        }
    }

    fn config(&self, options: &Options) -> Result<Config, String> {
        let ram = ram_bytes();
        let page = fs::PAGE as u64;
        let who = self.who();
        let mut cfg = Config {
            max_pages: Some(ram / 2 / page),
            max_inodes: Some(ram / page / 2),
            root_mode: 0o1777,
            root_uid: who.fsuid,
            root_gid: who.fsgid,
            dev: libc::makedev(0, NEXT_MINOR.fetch_add(1, Ordering::Relaxed) as u32),
            read_only: false,
        };
        for (k, v) in self.defaults.0.iter().chain(options.0.iter()) {
            let bad = || format!("tmpfs: bad value for {k}: {:?}", v.as_deref().unwrap_or(""));
            let val = || v.as_deref().ok_or_else(bad);
            match k.as_str() {
                // size=0 and nr_inodes=0 mean unlimited, as in the kernel
                "size" => {
                    let bytes = parse_size(val()?, ram).ok_or_else(bad)?;
                    cfg.max_pages = (bytes > 0).then_some(bytes.div_ceil(page));
                }
                "nr_blocks" => {
                    let n = parse_size(val()?, 0).ok_or_else(bad)?;
                    cfg.max_pages = (n > 0).then_some(n);
                }
                "nr_inodes" => {
                    let n = parse_size(val()?, 0).ok_or_else(bad)?;
                    cfg.max_inodes = (n > 0).then_some(n);
                }
                "mode" => {
                    cfg.root_mode =
                        u32::from_str_radix(val()?, 8).ok().filter(|m| *m <= 0o7777).ok_or_else(bad)?
                }
                "uid" => cfg.root_uid = val()?.parse().map_err(|_| bad())?,
                "gid" => cfg.root_gid = val()?.parse().map_err(|_| bad())?,
                "ro" => cfg.read_only = true,
                "rw" => cfg.read_only = false,
                f if FLAGS.contains(&f) && v.is_none() => {}
                _ => {
                    return Err(format!(
                        "tmpfs: unknown option {k:?} (known: size, nr_blocks, nr_inodes, mode, uid, gid, ro)"
                    ))
                }
            }
        }
        Ok(cfg)
    }
}

fn ts(t: &vurs_timespec) -> Option<Ts> {
    (t.nsec != VURS_UTIME_OMIT).then_some(Ts { sec: t.sec, nsec: t.nsec as u32 })
}

impl Tmpfs {
    /// The inode a call is about: the open handle's, or the one `subpath` names.
    fn target(&self, mnt: &Mnt, subpath: &Path, h: Option<&Handle>) -> Result<u64, Errno> {
        match h {
            Some(h) => Ok(open_of(h)?.ino),
            None => mnt.fs.read().lookup(bytes(subpath)).map_err(Errno),
        }
    }
}

impl Module for Tmpfs {
    type Mount = Arc<Mnt>;

    fn init(svc: Services, options: &Options) -> Result<Self, String> {
        let t = Tmpfs { svc, defaults: options.clone() };
        t.config(&Options::default())?; // refuse bad defaults at load, not at first mount
        Ok(t)
    }

    fn mount(&self, _source: &str, _target: &str, options: &Options) -> Result<Arc<Mnt>, (Errno, String)> {
        let cfg = self.config(options).map_err(|m| (Errno(libc::EINVAL), m))?;
        Ok(Arc::new(Mnt { fs: RwLock::new(Fs::new(cfg, self.now())) }))
    }

    fn open(&self, mnt: &Arc<Mnt>, subpath: &Path, flags: i32, mode: u32) -> Result<Handle, Errno> {
        let (who, now) = (self.who(), self.now());
        let o = mnt.fs.write().open(bytes(subpath), flags, mode, &who, now).map_err(Errno)?;
        Ok(Box::new(Open { mnt: mnt.clone(), ino: o.ino, flags, cursor: Mutex::new(None) }))
    }

    fn stat(&self, mnt: &Arc<Mnt>, subpath: &Path) -> Result<vurs_stat, Errno> {
        let fs = mnt.fs.read();
        fs.lookup(bytes(subpath)).and_then(|i| fs.stat(i)).map_err(Errno)
    }

    fn readlink(&self, mnt: &Arc<Mnt>, subpath: &Path) -> Result<Vec<u8>, Errno> {
        mnt.fs.read().readlink(bytes(subpath)).map_err(Errno)
    }

    fn pread(&self, h: &Handle, buf: &mut [u8], off: i64) -> Result<usize, Errno> {
        let o = open_of(h)?;
        if o.flags & libc::O_PATH != 0 || o.flags & libc::O_ACCMODE == libc::O_WRONLY {
            return Err(Errno(libc::EBADF));
        }
        let now = self.now();
        let (n, due) = {
            let fs = o.mnt.fs.read();
            (fs.read(o.ino, buf, off).map_err(Errno)?, fs.atime_due(o.ino, now))
        };
        if due && o.flags & libc::O_NOATIME == 0 {
            o.mnt.fs.write().touch_atime(o.ino, now);
        }
        Ok(n)
    }

    fn pwrite(&self, h: &Handle, data: &[u8], off: i64) -> Result<usize, Errno> {
        let o = open_of(h)?;
        if o.flags & libc::O_PATH != 0 || o.flags & libc::O_ACCMODE == libc::O_RDONLY {
            return Err(Errno(libc::EBADF));
        }
        let (who, now) = (self.who(), self.now());
        let append = o.flags & libc::O_APPEND != 0;
        o.mnt.fs.write().write(o.ino, data, off, append, &who, now).map_err(Errno)
    }

    fn fstat(&self, h: &Handle) -> Result<vurs_stat, Errno> {
        let o = open_of(h)?;
        o.mnt.fs.read().stat(o.ino).map_err(Errno)
    }

    fn readdir(&self, h: &Handle, index: u64) -> Result<Option<(u64, u8, Vec<u8>)>, Errno> {
        let o = open_of(h)?;
        let mut cur = o.cursor.lock();
        // vurs asks again for an entry that did not fit the caller's buffer: continue from
        // the last entry's sequence number, so removals meanwhile shift nothing.
        let from = match *cur {
            Some((i, seq)) if index >= 2 && i == index => Some(seq.saturating_add(1)),
            Some((i, seq)) if index >= 2 && i + 1 == index => Some(seq),
            _ => None,
        };
        let hit = o.mnt.fs.read().readdir(o.ino, index, from).map_err(Errno)?;
        if index == 0 {
            o.mnt.fs.write().touch_atime(o.ino, self.now());
        }
        Ok(hit.map(|(entry, seq)| {
            *cur = Some((index, seq));
            entry
        }))
    }

    fn close(&self, h: Handle) {
        if let Ok(o) = open_of(&h) {
            o.mnt.fs.write().close(o.ino);
        }
    }

    fn mkdir(&self, mnt: &Arc<Mnt>, subpath: &Path, mode: u32) -> Result<(), Errno> {
        let (who, now) = (self.who(), self.now());
        e(mnt.fs.write().mkdir(bytes(subpath), mode, &who, now))
    }

    fn rmdir(&self, mnt: &Arc<Mnt>, subpath: &Path) -> Result<(), Errno> {
        e(mnt.fs.write().rmdir(bytes(subpath), self.now()))
    }

    fn unlink(&self, mnt: &Arc<Mnt>, subpath: &Path) -> Result<(), Errno> {
        e(mnt.fs.write().unlink(bytes(subpath), self.now()))
    }

    fn rename(&self, mnt: &Arc<Mnt>, from: &Path, to: &Path, flags: u32) -> Result<(), Errno> {
        e(mnt.fs.write().rename(bytes(from), bytes(to), flags, self.now()))
    }

    fn link(&self, mnt: &Arc<Mnt>, from: &Path, to: &Path) -> Result<(), Errno> {
        e(mnt.fs.write().link(bytes(from), bytes(to), self.now()))
    }

    fn symlink(&self, mnt: &Arc<Mnt>, target: &Path, subpath: &Path) -> Result<(), Errno> {
        let (who, now) = (self.who(), self.now());
        e(mnt.fs.write().symlink(bytes(target), bytes(subpath), &who, now))
    }

    fn mknod(&self, mnt: &Arc<Mnt>, subpath: &Path, mode: u32, rdev: u64) -> Result<(), Errno> {
        let (who, now) = (self.who(), self.now());
        e(mnt.fs.write().mknod(bytes(subpath), mode, rdev, &who, now))
    }

    fn chmod(&self, mnt: &Arc<Mnt>, subpath: &Path, h: Option<&Handle>, mode: u32) -> Result<(), Errno> {
        let ino = self.target(mnt, subpath, h)?;
        let (who, now) = (self.who(), self.now());
        e(mnt.fs.write().chmod(ino, mode, &who, now))
    }

    fn chown(
        &self,
        mnt: &Arc<Mnt>,
        subpath: &Path,
        h: Option<&Handle>,
        uid: u32,
        gid: u32,
    ) -> Result<(), Errno> {
        let ino = self.target(mnt, subpath, h)?;
        e(mnt.fs.write().chown(ino, uid, gid, self.now()))
    }

    fn truncate(&self, mnt: &Arc<Mnt>, subpath: &Path, h: Option<&Handle>, size: i64) -> Result<(), Errno> {
        if let Some(o) = h.map(open_of).transpose()? {
            if o.flags & libc::O_PATH != 0 || o.flags & libc::O_ACCMODE == libc::O_RDONLY {
                return Err(Errno(libc::EINVAL)); // ftruncate of a descriptor not open for writing
            }
        }
        let ino = self.target(mnt, subpath, h)?;
        let (who, now) = (self.who(), self.now());
        e(mnt.fs.write().truncate(ino, size, &who, now))
    }

    fn utimens(
        &self,
        mnt: &Arc<Mnt>,
        subpath: &Path,
        h: Option<&Handle>,
        times: &[vurs_timespec; 2],
    ) -> Result<(), Errno> {
        let ino = self.target(mnt, subpath, h)?;
        e(mnt.fs.write().utimens(ino, ts(&times[0]), ts(&times[1]), self.now()))
    }

    fn statfs(&self, mnt: &Arc<Mnt>, _subpath: &Path) -> Result<vurs_statfs, Errno> {
        Ok(mnt.fs.read().statfs())
    }

    fn fsync(&self, _h: &Handle, _datasync: bool) -> Result<(), Errno> {
        Ok(()) // memory is where the data lives
    }

    fn getxattr(
        &self,
        mnt: &Arc<Mnt>,
        subpath: &Path,
        h: Option<&Handle>,
        name: &[u8],
    ) -> Result<Vec<u8>, Errno> {
        let ino = self.target(mnt, subpath, h)?;
        mnt.fs.read().getxattr(ino, name, &self.who()).map_err(Errno)
    }

    fn setxattr(
        &self,
        mnt: &Arc<Mnt>,
        subpath: &Path,
        h: Option<&Handle>,
        name: &[u8],
        value: &[u8],
        flags: i32,
    ) -> Result<(), Errno> {
        let ino = self.target(mnt, subpath, h)?;
        let (who, now) = (self.who(), self.now());
        e(mnt.fs.write().setxattr(ino, name, value, flags, &who, now))
    }

    fn listxattr(&self, mnt: &Arc<Mnt>, subpath: &Path, h: Option<&Handle>) -> Result<Vec<u8>, Errno> {
        let ino = self.target(mnt, subpath, h)?;
        mnt.fs.read().listxattr(ino, &self.who()).map_err(Errno)
    }

    fn removexattr(
        &self,
        mnt: &Arc<Mnt>,
        subpath: &Path,
        h: Option<&Handle>,
        name: &[u8],
    ) -> Result<(), Errno> {
        let ino = self.target(mnt, subpath, h)?;
        let (who, now) = (self.who(), self.now());
        e(mnt.fs.write().removexattr(ino, name, &who, now))
    }
}

vurs_abi::export_module! {
    module: Tmpfs,
    name: "tmpfs",
    description: "in-memory read-write file system, as the kernel's tmpfs (size=, nr_inodes=, mode=, uid=, gid=)",
    // CREDS: owners of new files follow the caller's set*id calls (setpriv, su...)
    flags: VURS_F_PATH_SERVE | VURS_F_CREDS,
    syscalls: [],
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64M", 0), Some(64 << 20));
        assert_eq!(parse_size("4k", 0), Some(4096));
        assert_eq!(parse_size("100", 0), Some(100));
        assert_eq!(parse_size("50%", 1000), Some(500));
        assert_eq!(parse_size("1x", 0), None);
        assert_eq!(parse_size("", 0), None);
    }
}
