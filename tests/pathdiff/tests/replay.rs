//! Replays the kept fuzz corpus (corpus/<target>/, see docs/reliability.md "Fuzzing")
//! through the same checks the fuzz targets make. Any difference fails the test. $PATHDIFF_CORPUS replays another
//! folder of resolve_diff inputs instead; $PATHDIFF_VERBOSE prints the known differences.
use std::path::PathBuf;

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = match (target, std::env::var_os("PATHDIFF_CORPUS")) {
        ("resolve_diff", Some(d)) => PathBuf::from(d),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target),
    };
    let mut out: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.unwrap().path();
            let data = std::fs::read(&p).unwrap();
            (p, data)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "{}: no corpus", dir.display());
    out
}

#[test]
fn resolve_diff_corpus() {
    let (mut lookups, mut found, mut mounts, mut known) = (0, 0, 0, 0);
    let all = inputs("resolve_diff");
    for (p, data) in &all {
        let o = std::panic::catch_unwind(|| vurs_pathdiff::targets::resolve_diff(data))
            .unwrap_or_else(|_| panic!("corpus file {} fails (see above)", p.display()));
        lookups += o.lookups;
        found += o.found;
        mounts += o.mounts;
        known += o.known.len();
        if std::env::var_os("PATHDIFF_VERBOSE").is_some() {
            o.known.iter().for_each(|k| eprintln!("{}: {k}", p.display()));
        }
    }
    eprintln!(
        "resolve_diff: {} cases, {mounts} mounts, {lookups} lookups ({found} found an object), \
         {known} known differences (dispatch)",
        all.len()
    );
    assert!(lookups > 0 && mounts > 0 && found > 0);
}

#[test]
fn mount_spec_corpus() {
    for (_, data) in inputs("mount_spec") {
        vurs_pathdiff::targets::mount_spec(&data);
    }
}

#[test]
fn module_options_corpus() {
    for (_, data) in inputs("module_options") {
        vurs_pathdiff::targets::module_options(&data);
    }
}
