//! `den build`'s library side: the Dockerfile front end and the pieces the executor
//! ([`crate::ops::build`]) is made of.
//!
//! - [`layer`]: a directory in overlay's format written as a layer tar (deterministic).
//! - [`step`]: a mounted root for COPY, COPY's file rules, a writable layer committed as a layer.
//! - [`syntax`]: Dockerfile lines into instruction nodes (directives, continuations, heredocs).
//! - [`expand`]: `$VAR` and `${VAR:-x}` in words, docker's way.
//! - [`ignore`]: `.dockerignore` rules.
//! - [`cache`]: step results keyed by their inputs.

pub mod cache;
pub mod expand;
pub mod ignore;
pub mod layer;
pub mod step;
pub mod syntax;

use crate::error::Diagnose;

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
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
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
            BuildError::Read { .. } => "check the path and its permissions".into(),
        })
    }
    fn exit_code(&self) -> i32 {
        1
    }
}
