//! The fast path, tried first at every stop: a path call whose absolute path was seen
//! before and stayed out of every mount (see `NodeCache::passes`) passes with no walk, no
//! allocation and no lock but the mount table's. It is kept small and apart from the full
//! decision because most stops end here, and they come right after the tracee ran: what
//! costs is the code and data the tracer touches, more than the instructions it runs.
use super::paths::{is_exec, tree_change, TreeChange};
use crate::session::Session;
use crate::syscall::table::{Follow, Kind};
use crate::syscall::Call;
use crate::tracee::memory;
use crate::tracee::ptrace::Pid;

pub enum Fast {
    /// The call passes unchanged.
    Pass,
    /// The full decision is needed; the path, if it was read already.
    Decide(Option<Vec<u8>>),
}

pub fn try_pass(s: &Session, tid: Pid, call: &Call) -> Fast {
    let Some(spec) = call.spec else { return Fast::Decide(None) };
    if spec.kind == Kind::Getdents && !crate::vfd::is_virtual(call.args[0] as i64) {
        // A real directory lists itself: no mount point is missing on the host, and every
        // mount whose module merges listings is a plain subtree for now.
        let mounts = s.mounts.read();
        let lists_itself = mounts.synthetic.is_empty()
            && mounts.mounts.iter().all(|m| !m.module.has_list() || m.is_subtree());
        return if lists_itself { Fast::Pass } else { Fast::Decide(None) };
    }
    if !s.traps_paths() || !matches!(spec.kind, Kind::Path | Kind::Readlink) || spec.paths.len() != 1 {
        return Fast::Decide(None);
    }
    // A syscall-service module owning the number (fakeroot's stat) is asked first.
    if s.syscall_owned(call.nr) {
        return Fast::Decide(None);
    }
    let p = &spec.paths[0];
    let addr = call.args[p.arg as usize];
    let virtual_dirfd = p.dirfd.is_some_and(|d| crate::vfd::is_virtual(call.args[d as usize] as i64));
    // openat2 (its flags are in tracee memory), exec (its `#!` line), chroot (followed by
    // vurs), calls that change the tree, and calls on virtual descriptors take the full
    // decision.
    if addr == 0
        || call.nr == libc::SYS_chroot
        || virtual_dirfd
        || matches!(p.follow, Follow::OpenHow(_))
        || is_exec(call.nr)
        || !matches!(tree_change(tid, call), TreeChange::None)
    {
        return Fast::Decide(None);
    }
    let mut buf = [0u8; memory::SHORT_STRING];
    let Some(n) = memory::read_short_cstring(tid, addr, &mut buf) else { return Fast::Decide(None) };
    let raw = &buf[..n];
    // A process with a root of its own or a cwd in a served mount: its absolute paths
    // (and all of them, to keep this short) are resolved from its view.
    if super::caller::fs_of(tid).is_some() {
        return Fast::Decide(Some(raw.to_vec()));
    }
    let mounts = s.mounts.read();
    if mounts.is_empty() && !(super::views_exist() && raw.starts_with(b"/proc/")) {
        return Fast::Pass;
    }
    let passes = match raw.first() {
        // The descriptor itself (AT_EMPTY_PATH on a real descriptor).
        None => p.empty.applies(&call.args),
        Some(b'/') => {
            // readlink of these may name a magic link, translated back at its exit.
            let magic =
                spec.kind == Kind::Readlink && (raw.starts_with(b"/proc/") || raw.starts_with(b"/dev/"));
            !magic && mounts.nodecache.passes(raw, call.follows(tid, p))
        }
        Some(_) => false,
    };
    if passes {
        Fast::Pass
    } else {
        Fast::Decide(Some(raw.to_vec()))
    }
}
