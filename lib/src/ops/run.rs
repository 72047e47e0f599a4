//! `run`: create a container from an image (pulling it first if it is not local) and run it in
//! the foreground. Must run inside den's user namespace.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::Utc;
use oci_spec::image::ImageConfiguration;

use super::Result;
use super::{Ctx, Report};
use crate::net::{Network, PortMapping};
use crate::runtime;
use crate::security::Security;
use crate::store::driver;
use crate::store::{
    AttachStreams, ContainerRecord, ContainerState, ImageRecord, RestartPolicy, RunSpec, Status,
    Store, StoreError,
};
use crate::volume::MountSpec;

/// `run`'s and `create`'s options, the flags parsed ([`crate::cli::run`]).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The image as the user named it (a name, or an id).
    pub image: String,
    pub command: Vec<String>,
    pub rm: bool,
    pub detach: bool,
    /// `-v`, `--mount` and `--tmpfs`, in that order.
    pub mounts: Vec<MountSpec>,
    pub restart: RestartPolicy,
    pub labels: BTreeMap<String, String>,
    /// `--annotation`: into the OCI spec's annotations.
    pub annotations: BTreeMap<String, String>,
    /// `--tz`: the host's zoneinfo file for the container's /etc/localtime (checked).
    pub timezone: Option<std::path::PathBuf>,
    /// `--uts host`.
    pub host_uts: bool,
    /// `--pid`, `--ipc`, `--userns`.
    pub shared: SharedFlags,
    pub stop_timeout: Option<u32>,
    pub stop_signal: Option<String>,
    /// `-p`.
    pub publish: Vec<PortMapping>,
    /// `-P`: every port the image exposes.
    pub publish_all: bool,
    /// `--add-host NAME:IP` (checked).
    pub add_hosts: Vec<String>,
    pub dns: Vec<String>,
    pub interactive: bool,
    pub tty: bool,
    pub name: Option<String>,
    /// `-e` and `--env-file`, resolved: `KEY=VALUE` each.
    pub env: Vec<String>,
    /// `--env-host`: den's environment first, under `env` (None: the config's `[run]
    /// env_host`, off by default).
    pub env_host: Option<bool>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub entrypoint: Option<String>,
    pub hostname: Option<String>,
    /// `--network`; None: den's default ([`create`] says which).
    pub network: Option<Network>,
    /// `--network-alias`: more names on a user network.
    pub network_aliases: Vec<String>,
    /// `--ip`: the address on a user network.
    pub ip: Option<std::net::Ipv4Addr>,
    pub platform: Option<String>,
    pub read_only: bool,
    pub security: Security,
    /// `--memory`, `--cpus`, `--pids-limit`, ...: checked, not yet resolved to a cgroup.
    pub limits: crate::cgroup::limits::Limits,
    /// `--pull`.
    pub pull: PullPolicy,
    /// `--cidfile`: where the new container's id is written (a file that must not exist).
    pub cidfile: Option<std::path::PathBuf>,
    /// `--log-driver` (None: the config file's) and `--log-opt`, checked
    /// ([`crate::config::logging::LogConfig::parse_flags`]).
    pub log_driver: Option<crate::config::logging::LogDriver>,
    pub log_opts: BTreeMap<String, String>,
    /// `-a`: the streams a foreground run attaches (stdin only with -i); None: docker's
    /// default (stdout, stderr, and stdin with -i).
    pub attach: Option<AttachStreams>,
    /// `--detach-keys` (or docker's configured ones): how a terminal run detaches.
    pub detach_keys: runtime::detach::DetachKeys,
    /// `--sig-proxy` (true unless `--sig-proxy=false`).
    pub sig_proxy: bool,
    /// `--image-file`: a single-file image ([`crate::image::sqsh`]) instead of `image`.
    pub image_file: Option<std::path::PathBuf>,
    /// `--device`, `--gpus`, `--group-add` (CDI names checked against the specs).
    pub devices: crate::cdi::DeviceRequest,
    /// `--init`, `--sysctl`, `--ulimit`, `--shm-size` (checked).
    pub process: crate::security::process::Settings,
    /// `--hooks-dir`: where hook definitions are read instead of den's defaults ([`hook_dirs`]).
    pub hooks_dirs: Vec<std::path::PathBuf>,
    /// `--health-*` and `--no-healthcheck` (None: the image's HEALTHCHECK as it is).
    pub healthcheck: Option<crate::store::health::HealthConfig>,
}

/// `--pid`, `--ipc` and `--userns` as given: each None when not given (the config's `[run]`
/// default applies then).
#[derive(Debug, Clone, Copy, Default)]
pub struct SharedFlags {
    /// `--pid host` (true), `--pid private` (false).
    pub pid: Option<bool>,
    /// `--ipc host` (true), `--ipc private` or `shareable` (false).
    pub ipc: Option<bool>,
    /// `--userns keep-id` (true), `--userns host` (false).
    pub keep_id: Option<bool>,
}

/// `--pull`: when `run` and `create` pull their image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Only when it is not in the store (docker's default).
    #[default]
    Missing,
    /// Every time (a pull fetches only what changed).
    Always,
    /// Never: a missing image is an error.
    Never,
}

impl PullPolicy {
    /// docker's words, and podman's `true` (always), `false` (missing) and `newer` (den's pull
    /// fetches only what differs from the store, so it is `always`).
    pub fn parse(s: &str) -> Option<PullPolicy> {
        Some(match s.to_ascii_lowercase().as_str() {
            "always" | "true" | "newer" | "ifnewer" => PullPolicy::Always,
            "missing" | "false" | "ifnotpresent" => PullPolicy::Missing,
            "never" => PullPolicy::Never,
            _ => return None,
        })
    }
}

/// `--cidfile`: claimed (created, empty) before anything else, so an existing file stops the
/// verb with the store untouched; removed again if the container is not made.
struct CidFile(Option<std::path::PathBuf>);

impl CidFile {
    fn claim(path: Option<&std::path::Path>) -> Result<CidFile> {
        let Some(p) = path else {
            return Ok(CidFile(None));
        };
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(p)
        {
            Ok(_) => Ok(CidFile(Some(p.to_path_buf()))),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(crate::runtime::FlagError::CidFileExists(p.to_path_buf()).into())
            }
            Err(source) => Err(crate::runtime::FlagError::CidFile {
                path: p.to_path_buf(),
                source,
            }
            .into()),
        }
    }

    fn write(mut self, id: &str) -> Result<()> {
        if let Some(p) = self.0.take() {
            std::fs::write(&p, id)
                .map_err(|source| crate::runtime::FlagError::CidFile { path: p, source })?;
        }
        Ok(())
    }
}

impl Drop for CidFile {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The process-level configuration an image gives its containers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageDefaults {
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub workdir: String,
    pub user: String,
    pub stop_signal: Option<String>,
    pub exposed_ports: Vec<String>,
    /// docker's `Healthcheck` (not in the OCI configuration: read from the config's JSON).
    pub healthcheck: Option<crate::store::health::HealthConfig>,
}

pub fn image_defaults(ctx: &Ctx, image: &ImageRecord) -> Result<ImageDefaults> {
    let bytes = ctx.store()?.read_blob(&image.config)?;
    let cfg: ImageConfiguration =
        serde_json::from_slice(&bytes).map_err(|source| crate::image::ImageError::BadConfig {
            digest: image.config.to_string(),
            source,
        })?;
    Ok(ImageDefaults {
        healthcheck: image_healthcheck(&bytes),
        ..defaults_of(&cfg)
    })
}

/// [`ImageDefaults`] of a configuration.
pub fn defaults_of(cfg: &ImageConfiguration) -> ImageDefaults {
    let c = cfg.config().clone().unwrap_or_default();
    ImageDefaults {
        env: c.env().clone().unwrap_or_default(),
        entrypoint: c.entrypoint().clone().unwrap_or_default(),
        cmd: c.cmd().clone().unwrap_or_default(),
        workdir: c.working_dir().clone().unwrap_or_default(),
        user: c.user().clone().unwrap_or_default(),
        stop_signal: c.stop_signal().clone(),
        exposed_ports: c.exposed_ports().clone().unwrap_or_default(),
        healthcheck: None,
    }
}

/// An image configuration's `config.Healthcheck` (docker's; OCI's type has no such field).
fn image_healthcheck(config: &[u8]) -> Option<crate::store::health::HealthConfig> {
    let v: serde_json::Value = serde_json::from_slice(config).ok()?;
    serde_json::from_value(v.get("config")?.get("Healthcheck")?.clone()).ok()
}

/// docker's rule: `--entrypoint` replaces the image's entrypoint and drops its CMD; a command on
/// the command line replaces CMD.
pub fn command_line(
    defaults: &ImageDefaults,
    entrypoint: Option<&str>,
    command: &[String],
) -> Vec<String> {
    let ep: Vec<String> = match entrypoint {
        Some("") => vec![],
        Some(e) => vec![e.to_string()],
        None => defaults.entrypoint.clone(),
    };
    let cmd: Vec<String> = if !command.is_empty() {
        command.to_vec()
    } else if entrypoint.is_some() {
        vec![]
    } else {
        defaults.cmd.clone()
    };
    ep.into_iter().chain(cmd).collect()
}

/// `-p`'s ports and, with `-P`, the image's exposed ones; refused on a network without den-net.
fn published(
    opts: &RunOptions,
    defaults: &ImageDefaults,
    network: &Network,
) -> Result<Vec<PortMapping>> {
    let mut ports = opts.publish.clone();
    if opts.publish_all {
        ports.extend(crate::net::ports::publish_all(&defaults.exposed_ports));
    }
    if !ports.is_empty() && matches!(network, Network::Container(_)) {
        return Err(crate::net::NetError::ModeConflict("port publishing").into());
    }
    if !ports.is_empty() && !network.needs_helper() {
        return Err(crate::net::NetError::PortsNeedNetwork(network.name().into()).into());
    }
    Ok(ports)
}

/// Create the container record for `opts`: the image found (or pulled), the command, the
/// ports and the network decided, the record written and the root filesystem prepared.
pub fn create(
    ctx: &Ctx,
    opts: &RunOptions,
    report: &dyn Report,
) -> Result<(ContainerRecord, Vec<crate::digest::Digest>)> {
    let log = crate::config::logging::LogConfig::resolve(
        opts.log_driver,
        &opts.log_opts,
        &ctx.config.log.log_config()?,
    )?;
    if opts.detach && log.driver == crate::config::logging::LogDriver::Passthrough {
        return Err(crate::runtime::FlagError::PassthroughDetached.into());
    }
    let (opts, shared) = &with_run_defaults(opts, &ctx.config.run)?;
    let limits = limits(ctx, opts)?;
    let network = choose_network(opts, report)?;
    let hook_defs = check_hooks_and_process(ctx, opts, &network, shared)?;
    let cidfile = CidFile::claim(opts.cidfile.as_deref())?;
    let (image, file, defaults) = match image_file(opts)? {
        Some((path, json)) => {
            let defaults = defaults_of(&json.image_config(&path)?);
            (None, Some((path, json)), defaults)
        }
        None => {
            let image = find_image(ctx, opts, report)?;
            tracing::debug!("image found");
            let defaults = image_defaults(ctx, &image)?;
            (Some(image), None, defaults)
        }
    };
    let args = command_line(&defaults, opts.entrypoint.as_deref(), &opts.command);
    if args.is_empty() {
        return Err(crate::runtime::FlagError::NoCommand(opts.image.clone()).into());
    }
    let ports = published(opts, &defaults, &network)?;
    let store = ctx.store()?;
    tracing::debug!("image config read");
    let choice = driver::choose(&crate::sys::LinuxSys, &store, ctx.config.storage.driver);
    let diff_ids: Vec<crate::digest::Digest> = image
        .iter()
        .flat_map(|i| i.layers.iter().map(|l| l.diff_id.clone()))
        .collect();
    let chosen = driver::for_layers(choice.driver, &store, &diff_ids);
    if chosen == driver::Driver::Overlay
        && diff_ids.iter().any(|d| store.layer_is_foreign(d))
        && let Err(why) = driver::fuse_usable()
    {
        report.note(&format!(
            "warning: the image is another user's (an additional store) and {why}: its directories are read-only in the container"
        ));
    }
    tracing::debug!("driver chosen");
    let image_id = match (&image, &file) {
        (Some(i), _) => i.id.clone(),
        (None, Some((path, json))) => super::squash::source_id(path, json)?,
        (None, None) => unreachable!("an image or a file"),
    };
    let record = ContainerRecord {
        id: String::new(),
        name: String::new(),
        image_id,
        image: opts.image.clone(),
        created: Utc::now(),
        driver: chosen.name().into(),
        spec: Box::new(RunSpec {
            log,
            shared: *shared,
            limits,
            hooks: container_hooks(&hook_defs, opts, &args),
            ..run_spec(opts, &defaults, args, network)
        }),
        auto_remove: opts.rm,
        layers: Vec::new(),
        image_file: file.map(|(p, _)| p),
    };
    let record = with_endpoints(ctx, record, opts)?;
    let record = write_record(&store, record, image.as_ref(), opts, ports, chosen)?;
    if let Err(e) = cidfile.write(&record.id) {
        let _ = store.remove_container(&record.id);
        return Err(e);
    }
    Ok((record, diff_ids))
}

/// `--memory`, `--cpus`, ... with the delegated cgroup subtree they will be applied in; refused
/// here, before anything is pulled or made, where there is none.
fn limits(ctx: &Ctx, opts: &RunOptions) -> Result<crate::cgroup::limits::Limits> {
    let sys = crate::sys::LinuxSys;
    Ok(crate::cgroup::limits::resolve(
        &sys,
        &ctx.cgroup_where(),
        &opts.limits,
    )?)
}

/// The store image `run` names, pulled as `--pull` says.
fn find_image(ctx: &Ctx, opts: &RunOptions, report: &dyn Report) -> Result<ImageRecord> {
    Ok(match opts.pull {
        PullPolicy::Missing => ctx.find_or_pull(&opts.image, opts.platform.as_deref(), report)?,
        PullPolicy::Always => ctx.pull_image(&opts.image, opts.platform.as_deref())?,
        PullPolicy::Never => match ctx.store()?.find_image(&opts.image) {
            Err(StoreError::ImageUnknown(_)) => {
                let shown = crate::image::Reference::parse(&opts.image)
                    .map_or(opts.image.clone(), |r| {
                        crate::image::familiar_name(&r.canonical())
                    });
                return Err(StoreError::NotPulled(shown).into());
            }
            found => found?,
        },
    })
}

/// The single-file image `run` names (`--image-file`, or an argument that is such a file),
/// checked, its path absolute, and its `image.json`; None for a store image.
fn image_file(
    opts: &RunOptions,
) -> Result<Option<(std::path::PathBuf, crate::image::sqsh::ImageJson)>> {
    use crate::image::sqsh;
    let named = match &opts.image_file {
        Some(p) => p.clone(),
        None if sqsh::is_image_file(&opts.image) => std::path::PathBuf::from(&opts.image),
        None => return Ok(None),
    };
    let path = std::fs::canonicalize(&named).map_err(|source| sqsh::SqshError::Read {
        path: named.clone(),
        source,
    })?;
    let json = sqsh::read_image_json(&path)?;
    Ok(Some((path, json)))
}

/// The options with the config's `[run]` defaults filled in where no flag was given, and what
/// the container shares with the host. `bind_cwd` and `bind_home` add their binds unless a
/// flag mounts something at the same place (`-w` still wins over bind_cwd's working
/// directory); `/` is never bound over the container's root.
fn with_run_defaults(
    opts: &RunOptions,
    run: &crate::config::run::RunTable,
) -> Result<(RunOptions, crate::userns::share::Shared)> {
    let shared = crate::userns::share::Shared {
        pid: opts.shared.pid.unwrap_or(run.host_pid()),
        ipc: opts.shared.ipc.unwrap_or(run.host_ipc()),
        keep_id: opts.shared.keep_id.unwrap_or(run.keep_id()),
    };
    let mut opts = opts.clone();
    opts.env = with_host_env(opts.env_host.unwrap_or(run.env_host), &opts.env);
    if shared.keep_id && opts.user.is_none() {
        // keep-id's user wins over the image's USER, as podman's does; `-u` over both.
        opts.user = Some(String::new());
    }
    if opts.network.is_none()
        && let Some(n) = &run.network
    {
        opts.network = Some(
            Network::parse(n)
                .ok_or_else(|| crate::config::ConfigError::BadRunNetwork(n.clone()))?,
        );
    }
    let cwd = std::env::current_dir().ok().filter(|d| d != Path::new("/"));
    let home = std::env::var_os("HOME")
        .map(std::path::PathBuf::from)
        .filter(|h| h.is_absolute() && h != Path::new("/"));
    let binds = [(run.bind_cwd, cwd.clone()), (run.bind_home, home)];
    for dir in binds
        .into_iter()
        .filter(|(on, _)| *on)
        .filter_map(|(_, d)| d)
    {
        let text = dir.to_string_lossy().into_owned();
        if opts.mounts.iter().any(|m| m.destination == text) {
            continue;
        }
        opts.mounts.push(crate::volume::parse_volume_flag(
            &format!("{text}:{text}"),
            &dir,
        )?);
    }
    if run.bind_cwd
        && opts.workdir.is_none()
        && let Some(d) = cwd
    {
        opts.workdir = Some(d.to_string_lossy().into_owned());
    }
    Ok((opts, shared))
}

/// The container's environment from the flags: with `--env-host` den's own first (a batch
/// job's `SLURM_*` among it), without den's internal `_DEN_*` variables, then `-e` and
/// `--env-file`'s.
fn with_host_env(env_host: bool, user: &[String]) -> Vec<String> {
    if !env_host {
        return user.to_vec();
    }
    // Variables whose name or value is not text cannot be written in the spec: left out.
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| !k.starts_with("_DEN_"))
        .map(|(k, v)| format!("{k}={v}"))
        .chain(user.iter().cloned())
        .collect()
}

/// What the container runs: the image's defaults under the flags.
fn run_spec(opts: &RunOptions, d: &ImageDefaults, args: Vec<String>, network: Network) -> RunSpec {
    let mut env = d.env.clone();
    env.extend(opts.env.iter().cloned());
    let image_cwd = if d.workdir.is_empty() {
        "/".to_string()
    } else {
        d.workdir.clone()
    };
    RunSpec {
        args,
        env,
        cwd: opts
            .workdir
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or(image_cwd),
        user: opts.user.clone().unwrap_or(d.user.clone()),
        hostname: String::new(),
        tty: opts.tty,
        stdin: opts.interactive,
        network,
        endpoints: vec![],
        stop_signal: opts.stop_signal.clone().or(d.stop_signal.clone()),
        read_only: opts.read_only,
        entrypoint: match opts.entrypoint.as_deref() {
            Some("") => vec![],
            Some(e) => vec![e.to_string()],
            None => d.entrypoint.clone(),
        },
        cmd: if !opts.command.is_empty() {
            opts.command.clone()
        } else if opts.entrypoint.is_some() {
            vec![]
        } else {
            d.cmd.clone()
        },
        mounts: opts.mounts.clone(),
        restart: opts.restart,
        stop_timeout: opts.stop_timeout,
        labels: opts.labels.clone(),
        annotations: opts.annotations.clone(),
        attach: if opts.detach {
            Some(AttachStreams::default())
        } else {
            opts.attach
        },
        timezone: opts.timezone.clone(),
        host_uts: opts.host_uts,
        // Resolved with the config's defaults in `create`.
        shared: Default::default(),
        ports: Vec::new(),
        add_hosts: opts.add_hosts.clone(),
        dns: opts.dns.clone(),
        security: opts.security.clone(),
        // Resolved with the config's default in `create`.
        log: Default::default(),
        devices: opts.devices.clone(),
        // Resolved to this machine's cgroup subtree in `create`.
        limits: Default::default(),
        // Read from the hooks directories in `create`.
        hooks: Default::default(),
        process: opts.process.clone(),
        healthcheck: crate::store::health::HealthConfig::merged(
            opts.healthcheck.as_ref(),
            d.healthcheck.as_ref(),
        ),
    }
}

/// The hook definitions `run` reads ([`hook_dirs`]), and the process settings checked against
/// the namespaces the container shares with the host: before anything is pulled or created.
fn check_hooks_and_process(
    ctx: &Ctx,
    opts: &RunOptions,
    network: &Network,
    shared: &crate::userns::share::Shared,
) -> Result<crate::hooks::Definitions> {
    opts.process
        .check_namespaces(*network == Network::Host, shared.ipc)?;
    Ok(crate::hooks::load(&hook_dirs(ctx, opts))?)
}

/// The hooks of `defs` the container with `opts` and command line `args` matches.
fn container_hooks(
    defs: &crate::hooks::Definitions,
    opts: &RunOptions,
    args: &[String],
) -> crate::hooks::Hooks {
    defs.matching(&crate::hooks::Target {
        annotations: &opts.annotations,
        command: args.first().map_or("", String::as_str),
        has_bind_mounts: opts
            .mounts
            .iter()
            .any(|m| m.kind == crate::volume::MountKind::Bind),
    })
}

/// The directories hook definitions are read from, in rising precedence: `--hooks-dir`'s when
/// given (podman's: the flag replaces the defaults), else the config's `[hooks] dirs` (the
/// site's) and then `hooks.d` beside the user's config file (`$XDG_CONFIG_HOME/den/hooks.d`).
pub fn hook_dirs(ctx: &Ctx, opts: &RunOptions) -> Vec<std::path::PathBuf> {
    if !opts.hooks_dirs.is_empty() {
        return opts.hooks_dirs.clone();
    }
    let mut dirs = ctx.config.hooks.dirs.clone();
    if let Some(d) = ctx.paths.config.parent() {
        dirs.push(d.join("hooks.d"));
    }
    dirs
}

/// Claim the container's name and id, write its record (with its ports and host name), and
/// prepare its root filesystem; a container that cannot be prepared is removed again.
fn write_record(
    store: &Store,
    record: ContainerRecord,
    image: Option<&ImageRecord>,
    opts: &RunOptions,
    ports: Vec<PortMapping>,
    driver: driver::Driver,
) -> Result<ContainerRecord> {
    let _pin = store.lock_content_shared()?;
    // Still pinned by the lock: the image cannot be removed between lookup and record.
    if let Some(image) = image {
        store.find_image(image.id.as_str())?;
    }
    let mut record = record;
    // The id first: the default host name is its first 12 digits, and the record is written
    // once, complete.
    record.id = crate::fs::random_hex(32);
    record.spec.ports = ports;
    record.spec.hostname = match (&opts.hostname, &record.spec.network) {
        (Some(h), _) => h.clone(),
        (None, Network::Container(_)) => record.spec.hostname.clone(),
        (None, _) if opts.host_uts => nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| record.id[..12].into()),
        (None, Network::Host) => nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| record.id[..12].into()),
        (None, _) => record.id[..12].to_string(),
    };
    let record = store.create_container(record, opts.name.as_deref())?;
    let cdir = store.container_dir(&record.id);
    let layers: Vec<crate::digest::Digest> = image
        .map(|i| i.layers.iter().map(|l| l.diff_id.clone()).collect())
        .unwrap_or_default();
    if let Err(e) = driver::prepare(driver, store, &layers, &cdir) {
        let _ = store.remove_container(&record.id);
        return Err(e.into());
    }
    Ok(record)
}

/// A container on a user network gets its endpoint (the network's definition read now, so a
/// missing network fails before anything is made); `--ip` and `--network-alias` need one.
fn with_endpoints(
    ctx: &Ctx,
    mut record: ContainerRecord,
    opts: &RunOptions,
) -> Result<ContainerRecord> {
    match &record.spec.network {
        Network::Container(owner) => {
            let conflicts = [
                (opts.hostname.is_some(), "hostname"),
                (!opts.dns.is_empty(), "dns"),
                (!opts.add_hosts.is_empty(), "custom host-to-IP mapping"),
                (!opts.network_aliases.is_empty(), "network aliases"),
                (opts.ip.is_some(), "an address (--ip)"),
            ];
            if let Some((_, what)) = conflicts.iter().find(|(set, _)| *set) {
                return Err(crate::net::NetError::ModeConflict(what).into());
            }
            let owner = ctx.store()?.lookup_container(owner)?;
            if record.spec.shared.keep_id || owner.record.spec.shared.keep_id {
                return Err(crate::net::NetError::UserNetworkConflict(
                    "--userns keep-id cannot share a network namespace (the two containers' id \
                     mappings differ): drop --userns keep-id"
                        .into(),
                )
                .into());
            }
            // The record names it by id, as docker's NetworkMode does; it has its host name.
            record.spec.network = Network::Container(owner.record.id);
            record.spec.hostname = owner.record.spec.hostname;
        }
        Network::User(name) => {
            if crate::userns::current().is_some_and(|m| m == crate::userns::IdMap::Root) {
                return Err(crate::net::NetError::UserNetworkConflict(
                    "user networks are for rootless den: as root, use --network slirp4netns".into(),
                )
                .into());
            }
            if record.spec.shared.keep_id {
                return Err(crate::net::NetError::UserNetworkConflict(
                    "--userns keep-id cannot join a user network (its containers share one id \
                     mapping): drop --userns keep-id, or use --network slirp4netns"
                        .into(),
                )
                .into());
            }
            record.spec.endpoints =
                super::network::endpoints(ctx, name, &opts.network_aliases, opts.ip)?;
        }
        _ if opts.ip.is_some() => {
            return Err(crate::net::NetError::UserNetworkConflict(
                "--ip needs a user network (--network NAME)".into(),
            )
            .into());
        }
        _ if !opts.network_aliases.is_empty() => {
            return Err(crate::net::NetError::UserNetworkConflict(
                "--network-alias needs a user network (--network NAME)".into(),
            )
            .into());
        }
        _ => {}
    }
    Ok(record)
}

/// The network: `--network`, else the userspace network where slirp4netns is installed, else
/// the host's (with a note, unless ports are published: those need the userspace network).
fn choose_network(opts: &RunOptions, report: &dyn Report) -> Result<Network> {
    if let Some(n) = &opts.network {
        return Ok(n.clone());
    }
    if crate::config::find_in_path("slirp4netns").is_some() {
        return Ok(Network::Slirp4netns {
            allow_host_loopback: false,
        });
    }
    if !opts.publish.is_empty() || opts.publish_all {
        return Err(crate::net::NetError::Missing {
            program: "slirp4netns".into(),
        }
        .into());
    }
    report.note("slirp4netns is not installed: the container shares the host's network (install slirp4netns for a private one)");
    Ok(Network::Host)
}

/// `run -d`: create the container, start it under a monitor, return its id.
pub fn run_detached(ctx: &Ctx, opts: &RunOptions, report: &dyn Report) -> Result<String> {
    let (record, _image) = create(ctx, opts, report)?;
    let store = ctx.store()?;
    let runtime_dir = ctx.runtime_dir()?;
    let rctx = ctx.runtime_ctx(&store, &runtime_dir);
    if let Err(e) = runtime::monitor::launch(&rctx, &record.id, false) {
        if opts.rm {
            let _ = store.remove_container(&record.id);
        }
        return Err(e.into());
    }
    Ok(record.id)
}

/// `run` in the foreground: how it ended (the container's exit status, or the user detached).
/// `created` is told the new container's id before it starts (docker prints it when `-a`
/// attaches neither stdout nor stderr).
///
/// den holds the container itself and relays its streams, unless the run must be able to
/// leave it running: a terminal run with detach keys, or `--sig-proxy=false` (ctrl-c leaves).
/// Those go as docker's do, create, start under a monitor, attach.
pub fn run(
    ctx: &Ctx,
    opts: &RunOptions,
    report: &dyn Report,
    created: &mut dyn FnMut(&str),
) -> Result<super::container::Attached> {
    use super::container::{Attach, Attached};
    // Only a container attached to den's terminal needs one (`create -it`, `run -dit` do not).
    if opts.tty
        && opts.interactive
        && !runtime::tty::is_tty(std::os::fd::AsFd::as_fd(&std::io::stdin()))
    {
        return Err(crate::runtime::FlagError::NotATty.into());
    }
    let (record, layers) = create(ctx, opts, report)?;
    tracing::debug!(id = %record.id, "container record created");
    created(&record.id);
    let detachable = opts.tty && opts.interactive && opts.detach_keys.enabled();
    if detachable || !opts.sig_proxy {
        let streams = record.spec.attached();
        let how = Attach {
            stdin: streams.stdin,
            stdout: streams.stdout,
            stderr: streams.stderr,
            detach_keys: opts.detach_keys.clone(),
            sig_proxy: opts.sig_proxy,
        };
        let store = ctx.store()?;
        let ended = super::container::start_attached(ctx, &record.id, &how);
        if ended.is_err() && opts.rm {
            let _ = store.remove_container(&record.id);
        }
        if opts.rm && matches!(ended, Ok(Attached::Exited(_))) {
            // docker's `run --rm` returns once the container is gone: its monitor removes it.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while store.load_container(&record.id).is_ok() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        return ended;
    }
    let store = ctx.store()?;
    let runtime_dir = ctx.runtime_dir()?;
    let rctx = ctx.runtime_ctx(&store, &runtime_dir);
    let result = runtime::run_foreground(&rctx, &record, &layers, true);
    let finished = Utc::now();
    let state = match &result {
        Ok(code) => ContainerState {
            status: Status::Exited,
            pid: None,
            exit_code: Some(*code),
            started_at: store
                .container_state(&record.id)
                .ok()
                .and_then(|s| s.started_at),
            finished_at: Some(finished),
            ..ContainerState::created()
        },
        Err(e) => ContainerState {
            status: Status::Created,
            pid: None,
            exit_code: Some(crate::error::Diagnose::exit_code(e)),
            started_at: None,
            finished_at: None,
            error: Some(crate::error::chain(e)),
            ..ContainerState::created()
        },
    };
    tracing::debug!("state recorded");
    if opts.rm {
        if let Err(e) = store.remove_container(&record.id) {
            report.note(&format!(
                "could not remove container {}: {}",
                record.name,
                crate::error::chain(&e)
            ));
        }
    } else {
        store.set_container_state(&record.id, &state)?;
    }
    Ok(Attached::Exited(result?))
}

/// Run a container created earlier (by `den-build`, for a RUN step) in the foreground with
/// den's standard streams; returns its exit status. The container stays, for its writable
/// layer to be read.
pub fn run_created(ctx: &Ctx, id: &str) -> Result<i32> {
    let store = ctx.store()?;
    let record = store.container(id)?;
    let layers = store.rootfs_layers(&record)?;
    let runtime_dir = ctx.runtime_dir()?;
    let rctx = ctx.runtime_ctx(&store, &runtime_dir);
    let code = runtime::run_foreground(&rctx, &record, &layers, false)?;
    store.set_container_state(
        id,
        &ContainerState {
            status: Status::Exited,
            exit_code: Some(code),
            finished_at: Some(Utc::now()),
            ..ContainerState::created()
        },
    )?;
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d() -> ImageDefaults {
        ImageDefaults {
            entrypoint: vec!["/entry".into()],
            cmd: vec!["default".into()],
            ..Default::default()
        }
    }

    #[test]
    fn command_lines_follow_docker() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(command_line(&d(), None, &[]), s(&["/entry", "default"]));
        assert_eq!(command_line(&d(), None, &s(&["x"])), s(&["/entry", "x"]));
        assert_eq!(command_line(&d(), Some("sh"), &[]), s(&["sh"]));
        assert_eq!(
            command_line(&d(), Some("sh"), &s(&["-c", "x"])),
            s(&["sh", "-c", "x"])
        );
        assert_eq!(command_line(&d(), Some(""), &s(&["echo"])), s(&["echo"]));
    }
}
