//! `den build`'s library side: a Dockerfile into an image ([`build`]), planned as data first,
//! then applied one cached step at a time, the way [`crate::runtime::rootfs`] plans its mounts.
//!
//! - [`syntax`]: Dockerfile lines into instruction nodes (directives, continuations, heredocs).
//! - [`plan`]: the nodes into a [`plan::Plan`]: stages, the ones `--target` needs, global ARGs.
//! - [`instruction`]: one instruction as data ([`instruction::Step`]): what it does, its words
//!   expanded, and the inputs of its cache key.
//! - [`exec`]: the executor: each needed stage from its base, each step a cache hit or applied.
//! - [`config`], [`run`], [`copy`]: the instruction families: config-only changes, RUN's
//!   container, COPY and ADD.
//! - [`state`]: the build so far within a stage (layers, image config, arguments, key).
//! - [`expand`]: `$VAR` and `${VAR:-x}` in words, docker's way.
//! - [`foreign`]: building for another platform: binfmt_misc for RUN, the platform ARGs.
//! - [`ignore`]: `.dockerignore` rules.
//! - [`cache`]: step results keyed by their inputs; [`share`]: `--cache-to`/`--cache-from`.
//! - [`step`]: a mounted root for COPY, COPY's file rules, a writable layer committed as a layer.
//! - [`layer`]: a directory in overlay's format written as a layer tar (deterministic).
//! - [`output`]: `--output`: the result as a directory, a tar or an OCI archive.
//! - [`secrets`]: `--secret` and `--ssh`: what RUN may read that never lands in the image.
//!
//! The seam needs three things from above, which `ops` gives it through [`Host`]: images by
//! name (found, or pulled by den-image), a RUN step's container run (by den-run: only the
//! runtime enters namespaces), and the user's progress lines.

pub mod cache;
pub mod config;
pub mod copy;
pub mod exec;
pub mod expand;
pub mod foreign;
pub mod ignore;
pub mod instruction;
pub mod layer;
pub mod output;
pub mod plan;
pub mod run;
pub mod secrets;
pub mod share;
pub mod state;
pub mod step;
pub mod syntax;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use exec::build;

use crate::image::Reference;
use crate::net::Network;
use crate::store::ImageRecord;

/// What to build, as the user asked for it (flags read into types by the binary).
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The context directory; None for `den build -` (a Dockerfile on stdin, no context).
    pub context: Option<PathBuf>,
    /// `-f`: the Dockerfile's path; default `Dockerfile` (or `Containerfile`) in the context.
    pub file: Option<PathBuf>,
    /// The Dockerfile's text when it came on stdin.
    pub stdin_text: Option<String>,
    /// `-t`: the image's names; the first comes with the image record.
    pub tags: Vec<Reference>,
    /// `--build-arg KEY=VALUE` (or `KEY`, its value taken from the environment).
    pub build_args: BTreeMap<String, String>,
    /// `--target`: the stage to build and stop at.
    pub target: Option<String>,
    /// `--no-cache`: run every step.
    pub no_cache: bool,
    /// `--pull`: pull base images even when they are in the store.
    pub pull: bool,
    /// `--network`: RUN's network (None: slirp4netns when installed, else none).
    pub network: Option<Network>,
    /// `--platform` of the base images.
    pub platform: Option<String>,
    /// `--label KEY=VALUE`, set on the image.
    pub labels: Vec<(String, String)>,
    /// `-q`: RUN's output goes nowhere (progress lines are the [`Host`]'s to drop).
    pub quiet: bool,
    /// `--allow`: entitlements granted to the Dockerfile.
    pub allow: Vec<Entitlement>,
    /// `--authfile`, `--creds`: for the base images' pulls.
    pub access: crate::auth::Access,
    /// `--output`: where the result goes besides the store ([`output`]).
    pub output: Option<output::Output>,
    /// `--cache-from`: caches whose steps a build may take ([`share`]).
    pub cache_from: Vec<share::CacheRef>,
    /// `--cache-to`: where the build's steps are exported ([`share`]).
    pub cache_to: Option<share::CacheRef>,
    /// `--format` (or `BUILDAH_FORMAT`): the manifest's format; the image id is the same in both.
    pub format: crate::image::manifest::Format,
    /// `--secret`: what `RUN --mount=type=secret` may read, by id.
    pub secrets: Vec<secrets::Secret>,
    /// `--ssh`: the agents `RUN --mount=type=ssh` may reach, by id.
    pub ssh: Vec<secrets::Ssh>,
}

/// An entitlement `--allow` grants the Dockerfile (docker's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entitlement {
    /// `network.host`: `RUN --network=host`.
    NetworkHost,
}

impl Entitlement {
    pub fn parse(name: &str) -> Result<Entitlement, BuildError> {
        match name {
            "network.host" => Ok(Entitlement::NetworkHost),
            "security.insecure" => Err(BuildError::Entitlement {
                name: name.to_string(),
                reason: "den does not run build steps with extra privileges",
            }),
            _ => Err(BuildError::Entitlement {
                name: name.to_string(),
                reason: "not an entitlement den knows",
            }),
        }
    }
}

/// What a build needs from above (`ops` implements it over its context).
pub trait Host {
    /// The image `name` from the store, pulled when it is missing (saying so first).
    fn find_or_pull(&self, name: &str, platform: Option<&str>) -> Result<ImageRecord>;
    /// The image `name`, pulled even when it is in the store (`--pull`).
    fn pull(&self, name: &str, platform: Option<&str>) -> Result<ImageRecord>;
    /// Run the created container `id` (a RUN step's) to its end, its output on stderr or,
    /// when `quiet`, nowhere. Its exit status, or None when den-run is not installed.
    fn run_container(&self, id: &str, quiet: bool) -> Result<Option<i32>>;
    /// A progress line or a note for the user.
    fn say(&self, line: &str);
    /// How an imported cache's layers are unpacked: owners kept, or (single-uid mode) not.
    fn layer_owners(&self) -> crate::unpack::Owners {
        crate::unpack::Owners::Keep
    }
    /// `--cache-from REF`: the blobs of the cache in a registry (a message when it cannot be
    /// reached, for the user's warning).
    fn cache_source(&self, reference: &str) -> std::result::Result<Box<dyn share::Blobs>, String> {
        Err(format!("den cannot reach {reference} from here"))
    }
    /// `--cache-to REF`: push the cache's blobs and manifest to a registry.
    fn push_cache(&self, reference: &str, cache: &share::Export) -> Result<()> {
        let _ = cache;
        Err(BuildError::BadCache {
            flag: "--cache-to",
            spec: reference.to_string(),
            reason: "den cannot reach a registry from here".into(),
        })
    }
    /// den's runtime directory (0700, the user's alone), where a build keeps its secrets and
    /// agent sockets while it runs; None when there is none.
    fn runtime_dir(&self) -> Option<PathBuf> {
        None
    }
}

use crate::error::{Diagnose, Fault};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("building needs the overlay or fuse-overlayfs storage driver (this store uses vfs)")]
    NeedsOverlay,
    #[error("{path} exists in the image and is not a directory")]
    NotADirectory { path: String },
    #[error("{path} is a directory in the image; a file cannot replace it")]
    IsADirectory { path: String },
    #[error("--allow {name}: {reason}")]
    Entitlement { name: String, reason: &'static str },
    #[error("{file}:{line}: {message}")]
    Syntax {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{file}:{line}: unknown instruction {name:?}")]
    UnknownInstruction {
        file: String,
        line: usize,
        name: String,
        suggestion: Option<String>,
    },
    #[error("{file}:{line}: {instruction}: {message}")]
    Step {
        file: String,
        line: usize,
        instruction: String,
        message: String,
        hint: String,
    },
    #[error("{file}:{line}: {instruction}: the command failed with exit status {code}")]
    RunFailed {
        file: String,
        line: usize,
        instruction: String,
        code: i32,
    },
    #[error("--output {spec:?}: {reason}")]
    BadOutput { spec: String, reason: String },
    #[error("{flag} {spec:?}: {reason}")]
    BadCache {
        flag: &'static str,
        spec: String,
        reason: String,
    },
    #[error("cowardly refusing to write the build's tar to a terminal")]
    OutputTerminal,
    #[error("--secret {spec}: {reason}")]
    BadSecretFlag { spec: String, reason: String },
    #[error("--ssh {spec}: {reason}")]
    BadSshFlag { spec: String, reason: String },
    #[error("cannot read secret {id} from {path}")]
    SecretSource {
        id: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("secret {id} comes from ${var}, which is not set")]
    SecretEnvUnset { id: String, var: String },
    #[error("secret {id} is {size} bytes, over the cap of 500 KiB")]
    SecretTooBig { id: String, size: u64 },
    #[error("--ssh {id}: {reason}")]
    SshAgent { id: String, reason: String },
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Runtime(#[from] crate::runtime::RuntimeError),
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    #[error(transparent)]
    Reference(#[from] crate::image::ReferenceError),
    #[error(transparent)]
    Unpack(#[from] crate::unpack::UnpackError),
    /// What the [`Host`] failed at (a base image's pull), as it said it.
    #[error(transparent)]
    Host(#[from] HostError),
    /// A den tool the [`Host`] ran has failed and said why.
    #[error(transparent)]
    Reported(#[from] crate::error::Reported),
}

/// The result of a build's steps.
pub type Result<T, E = BuildError> = std::result::Result<T, E>;

/// An error of the layer above, which the build seam cannot name: what [`Host`] returns, its
/// message, hint and exit code kept whole (`ops` takes it back out at the top).
pub struct HostError(pub Box<dyn Fault>);

impl std::fmt::Debug for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.0, f)
    }
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for HostError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl BuildError {
    /// A step's mistake, at `node`'s line of `file`.
    pub fn step(file: &str, node: &syntax::Node, message: &str, hint: &str) -> BuildError {
        BuildError::Step {
            file: file.into(),
            line: node.line,
            instruction: node.name.clone(),
            message: message.into(),
            hint: hint.into(),
        }
    }
}

impl Diagnose for BuildError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            BuildError::NeedsOverlay => "run `den info` to see why overlay is not usable here".into(),
            BuildError::NotADirectory { .. } => "copy to another path, or remove the file first".into(),
            BuildError::IsADirectory { .. } => "copy into the directory (end the destination with /), or to another path".into(),
            BuildError::Entitlement { .. } => "den build allows network.host (RUN --network=host); leave out the others".into(),
            BuildError::Syntax { .. } => "see https://docs.docker.com/reference/dockerfile/ for the instruction's form".into(),
            BuildError::UnknownInstruction { suggestion: Some(s), .. } => format!("did you mean {s}?"),
            BuildError::UnknownInstruction { .. } => format!("instructions are {}", syntax::INSTRUCTIONS.join(", ")),
            BuildError::Step { hint, .. } => hint.clone(),
            BuildError::RunFailed { .. } => "the command's output is above; fix the command or what it needs, and build again (earlier steps come from the cache)".into(),
            BuildError::BadSecretFlag { .. } => "give --secret id=ID,src=FILE or id=ID,env=VARIABLE".into(),
            BuildError::BadSshFlag { .. } => "give --ssh default (your $SSH_AUTH_SOCK), or --ssh ID=SOCKET or ID=KEYFILE[,KEYFILE]".into(),
            BuildError::SecretSource { .. } => "check the file named by src= (a regular file you can read)".into(),
            BuildError::SecretEnvUnset { var, .. } => format!("set {var} in den build's environment, or give the secret with src=FILE"),
            BuildError::SecretTooBig { .. } => "a build secret is at most 500 KiB, as BuildKit's; give a smaller file (a key, a token)".into(),
            BuildError::SshAgent { .. } => "give --ssh ID=SOCKET (a running agent's socket) or key files ssh-add can read; key files need ssh-agent and ssh-add (openssh-client)".into(),
            BuildError::Read { .. } => "check the path and its permissions".into(),
            BuildError::BadOutput { .. } => "write -o DIR, -o type=local,dest=DIR, -o type=tar,dest=FILE (or -o - for stdout), -o type=oci,dest=FILE or -o type=docker,dest=FILE".into(),
            BuildError::BadCache { flag, .. } => format!("write {flag} type=local,{}=DIR, {flag} type=registry,ref=REGISTRY/REPO[:TAG], or {flag} REGISTRY/REPO", if *flag == "--cache-from" { "src" } else { "dest" }),
            BuildError::OutputTerminal => "redirect stdout to a file or a pipe, or give dest=FILE".into(),
            BuildError::Store(e) => return e.hint(),
            BuildError::Runtime(e) => return e.hint(),
            BuildError::Image(e) => return e.hint(),
            BuildError::Reference(e) => return e.hint(),
            BuildError::Unpack(e) => return e.hint(),
            BuildError::Host(HostError(e)) => return e.hint(),
            BuildError::Reported(_) => return None,
        })
    }
    /// docker exits 1 when a build fails; what another seam found keeps that seam's status.
    fn exit_code(&self) -> i32 {
        match self {
            BuildError::Store(e) => e.exit_code(),
            BuildError::Runtime(e) => e.exit_code(),
            BuildError::Image(e) => e.exit_code(),
            BuildError::Reference(e) => e.exit_code(),
            BuildError::Unpack(e) => e.exit_code(),
            BuildError::Host(HostError(e)) => e.exit_code(),
            BuildError::Reported(e) => e.exit_code(),
            BuildError::BadOutput { .. } | BuildError::BadCache { .. } => crate::error::EXIT_DEN,
            _ => 1,
        }
    }
}
