//! Per-process table of virtual descriptors (those a serving module owns): number ->
//! (open file description, close-on-exec). Real descriptors are the kernel's business and
//! are not tracked here; the numbers themselves are vfd/range.rs.
#![forbid(unsafe_code)]
use super::range::{vfd_base, VFD_COUNT};
use std::collections::BTreeMap;
use std::sync::Arc;

/// An open file description owned by a module (shared by dup and fork).
pub struct OpenFile {
    pub module: Arc<crate::module::Module>,
    /// The mount it was opened through (kept alive past a lazy umount).
    pub mount: Arc<crate::path::mounts::Mount>,
    pub handle: usize,
    pub path: String,
    pub flags: i32,
    pub offset: parking_lot::Mutex<i64>,
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        self.module.close(self.handle);
        self.mount.open_files.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        self.module.users.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[derive(Clone)]
pub struct Entry {
    pub file: Arc<OpenFile>,
    pub cloexec: bool,
}

#[derive(Clone, Default)]
pub struct FdTable {
    fds: BTreeMap<i32, Entry>,
}

impl FdTable {
    pub fn get(&self, fd: i32) -> Option<&Entry> {
        self.fds.get(&fd)
    }
    /// Lowest free virtual number >= min.
    pub fn alloc(&mut self, min: i32, entry: Entry) -> Option<i32> {
        let base = vfd_base();
        let mut n = min.max(base);
        for (&k, _) in self.fds.range(n..) {
            if k != n {
                break;
            }
            n += 1;
        }
        if n >= base + VFD_COUNT {
            return None;
        }
        self.fds.insert(n, entry);
        Some(n)
    }
    pub fn set(&mut self, fd: i32, entry: Entry) {
        self.fds.insert(fd, entry);
    }
    pub fn remove(&mut self, fd: i32) -> Option<Entry> {
        self.fds.remove(&fd)
    }
    pub fn remove_range(&mut self, lo: i32, hi: i32) {
        self.fds.retain(|&k, _| k < lo || k > hi);
    }
    pub fn set_cloexec_range(&mut self, lo: i32, hi: i32) {
        for (_, e) in self.fds.range_mut(lo..=hi.max(lo)) {
            e.cloexec = true;
        }
    }
    /// At exec: descriptors marked close-on-exec go.
    pub fn exec(&mut self) {
        self.fds.retain(|_, e| !e.cloexec);
    }
    pub fn is_empty(&self) -> bool {
        self.fds.is_empty()
    }
}
