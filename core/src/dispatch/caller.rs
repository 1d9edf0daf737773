//! Who makes a trapped call: the caller's thread, process, virtual descriptors and
//! credentials (`Caller`), and the index the tracer keeps of every task so that the
//! notification engine's threads can find them (`TaskIndex`).
#![forbid(unsafe_code)]
use crate::path::FsView;
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
    /// The process's root and virtual cwd, as they were when the call was made (`set_fs`
    /// changes them).
    pub fs: FsView,
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
    /// The session's view of the ids, when a module set one (`vurs_services.set_ids`, the
    /// fakeroot module): what modules see and vurs's own permission checks use. The fields
    /// above stay the kernel's (the notification engine acts with them). A fork copies it
    /// with the rest, an exec keeps it, `refresh` keeps it.
    pub view: Option<Arc<Ids>>,
}

pub use crate::module::Ids;

impl Caller {
    /// The caller as modules see it (`struct vurs_caller`); borrows `self.creds.groups`.
    /// Shows the session's view of the ids (`Creds::view`) when there is one.
    pub fn abi(&self) -> vurs_abi::vurs_caller {
        let cr = &self.creds;
        let ids = match &cr.view {
            Some(v) => (v.uid, v.euid, v.suid, v.fsuid, v.gid, v.egid, v.sgid, v.fsgid, &v.groups[..]),
            None => (cr.uid, cr.euid, cr.suid, cr.fsuid, cr.gid, cr.egid, cr.sgid, cr.fsgid, &cr.groups[..]),
        };
        let (uid, euid, suid, fsuid, gid, egid, sgid, fsgid, groups) = ids;
        vurs_abi::vurs_caller {
            pid: self.tgid,
            tid: self.tid,
            uid,
            euid,
            gid,
            egid,
            suid,
            sgid,
            fsuid,
            fsgid,
            umask: cr.umask,
            ngroups: groups.len() as u32,
            groups: groups.as_ptr(),
        }
    }
}

/// Each known task's shared credentials and file-tree view (the process's `Creds` and
/// `FsView`, as the tracer keeps them), so that `set_ids`, called inside a module's
/// handler, and `set_fs`, called by a decision, reach the process and not only the copy
/// the caller holds. Kept by `TaskIndex::insert` / `remove`; one session per vurs
/// process, so one map.
type Shared = (Arc<Mutex<Creds>>, Arc<Mutex<FsView>>);
static SHARED: parking_lot::RwLock<Option<rustc_hash::FxHashMap<Pid, Shared>>> =
    parking_lot::RwLock::new(None);

/// Some process has had a view of its own (a root or a virtual cwd) since the session
/// began: the fast path then asks which (`fs_of`).
static ANY_VIEW: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A module set a view of some process's ids: path calls with no mount in the session
/// are still looked at (/proc/PID/status shows the view).
static VIEWS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether a module set a view of some process's ids in this session.
pub fn views_exist() -> bool {
    VIEWS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Set the session's view of the ids of the process of thread `tid` (see `Creds::view`).
pub fn set_view(tid: Pid, ids: Ids) -> Result<(), i32> {
    let shared = SHARED.read();
    let (creds, _) = shared.as_ref().and_then(|m| m.get(&tid)).ok_or(libc::ESRCH)?;
    creds.lock().view = Some(Arc::new(ids));
    VIEWS.store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

/// Change the root or virtual cwd of the process of thread `tid` (chroot, chdir).
pub fn set_fs(tid: Pid, change: impl FnOnce(&mut FsView)) -> Result<(), i32> {
    let shared = SHARED.read();
    let (_, fs) = shared.as_ref().and_then(|m| m.get(&tid)).ok_or(libc::ESRCH)?;
    let mut fs = fs.lock();
    change(&mut fs);
    if !fs.is_none() {
        ANY_VIEW.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(())
}

/// The root and virtual cwd of the process of thread `tid`, if it has any (cheap while no
/// process of the session ever had one).
pub fn fs_of(tid: Pid) -> Option<FsView> {
    if !ANY_VIEW.load(std::sync::atomic::Ordering::Relaxed) {
        return None;
    }
    let shared = SHARED.read();
    let fs = shared.as_ref()?.get(&tid)?.1.lock().clone();
    (!fs.is_none()).then_some(fs)
}

/// The session's view of the ids of task `tid`'s process, if a module set one.
pub fn view_of(tid: Pid) -> Option<Arc<Ids>> {
    SHARED.read().as_ref()?.get(&tid)?.0.lock().view.clone()
}

impl Creds {
    /// Take the kernel's ids and umask of `new` (read again after a change), keeping the
    /// session's view.
    pub fn refresh(&mut self, new: Creds) {
        let view = self.view.take();
        *self = Creds { view, ..new };
    }

    /// The ids vurs's own permission checks use: the session's view, else the kernel's.
    pub fn effective(&self) -> Ids {
        match &self.view {
            Some(v) => (**v).clone(),
            None => Ids {
                uid: self.uid,
                euid: self.euid,
                suid: self.suid,
                fsuid: self.fsuid,
                gid: self.gid,
                egid: self.egid,
                sgid: self.sgid,
                fsgid: self.fsgid,
                groups: self.groups.to_vec(),
            },
        }
    }

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
            view: None,
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
    pub fs: Arc<Mutex<FsView>>,
}

/// Thread id -> its task view.
#[derive(Default)]
pub struct TaskIndex(parking_lot::RwLock<rustc_hash::FxHashMap<Pid, Arc<TaskView>>>);

impl TaskIndex {
    pub fn insert(&self, tid: Pid, view: Arc<TaskView>) {
        SHARED
            .write()
            .get_or_insert_with(Default::default)
            .insert(tid, (view.creds.clone(), view.fs.clone()));
        self.0.write().insert(tid, view);
    }
    pub fn remove(&self, tid: Pid) {
        if let Some(m) = SHARED.write().as_mut() {
            m.remove(&tid);
        }
        self.0.write().remove(&tid);
    }
    /// The caller behind thread `tid`, if known.
    pub fn caller(&self, tid: Pid) -> Option<Caller> {
        let v = self.0.read().get(&tid)?.clone();
        let creds = v.creds.lock().clone();
        let fs = v.fs.lock().clone();
        Some(Caller { tid, tgid: v.tgid, fds: v.fds.clone(), creds, fs })
    }
}
