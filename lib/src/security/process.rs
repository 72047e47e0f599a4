//! What a container's processes get beside their capabilities: `--init`, `--sysctl`,
//! `--ulimit` and `--shm-size`, checked once at the edge ([`Settings::parse`]) and stored in the
//! container's record; the runtime puts them in the spec.
//!
//! - `--sysctl KEY=VALUE`: only sysctls the container's own namespaces hold, docker's list:
//!   `net.*` (its network namespace), `kernel.shm*`, `kernel.msg*`, `kernel.sem` and
//!   `fs.mqueue.*` (its IPC namespace). Any other would change the host's kernel, which a
//!   rootless user cannot and a container must not do; with `--network host` or `--ipc host`
//!   the namespace is the host's and its sysctls are refused too ([`Settings::check_namespaces`]).
//! - `--ulimit NAME=SOFT[:HARD]` (docker's names; -1 is unlimited) become the spec's rlimits.
//!   An unprivileged process may lower its hard limits but never raise them, so a hard limit
//!   above den's own is refused here, in one line, rather than failing inside the runtime.
//! - `--shm-size` (docker's units, default 64m) is the size of the container's /dev/shm tmpfs.
//! - `--init`: a small init as PID 1 that reaps zombies and forwards signals (see
//!   `runtime::engine`'s `DenExecutor`: den's own code in the container's first process).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::Diagnose;

/// docker's /dev/shm size when `--shm-size` is not given.
pub const DEFAULT_SHM_BYTES: u64 = 64 << 20;

/// The settings of one container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub init: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ulimits: Vec<Ulimit>,
    /// Bytes; None: [`DEFAULT_SHM_BYTES`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<u64>,
}

/// One `--ulimit`: the OCI rlimit type (`RLIMIT_NOFILE`) and its limits (u64::MAX: unlimited).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    /// docker's name (`nofile`).
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

/// The flags as given.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessFlags<'a> {
    pub init: bool,
    pub sysctl: &'a [String],
    pub ulimit: &'a [String],
    pub shm_size: Option<&'a str>,
}

/// Which namespace holds a sysctl.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SysctlNs {
    Network,
    Ipc,
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("invalid --sysctl {0:?}: not KEY=VALUE")]
    BadSysctl(String),
    #[error("sysctl {0:?} is not namespaced: it would change the host's kernel")]
    HostSysctl(String),
    #[error("sysctl {key:?} is not allowed with --{flag} host: that namespace is the host's")]
    SharedNamespace { key: String, flag: &'static str },
    #[error("invalid --ulimit {0:?}")]
    BadUlimit(String),
    #[error("--ulimit {name}: the hard limit {hard} is above your own ({own})")]
    AboveOwn {
        name: String,
        hard: String,
        own: String,
    },
    #[error("invalid --shm-size {0:?}")]
    BadShmSize(String),
    #[error("--shm-size is not allowed with --ipc host: /dev/shm is the host's")]
    ShmWithHostIpc,
}

impl Diagnose for ProcessError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            ProcessError::BadSysctl(_) => "write --sysctl net.ipv4.ip_unprivileged_port_start=80".into(),
            ProcessError::HostSysctl(_) => {
                "only net.*, kernel.shm*, kernel.msg*, kernel.sem and fs.mqueue.* are the container's own".into()
            }
            ProcessError::SharedNamespace { flag, .. } => format!("drop --{flag} host, or the --sysctl"),
            ProcessError::BadUlimit(_) => {
                "write --ulimit NAME=SOFT[:HARD] with one of docker's names (nofile, nproc, core, stack, memlock, ...) and numbers or -1".into()
            }
            ProcessError::AboveOwn { .. } => {
                "an unprivileged user cannot raise a hard limit: ask for at most your own (`ulimit -H -a`)".into()
            }
            ProcessError::BadShmSize(_) => "give a size above 0 in docker's units: 64m, 1g, 512k".into(),
            ProcessError::ShmWithHostIpc => "drop --ipc host, or --shm-size".into(),
        })
    }
}

/// docker's `--ulimit` names and their rlimits.
const RLIMITS: &[(&str, &str, libc::__rlimit_resource_t)] = &[
    ("as", "RLIMIT_AS", libc::RLIMIT_AS),
    ("core", "RLIMIT_CORE", libc::RLIMIT_CORE),
    ("cpu", "RLIMIT_CPU", libc::RLIMIT_CPU),
    ("data", "RLIMIT_DATA", libc::RLIMIT_DATA),
    ("fsize", "RLIMIT_FSIZE", libc::RLIMIT_FSIZE),
    ("locks", "RLIMIT_LOCKS", libc::RLIMIT_LOCKS),
    ("memlock", "RLIMIT_MEMLOCK", libc::RLIMIT_MEMLOCK),
    ("msgqueue", "RLIMIT_MSGQUEUE", libc::RLIMIT_MSGQUEUE),
    ("nice", "RLIMIT_NICE", libc::RLIMIT_NICE),
    ("nofile", "RLIMIT_NOFILE", libc::RLIMIT_NOFILE),
    ("nproc", "RLIMIT_NPROC", libc::RLIMIT_NPROC),
    ("rss", "RLIMIT_RSS", libc::RLIMIT_RSS),
    ("rtprio", "RLIMIT_RTPRIO", libc::RLIMIT_RTPRIO),
    ("rttime", "RLIMIT_RTTIME", libc::RLIMIT_RTTIME),
    ("sigpending", "RLIMIT_SIGPENDING", libc::RLIMIT_SIGPENDING),
    ("stack", "RLIMIT_STACK", libc::RLIMIT_STACK),
];

/// The namespace that holds sysctl `key`, or none (the host's kernel).
pub fn sysctl_namespace(key: &str) -> Option<SysctlNs> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if key.starts_with("net.") {
        Some(SysctlNs::Network)
    } else if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        Some(SysctlNs::Ipc)
    } else {
        None
    }
}

impl Settings {
    /// Check the flags. `own_hard` gives this process's hard limit of an rlimit (injected:
    /// tests give their own).
    pub fn parse(
        f: &ProcessFlags<'_>,
        own_hard: &dyn Fn(libc::__rlimit_resource_t) -> u64,
    ) -> Result<Settings, ProcessError> {
        let mut sysctls = BTreeMap::new();
        for s in f.sysctl {
            let (k, v) = s
                .split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| ProcessError::BadSysctl(s.clone()))?;
            if sysctl_namespace(k).is_none() {
                return Err(ProcessError::HostSysctl(k.into()));
            }
            sysctls.insert(k.to_string(), v.to_string());
        }
        let ulimits = f
            .ulimit
            .iter()
            .map(|u| parse_ulimit(u, own_hard))
            .collect::<Result<Vec<_>, _>>()?;
        let shm_size = f
            .shm_size
            .map(|s| {
                crate::config::logging::parse_size(s)
                    .filter(|n| *n > 0)
                    .map(|n| n as u64)
                    .ok_or_else(|| ProcessError::BadShmSize(s.into()))
            })
            .transpose()?;
        Ok(Settings {
            init: f.init,
            sysctls,
            ulimits,
            shm_size,
        })
    }

    /// Refuse what the host's namespaces make impossible: a sysctl of a namespace the
    /// container shares with the host, `--shm-size` with the host's IPC namespace.
    pub fn check_namespaces(&self, host_network: bool, host_ipc: bool) -> Result<(), ProcessError> {
        for k in self.sysctls.keys() {
            let flag = match sysctl_namespace(k) {
                Some(SysctlNs::Network) if host_network => "network",
                Some(SysctlNs::Ipc) if host_ipc => "ipc",
                _ => continue,
            };
            return Err(ProcessError::SharedNamespace {
                key: k.clone(),
                flag,
            });
        }
        if host_ipc && self.shm_size.is_some() {
            return Err(ProcessError::ShmWithHostIpc);
        }
        Ok(())
    }

    /// The spec's `process.rlimits`.
    pub fn rlimits(&self) -> Vec<serde_json::Value> {
        self.ulimits
            .iter()
            .filter_map(|u| {
                let (_, oci, _) = RLIMITS.iter().find(|(n, _, _)| *n == u.name)?;
                Some(serde_json::json!({"type": oci, "soft": u.soft, "hard": u.hard}))
            })
            .collect()
    }

    /// /dev/shm's size in bytes.
    pub fn shm_bytes(&self) -> u64 {
        self.shm_size.unwrap_or(DEFAULT_SHM_BYTES)
    }

    pub fn is_default(&self) -> bool {
        *self == Settings::default()
    }
}

/// One `--ulimit NAME=SOFT[:HARD]`.
fn parse_ulimit(
    s: &str,
    own_hard: &dyn Fn(libc::__rlimit_resource_t) -> u64,
) -> Result<Ulimit, ProcessError> {
    let bad = || ProcessError::BadUlimit(s.into());
    let (name, limits) = s.split_once('=').ok_or_else(bad)?;
    let (_, _, resource) = RLIMITS
        .iter()
        .find(|(n, _, _)| *n == name)
        .ok_or_else(bad)?;
    let number = |t: &str| match t.trim() {
        "-1" | "unlimited" => Some(u64::MAX),
        t => t.parse::<u64>().ok(),
    };
    let (soft, hard) = match limits.split_once(':') {
        Some((s, h)) => (number(s).ok_or_else(bad)?, number(h).ok_or_else(bad)?),
        None => {
            let n = number(limits).ok_or_else(bad)?;
            (n, n)
        }
    };
    if soft > hard {
        return Err(bad());
    }
    let own = own_hard(*resource);
    if hard > own {
        let shown = |n: u64| {
            if n == u64::MAX {
                "unlimited".to_string()
            } else {
                n.to_string()
            }
        };
        return Err(ProcessError::AboveOwn {
            name: name.into(),
            hard: shown(hard),
            own: shown(own),
        });
    }
    Ok(Ulimit {
        name: name.into(),
        soft,
        hard,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(
        sysctl: &[&str],
        ulimit: &[&str],
        shm: Option<&str>,
    ) -> Result<Settings, ProcessError> {
        let sysctl: Vec<String> = sysctl.iter().map(|s| s.to_string()).collect();
        let ulimit: Vec<String> = ulimit.iter().map(|s| s.to_string()).collect();
        Settings::parse(
            &ProcessFlags {
                init: false,
                sysctl: &sysctl,
                ulimit: &ulimit,
                shm_size: shm,
            },
            &|_| 4096,
        )
    }

    #[test]
    fn sysctls_only_of_the_containers_namespaces() {
        let s = parse(
            &[
                "net.ipv4.ip_unprivileged_port_start=80",
                "kernel.shmmax=1024",
                "fs.mqueue.msg_max=20",
            ],
            &[],
            None,
        )
        .expect("namespaced");
        assert_eq!(s.sysctls.len(), 3);
        assert!(
            matches!(parse(&["kernel.pid_max=10"], &[], None), Err(ProcessError::HostSysctl(k)) if k == "kernel.pid_max")
        );
        assert!(matches!(
            parse(&["vm.swappiness=1"], &[], None),
            Err(ProcessError::HostSysctl(_))
        ));
        assert!(matches!(
            parse(&["net.core.somaxconn"], &[], None),
            Err(ProcessError::BadSysctl(_))
        ));
        assert!(matches!(
            s.check_namespaces(true, false),
            Err(ProcessError::SharedNamespace {
                flag: "network",
                ..
            })
        ));
        assert!(matches!(
            s.check_namespaces(false, true),
            Err(ProcessError::SharedNamespace { flag: "ipc", .. })
        ));
        assert!(s.check_namespaces(false, false).is_ok());
    }

    #[test]
    fn ulimits_as_docker_writes_them_and_never_above_ones_own() {
        let s = parse(&[], &["nofile=100:200", "core=0", "nproc=-1:-1"], None);
        assert!(
            matches!(s, Err(ProcessError::AboveOwn { ref name, .. }) if name == "nproc"),
            "{s:?}"
        );
        let s = parse(&[], &["nofile=100:200", "core=0"], None).expect("valid");
        assert_eq!(
            s.rlimits(),
            vec![
                serde_json::json!({"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}),
                serde_json::json!({"type": "RLIMIT_CORE", "soft": 0, "hard": 0}),
            ]
        );
        for bad in [
            "nofile",
            "nofiles=1",
            "nofile=2:1",
            "nofile=x",
            "nofile=1:2:3",
        ] {
            assert!(
                matches!(parse(&[], &[bad], None), Err(ProcessError::BadUlimit(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            parse(&[], &["nofile=10:5000"], None),
            Err(ProcessError::AboveOwn { .. })
        ));
    }

    #[test]
    fn shm_size_in_docker_units() {
        assert_eq!(
            parse(&[], &[], Some("1g")).expect("1g").shm_bytes(),
            1 << 30
        );
        assert_eq!(
            parse(&[], &[], None).expect("default").shm_bytes(),
            64 << 20
        );
        for bad in ["0", "-1m", "lots"] {
            assert!(
                matches!(parse(&[], &[], Some(bad)), Err(ProcessError::BadShmSize(_))),
                "{bad}"
            );
        }
        let s = parse(&[], &[], Some("128m")).expect("128m");
        assert!(matches!(
            s.check_namespaces(false, true),
            Err(ProcessError::ShmWithHostIpc)
        ));
    }
}
