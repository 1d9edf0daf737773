//! The path resolver against the kernel: see tests/pathdiff (vurs-pathdiff).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vurs_pathdiff::targets::resolve_diff(data);
});
