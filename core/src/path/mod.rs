//! The path subsystem: resolution of a caller's path in the virtual namespace (`resolve`,
//! with its caches), the mount table and its reverse translation (`mounts`), and what vurs
//! reads and synthesizes in /proc (`procfs`). Nothing here knows of tracee registers or of
//! decisions: dispatch/paths.rs puts these pieces to work for one call.
pub mod mounts;
pub mod procfs;
pub mod resolve;
#[cfg(test)]
mod tests;

use crate::tracee::ptrace::Pid;
use mounts::MountTable;

pub fn readlink_host(p: &str) -> Option<Vec<u8>> {
    std::fs::read_link(p).ok().map(|p| std::os::unix::ffi::OsStringExt::into_vec(p.into_os_string()))
}

/// Virtual path of a host path: through the mounts, else itself.
pub fn to_virtual(mounts: &MountTable, host: Vec<u8>) -> Vec<u8> {
    mounts.reverse(&host).unwrap_or(host)
}

/// The virtual cwd of thread `tid` (in the session's namespace: see `FsView::shown` for
/// what the process itself is shown), `view` being its process's own.
pub fn cwd_of(mounts: &MountTable, tid: Pid, view: &FsView) -> Option<Vec<u8>> {
    let host = readlink_host(&format!("/proc/{tid}/cwd"))?;
    match view.parked_cwd(&host) {
        Some(v) => Some(v.to_vec()),
        None => Some(to_virtual(mounts, host)),
    }
}

/// A process's own view of the tree, where it differs from the session's: its root after
/// chroot(2), and its cwd while that lies in a served mount (the kernel cannot be there:
/// its cwd is then the parking directory, `procfs::parking_dir`). Paths are canonical
/// virtual paths of the session's namespace, without a trailing '/'. A fork copies it, an
/// exec keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FsView {
    /// The root (None: the session's `/`).
    pub root: Option<std::sync::Arc<[u8]>>,
    /// The cwd in a served mount; it holds while the kernel's cwd is the parking
    /// directory (a chdir or fchdir elsewhere, which need not trap, moves the kernel's).
    pub cwd: Option<std::sync::Arc<[u8]>>,
}

impl FsView {
    /// The session's own view: nothing differs.
    pub const NONE: FsView = FsView { root: None, cwd: None };

    /// Nothing differs from the session's view.
    pub fn is_none(&self) -> bool {
        self.root.is_none() && self.cwd.is_none()
    }

    /// The root as a prefix ("" for `/`).
    pub fn root(&self) -> &[u8] {
        self.root.as_deref().unwrap_or(b"")
    }

    /// The virtual cwd, when the kernel's cwd (`host`, as /proc/TID/cwd reads) is the
    /// parking directory.
    pub fn parked_cwd(&self, host: &[u8]) -> Option<&[u8]> {
        let cwd = self.cwd.as_deref()?;
        (Some(host) == procfs::parking_dir()).then_some(cwd)
    }

    /// A virtual path as the process is shown it (getcwd, readlink of /proc magic links):
    /// relative to its root; a path outside the root keeps its full name, prefixed by
    /// "(unreachable)" when `unreachable` (as the kernel's getcwd does).
    pub fn shown(&self, virt: &[u8], unreachable: bool) -> Vec<u8> {
        let root = self.root();
        if root.is_empty() {
            return virt.to_vec();
        }
        if virt == root {
            return b"/".to_vec();
        }
        if let Some(rest) = virt.strip_prefix(root).filter(|r| r.first() == Some(&b'/')) {
            return rest.to_vec();
        }
        if unreachable {
            let mut v = b"(unreachable)".to_vec();
            v.extend_from_slice(virt);
            return v;
        }
        virt.to_vec()
    }
}
