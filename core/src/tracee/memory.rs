//! Tracee memory through process_vm_readv/writev (one call per transfer, never a
//! PEEKDATA loop). A bad tracee pointer becomes EFAULT for the tracee, never our error.
use crate::tracee::ptrace::Pid;
use std::io::{IoSlice, IoSliceMut};

pub const PATH_MAX: usize = 4096;
const PAGE: u64 = 4096;

/// Errors a tracee would see from the kernel for a bad buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemError {
    Fault,
    NameTooLong,
}

impl MemError {
    pub fn errno(self) -> i32 {
        match self {
            MemError::Fault => libc::EFAULT,
            MemError::NameTooLong => libc::ENAMETOOLONG,
        }
    }
}

fn readv(pid: Pid, addr: u64, buf: &mut [u8]) -> isize {
    let local = [IoSliceMut::new(buf)];
    let remote = libc::iovec { iov_base: addr as *mut libc::c_void, iov_len: local[0].len() };
    // SAFETY: local iovec points at our buffer; the remote one is only read by the kernel.
    unsafe { libc::process_vm_readv(pid, local.as_ptr().cast(), 1, &remote, 1, 0) }
}

/// Read exactly `buf.len()` bytes.
pub fn read(pid: Pid, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
    if buf.is_empty() {
        return Ok(());
    }
    if readv(pid, addr, buf) == buf.len() as isize {
        Ok(())
    } else {
        Err(MemError::Fault)
    }
}

/// Write exactly `data.len()` bytes.
pub fn write(pid: Pid, addr: u64, data: &[u8]) -> Result<(), MemError> {
    if data.is_empty() {
        return Ok(());
    }
    let local = [IoSlice::new(data)];
    let remote = libc::iovec { iov_base: addr as *mut libc::c_void, iov_len: data.len() };
    // SAFETY: local iovec points at our data; the kernel writes only the tracee.
    let n = unsafe { libc::process_vm_writev(pid, local.as_ptr().cast(), 1, &remote, 1, 0) };
    if n == data.len() as isize {
        Ok(())
    } else {
        Err(MemError::Fault)
    }
}

/// Room for the strings `read_short_cstring` reads.
pub const SHORT_STRING: usize = 256;

/// Read a NUL-terminated string if it ends within the first SHORT_STRING bytes and the
/// first page: its length. None for a longer string or a bad pointer (read it with
/// `read_cstring`, which tells them apart).
pub fn read_short_cstring(pid: Pid, addr: u64, buf: &mut [u8; SHORT_STRING]) -> Option<usize> {
    let chunk = ((PAGE - (addr % PAGE)) as usize).min(SHORT_STRING);
    let n = readv(pid, addr, &mut buf[..chunk]);
    if n <= 0 {
        return None;
    }
    buf[..n as usize].iter().position(|&b| b == 0)
}

/// Read a NUL-terminated string of at most `max - 1` bytes (the NUL is not returned).
/// Reads page by page so a string that ends just before an unmapped page works.
pub fn read_cstring(pid: Pid, addr: u64, max: usize) -> Result<Vec<u8>, MemError> {
    if addr == 0 {
        return Err(MemError::Fault);
    }
    // Most paths are short: one read.
    let mut small = [0u8; SHORT_STRING];
    if let Some(n) = read_short_cstring(pid, addr, &mut small) {
        return if n >= max { Err(MemError::NameTooLong) } else { Ok(small[..n].to_vec()) };
    }
    // Longer ones (or a bad pointer): a page at a time from the start.
    let mut out = Vec::with_capacity(PAGE as usize);
    let mut page = vec![0u8; PAGE as usize];
    let mut cur = addr;
    loop {
        let want = ((PAGE - cur % PAGE) as usize).min(max + 1 - out.len());
        let n = readv(pid, cur, &mut page[..want]);
        if n <= 0 {
            return Err(MemError::Fault);
        }
        let got = &page[..n as usize];
        if let Some(z) = got.iter().position(|&b| b == 0) {
            out.extend_from_slice(&got[..z]);
            return if out.len() >= max { Err(MemError::NameTooLong) } else { Ok(out) };
        }
        out.extend_from_slice(got);
        if out.len() >= max {
            return Err(MemError::NameTooLong);
        }
        cur += n as u64;
    }
}

/// `struct stat` of a module's answer.
fn to_stat(v: &vurs_abi::vurs_stat) -> libc::stat {
    // SAFETY: plain data, zero is a valid value for every field.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    st.st_dev = v.dev;
    st.st_ino = v.ino;
    st.st_mode = v.mode;
    st.st_nlink = v.nlink as _;
    st.st_uid = v.uid;
    st.st_gid = v.gid;
    st.st_rdev = v.rdev;
    st.st_size = v.size;
    st.st_blksize = v.blksize as _;
    st.st_blocks = v.blocks;
    st.st_atime = v.atime_sec;
    st.st_atime_nsec = v.atime_nsec as _;
    st.st_mtime = v.mtime_sec;
    st.st_mtime_nsec = v.mtime_nsec as _;
    st.st_ctime = v.ctime_sec;
    st.st_ctime_nsec = v.ctime_nsec as _;
    st
}

/// `struct statx` of a module's answer.
fn to_statx(v: &vurs_abi::vurs_stat) -> libc::statx {
    // SAFETY: plain data, zero is a valid value for every field.
    let mut sx: libc::statx = unsafe { std::mem::zeroed() };
    sx.stx_mask = libc::STATX_BASIC_STATS;
    sx.stx_blksize = v.blksize as u32;
    sx.stx_nlink = v.nlink;
    sx.stx_uid = v.uid;
    sx.stx_gid = v.gid;
    sx.stx_mode = v.mode as u16;
    sx.stx_ino = v.ino;
    sx.stx_size = v.size as u64;
    sx.stx_blocks = v.blocks as u64;
    let t = |s: i64, n: u32| {
        // SAFETY: plain data; zero padding.
        let mut ts: libc::statx_timestamp = unsafe { std::mem::zeroed() };
        ts.tv_sec = s;
        ts.tv_nsec = n;
        ts
    };
    sx.stx_atime = t(v.atime_sec, v.atime_nsec);
    sx.stx_mtime = t(v.mtime_sec, v.mtime_nsec);
    sx.stx_ctime = t(v.ctime_sec, v.ctime_nsec);
    sx.stx_dev_major = libc::major(v.dev);
    sx.stx_dev_minor = libc::minor(v.dev);
    sx.stx_rdev_major = libc::major(v.rdev);
    sx.stx_rdev_minor = libc::minor(v.rdev);
    sx
}

/// Write a plain C struct of the kernel's ABI to the tracee.
fn write_struct<T: Copy>(pid: Pid, addr: u64, v: &T) -> Result<(), MemError> {
    // SAFETY: T is one of the libc structs above: plain data without padding the kernel
    // would not also write (zeroed before it was filled).
    let b = unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), std::mem::size_of::<T>()) };
    write(pid, addr, b)
}

/// Write a module's `vurs_abi::vurs_stat` to the tracee as the `struct statx` (when `statx`) or
/// `struct stat` the call asked for.
pub fn write_stat(pid: Pid, addr: u64, st: &vurs_abi::vurs_stat, statx: bool) -> Result<(), MemError> {
    if statx {
        write_struct(pid, addr, &to_statx(st))
    } else {
        write_struct(pid, addr, &to_stat(st))
    }
}
