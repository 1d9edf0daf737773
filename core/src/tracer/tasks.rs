//! Tracee bookkeeping: threads, the processes they belong to, and what processes share
//! (address space for scratch memory, virtual descriptor table).
use crate::fdtable::FdTable;
use crate::ptrace::Pid;
use parking_lot::Mutex;
use std::sync::Arc;

/// Scratch memory: a private anonymous mapping in the tracee that no program owns, cut
/// into one slot per thread that needs one (rewritten strings go there, never below the
/// stack pointer). Re-created lazily after exec.
pub const SLOT_SIZE: u64 = 12 * 1024;
pub const SLOTS_PER_REGION: u64 = 64;
pub const REGION_SIZE: u64 = SLOT_SIZE * SLOTS_PER_REGION;

#[derive(Default)]
pub struct Mm {
    pub free: Vec<u64>,
    /// The last mapping attempt failed: don't loop trying again.
    pub failed: bool,
}

impl Mm {
    pub fn add_region(&mut self, base: u64) {
        for i in (0..SLOTS_PER_REGION).rev() {
            self.free.push(base + i * SLOT_SIZE);
        }
    }
}

/// A process (thread group).
pub struct Proc {
    pub mm: Arc<Mutex<Mm>>,
    pub fds: Arc<Mutex<FdTable>>,
    pub threads: usize,
}

/// Saved state of a call that was replaced by an injected mmap.
#[derive(Debug, Clone)]
pub struct Injected {
    pub nr: u64,
    pub args: [u64; 6],
    pub ip: u64,
}

/// What to do at the exit stop of the current call.
#[derive(Debug, Clone)]
pub enum ExitHook {
    /// Reverse-translate the link text a readlink wrote to `buf` (of `size` bytes).
    ReverseLink { buf: u64, size: u64 },
    /// At the end of a real directory, add entries for mount points missing on the host.
    Dirents { fd: i32, buf: u64, cap: u64, entries: Vec<(Vec<u8>, u8)> },
    /// Remove a synthesized file the call has opened.
    Unlink(Vec<u8>),
    /// Only log the result (--trace).
    Log,
}

pub struct Thread {
    pub tgid: Pid,
    pub slot: Option<u64>,
    pub exit_hook: Option<(ExitHook, String)>,
    pub injected: Option<Injected>,
}
