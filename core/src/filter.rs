//! The seccomp filter, as data: which calls trap. Built from what the loaded modules
//! declare; compiled to classic BPF here; installed in the first child before exec.
//!
//! The program is a binary search over the syscall number, not a chain of comparisons:
//! with a hundred trapped calls a chain (seccompiler emits five instructions per call) costs
//! about 200 µs at every start (the kernel checks, JIT-compiles and runs it once per syscall
//! number to build its action cache) and a hundred comparisons on every trapped call. The
//! search is eight or nine comparisons deep.
#![forbid(unsafe_code)]
use crate::syscall::table;
use crate::vfd::{vfd_base, VFD_COUNT};
use libc::sock_filter;
use std::collections::BTreeMap;

pub type BpfProgram = Vec<sock_filter>;

/// What the filter does with one syscall number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// A ptrace stop (SECCOMP_RET_TRACE).
    Trace,
    /// A seccomp user notification to vurs's listener (SECCOMP_RET_USER_NOTIF).
    Notify,
    /// Trace when the descriptor argument(s) meet the virtual range.
    TraceVirtualFd(table::FdArg),
    /// Notify when the descriptor argument(s) meet the virtual range.
    NotifyVirtualFd(table::FdArg),
    /// Notify, but trace when one of the bits `mask` is set in argument `arg`.
    NotifyUnless(u8, u32),
    /// Fail with ENOSYS without running: x32 calls, and io_uring_setup while a path module
    /// is loaded (vurs would not see the paths of either).
    Enosys,
}

#[derive(Debug, Default, Clone)]
pub struct FilterSpec {
    /// Path calls (a path module is loaded).
    pub paths: bool,
    /// Calls on descriptors in the virtual range (a serving module is loaded).
    pub virtual_fds: bool,
    /// Numbers syscall-service modules asked for.
    pub syscalls: std::collections::BTreeSet<i64>,
    /// getdents64 too (to list mount points missing on the host; see main.rs for when).
    pub dirents: bool,
    /// Credential changes (`table::ID_CALLS`): a module reads them (VURS_F_CREDS), or a
    /// root vurs's notification engine carries calls out with them.
    pub ids: bool,
    /// umask (`table::UMASK_CALLS`): vurs creates files for a caller (the notification
    /// engine's emulation, a serving module's creates).
    pub umask: bool,
    /// The notification engine decides what it can (see `notify`).
    pub notify: bool,
}

/// AUDIT_ARCH_I386, for the tests.
#[cfg(test)]
const AUDIT_ARCH_I386: u32 = 3 | 0x4000_0000;

/// x32 calls carry this bit in their number (same audit arch as x86_64); numbers from
/// 0x8000_0000 up (negative ones) are no calls at all: the kernel says ENOSYS itself.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
const NEGATIVE: u32 = 0x8000_0000;

impl FilterSpec {
    /// Every number that may trap, and how. Numbers not listed are allowed.
    pub fn verdicts(&self) -> BTreeMap<u32, Verdict> {
        let mut v: BTreeMap<u32, Verdict> = BTreeMap::new();
        // With the notification engine, the calls vurs can carry out for a caller are
        // notifications; those that need registers stay ptrace stops.
        let stop = |nr: i64| {
            if !self.notify || !table::carried_out_over_notification(nr) {
                Verdict::Trace
            } else if let Some((arg, mask)) = table::notified_unless_flag(nr) {
                Verdict::NotifyUnless(arg, mask)
            } else {
                Verdict::Notify
            }
        };
        // The control call stays a ptrace stop: `vurs insmod` may add a filter layer to
        // every tracee, which only the tracer thread can do, and it must see that at once.
        v.insert(crate::control::CONTROL_NR as u32, Verdict::Trace);
        // So do mount and umount2, which may load a module (`mount -t tmpfs ...`).
        v.insert(syscalls::Sysno::mount as u32, Verdict::Trace);
        v.insert(syscalls::Sysno::umount2 as u32, Verdict::Trace);
        // And chroot, which vurs follows in every session (a process's root of its own;
        // its path calls trap from then on).
        v.insert(syscalls::Sysno::chroot as u32, Verdict::Trace);
        let mut trap = |nr: i64| {
            v.insert(nr as u32, stop(nr));
        };
        if self.paths {
            for s in table::PATH_CALLS {
                if s.kind != table::Kind::Getdents || self.dirents {
                    trap(s.nr as i64);
                }
            }
        }
        // Syscall services (their verdicts may rewrite arguments) and credential changes
        // (seen at their exit) are ptrace stops in both engines.
        for &nr in &self.syscalls {
            v.insert(nr as u32, Verdict::Trace);
        }
        if self.ids {
            for sysno in &table::ID_CALLS {
                v.insert(sysno as u32, Verdict::Trace);
            }
        }
        if self.umask {
            for sysno in &table::UMASK_CALLS {
                v.insert(sysno as u32, Verdict::Trace);
            }
        }
        if self.virtual_fds {
            for &(sysno, arg) in table::FD_CALLS {
                // A call that traps anyway keeps its unconditional verdict.
                // mmap (injected on a shadow copy) and fchdir of a served directory (which
                // changes the caller's own cwd) are ptrace stops.
                let notify = self.notify
                    && !table::FD_CALLS_TRACED.contains(sysno)
                    && sysno != syscalls::Sysno::fchdir;
                let on_fd = if notify { Verdict::NotifyVirtualFd(arg) } else { Verdict::TraceVirtualFd(arg) };
                v.entry(sysno as u32).or_insert(on_fd);
            }
            for sysno in &table::FD_IN_MEMORY_CALLS {
                v.entry(sysno as u32).or_insert(if self.notify { Verdict::Notify } else { Verdict::Trace });
            }
        }
        if self.paths {
            // The paths of io_uring operations (IORING_OP_OPENAT, ...) are read by the
            // kernel from the ring, never shown to vurs: no ring while paths are remapped.
            // Programs fall back to plain system calls on ENOSYS (liburing users, tokio).
            v.insert(syscalls::Sysno::io_uring_setup as u32, Verdict::Enosys);
        }
        v
    }

    /// A filter layer that, stacked on filters for `older`, traps what `self` traps too.
    /// Only numbers whose verdict changed are in it (the kernel's action cache keeps every
    /// other number at full speed), and as ptrace stops: the listener belongs to the first
    /// filter and a later layer cannot have its own (NEW_LISTENER says EBUSY), while a
    /// notification from the first filter takes precedence over the layer's TRACE anyway.
    /// None when nothing changed. Numbers `older` traps and `self` no longer needs stay
    /// trapped (a filter cannot be removed); vurs then passes them.
    pub fn layer_over(&self, older: &FilterSpec) -> Option<BpfProgram> {
        let old = older.verdicts();
        let layer: BTreeMap<u32, Verdict> = self
            .verdicts()
            .into_iter()
            .filter(|(nr, v)| *v != Verdict::Allow && old.get(nr) != Some(v))
            .map(|(nr, v)| {
                let traced = match v {
                    Verdict::Notify | Verdict::NotifyUnless(..) => Verdict::Trace,
                    Verdict::NotifyVirtualFd(fd) => Verdict::TraceVirtualFd(fd),
                    other => other,
                };
                (nr, traced)
            })
            .collect();
        if layer.is_empty() {
            return None;
        }
        Some(compile(&layer, vfd_base() as u32, (vfd_base() + VFD_COUNT) as u32))
    }

    /// This spec with what a module needs trapped added: its `VURS_F_*` flags and the
    /// numbers it serves.
    pub fn with_module(&self, flags: u32, syscalls: &[i32]) -> FilterSpec {
        use vurs_abi::*;
        let mut s = self.clone();
        if flags & (VURS_F_PATH_REDIRECT | VURS_F_PATH_SERVE) != 0 {
            s.paths = true;
            // Mounts made at run time may need their mount points listed.
            s.dirents = true;
        }
        s.virtual_fds |= flags & VURS_F_PATH_SERVE != 0;
        // A served create applies the caller's umask: keep it current.
        s.umask |= flags & VURS_F_PATH_SERVE != 0;
        s.ids |= flags & VURS_F_CREDS != 0;
        // Ids a module sets (set_ids) show in /proc/PID/status, synthesized at its open.
        s.paths |= flags & VURS_F_CREDS != 0;
        s.syscalls.extend(syscalls.iter().map(|&nr| nr as i64));
        s
    }

    pub fn compile(&self) -> Result<BpfProgram, String> {
        let prog = compile(&self.verdicts(), vfd_base() as u32, (vfd_base() + VFD_COUNT) as u32);
        if prog.len() > libc::BPF_MAXINSNS as usize {
            return Err(format!("seccomp filter too large ({} instructions)", prog.len()));
        }
        Ok(prog)
    }
}

fn stmt(code: u32, k: u32) -> sock_filter {
    sock_filter { code: code as u16, jt: 0, jf: 0, k }
}

fn jump(code: u32, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code: code as u16, jt, jf, k }
}

const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARGS: u32 = 16;

/// Ranges of numbers, by their first number, each with one verdict (adjacent ranges
/// differ), covering all 2^32 numbers.
fn ranges(verdicts: &BTreeMap<u32, Verdict>) -> Vec<(u32, Verdict)> {
    let mut out: Vec<(u32, Verdict)> = vec![(0, Verdict::Allow)];
    let mut set = |start: u32, v: Verdict| {
        if out.last().is_some_and(|&(s, _)| s == start) {
            out.pop();
        }
        if out.last().is_none_or(|&(_, last)| last != v) {
            out.push((start, v));
        }
    };
    for (&nr, &v) in verdicts.range(..X32_SYSCALL_BIT) {
        set(nr, v);
        set(nr + 1, Verdict::Allow);
    }
    set(X32_SYSCALL_BIT, Verdict::Enosys);
    set(NEGATIVE, Verdict::Allow);
    out
}

/// The BPF program for `verdicts`; the virtual descriptor range is [vfd_lo, vfd_hi).
pub fn compile(verdicts: &BTreeMap<u32, Verdict>, vfd_lo: u32, vfd_hi: u32) -> BpfProgram {
    let mut prog = vec![
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, OFF_ARCH),
        jump(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, crate::arch::AUDIT_ARCH, 1, 0),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_KILL_PROCESS),
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, OFF_NR),
    ];
    search(&mut prog, &ranges(verdicts), vfd_lo, vfd_hi);
    prog
}

/// Emit the search over `r` (the number is in the accumulator).
fn search(prog: &mut BpfProgram, r: &[(u32, Verdict)], vfd_lo: u32, vfd_hi: u32) {
    if r.len() == 1 {
        let ret = |v| stmt(libc::BPF_RET | libc::BPF_K, v);
        match r[0].1 {
            Verdict::Allow => prog.push(ret(libc::SECCOMP_RET_ALLOW)),
            Verdict::Trace => prog.push(ret(libc::SECCOMP_RET_TRACE)),
            Verdict::Notify => prog.push(ret(libc::SECCOMP_RET_USER_NOTIF)),
            Verdict::Enosys => prog.push(ret(libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32)),
            Verdict::TraceVirtualFd(fd) => on_virtual_fd(prog, fd, libc::SECCOMP_RET_TRACE, vfd_lo, vfd_hi),
            Verdict::NotifyVirtualFd(fd) => {
                on_virtual_fd(prog, fd, libc::SECCOMP_RET_USER_NOTIF, vfd_lo, vfd_hi)
            }
            Verdict::NotifyUnless(arg, mask) => {
                prog.push(stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, OFF_ARGS + 8 * arg as u32));
                prog.push(jump(libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K, mask, 0, 1));
                prog.push(ret(libc::SECCOMP_RET_TRACE));
                prog.push(ret(libc::SECCOMP_RET_USER_NOTIF));
            }
        }
        return;
    }
    // if nr >= split: jump over the lower half (a JA, as it may be over 255 instructions).
    let mid = r.len() / 2;
    prog.push(jump(libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K, r[mid].0, 0, 1));
    let ja = prog.len();
    prog.push(stmt(libc::BPF_JMP | libc::BPF_JA, 0));
    search(prog, &r[..mid], vfd_lo, vfd_hi);
    prog[ja].k = (prog.len() - ja - 1) as u32;
    search(prog, &r[mid..], vfd_lo, vfd_hi);
}

/// `action` when the call's descriptor (or range) meets [vfd_lo, vfd_hi), else allow. A
/// descriptor is an int: the low half of the argument (little-endian).
fn on_virtual_fd(prog: &mut BpfProgram, fd: table::FdArg, action: u32, vfd_lo: u32, vfd_hi: u32) {
    let ret = |v| stmt(libc::BPF_RET | libc::BPF_K, v);
    let load = |arg: u8| stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, OFF_ARGS + 8 * arg as u32);
    match fd {
        table::FdArg::At(arg) => {
            prog.push(load(arg));
            prog.push(jump(libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K, vfd_lo, 0, 2));
            prog.push(jump(libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K, vfd_hi, 1, 0));
        }
        // A range [first, last] meets [lo, hi) when first < hi and last >= lo.
        table::FdArg::Range(first, last) => {
            prog.push(load(first));
            prog.push(jump(libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K, vfd_hi, 3, 0));
            prog.push(load(last));
            prog.push(jump(libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K, vfd_lo, 0, 1));
        }
    }
    prog.push(ret(action));
    prog.push(ret(libc::SECCOMP_RET_ALLOW));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run a classic BPF seccomp program on (arch, nr, args) as the kernel would.
    fn run(prog: &[sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_le_bytes());
        data[4..8].copy_from_slice(&arch.to_le_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let i = prog[pc];
            let code = i.code as u32;
            pc += 1;
            match code {
                c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => {
                    let o = i.k as usize;
                    acc = u32::from_le_bytes(data[o..o + 4].try_into().unwrap());
                }
                c if c == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K => {
                    pc += if acc == i.k { i.jt } else { i.jf } as usize
                }
                c if c == libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K => {
                    pc += if acc >= i.k { i.jt } else { i.jf } as usize
                }
                c if c == libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K => {
                    pc += if acc & i.k != 0 { i.jt } else { i.jf } as usize
                }
                c if c == libc::BPF_JMP | libc::BPF_JA => pc += i.k as usize,
                c if c == libc::BPF_RET | libc::BPF_K => return i.k,
                c => panic!("unexpected instruction {c:#x}"),
            }
        }
    }

    /// Every number gets its verdict's action, in both engines; the virtual-descriptor
    /// verdicts look at the descriptor (or range) arguments.
    fn check_every_number(spec: &FilterSpec) -> (BpfProgram, u32) {
        let v = spec.verdicts();
        let (lo, hi) = (1 << 20, (1 << 20) + 65536);
        let prog = compile(&v, lo, hi);
        assert!(prog.len() < 1000, "{} instructions", prog.len());
        let x86 = crate::arch::AUDIT_ARCH;
        let fds = [
            0u64,
            3,
            lo as u64 - 1,
            lo as u64,
            hi as u64 - 1,
            hi as u64,
            0xffff_ffff_0000_0000 | lo as u64,
            u32::MAX as u64,
        ];
        for nr in 0..600u32 {
            for fd in fds {
                let (arg, action) = match v.get(&nr) {
                    None | Some(Verdict::Allow) => (None, libc::SECCOMP_RET_ALLOW),
                    Some(Verdict::Trace) => (None, libc::SECCOMP_RET_TRACE),
                    Some(Verdict::Notify) => (None, libc::SECCOMP_RET_USER_NOTIF),
                    Some(Verdict::Enosys) => (None, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
                    Some(Verdict::TraceVirtualFd(a)) => (Some(*a), libc::SECCOMP_RET_TRACE),
                    Some(Verdict::NotifyVirtualFd(a)) => (Some(*a), libc::SECCOMP_RET_USER_NOTIF),
                    Some(Verdict::NotifyUnless(a, mask)) => {
                        let mut args = [0u64; 6];
                        args[*a as usize] = fd;
                        let traced = fd as u32 & mask != 0;
                        let want =
                            if traced { libc::SECCOMP_RET_TRACE } else { libc::SECCOMP_RET_USER_NOTIF };
                        assert_eq!(run(&prog, x86, nr, args), want, "nr {nr} flags {fd:#x}");
                        continue;
                    }
                };
                match arg {
                    None => assert_eq!(run(&prog, x86, nr, [fd; 6]), action, "nr {nr}"),
                    Some(table::FdArg::At(a)) => {
                        let mut args = [0u64; 6];
                        args[a as usize] = fd;
                        let d = fd as u32;
                        let want = if d >= lo && d < hi { action } else { libc::SECCOMP_RET_ALLOW };
                        assert_eq!(run(&prog, x86, nr, args), want, "nr {nr} fd {fd:#x}");
                    }
                    Some(table::FdArg::Range(f, l)) => {
                        for first in fds {
                            let mut args = [0u64; 6];
                            args[f as usize] = first;
                            args[l as usize] = fd;
                            let meets = (first as u32) < hi && (fd as u32) >= lo;
                            let want = if meets { action } else { libc::SECCOMP_RET_ALLOW };
                            assert_eq!(run(&prog, x86, nr, args), want, "nr {nr} range {first:#x}..{fd:#x}");
                        }
                    }
                }
            }
        }
        (prog, x86)
    }

    #[test]
    fn search_gives_each_number_its_verdict() {
        let notify = FilterSpec {
            paths: true,
            virtual_fds: true,
            ids: true,
            umask: true,
            notify: true,
            ..Default::default()
        };
        let (prog, x86) = check_every_number(&notify);
        assert_eq!(run(&prog, x86, libc::SYS_openat as u32, [0; 6]), libc::SECCOMP_RET_USER_NOTIF);
        let o_path = [0, 0, libc::O_PATH as u64, 0, 0, 0];
        assert_eq!(run(&prog, x86, libc::SYS_openat as u32, o_path), libc::SECCOMP_RET_TRACE);
        assert_eq!(run(&prog, x86, libc::SYS_execve as u32, [0; 6]), libc::SECCOMP_RET_TRACE);
        assert_eq!(run(&prog, x86, libc::SYS_setuid as u32, [0; 6]), libc::SECCOMP_RET_TRACE);
        let spec =
            FilterSpec { paths: true, virtual_fds: true, ids: true, umask: true, ..Default::default() };
        let (prog, x86) = check_every_number(&spec);
        let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
        assert_eq!(run(&prog, x86, X32_SYSCALL_BIT | libc::SYS_openat as u32, [0; 6]), enosys);
        assert_eq!(run(&prog, x86, NEGATIVE - 1, [0; 6]), enosys);
        assert_eq!(run(&prog, x86, u32::MAX, [0; 6]), libc::SECCOMP_RET_ALLOW);
        assert_eq!(run(&prog, x86, NEGATIVE, [0; 6]), libc::SECCOMP_RET_ALLOW);
        assert_eq!(run(&prog, AUDIT_ARCH_I386, 5, [0; 6]), libc::SECCOMP_RET_KILL_PROCESS);
        assert_eq!(run(&prog, x86, libc::SYS_openat as u32, [0; 6]), libc::SECCOMP_RET_TRACE);
        assert_eq!(run(&prog, x86, libc::SYS_getpid as u32, [0; 6]), libc::SECCOMP_RET_ALLOW);
        assert_eq!(run(&prog, x86, libc::SYS_io_uring_setup as u32, [0; 6]), enosys);
    }

    #[test]
    fn io_uring_is_refused_only_with_path_modules() {
        let x86 = crate::arch::AUDIT_ARCH;
        let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
        let nr = libc::SYS_io_uring_setup as u32;
        for (paths, want) in [(true, enosys), (false, libc::SECCOMP_RET_ALLOW)] {
            let spec = FilterSpec { paths, ..Default::default() };
            let prog = compile(&spec.verdicts(), 1 << 20, (1 << 20) + 65536);
            assert_eq!(run(&prog, x86, nr, [0; 6]), want, "paths: {paths}");
        }
    }

    #[test]
    fn empty_spec_traps_only_the_control_calls() {
        let v = FilterSpec::default().verdicts();
        assert_eq!(v.len(), 4); // the control call, mount, umount2, chroot
        let prog = compile(&v, 1 << 20, (1 << 20) + 65536);
        let x86 = crate::arch::AUDIT_ARCH;
        let traced: Vec<u32> =
            (0..1000).filter(|&nr| run(&prog, x86, nr, [0; 6]) == libc::SECCOMP_RET_TRACE).collect();
        let mut want: Vec<u32> = v.keys().copied().filter(|&n| n < 1000).collect();
        want.sort();
        assert_eq!(traced, want);
        assert_eq!(run(&prog, x86, crate::control::CONTROL_NR as u32, [0; 6]), libc::SECCOMP_RET_TRACE);
    }
}
