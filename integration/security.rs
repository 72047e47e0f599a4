//! The container's reach into the kernel: a session keyring of its own, docker's seccomp policy
//! by default, and the flags that change what a container may do (`--security-opt`,
//! `--cap-add`, `--cap-drop`, `--privileged`), for `run`, `create` and `exec`.
//!
//! busybox has no keyctl tool and no C library, so a small static probe (fixtures/secprobe.c,
//! built here with `cc -static`) is bind-mounted into the container where a test needs one.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::sandbox::{Sandbox, busybox, env, run};

/// The probe, built once per test process.
fn probe() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let out = env().tmp.join("secprobe");
        let mut c = Command::new("cc");
        c.args(["-static", "-O2", "-o"])
            .arg(&out)
            .arg(env().fixtures.join("secprobe.c"));
        let r = run(c);
        assert_eq!(
            r.code, 0,
            "cc -static secprobe.c (needs gcc and libc6-dev): {}",
            r.stderr
        );
        out
    })
}

fn probe_mount() -> String {
    format!("{}:/secprobe:ro", probe().display())
}

/// The value of `field` in a /proc/PID/status text.
fn status(text: &str, field: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(field).and_then(|v| v.strip_prefix(':')))
        .unwrap_or_else(|| panic!("no {field} in {text}"))
        .trim()
        .to_string()
}

/// The container's /proc/self/status with `flags` given to `den run`.
fn proc_status(sb: &Sandbox, flags: &[&str]) -> String {
    let img = busybox();
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[&img, "cat", "/proc/self/status"]);
    sb.den(&args).ok()
}

/// `key=value` pairs of a probe's output line.
fn fields(line: &str) -> std::collections::HashMap<String, i64> {
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.parse().expect("a number")))
        .collect()
}

/// Every capability this kernel knows, as CapEff shows it.
fn all_caps() -> String {
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    format!("{:016x}", (1u64 << (last + 1)) - 1)
}

const ENOKEY: i64 = 126;
const EPERM: i64 = 1;

#[test]
fn a_container_has_its_own_session_keyring() {
    let sb = Sandbox::new();
    sb.den(&["pull", "-q", &busybox()]).ok();
    let p = probe().display().to_string();
    // The probe sees a key put into the session keyring it was started with: the check below
    // can tell a shared keyring from a new one.
    let host = sb
        .sh(&format!(
            "{p} seed den-test-ticket {p} keys den-test-ticket"
        ))
        .ok();
    let mut lines = host.lines();
    let seeded = fields(lines.next().unwrap());
    let seen = fields(lines.next().unwrap());
    assert_eq!(seen["session"], seeded["session"], "{host}");
    assert_eq!(seen["search"], seeded["key"], "{host}");

    // A container started from that session has a keyring of its own, without the key. (With
    // the default filter keyctl is refused altogether; unconfined shows the keyring itself.)
    let mount = probe_mount();
    let img = busybox();
    let out = sb
        .sh(&format!(
            "{p} seed den-test-ticket den run --rm --security-opt seccomp=unconfined -v {mount} {img} /secprobe keys den-test-ticket"
        ))
        .ok();
    let mut lines = out.lines();
    let seeded = fields(lines.next().unwrap());
    let inside = fields(lines.next().unwrap());
    assert!(inside["session"] > 0, "{out}");
    assert_ne!(inside["session"], seeded["session"], "{out}");
    assert_eq!(
        inside["search"], -ENOKEY,
        "the user's key is out of reach: {out}"
    );

    // So does a process `exec` adds, and a detached container's.
    let out = sb
        .sh(&format!(
            "{p} seed den-test-ticket den run -d --name k --security-opt seccomp=unconfined -v {mount} {img} sleep 60"
        ))
        .ok();
    let seeded = fields(out.lines().next().unwrap());
    let out = sb
        .sh(&format!(
            "{p} seed den-test-ticket den exec k /secprobe keys den-test-ticket"
        ))
        .ok();
    let mut lines = out.lines();
    let exec_seeded = fields(lines.next().unwrap());
    let exec_inside = fields(lines.next().unwrap());
    assert!(exec_inside["session"] > 0, "{out}");
    assert_ne!(exec_inside["session"], exec_seeded["session"], "{out}");
    assert_ne!(exec_inside["session"], seeded["session"], "{out}");
    assert_eq!(exec_inside["search"], -ENOKEY, "{out}");
    sb.den(&["rm", "-f", "k"]).ok();

    // By default keyctl itself is refused, as docker's profile does.
    let out = sb
        .den(&["run", "--rm", "-v", &mount, &img, "/secprobe", "keys", "x"])
        .ok();
    assert_eq!(fields(&out)["session"], -EPERM, "{out}");
}

#[test]
fn seccomp_is_on_by_default_with_dockers_policy() {
    let sb = Sandbox::new();
    let img = busybox();
    sb.den(&["pull", "-q", &img]).ok();
    assert_eq!(status(&proc_status(&sb, &[]), "Seccomp"), "2");

    // Namespaces: refused by the filter (no capability is needed for a user namespace).
    let out = sb.den(&["run", "--rm", &img, "unshare", "-U", "true"]);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("Operation not permitted"),
        "{}",
        out.stderr
    );
    sb.den(&[
        "run",
        "--rm",
        "--security-opt",
        "seccomp=unconfined",
        &img,
        "unshare",
        "-U",
        "true",
    ])
    .ok();

    // personality: docker's five values only (0x8 is linux32's; 0x40000 turns off ASLR).
    let mount = probe_mount();
    let pers = |flags: &[&str], v: &str| {
        let mut args = vec!["run", "--rm", "-v", &mount];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[&img, "/secprobe", "personality", v]);
        fields(&sb.den(&args).ok())["personality"]
    };
    assert_eq!(pers(&[], "0x40000"), -EPERM);
    assert!(pers(&[], "0x8") >= 0);
    assert!(pers(&[], "ffffffff") >= 0);
    assert!(pers(&["--security-opt", "seccomp=unconfined"], "0x40000") >= 0);

    // The mount family comes back with CAP_SYS_ADMIN, as in docker.
    let script = "mkdir -p /m && mount -t tmpfs none /m && echo mounted";
    let out = sb.den(&["run", "--rm", &img, "sh", "-c", script]);
    assert_ne!(out.code, 0, "{}", out.out());
    assert_eq!(
        sb.den(&[
            "run",
            "--rm",
            "--cap-add",
            "SYS_ADMIN",
            &img,
            "sh",
            "-c",
            script
        ])
        .ok(),
        "mounted\n"
    );

    // A process `exec` adds is filtered too.
    sb.den(&["run", "-d", "--name", "f", &img, "sleep", "60"])
        .ok();
    let st = sb.den(&["exec", "f", "cat", "/proc/self/status"]).ok();
    assert_eq!(status(&st, "Seccomp"), "2");
    let out = sb.den(&["exec", "f", "unshare", "-U", "true"]);
    assert!(
        out.stderr.contains("Operation not permitted"),
        "{}",
        out.stderr
    );
    sb.den(&["rm", "-f", "f"]).ok();
}

#[test]
fn seccomp_unconfined_and_profile_files() {
    let sb = Sandbox::new();
    let img = busybox();
    sb.den(&["pull", "-q", &img]).ok();
    let st = proc_status(&sb, &["--security-opt", "seccomp=unconfined"]);
    assert_eq!(status(&st, "Seccomp"), "0");

    // A profile of one's own: docker's format, refusing mkdir with EOPNOTSUPP.
    let profile = sb.dir.join("no-mkdir.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let out = sb.den(&["run", "--rm", "--security-opt", &opt, &img, "mkdir", "/x"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("not supported"), "{}", out.stderr);
    // The profile was read at create: the container keeps it when the file changes.
    sb.den(&[
        "create",
        "--name",
        "p",
        "--security-opt",
        &opt,
        &img,
        "sh",
        "-c",
        "mkdir /y 2>&1 || echo refused",
    ])
    .ok();
    std::fs::write(&profile, "garbage").unwrap();
    let out = sb.den(&["start", "-a", "p"]).ok();
    assert!(
        out.contains("not supported") && out.contains("refused"),
        "{out}"
    );

    // A bad profile, a missing one, an unknown option: one line naming it, nothing created.
    let before = sb.store_listing();
    let opt = format!("seccomp={}", profile.display());
    sb.den(&["run", "--rm", "--security-opt", &opt, &img, "true"])
        .fails_with(125, "no-mkdir.json");
    let missing = format!("seccomp={}", sb.dir.join("missing.json").display());
    sb.den(&["run", "--rm", "--security-opt", &missing, &img, "true"])
        .fails_with(125, "missing.json");
    sb.den(&[
        "run",
        "--rm",
        "--security-opt",
        "apparmor=docker-default",
        &img,
        "true",
    ])
    .fails_with(125, "apparmor=docker-default");
    sb.den(&["create", "--cap-add", "FLY", &img, "true"])
        .fails_with(125, "FLY");
    assert_eq!(sb.store_listing(), before);
}

#[test]
fn capabilities_follow_cap_add_and_cap_drop() {
    let sb = Sandbox::new();
    let img = busybox();
    sb.den(&["pull", "-q", &img]).ok();
    let eff = |flags: &[&str]| status(&proc_status(&sb, flags), "CapEff");
    assert_eq!(eff(&[]), "00000000a80425fb", "docker's default set");
    assert_eq!(eff(&["--cap-drop", "CHOWN"]), "00000000a80425fa");
    assert_eq!(eff(&["--cap-add", "cap_net_admin"]), "00000000a80435fb");
    assert_eq!(eff(&["--cap-drop", "ALL"]), "0000000000000000");
    assert_eq!(
        eff(&["--cap-drop", "ALL", "--cap-add", "KILL"]),
        "0000000000000020"
    );
    assert_eq!(eff(&["--cap-add", "ALL"]), all_caps());
    let bnd = status(&proc_status(&sb, &["--cap-drop", "ALL"]), "CapBnd");
    assert_eq!(bnd, "0000000000000000");

    // `exec` gets the container's capabilities, not the defaults.
    sb.den(&[
        "run",
        "-d",
        "--name",
        "c",
        "--cap-drop",
        "ALL",
        &img,
        "sleep",
        "60",
    ])
    .ok();
    let st = sb.den(&["exec", "c", "cat", "/proc/self/status"]).ok();
    assert_eq!(status(&st, "CapEff"), "0000000000000000");
    assert_eq!(status(&st, "CapBnd"), "0000000000000000");
    sb.den(&["rm", "-f", "c"]).ok();
}

#[test]
fn privileged_has_every_capability_no_filter_and_the_devices() {
    let sb = Sandbox::new();
    let img = busybox();
    sb.den(&["pull", "-q", &img]).ok();
    let st = proc_status(&sb, &["--privileged"]);
    assert_eq!(status(&st, "CapEff"), all_caps());
    assert_eq!(status(&st, "Seccomp"), "0");
    // The host's devices this user may open are there (set-up makes /dev/fuse 0666).
    let script = "test -c /dev/fuse && echo fuse";
    assert_eq!(
        sb.den(&["run", "--rm", "--privileged", &img, "sh", "-c", script])
            .ok(),
        "fuse\n"
    );
    let out = sb.den(&["run", "--rm", &img, "sh", "-c", script]);
    assert_ne!(out.code, 0, "not without --privileged");
    // Devices only root may open stay out (one is enough to look at: a 0600 device of root's,
    // such as /dev/loop0 or /dev/kvm here).
    let root_only = std::fs::read_dir("/dev").unwrap().flatten().find(|e| {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let Ok(m) = std::fs::symlink_metadata(e.path()) else {
            return false;
        };
        (m.file_type().is_char_device() || m.file_type().is_block_device())
            && m.uid() == 0
            && m.mode() & 0o066 == 0
    });
    if let Some(d) = root_only {
        let d = d.path().display().to_string();
        let out = sb.den(&["run", "--rm", "--privileged", &img, "test", "-e", &d]);
        assert_ne!(out.code, 0, "{d} is not bound");
    }
    // The mount family works (as root of den's user namespace, on the container's own mounts).
    assert_eq!(
        sb.den(&[
            "run",
            "--rm",
            "--privileged",
            &img,
            "sh",
            "-c",
            "mkdir -p /m && mount -t tmpfs none /m && echo mounted"
        ])
        .ok(),
        "mounted\n"
    );
}

#[test]
fn no_new_privileges_sets_the_flag() {
    let sb = Sandbox::new();
    let img = busybox();
    sb.den(&["pull", "-q", &img]).ok();
    assert_eq!(status(&proc_status(&sb, &[]), "NoNewPrivs"), "0");
    for opt in ["no-new-privileges", "no-new-privileges=true"] {
        let st = proc_status(&sb, &["--security-opt", opt]);
        assert_eq!(status(&st, "NoNewPrivs"), "1");
        assert_eq!(status(&st, "Seccomp"), "2", "the filter still applies");
    }
    sb.den(&[
        "run",
        "-d",
        "--name",
        "n",
        "--security-opt",
        "no-new-privileges",
        &img,
        "sleep",
        "60",
    ])
    .ok();
    let st = sb.den(&["exec", "n", "cat", "/proc/self/status"]).ok();
    assert_eq!(status(&st, "NoNewPrivs"), "1");
    assert_eq!(status(&st, "Seccomp"), "2");
    sb.den(&["rm", "-f", "n"]).ok();
}

#[test]
fn inspect_shows_the_settings_as_docker_does() {
    let sb = Sandbox::new();
    let img = busybox();
    sb.den(&["pull", "-q", &img]).ok();
    sb.den(&["create", "--name", "plain", &img, "true"]).ok();
    sb.den(&[
        "create",
        "--name",
        "tuned",
        "--cap-add",
        "net_admin",
        "--cap-drop",
        "CAP_CHOWN",
        "--security-opt",
        "no-new-privileges",
        "--security-opt",
        "seccomp=unconfined",
        &img,
        "true",
    ])
    .ok();
    sb.den(&["create", "--name", "priv", "--privileged", &img, "true"])
        .ok();
    let show = "{{json .HostConfig.SecurityOpt}} {{json .HostConfig.CapAdd}} {{json .HostConfig.CapDrop}} {{.HostConfig.Privileged}}";
    let get = |name: &str| sb.den(&["inspect", "-f", show, name]).ok();
    assert_eq!(get("plain"), "null null null false\n");
    assert_eq!(
        get("tuned"),
        "[\"seccomp=unconfined\",\"no-new-privileges\"] [\"CAP_NET_ADMIN\"] [\"CAP_CHOWN\"] false\n"
    );
    assert_eq!(get("priv"), "null null null true\n");
}
