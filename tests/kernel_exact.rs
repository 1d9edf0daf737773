//! Never die, never differ (issue 9): legal calls that once killed the session, and calls
//! on trees inside a mount that must give what the same calls give on the host tree.
//! Each case runs a small Python program twice, natively on a host tree and under vurs on
//! the same tree seen through a fsremap mount, and compares the two outputs.
mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Output};

fn show(o: &Output) -> String {
    format!("status {:?}\n--- stdout\n{}--- stderr\n{}", o.status.code(), stdout(o), stderr(o))
}

/// `python3 -c PROG ROOT` natively.
fn native(prog: &str, root: &Path) -> Output {
    let mut c = Command::new(python());
    c.args(["-c", prog]).arg(root);
    run_with_timeout(c, 60)
}

/// The same program natively on ROOT and under vurs on TARGET, with a tree built the
/// same way mounted there (its source lies elsewhere: its host parent is not TARGET's
/// parent), prints the same lines (each root's own name replaced by ROOT). Extra vurs
/// arguments replace the default `-b SRC:TARGET`. Returns the output and the temp dir.
fn compare(tag: &str, setup: impl Fn(&Path), prog: &str, mount_opts: &str) -> (String, TempDir) {
    let d = TempDir::new(tag);
    let (a, b) = (d.join("native"), d.join("away/src"));
    for p in [&a, &b] {
        std::fs::create_dir_all(p).unwrap();
        setup(p);
    }
    let target = d.join("target");
    let n = native(prog, &a);
    let spec = format!("type=fsremap,source={},target={}{mount_opts}", b.display(), target.display());
    let mut c = Command::new(vurs());
    c.args(["--mount", &spec, "--"]).arg(python()).args(["-c", prog]).arg(&target);
    let v = run_with_timeout(c, 60);
    let clean = |o: &Output, root: &Path| stdout(o).replace(&root.display().to_string(), "ROOT");
    assert_eq!(n.status.code(), Some(0), "native run failed: {}", show(&n));
    assert_eq!(v.status.code(), Some(0), "{}", show(&v));
    let (want, got) = (clean(&n, &a), clean(&v, &target));
    let diff: Vec<String> = want
        .lines()
        .zip(got.lines())
        .filter(|(w, g)| w != g)
        .map(|(w, g)| format!("native: {w}\n  vurs: {g}"))
        .collect();
    assert_eq!(got, want, "vurs differs from native:\n{}\n{}", diff.join("\n"), show(&v));
    (want, d)
}

fn same_as_native(tag: &str, setup: impl Fn(&Path), prog: &str) -> String {
    compare(tag, setup, prog, "").0
}

/// Prelude of the Python programs: `root`, and `ask(label, f)` printing a result or errno.
const PRELUDE: &str = r#"
import os, sys, ctypes, errno
root = sys.argv[1]
libc = ctypes.CDLL(None, use_errno=True)
def name(e):
    return errno.errorcode.get(e, e)
def ask(label, f):
    try:
        r = f()
    except OSError as e:
        r = name(e.errno)
    print(label, r)
def sys_errno(r):
    return r if r >= 0 else name(ctypes.get_errno())
"#;

/// The prelude and `body`, whose common indentation is removed.
fn py(body: &str) -> String {
    let lines: Vec<&str> = body.lines().filter(|l| !l.trim().is_empty()).collect();
    let indent = lines.iter().map(|l| l.len() - l.trim_start().len()).min().unwrap_or(0);
    let mut out = PRELUDE.to_string();
    for l in body.lines() {
        out += l.get(indent..).unwrap_or("");
        out += "\n";
    }
    out
}

fn files(p: &Path) {
    std::fs::write(p.join("file"), "data\n").unwrap();
    std::fs::create_dir_all(p.join("dir/sub")).unwrap();
    std::fs::write(p.join("dir/sub/inner"), "inner\n").unwrap();
    std::os::unix::fs::symlink("file", p.join("link")).unwrap();
    std::os::unix::fs::symlink("dir/sub", p.join("dirlink")).unwrap();
}

/// readlinkat(fd, "", ...) names the link the descriptor refers to (Linux 2.6.39+); with
/// a mount active it once panicked in the fast path and ended the session.
#[test]
fn readlinkat_of_an_empty_path_is_the_descriptors_link() {
    let out = same_as_native(
        "rl-empty",
        files,
        &py(r#"
            fd = os.open(root + '/link', os.O_PATH | os.O_NOFOLLOW)
            buf = ctypes.create_string_buffer(64)
            n = libc.syscall(267, fd, b'', buf, 64)
            print('readlinkat', sys_errno(n), buf.raw[:max(n, 0)])
            fd2 = os.open(root + '/file', os.O_RDONLY)
            n = libc.syscall(267, fd2, b'', buf, 64)
            print('not a link', sys_errno(n))
        "#),
    );
    assert!(out.contains("readlinkat 4 b'file'"), "{out}");
}

/// A bug while handling a stop (here injected) costs that call EIO and one line on
/// stderr; the session and the program go on.
#[test]
fn a_panic_while_deciding_costs_one_call() {
    let d = TempDir::new("panic-guard");
    std::fs::create_dir_all(d.join("src")).unwrap();
    let mut c = Command::new(vurs());
    c.env("VURS_INJECT_PANIC", "mkdir")
        .arg("-b")
        .arg(format!("{}:{}", d.join("src").display(), d.join("t").display()))
        .args(["--", "sh", "-c"])
        .arg(format!("mkdir {0}/t/a; echo status $?; echo ok > {0}/t/f; cat {0}/t/f", d.path().display()));
    let o = run_with_timeout(c, 60);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(stdout(&o), "status 1\nok\n", "{}", show(&o));
    let err = stderr(&o);
    assert!(err.contains("Input/output error"), "{}", show(&o));
    let internal: Vec<&str> = err.lines().filter(|l| l.starts_with("vurs: internal error")).collect();
    assert_eq!(internal.len(), 2, "one line for the panic, one for the failed call: {}", show(&o));
    assert!(!d.join("src/a").exists());
}

/// Calls that do not follow their last component, on `.`, `..` and trailing-slash forms
/// at a mount's boundary and inside it: `MOUNT/..` is the mount point's parent (once it
/// was the host parent of the mount's source), names keep the kernel's errors.
const DOTS_AT_THE_BOUNDARY: &str = r#"
    top = os.path.dirname(root)
    same = lambda a, b: os.lstat(a).st_ino == os.lstat(b).st_ino
    for p in ['/..', '/../', '/.', '/./', '/', '/dir/..', '/dir/../', '/dir/.', '/dir/sub/../..']:
        ask('lstat' + p, lambda: (same(root + p, top), same(root + p, root), same(root + p, root + '/dir')))
    os.chdir(root)
    ask('cwd ..', lambda: same('..', top))
    ask('cwd .', lambda: same('.', root))
    os.chdir('dir')
    ask('cwd dir/..', lambda: same('..', root))
    ask('cwd dir/../..', lambda: same('../..', top))
    os.chdir(root)
    for p in ['/..', '/.', '/dir/..', '/dir/.']:
        ask('rmdir' + p, lambda: os.rmdir(root + p))
        ask('unlink' + p, lambda: os.unlink(root + p))
        ask('mkdir' + p, lambda: os.mkdir(root + p))
        ask('rename from' + p, lambda: os.rename(root + p, root + '/renamed'))
        ask('rename to' + p, lambda: os.rename(root + '/file', root + p))
        ask('link to' + p, lambda: os.link(root + '/file', root + p))
        ask('symlink at' + p, lambda: os.symlink('x', root + p))
        if p != '/..':  # across the mount's boundary: EXDEV before EPERM, as between file systems
            ask('link from' + p, lambda: os.link(root + p, root + '/hard'))
    ask('rmdir cwd ..', lambda: os.rmdir('..'))
    ask('mkdir cwd ..', lambda: os.mkdir('..'))
    ask('readlink ..', lambda: os.readlink(root + '/..'))
    ask('lchown ..', lambda: os.chown(root + '/..', -1, -1, follow_symlinks=False))
    print(sorted(os.listdir(root)))
"#;

#[test]
fn dots_at_a_mount_boundary_are_the_kernels() {
    let out = same_as_native("dots", files, &py(DOTS_AT_THE_BOUNDARY));
    assert!(out.contains("lstat/.. (True, False, False)"), "{out}");
    assert!(out.contains("rmdir/.. ENOTEMPTY"), "{out}");
}

/// `touch -h` of `MOUNT/..` changes the mount point's parent, never the host parent of
/// the mount's source — also when the mount is read-only; inside a read-only mount, the
/// same call on `.` or `dir/..` is EROFS.
#[test]
fn nofollow_writes_on_dots_never_reach_the_sources_parent() {
    for opts in ["", ",ro"] {
        let prog = py(r#"
            t = (1000000000, 1000000000)
            ask('utime ..', lambda: os.utime(root + '/..', t, follow_symlinks=False))
            ask('mtime ..', lambda: os.lstat(root + '/..').st_mtime == t[1])
        "#);
        let (_, d) = compare("dots-write", files, &prog, opts);
        let away = std::fs::symlink_metadata(d.join("away")).unwrap();
        assert_ne!(
            std::os::unix::fs::MetadataExt::mtime(&away),
            1000000000,
            "the source's parent was written"
        );
        let top = std::fs::symlink_metadata(d.path()).unwrap();
        assert_eq!(std::os::unix::fs::MetadataExt::mtime(&top), 1000000000);
    }
    let d = TempDir::new("dots-ro");
    std::fs::create_dir_all(d.join("src/dir")).unwrap();
    let spec = format!("type=fsremap,source={},target={},ro", d.join("src").display(), d.join("t").display());
    let prog = py(r#"
        t = (1000000000, 1000000000)
        for p in ['/.', '/dir/..', '/dir/.', '/', '/dir/']:
            ask('utime' + p, lambda: os.utime(root + p, t, follow_symlinks=False))
    "#);
    let mut c = Command::new(vurs());
    c.args(["--mount", &spec, "--"]).arg(python()).args(["-c", &prog]).arg(d.join("t"));
    let o = run_with_timeout(c, 60);
    assert_eq!(
        stdout(&o),
        "utime/. EROFS\nutime/dir/.. EROFS\nutime/dir/. EROFS\nutime/ EROFS\nutime/dir/ EROFS\n",
        "{}",
        show(&o)
    );
}

/// Under a mount on `/`, `/..` is `/`.
#[test]
fn dotdot_of_the_root_is_the_root() {
    let d = TempDir::new("root-dotdot");
    let rootfs = d.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    let mut c = Command::new(vurs());
    c.arg("-b").arg(format!("{}:/", rootfs.display()));
    c.args(["--", "/bin/busybox", "stat", "-c", "%i", "/..", "/", "/bin/..", "/../.."]);
    let o = run_with_timeout(c, 60);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let out = stdout(&o);
    let inos: Vec<&str> = out.lines().collect();
    let root_ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&rootfs).unwrap()).to_string();
    assert_eq!(inos, vec![root_ino.as_str(); 4], "{}", show(&o));
}

/// openat2 relative to a directory descriptor inside the mount, with every RESOLVE_* rule,
/// gives what it gives on the host tree (once vurs handed the kernel an absolute, already
/// resolved path: BENEATH failed with EXDEV, IN_ROOT with ENOENT, NO_SYMLINKS succeeded).
#[test]
fn openat2_resolve_rules_are_the_kernels() {
    same_as_native(
        "openat2",
        files,
        &py(r#"
            os.symlink('sub/inner', root + '/dir/rel')
            os.symlink('../file', root + '/dir/up')
            os.symlink(root + '/file', root + '/dir/abs')
            os.symlink('/sub/inner', root + '/dir/rootabs')
            class How(ctypes.Structure):
                _fields_ = [('flags', ctypes.c_uint64), ('mode', ctypes.c_uint64), ('resolve', ctypes.c_uint64)]
            def openat2(dfd, path, resolve, flags=os.O_RDONLY):
                how = How(flags, 0o644 if flags & os.O_CREAT else 0, resolve)
                fd = libc.syscall(437, dfd, path.encode(), ctypes.byref(how), ctypes.sizeof(how))
                if fd < 0:
                    return name(ctypes.get_errno())
                data = os.read(fd, 64) if not flags & os.O_WRONLY else b'w'
                os.close(fd)
                return data
            rules = {'none': 0, 'no_xdev': 1, 'no_magiclinks': 2, 'no_symlinks': 4, 'beneath': 8, 'in_root': 16}
            paths = ['sub/inner', 'rel', 'up', 'abs', 'rootabs', '../file', 'sub/../sub/inner',
                     '/sub/inner', 'missing', 'sub/inner/x', '../dir/sub/inner', '']
            for start in ['/dir', '']:
                dfd = os.open(root + start, os.O_PATH | os.O_DIRECTORY)
                for p in paths:
                    for rule, bits in rules.items():
                        # `..` out of the mount crosses a mount point: EXDEV under
                        # NO_XDEV there, as at any mount (not compared with the host).
                        if not (start == '' and p.startswith('..') and rule == 'no_xdev'):
                            print(start or '/', repr(p), rule, openat2(dfd, p, bits))
                print('create beneath', openat2(dfd, 'created', 8, os.O_WRONLY | os.O_CREAT))
                os.close(dfd)
            os.chdir(root + '/dir')
            print('cwd in_root', openat2(-100, '/sub/inner', 16), openat2(-100, '../../file', 16))
        "#),
    );
}

/// linkat of /proc/self/fd/N with AT_SYMLINK_FOLLOW (the O_TMPFILE idiom to give an
/// anonymous file a name) works when N was opened in the mount: the magic link lies where
/// its file lies. Lookup errors on either path come before EXDEV.
#[test]
fn links_follow_magic_links_and_report_lookup_errors_first() {
    let out = same_as_native(
        "linkat",
        files,
        &py(r#"
            top = os.path.dirname(root)
            fd = os.open(root + '/dir', os.O_TMPFILE | os.O_WRONLY, 0o600)
            os.write(fd, b'anonymous')
            magic = ('/proc/self/fd/%d' % fd).encode()
            AT_FDCWD, AT_SYMLINK_FOLLOW = -100, 0x400
            linkat = lambda new, flags: sys_errno(libc.syscall(265, AT_FDCWD, magic, AT_FDCWD, new.encode(), flags))
            print('linkat tmpfile', linkat(root + '/dir/named', AT_SYMLINK_FOLLOW))
            ask('read named', lambda: open(root + '/dir/named').read())
            print('linkat elsewhere in the mount', linkat(root + '/named2', AT_SYMLINK_FOLLOW))
            print('linkat not followed', linkat(root + '/named3', 0))
            ask('link (not followed)', lambda: os.link(magic, root + '/named4'))
            open(top + '/outside', 'w').close()
            ask('link into a file prefix', lambda: os.link(top + '/outside', root + '/file/x'))
            ask('link into a missing dir', lambda: os.link(top + '/outside', root + '/missing/x'))
            ask('link from missing', lambda: os.link(top + '/missing', root + '/x'))
            ask('link onto existing', lambda: os.link(top + '/outside', root + '/file'))
            ask('link from a file prefix', lambda: os.link(root + '/file/x', top + '/y'))
            ask('rename into a file prefix', lambda: os.rename(top + '/outside', root + '/file/x'))
            ask('rename from a missing dir', lambda: os.rename(root + '/missing/x', top + '/y'))
        "#),
    );
    assert!(out.contains("linkat tmpfile 0"), "{out}");
    assert!(out.contains("link into a file prefix ENOTDIR"), "{out}");
}

/// A path the kernel accepts is not refused because vurs would write it longer: a
/// relative path of nearly PATH_MAX bytes inside the mount, and an AF_UNIX socket path
/// relative to a deep cwd inside the mount (sun_path holds 108 bytes).
#[test]
fn long_relative_paths_inside_a_mount_work() {
    same_as_native(
        "long-paths",
        files,
        &py(r#"
            import socket
            os.chdir(root)
            names = ['n%03d' % i + 'x' * 250 for i in range(16)]
            for n in names:
                os.mkdir(n)
                os.chdir(n)
            os.chdir(root)
            rel = '/'.join(names)
            print('length', len(rel + '/file'))
            ask('create', lambda: os.close(os.open(rel + '/file', os.O_CREAT | os.O_WRONLY, 0o644)))
            ask('stat', lambda: os.stat(rel + '/file').st_size)
            ask('chmod', lambda: os.chmod(rel + '/file', 0o600))
            ask('rename', lambda: os.rename(rel + '/file', rel + '/moved'))
            ask('mkdir', lambda: os.mkdir(rel + '/d'))
            ask('rmdir', lambda: os.rmdir(rel + '/d'))
            ask('unlink', lambda: os.unlink(rel + '/moved'))
            ask('too long', lambda: os.stat(rel + '/' + 'y' * 200))
            os.chdir(rel)
            s = socket.socket(socket.AF_UNIX)
            ask('bind', lambda: s.bind('sock'))
            s.listen(1)
            c = socket.socket(socket.AF_UNIX)
            ask('connect', lambda: c.connect('sock'))
            ask('socket listed', lambda: 'sock' in os.listdir('.'))
        "#),
    );
}

/// A process whose kernel cwd is the mount point's host directory (vurs started there)
/// sees the mount's tree through relative paths, as through absolute ones: the kernel's
/// walk from that directory is not vurs's, so the path is not left to it.
#[test]
fn a_cwd_at_the_mount_point_sees_the_mount() {
    let d = TempDir::new("cwd-at-target");
    std::fs::create_dir_all(d.join("src/sub")).unwrap();
    std::fs::create_dir_all(d.join("mnt")).unwrap();
    std::fs::write(d.join("src/file"), "in the mount\n").unwrap();
    let prog = py(r#"
        print(open('file').read().strip())
        ask('listdir', lambda: sorted(os.listdir('.')))
        class How(ctypes.Structure):
            _fields_ = [('flags', ctypes.c_uint64), ('mode', ctypes.c_uint64), ('resolve', ctypes.c_uint64)]
        how = How(0, 0, 8)
        fd = libc.syscall(437, -100, b'file', ctypes.byref(how), ctypes.sizeof(how))
        print('beneath', os.read(fd, 64).strip() if fd >= 0 else name(ctypes.get_errno()))
        import socket
        s = socket.socket(socket.AF_UNIX)
        s.bind('sock')
        ask('socket in the mount', lambda: os.path.exists(root + '/sock'))
        open('new', 'w').write('x')
    "#);
    let mut c = Command::new(vurs());
    c.arg("-b").arg(format!("{}:{}", d.join("src").display(), d.join("mnt").display()));
    c.arg("--").arg(python()).args(["-c", &prog]).arg(d.join("mnt")).current_dir(d.join("mnt"));
    let o = run_with_timeout(c, 60);
    assert_eq!(
        stdout(&o),
        "in the mount\nlistdir ['file', 'sub']\nbeneath b'in the mount'\nsocket in the mount True\n",
        "{}",
        show(&o)
    );
    assert!(d.join("src/new").exists() && !d.join("mnt/new").exists(), "{}", show(&o));
    assert!(!d.join("mnt/sock").exists());
}

/// A FIFO in a mount: the reader's open waits for the writer's, as on the host (under the
/// notification engine vurs opens it for the caller, on a thread of its own, so the
/// writer's open is not stuck behind it).
#[test]
fn a_fifo_in_a_mount_connects_its_two_ends() {
    same_as_native(
        "fifo",
        |p| {
            let c = std::ffi::CString::new(p.join("pipe").to_str().unwrap()).unwrap();
            // SAFETY: mkfifo with a valid path.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        },
        &py(r#"
            pid = os.fork()
            if pid == 0:
                with open(root + '/pipe', 'w') as w:
                    w.write('through the fifo\n')
                os._exit(0)
            with open(root + '/pipe') as r:
                print(r.read().strip())
            os.waitpid(pid, 0)
        "#),
    );
}
