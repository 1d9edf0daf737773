//! Who makes a trapped call: the caller's thread, process, virtual descriptors and
//! credentials (`Caller`), and the index the tracer keeps of every task so that the
//! notification engine's threads can find them (`TaskIndex`).
#![forbid(unsafe_code)]
use crate::tracee::ptrace::Pid;
use crate::vfd::fdtable::FdTable;
use parking_lot::Mutex;
use std::sync::Arc;

pub struct Caller {
    pub tid: Pid,
    pub tgid: Pid,
    /// The process's virtual descriptors.
    pub fds: Arc<Mutex<FdTable>>,
    pub creds: Creds,
}

/// What a process runs as (given to modules with each call; the notification engine
/// carries calls out with its file-system ids, groups and umask).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Creds {
    pub uid: u32,
    pub euid: u32,
    pub suid: u32,
    pub gid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub fsuid: u32,
    pub fsgid: u32,
    pub groups: Arc<[u32]>,
    pub umask: u32,
}

impl Caller {
    /// The caller as modules see it (`struct vurs_caller`); borrows `self.creds.groups`.
    pub fn abi(&self) -> vurs_abi::vurs_caller {
        let cr = &self.creds;
        vurs_abi::vurs_caller {
            pid: self.tgid,
            tid: self.tid,
            uid: cr.uid,
            euid: cr.euid,
            gid: cr.gid,
            egid: cr.egid,
            suid: cr.suid,
            sgid: cr.sgid,
            fsuid: cr.fsuid,
            fsgid: cr.fsgid,
            umask: cr.umask,
            ngroups: cr.groups.len() as u32,
            groups: cr.groups.as_ptr(),
        }
    }
}

impl Creds {
    /// vurs's own (the first tracee starts with them).
    pub fn own() -> Creds {
        Creds::read(std::process::id() as i32).unwrap_or_default()
    }

    /// Read from /proc/<tid>/status (after the tracee changed them).
    pub fn read(tid: i32) -> Option<Creds> {
        use crate::path::procfs::{status, status_field};
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
            suid: *uid.get(2)?,
            gid: *gid.first()?,
            egid: *gid.get(1)?,
            sgid: *gid.get(2)?,
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
    pub fn caller(&self, tid: Pid) -> Option<Caller> {
        let v = self.0.read().get(&tid)?.clone();
        let creds = v.creds.lock().clone();
        Some(Caller { tid, tgid: v.tgid, fds: v.fds.clone(), creds })
    }
}
