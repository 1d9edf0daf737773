//! uname (`-m uname[,FIELD=VALUE...]`) and time (`-m time[,offset=S][,rate=F]`) modules.
mod common;
use common::*;
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const PY: &str = "/usr/bin/python3";
const BUSYBOX: &str = "/bin/busybox";
const TIMEOUT: u64 = 120;
/// Allowed difference between a virtual clock and the expected value (loaded 2-core box).
const TOL: f64 = 5.0;

fn env(c: &mut Command) {
    c.env("PATH", format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", module_dir().display()))
        .env("LC_ALL", "C")
        .env("TZ", "UTC")
        .current_dir("/");
}

fn vurs_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(vurs());
    c.args(args);
    env(&mut c);
    c
}

fn nobody(args: &[&str]) -> Command {
    let v = vurs();
    let mut all = vec![v.to_str().unwrap()];
    all.extend(args);
    let mut c = as_nobody(&all);
    env(&mut c);
    c
}

fn run(c: Command) -> Output {
    run_with_timeout(c, TIMEOUT)
}

fn show(o: &Output) -> String {
    format!("status {:?}\n--- stdout ---\n{}--- stderr ---\n{}", o.status, stdout(o), stderr(o))
}

fn ok(c: Command) -> String {
    let o = run(c);
    assert!(o.status.success(), "{}", show(&o));
    stdout(&o)
}

fn host_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

fn read_host(p: &str) -> String {
    std::fs::read_to_string(p).unwrap()
}

fn host_hostname() -> String {
    let mut c = Command::new("hostname");
    env(&mut c);
    ok(c)
}

/// The host's `uname -FLAG` output.
fn host_uname(flag: &str) -> String {
    let mut c = Command::new("uname");
    c.arg(flag);
    env(&mut c);
    ok(c).trim_end().to_string()
}

// ---------------------------------------------------------------------------------------
// uname

#[test]
fn uname_all_fields_given() {
    let out = ok(vurs_cmd(&[
        "-m",
        "uname,sysname=VursOS,nodename=box,release=9.9.9-v,version=#42 test build,machine=mach64,domainname=dom.example",
        "--",
        "sh",
        "-c",
        "uname -s; uname -n; uname -r; uname -v; uname -m; domainname; uname -a",
    ]));
    assert_eq!(
        out,
        "VursOS\nbox\n9.9.9-v\n#42 test build\nmach64\ndom.example\n\
         VursOS box 9.9.9-v #42 test build mach64 GNU/Linux\n"
    );
}

#[test]
fn uname_other_fields_as_on_host() {
    let out = ok(vurs_cmd(&[
        "-m",
        "uname,nodename=box,release=1.2.3",
        "--",
        "sh",
        "-c",
        "uname -s; uname -n; uname -r; uname -v; uname -m",
    ]));
    let want = format!("{}\nbox\n1.2.3\n{}\n{}\n", host_uname("-s"), host_uname("-v"), host_uname("-m"));
    assert_eq!(out, want);
}

#[test]
fn hostname_change_is_private() {
    let host_before = (read_host("/proc/sys/kernel/hostname"), host_hostname());
    let dom_before = read_host("/proc/sys/kernel/domainname");
    let out = ok(vurs_cmd(&[
        "-m",
        "uname",
        "--",
        "sh",
        "-c",
        "hostname vurs-newname && uname -n && hostname && domainname vurs-dom && domainname",
    ]));
    assert_eq!(out, "vurs-newname\nvurs-newname\nvurs-dom\n");
    assert_eq!(
        (read_host("/proc/sys/kernel/hostname"), host_hostname()),
        host_before,
        "the host's name changed"
    );
    assert_eq!(read_host("/proc/sys/kernel/domainname"), dom_before);
}

#[test]
fn uname_views_agree() {
    // coreutils, static busybox, python os.uname and socket.gethostname, before and after
    // a sethostname inside the session.
    let script = format!(
        r#"
show() {{
  for f in -s -n -r -v -m; do echo "$f $(uname $f) | $({BUSYBOX} uname $f)"; done
  {PY} -c 'import os, socket; u = os.uname(); print(u.sysname, u.nodename, u.release, u.version, u.machine, "|", socket.gethostname())'
}}
show
hostname renamed-box
show
"#
    );
    let out = ok(vurs_cmd(&[
        "-m",
        "uname,nodename=box,release=5.5.5-vurs,machine=mach",
        "--",
        "sh",
        "-c",
        &script,
    ]));
    let (s, v) = (host_uname("-s"), host_uname("-v"));
    let block = |n: &str| {
        format!(
            "-s {s} | {s}\n-n {n} | {n}\n-r 5.5.5-vurs | 5.5.5-vurs\n-v {v} | {v}\n-m mach | mach\n\
             {s} {n} 5.5.5-vurs {v} mach | {n}\n"
        )
    };
    assert_eq!(out, format!("{}{}", block("box"), block("renamed-box")));
}

#[test]
fn proc_sys_kernel_hostname_is_virtual() {
    let out = ok(vurs_cmd(&[
        "-m",
        "uname,nodename=box",
        "--",
        "sh",
        "-c",
        "cat /proc/sys/kernel/hostname; hostname other; cat /proc/sys/kernel/hostname",
    ]));
    assert_eq!(out, "box\nother\n");
}

#[test]
fn sethostname_without_privilege() {
    let host_before = read_host("/proc/sys/kernel/hostname");
    // Natively, nobody may not rename the machine...
    let mut c = as_nobody(&["hostname", "nobody-box"]);
    env(&mut c);
    let o = run(c);
    assert!(!o.status.success(), "nobody renamed the host?\n{}", show(&o));
    // ...but may rename its session.
    let out = ok(nobody(&[
        "-m",
        "uname",
        "--",
        "sh",
        "-c",
        "id -u && hostname nobody-box && uname -n && hostname && domainname nobody-dom && domainname",
    ]));
    assert_eq!(out, "65534\nnobody-box\nnobody-box\nnobody-dom\n");
    assert_eq!(read_host("/proc/sys/kernel/hostname"), host_before);
}

// ---------------------------------------------------------------------------------------
// time: offset

/// Run `cmd` under `-m time,OPTS`; parse its output as seconds; check against host time
/// read around the run plus `offset`.
fn check_offset(opts: &str, cmd: &[&str], offset: f64) {
    let mut args = vec!["-m", opts, "--"];
    args.extend(cmd);
    let before = host_now();
    let out = ok(vurs_cmd(&args));
    let after = host_now();
    let v: f64 = out.trim().parse().unwrap_or_else(|_| panic!("not a number: {out:?}"));
    assert!(
        v >= before + offset - TOL && v <= after + offset + TOL,
        "{cmd:?} under -m {opts}: got {v}, host time was {before:.3}..{after:.3}, want host + {offset} (±{TOL})"
    );
}

#[test]
fn offset_date() {
    check_offset("time,offset=86400", &["date", "+%s"], 86400.0);
}

#[test]
fn offset_python_time() {
    check_offset("time,offset=86400", &[PY, "-c", "import time; print(time.time())"], 86400.0);
}

#[test]
fn offset_static_busybox_date() {
    check_offset("time,offset=86400", &[BUSYBOX, "date", "+%s"], 86400.0);
}

#[test]
fn offset_negative() {
    check_offset("time,offset=-86400", &["date", "+%s"], -86400.0);
    check_offset("time,offset=-3600", &[PY, "-c", "import time; print(time.time())"], -3600.0);
}

/// The exact virtual - host difference, measured inside: the kernel stamps a new file
/// with host time; the virtual clock is read just before and just after.
const MEASURE: &str = r#"
import os, time, tempfile
d = tempfile.mkdtemp()
p = os.path.join(d, 'stamp')
v1 = time.time()
open(p, 'w').close()
v2 = time.time()
h = os.stat(p).st_mtime_ns / 1e9
os.unlink(p); os.rmdir(d)
print('%.6f %.6f' % (v1 - h, v2 - h))
"#;

fn check_fraction(offset: &str) {
    let off: f64 = offset.parse().unwrap();
    let o = format!("time,offset={offset}");
    let out = ok(vurs_cmd(&["-m", &o, "--", PY, "-c", MEASURE]));
    let v: Vec<f64> = out.split_whitespace().map(|x| x.parse().unwrap()).collect();
    // file times come from the coarse clock (up to a few ms behind)
    assert!(
        v[0] - 0.05 <= off && off <= v[1] + 0.05,
        "offset={offset}: virtual - host measured between {} and {}",
        v[0],
        v[1]
    );
}

#[test]
fn offset_fractional() {
    check_fraction("1000.5");
    check_fraction("-3600.25");
    check_fraction("0.75");
}

// ---------------------------------------------------------------------------------------
// time: rate

#[test]
fn rate_scales_sleep() {
    let t0 = Instant::now();
    let out = ok(vurs_cmd(&[
        "-m",
        "time,rate=4",
        "--",
        "sh",
        "-c",
        "a=$(date +%s.%N); sleep 4; b=$(date +%s.%N); echo \"$a $b\"",
    ]));
    let wall = t0.elapsed();
    assert!(
        wall >= Duration::from_millis(500) && wall <= Duration::from_secs(3),
        "sleep 4 at rate=4 took {wall:?} of wall time (want about 1 s)"
    );
    let v: Vec<f64> = out.split_whitespace().map(|x| x.parse().unwrap()).collect();
    let virt = v[1] - v[0];
    assert!((4.0..=8.0).contains(&virt), "virtual time around `sleep 4`: {virt} s");
}

#[test]
fn rate_python_sleep() {
    let t0 = Instant::now();
    let out = ok(vurs_cmd(&[
        "-m",
        "time,rate=4",
        "--",
        PY,
        "-c",
        "import time; a = time.monotonic(); time.sleep(4); print(time.monotonic() - a)",
    ]));
    let wall = t0.elapsed();
    assert!(
        wall >= Duration::from_millis(500) && wall <= Duration::from_secs(3),
        "time.sleep(4) at rate=4 took {wall:?} of wall time"
    );
    let virt: f64 = out.trim().parse().unwrap();
    assert!((4.0..=8.0).contains(&virt), "virtual monotonic around sleep: {virt}");
}

#[test]
fn rate_scales_clocks() {
    // Virtual seconds per host second, measured inside with file time stamps.
    let script = r#"
import os, time, tempfile
d = tempfile.mkdtemp()
a, b = os.path.join(d, 'a'), os.path.join(d, 'b')
m0, r0 = time.monotonic(), time.time()
open(a, 'w').close()
while time.monotonic() - m0 < 2.0:
    pass
open(b, 'w').close()
m1, r1 = time.monotonic(), time.time()
host = (os.stat(b).st_mtime_ns - os.stat(a).st_mtime_ns) / 1e9
print('%.6f %.6f %.6f' % (m1 - m0, r1 - r0, host))
"#;
    let out = ok(vurs_cmd(&["-m", "time,rate=4", "--", PY, "-c", script]));
    let v: Vec<f64> = out.split_whitespace().map(|x| x.parse().unwrap()).collect();
    let (mono, real, host) = (v[0], v[1], v[2]);
    assert!(host > 0.2, "host elapsed {host} s for 2 virtual seconds");
    assert!(
        (3.0..=5.0).contains(&(mono / host)) && (3.0..=5.0).contains(&(real / host)),
        "rate=4: monotonic {mono} s, realtime {real} s over {host} host seconds"
    );
}

#[test]
fn monotonic_never_goes_back() {
    let script = r#"
import time, threading
bad = 0
def loop(n):
    global bad
    last = time.monotonic_ns()
    lastp = time.perf_counter_ns()
    for _ in range(n):
        t = time.monotonic_ns(); p = time.perf_counter_ns()
        if t < last or p < lastp:
            bad += 1
        last, lastp = t, p
ts = [threading.Thread(target=loop, args=(3000,)) for _ in range(3)]
for t in ts: t.start()
loop(5000)
for t in ts: t.join()
print('backwards', bad)
"#;
    for rate in ["4", "0.25", "3.7"] {
        let o = format!("time,rate={rate}");
        let out = ok(vurs_cmd(&["-m", &o, "--", PY, "-c", script]));
        assert_eq!(out, "backwards 0\n", "rate={rate}");
    }
}

// ---------------------------------------------------------------------------------------
// time: setting the clock

const SET_SCRIPT: &str = r#"
date -s '2001-01-01 10:00:00' >/dev/null || exit 1
date +%Y
/usr/bin/python3 -c 'import time; print(time.gmtime().tm_year)'
/bin/busybox date +%Y
/usr/bin/python3 -c 'import time; time.clock_settime(time.CLOCK_REALTIME, 1262340000.0); print(time.gmtime().tm_year)'
date +%Y
/bin/busybox date -s '2003-06-01 12:00:00' >/dev/null || exit 1
date +%Y-%m
"#;

fn check_set(c: Command) {
    let before = host_now();
    let out = ok(c);
    let after = host_now();
    assert_eq!(out, "2001\n2001\n2001\n2010\n2010\n2003-06\n");
    // the host clock is untouched: still flowing from where it was
    assert!(after >= before && after - before < 120.0, "host clock moved: {before} -> {after}");
    assert!(after > 1_600_000_000.0, "host clock set back: {after}");
}

#[test]
fn date_set_is_private() {
    check_set(vurs_cmd(&["-m", "time", "--", "sh", "-c", SET_SCRIPT]));
}

#[test]
fn date_set_without_privilege() {
    let mut c = as_nobody(&["date", "-s", "2001-01-01 10:00:00"]);
    env(&mut c);
    let o = run(c);
    assert!(!o.status.success(), "nobody set the host clock?\n{}", show(&o));
    check_set(nobody(&["-m", "time", "--", "sh", "-c", SET_SCRIPT]));
}

// ---------------------------------------------------------------------------------------
// time: the vDSO

const CLOCK_LOOP: &str = "import time; [time.time() for _ in range(1000)]";

#[test]
fn without_time_module_vdso_is_used() {
    let dir = TempDir::new("vdso");
    let trace = dir.join("trace");
    let t = trace.to_str().unwrap();
    ok(vurs_cmd(&["--trace", t, "-m", "fsremap", "--", PY, "-c", CLOCK_LOOP]));
    let text = std::fs::read_to_string(&trace).unwrap();
    assert!(text.lines().any(|l| l.contains("openat(")), "trace has no system calls at all:\n{text}");
    let clock: Vec<&str> =
        text.lines().filter(|l| l.contains("clock_gettime") || l.contains("gettimeofday")).collect();
    assert!(
        clock.is_empty(),
        "clock reads trapped without the time module ({}):\n{}",
        clock.len(),
        clock[..clock.len().min(5)].join("\n")
    );
}

#[test]
fn with_time_module_clock_reads_are_virtualized() {
    let dir = TempDir::new("novdso");
    let trace = dir.join("trace");
    let t = trace.to_str().unwrap();
    ok(vurs_cmd(&["--trace", t, "-m", "time", "--", PY, "-c", CLOCK_LOOP]));
    let text = std::fs::read_to_string(&trace).unwrap();
    let clock: Vec<&str> = text.lines().filter(|l| l.contains("clock_gettime(")).collect();
    assert!(clock.len() >= 1000, "only {} clock_gettime lines in the trace", clock.len());
    let not_time: Vec<&&str> = clock.iter().filter(|l| !l.contains("by time")).collect();
    assert!(
        clock.iter().filter(|l| l.contains("virtualized by time")).count() >= 1000,
        "clock_gettime lines not virtualized by time:\n{}",
        not_time.iter().take(5).map(|s| **s).collect::<Vec<_>>().join("\n")
    );
}

/// rmmod of uname at run time takes its /proc/sys/kernel files with it (the host's show
/// again), and insmod brings a new identity back, files included.
#[test]
fn uname_rmmod_and_insmod_at_run_time() {
    let host = host_hostname().trim().to_string();
    let out = ok(vurs_cmd(&[
        "-m",
        "uname,nodename=box",
        "--",
        "sh",
        "-c",
        "uname -n; cat /proc/sys/kernel/hostname; vurs rmmod uname && uname -n && cat /proc/sys/kernel/hostname; \
         vurs insmod uname,nodename=again && uname -n && cat /proc/sys/kernel/hostname",
    ]));
    assert_eq!(out, format!("box\nbox\n{host}\n{host}\nagain\nagain\n"));
}
