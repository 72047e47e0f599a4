//! Container verbs docker users type after the first hour: rename (and, later, diff, commit,
//! pause/unpause, top, stats), as the unprivileged users, with docker's output and exit codes.

use std::time::{Duration, Instant};

use crate::sandbox::{Sandbox, registry};

fn busybox() -> String {
    registry().image("library/busybox")
}

fn ready() -> Sandbox {
    let sb = Sandbox::new();
    sb.den(&["pull", "-q", &busybox()]).ok();
    sb
}

fn until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A loop that ends on SIGTERM at once.
const SERVE: &str = "trap 'exit 0' TERM; echo started; while true; do sleep 0.1; done";

#[test]
fn rename_a_running_and_a_stopped_container() {
    let sb = ready();
    let bb = busybox();
    let id = sb
        .den(&["run", "-d", "--name", "first", &bb, "sh", "-c", SERVE])
        .ok()
        .trim()
        .to_string();
    until("output", Duration::from_secs(10), || {
        sb.den(&["logs", "first"]).out().contains("started")
    });
    sb.den(&["create", "--name", "other", &bb, "true"]).ok();

    // A running container is renamed and keeps running; ps shows the new name.
    assert_eq!(sb.den(&["rename", "first", "second"]).ok(), "");
    let ps = sb.den(&["ps", "--format", "{{.Names}} {{.State}}"]).ok();
    assert!(ps.lines().any(|l| l == "second running"), "{ps}");
    assert!(!ps.contains("first"), "{ps}");
    let name = sb
        .den(&["inspect", "--format", "{{.Name}}", &id[..12]])
        .ok();
    assert_eq!(name.trim(), "/second");
    sb.den(&["logs", "first"])
        .fails_with(1, "no such container: first");
    // The old name is free again.
    sb.den(&["create", "--name", "first", &bb, "true"]).ok();

    // docker's refusals: a name in use, the same name, an unknown container, a bad name.
    sb.den(&["rename", "second", "other"])
        .fails_with(1, "is already in use");
    sb.den(&["rename", "second", "second"])
        .fails_with(1, "same name");
    sb.den(&["rename", "nosuch", "x"])
        .fails_with(1, "no such container: nosuch");
    sb.den(&["rename", "second", "/bad name"])
        .fails_with(1, "invalid container name");
    // `den container rename` is the same verb; a stopped container renames too.
    sb.den(&["container", "rename", "other", "third"]).ok();
    let all = sb.den(&["ps", "-a", "--format", "{{.Names}}"]).ok();
    assert!(all.lines().any(|l| l == "third"), "{all}");
    assert!(!all.lines().any(|l| l == "other"), "{all}");

    sb.den(&["stop", "-t", "1", "second"]).ok();
    sb.den(&["rename", "second", "fourth"]).ok();
    sb.den(&["start", "fourth"]).ok();
    until(
        "restart under the new name",
        Duration::from_secs(10),
        || {
            sb.den(&["inspect", "--format", "{{.State.Status}}", "fourth"])
                .out()
                .trim()
                == "running"
        },
    );
    sb.den(&["rm", "-f", "fourth"]).ok();
}
