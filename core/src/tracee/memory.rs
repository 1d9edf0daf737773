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
