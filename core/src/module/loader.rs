//! Finding and loading a module: dlopen, descriptor and version checks, init.
use super::{c_str_lossy, services, Module};
use std::ffi::CString;
use std::path::{Path, PathBuf};
use vurs_abi::*;

/// Smallest descriptor a v1 module may export (all 1.0 fields).
const MIN_DESC_SIZE: usize = std::mem::size_of::<vurs_module>();

/// Where `NAME` is looked for: $VURS_MODULE_PATH, next to the vurs binary, ../lib/vurs.
pub fn search_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("VURS_MODULE_PATH")
        .map(|v| std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()).collect())
        .unwrap_or_default();
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            dirs.push(dir.to_path_buf());
            dirs.push(dir.join("../lib/vurs"));
        }
    }
    dirs
}

/// Resolve a module name (or path, if it contains '/') to a file.
pub fn find_module_file(name: &str) -> Result<PathBuf, String> {
    if name.is_empty() {
        return Err("empty module name".into());
    }
    if name.contains('/') {
        let p = PathBuf::from(name);
        return if p.exists() {
            Ok(p)
        } else {
            Err(format!("module file {name}: No such file or directory"))
        };
    }
    let candidates = if name.ends_with(".so") {
        vec![name.to_string(), format!("lib{name}")]
    } else {
        vec![name.to_string(), format!("{name}.so"), format!("lib{name}.so")]
    };
    for dir in search_dirs() {
        for c in &candidates {
            let p = dir.join(c);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err(format!("module {name} not found (searched $VURS_MODULE_PATH, next to vurs, ../lib/vurs)"))
}

/// Load and initialize a module.
pub fn load(name: &str, options: &str) -> Result<Module, String> {
    let path = find_module_file(name)?;
    load_file(&path, options)
}

fn load_file(path: &Path, options: &str) -> Result<Module, String> {
    let shown = path.display();
    // SAFETY: loading a shared object runs its constructors; that is what loading a
    // module means, and the user asked for it.
    let lib = unsafe { libloading::Library::new(path) }.map_err(|e| format!("module {shown}: {e}"))?;
    // SAFETY: we only read the symbol's address; the descriptor is checked below.
    let desc: *const vurs_module = unsafe {
        match lib.get::<*const vurs_module>(format!("{VURS_MODULE_SYMBOL}\0").as_bytes()) {
            Ok(sym) => *sym,
            Err(_) => {
                return Err(format!("module {shown}: not a vurs module (no symbol {VURS_MODULE_SYMBOL})"))
            }
        }
    };
    if desc.is_null() {
        return Err(format!("module {shown}: not a vurs module (null descriptor)"));
    }
    // SAFETY: the symbol is a descriptor; we read its header first.
    let d = unsafe { &*desc };
    if d.abi_major != VURS_ABI_MAJOR {
        return Err(format!(
            "module {shown}: ABI {}.{} is not supported (vurs has ABI {VURS_ABI_MAJOR}.{VURS_ABI_MINOR})",
            d.abi_major, d.abi_minor
        ));
    }
    if (d.size as usize) < MIN_DESC_SIZE {
        return Err(format!("module {shown}: descriptor of {} bytes is too small for ABI 1.0", d.size));
    }
    // SAFETY: strings in the descriptor are NUL-terminated by contract.
    let name = unsafe { c_str_lossy(d.name) };
    if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == ',' || c == '/') {
        return Err(format!("module {shown}: invalid module name {name:?}"));
    }
    let description = unsafe { c_str_lossy(d.description) };
    if d.nsyscalls > 1024 {
        return Err(format!("module {shown}: declares {} system calls (at most 1024)", d.nsyscalls));
    }
    let syscalls = if d.syscalls.is_null() || d.nsyscalls == 0 {
        Vec::new()
    } else {
        // SAFETY: the module declares nsyscalls entries.
        unsafe { std::slice::from_raw_parts(d.syscalls, d.nsyscalls as usize) }.to_vec()
    };
    let mut auto_mounts = Vec::new();
    if !d.auto_mounts.is_null() {
        for i in 0..64 {
            // SAFETY: a NULL-terminated array of strings, by contract.
            let p = unsafe { *d.auto_mounts.add(i) };
            if p.is_null() {
                break;
            }
            auto_mounts.push(unsafe { c_str_lossy(p) });
        }
    }
    let init = d.init.ok_or_else(|| format!("module {shown}: descriptor has no init"))?;
    let copts = CString::new(options).map_err(|_| format!("module {shown}: NUL in options"))?;
    let mut err = [0u8; 512];
    // SAFETY: services table is 'static; options and err are valid for the call.
    let inst = unsafe { init(services::table(), copts.as_ptr(), err.as_mut_ptr().cast(), err.len()) };
    if inst.is_null() {
        let reason = super::err_string(&err);
        let reason = if reason.is_empty() { "init failed".to_string() } else { reason };
        return Err(format!("module {name} ({shown}): {reason}"));
    }
    Ok(Module {
        name,
        path: path.to_path_buf(),
        description,
        flags: d.flags,
        syscalls,
        auto_mounts,
        options: options.to_string(),
        desc,
        inst: inst as usize,
        serial: parking_lot::Mutex::new(()),
        users: Default::default(),
        lib: Some(lib),
    })
}
