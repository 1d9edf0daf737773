//! uname: a private host name and system identity. uname(2) reports the values given as
//! options (the rest as on the host); sethostname/setdomainname change them for the whole
//! session without privilege, leaving the host untouched.
use parking_lot::RwLock;
use vurs_abi::sdk::{Call, Errno, Module, Options, Services, Verdict};

const FIELD: usize = 65; // __NEW_UTS_LEN + 1
const FIELDS: [&str; 6] = ["sysname", "nodename", "release", "version", "machine", "domainname"];

pub struct Uname {
    /// The six utsname fields, in kernel order.
    fields: RwLock<[String; 6]>,
}

fn host_uname() -> [String; 6] {
    // SAFETY: uname fills a zeroed struct.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
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

impl Module for Uname {
    type Mount = ();

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
    flags: 0,
    syscalls: [libc::SYS_uname, libc::SYS_sethostname, libc::SYS_setdomainname],
}
