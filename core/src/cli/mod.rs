//! Command line (clap). `vurs [OPTIONS] -- COMMAND [ARGS...]` runs a session; the
//! subcommands control the session they are run in. The same definitions give `--help`,
//! the man page (`vurs man`) and the shell completions (`vurs completions SHELL`).
#![forbid(unsafe_code)]
use clap::{CommandFactory, Parser, Subcommand};
use std::ffi::OsString;

pub mod cowdiff;
pub mod proot;

const EXAMPLES: &str = "\
Examples:
  vurs -b /etc/hostname:/etc/passwd -- cat /etc/passwd   show one file at another path
  vurs -m fsremap -- bash                    a shell in which `vurs mount` works
  vurs -m uname,nodename=box -- hostname     prints box
  vurs -m time,offset=86400,rate=2 -- date   tomorrow, twice as fast
  vurs --mount type=fsremap,source=alt-etc,target=/etc,ro -- ls /etc
  vurs -c -b /tmp:/srv -- ls /srv            a table of the trapped calls at the end

Exit status: COMMAND's own; if a signal killed COMMAND, vurs dies of the same signal; 125 for
vurs's own failures (one line on stderr beginning `vurs: `); 126 if COMMAND cannot be executed;
127 if it is not found.

Inside a session, `vurs [OPTIONS] -- COMMAND` runs COMMAND in the session it is in: -b and
--mount are mounted for the session while COMMAND runs; -m of a module already loaded (without
options) is accepted; other options are refused. `vurs status` tells whether you are inside.";

#[derive(Parser, Debug)]
#[command(
    name = "vurs",
    version,
    about = "Run a program under a user-mode hypervisor that virtualizes selected parts of the system",
    long_about = "Run COMMAND with a private view of selected parts of the system (a remapped file \
tree, its own host name, its own clock), given by modules, while the kernel runs everything else. \
No root, no namespaces, no LD_PRELOAD: it works with ptrace and seccomp, like strace. vurs serves \
until the last process of the session has exited.",
    args_conflicts_with_subcommands = true,
    override_usage = "vurs [OPTIONS] [--] COMMAND [ARGS...]\n       vurs SUBCOMMAND ...",
    after_help = EXAMPLES
)]
pub struct Cli {
    /// Load a module for the whole session: NAME (searched in $VURS_MODULE_PATH, next to
    /// vurs, then in ../lib/vurs relative to it) or a path to a .so, options after commas
    /// (e.g. -m uname,nodename=box). Repeatable.
    #[arg(short = 'm', long = "module", value_name = "NAME[,K=V...]")]
    pub modules: Vec<String>,

    /// Mount at start: type=T,source=S,target=D[,ro][,K=V...] (e.g. --mount
    /// type=fsremap,source=/tmp/etc,target=/etc,ro). Relative paths are taken from the
    /// current directory; a target with '..' is refused; source= may be left out where
    /// the module needs none (type=tmpfs,target=/tmp): it is then "none". Repeatable.
    #[arg(long = "mount", value_name = "SPEC")]
    pub mounts: Vec<String>,

    /// Show host path SRC at DEST, e.g. -b /etc/hostname:/etc/passwd (same as --mount
    /// type=fsremap,source=SRC,target=DEST). Repeatable.
    #[arg(short = 'b', long = "bind", value_name = "SRC:DEST")]
    pub binds: Vec<String>,

    /// Run COMMAND with host directory DIR as `/` (like proot -r): the host's /dev, /proc,
    /// /sys and /etc/resolv.conf stay visible in it; -b and --mount go on top. The
    /// starting directory is `/` unless -w says otherwise.
    #[arg(short = 'r', long = "root", value_name = "DIR")]
    pub root: Option<String>,

    /// Start COMMAND in DIR (in the session's view), e.g. -w /tmp
    #[arg(short = 'w', long = "cwd", value_name = "DIR")]
    pub cwd: Option<String>,

    /// Write one line per trapped call to FILE ('-' for stderr), e.g. --trace - (slows
    /// the session down: every trapped call is seen at its exit too)
    #[arg(long = "trace", value_name = "FILE")]
    pub trace: Option<String>,

    /// At exit, print a table of the trapped calls per system call and per module (count,
    /// passed, emulated, rewritten, failed, time spent deciding) on stderr, or to FILE
    /// with --summary=FILE (like strace -c)
    #[arg(
        short = 'c',
        long = "summary",
        value_name = "FILE",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "-"
    )]
    pub summary: Option<String>,

    #[command(subcommand)]
    pub control: Option<Control>,

    /// The program to run and its arguments, e.g. -- ls -l /etc
    #[arg(trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

impl Cli {
    /// Whether any option acts on the session (only `vurs -- COMMAND` has none).
    pub fn has_session_options(&self) -> bool {
        !self.modules.is_empty()
            || !self.mounts.is_empty()
            || !self.binds.is_empty()
            || self.root.is_some()
            || self.cwd.is_some()
    }
}

#[derive(Subcommand, Debug)]
pub enum Control {
    /// Mount SOURCE on TARGET with module TYPE, for every process of this session
    #[command(after_help = "Examples (inside `vurs -m fsremap -- bash`):
  vurs mount -t fsremap ~/alt-etc /etc        show ~/alt-etc at /etc
  vurs mount -t fsremap -o ro /srv/data /data read-only

Relative SOURCE and TARGET are taken from the current directory, as mount(8) does.")]
    Mount {
        /// The module that serves the mount (e.g. fsremap)
        #[arg(short = 't', long = "types", value_name = "TYPE")]
        fstype: String,
        /// Mount options, comma-separated: ro, or the module's own (e.g. -o ro)
        #[arg(short = 'o', long = "options", value_name = "OPTS")]
        options: Option<String>,
        /// What to mount: a host path for fsremap (e.g. ~/alt-etc)
        source: String,
        /// Where it appears in the session (e.g. /etc)
        target: String,
    },
    /// Remove the mount on TARGET (EBUSY while in use, unless -l)
    #[command(after_help = "Examples:\n  vurs umount /etc\n  vurs umount -l /data")]
    Umount {
        /// Lazy: detach now; descriptors open through it keep working
        #[arg(short = 'l', long = "lazy")]
        lazy: bool,
        /// The mount point, as `vurs mounts` lists it (e.g. /etc)
        target: String,
    },
    /// Load a module into this session
    #[command(after_help = "Examples:\n  vurs insmod uname,nodename=box\n  vurs insmod ./mymodule.so\n\n\
A path is relative to the current directory; a bare name is looked up in $VURS_MODULE_PATH, \
then next to vurs. Every process of the session traps the module's calls from then on; \
programs already running keep reading the host clock through their vDSO until they exec.")]
    Insmod {
        /// NAME or path of a .so, options after commas (e.g. uname,nodename=box)
        #[arg(value_name = "NAME[,K=V...]")]
        spec: String,
    },
    /// Unload a module (refused while a mount or an open file uses it: see lsmod's Users)
    #[command(after_help = "Example:\n  vurs rmmod uname")]
    Rmmod {
        /// The module's name, as `vurs lsmod` lists it (e.g. uname)
        name: String,
    },
    /// List the loaded modules (Users: mounts and open files that keep it loaded)
    #[command(after_help = "Example:\n  vurs lsmod")]
    Lsmod,
    /// List the virtual mounts, in /proc/mounts format
    #[command(after_help = "Example:\n  vurs mounts")]
    Mounts,
    /// Tell whether this shell runs inside a vurs session (exit 0) or not (exit 1)
    #[command(after_help = "Examples:
  vurs status
  PS1='$(vurs status -q && echo \"[vurs] \")'$PS1     mark the bash prompt inside a session")]
    Status {
        /// Print nothing; only the exit status tells
        #[arg(short = 'q', long = "quiet")]
        quiet: bool,
    },
    /// List what a cow layer changed: A (added), M (modified), D (deleted), one path a line
    #[command(
        name = "cow-diff",
        after_help = "Examples:
  vurs --mount type=cow,source=$HOME/layer,target=/ -- make install
  vurs cow-diff $HOME/layer                     what the installer did to /
  vurs cow-diff --lower ~/src/proj ~/proj-layer  a layer mounted on ~/src/proj

Paths are those of the lower tree, sorted; nothing is printed when the view equals it. Runs
outside a session (it only reads UPPER and the lower tree)."
    )]
    CowDiff {
        /// The lower tree the layer was mounted over (its TARGET)
        #[arg(long = "lower", value_name = "DIR", default_value = "/")]
        lower: std::path::PathBuf,
        /// The cow layer (the mount's source)
        #[arg(value_name = "UPPER")]
        upper: std::path::PathBuf,
    },
    /// Print a completion script for SHELL on stdout
    #[command(after_help = "Examples:
  vurs completions bash > ~/.local/share/bash-completion/completions/vurs
  vurs completions zsh > ~/.zfunc/_vurs
  vurs completions fish > ~/.config/fish/completions/vurs.fish")]
    Completions {
        /// bash, zsh, fish, elvish or powershell
        shell: clap_complete::Shell,
    },
    /// Print the vurs(1) man page (roff) on stdout
    #[command(hide = true)]
    Man,
    /// Run with proot's command line (also: run vurs under the name `proot`)
    #[command(
        disable_help_flag = true,
        after_help = "Example:\n  vurs proot -b /etc/hostname:/etc/passwd -w /tmp cat /etc/passwd\n\nSee `vurs proot --help`."
    )]
    Proot {
        /// proot's options and the command, e.g. -b /tmp:/mnt ls /mnt
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "ARGS")]
        args: Vec<OsString>,
    },
}

/// The clap definition, for the man page and completions.
pub fn command() -> clap::Command {
    Cli::command()
}

/// The vurs(1) man page (roff): the top-level page, then a section per subcommand with its
/// synopsis, arguments and examples, from the same definitions as --help.
pub fn man_page() -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let cmd = command();
    let man = clap_mangen::Man::new(cmd.clone());
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    man.render_subcommands_section(&mut out)?;
    man.render_extra_section(&mut out)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("vurs {}", sub.get_name());
        writeln!(out, ".SH \"{}\"", name.to_uppercase())?;
        if let Some(about) = sub.get_about() {
            writeln!(out, "{about}")?;
        }
        let m = clap_mangen::Man::new(sub.clone().bin_name(name));
        let mut body = Vec::new();
        m.render_synopsis_section(&mut body)?;
        m.render_options_section(&mut body)?;
        m.render_extra_section(&mut body)?;
        // Their own section headings become paragraph breaks inside this section.
        for line in String::from_utf8_lossy(&body).lines() {
            if line.starts_with(".SH ") {
                writeln!(out, ".PP")?;
            } else {
                writeln!(out, "{line}")?;
            }
        }
    }
    man.render_version_section(&mut out)?;
    Ok(out)
}

/// A clap error as one line: the message with its list items (a missing argument's name)
/// joined, without clap's tips and usage, followed by where to read more.
pub fn one_line_error(e: &clap::Error, prog: &str) -> String {
    let text = e.render().to_string();
    let mut parts: Vec<&str> = Vec::new();
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with("Usage:") || l.starts_with("For more information") {
            break;
        }
        if l.is_empty() || l.starts_with("tip:") {
            continue;
        }
        parts.push(l.trim_start_matches("error: "));
    }
    let msg = parts.join(" ");
    let msg = if msg.is_empty() { "bad usage".to_string() } else { msg };
    format!("{msg} (see {prog} --help)")
}

/// The subcommand named in `args` (for pointing at its --help), if any.
pub fn subcommand_of(args: &[OsString]) -> Option<String> {
    let first = args.iter().skip(1).find(|a| !a.to_string_lossy().starts_with('-'))?;
    let name = first.to_string_lossy();
    Cli::command().get_subcommands().any(|c| c.get_name() == name).then(|| name.into_owned())
}

/// One `--mount` spec, parsed.
#[derive(Debug, PartialEq, Eq)]
pub struct MountSpec {
    pub fstype: String,
    pub source: String,
    pub target: String,
    pub options: String,
}

/// Parse `type=T,source=S,target=D[,opts...]`.
pub fn parse_mount(spec: &str) -> Result<MountSpec, String> {
    let (mut t, mut s, mut d) = (None, None, None);
    let mut rest = Vec::new();
    for part in spec.split(',').filter(|p| !p.is_empty()) {
        let slot = match part.split_once('=') {
            Some(("type", v)) => Some((&mut t, v)),
            Some(("source" | "src", v)) => Some((&mut s, v)),
            Some(("target" | "dst" | "destination", v)) => Some((&mut d, v)),
            _ => None,
        };
        match slot {
            Some((_, "")) => return Err(format!("--mount {spec}: '{part}' has an empty value")),
            Some((Some(_), _)) => return Err(format!("--mount {spec}: '{part}' given twice")),
            Some((slot, v)) => *slot = Some(v.to_string()),
            None => rest.push(part),
        }
    }
    let need = |v: Option<String>, k: &str| {
        v.ok_or(format!("--mount {spec}: missing {k}= (expected type=T,source=S,target=D[,OPTS])"))
    };
    // A module serving its own tree (tmpfs) has no source: "none", as mount(8) is given.
    let s = s.or_else(|| Some("none".to_string()));
    let m = MountSpec {
        fstype: need(t, "type")?,
        source: need(s, "source")?,
        target: need(d, "target")?,
        options: rest.join(","),
    };
    check_target(&m.target).map_err(|e| format!("--mount {spec}: {e}"))?;
    Ok(m)
}

/// Parse `SRC:DEST`.
/// What the host keeps showing inside a root file system given with -r/--root (proot -r):
/// devices, processes, the kernel's view, and name resolution (a distribution's userland
/// needs /etc/resolv.conf to reach the network; its own is usually empty).
pub const ROOT_KEEPS: &[&str] = &["/dev", "/proc", "/sys", "/etc/resolv.conf"];

/// The mounts that make host directory `dir` the session's `/`.
pub fn root_mounts(dir: &str) -> Result<Vec<MountSpec>, String> {
    let host = std::path::Path::new(dir);
    if !host.is_dir() {
        return Err(format!("--root {dir}: not a directory"));
    }
    let bind = |s: &str, d: &str| MountSpec {
        fstype: "fsremap".into(),
        source: s.into(),
        target: d.into(),
        options: String::new(),
    };
    let mut v = vec![bind(dir, "/")];
    for keep in ROOT_KEEPS {
        // A file is shown only where the new root has a place for it.
        let parent_in_root =
            std::path::Path::new(keep).parent().map(|p| host.join(p.strip_prefix("/").unwrap_or(p)));
        if std::path::Path::new(keep).exists() && parent_in_root.is_some_and(|p| p.is_dir()) {
            v.push(bind(keep, keep));
        }
    }
    Ok(v)
}

pub fn parse_bind(spec: &str) -> Result<MountSpec, String> {
    let (s, d) = spec.split_once(':').ok_or(format!("-b {spec}: expected SRC:DEST"))?;
    if s.is_empty() || d.is_empty() {
        return Err(format!("-b {spec}: expected SRC:DEST (both non-empty)"));
    }
    check_target(d).map_err(|e| format!("-b {spec}: {e}"))?;
    Ok(MountSpec { fstype: "fsremap".into(), source: s.into(), target: d.into(), options: String::new() })
}

/// A mount target given at start: relative ones are taken from the current directory
/// (as mount(8) does); '..' is refused, so a target never silently lands outside the
/// directory it names.
fn check_target(target: &str) -> Result<(), String> {
    if target.split('/').any(|c| c == "..") {
        return Err(format!("target {target} must not contain '..'"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn mount_spec() {
        let m = parse_mount("type=fsremap,source=/a,target=/b,ro").unwrap();
        assert_eq!(
            (m.fstype.as_str(), m.source.as_str(), m.target.as_str(), m.options.as_str()),
            ("fsremap", "/a", "/b", "ro")
        );
        assert!(parse_mount("source=/a,target=/b").is_err());
        assert_eq!(parse_mount("type=tmpfs,target=/t,size=1M").unwrap().source, "none");
        assert!(parse_mount("type=fsremap,source=/a,target=").is_err());
        assert!(parse_mount("type=fsremap,source=/a,target=/b,target=/c").is_err());
        assert!(parse_mount("type=fsremap,source=/a,target=/b/../c").is_err());
        assert!(parse_bind("/a").is_err());
        assert!(parse_bind("/a:../b").is_err());
        assert_eq!(parse_bind("/a:/b").unwrap().target, "/b");
        assert_eq!(parse_bind("a:b").unwrap().target, "b");
    }

    #[test]
    fn clap_definition_is_consistent() {
        command().debug_assert();
    }
}
