//! Health checks, end to end as the unprivileged users: `--health-*` and an image's
//! HEALTHCHECK run by the container's monitor (and by a foreground `run`), `State.Health`,
//! `ps`'s status and `--filter health=`, `--no-healthcheck`, `den healthcheck run`.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::sandbox::{Sandbox, build, busybox, context};

/// `State.Health` of `name` (Null without a check).
fn health(sb: &Sandbox, name: &str) -> Value {
    let out = sb
        .den(&["inspect", "--format", "{{json .State.Health}}", name])
        .ok();
    serde_json::from_str(out.trim()).unwrap_or(Value::Null)
}

/// Wait (20 s at most) until `name`'s health status is `want`; its `State.Health` then.
#[track_caller]
fn wait_health(sb: &Sandbox, name: &str, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let h = health(sb, name);
        if h["Status"] == want {
            return h;
        }
        assert!(Instant::now() < deadline, "{name} never {want}: {h}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `ps` line of the container `name`.
fn ps_line(sb: &Sandbox, name: &str, filter: Option<&str>) -> Option<String> {
    let mut args = vec!["ps", "--format", "{{.Names}} {{.Status}}"];
    if let Some(f) = filter {
        args.extend(["--filter", f]);
    }
    sb.den(&args)
        .ok()
        .lines()
        .find(|l| l.split(' ').next() == Some(name))
        .map(String::from)
}

/// A check that passes makes the container healthy; `ps` says so and filters by it; one with
/// a long interval is still starting.
#[test]
fn a_passing_check_makes_it_healthy() {
    let sb = Sandbox::new();
    let bb = busybox();
    sb.den(&[
        "run",
        "-d",
        "--name",
        "ok",
        "--health-cmd",
        "echo fine",
        "--health-interval",
        "200ms",
        &bb,
        "sleep",
        "60",
    ])
    .ok();
    sb.den(&[
        "run",
        "-d",
        "--name",
        "slow",
        "--health-cmd",
        "true",
        "--health-interval",
        "1h",
        &bb,
        "sleep",
        "60",
    ])
    .ok();
    let h = wait_health(&sb, "ok", "healthy");
    assert_eq!(h["FailingStreak"], 0, "{h}");
    assert_eq!(h["Log"][0]["ExitCode"], 0, "{h}");
    assert_eq!(h["Log"][0]["Output"], "fine\n", "{h}");
    let line = ps_line(&sb, "ok", None).unwrap();
    assert!(
        line.starts_with("ok Up ") && line.ends_with(" (healthy)"),
        "{line}"
    );
    let slow = ps_line(&sb, "slow", None).unwrap();
    assert!(slow.ends_with(" (health: starting)"), "{slow}");
    assert_eq!(health(&sb, "slow")["Status"], "starting");
    assert!(ps_line(&sb, "ok", Some("health=healthy")).is_some());
    assert!(ps_line(&sb, "slow", Some("health=healthy")).is_none());
    assert!(ps_line(&sb, "slow", Some("health=starting")).is_some());
    assert!(ps_line(&sb, "ok", Some("health=none")).is_none());
    sb.den(&["ps", "--filter", "health=sick"])
        .fails_with(1, "invalid filter");
    let cfg = sb
        .den(&["inspect", "--format", "{{json .Config.Healthcheck}}", "ok"])
        .ok();
    let cfg: Value = serde_json::from_str(cfg.trim()).unwrap();
    assert_eq!(cfg["Test"], serde_json::json!(["CMD-SHELL", "echo fine"]));
    assert_eq!(cfg["Interval"], 200_000_000);
    let events = sb
        .den(&[
            "events",
            "--since",
            "10m",
            "--until",
            "0s",
            "--filter",
            "container=ok",
        ])
        .ok();
    assert!(events.contains("health_status: healthy"), "{events}");
    sb.den(&["healthcheck", "run", "ok"]).ok();
    sb.den(&["rm", "-f", "ok", "slow"]).ok();
}

/// A check that fails makes the container unhealthy after the retries, with the streak and the
/// output in the log; `healthcheck run` says unhealthy and exits 1.
#[test]
fn a_failing_check_makes_it_unhealthy() {
    let sb = Sandbox::new();
    let bb = busybox();
    sb.den(&[
        "run",
        "-d",
        "--name",
        "bad",
        "--health-cmd",
        "echo oops >&2; exit 2",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        &bb,
        "sleep",
        "60",
    ])
    .ok();
    let h = wait_health(&sb, "bad", "unhealthy");
    assert!(h["FailingStreak"].as_u64().unwrap() >= 2, "{h}");
    let last = h["Log"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["ExitCode"], 2, "{h}");
    assert_eq!(last["Output"], "oops\n", "{h}");
    assert!(h["Log"].as_array().unwrap().len() <= 5, "{h}");
    assert!(ps_line(&sb, "bad", None).unwrap().ends_with(" (unhealthy)"));
    assert!(ps_line(&sb, "bad", Some("health=unhealthy")).is_some());
    let run = sb.den(&["healthcheck", "run", "bad"]);
    assert_eq!((run.code, run.out()), (1, "unhealthy\n".into()), "{run:?}");
    // The container's own log holds none of the checks' output.
    assert_eq!(sb.den(&["logs", "bad"]).ok(), "");
    sb.den(&["rm", "-f", "bad"]).ok();
}

/// A check that runs past its timeout is killed and counts as a failure (exit code -1).
#[test]
fn a_check_past_its_timeout_fails() {
    let sb = Sandbox::new();
    let bb = busybox();
    let started = Instant::now();
    sb.den(&[
        "run",
        "-d",
        "--name",
        "hang",
        "--health-cmd",
        "sleep 30",
        "--health-timeout",
        "300ms",
        "--health-interval",
        "200ms",
        "--health-retries",
        "1",
        &bb,
        "sleep",
        "60",
    ])
    .ok();
    let h = wait_health(&sb, "hang", "unhealthy");
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(h["Log"][0]["ExitCode"], -1, "{h}");
    let out = h["Log"][0]["Output"].as_str().unwrap();
    assert!(out.contains("exceeded timeout"), "{h}");
    sb.den(&["rm", "-f", "hang"]).ok();
}

/// Failures during the start period do not count; checks run at the start interval then.
#[test]
fn the_start_period_forgives_failures() {
    let sb = Sandbox::new();
    let bb = busybox();
    sb.den(&[
        "run",
        "-d",
        "--name",
        "boot",
        "--health-cmd",
        "test -e /tmp/up",
        "--health-interval",
        "1h",
        "--health-start-period",
        "60s",
        "--health-start-interval",
        "200ms",
        "--health-retries",
        "1",
        &bb,
        "sh",
        "-c",
        "sleep 2; touch /tmp/up; sleep 60",
    ])
    .ok();
    std::thread::sleep(Duration::from_millis(1300));
    let h = health(&sb, "boot");
    assert_eq!(h["Status"], "starting", "{h}");
    assert_eq!(h["FailingStreak"], 0, "{h}");
    assert!(!h["Log"].as_array().unwrap().is_empty(), "{h}");
    assert_eq!(h["Log"][0]["ExitCode"], 1, "{h}");
    wait_health(&sb, "boot", "healthy");
    sb.den(&["rm", "-f", "boot"]).ok();
}

/// An image's HEALTHCHECK (den build) runs; flags override parts of it; --no-healthcheck
/// turns it off (and `healthcheck run` then exits 125).
#[test]
fn image_healthcheck_and_no_healthcheck() {
    let sb = Sandbox::new();
    let bb = busybox();
    let dir = context(
        &sb,
        "hc",
        &format!("FROM {bb}\nHEALTHCHECK --interval=200ms --retries=1 CMD [\"true\"]\n"),
        &[],
    );
    build(&sb, &dir, &["-t", "hcimg"]).ok();
    sb.den(&["run", "-d", "--name", "img", "hcimg", "sleep", "60"])
        .ok();
    wait_health(&sb, "img", "healthy");
    sb.den(&[
        "run",
        "-d",
        "--name",
        "over",
        "--health-interval",
        "250ms",
        "hcimg",
        "sleep",
        "60",
    ])
    .ok();
    let cfg = sb
        .den(&[
            "inspect",
            "--format",
            "{{json .Config.Healthcheck}}",
            "over",
        ])
        .ok();
    let cfg: Value = serde_json::from_str(cfg.trim()).unwrap();
    assert_eq!(cfg["Test"], serde_json::json!(["CMD", "true"]), "{cfg}");
    assert_eq!(
        (cfg["Interval"].clone(), cfg["Retries"].clone()),
        (250_000_000.into(), 1.into())
    );
    wait_health(&sb, "over", "healthy");
    sb.den(&[
        "run",
        "-d",
        "--name",
        "off",
        "--no-healthcheck",
        "hcimg",
        "sleep",
        "60",
    ])
    .ok();
    std::thread::sleep(Duration::from_millis(600));
    let state = sb
        .den(&["inspect", "--format", "{{.State.Health}}", "off"])
        .ok();
    assert_eq!(state.trim(), "<nil>");
    let line = ps_line(&sb, "off", None).unwrap();
    assert!(!line.contains('('), "{line}");
    assert!(ps_line(&sb, "off", Some("health=none")).is_some());
    sb.den(&["healthcheck", "run", "off"])
        .fails_with(125, "has no defined healthcheck");
    sb.den(&["rm", "-f", "img", "over", "off"]).ok();
}

/// A foreground run with a check: checked while it runs, its output and exit status its own.
#[test]
fn a_foreground_run_is_checked_too() {
    let sb = Sandbox::new();
    let bb = busybox();
    let out = sb.den(&[
        "run",
        "--name",
        "fg",
        "--health-cmd",
        "true",
        "--health-interval",
        "100ms",
        &bb,
        "sh",
        "-c",
        "sleep 1.5; echo done; exit 3",
    ]);
    assert_eq!((out.code, out.out()), (3, "done\n".into()), "{out:?}");
    let h = health(&sb, "fg");
    assert_eq!(h["Status"], "healthy", "{h}");
    assert_eq!(sb.den(&["logs", "fg"]).ok(), "done\n");
    sb.den(&["rm", "fg"]).ok();
}

/// Bad health flags are one line each, exit 125, and leave the store as it was.
#[test]
fn bad_health_flags_are_refused() {
    let sb = Sandbox::new();
    let bb = busybox();
    sb.den(&["pull", "-q", &bb]).ok();
    let before = sb.store_listing();
    for (args, needle) in [
        (&["--health-interval", "5"][..], "invalid --health-interval"),
        (&["--health-timeout", "-1s"][..], "invalid --health-timeout"),
        (&["--health-retries", "-2"][..], "invalid --health-retries"),
        (
            &["--no-healthcheck", "--health-cmd", "true"][..],
            "--no-healthcheck conflicts",
        ),
    ] {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(args);
        a.extend([bb.as_str(), "true"]);
        sb.den(&a).fails_with(125, needle);
    }
    assert_eq!(sb.store_listing(), before);
}
