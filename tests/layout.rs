//! The layout of core/src: its top-level modules depend on each other one way
//! (docs/architecture.md, "Layout"). This test reads every file under core/src, collects the
//! top-level modules it names (`crate::x`, `use crate::{x, y}`) and fails, naming the cycle,
//! if those edges form one. It reads source text only: no build of the checked tree needed.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// core/src, or another tree's (`VURS_LAYOUT_SRC=DIR`: to check the test against an older tree).
fn src_dir() -> PathBuf {
    match std::env::var_os("VURS_LAYOUT_SRC") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
    }
}

/// The top-level modules, as lib.rs declares them (`mod x;`, `pub mod x;`).
fn top_modules(src: &Path) -> BTreeSet<String> {
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("core/src/lib.rs");
    lib.lines()
        .filter_map(|l| {
            let l = l.trim();
            let rest = l.strip_prefix("pub mod ").or_else(|| l.strip_prefix("mod "))?;
            Some(rest.strip_suffix(';')?.trim().to_string())
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read core/src") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn ident_at(s: &str) -> String {
    s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
}

/// Top-level modules named by `crate::` paths in `text`, including `use crate::{a, b::c}`.
fn named_modules(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        // `$crate::` in macros and `vurs_abi::`-like names ending in "crate" are not ours.
        let before = text[..i].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // A group: split at top-level commas.
            let mut depth = 0;
            let mut start = 0;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        out.insert(ident_at(group[start..j].trim_start()));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.insert(ident_at(group[start..j].trim_start()));
                        start = j + 1;
                    }
                    _ => {}
                }
            }
        } else {
            out.insert(ident_at(rest));
        }
    }
    out.retain(|m| !m.is_empty() && m != "self");
    out
}

/// Edges between top-level modules: module -> modules its files name.
fn edges(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let tops = top_modules(src);
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut g: BTreeMap<String, BTreeSet<String>> =
        tops.iter().map(|t| (t.clone(), BTreeSet::new())).collect();
    for f in files {
        let rel = f.strip_prefix(src).expect("under src");
        let first = rel.components().next().expect("a path").as_os_str().to_string_lossy().to_string();
        let top = first.strip_suffix(".rs").unwrap_or(&first).to_string();
        if !tops.contains(&top) {
            continue; // lib.rs, and the binary's own files (main.rs and its modules)
        }
        let text = std::fs::read_to_string(&f).expect("read a source file");
        // Comments name modules without depending on them.
        let text: String =
            text.lines().filter(|l| !l.trim_start().starts_with("//")).map(|l| format!("{l}\n")).collect();
        for m in named_modules(&text) {
            if m != top && tops.contains(&m) {
                g.get_mut(&top).expect("a top module").insert(m);
            }
        }
    }
    g
}

/// A cycle of the graph, if there is one (depth-first search, white/grey/black).
fn find_cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in &g[n] {
            match state.get(m.as_str()).copied().unwrap_or(0) {
                0 => {
                    if let Some(c) = visit(m, g, state, stack) {
                        return Some(c);
                    }
                }
                1 => {
                    let at = stack.iter().position(|s| s == m).expect("on the stack");
                    let mut c = stack[at..].to_vec();
                    c.push(m.clone());
                    return Some(c);
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in g.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0 {
            if let Some(c) = visit(n, g, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn top_level_modules_form_no_cycle() {
    let g = edges(&src_dir());
    assert!(g.len() > 5, "lib.rs lists the top-level modules: found {g:?}");
    if let Some(c) = find_cycle(&g) {
        let all: Vec<String> = g
            .iter()
            .map(|(k, v)| format!("  {k} -> {}", v.iter().cloned().collect::<Vec<_>>().join(", ")))
            .collect();
        panic!(
            "import cycle between top-level modules of core/src: {}\nall edges:\n{}",
            c.join(" -> "),
            all.join("\n")
        );
    }
}

#[test]
fn the_parser_sees_groups_and_paths() {
    let m = named_modules("use crate::{a::B, c};\nfn f() { crate::d::e(); $crate::z; x_crate::y; }");
    assert_eq!(m.into_iter().collect::<Vec<_>>(), ["a", "c", "d"]);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.insert("a".into(), ["b".to_string()].into());
    g.insert("b".into(), ["a".to_string()].into());
    assert_eq!(find_cycle(&g), Some(vec!["a".to_string(), "b".to_string(), "a".to_string()]));
    g.insert("b".into(), BTreeSet::new());
    assert_eq!(find_cycle(&g), None);
}
