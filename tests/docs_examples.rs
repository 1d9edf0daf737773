//! The C examples of docs/modules.md, taken from the page itself (between
//! `<!-- example: NAME -->` and `<!-- end of example -->`): they compile with plain gcc
//! (and with -std=c11), and the serving example runs under vurs like a real directory.
mod common;
use common::*;
use std::process::Command;

/// The C code of example `name` in docs/modules.md.
fn example(name: &str) -> String {
    let page = std::fs::read_to_string(repo().join("docs/modules.md")).unwrap();
    let start = format!("<!-- example: {name} -->");
    let at = page.find(&start).unwrap_or_else(|| panic!("no {start} in docs/modules.md"));
    let rest = &page[at + start.len()..];
    let end = rest.find("<!-- end of example -->").expect("end marker");
    let block = rest[..end].trim();
    let code = block.strip_prefix("```c").and_then(|b| b.strip_suffix("```")).expect("one ```c block");
    code.to_string()
}

/// Build example `name` as a module with `extra` gcc flags; its path.
fn build(d: &TempDir, name: &str, extra: &[&str]) -> std::path::PathBuf {
    let src = d.join(&format!("{name}.c"));
    std::fs::write(&src, example(&format!("{name}.c"))).unwrap();
    let out = d.join(&format!("lib{name}.so"));
    let mut c = Command::new("gcc");
    c.args(["-shared", "-fPIC", "-Wall", "-Werror"])
        .args(extra)
        .arg(format!("-I{}", repo().join("abi/include").display()))
        .arg("-o")
        .arg(&out)
        .arg(&src);
    let o = run_with_timeout(c, 60);
    assert!(o.status.success(), "gcc {extra:?} {name}: {}", stderr(&o));
    out
}

#[test]
fn syscall_example_builds_with_std_c11() {
    let d = TempDir::new("docs-fakeid");
    build(&d, "fakeid", &[]);
    let so = build(&d, "fakeid", &["-std=c11"]);
    // And does what the page says.
    let o = vurs_run(&["-m", &format!("{},uid=1234,gid=99", so.display()), "--", "sh", "-c", "id -u; id -g"]);
    assert_eq!(stdout(&o), "1234\n99\n", "{}", stderr(&o));
}

#[test]
fn serving_example_runs_like_a_real_directory() {
    let d = TempDir::new("docs-hellofs");
    build(&d, "hellofs", &["-std=c11"]);
    let so = build(&d, "hellofs", &[]);
    let real = d.join("real");
    std::fs::create_dir(&real).unwrap();
    std::fs::write(real.join("hello"), "hi-there\n").unwrap();
    let sh = "cd / && ls -a D; cat D/hello; wc -c < D/hello; stat -c '%F %s' D/hello; stat -c %F D; \
              test -r D/hello && echo readable; cat D/missing 2>&1 | sed 's/^[^:]*: //'";
    let want = {
        let mut c = Command::new("sh");
        c.args(["-c", &sh.replace('D', real.to_str().unwrap())]);
        run_with_timeout(c, 60)
    };
    let m = "type=hellofs,source=hi-there,target=/h";
    let got = vurs_run(&["-m", so.to_str().unwrap(), "--mount", m, "--", "sh", "-c", &sh.replace('D', "/h")]);
    assert!(got.status.success(), "{}", stderr(&got));
    let want = stdout(&want).replace(real.to_str().unwrap(), "D");
    assert!(want.contains("hi-there\n9\nregular file 9\n"), "{want}");
    assert_eq!(stdout(&got).replace("/h", "D"), want);
}
