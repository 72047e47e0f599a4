//! Verbs on existing containers: ps, logs, start, stop, restart, kill, wait, attach, rm,
//! inspect, prune.
//!
//! Which process does what: `ps`, `logs`, `inspect`, `wait`, `attach`, `stop` and `kill` run
//! as the user on the host. A signal reaches a container's processes from there, because the
//! container's user namespace is a child of the host's and owned by the user (so the user holds
//! CAP_KILL over it). `start` runs inside a den user namespace, where the monitor it launches
//! lives; `rm` and `prune` too, since a container's files may belong to subordinate ids.

use std::io::Write;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::Ctx;
use super::Result;
use crate::runtime::{self, attach, logs, monitor};
use crate::store::{Container, Status, Store};

/// docker's signal syntax: `TERM`, `SIGTERM`, `15`.
pub fn parse_signal(s: &str) -> Result<Signal> {
    let bad = || crate::runtime::FlagError::BadSignal(s.to_string());
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad().into());
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<Signal>().map_err(|_| bad().into())
}

// ------------------------------------------------------------------------------------------
// ps

/// Which containers `ps` lists.
#[derive(Debug, Clone, Default)]
pub struct PsOptions {
    /// Stopped ones too.
    pub all: bool,
    /// The newest `n` (stopped ones too).
    pub last: Option<usize>,
    pub filters: Vec<String>,
    /// `--sort` (podman's); docker's order, newest first, when `None`.
    pub sort: Option<PsSort>,
    /// `-s`: measure each container's writable layer.
    pub size: bool,
}

/// podman's `ps --sort` keys. Created and running-for list the newest first (as docker lists),
/// the others ascend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsSort {
    Created,
    Id,
    Image,
    Names,
    RunningFor,
    Size,
    Status,
}

impl PsSort {
    pub fn parse(s: &str) -> Option<PsSort> {
        Some(match s {
            "created" => PsSort::Created,
            "id" => PsSort::Id,
            "image" => PsSort::Image,
            "names" => PsSort::Names,
            "runningfor" => PsSort::RunningFor,
            "size" => PsSort::Size,
            "status" => PsSort::Status,
            _ => return None,
        })
    }
}

/// docker's `SizeRw` and `SizeRootFs`: the container's own files, and those with its image's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ContainerSize {
    pub rw: u64,
    pub root_fs: u64,
}

/// The containers `ps` lists, in its order.
#[derive(Debug, Clone)]
pub struct PsList {
    pub containers: Vec<Container>,
    /// With `-s` (or `--sort size`): each container's sizes, in the same order.
    pub sizes: Option<Vec<ContainerSize>>,
}

/// docker's combination: values of one key are alternatives (`name=a --filter name=b`), except
/// labels, which must all match; different keys must all match.
fn matches_filters(c: &Container, filters: &[String]) -> Result<bool> {
    let mut by_key: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for f in filters {
        let (k, _) = f
            .split_once('=')
            .ok_or_else(|| crate::store::ContainersError::BadFilter(f.clone()))?;
        by_key.entry(k).or_default().push(f);
    }
    for (key, fs) in by_key {
        let mut hits = Vec::with_capacity(fs.len());
        for f in fs {
            hits.push(matches_filter(c, f)?);
        }
        let ok = if key == "label" {
            hits.iter().all(|h| *h)
        } else {
            hits.iter().any(|h| *h)
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn matches_filter(c: &Container, f: &str) -> Result<bool> {
    let (k, v) = f
        .split_once('=')
        .ok_or_else(|| crate::store::ContainersError::BadFilter(f.into()))?;
    Ok(match k {
        "status" => {
            const STATES: &[&str] = &[
                "created",
                "restarting",
                "running",
                "removing",
                "paused",
                "exited",
                "dead",
            ];
            if !STATES.contains(&v) {
                return Err(crate::store::ContainersError::BadFilter(f.into()).into());
            }
            c.state.status_name() == v
        }
        "name" => c.record.name.contains(v),
        "id" => c.record.id.starts_with(v),
        "exited" => {
            c.state.status == Status::Exited
                && c.state.exit_code.map(|x| x.to_string()).as_deref() == Some(v)
        }
        "ancestor" => {
            c.record.image == v
                || c.record
                    .image_id
                    .hex()
                    .starts_with(v.trim_start_matches("sha256:"))
        }
        "label" => match v.split_once('=') {
            Some((lk, lv)) => c.record.spec.labels.get(lk).is_some_and(|x| x == lv),
            None => c.record.spec.labels.contains_key(v),
        },
        "health" => health_matches(c, v)
            .ok_or_else(|| crate::store::ContainersError::BadFilter(f.into()))?,
        _ => return Err(crate::store::ContainersError::BadFilter(f.into()).into()),
    })
}

/// `health=starting|healthy|unhealthy|none` (none: no health check); None for another value.
fn health_matches(c: &Container, v: &str) -> Option<bool> {
    let status = c.state.health.as_ref().map_or("none", |h| h.status.name());
    ["starting", "healthy", "unhealthy", "none"]
        .contains(&v)
        .then_some(status == v)
}

/// `ps`: the containers docker's rules list, newest first.
pub fn ps(ctx: &Ctx, opts: &PsOptions) -> Result<PsList> {
    let store = ctx.store()?;
    let mut list = store.containers()?;
    // docker's rules: stopped containers are listed with -a, -n/-l, or a status filter (which
    // names the states wanted); other filters narrow the running ones unless -a is given.
    let by_status = opts.filters.iter().any(|f| f.starts_with("status="));
    if !(opts.all || opts.last.is_some() || by_status) {
        list.retain(|c| c.state.status == Status::Running);
    }
    // In place: at 10,000 containers a copy of the list costs more than the filtering.
    let mut bad = None;
    list.retain(|c| {
        matches_filters(c, &opts.filters).unwrap_or_else(|e| {
            bad.get_or_insert(e);
            false
        })
    });
    if let Some(e) = bad {
        return Err(e);
    }
    if let Some(n) = opts.last {
        list.truncate(n);
    }
    let measure = opts.size || opts.sort == Some(PsSort::Size);
    let mut images = if measure { store.images()? } else { Vec::new() };
    if measure {
        images.extend(store.additional_images().into_iter().map(|(i, _)| i));
    }
    let sizes = measure.then(|| {
        list.iter()
            .map(|c| {
                let rw = store.container_size(c);
                let image = images
                    .iter()
                    .find(|i| i.id == c.record.image_id)
                    .map_or(0, |i| i.size);
                ContainerSize {
                    rw,
                    root_fs: rw + image,
                }
            })
            .collect()
    });
    let mut out = PsList {
        containers: list,
        sizes,
    };
    if let Some(key) = opts.sort {
        out.sort(key);
    }
    Ok(out)
}

impl PsList {
    /// `ps --sort KEY` (stable: ties keep docker's newest-first order).
    fn sort(&mut self, key: PsSort) {
        let c = &self.containers;
        let rec = |i: usize| &c[i].record;
        let size = |i: usize| self.sizes.as_ref().map_or(0, |s| s[i].rw);
        let mut order: Vec<usize> = (0..c.len()).collect();
        match key {
            PsSort::Created | PsSort::RunningFor => {
                order.sort_by_key(|&i| std::cmp::Reverse(rec(i).created))
            }
            PsSort::Id => order.sort_by(|&a, &b| rec(a).id.cmp(&rec(b).id)),
            PsSort::Image => order.sort_by(|&a, &b| rec(a).image.cmp(&rec(b).image)),
            PsSort::Names => order.sort_by(|&a, &b| rec(a).name.cmp(&rec(b).name)),
            PsSort::Size => order.sort_by_key(|&i| size(i)),
            PsSort::Status => {
                order.sort_by_key(|&i| c[i].state.status.name());
            }
        }
        let mut slots: Vec<Option<Container>> = std::mem::take(&mut self.containers)
            .into_iter()
            .map(Some)
            .collect();
        self.containers = order.iter().filter_map(|&i| slots[i].take()).collect();
        if let Some(sizes) = &mut self.sizes {
            *sizes = order.iter().map(|&i| sizes[i]).collect();
        }
    }
}

/// Which containers `--all` names (`start`, `stop`, `rm`): the names of those `running` or
/// not (every one when `None`), oldest first so that output reads in creation order.
pub fn names(ctx: &Ctx, running: Option<bool>) -> Result<Vec<String>> {
    let mut list = ctx.store()?.containers()?;
    list.retain(|c| running.is_none_or(|r| (c.state.status == Status::Running) == r));
    list.sort_by_key(|c| c.record.created);
    Ok(list.into_iter().map(|c| c.record.name).collect())
}

// ------------------------------------------------------------------------------------------
// port

/// `port`: the container's published ports, or those of one container port (`80`,
/// `80/udp`).
pub fn port(ctx: &Ctx, name: &str, which: Option<&str>) -> Result<Vec<crate::net::PortMapping>> {
    let c = ctx.store()?.lookup_container(name)?;
    if c.state.status != Status::Running {
        return Err(crate::store::ContainersError::NotRunning(name.into()).into());
    }
    let Some(w) = which else {
        return Ok(c.state.ports);
    };
    let key = if w.contains('/') {
        w.to_string()
    } else {
        format!("{w}/tcp")
    };
    let hits: Vec<_> = c
        .state
        .ports
        .into_iter()
        .filter(|p| p.key() == key)
        .collect();
    if hits.is_empty() {
        return Err(crate::net::NetError::NoPort(w.into(), name.into()).into());
    }
    Ok(hits)
}

// ------------------------------------------------------------------------------------------
// logs

pub struct LogsOptions {
    pub follow: bool,
    pub read: logs::ReadOptions,
}

/// `logs`: print the container's log (its files, oldest first); with `follow`, keep printing
/// until it stops. A container whose log driver keeps no log is refused, as docker refuses it.
pub fn logs(ctx: &Ctx, name: &str, opts: &LogsOptions) -> Result<()> {
    let store = ctx.store()?;
    let c = ctx.store()?.lookup_container(name)?;
    let Some(format) = logs::Format::of(c.record.spec.log.driver) else {
        return Err(crate::store::ContainersError::LogNotKept {
            name: c.record.name.clone(),
            driver: c.record.spec.log.driver.name(),
        }
        .into());
    };
    let dir = store.container_dir(&c.record.id);
    let path = dir.join(logs::LOG_FILE);
    let io = |e: std::io::Error| crate::store::StoreError::Io {
        path: path.clone(),
        source: e,
    };
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, stdout.lock());
    let mut err = std::io::BufWriter::new(stderr.lock());
    let mut sink = logs::Sink::new(&mut out, &mut err);
    let mut reader = logs::LogReader::new(&dir, format);
    match reader.print_all(&opts.read, &mut sink) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
        r => r.map_err(io)?,
    }
    if opts.follow {
        let mut idle = Duration::from_millis(10);
        loop {
            // Read the state before the log, so output written just before the exit is printed.
            let running = store
                .load_container(&c.record.id)
                .map(|c| c.state.status == Status::Running)
                .unwrap_or(false);
            let progressed = match reader.follow(&opts.read, &mut sink) {
                Ok(p) => p,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                Err(e) => return Err(io(e).into()),
            };
            if progressed {
                idle = Duration::from_millis(10);
                continue;
            }
            if !running {
                break;
            }
            if sink.flush().is_err() {
                return Ok(());
            }
            std::thread::sleep(idle);
            idle = (idle * 2).min(Duration::from_millis(200));
        }
    }
    match sink.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(io(e).into()),
        _ => Ok(()),
    }
}

// ------------------------------------------------------------------------------------------
// stop, kill, wait

/// Wait until the container is no longer running, at most `limit`. True when it stopped.
pub fn wait_stopped(store: &Store, id: &str, limit: Option<Duration>) -> bool {
    let start = Instant::now();
    let mut pause = Duration::from_millis(2);
    loop {
        match store.load_container(id) {
            Ok(c) if c.state.status == Status::Running => {}
            _ => return true,
        }
        if limit.is_some_and(|l| start.elapsed() >= l) {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

fn signal_init(c: &Container, sig: Signal) -> Result<()> {
    if let Some(pid) = c.state.pid {
        match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => {
                return Err(crate::store::StoreError::Io {
                    path: format!("/proc/{pid}").into(),
                    source: e.into(),
                }
                .into());
            }
        }
    }
    Ok(())
}

fn mark_stopped(store: &Store, id: &str) {
    let _ = std::fs::write(store.container_dir(id).join(monitor::STOP_MARK), b"");
}

/// `stop`: the stop signal, then SIGKILL after `timeout` seconds.
pub fn stop(ctx: &Ctx, name: &str, timeout: Option<u32>, signal: Option<&str>) -> Result<()> {
    let store = ctx.store()?;
    let c = ctx.store()?.lookup_container(name)?;
    if c.state.status != Status::Running {
        return Ok(());
    }
    mark_stopped(&store, &c.record.id);
    let sig = match signal.or(c.record.spec.stop_signal.as_deref()) {
        Some(s) => parse_signal(s)?,
        None => Signal::SIGTERM,
    };
    let secs = timeout
        .or(c.record.spec.stop_timeout)
        .unwrap_or(crate::runtime::DEFAULT_STOP_TIMEOUT);
    signal_init(&c, sig)?;
    crate::runtime::procs::resume_after_signal(&store, &c)?;
    if !wait_stopped(&store, &c.record.id, Some(Duration::from_secs(secs as u64))) {
        signal_init(&c, Signal::SIGKILL)?;
        wait_stopped(&store, &c.record.id, Some(Duration::from_secs(10)));
    }
    store.record_event(&crate::store::Event::container(&c.record, "stop"));
    Ok(())
}

/// `kill`: a signal to the container's init.
pub fn kill(ctx: &Ctx, name: &str, signal: &str) -> Result<()> {
    let sig = parse_signal(signal)?;
    let store = ctx.store()?;
    let c = ctx.store()?.lookup_container(name)?;
    if c.state.status != Status::Running {
        return Err(crate::store::ContainersError::NotRunning(name.into()).into());
    }
    if sig == Signal::SIGKILL {
        mark_stopped(&store, &c.record.id);
    }
    signal_init(&c, sig)?;
    store.record_event(
        &crate::store::Event::container(&c.record, "kill").with("signal", (sig as i32).to_string()),
    );
    crate::runtime::procs::resume_after_signal(&store, &c)?;
    if sig == Signal::SIGKILL {
        wait_stopped(&store, &c.record.id, Some(Duration::from_secs(10)));
    }
    Ok(())
}

/// `rename`: docker's, on a container in any state (a running one keeps running).
pub fn rename(ctx: &Ctx, name: &str, new: &str) -> Result<()> {
    let store = ctx.store()?;
    let c = store.lookup_container(name)?;
    if c.record.name == new {
        return Err(crate::store::ContainersError::SameName(new.into()).into());
    }
    store.rename_container(&c.record.id, new)?;
    let mut renamed = c.record.clone();
    renamed.name = new.to_string();
    store.record_event(
        &crate::store::Event::container(&renamed, "rename").with("oldName", c.record.name.clone()),
    );
    Ok(())
}

/// The paths den makes in every container's root (its mount points), which `diff` does not show
/// as changes, as docker's init layer hides its own.
pub(super) const OWN_PATHS: &[&str] = &[
    "etc/hosts",
    "etc/hostname",
    "etc/resolv.conf",
    "proc",
    "sys",
    "dev",
];

/// `diff`: what the container changed against its image (inside den's user namespace, where
/// its writable layer or copy can be read whether it runs or not).
pub fn diff(ctx: &Ctx, name: &str) -> Result<Vec<crate::store::changes::Change>> {
    use crate::store::driver::{Driver, Layout};
    let store = ctx.store()?;
    let c = store.lookup_container(name)?;
    let layers: Vec<std::path::PathBuf> = store
        .rootfs_layers(&c.record)?
        .iter()
        .map(|d| store.layer_diff(d))
        .collect();
    let l = Layout::of(&store.container_dir(&c.record.id));
    Ok(match Driver::from_name(&c.record.driver) {
        Some(Driver::Overlay | Driver::FuseOverlayfs) => {
            crate::store::changes::of_upper(&l.upper, &layers, OWN_PATHS)?
        }
        _ => crate::store::changes::of_copy(&l.rootfs_copy, &layers, OWN_PATHS)?,
    })
}

/// `wait`: block until the container stops; its exit code.
pub fn wait(ctx: &Ctx, name: &str) -> Result<i32> {
    let store = ctx.store()?;
    let c = ctx.store()?.lookup_container(name)?;
    wait_stopped(&store, &c.record.id, None);
    // The monitor may be restarting it; docker's wait returns at the first exit.
    let c = store.load_container(&c.record.id).unwrap_or(c);
    Ok(c.state.exit_code.unwrap_or(0))
}

// ------------------------------------------------------------------------------------------
// start, attach

/// How a terminal attaches (`start -a`, `attach`, a foreground `run` through a monitor).
#[derive(Debug, Clone)]
pub struct Attach {
    /// Send stdin (`start -i`; `attach` unless `--no-stdin`), for a container created with -i.
    pub stdin: bool,
    /// Print the container's stdout, its stderr (`run -a` picks; start and attach take both).
    pub stdout: bool,
    pub stderr: bool,
    pub detach_keys: runtime::detach::DetachKeys,
    /// `--sig-proxy`.
    pub sig_proxy: bool,
}

impl Attach {
    /// docker's defaults: both outputs, ctrl-p ctrl-q, signals proxied.
    pub fn new(stdin: bool) -> Attach {
        Attach {
            stdin,
            stdout: true,
            stderr: true,
            detach_keys: runtime::detach::DetachKeys::default(),
            sig_proxy: true,
        }
    }

    fn client(&self, c: &Container) -> attach::ClientOptions {
        attach::ClientOptions {
            stdin: self.stdin && c.record.spec.stdin,
            stdout: self.stdout,
            stderr: self.stderr,
            tty: c.record.spec.tty,
            detach_keys: self.detach_keys.clone(),
            sig_proxy: self.sig_proxy,
        }
    }
}

/// How an attach ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attached {
    /// The container exited with this status.
    Exited(i32),
    /// The user typed the detach keys; the container runs on.
    Detached,
}

/// `start` (inside den's user namespace): launch a monitor for each container not running.
/// With `attach` (one container), stay attached and return how that ended.
pub fn start(
    ctx: &Ctx,
    names: &[String],
    attach_to: Option<&Attach>,
    out: &mut dyn Write,
) -> Result<Attached> {
    let store = ctx.store()?;
    let runtime_dir = ctx.runtime_dir()?;
    let rctx = ctx.runtime_ctx(&store, &runtime_dir);
    let mut failed: Option<super::Error> = None;
    for n in names {
        let res = (|| -> Result<Option<Attached>> {
            let c = ctx.store()?.lookup_container(n)?;
            if c.state.status == Status::Running {
                if let Some(a) = attach_to {
                    return attach(ctx, n, a).map(Some);
                }
                return Ok(None);
            }
            runtime::monitor::launch(&rctx, &c.record.id, attach_to.is_some())?;
            if let Some(a) = attach_to {
                let path = attach::socket_path(&runtime_dir, &c.record.id);
                let ended = attach::client(&path, &a.client(&c))?;
                return Ok(Some(ended_as(&store, &c.record.id, ended)));
            }
            Ok(None)
        })();
        match res {
            Ok(Some(a)) => return Ok(a),
            Ok(None) => {
                let _ = writeln!(out, "{n}");
            }
            Err(e) => {
                if let Some(prev) = failed.take() {
                    ctx.notes().error(&prev);
                }
                failed = Some(e);
            }
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(Attached::Exited(0)),
    }
}

fn ended_as(store: &Store, id: &str, ended: attach::Ended) -> Attached {
    match ended {
        attach::Ended::Exited(code) => Attached::Exited(code),
        attach::Ended::Detached => Attached::Detached,
        attach::Ended::Lost => {
            wait_stopped(store, id, Some(Duration::from_secs(5)));
            Attached::Exited(
                store
                    .load_container(id)
                    .ok()
                    .and_then(|c| c.state.exit_code)
                    .unwrap_or(crate::error::EXIT_DEN),
            )
        }
    }
}

/// `attach`: the running container's output (and stdin, if it was created with -i) until it
/// exits or the user detaches.
pub fn attach(ctx: &Ctx, name: &str, how: &Attach) -> Result<Attached> {
    let store = ctx.store()?;
    let c = ctx.store()?.lookup_container(name)?;
    if c.state.status != Status::Running {
        return Err(crate::store::ContainersError::NotRunning(name.into()).into());
    }
    let runtime_dir = ctx.runtime_dir()?;
    store.record_event(&crate::store::Event::container(&c.record, "attach"));
    let path = attach::socket_path(&runtime_dir, &c.record.id);
    let ended = attach::client(&path, &how.client(&c))?;
    Ok(ended_as(&store, &c.record.id, ended))
}

/// A created container started under a monitor with `how` attached (a foreground `run` that
/// can detach: docker's create, start, attach).
pub fn start_attached(ctx: &Ctx, id: &str, how: &Attach) -> Result<Attached> {
    let store = ctx.store()?;
    let runtime_dir = ctx.runtime_dir()?;
    let rctx = ctx.runtime_ctx(&store, &runtime_dir);
    let c = store.load_container(id)?;
    runtime::monitor::launch(&rctx, id, true)?;
    let path = attach::socket_path(&runtime_dir, id);
    let ended = attach::client(&path, &how.client(&c))?;
    Ok(ended_as(&store, id, ended))
}

// ------------------------------------------------------------------------------------------
// rm, prune

/// Kill a running container before `rm -f` (on the host, before den enters its namespace).
pub fn kill_for_removal(ctx: &Ctx, name: &str) -> Result<()> {
    let store = ctx.store()?;
    let c = ctx.store()?.lookup_container(name)?;
    if c.state.status == Status::Running {
        kill_now(&store, &c)?;
    }
    Ok(())
}

/// SIGKILL a running container as a user's stop (no restart), and wait until it is down.
fn kill_now(store: &Store, c: &Container) -> Result<()> {
    mark_stopped(store, &c.record.id);
    signal_init(c, Signal::SIGKILL)?;
    wait_stopped(store, &c.record.id, Some(Duration::from_secs(10)));
    Ok(())
}

/// Kill every running container (before `system reset`, on the host).
pub fn kill_all(ctx: &Ctx) -> Result<()> {
    let store = ctx.store()?;
    for c in store.containers()? {
        if c.state.status == Status::Running {
            let _ = kill_now(&store, &c);
        }
    }
    Ok(())
}

/// `rm` (inside den's user namespace). With `volumes`, the container's anonymous volumes go too.
///
/// An `rm` killed midway leaves the container moved aside with its name still pointing at it;
/// `rm` of that name finishes the removal (the name goes; the aside is swept).
pub fn rm(ctx: &Ctx, name: &str, volumes: bool) -> Result<()> {
    let store = ctx.store()?;
    store.sweep();
    let c = match store.lookup_container(name) {
        Ok(c) => c,
        Err(e @ crate::store::StoreError::ContainerUnknown(_)) => {
            // Under the exclusive lock: creators claim a name an instant before they make the
            // container's directory, and hold the lock shared while they do.
            if store.dangling_name(name) {
                let _lock = store.lock_content_exclusive()?;
                if store.remove_dangling_name(name) {
                    return Ok(());
                }
            }
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    };
    if c.state.status == Status::Running {
        return Err(crate::store::ContainersError::RemoveRunning(name.into()).into());
    }
    // A foreground run or a monitor between restarts may still hold it; the record says who.
    store.remove_container(&c.record.id)?;
    if volumes {
        let vols = store.volumes();
        for m in &c.record.spec.mounts {
            if m.kind == crate::volume::MountKind::Volume && m.anonymous {
                let _ = vols.remove(&m.source, &[], true);
            }
        }
    }
    Ok(())
}

/// `container prune` (inside den's user namespace): remove every container not running.
pub fn prune(ctx: &Ctx) -> Result<Vec<String>> {
    Ok(ctx.store()?.prune_containers()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_as_docker_writes_them() {
        assert_eq!(parse_signal("TERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("sighup").unwrap(), Signal::SIGHUP);
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert!(parse_signal("NOPE").is_err());
    }
}
