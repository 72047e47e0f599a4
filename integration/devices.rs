//! Devices in containers, as the unprivileged test users: CDI devices from a spec the test
//! writes (stand-in nodes /dev/null, /dev/zero, /dev/fuse; a host directory, environment, hooks
//! that leave marks), `--gpus` without an NVIDIA spec, `--device HOST[:CONTAINER][:rwm]`, and
//! `--group-add keep-groups` opening a file and a device node owned by the group `den-dev`
//! (integration/setup.sh makes both test users members).

use std::path::Path;

use crate::sandbox::{Sandbox, busybox};

/// A spec with two devices of kind vendor.test/dev and edits of every kind: `a` is /dev/null
/// at /dev/vnull plus /dev/fuse, `b` is /dev/zero at /dev/vzero; every device brings a host
/// directory at /opt/vendor, `VENDOR=test` and hooks that write the container's state to
/// `marks/STAGE`.
fn write_spec(sb: &Sandbox) {
    let shared = sb.dir.join("vendor");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("lib.txt"), "vendor library\n").unwrap();
    std::fs::create_dir_all(sb.dir.join("marks")).unwrap();
    let hook = sb.dir.join("hook.sh");
    std::fs::write(&hook, "#!/bin/sh\ncat > \"$1\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let hook_yaml = |stage: &str| {
        format!(
            "    - hookName: {stage}\n      path: {h}\n      args: [hook.sh, {m}]\n      timeout: 10\n",
            h = hook.display(),
            m = sb.dir.join("marks").join(stage).display()
        )
    };
    let spec = format!(
        "cdiVersion: 0.6.0\nkind: vendor.test/dev\ndevices:\n\
         - name: a\n  containerEdits:\n    env: [DEV=a]\n    deviceNodes:\n\
         \x20     - path: /dev/vnull\n        hostPath: /dev/null\n      - path: /dev/fuse\n\
         - name: b\n  containerEdits:\n    deviceNodes:\n      - path: /dev/vzero\n        hostPath: /dev/zero\n        permissions: r\n\
         containerEdits:\n  env: [VENDOR=test]\n  mounts:\n\
         \x20   - hostPath: {shared}\n      containerPath: /opt/vendor\n      options: [ro, nosuid, nodev, bind]\n\
         \x20 hooks:\n{hooks}",
        shared = shared.display(),
        hooks = hook_yaml("prestart") + &hook_yaml("createContainer"),
    );
    let dir = sb.config_home.join("cdi");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("vendor-test.yaml"), spec).unwrap();
    // A second spec, in JSON.
    std::fs::write(
        dir.join("other.json"),
        r#"{"cdiVersion": "0.8.0", "kind": "vendor.test/other",
            "devices": [{"name": "x", "containerEdits": {"env": ["OTHER=x"]}}]}"#,
    )
    .unwrap();
}

#[test]
fn cdi_devices_bring_nodes_mounts_env_and_hooks() {
    let sb = Sandbox::new();
    let bb = busybox();
    write_spec(&sb);
    let check = "for d in vnull vzero fuse; do [ -c /dev/$d ] && echo $d; done; \
                 cat /opt/vendor/lib.txt; echo \"$VENDOR $DEV $OTHER\"; \
                 head -c 3 /dev/vzero | wc -c; touch /opt/vendor/x 2>/dev/null || echo read-only";
    let run = |devices: &[&str]| {
        let mut args = vec!["run", "--rm"];
        args.extend(devices);
        args.extend([bb.as_str(), "sh", "-c", check]);
        sb.den(&args).ok()
    };
    let out = run(&[
        "--device",
        "vendor.test/dev=a",
        "--device=vendor.test/other=x",
    ]);
    assert_eq!(
        out, "vnull\nfuse\nvendor library\ntest a x\n0\nread-only\n",
        "device a only"
    );
    let marks = sb.dir.join("marks");
    for stage in ["prestart", "createContainer"] {
        let state = std::fs::read_to_string(marks.join(stage)).unwrap_or_default();
        assert!(
            state.contains("\"bundle\""),
            "{stage} hook got the state: {state:?}"
        );
        std::fs::remove_file(marks.join(stage)).unwrap();
    }
    // =all: both devices, the spec's edits once.
    let out = run(&["--device", "vendor.test/dev=all"]);
    assert_eq!(
        out,
        "vnull\nvzero\nfuse\nvendor library\ntest a \n3\nread-only\n"
    );
    assert!(marks.join("prestart").exists());
    // inspect shows the CDI names as docker 25 does; info lists the devices.
    sb.den(&[
        "create",
        "--name",
        "c",
        "--device",
        "vendor.test/dev=b",
        &bb,
        "true",
    ])
    .ok();
    let requests = sb
        .den(&[
            "inspect",
            "--format",
            "{{json .HostConfig.DeviceRequests}}",
            "c",
        ])
        .ok();
    assert!(
        requests.contains(r#""Driver":"cdi""#)
            && requests.contains(r#""DeviceIDs":["vendor.test/dev=b"]"#),
        "{requests}"
    );
    let info = sb.den(&["info"]).ok();
    assert!(
        info.contains("vendor.test/dev=a, vendor.test/dev=b, vendor.test/other=x"),
        "{info}"
    );
}

#[test]
fn unknown_and_malformed_cdi_specs_say_which() {
    let sb = Sandbox::new();
    let bb = busybox();
    write_spec(&sb);
    sb.den(&["pull", &bb]).ok();
    let before = sb.store_listing();
    let out = sb.den(&[
        "run",
        "--rm",
        "--device",
        "vendor.test/dev=nope",
        &bb,
        "true",
    ]);
    out.fails_with(125, "unknown CDI device \"vendor.test/dev=nope\"");
    assert!(out.stderr.contains("vendor-test.yaml"), "{}", out.stderr);
    // No NVIDIA spec: --gpus says so, with the command that writes one.
    let out = sb.den(&["run", "--rm", "--gpus", "all", &bb, "true"]);
    out.fails_with(125, "unknown CDI device \"nvidia.com/gpu=all\"");
    assert!(
        out.stderr
            .contains("nvidia-ctk cdi generate --output=$XDG_CONFIG_HOME/cdi/nvidia.yaml"),
        "{}",
        out.stderr
    );
    sb.den(&["run", "--rm", "--gpus", "two", &bb, "true"])
        .fails_with(125, "invalid --gpus");
    // A spec that does not parse: its file and line.
    let bad = sb.config_home.join("cdi/broken.yaml");
    std::fs::write(
        &bad,
        "cdiVersion: 0.6.0\nkind: vendor.test/broken\ndevices: [\n  - name: x\n",
    )
    .unwrap();
    let out = sb.den(&["run", "--rm", "--device", "vendor.test/dev=a", &bb, "true"]);
    out.fails_with(125, &format!("CDI spec {}:", bad.display()));
    assert_eq!(sb.store_listing(), before, "the store is as it was");
}

#[test]
fn host_devices_bind_at_their_paths() {
    let sb = Sandbox::new();
    let bb = busybox();
    let out = sb
        .den(&[
            "run",
            "--rm",
            "--device",
            "/dev/fuse",
            "--device",
            "/dev/null:/dev/mynull:r",
            &bb,
            "sh",
            "-c",
            "[ -c /dev/fuse ] && [ -c /dev/mynull ] && echo hi > /dev/mynull && echo ok",
        ])
        .ok();
    assert_eq!(out, "ok\n");
    sb.den(&[
        "create",
        "--name",
        "c",
        "--device",
        "/dev/null:/dev/mynull:r",
        &bb,
        "true",
    ])
    .ok();
    let devices = sb
        .den(&["inspect", "--format", "{{json .HostConfig.Devices}}", "c"])
        .ok();
    let devices: serde_json::Value = serde_json::from_str(&devices).unwrap();
    assert_eq!(
        devices,
        serde_json::json!([{"PathOnHost": "/dev/null", "PathInContainer": "/dev/mynull",
            "CgroupPermissions": "r"}])
    );
    let before = sb.store_listing();
    sb.den(&["run", "--rm", "--device", "/etc/passwd", &bb, "true"])
        .fails_with(125, "--device /etc/passwd: not a device node");
    sb.den(&["run", "--rm", "--device", "dev/null", &bb, "true"])
        .fails_with(125, "invalid --device");
    // A device only root may open (which one this host has).
    let closed = ["/dev/loop-control", "/dev/kvm", "/dev/tty0", "/dev/console"]
        .into_iter()
        .find(|d| {
            Path::new(d).exists()
                && std::fs::File::open(d)
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied)
        })
        .expect("this host has a device only root may open");
    sb.den(&["run", "--rm", "--device", closed, &bb, "true"])
        .fails_with(125, &format!("--device {closed}: you cannot open it"));
    assert_eq!(sb.store_listing(), before);
}

/// The group den-dev's gid, when this user is a member (integration/setup.sh makes it so).
fn den_dev_member() -> bool {
    let groups = std::fs::read_to_string("/etc/group").unwrap_or_default();
    let gid = groups
        .lines()
        .find(|l| l.starts_with("den-dev:"))
        .and_then(|l| l.split(':').nth(2))
        .and_then(|g| g.parse::<u32>().ok());
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mine = status
        .lines()
        .find(|l| l.starts_with("Groups:"))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .filter_map(|g| g.parse::<u32>().ok())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    gid.is_some_and(|g| mine.contains(&g))
}

#[test]
fn keep_groups_opens_group_owned_files_and_devices() {
    assert!(
        den_dev_member(),
        "this user is not in the group den-dev: run integration/setup.sh as root, then log in again"
    );
    let sb = Sandbox::new();
    let bb = busybox();
    let script = "cat /g/secret && head -c 4 /dev/gzero | wc -c";
    let run = |keep: bool| {
        let mut a = vec![
            "run",
            "--rm",
            "-v",
            "/var/lib/den-dev:/g",
            "--device",
            "/var/lib/den-dev/zero:/dev/gzero",
        ];
        if keep {
            a.extend(["--group-add", "keep-groups"]);
        }
        a.extend([bb.as_str(), "sh", "-c", script]);
        sb.den(&a)
    };
    assert_eq!(run(true).ok(), "den-dev group file\n4\n");
    // With subordinate ids the container gets exactly its own groups without keep-groups;
    // single-uid mode cannot set groups at all, so the user's stay.
    let without = run(false);
    if sb.mapped() {
        assert_ne!(without.code, 0, "{without:?}");
        assert!(
            without.stderr.contains("Permission denied"),
            "{}",
            without.stderr
        );
    } else {
        assert_eq!(without.ok(), "den-dev group file\n4\n");
    }
    // exec'd processes keep them too.
    sb.den(&[
        "run",
        "-d",
        "--name",
        "k",
        "-v",
        "/var/lib/den-dev:/g",
        "--group-add",
        "keep-groups",
        &bb,
        "sleep",
        "60",
    ])
    .ok();
    assert_eq!(
        sb.den(&["exec", "k", "cat", "/g/secret"]).ok(),
        "den-dev group file\n"
    );
    sb.den(&["rm", "-f", "k"]).ok();
    sb.den(&["run", "--rm", "--group-add", "video", &bb, "true"])
        .fails_with(125, "den supports only keep-groups");
}
