//! What a container may ask of the kernel: capabilities, the seccomp filter, no-new-privileges,
//! and `--privileged`. Entry point: [`Security::parse`] turns the flags (`--security-opt`,
//! `--cap-add`, `--cap-drop`, `--privileged`) into the [`Security`] a container's record keeps;
//! [`Security::capabilities`] and [`Security::seccomp`] give what its spec gets.
//!
//! The container's root is the user, never more: every capability here is a capability of
//! den's user namespace, over the container's own namespaces and files, none over the host.
//! The defaults are docker's: its 14 capabilities, its seccomp policy (den's own profile, see
//! [`seccomp`]), no-new-privileges off. `--privileged` means what rootless podman makes of it:
//! every capability of the user namespace, no seccomp filter, the host's devices the user may
//! open. The session keyring is not a setting: every container gets a new one (see
//! `runtime::engine`). What its processes get beside these (`--init`, `--sysctl`, `--ulimit`,
//! `--shm-size`) is [`process`]'s.

pub mod fakeids;
pub mod process;
pub mod seccomp;

use serde::{Deserialize, Serialize};

use crate::error::Diagnose;

/// The capabilities by number, as the kernel numbers them (capability.h).
const CAP_NAMES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// A Linux capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cap(u8);

impl Cap {
    /// Its name as the OCI spec and `/proc` tools write it (`CAP_CHOWN`).
    pub fn name(self) -> &'static str {
        CAP_NAMES[self.0 as usize]
    }
    /// The kernel's number for it.
    pub fn number(self) -> u8 {
        self.0
    }
}

/// A capability name as docker takes it: `chown`, `CHOWN` or `CAP_CHOWN`.
pub fn parse_cap(name: &str) -> Result<Cap, SecurityError> {
    let upper = name.trim().to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    CAP_NAMES
        .iter()
        .position(|n| *n == full)
        .map(|i| Cap(i as u8))
        .ok_or_else(|| SecurityError::UnknownCapability(name.to_string()))
}

/// docker's default capabilities for a container's root.
pub const DEFAULT_CAPS: &[Cap] = &[
    Cap(0),  // CHOWN
    Cap(1),  // DAC_OVERRIDE
    Cap(4),  // FSETID
    Cap(3),  // FOWNER
    Cap(27), // MKNOD
    Cap(13), // NET_RAW
    Cap(6),  // SETGID
    Cap(7),  // SETUID
    Cap(31), // SETFCAP
    Cap(8),  // SETPCAP
    Cap(10), // NET_BIND_SERVICE
    Cap(18), // SYS_CHROOT
    Cap(5),  // KILL
    Cap(29), // AUDIT_WRITE
];

/// An entry of `--cap-add` or `--cap-drop`: one capability, or `ALL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum CapArg {
    All,
    One(Cap),
}

impl CapArg {
    pub fn parse(s: &str) -> Result<CapArg, SecurityError> {
        if s.trim().eq_ignore_ascii_case("all") {
            return Ok(CapArg::All);
        }
        parse_cap(s).map(CapArg::One)
    }
}

impl TryFrom<String> for CapArg {
    type Error = SecurityError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        CapArg::parse(&s)
    }
}

impl From<CapArg> for String {
    /// docker's normalised form, as `inspect` shows it.
    fn from(c: CapArg) -> String {
        match c {
            CapArg::All => "ALL".into(),
            CapArg::One(c) => c.name().into(),
        }
    }
}

/// Which seccomp filter a container gets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeccompChoice {
    /// den's default profile.
    #[default]
    Default,
    /// None (`seccomp=unconfined`).
    Unconfined,
    /// A profile file's, as read when the container was created.
    Profile(Box<seccomp::Profile>),
}

/// A container's security settings, fixed when it is created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Security {
    #[serde(default)]
    pub seccomp: SeccompChoice,
    #[serde(default)]
    pub no_new_privileges: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<CapArg>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<CapArg>,
    #[serde(default)]
    pub privileged: bool,
    /// `label=disable` and `apparmor=unconfined`, accepted for docker's and podman's scripts:
    /// den applies no SELinux label and no AppArmor profile, so they change nothing. Kept for
    /// `inspect`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lsm_opts: Vec<String>,
    /// In single-uid mode, chown, setuid, setgroups and the like succeed without effect
    /// ([`fakeids`]): a build's RUN steps, and `--security-opt fake-ids`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fake_ids: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error("invalid --security-opt {0:?}")]
    BadOpt(String),
    #[error("unknown capability {0:?}")]
    UnknownCapability(String),
    #[error("cannot read seccomp profile {path}")]
    ReadProfile {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid seccomp profile {path}: {reason}")]
    BadProfile {
        path: std::path::PathBuf,
        reason: String,
    },
}

impl Diagnose for SecurityError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            SecurityError::BadOpt(_) => {
                "use seccomp=unconfined, seccomp=PROFILE.json, no-new-privileges or fake-ids".into()
            }
            SecurityError::UnknownCapability(_) => {
                "use a capability name such as NET_ADMIN or CAP_NET_ADMIN (see capabilities(7)), or ALL".into()
            }
            SecurityError::ReadProfile { .. } => "check the path given to --security-opt seccomp=".into(),
            SecurityError::BadProfile { .. } => {
                "write the profile in docker's or OCI's format (defaultAction, syscalls with names and action)".into()
            }
        })
    }
}

/// The security flags of `run` and `create`, as given.
#[derive(Debug, Clone, Default)]
pub struct SecurityFlags<'a> {
    pub security_opt: &'a [String],
    pub cap_add: &'a [String],
    pub cap_drop: &'a [String],
    pub privileged: bool,
}

impl Security {
    /// Check the flags; a profile file is read now (relative to the current directory).
    pub fn parse(f: &SecurityFlags<'_>) -> Result<Security, SecurityError> {
        let mut s = Security {
            privileged: f.privileged,
            ..Security::default()
        };
        for c in f.cap_add {
            s.cap_add.push(CapArg::parse(c)?);
        }
        for c in f.cap_drop {
            s.cap_drop.push(CapArg::parse(c)?);
        }
        for opt in f.security_opt {
            // docker takes KEY=VALUE, and KEY:VALUE from older versions.
            let (key, value) = match opt.split_once('=').or_else(|| opt.split_once(':')) {
                Some((k, v)) => (k, Some(v)),
                None => (opt.as_str(), None),
            };
            match (key, value) {
                ("no-new-privileges", None | Some("true")) => s.no_new_privileges = true,
                ("no-new-privileges", Some("false")) => s.no_new_privileges = false,
                ("seccomp", Some("unconfined")) => s.seccomp = SeccompChoice::Unconfined,
                ("seccomp", Some("builtin")) => s.seccomp = SeccompChoice::Default,
                ("fake-ids", None | Some("true")) => s.fake_ids = true,
                ("fake-ids", Some("false")) => s.fake_ids = false,
                ("seccomp", Some(file)) if !file.is_empty() => {
                    s.seccomp = SeccompChoice::Profile(Box::new(read_profile(file.as_ref())?));
                }
                ("label", Some("disable")) | ("apparmor", Some("unconfined")) => {
                    s.lsm_opts
                        .push(format!("{key}={}", value.unwrap_or_default()));
                }
                _ => return Err(SecurityError::BadOpt(opt.clone())),
            }
        }
        Ok(s)
    }

    /// The container's capabilities: docker's defaults changed by `--cap-add` and `--cap-drop`
    /// as docker changes them, or all with `--privileged`. Only those this kernel knows
    /// (numbers up to `last_cap`, /proc/sys/kernel/cap_last_cap).
    pub fn capabilities(&self, last_cap: u8) -> Vec<Cap> {
        let known = |c: &Cap| c.0 <= last_cap && (c.0 as usize) < CAP_NAMES.len();
        let all = || (0..CAP_NAMES.len() as u8).map(Cap).filter(known);
        let named = |list: &[CapArg]| -> Vec<Cap> {
            list.iter()
                .filter_map(|c| match c {
                    CapArg::One(c) => Some(*c),
                    CapArg::All => None,
                })
                .collect()
        };
        let (add, drop) = (named(&self.cap_add), named(&self.cap_drop));
        let mut caps: Vec<Cap> = if self.privileged || self.cap_add.contains(&CapArg::All) {
            all()
                .filter(|c| self.privileged || !drop.contains(c))
                .collect()
        } else if self.cap_drop.contains(&CapArg::All) {
            add
        } else {
            DEFAULT_CAPS
                .iter()
                .copied()
                .filter(|c| !drop.contains(c))
                .chain(add)
                .collect()
        };
        caps.retain(known);
        caps.sort();
        caps.dedup();
        caps
    }

    /// The OCI `linux.seccomp` for a container with `caps`, or None when it runs without a
    /// filter (`seccomp=unconfined`, `--privileged`, as docker has it). `single_uid`: den runs
    /// in single-uid mode, where [`Security::fake_ids`] adds its rules (to a filter of their
    /// own when the container has none).
    pub fn seccomp(
        &self,
        caps: &[Cap],
        machine: &seccomp::Machine,
        single_uid: bool,
    ) -> Option<serde_json::Value> {
        let profile = match &self.seccomp {
            _ if self.privileged => None,
            SeccompChoice::Unconfined => None,
            SeccompChoice::Default => Some(seccomp::default_profile()),
            SeccompChoice::Profile(p) => Some(p.as_ref().clone()),
        };
        if !(self.fake_ids && single_uid) {
            return profile.map(|p| p.to_oci(caps, machine));
        }
        let mut p = profile.unwrap_or_else(seccomp::allow_all);
        p.syscalls.extend(fakeids::rules());
        Some(p.to_oci(caps, machine))
    }

    /// docker's `HostConfig.SecurityOpt`: the options as its client sends them (a profile as
    /// `seccomp=` and its JSON).
    pub fn security_opt(&self) -> Vec<String> {
        let mut out = Vec::new();
        match &self.seccomp {
            SeccompChoice::Default => {}
            SeccompChoice::Unconfined => out.push("seccomp=unconfined".to_string()),
            SeccompChoice::Profile(p) => out.push(format!(
                "seccomp={}",
                serde_json::to_string(p).unwrap_or_default()
            )),
        }
        if self.no_new_privileges {
            out.push("no-new-privileges".into());
        }
        out.extend(self.lsm_opts.iter().cloned());
        if self.fake_ids {
            out.push("fake-ids".into());
        }
        out
    }
}

fn read_profile(path: &std::path::Path) -> Result<seccomp::Profile, SecurityError> {
    use std::io::Read;
    let read_err = |source| SecurityError::ReadProfile {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(read_err)?
        .take(seccomp::MAX_PROFILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    seccomp::Profile::parse(&bytes).map_err(|reason| SecurityError::BadProfile {
        path: path.to_path_buf(),
        reason,
    })
}

/// The highest capability number this kernel knows.
pub fn last_cap() -> u8 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Whether this kernel filters system calls with seccomp: /proc/sys/kernel/seccomp is there
/// when it was built with filters (CONFIG_SECCOMP_FILTER, Linux 4.14 on). A stat, not a read
/// of /proc/self/status: this is asked at every container start.
pub fn seccomp_available() -> bool {
    std::path::Path::new("/proc/sys/kernel/seccomp").is_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(caps: &[Cap]) -> Vec<&'static str> {
        caps.iter().map(|c| c.name()).collect()
    }

    fn flags<'a>(opt: &'a [String], add: &'a [String], drop: &'a [String]) -> SecurityFlags<'a> {
        SecurityFlags {
            security_opt: opt,
            cap_add: add,
            cap_drop: drop,
            privileged: false,
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn capability_names_as_docker_takes_them() {
        for n in ["chown", "CHOWN", "cap_chown", "CAP_CHOWN"] {
            assert_eq!(parse_cap(n).unwrap().name(), "CAP_CHOWN");
        }
        assert_eq!(parse_cap("CAP_CHECKPOINT_RESTORE").unwrap().number(), 40);
        assert_eq!(parse_cap("sys_admin").unwrap().number(), 21);
        let e = parse_cap("CAP_FLY").unwrap_err();
        assert!(e.to_string().contains("CAP_FLY"));
        assert!(e.hint().unwrap().contains("NET_ADMIN"));
        assert_eq!(CapArg::parse("all").unwrap(), CapArg::All);
        // docker's default set is CapEff 0xa80425fb.
        let bits: u64 = DEFAULT_CAPS.iter().map(|c| 1u64 << c.number()).sum();
        assert_eq!(bits, 0xa804_25fb);
    }

    #[test]
    fn cap_add_and_drop_follow_docker() {
        let caps = |add: &[&str], drop: &[&str]| {
            Security::parse(&flags(&[], &s(add), &s(drop)))
                .unwrap()
                .capabilities(40)
        };
        assert_eq!(caps(&[], &[]).len(), 14);
        let c = caps(&["NET_ADMIN"], &["chown", "CAP_KILL"]);
        assert!(names(&c).contains(&"CAP_NET_ADMIN"));
        assert!(!names(&c).contains(&"CAP_CHOWN") && !names(&c).contains(&"CAP_KILL"));
        assert_eq!(c.len(), 13);
        assert_eq!(names(&caps(&["SYS_ADMIN"], &["ALL"])), ["CAP_SYS_ADMIN"]);
        let all_but = caps(&["ALL"], &["SYS_ADMIN"]);
        assert_eq!(all_but.len(), 40);
        assert!(!names(&all_but).contains(&"CAP_SYS_ADMIN"));
        // A kernel that knows fewer capabilities gets only those.
        let s = Security {
            privileged: true,
            ..Security::default()
        };
        assert_eq!(s.capabilities(40).len(), 41);
        assert_eq!(s.capabilities(37).len(), 38);
    }

    #[test]
    fn security_opts_parse_and_show_as_docker() {
        let p = |o: &[&str]| Security::parse(&flags(&s(o), &[], &[]));
        let x = p(&["no-new-privileges", "seccomp=unconfined"]).unwrap();
        assert!(x.no_new_privileges);
        assert_eq!(x.seccomp, SeccompChoice::Unconfined);
        assert_eq!(
            x.security_opt(),
            ["seccomp=unconfined", "no-new-privileges"]
        );
        assert!(p(&["no-new-privileges=true"]).unwrap().no_new_privileges);
        assert!(p(&["no-new-privileges:true"]).unwrap().no_new_privileges);
        assert!(!p(&["no-new-privileges=false"]).unwrap().no_new_privileges);
        assert_eq!(
            p(&["label=disable"]).unwrap().security_opt(),
            ["label=disable"]
        );
        for bad in [
            "seccomp",
            "seccomp=",
            "no-new-privileges=maybe",
            "systempaths=unconfined",
            "label=type:x",
        ] {
            let e = p(&[bad]).unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
            assert!(e.hint().is_some());
        }
        let e = Security::parse(&flags(&[], &s(&["CAP_FLY"]), &[])).unwrap_err();
        assert!(e.to_string().contains("CAP_FLY"));
    }

    #[test]
    fn profile_files_are_read_and_checked() {
        let t = tempfile::tempdir().unwrap();
        let good = t.path().join("p.json");
        std::fs::write(
            &good,
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}"#,
        )
        .unwrap();
        let opt = vec![format!("seccomp={}", good.display())];
        let x = Security::parse(&flags(&opt, &[], &[])).unwrap();
        let shown = x.security_opt();
        assert!(
            shown[0].starts_with("seccomp={\"defaultAction\""),
            "{shown:?}"
        );
        let v = x
            .seccomp(&x.capabilities(40), &seccomp::Machine::this(), false)
            .unwrap();
        assert_eq!(v["syscalls"][0]["names"][0], "mkdir");

        let bad = t.path().join("bad.json");
        std::fs::write(&bad, "{\"defaultAction\": 3}").unwrap();
        let opt = vec![format!("seccomp={}", bad.display())];
        let e = Security::parse(&flags(&opt, &[], &[])).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("bad.json") && msg.contains("line 1"), "{msg}");
        assert!(!msg.contains('\n'));
        let opt = vec![format!(
            "seccomp={}",
            t.path().join("missing.json").display()
        )];
        let e = Security::parse(&flags(&opt, &[], &[])).unwrap_err();
        assert!(e.to_string().contains("missing.json"));
    }

    #[test]
    fn privileged_and_unconfined_have_no_filter() {
        let m = seccomp::Machine::this();
        let mut x = Security::default();
        assert!(x.seccomp(DEFAULT_CAPS, &m, false).is_some());
        x.privileged = true;
        assert!(x.seccomp(DEFAULT_CAPS, &m, false).is_none());
        let x = Security {
            seccomp: SeccompChoice::Unconfined,
            ..Security::default()
        };
        assert!(x.seccomp(DEFAULT_CAPS, &m, false).is_none());
    }

    #[test]
    fn fake_ids_only_in_single_uid_mode() {
        let m = seccomp::Machine::this();
        let names = |v: &serde_json::Value| -> Vec<String> {
            v["syscalls"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["errnoRet"] == 0)
                .flat_map(|r| r["names"].as_array().unwrap().clone())
                .map(|n| n.as_str().unwrap().to_string())
                .collect()
        };
        let p = |o: &[&str]| {
            let o: Vec<String> = o.iter().map(|x| x.to_string()).collect();
            Security::parse(&flags(&o, &[], &[]))
        };
        let x = p(&["fake-ids"]).unwrap();
        assert_eq!(x.security_opt(), ["fake-ids"]);
        // With subordinate ids the calls work: nothing is faked.
        assert!(names(&x.seccomp(DEFAULT_CAPS, &m, false).unwrap()).is_empty());
        let v = x.seccomp(DEFAULT_CAPS, &m, true).unwrap();
        let faked = names(&v);
        for n in ["chown", "fchownat", "setresuid", "setgroups", "mknodat"] {
            assert!(faked.iter().any(|f| f == n), "{n}: {faked:?}");
        }
        // den's default rules stay.
        assert!(v.to_string().contains("keyctl"));
        let _: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(v).unwrap();
        // Unconfined and privileged containers get a filter of the faked calls alone.
        let x = p(&["fake-ids", "seccomp=unconfined"]).unwrap();
        let v = x.seccomp(DEFAULT_CAPS, &m, true).unwrap();
        assert_eq!(v["defaultAction"], "SCMP_ACT_ALLOW");
        assert!(!v.to_string().contains("keyctl"));
        assert!(names(&v).iter().any(|f| f == "chown"));
        assert!(
            p(&["fake-ids=false"])
                .unwrap()
                .seccomp(DEFAULT_CAPS, &m, true)
                .is_some()
        );
        assert!(!p(&["fake-ids=false"]).unwrap().fake_ids);
    }

    #[test]
    fn records_round_trip() {
        let x = Security {
            cap_add: vec![CapArg::All],
            cap_drop: vec![CapArg::One(parse_cap("chown").unwrap())],
            no_new_privileges: true,
            ..Security::default()
        };
        let j = serde_json::to_string(&x).unwrap();
        assert!(j.contains("\"CAP_CHOWN\"") && j.contains("\"ALL\""), "{j}");
        assert_eq!(serde_json::from_str::<Security>(&j).unwrap(), x);
        // Records written before these settings existed read as the defaults.
        assert_eq!(
            serde_json::from_str::<Security>("{}").unwrap(),
            Security::default()
        );
    }
}
