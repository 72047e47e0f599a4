//! The project as types: what [`super::load`] read, checked by [`super::keys`], typed once
//! here. Short and long syntaxes become one form; paths are absolute (relative to the project
//! directory); env files are read into the environment; configs and secrets become the files
//! a container gets. Nothing past this module looks at YAML again, except `config`, which
//! prints the tree itself.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_norway::Value;

use super::load::{Context, key_text};
use super::{ComposeError, MAX_ITEMS};

/// A project: its services, networks and volumes.
#[derive(Debug, Clone)]
pub struct Project {
    pub name: String,
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
    pub services: BTreeMap<String, Service>,
    /// The services the active profiles enable (all without `profiles:`).
    pub active: BTreeSet<String>,
    pub networks: BTreeMap<String, NetworkDef>,
    pub volumes: BTreeMap<String, VolumeDef>,
    /// The merged, interpolated tree (`config` prints it).
    pub tree: Value,
    pub warnings: Vec<String>,
}

/// One service, as den runs it. Serialised, it is the service's config hash's input.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Service {
    pub image: Option<String>,
    pub build: Option<Build>,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub environment: BTreeMap<String, String>,
    pub ports: Vec<String>,
    pub expose: Vec<String>,
    pub mounts: Vec<Mount>,
    pub networks: BTreeMap<String, Attach>,
    /// `network_mode`: den's `--network` as is (`none`, `host`, ...), `service:S` as
    /// `container:` S's first container; no project network then.
    pub network_mode: Option<String>,
    pub depends_on: BTreeMap<String, Dependency>,
    pub healthcheck: Option<Health>,
    pub restart: Option<String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub init: bool,
    pub stop_signal: Option<String>,
    /// Seconds.
    pub stop_grace_period: Option<u64>,
    pub replicas: usize,
    pub extra_hosts: Vec<String>,
    pub container_name: Option<String>,
    pub hostname: Option<String>,
    pub tty: bool,
    pub stdin_open: bool,
    pub privileged: bool,
    pub read_only: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub dns: Vec<String>,
    pub profiles: Vec<String>,
    pub pull_policy: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Build {
    pub context: PathBuf,
    pub dockerfile: Option<String>,
    pub args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
}

/// What a container mounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Mount {
    /// A project volume (its key), or an anonymous one (`None`).
    Volume {
        source: Option<String>,
        target: String,
        read_only: bool,
    },
    Bind {
        source: PathBuf,
        target: String,
        read_only: bool,
    },
    Tmpfs {
        target: String,
        size: Option<String>,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Attach {
    pub aliases: Vec<String>,
    pub ipv4_address: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Condition {
    Started,
    Healthy,
    CompletedSuccessfully,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dependency {
    pub condition: Condition,
    pub required: bool,
}

/// A health check: `test` is a shell command (CMD-SHELL's), `None` with `disable`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Health {
    pub test: Option<String>,
    pub disable: bool,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub retries: Option<u32>,
    pub start_period: Option<String>,
    pub start_interval: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkDef {
    /// den's name of it (`PROJECT_KEY`, or `name:`).
    pub name: String,
    pub external: bool,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeDef {
    pub name: String,
    pub external: bool,
    pub labels: BTreeMap<String, String>,
}

/// A place in the tree, for errors: `services.web.ports[1]`.
struct At<'a>(&'a str);

impl At<'_> {
    fn sub(&self, key: &str) -> String {
        format!("{}.{key}", self.0)
    }
    fn bad(&self, problem: impl Into<String>) -> ComposeError {
        ComposeError::Invalid {
            path: self.0.to_string(),
            problem: problem.into(),
        }
    }
}

fn text(v: &Value, at: &At) -> Result<String, ComposeError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(at.bad("must be a string")),
    }
}

fn texts(v: &Value, at: &At) -> Result<Vec<String>, ComposeError> {
    match v {
        Value::Sequence(items) => items.iter().map(|i| text(i, at)).collect(),
        Value::Null => Ok(Vec::new()),
        other => Ok(vec![text(other, at)?]),
    }
}

/// A command: a list as is, a string split as a shell would (compose's rule).
fn words(v: &Value, at: &At) -> Result<Vec<String>, ComposeError> {
    match v {
        Value::String(s) => shlex::split(s).ok_or_else(|| at.bad("unbalanced quotes")),
        other => texts(other, at),
    }
}

fn boolean(v: &Value, at: &At) -> Result<bool, ComposeError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if matches!(s.as_str(), "true" | "yes" | "True") => Ok(true),
        Value::String(s) if matches!(s.as_str(), "false" | "no" | "False") => Ok(false),
        _ => Err(at.bad("must be true or false")),
    }
}

fn number(v: &Value, at: &At) -> Result<u64, ComposeError> {
    text(v, at)?
        .parse()
        .map_err(|_| at.bad("must be a whole number"))
}

/// A list of `K=V` (or `K`) or a mapping; `None` values are unset ones.
fn pairs(v: &Value, at: &At) -> Result<BTreeMap<String, Option<String>>, ComposeError> {
    let mut out = BTreeMap::new();
    match v {
        Value::Mapping(m) => {
            for (k, val) in m {
                let val = match val {
                    Value::Null => None,
                    other => Some(text(other, &At(&at.sub(&key_text(k))))?),
                };
                out.insert(key_text(k), val);
            }
        }
        Value::Sequence(_) => {
            for item in texts(v, at)? {
                match item.split_once('=') {
                    Some((k, val)) => out.insert(k.to_string(), Some(val.to_string())),
                    None => out.insert(item, None),
                };
            }
        }
        Value::Null => {}
        _ => return Err(at.bad("must be a list or a mapping")),
    }
    Ok(out)
}

fn set_pairs(v: &Value, at: &At) -> Result<BTreeMap<String, String>, ComposeError> {
    Ok(pairs(v, at)?
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

fn entries(v: Option<&Value>) -> Vec<(String, &Value)> {
    match v {
        Some(Value::Mapping(m)) => m.iter().map(|(k, v)| (key_text(k), v)).collect(),
        _ => Vec::new(),
    }
}

/// A path as the user wrote it, relative to `dir`, `~` as `$HOME`.
fn host_path(s: &str, dir: &Path, vars: &BTreeMap<String, String>) -> PathBuf {
    match s.strip_prefix('~') {
        Some(rest) => {
            let home = vars.get("HOME").map(String::as_str).unwrap_or("/");
            PathBuf::from(format!("{home}{rest}"))
        }
        // Lexically, `./conf` as `DIR/conf`: the path docker compose shows and mounts.
        None => dir
            .join(s)
            .components()
            .filter(|c| !matches!(c, std::path::Component::CurDir))
            .collect(),
    }
}

impl Project {
    /// Type the checked tree.
    pub fn from_tree(tree: Value, ctx: Context) -> Result<Project, ComposeError> {
        let networks = networks(&tree, &ctx.name)?;
        let volumes = volumes(&tree, &ctx.name)?;
        let files = file_defs(&tree, &ctx)?;
        let declared = entries(tree.get("services"));
        if declared.len() > MAX_ITEMS {
            return Err(At("services").bad(format!("more than {MAX_ITEMS} services")));
        }
        let mut services = BTreeMap::new();
        for (name, v) in &declared {
            let at = format!("services.{name}");
            let s = service(v, &At(&at), &ctx, &files)?;
            services.insert(name.clone(), s);
        }
        let mut warnings = ctx.warnings.clone();
        check_references(&services, &networks, &volumes, &mut warnings)?;
        let active = services
            .iter()
            .filter(|(_, s)| {
                s.profiles.is_empty()
                    || s.profiles
                        .iter()
                        .any(|p| ctx.profiles.iter().any(|a| a == p || a == "*"))
            })
            .map(|(n, _)| n.clone())
            .collect();
        Ok(Project {
            name: ctx.name,
            dir: ctx.dir,
            files: ctx.files,
            services,
            active,
            networks,
            volumes,
            tree,
            warnings,
        })
    }
}

fn networks(tree: &Value, project: &str) -> Result<BTreeMap<String, NetworkDef>, ComposeError> {
    let mut out = BTreeMap::new();
    for (key, v) in entries(tree.get("networks")) {
        let p = format!("networks.{key}");
        let at = At(&p);
        if let Some(d) = v.get("driver") {
            let d = text(d, &At(&at.sub("driver")))?;
            if d != "bridge" {
                return Err(At(&at.sub("driver")).bad(format!(
                    "den's networks are bridges; driver {d:?} is not supported"
                )));
            }
        }
        let (name, external, labels) = named(v, &key, project, &at)?;
        out.insert(
            key,
            NetworkDef {
                name,
                external,
                labels,
            },
        );
    }
    out.entry("default".into()).or_insert_with(|| NetworkDef {
        name: format!("{project}_default"),
        external: false,
        labels: BTreeMap::new(),
    });
    Ok(out)
}

fn volumes(tree: &Value, project: &str) -> Result<BTreeMap<String, VolumeDef>, ComposeError> {
    let mut out = BTreeMap::new();
    for (key, v) in entries(tree.get("volumes")) {
        let p = format!("volumes.{key}");
        let at = At(&p);
        if let Some(d) = v.get("driver") {
            let d = text(d, &At(&at.sub("driver")))?;
            if d != "local" {
                return Err(At(&at.sub("driver")).bad(format!(
                    "den's volumes are local; driver {d:?} is not supported"
                )));
            }
        }
        let (name, external, labels) = named(v, &key, project, &at)?;
        out.insert(
            key,
            VolumeDef {
                name,
                external,
                labels,
            },
        );
    }
    if out.len() > MAX_ITEMS {
        return Err(At("volumes").bad(format!("more than {MAX_ITEMS} volumes")));
    }
    Ok(out)
}

/// A top-level network's or volume's den name, `external`, labels.
fn named(
    v: &Value,
    key: &str,
    project: &str,
    at: &At,
) -> Result<(String, bool, BTreeMap<String, String>), ComposeError> {
    let external = match v.get("external") {
        Some(e) => boolean(e, &At(&at.sub("external")))?,
        None => false,
    };
    let name = match v.get("name") {
        Some(n) => text(n, &At(&at.sub("name")))?,
        None if external => key.to_string(),
        None => format!("{project}_{key}"),
    };
    let labels = match v.get("labels") {
        Some(l) => set_pairs(l, &At(&at.sub("labels")))?,
        None => BTreeMap::new(),
    };
    Ok((name, external, labels))
}

/// Top-level configs and secrets: their files on the host, by key (`configs.KEY`).
fn file_defs(tree: &Value, ctx: &Context) -> Result<BTreeMap<String, PathBuf>, ComposeError> {
    let mut out = BTreeMap::new();
    for kind in ["configs", "secrets"] {
        for (key, v) in entries(tree.get(kind)) {
            let p = format!("{kind}.{key}");
            let file = v
                .get("file")
                .ok_or_else(|| At(&p).bad("den compose supports file: only"))?;
            let file = text(file, &At(&p))?;
            out.insert(p, host_path(&file, &ctx.dir, &ctx.vars));
        }
    }
    Ok(out)
}

fn check_references(
    services: &BTreeMap<String, Service>,
    networks: &BTreeMap<String, NetworkDef>,
    volumes: &BTreeMap<String, VolumeDef>,
    warnings: &mut Vec<String>,
) -> Result<(), ComposeError> {
    for (name, s) in services {
        for dep in s.depends_on.keys() {
            if !services.contains_key(dep) {
                if s.depends_on[dep].required {
                    return Err(At(&format!("services.{name}.depends_on"))
                        .bad(format!("service {dep:?} is not defined")));
                }
                warnings.push(format!(
                    "service {name}: optional dependency {dep} is not defined"
                ));
            }
        }
        for net in s.networks.keys() {
            if !networks.contains_key(net) {
                return Err(At(&format!("services.{name}.networks"))
                    .bad(format!("network {net:?} is not defined at the top level")));
            }
        }
        for m in &s.mounts {
            if let Mount::Volume {
                source: Some(v), ..
            } = m
                && !volumes.contains_key(v)
            {
                return Err(At(&format!("services.{name}.volumes"))
                    .bad(format!("volume {v:?} is not defined at the top level")));
            }
        }
        if s.container_name.is_some() && s.replicas > 1 {
            return Err(At(&format!("services.{name}.container_name"))
                .bad("a service with several replicas cannot have one container_name"));
        }
    }
    Ok(())
}

use service::service;

mod service;
