//! The OCI runtime spec den hands to the engine: docker's defaults, shaped for a rootless
//! runtime running inside den's user namespace.
//!
//! The spec makes **no** user namespace: den already made it, and libcontainer, finding itself
//! inside one, runs in rootless mode. (A keep-id container's spec names one to join, which den
//! made and mapped: see [`super::keepid`].) It has no `linux.resources` (even `{}` makes libcontainer
//! want the devices cgroup controller) and no cgroup namespace: den runs without cgroups where
//! none are delegated. `/sys` is bound read-only from den's view of it (with the host's cgroup
//! hierarchies hidden) because sysfs cannot be mounted for a network namespace den does not own.
//!
//! What the container may ask of the kernel (capabilities, seccomp, no-new-privileges) comes
//! from [`crate::security`]; `noNewPrivileges` is left out rather than written `false`:
//! libcontainer loads the seccomp filter early, while the init still holds CAP_SYS_ADMIN, only
//! when the field is absent, and a filter loaded after the capabilities are dropped needs
//! no-new-privileges.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde_json::{Value, json};

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
    /// Join this network namespace (another container's: `--network container:NAME`).
    pub net_ns: Option<PathBuf>,
    pub read_only: bool,
    /// The id mapping has more than one id (so gid 5 for /dev/pts exists).
    pub many_ids: bool,
    pub binds: Vec<Bind>,
    /// The user's mounts (`-v`, `--mount`, `--tmpfs`), after den's own.
    pub mounts: Vec<SpecMount>,
    /// The container's capabilities (bounding, effective and permitted).
    pub caps: Vec<&'static str>,
    pub no_new_privileges: bool,
    /// The OCI `linux.seccomp` object, or none.
    pub seccomp: Option<Value>,
    /// `--privileged`: nothing under /proc and /sys is masked or made read-only.
    pub privileged: bool,
    /// `--uts host`: no UTS namespace, and so no host name to set.
    pub host_uts: bool,
    /// `--pid host`: no PID namespace; `/proc` is the host's, bound (a new proc mount for the
    /// host's PID namespace needs privileges over it that den's user namespace lacks).
    pub host_pid: bool,
    /// `--ipc host`: no IPC namespace; `/dev/shm` and (where the host has one) `/dev/mqueue`
    /// are the host's, bound, as docker binds them (an mqueue mount for the host's IPC
    /// namespace needs the same privileges).
    pub host_ipc: bool,
    /// A user namespace to join (`--userns keep-id`'s, see [`super::keepid`]); none: the
    /// container stays in den's.
    pub user_ns: Option<PathBuf>,
    /// `--annotation`s (the spec's `annotations`, absent when there are none).
    pub annotations: &'a std::collections::BTreeMap<String, String>,
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
    pub caps: &'a [&'a str],
    pub no_new_privileges: bool,
}

/// The spec's `process` object.
pub fn process(p: &Process<'_>) -> Value {
    let mut v = json!({
        "terminal": p.terminal,
        "user": { "uid": p.uid, "gid": p.gid, "additionalGids": p.additional_gids },
        "args": p.args,
        "env": p.env,
        "cwd": p.cwd,
        "capabilities": { "bounding": p.caps, "effective": p.caps, "permitted": p.caps },
    });
    // Absent, not false: see the module doc.
    if p.no_new_privileges {
        v["noNewPrivileges"] = json!(true);
    }
    v
}

/// Build the spec.
pub fn build(i: &SpecInput<'_>) -> Spec {
    let mounts = mounts(i);
    let namespaces = namespaces(i);
    let mut spec = json!({
        "ociVersion": "1.0.2",
        "process": process(&Process {
            terminal: i.terminal,
            uid: i.uid,
            gid: i.gid,
            additional_gids: &i.additional_gids,
            args: i.args,
            env: i.env,
            cwd: i.cwd,
            caps: &i.caps,
            no_new_privileges: i.no_new_privileges,
        }),
        "root": { "path": i.rootfs, "readonly": i.read_only },
        "hostname": i.hostname,
        "mounts": mounts,
        "linux": { "namespaces": namespaces }
    });
    if !i.privileged {
        spec["linux"]["maskedPaths"] = json!(MASKED);
        spec["linux"]["readonlyPaths"] = json!(READONLY);
    }
    if let Some(s) = &i.seccomp {
        spec["linux"]["seccomp"] = s.clone();
    }
    if !i.annotations.is_empty() {
        spec["annotations"] = json!(i.annotations);
    }
    if i.host_uts {
        // A runtime refuses a host name without a UTS namespace of the container's own.
        if let Some(o) = spec.as_object_mut() {
            o.remove("hostname");
        }
    }
    serde_json::from_value(spec).expect("den builds a valid runtime spec")
}

/// The kernel filesystems every container gets (`/proc`, `/dev` and its children, `/sys`), then
/// the binds and other mounts asked for, in order.
fn mounts(i: &SpecInput<'_>) -> Vec<Value> {
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
    let host_bind = &["rbind", "rprivate", "nosuid", "noexec", "nodev"];
    let mut mounts = vec![
        if i.host_pid {
            mount("/proc", "none", "/proc", host_bind)
        } else {
            mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])
        },
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount("/dev/pts", "devpts", "devpts", &pts_opts),
    ];
    if i.host_ipc {
        mounts.push(mount("/dev/shm", "none", "/dev/shm", host_bind));
        if Path::new("/dev/mqueue").is_dir() {
            mounts.push(mount("/dev/mqueue", "none", "/dev/mqueue", host_bind));
        }
    } else {
        mounts.push(mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ));
        mounts.push(mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ));
    }
    mounts.push(mount(
        "/sys",
        "none",
        "/sys",
        &["rbind", "nosuid", "noexec", "nodev", "ro"],
    ));
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
    mounts
}

/// The namespaces: always mount; pid, ipc, uts and network unless the host's is shared.
fn namespaces(i: &SpecInput<'_>) -> Vec<Value> {
    // The user namespace first: the others are made inside it.
    let mut namespaces: Vec<Value> = i
        .user_ns
        .iter()
        .map(|p| json!({"type": "user", "path": p}))
        .collect();
    namespaces.push(json!({"type": "mount"}));
    if !i.host_pid {
        namespaces.push(json!({"type": "pid"}));
    }
    if !i.host_ipc {
        namespaces.push(json!({"type": "ipc"}));
    }
    if !i.host_uts {
        namespaces.push(json!({"type": "uts"}));
    }
    match (&i.net_ns, i.host_network) {
        (Some(p), _) => namespaces.push(json!({"type": "network", "path": p})),
        (None, false) => namespaces.push(json!({"type": "network"})),
        (None, true) => {}
    }
    namespaces
}

/// What a process `exec` adds to a running container must get of the container's settings,
/// read from the spec its init was started with.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecSecurity {
    pub caps: Vec<String>,
    pub no_new_privileges: bool,
    /// The OCI `linux.seccomp` object, or none.
    pub seccomp: Option<Value>,
}

/// [`ExecSecurity`] from a container's `config.json` text.
pub fn exec_security(config: &str) -> Result<ExecSecurity, serde_json::Error> {
    let v: Value = serde_json::from_str(config)?;
    let p = &v["process"];
    Ok(ExecSecurity {
        caps: serde_json::from_value(p["capabilities"]["bounding"].clone()).unwrap_or_default(),
        no_new_privileges: p["noNewPrivileges"].as_bool().unwrap_or(false),
        seccomp: Some(v["linux"]["seccomp"].clone()).filter(|s| !s.is_null()),
    })
}

/// Devices libcontainer makes in every container's /dev (binding the host's over them would
/// change nothing), and directories of other mounts.
const OWN_DEVICES: &[&str] = &[
    "null", "zero", "full", "random", "urandom", "tty", "console", "ptmx", "pts", "shm", "mqueue",
];

/// At most this many devices are bound (a host has a few hundred).
const MAX_DEVICES: usize = 4096;

/// `--privileged`'s devices: the host's device nodes under `dev` that this process may open
/// (read or write), as rootless podman binds them. A device only root may open stays out; one
/// the user may open is theirs to use anyway.
pub fn host_devices(dev: &Path) -> Vec<Bind> {
    use std::os::unix::fs::FileTypeExt;
    let may_open = |p: &Path| {
        use nix::unistd::{AccessFlags, access};
        access(p, AccessFlags::R_OK).is_ok() || access(p, AccessFlags::W_OK).is_ok()
    };
    let mut out = Vec::new();
    // (directory on the host, its path in the container)
    let mut dirs = vec![(dev.to_path_buf(), "/dev".to_string())];
    while let Some((dir, inside)) = dirs.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<_> = rd.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || (inside == "/dev" && OWN_DEVICES.contains(&name.as_str())) {
                continue;
            }
            // The entry itself: a symlink is not followed.
            let Ok(ft) = e.file_type() else { continue };
            let dest = format!("{inside}/{name}");
            if ft.is_dir() {
                dirs.push((e.path(), dest));
            } else if (ft.is_char_device() || ft.is_block_device())
                && out.len() < MAX_DEVICES
                && may_open(&e.path())
            {
                out.push(Bind {
                    source: e.path(),
                    destination: dest,
                    read_only: false,
                });
            }
        }
    }
    out
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
            net_ns: None,
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
            caps: vec!["CAP_CHOWN", "CAP_KILL"],
            no_new_privileges: false,
            seccomp: None,
            privileged: false,
            annotations: &NO_ANNOTATIONS,
            host_uts: false,
            host_pid: false,
            host_ipc: false,
            user_ns: None,
        }
    }

    static NO_ANNOTATIONS: std::collections::BTreeMap<String, String> =
        std::collections::BTreeMap::new();

    #[test]
    fn security_settings_reach_the_spec() {
        let args = vec!["sh".to_string()];
        let mut i = input(Path::new("/r"), &args, &[]);
        let s = build(&i);
        let p = s.process().as_ref().unwrap();
        assert_eq!(p.no_new_privileges(), None, "absent, not false");
        let caps = p.capabilities().as_ref().unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 2);
        let linux = s.linux().as_ref().unwrap();
        assert!(linux.seccomp().is_none());
        assert!(
            linux
                .masked_paths()
                .as_ref()
                .unwrap()
                .contains(&"/proc/kcore".to_string())
        );

        i.no_new_privileges = true;
        i.privileged = true;
        i.seccomp = Some(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["keyctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}));
        let s = build(&i);
        assert_eq!(
            s.process().as_ref().unwrap().no_new_privileges(),
            Some(true)
        );
        let linux = s.linux().as_ref().unwrap();
        assert!(linux.masked_paths().is_none() && linux.readonly_paths().is_none());
        assert_eq!(
            linux
                .seccomp()
                .as_ref()
                .unwrap()
                .syscalls()
                .as_ref()
                .unwrap()
                .len(),
            1
        );

        // `exec` reads back what the init got.
        let text = serde_json::to_string(&s).unwrap();
        let mut e = exec_security(&text).unwrap();
        e.caps.sort();
        assert_eq!(e.caps, ["CAP_CHOWN", "CAP_KILL"]);
        assert!(e.no_new_privileges);
        assert_eq!(e.seccomp.unwrap()["syscalls"][0]["names"][0], "keyctl");
        i.seccomp = None;
        i.no_new_privileges = false;
        let e = exec_security(&serde_json::to_string(&build(&i)).unwrap()).unwrap();
        assert!(e.seccomp.is_none() && !e.no_new_privileges);
    }

    #[test]
    fn privileged_devices_are_the_hosts_this_process_may_open() {
        let devs = host_devices(Path::new("/dev"));
        for d in &devs {
            use std::os::unix::fs::FileTypeExt;
            let ft = std::fs::symlink_metadata(&d.source).unwrap().file_type();
            assert!(ft.is_char_device() || ft.is_block_device(), "{d:?}");
            assert_eq!(Path::new(&d.destination), d.source, "same path inside");
        }
        // libcontainer's own devices and the pts mount are not bound over.
        for own in ["/dev/null", "/dev/tty", "/dev/ptmx"] {
            assert!(!devs.iter().any(|d| d.destination == own));
        }
        assert!(!devs.iter().any(|d| d.destination.starts_with("/dev/pts/")));
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("file"), "x").unwrap();
        std::os::unix::fs::symlink("/dev/null", t.path().join("link")).unwrap();
        assert!(
            host_devices(t.path()).is_empty(),
            "files and symlinks are not devices"
        );
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
    fn host_uts_drops_the_namespace_and_the_host_name() {
        let args = vec!["sh".to_string()];
        let mut i = input(Path::new("/r"), &args, &[]);
        i.host_uts = true;
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
        assert!(!kinds.iter().any(|k| k.contains("Uts")), "{kinds:?}");
        assert!(kinds.iter().any(|k| k.contains("Network")));
        assert!(s.hostname().is_none());
        let mut annotations = std::collections::BTreeMap::new();
        annotations.insert("k".to_string(), "v".to_string());
        i.annotations = &annotations;
        i.host_uts = false;
        let s = build(&i);
        assert_eq!(s.annotations().as_ref().unwrap()["k"], "v");
        assert_eq!(s.hostname().as_deref(), Some("abc"));
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
    fn host_pid_and_ipc_drop_the_namespaces_and_bind_the_hosts_files() {
        let args = vec!["sh".to_string()];
        let mut i = input(Path::new("/r"), &args, &[]);
        let kinds = |s: &Spec| -> Vec<String> {
            s.linux()
                .as_ref()
                .unwrap()
                .namespaces()
                .as_ref()
                .unwrap()
                .iter()
                .map(|n| format!("{:?}", n.typ()))
                .collect()
        };
        let mount_of = |s: &Spec, dest: &str| {
            s.mounts()
                .as_ref()
                .unwrap()
                .iter()
                .find(|m| m.destination() == Path::new(dest))
                .map(|m| (m.typ().clone().unwrap_or_default(), m.source().clone()))
        };
        let own = build(&i);
        assert!(kinds(&own).iter().any(|k| k.contains("Pid")));
        assert!(kinds(&own).iter().any(|k| k.contains("Ipc")));
        assert_eq!(mount_of(&own, "/proc").unwrap().0, "proc");
        assert_eq!(mount_of(&own, "/dev/shm").unwrap().0, "tmpfs");
        i.host_pid = true;
        i.host_ipc = true;
        let host = build(&i);
        assert!(
            !kinds(&host)
                .iter()
                .any(|k| k.contains("Pid") || k.contains("Ipc"))
        );
        assert!(kinds(&host).iter().any(|k| k.contains("Mount")));
        assert_eq!(
            mount_of(&host, "/proc").unwrap(),
            ("none".to_string(), Some("/proc".into()))
        );
        assert_eq!(
            mount_of(&host, "/dev/shm").unwrap(),
            ("none".to_string(), Some("/dev/shm".into()))
        );
        // The host's mqueue where it has one; never a new mqueue mount.
        assert_eq!(
            mount_of(&host, "/dev/mqueue").is_some(),
            Path::new("/dev/mqueue").is_dir()
        );
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
