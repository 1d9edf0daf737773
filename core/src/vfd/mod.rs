//! Virtual descriptors: the numbers that belong to serving modules (`range`) and each
//! process's table of them (`fdtable`). The calls on them are decided in dispatch/serve.rs.
#![forbid(unsafe_code)]
pub mod fdtable;
pub mod range;

pub use range::{is_virtual, vfd_base, virtual_range, VFD_COUNT};
