//! The tracer thread: waits for stops, keeps the task tables, and for each seccomp stop
//! runs decode -> dispatch -> apply. Every ptrace request is made from this thread.
#![forbid(unsafe_code)]
pub mod apply;
pub mod event;
mod layers;
pub mod materialize;
pub mod tasks;
pub mod workers;

use crate::dispatch::{self, Action, Caller, Decision, Scratch};
use crate::errno::Errno;
use crate::session::Session;
use crate::syscall::Call;
use crate::tracee::ptrace::{self, Pid, Stopped};
use crate::tracelog;
use event::Stop;
use parking_lot::Mutex;
use workers::{Job, Workers};
// Pid-keyed tables on the hot path: a fast non-cryptographic hash (pids are not chosen
// by an adversary who could gain anything from collisions).
use crate::dispatch::{Creds, ExitHook, TaskIndex, TaskView};
use rustc_hash::{FxHashMap as HashMap, FxHashSet};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use tasks::{Injected, Mm, Pending, Proc, Thread, SCRATCH_MMAP_ARGS};

const CLONE_THREAD: u64 = libc::CLONE_THREAD as u64;
const CLONE_VM: u64 = libc::CLONE_VM as u64;
const CLONE_FILES: u64 = libc::CLONE_FILES as u64;
const CLONE_FS: u64 = libc::CLONE_FS as u64;

pub struct Tracer {
    session: Arc<Session>,
    threads: HashMap<Pid, Thread>,
    procs: HashMap<Pid, Proc>,
    /// Stops of new tasks whose parent's fork event has not been seen yet.
    parked: HashMap<Pid, i32>,
    root: Pid,
    root_status: Option<i32>,
    /// Worker threads, when a module may block.
    workers: Option<Workers>,
    /// Calls handed to workers and not answered yet.
    outstanding: usize,
    /// (process, directory fd) whose synthetic entries were already returned this pass.
    dirents_done: FxHashSet<(Pid, i32)>,
    force_workers: bool,
    /// Every live task, for the notification engine's threads.
    tasks: Arc<TaskIndex>,
    /// Filter layers added at run time that every task was asked to get (layers.rs).
    layers_requested: usize,
    /// Layer programs as tasks read them (`struct sock_filter` bytes), by (from, to) layers:
    /// built once however many tasks get them (None: nothing to trap).
    layer_images: HashMap<(usize, usize), Option<Arc<layers::Image>>>,
}

impl Tracer {
    pub fn new(session: Arc<Session>, root: Pid, tasks: Arc<TaskIndex>) -> Tracer {
        tracelog::one_line_panics();
        workers::block_wake_signals();
        let (pid, tid) = crate::tracee::sys::this_thread();
        session.set_tracer_thread(pid, tid);
        // VURS_FORCE_WORKERS=1 (a benchmark knob): decide every call on a worker thread, to
        // measure the thread hop against inline decisions (docs/benchmarks.md).
        let force_workers = std::env::var_os("VURS_FORCE_WORKERS").is_some_and(|v| v == "1");
        let workers =
            (force_workers || session.may_block()).then(|| Workers::start(session.clone(), 4)).flatten();
        let mut t = Tracer {
            session,
            threads: HashMap::default(),
            procs: HashMap::default(),
            parked: HashMap::default(),
            root,
            root_status: None,
            workers,
            outstanding: 0,
            dirents_done: Default::default(),
            force_workers,
            tasks,
            layers_requested: 0,
            layer_images: HashMap::default(),
        };
        t.session.live.lock().insert(root);
        t.procs.insert(root, Proc::new(Default::default(), Creds::own(), Default::default()));
        t.enter(root, root, 0);
        t
    }

    /// Thread `tid` of process `tgid` (whose `Proc` exists), with `layers` filter layers
    /// added at run time, is known from now on.
    fn enter(&mut self, tid: Pid, tgid: Pid, layers: usize) {
        self.threads.insert(tid, Thread::new(tgid, layers));
        if let Some(p) = self.procs.get(&tgid) {
            let view = TaskView { tgid, fds: p.fds.clone(), creds: p.creds.clone(), fs: p.fs.clone() };
            self.tasks.insert(tid, Arc::new(view));
        }
    }

    /// Thread `tid` is gone.
    fn leave(&mut self, tid: Pid) -> Option<Thread> {
        self.tasks.remove(tid);
        self.threads.remove(&tid)
    }

    /// Serve until the last tracee is gone; returns the exit status of COMMAND
    /// (-N if a signal N killed it).
    pub fn run(mut self) -> i32 {
        loop {
            let mut flags = 0;
            if self.outstanding > 0 {
                self.collect_done();
                flags |= libc::WNOHANG;
            }
            // `insmod` (decided on this thread or a worker) added filter layers.
            if self.session.layer_count() > self.layers_requested {
                self.request_layers();
            }
            if !self.parked.is_empty() && flags & libc::WNOHANG == 0 {
                // Before sleeping with a task parked: is its creator still there to report it?
                if let Ok(Some((pid, status))) = crate::tracee::sys::wait_any(libc::WNOHANG) {
                    self.on_status_guarded(pid, status);
                    continue;
                }
                let before = self.parked.len();
                self.adopt_orphans();
                if self.parked.len() != before {
                    continue;
                }
                // The creators are alive: their fork events will come.
            }
            let (pid, status) = match crate::tracee::sys::wait_any(flags) {
                Ok(Some(found)) => found,
                Ok(None) => {
                    workers::wait_wake(100);
                    continue;
                }
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(_) => break, // ECHILD: nobody left
            };
            self.on_status_guarded(pid, status);
        }
        crate::module::process_ending();
        self.root_status.unwrap_or(0)
    }

    /// Handle one wait status; a bug (a panic) anywhere in that handling costs the stopped
    /// call an EIO and one logged line, never the session.
    fn on_status_guarded(&mut self, pid: Pid, status: i32) {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.on_status(pid, status)));
        if r.is_err() {
            if let Some(t) = self.threads.get_mut(&pid) {
                if matches!(t.pending, Pending::ExitHook { .. }) {
                    t.pending = Pending::Idle;
                }
            }
            // The handler that held the stop's token unwound without resuming the tracee:
            // the stop is still there, and this wait status is its token again.
            let Some(t) = Stopped::from_wait(pid, status) else { return };
            match event::classify(status) {
                Stop::Seccomp => {
                    tracelog::internal_error(&format!("[{pid}] the trapped call fails with EIO"));
                    let _ = apply::skip(&t, Errno(libc::EIO).neg());
                    resume(t, 0);
                }
                Stop::GroupStop(_) => {
                    let _ = t.listen();
                }
                Stop::Signal(sig) => resume(t, sig),
                _ => resume(t, 0),
            }
        }
    }

    fn on_status(&mut self, pid: Pid, status: i32) {
        let stop = event::classify(status);
        // A shell and the one command it waits for: one task runs at a time.
        crate::tracee::sys::set_tracer_serial(self.threads.len() <= 2);
        if !self.threads.contains_key(&pid) {
            match stop {
                Stop::Exited(_) | Stop::Killed(_) => {}
                // Exec from a non-leader thread: the event comes under the leader's pid.
                Stop::Exec => {
                    if let Some(t) = Stopped::from_wait(pid, status) {
                        self.on_exec(t)
                    }
                }
                _ => {
                    self.parked.insert(pid, status);
                }
            }
            return;
        }
        let Some(t) = Stopped::from_wait(pid, status) else {
            match stop {
                Stop::Exited(code) => self.on_exit(pid, code),
                Stop::Killed(sig) => self.on_exit(pid, -sig),
                _ => {}
            }
            return;
        };
        match stop {
            Stop::Seccomp => self.on_seccomp(t),
            Stop::SyscallExit => self.on_syscall_exit(t),
            Stop::NewTask => self.on_new_task(t),
            Stop::Exec => self.on_exec(t),
            Stop::GroupStop(_) => {
                let _ = t.listen();
            }
            Stop::EventStop if self.lacks_layers(pid) => self.layer_from_event_stop(t),
            Stop::Signal(sig) => self.resume_task(t, sig),
            Stop::EventStop | Stop::Other | Stop::Exited(_) | Stop::Killed(_) => self.resume_task(t, 0),
        }
    }

    /// Resume a task, keeping it on its way to the syscall entry where it gets its layers.
    fn resume_task(&mut self, t: Stopped, sig: i32) {
        let awaiting = self
            .threads
            .get(&t.tid())
            .is_some_and(|th| matches!(th.pending, Pending::Layering(layers::Layering::AwaitEntry)));
        if awaiting {
            let _ = t.syscall(sig);
        } else {
            resume(t, sig);
        }
    }

    /// Apply the decisions workers have sent back.
    fn collect_done(&mut self) {
        let Some(w) = &self.workers else { return };
        let done: Vec<_> = w.rx.try_iter().collect();
        for d in done {
            self.outstanding -= 1;
            if self.threads.contains_key(&d.stopped.tid()) {
                self.apply(d.stopped, &d.call, d.decision);
            }
        }
    }

    /// Whether this call may reach a module that blocks: then a worker decides it.
    fn for_worker(&mut self, call: &Call, fds: &Arc<Mutex<crate::vfd::fdtable::FdTable>>) -> bool {
        if self.force_workers {
            return self.workers.is_some();
        }
        if self.workers.is_none() {
            if !self.session.may_block() {
                return false;
            }
            // A blocking module was inserted at run time, or one turned out to block. With
            // no worker to be had, calls are decided here (and the next one tries again).
            self.workers = Workers::start(self.session.clone(), 4);
            if self.workers.is_none() {
                return false;
            }
        }
        if let Some(m) = self.session.syscall_owner.read().get(&call.nr) {
            return m.may_block();
        }
        if dispatch::on_virtual_fd(call) {
            // The descriptor's owner decides (close_range may span many: not a blocking call).
            let fd = crate::syscall::table::FD_CALLS.iter().find_map(|&(sys, fd)| match fd {
                crate::syscall::table::FdArg::At(n)
                    if sys as i64 == call.nr && crate::vfd::is_virtual(call.args[n as usize] as i64) =>
                {
                    Some(call.args[n as usize] as i32)
                }
                _ => None,
            });
            return fd.and_then(|fd| fds.lock().get(fd).map(|e| e.file.module.may_block())).unwrap_or(false);
        }
        call.spec.is_some() && self.session.mounts.read().mounts.iter().any(|m| m.module.may_block())
    }

    fn on_exit(&mut self, tid: Pid, status: i32) {
        let Some(t) = self.leave(tid) else {
            return;
        };
        if let Some(p) = self.procs.get_mut(&t.tgid) {
            if let Some(slot) = t.slot {
                p.mm.lock().free.push(slot);
            }
            p.threads -= 1;
            if p.threads == 0 {
                self.procs.remove(&t.tgid);
                self.session.live.lock().remove(&t.tgid);
                crate::module::hooks::proc_exit(&self.session.modules, t.tgid);
                // Its descriptors are released: shadow copies it wrote go back now, while
                // the session (and its clock) is alive.
                crate::vfd::shadow::sync();
            }
        }
        if tid == self.root {
            self.root_status = Some(status);
        }
        if !self.parked.is_empty() && !self.procs.contains_key(&t.tgid) {
            self.adopt_orphans();
        }
    }

    /// New tasks whose creator died before its fork event was seen (SIGKILL skips the
    /// event) would stay parked forever: a parked process whose parent is no tracee any
    /// more (it was reparented) is adopted as a process of its own, with fresh tables.
    /// A parked thread waits for its group's creator, unless the group is gone.
    fn adopt_orphans(&mut self) {
        let orphans: Vec<(Pid, Pid)> = self
            .parked
            .keys()
            .filter_map(|&pid| {
                let st = crate::path::procfs::status(pid)?;
                let field =
                    |k: &str| -> Option<Pid> { crate::path::procfs::status_field(&st, k)?.parse().ok() };
                let (tgid, ppid) = (field("Tgid")?, field("PPid")?);
                let orphan = if tgid == pid {
                    !self.procs.contains_key(&ppid)
                } else {
                    !self.procs.contains_key(&tgid)
                };
                orphan.then_some((pid, tgid))
            })
            .collect();
        for (pid, tgid) in orphans {
            let Some(status) = self.parked.remove(&pid) else { continue };
            let tgid = if tgid != pid && self.procs.contains_key(&tgid) { tgid } else { pid };
            if tgid == pid {
                self.procs.insert(pid, Proc::new(Default::default(), Creds::own(), Default::default()));
                self.session.live.lock().insert(pid);
            } else if let Some(p) = self.procs.get_mut(&tgid) {
                p.threads += 1;
            }
            // Its layers are unknown: it gets them all again (a duplicate layer only costs).
            self.enter(pid, tgid, 0);
            self.on_status(pid, status);
        }
    }

    fn on_new_task(&mut self, stopped: Stopped) {
        let parent = stopped.tid();
        let Ok(child) = ptrace::event_msg(parent) else {
            return resume(stopped, 0);
        };
        let child = child as Pid;
        let flags = clone_flags(parent);
        let ptgid = self.threads[&parent].tgid;
        let tgid = if flags & CLONE_THREAD != 0 { ptgid } else { child };
        if tgid == ptgid {
            if let Some(p) = self.procs.get_mut(&ptgid) {
                p.threads += 1;
            }
        } else if let Some(pp) = self.procs.get(&ptgid) {
            let mm = if flags & CLONE_VM != 0 {
                pp.mm.clone()
            } else {
                // The child's copy of the address space has the same scratch regions, all free.
                let old = pp.mm.lock();
                let mut mm = Mm { failed: old.failed, ..Default::default() };
                mm.free = old.free.clone();
                drop(old);
                for t in self.threads.values().filter(|t| t.tgid == ptgid) {
                    if let Some(s) = t.slot {
                        mm.free.push(s);
                    }
                }
                Arc::new(Mutex::new(mm))
            };
            let fds = if flags & CLONE_FILES != 0 {
                pp.fds.clone()
            } else {
                Arc::new(Mutex::new(pp.fds.lock().clone()))
            };
            let creds = Arc::new(Mutex::new(pp.creds.lock().clone()));
            let fs = if flags & CLONE_FS != 0 {
                pp.fs.clone()
            } else {
                Arc::new(Mutex::new(pp.fs.lock().clone()))
            };
            self.procs.insert(tgid, Proc { mm, fds, threads: 1, creds, fs });
            self.session.live.lock().insert(tgid);
            crate::module::hooks::proc_fork(&self.session.modules, ptgid, tgid);
        }
        let layers = self.threads[&parent].layers;
        self.enter(child, tgid, layers);
        resume(stopped, 0);
        if let Some(status) = self.parked.remove(&child) {
            self.on_status(child, status);
        }
    }

    fn on_exec(&mut self, t: Stopped) {
        let pid = t.tid();
        // A non-leader thread that execs takes the leader's pid; its old tid is gone.
        let former = ptrace::event_msg(pid).map(|m| m as Pid).unwrap_or(pid);
        let tgid = self.threads.get(&former).map(|t| t.tgid).unwrap_or(pid);
        // Filters survive exec.
        let layers = self.threads.get(&former).or(self.threads.get(&pid)).map(|t| t.layers).unwrap_or(0);
        // Every other thread of the group is gone now.
        let gone: Vec<Pid> = self.threads.iter().filter(|(_, t)| t.tgid == tgid).map(|(&k, _)| k).collect();
        for k in gone {
            self.leave(k);
        }
        let creds = self.procs.get(&tgid).map(|p| p.creds.lock().clone()).unwrap_or_else(Creds::own);
        // exec keeps the root and the cwd.
        let fs = self.procs.get(&tgid).map(|p| p.fs.clone()).unwrap_or_default();
        let fds = self.procs.get(&tgid).map(|p| {
            let mut t = p.fds.lock().clone();
            t.exec();
            t
        });
        self.procs.remove(&tgid);
        {
            let mut live = self.session.live.lock();
            live.remove(&tgid);
            live.insert(pid);
        }
        self.procs.insert(pid, Proc::new(fds.unwrap_or_default(), creds, fs));
        self.enter(pid, pid, layers);
        crate::module::hooks::proc_exec(&self.session.modules, pid);
        if self.session.hide_vdso() {
            crate::tracee::vdso::hide(pid);
        }
        resume(t, 0);
    }

    fn on_seccomp(&mut self, mut stopped: Stopped) {
        let tid = stopped.tid();
        if self.threads.get(&tid).is_some_and(|t| matches!(t.pending, Pending::Materializing(_))) {
            // A step of a materialization trapped: let it run to its exit.
            let _ = stopped.syscall(0);
            return;
        }
        let call = match Call::fetch(tid) {
            Ok(c) => c,
            Err(_) => return resume(stopped, 0),
        };
        // A chroot in a session that does not trap path calls: they trap from now on (the
        // process's paths resolve from its root), and its caller gets the new filter layer
        // right here, before the chroot is decided (it restarts through the layer).
        if call.nr == libc::SYS_chroot && !self.session.traps_paths() {
            self.session.trap_paths();
            self.request_layers();
        }
        if self.lacks_layers(tid)
            && self.threads.get(&tid).is_some_and(|t| matches!(t.pending, Pending::Idle))
        {
            let saved = Injected { nr: call.nr as u64, args: call.args, ip: call.ip };
            match self.inject_layer(stopped, saved) {
                Some(s) => stopped = s,
                None => return,
            }
        }
        crate::report::injected_panic(call.nr);
        crate::report::summary::stop_seen(tid, &call);
        // Most stops end here (not when tracing: every call is logged then; not when every
        // decision is to be made on a worker).
        let pre = if tracelog::enabled() || self.force_workers {
            None
        } else {
            match dispatch::fast::try_pass(&self.session, tid, &call) {
                dispatch::fast::Fast::Pass => {
                    crate::report::summary::fast_pass(tid, &call);
                    return resume(stopped, 0);
                }
                dispatch::fast::Fast::Decide(pre) => pre,
            }
        };
        let Some(t) = self.threads.get_mut(&tid) else { return resume(stopped, 0) };
        let tgid = t.tgid;
        let Some(p) = self.procs.get(&tgid) else { return resume(stopped, 0) };
        // Scratch: the thread's slot, or a free one of its address space.
        if t.slot.is_none() {
            t.slot = p.mm.lock().free.pop();
        }
        let (slot, fds, creds, fs) = (t.slot, p.fds.clone(), p.creds.lock().clone(), p.fs.lock().clone());
        if self.for_worker(&call, &fds) {
            let job = Job { stopped, tgid, call, fds, slot, creds, fs };
            self.workers.as_ref().expect("workers").submit(job);
            self.outstanding += 1;
            return;
        }
        let mut scratch = Scratch::in_tracee(tid, slot);
        let caller = Caller { tid, tgid, fds, creds, fs };
        // A bug here is caught by `on_status_guarded`: the call fails with EIO.
        let d = dispatch::decide(&self.session, &caller, &call, &mut scratch, pre);
        self.apply(stopped, &call, d);
    }

    fn apply(&mut self, stopped: Stopped, call: &Call, d: Decision) {
        // The decision added a filter layer (getdents64 trapped once a merged directory
        // is opened): every task, this caller first, is interrupted before it runs on.
        if self.session.layer_count() > self.layers_requested {
            self.request_layers();
        }
        let tid = stopped.tid();
        crate::report::summary::decided(tid, call, &d);
        let tracing = tracelog::enabled();
        let line = if tracing { Some(crate::report::call_line(tid, call, &d)) } else { None };
        let mut exit = d.exit.clone();
        if exit.is_none() && tracing && !matches!(d.action, Action::Return(_)) {
            exit = Some(ExitHook::Log);
        }
        let r = match d.action {
            Action::Pass => Ok(()),
            Action::Return(v) => {
                if let Some(l) = line {
                    tracelog::line(&format!("{l} = {}", tracelog::show_ret(v)));
                }
                if apply::skip(&stopped, v).is_ok() {
                    resume(stopped, 0);
                }
                return;
            }
            Action::Rewrite(args) => apply::set_call(&stopped, call, call.nr, &args),
            Action::RewriteAs(nr, args) => apply::set_call(&stopped, call, nr, &args),
            Action::NeedScratch => return self.inject_mmap(stopped, call),
            Action::Materialize(plan) => {
                if let Some(l) = line {
                    tracelog::line(&format!("{l} = (injecting)"));
                }
                let Some(plan) = plan.lock().take() else { return resume(stopped, 0) };
                let running = materialize::start(stopped, call, plan);
                self.threads.get_mut(&tid).expect("known thread").pending =
                    running.map_or(Pending::Idle, Pending::Materializing);
                return;
            }
        };
        if r.is_err() {
            return; // the tracee died meanwhile
        }
        match exit {
            Some(hook) => {
                self.threads.get_mut(&tid).expect("known thread").pending =
                    Pending::ExitHook { hook, line: line.unwrap_or_default() };
                let _ = stopped.syscall(0);
            }
            None => resume(stopped, 0),
        }
    }

    /// Replace the current call by mmap of a scratch region; at its exit, rewind so the
    /// original call runs (and traps) again.
    fn inject_mmap(&mut self, stopped: Stopped, call: &Call) {
        let tid = stopped.tid();
        let tgid = self.threads[&tid].tgid;
        let failed = self.procs.get(&tgid).map(|p| p.mm.lock().failed).unwrap_or(true);
        if failed {
            let _ = apply::skip(&stopped, Errno(libc::ENOMEM).neg());
            return resume(stopped, 0);
        }
        if apply::set_call(&stopped, call, libc::SYS_mmap, &SCRATCH_MMAP_ARGS).is_err() {
            return;
        }
        self.threads.get_mut(&tid).expect("known thread").pending =
            Pending::InjectedMmap(Injected { nr: call.nr as u64, args: call.args, ip: call.ip });
        let _ = stopped.syscall(0);
    }

    /// The exit of an injected mmap: the new region's slots are free; the original call
    /// restarts (and traps again).
    fn after_injected_mmap(&mut self, stopped: Stopped, inj: Injected) {
        self.take_scratch_region(&stopped);
        if apply::restart(&stopped, inj.nr, &inj.args, inj.ip).is_ok() {
            resume(stopped, 0);
        }
    }

    /// At the exit of an injected mmap of scratch memory: its slots are free now (or the
    /// process is marked as unable to get any).
    fn take_scratch_region(&mut self, stopped: &Stopped) {
        let tgid = self.threads[&stopped.tid()].tgid;
        let ret = apply::result(stopped).unwrap_or(-1);
        if let Some(p) = self.procs.get(&tgid) {
            let mut mm = p.mm.lock();
            if (-4095..0).contains(&ret) {
                mm.failed = true;
            } else {
                mm.add_region(ret as u64);
            }
        }
    }

    fn on_syscall_exit(&mut self, stopped: Stopped) {
        let tid = stopped.tid();
        let t = self.threads.get_mut(&tid).expect("known thread");
        let (hook, line) = match std::mem::take(&mut t.pending) {
            Pending::Idle => return resume(stopped, 0),
            Pending::Materializing(m) => {
                t.pending =
                    materialize::on_syscall_stop(stopped, m).map_or(Pending::Idle, Pending::Materializing);
                return;
            }
            Pending::InjectedMmap(inj) => return self.after_injected_mmap(stopped, inj),
            Pending::Layering(state) => return self.on_layering_stop(stopped, state),
            Pending::ExitHook { hook, line } => (hook, line),
        };
        let mut ret = apply::result(&stopped).unwrap_or(0);
        let (hook, module_exit) = hook.split_module();
        if let ExitHook::Dirents { fd, buf, cap, entries } = &hook {
            let key = (self.threads[&tid].tgid, *fd);
            if ret > 0 {
                self.dirents_done.remove(&key);
            } else if ret == 0 && self.dirents_done.insert(key) {
                let data = dispatch::synthetic_dirents(entries, *cap as usize);
                if !data.is_empty()
                    && crate::tracee::memory::write(tid, *buf, &data).is_ok()
                    && apply::set_result(&stopped, data.len() as i64).is_ok()
                {
                    ret = data.len() as i64;
                }
            }
        }
        if matches!(hook, ExitHook::RefreshCreds) && ret >= 0 {
            let tgid = self.threads[&tid].tgid;
            if let (Some(c), Some(p)) = (Creds::read(tid), self.procs.get_mut(&tgid)) {
                p.creds.lock().refresh(c);
            }
        }
        if matches!(hook, ExitHook::ForgetWalks) {
            self.session.mounts.read().nodecache.clear();
        }
        if let ExitHook::Unlink(path) = &hook {
            let _ = std::fs::remove_file(std::ffi::OsStr::from_bytes(path));
        }
        if let ExitHook::ReverseLink { buf, size, path } = hook {
            if let Some(n) = dispatch::reverse_link(&self.session, tid, &path, buf, size, ret) {
                if apply::set_result(&stopped, n).is_ok() {
                    ret = n;
                }
            }
        }
        if let Some(m) = module_exit {
            let n = dispatch::module_exit_of(&self.session, &self.tasks, tid, &m, ret);
            if n != ret && apply::set_result(&stopped, n).is_ok() {
                ret = n;
            }
        }
        if tracelog::enabled() {
            tracelog::line(&format!("{line} = {}", tracelog::show_ret(ret)));
        }
        resume(stopped, 0);
    }
}

fn resume(t: Stopped, sig: i32) {
    // Gone: it died meanwhile; its exit status comes through waitpid.
    let _ = t.cont(sig);
}

/// Clone flags of the call that created a task (parent stopped at the event).
fn clone_flags(parent: Pid) -> u64 {
    let Ok(regs) = ptrace::get_regs(parent) else {
        return 0;
    };
    let nr = crate::arch::regs_nr(&regs) as i64;
    let args = crate::arch::regs_args(&regs);
    match nr {
        libc::SYS_clone => args[0],
        libc::SYS_clone3 => {
            let mut b = [0u8; 8];
            match crate::tracee::memory::read(parent, args[0], &mut b) {
                Ok(()) => u64::from_ne_bytes(b),
                Err(_) => 0,
            }
        }
        libc::SYS_vfork => CLONE_VM,
        _ => 0,
    }
}
