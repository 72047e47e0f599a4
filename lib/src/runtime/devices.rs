//! A container's devices in its OCI spec: `--device` host nodes and the CDI devices' edits
//! (resolved again from the specs at every start, as podman does at create: a spec the
//! vendor's tool rewrote after a driver update applies at the next start).
//!
//! Every device node is bound from the host (see [`crate::cdi`]: a user namespace cannot make
//! one) and is not listed in `linux.devices`: libcontainer, rootless, would bind each listed
//! node again at its host path. A CDI spec's `additionalGids` are host groups, which a user
//! namespace cannot give (setgroups(2) takes only mapped ids); `--group-add keep-groups`
//! keeps the user's own instead.

use std::path::PathBuf;

use oci_spec::runtime::Spec;
use serde_json::json;

use super::RuntimeError;
use super::spec::{Bind, SpecMount};
use crate::cdi::{ContainerEdits, DeviceRequest, Registry};

/// The CDI edits of `req`'s devices (none without CDI devices: no spec is read then).
pub fn edits(req: &DeviceRequest) -> Result<ContainerEdits, RuntimeError> {
    if req.cdi.is_empty() {
        return Ok(ContainerEdits::default());
    }
    let registry = Registry::load_default().map_err(RuntimeError::Device)?;
    registry.resolve(&req.cdi).map_err(RuntimeError::Device)
}

/// The device nodes to bind: `--device`'s, then the CDI devices'.
pub fn binds(req: &DeviceRequest, edits: &ContainerEdits) -> Vec<Bind> {
    let host = req
        .host
        .iter()
        .map(|d| (d.path_on_host.clone(), d.path_in_container.clone()));
    host.chain(crate::cdi::node_binds(edits))
        .map(|(source, destination)| Bind {
            source,
            destination,
            read_only: false,
        })
        .collect()
}

/// The CDI devices' mounts; a bind is recursive and private unless the spec says otherwise.
pub fn mounts(edits: &ContainerEdits) -> Vec<SpecMount> {
    edits
        .mounts
        .iter()
        .map(|m| {
            let kind = match m.kind.as_deref() {
                None | Some("bind") => "none",
                Some(k) => k,
            };
            let mut options = m.options.clone();
            if kind == "none" && !options.iter().any(|o| o == "bind" || o == "rbind") {
                options.push("rbind".into());
            }
            if kind == "none" && !options.iter().any(|o| o.ends_with("private")) {
                options.push("rprivate".into());
            }
            SpecMount {
                destination: m.container_path.clone(),
                kind: kind.into(),
                source: PathBuf::from(&m.host_path),
                options,
            }
        })
        .collect()
}

/// The environment with the CDI devices' variables set (a device's value replaces the
/// image's and the user's, as the CDI library's edits do).
pub fn env(mut env: Vec<String>, edits: &ContainerEdits) -> Vec<String> {
    for kv in &edits.env {
        let key = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
        env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
        env.push(kv.clone());
    }
    env
}

/// Append the CDI devices' hooks to the spec's, by stage.
pub fn add_hooks(oci: Spec, edits: &ContainerEdits) -> Spec {
    if edits.hooks.is_empty() {
        return oci;
    }
    let mut v = serde_json::to_value(&oci).expect("a spec serializes");
    for (stage, hooks) in crate::cdi::hooks_by_stage(edits) {
        let list = &mut v["hooks"][stage.as_str()];
        if !list.is_array() {
            *list = json!([]);
        }
        for h in hooks {
            let mut hook = json!({ "path": h.path });
            if !h.args.is_empty() {
                hook["args"] = json!(h.args);
            }
            if !h.env.is_empty() {
                hook["env"] = json!(h.env);
            }
            if let Some(t) = h.timeout {
                hook["timeout"] = json!(t);
            }
            if let Some(a) = list.as_array_mut() {
                a.push(hook);
            }
        }
    }
    // Each hook has the fields a spec's hook has (its path checked absolute when read).
    serde_json::from_value(v).expect("CDI hooks are OCI hooks")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cdi::spec::{Hook, Mount};

    fn edits() -> ContainerEdits {
        ContainerEdits {
            env: vec!["A=cdi".into()],
            mounts: vec![Mount {
                host_path: "/h".into(),
                container_path: "/c".into(),
                options: vec!["ro".into()],
                kind: None,
            }],
            hooks: vec![Hook {
                hook_name: "createContainer".into(),
                path: "/bin/true".into(),
                args: vec!["true".into()],
                env: vec![],
                timeout: Some(5),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn edits_become_mounts_env_and_hooks() {
        let e = edits();
        let m = mounts(&e);
        assert_eq!(m[0].kind, "none");
        assert_eq!(m[0].options, ["ro", "rbind", "rprivate"]);
        assert_eq!(env(vec!["A=1".into(), "B=2".into()], &e), ["B=2", "A=cdi"]);
        let oci: Spec = serde_json::from_value(json!({"ociVersion": "1.0.2",
            "hooks": {"createContainer": [{"path": "/first"}]}}))
        .unwrap();
        let oci = add_hooks(oci, &e);
        let cc = oci
            .hooks()
            .as_ref()
            .unwrap()
            .create_container()
            .clone()
            .unwrap();
        assert_eq!(cc.len(), 2, "appended after the spec's own");
        assert_eq!(cc[1].path(), &PathBuf::from("/bin/true"));
        assert_eq!(cc[1].timeout(), Some(5));
    }

    #[test]
    fn host_devices_bind_before_cdi_nodes() {
        let req = DeviceRequest {
            host: vec![crate::cdi::HostDevice {
                path_on_host: "/dev/null".into(),
                path_in_container: "/dev/mynull".into(),
                cgroup_permissions: "r".into(),
            }],
            ..Default::default()
        };
        let e = ContainerEdits {
            device_nodes: vec![crate::cdi::spec::DeviceNode {
                path: "/dev/x".into(),
                host_path: Some("/dev/zero".into()),
                permissions: None,
            }],
            ..Default::default()
        };
        let b = binds(&req, &e);
        assert_eq!(b[0].destination, "/dev/mynull");
        assert_eq!(b[1].source, PathBuf::from("/dev/zero"));
    }
}
