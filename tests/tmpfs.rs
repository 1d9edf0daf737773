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

fn sh(script: &str, t: &str) -> Command {
    let mut c = Command::new("/bin/sh");
    c.args(["-c", script]).env("T", t).env("LC_ALL", "C").env("PY", python()).current_dir("/");
    c
}

/// `script` natively in a fresh 1777 directory of /dev/shm (as a tmpfs root is).
fn native(name: &str, script: &str) -> Run {
    let t = shm_path(name);
    let _ = std::fs::remove_dir_all(&t);
    std::fs::create_dir(&t).unwrap();
    std::fs::set_permissions(&t, std::os::unix::fs::PermissionsExt::from_mode(0o1777)).unwrap();
    let r = run_with_timeout(sh(script, &t), 120).into();
    std::fs::remove_dir_all(&t).unwrap();
    r
}

/// `script` under vurs with a tmpfs mounted on the same path (absent on the host).
fn served(name: &str, script: &str, engine: Option<&str>, opts: &str) -> Run {
    let t = shm_path(name);
    assert!(!std::path::Path::new(&t).exists(), "{t} left over");
    let mut c = Command::new(vurs());
    c.arg("--mount").arg(format!("type=tmpfs,target={t}{opts}")).arg("--").arg("/bin/sh").args(["-c", script]);
    c.env("T", &t).env("LC_ALL", "C").env("PY", python()).current_dir("/");
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
cd "$T"
echo hello > a; cat a; echo world >> a; cat a
printf 'abc' > b; printf 'def' >> b; cat b; echo
stat -c '%n %s %b %h %a %F %U %G' a b
: > a; stat -c '%n %s' a
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
fd = os.open(T + "/c", os.O_WRONLY | os.O_APPEND)
os.write(fd, b"++"); os.close(fd)
print(open(T + "/c", "rb").read())
"#)
        ),
    );
}

#[test]
fn sparse_files() {
    differential(
        "sparse",
        r#"set -e
cd "$T"
truncate -s 1G big; stat -c '%s %b' big; du -k big
printf x | dd of=big bs=1 seek=1073741823 conv=notrunc 2>/dev/null
stat -c '%s %b' big; du -k big; tail -c 1 big; echo
dd if=big bs=4096 skip=1000 count=1 2>/dev/null | od -An -c | head -2
truncate -s 5000 big; stat -c '%s %b' big
printf y | dd of=big bs=1 seek=4999 conv=notrunc 2>/dev/null; stat -c '%s %b' big
truncate -s 0 big; stat -c '%s %b' big
"#,
    );
}

#[test]
fn directories() {
    differential(
        "dirs",
        &format!(
            r#"set -e
cd "$T"
mkdir -p a/b/c a/d; touch a/f a/b/g
find . | sort | xargs stat -c '%n %h %s %a %F'
rmdir a 2>&1 || true
rm a 2>&1 || true
mkdir a 2>&1 || true
rmdir a/f 2>&1 || true
ls -U a
rm -r a/b; find . | sort | xargs stat -c '%n %h %s'
rm -r a; ls -la . | sed 1d | awk '{{print $1, $2, $5, $NF}}'
{}"#,
            py(r#"
os.mkdir(T + "/m", 0o700); print(oct(os.stat(T + "/m").st_mode))
t("rmdir-root", os.rmdir, T)
t("mkdir-exists", os.mkdir, T + "/m")
t("rmdir-enoent", os.rmdir, T + "/zz")
t("mkdir-enoent", os.mkdir, T + "/zz/y")
os.umask(0o077); os.mkdir(T + "/u"); open(T + "/u/f", "w").close()
print(oct(os.stat(T + "/u").st_mode), oct(os.stat(T + "/u/f").st_mode))
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
fn rename_rules() {
    differential(
        "rename",
        &format!(
            r#"set -e
cd "$T"
mkdir d e e/sub; echo 1 > f; echo 2 > g
mv f f2; mv d e/; ls -U . e | sort; stat -c '%n %h' e e/d .
mv g f2; cat f2
echo 3 > h; mv -n h f2 2>&1; cat f2 h
{}"#,
            py(r#"
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
def renameat2(a, b, flags):
    if libc.syscall(316, -100, a.encode(), -100, b.encode(), flags) != 0:
        e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
os.chdir(T)
t("file-over-dir", os.rename, "f2", "e")
t("dir-over-file", os.rename, "e", "f2")
os.mkdir("x"); os.mkdir("y"); open("y/z", "w").close()
t("dir-over-nonempty", os.rename, "x", "y")
t("dir-into-itself", os.rename, "e", "e/sub/e")
t("dir-over-ancestor", os.rename, "e/sub", "e")
t("enoent", os.rename, "nope", "x2")
t("noreplace", renameat2, "h", "f2", 1)
t("noreplace-new", renameat2, "h", "h2", 1)
t("exchange", renameat2, "h2", "y", 2)
print(sorted(os.listdir(".")), os.path.isdir("h2"), open("y").read())
t("exchange-enoent", renameat2, "y", "nope", 2)
t("both-flags", renameat2, "y", "x", 3)
t("dir-over-empty", os.rename, "x", "h2/z2")
t("same", os.rename, "y", "y")
os.link("y", "y2"); t("hardlinks", os.rename, "y", "y2"); print(sorted(os.listdir(".")))
print([(n, os.stat(n).st_nlink) for n in sorted(os.listdir(".")) if os.path.isdir(n)])
"#)
        ),
    );
}

#[test]
fn hard_and_symbolic_links() {
    differential(
        "links",
        r#"set -e
cd "$T"
echo data > a; ln a b; ln b c; stat -c '%n %h %s' a b c
rm a; stat -c '%n %h' b c; cat c
ln -s b s; ln -s /nowhere dangling; ln -s "$(printf 'x%.0s' $(seq 200))" long
stat -c '%n %s %b %a %F' s dangling long; readlink s dangling; cat s
ls -l s | awk '{print $1, $2, $NF}'
cat dangling 2>&1 || true
ln s s2 2>&1; stat -c '%n %h %F' s s2
mkdir dir; ln dir dir2 2>&1 || true
ln -s x b 2>&1 || true
ln c b 2>&1 || true
exec 3<c; rm b c s s2; cat <&3
"#,
    );
}

#[test]
fn chmod_chown_and_permissions() {
    differential(
        "perms",
        r#"set -e
cd "$T"
touch f; mkdir d
chmod 4751 f; stat -c '%n %a' f; chmod u-s,g+w f; stat -c '%n %a' f
chmod 1777 d; stat -c '%n %a' d
chown 65534:65534 f; stat -c '%n %u %g %a' f
chmod 6755 f; chown 0 f; stat -c '%n %u %g %a' f
mkdir g; chown 0:65534 g; chmod 2775 g; mkdir g/sub; touch g/file
stat -c '%n %g %a' g/sub g/file
mkdir -m 755 closed; touch closed/x; chmod 1777 d
touch d/rootfile
setpriv --reuid=65534 --regid=65534 --clear-groups sh -c '
  touch closed/y 2>&1; rm closed/x 2>&1; chmod 600 f 2>&1; chown 65534 closed 2>&1
  touch d/mine; stat -c "%n %u %g" d/mine; rm d/rootfile 2>&1
  echo x > f 2>&1; cat closed/x
  true' || true
chmod 600 closed/x; setpriv --reuid=65534 --regid=65534 --clear-groups cat closed/x 2>&1 || true
"#,
    );
}

#[test]
fn timestamps() {
    differential(
        "times",
        &format!(
            r#"set -e
cd "$T"
touch -d '2001-02-03 04:05:06.123456789' f; stat -c '%x|%y' f
touch -m -d '2002-01-01 00:00:00' f; stat -c '%x|%y' f
touch -a -d '2003-01-01 00:00:00' f; stat -c '%x|%y' f
{}"#,
            py(r#"
import time
def times(p):
    s = os.stat(p, follow_symlinks=False); return (s.st_atime_ns, s.st_mtime_ns, s.st_ctime_ns)
def step(label, f, *paths):
    before = [times(p) for p in paths]
    time.sleep(0.02); f()
    after = [times(p) for p in paths]
    print(label, " ".join("".join("amc"[i] if a[i] != b[i] else "-" for i in range(3)) for a, b in zip(before, after)))
os.chdir(T); os.mkdir("d"); open("d/f", "w").close()
step("create", lambda: open("d/g", "w").close(), "d")
step("write", lambda: open("d/f", "a").write("x"), "d/f", "d")
step("read", lambda: open("d/f").read(), "d/f")
step("chmod", lambda: os.chmod("d/f", 0o600), "d/f", "d")
step("chown", lambda: os.chown("d/f", 0, 0), "d/f")
step("link", lambda: os.link("d/f", "d/l"), "d/f", "d")
step("unlink", lambda: os.unlink("d/l"), "d/f", "d")
step("rename", lambda: os.rename("d/f", "d/f2"), "d/f2", "d")
step("truncate", lambda: os.truncate("d/f2", 100), "d/f2")
step("truncate-same", lambda: os.truncate("d/f2", 100), "d/f2")
step("utime", lambda: os.utime("d/f2", ns=(5, 6)), "d/f2")
print(times("d/f2")[:2])
step("setxattr", lambda: os.setxattr("d/f2", "user.k", b"v"), "d/f2")
step("mkdir", lambda: os.mkdir("d/s"), "d")
step("rmdir", lambda: os.rmdir("d/s"), "d")
step("symlink", lambda: os.symlink("x", "d/sl"), "d")
step("readdir", lambda: os.listdir("d"), "d")
"#)
        ),
    );
}

#[test]
fn extended_attributes() {
    differential(
        "xattr",
        &py(r#"
os.chdir(T); open("f", "w").close(); os.mkdir("d"); os.symlink("f", "l")
t("set", os.setxattr, "f", "user.a", b"1")
t("set-dir", os.setxattr, "d", "user.b", b"2")
t("create-exists", os.setxattr, "f", "user.a", b"x", os.XATTR_CREATE)
t("replace-missing", os.setxattr, "f", "user.z", b"x", os.XATTR_REPLACE)
t("replace", os.setxattr, "f", "user.a", b"22", os.XATTR_REPLACE)
t("get", os.getxattr, "f", "user.a")
t("get-missing", os.getxattr, "f", "user.q")
t("bad-namespace", os.setxattr, "f", "bogus.a", b"1")
t("trusted", os.setxattr, "f", "trusted.t", b"t")
t("security", os.setxattr, "f", "security.s", b"s")
t("user-on-symlink", os.setxattr, "l", "user.a", b"1", 0, follow_symlinks=False)
t("list", lambda: sorted(os.listxattr("f")))
t("big", os.setxattr, "f", "user.big", b"v" * 70000)
t("remove", os.removexattr, "f", "user.a")
t("remove-missing", os.removexattr, "f", "user.a")
t("list2", lambda: sorted(os.listxattr("f")))
fd = os.open("f", os.O_RDONLY); t("fget", os.getxattr, fd, "security.s"); os.close(fd)
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
tar c -C '{}' . | tar x -C "$T"
cd "$T"; find . | sort | xargs stat -c '%n %s %h %a %F %N'; md5sum a/b/file top
tar c . | tar t | sort
"#,
        s.display()
    );
    differential("tar", &script);
}

#[test]
fn size_limit_gives_enospc() {
    // A native tmpfs with size= needs a mount (root): checked against the kernel's
    // documented behaviour instead.
    let script = r#"
cd "$T"
df -k . | awk 'NR==2 {print $2, $3}'
head -c 2000000 /dev/zero > big; echo "status $?"
stat -c '%s %b' big
echo more >> big; echo "status $?"
rm big; df -k . | awk 'NR==2 {print $3}'
head -c 500000 /dev/zero > ok; echo "status $?"; stat -c '%s' ok
"#;
    for engine in ENGINES {
        let r = served("enospc", script, engine, ",size=1M,nr_inodes=100");
        assert_eq!(
            r.stdout,
            "1024 0\nstatus 1\n1048576 2048\nstatus 1\n0\nstatus 0\n500000\n",
            "engine {engine:?}: {r:#?}"
        );
        assert!(r.stderr.contains("No space left on device"), "engine {engine:?}: {r:#?}");
    }
}

#[test]
fn mount_options_and_vurs_mount() {
    for engine in ENGINES {
        let t = shm_path("opts");
        let r = served("opts", r#"stat -c '%a %u %g' "$T""#, engine, ",mode=0750,uid=65534,gid=100");
        assert_eq!((r.status, r.stdout.as_str()), (Some(0), "750 65534 100\n"), "{engine:?}: {r:#?}");
        let r = served("opts", "true", engine, ",size=lots");
        assert_eq!(r.status, Some(125), "{engine:?}: {r:#?}");
        assert!(r.stderr.starts_with("vurs: ") && r.stderr.contains("size"), "{engine:?}: {r:#?}");
        // from inside a session, as mount(8) would be given it
        let mut c = Command::new(vurs());
        c.args(["-m", "tmpfs", "--", "/bin/sh", "-c"])
            .arg(format!("vurs mount -t tmpfs -o size=64M none {t} && echo hi > {t}/f && cat {t}/f && df -k {t} | awk 'NR==2 {{print $2}}'"));
        c.env("VURS_MODULE_PATH", module_dir()).env("PATH", path_with_vurs());
        if let Some(e) = engine {
            c.env("VURS_ENGINE", e);
        }
        let r: Run = run_with_timeout(c, 60).into();
        assert_eq!((r.status, r.stdout.as_str()), (Some(0), "hi\n65536\n"), "{engine:?}: {r:#?}");
        assert!(!std::path::Path::new(&t).exists());
    }
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
            .arg(format!("echo x > /tmp/{name}; ls -a /tmp; cat /tmp/{name}"));
        c.env("VURS_MODULE_PATH", module_dir());
        if let Some(e) = engine {
            c.env("VURS_ENGINE", e);
        }
        let r: Run = run_with_timeout(c, 60).into();
        assert_eq!((r.status, r.stdout.clone()), (Some(0), format!(".\n..\n{name}\nx\n")), "{engine:?}: {r:#?}");
        assert!(!std::path::Path::new("/tmp").join(&name).exists(), "the host /tmp was written");
    }
}

#[test]
fn shell_script_and_compiled_program_run_from_it() {
    let dir = TempDir::new("tmpfs-exec");
    let prog = dir.join("hello");
    let src = dir.join("hello.c");
    std::fs::write(&src, "#include <stdio.h>\nint main(int c, char **v) { printf(\"hello %s\\n\", v[1]); return 3; }\n")
        .unwrap();
    assert!(Command::new("gcc").arg("-o").arg(&prog).arg(&src).status().unwrap().success());
    differential(
        "exec",
        &format!(
            r#"cd "$T"
cp '{}' prog; ./prog one; echo "status $?"
printf '#!/bin/sh\necho script "$@"\nexit 4\n' > s.sh; chmod +x s.sh; ./s.sh two; echo "status $?"
chmod -x prog; ./prog 2>&1; echo "status $?"
"$T/s.sh" three; sh s.sh four; true
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
