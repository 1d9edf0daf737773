//! Shadow copies: a real kernel file (a memfd of vurs's) holding a virtual file's whole
//! contents, for what only the kernel can do with a descriptor — keep it at a real number
//! across exec (dup2 onto 0, 1, 2...), map it, execute it, pass it with SCM_RIGHTS.
//!
//! The caller gets its own open file description of the memfd (an open of
//! /proc/<vurs>/fd/N: own offset, the virtual file's access mode and O_APPEND), so the
//! kernel checks mmap's and write's permissions itself. When that description may write,
//! the shadow is *tracked*: its changes go back to the module
//! - before every served call (dispatch/serve.rs calls `sync` first): a memfd whose mtime
//!   or size moved since the last write-back is written back whole, so
//!   `echo hi > /served/f; cat /served/f` reads `hi`;
//! - when the caller's description is released (last close, last munmap, exit): inotify's
//!   IN_CLOSE_WRITE on the memfd, queued by the kernel before the closing call returns, is
//!   read at the next served call (or `flush`); the shadow is then written back and forgotten.
//!
//! Stores through a shared writable mapping do not move the memfd's mtime: they reach the
//! module when the mapping goes (or at a later write(2) through the shadow). A shadow is a
//! copy: changes made through the virtual descriptor after it was made are not seen in it.
#![forbid(unsafe_code)]
use super::fdtable::OpenFile;
use crate::path::mounts::subpath;
use parking_lot::Mutex;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A copy of `f`'s whole contents in a new memfd named after its virtual path.
pub fn copy(f: &OpenFile) -> Result<File, i32> {
    if f.flags & libc::O_ACCMODE != libc::O_WRONLY {
        return copy_handle(&f.module, f.handle, &f.path);
    }
    // A write-only handle cannot be read: an empty file needs no reading, another is read
    // through a handle of vurs's own.
    if f.module.fstat(f.handle)?.size == 0 {
        return copy_handle(&f.module, usize::MAX, &f.path);
    }
    let m = &f.mount;
    let h = f.module.open(m.mnt, subpath(f.path.as_bytes(), m.target.as_bytes()), libc::O_RDONLY, 0)?;
    let r = copy_handle(&f.module, h, &f.path);
    f.module.close(h);
    r
}

/// A copy of the whole contents of `module`'s open file `handle` in a new memfd called
/// `name` (what /proc/PID/fd and /proc/PID/exe show: `/memfd:NAME (deleted)`).
pub fn copy_handle(module: &crate::module::Module, handle: usize, name: &str) -> Result<File, i32> {
    let mut name: Vec<u8> = name.as_bytes().iter().copied().filter(|&b| b != 0).take(240).collect();
    name.push(0);
    let name = std::ffi::CStr::from_bytes_with_nul(&name).map_err(|_| libc::EINVAL)?;
    let memfd = crate::tracee::sys::memfd(name).map_err(|e| e.raw_os_error().unwrap_or(libc::EMFILE))?;
    let file = File::from(memfd);
    let mut buf = vec![0u8; 1 << 17];
    let mut off = 0i64;
    // usize::MAX: an empty file, nothing to read.
    if handle == usize::MAX {
        return Ok(file);
    }
    // The copy's times are the file's: they change only when the program changes them.
    if let Ok(st) = module.fstat(handle) {
        let t = |sec: i64, nsec: u32| {
            std::time::UNIX_EPOCH + std::time::Duration::new(sec.max(0) as u64, nsec.min(999_999_999))
        };
        let times = std::fs::FileTimes::new()
            .set_accessed(t(st.atime_sec, st.atime_nsec))
            .set_modified(t(st.mtime_sec, st.mtime_nsec));
        let _ = file.set_times(times);
    }
    loop {
        let n = module.pread(handle, &mut buf, off)?;
        if n == 0 {
            break;
        }
        file.write_all_at(&buf[..n], off as u64).map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
        off += n as i64;
    }
    Ok(file)
}

/// The path a tracee opens to reach vurs's descriptor `fd`.
pub fn proc_path(fd: &impl AsRawFd) -> String {
    format!("/proc/{}/fd/{}", std::process::id(), fd.as_raw_fd())
}

/// The flags of a caller's description of a shadow of `f`: its access mode and O_APPEND.
pub fn open_flags(f: &OpenFile) -> i32 {
    f.flags & (libc::O_ACCMODE | libc::O_APPEND)
}

/// A new open file description of `memfd` (as a tracee's open of `proc_path` makes), with
/// the virtual file's access mode, at `offset`.
pub fn reopen(memfd: &File, f: &OpenFile, offset: i64) -> Result<OwnedFd, i32> {
    let acc = f.flags & libc::O_ACCMODE;
    let d = std::fs::OpenOptions::new()
        .read(acc != libc::O_WRONLY)
        .write(acc != libc::O_RDONLY)
        .custom_flags(f.flags & libc::O_APPEND | libc::O_CLOEXEC)
        .open(proc_path(memfd))
        .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
    if offset != 0 {
        std::io::Seek::seek(&mut &d, std::io::SeekFrom::Start(offset as u64))
            .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
    }
    Ok(d.into())
}

/// A shadow whose changes go back to the module.
struct Tracked {
    file: Arc<OpenFile>,
    memfd: File,
    /// Its inotify watch.
    wd: i32,
    /// (mtime in ns, size) at the last write-back.
    synced: (i64, u64),
    /// When it was made (host clock): times after it were stamped by the kernel.
    created: i64,
    /// The memfd's (access, modification) times when it was made or last written back:
    /// a time is written back only if it moved since (or the contents changed, for mtime).
    times0: std::cell::Cell<(i64, i64)>,
}

#[derive(Default)]
struct Registry {
    inotify: Option<OwnedFd>,
    shadows: Vec<Tracked>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry { inotify: None, shadows: Vec::new() });
/// How many shadows are tracked: `sync` costs nothing while there are none.
static TRACKED: AtomicUsize = AtomicUsize::new(0);

fn stamp(memfd: &File) -> Option<(i64, u64)> {
    let m = memfd.metadata().ok()?;
    Some((m.mtime() * 1_000_000_000 + m.mtime_nsec(), m.size()))
}

/// Have writes through shadow `memfd` of `file` go back to the module (the caller's
/// description may write).
pub fn track(file: Arc<OpenFile>, memfd: File) -> Result<(), i32> {
    let mut r = REGISTRY.lock();
    if r.inotify.is_none() {
        r.inotify =
            Some(crate::tracee::sys::inotify().map_err(|e| e.raw_os_error().unwrap_or(libc::EMFILE))?);
    }
    let path = std::ffi::CString::new(proc_path(&memfd)).map_err(|_| libc::EINVAL)?;
    let ino = r.inotify.as_ref().expect("just set");
    let wd = crate::tracee::sys::inotify_watch(ino, &path, libc::IN_CLOSE_WRITE)
        .map_err(|e| e.raw_os_error().unwrap_or(libc::ENOSPC))?;
    let synced = stamp(&memfd).unwrap_or((0, 0));
    let created = host_now_ns() - 1_000_000_000;
    let times0 = std::cell::Cell::new(memfd.metadata().map(|m| ns_times(&m)).unwrap_or((0, 0)));
    r.shadows.push(Tracked { file, memfd, wd, synced, created, times0 });
    TRACKED.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

/// (atime, mtime) of `m` in nanoseconds.
fn ns_times(m: &std::fs::Metadata) -> (i64, i64) {
    (m.atime() * 1_000_000_000 + m.atime_nsec(), m.mtime() * 1_000_000_000 + m.mtime_nsec())
}

fn host_now_ns() -> i64 {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    d.as_nanos() as i64
}

/// Write the shadow back: the module's file gets the memfd's size, the chunks that
/// differ (through a handle of vurs's own: the caller's may be O_APPEND or write-only),
/// and the memfd's times when they moved. The kernel stamped times after the shadow was
/// made with the host's clock: they are moved to the session's (the time module).
fn write_back(t: &Tracked) {
    let f = &t.file;
    let (m, module) = (&f.mount, &f.module);
    let sub = subpath(f.path.as_bytes(), m.target.as_bytes());
    let Ok(md) = t.memfd.metadata() else { return };
    let size = md.size();
    let own = module.open(m.mnt, sub, libc::O_RDWR, 0).ok();
    let h = own.unwrap_or(f.handle);
    let before = module.fstat(h).ok();
    let mut changed = false;
    if before.as_ref().is_none_or(|b| b.size as u64 != size) {
        let _ = module.truncate(m.mnt, sub, Some(h), size as i64);
        changed = true;
    }
    let (mut buf, mut theirs) = (vec![0u8; 1 << 17], vec![0u8; 1 << 17]);
    // Read through a description of our own with O_NOATIME: vurs's reads must not move
    // the access time it writes back (relatime would set it to now).
    let reader = {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOATIME)
            .open(format!("/proc/self/fd/{}", t.memfd.as_raw_fd()))
    };
    let source = reader.as_ref().unwrap_or(&t.memfd);
    let mut off = 0u64;
    while off < size {
        let Ok(n) = source.read_at(&mut buf, off) else { break };
        if n == 0 {
            break;
        }
        let same = own.is_some()
            && module.pread(h, &mut theirs[..n], off as i64) == Ok(n)
            && theirs[..n] == buf[..n];
        if !same {
            changed = true;
            let mut done = 0;
            while done < n {
                match module.pwrite(h, &buf[done..n], (off + done as u64) as i64) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => done += k,
                }
            }
        }
        off += n as u64;
    }
    let (atime, mtime) = ns_times(&md);
    let (atime0, mtime0) = t.times0.get();
    let (a_moved, m_moved) = (atime != atime0, mtime != mtime0 || changed);
    if a_moved || m_moved {
        let shift = crate::module::session_clock(libc::CLOCK_REALTIME)
            .map(|v| v.sec * 1_000_000_000 + v.nsec - host_now_ns())
            .unwrap_or(0);
        let to_session = |ns: i64| {
            let ns = if ns >= t.created { ns + shift } else { ns };
            vurs_abi::vurs_timespec { sec: ns.div_euclid(1_000_000_000), nsec: ns.rem_euclid(1_000_000_000) }
        };
        // A time the program did not move stays the module's (the memfd's own start
        // as the host's now for a new or empty file, or when the contents were copied).
        let omit = vurs_abi::vurs_timespec { sec: 0, nsec: vurs_abi::VURS_UTIME_OMIT };
        let at = if a_moved { to_session(atime) } else { omit };
        let mt = if m_moved { to_session(mtime) } else { omit };
        let _ = module.utimens(m.mnt, sub, Some(h), &[at, mt]);
        t.times0.set((atime, mtime));
    }
    if let Some(h) = own {
        module.close(h);
    }
}

/// The watches whose memfd lost its last writable caller description.
fn released(ino: &OwnedFd) -> Vec<i32> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let file = File::from(ino.try_clone().expect("dup of the inotify descriptor"));
    while let Ok(n) = std::io::Read::read(&mut &file, &mut buf) {
        if n == 0 {
            break;
        }
        // struct inotify_event: wd, mask, cookie, len, name[len].
        let mut i = 0;
        while i + 16 <= n {
            let word = |k: usize| u32::from_ne_bytes(buf[i + k..i + k + 4].try_into().expect("4 bytes"));
            if word(4) & libc::IN_CLOSE_WRITE != 0 {
                out.push(word(0) as i32);
            }
            i += 16 + word(12) as usize;
        }
    }
    out
}

/// Bring the modules up to date with every tracked shadow (called before each served
/// call); shadows no caller can write any more are written back and forgotten.
pub fn sync() {
    if TRACKED.load(Ordering::SeqCst) == 0 {
        return;
    }
    let mut r = REGISTRY.lock();
    let gone = r.inotify.as_ref().map(released).unwrap_or_default();
    let mut keep = Vec::with_capacity(r.shadows.len());
    for mut t in std::mem::take(&mut r.shadows) {
        let now = stamp(&t.memfd);
        // At release always (stores through a shared mapping move no mtime).
        if now.is_some_and(|s| s != t.synced) || gone.contains(&t.wd) {
            write_back(&t);
            t.synced = now.unwrap_or(t.synced);
        }
        if gone.contains(&t.wd) {
            TRACKED.fetch_sub(1, Ordering::SeqCst);
        } else {
            keep.push(t);
        }
    }
    r.shadows = keep;
}

/// At the end of the session (every caller's description released, so every tracked
/// shadow has its event): everything goes back to the modules.
pub fn flush() {
    sync();
}

/// Programs being executed from served files (execve of /proc/<vurs>/fd/N): the copy stays
/// open until the same process execs again, or until 32 newer ones exist (by then the
/// kernel holds the file it mapped).
static EXEC_IMAGES: Mutex<Vec<(i32, File)>> = Mutex::new(Vec::new());

/// Keep `image` open for process `tgid`'s exec.
pub fn keep_exec_image(tgid: i32, image: File) {
    let mut v = EXEC_IMAGES.lock();
    v.retain(|(p, _)| *p != tgid);
    if v.len() >= 32 {
        v.remove(0);
    }
    v.push((tgid, image));
}
