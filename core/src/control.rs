//! In-session control: `vurs mount|umount|insmod|rmmod|lsmod|mounts` talk to the hypervisor
//! that traces them through a reserved system call number (as VUOS does). Outside a
//! session the kernel answers ENOSYS, which is how the client knows.
//!
//! Request: words separated by NUL. Answer: the return value is the length of the text
//! written to the answer buffer, or -errno with a one-line message in the buffer.
#![forbid(unsafe_code)]

/// Reserved number: far above any real system call, below the x32 bit.
pub const CONTROL_NR: i64 = 0x000f_5653;
pub const ANSWER_CAP: usize = 64 * 1024;

/// Client side: send `words`; Ok(answer) or Err((errno, message)).
pub fn request(words: &[String]) -> Result<String, (i32, String)> {
    let mut req = Vec::new();
    for w in words {
        req.extend_from_slice(w.as_bytes());
        req.push(0);
    }
    let mut ans = vec![0u8; ANSWER_CAP];
    let r = crate::tracee::sys::control_call(CONTROL_NR, &req, &mut ans);
    if r < 0 {
        let e = -(r as i32);
        if e == libc::ENOSYS {
            return Err((e, "not inside a vurs session".into()));
        }
        let end = ans.iter().position(|&b| b == 0).unwrap_or(0);
        let msg = String::from_utf8_lossy(&ans[..end]).into_owned();
        let msg = if msg.is_empty() { crate::errno::strerror(e) } else { msg };
        return Err((e, msg));
    }
    let n = (r as usize).min(ans.len());
    Ok(String::from_utf8_lossy(&ans[..n]).into_owned())
}

/// Server side: split a request into words.
pub fn parse_request(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|&b| b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect()
}
