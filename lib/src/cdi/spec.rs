//! A CDI spec file as data: the subset of the Container Device Interface spec (versions 0.3 to
//! 0.8, <https://github.com/cncf-tags/container-device-interface/blob/main/SPEC.md>) that a
//! rootless runtime can apply, parsed from JSON or YAML and checked once, here.
//!
//! Fields den cannot apply rootless are still read so a valid spec parses (`intelRdt`,
//! `netDevices`, a node's `major`/`minor`/`uid`/`gid`: a user namespace cannot make device
//! nodes, so nodes are bound from the host and keep the host's numbers and owner); unknown
//! fields are ignored, as the CDI library's own parser ignores them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::DeviceError;

/// The OCI hook stages a CDI hook may name.
pub const HOOK_STAGES: &[&str] = &[
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// A spec file: a kind (`vendor/class`) and its devices.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    pub cdi_version: String,
    pub kind: String,
    #[serde(default)]
    pub devices: Vec<Device>,
    #[serde(default)]
    pub container_edits: ContainerEdits,
}

/// One device of a spec, by its name within the kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    pub name: String,
    #[serde(default)]
    pub container_edits: ContainerEdits,
}

/// What a device (or every device of a spec) changes in a container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerEdits {
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub device_nodes: Vec<DeviceNode>,
    #[serde(default)]
    pub hooks: Vec<Hook>,
    #[serde(default)]
    pub mounts: Vec<Mount>,
    #[serde(default)]
    pub additional_gids: Vec<u32>,
}

/// A device node: its path in the container and, where it differs, on the host.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceNode {
    pub path: String,
    #[serde(default)]
    pub host_path: Option<String>,
    /// `rwm` or a subset: a device cgroup rule, which a runtime without cgroups cannot set.
    #[serde(default)]
    pub permissions: Option<String>,
}

impl DeviceNode {
    /// The node on the host.
    pub fn host(&self) -> &str {
        self.host_path.as_deref().unwrap_or(&self.path)
    }
}

/// A mount: a host path at a container path, with the spec's mount options.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Mount {
    pub host_path: String,
    pub container_path: String,
    #[serde(default)]
    pub options: Vec<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

/// An OCI hook with the stage it runs at.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hook {
    pub hook_name: String,
    pub path: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub timeout: Option<i64>,
}

/// Parse a spec file's text (JSON by a `.json` name, else YAML) and check it. A parse error
/// names the file and its line.
pub fn parse(path: &Path, text: &str) -> Result<Spec, DeviceError> {
    let bad = |line: usize, reason: String| DeviceError::BadSpec {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let spec: Spec = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(text).map_err(|e| bad(e.line(), e.to_string()))?
    } else {
        serde_norway::from_str(text).map_err(|e| {
            let line = e.location().map_or(0, |l| l.line());
            bad(line, e.to_string())
        })?
    };
    check(&spec).map_err(|reason| bad(0, reason))?;
    Ok(spec)
}

/// The checks the CDI library makes of a spec that parsed: a supported version, a valid kind
/// and device names, absolute container paths, known hook stages.
fn check(spec: &Spec) -> Result<(), String> {
    let version = spec.cdi_version.trim_start_matches('v');
    let minor = version
        .strip_prefix("0.")
        .and_then(|r| r.split('.').next())
        .and_then(|m| m.parse::<u32>().ok());
    if !matches!(minor, Some(3..=8)) {
        return Err(format!(
            "cdiVersion {:?} is not one den reads (0.3.0 to 0.8.0)",
            spec.cdi_version
        ));
    }
    let (vendor, class) = spec
        .kind
        .split_once('/')
        .ok_or_else(|| format!("kind {:?} is not vendor/class", spec.kind))?;
    let vendor_ok = vendor.split('.').all(|p| name_ok(p, "-"));
    if !vendor_ok || !name_ok(class, "-_.") {
        return Err(format!("kind {:?} is not vendor/class", spec.kind));
    }
    check_edits(&spec.container_edits)?;
    for d in &spec.devices {
        if !name_ok(&d.name, "-_.:") {
            return Err(format!("device name {:?} is not valid", d.name));
        }
        check_edits(&d.container_edits)?;
    }
    Ok(())
}

/// Letters and digits, and `extra` inside (not first or last).
fn name_ok(s: &str, extra: &str) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric();
    !s.is_empty()
        && s.starts_with(ok)
        && s.ends_with(ok)
        && s.chars().all(|c| ok(c) || extra.contains(c))
}

fn check_edits(e: &ContainerEdits) -> Result<(), String> {
    for n in &e.device_nodes {
        if !n.path.starts_with("/dev/") || !Path::new(n.host()).is_absolute() {
            return Err(format!("device node {:?} is not a path under /dev", n.path));
        }
    }
    for m in &e.mounts {
        if !Path::new(&m.container_path).is_absolute() || !Path::new(&m.host_path).is_absolute() {
            return Err(format!(
                "mount {:?} -> {:?} needs absolute paths",
                m.host_path, m.container_path
            ));
        }
    }
    for h in &e.hooks {
        if !HOOK_STAGES.contains(&h.hook_name.as_str()) || !Path::new(&h.path).is_absolute() {
            return Err(format!(
                "hook {:?} at {:?}: the stage must be one of {} and the path absolute",
                h.path,
                h.hook_name,
                HOOK_STAGES.join(", ")
            ));
        }
    }
    if let Some(e) = e.env.iter().find(|e| !e.contains('=')) {
        return Err(format!("env {e:?} is not KEY=VALUE"));
    }
    Ok(())
}

/// A spec file with where it was read from.
#[derive(Debug, Clone)]
pub struct SpecFile {
    pub path: PathBuf,
    /// The index of its directory in the search order (later ones take precedence).
    pub priority: usize,
    pub spec: Spec,
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "cdiVersion: 0.6.0\nkind: vendor.test/dev\ndevices:\n  - name: a\n    containerEdits:\n      deviceNodes:\n        - path: /dev/a\n          hostPath: /dev/null\ncontainerEdits:\n  env: [X=1]\n";

    #[test]
    fn yaml_and_json_parse() {
        let s = parse(Path::new("/s/x.yaml"), YAML).unwrap();
        assert_eq!(s.kind, "vendor.test/dev");
        assert_eq!(
            s.devices[0].container_edits.device_nodes[0].host(),
            "/dev/null"
        );
        assert_eq!(s.container_edits.env, ["X=1"]);
        let json = r#"{"cdiVersion":"0.8.0","kind":"a.b/c","devices":[{"name":"0",
            "containerEdits":{"mounts":[{"hostPath":"/h","containerPath":"/c","options":["ro"]}],
            "hooks":[{"hookName":"createContainer","path":"/bin/true"}]}}],"extra":1}"#;
        let s = parse(Path::new("/s/x.json"), json).unwrap();
        assert_eq!(s.devices[0].container_edits.mounts[0].options, ["ro"]);
    }

    #[test]
    fn a_bad_spec_names_its_file_and_line() {
        let text = "cdiVersion: 0.6.0\nkind: vendor.test/dev\ndevices:\n  - name: a\n   bad: [\n";
        let e = parse(Path::new("/s/bad.yaml"), text).unwrap_err();
        match &e {
            DeviceError::BadSpec { path, line, .. } => {
                assert_eq!(path, Path::new("/s/bad.yaml"));
                assert!(*line >= 4, "{e}");
            }
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().contains("/s/bad.yaml:"), "{e}");
        let e = parse(Path::new("/s/b.json"), "{\n\"kind\": 1\n}").unwrap_err();
        assert!(e.to_string().contains("/s/b.json:2"), "{e}");
    }

    #[test]
    fn checks_refuse_what_the_cdi_library_refuses() {
        for (text, why) in [
            (YAML.replace("0.6.0", "1.0.0"), "cdiVersion"),
            (YAML.replace("vendor.test/dev", "nokind"), "kind"),
            (YAML.replace("name: a", "name: \"a b\""), "device name"),
            (YAML.replace("path: /dev/a", "path: /etc/a"), "device node"),
            (YAML.replace("X=1", "X"), "KEY=VALUE"),
        ] {
            let e = parse(Path::new("/s/x.yaml"), &text).unwrap_err();
            assert!(e.to_string().contains(why), "{why}: {e}");
        }
    }
}
