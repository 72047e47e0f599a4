//! Containers that outlive the command: run -d, ps, logs, attach, stop/start/restart/kill/wait,
//! exec, cp, rm, inspect, prune, volumes, restart policies, the monitor.

use std::time::{Duration, Instant};

use crate::sandbox::{Sandbox, busybox, sha256_hex};

fn ready() -> Sandbox {
    let sb = Sandbox::new();
    sb.den(&["pull", "-q", &busybox()]).ok();
    sb
}

/// `run -d` with a name; returns the full id.
fn detach(sb: &Sandbox, name: &str, args: &[&str]) -> String {
    let mut a = vec!["run", "-d", "--name", name];
    a.extend_from_slice(args);
    let id = sb.den(&a).ok().trim().to_string();
    assert_eq!(id.len(), 64, "run -d prints the full id: {id:?}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    id
}

fn until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn status(sb: &Sandbox, name: &str) -> String {
    sb.den(&["inspect", "--format", "{{.State.Status}}", name])
        .ok()
        .trim()
        .to_string()
}

/// A loop that ends on SIGTERM at once (pid 1 ignores signals it has no handler for).
const SERVE: &str =
    "trap 'exit 0' TERM; echo started; echo to-stderr >&2; while true; do sleep 0.1; done";

#[test]
fn detached_container_lifecycle() {
    let sb = ready();
    let bb = busybox();
    let t0 = Instant::now();
    let id = detach(&sb, "web", &[&bb, "sh", "-c", SERVE]);
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "run -d returns at once"
    );
    until("output", Duration::from_secs(5), || {
        sb.den(&["logs", "web"]).out().contains("started")
    });

    // ps: default, -q, --no-trunc, --format
    let ps = sb.den(&["ps"]).ok();
    let mut lines = ps.lines();
    let header = lines.next().unwrap();
    for col in [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ] {
        assert!(header.contains(col), "{header}");
    }
    let row = lines.next().expect("one container");
    assert!(
        row.starts_with(&id[..12]) && row.contains("Up ") && row.ends_with("web"),
        "{row}"
    );
    assert_eq!(sb.den(&["ps", "-q"]).ok(), format!("{}\n", &id[..12]));
    assert!(sb.den(&["ps", "--no-trunc"]).ok().contains(&id));
    assert_eq!(sb.den(&["ps", "--format", "{{.Names}}"]).ok(), "web\n");
    assert_eq!(
        sb.den(&["ps", "--format", "{{.ID}} {{.State}}"]).ok(),
        format!("{} running\n", &id[..12])
    );
    let json: serde_json::Value =
        serde_json::from_str(sb.den(&["ps", "--format", "json"]).ok().trim()).unwrap();
    assert_eq!(json["Names"], "web");
    assert_eq!(json["State"], "running");
    // A field ps rows lack is one line naming the ones they have, as docker refuses it.
    sb.den(&["ps", "--format", "{{.Names}} {{.Nope}}"])
        .fails_with(1, "can't evaluate field Nope: ps rows have ID, Image");
    sb.den(&["images", "--format", "{{.Nope}}"])
        .fails_with(125, "can't evaluate field Nope: the rows have");

    // logs: streams kept apart, timestamps, tail
    let logs = sb.den(&["logs", "web"]);
    assert_eq!(logs.ok(), "started\n");
    assert_eq!(logs.stderr, "to-stderr\n");
    let stamped = sb.den(&["logs", "-t", "web"]).ok();
    assert!(
        stamped.ends_with("Z started\n") && stamped.starts_with("20"),
        "{stamped}"
    );
    let tail = sb.den(&["logs", "--tail", "1", "web"]);
    assert_eq!(
        (tail.ok(), tail.stderr.as_str()),
        (String::new(), "to-stderr\n")
    );
    assert_eq!(sb.den(&["logs", "--tail", "2", "web"]).ok(), "started\n");
    assert_eq!(sb.den(&["logs", "--tail", "0", "web"]).ok(), "");

    // files written in the writable layer survive stop and start
    sb.den(&["exec", "web", "sh", "-c", "echo one >> /kept"])
        .ok();
    let t0 = Instant::now();
    assert_eq!(sb.den(&["stop", "web"]).ok(), "web\n");
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "the stop signal was handled"
    );
    assert_eq!(status(&sb, "web"), "exited");
    assert_eq!(sb.den(&["ps", "-q"]).ok(), "");
    let all = sb.den(&["ps", "-a"]).ok();
    assert!(all.contains("Exited (0)"), "{all}");
    assert_eq!(sb.den(&["start", "web"]).ok(), "web\n");
    assert_eq!(status(&sb, "web"), "running");
    assert_eq!(sb.den(&["exec", "web", "cat", "/kept"]).ok(), "one\n");

    // restart: a new start time
    let started = |sb: &Sandbox| {
        sb.den(&["inspect", "--format", "{{.State.StartedAt}}", "web"])
            .ok()
    };
    let before = started(&sb);
    assert_eq!(sb.den(&["restart", "-t", "2", "web"]).ok(), "web\n");
    assert_eq!(status(&sb, "web"), "running");
    assert_ne!(started(&sb), before);

    // rm: refused while running, -f kills
    sb.den(&["rm", "web"]).fails_with(1, "is running");
    assert_eq!(sb.den(&["rm", "-f", "web"]).ok(), "web\n");
    assert_eq!(sb.den(&["ps", "-aq"]).ok(), "");
    sb.den(&["logs", "web"]).fails_with(1, "web");
}

#[test]
fn names_are_unique_and_unknown_containers_are_errors() {
    let sb = ready();
    let bb = busybox();
    detach(&sb, "dup", &[&bb, "sleep", "100"]);
    sb.den(&["run", "-d", "--name", "dup", &bb, "true"])
        .fails_with(125, "already in use");
    sb.den(&["create", "--name", "dup", &bb, "true"])
        .fails_with(125, "already in use");
    for verb in [
        &["logs", "nope"][..],
        &["stop", "nope"],
        &["rm", "nope"],
        &["exec", "nope", "true"],
        &["attach", "nope"],
        &["wait", "nope"],
        &["inspect", "nope"],
        &["start", "nope"],
        &["kill", "nope"],
    ] {
        let out = sb.den(verb);
        assert_eq!(out.code, 1, "{verb:?}: {}", out.stderr);
        assert!(out.stderr.contains("nope"), "{verb:?}: {}", out.stderr);
    }
    sb.den(&["rm", "-f", "dup"]).ok();
    // the name is free again
    detach(&sb, "dup", &[&bb, "true"]);
}

#[test]
fn logs_follow_returns_when_the_container_exits() {
    let sb = ready();
    detach(
        &sb,
        "count",
        &[
            &busybox(),
            "sh",
            "-c",
            "for i in 1 2 3; do echo $i; sleep 0.3; done",
        ],
    );
    let t0 = Instant::now();
    assert_eq!(sb.den(&["logs", "-f", "count"]).ok(), "1\n2\n3\n");
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert_eq!(sb.den(&["wait", "count"]).ok(), "0\n");
}

#[test]
fn ten_megabytes_of_output_through_logs() {
    let sb = ready();
    detach(
        &sb,
        "big",
        &[
            &busybox(),
            "sh",
            "-c",
            "head -c 10000000 /dev/zero | tr '\\0' a | fold -w 100; echo",
        ],
    );
    assert_eq!(sb.den(&["wait", "big"]).ok(), "0\n");
    let out = sb.den(&["logs", "big"]);
    let mut expected = Vec::new();
    for _ in 0..100_000 {
        expected.extend_from_slice(&[b'a'; 100]);
        expected.push(b'\n');
    }
    assert_eq!(out.stdout.len(), expected.len());
    assert_eq!(sha256_hex(&out.stdout), sha256_hex(&expected));
    assert_eq!(sb.den(&["logs", "--tail", "2", "big"]).out().len(), 202);
}

#[test]
fn a_killed_monitor_is_not_reported_running() {
    let sb = ready();
    let id = detach(&sb, "orphan", &[&busybox(), "sleep", "1000"]);
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(sb.root.join("containers").join(&id).join("state.json")).unwrap(),
    )
    .unwrap();
    let monitor = state["monitor"][0]
        .as_i64()
        .expect("the monitor's pid is recorded") as i32;
    let init = state["pid"].as_i64().unwrap() as i32;
    assert!(std::path::Path::new(&format!("/proc/{init}")).exists());
    den::sys::sigkill(monitor).expect("the monitor can be killed");
    until("ps to notice", Duration::from_secs(5), || {
        status(&sb, "orphan") == "exited"
    });
    assert_eq!(sb.den(&["ps", "-q"]).ok(), "");
    // the container died with it
    until("the container's init to go", Duration::from_secs(5), || {
        !std::path::Path::new(&format!("/proc/{init}")).exists()
            || std::fs::read_to_string(format!("/proc/{init}/stat"))
                .map(|s| s.contains(") Z "))
                .unwrap_or(true)
    });
    sb.den(&["rm", "orphan"]).ok();
}

#[test]
fn attach_forwards_stdin_and_returns_the_exit_code() {
    let sb = ready();
    detach(
        &sb,
        "att",
        &["-i", &busybox(), "sh", "-c", "read x; echo got $x; exit 3"],
    );
    let out = sb.den_input(&["attach", "att"], b"hello\n");
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert_eq!(out.out(), "got hello\n");
    sb.den(&["attach", "att"]).fails_with(1, "not running");
}

#[test]
fn start_attached_and_interactive() {
    let sb = ready();
    let bb = busybox();
    let id = sb
        .den(&["create", "--name", "c1", &bb, "sh", "-c", "echo hi; exit 4"])
        .ok();
    assert_eq!(id.trim().len(), 64);
    assert_eq!(status(&sb, "c1"), "created");
    let out = sb.den(&["start", "-a", "c1"]);
    assert_eq!(
        (out.code, out.out()),
        (4, "hi\n".to_string()),
        "{}",
        out.stderr
    );
    sb.den(&["create", "-i", "--name", "c2", &bb, "tr", "a-z", "A-Z"])
        .ok();
    let out = sb.den_input(&["start", "-a", "-i", "c2"], b"abc\n");
    assert_eq!(out.ok(), "ABC\n");
}

#[test]
fn wait_and_kill_with_a_signal() {
    let sb = ready();
    let bb = busybox();
    detach(&sb, "w", &[&bb, "sh", "-c", "sleep 0.5; exit 7"]);
    assert_eq!(sb.den(&["wait", "w"]).ok(), "7\n");
    detach(
        &sb,
        "h",
        &[
            &bb,
            "sh",
            "-c",
            "trap 'echo got-hup; exit 5' HUP; while true; do sleep 0.1; done",
        ],
    );
    until("the trap", Duration::from_secs(5), || {
        status(&sb, "h") == "running"
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sb.den(&["kill", "-s", "HUP", "h"]).ok(), "h\n");
    assert_eq!(sb.den(&["wait", "h"]).ok(), "5\n");
    assert_eq!(sb.den(&["logs", "h"]).ok(), "got-hup\n");
    sb.den(&["kill", "h"]).fails_with(1, "not running");
    // stop sends the container's stop signal
    detach(
        &sb,
        "s",
        &[
            "--stop-signal",
            "USR1",
            &bb,
            "sh",
            "-c",
            "trap 'echo got-usr1; exit 0' USR1; while true; do sleep 0.1; done",
        ],
    );
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    sb.den(&["stop", "s"]).ok();
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(sb.den(&["logs", "s"]).ok(), "got-usr1\n");
    assert_eq!(
        sb.den(&[
            "inspect",
            "-f",
            "{{.Config.StopSignal}} {{.State.ExitCode}}",
            "s"
        ])
        .ok(),
        "USR1 0\n"
    );
}

#[test]
fn attach_to_a_terminal_container() {
    let sb = ready();
    detach(&sb, "tty", &["-it", &busybox(), "sh"]);
    let out = sb.den_pty(
        &["send:echo $((6*7))\r", "expect:42", "send:exit 6\r"],
        &["attach", "tty"],
    );
    assert_eq!(out.code, 6, "{}", out.stderr);
    assert_eq!(status(&sb, "tty"), "exited");
    assert!(sb.den(&["logs", "tty"]).ok().contains("42"));
}

#[test]
fn exec_joins_the_running_container() {
    let sb = ready();
    detach(
        &sb,
        "ex",
        &[
            "--hostname",
            "box",
            "-e",
            "FROM_RUN=1",
            &busybox(),
            "sleep",
            "1000",
        ],
    );
    assert_eq!(
        sb.den(&["exec", "ex", "cat", "/etc/hostname"]).ok(),
        "box\n"
    );
    assert_eq!(
        sb.den(&["exec", "-e", "A=2", "ex", "sh", "-c", "echo $FROM_RUN$A"])
            .ok(),
        "12\n"
    );
    assert_eq!(sb.den(&["exec", "-w", "/tmp", "ex", "pwd"]).ok(), "/tmp\n");
    assert_eq!(
        sb.den_input(&["exec", "-i", "ex", "tr", "a-z", "A-Z"], b"xyz\n")
            .ok(),
        "XYZ\n"
    );
    // the same pid namespace: the container's sleep is there
    let ps = sb.den(&["exec", "ex", "ps"]).ok();
    assert!(ps.contains("sleep 1000"), "{ps}");
    assert_eq!(sb.den(&["exec", "ex", "sh", "-c", "exit 9"]).code, 9);
    assert_eq!(sb.den(&["exec", "ex", "no-such-command"]).code, 127);
    if sb.mapped() {
        assert_eq!(
            sb.den(&["exec", "-u", "1000:1000", "ex", "id", "-u"]).ok(),
            "1000\n"
        );
    }
    let out = sb.den_pty(
        &[
            "expect:#",
            "send:echo $((6*7))\r",
            "expect:42",
            "send:exit\r",
        ],
        &["exec", "-it", "ex", "sh"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    // detached exec keeps running after den exits
    sb.den(&[
        "exec",
        "-d",
        "ex",
        "sh",
        "-c",
        "sleep 0.3; touch /from-detached",
    ])
    .ok();
    until("the detached exec", Duration::from_secs(5), || {
        sb.den(&["exec", "ex", "test", "-f", "/from-detached"]).code == 0
    });
    sb.den(&["stop", "-t", "0", "ex"]).ok();
    sb.den(&["exec", "ex", "true"]).fails_with(1, "not running");
}

#[test]
fn cp_both_ways_running_and_stopped() {
    let sb = ready();
    detach(
        &sb,
        "cp",
        &[
            "--hostname",
            "cphost",
            &busybox(),
            "sh",
            "-c",
            "mkdir -p /d/sub && echo deep > /d/sub/f && chmod 741 /d/sub/f && sleep 1000",
        ],
    );
    until("the files", Duration::from_secs(5), || {
        sb.den(&["exec", "cp", "test", "-f", "/d/sub/f"]).code == 0
    });
    let h = sb.dir.join("h");
    sb.den(&["cp", "cp:/etc/hostname", h.to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read_to_string(&h).unwrap(), "cphost\n");
    // a directory, with its modes
    sb.den(&["cp", "cp:/d", "./out"]).ok();
    let f = sb.dir.join("out/sub/f");
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "deep\n");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
        0o741
    );
    // into the container, into a directory (trailing /)
    std::fs::write(sb.dir.join("file"), "from host\n").unwrap();
    sb.den(&["cp", "./file", "cp:/tmp/"]).ok();
    assert_eq!(
        sb.den(&["exec", "cp", "cat", "/tmp/file"]).ok(),
        "from host\n"
    );
    // a tar on stdout
    let tar = sb.den(&["cp", "cp:/etc/hostname", "-"]);
    assert!(tar.ok_bytes().windows(6).any(|w| w == b"cphost"));
    // a tar on stdin, extracted into a directory
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(6);
    h.set_mode(0o640);
    h.set_cksum();
    b.append_data(&mut h, "from-tar.txt", &b"tarred"[..])
        .unwrap();
    let archive = b.into_inner().unwrap();
    sb.den_input(&["cp", "-", "cp:/tmp"], &archive).ok();
    assert_eq!(
        sb.den(&["exec", "cp", "stat", "-c", "%a %s", "/tmp/from-tar.txt"])
            .ok(),
        "640 6\n"
    );
    // a stopped container
    sb.den(&["stop", "-t", "0", "cp"]).ok();
    std::fs::write(sb.dir.join("later"), "while stopped\n").unwrap();
    sb.den(&["cp", "./later", "cp:/later"]).ok();
    let back = sb.dir.join("back");
    sb.den(&["cp", "cp:/later", back.to_str().unwrap()]).ok();
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "while stopped\n");
    sb.den(&["cp", "cp:/no/such/file", "./x"])
        .fails_with(1, "/no/such/file");
}

#[test]
fn cp_never_follows_a_symlink_out_of_the_container() {
    let sb = ready();
    // A host directory with a secret, and a container whose symlinks point at it.
    let secret_dir = sb.dir.join("secret");
    std::fs::create_dir_all(&secret_dir).unwrap();
    std::fs::write(secret_dir.join("key"), "host secret\n").unwrap();
    let target = secret_dir.to_str().unwrap().to_string();
    detach(
        &sb,
        "esc",
        &[
            &busybox(),
            "sh",
            "-c",
            &format!("ln -s {target} /link; ln -s ../../../../../..{target} /rel; sleep 1000"),
        ],
    );
    until("the links", Duration::from_secs(5), || {
        sb.den(&["exec", "esc", "test", "-L", "/rel"]).code == 0
    });
    for link in ["esc:/link/key", "esc:/rel/key"] {
        let out = sb.den(&["cp", link, "./stolen"]);
        assert_ne!(out.code, 0, "{link} was copied");
        assert!(!sb.dir.join("stolen").exists());
    }
    std::fs::write(sb.dir.join("payload"), "x").unwrap();
    let _ = sb.den(&["cp", "./payload", "esc:/link/planted"]);
    let _ = sb.den(&["cp", "./payload", "esc:/rel/planted"]);
    assert!(
        !secret_dir.join("planted").exists(),
        "den wrote through a symlink onto the host"
    );
    sb.den(&["rm", "-f", "esc"]).ok();
}

#[test]
fn ps_lists_a_hundred_containers() {
    let sb = ready();
    let bb = busybox();
    for i in 0..100 {
        sb.den(&["create", "--name", &format!("c{i}"), &bb, "true"])
            .ok();
    }
    let all = sb.den(&["ps", "-a"]).ok();
    assert_eq!(all.lines().count(), 101);
    assert_eq!(sb.den(&["ps", "-aq"]).ok().lines().count(), 100);
    assert_eq!(
        sb.den(&["ps", "-a", "--filter", "name=c42"])
            .ok()
            .lines()
            .count(),
        2
    );
    assert_eq!(
        sb.den(&["ps", "-n", "3", "--format", "{{.Names}}"]).ok(),
        "c99\nc98\nc97\n"
    );
    let out = sb.den(&["container", "prune", "-f"]).ok();
    assert!(out.starts_with("Deleted Containers:"), "{out}");
    assert_eq!(sb.den(&["ps", "-aq"]).ok(), "");
}

#[test]
fn inspect_is_docker_shaped() {
    let sb = ready();
    let bb = busybox();
    std::fs::write(sb.dir.join("envf"), "FROM_FILE=yes\n").unwrap();
    let id = detach(
        &sb,
        "insp",
        &[
            "--env-file",
            "envf",
            "-e",
            "K=V",
            "-l",
            "team=den",
            "--restart",
            "on-failure:3",
            &bb,
            "sleep",
            "100",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&sb.den(&["inspect", "insp"]).ok()).unwrap();
    let c = &v[0];
    assert_eq!(c["Id"], id);
    assert_eq!(c["Name"], "/insp");
    assert_eq!(c["State"]["Status"], "running");
    assert_eq!(c["State"]["Running"], true);
    assert!(c["State"]["Pid"].as_i64().unwrap() > 0);
    assert_eq!(c["Config"]["Cmd"], serde_json::json!(["sleep", "100"]));
    assert_eq!(c["Path"], "sleep");
    let env = c["Config"]["Env"].as_array().unwrap();
    assert!(
        env.contains(&"K=V".into()) && env.contains(&"FROM_FILE=yes".into()),
        "{env:?}"
    );
    assert_eq!(c["Config"]["Labels"]["team"], "den");
    assert_eq!(c["HostConfig"]["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(c["HostConfig"]["RestartPolicy"]["MaximumRetryCount"], 3);
    assert!(c["Mounts"].is_array());
    assert!(c["NetworkSettings"]["Ports"].is_object());
    assert_eq!(
        sb.den(&[
            "inspect",
            "-f",
            "{{.Config.Labels.team}} {{json .Config.Cmd}}",
            "insp"
        ])
        .ok(),
        "den [\"sleep\",\"100\"]\n"
    );
    sb.den(&["rm", "-f", "insp"]).ok();
}

#[test]
fn volumes_binds_and_tmpfs() {
    let sb = ready();
    let bb = busybox();
    std::fs::create_dir_all(sb.dir.join("data")).unwrap();
    std::fs::write(sb.dir.join("data/in"), "host file\n").unwrap();
    // bind mount (relative path), named volume, tmpfs
    let out = sb.den(&["run", "--rm", "-v", "./data:/data", "-v", "cache:/cache", "--tmpfs", "/scratch", &bb, "sh", "-c",
        "cat /data/in; echo from-ctr > /data/out; echo kept > /cache/v; grep -q ' /scratch tmpfs' /proc/mounts && echo tmpfs"]);
    assert_eq!(out.ok(), "host file\ntmpfs\n");
    assert_eq!(
        std::fs::read_to_string(sb.dir.join("data/out")).unwrap(),
        "from-ctr\n"
    );
    // the named volume outlives the container
    assert_eq!(
        sb.den(&["run", "--rm", "-v", "cache:/c", &bb, "cat", "/c/v"])
            .ok(),
        "kept\n"
    );
    assert!(sb.den(&["volume", "ls"]).ok().contains("cache"));
    assert_eq!(sb.den(&["volume", "ls", "-q"]).ok(), "cache\n");
    // read-only binds
    let out = sb.den(&[
        "run",
        "--rm",
        "-v",
        "./data:/data:ro",
        &bb,
        "sh",
        "-c",
        "echo x > /data/no",
    ]);
    assert_ne!(out.code, 0);
    let out = sb.den(&[
        "run",
        "--rm",
        "--mount",
        &format!(
            "type=bind,source={},target=/m,readonly",
            sb.dir.join("data").display()
        ),
        &bb,
        "cat",
        "/m/in",
    ]);
    assert_eq!(out.ok(), "host file\n");
    // a volume in use cannot be removed
    detach(&sb, "user", &["-v", "cache:/cache", &bb, "sleep", "100"]);
    sb.den(&["volume", "rm", "cache"]).fails_with(1, "user");
    sb.den(&["rm", "-f", "user"]).ok();
    assert_eq!(sb.den(&["volume", "rm", "cache"]).ok(), "cache\n");
    assert_eq!(sb.den(&["volume", "create", "made"]).ok(), "made\n");
    let v: serde_json::Value =
        serde_json::from_str(&sb.den(&["volume", "inspect", "made"]).ok()).unwrap();
    assert_eq!(v[0]["Name"], "made");
    sb.den(&["run", "--rm", "-v", "a:b", &bb, "true"])
        .fails_with(125, "a:b");
}

#[test]
fn restart_policies_and_auto_remove() {
    let sb = ready();
    let bb = busybox();
    detach(
        &sb,
        "flaky",
        &[
            "--restart",
            "on-failure:2",
            &bb,
            "sh",
            "-c",
            "echo run; exit 1",
        ],
    );
    until("the retries", Duration::from_secs(15), || {
        sb.den(&[
            "inspect",
            "-f",
            "{{.RestartCount}} {{.State.Status}}",
            "flaky",
        ])
        .out()
            == "2 exited\n"
    });
    assert_eq!(sb.den(&["logs", "flaky"]).ok(), "run\nrun\nrun\n");
    // --rm with -d: gone after it exits
    detach(&sb, "gone", &["--rm", &bb, "true"]);
    until("auto-removal", Duration::from_secs(5), || {
        sb.den(&["ps", "-aq", "--filter", "name=gone"])
            .out()
            .is_empty()
    });
    // always: a stop ends it for good
    detach(
        &sb,
        "again",
        &["--restart", "always", &bb, "sh", "-c", "sleep 0.2; exit 0"],
    );
    until("a restart", Duration::from_secs(10), || {
        sb.den(&["inspect", "-f", "{{.RestartCount}}", "again"])
            .out()
            .trim()
            .parse::<u32>()
            .unwrap_or(0)
            >= 1
    });
    sb.den(&["stop", "-t", "1", "again"]).ok();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(status(&sb, "again"), "exited");
    sb.den(&["rm", "again"]).ok();
}
