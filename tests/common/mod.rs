//! Helpers shared by the integration tests: run programs under vurs with a timeout.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

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
