//! Seccomp profiles: the format (docker's, which is OCI's plus conditions), den's default profile
//! as data, and the conversion to the OCI runtime spec's `linux.seccomp` for one container.
//!
//! # den's default profile and why it matches docker's
//! docker's default profile (moby's `profiles/seccomp/default.json`) is an allow-list: about 360
//! system calls are allowed, a few more under conditions (a capability, an argument value), and
//! every other call fails with EPERM. den's is the same policy written the other way round, as a
//! deny-list: every call docker's list leaves out, or allows only under a condition, is named
//! here and fails with EPERM (clone3 with ENOSYS, as in docker, so that C libraries fall back to
//! clone, whose flags can be checked). The conditions are docker's: a capability re-allows its
//! calls (`--cap-add SYS_ADMIN` the mount family, unshare, setns, clone with namespace flags, ...),
//! personality is limited to the same five values, clone may not create namespaces.
//!
//! Why a deny-list: libcontainer compiles the profile with libseccomp inside every container's
//! init, before it starts. Compiling and loading docker's allow-list (x86_64, x86, x32) takes
//! 10 ms or more on these machines; den's deny-list (x86_64, x86) about 0.9 ms, of which the
//! personality rules are 0.3 ms, inside the 2 ms a start may grow by. A deny-list also keeps
//! system calls newer than a profile working (glibc falls back on ENOSYS, not EPERM; runc
//! patches the filter for that, libcontainer does not).
//!
//! Where the two differ, and why that is no weaker:
//! - A call the kernel adds after libseccomp 2.5.4 (Debian 12's) cannot be named in a deny-list
//!   and is allowed; docker's allow-list refuses it unless listed. Of those, docker's current
//!   list allows most (listmount, statmount, mseal, the `*xattrat` calls, uretprobe), gates the
//!   LSM calls behind CAP_SYS_ADMIN, and the mount-family ones (open_tree_attr) are refused by the
//!   kernel itself without CAP_SYS_ADMIN, which a default container does not have.
//! - docker refuses `socket(AF_ALG)` and `socket(AF_VSOCK)` but allows socketcall(2), through
//!   which a 32-bit x86 program opens the same sockets; libseccomp turns an argument rule on
//!   socket(2) into a refusal of every socketcall socket, which would cut 32-bit programs off
//!   the network. den leaves socket(2) alone: the rule could be stepped around in docker too.
//! - Calls that exist only for 32-bit x86 (vm86, stime, the old `umount`, the old signal calls)
//!   cannot be named: libcontainer resolves names on the native architecture. They are absent
//!   from 64-bit kernels (vm86) or refused by the kernel without a capability the container
//!   lacks (stime, umount), or harmless.
//! - x32 is left out of the architectures: a filter without it kills x32 system calls, which
//!   most kernels disable anyway (filtering it too would add about half a millisecond).
//! - ptrace, process_vm_readv and process_vm_writev are allowed, as docker does on kernels from
//!   4.8 on (before 4.8 ptrace could step around seccomp); den runs on far newer kernels.
//!
//! libcontainer 0.7 reads a masked compare's two values the other way round from runc and
//! docker's profiles; [`Profile::to_oci`] writes them its way (see `Arg::for_libcontainer`).
//!
//! # Profile files
//! `--security-opt seccomp=FILE` takes docker's format, which is OCI's `linux.seccomp` with
//! `archMap`, `includes` and `excludes` added; an OCI-format file is a docker-format file without
//! those. The file is read and checked when the container is created (as docker's client does)
//! and kept in the container's record.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Cap;

/// What a filter does with a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    #[serde(rename = "SCMP_ACT_KILL")]
    Kill,
    #[serde(rename = "SCMP_ACT_KILL_PROCESS")]
    KillProcess,
    #[serde(rename = "SCMP_ACT_KILL_THREAD")]
    KillThread,
    #[serde(rename = "SCMP_ACT_TRAP")]
    Trap,
    #[serde(rename = "SCMP_ACT_ERRNO")]
    Errno,
    #[serde(rename = "SCMP_ACT_TRACE")]
    Trace,
    #[serde(rename = "SCMP_ACT_ALLOW")]
    Allow,
    #[serde(rename = "SCMP_ACT_LOG")]
    Log,
    /// Accepted by the format, refused when checked: it needs a listener den does not run.
    #[serde(rename = "SCMP_ACT_NOTIFY")]
    Notify,
}

/// How an argument is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = "SCMP_CMP_NE")]
    Ne,
    #[serde(rename = "SCMP_CMP_LT")]
    Lt,
    #[serde(rename = "SCMP_CMP_LE")]
    Le,
    #[serde(rename = "SCMP_CMP_EQ")]
    Eq,
    #[serde(rename = "SCMP_CMP_GE")]
    Ge,
    #[serde(rename = "SCMP_CMP_GT")]
    Gt,
    #[serde(rename = "SCMP_CMP_MASKED_EQ")]
    MaskedEq,
}

/// The architectures libcontainer knows, by their seccomp names.
const ARCHES: &[&str] = &[
    "SCMP_ARCH_NATIVE",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
];

const FLAGS: &[&str] = &[
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];

/// A seccomp profile in docker's format (OCI's `linux.seccomp`, plus conditions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub default_action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    /// OCI's list; docker's files use `archMap` instead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arch_map: Vec<ArchMap>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub syscalls: Vec<Rule>,
}

/// docker's `archMap` entry: an architecture and the ones its kernel also runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMap {
    pub architecture: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub sub_architectures: Vec<String>,
}

/// One rule: what happens to the named calls (when the arguments match, and the conditions
/// hold).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// docker's older format: one name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<Arg>,
    #[serde(default, skip_serializing_if = "Filter::is_empty")]
    pub includes: Filter,
    #[serde(default, skip_serializing_if = "Filter::is_empty")]
    pub excludes: Filter,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// docker's conditions on a rule: capabilities (checked against the container's), architectures
/// (Go names: amd64, arm64, x86, ...), a minimum kernel version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caps: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arches: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_kernel: Option<String>,
}

impl Filter {
    fn is_empty(&self) -> bool {
        self.caps.is_empty() && self.arches.is_empty() && self.min_kernel.is_none()
    }
}

/// A comparison of argument `index` (0-5) with `value` (`value_two` is the masked compare's
/// expected value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Arg {
    pub index: u32,
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    pub op: Op,
}

impl Arg {
    /// The argument as libcontainer 0.7 reads it. In docker's profiles and runc, a masked
    /// compare's `value` is the mask and `valueTwo` the value the masked argument must equal
    /// (docker's clone rule: mask 0x7E020000, value 0); libcontainer hands `valueTwo` to
    /// libseccomp as the mask and `value` as the expected value, so the two are swapped here.
    fn for_libcontainer(&self) -> Value {
        let (value, value_two) = match self.op {
            Op::MaskedEq => (self.value_two, self.value),
            _ => (self.value, self.value_two),
        };
        json!({ "index": self.index, "value": value, "valueTwo": value_two, "op": self.op })
    }
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// A profile file larger than this is refused (docker's default profile is 20 KiB).
pub const MAX_PROFILE_BYTES: usize = 1 << 20;

impl Profile {
    /// Parse and check a profile; the error says what is wrong (serde's message names the line).
    pub fn parse(bytes: &[u8]) -> Result<Profile, String> {
        if bytes.len() > MAX_PROFILE_BYTES {
            return Err(format!("larger than {} KiB", MAX_PROFILE_BYTES / 1024));
        }
        let p: Profile = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        p.check()?;
        Ok(p)
    }

    fn check(&self) -> Result<(), String> {
        if self.default_action == Action::Notify {
            return Err("SCMP_ACT_NOTIFY is not supported (den runs no seccomp listener)".into());
        }
        let arch_ok = |a: &String| {
            if ARCHES.contains(&a.as_str()) {
                Ok(())
            } else {
                Err(format!("unknown architecture {a:?}"))
            }
        };
        for a in &self.architectures {
            arch_ok(a)?;
        }
        for m in &self.arch_map {
            arch_ok(&m.architecture)?;
            for a in &m.sub_architectures {
                arch_ok(a)?;
            }
        }
        for f in &self.flags {
            if !FLAGS.contains(&f.as_str()) {
                return Err(format!("unknown flag {f:?}"));
            }
        }
        for (i, r) in self.syscalls.iter().enumerate() {
            if r.names.is_empty() && r.name.is_none() {
                return Err(format!("syscalls[{i}] names no system call"));
            }
            if r.action == Action::Notify {
                return Err(
                    "SCMP_ACT_NOTIFY is not supported (den runs no seccomp listener)".into(),
                );
            }
            if let Some(a) = r.args.iter().find(|a| a.index > 5) {
                return Err(format!(
                    "syscalls[{i}] compares argument {}: system calls have arguments 0 to 5",
                    a.index
                ));
            }
            for v in [&r.includes.min_kernel, &r.excludes.min_kernel]
                .into_iter()
                .flatten()
            {
                if parse_kernel(v).is_none() {
                    return Err(format!("syscalls[{i}] has an invalid minKernel {v:?}"));
                }
            }
        }
        Ok(())
    }

    /// The OCI `linux.seccomp` for a container with capabilities `caps` (its bounding set) on
    /// this machine: the rules whose conditions hold, for the native architecture (and its
    /// sub-architectures from `archMap`).
    pub fn to_oci(&self, caps: &[Cap], machine: &Machine) -> Value {
        let has = |name: &String| {
            super::parse_cap(name)
                .ok()
                .is_some_and(|c| caps.contains(&c))
        };
        let kernel_at_least = |v: &String| parse_kernel(v).is_some_and(|min| machine.kernel >= min);
        let applies = |r: &Rule| {
            let inc = &r.includes;
            let exc = &r.excludes;
            inc.caps.iter().all(has)
                && (inc.arches.is_empty() || inc.arches.iter().any(|a| a == machine.go_arch))
                && inc.min_kernel.as_ref().is_none_or(kernel_at_least)
                && !exc.caps.iter().any(has)
                && !exc.arches.iter().any(|a| a == machine.go_arch)
                && !exc.min_kernel.as_ref().is_some_and(kernel_at_least)
        };
        let syscalls: Vec<Value> = self
            .syscalls
            .iter()
            .filter(|r| applies(r))
            .map(|r| {
                let names: Vec<&String> = r.names.iter().chain(r.name.iter()).collect();
                let mut v = json!({ "names": names, "action": r.action });
                if let Some(e) = r.errno_ret {
                    v["errnoRet"] = json!(e);
                }
                if !r.args.is_empty() {
                    v["args"] = json!(r.args.iter().map(Arg::for_libcontainer).collect::<Vec<_>>());
                }
                v
            })
            .collect();
        let architectures: Vec<&String> = if !self.architectures.is_empty() {
            self.architectures.iter().collect()
        } else {
            self.arch_map
                .iter()
                .find(|m| m.architecture == machine.seccomp_arch)
                .map(|m| {
                    std::iter::once(&m.architecture)
                        .chain(&m.sub_architectures)
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut v = json!({ "defaultAction": self.default_action, "syscalls": syscalls });
        if let Some(e) = self.default_errno_ret {
            v["defaultErrnoRet"] = json!(e);
        }
        if !architectures.is_empty() {
            v["architectures"] = json!(architectures);
        }
        if !self.flags.is_empty() {
            v["flags"] = json!(self.flags);
        }
        v
    }
}

/// A kernel version `X.Y` (anything after is ignored: `6.18.44-foo` is 6.18).
fn parse_kernel(v: &str) -> Option<(u32, u32)> {
    let mut parts = v.split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().unwrap_or("0").parse().ok()?;
    Some((major, minor))
}

/// What a profile's conditions are checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// The native architecture's seccomp name (`SCMP_ARCH_X86_64`).
    pub seccomp_arch: &'static str,
    /// Its Go name, which docker's `includes.arches` use (`amd64`).
    pub go_arch: &'static str,
    /// The running kernel's version.
    pub kernel: (u32, u32),
}

impl Machine {
    /// This machine.
    pub fn this() -> Machine {
        let (seccomp_arch, go_arch) = match std::env::consts::ARCH {
            "x86_64" => ("SCMP_ARCH_X86_64", "amd64"),
            "aarch64" => ("SCMP_ARCH_AARCH64", "arm64"),
            "x86" => ("SCMP_ARCH_X86", "386"),
            "arm" => ("SCMP_ARCH_ARM", "arm"),
            "riscv64" => ("SCMP_ARCH_RISCV64", "riscv64"),
            "s390x" => ("SCMP_ARCH_S390X", "s390x"),
            "powerpc64" => ("SCMP_ARCH_PPC64LE", "ppc64le"),
            _ => ("SCMP_ARCH_NATIVE", "unknown"),
        };
        let kernel = nix::sys::utsname::uname()
            .ok()
            .and_then(|u| parse_kernel(&u.release().to_string_lossy()))
            .unwrap_or((0, 0));
        Machine {
            seccomp_arch,
            go_arch,
            kernel,
        }
    }
}

// ------------------------------------------------------------------------------------------
// den's default profile, as data.

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

/// Calls a container may not make, and the capabilities any one of which lets it (docker's
/// conditions). Names are native (x86_64 or aarch64) names; one a machine lacks is skipped.
const DENIED: &[(&[&str], &[&str])] = &[
    // The kernel's keyrings are not namespaced: the user's keys (Kerberos and AFS tickets) would
    // be reachable.
    (&["add_key", "keyctl", "request_key"], &[]),
    // Replacing the kernel, swapping, process accounting and obsolete kernel interfaces.
    (&["kexec_load", "kexec_file_load"], &[]),
    (&["swapon", "swapoff"], &[]),
    (
        &[
            "_sysctl",
            "afs_syscall",
            "create_module",
            "get_kernel_syms",
            "getpmsg",
            "nfsservctl",
            "putpmsg",
            "query_module",
            "security",
            "sysfs",
            "tuxcall",
            "uselib",
            "ustat",
            "vserver",
        ],
        &[],
    ),
    // Large, often-exploited kernel surfaces docker keeps out: io_uring, userfaultfd, moving
    // other processes' pages.
    (
        &["io_uring_setup", "io_uring_enter", "io_uring_register"],
        &[],
    ),
    (&["userfaultfd"], &[]),
    (&["migrate_pages", "move_pages"], &[]),
    // Changing the root: docker allows it under no capability.
    (&["pivot_root"], &[]),
    // Mounts, namespaces and other system-wide state: only with CAP_SYS_ADMIN.
    (
        &[
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "lsm_get_self_attr",
            "lsm_list_modules",
            "lsm_set_self_attr",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "umount2",
            "unshare",
        ],
        &["CAP_SYS_ADMIN"],
    ),
    (&["bpf"], &["CAP_SYS_ADMIN", "CAP_BPF"]),
    (&["perf_event_open"], &["CAP_SYS_ADMIN", "CAP_PERFMON"]),
    (&["syslog"], &["CAP_SYS_ADMIN", "CAP_SYSLOG"]),
    (&["open_by_handle_at"], &["CAP_DAC_READ_SEARCH"]),
    (&["reboot"], &["CAP_SYS_BOOT"]),
    (&["chroot"], &["CAP_SYS_CHROOT"]),
    (
        &["init_module", "finit_module", "delete_module"],
        &["CAP_SYS_MODULE"],
    ),
    (&["acct"], &["CAP_SYS_PACCT"]),
    (
        &["kcmp", "pidfd_getfd", "process_madvise"],
        &["CAP_SYS_PTRACE"],
    ),
    (&["iopl", "ioperm"], &["CAP_SYS_RAWIO"]),
    (&["settimeofday", "clock_settime"], &["CAP_SYS_TIME"]),
    (&["vhangup"], &["CAP_SYS_TTY_CONFIG"]),
    (
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
        &["CAP_SYS_NICE"],
    ),
];

/// The namespace flags of clone(2): CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID,
/// NEWNET (docker's mask 0x7E020000).
const CLONE_NAMESPACES: &[u64] = &[
    0x0002_0000,
    0x0200_0000,
    0x0400_0000,
    0x0800_0000,
    0x1000_0000,
    0x2000_0000,
    0x4000_0000,
];

/// The personality(2) values docker allows: PER_LINUX, PER_LINUX32, UNAME26, PER_LINUX32 |
/// UNAME26, and 0xffffffff (a query).
pub const PERSONALITY_ALLOWED: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// Rules refusing every personality(2) value but [`PERSONALITY_ALLOWED`].
///
/// A rule may compare an argument once, and rules add up (a call matching any is refused), so
/// "not one of five values" is written as bit patterns. A value is refused when it has a bit set
/// outside 0x20008 (bits 3 and 17) and is not 0xffffffff, i.e. when some such bit `b` is set and
/// some bit is clear. Walking the 30 bits outside 0x20008 in a ring, such a value has a set bit
/// followed by a clear one, unless all 30 are set and the clear bit is 3 or 17: one rule per
/// neighbouring pair (`b` set, next clear) and two for bits 3 and 17 cover it, 32 rules, the
/// fewest masked compares can do it with. One more refuses values above 32 bits.
fn personality_rules() -> Vec<Arg> {
    let others: Vec<u32> = (0..32).filter(|b| ![3, 17].contains(b)).collect();
    let masked = |set: u32, clear: u32| Arg {
        index: 0,
        value: (1u64 << set) | (1u64 << clear),
        value_two: 1u64 << set,
        op: Op::MaskedEq,
    };
    let mut out = vec![Arg {
        index: 0,
        value: 0xffff_ffff,
        value_two: 0,
        op: Op::Gt,
    }];
    for (i, &b) in others.iter().enumerate() {
        out.push(masked(b, others[(i + 1) % others.len()]));
    }
    out.push(masked(others[0], 3));
    out.push(masked(others[0], 17));
    out
}

fn deny(names: &[&str], errno: u32, unless: &[&str], args: Vec<Arg>) -> Rule {
    Rule {
        names: names.iter().map(|n| n.to_string()).collect(),
        name: None,
        action: Action::Errno,
        errno_ret: Some(errno),
        args,
        includes: Filter::default(),
        excludes: Filter {
            caps: unless.iter().map(|c| c.to_string()).collect(),
            ..Filter::default()
        },
        comment: None,
    }
}

/// den's default profile (see the module doc).
pub fn default_profile() -> Profile {
    let mut syscalls: Vec<Rule> = DENIED
        .iter()
        .map(|(names, unless)| deny(names, EPERM, unless, Vec::new()))
        .collect();
    // One rule per flag: a rule's comparisons must all hold, rules add up.
    for &flag in CLONE_NAMESPACES {
        let arg = Arg {
            index: 0,
            value: flag,
            value_two: flag,
            op: Op::MaskedEq,
        };
        syscalls.push(deny(&["clone"], EPERM, &["CAP_SYS_ADMIN"], vec![arg]));
    }
    // clone3 passes its flags in memory, where seccomp cannot look: ENOSYS makes the C library
    // use clone instead.
    syscalls.push(deny(&["clone3"], ENOSYS, &["CAP_SYS_ADMIN"], Vec::new()));
    for arg in personality_rules() {
        syscalls.push(deny(&["personality"], EPERM, &[], vec![arg]));
    }
    Profile {
        syscalls,
        ..allow_all()
    }
}

/// A profile that allows every call, for the native architecture and its 32-bit one: the base
/// of den's default profile, and of rules added to a container that has no filter of its own.
pub fn allow_all() -> Profile {
    Profile {
        default_action: Action::Allow,
        default_errno_ret: None,
        architectures: Vec::new(),
        arch_map: vec![
            ArchMap {
                architecture: "SCMP_ARCH_X86_64".into(),
                sub_architectures: vec!["SCMP_ARCH_X86".into()],
            },
            ArchMap {
                architecture: "SCMP_ARCH_AARCH64".into(),
                sub_architectures: vec!["SCMP_ARCH_ARM".into()],
            },
        ],
        flags: Vec::new(),
        syscalls: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amd64() -> Machine {
        Machine {
            seccomp_arch: "SCMP_ARCH_X86_64",
            go_arch: "amd64",
            kernel: (6, 1),
        }
    }

    fn denied_names(v: &Value) -> Vec<String> {
        v["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["names"].as_array().unwrap().clone())
            .map(|n| n.as_str().unwrap().to_string())
            .collect()
    }

    fn personality_denied(x: u64) -> bool {
        personality_rules().iter().any(|a| match a.op {
            Op::Gt => x > a.value,
            Op::MaskedEq => x & a.value == a.value_two,
            _ => unreachable!(),
        })
    }

    #[test]
    fn personality_allows_exactly_dockers_values() {
        assert_eq!(personality_rules().len(), 33);
        for &v in PERSONALITY_ALLOWED {
            assert!(!personality_denied(v), "{v:#x} must be allowed");
        }
        // Every single bit, every value with one bit clear, a spread of others.
        let mut samples: Vec<u64> = (0..32).map(|b| 1u64 << b).collect();
        samples.extend((0..32).map(|b| 0xffff_ffffu64 ^ (1 << b)));
        samples.extend([
            0x40000,
            0x0040008,
            0x1_0000_0000,
            0x1_0000_0008,
            7,
            9,
            0x20009,
        ]);
        let mut x: u64 = 0x9e37_79b9;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            samples.push(x & 0xffff_ffff);
        }
        for v in samples {
            assert_eq!(
                personality_denied(v),
                !PERSONALITY_ALLOWED.contains(&v),
                "{v:#x}"
            );
        }
    }

    #[test]
    fn default_profile_follows_the_containers_capabilities() {
        let p = default_profile();
        let caps = super::super::DEFAULT_CAPS;
        let v = p.to_oci(caps, &amd64());
        assert_eq!(v["defaultAction"], "SCMP_ACT_ALLOW");
        assert_eq!(
            v["architectures"],
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])
        );
        let names = denied_names(&v);
        for n in [
            "keyctl",
            "add_key",
            "mount",
            "unshare",
            "setns",
            "bpf",
            "pivot_root",
        ] {
            assert!(names.iter().any(|x| x == n), "{n} is denied");
        }
        // chroot is allowed with docker's default CAP_SYS_CHROOT.
        assert!(!names.iter().any(|x| x == "chroot"));
        // CAP_SYS_ADMIN re-allows the mount family, unshare, clone with namespaces, clone3.
        let mut admin = caps.to_vec();
        admin.push(super::super::parse_cap("SYS_ADMIN").unwrap());
        let names = denied_names(&p.to_oci(&admin, &amd64()));
        for n in [
            "mount", "umount2", "unshare", "setns", "clone", "clone3", "bpf",
        ] {
            assert!(!names.iter().any(|x| x == n), "{n} allowed with SYS_ADMIN");
        }
        assert!(names.iter().any(|x| x == "keyctl"));
    }

    #[test]
    fn docker_conditions_are_applied() {
        let text = r#"{
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                        {"architecture": "SCMP_ARCH_RISCV64", "subArchitectures": null}],
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                {"name": "arch_prctl", "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
                {"names": ["riscv_flush_icache"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["riscv64"]}},
                {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
                {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}], "comment": "x"}
            ]}"#;
        let p = Profile::parse(text.as_bytes()).unwrap();
        let v = p.to_oci(super::super::DEFAULT_CAPS, &amd64());
        assert_eq!(
            v["architectures"],
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
        assert_eq!(v["defaultErrnoRet"], 1);
        let names = denied_names(&v);
        assert_eq!(
            names,
            ["read", "write", "arch_prctl", "ptrace", "clone3", "socket"]
        );
        assert_eq!(v["syscalls"][4]["args"][0]["op"], "SCMP_CMP_NE");
        assert_eq!(v["syscalls"][4]["args"][0]["value"], 40);
        // What libcontainer reads.
        let _: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(v).unwrap();
    }

    #[test]
    fn bad_profiles_say_what_is_wrong() {
        let bad = |t: &str| Profile::parse(t.as_bytes()).unwrap_err();
        assert!(bad("{").contains("EOF"));
        assert!(bad(r#"{"defaultAction": "SCMP_ACT_MAYBE"}"#).contains("SCMP_ACT_MAYBE"));
        assert!(bad(r#"{"syscalls": []}"#).contains("defaultAction"));
        assert!(
            bad(r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]}"#)
                .contains("Z80")
        );
        assert!(
            bad(
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"action": "SCMP_ACT_ERRNO"}]}"#
            )
            .contains("names no system call")
        );
        assert!(bad(r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#).contains("argument 6"));
        assert!(bad(r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#).contains("NOTIFY"));
        assert!(bad(&" ".repeat(MAX_PROFILE_BYTES + 1)).contains("larger"));
        // OCI's format is docker's without conditions.
        let oci = r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#;
        let v = Profile::parse(oci.as_bytes())
            .unwrap()
            .to_oci(&[], &amd64());
        assert_eq!(v["syscalls"][0]["errnoRet"], 13);
    }

    #[test]
    fn masked_compares_are_written_the_way_libcontainer_reads_them() {
        // docker's clone rule: the mask in `value`, the expected value in `valueTwo`.
        let text = r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["clone"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}]}]}"#;
        let v = Profile::parse(text.as_bytes())
            .unwrap()
            .to_oci(&[], &amd64());
        let a = &v["syscalls"][0]["args"][0];
        assert_eq!(
            (a["value"].as_u64(), a["valueTwo"].as_u64()),
            (Some(0), Some(2114060288))
        );
    }

    #[test]
    fn kernel_versions() {
        assert_eq!(parse_kernel("6.18.44-fc-v1252"), Some((6, 18)));
        assert_eq!(parse_kernel("4.8"), Some((4, 8)));
        assert_eq!(parse_kernel("5"), Some((5, 0)));
        assert_eq!(parse_kernel("x"), None);
    }
}
