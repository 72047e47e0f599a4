//! Health checks: the checker a container's holder starts for each run
//! ([`crate::runtime::health`]: `den-run healthcheck __watch ID`, [`watch`]), and podman's `den
//! healthcheck run CTR` ([`run_now`]).
//!
//! A check is a process started in the container as `exec` starts one (the same user, working
//! directory, environment and security settings), its stdin `/dev/null`, its stdout and stderr
//! one pipe whose first 4096 bytes are kept; it is killed when its timeout runs out (docker's
//! exit code -1 and "Health check exceeded timeout"). Each result goes into the container's
//! health state ([`crate::store::health::Health::record`], docker's rules) and a change of
//! status is a `health_status: STATUS` event, as docker's.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use chrono::Utc;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};

use super::exec::ExecOptions;
use super::{Ctx, Result};
use crate::runtime::engine::{self, Exec};
use crate::store::health::{Health, HealthConfig, HealthResult, HealthStatus, MAX_OUTPUT};
use crate::store::{Container, ContainersError, Status};

/// The checker's loop, run inside the holder's namespaces while the container's current run
/// lasts: a check every interval (the start interval while it starts), each recorded.
pub fn watch(ctx: &Ctx, id: &str) -> Result<()> {
    let _ = crate::sys::set_parent_death_signal(nix::sys::signal::Signal::SIGKILL);
    let store = ctx.store()?;
    let c = store.lookup_container(id)?;
    let (Some(config), Some(init)) = (c.record.spec.healthcheck.clone(), c.state.pid) else {
        return Ok(());
    };
    let Some(argv) = config.argv() else {
        return Ok(());
    };
    let started_at = c.state.started_at.unwrap_or_else(Utc::now);
    let runtime_dir = ctx.runtime_dir()?;
    let mut health = store.container_health(id).unwrap_or_else(Health::starting);
    loop {
        std::thread::sleep(health.next_wait(&config, started_at, Utc::now()));
        let c = match store.lookup_container(id) {
            Ok(c) if c.state.status == Status::Running && c.state.pid == Some(init) => c,
            _ => return Ok(()),
        };
        // docker's: no check while the container is paused.
        if c.state.paused {
            continue;
        }
        let result = probe(ctx, &c, &runtime_dir, &argv, config.timeout());
        record(ctx, &c, &mut health, result, &config)?;
    }
}

/// `healthcheck run`: one check of a running container now, recorded; whether it passed.
/// Called as the user: it joins the container's monitor, as `exec` does.
pub fn run_now(ctx: &Ctx, name: &str) -> Result<bool> {
    let c = ctx.store()?.lookup_container(name)?;
    let Some((config, argv)) = c
        .record
        .spec
        .healthcheck
        .as_ref()
        .and_then(|h| Some((h.clone(), h.argv()?)))
    else {
        return Err(ContainersError::NoHealthcheck(name.into()).into());
    };
    let runtime_dir = ctx.runtime_dir()?;
    let c = super::exec::join(ctx, name)?;
    let store = ctx.store()?;
    let mut health = store
        .container_health(&c.record.id)
        .unwrap_or_else(Health::starting);
    let result = probe(ctx, &c, &runtime_dir, &argv, config.timeout());
    let passed = result.exit_code == 0;
    record(ctx, &c, &mut health, result, &config)?;
    Ok(passed)
}

/// Apply a result to `health` and write it; a new status is an event.
fn record(
    ctx: &Ctx,
    c: &Container,
    health: &mut Health,
    result: HealthResult,
    config: &HealthConfig,
) -> Result<()> {
    let store = ctx.store()?;
    let started_at = c.state.started_at.unwrap_or(result.start);
    if health.record(result, config, started_at) {
        let action = format!("health_status: {}", health.status.name());
        store.record_event(&crate::store::Event::container(&c.record, &action));
    }
    store.set_container_health(&c.record.id, health)?;
    Ok(())
}

/// One check: its result, -1 when it could not start or ran out of time.
fn probe(
    ctx: &Ctx,
    c: &Container,
    runtime_dir: &std::path::Path,
    argv: &[String],
    timeout: Duration,
) -> HealthResult {
    let start = Utc::now();
    match spawn(ctx, c, runtime_dir, argv) {
        Err(e) => HealthResult::new(start, -1, crate::error::chain(&e).as_bytes()),
        Ok((pid, out)) => {
            let (code, output) = wait_output(pid, &out, timeout);
            match code {
                Some(code) => HealthResult::new(start, code, &output),
                None => HealthResult::new(
                    start,
                    -1,
                    format!("Health check exceeded timeout ({timeout:?})").as_bytes(),
                ),
            }
        }
    }
}

/// Start the check's process: its pid, and the read end of its output.
fn spawn(
    ctx: &Ctx,
    c: &Container,
    runtime_dir: &std::path::Path,
    argv: &[String],
) -> Result<(nix::unistd::Pid, OwnedFd)> {
    let opts = ExecOptions {
        command: argv.to_vec(),
        ..Default::default()
    };
    let process = super::exec::process(ctx, c, &opts)?;
    let io = |what: &str, e: std::io::Error| crate::runtime::RuntimeError::Io {
        path: what.into(),
        source: e,
    };
    let (r, w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| io("pipe", e.into()))?;
    let w2 = w.try_clone().map_err(|e| io("pipe", e))?;
    let null = std::fs::File::open("/dev/null").map_err(|e| io("/dev/null", e))?;
    let youki = engine::Youki {
        state_root: runtime_dir.join("libcontainer"),
        cgroups: false,
    };
    let stdio = engine::Stdio::Fds {
        stdin: null.into(),
        stdout: w,
        stderr: w2,
    };
    let pid = youki.exec(&c.record.id, &process, stdio)?;
    crate::sys::set_nonblocking(r.as_fd());
    Ok((pid, r))
}

/// Wait for the check `pid` (until `timeout`, then it is killed), reading its output; its exit
/// status (None when it ran out of time) and its first bytes of output.
fn wait_output(pid: nix::unistd::Pid, out: &OwnedFd, timeout: Duration) -> (Option<i32>, Vec<u8>) {
    let deadline = Instant::now() + timeout;
    let mut output = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let status = match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => Some(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => Some(128 + sig as i32),
            Err(_) => Some(-1),
            _ => None,
        };
        // What it wrote so far (all of it once it exited: the pipe holds it).
        while let Ok(n @ 1..) = nix::unistd::read(out.as_raw_fd(), &mut buf) {
            let room = (MAX_OUTPUT + 4).saturating_sub(output.len());
            output.extend_from_slice(&buf[..n.min(room)]);
        }
        if status.is_some() {
            return (status, output);
        }
        if Instant::now() >= deadline {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(pid, None);
            return (None, output);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The exit status of `healthcheck run` for a check that `passed`: 0, else 1 ("unhealthy").
pub fn exit_status(passed: bool) -> i32 {
    if passed { 0 } else { 1 }
}

/// Whether a health state is healthy (for `compose up --wait` and `service_healthy`).
pub fn is_healthy(c: &Container) -> bool {
    c.state
        .health
        .as_ref()
        .is_some_and(|h| h.status == HealthStatus::Healthy)
}
