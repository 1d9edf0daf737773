//! execve of a `#!` script whose interpreter (or itself) lies in a mount: the kernel would
//! look the interpreter up on the host, so vurs performs the kernel's rewrite itself: the
//! call becomes execve(interpreter's host path, [interp, optarg?, script, argv[1..]], envp).
//! A served script (no host path) is read through its module (dispatch/serve.rs
//! `exec_call`); a served binary runs from a copy in a memfd.
use crate::dispatch::{Outcome, Scratch};
use crate::errno::Errno;
use crate::path::mounts::subpath;
use crate::path::resolve::Resolver;
use crate::tracee::memory;
use std::io::Read;

const MAX_ARGS: usize = 1024;

/// The interpreter line of a script on the host: (interpreter, optional argument).
pub fn shebang(host_path: &[u8]) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    let path = std::ffi::OsStr::new(std::str::from_utf8(host_path).ok()?);
    let mut f = std::fs::File::open(path).ok()?;
    let mut buf = [0u8; 256];
    let n = f.read(&mut buf).ok()?;
    shebang_of(&buf[..n])
}

/// The interpreter line of a script whose first bytes are `head`.
pub fn shebang_of(head: &[u8]) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    let n = head.len();
    if !head.starts_with(b"#!") {
        return None;
    }
    let line = &head[2..head.iter().position(|&b| b == b'\n').unwrap_or(n)];
    let line: Vec<u8> = line.iter().copied().skip_while(|b| *b == b' ' || *b == b'\t').collect();
    let end = line.iter().position(|&b| b == b' ' || b == b'\t').unwrap_or(line.len());
    let interp = line[..end].to_vec();
    let rest: Vec<u8> = line[end..].iter().copied().skip_while(|b| *b == b' ' || *b == b'\t').collect();
    let rest: Vec<u8> =
        rest.iter().copied().rev().skip_while(|b| b.is_ascii_whitespace()).collect::<Vec<_>>();
    let rest: Vec<u8> = rest.into_iter().rev().collect();
    if interp.is_empty() {
        return None;
    }
    Some((interp, (!rest.is_empty()).then_some(rest)))
}

/// The execve being looked at.
pub struct ScriptCall<'a> {
    /// Host path of the program.
    pub script_host: &'a [u8],
    /// The path as the caller gave it (what the interpreter gets as its script argument).
    pub script_arg: &'a [u8],
    /// The program lies in a mount (then the kernel would pass the interpreter the host
    /// path: vurs does the rewrite itself so `$0` stays the caller's path).
    pub script_in_mount: bool,
    /// The caller's argv pointer.
    pub argv: u64,
    pub tid: i32,
}

/// New (path, argv) arguments for an execve of a `#!` script when the script or its
/// interpreter lies in a mount; None when the kernel can do it alone.
pub fn script_args(
    r: &Resolver<'_>,
    cwd: &dyn Fn() -> Vec<u8>,
    sc: &ScriptCall<'_>,
    scratch: &mut Scratch,
) -> Result<Option<(u64, u64)>, Outcome> {
    let Some(line) = shebang(sc.script_host) else { return Ok(None) };
    interpreter_call(r, cwd, line, sc, scratch)
}

/// New (path, argv) for an execve of a `#!` script, from its interpreter line: the
/// interpreter's host path and [interp, optarg?, script as given, argv[1..]].
pub fn interpreter_args(
    r: &Resolver<'_>,
    cwd: &dyn Fn() -> Vec<u8>,
    line: (Vec<u8>, Option<Vec<u8>>),
    sc: &ScriptCall<'_>,
    scratch: &mut Scratch,
) -> Result<(u64, u64), Outcome> {
    interpreter_call(r, cwd, line, sc, scratch)?.ok_or(Outcome::Pass)
}

fn interpreter_call(
    r: &Resolver<'_>,
    cwd: &dyn Fn() -> Vec<u8>,
    (interp, optarg): (Vec<u8>, Option<Vec<u8>>),
    sc: &ScriptCall<'_>,
    scratch: &mut Scratch,
) -> Result<Option<(u64, u64)>, Outcome> {
    let fail = |e: i32| Outcome::Fail(Errno(e));
    let start = if interp.first() == Some(&b'/') { b"/".to_vec() } else { cwd() };
    let res = r.resolve(&start, &interp, true).map_err(fail)?;
    if !res.crossed_mount && !sc.script_in_mount {
        return Ok(None);
    }
    let host = match res.mount.as_ref() {
        Some(m) => m.redirect(subpath(&res.virt, m.target.as_bytes()), vurs_abi::VURS_ACCESS_EXEC),
        None => r.host_path(&res.virt, vurs_abi::VURS_ACCESS_EXEC),
    }
    .map_err(fail)?;
    let (argv, tid, script_arg) = (sc.argv, sc.tid, sc.script_arg);
    // The caller's argv[1..].
    let mut rest = Vec::new();
    if argv != 0 {
        for i in 1..MAX_ARGS {
            let mut w = [0u8; 8];
            memory::read(tid, argv + 8 * i as u64, &mut w).map_err(|e| fail(e.errno()))?;
            let p = u64::from_ne_bytes(w);
            if p == 0 {
                break;
            }
            rest.push(p);
        }
    }
    let put = |s: &mut Scratch, b: &[u8]| s.put_cstr(b);
    let path = put(scratch, &host)?;
    let mut ptrs = vec![put(scratch, &interp)?];
    if let Some(o) = optarg {
        ptrs.push(put(scratch, &o)?);
    }
    ptrs.push(put(scratch, script_arg)?);
    ptrs.extend(rest);
    ptrs.push(0);
    let bytes: Vec<u8> = ptrs.iter().flat_map(|p| p.to_ne_bytes()).collect();
    let new_argv = scratch.put(&bytes)?;
    Ok(Some((path, new_argv)))
}
