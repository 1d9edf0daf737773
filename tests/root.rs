//! `vurs -r DIR` / `--root DIR` (issue 14, item 3): DIR is `/`, the host's /dev, /proc,
//! /sys and /etc/resolv.conf stay visible, -w sets the starting directory, -b goes on top.
//! The root file system is assembled from the host's static busybox (no network).
mod common;
use common::*;
use std::process::{Command, Output};

const ENGINES: [&str; 2] = ["notify", "ptrace"];

fn show(o: &Output) -> String {
    format!("status {:?}\n--- stdout\n{}--- stderr\n{}", o.status.code(), stdout(o), stderr(o))
}

/// A minimal root file system: /bin/busybox (static) and /bin/sh, /etc/marker, /tmp.
fn rootfs(d: &TempDir) -> String {
    let busybox = std::path::Path::new("/bin/busybox");
    assert!(busybox.exists(), "these tests need the busybox-static package (/bin/busybox)");
    for dir in ["bin", "etc", "tmp", "data"] {
        std::fs::create_dir_all(d.join(&format!("rfs/{dir}"))).unwrap();
    }
    std::fs::copy(busybox, d.join("rfs/bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", d.join("rfs/bin/sh")).unwrap();
    std::fs::write(d.join("rfs/etc/marker"), "inside the root\n").unwrap();
    d.join("rfs").display().to_string()
}

fn run(engine: &str, args: &[&str]) -> Output {
    let mut c = Command::new(vurs());
    c.args(args).env("VURS_ENGINE", engine);
    run_with_timeout(c, 60)
}

#[test]
fn root_is_slash_with_the_hosts_dev_proc_sys_and_binds_on_top() {
    let d = TempDir::new("root");
    let rfs = rootfs(&d);
    std::fs::write(d.join("hostfile"), "from the host\n").unwrap();
    let bind = format!("{}:/data/x", d.join("hostfile").display());
    let script = "pwd; /bin/busybox ls /; cat /etc/marker /data/x; /bin/busybox readlink /proc/self/exe; \
                  cd /tmp && pwd && cd ../.. && pwd; /bin/busybox ls /dev/null; \
                  /bin/busybox head -c 20 /etc/resolv.conf; echo; echo made > /tmp/made";
    let resolv: Vec<u8> =
        std::fs::read("/etc/resolv.conf").map(|b| b.into_iter().take(20).collect()).unwrap_or_default();
    let listing = ["bin", "data", "dev", "etc", "proc", "sys", "tmp"]; // ls order
    for e in ENGINES {
        let _ = std::fs::remove_file(d.join("rfs/tmp/made"));
        let o = run(e, &["-r", &rfs, "-b", &bind, "--", "/bin/sh", "-c", script]);
        assert_eq!(o.status.code(), Some(0), "{e}: {}", show(&o));
        let want = format!(
            "/\n{}\ninside the root\nfrom the host\n/bin/busybox\n/tmp\n/\n/dev/null\n{}\n",
            listing.join("\n"),
            String::from_utf8_lossy(&resolv)
        );
        assert_eq!(stdout(&o), want, "{e}: {}", show(&o));
        // Writes land in the root file system on the host.
        assert_eq!(std::fs::read_to_string(d.join("rfs/tmp/made")).unwrap(), "made\n", "{e}");
    }
}

#[test]
fn root_starts_in_slash_or_in_the_cwd_given() {
    let d = TempDir::new("root-cwd");
    let rfs = rootfs(&d);
    for e in ENGINES {
        let o = run(e, &["--root", &rfs, "--", "/bin/busybox", "pwd"]);
        assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(0), "/\n"), "{e}: {}", show(&o));
        let o = run(e, &["-r", &rfs, "-w", "/etc", "--", "/bin/busybox", "pwd"]);
        assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(0), "/etc\n"), "{e}: {}", show(&o));
    }
}

#[test]
fn root_that_is_not_a_directory_is_one_line_error() {
    let d = TempDir::new("root-bad");
    let missing = d.join("nope").display().to_string();
    let o = run("notify", &["-r", &missing, "--", "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", show(&o));
    assert_eq!(stderr(&o), format!("vurs: --root {missing}: not a directory\n"), "{}", show(&o));
}
