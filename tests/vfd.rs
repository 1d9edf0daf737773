//! Virtual descriptors used wherever a real one is (issue 12 item 3): real programs on a
//! served mount (tests/modules/allops.c over a host directory) compared with the same
//! programs on a real directory — poll, select, epoll, mmap, SCM_RIGHTS, fexecve, programs
//! and scripts run from the mount, shell redirections from and into served files (no size
//! limit), record locks (a documented errno), a mount whose source is served.
mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A served mount (/mnt/a over `host`) and a real directory to compare with.
struct Setup {
    _d: TempDir,
    so: String,
    real: PathBuf,
    host: PathBuf,
}

fn setup(tag: &str) -> Setup {
    let d = TempDir::new(tag);
    let so = build_so(&d, "allops", &repo().join("tests/modules/allops.c"), &[]).display().to_string();
    let (real, host) = (d.join("real"), d.join("host"));
    std::fs::create_dir(&real).unwrap();
    std::fs::create_dir(&host).unwrap();
    Setup { _d: d, so, real, host }
}

impl Setup {
    /// `prog` under vurs with the mount (`@D@` in its arguments stands for /mnt/a).
    fn served(&self, prog: &[&str]) -> Output {
        let m = format!("type=allops,source={},target=/mnt/a", self.host.display());
        let prog: Vec<String> = prog.iter().map(|a| a.replace("@D@", "/mnt/a")).collect();
        let mut args: Vec<&str> = vec!["-m", &self.so, "--mount", &m, "--"];
        args.extend(prog.iter().map(String::as_str));
        vurs_run(&args)
    }
    /// `prog` natively on the real directory.
    fn native(&self, prog: &[&str]) -> Output {
        let real = self.real.to_str().unwrap();
        let prog: Vec<String> = prog.iter().map(|a| a.replace("@D@", real)).collect();
        let mut c = Command::new(&prog[0]);
        c.args(&prog[1..]);
        run_with_timeout(c, 120)
    }
    /// Both runs succeed with the same output (paths shown as D); that output.
    fn same(&self, prog: &[&str]) -> String {
        let want = self.native(prog);
        assert!(want.status.success(), "native: {}{}", stdout(&want), stderr(&want));
        let got = self.served(prog);
        assert!(got.status.success(), "vurs: {}{}", stdout(&got), stderr(&got));
        let want = stdout(&want).replace(self.real.to_str().unwrap(), "@D@");
        let got = stdout(&got).replace("/mnt/a", "@D@");
        assert_eq!(got, want);
        want
    }
    /// Put `data` at NAME in both trees.
    fn put(&self, name: &str, data: &[u8], mode: u32) {
        for dir in [&self.real, &self.host] {
            let p = dir.join(name);
            std::fs::write(&p, data).unwrap();
            std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
        }
    }
}

fn script(name: &str) -> String {
    repo().join("tests/scripts").join(name).display().to_string()
}

#[test]
fn kernel_calls_on_a_served_file_match_a_real_file() {
    let s = setup("vfd-kernel");
    let out = s.same(&["python3", &script("vfd_kernel.py"), "@D@"]);
    // The run did what it says (not two identical failures).
    for want in [
        "poll, pipe empty: [(True, 1)]",
        "epoll register: 1",
        "mmap private: b'HELLO served file'",
        "file after a private write: hello served file",
        "file after a shared write: SHARE served file",
        "child got b'msg' b'served file\\n' offset 18",
        "fexecve ran arg",
        "fexecve status: 0",
    ] {
        assert!(out.contains(want), "{want:?} missing from:\n{out}");
    }
}

#[test]
fn select_with_large_sets_sees_served_and_real_descriptors() {
    let s = setup("vfd-select");
    let dir = TempDir::new("vfd-select-bin");
    let prog = build_c("select_big", dir.path());
    s.put("f", b"data\n", 0o644);
    let out = s.same(&[prog.to_str().unwrap(), "@D@/f"]);
    assert!(out.contains("round 1: 3 ready, pipe readable 1, file readable 1, file writable 1"), "{out}");
}

#[test]
fn programs_and_scripts_stored_in_a_served_mount_run() {
    let s = setup("vfd-exec");
    let dir = TempDir::new("vfd-exec-bin");
    let bin = std::fs::read(build_c("hello_served", dir.path())).unwrap();
    s.put("hello", &bin, 0o755);
    s.put("s.sh", b"#!/bin/sh\necho script $0 \"$@\"; exit 5\n", 0o755);
    s.put("noexec", &bin, 0o644);
    let sh = "@D@/hello a b; echo rc=$?; @D@/s.sh x y; echo rc=$?; \
              sh -c 'exec @D@/hello from-exec'; bash -c '@D@/s.sh from-bash'; \
              @D@/noexec 2>&1 | sed 's/^.*: //'; \
              python3 -c 'import os; os.execv(\"@D@/hello\", [\"py\", \"execv\"])'; echo rc=$?";
    let out = s.same(&["bash", "-c", sh]);
    assert!(out.contains("argc 3 argv0 @D@/hello a b\nrc=7"), "{out}");
    assert!(out.contains("script @D@/s.sh x y\nrc=5"), "{out}");
    assert!(out.contains("Permission denied"), "{out}");
}

#[test]
fn redirect_from_a_file_larger_than_64_mib() {
    let s = setup("vfd-big");
    // 72 MiB of a repeating but not constant pattern.
    let block: Vec<u8> = (0..65_521u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let mut data = Vec::with_capacity(72 << 20);
    while data.len() < 72 << 20 {
        data.extend_from_slice(&block);
    }
    data.truncate(72 << 20);
    s.put("big", &data, 0o644);
    drop(data);
    let out = s.same(&[
        "sh",
        "-c",
        "cat < @D@/big | md5sum; wc -c < @D@/big; { head -c 5 >/dev/null; wc -c; } < @D@/big",
    ]);
    assert!(out.contains(&format!("{}\n", 72 << 20)), "{out}");
}

#[test]
fn redirect_into_served_files() {
    let s = setup("vfd-write");
    let sh = "echo hi > @D@/new; cat @D@/new; echo more >> @D@/new; cat @D@/new; \
              exec 3> @D@/w; echo x >&3; cat @D@/w; echo y >&3; exec 3>&-; cat @D@/w; \
              printf abc > @D@/w; wc -c < @D@/w; \
              (echo from-a-child; echo and-more) > @D@/c; cat @D@/c; \
              exec 4<> @D@/c; read line <&4; echo read: $line; echo TAIL >&4; exec 4>&-; cat @D@/c";
    for shell in ["sh", "bash"] {
        let out = s.same(&[shell, "-c", sh]);
        assert!(out.starts_with("hi\nhi\nmore\nx\nx\ny\n3\nfrom-a-child\n"), "{shell}: {out}");
        for f in ["new", "w", "c"] {
            let _ = std::fs::remove_file(s.real.join(f));
            let _ = std::fs::remove_file(s.host.join(f));
        }
    }
    // The module's files hold what was written (the host directory behind the mount).
    s.served(&["sh", "-c", "echo persisted > @D@/p"]);
    assert_eq!(std::fs::read_to_string(s.host.join("p")).unwrap(), "persisted\n");
}

#[test]
fn record_locks_on_served_files_answer_enolck() {
    let s = setup("vfd-locks");
    s.put("f", b"x", 0o644);
    let py = "import fcntl, os, struct, sys\n\
              fd = os.open(sys.argv[1] + '/f', os.O_RDWR)\n\
              try:\n    fcntl.fcntl(fd, fcntl.F_SETLK, struct.pack('hhqqi', fcntl.F_WRLCK, 0, 0, 0, 0)); print('locked')\n\
              except OSError as e:\n    print('errno', e.errno)\n";
    let native = s.native(&["python3", "-c", py, "@D@"]);
    assert_eq!(stdout(&native), "locked\n");
    // Documented in docs/modules.md: record locks are not kept for served files.
    let got = s.served(&["python3", "-c", py, "@D@"]);
    assert_eq!(stdout(&got), format!("errno {}\n", libc::ENOLCK), "{}", stderr(&got));
}

#[test]
fn mount_source_in_a_served_mount_is_refused_in_one_line() {
    let s = setup("vfd-mountsrc");
    std::fs::create_dir(s.host.join("dir")).unwrap();
    let path =
        format!("{}:{}", vurs().parent().unwrap().display(), std::env::var("PATH").unwrap_or_default());
    let sh = format!("PATH={path}; vurs mount -t fsremap @D@/dir /x; echo rc=$?");
    let m = format!("type=allops,source={},target=/mnt/a", s.host.display());
    let out = vurs_run(&[
        "-m",
        "fsremap",
        "-m",
        &s.so,
        "--mount",
        &m,
        "--",
        "sh",
        "-c",
        &sh.replace("@D@", "/mnt/a"),
    ]);
    let err = stderr(&out);
    assert_eq!(stdout(&out), "rc=1\n", "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("vurs: mount: /mnt/a/dir: lies in /mnt/a (served by module allops)"), "{err}");
    let _ = Path::new("/");
}
