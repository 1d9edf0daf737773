//! Differences between vurs's resolution and the kernel's found by the fuzzer (and a few
//! classic corners), spelled out. Each builds the case twice (the host with vurs mounts,
//! and the virtual view made real) and wants the same object or errno for every lookup,
//! cached and uncached. Those still failing for a reason outside the resolver are
//! #[ignore]d with that reason.
use vurs_pathdiff::case::spell::*;
use vurs_pathdiff::case::{Case, Entry, MountSpec, Query};

fn case(tree: Vec<Entry>, sources: Vec<Vec<Entry>>, mounts: Vec<MountSpec>, queries: Vec<Query>) -> Case {
    Case { tree, sources, mounts, queries }
}

/// Every lookup agrees, `dot_final` included.
fn agrees(c: &Case) {
    vurs_pathdiff::find_modules();
    let o = vurs_pathdiff::check::check(c).unwrap_or_else(|m| panic!("{m}"));
    assert_eq!(o.lookups, c.queries.len());
    assert!(o.known.is_empty(), "{}", o.known.join("\n"));
}

/// Found by the fuzzer: a missing ancestor of a mount target that lies in another mount
/// (mounts on / and /d/a, SOURCE has no d) is virtual-only, but vurs sent `/d` to
/// SOURCE/d (ENOENT). Fixed in MountTable::find.
#[test]
fn virtual_only_dir_inside_a_mount() {
    agrees(&case(
        vec![],
        vec![vec![]],
        vec![mount(0, "", ""), mount(0, "", "d/a")],
        vec![
            lookup("", root("d/"), false),
            lookup("", root("d"), false),
            lookup("", root("d/a/.."), true),
            lookup("d", rel("."), true),
            lookup("d", rel("a"), false),
        ],
    ));
}

/// dispatch/paths.rs's dot_final handed `TARGET/..` not followed to the kernel as
/// `SOURCE/..`: the host parent of SOURCE instead of TARGET's virtual parent (fixed).
#[test]
fn target_dotdot_not_followed() {
    agrees(&case(
        vec![dir("d")],
        vec![vec![dir("a")]],
        vec![mount(0, "", "d")],
        vec![
            lookup("", root("d/.."), false),
            lookup("d/a", rel("../.."), false),
            lookup("", root("d/a/.."), false),
        ],
    ));
}

/// Classic corners, inside and across a mount (names: a, b, c, d; L256 is too long).
#[test]
fn corners_through_a_mount() {
    agrees(&case(
        vec![dir("a"), file("a/b"), symlink("b", root("d/a")), symlink("c", rel("c")), dir("d")],
        vec![vec![
            dir("a"),
            file("a/b"),
            symlink("a/a", rel("../..")),
            symlink("a/c", root("a")),
            symlink("a/d", rel("b/b")),
            symlink("b", rel("b")),
        ]],
        vec![mount(0, "", "d")],
        vec![
            lookup("", root("b/b"), true),
            lookup("", root("b/b/"), true),
            lookup("", root("b/b/.."), true),
            lookup("", root("d/a/a/a/b"), true),
            lookup("", root("d/a/c/b"), true),
            lookup("", root("d/a/d"), false),
            lookup("", root("d/a/d"), true),
            lookup("", root("d/a/d/"), false),
            lookup("", root("d/b"), true),
            lookup("", root("c/"), false),
            lookup("d/a", rel("a"), false),
            lookup("d/a", rel("a/"), false),
            lookup("d/a", rel("..//./a/b"), true),
            lookup("d", rel(""), true),
            lookup("", root("d/a/L256"), true),
            lookup("", root("b"), false),
            lookup("", world("s0/a/c/b"), true),
        ],
    ));
}

/// A mount whose SOURCE is a part of the same tree, and a file mounted on a missing path.
#[test]
fn own_tree_and_file_mounts() {
    agrees(&case(
        vec![dir("a/b"), file("a/b/c"), symlink("a/d", rel("../c")), dir("c")],
        vec![vec![file("a")]],
        vec![mount_own("a", "c/d"), mount(0, "a", "c/d/b/c"), mount(0, "a", "d/d")],
        vec![
            lookup("", root("c/d/b/c"), true),
            lookup("", root("c/d/d/d"), true),
            lookup("c/d", rel("b/c/"), true),
            lookup("", root("d/d"), false),
            lookup("", root("d"), true),
            lookup("", root("a/b/c"), true),
        ],
    ));
}

/// A symlink whose text ends in '/' must lead to a directory: `b -> a/` with `a` a file
/// is ENOTDIR when followed, in the middle of a path or at its end.
#[test]
fn symlink_text_with_trailing_slash() {
    agrees(&case(
        vec![dir("d")],
        vec![vec![file("a"), symlink("b", rel("a/")), dir("c"), symlink("d", rel("c/"))]],
        vec![mount(0, "", "d")],
        vec![
            lookup("", root("d/b"), true),
            lookup("", root("d/b"), false),
            lookup("", root("d/b/"), false),
            lookup("d", rel("b"), true),
            lookup("", root("d/d"), true),
            lookup("", root("d/d/.."), true),
        ],
    ));
}

/// A path ending in "/." names a directory as one ending in '/' does: `f/.` is ENOTDIR
/// and `l/.` follows the symlink, in a mount as outside.
#[test]
fn final_dot_names_a_directory() {
    agrees(&case(
        vec![dir("d"), file("a"), symlink("b", rel("c")), dir("c")],
        vec![vec![file("a"), symlink("b", rel("c")), dir("c"), symlink("d", rel("a/."))]],
        vec![mount(0, "", "d")],
        vec![
            lookup("", root("d/a/."), true),
            lookup("", root("d/b/."), true),
            lookup("", root("d/d"), true),
            lookup("d", rel("a/./"), true),
            lookup("d/c", rel("."), true),
            lookup("", root("a/."), true),
            lookup("", root("b/."), true),
        ],
    ));
}

/// Found by the fuzzer: a relative path of 4095 bytes (16 names of 255 bytes) from a start
/// directory in a mount: the kernel takes it (ENOENT), vurs hands it the absolute host
/// path, longer than PATH_MAX (ENAMETOOLONG). Issue 9: keep such paths relative to a
/// real descriptor.
#[test]
fn long_relative_path_in_a_mount() {
    let mut long = lookup("", rel("L255"), false);
    long.repeat = 224; // 16 times
    agrees(&case(vec![], vec![vec![]], vec![mount(0, "", "")], vec![long]));
}
