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

/// `vurs -b SRC:TARGET [extra] -- python3 -c PROG TARGET`.
fn virtualized(prog: &str, src: &Path, target: &Path, extra: &[&str]) -> Output {
    let mut c = Command::new(vurs());
    c.arg("-b").arg(format!("{}:{}", src.display(), target.display()));
    c.args(extra).arg("--").arg(python()).args(["-c", prog]).arg(target);
    run_with_timeout(c, 60)
}

/// The same program natively on SRC and under vurs on TARGET (SRC mounted there) prints
/// the same lines, with the root's own name replaced by ROOT.
fn same_as_native(tag: &str, setup: impl Fn(&Path), prog: &str) -> String {
    let d = TempDir::new(tag);
    let (a, b) = (d.join("native"), d.join("src"));
    for p in [&a, &b] {
        std::fs::create_dir_all(p).unwrap();
        setup(p);
    }
    let target = d.join("target");
    let n = native(prog, &a);
    let v = virtualized(prog, &b, &target, &[]);
    let clean = |o: &Output, root: &Path| stdout(o).replace(&root.display().to_string(), "ROOT");
    assert_eq!(n.status.code(), Some(0), "native run failed: {}", show(&n));
    assert_eq!(v.status.code(), Some(0), "{}", show(&v));
    assert_eq!(clean(&v, &target), clean(&n, &a), "vurs differs from native:\n{}", show(&v));
    clean(&n, &a)
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
