//! End to end (issue 14, items 4 and 5), as an unprivileged user (nobody, through setpriv,
//! when the tests run as root): a Debian-like root file system assembled from the host's own
//! dpkg, tar, shells and coreutils and their shared libraries (no network), entered with
//! `vurs -m fakeroot -r ROOTFS`. Inside it dpkg installs a locally built package with
//! root-owned files, a setuid program and a postinst that chowns and chmods; tar restores
//! foreign owners; mknod makes a device; all of it shows inside (also in a later session on
//! the same database) while the host keeps the user's files, owners and plain modes.
//! The engine is the one VURS_ENGINE names (the suite runs once per engine).
mod common;
use common::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const TIMEOUT: u64 = 180;

/// The programs the root file system holds: what dpkg needs (it checks for ldconfig and
/// start-stop-daemon in PATH and runs maintainer scripts with sh) and what the tests run.
const PROGRAMS: &[&str] = &[
    "sh",
    "bash",
    "dpkg",
    "dpkg-deb",
    "dpkg-query",
    "dpkg-split",
    "dpkg-divert",
    "dpkg-trigger",
    "dpkg-maintscript-helper",
    "ldconfig",
    "start-stop-daemon",
    "tar",
    "ls",
    "stat",
    "cat",
    "chown",
    "chmod",
    "mknod",
    "mkdir",
    "rm",
    "rmdir",
    "mv",
    "cp",
    "ln",
    "touch",
    "readlink",
    "id",
    "find",
    "sed",
    "grep",
    "diff",
    "env",
];

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

fn is_root() -> bool {
    // SAFETY: getuid cannot fail.
    unsafe { libc::getuid() == 0 }
}

/// Where a host file goes in the root file system: merged /usr, as Debian 12 has it
/// (/bin, /sbin, /lib, /lib64 are symlinks into /usr).
fn in_usr(host: &Path) -> PathBuf {
    let rel = host.strip_prefix("/").unwrap();
    if rel.starts_with("usr") {
        rel.to_path_buf()
    } else {
        Path::new("usr").join(rel)
    }
}

fn copy_into(root: &Path, host: &Path) -> PathBuf {
    let dest = root.join(in_usr(host));
    if !dest.exists() {
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(host, &dest).unwrap_or_else(|e| panic!("copy {}: {e}", host.display()));
    }
    dest
}

/// A program, its shared libraries (as ldd lists them) and the dynamic loader.
fn install_program(root: &Path, name: &str) {
    let found = ["/usr/bin", "/usr/sbin", "/bin", "/sbin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("these tests need {name} on the host (Debian's dpkg, tar, coreutils...)"));
    let real = std::fs::canonicalize(&found).unwrap();
    let dest = copy_into(root, &real);
    // `sh` is dash: keep the name the program is called by.
    let named = dest.with_file_name(name);
    if !named.exists() {
        std::os::unix::fs::symlink(real.file_name().unwrap(), &named).unwrap();
    }
    let ldd = Command::new("ldd").arg(&real).output().expect("ldd");
    for lib in String::from_utf8_lossy(&ldd.stdout).split_whitespace().filter(|w| w.starts_with('/')) {
        copy_into(root, Path::new(lib));
    }
}

/// A minimal Debian-like root file system at `d/rfs`, owned by the test user.
fn rootfs(d: &TempDir) -> PathBuf {
    let root = d.join("rfs");
    for dir in [
        "usr/bin",
        "usr/sbin",
        "usr/lib",
        "usr/lib64",
        "etc",
        "tmp",
        "root",
        "dev",
        "proc",
        "sys",
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
        "var/lib/dpkg/triggers",
        "var/log",
    ] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    for l in ["bin", "sbin", "lib", "lib64"] {
        std::os::unix::fs::symlink(format!("usr/{l}"), root.join(l)).unwrap();
    }
    for p in PROGRAMS {
        install_program(&root, p);
    }
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    std::fs::write(root.join("var/lib/dpkg/available"), "").unwrap();
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
    std::fs::set_permissions(root.join("tmp"), PermissionsExt::from_mode(0o1777)).unwrap();
    root
}

/// Give the tree to the test user (when the tests run as root).
fn give_to_user(p: &Path) {
    if is_root() {
        let (u, g) = user();
        let st = Command::new("chown").arg("-R").arg("-h").arg(format!("{u}:{g}")).arg(p).status().unwrap();
        assert!(st.success(), "chown -R {}", p.display());
    }
}

/// `vurs -m MODULE -r ROOT -- sh -c SCRIPT` as the test user.
fn inside(root: &Path, module: &str, script: &str) -> Output {
    let v = vurs();
    let r = root.display().to_string();
    let args = [v.to_str().unwrap(), "-m", module, "-r", &r, "--", "/bin/sh", "-c", script];
    let mut c = if is_root() {
        assert!(Path::new("/usr/bin/setpriv").exists(), "setpriv (util-linux) is needed to run as nobody");
        as_nobody(&args)
    } else {
        let mut c = Command::new(args[0]);
        c.args(&args[1..]);
        c
    };
    c.env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").env("LC_ALL", "C").current_dir(root);
    run_with_timeout(c, TIMEOUT)
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "failed: {:?}\nstdout: {}\nstderr: {}", o.status, stdout(o), stderr(o));
    stdout(o)
}

/// The mode string `ls -l` shows for a file given `mode` natively.
fn native_mode_string(d: &TempDir, mode: u32) -> String {
    let f = d.join("native-mode");
    std::fs::write(&f, "").unwrap();
    let st = Command::new("chmod").arg(format!("{mode:o}")).arg(&f).status().unwrap();
    assert!(st.success());
    let out = Command::new("stat").args(["-c", "%A"]).arg(&f).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// (mode string, owner) of each line of `ls -l`, by file name.
fn ls_fields(out: &str, name: &str) -> (String, String) {
    let line = out
        .lines()
        .find(|l| l.ends_with(name) && !l.starts_with("Status"))
        .unwrap_or_else(|| panic!("no {name} in:\n{out}"));
    let f: Vec<&str> = line.split_whitespace().collect();
    (f[0].to_string(), format!("{} {}", f[2], f[3]))
}

/// The package, built in `d` into `root/tmp/pkg.deb`: root-owned files
/// (--root-owner-group), a setuid program, and a postinst that gives a file to another
/// owner and a set-gid mode. Returns what `dpkg-deb -c` says of the setuid program (mode,
/// "owner group").
fn demo_deb(d: &TempDir, root: &Path) -> (String, String) {
    // that gives a file to another owner and a set-gid mode.
    let pkg = d.join("pkg");
    for dir in ["DEBIAN", "usr/bin", "usr/share/vurs-demo"] {
        std::fs::create_dir_all(pkg.join(dir)).unwrap();
    }
    std::fs::write(
        pkg.join("DEBIAN/control"),
        "Package: vurs-demo\nVersion: 1.0\nArchitecture: all\nMaintainer: vurs tests <vurs@example.invalid>\n\
         Description: root-owned files, a setuid program and a postinst\n",
    )
    .unwrap();
    std::fs::write(
        pkg.join("DEBIAN/postinst"),
        "#!/bin/sh\nset -e\nif [ \"$1\" = configure ]; then\n  chown 1234:5678 /usr/share/vurs-demo/data\n  \
         chmod 2750 /usr/share/vurs-demo/data\nfi\n",
    )
    .unwrap();
    std::fs::write(pkg.join("usr/bin/vurs-demo-suid"), "#!/bin/sh\necho demo\n").unwrap();
    std::fs::write(pkg.join("usr/share/vurs-demo/data"), "data\n").unwrap();
    for (f, mode) in
        [("DEBIAN/postinst", 0o755), ("usr/bin/vurs-demo-suid", 0o4755), ("usr/share/vurs-demo/data", 0o644)]
    {
        std::fs::set_permissions(pkg.join(f), PermissionsExt::from_mode(mode)).unwrap();
    }
    let deb = root.join("tmp/pkg.deb");
    let built = Command::new("dpkg-deb")
        .arg("--root-owner-group")
        .arg("--build")
        .arg(&pkg)
        .arg(&deb)
        .output()
        .unwrap();
    assert!(built.status.success(), "dpkg-deb --build: {}", stderr(&built));
    // What the package says of the setuid program (`dpkg-deb -c`: mode, owner/group).
    let listing = Command::new("dpkg-deb").arg("-c").arg(&deb).output().unwrap();
    let listing = stdout(&listing);
    let line = listing.lines().find(|l| l.ends_with("./usr/bin/vurs-demo-suid")).expect("listing");
    let f: Vec<&str> = line.split_whitespace().collect();
    let (deb_mode, deb_owner) = (f[0].to_string(), f[1].replace('/', " "));
    assert!(deb_mode.contains('s') && deb_owner == "root root", "the package as built: {line}");
    (deb_mode, deb_owner)
}

#[test]
fn dpkg_installs_a_local_package_with_root_files_and_setuid() {
    let d = TempDir::new("distro-dpkg");
    let root = rootfs(&d);
    let (deb_mode, deb_owner) = demo_deb(&d, &root);
    give_to_user(&d.0);

    let db = d.join("rfs.db");
    let module = format!("fakeroot,db={}", db.display());
    let show = "ls -l /usr/bin/vurs-demo-suid /usr/share/vurs-demo/data; dpkg -s vurs-demo | grep ^Status";
    let out = ok(&inside(&root, &module, &format!("dpkg -i /tmp/pkg.deb >/dev/null && {show}")));
    let data_mode = native_mode_string(&d, 0o2750);
    for session in [out, ok(&inside(&root, &module, show))] {
        assert_eq!(
            ls_fields(&session, "/usr/bin/vurs-demo-suid"),
            (deb_mode.clone(), deb_owner.clone()),
            "{session}"
        );
        assert_eq!(
            ls_fields(&session, "/usr/share/vurs-demo/data"),
            (data_mode.clone(), "1234 5678".into()),
            "{session}"
        );
        assert!(session.contains("Status: install ok installed\n"), "{session}");
    }
    // The host: the user's files, no set-id bit.
    let (u, g) = user();
    for f in ["usr/bin/vurs-demo-suid", "usr/share/vurs-demo/data", "var/lib/dpkg/status"] {
        let md = std::fs::symlink_metadata(root.join(f)).unwrap();
        assert_eq!((md.uid(), md.gid()), (u, g), "{f} on the host");
        assert_eq!(md.mode() & 0o7000, 0, "{f} on the host: mode {:o}", md.mode());
    }
}

#[test]
fn tar_owners_and_devices_inside_the_root_survive_sessions() {
    let d = TempDir::new("distro-tar");
    let root = rootfs(&d);
    // An archive whose files belong to uid/gid 1234, made on the host.
    let src = d.join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("sub/f"), "content\n").unwrap();
    std::fs::set_permissions(src.join("sub/f"), PermissionsExt::from_mode(0o4750)).unwrap();
    let tar = root.join("tmp/a.tar");
    let st = Command::new("tar")
        .args(["--owner=1234", "--group=1234", "--numeric-owner", "-cf"])
        .arg(&tar)
        .arg("-C")
        .arg(&src)
        .arg("sub")
        .status()
        .unwrap();
    assert!(st.success());
    let listing = Command::new("tar").args(["--numeric-owner", "-tvf"]).arg(&tar).output().unwrap();
    let owners: Vec<String> =
        stdout(&listing).lines().map(|l| l.split_whitespace().nth(1).unwrap().replace('/', ":")).collect();
    assert_eq!(owners, ["1234:1234", "1234:1234"], "the archive as made");
    // What the host shows of a character device 1,3 (/dev/null).
    let null = Command::new("stat").args(["-c", "%F %t,%T", "/dev/null"]).output().unwrap();
    let null = stdout(&null);
    give_to_user(&d.0);

    let db = d.join("rfs.db");
    let module = format!("fakeroot,db={}", db.display());
    let show = "cd /root/x && stat -c '%u:%g %A %n' sub sub/f && stat -c '%F %t,%T' dev && ls -l dev";
    let first = ok(&inside(
        &root,
        &module,
        &format!("mkdir /root/x && cd /root/x && tar xpf /tmp/a.tar && mknod dev c 1 3 && {show}"),
    ));
    let f_mode = native_mode_string(&d, 0o4750);
    let lines: Vec<&str> = first.lines().collect();
    assert_eq!(lines[0].split(' ').next(), Some(owners[0].as_str()), "{first}");
    assert_eq!(lines[1], format!("{} {f_mode} sub/f", owners[1]), "{first}");
    assert_eq!(format!("{}\n", lines[2]), null, "{first}");
    assert!(lines[3].starts_with("crw-") && lines[3].contains(" root root 1, 3 "), "{first}");
    // A later session on the same database sees the same; one without it sees the host's
    // files as the fake root's.
    assert_eq!(ok(&inside(&root, &module, show)), first);
    let bare = ok(&inside(&root, "fakeroot", "stat -c '%u:%g %F' /root/x/sub/f /root/x/dev"));
    assert_eq!(bare, "0:0 regular file\n0:0 regular empty file\n");
    // The host: the user's plain files.
    let (u, g) = user();
    let x = root.join("root/x");
    for (f, size) in [("sub/f", 8), ("dev", 0)] {
        let md = std::fs::symlink_metadata(x.join(f)).unwrap();
        assert!(md.file_type().is_file() && md.len() == size, "{f} on the host: {md:?}");
        assert_eq!((md.uid(), md.gid(), md.mode() & 0o7000), (u, g, 0), "{f} on the host");
    }
}

#[test]
fn chroot_is_followed_for_dpkg_root_and_a_first_process() {
    let d = TempDir::new("distro-chroot");
    let root = rootfs(&d);
    let (deb_mode, deb_owner) = demo_deb(&d, &root);
    give_to_user(&d.0);
    let r = root.display().to_string();
    let db = d.join("rfs.db");
    let module = format!("fakeroot,db={}", db.display());
    // From the host: dpkg --root runs the postinst chroot'ed into the root file system;
    // then chroot(8) again and again from one shell, each time showing the result.
    let show = "ls -l /usr/bin/vurs-demo-suid /usr/share/vurs-demo/data; dpkg -s vurs-demo | grep ^Status";
    let script = format!(
        "dpkg --root={r} -i {r}/tmp/pkg.deb >/dev/null && for i in 1 2 3; do chroot {r} /bin/sh -c '{show}' || exit 1; done"
    );
    let v = vurs();
    let args = [v.to_str().unwrap(), "-m", &module, "--", "sh", "-c", &script];
    let run = |args: &[&str]| {
        let mut c = if is_root() {
            as_nobody(args)
        } else {
            let mut c = Command::new(args[0]);
            c.args(&args[1..]);
            c
        };
        c.env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LC_ALL", "C")
            .env("HOME", d.path())
            .current_dir(d.path());
        run_with_timeout(c, TIMEOUT)
    };
    let out = ok(&run(&args));
    let data_mode = native_mode_string(&d, 0o2750);
    let sessions: Vec<String> =
        out.split_inclusive("Status: install ok installed\n").map(str::to_string).collect();
    assert_eq!(sessions.len(), 3, "{out}");
    // A later session entering the root with -r sees what the chroot'ed postinst did.
    for session in sessions.into_iter().chain([ok(&inside(&root, &module, show))]) {
        assert_eq!(
            ls_fields(&session, "/usr/bin/vurs-demo-suid"),
            (deb_mode.clone(), deb_owner.clone()),
            "{session}"
        );
        assert_eq!(
            ls_fields(&session, "/usr/share/vurs-demo/data"),
            (data_mode.clone(), "1234 5678".into()),
            "{session}"
        );
        assert!(session.contains("Status: install ok installed\n"), "{session}");
    }
    // chroot(8) as the session's first process: the fake root is there before any call of
    // the fakeroot module's own (and its /etc/passwd is the root file system's).
    let args = [
        v.to_str().unwrap(),
        "-m",
        "fakeroot",
        "--",
        "chroot",
        &r,
        "/bin/sh",
        "-c",
        "id -u; grep -c . /etc/passwd",
    ];
    assert_eq!(ok(&run(&args)), "0\n1\n", "the root file system's /etc/passwd has one line");
}

/// A maintainer script or daemon that drops from the fake root to the real user's own ids
/// (setgid, setuid) keeps them in its children, as natively: a child is not taken for a
/// process that never had fake ids.
#[test]
fn dropping_to_the_users_ids_is_kept_by_children() {
    let d = TempDir::new("distro-drop");
    let (u, g) = user();
    let py = python();
    let script = format!(
        "import os; os.setgroups([]); os.setgid({g}); os.setuid({u}); print(os.getuid()); os.system('id -u; sh -c \"id -u\"')"
    );
    let v = vurs();
    let args = [v.to_str().unwrap(), "-m", "fakeroot", "--", &py, "-c", &script];
    let mut c = if is_root() {
        as_nobody(&args)
    } else {
        let mut c = Command::new(args[0]);
        c.args(&args[1..]);
        c
    };
    c.current_dir(d.path());
    let out = ok(&run_with_timeout(c, TIMEOUT));
    assert_eq!(out, format!("{u}\n{u}\n{u}\n"));
}
