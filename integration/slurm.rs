//! den under a real Slurm (Debian's slurm-wlm: slurmctld, slurmd and munge on loopback, one node,
//! started as root by `integration/slurm.sh` from setup.sh): steps with one and two tasks, the
//! job's environment and exit status, `scancel` stopping the container with nothing left behind,
//! and a job array pulling an image once into one store.
//!
//! As on a compute node: the store on node-local disk (`DEN_ROOT=$TMPDIR/den`), no
//! XDG_RUNTIME_DIR, no systemd, Slurm's default process tracking (`proctrack/linuxproc`, which
//! signals a job's processes once and forgets those whose batch shell has died).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::sandbox::{Registry, Sandbox, busybox};

/// Slurm must be up: these tests fail, with the fix, where it is not.
fn slurm_up() {
    let out = std::process::Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output();
    let states = out
        .as_ref()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    assert!(
        out.is_ok_and(|o| o.status.success())
            && states.lines().any(|s| {
                // `completing`: an earlier job's clean-up; the node takes new ones meanwhile.
                let base = s.trim().split('+').next().unwrap_or_default();
                ["idle", "mixed", "allocated", "completing"].contains(&base)
            }),
        "Slurm is not up (sinfo: {states:?}): run integration/setup.sh as root (`make test` does); \
         it starts a one-node Slurm on loopback (integration/slurm.sh)"
    );
}

/// A sandbox as a compute node sees it: `TMPDIR` node-local, the store under it, and no
/// XDG_RUNTIME_DIR in the scripts (they unset it).
fn node() -> Sandbox {
    slurm_up();
    let mut sb = Sandbox::new();
    let tmp = sb.dir.join("node-tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    sb.root = tmp.join("den");
    sb.set_env("TMPDIR", &tmp.to_string_lossy());
    // For the sandbox's own den commands (and its clean-up): the jobs set it themselves.
    let root = sb.root.to_string_lossy().into_owned();
    sb.set_env("DEN_ROOT", &root);
    sb
}

/// A shell script as a job's environment runs it: no XDG_RUNTIME_DIR, the store in $TMPDIR.
fn job(script: &str) -> String {
    format!("unset XDG_RUNTIME_DIR; export DEN_ROOT=\"$TMPDIR/den\"\n{script}")
}

#[test]
fn srun_gives_the_container_the_jobs_environment_and_its_exit_status() {
    let sb = node();
    // The site's default: the job's environment reaches the container without a flag.
    sb.config("[run]\nenv_host = true\n");
    let img = busybox();
    sb.den(&["pull", "-q", &img]).ok();
    let out = sb
        .sh(&job(&format!(
            "srun --quiet den run --rm {img} sh -c 'echo job=$SLURM_JOB_ID task=$SLURM_PROCID runtime=${{XDG_RUNTIME_DIR:-none}}'"
        )))
        .ok();
    let line = out.trim();
    let id = line
        .strip_prefix("job=")
        .and_then(|r| r.split(' ').next())
        .unwrap_or_default();
    assert!(
        !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()),
        "no job id inside: {out:?}"
    );
    assert_eq!(line, format!("job={id} task=0 runtime=none"));

    // The flag wins over the config.
    let out = sb
        .sh(&job(&format!(
            "srun --quiet den run --rm --env-host=false {img} sh -c 'echo ${{SLURM_JOB_ID:-none}}'"
        )))
        .ok();
    assert_eq!(out, "none\n");

    // The container's status is the step's (srun's).
    let out = sb.sh(&job(&format!(
        "srun --quiet den run --rm {img} sh -c 'exit 3'"
    )));
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        sb.den(&["ps", "-aq"]).ok().is_empty(),
        "--rm left a container"
    );
}

#[test]
fn srun_with_two_tasks_runs_two_containers() {
    let sb = node();
    let img = busybox();
    sb.den(&["pull", "-q", &img]).ok();
    let out = sb
        .sh(&job(&format!(
            "srun --quiet -n2 den run --rm --env-host {img} sh -c 'echo task $SLURM_PROCID of $SLURM_NTASKS in $(hostname)'"
        )))
        .ok();
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("task 0 of 2 in "), "{out}");
    assert!(lines[1].starts_with("task 1 of 2 in "), "{out}");
    // Each task had a container of its own (its own host name, the container's id).
    let host = |l: &str| l.rsplit(' ').next().unwrap_or_default().to_string();
    assert_ne!(host(lines[0]), host(lines[1]), "{out}");
    assert!(sb.den(&["ps", "-aq"]).ok().is_empty());
}

/// The processes whose command line has `marker` as one of its arguments (den's and the
/// container's; zombies have none).
fn with_marker(marker: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmd
            .strip_suffix(b"\0")
            .unwrap_or(&cmd)
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.iter().any(|a| a == marker) {
            found.push((pid, args.join(" ")));
        }
    }
    found
}

/// A failed test's leftovers (the container sleeps for days): den first, whose death takes its
/// container along, then anything else that carries the marker.
fn kill_all(marker: &str) {
    for (pid, _) in with_marker(marker) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Wait up to `secs` for `done`.
fn wait_for(secs: u64, mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    done()
}

/// A number no other test's container sleeps for: the marker of this job's processes.
fn marker() -> String {
    let n = std::fs::read_to_string("/proc/sys/kernel/random/uuid").unwrap();
    let n = u32::from_str_radix(&n[..6], 16).unwrap();
    (1_000_000 + n).to_string()
}

/// Submit a batch job whose `den run` sleeps (pid 1 of its container: it ignores SIGTERM), wait
/// for its container, end the job with `scancel ARGS`; nothing of den or the container may
/// remain, and the store holds no container.
fn cancelled_job_leaves_nothing(scancel: &[&str]) {
    let sb = node();
    let img = busybox();
    sb.den(&["pull", "-q", &img]).ok();
    let mark = marker();
    let script = sb.dir.join("job.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n{}\n",
            job(&format!(
                "den run --rm --stop-timeout 2 {img} sleep {mark}\necho den exited $?"
            ))
        ),
    )
    .unwrap();
    let out = sb.dir.join("job.out");
    let id = sb
        .sh(&format!(
            "sbatch --parsable -o {} {}",
            out.display(),
            script.display()
        ))
        .ok()
        .trim()
        .to_string();
    let container = |p: &(u32, String)| p.1 == format!("sleep {mark}");
    let started = wait_for(60, || with_marker(&mark).iter().any(container));
    let log = || std::fs::read_to_string(&out).unwrap_or_default();
    assert!(started, "the job's container did not start: {}", log());
    let before = with_marker(&mark);
    assert!(
        before.len() >= 2,
        "den's processes carry the marker too: {before:?}"
    );
    let mut args = scancel.to_vec();
    args.push(&id);
    let cancelled = std::process::Command::new("scancel")
        .args(&args)
        .status()
        .unwrap();
    assert!(cancelled.success());
    // The stop timeout (2 s), then SIGKILL and den's clean-up.
    let gone = wait_for(15, || with_marker(&mark).is_empty());
    if !gone {
        kill_all(&mark);
    }
    assert!(
        gone,
        "left behind after scancel {scancel:?}: {:?} (were {before:?}); job output: {}",
        with_marker(&mark),
        log()
    );
    // --rm ran: the store holds no container, running or not.
    assert!(wait_for(5, || sb.den(&["ps", "-aq"]).ok().is_empty()));
}

#[test]
fn scancel_stops_the_container_and_leaves_no_process() {
    // Slurm sends SIGTERM to every process of the job, the batch shell dies and den, orphaned,
    // is forgotten by proctrack/linuxproc: den stops the container itself.
    cancelled_job_leaves_nothing(&[]);
}

#[test]
fn a_killed_batch_shell_takes_its_container_along() {
    // Only the batch shell, and with SIGKILL: den gets no signal from Slurm at all, only its
    // parent's death.
    cancelled_job_leaves_nothing(&["--batch", "--signal=KILL"]);
}

/// Tasks in the job array test: 8 here, 32 in `make stress` (`DEN_SLURM_ARRAY`).
fn array_size() -> usize {
    std::env::var("DEN_SLURM_ARRAY")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(8)
}

/// GET requests answered 200 for each blob, by blob path.
fn blob_gets(reg: &Registry) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for l in reg.log().lines() {
        let Some((_, rest)) = l.split_once("\"GET ") else {
            continue;
        };
        let Some((line, after)) = rest.split_once('"') else {
            continue;
        };
        if !after.trim_start().starts_with("200") {
            continue;
        }
        if let Some(i) = line.find("/blobs/sha256:") {
            let path = line[i..].split(' ').next().unwrap_or_default().to_string();
            *counts.entry(path).or_insert(0) += 1;
        }
    }
    counts
}

fn outputs(dir: &Path, n: usize) -> Vec<(PathBuf, String)> {
    (0..n)
        .map(|i| {
            let p = dir.join(format!("out-{i}"));
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            (p, text)
        })
        .collect()
}

#[test]
fn a_job_array_on_one_store_pulls_each_blob_once() {
    let sb = node();
    let reg = Registry::start("slurm-array");
    reg.push("layered", "test/layered");
    let img = reg.image("test/layered");
    let n = array_size();
    // The store's place from the site's config, not from the job's environment.
    sb.config("[storage]\nroot = \"$TMPDIR/den\"\n");
    let script = sb.dir.join("array.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nunset XDG_RUNTIME_DIR DEN_ROOT\nden run --rm {img} cat /srv/from-zstd\n"
        ),
    )
    .unwrap();
    let started = Instant::now();
    let out = sb.sh(&format!(
        "timeout 600 sbatch --wait --quiet --array=0-{last} -o {dir}/out-%a -e {dir}/err-%a {script}",
        last = n - 1,
        dir = sb.dir.display(),
        script = script.display()
    ));
    let results = outputs(&sb.dir, n);
    assert_eq!(out.code, 0, "{}\n{results:?}", out.stderr);
    for (p, text) in &results {
        let err = std::fs::read_to_string(
            p.with_file_name(
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .replace("out-", "err-"),
            ),
        )
        .unwrap_or_default();
        assert_eq!(text, "zstd layer\n", "{}: {err}", p.display());
    }
    let gets = blob_gets(&reg);
    // The config and five layers.
    assert!(gets.len() >= 6, "{gets:?}");
    assert!(
        gets.values().all(|&c| c == 1),
        "{n} tasks fetched a blob more than once: {gets:?}"
    );
    // In $TMPDIR/den (the sandbox's den commands name it with DEN_ROOT).
    assert!(sb.root.join("images.json").is_file());
    assert_eq!(sb.den(&["images", "-q"]).ok().lines().count(), 1);
    assert!(sb.den(&["ps", "-aq"]).ok().is_empty());
    sb.den(&["system", "check"]).ok();
    eprintln!(
        "slurm: {n} array tasks on one store in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn a_configured_store_root_naming_an_unset_variable_is_refused() {
    let sb = Sandbox::new();
    sb.config("[storage]\nroot = \"$DEN_TEST_NO_SUCH_VAR/den\"\n");
    sb.den(&["images"])
        .fails_with(125, "names $DEN_TEST_NO_SUCH_VAR, which is not set");
    // Nothing was made: not at the XDG default, not at "/den".
    assert!(!sb.root.exists());
    // --root (or DEN_ROOT) wins over the config.
    let root = sb.dir.join("elsewhere");
    sb.den(&["--root", &root.to_string_lossy(), "images", "-q"])
        .ok();
    assert!(root.is_dir());
}

#[test]
fn a_terminated_den_run_kills_its_container_after_the_stop_timeout() {
    // No Slurm needed: `timeout`, a closed session or a batch system send den SIGTERM. The
    // container's init (sleep, pid 1: it ignores SIGTERM) gets it, then SIGKILL after
    // --stop-timeout; den cleans up (--rm) and exits with the container's status.
    let sb = Sandbox::new();
    let img = busybox();
    sb.den(&["pull", "-q", &img]).ok();
    let mark = marker();
    let started = Instant::now();
    let out = sb.sh(&format!(
        "timeout --preserve-status -s TERM -k 20 3 den run --rm --stop-timeout 1 {img} sleep {mark}; echo status $?"
    ));
    let took = started.elapsed();
    let left = with_marker(&mark);
    kill_all(&mark);
    assert_eq!(out.ok(), "status 137\n", "{}", out.stderr);
    // 3 s until the SIGTERM, 1 s of grace: not the 10 s default, nor timeout's SIGKILL (20 s).
    assert!(took >= Duration::from_secs(4), "{took:?}");
    assert!(took < Duration::from_secs(12), "{took:?}");
    assert!(left.is_empty(), "{left:?}");
    assert!(sb.den(&["ps", "-aq"]).ok().is_empty());
}
