use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use pathrs::flags::OpenFlags;
use pathrs::procfs::{ProcfsBase, ProcfsHandle};
use procfs::ProcError;
use procfs::process::MountInfo;

use super::ControllerType;
use super::controller_type::CONTROLLERS;

#[derive(thiserror::Error, Debug)]
pub enum V1MountPointError {
    #[error("io error: {0}")]
    Io(#[from] std::io::Error),
    #[error("failed to get mountinfo: {0}")]
    MountInfo(ProcError),
    #[error("could not find mountpoint for {subsystem}")]
    NotFound { subsystem: ControllerType },
    #[error(transparent)]
    Pathrs(#[from] pathrs::error::Error),
}

/// den: the entries of this process's mountinfo, parsed as they are read (the one reader of the
/// functions below).
fn mountinfo()
-> Result<impl Iterator<Item = Result<MountInfo, V1MountPointError>>, V1MountPointError> {
    let reader = BufReader::new(ProcfsHandle::new()?.open(
        ProcfsBase::ProcSelf,
        "mountinfo",
        OpenFlags::O_RDONLY | OpenFlags::O_CLOEXEC,
    )?);
    Ok(reader.lines().map(|lr| {
        lr.map_err(V1MountPointError::Io)
            .and_then(|line| MountInfo::from_line(&line).map_err(V1MountPointError::MountInfo))
    }))
}

/// List all cgroup v1 subsystem mount points on the system. This can include unsupported
/// subsystems, comounted controllers and named hierarchies.
pub fn list_subsystem_mount_points() -> Result<Vec<PathBuf>, V1MountPointError> {
    mountinfo()?.try_fold(Vec::new(), |mut mount_points, r| {
        r.map(|m| {
            if m.fs_type == "cgroup" {
                mount_points.push(m.mount_point);
            }
            mount_points
        })
    })
}

/// List the mount points of all currently supported cgroup subsystems.
pub fn list_supported_mount_points() -> Result<HashMap<ControllerType, PathBuf>, V1MountPointError>
{
    let mut mount_paths = HashMap::with_capacity(CONTROLLERS.len());

    for controller in CONTROLLERS {
        if let Ok(mount_point) = get_subsystem_mount_point(controller) {
            mount_paths.insert(controller.to_owned(), mount_point);
        }
    }

    Ok(mount_paths)
}

pub fn get_subsystem_mount_point(subsystem: &ControllerType) -> Result<PathBuf, V1MountPointError> {
    mountinfo()?
        .find_map(|r| match r {
            Err(e) => Some(Err(e)),
            Ok(m) if m.fs_type == "cgroup" && serves(subsystem, &m.mount_point) => {
                Some(Ok(m.mount_point))
            }
            Ok(_) => None,
        })
        .transpose()?
        .ok_or(V1MountPointError::NotFound {
            subsystem: *subsystem,
        })
}

/// den: the mount points of cgroup v1 hierarchies, in mountinfo's order, up to the first line
/// that cannot be read or parsed: what [`get_subsystem_mount_point`] reads, once for every
/// controller (see `Manager::new`).
pub(crate) fn cgroup_mount_points_until_error() -> Vec<PathBuf> {
    let Ok(entries) = mountinfo() else {
        return Vec::new();
    };
    entries
        .map_while(Result::ok)
        .filter(|m| m.fs_type == "cgroup")
        .map(|m| m.mount_point)
        .collect()
}

/// den: whether a cgroup v1 hierarchy mounted at `mount_point` is the one for `subsystem`
/// (`get_subsystem_mount_point`'s match, shared with `Manager::new`).
pub(crate) fn serves(subsystem: &ControllerType, mount_point: &std::path::Path) -> bool {
    // Some systems mount net_prio and net_cls in the same directory
    // other systems mount them in their own directories. This
    // should handle both cases.
    let subsystem_name = subsystem.to_string();
    match subsystem_name.as_str() {
        "net_cls" => ["net_cls,net_prio", "net_prio,net_cls", "net_cls"]
            .iter()
            .any(|s| mount_point.ends_with(s)),
        "net_prio" => ["net_cls,net_prio", "net_prio,net_cls", "net_prio"]
            .iter()
            .any(|s| mount_point.ends_with(s)),
        "cpu" => ["cpu,cpuacct", "cpu"]
            .iter()
            .any(|s| mount_point.ends_with(s)),
        "cpuacct" => ["cpu,cpuacct", "cpuacct"]
            .iter()
            .any(|s| mount_point.ends_with(s)),
        _ => mount_point.ends_with(&subsystem_name),
    }
}
