//! Virtual descriptors: the numbers that belong to serving modules (`range`), each
//! process's table of them (`fdtable`), and shadow copies in real memfds for what only
//! the kernel can do with a descriptor (`shadow`). The calls on them are decided in
//! dispatch/serve.rs.
#![forbid(unsafe_code)]
pub mod fdtable;
pub mod range;
pub mod shadow;

pub use range::{is_virtual, vfd_base, virtual_range, VFD_COUNT};
