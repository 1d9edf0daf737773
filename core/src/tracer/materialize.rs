//! dup2/dup3 of a virtual descriptor onto a real number (what a shell does for
//! `cmd < /served/file`): the kernel must hold a real descriptor there. vurs copies the
//! file's contents (from the current offset on) into a memfd of its own, then has the
//! tracee run, in place of its dup2: openat("/proc/<vurs>/fd/<memfd>") → k,
//! dup3(k, newfd) and close(k), each injected by rewinding over the syscall instruction;
//! the dup2 then returns newfd with the caller's registers restored. The copy is a
//! snapshot: reading works (also after exec), writes to it do not reach the module.
use super::apply;
use crate::arch;
use crate::dispatch::Plan;
use crate::errno::Errno;
use crate::tracee::ptrace::Stopped;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    Dup { k: i64 },
    Close { ret: i64 },
}

/// A materialization under way in one thread.
#[derive(Debug)]
pub struct Running {
    plan: Plan,
    phase: Phase,
    /// The interrupted dup2: arguments, IP after its syscall instruction.
    args: [u64; 6],
    ip: u64,
    /// The next syscall stop is the entry of a rewound step (skip it).
    expect_entry: bool,
}

/// Start at the dup2's seccomp stop: turn it into the openat.
pub fn start(t: Stopped, call: &crate::syscall::Call, plan: Plan) -> Option<Running> {
    let flags = libc::O_RDONLY | if plan.cloexec { libc::O_CLOEXEC } else { 0 };
    let args = [libc::AT_FDCWD as u64, plan.path_addr, flags as u64, 0, 0, 0];
    apply::set_call(&t, call, libc::SYS_openat, &args).ok()?;
    t.syscall(0).ok()?;
    Some(Running { plan, phase: Phase::Open, args: call.args, ip: call.ip, expect_entry: false })
}

/// Run `nr(args)` next, from the same syscall instruction.
fn step(t: Stopped, r: &Running, nr: i64, args: [u64; 6]) -> bool {
    apply::restart(&t, nr as u64, &args, r.ip).is_ok() && t.syscall(0).is_ok()
}

/// Finish: the dup2 returns `ret`, with its own argument registers back.
fn finish(t: Stopped, r: &Running, ret: i64) {
    if let Ok(mut regs) = t.get_regs() {
        arch::regs_set_args(&mut regs, &r.args);
        arch::regs_set_ret(&mut regs, ret);
        let _ = t.set_regs(&regs);
    }
    // The memfd (r.plan.memfd) is closed when `r` is dropped: the tracee has its own now.
    let _ = t.cont(0);
}

/// At a syscall stop of a thread with a materialization under way. Returns the state to
/// keep, or None when done.
pub fn on_syscall_stop(t: Stopped, mut r: Running) -> Option<Running> {
    if r.expect_entry {
        r.expect_entry = false;
        return t.syscall(0).is_ok().then_some(r);
    }
    let res = apply::result(&t).unwrap_or(Errno(libc::EIO).neg());
    let (newfd, cloexec) = (r.plan.newfd, r.plan.cloexec);
    let next = match r.phase {
        Phase::Open if res < 0 || res == newfd as i64 => {
            finish(t, &r, res);
            return None;
        }
        Phase::Open => {
            let fl = if cloexec { libc::O_CLOEXEC as u64 } else { 0 };
            (Phase::Dup { k: res }, libc::SYS_dup3, [res as u64, newfd as u64, fl, 0, 0, 0])
        }
        Phase::Dup { k } => (Phase::Close { ret: res }, libc::SYS_close, [k as u64, 0, 0, 0, 0, 0]),
        Phase::Close { ret } => {
            finish(t, &r, ret);
            return None;
        }
    };
    r.phase = next.0;
    r.expect_entry = true;
    step(t, &r, next.1, next.2).then_some(r)
}
