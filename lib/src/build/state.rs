//! The build so far, within one stage: the layers, the image config (docker's JSON, history
//! included), the build arguments in scope and the cache key the next step continues from.
//!
//! The config stays JSON rather than a typed struct: a base image's config is kept byte for
//! byte where den does not change it (fields den does not know included), and a cache hit
//! restores it as it was, which is what makes an unchanged rebuild the same image id.

use std::collections::BTreeMap;

use chrono::Utc;
use serde_json::{Value, json};

use super::Result;
use crate::digest::Digest;
use crate::store::LayerRef;

/// The build so far, within one stage.
#[derive(Debug, Clone)]
pub struct State {
    pub layers: Vec<LayerRef>,
    pub config: Value,
    /// The key the next step's key continues from ([`super::cache::Key::new`]).
    pub key: String,
    /// Build arguments declared in this stage, with their values (None: declared, unset).
    pub args: BTreeMap<String, Option<String>>,
    /// The base image's id, for the containers of RUN steps; none for `FROM scratch`.
    pub base_id: Option<Digest>,
    /// CMD was set in this stage (ENTRYPOINT then leaves it alone).
    pub cmd_set: bool,
}

impl State {
    /// `FROM scratch`: no layers, an empty config for this host's architecture.
    pub fn scratch() -> State {
        State {
            layers: Vec::new(),
            config: json!({
                "architecture": crate::image::manifest::Platform::host().arch,
                "os": "linux",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": []},
                "history": [],
            }),
            key: "scratch".into(),
            args: BTreeMap::new(),
            base_id: None,
            cmd_set: false,
        }
    }

    /// A base image: its layers and config (see [`base_config`]), keyed by its id.
    pub fn image(id: Digest, layers: Vec<LayerRef>, config: Value) -> State {
        State {
            layers,
            config,
            key: format!("image:{id}"),
            args: BTreeMap::new(),
            base_id: Some(id),
            cmd_set: false,
        }
    }

    /// The image config's `config` object, made an empty one when it is missing, `null` or not
    /// an object (images in the wild have `"config": null`).
    pub fn cfg(&mut self) -> &mut serde_json::Map<String, Value> {
        let c = self.root().entry("config").or_insert_with(|| json!({}));
        if !c.is_object() {
            *c = json!({});
        }
        c.as_object_mut().expect("made an object just above")
    }

    /// The image config itself (an object: [`base_config`] checked it, or den made it).
    pub fn root(&mut self) -> &mut serde_json::Map<String, Value> {
        if !self.config.is_object() {
            self.config = json!({});
        }
        self.config
            .as_object_mut()
            .expect("made an object just above")
    }

    pub fn get(&self, field: &str) -> Option<&Value> {
        self.config.get("config").and_then(|c| c.get(field))
    }

    pub fn env(&self) -> Vec<String> {
        strings(self.get("Env"))
    }

    fn env_value(&self, name: &str) -> Option<String> {
        self.env().iter().find_map(|e| {
            let (k, v) = e.split_once('=').unwrap_or((e, ""));
            (k == name).then(|| v.to_string())
        })
    }

    /// A variable as the builder expands it: ENV first, then build arguments in scope.
    pub fn lookup(&self, name: &str) -> Option<String> {
        self.env_value(name)
            .or_else(|| self.args.get(name).cloned().flatten())
    }

    pub fn workdir(&self) -> String {
        self.get("WorkingDir")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .unwrap_or("/")
            .to_string()
    }

    pub fn shell(&self) -> Vec<String> {
        let s = strings(self.get("Shell"));
        if s.is_empty() {
            vec!["/bin/sh".into(), "-c".into()]
        } else {
            s
        }
    }

    pub fn diff_ids(&self) -> Vec<Digest> {
        self.layers.iter().map(|l| l.diff_id.clone()).collect()
    }

    /// The build arguments in scope, as they go into cache keys and RUN's environment.
    pub fn arg_pairs(&self) -> Vec<String> {
        self.args
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
            .collect()
    }

    /// Add a history entry (`empty`: the step made no layer) and stamp the config's time.
    pub fn history(&mut self, created_by: &str, empty: bool) {
        let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let root = self.root();
        root.insert("created".into(), Value::String(now.clone()));
        let mut h = json!({"created": now, "created_by": created_by, "comment": "den build"});
        if empty {
            h["empty_layer"] = Value::Bool(true);
        }
        match root.get_mut("history").and_then(|h| h.as_array_mut()) {
            Some(list) => list.push(h),
            None => {
                root.insert("history".into(), Value::Array(vec![h]));
            }
        }
    }

    pub fn push_layer(&mut self, layer: LayerRef) {
        self.layers.push(layer);
        // The layers are the build's; the config lists exactly them.
        let ids = self.diff_ids();
        self.root()
            .insert("rootfs".into(), json!({"type": "layers", "diff_ids": ids}));
    }

    /// The object at `config.<field>`, made an empty one when it is missing or not an object
    /// (LABEL, EXPOSE, VOLUME add to it).
    pub fn cfg_object(&mut self, field: &str) -> &mut Value {
        let v = self.cfg().entry(field).or_insert_with(|| json!({}));
        if !v.is_object() {
            *v = json!({});
        }
        v
    }
}

/// A base image's config: a JSON object (else the image is refused), whose `config` may be
/// missing or `null` (an empty one then, as docker reads it).
pub fn base_config(bytes: &[u8], digest: &str) -> Result<Value> {
    let bad = |source| crate::image::ImageError::BadConfig {
        digest: digest.to_string(),
        source,
    };
    let mut config: Value = serde_json::from_slice(bytes).map_err(bad)?;
    let Some(root) = config.as_object_mut() else {
        return Err(bad(<serde_json::Error as serde::de::Error>::custom(
            "the image config is not a JSON object",
        ))
        .into());
    };
    if !root.get("config").is_some_and(Value::is_object) {
        root.insert("config".into(), json!({}));
    }
    Ok(config)
}

/// The strings of a JSON array (others left out); empty for anything else.
pub fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_null_or_missing_image_config_is_an_empty_one() {
        for bytes in [
            &br#"{"config":null}"#[..],
            br#"{"os":"linux"}"#,
            br#"{"config":7}"#,
        ] {
            let config = base_config(bytes, "sha256:x").unwrap();
            let mut state = State::image(Digest::of(b""), Vec::new(), config);
            assert_eq!(state.env(), Vec::<String>::new());
            state.cfg().insert("User".into(), json!("app"));
            state.history("USER app", true);
            assert_eq!(state.config["config"]["User"], "app");
            assert_eq!(state.config["history"][0]["created_by"], "USER app");
        }
        assert!(base_config(b"[]", "sha256:x").is_err());
        assert!(base_config(b"null", "sha256:x").is_err());
    }

    #[test]
    fn env_comes_before_build_arguments() {
        let mut s = State::scratch();
        s.args.insert("A".into(), Some("arg".into()));
        s.args.insert("B".into(), Some("arg".into()));
        s.args.insert("C".into(), None);
        s.cfg().insert("Env".into(), json!(["A=env"]));
        assert_eq!(s.lookup("A").as_deref(), Some("env"));
        assert_eq!(s.lookup("B").as_deref(), Some("arg"));
        assert_eq!(s.lookup("C"), None);
        assert_eq!(s.arg_pairs(), ["A=arg", "B=arg"]);
        assert_eq!(s.shell(), ["/bin/sh", "-c"]);
        assert_eq!(s.workdir(), "/");
    }
}
