//! Reading an archive into the store: spool every file while hashing it, plan the images from
//! the index files, verify, unpack into staging, then make everything visible at once (see
//! [`crate::archive`]).

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use oci_spec::image::ImageIndex;

use super::ArchiveError;
use super::early::{self, EarlyUnpack};
use super::format::{self, DockerManifest};
use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};
use crate::image::checks::{self, Document};
use crate::image::manifest::{OCI_LAYER, OCI_LAYER_GZIP, OCI_MANIFEST};
use crate::image::{Compression, ImageError, Platform, Reference};
use crate::store::incoming::{self, RecordParts};
use crate::store::{LayerRef, StagedLayer, Staging, Store, StoreError};
use crate::unpack::{self, UnpackError};

const CHUNK: usize = 1 << 20;
/// The most entries an archive may have.
const MAX_ENTRIES: usize = 20_000;
/// Entries up to this size are also kept in memory (the JSON files are read back)...
const SMALL: u64 = 1 << 20;
/// ...up to this much in all: an archive of many small entries (a few hundred KiB once
/// compressed) must not hold them all in memory. Past it, entries are read back from disk.
const KEPT_MAX: u64 = 16 << 20;
/// Layers from this size on are unpacked while they stream in (see [`super::early`]).
const EARLY_MIN: u64 = 256 << 10;
const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

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
        }
        .into());
    };
    commit(store, &spool, plan, opts)
}

// ------------------------------------------------------------------------------------ spool

/// A regular file of the archive, copied to the staging directory.
struct Spooled {
    path: PathBuf,
    digest: Digest,
    size: u64,
    compression: Compression,
    /// The content, for small files.
    bytes: Option<Vec<u8>>,
}

/// Every file of the archive, by cleaned name, in a staging directory that is removed with it.
struct Spool {
    archive: String,
    store: Store,
    opts: unpack::Options,
    staging: Staging,
    files: HashMap<String, Spooled>,
    /// Symbolic and hard links between entries (podman's `<id>/layer.tar -> ../<hex>.tar`).
    links: HashMap<String, String>,
    /// Layers unpacked as they streamed in, by spooled file.
    early: std::sync::Mutex<HashMap<PathBuf, EarlyUnpack>>,
    /// Bytes of entries kept in memory (at most [`KEPT_MAX`]).
    kept: u64,
}

impl Drop for Spool {
    fn drop(&mut self) {
        let early = std::mem::take(self.early.get_mut().unwrap_or_else(|p| p.into_inner()));
        for (_, e) in early {
            e.cancel();
        }
        let _ = crate::fs::remove_tree(&self.staging.path);
    }
}

impl Spool {
    fn read(
        store: &Store,
        input: &mut dyn Read,
        archive: &str,
        opts: unpack::Options,
    ) -> Result<Spool> {
        let read_err = |source| ArchiveError::Read {
            archive: archive.into(),
            source,
        };
        // The first bytes tell a compressed archive (docker accepts `docker save | gzip`).
        let mut head = Vec::with_capacity(8);
        input.take(6).read_to_end(&mut head).map_err(read_err)?;
        if head.is_empty() {
            return Err(if archive == "stdin" {
                ArchiveError::StdinEmpty
            } else {
                ArchiveError::NotAnArchive {
                    archive: archive.into(),
                }
            }
            .into());
        }
        let raw = std::io::BufReader::with_capacity(
            CHUNK,
            std::io::Cursor::new(head.clone()).chain(input),
        );
        let stream: Box<dyn Read + '_> = match Compression::sniff(&head) {
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(raw)),
            Compression::Zstd => {
                Box::new(zstd::stream::read::Decoder::with_buffer(raw).map_err(read_err)?)
            }
            Compression::None => Box::new(raw),
        };
        let mut spool = Spool {
            archive: archive.into(),
            store: store.clone(),
            opts,
            staging: store.staging_dir("load")?,
            files: HashMap::new(),
            links: HashMap::new(),
            early: Default::default(),
            kept: 0,
        };
        let mut tar = tar::Archive::new(stream);
        let mut buf = vec![0u8; CHUNK];
        for (n, entry) in tar.entries().map_err(read_err)?.enumerate() {
            // 500 layers of a few files each fit many times over.
            if n >= MAX_ENTRIES {
                return Err(ArchiveError::TooManyEntries {
                    archive: archive.into(),
                    limit: MAX_ENTRIES,
                }
                .into());
            }
            let mut entry = entry.map_err(read_err)?;
            let Some(name) = format::clean_name(&entry.path_bytes()) else {
                continue;
            };
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let size = entry.size();
                    spool.add(name, size, &mut entry, &mut buf)?;
                }
                kind @ (tar::EntryType::Symlink | tar::EntryType::Link) => {
                    let Some(target) = entry.link_name_bytes() else {
                        continue;
                    };
                    // A symlink is relative to its directory, a hard link to the archive's root.
                    let mut full = Vec::new();
                    if kind == tar::EntryType::Symlink
                        && !target.starts_with(b"/")
                        && let Some((dir, _)) = name.rsplit_once('/')
                    {
                        full.extend_from_slice(dir.as_bytes());
                        full.push(b'/');
                    }
                    full.extend_from_slice(&target);
                    if let Some(t) = format::clean_name(&full) {
                        spool.links.insert(name, t);
                    }
                }
                _ => {}
            }
        }
        // Read to the end so that a writer piping into den is not cut off mid-padding.
        let mut rest = tar.into_inner();
        std::io::copy(&mut rest, &mut std::io::sink()).map_err(read_err)?;
        Ok(spool)
    }

    fn add(&mut self, name: String, size: u64, src: &mut dyn Read, buf: &mut [u8]) -> Result<()> {
        let path = self.staging.path.join(self.files.len().to_string());
        let io = |p: &PathBuf| {
            let p = p.clone();
            move |source| StoreError::Io { path: p, source }
        };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&path)
            .map_err(io(&path))?;
        let mut hasher = Hasher::new();
        let keep = size <= SMALL && self.kept + size <= KEPT_MAX;
        if keep {
            self.kept += size;
        }
        let mut bytes = keep.then(|| Vec::with_capacity(size as usize));
        let mut early: Option<EarlyUnpack> = None;
        let mut head = Vec::new();
        let mut done = 0u64;
        loop {
            let n = read_full(src, buf).map_err(|source| ArchiveError::Read {
                archive: self.archive.clone(),
                source,
            })?;
            if n == 0 {
                break;
            }
            let chunk = &buf[..n];
            if done == 0 {
                head.extend_from_slice(&chunk[..n.min(4)]);
                if size >= EARLY_MIN
                    && self.worth_unpacking(&name)
                    && let Some(plain) = early::looks_like_layer(chunk)
                {
                    early = EarlyUnpack::start(&self.store, plain, self.opts).ok();
                }
            }
            if let Some(e) = &mut early {
                e.feed(chunk);
            }
            hasher.update(chunk);
            file.write_all(chunk).map_err(io(&path))?;
            if let Some(b) = &mut bytes {
                b.extend_from_slice(chunk);
            }
            done += n as u64;
        }
        if done != size {
            return Err(ArchiveError::Read {
                archive: self.archive.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("the archive ends in the middle of {name}"),
                ),
            }
            .into());
        }
        if let Some(mut e) = early {
            e.close();
            self.early
                .get_mut()
                .unwrap_or_else(|p| p.into_inner())
                .insert(path.clone(), e);
        }
        self.files.insert(
            name,
            Spooled {
                path,
                digest: hasher.finish(),
                size: done,
                compression: Compression::sniff(&head),
                bytes,
            },
        );
        Ok(())
    }

    /// Whether to unpack the file `name` as it streams in: not when its name says it is a
    /// layer or blob the store already has.
    fn worth_unpacking(&self, name: &str) -> bool {
        match format::digest_in_path(name) {
            Some(d) => !self.store.has_layer(&d) && !self.store.has_blob(&d),
            None => true,
        }
    }

    /// The layer unpacked from `file` as it streamed in, if it has the diff id `diff_id`.
    fn early_layer(
        &self,
        file: &std::path::Path,
        digest: &Digest,
        diff_id: &Digest,
    ) -> Option<(StagedLayer, unpack::Stats)> {
        let e = self
            .early
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(file)?;
        let (staged, stats) = e.finish(digest)?;
        if stats.diff_id == *diff_id {
            Some((staged, stats))
        } else {
            staged.abandon();
            None
        }
    }

    /// The file `name` names, following links.
    fn get(&self, name: &str) -> Option<&Spooled> {
        let mut name = format::clean_name(name.as_bytes())?;
        for _ in 0..16 {
            if let Some(f) = self.files.get(&name) {
                return Some(f);
            }
            name = self.links.get(&name)?.clone();
        }
        None
    }

    fn entry(&self, name: &str) -> std::result::Result<&Spooled, ArchiveError> {
        self.get(name).ok_or_else(|| ArchiveError::Missing {
            archive: self.archive.clone(),
            entry: name.into(),
        })
    }

    fn bytes(&self, f: &Spooled) -> Result<Vec<u8>> {
        match &f.bytes {
            Some(b) => Ok(b.clone()),
            None => std::fs::read(&f.path).map_err(|source| {
                StoreError::Io {
                    path: f.path.clone(),
                    source,
                }
                .into()
            }),
        }
    }

    /// The bytes of a JSON document of the archive (an index, a manifest, a config), refused
    /// unread when larger than any such document may be.
    fn document(&self, name: &str, f: &Spooled) -> Result<Vec<u8>> {
        checks::size(&format!("{name} in {}", self.archive), f.size)?;
        self.bytes(f)
    }

    fn json<T: serde::de::DeserializeOwned>(&self, name: &str, f: &Spooled) -> Result<T> {
        serde_json::from_slice(&self.document(name, f)?).map_err(|source| {
            ArchiveError::BadJson {
                archive: self.archive.clone(),
                entry: name.into(),
                source,
            }
            .into()
        })
    }

    fn mismatch(&self, entry: &str, expected: &Digest, actual: &Digest) -> ArchiveError {
        ArchiveError::Mismatch {
            archive: self.archive.clone(),
            entry: entry.into(),
            expected: expected.to_string(),
            actual: actual.to_string(),
        }
    }

    /// The OCI blob `digest`, checked.
    fn blob(&self, digest: &Digest) -> Result<(String, &Spooled)> {
        let name = format::blob_path(digest);
        let f = self.entry(&name)?;
        if f.digest != *digest {
            return Err(self.mismatch(&name, digest, &f.digest).into());
        }
        Ok((name, f))
    }

    fn name(&self, name: &str) -> Result<Reference> {
        Reference::parse(name).map_err(|source| {
            ArchiveError::BadName {
                archive: self.archive.clone(),
                name: name.into(),
                source,
            }
            .into()
        })
    }

    /// The images of a docker archive, from `manifest.json`.
    fn plan_docker(&self) -> Result<Vec<Planned>> {
        let list: Vec<DockerManifest> =
            self.json(format::MANIFEST_JSON, self.entry(format::MANIFEST_JSON)?)?;
        let mut out = Vec::new();
        for m in list {
            let c = self.entry(&m.config)?;
            if let Some(want) = format::digest_in_path(&m.config)
                && want != c.digest
            {
                return Err(self.mismatch(&m.config, &want, &c.digest).into());
            }
            let source = format!("{} in {}", m.config, self.archive);
            let config = checks::config(&source, &c.digest, &self.document(&m.config, c)?)?;
            if config.diff_ids.len() != m.layers.len() {
                return Err(ArchiveError::LayerCount {
                    archive: self.archive.clone(),
                    config: m.config.clone(),
                    layers: m.layers.len(),
                    diff_ids: config.diff_ids.len(),
                }
                .into());
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
                        return Err(self.mismatch(path, diff_id, &f.digest).into());
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
    fn plan_oci(&self) -> Result<Vec<Planned>> {
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

/// Read until `buf` is full or the input ends; returns how much was read.
fn read_full(src: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match src.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

// ------------------------------------------------------------------------------------- plan

/// A layer of a planned image: where its blob is spooled and what it must turn out to be.
#[derive(Debug, Clone)]
struct PlannedLayer {
    entry: String,
    file: PathBuf,
    diff_id: Digest,
    blob: Digest,
    media_type: String,
    size: u64,
    /// Whether the spooled bytes are known to be the tar of `diff_id` already.
    verified: bool,
}

enum ManifestBlob {
    /// In the archive (an OCI layout): kept byte for byte.
    Spooled(PathBuf),
    /// Made for a docker archive.
    Made(Vec<u8>),
}

/// An image the archive holds, checked against its index but not yet in the store.
struct Planned {
    config_digest: Digest,
    config_file: PathBuf,
    config: checks::Config,
    manifest_digest: Digest,
    manifest_media_type: String,
    manifest: ManifestBlob,
    layers: Vec<PlannedLayer>,
    names: Vec<Reference>,
    repo_digests: Vec<String>,
}

impl Planned {
    fn id(&self) -> &Digest {
        &self.config_digest
    }
}

// ----------------------------------------------------------------------------------- commit

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
    // Layers to unpack, once each; compressed layers the store already has unpacked are only
    // checked against their diff id, since their blob is kept.
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
    // Layers unpacked while the archive streamed in, then the rest, all into the intake.
    let incoming = store.incoming()?;
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

    let mut loaded: Vec<Loaded> = Vec::new();
    for p in &plan {
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
    // Everything is verified: make it visible, blobs and layers first, the records last.
    incoming.finish(|images| {
        for p in &new {
            images.push(record(store, p));
        }
        for p in &plan {
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
                continue;
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
        Ok(())
    })?;
    Ok(loaded)
}

fn record(store: &Store, p: &Planned) -> crate::store::ImageRecord {
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
            Err(e) => return Err(read_err(e).into()),
        }
    }
    let actual = hasher.finish();
    if actual != l.diff_id {
        return Err(spool.mismatch(&l.entry, &l.diff_id, &actual).into());
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
    let failed = std::sync::Mutex::new(None::<Error>);
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
            }
            .into())
        }
    }
}
