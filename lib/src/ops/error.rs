//! The error every verb returns: one variant per seam, each the seam's own error unchanged
//! (its message, hint and exit code are the seam's). `ops` is the one module that combines
//! seams for a verb, so the union lives here, above them all; no seam below names it (a seam
//! that calls another wraps that one's error in its own enum, see [`crate::error`]).

use crate::error::{Diagnose, EXIT_DEN, Reported};

/// Every error a verb returns to the binaries.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Reference(#[from] crate::image::ReferenceError),
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Containers(#[from] crate::store::ContainersError),
    #[error(transparent)]
    Images(#[from] crate::store::ImagesError),
    #[error(transparent)]
    Unpack(#[from] crate::unpack::UnpackError),
    #[error(transparent)]
    Userns(#[from] crate::userns::UsernsError),
    #[error(transparent)]
    Runtime(#[from] crate::runtime::RuntimeError),
    #[error(transparent)]
    Flag(#[from] crate::runtime::FlagError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Sys(#[from] crate::sys::SysError),
    #[error(transparent)]
    Net(#[from] crate::net::NetError),
    #[error(transparent)]
    Build(#[from] crate::build::BuildError),
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
    #[error(transparent)]
    Archive(#[from] crate::archive::ArchiveError),
    #[error(transparent)]
    Security(#[from] crate::security::SecurityError),
    #[error(transparent)]
    Volume(#[from] crate::volume::VolumeError),
    #[error(transparent)]
    Copy(#[from] crate::copy::CopyError),
    #[error(transparent)]
    Sqsh(#[from] crate::image::sqsh::SqshError),
    #[error(transparent)]
    Device(#[from] crate::cdi::DeviceError),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroup::CgroupError),
    #[error(transparent)]
    Hooks(#[from] crate::hooks::HookError),
    #[error(transparent)]
    Process(#[from] crate::security::process::ProcessError),
    /// A den tool run as a child failed and has already said why.
    #[error(transparent)]
    Reported(#[from] Reported),
}

impl Diagnose for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::Reference(e) => e.hint(),
            Error::Image(e) => e.hint(),
            Error::Registry(e) => e.hint(),
            Error::Store(e) => e.hint(),
            Error::Containers(e) => e.hint(),
            Error::Images(e) => e.hint(),
            Error::Unpack(e) => e.hint(),
            Error::Userns(e) => e.hint(),
            Error::Runtime(e) => e.hint(),
            Error::Flag(e) => e.hint(),
            Error::Config(e) => e.hint(),
            Error::Sys(e) => e.hint(),
            Error::Net(e) => e.hint(),
            Error::Build(e) => e.hint(),
            Error::Auth(e) => e.hint(),
            Error::Archive(e) => e.hint(),
            Error::Security(e) => e.hint(),
            Error::Volume(e) => e.hint(),
            Error::Copy(e) => e.hint(),
            Error::Sqsh(e) => e.hint(),
            Error::Device(e) => e.hint(),
            Error::Cgroup(e) => e.hint(),
            Error::Hooks(e) => e.hint(),
            Error::Process(e) => e.hint(),
            Error::Reported(e) => e.hint(),
        }
    }

    fn exit_code(&self) -> i32 {
        match self {
            Error::Store(e) => e.exit_code(),
            Error::Runtime(e) => e.exit_code(),
            Error::Build(e) => e.exit_code(),
            Error::Archive(e) => e.exit_code(),
            Error::Security(e) => e.exit_code(),
            Error::Reported(e) => e.exit_code(),
            _ => EXIT_DEN,
        }
    }
}

impl Error {
    /// The status of a den tool that has already reported this failure itself, if it is one:
    /// the binaries exit with it and print nothing.
    pub fn reported(&self) -> Option<i32> {
        match self {
            Error::Reported(Reported(code)) => Some(*code),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn io() -> std::io::Error {
        std::io::Error::other("disk on fire")
    }

    #[test]
    fn exit_codes_are_the_seams_own() {
        use crate::archive::ArchiveError;
        use crate::build::BuildError;
        use crate::store::StoreError;
        let store = || StoreError::ImageUnknown("x".into());
        let cases: Vec<(Error, i32)> = vec![
            (store().into(), EXIT_DEN),
            (BuildError::NeedsOverlay.into(), 1),
            (BuildError::Store(store()).into(), EXIT_DEN),
            (ArchiveError::StdinEmpty.into(), 1),
            (ArchiveError::Store(store()).into(), EXIT_DEN),
            (
                ArchiveError::ImportRead {
                    name: "-".into(),
                    source: io(),
                }
                .into(),
                EXIT_DEN,
            ),
            (
                StoreError::Unclean {
                    path: PathBuf::from("/s"),
                    problems: 2,
                }
                .into(),
                1,
            ),
            (crate::runtime::FlagError::NotATty.into(), EXIT_DEN),
            (Reported(3).into(), 3),
        ];
        for (e, code) in cases {
            assert_eq!(e.exit_code(), code, "{e}");
        }
    }

    #[test]
    fn only_a_child_tool_has_reported() {
        assert_eq!(Error::from(Reported(2)).reported(), Some(2));
        let e = Error::from(crate::store::ContainersError::NotRunning("web".into()));
        assert_eq!(e.reported(), None);
        assert_eq!(e.to_string(), "container web is not running");
        assert_eq!(e.hint().as_deref(), Some("start it first with `den start`"));
    }

    #[test]
    fn a_wrapped_error_reads_as_it_did() {
        let inner = crate::store::StoreError::Io {
            path: PathBuf::from("/s/x"),
            source: io(),
        };
        let direct = crate::error::chain(&Error::from(inner));
        let inner = crate::store::StoreError::Io {
            path: PathBuf::from("/s/x"),
            source: io(),
        };
        let wrapped = Error::from(crate::build::BuildError::from(inner));
        assert_eq!(crate::error::chain(&wrapped), direct);
        assert_eq!(direct, "cannot use the store at /s/x: disk on fire");
    }
}
