//! A process's own root and cwd: chroot(2) followed by vurs (issue 14, item 2) and a cwd
//! in a served mount (issue 12, item 3). Real programs (static busybox, python, sh,
//! coreutils) under both engines, compared with the same thing done natively: a real
//! chroot (as root, or as root of a user namespace when the tests do not run as root) and a
//! real directory holding what the served mount holds. vurs runs as an unprivileged user
//! (nobody, through setpriv, when the tests run as root).
mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Output};

const ENGINES: [&str; 2] = ["notify", "ptrace"];
const TIMEOUT: u64 = 60;

fn show(o: &Output) -> String {
    format!("status {:?}\n--- stdout\n{}--- stderr\n{}", o.status.code(), stdout(o), stderr(o))
}

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `vurs ARGS` on engine `engine`, as the unprivileged user.
fn vurs_as_user(engine: &str, args: &[&str]) -> Output {
    let v = vurs();
    let mut all = vec![v.to_str().unwrap()];
    all.extend(args);
    let mut c = if is_root() {
        assert!(Path::new("/usr/bin/setpriv").exists(), "setpriv (util-linux) is needed to run as nobody");
        as_nobody(&all)
    } else {
        let mut c = Command::new(all[0]);
        c.args(&all[1..]);
        c
    };
    c.env("VURS_ENGINE", engine).env("LC_ALL", "C");
    run_with_timeout(c, TIMEOUT)
}

/// `argv` natively, as the unprivileged user.
fn native_as_user(argv: &[&str]) -> Output {
    let c = if is_root() {
        as_nobody(argv)
    } else {
        let mut c = Command::new(argv[0]);
        c.args(&argv[1..]);
        c
    };
    run_with_timeout(c, TIMEOUT)
}

/// `sh -c script ARGS` natively with the privilege of a real chroot: as root in a mount
/// namespace of its own (root), or as root of a new user namespace (not root).
fn native_privileged(script: &str, args: &[&str]) -> Output {
    let mut c = Command::new("unshare");
    if !is_root() {
        c.arg("-r");
    }
    c.args(["-m", "--", "sh", "-c", script, "sh"]).args(args).env("LC_ALL", "C");
    let o = run_with_timeout(c, TIMEOUT);
    assert!(
        !stderr(&o).contains("unshare:"),
        "the native reference needs unshare(1) with a mount namespace: {}",
        show(&o)
    );
    o
}

/// The unprivileged user's ids.
fn user() -> (u32, u32) {
    if is_root() {
        (65534, 65534)
    } else {
        // SAFETY: getuid/getgid cannot fail.
        unsafe { (libc::getuid(), libc::getgid()) }
    }
}

/// A root file system owned by the unprivileged user: static busybox as /bin/busybox and
/// its applets, /etc/marker, an absolute symlink /abslink -> /etc/marker, /etc/rel ->
/// marker, empty /proc and /tmp.
fn rootfs(d: &TempDir) -> String {
    let busybox = Path::new("/bin/busybox");
    assert!(busybox.exists(), "these tests need the busybox-static package (/bin/busybox)");
    for dir in ["bin", "etc", "tmp", "proc", "home/user"] {
        std::fs::create_dir_all(d.join(&format!("rfs/{dir}"))).unwrap();
    }
    std::fs::copy(busybox, d.join("rfs/bin/busybox")).unwrap();
    for applet in ["sh", "ls", "cat", "pwd", "readlink", "id", "echo"] {
        std::os::unix::fs::symlink("busybox", d.join(&format!("rfs/bin/{applet}"))).unwrap();
    }
    std::fs::write(d.join("rfs/etc/marker"), "inside the root\n").unwrap();
    std::os::unix::fs::symlink("/etc/marker", d.join("rfs/abslink")).unwrap();
    std::os::unix::fs::symlink("marker", d.join("rfs/etc/rel")).unwrap();
    let rfs = d.join("rfs");
    let (u, g) = user();
    let o = Command::new("chown").arg("-R").arg(format!("{u}:{g}")).arg(&rfs).output().unwrap();
    assert!(o.status.success() || !is_root(), "chown: {}", String::from_utf8_lossy(&o.stderr));
    rfs.display().to_string()
}

/// What a process sees of its root after `busybox chroot`: paths, absolute symlinks,
/// `..` at the root, getcwd, /proc/self/{exe,root,cwd}.
const CHROOTED: &str = "pwd; ls /; cat /etc/marker /abslink /etc/rel; readlink /proc/self/exe; \
     readlink /proc/self/root; cd /home/user && readlink /proc/self/cwd; cd /..; pwd; \
     cd /bin && pwd -P && ls ../.. | head -3; cd ../../../etc && pwd; ls /proc/self/root/etc; id -u";

#[test]
fn busybox_chroot_matches_a_real_chroot() {
    let d = TempDir::new("chroot-busybox");
    let rfs = rootfs(&d);
    let proc = format!("{rfs}/proc");
    let want = native_privileged(
        "mount --bind /proc \"$1/proc\" && exec /bin/busybox chroot \"$1\" /bin/sh -c \"$2\"",
        &[&rfs, CHROOTED],
    );
    assert_eq!(want.status.code(), Some(0), "native: {}", show(&want));
    assert!(stdout(&want).contains("/bin/busybox\n"), "native: {}", show(&want));
    let bind = format!("/proc:{proc}");
    for e in ENGINES {
        let got = vurs_as_user(
            e,
            &["-m", "fakeroot", "-b", &bind, "--", "/bin/busybox", "chroot", &rfs, "/bin/sh", "-c", CHROOTED],
        );
        assert_eq!(stdout(&got), stdout(&want), "{e}: {}", show(&got));
        assert_eq!(got.status.code(), Some(0), "{e}: {}", show(&got));
    }
}

/// A session with no path module (fakeroot only): the chroot makes path calls trap from
/// then on, in the process and in what it runs.
#[test]
fn chroot_in_a_session_without_a_path_module() {
    let d = TempDir::new("chroot-nopath");
    let rfs = rootfs(&d);
    let script = "pwd; ls /; cat /etc/marker /abslink; cd /..; pwd; cd bin; pwd; ls ../.. | head -2; \
                  /bin/sh -c 'cat /etc/rel; pwd'";
    let want = native_privileged("exec /bin/busybox chroot \"$1\" /bin/sh -c \"$2\"", &[&rfs, script]);
    assert_eq!(want.status.code(), Some(0), "native: {}", show(&want));
    for e in ENGINES {
        let got = vurs_as_user(
            e,
            &["-m", "fakeroot", "--", "/bin/busybox", "chroot", &rfs, "/bin/sh", "-c", script],
        );
        assert_eq!((got.status.code(), stdout(&got)), (Some(0), stdout(&want)), "{e}: {}", show(&got));
    }
}

/// Without the fakeroot module an unprivileged user's chroot fails with EPERM, as it does
/// natively (with a module that traps paths, and without).
#[test]
fn chroot_without_root_is_eperm_as_natively() {
    let d = TempDir::new("chroot-eperm");
    let rfs = rootfs(&d);
    let argv = ["/bin/busybox", "chroot", &rfs, "/bin/busybox", "echo", "inside"];
    let want = native_as_user(&argv);
    assert_ne!(want.status.code(), Some(0), "native: {}", show(&want));
    assert!(stderr(&want).contains("Operation not permitted"), "native: {}", show(&want));
    for e in ENGINES {
        for extra in [&[][..], &["-m", "fsremap"][..]] {
            let mut args = extra.to_vec();
            args.push("--");
            args.extend_from_slice(&argv);
            let got = vurs_as_user(e, &args);
            let res = |o: &Output| (o.status.code(), stdout(o), stderr(o));
            assert_eq!(res(&got), res(&want), "{e} {extra:?}: {}", show(&got));
        }
    }
}

/// python's os.chroot (absolute, then relative: chroot(".")), os.getcwd, a child forked
/// after the chroot keeps the root, and so does what it execs.
#[test]
fn python_chroot_getcwd_and_a_forked_child() {
    let d = TempDir::new("chroot-python");
    let rfs = rootfs(&d);
    let py = python();
    let script = r#"
import os, sys
os.chroot(sys.argv[1])
try:
    print(os.getcwd())  # the cwd is outside the new root
except OSError as e:
    print("getcwd", e.errno)
os.chdir("/")
print(os.getcwd(), sorted(os.listdir("/")), open("/abslink").read().strip())
os.chdir("/home")
os.chroot(".")
print(os.getcwd(), sorted(os.listdir("/")), sorted(os.listdir("/..")), os.path.exists("/etc/marker"))
os.chdir("/user")
sys.stdout.flush()
pid = os.fork()
if pid == 0:
    print("child", os.getcwd(), os.listdir("/"))
    sys.stdout.flush()
    os._exit(0)
os.waitpid(pid, 0)
"#;
    let tail = r#"
pid = os.fork()
if pid == 0:
    os.execv("/bin/busybox", ["pwd"])
os.waitpid(pid, 0)
"#;
    // Only the first root has the busybox the exec needs: a second script stays there.
    let script2 = r#"
import os, sys
os.chroot(sys.argv[1])
os.chdir("/etc")
sys.stdout.flush()
"#;
    let full2 = format!("{script2}{tail}");
    for s in [script.to_string(), full2] {
        let want = native_privileged("exec \"$1\" -c \"$2\" \"$3\"", &[&py, &s, &rfs]);
        assert_eq!(want.status.code(), Some(0), "native: {}", show(&want));
        for e in ENGINES {
            let got = vurs_as_user(e, &["-m", "fakeroot", "--", &py, "-c", &s, &rfs]);
            assert_eq!((got.status.code(), stdout(&got)), (Some(0), stdout(&want)), "{e}: {}", show(&got));
        }
    }
}

// ------------------------------------------------------------------ cwd in a served mount

fn memfs(dir: &TempDir) -> String {
    build_so(dir, "memfs", &repo().join("tests/modules/memfs.c"), &[]).display().to_string()
}

/// A real directory holding what memfs serves.
fn memfs_twin(d: &TempDir) -> String {
    let r = d.join("twin");
    std::fs::create_dir_all(r.join("dir")).unwrap();
    std::fs::write(r.join("hello.txt"), "hello from memfs\n").unwrap();
    let numbers: String = (1..=1000).map(|i| format!("{i}\n")).collect();
    std::fs::write(r.join("dir/numbers.txt"), numbers).unwrap();
    std::os::unix::fs::symlink("hello.txt", r.join("link")).unwrap();
    r.display().to_string()
}

/// `sh -c script` with D set to the directory it works in, in `cwd`.
fn sh_in(d: &str, script: &str) -> Command {
    let mut c = Command::new("sh");
    c.args(["-c", script]).env("D", d).env("LC_ALL", "C");
    c
}

#[test]
fn cd_into_a_served_mount_and_relative_calls() {
    let d = TempDir::new("served-cwd");
    let so = memfs(&d);
    let twin = memfs_twin(&d);
    let script = "cd $D/dir && pwd && pwd -P && /bin/pwd && ls && head -2 numbers.txt && cat ../hello.txt ../link \
                  && readlink /proc/self/cwd && ls -d ./../dir && cd .. && pwd -P && ls && wc -l < dir/numbers.txt; \
                  cd $D/hello.txt; cd $D/nope; cd $D/dir/.. && pwd && cd .. && ls -d \"$PWD\" >/dev/null && echo out";
    let want = run_with_timeout(sh_in(&twin, script), TIMEOUT);
    let want = stdout(&want).replace(&twin, "D") + &stderr(&want).replace(&twin, "D");
    assert!(want.contains("can't cd to D/hello.txt") && want.contains("\nout\n"), "native: {want}");
    let mount = format!("type={so},source=none,target=/mem");
    for e in ENGINES {
        let mut c = Command::new(vurs());
        c.args(["--mount", &mount, "--", "sh", "-c", script]).env("D", "/mem").env("VURS_ENGINE", e);
        c.env("LC_ALL", "C");
        let o = run_with_timeout(c, TIMEOUT);
        let got = stdout(&o).replace("/mem", "D") + &stderr(&o).replace("/mem", "D");
        assert_eq!(got, want, "{e}: {}", show(&o));
    }
}

/// fchdir of a served directory opened with O_DIRECTORY (python os.fchdir), of a served
/// file (ENOTDIR), and out again by chdir and fchdir of a real descriptor.
#[test]
fn fchdir_of_a_virtual_descriptor() {
    let d = TempDir::new("served-fchdir");
    let so = memfs(&d);
    let twin = memfs_twin(&d);
    let script = r#"
import os, sys
D = sys.argv[1]
fd = os.open(D + "/dir", os.O_RDONLY | os.O_DIRECTORY)
os.fchdir(fd)
print(os.getcwd(), sorted(os.listdir(".")), open("numbers.txt").readline().strip())
print(os.stat(".").st_mode == os.stat(D + "/dir").st_mode, os.readlink("/proc/self/cwd"))
try:
    os.fchdir(os.open(D + "/hello.txt", os.O_RDONLY))
except OSError as e:
    print("file", e.errno)
for p in ["hello.txt", "nope", "link/"]:
    try:
        os.chdir(D + "/" + p)
    except OSError as e:
        print(p, e.errno, os.getcwd())
os.chdir("..")
print(os.getcwd(), os.path.exists("hello.txt"), os.path.exists("dir/numbers.txt"))
real = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
os.fchdir(real)
print(os.getcwd(), os.path.isdir("proc"))
os.fchdir(fd)
print(os.getcwd())
"#;
    let py = python();
    let want = run_with_timeout(
        {
            let mut c = Command::new(&py);
            c.args(["-c", script, &twin]);
            c
        },
        TIMEOUT,
    );
    assert_eq!(want.status.code(), Some(0), "native: {}", show(&want));
    let want = stdout(&want).replace(&twin, "D");
    let mount = format!("type={so},source=none,target=/mem");
    for e in ENGINES {
        let mut c = Command::new(vurs());
        c.args(["--mount", &mount, "--", &py, "-c", script, "/mem"]).env("VURS_ENGINE", e);
        let o = run_with_timeout(c, TIMEOUT);
        assert_eq!(stdout(&o).replace("/mem", "D"), want, "{e}: {}", show(&o));
        assert_eq!(o.status.code(), Some(0), "{e}: {}", show(&o));
    }
}

fn allops(d: &TempDir) -> String {
    build_so(d, "allops", &repo().join("tests/modules/allops.c"), &[]).display().to_string()
}

/// A writable served mount (tests/modules/allops.c over a host directory): `mkdir -p`
/// with relative paths, `cd` then create, list and remove, against a real directory.
#[test]
fn relative_changes_from_a_served_cwd() {
    let d = TempDir::new("served-rw");
    let so = allops(&d);
    let (real, host) = (d.join("real"), d.join("host"));
    std::fs::create_dir_all(real.join("x")).unwrap();
    std::fs::create_dir_all(host.join("x")).unwrap();
    let script = "cd $D/x && mkdir -p a/b/c && touch f a/b/g && ls && ls -R a && cd a/b && pwd && pwd -P \
                  && ln -s ../../f lnk && ls -l lnk | sed 's/.* lnk/lnk/' && mv g h && ls && rmdir c && cd .. \
                  && rm -r b && ls -a && cd ../.. && pwd";
    let want = run_with_timeout(sh_in(real.to_str().unwrap(), script), TIMEOUT);
    assert_eq!(want.status.code(), Some(0), "native: {}", show(&want));
    let want = stdout(&want).replace(real.to_str().unwrap(), "D");
    let mount = format!("type=allops,source={},target=/mnt/a", host.display());
    for e in ENGINES {
        let _ = std::fs::remove_dir_all(host.join("x"));
        std::fs::create_dir_all(host.join("x")).unwrap();
        let mut c = Command::new(vurs());
        c.args(["-m", &so, "--mount", &mount, "--", "sh", "-c", script])
            .env("D", "/mnt/a")
            .env("VURS_ENGINE", e);
        c.env("LC_ALL", "C");
        let o = run_with_timeout(c, TIMEOUT);
        assert_eq!(stdout(&o).replace("/mnt/a", "D"), want, "{e}: {}", show(&o));
        assert_eq!(o.status.code(), Some(0), "{e}: {}", show(&o));
    }
}

/// The tmpfs module: `mkdir -p` and `cd DIR && touch f && ls` relative to a cwd in it,
/// against a real directory.
#[test]
fn cd_into_tmpfs() {
    let d = TempDir::new("served-tmpfs");
    let real = d.join("real");
    std::fs::create_dir_all(&real).unwrap();
    let script = "mkdir -p $D/x && cd $D/x && mkdir -p a/b/c && touch f && ls && cd a/b && pwd && pwd -P \
                  && touch ../g && ls .. && cd c && ls -a && cd ../../../.. && rm -r x/a && ls x && pwd";
    let want = run_with_timeout(sh_in(real.to_str().unwrap(), script), TIMEOUT);
    assert_eq!(want.status.code(), Some(0), "native: {}", show(&want));
    let want = stdout(&want).replace(real.to_str().unwrap(), "D");
    for e in ENGINES {
        let mut c = Command::new(vurs());
        c.args(["--mount", "type=tmpfs,target=/scratch", "--", "sh", "-c", script]);
        c.env("D", "/scratch").env("VURS_ENGINE", e).env("LC_ALL", "C");
        let o = run_with_timeout(c, TIMEOUT);
        assert_eq!(stdout(&o).replace("/scratch", "D"), want, "{e}: {}", show(&o));
        assert_eq!(o.status.code(), Some(0), "{e}: {}", show(&o));
    }
}
