//! Filter layers added at run time. When `insmod` makes the session trap more calls
//! (`Session::layer_count` grows), every task gets a new seccomp filter layer before its
//! next system call. Only a task can install a filter on itself, so vurs has each task
//! run one call for it: the task is interrupted (PTRACE_INTERRUPT) and resumed to its next
//! syscall entry (PTRACE_SYSCALL), or caught at its next trapped call; there its call is
//! replaced by seccomp(SECCOMP_SET_MODE_FILTER, 0, prog), the program written to its
//! scratch memory; at the exit the original call is rewound and runs again, now through
//! the new layer. Tasks forked before that inherit their parent's layers; exec keeps them.
use super::*;

/// Where a task is in getting its layers.
#[derive(Debug)]
pub enum Layering {
    /// Resumed with PTRACE_SYSCALL: the next syscall stop is the entry of a call.
    AwaitEntry,
    /// An mmap of scratch memory replaced the call `saved`.
    MmapExit(Injected),
    /// seccomp() replaced the call `saved`; at its exit the task has `to` layers.
    SeccompExit { saved: Injected, to: usize },
}

impl Tracer {
    /// After `insmod` added layers: interrupt every task that lacks them, so that each
    /// stops before its next call.
    pub(super) fn request_layers(&mut self) {
        let n = self.session.layer_count();
        if n <= self.layers_requested {
            return;
        }
        self.layers_requested = n;
        for (&tid, t) in &self.threads {
            if t.layers < n {
                let _ = ptrace::interrupt(tid);
            }
        }
        self.session.layers_requested_by_tracer(n);
    }

    /// Whether thread `tid` lacks a layer the session has.
    pub(super) fn lacks_layers(&self, tid: Pid) -> bool {
        self.layers_requested > 0 && self.threads.get(&tid).is_some_and(|t| t.layers < self.layers_requested)
    }

    /// An interrupt stop (or a new task's first stop) of a task that lacks layers: run it
    /// to its next syscall entry.
    pub(super) fn layer_from_event_stop(&mut self, t: Stopped) {
        let th = self.threads.get_mut(&t.tid()).expect("known thread");
        if matches!(th.pending, Pending::Idle) {
            th.pending = Pending::Layering(Layering::AwaitEntry);
            let _ = t.syscall(0);
        } else {
            resume(t, 0);
        }
    }

    /// At the entry of call `saved` (a syscall-entry stop or a seccomp stop), put the
    /// task's missing layers in its place. Gives the stop back when there is nothing to do
    /// (or it cannot be done): the call then goes on as usual.
    pub(super) fn inject_layer(&mut self, t: Stopped, saved: Injected) -> Option<Stopped> {
        let tid = t.tid();
        let to = self.session.layer_count();
        let th = self.threads.get_mut(&tid).expect("known thread");
        let from = th.layers;
        let session = &self.session;
        let image = self
            .layer_images
            .entry((from, to))
            .or_insert_with(|| session.layer_program(from, to).map(|p| Arc::new(Image::of(&p))))
            .clone();
        let Some(image) = image else {
            th.layers = to;
            return Some(t);
        };
        let Some(p) = self.procs.get(&th.tgid) else { return Some(t) };
        if th.slot.is_none() {
            th.slot = p.mm.lock().free.pop();
        }
        match th.slot {
            Some(slot) if image.bytes.len() as u64 + 16 <= crate::dispatch::SLOT_SIZE => {
                // struct sock_fprog: unsigned short len, padding, then the pointer.
                let mut bytes = (image.insns as u64).to_ne_bytes().to_vec();
                bytes.extend_from_slice(&(slot + 16).to_ne_bytes());
                bytes.extend_from_slice(&image.bytes);
                let args = [libc::SECCOMP_SET_MODE_FILTER as u64, 0, slot, 0, 0, 0];
                if crate::tracee::memory::write(tid, slot, &bytes).is_err()
                    || apply::replace_call(&t, libc::SYS_seccomp, &args).is_err()
                {
                    th.layers = to;
                    tracelog::internal_error(&format!("[{tid}] could not add a filter layer (memory)"));
                    return Some(t);
                }
                th.pending = Pending::Layering(Layering::SeccompExit { saved, to });
                let _ = t.syscall(0);
                None
            }
            None if !p.mm.lock().failed => {
                if apply::replace_call(&t, libc::SYS_mmap, &SCRATCH_MMAP_ARGS).is_err() {
                    return None; // gone
                }
                th.pending = Pending::Layering(Layering::MmapExit(saved));
                let _ = t.syscall(0);
                None
            }
            _ => {
                th.layers = to;
                tracelog::internal_error(&format!(
                    "[{tid}] could not add a filter layer (no scratch memory, or a program of {} \
                     instructions): calls of modules inserted at run time are not seen there",
                    image.insns
                ));
                Some(t)
            }
        }
    }

    /// A syscall stop of a task in `state`.
    pub(super) fn on_layering_stop(&mut self, t: Stopped, state: Layering) {
        let tid = t.tid();
        match state {
            Layering::AwaitEntry => {
                let Ok(regs) = t.get_regs() else { return };
                let saved = Injected {
                    nr: crate::arch::regs_nr(&regs),
                    args: crate::arch::regs_args(&regs),
                    ip: crate::arch::regs_ip(&regs),
                };
                if let Some(t) = self.inject_layer(t, saved) {
                    resume(t, 0);
                }
            }
            Layering::MmapExit(saved) => {
                self.take_scratch_region(&t);
                // The call runs again from its entry, where the layer goes in.
                if apply::restart(&t, saved.nr, &saved.args, saved.ip).is_ok() {
                    self.threads.get_mut(&tid).expect("known thread").pending =
                        Pending::Layering(Layering::AwaitEntry);
                    let _ = t.syscall(0);
                }
            }
            Layering::SeccompExit { saved, to } => {
                let ret = apply::result(&t).unwrap_or(-1);
                if ret < 0 {
                    tracelog::internal_error(&format!(
                        "[{tid}] seccomp() refused a filter layer: {}",
                        crate::errno::strerror(-ret as i32)
                    ));
                }
                let more = self.session.layer_count() > to;
                let th = self.threads.get_mut(&tid).expect("known thread");
                th.layers = to;
                if apply::restart(&t, saved.nr, &saved.args, saved.ip).is_err() {
                    return;
                }
                if more {
                    th.pending = Pending::Layering(Layering::AwaitEntry);
                    let _ = t.syscall(0);
                } else {
                    resume(t, 0);
                }
            }
        }
    }
}

/// A layer program as the kernel reads it from a task's memory.
pub struct Image {
    /// Number of instructions.
    insns: usize,
    /// The instructions (struct sock_filter, 8 bytes each).
    bytes: Vec<u8>,
}

impl Image {
    fn of(prog: &[libc::sock_filter]) -> Image {
        let mut bytes = Vec::with_capacity(prog.len() * 8);
        for i in prog {
            bytes.extend_from_slice(&i.code.to_ne_bytes());
            bytes.push(i.jt);
            bytes.push(i.jf);
            bytes.extend_from_slice(&i.k.to_ne_bytes());
        }
        Image { insns: prog.len(), bytes }
    }
}
