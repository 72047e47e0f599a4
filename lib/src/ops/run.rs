//! `run`: create a container from an image (pulling it first if it is not local) and run it in
//! the foreground. Must run inside den's user namespace.

use chrono::Utc;
use oci_spec::image::ImageConfiguration;

use super::Result;
use super::{Ctx, Report};
use crate::runtime;
use crate::store::driver;
use crate::store::{ContainerRecord, ContainerState, ImageRecord, RestartPolicy, RunSpec, Status};

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub image: String,
    pub command: Vec<String>,
    pub rm: bool,
    pub detach: bool,
    pub volumes: Vec<String>,
    pub mounts: Vec<String>,
    pub tmpfs: Vec<String>,
    pub restart: String,
    pub labels: Vec<String>,
    pub stop_timeout: Option<u32>,
    pub stop_signal: Option<String>,
    pub publish: Vec<String>,
    pub publish_all: bool,
    pub add_hosts: Vec<String>,
    pub dns: Vec<String>,
    pub interactive: bool,
    pub tty: bool,
    pub name: Option<String>,
    pub env: Vec<String>,
    pub env_files: Vec<std::path::PathBuf>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub entrypoint: Option<String>,
    pub hostname: Option<String>,
    pub network: Option<String>,
    pub platform: Option<String>,
    pub read_only: bool,
    pub security_opt: Vec<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
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
}

pub fn image_defaults(ctx: &Ctx, image: &ImageRecord) -> Result<ImageDefaults> {
    let bytes = ctx.store()?.read_blob(&image.config)?;
    let cfg: ImageConfiguration =
        serde_json::from_slice(&bytes).map_err(|source| crate::image::ImageError::BadConfig {
            digest: image.config.to_string(),
            source,
        })?;
    let c = cfg.config().clone().unwrap_or_default();
    Ok(ImageDefaults {
        env: c.env().clone().unwrap_or_default(),
        entrypoint: c.entrypoint().clone().unwrap_or_default(),
        cmd: c.cmd().clone().unwrap_or_default(),
        workdir: c.working_dir().clone().unwrap_or_default(),
        user: c.user().clone().unwrap_or_default(),
        stop_signal: c.stop_signal().clone(),
        exposed_ports: c.exposed_ports().clone().unwrap_or_default(),
    })
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

/// `-e K=V`, `-e K` (from den's own environment, skipped when unset) and `--env-file` lines.
pub fn user_env(env: &[String], files: &[std::path::PathBuf]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut add = |e: &str| -> Result<()> {
        if e.is_empty() || e.starts_with('=') {
            return Err(crate::runtime::FlagError::BadEnv(e.into()).into());
        }
        if e.contains('=') {
            out.push(e.to_string());
        } else if let Ok(v) = std::env::var(e) {
            out.push(format!("{e}={v}"));
        }
        Ok(())
    };
    for f in files {
        let text =
            std::fs::read_to_string(f).map_err(|source| crate::runtime::FlagError::EnvFile {
                path: f.clone(),
                source,
            })?;
        for line in text.lines() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            add(line)?;
        }
    }
    for e in env {
        add(e)?;
    }
    Ok(out)
}

/// Create the container record for `opts`.
pub fn create(
    ctx: &Ctx,
    opts: &RunOptions,
    report: &dyn Report,
) -> Result<(ContainerRecord, ImageRecord)> {
    let network = choose_network(opts, report)?;
    for h in &opts.add_hosts {
        if !h.contains(':') && !h.contains('=') {
            return Err(crate::net::NetError::BadAddHost(h.clone()).into());
        }
    }
    let restart = RestartPolicy::parse(&opts.restart)
        .ok_or_else(|| crate::runtime::FlagError::BadRestart(opts.restart.clone()))?;
    if opts.rm && restart != RestartPolicy::No {
        return Err(crate::runtime::FlagError::RmWithRestart.into());
    }
    let mounts = parse_mounts(opts)?;
    let security = crate::security::Security::parse(&crate::security::SecurityFlags {
        security_opt: &opts.security_opt,
        cap_add: &opts.cap_add,
        cap_drop: &opts.cap_drop,
        privileged: opts.privileged,
    })?;
    let mut labels = std::collections::BTreeMap::new();
    for l in &opts.labels {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        labels.insert(k.to_string(), v.to_string());
    }
    let image = ctx.find_or_pull(&opts.image, opts.platform.as_deref(), report)?;
    tracing::debug!("image found");
    let defaults = image_defaults(ctx, &image)?;
    let args = command_line(&defaults, opts.entrypoint.as_deref(), &opts.command);
    if args.is_empty() {
        return Err(crate::runtime::FlagError::NoCommand(opts.image.clone()).into());
    }
    let mut ports = Vec::new();
    for p in &opts.publish {
        ports.extend(crate::net::ports::parse(p).map_err(crate::net::NetError::from)?);
    }
    if opts.publish_all {
        ports.extend(crate::net::ports::publish_all(&defaults.exposed_ports));
    }
    let parsed = crate::net::Network::parse(&network)
        .ok_or_else(|| crate::net::NetError::BadNetwork(network.clone()))?;
    if !ports.is_empty() && !parsed.needs_helper() {
        return Err(crate::net::NetError::PortsNeedNetwork(parsed.name().into()).into());
    }
    let mut env = defaults.env.clone();
    env.extend(user_env(&opts.env, &opts.env_files)?);
    let store = ctx.store()?;
    tracing::debug!("image config read");
    let choice = driver::choose(&crate::sys::LinuxSys, &store, ctx.config.storage.driver);
    tracing::debug!("driver chosen");
    let spec = RunSpec {
        args,
        env,
        cwd: opts.workdir.clone().filter(|w| !w.is_empty()).unwrap_or(
            if defaults.workdir.is_empty() {
                "/".into()
            } else {
                defaults.workdir.clone()
            },
        ),
        user: opts.user.clone().unwrap_or(defaults.user.clone()),
        hostname: String::new(),
        tty: opts.tty,
        stdin: opts.interactive,
        network: network.clone(),
        stop_signal: opts.stop_signal.clone().or(defaults.stop_signal.clone()),
        read_only: opts.read_only,
        entrypoint: match opts.entrypoint.as_deref() {
            Some("") => vec![],
            Some(e) => vec![e.to_string()],
            None => defaults.entrypoint.clone(),
        },
        cmd: if !opts.command.is_empty() {
            opts.command.clone()
        } else if opts.entrypoint.is_some() {
            vec![]
        } else {
            defaults.cmd.clone()
        },
        mounts,
        restart,
        stop_timeout: opts.stop_timeout,
        labels,
        ports: Vec::new(),
        add_hosts: opts.add_hosts.clone(),
        dns: opts.dns.clone(),
        security,
    };
    let record = ContainerRecord {
        id: String::new(),
        name: String::new(),
        image_id: image.id.clone(),
        image: opts.image.clone(),
        created: Utc::now(),
        driver: choice.driver.name().into(),
        spec,
        auto_remove: opts.rm,
        layers: Vec::new(),
    };
    let _pin = store.lock_content_shared()?;
    // Still pinned by the lock: the image cannot be removed between lookup and record.
    store.find_image(image.id.as_str())?;
    let mut record = store.create_container(record, opts.name.as_deref())?;
    record.spec.ports = ports;
    record.spec.hostname = match (&opts.hostname, network.as_str()) {
        (Some(h), _) => h.clone(),
        (None, "host") => nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| record.id[..12].into()),
        (None, _) => record.id[..12].to_string(),
    };
    let cdir = store.container_dir(&record.id);
    store.write_json(&cdir.join("container.json"), &record)?;
    let layers: Vec<crate::digest::Digest> =
        image.layers.iter().map(|l| l.diff_id.clone()).collect();
    if let Err(e) = driver::prepare(choice.driver, &store, &layers, &cdir) {
        let _ = store.remove_container(&record.id);
        return Err(e.into());
    }
    Ok((record, image))
}

/// The network: `--network`, else the userspace network where slirp4netns is installed, else
/// the host's (with a note, unless ports are published: those need the userspace network).
fn choose_network(opts: &RunOptions, report: &dyn Report) -> Result<String> {
    if let Some(n) = &opts.network {
        if crate::net::Network::parse(n).is_none() {
            return Err(crate::net::NetError::BadNetwork(n.clone()).into());
        }
        return Ok(n.clone());
    }
    if crate::config::find_in_path("slirp4netns").is_some() {
        return Ok("slirp4netns".into());
    }
    if !opts.publish.is_empty() || opts.publish_all {
        return Err(crate::net::NetError::Missing {
            program: "slirp4netns".into(),
        }
        .into());
    }
    report.note("slirp4netns is not installed: the container shares the host's network (install slirp4netns for a private one)");
    Ok("host".into())
}

/// `-v`, `--mount` and `--tmpfs`, in that order, as mounts; bind sources made absolute against
/// the current directory.
fn parse_mounts(opts: &RunOptions) -> Result<Vec<crate::volume::MountSpec>> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
    let mut out = Vec::new();
    for v in &opts.volumes {
        out.push(crate::volume::parse_volume_flag(v, &cwd).map_err(super::Error::Volume)?);
    }
    for m in &opts.mounts {
        out.push(crate::volume::parse_mount_flag(m, &cwd).map_err(super::Error::Volume)?);
    }
    for t in &opts.tmpfs {
        out.push(crate::volume::parse_tmpfs_flag(t).map_err(super::Error::Volume)?);
    }
    let mut seen = std::collections::HashSet::new();
    for m in &out {
        if !seen.insert(m.destination.clone()) {
            return Err(crate::runtime::FlagError::DuplicateMount(m.destination.clone()).into());
        }
    }
    Ok(out)
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

/// `run` in the foreground: returns the container's exit status.
pub fn run(ctx: &Ctx, opts: &RunOptions, report: &dyn Report) -> Result<i32> {
    // Only a container attached to den's terminal needs one (`create -it`, `run -dit` do not).
    if opts.tty
        && opts.interactive
        && !runtime::tty::is_tty(std::os::fd::AsFd::as_fd(&std::io::stdin()))
    {
        return Err(crate::runtime::FlagError::NotATty.into());
    }
    let (record, image) = create(ctx, opts, report)?;
    tracing::debug!(id = %record.id, "container record created");
    let store = ctx.store()?;
    let runtime_dir = ctx.runtime_dir()?;
    let rctx = ctx.runtime_ctx(&store, &runtime_dir);
    let layers: Vec<crate::digest::Digest> =
        image.layers.iter().map(|l| l.diff_id.clone()).collect();
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
    Ok(result?)
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

    #[test]
    fn env_from_flags_and_files() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("env");
        std::fs::write(&f, "# comment\nA=1\n\nB=from file\n").unwrap();
        // A variable this process has (the test sets none: the harness runs threads, and
        // changing the environment under them is unsafe).
        let (name, value) = std::env::vars()
            .find(|(k, _)| k != "DEN_TEST_UNSET_XYZ")
            .expect("the test process has an environment");
        let env = user_env(
            &["C=3".into(), name.clone(), "DEN_TEST_UNSET_XYZ".into()],
            &[f],
        )
        .unwrap();
        let passed = format!("{name}={value}");
        assert_eq!(env, ["A=1", "B=from file", "C=3", passed.as_str()]);
        assert!(user_env(&["=x".into()], &[]).is_err());
        assert!(user_env(&[], &[t.path().join("missing")]).is_err());
    }
}
