//! The virtual mount table: which module serves which subtree. Longest prefix wins; of
//! two mounts on the same target, the newer one.
#![forbid(unsafe_code)]
use crate::module::Module;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

pub struct Mount {
    pub id: u64,
    /// Canonical absolute virtual path, no trailing slash ("/" only for the root).
    pub target: String,
    pub source: String,
    pub options: String,
    pub module: Arc<Module>,
    pub mnt: usize,
    /// Host path of the mount's root (redirect modules), for reverse translation: what
    /// `redirect("")` answers, asked again when the module withdraws `plain` (a cow view's
    /// root is the lower directory while nothing was written, the upper one after).
    host_root: parking_lot::RwLock<Option<Vec<u8>>>,
    /// Virtual descriptors open through this mount (served mounts).
    pub open_files: std::sync::atomic::AtomicUsize,
    /// Option `ro` (and not `rw`): the core answers EROFS to a write, whatever the module
    /// (as the kernel does for a mount with MNT_READONLY).
    pub read_only: bool,
    /// The module says the mount is a plain subtree for now (`vurs_services.set_plain`).
    plain: Arc<crate::module::plain::PlainFlag>,
}

impl Mount {
    /// The module maps this mount one-to-one onto a host tree for reads: always
    /// (VURS_F_SUBTREE), or for now (`set_plain`, a cow view nobody wrote to).
    pub fn is_subtree(&self) -> bool {
        self.module.flags & vurs_abi::VURS_F_SUBTREE != 0
            || self.plain.plain.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The host path of the mount's root (redirect modules), for reverse translation.
    pub fn host_root(&self) -> parking_lot::RwLockReadGuard<'_, Option<Vec<u8>>> {
        if self.plain.changed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            *self.host_root.write() = self.root_on_host();
        }
        self.host_root.read()
    }

    fn root_on_host(&self) -> Option<Vec<u8>> {
        if self.module.flags & vurs_abi::VURS_F_PATH_REDIRECT != 0 {
            self.module.redirect(self.mnt, b"", vurs_abi::VURS_ACCESS_READ).ok()
        } else {
            None
        }
    }

    /// What a read-only mount says to a call with access intent `access` (VURS_ACCESS_*)
    /// on an object: a write is EROFS; a creation without write access (open with
    /// O_CREAT, no O_EXCL) is a write only when the object does not exist (`exists`).
    pub fn read_only_check(&self, access: u32, exists: impl FnOnce() -> bool) -> Result<(), i32> {
        use vurs_abi::{VURS_ACCESS_CREATE, VURS_ACCESS_WRITE};
        if !self.read_only {
            return Ok(());
        }
        if access & VURS_ACCESS_WRITE != 0 || (access & VURS_ACCESS_CREATE != 0 && !exists()) {
            return Err(libc::EROFS);
        }
        Ok(())
    }

    /// The host path of `sub` (below the mount's target) for a call with access intent
    /// `access`: the module's redirect, with the mount's read-only rule applied first.
    pub fn redirect(&self, sub: &[u8], access: u32) -> Result<Vec<u8>, i32> {
        // A write fails before the module is asked (it is EROFS whatever the path).
        self.read_only_check(access & vurs_abi::VURS_ACCESS_WRITE, || true)?;
        let host = self.module.redirect(self.mnt, sub, access)?;
        self.read_only_check(access, || {
            std::fs::symlink_metadata(std::ffi::OsStr::from_bytes(&host)).is_ok()
        })?;
        Ok(host)
    }
}

/// Mount options (`k[=v],...`) that make a mount read-only: `ro`, and no `rw`.
pub fn read_only_options(options: &str) -> bool {
    let has = |o: &str| options.split(',').any(|x| x.split('=').next() == Some(o));
    has("ro") && !has("rw")
}

impl Drop for Mount {
    fn drop(&mut self) {
        crate::module::plain::forget(self.mnt);
        self.module.umount(self.mnt);
        self.module.users.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[derive(Default)]
pub struct MountTable {
    /// Virtual paths known not to be symlinks (see resolve.rs).
    pub nodecache: crate::path::resolve::NodeCache,
    /// Oldest first.
    pub mounts: Vec<Arc<Mount>>,
    next_id: u64,
    /// Directory entries that exist only virtually: (parent dir, name, d_type) for mount
    /// targets and their ancestors that are missing on the host.
    pub synthetic: Vec<(Vec<u8>, Vec<u8>, u8)>,
    /// Directories that exist only virtually (ancestors of mount targets missing on the
    /// host): virtual path -> an empty private host directory standing in for it.
    pub implicit: Vec<(Vec<u8>, Vec<u8>)>,
    /// Last components of mount targets and virtual-only directories: see
    /// `plain_name_passes`.
    basenames: rustc_hash::FxHashSet<Vec<u8>>,
}

/// `path` lies at or below `prefix` (both canonical).
pub fn under(path: &[u8], prefix: &[u8]) -> bool {
    if prefix == b"/" {
        return path.starts_with(b"/");
    }
    path.starts_with(prefix) && (path.len() == prefix.len() || path[prefix.len()] == b'/')
}

/// The part of `path` below `prefix` ("" for the prefix itself), without a leading '/'.
pub fn subpath<'a>(path: &'a [u8], prefix: &[u8]) -> &'a [u8] {
    let rest = &path[prefix.len().min(path.len())..];
    rest.strip_prefix(b"/").unwrap_or(rest)
}

impl MountTable {
    pub fn is_empty(&self) -> bool {
        self.mounts.is_empty()
    }

    /// The mount serving canonical virtual path `path`. Not a redirect mount whose SOURCE
    /// lacks a missing ancestor of a deeper mount's target: that directory, and what lies
    /// below it, is virtual-only (`implicit_dir`), as it is outside every mount.
    pub fn find(&self, path: &[u8]) -> Option<&Arc<Mount>> {
        let mut best: Option<&Arc<Mount>> = None;
        for m in self.mounts.iter().rev() {
            if under(path, m.target.as_bytes()) && best.is_none_or(|b| m.target.len() > b.target.len()) {
                best = Some(m);
            }
        }
        let m = best?;
        let deeper_implicit =
            || self.implicit.iter().any(|(v, _)| v.len() > m.target.len() && under(path, v));
        if !m.module.serves_paths() && deeper_implicit() {
            return None;
        }
        Some(m)
    }

    /// Host path -> virtual path: the mount whose host root holds `host` (longest root).
    pub fn reverse(&self, host: &[u8]) -> Option<Vec<u8>> {
        let mut best: Option<(&Arc<Mount>, Vec<u8>)> = None;
        for m in self.mounts.iter().rev() {
            if let Some(root) = m.host_root().as_deref() {
                if under(host, root) && best.as_ref().is_none_or(|(_, r)| root.len() > r.len()) {
                    best = Some((m, root.to_vec()));
                }
            }
        }
        let Some((m, root)) = best else {
            return self.implicit.iter().find(|(_, h)| h.as_slice() == host).map(|(v, _)| v.clone());
        };
        let sub = subpath(host, &root);
        let mut v = m.target.as_bytes().to_vec();
        if !sub.is_empty() {
            if v != b"/" {
                v.push(b'/');
            }
            v.extend_from_slice(sub);
        }
        Some(v)
    }

    pub fn add(
        &mut self,
        target: String,
        source: String,
        options: String,
        module: Arc<Module>,
        mnt: usize,
    ) -> u64 {
        self.next_id += 1;
        module.users.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        // The root is asked right away: a module that can be a plain subtree says so at the
        // latest in that answer (vurs_services.set_plain).
        let host_root = if module.flags & vurs_abi::VURS_F_PATH_REDIRECT != 0 {
            module.redirect(mnt, b"", vurs_abi::VURS_ACCESS_READ).ok()
        } else {
            None
        };
        let plain = crate::module::plain::flag(mnt);
        plain.changed.store(false, std::sync::atomic::Ordering::SeqCst);
        self.mounts.push(Arc::new(Mount {
            id: self.next_id,
            target,
            source,
            module,
            mnt,
            host_root: parking_lot::RwLock::new(host_root),
            open_files: Default::default(),
            read_only: read_only_options(&options),
            plain,
            options,
        }));
        self.next_id
    }

    /// Remove the newest mount on exactly `target`.
    pub fn remove(&mut self, target: &str) -> Option<Arc<Mount>> {
        let i = self.mounts.iter().rposition(|m| m.target == target)?;
        Some(self.mounts.remove(i))
    }

    /// Recompute `synthetic` after the table changed (and forget cached directories). `host_of` maps a virtual path to
    /// the host path behind it (through the mounts).
    pub fn compute_synthetic(&mut self, host_of: impl Fn(&MountTable, &[u8]) -> Option<Vec<u8>>) {
        let lstat = |p: &[u8]| std::fs::symlink_metadata(std::ffi::OsStr::from_bytes(p)).ok();
        let mut out: Vec<(Vec<u8>, Vec<u8>, u8)> = Vec::new();
        let mut implicit = Vec::new();
        self.implicit.clear();
        self.nodecache.clear();
        for m in &self.mounts {
            let mut path = m.target.as_bytes().to_vec();
            let is_file = host_of(self, &path).and_then(|h| lstat(&h)).is_some_and(|md| !md.is_dir());
            let mut kind = if is_file { libc::DT_REG } else { libc::DT_DIR };
            while path.len() > 1 {
                let i = path.iter().rposition(|&b| b == b'/').unwrap_or(0);
                let parent = if i == 0 { b"/".to_vec() } else { path[..i].to_vec() };
                let name = path[i + 1..].to_vec();
                let listed = host_of(self, &parent).is_some_and(|mut h| {
                    h.push(b'/');
                    h.extend_from_slice(&name);
                    lstat(&h).is_some()
                });
                if !listed && !out.iter().any(|(p, n, _)| *p == parent && *n == name) {
                    out.push((parent.clone(), name, kind));
                    if path != m.target.as_bytes() && !implicit.iter().any(|(v, _)| *v == path) {
                        if let Some(dir) = crate::path::procfs::private_dir() {
                            implicit.push((path.clone(), dir));
                        }
                    }
                }
                path = parent;
                kind = libc::DT_DIR;
            }
        }
        self.synthetic = out;
        self.implicit = implicit;
        let last = |p: &[u8]| p.rsplit(|&b| b == b'/').next().unwrap_or(b"").to_vec();
        self.basenames = self.mounts.iter().map(|m| last(m.target.as_bytes())).collect();
        self.basenames.extend(self.implicit.iter().map(|(v, _)| last(v)));
        // /proc/<pid>/mounts, opened relative to a /proc directory, is synthesized too.
        self.basenames.insert(b"mounts".to_vec());
    }

    /// Whether a lookup of the single name `name` (not followed, for reading) relative to a
    /// real directory gives the same object whether the kernel or vurs resolves it: true
    /// when every mount is a plain subtree and `name` is not the name of a mount point or
    /// virtual-only directory. Then the directory's path need not be read at all.
    pub fn plain_name_passes(&self, name: &[u8]) -> bool {
        self.mounts.iter().all(|m| m.is_subtree())
            && !name.is_empty()
            && name != b"."
            && name != b".."
            && !name.contains(&b'/')
            && !self.basenames.contains(name)
    }

    /// Host path of `virt` when it lies in a virtual-only directory (its stand-in).
    pub fn implicit_dir(&self, virt: &[u8]) -> Option<Vec<u8>> {
        let (v, h) = self.implicit.iter().filter(|(v, _)| under(virt, v)).max_by_key(|(v, _)| v.len())?;
        let sub = subpath(virt, v);
        let mut out = h.clone();
        if !sub.is_empty() {
            out.push(b'/');
            out.extend_from_slice(sub);
        }
        Some(out)
    }
}

/// Lexically normalize an absolute path: no `.`, `..`, repeated or trailing slashes.
pub fn normalize(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    format!("/{}", out.join("/"))
}
