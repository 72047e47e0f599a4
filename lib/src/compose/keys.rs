//! The keys den compose implements, as a schema of the Compose file's shape. Any other key is
//! refused with its path (`services.web.foo: den compose does not support this key`): a key
//! den ignored would leave the user believing a setting held. `x-` keys are the user's own and
//! are allowed wherever a mapping of keys is.

use serde_norway::Value;

use super::ComposeError;
use super::load::key_text;

/// What a value may hold.
pub enum Shape {
    /// Anything (a scalar, or a structure whose keys are data: environment, labels, args).
    Any,
    /// A mapping of these keys (and `x-` keys); a scalar passes (a short form), checked when
    /// typed.
    Fields(&'static [(&'static str, Shape)]),
    /// A mapping of the user's names, or a list: each value or item that is a mapping has
    /// this shape.
    Each(&'static Shape),
}

use Shape::{Any, Each, Fields};

const BUILD: Shape = Fields(&[
    ("context", Any),
    ("dockerfile", Any),
    ("args", Any),
    ("target", Any),
    ("labels", Any),
    ("no_cache", Any),
    ("pull", Any),
]);
const HEALTHCHECK: Shape = Fields(&[
    ("test", Any),
    ("interval", Any),
    ("timeout", Any),
    ("retries", Any),
    ("start_period", Any),
    ("start_interval", Any),
    ("disable", Any),
]);
const DEPENDS: Shape = Fields(&[("condition", Any), ("required", Any), ("restart", Any)]);
const ATTACH: Shape = Fields(&[("aliases", Any), ("ipv4_address", Any)]);
const PORT: Shape = Fields(&[
    ("target", Any),
    ("published", Any),
    ("host_ip", Any),
    ("protocol", Any),
    ("mode", Any),
]);
const MOUNT: Shape = Fields(&[
    ("type", Any),
    ("source", Any),
    ("target", Any),
    ("read_only", Any),
    ("volume", Fields(&[("nocopy", Any)])),
    ("bind", Fields(&[("create_host_path", Any)])),
    ("tmpfs", Fields(&[("size", Any)])),
]);
const FILE_USE: Shape = Fields(&[("source", Any), ("target", Any)]);
const ENV_FILE: Shape = Fields(&[("path", Any), ("required", Any)]);
const DEPLOY: Shape = Fields(&[("replicas", Any)]);

const SERVICE: Shape = Fields(&[
    ("image", Any),
    ("build", BUILD),
    ("command", Any),
    ("entrypoint", Any),
    ("environment", Any),
    ("env_file", Each(&ENV_FILE)),
    ("ports", Each(&PORT)),
    ("expose", Any),
    ("volumes", Each(&MOUNT)),
    ("tmpfs", Any),
    ("networks", Each(&ATTACH)),
    ("network_mode", Any),
    ("depends_on", Each(&DEPENDS)),
    ("healthcheck", HEALTHCHECK),
    ("restart", Any),
    ("user", Any),
    ("working_dir", Any),
    ("labels", Any),
    ("init", Any),
    ("stop_signal", Any),
    ("stop_grace_period", Any),
    ("deploy", DEPLOY),
    ("extra_hosts", Any),
    ("container_name", Any),
    ("hostname", Any),
    ("tty", Any),
    ("stdin_open", Any),
    ("cap_add", Any),
    ("cap_drop", Any),
    ("privileged", Any),
    ("read_only", Any),
    ("dns", Any),
    ("configs", Each(&FILE_USE)),
    ("secrets", Each(&FILE_USE)),
    ("profiles", Any),
    ("pull_policy", Any),
]);

const NETWORK: Shape = Fields(&[
    ("driver", Any),
    ("external", Any),
    ("name", Any),
    ("labels", Any),
]);
const VOLUME: Shape = Fields(&[
    ("driver", Any),
    ("external", Any),
    ("name", Any),
    ("labels", Any),
]);
const FILE: Shape = Fields(&[("file", Any), ("name", Any)]);

/// The whole file.
pub const TOP: Shape = Fields(&[
    ("name", Any),
    ("services", Each(&SERVICE)),
    ("networks", Each(&NETWORK)),
    ("volumes", Each(&VOLUME)),
    ("configs", Each(&FILE)),
    ("secrets", Each(&FILE)),
]);

/// Refuse the first key of `tree` that den compose does not implement.
pub fn check(tree: &Value) -> Result<(), ComposeError> {
    walk(tree, &TOP, "")
}

fn walk(v: &Value, shape: &Shape, path: &str) -> Result<(), ComposeError> {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match (shape, v) {
        (Fields(fields), Value::Mapping(map)) => {
            for (k, val) in map {
                let key = key_text(k);
                if key.starts_with("x-") {
                    continue;
                }
                let Some((_, inner)) = fields.iter().find(|(name, _)| *name == key) else {
                    return Err(ComposeError::Unsupported(join(&key)));
                };
                walk(val, inner, &join(&key))?;
            }
        }
        (Each(inner), Value::Mapping(map)) => {
            for (k, val) in map {
                walk(val, inner, &join(&key_text(k)))?;
            }
        }
        (Each(inner), Value::Sequence(items)) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, inner, &format!("{path}[{i}]"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_str(s: &str) -> Result<(), ComposeError> {
        check(&serde_norway::from_str(s).unwrap())
    }

    #[test]
    fn unknown_keys_are_named_by_their_path() {
        let e = check_str("services:\n  web:\n    image: a\n    foo: 1\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "services.web.foo: den compose does not support this key"
        );
        let e = check_str("services:\n  web:\n    healthcheck: {test: x, bogus: 2}\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "services.web.healthcheck.bogus: den compose does not support this key"
        );
        let e = check_str("services:\n  web:\n    volumes:\n      - {type: bind, source: a, target: /b, consistency: x}\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("services.web.volumes[0].consistency:"),
            "{e}"
        );
        let e = check_str("services:\n  web:\n    deploy: {resources: {}}\n").unwrap_err();
        assert!(
            e.to_string().starts_with("services.web.deploy.resources:"),
            "{e}"
        );
        assert!(check_str("include: [a.yaml]\n").is_err());
    }

    #[test]
    fn known_keys_and_extensions_pass() {
        check_str(
            "x-common: &c {a: 1}\nservices:\n  web:\n    image: a\n    x-note: hi\n    networks: {front: {aliases: [w]}}\n    depends_on: {db: {condition: service_healthy}}\n    environment: {ANY_KEY: 1}\n  db:\n    build: .\n    ports: ['5432:5432', {target: 80}]\nvolumes: {data: {labels: {a: b}}}\nnetworks: {front: null}\n",
        )
        .unwrap();
    }
}
