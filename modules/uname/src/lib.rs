//! uname: a private host name and system identity. uname(2) reports the values given as
//! options (the rest as on the host); sethostname/setdomainname change them for the whole
//! session without privilege, leaving the host untouched. It also serves
//! /proc/sys/kernel/{hostname,domainname,osrelease,ostype,version} (readable, and
//! hostname/domainname writable) as virtual files.
use parking_lot::RwLock;
use vurs_abi::sdk::{Call, Errno, Handle, Module, Options, Services, Verdict};
use vurs_abi::{vurs_stat, VURS_F_PATH_SERVE};

const FIELD: usize = 65; // __NEW_UTS_LEN + 1
const FIELDS: [&str; 6] = ["sysname", "nodename", "release", "version", "machine", "domainname"];

pub struct Uname {
    /// The six utsname fields, in kernel order.
    fields: RwLock<[String; 6]>,
}

fn host_uname() -> [String; 6] {
    // SAFETY: utsname is arrays of c_char: all-zero bytes are a valid value.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uname(2) writes into the struct we own; it cannot fail with a valid pointer.
    unsafe { libc::uname(&mut u) };
    let s = |f: &[libc::c_char]| {
        let b: Vec<u8> = f.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
        String::from_utf8_lossy(&b).into_owned()
    };
    [s(&u.sysname), s(&u.nodename), s(&u.release), s(&u.version), s(&u.machine), s(&u.domainname)]
}

impl Uname {
    fn set(&self, i: usize, call: &Call<'_>) -> Verdict {
        let (addr, len) = (call.arg(0), call.arg(1) as usize);
        if len >= FIELD {
            return Verdict::Return(-(libc::EINVAL as i64));
        }
        let mut buf = vec![0u8; len];
        if call.read(addr, &mut buf).is_err() {
            return Verdict::Return(-(libc::EFAULT as i64));
        }
        let end = buf.iter().position(|&b| b == 0).unwrap_or(len);
        self.fields.write()[i] = String::from_utf8_lossy(&buf[..end]).into_owned();
        Verdict::Return(0)
    }
}

/// The /proc/sys/kernel files served, and the utsname field each shows.
const PROC_FILES: [(&str, usize); 5] = [
    ("/proc/sys/kernel/ostype", 0),
    ("/proc/sys/kernel/hostname", 1),
    ("/proc/sys/kernel/osrelease", 2),
    ("/proc/sys/kernel/version", 3),
    ("/proc/sys/kernel/domainname", 5),
];

fn field_of(h: &Handle) -> Result<usize, Errno> {
    h.downcast_ref::<usize>().copied().ok_or(Errno(libc::EBADF))
}

fn file_stat(i: usize) -> vurs_stat {
    let writable = i == 1 || i == 5;
    vurs_stat {
        dev: 0x16,
        ino: 0x7653_0100 + i as u64,
        mode: libc::S_IFREG | if writable { 0o644 } else { 0o444 },
        nlink: 1,
        blksize: 1024,
        ..Default::default()
    }
}

impl Module for Uname {
    /// Index of the utsname field a mount shows.
    type Mount = usize;

    fn mount(&self, _source: &str, target: &str, _options: &Options) -> Result<usize, (Errno, String)> {
        PROC_FILES
            .iter()
            .find(|(p, _)| *p == target)
            .map(|(_, i)| *i)
            .ok_or((Errno(libc::EINVAL), format!("uname serves only {:?}", PROC_FILES.map(|(p, _)| p))))
    }

    fn open(&self, mnt: &usize, subpath: &std::path::Path, flags: i32, _mode: u32) -> Result<Handle, Errno> {
        if !subpath.as_os_str().is_empty() {
            return Err(Errno(libc::ENOTDIR));
        }
        let writes = flags & libc::O_ACCMODE != libc::O_RDONLY;
        if writes && *mnt != 1 && *mnt != 5 {
            return Err(Errno(libc::EACCES));
        }
        if flags & libc::O_DIRECTORY != 0 {
            return Err(Errno(libc::ENOTDIR));
        }
        Ok(Box::new(*mnt))
    }

    fn stat(&self, mnt: &usize, subpath: &std::path::Path) -> Result<vurs_stat, Errno> {
        if !subpath.as_os_str().is_empty() {
            return Err(Errno(libc::ENOTDIR));
        }
        Ok(file_stat(*mnt))
    }

    fn fstat(&self, h: &Handle) -> Result<vurs_stat, Errno> {
        Ok(file_stat(field_of(h)?))
    }

    fn pread(&self, h: &Handle, buf: &mut [u8], off: i64) -> Result<usize, Errno> {
        let text = format!("{}\n", self.fields.read()[field_of(h)?]);
        let off = (off.max(0) as usize).min(text.len());
        let n = buf.len().min(text.len() - off);
        buf[..n].copy_from_slice(&text.as_bytes()[off..off + n]);
        Ok(n)
    }

    /// Writing hostname or domainname sets it, as sethostname would.
    fn pwrite(&self, h: &Handle, data: &[u8], _off: i64) -> Result<usize, Errno> {
        let i = field_of(h)?;
        let text = String::from_utf8_lossy(data);
        let v = text.trim_end_matches('\n');
        if v.len() >= FIELD {
            return Err(Errno(libc::EINVAL));
        }
        self.fields.write()[i] = v.to_string();
        Ok(data.len())
    }

    fn init(_svc: Services, options: &Options) -> Result<Self, String> {
        let mut fields = host_uname();
        for (k, v) in &options.0 {
            let i = FIELDS
                .iter()
                .position(|f| f == k)
                .ok_or(format!("unknown option {k:?} (known: {})", FIELDS.join(", ")))?;
            let v = v.clone().unwrap_or_default();
            if v.len() >= FIELD {
                return Err(format!("{k}: longer than {} bytes", FIELD - 1));
            }
            fields[i] = v;
        }
        Ok(Uname { fields: RwLock::new(fields) })
    }

    fn syscall(&self, call: &Call<'_>) -> Verdict {
        match call.nr() as i64 {
            libc::SYS_uname => {
                let mut buf = [0u8; FIELD * 6];
                for (i, f) in self.fields.read().iter().enumerate() {
                    buf[i * FIELD..i * FIELD + f.len()].copy_from_slice(f.as_bytes());
                }
                match call.write(call.arg(0), &buf) {
                    Ok(()) => Verdict::Return(0),
                    Err(Errno(e)) => Verdict::Return(-(e as i64)),
                }
            }
            libc::SYS_sethostname => self.set(1, call),
            libc::SYS_setdomainname => self.set(5, call),
            _ => Verdict::Pass,
        }
    }
}

vurs_abi::export_module! {
    module: Uname,
    name: "uname",
    description: "private host name and system identity (uname, sethostname, setdomainname)",
    flags: VURS_F_PATH_SERVE,
    syscalls: [libc::SYS_uname, libc::SYS_sethostname, libc::SYS_setdomainname],
    auto_mounts: [
        "/proc/sys/kernel/ostype",
        "/proc/sys/kernel/hostname",
        "/proc/sys/kernel/osrelease",
        "/proc/sys/kernel/version",
        "/proc/sys/kernel/domainname",
    ],
}
