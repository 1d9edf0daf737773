//! Typed system calls: the table of what each trapped call's arguments mean, and the
//! decoding of a stop's raw registers into a `Call`.
#![forbid(unsafe_code)]
pub mod decode;
pub mod table;

pub use decode::Call;
