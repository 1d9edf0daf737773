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

/// The virtual cwd of thread `tid`.
pub fn cwd_of(mounts: &MountTable, tid: Pid) -> Option<Vec<u8>> {
    readlink_host(&format!("/proc/{tid}/cwd")).map(|h| to_virtual(mounts, h))
}
