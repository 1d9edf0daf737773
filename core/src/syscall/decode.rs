//! Decode a seccomp stop once: number, arguments, IP and SP, with the table entry that
//! says what the arguments mean. Uses PTRACE_GET_SYSCALL_INFO (Linux 5.3+) and falls
//! back to PTRACE_GETREGS.
use super::table::{self, Access, Follow, PathArg, Spec};
use crate::arch;
use crate::tracee::memory;
use crate::tracee::ptrace::{self, Pid};
use std::sync::atomic::{AtomicU8, Ordering};

/// Which read method works on this kernel (0 unknown, 1 syscall info, 2 regs).
static READ_METHOD: AtomicU8 = AtomicU8::new(0);

#[derive(Debug, Clone)]
pub struct Call {
    pub nr: i64,
    pub args: [u64; 6],
    pub ip: u64,
    pub sp: u64,
    pub spec: Option<&'static Spec>,
}

impl Call {
    pub fn fetch(tid: Pid) -> std::io::Result<Call> {
        let (nr, args, ip, sp) = match READ_METHOD.load(Ordering::Relaxed) {
            2 => from_regs(tid)?,
            m => match ptrace::get_syscall_info(tid) {
                Ok(i) if i.op == ptrace::PTRACE_SYSCALL_INFO_SECCOMP => {
                    if m == 0 {
                        READ_METHOD.store(1, Ordering::Relaxed);
                    }
                    (i.nr_or_rval as i64, i.args, i.instruction_pointer, i.stack_pointer)
                }
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Err(e),
                _ => {
                    READ_METHOD.store(2, Ordering::Relaxed);
                    from_regs(tid)?
                }
            },
        };
        Ok(Call { nr, args, ip, sp, spec: table::path_spec(nr) })
    }

    /// A call reported by the seccomp listener (no stack pointer: nothing needs it there).
    pub fn from_notif(n: &crate::tracee::seccomp::Notif) -> Call {
        Call { nr: n.nr, args: n.args, ip: n.ip, sp: 0, spec: table::path_spec(n.nr) }
    }

    pub fn name(&self) -> String {
        table::name(self.nr)
    }

    pub fn fd_arg(&self, i: usize) -> i32 {
        self.args[i] as i32
    }

    /// Whether the last component of path argument `p` is followed.
    pub fn follows(&self, tid: Pid, p: &PathArg) -> bool {
        match p.follow {
            Follow::Always => true,
            Follow::Never => false,
            Follow::UnlessFlag(a, f) => self.args[a as usize] & f == 0,
            Follow::IfFlag(a, f) => self.args[a as usize] & f != 0,
            Follow::OpenFlags(a) => open_follows(self.args[a as usize]),
            Follow::OpenHow(a) => open_follows(self.open_how_flags(tid, a)),
        }
    }

    /// VURS_ACCESS_* bits of path argument `p`.
    pub fn access(&self, tid: Pid, p: &PathArg) -> u32 {
        use vurs_abi::*;
        let open_access = |flags: u64| {
            let f = flags as i32;
            let mut a = VURS_ACCESS_READ;
            if f & libc::O_ACCMODE != libc::O_RDONLY || f & libc::O_TRUNC != 0 {
                a |= VURS_ACCESS_WRITE;
            }
            if f & libc::O_CREAT != 0 || f & libc::O_TMPFILE == libc::O_TMPFILE {
                a |= VURS_ACCESS_CREATE;
            }
            a
        };
        match p.access {
            Access::Read => VURS_ACCESS_READ,
            Access::Write => VURS_ACCESS_WRITE,
            Access::Create => VURS_ACCESS_WRITE | VURS_ACCESS_CREATE,
            Access::Exec => VURS_ACCESS_EXEC | VURS_ACCESS_READ,
            Access::OpenFlags(a) => open_access(self.args[a as usize]),
            Access::OpenHow(a) => open_access(self.open_how_flags(tid, a)),
            Access::Mode(a) => {
                if self.args[a as usize] as i32 & libc::W_OK != 0 {
                    VURS_ACCESS_WRITE
                } else {
                    VURS_ACCESS_READ
                }
            }
        }
    }

    /// `struct open_how.flags` (its first field) of openat2.
    pub fn open_how_flags(&self, tid: Pid, a: u8) -> u64 {
        let mut b = [0u8; 8];
        match memory::read(tid, self.args[a as usize], &mut b) {
            Ok(()) => u64::from_ne_bytes(b),
            Err(_) => 0,
        }
    }
}

fn open_follows(flags: u64) -> bool {
    let f = flags as i32;
    f & libc::O_NOFOLLOW == 0 && f & (libc::O_CREAT | libc::O_EXCL) != (libc::O_CREAT | libc::O_EXCL)
}

fn from_regs(tid: Pid) -> std::io::Result<(i64, [u64; 6], u64, u64)> {
    let r = ptrace::get_regs(tid)?;
    Ok((arch::regs_nr(&r) as i64, arch::regs_args(&r), arch::regs_ip(&r), arch::regs_sp(&r)))
}
