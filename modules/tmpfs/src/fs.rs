//! The in-memory file system behind one tmpfs mount: inodes, directories, sparse file
//! pages, and the operations with the kernel tmpfs's semantics (link counts, timestamps,
//! rename rules, size limit). It knows nothing of the module ABI: callers pass who acts
//! ([`Who`]) and the time ([`Ts`]), and get `Result<_, i32>` with a positive errno.
//!
//! Permission checks (search, write on the parent, sticky bit, ownership) are vurs's: it
//! applies the kernel's DAC rules to our stat answers before calling. What stays here is
//! what the kernel's VFS does to attributes itself: clearing set-id bits on write, chown
//! and chmod, set-gid directory inheritance, CAP_MKNOD and trusted.* xattrs.
use std::collections::{BTreeMap, HashMap};
use vurs_abi::{vurs_stat, vurs_statfs};

/// Page size of file contents: the unit of storage and of the size limit.
pub const PAGE: usize = 4096;
/// f_type of a tmpfs (TMPFS_MAGIC).
pub const TMPFS_MAGIC: u64 = 0x0102_1994;
/// The kernel's BOGO_DIRENT_SIZE: a tmpfs directory's size grows by this per entry.
const DIRENT_SIZE: i64 = 20;
/// Symlink targets this long or longer take a page (the kernel's SHORT_SYMLINK_LEN).
const SHORT_SYMLINK: usize = 128;
/// MAX_LFS_FILESIZE on 64-bit.
const MAX_FILE_SIZE: u64 = i64::MAX as u64;
/// Longest name in a directory.
const NAME_MAX: usize = 255;
/// Largest xattr value (XATTR_SIZE_MAX) and name (XATTR_NAME_MAX).
const XATTR_SIZE_MAX: usize = 65536;
const XATTR_NAME_MAX: usize = 255;

type R<T> = Result<T, i32>;
/// A directory entry as readdir gives it: (inode, d_type, name).
pub type Entry = (u64, u8, Vec<u8>);

/// A time stamp.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ts {
    pub sec: i64,
    pub nsec: u32,
}

/// Who makes a call: the ids the kernel's VFS would look at.
#[derive(Debug, Clone, Default)]
pub struct Who {
    pub euid: u32,
    pub fsuid: u32,
    pub fsgid: u32,
    pub groups: Vec<u32>,
}

impl Who {
    fn in_group(&self, gid: u32) -> bool {
        self.fsgid == gid || self.groups.contains(&gid)
    }
    /// CAP_FSETID, CAP_FOWNER...: the file-system capabilities follow the fsuid.
    fn fs_capable(&self) -> bool {
        self.fsuid == 0
    }
}

/// Mount-wide settings (from the mount options).
#[derive(Debug, Clone)]
pub struct Config {
    /// Pages the files may use (`size=`); `None`: unlimited.
    pub max_pages: Option<u64>,
    /// Inodes (`nr_inodes=`); `None`: unlimited.
    pub max_inodes: Option<u64>,
    pub root_mode: u32,
    pub root_uid: u32,
    pub root_gid: u32,
    pub dev: u64,
    pub read_only: bool,
}

enum Data {
    File {
        size: u64,
        pages: BTreeMap<u64, Box<[u8; PAGE]>>,
    },
    Dir(Dir),
    Symlink(Vec<u8>),
    /// fifo, socket, device: metadata only
    Node,
}

/// Entries by creation (`seq`, growing): the keys keep readdir positions stable while
/// entries come and go.
#[derive(Default)]
struct Dir {
    parent: u64,
    by_seq: BTreeMap<u64, (Vec<u8>, u64)>,
    by_name: HashMap<Vec<u8>, u64>,
    next_seq: u64,
}

impl Dir {
    fn get(&self, name: &[u8]) -> Option<u64> {
        self.by_name.get(name).map(|s| self.by_seq[s].1)
    }
    fn insert(&mut self, name: &[u8], ino: u64) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_seq.insert(seq, (name.to_vec(), ino));
        self.by_name.insert(name.to_vec(), seq);
    }
    fn remove(&mut self, name: &[u8]) -> Option<u64> {
        let seq = self.by_name.remove(name)?;
        self.by_seq.remove(&seq).map(|(_, ino)| ino)
    }
    /// Points an existing entry at another inode, in place (RENAME_EXCHANGE).
    fn repoint(&mut self, name: &[u8], ino: u64) {
        if let Some(s) = self.by_name.get(name) {
            if let Some(e) = self.by_seq.get_mut(s) {
                e.1 = ino;
            }
        }
    }
}

/// What [`Fs::create`] makes: type and permission bits, device number, contents.
struct NewNode {
    mode: u32,
    rdev: u64,
    data: Data,
}

struct Inode {
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u32,
    rdev: u64,
    atime: Ts,
    mtime: Ts,
    ctime: Ts,
    xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    data: Data,
    /// Open handles: the inode outlives its last name while one is open.
    opens: u32,
}

impl Inode {
    fn is_dir(&self) -> bool {
        matches!(self.data, Data::Dir(_))
    }
    fn dir(&self) -> R<&Dir> {
        match &self.data {
            Data::Dir(d) => Ok(d),
            _ => Err(libc::ENOTDIR),
        }
    }
    fn dir_mut(&mut self) -> R<&mut Dir> {
        match &mut self.data {
            Data::Dir(d) => Ok(d),
            _ => Err(libc::ENOTDIR),
        }
    }
    /// Pages counted against the size limit.
    fn pages(&self) -> u64 {
        match &self.data {
            Data::File { pages, .. } => pages.len() as u64,
            Data::Symlink(t) if t.len() >= SHORT_SYMLINK => 1,
            _ => 0,
        }
    }
    /// What writing to or truncating the file does to its set-id bits (file_remove_privs).
    fn kill_privs(&mut self, who: &Who) {
        if !who.fs_capable() {
            self.mode &= !kill_mask(self.mode);
        }
    }
}

/// The set-id bits a change of contents or owner clears: S_ISUID, and S_ISGID when group
/// execute is set (without it S_ISGID means mandatory locking, kept).
fn kill_mask(mode: u32) -> u32 {
    let mut m = libc::S_ISUID;
    if mode & libc::S_IXGRP != 0 {
        m |= libc::S_ISGID;
    }
    m
}

fn dtype(mode: u32) -> u8 {
    match mode & libc::S_IFMT {
        libc::S_IFREG => libc::DT_REG,
        libc::S_IFDIR => libc::DT_DIR,
        libc::S_IFLNK => libc::DT_LNK,
        libc::S_IFIFO => libc::DT_FIFO,
        libc::S_IFSOCK => libc::DT_SOCK,
        libc::S_IFCHR => libc::DT_CHR,
        libc::S_IFBLK => libc::DT_BLK,
        _ => libc::DT_UNKNOWN,
    }
}

/// Splits a canonical subpath ("" is the root) into its components. A trailing '/'
/// (which vurs may leave) is reported: the object must then be a directory.
fn components(path: &[u8]) -> (Vec<&[u8]>, bool) {
    let slash = path.ends_with(b"/");
    (path.split(|&b| b == b'/').filter(|c| !c.is_empty() && *c != b".").collect(), slash)
}

/// One mount's tree.
pub struct Fs {
    cfg: Config,
    inodes: HashMap<u64, Inode>,
    next_ino: u64,
    pages_used: u64,
}

pub const ROOT: u64 = 1;

/// What an open handle needs to know of its file.
pub struct Opened {
    pub ino: u64,
}

impl Fs {
    pub fn new(cfg: Config, now: Ts) -> Fs {
        let root = Inode {
            mode: libc::S_IFDIR | (cfg.root_mode & 0o7777),
            uid: cfg.root_uid,
            gid: cfg.root_gid,
            nlink: 2,
            rdev: 0,
            atime: now,
            mtime: now,
            ctime: now,
            xattrs: BTreeMap::new(),
            data: Data::Dir(Dir { parent: ROOT, ..Default::default() }),
            opens: 0,
        };
        let mut inodes = HashMap::new();
        inodes.insert(ROOT, root);
        Fs { cfg, inodes, next_ino: ROOT + 1, pages_used: 0 }
    }

    fn node(&self, ino: u64) -> R<&Inode> {
        self.inodes.get(&ino).ok_or(libc::ENOENT)
    }
    fn node_mut(&mut self, ino: u64) -> R<&mut Inode> {
        self.inodes.get_mut(&ino).ok_or(libc::ENOENT)
    }
    fn writable(&self) -> R<()> {
        if self.cfg.read_only {
            Err(libc::EROFS)
        } else {
            Ok(())
        }
    }

    /// The inode `path` names (a final symlink is not followed).
    pub fn lookup(&self, path: &[u8]) -> R<u64> {
        let (comps, slash) = components(path);
        let mut ino = ROOT;
        for c in comps {
            ino = self.node(ino)?.dir()?.get(c).ok_or(libc::ENOENT)?;
        }
        if slash && !self.node(ino)?.is_dir() {
            return Err(libc::ENOTDIR);
        }
        Ok(ino)
    }

    /// The directory holding the last component of `path`, and that name. The root has
    /// no parent here: EBUSY, what the kernel answers for removing or renaming a mount
    /// point. `dir_only` is set when a trailing '/' says the object must be a directory.
    fn parent<'p>(&self, path: &'p [u8]) -> R<(u64, &'p [u8], bool)> {
        let (mut comps, slash) = components(path);
        let name = comps.pop().ok_or(libc::EBUSY)?;
        if name == b".." {
            return Err(libc::ENOTEMPTY);
        }
        let mut ino = ROOT;
        for c in comps {
            ino = self.node(ino)?.dir()?.get(c).ok_or(libc::ENOENT)?;
        }
        self.node(ino)?.dir()?;
        if name.len() > NAME_MAX {
            return Err(libc::ENAMETOOLONG);
        }
        Ok((ino, name, slash))
    }

    pub fn stat(&self, ino: u64) -> R<vurs_stat> {
        let n = self.node(ino)?;
        let size = match &n.data {
            Data::File { size, .. } => *size as i64,
            Data::Dir(d) => 2 * DIRENT_SIZE + DIRENT_SIZE * d.by_seq.len() as i64,
            Data::Symlink(t) => t.len() as i64,
            Data::Node => 0,
        };
        Ok(vurs_stat {
            dev: self.cfg.dev,
            ino,
            mode: n.mode,
            nlink: n.nlink,
            uid: n.uid,
            gid: n.gid,
            rdev: n.rdev,
            size,
            blksize: PAGE as i64,
            blocks: n.pages() as i64 * (PAGE as i64 / 512),
            atime_sec: n.atime.sec,
            mtime_sec: n.mtime.sec,
            ctime_sec: n.ctime.sec,
            atime_nsec: n.atime.nsec,
            mtime_nsec: n.mtime.nsec,
            ctime_nsec: n.ctime.nsec,
            reserved: 0,
        })
    }

    pub fn readlink(&self, path: &[u8]) -> R<Vec<u8>> {
        match &self.node(self.lookup(path)?)?.data {
            Data::Symlink(t) => Ok(t.clone()),
            _ => Err(libc::EINVAL),
        }
    }

    fn inodes_used(&self) -> u64 {
        self.inodes.len() as u64
    }

    /// Makes a new inode named `name` in `dir`: owner from `who`, group and set-gid from a
    /// set-gid parent (inode_init_owner); the parent's mtime and ctime move.
    fn create(&mut self, dir: u64, name: &[u8], node: NewNode, who: &Who, now: Ts) -> R<u64> {
        let NewNode { mut mode, rdev, data } = node;
        if self.cfg.max_inodes.is_some_and(|m| self.inodes_used() >= m) {
            return Err(libc::ENOSPC);
        }
        let p = self.node(dir)?;
        if p.nlink == 0 {
            return Err(libc::ENOENT); // a removed directory takes no new entries
        }
        if p.dir()?.get(name).is_some() {
            return Err(libc::EEXIST);
        }
        let mut gid = who.fsgid;
        if p.mode & libc::S_ISGID != 0 {
            gid = p.gid;
            if mode & libc::S_IFMT == libc::S_IFDIR {
                mode |= libc::S_ISGID;
            } else if mode & (libc::S_ISGID | libc::S_IXGRP) == (libc::S_ISGID | libc::S_IXGRP)
                && !who.in_group(gid)
                && !who.fs_capable()
            {
                mode &= !libc::S_ISGID;
            }
        }
        let is_dir = matches!(data, Data::Dir(_));
        let pages = match &data {
            Data::Symlink(t) if t.len() >= SHORT_SYMLINK => 1,
            _ => 0,
        };
        self.reserve(pages)?;
        let ino = self.next_ino;
        self.next_ino += 1;
        self.inodes.insert(
            ino,
            Inode {
                mode,
                uid: who.fsuid,
                gid,
                nlink: if is_dir { 2 } else { 1 },
                rdev,
                atime: now,
                mtime: now,
                ctime: now,
                xattrs: BTreeMap::new(),
                data,
                opens: 0,
            },
        );
        let p = self.node_mut(dir)?;
        p.dir_mut()?.insert(name, ino);
        if is_dir {
            p.nlink += 1;
        }
        p.mtime = now;
        p.ctime = now;
        Ok(ino)
    }

    fn reserve(&mut self, pages: u64) -> R<()> {
        if self.cfg.max_pages.is_some_and(|m| self.pages_used + pages > m) {
            return Err(libc::ENOSPC);
        }
        self.pages_used += pages;
        Ok(())
    }

    /// Frees an inode once it has neither a name nor an open handle.
    fn maybe_free(&mut self, ino: u64) {
        if let Some(n) = self.inodes.get(&ino) {
            if n.nlink == 0 && n.opens == 0 && ino != ROOT {
                let pages = n.pages();
                self.inodes.remove(&ino);
                self.pages_used -= pages;
            }
        }
    }

    /// open(2) of `path`: creates it with O_CREAT; `mode` is already masked by the umask.
    pub fn open(&mut self, path: &[u8], flags: i32, mode: u32, who: &Who, now: Ts) -> R<Opened> {
        let acc = flags & libc::O_ACCMODE;
        let writes = acc == libc::O_WRONLY || acc == libc::O_RDWR;
        if flags & libc::O_TMPFILE == libc::O_TMPFILE {
            return self.tmpfile(path, writes, mode, who, now);
        }
        let ino = match self.lookup(path) {
            Ok(ino) => {
                if flags & libc::O_CREAT != 0 && flags & libc::O_EXCL != 0 {
                    return Err(libc::EEXIST);
                }
                ino
            }
            Err(libc::ENOENT) if flags & libc::O_CREAT != 0 => {
                self.writable()?;
                let (dir, name, slash) =
                    self.parent(path).map_err(|e| if e == libc::EBUSY { libc::EISDIR } else { e })?;
                if slash {
                    return Err(libc::EISDIR);
                }
                let data = Data::File { size: 0, pages: BTreeMap::new() };
                self.create(
                    dir,
                    name,
                    NewNode { mode: libc::S_IFREG | (mode & 0o7777), rdev: 0, data },
                    who,
                    now,
                )?
            }
            Err(e) => return Err(e),
        };
        let n = self.node(ino)?;
        let fmt = n.mode & libc::S_IFMT;
        if flags & libc::O_PATH == 0 {
            if fmt == libc::S_IFLNK {
                return Err(libc::ELOOP); // O_NOFOLLOW (vurs follows otherwise)
            }
            if fmt == libc::S_IFDIR && (writes || flags & libc::O_CREAT != 0) {
                return Err(libc::EISDIR);
            }
            match fmt {
                libc::S_IFSOCK => return Err(libc::ENXIO),
                // a fifo or device node would need the kernel object behind it
                libc::S_IFIFO | libc::S_IFCHR | libc::S_IFBLK => return Err(libc::EOPNOTSUPP),
                _ => {}
            }
        }
        if flags & libc::O_DIRECTORY != 0 && fmt != libc::S_IFDIR {
            return Err(libc::ENOTDIR);
        }
        if writes && flags & libc::O_PATH == 0 {
            self.writable()?;
        }
        if flags & libc::O_TRUNC != 0 && flags & libc::O_PATH == 0 && fmt == libc::S_IFREG {
            self.writable()?;
            self.set_size(ino, 0, who, now)?;
        }
        self.node_mut(ino)?.opens += 1;
        Ok(Opened { ino })
    }

    /// O_TMPFILE: an unnamed regular file in directory `path`, open for writing, freed at
    /// its last close.
    fn tmpfile(&mut self, path: &[u8], writes: bool, mode: u32, who: &Who, now: Ts) -> R<Opened> {
        if !writes {
            return Err(libc::EINVAL);
        }
        self.writable()?;
        let dir = self.lookup(path)?;
        let d = self.node(dir)?;
        d.dir()?;
        if d.nlink == 0 {
            return Err(libc::ENOENT);
        }
        if self.cfg.max_inodes.is_some_and(|m| self.inodes_used() >= m) {
            return Err(libc::ENOSPC);
        }
        let gid = if d.mode & libc::S_ISGID != 0 { d.gid } else { who.fsgid };
        let ino = self.next_ino;
        self.next_ino += 1;
        let data = Data::File { size: 0, pages: BTreeMap::new() };
        self.inodes.insert(
            ino,
            Inode {
                mode: libc::S_IFREG | (mode & 0o7777),
                uid: who.fsuid,
                gid,
                nlink: 0,
                rdev: 0,
                atime: now,
                mtime: now,
                ctime: now,
                xattrs: BTreeMap::new(),
                data,
                opens: 1,
            },
        );
        Ok(Opened { ino })
    }

    pub fn close(&mut self, ino: u64) {
        if let Some(n) = self.inodes.get_mut(&ino) {
            n.opens = n.opens.saturating_sub(1);
        }
        self.maybe_free(ino);
    }

    pub fn mkdir(&mut self, path: &[u8], mode: u32, who: &Who, now: Ts) -> R<()> {
        self.writable()?;
        let (dir, name, _) =
            self.parent(path).map_err(|e| if e == libc::EBUSY { libc::EEXIST } else { e })?;
        let data = Data::Dir(Dir { parent: dir, ..Default::default() });
        self.create(dir, name, NewNode { mode: libc::S_IFDIR | (mode & 0o1777), rdev: 0, data }, who, now)?;
        Ok(())
    }

    pub fn mknod(&mut self, path: &[u8], mode: u32, rdev: u64, who: &Who, now: Ts) -> R<()> {
        self.writable()?;
        let (dir, name, slash) =
            self.parent(path).map_err(|e| if e == libc::EBUSY { libc::EEXIST } else { e })?;
        let (fmt, data, rdev) = match mode & libc::S_IFMT {
            0 | libc::S_IFREG => (libc::S_IFREG, Data::File { size: 0, pages: BTreeMap::new() }, 0),
            libc::S_IFIFO | libc::S_IFSOCK => (mode & libc::S_IFMT, Data::Node, 0),
            f @ (libc::S_IFCHR | libc::S_IFBLK) => {
                if who.euid != 0 {
                    return Err(libc::EPERM); // CAP_MKNOD
                }
                (f, Data::Node, rdev)
            }
            libc::S_IFDIR => return Err(libc::EPERM),
            _ => return Err(libc::EINVAL),
        };
        if slash {
            return Err(if self.node(dir)?.dir()?.get(name).is_some() { libc::EEXIST } else { libc::ENOENT });
        }
        self.create(dir, name, NewNode { mode: fmt | (mode & 0o7777), rdev, data }, who, now)?;
        Ok(())
    }

    pub fn symlink(&mut self, target: &[u8], path: &[u8], who: &Who, now: Ts) -> R<()> {
        self.writable()?;
        if target.is_empty() {
            return Err(libc::ENOENT);
        }
        if target.len() >= PAGE {
            return Err(libc::ENAMETOOLONG);
        }
        let (dir, name, slash) =
            self.parent(path).map_err(|e| if e == libc::EBUSY { libc::EEXIST } else { e })?;
        if slash {
            return Err(if self.node(dir)?.dir()?.get(name).is_some() { libc::EEXIST } else { libc::ENOENT });
        }
        let data = Data::Symlink(target.to_vec());
        self.create(dir, name, NewNode { mode: libc::S_IFLNK | 0o777, rdev: 0, data }, who, now)?;
        Ok(())
    }

    pub fn link(&mut self, from: &[u8], to: &[u8], now: Ts) -> R<()> {
        self.writable()?;
        let ino = self.lookup(from)?;
        let (dir, name, slash) =
            self.parent(to).map_err(|e| if e == libc::EBUSY { libc::EEXIST } else { e })?;
        if self.node(dir)?.dir()?.get(name).is_some() {
            return Err(libc::EEXIST);
        }
        let n = self.node(ino)?;
        if n.is_dir() {
            return Err(libc::EPERM);
        }
        if slash {
            return Err(libc::ENOENT);
        }
        if n.nlink == 0 {
            return Err(libc::ENOENT);
        }
        if self.node(dir)?.nlink == 0 {
            return Err(libc::ENOENT);
        }
        let n = self.node_mut(ino)?;
        n.nlink += 1;
        n.ctime = now;
        let p = self.node_mut(dir)?;
        p.dir_mut()?.insert(name, ino);
        p.mtime = now;
        p.ctime = now;
        Ok(())
    }

    pub fn unlink(&mut self, path: &[u8], now: Ts) -> R<()> {
        self.writable()?;
        // the root and ".." are directories: EISDIR, as unlink(2) of one
        let (dir, name, slash) = self.parent(path).map_err(|e| match e {
            libc::ENOTEMPTY | libc::EBUSY => libc::EISDIR,
            e => e,
        })?;
        let ino = self.node(dir)?.dir()?.get(name).ok_or(libc::ENOENT)?;
        if self.node(ino)?.is_dir() {
            return Err(libc::EISDIR);
        }
        if slash {
            return Err(libc::ENOTDIR);
        }
        self.detach(dir, name, ino, now)
    }

    /// Removes the name `name` of `ino` from `dir` (no checks).
    fn detach(&mut self, dir: u64, name: &[u8], ino: u64, now: Ts) -> R<()> {
        let p = self.node_mut(dir)?;
        p.dir_mut()?.remove(name);
        p.mtime = now;
        p.ctime = now;
        let n = self.node_mut(ino)?;
        if n.is_dir() {
            n.nlink = 0;
            self.node_mut(dir)?.nlink -= 1;
        } else {
            n.nlink -= 1;
        }
        self.node_mut(ino)?.ctime = now;
        self.maybe_free(ino);
        Ok(())
    }

    pub fn rmdir(&mut self, path: &[u8], now: Ts) -> R<()> {
        self.writable()?;
        if components(path).0.last() == Some(&&b".."[..]) {
            return Err(libc::ENOTEMPTY);
        }
        let (dir, name, _) = self.parent(path)?;
        let ino = self.node(dir)?.dir()?.get(name).ok_or(libc::ENOENT)?;
        if !self.node(ino)?.dir()?.by_seq.is_empty() {
            return Err(libc::ENOTEMPTY);
        }
        self.detach(dir, name, ino, now)
    }

    /// Whether `anc` is `ino` or one of its ancestors.
    fn is_ancestor(&self, anc: u64, mut ino: u64) -> bool {
        loop {
            if ino == anc {
                return true;
            }
            match self.inodes.get(&ino).map(|n| &n.data) {
                Some(Data::Dir(d)) if d.parent != ino => ino = d.parent,
                _ => return false,
            }
        }
    }

    /// renameat2 with RENAME_NOREPLACE / RENAME_EXCHANGE, with the kernel's checks.
    pub fn rename(&mut self, from: &[u8], to: &[u8], flags: u32, now: Ts) -> R<()> {
        let (noreplace, exchange) = (libc::RENAME_NOREPLACE, libc::RENAME_EXCHANGE);
        if flags & !(noreplace | exchange | libc::RENAME_WHITEOUT) != 0
            || (flags & exchange != 0 && flags & (noreplace | libc::RENAME_WHITEOUT) != 0)
        {
            return Err(libc::EINVAL);
        }
        if flags & libc::RENAME_WHITEOUT != 0 {
            return Err(libc::EINVAL);
        }
        self.writable()?;
        let (sdir, sname, sslash) =
            self.parent(from).map_err(|e| if e == libc::ENOTEMPTY { libc::EBUSY } else { e })?;
        let (ddir, dname, dslash) = self.parent(to)?;
        let sino = self.node(sdir)?.dir()?.get(sname).ok_or(libc::ENOENT)?;
        let dino = self.node(ddir)?.dir()?.get(dname);
        let s_is_dir = self.node(sino)?.is_dir();
        if (sslash || (dslash && dino.is_none())) && !s_is_dir {
            return Err(libc::ENOTDIR);
        }
        if flags & exchange != 0 {
            let dino = dino.ok_or(libc::ENOENT)?;
            let d_is_dir = self.node(dino)?.is_dir();
            if dslash && !d_is_dir {
                return Err(libc::ENOTDIR);
            }
            if sino == dino {
                return Ok(());
            }
            if (s_is_dir && self.is_ancestor(sino, ddir)) || (d_is_dir && self.is_ancestor(dino, sdir)) {
                return Err(libc::EINVAL);
            }
            self.node_mut(sdir)?.dir_mut()?.repoint(sname, dino);
            self.node_mut(ddir)?.dir_mut()?.repoint(dname, sino);
            if sdir != ddir && s_is_dir != d_is_dir {
                // the directory among the two changes parent
                let (moved_to, moved_from) = if s_is_dir { (ddir, sdir) } else { (sdir, ddir) };
                self.node_mut(moved_to)?.nlink += 1;
                self.node_mut(moved_from)?.nlink -= 1;
            }
            for (ino, parent) in [(sino, ddir), (dino, sdir)] {
                if let Data::Dir(d) = &mut self.node_mut(ino)?.data {
                    d.parent = parent;
                }
                self.node_mut(ino)?.ctime = now;
            }
            for p in [sdir, ddir] {
                let p = self.node_mut(p)?;
                p.mtime = now;
                p.ctime = now;
            }
            return Ok(());
        }
        if let Some(dino) = dino {
            if flags & noreplace != 0 {
                return Err(libc::EEXIST);
            }
            if sino == dino {
                return Ok(()); // two names of one inode: nothing happens
            }
            let d_is_dir = self.node(dino)?.is_dir();
            if s_is_dir && self.is_ancestor(sino, ddir) {
                return Err(libc::EINVAL);
            }
            if d_is_dir && self.is_ancestor(dino, sdir) {
                return Err(libc::ENOTEMPTY);
            }
            match (s_is_dir, d_is_dir) {
                (true, false) => return Err(libc::ENOTDIR),
                (false, true) => return Err(libc::EISDIR),
                (true, true) if !self.node(dino)?.dir()?.by_seq.is_empty() => return Err(libc::ENOTEMPTY),
                _ => {}
            }
            self.detach(ddir, dname, dino, now)?;
        } else if s_is_dir && self.is_ancestor(sino, ddir) {
            return Err(libc::EINVAL);
        } else if self.node(ddir)?.nlink == 0 {
            return Err(libc::ENOENT);
        }
        self.node_mut(sdir)?.dir_mut()?.remove(sname);
        self.node_mut(ddir)?.dir_mut()?.insert(dname, sino);
        if s_is_dir && sdir != ddir {
            self.node_mut(sdir)?.nlink -= 1;
            self.node_mut(ddir)?.nlink += 1;
        }
        if let Data::Dir(d) = &mut self.node_mut(sino)?.data {
            d.parent = ddir;
        }
        self.node_mut(sino)?.ctime = now;
        for p in [sdir, ddir] {
            let p = self.node_mut(p)?;
            p.mtime = now;
            p.ctime = now;
        }
        Ok(())
    }

    pub fn chmod(&mut self, ino: u64, mode: u32, who: &Who, now: Ts) -> R<()> {
        self.writable()?;
        let n = self.node_mut(ino)?;
        if n.mode & libc::S_IFMT == libc::S_IFLNK {
            return Err(libc::EOPNOTSUPP);
        }
        let mut mode = mode & 0o7777;
        if !who.in_group(n.gid) && !who.fs_capable() {
            mode &= !libc::S_ISGID;
        }
        n.mode = (n.mode & libc::S_IFMT) | mode;
        n.ctime = now;
        Ok(())
    }

    pub fn chown(&mut self, ino: u64, uid: u32, gid: u32, now: Ts) -> R<()> {
        self.writable()?;
        let n = self.node_mut(ino)?;
        if uid != u32::MAX {
            n.uid = uid;
        }
        if gid != u32::MAX {
            n.gid = gid;
        }
        if !n.is_dir() {
            n.mode &= !kill_mask(n.mode);
        }
        n.ctime = now;
        Ok(())
    }

    /// utimensat: `None` leaves that time (UTIME_OMIT); ctime moves unless both are left.
    pub fn utimens(&mut self, ino: u64, atime: Option<Ts>, mtime: Option<Ts>, now: Ts) -> R<()> {
        if atime.is_none() && mtime.is_none() {
            return Ok(());
        }
        self.writable()?;
        let n = self.node_mut(ino)?;
        if let Some(t) = atime {
            n.atime = t;
        }
        if let Some(t) = mtime {
            n.mtime = t;
        }
        n.ctime = now;
        Ok(())
    }

    pub fn truncate(&mut self, ino: u64, size: i64, who: &Who, now: Ts) -> R<()> {
        if size < 0 {
            return Err(libc::EINVAL);
        }
        self.writable()?;
        self.set_size(ino, size as u64, who, now)
    }

    /// Sets a regular file's size: pages past it go, the tail of the last page is zeroed.
    /// mtime and ctime move even when the size stays (as the kernel's tmpfs on 6.x).
    fn set_size(&mut self, ino: u64, size: u64, who: &Who, now: Ts) -> R<()> {
        if size > MAX_FILE_SIZE {
            return Err(libc::EFBIG);
        }
        let n = self.inodes.get_mut(&ino).ok_or(libc::ENOENT)?;
        let (old, pages) = match &mut n.data {
            Data::File { size, pages } => (size, pages),
            Data::Dir(_) => return Err(libc::EISDIR),
            _ => return Err(libc::EINVAL),
        };
        if size < *old {
            let keep = size.div_ceil(PAGE as u64);
            let gone = pages.split_off(&keep).len() as u64;
            if size & (PAGE as u64 - 1) != 0 {
                if let Some(p) = pages.get_mut(&(size / PAGE as u64)) {
                    p[(size % PAGE as u64) as usize..].fill(0);
                }
            }
            self.pages_used -= gone;
        }
        *old = size;
        n.mtime = now;
        n.ctime = now;
        n.kill_privs(who);
        Ok(())
    }

    /// Reads at `off`; holes read as zeros. Returns the number of bytes read.
    pub fn read(&self, ino: u64, buf: &mut [u8], off: i64) -> R<usize> {
        if off < 0 {
            return Err(libc::EINVAL);
        }
        let n = self.node(ino)?;
        let (size, pages) = match &n.data {
            Data::File { size, pages } => (*size, pages),
            Data::Dir(_) => return Err(libc::EISDIR),
            _ => return Err(libc::EINVAL),
        };
        let off = off as u64;
        if off >= size {
            return Ok(0);
        }
        let len = (buf.len() as u64).min(size - off) as usize;
        let mut done = 0;
        while done < len {
            let pos = off + done as u64;
            let (pg, within) = (pos / PAGE as u64, (pos % PAGE as u64) as usize);
            let chunk = (PAGE - within).min(len - done);
            match pages.get(&pg) {
                Some(p) => buf[done..done + chunk].copy_from_slice(&p[within..within + chunk]),
                None => buf[done..done + chunk].fill(0),
            }
            done += chunk;
        }
        Ok(len)
    }

    /// Whether a read now should move the atime (relatime: when it is not newer than
    /// mtime or ctime, or a day old).
    pub fn atime_due(&self, ino: u64, now: Ts) -> bool {
        self.node(ino)
            .is_ok_and(|n| n.atime <= n.mtime || n.atime <= n.ctime || now.sec - n.atime.sec >= 86400)
    }

    pub fn touch_atime(&mut self, ino: u64, now: Ts) {
        if !self.cfg.read_only && self.atime_due(ino, now) {
            if let Some(n) = self.inodes.get_mut(&ino) {
                n.atime = now;
            }
        }
    }

    /// Writes at `off` (at the end with `append`). A write that runs out of space stops at
    /// the last whole page it could get: a short count, or ENOSPC if nothing fit.
    pub fn write(&mut self, ino: u64, data: &[u8], off: i64, append: bool, who: &Who, now: Ts) -> R<usize> {
        if off < 0 {
            return Err(libc::EINVAL);
        }
        self.writable()?;
        let max = self.cfg.max_pages;
        let used = self.pages_used;
        let n = self.inodes.get_mut(&ino).ok_or(libc::ENOENT)?;
        let (size, pages) = match &mut n.data {
            Data::File { size, pages } => (size, pages),
            Data::Dir(_) => return Err(libc::EISDIR),
            _ => return Err(libc::EINVAL),
        };
        let off = if append { *size } else { off as u64 };
        if data.is_empty() {
            return Ok(0);
        }
        if off >= MAX_FILE_SIZE {
            return Err(libc::EFBIG);
        }
        let len = (data.len() as u64).min(MAX_FILE_SIZE - off) as usize;
        let mut done = 0;
        let mut added = 0u64;
        while done < len {
            let pos = off + done as u64;
            let (pg, within) = (pos / PAGE as u64, (pos % PAGE as u64) as usize);
            let chunk = (PAGE - within).min(len - done);
            let page = match pages.get_mut(&pg) {
                Some(p) => p,
                None => {
                    if max.is_some_and(|m| used + added >= m) {
                        break;
                    }
                    added += 1;
                    pages.entry(pg).or_insert_with(|| Box::new([0u8; PAGE]))
                }
            };
            page[within..within + chunk].copy_from_slice(&data[done..done + chunk]);
            done += chunk;
        }
        if done > 0 {
            *size = (*size).max(off + done as u64);
            n.mtime = now;
            n.ctime = now;
            n.kill_privs(who);
        }
        self.pages_used += added;
        if done == 0 {
            return Err(libc::ENOSPC);
        }
        Ok(done)
    }

    /// Directory entry number `index` of `ino`: 0 ".", 1 "..", then the entries newest
    /// first, as the kernel's tmpfs lists them. With a `cursor` the entry is the newest one
    /// whose sequence number is below it (none given: counted from the start). Returns the
    /// entry and its sequence number (u64::MAX for the dots).
    pub fn readdir(&self, ino: u64, index: u64, cursor: Option<u64>) -> R<Option<(Entry, u64)>> {
        let n = self.node(ino)?;
        let d = n.dir()?;
        if n.nlink == 0 {
            return Ok(None); // removed while open: empty, as in the kernel
        }
        match index {
            0 => return Ok(Some(((ino, libc::DT_DIR, b".".to_vec()), u64::MAX))),
            1 => return Ok(Some(((d.parent, libc::DT_DIR, b"..".to_vec()), u64::MAX))),
            _ => {}
        }
        let hit = match cursor {
            Some(seq) => d.by_seq.range(..seq).next_back(),
            None => d.by_seq.iter().rev().nth((index - 2) as usize),
        };
        Ok(hit.map(|(seq, (name, child))| {
            let t = self.inodes.get(child).map_or(libc::DT_UNKNOWN, |c| dtype(c.mode));
            ((*child, t, name.clone()), *seq)
        }))
    }

    pub fn statfs(&self) -> vurs_statfs {
        let blocks = self.cfg.max_pages.unwrap_or(0);
        let files = self.cfg.max_inodes.unwrap_or(0);
        let bfree = blocks.saturating_sub(self.pages_used);
        let mut flags = libc::ST_RELATIME | 0x20; // ST_VALID
        if self.cfg.read_only {
            flags |= libc::ST_RDONLY;
        }
        vurs_statfs {
            type_: TMPFS_MAGIC,
            bsize: PAGE as u64,
            frsize: PAGE as u64,
            blocks,
            bfree,
            bavail: bfree,
            files,
            ffree: files.saturating_sub(self.inodes_used()),
            namelen: NAME_MAX as u64,
            flags,
        }
    }

    // ---- extended attributes ----

    /// Checks an xattr name for `ino`: the namespaces a tmpfs has (user., trusted.,
    /// security.), trusted.* only for the privileged, security.* changed only by them,
    /// user.* only on files and dirs.
    fn xattr_ok(&self, ino: u64, name: &[u8], who: &Who, writes: bool) -> R<()> {
        if name.len() > XATTR_NAME_MAX {
            return Err(libc::ERANGE);
        }
        let rest = if let Some(r) = name.strip_prefix(b"user.") {
            let fmt = self.node(ino)?.mode & libc::S_IFMT;
            if fmt != libc::S_IFREG && fmt != libc::S_IFDIR {
                return Err(if writes { libc::EPERM } else { libc::ENODATA });
            }
            r
        } else if let Some(r) = name.strip_prefix(b"trusted.") {
            if who.euid != 0 {
                return Err(if writes { libc::EPERM } else { libc::ENODATA });
            }
            r
        } else if let Some(r) = name.strip_prefix(b"security.") {
            // without an LSM to say otherwise, changing them takes CAP_SYS_ADMIN
            if writes && who.euid != 0 {
                return Err(libc::EPERM);
            }
            r
        } else {
            return Err(libc::EOPNOTSUPP);
        };
        if rest.is_empty() {
            return Err(libc::EINVAL);
        }
        Ok(())
    }

    pub fn getxattr(&self, ino: u64, name: &[u8], who: &Who) -> R<Vec<u8>> {
        self.xattr_ok(ino, name, who, false)?;
        self.node(ino)?.xattrs.get(name).cloned().ok_or(libc::ENODATA)
    }

    pub fn setxattr(&mut self, ino: u64, name: &[u8], value: &[u8], flags: i32, who: &Who, now: Ts) -> R<()> {
        if flags & !(libc::XATTR_CREATE | libc::XATTR_REPLACE) != 0 {
            return Err(libc::EINVAL);
        }
        if value.len() > XATTR_SIZE_MAX {
            return Err(libc::E2BIG);
        }
        self.writable()?;
        self.xattr_ok(ino, name, who, true)?;
        let n = self.node_mut(ino)?;
        let exists = n.xattrs.contains_key(name);
        if flags & libc::XATTR_CREATE != 0 && exists {
            return Err(libc::EEXIST);
        }
        if flags & libc::XATTR_REPLACE != 0 && !exists {
            return Err(libc::ENODATA);
        }
        n.xattrs.insert(name.to_vec(), value.to_vec());
        n.ctime = now;
        Ok(())
    }

    /// The names, each NUL-terminated; trusted.* only for the privileged.
    pub fn listxattr(&self, ino: u64, who: &Who) -> R<Vec<u8>> {
        let mut out = Vec::new();
        for k in self.node(ino)?.xattrs.keys() {
            if k.starts_with(b"trusted.") && who.euid != 0 {
                continue;
            }
            out.extend_from_slice(k);
            out.push(0);
        }
        Ok(out)
    }

    pub fn removexattr(&mut self, ino: u64, name: &[u8], who: &Who, now: Ts) -> R<()> {
        self.writable()?;
        self.xattr_ok(ino, name, who, true)?;
        let n = self.node_mut(ino)?;
        n.xattrs.remove(name).ok_or(libc::ENODATA)?;
        n.ctime = now;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
