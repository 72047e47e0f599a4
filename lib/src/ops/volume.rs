//! `volume create|ls|rm|inspect|prune`: named volumes under den's root (see [`crate::volume`]).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::Ctx;
use super::Result;
use crate::volume::{Volume, Volumes};

fn volumes(ctx: &Ctx) -> Result<Volumes> {
    Ok(ctx.store()?.volumes())
}

pub fn create(ctx: &Ctx, name: Option<&str>, labels: &[String]) -> Result<Volume> {
    let mut l = BTreeMap::new();
    for kv in labels {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        l.insert(k.to_string(), v.to_string());
    }
    volumes(ctx)?.create(name, l).map_err(super::Error::Volume)
}

/// docker's volume object (`volume inspect`, and `volume ls`'s fields).
fn value(vols: &Volumes, v: &Volume) -> Value {
    json!({
        "CreatedAt": v.created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "Driver": "local",
        "Labels": v.labels,
        "Mountpoint": vols.data_dir(&v.name),
        "Name": v.name,
        "Options": {},
        "Scope": "local",
    })
}

/// `volume ls`: docker's object for each volume.
pub fn ls(ctx: &Ctx) -> Result<Vec<Value>> {
    let vols = volumes(ctx)?;
    let list = vols.list().map_err(super::Error::Volume)?;
    Ok(list.iter().map(|v| value(&vols, v)).collect())
}

/// `volume inspect`: docker's object for each volume, and the error for each name not found.
pub fn inspect(ctx: &Ctx, names: &[String]) -> (Vec<Value>, Vec<super::Error>) {
    let mut values = Vec::new();
    let mut errors: Vec<super::Error> = Vec::new();
    match volumes(ctx) {
        Ok(vols) => {
            for n in names {
                match vols.inspect(n) {
                    Ok(v) => values.push(value(&vols, &v)),
                    Err(e) => errors.push(super::Error::Volume(e)),
                }
            }
        }
        Err(e) => errors.push(e),
    }
    (values, errors)
}

/// Remove a volume; refused while a container uses it, unless forced.
pub fn rm(ctx: &Ctx, name: &str, force: bool) -> Result<()> {
    let store = ctx.store()?;
    let used = store.volume_users(name)?;
    store
        .volumes()
        .remove(name, &used, force)
        .map_err(super::Error::Volume)
}

/// Remove the volumes no container uses (anonymous ones only, unless `all`).
pub fn prune(ctx: &Ctx, all: bool) -> Result<Vec<String>> {
    let store = ctx.store()?;
    let in_use = store.volumes_in_use()?;
    Ok(store.volumes().prune(all, &in_use)?)
}
