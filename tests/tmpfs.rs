//! The tmpfs module against the kernel's tmpfs, differentially: each script runs natively
//! in a fresh directory of a real tmpfs (/dev/shm) and under `vurs --mount
//! type=tmpfs,target=T` on the same path T, on both engines; stdout, stderr and the exit
//! status must agree. Scripts print what a tmpfs determines (sizes, blocks, link counts,
//! modes, owners, errno texts, the order of times), never inode numbers, devices or clock
//! readings, which differ between any two tmpfs mounts.
mod common;
use common::*;
use std::process::{Command, Output};

/// The engines every case runs on: the default one and ptrace.
const ENGINES: [Option<&str>; 2] = [None, Some("ptrace")];

/// What a run printed and how it ended.
#[derive(Debug, PartialEq, Eq)]
struct Run {
    status: Option<i32>,
    stdout: String,
    stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run { status: o.status.code(), stdout: stdout(&o), stderr: stderr(&o) }
    }
}

/// A directory path on the host's real tmpfs, unique to this test and process.
fn shm_path(name: &str) -> String {
    format!("/dev/shm/vurs-tmpfs-{name}-{}", std::process::id())
}

/// An empty host directory to run in, so that a relative path a script gets wrong lands
/// there and not in the host's /.
fn scratch_cwd() -> TempDir {
    TempDir::new("tmpfs-cwd")
}

fn sh(script: &str, t: &str, cwd: &TempDir) -> Command {
    let mut c = Command::new("/bin/sh");
    c.args(["-c", script]).env("T", t).env("LC_ALL", "C").env("PY", python()).current_dir(cwd.path());
    c
}

/// `script` natively in a fresh 1777 directory of /dev/shm (as a tmpfs root is).
fn native(name: &str, script: &str) -> Run {
    let t = shm_path(name);
    let _ = std::fs::remove_dir_all(&t);
    std::fs::create_dir(&t).unwrap();
    std::fs::set_permissions(&t, std::os::unix::fs::PermissionsExt::from_mode(0o1777)).unwrap();
    let cwd = scratch_cwd();
    let r = run_with_timeout(sh(script, &t, &cwd), 120).into();
    std::fs::remove_dir_all(&t).unwrap();
    r
}

/// `script` under vurs with a tmpfs mounted on the same path (absent on the host).
fn served(name: &str, script: &str, engine: Option<&str>, opts: &str) -> Run {
    let t = shm_path(name);
    assert!(!std::path::Path::new(&t).exists(), "{t} left over");
    let mut c = Command::new(vurs());
    c.arg("--mount")
        .arg(format!("type=tmpfs,target={t}{opts}"))
        .arg("--")
        .arg("/bin/sh")
        .args(["-c", script]);
    let cwd = scratch_cwd();
    c.env("T", &t).env("LC_ALL", "C").env("PY", python()).current_dir(cwd.path());
    if let Some(e) = engine {
        c.env("VURS_ENGINE", e);
    }
    c.env("VURS_MODULE_PATH", module_dir());
    let r = run_with_timeout(c, 120).into();
    assert!(!std::path::Path::new(&t).exists(), "the tmpfs leaked onto the host at {t}");
    r
}

/// Runs `script` natively and under vurs on both engines; the runs must agree.
fn differential(name: &str, script: &str) {
    let want = native(name, script);
    assert_eq!(want.status, Some(0), "the native run itself failed: {want:#?}");
    for engine in ENGINES {
        let got = served(name, script, engine, "");
        assert_eq!(got, want, "{name}: vurs (engine {engine:?}) differs from the kernel's tmpfs");
    }
}

// A python helper the scripts share: run a call, print OK or the errno's name.
const PYTRY: &str = r#"
import errno, os, sys
def t(label, f, *a):
    try:
        r = f(*a)
        print(label, "OK" if r is None else r)
    except OSError as e:
        print(label, errno.errorcode[e.errno])
"#;

fn py(body: &str) -> String {
    format!("\"$PY\" - <<'EOF'\n{PYTRY}\nT = os.environ['T']\n{body}\nEOF\n")
}

#[test]
fn create_read_write_append_seek() {
    differential(
        "io",
        &format!(
            r#"set -e
echo hello | tee "$T/a" >/dev/null; cat "$T/a"; echo world | tee -a "$T/a" >/dev/null; cat "$T/a"
printf 'abc' | tee "$T/b" >/dev/null; printf 'def' | tee -a "$T/b" >/dev/null; cat "$T/b"; echo
stat -c '%n %s %b %h %a %F %U %G' "$T/a" "$T/b"
truncate -s 0 "$T/a"; stat -c '%n %s' "$T/a"; cp "$T/b" "$T/b2"; cmp "$T/b" "$T/b2"
{}"#,
            py(r#"
fd = os.open(T + "/c", os.O_CREAT | os.O_RDWR, 0o600)
print(os.write(fd, b"0123456789"), os.lseek(fd, 3, 0), os.read(fd, 4), os.lseek(fd, -2, 2), os.read(fd, 10))
print(os.pwrite(fd, b"XY", 8), os.pread(fd, 20, 0), os.lseek(fd, 0, 1))
os.ftruncate(fd, 4); print(os.fstat(fd).st_size, os.pread(fd, 10, 0))
t("excl", os.open, T + "/c", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
t("dir-write", os.open, T, os.O_WRONLY)
t("notdir", os.open, T + "/c/x", os.O_RDONLY)
t("enoent", os.open, T + "/nope", os.O_RDONLY)
t("o_directory", os.open, T + "/c", os.O_RDONLY | os.O_DIRECTORY)
os.close(fd)
fd = os.open(T + "/c", os.O_RDONLY); t("ftruncate-rdonly", os.ftruncate, fd, 1); t("write-rdonly", os.write, fd, b"x"); os.close(fd)
fd = os.open(T + "/c", os.O_WRONLY | os.O_APPEND)
os.write(fd, b"++"); os.close(fd)
print(open(T + "/c", "rb").read())
"#)
        ),
    );
}

#[test]
fn o_tmpfile() {
    differential(
        "tmpfile",
        &py(r#"
fd = os.open(T, os.O_TMPFILE | os.O_RDWR, 0o640); os.write(fd, b"unnamed"); st = os.fstat(fd)
print(st.st_nlink, st.st_size, oct(st.st_mode), os.pread(fd, 20, 0), os.listdir(T)); os.close(fd)
t("tmpfile-rdonly", os.open, T, os.O_TMPFILE | os.O_RDONLY)
"#),
    );
}

#[test]
fn sparse_files() {
    differential(
        "sparse",
        r#"set -e
big="$T/big"
truncate -s 1G "$big"; stat -c '%s %b' "$big"; du -k "$big"
"$PY" -c 'import os, sys; fd = os.open(sys.argv[1], os.O_WRONLY); os.pwrite(fd, sys.argv[2].encode(), int(sys.argv[3]))' "$big" x 1073741823
stat -c '%s %b' "$big"; du -k "$big"; tail -c 1 "$big"; echo
tail -c +4096001 "$big" | head -c 4096 | od -An -c | head -2
truncate -s 5000 "$big"; stat -c '%s %b' "$big"
"$PY" -c 'import os, sys; fd = os.open(sys.argv[1], os.O_WRONLY); os.pwrite(fd, b"y", 4999)' "$big"; stat -c '%s %b' "$big"
truncate -s 0 "$big"; stat -c '%s %b' "$big"
"#,
    );
}

#[test]
fn directories() {
    differential(
        "dirs",
        &format!(
            r#"set -e
mkdir "$T/a" "$T/a/b" "$T/a/b/c" "$T/a/d"; touch "$T/a/f" "$T/a/b/g"
find "$T" | sort | xargs stat -c '%n %h %s %a %F'
rmdir "$T/a" 2>&1 || true
rm "$T/a" 2>&1 || true
mkdir "$T/a" 2>&1 || true
rmdir "$T/a/f" 2>&1 || true
ls -U "$T/a"
rm -r "$T/a/b"; find "$T" | sort | xargs stat -c '%n %h %s'
rm -r "$T/a"; ls -la "$T" | sed 1d | awk '$NF != ".." {{print $1, $2, $5, $NF}}'
{}"#,
            py(r#"
os.mkdir(T + "/m", 0o700); print(oct(os.stat(T + "/m").st_mode))
t("rmdir-mountpoint", os.rmdir, T + "/m/..")
t("mkdir-exists", os.mkdir, T + "/m")
t("rmdir-enoent", os.rmdir, T + "/zz")
t("mkdir-enoent", os.mkdir, T + "/zz/y")
# readdir while entries go: delete the next one of each entry seen
for i in range(600):
    open(T + "/m/entry-with-a-rather-long-name-%04d" % i, "w").close()
seen = 0
with os.scandir(T + "/m") as it:
    for e in it:
        seen += 1
        n = int(e.name[-4:])
        for k in (n - 1, n + 1):
            try: os.unlink(T + "/m/entry-with-a-rather-long-name-%04d" % k)
            except FileNotFoundError: pass
print("seen", seen, "left", len(os.listdir(T + "/m")))
"#)
        ),
    );
}

#[test]
fn umask_applies() {
    differential(
        "umask",
        r#"umask 077; mkdir "$T/u"; touch "$T/u/f"; mknod "$T/p" p; stat -c '%n %a' "$T/u" "$T/u/f" "$T/p"
umask 002; mkdir "$T/v"; stat -c '%n %a' "$T/v""#,
    );
}

#[test]
fn rename_rules() {
    differential(
        "rename",
        &format!(
            r#"set -e
mkdir "$T/d" "$T/e" "$T/e/sub"; echo 1 | tee "$T/f" >/dev/null; echo 2 | tee "$T/g" > /dev/null
mv "$T/f" "$T/f2"; mv "$T/d" "$T/e/"; ls -U "$T" "$T/e"; stat -c '%n %h' "$T/e" "$T/e/d" "$T"
mv "$T/g" "$T/f2"; cat "$T/f2"
echo 3 | tee "$T/h" >/dev/null; mv -n "$T/h" "$T/f2" 2>&1; cat "$T/f2" "$T/h"
{}"#,
            py(r#"
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
def renameat2(a, b, flags):
    if libc.syscall(316, -100, a.encode(), -100, b.encode(), flags) != 0:
        e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
P = lambda n: T + "/" + n
t("file-over-dir", os.rename, P("f2"), P("e"))
t("dir-over-file", os.rename, P("e"), P("f2"))
os.mkdir(P("x")); os.mkdir(P("y")); open(P("y/z"), "w").close()
t("dir-over-nonempty", os.rename, P("x"), P("y"))
t("dir-into-itself", os.rename, P("e"), P("e/sub/e"))
t("dir-over-ancestor", os.rename, P("e/sub"), P("e"))
t("enoent", os.rename, P("nope"), P("x2"))
t("noreplace", renameat2, P("h"), P("f2"), 1)
t("noreplace-new", renameat2, P("h"), P("h2"), 1)
t("exchange", renameat2, P("h2"), P("y"), 2)
print(sorted(os.listdir(T)), os.path.isdir(P("h2")), open(P("y")).read().strip())
t("exchange-enoent", renameat2, P("y"), P("nope"), 2)
t("both-flags", renameat2, P("y"), P("x"), 3)
t("dir-over-empty", os.rename, P("x"), P("h2/z2"))
t("same", os.rename, P("y"), P("y"))
os.link(P("y"), P("y2")); t("hardlinks", os.rename, P("y"), P("y2")); print(sorted(os.listdir(T)))
print([(n, os.stat(P(n)).st_nlink) for n in sorted(os.listdir(T)) if os.path.isdir(P(n))])
"#)
        ),
    );
}

#[test]
fn hard_and_symbolic_links() {
    differential(
        "links",
        r#"set -e
echo data | tee "$T/a" >/dev/null; ln "$T/a" "$T/b"; ln "$T/b" "$T/c"; stat -c '%n %h %s' "$T/a" "$T/b" "$T/c"
rm "$T/a"; stat -c '%n %h' "$T/b" "$T/c"; cat "$T/c"
ln -s b "$T/s"; ln -s /nowhere "$T/dangling"; ln -s "$(printf 'x%.0s' $(seq 200))" "$T/long"
stat -c '%n %s %b %a %F' "$T/s" "$T/dangling" "$T/long"; readlink "$T/s" "$T/dangling"; cat "$T/s"
ls -l "$T/s" | awk '{print $1, $2, $NF}'
cat "$T/dangling" 2>&1 || true
ln "$T/s" "$T/s2" 2>&1; stat -c '%n %h %F' "$T/s" "$T/s2"
mkdir "$T/dir"; ln "$T/dir" "$T/dir2" 2>&1 || true
ln -s x "$T/b" 2>&1 || true
ln "$T/c" "$T/b" 2>&1 || true
"$PY" -c 'import os, sys; fd = os.open(sys.argv[1] + "/c", os.O_RDONLY)
for n in "b", "c", "s", "s2": os.unlink(sys.argv[1] + "/" + n)
print(os.fstat(fd).st_nlink, os.read(fd, 10)); os.close(fd); print(sorted(os.listdir(sys.argv[1])))' "$T"
"#,
    );
}

#[test]
fn special_nodes_and_inode_numbers() {
    differential(
        "nodes",
        &format!(
            r#"mkfifo "$T/fifo"; chmod 640 "$T/fifo"; mknod "$T/null" c 1 3 2>&1; mknod "$T/blk" b 7 0 2>&1
stat -c '%n %F %a %s %b %t %T %h' "$T/fifo" "$T/null" "$T/blk" 2>&1
{}"#,
            py(r#"
import stat
t("sock", os.mknod, T + "/sock", stat.S_IFSOCK | 0o600)
t("dir-by-mknod", os.mknod, T + "/d", stat.S_IFDIR | 0o700)
t("reg-by-mknod", os.mknod, T + "/r", 0o600)
print(stat.filemode(os.lstat(T + "/sock").st_mode), stat.filemode(os.lstat(T + "/r").st_mode))
print(sorted((e.name, e.is_file(), e.is_dir(), e.is_symlink()) for e in os.scandir(T)))
a = os.stat(T + "/r").st_ino; os.rename(T + "/r", T + "/r2"); os.link(T + "/r2", T + "/r3")
print("ino kept", a == os.stat(T + "/r2").st_ino == os.stat(T + "/r3").st_ino, a != os.stat(T + "/fifo").st_ino)
print("dev", os.stat(T).st_dev == os.stat(T + "/r2").st_dev, os.stat(T).st_dev != os.stat("/").st_dev)
"#)
        ),
    );
}

#[test]
fn chmod_chown_and_permissions() {
    differential(
        "perms",
        // no `set -e`: run as non-root, chown and setpriv fail, natively as under vurs
        r#"f="$T/f"; d="$T/d"; g="$T/g"; c="$T/closed"
touch "$f"; mkdir "$d"
chmod 4751 "$f"; stat -c '%n %a' "$f"; chmod u-s,g+w "$f"; stat -c '%n %a' "$f"
chmod 1777 "$d"; stat -c '%n %a' "$d"
chown 65534:65534 "$f"; stat -c '%n %u %g %a' "$f"
chmod 6755 "$f"; chown 0 "$f"; stat -c '%n %u %g %a' "$f"
mkdir "$g"; chown 0:65534 "$g"; chmod 2775 "$g"; mkdir "$g/sub"; touch "$g/file"
stat -c '%n %g %a' "$g/sub" "$g/file"
mkdir -m 755 "$c"; touch "$c/x"; touch "$d/rootfile"
export f d c; setpriv --reuid=65534 --regid=65534 --clear-groups sh -c '
  touch "$c/y" 2>&1; rm "$c/x" 2>&1; chmod 600 "$f" 2>&1; chown 65534 "$c" 2>&1
  touch "$d/mine"; stat -c "%n %u %g" "$d/mine"; rm "$d/rootfile" 2>&1
  echo x | tee "$f" 2>&1; cat "$c/x"; ls "$c"
  true' || true
chmod 600 "$c/x"; setpriv --reuid=65534 --regid=65534 --clear-groups cat "$c/x" 2>&1 || true
chmod 700 "$c"; setpriv --reuid=65534 --regid=65534 --clear-groups ls "$c" 2>&1 || true
setpriv --reuid=65534 --regid=65534 --clear-groups stat -c %s "$c/x" 2>&1 || true
true
"#,
    );
}

#[test]
fn timestamps() {
    differential(
        "times",
        &format!(
            r#"set -e
f="$T/f"
touch -d '2001-02-03 04:05:06.123456789' "$f"; stat -c '%x|%y' "$f"
touch -m -d '2002-01-01 00:00:00' "$f"; stat -c '%x|%y' "$f"
touch -a -d '2003-01-01 00:00:00' "$f"; stat -c '%x|%y' "$f"
{}"#,
            py(r#"
import time
def times(p):
    s = os.stat(p, follow_symlinks=False) if isinstance(p, str) else os.fstat(p)
    return (s.st_atime_ns, s.st_mtime_ns, s.st_ctime_ns)
def step(label, f, *paths):
    before = [times(p) for p in paths]
    time.sleep(0.02); f()
    after = [times(p) for p in paths]
    print(label, " ".join("".join("amc"[i] if a[i] != b[i] else "-" for i in range(3)) for a, b in zip(before, after)))
D = T + "/d"; os.mkdir(D); open(D + "/f", "w").close(); fd = os.open(D + "/f", os.O_RDONLY)
step("create", lambda: open(D + "/g", "w").close(), D)
step("write", lambda: open(D + "/f", "a").write("x"), fd, D)
step("read", lambda: open(D + "/f").read(), fd)
step("chmod", lambda: os.chmod(D + "/f", 0o600), fd, D)
step("chown", lambda: os.chown(D + "/f", os.getuid(), os.getgid()), fd)
step("link", lambda: os.link(D + "/f", D + "/l"), fd, D)
step("unlink", lambda: os.unlink(D + "/l"), fd, D)
step("rename", lambda: os.rename(D + "/f", D + "/f2"), fd, D)
step("truncate", lambda: os.truncate(D + "/f2", 100), fd)
step("truncate-same", lambda: os.truncate(D + "/f2", 100), fd)
step("utime", lambda: os.utime(D + "/f2", ns=(5, 6)), fd)
print(times(fd)[:2])
step("utime-now", lambda: os.utime(D + "/f2"), fd)
step("setxattr", lambda: os.setxattr(D + "/f2", "user.k", b"v"), fd)
step("mkdir", lambda: os.mkdir(D + "/s"), D)
step("rmdir", lambda: os.rmdir(D + "/s"), D)
step("symlink", lambda: os.symlink("x", D + "/sl"), D)
step("readdir", lambda: os.listdir(D), D)
"#)
        ),
    );
}

#[test]
fn extended_attributes() {
    differential(
        "xattr",
        &py(r#"
os.chdir("/"); f, d, l = T + "/f", T + "/d", T + "/l"
open(f, "w").close(); os.mkdir(d); os.symlink("f", l)
t("set", os.setxattr, f, "user.a", b"1")
t("set-dir", os.setxattr, d, "user.b", b"2")
t("create-exists", os.setxattr, f, "user.a", b"x", os.XATTR_CREATE)
t("replace-missing", os.setxattr, f, "user.z", b"x", os.XATTR_REPLACE)
t("replace", os.setxattr, f, "user.a", b"22", os.XATTR_REPLACE)
t("get", os.getxattr, f, "user.a")
t("get-missing", os.getxattr, f, "user.q")
t("bad-namespace", os.setxattr, f, "bogus.a", b"1")
t("trusted", os.setxattr, f, "trusted.t", b"t")
t("security", os.setxattr, f, "security.s", b"s")
t("user-on-symlink", lambda: os.setxattr(l, "user.a", b"1", follow_symlinks=False))
t("list", lambda: sorted(os.listxattr(f)))
t("big", os.setxattr, f, "user.big", b"v" * 70000)
t("remove", os.removexattr, f, "user.a")
t("remove-missing", os.removexattr, f, "user.a")
t("list2", lambda: sorted(os.listxattr(f)))
fd = os.open(f, os.O_RDONLY); t("fget", os.getxattr, fd, "security.s"); os.close(fd)
"#),
    );
}

#[test]
fn statfs_says_tmpfs() {
    differential(
        "statfs",
        &format!(
            r#"set -e
stat -f -c '%T %s %l' "$T"; df -T "$T" | awk 'NR==2 {{print $2}}'
{}"#,
            py(r#"
s = os.statvfs(T); print(s.f_bsize, s.f_namemax, s.f_blocks > 0, s.f_files > 0)
"#)
        ),
    );
}

#[test]
fn tar_round_trip() {
    let src = TempDir::new("tmpfs-tar");
    let s = src.path();
    std::fs::create_dir_all(s.join("a/b")).unwrap();
    std::fs::write(s.join("a/b/file"), vec![7u8; 100_000]).unwrap();
    std::fs::write(s.join("top"), "top\n").unwrap();
    std::os::unix::fs::symlink("a/b/file", s.join("link")).unwrap();
    std::fs::hard_link(s.join("top"), s.join("top2")).unwrap();
    let script = format!(
        r#"set -e
tar c -C '{s}' . | tar x -C "$T"
find "$T" | sort | xargs stat -c '%n %s %h %a %F %N'; md5sum "$T/a/b/file" "$T/top"
tar c -C "$T" . | tar t | sort
cp -a '{s}' "$T/copy"; diff -r '{s}' "$T/copy" && echo same
stat -c '%n %s %h %a %Y' "$T/copy/top" "$T/copy/top2" '{s}/top' | sed 's|^.*/||'
find "$T" -newer "$T/copy/a/b/file" -type f | sort; find "$T" -size +50k | sort
rm -r "$T/copy"; ls -lU "$T" | awk '{{print $1, $2, $NF}}'
"#,
        s = s.display()
    );
    differential("tar", &script);
}

#[test]
fn size_limit_gives_enospc() {
    // Checked against the kernel's behaviour written out, and, where a private mount
    // namespace can be had (root), against a real tmpfs mounted with the same options.
    let script = r#"
df -k "$T" | awk 'NR==2 {print $2, $3}'
head -c 2000000 /dev/zero | tee "$T/big" >/dev/null; echo "status $?"
stat -c '%s %b' "$T/big"
echo more | tee -a "$T/big" >/dev/null; echo "status $?"
rm "$T/big"; df -k "$T" | awk 'NR==2 {print $3}'
head -c 500000 /dev/zero | tee "$T/ok" >/dev/null; echo "status $?"; stat -c '%s' "$T/ok"
for i in $(seq 120); do touch "$T/n$i" 2>/dev/null || { echo "inodes full at $i"; break; }; done
"#;
    for engine in ENGINES {
        let r = served("enospc", script, engine, ",size=1M,nr_inodes=100");
        assert_eq!(
            r.stdout, "1024 0\nstatus 1\n1048576 2048\nstatus 1\n0\nstatus 0\n500000\ninodes full at 99\n",
            "engine {engine:?}: {r:#?}"
        );
        assert!(r.stderr.contains("No space left on device"), "engine {engine:?}: {r:#?}");
        if let Some(want) = native_with_options("enospc", script, "size=1M,nr_inodes=100") {
            assert_eq!(r, want, "engine {engine:?}: vurs differs from a kernel tmpfs with size=1M");
        }
    }
}

/// `script` natively on a kernel tmpfs mounted with `opts` in a private mount namespace,
/// or None (with a note) where that cannot be had (not root, no unshare).
fn native_with_options(name: &str, script: &str, opts: &str) -> Option<Run> {
    let t = shm_path(name);
    std::fs::create_dir(&t).unwrap();
    let mut c = Command::new("unshare");
    c.args(["-m", "sh", "-c", r#"mount --make-rprivate / && mount -t tmpfs -o "$OPTS" none "$T" || exit 99; chmod 1777 "$T"; exec sh -c "$SCRIPT""#]);
    let cwd = scratch_cwd();
    c.env("T", &t)
        .env("OPTS", opts)
        .env("SCRIPT", script)
        .env("LC_ALL", "C")
        .env("PY", python())
        .current_dir(cwd.path());
    let r: Run = run_with_timeout(c, 60).into();
    std::fs::remove_dir(&t).unwrap();
    if r.status == Some(99) || r.stderr.starts_with("unshare:") {
        eprintln!("note: no private kernel tmpfs here (not root?): {}", r.stderr.trim());
        return None;
    }
    Some(r)
}

#[test]
fn mount_options_and_vurs_mount() {
    for engine in ENGINES {
        let t = shm_path("opts");
        let r = served("opts", r#"stat -c '%a %u %g' "$T""#, engine, ",mode=0750,uid=65534,gid=100");
        assert_eq!((r.status, r.stdout.as_str()), (Some(0), "750 65534 100\n"), "{engine:?}: {r:#?}");
        let r = served(
            "opts",
            r#"touch "$T/f"; stat -f -c %T "$T"; "$PY" -c 'import os, sys; print(bool(os.statvfs(sys.argv[1]).f_flag & os.ST_RDONLY))' "$T""#,
            engine,
            ",ro",
        );
        assert_eq!(r.stdout, "tmpfs\nTrue\n", "{engine:?}: {r:#?}");
        assert!(r.stderr.contains("Read-only file system"), "{engine:?}: {r:#?}");
        let r = served("opts", "true", engine, ",size=lots");
        assert_eq!(r.status, Some(125), "{engine:?}: {r:#?}");
        assert!(r.stderr.starts_with("vurs: ") && r.stderr.contains("size"), "{engine:?}: {r:#?}");
        // from inside a session, as mount(8) would be given it
        let mut c = Command::new(vurs());
        c.args(["-m", "tmpfs", "--", "/bin/sh", "-c"])
            .arg(format!("vurs mount -t tmpfs -o size=64M none {t} && echo hi | tee {t}/f >/dev/null && cat {t}/f && df -k {t} | awk 'NR==2 {{print $2}}'"));
        c.env("VURS_MODULE_PATH", module_dir()).env("PATH", path_with_vurs());
        if let Some(e) = engine {
            c.env("VURS_ENGINE", e);
        }
        let r: Run = run_with_timeout(c, 60).into();
        assert_eq!((r.status, r.stdout.as_str()), (Some(0), "hi\n65536\n"), "{engine:?}: {r:#?}");
        assert!(!std::path::Path::new(&t).exists());
    }
}

#[test]
fn times_follow_the_session_clock() {
    // ten years ahead with the time module: new files are stamped by the virtual clock
    for engine in ENGINES {
        let t = shm_path("clock");
        let mut c = Command::new(vurs());
        c.args(["-m", "time,offset=315619200", "--mount"]).arg(format!("type=tmpfs,target={t}"));
        c.args(["--", "/bin/sh", "-c"]).arg(format!("touch {t}/f; date +%Y; stat -c %y {t}/f | cut -c1-4"));
        c.env("VURS_MODULE_PATH", module_dir());
        if let Some(e) = engine {
            c.env("VURS_ENGINE", e);
        }
        let r: Run = run_with_timeout(c, 60).into();
        let year: i32 = r.stdout.lines().next().and_then(|y| y.parse().ok()).unwrap_or(0);
        assert!(year >= 2030, "{engine:?}: {r:#?}");
        assert_eq!(r.stdout, format!("{year}\n{year}\n"), "{engine:?}: {r:#?}");
    }
}

#[test]
fn parallel_writers() {
    // threads writing disjoint ranges of one file, processes filling one directory
    differential(
        "parallel",
        &py(r#"
import threading, hashlib
fd = os.open(T + "/shared", os.O_CREAT | os.O_RDWR, 0o644)
def writer(k):
    for i in range(50):
        os.pwrite(fd, bytes([65 + k]) * 1000, (i * 8 + k) * 1000)
ts = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
[x.start() for x in ts]; [x.join() for x in ts]
print(os.fstat(fd).st_size, hashlib.md5(os.pread(fd, 1 << 20, 0)).hexdigest())
pids = []
for k in range(4):
    pid = os.fork()
    if pid == 0:
        for i in range(100):
            open("%s/p%d-%d" % (T, k, i), "w").write("x" * i)
        for i in range(0, 100, 2):
            os.unlink("%s/p%d-%d" % (T, k, i))
        os._exit(0)
    pids.append(pid)
print([os.waitpid(p, 0)[1] for p in pids], len(os.listdir(T)), os.stat(T).st_size, os.stat(T).st_nlink)
print(sum(os.stat(T + "/" + n).st_size for n in os.listdir(T)))
"#),
    );
}

fn path_with_vurs() -> String {
    format!("{}:{}", module_dir().display(), std::env::var("PATH").unwrap_or_default())
}

#[test]
fn private_tmp_leaves_host_tmp_alone() {
    let name = format!("vurs-private-{}", std::process::id());
    for engine in ENGINES {
        let mut c = Command::new(vurs());
        c.args(["--mount", "type=tmpfs,target=/tmp", "--", "/bin/sh", "-c"])
            .arg(format!("echo x | tee /tmp/{name} >/dev/null; ls -a /tmp; cat /tmp/{name}"));
        c.env("VURS_MODULE_PATH", module_dir());
        if let Some(e) = engine {
            c.env("VURS_ENGINE", e);
        }
        let r: Run = run_with_timeout(c, 60).into();
        assert_eq!(
            (r.status, r.stdout.clone()),
            (Some(0), format!(".\n..\n{name}\nx\n")),
            "{engine:?}: {r:#?}"
        );
        assert!(!std::path::Path::new("/tmp").join(&name).exists(), "the host /tmp was written");
    }
}

#[test]
fn shell_script_and_compiled_program_run_from_it() {
    let dir = TempDir::new("tmpfs-exec");
    let prog = dir.join("hello");
    let src = dir.join("hello.c");
    std::fs::write(
        &src,
        "#include <stdio.h>\nint main(int c, char **v) { printf(\"hello %s\\n\", v[1]); return 3; }\n",
    )
    .unwrap();
    assert!(Command::new("gcc").arg("-o").arg(&prog).arg(&src).status().unwrap().success());
    differential(
        "exec",
        &format!(
            r#"cp '{}' "$T/prog"; "$T/prog" one; echo "status $?"
printf '#!/bin/sh\necho script "$@"\nexit 4\n' | tee "$T/s.sh" >/dev/null; chmod +x "$T/s.sh"
"$T/s.sh" two; echo "status $?"; sh "$T/s.sh" three; echo "status $?"
chmod -x "$T/prog"; "$T/prog" 2>&1; echo "status $?"
"#,
            prog.display()
        ),
    );
}

#[test]
fn mmap_of_its_files() {
    differential(
        "mmap",
        &py(r#"
import mmap
p = T + "/m"
with open(p, "wb") as f: f.write(b"0123456789" * 1000)
with open(p, "rb") as f:
    m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ); print(m[:10], m[-5:], len(m)); m.close()
with open(p, "r+b") as f:
    m = mmap.mmap(f.fileno(), 0, flags=mmap.MAP_PRIVATE); m[0:3] = b"abc"; print(m[:5]); m.close()
print(open(p, "rb").read(5))
with open(p, "r+b") as f:
    m = mmap.mmap(f.fileno(), 4096); m[0:3] = b"XYZ"; m.flush(); m.close()
print(open(p, "rb").read(5))
"#),
    );
}

#[test]
fn shell_cd_and_redirections() {
    differential(
        "shell",
        r#"set -e
cd "$T"; echo hello > a; echo world >> a; cat < a; wc -c a
mkdir d; cd d; echo x > ../b; cat ../b; pwd; ls -a ..
exec 3<../a; rm ../a; cat <&3
mkfifo -m 640 f; stat -c '%n %a %F' f
"#,
    );
    let name = format!("vurs-private-{}", std::process::id());
    let mut c = Command::new(vurs());
    c.args(["--mount", "type=tmpfs,target=/tmp", "--", "/bin/sh", "-c"])
        .arg(format!("echo x > /tmp/{name}; ls /tmp"));
    c.env("VURS_MODULE_PATH", module_dir());
    let r: Run = run_with_timeout(c, 60).into();
    assert_eq!((r.status, r.stdout), (Some(0), format!("{name}\n")));
    assert!(!std::path::Path::new("/tmp").join(&name).exists(), "the host /tmp was written");
}
