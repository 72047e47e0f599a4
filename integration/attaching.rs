//! How a terminal attaches to a container: `run -a`, `--detach-keys` (run, start, attach, and
//! docker's `detachKeys` setting), `--sig-proxy` (run, attach), `attach --no-stdin`; docker's
//! outputs and exit codes on detach.

use std::io::Read;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::sandbox::{Sandbox, busybox};

fn ready() -> Sandbox {
    let sb = Sandbox::new();
    sb.den(&["pull", "-q", &busybox()]).ok();
    sb
}

fn status(sb: &Sandbox, name: &str) -> String {
    sb.den(&["inspect", "--format", "{{.State.Status}}", name])
        .ok()
        .trim()
        .to_string()
}

fn until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `den ARGS` started with its stdout and stderr piped, after its first `want` bytes of output
/// arrived (so it is attached and relaying).
fn spawn_until(sb: &Sandbox, args: &[&str], want: &[u8]) -> Child {
    let mut child = sb
        .cmd("den", args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = vec![0u8; want.len()];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    assert_eq!(first, want, "{}", String::from_utf8_lossy(&first));
    child
}

fn signal(child: &Child, sig: &str) {
    assert!(
        std::process::Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
}

/// The rest of a child's stdout and its exit status (None: killed by a signal).
fn finish(mut child: Child) -> (String, Option<i32>) {
    let mut rest = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut rest)
        .unwrap();
    (rest, child.wait().unwrap().code())
}

#[test]
fn run_a_picks_the_streams_and_the_log_keeps_all() {
    let sb = ready();
    let bb = busybox();
    let both = "echo to-stdout; echo to-stderr >&2";
    let out = sb.den(&["run", "--name", "o", "-a", "stdout", &bb, "sh", "-c", both]);
    assert_eq!(out.ok(), "to-stdout\n");
    assert!(!out.stderr.contains("to-stderr"), "{}", out.stderr);
    let logs = sb.den(&["logs", "o"]);
    assert_eq!(logs.out(), "to-stdout\n");
    assert!(logs.stderr.contains("to-stderr"), "{}", logs.stderr);
    // case-insensitive, as docker's
    let out = sb.den(&["run", "--rm", "-a", "STDERR", &bb, "sh", "-c", both]);
    assert_eq!(out.ok(), "");
    assert!(out.stderr.contains("to-stderr"), "{}", out.stderr);
    // the exit status is the container's
    assert_eq!(
        sb.den(&["run", "--rm", "-a", "stdout", &bb, "sh", "-c", "exit 7"])
            .code,
        7
    );
    // -a stdin alone: docker prints the id; without -i the container's stdin stays closed
    let out = sb.den_input(
        &[
            "run",
            "--name",
            "in",
            "-a",
            "stdin",
            &bb,
            "sh",
            "-c",
            "cat; echo done",
        ],
        b"piped\n",
    );
    let id = out.ok().trim().to_string();
    assert_eq!(id.len(), 64, "{id:?}");
    assert_eq!(sb.den(&["logs", "in"]).ok(), "done\n");
    // with -i it is sent
    let out = sb.den_input(
        &[
            "run",
            "--name",
            "in2",
            "-i",
            "-a",
            "stdin",
            &bb,
            "sh",
            "-c",
            "cat; echo done",
        ],
        b"piped\n",
    );
    assert_eq!(out.ok().trim().len(), 64);
    assert_eq!(sb.den(&["logs", "in2"]).ok(), "piped\ndone\n");
    // docker's Config.Attach*: -a as given; run -d attaches nothing
    let fmt = "{{.Config.AttachStdin}} {{.Config.AttachStdout}} {{.Config.AttachStderr}} \
               {{.Config.OpenStdin}} {{.Config.StdinOnce}}";
    sb.den(&["create", "--name", "c", "-a", "stderr", &bb, "true"])
        .ok();
    assert_eq!(
        sb.den(&["inspect", "--format", fmt, "c"]).ok(),
        "false false true false false\n"
    );
    sb.den(&["create", "--name", "ci", "-i", &bb, "true"]).ok();
    assert_eq!(
        sb.den(&["inspect", "--format", fmt, "ci"]).ok(),
        "true true true true true\n"
    );
    sb.den(&["run", "-di", "--name", "d", &bb, "true"]).ok();
    assert_eq!(
        sb.den(&["inspect", "--format", fmt, "d"]).ok(),
        "false false false true false\n"
    );
}

#[test]
fn run_a_mistakes_are_dockers_and_leave_the_store_alone() {
    let sb = ready();
    let bb = busybox();
    sb.den(&["run", "-d", "-a", "stdout", &bb, "true"])
        .fails_with(125, "Conflicting options: -a and -d");
    sb.den(&["run", "-a", "tty", &bb, "true"])
        .fails_with(125, "\"tty\"")
        .fails_with(125, "valid streams are STDIN, STDOUT and STDERR");
    let out = sb.den(&["run", "--detach-keys", "ctrl-1", &bb, "true"]);
    out.fails_with(125, "\"ctrl-1\"").fails_with(125, "ctrl-<");
    assert_eq!(
        out.stderr.lines().filter(|l| l.contains("error")).count(),
        1
    );
    // the same spec for attach and start: the verb's own failure status, as docker's
    sb.den(&["create", "--name", "c", &bb, "true"]).ok();
    sb.den(&["start", "-a", "--detach-keys=ctrl-a,,x", "c"])
        .fails_with(1, "\"ctrl-a,,x\"");
    assert_eq!(status(&sb, "c"), "created");
    sb.den(&["attach", "--detach-keys", "alt-x", "c"])
        .fails_with(1, "\"alt-x\"");
    // run's own flags are not create's (docker's create does not know them)
    sb.den(&["create", "--sig-proxy=false", &bb, "true"])
        .fails_with(125, "--sig-proxy is a flag of run, not of create");
    sb.den(&["create", "--detach-keys", "ctrl-a", &bb, "true"])
        .fails_with(125, "--detach-keys is a flag of run");
    // a bad flag stops --replace before it removes anything
    sb.den(&["run", "--replace", "--name", "c", "-a", "nope", &bb, "true"])
        .fails_with(125, "\"nope\"");
    assert_eq!(sb.den(&["ps", "-a", "--format", "{{.Names}}"]).ok(), "c\n");
}

#[test]
fn detach_keys_leave_terminal_containers_running() {
    let sb = ready();
    let bb = busybox();
    // run -it: ctrl-p ctrl-q leaves; run exits 0 and says nothing, as docker's
    let out = sb.den_pty(
        &[
            "expect:# ",
            "send:echo $((6*7))\\r",
            "expect:42",
            "send:\\x10\\x11",
        ],
        &["run", "-it", "--name", "r", &bb, "sh"],
    );
    assert_eq!(out.code, 0, "{}\n{}", out.out(), out.stderr);
    assert_eq!(status(&sb, "r"), "running");
    // attach with other keys: docker's attach says "read escape sequence" and exits 1
    let out = sb.den_pty(
        &["send:\\r", "expect:# ", "send:\\x01"],
        &["attach", "--detach-keys", "ctrl-a", "r"],
    );
    assert_eq!(out.code, 1, "{}", out.out());
    assert!(out.out().contains("read escape sequence"), "{}", out.out());
    assert_eq!(status(&sb, "r"), "running");
    // a ctrl-p alone still reaches the container, and the exit status is the container's
    let out = sb.den_pty(
        &[
            "send:\\r",
            "expect:# ",
            "send:read x; echo len=${#x}\\r",
            "send:\\x10z\\r",
            "expect:len=2",
            "send:exit 5\\r",
        ],
        &["attach", "r"],
    );
    assert_eq!(out.code, 5, "{}", out.out());
    assert!(!out.out().contains("read escape sequence"), "{}", out.out());
    assert_eq!(status(&sb, "r"), "exited");
    // start -ai with keys from docker's config (detachKeys); start exits 0 on detach
    std::fs::create_dir_all(sb.home.join(".docker")).unwrap();
    std::fs::write(
        sb.home.join(".docker/config.json"),
        r#"{"detachKeys": "ctrl-x,x"}"#,
    )
    .unwrap();
    sb.den(&["create", "-it", "--name", "s", &bb, "sh"]).ok();
    let out = sb.den_pty(&["expect:# ", "send:\\x18x"], &["start", "-ai", "s"]);
    assert_eq!(out.code, 0, "{}", out.out());
    assert_eq!(status(&sb, "s"), "running");
    // --detach-keys="" disables detaching (podman's): the keys reach the shell
    let out = sb.den_pty(
        &[
            "send:\\r",
            "expect:# ",
            "send:read x; echo len=${#x}\\r",
            "send:\\x18x\\r",
            "expect:len=2",
            "send:exit 3\\r",
        ],
        &["attach", "--detach-keys=", "s"],
    );
    assert_eq!(out.code, 3, "{}", out.out());
    assert_eq!(status(&sb, "s"), "exited");
}

#[test]
fn without_a_terminal_input_passes_unchanged_and_no_stdin_sends_none() {
    let sb = ready();
    let bb = busybox();
    // docker detaches only with a terminal: ctrl-p ctrl-q are bytes like any other here
    sb.den(&["run", "-di", "--name", "cat", &bb, "cat"]).ok();
    let out = sb.den_input(&["attach", "cat"], b"a\x10\x11b\n");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.ok_bytes(), b"a\x10\x11b\n");
    // --no-stdin: the container waits for input that never comes
    let script = "read -t 2 x; echo got:$x";
    sb.den(&["run", "-di", "--name", "n", &bb, "sh", "-c", script])
        .ok();
    assert_eq!(
        sb.den_input(&["attach", "--no-stdin", "n"], b"typed\n")
            .ok(),
        "got:\n"
    );
}

#[test]
fn sig_proxy_forwards_signals_or_leaves_the_container_running() {
    let sb = ready();
    let bb = busybox();
    let script = "trap 'echo got INT; exit 9' INT; while :; do echo tick; sleep 0.2; done";
    // attach: ctrl-c (SIGINT) reaches the container (docker's default)
    sb.den(&["run", "-d", "--name", "p", &bb, "sh", "-c", script])
        .ok();
    let child = spawn_until(&sb, &["attach", "p"], b"tick\n");
    signal(&child, "-INT");
    let (rest, code) = finish(child);
    assert_eq!(code, Some(9), "{rest}");
    assert!(rest.ends_with("got INT\n"), "{rest}");
    // attach --sig-proxy=false: ctrl-c ends den alone
    let ticks = "trap '' INT; while :; do echo tick; sleep 0.2; done";
    sb.den(&["run", "-d", "--name", "q", &bb, "sh", "-c", ticks])
        .ok();
    let child = spawn_until(&sb, &["attach", "--sig-proxy=false", "q"], b"tick\n");
    signal(&child, "-INT");
    let (_, code) = finish(child);
    assert_ne!(code, Some(0));
    assert_eq!(status(&sb, "q"), "running");
    // run --sig-proxy=false: ctrl-c detaches den from a foreground run; the container runs on
    let child = spawn_until(
        &sb,
        &[
            "run",
            "--sig-proxy=false",
            "--name",
            "f",
            &bb,
            "sh",
            "-c",
            ticks,
        ],
        b"tick\n",
    );
    signal(&child, "-INT");
    let (_, code) = finish(child);
    assert_ne!(code, Some(0));
    assert_eq!(status(&sb, "f"), "running");
    // the log goes on (the monitor flushes it after it relays a batch)
    until("the detached run's log", Duration::from_secs(10), || {
        sb.den(&["logs", "f"]).out().starts_with("tick\ntick\n")
    });
    // and its exit status is the container's when nothing interrupts it
    assert_eq!(
        sb.den(&[
            "run",
            "--rm",
            "--sig-proxy=false",
            &bb,
            "sh",
            "-c",
            "exit 4"
        ])
        .code,
        4
    );
    for c in ["q", "f"] {
        sb.den(&["stop", "-t", "0", c]).ok();
    }
}

#[test]
fn exec_detaches_and_its_process_runs_on() {
    let sb = ready();
    let bb = busybox();
    sb.den(&["run", "-d", "--name", "ex", &bb, "sleep", "1000"])
        .ok();
    // the process outlives den: its terminal is held, not hung up
    let out = sb.den_pty(
        &[
            "expect:# ",
            "send:sleep 1; touch /after-detach\\r",
            "send:\\x10\\x11",
        ],
        &["exec", "-it", "ex", "sh"],
    );
    assert_eq!(out.code, 1, "{}", out.out());
    assert!(out.out().contains("read escape sequence"), "{}", out.out());
    until("the detached exec's file", Duration::from_secs(10), || {
        sb.den(&["exec", "ex", "test", "-f", "/after-detach"]).code == 0
    });
    // other keys; a disabled sequence passes through; bad keys are refused
    let out = sb.den_pty(
        &["expect:# ", "send:\\x01"],
        &["exec", "-it", "--detach-keys", "ctrl-a", "ex", "sh"],
    );
    assert_eq!(out.code, 1, "{}", out.out());
    let out = sb.den_pty(
        &[
            "expect:# ",
            "send:read x; echo len=${#x}\\r",
            "send:\\x10\\x11z\\r",
            "expect:len=",
            "send:exit 6\\r",
        ],
        &["exec", "-it", "--detach-keys=", "ex", "sh"],
    );
    assert_eq!(out.code, 6, "{}", out.out());
    sb.den(&["exec", "--detach-keys", "ctrl-", "ex", "true"])
        .fails_with(1, "\"ctrl-\"");
    sb.den(&["stop", "-t", "0", "ex"]).ok();
}
