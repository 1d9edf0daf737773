//! `--trace FILE|-`: one strace-like line per trapped call, with the decision and, where
//! the call was seen at its exit, the result. Module log lines go here too.
use parking_lot::Mutex;
use std::io::Write;
use std::sync::OnceLock;

static SINK: OnceLock<Mutex<Box<dyn Write + Send>>> = OnceLock::new();

pub fn open(dest: &str) -> Result<(), String> {
    let w: Box<dyn Write + Send> = if dest == "-" {
        Box::new(std::io::stderr())
    } else {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(dest)
            .map_err(|e| format!("--trace {dest}: {e}"))?;
        Box::new(std::io::LineWriter::new(f))
    };
    let _ = SINK.set(Mutex::new(w));
    Ok(())
}

pub fn enabled() -> bool {
    SINK.get().is_some()
}

pub fn line(s: &str) {
    if let Some(m) = SINK.get() {
        let mut w = m.lock();
        let _ = writeln!(w, "{s}");
    }
}

/// A module's log line: to the trace if enabled, errors and warnings to stderr otherwise.
pub fn module_line(level: i32, module: &str, msg: &str) {
    let text = format!("vurs: module {module}: {msg}");
    if enabled() {
        line(&text);
    } else if level <= vurs_abi::VURS_LOG_WARN {
        eprintln!("{text}");
    }
}

/// An internal error of vurs that costs one call, not the session: one line on stderr
/// (and in the trace).
pub fn internal_error(what: &str) {
    let text = format!("vurs: internal error: {what}");
    if enabled() {
        line(&text);
    }
    eprintln!("{text}");
}

/// Panics print one line (`vurs: internal error: MESSAGE at FILE:LINE`) instead of the
/// standard multi-line report: they are caught per stop, and the session goes on.
pub fn one_line_panics() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into());
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        let thread = std::thread::current();
        internal_error(&format!("{msg}{at} (thread {})", thread.name().unwrap_or("?")));
    }));
}

/// A result as strace shows it: the value, or -1 and the error's text.
pub fn show_ret(v: i64) -> String {
    if (-4095..0).contains(&v) {
        let e = crate::errno::strerror(-v as i32);
        format!("-1 ({e})")
    } else {
        v.to_string()
    }
}

/// One --trace line for `call` and its decision (the result is added when known).
pub fn format_call(
    tid: crate::ptrace::Pid,
    call: &crate::syscall::Call,
    d: &crate::dispatch::Decision,
) -> String {
    let mut args: Vec<String> = call.args.iter().map(|a| format!("{a:#x}")).collect();
    if let Some(spec) = call.spec {
        for p in spec.paths {
            if let Ok(s) =
                crate::memory::read_cstring(tid, call.args[p.arg as usize], crate::memory::PATH_MAX)
            {
                args[p.arg as usize] = format!("{:?}", String::from_utf8_lossy(&s));
            }
        }
    }
    let decision = match &d.action {
        crate::dispatch::Action::Pass => "passed".to_string(),
        crate::dispatch::Action::Return(_) => format!("virtualized ({})", d.note),
        crate::dispatch::Action::Rewrite(_) => d.note.clone(),
        crate::dispatch::Action::NeedScratch => "needs scratch".to_string(),
        crate::dispatch::Action::Materialize(_) => d.note.clone(),
    };
    format!("[{tid}] {}({}) [{decision}]", call.name(), args.join(", "))
}

/// Fault injection for the tests: `VURS_INJECT_PANIC=NAME` makes the handling of every
/// trapped call NAME panic (the guard must turn it into EIO for that call alone).
pub fn injected_panic(nr: i64) {
    static AT: std::sync::OnceLock<Option<i64>> = std::sync::OnceLock::new();
    let at = AT.get_or_init(|| {
        let name = std::env::var("VURS_INJECT_PANIC").ok()?;
        (0..1024).find(|&n| crate::syscall::table::name(n) == name)
    });
    if *at == Some(nr) {
        panic!("injected by VURS_INJECT_PANIC");
    }
}

/// Whether decisions should say who decided and how (`Decision::note`): for --trace and
/// --summary only, so nothing is formatted otherwise.
pub fn notes_wanted() -> bool {
    enabled() || crate::summary::enabled()
}
