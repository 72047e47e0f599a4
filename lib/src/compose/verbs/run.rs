//! `run`, `exec` and the foreground `up`'s attachment. `run` and `exec` end in one den verb
//! that takes the terminal (the binary execs den with the vector made here, so its exit
//! status is the user's); the foreground `up` follows the logs until every container has
//! stopped, or until Ctrl-C, when it stops them as docker compose does.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::Progress;
use super::logs::{self, LogOptions, Sink};
use super::up::{self, UpOptions};
use crate::compose::ComposeError;
use crate::compose::engine::Den;
use crate::compose::model::Project;
use crate::compose::plan::{self, Make};

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub service: String,
    pub command: Vec<String>,
    pub rm: bool,
    pub detach: bool,
    pub no_deps: bool,
    pub name: Option<String>,
    pub no_tty: bool,
    pub stdin_tty: bool,
    pub service_ports: bool,
    pub build: Option<bool>,
    pub make: Make,
}

/// Start `run`'s dependencies, build its image if needed; den's `run` vector for the one-off.
pub fn run(
    den: &Den,
    project: &Project,
    opts: &RunOptions,
    progress: Progress,
) -> Result<Vec<String>, ComposeError> {
    let svc = project
        .services
        .get(&opts.service)
        .ok_or_else(|| ComposeError::NoSuchService(opts.service.clone()))?;
    let deps: Vec<String> = svc
        .depends_on
        .keys()
        .filter(|d| project.services.contains_key(*d))
        .cloned()
        .collect();
    if !opts.no_deps && !deps.is_empty() {
        let up_opts = UpOptions {
            services: deps,
            build: opts.build,
            ..Default::default()
        };
        up::up(den, project, &up_opts, progress)?;
    }
    up::prepare(
        den,
        project,
        &BTreeSet::from([opts.service.clone()]),
        progress,
    )?;
    up::build_missing(
        den,
        project,
        std::slice::from_ref(&opts.service),
        opts.build,
        progress,
    )?;
    let name = opts.name.clone().unwrap_or_else(|| {
        format!(
            "{}-{}-run-{}",
            project.name,
            opts.service,
            crate::fs::random_hex(6)
        )
    });
    let make = Make {
        oneoff: Some(name),
        service_ports: opts.service_ports,
        command: (!opts.command.is_empty()).then(|| opts.command.clone()),
        interactive: !opts.detach,
        tty: Some(!opts.no_tty && opts.stdin_tty && !opts.detach),
        ..opts.make.clone()
    };
    let c = plan::container(project, &opts.service, 1, &make);
    let mut args = vec!["run".to_string()];
    if opts.rm {
        args.push("--rm".into());
    }
    if opts.detach {
        args.push("--detach".into());
    }
    args.extend(c.args);
    Ok(args)
}

#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub service: String,
    pub index: usize,
    pub command: Vec<String>,
    pub no_tty: bool,
    pub stdin_tty: bool,
    pub detach: bool,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub privileged: bool,
}

/// den's `exec` vector for the service's running container number `index`.
pub fn exec(den: &Den, project: &Project, opts: &ExecOptions) -> Result<Vec<String>, ComposeError> {
    if !project.services.contains_key(&opts.service) {
        return Err(ComposeError::NoSuchService(opts.service.clone()));
    }
    let name = plan::container_name(project, &opts.service, opts.index.max(1));
    if den.state(&name).is_none_or(|s| s.status != "running") {
        return Err(ComposeError::NotRunning(opts.service.clone()));
    }
    let mut args = vec!["exec".to_string()];
    if opts.detach {
        args.push("--detach".into());
    } else {
        args.push("--interactive".into());
        if !opts.no_tty && opts.stdin_tty {
            args.push("--tty".into());
        }
    }
    for e in &opts.env {
        args.extend(["--env".to_string(), e.clone()]);
    }
    if let Some(u) = &opts.user {
        args.extend(["--user".to_string(), u.clone()]);
    }
    if let Some(w) = &opts.workdir {
        args.extend(["--workdir".to_string(), w.clone()]);
    }
    if opts.privileged {
        args.push("--privileged".into());
    }
    args.push(name);
    args.extend(opts.command.iter().cloned());
    Ok(args)
}

/// The foreground `up`: follow `containers`' logs into `out` until all have stopped (0), or
/// until SIGINT or SIGTERM, when they are stopped (130, docker compose's status).
pub fn attach(
    den: &Den,
    containers: &[String],
    opts: &LogOptions,
    out: Sink,
    progress: Progress,
) -> Result<i32, ComposeError> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    // Blocked before the log threads start (they inherit the mask), read through a signalfd.
    crate::sys::block_signals(&set);
    let fd = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|e| ComposeError::Signal(e.into()))?;
    let fd = Mutex::new(fd);
    let interrupted = AtomicBool::new(false);
    let stop = || {
        if let Ok(f) = fd.lock()
            && let Ok(Some(_)) = f.read_signal()
        {
            interrupted.store(true, Ordering::SeqCst);
        }
        interrupted.load(Ordering::SeqCst)
    };
    let follow = LogOptions {
        follow: true,
        ..opts.clone()
    };
    logs::follow(den, containers, &follow, out, &stop)?;
    if !stop() {
        return Ok(0);
    }
    progress("Gracefully stopping... (press Ctrl+C again to force)");
    let running: Vec<_> = den
        .containers_named(containers)?
        .into_iter()
        .filter(|e| e.running())
        .collect();
    std::thread::scope(|s| {
        for e in &running {
            s.spawn(move || super::down::stop(den, &e.name, None, progress));
        }
    });
    Ok(130)
}
