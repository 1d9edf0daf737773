//! time: a private clock. Virtual time = host time + offset, flowing `rate` times as fast
//! from the moment the module starts; monotonic clocks flow at the same rate and never go
//! back. Sleeps last virtual time. clock_settime/settimeofday set the session's clock
//! without privilege. The module asks vurs to hide the vDSO (VURS_F_HIDE_VDSO) so that
//! clock reads are system calls that reach it.
use parking_lot::RwLock;
use vurs_abi::sdk::{Call, Errno, Module, Options, Pod, Services, Verdict};
use vurs_abi::*;

const NS: i128 = 1_000_000_000;

fn now(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime into a local.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as i128 * NS + ts.tv_nsec as i128
}

/// One virtual clock: virt(host) = virt0 + (host - host0) * rate.
#[derive(Clone, Copy)]
struct Line {
    host0: i128,
    virt0: i128,
}

pub struct Time {
    rate: f64,
    real: RwLock<Line>,
    mono: Line,
    boot: Line,
}

#[derive(Clone, Copy, PartialEq)]
enum Group {
    Real,
    Mono,
    Boot,
    /// CPU-time clocks and unknown ids: left alone.
    Other,
}

fn group(clock: i64) -> Group {
    match clock as i32 {
        libc::CLOCK_REALTIME | libc::CLOCK_REALTIME_COARSE | libc::CLOCK_REALTIME_ALARM | libc::CLOCK_TAI => {
            Group::Real
        }
        libc::CLOCK_MONOTONIC | libc::CLOCK_MONOTONIC_RAW | libc::CLOCK_MONOTONIC_COARSE => Group::Mono,
        libc::CLOCK_BOOTTIME | libc::CLOCK_BOOTTIME_ALARM => Group::Boot,
        _ => Group::Other,
    }
}

fn host_clock(g: Group) -> libc::clockid_t {
    match g {
        Group::Real => libc::CLOCK_REALTIME,
        Group::Boot => libc::CLOCK_BOOTTIME,
        _ => libc::CLOCK_MONOTONIC,
    }
}

fn ret(r: Result<(), Errno>) -> Verdict {
    match r {
        Ok(()) => Verdict::Return(0),
        Err(Errno(e)) => Verdict::Return(-(e as i64)),
    }
}

fn timespec(ns: i128) -> libc::timespec {
    libc::timespec { tv_sec: ns.div_euclid(NS) as i64, tv_nsec: ns.rem_euclid(NS) as i64 }
}

impl Time {
    fn line(&self, g: Group) -> Line {
        match g {
            Group::Real => *self.real.read(),
            Group::Boot => self.boot,
            _ => self.mono,
        }
    }
    fn virt(&self, g: Group) -> i128 {
        let l = self.line(g);
        l.virt0 + ((now(host_clock(g)) - l.host0) as f64 * self.rate) as i128
    }
    /// Host duration for a virtual one.
    fn to_host_duration(&self, ns: i128) -> i128 {
        (ns as f64 / self.rate) as i128
    }
    /// Host absolute time of clock group `g` for virtual absolute time `v`.
    fn to_host_abs(&self, g: Group, v: i128) -> i128 {
        let l = self.line(g);
        l.host0 + self.to_host_duration(v - l.virt0)
    }

    fn read_timespec(call: &Call<'_>, addr: u64) -> Result<i128, Errno> {
        let ts: libc::timespec = call.read_pod(addr)?;
        if ts.tv_nsec < 0 || ts.tv_nsec >= NS as i64 || ts.tv_sec < 0 {
            return Err(Errno(libc::EINVAL));
        }
        Ok(ts.tv_sec as i128 * NS + ts.tv_nsec as i128)
    }

    /// A sleep of virtual duration or until a virtual deadline: rewrite its timespec.
    fn sleep(&self, call: &Call<'_>, g: Group, abs: bool, ts_arg: usize) -> Verdict {
        if g == Group::Other || (self.rate == 1.0 && (!abs || g != Group::Real)) {
            return Verdict::Pass;
        }
        let v = match Self::read_timespec(call, call.arg(ts_arg)) {
            Ok(v) => v,
            Err(Errno(e)) => return Verdict::Return(-(e as i64)),
        };
        let host = if abs { self.to_host_abs(g, v).max(0) } else { self.to_host_duration(v) };
        let ts = timespec(host);
        match call.scratch(ts.as_bytes()) {
            Ok(addr) => {
                let mut args = [None; 6];
                args[ts_arg] = Some(addr);
                Verdict::Rewrite(args)
            }
            // No scratch yet: vurs maps some and asks again.
            Err(_) => Verdict::Pass,
        }
    }
}

impl Module for Time {
    type Mount = ();

    fn init(_svc: Services, options: &Options) -> Result<Self, String> {
        let mut offset = 0f64;
        let mut rate = 1f64;
        for (k, v) in &options.0 {
            let v = v.as_deref().unwrap_or("");
            let num = v.parse::<f64>().map_err(|_| format!("{k}={v}: not a number"))?;
            match k.as_str() {
                "offset" if num.is_finite() => offset = num,
                "rate" if num.is_finite() && num > 0.0 => rate = num,
                "offset" | "rate" => return Err(format!("{k}={v}: out of range")),
                _ => return Err(format!("unknown option {k:?} (known: offset, rate)")),
            }
        }
        let real_now = now(libc::CLOCK_REALTIME);
        let mono_now = now(libc::CLOCK_MONOTONIC);
        let boot_now = now(libc::CLOCK_BOOTTIME);
        Ok(Time {
            rate,
            real: RwLock::new(Line { host0: real_now, virt0: real_now + (offset * 1e9) as i128 }),
            mono: Line { host0: mono_now, virt0: mono_now },
            boot: Line { host0: boot_now, virt0: boot_now },
        })
    }

    // vurs's clock service (vurs_services.clock_gettime) asks this module while it is
    // loaded, so serving modules stamp files with the session's time.
    const PROVIDES_CLOCK: bool = true;
    fn clock(&self, clockid: i32) -> Result<vurs_timespec, Errno> {
        let g = group(clockid as i64);
        let v = if g == Group::Other {
            // CPU-time clocks: the host's (this module does not change them)
            let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            // SAFETY: clock_gettime into a local.
            if unsafe { libc::clock_gettime(clockid, &mut ts) } != 0 {
                return Err(Errno(libc::EINVAL));
            }
            ts.tv_sec as i128 * NS + ts.tv_nsec as i128
        } else {
            self.virt(g)
        };
        Ok(vurs_timespec { sec: v.div_euclid(NS) as i64, nsec: v.rem_euclid(NS) as i64 })
    }

    fn syscall(&self, call: &Call<'_>) -> Verdict {
        match call.nr() as i64 {
            libc::SYS_clock_gettime => {
                let g = group(call.arg(0) as i64);
                if g == Group::Other {
                    return Verdict::Pass;
                }
                ret(call.write_pod(call.arg(1), &timespec(self.virt(g))))
            }
            libc::SYS_gettimeofday => {
                if call.arg(0) != 0 {
                    let v = self.virt(Group::Real);
                    let tv = libc::timeval {
                        tv_sec: v.div_euclid(NS) as i64,
                        tv_usec: (v.rem_euclid(NS) / 1000) as i64,
                    };
                    if let Err(e) = call.write_pod(call.arg(0), &tv) {
                        return ret(Err(e));
                    }
                }
                if call.arg(1) != 0 {
                    let tz = [0i32; 2];
                    return ret(call.write_pod(call.arg(1), &tz));
                }
                Verdict::Return(0)
            }
            libc::SYS_time => {
                let secs = self.virt(Group::Real).div_euclid(NS) as i64;
                if call.arg(0) != 0 {
                    if let Err(e) = call.write_pod(call.arg(0), &secs) {
                        return ret(Err(e));
                    }
                }
                Verdict::Return(secs)
            }
            libc::SYS_clock_settime => {
                if group(call.arg(0) as i64) != Group::Real {
                    return Verdict::Return(-(libc::EINVAL as i64));
                }
                match Self::read_timespec(call, call.arg(1)) {
                    Ok(v) => {
                        *self.real.write() = Line { host0: now(libc::CLOCK_REALTIME), virt0: v };
                        Verdict::Return(0)
                    }
                    Err(Errno(e)) => Verdict::Return(-(e as i64)),
                }
            }
            libc::SYS_settimeofday => {
                if call.arg(0) == 0 {
                    return Verdict::Return(0);
                }
                match call.read_pod::<libc::timeval>(call.arg(0)) {
                    Ok(tv) if tv.tv_usec >= 0 && tv.tv_usec < 1_000_000 => {
                        let v = tv.tv_sec as i128 * NS + tv.tv_usec as i128 * 1000;
                        *self.real.write() = Line { host0: now(libc::CLOCK_REALTIME), virt0: v };
                        Verdict::Return(0)
                    }
                    Ok(_) => Verdict::Return(-(libc::EINVAL as i64)),
                    Err(Errno(e)) => Verdict::Return(-(e as i64)),
                }
            }
            libc::SYS_nanosleep => self.sleep(call, Group::Mono, false, 0),
            libc::SYS_clock_nanosleep => {
                let abs = call.arg(1) as i32 & libc::TIMER_ABSTIME != 0;
                self.sleep(call, group(call.arg(0) as i64), abs, 2)
            }
            _ => Verdict::Pass,
        }
    }
}

vurs_abi::export_module! {
    module: Time,
    name: "time",
    description: "private clock: offset, rate; sleeps scale; settable without privilege",
    flags: VURS_F_HIDE_VDSO,
    syscalls: [
        libc::SYS_clock_gettime,
        libc::SYS_gettimeofday,
        libc::SYS_time,
        libc::SYS_clock_settime,
        libc::SYS_settimeofday,
        libc::SYS_nanosleep,
        libc::SYS_clock_nanosleep,
    ],
}
