//! A test case: a tree of directories, files and symlinks, source trees mounted over
//! parts of it with fsremap, and lookups (start directory, path, follow rule). Built from
//! arbitrary bytes by the fuzzer, or spelled out by hand in the regression tests.
use arbitrary::{Arbitrary, Result, Unstructured};
use std::fmt;

/// A name a tree entry can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
pub enum Name {
    A,
    B,
    C,
    D,
    /// 255 bytes: the longest name a file system takes (NAME_MAX).
    Long,
}

/// A component of a path or a symlink's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
pub enum Comp {
    N(Name),
    Dot,
    DotDot,
    /// An empty component: two slashes in a row.
    Empty,
    /// 256 bytes: one more than NAME_MAX (ENAMETOOLONG).
    TooLong,
    /// The names in the world directory: `r` (the case's root) and `s0`..`s2` (sources).
    R,
    S(u8),
}

impl Name {
    pub fn bytes(self) -> Vec<u8> {
        match self {
            Name::A => b"a".to_vec(),
            Name::B => b"b".to_vec(),
            Name::C => b"c".to_vec(),
            Name::D => b"d".to_vec(),
            Name::Long => vec![b'L'; 255],
        }
    }
}

impl Comp {
    pub fn bytes(self) -> Vec<u8> {
        match self {
            Comp::N(n) => n.bytes(),
            Comp::Dot => b".".to_vec(),
            Comp::DotDot => b"..".to_vec(),
            Comp::Empty => Vec::new(),
            Comp::TooLong => vec![b'L'; 256],
            Comp::R => b"r".to_vec(),
            Comp::S(i) => format!("s{}", i as usize % SOURCES).into_bytes(),
        }
    }
}

/// Where a path (or a symlink's text) starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
pub enum Anchor {
    /// Relative: the start directory (for a symlink, the directory holding it).
    Relative,
    /// Absolute, at the case's root directory (`WORLD/r`).
    Root,
    /// Absolute, at the world directory holding the root and the sources (`WORLD`): the
    /// sources can be reached directly (`/s0/...`).
    World,
}

/// A path: an anchor and components, joined with '/'.
#[derive(Debug, Clone, PartialEq, Eq, Arbitrary)]
pub struct PathSpec {
    pub anchor: Anchor,
    pub comps: Vec<Comp>,
    /// Ends in '/'.
    pub trailing_slash: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Arbitrary)]
pub enum Kind {
    Dir,
    File,
    Symlink(PathSpec),
}

/// One entry of a tree: its path below the tree's top and what it is. Missing parents are
/// made as directories; an entry whose parent is not a directory, or whose name is
/// taken, is left out.
#[derive(Debug, Clone, PartialEq, Eq, Arbitrary)]
pub struct Entry {
    pub at: Vec<Name>,
    pub kind: Kind,
}

/// Which tree a mount's SOURCE lies in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
pub enum SourceTree {
    /// One of the source trees (`WORLD/s0`, `s1`, `s2`), outside the case's root.
    Source(u8),
    /// The case's own tree (`WORLD/r`, as on the host: mounts do not apply to SOURCE).
    Root,
}

/// `vurs mount -t fsremap WORLD/<tree>/<source...> WORLD/r/<target...>`. Left out when the
/// kernel would refuse it: SOURCE missing or outside the world, a target whose parents
/// are not all directories (or missing), a target of another kind than SOURCE.
#[derive(Debug, Clone, PartialEq, Eq, Arbitrary)]
pub struct MountSpec {
    pub tree: SourceTree,
    pub source: Vec<Name>,
    pub target: Vec<Name>,
}

/// One lookup: from the directory `start` leads to (resolved from the root, followed; the
/// root itself if it is not a directory), `path`, following its last component or not.
#[derive(Debug, Clone, PartialEq, Eq, Arbitrary)]
pub struct Query {
    pub start: Vec<Comp>,
    pub path: PathSpec,
    /// The path's components are repeated this many times (long paths, ENAMETOOLONG).
    pub repeat: u8,
    pub follow: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    pub tree: Vec<Entry>,
    pub sources: Vec<Vec<Entry>>,
    pub mounts: Vec<MountSpec>,
    pub queries: Vec<Query>,
}

pub const SOURCES: usize = 3;
const MAX_TREE: usize = 14;
const MAX_SOURCE: usize = 6;
const MAX_MOUNTS: usize = 3;
const MAX_QUERIES: usize = 6;
const MAX_COMPS: usize = 10;

fn bounded<'a, T: Arbitrary<'a>>(u: &mut Unstructured<'a>, max: usize) -> Result<Vec<T>> {
    let n = u.int_in_range(0..=max)?;
    (0..n).map(|_| T::arbitrary(u)).collect()
}

impl<'a> Arbitrary<'a> for Case {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Case> {
        let mut case = Case {
            tree: bounded(u, MAX_TREE)?,
            sources: (0..SOURCES).map(|_| bounded(u, MAX_SOURCE)).collect::<Result<_>>()?,
            mounts: bounded(u, MAX_MOUNTS)?,
            queries: Vec::new(),
        };
        let n = u.int_in_range(1..=MAX_QUERIES)?;
        for _ in 0..n {
            case.queries.push(Query::arbitrary(u)?);
        }
        case.trim();
        Ok(case)
    }
}

impl Case {
    /// Keep every list short (a derived Vec takes as many elements as the bytes allow).
    fn trim(&mut self) {
        let spec = |p: &mut PathSpec| p.comps.truncate(MAX_COMPS);
        let entry = |e: &mut Entry| {
            e.at.truncate(6);
            if let Kind::Symlink(p) = &mut e.kind {
                spec(p);
            }
        };
        self.tree.iter_mut().for_each(entry);
        self.sources.iter_mut().flatten().for_each(entry);
        for m in &mut self.mounts {
            m.source.truncate(3);
            m.target.truncate(4);
        }
        for q in &mut self.queries {
            q.start.truncate(MAX_COMPS);
            spec(&mut q.path);
        }
    }
}

impl Query {
    /// How many times the path's components are written out.
    pub fn repetitions(&self) -> usize {
        if self.repeat >= 224 {
            (self.repeat as usize - 222) * 8
        } else {
            1
        }
    }
}

/// The text of a path spec in the world whose directory is `world`.
pub fn path_text(world: &[u8], p: &PathSpec, repeat: usize) -> Vec<u8> {
    let mut comps: Vec<Vec<u8>> = Vec::new();
    for _ in 0..repeat {
        comps.extend(p.comps.iter().map(|c| c.bytes()));
    }
    let mut out = match p.anchor {
        Anchor::Relative => Vec::new(),
        Anchor::Root => [world, b"/r"].concat(),
        Anchor::World => world.to_vec(),
    };
    for (i, c) in comps.iter().enumerate() {
        if i > 0 || p.anchor != Anchor::Relative {
            out.push(b'/');
        }
        out.extend_from_slice(c);
    }
    // A relative text must not start with '/' (a leading empty component).
    if p.anchor == Anchor::Relative && out.first() == Some(&b'/') {
        out.insert(0, b'.');
    }
    if p.trailing_slash && !out.is_empty() {
        out.push(b'/');
    }
    out
}

fn names(n: &[Name]) -> String {
    let v: Vec<String> = n.iter().map(|n| short(&n.bytes())).collect();
    v.join("/")
}

fn short(b: &[u8]) -> String {
    match b.len() {
        255 => "L255".into(),
        256 => "L256".into(),
        _ => String::from_utf8_lossy(b).into_owned(),
    }
}

impl fmt::Display for PathSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let comps: Vec<String> = self.comps.iter().map(|c| short(&c.bytes())).collect();
        let anchor = match self.anchor {
            Anchor::Relative => "",
            Anchor::Root => "/",
            Anchor::World => "WORLD/",
        };
        write!(f, "{anchor}{}{}", comps.join("/"), if self.trailing_slash { "/" } else { "" })
    }
}

impl fmt::Display for Case {
    /// A readable form (L255 and L256 stand for names of 255 and 256 bytes).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries = |f: &mut fmt::Formatter<'_>, top: &str, es: &[Entry]| -> fmt::Result {
            for e in es {
                match &e.kind {
                    Kind::Dir => writeln!(f, "  {top}/{}/", names(&e.at))?,
                    Kind::File => writeln!(f, "  {top}/{}", names(&e.at))?,
                    Kind::Symlink(p) => writeln!(f, "  {top}/{} -> {p}", names(&e.at))?,
                }
            }
            Ok(())
        };
        writeln!(f, "tree (/ is WORLD/r):")?;
        entries(f, "", &self.tree)?;
        for (i, s) in self.sources.iter().enumerate() {
            entries(f, &format!("WORLD/s{i}"), s)?;
        }
        for m in &self.mounts {
            let tree = match m.tree {
                SourceTree::Source(i) => format!("WORLD/s{}", i as usize % SOURCES),
                SourceTree::Root => "WORLD/r".into(),
            };
            writeln!(f, "mount {tree}/{} on /{}", names(&m.source), names(&m.target))?;
        }
        for q in &self.queries {
            let start: Vec<String> = q.start.iter().map(|c| short(&c.bytes())).collect();
            writeln!(
                f,
                "lookup from /{}: {}{} ({})",
                start.join("/"),
                q.path,
                if q.repetitions() > 1 { format!(" x{}", q.repetitions()) } else { String::new() },
                if q.follow { "follow" } else { "nofollow" }
            )?;
        }
        Ok(())
    }
}

/// Builders for cases spelled out by hand (tests/regressions.rs).
pub mod spell {
    use super::*;

    fn name(s: &str) -> Name {
        match s {
            "a" => Name::A,
            "b" => Name::B,
            "c" => Name::C,
            "d" => Name::D,
            "L255" => Name::Long,
            _ => panic!("name {s:?}: a, b, c, d or L255"),
        }
    }
    /// "a/b" -> [A, B].
    pub fn names(s: &str) -> Vec<Name> {
        s.split('/').filter(|c| !c.is_empty()).map(name).collect()
    }
    /// "a/../b//." -> components ("" between two slashes is an empty component).
    pub fn comps(s: &str) -> Vec<Comp> {
        if s.is_empty() {
            return Vec::new();
        }
        s.split('/')
            .map(|c| match c {
                "." => Comp::Dot,
                ".." => Comp::DotDot,
                "" => Comp::Empty,
                "L256" => Comp::TooLong,
                "r" => Comp::R,
                "s0" => Comp::S(0),
                "s1" => Comp::S(1),
                "s2" => Comp::S(2),
                n => Comp::N(name(n)),
            })
            .collect()
    }
    fn spec(anchor: Anchor, s: &str) -> PathSpec {
        let trailing_slash = s.len() > 1 && s.ends_with('/');
        let s = if trailing_slash { &s[..s.len() - 1] } else { s };
        PathSpec { anchor, comps: comps(s), trailing_slash }
    }
    /// A path relative to the start directory (or, for a symlink, to its directory).
    pub fn rel(s: &str) -> PathSpec {
        spec(Anchor::Relative, s)
    }
    /// An absolute path from the case's root: `root("a/b")` is `/a/b`.
    pub fn root(s: &str) -> PathSpec {
        spec(Anchor::Root, s)
    }
    /// An absolute path from the world directory: `world("s0/x")`.
    pub fn world(s: &str) -> PathSpec {
        spec(Anchor::World, s)
    }
    pub fn dir(at: &str) -> Entry {
        Entry { at: names(at), kind: Kind::Dir }
    }
    pub fn file(at: &str) -> Entry {
        Entry { at: names(at), kind: Kind::File }
    }
    pub fn symlink(at: &str, to: PathSpec) -> Entry {
        Entry { at: names(at), kind: Kind::Symlink(to) }
    }
    /// Mount source tree `s` (0..2) at `source` on `target` (below the root).
    pub fn mount(s: u8, source: &str, target: &str) -> MountSpec {
        MountSpec { tree: SourceTree::Source(s), source: names(source), target: names(target) }
    }
    /// Mount a part of the case's own tree (as on the host) on `target`.
    pub fn mount_own(source: &str, target: &str) -> MountSpec {
        MountSpec { tree: SourceTree::Root, source: names(source), target: names(target) }
    }
    pub fn lookup(start: &str, path: PathSpec, follow: bool) -> Query {
        Query { start: comps(start), path, repeat: 0, follow }
    }
}
