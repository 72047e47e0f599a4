//! Flags on existing verbs that docker's and podman's users type: `start/stop/rm --all`,
//! `rm -t`, `ps --noheading/--sort/-s`, `images --sort`, `save -m`.

use crate::sandbox::{Sandbox, registry};

fn busybox() -> String {
    registry().image("library/busybox")
}

fn ready() -> Sandbox {
    let sb = Sandbox::new();
    sb.den(&["pull", "-q", &busybox()]).ok();
    sb
}

/// A loop that ends on SIGTERM at once.
const SERVE: &str = "trap 'exit 0' TERM; while true; do sleep 0.1; done";

fn states(sb: &Sandbox) -> String {
    sb.den(&["ps", "-a", "--format", "{{.Names}}={{.State}}"])
        .ok()
        .lines()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn start_stop_rm_all() {
    let sb = ready();
    let bb = busybox();
    sb.den(&["create", "--name", "a", &bb, "sh", "-c", SERVE])
        .ok();
    sb.den(&["create", "--name", "b", &bb, "sh", "-c", SERVE])
        .ok();
    // `start --all` starts the stopped ones and names each, in creation order.
    assert_eq!(sb.den(&["start", "--all"]).ok(), "a\nb\n");
    assert_eq!(states(&sb), "a=running b=running");
    // `--all` and names together are a usage error.
    let both = sb.den(&["stop", "--all", "a"]);
    assert_eq!(both.code, 125, "{}", both.stderr);
    assert!(both.stderr.contains("--all"), "{}", both.stderr);
    assert_eq!(sb.den(&["stop", "--all", "-t", "2"]).ok(), "a\nb\n");
    assert_eq!(states(&sb), "a=exited b=exited");
    // Nothing running: `stop --all` does nothing, successfully.
    assert_eq!(sb.den(&["stop", "-a"]).ok(), "");
    sb.den(&["start", "b"]).ok();
    // Without -f a running container is refused (podman's rule), the stopped one goes.
    sb.den(&["rm", "--all"]).fails_with(1, "b");
    assert_eq!(states(&sb), "b=running");
    sb.den(&["run", "-d", "--name", "c", &bb, "sh", "-c", SERVE])
        .ok();
    // With -f every container goes, running ones too; -t gives them the stop signal first.
    let t0 = std::time::Instant::now();
    let out = sb.den(&["rm", "-a", "-f", "-t", "5"]).ok();
    assert_eq!(out, "b\nc\n");
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(5),
        "SIGTERM ended them"
    );
    assert_eq!(states(&sb), "");
    assert_eq!(sb.den(&["rm", "--all"]).ok(), "");
}
