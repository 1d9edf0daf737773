//! cow: a copy-on-write view. `--mount type=cow,source=UPPER,target=TARGET` shows what
//! TARGET showed on the host (the lower layer, never modified) merged with UPPER, an
//! ordinary directory that receives every change: the first write to a lower object copies
//! it up, removals of lower names leave whiteouts (`.wh.NAME`, see layers.rs), directory
//! listings are merged (the `list` callback). A redirecting module: reads of objects no one
//! changed are the kernel's, on the lower files themselves.
//!
//! Options per mount: `skip=A:B:...` (subpaths of TARGET that stay the host's, read and
//! written there: by default `proc:dev:sys` when TARGET is `/`, none otherwise).
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use vurs_abi::sdk::{Errno, Ids, Module, Options, Services};
use vurs_abi::*;

mod cache;
mod copyup;
mod index;
mod layers;
mod listing;
mod perms;

use layers::{lstat, whiteout_of, Layers, State};
use listing::{Entry, Stamp};

pub struct Cow {
    svc: Services,
    /// vurs runs as root: it can give copies their owner, and the kernel would not refuse
    /// a call on a lower path for it (see `deny`).
    root: bool,
}

/// A merged listing and the state of the directories it was read from.
type Listing = (Stamp, Arc<Vec<Entry>>);

pub struct Mnt {
    layers: Layers,
    skip: Vec<PathBuf>,
    /// UPPER lies in the lower tree (then it is hidden from the view).
    upper_in_lower: bool,
    /// Recent merged listings, while both directories are unchanged.
    listings: Mutex<HashMap<PathBuf, Listing>>,
    /// Nothing was written through the view yet (UPPER was empty at mount and no call
    /// changed it since): the view is the lower tree, one to one. vurs is told so
    /// (`set_plain`) and lets the kernel resolve names there by itself; `plain_until`.
    plain: AtomicBool,
    /// vurs was told about `plain` (at the mount's first call).
    announced: AtomicBool,
}

fn errno(e: std::io::Error) -> Errno {
    Errno(e.raw_os_error().unwrap_or(libc::EIO))
}

fn own_ids() -> Ids {
    // SAFETY: getuid/getgid have no preconditions.
    let (u, g) = unsafe { (libc::geteuid(), libc::getegid()) };
    Ids { uid: u, euid: u, suid: u, fsuid: u, gid: g, egid: g, sgid: g, fsgid: g, groups: vec![] }
}

impl Cow {
    /// Whether the view of `m` is still the lower tree one to one; `changes`: the call
    /// being answered may change it, which ends that (vurs is told first: its own lookups
    /// ask the module again from now on).
    fn plain_until(&self, m: &Mnt, changes: bool) -> bool {
        if !m.announced.swap(true, Ordering::SeqCst) && m.plain.load(Ordering::SeqCst) {
            let _ = self.svc.set_plain(m, true);
            // a change answered meanwhile on another thread told vurs `false` first
            if !m.plain.load(Ordering::SeqCst) {
                let _ = self.svc.set_plain(m, false);
            }
        }
        if !m.plain.load(Ordering::SeqCst) {
            return false;
        }
        if changes {
            if m.plain.swap(false, Ordering::SeqCst) {
                let _ = self.svc.set_plain(m, false);
            }
            return false;
        }
        true
    }

    fn caller(&self) -> Ids {
        self.svc.caller().map(|c| c.ids).unwrap_or_else(|_| own_ids())
    }

    /// The caller may not do what it asked on a lower object. When vurs runs as the
    /// caller's user and the kernel refuses `check` to vurs too (`mode`, an access(2)
    /// mask), the call goes to the lower path `answer`: the kernel refuses it with its own
    /// error and changes nothing. Otherwise EACCES.
    fn deny(&self, check: &Path, mode: i32, answer: PathBuf) -> Result<PathBuf, Errno> {
        let Ok(c) = CString::new(check.as_os_str().as_bytes()) else {
            return Err(Errno(libc::EACCES));
        };
        // SAFETY: c is a NUL-terminated path; faccessat reads nothing else.
        let refused = unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), mode, libc::AT_EACCESS) } != 0;
        if !self.root && refused {
            Ok(answer)
        } else {
            Err(Errno(libc::EACCES))
        }
    }

    /// A call that writes `sub` (or creates it, `create`).
    fn write(&self, m: &Mnt, sub: &Path, create: bool) -> Result<PathBuf, Errno> {
        let l = &m.layers;
        let st = l.state(sub);
        let (up, low) = (l.upper(sub), l.lower(sub));
        if let Some(u) = &st.upper {
            if create && u.is_dir() {
                self.prepare_replace(m, sub)?;
            }
            return Ok(up);
        }
        match l.visible_lower(sub, &st) {
            Some(md) => {
                if create && md.is_dir() {
                    // mkdir of an existing directory (EEXIST), or a rename onto it
                    self.may_change_dir_of(m, sub, &md)?;
                    l.copy_up(sub).map_err(errno)?;
                    self.prepare_replace(m, sub)?;
                    return Ok(up);
                }
                let ids = self.caller();
                if !(ids.fsuid == 0 || ids.fsuid == md.uid() || perms::allowed(&ids, &md, 2)) {
                    return self.deny(&low, libc::W_OK, low.clone());
                }
                l.copy_up(sub).map_err(errno)?;
                Ok(up)
            }
            None if create => self.new_name(m, sub, &st),
            None => Ok(if st.hidden { up } else { low }),
        }
    }

    /// The creation of `sub`, a name the view does not show: its directory must exist in
    /// UPPER (copied up) when the caller may write in it.
    fn new_name(&self, m: &Mnt, sub: &Path, st: &State) -> Result<PathBuf, Errno> {
        let l = &m.layers;
        let (up, low) = (l.upper(sub), l.lower(sub));
        let parent = sub.parent().unwrap_or(Path::new(""));
        let pst = l.state(parent);
        match self.dir_meta(m, parent, &pst) {
            Some(pmd) if pmd.is_dir() => {
                let ids = self.caller();
                if !perms::allowed(&ids, &pmd, 3) {
                    return self.deny(&l.lower(parent), libc::W_OK | libc::X_OK, low);
                }
                l.copy_up_parents(sub).map_err(errno)?;
                Ok(up)
            }
            // no such directory, or not one: the kernel says so, creating nothing
            _ => Ok(if pst.upper.is_some() || pst.hidden || st.hidden { up } else { low }),
        }
    }

    /// The metadata whose permissions rule changes in directory `sub` of the view: the
    /// upper directory's (a copy keeps mode and owner where vurs may set them), but the
    /// lower one's for the mount's root (UPPER's own mode and owner are not the view's).
    fn dir_meta(&self, m: &Mnt, sub: &Path, st: &State) -> Option<std::fs::Metadata> {
        let l = &m.layers;
        if sub.as_os_str().is_empty() {
            return lstat(&l.lower);
        }
        st.upper.clone().or_else(|| l.visible_lower(sub, st))
    }

    /// Write and search permission on the view's directory of lower `sub` (for a name
    /// replaced or removed there), and the sticky-bit rule for object `md`.
    fn may_change_dir_of(&self, m: &Mnt, sub: &Path, md: &std::fs::Metadata) -> Result<(), Errno> {
        let l = &m.layers;
        let parent = sub.parent().unwrap_or(Path::new(""));
        let ids = self.caller();
        let pmd = self.dir_meta(m, parent, &l.state(parent)).ok_or(Errno(libc::ENOENT))?;
        if !perms::allowed(&ids, &pmd, 3) {
            return Err(Errno(libc::EACCES));
        }
        if !perms::sticky_allows(&ids, &pmd, md) {
            return Err(Errno(libc::EPERM));
        }
        Ok(())
    }

    /// Upper directory `sub` made ready to be removed or replaced by the kernel: empty for
    /// it when the view lists nothing in it (whiteouts dropped, the lower directory hidden
    /// instead), else kept non-empty.
    /// Returns whether it is empty (the lower one hidden).
    fn prepare_replace(&self, m: &Mnt, sub: &Path) -> Result<bool, Errno> {
        let l = &m.layers;
        if lstat(&l.upper(sub)).is_none() {
            l.copy_up(sub).map_err(errno)?;
        }
        let visible = l.merged_entries(sub).map_err(errno)?.len() > 2;
        if visible {
            l.keep_nonempty(sub).map_err(errno)?;
            return Ok(false);
        }
        let up = l.upper(sub);
        l.clear_hidden_files(&up).map_err(errno)?;
        let st = l.state(sub);
        if !st.hidden && lstat(&l.lower(sub)).is_some() {
            if let Some(w) = whiteout_of(&up) {
                l.touch(&w).map_err(errno)?;
            }
        }
        Ok(true)
    }

    /// A call that removes the name `sub` (unlink, rmdir: vurs checked the type and that a
    /// directory is empty in the view), or moves its object away (`moving`: a rename's
    /// source, which needs the whole object in UPPER).
    fn remove(&self, m: &Mnt, sub: &Path, moving: bool) -> Result<PathBuf, Errno> {
        let l = &m.layers;
        let st = l.state(sub);
        let (up, low) = (l.upper(sub), l.lower(sub));
        let lower_md = l.visible_lower(sub, &st);
        let Some(obj) = st.upper.clone().or(lower_md.clone()) else {
            return Ok(if st.hidden { up } else { low }); // nothing there: the kernel says so
        };
        let parent = sub.parent().unwrap_or(Path::new(""));
        if let Err(e) = self.may_change_dir_of(m, sub, &obj) {
            if e.0 == libc::EACCES && st.upper.is_none() {
                return self.deny(&l.lower(parent), libc::W_OK | libc::X_OK, low);
            }
            return Err(e);
        }
        if moving {
            if obj.is_dir() {
                l.copy_up_tree(sub).map_err(errno)?;
            } else if st.upper.is_none() {
                l.copy_up(sub).map_err(errno)?;
            }
        } else if obj.is_dir() {
            if !self.prepare_replace(m, sub)? {
                return Ok(up); // not empty in the view: the kernel refuses (ENOTEMPTY)
            }
        } else if st.upper.is_none() {
            // a disposable stand-in for the kernel to unlink
            l.copy_up_parents(sub).map_err(errno)?;
            l.touch(&up).map_err(errno)?;
        }
        if lower_md.is_some() {
            if let Some(w) = whiteout_of(&up) {
                l.touch(&w).map_err(errno)?;
            }
        }
        Ok(up)
    }

    fn skipped(m: &Mnt, sub: &Path) -> bool {
        m.skip.iter().any(|s| sub.starts_with(s))
    }
}

impl Module for Cow {
    type Mount = Mnt;
    const PROVIDES_LIST: bool = true;

    fn init(svc: Services, options: &Options) -> Result<Self, String> {
        if let Some((k, _)) = options.0.first() {
            return Err(format!("unknown option {k:?} (cow takes options per mount: skip=DIR:DIR...)"));
        }
        // SAFETY: geteuid has no preconditions.
        Ok(Cow { svc, root: unsafe { libc::geteuid() } == 0 })
    }

    fn mount(&self, source: &str, target: &str, options: &Options) -> Result<Mnt, (Errno, String)> {
        let mut skip: Option<Vec<PathBuf>> = None;
        let mut may_be_plain = true;
        for (k, v) in &options.0 {
            match k.as_str() {
                "ro" | "rw" => {}
                // never a plain subtree: listings trap as notifications from the start
                // (docs/shipped-modules.md: for sessions that write, then walk big trees)
                "merged" => may_be_plain = false,
                "skip" => {
                    let v = v.clone().unwrap_or_default();
                    skip = Some(
                        v.split(':')
                            .filter(|s| !s.is_empty())
                            .map(|s| PathBuf::from(s.trim_matches('/')))
                            .collect(),
                    );
                }
                _ => {
                    return Err((
                        Errno(libc::EINVAL),
                        format!("cow: unknown mount option {k:?} (skip=DIR:DIR..., merged)"),
                    ))
                }
            }
        }
        let e = |e: std::io::Error, what: &str| (errno(e), format!("cow: {what}"));
        if lstat(Path::new(source)).is_none() {
            std::fs::create_dir_all(source)
                .map_err(|x| e(x, &format!("{source}: cannot create: the upper directory")))?;
        }
        let upper = std::fs::canonicalize(source).map_err(|x| e(x, source))?;
        if !upper.is_dir() {
            return Err((Errno(libc::ENOTDIR), format!("cow: {source}: not a directory")));
        }
        let lower = PathBuf::from(target);
        // UPPER's own mode, owner and times are those of the view's root: a fresh (empty)
        // UPPER takes TARGET's.
        let empty = std::fs::read_dir(&upper).map(|mut d| d.next().is_none()).unwrap_or(false);
        if let (true, Some(md)) = (empty, lstat(&lower).filter(|m| m.is_dir())) {
            let _ = copyup::copy_meta(&lower, &md, &upper);
        }
        if lower.starts_with(&upper) {
            return Err((Errno(libc::EINVAL), format!("cow: {target} lies in the upper directory {source}")));
        }
        let skip = skip.unwrap_or_else(|| {
            if target == "/" {
                ["proc", "dev", "sys"].iter().map(PathBuf::from).collect()
            } else {
                vec![]
            }
        });
        let upper_in_lower = upper.starts_with(&lower);
        Ok(Mnt {
            layers: Layers::new(upper, lower),
            upper_in_lower,
            skip,
            listings: Mutex::new(HashMap::new()),
            // UPPER inside the lower tree must be hidden: never one to one.
            plain: AtomicBool::new(may_be_plain && empty && !upper_in_lower),
            announced: AtomicBool::new(false),
        })
    }

    fn redirect(&self, m: &Mnt, sub: &Path, access: u32) -> Result<PathBuf, Errno> {
        let low = m.layers.lower(sub);
        if Self::skipped(m, sub) {
            return Ok(low);
        }
        if self.plain_until(m, access & (VURS_ACCESS_WRITE | VURS_ACCESS_CREATE | VURS_ACCESS_REMOVE) != 0) {
            return Ok(low);
        }
        // UPPER itself, when it lies in the lower tree, is not part of the view.
        if m.upper_in_lower && low.starts_with(&m.layers.upper) {
            return Err(Errno(libc::ENOENT));
        }
        let l = &m.layers;
        let mut st = l.state(sub);
        // a name of a hard-linked lower object already copied up: linked to the copy
        if st.upper.is_none() && !st.hidden && l.link_indexed(sub) {
            st = l.state(sub);
        }
        let (write, create) = (access & VURS_ACCESS_WRITE != 0, access & VURS_ACCESS_CREATE != 0);
        // The kernel creates, removes or replaces a name after these answers.
        if access & VURS_ACCESS_REMOVE != 0 {
            let r = self.remove(m, sub, access & VURS_ACCESS_READ != 0);
            l.cache.volatile(sub);
            return r;
        }
        if create && write {
            let r = self.write(m, sub, true);
            l.cache.volatile(sub);
            return r;
        }
        // O_CREAT without writing: a creation only if the view has no such name
        if create && st.upper.is_none() && l.visible_lower(sub, &st).is_none() {
            let r = self.new_name(m, sub, &st);
            l.cache.volatile(sub);
            return r;
        }
        if write {
            return self.write(m, sub, false);
        }
        Ok(if st.upper.is_some() || st.hidden { l.upper(sub) } else { low })
    }

    fn list(&self, m: &Mnt, sub: &Path, index: u64) -> Result<Option<(u64, u8, Vec<u8>)>, Errno> {
        if Self::skipped(m, sub) || self.plain_until(m, false) {
            return Err(Errno(libc::ENOSYS));
        }
        // Past the first entry, the listing read (and checked) at entry 0 holds: the
        // core asks once per entry, and a listing may change between reads of one
        // directory stream anyway (readdir(3)).
        if index > 0 {
            if let Some((_, e)) = m.listings.lock().get(sub) {
                return Ok(e.get(index as usize).cloned());
            }
        }
        let l = &m.layers;
        let holds_upper = m.upper_in_lower && m.layers.upper.parent() == Some(l.lower(sub).as_path());
        // A directory with no upper part (and not holding UPPER) lists itself: ENOSYS,
        // answered from the cache of UPPER's directories without a system call.
        let st = l.state(sub);
        if !holds_upper && !st.upper.as_ref().is_some_and(|u| u.is_dir()) {
            return Err(Errno(libc::ENOSYS));
        }
        let stamp = match l.listing_stamp(sub) {
            Some(s) => s,
            None if holds_upper => Default::default(),
            None => return Err(Errno(libc::ENOSYS)),
        };
        let cached =
            m.listings.lock().get(sub).filter(|(s, _)| *s == stamp && !holds_upper).map(|(_, e)| e.clone());
        let entries = match cached {
            Some(e) => e,
            None => {
                let e = Arc::new(l.merged_entries(sub).map_err(errno)?);
                let mut c = m.listings.lock();
                if c.len() > 256 {
                    c.clear();
                }
                c.insert(sub.to_path_buf(), (stamp, e.clone()));
                e
            }
        };
        Ok(entries.get(index as usize).cloned())
    }
}

vurs_abi::export_module! {
    module: Cow,
    name: "cow",
    description: "copy-on-write view of a tree: changes go to an upper directory (redirect)",
    flags: VURS_F_PATH_REDIRECT,
    syscalls: [],
}
