//! Per-process table of virtual descriptors (those a serving module owns). Real
//! descriptors are the kernel's business and are not tracked here.
//!
//! Virtual descriptors are numbers in [vfd_base(), vfd_base() + VFD_COUNT), where the base
//! is the system's `fs.nr_open` (2^20 by default): the kernel never hands out a descriptor
//! that high (RLIMIT_NOFILE cannot exceed nr_open), so the seccomp filter can trap calls on
//! them by number alone and calls on real descriptors never stop. The range starts as low
//! as that allows because programs index arrays by descriptor number (bash allocates one
//! slot per number up to the highest it has seen). See docs/architecture.md.
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

pub const VFD_COUNT: i32 = 1 << 16;

/// First virtual descriptor number (read once, before the filter is built).
pub fn vfd_base() -> i32 {
    static BASE: OnceLock<i32> = OnceLock::new();
    *BASE.get_or_init(|| {
        let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .unwrap_or(1 << 20);
        nr_open.clamp(1 << 20, (i32::MAX - VFD_COUNT) as i64) as i32
    })
}

/// The virtual range `[lo, hi)` as the unsigned numbers the filter compares.
pub fn virtual_range() -> (u32, u32) {
    (vfd_base() as u32, (vfd_base() + VFD_COUNT) as u32)
}

pub fn is_virtual(fd: i64) -> bool {
    let fd = fd as i32;
    let base = vfd_base();
    (base..base + VFD_COUNT).contains(&fd)
}

/// An open file description owned by a module (shared by dup and fork).
pub struct OpenFile {
    pub module: Arc<crate::module::Module>,
    /// The mount it was opened through (kept alive past a lazy umount).
    pub mount: Arc<crate::mounts::Mount>,
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
