//! The command line as a user meets it: signals like a wrapper (Ctrl-C on a loop of vurs runs),
//! help, man page and completions, one-line errors, vurs inside a session, `vurs status`,
//! `-c/--summary`, the virtual mounts in /proc/self/mountinfo, proot's command line, install.
mod common;
use common::*;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn show(o: &Output) -> String {
    format!("status {:?}\n--- stdout\n{}--- stderr\n{}", o.status, stdout(o), stderr(o))
}

/// vurs's own error: exactly one line on stderr, starting with "vurs: ", and status 125.
fn assert_usage_error(o: &Output, what: &str) {
    let e = stderr(o);
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 1, "{what}: want one error line:\n{}", show(o));
    assert!(lines[0].starts_with("vurs: "), "{what}: error line must start with 'vurs: ':\n{}", show(o));
    assert!(!lines[0].contains("os error"), "{what}: errno text repeated:\n{}", show(o));
    assert_eq!(o.status.code(), Some(125), "{what}:\n{}", show(o));
}

fn sh(script: &str) -> Output {
    let mut c = Command::new("bash");
    c.args(["-c", script]);
    run_with_timeout(c, 60)
}

// ---------------------------------------------------------------------------------------------
// signals

fn descendants(root: i32) -> Vec<i32> {
    let mut out = vec![];
    let mut todo = vec![root];
    while let Some(p) = todo.pop() {
        let kids = std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default();
        for k in kids.split_whitespace().filter_map(|k| k.parse().ok()) {
            out.push(k);
            todo.push(k);
        }
    }
    out
}

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " ").trim().to_string())
        .unwrap_or_default()
}

/// Ctrl-C on `for i in 1 2 3; do PREFIX sleep 30; done` in an interactive bash: how many
/// `sleep 30` were started, and what the loop printed after the interrupt.
fn interrupt_loop(prefix: &str, tag: &str) -> (usize, String) {
    let tmux = Tmux::new(tag);
    let o = tmux.cmd(&["new-session", "-d", "-s", "t", "-x", "150", "-y", "30", "PS1='lt> ' bash --norc -i"]);
    assert!(o.status.success(), "tmux new-session: {}", show(&o));
    tmux.wait(20, "the prompt", |s| s.contains("lt>"));
    let server = tmux.server_pid();
    let sleepers =
        || -> Vec<i32> { descendants(server).into_iter().filter(|&p| cmdline(p) == "sleep 30").collect() };
    tmux.keys(&[
        &format!("for i in 1 2 3; do {prefix} sleep 30; echo after-$i; done; echo loop-end"),
        "Enter",
    ]);
    let end = Instant::now() + Duration::from_secs(20);
    let first = loop {
        if let Some(&p) = sleepers().first() {
            break p;
        }
        assert!(Instant::now() < end, "no sleep 30 started; screen:\n{}", tmux.screen());
        std::thread::sleep(Duration::from_millis(50));
    };
    // Give the session time to be fully up (vurs waiting in the foreground process group).
    std::thread::sleep(Duration::from_millis(300));
    tmux.keys(&["C-c"]);
    tmux.wait(20, "the prompt after Ctrl-C", |s| s.matches("lt>").count() >= 2);
    // Long enough for a next iteration to start, were the loop going on.
    std::thread::sleep(Duration::from_millis(1500));
    let mut started = 1;
    for p in sleepers() {
        if p != first {
            started += 1;
        }
    }
    let screen = tmux.screen();
    let after = screen.split("loop-end").nth(1).unwrap_or("").to_string();
    (started, after)
}

/// A shell loop of vurs runs stops at the first Ctrl-C, as a loop of the plain command does
/// (vurs dies of the SIGINT that killed its command, so the shell sees the interrupt).
#[test]
fn ctrl_c_stops_a_shell_loop_of_vurs_runs() {
    let native = interrupt_loop("", "native");
    assert_eq!(native.0, 1, "native loop went on after Ctrl-C: {native:?}");
    assert!(!native.1.contains("after-"), "native loop went on: {native:?}");
    let vurs = interrupt_loop(&format!("'{}' --", vurs().display()), "vurs");
    assert_eq!(vurs, native, "(sleeps started, output after Ctrl-C) under vurs vs natively");
}

/// SIGINT/SIGQUIT/SIGTERM of COMMAND end vurs the same way, seen by a script with `$?` and
/// by `wait`: a non-interactive bash reports 128+N for a signal death either way, so the
/// check here is on the raw wait status.
#[test]
fn signal_death_is_passed_on_and_exit_codes_stay_codes() {
    for sig in ["INT", "QUIT", "TERM", "HUP", "PIPE"] {
        let o = vurs_run(&["--", "sh", "-c", &format!("kill -{sig} $$")]);
        let native = Command::new("sh").args(["-c", &format!("kill -{sig} $$")]).output().unwrap();
        assert_eq!(o.status.signal(), native.status.signal(), "kill -{sig}:\n{}", show(&o));
        assert!(!o.status.core_dumped(), "vurs dumped core");
    }
    for code in [0, 1, 130, 137, 255] {
        let o = vurs_run(&["--", "sh", "-c", &format!("exit {code}")]);
        assert_eq!((o.status.code(), o.status.signal()), (Some(code), None), "exit {code}");
    }
}

/// COMMAND inherits the signal dispositions and mask vurs was started with, as it would
/// natively: a background job of a script (SIGINT ignored) survives `kill -INT $$`, and a
/// blocked signal stays blocked.
#[test]
fn inherited_ignored_and_blocked_signals_reach_command() {
    use std::os::unix::process::CommandExt;
    let run = |prefix: &[String]| {
        let script = "kill -INT $$; kill -PIPE $$; echo survived; grep SigBlk /proc/self/status";
        let mut argv: Vec<String> = prefix.to_vec();
        argv.extend(["sh", "-c", script].map(String::from));
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            c.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_IGN);
                libc::signal(libc::SIGPIPE, libc::SIG_IGN);
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGUSR2);
                libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
                Ok(())
            });
        }
        let o = c.output().unwrap();
        (o.status.code(), o.status.signal(), String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let native = run(&[]);
    assert_eq!(native.0, Some(0), "native: {native:?}");
    assert!(native.2.contains("survived"), "native: {native:?}");
    let under = run(&[vurs().display().to_string(), "--".into()]);
    assert_eq!(under, native, "(code, signal, output) under vurs vs natively");
}

/// SIGTERM or SIGHUP to vurs: vurs dies of it, its tracees are gone, and so are its private
/// files (the synthesized mount lists), which a session keeps in $TMPDIR/vurs-PID.
#[test]
fn sigterm_and_sighup_end_the_session_cleanly() {
    for sig in [libc::SIGTERM, libc::SIGHUP] {
        let d = TempDir::new("term");
        let ready = d.join("ready");
        let script =
            format!("cat /proc/self/mountinfo > /dev/null; echo $$ > '{}'; exec sleep 300", ready.display());
        let mut child = Command::new(vurs())
            .env("TMPDIR", d.path())
            .args(["-b", "/etc/hostname:/etc/motd", "--", "sh", "-c", &script])
            .spawn()
            .unwrap();
        let vp = child.id() as i32;
        let end = Instant::now() + Duration::from_secs(20);
        let cmd: i32 = loop {
            if let Some(p) = std::fs::read_to_string(&ready).ok().and_then(|s| s.trim().parse().ok()) {
                break p;
            }
            assert!(Instant::now() < end, "COMMAND did not start");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(d.join(&format!("vurs-{vp}")).exists(), "no private directory made");
        // SAFETY: kill(2) of the vurs we started.
        assert_eq!(unsafe { libc::kill(vp, sig) }, 0);
        let st = child.wait().unwrap();
        assert_eq!(st.signal(), Some(sig), "vurs status {st:?}");
        assert!(!d.join(&format!("vurs-{vp}")).exists(), "private directory left behind");
        let end = Instant::now() + Duration::from_secs(5);
        while Path::new(&format!("/proc/{cmd}")).exists() {
            assert!(Instant::now() < end, "COMMAND {cmd} left running");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// help, man page, completions, errors

const SUBCOMMANDS: &[&str] =
    &["mount", "umount", "insmod", "rmmod", "lsmod", "mounts", "status", "completions"];

/// Every --help (top level and each subcommand) gives examples, describes every argument
/// it lists, and shows no empty default.
#[test]
fn every_help_describes_its_arguments_with_an_example() {
    let mut pages = vec![("vurs".to_string(), vurs_run(&["--help"]))];
    for sub in SUBCOMMANDS {
        pages.push((format!("vurs {sub}"), vurs_run(&[sub, "--help"])));
    }
    pages.push(("vurs proot".into(), vurs_run(&["proot", "--help"])));
    for (name, o) in pages {
        let text = stdout(&o);
        assert_eq!(o.status.code(), Some(0), "{name} --help:\n{}", show(&o));
        assert!(text.contains("Example"), "{name} --help has no example:\n{text}");
        assert!(!text.contains("[default: \"\"]"), "{name} --help shows an empty default:\n{text}");
        // In the Arguments:/Options: sections, every entry has a description: after its
        // name on the same line, or on the next, more indented line (long help).
        let lines: Vec<&str> = text.lines().collect();
        let mut section = "";
        for (i, line) in lines.iter().enumerate() {
            if !line.starts_with(' ') {
                section = line;
                continue;
            }
            let l = line.trim();
            if (section == "Arguments:" || section == "Options:")
                && line.starts_with("  ")
                && l.starts_with(['-', '<', '['])
            {
                let same_line = l.contains("  ") && !l.rsplit("  ").next().unwrap_or("").trim().is_empty();
                let indent = line.len() - line.trim_start().len();
                let next = lines.get(i + 1).copied().unwrap_or("");
                let next_line = next.len() - next.trim_start().len() > indent && !next.trim().is_empty();
                assert!(same_line || next_line, "{name} --help: '{l}' has no description:\n{text}");
            }
        }
    }
}

/// Missing arguments are named, in one line, exit 125 (not clap's empty list).
#[test]
fn missing_arguments_are_named() {
    for (args, want) in [
        (&["mount", "/tmp", "/mnt"][..], "--types <TYPE>"),
        (&["mount", "-t", "fsremap", "/tmp"][..], "<TARGET>"),
        (&["umount"][..], "<TARGET>"),
        (&["insmod"][..], "<NAME"),
        (&["rmmod"][..], "<NAME>"),
        (&["completions"][..], "<SHELL>"),
    ] {
        let o = vurs_run(args);
        assert_usage_error(&o, &format!("{args:?}"));
        assert!(stderr(&o).contains(want), "{args:?} does not name {want}:\n{}", show(&o));
        assert!(stderr(&o).contains(&format!("vurs {} --help", args[0])), "{args:?}:\n{}", show(&o));
    }
}

/// Malformed start mounts: one line, 125, saying what is wrong.
#[test]
fn malformed_mount_specs_are_refused_in_one_line() {
    for (args, want) in [
        (&["--mount", "type=fsremap,source=/tmp", "--", "true"][..], "missing target="),
        (&["--mount", "type=fsremap,source=/tmp,target=", "--", "true"][..], "empty value"),
        (&["--mount", "type=fsremap,source=/tmp,target=/a,target=/b", "--", "true"][..], "twice"),
        (&["--mount", "type=fsremap,source=/tmp,target=/a/../etc", "--", "true"][..], "'..'"),
        (&["-b", "/tmp", "--", "true"][..], "SRC:DEST"),
        (&["-b", ":/x", "--", "true"][..], "SRC:DEST"),
        (&["-b", "/tmp:../x", "--", "true"][..], "'..'"),
        (&["-b", "/no/such/dir/xyz:/x", "--", "true"][..], "No such file"),
    ] {
        let o = vurs_run(args);
        assert_usage_error(&o, &format!("{args:?}"));
        assert!(stderr(&o).contains(want), "{args:?} should say {want}:\n{}", show(&o));
    }
}

/// A relative -b target is taken from vurs's current directory (as mount(8) takes a relative
/// mount point).
#[test]
fn relative_bind_target_is_from_the_current_directory() {
    let d = TempDir::new("relbind");
    std::fs::write(d.join("src"), "bound\n").unwrap();
    std::fs::write(d.join("dst"), "original\n").unwrap();
    let mut c = Command::new(vurs());
    c.current_dir(d.path()).args(["-b", "src:dst", "--", "cat", &d.join("dst").to_string_lossy()]);
    let o = run_with_timeout(c, 60);
    assert_eq!((stdout(&o).as_str(), o.status.code()), ("bound\n", Some(0)), "{}", show(&o));
}

/// `vurs man` is a roff page vurs(1) naming every option and subcommand; `man -l` renders it.
#[test]
fn man_page_is_generated_from_the_definitions() {
    let o = vurs_run(&["man"]);
    let page = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(page.starts_with(".ie") || page.contains(".TH vurs 1"), "not a man page:\n{page}");
    for word in ["\\-\\-module", "\\-\\-mount", "\\-\\-bind", "\\-\\-trace", "\\-\\-summary"] {
        assert!(page.contains(word), "man page lacks {word}");
    }
    for sub in SUBCOMMANDS {
        let section = format!(".SH \"VURS {}\"", sub.to_uppercase());
        assert!(page.contains(&section), "man page lacks a section for {sub}");
    }
}

/// `vurs completions bash` completes subcommands and options in a real bash; zsh and fish
/// scripts are produced (and parsed, where those shells are installed).
#[test]
fn completions_for_bash_zsh_fish() {
    let d = TempDir::new("compl");
    let bash = d.join("vurs.bash");
    let o = vurs_run(&["completions", "bash"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    std::fs::write(&bash, &o.stdout).unwrap();
    // Ask bash's completion function what `vurs mo<TAB>` and `vurs --mo<TAB>` give.
    let script = format!(
        "source '{}'; COMP_WORDS=(vurs mo); COMP_CWORD=1; COMP_LINE='vurs mo'; COMP_POINT=7; _vurs vurs mo vurs; \
         echo \"${{COMPREPLY[*]}}\"; COMP_WORDS=(vurs --mo); COMP_LINE='vurs --mo'; COMP_POINT=9; _vurs vurs --mo vurs; \
         echo \"${{COMPREPLY[*]}}\"",
        bash.display()
    );
    let o = sh(&script);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{}", show(&o));
    let subs: Vec<&str> = lines[0].split_whitespace().collect();
    assert!(subs.contains(&"mount") && subs.contains(&"mounts"), "vurs mo<TAB>: {lines:?}");
    let opts: Vec<&str> = lines[1].split_whitespace().collect();
    assert!(opts.contains(&"--module") && opts.contains(&"--mount"), "vurs --mo<TAB>: {lines:?}");
    for (shell, check) in [("zsh", &["zsh", "-n"][..]), ("fish", &["fish", "--no-execute"][..])] {
        let o = vurs_run(&["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
        assert!(stdout(&o).contains("mount"), "{shell} completions:\n{}", show(&o));
        let file = d.join(&format!("vurs.{shell}"));
        std::fs::write(&file, &o.stdout).unwrap();
        if Command::new(check[0]).arg("--version").output().is_ok() {
            let o = Command::new(check[0]).args(&check[1..]).arg(&file).output().unwrap();
            assert!(o.status.success(), "{shell} rejects its completions: {}", show(&o));
        }
    }
    let o = vurs_run(&["completions", "tcsh"]);
    assert_usage_error(&o, "completions tcsh");
}

// ---------------------------------------------------------------------------------------------
// vurs inside a session, vurs status

/// Run `script` in bash inside `vurs -m fsremap -- bash` (the README's quick-start shell),
/// with the vurs under test first on PATH.
fn in_session(script: &str) -> Output {
    let path = format!("{}:{}", module_dir().display(), std::env::var("PATH").unwrap_or_default());
    let mut c = Command::new(vurs());
    c.env("PATH", path).args(["-m", "fsremap", "--", "bash", "-c", script]);
    run_with_timeout(c, 60)
}

/// The README's examples typed into the quick-start shell: -b runs COMMAND with the mount
/// in the session (gone afterwards); -m of a module the session lacks is refused in one line;
/// statuses and signals come through.
#[test]
fn readme_examples_inside_a_session() {
    let hostname = std::fs::read_to_string("/etc/hostname").unwrap();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let o = in_session("vurs -b /etc/hostname:/etc/passwd -- cat /etc/passwd");
    assert_eq!((stdout(&o), o.status.code()), (hostname.clone(), Some(0)), "{}", show(&o));
    let o = in_session("vurs -b /etc/hostname:/etc/passwd -- true; cat /etc/passwd; vurs mounts");
    assert_eq!((stdout(&o), o.status.code()), (passwd, Some(0)), "mount left behind:\n{}", show(&o));
    let o = in_session("vurs -m uname,nodename=box -- hostname");
    assert_usage_error(&o, "-m uname inside a session");
    assert!(stderr(&o).contains("cannot be traced again"), "{}", show(&o));
    let o = in_session("vurs --trace - -- true");
    assert_usage_error(&o, "--trace inside a session");
    // What a session already has is fine; `vurs -- vurs -- CMD` nests any depth.
    let o = in_session("vurs -m fsremap -- vurs -- vurs -- sh -c 'exit 7'");
    assert_eq!(o.status.code(), Some(7), "{}", show(&o));
    let o = in_session("vurs -- sh -c 'kill -TERM $$'; echo $?");
    assert_eq!(stdout(&o), "143\n", "{}", show(&o));
    let o = in_session("vurs -- /no/such/program");
    assert_eq!(o.status.code(), Some(127), "{}", show(&o));
    // A mount made with vurs mount in the session is seen by a nested vurs's COMMAND.
    let d = TempDir::new("nested");
    std::fs::write(d.join("f"), "in d\n").unwrap();
    let o = in_session(&format!(
        "vurs mount -t fsremap '{}' /mnt/vurs-nested && vurs -- cat /mnt/vurs-nested/f",
        d.0.display()
    ));
    assert_eq!((stdout(&o).as_str(), o.status.code()), ("in d\n", Some(0)), "{}", show(&o));
}

/// A program other than vurs that traces (strace) gets the kernel's refusal, and a vurs that
/// is itself traced says what is wrong in one line.
#[test]
fn traced_vurs_says_why_it_cannot_trace() {
    let mut c = Command::new("strace");
    c.args(["-f", "-o", "/dev/null", vurs().to_str().unwrap(), "--", "true"]);
    let o = run_with_timeout(c, 60);
    let e = stderr(&o);
    assert!(
        e.lines().any(|l| l.starts_with("vurs: ") && l.contains("cannot be traced again")),
        "{}",
        show(&o)
    );
    assert_eq!(o.status.code(), Some(125), "{}", show(&o));
}

#[test]
fn status_tells_inside_from_outside() {
    let o = vurs_run(&["status"]);
    assert_eq!(
        (stdout(&o).as_str(), o.status.code()),
        ("not inside a vurs session\n", Some(1)),
        "{}",
        show(&o)
    );
    let o = vurs_run(&["status", "-q"]);
    assert_eq!((stdout(&o).as_str(), o.status.code()), ("", Some(1)), "{}", show(&o));
    let o = in_session("vurs status; vurs status -q; echo $?");
    let out = stdout(&o);
    assert!(out.starts_with("inside a vurs session (vurs pid "), "{}", show(&o));
    assert!(out.contains("modules: fsremap") && out.ends_with(")\n0\n"), "{}", show(&o));
    // The documented prompt snippet.
    let o =
        in_session("PS1='$ '; PS1='$(vurs status -q && echo \"[vurs] \")'$PS1; eval \"echo \\\"$PS1\\\"\"");
    assert_eq!(stdout(&o), "[vurs] $ \n", "{}", show(&o));
}

// ---------------------------------------------------------------------------------------------
// -c / --summary

/// How many times `prog` makes system call `call`, counted by strace (-f).
fn strace_count(call: &str, prog: &[&str]) -> usize {
    let d = TempDir::new("strace");
    let log = d.join("log");
    let o = Command::new("strace")
        .args(["-f", "-qq", "-e", &format!("trace={call}"), "-o"])
        .arg(&log)
        .args(prog)
        .output()
        .unwrap();
    assert!(o.status.success(), "strace: {}", show(&o));
    std::fs::read_to_string(&log).unwrap().lines().filter(|l| l.contains(&format!("{call}("))).count()
}

/// A summary row: (calls, passed, emulated, rewritten, failed) of the line naming `name`.
fn summary_row(table: &str, section: &str, name: &str) -> Option<[u64; 5]> {
    let part = table.split("vurs: trapped calls by ").find(|p| p.starts_with(section))?;
    let line = part.lines().find(|l| l.split_whitespace().last() == Some(name))?;
    let n: Vec<u64> = line.split_whitespace().take(5).map(|x| x.parse().unwrap()).collect();
    Some([n[0], n[1], n[2], n[3], n[4]])
}

#[test]
fn summary_counts_trapped_calls_per_syscall_and_module() {
    let want = strace_count("uname", &["hostname"]);
    assert!(want >= 1);
    let o = vurs_run(&["-c", "-m", "uname,nodename=box", "--", "hostname"]);
    assert_eq!((stdout(&o).as_str(), o.status.code()), ("box\n", Some(0)), "{}", show(&o));
    let t = stderr(&o);
    let row = summary_row(&t, "system call", "uname").unwrap_or_else(|| panic!("no uname row:\n{t}"));
    assert_eq!(row, [want as u64, 0, want as u64, 0, 0], "uname row vs strace's {want}:\n{t}");
    let m = summary_row(&t, "module", "uname").unwrap_or_else(|| panic!("no uname module row:\n{t}"));
    assert!(m[0] >= want as u64 && m[2] >= want as u64, "{t}");
    let total = summary_row(&t, "system call", "total").unwrap();
    assert_eq!(total[0], total[1] + total[2] + total[3], "{t}");
    // -b: the open of the bound file is rewritten by fsremap; --summary=FILE.
    let d = TempDir::new("summary");
    let out = d.join("table");
    let o = vurs_run(&[
        &format!("--summary={}", out.display()),
        "-b",
        "/etc/hostname:/etc/passwd",
        "--",
        "cat",
        "/etc/passwd",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(stderr(&o).is_empty(), "{}", show(&o));
    let t = std::fs::read_to_string(&out).unwrap();
    let m = summary_row(&t, "module", "fsremap").unwrap_or_else(|| panic!("no fsremap row:\n{t}"));
    assert!(m[3] >= 1, "no rewritten call by fsremap:\n{t}");
    // Failed: a call vurs answered with an error (a control call: umount of no mount).
    let o = vurs_run(&["-c", "-m", "fsremap", "--", vurs().to_str().unwrap(), "umount", "/not/mounted"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let t = stderr(&o);
    let core = summary_row(&t, "module", "vurs").unwrap_or_else(|| panic!("no vurs row:\n{t}"));
    assert_eq!((core[0], core[2], core[4]), (1, 1, 1), "the control call:\n{t}");
    // Unwritable FILE: one line, 125, before anything runs.
    let o = vurs_run(&["--summary=/no/such/dir/table", "--", "true"]);
    assert_usage_error(&o, "--summary to a missing directory");
}

// ---------------------------------------------------------------------------------------------
// /proc/self/mountinfo

#[test]
fn mountinfo_lists_virtual_mounts_for_findmnt_mount_and_df() {
    let d = TempDir::new("minfo");
    std::fs::create_dir(d.join("src dir")).unwrap();
    let src = d.join("src dir");
    let bind = format!("{}:/mnt/vurs minfo", src.display());
    let native = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let o = vurs_run(&["-b", &bind, "--", "cat", "/proc/self/mountinfo"]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    // The real lines (as many as natively), then ours, in the kernel's format.
    assert_eq!(text.lines().count(), native.lines().count() + 1, "{text}");
    let last = text.lines().last().unwrap();
    let f: Vec<&str> = last.split(' ').collect();
    assert_eq!(f.len(), 10, "{last}");
    assert_eq!(
        (f[3], f[4], f[6], f[7], f[8]),
        ("/", "/mnt/vurs\\040minfo", "-", "fsremap", &*src.to_string_lossy().replace(' ', "\\040")),
        "{last}"
    );
    let ids: Vec<&str> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert!(ids.contains(&f[1]), "parent {} not a mount: {text}", f[1]);
    let run = |cmd: &[&str]| {
        let mut a = vec!["-b", &bind, "--"];
        a.extend_from_slice(cmd);
        let o = vurs_run(&a);
        assert_eq!(o.status.code(), Some(0), "{cmd:?}: {}", show(&o));
        stdout(&o)
    };
    let fm = run(&["findmnt", "-n", "-o", "TARGET,FSTYPE", "/mnt/vurs minfo"]);
    assert_eq!(fm.split_whitespace().collect::<Vec<_>>(), ["/mnt/vurs", "minfo", "fsremap"], "{fm}");
    let mount = run(&["mount"]);
    assert!(mount.contains(&format!("{} on /mnt/vurs minfo type fsremap (rw)", src.display())), "{mount}");
    let df = run(&["df", "--output=target", "/mnt/vurs minfo"]);
    assert_eq!(df.lines().last(), Some("/mnt/vurs minfo"), "{df}");
}

// ---------------------------------------------------------------------------------------------
// proot's command line

/// A tiny root file system: busybox-static and a few names.
fn busybox_rootfs(d: &TempDir) -> std::path::PathBuf {
    let root = d.join("rootfs");
    for sub in ["bin", "etc", "tmp"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static installed");
    for name in ["sh", "cat", "ls", "pwd", "uname"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(name)).unwrap();
    }
    std::fs::write(root.join("etc/motd"), "guest motd\n").unwrap();
    root
}

/// proot invocations from proot's manual give what proot gives, through `vurs proot` and
/// through a symlink named proot.
#[test]
fn proot_command_line_matches_proot() {
    let d = TempDir::new("proot");
    let root = busybox_rootfs(&d);
    let r = root.to_str().unwrap();
    let link = d.join("proot");
    std::os::unix::fs::symlink(vurs(), &link).unwrap();
    let cases: &[&[&str]] = &[
        &["-r", r, "/bin/cat", "/etc/motd"],
        &["-r", r, "/bin/sh", "-c", "ls /bin; cat /etc/motd"],
        &["-r", r, "-w", "/etc", "/bin/pwd"],
        &["-r", r, "-b", "/etc/hostname:/etc/motd", "/bin/cat", "/etc/motd"],
        &["-b", "/etc/hostname:/etc/motd", "cat", "/etc/motd"],
        &["-w", "/usr", "pwd"],
        // (proot's -k breaks dynamically linked programs here: busybox is static)
        &["-k", "5.4.0-vurs", "/bin/busybox", "uname", "-r"],
        &["-b", "/etc/hostname", "cat", "/etc/hostname"],
    ];
    for args in cases {
        let native = run_with_timeout(
            {
                let mut c = Command::new("proot");
                c.args(*args);
                c
            },
            60,
        );
        let mut c = Command::new(vurs());
        c.arg("proot").args(*args);
        let ours = run_with_timeout(c, 60);
        assert_eq!(
            (stdout(&ours), ours.status.code()),
            (stdout(&native), native.status.code()),
            "vurs proot {args:?}\n{}\nproot: {}",
            show(&ours),
            show(&native)
        );
        let by_link = run_with_timeout(
            {
                let mut c = Command::new(&link);
                c.args(*args);
                c
            },
            60,
        );
        assert_eq!(stdout(&by_link), stdout(&native), "proot symlink {args:?}\n{}", show(&by_link));
    }
    // Without COMMAND: /bin/sh, reading stdin.
    let mut c = Command::new(&link);
    c.args(["-r", r]).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"cat /etc/motd\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "guest motd\n");
}

#[test]
fn proot_options_vurs_lacks_are_refused_in_one_line() {
    for (args, want) in [
        (&["-0", "-i", "1:1", "true"][..], "not both"),
        (&["-i", "root:root", "true"][..], "UID:GID"),
        (&["-q", "qemu-arm", "true"][..], "-q/--qemu"),
        (&["--bogus", "true"][..], "--bogus"),
        (&["-r", "/no/such/dir", "true"][..], "not a directory"),
    ] {
        let mut a = vec!["proot"];
        a.extend_from_slice(args);
        let o = vurs_run(&a);
        assert_usage_error(&o, &format!("{args:?}"));
        assert!(stderr(&o).contains(want), "{args:?}: {}", show(&o));
    }
}

/// proot -0 and -i UID:GID: the fakeroot module, as proot's fake identity (and more: the
/// ownership a program sets is remembered).
#[test]
fn proot_fake_ids_use_the_fakeroot_module() {
    let d = TempDir::new("proot-0");
    let f = d.join("f").display().to_string();
    let o = vurs_run(&[
        "proot",
        "-0",
        "sh",
        "-c",
        &format!("id -u; id -g; touch {f}; chown 7:8 {f}; stat -c %u:%g {f}"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(stdout(&o), "0\n0\n7:8\n", "{}", show(&o));
    let o = vurs_run(&["proot", "-i", "1234:5678", "sh", "-c", "id -u; id -g"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(stdout(&o), "1234\n5678\n", "{}", show(&o));
}

/// --kill-on-exit: what COMMAND left running is killed when it exits; without it, vurs waits
/// for it (as proot does).
#[test]
fn proot_kill_on_exit() {
    for (kill, want_marker) in [(true, false), (false, true)] {
        let d = TempDir::new("koe");
        let marker = d.join("marker");
        let script = format!("(sleep 1; touch '{}') & echo started", marker.display());
        let mut a = vec!["proot"];
        if kill {
            a.push("--kill-on-exit");
        }
        a.extend_from_slice(&["sh", "-c", &script]);
        let o = vurs_run(&a);
        assert_eq!((stdout(&o).as_str(), o.status.code()), ("started\n", Some(0)), "{}", show(&o));
        std::thread::sleep(Duration::from_millis(1500));
        assert_eq!(marker.exists(), want_marker, "--kill-on-exit {kill}: {}", show(&o));
    }
}

// ---------------------------------------------------------------------------------------------
// install

/// ./install.sh puts vurs, its modules, the man page and completions under a prefix; the
/// installed vurs runs the README's example with a clean environment; --uninstall removes it.
#[test]
fn install_into_a_prefix_and_run_from_there() {
    let d = TempDir::new("install");
    let prefix = d.join("prefix");
    let mut c = Command::new(repo().join("install.sh"));
    c.args(["--no-build", "--prefix"]).arg(&prefix);
    let o = run_with_timeout(c, 120);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    for f in [
        "bin/vurs",
        "lib/vurs/fsremap.so",
        "lib/vurs/uname.so",
        "lib/vurs/time.so",
        "share/man/man1/vurs.1",
        "share/bash-completion/completions/vurs",
        "share/zsh/site-functions/_vurs",
        "share/fish/vendor_completions.d/vurs.fish",
    ] {
        assert!(prefix.join(f).is_file(), "{f} not installed");
    }
    let path = format!("{}:/usr/bin:/bin", prefix.join("bin").display());
    let mut c = Command::new("env");
    c.args(["-i", &format!("PATH={path}"), "vurs", "-m", "uname,nodename=box", "--", "hostname"]);
    let o = run_with_timeout(c, 60);
    assert_eq!((stdout(&o).as_str(), o.status.code()), ("box\n", Some(0)), "{}", show(&o));
    let mut c = Command::new("env");
    c.args([
        "-i",
        &format!("PATH={path}"),
        "vurs",
        "-b",
        "/etc/hostname:/etc/passwd",
        "--",
        "cat",
        "/etc/passwd",
    ]);
    let o = run_with_timeout(c, 60);
    assert_eq!(stdout(&o), std::fs::read_to_string("/etc/hostname").unwrap(), "{}", show(&o));
    let mut c = Command::new(repo().join("install.sh"));
    c.args(["--uninstall", "--prefix"]).arg(&prefix);
    let o = run_with_timeout(c, 60);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let left: Vec<_> = walk(&prefix).into_iter().filter(|p| p.is_file()).collect();
    assert!(left.is_empty(), "left after --uninstall: {left:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            out.extend(walk(&p));
            out.push(p);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// lsmod's Users column and rmmod agree

/// rmmod is refused exactly when lsmod shows users: a mount made with `vurs mount` counts, the
/// module's own mounts (uname's /proc/sys/kernel files) do not.
#[test]
fn rmmod_refused_exactly_when_lsmod_shows_users() {
    let users = |lsmod: &str, name: &str| -> Option<u64> {
        lsmod.lines().find(|l| l.starts_with(&format!("{name}\t")))?.split('\t').nth(1)?.parse().ok()
    };
    let o = in_session("vurs insmod uname,nodename=box 2>/dev/null; vurs lsmod");
    // fsremap session without uname's calls trapped: insmod uname is refused; fsremap alone.
    assert_eq!(users(&stdout(&o), "fsremap"), Some(0), "{}", show(&o));
    let path = format!("{}:{}", module_dir().display(), std::env::var("PATH").unwrap_or_default());
    let mut c = Command::new(vurs());
    c.env("PATH", path).args([
        "-m",
        "uname",
        "-m",
        "fsremap",
        "--",
        "sh",
        "-c",
        "vurs mount -t fsremap /tmp /mnt/vurs-users; vurs lsmod; echo ==; vurs rmmod fsremap; echo rc=$?; \
         vurs rmmod uname; echo rc=$?",
    ]);
    let o = run_with_timeout(c, 60);
    let out = stdout(&o);
    let (lsmod, rest) = out.split_once("==\n").unwrap();
    assert_eq!((users(lsmod, "uname"), users(lsmod, "fsremap")), (Some(0), Some(1)), "{}", show(&o));
    assert_eq!(rest, "rc=1\nrc=0\n", "{}", show(&o));
    assert!(stderr(&o).contains("rmmod: fsremap: in use: mounted on /mnt/vurs-users"), "{}", show(&o));
}
