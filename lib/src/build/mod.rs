//! `den build`'s library side: the Dockerfile front end and the pieces the executor
//! ([`crate::ops::build`]) is made of.
//!
//! - [`layer`]: a directory in overlay's format written as a layer tar (deterministic).
//! - [`step`]: a mounted root for COPY, COPY's file rules, a writable layer committed as a layer.
//! - [`cache`]: step results keyed by their inputs.

pub mod cache;
pub mod layer;
pub mod step;

use crate::error::Diagnose;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("building needs the overlay or fuse-overlayfs storage driver (this store uses vfs)")]
    NeedsOverlay,
    #[error("{path} exists in the image and is not a directory")]
    NotADirectory { path: String },
}

impl Diagnose for BuildError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            BuildError::NeedsOverlay => "run `den info` to see why overlay is not usable here".into(),
            BuildError::NotADirectory { .. } => "copy to another path, or remove the file first".into(),
        })
    }
    fn exit_code(&self) -> i32 {
        1
    }
}
