//! Faults are contained (issue 9, "Faults"): a module that returns errors, that crashes
//! (SIGSEGV, stack overflow, SIGFPE, SIGILL, SIGBUS: on the tracer thread and on a worker),
//! whose init fails or crashes, that blocks for seconds while other tracees go on; a tracee
//! SIGKILLed inside a blocking call; signals to vurs with many tracees (SIGTERM, SIGHUP end
//! the session and leave nothing; SIGINT is ignored; a SIGSEGV sent from outside is not
//! mistaken for a module fault). The misbehaving module is tests/modules/faulty.c, the
//! caller tests/progs/yieldcall.c.
//!
//! Needs the workspace built (`cargo build --release --workspace`).
mod common;
use common::*;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn show(o: &Output) -> String {
    format!("status {:?}\n--- stdout\n{}--- stderr\n{}", o.status, stdout(o), stderr(o))
}

/// gcc -shared -fPIC faulty.c, with VURS_F_MAY_BLOCK if `may_block`.
fn faulty(dir: &TempDir, may_block: bool) -> String {
    let out = dir.join(if may_block { "libfaulty_block.so" } else { "libfaulty.so" });
    let mut c = Command::new("gcc");
    c.args(["-shared", "-fPIC", "-O1", "-Wall"])
        .arg(format!("-I{}", repo().join("abi/include").display()))
        .args(may_block.then_some("-DFAULTY_MAY_BLOCK"))
        .arg("-o")
        .arg(&out)
        .arg(repo().join("tests/modules/faulty.c"));
    let o = run_with_timeout(c, 60);
    assert!(o.status.success(), "gcc faulty.c: {}", stderr(&o));
    out.display().to_string()
}

struct Setup {
    dir: TempDir,
    yieldcall: String,
}

fn setup(tag: &str) -> Setup {
    let dir = TempDir::new(tag);
    let yieldcall = build_c("yieldcall", dir.path()).display().to_string();
    Setup { dir, yieldcall }
}

/// `vurs -m SPEC -- sh -c SCRIPT` (Y in the script is the yieldcall program).
fn under_module(s: &Setup, spec: &str, script: &str) -> Output {
    under_module_with(s, &[], spec, script)
}

/// `under_module` with vurs options `opts` first.
fn under_module_with(s: &Setup, opts: &[&str], spec: &str, script: &str) -> Output {
    let script = script.replace('Y', &s.yieldcall);
    let mut c = Command::new(vurs());
    c.args(opts).args(["-m", spec, "--", "sh", "-c", &script]);
    run_with_timeout(c, 60)
}

#[test]
fn module_error_is_the_callers_errno() {
    let s = setup("f-error");
    let so = faulty(&s.dir, false);
    let native = Command::new(&s.yieldcall).args(["0", "1"]).output().unwrap();
    assert_eq!(stdout(&native), "r=0 e=0\n");
    let o = under_module(&s, &format!("{so},mode=error,errno={}", libc::EXDEV), "Y 0 3; Y 0 1; echo alive");
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let want = format!("r=-1 e={0}\nr=-1 e={0}\nalive\n", libc::EXDEV);
    assert_eq!(stdout(&o), want, "{}", show(&o));
    assert_eq!(stderr(&o), "", "{}", show(&o));
}

/// A crash in the module's handler costs that call EIO and one logged line; the module
/// is then disabled (later calls: EIO, no further line) and the session goes on.
fn crash_is_contained(may_block: bool) {
    let s = setup(if may_block { "f-crash-w" } else { "f-crash" });
    let so = faulty(&s.dir, may_block);
    let mut failed = Vec::new();
    for (mode, sig) in [
        ("segv", "SIGSEGV"),
        ("overflow", "SIGSEGV"),
        ("fpe", "SIGFPE"),
        ("ill", "SIGILL"),
        ("bus", "SIGBUS"),
    ] {
        let o = under_module(&s, &format!("{so},mode={mode}"), "Y 0 1; Y 0 5; echo alive; exit 7");
        let eio = format!("r=-1 e={}\n", libc::EIO);
        let err = stderr(&o);
        let lines: Vec<&str> = err.lines().collect();
        let good = o.status.code() == Some(7)
            && stdout(&o) == format!("{eio}{eio}alive\n")
            && lines.len() == 1
            && lines[0].starts_with("vurs: module faulty: ")
            && lines[0].contains(&format!("{sig} in syscall"));
        if !good {
            failed.push(format!("mode={mode}: {}", show(&o)));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn module_crash_on_tracer_thread_is_contained() {
    crash_is_contained(false);
}

#[test]
fn module_crash_on_worker_thread_is_contained() {
    crash_is_contained(true);
}

fn assert_refused(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(125), "{}", show(o));
    assert!(!stdout(o).contains("RAN"), "{}", show(o));
    let err = stderr(o);
    assert_eq!(err.lines().count(), 1, "want one line: {}", show(o));
    assert!(err.starts_with("vurs: ") && err.contains(needle), "{}", show(o));
}

#[test]
fn module_init_fails_or_crashes_one_line_125() {
    let s = setup("f-init");
    let so = faulty(&s.dir, false);
    let o = under_module(&s, &format!("{so},mode=initfail"), "echo RAN");
    assert_refused(&o, "refusing to start (mode=initfail)");
    let o = under_module(&s, &format!("{so},mode=initsegv"), "echo RAN");
    assert_refused(&o, "SIGSEGV in init");
}

/// A call blocked for seconds inside a VURS_F_MAY_BLOCK module does not hold up the other
/// tracees: 200 calls of another process are served meanwhile.
#[test]
fn blocking_module_lets_other_tracees_go_on() {
    let s = setup("f-block");
    let so = faulty(&s.dir, true);
    let flag = s.dir.join("in-module");
    let spec = format!("{so},mode=ok,block_ms=5000,flag={}", flag.display());
    let script = format!(
        "(Y 1 1; echo block-done) & \
         while [ ! -e '{}' ]; do sleep 0.01; done; \
         Y 0 200; echo quick-done; wait; echo end",
        flag.display()
    );
    let o = under_module(&s, &spec, &script);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(stdout(&o), "r=4242 e=0\nquick-done\nr=4242 e=0\nblock-done\nend\n", "{}", show(&o));
}

/// A module that blocks without setting VURS_F_MAY_BLOCK holds up the tracer once (its
/// syscall service is decided there, under both engines): after one call of 100 ms vurs
/// treats it as blocking (said in the trace, not on stderr), so a later call blocked for
/// seconds lets 200 calls of another process through, as with the flag.
#[test]
fn undeclared_blocking_module_is_seen_and_moved_to_workers() {
    let s = setup("f-turns-slow");
    let so = faulty(&s.dir, false);
    let (flag, trace) = (s.dir.join("in-module"), s.dir.join("trace"));
    let spec = format!("{so},mode=ok,block_ms=5000,flag={}", flag.display());
    let script = format!(
        "Y 2 1; (Y 1 1; echo block-done) & \
         while [ ! -e '{}' ]; do sleep 0.01; done; \
         Y 0 200; echo quick-done; wait; echo end",
        flag.display()
    );
    let o = under_module_with(&s, &["--trace", &trace.display().to_string()], &spec, &script);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(
        stdout(&o),
        "r=4242 e=0\nr=4242 e=0\nquick-done\nr=4242 e=0\nblock-done\nend\n",
        "{}",
        show(&o)
    );
    assert_eq!(stderr(&o), "", "{}", show(&o));
    let trace = std::fs::read_to_string(&trace).unwrap();
    let said: Vec<&str> = trace.lines().filter(|l| l.contains("does not set VURS_F_MAY_BLOCK")).collect();
    assert_eq!(said.len(), 1, "{trace}");
    assert!(said[0].starts_with("vurs: module faulty: syscall took "), "{trace}");
}

/// A path call held inside a module that blocks without saying so (no VURS_F_MAY_BLOCK)
/// does not hold up the other tracees on the notification engine: the watchdog hands
/// receiving to another thread (notify/relay.rs). Here the held call waits until another
/// tracee, which needs the supervisor for its own calls in the same mount, releases it:
/// without the hand-over the two would wait for each other until the module gives up. The
/// session is idle for 1.5 s first, so the watchdog dozes and the held call must wake it.
/// (The ptrace engine decides on the tracer thread, which cannot be handed on: there the
/// session waits for the call, docs/architecture.md.)
#[test]
fn undeclared_blocking_module_lets_other_tracees_go_on() {
    let s = setup("f-undeclared");
    let hold = s.dir.join("hold");
    let script = format!(
        "cat /m/hello.txt >/dev/null; sleep 1.5; (stat -c %s /m/hold; echo held-done) & \
         while [ ! -e '{h}.in' ]; do sleep 0.01; done; \
         cat /m/hello.txt; : > '{h}.go'; wait; echo end",
        h = hold.display()
    );
    let o = under_undeclared_memfs(&s, &hold, &script);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(stdout(&o), "hello from memfs\n17\nheld-done\nend\n", "{}", show(&o));
}

/// The end of a session waits for a replaced receiving thread still inside its call: until
/// it has returned, the session holds its modules, and their fini would not run. Here the
/// held call's caller is killed and the session ends while the module is still in the call
/// (300 ms after its release); fini must run all the same.
#[test]
fn session_end_waits_for_a_handed_over_call_and_runs_fini() {
    let s = setup("f-handed-fini");
    let hold = s.dir.join("hold");
    let script = format!(
        "stat /m/hold >/dev/null 2>&1 & \
         while [ ! -e '{h}.in' ]; do sleep 0.01; done; \
         cat /m/hello.txt; : > '{h}.go'; kill -9 $!; echo end",
        h = hold.display()
    );
    let o = under_undeclared_memfs(&s, &hold, &script);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(stdout(&o), "hello from memfs\nend\n", "{}", show(&o));
    assert!(s.dir.join("hold.fini").exists(), "memfs's fini did not run\n{}", show(&o));
}

/// `vurs` with memfs built without VURS_F_MAY_BLOCK mounted on /m, MEMFS_HOLD=`hold`, on
/// the notification engine: `sh -c SCRIPT`.
fn under_undeclared_memfs(s: &Setup, hold: &Path, script: &str) -> Output {
    let so =
        build_so(&s.dir, "memfs_undeclared", &repo().join("tests/modules/memfs.c"), &["MEMFS_UNDECLARED"]);
    let mut c = Command::new(vurs());
    c.args(["-m", &so.display().to_string(), "--mount", "type=memfs,source=none,target=/m"])
        .args(["--", "sh", "-c", script])
        .env("VURS_ENGINE", "notify")
        .env("MEMFS_HOLD", hold);
    run_with_timeout(c, 120)
}

// ------------------------------------------------------------------ processes and signals

/// SIGKILLs the given pids on drop, so a failing test leaves nothing behind.
struct KillOnDrop(Vec<i32>);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for &p in &self.0 {
            // SAFETY: plain kill(2) of pids this test started.
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
    }
}

fn spawn_vurs(args: &[&str]) -> Child {
    Command::new(vurs())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vurs")
}

fn read_pid(p: &Path) -> Option<i32> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// A tracee SIGKILLed while a worker is deciding its call (the module blocks): the
/// worker's late answer for a dead thread is dropped, its parent sees 137, the session
/// goes on.
#[test]
fn tracee_killed_inside_a_blocking_call() {
    let s = setup("f-kill");
    let so = faulty(&s.dir, true);
    let (flag, pidfile) = (s.dir.join("in-module"), s.dir.join("pid"));
    let spec = format!("{so},mode=ok,block_ms=3000,flag={}", flag.display());
    let script = format!(
        "{y} 1 1 '{p}' & wait $!; echo status=$?; {y} 0 1; echo alive",
        y = s.yieldcall,
        p = pidfile.display()
    );
    let mut child = spawn_vurs(&["-m", &spec, "--", "sh", "-c", &script]);
    let _guard = KillOnDrop(vec![child.id() as i32]);
    let pid = wait_for(20, "the pid file", || read_pid(&pidfile));
    wait_for(20, "the call to be inside the module", || flag.exists().then_some(()));
    // SAFETY: kill(2) of the tracee this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let st = wait_child(&mut child, 30, "vurs to end");
    let o = child.wait_with_output().unwrap();
    assert_eq!(st.code(), Some(0), "{}", show(&o));
    assert_eq!(stdout(&o), "status=137\nr=4242 e=0\nalive\n", "{}", show(&o));
}

const SLEEPERS: usize = 40;

/// Start a session with SLEEPERS `sleep 300` and two calls blocked inside the module;
/// returns vurs and every process of the session.
fn busy_session(s: &Setup, so: &str) -> (Child, Vec<i32>) {
    let flag = s.dir.join("in-module");
    let spec = format!("{so},mode=ok,block_ms=300000,flag={}", flag.display());
    let script =
        format!("for i in $(seq {SLEEPERS}); do sleep 300 & done; {y} 1 1 & {y} 1 1 & wait", y = s.yieldcall);
    let mut child = spawn_vurs(&["-m", &spec, "--", "sh", "-c", &script]);
    let vp = child.id() as i32;
    let guard = KillOnDrop(vec![vp]);
    let procs = wait_for(30, "the session's processes", || {
        let ds = descendants(vp);
        let sleeps = ds.iter().filter(|&&p| cmdline(p) == "sleep 300").count();
        (sleeps == SLEEPERS && flag.exists() && ds.len() >= SLEEPERS + 3).then_some(ds)
    });
    std::mem::forget(guard);
    assert!(child.try_wait().unwrap().is_none());
    (child, procs)
}

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " ").trim_end().to_string())
        .unwrap_or_default()
}

fn assert_all_gone(procs: &[i32], what: &str) {
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let left: Vec<String> =
            procs.iter().filter(|&&p| !is_gone(p)).map(|&p| format!("{p} ({})", cmdline(p))).collect();
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < end, "{what}: processes left behind: {left:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM or SIGHUP to vurs with many tracees, two of them inside a blocking module call:
/// vurs dies of the signal and no process of the session is left.
fn fatal_signal_ends_everything(sig: i32) {
    let s = setup("f-sig");
    let so = faulty(&s.dir, true);
    let (mut child, procs) = busy_session(&s, &so);
    let _guard = KillOnDrop(procs.iter().copied().chain([child.id() as i32]).collect());
    // SAFETY: kill(2) of the vurs this test started.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
    let st = wait_child(&mut child, 20, "vurs to end after the signal");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(st.signal(), Some(sig), "vurs status {st:?}");
    assert_all_gone(&procs, &format!("signal {sig}"));
}

#[test]
fn sigterm_with_many_tracees_leaves_nothing() {
    fatal_signal_ends_everything(libc::SIGTERM);
}

#[test]
fn sighup_with_many_tracees_leaves_nothing() {
    fatal_signal_ends_everything(libc::SIGHUP);
}

/// A SIGSEGV sent to vurs from outside (kill, not a fault of a module's code) is not
/// swallowed by the fault guard: vurs dies of it, and the session with it.
#[test]
fn sigsegv_sent_to_vurs_is_not_contained() {
    fatal_signal_ends_everything(libc::SIGSEGV);
}

/// SIGINT sent to vurs alone (kill, not the terminal): vurs ignores it by design (Ctrl-C
/// is for COMMAND), the session goes on and ends normally.
#[test]
fn sigint_to_vurs_alone_is_ignored() {
    let s = setup("f-int");
    let flag = s.dir.join("started");
    let script = format!(
        "for i in $(seq 20); do sleep 2 & done; touch '{}'; wait; {} 0 1; echo done",
        flag.display(),
        s.yieldcall
    );
    let so = faulty(&s.dir, false);
    let mut child = spawn_vurs(&["-m", &so, "--", "sh", "-c", &script]);
    let _guard = KillOnDrop(vec![child.id() as i32]);
    wait_for(20, "the sleepers", || flag.exists().then_some(()));
    for _ in 0..3 {
        // SAFETY: kill(2) of the vurs this test started.
        assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
        std::thread::sleep(Duration::from_millis(100));
    }
    let st = wait_child(&mut child, 30, "the session to end");
    let o = child.wait_with_output().unwrap();
    assert_eq!(st.code(), Some(0), "{}", show(&o));
    assert_eq!(stdout(&o), "r=4242 e=0\ndone\n", "{}", show(&o));
}

// ------------------------------------------------------------------ bad module files

/// Bad module files, each with the words its error must contain: a text file, a
/// truncated shared object, a wrong ABI major, a descriptor with a too-small size.
fn bad_modules(d: &TempDir) -> Vec<(String, Vec<&'static str>)> {
    let text = d.join("libtext.so");
    std::fs::write(&text, "not a shared object\n".repeat(50)).unwrap();
    // Cut where dlopen would still map it (the section headers are at the end), and
    // within the first page (dlopen itself refuses).
    let whole = std::fs::read(module_dir().join("libfsremap.so")).unwrap();
    let (cut, short) = (d.join("libcut.so"), d.join("libshort.so"));
    std::fs::write(&cut, &whole[..whole.len() * 2 / 3]).unwrap();
    std::fs::write(&short, &whole[..3000]).unwrap();
    let major = build_so(d, "major2", &repo().join("tests/modules/tiny.c"), &["TINY_MAJOR=2"]);
    let small = build_so(d, "smalldesc", &repo().join("tests/modules/smalldesc.c"), &[]);
    vec![
        (text.display().to_string(), vec!["ELF"]),
        (cut.display().to_string(), vec!["truncated file"]),
        (short.display().to_string(), vec!["truncated file"]),
        (major.display().to_string(), vec!["ABI 2.", "not supported"]),
        (small.display().to_string(), vec!["descriptor of 16 bytes", "too small"]),
    ]
}

/// Each bad file at start: one `vurs: ` line naming the file, exit 125, COMMAND not run.
#[test]
fn bad_module_files_at_start() {
    let d = TempDir::new("f-badmod");
    let mut failed = Vec::new();
    for (so, needles) in bad_modules(&d) {
        let mut c = Command::new(vurs());
        c.args(["-m", &so, "--", "echo", "RAN"]);
        let o = run_with_timeout(c, 60);
        let err = stderr(&o);
        let good = o.status.code() == Some(125)
            && !stdout(&o).contains("RAN")
            && err.lines().count() == 1
            && err.starts_with("vurs: ")
            && err.contains(&so)
            && needles.iter().all(|n| err.contains(n));
        if !good {
            failed.push(format!("{so}: {}", show(&o)));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// Each bad file given to `vurs insmod` in a running session: an error line and a failure
/// status from insmod, and the session goes on (its module still answers).
#[test]
fn bad_module_files_at_insmod() {
    let s = setup("f-badins");
    let so = faulty(&s.dir, false);
    let bad = bad_modules(&s.dir);
    let v = vurs().display().to_string();
    let mut script = String::new();
    for (file, _) in &bad {
        script += &format!("{v} insmod '{file}' 2>&1; echo rc=$?; ");
    }
    script += "Y 0 1; echo alive";
    let o = under_module(&s, &format!("{so},mode=ok"), &script);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), bad.len() * 2 + 2, "{}", show(&o));
    for (i, (file, needles)) in bad.iter().enumerate() {
        let (err, rc) = (lines[2 * i], lines[2 * i + 1]);
        assert!(err.starts_with("vurs: ") && err.contains(file.as_str()), "{file}: {}", show(&o));
        assert!(needles.iter().all(|n| err.contains(n)), "{file}: {}", show(&o));
        assert!(rc != "rc=0" && rc.starts_with("rc="), "{file}: {}", show(&o));
    }
    assert_eq!(&lines[bad.len() * 2..], ["r=4242 e=0", "alive"], "{}", show(&o));
}

// ------------------------------------------------------------------ io_uring

/// io_uring_setup answers ENOSYS while a path module is loaded (vurs cannot see the paths
/// of ring operations), and whatever the kernel answers natively otherwise.
#[test]
fn io_uring_refused_while_paths_are_remapped() {
    let d = TempDir::new("f-uring");
    let prog = build_c("uring", d.path());
    let prog = prog.to_str().unwrap();
    let native = run_with_timeout(Command::new(prog), 30);
    let native = stdout(&native);
    assert!(native == "ok\n" || native.starts_with("errno="), "native: {native}");
    std::fs::create_dir_all(d.join("src")).unwrap();
    std::fs::create_dir_all(d.join("tgt")).unwrap();
    let bind = format!("{}:{}", d.join("src").display(), d.join("tgt").display());
    let o = vurs_run(&["-b", &bind, "--", prog]);
    assert_eq!(stdout(&o), format!("errno={}\n", libc::ENOSYS), "under -b (native: {native}): {}", show(&o));
    let o = vurs_run(&["--", prog]);
    assert_eq!(stdout(&o), native, "without a path module: {}", show(&o));
    let o = vurs_run(&["-m", "time", "--", prog]);
    assert_eq!(stdout(&o), native, "with a syscall module only: {}", show(&o));
}

/// A raw 32-bit call (int $0x80) would reach the kernel with ia32 numbers the filter does
/// not know: the filter kills the process (SIGSYS) instead, whatever the modules.
#[test]
fn ia32_call_kills_the_process() {
    let d = TempDir::new("f-int80");
    let prog = build_c("int80", d.path());
    let prog = prog.to_str().unwrap();
    let native = run_with_timeout(Command::new(prog), 30);
    assert!(stdout(&native).starts_with("ia32 "), "native: {}", show(&native));
    eprintln!("natively: {}", stdout(&native).trim());
    for pre in [&["--"][..], &["-m", "fsremap", "--"][..]] {
        let mut args = pre.to_vec();
        args.push(prog);
        let o = vurs_run(&args);
        // vurs ends the way COMMAND ended: killed by SIGSYS.
        let sig = std::os::unix::process::ExitStatusExt::signal(&o.status);
        assert_eq!(sig, Some(libc::SIGSYS), "{pre:?}: {}", show(&o));
        assert_eq!(stdout(&o), "", "{pre:?}: {}", show(&o));
    }
}
