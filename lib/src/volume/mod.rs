//! Volumes: docker's mount flags, named volumes on disk, and copy-up.
//!
//! Entry points: [`parse_volume_flag`] (`-v`), [`parse_mount_flag`] (`--mount`) and
//! [`parse_tmpfs_flag`] (`--tmpfs`), which all produce a [`MountSpec`]; [`prepare_bind`] (create
//! a missing bind source, or refuse it); [`oci_options`] (the OCI runtime spec's mount options);
//! [`Volumes`] (named volumes: create, list, inspect, remove); [`copy_up`] (seed an empty volume
//! with the image's content).
//!
//! - `flags`: the three flags, with docker's rules written down in its doc;
//! - `mount`: a parsed flag made into a mount (the bind source, the OCI options);
//! - `store`: the named volumes on disk, docker's layout (in its doc), safe against concurrent
//!   dens;
//! - `copyup`: seeding a new volume from the image, over the shared tree copy ([`crate::fs`]).

mod copyup;
mod flags;
mod mount;
mod store;

use std::io;
use std::path::{Path, PathBuf};

pub use copyup::copy_up;
pub use flags::{
    MountKind, MountSpec, clean_path, parse_mount_flag, parse_tmpfs_flag, parse_volume_flag,
};
pub use mount::{oci_options, prepare_bind};
pub use store::{Volume, Volumes};

/// What went wrong with a mount flag or a volume. Every variant carries the input that failed.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// A `-v`/`--volume` flag that does not parse.
    #[error("invalid volume specification {spec:?}: {reason}")]
    BadSpec { spec: String, reason: String },
    /// A `--mount` flag that does not parse.
    #[error("invalid mount specification {spec:?}: {reason}")]
    BadMount { spec: String, reason: String },
    /// A `--tmpfs` flag that does not parse.
    #[error("invalid tmpfs specification {spec:?}: {reason}")]
    BadTmpfs { spec: String, reason: String },
    /// A volume name docker's local driver would refuse.
    #[error("invalid volume name {name:?}: {reason}")]
    BadName { name: String, reason: String },
    /// `--mount type=bind` with a source that does not exist.
    #[error("bind source path does not exist: {}", path.display())]
    BindSourceMissing { path: PathBuf },
    /// Removal refused: containers use the volume.
    #[error("volume {name} is in use by {}", containers.join(", "))]
    InUse {
        name: String,
        containers: Vec<String>,
    },
    #[error("no such volume: {name}")]
    NotFound { name: String },
    /// The volume's place is taken by something that is not a volume directory.
    #[error("cannot create volume {name}: {} exists and is not a directory", path.display())]
    Exists { name: String, path: PathBuf },
    #[error("cannot access {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl VolumeError {
    /// One sentence on how to fix it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            VolumeError::BadSpec { .. } => {
                "write it as -v SOURCE:DESTINATION[:OPTIONS], where SOURCE \
                 is a host path starting with / or ./ or a volume name, DESTINATION an absolute \
                 path in the container, and OPTIONS e.g. ro"
                    .into()
            }
            VolumeError::BadMount { .. } => "write it as --mount type=bind|volume|tmpfs,\
                 source=SOURCE,target=/path[,readonly]"
                .into(),
            VolumeError::BadTmpfs { .. } => {
                "write it as --tmpfs /path[:size=64m,mode=1777,exec]".into()
            }
            VolumeError::BadName { .. } => "a volume name is at least two letters, digits, '_', \
                 '.' or '-', starting with a letter or digit; to mount a host directory, start \
                 the path with / or ./"
                .into(),
            VolumeError::BindSourceMissing { path } => format!(
                "create it first (mkdir -p {}), or use -v, which creates a missing directory",
                path.display()
            ),
            VolumeError::InUse { containers, .. } => format!(
                "remove the container(s) using it first (den rm -f {}), or force the removal",
                containers.join(" ")
            ),
            VolumeError::NotFound { .. } => "list the volumes with `den volume ls`".into(),
            VolumeError::Exists { path, .. } => {
                format!("move {} out of den's volume directory", path.display())
            }
            VolumeError::Io { path, .. } => format!(
                "check that {} exists and that you may read and write it",
                path.display()
            ),
        })
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> VolumeError + '_ {
    move |source| VolumeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn is_not_found(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_for_every_variant() {
        let errs = [
            VolumeError::BadSpec {
                spec: "x".into(),
                reason: "r".into(),
            },
            VolumeError::BadMount {
                spec: "x".into(),
                reason: "r".into(),
            },
            VolumeError::BadTmpfs {
                spec: "x".into(),
                reason: "r".into(),
            },
            VolumeError::BadName {
                name: "x".into(),
                reason: "r".into(),
            },
            VolumeError::BindSourceMissing { path: "/x".into() },
            VolumeError::InUse {
                name: "x".into(),
                containers: vec!["c".into()],
            },
            VolumeError::NotFound { name: "x".into() },
            VolumeError::Exists {
                name: "x".into(),
                path: "/v/x".into(),
            },
            VolumeError::Io {
                path: "/x".into(),
                source: io::Error::other("boom"),
            },
        ];
        for e in errs {
            assert!(e.hint().is_some_and(|h| !h.is_empty()), "{e}");
        }
    }
}
