//! `commit`: a new image from a container: its image's layers plus one layer of what the
//! container changed (its writable layer, archived and unpacked as a build step's is, by
//! [`crate::build::step::copy_upper`]), and its image's configuration under the container's
//! settings (command, environment, working directory, user, labels, ... as docker's commit
//! takes them), then `--change` instructions (import's parser); `--message`/`--author` and the
//! container's command land in the history entry, as docker's do.
//!
//! The writable layer is read in place inside den's user namespace (where its files show their
//! image owners); a running container is paused meanwhile unless `--pause=false`
//! ([`crate::runtime::freeze::while_paused`]), so that a file being written is not archived
//! half-way. The vfs driver keeps no writable layer, only a whole copy: there the layer is what
//! `diff` finds changed in the copy, deletions as whiteouts
//! ([`crate::build::step::copy_changes`]).

use chrono::Utc;
use serde_json::{Map, Value, json};

use super::{Ctx, Result};
use crate::store::driver::{Driver, Layout};
use crate::store::{ImageRecord, Status};

#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    pub container: String,
    /// `REPOSITORY[:TAG]` to name the image.
    pub reference: Option<String>,
    /// `--change`: Dockerfile instructions (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME,
    /// WORKDIR, ONBUILD).
    pub changes: Vec<String>,
    pub message: Option<String>,
    pub author: Option<String>,
    /// `-p/--pause` (docker's default true): the container's processes are stopped while its
    /// changes are copied, and go on afterwards, whether the commit succeeded or not.
    pub pause: bool,
}

pub fn commit(ctx: &Ctx, opts: &CommitOptions) -> Result<ImageRecord> {
    let name = match &opts.reference {
        Some(r) => Some(crate::image::Reference::parse_tag(r)?),
        None => None,
    };
    let store = ctx.store()?;
    let c = store.lookup_container(&opts.container)?;
    let driver = Driver::from_name(&c.record.driver).unwrap_or(Driver::Vfs);
    let base = store.find_image(c.record.image_id.as_str())?;
    let mut config: Value = store.read_json(&store.blob_path(&base.config))?;
    let mut container_config = config
        .get("config")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    container_settings(&mut container_config, &c.record.spec);
    for change in &opts.changes {
        crate::image::change::apply(&mut container_config, change)?;
    }
    // Content added below must not be collected before the record names it.
    let _pin = store.lock_content_shared()?;
    let layout = Layout::of(&store.container_dir(&c.record.id));
    let running = match (c.state.status, c.state.pid) {
        (Status::Running, Some(init)) if opts.pause && !c.state.paused => Some(init),
        _ => None,
    };
    let layer = crate::runtime::freeze::while_paused(
        &crate::sys::LinuxSys,
        &c.record.id,
        running,
        |how| {
            Ok(crate::runtime::procs::record_group(
                &store,
                &c.record.id,
                how,
            )?)
        },
        || -> Result<_> {
            if driver != Driver::Vfs {
                return Ok(crate::build::step::copy_upper(&store, &layout.upper)?);
            }
            // vfs keeps a whole copy: the layer is what differs from the image, as docker's
            // naive diff driver makes it (den's own mount points left out, as `diff` leaves them).
            let layers: Vec<std::path::PathBuf> = store
                .rootfs_layers(&c.record)?
                .iter()
                .map(|d| store.layer_diff(d))
                .collect();
            let root = &layout.rootfs_copy;
            let changes =
                crate::store::changes::of_copy(root, &layers, super::container::OWN_PATHS)?;
            Ok(crate::build::step::copy_changes(&store, root, &changes)?)
        },
    )?;
    let created_by = c.record.spec.cmd.join(" ");
    finish_config(
        &mut config,
        container_config,
        &layer.diff_id,
        &created_by,
        opts,
    );
    let mut layers = base.layers.clone();
    layers.push(layer);
    let canonical = name.as_ref().map(|n| n.canonical());
    let image = store
        .incoming()?
        .finish_local(&config, &layers, canonical.as_deref())?;
    store.record_event(&crate::store::Event::container(&c.record, "commit"));
    Ok(image)
}

/// The container's settings over its image's, as docker's commit takes the container's
/// configuration: command and entrypoint, environment (its `-e` over the image's, a later
/// name replacing an earlier one), working directory, user, stop signal, labels (`--label` over
/// the image's), the ports it publishes as exposed ports, and its anonymous volumes (`-v
/// /data`) as volumes, and its health check (the image's under `--health-*`, merged).
fn container_settings(config: &mut Map<String, Value>, spec: &crate::store::RunSpec) {
    config.insert("Cmd".into(), json!(spec.cmd));
    if spec.entrypoint.is_empty() {
        config.remove("Entrypoint");
    } else {
        config.insert("Entrypoint".into(), json!(spec.entrypoint));
    }
    let mut env: Vec<&str> = Vec::new();
    for e in &spec.env {
        let key = e.split_once('=').map_or(e.as_str(), |(k, _)| k);
        env.retain(|old| old.split_once('=').map_or(*old, |(k, _)| k) != key);
        env.push(e);
    }
    config.insert("Env".into(), json!(env));
    // den runs a container without a working directory in `/`; docker's configuration has none.
    let had_workdir = config
        .get("WorkingDir")
        .and_then(Value::as_str)
        .is_some_and(|w| !w.is_empty());
    if spec.cwd != "/" || had_workdir {
        config.insert("WorkingDir".into(), json!(spec.cwd));
    }
    if spec.user.is_empty() {
        config.remove("User");
    } else {
        config.insert("User".into(), json!(spec.user));
    }
    if let Some(sig) = &spec.stop_signal {
        config.insert("StopSignal".into(), json!(sig));
    }
    if let Some(h) = &spec.healthcheck {
        config.insert("Healthcheck".into(), json!(h));
    }
    let mut put = |key: &str, name: String| {
        let map = config.entry(key).or_insert_with(|| json!({}));
        if !map.is_object() {
            *map = json!({});
        }
        map[name] = json!({});
    };
    for p in &spec.ports {
        put("ExposedPorts", p.key());
    }
    for m in spec.mounts.iter().filter(|m| m.anonymous) {
        put("Volumes", m.destination.clone());
    }
    if !spec.labels.is_empty() {
        let labels = config.entry("Labels").or_insert_with(|| json!({}));
        if !labels.is_object() {
            *labels = json!({});
        }
        for (k, v) in &spec.labels {
            labels[k] = json!(v);
        }
    }
}

/// The base image's configuration with the new layer, a history entry and the new settings.
/// `created_by`: the container's command, which docker's history names as what made the layer.
fn finish_config(
    config: &mut Value,
    container_config: Map<String, Value>,
    diff_id: &crate::digest::Digest,
    created_by: &str,
    opts: &CommitOptions,
) {
    let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    config["created"] = json!(now);
    config["config"] = Value::Object(container_config);
    if !config["rootfs"]["diff_ids"].is_array() {
        config["rootfs"] = json!({"type": "layers", "diff_ids": []});
    }
    if let Some(ids) = config["rootfs"]["diff_ids"].as_array_mut() {
        ids.push(json!(diff_id.as_str()));
    }
    let mut entry = json!({"created": now, "created_by": created_by});
    if let Some(m) = &opts.message {
        entry["comment"] = json!(m);
        config["comment"] = json!(m);
    }
    if let Some(a) = &opts.author {
        entry["author"] = json!(a);
        config["author"] = json!(a);
    }
    if !config["history"].is_array() {
        config["history"] = json!([]);
    }
    if let Some(h) = config["history"].as_array_mut() {
        h.push(entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_gains_the_layer_history_and_settings() {
        let mut config = json!({"rootfs": {"type": "layers", "diff_ids": ["sha256:aa"]},
                                "history": [{"created_by": "base"}], "config": {}});
        let mut cc = Map::new();
        crate::image::change::apply(&mut cc, "CMD [\"a\"]").unwrap();
        let opts = CommitOptions {
            message: Some("msg".into()),
            author: Some("me".into()),
            ..Default::default()
        };
        let d = crate::digest::Digest::of(b"x");
        finish_config(&mut config, cc, &d, "sh", &opts);
        assert_eq!(config["rootfs"]["diff_ids"][1], json!(d.as_str()));
        assert_eq!(config["history"][1]["comment"], "msg");
        assert_eq!(config["history"][1]["created_by"], "sh");
        assert_eq!(config["author"], "me");
        assert_eq!(config["config"]["Cmd"], json!(["a"]));
    }

    #[test]
    fn the_containers_settings_go_over_the_images() {
        let mut cc = serde_json::from_value::<Map<String, Value>>(json!({
            "Env": ["PATH=/bin", "A=image"], "Labels": {"from": "image", "x": "image"},
            "ExposedPorts": {"22/tcp": {}}, "Volumes": {"/img": {}},
            "Healthcheck": {"Test": ["CMD", "true"]}, "User": "nobody"
        }))
        .unwrap();
        let mut spec = crate::store::RunSpec {
            env: vec![
                "PATH=/bin".into(),
                "A=image".into(),
                "A=run".into(),
                "B=2".into(),
            ],
            cwd: "/srv".into(),
            stop_signal: Some("SIGINT".into()),
            cmd: vec!["sleep".into(), "9".into()],
            ..Default::default()
        };
        spec.labels.insert("x".into(), "run".into());
        spec.ports
            .push(crate::net::ports::parse("8080:80/udp").unwrap().remove(0));
        let cwd = std::path::Path::new("/");
        for v in ["/data", "/host:/scratch", "named:/named"] {
            spec.mounts
                .push(crate::volume::parse_volume_flag(v, cwd).unwrap());
        }
        container_settings(&mut cc, &spec);
        assert_eq!(cc["Env"], json!(["PATH=/bin", "A=run", "B=2"]));
        assert_eq!(cc["WorkingDir"], "/srv");
        assert!(!cc.contains_key("User"), "the container ran as root");
        assert_eq!(cc["StopSignal"], "SIGINT");
        assert_eq!(cc["Labels"], json!({"from": "image", "x": "run"}));
        assert_eq!(cc["ExposedPorts"], json!({"22/tcp": {}, "80/udp": {}}));
        assert_eq!(cc["Volumes"], json!({"/img": {}, "/data": {}}));
        assert_eq!(cc["Healthcheck"]["Test"][1], "true");
        assert_eq!(cc["Cmd"], json!(["sleep", "9"]));
        // `--no-healthcheck` (or `--health-*`): the container's check replaces the image's.
        spec.healthcheck = Some(crate::store::health::HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        });
        container_settings(&mut cc, &spec);
        assert_eq!(cc["Healthcheck"], json!({"Test": ["NONE"]}));
        // No working directory in the image or the run: none in the new image.
        let mut bare = Map::new();
        container_settings(
            &mut bare,
            &crate::store::RunSpec {
                cwd: "/".into(),
                ..Default::default()
            },
        );
        assert!(!bare.contains_key("WorkingDir"));
    }

    #[test]
    fn volume_and_onbuild_changes() {
        let mut cc = Map::new();
        crate::image::change::apply(&mut cc, "VOLUME /a /b").unwrap();
        crate::image::change::apply(&mut cc, "VOLUME [\"/c\"]").unwrap();
        crate::image::change::apply(&mut cc, "ONBUILD RUN make").unwrap();
        assert_eq!(cc["Volumes"], json!({"/a": {}, "/b": {}, "/c": {}}));
        assert_eq!(cc["OnBuild"], json!(["RUN make"]));
        assert!(crate::image::change::apply(&mut cc, "VOLUME [1]").is_err());
    }
}
