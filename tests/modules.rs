//! The module system (issue "Module system"): serving by descriptor ownership, runtime
//! control from inside a session, virtual mount(2), /proc/mounts, bad modules, module
//! lookup, and a panicking Rust module.
//!
//! Needs the workspace built (`cargo build --release --workspace`): libfsremap.so and
//! libuname.so next to the vurs binary, and libvurs_abi.rlib for the Rust module test.
mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const T: u64 = 60; // seconds per vurs run

fn v() -> String {
    vurs().display().to_string()
}

fn run(args: &[&str]) -> Output {
    let mut c = Command::new(vurs());
    c.args(args);
    run_with_timeout(c, T)
}

fn run_env(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut c = Command::new(vurs());
    c.args(args);
    for (k, val) in env {
        c.env(k, val);
    }
    run_with_timeout(c, T)
}

fn show(o: &Output) -> String {
    format!("status {:?}\n--- stdout\n{}--- stderr\n{}", o.status.code(), stdout(o), stderr(o))
}

fn memfs(dir: &TempDir) -> String {
    build_so(dir, "memfs", &repo().join("tests/modules/memfs.c"), &[]).display().to_string()
}

/// --mount spec putting memfs on /mem.
fn mem_mount(so: &str) -> String {
    format!("type={so},source=none,target=/mem")
}

/// Run `sh -c script` (or another argv) under vurs with memfs on /mem.
fn with_memfs(so: &str, argv: &[&str]) -> Output {
    let m = mem_mount(so);
    let mut args = vec!["--mount", m.as_str(), "--"];
    args.extend_from_slice(argv);
    run(&args)
}

fn ok(o: &Output) {
    assert_eq!(o.status.code(), Some(0), "{}", show(o));
}

/// A host tree: dir/src/file ("content\n") and an empty dir/tgt.
fn src_tgt(dir: &TempDir) -> (String, String) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::create_dir_all(dir.join("tgt")).unwrap();
    std::fs::write(dir.join("src/file"), "content\n").unwrap();
    (dir.join("src").display().to_string(), dir.join("tgt").display().to_string())
}

// ---------------------------------------------------------------- serve by fd ownership

#[test]
fn serve_cat() {
    let d = TempDir::new("mod-cat");
    let so = memfs(&d);
    let o = with_memfs(&so, &["cat", "/mem/hello.txt"]);
    ok(&o);
    assert_eq!(stdout(&o), "hello from memfs\n");
}

#[test]
fn serve_ls_long() {
    let d = TempDir::new("mod-ls");
    let so = memfs(&d);
    let o = with_memfs(&so, &["ls", "-l", "/mem", "/mem/dir"]);
    ok(&o);
    let out = stdout(&o);
    // (name, size) in `ls -l` lines: fields 5 and 9+.
    let entries: Vec<(String, String)> = out
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 9).then(|| (f[8..].join(" "), f[4].to_string()))
        })
        .collect();
    let has = |name: &str, size: &str| entries.iter().any(|(n, s)| n == name && s == size);
    assert!(has("hello.txt", "17"), "{out}");
    assert!(has("numbers.txt", "3893"), "{out}");
    assert!(has("link -> hello.txt", "9"), "{out}");
    assert!(out.lines().any(|l| l.starts_with('d') && l.ends_with(" dir")), "{out}");
    assert!(out.contains("/mem:") && out.contains("/mem/dir:"), "{out}");
}

#[test]
fn serve_wc_lines() {
    let d = TempDir::new("mod-wc");
    let so = memfs(&d);
    let o = with_memfs(&so, &["wc", "-l", "/mem/dir/numbers.txt"]);
    ok(&o);
    assert_eq!(stdout(&o), "1000 /mem/dir/numbers.txt\n");
}

#[test]
fn serve_head_bytes() {
    let d = TempDir::new("mod-head");
    let so = memfs(&d);
    let o = with_memfs(&so, &["head", "-c", "20", "/mem/dir/numbers.txt"]);
    ok(&o);
    assert_eq!(stdout(&o), "1\n2\n3\n4\n5\n6\n7\n8\n9\n10");
}

#[test]
fn serve_python_seek() {
    let d = TempDir::new("mod-seek");
    let so = memfs(&d);
    let py = "f = open('/mem/dir/numbers.txt', 'rb')\n\
              f.seek(10); print(repr(f.read(8)))\n\
              f.seek(-5, 2); print(repr(f.read()))\n\
              print(f.tell())\n";
    let o = with_memfs(&so, &[&python(), "-c", py]);
    ok(&o);
    assert_eq!(stdout(&o), "b'6\\n7\\n8\\n9\\n'\nb'1000\\n'\n3893\n", "{}", show(&o));
}

#[test]
fn serve_dup_shares_offset() {
    let d = TempDir::new("mod-dup");
    let so = memfs(&d);
    let py = "import os\n\
              fd = os.open('/mem/dir/numbers.txt', os.O_RDONLY)\n\
              fd2 = os.dup(fd)\n\
              print(os.read(fd, 4), os.lseek(fd2, 0, os.SEEK_CUR), os.read(fd2, 2), os.lseek(fd, 0, os.SEEK_CUR))\n";
    let o = with_memfs(&so, &[&python(), "-c", py]);
    ok(&o);
    assert_eq!(stdout(&o), "b'1\\n2\\n' 4 b'3\\n' 6\n", "{}", show(&o));
}

/// close_range over every descriptor from 3 up (what closefrom, os.closerange and every
/// subprocess child do) closes virtual descriptors too; with CLOSE_RANGE_CLOEXEC it marks
/// them close-on-exec. The range's upper bound is not itself a virtual number.
#[test]
fn close_range_reaches_virtual_descriptors() {
    let d = TempDir::new("mod-close-range");
    let so = memfs(&d);
    let py = "import os, ctypes, fcntl\n\
              libc = ctypes.CDLL(None, use_errno=True)\n\
              def close_range(lo, hi, flags):\n    return libc.syscall(436, ctypes.c_uint(lo), ctypes.c_uint(hi), ctypes.c_uint(flags))\n\
              a = os.open('/mem/hello.txt', os.O_RDONLY)\n\
              b = os.open('/mem/hello.txt', os.O_RDONLY)\n\
              print(close_range(3, 0xffffffff, 4), fcntl.fcntl(a, fcntl.F_GETFD) & 1, fcntl.fcntl(b, fcntl.F_GETFD) & 1)\n\
              print(close_range(3, 0xffffffff, 0))\n\
              for fd in (a, b):\n    try:\n        os.fstat(fd); print('open')\n    except OSError as e:\n        print(e.strerror)\n";
    let o = with_memfs(&so, &[&python(), "-c", py]);
    ok(&o);
    assert_eq!(stdout(&o), "0 1 1\n0\nBad file descriptor\nBad file descriptor\n", "{}", show(&o));
}

#[test]
fn serve_fork_inherits_description() {
    let d = TempDir::new("mod-fork");
    let so = memfs(&d);
    let py = "import os, sys\n\
              fd = os.open('/mem/dir/numbers.txt', os.O_RDONLY)\n\
              os.read(fd, 2)\n\
              pid = os.fork()\n\
              if pid == 0:\n    print('child', os.read(fd, 4)); sys.stdout.flush(); os._exit(0)\n\
              os.waitpid(pid, 0)\n\
              print('parent', os.lseek(fd, 0, os.SEEK_CUR), os.read(fd, 2))\n";
    let o = with_memfs(&so, &[&python(), "-c", py]);
    ok(&o);
    assert_eq!(stdout(&o), "child b'2\\n3\\n'\nparent 6 b'4\\n'\n", "{}", show(&o));
}

#[test]
fn serve_cloexec_at_exec() {
    let d = TempDir::new("mod-cloexec");
    let so = memfs(&d);
    let child = "import os, sys\n\
                 for s in sys.argv[1:]:\n    \
                   try:\n        print(s, 'ok', os.fstat(int(s)).st_size)\n    \
                   except OSError as e:\n        print(s, 'errno', e.errno)\n";
    let py = format!(
        "import os, sys\n\
         a = os.open('/mem/hello.txt', os.O_RDONLY | os.O_CLOEXEC)\n\
         b = os.open('/mem/hello.txt', os.O_RDONLY)\n\
         os.set_inheritable(b, True)\n\
         print(a, b, os.get_inheritable(a), os.get_inheritable(b)); sys.stdout.flush()\n\
         os.execv(sys.executable, [sys.executable, '-c', {child:?}, str(a), str(b)])\n"
    );
    let o = with_memfs(&so, &[&python(), "-c", &py]);
    ok(&o);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{}", show(&o));
    let f: Vec<&str> = lines[0].split(' ').collect();
    assert_eq!(&f[2..], ["False", "True"], "{}", show(&o));
    assert_eq!(lines[1], format!("{} errno {}", f[0], libc::EBADF), "{}", show(&o));
    assert_eq!(lines[2], format!("{} ok 17", f[1]), "{}", show(&o));
}

/// The first argument of a trace line `[tid] name(0x..., ...)` of one of `names`.
fn first_arg(line: &str, names: &[&str]) -> Option<(String, u64)> {
    let rest = line.split_once("] ")?.1;
    let (name, args) = rest.split_once('(')?;
    if !names.contains(&name) {
        return None;
    }
    let a0 = args.split([',', ')']).next()?.trim();
    let v = u64::from_str_radix(a0.trim_start_matches("0x"), 16).ok()?;
    Some((name.to_string(), v))
}

#[test]
fn real_fds_never_stop_with_a_virtual_fd_open() {
    let d = TempDir::new("mod-dd");
    let so = memfs(&d);
    let trace = d.join("trace");
    let m = mem_mount(&so);
    let o = run(&[
        "--trace",
        trace.to_str().unwrap(),
        "--mount",
        &m,
        "--",
        "sh",
        "-c",
        "cat /mem/hello.txt; dd if=/dev/zero of=/dev/null bs=4k count=1000",
    ]);
    ok(&o);
    assert!(stdout(&o).starts_with("hello from memfs\n"), "{}", show(&o));
    let t = std::fs::read_to_string(&trace).unwrap();
    assert!(
        t.lines().any(|l| l.contains("openat(") && l.contains("\"/mem/hello.txt\"") && l.contains("memfs")),
        "no served openat of /mem/hello.txt in the trace:\n{t}"
    );
    let io = ["read", "write", "readv", "writev", "pread64", "pwrite64"];
    // Virtual descriptors start at fs.nr_open (at least 2^20): docs/architecture.md.
    let nr_open: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open").unwrap().trim().parse().unwrap();
    let base = nr_open.max(1 << 20);
    let served: Vec<&str> =
        t.lines().filter(|l| matches!(first_arg(l, &io), Some((_, fd)) if fd >= base)).collect();
    assert!(!served.is_empty(), "cat's reads of the virtual fd are not in the trace:\n{t}");
    let real: Vec<&str> =
        t.lines().filter(|l| matches!(first_arg(l, &io), Some((_, fd)) if fd < base)).collect();
    assert!(real.is_empty(), "I/O on real descriptors stopped:\n{}", real.join("\n"));
}

// ---------------------------------------------------------------- runtime control

#[test]
fn control_mount_mounts_umount() {
    let d = TempDir::new("mod-ctl");
    let (src, tgt) = src_tgt(&d);
    let v = v();
    let script = format!(
        "{v} mount -t fsremap {src} {tgt}; echo mount=$?; cat {tgt}/file; {v} mounts; \
         {v} umount {tgt}; echo umount=$?; cat {tgt}/file; echo cat=$?"
    );
    let o = run(&["-m", "fsremap", "--", "bash", "-c", &script]);
    ok(&o);
    let out = stdout(&o);
    assert!(out.contains("mount=0\ncontent\n"), "{}", show(&o));
    assert!(
        out.lines().any(|l| l.starts_with(&format!("{src} {tgt} fsremap "))),
        "vurs mounts: {}",
        show(&o)
    );
    assert!(out.contains("umount=0\ncat=1\n"), "{}", show(&o));
    assert!(stderr(&o).contains("No such file or directory"), "{}", show(&o));
}

#[test]
fn control_insmod_serving_module_refused_at_run_time() {
    // Serving modules need the virtual-descriptor filter, fixed when the session starts.
    let d = TempDir::new("mod-insmod-serve");
    let so = memfs(&d);
    let script = format!("{} insmod {so}; echo rc=$?", v());
    let o = run(&["-m", "fsremap", "--", "sh", "-c", &script]);
    ok(&o);
    assert_eq!(stdout(&o), "rc=1\n", "{}", show(&o));
    assert_eq!(stderr(&o), "vurs: memfs: serving modules must be loaded at start\n", "{}", show(&o));
}

#[test]
fn control_insmod_syscall_module_loaded_at_start() {
    let script = format!("{} insmod uname,nodename=x; echo rc=$?; uname -n", v());
    let o = run(&["-m", "uname", "--", "sh", "-c", &script]);
    ok(&o);
    assert_eq!(stdout(&o), "rc=0\nx\n", "{}", show(&o));
}

#[test]
fn control_insmod_syscall_module_not_trapped() {
    let script = format!("{} insmod uname,nodename=x; echo rc=$?", v());
    let o = run(&["--", "sh", "-c", &script]);
    ok(&o);
    assert_eq!(stdout(&o), "rc=1\n", "{}", show(&o));
    assert_eq!(
        stderr(&o),
        "vurs: uname: system call uname is not trapped in this session; load the module at start (vurs -m uname -- ...)\n",
        "{}",
        show(&o)
    );
}

#[test]
fn control_lsmod() {
    let o = run(&["-m", "fsremap", "-m", "uname,nodename=box", "--", &v(), "lsmod"]);
    ok(&o);
    let out = stdout(&o);
    let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(lines[0], ["Module", "Users", "Options", "Description"], "{out}");
    assert!(lines.iter().any(|f| f[0] == "fsremap" && f[1] == "0"), "{out}");
    assert!(lines.iter().any(|f| f[0] == "uname" && f.get(2) == Some(&"nodename=box")), "{out}");
    assert_eq!(lines.len(), 3, "{out}");
}

#[test]
fn control_rmmod_busy_then_ok() {
    let d = TempDir::new("mod-rmmod");
    let (src, tgt) = src_tgt(&d);
    let v = v();
    let script = format!(
        "{v} mount -t fsremap {src} {tgt}; {v} rmmod fsremap; echo r1=$?; \
         {v} umount {tgt}; {v} rmmod fsremap; echo r2=$?; {v} lsmod"
    );
    let o = run(&["-m", "fsremap", "--", "sh", "-c", &script]);
    ok(&o);
    let out = stdout(&o);
    assert!(out.starts_with("r1=1\nr2=0\n"), "{}", show(&o));
    assert!(!out.contains("fsremap"), "still listed after rmmod: {}", show(&o));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{}", show(&o));
    assert!(err.starts_with("vurs: ") && err.contains("in use"), "{}", show(&o));
}

#[test]
fn control_outside_a_session() {
    let o = run(&["mount", "-t", "fsremap", "/tmp", "/mnt"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert_eq!(stderr(&o), "vurs: not inside a vurs session\n");
    assert_eq!(stdout(&o), "");
}

#[test]
fn program_mount_syscall_is_virtual() {
    let d = TempDir::new("mod-mount2");
    let (src, tgt) = src_tgt(&d);
    let py = format!(
        "import ctypes, os\n\
         libc = ctypes.CDLL(None, use_errno=True)\n\
         print(libc.mount({src:?}.encode(), {tgt:?}.encode(), b'fsremap', 0, None))\n\
         print(sorted(os.listdir({tgt:?})))\n\
         print(libc.umount2({tgt:?}.encode(), 0))\n\
         print(sorted(os.listdir({tgt:?})))\n"
    );
    let o = run(&["-m", "fsremap", "--", &python(), "-c", &py]);
    ok(&o);
    assert_eq!(stdout(&o), "0\n['file']\n0\n[]\n", "{}", show(&o));
    // The host saw nothing.
    assert_eq!(std::fs::read_dir(&tgt).unwrap().count(), 0);
}

#[test]
fn umount_busy_with_open_file() {
    // Spec: umount of a mount in use (a file open on it) fails with EBUSY.
    let d = TempDir::new("mod-umount-busy");
    let so = memfs(&d);
    let py = format!(
        "import ctypes, os, subprocess\n\
         fd = os.open('/mem/hello.txt', os.O_RDONLY)\n\
         r = subprocess.run([{v:?}, 'umount', '/mem'], capture_output=True, text=True)\n\
         print('vurs-umount', r.returncode, r.stderr.strip())\n\
         libc = ctypes.CDLL(None, use_errno=True)\n\
         print('umount2', libc.umount2(b'/mem', 0), ctypes.get_errno())\n\
         print(os.read(fd, 5))\n\
         os.close(fd)\n\
         r = subprocess.run([{v:?}, 'umount', '/mem'])\n\
         print('after-close', r.returncode)\n",
        v = v()
    );
    let o = with_memfs(&so, &[&python(), "-c", &py]);
    ok(&o);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{}", show(&o));
    assert!(
        lines[0].starts_with("vurs-umount 1 vurs: ") && lines[0].to_lowercase().contains("busy"),
        "vurs umount of a mount with an open file: {}",
        show(&o)
    );
    assert_eq!(lines[1], format!("umount2 -1 {}", libc::EBUSY), "{}", show(&o));
    assert_eq!(lines[2], "b'hello'", "{}", show(&o));
    assert_eq!(lines[3], "after-close 0", "{}", show(&o));
}

#[test]
fn umount_busy_with_cwd_inside() {
    // Spec: a process whose cwd is inside the mount keeps it busy.
    let d = TempDir::new("mod-umount-cwd");
    let (src, tgt) = src_tgt(&d);
    let v = v();
    let script = format!(
        "{v} mount -t fsremap {src} {tgt}; cd {tgt}; {v} umount {tgt}; echo u1=$?; \
         cd /; {v} umount {tgt}; echo u2=$?"
    );
    let o = run(&["-m", "fsremap", "--", "bash", "-c", &script]);
    ok(&o);
    assert_eq!(stdout(&o), "u1=1\nu2=0\n", "{}", show(&o));
    assert!(stderr(&o).to_lowercase().contains("busy"), "{}", show(&o));
}

#[test]
fn umount_lazy_keeps_open_descriptors() {
    // Spec: `vurs umount -l` detaches at once; open descriptors keep working.
    let d = TempDir::new("mod-umount-lazy");
    let so = memfs(&d);
    let py = format!(
        "import os, subprocess\n\
         fd = os.open('/mem/hello.txt', os.O_RDONLY)\n\
         r = subprocess.run([{v:?}, 'umount', '-l', '/mem'])\n\
         print('umount-l', r.returncode)\n\
         print(os.read(fd, 5))\n\
         print(os.path.exists('/mem/hello.txt'))\n",
        v = v()
    );
    let o = with_memfs(&so, &[&python(), "-c", &py]);
    ok(&o);
    assert_eq!(stdout(&o), "umount-l 0\nb'hello'\nFalse\n", "{}", show(&o));
}

#[test]
fn umount2_detach_keeps_open_descriptors() {
    // Spec: umount2(MNT_DETACH) by the program: lazy, open descriptors keep working.
    let d = TempDir::new("mod-umount-detach");
    let so = memfs(&d);
    let py = "import ctypes, os\n\
              libc = ctypes.CDLL(None, use_errno=True)\n\
              fd = os.open('/mem/hello.txt', os.O_RDONLY)\n\
              print(libc.umount2(b'/mem', 2), ctypes.get_errno())\n\
              print(os.read(fd, 5))\n\
              print(os.path.exists('/mem/hello.txt'))\n";
    let o = with_memfs(&so, &[&python(), "-c", py]);
    ok(&o);
    assert_eq!(stdout(&o), "0 0\nb'hello'\nFalse\n", "{}", show(&o));
}

// ---------------------------------------------------------------- /proc/mounts

#[test]
fn virtual_mounts_in_proc_mounts() {
    let d = TempDir::new("mod-procmounts");
    let so = memfs(&d);
    let (src, tgt) = src_tgt(&d);
    let m = mem_mount(&so);
    let b = format!("{src}:{tgt}");
    let o = run(&[
        "--mount",
        &m,
        "-b",
        &b,
        "--",
        "sh",
        "-c",
        "cat /proc/self/mounts; echo ===; cat /proc/mounts",
    ]);
    ok(&o);
    let out = stdout(&o);
    let (own, all) = out.split_once("===\n").expect("marker");
    for (file, text) in [("/proc/self/mounts", own), ("/proc/mounts", all)] {
        let has = |target: &str, fstype: &str| {
            text.lines().any(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                f.len() == 6 && f[1] == target && f[2] == fstype
            })
        };
        assert!(has("/mem", "memfs"), "{file} lacks /mem memfs:\n{text}");
        assert!(has(&tgt, "fsremap"), "{file} lacks {tgt} fsremap:\n{text}");
    }
}

// ---------------------------------------------------------------- bad modules

/// The session must not start: exit 125, one stderr line `vurs: ...` containing `needles`.
fn assert_refused(args: &[&str], needles: &[&str]) {
    let mut a = args.to_vec();
    a.extend_from_slice(&["--", "echo", "RAN"]);
    let o = run(&a);
    assert_eq!(o.status.code(), Some(125), "{}", show(&o));
    assert!(!stdout(&o).contains("RAN"), "{}", show(&o));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "want one line: {}", show(&o));
    assert!(err.starts_with("vurs: "), "{}", show(&o));
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}: {}", show(&o));
    }
}

#[test]
fn bad_module_missing() {
    assert_refused(&["-m", "nosuchmod"], &["nosuchmod", "not found"]);
}

#[test]
fn bad_module_not_a_shared_object() {
    let d = TempDir::new("mod-bad-text");
    let p = d.join("libtext.so");
    std::fs::write(&p, "this is a text file, not a shared object\n".repeat(20)).unwrap();
    let p = p.to_str().unwrap();
    assert_refused(&["-m", p], &[p, "ELF"]);
}

#[test]
fn bad_module_no_symbol() {
    let d = TempDir::new("mod-bad-nosym");
    let src = d.join("empty.c");
    std::fs::write(&src, "int not_a_module(void) { return 0; }\n").unwrap();
    let so = build_so(&d, "empty", &src, &[]);
    let so = so.to_str().unwrap();
    assert_refused(&["-m", so], &[so, "vurs_module_v1"]);
}

#[test]
fn bad_module_abi_major() {
    let d = TempDir::new("mod-bad-major");
    let so = build_so(&d, "major2", &repo().join("tests/modules/tiny.c"), &["TINY_MAJOR=2"]);
    let so = so.to_str().unwrap();
    assert_refused(&["-m", so], &[so, &format!("ABI 2.{}", vurs_abi::VURS_ABI_MINOR), "not supported"]);
}

#[test]
fn bad_module_init_fails() {
    let d = TempDir::new("mod-bad-init");
    let so = memfs(&d);
    let spec = format!("{so},bogus");
    assert_refused(&["-m", &spec], &[&so, "bogus"]);
}

#[test]
fn bad_module_option_fsremap() {
    assert_refused(&["-m", "fsremap,zzz"], &["libfsremap.so", "zzz"]);
}

#[test]
fn bad_mount_spec() {
    assert_refused(&["--mount", "type=fsremap,source=/tmp"], &["--mount", "missing target"]);
}

// ---------------------------------------------------------------- module lookup

#[test]
fn lookup_name_forms() {
    let mut failed = Vec::new();
    for name in ["fsremap", "fsremap.so", "libfsremap.so"] {
        let o = run(&["-m", name, "--", &v(), "lsmod"]);
        if o.status.code() != Some(0) || !stdout(&o).contains("\nfsremap\t") {
            failed.push(format!("-m {name}: {}", show(&o)));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn lookup_vurs_module_path() {
    let d = TempDir::new("mod-path");
    std::fs::copy(module_dir().join("libfsremap.so"), d.join("libmyremap.so")).unwrap();
    let (src, tgt) = src_tgt(&d);
    let b = format!("type=fsremap,source={src},target={tgt}");
    let file = format!("{tgt}/file");
    // Not found without the variable...
    let o = run(&["-m", "myremap", "--", "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", show(&o));
    // ...found with it, and it works.
    let o = run_env(&["-m", "myremap", "--mount", &b, "--", "cat", &file], &[("VURS_MODULE_PATH", d.path())]);
    ok(&o);
    assert_eq!(stdout(&o), "content\n");
}

// ---------------------------------------------------------------- Rust module panics

/// Build a Rust module with the SDK (rustc + the vurs_abi rlib of this build).
fn rust_module(dir: &TempDir, src: &str) -> PathBuf {
    let deps = module_dir().join("deps");
    let rlib = [module_dir().join("libvurs_abi.rlib")]
        .into_iter()
        .filter(|p| p.exists())
        .chain({
            let mut v: Vec<PathBuf> = std::fs::read_dir(&deps)
                .unwrap()
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    let n = p.file_name().unwrap().to_string_lossy();
                    n.starts_with("libvurs_abi-") && n.ends_with(".rlib")
                })
                .collect();
            v.sort_by_key(|p| std::cmp::Reverse(p.metadata().and_then(|m| m.modified()).ok()));
            v
        })
        .next()
        .expect("libvurs_abi rlib (build the workspace first)");
    let file = dir.join("panicky.rs");
    std::fs::write(&file, src).unwrap();
    let out = dir.join("libpanicky.so");
    let mut c = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()));
    c.args(["--edition", "2021", "--crate-type", "cdylib", "--crate-name", "panicky"])
        .args(["-C", "panic=unwind", "-L"])
        .arg(format!("dependency={}", deps.display()))
        .arg("--extern")
        .arg(format!("vurs_abi={}", rlib.display()))
        .arg("-o")
        .arg(&out)
        .arg(&file);
    let o = run_with_timeout(c, 120);
    assert!(o.status.success(), "rustc: {}", stderr(&o));
    out
}

const PANICKY: &str = r#"
use vurs_abi::sdk::{Call, Module, Options, Services, Verdict};
pub struct P;
impl Module for P {
    type Mount = ();
    fn init(_svc: Services, o: &Options) -> Result<Self, String> {
        if o.has("panic_init") { panic!("boom in init") }
        Ok(P)
    }
    fn syscall(&self, _c: &Call<'_>) -> Verdict { panic!("boom in syscall") }
}
vurs_abi::export_module! {
    module: P, name: "panicky", description: "panics on uname", flags: 0, syscalls: [63],
}
"#;

#[test]
fn rust_module_panic_in_call_keeps_session() {
    let d = TempDir::new("mod-panic");
    let so = rust_module(&d, &PANICKY.replace("63", &libc::SYS_uname.to_string()));
    let o =
        run(&["-m", so.to_str().unwrap(), "--", "sh", "-c", "uname -n; echo rc=$?; uname -n; echo alive"]);
    ok(&o);
    assert_eq!(stdout(&o), "rc=1\nalive\n", "{}", show(&o));
    let err = stderr(&o);
    assert!(err.contains("panic in syscall"), "{}", show(&o));
    assert!(err.contains("Input/output error"), "uname should see EIO: {}", show(&o));
}

#[test]
fn rust_module_panic_in_init_is_a_load_error() {
    let d = TempDir::new("mod-panic-init");
    let so = rust_module(&d, PANICKY);
    let spec = format!("{},panic_init", so.display());
    let o = run(&["-m", &spec, "--", "echo", "RAN"]);
    assert_eq!(o.status.code(), Some(125), "{}", show(&o));
    assert!(!stdout(&o).contains("RAN"));
    // The panic message may precede it (Rust's panic hook); vurs's own line is the last.
    let last = stderr(&o).lines().last().unwrap_or("").to_string();
    assert!(last.starts_with("vurs: ") && last.contains("init panicked"), "{}", show(&o));
}

/// Modules see the caller's credentials, also after the program changed them (root
/// session dropping to nobody); the credentials of another process are not affected.
#[test]
fn modules_see_credential_changes() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: setresuid to another user is impossible, nothing to check");
        return;
    }
    let dir = TempDir::new("credprobe");
    let so = build_so(&dir, "credprobe", &repo().join("tests/modules/credprobe.c"), &[]);
    let so = so.display().to_string();
    let py = python();
    let o = run(&[
        "-m",
        &so,
        "--",
        &py,
        "-c",
        "import os, subprocess\n\
         print(os.getpid())\n\
         pid = os.fork()\n\
         if pid == 0:\n\
         \x20   os.setresuid(65534, 65534, 65534); print(os.getpid()); os._exit(0)\n\
         os.waitpid(pid, 0)\n\
         print(os.getpid())",
    ]);
    assert_eq!(stdout(&o), "0\n65534\n0\n", "{}", show(&o));
}

/// dup2 of a virtual descriptor onto a real number (a shell's `<` redirection) gives the
/// program a real descriptor with the file's contents.
#[test]
fn serve_shell_redirection_materializes() {
    let dir = TempDir::new("materialize");
    let so = memfs(&dir);
    let o = with_memfs(
        &so,
        &[
            "bash",
            "-c",
            "cat < /mem/hello.txt; wc -l < /mem/dir/numbers.txt; exec 6< /mem/dir/numbers.txt; \
             head -c 4 <&6; echo; while read l; do echo \"line: $l\"; done < /mem/hello.txt",
        ],
    );
    assert_eq!(stdout(&o), "hello from memfs\n1000\n1\n2\n\nline: hello from memfs\n", "{}", show(&o));
}
