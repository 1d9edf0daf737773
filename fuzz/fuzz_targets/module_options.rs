//! Module options (fsremap, uname, time) and fsremap mount options: errors are fine,
//! panics are not.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vurs_pathdiff::targets::module_options(data);
});
