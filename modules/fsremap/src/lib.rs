//! fsremap: show a host file or directory (SOURCE) at another path (TARGET).
//! A redirect module: paths below TARGET map to paths below SOURCE, and the kernel does
//! the work on real descriptors. Option `ro`: every write fails with EROFS (the core
//! enforces it for every mount; this module only accepts the option).
#![forbid(unsafe_code)]
use std::path::{Path, PathBuf};
use vurs_abi::sdk::{Errno, Module, Options, Services};
use vurs_abi::*;

pub struct Fsremap;

pub struct Mnt {
    source: PathBuf,
}

impl Module for Fsremap {
    type Mount = Mnt;

    fn init(_svc: Services, options: &Options) -> Result<Self, String> {
        if let Some((k, _)) = options.0.first() {
            return Err(format!("unknown option {k:?} (fsremap takes options per mount: ro)"));
        }
        Ok(Fsremap)
    }

    fn mount(&self, source: &str, _target: &str, options: &Options) -> Result<Mnt, (Errno, String)> {
        for (k, _) in &options.0 {
            if k != "ro" && k != "rw" {
                return Err((Errno(libc::EINVAL), format!("fsremap: unknown mount option {k:?}")));
            }
        }
        let source = std::fs::canonicalize(source)
            .map_err(|e| (Errno(e.raw_os_error().unwrap_or(libc::ENOENT)), format!("{source}: {e}")))?;
        Ok(Mnt { source })
    }

    fn redirect(&self, m: &Mnt, subpath: &Path, _access: u32) -> Result<PathBuf, Errno> {
        Ok(if subpath.as_os_str().is_empty() { m.source.clone() } else { m.source.join(subpath) })
    }
}

vurs_abi::export_module! {
    module: Fsremap,
    name: "fsremap",
    description: "show a host file or directory at another path (redirect; option ro)",
    flags: VURS_F_PATH_REDIRECT | VURS_F_SUBTREE,
    syscalls: [],
}
