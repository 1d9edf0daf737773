//! Thin, typed wrappers over ptrace(2). Every request must come from the tracer thread.
//! ESRCH (the tracee died meanwhile) is an ordinary outcome, the typed error `Gone`, never
//! a panic. Requests that change a tracee or resume it need a `Stopped` token, which only
//! a wait status reporting a stop gives; resuming consumes it, so a stopped tracee is
//! resumed at most once per stop (in the spirit of reverie's safeptrace).
use crate::arch;
use std::io;

pub type Pid = i32;

pub const PTRACE_GET_SYSCALL_INFO: libc::c_uint = 0x420e;
/// Linux 6.16+; not yet in libc.
pub const PTRACE_SET_SYSCALL_INFO: libc::c_uint = 0x4212;
pub const PTRACE_SYSCALL_INFO_NONE: u8 = 0;
pub const PTRACE_SYSCALL_INFO_ENTRY: u8 = 1;
pub const PTRACE_SYSCALL_INFO_EXIT: u8 = 2;
pub const PTRACE_SYSCALL_INFO_SECCOMP: u8 = 3;

pub const SEIZE_OPTIONS: libc::c_int = libc::PTRACE_O_TRACESECCOMP
    | libc::PTRACE_O_TRACEFORK
    | libc::PTRACE_O_TRACEVFORK
    | libc::PTRACE_O_TRACECLONE
    | libc::PTRACE_O_TRACEEXEC
    | libc::PTRACE_O_TRACESYSGOOD
    | libc::PTRACE_O_EXITKILL;

/// `struct ptrace_syscall_info` in its 6.16 layout (same size as the 5.3 one; the 6.16
/// `flags` field sits in what was padding).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct SyscallInfo {
    pub op: u8,
    pub reserved: u8,
    pub flags: u16,
    pub arch: u32,
    pub instruction_pointer: u64,
    pub stack_pointer: u64,
    /// entry/seccomp: nr; exit: rval.
    pub nr_or_rval: u64,
    /// entry/seccomp: args; exit: args[0] & 0xff is is_error.
    pub args: [u64; 6],
    pub ret_data: u32,
    pub reserved2: u32,
}

fn check(r: libc::c_long) -> io::Result<libc::c_long> {
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn req(request: libc::c_uint, pid: Pid, addr: u64, data: u64) -> io::Result<libc::c_long> {
    // SAFETY: ptrace with integer/pointer arguments that the callers make valid.
    check(unsafe { libc::ptrace(request, pid, addr as *mut libc::c_void, data as *mut libc::c_void) })
}

/// A request on a stopped tracee failed.
#[derive(Debug)]
pub enum Error {
    /// ESRCH: the tracee died (or was killed) meanwhile; its exit comes through waitpid.
    Gone,
    /// Anything else (a request this kernel refuses).
    Os(io::Error),
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        match e.raw_os_error() {
            Some(libc::ESRCH) => Error::Gone,
            _ => Error::Os(e),
        }
    }
}

/// A tracee known to be in a ptrace stop: the proof that register-changing requests and
/// resuming are allowed. Not `Clone`: `cont`, `syscall` and `listen` consume it.
#[derive(Debug)]
pub struct Stopped {
    tid: Pid,
}

impl Stopped {
    /// The token of `pid` when wait status `status` reports a stop (the tracer's wait loop
    /// is the only caller: a status is consumed once).
    pub(crate) fn from_wait(pid: Pid, status: libc::c_int) -> Option<Stopped> {
        libc::WIFSTOPPED(status).then_some(Stopped { tid: pid })
    }

    pub fn tid(&self) -> Pid {
        self.tid
    }

    /// Resume; `sig` 0 or the signal to deliver.
    /// Resumed on the tracer's CPU: its next stop then wakes the tracer where it sleeps
    /// (sys.rs: wake_here), instead of two idle CPUs woken per stop.
    pub fn cont(self, sig: i32) -> Result<(), Error> {
        let tid = self.tid;
        crate::tracee::sys::settle_tracer(tid);
        crate::tracee::sys::wake_here(
            tid,
            false,
            || Ok(req(libc::PTRACE_CONT, tid, 0, sig as u64).map(drop)?),
        )
    }
    /// Resume until the next syscall stop (used to see the exit of the current call).
    pub fn syscall(self, sig: i32) -> Result<(), Error> {
        let tid = self.tid;
        crate::tracee::sys::settle_tracer(tid);
        crate::tracee::sys::wake_here(tid, false, || {
            Ok(req(libc::PTRACE_SYSCALL, tid, 0, sig as u64).map(drop)?)
        })
    }
    /// Leave a group-stopped tracee stopped but let job control see it (PTRACE_LISTEN).
    pub fn listen(self) -> Result<(), Error> {
        Ok(req(libc::PTRACE_LISTEN, self.tid, 0, 0).map(drop)?)
    }
    pub fn set_syscall_info(&self, info: &SyscallInfo) -> Result<(), Error> {
        let mut i = *info;
        i.reserved = 0;
        i.flags = 0;
        i.reserved2 = 0;
        let size = std::mem::size_of::<SyscallInfo>() as u64;
        Ok(req(PTRACE_SET_SYSCALL_INFO, self.tid, size, &i as *const _ as u64).map(drop)?)
    }
    pub fn set_regs(&self, regs: &arch::Regs) -> Result<(), Error> {
        Ok(req(libc::PTRACE_SETREGS, self.tid, 0, regs as *const _ as u64).map(drop)?)
    }
    pub fn poke_user(&self, offset: u64, value: u64) -> Result<(), Error> {
        Ok(req(libc::PTRACE_POKEUSER, self.tid, offset, value).map(drop)?)
    }
    pub fn get_regs(&self) -> Result<arch::Regs, Error> {
        Ok(get_regs(self.tid)?)
    }
}

pub fn seize(pid: Pid) -> io::Result<()> {
    req(libc::PTRACE_SEIZE, pid, 0, SEIZE_OPTIONS as u64).map(drop)
}
/// Make a running tracee stop (PTRACE_INTERRUPT): it reports a PTRACE_EVENT_STOP soon; a
/// stopped one reports it after its next resume.
pub fn interrupt(pid: Pid) -> io::Result<()> {
    req(libc::PTRACE_INTERRUPT, pid, 0, 0).map(drop)
}
pub fn event_msg(pid: Pid) -> io::Result<u64> {
    let mut msg: libc::c_ulong = 0;
    req(libc::PTRACE_GETEVENTMSG, pid, 0, &mut msg as *mut _ as u64)?;
    Ok(msg)
}
pub fn get_syscall_info(pid: Pid) -> io::Result<SyscallInfo> {
    let mut info = SyscallInfo::default();
    req(PTRACE_GET_SYSCALL_INFO, pid, std::mem::size_of::<SyscallInfo>() as u64, &mut info as *mut _ as u64)?;
    Ok(info)
}
pub fn get_regs(pid: Pid) -> io::Result<arch::Regs> {
    // SAFETY: Regs is plain data; the kernel fills it.
    let mut regs: arch::Regs = unsafe { std::mem::zeroed() };
    req(libc::PTRACE_GETREGS, pid, 0, &mut regs as *mut _ as u64)?;
    Ok(regs)
}
