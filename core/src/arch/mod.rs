//! Everything that depends on the CPU architecture lives below this module: register
//! layout, how a call is skipped, the length of the syscall instruction, the audit arch.
//! Adding aarch64 means adding `aarch64.rs` with the same items.
#![forbid(unsafe_code)]
#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub use x86_64::*;

#[cfg(not(target_arch = "x86_64"))]
compile_error!("vurs supports x86_64 only so far (see docs/architecture.md: porting)");
