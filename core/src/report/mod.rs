//! What the engines report about the calls they decided: one --trace line per call
//! (`call_line`) and the --summary counts (`summary`). Above dispatch, used by the engines.
#![forbid(unsafe_code)]
pub mod summary;

/// One --trace line for `call` and its decision (the result is added when known).
pub fn call_line(
    tid: crate::tracee::ptrace::Pid,
    call: &crate::syscall::Call,
    d: &crate::dispatch::Decision,
) -> String {
    let mut args: Vec<String> = call.args.iter().map(|a| format!("{a:#x}")).collect();
    if let Some(spec) = call.spec {
        for p in spec.paths {
            if let Ok(s) = crate::tracee::memory::read_cstring(
                tid,
                call.args[p.arg as usize],
                crate::tracee::memory::PATH_MAX,
            ) {
                args[p.arg as usize] = format!("{:?}", String::from_utf8_lossy(&s));
            }
        }
    }
    let decision = match &d.action {
        crate::dispatch::Action::Pass => "passed".to_string(),
        crate::dispatch::Action::Return(_) => format!("virtualized ({})", d.note),
        crate::dispatch::Action::Rewrite(_) | crate::dispatch::Action::RewriteAs(..) => d.note.to_string(),
        crate::dispatch::Action::NeedScratch => "needs scratch".to_string(),
        crate::dispatch::Action::Materialize(_) => d.note.to_string(),
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
