//! `network create|ls|inspect|rm|prune`: user networks' definitions (see
//! [`crate::net::usernet`]), with docker's objects and the built-ins `bridge`, `host`, `none`.

use serde_json::{Value, json};

use super::{Ctx, Result};
use crate::net::NetError;
use crate::net::usernet::{CreateOptions, Networks, UserNetwork};
use crate::store::Container;

/// The definitions, in den's store (made first if need be: the store claims only an empty
/// directory).
fn networks(ctx: &Ctx) -> Result<Networks> {
    ctx.store()?;
    Ok(Networks::new(&ctx.paths.root))
}

/// The built-in networks `ls` lists first: (name, driver).
const BUILTINS: &[(&str, &str)] = &[("bridge", "bridge"), ("host", "host"), ("none", "null")];

pub fn create(ctx: &Ctx, o: &CreateOptions) -> Result<UserNetwork> {
    Ok(networks(ctx)?.create(o)?)
}

/// Whether container `c` is on network `name`.
fn uses(c: &Container, name: &str) -> bool {
    c.record.spec.network == crate::net::Network::User(name.to_string())
        || c.record.spec.endpoints.iter().any(|e| e.network == name)
}

/// The running containers on user networks, as requests to attach them again with the
/// addresses they have: what a new network helper is given when the last one was killed.
pub fn survivors(ctx: &Ctx) -> Vec<crate::net::usernet::AttachRequest> {
    let Ok(containers) = ctx.store().and_then(|s| Ok(s.containers()?)) else {
        return vec![];
    };
    containers
        .into_iter()
        .filter(|c| c.state.status == crate::store::Status::Running)
        .filter(|c| !c.state.endpoints.is_empty())
        .filter_map(|c| {
            Some(crate::net::usernet::AttachRequest {
                pid: c.state.pid?,
                id: c.record.id,
                name: c.record.name,
                endpoints: c.state.endpoints,
                op: crate::net::usernet::Op::Attach,
            })
        })
        .collect()
}

/// docker's network object.
fn value(n: &UserNetwork, containers: &[Container]) -> Value {
    let mut attached = serde_json::Map::new();
    for c in containers.iter().filter(|c| uses(c, &n.name)) {
        let running = c.state.status == crate::store::Status::Running;
        let ep = c.state.endpoints.iter().find(|e| e.network == n.name);
        if !running {
            continue;
        }
        attached.insert(
            c.record.id.clone(),
            json!({
                "Name": c.record.name,
                "EndpointID": "",
                "MacAddress": ep.map(|e| e.mac.clone()).unwrap_or_default(),
                "IPv4Address": ep.and_then(|e| e.ip).map(|ip| format!("{ip}/{}", n.subnet.prefix)).unwrap_or_default(),
                "IPv6Address": "",
            }),
        );
    }
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": n.created.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "Scope": "local",
        "Driver": "bridge",
        "EnableIPv6": false,
        "IPAM": {
            "Driver": "default",
            "Options": {},
            "Config": [{"Subnet": n.subnet.to_string(), "Gateway": n.gateway.to_string()}],
        },
        "Internal": n.internal,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": attached,
        "Options": {},
        "Labels": n.labels,
    })
}

/// A built-in network's object.
fn builtin(name: &str, driver: &str) -> Value {
    json!({
        "Name": name,
        "Id": crate::digest::Digest::of(name.as_bytes()).hex(),
        "Created": "0001-01-01T00:00:00Z",
        "Scope": "local",
        "Driver": driver,
        "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": {}, "Config": []},
        "Internal": false,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": {},
        "Options": {},
        "Labels": {},
    })
}

/// `network ls`: the built-ins, then the user's networks, as docker's objects.
pub fn ls(ctx: &Ctx) -> Result<Vec<Value>> {
    let containers = ctx.store()?.containers()?;
    let mut out: Vec<Value> = BUILTINS.iter().map(|(n, d)| builtin(n, d)).collect();
    out.extend(networks(ctx)?.list()?.iter().map(|n| value(n, &containers)));
    Ok(out)
}

/// `network inspect`: each network's object, and an error for each not found.
pub fn inspect(ctx: &Ctx, names: &[String]) -> (Vec<Value>, Vec<super::Error>) {
    let containers = match ctx.store().and_then(|s| Ok(s.containers()?)) {
        Ok(c) => c,
        Err(e) => return (vec![], vec![e]),
    };
    let nets = match networks(ctx) {
        Ok(n) => n,
        Err(e) => return (vec![], vec![e]),
    };
    let mut values = Vec::new();
    let mut errors = Vec::new();
    for name in names {
        if let Some((n, d)) = BUILTINS.iter().find(|(n, _)| n == name) {
            values.push(builtin(n, d));
            continue;
        }
        match nets.get(name) {
            Ok(n) => values.push(value(&n, &containers)),
            Err(e) => errors.push(e.into()),
        }
    }
    (values, errors)
}

/// `network rm`: refused while a container (running or not) is on it, as docker does.
pub fn rm(ctx: &Ctx, name: &str) -> Result<()> {
    if BUILTINS.iter().any(|(n, _)| *n == name) {
        return Err(NetError::Builtin(name.to_string()).into());
    }
    let nets = networks(ctx)?;
    let n = nets.get(name)?;
    if ctx.store()?.containers()?.iter().any(|c| uses(c, &n.name)) {
        return Err(NetError::NetworkInUse(n.name, n.id).into());
    }
    Ok(nets.remove(&n.name)?)
}

/// `network prune`: every user network no container is on (with `label=` filters, those
/// that match). Returns the names removed.
pub fn prune(ctx: &Ctx, filters: &[String]) -> Result<Vec<String>> {
    let containers = ctx.store()?.containers()?;
    let nets = networks(ctx)?;
    let mut removed = Vec::new();
    for n in nets.list()? {
        let wanted = filters.iter().all(|f| match f.strip_prefix("label=") {
            Some(kv) => match kv.split_once('=') {
                Some((k, v)) => n.labels.get(k).is_some_and(|x| x == v),
                None => n.labels.contains_key(kv),
            },
            None => true,
        });
        if wanted && !containers.iter().any(|c| uses(c, &n.name)) {
            nets.remove(&n.name)?;
            removed.push(n.name);
        }
    }
    Ok(removed)
}

/// The endpoints of `run --network NAME` (with `--network-alias`, `--ip`): the definition read
/// now, so a missing network fails before anything is made.
pub fn endpoints(
    ctx: &Ctx,
    name: &str,
    aliases: &[String],
    ip: Option<std::net::Ipv4Addr>,
) -> Result<Vec<crate::net::usernet::Endpoint>> {
    let n = networks(ctx)?.get(name)?;
    if let Some(ip) = ip {
        crate::net::usernet::allocate(&n.subnet, n.gateway, &[], Some(ip))?;
    }
    Ok(vec![crate::net::usernet::Endpoint {
        network: n.name,
        network_id: n.id,
        subnet: Some(n.subnet),
        gateway: Some(n.gateway),
        ip,
        aliases: aliases.to_vec(),
        mac: String::new(),
        internal: n.internal,
        interface: String::new(),
    }])
}

/// What `network connect` asks.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    pub network: String,
    pub container: String,
    pub aliases: Vec<String>,
    pub ip: Option<std::net::Ipv4Addr>,
}

/// `network connect`: one more user network for a container. A running one (on a user
/// network already: only those share the helper's user namespace) gets an interface at once;
/// a stopped one gets it when it starts, and leaves the default network for it.
pub fn connect(ctx: &Ctx, o: &ConnectOptions) -> Result<()> {
    use crate::net::Network;
    let store = ctx.store()?;
    let c = store.lookup_container(&o.container)?;
    let mut record = c.record;
    let ep = endpoints(ctx, &o.network, &o.aliases, o.ip)?.remove(0);
    if matches!(record.spec.network, Network::Host | Network::Container(_)) {
        return Err(NetError::SharedNamespace(record.name).into());
    }
    if record
        .spec
        .endpoints
        .iter()
        .any(|e| e.network == ep.network)
    {
        return Err(NetError::AlreadyConnected(record.name, ep.network).into());
    }
    let mut state = c.state;
    if state.status == crate::store::Status::Running {
        let pid = state.pid.unwrap_or_default();
        if record.spec.endpoints.is_empty() {
            return Err(NetError::NotOnUserNetwork(record.name).into());
        }
        let got = ask_helper(
            ctx,
            pid,
            &record,
            ep.clone(),
            crate::net::usernet::Op::Connect,
        )?;
        state.endpoints.extend(got);
    }
    if !matches!(record.spec.network, Network::User(_)) {
        record.spec.network = Network::User(ep.network.clone());
    }
    record.spec.endpoints.push(ep);
    save(&store, &record, &state)
}

/// `network disconnect`: a container leaves a user network; a running one loses its interface
/// there at once, but keeps at least one network (it lives in the helper's namespace).
pub fn disconnect(ctx: &Ctx, network: &str, container: &str) -> Result<()> {
    use crate::net::Network;
    let store = ctx.store()?;
    let c = store.lookup_container(container)?;
    let mut record = c.record;
    let n = networks(ctx)?.get(network)?;
    let Some(pos) = record
        .spec
        .endpoints
        .iter()
        .position(|e| e.network == n.name)
    else {
        return Err(NetError::NotConnected(record.name, n.name).into());
    };
    let mut state = c.state;
    let running = state.status == crate::store::Status::Running;
    if running {
        if record.spec.endpoints.len() == 1 {
            return Err(NetError::LastNetwork(record.name, n.name).into());
        }
        let pid = state.pid.unwrap_or_default();
        let ep = record.spec.endpoints[pos].clone();
        state.endpoints = ask_helper(ctx, pid, &record, ep, crate::net::usernet::Op::Disconnect)?;
    }
    record.spec.endpoints.remove(pos);
    record.spec.network = match record.spec.endpoints.first() {
        Some(e) => Network::User(e.network.clone()),
        None => Network::None,
    };
    save(&store, &record, &state)
}

/// Ask the network helper (started again if it was killed) to connect or disconnect `ep`.
fn ask_helper(
    ctx: &Ctx,
    pid: i32,
    record: &crate::store::ContainerRecord,
    ep: crate::net::usernet::Endpoint,
    op: crate::net::usernet::Op,
) -> Result<Vec<crate::net::usernet::Endpoint>> {
    use crate::net::usernet;
    let dir = usernet::holder_dir(&ctx.runtime_dir()?);
    let (_, _lock) = usernet::ensure_holder(&dir, &|| survivors(ctx))?;
    let req = usernet::AttachRequest {
        pid,
        id: record.id.clone(),
        name: record.name.clone(),
        endpoints: vec![ep],
        op,
    };
    Ok(usernet::attach(&dir, &req)?)
}

/// A container's record and state, written back.
fn save(
    store: &crate::store::Store,
    record: &crate::store::ContainerRecord,
    state: &crate::store::ContainerState,
) -> Result<()> {
    let cdir = store.container_dir(&record.id);
    store.write_json(&cdir.join("container.json"), record)?;
    store.set_container_state(&record.id, state)?;
    Ok(())
}
