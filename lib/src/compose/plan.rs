//! What den does for a project, as data: docker compose's names and labels, the order of the
//! services, and the argument vectors of den's verbs for each step. Pure functions of the
//! [`Project`]; [`super::engine`] runs them.

use std::collections::{BTreeMap, BTreeSet};

use super::ComposeError;
use super::model::{Mount, Project, Service};

pub const PROJECT: &str = "com.docker.compose.project";
pub const SERVICE: &str = "com.docker.compose.service";
pub const NUMBER: &str = "com.docker.compose.container-number";
pub const ONEOFF: &str = "com.docker.compose.oneoff";
pub const HASH: &str = "com.docker.compose.config-hash";
pub const WORKING_DIR: &str = "com.docker.compose.project.working_dir";
pub const CONFIG_FILES: &str = "com.docker.compose.project.config_files";
pub const VERSION: &str = "com.docker.compose.version";
pub const NETWORK: &str = "com.docker.compose.network";
pub const VOLUME: &str = "com.docker.compose.volume";

/// Replica `n` (from 1) of `service`: `container_name`, else `PROJECT-SERVICE-N`.
pub fn container_name(project: &Project, service: &str, n: usize) -> String {
    match project
        .services
        .get(service)
        .and_then(|s| s.container_name.clone())
    {
        Some(name) => name,
        None => format!("{}-{service}-{n}", project.name),
    }
}

/// The image a service runs: `image:`, else the one `build:` makes, `PROJECT-SERVICE`.
pub fn image(project: &Project, service: &str) -> String {
    project
        .services
        .get(service)
        .and_then(|s| s.image.clone())
        .unwrap_or_else(|| format!("{}-{service}", project.name))
}

/// The service's config hash: sha256 of its typed form, so any change den acts on changes it.
pub fn config_hash(service: &Service) -> String {
    let json = serde_json::to_vec(service).unwrap_or_default();
    crate::digest::Digest::of(&json).hex().to_string()
}

/// `names` and, unless `no_deps`, everything they depend on; all active services for none.
pub fn selection(
    project: &Project,
    names: &[String],
    no_deps: bool,
) -> Result<BTreeSet<String>, ComposeError> {
    for n in names {
        if !project.services.contains_key(n) {
            return Err(ComposeError::NoSuchService(n.clone()));
        }
    }
    let mut out: BTreeSet<String> = if names.is_empty() {
        project.active.clone()
    } else {
        names.iter().cloned().collect()
    };
    if no_deps {
        return Ok(out);
    }
    let mut todo: Vec<String> = out.iter().cloned().collect();
    while let Some(s) = todo.pop() {
        for dep in project.services[&s].depends_on.keys() {
            if project.services.contains_key(dep) && out.insert(dep.clone()) {
                todo.push(dep.clone());
            }
        }
    }
    Ok(out)
}

/// `services` with each one's dependencies before it; a cycle is an error.
pub fn order(project: &Project, services: &BTreeSet<String>) -> Result<Vec<String>, ComposeError> {
    let mut done: Vec<String> = Vec::new();
    let mut left: BTreeSet<String> = services.clone();
    while !left.is_empty() {
        let ready: Vec<String> = left
            .iter()
            .filter(|s| {
                project.services[*s]
                    .depends_on
                    .keys()
                    .all(|d| !left.contains(d))
            })
            .cloned()
            .collect();
        if ready.is_empty() {
            return Err(ComposeError::Cycle(
                left.into_iter().collect::<Vec<_>>().join(", "),
            ));
        }
        for r in ready {
            left.remove(&r);
            done.push(r);
        }
    }
    Ok(done)
}

/// How a container is made: `up`'s replicas, or `run`'s one-off.
#[derive(Debug, Clone, Default)]
pub struct Make {
    /// `run`'s container: its name, `oneoff=True`, no ports unless asked, no restart policy.
    pub oneoff: Option<String>,
    pub service_ports: bool,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub volumes: Vec<String>,
    pub publish: Vec<String>,
    pub interactive: bool,
    pub tty: Option<bool>,
}

/// One container to make: the flags and arguments of `den run`/`den create` after the verb,
/// and `den network connect` argument vectors for its other networks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub name: String,
    pub args: Vec<String>,
    pub connect: Vec<Vec<String>>,
}

/// Replica `n` of `service` (or `make`'s one-off) as den's arguments.
pub fn container(project: &Project, service: &str, n: usize, make: &Make) -> Container {
    let s = &project.services[service];
    let name = make
        .oneoff
        .clone()
        .unwrap_or_else(|| container_name(project, service, n));
    let mut a: Vec<String> = vec!["--name".into(), name.clone()];
    let mut push = |flag: &str, value: &str| {
        a.push(flag.to_string());
        a.push(value.to_string());
    };
    for (k, v) in labels(project, service, n, make.oneoff.is_some()) {
        push("--label", &format!("{k}={v}"));
    }
    for (k, v) in &s.environment {
        push("-e", &format!("{k}={v}"));
    }
    for e in &make.env {
        push("-e", e);
    }
    if make.oneoff.is_none() || make.service_ports {
        for p in &s.ports {
            push("-p", p);
        }
    }
    for p in &make.publish {
        push("-p", p);
    }
    for (flag, value) in mounts(project, s) {
        push(flag, &value);
    }
    for v in &make.volumes {
        push("-v", v);
    }
    let connect = networks(project, service, &name, &mut a);
    a.extend(settings(s, make));
    a.push(image(project, service));
    a.extend(arguments(s, make));
    Container {
        name,
        args: a,
        connect,
    }
}

/// docker compose's labels on a container (the service's own first).
pub fn labels(project: &Project, service: &str, n: usize, oneoff: bool) -> Vec<(String, String)> {
    let s = &project.services[service];
    let files: Vec<String> = project
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    let mut out: Vec<(String, String)> = s
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in [
        (PROJECT, project.name.clone()),
        (SERVICE, service.to_string()),
        (NUMBER, n.to_string()),
        (ONEOFF, if oneoff { "True" } else { "False" }.to_string()),
        (HASH, config_hash(s)),
        (WORKING_DIR, project.dir.display().to_string()),
        (CONFIG_FILES, files.join(",")),
        (VERSION, env!("CARGO_PKG_VERSION").to_string()),
    ] {
        out.push((k.to_string(), v));
    }
    out
}

fn mounts(project: &Project, s: &Service) -> Vec<(&'static str, String)> {
    let ro = |r: bool| if r { ":ro" } else { "" };
    s.mounts
        .iter()
        .map(|m| match m {
            Mount::Volume {
                source: Some(key),
                target,
                read_only,
            } => {
                let name = project
                    .volumes
                    .get(key)
                    .map_or(key.clone(), |v| v.name.clone());
                ("-v", format!("{name}:{target}{}", ro(*read_only)))
            }
            Mount::Volume {
                source: None,
                target,
                ..
            } => ("-v", target.clone()),
            Mount::Bind {
                source,
                target,
                read_only,
            } => (
                "-v",
                format!("{}:{target}{}", source.display(), ro(*read_only)),
            ),
            Mount::Tmpfs { target, size } => (
                "--tmpfs",
                match size {
                    Some(sz) => format!("{target}:size={sz}"),
                    None => target.clone(),
                },
            ),
        })
        .collect()
}

/// The first network (`default` first, then by name) goes on the create line; the others are
/// `den network connect` vectors. The service's name is an alias on each, as in compose.
fn networks(project: &Project, service: &str, name: &str, a: &mut Vec<String>) -> Vec<Vec<String>> {
    let s = &project.services[service];
    if let Some(mode) = &s.network_mode {
        let mode = match mode.strip_prefix("service:") {
            Some(other) => format!("container:{}", container_name(project, other, 1)),
            None => mode.clone(),
        };
        a.extend(["--network".to_string(), mode]);
        return Vec::new();
    }
    let mut keys: Vec<&String> = s.networks.keys().collect();
    keys.sort_by_key(|k| (*k != "default", (*k).clone()));
    let mut connect = Vec::new();
    for (i, key) in keys.into_iter().enumerate() {
        let attach = &s.networks[key];
        let net = project
            .networks
            .get(key)
            .map_or(key.clone(), |n| n.name.clone());
        let mut aliases = vec![service.to_string()];
        aliases.extend(attach.aliases.iter().cloned());
        if i == 0 {
            a.extend(["--network".to_string(), net]);
            for al in aliases {
                a.extend(["--network-alias".to_string(), al]);
            }
            if let Some(ip) = &attach.ipv4_address {
                a.extend(["--ip".to_string(), ip.clone()]);
            }
        } else {
            let mut c = vec!["network".to_string(), "connect".to_string()];
            for al in aliases {
                c.extend(["--alias".to_string(), al]);
            }
            if let Some(ip) = &attach.ipv4_address {
                c.extend(["--ip".to_string(), ip.clone()]);
            }
            c.extend([net, name.to_string()]);
            connect.push(c);
        }
    }
    connect
}

/// The service's settings as den's flags.
fn settings(s: &Service, make: &Make) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let mut push = |flag: &str, value: Option<&String>| {
        if let Some(v) = value {
            a.push(format!("{flag}={v}"));
        }
    };
    if let Some(h) = &s.healthcheck {
        push("--health-cmd", h.test.as_ref());
        push("--health-interval", h.interval.as_ref());
        push("--health-timeout", h.timeout.as_ref());
        push(
            "--health-retries",
            h.retries.map(|r| r.to_string()).as_ref(),
        );
        push("--health-start-period", h.start_period.as_ref());
        push("--health-start-interval", h.start_interval.as_ref());
    }
    if make.oneoff.is_none() {
        push("--restart", s.restart.as_ref());
    }
    push("--user", make.user.as_ref().or(s.user.as_ref()));
    push(
        "--workdir",
        make.workdir.as_ref().or(s.working_dir.as_ref()),
    );
    push("--stop-signal", s.stop_signal.as_ref());
    push(
        "--stop-timeout",
        s.stop_grace_period.map(|g| g.to_string()).as_ref(),
    );
    push("--hostname", s.hostname.as_ref());
    for h in &s.extra_hosts {
        push("--add-host", Some(h));
    }
    for c in &s.cap_add {
        push("--cap-add", Some(c));
    }
    for c in &s.cap_drop {
        push("--cap-drop", Some(c));
    }
    for d in &s.dns {
        push("--dns", Some(d));
    }
    if let Some(p @ ("always" | "never" | "missing")) = s.pull_policy.as_deref() {
        push("--pull", Some(&p.to_string()));
    }
    let entrypoint = match (&make.entrypoint, &s.entrypoint) {
        (Some(e), _) => Some(e.clone()),
        (None, Some(e)) => Some(e.first().cloned().unwrap_or_default()),
        (None, None) => None,
    };
    push("--entrypoint", entrypoint.as_ref());
    let switches = [
        (
            "--no-healthcheck",
            s.healthcheck.as_ref().is_some_and(|h| h.disable),
        ),
        ("--init", s.init),
        ("--tty", make.tty.unwrap_or(s.tty)),
        ("--interactive", make.interactive || s.stdin_open),
        ("--privileged", s.privileged),
        ("--read-only", s.read_only),
    ];
    a.extend(
        switches
            .iter()
            .filter(|(_, on)| *on)
            .map(|(f, _)| f.to_string()),
    );
    a
}

/// What follows the image: the entrypoint's other words, then the command.
fn arguments(s: &Service, make: &Make) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if make.entrypoint.is_none()
        && let Some(e) = &s.entrypoint
    {
        out.extend(e.iter().skip(1).cloned());
    }
    match (&make.command, &s.command) {
        (Some(c), _) | (None, Some(c)) => out.extend(c.iter().cloned()),
        (None, None) => {}
    }
    out
}

/// `den build` for a service with `build:`.
pub fn build(project: &Project, service: &str, no_cache: bool) -> Option<Vec<String>> {
    let b = project.services[service].build.as_ref()?;
    let mut a = vec![
        "build".to_string(),
        "-t".to_string(),
        image(project, service),
    ];
    if let Some(f) = &b.dockerfile {
        a.extend(["-f".to_string(), b.context.join(f).display().to_string()]);
    }
    for (k, v) in &b.args {
        a.extend(["--build-arg".to_string(), format!("{k}={v}")]);
    }
    if let Some(t) = &b.target {
        a.extend(["--target".to_string(), t.clone()]);
    }
    if no_cache || b.no_cache {
        a.push("--no-cache".to_string());
    }
    a.push(b.context.display().to_string());
    Some(a)
}

/// `den network create` / `den volume create` with compose's labels.
pub fn create_resource(
    kind: &str,
    project: &Project,
    key: &str,
    name: &str,
    labels: &BTreeMap<String, String>,
) -> Vec<String> {
    let label = if kind == "network" { NETWORK } else { VOLUME };
    let mut a = vec![
        kind.to_string(),
        "create".to_string(),
        "--label".to_string(),
        format!("{PROJECT}={}", project.name),
        "--label".to_string(),
        format!("{label}={key}"),
    ];
    for (k, v) in labels {
        a.extend(["--label".to_string(), format!("{k}={v}")]);
    }
    a.push(name.to_string());
    a
}

#[cfg(test)]
pub(crate) mod tests;
