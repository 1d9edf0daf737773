//! Decide what happens to one trapped call: by path (mount table, after resolution), by
//! descriptor ownership, or by syscall number. Pure decision: `apply` and the tracer carry
//! it out.
#![forbid(unsafe_code)]
use crate::control::CONTROL_NR;
use crate::module::CallCtx;
use crate::path::mounts::MountTable;
use crate::session::Session;
use crate::syscall::table::Kind;
use crate::syscall::Call;
use std::cell::Cell;

mod caller;
mod decision;
pub mod exec;
pub mod fast;
mod mounting;
mod paths;
pub mod serve;

pub use caller::{Caller, Creds, TaskIndex, TaskView};
pub use decision::{Action, Decision, ExitHook, Note, Outcome, Plan, Scratch, LOCAL_TAG, SLOT_SIZE};

use mounting::{control_call, mount_call, umount_call};
use paths::{getcwd, getdents, path_call, readlink, sockaddr_call, unsupported};
pub use paths::{reverse_link, synthetic_dirents};
use vurs_abi::*;

/// The caller's virtual cwd.
pub fn cwd(mounts: &MountTable, c: &Caller) -> Option<Vec<u8>> {
    cwd_of(mounts, c.tid)
}

pub(crate) use crate::path::{cwd_of, readlink_host, to_virtual};

/// Decide what to do with `call` (`pre`: its path, if the fast path read it already).
pub fn decide(s: &Session, c: &Caller, call: &Call, scratch: &mut Scratch, pre: Option<Vec<u8>>) -> Decision {
    let _caller = crate::module::CallerScope::enter(c); // what vurs_services.caller answers
    if call.nr == CONTROL_NR {
        return control_call(s, c, call);
    }
    let path_kind = call.spec.is_some_and(|sp| sp.kind == Kind::Path);
    if crate::syscall::table::is_state_call(call.nr) {
        return Decision { action: Action::Pass, exit: Some(ExitHook::RefreshCreds), note: "".into() };
    }
    if s.filter.virtual_fds && !path_kind && on_virtual_fd(call) {
        return crate::dispatch::serve::fd_call(c, call, scratch);
    }
    if let Some(spec) = call.spec {
        if s.filter.paths || matches!(spec.kind, Kind::Mount | Kind::Umount) {
            let r = match spec.kind {
                Kind::Path => path_call(s, c, call, spec.paths, scratch, pre),
                Kind::Getcwd => getcwd(s, c, call),
                Kind::Getdents => getdents(s, c, call),
                Kind::Readlink => readlink(s, c, call, spec.paths, scratch, pre),
                Kind::Mount => mount_call(s, c, call),
                Kind::Umount => umount_call(s, c, call),
                Kind::SockAddr => sockaddr_call(s, c, call, scratch),
                Kind::Unsupported => unsupported(s, call),
            };
            return r.unwrap_or_else(Decision::from);
        }
    }
    let owner = s.syscall_owner.read().get(&call.nr).cloned();
    if let Some(m) = owner {
        return syscall_service(s, c, call, &m, scratch);
    }
    Decision::pass()
}

/// A descriptor call whose descriptor argument is in the virtual range.
pub fn on_virtual_fd(call: &Call) -> bool {
    let (lo, hi) = crate::vfd::virtual_range();
    crate::syscall::table::FD_CALLS
        .iter()
        .any(|&(sys, fd)| sys as i64 == call.nr && fd.meets(&call.args, lo, hi))
}

fn syscall_service(
    s: &Session,
    c: &Caller,
    call: &Call,
    m: &crate::module::Module,
    scratch: &mut Scratch,
) -> Decision {
    let caller = c.abi();
    let cwd = || cwd_of(&s.mounts.read(), c.tid);
    let ctx = CallCtx {
        tid: c.tid,
        cwd: &cwd,
        scratch: scratch.slot.map(|a| (a + scratch.used as u64, SLOT_SIZE as usize - scratch.used)),
        scratch_used: Cell::new(0),
        scratch_missing: Cell::new(false),
    };
    let raw = vurs_call {
        size: std::mem::size_of::<vurs_call>() as u32,
        nr: call.nr as i32,
        args: call.args,
        caller: &caller,
        ctx: &ctx as *const CallCtx as *mut std::ffi::c_void,
    };
    let v = m.syscall(&raw);
    if ctx.scratch_missing.get() {
        return Decision { action: Action::NeedScratch, exit: None, note: "".into() };
    }
    scratch.used += ctx.scratch_used.get();
    let note = crate::note!("virtualized by {}", m.name);
    match v {
        crate::module::Verdict::Pass => Decision::pass(),
        crate::module::Verdict::Return(x) => Decision::ret(x, note),
        crate::module::Verdict::Rewrite { mask, args } => {
            let mut a = call.args;
            for (i, slot) in a.iter_mut().enumerate() {
                if mask & (1 << i) != 0 {
                    *slot = args[i];
                }
            }
            Decision { action: Action::Rewrite(a), exit: None, note: crate::note!("rewritten by {}", m.name) }
        }
    }
}
