//! Differential check of vurs's path resolver against the kernel (issue 9).
//!
//! A [`case::Case`] (a tree, source trees mounted over parts of it with fsremap, and
//! lookups) is built twice ([`world::Worlds`]): as the host vurs works on, and as the
//! virtual view made real. [`check::check`] then asks vurs and the kernel the same lookups
//! and wants the same object or the same errno from both. The fuzz targets in `fuzz/` feed
//! it arbitrary cases; `tests/replay.rs` replays the kept corpus; `tests/regressions.rs`
//! holds the differences found, spelled out.
pub mod case;
pub mod check;
pub mod targets;
pub mod world;

/// Point the module loader at the workspace's built modules, unless told otherwise
/// (`target/release` or `target/debug`, next to the running test or fuzz binary's
/// `deps` directory, or `$CARGO_TARGET_DIR`).
pub fn find_modules() {
    if std::env::var_os("VURS_MODULE_PATH").is_some() {
        return;
    }
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        dirs.push(std::path::PathBuf::from(d).join("release"));
    }
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    dirs.push(repo.join("target/release"));
    if let Ok(exe) = std::env::current_exe() {
        for a in exe.ancestors().skip(1).take(3) {
            dirs.push(a.to_path_buf());
        }
    }
    if let Some(d) = dirs.into_iter().find(|d| d.join("libfsremap.so").is_file()) {
        std::env::set_var("VURS_MODULE_PATH", d);
    }
}
