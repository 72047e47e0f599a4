//! The per-container monitor: conmon's role, for containers that outlive the command that
//! started them (`run -d`, `start`).
//!
//! [`launch`] starts `den-run __monitor ID` (the same executable, re-executed so it starts small
//! and single-threaded) in a new session, inside den's user and mount namespace, and waits until
//! it reports the container started (or why not). The monitor then:
//!
//! - mounts the container's root filesystem in its mount namespace and keeps it mounted;
//! - creates the container with pipes (or a pty) as its stdio, and is its init's parent; the
//!   init gets a parent-death signal, so killing the monitor kills the container and `ps`
//!   (which checks the monitor's pid and start time) never says "running" for a dead one;
//! - writes the output to `ctr.log` ([`super::logs`]), stdout and stderr apart, timestamped;
//! - serves attach clients on a unix socket ([`super::attach`]);
//! - records the exit status and time, restarts by the `--restart` policy, and removes the
//!   container on exit for `--rm`;
//! - starts the container's health checker for each run ([`super::health`]).
//!
//! One thread, one poll loop; no async runtime, so it stays a few MiB.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::Utc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};

use super::attach::{self, Decoder};
use super::logs::Stream;
use super::{Context, RuntimeError, engine, tty};
use crate::cgroup::limits::Group;
use crate::error::Diagnose;
use crate::store::driver;
use crate::store::{ContainerState, Status};

/// The environment variable that passes the readiness pipe's descriptor to the monitor.
pub const ENV_READY_FD: &str = "_DEN_READY_FD";
/// A file in the container's directory: a user stopped or killed it, so no restart.
pub const STOP_MARK: &str = "stopping";

/// Start a monitor for container `id` and wait until its container runs. With `wait_attach`,
/// the monitor creates the container and waits for the first attach client before starting
/// it, so `start -a` sees all output.
pub fn launch(ctx: &Context<'_>, id: &str, wait_attach: bool) -> Result<(), RuntimeError> {
    let io = |path: &str| {
        let path = path.to_string();
        move |e: std::io::Error| RuntimeError::Io {
            path: path.clone().into(),
            source: e,
        }
    };
    let (r, w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| io("pipe")(e.into()))?;
    let exe = std::fs::read_link("/proc/self/exe").map_err(io("/proc/self/exe"))?;
    let mut cmd = std::process::Command::new(&exe);
    cmd.arg("__monitor").arg(id);
    if wait_attach {
        cmd.arg("--wait-attach");
    }
    let wfd = w.as_raw_fd();
    cmd.env(ENV_READY_FD, wfd.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let _ = ctx;
    crate::sys::new_session_keeping_fd(&mut cmd, wfd);
    let mut child = cmd.spawn().map_err(io("den-run __monitor"))?;
    drop(w);
    // One line: the container's processes may hold a copy of the pipe until they exec, so
    // its end is not waited for.
    let mut msg = String::new();
    let _ = std::io::BufRead::read_line(
        &mut std::io::BufReader::new(std::fs::File::from(r)),
        &mut msg,
    );
    // The monitor stays; its parent (this process) exits soon and it is reparented. Reap it
    // now if it already failed.
    let _ = child.try_wait();
    std::mem::forget(child);
    let line = msg.lines().next().unwrap_or("");
    if line == "ok" {
        return Ok(());
    }
    let mut f = line.splitn(3, '\t');
    let code = f
        .next()
        .and_then(|c| c.strip_prefix("err "))
        .and_then(|c| c.parse().ok());
    let message = f
        .next()
        .unwrap_or("the container's monitor exited before it started the container");
    let hint = f.next().filter(|h| !h.is_empty()).map(String::from);
    Err(RuntimeError::Failed {
        message: message.into(),
        hint,
        code: code.unwrap_or(crate::error::EXIT_DEN),
    })
}

/// Reports readiness once, to the launcher.
struct Ready(Option<std::fs::File>);

impl Ready {
    fn from_env() -> Ready {
        let file = crate::sys::take_inherited_fd(ENV_READY_FD).map(std::fs::File::from);
        if let Some(f) = &file {
            // Not for the container: the launcher waits for this pipe to close.
            crate::sys::set_cloexec(f.as_fd());
        }
        Ready(file)
    }
    fn ok(&mut self) {
        if let Some(mut f) = self.0.take() {
            let _ = f.write_all(b"ok\n");
        }
    }
    fn fail(&mut self, e: &RuntimeError) {
        if let Some(mut f) = self.0.take() {
            let msg = crate::error::chain(e).replace(['\t', '\n'], " ");
            let hint = e.hint().unwrap_or_default().replace(['\t', '\n'], " ");
            let _ = writeln!(f, "err {}\t{msg}\t{hint}", e.exit_code());
        }
    }
}

struct Client {
    sock: UnixStream,
    dec: Decoder,
}

/// The container's side of the monitor's streams for one run.
struct Streams {
    /// stdout and stderr pipes, or the pty master as stdout.
    outs: Vec<super::relay::Output>,
    /// Where attach clients' input goes: a pipe, or the pty master.
    stdin: Option<OwnedFd>,
    pty: bool,
}

/// The monitor's main: returns its exit status (0 when the container ran, whatever its code).
pub fn run(ctx: &Context<'_>, id: &str, wait_attach: bool) -> i32 {
    let mut ready = Ready::from_env();
    let _ = crate::sys::set_child_subreaper();
    match monitor(ctx, id, wait_attach, &mut ready) {
        Ok(()) => 0,
        Err(e) => {
            tracing::debug!(error = %crate::error::chain(&e), "monitor failed");
            ready.fail(&e);
            let store = ctx.store;
            if let Ok(mut st) = store.container_state(id)
                && st.status != Status::Exited
            {
                st.status = if st.started_at.is_some() {
                    Status::Exited
                } else {
                    Status::Created
                };
                st.pid = None;
                st.exit_code = Some(e.exit_code());
                st.error = Some(crate::error::chain(&e));
                st.monitor = None;
                let _ = store.set_container_state(id, &st);
            }
            1
        }
    }
}

fn monitor(
    ctx: &Context<'_>,
    id: &str,
    wait_attach: bool,
    ready: &mut Ready,
) -> Result<(), RuntimeError> {
    let record = ctx.store.container(id)?;
    let _ = std::fs::remove_file(ctx.store.container_dir(id).join(STOP_MARK));
    // Made while /sys/fs/cgroup is in sight; reached through a held descriptor afterwards.
    let group = crate::cgroup::limits::setup(ctx.sys, &record.spec.limits, id)?;
    let result = monitored(ctx, &record, wait_attach, ready, group.as_ref());
    if let Some(g) = &group {
        g.remove(ctx.sys);
    }
    if result.is_ok() && record.auto_remove {
        let _ = ctx.store.remove_container(id);
    }
    result
}

/// The container's runs, between mounting its root filesystem and unmounting it.
fn monitored(
    ctx: &Context<'_>,
    record: &crate::store::ContainerRecord,
    wait_attach: bool,
    ready: &mut Ready,
    group: Option<&Group>,
) -> Result<(), RuntimeError> {
    let (store, id) = (ctx.store, record.id.as_str());
    let cdir = store.container_dir(id);
    let layers = store.rootfs_layers(record)?;
    let driver = driver::Driver::from_name(&record.driver).unwrap_or(driver::Driver::Vfs);
    let (mounted, net) = super::prepare(ctx, driver, record, &layers, false);
    let (rootfs, file_mount) = mounted?;
    let sock_path = attach::socket_path(ctx.runtime_dir, id);
    let result = listen(&sock_path).and_then(|listener| {
        let place = Place {
            cdir: &cdir,
            rootfs: &rootfs,
            listener: &listener,
            group,
        };
        runs(ctx, record, &place, wait_attach, ready, net)
    });
    let _ = std::fs::remove_file(&sock_path);
    let _ = std::fs::remove_file(cdir.join(STOP_MARK));
    driver::unmount(ctx.sys, driver, &cdir);
    crate::store::imagefile::release(file_mount, ctx.sys);
    result
}

/// Where a container's runs happen: its directory, mounted root, attach socket and cgroup.
struct Place<'a> {
    cdir: &'a Path,
    rootfs: &'a Path,
    listener: &'a UnixListener,
    group: Option<&'a Group>,
}

/// The attach socket at `sock_path`, listening without blocking.
fn listen(sock_path: &Path) -> Result<UnixListener, RuntimeError> {
    if let Some(dir) = sock_path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| RuntimeError::Io {
            path: dir.into(),
            source: e,
        })?;
    }
    let _ = std::fs::remove_file(sock_path);
    let listener = UnixListener::bind(sock_path).map_err(|e| RuntimeError::Io {
        path: sock_path.to_path_buf(),
        source: e,
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| RuntimeError::Io {
            path: sock_path.to_path_buf(),
            source: e,
        })?;
    Ok(listener)
}

/// Run the container until it is to stay exited: each exit recorded and told to the attach
/// clients, and the container run again as its restart policy says, after docker's back-off.
fn runs(
    ctx: &Context<'_>,
    record: &crate::store::ContainerRecord,
    place: &Place<'_>,
    wait_attach: bool,
    ready: &mut Ready,
    net: Result<Option<crate::net::Setup>, RuntimeError>,
) -> Result<(), RuntimeError> {
    let (store, id) = (ctx.store, record.id.as_str());
    let (cdir, rootfs) = (place.cdir, place.rootfs);
    // The first run's network was set up while the root filesystem was mounted.
    let mut first_net = Some(net);
    let mut log = super::open_log(cdir, &record.spec.log)?;
    let mut clients: Vec<Client> = Vec::new();
    let mut restarts = store
        .container_state(id)
        .map(|s| s.restart_count)
        .unwrap_or(0);
    let mut first = true;
    loop {
        // A keep-id container's user namespace, held until the container is created.
        // The network first: its stack comes up while the container is created.
        let net = match first_net.take() {
            Some(net) => net?,
            None => super::network_setup(record)?,
        };
        let _userns = super::write_spec(ctx, record, rootfs, net.as_ref())?;
        let (code, started_at) = run_once(
            ctx,
            record,
            place,
            &mut clients,
            log.as_mut(),
            restarts,
            first && wait_attach,
            ready,
            net,
        )?;
        first = false;
        let stopped = cdir.join(STOP_MARK).exists();
        let again = !record.auto_remove && record.spec.restart.restarts(code, restarts, stopped);
        store.set_container_state(
            id,
            &ContainerState {
                status: Status::Exited,
                exit_code: Some(code),
                started_at: Some(started_at),
                finished_at: Some(Utc::now()),
                restart_count: restarts,
                // Still held while it waits to restart.
                monitor: if again { super::this_process() } else { None },
                ..ContainerState::created()
            },
        )?;
        for mut c in clients.drain(..) {
            let _ = attach::write_frame(&mut c.sock, attach::EXIT, &code.to_be_bytes());
        }
        if !again {
            break;
        }
        restarts += 1;
        // docker's back-off: 100 ms doubling, reset after a run of 10 s; here capped at 5 s.
        let delay = Duration::from_millis(100u64 << restarts.min(6)).min(Duration::from_secs(5));
        std::thread::sleep(delay);
        if cdir.join(STOP_MARK).exists() {
            break;
        }
    }
    Ok(())
}

/// One run of the container: create it with its streams, wait for the first attach client
/// (`start -a`), start it, then relay until it exits. Returns its exit status and start time.
#[allow(clippy::too_many_arguments)]
fn run_once(
    ctx: &Context<'_>,
    record: &crate::store::ContainerRecord,
    place: &Place<'_>,
    clients: &mut Vec<Client>,
    mut log: Option<&mut Log>,
    restarts: u32,
    wait_attach: bool,
    ready: &mut Ready,
    mut net: Option<crate::net::Setup>,
) -> Result<(i32, chrono::DateTime<Utc>), RuntimeError> {
    let id = &record.id;
    let (cdir, listener) = (place.cdir, place.listener);
    let engine = engine::Youki {
        state_root: ctx.runtime_dir.join("libcontainer"),
        cgroups: false,
    };
    let console = super::console_socket(ctx, record)?;
    let (stdio, mut streams) = stdio(console.as_ref(), record.spec.stdin)?;
    let old_mask = tty::block_signals();
    let sfd = SignalFd::with_flags(
        &tty::supervised_signals(),
        SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
    )
    .map_err(io("signalfd"))?;
    let mut inst = super::create_in(place.group, ctx.sys, &engine, id, cdir, stdio)?;
    let endpoints = match super::network_up(ctx, record, net.as_mut(), inst.as_mut()) {
        Ok(e) => e,
        Err(e) => {
            tty::restore_signals(&old_mask);
            return Err(e);
        }
    };
    if let Some(c) = &console {
        take_pty(c, &mut streams)?;
    }
    drop(console);
    for o in &streams.outs {
        crate::sys::set_nonblocking(o.fd.as_fd());
    }
    if wait_attach {
        ready.ok();
        first_client(listener, clients, &mut streams, inst.pid());
    }
    let started_at = Utc::now();
    ctx.store.set_container_state(
        id,
        &ContainerState {
            status: Status::Running,
            pid: Some(inst.pid().as_raw()),
            started_at: Some(started_at),
            monitor: super::this_process(),
            restart_count: restarts,
            ports: net.as_ref().map(|n| n.ports.clone()).unwrap_or_default(),
            endpoints,
            cgroup: place.group.map(|g| g.host.clone()),
            ..ContainerState::created()
        },
    )?;
    inst.start()?;
    ready.ok();
    let checker = super::health::start(ctx.store, record);
    // From here the monitor only copies bytes and waits: let go of the code that created the
    // container (most of den-run's pages), so a monitor costs its loop's working set.
    crate::sys::release_file_pages();
    let _ = crate::sys::trim_heap();
    let status = Pump {
        inst: inst.as_ref(),
        sfd: &sfd,
        listener,
        clients,
        streams: &mut streams,
        log: log.as_deref_mut(),
        buf: vec![0u8; 64 * 1024],
    }
    .run()?;
    drop(checker);
    tty::restore_signals(&old_mask);
    if let Some(l) = log {
        let _ = l.flush();
    }
    if let Err(e) = inst.delete() {
        tracing::debug!(error = %e, "runtime state not deleted");
    }
    drop(net);
    Ok((status.unwrap_or(crate::error::EXIT_DEN), started_at))
}

/// The container's log.
type Log = super::logs::LogFile;

/// The error for a failed call `path` of the monitor.
fn io(path: &'static str) -> impl Fn(nix::errno::Errno) -> RuntimeError {
    move |e: nix::errno::Errno| RuntimeError::Io {
        path: path.into(),
        source: e.into(),
    }
}

/// The container's stdio for the engine, and the monitor's side of it: the console socket's
/// pty (received once the container exists), or pipes; stdin a pipe when asked for, else
/// `/dev/null`.
fn stdio(
    console: Option<&tty::ConsoleSocket>,
    stdin: bool,
) -> Result<(engine::Stdio, Streams), RuntimeError> {
    let cloexec = nix::fcntl::OFlag::O_CLOEXEC;
    Ok(match console {
        Some(c) => (
            engine::Stdio::Console {
                socket: c.path.clone(),
            },
            Streams {
                outs: vec![],
                stdin: None,
                pty: true,
            },
        ),
        None => {
            let ([out_w, err_w], outs) = super::relay::output_pipes()?;
            let (stdin, keep) = if stdin {
                let (in_r, in_w) = nix::unistd::pipe2(cloexec).map_err(io("pipe"))?;
                (in_r, Some(in_w))
            } else {
                let null = std::fs::File::open("/dev/null").map_err(|e| RuntimeError::Io {
                    path: "/dev/null".into(),
                    source: e,
                })?;
                (OwnedFd::from(null), None)
            };
            (
                engine::Stdio::Fds {
                    stdin,
                    stdout: out_w,
                    stderr: err_w,
                },
                Streams {
                    outs,
                    stdin: keep,
                    pty: false,
                },
            )
        }
    })
}

/// The pty's master, from the console socket the container's init sent it to: the output, and
/// where attach clients' input goes.
fn take_pty(console: &tty::ConsoleSocket, streams: &mut Streams) -> Result<(), RuntimeError> {
    let master = console.receive()?;
    let master2 = master.try_clone().map_err(|e| RuntimeError::Io {
        path: "pty".into(),
        source: e,
    })?;
    streams.outs.push(super::relay::Output {
        fd: master,
        stream: Stream::Stdout,
    });
    streams.stdin = Some(master2);
    Ok(())
}

/// `start -a`: wait (10 s at most) for the client that connects right after "ok", and apply a
/// pty client's first window size before the program starts.
fn first_client(
    listener: &UnixListener,
    clients: &mut Vec<Client>,
    streams: &mut Streams,
    init: nix::unistd::Pid,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while clients.is_empty() && Instant::now() < deadline {
        accept(listener, clients);
        if clients.is_empty() {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    if streams.pty {
        let mut b = [0u8; 64];
        for c in clients.iter_mut() {
            let _ = c.sock.set_read_timeout(Some(Duration::from_millis(50)));
            if let Ok(n) = c.sock.read(&mut b) {
                c.dec.push(&b[..n]);
            }
            let _ = c.sock.set_read_timeout(None);
        }
        serve_clients(clients, streams, init);
    }
}

/// The loop of a running container: reap, forward signals, take attach clients, copy the
/// output to the log and the clients, and the clients' input to the container.
struct Pump<'a> {
    inst: &'a dyn engine::Instance,
    sfd: &'a SignalFd,
    listener: &'a UnixListener,
    clients: &'a mut Vec<Client>,
    streams: &'a mut Streams,
    log: Option<&'a mut Log>,
    buf: Vec<u8>,
}

impl Pump<'_> {
    /// Until the container has exited and its output is read (2 s at most after); returns its
    /// status, `None` if it could not be told.
    fn run(mut self) -> Result<Option<i32>, RuntimeError> {
        let pid = self.inst.pid();
        let mut status: Option<i32> = None;
        let mut drain_deadline: Option<Instant> = None;
        loop {
            if status.is_none() {
                status = match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::Exited(_, c)) => Some(c),
                    Ok(WaitStatus::Signaled(_, sig, _)) => Some(128 + sig as i32),
                    Err(nix::errno::Errno::ECHILD) => Some(crate::error::EXIT_DEN),
                    _ => None,
                };
                if status.is_some() {
                    drain_deadline = Some(Instant::now() + Duration::from_secs(2));
                }
            }
            // Reap any other child (a container process reparented to us as subreaper).
            while let Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) =
                waitpid(None, Some(WaitPidFlag::WNOHANG))
            {}
            if status.is_some()
                && (self.streams.outs.is_empty()
                    || drain_deadline.is_some_and(|d| Instant::now() > d))
            {
                return Ok(status);
            }
            let revents = self.poll(status.is_some())?;
            if revents[0] {
                self.forward_signals();
            }
            if revents[1] {
                accept(self.listener, self.clients);
            }
            let nouts = self.streams.outs.len();
            self.read_outputs(&revents[2..2 + nouts]);
            if let Some(l) = self.log.as_deref_mut() {
                let _ = l.flush();
            }
            self.read_clients(&revents[2 + nouts..]);
            serve_clients(self.clients, self.streams, pid);
        }
    }

    /// Wait for a signal, an attach client, output, or a client's input; once the container has
    /// `exited`, 100 ms at most. Returns which were ready, in that order.
    fn poll(&self, exited: bool) -> Result<Vec<bool>, RuntimeError> {
        // Sized once: growing it would run the allocator's growth path (code the long-lived
        // monitor would keep resident for nothing).
        let mut fds = Vec::with_capacity(2 + self.streams.outs.len() + self.clients.len());
        fds.push(PollFd::new(self.sfd.as_fd(), PollFlags::POLLIN));
        fds.push(PollFd::new(self.listener.as_fd(), PollFlags::POLLIN));
        for o in &self.streams.outs {
            fds.push(PollFd::new(o.fd.as_fd(), PollFlags::POLLIN));
        }
        for c in self.clients.iter() {
            fds.push(PollFd::new(c.sock.as_fd(), PollFlags::POLLIN));
        }
        let timeout = if exited {
            PollTimeout::from(100u16)
        } else {
            PollTimeout::NONE
        };
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(io("poll")(e)),
        }
        Ok(fds
            .iter()
            .map(|f| {
                f.revents().is_some_and(|r| {
                    r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
                })
            })
            .collect())
    }

    /// Pass the signals the monitor received on to the container's init.
    fn forward_signals(&self) {
        while let Ok(Some(info)) = self.sfd.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGCHLD) | Ok(Signal::SIGWINCH) | Err(_) => {}
                Ok(sig) => {
                    let _ = self.inst.signal(sig);
                }
            }
        }
    }

    /// Read the outputs that are `ready` into the log and to the clients; drop those that
    /// closed.
    fn read_outputs(&mut self, ready: &[bool]) {
        let mut closed = Vec::new();
        for (i, ready) in ready.iter().enumerate() {
            if !ready {
                continue;
            }
            let (fd, stream) = (&self.streams.outs[i].fd, self.streams.outs[i].stream);
            // Read until the pipe is empty, so a fast writer is logged in big records.
            loop {
                match nix::unistd::read(fd.as_raw_fd(), &mut self.buf) {
                    Ok(0) | Err(nix::errno::Errno::EIO) => {
                        closed.push(i);
                        break;
                    }
                    Ok(n) => {
                        if let Some(l) = self.log.as_deref_mut() {
                            let _ = l.write(stream, &self.buf[..n], Utc::now());
                        }
                        broadcast(self.clients, stream, &self.buf[..n]);
                        if n < self.buf.len() {
                            break;
                        }
                    }
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(_) => break,
                }
            }
        }
        for i in closed.into_iter().rev() {
            self.streams.outs.remove(i);
        }
    }

    /// Read what the clients that are `ready` sent; drop those that left.
    fn read_clients(&mut self, ready: &[bool]) {
        let mut gone = Vec::new();
        for (i, c) in self.clients.iter_mut().enumerate() {
            if ready.get(i) != Some(&true) {
                continue;
            }
            match c.sock.read(&mut self.buf) {
                Ok(0) | Err(_) => gone.push(i),
                Ok(n) => c.dec.push(&self.buf[..n]),
            }
        }
        for i in gone.into_iter().rev() {
            self.clients.remove(i);
        }
    }
}

fn accept(listener: &UnixListener, clients: &mut Vec<Client>) {
    while let Ok((sock, _)) = listener.accept() {
        let _ = sock.set_nonblocking(false);
        let _ = sock.set_write_timeout(Some(Duration::from_secs(5)));
        clients.push(Client {
            sock,
            dec: Decoder::default(),
        });
    }
}

/// Act on what clients sent: stdin, its end, window sizes, signals for the container's `init`.
fn serve_clients(clients: &mut [Client], streams: &mut Streams, init: nix::unistd::Pid) {
    for c in clients.iter_mut() {
        while let Some((kind, data)) = c.dec.next_frame() {
            match kind {
                attach::IN => {
                    if let Some(fd) = &streams.stdin {
                        let _ = tty::write_all_fd(fd.as_fd(), &data);
                    }
                }
                attach::IN_EOF => {
                    if streams.pty {
                        if let Some(fd) = &streams.stdin {
                            let _ = tty::write_all_fd(fd.as_fd(), &[4]);
                        }
                    } else {
                        streams.stdin = None;
                    }
                }
                attach::SIGNAL if data.len() == 4 => {
                    let n = i32::from_be_bytes([data[0], data[1], data[2], data[3]]);
                    if let Ok(sig) = Signal::try_from(n) {
                        let _ = nix::sys::signal::kill(init, sig);
                    }
                }
                attach::RESIZE if data.len() == 4 => {
                    if let (true, Some(fd)) = (streams.pty, &streams.stdin) {
                        let size = crate::sys::WinSize {
                            rows: u16::from_be_bytes([data[0], data[1]]),
                            cols: u16::from_be_bytes([data[2], data[3]]),
                        };
                        let _ = crate::sys::set_winsize(fd.as_fd(), size);
                    }
                }
                _ => {}
            }
        }
    }
}

fn broadcast(clients: &mut Vec<Client>, stream: Stream, data: &[u8]) {
    let kind = match stream {
        Stream::Stdout => attach::OUT,
        Stream::Stderr => attach::ERR,
    };
    clients.retain_mut(|c| attach::write_frame(&mut c.sock, kind, data).is_ok());
}
