//! Hiding the vDSO from a freshly exec'd tracee (only while a module asks for it, e.g.
//! the time module): the AT_SYSINFO_EHDR entry of its auxiliary vector becomes
//! AT_IGNORE, so its libc falls back to real clock system calls, which trap. Done at the
//! exec stop, before the dynamic loader has run.
use crate::memory;
use crate::ptrace::{self, Pid};

const AT_NULL: u64 = 0;
const AT_IGNORE: u64 = 1;
const AT_SYSINFO_EHDR: u64 = 33;

fn word(pid: Pid, addr: u64) -> Option<u64> {
    let mut b = [0u8; 8];
    memory::read(pid, addr, &mut b).ok()?;
    Some(u64::from_ne_bytes(b))
}

/// Returns whether the entry was found and hidden.
pub fn hide(pid: Pid) -> bool {
    let Ok(regs) = ptrace::get_regs(pid) else {
        return false;
    };
    let sp = crate::arch::regs_sp(&regs);
    let Some(argc) = word(pid, sp) else {
        return false;
    };
    // argc, argv[argc], NULL, envp..., NULL, auxv pairs.
    let mut p = sp + 8 * (argc + 2);
    for _ in 0..100_000 {
        match word(pid, p) {
            Some(0) => break,
            Some(_) => p += 8,
            None => return false,
        }
    }
    p += 8;
    for _ in 0..64 {
        let Some(kind) = word(pid, p) else {
            return false;
        };
        if kind == AT_NULL {
            return false;
        }
        if kind == AT_SYSINFO_EHDR {
            return memory::write(pid, p, &AT_IGNORE.to_ne_bytes()).is_ok();
        }
        p += 16;
    }
    false
}
