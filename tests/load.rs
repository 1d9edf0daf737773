//! Load (issue 9, "Load"): many processes, many threads, exec storms, signal storms,
//! exit_group while threads sit in trapped calls — each run natively and under
//! `vurs -b SRC:DST` (plain, and with VURS_FORCE_WORKERS=1: every decision on a worker
//! thread), and the outputs and exit statuses must be the same. The programs are in
//! tests/progs (proc_window, threads_open, exec_chain, signal_storm, exit_trapped).
//!
//! The sizes here take seconds. VURS_LOAD_SCALE=N multiplies them (the 200-process window
//! and the 256 threads stay); the figures of a long run are in docs/reliability.md. Each
//! test prints its figures (wall time native and under vurs, vurs's peak RSS) to stderr:
//! `cargo test --release --test load -- --nocapture --test-threads 1`. They are figures,
//! not assertions.
mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn scale() -> usize {
    std::env::var("VURS_LOAD_SCALE").ok().and_then(|s| s.parse().ok()).filter(|&n| n >= 1).unwrap_or(1)
}

/// A host tree `src` with eight small files f0..f7 of different sizes and contents, and an
/// empty `dst` to bind it on.
struct Tree {
    dir: TempDir,
    src: PathBuf,
    dst: PathBuf,
}

fn tree(tag: &str) -> Tree {
    let dir = TempDir::new(tag);
    let (src, dst) = (dir.join("src"), dir.join("dst"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&dst).unwrap();
    for i in 0..8usize {
        let body: Vec<u8> = (0..100 + 397 * i).map(|k| (k * 31 + i * 7) as u8).collect();
        std::fs::write(src.join(format!("f{i}")), body).unwrap();
    }
    Tree { dir, src, dst }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Peak RSS (VmHWM, KiB) of a running process, polled until it exits: the last value read
/// is the high-water mark as of at most 20 ms before its end.
fn watch_hwm(pid: u32) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut last = 0;
        while let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            if let Some(kb) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            {
                last = kb;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        last
    })
}

struct Run {
    out: Output,
    secs: f64,
    hwm_kib: u64,
}

fn timed(mut c: Command, secs: u64, watch: bool) -> Run {
    use std::process::Stdio;
    c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let t = Instant::now();
    let child = c.spawn().expect("spawn");
    let hwm = watch.then(|| watch_hwm(child.id()));
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(o) => o.expect("wait"),
        Err(_) => {
            // SAFETY: kill(2) of the process we started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("hang: no end after {secs}s: {c:?}");
        }
    };
    let secs = t.elapsed().as_secs_f64();
    let hwm_kib = hwm.map(|h| h.join().unwrap()).unwrap_or(0);
    Run { out, secs, hwm_kib }
}

fn show(o: &Output) -> String {
    format!("status {:?}\n--- stdout\n{}--- stderr\n{}", o.status, stdout(o), stderr(o))
}

/// Run `prog ARGS` natively on the host tree, then under `vurs -b src:dst` on the bound
/// tree (`{}` in ARGS stands for the tree), plain and with every decision on a worker:
/// same stdout, same exit status. Prints the figures; returns the plain vurs run.
fn same_as_native(t: &Tree, prog: &Path, args: &[String], limit: u64, report: bool) -> Run {
    let subst = |root: &Path| -> Vec<String> { args.iter().map(|a| a.replace("{}", s(root))).collect() };
    let mut native = Command::new(prog);
    native.args(subst(&t.src));
    let n = timed(native, limit, false);
    assert!(n.out.status.code().is_some(), "native: {}", show(&n.out));
    let bind = format!("{}:{}", s(&t.src), s(&t.dst));
    let name = prog.file_name().unwrap().to_string_lossy().into_owned();
    let mut first = None;
    for force_workers in [false, true] {
        let mut c = Command::new(vurs());
        c.args(["-b", &bind, "--"]).arg(prog).args(subst(&t.dst));
        if force_workers {
            c.env("VURS_FORCE_WORKERS", "1");
        }
        let v = timed(c, limit, true);
        let label = if force_workers { "vurs (workers)" } else { "vurs" };
        assert_eq!(
            (stdout(&v.out), v.out.status.code()),
            (stdout(&n.out), n.out.status.code()),
            "{name} {args:?}: {label} differs from native\n{label}: {}\nnative: {}",
            show(&v.out),
            show(&n.out)
        );
        if report {
            eprintln!(
            "figure {name} {args:?} scale {}: native {:.3}s, {label} {:.3}s ({:.2}x), vurs peak RSS {} KiB",
            scale(),
            n.secs,
            v.secs,
            v.secs / n.secs.max(1e-6),
            v.hwm_kib
        );
        }
        first.get_or_insert(v);
    }
    first.unwrap()
}

/// 1000 processes in all (x scale), 200 alive at once, each opening a file of the mount;
/// every exit status checked. Reports vurs's peak RSS (goal: 16 MiB).
#[test]
fn processes_1000_with_200_alive() {
    let t = tree("load-procs");
    let prog = build_c("proc_window", t.dir.path());
    let total = 1000 * scale();
    let v = same_as_native(&t, &prog, &[total.to_string(), "200".into(), "{}".into()], 300, true);
    assert_eq!(stdout(&v.out), format!("procs {total} window 200 bad 0\n"));
    eprintln!("figure proc_window: vurs peak RSS {} KiB = {:.1} MiB", v.hwm_kib, v.hwm_kib as f64 / 1024.0);
}

/// 256 threads of one process open, read and close files of the mount.
#[test]
fn threads_256_open_read_close() {
    let t = tree("load-threads");
    let prog = build_c("threads_open", t.dir.path());
    let iters = 40 * scale();
    let v = same_as_native(&t, &prog, &["256".into(), iters.to_string(), "{}".into()], 300, true);
    assert_eq!(stdout(&v.out), format!("threads 256 opens {} bad 0\n", 256 * iters));
}

/// Exec storm: 20 processes each exec themselves 50 times (x scale), every image reading a
/// file of the mount.
#[test]
fn exec_storm() {
    let t = tree("load-exec");
    let prog = build_c("exec_chain", t.dir.path());
    let depth = 50 * scale();
    same_as_native(&t, &prog, &["20".into(), depth.to_string(), "{}".into()], 300, true);
}

/// Signal storm: SIGUSR1 flood and SIGCHLD from short-lived children while the process
/// opens and reads files of the mount.
#[test]
fn signal_storm() {
    let t = tree("load-signals");
    let prog = build_c("signal_storm", t.dir.path());
    let iters = 5000 * scale();
    let v = same_as_native(&t, &prog, &[iters.to_string(), "{}".into()], 300, true);
    assert_eq!(
        stdout(&v.out),
        format!("reads {iters} bad 0 children {0} statuses-ok {0} usr1 yes\n", iters.div_ceil(10))
    );
}

/// exit_group while 16 threads sit in trapped calls (open of a file in the mount), 20
/// times (x scale): status 3 every time, no hang.
#[test]
fn exit_group_while_threads_in_trapped_calls() {
    let t = tree("load-exit");
    let prog = build_c("exit_trapped", t.dir.path());
    for i in 0..20 * scale() {
        let v = same_as_native(&t, &prog, &["{}/f0".into()], 60, i == 0);
        assert_eq!((stdout(&v.out).as_str(), v.out.status.code()), ("exiting\n", Some(3)));
    }
}

// ------------------------------------------------------------------ a real build in a mount

/// zlib's own example programs (enough, example, fitblk, gun, gzappend, gzjoin, gznorm,
/// minigzip, zpipe, zran + zran.h, and gzlog.c + gzlog.h as a static library), installed by
/// Debian's zlib1g-dev (listed in .ci/run).
const ZLIB_EXAMPLES: &str = "/usr/share/doc/zlib1g-dev/examples";

const MAKEFILE: &str = "\
# Paths in debug info and __FILE__ are made relative to the build directory, so that a
# build at another path (through a mount) can give the same bytes.
CFLAGS = -O2 -g -w -ffile-prefix-map=$(CURDIR)=/proj
PROGS = enough example fitblk gun gzappend gzjoin gznorm minigzip zpipe zran
all: $(PROGS) libgzlog.a
%.o: %.c
\t$(CC) $(CFLAGS) -c -o $@ $<
zran.o: zran.h
zran.o: CFLAGS += -DTEST
gzlog.o: gzlog.h
$(PROGS): %: %.o
\t$(CC) -o $@ $< -lz
libgzlog.a: gzlog.o
\tar rcsD $@ $^
";

/// `make -j2` of zlib's examples with the sources in a fsremap mount and the objects
/// written there gives the same bytes as the same build natively: every object, the
/// library and every program. The built zpipe works through the mount too.
#[test]
fn make_j2_in_a_mount_is_byte_identical() {
    let examples = Path::new(ZLIB_EXAMPLES);
    assert!(examples.is_dir(), "{ZLIB_EXAMPLES} missing: apt-get install zlib1g-dev (see .ci/run)");
    let d = TempDir::new("load-make");
    let (native, src, mnt) = (d.join("native"), d.join("src"), d.join("mnt"));
    for dir in [&native, &src, &mnt] {
        std::fs::create_dir_all(dir).unwrap();
    }
    let mut sources = Vec::new();
    for e in std::fs::read_dir(examples).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".c") && name != "infcover.c" || name.ends_with(".h") {
            for dir in [&native, &src] {
                std::fs::copy(e.path(), dir.join(&name)).unwrap();
            }
            sources.push(name);
        }
    }
    for dir in [&native, &src] {
        std::fs::write(dir.join("Makefile"), MAKEFILE).unwrap();
    }
    let mut c = Command::new("make");
    c.args(["-j2", "-s", "-C"]).arg(&native);
    let n = timed(c, 600, false);
    assert!(n.out.status.success(), "native make: {}", show(&n.out));
    let bind = format!("{}:{}", s(&src), s(&mnt));
    let mut c = Command::new(vurs());
    c.args(["-b", &bind, "--", "make", "-j2", "-s", "-C"]).arg(&mnt);
    let v = timed(c, 600, true);
    assert!(v.out.status.success(), "make under vurs: {}", show(&v.out));
    assert_eq!(stdout(&v.out), stdout(&n.out));
    // The artefacts were written through the mount: into src, none on the host's mnt.
    assert_eq!(std::fs::read_dir(&mnt).unwrap().count(), 0, "files landed outside the mount's source");
    let mut names: Vec<String> = std::fs::read_dir(&native)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !sources.contains(n) && n != "Makefile")
        .collect();
    names.sort();
    assert_eq!(names.len(), 10 + 11 + 1, "artefacts: {names:?}"); // programs, objects, library
    let differ: Vec<&String> = names
        .iter()
        .filter(|n| std::fs::read(native.join(n)).ok() != std::fs::read(src.join(n)).ok())
        .collect();
    assert!(differ.is_empty(), "differ from the native build: {differ:?}");
    eprintln!(
        "figure make -j2 zlib examples ({} artefacts identical): native {:.2}s, vurs {:.2}s ({:.2}x), vurs peak RSS {} KiB",
        names.len(),
        n.secs,
        v.secs,
        v.secs / n.secs,
        v.hwm_kib
    );
    // And the result runs: zpipe compresses and expands through the mount.
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8 ^ (i / 1000) as u8).collect();
    std::fs::write(src.join("data"), &data).unwrap();
    let script =
        "./zpipe < data > data.z && ./zpipe -d < data.z > data.back && cmp data data.back && echo same";
    let mut c = Command::new(vurs());
    c.args(["-b", &bind, "--", "sh", "-c", script]).current_dir(&mnt);
    let o = timed(c, 120, false).out;
    assert_eq!(stdout(&o), "same\n", "{}", show(&o));
}
