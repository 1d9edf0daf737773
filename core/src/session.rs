//! What one vurs session shares across all its tracees: loaded modules, the mount table,
//! what the installed seccomp filter traps. The control commands act on it.
#![forbid(unsafe_code)]
use crate::filter::FilterSpec;
use crate::module::{self, Module};
use crate::path::mounts::MountTable;
use parking_lot::RwLock;
use rustc_hash::FxHashMap as HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use vurs_abi::*;

pub struct Session {
    pub modules: RwLock<Vec<Arc<Module>>>,
    pub mounts: RwLock<MountTable>,
    /// Syscall number -> the module serving it (newest wins).
    pub syscall_owner: RwLock<HashMap<i64, Arc<Module>>>,
    /// The numbers of `syscall_owner`, one bit each, for the fast path (no lock).
    owned: [std::sync::atomic::AtomicU64; 8],
    /// What the session's filters trap: the one installed at start and the layers `insmod`
    /// added since (see `layers`).
    pub filter: RwLock<FilterSpec>,
    /// `filter` after each layer: `layers[0]` is the filter installed at start; a task
    /// with k layers traps what `layers[k]` says. The tracer adds the missing layers to
    /// every task (tracer/layers.rs).
    layers: RwLock<Vec<FilterSpec>>,
    /// `layers.len() - 1`, read by the tracer at every turn of its loop without a lock.
    layer_count: std::sync::atomic::AtomicUsize,
    /// Copies of `filter.paths`, `filter.virtual_fds` and `filter.dirents` for the hot path.
    traps_paths: std::sync::atomic::AtomicBool,
    traps_virtual_fds: std::sync::atomic::AtomicBool,
    traps_dirents: std::sync::atomic::AtomicBool,
    /// Layers the tracer has asked every task to get (it publishes this after its
    /// interrupts are sent; see `await_layers`).
    layers_requested: std::sync::atomic::AtomicUsize,
    /// The tracer thread (process, thread), to wake it from its wait.
    tracer_thread: std::sync::OnceLock<(i32, i32)>,
    /// A loaded module has VURS_F_MAY_BLOCK.
    blocking: std::sync::atomic::AtomicBool,
    /// Thread-group ids of the live tracees (kept by the tracer).
    pub live: parking_lot::Mutex<std::collections::HashSet<i32>>,
}

/// Errors of control operations: errno for the caller, message for the user.
pub type CtlError = (i32, String);

/// Recompute the directory entries that exist only virtually.
fn refresh_synthetic(table: &mut MountTable) {
    table.compute_synthetic(|t, v| {
        crate::path::resolve::Resolver { mounts: t, tgid: 0, tid: 0, view: &crate::path::FsView::NONE }
            .host_path(v, VURS_ACCESS_READ)
            .ok()
    });
}

/// One bit per syscall number below 512.
fn owned_bits<'a>(numbers: impl Iterator<Item = &'a i64>) -> [std::sync::atomic::AtomicU64; 8] {
    let bits: [std::sync::atomic::AtomicU64; 8] = Default::default();
    for &nr in numbers {
        if (0..512).contains(&nr) {
            bits[nr as usize / 64].fetch_or(1 << (nr % 64), Ordering::Relaxed);
        }
    }
    bits
}

impl Session {
    /// Whether a module serves syscall `nr` (without taking `syscall_owner`'s lock).
    pub fn syscall_owned(&self, nr: i64) -> bool {
        if !(0..512).contains(&nr) {
            return self.syscall_owner.read().contains_key(&nr);
        }
        self.owned[nr as usize / 64].load(Ordering::Acquire) & (1 << (nr % 64)) != 0
    }

    /// Recompute `owned` from `owner` (its write lock held).
    fn note_owners(&self, owner: &HashMap<i64, Arc<Module>>) {
        let bits = owned_bits(owner.keys());
        for (i, b) in bits.iter().enumerate() {
            self.owned[i].store(b.load(Ordering::Relaxed), Ordering::Release);
        }
    }

    pub fn new(modules: Vec<Module>) -> Session {
        let modules: Vec<Arc<Module>> = modules.into_iter().map(Arc::new).collect();
        let modules_block = modules.iter().any(|m| m.may_block());
        let mut filter = FilterSpec::default();
        let mut owner = HashMap::default();
        for m in &modules {
            filter.paths |= m.is_path_module();
            filter.virtual_fds |= m.flags & VURS_F_PATH_SERVE != 0;
            // A served create applies the caller's umask: keep it current.
            filter.umask |= m.flags & VURS_F_PATH_SERVE != 0;
            filter.ids |= m.flags & VURS_F_CREDS != 0;
            // Ids a module sets (set_ids) show in /proc/PID/status, synthesized at its open.
            filter.paths |= m.flags & VURS_F_CREDS != 0;
            for &nr in &m.syscalls {
                filter.syscalls.insert(nr as i64);
                owner.insert(nr as i64, m.clone());
            }
        }
        Session {
            modules: RwLock::new(modules),
            mounts: RwLock::new(MountTable::default()),
            owned: owned_bits(owner.keys()),
            syscall_owner: RwLock::new(owner),
            traps_paths: filter.paths.into(),
            traps_virtual_fds: filter.virtual_fds.into(),
            traps_dirents: filter.dirents.into(),
            layers_requested: 0.into(),
            tracer_thread: Default::default(),
            filter: RwLock::new(filter),
            layers: RwLock::new(Vec::new()),
            layer_count: 0.into(),
            live: Default::default(),
            blocking: modules_block.into(),
        }
    }

    /// The filter is final (main set what depends on the engine): it is `layers[0]`.
    pub fn seal_filter(&self) {
        let f = self.filter.read().clone();
        self.traps_paths.store(f.paths, Ordering::Relaxed);
        self.traps_virtual_fds.store(f.virtual_fds, Ordering::Relaxed);
        self.traps_dirents.store(f.dirents, Ordering::Relaxed);
        *self.layers.write() = vec![f];
        self.layer_count.store(0, Ordering::Release);
    }

    /// Whether path calls trap (a path module is or was loaded).
    pub fn traps_paths(&self) -> bool {
        self.traps_paths.load(Ordering::Relaxed)
    }

    /// Whether calls on virtual descriptors trap (a serving module is or was loaded).
    pub fn traps_virtual_fds(&self) -> bool {
        self.traps_virtual_fds.load(Ordering::Relaxed)
    }

    /// Whether getdents64 traps (mount points missing on the host are listed, or a merged
    /// directory was opened).
    pub fn traps_dirents(&self) -> bool {
        self.traps_dirents.load(Ordering::Relaxed)
    }

    /// Trap getdents64 from now on: a directory whose listing a module merges was opened
    /// (until then every directory lists itself, and getdents64 runs at full speed). The
    /// caller must not get the descriptor before it has the new layer: the tracer thread
    /// applies it before resuming the call; a supervisor thread calls `await_layers`.
    pub fn trap_dirents(&self) {
        if !self.traps_dirents() {
            self.widen(|f| crate::filter::FilterSpec { dirents: true, ..f.clone() });
        }
    }

    /// The tracer thread is the one calling this (it is woken by `await_layers`).
    pub fn set_tracer_thread(&self, pid: i32, tid: i32) {
        let _ = self.tracer_thread.set((pid, tid));
    }

    /// The tracer has interrupted every task that lacks one of the first `n` layers.
    pub fn layers_requested_by_tracer(&self, n: usize) {
        self.layers_requested.fetch_max(n, Ordering::AcqRel);
    }

    /// On a thread other than the tracer's, after a decision added a layer: wait until the
    /// tracer has interrupted every task that lacks it (then each gets it before its next
    /// call, the caller of this decision included, whose call has not been answered yet).
    /// The tracer may sleep in waitpid: it is woken with a signal until it has done so.
    pub fn await_layers(&self) {
        let want = self.layer_count();
        let mut round = 0u32;
        while self.layers_requested.load(Ordering::Acquire) < want {
            if let Some(&(pid, tid)) = self.tracer_thread.get() {
                crate::tracee::sys::interrupt_wait(pid, tid);
            }
            std::thread::sleep(std::time::Duration::from_micros(20 << round.min(8)));
            round += 1;
            if round > 2000 {
                crate::tracelog::internal_error("the tracer did not take a new filter layer");
                return;
            }
        }
    }

    /// How many layers `insmod` added to the filter installed at start.
    pub fn layer_count(&self) -> usize {
        self.layer_count.load(Ordering::Acquire)
    }

    /// The program that brings a task with `from` layers to `to` (None: nothing to trap).
    pub fn layer_program(&self, from: usize, to: usize) -> Option<crate::filter::BpfProgram> {
        let layers = self.layers.read();
        layers.get(to)?.layer_over(layers.get(from)?)
    }

    /// Trap what `m` needs from now on: a new filter layer if the filters do not already.
    fn trap_for(&self, m: &Module) {
        self.widen(|f| f.with_module(m.flags, &m.syscalls));
    }

    /// Trap path calls from now on (a process chroot'ed in a session that had no path
    /// module: its paths are resolved from its root).
    pub fn trap_paths(&self) {
        if !self.traps_paths() {
            self.widen(|f| crate::filter::FilterSpec { paths: true, ..f.clone() });
        }
    }

    /// Trap what `wider` of the current filter spec traps: a new layer if need be.
    fn widen(&self, wider: impl FnOnce(&crate::filter::FilterSpec) -> crate::filter::FilterSpec) {
        let mut filter = self.filter.write();
        let wider = wider(&filter);
        if wider.layer_over(&filter).is_some() {
            let mut layers = self.layers.write();
            layers.push(wider.clone());
            self.layer_count.store(layers.len() - 1, Ordering::Release);
        }
        self.traps_paths.store(wider.paths, Ordering::Relaxed);
        self.traps_virtual_fds.store(wider.virtual_fds, Ordering::Relaxed);
        self.traps_dirents.store(wider.dirents, Ordering::Relaxed);
        *filter = wider;
    }

    /// Whether a loaded module may block (then its calls go to worker threads): it says so,
    /// or one of its calls took long (`Module::may_block`).
    pub fn may_block(&self) -> bool {
        self.blocking.load(Ordering::Relaxed) || crate::module::any_turned_slow()
    }

    /// Mount what the modules loaded at start serve by themselves.
    pub fn auto_mount(&self) -> Result<(), CtlError> {
        let mods: Vec<Arc<Module>> = self.modules.read().clone();
        for m in mods {
            for target in &m.auto_mounts {
                self.mount(&m.name, &m.name, target, "")
                    .map_err(|(e, msg)| (e, format!("module {}: {msg}", m.name)))?;
            }
        }
        Ok(())
    }

    pub fn hide_vdso(&self) -> bool {
        self.modules.read().iter().any(|m| m.flags & VURS_F_HIDE_VDSO != 0)
    }

    pub fn find_module(&self, name: &str) -> Option<Arc<Module>> {
        self.modules.read().iter().rev().find(|m| m.is_named(name)).cloned()
    }

    /// Load a module into the running session.
    pub fn insmod(&self, spec: &str) -> Result<Arc<Module>, CtlError> {
        let (name, opts) = spec.split_once(',').unwrap_or((spec, ""));
        let m = module::load(name, opts).map_err(|e| (libc::EINVAL, e))?;
        if let Some(old) = self.modules.read().iter().find(|x| x.name == m.name) {
            return Err((
                libc::EEXIST,
                format!(
                    "insmod: {}: already loaded (from {}); vurs rmmod {} first",
                    m.name,
                    old.path.display(),
                    m.name
                ),
            ));
        }
        self.trap_for(&m);
        let m = Arc::new(m);
        {
            let mut owner = self.syscall_owner.write();
            for &nr in &m.syscalls {
                owner.insert(nr as i64, m.clone());
            }
            self.note_owners(&owner);
        }
        if m.may_block() {
            self.blocking.store(true, Ordering::Relaxed);
        }
        self.modules.write().push(m.clone());
        for target in &m.auto_mounts {
            self.mount(&m.name, &m.name, target, "")
                .map_err(|(e, msg)| (e, format!("module {}: {msg}", m.name)))?;
        }
        Ok(m)
    }

    pub fn rmmod(&self, name: &str) -> Result<(), CtlError> {
        // The mounts a module made itself go with it, unless files are open through them.
        if let Some(m) = self.find_module(name).filter(|m| !m.auto_mounts.is_empty()) {
            let mut table = self.mounts.write();
            for target in &m.auto_mounts {
                let own = table
                    .mounts
                    .iter()
                    .rev()
                    .find(|x| &x.target == target && Arc::ptr_eq(&x.module, &m))
                    .cloned();
                if let Some(mount) = own {
                    if mount.open_files.load(Ordering::SeqCst) > 0 {
                        return Err((libc::EBUSY, format!("rmmod: {name}: in use ({target} is open)")));
                    }
                    table.mounts.retain(|x| !Arc::ptr_eq(x, &mount));
                }
            }
            refresh_synthetic(&mut table);
        }
        let mut mods = self.modules.write();
        let i = mods
            .iter()
            .rposition(|m| m.name == name)
            .ok_or((libc::ENOENT, format!("rmmod: {name}: not loaded")))?;
        if mods[i].users.load(Ordering::SeqCst) > 0 {
            let m = &mods[i];
            let points: Vec<String> = self
                .mounts
                .read()
                .mounts
                .iter()
                .filter(|x| Arc::ptr_eq(&x.module, m))
                .map(|x| x.target.clone())
                .collect();
            let why = if points.is_empty() {
                "files are open through it".to_string()
            } else {
                format!("mounted on {} (vurs umount first)", points.join(", "))
            };
            return Err((libc::EBUSY, format!("rmmod: {name}: in use: {why}")));
        }
        let m = mods.remove(i);
        let mut owner = self.syscall_owner.write();
        owner.retain(|_, o| !Arc::ptr_eq(o, &m));
        // Numbers the removed module served fall back to an older module serving them.
        for older in mods.iter() {
            for &nr in &older.syscalls {
                owner.entry(nr as i64).or_insert_with(|| older.clone());
            }
        }
        self.note_owners(&owner);
        Ok(())
    }

    /// Mount `source` on canonical virtual `target` with module `fstype`.
    pub fn mount(&self, fstype: &str, source: &str, target: &str, options: &str) -> Result<(), CtlError> {
        let m = match self.find_module(fstype) {
            Some(m) => m,
            None => self.insmod(fstype)?,
        };
        if !m.is_path_module() {
            return Err((libc::ENODEV, format!("mount: {fstype} is not a path module")));
        }
        if !self.traps_paths() {
            return Err((libc::EOPNOTSUPP, "mount: this session does not trap path calls".into()));
        }
        let mnt = m.mount(source, target, options).map_err(|(e, msg)| (e, format!("mount: {msg}")))?;
        let mut table = self.mounts.write();
        table.add(target.to_string(), source.to_string(), options.to_string(), m, mnt);
        refresh_synthetic(&mut table);
        Ok(())
    }

    /// Remove the newest mount on `target`. Unless `lazy`, a mount in use (a virtual
    /// descriptor open through it, or a tracee whose cwd or an open descriptor lies in it)
    /// is EBUSY. A lazily removed mount lives on until its last descriptor closes.
    pub fn umount(&self, target: &str, lazy: bool) -> Result<(), CtlError> {
        let mut mounts = self.mounts.write();
        let m = mounts
            .mounts
            .iter()
            .rev()
            .find(|m| m.target == target)
            .cloned()
            .ok_or((libc::EINVAL, format!("umount: {target}: not mounted")))?;
        if !lazy && (m.open_files.load(Ordering::SeqCst) > 0 || self.host_use(&m)) {
            return Err((libc::EBUSY, format!("umount: {target}: target is busy")));
        }
        mounts.remove(target);
        refresh_synthetic(&mut mounts);
        Ok(())
    }

    /// A tracee's cwd or open descriptor lies in the host tree behind `m`.
    fn host_use(&self, m: &crate::path::mounts::Mount) -> bool {
        let Some(root) = m.host_root().clone() else {
            return false;
        };
        let inside = |link: std::path::PathBuf| {
            let b = std::os::unix::ffi::OsStrExt::as_bytes(link.as_os_str()).to_vec();
            crate::path::mounts::under(&b, &root)
        };
        for &pid in self.live.lock().iter() {
            if std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(inside) {
                return true;
            }
            if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
                for e in dir.flatten() {
                    if std::fs::read_link(e.path()).is_ok_and(inside) {
                        return true;
                    }
                }
            }
        }
        false
    }

    /// The loaded modules. Users: what makes `rmmod` refuse (EBUSY) — mounts made with
    /// `vurs mount`, --mount or -b, and open files; the mounts a module makes by itself go
    /// with it and are not counted.
    pub fn lsmod(&self) -> String {
        let table = self.mounts.read();
        let mut s = String::from("Module\tUsers\tOptions\tDescription\n");
        for m in self.modules.read().iter() {
            let own = table
                .mounts
                .iter()
                .filter(|x| Arc::ptr_eq(&x.module, m) && m.auto_mounts.contains(&x.target))
                .count();
            let users = m.users.load(Ordering::SeqCst).saturating_sub(own);
            s += &format!("{}\t{}\t{}\t{}\n", m.name, users, m.options, m.description);
        }
        s
    }

    /// The virtual mounts, in /proc/mounts format.
    pub fn mounts_text(&self) -> String {
        crate::path::procfs::mounts_lines(&self.mounts.read())
    }
}
