//! `vurs insmod` of any module at any time (issue 12, item 1): the calls a module inserted
//! at run time needs trap from then on in every live process and thread, in their later
//! children, and after exec. Each test runs under both engines.
mod common;
use common::*;
use std::process::{Command, Output};

const ENGINES: [&str; 2] = ["notify", "ptrace"];

fn v() -> String {
    vurs().display().to_string()
}

/// `vurs ARGS` with engine `engine`, with the vurs directory on PATH (scripts run `vurs`).
fn run(engine: &str, args: &[&str]) -> Output {
    let mut c = Command::new(vurs());
    c.args(args).env("VURS_ENGINE", engine).env("PATH", path_with_vurs());
    run_with_timeout(c, 60)
}

fn path_with_vurs() -> String {
    format!("{}:{}", module_dir().display(), std::env::var("PATH").unwrap_or_default())
}

fn show(o: &Output) -> String {
    format!("status {:?}\n--- stdout\n{}--- stderr\n{}", o.status.code(), stdout(o), stderr(o))
}

fn host_name() -> String {
    stdout(&Command::new("uname").arg("-n").output().unwrap()).trim().to_string()
}

/// A python3 process that is already running (with a second thread blocked on an event)
/// when the module comes: itself, the thread and a child it forks afterwards see it.
#[test]
fn live_process_its_threads_and_later_children_see_a_module_inserted_later() {
    let script = r#"
import os, subprocess, threading
res = {}
ev = threading.Event()
def worker():
    ev.wait()
    res['thread'] = os.uname().nodename
t = threading.Thread(target=worker); t.start()
print("before", os.uname().nodename)
subprocess.run(['vurs', 'insmod', 'uname,nodename=box'], check=True)
print("after", os.uname().nodename)
ev.set(); t.join()
print("thread", res['thread'])
pid = os.fork()
if pid == 0:
    print("child", os.uname().nodename, flush=True); os._exit(0)
os.waitpid(pid, 0)
"#;
    for e in ENGINES {
        let o = run(e, &["--", &python(), "-c", script]);
        assert_eq!(o.status.code(), Some(0), "{e}: {}", show(&o));
        let want = format!("before {}\nafter box\nthread box\nchild box\n", host_name());
        assert_eq!(stdout(&o), want, "{e}: {}", show(&o));
    }
}

/// The time module inserted at run time: clock calls trap from then on, and programs
/// started afterwards read the virtual clock (their vDSO is hidden at exec).
#[test]
fn time_module_inserted_later_rules_programs_started_afterwards() {
    let yesterday = stdout(&Command::new("date").args(["-u", "-d", "-1 day", "+%F"]).output().unwrap())
        .trim()
        .to_string();
    let today = stdout(&Command::new("date").args(["-u", "+%F"]).output().unwrap()).trim().to_string();
    for e in ENGINES {
        let o = run(e, &["--", "sh", "-c", "date -u +%F; vurs insmod time,offset=-86400; date -u +%F"]);
        assert_eq!(o.status.code(), Some(0), "{e}: {}", show(&o));
        // Around midnight the two native dates may straddle a day: accept either pair.
        let out = stdout(&o);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{e}: {}", show(&o));
        assert!(lines[0] == today || lines[0] == yesterday, "{e}: {}", show(&o));
        let want = stdout(
            &Command::new("date")
                .args(["-u", "-d", &format!("{} -1 day", lines[0]), "+%F"])
                .output()
                .unwrap(),
        );
        assert_eq!(lines[1], want.trim(), "{e}: {}", show(&o));
    }
}

/// A path module in a session started without any: mount, read, cd into the mount, and
/// rmmod refused while the mount exists (EBUSY, naming it).
#[test]
fn path_module_inserted_into_a_session_without_one() {
    let d = TempDir::new("insmod-path");
    std::fs::create_dir_all(d.join("src/sub")).unwrap();
    std::fs::write(d.join("src/sub/f"), "remapped\n").unwrap();
    let src = d.join("src").display().to_string();
    let script = format!(
        "vurs insmod fsremap; echo insmod=$?; vurs mount -t fsremap {src} /opt/vurs-insmod-test; \
         cat /opt/vurs-insmod-test/sub/f; cd /opt/vurs-insmod-test/sub && pwd && cat f; cd /; \
         vurs rmmod fsremap; echo rmmod=$?; vurs umount /opt/vurs-insmod-test; vurs rmmod fsremap; echo rmmod=$?"
    );
    for e in ENGINES {
        let o = run(e, &["--", "bash", "-c", &script]);
        assert_eq!(o.status.code(), Some(0), "{e}: {}", show(&o));
        assert_eq!(
            stdout(&o),
            "insmod=0\nremapped\n/opt/vurs-insmod-test/sub\nremapped\nrmmod=1\nrmmod=0\n",
            "{e}: {}",
            show(&o)
        );
        assert_eq!(
            stderr(&o),
            "vurs: rmmod: fsremap: in use: mounted on /opt/vurs-insmod-test (vurs umount first)\n",
            "{e}: {}",
            show(&o)
        );
    }
    assert!(!std::path::Path::new("/opt/vurs-insmod-test").exists());
}

/// `vurs insmod ./rel.so` is relative to the caller's cwd, a bare name is looked up in the
/// caller's $VURS_MODULE_PATH, and a module file inside a virtual mount is found through
/// it; loading a module twice is refused with one line.
#[test]
fn module_files_are_found_as_the_caller_sees_them() {
    let d = TempDir::new("insmod-where");
    std::fs::create_dir_all(d.join("mods")).unwrap();
    std::fs::create_dir_all(d.join("hidden")).unwrap();
    let tiny = repo().join("tests/modules/tiny.c");
    build_so(&d, "reltiny", &tiny, &["TINY_NAME=\"reltiny\"", "TINY_RET=11"]);
    std::fs::rename(d.join("libreltiny.so"), d.join("mods/libreltiny.so")).unwrap();
    build_so(&d, "pathtiny", &tiny, &["TINY_NAME=\"pathtiny\"", "TINY_RET=22"]);
    std::fs::rename(d.join("libpathtiny.so"), d.join("mods/libpathtiny.so")).unwrap();
    build_so(&d, "mnttiny", &tiny, &["TINY_NAME=\"mnttiny\"", "TINY_RET=33"]);
    std::fs::rename(d.join("libmnttiny.so"), d.join("hidden/libmnttiny.so")).unwrap();
    let py = "import ctypes; print(ctypes.CDLL(None).syscall(24))";
    let dir = d.path().display().to_string();
    let script = format!(
        "cd {dir} && vurs insmod ./mods/libreltiny.so && {py3} -c '{py}'; \
         VURS_MODULE_PATH={dir}/mods vurs insmod pathtiny && vurs rmmod reltiny && {py3} -c '{py}'; \
         vurs mount -t fsremap {dir}/hidden /opt/vurs-insmod-mods && vurs rmmod pathtiny && \
         vurs insmod /opt/vurs-insmod-mods/libmnttiny.so && {py3} -c '{py}'; \
         vurs insmod /opt/vurs-insmod-mods/libmnttiny.so; echo again=$?",
        py3 = python()
    );
    for e in ENGINES {
        let o = run(e, &["-m", "fsremap", "--", "sh", "-c", &script]);
        assert_eq!(o.status.code(), Some(0), "{e}: {}", show(&o));
        assert_eq!(stdout(&o), "11\n22\n33\nagain=1\n", "{e}: {}", show(&o));
        let err = stderr(&o);
        assert!(
            err.starts_with("vurs: insmod: mnttiny: already loaded (from ") && err.lines().count() == 1,
            "{e}: {}",
            show(&o)
        );
    }
}

/// An interactive bash under vurs in a terminal: insmod between commands, with a job
/// stopped (Ctrl-Z) meanwhile; the stopped job resumes with `fg` and is still traced.
#[test]
fn interactive_shell_inserts_modules_between_commands() {
    for e in ENGINES {
        let tmux = Tmux::new(&format!("insmod-{e}"));
        let cmd = format!("VURS_ENGINE={e} PATH={} {} -- bash --norc -i", path_with_vurs(), v());
        let o = tmux.cmd(&[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            "150",
            "-y",
            "40",
            "env",
            "PS1=ins> ",
            "sh",
            "-c",
            &cmd,
        ]);
        assert!(o.status.success(), "tmux: {}", show(&o));
        tmux.wait(20, "the prompt", |s| s.contains("ins>"));
        // A job that will ask for the host name after it is resumed.
        let job = format!(
            "{} -c 'import os, time; time.sleep(1); print(\"job:\" + os.uname().nodename)'",
            python()
        );
        tmux.keys(&[&job, "Enter"]);
        std::thread::sleep(std::time::Duration::from_millis(300));
        tmux.keys(&["C-z"]);
        tmux.wait(10, "the job stopped", |s| s.contains("Stopped"));
        tmux.keys(&["vurs insmod uname,nodename=tmuxbox; uname -n | sed s/^/now:/", "Enter"]);
        tmux.wait(10, "the new host name", |s| s.contains("now:tmuxbox"));
        tmux.keys(&["fg", "Enter"]);
        tmux.wait(10, "the resumed job", |s| s.contains("job:tmuxbox"));
        tmux.keys(&["vurs lsmod | cut -f1 | tr '\\n' ' ' | sed 's/^/mods:/'; echo", "Enter"]);
        tmux.wait(10, "lsmod", |s| s.contains("mods:Module uname"));
        tmux.keys(&["exit", "Enter"]);
    }
}
