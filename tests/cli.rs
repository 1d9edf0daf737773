//! The command line as a user meets it: signals like a wrapper (Ctrl-C on a loop of vurs runs),
//! help, man page and completions, one-line errors, vurs inside a session, `vurs status`,
//! `-c/--summary`, the virtual mounts in /proc/self/mountinfo, proot's command line, install.
mod common;
use common::*;
use std::os::unix::process::ExitStatusExt;
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

/// A private tmux server, killed on drop.
struct Tmux {
    sock: String,
}
impl Tmux {
    fn new(tag: &str) -> Tmux {
        Tmux { sock: format!("vurs-cli-{tag}-{}", std::process::id()) }
    }
    fn cmd(&self, args: &[&str]) -> Output {
        let mut c = Command::new("tmux");
        c.arg("-L").arg(&self.sock).args(args).env("TERM", "xterm");
        run_with_timeout(c, 20)
    }
    fn keys(&self, keys: &[&str]) {
        let mut a = vec!["send-keys", "-t", "t"];
        a.extend_from_slice(keys);
        let o = self.cmd(&a);
        assert!(o.status.success(), "tmux send-keys {keys:?}: {}", show(&o));
    }
    fn screen(&self) -> String {
        stdout(&self.cmd(&["capture-pane", "-p", "-t", "t"]))
    }
    fn wait(&self, secs: u64, what: &str, f: impl Fn(&str) -> bool) {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.screen();
            if f(&s) {
                return;
            }
            assert!(Instant::now() < end, "timed out waiting for {what}; screen:\n{s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    fn server_pid(&self) -> i32 {
        stdout(&self.cmd(&["display-message", "-p", "-t", "t", "#{pid}"])).trim().parse().unwrap()
    }
}
impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

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

/// A refusal names the system call, not its number.
#[test]
fn refusals_name_system_calls() {
    // A session without the time module does not trap clock_gettime: insmod time is refused.
    let o = run_with_timeout(
        {
            let mut c = Command::new(vurs());
            c.args(["-m", "uname", "--", vurs().to_str().unwrap(), "insmod", "time"]);
            c
        },
        60,
    );
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(e.contains("clock_gettime") || e.contains("clock_"), "no call name:\n{}", show(&o));
    assert!(!e.contains("system call 2") && !e.contains("os error"), "{}", show(&o));
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
        assert!(page.contains(sub), "man page lacks {sub}");
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
