//! The virtual-descriptor range: which descriptor numbers belong to serving modules.
//!
//! Virtual descriptors are numbers in [vfd_base(), vfd_base() + VFD_COUNT), where the base
//! is the system's `fs.nr_open` (2^20 by default): the kernel never hands out a descriptor
//! that high (RLIMIT_NOFILE cannot exceed nr_open), so the seccomp filter can trap calls on
//! them by number alone and calls on real descriptors never stop. The range starts as low
//! as that allows because programs index arrays by descriptor number (bash allocates one
//! slot per number up to the highest it has seen). See docs/architecture.md.
#![forbid(unsafe_code)]
use std::sync::OnceLock;

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
