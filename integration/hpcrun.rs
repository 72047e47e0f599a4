//! HPC run flags and site defaults: `--pid host`, `--ipc host`, `--userns keep-id`, and the
//! config's `[run]` section (host network, the current directory and $HOME bound in), as the
//! unprivileged test users (with and without subordinate ids).

use crate::sandbox::{Sandbox, busybox};

/// A process of the test's own (a `sleep` with a marker argument), seen by --pid host only.
#[test]
fn pid_host_sees_the_hosts_processes() {
    let sb = Sandbox::new();
    let bb = busybox();
    let mut sleeper = std::process::Command::new("sleep")
        .arg("31.4159")
        .spawn()
        .unwrap();
    let pid = sleeper.id().to_string();
    let host = sb
        .den(&[
            "run",
            "--rm",
            "--pid",
            "host",
            &bb,
            "cat",
            &format!("/proc/{pid}/cmdline"),
        ])
        .ok();
    assert!(host.contains("31.4159"), "{host:?}");
    // Its own namespace (the default, and --pid private): the container's command is pid 1.
    let own = sb
        .den(&[
            "run",
            "--rm",
            "--pid=private",
            &bb,
            "sh",
            "-c",
            "echo $$; ls /proc",
        ])
        .ok();
    assert_eq!(own.lines().next(), Some("1"), "{own}");
    assert!(!own.lines().any(|l| l == pid), "{own}");
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    let before = sb.store_listing();
    sb.den(&["run", "--rm", "--pid", "container:x", &bb, "true"])
        .fails_with(125, "invalid --pid");
    assert_eq!(
        sb.store_listing(),
        before,
        "a bad flag leaves the store as it was"
    );
}

/// A POSIX shared memory file and a SysV segment the test made on the host are the
/// container's with --ipc host, and not without.
#[test]
fn ipc_host_shares_shared_memory() {
    let sb = Sandbox::new();
    let bb = busybox();
    let name = format!("den-hpcrun-{}", std::process::id());
    let shm = std::path::Path::new("/dev/shm").join(&name);
    std::fs::write(&shm, "shared").unwrap();
    let seg = std::process::Command::new("ipcmk")
        .args(["-M", "4096"])
        .output()
        .unwrap();
    let seg = String::from_utf8_lossy(&seg.stdout);
    let id = seg
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .to_string();
    assert!(id.parse::<u32>().is_ok(), "ipcmk said {seg:?}");
    let script = format!("cat /dev/shm/{name}; echo; cat /proc/sysvipc/shm");
    let host = sb
        .den(&["run", "--rm", "--ipc", "host", &bb, "sh", "-c", &script])
        .out();
    let own = sb.den(&["run", "--rm", &bb, "sh", "-c", &script]).out();
    let _ = std::fs::remove_file(&shm);
    let _ = std::process::Command::new("ipcrm")
        .args(["-m", &id])
        .status();
    assert!(host.starts_with("shared"), "{host}");
    let has_segment = |out: &str| {
        out.lines()
            .skip(2)
            .any(|l| l.split_whitespace().nth(1) == Some(id.as_str()))
    };
    assert!(has_segment(&host), "segment {id} not seen: {host}");
    assert!(!own.starts_with("shared"), "{own}");
    assert!(
        !has_segment(&own),
        "segment {id} seen without --ipc host: {own}"
    );
    sb.den(&["run", "--rm", "--ipc", "none", &bb, "true"])
        .fails_with(125, "invalid --ipc");
}

/// An HPC site's `[run]` defaults apply, and flags win over them.
#[test]
fn config_run_defaults_apply_and_flags_override_them() {
    let sb = Sandbox::new();
    let bb = busybox();
    sb.config("[run]\nnetwork = \"host\"\nbind_cwd = true\nbind_home = true\nipc = \"host\"\npid = \"host\"\n");
    std::fs::write(sb.dir.join("input.dat"), "cwd file").unwrap();
    std::fs::write(sb.home.join("dotfile"), "home file").unwrap();
    let dir = sb.dir.to_string_lossy().into_owned();
    let home = sb.home.to_string_lossy().into_owned();
    // The test's sandbox dir is den's current directory (Sandbox runs den there).
    let script = format!(
        "pwd; cat input.dat; echo; cat {home}/dotfile; echo; echo $$; grep -c : /proc/net/dev"
    );
    let out = sb.den(&["run", "--rm", &bb, "sh", "-c", &script]).ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], dir, "{out}");
    assert_eq!(lines[1], "cwd file", "{out}");
    assert_eq!(lines[2], "home file", "{out}");
    assert_ne!(lines[3], "1", "pid = host: not pid 1: {out}");
    let host_links = std::fs::read_to_string("/proc/net/dev")
        .unwrap()
        .matches(':')
        .count();
    assert_eq!(lines[4], host_links.to_string(), "network = host: {out}");
    // Flags win: a private network and PID namespace, another working directory.
    let out = sb
        .den(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--pid",
            "private",
            "-w",
            "/tmp",
            &bb,
            "sh",
            "-c",
            "pwd; echo $$; grep -o '^ *[a-z0-9]*:' /proc/net/dev",
        ])
        .ok();
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(words, ["/tmp", "1", "lo:"], "{out}");
    // A bad word in the file: one line naming the file, nothing run.
    sb.config("[run]\npid = \"shared\"\n");
    sb.den(&["run", "--rm", &bb, "true"])
        .fails_with(125, "config.toml");
    // (A plain name is a user network now: an option den does not know is the bad word.)
    sb.config("[run]\nnetwork = \"slirp4netns:mtu=1\"\n");
    sb.den(&["run", "--rm", &bb, "true"]).fails_with(
        125,
        "invalid network \"slirp4netns:mtu=1\" in the config file's [run] section",
    );
}

/// keep-id: the user's uid, gid and name inside, HOME set, files made in a bound directory
/// owned by the user on the host; the image's root-owned files appear as the user's.
#[test]
fn keep_id_runs_as_the_user() {
    let sb = Sandbox::new();
    let bb = busybox();
    let (uid, gid) = (
        sb.sh("id -u").ok().trim().to_string(),
        sb.sh("id -g").ok().trim().to_string(),
    );
    let name = sb.sh("id -un").ok().trim().to_string();
    let data = sb.dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let d = data.to_string_lossy().into_owned();
    let out = sb
        .den(&[
            "run",
            "--rm",
            "--userns",
            "keep-id",
            "-v",
            &format!("{d}:/data"),
            &bb,
            "sh",
            "-c",
            "id -u; id -g; id -un; echo $HOME; touch /data/made; stat -c %u /bin/busybox",
        ])
        .ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..3],
        [uid.as_str(), gid.as_str(), name.as_str()],
        "{out}"
    );
    assert_eq!(lines[3], sb.home.to_string_lossy(), "{out}");
    assert_eq!(
        lines[4], uid,
        "the image's root-owned files are the user's: {out}"
    );
    use std::os::unix::fs::MetadataExt;
    let made = std::fs::metadata(data.join("made")).unwrap();
    assert_eq!(made.uid().to_string(), uid);
    assert_eq!(made.gid().to_string(), gid);
    // The image's other owners are kept where ids are mapped; in single-uid mode every file
    // is the user's.
    let layered = crate::sandbox::registry().image("test/layered");
    let owners = sb
        .den(&[
            "run",
            "--rm",
            "--userns",
            "keep-id",
            &layered,
            "stat",
            "-c",
            "%u:%g",
            "/srv/root-owned",
            "/srv/app-owned",
            "/srv/www-owned",
            "/srv/nobody-owned",
        ])
        .ok();
    let want = if sb.mapped() {
        format!("{uid}:{gid} 1000:1000 33:33 65534:65534")
    } else {
        vec![format!("{uid}:{gid}"); 4].join(" ")
    };
    assert_eq!(
        owners.split_whitespace().collect::<Vec<_>>().join(" "),
        want
    );
    // The user may make a user namespace alone (den's single-uid init needed that), nothing
    // more: a mount namespace stays refused, as in any container.
    let out = sb.den(&[
        "run",
        "--rm",
        "--userns",
        "keep-id",
        &bb,
        "sh",
        "-c",
        "unshare -m true && echo mount-ns; unshare -r -m true && echo user-mount-ns; true",
    ]);
    let text = out.ok();
    assert!(!text.contains("mount-ns"), "{text}");
    // keep-id's user wins over the image's USER (podman's); -u over both.
    let ep = crate::sandbox::registry().image("test/entrypoint");
    let who = sb
        .den(&[
            "run",
            "--rm",
            "--userns",
            "keep-id",
            "--entrypoint",
            "id",
            &ep,
            "-u",
        ])
        .ok();
    assert_eq!(who.trim(), uid);
    let who = sb
        .den(&[
            "run", "--rm", "--userns", "keep-id", "-u", "0", &bb, "id", "-u",
        ])
        .ok();
    assert_eq!(who.trim(), "0");
    // The container's capability bounding set, whatever namespace its process is in.
    let bounding = |userns: &str| {
        sb.den(&[
            "run",
            "--rm",
            "--userns",
            userns,
            &bb,
            "grep",
            "CapBnd",
            "/proc/self/status",
        ])
        .ok()
    };
    assert_eq!(bounding("keep-id"), bounding("host"));
    // A detached keep-id container; `exec` runs as the user too.
    let id = sb
        .den(&["run", "-d", "--userns", "keep-id", &bb, "sleep", "30"])
        .ok();
    let id = id.trim();
    let ps = sb
        .den(&[
            "exec",
            id,
            "sh",
            "-c",
            "id -u; stat -c %u /proc/1; grep CapBnd /proc/self/status",
        ])
        .ok();
    let lines: Vec<&str> = ps.lines().collect();
    assert_eq!(
        lines[..2],
        [uid.as_str(), uid.as_str()],
        "exec and the init run as the user: {ps}"
    );
    assert_eq!(format!("{}\n", lines[2]), bounding("host"), "{ps}");
    sb.den(&["rm", "-f", id]).ok();
    // inspect says so, in docker's (and podman's) fields.
    let c = sb
        .den(&[
            "create", "--userns", "keep-id", "--pid", "host", "--ipc", "host", &bb,
        ])
        .ok();
    let modes = sb
        .den(&[
            "inspect",
            "--format",
            "{{.HostConfig.UsernsMode}} {{.HostConfig.PidMode}} {{.HostConfig.IpcMode}}",
            c.trim(),
        ])
        .ok();
    assert_eq!(modes.trim(), "keep-id host host");
    // The config's default, and the flag over it: without keep-id the container's user is
    // root, as always.
    sb.config("[run]\nuserns = \"keep-id\"\n");
    let out = sb.den(&["run", "--rm", &bb, "id", "-u"]).ok();
    assert_eq!(out.trim(), uid);
    let root = sb
        .den(&["run", "--rm", "--userns=host", &bb, "id", "-u"])
        .ok();
    assert_eq!(root.trim(), "0");
    sb.den(&["run", "--rm", "--userns", "auto", &bb, "true"])
        .fails_with(125, "invalid --userns");
}
