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
