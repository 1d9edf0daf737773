//! x86_64: registers, syscall ABI details.
#![forbid(unsafe_code)]
use libc::user_regs_struct;

/// AUDIT_ARCH_X86_64, as reported in seccomp_data.arch and ptrace_syscall_info.arch.
pub const AUDIT_ARCH: u32 = 62 | 0x8000_0000 | 0x4000_0000;
/// Bytes of the `syscall` instruction: rewinding the IP by this much re-executes the call.
pub const SYSCALL_INSN_LEN: u64 = 2;
/// Byte offsets in `struct user` (for PTRACE_POKEUSER).
pub const OFF_RAX: u64 = 10 * 8;
pub const OFF_ORIG_RAX: u64 = 15 * 8;
const OFF_ARGS: [u64; 6] = [14 * 8, 13 * 8, 12 * 8, 7 * 8, 9 * 8, 8 * 8]; // rdi rsi rdx r10 r8 r9

pub fn arg_offset(i: usize) -> u64 {
    OFF_ARGS[i]
}

pub type Regs = user_regs_struct;

pub fn regs_nr(r: &Regs) -> u64 {
    r.orig_rax
}
pub fn regs_args(r: &Regs) -> [u64; 6] {
    [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9]
}
pub fn regs_set_args(r: &mut Regs, a: &[u64; 6]) {
    (r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9) = (a[0], a[1], a[2], a[3], a[4], a[5]);
}
pub fn regs_ip(r: &Regs) -> u64 {
    r.rip
}
pub fn regs_sp(r: &Regs) -> u64 {
    r.rsp
}
pub fn regs_ret(r: &Regs) -> i64 {
    r.rax as i64
}
pub fn regs_set_ret(r: &mut Regs, v: i64) {
    r.rax = v as u64;
}
/// Prepare `r` (taken at a syscall-exit stop) to execute syscall `nr` with `args` again
/// from the same instruction once resumed.
pub fn regs_restart(r: &mut Regs, nr: u64, args: &[u64; 6], ip_at_entry: u64) {
    regs_set_args(r, args);
    r.rax = nr;
    r.orig_rax = nr;
    r.rip = ip_at_entry - SYSCALL_INSN_LEN;
}
