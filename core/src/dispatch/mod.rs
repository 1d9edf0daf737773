//! Decide what happens to one trapped call: by path (mount table, after resolution), by
//! descriptor ownership, or by syscall number. Pure decision: `apply` and the tracer carry
//! it out.
#![forbid(unsafe_code)]
use crate::control::CONTROL_NR;
use crate::module::CallCtx;
use crate::path::mounts::MountTable;
use crate::session::Session;
use crate::syscall::table::Kind;
use crate::syscall::Call;
use std::cell::Cell;
use std::os::unix::ffi::OsStrExt;

mod caller;
mod decision;
pub mod exec;
pub mod fast;
mod fsview;
mod mounting;
mod paths;
pub mod serve;

pub use caller::{set_view, view_of, views_exist, Caller, Creds, Ids, TaskIndex, TaskView};
pub use decision::{
    Action, Decision, ExitHook, ModuleExit, Note, Outcome, Plan, Scratch, Then, LOCAL_TAG, SLOT_SIZE,
};
pub use fsview::shown_link;

use mounting::{control_call, mount_call, umount_call};
use paths::{getcwd, getdents, path_call, readlink, sockaddr_call, unsupported};
pub use paths::{reverse_link, synthetic_dirents};
use vurs_abi::*;

/// The caller's virtual cwd.
pub fn cwd(mounts: &MountTable, c: &Caller) -> Option<Vec<u8>> {
    cwd_of(mounts, c.tid, &c.fs)
}

/// The resolver of the caller's paths (its /proc/self, its root).
pub(crate) fn resolver<'a>(mounts: &'a MountTable, c: &'a Caller) -> crate::path::resolve::Resolver<'a> {
    crate::path::resolve::Resolver { mounts, tgid: c.tgid, tid: c.tid, view: &c.fs }
}

pub(crate) use crate::path::{cwd_of, readlink_host, to_virtual};

/// Decide what to do with `call` (`pre`: its path, if the fast path read it already).
///
/// A syscall-service module that owns the number is asked first: it may answer the call
/// (RETURN), or let it go on (PASS, REWRITE, PASS_EXIT), and then the call is dispatched as
/// if no module owned it (paths translated, virtual descriptors served); after a
/// PASS_EXIT, the module's `syscall_exit` sees the result (`ExitHook::Module`).
pub fn decide(s: &Session, c: &Caller, call: &Call, scratch: &mut Scratch, pre: Option<Vec<u8>>) -> Decision {
    // What vurs_services.caller answers while the call is decided.
    let abi = c.abi();
    let _caller = crate::module::CallerScope::enter(&abi);
    if call.nr == CONTROL_NR {
        return control_call(s, c, call);
    }
    let owner = s.syscall_owner.read().get(&call.nr).cloned();
    let Some(m) = owner else {
        return decide_core(s, c, call, scratch, pre);
    };
    let (args, at_exit, note) = match syscall_service(s, c, call, &m, scratch) {
        Served::Done(d) => return d,
        Served::GoOn { args, at_exit, note } => (args, at_exit, note),
    };
    let rewritten = args != call.args;
    let mut d = if rewritten {
        // The rest of the dispatch sees the call as the module rewrote it (a path it set is
        // translated like the caller's own); the fast path's `pre` was read from the old one.
        let mut changed = call.clone();
        changed.args = args;
        let mut d = decide_core(s, c, &changed, scratch, None);
        if matches!(d.action, Action::Pass) {
            d.action = Action::Rewrite(args);
        }
        d
    } else {
        decide_core(s, c, call, scratch, pre)
    };
    if d.note.is_empty() {
        d.note = note;
    }
    if !at_exit {
        return d;
    }
    let hook = ModuleExit { module: m, nr: call.nr, args: call.args, then: d.exit.take() };
    match d.action {
        Action::Pass | Action::Rewrite(_) | Action::RewriteAs(..) => {
            d.exit = Some(ExitHook::Module(Box::new(hook)));
            d
        }
        // The dispatch answered the call itself (a served file, an error of the walk): the
        // module sees that answer now.
        Action::Return(v) => {
            let v = module_exit(s, c, &hook, v);
            Decision { action: Action::Return(v), ..d }
        }
        // Decided again once scratch exists; a materialization has its own exit.
        Action::NeedScratch | Action::Materialize(_) => d,
    }
}

/// The decision when no syscall-service module owns the call (or after it let it go on).
fn decide_core(
    s: &Session,
    c: &Caller,
    call: &Call,
    scratch: &mut Scratch,
    pre: Option<Vec<u8>>,
) -> Decision {
    let path_kind = call.spec.is_some_and(|sp| sp.kind == Kind::Path);
    // chroot, chdir, fchdir and getcwd where the process's own root or cwd are concerned.
    if let Some(d) = fsview::decide(s, c, call, scratch) {
        return d;
    }
    if crate::syscall::table::is_state_call(call.nr) {
        return Decision { action: Action::Pass, exit: Some(ExitHook::RefreshCreds), note: "".into() };
    }
    if s.traps_virtual_fds() && !path_kind && on_virtual_fd(call) {
        return crate::dispatch::serve::fd_call(c, call, scratch);
    }
    if let Some(spec) = call.spec {
        if s.traps_paths() || matches!(spec.kind, Kind::Mount | Kind::Umount) {
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
            return r.unwrap_or_else(Decision::from);
        }
    }
    Decision::pass()
}

/// A descriptor call whose descriptor argument is in the virtual range (or whose
/// descriptors are in memory: `table::FD_IN_MEMORY_CALLS`).
pub fn on_virtual_fd(call: &Call) -> bool {
    let (lo, hi) = crate::vfd::virtual_range();
    crate::syscall::table::FD_CALLS
        .iter()
        .any(|&(sys, fd)| sys as i64 == call.nr && fd.meets(&call.args, lo, hi))
        || crate::syscall::table::sysno(call.nr)
            .is_some_and(|s| crate::syscall::table::FD_IN_MEMORY_CALLS.contains(s))
}

/// What a syscall-service module's handler decided.
enum Served {
    /// The call is settled (answered, or scratch is needed first).
    Done(Decision),
    /// The call goes on with these arguments; `at_exit`: the module sees its result.
    GoOn { args: [u64; 6], at_exit: bool, note: Note },
}

/// The context of a module's callback acting for caller `c` (`vurs_services` reach the
/// caller through it).
fn with_call_ctx<R>(
    s: &Session,
    c: &Caller,
    slot: Option<(u64, usize)>,
    nr: i64,
    args: [u64; 6],
    f: impl FnOnce(&vurs_call, &CallCtx) -> R,
) -> R {
    let caller = c.abi();
    let cwd = || cwd_of(&s.mounts.read(), c.tid, &c.fs);
    let stat = |dirfd: i32, path: &[u8], flags: i32| stat_at(s, c, dirfd, path, flags);
    let host_path = |dirfd: i32, path: &[u8], flags: i32| host_path_at(s, c, dirfd, path, flags);
    let ctx = CallCtx {
        tid: c.tid,
        cwd: &cwd,
        scratch: slot,
        scratch_used: Cell::new(0),
        scratch_missing: Cell::new(false),
        stat_at: &stat,
        host_path: &host_path,
        set_ids: &|ids| set_view(c.tid, ids),
    };
    let raw = vurs_call {
        size: std::mem::size_of::<vurs_call>() as u32,
        nr: nr as i32,
        args,
        caller: &caller,
        ctx: &ctx as *const CallCtx as *mut std::ffi::c_void,
    };
    f(&raw, &ctx)
}

fn syscall_service(
    s: &Session,
    c: &Caller,
    call: &Call,
    m: &crate::module::Module,
    scratch: &mut Scratch,
) -> Served {
    let slot = scratch.slot.map(|a| (a + scratch.used as u64, SLOT_SIZE as usize - scratch.used));
    let (v, missing, used) = with_call_ctx(s, c, slot, call.nr, call.args, |raw, ctx| {
        (m.syscall(raw), ctx.scratch_missing.get(), ctx.scratch_used.get())
    });
    if missing {
        return Served::Done(Decision { action: Action::NeedScratch, exit: None, note: "".into() });
    }
    scratch.used += used;
    let rewrite = |mask: u32, new: [u64; 6]| {
        let mut a = call.args;
        for (i, slot) in a.iter_mut().enumerate() {
            if mask & (1 << i) != 0 {
                *slot = new[i];
            }
        }
        a
    };
    use crate::module::Verdict;
    match v {
        Verdict::Pass => Served::GoOn { args: call.args, at_exit: false, note: "".into() },
        Verdict::Return(x) => Served::Done(Decision::ret(x, crate::note!("virtualized by {}", m.name))),
        Verdict::Rewrite { mask, args } => Served::GoOn {
            args: rewrite(mask, args),
            at_exit: false,
            note: crate::note!("rewritten by {}", m.name),
        },
        Verdict::PassExit { mask, args } => Served::GoOn {
            args: rewrite(mask, args),
            at_exit: true,
            note: crate::note!("seen at exit by {}", m.name),
        },
    }
}

/// At the exit of a call its module answered VURS_PASS_EXIT: the result the caller sees.
pub fn module_exit(s: &Session, c: &Caller, hook: &ModuleExit, ret: i64) -> i64 {
    with_call_ctx(s, c, None, hook.nr, hook.args, |raw, _| hook.module.syscall_exit(raw, ret))
}

/// `module_exit` for the tracer, which knows the caller by its thread id.
pub fn module_exit_of(
    s: &Session,
    tasks: &TaskIndex,
    tid: crate::tracee::ptrace::Pid,
    hook: &ModuleExit,
    ret: i64,
) -> i64 {
    match tasks.caller(tid) {
        Some(c) => module_exit(s, &c, hook, ret),
        None => ret,
    }
}

/// Where (dirfd, path) of a caller leads: a host path, or a file a module serves.
enum Located {
    Host(Vec<u8>),
    /// A descriptor of the caller's with no path to resolve: its magic link.
    HostFd(String),
    Served(vurs_stat),
}

/// fstatat(dirfd, path, flags) as caller `c` sees it (`vurs_services.stat_at`): resolved
/// like the caller's own path calls, through the mounts; a served file is the module's
/// stat, anything else the host's.
pub fn stat_at(s: &Session, c: &Caller, dirfd: i32, path: &[u8], flags: i32) -> Result<vurs_stat, i32> {
    let follow = flags & libc::AT_SYMLINK_NOFOLLOW == 0;
    match locate(s, c, dirfd, path, flags)? {
        Located::Host(host) => host_stat(&host, follow),
        // The magic link leads to the open file itself (what fstat sees).
        Located::HostFd(link) => host_stat(link.as_bytes(), true),
        Located::Served(st) => Ok(st),
    }
}

/// The host path of what caller `c` names with (dirfd, path, flags)
/// (`vurs_services.host_path`); EXDEV for a served file.
pub fn host_path_at(s: &Session, c: &Caller, dirfd: i32, path: &[u8], flags: i32) -> Result<Vec<u8>, i32> {
    match locate(s, c, dirfd, path, flags)? {
        Located::Host(host) => Ok(host),
        Located::HostFd(link) => readlink_host(&link).ok_or(libc::EBADF),
        Located::Served(_) => Err(libc::EXDEV),
    }
}

fn locate(s: &Session, c: &Caller, dirfd: i32, path: &[u8], flags: i32) -> Result<Located, i32> {
    if flags & !(libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH) != 0 {
        return Err(libc::EINVAL);
    }
    let follow = flags & libc::AT_SYMLINK_NOFOLLOW == 0;
    let virtual_fd = crate::vfd::is_virtual(dirfd as i64);
    if path.is_empty() {
        if flags & libc::AT_EMPTY_PATH == 0 {
            return Err(libc::ENOENT);
        }
        if virtual_fd {
            let e = c.fds.lock().get(dirfd).cloned().ok_or(libc::EBADF)?;
            return e.file.module.fstat(e.file.handle).map(Located::Served);
        }
        if dirfd != libc::AT_FDCWD {
            return Ok(Located::HostFd(format!("/proc/{}/fd/{}", c.tid, dirfd)));
        }
        return locate(s, c, dirfd, b".", flags);
    }
    let mounts = s.mounts.read();
    let start = if path[0] == b'/' {
        b"/".to_vec()
    } else if virtual_fd {
        serve::fd_path(c, dirfd).ok_or(libc::EBADF)?
    } else {
        let link = if dirfd == libc::AT_FDCWD {
            format!("/proc/{}/cwd", c.tid)
        } else {
            format!("/proc/{}/fd/{}", c.tid, dirfd)
        };
        let host = readlink_host(&link).ok_or(libc::EBADF)?;
        match c.fs.parked_cwd(&host).filter(|_| dirfd == libc::AT_FDCWD) {
            Some(v) => v.to_vec(),
            None => mounts.reverse(&host).unwrap_or(host),
        }
    };
    let resolver = resolver(&mounts, c);
    let r = resolver.resolve(&start, path, follow)?;
    if let Some(m) = r.mount.as_ref().filter(|m| m.module.serves_paths()) {
        let sub = crate::path::mounts::subpath(&r.virt, m.target.as_bytes());
        return m.module.stat(m.mnt, sub).map(Located::Served);
    }
    let host = match &r.mount {
        Some(m) => {
            m.redirect(crate::path::mounts::subpath(&r.virt, m.target.as_bytes()), VURS_ACCESS_READ)?
        }
        None => resolver.host_path(&r.virt, VURS_ACCESS_READ)?,
    };
    drop(mounts);
    Ok(Located::Host(host))
}

/// stat or lstat of a host path, as `struct vurs_stat`.
fn host_stat(host: &[u8], follow: bool) -> Result<vurs_stat, i32> {
    use std::os::unix::fs::MetadataExt;
    let p = std::path::Path::new(std::ffi::OsStr::from_bytes(host));
    let md = if follow { std::fs::metadata(p) } else { std::fs::symlink_metadata(p) }
        .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
    Ok(vurs_stat {
        dev: md.dev(),
        ino: md.ino(),
        mode: md.mode(),
        nlink: md.nlink() as u32,
        uid: md.uid(),
        gid: md.gid(),
        rdev: md.rdev(),
        size: md.size() as i64,
        blksize: md.blksize() as i64,
        blocks: md.blocks() as i64,
        atime_sec: md.atime(),
        mtime_sec: md.mtime(),
        ctime_sec: md.ctime(),
        atime_nsec: md.atime_nsec() as u32,
        mtime_nsec: md.mtime_nsec() as u32,
        ctime_nsec: md.ctime_nsec() as u32,
        reserved: 0,
    })
}
