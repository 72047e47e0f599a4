//! `commit`: a new image from a container: its image's layers plus one layer of what the
//! container changed (its writable layer, archived and unpacked as a build step's is, by
//! [`crate::build::step::copy_upper`]), and its image's configuration with the container's
//! command and entrypoint, `--change` instructions (import's parser) and `--message`/`--author`.
//!
//! The writable layer is read in place, running or not, inside den's user namespace (where its
//! files show their image owners). The vfs driver keeps no writable layer, only a whole copy;
//! den refuses to commit there rather than make a layer of the whole root.

use chrono::Utc;
use serde_json::{Map, Value, json};

use super::{Ctx, Result};
use crate::store::driver::{Driver, Layout};
use crate::store::{ContainersError, ImageRecord};

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
}

pub fn commit(ctx: &Ctx, opts: &CommitOptions) -> Result<ImageRecord> {
    let name = match &opts.reference {
        Some(r) => Some(crate::image::Reference::parse_tag(r)?),
        None => None,
    };
    let store = ctx.store()?;
    let c = store.lookup_container(&opts.container)?;
    let driver = Driver::from_name(&c.record.driver).unwrap_or(Driver::Vfs);
    if driver == Driver::Vfs {
        return Err(ContainersError::CommitVfs(opts.container.clone()).into());
    }
    let base = store.find_image(c.record.image_id.as_str())?;
    let mut config: Value = store.read_json(&store.blob_path(&base.config))?;
    let mut container_config = config
        .get("config")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let spec = &c.record.spec;
    container_config.insert("Cmd".into(), json!(spec.cmd));
    if spec.entrypoint.is_empty() {
        container_config.remove("Entrypoint");
    } else {
        container_config.insert("Entrypoint".into(), json!(spec.entrypoint));
    }
    for change in &opts.changes {
        crate::image::change::apply(&mut container_config, change)?;
    }
    // Content added below must not be collected before the record names it.
    let _pin = store.lock_content_shared()?;
    let upper = Layout::of(&store.container_dir(&c.record.id)).upper;
    let layer = crate::build::step::copy_upper(&store, &upper)?;
    finish_config(&mut config, container_config, &layer.diff_id, opts);
    let mut layers = base.layers.clone();
    layers.push(layer);
    let canonical = name.as_ref().map(|n| n.canonical());
    let image = store
        .incoming()?
        .finish_local(&config, &layers, canonical.as_deref())?;
    store.record_event(&crate::store::Event::container(&c.record, "commit"));
    Ok(image)
}

/// The base image's configuration with the new layer, a history entry and the new settings.
fn finish_config(
    config: &mut Value,
    container_config: Map<String, Value>,
    diff_id: &crate::digest::Digest,
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
    let mut entry = json!({"created": now, "created_by": "den commit"});
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
        finish_config(&mut config, cc, &d, &opts);
        assert_eq!(config["rootfs"]["diff_ids"][1], json!(d.as_str()));
        assert_eq!(config["history"][1]["comment"], "msg");
        assert_eq!(config["author"], "me");
        assert_eq!(config["config"]["Cmd"], json!(["a"]));
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
