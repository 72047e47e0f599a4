//! `exec`: run a process in a running container.
//!
//! den joins the user and mount namespaces of the container's monitor (where the container's
//! root filesystem is mounted and its runtime state lives), then asks the engine to start a
//! process in the container's own namespaces (libcontainer's tenant builder, as `runc exec`).
//! Joining must happen while den is single-threaded, so the binary calls [`join`] first thing.

use std::os::fd::AsFd;

use super::Ctx;
use super::Result;
use super::container::Attached;
use crate::runtime::{self, engine, engine::Exec, tty};
use crate::store::Container;
use crate::store::Status;
use crate::userns::IdMap;

#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub interactive: bool,
    pub tty: bool,
    pub detach: bool,
    /// `-e` and `--env-file`, resolved: `KEY=VALUE` each.
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub command: Vec<String>,
    /// `--detach-keys` (or docker's configured ones), for `-it`.
    pub detach_keys: runtime::detach::DetachKeys,
}

/// Record the `exec_start` event (docker's action names the command), before [`join`]: the
/// store is written as the user, outside the container.
pub fn record_start(ctx: &Ctx, name: &str, opts: &ExecOptions) -> Result<()> {
    let store = ctx.store()?;
    let c = store.lookup_container(name)?;
    if c.state.status == Status::Running {
        let action = format!("exec_start: {}", opts.command.join(" "));
        store.record_event(&crate::store::Event::container(&c.record, &action));
    }
    Ok(())
}

/// Find the running container and join its monitor's namespaces. Returns the container.
pub fn join(ctx: &Ctx, name: &str) -> Result<Container> {
    let c = ctx.store()?.lookup_container(name)?;
    if c.state.status != Status::Running {
        return Err(crate::store::ContainersError::NotRunning(name.into()).into());
    }
    let (pid, _) = c
        .state
        .monitor
        .ok_or_else(|| crate::store::ContainersError::NotRunning(name.into()))?;
    // Refused before den's process joins the container's cgroup, which a freezer may hold.
    if c.state.paused {
        return Err(crate::store::ContainersError::PausedExec(c.record.name.clone()).into());
    }
    // Paths are resolved now, as the user; inside, den is uid 0 and would look elsewhere.
    ctx.paths.export()?;
    // A container with limits: the process exec starts is born in its cgroup (den's own exec
    // process moves there first, while the group's path is in sight).
    if let Some(group) = &c.state.cgroup {
        crate::cgroup::limits::enter(&crate::sys::LinuxSys, group)?;
    }
    crate::sys::join_namespaces(pid)?;
    crate::sys::set_env(crate::userns::ENV_INSIDE, ctx.idmap().encode())?;
    Ok(c)
}

/// Run the process; its exit status (0 at once with `detach`), or `Detached` when the user
/// typed the detach keys on its terminal (it runs on).
pub fn exec(
    ctx: &Ctx,
    c: &Container,
    runtime_dir: &std::path::Path,
    opts: &ExecOptions,
) -> Result<Attached> {
    if c.state.paused {
        return Err(crate::store::ContainersError::PausedExec(c.record.name.clone()).into());
    }
    if opts.tty && opts.interactive && !tty::is_tty(std::io::stdin().as_fd()) {
        return Err(crate::runtime::FlagError::NotATty.into());
    }
    let process = process(ctx, c, opts)?;
    let youki = engine::Youki {
        state_root: runtime_dir.join("libcontainer"),
        cgroups: false,
    };
    let console = if opts.tty && !opts.detach {
        Some(tty::ConsoleSocket::bind(&runtime_dir.join(format!(
            "e-{}-{}.sock",
            &c.record.id[..12],
            std::process::id()
        )))?)
    } else {
        None
    };
    let stdio = stdio(opts, console.as_ref())?;
    let old_mask = tty::block_signals();
    let res = (|| -> Result<Attached> {
        let pid = youki.exec(&c.record.id, &process, stdio)?;
        if opts.detach {
            return Ok(Attached::Exited(0));
        }
        relay(pid, console.as_ref(), opts)
    })();
    tty::restore_signals(&old_mask);
    res
}

/// The process to start: the user resolved in the container's root, its environment and
/// directory, the command checked, and the security settings the container's init got.
pub(super) fn process(ctx: &Ctx, c: &Container, opts: &ExecOptions) -> Result<engine::ExecProcess> {
    let store = ctx.store()?;
    let r = &c.record;
    let rootfs = store.container_dir(&r.id).join("merged");
    let flag = opts.user.as_deref().unwrap_or(&r.spec.user);
    let (user, become_user) =
        match runtime::keepid::exec_user(ctx.idmap(), &r.spec, &rootfs, flag, c.state.pid)? {
            Some(found) => found,
            None => (runtime::user::resolve(&rootfs, flag)?, None),
        };
    if matches!(ctx.idmap(), IdMap::Single { .. }) && (user.uid != 0 || user.gid != 0) {
        return Err(runtime::RuntimeError::UnmappedUser {
            uid: if user.uid != 0 { user.uid } else { user.gid },
        }
        .into());
    }
    let env = runtime::spec::merge_env(
        &r.spec.env,
        &opts.env,
        &r.spec.hostname,
        opts.tty,
        Some(&user.home),
    );
    let cwd = opts
        .workdir
        .clone()
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| {
            if r.spec.cwd.is_empty() {
                "/".into()
            } else {
                r.spec.cwd.clone()
            }
        });
    match runtime::user::check_command(&rootfs, &cwd, &env, &opts.command[0]) {
        // The command may come from one of the container's mounts, which the image does not
        // show (as for `run`): the runtime's exec decides then, with the same exit codes.
        Err(
            runtime::RuntimeError::CommandNotFound { .. }
            | runtime::RuntimeError::CommandNotExecutable { .. },
        ) if !r.spec.mounts.is_empty() => {}
        res => {
            res?;
        }
    }
    // The capabilities, no-new-privileges and seccomp filter the container's init got.
    let config = store.container_dir(&r.id).join("config.json");
    let security = std::fs::read_to_string(&config)
        .and_then(|t| runtime::spec::exec_security(&t).map_err(std::io::Error::other))
        .map_err(|e| runtime::RuntimeError::Io {
            path: config.clone(),
            source: e,
        })?;
    Ok(engine::ExecProcess {
        args: opts.command.clone(),
        env,
        terminal: opts.tty,
        cwd: cwd.into(),
        uid: user.uid,
        gid: user.gid,
        additional_gids: runtime::additional_gids(ctx.idmap(), &r.spec, &user),
        // A terminal the user may detach from (the detach keys) must not take the process
        // with den when den exits.
        detached: opts.detach || (opts.tty && opts.interactive && opts.detach_keys.enabled()),
        become_user,
        security,
    })
}

/// The process's standard streams: the console socket's terminal, /dev/null when detached,
/// else den's own.
fn stdio(opts: &ExecOptions, console: Option<&tty::ConsoleSocket>) -> Result<engine::Stdio> {
    Ok(match console {
        Some(c) => engine::Stdio::Console {
            socket: c.path.clone(),
        },
        None if opts.detach => {
            let null = |w: bool| -> Result<std::os::fd::OwnedFd> {
                Ok(std::fs::OpenOptions::new()
                    .read(!w)
                    .write(w)
                    .open("/dev/null")
                    .map_err(|e| crate::store::StoreError::Io {
                        path: "/dev/null".into(),
                        source: e,
                    })?
                    .into())
            };
            engine::Stdio::Fds {
                stdin: null(false)?,
                stdout: null(true)?,
                stderr: null(true)?,
            }
        }
        None => runtime::inherited_stdio(opts.interactive)?,
    })
}

/// Relay the terminal (if there is one) until the process `pid` exits; its exit status.
fn relay(
    pid: nix::unistd::Pid,
    console: Option<&tty::ConsoleSocket>,
    opts: &ExecOptions,
) -> Result<Attached> {
    let interactive = opts.interactive;
    let (pty, _raw) = tty::open_pty(console, interactive)?;
    let outputs = match &pty {
        Some(p) => vec![runtime::relay::Output {
            fd: p
                .master
                .try_clone()
                .map_err(|e| runtime::RuntimeError::Io {
                    path: "pty".into(),
                    source: e,
                })?,
            stream: runtime::logs::Stream::Stdout,
        }],
        None => Vec::new(),
    };
    let all = crate::store::AttachStreams {
        stdin: interactive,
        stdout: true,
        stderr: true,
    };
    let keys = pty.as_ref().map(|_| opts.detach_keys.clone());
    Ok(
        match runtime::relay::supervise(pid, pty, outputs, None, all, keys, None)? {
            Some(code) => Attached::Exited(code),
            None => Attached::Detached,
        },
    )
}
