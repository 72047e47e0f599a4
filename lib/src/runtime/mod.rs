//! Running containers: the root filesystem, the OCI spec, the engine, stdio and signals.
//!
//! Entry point: [`run_foreground`] runs a created container attached to den's terminal and
//! returns its exit status. It must be called inside den's user namespace ([`crate::userns::enter`]).
//!
//! Modules: [`rootfs`] (the mount plan that hides the host's cgroups), [`driver`] (overlay,
//! fuse-overlayfs, vfs), [`spec`] (the OCI runtime spec), [`user`] (users and the command, read
//! from the image), [`engine`] (the engine seam, on libcontainer), [`tty`] (pty and signals),
//! [`relay`] (a foreground container's output, input and signals), [`logs`], [`monitor`] and
//! [`attach`] (detached containers), [`detach`] (the detach keys), [`flags`] (run and exec
//! flags that cannot work).

pub mod attach;
pub mod detach;
pub mod devices;
pub mod engine;
pub mod flags;
pub mod freeze;
pub mod health;
pub mod hooks;
pub mod init;
pub mod keepid;
pub mod logs;
pub mod monitor;
pub mod procs;
pub mod relay;
pub mod rootfs;
pub mod settings;
pub mod spec;
pub mod tty;
pub mod user;

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use chrono::Utc;

use crate::error::{Diagnose, EXIT_CANNOT_INVOKE, EXIT_DEN, EXIT_NOT_FOUND};
use crate::security::seccomp::Machine;
use crate::store::{ContainerRecord, ContainerState, Status, Store, driver};
use crate::sys::Sys;
use crate::userns::IdMap;
pub use flags::FlagError;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("exec: {command:?}: executable file not found in $PATH")]
    CommandNotFound { command: String },
    #[error("exec: {command:?}: permission denied ({path} is not an executable file)")]
    CommandNotExecutable { command: String, path: PathBuf },
    #[error("unable to find {file} entry {user:?} in the image")]
    UserUnknown { user: String, file: &'static str },
    #[error("user {uid} does not exist in single-uid mode (only root, uid 0, is mapped)")]
    UnmappedUser { uid: u32 },
    #[error("cannot prepare {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{stage} hook {path} failed: {failure}")]
    Hook {
        stage: String,
        path: PathBuf,
        failure: String,
    },
    #[error("the runtime failed for container {id}: {message}")]
    Engine { id: String, message: String },
    #[error("cannot hide the host's cgroups from the runtime")]
    HideCgroups(#[source] crate::sys::SysError),
    #[error("cannot give the container a session keyring of its own")]
    Keyring(#[source] crate::sys::SysError),
    #[error(transparent)]
    Store(Box<crate::store::StoreError>),
    #[error("container {name} is {status}")]
    NotStartable { name: String, status: String },
    #[error(transparent)]
    Volume(crate::volume::VolumeError),
    #[error(transparent)]
    Net(crate::net::NetError),
    #[error(transparent)]
    ImageFile(#[from] crate::unpack::scope::ImageFileError),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroup::CgroupError),
    #[error(transparent)]
    Device(crate::cdi::DeviceError),
    /// An error another den process (the monitor) reported.
    #[error("{message}")]
    Failed {
        message: String,
        hint: Option<String>,
        code: i32,
    },
}

impl Diagnose for RuntimeError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            RuntimeError::CommandNotFound { .. } => "check the command's name, or the image's PATH".into(),
            RuntimeError::CommandNotExecutable { .. } => "give the file execute permission in the image, or run it through a shell".into(),
            RuntimeError::UserUnknown { .. } => "use -u UID[:GID], or a name from the image's /etc/passwd".into(),
            RuntimeError::UnmappedUser { .. } => {
                "run as root (drop -u), or give your user a subordinate id range in /etc/subuid and /etc/subgid".into()
            }
            RuntimeError::Io { .. } => "check that den's store and runtime directory are writable".into(),
            RuntimeError::Hook { .. } => {
                "fix the hook, or remove its definition (den reads $XDG_CONFIG_HOME/den/hooks.d, the config's [hooks] dirs, or --hooks-dir)".into()
            }
            RuntimeError::Engine { .. } => "run with --log-level debug for the runtime's own messages".into(),
            RuntimeError::HideCgroups(_) => "this kernel refused a private mount; please report it with `den info`".into(),
            RuntimeError::Keyring(e) if e.errno() == Some(libc::EDQUOT) => {
                "your user's key quota is spent (kernel.keys.maxkeys): stop some containers, or ask for a larger quota".into()
            }
            RuntimeError::Keyring(_) => "please report it with `den info`".into(),
            RuntimeError::Store(e) => return e.hint(),
            RuntimeError::NotStartable { .. } => "remove it with `den rm` and run it again".into(),
            RuntimeError::Volume(e) => return e.hint(),
            RuntimeError::Net(e) => return e.hint(),
            RuntimeError::ImageFile(e) => return e.hint(),
            RuntimeError::Cgroup(e) => return e.hint(),
            RuntimeError::Device(e) => return e.hint(),
            RuntimeError::Failed { hint, .. } => return hint.clone(),
        })
    }
    fn exit_code(&self) -> i32 {
        match self {
            RuntimeError::CommandNotFound { .. } => EXIT_NOT_FOUND,
            RuntimeError::CommandNotExecutable { .. } => EXIT_CANNOT_INVOKE,
            RuntimeError::Failed { code, .. } => *code,
            _ => EXIT_DEN,
        }
    }
}

impl From<crate::store::StoreError> for RuntimeError {
    fn from(e: crate::store::StoreError) -> Self {
        RuntimeError::Store(Box::new(e))
    }
}

/// What a running den process knows about its environment.
pub struct Context<'a> {
    pub sys: &'a dyn Sys,
    pub store: &'a Store,
    pub map: &'a IdMap,
    /// The runtime directory (sockets, libcontainer state).
    pub runtime_dir: &'a Path,
}

/// Hide the host's cgroup hierarchies from the engine, once per process (see [`rootfs`]).
/// Afterwards the engine sees no cgroups.
pub fn hide_cgroups(ctx: &Context<'_>) -> Result<(), RuntimeError> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    if !rootfs::cgroups_visible(&mountinfo) {
        return Ok(());
    }
    let nr = ctx
        .runtime_dir
        .join(format!("newroot-{}", std::process::id()));
    let plan = rootfs::hide_cgroups(&nr, &rootfs::list);
    rootfs::apply(ctx.sys, &plan).map_err(RuntimeError::HideCgroups)
}

/// The network namespace of the container whose network this one shares (`--network
/// container:ID`), which must be running.
fn owner_netns(
    ctx: &Context<'_>,
    network: &crate::net::Network,
) -> Result<Option<PathBuf>, RuntimeError> {
    let crate::net::Network::Container(id) = network else {
        return Ok(None);
    };
    let not_running = || RuntimeError::Net(crate::net::NetError::OwnerNotRunning(id.clone()));
    let owner = ctx.store.load_container(id).map_err(|_| not_running())?;
    match owner.state.pid {
        Some(pid) if owner.state.status == crate::store::Status::Running => {
            Ok(Some(PathBuf::from(format!("/proc/{pid}/ns/net"))))
        }
        _ => Err(RuntimeError::Net(crate::net::NetError::OwnerNotRunning(
            owner.record.name,
        ))),
    }
}

/// A container's /etc/resolv.conf: `--dns`, else its user network's server, slirp4netns's, or
/// the host's servers; the host's `search` and `options` lines.
fn resolv_conf(spec: &crate::store::RunSpec) -> String {
    let network = &spec.network;
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut resolv = String::new();
    if !spec.dns.is_empty() {
        for d in &spec.dns {
            resolv.push_str(&format!("nameserver {d}\n"));
        }
    } else if let Some(gw) = spec.endpoints.first().and_then(|e| e.gateway) {
        // A user network's DNS server answers on its gateway and forwards the rest.
        resolv.push_str(&format!("nameserver {gw}\n"));
    } else if matches!(network, crate::net::Network::Slirp4netns { .. }) {
        // slirp4netns answers DNS at its own address and asks the host's resolvers.
        resolv.push_str(&format!("nameserver {}\n", crate::net::SLIRP_DNS));
    } else {
        resolv.push_str(
            &host_resolv
                .lines()
                .filter(|l| l.starts_with("nameserver"))
                .map(|l| format!("{l}\n"))
                .collect::<String>(),
        );
    }
    for l in host_resolv
        .lines()
        .filter(|l| l.starts_with("search") || l.starts_with("options"))
    {
        resolv.push_str(l);
        resolv.push('\n');
    }
    if resolv.is_empty() {
        resolv.push_str("nameserver 8.8.8.8\n");
    }
    resolv
}

/// Files den provides in every container: /etc/hosts, /etc/hostname, /etc/resolv.conf; a
/// container on another's network gets that one's (docker shares them too).
pub fn write_userdata(
    cdir: &Path,
    spec: &crate::store::RunSpec,
) -> Result<Vec<spec::Bind>, RuntimeError> {
    let dir = cdir.join("userdata");
    std::fs::create_dir_all(&dir).map_err(|e| RuntimeError::Io {
        path: dir.clone(),
        source: e,
    })?;
    if let (crate::net::Network::Container(owner), Some(all)) = (&spec.network, cdir.parent()) {
        let theirs = all.join(owner).join("userdata");
        return Ok(["hosts", "hostname", "resolv.conf"]
            .iter()
            .map(|name| spec::Bind {
                source: theirs.join(name),
                destination: format!("/etc/{name}"),
                read_only: false,
            })
            .collect());
    }
    let hostname = &spec.hostname;
    let network = spec.network.clone();
    let mut hosts = match network {
        crate::net::Network::Host => std::fs::read_to_string("/etc/hosts").unwrap_or_default(),
        _ => format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.0.1\t{hostname}\n"
        ),
    };
    if let crate::net::Network::Slirp4netns {
        allow_host_loopback: true,
    } = network
    {
        hosts.push_str(&format!(
            "{gw}\thost.containers.internal host.docker.internal\n",
            gw = crate::net::SLIRP_GATEWAY
        ));
    }
    for h in &spec.add_hosts {
        if let Some((name, ip)) = h.split_once(':').or_else(|| h.split_once('=')) {
            let ip = if ip == "host-gateway" {
                crate::net::SLIRP_GATEWAY
            } else {
                ip
            };
            hosts.push_str(&format!("{ip}\t{name}\n"));
        }
    }
    let resolv = resolv_conf(spec);
    let mut binds = Vec::new();
    for (name, content) in [
        ("hosts", hosts),
        ("hostname", format!("{hostname}\n")),
        ("resolv.conf", resolv),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, content).map_err(|e| RuntimeError::Io {
            path: p.clone(),
            source: e,
        })?;
        binds.push(spec::Bind {
            source: p,
            destination: format!("/etc/{name}"),
            read_only: false,
        });
    }
    Ok(binds)
}

/// Where a container with faked ids (single-uid mode, `security::fakeids`) finds apt's
/// configuration: in /dev, den's tmpfs, so that nothing of it reaches a build's layer.
const APT_CONFIG: &str = "/dev/.den-apt.conf";

/// apt's configuration for a container with faked ids, bound at [`APT_CONFIG`] and named by the
/// variable of that name unless the container sets it (apt reads it before
/// /etc/apt's own files, which may override it). apt drops to its sandbox user `_apt` to download,
/// then checks that it did with getuid(2) and getgroups(2); with the ids faked it is still root
/// and stops ("Could not switch group"). `APT::Sandbox::User "root"` has it stay root, as
/// Charliecloud's seccomp mode has it (there with `-o` added to apt's command lines).
fn apt_config(
    cdir: &Path,
    env: &mut Vec<String>,
    binds: &mut Vec<spec::Bind>,
) -> Result<(), RuntimeError> {
    let p = cdir.join("userdata").join("apt.conf");
    std::fs::write(&p, "APT::Sandbox::User \"root\";\n").map_err(|e| RuntimeError::Io {
        path: p.clone(),
        source: e,
    })?;
    binds.push(spec::Bind {
        source: p,
        destination: APT_CONFIG.into(),
        read_only: true,
    });
    if !env.iter().any(|e| e.starts_with("APT_CONFIG=")) {
        env.push(format!("APT_CONFIG={APT_CONFIG}"));
    }
    Ok(())
}

/// `--tz`: the host's zone file, copied into the container's directory (at most 1 MiB: zone
/// files are a few KiB) and bound read-only on /etc/localtime.
fn localtime(cdir: &Path, zone: &Path) -> Result<spec::Bind, RuntimeError> {
    use std::io::Read;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RuntimeError::Io { path, source }
    };
    let mut bytes = Vec::new();
    std::fs::File::open(zone)
        .map_err(io(zone))?
        .take(1 << 20)
        .read_to_end(&mut bytes)
        .map_err(io(zone))?;
    let p = cdir.join("localtime");
    std::fs::write(&p, bytes).map_err(io(&p))?;
    Ok(spec::Bind {
        source: p,
        destination: "/etc/localtime".into(),
        read_only: true,
    })
}

/// Create the working directory in the container if the image lacks it, as docker does.
fn ensure_workdir(rootfs: &Path, cwd: &str) -> Result<(), RuntimeError> {
    let host = crate::unpack::scope::resolve(rootfs, Path::new(cwd), true).map_err(|e| {
        RuntimeError::Io {
            path: cwd.into(),
            source: e,
        }
    })?;
    if !host.is_dir() {
        std::fs::create_dir_all(&host).map_err(|e| RuntimeError::Io {
            path: cwd.into(),
            source: e,
        })?;
    }
    Ok(())
}

/// The container's stdin for a run without a terminal: den's own (`-i`), else `/dev/null`.
pub fn stdin_fd(attach_stdin: bool) -> Result<OwnedFd, RuntimeError> {
    if attach_stdin {
        return std::io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| RuntimeError::Io {
                path: "stdin".into(),
                source: e,
            });
    }
    Ok(std::fs::File::open("/dev/null")
        .map_err(|e| RuntimeError::Io {
            path: "/dev/null".into(),
            source: e,
        })?
        .into())
}

/// The container's standard streams for `exec` without a terminal: den's own descriptors.
pub fn inherited_stdio(attach_stdin: bool) -> Result<engine::Stdio, RuntimeError> {
    let dup = |fd: std::os::fd::BorrowedFd<'_>| -> Result<OwnedFd, RuntimeError> {
        fd.try_clone_to_owned().map_err(|e| RuntimeError::Io {
            path: "stdio".into(),
            source: e,
        })
    };
    Ok(engine::Stdio::Fds {
        stdin: stdin_fd(attach_stdin)?,
        stdout: dup(std::io::stdout().as_fd())?,
        stderr: dup(std::io::stderr().as_fd())?,
    })
}

/// Open a container's log to append to (created private to the user), as its log driver
/// says; None for a driver that keeps none.
pub fn open_log(cdir: &Path, config: &logs::LogConfig) -> Result<Option<relay::Log>, RuntimeError> {
    logs::LogFile::open(cdir, config).map_err(|e| RuntimeError::Io {
        path: cdir.join(logs::LOG_FILE),
        source: e,
    })
}

/// Write the container's OCI spec (`config.json` in its directory) for its root filesystem
/// mounted at `rootfs`: den's files, the user and command resolved in the image, the mounts.
/// A keep-id container's user namespace comes back with it: hold it until the container is
/// created.
/// `net` is the container's network as den set it up ([`network_setup`]), whose namespace the
/// container joins when den made it.
pub fn write_spec(
    ctx: &Context<'_>,
    record: &ContainerRecord,
    rootfs: &Path,
    net: Option<&crate::net::Setup>,
) -> Result<Option<keepid::Holder>, RuntimeError> {
    let s = &record.spec;
    let cdir = ctx.store.container_dir(&record.id);
    let host_network = s.network == crate::net::Network::Host;
    let net_ns = match net.and_then(crate::net::Setup::netns_path) {
        Some(p) => Some(p),
        None => owner_netns(ctx, &s.network)?,
    };
    let mut binds = write_userdata(&cdir, s)?;
    if let Some(zone) = &s.timezone {
        binds.push(localtime(&cdir, zone)?);
    }
    let plan = keepid::plan(ctx.map, s, rootfs, &cdir, &mut binds)?;
    let (user, becomes) = (&plan.user, plan.becomes);
    let cdi = devices::edits(&s.devices)?;
    binds.extend(devices::binds(&s.devices, &cdi));
    let env = spec::merge_env(&[], &s.env, &s.hostname, s.tty, Some(&user.home));
    let mut env = devices::env(env, &cdi);
    let single_uid = matches!(ctx.map, IdMap::Single { .. });
    if s.security.fake_ids && single_uid {
        apt_config(&cdir, &mut env, &mut binds)?;
    }
    let cwd = if s.cwd.is_empty() {
        "/"
    } else {
        s.cwd.as_str()
    };
    ensure_workdir(rootfs, cwd)?;
    let first = s.args.first().cloned().unwrap_or_default();
    match user::check_command(rootfs, cwd, &env, &first) {
        // The command may come from a mount (`-v /usr:/usr`), which the image does not show:
        // the runtime's exec decides then, with the same exit codes.
        Err(RuntimeError::CommandNotFound { .. } | RuntimeError::CommandNotExecutable { .. })
            if !s.mounts.is_empty() => {}
        r => {
            r?;
        }
    }
    let mut mounts = volume_mounts(ctx, record, rootfs)?;
    mounts.extend(devices::mounts(&cdi));
    let security = &s.security;
    let caps = security.capabilities(crate::security::last_cap());
    // A kernel without seccomp (rare) runs every container unfiltered; `den info` says so.
    let mut seccomp = crate::security::seccomp_available()
        .then(|| security.seccomp(&caps, &Machine::this(), single_uid))
        .flatten();
    let annotations = keepid::become_user_in_init(becomes, seccomp.as_mut(), &s.annotations);
    if security.privileged {
        binds.extend(spec::host_devices(Path::new("/dev")));
    }
    let oci = spec::build(&spec::SpecInput {
        rootfs,
        args: &s.args,
        env: &env,
        cwd,
        uid: becomes.map_or(user.uid, |_| 0), // a single-uid keep-id init becomes the user
        gid: becomes.map_or(user.gid, |_| 0), // itself, later
        additional_gids: additional_gids(ctx.map, s, user),
        hostname: &s.hostname,
        terminal: s.tty,
        host_network,
        net_ns,
        read_only: s.read_only,
        many_ids: ctx.map.size() > 1,
        binds,
        mounts,
        caps: caps.iter().map(|c| c.name()).collect(),
        no_new_privileges: security.no_new_privileges,
        seccomp,
        privileged: security.privileged,
        annotations: &annotations,
        host_uts: s.host_uts,
        host_pid: s.shared.pid,
        host_ipc: s.shared.ipc,
        user_ns: plan.holder.as_ref().map(keepid::Holder::path),
    });
    let oci = devices::add_hooks(oci, &cdi);
    settings::write_config(oci, s, &cdir)?;
    Ok(plan.holder)
}

/// A container process's supplementary groups (the init's and `exec`'s). setgroups(2) is denied in single-uid mode, so
/// the user's host groups stay; elsewhere the process gets exactly its groups (libcontainer
/// keeps root's group 0 when the list is empty), unless `--group-add keep-groups` asks for no
/// setgroups(2) at all, which keeps the user's host groups.
pub fn additional_gids(map: &IdMap, s: &crate::store::RunSpec, user: &user::User) -> Vec<u32> {
    match map {
        IdMap::Single { .. } => vec![],
        _ if s.devices.keep_groups => vec![],
        _ => std::iter::once(user.gid)
            .chain(user.additional_gids.iter().copied())
            .collect(),
    }
}

/// The container's `-v`, `--mount` and `--tmpfs` mounts as spec mounts. Named volumes are
/// created on first use and, when empty, filled from the image's directory (docker's copy-up).
fn volume_mounts(
    ctx: &Context<'_>,
    record: &ContainerRecord,
    rootfs: &Path,
) -> Result<Vec<spec::SpecMount>, RuntimeError> {
    let volumes = ctx.store.volumes();
    let mut out = Vec::new();
    for m in &record.spec.mounts {
        let options = crate::volume::oci_options(m);
        let (kind, source) = match m.kind {
            crate::volume::MountKind::Bind => {
                crate::volume::prepare_bind(m, m.from_mount_flag).map_err(RuntimeError::Volume)?;
                ("none", PathBuf::from(&m.source))
            }
            crate::volume::MountKind::Volume => {
                let fresh = !volumes.data_dir(&m.source).exists();
                volumes
                    .get_or_create(&m.source, m.anonymous)
                    .map_err(RuntimeError::Volume)?;
                let data = volumes.data_dir(&m.source);
                let empty = std::fs::read_dir(&data)
                    .map(|mut d| d.next().is_none())
                    .unwrap_or(false);
                if fresh || empty {
                    let image_dir =
                        crate::unpack::scope::resolve(rootfs, Path::new(&m.destination), true)
                            .map_err(|e| RuntimeError::Io {
                                path: m.destination.clone().into(),
                                source: e,
                            })?;
                    if image_dir.is_dir() {
                        crate::volume::copy_up(&image_dir, &data).map_err(RuntimeError::Volume)?;
                    }
                }
                ("none", data)
            }
            crate::volume::MountKind::Tmpfs => ("tmpfs", PathBuf::from("tmpfs")),
        };
        out.push(spec::SpecMount {
            destination: m.destination.clone(),
            kind: kind.into(),
            source,
            options,
        });
    }
    Ok(out)
}

/// A container's userspace network: the published ports are bound now, so a port in use fails
/// before the container exists.
pub fn network_setup(record: &ContainerRecord) -> Result<Option<crate::net::Setup>, RuntimeError> {
    let s = &record.spec;
    // A keep-id container has a user namespace of its own (keepid::plan).
    crate::net::Setup::bind(&s.network, &s.ports, !s.shared.keep_id).map_err(RuntimeError::Net)
}

/// Attach a container on user networks (its init `pid` created, not started) through the
/// network helper: the endpoints it got, for the container's state.
pub fn attach_user_networks(
    ctx: &Context<'_>,
    record: &ContainerRecord,
    pid: i32,
) -> Result<Vec<crate::net::usernet::Endpoint>, RuntimeError> {
    if record.spec.endpoints.is_empty() {
        return Ok(vec![]);
    }
    let req = crate::net::usernet::AttachRequest {
        pid,
        id: record.id.clone(),
        name: record.name.clone(),
        endpoints: record.spec.endpoints.clone(),
        op: crate::net::usernet::Op::Attach,
    };
    crate::net::usernet::attach(&crate::net::usernet::holder_dir(ctx.runtime_dir), &req)
        .map_err(RuntimeError::Net)
}

/// The created container's network: its stack started, its user networks attached (while the
/// stack comes up), then the stack waited for and its ports forwarded; on a failure the
/// container is discarded.
pub(super) fn network_up(
    ctx: &Context<'_>,
    record: &ContainerRecord,
    net: Option<&mut crate::net::Setup>,
    inst: &mut dyn engine::Instance,
) -> Result<Vec<crate::net::usernet::Endpoint>, RuntimeError> {
    let pid = inst.pid().as_raw();
    let res = (|| {
        let mut net = net;
        if let Some(n) = net.as_deref_mut() {
            n.start(pid).map_err(RuntimeError::Net)?;
        }
        let endpoints = attach_user_networks(ctx, record, pid)?;
        if let Some(n) = net {
            n.ready().map_err(RuntimeError::Net)?;
        }
        Ok(endpoints)
    })();
    if res.is_err() {
        discard(inst);
    }
    res
}

/// End a created container that will not be started (its init is parked before exec).
pub fn discard(inst: &mut dyn engine::Instance) {
    let _ = inst.signal(nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(inst.pid(), None);
    let _ = inst.delete();
}

/// docker's stop timeout, in seconds, where the container has none of its own (`den stop`'s).
pub const DEFAULT_STOP_TIMEOUT: u32 = 10;

/// How a foreground container den holds is stopped when den is told to end: its stop timeout.
fn stop_of(s: &crate::store::RunSpec) -> relay::Stop {
    let secs = s.stop_timeout.unwrap_or(DEFAULT_STOP_TIMEOUT);
    relay::Stop::new(std::time::Duration::from_secs(secs.into()))
}

/// The process that holds a container: this one, and when it started.
pub fn this_process() -> Option<(i32, u64)> {
    let pid = std::process::id() as i32;
    crate::store::process_start_time(pid).map(|t| (pid, t))
}

/// Run a created container in the foreground and return its exit status.
/// `layers` are the root filesystem's, bottom first. With `keep_log`, the container's output is
/// also appended to its log, for `den logs` (a build step's container has no use for one).
pub fn run_foreground(
    ctx: &Context<'_>,
    record: &ContainerRecord,
    layers: &[crate::digest::Digest],
    keep_log: bool,
) -> Result<i32, RuntimeError> {
    // Made while /sys/fs/cgroup is in sight; reached through a held descriptor afterwards.
    let group = crate::cgroup::limits::setup(ctx.sys, &record.spec.limits, &record.id)?;
    let result = foreground(ctx, record, layers, keep_log, group.as_ref());
    if let Some(g) = &group {
        g.remove(ctx.sys);
    }
    result
}

fn foreground(
    ctx: &Context<'_>,
    record: &ContainerRecord,
    layers: &[crate::digest::Digest],
    keep_log: bool,
    group: Option<&crate::cgroup::limits::Group>,
) -> Result<i32, RuntimeError> {
    let (store, s) = (ctx.store, &record.spec);
    let cdir = store.container_dir(&record.id);
    let driver = driver::Driver::from_name(&record.driver).unwrap_or(driver::Driver::Vfs);
    let (mounted, net) = prepare(ctx, driver, record, layers, record.auto_remove);
    // A failure drops the network set up beside it: its ports close, slirp4netns exits.
    let (rootfs, file_mount) = mounted?;
    let result = (|| {
        let mut net = net?;
        let userns = write_spec(ctx, record, &rootfs, net.as_ref())?;
        tracing::debug!("spec written");
        let mut log = keep_log
            .then(|| open_log(&cdir, &s.log))
            .transpose()?
            .flatten();
        let engine = engine::Youki {
            state_root: ctx.runtime_dir.join("libcontainer"),
            cgroups: false,
        };
        let console = console_socket(ctx, record)?;
        // passthrough (podman's): without a terminal the container's stdio is den's own, so
        // nothing is copied and nothing kept.
        let (stdio, mut outputs) =
            if s.log.driver == logs::LogDriver::Passthrough && console.is_none() {
                (inherited_stdio(s.stdin)?, Vec::new())
            } else {
                foreground_stdio(console.as_ref(), s.stdin)?
            };
        let old_mask = tty::block_signals();
        let res = (|| {
            let mut inst = create_in(group, ctx.sys, &engine, &record.id, &cdir, stdio)?;
            drop(userns);
            tracing::debug!("container created");
            let endpoints = network_up(ctx, record, net.as_mut(), inst.as_mut())?;
            tracing::debug!("network up");
            let (pty, _raw) = tty::open_pty(console.as_ref(), s.stdin)?;
            if let Some(p) = &pty {
                outputs.push(pty_output(p)?);
            }
            store.set_container_state(
                &record.id,
                &ContainerState {
                    status: Status::Running,
                    pid: Some(inst.pid().as_raw()),
                    started_at: Some(Utc::now()),
                    monitor: this_process(),
                    ports: net.as_ref().map(|n| n.ports.clone()).unwrap_or_default(),
                    endpoints,
                    cgroup: group.map(|g| g.host.clone()),
                    ..ContainerState::created()
                },
            )?;
            inst.start()?;
            tracing::debug!("container started");
            let _checker = health::start(store, record);
            let code = relay::supervise(
                inst.pid(),
                pty,
                std::mem::take(&mut outputs),
                log.as_mut(),
                s.attached(),
                None,
                Some(stop_of(s)),
            )?
            .unwrap_or(crate::error::EXIT_DEN);
            tracing::debug!(code, "container exited");
            if let Err(e) = inst.delete() {
                tracing::debug!(error = %e, "runtime state not deleted");
            }
            Ok(code)
        })();
        tty::restore_signals(&old_mask);
        res
    })();
    driver::unmount(ctx.sys, driver, &cdir);
    crate::store::imagefile::release(file_mount, ctx.sys);
    tracing::debug!("rootfs unmounted");
    result
}

/// Create the container and move its init (parked before exec) into the container's own
/// cgroup, when it has one: every process it forks is born there. A failure to move it
/// discards the container.
pub fn create_in(
    group: Option<&crate::cgroup::limits::Group>,
    sys: &dyn crate::sys::Sys,
    engine: &dyn engine::Engine,
    id: &str,
    bundle: &Path,
    stdio: engine::Stdio,
) -> Result<Box<dyn engine::Instance>, RuntimeError> {
    let mut inst = engine.create(id, bundle, stdio)?;
    if let Some(g) = group
        && let Err(e) = g.add(sys, inst.pid().as_raw())
    {
        discard(inst.as_mut());
        return Err(e.into());
    }
    Ok(inst)
}

/// What [`prepare`] returns: the mounted root filesystem, and the network set up beside it.
pub(crate) type Prepared = (
    Result<(PathBuf, Option<crate::store::imagefile::FileMount>), RuntimeError>,
    Result<Option<crate::net::Setup>, RuntimeError>,
);

/// Hide the host's cgroups and mount the container's root filesystem, while a thread of its
/// own sets its network up ([`network_setup`]: ports bound, a namespace made, slirp4netns
/// started in it): neither waits for the other, about 2 ms of every start. The thread is done
/// when this returns, so the process is single-threaded again for the runtime.
pub(crate) fn prepare(
    ctx: &Context<'_>,
    driver: driver::Driver,
    record: &ContainerRecord,
    layers: &[crate::digest::Digest],
    volatile: bool,
) -> Prepared {
    std::thread::scope(|scope| {
        let net = std::thread::Builder::new()
            .name("den-netsetup".into())
            .spawn_scoped(scope, || network_setup(record));
        let mounted = hide_cgroups(ctx).and_then(|()| {
            tracing::debug!("cgroups hidden");
            mount_rootfs(ctx, driver, record, layers, volatile)
        });
        if mounted.is_ok() {
            tracing::debug!(driver = driver.name(), "rootfs mounted");
        }
        let net = match net {
            Ok(thread) => thread.join().unwrap_or_else(|_| {
                Err(RuntimeError::Net(crate::net::NetError::Spawn(
                    std::io::Error::other("the network's thread panicked"),
                )))
            }),
            // No thread to be had: in turn.
            Err(_) => network_setup(record),
        };
        if net.is_ok() {
            tracing::debug!("network set up");
        }
        (mounted, net)
    })
}

/// Mount a container's root filesystem ([`crate::store::imagefile::mount_root`]: its image
/// file's or its layers').
pub fn mount_rootfs(
    ctx: &Context<'_>,
    driver: driver::Driver,
    record: &ContainerRecord,
    layers: &[crate::digest::Digest],
    volatile: bool,
) -> Result<(PathBuf, Option<crate::store::imagefile::FileMount>), RuntimeError> {
    Ok(crate::store::imagefile::mount_root(
        ctx.sys, driver, ctx.store, record, layers, volatile,
    )?)
}

/// A pty's master as the output [`relay::supervise`] reads (a terminal has one stream).
fn pty_output(p: &tty::Pty) -> Result<relay::Output, RuntimeError> {
    Ok(relay::Output {
        fd: p.master.try_clone().map_err(|e| RuntimeError::Io {
            path: "pty".into(),
            source: e,
        })?,
        stream: logs::Stream::Stdout,
    })
}

/// The socket a tty container's init sends its pty master to; none without a tty.
fn console_socket(
    ctx: &Context<'_>,
    record: &ContainerRecord,
) -> Result<Option<tty::ConsoleSocket>, RuntimeError> {
    if !record.spec.tty {
        return Ok(None);
    }
    tty::ConsoleSocket::bind(&ctx.runtime_dir.join(format!("c-{}.sock", &record.id[..12])))
        .map(Some)
}

/// A foreground container's stdio for the engine, and the outputs [`relay::supervise`] reads:
/// the console (its pty comes later), or pipes, with den's stdin or none.
fn foreground_stdio(
    console: Option<&tty::ConsoleSocket>,
    stdin: bool,
) -> Result<(engine::Stdio, Vec<relay::Output>), RuntimeError> {
    Ok(match console {
        Some(c) => (
            engine::Stdio::Console {
                socket: c.path.clone(),
            },
            Vec::new(),
        ),
        None => {
            let ([stdout, stderr], outputs) = relay::output_pipes()?;
            (
                engine::Stdio::Fds {
                    stdin: stdin_fd(stdin)?,
                    stdout,
                    stderr,
                },
                outputs,
            )
        }
    })
}
