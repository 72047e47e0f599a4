//! Reading an archive into the store: spool every file while hashing it, plan the images from
//! the index files, verify, unpack into staging, then make everything visible at once (see
//! [`crate::archive`]). The spool is `spool`, the plan `plan`; committing is here.

mod plan;
mod spool;

use std::collections::HashSet;
use std::io::Read;

use plan::{ManifestBlob, Planned, PlannedLayer};
use spool::{CHUNK, Spool};

use super::ArchiveError;
use super::format;
use crate::digest::{Digest, Hasher};
use crate::image::Reference;
use crate::store::incoming::{self, Incoming, RecordParts};
use crate::store::{ImageRecord, LayerRef, StagedLayer, Store};
use crate::unpack::{self, UnpackError};

/// What loading an archive returns.
type Result<T, E = ArchiveError> = std::result::Result<T, E>;

/// An image the archive held, as it is now in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The image id (the config's digest).
    pub id: Digest,
    /// The names it was given, in the archive's order.
    pub names: Vec<Reference>,
    /// Names taken from other images: (canonical name, the other image's id).
    pub renamed: Vec<(String, Digest)>,
}

/// Load the archive read from `input` (`archive` names it in messages) into `store`. Layers are
/// unpacked with `opts`; the caller has entered den's user namespace when owners are kept.
pub fn load(
    store: &Store,
    input: &mut dyn Read,
    archive: &str,
    opts: unpack::Options,
) -> Result<Vec<Loaded>> {
    let _pin = store.lock_content_shared()?;
    let spool = Spool::read(store, input, archive, opts)?;
    tracing::debug!(files = spool.files.len(), "archive spooled");
    let plan = if spool.get(format::MANIFEST_JSON).is_some() {
        spool.plan_docker()?
    } else if spool.get(format::INDEX_JSON).is_some() && spool.get(format::OCI_LAYOUT).is_some() {
        spool.plan_oci()?
    } else {
        return Err(ArchiveError::NotAnArchive {
            archive: archive.into(),
        });
    };
    commit(store, &spool, plan, opts)
}

/// Put the planned images in the store: their layers unpacked (or, already there, checked),
/// their blobs adopted from the spool, then every record at once.
fn commit(
    store: &Store,
    spool: &Spool,
    plan: Vec<Planned>,
    opts: unpack::Options,
) -> Result<Vec<Loaded>> {
    let known: HashSet<Digest> = store.images()?.into_iter().map(|i| i.id).collect();
    let new: Vec<&Planned> = {
        let mut seen = HashSet::new();
        plan.iter()
            .filter(|p| !known.contains(p.id()) && seen.insert(p.id().clone()))
            .collect()
    };
    let jobs = layer_jobs(store, spool, &new)?;
    let incoming = store.incoming()?;
    stage_layers(store, spool, &incoming, jobs, opts)?;
    tracing::debug!("layers unpacked");
    for p in &new {
        for l in &p.layers {
            incoming.adopt_blob(&l.blob, &l.file);
        }
        incoming.adopt_blob(&p.config_digest, &p.config_file);
        match &p.manifest {
            ManifestBlob::Spooled(file) => incoming.adopt_blob(&p.manifest_digest, file),
            ManifestBlob::Made(bytes) => incoming.put_blob(&p.manifest_digest, bytes)?,
        }
    }
    let mut loaded = loaded(&plan);
    // Everything is verified: make it visible, blobs and layers first, the records last.
    incoming.finish(|images| {
        for p in &new {
            images.push(record(store, p));
        }
        for p in &plan {
            name(images, p, &mut loaded);
        }
        Ok(())
    })?;
    Ok(loaded)
}

/// Layers to unpack, once each; compressed layers the store already has unpacked are only
/// checked against their diff id, since their blob is kept.
fn layer_jobs<'a>(
    store: &Store,
    spool: &Spool,
    new: &[&'a Planned],
) -> Result<Vec<&'a PlannedLayer>> {
    let mut jobs: Vec<&PlannedLayer> = Vec::new();
    let mut seen = HashSet::new();
    for l in new.iter().flat_map(|p| &p.layers) {
        if !seen.insert(l.diff_id.clone()) {
            continue;
        }
        if !store.has_layer(&l.diff_id) {
            jobs.push(l);
        } else if !l.verified && !store.has_blob(&l.blob) {
            verify_diff_id(spool, l)?;
        }
    }
    Ok(jobs)
}

/// Layers unpacked while the archive streamed in, then the rest, all into the intake.
fn stage_layers(
    store: &Store,
    spool: &Spool,
    incoming: &Incoming,
    jobs: Vec<&PlannedLayer>,
    opts: unpack::Options,
) -> Result<()> {
    let mut rest = Vec::new();
    for l in jobs {
        match spool.early_layer(&l.file, &l.blob, &l.diff_id) {
            Some((layer, stats)) => {
                incoming.add_layer(layer, &l.diff_id, stats.size, stats.entries)
            }
            None => rest.push(l),
        }
    }
    for (layer, diff_id, stats) in unpack_all(store, spool, &rest, opts)? {
        incoming.add_layer(layer, &diff_id, stats.size, stats.entries);
    }
    Ok(())
}

/// What the archive held, one entry per image with its names in the archive's order.
fn loaded(plan: &[Planned]) -> Vec<Loaded> {
    let mut loaded: Vec<Loaded> = Vec::new();
    for p in plan {
        match loaded.iter_mut().find(|l| l.id == *p.id()) {
            Some(l) => l.names.extend(p.names.iter().cloned()),
            None => loaded.push(Loaded {
                id: p.id().clone(),
                names: p.names.clone(),
                renamed: Vec::new(),
            }),
        }
    }
    for l in &mut loaded {
        let mut seen = HashSet::new();
        l.names.retain(|n| seen.insert(n.canonical()));
    }
    loaded
}

/// Give the image of `p` its names and repository digests, taking a name from any other image
/// that had it (noted in `loaded`).
fn name(images: &mut [ImageRecord], p: &Planned, loaded: &mut [Loaded]) {
    for n in &p.names {
        let c = n.canonical();
        for other in images.iter_mut() {
            if other.id != *p.id() && other.names.contains(&c) {
                other.names.retain(|x| x != &c);
                if let Some(l) = loaded.iter_mut().find(|l| l.id == *p.id()) {
                    l.renamed.push((c.clone(), other.id.clone()));
                }
            }
        }
    }
    // (Gone only if removed meanwhile by another den process.)
    let Some(image) = images.iter_mut().find(|i| i.id == *p.id()) else {
        return;
    };
    for n in &p.names {
        let c = n.canonical();
        if !image.names.contains(&c) {
            image.names.push(c);
        }
    }
    for d in &p.repo_digests {
        if !image.repo_digests.contains(d) {
            image.repo_digests.push(d.clone());
        }
    }
}

fn record(store: &Store, p: &Planned) -> ImageRecord {
    incoming::record(
        store,
        RecordParts {
            config: &p.config_digest,
            manifest: &p.manifest_digest,
            manifest_media_type: &p.manifest_media_type,
            layers: p
                .layers
                .iter()
                .map(|l| LayerRef {
                    diff_id: l.diff_id.clone(),
                    blob: l.blob.clone(),
                    media_type: l.media_type.clone(),
                    size: l.size,
                })
                .collect(),
            created: p.config.created.as_deref(),
            os: &p.config.os,
            architecture: &p.config.architecture,
            repo_digests: Vec::new(),
        },
    )
}

/// Inflate a compressed layer and check its diff id, without unpacking it.
fn verify_diff_id(spool: &Spool, l: &PlannedLayer) -> Result<()> {
    let read_err = |source| ArchiveError::Layer {
        archive: spool.archive.clone(),
        entry: l.entry.clone(),
        source: UnpackError::Tar(source),
    };
    let mut r = super::save::open_layer(&l.file).map_err(read_err)?;
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_err(e)),
        }
    }
    let actual = hasher.finish();
    if actual != l.diff_id {
        return Err(spool.mismatch(&l.entry, &l.diff_id, &actual));
    }
    Ok(())
}

/// Unpack `jobs` into staged layers, largest first, on as many threads as there are cores. On
/// any failure every staged layer is removed and the first error returned.
fn unpack_all(
    store: &Store,
    spool: &Spool,
    jobs: &[&PlannedLayer],
    opts: unpack::Options,
) -> Result<Vec<(StagedLayer, Digest, unpack::Stats)>> {
    let mut order: Vec<&PlannedLayer> = jobs.to_vec();
    order.sort_by_key(|l| std::cmp::Reverse(l.size));
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .min(order.len());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done = std::sync::Mutex::new(Vec::new());
    let failed = std::sync::Mutex::new(None::<ArchiveError>);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(l) = order.get(i) else { break };
                    if failed.lock().expect("lock").is_some() {
                        break;
                    }
                    match unpack_one(store, spool, l, opts) {
                        Ok(d) => done.lock().expect("lock").push(d),
                        Err(e) => {
                            failed.lock().expect("lock").get_or_insert(e);
                        }
                    }
                }
            });
        }
    });
    let done = done.into_inner().expect("lock");
    if let Some(e) = failed.into_inner().expect("lock") {
        for (layer, _, _) in done {
            layer.abandon();
        }
        return Err(e);
    }
    Ok(done)
}

fn unpack_one(
    store: &Store,
    spool: &Spool,
    l: &PlannedLayer,
    opts: unpack::Options,
) -> Result<(StagedLayer, Digest, unpack::Stats)> {
    tracing::debug!(layer = %l.entry, size = l.size, "unpacking");
    let staged = store.stage_layer()?;
    match unpack::unpack_file(&l.file, &staged.diff(), opts, Some(&l.diff_id)) {
        Ok(stats) => Ok((staged, l.diff_id.clone(), stats)),
        Err(e) => {
            staged.abandon();
            Err(match e {
                UnpackError::DiffIdMismatch { expected, actual } => {
                    spool.mismatch(&l.entry, &expected, &actual)
                }
                source => ArchiveError::Layer {
                    archive: spool.archive.clone(),
                    entry: l.entry.clone(),
                    source,
                },
            })
        }
    }
}
