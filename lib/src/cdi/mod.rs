//! Devices in containers: CDI devices (`--device vendor/class=name`, `--gpus`), host device
//! nodes (`--device HOST[:CONTAINER][:rwm]`) and `--group-add keep-groups`.
//!
//! CDI (the Container Device Interface, what podman and docker 25+ use for GPUs) describes a
//! device as edits to a container: device nodes, mounts, environment, hooks. den reads spec
//! files (JSON or YAML) from `/etc/cdi`, `/var/run/cdi` and `$XDG_CONFIG_HOME/cdi` (default
//! `~/.config/cdi`), in that order: as in the CDI library's cache, a device in a later
//! directory overrides one of the same name in an earlier one, and two files of one directory
//! that define the same device conflict (naming it is an error that names both). A spec that
//! does not parse is an error naming its file and line. Reading is capped ([`MAX_SPEC_BYTES`],
//! [`MAX_SPEC_FILES`]): `/etc/cdi` is the site's and `~/.config/cdi` the user's, but a tool
//! that writes specs may go wrong.
//!
//! Why hand-written types rather than the `container-device-interface` crate: that crate
//! validates through `jsonschema` (a large dependency tree), builds a C library and two command
//! line tools, and uses the archived `serde_yaml`; den needs the spec's data and its checks,
//! about two hundred lines ([`spec`]), and YAML through `serde_norway`.
//!
//! Rootless, a device node cannot be made (a user namespace may not `mknod`): every node, a
//! CDI spec's or `--device`'s, is bound from the host at its container path, and keeps the
//! host's owner and mode. Device cgroup permissions (`rwm`) are recorded and shown by `inspect`
//! but not enforced: that takes a devices cgroup, which rootless containers do not get (podman
//! rootless ignores them the same way). What the container may open is what the user may open.

pub mod spec;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Diagnose;
pub use spec::{ContainerEdits, SpecFile};

/// At most this many bytes are read of a spec file.
pub const MAX_SPEC_BYTES: u64 = 1 << 20;
/// At most this many spec files are read of a directory.
pub const MAX_SPEC_FILES: usize = 256;

/// The cdi seam's errors: bad specs, unknown devices, bad device flags.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("CDI spec {path}{at}: {reason}", path = path.display(), at = at_line(*.line))]
    BadSpec {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("CDI spec {path}: cannot read it", path = path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("CDI spec {path} is larger than {MAX_SPEC_BYTES} bytes", path = path.display())]
    TooLarge { path: PathBuf },
    #[error("invalid CDI device name {0:?} (want vendor/class=name or vendor/class=all)")]
    BadName(String),
    #[error("unknown CDI device {name:?} (specs read: {})", read_list(.read, .dirs))]
    Unknown {
        name: String,
        read: Vec<PathBuf>,
        dirs: Vec<PathBuf>,
    },
    #[error("CDI device {name:?} is defined twice in one directory: {} and {}", .first.display(), .second.display())]
    Conflict {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("CDI device {name:?}: its device node {node} does not exist on this host")]
    MissingNode { name: String, node: String },
    #[error("invalid --device {0:?} (want HOST[:CONTAINER][:rwm] or a CDI name vendor/class=name)")]
    BadDevice(String),
    #[error("--device {path}: not a device node", path = path.display())]
    NotADevice { path: PathBuf },
    #[error("--device {path}: you cannot open it", path = path.display())]
    CannotOpen { path: PathBuf },
    #[error("invalid --gpus {0:?} (want all, a count, or device=ID[,ID])")]
    BadGpus(String),
    #[error("--group-add {0:?}: den supports only keep-groups")]
    BadGroupAdd(String),
}

/// `:LINE` where the parser gave one (a check of a spec that parsed has none).
fn at_line(line: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(":{line}")
    }
}

fn read_list(read: &[PathBuf], dirs: &[PathBuf]) -> String {
    let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    if read.is_empty() {
        return format!("none, in {}", dirs.join(", "));
    }
    read.iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Diagnose for DeviceError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            DeviceError::BadSpec { .. } | DeviceError::TooLarge { .. } => {
                "fix the spec file or move it out of the CDI directories".into()
            }
            DeviceError::Read { .. } => "make the spec file readable, or remove it".into(),
            DeviceError::BadName(_) => "name a CDI device as vendor/class=name, e.g. nvidia.com/gpu=0".into(),
            DeviceError::Unknown { name, .. } if name.starts_with("nvidia.com/gpu=") => {
                "write a CDI spec for the GPUs: nvidia-ctk cdi generate --output=$XDG_CONFIG_HOME/cdi/nvidia.yaml (or ~/.config/cdi/nvidia.yaml), or copy the site's spec (den's docs/cdi/nvidia-example.yaml shows one for drivers under /usr/local/nvidia)".into()
            }
            DeviceError::Unknown { .. } => {
                "put a CDI spec defining it in ~/.config/cdi or /etc/cdi (the device's vendor's tool writes one)".into()
            }
            DeviceError::Conflict { .. } => "remove one of the two definitions".into(),
            DeviceError::MissingNode { .. } => {
                "the spec does not match this host: regenerate it here".into()
            }
            DeviceError::BadDevice(_) => "e.g. --device /dev/fuse, --device /dev/null:/dev/mynull:r, --device nvidia.com/gpu=0".into(),
            DeviceError::NotADevice { .. } => "name a character or block device under /dev".into(),
            DeviceError::CannotOpen { .. } => {
                "a rootless container can use only devices you can open: ask for access (often membership of the group that owns it, then --group-add keep-groups)".into()
            }
            DeviceError::BadGpus(_) => "e.g. --gpus all, --gpus 2, --gpus device=0,1".into(),
            DeviceError::BadGroupAdd(_) => {
                "use --group-add keep-groups to keep your supplementary groups in the container".into()
            }
        })
    }
}

/// The CDI spec directories, lowest precedence first: `/etc/cdi`, `/var/run/cdi`, and
/// `$XDG_CONFIG_HOME/cdi` (else `~/.config/cdi`).
pub fn spec_dirs(env: &dyn crate::config::Env) -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("/etc/cdi"), PathBuf::from("/var/run/cdi")];
    match (env.var("XDG_CONFIG_HOME"), env.var("HOME")) {
        (Some(x), _) => dirs.push(Path::new(&x).join("cdi")),
        (None, Some(h)) => dirs.push(Path::new(&h).join(".config/cdi")),
        (None, None) => {}
    }
    dirs
}

/// The specs found in the CDI directories.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    /// The directories searched, lowest precedence first.
    pub dirs: Vec<PathBuf>,
    pub files: Vec<SpecFile>,
}

impl Registry {
    /// Read every `.json`, `.yaml` and `.yml` file of `dirs` (a missing directory has none).
    pub fn load(dirs: Vec<PathBuf>) -> Result<Registry, DeviceError> {
        let mut files = Vec::new();
        for (priority, dir) in dirs.iter().enumerate() {
            let Ok(rd) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut paths: Vec<PathBuf> = rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.extension()
                        .is_some_and(|e| e == "json" || e == "yaml" || e == "yml")
                })
                .collect();
            paths.sort();
            for path in paths.into_iter().take(MAX_SPEC_FILES) {
                let spec = spec::parse(&path, &read_capped(&path)?)?;
                files.push(SpecFile {
                    path,
                    priority,
                    spec,
                });
            }
        }
        Ok(Registry { dirs, files })
    }

    /// The specs of this process's CDI directories ([`spec_dirs`]).
    pub fn load_default() -> Result<Registry, DeviceError> {
        Registry::load(spec_dirs(&crate::config::ProcessEnv))
    }

    /// Every device's fully qualified name (`vendor/class=name`), sorted.
    pub fn device_names(&self) -> Vec<String> {
        let names: BTreeSet<String> = self
            .files
            .iter()
            .flat_map(|f| {
                f.spec
                    .devices
                    .iter()
                    .map(|d| format!("{}={}", f.spec.kind, d.name))
            })
            .collect();
        names.into_iter().collect()
    }

    /// The file and device index that define `kind=name`: the highest-precedence directory's.
    fn lookup(&self, kind: &str, name: &str) -> Result<Option<(usize, usize)>, DeviceError> {
        let mut best: Option<(usize, usize)> = None;
        for (fi, f) in self.files.iter().enumerate() {
            let Some(di) = (f.spec.kind == kind)
                .then(|| f.spec.devices.iter().position(|d| d.name == name))
                .flatten()
            else {
                continue;
            };
            match best {
                Some((bf, _)) if self.files[bf].priority == f.priority => {
                    return Err(DeviceError::Conflict {
                        name: format!("{kind}={name}"),
                        first: self.files[bf].path.clone(),
                        second: f.path.clone(),
                    });
                }
                _ => best = Some((fi, di)),
            }
        }
        Ok(best)
    }

    /// The edits that the devices `names` ask for, in order: each device's, then (once per
    /// spec file) its spec's own, as the CDI library applies them. `vendor/class=all` is every
    /// device of the kind. Every host device node must exist.
    pub fn resolve(&self, names: &[String]) -> Result<ContainerEdits, DeviceError> {
        let mut found: Vec<(usize, usize)> = Vec::new();
        for qualified in names {
            let (kind, name) = split_name(qualified)?;
            let unknown = || DeviceError::Unknown {
                name: qualified.clone(),
                read: self.files.iter().map(|f| f.path.clone()).collect(),
                dirs: self.dirs.clone(),
            };
            let wanted: Vec<String> = if name == "all" {
                let all: BTreeSet<String> = self
                    .files
                    .iter()
                    .filter(|f| f.spec.kind == kind)
                    .flat_map(|f| f.spec.devices.iter().map(|d| d.name.clone()))
                    .collect();
                all.into_iter().collect()
            } else {
                vec![name.to_string()]
            };
            if wanted.is_empty() {
                return Err(unknown());
            }
            for w in wanted {
                let at = self.lookup(kind, &w)?.ok_or_else(unknown)?;
                if !found.contains(&at) {
                    found.push(at);
                }
            }
        }
        let mut edits = ContainerEdits::default();
        let mut specs_done = Vec::new();
        for (fi, di) in found {
            let f = &self.files[fi];
            let device = &f.spec.devices[di];
            let qualified = format!("{}={}", f.spec.kind, device.name);
            append(&mut edits, &device.container_edits, &qualified)?;
            if !specs_done.contains(&fi) {
                specs_done.push(fi);
                append(&mut edits, &f.spec.container_edits, &qualified)?;
            }
        }
        Ok(edits)
    }
}

/// Read at most [`MAX_SPEC_BYTES`] of a spec file.
fn read_capped(path: &Path) -> Result<String, DeviceError> {
    use std::io::Read;
    let read = |source| DeviceError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read)?;
    let mut text = String::new();
    file.take(MAX_SPEC_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(read)?;
    if text.len() as u64 > MAX_SPEC_BYTES {
        return Err(DeviceError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(text)
}

/// `vendor/class=name` as (kind, name).
fn split_name(qualified: &str) -> Result<(&str, &str), DeviceError> {
    match qualified.split_once('=') {
        Some((kind, name)) if kind.contains('/') && !name.is_empty() => Ok((kind, name)),
        _ => Err(DeviceError::BadName(qualified.into())),
    }
}

/// Add `more` to `edits`, leaving out what is there already; a device node must exist.
fn append(
    edits: &mut ContainerEdits,
    more: &ContainerEdits,
    device: &str,
) -> Result<(), DeviceError> {
    fn extend<T: Clone + PartialEq>(to: &mut Vec<T>, from: &[T]) {
        for x in from {
            if !to.contains(x) {
                to.push(x.clone());
            }
        }
    }
    for n in &more.device_nodes {
        if std::fs::metadata(n.host()).is_err() {
            return Err(DeviceError::MissingNode {
                name: device.into(),
                node: n.host().into(),
            });
        }
    }
    extend(&mut edits.env, &more.env);
    extend(&mut edits.device_nodes, &more.device_nodes);
    extend(&mut edits.mounts, &more.mounts);
    extend(&mut edits.hooks, &more.hooks);
    extend(&mut edits.additional_gids, &more.additional_gids);
    Ok(())
}

/// A host device node bound into the container (`--device HOST[:CONTAINER][:rwm]`), in
/// docker's inspect shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostDevice {
    pub path_on_host: PathBuf,
    pub path_in_container: String,
    pub cgroup_permissions: String,
}

/// The devices a container asks for, as its record keeps them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRequest {
    /// `--device HOST...`.
    #[serde(default)]
    pub host: Vec<HostDevice>,
    /// `--device vendor/class=name` and `--gpus`'s, fully qualified.
    #[serde(default)]
    pub cdi: Vec<String>,
    /// `--group-add keep-groups`.
    #[serde(default)]
    pub keep_groups: bool,
}

impl DeviceRequest {
    /// `--device`, `--gpus` and `--group-add` parsed; host devices checked (each must be a
    /// device node this user can open), CDI names checked for their shape only.
    pub fn parse(
        devices: &[String],
        gpus: Option<&str>,
        group_add: &[String],
    ) -> Result<DeviceRequest, DeviceError> {
        let mut req = DeviceRequest::default();
        for d in devices {
            if d.contains('=') {
                split_name(d)?;
                req.cdi.push(d.clone());
            } else {
                req.host.push(host_device(d)?);
            }
        }
        if let Some(g) = gpus {
            req.cdi.extend(gpu_names(g)?);
        }
        for g in group_add {
            match g.as_str() {
                "keep-groups" => req.keep_groups = true,
                _ => return Err(DeviceError::BadGroupAdd(g.clone())),
            }
        }
        Ok(req)
    }
}

/// `HOST[:CONTAINER][:PERMISSIONS]`, as docker reads it (`HOST:rw` is host and permissions).
fn host_device(flag: &str) -> Result<HostDevice, DeviceError> {
    let bad = || DeviceError::BadDevice(flag.into());
    let perms_like = |s: &str| !s.is_empty() && s.chars().all(|c| "rwm".contains(c));
    let parts: Vec<&str> = flag.split(':').collect();
    let (host, container, perms) = match parts[..] {
        [h] => (h, h, "rwm"),
        [h, p] if perms_like(p) => (h, h, p),
        [h, c] => (h, c, "rwm"),
        [h, c, p] if perms_like(p) => (h, c, p),
        _ => return Err(bad()),
    };
    if !host.starts_with('/') || !container.starts_with('/') {
        return Err(bad());
    }
    let path = PathBuf::from(host);
    check_openable(&path)?;
    Ok(HostDevice {
        path_on_host: path,
        path_in_container: container.into(),
        cgroup_permissions: perms.into(),
    })
}

/// A character or block device this process may read or write.
fn check_openable(path: &Path) -> Result<(), DeviceError> {
    use nix::unistd::{AccessFlags, access};
    use std::os::unix::fs::FileTypeExt;
    let ft = std::fs::metadata(path)
        .map_err(|_| DeviceError::NotADevice {
            path: path.to_path_buf(),
        })?
        .file_type();
    if !ft.is_char_device() && !ft.is_block_device() {
        return Err(DeviceError::NotADevice {
            path: path.to_path_buf(),
        });
    }
    if access(path, AccessFlags::R_OK).is_err() && access(path, AccessFlags::W_OK).is_err() {
        return Err(DeviceError::CannotOpen {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// The NVIDIA CDI kind `--gpus` maps to (what `nvidia-ctk cdi generate` writes).
pub const GPU_KIND: &str = "nvidia.com/gpu";

/// `--gpus all|N|device=ID[,ID]` (docker's, also `count=N` and quoted) as CDI names.
fn gpu_names(flag: &str) -> Result<Vec<String>, DeviceError> {
    let bad = || DeviceError::BadGpus(flag.into());
    let v = flag.trim_matches('"');
    let name = |id: &str| format!("{GPU_KIND}={id}");
    let count = |n: &str| -> Result<Vec<String>, DeviceError> {
        match n {
            "all" | "-1" => Ok(vec![name("all")]),
            n => {
                let n: u32 = n.parse().map_err(|_| bad())?;
                if n == 0 || n > 1024 {
                    return Err(bad());
                }
                Ok((0..n).map(|i| name(&i.to_string())).collect())
            }
        }
    };
    if let Some(ids) = v.strip_prefix("device=") {
        let ids: Vec<&str> = ids.split(',').collect();
        if ids.iter().any(|i| !spec_name_ok(i)) {
            return Err(bad());
        }
        return Ok(ids.into_iter().map(name).collect());
    }
    count(v.strip_prefix("count=").unwrap_or(v))
}

fn spec_name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
}

/// What a `den info` shows of CDI: the directories and the devices found (or why none).
pub fn summary() -> (Vec<PathBuf>, Result<Vec<String>, DeviceError>) {
    let dirs = spec_dirs(&crate::config::ProcessEnv);
    let devices = Registry::load(dirs.clone()).map(|r| r.device_names());
    (dirs, devices)
}

/// The host device nodes of CDI edits, as (host path, container path), in order.
pub fn node_binds(edits: &ContainerEdits) -> Vec<(PathBuf, String)> {
    edits
        .device_nodes
        .iter()
        .map(|n| (PathBuf::from(n.host()), n.path.clone()))
        .collect()
}

/// Edits grouped by hook stage (for the OCI spec's `hooks` object).
pub fn hooks_by_stage(edits: &ContainerEdits) -> BTreeMap<String, Vec<spec::Hook>> {
    let mut out: BTreeMap<String, Vec<spec::Hook>> = BTreeMap::new();
    for h in &edits.hooks {
        out.entry(h.hook_name.clone()).or_default().push(h.clone());
    }
    out
}

#[cfg(test)]
mod tests;
