//! Images as data: references, manifests and indexes, platforms, image configurations.
//!
//! Entry points: [`Reference::parse`], [`manifest::parse`], [`manifest::select`],
//! [`Platform::parse`]. The types of the OCI image spec come from `oci-spec`; Docker's schema 2
//! manifests and manifest lists have the same shape and parse into the same types.

pub mod change;
pub mod checks;
pub mod list;
pub mod manifest;
pub mod reference;
pub mod sqsh;

pub use manifest::{Compression, Fetched, Platform};
pub use reference::{Reference, ReferenceError, familiar_name, familiar_repo, parse_digest};

use crate::error::Diagnose;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(
        "no matching manifest for {platform} in the manifest list of {reference} (it has: {available})"
    )]
    NoMatchingPlatform {
        reference: String,
        platform: String,
        available: String,
    },
    #[error("manifest of {reference} is not valid")]
    BadManifest {
        reference: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("manifest of {reference} has unsupported media type {media_type:?}")]
    UnsupportedManifest {
        reference: String,
        media_type: String,
    },
    #[error("layer {digest} of {reference} has unsupported media type {media_type:?}")]
    UnsupportedLayer {
        reference: String,
        digest: String,
        media_type: String,
    },
    #[error("image configuration {digest} is not valid")]
    BadConfig {
        digest: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{what} is {size} bytes, more than den reads ({limit})")]
    TooLarge { what: String, size: u64, limit: u64 },
    #[error("image {reference} has {count} layers, more than den mounts (500)")]
    TooManyLayers { reference: String, count: usize },
    #[error("image {reference} names a bad digest")]
    BadDigest {
        reference: String,
        #[source]
        source: crate::digest::DigestError,
    },
    #[error(
        "image {reference} lists {layers} layers but its configuration lists {diff_ids} diff ids"
    )]
    LayerCountMismatch {
        reference: String,
        layers: usize,
        diff_ids: usize,
    },
    #[error("invalid platform {0:?}")]
    BadPlatform(String),
    #[error("building for several platforms ({0}) needs --manifest LIST to hold the images")]
    PlatformsNeedList(String),
    #[error("-t names one image, and building for {0} makes one per platform")]
    TagsWithPlatforms(String),
    #[error("invalid manifest list format {0:?}")]
    BadListFormat(String),
    #[error(
        "{what} has {count} entries, more than den keeps in a list ({})",
        list::MAX_ENTRIES
    )]
    TooManyEntries { what: String, count: usize },
    #[error("invalid {what} {value:?}")]
    BadPlatformWord { what: String, value: String },
    #[error("invalid annotation {0:?}")]
    BadAnnotation(String),
    /// `import --change`: a Dockerfile instruction that does not apply to a configuration.
    #[error("invalid --change {change:?}: {reason}")]
    BadChange { change: String, reason: String },
    /// `build --format` (or `BUILDAH_FORMAT`): not a manifest format den writes.
    #[error("unrecognized image format {0:?}")]
    BadFormat(String),
}

impl Diagnose for ImageError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            ImageError::NoMatchingPlatform { .. } => {
                "choose one of the listed platforms with --platform os/arch".into()
            }
            ImageError::BadManifest { .. } | ImageError::BadConfig { .. } | ImageError::LayerCountMismatch { .. } => {
                "the registry served a broken image; push it again or ask its maintainer".into()
            }
            ImageError::UnsupportedManifest { media_type, .. } if media_type.contains("v1+") => {
                "this is a Docker schema 1 image, which is deprecated; push it again with a current tool".into()
            }
            ImageError::TooLarge { .. } | ImageError::TooManyLayers { .. } => {
                "the image is not one den can run safely; if it is yours, rebuild it with fewer, \
                 larger layers"
                    .into()
            }
            ImageError::BadDigest { source, .. } => source.hint(),
            ImageError::UnsupportedManifest { .. } | ImageError::UnsupportedLayer { .. } => {
                "den reads OCI and Docker schema 2 images with tar, gzip or zstd layers".into()
            }
            ImageError::BadPlatform(_) => "write it as os/arch[/variant], e.g. linux/amd64".into(),
            ImageError::BadListFormat(_) => "use --format oci or --format v2s2".into(),
            ImageError::TagsWithPlatforms(_) => {
                "leave out -t: the list --manifest names holds the images (`den manifest push LIST`)".into()
            }
            ImageError::PlatformsNeedList(_) => {
                "add --manifest LIST (e.g. --manifest localhost:5000/app:1), then `den manifest push LIST`".into()
            }
            ImageError::TooManyEntries { .. } => {
                "den reads lists of at most 256 entries: split the platforms over several lists (`den manifest remove` drops entries)".into()
            }
            ImageError::BadPlatformWord { .. } => {
                "use 1 to 64 letters, digits, '.', '_', '+' or '-' (e.g. --arch arm64 --variant v8)".into()
            }
            ImageError::BadAnnotation(_) => "write it as KEY=VALUE, e.g. org.opencontainers.image.title=app".into(),
            ImageError::BadChange { .. } => {
                "use CMD, ENTRYPOINT, ENV, WORKDIR, EXPOSE, USER or LABEL as in a Dockerfile, e.g. -c 'CMD [\"sh\"]'"
                    .into()
            }
            ImageError::BadFormat(_) => {
                "use --format oci (the default) or --format docker (Docker schema 2); check BUILDAH_FORMAT too".into()
            }
        })
    }
}
