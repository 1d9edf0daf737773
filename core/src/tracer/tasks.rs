//! Tracee bookkeeping: threads, the processes they belong to, and what processes share
//! (address space for scratch memory, virtual descriptor table).
use crate::dispatch::{Creds, ExitHook, SLOT_SIZE};
use crate::path::FsView;
use crate::tracee::ptrace::Pid;
use crate::vfd::fdtable::FdTable;
use parking_lot::Mutex;
use std::sync::Arc;

pub const SLOTS_PER_REGION: u64 = 64;
pub const REGION_SIZE: u64 = SLOT_SIZE * SLOTS_PER_REGION;

/// The arguments of the mmap vurs injects to give a process a scratch region.
pub const SCRATCH_MMAP_ARGS: [u64; 6] = [
    0,
    REGION_SIZE,
    (libc::PROT_READ | libc::PROT_WRITE) as u64,
    (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64,
    u64::MAX,
    0,
];

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
    /// Credentials and umask, refreshed when the process changes them.
    pub creds: Arc<Mutex<Creds>>,
    /// Its root and virtual cwd (chroot, chdir into a served mount): shared by its
    /// threads and by processes created with CLONE_FS, copied by fork, kept by exec.
    pub fs: Arc<Mutex<FsView>>,
}

impl Proc {
    /// A process with one thread, fresh scratch, these virtual descriptors and creds.
    pub fn new(fds: FdTable, creds: Creds, fs: Arc<Mutex<FsView>>) -> Proc {
        Proc {
            mm: Default::default(),
            fds: Arc::new(Mutex::new(fds)),
            threads: 1,
            creds: Arc::new(Mutex::new(creds)),
            fs,
        }
    }
}

/// Saved state of a call that was replaced by an injected mmap.
#[derive(Debug, Clone)]
pub struct Injected {
    pub nr: u64,
    pub args: [u64; 6],
    pub ip: u64,
}

/// What a thread's next syscall stop continues: at most one piece of work is under way
/// per thread, so the three kinds are one value.
#[derive(Debug, Default)]
pub enum Pending {
    /// Nothing: the next stop is a new call.
    #[default]
    Idle,
    /// A dup2 of a virtual descriptor onto a real number under way (materialize.rs).
    Materializing(super::materialize::Running),
    /// The call was replaced by an mmap of scratch memory; at its exit, the call restarts.
    InjectedMmap(Injected),
    /// Run this hook at the call's exit stop; `line` is its --trace line (empty otherwise).
    ExitHook { hook: ExitHook, line: String },
    /// Getting the filter layers `insmod` added (layers.rs).
    Layering(super::layers::Layering),
}

pub struct Thread {
    pub tgid: Pid,
    pub slot: Option<u64>,
    pub pending: Pending,
    /// Filter layers added at run time that this thread has (see layers.rs).
    pub layers: usize,
}

impl Thread {
    pub fn new(tgid: Pid, layers: usize) -> Thread {
        Thread { tgid, slot: None, pending: Pending::Idle, layers }
    }
}
