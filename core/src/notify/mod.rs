//! The notification engine: trapped calls that need no registers reach vurs as seccomp
//! user notifications (SECCOMP_RET_USER_NOTIF) instead of ptrace stops. A supervisor
//! thread receives each one, decides it with the same code as the ptrace engine
//! (`dispatch::decide`), and answers: CONTINUE for a call that passes, a value for one a
//! module answered, or the call carried out by vurs for the caller (`emulate`). With the
//! listener in SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP mode, a round trip stays on the caller's
//! CPU: a few microseconds instead of two cross-CPU wake-ups. ptrace remains for what
//! needs registers or lifecycle (exec, chdir, fork/exit events, signals, job control);
//! see docs/architecture.md.
pub mod emulate;
mod relay;

use crate::dispatch::{self, Caller, Scratch};
use crate::dispatch::{Creds, TaskIndex};
use crate::errno::Errno;
use crate::session::Session;
use crate::syscall::Call;
use crate::tracee::ptrace::Pid;
use crate::tracee::seccomp::{Listener, Notif};
use crate::tracelog;
use emulate::Answer;
use parking_lot::Mutex;
use rustc_hash::FxHashSet;
use std::sync::Arc;

/// Which engine decides the trapped calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Every trapped call is a ptrace stop (SECCOMP_RET_TRACE).
    Ptrace,
    /// Calls that need no registers are seccomp notifications; the rest ptrace stops.
    Notify,
}

impl Engine {
    /// The engine for this session: `VURS_ENGINE=ptrace|notify` if set, else the
    /// notification engine where the kernel has what it needs (probed once).
    pub fn choose() -> Result<Engine, String> {
        match std::env::var("VURS_ENGINE").ok().as_deref() {
            Some("ptrace") => Ok(Engine::Ptrace),
            Some("notify") if probe() => Ok(Engine::Notify),
            Some("notify") => {
                Err("VURS_ENGINE=notify: this kernel lacks seccomp user notification with synchronous wake-up (Linux 6.6+)".into())
            }
            Some(other) => Err(format!("VURS_ENGINE={other}: expected ptrace or notify")),
            None if probe() => Ok(Engine::Notify),
            None => Ok(Engine::Ptrace),
        }
    }
}

/// Whether this kernel offers what the notification engine needs: user notification
/// with killable waits (5.19), descriptors sent as the answer (5.14) and synchronous
/// wake-up (6.6). Checked by the running kernel's version: the flags cannot be tried
/// without installing a filter on vurs itself.
fn probe() -> bool {
    let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") else { return false };
    let mut parts = release.trim().split(|c: char| !c.is_ascii_digit()).filter_map(|p| p.parse::<u32>().ok());
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (6, 6)
}

/// What the supervisor threads share.
pub struct Supervisor {
    pub listener: Arc<Listener>,
    pub session: Arc<Session>,
    pub tasks: Arc<TaskIndex>,
    /// (process, directory fd) whose virtual entries were already listed this pass.
    pub dirents_done: Mutex<FxHashSet<(Pid, i32)>>,
    /// vurs's own identity (callers with another one are served with theirs).
    pub own: Creds,
    /// Decisions that may block on a module run on these workers, not on the receiving
    /// thread (taken away at the end, which ends the workers). Started with the session
    /// when a module says it may block, or later when one turns out to (`start_workers`).
    slow: Mutex<Option<crossbeam_channel::Sender<(Notif, Call, Caller)>>>,
    workers: Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// The session is over: the receiving thread stops at its next wake-up.
    stop: std::sync::atomic::AtomicBool,
    /// Which thread receives, and the watchdog's view of it (notify/relay.rs).
    relay: relay::Relay,
}

/// The running supervisor threads.
pub struct Running {
    sv: Arc<Supervisor>,
    watchdog: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// End the threads (the session is over), so their hold on the session ends too and
    /// the modules' fini runs (but for a thread still inside a slow call after a second,
    /// which is let go).
    pub fn stop(self) {
        self.sv.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // The watchdog first: it must not start a receiving thread meanwhile.
        self.sv.relay.wake_watchdog();
        if let Some(w) = self.watchdog {
            let _ = w.join();
        }
        self.sv.relay.end();
        self.sv.slow.lock().take();
        let workers = std::mem::take(&mut *self.sv.workers.lock());
        for w in workers {
            let _ = w.join();
        }
    }
}

/// Start serving `listener`: a receiving thread and its watchdog (notify/relay.rs), and,
/// when a module may block, workers for its calls.
pub fn start(listener: Listener, session: Arc<Session>, tasks: Arc<TaskIndex>) -> Running {
    let listener = Arc::new(listener);
    if let Err(e) = listener.set_flags(crate::tracee::seccomp::SYNC_WAKE_UP) {
        tracelog::internal_error(&format!("synchronous wake-up not available ({e}): calls cost more"));
    }
    crate::tracee::seccomp::install_wake_handler();
    let sv = Arc::new(Supervisor {
        listener,
        session,
        tasks,
        dirents_done: Default::default(),
        own: Creds::own(),
        slow: Mutex::new(None),
        workers: Mutex::new(Vec::new()),
        stop: Default::default(),
        relay: relay::Relay::new(),
    });
    if sv.session.may_block() {
        *sv.slow.lock() = sv.start_workers();
    }
    relay::start_receiver(&sv, 0).expect("spawn the supervisor thread");
    let watched = sv.clone();
    let watchdog = std::thread::Builder::new()
        .name("vurs-watchdog".into())
        .spawn(move || relay::watchdog(watched))
        .map_err(|e| tracelog::internal_error(&format!("no watchdog for slow calls: {e}")))
        .ok();
    Running { sv, watchdog }
}

impl Supervisor {
    /// Start the workers for calls that may block: the sender of their queue, None if not
    /// one could be started (calls then stay on the receiving thread, and the relay).
    fn start_workers(self: &Arc<Self>) -> Option<crossbeam_channel::Sender<(Notif, Call, Caller)>> {
        let (tx, rx) = crossbeam_channel::unbounded::<(Notif, Call, Caller)>();
        let mut workers = self.workers.lock();
        for i in 0..4 {
            let (sv, rx) = (self.clone(), rx.clone());
            let spawned = std::thread::Builder::new().name(format!("vurs-slow-{i}")).spawn(move || {
                let _ = crate::tracee::seccomp::unshare_fs();
                for (n, call, caller) in rx {
                    sv.decide_and_answer(&n, &call, &caller, None);
                }
            });
            match spawned {
                Ok(h) => workers.push(h),
                Err(e) => tracelog::internal_error(&format!("a worker for calls that may block: {e}")),
            }
        }
        (!workers.is_empty()).then_some(tx)
    }

    fn stopping(&self) -> bool {
        self.stop.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Receive and decide calls while this thread (number `number`) is the receiving one.
    fn receive_loop(self: &Arc<Self>, number: u64, busy: &relay::Busy) {
        while relay::still_receiving(self, number) && !self.stopping() {
            match self.listener.recv() {
                Ok(n) => {
                    let r =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.on_notif(&n, busy)));
                    if r.is_err() {
                        tracelog::internal_error(&format!("[{}] the trapped call fails with EIO", n.tid));
                        let _ = self.listener.respond(n.id, Errno(libc::EIO).neg(), false);
                    }
                }
                Err(_) if self.stopping() => break,
                // Every task of the session is gone: RECV would fail at once forever, and
                // spinning on it held the tracer off this CPU for a time slice (~5-8 ms)
                // at the end of one session in five.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) && self.listener.orphaned() => break,
                // EINTR: a signal; ENOENT: the caller died before its call was received.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::ENOENT)) => continue,
                Err(e) => {
                    tracelog::internal_error(&format!("the seccomp listener failed: {e}"));
                    break;
                }
            }
        }
    }

    /// One notification: most end at the fast path (a path known to pass).
    fn on_notif(self: &Arc<Self>, n: &Notif, busy: &relay::Busy) {
        let call = Call::from_notif(n);
        crate::report::injected_panic(call.nr);
        crate::report::summary::stop_seen(n.tid, &call);
        let pre = if tracelog::enabled() {
            None
        } else {
            match dispatch::fast::try_pass(&self.session, n.tid, &call) {
                dispatch::fast::Fast::Pass => {
                    crate::report::summary::fast_pass(n.tid, &call);
                    let _ = self.listener.respond(n.id, 0, true);
                    return;
                }
                dispatch::fast::Fast::Decide(pre) => pre,
            }
        };
        // From here the call may take long (a module, a blocking open): the watchdog hands
        // receiving on if it does.
        let _deciding = self.relay.deciding(busy);
        // A task vurs does not know yet cannot call (a new task runs only once the tracer
        // has seen it); should one, it is served as a process of its own.
        let caller = self.tasks.caller(n.tid).unwrap_or_else(|| Caller {
            tid: n.tid,
            tgid: crate::path::procfs::status(n.tid)
                .and_then(|st| crate::path::procfs::status_field(&st, "Tgid")?.parse().ok())
                .unwrap_or(n.tid),
            fds: Default::default(),
            creds: Creds::read(n.tid).unwrap_or_else(|| self.own.clone()),
            fs: Default::default(),
        });
        let mut slow = self.slow.lock();
        // A module that turned out to block (`Module::turn_slow`) gets the workers too.
        if slow.is_none() && self.session.may_block() && !self.stopping() {
            *slow = self.start_workers();
        }
        if let Some(tx) = slow.as_ref() {
            if self.may_block(&call, &caller) {
                let _ = tx.send((*n, call, caller));
                return;
            }
        }
        drop(slow); // not held while deciding: the next receiving thread needs it
        self.decide_and_answer(n, &call, &caller, pre);
    }

    /// Whether deciding `call` may wait on a module that blocks.
    fn may_block(&self, call: &Call, c: &Caller) -> bool {
        if dispatch::on_virtual_fd(call) {
            let fd = call.args[0] as i32;
            return c.fds.lock().get(fd).is_none_or(|e| e.file.module.may_block());
        }
        call.spec.is_some() && self.session.mounts.read().mounts.iter().any(|m| m.module.may_block())
    }

    fn decide_and_answer(&self, n: &Notif, call: &Call, c: &Caller, pre: Option<Vec<u8>>) {
        let mut scratch = Scratch::local(n.tid);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let d = dispatch::decide(&self.session, c, call, &mut scratch, pre);
            // The decision added a filter layer: the caller gets it before its answer.
            self.session.await_layers();
            crate::report::summary::decided(n.tid, call, &d);
            let line = tracelog::enabled().then(|| crate::report::call_line(n.tid, call, &d));
            let answer = emulate::carry_out(self, n.id, c, call, d, &scratch);
            (answer, line)
        }));
        let (answer, line) = r.unwrap_or_else(|_| {
            tracelog::internal_error(&format!("[{}] the trapped call fails with EIO", n.tid));
            (Answer::Value(Errno(libc::EIO).neg()), None)
        });
        let shown = match answer {
            Answer::Continue => {
                let _ = self.listener.respond(n.id, 0, true);
                "?".to_string()
            }
            Answer::Value(v) => {
                let _ = self.listener.respond(n.id, v, false);
                tracelog::show_ret(v)
            }
            Answer::Sent => "(descriptor installed)".to_string(),
        };
        if let Some(l) = line {
            tracelog::line(&format!("{l} = {shown}"));
        }
    }
}
