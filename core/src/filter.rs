//! The seccomp filter, as data: which calls trap. Built from what the loaded modules
//! declare; compiled to BPF by seccompiler; installed in the first child before exec.
use crate::fdtable::{vfd_base, VFD_COUNT};
use crate::syscall::table;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Default, Clone)]
pub struct FilterSpec {
    /// Path calls (a path module is loaded).
    pub paths: bool,
    /// Calls on descriptors in the virtual range (a serving module is loaded).
    pub virtual_fds: bool,
    /// Numbers syscall-service modules asked for.
    pub syscalls: BTreeSet<i64>,
    /// getdents64 too (to list mount points missing on the host; see main.rs for when).
    pub dirents: bool,
    /// Credential and umask changes (any module is loaded: modules see the caller's).
    pub state: bool,
}

impl FilterSpec {
    /// Every number that may trap (unconditionally or by argument).
    pub fn rules(&self) -> BTreeMap<i64, Vec<SeccompRule>> {
        let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
        rules.insert(crate::control::CONTROL_NR, vec![]);
        rules.insert(syscalls::Sysno::mount as i64, vec![]);
        rules.insert(syscalls::Sysno::umount2 as i64, vec![]);
        if self.paths {
            for s in table::PATH_CALLS {
                if s.kind != table::Kind::Getdents || self.dirents {
                    rules.insert(s.nr, vec![]);
                }
            }
        }
        for &nr in &self.syscalls {
            rules.insert(nr, vec![]);
        }
        if self.state {
            for &sysno in table::STATE_CALLS {
                rules.insert(sysno as i64, vec![]);
            }
        }
        if self.virtual_fds {
            for &(sysno, arg) in table::FD_CALLS {
                let nr = sysno as i64;
                if rules.get(&nr).is_some_and(|r| r.is_empty()) {
                    continue; // already traps unconditionally
                }
                let conds = vec![
                    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, SeccompCmpOp::Ge, vfd_base() as u64)
                        .expect("valid condition"),
                    SeccompCondition::new(
                        arg,
                        SeccompCmpArgLen::Dword,
                        SeccompCmpOp::Lt,
                        (vfd_base() + VFD_COUNT) as u64,
                    )
                    .expect("valid condition"),
                ];
                rules.entry(nr).or_default().push(SeccompRule::new(conds).expect("valid rule"));
            }
        }
        rules
    }

    pub fn compile(&self) -> Result<BpfProgram, String> {
        let filter = SeccompFilter::new(
            self.rules(),
            SeccompAction::Allow,
            SeccompAction::Trace(0),
            std::env::consts::ARCH.try_into().map_err(|e| format!("seccomp: {e:?}"))?,
        )
        .map_err(|e| format!("seccomp filter: {e}"))?;
        filter.try_into().map_err(|e| format!("seccomp filter: {e}"))
    }
}
