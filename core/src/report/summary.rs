//! `vurs -c` / `--summary[=FILE]` (like `strace -c`): count the trapped calls per system
//! call and per module, by what became of them, with the time spent deciding, and print
//! two tables at the end. Off by default: every hook starts with one relaxed load.
//!
//! - passed: the kernel ran the call unchanged (the fast path, or a decision to pass);
//! - emulated: vurs or a module answered it without the kernel;
//! - rewritten: the kernel ran it with other arguments (a remapped path);
//! - failed: of the emulated calls, those answered with an error (the results of passed
//!   and rewritten calls are the kernel's and are not seen: no exit stop is asked for them);
//! - decide: time from the seccomp stop being seen to the decision being carried out.
#![forbid(unsafe_code)]
use crate::dispatch::{Action, Decision};
use crate::syscall::Call;
use parking_lot::Mutex;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::tracelog::SUMMARY as ON;

#[derive(Default, Clone, Copy)]
struct Row {
    calls: u64,
    passed: u64,
    emulated: u64,
    rewritten: u64,
    failed: u64,
    nanos: u64,
}

impl Row {
    fn add(&mut self, o: &Row) {
        self.calls += o.calls;
        self.passed += o.passed;
        self.emulated += o.emulated;
        self.rewritten += o.rewritten;
        self.failed += o.failed;
        self.nanos += o.nanos;
    }
}

struct Table {
    /// (syscall number, module or "-") -> counts.
    rows: BTreeMap<(i64, String), Row>,
    modules: Vec<String>,
    out: String,
}

static TABLE: Mutex<Option<Table>> = Mutex::new(None);

thread_local! {
    /// When the stop being handled was seen, with its thread and call number.
    static STARTED: Cell<Option<(i32, i64, Instant)>> = const { Cell::new(None) };
}

/// Turn counting on; `out` is a file name, or "-" for stderr; `modules` the names that
/// decisions are attributed to.
pub fn enable(out: &str, modules: Vec<String>) {
    *TABLE.lock() = Some(Table { rows: BTreeMap::new(), modules, out: out.to_string() });
    ON.store(true, Ordering::Relaxed);
}

#[inline]
pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Hook: a seccomp stop of `tid` for `call` was just seen.
#[inline]
pub fn stop_seen(tid: i32, call: &Call) {
    if enabled() {
        STARTED.with(|s| s.set(Some((tid, call.nr, Instant::now()))));
    }
}

/// Hook: the fast path let `call` pass.
#[inline]
pub fn fast_pass(tid: i32, call: &Call) {
    if enabled() {
        record(tid, call.nr, "-", |r| r.passed += 1);
    }
}

/// Hook: `d` was decided for `call` and is about to be carried out.
#[inline]
pub fn decided(tid: i32, call: &Call, d: &Decision) {
    if enabled() {
        decided_slow(tid, call, d);
    }
}

#[cold]
fn decided_slow(tid: i32, call: &Call, d: &Decision) {
    let module = module_of(&d.note);
    match d.action {
        Action::Pass => record(tid, call.nr, &module, |r| r.passed += 1),
        Action::Return(v) => record(tid, call.nr, &module, |r| {
            r.emulated += 1;
            r.failed += u64::from(v < 0);
        }),
        Action::Rewrite(_) | Action::RewriteAs(..) => record(tid, call.nr, &module, |r| r.rewritten += 1),
        // Scratch first: the call traps again and is counted then.
        Action::NeedScratch => {}
        Action::Materialize(_) => record(tid, call.nr, &module, |r| r.emulated += 1),
    }
}

/// The module a decision's note names ("virtualized by uname", "rewritten fsremap: -> ..."),
/// or "vurs" for the core's own (control calls, /proc, virtual cwd), "-" for none.
fn module_of(note: &str) -> String {
    if note.is_empty() {
        return "-".into();
    }
    let rest = note
        .strip_prefix("virtualized by ")
        .or_else(|| note.strip_prefix("rewritten by "))
        .or_else(|| note.strip_prefix("rewritten "))
        .unwrap_or(note);
    let word = rest.split([':', ' ', ',']).next().unwrap_or("");
    let table = TABLE.lock();
    match table.as_ref() {
        Some(t) if t.modules.iter().any(|m| m == word) => word.to_string(),
        _ => "vurs".into(),
    }
}

fn record(tid: i32, nr: i64, module: &str, f: impl FnOnce(&mut Row)) {
    let nanos = STARTED.with(|s| match s.take() {
        Some((t, n, at)) if t == tid && n == nr => at.elapsed().as_nanos() as u64,
        _ => 0,
    });
    let mut table = TABLE.lock();
    let Some(t) = table.as_mut() else { return };
    let row = t.rows.entry((nr, module.to_string())).or_default();
    row.calls += 1;
    row.nanos += nanos;
    f(row);
}

fn line(out: &mut String, name: &str, r: &Row) {
    let avg = if r.calls > 0 { r.nanos as f64 / r.calls as f64 / 1000.0 } else { 0.0 };
    out.push_str(&format!(
        "{:>8} {:>8} {:>8} {:>9} {:>8} {:>11.3} {:>9.3}  {name}\n",
        r.calls,
        r.passed,
        r.emulated,
        r.rewritten,
        r.failed,
        r.nanos as f64 / 1e6,
        avg
    ));
}

const HEADER: &str = "   calls   passed emulated rewritten   failed  decide(ms) avg(µs)";

/// The two tables, as text.
fn render(t: &Table) -> String {
    let mut by_call: BTreeMap<i64, Row> = BTreeMap::new();
    let mut by_module: BTreeMap<&str, Row> = BTreeMap::new();
    let mut total = Row::default();
    for ((nr, m), r) in &t.rows {
        by_call.entry(*nr).or_default().add(r);
        by_module.entry(m.as_str()).or_default().add(r);
        total.add(r);
    }
    let mut calls: Vec<(i64, Row)> = by_call.into_iter().collect();
    calls.sort_by(|a, b| b.1.calls.cmp(&a.1.calls).then(a.0.cmp(&b.0)));
    let mut out = format!("vurs: trapped calls by system call\n{HEADER}  syscall\n");
    for (nr, r) in &calls {
        line(&mut out, &crate::syscall::table::name(*nr), r);
    }
    line(&mut out, "total", &total);
    out +=
        &format!("vurs: trapped calls by module ('-': none wanted it, 'vurs': the core)\n{HEADER}  module\n");
    for (m, r) in &by_module {
        line(&mut out, m, r);
    }
    out
}

/// At the end of the session: print the tables where asked.
pub fn finish() -> Result<(), String> {
    if !enabled() {
        return Ok(());
    }
    let table = TABLE.lock();
    let Some(t) = table.as_ref() else { return Ok(()) };
    let text = render(t);
    if t.out == "-" {
        let _ = std::io::stderr().write_all(text.as_bytes());
        Ok(())
    } else {
        std::fs::write(&t.out, text).map_err(|e| format!("--summary={}: {}", t.out, io_text(&e)))
    }
}

/// Check that `out` can be written, before the session starts.
pub fn check_output(out: &str) -> Result<(), String> {
    if out == "-" {
        return Ok(());
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out)
        .map(|_| ())
        .map_err(|e| format!("--summary={out}: {}", io_text(&e)))
}

/// An I/O error's text without std's "(os error N)" tail.
fn io_text(e: &std::io::Error) -> String {
    e.raw_os_error().map(crate::errno::strerror).unwrap_or_else(|| e.to_string())
}
