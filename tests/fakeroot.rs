//! The fakeroot module (`-m fakeroot[,db=FILE][,uid=N,gid=N]`), run as an unprivileged
//! user (nobody, through setpriv, when the tests run as root): real programs see root and
//! what root did; the host sees the user's files unchanged in owner and special bits.
mod common;
use common::*;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const TIMEOUT: u64 = 120;

/// The uid and gid vurs runs as in these tests.
fn user() -> (u32, u32) {
    // SAFETY: getuid/getgid cannot fail.
    if unsafe { libc::getuid() } == 0 {
        (65534, 65534)
    } else {
        // SAFETY: as above.
        unsafe { (libc::getuid(), libc::getgid()) }
    }
}

/// `vurs ARGS` as the unprivileged user, in `dir`.
fn vurs_cmd(dir: &Path, args: &[&str]) -> Command {
    let v = vurs();
    let mut all = vec![v.to_str().unwrap()];
    all.extend(args);
    // SAFETY: getuid cannot fail.
    let mut c = if unsafe { libc::getuid() } == 0 {
        assert!(Path::new("/usr/bin/setpriv").exists(), "setpriv (util-linux) is needed to run as nobody");
        as_nobody(&all)
    } else {
        let mut c = Command::new(all[0]);
        c.args(&all[1..]);
        c
    };
    c.env("PATH", format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", module_dir().display()))
        .env("LC_ALL", "C")
        .current_dir(dir);
    c
}

/// A directory owned by the test user.
fn tree(tag: &str) -> TempDir {
    let d = TempDir::new(tag);
    let (u, g) = user();
    std::os::unix::fs::chown(d.path(), Some(u), Some(g)).unwrap();
    d
}

fn sh(dir: &Path, module: &str, script: &str) -> Output {
    run_with_timeout(vurs_cmd(dir, &["-m", module, "--", "sh", "-c", script]), TIMEOUT)
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "failed: {:?}\nstdout: {}\nstderr: {}", o.status, stdout(o), stderr(o));
    stdout(o)
}

#[test]
fn ids_are_the_fake_root() {
    let d = tree("ids");
    let out = ok(&sh(
        d.path(),
        "fakeroot",
        "id -u; id -g; id -G; id -un; whoami; grep -E '^(Uid|Gid):' /proc/self/status; grep ^Uid: /proc/$$/task/$$/status",
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..5], ["0", "0", "0", "root", "root"], "{out}");
    // /proc/PID/status agrees with id (a synthesized copy is opened).
    assert_eq!(&lines[5..], ["Uid:\t0\t0\t0\t0", "Gid:\t0\t0\t0\t0", "Uid:\t0\t0\t0\t0"], "{out}");
    let out = ok(&sh(d.path(), "fakeroot,uid=1234,gid=5678", "id -u; id -g"));
    assert_eq!(out, "1234\n5678\n");
    // set*id by the kernel's rules for root, inherited by children (python's os.setuid).
    let py = python();
    let out = ok(&sh(
        d.path(),
        "fakeroot",
        &format!("{py} -c 'import os; os.setgroups([7]); os.setgid(99); os.setuid(42); print(os.getuid(), os.geteuid(), os.getgid(), os.getgroups()); os.system(\"id -u\"); \
          import sys\ntry:\n  os.setuid(0)\nexcept PermissionError: print(\"EPERM\")'"),
    ));
    assert_eq!(out, "42 42 99 [7]\n42\nEPERM\n");
}

#[test]
fn chown_is_remembered_not_done() {
    let d = tree("chown");
    let out = ok(&sh(
        d.path(),
        "fakeroot",
        "touch f g; chown 1234:5678 f; stat -c %u:%g f; stat -c %u:%g g; ls -ln f | cut -d' ' -f3,4; find . -user 1234",
    ));
    assert_eq!(out, "1234:5678\n0:0\n1234 5678\n./f\n");
    let (u, g) = user();
    let md = std::fs::metadata(d.join("f")).unwrap();
    assert_eq!((md.uid(), md.gid()), (u, g), "the host keeps the real owner");
}

#[test]
fn static_busybox_and_raw_syscalls() {
    assert!(Path::new("/bin/busybox").exists(), "busybox-static is needed (/bin/busybox)");
    let d = tree("busybox");
    let out = ok(&sh(
        d.path(),
        "fakeroot",
        "/bin/busybox touch b; /bin/busybox chown 1234:5678 b; /bin/busybox stat -c %u:%g b",
    ));
    assert_eq!(out, "1234:5678\n");
    let py = python();
    let out = ok(&sh(
        d.path(),
        "fakeroot",
        &format!("{py} -c 'import os; open(\"p\",\"w\").close(); os.chown(\"p\", 321, 654); st = os.stat(\"p\"); print(st.st_uid, st.st_gid); fd = os.open(\"p\", 0); print(os.fstat(fd).st_uid)'"),
    ));
    assert_eq!(out, "321 654\n321\n");
}

#[test]
fn chmod_setuid_shows_inside_only() {
    let d = tree("chmod");
    let out = ok(&sh(
        d.path(),
        "fakeroot",
        "touch f; chmod 4755 f; stat -c %a f; chmod 000 f; stat -c %a f; cat f && echo readable",
    ));
    assert_eq!(out, "4755\n0\nreadable\n");
    let mode = std::fs::metadata(d.join("f")).unwrap().mode();
    assert_eq!(mode & 0o7000, 0, "no special bit on the host: {mode:o}");
    assert_eq!(mode & 0o600, 0o600, "the owner keeps rw on the host: {mode:o}");
}

#[test]
fn mknod_of_a_device_is_a_placeholder() {
    let d = tree("mknod");
    let out = ok(&sh(
        d.path(),
        "fakeroot",
        "mknod dev c 1 3; stat -c %F:%t,%T dev; mknod fifo p; stat -c %F fifo; ls -l dev | cut -c1",
    ));
    assert_eq!(out, "character special file:1,3\nfifo\nc\n");
    let md = std::fs::symlink_metadata(d.join("dev")).unwrap();
    assert!(md.file_type().is_file() && md.len() == 0, "an empty regular file on the host");
}

#[test]
fn tar_keeps_owners_across_sessions() {
    let d = tree("tar");
    let db = d.join("db");
    let module = format!("fakeroot,db={}", db.display());
    ok(&sh(
        d.path(),
        &module,
        "mkdir src && touch src/a src/b && chown 1234:5678 src/a && chown 42:43 src/b && tar cf a.tar src",
    ));
    // The archive itself says what was recorded (read natively).
    let o =
        Command::new("tar").args(["tvf", "a.tar", "--numeric-owner"]).current_dir(d.path()).output().unwrap();
    let list = stdout(&o);
    assert!(list.lines().any(|l| l.contains("1234/5678") && l.ends_with("src/a")), "{list}");
    assert!(list.lines().any(|l| l.contains("42/43") && l.ends_with("src/b")), "{list}");
    let out = ok(&sh(d.path(), &module, "mkdir x && cd x && tar xpf ../a.tar && stat -c %u:%g src/a src/b"));
    assert_eq!(out, "1234:5678\n42:43\n");
    // A later session with the same database, after a rename.
    let out = ok(&sh(d.path(), &module, "mv x/src/a x/src/c; stat -c %u:%g x/src/c x/src/b"));
    assert_eq!(out, "1234:5678\n42:43\n");
    let out =
        ok(&sh(d.path(), &module, "stat -c %u:%g x/src/c; rm x/src/c; touch x/src/c; stat -c %u:%g x/src/c"));
    assert_eq!(out, "1234:5678\n0:0\n");
    // Without the database the files are the real user's, shown as root's.
    let out = ok(&sh(d.path(), "fakeroot", "stat -c %u:%g x/src/b"));
    assert_eq!(out, "0:0\n");
}

#[test]
fn database_survives_kill_and_refuses_a_second_session() {
    let d = tree("kill");
    let db = d.join("db");
    let module = format!("fakeroot,db={}", db.display());
    let mut c = vurs_cmd(
        d.path(),
        &["-m", &module, "--", "sh", "-c", "i=0; while :; do i=$((i+1)); touch f$i; chown $i:$i f$i; done"],
    );
    c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).process_group(0);
    let mut child = c.spawn().unwrap();
    let pid = child.id() as i32;
    wait_for(30, "a few entries saved", || {
        std::fs::read_to_string(&db).ok().filter(|t| t.lines().count() > 20)
    });
    // A second session on the same database is refused with one line.
    let o = run_with_timeout(vurs_cmd(d.path(), &["-m", &module, "--", "true"]), TIMEOUT);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.starts_with("vurs: ") && err.lines().count() == 1 && err.contains("in use"), "{err}");
    // SAFETY: kill the vurs we started, then what is left of its process group.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    let _ = child.wait();
    // SAFETY: as above.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
    let text = std::fs::read_to_string(&db).unwrap();
    assert!(text.starts_with("vurs-fakeroot-db 1\n"), "{text}");
    assert!(text.lines().skip(1).all(|l| l.split(' ').count() == 9), "{text}");
    assert!(!d.join("db.tmp").exists() || std::fs::read_to_string(d.join("db.tmp")).is_ok());
    // A new session loads it and shows what was saved.
    let out = ok(&sh(d.path(), &module, "stat -c %u:%g f1 f2"));
    assert_eq!(out, "1:1\n2:2\n");
}

#[test]
fn bad_options_fail_clearly() {
    let d = tree("opts");
    for opt in ["fakeroot,uid=x", "fakeroot,nope=1"] {
        let o = run_with_timeout(vurs_cmd(d.path(), &["-m", opt, "--", "true"]), TIMEOUT);
        assert_eq!(o.status.code(), Some(125), "{opt}");
        let err = stderr(&o);
        assert!(err.starts_with("vurs: ") && err.lines().count() == 1, "{opt}: {err}");
    }
    std::fs::write(d.join("bad"), "not a database\n").unwrap();
    let o = run_with_timeout(vurs_cmd(d.path(), &["-m", "fakeroot,db=bad", "--", "true"]), TIMEOUT);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("not a vurs fakeroot database"), "{}", stderr(&o));
}

/// setcap's xattr (security.capability) and trusted.* are remembered by the fake root and
/// listed with the others; the host file gets none of them.
#[test]
fn security_and_trusted_xattrs_are_remembered() {
    let d = tree("xattr");
    let f = d.join("prog");
    std::fs::write(&f, "x").unwrap();
    let (u, g) = user();
    std::os::unix::fs::chown(&f, Some(u), Some(g)).unwrap();
    let script = format!(
        "{py} -c 'import os\nf=\"{f}\"\ncap=bytes([0,0,0,2, 0,4,0,0, 0,0,0,0, 0,0,0,0, 0,0,0,0])\nos.setxattr(f, \"security.capability\", cap)\nos.setxattr(f, \"trusted.note\", b\"kept\")\nprint(os.getxattr(f, \"security.capability\") == cap, os.getxattr(f, \"trusted.note\"))\nprint(sorted(n for n in os.listxattr(f) if not n.startswith(\"user.\")))\nos.removexattr(f, \"trusted.note\")\nprint(sorted(os.listxattr(f)))'",
        py = python(),
        f = f.display()
    );
    let out = ok(&sh(d.path(), "fakeroot", &script));
    assert_eq!(
        out, "True b'kept'\n['security.capability', 'trusted.note']\n['security.capability']\n",
        "{out}"
    );
    let host = Command::new(python())
        .args(["-c", &format!("import os; print(sorted(os.listxattr('{}')))", f.display())])
        .output()
        .unwrap();
    assert!(!stdout(&host).contains("security.capability"), "{}", stdout(&host));
}

/// A static Go program (system calls made by the Go runtime, no libc, no LD_PRELOAD
/// possible) sees the fake root: its chown is remembered and its stat shows it; the host
/// file keeps the user as owner.
#[test]
fn static_go_program_sees_the_fake_root() {
    let d = tree("go");
    let exe = d.join("gochown");
    let mut go = Command::new("go");
    go.args(["build", "-o"])
        .arg(&exe)
        .arg("main.go")
        .current_dir(repo().join("tests/progs/gochown"))
        .env("CGO_ENABLED", "0")
        .env("GO111MODULE", "off")
        .env("GOCACHE", d.join("gocache"))
        .env("GOPATH", d.join("gopath"))
        .env("HOME", d.path());
    let o = run_with_timeout(go, 240);
    assert!(o.status.success(), "go build (package golang-go): {}", stderr(&o));
    let f = d.join("f");
    std::fs::write(&f, "").unwrap();
    let (u, g) = user();
    std::os::unix::fs::chown(&f, Some(u), Some(g)).unwrap();
    let out = ok(&run_with_timeout(
        vurs_cmd(d.path(), &["-m", "fakeroot", "--", exe.to_str().unwrap(), f.to_str().unwrap()]),
        TIMEOUT,
    ));
    assert_eq!(out, "uid=1234 gid=5678 euid=0\n");
    assert_eq!(std::fs::metadata(&f).unwrap().uid(), u);
}
