//! The tree's semantics, checked without vurs (tests/tmpfs.rs compares with the kernel's
//! tmpfs end to end).
use super::*;

fn cfg(max_pages: Option<u64>) -> Config {
    Config {
        max_pages,
        max_inodes: None,
        root_mode: 0o1777,
        root_uid: 0,
        root_gid: 0,
        dev: 42,
        read_only: false,
    }
}
fn t(s: i64) -> Ts {
    Ts { sec: s, nsec: 0 }
}
fn user() -> Who {
    Who { euid: 1000, fsuid: 1000, fsgid: 1000, groups: vec![] }
}
fn root() -> Who {
    Who::default()
}
fn mkfile(fs: &mut Fs, p: &str, data: &[u8]) -> u64 {
    let o = fs.open(p.as_bytes(), libc::O_CREAT | libc::O_WRONLY, 0o644, &user(), t(1)).unwrap();
    fs.write(o.ino, data, 0, false, &user(), t(1)).unwrap();
    fs.close(o.ino);
    o.ino
}
fn names(fs: &Fs, p: &str) -> Vec<String> {
    let ino = fs.lookup(p.as_bytes()).unwrap();
    let mut out = vec![];
    let mut i = 0;
    while let Some(((_, _, n), _)) = fs.readdir(ino, i, None).unwrap() {
        out.push(String::from_utf8(n).unwrap());
        i += 1;
    }
    out
}

#[test]
fn create_write_read_and_owner() {
    let mut fs = Fs::new(cfg(None), t(0));
    let ino = mkfile(&mut fs, "a", b"hello");
    let st = fs.stat(ino).unwrap();
    assert_eq!((st.size, st.uid, st.gid, st.nlink, st.mode), (5, 1000, 1000, 1, libc::S_IFREG | 0o644));
    let mut buf = [0u8; 10];
    assert_eq!(fs.read(ino, &mut buf, 1).unwrap(), 4);
    assert_eq!(&buf[..4], b"ello");
    assert_eq!(fs.stat(ROOT).unwrap().mtime_sec, 1, "parent mtime moves on create");
    assert_eq!(fs.open(b"a", libc::O_CREAT | libc::O_EXCL, 0o600, &user(), t(2)).err(), Some(libc::EEXIST));
    assert_eq!(fs.open(b"a/", 0, 0, &user(), t(2)).err(), Some(libc::ENOTDIR));
    assert_eq!(fs.open(b"nope/x", libc::O_CREAT, 0, &user(), t(2)).err(), Some(libc::ENOENT));
    assert_eq!(fs.open(b"a/x", libc::O_CREAT, 0, &user(), t(2)).err(), Some(libc::ENOTDIR));
}

#[test]
fn sparse_file_costs_one_page() {
    let mut fs = Fs::new(cfg(Some(4)), t(0));
    let ino = mkfile(&mut fs, "s", b"");
    fs.truncate(ino, 1 << 30, &user(), t(2)).unwrap();
    fs.write(ino, b"end", (1 << 30) - 3, false, &user(), t(3)).unwrap();
    let st = fs.stat(ino).unwrap();
    assert_eq!((st.size, st.blocks), (1 << 30, 8));
    let mut buf = [1u8; 8];
    assert_eq!(fs.read(ino, &mut buf, 4096 * 7).unwrap(), 8);
    assert_eq!(buf, [0; 8]);
    // shrinking zeroes the tail and frees pages
    fs.truncate(ino, (1 << 30) - 2, &user(), t(4)).unwrap();
    fs.truncate(ino, 1 << 30, &user(), t(5)).unwrap();
    let mut tail = [9u8; 3];
    fs.read(ino, &mut tail, (1 << 30) - 3).unwrap();
    assert_eq!(&tail, b"e\0\0");
    fs.truncate(ino, 0, &user(), t(6)).unwrap();
    assert_eq!(fs.pages_used, 0);
}

#[test]
fn size_limit_gives_short_write_then_enospc() {
    let mut fs = Fs::new(cfg(Some(2)), t(0));
    let ino = mkfile(&mut fs, "f", b"");
    assert_eq!(fs.write(ino, &[7u8; 3 * PAGE], 0, false, &user(), t(1)), Ok(2 * PAGE));
    assert_eq!(fs.write(ino, b"x", 2 * PAGE as i64, false, &user(), t(1)), Err(libc::ENOSPC));
    assert_eq!(fs.statfs().bfree, 0);
    fs.unlink(b"f", t(2)).unwrap();
    assert_eq!(fs.statfs().bfree, 2);
}

#[test]
fn directories_and_nlink() {
    let mut fs = Fs::new(cfg(None), t(0));
    fs.mkdir(b"d", 0o755, &user(), t(1)).unwrap();
    fs.mkdir(b"d/e", 0o755, &user(), t(1)).unwrap();
    assert_eq!(fs.stat(ROOT).unwrap().nlink, 3);
    assert_eq!(fs.stat(fs.lookup(b"d").unwrap()).unwrap().nlink, 3);
    assert_eq!(fs.rmdir(b"d", t(2)), Err(libc::ENOTEMPTY));
    assert_eq!(fs.mkdir(b"d", 0o755, &user(), t(2)), Err(libc::EEXIST));
    assert_eq!(fs.unlink(b"d", t(2)), Err(libc::EISDIR));
    mkfile(&mut fs, "f", b"");
    assert_eq!(fs.rmdir(b"f", t(2)), Err(libc::ENOTDIR));
    fs.rmdir(b"d/e", t(3)).unwrap();
    fs.rmdir(b"d", t(3)).unwrap();
    assert_eq!(fs.stat(ROOT).unwrap().nlink, 2);
    assert_eq!(fs.rmdir(b"", t(3)), Err(libc::EBUSY));
    assert_eq!(fs.unlink(b"", t(3)), Err(libc::EISDIR));
}

#[test]
fn hard_links_and_unlink_with_open_handle() {
    let mut fs = Fs::new(cfg(Some(10)), t(0));
    let ino = mkfile(&mut fs, "a", b"data");
    fs.link(b"a", b"b", t(5)).unwrap();
    let st = fs.stat(ino).unwrap();
    assert_eq!((st.nlink, st.ctime_sec), (2, 5));
    assert_eq!(fs.link(b"a", b"b", t(5)), Err(libc::EEXIST));
    fs.mkdir(b"d", 0o755, &user(), t(1)).unwrap();
    assert_eq!(fs.link(b"d", b"d2", t(5)), Err(libc::EPERM));
    let o = fs.open(b"a", libc::O_RDONLY, 0, &user(), t(6)).unwrap();
    fs.unlink(b"a", t(7)).unwrap();
    fs.unlink(b"b", t(7)).unwrap();
    assert_eq!(fs.stat(ino).unwrap().nlink, 0);
    let mut buf = [0u8; 4];
    assert_eq!(fs.read(o.ino, &mut buf, 0), Ok(4));
    assert_eq!(fs.pages_used, 1);
    fs.close(o.ino);
    assert_eq!(fs.stat(ino).err(), Some(libc::ENOENT));
    assert_eq!(fs.pages_used, 0);
}

#[test]
fn rename_rules() {
    let mut fs = Fs::new(cfg(None), t(0));
    fs.mkdir(b"d", 0o755, &user(), t(1)).unwrap();
    fs.mkdir(b"d/sub", 0o755, &user(), t(1)).unwrap();
    fs.mkdir(b"e", 0o755, &user(), t(1)).unwrap();
    let f = mkfile(&mut fs, "f", b"1");
    mkfile(&mut fs, "g", b"2");
    assert_eq!(fs.rename(b"d", b"d/sub/x", 0, t(2)), Err(libc::EINVAL));
    assert_eq!(fs.rename(b"d", b"d", 0, t(2)), Ok(()));
    assert_eq!(fs.rename(b"f", b"d", 0, t(2)), Err(libc::EISDIR));
    assert_eq!(fs.rename(b"d", b"f", 0, t(2)), Err(libc::ENOTDIR));
    assert_eq!(fs.rename(b"e", b"d", 0, t(2)), Err(libc::ENOTEMPTY));
    assert_eq!(fs.rename(b"d/sub", b"d", 0, t(2)), Err(libc::ENOTEMPTY));
    assert_eq!(fs.rename(b"f", b"g", libc::RENAME_NOREPLACE, t(2)), Err(libc::EEXIST));
    assert_eq!(fs.rename(b"f", b"zz", libc::RENAME_EXCHANGE, t(2)), Err(libc::ENOENT));
    assert_eq!(fs.rename(b"nope", b"zz", 0, t(2)), Err(libc::ENOENT));
    assert_eq!(
        fs.rename(b"f", b"g", libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE, t(2)),
        Err(libc::EINVAL)
    );
    // over an existing file: the old one goes
    fs.rename(b"f", b"g", 0, t(3)).unwrap();
    assert_eq!(fs.lookup(b"g"), Ok(f));
    assert_eq!(fs.stat(f).unwrap().ctime_sec, 3);
    // a directory moves between parents: link counts follow
    fs.rename(b"d/sub", b"e/sub", 0, t(4)).unwrap();
    assert_eq!(fs.stat(fs.lookup(b"d").unwrap()).unwrap().nlink, 2);
    assert_eq!(fs.stat(fs.lookup(b"e").unwrap()).unwrap().nlink, 3);
    let sub = fs.lookup(b"e/sub").unwrap();
    assert_eq!(fs.readdir(sub, 1, None).unwrap().unwrap().0 .0, fs.lookup(b"e").unwrap());
    // over an empty directory
    fs.rename(b"e/sub", b"d", 0, t(5)).unwrap();
    assert_eq!(fs.stat(ROOT).unwrap().nlink, 4);
    // exchange a file and a directory across parents
    fs.rename(b"g", b"d", libc::RENAME_EXCHANGE, t(6)).unwrap();
    assert_eq!(fs.lookup(b"d"), Ok(f));
    assert_eq!(fs.stat(fs.lookup(b"g").unwrap()).unwrap().mode & libc::S_IFMT, libc::S_IFDIR);
}

#[test]
fn readdir_is_stable_under_unlink() {
    let mut fs = Fs::new(cfg(None), t(0));
    for n in ["a", "b", "c", "d"] {
        mkfile(&mut fs, n, b"");
    }
    assert_eq!(names(&fs, ""), [".", "..", "d", "c", "b", "a"]);
    // read ".", "..", "d" with a cursor, then remove "d" and "c": "b" comes next, not "a"
    let mut cur = None;
    for i in 0..3 {
        cur = fs.readdir(ROOT, i, cur).unwrap().map(|(_, s)| s);
    }
    fs.unlink(b"d", t(1)).unwrap();
    fs.unlink(b"c", t(1)).unwrap();
    let next = fs.readdir(ROOT, 3, cur).unwrap().unwrap();
    assert_eq!(next.0 .2, b"b");
}

#[test]
fn setgid_directories_and_chmod_chown() {
    let mut fs = Fs::new(cfg(None), t(0));
    fs.mkdir(b"g", 0o2775, &root(), t(1)).unwrap();
    let g = fs.lookup(b"g").unwrap();
    fs.chown(g, 0, 50, t(1)).unwrap();
    fs.chmod(g, 0o2777, &root(), t(1)).unwrap();
    fs.mkdir(b"g/sub", 0o755, &user(), t(2)).unwrap();
    let sub = fs.stat(fs.lookup(b"g/sub").unwrap()).unwrap();
    assert_eq!((sub.gid, sub.mode & 0o7777), (50, 0o2755));
    let f = mkfile(&mut fs, "g/f", b"x");
    assert_eq!(fs.stat(f).unwrap().gid, 50);
    // a non-member cannot set S_ISGID for a group it is not in
    fs.chmod(f, 0o2755, &user(), t(3)).unwrap();
    assert_eq!(fs.stat(f).unwrap().mode & 0o7777, 0o755);
    // chown clears set-id bits of a file, even as root
    fs.chmod(f, 0o6755, &root(), t(3)).unwrap();
    fs.chown(f, u32::MAX, u32::MAX, t(4)).unwrap();
    let st = fs.stat(f).unwrap();
    assert_eq!((st.mode & 0o7777, st.ctime_sec), (0o755, 4));
    // a write by a non-root user clears S_ISUID
    fs.chmod(f, 0o4755, &root(), t(5)).unwrap();
    fs.write(f, b"y", 0, false, &user(), t(6)).unwrap();
    assert_eq!(fs.stat(f).unwrap().mode & 0o7777, 0o755);
}

#[test]
fn times_follow_the_kernel() {
    let mut fs = Fs::new(cfg(None), t(0));
    let f = mkfile(&mut fs, "f", b"x");
    fs.truncate(f, 1, &user(), t(5)).unwrap();
    assert_eq!(fs.stat(f).unwrap().mtime_sec, 5, "same size: the times move all the same");
    fs.utimens(f, Some(t(100)), None, t(7)).unwrap();
    let st = fs.stat(f).unwrap();
    assert_eq!((st.atime_sec, st.mtime_sec, st.ctime_sec), (100, 5, 7));
    fs.utimens(f, None, None, t(9)).unwrap();
    assert_eq!(fs.stat(f).unwrap().ctime_sec, 7);
    // O_TRUNC moves mtime even on an empty file
    fs.truncate(f, 0, &user(), t(10)).unwrap();
    let o = fs.open(b"f", libc::O_WRONLY | libc::O_TRUNC, 0, &user(), t(11)).unwrap();
    assert_eq!(fs.stat(f).unwrap().mtime_sec, 11);
    fs.close(o.ino);
}

#[test]
fn symlinks_and_nodes() {
    let mut fs = Fs::new(cfg(Some(5)), t(0));
    fs.symlink(b"target", b"l", &user(), t(1)).unwrap();
    assert_eq!(fs.readlink(b"l").unwrap(), b"target");
    let st = fs.stat(fs.lookup(b"l").unwrap()).unwrap();
    assert_eq!((st.size, st.mode, st.blocks), (6, libc::S_IFLNK | 0o777, 0));
    assert_eq!(fs.symlink(b"x", b"l", &user(), t(1)), Err(libc::EEXIST));
    assert_eq!(fs.symlink(b"", b"m", &user(), t(1)), Err(libc::ENOENT));
    fs.symlink(&[b'x'; 200], b"long", &user(), t(1)).unwrap();
    assert_eq!(fs.stat(fs.lookup(b"long").unwrap()).unwrap().blocks, 8);
    assert_eq!(fs.readlink(b""), Err(libc::EINVAL));
    assert_eq!(fs.open(b"l", libc::O_NOFOLLOW, 0, &user(), t(1)).err(), Some(libc::ELOOP));
    fs.mknod(b"p", libc::S_IFIFO | 0o644, 0, &user(), t(1)).unwrap();
    assert_eq!(fs.open(b"p", libc::O_RDONLY, 0, &user(), t(1)).err(), Some(libc::EOPNOTSUPP));
    assert!(fs.open(b"p", libc::O_PATH, 0, &user(), t(1)).is_ok());
    assert_eq!(fs.mknod(b"c", libc::S_IFCHR | 0o644, 0x103, &user(), t(1)), Err(libc::EPERM));
    fs.mknod(b"c", libc::S_IFCHR | 0o644, 0x103, &root(), t(1)).unwrap();
    assert_eq!(fs.stat(fs.lookup(b"c").unwrap()).unwrap().rdev, 0x103);
}

#[test]
fn xattrs() {
    let mut fs = Fs::new(cfg(None), t(0));
    let f = mkfile(&mut fs, "f", b"");
    fs.setxattr(f, b"user.a", b"1", 0, &user(), t(2)).unwrap();
    assert_eq!(fs.setxattr(f, b"user.a", b"2", libc::XATTR_CREATE, &user(), t(2)), Err(libc::EEXIST));
    assert_eq!(fs.setxattr(f, b"user.b", b"2", libc::XATTR_REPLACE, &user(), t(2)), Err(libc::ENODATA));
    assert_eq!(fs.setxattr(f, b"trusted.t", b"2", 0, &user(), t(2)), Err(libc::EPERM));
    fs.setxattr(f, b"trusted.t", b"3", 0, &root(), t(2)).unwrap();
    assert_eq!(fs.setxattr(f, b"security.s", b"2", 0, &user(), t(2)), Err(libc::EPERM));
    fs.setxattr(f, b"security.s", b"2", 0, &root(), t(2)).unwrap();
    assert_eq!(fs.getxattr(f, b"security.s", &user()).unwrap(), b"2");
    assert_eq!(fs.setxattr(f, b"bogus.x", b"", 0, &root(), t(2)), Err(libc::EOPNOTSUPP));
    assert_eq!(fs.getxattr(f, b"user.a", &user()).unwrap(), b"1");
    assert_eq!(fs.getxattr(f, b"user.zz", &user()), Err(libc::ENODATA));
    assert_eq!(fs.listxattr(f, &user()).unwrap(), b"security.s\0user.a\0");
    assert_eq!(fs.listxattr(f, &root()).unwrap(), b"security.s\0trusted.t\0user.a\0");
    fs.removexattr(f, b"user.a", &user(), t(3)).unwrap();
    assert_eq!(fs.removexattr(f, b"user.a", &user(), t(3)), Err(libc::ENODATA));
    assert_eq!(fs.stat(f).unwrap().ctime_sec, 3);
}

#[test]
fn read_only_and_inode_limit() {
    let mut c = cfg(None);
    c.max_inodes = Some(2);
    let mut fs = Fs::new(c, t(0));
    mkfile(&mut fs, "a", b"");
    assert_eq!(fs.mkdir(b"d", 0o755, &user(), t(1)), Err(libc::ENOSPC));
    let mut c = cfg(None);
    c.read_only = true;
    let mut fs = Fs::new(c, t(0));
    assert_eq!(fs.mkdir(b"d", 0o755, &user(), t(1)), Err(libc::EROFS));
    assert_eq!(fs.open(b"a", libc::O_CREAT | libc::O_WRONLY, 0o644, &user(), t(1)).err(), Some(libc::EROFS));
    assert_eq!(fs.statfs().flags & libc::ST_RDONLY, libc::ST_RDONLY);
}

#[test]
fn tmpfile_is_unnamed_and_freed_at_close() {
    let mut fs = Fs::new(cfg(Some(10)), t(0));
    fs.mkdir(b"d", 0o755, &user(), t(1)).unwrap();
    assert_eq!(
        fs.open(b"d", libc::O_TMPFILE | libc::O_RDONLY, 0o600, &user(), t(2)).err(),
        Some(libc::EINVAL)
    );
    let o = fs.open(b"d", libc::O_TMPFILE | libc::O_RDWR, 0o600, &user(), t(2)).unwrap();
    fs.write(o.ino, b"abc", 0, false, &user(), t(3)).unwrap();
    let st = fs.stat(o.ino).unwrap();
    assert_eq!((st.nlink, st.size, st.mode), (0, 3, libc::S_IFREG | 0o600));
    assert_eq!(names(&fs, "d"), [".", ".."]);
    assert_eq!(fs.stat(fs.lookup(b"d").unwrap()).unwrap().mtime_sec, 1);
    fs.close(o.ino);
    assert_eq!((fs.stat(o.ino).err(), fs.pages_used), (Some(libc::ENOENT), 0));
}
