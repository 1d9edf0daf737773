//! Errors as the tracee sees them: `Errno` (one errno value; `neg()` is the syscall's return
//! value, `-errno`), and their text as the C library prints it ("No such file or directory").
#![forbid(unsafe_code)]
use std::fmt;

/// One errno value (positive, as in `libc::ENOENT`). A call that fails returns `neg()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

impl Errno {
    /// The value a failing system call returns: `-errno`.
    pub const fn neg(self) -> i64 {
        -(self.0 as i64)
    }

    /// The errno of a raw system call result, if it is one (-4095..0).
    pub const fn of_result(v: i64) -> Option<Errno> {
        if v < 0 && v >= -4095 {
            Some(Errno(-v as i32))
        } else {
            None
        }
    }

    /// The errno of an I/O error (EIO when it carries none).
    pub fn of_io(e: &std::io::Error) -> Errno {
        Errno(e.raw_os_error().unwrap_or(libc::EIO))
    }
}

impl From<Errno> for i64 {
    fn from(e: Errno) -> i64 {
        e.neg()
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&strerror(self.0))
    }
}

pub fn strerror(e: i32) -> String {
    // std's text is the C library's, with " (os error N)" after it.
    let text = std::io::Error::from_raw_os_error(e).to_string();
    match text.rfind(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_round_trips_through_a_result() {
        assert_eq!(Errno(libc::ENOENT).neg(), -2);
        assert_eq!(Errno::of_result(-2), Some(Errno(libc::ENOENT)));
        assert_eq!(Errno::of_result(0), None);
        assert_eq!(Errno::of_result(-4096), None);
        assert_eq!(i64::from(Errno(libc::EROFS)), Errno(libc::EROFS).neg());
    }
}
