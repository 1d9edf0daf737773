//! proot's command line (`proot ARGS` through a symlink named proot, or `vurs proot ARGS`),
//! mapped onto vurs's own: a root file system and binds become fsremap mounts, the kernel
//! release the uname module's `release=` option. What vurs cannot do is refused with one
//! line naming the option.
#![forbid(unsafe_code)]
use super::MountSpec;
use clap::Parser;
use std::ffi::OsString;

#[derive(Parser, Debug)]
#[command(
    name = "proot",
    disable_version_flag = true,
    disable_help_flag = true,
    override_usage = "proot [OPTIONS] [COMMAND [ARGS...]]      (or: vurs proot ...)",
    about = "proot's command line, served by vurs (fsremap mounts and the uname module)",
    after_help = "Examples (from proot's manual):
  proot -r /mnt/slackware-8.0 /bin/sh     a shell in another root file system
  proot -b ~/my_hosts:/etc/hosts cat /etc/hosts
  proot -w /tmp pwd
  proot -k 5.4.0 uname -r

Without COMMAND, /bin/sh runs. -0, -i and -S use the fakeroot module; -q and -v are refused (no QEMU)."
)]
pub struct ProotCli {
    /// Use DIR as the guest root file system (host /dev, /proc and /sys stay visible)
    #[arg(short = 'r', long = "rootfs", value_name = "DIR")]
    pub rootfs: Option<String>,
    /// Like -r DIR, plus proot's recommended binds (/etc/passwd, /etc/resolv.conf, /tmp, $HOME...)
    #[arg(short = 'R', value_name = "DIR")]
    pub rootfs_recommended: Option<String>,
    /// Show host path HOST at GUEST (GUEST defaults to HOST); repeatable
    #[arg(
        short = 'b',
        long = "bind",
        visible_short_alias = 'm',
        visible_alias = "mount",
        value_name = "HOST[:GUEST]"
    )]
    pub binds: Vec<String>,
    /// Initial working directory (in the guest's view)
    #[arg(short = 'w', long = "cwd", visible_alias = "pwd", value_name = "DIR")]
    pub cwd: Option<String>,
    /// Make the kernel appear as release STR (uname -r)
    #[arg(short = 'k', long = "kernel-release", value_name = "STR")]
    pub kernel_release: Option<String>,
    /// When COMMAND exits, kill every process it left behind
    #[arg(long = "kill-on-exit")]
    pub kill_on_exit: bool,
    /// Appear as root (the fakeroot module: ownership and modes are recorded, not applied)
    #[arg(short = '0', long = "root-id")]
    pub root_id: bool,
    /// Appear as UID:GID (the fakeroot module with that identity)
    #[arg(short = 'i', long = "change-id", value_name = "UID:GID")]
    pub change_id: Option<String>,
    /// Like -0 -R DIR
    #[arg(short = 'S', value_name = "DIR")]
    pub rootfs_safe: Option<String>,
    /// (refused: vurs does not run programs through QEMU)
    #[arg(short = 'q', long = "qemu", value_name = "COMMAND")]
    pub qemu: Option<String>,
    /// (refused: use vurs --trace)
    #[arg(short = 'v', long = "verbose", value_name = "N", allow_hyphen_values = true)]
    pub verbose: Option<String>,
    /// Print this help
    #[arg(short = 'h', long = "help", visible_alias = "usage", action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Print vurs's version
    #[arg(short = 'V', long = "version", visible_alias = "about", action = clap::ArgAction::Version)]
    pub version: Option<bool>,
    /// The program to run and its arguments (default /bin/sh)
    #[arg(trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// What a proot command line asks of vurs.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Module specs for -m (e.g. "uname,release=5.4.0").
    pub modules: Vec<String>,
    pub mounts: Vec<MountSpec>,
    /// Directory to start COMMAND in, in the guest's view.
    pub cwd: Option<String>,
    pub kill_on_exit: bool,
    pub command: Vec<OsString>,
}

/// Files and directories proot's -R binds (those that exist on the host).
const RECOMMENDED: &[&str] = &[
    "/etc/host.conf",
    "/etc/hosts",
    "/etc/hosts.equiv",
    "/etc/mtab",
    "/etc/netgroup",
    "/etc/networks",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/resolv.conf",
    "/etc/localtime",
    "/tmp",
];

fn bind(source: &str, target: &str) -> MountSpec {
    MountSpec {
        fstype: "fsremap".into(),
        source: source.into(),
        target: target.into(),
        options: String::new(),
    }
}

impl ProotCli {
    pub fn plan(self) -> Result<Plan, String> {
        let fake_id = match (&self.change_id, self.root_id || self.rootfs_safe.is_some()) {
            (Some(_), true) => return Err("proot: give -0/-S or -i, not both".into()),
            (Some(ids), false) => {
                let (u, g) = ids.split_once(':').unwrap_or((ids, ids));
                match (u.parse::<u32>(), g.parse::<u32>()) {
                    (Ok(u), Ok(g)) => Some(format!("fakeroot,uid={u},gid={g}")),
                    _ => return Err(format!("proot -i {ids}: expected UID:GID (numbers)")),
                }
            }
            (None, true) => Some("fakeroot".to_string()),
            (None, false) => None,
        };
        if self.qemu.is_some() {
            return Err(
                "proot -q/--qemu is not supported: vurs runs programs of the host's architecture only".into(),
            );
        }
        if self.verbose.is_some() {
            return Err(
                "proot -v/--verbose is not supported (vurs --trace FILE shows every trapped call)".into()
            );
        }
        let mut plan = Plan { kill_on_exit: self.kill_on_exit, cwd: self.cwd, ..Default::default() };
        plan.modules.extend(fake_id);
        let recommended = self.rootfs_recommended.clone().or(self.rootfs_safe.clone());
        let rootfs = match (self.rootfs, recommended.clone()) {
            (Some(_), Some(_)) => return Err("proot: give one of -r, -R or -S".into()),
            (r, rr) => r.or(rr),
        };
        if let Some(root) = &rootfs {
            let host = std::path::Path::new(root);
            if !host.is_dir() {
                return Err(format!("proot -r {root}: not a directory"));
            }
            plan.mounts.extend(super::root_mounts(root).map_err(|e| format!("proot -r {root}: {e}"))?);
            if recommended.is_some() {
                let home = std::env::var("HOME").ok().filter(|h| h.starts_with('/'));
                for p in RECOMMENDED.iter().copied().chain(home.as_deref()) {
                    if std::path::Path::new(p).exists() {
                        plan.mounts.push(bind(p, p));
                    }
                }
            }
            // As proot: the current directory is kept if the new root has it, else "/".
            if plan.cwd.is_none() {
                let here = std::env::current_dir().ok().map(|d| d.to_string_lossy().into_owned());
                let kept = here.filter(|d| host.join(d.trim_start_matches('/')).is_dir());
                plan.cwd = Some(kept.unwrap_or_else(|| "/".into()));
            }
        }
        for b in &self.binds {
            // proot's "GUEST!" (do not dereference GUEST) is how vurs binds anyway.
            let (host, guest) = match b.split_once(':') {
                Some((h, g)) => (h, g.trim_end_matches('!')),
                None => (b.as_str(), b.as_str()),
            };
            if host.is_empty() || guest.is_empty() {
                return Err(format!("proot -b {b}: expected HOST[:GUEST]"));
            }
            if host == guest && rootfs.is_none() {
                continue; // the host's own tree: nothing to do
            }
            let spec = super::parse_bind(&format!("{host}:{guest}")).map_err(|e| format!("proot {e}"))?;
            plan.mounts.push(spec);
        }
        if let Some(release) = self.kernel_release {
            if release.contains(',') {
                return Err(format!("proot -k {release}: a release with ',' is not supported"));
            }
            plan.modules.push(format!("uname,release={release}"));
        }
        plan.command = if self.command.is_empty() { vec!["/bin/sh".into()] } else { self.command };
        Ok(plan)
    }
}

/// Parse proot's arguments (`args[0]` is the program name).
pub fn parse(args: Vec<OsString>) -> Result<Plan, clap::Error> {
    let cli = ProotCli::try_parse_from(args)?;
    cli.plan().map_err(|msg| clap::Error::raw(clap::error::ErrorKind::ValueValidation, msg))
}

#[cfg(test)]
mod tests {
    use super::*;
    fn plan(args: &[&str]) -> Result<Plan, String> {
        let mut v: Vec<OsString> = vec!["proot".into()];
        v.extend(args.iter().map(OsString::from));
        ProotCli::try_parse_from(v).map_err(|e| e.to_string())?.plan()
    }
    #[test]
    fn proot_options() {
        let p = plan(&["-b", "/etc/hostname:/etc/passwd", "-w", "/tmp", "cat", "x"]).unwrap();
        assert_eq!(p.mounts, vec![bind("/etc/hostname", "/etc/passwd")]);
        assert_eq!((p.cwd.as_deref(), p.command.len()), (Some("/tmp"), 2));
        assert_eq!(plan(&["-k", "5.4.0"]).unwrap().modules, vec!["uname,release=5.4.0".to_string()]);
        assert_eq!(plan(&[]).unwrap().command, vec![OsString::from("/bin/sh")]);
        assert!(plan(&["-b", "/tmp"]).unwrap().mounts.is_empty());
        let r = plan(&["-r", "/", "true"]).unwrap();
        assert_eq!(r.mounts[0], bind("/", "/"));
        assert!(r.mounts.contains(&bind("/proc", "/proc")));
        assert_eq!(plan(&["-0", "true"]).unwrap().modules, vec!["fakeroot".to_string()]);
        assert_eq!(plan(&["-i", "5:6", "true"]).unwrap().modules, vec!["fakeroot,uid=5,gid=6".to_string()]);
        for bad in
            [&["-i", "x:y", "true"][..], &["-q", "qemu-arm", "true"], &["--no-such"], &["-r", "/no/such/dir"]]
        {
            assert!(plan(bad).is_err(), "{bad:?}");
        }
    }
}
