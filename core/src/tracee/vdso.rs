//! Hiding the vDSO from a freshly exec'd tracee (only while a module asks for it, e.g.
//! the time module): the AT_SYSINFO_EHDR entry of its auxiliary vector becomes
//! AT_IGNORE, so its libc falls back to real clock system calls, which trap. Done at the
//! exec stop, before the dynamic loader has run.
#![forbid(unsafe_code)]
use crate::tracee::memory;
use crate::tracee::ptrace::{self, Pid};

const AT_NULL: u64 = 0;
const AT_IGNORE: u64 = 1;
const AT_SYSINFO_EHDR: u64 = 33;

/// Reads the new stack word by word, a page at a time (one process_vm_readv per page).
struct StackReader {
    pid: Pid,
    base: u64,
    page: Vec<u8>,
}

impl StackReader {
    fn word(&mut self, addr: u64) -> Option<u64> {
        if addr < self.base || addr + 8 > self.base + self.page.len() as u64 {
            let start = addr & !4095;
            let mut page = vec![0u8; 4096];
            memory::read(self.pid, start, &mut page).ok()?;
            self.base = start;
            self.page = page;
        }
        let off = (addr - self.base) as usize;
        Some(u64::from_ne_bytes(self.page[off..off + 8].try_into().ok()?))
    }
}

/// Returns whether the entry was found and hidden.
pub fn hide(pid: Pid) -> bool {
    let Ok(regs) = ptrace::get_regs(pid) else {
        return false;
    };
    let sp = crate::arch::regs_sp(&regs);
    let mut r = StackReader { pid, base: 0, page: Vec::new() };
    let Some(argc) = r.word(sp) else {
        return false;
    };
    // argc, argv[argc], NULL, envp..., NULL, auxv pairs.
    let mut p = sp + 8 * (argc + 2);
    for _ in 0..100_000 {
        match r.word(p) {
            Some(0) => break,
            Some(_) => p += 8,
            None => return false,
        }
    }
    p += 8;
    for _ in 0..64 {
        let Some(kind) = r.word(p) else {
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
