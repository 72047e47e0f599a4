//! Image archives: the tar files `docker save` writes and `docker load` reads, and OCI image
//! layouts in a tar (`oci-archive`). Entry points: [`save::save`] and [`load::load`].
//!
//! ## The two formats
//!
//! * **docker-archive** is what `docker load` and `podman load` read: `manifest.json` lists each
//!   image's config file, its names (`RepoTags`) and its layers, each layer an *uncompressed*
//!   tar whose sha256 is the config's diff id. den writes docker 25's layout of it, which is at
//!   the same time an OCI image layout: every file is a blob under `blobs/sha256/<hex>`, next to
//!   `index.json` and `oci-layout`, and `manifest.json` points at those paths. Tools that read
//!   either format read it; podman 4.3 loads it as an OCI layout when it holds one name and as a
//!   docker archive otherwise (checked), naming the image from `io.containerd.image.name` or
//!   `RepoTags`. Names are written in full (`docker.io/library/busybox:latest`): docker reads
//!   both forms the same, and podman would turn a short `busybox:latest` into
//!   `localhost/busybox:latest`.
//! * **oci-archive** is an OCI image layout with the blobs exactly as den stores them (as the
//!   registry sent them, usually compressed), so the manifest keeps its digest: the image id and
//!   the repository digests are the same after a round trip. `index.json` has one entry per
//!   name, annotated as docker 25 does: `org.opencontainers.image.ref.name` with the tag and
//!   `io.containerd.image.name` with the full name.
//!
//! ## Saving: the size of a layer before its bytes
//!
//! A tar header carries the size of the data that follows, and the output may be a pipe, so the
//! uncompressed size of a docker-archive layer must be known before the layer is written. den
//! stores layers as distributed (gzip, zstd, or plain tar for the layers it built or loaded):
//! a plain tar's size is its file's size; a compressed one is inflated twice, once to count
//! and once to write. The counting runs on a second thread one layer ahead of the writer, so on
//! two cores it costs little wall time. The alternatives were worse: the gzip trailer (ISIZE)
//! is the size modulo 4 GiB of the *last member* only, wrong for multi-member gzip such as
//! eStargz layers; spooling to a temporary file writes every layer to disk twice; the unpacked
//! layer's record counts file bytes, not tar bytes. A layer whose second inflation differs from
//! its count fails the save instead of writing a corrupt archive.
//!
//! ## Loading: one pass over the stream, nothing visible until everything is verified
//!
//! The archive (from a file or stdin; gzip or zstd compressed too, as docker accepts `docker
//! save | gzip`) is read once, in order: its files can come in any order, so each regular file
//! is spooled to a private staging directory under the store's `tmp/` as it streams past,
//! hashed on the way; a file that looks like a layer is unpacked into a staged layer directory
//! at the same time (`early.rs`). Then the index files are read and every blob is checked
//! against what names it: a config against the digest in its path, a docker-archive layer
//! against its diff id, an OCI blob against its descriptor, and each unpacked layer against its
//! diff id (layers not unpacked on the way are unpacked from the spool now). Only when every image of the archive passed are the
//! spooled blobs renamed into `blobs/`, the layers committed, the filesystem synced once and the
//! image records written. A refused archive leaves the store as it was. Entry names from the
//! archive are only ever keys of a map, never paths: nothing in an archive can write outside
//! the staging directory, and layer contents go through the unpacker's path rules.

mod early;
pub mod format;
pub mod load;
pub mod save;

pub use load::{Loaded, load};
pub use save::{SaveImage, save};

use crate::error::{Diagnose, EXIT_DEN};

/// Which kind of archive `den save` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// docker's `docker save` format (docker 25's layout, also an OCI layout).
    #[default]
    Docker,
    /// An OCI image layout in a tar, blobs as stored.
    Oci,
}

impl Format {
    /// `docker-archive` or `oci-archive`, the names podman's `--format` uses.
    pub fn parse(s: &str) -> Result<Format, ArchiveError> {
        match s {
            "docker-archive" => Ok(Format::Docker),
            "oci-archive" => Ok(Format::Oci),
            other => Err(ArchiveError::BadFormat(other.into())),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    // docker's own words for these two.
    #[error("cowardly refusing to save to a terminal. Use the -o flag or redirect")]
    StdoutTerminal,
    #[error("requested load from stdin, but stdin is empty")]
    StdinEmpty,
    #[error("unsupported archive format {0:?}")]
    BadFormat(String),
    #[error("cannot open {path}")]
    Open {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the archive to {path}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read blob {digest} of image {image}")]
    ReadBlob {
        image: String,
        digest: String,
        #[source]
        source: std::io::Error,
    },
    #[error("layer {digest} changed while it was saved ({counted} bytes counted, {written} read)")]
    LayerChanged {
        digest: String,
        counted: u64,
        written: u64,
    },
    #[error("cannot read archive {archive}")]
    Read {
        archive: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{archive} is not an image archive: it has no manifest.json, nor index.json and oci-layout"
    )]
    NotAnArchive { archive: String },
    #[error("archive {archive} has more than {limit} entries")]
    TooManyEntries { archive: String, limit: usize },
    #[error("archive {archive} lacks {entry}")]
    Missing { archive: String, entry: String },
    #[error("{entry} in archive {archive} is not valid")]
    BadJson {
        archive: String,
        entry: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{entry} in archive {archive} does not match its digest {expected} (got {actual})")]
    Mismatch {
        archive: String,
        entry: String,
        expected: String,
        actual: String,
    },
    #[error("image {config} in archive {archive} has {layers} layers but {diff_ids} diff ids")]
    LayerCount {
        archive: String,
        config: String,
        layers: usize,
        diff_ids: usize,
    },
    #[error("archive {archive} names an image {name:?}")]
    BadName {
        archive: String,
        name: String,
        #[source]
        source: crate::image::ReferenceError,
    },
    #[error("layer {entry} of archive {archive} cannot be unpacked")]
    Layer {
        archive: String,
        entry: String,
        #[source]
        source: crate::unpack::UnpackError,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    #[error(transparent)]
    Unpack(#[from] crate::unpack::UnpackError),
    /// `export` to a terminal.
    #[error("cowardly refusing to save to a terminal. Use the -o flag or redirect")]
    TarToTerminal,
    /// `export -o PATH` cannot create its file.
    #[error("cannot write {path}")]
    WriteOutput {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `import`'s tar (a file, a URL or stdin) cannot be read.
    #[error("cannot read {name}")]
    ImportRead {
        name: String,
        #[source]
        source: std::io::Error,
    },
}

impl Diagnose for ArchiveError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            ArchiveError::StdoutTerminal => {
                "write it to a file with -o FILE, or pipe it: den save IMAGE | gzip > image.tar.gz"
                    .into()
            }
            ArchiveError::StdinEmpty => {
                "give the archive with -i FILE, or on stdin: den load < image.tar".into()
            }
            ArchiveError::BadFormat(_) => {
                "use --format docker-archive (the default) or oci-archive".into()
            }
            ArchiveError::Open { .. } => "check the path and its permissions".into(),
            ArchiveError::Write { source, .. } if source.raw_os_error() == Some(libc::ENOSPC) => {
                "the disk is full: free space, or write the archive elsewhere with -o".into()
            }
            ArchiveError::Write { .. } => "check that the destination is writable".into(),
            ArchiveError::ReadBlob { .. } | ArchiveError::LayerChanged { .. } => {
                "the store is damaged: remove the image and pull or build it again".into()
            }
            ArchiveError::TooManyEntries { .. } => {
                "an image archive holds a few files per layer; this one was not made by docker, \
                 podman or den"
                    .into()
            }
            ArchiveError::Read { .. } | ArchiveError::NotAnArchive { .. } => {
                "den loads the tar files `docker save`, `podman save` and `den save` write (plain, \
                 gzip or zstd compressed)"
                    .into()
            }
            ArchiveError::Missing { .. }
            | ArchiveError::BadJson { .. }
            | ArchiveError::LayerCount { .. }
            | ArchiveError::BadName { .. } => {
                "the archive is incomplete or damaged; nothing was loaded. Save it again".into()
            }
            ArchiveError::Mismatch { .. } => {
                "the archive was altered or damaged after it was saved; nothing was loaded".into()
            }
            ArchiveError::Layer { source, .. } => return source.hint(),
            ArchiveError::Store(e) => return e.hint(),
            ArchiveError::Image(e) => return e.hint(),
            ArchiveError::Unpack(e) => return e.hint(),
            ArchiveError::TarToTerminal => {
                "add -o FILE, or redirect the output: den export c > c.tar".into()
            }
            ArchiveError::WriteOutput { .. } => {
                "check that the output directory exists and is writable".into()
            }
            ArchiveError::ImportRead { .. } => {
                "give a tar file, a URL, or - to read it from stdin".into()
            }
        })
    }

    /// docker exits 1 when save or load fails (125 is for its command-line errors); what the
    /// store, the image checks and the unpacker found, and export's and import's mistakes, are
    /// den's (the binaries choose 1 for them where docker's verb does).
    fn exit_code(&self) -> i32 {
        match self {
            ArchiveError::Store(e) => e.exit_code(),
            ArchiveError::Image(e) => e.exit_code(),
            ArchiveError::Unpack(e) => e.exit_code(),
            ArchiveError::TarToTerminal
            | ArchiveError::WriteOutput { .. }
            | ArchiveError::ImportRead { .. } => EXIT_DEN,
            _ => 1,
        }
    }
}

#[cfg(test)]
mod tests;
