//! The checks every image coming in passes, whatever its source (a registry, an archive, a tar
//! to import, a build): written once, here, and applied before anything is stored.
//!
//! An image is data from a stranger. What it says is parsed into checked types at this edge:
//!
//! - a manifest, index or config is at most [`MAX_DOCUMENT`] bytes (docker's and containerd's
//!   limit is 4 MiB too): more is refused before it is parsed;
//! - a manifest's media type is one den knows (OCI or Docker schema 2); a document whose media
//!   type is unknown is refused with the type named, never read as if it were OCI;
//! - every digest (config, layers, diff ids, index entries) is a [`Digest`], so a digest like
//!   `sha256:../../x` fails here and never names a path;
//! - an image has at most [`MAX_LAYERS`] layers (overlay's practical limit: lowerdir must fit in
//!   a page), its layers are of media types den can apply, and its manifest and config agree on
//!   the count.
//!
//! [`document`] reads a manifest or an index, [`config`] an image configuration, [`pair_layers`]
//! matches a manifest's layer blobs with the config's diff ids.

use oci_spec::image::{Descriptor, ImageIndex};

use super::ImageError;
use super::manifest::{self, Fetched, Platform};
use crate::digest::Digest;

/// The largest manifest, index or image config den reads.
pub const MAX_DOCUMENT: u64 = 4 << 20;
/// The most layers an image may have.
pub const MAX_LAYERS: usize = 500;

/// A blob a manifest or index names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
}

/// A checked image manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Its media type (OCI's when the document names none).
    pub media_type: String,
    pub config: Blob,
    pub layers: Vec<Blob>,
}

/// A manifest or an index.
#[derive(Debug, Clone)]
pub enum Document {
    Manifest(Manifest),
    Index(Box<ImageIndex>),
}

/// A checked image configuration: what den itself needs from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub diff_ids: Vec<Digest>,
    pub created: Option<String>,
    pub os: String,
    pub architecture: String,
}

/// `what` is at most [`MAX_DOCUMENT`] bytes.
pub fn size(what: &str, len: u64) -> Result<(), ImageError> {
    if len > MAX_DOCUMENT {
        return Err(ImageError::TooLarge {
            what: what.into(),
            size: len,
            limit: MAX_DOCUMENT,
        });
    }
    Ok(())
}

/// A descriptor's digest, size and media type, checked.
pub fn blob(source: &str, d: &Descriptor) -> Result<Blob, ImageError> {
    Ok(Blob {
        digest: digest(source, d.digest().as_ref())?,
        size: d.size(),
        media_type: d.media_type().to_string(),
    })
}

fn digest(source: &str, s: &str) -> Result<Digest, ImageError> {
    Digest::parse(s).map_err(|e| ImageError::BadDigest {
        reference: source.into(),
        source: e,
    })
}

/// Read a manifest or an index fetched for `source`; `content_type` is the server's header.
pub fn document(
    source: &str,
    bytes: &[u8],
    content_type: Option<&str>,
) -> Result<Document, ImageError> {
    size(&format!("the manifest of {source}"), bytes.len() as u64)?;
    match manifest::parse(source, bytes, content_type)? {
        Fetched::Index(index) => {
            if index.manifests().len() > super::list::MAX_ENTRIES {
                return Err(ImageError::TooManyEntries {
                    what: source.into(),
                    count: index.manifests().len(),
                });
            }
            for m in index.manifests() {
                digest(source, m.digest().as_ref())?;
            }
            Ok(Document::Index(index))
        }
        Fetched::Manifest(m) => {
            let config = blob(source, m.config())?;
            size(&format!("the configuration of {source}"), config.size)?;
            if m.layers().len() > MAX_LAYERS {
                return Err(ImageError::TooManyLayers {
                    reference: source.into(),
                    count: m.layers().len(),
                });
            }
            let mut layers = Vec::with_capacity(m.layers().len());
            for l in m.layers() {
                let b = blob(source, l)?;
                if !manifest::layer_supported(&b.media_type) {
                    return Err(ImageError::UnsupportedLayer {
                        reference: source.into(),
                        digest: b.digest.to_string(),
                        media_type: b.media_type,
                    });
                }
                layers.push(b);
            }
            let media_type = m
                .media_type()
                .as_ref()
                .map(|t| t.to_string())
                .or_else(|| content_type.map(|c| c.split(';').next().unwrap_or(c).trim().into()))
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| manifest::OCI_MANIFEST.into());
            Ok(Document::Manifest(Manifest {
                media_type,
                config,
                layers,
            }))
        }
    }
}

/// The entry of `index` for `platform`, checked.
pub fn select(source: &str, index: &ImageIndex, platform: &Platform) -> Result<Blob, ImageError> {
    blob(source, manifest::select(source, index, platform)?)
}

#[derive(serde::Deserialize)]
struct RawConfig {
    #[serde(default)]
    rootfs: Option<RawRootfs>,
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    os: Option<String>,
    #[serde(default)]
    architecture: Option<String>,
}

#[derive(serde::Deserialize)]
struct RawRootfs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

/// Read the image configuration of `source` (`digest` names it in errors). A missing or null
/// `config` section is an image with no defaults, as docker reads it.
pub fn config(source: &str, digest: &Digest, bytes: &[u8]) -> Result<Config, ImageError> {
    size(
        &format!("configuration {digest} of {source}"),
        bytes.len() as u64,
    )?;
    let raw: RawConfig = serde_json::from_slice(bytes).map_err(|e| ImageError::BadConfig {
        digest: digest.to_string(),
        source: e,
    })?;
    let ids = raw.rootfs.map(|r| r.diff_ids).unwrap_or_default();
    if ids.len() > MAX_LAYERS {
        return Err(ImageError::TooManyLayers {
            reference: source.into(),
            count: ids.len(),
        });
    }
    let diff_ids = ids
        .iter()
        .map(|d| self::digest(source, d))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Config {
        diff_ids,
        created: raw.created,
        os: raw.os.unwrap_or_else(|| "linux".into()),
        architecture: raw.architecture.unwrap_or_else(|| "amd64".into()),
    })
}

/// Each layer blob of `layers` with the diff id the config gives it; the counts must agree.
pub fn pair_layers(
    source: &str,
    layers: &[Blob],
    config: &Config,
) -> Result<Vec<(Blob, Digest)>, ImageError> {
    if layers.len() != config.diff_ids.len() {
        return Err(ImageError::LayerCountMismatch {
            reference: source.into(),
            layers: layers.len(),
            diff_ids: config.diff_ids.len(),
        });
    }
    Ok(layers
        .iter()
        .cloned()
        .zip(config.diff_ids.iter().cloned())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn manifest_with(media_type: &str, layers: usize, layer_digest: &str) -> String {
        let layer = format!(
            r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{layer_digest}","size":7}}"#
        );
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{media_type}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":5}},"layers":[{}]}}"#,
            d('1'),
            vec![layer; layers].join(",")
        )
    }

    #[test]
    fn manifests_are_checked() {
        let ok = manifest_with(manifest::OCI_MANIFEST, 2, &d('2'));
        let Document::Manifest(m) = document("r", ok.as_bytes(), None).unwrap() else {
            panic!()
        };
        assert_eq!(m.layers.len(), 2);
        assert_eq!(m.config.digest.as_str(), d('1'));

        let unknown = manifest_with("application/vnd.example.thing+json", 1, &d('2'));
        let e = document("r", unknown.as_bytes(), None).unwrap_err();
        assert!(
            e.to_string().contains("application/vnd.example.thing+json"),
            "{e}"
        );

        // Refused as it is parsed (by oci-spec's own digest check, or by den's).
        let evil = manifest_with(manifest::OCI_MANIFEST, 1, "sha256:../../../../tmp/x");
        assert!(matches!(
            document("r", evil.as_bytes(), None),
            Err(ImageError::BadDigest { .. } | ImageError::BadManifest { .. })
        ));

        let many = manifest_with(manifest::OCI_MANIFEST, MAX_LAYERS + 1, &d('2'));
        let e = document("r", many.as_bytes(), None).unwrap_err();
        assert!(e.to_string().contains("501"), "{e}");

        let mut huge = manifest_with(manifest::OCI_MANIFEST, 1, &d('2')).into_bytes();
        huge.resize(MAX_DOCUMENT as usize + 1, b' ');
        assert!(matches!(
            document("r", &huge, None),
            Err(ImageError::TooLarge { .. })
        ));
    }

    #[test]
    fn configs_are_checked() {
        let id = Digest::of(b"c");
        let c = config(
            "r",
            &id,
            format!(
                r#"{{"config":null,"rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
                d('3')
            )
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(c.diff_ids.len(), 1);
        assert_eq!(c.os, "linux");
        let bad = r#"{"rootfs":{"diff_ids":["sha256:../../../../tmp/somedir"]}}"#;
        assert!(matches!(
            config("r", &id, bad.as_bytes()),
            Err(ImageError::BadDigest { .. })
        ));
        let layers = vec![Blob {
            digest: Digest::of(b"l"),
            size: 1,
            media_type: "m".into(),
        }];
        assert!(pair_layers("r", &layers, &c).is_ok());
        assert!(pair_layers("r", &[], &c).is_err());
    }
}
