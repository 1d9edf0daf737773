//! Command line (clap). `vurs [OPTIONS] -- COMMAND [ARGS...]` runs a session; the
//! subcommands control the session they are run in.
use clap::{Parser, Subcommand};
use std::ffi::OsString;

#[derive(Parser, Debug)]
#[command(
    name = "vurs",
    version,
    about = "Run a program under a user-mode hypervisor that virtualizes selected parts of the system",
    args_conflicts_with_subcommands = true,
    override_usage = "vurs [OPTIONS] -- COMMAND [ARGS...]\n       vurs mount|umount|insmod|rmmod|lsmod|mounts ... (inside a session)"
)]
pub struct Cli {
    /// Load a module: NAME (searched in $VURS_MODULE_PATH, next to vurs, ../lib/vurs) or a
    /// path, with options after commas (e.g. -m uname,nodename=box)
    #[arg(short = 'm', long = "module", value_name = "NAME[,K=V...]")]
    pub modules: Vec<String>,

    /// Mount at start: type=T,source=S,target=D[,ro][,K=V...]
    #[arg(long = "mount", value_name = "SPEC")]
    pub mounts: Vec<String>,

    /// Show host path SRC at DEST (same as --mount type=fsremap,source=SRC,target=DEST)
    #[arg(short = 'b', long = "bind", value_name = "SRC:DEST")]
    pub binds: Vec<String>,

    /// Write one line per trapped call to FILE ('-' for stderr)
    #[arg(long = "trace", value_name = "FILE")]
    pub trace: Option<String>,

    #[command(subcommand)]
    pub control: Option<Control>,

    /// The program to run and its arguments
    #[arg(trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

#[derive(Subcommand, Debug)]
pub enum Control {
    /// Mount SOURCE on TARGET with module TYPE, for every process of this session
    Mount {
        #[arg(short = 't', long = "types", value_name = "TYPE")]
        fstype: String,
        #[arg(short = 'o', long = "options", value_name = "OPTS", default_value = "")]
        options: String,
        source: String,
        target: String,
    },
    /// Remove the mount on TARGET (EBUSY while in use, unless -l)
    Umount {
        /// Lazy: detach now; descriptors open through it keep working
        #[arg(short = 'l', long = "lazy")]
        lazy: bool,
        target: String,
    },
    /// Load a module into this session
    Insmod { spec: String },
    /// Unload a module (EBUSY while it is in use)
    Rmmod { name: String },
    /// List the loaded modules
    Lsmod,
    /// List the virtual mounts
    Mounts,
}

/// One `--mount` spec, parsed.
#[derive(Debug, PartialEq, Eq)]
pub struct MountSpec {
    pub fstype: String,
    pub source: String,
    pub target: String,
    pub options: String,
}

pub fn parse_mount(spec: &str) -> Result<MountSpec, String> {
    let (mut t, mut s, mut d) = (None, None, None);
    let mut rest = Vec::new();
    for part in spec.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('=') {
            Some(("type", v)) => t = Some(v.to_string()),
            Some(("source", v)) | Some(("src", v)) => s = Some(v.to_string()),
            Some(("target", v)) | Some(("dst", v)) | Some(("destination", v)) => d = Some(v.to_string()),
            _ => rest.push(part),
        }
    }
    let need = |v: Option<String>, k: &str| v.ok_or(format!("--mount {spec}: missing {k}="));
    Ok(MountSpec {
        fstype: need(t, "type")?,
        source: need(s, "source")?,
        target: need(d, "target")?,
        options: rest.join(","),
    })
}

pub fn parse_bind(spec: &str) -> Result<MountSpec, String> {
    let (s, d) = spec.split_once(':').ok_or(format!("--bind {spec}: expected SRC:DEST"))?;
    if s.is_empty() || d.is_empty() {
        return Err(format!("--bind {spec}: expected SRC:DEST"));
    }
    Ok(MountSpec { fstype: "fsremap".into(), source: s.into(), target: d.into(), options: String::new() })
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
        assert!(parse_bind("/a").is_err());
        assert_eq!(parse_bind("/a:/b").unwrap().target, "/b");
    }
}
