//! fsremap: `vurs -b SRC:DEST`, `--mount type=fsremap,...`, `vurs mount -t fsremap` in a
//! session. Most tests are differential: the same script runs natively on a tree at ROOT
//! and under vurs on the same tree mounted at a ROOT that does not exist on the host; the
//! outputs (root prefix replaced) and the host side effects must be identical.
mod common;
use common::*;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Debian's python (the one with the test suite), not a pyenv shim.
const PY: &str = "/usr/bin/python3";
const TIMEOUT: u64 = 180;

fn uniq(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}

/// PATH for every program run by these tests: vurs first (for `vurs mount` inside a
/// session), then the system directories (no pyenv shims).
fn path_env() -> String {
    format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", module_dir().display())
}

fn env(c: &mut Command) {
    c.env("PATH", path_env())
        .env("LC_ALL", "C")
        .env("TZ", "UTC")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir("/");
}

/// `vurs ARGS...` with the test environment.
fn vurs_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(vurs());
    c.args(args);
    env(&mut c);
    c
}

fn run(c: Command) -> Output {
    run_with_timeout(c, TIMEOUT)
}

fn show(o: &Output) -> String {
    format!("status {:?}\n--- stdout ---\n{}--- stderr ---\n{}", o.status, stdout(o), stderr(o))
}

/// A directory that does not exist on the host (a mount target); asserts that nothing
/// appears there and removes it if something did.
struct Nonexistent(PathBuf);
impl Nonexistent {
    fn new(tag: &str) -> Nonexistent {
        let p = std::env::temp_dir().join(format!("vurs-nonexistent-{}", uniq(tag)));
        assert!(!p.exists());
        Nonexistent(p)
    }
    fn join(&self, s: &str) -> PathBuf {
        self.0.join(s)
    }
    fn assert_still_missing(&self) {
        assert!(fs::symlink_metadata(&self.0).is_err(), "vurs created {} on the host", self.0.display());
    }
}
impl Drop for Nonexistent {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A tree (see `build_tree`) to bind at a target that does not exist on the host: the
/// source, the missing directory (check it at the end) and the target inside it.
fn bound_tree(tag: &str) -> (TempDir, Nonexistent, PathBuf) {
    let src = TempDir::new(&format!("{tag}-src"));
    build_tree(src.path(), "/unused");
    let missing = Nonexistent::new(tag);
    let t = missing.join("t");
    (src, missing, t)
}

/// `vurs -b SRC:T -- python3 -c SCRIPT`.
fn py_bound(src: &TempDir, t: &Path, script: &str) -> Command {
    let bind = format!("{}:{}", s(src.path()), s(t));
    vurs_cmd(&["-b", &bind, "--", PY, "-c", script])
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn write(p: &Path, data: &str, mode: u32) {
    fs::write(p, data).unwrap();
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

fn mkdir(p: &Path) {
    fs::create_dir(p).unwrap();
    fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap();
}

/// The standard tree. `root` is where programs see it (symlinks stored in it point there).
fn build_tree(d: &Path, root: &str) {
    fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
    write(&d.join("f"), "hello\n", 0o644);
    mkdir(&d.join("sub"));
    mkdir(&d.join("sub/deep"));
    mkdir(&d.join("empty"));
    write(&d.join("sub/g"), "x\n", 0o644);
    write(&d.join("sub/deep/h"), "deep\n", 0o644);
    symlink("f", d.join("rel")).unwrap();
    symlink(format!("{root}/f"), d.join("abs")).unwrap();
    symlink(format!("{root}/sub"), d.join("absdir")).unwrap();
    symlink("loop2", d.join("loop1")).unwrap();
    symlink("loop1", d.join("loop2")).unwrap();
    symlink("nothing", d.join("dangling")).unwrap();
    symlink("..", d.join("up")).unwrap();
}

/// A host directory outside the mount, with a link pointing into ROOT.
fn build_out(o: &Path, root: &str) {
    fs::set_permissions(o, fs::Permissions::from_mode(0o755)).unwrap();
    write(&o.join("outfile"), "out\n", 0o644);
    symlink(format!("{root}/sub"), o.join("into")).unwrap();
}

fn copy_exe(from: &str, to: &Path) {
    fs::copy(from, to).unwrap();
    fs::set_permissions(to, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Replace host-specific prefixes by placeholders (longest first).
fn normalize(text: &str, subst: &[(String, &str)]) -> String {
    let mut t = text.to_string();
    for (from, to) in subst {
        t = t.replace(from.as_str(), to);
    }
    t
}

fn content_key(data: &[u8], subst: &[(String, &str)]) -> String {
    if data.len() <= 8192 {
        normalize(&format!("{:?}", String::from_utf8_lossy(data)), subst)
    } else {
        // FNV-1a
        let mut h: u64 = 0xcbf29ce484222325;
        for &b in data {
            h = (h ^ b as u64).wrapping_mul(0x100000001b3);
        }
        format!("size={} fnv={h:016x}", data.len())
    }
}

/// Everything below `dir` (not following links): type, mode, size, links, data, link
/// text; with `times`, also mtime and ctime.
fn snapshot(dir: &Path, subst: &[(String, &str)], times: bool) -> BTreeMap<String, String> {
    fn walk(
        base: &Path,
        p: &Path,
        subst: &[(String, &str)],
        times: bool,
        out: &mut BTreeMap<String, String>,
    ) {
        let md = fs::symlink_metadata(p).unwrap();
        let rel = p.strip_prefix(base).unwrap();
        let key = format!("{:?}", rel.as_os_str());
        let ft = md.file_type();
        let mode = md.mode() & 0o7777;
        let mut v = if ft.is_dir() {
            format!("d {mode:o} nlink={}", md.nlink())
        } else if ft.is_symlink() {
            let t = fs::read_link(p).unwrap();
            normalize(&format!("l -> {:?}", t.as_os_str()), subst)
        } else if ft.is_file() {
            // (no size: file data may hold the root path, whose length differs)
            let data = fs::read(p).unwrap();
            format!("f {mode:o} nlink={} data={}", md.nlink(), content_key(&data, subst))
        } else {
            use std::os::unix::fs::FileTypeExt;
            let k = if ft.is_fifo() {
                "fifo"
            } else if ft.is_socket() {
                "socket"
            } else {
                "other"
            };
            format!("{k} {mode:o}")
        };
        if times {
            v += &format!(
                " mtime={}.{:09} ctime={}.{:09} uid={} gid={}",
                md.mtime(),
                md.mtime_nsec(),
                md.ctime(),
                md.ctime_nsec(),
                md.uid(),
                md.gid()
            );
        }
        out.insert(key, v);
        if ft.is_dir() {
            let mut names: Vec<_> = fs::read_dir(p).unwrap().map(|e| e.unwrap().file_name()).collect();
            names.sort();
            for n in names {
                walk(base, &p.join(n), subst, times, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, subst, times, &mut out);
    out
}

fn map_text(m: &BTreeMap<String, String>) -> String {
    m.iter().map(|(k, v)| format!("{k}: {v}\n")).collect()
}

/// Line diff (longest common subsequence), changed lines with one line of context.
fn diff(a: &[&str], b: &[&str]) -> String {
    let (n, m) = (a.len(), b.len());
    let mut l = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            l[i][j] = if a[i] == b[j] { l[i + 1][j + 1] + 1 } else { l[i + 1][j].max(l[i][j + 1]) };
        }
    }
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if j < m && (i == n || l[i][j + 1] >= l[i + 1][j]) {
            ops.push(('+', b[j]));
            j += 1;
        } else {
            ops.push(('-', a[i]));
            i += 1;
        }
    }
    let mut out = String::new();
    for (k, (c, line)) in ops.iter().enumerate() {
        let near = |d: isize| {
            let x = k as isize + d;
            x >= 0 && (x as usize) < ops.len() && ops[x as usize].0 != ' '
        };
        if *c != ' ' || near(-1) || near(1) {
            out += &format!("  {c} {line}\n");
        } else if near(-2) || near(2) {
            out += "  ...\n";
        }
    }
    out
}

/// Mismatches found so far; panics with all of them.
#[derive(Default)]
struct Report(Vec<String>);
impl Report {
    fn same(&mut self, what: &str, native: &str, virt: &str) {
        if native == virt {
            return;
        }
        let (a, b): (Vec<&str>, Vec<&str>) = (native.lines().collect(), virt.lines().collect());
        self.0.push(format!(
            "== {what} differs (- native, + vurs):\n{}-- full native {what} --\n{native}\n",
            diff(&a, &b)
        ));
    }
    fn check(&mut self, ok: bool, msg: String) {
        if !ok {
            self.0.push(msg);
        }
    }
    fn finish(self) {
        if !self.0.is_empty() {
            panic!("{}", self.0.join("\n"));
        }
    }
}

/// One side of a differential run.
struct Side {
    /// Directory holding the tree on the host.
    src: PathBuf,
    /// Where programs see the tree.
    root: PathBuf,
    out: TempDir,
    subst: Vec<(String, &'static str)>,
}

impl Side {
    fn new(src: PathBuf, root: PathBuf, tag: &str, extra: &dyn Fn(&Path, &str)) -> Side {
        let r = s(&root).to_string();
        build_tree(&src, &r);
        extra(&src, &r);
        let out = TempDir::new(&format!("{tag}-out"));
        build_out(out.path(), &r);
        let base = root.parent().unwrap();
        let subst = vec![
            (r.clone(), "<ROOT>"),
            (s(out.path()).to_string(), "<OUT>"),
            (s(base).to_string(), "<BASE>"),
            (name(out.path()), "<OUTNAME>"),
            (name(base), "<BASENAME>"),
        ];
        Side { src, root, out, subst }
    }
    fn env(&self, c: &mut Command) {
        env(c);
        c.env("ROOT", &self.root)
            .env("OUT", self.out.path())
            .env("OUTNAME", name(self.out.path()))
            .env("BASENAME", name(self.root.parent().unwrap()))
            .env("PY", PY);
    }
    fn norm(&self, t: &str) -> String {
        normalize(t, &self.subst)
    }
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_str().unwrap().to_string()
}

struct DiffResult {
    /// Normalized stdout of the vurs run.
    out: String,
    report: Report,
}

/// Run `argv` natively on a tree at <tmp>/<x>/t and under `vurs -b SRC:ROOT` with ROOT
/// a path missing on the host; compare stdout, stderr, status and host side effects.
/// `extra` adds files to the tree (args: host dir, root as seen by programs).
fn differential(tag: &str, argv: &[&str], extra: &dyn Fn(&Path, &str)) -> DiffResult {
    let nat_base = TempDir::new(&format!("{tag}-nat"));
    let nat_root = nat_base.join("t");
    fs::create_dir(&nat_root).unwrap();
    fs::set_permissions(nat_base.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let nat = Side::new(nat_root.clone(), nat_root, tag, extra);

    let src = TempDir::new(&format!("{tag}-src"));
    let missing = Nonexistent::new(tag);
    let vroot = missing.join("t");
    let vir = Side::new(src.path().to_path_buf(), vroot.clone(), tag, extra);

    let mut c = Command::new(argv[0]);
    c.args(&argv[1..]);
    nat.env(&mut c);
    let on = run(c);

    let bind = format!("{}:{}", s(&vir.src), s(&vir.root));
    let mut c = Command::new(vurs());
    c.args(["-b", &bind, "--"]).args(argv);
    vir.env(&mut c);
    let ov = run(c);

    let mut r = Report::default();
    let (n_out, v_out) = (nat.norm(&stdout(&on)), vir.norm(&stdout(&ov)));
    let (n_err, v_err) = (nat.norm(&stderr(&on)), vir.norm(&stderr(&ov)));
    r.same("stdout", &n_out, &v_out);
    r.same("stderr", &n_err, &v_err);
    r.same("exit status", &format!("{:?}", on.status.code()), &format!("{:?}", ov.status.code()));
    r.same(
        "host tree after the run (SRC)",
        &map_text(&snapshot(&nat.src, &nat.subst, false)),
        &map_text(&snapshot(&vir.src, &vir.subst, false)),
    );
    r.same(
        "host directory outside the mount after the run",
        &map_text(&snapshot(nat.out.path(), &nat.subst, false)),
        &map_text(&snapshot(vir.out.path(), &vir.subst, false)),
    );
    r.check(
        fs::symlink_metadata(&missing.0).is_err(),
        format!("vurs created {} on the host", missing.0.display()),
    );
    DiffResult { out: v_out, report: r }
}

fn py_diff(tag: &str, body: &str, extra: &dyn Fn(&Path, &str)) -> DiffResult {
    let script = format!("{PY_PRELUDE}\n{body}");
    differential(tag, &[PY, "-c", &script], extra)
}

fn sh_diff(tag: &str, script: &str, extra: &dyn Fn(&Path, &str)) -> DiffResult {
    differential(tag, &["/bin/sh", "-c", script], extra)
}

fn no_extra(_: &Path, _: &str) {}

const PY_PRELUDE: &str = r#"
import os, sys, errno, stat
R = os.environ['ROOT']; O = os.environ['OUT']
ON = os.environ['OUTNAME']; BN = os.environ['BASENAME']; TN = os.path.basename(R)
def t(label, f):
    try:
        r = f()
    except OSError as x:
        r = 'ERR ' + errno.errorcode.get(x.errno, str(x.errno))
    print('%s: %s' % (label, r), flush=True)
def desc(st):
    return stat.filemode(st.st_mode) + (' size=%d' % st.st_size if stat.S_ISREG(st.st_mode) else '')
def kind(p, **kw): return desc(os.stat(p, **kw))
def lkind(p, **kw): return desc(os.lstat(p, **kw))
def read(p):
    with open(p, 'rb') as f: return f.read()
def opened(p, flags, **kw):
    fd = os.open(p, flags, 0o644, **kw)
    os.close(fd)
    return 'ok'
"#;

// ---------------------------------------------------------------------------------------
// The classic example, three ways.

fn hostname_file() -> String {
    fs::read_to_string("/etc/hostname").expect("/etc/hostname")
}

fn classic(args: &[&str]) {
    let before = fs::read("/etc/passwd").unwrap();
    let o = run(vurs_cmd(args));
    assert!(o.status.success(), "{}", show(&o));
    assert_eq!(stdout(&o), hostname_file(), "{}", show(&o));
    assert_eq!(fs::read("/etc/passwd").unwrap(), before, "host /etc/passwd changed");
}

#[test]
fn classic_bind_option() {
    classic(&["-b", "/etc/hostname:/etc/passwd", "--", "cat", "/etc/passwd"]);
}

#[test]
fn classic_mount_option() {
    classic(&["--mount", "type=fsremap,source=/etc/hostname,target=/etc/passwd", "--", "cat", "/etc/passwd"]);
}

#[test]
fn classic_mount_inside_session() {
    classic(&[
        "-m",
        "fsremap",
        "--",
        "sh",
        "-c",
        "vurs mount -t fsremap /etc/hostname /etc/passwd; cat /etc/passwd",
    ]);
}

// ---------------------------------------------------------------------------------------
// Differential suite.

#[test]
fn diff_relative_paths() {
    let r = py_diff(
        "rel",
        r#"
os.chdir(R)
t('getcwd', os.getcwd)
t('read f', lambda: read('f'))
t('read ./sub/g', lambda: read('./sub/g'))
t('read sub/deep/../g', lambda: read('sub/deep/../g'))
t('read sub//deep/./h', lambda: read('sub//deep/./h'))
t('listdir .', lambda: sorted(os.listdir('.')))
t('listdir sub', lambda: sorted(os.listdir('sub')))
t('stat .', lambda: kind('.'))
t('stat sub/deep', lambda: kind('sub/deep'))
t('exists nothing', lambda: os.path.exists('nothing'))
t('abspath', lambda: os.path.abspath('sub/../f'))
os.chdir('sub')
t('getcwd sub', os.getcwd)
t('read ../f', lambda: read('../f'))
t('read ../rel', lambda: read('../rel'))
t('listdir ..', lambda: sorted(os.listdir('..')))
t('stat deep/h', lambda: kind('deep/h'))
os.chdir('deep')
t('getcwd deep', os.getcwd)
t('read ../../f', lambda: read('../../f'))
t('read ../../abs', lambda: read('../../abs'))
os.chdir('../..')
t('getcwd back', os.getcwd)
t('scandir', lambda: sorted((e.name, e.is_dir(), e.is_file(), e.is_symlink()) for e in os.scandir('.')))
t('walk', lambda: sorted((d, sorted(ds), sorted(fs)) for d, ds, fs in os.walk('.')))
t('access f', lambda: [os.access('f', m) for m in (os.R_OK, os.W_OK, os.X_OK)])
t('glob', lambda: sorted(__import__('glob').glob('sub/**', recursive=True)))
"#,
        &no_extra,
    );
    r.report.finish();
}

#[test]
fn diff_cwd_inside_target_shell() {
    let r = sh_diff(
        "cwd",
        r#"
cd "$ROOT/sub" && pwd && /bin/pwd -P && ls
cd deep && pwd && /bin/pwd && ls
cd ../.. && pwd && ls
cd "$ROOT/absdir" && pwd && pwd -P && /bin/pwd -P && ls
cd "$OUT/into" && pwd && pwd -P && ls && cat g
cd "$ROOT" && cd sub && cd .. && cd ./sub/deep && /bin/pwd
cd "$ROOT/loop1"; echo "rc=$?"
cd "$ROOT/f"; echo "rc=$?"
cd "$ROOT/nothing"; echo "rc=$?"
cd "$ROOT/dangling"; echo "rc=$?"
"#,
        &no_extra,
    );
    let mut rep = r.report;
    rep.check(
        r.out.starts_with("<ROOT>/sub\n<ROOT>/sub\ndeep\ng\n"),
        format!("expected cd/pwd/pwd -P/ls in <ROOT>/sub, got:\n{}", r.out),
    );
    rep.finish();
}

#[test]
fn diff_dirfd_at_calls() {
    let r = py_diff(
        "dirfd",
        r#"
fd = os.open(R + '/sub', os.O_RDONLY | os.O_DIRECTORY)
t('stat g', lambda: kind('g', dir_fd=fd))
t('lstat deep', lambda: lkind('deep', dir_fd=fd))
t('listdir fd', lambda: sorted(os.listdir(fd)))
t('read g', lambda: os.read(os.open('g', os.O_RDONLY, dir_fd=fd), 100))
t('stat ../f', lambda: kind('../f', dir_fd=fd))
t('stat ../abs', lambda: kind('../abs', dir_fd=fd))
t('lstat ../abs', lambda: kind('../abs', dir_fd=fd, follow_symlinks=False))
t('readlink ../abs', lambda: os.readlink('../abs', dir_fd=fd))
t('readlink ../rel', lambda: os.readlink('../rel', dir_fd=fd))
t('proc fd', lambda: os.readlink('/proc/self/fd/%d' % fd))
t('absolute path ignores dirfd', lambda: kind(R + '/f', dir_fd=fd))
t('mkdir', lambda: os.mkdir('nd', dir_fd=fd))
t('stat nd', lambda: kind(R + '/sub/nd'))
t('rmdir', lambda: os.rmdir('nd', dir_fd=fd))
t('exists nd', lambda: os.path.exists(R + '/sub/nd'))
t('symlink', lambda: os.symlink('g', 'gl', dir_fd=fd))
t('readlink gl', lambda: os.readlink('gl', dir_fd=fd))
t('rename', lambda: os.rename('gl', 'gl2', src_dir_fd=fd, dst_dir_fd=fd))
t('unlink', lambda: os.unlink('gl2', dir_fd=fd))
t('link', lambda: os.link('g', 'g.hard', src_dir_fd=fd, dst_dir_fd=fd))
t('nlink', lambda: os.stat('g', dir_fd=fd).st_nlink)
t('chmod', lambda: os.chmod('g', 0o600, dir_fd=fd))
t('mode', lambda: kind('g', dir_fd=fd))
t('utime', lambda: os.utime('g', (1000000000, 1200000000), dir_fd=fd))
t('mtime', lambda: os.stat('g', dir_fd=fd).st_mtime)
t('access', lambda: os.access('g', os.R_OK, dir_fd=fd))
t('create', lambda: os.write(os.open('new', os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640, dir_fd=fd), b'new\n'))
t('mkfifo', lambda: os.mkfifo('fifo', dir_fd=fd))
t('stat fifo', lambda: kind('fifo', dir_fd=fd))
fd2 = os.open('deep', os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
t('listdir deep', lambda: sorted(os.listdir(fd2)))
t('stat ../../f from deep', lambda: kind('../../f', dir_fd=fd2))
t('read ../g from deep', lambda: os.read(os.open('../g', os.O_RDONLY, dir_fd=fd2), 100))
t('rename to parent', lambda: os.rename('h', '../h2', src_dir_fd=fd2, dst_dir_fd=fd2))
t('rename between dirfds', lambda: os.rename('g.hard', 'g.moved', src_dir_fd=fd, dst_dir_fd=fd2))
fd3 = os.open(R, os.O_RDONLY | os.O_DIRECTORY)
t('root stat sub/g', lambda: kind('sub/g', dir_fd=fd3))
t('root stat absdir/g', lambda: kind('absdir/g', dir_fd=fd3))
t('root stat up/t/f', lambda: kind('up/' + TN + '/f', dir_fd=fd3))
t('root listdir', lambda: sorted(os.listdir(fd3)))
t('root proc fd', lambda: os.readlink('/proc/self/fd/%d' % fd3))
fd4 = os.open(R + '/sub', os.O_PATH | os.O_DIRECTORY)
t('O_PATH stat', lambda: kind('g', dir_fd=fd4))
t('O_PATH proc fd', lambda: os.readlink('/proc/self/fd/%d' % fd4))
fd5 = os.open(R + '/absdir', os.O_RDONLY | os.O_DIRECTORY)
t('via link listdir', lambda: sorted(os.listdir(fd5)))
t('via link proc fd', lambda: os.readlink('/proc/self/fd/%d' % fd5))
t('fstat file', lambda: desc(os.fstat(os.open(R + '/f', os.O_RDONLY))))
os.fchdir(fd)
t('fchdir getcwd', os.getcwd)
t('fchdir read', lambda: read('deep/../g'))
t('listdir fd again', lambda: sorted(os.listdir(fd)))
"#,
        &no_extra,
    );
    r.report.finish();
}

#[test]
fn diff_symlinks() {
    let r = py_diff(
        "links",
        r#"
os.chdir(R)
for p in ['rel', 'abs', 'absdir', 'dangling', 'loop1', 'up']:
    t('lstat ' + p, lambda: lkind(p))
    # 'up' leads to ROOT's parent: its type must match, its permission bits are not specified
    t('stat ' + p, lambda: kind(p) if p != 'up' else kind(p)[0])
    t('stat nofollow ' + p, lambda: kind(p, follow_symlinks=False))
    t('readlink ' + p, lambda: os.readlink(p))
    t('realpath ' + p, lambda: os.path.realpath(p))
    t('islink/isdir/isfile ' + p, lambda: (os.path.islink(p), os.path.isdir(p), os.path.isfile(p)))
t('read abs', lambda: read('abs'))
t('read absdir/g', lambda: read('absdir/g'))
t('read absdir/../f', lambda: read('absdir/../f'))
t('listdir absdir', lambda: sorted(os.listdir('absdir')))
t('realpath absdir/deep/h', lambda: os.path.realpath('absdir/deep/h'))
t('samefile', lambda: os.path.samefile('abs', 'f'))
t('new abs symlink', lambda: os.symlink(R + '/sub/g', 'newabs'))
t('read newabs', lambda: read('newabs'))
t('readlink newabs', lambda: os.readlink('newabs'))
t('chain', lambda: os.symlink(R + '/abs', 'abs2'))
t('read chain', lambda: read('abs2'))
t('dir link', lambda: os.symlink(R + '/sub/deep', 'deeplink'))
t('listdir dir link', lambda: sorted(os.listdir('deeplink/')))
t('read via dir link', lambda: read('deeplink/h'))
t('read host link into target', lambda: read(O + '/into/g'))
t('listdir host link', lambda: sorted(os.listdir(O + '/into')))
t('lstat host link', lambda: lkind(O + '/into'))
t('stat host link', lambda: kind(O + '/into'))
t('realpath host link', lambda: os.path.realpath(O + '/into/g'))
t('dotdot after host link', lambda: read(O + '/into/../f'))
t('readlink host link', lambda: os.readlink(O + '/into'))
t('new host link', lambda: os.symlink(R + '/abs', O + '/into2'))
t('read new host link', lambda: read(O + '/into2'))
t('create through dangling', lambda: open('dangling', 'w').write('z'))
t('read nothing', lambda: read('nothing'))
t('unlink link', lambda: os.unlink('rel'))
t('target stays', lambda: read('f'))
"#,
        &no_extra,
    );
    r.report.finish();
}

#[test]
fn diff_dotdot_leaving_mount() {
    let r = py_diff(
        "dotdot",
        r#"
os.chdir(R + '/sub')
t('relative out', lambda: read('../../../%s/outfile' % ON))
t('R/../t/f', lambda: read(R + '/../%s/f' % TN))
t('R/sub/../../t/f', lambda: read(R + '/sub/../../%s/f' % TN))
t('deep out and in', lambda: read(R + '/sub/deep/../../../%s/sub/g' % TN))
t('realpath R/..', lambda: os.path.realpath(R + '/..'))
t('realpath R/../..', lambda: os.path.realpath(R + '/../..'))
t('realpath ..', lambda: os.path.realpath('..'))
t('up link', lambda: read(R + '/up/%s/f' % TN))
t('up link relative', lambda: read('../up/%s/sub/g' % TN))
t('out, link back in, dotdot', lambda: read('../../../%s/into/../f' % ON))
t('stat R/../..', lambda: kind(R + '/../..'))
t('listdir outside', lambda: sorted(os.listdir(R + '/../../' + ON)))
t('absolute out', lambda: read(R + '/../../' + ON + '/outfile'))
os.chdir(R + '/../..')
t('getcwd', os.getcwd)
t('read back in', lambda: read(BN + '/' + TN + '/f'))
t('listdir back in', lambda: sorted(os.listdir(BN + '/' + TN + '/sub')))
os.chdir(R)
os.chdir('../../' + ON)
t('getcwd out', os.getcwd)
t('read into/g', lambda: read('into/g'))
t('read ../BN/t/sub/../f', lambda: read('../%s/%s/sub/../f' % (BN, TN)))
t('proc cwd', lambda: os.readlink('/proc/self/cwd'))
"#,
        &no_extra,
    );
    r.report.finish();
}

#[test]
fn diff_errors() {
    let r = py_diff(
        "errors",
        r#"
os.chdir(R)
t('stat f/', lambda: kind('f/'))
t('lstat f/', lambda: lkind('f/'))
t('open f/', lambda: opened('f/', os.O_RDONLY))
t('stat rel/', lambda: kind('rel/'))
t('lstat rel/', lambda: lkind('rel/'))
t('lstat absdir/', lambda: lkind('absdir/'))
t('lstat dangling/', lambda: lkind('dangling/'))
t('stat sub/', lambda: kind('sub/'))
t('stat abs path f/', lambda: kind(R + '/f/'))
t('unlink f/', lambda: os.unlink('f/'))
t('O_NOFOLLOW rel', lambda: opened('rel', os.O_RDONLY | os.O_NOFOLLOW))
t('O_NOFOLLOW abs', lambda: opened(R + '/abs', os.O_RDONLY | os.O_NOFOLLOW))
t('O_NOFOLLOW f', lambda: opened('f', os.O_RDONLY | os.O_NOFOLLOW))
t('O_NOFOLLOW via link dir', lambda: opened('absdir/g', os.O_RDONLY | os.O_NOFOLLOW))
t('O_EXCL f', lambda: opened('f', os.O_WRONLY | os.O_CREAT | os.O_EXCL))
t('O_EXCL rel', lambda: opened('rel', os.O_WRONLY | os.O_CREAT | os.O_EXCL))
t('O_EXCL dangling', lambda: opened('dangling', os.O_WRONLY | os.O_CREAT | os.O_EXCL))
t('O_EXCL sub', lambda: opened('sub', os.O_WRONLY | os.O_CREAT | os.O_EXCL))
t('O_EXCL abs path', lambda: opened(R + '/sub/g', os.O_WRONLY | os.O_CREAT | os.O_EXCL))
t('O_EXCL new', lambda: opened('sub/new', os.O_WRONLY | os.O_CREAT | os.O_EXCL))
t('O_CREAT on dangling', lambda: opened('dangling', os.O_WRONLY | os.O_CREAT))
t('lstat nothing', lambda: lkind('nothing'))
t('open loop', lambda: opened('loop1', os.O_RDONLY))
t('stat loop', lambda: kind('loop1'))
t('lstat loop', lambda: lkind('loop1'))
t('stat loop/x', lambda: kind('loop2/x'))
t('O_CREAT loop', lambda: opened('loop1', os.O_WRONLY | os.O_CREAT))
t('realpath strict loop', lambda: os.path.realpath('loop1', strict=True))
t('5000-byte path', lambda: kind('a' * 5000))
t('5000-byte abs path', lambda: kind(R + '/' + 'a' * 5000))
t('5000-byte open', lambda: opened(R + '/' + 'b' * 5000, os.O_WRONLY | os.O_CREAT))
t('5000-byte mkdir', lambda: os.mkdir('c' * 5000))
t('5000 bytes of sub/..', lambda: kind('sub/..' * 834 + 'f'))
t('300-byte name', lambda: kind('a' * 300))
t('300-byte name create', lambda: opened('d' * 300, os.O_WRONLY | os.O_CREAT))
t('4001 bytes of ./', lambda: kind('./' * 2000 + 'f'))
t('ENOENT nothing/x', lambda: kind('nothing/x'))
t('ENOTDIR f/x', lambda: kind('f/x'))
t('mkdir existing', lambda: os.mkdir('sub'))
t('mkdir in missing', lambda: os.mkdir('nothing/x'))
t('rmdir file', lambda: os.rmdir('f'))
t('rmdir non-empty', lambda: os.rmdir('sub'))
t('rmdir .', lambda: os.rmdir('.'))
t('rmdir empty/', lambda: os.rmdir('empty/'))
t('unlink dir', lambda: os.unlink('sub'))
t('open dir for write', lambda: opened('sub', os.O_WRONLY))
t('link dir', lambda: os.link('sub', 'sublink'))
t('rename dir into itself', lambda: os.rename('sub', 'sub/deep/x'))
t('rename file over dir', lambda: os.rename('f', 'sub'))
t('rename dir over file', lambda: os.rename('sub', 'f'))
t('symlink over existing', lambda: os.symlink('x', 'f'))
t('readlink of file', lambda: os.readlink('f'))
t('chdir file', lambda: os.chdir('f'))
t('listdir file', lambda: os.listdir('f'))
t('O_DIRECTORY on file', lambda: opened('f', os.O_RDONLY | os.O_DIRECTORY))
t('empty path', lambda: kind(''))
"#,
        &no_extra,
    );
    r.report.finish();
}

#[test]
fn diff_modifications() {
    let r = py_diff(
        "modify",
        r#"
os.chdir(R)
t('mkdir', lambda: os.mkdir('nd'))
t('mkdir nested', lambda: os.mkdir('nd/a'))
t('makedirs', lambda: os.makedirs('p/q/r'))
t('rmdir', lambda: os.rmdir('nd/a'))
t('rmdir abs path', lambda: os.rmdir(R + '/p/q/r'))
t('unlink', lambda: os.unlink('rel'))
t('unlink abs path', lambda: os.unlink(R + '/loop2'))
t('link', lambda: os.link('f', 'f.hard'))
t('link abs paths', lambda: os.link(R + '/sub/g', R + '/g.hard'))
t('nlink', lambda: (os.stat('f').st_nlink, os.stat('sub/g').st_nlink))
t('symlink', lambda: os.symlink('sub/g', 'sg'))
t('symlink abs', lambda: os.symlink(R + '/sub/deep', 'sdeep'))
t('listdir sdeep', lambda: sorted(os.listdir('sdeep')))
t('chmod', lambda: os.chmod('f', 0o600))
t('chmod via abs link', lambda: os.chmod('abs', 0o640))
t('chmod dir', lambda: os.chmod('empty', 0o700))
t('modes', lambda: (kind('f'), kind('empty')))
t('utime', lambda: os.utime('f', (1000000000, 1234567890)))
t('utime ns', lambda: os.utime('sub/g', ns=(5, 1500000000123456789)))
t('mtimes', lambda: (os.stat('f').st_mtime, os.stat('sub/g').st_mtime_ns))
t('lutime', lambda: os.utime('sg', (7, 7), follow_symlinks=False))
t('lstat mtime', lambda: (os.lstat('sg').st_mtime, os.stat('sg').st_mtime_ns))
t('truncate', lambda: os.truncate('f', 2))
t('read truncated', lambda: read('f'))
t('truncate abs', lambda: os.truncate(R + '/sub/g', 0))
t('ftruncate', lambda: os.ftruncate(os.open('sub/deep/h', os.O_RDWR), 3))
t('write new', lambda: open('new.txt', 'w').write('data'))
t('append', lambda: open('new.txt', 'a').write('more'))
t('read new', lambda: read('new.txt'))
t('rename', lambda: os.rename('new.txt', 'sub/new2.txt'))
t('rename dir', lambda: os.rename('p', 'p2'))
t('replace', lambda: os.replace('sub/new2.txt', 'f.hard'))
t('rename abs', lambda: os.rename(R + '/p2', R + '/sub/p3'))
t('rename onto empty dir', lambda: os.rename('nd', 'empty'))
t('listdir', lambda: sorted(os.listdir('.')))
t('listdir sub', lambda: sorted(os.listdir('sub')))
t('mkfifo', lambda: os.mkfifo('fifo'))
t('mknod', lambda: os.mknod('node', 0o600 | stat.S_IFREG))
t('stat node', lambda: kind('node'))
t('xattr', lambda: (os.setxattr('f', 'user.k', b'v'), os.getxattr('f', 'user.k'))[1])
t('listxattr', lambda: os.listxattr('f'))
t('removexattr', lambda: os.removexattr('f', 'user.k'))
t('chown', lambda: os.chown('f', os.getuid(), os.getgid()))
t('lchown', lambda: os.lchown('sg', os.getuid(), os.getgid()))
"#,
        &no_extra,
    );
    r.report.finish();
}

#[test]
fn diff_non_utf8_names() {
    let r = py_diff(
        "bytes",
        r#"
os.chdir(R)
n = b'caf\xe9'
t('mkdir', lambda: os.mkdir(n))
t('create', lambda: open(n + b'/x\xff', 'w').write('1'))
t('listdir', lambda: sorted(os.listdir(b'.')))
t('stat', lambda: kind(n + b'/x\xff'))
t('abs stat', lambda: kind(os.fsencode(R) + b'/' + n + b'/x\xff'))
t('rename', lambda: os.rename(n, b'd\xff'))
t('symlink', lambda: os.symlink(b'd\xff/x\xff', b'l\xfe'))
t('read link', lambda: read(b'l\xfe'))
t('readlink', lambda: os.readlink(b'l\xfe'))
os.chdir(b'd\xff')
t('getcwdb', os.getcwdb)
t('unlink', lambda: os.unlink(b'x\xff'))
"#,
        &no_extra,
    );
    r.report.finish();
}

#[test]
fn diff_unix_socket_in_target() {
    let r = py_diff(
        "sock",
        r#"
import socket
os.chdir(R)
def serve(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(1)
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(path)
    a, _ = s.accept()
    c.sendall(b'ping')
    return a.recv(10), stat.S_ISSOCK(os.lstat(path).st_mode)
t('absolute path', lambda: serve(R + '/sock'))
t('relative path', lambda: serve('sub/sock2'))
t('through abs dir link', lambda: serve(R + '/absdir/sock3'))
"#,
        &no_extra,
    );
    r.report.finish();
}

#[test]
fn rename_and_link_across_boundary_exdev() {
    let src = TempDir::new("xdev-src");
    let other = TempDir::new("xdev-other");
    let out = TempDir::new("xdev-out");
    let missing = Nonexistent::new("xdev");
    let (t1, t2) = (missing.join("t"), missing.join("u"));
    build_tree(src.path(), s(&t1));
    write(&other.join("o"), "other\n", 0o644);
    write(&out.join("outfile"), "out\n", 0o644);
    let before_other = snapshot(other.path(), &[], true);
    let script = r#"
import os, errno
T, U, O = os.environ['T'], os.environ['U'], os.environ['O']
def t(label, f):
    try:
        f(); r = 'ok'
    except OSError as x:
        r = errno.errorcode[x.errno]
    print(label, r)
t('rename mount->host', lambda: os.rename(T + '/f', O + '/f'))
t('rename host->mount', lambda: os.rename(O + '/outfile', T + '/outfile'))
t('rename mount->other mount', lambda: os.rename(T + '/f', U + '/f'))
t('rename dir mount->host', lambda: os.rename(T + '/sub', O + '/sub'))
t('link mount->host', lambda: os.link(T + '/f', O + '/f'))
t('link host->mount', lambda: os.link(O + '/outfile', T + '/outfile'))
t('rename via dirfds', lambda: os.rename('f', 'f', src_dir_fd=os.open(T, os.O_RDONLY), dst_dir_fd=os.open(O, os.O_RDONLY)))
t('rename via host link into mount', lambda: os.rename(T + '/f', O + '/into/f'))
"#;
    symlink(format!("{}/sub", s(&t1)), out.join("into")).unwrap();
    let before_out = snapshot(out.path(), &[], true);
    let mut c = vurs_cmd(&[
        "-b",
        &format!("{}:{}", s(src.path()), s(&t1)),
        "-b",
        &format!("{}:{}", s(other.path()), s(&t2)),
        "--",
        PY,
        "-c",
        script,
    ]);
    c.env("T", &t1).env("U", &t2).env("O", out.path());
    let o = run(c);
    assert_eq!(
        stdout(&o),
        "rename mount->host EXDEV\nrename host->mount EXDEV\nrename mount->other mount EXDEV\n\
         rename dir mount->host EXDEV\nlink mount->host EXDEV\nlink host->mount EXDEV\n\
         rename via dirfds EXDEV\nrename via host link into mount ok\n",
        "{}",
        show(&o)
    );
    // the last rename stays inside the mount: f moved to sub/f
    assert!(!src.join("f").exists(), "f still at the top of SRC");
    assert_eq!(fs::read_to_string(src.join("sub/f")).unwrap(), "hello\n");
    assert_eq!(snapshot(other.path(), &[], true), before_other);
    assert_eq!(snapshot(out.path(), &[], true), before_out);
    missing.assert_still_missing();

    // mv falls back to copy + unlink on EXDEV: the file lands on the host.
    let mut c = vurs_cmd(&[
        "-b",
        &format!("{}:{}", s(src.path()), s(&t1)),
        "--",
        "sh",
        "-c",
        r#"mv "$T/sub/g" "$O/moved" && cat "$O/moved" && ls "$T/sub""#,
    ]);
    c.env("T", &t1).env("O", out.path());
    let o = run(c);
    assert_eq!(stdout(&o), "x\ndeep\nf\n", "{}", show(&o));
    assert_eq!(fs::read_to_string(out.join("moved")).unwrap(), "x\n");
    assert!(!src.join("sub/g").exists());
    missing.assert_still_missing();
}

// ---------------------------------------------------------------------------------------
// Reverse translation: host paths the kernel reports are shown as virtual paths.

#[test]
fn diff_reverse_translation() {
    let r = sh_diff(
        "reverse",
        r#"
cd "$ROOT/sub"
pwd; pwd -P; /bin/pwd; /bin/pwd -P
readlink /proc/self/cwd
readlink /proc/thread-self/cwd
readlink /proc/$$/cwd
"$ROOT/readlink" /proc/self/exe
(cd "$ROOT" && ./readlink /proc/self/exe)
"$ROOT/absdir/../readlink" /proc/self/exe
readlink /proc/self/fd/3 3<"$ROOT/f"
readlink /proc/self/fd/3 3<../abs
readlink /proc/self/fd/3 3<"$ROOT/sub/deep"
readlink /proc/self/fd/4 4>"$ROOT/newfile"
readlink -f ../abs
realpath ../absdir/deep
realpath "$OUT/into"
sleep 3 & p=$!; readlink /proc/$p/cwd; kill $p
"$PY" -c '
import os, subprocess
print(os.getcwd())
print(os.path.realpath("."))
print(os.path.realpath("../abs"))
print(os.readlink("/proc/self/cwd"))
fd = os.open("../f", os.O_RDONLY)
print(os.readlink("/proc/self/fd/%d" % fd))
print(os.path.realpath("/proc/self/fd/%d" % fd))
print(subprocess.run([os.environ["ROOT"] + "/readlink", "/proc/self/exe"], capture_output=True, text=True).stdout, end="")
'
"#,
        &|d, _| copy_exe("/bin/readlink", &d.join("readlink")),
    );
    let mut rep = r.report;
    let want = "<ROOT>/sub\n<ROOT>/sub\n<ROOT>/sub\n<ROOT>/sub\n<ROOT>/sub\n<ROOT>/sub\n<ROOT>/sub\n\
                <ROOT>/readlink\n<ROOT>/readlink\n<ROOT>/readlink\n<ROOT>/f\n<ROOT>/f\n<ROOT>/sub/deep\n\
                <ROOT>/newfile\n<ROOT>/f\n<ROOT>/sub/deep\n<ROOT>/sub\n<ROOT>/sub\n\
                <ROOT>/sub\n<ROOT>/sub\n<ROOT>/f\n<ROOT>/sub\n<ROOT>/f\n<ROOT>/f\n<ROOT>/readlink\n";
    rep.check(r.out == want, format!("expected:\n{want}got:\n{}", r.out));
    rep.finish();
}

// ---------------------------------------------------------------------------------------
// Shell work inside TARGET.

#[test]
fn diff_shell_work() {
    let r = sh_diff(
        "shell",
        r#"
cd "$ROOT" && ls && ls -a sub && find . | sort && find . -type l | sort && find . -name g
mkdir -p a/b/c && ls -R a
cp -a sub a/b/c/ && find a | sort
mv a/b/c/sub a/moved && ls a a/moved
ln -s ../f a/lnk && cat a/lnk && readlink a/lnk
ln -s "$ROOT/sub" a/abslnk && ls a/abslnk/ && rm a/abslnk
find sub a -exec touch -h -d @1000000000 {} + && tar cf "$OUT/x.tar" -C "$ROOT" sub a && tar tf "$OUT/x.tar" | sort
mkdir x && tar xf "$OUT/x.tar" -C x && find x | sort
tar cf - sub | (cd "$OUT" && tar xf -) && find "$OUT/sub" | sort
cp -a "$OUT/sub" "$ROOT/fromout" && ls fromout
cp -a "$ROOT/sub" "$OUT/copy" && ls "$OUT/copy"
cp rel copied && cat copied
rm -r a/b && rm a/lnk && ls a
rm -rf x
mv f f2 && ls
mv sub/deep deep2 && ls deep2
rm -f loop1 loop2 dangling && ls
cat abs; echo "rc=$?"
wc -c < f2
echo appended >> f2 && cat f2
du -a sub | wc -l
"#,
        &no_extra,
    );
    r.report.finish();
}

#[test]
fn diff_python_script_in_target() {
    let r = sh_diff(
        "pyscript",
        r#"
cd "$ROOT" && "$PY" script.py
"$PY" "$ROOT/script.py"
cd sub && "$PY" ../script.py
cd / && PYTHONPATH="$ROOT" "$PY" -c 'import helper; print(helper.X, helper.__file__)'
"$PY" "$ROOT/absdir/../script.py"
"#,
        &|d, _| {
            write(
                &d.join("script.py"),
                "import os, sys\nprint(__file__)\nprint(sys.path[0])\nprint(os.getcwd())\n\
                 here = os.path.dirname(os.path.abspath(__file__))\nprint(here)\n\
                 print(open(os.path.join(here, 'f')).read(), end='')\n\
                 import helper\nprint(helper.X, helper.__file__)\n",
                0o644,
            );
            write(&d.join("helper.py"), "X = 42\n", 0o644);
        },
    );
    r.report.finish();
}

#[test]
fn diff_exec_in_target() {
    let r = sh_diff(
        "exec",
        r#"
"$ROOT/echo" hi
cd "$ROOT" && ./echo hi2
./script.sh a
"$ROOT/script.sh" b
sh script.sh c
PATH="$ROOT:$PATH" script.sh d
PATH="$ROOT/absdir/..:$PATH" echo e
"$ROOT/echolink" f
env "$ROOT/echo" g
"$PY" -c 'import subprocess, os; print(subprocess.run([os.environ["ROOT"] + "/script.sh", "p"], capture_output=True, text=True).stdout, end="")'
"$ROOT/f"; echo "rc=$?"
"$ROOT/nothing"; echo "rc=$?"
"#,
        &|d, root| {
            copy_exe("/bin/echo", &d.join("echo"));
            symlink(format!("{root}/echo"), d.join("echolink")).unwrap();
            write(
                &d.join("script.sh"),
                "#!/bin/sh\necho script \"$0\" \"$1\"\ncat \"$(dirname \"$0\")/f\"\n",
                0o755,
            );
        },
    );
    r.report.finish();
}

#[test]
fn diff_shebang_interpreter_in_target() {
    let r = sh_diff(
        "shebang",
        r#"
"$ROOT/inner.sh" x
cd "$ROOT" && ./inner.sh y
"$ROOT/inner2.sh" z
"#,
        &|d, root| {
            copy_exe("/bin/sh", &d.join("sh"));
            write(&d.join("inner.sh"), &format!("#!{root}/sh\necho inner \"$0\" \"$1\"\n"), 0o755);
            write(
                &d.join("inner2.sh"),
                &format!("#!{root}/absdir/../sh -e\necho inner2 \"$0\" \"$1\"\n"),
                0o755,
            );
        },
    );
    r.report.finish();
}

#[test]
fn diff_busybox_static() {
    let r = differential(
        "busybox",
        &[
            "/bin/busybox",
            "sh",
            "-c",
            r#"
busybox ls "$ROOT"
busybox ls -a "$ROOT/sub"
busybox cat "$ROOT/f" "$ROOT/abs" "$ROOT/absdir/g"
busybox find "$ROOT" | busybox sort
busybox readlink -f "$ROOT/abs"
busybox readlink "$ROOT/abs"
busybox stat -c '%n %F %s %a' "$ROOT/f" "$ROOT/sub/g" "$ROOT/sub"
cd "$ROOT/sub" && pwd && busybox pwd && busybox ls ..
busybox mkdir -p "$ROOT/bb/x" && busybox cp "$ROOT/f" "$ROOT/bb/x/f2"
busybox mv "$ROOT/bb/x/f2" "$ROOT/bb/f3" && busybox ln -s f3 "$ROOT/bb/l"
busybox cat "$ROOT/bb/l"
busybox rm -r "$ROOT/bb/x" && busybox ls "$ROOT/bb"
busybox cat "$ROOT/loop1"; echo "rc=$?"
busybox ls "$ROOT/f/"; echo "rc=$?"
"#,
        ],
        &no_extra,
    );
    r.report.finish();
}

// ---------------------------------------------------------------------------------------
// Mount targets missing on the host.

#[test]
fn missing_target_listed_in_parent() {
    let src = TempDir::new("parent-src");
    build_tree(src.path(), "/unused");
    let missing = Nonexistent::new("parent");
    let x = missing.0.clone();
    let target = x.join("a/b");
    let bind = format!("{}:{}", s(src.path()), s(&target));
    let mut c = vurs_cmd(&[
        "-b",
        &bind,
        "--",
        "sh",
        "-c",
        r#"ls "$X/a"; ls "$X"; ls "$X/a/b/sub"; stat -c %F "$X/a" "$X"
readlink -f "$X/a/b/sub"
"$PY" -c '
import os, stat, errno
x = os.environ["X"]
print(os.listdir(x + "/a"), os.path.isdir(x + "/a"), os.path.isdir(x))
for p in (x, x + "/a"):
    try:
        print("lstat", stat.S_ISDIR(os.lstat(p).st_mode))
    except OSError as e:
        print("lstat", errno.errorcode[e.errno])
for p in (x, x + "/a", x + "/"):
    try:
        os.mkdir(p); print("mkdir", p, "succeeded")
    except OSError as e:
        print("mkdir", errno.errorcode[e.errno])
for p in (x, x + "/a"):
    try:
        os.readlink(p); print("readlink", p, "succeeded")
    except OSError as e:
        print("readlink", errno.errorcode[e.errno])
'"#,
    ]);
    c.env("X", &x).env("PY", PY);
    let o = run(c);
    let xs = s(&x);
    assert_eq!(
        stdout(&o),
        format!(
            "b\na\ndeep\ng\ndirectory\ndirectory\n{xs}/a/b/sub\n['b'] True True\nlstat True\nlstat True\n\
             mkdir EEXIST\nmkdir EEXIST\nmkdir EEXIST\nreadlink EINVAL\nreadlink EINVAL\n"
        ),
        "{}",
        show(&o)
    );
    missing.assert_still_missing();
}

#[test]
fn missing_target_listed_in_existing_parent() {
    let src = TempDir::new("parent2-src");
    build_tree(src.path(), "/unused");
    let missing = Nonexistent::new("parent2");
    let parent = missing.0.parent().unwrap().to_path_buf();
    let bind = format!("{}:{}", s(src.path()), s(&missing.0));
    let mut c = vurs_cmd(&[
        "-b",
        &bind,
        "--",
        "sh",
        "-c",
        r#"ls -a "$P" | grep -cxF "$N"; find "$P" -maxdepth 1 -name "$N""#,
    ]);
    let n = name(&missing.0);
    c.env("P", &parent).env("N", &n);
    let o = run(c);
    assert_eq!(stdout(&o), format!("1\n{}\n", s(&missing.0)), "{}", show(&o));
    missing.assert_still_missing();
}

#[test]
fn tmpdir_inside_missing_target() {
    // A session whose TMPDIR is the mount target (what the CPython suites below do).
    let (src, missing, t) = bound_tree("tmpdir");
    let mut c = py_bound(
        &src,
        &t,
        r#"
import os, tempfile
T = os.environ['TMPDIR']
print(os.path.isdir(os.path.dirname(T)), os.path.isdir(T), tempfile.gettempdir() == T)
os.makedirs(T + '/made/deeper', exist_ok=True)
fd, name = tempfile.mkstemp()
os.write(fd, b'tmp'); os.close(fd)
print(os.path.dirname(name) == T, sorted(os.listdir(T + '/made')))
"#,
    );
    c.env("TMPDIR", &t);
    let o = run(c);
    assert_eq!(stdout(&o), "True True True\nTrue ['deeper']\n", "{}", show(&o));
    assert!(src.join("made/deeper").is_dir());
    missing.assert_still_missing();
}

// ---------------------------------------------------------------------------------------
// Read-only mounts.

const RO_SCRIPT: &str = r#"
import os, sys, errno, stat, ctypes
R = os.environ['ROOT']
libc = ctypes.CDLL(None, use_errno=True)
bad = []
def w(label, f):
    try:
        f()
        bad.append(label + ': succeeded')
    except OSError as x:
        if x.errno != errno.EROFS:
            bad.append('%s: %s' % (label, errno.errorcode.get(x.errno, x.errno)))
def c(label, ret):
    if ret != -1:
        bad.append(label + ': succeeded')
    elif ctypes.get_errno() != errno.EROFS:
        bad.append('%s: %s' % (label, errno.errorcode.get(ctypes.get_errno())))
F = R + '/f'
w('open w', lambda: open(F, 'w'))
w('open r+', lambda: open(F, 'r+'))
w('open a', lambda: open(F, 'a'))
w('O_WRONLY', lambda: os.open(F, os.O_WRONLY))
w('O_RDWR', lambda: os.open(F, os.O_RDWR))
w('O_RDONLY|O_TRUNC', lambda: os.open(F, os.O_RDONLY | os.O_TRUNC))
w('O_CREAT new', lambda: os.open(R + '/new', os.O_WRONLY | os.O_CREAT, 0o644))
w('O_CREAT|O_EXCL new', lambda: os.open(R + '/new', os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
w('O_CREAT new in subdir', lambda: os.open(R + '/sub/new', os.O_RDONLY | os.O_CREAT, 0o644))
w('O_CREAT via dangling link', lambda: os.open(R + '/dangling', os.O_WRONLY | os.O_CREAT, 0o644))
w('O_TMPFILE', lambda: os.open(R + '/sub', os.O_WRONLY | os.O_TMPFILE, 0o644))
w('write via rel link', lambda: open(R + '/rel', 'w'))
w('write via abs link', lambda: open(R + '/abs', 'w'))
c('creat existing', libc.creat(F.encode(), 0o644))
c('creat new', libc.creat((R + '/new2').encode(), 0o644))
w('truncate', lambda: os.truncate(F, 0))
w('unlink', lambda: os.unlink(F))
w('unlink link', lambda: os.unlink(R + '/rel'))
w('rename', lambda: os.rename(F, R + '/f2'))
w('rename dir', lambda: os.rename(R + '/sub', R + '/sub2'))
w('rename onto existing', lambda: os.rename(F, R + '/sub/g'))
w('mkdir', lambda: os.mkdir(R + '/nd'))
w('rmdir', lambda: os.rmdir(R + '/empty'))
w('link', lambda: os.link(F, R + '/f.hard'))
w('symlink', lambda: os.symlink('f', R + '/sl'))
w('chmod', lambda: os.chmod(F, 0o600))
w('chmod dir', lambda: os.chmod(R + '/sub', 0o700))
w('chmod via link', lambda: os.chmod(R + '/abs', 0o600))
w('chown', lambda: os.chown(F, os.getuid(), os.getgid()))
w('lchown', lambda: os.lchown(R + '/rel', os.getuid(), os.getgid()))
w('utime', lambda: os.utime(F, (1, 1)))
w('utime now', lambda: os.utime(F))
w('lutimes', lambda: os.utime(R + '/rel', (1, 1), follow_symlinks=False))
w('setxattr', lambda: os.setxattr(F, 'user.k', b'v'))
w('lsetxattr', lambda: os.setxattr(R + '/sub', 'user.k', b'v', follow_symlinks=False))
w('removexattr', lambda: os.removexattr(F, 'user.k'))
w('mkfifo', lambda: os.mkfifo(R + '/fifo'))
w('mknod', lambda: os.mknod(R + '/node', 0o600 | stat.S_IFREG))
fd = os.open(R, os.O_RDONLY | os.O_DIRECTORY)
w('unlinkat', lambda: os.unlink('f', dir_fd=fd))
w('mkdirat', lambda: os.mkdir('x', dir_fd=fd))
w('openat O_WRONLY', lambda: os.open('f', os.O_WRONLY, dir_fd=fd))
w('renameat', lambda: os.rename('f', 'g', src_dir_fd=fd, dst_dir_fd=fd))
w('fchmodat', lambda: os.chmod('f', 0o600, dir_fd=fd))
w('utimensat', lambda: os.utime('f', (1, 1), dir_fd=fd))
os.chdir(R + '/sub')
w('relative unlink', lambda: os.unlink('g'))
w('relative create', lambda: open('new', 'w'))
w('relative rename', lambda: os.rename('g', '../g'))
if os.access(F, os.W_OK):
    bad.append('access W_OK: True')
# reads still work
ok = (open(F).read() == 'hello\n' and sorted(os.listdir(R + '/sub')) == ['deep', 'g']
      and open(R + '/abs').read() == 'hello\n' and os.path.isdir(R + '/absdir'))
print('reads', 'ok' if ok else 'FAILED')
print('\n'.join(bad) if bad else 'all EROFS')
"#;

fn ro_check(tag: &str, args: &dyn Fn(&str, &str) -> Vec<String>) {
    let src = TempDir::new(&format!("{tag}-src"));
    let missing = Nonexistent::new(tag);
    let root = missing.join("t");
    build_tree(src.path(), s(&root));
    let before = snapshot(src.path(), &[], true);
    let a = args(s(src.path()), s(&root));
    let mut c = vurs_cmd(&a.iter().map(String::as_str).collect::<Vec<_>>());
    c.env("ROOT", &root).env("S", RO_SCRIPT);
    let o = run(c);
    let after = snapshot(src.path(), &[], true);
    assert_eq!(stdout(&o), "reads ok\nall EROFS\n", "{}", show(&o));
    assert_eq!(map_text(&before), map_text(&after), "the host tree changed under a ro mount");
    missing.assert_still_missing();
}

#[test]
fn ro_mount_option_every_write_erofs() {
    ro_check("ro", &|src, root| {
        vec![
            "--mount".into(),
            format!("type=fsremap,source={src},target={root},ro"),
            "--".into(),
            PY.into(),
            "-c".into(),
            RO_SCRIPT.into(),
        ]
    });
}

#[test]
fn ro_runtime_mount_every_write_erofs() {
    ro_check("ro-rt", &|src, root| {
        vec![
            "-m".into(),
            "fsremap".into(),
            "--".into(),
            "sh".into(),
            "-c".into(),
            format!("vurs mount -t fsremap -o ro '{src}' '{root}' || exit 1; exec \"{PY}\" -c \"$S\""),
        ]
    });
}

// ---------------------------------------------------------------------------------------
// Runtime mount and umount.

#[test]
fn runtime_mount_umount_in_one_shell() {
    let src = TempDir::new("rt-src");
    let host = TempDir::new("rt-host");
    build_tree(src.path(), "/unused");
    write(&host.join("f"), "host\n", 0o644);
    let missing = Nonexistent::new("rt");
    let t = missing.join("t");
    let mut c = vurs_cmd(&[
        "-m",
        "fsremap",
        "--",
        "bash",
        "-c",
        r#"
vurs mount -t fsremap "$SRC" "$H" && cat "$H/f" && ls "$H" | wc -l
cd "$H/sub" && pwd && cd /
vurs umount "$H" && cat "$H/f" && ls "$H"
vurs mount -t fsremap "$SRC" "$T" && cat "$T/f"
vurs umount "$T"; cat "$T/f"; echo "rc=$?"
"#,
    ]);
    c.env("SRC", src.path()).env("H", host.path()).env("T", &t);
    let o = run(c);
    let h = s(host.path());
    assert_eq!(stdout(&o), format!("hello\n10\n{h}/sub\nhost\nf\nhello\nrc=1\n"), "{}", show(&o));
    assert!(stderr(&o).contains("No such file or directory"), "{}", show(&o));
    assert_eq!(fs::read_to_string(host.join("f")).unwrap(), "host\n");
    missing.assert_still_missing();
}

/// The resolution caches (a path known to pass, a directory known to stay out of every
/// mount) must see what the session itself changes: a symlink made, a directory replaced by
/// a symlink into the mount, a rename, a file removed and made a symlink.
#[test]
fn resolution_caches_follow_the_sessions_changes() {
    let (src, missing, t) = bound_tree("cache");
    let work = TempDir::new("cache-work");
    let mut c = py_bound(
        &src,
        &t,
        r#"
import os
W, T, S = os.environ['W'], os.environ['T'], os.environ['S']
def show(p):
    for _ in range(2):  # the second look is answered from the caches
        try:
            with open(p) as f: print(f.read().strip())
        except OSError as e: print(type(e).__name__)
show(W + '/link')
os.symlink(T + '/f', W + '/link')
show(W + '/link')
os.mkdir(W + '/d')
show(W + '/d/f')
os.rmdir(W + '/d')
os.symlink(T, W + '/d')
show(W + '/d/f')
os.rename(W + '/link', W + '/moved')
show(W + '/moved')
show(W + '/link')
open(W + '/new', 'w').write('new\n')
show(W + '/new')
os.unlink(W + '/new')
os.symlink(T + '/sub/g', W + '/new')
show(W + '/new')
# A symlink in the mount changed through its other name (SOURCE) is seen under TARGET.
os.symlink(W + '/moved', S + '/l2')
show(T + '/l2')
os.unlink(S + '/l2')
os.symlink(T + '/sub/deep/h', S + '/l2')
show(T + '/l2')
# Past a plain file, `..` does not undo it: ENOTDIR, as the kernel says.
show(T + '/f/../f')
# A known directory reached through 40 links: one more link is ELOOP.
os.mkdir(W + '/ld')
os.symlink(T + '/f', W + '/ld/m')
prev = W + '/ld'
for i in range(40):
    os.symlink(prev, W + '/c%d' % i)
    prev = W + '/c%d' % i
show(prev + '/plain')
show(prev + '/m')
"#,
    );
    c.env("W", work.path()).env("T", &t).env("S", src.path());
    let o = run(c);
    let want = "FileNotFoundError\n".repeat(2)
        + &"hello\n".repeat(2)
        + &"FileNotFoundError\n".repeat(2)
        + &"hello\n".repeat(4)
        + &"FileNotFoundError\n".repeat(2)
        + &"new\n".repeat(2)
        + &"x\n".repeat(2)
        + &"hello\n".repeat(2)
        + &"deep\n".repeat(2)
        + &"NotADirectoryError\n".repeat(2)
        + &"FileNotFoundError\n".repeat(2)
        + &"OSError\n".repeat(2);
    assert_eq!(stdout(&o), want, "{}", show(&o));
    missing.assert_still_missing();
}

#[test]
fn fd_opened_before_lazy_umount_keeps_working() {
    let (src, missing, t) = bound_tree("fdum");
    let mut c = py_bound(
        &src,
        &t,
        r#"
import os, subprocess
T = os.environ['T']
f = open(T + '/f')
d = os.open(T + '/sub', os.O_RDONLY | os.O_DIRECTORY)
w = open(T + '/sub/w', 'w')
r = subprocess.run(['vurs', 'umount', '-l', T])
print('umount', r.returncode)
print('exists', os.path.exists(T + '/f'))
print('read', repr(f.read()))
print('listdir', sorted(os.listdir(d)))
print('stat at', os.stat('g', dir_fd=d).st_size)
w.write('written after umount\n'); w.close()
print('fstat', os.fstat(f.fileno()).st_size)
"#,
    );
    c.env("T", &t);
    let o = run(c);
    assert_eq!(
        stdout(&o),
        "umount 0\nexists False\nread 'hello\\n'\nlistdir ['deep', 'g', 'w']\nstat at 2\nfstat 6\n",
        "{}",
        show(&o)
    );
    assert_eq!(fs::read_to_string(src.join("sub/w")).unwrap(), "written after umount\n");
    missing.assert_still_missing();
}

#[test]
fn umount_busy_while_in_use() {
    let (src, missing, t) = bound_tree("busy");
    let mut c = py_bound(
        &src,
        &t,
        r#"
import os, subprocess
T = os.environ['T']
def umount():
    r = subprocess.run(['vurs', 'umount', T], capture_output=True, text=True)
    return r.returncode, 'busy' in r.stderr
f = open(T + '/f')
print('open fd', umount(), os.path.exists(T + '/f'))
f.close()
os.chdir(T + '/sub')
print('cwd', umount(), os.path.exists(T + '/f'))
os.chdir('/')
print('unused', umount(), os.path.exists(T + '/f'))
"#,
    );
    c.env("T", &t);
    let o = run(c);
    assert_eq!(
        stdout(&o),
        "open fd (1, True) True\ncwd (1, True) True\nunused (0, False) False\n",
        "{}",
        show(&o)
    );
    missing.assert_still_missing();
}

// ---------------------------------------------------------------------------------------
// CPython's own file system tests with TMPDIR inside a mount.

const PY_SUITES: &[&str] =
    &["test_tempfile", "test_shutil", "test_pathlib", "test_glob", "test_fileio", "test_os"];

/// Names of the tests reported "... ok" by `python3 -m test -v`.
fn passing(out: &str) -> std::collections::BTreeSet<String> {
    out.lines()
        .filter(|l| l.ends_with(" ... ok"))
        .map(|l| l.trim_end_matches(" ... ok").to_string())
        .collect()
}

#[test]
fn cpython_suites_with_tmpdir_in_target() {
    let probe = run({
        let mut c = Command::new(PY);
        c.args(["-c", "import test.support, test.test_os"]);
        env(&mut c);
        c
    });
    assert!(
        probe.status.success(),
        "{PY} has no test suite (Debian: apt-get install libpython3.11-testsuite)\n{}",
        show(&probe)
    );
    let nat_tmp = TempDir::new("cpy-nat");
    let src = TempDir::new("cpy-src");
    let missing = Nonexistent::new("cpy");
    let t = missing.join("t");
    let mut args = vec!["-m", "test", "-v"];
    args.extend(PY_SUITES);

    let mut c = Command::new(PY);
    c.args(&args);
    env(&mut c);
    c.env("TMPDIR", nat_tmp.path());
    let t0 = std::time::Instant::now();
    let native = run_with_timeout(c, 900);
    let nat_secs = t0.elapsed().as_secs_f64();

    let bind = format!("{}:{}", s(src.path()), s(&t));
    let mut full = vec!["-b", &bind, "--", PY];
    full.extend(&args);
    let mut c = vurs_cmd(&full);
    c.env("TMPDIR", &t);
    let t0 = std::time::Instant::now();
    let virt = run_with_timeout(c, 1800);
    let vurs_secs = t0.elapsed().as_secs_f64();
    eprintln!("cpython suites: native {nat_secs:.1}s, vurs {vurs_secs:.1}s");

    let (pn, pv) = (passing(&stdout(&native)), passing(&stdout(&virt)));
    assert!(pn.len() > 500, "native run passed only {} tests\n{}", pn.len(), show(&native));
    let lost: Vec<&String> = pn.difference(&pv).collect();
    let details: String = {
        let out = stdout(&virt);
        let mut keep = String::new();
        let mut on = false;
        for l in out.lines() {
            if l.starts_with("ERROR: ") || l.starts_with("FAIL: ") {
                on = true;
            } else if l.starts_with("Ran ") {
                on = false;
            }
            if on {
                keep += l;
                keep.push('\n');
            }
        }
        keep
    };
    let leaked = fs::symlink_metadata(&missing.0).is_ok();
    assert!(
        lost.is_empty() && !leaked,
        "{}{} tests pass natively but not under vurs (TMPDIR in an fsremap mount):\n{}\n\n{details}",
        if leaked { format!("vurs created {} on the host\n", missing.0.display()) } else { String::new() },
        lost.len(),
        lost.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n")
    );
}
