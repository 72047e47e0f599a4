//! One service typed: short and long syntaxes into [`Service`]'s one form.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_norway::Value;

use super::super::load::env_file;
use super::*;

pub(super) fn service(
    v: &Value,
    at: &At,
    ctx: &Context,
    files: &BTreeMap<String, PathBuf>,
) -> Result<Service, ComposeError> {
    if !v.is_mapping() {
        return Err(at.bad("a service must be a mapping"));
    }
    let mut s = Service {
        replicas: 1,
        ..Default::default()
    };
    let opt_text = |key: &str| -> Result<Option<String>, ComposeError> {
        v.get(key).map(|x| text(x, &At(&at.sub(key)))).transpose()
    };
    let flag = |key: &str| -> Result<bool, ComposeError> {
        v.get(key)
            .map_or(Ok(false), |x| boolean(x, &At(&at.sub(key))))
    };
    let list = |key: &str| -> Result<Vec<String>, ComposeError> {
        v.get(key)
            .map_or(Ok(Vec::new()), |x| texts(x, &At(&at.sub(key))))
    };
    s.image = opt_text("image")?;
    s.restart = opt_text("restart")?;
    s.user = opt_text("user")?;
    s.working_dir = opt_text("working_dir")?;
    s.stop_signal = opt_text("stop_signal")?;
    s.container_name = opt_text("container_name")?;
    s.hostname = opt_text("hostname")?;
    s.pull_policy = opt_text("pull_policy")?;
    s.init = flag("init")?;
    s.tty = flag("tty")?;
    s.stdin_open = flag("stdin_open")?;
    s.privileged = flag("privileged")?;
    s.read_only = flag("read_only")?;
    s.cap_add = list("cap_add")?;
    s.cap_drop = list("cap_drop")?;
    s.dns = list("dns")?;
    s.expose = list("expose")?;
    s.profiles = list("profiles")?;
    if let Some(c) = v.get("command") {
        s.command = Some(words(c, &At(&at.sub("command")))?);
    }
    if let Some(e) = v.get("entrypoint") {
        s.entrypoint = Some(words(e, &At(&at.sub("entrypoint")))?);
    }
    if let Some(l) = v.get("labels") {
        s.labels = set_pairs(l, &At(&at.sub("labels")))?;
    }
    if let Some(g) = v.get("stop_grace_period") {
        let a = At(&at.sub("stop_grace_period"));
        let nanos = crate::build::config::parse_duration(&text(g, &a)?)
            .ok_or_else(|| a.bad("must be a duration (10s, 1m30s)"))?;
        s.stop_grace_period = Some(nanos.div_ceil(1_000_000_000));
    }
    if let Some(r) = v.get("deploy").and_then(|d| d.get("replicas")) {
        let a = At(&at.sub("deploy.replicas"));
        s.replicas = usize::try_from(number(r, &a)?).unwrap_or(usize::MAX);
        if s.replicas > MAX_ITEMS {
            return Err(a.bad(format!("at most {MAX_ITEMS}")));
        }
    }
    s.extra_hosts = extra_hosts(v.get("extra_hosts"), at)?;
    s.build = build(v.get("build"), at, ctx)?;
    if s.image.is_none() && s.build.is_none() {
        return Err(at.bad("a service needs an image or a build"));
    }
    s.environment = environment(v, at, ctx)?;
    s.ports = ports(v.get("ports"), at)?;
    s.mounts = mounts(v, at, ctx, files)?;
    s.network_mode = opt_text("network_mode")?;
    networks_and_dependencies(&mut s, v, at)?;
    s.healthcheck = v
        .get("healthcheck")
        .map(|h| healthcheck(h, &At(&at.sub("healthcheck"))))
        .transpose()?;
    Ok(s)
}

fn build(v: Option<&Value>, at: &At, ctx: &Context) -> Result<Option<Build>, ComposeError> {
    let Some(v) = v else { return Ok(None) };
    let p = at.sub("build");
    let at = At(&p);
    if let Value::String(c) = v {
        return Ok(Some(Build {
            context: host_path(c, &ctx.dir, &ctx.vars),
            ..Default::default()
        }));
    }
    let get = |k: &str| v.get(k).map(|x| text(x, &At(&at.sub(k)))).transpose();
    let context = get("context")?.unwrap_or_else(|| ".".into());
    Ok(Some(Build {
        context: host_path(&context, &ctx.dir, &ctx.vars),
        dockerfile: get("dockerfile")?,
        target: get("target")?,
        args: match v.get("args") {
            Some(a) => pairs(a, &At(&at.sub("args")))?
                .into_iter()
                .filter_map(|(k, val)| val.or_else(|| ctx.vars.get(&k).cloned()).map(|x| (k, x)))
                .collect(),
            None => BTreeMap::new(),
        },
        no_cache: v
            .get("no_cache")
            .map_or(Ok(false), |x| boolean(x, &At(&at.sub("no_cache"))))?,
    }))
}

/// `env_file` files in order, then `environment` over them; a name without a value takes the
/// shell's (or `.env`'s) and is left out when neither has it.
fn environment(
    v: &Value,
    at: &At,
    ctx: &Context,
) -> Result<BTreeMap<String, String>, ComposeError> {
    let mut out = BTreeMap::new();
    if let Some(files) = v.get("env_file") {
        let items = match files {
            Value::Sequence(items) => items.clone(),
            other => vec![other.clone()],
        };
        for item in items {
            let a = At(&at.sub("env_file"));
            let (path, required) = match &item {
                Value::Mapping(_) => (
                    text(item.get("path").unwrap_or(&Value::Null), &a)?,
                    item.get("required").map_or(Ok(true), |r| boolean(r, &a))?,
                ),
                other => (text(other, &a)?, true),
            };
            let path = host_path(&path, &ctx.dir, &ctx.vars);
            if !required && !path.exists() {
                continue;
            }
            out.extend(env_file(&path, &ctx.vars)?);
        }
    }
    if let Some(e) = v.get("environment") {
        for (k, val) in pairs(e, &At(&at.sub("environment")))? {
            match val.or_else(|| ctx.vars.get(&k).cloned()) {
                Some(val) => out.insert(k, val),
                None => out.remove(&k),
            };
        }
    }
    Ok(out)
}

fn extra_hosts(v: Option<&Value>, at: &At) -> Result<Vec<String>, ComposeError> {
    let a = At(&at.sub("extra_hosts"));
    Ok(match v {
        Some(Value::Mapping(_)) => set_pairs(v.unwrap_or(&Value::Null), &a)?
            .into_iter()
            .map(|(h, ip)| format!("{h}:{ip}"))
            .collect(),
        Some(other) => texts(other, &a)?
            .into_iter()
            .map(|e| match e.split_once('=') {
                Some((h, ip)) => format!("{h}:{ip}"),
                None => e,
            })
            .collect(),
        None => Vec::new(),
    })
}

/// Short port strings as they are; the long form as `[HOST_IP:][PUBLISHED:]TARGET[/PROTO]`.
fn ports(v: Option<&Value>, at: &At) -> Result<Vec<String>, ComposeError> {
    let Some(Value::Sequence(items)) = v else {
        return v.map_or(Ok(Vec::new()), |x| texts(x, &At(&at.sub("ports"))));
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = format!("{}.ports[{i}]", at.0);
        let a = At(&p);
        if !item.is_mapping() {
            out.push(text(item, &a)?);
            continue;
        }
        let get = |k: &str| item.get(k).map(|x| text(x, &a)).transpose();
        let target = get("target")?.ok_or_else(|| a.bad("a port needs a target"))?;
        let mut spec = String::new();
        if let Some(ip) = get("host_ip")? {
            spec.push_str(&format!("{ip}:"));
        }
        match get("published")? {
            Some(p) => spec.push_str(&format!("{p}:")),
            None if !spec.is_empty() => spec.push(':'),
            None => {}
        }
        spec.push_str(&target);
        if let Some(proto) = get("protocol")? {
            spec.push_str(&format!("/{proto}"));
        }
        out.push(spec);
    }
    Ok(out)
}

fn mounts(
    v: &Value,
    at: &At,
    ctx: &Context,
    files: &BTreeMap<String, PathBuf>,
) -> Result<Vec<Mount>, ComposeError> {
    let mut out = Vec::new();
    if let Some(Value::Sequence(items)) = v.get("volumes") {
        for (i, item) in items.iter().enumerate() {
            let p = format!("{}.volumes[{i}]", at.0);
            out.push(mount(item, &At(&p), ctx)?);
        }
    }
    for t in v.get("tmpfs").map_or(Ok(Vec::new()), |x| texts(x, at))? {
        out.push(Mount::Tmpfs {
            target: t,
            size: None,
        });
    }
    for (kind, base) in [("configs", ""), ("secrets", "/run/secrets")] {
        let Some(Value::Sequence(items)) = v.get(kind) else {
            continue;
        };
        for item in items {
            let a = At(at.0);
            let (source, target) = match item {
                Value::Mapping(_) => (
                    text(item.get("source").unwrap_or(&Value::Null), &a)?,
                    item.get("target").map(|t| text(t, &a)).transpose()?,
                ),
                other => (text(other, &a)?, None),
            };
            let file = files.get(&format!("{kind}.{source}")).ok_or_else(|| {
                At(&at.sub(kind)).bad(format!("{source:?} is not defined at the top level"))
            })?;
            let target = target.unwrap_or_else(|| source.clone());
            let target = if target.starts_with('/') {
                target
            } else {
                format!("{base}/{target}")
            };
            out.push(Mount::Bind {
                source: file.clone(),
                target,
                read_only: true,
            });
        }
    }
    Ok(out)
}

/// `SOURCE:TARGET[:MODE]`, `TARGET`, or the long form's mapping.
fn mount(item: &Value, at: &At, ctx: &Context) -> Result<Mount, ComposeError> {
    if !item.is_mapping() {
        let spec = text(item, at)?;
        let parts: Vec<&str> = spec.split(':').collect();
        let (source, target, mode) = match parts.as_slice() {
            [t] => return Ok(anonymous(t)),
            [s, t] => (*s, *t, ""),
            [s, t, m] => (*s, *t, *m),
            _ => return Err(at.bad("a volume is SOURCE:TARGET[:MODE]")),
        };
        let read_only = mode.split(',').any(|m| m == "ro");
        return Ok(by_source(source, target.to_string(), read_only, ctx));
    }
    let get = |k: &str| item.get(k).map(|x| text(x, at)).transpose();
    let target = get("target")?.ok_or_else(|| at.bad("a volume needs a target"))?;
    let read_only = item
        .get("read_only")
        .map_or(Ok(false), |r| boolean(r, at))?;
    let source = get("source")?;
    match (get("type")?.as_deref(), source) {
        (Some("tmpfs"), _) => Ok(Mount::Tmpfs {
            target,
            size: item
                .get("tmpfs")
                .and_then(|t| t.get("size"))
                .map(|s| text(s, at))
                .transpose()?,
        }),
        (Some("bind"), Some(s)) => Ok(Mount::Bind {
            source: host_path(&s, &ctx.dir, &ctx.vars),
            target,
            read_only,
        }),
        (Some("volume") | None, s) => Ok(Mount::Volume {
            source: s,
            target,
            read_only,
        }),
        (Some(t), _) => Err(at.bad(format!(
            "type {t:?}: den compose mounts volume, bind and tmpfs"
        ))),
    }
}

fn anonymous(target: &str) -> Mount {
    Mount::Volume {
        source: None,
        target: target.to_string(),
        read_only: false,
    }
}

/// A short syntax source: a path (`.`, `/`, `~`) is a bind, a name a project volume.
fn by_source(source: &str, target: String, read_only: bool, ctx: &Context) -> Mount {
    if source.starts_with(['.', '/', '~']) {
        Mount::Bind {
            source: host_path(source, &ctx.dir, &ctx.vars),
            target,
            read_only,
        }
    } else {
        Mount::Volume {
            source: Some(source.to_string()),
            target,
            read_only,
        }
    }
}

fn attachments(v: Option<&Value>, at: &At) -> Result<BTreeMap<String, Attach>, ComposeError> {
    let p = at.sub("networks");
    let a = At(&p);
    let mut out = BTreeMap::new();
    match v {
        None => {
            out.insert("default".to_string(), Attach::default());
        }
        Some(Value::Sequence(_)) => {
            for n in texts(v.unwrap_or(&Value::Null), &a)? {
                out.insert(n, Attach::default());
            }
        }
        Some(Value::Mapping(m)) => {
            for (k, val) in m {
                let name = key_text(k);
                let here = a.sub(&name);
                let ha = At(&here);
                let aliases = val
                    .get("aliases")
                    .map_or(Ok(Vec::new()), |x| texts(x, &ha))?;
                let ipv4_address = val.get("ipv4_address").map(|x| text(x, &ha)).transpose()?;
                out.insert(
                    name,
                    Attach {
                        aliases,
                        ipv4_address,
                    },
                );
            }
        }
        Some(_) => return Err(a.bad("must be a list or a mapping")),
    }
    Ok(out)
}

/// `networks` (none with `network_mode`) and `depends_on`, where `network_mode: service:S`
/// needs S's container first (compose adds that dependency too).
fn networks_and_dependencies(s: &mut Service, v: &Value, at: &At) -> Result<(), ComposeError> {
    s.networks = match (&s.network_mode, v.get("networks")) {
        (None, nets) => attachments(nets, at)?,
        (Some(_), None) => BTreeMap::new(),
        (Some(_), Some(_)) => {
            return Err(at.bad("network_mode and networks cannot be combined"));
        }
    };
    s.depends_on = depends_on(v.get("depends_on"), at)?;
    if let Some(owner) = s
        .network_mode
        .as_deref()
        .and_then(|m| m.strip_prefix("service:"))
    {
        s.depends_on.entry(owner.to_string()).or_insert(Dependency {
            condition: Condition::Started,
            required: true,
        });
    }
    Ok(())
}

fn depends_on(v: Option<&Value>, at: &At) -> Result<BTreeMap<String, Dependency>, ComposeError> {
    let p = at.sub("depends_on");
    let a = At(&p);
    let mut out = BTreeMap::new();
    let started = Dependency {
        condition: Condition::Started,
        required: true,
    };
    match v {
        None => {}
        Some(Value::Mapping(m)) => {
            for (k, val) in m {
                let name = key_text(k);
                let here = a.sub(&name);
                let ha = At(&here);
                let condition = match val.get("condition").map(|c| text(c, &ha)).transpose()? {
                    None => Condition::Started,
                    Some(c) => match c.as_str() {
                        "service_started" => Condition::Started,
                        "service_healthy" => Condition::Healthy,
                        "service_completed_successfully" => Condition::CompletedSuccessfully,
                        other => return Err(ha.bad(format!("unknown condition {other:?}"))),
                    },
                };
                let required = val.get("required").map_or(Ok(true), |r| boolean(r, &ha))?;
                out.insert(
                    name,
                    Dependency {
                        condition,
                        required,
                    },
                );
            }
        }
        Some(other) => {
            for n in texts(other, &a)? {
                out.insert(n, started.clone());
            }
        }
    }
    Ok(out)
}

fn healthcheck(v: &Value, at: &At) -> Result<Health, ComposeError> {
    let get = |k: &str| v.get(k).map(|x| text(x, &At(&at.sub(k)))).transpose();
    let mut h = Health {
        disable: v.get("disable").map_or(Ok(false), |d| boolean(d, at))?,
        interval: get("interval")?,
        timeout: get("timeout")?,
        start_period: get("start_period")?,
        start_interval: get("start_interval")?,
        retries: v
            .get("retries")
            .map(|r| number(r, &At(&at.sub("retries"))).map(|n| n.min(u32::MAX.into()) as u32))
            .transpose()?,
        test: None,
    };
    let ta = At(&at.sub("test"));
    match v.get("test") {
        None => {}
        Some(Value::Sequence(_)) => {
            let t = texts(v.get("test").unwrap_or(&Value::Null), &ta)?;
            match t.split_first() {
                Some((k, _)) if k == "NONE" => h.disable = true,
                Some((k, rest)) if k == "CMD" => {
                    let joined = shlex::try_join(rest.iter().map(String::as_str))
                        .map_err(|_| ta.bad("a word holds a NUL byte"))?;
                    h.test = Some(joined);
                }
                Some((k, rest)) if k == "CMD-SHELL" => h.test = Some(rest.join(" ")),
                _ => return Err(ta.bad("a list test starts with CMD, CMD-SHELL or NONE")),
            }
        }
        Some(other) => h.test = Some(text(other, &ta)?),
    }
    Ok(h)
}
