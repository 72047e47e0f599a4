//! `pull`: fetch an image's manifest, config and layers, verify and unpack them, and name it.
//!
//! Layers download concurrently; each is unpacked as soon as it has arrived and been verified,
//! on a pool of one thread per core (each unpack itself runs inflate and file writes on two
//! threads). Nothing becomes visible until it is complete: blobs appear under their digest only
//! once verified, a layer's directory only once fully unpacked, and the image record last, after
//! one filesystem sync for everything the pull wrote.

use std::sync::Arc;

use chrono::Utc;
use oci_client::secrets::RegistryAuth;
use oci_spec::image::{Descriptor, ImageConfiguration, ImageManifest};

use super::{Ctx, LayerEvent, Report};
use crate::error::{Error, Result};
use crate::image::{Fetched, ImageError, Platform, Reference, manifest};
use crate::registry::Registry;
use crate::store::{ImageRecord, LayerRef, Store};
use crate::unpack::{Options, Owners};

#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    pub reference: String,
    pub platform: Option<String>,
}

/// What a pull did.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub image: ImageRecord,
    pub reference: Reference,
    /// The manifest digest (of the platform's manifest).
    pub digest: String,
    /// Whether anything new was stored (docker's "Downloaded newer image" vs "up to date").
    pub changed: bool,
}

pub fn pull(ctx: &Ctx, opts: &PullOptions, report: &dyn Report) -> Result<Pulled> {
    let reference = Reference::parse(&opts.reference)?;
    let platform = match &opts.platform {
        Some(p) => {
            Platform::parse(p).ok_or_else(|| crate::error::UsageError::BadPlatform(p.clone()))?
        }
        None => Platform::host(),
    };
    let store = ctx.store()?;
    store.sweep_tmp();
    let _pin = store.lock_content_shared()?;
    let owners = match ctx.idmap() {
        crate::userns::IdMap::Single { .. } => Owners::Ignore,
        _ => Owners::Keep,
    };
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(workers.max(2))
        .enable_all()
        .build()
        .map_err(|e| crate::store::StoreError::Io {
            path: "tokio runtime".into(),
            source: e,
        })?;
    let registry_cfg = ctx.config.registry.clone();
    let auth = match super::login::credentials(ctx, reference.registry(), reference.repository())? {
        Some(c) => RegistryAuth::Basic(c.username, c.password),
        None => RegistryAuth::Anonymous,
    };
    tracing::debug!("runtime started");
    rt.block_on(async move {
        report.pulling(&reference);
        let (registry, body, digest) =
            Registry::connect(&reference, &registry_cfg, auth.clone()).await?;
        let registry = Arc::new(registry);
        let (manifest, manifest_bytes, manifest_digest) =
            match manifest::parse(&reference.to_string(), &body, None)? {
                Fetched::Manifest(m) => (m, body, digest),
                Fetched::Index(index) => {
                    let entry = manifest::select(&reference.to_string(), &index, &platform)?;
                    store.put_blob(&digest, &body).map_err(|source| {
                        crate::registry::RegistryError::Store {
                            reference: reference.to_string(),
                            source,
                        }
                    })?;
                    let by_digest = reference.with_digest(entry.digest().as_ref());
                    let (b, d) = registry.manifest(&by_digest).await?;
                    match manifest::parse(&by_digest.to_string(), &b, None)? {
                        Fetched::Manifest(m) => (m, b, d),
                        Fetched::Index(_) => {
                            return Err(Error::from(ImageError::UnsupportedManifest {
                                reference: by_digest.to_string(),
                                media_type: "nested index".into(),
                            }));
                        }
                    }
                }
            };
        let tamper = |digest: &str| {
            let reference = reference.to_string();
            let digest = digest.to_string();
            move |source: crate::store::StoreError| match source {
                crate::store::StoreError::DigestMismatch { .. } => {
                    crate::registry::RegistryError::Tampered {
                        reference,
                        digest,
                        source,
                    }
                }
                other => crate::registry::RegistryError::Store {
                    reference,
                    source: other,
                },
            }
        };
        store
            .put_blob(&manifest_digest, &manifest_bytes)
            .map_err(tamper(&manifest_digest))?;

        // The configuration (small): fetch unless already here.
        let config_desc = manifest.config().clone();
        let config_digest = config_desc.digest().to_string();
        if !store.has_blob(&config_digest) {
            registry.blob(&store, &config_desc, |_| {}).await?;
        }
        let config_bytes = store.read_blob(&config_digest)?;
        let config: ImageConfiguration =
            serde_json::from_slice(&config_bytes).map_err(|source| ImageError::BadConfig {
                digest: config_digest.clone(),
                source,
            })?;
        let diff_ids: Vec<String> = config.rootfs().diff_ids().to_vec();
        let layers: Vec<Descriptor> = manifest.layers().to_vec();
        check_layers(&reference, &manifest, &diff_ids)?;

        let id = config_digest.trim_start_matches("sha256:").to_string();
        let existing = store.images()?.into_iter().find(|i| i.id == id);
        let mut changed = existing.is_none();

        // Layers: all downloads at once; each verified layer is unpacked as soon as a worker is
        // free, largest first (the last layer to finish sets the pace on two cores).
        let opts = Options { owners };
        let mut downloads = futures_util::stream::FuturesUnordered::new();
        let mut unpacks = futures_util::stream::FuturesUnordered::new();
        let mut ready: Vec<(u64, String, String, String)> = Vec::new(); // size, short, blob, diff id
        let mut seen = std::collections::HashSet::new();
        for (desc, diff_id) in layers.iter().zip(diff_ids.iter()) {
            if !seen.insert(diff_id.clone()) {
                continue;
            }
            let short = short_digest(desc.digest().as_ref());
            if store.has_layer(diff_id) && store.has_blob(desc.digest().as_ref()) {
                report.layer(&short, LayerEvent::AlreadyExists);
                continue;
            }
            changed = true;
            report.layer(&short, LayerEvent::Waiting(desc.size()));
            let (registry, store, desc, diff_id) = (
                registry.clone(),
                store.clone(),
                desc.clone(),
                diff_id.clone(),
            );
            downloads.push(async move {
                let blob = desc.digest().to_string();
                if !store.has_blob(&blob) {
                    registry
                        .blob(&store, &desc, |n| {
                            report.layer(&short, LayerEvent::Downloaded(n))
                        })
                        .await?;
                    tracing::debug!(layer = %short, "downloaded");
                }
                report.layer(&short, LayerEvent::Verified);
                Ok::<_, Error>((desc.size(), short, blob, diff_id))
            });
        }
        use futures_util::StreamExt;
        loop {
            while unpacks.len() < workers && !ready.is_empty() {
                let largest = (0..ready.len())
                    .max_by_key(|&i| ready[i].0)
                    .expect("not empty");
                let (_, short, blob, diff_id) = ready.swap_remove(largest);
                report.layer(&short, LayerEvent::Extracting);
                let (s2, path) = (store.clone(), store.blob_path(&blob));
                unpacks.push(async move {
                    tokio::task::spawn_blocking(move || unpack_layer(&s2, &path, &diff_id, opts))
                        .await
                        .expect("unpack thread does not panic")?;
                    Ok::<_, Error>(short)
                });
            }
            if downloads.is_empty() && unpacks.is_empty() {
                break;
            }
            tokio::select! {
                Some(done) = downloads.next(), if !downloads.is_empty() => {
                    let job = done?;
                    if store.has_layer(&job.3) {
                        report.layer(&job.1, LayerEvent::Complete);
                    } else {
                        ready.push(job);
                    }
                }
                Some(done) = unpacks.next(), if !unpacks.is_empty() => {
                    let short = done?;
                    tracing::debug!(layer = %short, "unpacked");
                    report.layer(&short, LayerEvent::Complete);
                    // Start writing this layer to disk now, while others unpack, so the final
                    // sync has little left to do.
                    let root = store.root().to_path_buf();
                    tokio::task::spawn_blocking(move || crate::store::sync_fs(&root));
                }
            }
        }
        report.digest(&manifest_digest);

        let mut layer_refs = Vec::new();
        let mut size = 0;
        for (desc, diff_id) in layers.iter().zip(diff_ids.iter()) {
            size += store.layer_record(diff_id).map(|r| r.size).unwrap_or(0);
            layer_refs.push(LayerRef {
                diff_id: diff_id.clone(),
                blob: desc.digest().to_string(),
                media_type: desc.media_type().to_string(),
                size: desc.size(),
            });
        }
        let repo_digest = format!("{}@{}", reference.repo_name(), manifest_digest);
        if let Some(e) = &existing
            && (!e.names.contains(&reference.canonical()) || !e.repo_digests.contains(&repo_digest))
        {
            changed = true;
        }
        let record = ImageRecord {
            id,
            names: vec![],
            repo_digests: vec![repo_digest],
            manifest: manifest_digest.clone(),
            manifest_media_type: manifest
                .media_type()
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_else(|| manifest::OCI_MANIFEST.into()),
            config: config_digest,
            layers: layer_refs,
            created: config
                .created()
                .as_ref()
                .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
                .map(|d| d.with_timezone(&Utc)),
            size,
            os: config.os().to_string(),
            architecture: config.architecture().to_string(),
            added: existing.as_ref().map(|e| e.added).unwrap_or_else(Utc::now),
        };
        // One sync for every blob and file this pull wrote, then the record that makes it visible.
        tracing::debug!("layers unpacked; syncing the store's filesystem");
        crate::store::sync_fs(store.root())?;
        tracing::debug!("synced");
        let name = if reference.tag().is_some() {
            Some(&reference)
        } else {
            None
        };
        store.put_image(record, name)?;
        let image = store.find_image(&record_key(&reference, &manifest_digest))?;
        Ok(Pulled {
            image,
            reference: reference.clone(),
            digest: manifest_digest,
            changed,
        })
    })
}

fn record_key(reference: &Reference, digest: &str) -> String {
    if reference.tag().is_some() {
        reference.canonical()
    } else {
        format!("{}@{digest}", reference.repo_name())
    }
}

fn check_layers(
    reference: &Reference,
    manifest: &ImageManifest,
    diff_ids: &[String],
) -> Result<()> {
    if manifest.layers().len() != diff_ids.len() {
        return Err(ImageError::LayerCountMismatch {
            reference: reference.to_string(),
            layers: manifest.layers().len(),
            diff_ids: diff_ids.len(),
        }
        .into());
    }
    for l in manifest.layers() {
        let mt = l.media_type().to_string();
        if !manifest::layer_supported(&mt) {
            return Err(ImageError::UnsupportedLayer {
                reference: reference.to_string(),
                digest: l.digest().to_string(),
                media_type: mt,
            }
            .into());
        }
    }
    Ok(())
}

/// Unpack a verified blob into a staged layer and commit it.
pub fn unpack_layer(
    store: &Store,
    blob: &std::path::Path,
    diff_id: &str,
    opts: Options,
) -> Result<()> {
    let staged = store.stage_layer()?;
    match crate::unpack::unpack_file(blob, &staged.diff(), opts, Some(diff_id)) {
        Ok(stats) => {
            store.commit_layer(staged, diff_id, stats.size, stats.entries)?;
            Ok(())
        }
        Err(e) => {
            staged.abandon();
            Err(e.into())
        }
    }
}

/// docker's 12-hex form of a digest.
pub fn short_digest(d: &str) -> String {
    d.trim_start_matches("sha256:").chars().take(12).collect()
}
