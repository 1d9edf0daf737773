//! Apply a decision at a seccomp stop: skip with a value, rewrite arguments, and resume
//! with or without an exit stop. Uses PTRACE_SET_SYSCALL_INFO (Linux 6.16+) where it
//! works and PTRACE_POKEUSER otherwise.
use crate::arch;
use crate::syscall::Call;
use crate::tracee::ptrace::{self, Error, Stopped, SyscallInfo};
use std::sync::atomic::{AtomicU8, Ordering};

/// 0 unknown, 1 SET_SYSCALL_INFO works, 2 use POKEUSER.
static SET_METHOD: AtomicU8 = AtomicU8::new(0);

/// Skip the call: the tracee sees `value` as its result.
pub fn skip(t: &Stopped, value: i64) -> Result<(), Error> {
    t.poke_user(arch::OFF_ORIG_RAX, u64::MAX)?;
    t.poke_user(arch::OFF_RAX, value as u64)
}

/// Change number and arguments of the call at its seccomp stop.
pub fn set_call(t: &Stopped, call: &Call, nr: i64, args: &[u64; 6]) -> Result<(), Error> {
    if SET_METHOD.load(Ordering::Relaxed) != 2 {
        let info = SyscallInfo {
            op: ptrace::PTRACE_SYSCALL_INFO_SECCOMP,
            arch: arch::AUDIT_ARCH,
            instruction_pointer: call.ip,
            stack_pointer: call.sp,
            nr_or_rval: nr as u64,
            args: *args,
            ..Default::default()
        };
        match t.set_syscall_info(&info) {
            Ok(()) => {
                SET_METHOD.store(1, Ordering::Relaxed);
                return Ok(());
            }
            Err(Error::Gone) => return Err(Error::Gone),
            Err(Error::Os(_)) => SET_METHOD.store(2, Ordering::Relaxed),
        }
    }
    if nr != call.nr {
        t.poke_user(arch::OFF_ORIG_RAX, nr as u64)?;
    }
    for (i, (&new, &old)) in args.iter().zip(call.args.iter()).enumerate() {
        if new != old {
            t.poke_user(arch::arg_offset(i), new)?;
        }
    }
    Ok(())
}

/// Replace the call at a syscall-entry or seccomp stop by `nr(args)` (register writes,
/// which work at both kinds of stop).
pub fn replace_call(t: &Stopped, nr: i64, args: &[u64; 6]) -> Result<(), Error> {
    t.poke_user(arch::OFF_ORIG_RAX, nr as u64)?;
    for (i, &a) in args.iter().enumerate() {
        t.poke_user(arch::arg_offset(i), a)?;
    }
    Ok(())
}

/// Set the result of a call at its exit stop.
pub fn set_result(t: &Stopped, value: i64) -> Result<(), Error> {
    t.poke_user(arch::OFF_RAX, value as u64)
}

/// Read the result of a call at its exit stop.
pub fn result(t: &Stopped) -> Result<i64, Error> {
    let r = t.get_regs()?;
    Ok(arch::regs_ret(&r))
}

/// Re-execute `nr(args)` from the syscall instruction once resumed (after an injected call).
pub fn restart(t: &Stopped, nr: u64, args: &[u64; 6], ip: u64) -> Result<(), Error> {
    let mut r = t.get_regs()?;
    arch::regs_restart(&mut r, nr, args, ip);
    t.set_regs(&r)
}
