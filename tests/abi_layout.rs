//! The C header is the ABI's source of truth: the Rust mirror must agree with it on every
//! struct size, field offset and constant; modules built against another minor load.
mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn header() -> PathBuf {
    repo().join("abi/include/vurs_module.h")
}

/// Remove /* */ and // comments.
fn strip_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    loop {
        let block = rest.find("/*");
        let line = rest.find("//");
        match (block, line) {
            (Some(b), l) if l.is_none_or(|l| b < l) => {
                out.push_str(&rest[..b]);
                let end = rest[b + 2..].find("*/").expect("unterminated comment");
                out.push(' ');
                rest = &rest[b + 2 + end + 2..];
            }
            (_, Some(l)) => {
                out.push_str(&rest[..l]);
                rest = rest[l..].find('\n').map_or("", |n| &rest[l + n..]);
            }
            _ => {
                out.push_str(rest);
                return out;
            }
        }
    }
}

fn ident_at_end(decl: &str) -> String {
    // "const struct vurs_caller *caller" -> caller; "char name[256]" -> name
    let decl = decl.split('[').next().unwrap().trim();
    let start = decl.rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map_or(0, |i| i + 1);
    decl[start..].to_string()
}

/// Every struct of the header with its fields, in order: parsed from the header itself so
/// that a field added there and forgotten in the Rust mirror shows up.
fn header_structs(text: &str) -> Vec<(String, Vec<String>)> {
    let text = strip_comments(text);
    let mut out = Vec::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("struct ") {
        let after = &rest[i + 7..];
        let name_end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
        let name = &after[..name_end];
        let tail = after[name_end..].trim_start();
        if !tail.starts_with('{') {
            rest = &after[name_end..];
            continue;
        }
        let body_start = after.len() - tail.len() + 1;
        let body_len = after[body_start..].find("};").expect("struct end");
        let body = &after[body_start..body_start + body_len];
        let mut fields = Vec::new();
        // Split on ';' outside parentheses (function pointer parameter lists).
        let mut depth = 0;
        let mut cur = String::new();
        for c in body.chars() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            if c == ';' && depth == 0 {
                let decl = cur.split_whitespace().collect::<Vec<_>>().join(" ");
                if let Some(p) = decl.find("(*") {
                    let n = &decl[p + 2..];
                    fields.push(n[..n.find(')').expect("fn ptr")].trim().to_string());
                } else if !decl.is_empty() {
                    // "uint32_t uid, euid, gid, egid"
                    for d in decl.split(',') {
                        fields.push(ident_at_end(d));
                    }
                }
                cur.clear();
            } else {
                cur.push(c);
            }
        }
        out.push((name.to_string(), fields));
        rest = &after[body_start + body_len..];
    }
    out
}

/// Every `#define VURS_X value` of the header: (name, value text).
fn header_defines(text: &str) -> Vec<(String, String)> {
    strip_comments(text)
        .lines()
        .filter_map(|l| {
            let l = l.trim().strip_prefix("#define")?;
            let mut it = l.split_whitespace();
            let name = it.next()?.to_string();
            let value = it.collect::<Vec<_>>().join(" ");
            (!value.is_empty()).then_some((name, value))
        })
        .collect()
}

fn gcc(args: &[&str], src: &Path, out: &Path, shared: bool) {
    let mut c = Command::new("gcc");
    if shared {
        c.args(["-shared", "-fPIC"]);
    }
    c.arg("-Wall")
        .arg(format!("-I{}", repo().join("abi/include").display()))
        .args(args)
        .arg("-o")
        .arg(out)
        .arg(src);
    let o = run_with_timeout(c, 60);
    assert!(o.status.success(), "gcc {src:?} {args:?}: {}", stderr(&o));
}

#[test]
fn c_header_and_rust_mirror_agree() {
    let text = std::fs::read_to_string(header()).unwrap();
    let structs = header_structs(&text);
    let names: Vec<&str> = structs.iter().map(|(n, _)| n.as_str()).collect();
    for s in [
        "vurs_caller",
        "vurs_call",
        "vurs_result",
        "vurs_stat",
        "vurs_dirent",
        "vurs_services",
        "vurs_module",
    ] {
        assert!(names.contains(&s), "header parser missed struct {s}: {names:?}");
    }
    let defines = header_defines(&text);
    let mut c = String::from(
        "#include <stdio.h>\n#include <stddef.h>\n#include \"vurs_module.h\"\nint main(void) {\n",
    );
    for (s, fields) in &structs {
        c += &format!("printf(\"sizeof {s} %zu\\n\", sizeof(struct {s}));\n");
        for f in fields {
            c += &format!("printf(\"{s}.{f} %zu\\n\", offsetof(struct {s}, {f}));\n");
        }
    }
    let mut symbol = None;
    for (name, value) in &defines {
        if value.starts_with('"') {
            if name == "VURS_MODULE_SYMBOL" {
                symbol = Some(value.trim_matches('"').to_string());
            }
            continue;
        }
        c += &format!("printf(\"{name} %lld\\n\", (long long)({name}));\n");
    }
    c += "return 0;\n}\n";
    assert_eq!(symbol.as_deref(), Some(vurs_abi::VURS_MODULE_SYMBOL), "VURS_MODULE_SYMBOL");

    let dir = TempDir::new("abi-layout");
    let src = dir.join("layout.c");
    std::fs::write(&src, c).unwrap();
    let exe = dir.join("layout");
    gcc(&[], &src, &exe, false);
    let o = run_with_timeout(Command::new(&exe), 30);
    assert!(o.status.success());
    let mut from_c: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
    from_c.sort();
    let mut from_rust: Vec<String> =
        vurs_abi::layout_report().into_iter().map(|(k, v)| format!("{k} {v}")).collect();
    from_rust.sort();
    let only_c: Vec<&String> = from_c.iter().filter(|l| !from_rust.contains(l)).collect();
    let only_rust: Vec<&String> = from_rust.iter().filter(|l| !from_c.contains(l)).collect();
    assert!(
        only_c.is_empty() && only_rust.is_empty(),
        "C header and vurs_abi::layout_report() disagree\n  only in C: {only_c:?}\n  only in Rust: {only_rust:?}"
    );
}

/// Build tests/modules/tiny.c with `defines` into dir/lib{name}.so.
fn tiny(dir: &TempDir, name: &str, defines: &[&str]) -> PathBuf {
    let out = dir.join(&format!("lib{name}.so"));
    let mut args: Vec<String> = defines.iter().map(|d| format!("-D{d}")).collect();
    args.push(format!("-DTINY_NAME=\"{name}\""));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    gcc(&args, &repo().join("tests/modules/tiny.c"), &out, true);
    out
}

/// Load `so` at start; the module answers sched_yield with 4242 and lsmod lists it.
fn assert_loads_and_serves(so: &Path, name: &str) {
    let so = so.to_str().unwrap();
    let py = "import ctypes; print(ctypes.CDLL(None).syscall(24))";
    let o = vurs_run(&["-m", so, "--", &python(), "-c", py]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "4242", "stderr: {}", stderr(&o));
    let v = vurs();
    let o = vurs_run(&["-m", so, "--", v.to_str().unwrap(), "lsmod"]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    assert!(stdout(&o).lines().any(|l| l.split('\t').next() == Some(name)), "lsmod: {}", stdout(&o));
}

#[test]
fn module_of_an_older_minor_loads() {
    let dir = TempDir::new("abi-minor0");
    let so = tiny(&dir, "minor0", &["TINY_MINOR=0"]);
    assert_loads_and_serves(&so, "minor0");
}

#[test]
fn module_of_a_newer_minor_loads() {
    let dir = TempDir::new("abi-minor7");
    // Claims 1.7 with the 1.0 descriptor size...
    let so = tiny(&dir, "minor7", &["TINY_MINOR=7"]);
    assert_loads_and_serves(&so, "minor7");
    // ...and with a larger descriptor (fields a newer minor appended): ignored.
    let so = tiny(&dir, "minor7x", &["TINY_MINOR=7", "TINY_EXTRA"]);
    assert_loads_and_serves(&so, "minor7x");
}

/// A module built against ABI 1.0: its descriptor ends at `auto_mounts` (the 1.1 fields
/// are beyond its size, whatever its memory holds there): it loads and serves.
#[test]
fn module_with_the_1_0_descriptor_size_loads() {
    let dir = TempDir::new("abi-size10");
    let so = tiny(&dir, "size10", &["TINY_MINOR=0", "TINY_SIZE=offsetof(struct vurs_module, mkdir)"]);
    assert_loads_and_serves(&so, "size10");
}
