//! Resource limits (`--memory`, `--pids-limit`, `--cpus`, ...) as the unprivileged test users.
//! Which path runs follows from the facts the test finds itself: where the test runs inside a
//! cgroup v2 group delegated to its user whose `cgroup.controllers` has memory and pids (the
//! cgroup v2 CI machine, prepared by integration/setup.sh), the limits are real: an allocation
//! over `--memory` is OOM-killed, a fork bomb stops at `--pids-limit`, `stats` shows the limit
//! and the container's group is gone after it. Elsewhere (cgroup v1, hybrid hosts like the
//! development machines, no delegation) each flag is refused in one line, exit 125, with the
//! store unchanged, and `den info` says so.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::sandbox::{Sandbox, busybox};

/// The delegated group den should find: the highest group above this process's own that the
/// user owns, when its controllers include memory and pids. Read from the kernel's files, not
/// from den.
fn delegated_with_controllers() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = info.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        if right.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        Some(PathBuf::from(left.split_whitespace().nth(4)?))
    })?;
    let cg = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = cg.lines().find_map(|l| l.strip_prefix("0::/"))?.trim();
    let own = mount.join(rel);
    let uid = std::fs::metadata("/proc/self").ok()?.uid();
    let top = own
        .ancestors()
        .take_while(|d| d.starts_with(&mount) && *d != mount)
        .take_while(|d| std::fs::metadata(d).is_ok_and(|m| m.uid() == uid))
        .last()?
        .to_path_buf();
    let controllers = std::fs::read_to_string(top.join("cgroup.controllers")).ok()?;
    let have = |c| controllers.split_whitespace().any(|x| x == c);
    (have("memory") && have("pids")).then_some(top)
}

#[test]
fn limits_apply_where_a_delegated_v2_subtree_exists_else_are_refused() {
    let sb = Sandbox::new();
    let bb = busybox();
    let expected = delegated_with_controllers();
    let fields = sb
        .den(&[
            "info",
            "--format",
            "{{.CgroupDriver}} {{.MemoryLimit}} {{.PidsLimit}}",
        ])
        .ok();
    let human = sb.den(&["info"]).ok();
    match &expected {
        Some(dir) => {
            assert_eq!(fields.trim(), "cgroupfs true true", "{human}");
            assert!(
                human.contains(&format!(
                    "limits (--memory, --cpus, --pids-limit, ...) in {}",
                    dir.display()
                )),
                "{human}"
            );
            real_limits(&sb, &bb, dir);
        }
        None => {
            assert_eq!(fields.trim(), "none false false", "{human}");
            assert!(
                human.contains("no limits (--memory, --cpus, ... are refused): "),
                "{human}"
            );
            refused(&sb, &bb);
        }
    }
}

/// Each flag fails in one line naming it and the reason, with the fix in the hint; nothing is
/// made.
fn refused(sb: &Sandbox, bb: &str) {
    let before = sb.store_listing();
    for (flags, named) in [
        (
            &["--memory", "64m"][..],
            "--memory needs a cgroup v2 subtree delegated to you: ",
        ),
        (
            &["--pids-limit", "50", "--cpus", "0.5"][..],
            "--cpus, --pids-limit need a cgroup v2 subtree delegated to you: ",
        ),
        (
            &["-c", "512", "--cpuset-cpus", "0"][..],
            "--cpu-shares, --cpuset-cpus need a cgroup v2",
        ),
    ] {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend([bb, "true"]);
        let out = sb.den(&args);
        out.fails_with(125, named);
        assert!(
            out.stderr
                .contains("\nhint: run den inside a cgroup v2 group delegated to you"),
            "{}",
            out.stderr
        );
        // One error line (single-uid mode's note may come before it).
        let errors = out.stderr.lines().filter(|l| l.starts_with("den: error: "));
        assert_eq!(errors.count(), 1, "{}", out.stderr);
    }
    sb.den(&["create", "--memory", "1g", bb, "true"])
        .fails_with(125, "--memory needs a cgroup v2 subtree delegated to you");
    // A site's directory that is not the user's.
    let mut named = Sandbox::new();
    named.set_env("DEN_CGROUP", "/sys/fs/cgroup/den-not-yours");
    named
        .den(&["run", "--rm", "--memory", "64m", bb, "true"])
        .fails_with(125, "--memory needs a cgroup v2 subtree delegated to you");
    assert_eq!(
        sb.store_listing(),
        before,
        "a refused limit leaves the store as it was"
    );
    bad_values(sb, bb);
    // Without limits, the same container runs.
    assert_eq!(sb.den(&["run", "--rm", bb, "echo", "ok"]).ok(), "ok\n");
}

/// docker's checks of the values, on any machine (before the machine's are asked).
fn bad_values(sb: &Sandbox, bb: &str) {
    for (flags, message) in [
        (
            &["--memory", "4m"][..],
            "invalid --memory 4m: the smallest memory limit is 6MB",
        ),
        (&["--memory", "lots"][..], "invalid --memory lots"),
        (
            &["--memory-swap", "1g"][..],
            "invalid --memory-swap 1g: it needs --memory too",
        ),
        (
            &["--memory", "64m", "--memory-swap", "32m"][..],
            "it is memory plus swap: at least --memory",
        ),
        (
            &["--cpus", "100000"][..],
            "invalid --cpus 100000: the range is 0.01 to",
        ),
        (&["--cpuset-cpus", "3-1"][..], "invalid --cpuset-cpus 3-1"),
    ] {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend([bb, "true"]);
        sb.den(&args).fails_with(125, message);
    }
}

/// On a machine with a delegated subtree: the limits hold, and the group goes with the
/// container.
fn real_limits(sb: &Sandbox, bb: &str, dir: &Path) {
    // 200 MiB into a shell variable, under 32 MiB of memory and no swap: OOM-killed.
    let out = sb.den(&[
        "run",
        "--rm",
        "--memory",
        "32m",
        "--memory-swap",
        "32m",
        bb,
        "sh",
        "-c",
        "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived",
    ]);
    assert_eq!(out.code, 137, "{} {}", out.out(), out.stderr);
    assert!(!out.out().contains("survived"));
    // A fork bomb stops at the limit: forks fail, the container ends normally.
    let out = sb.den(&[
        "run",
        "--rm",
        "--pids-limit",
        "20",
        bb,
        "sh",
        "-c",
        "for i in $(seq 60); do sleep 3 & done; wait; echo done",
    ]);
    assert!(
        out.stderr.contains("can't fork")
            || out.stderr.contains("Resource temporarily unavailable"),
        "{}",
        out.stderr
    );
    assert!(out.out().contains("done"), "{}", out.out());
    // stats and inspect show the limit; rm takes the group with the container.
    let id = sb
        .den(&[
            "run",
            "-d",
            "--name",
            "capped",
            "--memory",
            "64m",
            "--pids-limit",
            "30",
            bb,
            "sleep",
            "60",
        ])
        .ok();
    let id = id.trim();
    let group = dir.join(format!("den-{id}"));
    assert!(group.join("memory.max").exists(), "{}", group.display());
    assert_eq!(
        std::fs::read_to_string(group.join("memory.max"))
            .unwrap()
            .trim(),
        "67108864"
    );
    assert_eq!(
        std::fs::read_to_string(group.join("pids.max"))
            .unwrap()
            .trim(),
        "30"
    );
    let stats = sb
        .den(&[
            "stats",
            "--no-stream",
            "--format",
            "{{.MemUsage}} {{.PIDs}}",
            "capped",
        ])
        .ok();
    assert!(stats.contains("/ 64MiB"), "{stats}");
    let inspect = sb
        .den(&[
            "inspect",
            "-f",
            "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}",
            "capped",
        ])
        .ok();
    assert_eq!(inspect.trim(), "67108864 30");
    let top = sb.den(&["top", "capped"]).ok();
    assert!(top.contains("sleep 60"), "{top}");
    sb.den(&["rm", "-f", "capped"]).ok();
    assert!(!group.exists(), "the group outlived its container");
}
