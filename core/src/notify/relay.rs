//! The receiving threads of the listener, as a relay: one thread receives at a time, and
//! when it has been inside one call for longer than STUCK_MS a watchdog hands receiving to a
//! new thread. So one slow call — a module that blocks without setting VURS_F_MAY_BLOCK, an
//! emulated open of a device that waits — never holds up the other tracees. The stuck
//! thread answers its call when it can, then ends.
//!
//! Why not several threads in RECV all the time: the kernel's RECV wait is not exclusive,
//! so every waiting thread is woken, onto the caller's CPU, for every call — measured at
//! 48–80 % more per call (docs/benchmarks.md). The relay costs the fast path nothing; a call
//! that takes the full decision pays one coarse clock read. While nothing is decided for a
//! second the watchdog dozes, with no timer, until the next decision wakes it.
use super::Supervisor;
use crate::tracee::sys::coarse_ms;
use crate::tracelog;
use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A receiving thread inside one call for this long (ms) is replaced.
const STUCK_MS: u64 = 50;
/// How often the watchdog looks while calls are decided.
const WATCH: Duration = Duration::from_millis(25);
/// After this many looks in a row that found no call being decided (1 s), the watchdog
/// dozes: it sleeps with no timeout until the next decision wakes it, so an idle session
/// (a shell waiting at its prompt) wakes no CPU.
const DOZE_AFTER: u32 = 40;
/// Threads left behind in slow calls at most; beyond that the session waits for them.
const MAX_STUCK: usize = 32;
/// How long the end of the session waits for receiving threads still inside a call.
const END_WAIT: Duration = Duration::from_secs(1);

pub struct Relay {
    /// The number of the thread that receives now; a thread with another number ends
    /// after the call it is in.
    current: AtomicU64,
    /// The receiving thread's `Busy`, as the watchdog reads it.
    busy: Mutex<Arc<Busy>>,
    /// The receiving thread.
    handle: Mutex<Option<JoinHandle<()>>>,
    /// Replaced receiving threads not known to have ended (waited for at the end: until
    /// they have, the session and its modules cannot be dropped, and fini not run).
    replaced: Mutex<Vec<JoinHandle<()>>>,
    /// Replaced threads still inside their call.
    stuck: AtomicUsize,
    /// A replacement was started and has not taken over yet.
    handing_over: AtomicBool,
    /// The watchdog sleeps on this; `wake_watchdog` ends its wait.
    watch: (Mutex<()>, Condvar),
    /// The watchdog dozes: the next decision must wake it.
    dozing: AtomicBool,
}

/// When a receiving thread began the call it is deciding (`sys::coarse_ms`, never 0), 0
/// while it receives or takes the fast path.
#[derive(Default)]
pub struct Busy(AtomicU64);

/// Marks the thread busy from `Relay::deciding` until dropped (a panic included).
pub struct Deciding<'a>(&'a Busy);

impl Drop for Deciding<'_> {
    fn drop(&mut self) {
        self.0 .0.store(0, Ordering::Relaxed);
    }
}

impl Relay {
    pub fn new() -> Relay {
        Relay {
            current: AtomicU64::new(0),
            busy: Mutex::new(Arc::default()),
            handle: Mutex::new(None),
            replaced: Mutex::new(Vec::new()),
            stuck: AtomicUsize::new(0),
            handing_over: AtomicBool::new(false),
            watch: (Mutex::new(()), Condvar::new()),
            dozing: AtomicBool::new(false),
        }
    }

    pub fn deciding<'a>(&self, busy: &'a Busy) -> Deciding<'a> {
        // SeqCst, this store and the load below, against `watchdog`'s store of `dozing` and
        // its load of the busy mark: one of the two sides sees the other.
        busy.0.store(coarse_ms().max(1), Ordering::SeqCst);
        if self.dozing.load(Ordering::SeqCst) && self.dozing.swap(false, Ordering::SeqCst) {
            self.wake_watchdog();
        }
        Deciding(busy)
    }

    /// Interrupt the receiving threads and wait for them (the session is over, the
    /// watchdog ended). A thread still inside a call after END_WAIT (its caller was
    /// killed, and the module has not returned) is let go.
    pub fn end(&self) {
        let mut threads: Vec<JoinHandle<()>> = std::mem::take(&mut *self.replaced.lock());
        threads.extend(self.handle.lock().take());
        for h in &threads {
            crate::tracee::seccomp::wake(h);
        }
        let deadline = std::time::Instant::now() + END_WAIT;
        for h in threads {
            while !h.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            if h.is_finished() {
                let _ = h.join();
            }
        }
    }

    pub fn wake_watchdog(&self) {
        let _g = self.watch.0.lock();
        self.watch.1.notify_all();
    }
}

/// Start receiving thread number `number`. Once running, it takes over receiving: its
/// number becomes the current one (the thread it replaces, if any, ends after its call) and
/// the watchdog watches it.
pub fn start_receiver(sv: &Arc<Supervisor>, number: u64) -> std::io::Result<()> {
    let receiving = sv.clone();
    let h = std::thread::Builder::new().name("vurs-notify".into()).spawn(move || {
        let _ = crate::tracee::seccomp::unshare_fs();
        let busy = Arc::new(Busy::default());
        let relay = &receiving.relay;
        *relay.busy.lock() = busy.clone();
        relay.current.store(number, Ordering::SeqCst);
        relay.handing_over.store(false, Ordering::SeqCst);
        receiving.receive_loop(number, &busy);
        if relay.current.load(Ordering::SeqCst) != number {
            relay.stuck.fetch_sub(1, Ordering::SeqCst);
        } else {
            relay.wake_watchdog(); // to replace this thread, unless the session is over
        }
    })?;
    // The thread it replaces, if any, ends after its call.
    if let Some(old) = sv.relay.handle.lock().replace(h) {
        let mut replaced = sv.relay.replaced.lock();
        replaced.retain(|t| !t.is_finished());
        replaced.push(old);
    }
    Ok(())
}

/// Whether receiving thread `number` is still the receiving one.
pub fn still_receiving(sv: &Supervisor, number: u64) -> bool {
    sv.relay.current.load(Ordering::SeqCst) == number
}

/// The watchdog: every WATCH, if the receiving thread has been in one call for over STUCK_MS,
/// a new thread takes over receiving.
pub fn watchdog(sv: Arc<Supervisor>) {
    let relay = &sv.relay;
    let mut idle_looks = 0;
    loop {
        {
            let mut g = relay.watch.0.lock();
            if sv.stopping() {
                return;
            }
            if idle_looks >= DOZE_AFTER {
                relay.dozing.store(true, Ordering::SeqCst);
                if relay.busy.lock().0.load(Ordering::SeqCst) == 0 {
                    relay.watch.1.wait(&mut g);
                }
                relay.dozing.store(false, Ordering::SeqCst);
                idle_looks = 0;
            } else {
                relay.watch.1.wait_for(&mut g, WATCH);
            }
        }
        if sv.stopping() {
            return;
        }
        let since = relay.busy.lock().0.load(Ordering::SeqCst);
        idle_looks = if since == 0 { idle_looks + 1 } else { 0 };
        // A receiving thread that ended (the listener failed, or its loop panicked): another
        // one, unless no task is left to serve.
        let ended = relay.handle.lock().as_ref().is_some_and(|h| h.is_finished());
        if ended && !sv.listener.orphaned() {
            hand_over(&sv, false);
            continue;
        }
        if since == 0 || coarse_ms().saturating_sub(since) < STUCK_MS {
            continue;
        }
        if relay.stuck.load(Ordering::SeqCst) < MAX_STUCK {
            hand_over(&sv, true);
        }
    }
}

/// Start a new receiving thread in place of the current one, which is `stuck` in a call
/// (it ends after it) or has ended. Nothing while a replacement has not taken over yet.
fn hand_over(sv: &Arc<Supervisor>, stuck: bool) {
    let relay = &sv.relay;
    if relay.handing_over.swap(true, Ordering::SeqCst) {
        return;
    }
    if stuck {
        relay.stuck.fetch_add(1, Ordering::SeqCst);
    }
    if let Err(e) = start_receiver(sv, relay.current.load(Ordering::SeqCst) + 1) {
        tracelog::internal_error(&format!("no thread to receive trapped calls: {e}"));
        if stuck {
            relay.stuck.fetch_sub(1, Ordering::SeqCst);
        }
        relay.handing_over.store(false, Ordering::SeqCst);
    }
}
