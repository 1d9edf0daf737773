//! Worker threads for modules whose calls may block (VURS_F_MAY_BLOCK): the tracer hands
//! a stopped tracee's call to a worker and goes on with the other tracees; the worker
//! decides (calling the module), sends the decision back and wakes the tracer with
//! SIGUSR1 (blocked everywhere and collected with sigtimedwait, so no wake-up is lost).
//! ptrace requests stay on the tracer thread.
#![forbid(unsafe_code)]
use crate::dispatch::{self, Action, Caller, Decision, Scratch};
use crate::errno::Errno;
use crate::session::Session;
use crate::syscall::Call;
use crate::tracee::ptrace::Pid;
use crate::vfd::fdtable::FdTable;
use crossbeam_channel::{unbounded, Receiver, Sender};
use parking_lot::Mutex;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

pub struct Job {
    /// The stopped caller: only the tracer thread resumes it, once the decision is back.
    pub stopped: crate::tracee::ptrace::Stopped,
    pub tgid: Pid,
    pub call: Call,
    pub fds: Arc<Mutex<FdTable>>,
    pub slot: Option<u64>,
    pub creds: crate::dispatch::Creds,
    pub fs: crate::path::FsView,
}

pub struct Done {
    pub stopped: crate::tracee::ptrace::Stopped,
    pub call: Call,
    pub decision: Decision,
}

pub struct Workers {
    tx: Option<Sender<Job>>,
    pub rx: Receiver<Done>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for Workers {
    /// Close the queue and wait for the threads, so their hold on the session (and so on
    /// the modules, whose fini runs when the session goes) ends here.
    fn drop(&mut self) {
        self.tx.take();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

pub use crate::tracee::sys::{block_wake_signals, wait_wake, WAKE_SIGNAL};

impl Workers {
    /// Start `n` workers; None (said in one line) if not one could be started.
    pub fn start(session: Arc<Session>, n: usize) -> Option<Workers> {
        let (tx, jobs) = unbounded::<Job>();
        let (done, rx) = unbounded::<Done>();
        let (tracer_pid, tracer_tid) = crate::tracee::sys::this_thread();
        let mut threads = Vec::new();
        for i in 0..n {
            let (jobs, done, session) = (jobs.clone(), done.clone(), session.clone());
            let t = std::thread::Builder::new().name(format!("vurs-worker-{i}")).spawn(move || {
                for job in jobs {
                    let caller = Caller {
                        tid: job.stopped.tid(),
                        tgid: job.tgid,
                        fds: job.fds,
                        creds: job.creds,
                        fs: job.fs,
                    };
                    let mut scratch = Scratch::in_tracee(job.stopped.tid(), job.slot);
                    let decision = catch_unwind(AssertUnwindSafe(|| {
                        dispatch::decide(&session, &caller, &job.call, &mut scratch, None)
                    }))
                    .unwrap_or(Decision {
                        action: Action::Return(Errno(libc::EIO).neg()),
                        exit: None,
                        note: "module call panicked".into(),
                    });
                    if done.send(Done { stopped: job.stopped, call: job.call, decision }).is_err() {
                        break;
                    }
                    crate::tracee::sys::wake(tracer_pid, tracer_tid);
                }
            });
            match t {
                Ok(t) => threads.push(t),
                Err(e) => crate::tracelog::internal_error(&format!("a worker thread: {e}")),
            }
        }
        (!threads.is_empty()).then_some(Workers { tx: Some(tx), rx, threads })
    }

    pub fn submit(&self, job: Job) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(job);
        }
    }
}
