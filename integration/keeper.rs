//! The keeper of den's user namespace (`den-net userns`): later dens join the namespace it
//! holds instead of making one; it holds nothing of the caller's and no host mount, is
//! replaced when killed, stopped by `system reset`, exits when idle, and one with stale maps
//! is not joined.

use std::time::{Duration, Instant};

use crate::sandbox::{Sandbox, busybox, env};

/// The keeper's record in the sandbox's runtime directory: its pid.
fn keeper(sb: &Sandbox) -> Option<i32> {
    let text = std::fs::read_to_string(sb.runtime.join("den/userns.keeper")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Whether `pid` runs (a zombie does not: this machine's init may not reap the orphans).
fn runs(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        let state = s
            .rfind(')')
            .and_then(|i| s[i + 1..].split_whitespace().next());
        !matches!(state, Some("Z" | "X") | None)
    })
}

/// The running keeper, other than `old`: a den starts it and goes on, so it may take a moment.
fn wait_keeper(sb: &Sandbox, old: Option<i32>, what: &str) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(k) = keeper(sb).filter(|k| Some(*k) != old && runs(*k)) {
            return k;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{what}: no keeper runs"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_gone(pid: i32, what: &str) {
    let start = Instant::now();
    while runs(pid) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{what}: the keeper {pid} still runs"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn userns(pid: i32) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/user"))
        .unwrap()
        .display()
        .to_string()
}

fn started(sb: &Sandbox) -> i32 {
    let id = sb.den(&["run", "-d", &busybox(), "sleep", "60"]).ok();
    sb.den(&["inspect", "-f", "{{.State.Pid}}", id.trim()])
        .ok()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn containers_share_the_namespace_the_keeper_holds_and_it_holds_nothing_else() {
    let sb = Sandbox::new();
    sb.den(&["pull", "-q", &busybox()]).ok();
    let k = wait_keeper(&sb, None, "the pull's den starts one");
    let (a, b) = (started(&sb), started(&sb));
    assert_eq!(
        userns(a),
        userns(k),
        "the first container is in the keeper's namespace"
    );
    assert_eq!(userns(b), userns(k), "and so is the next");
    assert_eq!(keeper(&sb), Some(k), "one keeper for all");

    // A session of its own, no host mount, and no descriptor of its caller's: only its
    // record, its inotify watch, its directory and /dev/null.
    let stat = std::fs::read_to_string(format!("/proc/{k}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .collect();
    assert_eq!(fields[3], k.to_string(), "its own session: {stat}");
    let mounts = std::fs::read_to_string(format!("/proc/{k}/mountinfo")).unwrap();
    assert_eq!(mounts.lines().count(), 1, "{mounts}");
    assert!(mounts.contains(" - tmpfs "), "{mounts}");
    for fd in std::fs::read_dir(format!("/proc/{k}/fd"))
        .unwrap()
        .flatten()
    {
        let target = std::fs::read_link(fd.path()).unwrap().display().to_string();
        assert!(
            !target.starts_with("pipe:")
                && !target.starts_with("socket:")
                && !target.starts_with("/dev/pts"),
            "the keeper holds {target}"
        );
    }
    // A shell waiting for den's output is not kept waiting by the keeper.
    assert_eq!(
        sb.sh(&format!("echo $(den run --rm {} echo piped)", busybox()))
            .ok(),
        "piped\n"
    );
    sb.den(&["rm", "-f", "-a"]).ok();

    // Killed: the next den makes its namespace and a new keeper.
    sb.sh(&format!("kill -9 {k}")).ok();
    wait_gone(k, "kill -9");
    assert_eq!(
        sb.den(&["run", "--rm", &busybox(), "echo", "again"]).ok(),
        "again\n"
    );
    let k2 = wait_keeper(&sb, Some(k), "a new one after kill -9");
    assert_eq!(
        sb.den(&["run", "--rm", &busybox(), "echo", "joined"]).ok(),
        "joined\n"
    );
    assert_eq!(keeper(&sb), Some(k2));

    // system reset stops it and removes its record.
    sb.den(&["system", "reset", "--force"]).ok();
    wait_gone(k2, "system reset");
    assert_eq!(keeper(&sb), None);
}

#[test]
fn an_idle_keeper_exits_and_one_with_other_maps_is_not_joined() {
    let mut sb = Sandbox::new();
    sb.set_env("_DEN_KEEPER_IDLE_S", "2");
    let mapped = sb.mapped();
    sb.den(&["pull", "-q", &busybox()]).ok();
    let k = wait_keeper(&sb, None, "the pull's den starts one");
    wait_gone(k, "idle");
    assert_eq!(keeper(&sb), None, "its record goes with it");

    // A keeper in a namespace that maps only the user (unshare -r), as den's single-uid mode
    // does: joined where that is den's map, stopped and replaced where den maps a range.
    let record = sb.runtime.join("den/userns.keeper");
    let mut cmd = std::process::Command::new("setsid");
    cmd.arg("unshare")
        .arg("--user")
        .arg("--map-root-user")
        .arg(env().bin.join("den-net"))
        .arg("userns")
        .arg(&record)
        .env_clear()
        .env("_DEN_USERNS", "single:0:0:by hand")
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let start = Instant::now();
    let other = loop {
        if let Some(p) = keeper(&sb).filter(|p| runs(*p)) {
            break p;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no keeper by hand"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let c = started(&sb);
    if mapped {
        assert_ne!(
            userns(c),
            userns(other),
            "not joined: its maps are not den's"
        );
        let _ = child.wait();
        assert!(!runs(other), "told to exit");
    } else {
        assert_eq!(userns(c), userns(other), "the same map: joined");
        let _ = child.kill();
        let _ = child.wait();
    }
    sb.den(&["rm", "-f", "-a"]).ok();
}
