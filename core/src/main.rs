//! The `vurs` command: start a session, or control the session it runs in.
//!
//! `main` is the C entry point, not Rust's: the standard runtime's start reads
//! /proc/self/maps to find the main thread's stack guard (for a stack overflow message),
//! which costs about a quarter of a millisecond on a VM, on every session start and every
//! `vurs mount`. What else it does that matters is done here: standard descriptors that
//! are closed get /dev/null, SIGPIPE is ignored (write errors are reported instead), and a
//! panic ends with status 101.
#![no_main]
use clap::Parser;
use std::ffi::OsString;
use std::path::Path;
use std::sync::Arc;
use vurs::cli::{self, Cli, Control};
use vurs::session::Session;
use vurs::{control, launch, module, report::summary, tracelog, tracer};

mod nested;

/// Exit statuses (env(1) conventions).
const EXIT_FAILURE: i32 = 125;
const EXIT_CANNOT_EXEC: i32 = 126;
const EXIT_NOT_FOUND: i32 = 127;

fn die(code: i32, msg: impl std::fmt::Display) -> ! {
    say(msg);
    std::process::exit(code);
}

/// `vurs: MSG` on stderr, without std's " (os error N)" tail; a closed stderr loses it.
fn say(msg: impl std::fmt::Display) {
    vurs::tracelog::to_stderr(&format!("vurs: {}", without_os_error(&msg.to_string())));
}

/// Text on stdout; a closed pipe loses it (`vurs lsmod | head -1`) instead of a panic.
fn out(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().write_all(text.as_bytes());
}

/// A message without std's " (os error N)" tail, which repeats what the text says.
fn without_os_error(msg: &str) -> String {
    let mut out = msg.to_string();
    while let Some(at) = out.find(" (os error ") {
        let Some(len) = out[at..].find(')') else { break };
        out.replace_range(at..at + len + 1, "");
    }
    out
}

#[no_mangle]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    open_standard_fds();
    vurs::launch::remember_inherited_signals();
    // SAFETY: setting a disposition before any thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    match std::panic::catch_unwind(vurs_main) {
        Ok(never) => never,
        Err(_) => {
            let _ = std::io::Write::flush(&mut std::io::stdout());
            101
        }
    }
}

/// Descriptors 0, 1 and 2 that are closed get /dev/null, so nothing vurs opens takes
/// their place (and its messages go nowhere rather than into a file).
fn open_standard_fds() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd { fd, events: 0, revents: 0 });
    // SAFETY: polling three descriptors without waiting; opening /dev/null.
    unsafe {
        if libc::poll(fds.as_mut_ptr(), 3, 0) < 0 {
            return;
        }
        for p in fds.iter().filter(|p| p.revents & libc::POLLNVAL != 0) {
            let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            if fd >= 0 && fd != p.fd {
                libc::dup2(fd, p.fd);
                libc::close(fd);
            }
        }
    }
}

fn vurs_main() -> ! {
    let args: Vec<OsString> = std::env::args_os().collect();
    let invoked_as = args.first().map(|a| Path::new(a).file_name().unwrap_or(a).to_os_string());
    if invoked_as.as_deref() == Some(std::ffi::OsStr::new("proot")) {
        run_proot(args);
    }
    let cli = match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => match e.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => e.exit(),
            _ => {
                let prog = match cli::subcommand_of(&args) {
                    Some(sub) => format!("vurs {sub}"),
                    None => "vurs".into(),
                };
                die(EXIT_FAILURE, cli::one_line_error(&e, &prog))
            }
        },
    };
    match cli.control {
        Some(Control::Completions { shell }) => {
            clap_complete::generate(shell, &mut cli::command(), "vurs", &mut std::io::stdout());
            std::process::exit(0);
        }
        Some(Control::Man) => {
            match cli::man_page() {
                Ok(page) => {
                    let _ = std::io::Write::write_all(&mut std::io::stdout(), &page);
                }
                Err(e) => die(EXIT_FAILURE, format!("man: {e}")),
            }
            std::process::exit(0);
        }
        Some(Control::Status { quiet }) => std::process::exit(status(quiet)),
        Some(Control::CowDiff { lower, upper }) => {
            match cli::cowdiff::diff(&upper, &lower, &mut std::io::stdout().lock()) {
                Ok(()) => std::process::exit(0),
                Err(e) => die(EXIT_FAILURE, format!("cow-diff: {e}")),
            }
        }
        Some(Control::Proot { args: rest }) => {
            let mut a: Vec<OsString> = vec!["vurs proot".into()];
            a.extend(rest);
            run_proot(a);
        }
        Some(ctl) => std::process::exit(run_control(ctl)),
        None => {}
    }
    if cli.command.is_empty() {
        die(EXIT_FAILURE, "no command given (usage: vurs [OPTIONS] -- COMMAND [ARGS...])");
    }
    let mut mounts = Vec::new();
    if let Some(root) = &cli.root {
        mounts = cli::root_mounts(root).unwrap_or_else(|e| die(EXIT_FAILURE, e));
    }
    for m in &cli.mounts {
        mounts.push(cli::parse_mount(m).unwrap_or_else(|e| die(EXIT_FAILURE, e)));
    }
    for b in &cli.binds {
        mounts.push(cli::parse_bind(b).unwrap_or_else(|e| die(EXIT_FAILURE, e)));
    }
    let plan = Plan {
        modules: cli.modules,
        mounts,
        trace: cli.trace,
        summary: cli.summary,
        cwd: cli.cwd.or(cli.root.as_ref().map(|_| "/".to_string())),
        kill_on_exit: false,
        command: cli.command,
    };
    start(plan)
}

/// What to run and how, from vurs's command line or proot's.
struct Plan {
    modules: Vec<String>,
    mounts: Vec<cli::MountSpec>,
    trace: Option<String>,
    summary: Option<String>,
    /// Start COMMAND in this directory (session's view).
    cwd: Option<String>,
    /// Kill what COMMAND leaves behind when it exits (proot --kill-on-exit).
    kill_on_exit: bool,
    command: Vec<OsString>,
}

/// Run the plan: in a new session, or in the one vurs already runs in.
fn start(plan: Plan) -> ! {
    match control::request(&["lsmod".to_string()]) {
        Ok(lsmod) => end_as(nested::run(plan, &lsmod)),
        Err(_) => end_as(run_session(plan)),
    }
}

/// proot's command line (`args[0]` is how it was invoked).
fn run_proot(args: Vec<OsString>) -> ! {
    let prog = Path::new(&args[0]).file_name().unwrap_or(&args[0]).to_string_lossy().into_owned();
    let p = match cli::proot::parse(args) {
        Ok(p) => p,
        Err(e) => match e.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => e.exit(),
            _ => die(EXIT_FAILURE, cli::one_line_error(&e, &prog)),
        },
    };
    let plan = Plan {
        modules: p.modules,
        mounts: p.mounts,
        trace: None,
        summary: None,
        cwd: p.cwd,
        kill_on_exit: p.kill_on_exit,
        command: p.command,
    };
    start(plan)
}

/// `vurs status`: inside a session (0) or not (1), with one line saying so.
fn status(quiet: bool) -> i32 {
    match control::request(&["lsmod".to_string()]) {
        Ok(lsmod) => {
            if !quiet {
                let tracer = vurs::path::procfs::status(std::process::id() as i32)
                    .and_then(|s| vurs::path::procfs::status_field(&s, "TracerPid").map(str::to_string))
                    .unwrap_or_else(|| "?".into());
                let names: Vec<&str> = lsmod.lines().skip(1).filter_map(|l| l.split('\t').next()).collect();
                let modules = if names.is_empty() { "none".to_string() } else { names.join(", ") };
                out(&format!("inside a vurs session (vurs pid {tracer}; modules: {modules})\n"));
            }
            0
        }
        Err(_) => {
            if !quiet {
                out("not inside a vurs session\n");
            }
            1
        }
    }
}

/// End the way COMMAND ended: exit with its status, or die of the signal that killed it
/// (`status` is -N then), so the calling shell sees a signal death (a loop of vurs runs
/// stops at Ctrl-C, as it does for the command alone). Core dumps are COMMAND's business:
/// vurs's own would be of the hypervisor, so it dumps none.
fn end_as(status: i32) -> ! {
    let _ = std::io::Write::flush(&mut std::io::stdout());
    if status >= 0 {
        std::process::exit(status);
    }
    let sig = -status;
    let no_core = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: setrlimit with a valid struct; signal, sigprocmask and raise on our own
    // process, with the default action restored so the signal ends it.
    unsafe {
        libc::setrlimit(libc::RLIMIT_CORE, &no_core);
        libc::signal(sig, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(sig);
    }
    // A signal whose default action does not end a process: the shell convention.
    std::process::exit(128 + sig);
}

/// `vurs insmod NAME[,options]` names the module as its caller sees things: a path relative
/// to the caller's cwd, or a bare name looked up in the caller's $VURS_MODULE_PATH (then in
/// vurs's own directories, by the hypervisor). The hypervisor gets an absolute path (in the
/// session's view, which it translates) or the bare name.
fn module_spec_for_session(spec: &str) -> String {
    let (name, opts) = match spec.split_once(',') {
        Some((n, o)) => (n, Some(o)),
        None => (spec, None),
    };
    let name = if name.contains('/') {
        match std::env::current_dir() {
            Ok(cwd) if !name.starts_with('/') => cwd.join(name).to_string_lossy().into_owned(),
            _ => name.to_string(),
        }
    } else {
        module::caller_module_path(name).map(|p| p.to_string_lossy().into_owned()).unwrap_or(name.to_string())
    };
    match opts {
        Some(o) => format!("{name},{o}"),
        None => name,
    }
}

fn run_control(ctl: Control) -> i32 {
    let words: Vec<String> = match ctl {
        Control::Mount { fstype, options, source, target } => {
            vec!["mount".into(), fstype, source, target, options.unwrap_or_default()]
        }
        Control::Umount { lazy, target } => {
            let mut w = vec!["umount".to_string(), target];
            if lazy {
                w.push("lazy".into());
            }
            w
        }
        Control::Insmod { spec } => vec!["insmod".into(), module_spec_for_session(&spec)],
        Control::Rmmod { name } => vec!["rmmod".into(), name],
        Control::Lsmod => vec!["lsmod".into()],
        Control::Mounts => vec!["mounts".into()],
        Control::Status { .. }
        | Control::CowDiff { .. }
        | Control::Completions { .. }
        | Control::Man
        | Control::Proot { .. } => {
            unreachable!("handled before")
        }
    };
    match control::request(&words) {
        Ok(text) => {
            out(&text);
            0
        }
        Err((_, msg)) => {
            say(msg);
            1
        }
    }
}

/// Run COMMAND in a new session; its exit status, or -N if signal N killed it.
fn run_session(plan: Plan) -> i32 {
    if let Some(t) = &plan.trace {
        if let Err(e) = tracelog::open(t) {
            die(EXIT_FAILURE, e);
        }
    }
    if let Some(out) = &plan.summary {
        summary::check_output(out).unwrap_or_else(|e| die(EXIT_FAILURE, e));
    }
    let mut modules = Vec::new();
    for spec in &plan.modules {
        let (name, opts) = spec.split_once(',').unwrap_or((spec, ""));
        match module::load(name, opts) {
            Ok(m) => modules.push(m),
            Err(e) => die(EXIT_FAILURE, e),
        }
    }
    let mounts = &plan.mounts;
    // A mount's module is loaded now if no -m named it, so the filter traps paths.
    for m in mounts {
        if !modules.iter().any(|x: &module::Module| x.is_named(&m.fstype)) {
            match module::load(&m.fstype, "") {
                Ok(x) => modules.push(x),
                Err(e) => die(EXIT_FAILURE, e),
            }
        }
    }
    if let Some(out) = &plan.summary {
        summary::enable(out, modules.iter().map(|m| m.name.clone()).collect());
    }
    let mut session = Session::new(modules);
    if let Err((_, msg)) = session.auto_mount() {
        die(EXIT_FAILURE, msg);
    }
    for m in mounts {
        if let Err((_, msg)) = start_mount(&session, m) {
            die(EXIT_FAILURE, msg);
        }
    }
    // Listing mount points that are missing on the host costs a stop per getdents64: trap
    // it only if a start mount needs it, or if mounts may come at run time. A module with
    // merged listings (cow) gets it at the first open of a merged directory
    // (dispatch/paths.rs: trap_dirents_if_merged).
    // A start mount whose listings are merged already (a cow view with changes) needs them
    // all trapped, as notifications. A view nobody wrote to is a plain subtree (its module
    // said so when its root was asked at mount): getdents64 then runs at full speed, and
    // traps from the first open of a merged directory on (dispatch/paths.rs:
    // trap_dirents_if_merged; as ptrace stops, a filter layer's verdict).
    let merged = session.mounts.read().mounts.iter().any(|m| m.module.has_list() && !m.is_subtree());
    session.filter.get_mut().dirents =
        mounts.is_empty() || !session.mounts.read().synthetic.is_empty() || merged;
    let engine = vurs::notify::Engine::choose().unwrap_or_else(|e| die(EXIT_FAILURE, e));
    session.filter.get_mut().notify = engine == vurs::notify::Engine::Notify;
    // The notification engine carries path calls out for their callers: creating ones with
    // the caller's umask, and, when vurs is root (only then can a tracee's identity differ
    // from vurs's), with the caller's fsuid/fsgid/groups. Those must be kept current.
    let carries_out = session.filter.get_mut().notify && session.filter.get_mut().paths;
    session.filter.get_mut().umask |= carries_out;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    session.filter.get_mut().ids |= carries_out && root;
    session.seal_filter();
    let session = Arc::new(session);
    let filter = session.filter.read().compile().unwrap_or_else(|e| die(EXIT_FAILURE, e));
    // Ctrl-C and Ctrl-\ are for COMMAND; vurs goes on serving until it is gone.
    // SAFETY: setting dispositions of two signals before any thread exists.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGQUIT, libc::SIG_IGN);
    }
    end_session_on_term();
    let notify = session.filter.read().notify;
    let mut child = launch::spawn(&plan.command, &filter, plan.cwd.as_deref(), notify)
        .unwrap_or_else(|e| die(EXIT_FAILURE, e));
    if plan.kill_on_exit {
        kill_on_exit(child.pid, session.clone());
    }
    let tasks = std::sync::Arc::new(vurs::dispatch::TaskIndex::default());
    // The tracer knows the first task before the supervisor serves its first call.
    let tracer = tracer::Tracer::new(session.clone(), child.pid, tasks.clone());
    let supervisor = child
        .listener
        .take()
        .map(|l| vurs::notify::start(vurs::tracee::seccomp::Listener::from_fd(l), session, tasks));
    let status = tracer.run();
    if let Some(s) = supervisor {
        s.stop();
    }
    // What the last processes wrote through shadow copies of served files.
    vurs::vfd::shadow::flush();
    vurs::path::procfs::cleanup();
    if let Err(e) = summary::finish() {
        say(e);
    }
    match launch::start_error(child.err_fd) {
        Some(launch::StartError::Exec(errno)) => {
            let name = plan.command[0].to_string_lossy();
            let err = vurs::errno::strerror(errno);
            say(format!("cannot run '{name}': {err}"));
            if errno == libc::ENOENT {
                EXIT_NOT_FOUND
            } else {
                EXIT_CANNOT_EXEC
            }
        }
        Some(launch::StartError::Chdir(errno)) => {
            let dir = plan.cwd.as_deref().unwrap_or("?");
            say(format!("cannot change directory to {dir}: {}", vurs::errno::strerror(errno)));
            EXIT_FAILURE
        }
        None => status,
    }
}

/// SIGTERM or SIGHUP to vurs end the session: a thread waits for them (they are blocked in
/// every other thread; COMMAND gets the mask vurs started with), removes vurs's private files,
/// and lets the signal kill vurs; PTRACE_O_EXITKILL then kills every tracee.
fn end_session_on_term() {
    // SIGCHLD (one per tracee stop or exit) must wake the tracer alone: a thread that leaves
    // it unblocked is woken by every one, an extra wake-up per stop, often of a halted CPU.
    vurs::tracer::workers::block_wake_signals();
    // SAFETY: building a signal set and blocking it in this thread (threads started from
    // now on inherit the mask).
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGHUP);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    std::thread::spawn(move || {
        let mut sig = 0;
        // SAFETY: waiting for one of the blocked signals of `set`.
        if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
            return;
        }
        vurs::path::procfs::cleanup();
        // SAFETY: default action back, unblocked in this thread, raised on this thread:
        // the process dies of it.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::raise(sig);
        }
    });
}

/// proot's --kill-on-exit: once COMMAND's first process has exited, kill every process of
/// the session (vurs otherwise serves until the last one is gone, as strace -f does).
fn kill_on_exit(root: i32, session: Arc<Session>) {
    // SAFETY: pidfd_open of our own child; the descriptor is ours.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, root, 0) } as i32;
    if pidfd < 0 {
        die(EXIT_FAILURE, "--kill-on-exit: pidfd_open failed (Linux 5.3 or newer needed)");
    }
    std::thread::spawn(move || {
        let mut p = libc::pollfd { fd: pidfd, events: libc::POLLIN, revents: 0 };
        // SAFETY: polling one descriptor we own until COMMAND has exited.
        while unsafe { libc::poll(&mut p, 1, -1) } < 0 {}
        loop {
            let left: Vec<i32> = session.live.lock().iter().copied().collect();
            if left.is_empty() {
                break;
            }
            for pid in left {
                // SAFETY: kill(2) of a tracee of this session.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    });
}

/// A --mount/--bind given on the command line, resolved against vurs's own cwd.
fn start_mount(session: &Session, m: &cli::MountSpec) -> Result<(), (i32, String)> {
    let here = std::env::current_dir().map_err(|e| (libc::ENOENT, format!("cwd: {e}")))?;
    let abs = |p: &str| {
        if p.starts_with('/') {
            p.to_string()
        } else {
            here.join(p).to_string_lossy().into_owned()
        }
    };
    // A source that is not a host path (a served module's) is passed as given.
    let source =
        if std::path::Path::new(&abs(&m.source)).exists() { abs(&m.source) } else { m.source.clone() };
    let target = vurs::path::mounts::normalize(&abs(&m.target));
    session.mount(&m.fstype, &source, &target, &m.options)
}
