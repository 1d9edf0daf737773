//! Merged listings start lazily: while no directory whose listing the cow module merges
//! has been opened, getdents64 is not trapped at all (a view no one wrote to lists itself,
//! at full speed). The first open of a merged directory adds a filter layer to every task
//! before that open returns. These tests run the same Python program natively on a copy of
//! the lower tree and through a fresh cow view: processes and threads that started (and
//! listed) before the first merged open must list merged directories after it.
mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Output};

const TIMEOUT: u64 = 120;

/// argv[1] = the tree. A child process and a thread are started first and wait; the main
/// program lists (natively, nothing is merged yet), writes (the directory becomes merged),
/// lists again, then lets the child and the thread list: all must see the new names and
/// not the removed one.
const PROGRAM: &str = r#"
import os, sys, threading
root = sys.argv[1]
d = os.path.join(root, "d")
r, w = os.pipe()
tr, tw = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(w)
    os.read(r, 1)
    print("child", sorted(os.listdir(d)), sorted(os.listdir(root)), flush=True)
    os._exit(0)
os.close(r)
seen = []
def waiter():
    os.read(tr, 1)
    seen.append(sorted(os.listdir(d)))
t = threading.Thread(target=waiter)
t.start()
print("before", sorted(os.listdir(d)), sorted(os.listdir(root)), flush=True)
with open(os.path.join(d, "new"), "w") as f:
    f.write("n\n")
os.unlink(os.path.join(root, "gone"))
print("after", sorted(os.listdir(d)), sorted(os.listdir(root)), flush=True)
os.write(tw, b"x")
t.join()
print("thread", seen[0], flush=True)
os.write(w, b"x")
os.waitpid(pid, 0)
# a deep directory opened for the first time, and scandir's d_type
print("deep", sorted((e.name, e.is_dir()) for e in os.scandir(os.path.join(d, "sub"))))
"#;

fn make_lower(root: &Path) {
    std::fs::create_dir_all(root.join("d/sub/deep")).unwrap();
    for (p, c) in [("d/a", "a\n"), ("d/sub/b", "b\n"), ("gone", "g\n"), ("f", "f\n")] {
        std::fs::write(root.join(p), c).unwrap();
    }
}

fn run(c: &mut Command) -> String {
    let o: Output = run_with_timeout(std::mem::replace(c, Command::new("true")), TIMEOUT);
    assert!(o.status.success(), "failed: {:?}\n{}\n{}", o.status, stdout(&o), stderr(&o));
    stdout(&o)
}

#[test]
fn listings_merge_in_tasks_that_started_before_the_first_merged_open() {
    let tmp = TempDir::new("cow-listing");
    let (lower, copy, upper) = (tmp.join("lower"), tmp.join("copy"), tmp.join("upper"));
    make_lower(&lower);
    make_lower(&copy);
    std::fs::create_dir(&upper).unwrap();
    let native = run(Command::new(python()).args(["-c", PROGRAM, copy.to_str().unwrap()]));
    let spec = format!("type=cow,source={},target={}", upper.display(), lower.display());
    let view = run(Command::new(vurs()).args(["--mount", &spec, "--", &python(), "-c", PROGRAM]).arg(&lower));
    assert_eq!(native, view, "native (left) and through a fresh cow view (right)");
    assert!(view.contains("'new'"), "the program ran: {view}");
    // the lower tree is untouched
    assert!(lower.join("gone").exists() && !lower.join("d/new").exists());
}

/// `ls -R` through a fresh view with mount options `extra`: its output (which must be the
/// native one) and vurs's table of trapped calls.
fn ls_r_summary(tag: &str, extra: &str) -> String {
    let tmp = TempDir::new(tag);
    let (lower, upper) = (tmp.join("lower"), tmp.join("upper"));
    make_lower(&lower);
    std::fs::create_dir(&upper).unwrap();
    let spec = format!("type=cow,source={},target={}{extra}", upper.display(), lower.display());
    let summary = tmp.join("summary");
    let o = run_with_timeout(
        {
            let mut c = Command::new(vurs());
            c.args(["--summary=".to_string() + summary.to_str().unwrap()]);
            c.args(["--mount", &spec, "--", "ls", "-R"]).arg(&lower);
            c
        },
        TIMEOUT,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let native = run(Command::new("ls").arg("-R").arg(&lower));
    assert_eq!(native, stdout(&o));
    let table = std::fs::read_to_string(&summary).unwrap();
    assert!(table.contains("openat"), "the summary lists trapped calls: {table}");
    table
}

#[test]
fn a_view_nobody_wrote_to_does_not_trap_getdents() {
    let table = ls_r_summary("cow-listing-untouched", "");
    assert!(!table.contains("getdents64"), "getdents64 trapped in an untouched view:\n{table}");
}

#[test]
fn option_merged_traps_getdents_from_the_start() {
    let table = ls_r_summary("cow-listing-merged", ",merged");
    assert!(table.contains("getdents64"), "getdents64 not trapped with `merged`:\n{table}");
}

/// The first write through a view nobody wrote to (the module had told vurs the mount was
/// a plain subtree, resolved by the kernel) reaches UPPER, whatever form the path takes:
/// relative to a directory descriptor, relative to the cwd, and through openat2 with
/// RESOLVE_BENEATH (whose walk vurs otherwise leaves to the kernel).
const FIRST_WRITES: &str = r#"
import os, sys, ctypes, struct
root = sys.argv[1]
how = int(sys.argv[2])
os.chdir(root)
d = os.open("d", os.O_RDONLY | os.O_DIRECTORY)
if how == 0:
    fd = os.open("a", os.O_WRONLY | os.O_APPEND, dir_fd=d)
elif how == 1:
    fd = os.open("f", os.O_WRONLY | os.O_APPEND)
else:
    libc = ctypes.CDLL(None, use_errno=True)
    RESOLVE_BENEATH = 0x08
    oh = struct.pack("QQQ", os.O_WRONLY | os.O_APPEND, 0, RESOLVE_BENEATH)
    fd = libc.syscall(437, d, b"a", oh, len(oh))
    assert fd >= 0, os.strerror(ctypes.get_errno())
os.write(fd, b"more\n")
os.close(fd)
print(open("d/a").read() + open("f").read(), end="")
print(sorted(os.listdir(".")), sorted(os.listdir("d")))
"#;

#[test]
fn the_first_write_through_an_untouched_view_reaches_upper() {
    for how in ["0", "1", "2"] {
        let tmp = TempDir::new("cow-first-write");
        let (lower, copy, upper) = (tmp.join("lower"), tmp.join("copy"), tmp.join("upper"));
        make_lower(&lower);
        make_lower(&copy);
        std::fs::create_dir(&upper).unwrap();
        let native = run(Command::new(python()).args(["-c", FIRST_WRITES, copy.to_str().unwrap(), how]));
        let spec = format!("type=cow,source={},target={}", upper.display(), lower.display());
        let view = run(Command::new(vurs())
            .args(["--mount", &spec, "--", &python(), "-c", FIRST_WRITES])
            .arg(&lower)
            .arg(how));
        assert_eq!(native, view, "form {how}: native (left) and through a fresh cow view (right)");
        assert!(view.contains("more"), "form {how}: the write happened: {view}");
        for (p, c) in [("d/a", "a\n"), ("f", "f\n")] {
            assert_eq!(
                std::fs::read_to_string(lower.join(p)).unwrap(),
                c,
                "form {how}: the lower {p} changed"
            );
        }
    }
}
