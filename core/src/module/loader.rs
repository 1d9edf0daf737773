//! Finding and loading a module: dlopen, descriptor and version checks, init.
use super::{c_str_lossy, guard, services, Module};
use std::ffi::{c_char, c_void, CString};
use std::path::{Path, PathBuf};
use vurs_abi::*;

/// Smallest descriptor a v1 module may export (all 1.0 fields: up to `auto_mounts`).
const MIN_DESC_SIZE: usize =
    std::mem::offset_of!(vurs_module, auto_mounts) + std::mem::size_of::<*const *const c_char>();

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
/// The module file `name` (a bare name) in $VURS_MODULE_PATH only: what `vurs insmod` in a
/// session finds in its caller's environment.
pub fn caller_module_path(name: &str) -> Option<PathBuf> {
    let dirs: Vec<PathBuf> = std::env::split_paths(&std::env::var_os("VURS_MODULE_PATH")?)
        .filter(|p| !p.as_os_str().is_empty())
        .collect();
    let candidates = [name.to_string(), format!("{name}.so"), format!("lib{name}.so")];
    dirs.iter().flat_map(|d| candidates.iter().map(move |c| d.join(c))).find(|p| p.is_file()).map(|p| {
        if p.is_absolute() {
            p
        } else {
            std::env::current_dir().map(|c| c.join(&p)).unwrap_or(p)
        }
    })
}

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
    check_not_truncated(path).map_err(|e| format!("module {shown}: {e}"))?;
    // SAFETY: loading a shared object runs its constructors; that is what loading a
    // module means, and the user asked for it.
    let lib = unsafe { libloading::Library::new(path) }.map_err(|e| format!("module {shown}: {e}"))?;
    // SAFETY: the symbol is only taken as an address (`*const vurs_module`); nothing is
    // read through it here: read_descriptor copies it under the fault guard.
    let sym: *const vurs_module = unsafe {
        match lib.get::<*const vurs_module>(format!("{VURS_MODULE_SYMBOL}\0").as_bytes()) {
            Ok(sym) => *sym,
            Err(_) => {
                return Err(format!("module {shown}: not a vurs module (no symbol {VURS_MODULE_SYMBOL})"))
            }
        }
    };
    let d = read_descriptor(sym).map_err(|e| format!("module {shown}: {e}"))?;
    let name = c_str_lossy(d.name);
    if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == ',' || c == '/') {
        return Err(format!("module {shown}: invalid module name {name:?}"));
    }
    let description = c_str_lossy(d.description);
    if d.nsyscalls > 1024 {
        return Err(format!("module {shown}: declares {} system calls (at most 1024)", d.nsyscalls));
    }
    let mut syscalls = vec![0i32; if d.syscalls.is_null() { 0 } else { d.nsyscalls as usize }];
    // SAFETY: the destination is ours, of the size copied; a bad module pointer faults
    // inside the guarded copy and is reported.
    unsafe { guard::copy(syscalls.as_mut_ptr().cast(), d.syscalls.cast(), syscalls.len() * 4) }
        .map_err(|_| format!("module {shown}: bad system call list in the descriptor"))?;
    let mut auto_mounts = Vec::new();
    if !d.auto_mounts.is_null() {
        for i in 0..64 {
            let mut p: *const c_char = std::ptr::null();
            // SAFETY: one pointer-sized copy into `p`; entry i of the module's
            // NULL-terminated array (a bad pointer faults inside the guarded copy).
            unsafe {
                guard::copy(
                    (&mut p as *mut *const c_char).cast(),
                    d.auto_mounts.wrapping_add(i).cast(),
                    std::mem::size_of::<*const c_char>(),
                )
            }
            .map_err(|_| format!("module {shown}: bad auto_mounts list in the descriptor"))?;
            if p.is_null() {
                break;
            }
            auto_mounts.push(c_str_lossy(p));
        }
    }
    let init = d.init.ok_or_else(|| format!("module {shown}: descriptor has no init"))?;
    let copts = CString::new(options).map_err(|_| format!("module {shown}: NUL in options"))?;
    let mut err = [0u8; 512];
    let args = [services::table() as u64, copts.as_ptr() as u64, err.as_mut_ptr() as u64, err.len() as u64];
    // SAFETY: `init` has the InitFn signature; the services table is 'static, options and
    // err (of err.len() bytes) are valid for the call.
    let inst = match unsafe { guard::call(guard::Kind::Init, init as *const c_void, &args) } {
        Ok(r) => r.ptr,
        Err(sig) => {
            return Err(format!("module {name} ({shown}): {} in init", guard::signal_name(sig)));
        }
    };
    if inst.is_null() {
        let reason = super::err_string(&err);
        let reason = if reason.is_empty() { "init failed".to_string() } else { reason };
        return Err(format!("module {name} ({shown}): {reason}"));
    }
    let m = Module {
        name,
        path: path.to_path_buf(),
        description,
        flags: d.flags,
        syscalls,
        auto_mounts,
        options: options.to_string(),
        desc: d,
        inst: inst as usize,
        serial: Default::default(),
        users: Default::default(),
        broken: Default::default(),
        lib: Some(lib),
        turned_slow: Default::default(),
    };
    super::register_clock(&m);
    Ok(m)
}

/// Copy the descriptor at `sym` out of the module, checking its header first (ABI major,
/// size); a descriptor whose memory faults is an error, not a crash.
fn read_descriptor(sym: *const vurs_module) -> Result<vurs_module, String> {
    if sym.is_null() {
        return Err("not a vurs module (null descriptor)".into());
    }
    let mut header = [0u32; 3]; // abi_major, abi_minor, size
                                // SAFETY: `header` is ours and 12 bytes long; the read of the module's memory is
                                // guarded.
    unsafe { guard::copy(header.as_mut_ptr().cast(), sym.cast(), std::mem::size_of_val(&header)) }
        .map_err(|_| "unreadable descriptor".to_string())?;
    let [major, minor, size] = header;
    if major != VURS_ABI_MAJOR {
        return Err(format!(
            "ABI {major}.{minor} is not supported (vurs has ABI {VURS_ABI_MAJOR}.{VURS_ABI_MINOR})"
        ));
    }
    if (size as usize) < MIN_DESC_SIZE {
        return Err(format!("descriptor of {size} bytes is too small for ABI 1.0 ({MIN_DESC_SIZE} bytes)"));
    }
    // SAFETY: every field of vurs_module is an integer, a raw pointer or an
    // Option<extern fn>: all-zero bytes are a valid value of each.
    let mut d: vurs_module = unsafe { std::mem::zeroed() };
    // Fields beyond the module's `size` (a module of an older minor) stay zero: absent.
    let known = (size as usize).min(std::mem::size_of::<vurs_module>());
    // SAFETY: `d` is ours and at least `known` bytes long (the fields both sides know; the
    // module declared `size` bytes); the read of the module's memory is guarded.
    unsafe { guard::copy((&mut d as *mut vurs_module).cast(), sym.cast(), known) }
        .map_err(|_| "unreadable descriptor".to_string())?;
    Ok(d)
}

/// A shared object cut short (an interrupted copy, a full disk) may still pass dlopen,
/// which maps pages beyond the end of the file: touching them later is a SIGBUS in the
/// dynamic loader or in vurs. So before dlopen: every segment and the section header
/// table of an ELF file must lie within it. (Files that are not ELF are left to dlopen,
/// which says why.)
fn check_not_truncated(path: &Path) -> Result<(), String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let len = f.metadata().map_err(|e| e.to_string())?.len();
    let mut eh = [0u8; 64];
    if f.read_exact(&mut eh).is_err() || &eh[..4] != b"\x7fELF" || eh[4] != 2 || eh[5] != 1 {
        return Ok(()); // not a little-endian ELF64 file: dlopen's error is clearer
    }
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as u64;
    let u64_at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    let (phoff, phentsize, phnum) = (u64_at(&eh, 0x20), u16_at(&eh, 0x36), u16_at(&eh, 0x38));
    let (shoff, shentsize, shnum) = (u64_at(&eh, 0x28), u16_at(&eh, 0x3a), u16_at(&eh, 0x3c));
    let mut need = phoff.saturating_add(phentsize * phnum).max(shoff.saturating_add(shentsize * shnum));
    if phentsize >= 0x28 && phoff.saturating_add(phentsize * phnum) <= len {
        let mut ph = vec![0u8; (phentsize * phnum) as usize];
        f.seek(SeekFrom::Start(phoff)).and_then(|_| f.read_exact(&mut ph)).map_err(|e| e.to_string())?;
        for h in ph.chunks_exact(phentsize as usize) {
            // p_offset at 8, p_filesz at 0x20 (ELF64)
            need = need.max(u64_at(h, 8).saturating_add(u64_at(h, 0x20)));
        }
    }
    if need > len {
        return Err(format!("truncated file ({len} bytes; its ELF headers describe {need})"));
    }
    Ok(())
}
