//! The OCI runtime spec den hands to the engine: docker's defaults, shaped for a rootless
//! runtime running inside den's user namespace.
//!
//! The spec has **no** user namespace: den already made it, and libcontainer, finding itself
//! inside one, runs in rootless mode. It has no `linux.resources` (even `{}` makes libcontainer
//! want the devices cgroup controller) and no cgroup namespace: den runs without cgroups where
//! none are delegated. `/sys` is bound read-only from den's view of it (with the host's cgroup
//! hierarchies hidden) because sysfs cannot be mounted for a network namespace den does not own.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde_json::{Value, json};

/// docker's default capability set for a container's root.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

const MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// A bind mount into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub source: PathBuf,
    pub destination: String,
    pub read_only: bool,
}

/// Everything the spec is made from.
#[derive(Debug, Clone)]
pub struct SpecInput<'a> {
    pub rootfs: &'a Path,
    pub args: &'a [String],
    pub env: &'a [String],
    pub cwd: &'a str,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub hostname: &'a str,
    pub terminal: bool,
    /// Share the host's network namespace (`--network host`).
    pub host_network: bool,
    pub read_only: bool,
    /// The id mapping has more than one id (so gid 5 for /dev/pts exists).
    pub many_ids: bool,
    pub binds: Vec<Bind>,
    /// The user's mounts (`-v`, `--mount`, `--tmpfs`), after den's own.
    pub mounts: Vec<SpecMount>,
}

/// A mount of any kind, as the spec has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecMount {
    pub destination: String,
    /// `none` for binds, `tmpfs`, ...
    pub kind: String,
    pub source: PathBuf,
    pub options: Vec<String>,
}

fn mount(dest: &str, kind: &str, source: &str, options: &[&str]) -> Value {
    json!({ "destination": dest, "type": kind, "source": source, "options": options })
}

/// A process of the container: the init, or one `exec` adds.
pub struct Process<'a> {
    pub terminal: bool,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: &'a [u32],
    pub args: &'a [String],
    pub env: &'a [String],
    pub cwd: &'a str,
}

/// The spec's `process` object, with docker's capabilities for the container's root.
pub fn process(p: &Process<'_>) -> Value {
    let caps = DEFAULT_CAPS;
    json!({
        "terminal": p.terminal,
        "user": { "uid": p.uid, "gid": p.gid, "additionalGids": p.additional_gids },
        "args": p.args,
        "env": p.env,
        "cwd": p.cwd,
        "capabilities": { "bounding": caps, "effective": caps, "permitted": caps },
        "noNewPrivileges": false
    })
}

/// Build the spec.
pub fn build(i: &SpecInput<'_>) -> Spec {
    let pts_opts: Vec<&str> = if i.many_ids {
        vec![
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5",
        ]
    } else {
        vec![
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
        ]
    };
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount("/dev/pts", "devpts", "devpts", &pts_opts),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/sys",
            "none",
            "/sys",
            &["rbind", "nosuid", "noexec", "nodev", "ro"],
        ),
    ];
    for b in &i.binds {
        let mut opts = vec!["rbind", "rprivate"];
        if b.read_only {
            opts.push("ro");
        }
        mounts.push(json!({ "destination": b.destination, "type": "none", "source": b.source, "options": opts }));
    }
    for m in &i.mounts {
        mounts.push(json!({ "destination": m.destination, "type": m.kind, "source": m.source, "options": m.options }));
    }
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "mount"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
    ];
    if !i.host_network {
        namespaces.push(json!({"type": "network"}));
    }
    let spec = json!({
        "ociVersion": "1.0.2",
        "process": process(&Process {
            terminal: i.terminal,
            uid: i.uid,
            gid: i.gid,
            additional_gids: &i.additional_gids,
            args: i.args,
            env: i.env,
            cwd: i.cwd,
        }),
        "root": { "path": i.rootfs, "readonly": i.read_only },
        "hostname": i.hostname,
        "mounts": mounts,
        "linux": {
            "namespaces": namespaces,
            "maskedPaths": MASKED,
            "readonlyPaths": READONLY
        }
    });
    serde_json::from_value(spec).expect("den builds a valid runtime spec")
}

/// The environment of a container: the image's, then the user's, with PATH and HOSTNAME and
/// TERM as docker sets them. Later entries win, order of first appearance is kept.
pub fn merge_env(
    image: &[String],
    user: &[String],
    hostname: &str,
    terminal: bool,
    home: Option<&str>,
) -> Vec<String> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut set = |kv: &str| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match out.iter_mut().find(|(ok, _)| ok == k) {
            Some(e) => e.1 = v.into(),
            None => out.push((k.into(), v.into())),
        }
    };
    set("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    set(&format!("HOSTNAME={hostname}"));
    for e in image {
        set(e);
    }
    if terminal {
        set("TERM=xterm");
    }
    for e in user {
        set(e);
    }
    if let Some(h) = home
        && !out.iter().any(|(k, _)| k == "HOME")
    {
        out.push(("HOME".into(), h.into()));
    }
    out.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(rootfs: &'a Path, args: &'a [String], env: &'a [String]) -> SpecInput<'a> {
        SpecInput {
            rootfs,
            args,
            env,
            cwd: "/",
            uid: 0,
            gid: 0,
            additional_gids: vec![],
            hostname: "abc",
            terminal: false,
            host_network: false,
            read_only: false,
            many_ids: true,
            binds: vec![Bind {
                source: "/x/hosts".into(),
                destination: "/etc/hosts".into(),
                read_only: false,
            }],
            mounts: vec![SpecMount {
                destination: "/scratch".into(),
                kind: "tmpfs".into(),
                source: "tmpfs".into(),
                options: vec!["nosuid".into()],
            }],
        }
    }

    #[test]
    fn spec_has_no_user_namespace_and_no_resources() {
        let args = vec!["echo".to_string(), "hi".to_string()];
        let env = vec!["PATH=/bin".to_string()];
        let s = build(&input(Path::new("/r"), &args, &env));
        let linux = s.linux().as_ref().unwrap();
        let kinds: Vec<String> = linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| format!("{:?}", n.typ()))
            .collect();
        assert!(!kinds.iter().any(|k| k.contains("User")), "{kinds:?}");
        assert!(kinds.iter().any(|k| k.contains("Network")));
        assert!(linux.resources().is_none());
        assert!(linux.uid_mappings().is_none());
        let dests: Vec<String> = s
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| m.destination().display().to_string())
            .collect();
        assert!(dests.contains(&"/etc/hosts".to_string()));
        assert!(dests.contains(&"/dev/pts".to_string()));
        assert_eq!(
            s.process().as_ref().unwrap().args().as_ref().unwrap(),
            &args
        );
    }

    #[test]
    fn host_network_and_single_id_adjust_the_spec() {
        let args = vec!["sh".to_string()];
        let mut i = input(Path::new("/r"), &args, &[]);
        i.host_network = true;
        i.many_ids = false;
        let s = build(&i);
        let kinds: Vec<String> = s
            .linux()
            .as_ref()
            .unwrap()
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| format!("{:?}", n.typ()))
            .collect();
        assert!(!kinds.iter().any(|k| k.contains("Network")));
        let pts = s
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.destination() == Path::new("/dev/pts"))
            .unwrap();
        assert!(!pts.options().as_ref().unwrap().iter().any(|o| o == "gid=5"));
    }

    #[test]
    fn env_merges_like_docker() {
        let env = merge_env(
            &["PATH=/img/bin".into(), "A=1".into()],
            &["A=2".into(), "B=3".into()],
            "h",
            true,
            Some("/root"),
        );
        assert_eq!(
            env,
            [
                "PATH=/img/bin",
                "HOSTNAME=h",
                "A=2",
                "TERM=xterm",
                "B=3",
                "HOME=/root"
            ]
        );
    }
}
