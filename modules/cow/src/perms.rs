//! The kernel's discretionary access rules on a lower object, for the caller (the
//! session's view of its ids: a fake root of the fakeroot module is root here), checked
//! before the module writes into UPPER on its behalf.
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use vurs_abi::sdk::Ids;

/// Whether `ids` may do what `want` (a mask of 4 read, 2 write, 1 search) on `md`, by its
/// mode bits (root may do anything but search a directory nobody may search... which is
/// still allowed for directories; execute needs one x bit for files).
pub fn allowed(ids: &Ids, md: &Metadata, want: u32) -> bool {
    let mode = md.mode();
    if ids.fsuid == 0 {
        return want & 1 == 0 || md.is_dir() || mode & 0o111 != 0;
    }
    let bits = if ids.fsuid == md.uid() {
        (mode >> 6) & 7
    } else if ids.fsgid == md.gid() || ids.groups.contains(&md.gid()) {
        (mode >> 3) & 7
    } else {
        mode & 7
    };
    bits & want == want
}

/// The sticky-bit rule of a removal from directory `dir` of an object `md`.
pub fn sticky_allows(ids: &Ids, dir: &Metadata, md: &Metadata) -> bool {
    dir.mode() & libc::S_ISVTX == 0 || ids.fsuid == 0 || ids.fsuid == dir.uid() || ids.fsuid == md.uid()
}
