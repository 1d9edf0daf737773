//! A shadow copy of a virtual file put in a tracee (vfd/shadow.rs; the decision is
//! dispatch/serve.rs): for a dup2/dup3 onto a real number (what a shell does for
//! `cmd < /served/file`) or an mmap of a virtual descriptor. In place of its call the
//! tracee runs openat("/proc/<vurs>/fd/<memfd>") → k, lseek(k, offset) when the virtual
//! offset is not 0, then dup3(k, newfd) or mmap(.., k, ..), and close(k), each injected by
//! rewinding over the syscall instruction; the call then returns what dup3 or mmap
//! returned, with the caller's registers restored.
use super::apply;
use crate::arch;
use crate::dispatch::{Plan, Then};
use crate::errno::Errno;
use crate::tracee::ptrace::Stopped;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    Seek { k: i64 },
    Use { k: i64 },
    Close { ret: i64 },
}

/// A materialization under way in one thread.
#[derive(Debug)]
pub struct Running {
    plan: Plan,
    phase: Phase,
    /// The interrupted call: arguments, IP after its syscall instruction.
    args: [u64; 6],
    ip: u64,
    /// The next syscall stop is the entry of a rewound step (skip it).
    expect_entry: bool,
}

/// Start at the call's seccomp stop: turn it into the openat.
pub fn start(t: Stopped, call: &crate::syscall::Call, plan: Plan) -> Option<Running> {
    // Opened close-on-exec unless it may become the dup2's result as it is.
    let cloexec = !matches!(plan.then, Then::Dup { cloexec: false, .. });
    let flags = plan.flags | if cloexec { libc::O_CLOEXEC } else { 0 };
    let args = [libc::AT_FDCWD as u64, plan.path_addr, flags as u64, 0, 0, 0];
    apply::set_call(&t, call, libc::SYS_openat, &args).ok()?;
    t.syscall(0).ok()?;
    Some(Running { plan, phase: Phase::Open, args: call.args, ip: call.ip, expect_entry: false })
}

/// Run `nr(args)` next, from the same syscall instruction.
fn step(t: Stopped, r: &Running, nr: i64, args: [u64; 6]) -> bool {
    apply::restart(&t, nr as u64, &args, r.ip).is_ok() && t.syscall(0).is_ok()
}

/// Finish: the call returns `ret`, with its own argument registers back.
fn finish(t: Stopped, r: &Running, ret: i64) {
    if let Ok(mut regs) = t.get_regs() {
        arch::regs_set_args(&mut regs, &r.args);
        arch::regs_set_ret(&mut regs, ret);
        let _ = t.set_regs(&regs);
    }
    // The memfd (r.plan.memfd) is closed when `r` is dropped: the tracee has its own now.
    let _ = t.cont(0);
}

/// The step that uses descriptor `k`.
fn use_step(r: &Running, k: i64) -> (i64, [u64; 6]) {
    match r.plan.then {
        Then::Dup { newfd, cloexec } => {
            let fl = if cloexec { libc::O_CLOEXEC as u64 } else { 0 };
            (libc::SYS_dup3, [k as u64, newfd as u64, fl, 0, 0, 0])
        }
        Then::Mmap { mut args } => {
            args[4] = k as u64;
            (libc::SYS_mmap, args)
        }
    }
}

/// At a syscall stop of a thread with a materialization under way. Returns the state to
/// keep, or None when done.
pub fn on_syscall_stop(t: Stopped, mut r: Running) -> Option<Running> {
    if r.expect_entry {
        r.expect_entry = false;
        return t.syscall(0).is_ok().then_some(r);
    }
    let res = apply::result(&t).unwrap_or(Errno(libc::EIO).neg());
    let next = match r.phase {
        Phase::Open if res < 0 => {
            finish(t, &r, res);
            return None;
        }
        Phase::Open if r.plan.offset != 0 => (
            Phase::Seek { k: res },
            libc::SYS_lseek,
            [res as u64, r.plan.offset as u64, libc::SEEK_SET as u64, 0, 0, 0],
        ),
        Phase::Open | Phase::Seek { .. } => {
            let k = match r.phase {
                Phase::Seek { k } => k,
                _ => res,
            };
            if let Then::Dup { newfd, .. } = r.plan.then {
                if k == newfd as i64 {
                    // openat gave the very number asked for: it is the result (its
                    // close-on-exec flag is the one asked, set by openat).
                    finish(t, &r, k);
                    return None;
                }
            }
            let (nr, args) = use_step(&r, k);
            (Phase::Use { k }, nr, args)
        }
        Phase::Use { k } => (Phase::Close { ret: res }, libc::SYS_close, [k as u64, 0, 0, 0, 0, 0]),
        Phase::Close { ret } => {
            finish(t, &r, ret);
            return None;
        }
    };
    r.phase = next.0;
    r.expect_entry = true;
    step(t, &r, next.1, next.2).then_some(r)
}
