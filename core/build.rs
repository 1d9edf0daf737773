//! Builds the C shim that calls module callbacks with faults contained (csrc/guard.c).
fn main() {
    println!("cargo:rerun-if-changed=csrc/guard.c");
    println!("cargo:rerun-if-changed=../abi/include/vurs_module.h");
    cc::Build::new()
        .file("csrc/guard.c")
        .include("../abi/include")
        .flag_if_supported("-fno-omit-frame-pointer")
        .warnings(true)
        .compile("vurs_guard");
}
