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
    /// Credentials and umask, refreshed when the process changes them.
    pub creds: Arc<Mutex<Creds>>,
}

impl Proc {
    /// A process with one thread, fresh scratch, these virtual descriptors and creds.
    pub fn new(fds: FdTable, creds: Creds) -> Proc {
        Proc {
            mm: Default::default(),
            fds: Arc::new(Mutex::new(fds)),
            threads: 1,
            creds: Arc::new(Mutex::new(creds)),
        }
    }
}

/// What a process runs as (given to modules with each call; the notification engine
/// carries calls out with its file-system ids, groups and umask).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Creds {
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
    pub fsuid: u32,
    pub fsgid: u32,
    pub groups: Arc<[u32]>,
    pub umask: u32,
}

impl Creds {
    /// vurs's own (the first tracee starts with them).
    pub fn own() -> Creds {
        Creds::read(std::process::id() as i32).unwrap_or_default()
    }

    /// Read from /proc/<tid>/status (after the tracee changed them).
    pub fn read(tid: i32) -> Option<Creds> {
        use crate::procfs::{status, status_field};
        let text = status(tid)?;
        let ids = |name: &str| -> Option<Vec<u32>> {
            Some(status_field(&text, name)?.split_whitespace().filter_map(|v| v.parse().ok()).collect())
        };
        let (uid, gid) = (ids("Uid")?, ids("Gid")?);
        let groups: Arc<[u32]> = ids("Groups").unwrap_or_default().into();
        let umask =
            status_field(&text, "Umask").and_then(|v| u32::from_str_radix(v, 8).ok()).unwrap_or(0o022);
        Some(Creds {
            uid: *uid.first()?,
            euid: *uid.get(1)?,
            gid: *gid.first()?,
            egid: *gid.get(1)?,
            fsuid: *uid.get(3)?,
            fsgid: *gid.get(3)?,
            groups,
            umask,
        })
    }
}

/// What the notification engine's threads need to know of a task: the process it belongs
/// to, that process's virtual descriptors and credentials. Kept by the tracer, which
/// sees every task come and go.
pub struct TaskView {
    pub tgid: Pid,
    pub fds: Arc<Mutex<FdTable>>,
    pub creds: Arc<Mutex<Creds>>,
}

/// Thread id -> its task view.
#[derive(Default)]
pub struct TaskIndex(parking_lot::RwLock<rustc_hash::FxHashMap<Pid, Arc<TaskView>>>);

impl TaskIndex {
    pub fn insert(&self, tid: Pid, view: Arc<TaskView>) {
        self.0.write().insert(tid, view);
    }
    pub fn remove(&self, tid: Pid) {
        self.0.write().remove(&tid);
    }
    /// The caller behind thread `tid`, if known.
    pub fn caller(&self, tid: Pid) -> Option<crate::dispatch::Caller> {
        let v = self.0.read().get(&tid)?.clone();
        let creds = v.creds.lock().clone();
        Some(crate::dispatch::Caller { tid, tgid: v.tgid, fds: v.fds.clone(), creds })
    }
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
    /// Reverse-translate the link text a readlink wrote to `buf` (of `size` bytes); `path`
    /// is the magic link itself, as vurs can read it.
    ReverseLink { buf: u64, size: u64, path: Vec<u8> },
    /// At the end of a real directory, add entries for mount points missing on the host.
    Dirents { fd: i32, buf: u64, cap: u64, entries: Vec<(Vec<u8>, u8)> },
    /// Re-read the process's credentials and umask (it changed them).
    RefreshCreds,
    /// Remove a synthesized file the call has opened.
    Unlink(Vec<u8>),
    /// Forget the resolution caches again (the call changed the tree; see
    /// dispatch/paths.rs).
    ForgetWalks,
    /// Only log the result (--trace).
    Log,
}

pub struct Thread {
    pub tgid: Pid,
    /// A dup2 of a virtual descriptor onto a real number under way.
    pub materializing: Option<super::materialize::Running>,
    pub slot: Option<u64>,
    pub exit_hook: Option<(ExitHook, String)>,
    pub injected: Option<Injected>,
}

impl Thread {
    pub fn new(tgid: Pid) -> Thread {
        Thread { tgid, slot: None, exit_hook: None, injected: None, materializing: None }
    }
}
