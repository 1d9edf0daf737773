//! Helpers shared by the integration tests: run programs under vurs with a timeout.
#![allow(dead_code)]
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The vurs binary under test.
pub fn vurs() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_vurs"))
}

/// Folder holding the built modules (libfsremap.so, ...): next to the binary.
pub fn module_dir() -> PathBuf {
    vurs().parent().unwrap().to_path_buf()
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Run `cmd` (argv) with a timeout (seconds); kill it on expiry and panic.
pub fn run_with_timeout(mut cmd: Command, secs: u64) -> Output {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn");
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            // SAFETY: kill the whole process group we may have left behind.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("timed out after {secs}s: {cmd:?}");
        }
    }
}

/// `vurs ARGS...` with a 60 s timeout.
pub fn vurs_run(args: &[&str]) -> Output {
    let mut c = Command::new(vurs());
    c.args(args);
    run_with_timeout(c, 60)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh temporary directory (removed on drop), world-writable for non-root runs.
pub struct TempDir(pub PathBuf);
impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let p = std::env::temp_dir().join(format!("vurs-test-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn join(&self, s: &str) -> PathBuf {
        self.0.join(s)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Compile a C program from tests/progs (or given source) into `dir`; returns its path.
pub fn build_c(name: &str, dir: &Path) -> PathBuf {
    let src = repo().join("tests/progs").join(format!("{name}.c"));
    let out = dir.join(name);
    let st = Command::new("gcc").args(["-O1", "-pthread", "-o"]).arg(&out).arg(&src).status().expect("gcc");
    assert!(st.success(), "gcc {name}");
    out
}

/// Running as root: commands to re-run a test as an unprivileged user (nobody).
pub fn as_nobody(cmd: &[&str]) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]).args(cmd);
    c
}

/// A python3 to run under vurs (the system one, not a wrapper script, if present).
pub fn python() -> String {
    let sys = Path::new("/usr/bin/python3");
    if sys.exists() {
        sys.display().to_string()
    } else {
        "python3".into()
    }
}

// ------------------------------------------------------------------ processes

/// Poll `f` every 50 ms until it gives Some, or panic after `secs` with `what`.
pub fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out after {secs}s waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Wait for a spawned child with a deadline; kill it and panic on expiry.
pub fn wait_child(child: &mut Child, secs: u64, what: &str) -> std::process::ExitStatus {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return st;
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("timed out after {secs}s waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// State letter from /proc/PID/stat, None if the process is gone.
pub fn proc_state(pid: i32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s[s.rfind(')')? + 2..].chars().next()
}

/// Gone: no such process, or only a zombie left (nothing runs any more).
pub fn is_gone(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    let r = unsafe { libc::kill(pid, 0) };
    if r != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
        return true;
    }
    matches!(proc_state(pid), None | Some('Z') | Some('X'))
}

/// All live (non-zombie) descendants of `root`, found through the ppid fields in /proc.
pub fn descendants(root: i32) -> Vec<i32> {
    let mut kids: HashMap<i32, Vec<i32>> = HashMap::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(i) = s.rfind(')') else { continue };
        let f: Vec<&str> = s[i + 2..].split(' ').collect();
        if f.len() > 1 && f[0] != "Z" {
            if let Ok(pp) = f[1].parse::<i32>() {
                kids.entry(pp).or_default().push(pid);
            }
        }
    }
    let mut out = Vec::new();
    let mut todo = vec![root];
    while let Some(p) = todo.pop() {
        for &k in kids.get(&p).map(|v| v.as_slice()).unwrap_or(&[]) {
            out.push(k);
            todo.push(k);
        }
    }
    out
}

/// gcc -shared -fPIC -I abi/include [-D...] -o dir/lib{name}.so SRC: a C module.
pub fn build_so(dir: &TempDir, name: &str, src: &Path, defines: &[&str]) -> PathBuf {
    let out = dir.join(&format!("lib{name}.so"));
    let mut c = Command::new("gcc");
    c.args(["-shared", "-fPIC", "-Wall"])
        .arg(format!("-I{}", repo().join("abi/include").display()))
        .args(defines.iter().map(|d| format!("-D{d}")))
        .arg("-o")
        .arg(&out)
        .arg(src);
    let o = run_with_timeout(c, 60);
    assert!(o.status.success(), "gcc {src:?}: {}", stderr(&o));
    out
}

/// A private tmux server (socket `sock`), killed on drop: a terminal for interactive tests.
pub struct Tmux {
    pub sock: String,
}
impl Tmux {
    /// A server named after `tag` and this test process.
    pub fn new(tag: &str) -> Tmux {
        Tmux { sock: format!("vurs-{tag}-{}", std::process::id()) }
    }
    pub fn cmd(&self, args: &[&str]) -> Output {
        let mut c = Command::new("tmux");
        c.arg("-L").arg(&self.sock).args(args).env("TERM", "xterm");
        run_with_timeout(c, 20)
    }
    pub fn keys(&self, keys: &[&str]) {
        let mut a = vec!["send-keys", "-t", "t"];
        a.extend_from_slice(keys);
        let o = self.cmd(&a);
        assert!(o.status.success(), "tmux send-keys {keys:?}: {}", stderr(&o));
    }
    pub fn screen(&self) -> String {
        stdout(&self.cmd(&["capture-pane", "-p", "-t", "t"]))
    }
    /// Wait until `f(screen)` holds; panic with the screen after `secs`.
    pub fn wait(&self, secs: u64, what: &str, f: impl Fn(&str) -> bool) {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.screen();
            if f(&s) {
                return;
            }
            assert!(Instant::now() < end, "timed out waiting for {what}; screen:\n{s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    pub fn server_pid(&self) -> i32 {
        stdout(&self.cmd(&["display-message", "-p", "-t", "t", "#{pid}"])).trim().parse().unwrap()
    }
}
impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}
