//! Core hypervisor contract: command line and exit statuses, session lifetime, cleanup on
//! signals, transparency of the tracer (tests/progs under `vurs --` and `vurs -m fsremap --`
//! behave as natively), --trace, non-root use, job control through a pty, CPython suites.
mod common;
use common::*;
use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// helpers

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Exit code of a finished process: its code, or 128+N if it died of signal N.
fn status_of(o: &Output) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    o.status.code().unwrap_or_else(|| 128 + o.status.signal().unwrap_or(0))
}

/// A readable summary of a run for assertion messages.
fn show(o: &Output) -> String {
    format!("status {:?}\n--- stdout\n{}--- stderr\n{}", o.status, stdout(o), stderr(o))
}

/// vurs's own error: exactly one line on stderr, starting with "vurs: ".
fn assert_one_error_line(o: &Output) {
    let e = stderr(o);
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 1, "want one error line:\n{}", show(o));
    assert!(lines[0].starts_with("vurs: "), "error line must start with 'vurs: ':\n{}", show(o));
}

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " ").trim_end().to_string())
        .unwrap_or_default()
}

/// SIGKILLs the given pids on drop, so a failing test leaves no `sleep 300` behind.
struct KillOnDrop(Vec<i32>);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for &p in &self.0 {
            // SAFETY: plain kill(2) of pids this test started.
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
    }
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// vurs and its modules copied into a world-readable folder (the build folder may sit under
/// a home directory that user nobody cannot enter), plus that folder for test files.
struct Unprivileged {
    dir: TempDir,
    vurs: PathBuf,
}
impl Unprivileged {
    fn new(tag: &str) -> Unprivileged {
        let dir = TempDir::new(tag);
        let bin = dir.join("bin");
        std::fs::create_dir(&bin).unwrap();
        std::fs::set_permissions(&bin, PermissionsExt::from_mode(0o755)).unwrap();
        let vurs = bin.join("vurs");
        std::fs::copy(common::vurs(), &vurs).unwrap();
        for e in std::fs::read_dir(module_dir()).unwrap().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with("lib") && n.ends_with(".so") {
                std::fs::copy(e.path(), bin.join(&n)).unwrap();
            }
        }
        for e in std::fs::read_dir(&bin).unwrap().flatten() {
            std::fs::set_permissions(e.path(), PermissionsExt::from_mode(0o755)).unwrap();
        }
        Unprivileged { dir, vurs }
    }
    /// `vurs ARGS...` as user nobody when we are root; as ourselves (already non-root) else.
    fn vurs(&self, args: &[&str]) -> Command {
        let mut argv = vec![path_str(&self.vurs)];
        argv.extend_from_slice(args);
        let mut c = if running_as_root() {
            as_nobody(&argv)
        } else {
            eprintln!("note: not root, running the unprivileged case as ourselves");
            let mut c = Command::new(argv[0]);
            c.args(&argv[1..]);
            c
        };
        c.current_dir(self.dir.path());
        c
    }
}

// ---------------------------------------------------------------------------------------------
// command line and exit statuses

/// --help and --version print something and exit 0.
#[test]
fn help_and_version_exit_0() {
    for a in ["--help", "--version"] {
        let o = vurs_run(&[a]);
        assert_eq!(o.status.code(), Some(0), "vurs {a}:\n{}", show(&o));
        assert!(!stdout(&o).trim().is_empty(), "vurs {a} printed nothing");
    }
    assert!(stdout(&vurs_run(&["--version"])).contains("vurs"));
}

/// A control subcommand outside a session: exit 1, one line "vurs: not inside a vurs session".
#[test]
fn control_outside_session() {
    let mut c = Command::new(vurs());
    c.args(["mount", "-t", "x", "a", "b"]);
    let o = run_with_timeout(c, 30);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert_eq!(stderr(&o), "vurs: not inside a vurs session\n", "{}", show(&o));
}

/// The exit status is COMMAND's own.
#[test]
fn exit_status_is_commands() {
    for code in [0, 1, 3, 42, 255] {
        let o = vurs_run(&["--", "sh", "-c", &format!("exit {code}")]);
        assert_eq!(o.status.code(), Some(code), "exit {code}:\n{}", show(&o));
        assert!(stderr(&o).is_empty(), "vurs printed on stderr:\n{}", show(&o));
    }
}

/// COMMAND killed by signal N: vurs dies of signal N too (as the command alone would), without
/// a core dump of its own; an exit status of 128+N stays an exit status.
#[test]
fn killed_command_kills_vurs_with_the_same_signal() {
    use std::os::unix::process::ExitStatusExt;
    for (sig, n) in
        [("KILL", 9), ("TERM", 15), ("SEGV", 11), ("USR1", 10), ("INT", 2), ("QUIT", 3), ("ABRT", 6)]
    {
        // Both start with the default dispositions, whatever this test runs under (a
        // background job of a script has SIGINT and SIGQUIT ignored, and passes that on).
        let defaults = |c: &mut Command| {
            use std::os::unix::process::CommandExt;
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                c.pre_exec(|| {
                    libc::signal(libc::SIGINT, libc::SIG_DFL);
                    libc::signal(libc::SIGQUIT, libc::SIG_DFL);
                    Ok(())
                });
            }
        };
        let mut c = Command::new(vurs());
        c.args(["--", "sh", "-c", &format!("kill -{sig} $$")]);
        defaults(&mut c);
        let o = run_with_timeout(c, 60);
        let mut c = Command::new("sh");
        c.args(["-c", &format!("kill -{sig} $$")]);
        defaults(&mut c);
        let native = c.output().unwrap();
        assert_eq!(native.status.signal(), Some(n), "native kill -{sig}");
        assert_eq!((o.status.code(), o.status.signal()), (None, Some(n)), "kill -{sig}:\n{}", show(&o));
        assert!(!o.status.core_dumped(), "vurs dumped core for kill -{sig}");
    }
    let o = vurs_run(&["--", "sh", "-c", "exit 130"]);
    assert_eq!((o.status.code(), o.status.signal()), (Some(130), None), "exit 130:\n{}", show(&o));
}

/// vurs's own failures (bad option, bad module, bad mount, no command): 125, one error line.
#[test]
fn own_failures_exit_125_with_one_line() {
    let cases: &[&[&str]] = &[
        &["--no-such-option", "--", "true"],
        &["-m", "no-such-module-xyz", "--", "true"],
        &["-b", "no-colon", "--", "true"],
        &["-b", "/no/such/source/xyz:/tmp/x", "--", "true"],
        &["--mount", "source=/a,target=/b", "--", "true"],
        &[],
    ];
    for args in cases {
        let o = vurs_run(args);
        assert_eq!(o.status.code(), Some(125), "vurs {args:?}:\n{}", show(&o));
        assert_one_error_line(&o);
        assert!(stdout(&o).is_empty(), "vurs {args:?} printed on stdout:\n{}", show(&o));
    }
}

/// COMMAND not found: 127; found but not executable: 126; one error line each.
#[test]
fn not_found_127_not_executable_126() {
    let d = TempDir::new("noexec");
    let f = d.join("script");
    std::fs::write(&f, "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(&f, PermissionsExt::from_mode(0o644)).unwrap();
    let cases: &[(&[&str], i32)] = &[
        (&["--", "/no/such/program"], 127),
        (&["--", "no-such-program-in-path-xyz"], 127),
        (&["--", path_str(&f)], 126),
        (&["--", path_str(d.path())], 126),
    ];
    for (args, want) in cases {
        let o = vurs_run(args);
        assert_eq!(o.status.code(), Some(*want), "vurs {args:?}:\n{}", show(&o));
        assert_one_error_line(&o);
    }
}

// ---------------------------------------------------------------------------------------------
// session lifetime and cleanup

/// vurs serves until the last process has exited (background jobs too), then returns
/// COMMAND's status.
#[test]
fn waits_for_background_jobs() {
    let d = TempDir::new("late");
    let f = d.join("late");
    let script = format!("(sleep 1; echo late > '{}') & exit 3", f.display());
    let t0 = Instant::now();
    let o = vurs_run(&["--", "sh", "-c", &script]);
    assert_eq!(o.status.code(), Some(3), "{}", show(&o));
    assert!(f.exists(), "the background job had not finished when vurs returned");
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "late\n");
    assert!(t0.elapsed() >= Duration::from_millis(900));
}

/// Start `vurs -- sh -c 'sleep 300 & sleep 300'`, return (vurs child, every process of the
/// session: sh and both sleeps).
fn start_sleepers(d: &TempDir) -> (Child, Vec<i32>) {
    let pids = d.join("pids");
    let script =
        format!("sleep 300 & echo $! $$ > '{0}.tmp' && mv '{0}.tmp' '{0}'; sleep 300", pids.display());
    let child = Command::new(vurs())
        .args(["--", "sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn vurs");
    let vp = child.id() as i32;
    let _guard = KillOnDrop(vec![vp]);
    let text = wait_for(20, "the pid file", || std::fs::read_to_string(&pids).ok());
    let mine: Vec<i32> = text.split_whitespace().map(|s| s.parse().unwrap()).collect();
    // Wait for the foreground sleep too: sh + 2 sleeps below vurs.
    let all = wait_for(20, "sh and two sleeps under vurs", || {
        let ds = descendants(vp);
        let sleeps = ds.iter().filter(|&&p| cmdline(p) == "sleep 300").count();
        (sleeps == 2 && mine.iter().all(|p| ds.contains(p))).then_some(ds)
    });
    std::mem::forget(_guard);
    (child, all)
}

/// Send `sig` to vurs while `sh -c 'sleep 300 & sleep 300'` runs: vurs ends and no process
/// of the session is left (gone or zombie) within a few seconds.
fn signal_vurs_leaves_nothing(sig: i32) {
    let d = TempDir::new("sig");
    let (mut child, procs) = start_sleepers(&d);
    let _guard = KillOnDrop(procs.iter().copied().chain([child.id() as i32]).collect());
    // SAFETY: kill(2) of the vurs we started.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
    wait_child(&mut child, 10, "vurs to end after the signal");
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let left: Vec<String> = procs
            .iter()
            .filter(|&&p| !is_gone(p))
            .map(|&p| format!("{p} ({}) state {:?}", cmdline(p), proc_state(p)))
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < end, "signal {sig}: processes left behind: {left:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM to vurs: every process of the session goes away.
#[test]
fn sigterm_to_vurs_leaves_no_process() {
    signal_vurs_leaves_nothing(libc::SIGTERM);
}

/// SIGHUP to vurs (terminal closed): every process of the session goes away.
#[test]
fn sighup_to_vurs_leaves_no_process() {
    signal_vurs_leaves_nothing(libc::SIGHUP);
}

/// SIGKILL to vurs (nothing it can do): the tracees still go away.
#[test]
fn sigkill_to_vurs_leaves_no_process() {
    signal_vurs_leaves_nothing(libc::SIGKILL);
}

/// COMMAND killed with SIGKILL from outside: vurs waits for the background job, dies of
/// SIGKILL too, and nothing of the session is left.
#[test]
fn sigkill_of_command_kills_vurs_and_leaves_no_process() {
    let d = TempDir::new("killcmd");
    let (pids, late) = (d.join("pids"), d.join("late"));
    let script = format!(
        "(sleep 1; echo late > '{1}') & echo $$ > '{0}.tmp' && mv '{0}.tmp' '{0}'; exec sleep 300",
        pids.display(),
        late.display()
    );
    let mut child = Command::new(vurs())
        .args(["--", "sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn vurs");
    let vp = child.id() as i32;
    let _guard = KillOnDrop(vec![vp]);
    let cmd: i32 =
        wait_for(20, "the pid file", || std::fs::read_to_string(&pids).ok()).trim().parse().unwrap();
    wait_for(20, "COMMAND to exec sleep 300", || (cmdline(cmd) == "sleep 300").then_some(()));
    let procs = descendants(vp);
    let _guard2 = KillOnDrop(procs.clone());
    // SAFETY: kill(2) of the COMMAND process we started (through vurs).
    assert_eq!(unsafe { libc::kill(cmd, libc::SIGKILL) }, 0);
    let st = wait_child(&mut child, 20, "vurs to end after COMMAND was killed");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(st.signal(), Some(libc::SIGKILL), "vurs status {st:?}");
    assert!(late.exists(), "background job had not finished when vurs returned");
    let left: Vec<i32> = procs.into_iter().filter(|&p| !is_gone(p)).collect();
    assert!(left.is_empty(), "processes left behind: {left:?}");
}

// ---------------------------------------------------------------------------------------------
// transparency: tests/progs behave as natively, bare and with a path module loaded

/// Build tests/progs/NAME.c; run it natively, under `vurs --` and `vurs -m fsremap --`; the
/// native run must give `want` (stdout) and `want_status`, and each vurs run the same.
fn same_as_native(name: &str, want: &str, want_status: i32) {
    let d = TempDir::new(name);
    let prog = build_c(name, d.path());
    let work = d.join("work");
    std::fs::create_dir(&work).unwrap();
    let extra: Vec<&str> = if name == "threads_io" { vec![path_str(&work)] } else { vec![] };
    let mut native = Command::new(&prog);
    native.args(&extra);
    let n = run_with_timeout(native, 60);
    assert_eq!((stdout(&n).as_str(), status_of(&n)), (want, want_status), "native {name}:\n{}", show(&n));
    for pre in [&["--"][..], &["-m", "fsremap", "--"][..]] {
        let mut c = Command::new(vurs());
        c.args(pre).arg(&prog).args(&extra);
        let o = run_with_timeout(c, 90);
        assert_eq!(
            (stdout(&o), status_of(&o)),
            (stdout(&n), status_of(&n)),
            "vurs {pre:?} {name} differs from native:\n{}",
            show(&o)
        );
    }
}

/// 200 fork()s in a burst, all reaped with the right statuses.
#[test]
fn prog_fork_burst() {
    same_as_native("fork_burst", "forked 200 reaped 200 ok\n", 0);
}

/// 32 threads doing small I/O syscalls concurrently.
#[test]
fn prog_threads_io() {
    same_as_native("threads_io", "threads 32 ok\n", 0);
}

/// vfork()+execve() and posix_spawn().
#[test]
fn prog_vfork_exec() {
    same_as_native("vfork_exec", "vfork-child\nposix_spawn-child\nvfork ok\n", 0);
}

/// execve() from a non-leader thread.
#[test]
fn prog_exec_thread() {
    same_as_native("exec_thread", "exec-from-thread ok\n", 0);
}

/// exit() of the main thread with 16 threads alive: status 3.
#[test]
fn prog_exit_group() {
    same_as_native("exit_group", "before exit\n", 3);
}

/// Signal semantics: SIGCHLD, SA_RESTART, EINTR, sigqueue, pending and RT signals.
#[test]
fn prog_signals() {
    same_as_native(
        "signals",
        "ok sigchld\nok sa_restart\nok eintr\nok sigqueue\nok raise\nok sigpending\nok rt_queue\n",
        0,
    );
}

/// Zombies, orphans, re-parenting, child subreaper.
#[test]
fn prog_zombie() {
    same_as_native(
        "zombie",
        "zombie state Z\norphan reparented\nsubreaper reaped grandchild status 5\nzombie ok\n",
        0,
    );
}

/// The raw clone3 system call.
#[test]
fn prog_clone3() {
    same_as_native("clone3", "clone3 child\nclone3 status 7\n", 0);
}

// ---------------------------------------------------------------------------------------------
// --trace

/// The name of the call in a trace line: the text before '(' after an optional "[pid] ".
fn call_name(line: &str) -> &str {
    let l = line.trim_start();
    let l = if l.starts_with('[') { l.split_once("] ").map(|x| x.1).unwrap_or(l) } else { l };
    l.split('(').next().unwrap_or("").trim()
}

/// `--trace T -b /etc/hostname:/etc/passwd -- cat /etc/passwd` shows the host name, and T
/// has the rewritten openat of /etc/passwd by fsremap.
#[test]
fn trace_shows_rewritten_open() {
    let d = TempDir::new("trace");
    let t = d.join("trace");
    let o =
        vurs_run(&["--trace", path_str(&t), "-b", "/etc/hostname:/etc/passwd", "--", "cat", "/etc/passwd"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(stdout(&o), std::fs::read_to_string("/etc/hostname").unwrap());
    let tr = std::fs::read_to_string(&t).expect("trace file written");
    assert!(
        tr.lines().any(|l| l.contains("openat(")
            && l.contains("/etc/passwd")
            && l.contains("rewritten")
            && l.contains("fsremap")),
        "no rewritten openat of /etc/passwd in the trace:\n{tr}"
    );
}

/// `--trace -` writes the trace to stderr; with -m fsremap and no mounts every line says passed.
/// The filter's edges: an x32 call number fails with ENOSYS (vurs would not see its
/// paths), a negative number is the kernel's ENOSYS, and neither kills the caller.
#[test]
fn x32_and_negative_syscall_numbers_get_enosys() {
    let script = "import ctypes, os\n\
        libc = ctypes.CDLL(None, use_errno=True)\n\
        for nr in (-1, 0x40000000 | 257, 0x7fffffff):\n\
        \x20   r = libc.syscall(ctypes.c_long(nr), 0, 0, 0)\n\
        \x20   print(r, os.strerror(ctypes.get_errno()))\n";
    let py = python();
    let o = vurs_run(&["-m", "fsremap", "--", &py, "-c", script]);
    let enosys = "-1 Function not implemented\n";
    assert_eq!(stdout(&o), enosys.repeat(3), "{}", show(&o));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
}

#[test]
fn trace_to_stderr_says_passed_without_mounts() {
    let o = vurs_run(&["--trace", "-", "-m", "fsremap", "--", "cat", "/etc/hostname"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(stdout(&o), std::fs::read_to_string("/etc/hostname").unwrap());
    let tr = stderr(&o);
    assert!(
        tr.lines().any(|l| call_name(l) == "openat" && l.contains("/etc/hostname")),
        "no openat of /etc/hostname traced on stderr:\n{tr}"
    );
    let bad: Vec<&str> = tr.lines().filter(|l| !l.contains("passed")).collect();
    assert!(bad.is_empty(), "lines not saying 'passed' with no mounts:\n{}", bad.join("\n"));
}

/// Calls on real file descriptors never stop: dd under -m fsremap traces no read/write.
#[test]
fn trace_no_fd_calls_on_real_fds() {
    let d = TempDir::new("tracedd");
    let t = d.join("trace");
    let o = vurs_run(&[
        "--trace",
        path_str(&t),
        "-m",
        "fsremap",
        "--",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=4k",
        "count=1000",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(stderr(&o).contains("1000+0 records out"), "{}", show(&o));
    let tr = std::fs::read_to_string(&t).expect("trace file written");
    assert!(
        tr.lines().any(|l| call_name(l) == "openat" && l.contains("/dev/zero")),
        "the trace misses dd's openat of /dev/zero:\n{tr}"
    );
    let fdcalls: Vec<&str> = tr.lines().filter(|l| matches!(call_name(l), "read" | "write")).collect();
    assert!(
        fdcalls.is_empty(),
        "{} read/write lines traced, e.g. {:?}",
        fdcalls.len(),
        &fdcalls[..fdcalls.len().min(3)]
    );
}

// ---------------------------------------------------------------------------------------------
// as an unprivileged user (nobody when run as root)

/// echo works for an unprivileged user (and the command really runs unprivileged).
#[test]
fn unprivileged_echo() {
    let u = Unprivileged::new("np-echo");
    let o = run_with_timeout(u.vurs(&["--", "echo", "hello", "world"]), 60);
    assert_eq!((stdout(&o).as_str(), o.status.code()), ("hello world\n", Some(0)), "{}", show(&o));
    let o = run_with_timeout(u.vurs(&["--", "id", "-u"]), 60);
    let uid = stdout(&o).trim().parse::<u32>().expect("id -u");
    assert_ne!(uid, 0, "ran as root:\n{}", show(&o));
}

/// A fork burst works for an unprivileged user, bare and with fsremap loaded.
#[test]
fn unprivileged_fork_burst() {
    let u = Unprivileged::new("np-fork");
    let prog = build_c("fork_burst", u.dir.path());
    std::fs::set_permissions(&prog, PermissionsExt::from_mode(0o755)).unwrap();
    for pre in [&["--"][..], &["-m", "fsremap", "--"][..]] {
        let mut args = pre.to_vec();
        args.push(path_str(&prog));
        let o = run_with_timeout(u.vurs(&args), 90);
        assert_eq!(
            (stdout(&o).as_str(), o.status.code()),
            ("forked 200 reaped 200 ok\n", Some(0)),
            "{pre:?}\n{}",
            show(&o)
        );
    }
}

/// Exit statuses (own code, signal death, 127) for an unprivileged user.
#[test]
fn unprivileged_exit_statuses() {
    let u = Unprivileged::new("np-exit");
    for (args, want) in [
        (&["--", "sh", "-c", "exit 5"][..], 5),
        (&["--", "sh", "-c", "kill -TERM $$"][..], 128 + libc::SIGTERM),
        (&["--", "/no/such/program"][..], 127),
    ] {
        let o = run_with_timeout(u.vurs(args), 60);
        // status_of: a signal death N counts as 128+N here (kill -TERM: vurs dies of SIGTERM).
        assert_eq!(status_of(&o), want, "{args:?}\n{}", show(&o));
    }
}

/// -b of a world-readable file works for an unprivileged user.
#[test]
fn unprivileged_bind() {
    let u = Unprivileged::new("np-bind");
    let src = u.dir.join("src.txt");
    std::fs::write(&src, "bound content\n").unwrap();
    std::fs::set_permissions(&src, PermissionsExt::from_mode(0o644)).unwrap();
    let bind = format!("{}:/etc/passwd", src.display());
    let o = run_with_timeout(u.vurs(&["-b", &bind, "--", "cat", "/etc/passwd"]), 60);
    assert_eq!((stdout(&o).as_str(), o.status.code()), ("bound content\n", Some(0)), "{}", show(&o));
}

// ---------------------------------------------------------------------------------------------
// job control through a pty (tmux)

/// Screen text after the last line where `cmd` was typed at the prompt.
fn after_command<'a>(screen: &'a str, cmd: &str) -> &'a str {
    let marker = format!("> {cmd}\n");
    screen.rfind(&marker).map(|i| &screen[i + marker.len()..]).unwrap_or("")
}

/// Prompt shown and nothing else pending: the last non-empty line is the bare prompt.
fn at_prompt(screen: &str) -> bool {
    screen.lines().rev().find(|l| !l.trim().is_empty()).map(|l| l.trim_end() == "vt>").unwrap_or(false)
}

/// Interactive bash under vurs in a pty: Ctrl-Z stops a job, jobs/bg/fg work, Ctrl-C kills
/// the foreground job ($? = 130), `exit 7` ends vurs with status 7.
#[test]
fn job_control_in_interactive_bash() {
    let d = TempDir::new("tmux");
    let status_file = d.join("status");
    let tmux = Tmux { sock: format!("vurs-test-{}", std::process::id()) };
    let shell = format!(
        "PS1='vt> ' '{}' -- bash --norc -i; echo \"vurs-exit=$?\" > '{}'",
        vurs().display(),
        status_file.display()
    );
    let o = tmux.cmd(&["new-session", "-d", "-s", "t", "-x", "120", "-y", "30", &shell]);
    assert!(o.status.success(), "tmux new-session: {}", show(&o));
    tmux.wait(20, "the first prompt", at_prompt);
    let server = tmux.server_pid();
    // The `sleep 100` process of the session, once it runs.
    let sleeper = || descendants(server).into_iter().find(|&p| cmdline(p) == "sleep 100");
    // Foreground of the terminal: its process group is the terminal's (tpgid == pgrp).
    let stat_fields = |p: i32| -> Vec<String> {
        let s = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        s.rfind(')').map(|i| s[i + 2..].split(' ').map(String::from).collect()).unwrap_or_default()
    };
    let in_foreground = |p: i32| {
        let f = stat_fields(p);
        f.len() > 5 && f[0] != "T" && f[0] != "t" && f[2] == f[5]
    };

    tmux.keys(&["sleep 100", "Enter"]);
    let pid = wait_for(20, "sleep 100 to run", || sleeper().filter(|&p| in_foreground(p)));
    tmux.keys(&["C-z"]);
    tmux.wait(20, "Ctrl-Z to stop the job", |s| s.contains("Stopped") && at_prompt(s));
    // Stopped: 'T', or 't' when a tracer holds the group-stop.
    let st = proc_state(pid);
    assert!(matches!(st, Some('T') | Some('t')), "sleep 100 not stopped after Ctrl-Z: {st:?}");

    tmux.keys(&["jobs", "Enter"]);
    tmux.wait(20, "jobs to list the stopped job", |s| {
        let a = after_command(s, "jobs");
        a.contains("Stopped") && a.contains("sleep 100") && at_prompt(s)
    });

    tmux.keys(&["bg", "Enter"]);
    tmux.wait(20, "bg to resume the job", |s| after_command(s, "bg").contains("sleep 100 &") && at_prompt(s));
    wait_for(20, "sleep 100 to run again after bg", || {
        matches!(proc_state(pid), Some('S') | Some('R')).then_some(())
    });
    tmux.keys(&["jobs", "Enter"]);
    tmux.wait(20, "jobs to list the running job", |s| {
        let a = after_command(s, "jobs");
        a.contains("Running") && a.contains("sleep 100") && at_prompt(s)
    });

    tmux.keys(&["fg", "Enter"]);
    wait_for(20, "sleep 100 in the foreground after fg", || in_foreground(pid).then_some(()));
    tmux.keys(&["C-c"]);
    wait_for(20, "Ctrl-C to kill sleep 100", || is_gone(pid).then_some(()));
    tmux.wait(20, "the prompt after Ctrl-C", at_prompt);
    tmux.keys(&["echo $?", "Enter"]);
    tmux.wait(20, "echo $? after Ctrl-C", |s| {
        after_command(s, "echo $?").lines().next().map(str::trim) == Some("130")
    });

    tmux.keys(&["exit 7", "Enter"]);
    let st = wait_for(20, "vurs to end after exit 7", || std::fs::read_to_string(&status_file).ok());
    assert_eq!(st.trim(), "vurs-exit=7");
}

// ---------------------------------------------------------------------------------------------
// CPython test suites

const PY: &str = "/usr/bin/python3";
const PY_SUITES: &[&str] =
    &["test_os", "test_posix", "test_subprocess", "test_signal", "test_threading", "test_fcntl", "test_pty"];

/// Run one regrtest module (optionally under vurs); true if it passed.
fn py_suite_passes(module: &str, under_vurs: bool, cwd: &Path) -> (bool, String) {
    let mut c = if under_vurs {
        let mut c = Command::new(vurs());
        c.args(["--", PY]);
        c
    } else {
        Command::new(PY)
    };
    c.args(["-m", "test", "--timeout", "600", module]).current_dir(cwd);
    let o = run_with_timeout(c, 900);
    let ok = o.status.code() == Some(0) && stdout(&o).contains("Tests result: SUCCESS");
    (ok, show(&o))
}

/// test_os test_posix test_subprocess test_signal test_threading test_fcntl test_pty: the
/// same suites pass under `vurs --` as natively (about 1.5 min each way).
#[test]
fn cpython_suites_pass_as_natively() {
    let o = run_with_timeout(
        {
            let mut c = Command::new(PY);
            c.args(["-c", "import test.test_os, test.test_pty"]);
            c
        },
        60,
    );
    assert!(
        o.status.success(),
        "{PY} lacks the CPython test suite (Debian: apt-get install libpython3.11-testsuite):\n{}",
        show(&o)
    );
    let d = TempDir::new("cpython");
    let mut native = HashSet::new();
    let mut vursed = HashSet::new();
    let mut report = String::new();
    for m in PY_SUITES {
        let (n, _) = py_suite_passes(m, false, d.path());
        let (v, out) = py_suite_passes(m, true, d.path());
        if n {
            native.insert(*m);
        }
        if v {
            vursed.insert(*m);
        }
        if n != v {
            report += &format!("== {m}: native {n}, under vurs {v}\n{out}\n");
        }
    }
    assert!(!native.is_empty(), "no suite passes natively");
    assert_eq!(vursed, native, "passing suites differ:\n{report}");
}

/// Tracee pointers are untrusted: bad buffers and over-long paths in trapped calls (path
/// calls through a mount, syscall services of uname and time, control-like mount(2)) give
/// the errors the kernel gives natively, and the session goes on.
#[test]
fn bad_pointers_get_the_kernels_errors() {
    let src = TempDir::new("badptr-src");
    std::fs::write(src.join("f"), "hi\n").unwrap();
    let script = repo().join("tests/scripts/bad_pointers.py");
    let py = python();
    let mut native = Command::new(&py);
    native.arg(&script).arg(src.path());
    let native = run_with_timeout(native, 60);
    assert!(native.status.success(), "{}", show(&native));
    let target = format!("/tmp/vurs-badptr-target-{}", std::process::id());
    let bind = format!("{}:{}", path_str(src.path()), target);
    let mut v = Command::new(vurs());
    v.args(["-m", "uname", "-m", "time,rate=2", "-b", &bind, "--", &py]).arg(&script).arg(&target);
    let v = run_with_timeout(v, 60);
    assert_eq!(stdout(&v), stdout(&native), "{}", show(&v));
    assert!(stdout(&v).ends_with("ok hi\n"), "{}", show(&v));
    assert!(!Path::new(&target).exists());
}

/// Processes orphaned between their fork and the tracer's fork event (the creator was
/// SIGKILLed) are adopted: the session ends instead of waiting forever.
#[test]
fn orphans_of_killed_forkers_do_not_hang_the_session() {
    let dir = TempDir::new("forkkill");
    let prog = build_c("fork_kill", dir.path());
    for module in [None, Some("fsremap")] {
        let mut c = Command::new(vurs());
        if let Some(m) = module {
            c.args(["-m", m]);
        }
        c.arg("--").arg(&prog);
        let o = run_with_timeout(c, 90);
        assert_eq!(stdout(&o), "done\n", "{}", show(&o));
        assert_eq!(status_of(&o), 0, "{}", show(&o));
    }
}
