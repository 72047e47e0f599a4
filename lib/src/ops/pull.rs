//! `pull`: fetch an image's manifest, config and layers, verify and unpack them, and name it.
//!
//! Everything comes in through the store's one road ([`crate::store::incoming`]) after the
//! image's checks ([`crate::image::checks`]): manifests and configs capped at 4 MiB, media types
//! known, digests typed, at most 500 layers. At most [`IN_FLIGHT`] blobs download at a time, each
//! read no further than its size and given up after 30 s without a byte; the layer blobs the
//! store lacks start downloading with the configuration (only unpacking needs what it says: the
//! diff ids), saving a round trip on every pull; each verified layer is unpacked as soon as it
//! has arrived, on a pool of one thread per core. Nothing becomes visible
//! until everything is verified and unpacked: then the blobs and layers move into place, one
//! filesystem sync, and the image record last. A refused or failed pull leaves the store exactly
//! as it was.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use oci_client::secrets::RegistryAuth;

use super::{Ctx, Error, LayerEvent, Report, Result};
use crate::digest::Digest;
use crate::image::checks::{self, Document};
use crate::image::{ImageError, Platform, Reference};
use crate::registry::{self, Registry, RegistryError};
use crate::store::incoming::{self, RecordParts};
use crate::store::{ImageRecord, Incoming, LayerRef};
use crate::unpack::{Options, Owners};

/// Blobs downloading at once: enough to fill a link, few enough that an image of hundreds of
/// layers does not open hundreds of connections.
pub const IN_FLIGHT: usize = 4;

#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    pub reference: String,
    pub platform: Option<String>,
    /// `--authfile`, `--creds`.
    pub access: crate::auth::Access,
}

/// The credentials for `reference`'s repository, as oci-client takes them.
fn registry_auth(ctx: &Ctx, opts: &PullOptions, reference: &Reference) -> Result<RegistryAuth> {
    let creds = opts.access.credentials(
        &ctx.paths.config,
        reference.registry(),
        reference.repository(),
    )?;
    Ok(match creds {
        Some(c) => RegistryAuth::Basic(c.username, c.password),
        None => RegistryAuth::Anonymous,
    })
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

/// `pull`: the image `opts.reference` names, for `opts.platform` (the host's by default).
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
    let unpack = Options {
        owners: match ctx.idmap() {
            crate::userns::IdMap::Single { .. } => Owners::Ignore,
            _ => Owners::Keep,
        },
    };
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let rt = runtime(workers)?;
    let auth = registry_auth(ctx, opts, &reference)?;
    tracing::debug!("runtime started");
    rt.block_on(async move {
        report.pulling(&reference);
        let source = reference.to_string();
        let (registry, first) = Registry::connect(&reference, &ctx.config.registry, auth).await?;
        let registry = Arc::new(registry);
        let incoming = Arc::new(store.incoming()?);
        let (manifest, manifest_digest) =
            resolve(&registry, &incoming, &reference, first, &platform).await?;
        // Held until the image is in the store: another den pulling these blobs waits, then
        // finds them there (store::Store::lock_blobs).
        let _blobs = lock_blobs(&store, &manifest)?;
        // The configuration (small): fetch unless already here.
        let config_digest = manifest.config.digest.clone();
        let configuration = async {
            if !incoming.has_blob(&config_digest) {
                registry.blob(&incoming, &manifest.config, |_| {}).await?;
            }
            let config = checks::config(
                &source,
                &config_digest,
                &incoming.read_blob(&config_digest)?,
            )?;
            let pairs = checks::pair_layers(&source, &manifest.layers, &config)?;
            Ok((config, pairs))
        };
        let layers = Layers {
            registry: registry.clone(),
            incoming: incoming.clone(),
            source: source.clone(),
            unpack,
            workers,
            report,
        };
        let (config, pairs, fetching) = layers
            .fetch(&store, &manifest.layers, configuration)
            .await?;
        drop(layers);
        let existing = store.images()?.into_iter().find(|i| i.id == config_digest);
        report.digest(manifest_digest.as_str());
        let found = Found {
            reference: &reference,
            manifest: &manifest,
            manifest_digest: &manifest_digest,
            config: &config,
            pairs,
        };
        let incoming = Arc::into_inner(incoming).expect("every task is done");
        let changed = found.finish(&store, incoming, existing.as_ref())? || fetching;
        let image = store.find_image(&record_key(&reference, &manifest_digest))?;
        let name = crate::image::familiar_name(&reference.canonical());
        store.record_event(
            &crate::store::Event::new("image", "pull", &name).with("name", name.clone()),
        );
        Ok(Pulled {
            image,
            reference: reference.clone(),
            digest: manifest_digest,
            changed,
        })
    })
}

/// Lock the blobs of `manifest` that the store lacks (its config and layers), waiting for a
/// den that is pulling any of them.
fn lock_blobs(
    store: &crate::store::Store,
    manifest: &checks::Manifest,
) -> Result<Vec<crate::store::Lock>> {
    let missing: Vec<Digest> = std::iter::once(&manifest.config)
        .chain(&manifest.layers)
        .map(|b| b.digest.clone())
        .filter(|d| !store.has_blob(d))
        .collect();
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    tracing::debug!(blobs = missing.len(), "locking the blobs to fetch");
    let held = store.lock_blobs(&missing)?;
    tracing::debug!("blobs locked");
    Ok(held)
}

/// The pull's runtime: two threads for the network, `workers` for unpacking.
fn runtime(workers: usize) -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(workers.max(2))
        .enable_all()
        .build()
        .map_err(|e| {
            crate::store::StoreError::Io {
                path: "tokio runtime".into(),
                source: e,
            }
            .into()
        })
}

/// The image's manifest, through its index for `platform` when the reference names one;
/// kept in `incoming` (the index too). The manifest and its digest.
async fn resolve(
    registry: &Registry,
    incoming: &Incoming,
    reference: &Reference,
    first: registry::Manifest,
    platform: &Platform,
) -> Result<(checks::Manifest, Digest)> {
    let source = reference.to_string();
    match checks::document(&source, &first.bytes, first.content_type.as_deref())? {
        Document::Manifest(m) => {
            incoming.put_blob(&first.digest, &first.bytes)?;
            Ok((m, first.digest))
        }
        Document::Index(index) => {
            let entry = checks::select(&source, &index, platform)?;
            incoming.put_blob(&first.digest, &first.bytes)?;
            let by_digest = reference.with_digest(entry.digest.as_str());
            let m = registry.manifest(&by_digest).await?;
            match checks::document(&by_digest.to_string(), &m.bytes, m.content_type.as_deref())? {
                Document::Manifest(man) => {
                    incoming.put_blob(&m.digest, &m.bytes)?;
                    Ok((man, m.digest))
                }
                Document::Index(_) => Err(Error::from(ImageError::UnsupportedManifest {
                    reference: by_digest.to_string(),
                    media_type: "nested index".into(),
                })),
            }
        }
    }
}

/// The layers to download (each once), in the manifest's order, and whether there are any;
/// those already stored are reported so, the others as waiting unless `started` already.
fn to_fetch(
    store: &crate::store::Store,
    pairs: &[(checks::Blob, Digest)],
    started: &HashSet<Digest>,
    report: &dyn Report,
) -> (VecDeque<(checks::Blob, Digest)>, bool) {
    let mut waiting = VecDeque::new();
    let mut seen = HashSet::new();
    for (blob, diff_id) in pairs {
        if !seen.insert(diff_id.clone()) {
            continue;
        }
        let short = blob.digest.short().to_string();
        if store.has_layer(diff_id) && store.has_blob(&blob.digest) {
            report.layer(&short, LayerEvent::AlreadyExists);
            continue;
        }
        if !started.contains(&blob.digest) {
            report.layer(&short, LayerEvent::Waiting(blob.size));
        }
        waiting.push_back((blob.clone(), diff_id.clone()));
    }
    let any = !waiting.is_empty();
    (waiting, any)
}

/// Downloading and unpacking an image's layers into `incoming`.
struct Layers<'r> {
    registry: Arc<Registry>,
    incoming: Arc<Incoming>,
    /// The reference, as errors name it.
    source: String,
    unpack: Options,
    /// Layers unpacking at once.
    workers: usize,
    report: &'r dyn Report,
}

/// What the configuration says of the layers, once it has come: the image's configuration, each
/// layer blob with its diff id, whether any layer is fetched, and the diff id of each blob that
/// is to be unpacked.
struct Known {
    config: checks::Config,
    pairs: Vec<(checks::Blob, Digest)>,
    fetching: bool,
    diff_ids: HashMap<Digest, Digest>,
}

impl Layers<'_> {
    /// Fetch the image's layers (`blobs`, the manifest's) while `configuration` (the image's
    /// configuration and the layers paired with their diff ids) is fetched: the blobs the store
    /// lacks start at once, the rest once the configuration says which layers it needs. At most
    /// [`IN_FLIGHT`] downloads at once; each verified layer is unpacked as soon as a worker is
    /// free and its diff id known, largest first (the last layer to finish sets the pace).
    /// Returns the configuration, the pairs, and whether any layer was fetched.
    async fn fetch(
        &self,
        store: &crate::store::Store,
        blobs: &[checks::Blob],
        configuration: impl std::future::Future<
            Output = Result<(checks::Config, Vec<(checks::Blob, Digest)>)>,
        >,
    ) -> Result<(checks::Config, Vec<(checks::Blob, Digest)>, bool)> {
        let mut early = self.missing(blobs);
        let mut configuration = std::pin::pin!(configuration);
        let mut known: Option<Known> = None;
        let mut started: HashSet<Digest> = HashSet::new();
        // Downloaded before the configuration said what they are.
        let mut arrived: Vec<(u64, checks::Blob)> = Vec::new();
        let mut waiting: VecDeque<(checks::Blob, Digest)> = VecDeque::new();
        let mut downloads = FuturesUnordered::new();
        let mut unpacks = FuturesUnordered::new();
        let mut ready: Vec<(u64, checks::Blob, Digest)> = Vec::new();
        loop {
            // The configuration's download counts while it runs.
            let room = if known.is_none() {
                IN_FLIGHT - 1
            } else {
                IN_FLIGHT
            };
            while downloads.len() < room {
                let next = match known {
                    None => early.pop_front(),
                    Some(_) => waiting.pop_front().map(|(b, _)| b),
                };
                let Some(blob) = next else { break };
                if started.insert(blob.digest.clone()) {
                    if known.is_none() {
                        // Before the configuration, which would have said so.
                        self.report
                            .layer(blob.digest.short(), LayerEvent::Waiting(blob.size));
                    }
                    downloads.push(self.download(blob));
                }
            }
            while unpacks.len() < self.workers && !ready.is_empty() {
                let largest = (0..ready.len())
                    .max_by_key(|&i| ready[i].0)
                    .expect("not empty");
                let (_, blob, diff_id) = ready.swap_remove(largest);
                unpacks.push(self.unpack(blob, diff_id));
            }
            if downloads.is_empty()
                && unpacks.is_empty()
                && waiting.is_empty()
                && let Some(k) = known.take()
            {
                return Ok((k.config, k.pairs, k.fetching));
            }
            tokio::select! {
                said = &mut configuration, if known.is_none() => {
                    let (config, pairs) = said?;
                    let (needed, fetching) = to_fetch(store, &pairs, &started, self.report);
                    let diff_ids: HashMap<Digest, Digest> = needed
                        .iter()
                        .map(|(b, d)| (b.digest.clone(), d.clone()))
                        .collect();
                    waiting = needed
                        .into_iter()
                        .filter(|(b, _)| !started.contains(&b.digest))
                        .collect();
                    let k = known.insert(Known { config, pairs, fetching, diff_ids });
                    for (size, blob) in arrived.drain(..) {
                        self.arrived(k, size, blob, &mut ready);
                    }
                }
                Some(done) = downloads.next(), if !downloads.is_empty() => {
                    let (size, blob) = done?;
                    match &known {
                        None => arrived.push((size, blob)),
                        Some(k) => self.arrived(k, size, blob, &mut ready),
                    }
                }
                Some(done) = unpacks.next(), if !unpacks.is_empty() => {
                    let short = done?;
                    tracing::debug!(layer = %short, "unpacked");
                    self.report.layer(&short, LayerEvent::Complete);
                }
            }
        }
    }

    /// The blobs of `blobs` neither the store nor this pull has, each once, in order.
    fn missing(&self, blobs: &[checks::Blob]) -> VecDeque<checks::Blob> {
        let mut seen = HashSet::new();
        blobs
            .iter()
            .filter(|b| !self.incoming.has_blob(&b.digest) && seen.insert(&b.digest))
            .cloned()
            .collect()
    }

    /// A downloaded blob whose diff id is known: ready to unpack, done if its layer is here
    /// already, passed over if no layer needs it (another blob of the same layer).
    fn arrived(
        &self,
        known: &Known,
        size: u64,
        blob: checks::Blob,
        ready: &mut Vec<(u64, checks::Blob, Digest)>,
    ) {
        let Some(diff_id) = known.diff_ids.get(&blob.digest) else {
            return;
        };
        if self.incoming.has_layer(diff_id) {
            self.report.layer(blob.digest.short(), LayerEvent::Complete);
        } else {
            ready.push((size, blob, diff_id.clone()));
        }
    }

    /// Download one layer's blob (unless it is here) and verify it; its size and blob.
    async fn download(&self, blob: checks::Blob) -> Result<(u64, checks::Blob)> {
        let short = blob.digest.short().to_string();
        if !self.incoming.has_blob(&blob.digest) {
            self.registry
                .blob(&self.incoming, &blob, |n| {
                    self.report.layer(&short, LayerEvent::Downloaded(n))
                })
                .await?;
            tracing::debug!(layer = %short, "downloaded");
        }
        self.report.layer(&short, LayerEvent::Verified);
        Ok((blob.size, blob))
    }

    /// Unpack one verified layer on a blocking thread; its short digest.
    async fn unpack(&self, blob: checks::Blob, diff_id: Digest) -> Result<String> {
        let short = blob.digest.short().to_string();
        self.report.layer(&short, LayerEvent::Extracting);
        let inc = self.incoming.clone();
        let (reference, digest) = (self.source.clone(), blob.digest.to_string());
        let opts = self.unpack;
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
        Ok(short)
    }
}

/// What a pull found, to record.
struct Found<'a> {
    reference: &'a Reference,
    manifest: &'a checks::Manifest,
    manifest_digest: &'a Digest,
    config: &'a checks::Config,
    pairs: Vec<(checks::Blob, Digest)>,
}

impl Found<'_> {
    /// Move the content into the store and write the image's record (keeping when an
    /// `existing` record was first added). Whether the record's names or repository digests
    /// changed.
    fn finish(
        self,
        store: &crate::store::Store,
        incoming: Incoming,
        existing: Option<&ImageRecord>,
    ) -> Result<bool> {
        let reference = self.reference;
        let repo_digest = format!("{}@{}", reference.repo_name(), self.manifest_digest);
        let changed = match existing {
            None => true,
            Some(e) => {
                !e.names.contains(&reference.canonical()) || !e.repo_digests.contains(&repo_digest)
            }
        };
        let name = reference.tag().map(|_| reference.canonical());
        let layers: Vec<LayerRef> = self
            .pairs
            .into_iter()
            .map(|(b, diff_id)| LayerRef {
                diff_id,
                blob: b.digest,
                media_type: b.media_type,
                size: b.size,
            })
            .collect();
        incoming.finish(|images| {
            let mut record = incoming::record(
                store,
                RecordParts {
                    config: &self.manifest.config.digest,
                    manifest: self.manifest_digest,
                    manifest_media_type: &self.manifest.media_type,
                    layers,
                    created: self.config.created.as_deref(),
                    os: &self.config.os,
                    architecture: &self.config.architecture,
                    repo_digests: vec![repo_digest],
                },
            );
            if let Some(e) = existing {
                record.added = e.added;
            }
            incoming::merge(images, record, name.as_deref());
            Ok(())
        })?;
        Ok(changed)
    }
}

fn record_key(reference: &Reference, digest: &Digest) -> String {
    if reference.tag().is_some() {
        reference.canonical()
    } else {
        format!("{}@{digest}", reference.repo_name())
    }
}
