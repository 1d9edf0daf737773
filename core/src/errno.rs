//! Error text as the C library prints it ("No such file or directory").
pub fn strerror(e: i32) -> String {
    // SAFETY: strerror returns a pointer to a static or thread-local string.
    unsafe { std::ffi::CStr::from_ptr(libc::strerror(e)) }.to_string_lossy().into_owned()
}
