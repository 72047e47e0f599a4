//! The plan: the images an archive holds, read from its index (`manifest.json` for a docker
//! archive, `index.json` for an OCI layout) and checked against the spooled files, before
//! anything enters the store.

use std::path::PathBuf;

use oci_spec::image::ImageIndex;

use super::Result;
use super::spool::Spool;
use crate::archive::ArchiveError;
use crate::archive::format::{self, DockerManifest};
use crate::digest::Digest;
use crate::image::checks::{self, Document};
use crate::image::manifest::{OCI_LAYER, OCI_LAYER_GZIP, OCI_MANIFEST};
use crate::image::{Compression, ImageError, Platform, Reference};

const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

impl Spool {
    /// The images of a docker archive, from `manifest.json`.
    pub(super) fn plan_docker(&self) -> Result<Vec<Planned>> {
        let list: Vec<DockerManifest> =
            self.json(format::MANIFEST_JSON, self.entry(format::MANIFEST_JSON)?)?;
        let mut out = Vec::new();
        for m in list {
            let c = self.entry(&m.config)?;
            if let Some(want) = format::digest_in_path(&m.config)
                && want != c.digest
            {
                return Err(self.mismatch(&m.config, &want, &c.digest));
            }
            let source = format!("{} in {}", m.config, self.archive);
            let config = checks::config(&source, &c.digest, &self.document(&m.config, c)?)?;
            if config.diff_ids.len() != m.layers.len() {
                return Err(ArchiveError::LayerCount {
                    archive: self.archive.clone(),
                    config: m.config.clone(),
                    layers: m.layers.len(),
                    diff_ids: config.diff_ids.len(),
                });
            }
            let mut layers = Vec::new();
            for (path, diff_id) in m.layers.iter().zip(&config.diff_ids) {
                let f = self.entry(path)?;
                // A plain tar is its own diff id. docker also reads compressed layer files; their
                // diff id is checked when they are inflated.
                let (blob, media_type, verified) = match f.compression {
                    _ if f.digest == *diff_id => (diff_id.clone(), OCI_LAYER, true),
                    Compression::Gzip => (f.digest.clone(), OCI_LAYER_GZIP, false),
                    Compression::Zstd => (f.digest.clone(), OCI_LAYER_ZSTD, false),
                    Compression::None => {
                        return Err(self.mismatch(path, diff_id, &f.digest));
                    }
                };
                layers.push(PlannedLayer {
                    entry: path.clone(),
                    file: f.path.clone(),
                    diff_id: diff_id.clone(),
                    blob,
                    media_type: media_type.into(),
                    size: f.size,
                    verified,
                });
            }
            let descs: Vec<(String, Digest, u64)> = layers
                .iter()
                .map(|l| (l.media_type.clone(), l.blob.clone(), l.size))
                .collect();
            let manifest = format::oci_manifest(&c.digest, c.size, &descs);
            let names = m
                .repo_tags
                .unwrap_or_default()
                .iter()
                .map(|t| self.name(t))
                .collect::<Result<Vec<_>>>()?;
            out.push(Planned {
                config_digest: c.digest.clone(),
                config_file: c.path.clone(),
                config,
                manifest_digest: Digest::of(&manifest),
                manifest_media_type: OCI_MANIFEST.into(),
                manifest: ManifestBlob::Made(manifest),
                layers,
                names,
                repo_digests: Vec::new(),
            });
        }
        Ok(out)
    }

    /// The images of an OCI layout, from `index.json`.
    pub(super) fn plan_oci(&self) -> Result<Vec<Planned>> {
        let index: ImageIndex = self.json(format::INDEX_JSON, self.entry(format::INDEX_JSON)?)?;
        let mut out = Vec::new();
        for desc in index.manifests() {
            // Attestations and other non-images sit in indexes with an unknown platform.
            if desc
                .platform()
                .as_ref()
                .is_some_and(|p| p.os().to_string() == "unknown")
            {
                continue;
            }
            let top = checks::blob(format::INDEX_JSON, desc)?;
            let (mut name, mut file) = self.blob(&top.digest)?;
            let mut digest = top.digest;
            let mut media_type = top.media_type;
            let mut parsed =
                checks::document(&name, &self.document(&name, file)?, Some(&media_type))?;
            if let Document::Index(idx) = &parsed {
                let entry = checks::select(&name, idx, &Platform::host())?;
                digest = entry.digest;
                media_type = entry.media_type;
                (name, file) = self.blob(&digest)?;
                parsed = checks::document(&name, &self.document(&name, file)?, Some(&media_type))?;
            }
            let Document::Manifest(m) = parsed else {
                return Err(ImageError::UnsupportedManifest {
                    reference: name,
                    media_type: "nested index".into(),
                }
                .into());
            };
            let (config_name, c) = self.blob(&m.config.digest)?;
            let config = checks::config(&config_name, &c.digest, &self.document(&config_name, c)?)?;
            let mut layers = Vec::new();
            for (l, diff_id) in checks::pair_layers(&config_name, &m.layers, &config)? {
                let (entry, f) = self.blob(&l.digest)?;
                layers.push(PlannedLayer {
                    entry,
                    file: f.path.clone(),
                    verified: f.digest == diff_id,
                    diff_id,
                    blob: f.digest.clone(),
                    media_type: l.media_type,
                    size: f.size,
                });
            }
            let names = match format::name_from_annotations(desc.annotations().as_ref()) {
                Some(n) => vec![self.name(&n)?],
                None => Vec::new(),
            };
            out.push(Planned {
                config_digest: c.digest.clone(),
                config_file: c.path.clone(),
                config,
                repo_digests: names
                    .iter()
                    .map(|n| format!("{}@{digest}", n.repo_name()))
                    .collect(),
                manifest_digest: digest,
                manifest_media_type: m.media_type,
                manifest: ManifestBlob::Spooled(file.path.clone()),
                layers,
                names,
            });
        }
        Ok(out)
    }
}

/// A layer of a planned image: where its blob is spooled and what it must turn out to be.
#[derive(Debug, Clone)]
pub(super) struct PlannedLayer {
    pub(super) entry: String,
    pub(super) file: PathBuf,
    pub(super) diff_id: Digest,
    pub(super) blob: Digest,
    pub(super) media_type: String,
    pub(super) size: u64,
    /// Whether the spooled bytes are known to be the tar of `diff_id` already.
    pub(super) verified: bool,
}

pub(super) enum ManifestBlob {
    /// In the archive (an OCI layout): kept byte for byte.
    Spooled(PathBuf),
    /// Made for a docker archive.
    Made(Vec<u8>),
}

/// An image the archive holds, checked against its index but not yet in the store.
pub(super) struct Planned {
    pub(super) config_digest: Digest,
    pub(super) config_file: PathBuf,
    pub(super) config: checks::Config,
    pub(super) manifest_digest: Digest,
    pub(super) manifest_media_type: String,
    pub(super) manifest: ManifestBlob,
    pub(super) layers: Vec<PlannedLayer>,
    pub(super) names: Vec<Reference>,
    pub(super) repo_digests: Vec<String>,
}

impl Planned {
    pub(super) fn id(&self) -> &Digest {
        &self.config_digest
    }
}
