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
use std::sync::Arc;
use vurs::cli::{self, Cli, Control};
use vurs::session::Session;
use vurs::{control, launch, module, tracelog, tracer};

/// Exit statuses (env(1) conventions).
const EXIT_FAILURE: i32 = 125;
const EXIT_CANNOT_EXEC: i32 = 126;
const EXIT_NOT_FOUND: i32 = 127;

fn die(code: i32, msg: impl std::fmt::Display) -> ! {
    eprintln!("vurs: {msg}");
    std::process::exit(code);
}

#[no_mangle]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    open_standard_fds();
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
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => match e.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => e.exit(),
            _ => {
                let text = e.to_string();
                let first = text.lines().next().unwrap_or("bad usage").trim_start_matches("error: ");
                die(EXIT_FAILURE, format!("{first} (see vurs --help)"))
            }
        },
    };
    if let Some(ctl) = cli.control {
        std::process::exit(run_control(ctl));
    }
    if cli.command.is_empty() {
        die(EXIT_FAILURE, "no command given (usage: vurs [OPTIONS] -- COMMAND [ARGS...])");
    }
    std::process::exit(run_session(cli));
}

fn run_control(ctl: Control) -> i32 {
    let words: Vec<String> = match ctl {
        Control::Mount { fstype, options, source, target } => {
            vec!["mount".into(), fstype, source, target, options]
        }
        Control::Umount { lazy, target } => {
            let mut w = vec!["umount".to_string(), target];
            if lazy {
                w.push("lazy".into());
            }
            w
        }
        Control::Insmod { spec } => vec!["insmod".into(), spec],
        Control::Rmmod { name } => vec!["rmmod".into(), name],
        Control::Lsmod => vec!["lsmod".into()],
        Control::Mounts => vec!["mounts".into()],
    };
    match control::request(&words) {
        Ok(text) => {
            print!("{text}");
            0
        }
        Err((_, msg)) => {
            eprintln!("vurs: {msg}");
            1
        }
    }
}

fn run_session(cli: Cli) -> i32 {
    if let Some(t) = &cli.trace {
        if let Err(e) = tracelog::open(t) {
            die(EXIT_FAILURE, e);
        }
    }
    let mut modules = Vec::new();
    for spec in &cli.modules {
        let (name, opts) = spec.split_once(',').unwrap_or((spec, ""));
        match module::load(name, opts) {
            Ok(m) => modules.push(m),
            Err(e) => die(EXIT_FAILURE, e),
        }
    }
    let mut mounts = Vec::new();
    for m in &cli.mounts {
        mounts.push(cli::parse_mount(m).unwrap_or_else(|e| die(EXIT_FAILURE, e)));
    }
    for b in &cli.binds {
        mounts.push(cli::parse_bind(b).unwrap_or_else(|e| die(EXIT_FAILURE, e)));
    }
    // A mount's module is loaded now if no -m named it, so the filter traps paths.
    for m in &mounts {
        if !modules.iter().any(|x: &module::Module| x.is_named(&m.fstype)) {
            match module::load(&m.fstype, "") {
                Ok(x) => modules.push(x),
                Err(e) => die(EXIT_FAILURE, e),
            }
        }
    }
    let mut session = Session::new(modules);
    if let Err((_, msg)) = session.auto_mount() {
        die(EXIT_FAILURE, msg);
    }
    for m in &mounts {
        if let Err((_, msg)) = start_mount(&session, m) {
            die(EXIT_FAILURE, msg);
        }
    }
    // Listing mount points that are missing on the host costs a stop per getdents64: trap
    // it only if a start mount needs it, or if mounts may come at run time.
    session.filter.dirents = mounts.is_empty() || !session.mounts.read().synthetic.is_empty();
    let engine = vurs::notify::Engine::choose().unwrap_or_else(|e| die(EXIT_FAILURE, e));
    session.filter.notify = engine == vurs::notify::Engine::Notify;
    let session = Arc::new(session);
    let filter = session.filter.compile().unwrap_or_else(|e| die(EXIT_FAILURE, e));
    // Ctrl-C and Ctrl-\ are for COMMAND; vurs goes on serving until it is gone.
    // SAFETY: setting dispositions of two signals before any thread exists.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGQUIT, libc::SIG_IGN);
    }
    let notify = session.filter.notify;
    let mut child = launch::spawn(&cli.command, &filter, notify).unwrap_or_else(|e| die(EXIT_FAILURE, e));
    let tasks = std::sync::Arc::new(vurs::tracer::tasks::TaskIndex::default());
    // The tracer knows the first task before the supervisor serves its first call.
    let tracer = tracer::Tracer::new(session.clone(), child.pid, tasks.clone());
    let supervisor = child
        .listener
        .take()
        .map(|l| vurs::notify::start(vurs::seccomp::Listener::from_fd(l), session, tasks));
    let status = tracer.run();
    if let Some(s) = supervisor {
        s.stop();
    }
    vurs::procfs::cleanup();
    if let Some(errno) = launch::exec_error(child.err_fd) {
        let name = cli.command[0].to_string_lossy();
        let err = vurs::errno::strerror(errno);
        eprintln!("vurs: cannot run '{name}': {err}");
        return if errno == libc::ENOENT { EXIT_NOT_FOUND } else { EXIT_CANNOT_EXEC };
    }
    status
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
    let target = vurs::mounts::normalize(&abs(&m.target));
    session.mount(&m.fstype, &source, &target, &m.options)
}
