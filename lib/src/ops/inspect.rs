//! `inspect`: docker's objects for containers and images, as `den inspect`, `den container
//! inspect` and `den image inspect` print them.
//!
//! `den inspect NAME` looks for a container first and an image second, as docker's does; the
//! objects are JSON values in docker's shape, which [`crate::render::objects`] prints whole or
//! through a `--format` template.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::Ctx;
use super::Result;
use crate::image::familiar_repo;
use crate::runtime::logs;
use crate::store::{Container, ContainerRecord, ContainerState, ImageRecord, Status, StoreError};
use crate::volume::MountKind;

/// docker's `inspect` object for a container.
pub fn container_value(ctx: &Ctx, c: &Container) -> Result<Value> {
    let store = ctx.store()?;
    let r = &c.record;
    let s = &c.state;
    let cdir = store.container_dir(&r.id);
    let userdata = cdir.join("userdata");
    let network_name = r.spec.network.name().into_owned();
    let mut networks = serde_json::Map::new();
    if r.spec.endpoints.is_empty() {
        networks.insert(network_name.clone(), json!({}));
    }
    for e in &r.spec.endpoints {
        networks.insert(e.network.clone(), endpoint_json(e, s));
    }
    let live_ports = if s.status == Status::Running {
        port_json(&s.ports)
    } else {
        json!({})
    };
    Ok(json!({
        "Id": r.id,
        "Created": time(Some(r.created)),
        "Path": r.spec.args.first().cloned().unwrap_or_default(),
        "Args": r.spec.args.iter().skip(1).cloned().collect::<Vec<_>>(),
        "State": state_json(s),
        "Image": r.image_id,
        "ResolvConfPath": userdata.join("resolv.conf"),
        "HostnamePath": userdata.join("hostname"),
        "HostsPath": userdata.join("hosts"),
        "LogPath": if logs::Format::of(r.spec.log.driver).is_some() {
            cdir.join(logs::LOG_FILE).display().to_string()
        } else {
            String::new()
        },
        "Name": format!("/{}", r.name),
        "RestartCount": s.restart_count,
        "Driver": r.driver,
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "HostConfig": host_config(r),
        "GraphDriver": {
            "Name": r.driver,
            "Data": {
                "UpperDir": cdir.join("upper"),
                "WorkDir": cdir.join("work"),
                "MergedDir": cdir.join("merged"),
            }
        },
        "Mounts": mounts_json(r, &store.volumes()),
        "Config": config_json(r),
        "NetworkSettings": {
            "Bridge": "",
            "SandboxID": "",
            "Ports": live_ports,
            "IPAddress": if network_name == "slirp4netns" { "10.0.2.100" } else { "" },
            "MacAddress": "",
            "Networks": networks,
        }
    }))
}

/// docker's `NetworkSettings.Networks.NAME` of a user network: the address while it runs.
fn endpoint_json(e: &crate::net::usernet::Endpoint, s: &ContainerState) -> Value {
    let live = s
        .endpoints
        .iter()
        .find(|l| l.network == e.network)
        .filter(|_| s.status == Status::Running);
    json!({
        "Aliases": e.aliases,
        "NetworkID": e.network_id,
        "EndpointID": "",
        "Gateway": e.gateway.map(|g| g.to_string()).unwrap_or_default(),
        "IPAddress": live.and_then(|l| l.ip).map(|i| i.to_string()).unwrap_or_default(),
        "IPPrefixLen": e.subnet.map_or(0, |s| s.prefix),
        "MacAddress": live.map(|l| l.mac.clone()).unwrap_or_default(),
        "IPAMConfig": e.ip.map(|i| json!({"IPv4Address": i.to_string()})),
    })
}

/// docker's time, or its zero time for none.
fn time(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".into())
}

fn state_json(s: &ContainerState) -> Value {
    json!({
        "Status": s.status_name(),
        "Running": s.status == Status::Running,
        "Paused": s.paused,
        "Restarting": false,
        "OOMKilled": false,
        "Dead": false,
        "Pid": s.pid.unwrap_or(0),
        "ExitCode": s.exit_code.unwrap_or(0),
        "Error": s.error.clone().unwrap_or_default(),
        "StartedAt": time(s.started_at),
        "FinishedAt": time(s.finished_at),
        "Health": s.health,
    })
}

/// `Mounts`: each mount as docker shows it (a volume with its name and data directory).
fn mounts_json(r: &ContainerRecord, volumes: &crate::volume::Volumes) -> Vec<Value> {
    r.spec
        .mounts
        .iter()
        .map(|m| {
            let (kind, name, source) = match m.kind {
                MountKind::Bind => ("bind", None, m.source.clone()),
                MountKind::Volume => (
                    "volume",
                    Some(m.source.clone()),
                    volumes.data_dir(&m.source).to_string_lossy().into_owned(),
                ),
                MountKind::Tmpfs => ("tmpfs", None, String::new()),
            };
            let mut v = json!({
                "Type": kind,
                "Source": source,
                "Destination": m.destination,
                "Mode": if m.read_only { "ro" } else { "" },
                "RW": !m.read_only,
                "Propagation": if kind == "bind" { "rprivate" } else { "" },
            });
            if let Some(n) = name {
                v["Name"] = json!(n);
                v["Driver"] = json!("local");
            }
            v
        })
        .collect()
}

/// Ports by `PORT/PROTO`, each with its host address and port.
fn port_json(ports: &[crate::net::PortMapping]) -> Value {
    let mut m = serde_json::Map::new();
    for p in ports {
        let entry = m.entry(p.key()).or_insert_with(|| json!([]));
        if let Value::Array(a) = entry {
            a.push(json!({
                "HostIp": p.host_ip.map(|i| i.to_string()).unwrap_or_else(|| "0.0.0.0".into()),
                "HostPort": if p.host_port == 0 { String::new() } else { p.host_port.to_string() },
            }));
        }
    }
    Value::Object(m)
}

fn host_config(r: &ContainerRecord) -> Value {
    let binds: Vec<String> = r
        .spec
        .mounts
        .iter()
        .filter(|m| m.kind != MountKind::Tmpfs)
        .map(|m| {
            format!(
                "{}:{}{}",
                m.source,
                m.destination,
                if m.read_only { ":ro" } else { "" }
            )
        })
        .collect();
    let tmpfs: serde_json::Map<String, Value> = r
        .spec
        .mounts
        .iter()
        .filter(|m| m.kind == MountKind::Tmpfs)
        .map(|m| (m.destination.clone(), json!(m.options.join(","))))
        .collect();
    let max_retries = match r.spec.restart {
        crate::store::RestartPolicy::OnFailure { max_retries } => max_retries,
        _ => 0,
    };
    // docker shows an empty list as null.
    let sec = &r.spec.security;
    let nonempty = |v: Vec<String>| if v.is_empty() { Value::Null } else { json!(v) };
    let mut host = json!({
        "Binds": binds,
        "NetworkMode": r.spec.network.name(),
        "PortBindings": port_json(&r.spec.ports),
        "RestartPolicy": { "Name": r.spec.restart.name(), "MaximumRetryCount": max_retries },
        "LogConfig": { "Type": r.spec.log.driver.name(), "Config": r.spec.log.opts },
        "AutoRemove": r.auto_remove,
        "ReadonlyRootfs": r.spec.read_only,
        "Tmpfs": tmpfs,
        "Privileged": sec.privileged,
        "PidMode": if r.spec.shared.pid { "host" } else { "" },
        "IpcMode": if r.spec.shared.ipc { "host" } else { "private" },
        "UsernsMode": if r.spec.shared.keep_id { "keep-id" } else { "" },
        "CapAdd": nonempty(sec.cap_add.iter().map(|c| String::from(*c)).collect()),
        "CapDrop": nonempty(sec.cap_drop.iter().map(|c| String::from(*c)).collect()),
        "SecurityOpt": nonempty(sec.security_opt()),
        "Annotations": if r.spec.annotations.is_empty() { Value::Null } else { json!(r.spec.annotations) },
        "Devices": r.spec.devices.host,
        "DeviceRequests": device_requests(&r.spec.devices),
        "GroupAdd": if r.spec.devices.keep_groups { json!(["keep-groups"]) } else { Value::Null },
    });
    if let (Some(o), Value::Object(l)) = (host.as_object_mut(), limits_json(&r.spec.limits)) {
        o.extend(l);
    }
    process_host_config(&mut host, &r.spec.process);
    host
}

/// docker's `HostConfig` resource fields (0, "" or null where no limit was asked for).
fn limits_json(l: &crate::cgroup::limits::Limits) -> Value {
    json!({
        "Memory": l.memory.unwrap_or(0),
        "MemorySwap": l.memory_swap.unwrap_or(0),
        "NanoCpus": l.nano_cpus.unwrap_or(0),
        "CpuShares": l.cpu_shares.unwrap_or(0),
        "PidsLimit": l.pids_limit,
        "CpusetCpus": l.cpuset_cpus.clone().unwrap_or_default(),
        "CgroupParent": l.parent.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
    })
}

/// docker's `Init`, `ShmSize`, `Sysctls` and `Ulimits` (-1 for unlimited).
fn process_host_config(v: &mut Value, p: &crate::security::process::Settings) {
    let limit = |n: u64| if n == u64::MAX { -1 } else { n as i64 };
    v["Init"] = if p.init { json!(true) } else { Value::Null };
    v["ShmSize"] = json!(p.shm_bytes());
    if !p.sysctls.is_empty() {
        v["Sysctls"] = json!(p.sysctls);
    }
    v["Ulimits"] = if p.ulimits.is_empty() {
        Value::Null
    } else {
        json!(
            p.ulimits
                .iter()
                .map(|u| json!({"Name": u.name, "Hard": limit(u.hard), "Soft": limit(u.soft)}))
                .collect::<Vec<_>>()
        )
    };
}

/// docker 25's shape for CDI devices (`--device vendor/class=name`, `--gpus`): one request of
/// the `cdi` driver naming them; null without any.
fn device_requests(d: &crate::cdi::DeviceRequest) -> Value {
    if d.cdi.is_empty() {
        return Value::Null;
    }
    json!([{ "Driver": "cdi", "Count": 0, "DeviceIDs": d.cdi, "Capabilities": null, "Options": {} }])
}

fn config_json(r: &ContainerRecord) -> Value {
    let exposed: serde_json::Map<String, Value> =
        r.spec.ports.iter().map(|p| (p.key(), json!({}))).collect();
    let mut config = config_fields(r, exposed);
    // docker's: only when the image or the flags set one.
    if let Some(h) = &r.spec.healthcheck {
        config["Healthcheck"] = json!(h);
    }
    config
}

fn config_fields(r: &ContainerRecord, exposed: serde_json::Map<String, Value>) -> Value {
    json!({
        "Hostname": r.spec.hostname,
        "Domainname": "",
        "User": r.spec.user,
        "AttachStdin": r.spec.attached().stdin,
        "AttachStdout": r.spec.attached().stdout,
        "AttachStderr": r.spec.attached().stderr,
        "Tty": r.spec.tty,
        "OpenStdin": r.spec.stdin,
        // docker's: -i with stdin attached (not `run -di`).
        "StdinOnce": r.spec.stdin && r.spec.attached().stdin,
        "Env": r.spec.env,
        "Cmd": r.spec.cmd,
        "Image": r.image,
        "Volumes": null,
        "ExposedPorts": exposed,
        "WorkingDir": r.spec.cwd,
        "Entrypoint": if r.spec.entrypoint.is_empty() { Value::Null } else { json!(r.spec.entrypoint) },
        "OnBuild": null,
        "Labels": r.spec.labels,
        "Annotations": r.spec.annotations,
        "StopSignal": r.spec.stop_signal.clone().unwrap_or_else(|| "SIGTERM".into()),
        "StopTimeout": r.spec.stop_timeout.unwrap_or(crate::runtime::DEFAULT_STOP_TIMEOUT),
    })
}

/// `inspect`: docker's object for each container, or image when no container has the name (as
/// docker's `inspect`), and the error for each name that is neither.
pub fn inspect(ctx: &Ctx, names: &[String]) -> (Vec<Value>, Vec<super::Error>) {
    let mut values = Vec::new();
    let mut errors = Vec::new();
    for n in names {
        match inspect_one(ctx, n) {
            Ok(v) => values.push(v),
            Err(e) => errors.push(e),
        }
    }
    (values, errors)
}

fn inspect_one(ctx: &Ctx, name: &str) -> Result<Value> {
    let store = ctx.store()?;
    match store.lookup_container(name) {
        Err(StoreError::ContainerUnknown(_)) => Ok(store.find_image(name)?)
            .and_then(|i| image_value(ctx, &i))
            .map_err(|_| StoreError::NoSuchObject(name.to_string()).into()),
        r => container_value(ctx, &r?),
    }
}

/// An image as `den image inspect` shows it: docker's shape.
pub fn image_value(ctx: &Ctx, image: &ImageRecord) -> Result<serde_json::Value> {
    let store = ctx.store()?;
    let config: serde_json::Value = serde_json::from_slice(&store.read_blob(&image.config)?)
        .map_err(|e| crate::image::ImageError::BadConfig {
            digest: image.config.to_string(),
            source: e,
        })?;
    let tags: Vec<String> = image
        .names
        .iter()
        .map(|n| match n.rsplit_once(':') {
            Some((repo, tag)) if !repo.is_empty() => format!("{}:{tag}", familiar_repo(repo)),
            _ => n.clone(),
        })
        .collect();
    let get = |k: &str| config.get(k).cloned().unwrap_or(serde_json::Value::Null);
    Ok(serde_json::json!({
        "Id": image.id.to_string(),
        "RepoTags": tags,
        "RepoDigests": image.repo_digests,
        "Parent": "",
        "Comment": config.get("comment").cloned().unwrap_or(serde_json::json!("")),
        "Created": get("created"),
        "Author": config.get("author").cloned().unwrap_or(serde_json::json!("")),
        "Config": get("config"),
        "Architecture": image.architecture,
        "Os": image.os,
        "Size": image.size,
        "RootFS": {
            "Type": "layers",
            "Layers": image.layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>(),
        },
        "History": config.get("history").cloned().unwrap_or(serde_json::json!([])),
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
        // podman's field: the stored manifest's media type (`build --format`).
        "ManifestType": image.manifest_media_type,
    }))
}

/// `image inspect`: docker's object for each image, and the error for each name not found.
pub fn images(ctx: &Ctx, names: &[String]) -> (Vec<serde_json::Value>, Vec<super::Error>) {
    let mut values = Vec::new();
    let mut errors = Vec::new();
    for n in names {
        if crate::image::sqsh::is_image_file(n) {
            match super::squash::inspect_value(std::path::Path::new(n)) {
                Ok(v) => values.push(v),
                Err(e) => errors.push(e),
            }
            continue;
        }
        match ctx
            .store()
            .and_then(|s| Ok(s.find_image(n)?))
            .and_then(|i| image_value(ctx, &i))
        {
            Ok(v) => values.push(v),
            Err(e) => errors.push(e),
        }
    }
    (values, errors)
}
