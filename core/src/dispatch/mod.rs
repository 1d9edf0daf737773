//! Decide what happens to one trapped call: by path (mount table, after resolution), by
//! descriptor ownership, or by syscall number. Pure decision: `apply` and the tracer carry
//! it out.
use crate::control::CONTROL_NR;
use crate::fdtable;
use crate::memory;
use crate::module::CallCtx;
use crate::mounts::MountTable;
use crate::ptrace::Pid;
use crate::session::Session;
use crate::syscall::table::Kind;
use crate::syscall::Call;
use crate::tracer::tasks::{ExitHook, SLOT_SIZE};
use std::cell::Cell;

pub mod fast;
mod mounting;
mod paths;

use mounting::{control_call, mount_call, umount_call};
use paths::{getcwd, getdents, path_call, readlink, sockaddr_call, unsupported};
pub use paths::{reverse_link, synthetic_dirents};
use vurs_abi::*;

#[derive(Debug, Clone)]
pub enum Action {
    /// Let the kernel run it.
    Pass,
    /// Skip it; the tracee sees this value.
    Return(i64),
    /// Run it with these arguments.
    Rewrite([u64; 6]),
    /// Scratch memory is needed first: map it, then decide again.
    NeedScratch,
    /// Put a copy of a virtual file at a real descriptor number (see materialize.rs).
    Materialize(std::sync::Arc<parking_lot::Mutex<Option<crate::tracer::materialize::Plan>>>),
}

#[derive(Debug, Clone)]
pub struct Decision {
    pub action: Action,
    pub exit: Option<ExitHook>,
    /// Who decided and how, for --trace ("fsremap: /etc/passwd -> /etc/hostname").
    pub note: String,
}

impl Decision {
    fn pass() -> Decision {
        Decision { action: Action::Pass, exit: None, note: String::new() }
    }
    fn ret(v: i64, note: impl Into<String>) -> Decision {
        Decision { action: Action::Return(v), exit: None, note: note.into() }
    }
    fn err(e: i32, note: impl Into<String>) -> Decision {
        Decision::ret(-(e as i64), note)
    }
}

/// Where a decision puts the data it hands the kernel (rewritten paths, a copied
/// `struct open_how`): the calling thread's scratch slot in the tracee, filled front to
/// back, for the ptrace engine; or vurs's own memory for the notification engine, which
/// carries the call out itself (see `notify::emulate`).
pub struct Scratch {
    pub tid: Pid,
    pub slot: Option<u64>,
    pub used: usize,
    /// The notification engine's buffers: `put` returns `LOCAL_TAG | index`.
    pub local: Option<Vec<Vec<u8>>>,
}

/// Addresses of buffers in vurs's own memory are tagged with a kernel-half address: no
/// user pointer of a tracee can be one.
pub const LOCAL_TAG: u64 = 0xffff_f000_0000_0000;

impl Scratch {
    /// Scratch in the tracee (the ptrace engine).
    pub fn in_tracee(tid: Pid, slot: Option<u64>) -> Scratch {
        Scratch { tid, slot, used: 0, local: None }
    }
    /// Buffers in vurs (the notification engine).
    pub fn local(tid: Pid) -> Scratch {
        Scratch { tid, slot: None, used: 0, local: Some(Vec::new()) }
    }
    pub fn put(&mut self, data: &[u8]) -> Result<u64, Action> {
        if let Some(bufs) = &mut self.local {
            bufs.push(data.to_vec());
            return Ok(LOCAL_TAG | (bufs.len() - 1) as u64);
        }
        let base = self.slot.ok_or(Action::NeedScratch)?;
        let start = (self.used + 15) & !15;
        if start + data.len() > SLOT_SIZE as usize {
            return Err(Action::Return(-(libc::ENAMETOOLONG as i64)));
        }
        memory::write(self.tid, base + start as u64, data)
            .map_err(|_| Action::Return(-(libc::EFAULT as i64)))?;
        self.used = start + data.len();
        Ok(base + start as u64)
    }
    pub fn put_cstr(&mut self, s: &[u8]) -> Result<u64, Action> {
        let mut v = Vec::with_capacity(s.len() + 1);
        v.extend_from_slice(s);
        v.push(0);
        self.put(&v)
    }
    /// The local buffer behind a tagged address.
    pub fn local_buf(&self, addr: u64) -> Option<&[u8]> {
        if addr & LOCAL_TAG != LOCAL_TAG {
            return None;
        }
        self.local.as_ref()?.get((addr & !LOCAL_TAG) as usize).map(Vec::as_slice)
    }
}

pub struct Caller {
    pub tid: Pid,
    pub tgid: Pid,
    /// The process's virtual descriptors.
    pub fds: std::sync::Arc<parking_lot::Mutex<fdtable::FdTable>>,
    pub creds: crate::tracer::tasks::Creds,
}

pub(super) fn readlink_host(p: &str) -> Option<Vec<u8>> {
    std::fs::read_link(p).ok().map(|p| std::os::unix::ffi::OsStringExt::into_vec(p.into_os_string()))
}

/// Virtual path of a host path: through the mounts, else itself.
pub(super) fn to_virtual(mounts: &MountTable, host: Vec<u8>) -> Vec<u8> {
    mounts.reverse(&host).unwrap_or(host)
}

/// The caller's virtual cwd.
pub fn cwd(mounts: &MountTable, c: &Caller) -> Option<Vec<u8>> {
    cwd_of(mounts, c.tid)
}

/// The virtual cwd of thread `tid`.
pub fn cwd_of(mounts: &MountTable, tid: Pid) -> Option<Vec<u8>> {
    readlink_host(&format!("/proc/{tid}/cwd")).map(|h| to_virtual(mounts, h))
}

/// Decide what to do with `call` (`pre`: its path, if the fast path read it already).
pub fn decide(s: &Session, c: &Caller, call: &Call, scratch: &mut Scratch, pre: Option<Vec<u8>>) -> Decision {
    if call.nr == CONTROL_NR {
        return control_call(s, c, call);
    }
    let path_kind = call.spec.is_some_and(|sp| sp.kind == Kind::Path);
    if crate::syscall::table::is_state_call(call.nr) {
        return Decision { action: Action::Pass, exit: Some(ExitHook::RefreshCreds), note: String::new() };
    }
    if s.filter.virtual_fds && !path_kind && on_virtual_fd(call) {
        return crate::serve::fd_call(c, call, scratch);
    }
    if let Some(spec) = call.spec {
        if s.filter.paths || matches!(spec.kind, Kind::Mount | Kind::Umount) {
            let r = match spec.kind {
                Kind::Path => path_call(s, c, call, spec.paths, scratch, pre),
                Kind::Getcwd => getcwd(s, c, call),
                Kind::Getdents => getdents(s, c, call),
                Kind::Readlink => readlink(s, c, call, spec.paths, scratch, pre),
                Kind::Mount => mount_call(s, c, call),
                Kind::Umount => umount_call(s, c, call),
                Kind::SockAddr => sockaddr_call(s, c, call, scratch),
                Kind::Unsupported => unsupported(s, call),
            };
            match r {
                Ok(d) => return d,
                Err(Action::Pass) => return Decision::pass(),
                Err(a) => return Decision { action: a, exit: None, note: String::new() },
            }
        }
    }
    let owner = s.syscall_owner.read().get(&call.nr).cloned();
    if let Some(m) = owner {
        return syscall_service(s, c, call, &m, scratch);
    }
    Decision::pass()
}

/// A descriptor call whose descriptor argument is in the virtual range.
pub fn on_virtual_fd(call: &Call) -> bool {
    let (lo, hi) = fdtable::virtual_range();
    crate::syscall::table::FD_CALLS
        .iter()
        .any(|&(sys, fd)| sys as i64 == call.nr && fd.meets(&call.args, lo, hi))
}

fn syscall_service(
    s: &Session,
    c: &Caller,
    call: &Call,
    m: &crate::module::Module,
    scratch: &mut Scratch,
) -> Decision {
    let cr = &c.creds;
    let caller =
        vurs_caller { pid: c.tgid, tid: c.tid, uid: cr.uid, euid: cr.euid, gid: cr.gid, egid: cr.egid };
    let ctx = CallCtx {
        tid: c.tid,
        session: s,
        scratch: scratch.slot.map(|a| (a + scratch.used as u64, SLOT_SIZE as usize - scratch.used)),
        scratch_used: Cell::new(0),
        scratch_missing: Cell::new(false),
    };
    let raw = vurs_call {
        size: std::mem::size_of::<vurs_call>() as u32,
        nr: call.nr as i32,
        args: call.args,
        caller: &caller,
        ctx: &ctx as *const CallCtx as *mut std::ffi::c_void,
    };
    let v = m.syscall(&raw);
    if ctx.scratch_missing.get() {
        return Decision { action: Action::NeedScratch, exit: None, note: String::new() };
    }
    scratch.used += ctx.scratch_used.get();
    let note = format!("virtualized by {}", m.name);
    match v {
        crate::module::Verdict::Pass => Decision::pass(),
        crate::module::Verdict::Return(x) => Decision::ret(x, note),
        crate::module::Verdict::Rewrite { mask, args } => {
            let mut a = call.args;
            for (i, slot) in a.iter_mut().enumerate() {
                if mask & (1 << i) != 0 {
                    *slot = args[i];
                }
            }
            Decision { action: Action::Rewrite(a), exit: None, note: format!("rewritten by {}", m.name) }
        }
    }
}
