//! ABI 1.1 on a served mount: tests/modules/allops.c (every 1.1 callback, over a host
//! directory) runs real programs under vurs, compared with the same programs on a real
//! directory; lifecycle hooks; the caller and clock services; item-4 fixes of issue 12.
mod common;
use common::*;
use std::process::Command;

fn allops(d: &TempDir) -> String {
    build_so(d, "allops", &repo().join("tests/modules/allops.c"), &[]).display().to_string()
}

/// Run `prog args` under vurs with allops mounted on /mnt/a over `src` (`extra`: more
/// vurs options before `--`).
fn under(so: &str, src: &std::path::Path, ro: bool, extra: &[&str], prog: &[&str]) -> std::process::Output {
    let m = format!("type=allops,source={},target=/mnt/a{}", src.display(), if ro { ",ro" } else { "" });
    let mut args: Vec<&str> = vec!["-m", so];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--mount", &m, "--"]);
    args.extend_from_slice(prog);
    vurs_run(&args)
}

fn native(prog: &[&str]) -> std::process::Output {
    let mut c = Command::new(prog[0]);
    c.args(&prog[1..]);
    run_with_timeout(c, 60)
}

#[test]
fn every_operation_matches_a_real_directory() {
    let d = TempDir::new("abi11-ops");
    let so = allops(&d);
    let (real, host) = (d.join("real"), d.join("host"));
    std::fs::create_dir(&real).unwrap();
    std::fs::create_dir(&host).unwrap();
    let script = repo().join("tests/scripts/fsops.py");
    let script = script.to_str().unwrap();
    let want = native(&["python3", script, real.to_str().unwrap()]);
    assert!(want.status.success(), "native run: {}", stderr(&want));
    let got = under(&so, &host, false, &[], &["python3", script, "/mnt/a"]);
    assert!(got.status.success(), "vurs run: {}", stderr(&got));
    let want = stdout(&want).replace(real.to_str().unwrap(), "D");
    let got = stdout(&got).replace("/mnt/a", "D");
    assert!(want.lines().count() > 70, "script too short: {want}");
    assert_eq!(got, want);
}

/// coreutils on the served mount and on a real directory: same listing, same errors.
#[test]
fn coreutils_match_a_real_directory() {
    let d = TempDir::new("abi11-coreutils");
    let so = allops(&d);
    let (real, host) = (d.join("real"), d.join("host"));
    std::fs::create_dir(&real).unwrap();
    std::fs::create_dir(&host).unwrap();
    let script = r#"D=$1
umask 022
mkdir $D/a $D/a/b $D/a/b/c && echo mkdir
cp /etc/hostname $D/a/b/c/file && echo cp
mv $D/a/b/c/file $D/a/moved && echo mv
ln $D/a/moved $D/a/hard && ln -s moved $D/a/soft && echo ln
chmod 751 $D/a/moved && echo chmod
touch -d '2001-02-03 04:05:06 UTC' $D/a/moved && stat -c %Y $D/a/moved
truncate -s 12345 $D/a/hard && echo truncate && touch -d @981173106 $D/a/hard
sync $D/a/moved && echo sync
stat -c '%n %F %a %s %h' $D/a/moved $D/a/hard $D/a/soft $D/a $D/a/b
cat $D/a/moved/ 2>&1 | sed 's/^[^:]*: //'
rmdir $D/a 2>&1 | sed 's/^[^:]*: //'
ls -la $D/a | awk '{print $1, $2, $NF}'
rm -r $D/a && echo rm
ls -A $D
"#;
    let want = native(&["sh", "-c", script, "sh", real.to_str().unwrap()]);
    let got = under(&so, &host, false, &[], &["sh", "-c", script, "sh", "/mnt/a"]);
    assert!(got.status.success(), "vurs: {}", stderr(&got));
    let want = stdout(&want).replace(real.to_str().unwrap(), "D");
    let got = stdout(&got).replace("/mnt/a", "D");
    assert!(want.contains("rm\n"), "{want}");
    assert_eq!(got, want);
}

#[test]
fn statfs_reports_read_only_and_hard_link_is_erofs() {
    let d = TempDir::new("abi11-ro");
    let so = allops(&d);
    std::fs::write(d.join("f"), "x").unwrap();
    let py = r#"import os, errno
try:
    os.link('/mnt/a/f', '/mnt/a/g'); print('link ok')
except OSError as e: print('link', errno.errorcode[e.errno])
print('rdonly', bool(os.statvfs('/mnt/a').f_flag & os.ST_RDONLY))
try:
    os.open('/mnt/a/new', os.O_CREAT | os.O_WRONLY); print('create ok')
except OSError as e: print('create', errno.errorcode[e.errno])
"#;
    let o = under(&so, d.path(), true, &[], &["python3", "-c", py]);
    assert_eq!(stdout(&o), "link EROFS\nrdonly True\ncreate EROFS\n", "{}", stderr(&o));
}

/// Lifecycle hooks and the caller service: the module counts forks, execs and exits and
/// the callbacks that had a caller, and writes them at fini.
#[test]
fn lifecycle_hooks_and_caller() {
    let d = TempDir::new("abi11-hooks");
    let so = allops(&d);
    let log = d.join("log");
    let opt = format!("{so},log={}", log.display());
    let host = d.join("h");
    std::fs::create_dir(&host).unwrap();
    // three children of sh, each exec'd: true, true, ls
    let o = under(&opt, &host, false, &[], &["sh", "-c", "/bin/true; /bin/true; ls /mnt/a >/dev/null"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&log).unwrap();
    let n = |k: &str| -> i64 {
        let w: Vec<&str> = text.split_whitespace().collect();
        w[w.iter().position(|x| *x == k).unwrap() + 1].parse().unwrap()
    };
    assert!(n("fork") >= 3, "{text}");
    assert!(n("exec") >= 3, "{text}");
    assert!(n("exit") >= n("fork"), "{text}");
    assert!(n("callers") > 0, "{text}");
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() } as i64;
    assert_eq!(n("uid"), me, "{text}");
}

/// The clock service: with the time module loaded, `touch` (UTIME_NOW) on a served file
/// stamps the session's (virtual) time, ten years back.
#[test]
fn served_timestamps_follow_the_time_module() {
    let d = TempDir::new("abi11-clock");
    let so = allops(&d);
    std::fs::write(d.join("f"), "x").unwrap();
    let o = under(&so, d.path(), false, &["-m", "time,offset=-315360000"], &["touch", "/mnt/a/f"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mtime = std::fs::metadata(d.join("f")).unwrap().modified().unwrap();
    let age = std::time::SystemTime::now().duration_since(mtime).unwrap().as_secs();
    assert!((315360000 - 3600..315360000 + 3600).contains(&age), "age {age}");
}

/// `ls -la` in a served mount shows real `.` and `..` entries (lstat of DIR/. and
/// DIR/.. asks the module).
#[test]
fn dot_and_dotdot_are_served() {
    let d = TempDir::new("abi11-dots");
    let so = allops(&d);
    std::fs::create_dir(d.join("sub")).unwrap();
    let o = under(&so, d.path(), false, &[], &["sh", "-c", "ls -la /mnt/a/sub | awk '{print $1, $NF}'"]);
    let out = stdout(&o);
    assert!(!out.contains('?'), "{out}\n{}", stderr(&o));
    assert!(out.contains("drwx") && out.contains(" .\n") && out.contains(" ..\n"), "{out}");
}

/// A 1.0 module (descriptor size up to `auto_mounts`) on a served mount: the new calls
/// answer as a NULL callback does (ENOSYS; EPERM for mknod, ENOTSUP for xattrs).
#[test]
fn null_callbacks_answer_their_errno() {
    let d = TempDir::new("abi11-null");
    let so = build_so(&d, "memfs", &repo().join("tests/modules/memfs.c"), &[]).display().to_string();
    let py = r#"import os, errno
def t(n, f):
    try: f(); print(n, 'ok')
    except OSError as e: print(n, errno.errorcode[e.errno])
t('mkdir', lambda: os.mkdir('/m/x'))
t('mknod', lambda: os.mknod('/m/y'))
t('getxattr', lambda: os.getxattr('/m/hello.txt', 'user.x'))
t('statvfs', lambda: os.statvfs('/m'))
"#;
    let o = vurs_run(&["-m", &so, "--mount", "type=memfs,source=none,target=/m", "--", "python3", "-c", py]);
    assert_eq!(stdout(&o), "mkdir ENOSYS\nmknod EPERM\ngetxattr ENOTSUP\nstatvfs ENOSYS\n", "{}", stderr(&o));
}

/// syscall_exit: allops answers getppid with VURS_PASS_EXIT and adds 4242 to the kernel's
/// result at the exit (the parent is the shell, whose pid `$$` tells the real value).
#[test]
fn syscall_exit_changes_the_kernels_result() {
    let d = TempDir::new("abi11-exit");
    let so = allops(&d);
    std::fs::create_dir(d.join("src")).unwrap();
    let py = format!("{} -c 'import os; print(os.getppid())'", python());
    let o = under(&so, &d.join("src"), false, &[], &["sh", "-c", &format!("echo $$; {py}")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let v: Vec<i64> = out.lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(v.len(), 2, "{out}");
    assert_eq!(v[1], v[0] + 4242, "{out}");
}

/// `list` (ABI 1.1, redirecting modules): tests/modules/listdir.c lists its mount's top
/// directory itself (the host entries in reverse order, then one that exists nowhere); a
/// subdirectory it declines (-ENOSYS) lists as the host's.
#[test]
fn list_callback_gives_a_redirected_directory_its_listing() {
    let d = TempDir::new("abi11-list");
    let so = build_so(&d, "listdir", &repo().join("tests/modules/listdir.c"), &[]).display().to_string();
    std::fs::create_dir_all(d.join("src/sub")).unwrap();
    for f in ["a", "b", "c", "sub/s1", "sub/s2"] {
        std::fs::write(d.join(&format!("src/{f}")), f).unwrap();
    }
    let mut host: Vec<String> = std::fs::read_dir(d.join("src"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    host.sort_by(|a, b| b.cmp(a));
    host.push("listed-only".into());
    let m = format!("type=listdir,source={},target=/opt/vurs-listdir", d.join("src").display());
    let py = "import os\nprint(' '.join(e.name for e in os.scandir('/opt/vurs-listdir')))\nprint(' '.join(sorted(os.listdir('/opt/vurs-listdir/sub'))))\nprint(open('/opt/vurs-listdir/a').read())";
    let o = vurs_run(&["-m", &so, "--mount", &m, "--", &python(), "-c", py]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("{}\ns1 s2\na\n", host.join(" ")), "{}", stderr(&o));
}
