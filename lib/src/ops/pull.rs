//! `pull`: fetch an image's manifest, config and layers, verify and unpack them, and name it.
//!
//! Everything comes in through the store's one road ([`crate::store::incoming`]) after the
//! image's checks ([`crate::image::checks`]): manifests and configs capped at 4 MiB, media types
//! known, digests typed, at most 500 layers. At most [`IN_FLIGHT`] blobs download at a time, each
//! read no further than its size and given up after 30 s without a byte; each verified layer is
//! unpacked as soon as it has arrived, on a pool of one thread per core. Nothing becomes visible
//! until everything is verified and unpacked: then the blobs and layers move into place, one
//! filesystem sync, and the image record last. A refused or failed pull leaves the store exactly
//! as it was.

use std::sync::Arc;

use oci_client::secrets::RegistryAuth;

use super::{Ctx, Error, LayerEvent, Report, Result};
use crate::auth::AuthFiles;
use crate::digest::Digest;
use crate::image::checks::{self, Document};
use crate::image::{ImageError, Platform, Reference};
use crate::registry::{Registry, RegistryError};
use crate::store::incoming::{self, RecordParts};
use crate::store::{ImageRecord, LayerRef};
use crate::unpack::{Options, Owners};

/// Blobs downloading at once: enough to fill a link, few enough that an image of hundreds of
/// layers does not open hundreds of connections.
pub const IN_FLIGHT: usize = 4;

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
    pub digest: Digest,
    /// Whether anything new was stored (docker's "Downloaded newer image" vs "up to date").
    pub changed: bool,
}

pub fn pull(ctx: &Ctx, opts: &PullOptions, report: &dyn Report) -> Result<Pulled> {
    let reference = Reference::parse(&opts.reference)?;
    let platform = match &opts.platform {
        Some(p) => {
            Platform::parse(p).ok_or_else(|| crate::image::ImageError::BadPlatform(p.clone()))?
        }
        None => Platform::host(),
    };
    let store = ctx.store()?;
    store.sweep();
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
    let files = AuthFiles::discover(&ctx.paths.config);
    let auth = match files.lookup(reference.registry(), reference.repository())? {
        Some(c) => RegistryAuth::Basic(c.username, c.password),
        None => RegistryAuth::Anonymous,
    };
    tracing::debug!("runtime started");
    rt.block_on(async move {
        report.pulling(&reference);
        let source = reference.to_string();
        let (registry, first) = Registry::connect(&reference, &registry_cfg, auth.clone()).await?;
        let registry = Arc::new(registry);
        let incoming = Arc::new(store.incoming()?);
        let (manifest, manifest_digest) =
            match checks::document(&source, &first.bytes, first.content_type.as_deref())? {
                Document::Manifest(m) => {
                    incoming.put_blob(&first.digest, &first.bytes)?;
                    (m, first.digest)
                }
                Document::Index(index) => {
                    let entry = checks::select(&source, &index, &platform)?;
                    incoming.put_blob(&first.digest, &first.bytes)?;
                    let by_digest = reference.with_digest(entry.digest.as_str());
                    let m = registry.manifest(&by_digest).await?;
                    match checks::document(
                        &by_digest.to_string(),
                        &m.bytes,
                        m.content_type.as_deref(),
                    )? {
                        Document::Manifest(man) => {
                            incoming.put_blob(&m.digest, &m.bytes)?;
                            (man, m.digest)
                        }
                        Document::Index(_) => {
                            return Err(Error::from(ImageError::UnsupportedManifest {
                                reference: by_digest.to_string(),
                                media_type: "nested index".into(),
                            }));
                        }
                    }
                }
            };

        // The configuration (small): fetch unless already here.
        let config_digest = manifest.config.digest.clone();
        if !incoming.has_blob(&config_digest) {
            registry.blob(&incoming, &manifest.config, |_| {}).await?;
        }
        let config = checks::config(
            &source,
            &config_digest,
            &incoming.read_blob(&config_digest)?,
        )?;
        let pairs = checks::pair_layers(&source, &manifest.layers, &config)?;
        let existing = store.images()?.into_iter().find(|i| i.id == config_digest);
        let mut changed = existing.is_none();

        // Layers: at most IN_FLIGHT downloads at once; each verified layer is unpacked as soon
        // as a worker is free, largest first (the last layer to finish sets the pace).
        let opts = Options { owners };
        let mut waiting: std::collections::VecDeque<(checks::Blob, Digest)> = Default::default();
        let mut seen = std::collections::HashSet::new();
        for (blob, diff_id) in &pairs {
            if !seen.insert(diff_id.clone()) {
                continue;
            }
            let short = blob.digest.short().to_string();
            if store.has_layer(diff_id) && store.has_blob(&blob.digest) {
                report.layer(&short, LayerEvent::AlreadyExists);
                continue;
            }
            changed = true;
            report.layer(&short, LayerEvent::Waiting(blob.size));
            waiting.push_back((blob.clone(), diff_id.clone()));
        }
        let mut downloads = futures_util::stream::FuturesUnordered::new();
        let mut unpacks = futures_util::stream::FuturesUnordered::new();
        let mut ready: Vec<(u64, checks::Blob, Digest)> = Vec::new();
        use futures_util::StreamExt;
        loop {
            while downloads.len() < IN_FLIGHT
                && let Some((blob, diff_id)) = waiting.pop_front()
            {
                let (registry, incoming) = (registry.clone(), incoming.clone());
                downloads.push(async move {
                    let short = blob.digest.short().to_string();
                    if !incoming.has_blob(&blob.digest) {
                        registry
                            .blob(&incoming, &blob, |n| {
                                report.layer(&short, LayerEvent::Downloaded(n))
                            })
                            .await?;
                        tracing::debug!(layer = %short, "downloaded");
                    }
                    report.layer(&short, LayerEvent::Verified);
                    Ok::<_, Error>((blob.size, blob, diff_id))
                });
            }
            while unpacks.len() < workers && !ready.is_empty() {
                let largest = (0..ready.len())
                    .max_by_key(|&i| ready[i].0)
                    .expect("not empty");
                let (_, blob, diff_id) = ready.swap_remove(largest);
                let short = blob.digest.short().to_string();
                report.layer(&short, LayerEvent::Extracting);
                let inc = incoming.clone();
                let (reference, digest) = (source.clone(), blob.digest.to_string());
                unpacks.push(async move {
                    tokio::task::spawn_blocking(move || {
                        inc.unpack_layer::<Error>(&inc.blob_path(&blob.digest), &diff_id, opts)
                    })
                    .await
                    .expect("unpack thread does not panic")
                    .map_err(|e| match e {
                        // Which layer of which image, as `load` says which entry of an archive.
                        Error::Unpack(source) => Error::from(RegistryError::Layer {
                            reference,
                            digest,
                            source,
                        }),
                        other => other,
                    })?;
                    Ok::<_, Error>(short)
                });
            }
            if downloads.is_empty() && unpacks.is_empty() && waiting.is_empty() {
                break;
            }
            tokio::select! {
                Some(done) = downloads.next(), if !downloads.is_empty() => {
                    let job = done?;
                    if incoming.has_layer(&job.2) {
                        report.layer(job.1.digest.short(), LayerEvent::Complete);
                    } else {
                        ready.push(job);
                    }
                }
                Some(done) = unpacks.next(), if !unpacks.is_empty() => {
                    let short = done?;
                    tracing::debug!(layer = %short, "unpacked");
                    report.layer(&short, LayerEvent::Complete);
                }
            }
        }
        report.digest(manifest_digest.as_str());

        let repo_digest = format!("{}@{}", reference.repo_name(), manifest_digest);
        if let Some(e) = &existing
            && (!e.names.contains(&reference.canonical()) || !e.repo_digests.contains(&repo_digest))
        {
            changed = true;
        }
        let name = reference.tag().map(|_| reference.canonical());
        let layers: Vec<LayerRef> = pairs
            .into_iter()
            .map(|(b, diff_id)| LayerRef {
                diff_id,
                blob: b.digest,
                media_type: b.media_type,
                size: b.size,
            })
            .collect();
        let incoming = Arc::into_inner(incoming).expect("every task is done");
        let store2 = store.clone();
        incoming.finish(|images| {
            let mut record = incoming::record(
                &store2,
                RecordParts {
                    config: &config_digest,
                    manifest: &manifest_digest,
                    manifest_media_type: &manifest.media_type,
                    layers,
                    created: config.created.as_deref(),
                    os: &config.os,
                    architecture: &config.architecture,
                    repo_digests: vec![repo_digest],
                },
            );
            if let Some(e) = &existing {
                record.added = e.added;
            }
            incoming::merge(images, record, name.as_deref());
            Ok(())
        })?;
        let image = store.find_image(&record_key(&reference, &manifest_digest))?;
        Ok(Pulled {
            image,
            reference: reference.clone(),
            digest: manifest_digest,
            changed,
        })
    })
}

fn record_key(reference: &Reference, digest: &Digest) -> String {
    if reference.tag().is_some() {
        reference.canonical()
    } else {
        format!("{}@{digest}", reference.repo_name())
    }
}
