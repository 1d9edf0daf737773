//! `vurs [OPTIONS] -- COMMAND` run inside a session: a traced program cannot trace again
//! (the kernel refuses PTRACE_SEIZE), so COMMAND runs in the session vurs is in. Options that
//! act session-wide are applied as `vurs mount` would, for as long as COMMAND runs; options
//! that would need a tracer of COMMAND's own are refused with one line saying why.
use super::{die, end_as, say, without_os_error, Plan, EXIT_CANNOT_EXEC, EXIT_FAILURE, EXIT_NOT_FOUND};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use vurs::control;

const WHY: &str = "a program traced by vurs cannot be traced again, so COMMAND runs in the session";

/// Run `plan` in the current session (`lsmod` is its module list); returns COMMAND's exit
/// status or -N for a signal death.
pub fn run(plan: Plan, lsmod: &str) -> i32 {
    if plan.trace.is_some() {
        die(
            EXIT_FAILURE,
            format!("--trace: already inside a vurs session ({WHY}); give it to the outer vurs"),
        );
    }
    if plan.summary.is_some() {
        die(
            EXIT_FAILURE,
            format!("--summary: already inside a vurs session ({WHY}); give it to the outer vurs"),
        );
    }
    if plan.kill_on_exit {
        die(EXIT_FAILURE, format!("--kill-on-exit: already inside a vurs session ({WHY})"));
    }
    let loaded: Vec<&str> = lsmod.lines().skip(1).filter_map(|l| l.split('\t').next()).collect();
    for spec in &plan.modules {
        // The session has it already, as asked: nothing to do.
        if loaded.contains(&spec.as_str()) {
            continue;
        }
        die(
            EXIT_FAILURE,
            format!(
                "-m {spec}: already inside a vurs session ({WHY}), and a module acts on the whole \
                 session: load it in the outer vurs, or with `vurs insmod` for the session"
            ),
        );
    }
    let mut mounted: Vec<String> = Vec::new();
    for m in &plan.mounts {
        let words = ["mount", &m.fstype, &m.source, &m.target, &m.options].map(String::from);
        if let Err((_, msg)) = control::request(&words) {
            unmount(&mounted);
            die(
                EXIT_FAILURE,
                format!("{} (inside a vurs session, mounts are the session's)", without_os_error(&msg)),
            );
        }
        mounted.push(m.target.clone());
    }
    let argv: Vec<CString> = plan
        .command
        .iter()
        .map(|a| {
            CString::new(a.as_bytes()).unwrap_or_else(|_| die(EXIT_FAILURE, "argument contains a NUL byte"))
        })
        .collect();
    if let Some(dir) = &plan.cwd {
        if let Err(e) = std::env::set_current_dir(dir) {
            unmount(&mounted);
            let err = e.raw_os_error().map(vurs::errno::strerror).unwrap_or_else(|| e.to_string());
            die(EXIT_FAILURE, format!("cannot change directory to {dir}: {err}"));
        }
    }
    if mounted.is_empty() {
        exec(&argv); // nothing to undo afterwards: COMMAND takes vurs's place
    }
    // The mounts last while COMMAND runs: wait for it, then remove them.
    // SAFETY: fork; the child only execs or exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        unmount(&mounted);
        die(EXIT_FAILURE, "fork failed");
    }
    if pid == 0 {
        exec(&argv);
    }
    // SAFETY: Ctrl-C and Ctrl-\ are for COMMAND, as in a session's own vurs.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGQUIT, libc::SIG_IGN);
    }
    let mut st = 0;
    // SAFETY: waiting for our own child.
    while unsafe { libc::waitpid(pid, &mut st, 0) } < 0 {}
    unmount(&mounted);
    if libc::WIFSIGNALED(st) {
        -libc::WTERMSIG(st)
    } else {
        libc::WEXITSTATUS(st)
    }
}

/// Remove what this vurs mounted, newest first (lazily: COMMAND's leftovers may use them).
fn unmount(targets: &[String]) {
    for t in targets.iter().rev() {
        let _ = control::request(&["umount".to_string(), t.clone(), "lazy".to_string()]);
    }
}

/// Exec COMMAND, or end as env(1) does when it cannot (127 not found, 126 otherwise).
fn exec(argv: &[CString]) -> ! {
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|c| c.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: COMMAND gets the default SIGPIPE vurs ignores; a NULL-terminated argv of
    // valid C strings.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::execvp(ptrs[0], ptrs.as_ptr());
    }
    let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::ENOENT);
    let name = argv[0].to_string_lossy();
    say(format!("cannot run '{name}': {}", vurs::errno::strerror(e)));
    end_as(if e == libc::ENOENT { EXIT_NOT_FOUND } else { EXIT_CANNOT_EXEC })
}
