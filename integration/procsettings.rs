//! What a container's processes get: `--init` (zombies reaped, signals forwarded, the status
//! passed through), `--sysctl` (namespaced ones only), `--ulimit` and `--shm-size`.

use crate::sandbox::{Sandbox, busybox};

/// With --init, PID 1 reaps the orphans it is given and passes the command's status and the
/// signals it gets on; inspect says so.
#[test]
fn init_reaps_zombies_forwards_signals_and_passes_the_status() {
    let sb = Sandbox::new();
    let bb = busybox();
    // The subshell leaves a sleep behind, orphaned to PID 1, and the command becomes a `sleep`
    // that never waits: only den's init, as PID 1, keeps the orphan from staying a zombie.
    let zombies = |init: bool| {
        let name = if init { "with-init" } else { "without-init" };
        let mut args = vec!["run", "-d", "--name", name];
        if init {
            args.push("--init");
        }
        args.extend_from_slice(&[&bb, "sh", "-c", "(sleep 0.2 &); exec sleep 30"]);
        sb.den(&args).ok();
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let ps = sb.den(&["exec", name, "ps", "-o", "stat,comm"]).ok();
        let pid1 = sb.den(&["exec", name, "cat", "/proc/1/comm"]).ok();
        sb.den(&["rm", "-f", name]).ok();
        (
            ps.lines()
                .filter(|l| l.trim_start().starts_with('Z'))
                .count(),
            pid1,
        )
    };
    let (left, pid1) = zombies(false);
    assert_eq!((left, pid1.trim()), (1, "sleep"), "the test's premise");
    let (left, pid1) = zombies(true);
    assert_eq!(left, 0, "a zombie is left");
    assert_ne!(pid1.trim(), "sleep");
    let plain = sb
        .den(&[
            "run",
            "--rm",
            &bb,
            "sh",
            "-c",
            "echo pid1=$(cat /proc/1/comm)",
        ])
        .ok();
    assert_eq!(plain.trim(), "pid1=sh");
    assert_eq!(
        sb.den(&["run", "--rm", "--init", &bb, "sh", "-c", "exit 3"])
            .code,
        3
    );
    sb.den(&[
        "run",
        "-d",
        "--init",
        "--name",
        "trapper",
        &bb,
        "sh",
        "-c",
        "trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.1; done",
    ])
    .ok();
    wait_for_log(&sb, "trapper", "ready");
    sb.den(&["stop", "-t", "20", "trapper"]).ok();
    assert_eq!(
        sb.den(&["inspect", "-f", "{{.State.ExitCode}}", "trapper"])
            .ok()
            .trim(),
        "7"
    );
    assert!(sb.den(&["logs", "trapper"]).ok().contains("got TERM"));
    assert_eq!(
        sb.den(&["inspect", "-f", "{{.HostConfig.Init}}", "trapper"])
            .ok()
            .trim(),
        "true"
    );
}

fn wait_for_log(sb: &Sandbox, name: &str, needle: &str) {
    for _ in 0..100 {
        if sb.den(&["logs", name]).out().contains(needle) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{name} never wrote {needle:?}");
}

/// A sysctl of the container's own network namespace is set; a host one, or one of a shared
/// namespace, is refused in one line and nothing is created.
#[test]
fn sysctl_sets_namespaced_ones_and_refuses_the_hosts() {
    let sb = Sandbox::new();
    let bb = busybox();
    let out = sb
        .den(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--sysctl",
            "net.ipv4.ip_unprivileged_port_start=80",
            &bb,
            "cat",
            "/proc/sys/net/ipv4/ip_unprivileged_port_start",
        ])
        .ok();
    assert_eq!(out.trim(), "80");
    let before = sb.store_listing();
    sb.den(&[
        "run",
        "--rm",
        "--sysctl",
        "kernel.pid_max=100000",
        &bb,
        "true",
    ])
    .fails_with(125, "sysctl \"kernel.pid_max\" is not namespaced");
    sb.den(&[
        "run",
        "--rm",
        "--network",
        "host",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        &bb,
        "true",
    ])
    .fails_with(125, "not allowed with --network host");
    sb.den(&[
        "run",
        "--rm",
        "--sysctl",
        "net.ipv4.ip_forward",
        &bb,
        "true",
    ])
    .fails_with(125, "invalid --sysctl");
    assert_eq!(sb.store_listing(), before);
}

/// --ulimit's limits are the container's; a hard limit above the user's own is refused.
#[test]
fn ulimit_and_shm_size() {
    let sb = Sandbox::new();
    let bb = busybox();
    let out = sb
        .den(&[
            "run",
            "--rm",
            "--ulimit",
            "nofile=100:200",
            &bb,
            "sh",
            "-c",
            "ulimit -n; ulimit -Hn",
        ])
        .ok();
    assert_eq!(out, "100\n200\n");
    sb.den(&["run", "--rm", "--ulimit", "nofile=10:-1", &bb, "true"])
        .fails_with(125, "is above your own");
    sb.den(&["run", "--rm", "--ulimit", "nofiles=10", &bb, "true"])
        .fails_with(125, "invalid --ulimit");
    let df = |args: &[&str]| {
        let mut all = vec!["run", "--rm"];
        all.extend_from_slice(args);
        all.extend_from_slice(&[&bb, "df", "-k", "/dev/shm"]);
        let out = sb.den(&all).ok();
        out.lines()
            .nth(1)
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(df(&[]), "65536");
    assert_eq!(df(&["--shm-size", "128m"]), "131072");
    sb.den(&["run", "--rm", "--shm-size", "0", &bb, "true"])
        .fails_with(125, "invalid --shm-size");
    let id = sb
        .den(&[
            "create",
            "--shm-size",
            "1g",
            "--ulimit",
            "core=0",
            "--sysctl",
            "kernel.shmmax=1048576",
            &bb,
        ])
        .ok();
    let host = sb
        .den(&[
            "inspect",
            "-f",
            "{{.HostConfig.ShmSize}} {{json .HostConfig.Ulimits}} {{json .HostConfig.Sysctls}}",
            id.trim(),
        ])
        .ok();
    assert_eq!(
        host.trim(),
        r#"1073741824 [{"Hard":0,"Name":"core","Soft":0}] {"kernel.shmmax":"1048576"}"#
    );
}
