//! Container verbs docker users type after the first hour: rename (and, later, diff, commit,
//! pause/unpause, top, stats), as the unprivileged users, with docker's output and exit codes.

use std::time::{Duration, Instant};

use crate::sandbox::{Sandbox, busybox, registry};

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
    // The rename is in den's events journal, with the old name, as docker reports it.
    let events = sb
        .den(&[
            "events",
            "--until",
            "0s",
            "--filter",
            "event=rename",
            "--format",
            "{{.Actor.Attributes.name}} {{.Actor.Attributes.oldName}}",
        ])
        .ok();
    assert_eq!(events.trim(), "second first");
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

/// Changes made in a container, then `diff` while it runs and after it stopped, with `driver`.
fn diff_with(driver: &str) {
    let mut sb = Sandbox::new();
    sb.set_env("DEN_STORAGE_DRIVER", driver);
    let bb = busybox();
    sb.den(&["pull", "-q", &bb]).ok();
    let script = "mkdir -p /new/deep && echo x > /new/deep/f && echo changed >> /etc/passwd \
                  && rm -r /home && rm /bin/vi && echo started && while true; do sleep 0.1; done";
    sb.den(&["run", "-d", "--name", "d", &bb, "sh", "-c", script])
        .ok();
    until("the changes", Duration::from_secs(10), || {
        sb.den(&["logs", "d"]).out().contains("started")
    });
    let expected = [
        "C /bin",
        "D /bin/vi",
        "C /etc",
        "C /etc/passwd",
        "D /home",
        "A /new",
        "A /new/deep",
        "A /new/deep/f",
    ];
    let check = |when: &str| {
        let out = sb.den(&["diff", "d"]).ok();
        let lines: Vec<&str> = out.lines().collect();
        for want in expected {
            assert!(
                lines.contains(&want),
                "{driver}, {when}: {want} missing:\n{out}"
            );
        }
        let mut sorted = lines.clone();
        sorted.sort_by_key(|l| l[2..].to_string());
        assert_eq!(lines, sorted, "{driver}, {when}: sorted by path:\n{out}");
        for l in &lines {
            assert!(
                matches!(&l[..2], "A " | "C " | "D ") && l[2..].starts_with('/'),
                "{driver}, {when}: docker's line shape: {l}"
            );
            // Nothing under a directory that is gone, nothing that was not touched.
            assert!(!l.starts_with("D /home/"), "{driver}, {when}: {out}");
            assert!(!l.contains("/usr"), "{driver}, {when}: {out}");
            assert!(!l.contains("/etc/hosts"), "{driver}, {when}: {out}");
        }
        out
    };
    let running = check("running");
    sb.den(&["stop", "-t", "1", "d"]).ok();
    let stopped = check("stopped");
    assert_eq!(running, stopped, "{driver}");
    // A container that changed nothing has no lines (den's own mount points are not changes).
    sb.den(&["run", "--name", "quiet", &bb, "true"]).ok();
    let quiet = sb.den(&["container", "diff", "quiet"]).ok();
    assert_eq!(quiet, "", "{driver}");
    sb.den(&["diff", "nosuch"])
        .fails_with(1, "no such container: nosuch");
}

#[test]
fn diff_overlay() {
    diff_with("overlay");
}

#[test]
fn diff_fuse_overlayfs() {
    diff_with("fuse-overlayfs");
}

#[test]
fn diff_vfs() {
    diff_with("vfs");
}

#[test]
fn commit_a_running_container() {
    let sb = ready();
    let bb = busybox();
    let script =
        "echo made > /made && rm /bin/vi && echo started && while true; do sleep 0.1; done";
    sb.den(&[
        "run",
        "-d",
        "--name",
        "c",
        "-e",
        "FROM_RUN=1",
        "-w",
        "/tmp",
        "--label",
        "from=run",
        "--stop-signal",
        "SIGUSR1",
        &bb,
        "sh",
        "-c",
        script,
    ])
    .ok();
    until("the changes", Duration::from_secs(10), || {
        sb.den(&["logs", "c"]).out().contains("started")
    });
    let id = sb
        .den(&[
            "commit",
            "-m",
            "by hand",
            "-a",
            "Ann <ann@example.org>",
            "-c",
            "CMD [\"cat\", \"/made\"]",
            "--change",
            "ENV COMMITTED=yes",
            "-c",
            "VOLUME /data",
            "-c",
            "LABEL stage=committed",
            "c",
            "snap:1",
        ])
        .ok();
    assert!(id.starts_with("sha256:") && id.trim().len() == 71, "{id}");
    let images = sb
        .den(&[
            "images",
            "--no-trunc",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.ID}}",
        ])
        .ok();
    assert!(
        images
            .lines()
            .any(|l| l.ends_with(id.trim()) && l.starts_with("snap:1 ")),
        "{images}"
    );
    // The container still runs, and the image has its changes and the new settings.
    assert_eq!(
        sb.den(&["inspect", "--format", "{{.State.Status}}", "c"])
            .ok()
            .trim(),
        "running"
    );
    assert_eq!(sb.den(&["run", "--rm", "snap:1"]).ok(), "made\n");
    assert_eq!(
        sb.den(&[
            "run",
            "--rm",
            "snap:1",
            "sh",
            "-c",
            "test -e /bin/vi || echo gone; echo $COMMITTED $FROM_RUN; pwd"
        ])
        .ok(),
        "gone\nyes 1\n/tmp\n"
    );
    let hist = sb
        .den(&[
            "history",
            "--no-trunc",
            "--format",
            "{{.CreatedBy}}|{{.Comment}}",
            "snap:1",
        ])
        .ok();
    // docker's history names the container's command as what made the layer.
    assert!(
        hist.starts_with(&format!("sh -c {script}|by hand\n")),
        "{hist}"
    );
    let inspect = sb.den(&["image", "inspect", "snap:1"]).ok();
    for want in [
        "Ann <ann@example.org>",
        "\"/data\"",
        "\"stage\": \"committed\"",
        "\"from\": \"run\"",
        "\"StopSignal\": \"SIGUSR1\"",
    ] {
        assert!(inspect.contains(want), "{want}: {inspect}");
    }
    // Without a name: an untagged image, its id printed; `container commit` is the same verb.
    let bare = sb.den(&["container", "commit", "c"]).ok();
    assert!(bare.starts_with("sha256:"), "{bare}");
    // The container's user, as docker's commit keeps it.
    sb.den(&["create", "--name", "u", "-u", "1:1", &bb, "true"])
        .ok();
    sb.den(&["commit", "u", "snap:user"]).ok();
    assert_eq!(
        sb.den(&["image", "inspect", "-f", "{{.Config.User}}", "snap:user"])
            .ok()
            .trim(),
        "1:1"
    );
    sb.den(&["rm", "u"]).ok();
    // docker's refusals: an unknown container, an instruction commit does not take.
    sb.den(&["commit", "nosuch", "x:1"])
        .fails_with(1, "no such container: nosuch");
    sb.den(&["commit", "-c", "RUN true", "c", "x:1"])
        .fails_with(1, "RUN true");
    sb.den(&["rm", "-f", "c"]).ok();
}

#[test]
fn commit_pauses_the_container_while_it_copies() {
    let sb = ready();
    let bb = busybox();
    let script = "while true; do echo tick; echo 0123456789 >> /grow; sleep 0.05; done";
    sb.den(&["run", "-d", "--name", "w", &bb, "sh", "-c", script])
        .ok();
    until("ticks", Duration::from_secs(10), || ticks(&sb, "w") > 2);
    let state = |sb: &Sandbox| {
        sb.den(&["inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "w"])
            .ok()
            .trim()
            .to_string()
    };
    // -p (docker's default): paused for the copy, then going on as before.
    sb.den(&["commit", "w", "snap:paused"]).ok();
    assert_eq!(state(&sb), "running false");
    let before = ticks(&sb, "w");
    until("ticks after the commit", Duration::from_secs(10), || {
        ticks(&sb, "w") > before
    });
    let grow = sb
        .den(&["run", "--rm", "snap:paused", "wc", "-c", "/grow"])
        .ok();
    let bytes: usize = grow.split_whitespace().next().unwrap().parse().unwrap();
    assert!(bytes > 0 && bytes.is_multiple_of(11), "whole lines: {grow}");
    // --pause=false copies it running.
    sb.den(&["commit", "--pause=false", "w", "snap:running"])
        .ok();
    assert_eq!(state(&sb), "running false");
    // A container paused by the user stays paused after a commit.
    sb.den(&["pause", "w"]).ok();
    sb.den(&["commit", "-p", "w", "snap:held"]).ok();
    assert_eq!(state(&sb), "paused true");
    sb.den(&["unpause", "w"]).ok();
    sb.den(&["rm", "-f", "w"]).ok();
}

#[test]
fn commit_with_vfs_makes_a_layer_of_what_changed() {
    let mut sb = Sandbox::new();
    sb.set_env("DEN_STORAGE_DRIVER", "vfs");
    let bb = busybox();
    sb.den(&["pull", "-q", &bb]).ok();
    let script = "echo made > /made && mkdir -p /srv/a && echo deep > /srv/a/f && rm /bin/vi && rm -r /home && echo changed >> /etc/passwd";
    sb.den(&["run", "--name", "v", &bb, "sh", "-c", script])
        .ok();
    let layers = |img: &str| {
        sb.den(&["image", "inspect", "-f", "{{len .RootFS.Layers}}", img])
            .ok()
            .trim()
            .parse::<usize>()
            .unwrap()
    };
    sb.den(&["commit", "v", "snap:vfs"]).ok();
    assert_eq!(layers("snap:vfs"), layers(&bb) + 1, "one layer more");
    let check = "cat /made /srv/a/f; test -e /bin/vi || echo vi gone; test -e /home || echo home gone; tail -n 1 /etc/passwd; test -e /bin/sh && echo sh kept";
    assert_eq!(
        sb.den(&["run", "--rm", "snap:vfs", "sh", "-c", check]).ok(),
        "made\ndeep\nvi gone\nhome gone\nchanged\nsh kept\n"
    );
    // The layer holds what changed only: a container of the new image starts with no diff.
    sb.den(&["create", "--name", "again", "snap:vfs", "true"])
        .ok();
    assert_eq!(sb.den(&["diff", "again"]).ok(), "");
    sb.den(&["rm", "v", "again"]).ok();
}

fn ticks(sb: &Sandbox, name: &str) -> usize {
    sb.den(&["logs", name])
        .out()
        .lines()
        .filter(|l| *l == "tick")
        .count()
}

#[test]
fn pause_and_unpause_stop_and_continue_every_process() {
    let sb = ready();
    let bb = busybox();
    // Two processes: the shell and a child loop, both ticking.
    let script = "trap 'exit 0' TERM; (while true; do echo tick; sleep 0.1; done) & \
                  while true; do echo tick; sleep 0.1; done";
    sb.den(&["run", "-d", "--name", "p", &bb, "sh", "-c", script])
        .ok();
    until("ticks", Duration::from_secs(10), || ticks(&sb, "p") > 2);
    assert_eq!(sb.den(&["pause", "p"]).ok(), "p\n");
    let ps = sb
        .den(&["ps", "--format", "{{.Names}}|{{.Status}}|{{.State}}"])
        .ok();
    assert!(
        ps.lines()
            .any(|l| l.starts_with("p|Up ") && l.ends_with(" (Paused)|paused")),
        "{ps}"
    );
    let state = sb
        .den(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.Paused}} {{.State.Running}}",
            "p",
        ])
        .ok();
    assert_eq!(state.trim(), "paused true true");
    std::thread::sleep(Duration::from_millis(300));
    let frozen = ticks(&sb, "p");
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(ticks(&sb, "p"), frozen, "nothing runs while paused");
    sb.den(&["pause", "p"]).fails_with(1, "already paused");
    // exec into a paused container is refused, as docker refuses it.
    sb.den(&["exec", "p", "true"])
        .fails_with(1, "is paused, unpause the container before exec");
    sb.den(&["container", "unpause", "p"]).ok();
    until("ticks again", Duration::from_secs(5), || {
        ticks(&sb, "p") > frozen + 2
    });
    sb.den(&["unpause", "p"]).fails_with(1, "not paused");
    assert_eq!(
        sb.den(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.Paused}}",
            "p"
        ])
        .ok()
        .trim(),
        "running false"
    );
    // stop of a paused container: its processes continue to act on the stop signal.
    sb.den(&["pause", "p"]).ok();
    let t0 = Instant::now();
    sb.den(&["stop", "-t", "5", "p"]).ok();
    assert!(
        t0.elapsed() < Duration::from_secs(4),
        "SIGTERM was acted on"
    );
    assert_eq!(
        sb.den(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.Paused}} {{.State.ExitCode}}",
            "p"
        ])
        .ok()
        .trim(),
        "exited false 0"
    );
    // pause and unpause are in den's events journal, as docker reports them.
    let events = sb
        .den(&[
            "events",
            "--until",
            "0s",
            "--filter",
            "container=p",
            "--format",
            "{{.Action}}",
        ])
        .ok();
    let actions: Vec<&str> = events.lines().collect();
    for a in ["pause", "unpause"] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    // kill of a paused container.
    sb.den(&["start", "p"]).ok();
    until("running", Duration::from_secs(10), || {
        ticks(&sb, "p") > frozen + 4
    });
    sb.den(&["pause", "p"]).ok();
    sb.den(&["kill", "p"]).ok();
    assert_eq!(
        sb.den(&["inspect", "--format", "{{.State.Status}}", "p"])
            .ok()
            .trim(),
        "exited"
    );
    // Refusals, and what den info says.
    sb.den(&["pause", "p"]).fails_with(1, "not running");
    sb.den(&["pause", "nosuch"])
        .fails_with(1, "no such container: nosuch");
    let info = sb.den(&["info"]).ok();
    // SIGSTOP/SIGCONT, or the freezer where the tests run in a delegated cgroup v2 group
    // (integration/run.sh starts them in one where setup.sh could make it).
    assert!(
        info.lines().any(|l| l.starts_with("pause:")
            && (l.contains("SIGSTOP") || l.contains("cgroup v2 freezer"))),
        "{info}"
    );
}

#[test]
fn top_lists_the_container_processes_with_host_pids() {
    let sb = ready();
    let bb = busybox();
    sb.den(&[
        "run",
        "-d",
        "--name",
        "t",
        &bb,
        "sh",
        "-c",
        "sleep 1000 & sleep 1001",
    ])
    .ok();
    let pid: i32 = {
        let mut pid = 0;
        until("its pid", Duration::from_secs(10), || {
            pid = sb
                .den(&["inspect", "--format", "{{.State.Pid}}", "t"])
                .out()
                .trim()
                .parse()
                .unwrap_or(0);
            pid > 0
        });
        pid
    };
    let mut out = String::new();
    until("both sleeps", Duration::from_secs(10), || {
        out = sb.den(&["top", "t"]).ok();
        out.contains("sleep 1000") && out.contains("sleep 1001")
    });
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
        "{out}"
    );
    let pids: Vec<i32> = lines
        .map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2, "only the container's processes: {out}");
    assert!(
        pids.contains(&pid),
        "host pids, the init's among them: {out}"
    );
    assert!(!out.contains("den-run"), "{out}");
    // ps options are the host's.
    let custom = sb.den(&["container", "top", "t", "-o", "pid,comm"]).ok();
    let mut lines = custom.lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["PID", "COMMAND"]
    );
    assert!(lines.all(|l| l.ends_with("sleep")), "{custom}");
    sb.den(&["top", "t", "-o", "comm"])
        .fails_with(1, "PID column");
    sb.den(&["rm", "-f", "t"]).ok();
    sb.den(&["create", "--name", "idle", &bb, "true"]).ok();
    sb.den(&["top", "idle"]).fails_with(1, "not running");
    sb.den(&["top", "nosuch"])
        .fails_with(1, "no such container: nosuch");
}

#[test]
fn stats_from_proc() {
    let sb = ready();
    let bb = busybox();
    sb.den(&[
        "run",
        "-d",
        "--name",
        "busy",
        &bb,
        "sh",
        "-c",
        "sleep 1000 & while :; do :; done",
    ])
    .ok();
    sb.den(&["run", "-d", "--name", "idle", &bb, "sleep", "1000"])
        .ok();
    until("both running", Duration::from_secs(10), || {
        sb.den(&["ps", "-q"]).out().lines().count() == 2
    });
    let table = sb.den(&["stats", "--no-stream"]).ok();
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    for col in [
        "CONTAINER ID",
        "NAME",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "NET I/O",
        "BLOCK I/O",
        "PIDS",
    ] {
        assert!(header.contains(col), "{col}: {table}");
    }
    assert_eq!(lines.count(), 2, "every running container: {table}");
    let row = sb
        .den(&[
            "stats",
            "--no-stream",
            "--format",
            "{{.Container}}|{{.Name}}|{{.PIDs}}|{{.CPUPerc}}|{{.MemUsage}}|{{.MemPerc}}|{{.NetIO}}|{{.BlockIO}}|{{.ID}}",
            "busy",
        ])
        .ok();
    let f: Vec<&str> = row.trim().split('|').collect();
    assert_eq!(f.len(), 9, "{row}");
    assert_eq!(&f[..3], ["busy", "busy", "2"], "{row}");
    let cpu: f64 = f[3].trim_end_matches('%').parse().unwrap();
    assert!(cpu > 10.0, "a busy loop uses CPU: {row}");
    assert!(f[4].contains(" / ") && f[4].ends_with("iB"), "{row}");
    assert!(
        f[5].ends_with('%') && f[6].contains(" / ") && f[7].contains(" / "),
        "{row}"
    );
    assert_eq!(f[8].len(), 12, "{row}");
    let idle = sb
        .den(&[
            "container",
            "stats",
            "--no-stream",
            "--format",
            "{{.CPUPerc}}",
            "idle",
        ])
        .ok();
    let cpu: f64 = idle.trim().trim_end_matches('%').parse().unwrap();
    assert!(cpu < 5.0, "{idle}");
    let json = sb
        .den(&["stats", "--no-stream", "--format", "json", "idle"])
        .ok();
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["Name"], "idle");
    assert_eq!(v["PIDs"], "1");
    sb.den(&["stats", "--no-stream", "nosuch"])
        .fails_with(1, "no such container: nosuch");
    // --all: stopped containers too, reading zero as docker's do; --no-trunc: full ids.
    sb.den(&["create", "--name", "halted", &bb, "true"]).ok();
    let count = |args: &[&str]| sb.den(args).ok().lines().count();
    assert_eq!(
        count(&["stats", "--no-stream"]),
        3,
        "header and the running two"
    );
    assert_eq!(
        count(&["stats", "--no-stream", "-a"]),
        4,
        "the stopped one too"
    );
    let zeros = sb
        .den(&[
            "stats",
            "--all",
            "--no-stream",
            "--format",
            "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.MemPerc}}|{{.NetIO}}|{{.BlockIO}}|{{.PIDs}}",
        ])
        .ok();
    assert!(
        zeros
            .lines()
            .any(|l| l == "halted|0.00%|0B / 0B|0.00%|0B / 0B|0B / 0B|0"),
        "{zeros}"
    );
    let full = sb
        .den(&[
            "stats",
            "--no-stream",
            "--no-trunc",
            "--format",
            "{{.ID}}",
            "idle",
        ])
        .ok();
    let id = sb.den(&["inspect", "-f", "{{.Id}}", "idle"]).ok();
    assert_eq!(full.trim(), id.trim());
    assert_eq!(full.trim().len(), 64, "{full}");
    sb.den(&["rm", "-f", "busy", "idle", "halted"]).ok();
}

/// A registry that serves docker's search API (`/v1/search`), which the distribution registry
/// the other tests use does not: `/v2/` answers 200, a search for `web` one result, anything
/// else 404. Plain http on 127.0.0.1 (den tries https first there; a TLS hello gets a 404 and
/// den falls back, as it does for the test registry).
fn search_api() -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16384 {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
                // A TLS hello (0x16): answer at once, as a plain http server does.
                if head.first() == Some(&0x16) {
                    break;
                }
            }
            let head = String::from_utf8_lossy(&head);
            let path = head.split_whitespace().nth(1).unwrap_or("");
            let (status, body) = if path == "/v2/" {
                ("200 OK", "{}")
            } else if path.starts_with("/v1/search?q=web&") {
                (
                    "200 OK",
                    r#"{"num_results":1,"query":"web","results":[{"name":"acme/web","description":"A web server","star_count":42,"is_official":true,"is_automated":false}]}"#,
                )
            } else {
                ("404 Not Found", "{}")
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

#[test]
fn search_without_a_registry_uses_the_configured_ones() {
    let sb = Sandbox::new();
    let shared = &registry().addr;
    let api = search_api();
    // Nothing configured: one line saying how to name a registry or configure one.
    sb.den(&["search", "web"])
        .fails_with(125, "[registry] search");
    sb.config(&format!("[registry]\nsearch = [\"{shared}\", \"{api}\"]\n"));
    let out = sb
        .den(&[
            "search",
            "--format",
            "{{.Name}}|{{.Description}}|{{.StarCount}}|{{.IsOfficial}}",
            "web",
        ])
        .ok();
    // The distribution registry's catalog, then the search API's answer, in the config's order.
    assert_eq!(
        out,
        format!("{shared}/test/web||0|\nacme/web|A web server|42|[OK]\n")
    );
    // A term that names its registry searches only that one.
    let named = sb
        .den(&["search", "--format", "{{.Name}}", &format!("{api}/web")])
        .ok();
    assert_eq!(named, "acme/web\n");
    // --limit applies to each registry, as podman's does.
    let limited = sb
        .den(&["search", "--limit", "1", "--format", "{{.Name}}", "b"])
        .ok();
    assert!(limited.lines().count() <= 2, "{limited}");
    // One registry unreachable among several: the others' results still come.
    sb.config(&format!(
        "[registry]\nsearch = [\"127.0.0.1:1\", \"{api}\"]\n"
    ));
    assert_eq!(
        sb.den(&["search", "--format", "{{.Name}}", "web"]).ok(),
        "acme/web\n"
    );
}
