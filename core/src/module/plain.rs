//! What modules said with `vurs_services.set_plain` (ABI 1.2): which of their mounts are
//! plain subtrees for now. Kept by mount pointer, because a module may say it from any
//! callback; each mount of the table shares its flag (`path::mounts::Mount`).
#![forbid(unsafe_code)]
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;

/// One mount's flag.
#[derive(Default)]
pub struct PlainFlag {
    pub plain: AtomicBool,
    /// The flag changed since the mount's host root was last asked.
    pub changed: AtomicBool,
}

static PLAIN: parking_lot::Mutex<Option<HashMap<usize, Arc<PlainFlag>>>> = parking_lot::Mutex::new(None);

/// The flag of mount pointer `mnt` (made when first asked).
pub fn flag(mnt: usize) -> Arc<PlainFlag> {
    PLAIN.lock().get_or_insert_with(Default::default).entry(mnt).or_default().clone()
}

/// `vurs_services.set_plain`: mount pointer `mnt` is a plain subtree now, or no longer.
pub fn set(mnt: usize, plain: bool) {
    let f = flag(mnt);
    if f.plain.swap(plain, SeqCst) != plain {
        f.changed.store(true, SeqCst);
    }
}

/// The mount is gone.
pub fn forget(mnt: usize) {
    if let Some(map) = PLAIN.lock().as_mut() {
        map.remove(&mnt);
    }
}
