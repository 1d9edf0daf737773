//! The --trace sink and the switches every layer may ask (`enabled`, `notes_wanted`):
//! module log lines and internal errors go here; the per-call lines are written by
//! report/ (`report::call_line`). A leaf: it knows no decision and no call.
#![forbid(unsafe_code)]
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
        to_stderr(&text);
    }
}

/// One line on stderr; a closed or full stderr loses it (eprintln! would panic, and a
/// panic outside a call's guard is the session's end).
pub fn to_stderr(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// An internal error of vurs that costs one call, not the session: one line on stderr
/// (and in the trace).
pub fn internal_error(what: &str) {
    let text = format!("vurs: internal error: {what}");
    if enabled() {
        line(&text);
    }
    to_stderr(&text);
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

/// --summary is on (set by report::summary::enable).
pub static SUMMARY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether decisions should say who decided and how (`Decision::note`): for --trace and
/// --summary only, so nothing is formatted otherwise.
pub fn notes_wanted() -> bool {
    enabled() || SUMMARY.load(std::sync::atomic::Ordering::Relaxed)
}
