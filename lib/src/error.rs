//! How den reports failure: one `thiserror` enum per seam, gathered here into [`Error`].
//!
//! Every variant carries the input that failed (a reference, a path, a registry) so the message can
//! name it. The binaries print an error once, at the edge, as
//!
//! ```text
//! den: error: <message>: <cause>: <cause>
//! hint: <what to do about it>
//! ```
//!
//! and exit with [`Diagnose::exit_code`]: 125 when den itself failed, 126 when the container's
//! command cannot be invoked, 127 when it is not found, as docker does.

/// What a user-facing error knows beyond its message.
pub trait Diagnose {
    /// A sentence telling the user what to do, when there is something to do.
    fn hint(&self) -> Option<String> {
        None
    }
    /// The process exit status this error should produce.
    fn exit_code(&self) -> i32 {
        EXIT_DEN
    }
}

/// den itself failed (docker's 125).
pub const EXIT_DEN: i32 = 125;
/// The container's command was found but cannot be invoked (docker's 126).
pub const EXIT_CANNOT_INVOKE: i32 = 126;
/// The container's command was not found (docker's 127).
pub const EXIT_NOT_FOUND: i32 = 127;

/// Every error the library returns to the binaries.
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
    Unpack(#[from] crate::unpack::UnpackError),
    #[error(transparent)]
    Userns(#[from] crate::userns::UsernsError),
    #[error(transparent)]
    Runtime(#[from] crate::runtime::RuntimeError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Sys(#[from] crate::sys::SysError),
    #[error(transparent)]
    Usage(#[from] UsageError),
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
    /// A den tool run as a child failed and has already said why; exit with its status.
    #[error("a den tool failed with status {0}")]
    Reported(i32),
}

/// A command line that parses but does not make sense.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("cannot push to {0}: a push names a tag, not a digest")]
    PushDigest(String),
    #[error("invalid environment variable {0:?}")]
    BadEnv(String),
    #[error("invalid user {0:?}")]
    BadUser(String),
    #[error("cannot read env file {path}")]
    EnvFile {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the input device is not a TTY")]
    NotATty,
    #[error("invalid platform {0:?}")]
    BadPlatform(String),
    #[error("network mode {0:?} is not supported")]
    BadNetwork(String),
    #[error("no command specified for image {0}")]
    NoCommand(String),
    #[error("invalid restart policy {0:?}")]
    BadRestart(String),
    #[error("conflicting options: --restart and --rm")]
    RmWithRestart,
    #[error(transparent)]
    Volume(crate::volume::VolumeError),
    #[error("duplicate mount point: {0}")]
    DuplicateMount(String),
    #[error("no public port {0:?} published for {1}")]
    NoPort(String, String),
    #[error("invalid --add-host {0:?}")]
    BadAddHost(String),
    #[error("ports cannot be published with --network {0}")]
    PortsNeedNetwork(String),
    #[error("invalid signal {0:?}")]
    BadSignal(String),
    #[error("invalid --format template")]
    Format(#[source] crate::render::TemplateError),
    #[error("invalid filter {0:?}")]
    BadFilter(String),
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("cannot remove container {0}: container is running")]
    RemoveRunning(String),
    #[error("invalid copy paths: {0}")]
    BadCopyPaths(String),
    #[error(transparent)]
    Copy(crate::copy::CopyError),
    #[error(
        "unable to remove repository reference {reference:?} (must force) - container {container} is using its referenced image {image}"
    )]
    ImageNameInUse {
        reference: String,
        container: String,
        image: String,
    },
    #[error(
        "conflict: unable to delete {image} ({how}) - image is being used by {state} container {container}"
    )]
    ImageInUse {
        image: String,
        container: String,
        /// `running` or `stopped`.
        state: &'static str,
        /// `must be forced`, or `cannot be forced` for a running container.
        how: &'static str,
    },
    #[error(
        "conflict: unable to delete {image} (must be forced) - image is referenced in multiple repositories"
    )]
    ImageMultipleNames { image: String },
    #[error("invalid image filter {0:?}")]
    BadImageFilter(String),
    #[error("cowardly refusing to save to a terminal. Use the -o flag or redirect")]
    TarToTerminal,
    #[error("invalid --change {change:?}: {reason}")]
    BadChange { change: String, reason: String },
    #[error("cannot read {name}")]
    ImportRead {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    WriteOutput {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Diagnose for UsageError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            UsageError::BadEnv(_) => {
                "write it as KEY=VALUE, or KEY to pass the variable from den's environment".into()
            }
            UsageError::BadUser(_) => {
                "use -u UID[:GID] or a user name from the image's /etc/passwd".into()
            }
            UsageError::EnvFile { .. } => "check the path given to --env-file".into(),
            UsageError::NotATty => "drop -t, or run den from a terminal".into(),
            UsageError::BadPlatform(_) => "write it as os/arch[/variant], e.g. linux/amd64".into(),
            UsageError::BadNetwork(_) => {
                "use --network slirp4netns (the default), pasta, host or none".into()
            }
            UsageError::NoCommand(_) => {
                "give a command after the image name, or use an image with CMD or ENTRYPOINT".into()
            }
            UsageError::BadRestart(_) => {
                "use no, always, unless-stopped or on-failure[:MAX-RETRIES]".into()
            }
            UsageError::RmWithRestart => "drop --rm, or use --restart no".into(),
            UsageError::Volume(e) => return e.hint(),
            UsageError::DuplicateMount(_) => "mount each container path once".into(),
            UsageError::NoPort(..) => "list the published ports with `den port CONTAINER`".into(),
            UsageError::BadAddHost(_) => "write it as NAME:IP, e.g. --add-host db:10.0.2.2".into(),
            UsageError::PortsNeedNetwork(_) => {
                "drop --network to use the default userspace network, or drop -p".into()
            }
            UsageError::BadSignal(_) => "use a signal name (TERM, SIGHUP) or number (15)".into(),
            UsageError::Format(_) => {
                "see docker's --format documentation: {{.Field}}, {{json .}}, table ...".into()
            }
            UsageError::BadFilter(_) => {
                "use KEY=VALUE with status (created, running, exited, ...), name, id, label, exited or ancestor".into()
            }
            UsageError::NotRunning(_) => "start it first with `den start`".into(),
            UsageError::RemoveRunning(_) => {
                "stop the container before removing it, or force it with `den rm -f`".into()
            }
            UsageError::BadCopyPaths(_) => {
                "one of the paths must name a container: CONTAINER:PATH".into()
            }
            UsageError::Copy(e) => return e.hint(),
            UsageError::PushDigest(_) => "push to NAME:TAG; the registry computes the digest".into(),
            UsageError::ImageNameInUse { .. } => {
                "remove the container first (`den rm`), or untag and keep the image with `den rmi -f`"
                    .into()
            }
            UsageError::ImageInUse { state: "running", .. } => {
                "stop and remove the container first (`den rm -f CONTAINER`)".into()
            }
            UsageError::ImageInUse { .. } => {
                "remove the container first (`den rm`), or force it with `den rmi -f`; the container keeps its layers"
                    .into()
            }
            UsageError::ImageMultipleNames { .. } => {
                "remove the image by name (`den rmi NAME`), or all its names with `den rmi -f ID`".into()
            }
            UsageError::BadImageFilter(_) => {
                "use dangling=true|false, reference=PATTERN, label=KEY[=VALUE], before=IMAGE, since=IMAGE or until=TIME"
                    .into()
            }
            UsageError::TarToTerminal => "add -o FILE, or redirect the output: den export c > c.tar".into(),
            UsageError::BadChange { .. } => {
                "use CMD, ENTRYPOINT, ENV, WORKDIR, EXPOSE, USER or LABEL as in a Dockerfile, e.g. -c 'CMD [\"sh\"]'"
                    .into()
            }
            UsageError::ImportRead { .. } => "give a tar file, a URL, or - to read it from stdin".into(),
            UsageError::WriteOutput { .. } => "check that the output directory exists and is writable".into(),
        })
    }
}

impl Diagnose for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::Reference(e) => e.hint(),
            Error::Image(e) => e.hint(),
            Error::Registry(e) => e.hint(),
            Error::Store(e) => e.hint(),
            Error::Unpack(e) => e.hint(),
            Error::Userns(e) => e.hint(),
            Error::Runtime(e) => e.hint(),
            Error::Config(e) => e.hint(),
            Error::Sys(e) => e.hint(),
            Error::Usage(e) => e.hint(),
            Error::Net(e) => e.hint(),
            Error::Build(e) => e.hint(),
            Error::Auth(e) => e.hint(),
            Error::Archive(e) => e.hint(),
            Error::Security(e) => e.hint(),
            Error::Reported(_) => None,
        }
    }
    fn exit_code(&self) -> i32 {
        match self {
            Error::Runtime(e) => e.exit_code(),
            Error::Build(e) => e.exit_code(),
            Error::Archive(e) => e.exit_code(),
            Error::Security(e) => e.exit_code(),
            Error::Reported(code) => *code,
            _ => EXIT_DEN,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The message of an error and all its causes, joined by ": " (anyhow's `{:#}` for std errors).
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        // Transparent wrappers repeat their inner message; say each thing once.
        if !out.ends_with(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer {0}")]
    struct Outer(&'static str, #[source] std::io::Error);

    #[test]
    fn chain_joins_causes_once() {
        let e = Outer("x", std::io::Error::other("inner"));
        assert_eq!(chain(&e), "outer x: inner");
    }

    #[test]
    fn usage_errors_have_hints() {
        assert!(UsageError::NotATty.hint().unwrap().contains("-t"));
        assert_eq!(UsageError::NotATty.exit_code(), EXIT_DEN);
    }
}
