//! `den compose`: the Compose Specification over den's own tools.
//!
//! A project is read once, at the edge, into types: the files found or named ([`load`]), each
//! parsed as YAML with a size cap, interpolated ([`interpolate`]) with the shell's variables
//! over the project's `.env`, merged in order as docker compose merges them, checked against
//! the keys den implements ([`keys`]: any other key is named and refused, never ignored), then
//! typed ([`model::Project`]). What to do with it is data: [`plan`] turns a service into the
//! argument vectors of den's verbs (`den run -d ...`, `den network create ...`), with docker
//! compose's names (`PROJECT-SERVICE-N`) and labels (`com.docker.compose.*`, a config hash that
//! tells a changed service from an unchanged one). [`engine`] carries a plan out by running
//! den's binaries as children (the way den's builder runs den-run): each service in its own
//! thread, after its `depends_on` conditions hold, so independent services start together.
//! The verbs (`up`, `down`, `ps`, `logs`, ...) are in [`verbs`]; `bin/den-compose.rs` parses
//! the command line and calls them.
//!
//! Containers know their project only by their labels: there is no compose state beside den's
//! store, so a `den compose up` killed at any moment leaves containers that the next `up` or
//! `down` finds by label, as docker compose would.
//!
//! The Compose file is read by hand into den's own types rather than by `docker-compose-types`:
//! interpolation and merging have to happen on the untyped tree first (as docker compose does),
//! the unsupported-key check must name the key's path, and that crate's types keep unknown
//! keys in a catch-all map and bring `derive_builder` along; the YAML parser is
//! `serde_norway`, which den already uses.

pub mod engine;
pub mod interpolate;
pub mod keys;
pub mod load;
pub mod model;
pub mod plan;
pub mod verbs;

use std::path::PathBuf;

use crate::error::{Diagnose, EXIT_DEN, Reported};

/// Most bytes of one compose or env file den reads.
pub const MAX_FILE: u64 = 4 << 20;
/// Most services, networks, volumes in one project (and replicas of one service).
pub const MAX_ITEMS: usize = 1000;

/// Everything `den compose` can fail at.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("no configuration file provided: not found in {0}")]
    NoFile(PathBuf),
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is larger than {max} bytes")]
    TooLarge { path: PathBuf, max: u64 },
    #[error("{path}: {message}")]
    Yaml { path: PathBuf, message: String },
    #[error("{0}: den compose does not support this key")]
    Unsupported(String),
    #[error("{path}: {problem}")]
    Invalid { path: String, problem: String },
    #[error("invalid interpolation format for {path}: {text:?}")]
    Interpolation { path: String, text: String },
    #[error("{path}: required variable {name} is missing a value: {message}")]
    Required {
        path: String,
        name: String,
        message: String,
    },
    #[error("invalid project name {0:?}")]
    ProjectName(String),
    #[error("no such service: {0}")]
    NoSuchService(String),
    #[error("dependency cycle between services: {0}")]
    Cycle(String),
    #[error("{0} is not installed next to den-compose or on PATH")]
    NotInstalled(&'static str),
    #[error("cannot run {tool}")]
    Spawn {
        tool: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("den {args} failed: {message}")]
    Den { args: String, message: String },
    #[error("dependency failed to start: container {0} is unhealthy")]
    Unhealthy(String),
    #[error("dependency failed to start: container {0} exited before it was healthy")]
    ExitedUnhealthy(String),
    #[error("dependency failed to start: container {0} has no healthcheck configured")]
    NoHealthcheck(String),
    #[error("dependency failed to start: service {0} failed")]
    DependencyFailed(String),
    #[error("service {service:?} didn't complete successfully: exit {code}")]
    NotCompleted { service: String, code: i32 },
    #[error("external {kind} {name:?} not found")]
    External { kind: &'static str, name: String },
    #[error("service {0:?} is not running")]
    NotRunning(String),
    #[error("cannot wait for signals")]
    Signal(#[source] std::io::Error),
    #[error("cannot write {0}")]
    Write(String, #[source] std::io::Error),
    /// A den tool run as a child failed and has said why.
    #[error(transparent)]
    Reported(#[from] Reported),
}

impl Diagnose for ComposeError {
    fn hint(&self) -> Option<String> {
        use ComposeError as E;
        Some(match self {
            E::NoFile(_) => "write a compose.yaml there, or name one with -f FILE".into(),
            E::Read { .. } | E::Write(..) => "check the path and its permissions".into(),
            E::TooLarge { .. } => "a compose or env file is a few kilobytes; is this the right file?".into(),
            E::Yaml { .. } | E::Invalid { .. } => "fix the file at that place (the Compose Specification describes each key)".into(),
            E::Unsupported(_) => "remove the key (x- keys are free for your own use), or run that service with den run".into(),
            E::Interpolation { .. } => "write ${VAR}, ${VAR:-default} or ${VAR:?message}; $$ is a literal $".into(),
            E::Required { name, .. } => format!("set {name} in the environment or in the project's .env file"),
            E::ProjectName(_) => "a project name is lower-case letters, digits, '-' and '_', starting with a letter or digit (-p NAME)".into(),
            E::NoSuchService(_) => "den compose config --services lists the project's services".into(),
            E::Cycle(_) => "remove one depends_on of the cycle".into(),
            E::NotInstalled(_) => "install all den binaries together (make install)".into(),
            E::Spawn { .. } => "reinstall den (make install)".into(),
            E::Den { .. } => "the message is den's own; fix what it names and run the verb again".into(),
            E::NoHealthcheck(c) => format!("give its service a healthcheck:, or depend on {c} with condition: service_started"),
            E::DependencyFailed(s) => format!("the lines above say why {s} failed"),
            E::Unhealthy(c) | E::ExitedUnhealthy(c) => format!("den logs {c} and den inspect {c} show why its health check fails"),
            E::NotCompleted { service, .. } => format!("den compose logs {service} shows why it failed"),
            E::External { kind, name } => format!("create it first (den {kind} create {name}), or drop `external: true`"),
            E::NotRunning(s) => format!("den compose up -d {s} starts it"),
            E::Signal(_) => return None,
            E::Reported(_) => return None,
        })
    }
    fn exit_code(&self) -> i32 {
        match self {
            ComposeError::Reported(Reported(code)) => *code,
            ComposeError::Unhealthy(_)
            | ComposeError::ExitedUnhealthy(_)
            | ComposeError::NoHealthcheck(_)
            | ComposeError::DependencyFailed(_)
            | ComposeError::NotRunning(_)
            | ComposeError::NotCompleted { .. } => 1,
            _ => EXIT_DEN,
        }
    }
}

/// The project's options that come before the verb (`-f`, `-p`, `--profile`, ...).
#[derive(Debug, Clone, Default)]
pub struct ProjectOptions {
    pub files: Vec<PathBuf>,
    pub project_name: Option<String>,
    pub project_directory: Option<PathBuf>,
    pub profiles: Vec<String>,
    pub env_files: Vec<PathBuf>,
}
