//! `--mount` / `-b` specs and the whole command line: errors are fine, panics are not.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vurs_pathdiff::targets::mount_spec(data);
});
