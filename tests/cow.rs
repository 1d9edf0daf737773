//! The cow module (`--mount type=cow,source=UPPER,target=TARGET`), differentially: the
//! same shell script runs natively on a copy of the lower tree (`cp -a`) and through a cow
//! view of the lower tree; outputs (errors included, so errnos), the final trees (as seen
//! through the view, in a later session with the same UPPER) and `vurs cow-diff`'s list
//! against the changes of the copy must agree, and the lower tree must be unchanged
//! (contents, modes, owners, mtimes and ctimes of every object).
mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Output};

const TIMEOUT: u64 = 180;

/// Lists a tree, one object a line: path, mode, owner, group; for non-directories size,
/// mtime (`NEW` when not older than argv[2] ns: written during the test), md5 or link
/// target. argv[3] = "strict": mtime and ctime of everything, as they are (the lower tree).
const MANIFEST: &str = r#"
import os, sys, stat, hashlib
root, start = sys.argv[1], int(sys.argv[2])
strict = len(sys.argv) > 3
out = []
for dp, dns, fns in os.walk(root):
    dns.sort()
    for n in sorted(dns + fns):
        p = os.path.join(dp, n)
        r = os.path.relpath(p, root)
        st = os.lstat(p)
        line = [r, oct(st.st_mode), str(st.st_uid), str(st.st_gid)]
        if strict:
            line += [str(st.st_mtime_ns), str(st.st_ctime_ns)]
        if not stat.S_ISDIR(st.st_mode) and not stat.S_ISLNK(st.st_mode):
            line.append(str(st.st_size))
            if not strict:
                line.append('NEW' if st.st_mtime_ns >= start else str(st.st_mtime_ns))
        if stat.S_ISREG(st.st_mode):
            line.append(hashlib.md5(open(p, 'rb').read()).hexdigest())
        if stat.S_ISLNK(st.st_mode):
            line.append(os.readlink(p))
        out.append(' '.join(line))
print('\n'.join(out))
"#;

/// What changed from tree argv[1] to tree argv[2], as `vurs cow-diff` says it (paths of
/// the first tree, prefixed by argv[3], the lower tree: the first tree's symlinks into it
/// stand for the second's into itself).
const TREE_DIFF: &str = r#"
import os, sys, stat, filecmp
a, b, prefix = sys.argv[1], sys.argv[2], sys.argv[3]
def walk(root):
    m = {}
    for dp, dns, fns in os.walk(root):
        for n in dns + fns:
            p = os.path.join(dp, n)
            m[os.path.relpath(p, root)] = p
    return m
ma, mb = walk(a), walk(b)
out = []
for r in sorted(set(ma) | set(mb)):
    if r not in mb: out.append('D ' + os.path.join(prefix, r)); continue
    if r not in ma: out.append('A ' + os.path.join(prefix, r)); continue
    sa, sb = os.lstat(ma[r]), os.lstat(mb[r])
    mod = (sa.st_mode, sa.st_uid, sa.st_gid) != (sb.st_mode, sb.st_uid, sb.st_gid)
    if not mod and not stat.S_ISDIR(sa.st_mode):
        size = lambda st: 0 if stat.S_ISLNK(st.st_mode) else st.st_size
        mod = (size(sa), sa.st_mtime_ns, sa.st_rdev) != (size(sb), sb.st_mtime_ns, sb.st_rdev)
        if not mod and stat.S_ISLNK(sa.st_mode):
            mod = os.readlink(ma[r]).replace(prefix, b) != os.readlink(mb[r])
        if not mod and stat.S_ISREG(sa.st_mode):
            mod = not filecmp.cmp(ma[r], mb[r], shallow=False)
    if mod: out.append('M ' + os.path.join(prefix, r))
print('\n'.join(out))
"#;

fn now_ns() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

fn sh(script: &str, dir: &Path) -> Output {
    let mut c = Command::new("sh");
    c.args(["-c", script]).current_dir(dir).env("LC_ALL", "C");
    run_with_timeout(c, TIMEOUT)
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "failed: {:?}\nstdout: {}\nstderr: {}", o.status, stdout(o), stderr(o));
    stdout(o)
}

fn py(args: &[&str], script: &str) -> String {
    let mut c = Command::new(python());
    c.arg("-c").arg(script).args(args);
    ok(&run_with_timeout(c, TIMEOUT))
}

/// `vurs --mount type=cow,... [extra] -- sh -c SCRIPT` in `dir`.
fn in_view(upper: &Path, target: &Path, extra: &[&str], script: &str, dir: &Path) -> Output {
    let spec = format!("type=cow,source={},target={}", upper.display(), target.display());
    let mut c = Command::new(vurs());
    c.args(["--mount", &spec]).args(extra).args(["--", "sh", "-c", script]);
    c.current_dir(dir).env("LC_ALL", "C").env("PATH", format!("{}:/usr/bin:/bin", module_dir().display()));
    run_with_timeout(c, TIMEOUT)
}

/// A lower tree: files of several modes and old times, a deep directory, an empty one,
/// relative and absolute symlinks (the absolute one into the tree itself), a fifo.
fn make_lower(root: &Path) {
    let script = format!(
        "set -e; cd {r}
         mkdir -p d/sub/deep empty keep/inner
         printf 'hello\\n' > f; chmod 640 f
         printf 'data\\n' > d/a; printf 'b\\n' > d/sub/b; printf 'c\\n' > d/sub/deep/c
         printf 'ro\\n' > ro; chmod 444 ro
         printf 'x\\n' > keep/inner/x; printf 'y\\n' > keep/y
         seq 1 20000 > big
         ln -s f rel; ln -s {r}/d/a abs; ln -s d dirlink
         mkfifo fifo
         printf '#!/bin/sh\\necho script\\n' > d/run.sh; chmod 755 d/run.sh
         touch -d '2020-02-02 02:02:02' f d/a d/sub/b d/sub/deep/c ro keep/y keep/inner/x big
         touch -h -d '2020-02-02 02:02:02' rel abs dirlink",
        r = root.display()
    );
    ok(&sh(&script, root));
}

struct Fixture {
    _tmp: TempDir,
    lower: std::path::PathBuf,
    copy: std::path::PathBuf,
    upper: std::path::PathBuf,
    lower_before: String,
    start: String,
}

impl Fixture {
    fn new(tag: &str) -> Fixture {
        Fixture::with(tag, ":")
    }

    /// The lower tree of `make_lower`, then `extra` run in it.
    fn with(tag: &str, extra: &str) -> Fixture {
        let tmp = TempDir::new(&format!("cow-{tag}"));
        let (lower, copy, upper) = (tmp.join("lower"), tmp.join("copy"), tmp.join("upper"));
        std::fs::create_dir(&lower).unwrap();
        make_lower(&lower);
        ok(&sh(extra, &lower));
        // the copy's absolute symlink points into the copy, as the view's into the view
        ok(&sh(
            &format!(
                "cp -a {l} {c} && ln -sfn {c}/d/a {c}/abs && touch -h -d '2020-02-02 02:02:02' {c}/abs",
                l = lower.display(),
                c = copy.display()
            ),
            tmp.path(),
        ));
        let start = now_ns().to_string();
        let lower_before = py(&[lower.to_str().unwrap(), "0", "strict"], MANIFEST);
        Fixture { _tmp: tmp, lower, copy, upper, lower_before, start }
    }

    /// Run `script` natively in the copy and through the view; outputs must agree (with
    /// the tree's own path written ROOT).
    fn same(&self, script: &str) {
        let native = sh(script, &self.copy);
        let view = in_view(&self.upper, &self.lower, &[], script, &self.lower);
        let norm = |o: &Output, root: &Path| {
            let t = format!("{}{}status {:?}\n", stdout(o), stderr(o), o.status.code());
            t.replace(root.to_str().unwrap(), "ROOT")
        };
        let (n, v) = (norm(&native, &self.copy), norm(&view, &self.lower));
        assert_eq!(n, v, "script:\n{script}\n--- native (left) and through the cow view (right) differ");
    }

    /// The final trees agree (the view seen in a new session), cow-diff lists what changed
    /// in the copy, and the lower tree is as it was.
    fn check_end(&self) {
        let want = py(&[self.copy.to_str().unwrap(), &self.start], MANIFEST);
        let script = format!("{} -c \"$MANIFEST\" {} {}", python(), self.lower.display(), self.start);
        let mut c = Command::new(vurs());
        let spec = format!("type=cow,source={},target={}", self.upper.display(), self.lower.display());
        c.args(["--mount", &spec, "--", "sh", "-c", &script]).env("MANIFEST", MANIFEST);
        let got = ok(&run_with_timeout(c, TIMEOUT));
        let (want, got) = (
            want.replace(self.copy.to_str().unwrap(), "ROOT"),
            got.replace(self.lower.to_str().unwrap(), "ROOT"),
        );
        let only = |a: &str, b: &str| {
            a.lines().filter(|l| !b.lines().any(|x| x == *l)).collect::<Vec<_>>().join("\n")
        };
        assert!(
            want == got,
            "final trees differ: copy only:\n{}\nview only:\n{}",
            only(&want, &got),
            only(&got, &want)
        );
        let after = py(&[self.lower.to_str().unwrap(), "0", "strict"], MANIFEST);
        assert_eq!(self.lower_before, after, "the lower tree changed");
        // cow-diff: exactly what changed in the copy
        let orig = self._tmp.join("orig");
        if !orig.exists() {
            ok(&sh(&format!("cp -a {} {}", self.lower.display(), orig.display()), self._tmp.path()));
        }
        let expected = py(
            &[orig.to_str().unwrap(), self.copy.to_str().unwrap(), self.lower.to_str().unwrap()],
            TREE_DIFF,
        );
        let d =
            vurs_run(&["cow-diff", "--lower", self.lower.to_str().unwrap(), self.upper.to_str().unwrap()]);
        assert_eq!(expected.trim(), ok(&d).trim(), "cow-diff (right) is not the changes of the copy (left)");
    }
}

#[test]
fn writes_copy_up_with_mode_and_times() {
    let f = Fixture::new("writes");
    f.same(
        "stat -c '%n %a %s %Y' f ro d/a; echo more >> f; cat f; stat -c '%n %a %s' f
         printf 'new' > d/a; cat d/a; truncate -s 3 big; wc -c big
         chmod 600 d/sub/b; stat -c '%n %a %s %Y' d/sub/b
         touch -d '2001-01-01 00:00:00' d/sub/deep/c; stat -c '%n %Y' d/sub/deep/c
         chmod 700 d; stat -c '%n %a' d; ls d
         echo x > ro2; echo w >> rel; cat f; cat abs; cat dirlink/a
         : > d/sub/newfile; ls -a d/sub",
    );
    f.check_end();
}

#[test]
fn removals_renames_links() {
    let f = Fixture::new("removals");
    f.same(
        "rm f; ls; cat f; rm -r d; ls; ls d; rmdir keep; rmdir empty; ls -a
         rm keep 2>&1; rm keep/y/ 2>&1; rmdir keep/y 2>&1; unlink keep/inner 2>&1
         mkdir d; ls -a d; echo again > f; cat f
         mv keep moved; ls -R moved; cat moved/inner/x; ls -a
         mv big big2; wc -l big2; mv moved/y moved/inner/; ls -a moved moved/inner
         ln moved/inner/y hard; echo through >> hard; cat moved/inner/y
         ln -s moved/inner sym; ls sym/; ln -s /nonexistent dangling; ls -l dangling | cut -c1
         mkdir -p n/e/w; touch n/e/w/file; rm -rf n; ls -a
         rm -f fifo; mkfifo fifo2; ls -a",
    );
    f.check_end();
}

/// chdir, getcwd, exec (a lower script, a copied-up one, a new one), a unix socket and a
/// fifo in the view, relative paths from a directory of either layer.
#[test]
fn chdir_exec_sockets() {
    let f = Fixture::new("exec");
    let script = format!(
        "cd d && pwd && ./run.sh && cat a && echo new > a2 && cd sub && pwd && ls && cat ../a2
         cd .. && echo 'echo appended' >> run.sh && ./run.sh && cd /; cd - >/dev/null; pwd
         mkdir -p newdir && cd newdir && pwd && echo inner > i && cat ../a i && cd ../.. && ls d
         {py} -c \"import socket,os; s=socket.socket(socket.AF_UNIX); s.bind('d/sock'); print(os.path.exists('d/sock'))\"
         ls -l d/sock | cut -c1; rm d/sock
         (echo through-fifo > fifo &) ; cat fifo
         {py} -c \"import os; [os.close(os.open(p, os.O_CREAT | os.O_RDONLY, 0o640)) for p in ('d/rdcreat', 'f')]\"
         ls -l d/rdcreat f | cut -c1-10; cat f",
        py = python()
    );
    f.same(&script);
    f.check_end();
}

/// Listings of a merged directory: each name once, the same through readdir, scandir and
/// ls; telldir/seekdir/rewinddir (by ctypes over libc's DIR) find the same entries again.
#[test]
fn merged_listings_and_seekdir() {
    let f = Fixture::new("listings");
    let seek = r#"
import ctypes, ctypes.util, os
libc = ctypes.CDLL(ctypes.util.find_library('c'))
class D(ctypes.Structure):
    _fields_ = [('ino', ctypes.c_uint64), ('off', ctypes.c_int64), ('reclen', ctypes.c_ushort), ('type', ctypes.c_ubyte), ('name', ctypes.c_char * 256)]
libc.opendir.restype = ctypes.c_void_p
libc.readdir.restype = ctypes.POINTER(D); libc.readdir.argtypes = [ctypes.c_void_p]
libc.telldir.restype = ctypes.c_long; libc.telldir.argtypes = [ctypes.c_void_p]
libc.seekdir.argtypes = [ctypes.c_void_p, ctypes.c_long]; libc.rewinddir.argtypes = [ctypes.c_void_p]
d = libc.opendir(b'.')
def rest():
    out = []
    while True:
        e = libc.readdir(d)
        if not e: return out
        out.append(e.contents.name.decode())
first, pos = [], []
while True:
    pos.append(libc.telldir(d))
    e = libc.readdir(d)
    if not e: break
    first.append(e.contents.name.decode())
assert len(first) == len(set(first)), first
ok = True
for i in range(0, len(first), 7):
    libc.seekdir(d, pos[i])
    ok &= rest() == first[i:]
libc.rewinddir(d)
ok &= rest() == first
print(sorted(first) == sorted(os.listdir('.') + ['.', '..']), ok, sorted(first))
"#;
    let script = format!(
        "for i in $(seq 1 300); do echo $i > n$i; done; rm d/a; rm f; touch d/z
         ls -a; ls -a d; {py} -c \"$SEEK\"; cd d && {py} -c \"$SEEK\"",
        py = python()
    );
    std::env::set_var("SEEK", seek);
    f.same(&script);
    f.check_end();
}

/// Hard-linked lower files stay linked in the view (the index in UPPER): a write through
/// one name shows through every other, all names have one st_ino (tar stores links), `ln`
/// of a copied-up name joins them, removing a name leaves the others; a later session
/// over the same UPPER still has them together. (st_nlink is not compared: the view's
/// counts the index's link, see docs/shipped-modules.md.)
#[test]
fn hard_links_stay_together() {
    let f = Fixture::with(
        "hardlinks",
        "printf 'one\\n' > h1; ln h1 h2; ln h1 d/sub/h3; printf 'z\\n' > t1; ln t1 t2; ln t1 d/t4
         printf 'x\\n' > x1; ln x1 x2; ln x1 x3
         touch -d '2020-02-02 02:02:02' h1 t1 x1",
    );
    let same = "same() { [ \"$(stat -c %i \"$1\")\" = \"$(stat -c %i \"$2\")\" ] && echo \"$1 $2 same\" || echo \"$1 $2 differ\"; }";
    f.same(&format!(
        "{same}
         same h1 h2; echo more >> h1; cat h2 d/sub/h3; same h1 h2; same h2 d/sub/h3
         ln h2 h4; echo four >> h4; cat h1; same h4 d/sub/h3
         rm h1; cat h2 d/sub/h3; ls
         ln t1 t3; same t1 t2; same t3 d/t4; echo tee >> t2; cat t1 t3 d/t4
         chmod 600 x2; stat -c '%n %a %s %Y' x1 x2 x3; mv x3 d/x3; same x1 d/x3
         tar cf - h2 d t1 t2 t3 h4 x1 x2 | tar tvf - | awk '{{print $1, $6, $7, $8, $9}}' | sort"
    ));
    f.same(&format!(
        "{same}
         cat h2 d/sub/h3; echo again >> d/sub/h3; cat h4; same h2 h4; same t1 d/t4; ls -a; ls -a d"
    ));
    f.check_end();
}

/// Lookups stay right while UPPER changes under them (the module caches UPPER's
/// directories): names read, then renamed away, recreated, replaced, removed, each looked
/// up again at once, from several processes.
#[test]
fn lookups_after_renames_and_recreations() {
    let f = Fixture::new("cache");
    f.same(
        "cat d/sub/b keep/y; ls d/sub keep; mv d e; cat d/sub/b 2>&1; ls e/sub; mkdir d; ls d; mkdir d/sub
         cat d/sub/b 2>&1; echo n > d/sub/b; cat d/sub/b e/sub/b; rm -r e; mv d e; cat e/sub/b; ls -R e
         mv keep/inner/x keep/x2; cat keep/x2 keep/inner/x 2>&1; mv keep/x2 keep/inner/x; cat keep/inner/x
         rm keep/y; ln -s inner keep/y; ls keep/y/; rm keep/y; mkdir keep/y; ls -a keep/y; rmdir keep/y; cat keep/y 2>&1
         (for i in 1 2 3 4 5; do mkdir -p p$i/q && echo $i > p$i/q/f && cat p1/q/f >/dev/null; done) &
         (for i in 1 2 3 4 5; do cat p$i/q/f >/dev/null 2>&1; ls p$i >/dev/null 2>&1; done; true) &
         wait; cat p*/q/f; ls",
    );
    f.check_end();
}

/// A later session over the same UPPER sees the same view, and changes it further.
#[test]
fn later_session_same_view() {
    let f = Fixture::new("persist");
    f.same("rm -r d; echo one > f; mkdir d; echo two > d/new; mv keep k2");
    f.same("ls -a . d k2; cat f d/new; rm k2/y; echo three >> f; ls -a k2");
    f.check_end();
}

/// Permissions are the kernel's on the lower object for an unprivileged caller (nobody
/// when the tests run as root): a root-owned file it cannot write stays unwritable through
/// the view, with the host's error; the fakeroot module's root may write, into UPPER.
#[test]
fn permissions_of_the_lower_tree() {
    let tmp = TempDir::new("cow-perm");
    let lower = tmp.join("lower");
    std::fs::create_dir(&lower).unwrap();
    ok(&sh("echo secret > owned && chmod 644 owned && mkdir -p closed && chmod 755 closed", &lower));
    // SAFETY: getuid cannot fail.
    let root = unsafe { libc::getuid() } == 0;
    if !root {
        eprintln!("skipped in part: the lower files must belong to another user (run as root)");
        return;
    }
    let upper = tmp.join("upper");
    let script = "echo x >> owned; echo rc=$?; touch closed/new; echo rc=$?; chmod 600 owned; echo rc=$?; rm owned; echo rc=$?; cat owned 2>/dev/null";
    let run = |args: &[&str]| {
        let spec = format!("type=cow,source={},target={}", upper.display(), lower.display());
        let v = vurs();
        let mut all = vec![v.to_str().unwrap(), "--mount", &spec];
        all.extend(args);
        all.extend(["--", "sh", "-c", script]);
        let mut c = as_nobody(&all);
        c.current_dir(&lower)
            .env("LC_ALL", "C")
            .env("PATH", format!("{}:/usr/bin:/bin", module_dir().display()));
        run_with_timeout(c, TIMEOUT)
    };
    let mut native = as_nobody(&["sh", "-c", script]);
    native.current_dir(&lower).env("LC_ALL", "C");
    let native = run_with_timeout(native, TIMEOUT);
    let norm = |o: &Output| format!("{}{}", stdout(o), stderr(o));
    assert_eq!(norm(&native), norm(&run(&[])), "nobody natively (left) and through the view (right)");
    assert!(!upper.join("owned").exists() && !upper.join("closed/new").exists(), "nothing copied up");
    let fake = run(&["-m", "fakeroot"]);
    assert!(!stdout(&fake).contains("rc=1"), "fake root may write: {}{}", stdout(&fake), stderr(&fake));
    assert_eq!(std::fs::read_to_string(lower.join("owned")).unwrap(), "secret\n");
    assert!(upper.join("closed/new").exists());
}

/// `make install` of a small C project into /usr/local of a cow view over `/`: the host's
/// /usr/local is unchanged, the view has the program, cow-diff lists exactly the installed
/// files (and the build products of the project directory).
#[test]
fn make_install_over_root() {
    if !Path::new("/usr/bin/make").exists() || !Path::new("/usr/bin/cc").exists() {
        panic!("make and cc are needed (apt-get install make gcc)");
    }
    let tmp = TempDir::new("cow-make");
    let proj = tmp.join("proj");
    std::fs::create_dir(&proj).unwrap();
    std::fs::write(
        proj.join("hello.c"),
        "#include <stdio.h>\nint main(void){puts(\"hello from cow\");return 0;}\n",
    )
    .unwrap();
    std::fs::write(
        proj.join("Makefile"),
        "PREFIX ?= /usr/local\nhello: hello.c\n\tcc -O1 -o hello hello.c\n\
install: hello\n\tmkdir -p $(PREFIX)/bin $(PREFIX)/share/vurs-cow-test\n\
\tinstall -m 755 hello $(PREFIX)/bin/vurs-cow-hello\n\tinstall -m 644 hello.c $(PREFIX)/share/vurs-cow-test/hello.c\n",
    )
    .unwrap();
    let upper = tmp.join("layer");
    let local_before = py(&["/usr/local", "0", "strict"], MANIFEST);
    // SAFETY: getuid cannot fail.
    let extra: &[&str] = if unsafe { libc::getuid() } == 0 { &[] } else { &["-m", "fakeroot"] };
    let script = format!(
        "cd {} && TMPDIR=$PWD make install PREFIX=/usr/local >/dev/null && /usr/local/bin/vurs-cow-hello && ls /usr/local/share/vurs-cow-test",
        proj.display()
    );
    let o = in_view(&upper, Path::new("/"), extra, &script, tmp.path());
    assert_eq!(ok(&o), "hello from cow\nhello.c\n");
    assert_eq!(local_before, py(&["/usr/local", "0", "strict"], MANIFEST), "the host's /usr/local changed");
    assert!(!Path::new("/usr/local/bin/vurs-cow-hello").exists());
    let diff = ok(&vurs_run(&["cow-diff", upper.to_str().unwrap()]));
    let under =
        |p: &str| diff.lines().filter(|l| l[2..].starts_with(p)).map(String::from).collect::<Vec<_>>();
    let mut want = vec!["A /usr/local/bin/vurs-cow-hello".to_string()];
    want.push("A /usr/local/share/vurs-cow-test".into());
    want.push("A /usr/local/share/vurs-cow-test/hello.c".into());
    if !Path::new("/usr/local/bin").exists() {
        want.insert(0, "A /usr/local/bin".into());
    }
    want.sort();
    let mut got = under("/usr/local/");
    got.sort();
    assert_eq!(want, got, "cow-diff under /usr/local:\n{diff}");
    let p = proj.display().to_string();
    let mut products = under(&p);
    products.sort();
    assert_eq!(products, vec![format!("A {p}/hello")], "build products:\n{diff}");
    let others: Vec<_> =
        diff.lines().filter(|l| !l[2..].starts_with("/usr/local/") && !l[2..].starts_with(&p)).collect();
    assert!(others.iter().all(|l| l.starts_with("M ")), "nothing else added or removed: {others:?}");
}

#[test]
fn cow_diff_bad_input() {
    let o = vurs_run(&["cow-diff", "/nonexistent-vurs-layer"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).starts_with("vurs: cow-diff: /nonexistent-vurs-layer:"), "{}", stderr(&o));
}

/// `vurs mount -t cow UPPER TARGET` inside a session (`-m cow`) gives the same view as
/// `--mount` at start, for the rest of the session.
#[test]
fn mount_inside_a_session() {
    let f = Fixture::new("runtime");
    let script = format!(
        "vurs mount -t cow {u} {l} && cd {l} && rm -r d && echo new > f && mkdir d && ls -a . d && cat f",
        u = f.upper.display(),
        l = f.lower.display()
    );
    let mut c = Command::new(vurs());
    c.args(["-m", "cow", "--", "sh", "-c", &script])
        .env("PATH", format!("{}:/usr/bin:/bin", module_dir().display()));
    let got = ok(&run_with_timeout(c, TIMEOUT));
    let want = ok(&sh("rm -r d && echo new > f && mkdir d && ls -a . d && cat f", &f.copy));
    assert_eq!(want, got);
    f.check_end();
}
