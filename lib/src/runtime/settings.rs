//! The last touches to a container's spec, from its record: the process settings
//! (`--ulimit`'s rlimits, `--sysctl`, `--shm-size`'s /dev/shm, `--init`) and the hooks
//! ([`super::hooks::prepare`]). Kept apart from [`super::spec::build`] so each concern stays
//! one function over the spec's JSON.

use std::path::Path;

use serde_json::{Value, json};

use super::RuntimeError;
use crate::security::process::Settings;
use crate::store::RunSpec;

/// The annotation that makes the container's first process den's init ([`super::engine`]'s
/// `DenExecutor`), as podman marks `--init` with one of its own.
pub const INIT_ANNOTATION: &str = "den.init";

/// Write `oci`, finished ([`finish`]), as the bundle's `config.json`.
pub fn write_config(
    oci: oci_spec::runtime::Spec,
    s: &RunSpec,
    bundle: &Path,
) -> Result<(), RuntimeError> {
    let oci = finish(oci, s, bundle)?;
    // The spec holds the container's environment (secrets, often): the user's alone.
    let config = bundle.join("config.json");
    let bytes = serde_json::to_vec(&oci).map_err(|e| RuntimeError::Io {
        path: config.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    crate::fs::write_private(&config, &bytes).map_err(|source| {
        RuntimeError::Store(Box::new(crate::store::StoreError::Io {
            path: config.clone(),
            source,
        }))
    })
}

/// `oci` with the record's process settings and hooks, as the JSON den writes.
pub fn finish(
    oci: oci_spec::runtime::Spec,
    s: &RunSpec,
    bundle: &Path,
) -> Result<Value, RuntimeError> {
    let mut spec = serde_json::to_value(&oci).map_err(|e| RuntimeError::Io {
        path: bundle.join("config.json"),
        source: std::io::Error::other(e.to_string()),
    })?;
    apply(&mut spec, &s.process);
    super::hooks::prepare(
        &mut spec,
        &s.hooks,
        bundle,
        super::hooks::wrapper_path().as_deref(),
    )?;
    Ok(spec)
}

/// Put `settings` in `spec`.
fn apply(spec: &mut Value, settings: &Settings) {
    let rlimits = settings.rlimits();
    if !rlimits.is_empty() {
        spec["process"]["rlimits"] = json!(rlimits);
    }
    if !settings.sysctls.is_empty() {
        spec["linux"]["sysctl"] = json!(settings.sysctls);
    }
    if settings.init {
        spec["annotations"][INIT_ANNOTATION] = json!("true");
    }
    let size = format!("size={}k", settings.shm_bytes().div_ceil(1024));
    if let Some(mounts) = spec.get_mut("mounts").and_then(Value::as_array_mut) {
        for m in mounts
            .iter_mut()
            .filter(|m| m["destination"] == "/dev/shm" && m["type"] == "tmpfs")
        {
            if let Some(opts) = m.get_mut("options").and_then(Value::as_array_mut) {
                opts.retain(|o| !o.as_str().is_some_and(|o| o.starts_with("size=")));
                opts.push(json!(size));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::process::Ulimit;

    #[test]
    fn settings_reach_the_spec() {
        let mut spec = json!({
            "process": {"args": ["sh"]},
            "linux": {},
            "mounts": [
                {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                 "options": ["nosuid", "size=65536k"]},
                {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue"}
            ]
        });
        let settings = Settings {
            init: true,
            sysctls: [("net.ipv4.ip_unprivileged_port_start".into(), "80".into())].into(),
            ulimits: vec![Ulimit {
                name: "nofile".into(),
                soft: 10,
                hard: 20,
            }],
            shm_size: Some(1 << 30),
        };
        apply(&mut spec, &settings);
        assert_eq!(
            spec["process"]["rlimits"],
            json!([{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 20}])
        );
        assert_eq!(
            spec["linux"]["sysctl"]["net.ipv4.ip_unprivileged_port_start"],
            "80"
        );
        assert_eq!(spec["annotations"][INIT_ANNOTATION], "true");
        assert_eq!(
            spec["mounts"][0]["options"],
            json!(["nosuid", "size=1048576k"])
        );

        let mut plain = json!({"process": {}, "linux": {}, "mounts": []});
        apply(&mut plain, &Settings::default());
        assert_eq!(plain, json!({"process": {}, "linux": {}, "mounts": []}));
    }
}
