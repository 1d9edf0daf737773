//! The decision vocabulary: what dispatch decides for a trapped call (`Decision`: an
//! `Action`, an optional `ExitHook`, a note for --trace), and where it puts the data it hands
//! the kernel (`Scratch`). Both engines carry these values out (tracer/apply.rs at a ptrace
//! stop, notify/emulate.rs for a notification); nothing here touches a tracee's registers.
#![forbid(unsafe_code)]
use crate::errno::Errno;
use crate::tracee::memory;
use crate::tracee::ptrace::Pid;
use std::os::fd::OwnedFd;

/// Scratch memory: a private anonymous mapping in the tracee that no program owns, cut
/// into one slot per thread that needs one (rewritten strings go there, never below the
/// stack pointer). Re-created lazily after exec.
pub const SLOT_SIZE: u64 = 12 * 1024;
#[derive(Debug, Clone)]
pub enum Action {
    /// Let the kernel run it.
    Pass,
    /// Skip it; the tracee sees this value.
    Return(i64),
    /// Run it with these arguments.
    Rewrite([u64; 6]),
    /// Run call `nr` with these arguments instead (fchdir of a served directory becomes a
    /// chdir to the parking directory). A ptrace stop only.
    RewriteAs(i64, [u64; 6]),
    /// Scratch memory is needed first: map it, then decide again.
    NeedScratch,
    /// Put a copy of a virtual file at a real descriptor number (see tracer/materialize.rs).
    Materialize(std::sync::Arc<parking_lot::Mutex<Option<Plan>>>),
}

/// How a dispatch helper settles a call before it has the value it was computing: the one
/// error type of dispatch/*.rs (`Result<T, Outcome>`), so `?` ends the decision with what
/// it means. (Not an `Action`: "let the kernel do it" is an outcome, not an error code.)
#[derive(Debug)]
pub enum Outcome {
    /// The kernel does the call as the tracee made it and gives its own answer (a start
    /// directory that is not one, a bad `struct open_how`, an unreadable sockaddr...).
    Pass,
    /// The call fails with this errno.
    Fail(Errno),
    /// Scratch memory in the tracee is needed first: map it, then decide again.
    NeedScratch,
}

impl From<Outcome> for Decision {
    fn from(o: Outcome) -> Decision {
        match o {
            Outcome::Pass => Decision::pass(),
            Outcome::Fail(e) => Decision::ret(e.neg(), ""),
            Outcome::NeedScratch => {
                Decision { action: Action::NeedScratch, exit: None, note: Note::Borrowed("") }
            }
        }
    }
}

/// Who decided and how, for --trace and --summary only: a fixed text costs nothing, a
/// formatted one is made with `note!`, which formats nothing unless
/// `tracelog::notes_wanted()`.
pub type Note = std::borrow::Cow<'static, str>;

/// A note formatted only when --trace or --summary will read it (an empty note otherwise).
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => {
        if $crate::tracelog::notes_wanted() {
            $crate::dispatch::Note::Owned(format!($($arg)*))
        } else {
            $crate::dispatch::Note::Borrowed("")
        }
    };
}

#[derive(Debug, Clone)]
pub struct Decision {
    pub action: Action,
    pub exit: Option<ExitHook>,
    /// Who decided and how, for --trace ("fsremap: /etc/passwd -> /etc/hostname").
    pub note: Note,
}

impl Decision {
    pub(crate) fn pass() -> Decision {
        Decision { action: Action::Pass, exit: None, note: Note::Borrowed("") }
    }
    pub(crate) fn ret(v: i64, note: impl Into<Note>) -> Decision {
        Decision { action: Action::Return(v), exit: None, note: note.into() }
    }
    pub(crate) fn err(e: i32, note: impl Into<Note>) -> Decision {
        Decision::ret(Errno(e).neg(), note)
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
    pub fn put(&mut self, data: &[u8]) -> Result<u64, Outcome> {
        if let Some(bufs) = &mut self.local {
            bufs.push(data.to_vec());
            return Ok(LOCAL_TAG | (bufs.len() - 1) as u64);
        }
        let base = self.slot.ok_or(Outcome::NeedScratch)?;
        let start = (self.used + 15) & !15;
        if start + data.len() > SLOT_SIZE as usize {
            return Err(Outcome::Fail(Errno(libc::ENAMETOOLONG)));
        }
        memory::write(self.tid, base + start as u64, data).map_err(|_| Outcome::Fail(Errno(libc::EFAULT)))?;
        self.used = start + data.len();
        Ok(base + start as u64)
    }
    pub fn put_cstr(&mut self, s: &[u8]) -> Result<u64, Outcome> {
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

/// A shadow copy of a virtual file to put in the caller (vfd/shadow.rs), prepared by the
/// dispatcher. The ptrace engine has the tracee open `path_addr` (/proc/<vurs>/fd/<memfd>)
/// with `flags`, seek to `offset`, then do `then` with it and close it
/// (tracer/materialize.rs); the notification engine installs `desc` with
/// SECCOMP_IOCTL_NOTIF_ADDFD (only a dup2 is carried out over a notification).
#[derive(Debug)]
pub struct Plan {
    pub path_addr: u64,
    pub flags: i32,
    pub offset: i64,
    pub then: Then,
    /// vurs's memfd, open until the tracee has its own description of it.
    pub memfd: OwnedFd,
    /// The description to install (the notification engine).
    pub desc: Option<OwnedFd>,
}

/// What the caller does with its description of a shadow copy.
#[derive(Debug, Clone, Copy)]
pub enum Then {
    /// dup3 it onto `newfd` (the call was a dup2/dup3 onto a real number).
    Dup { newfd: i32, cloexec: bool },
    /// mmap it with these arguments (the descriptor argument replaced).
    Mmap { args: [u64; 6] },
}

/// What to do at the exit stop of the current call.
#[derive(Debug, Clone)]
pub enum ExitHook {
    /// Reverse-translate the link text a readlink wrote to `buf` (of `size` bytes); `path`
    /// is the magic link itself, as vurs can read it.
    ReverseLink { buf: u64, size: u64, path: Vec<u8> },
    /// At the end of a real directory, add entries for mount points missing on the host.
    Dirents { fd: i32, buf: u64, cap: u64, entries: Vec<(Vec<u8>, u8)> },
    /// Re-read the process's credentials and umask (it changed them).
    RefreshCreds,
    /// Remove a synthesized file the call has opened.
    Unlink(Vec<u8>),
    /// Forget the resolution caches again (the call changed the tree; see
    /// dispatch/paths.rs).
    ForgetWalks,
    /// Only log the result (--trace).
    Log,
    /// A syscall-service module answered VURS_PASS_EXIT: its `syscall_exit` sees the
    /// result, after the hook the rest of the dispatch set (`then`) has run.
    Module(Box<ModuleExit>),
}

/// What `ExitHook::Module` needs at the exit: the module and the call as it was made.
#[derive(Clone)]
pub struct ModuleExit {
    pub module: std::sync::Arc<crate::module::Module>,
    pub nr: i64,
    pub args: [u64; 6],
    pub then: Option<ExitHook>,
}

impl std::fmt::Debug for ModuleExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ModuleExit({}, nr {}, then {:?})", self.module.name, self.nr, self.then)
    }
}

impl ExitHook {
    /// A module's exit hook apart from the hook it wraps (`Log` when it wraps none).
    pub fn split_module(self) -> (ExitHook, Option<Box<ModuleExit>>) {
        match self {
            ExitHook::Module(mut m) => (m.then.take().unwrap_or(ExitHook::Log), Some(m)),
            h => (h, None),
        }
    }
}
