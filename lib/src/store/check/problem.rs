//! What a check finds: one [`Problem`] per thing wrong, whether a killed den leaves it
//! ([`Problem::leftover`]), and the line `den system check` prints for it.

use std::fmt;
use std::path::PathBuf;

use crate::store::Digest;

/// One thing wrong with the store. Paths are relative to the store's root.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Problem {
    /// `tmp/<entry>` whose den process is gone.
    StaleStaging { path: PathBuf },
    /// `.NAME.tmp-PID-RANDOM` of a writer that is gone.
    StaleTemp { path: PathBuf },
    /// A layer no image, container or build-cache step uses.
    UnusedLayer { diff_id: Digest },
    /// A blob no image or build-cache step uses.
    UnusedBlob { digest: Digest },
    /// `layers/l/<name>` whose layer is gone.
    DanglingLink { name: String },
    /// `names/<name>` whose container is gone.
    DanglingName { name: String, id: String },
    /// `containers/<id>/` without its record.
    PartialContainer { id: String },
    /// A build step's container whose build was killed.
    BuildLeftover { id: String, name: String },
    /// `layers/<dir>` that is not a complete layer.
    PartialLayer { dir: String, why: &'static str },
    /// A layer whose short link under `layers/l` is missing or points elsewhere.
    MissingLink { diff_id: Digest, link: String },
    /// An image record that names content the store does not have.
    BrokenImage {
        image: String,
        id: Digest,
        missing: String,
    },
    /// A container whose image or layers are gone.
    BrokenContainer {
        id: String,
        name: String,
        missing: String,
        running: bool,
    },
    /// A record that does not parse.
    DamagedRecord { path: PathBuf },
    /// A build-cache step that names content the store does not have.
    BrokenCacheStep { path: PathBuf, missing: String },
    /// A file den did not write.
    Unknown { path: PathBuf },
    /// A blob whose content does not hash to its name (`--full`).
    CorruptBlob { digest: Digest, actual: Digest },
    /// An image record whose layers differ from its manifest's or configuration's (`--full`).
    ImageMismatch {
        image: String,
        id: Digest,
        what: &'static str,
    },
}

impl Problem {
    /// Left by a killed den and removed by den itself at its next write or collection; the
    /// rest is damage (see the module doc).
    pub fn leftover(&self) -> bool {
        matches!(
            self,
            Problem::StaleStaging { .. }
                | Problem::StaleTemp { .. }
                | Problem::UnusedLayer { .. }
                | Problem::UnusedBlob { .. }
                | Problem::DanglingLink { .. }
                | Problem::DanglingName { .. }
                | Problem::PartialContainer { .. }
                | Problem::BuildLeftover { .. }
        )
    }
}

// One arm per problem, the line `den system check` prints: a table, read whole.
impl fmt::Display for Problem {
    #[allow(
        clippy::too_many_lines,
        reason = "a table of one arm per problem, read whole"
    )]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::StaleStaging { path } => write!(
                f,
                "stale staging entry: {} (its den process is gone)",
                path.display()
            ),
            Problem::StaleTemp { path } => write!(
                f,
                "stale temporary file: {} (its writer is gone)",
                path.display()
            ),
            Problem::UnusedLayer { diff_id } => write!(
                f,
                "unused layer: layers/{} (no image, container or build-cache step uses it)",
                diff_id.hex()
            ),
            Problem::UnusedBlob { digest } => write!(
                f,
                "unused blob: blobs/sha256/{} (no image or build-cache step uses it)",
                digest.hex()
            ),
            Problem::DanglingLink { name } => {
                write!(f, "dangling link: layers/l/{name} (its layer is gone)")
            }
            Problem::DanglingName { name, id } => write!(
                f,
                "dangling name: names/{name} (its container {} is gone)",
                &id[..12]
            ),
            Problem::PartialContainer { id } => {
                write!(f, "partial container: containers/{id} (it has no record)")
            }
            Problem::BuildLeftover { id, name } => write!(
                f,
                "build step container left by a killed build: containers/{id} ({name})"
            ),
            Problem::PartialLayer { dir, why } => {
                write!(f, "partial layer: layers/{dir} ({why})")
            }
            Problem::MissingLink { diff_id, link } => write!(
                f,
                "missing layer link: layers/l/{link} (for layers/{})",
                diff_id.hex()
            ),
            Problem::BrokenImage { image, id, missing } => write!(
                f,
                "image with missing content: {image} ({}) lacks {missing}",
                id.short()
            ),
            Problem::BrokenContainer {
                id,
                name,
                missing,
                running,
            } => write!(
                f,
                "container with missing content: {name} ({}) lacks {missing}{}",
                &id[..12],
                if *running { " (running)" } else { "" }
            ),
            Problem::DamagedRecord { path } => {
                write!(f, "damaged record: {} (it does not parse)", path.display())
            }
            Problem::BrokenCacheStep { path, missing } => write!(
                f,
                "build-cache step with missing content: {} lacks {missing}",
                path.display()
            ),
            Problem::Unknown { path } => {
                write!(f, "not den's: {} (den did not write it)", path.display())
            }
            Problem::CorruptBlob { digest, actual } => write!(
                f,
                "corrupt blob: blobs/sha256/{} (its content hashes to {actual})",
                digest.hex()
            ),
            Problem::ImageMismatch { image, id, what } => write!(
                f,
                "image record disagrees with its {what}: {image} ({})",
                id.short()
            ),
        }
    }
}
