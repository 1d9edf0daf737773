//! The bodies of the fuzz targets (fuzz/fuzz_targets/*.rs call these), shared with the
//! corpus replay test so both run the same check.
use crate::case::Case;
use arbitrary::{Arbitrary, Unstructured};
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

/// Build a case from `data` and compare vurs with the kernel: panics on a difference
/// (other than the known `dot_final` one, see `check::Outcome::known`).
pub fn resolve_diff(data: &[u8]) -> crate::check::Outcome {
    crate::find_modules();
    let Ok(case) = Case::arbitrary_take_rest(Unstructured::new(data)) else {
        return Default::default();
    };
    crate::check::check(&case).unwrap_or_else(|msg| panic!("{msg}"))
}

/// The `--mount` and `-b` spec parsers, target normalization, and the whole command line
/// (arguments separated by NUL bytes): errors are fine, panics are not.
pub fn mount_spec(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = vurs::cli::parse_mount(&text);
    let _ = vurs::cli::parse_bind(&text);
    let _ = vurs::path::mounts::normalize(&text);
    let args = std::iter::once(OsString::from("vurs"))
        .chain(data.split(|&b| b == 0).map(|a| OsString::from_vec(a.to_vec())));
    if let Ok(cli) = <vurs::cli::Cli as clap::Parser>::try_parse_from(args) {
        for m in &cli.mounts {
            let _ = vurs::cli::parse_mount(m).map(|s| vurs::path::mounts::normalize(&s.target));
        }
        for b in &cli.binds {
            let _ = vurs::cli::parse_bind(b).map(|s| vurs::path::mounts::normalize(&s.target));
        }
    }
}

/// Module options through the loader (first byte: fsremap, uname, time, or `vurs insmod`
/// of a spec), and fsremap mount options and sources through a session: errors are fine;
/// a panic, even one a module's guard turns into an error, is not.
pub fn module_options(data: &[u8]) {
    crate::find_modules();
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let no_panic = |what: &str, err: &str| {
        assert!(!err.contains("panicked"), "{what} {text:?}: {err}");
    };
    match which % 5 {
        0 => {
            if let Err(e) = vurs::module::load("fsremap", &text) {
                no_panic("fsremap options", &e)
            }
        }
        1 => {
            if let Err(e) = vurs::module::load("uname", &text) {
                no_panic("uname options", &e)
            }
        }
        2 => {
            if let Err(e) = vurs::module::load("time", &text) {
                no_panic("time options", &e)
            }
        }
        3 => {
            // `vurs insmod NAME,OPTS` in a session that traps paths.
            let s = fsremap_session();
            let name = ["fsremap", "uname", "time"][usize::from(which / 5) % 3];
            if let Err((_, e)) = s.insmod(&format!("{name},{text}")) {
                no_panic("insmod", &e)
            }
        }
        _ => {
            // fsremap mount: SOURCE\nOPTIONS, or OPTIONS alone on an existing source.
            let s = fsremap_session();
            let dir = std::env::temp_dir();
            let (source, opts) = match text.split_once('\n') {
                Some((src, o)) => (src.to_string(), o),
                None => (dir.display().to_string(), &*text),
            };
            let target = format!("/vurs-fuzz-no-such-dir-{}/t", std::process::id());
            match s.mount("fsremap", &source, &target, opts) {
                Ok(()) => {
                    s.umount(&target, false).expect("umount of a mount just made");
                }
                Err((_, e)) => no_panic("fsremap mount", &e),
            }
            vurs::path::procfs::cleanup();
        }
    }
}

fn fsremap_session() -> vurs::session::Session {
    let m = vurs::module::load("fsremap", "").expect("fsremap module (build the workspace)");
    vurs::session::Session::new(vec![m])
}
