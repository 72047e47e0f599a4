//! The one road by which images come into the store: a pull, a `load`, an `import`, a build's
//! commit. Each source checks what it reads with [`crate::image::checks`] (sizes, media types,
//! digests, layer counts), then hands verified content to an [`Incoming`]:
//!
//! - blobs are written (or moved) into the incoming's own staging directory under `tmp/`, and
//!   kept only once their digest is right;
//! - layers are unpacked into staging directories of their own;
//! - [`Incoming::finish`] moves every blob into `blobs/`, commits every layer into `layers/`,
//!   syncs the filesystem once, and only then writes the image records, through one function
//!   ([`record`]).
//!
//! Until `finish`, nothing of the image is visible, and dropping an `Incoming` (the source
//! failed: a wrong digest, a refused layer, a server that went away) removes everything it
//! staged: a refused image leaves the store exactly as it was. A den killed midway leaves only
//! its staging directory, which the next writer sweeps (its flock died with it).
//!
//! The caller holds the content lock shared for the whole intake, so garbage collection never
//! sees half an image.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::{
    BlobWriter, Digest, ImageRecord, LayerRef, Result, StagedLayer, Staging, Store, StoreError,
    io_err,
};

/// An image's content on its way into the store.
pub struct Incoming {
    store: Store,
    staging: Staging,
    /// Verified blobs in staging, by digest.
    blobs: Mutex<Vec<(Digest, PathBuf)>>,
    /// Unpacked layers: (staged directory, diff id, content bytes, tar entries).
    layers: Mutex<Vec<(StagedLayer, Digest, u64, u64)>>,
    /// Writes staged content back to disk while more is coming (see [`crate::fs::Writeback`]).
    writeback: crate::fs::Writeback,
}

impl Store {
    /// Start bringing an image in.
    pub fn incoming(&self) -> Result<Incoming> {
        let staging = self.staging_dir("incoming")?;
        let blobs = staging.path.join("blobs");
        std::fs::create_dir(&blobs).map_err(io_err(&blobs))?;
        Ok(Incoming {
            store: self.clone(),
            staging,
            blobs: Mutex::new(Vec::new()),
            layers: Mutex::new(Vec::new()),
            writeback: crate::fs::Writeback::new(&self.root),
        })
    }
}

impl Incoming {
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn staged_path(&self, digest: &Digest) -> PathBuf {
        self.staging.path.join("blobs").join(digest.hex())
    }

    /// Whether the blob is in the store or staged here.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.store.has_blob(digest) || self.staged(digest).is_some()
    }

    fn staged(&self, digest: &Digest) -> Option<PathBuf> {
        let blobs = self.blobs.lock().unwrap_or_else(|p| p.into_inner());
        blobs
            .iter()
            .find(|(d, _)| d == digest)
            .map(|(_, p)| p.clone())
    }

    /// Where the blob's bytes are: staged here, else in the store.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.staged(digest)
            .unwrap_or_else(|| self.store.blob_path(digest))
    }

    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let p = self.blob_path(digest);
        std::fs::read(&p).map_err(io_err(&p))
    }

    /// Keep `bytes` as the blob `digest`, after checking that they are.
    pub fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        super::verify(digest, bytes)?;
        if self.has_blob(digest) {
            return Ok(());
        }
        let path = self.staged_path(digest);
        std::fs::write(&path, bytes).map_err(io_err(&path))?;
        self.keep(digest, path);
        Ok(())
    }

    /// A writer for a blob that arrives in pieces; [`Incoming::commit_blob`] checks and keeps it.
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        self.store.blob_writer()
    }

    /// Check the written blob against `expected` and keep it; returns where it is.
    pub fn commit_blob(&self, writer: BlobWriter, expected: &Digest) -> Result<PathBuf> {
        let dest = self.staged_path(expected);
        writer.commit_to(&dest, expected)?;
        self.keep(expected, dest.clone());
        Ok(dest)
    }

    /// Keep a file already verified to be the blob `digest` (an archive's spooled entry, on the
    /// store's filesystem); it is moved into the store by `finish`.
    pub fn adopt_blob(&self, digest: &Digest, file: &Path) {
        if !self.has_blob(digest) {
            self.keep(digest, file.to_path_buf());
        }
    }

    fn keep(&self, digest: &Digest, path: PathBuf) {
        let mut blobs = self.blobs.lock().unwrap_or_else(|p| p.into_inner());
        if !blobs.iter().any(|(d, _)| d == digest) {
            blobs.push((digest.clone(), path));
        }
    }

    /// Whether the layer is in the store or unpacked here.
    pub fn has_layer(&self, diff_id: &Digest) -> bool {
        self.store.has_layer(diff_id)
            || self
                .layers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .any(|(_, d, _, _)| d == diff_id)
    }

    /// Keep a layer unpacked (and checked against its diff id) in staging.
    pub fn add_layer(&self, staged: StagedLayer, diff_id: &Digest, size: u64, entries: u64) {
        let mut layers = self.layers.lock().unwrap_or_else(|p| p.into_inner());
        if layers.iter().any(|(_, d, _, _)| d == diff_id) {
            staged.abandon();
            return;
        }
        layers.push((staged, diff_id.clone(), size, entries));
    }

    /// Unpack the verified blob at `blob` into a staged layer, checked against `diff_id`, and
    /// keep it here: the one way `pull` and `import` unpack a layer. Errors are the store's or
    /// the unpacker's, in the caller's error type.
    pub fn unpack_layer<E: From<StoreError> + From<crate::unpack::UnpackError>>(
        &self,
        blob: &Path,
        diff_id: &Digest,
        opts: crate::unpack::Options,
    ) -> std::result::Result<(), E> {
        let staged = self.store.stage_layer()?;
        match crate::unpack::unpack_file(blob, &staged.diff(), opts, Some(diff_id)) {
            Ok(stats) => {
                self.add_layer(staged, diff_id, stats.size, stats.entries);
                self.writeback.kick();
                Ok(())
            }
            Err(e) => {
                staged.abandon();
                Err(e.into())
            }
        }
    }

    /// Make everything visible: blobs and layers in place, one sync, then `records` changes the
    /// image records (under the meta lock) and its result is returned.
    pub fn finish<T>(self, records: impl FnOnce(&mut Vec<ImageRecord>) -> Result<T>) -> Result<T> {
        let blobs = std::mem::take(&mut *self.blobs.lock().unwrap_or_else(|p| p.into_inner()));
        let layers = std::mem::take(&mut *self.layers.lock().unwrap_or_else(|p| p.into_inner()));
        let mut described = Vec::with_capacity(layers.len());
        for (staged, diff_id, size, entries) in layers {
            let record = self
                .store
                .describe_layer(&staged, &diff_id, size, entries)?;
            described.push((staged, record));
        }
        // Everything staged reaches the disk before any of it takes its name in the store: a
        // crash leaves staged files (swept later), never a named blob or layer whose bytes
        // were lost. One sync of the filesystem instead of an fsync per file.
        tracing::debug!("content staged; syncing the store's filesystem");
        let root = self.store.root();
        crate::fs::sync_fs(root).map_err(super::io_err(root))?;
        let mut dirs: Vec<PathBuf> = Vec::new();
        for (digest, path) in blobs {
            if self.store.has_blob(&digest) {
                continue;
            }
            let dest = self.store.own_blob_path(&digest);
            std::fs::rename(&path, &dest).map_err(io_err(&dest))?;
            self.store.publish(&dest, false)?;
            dirs.extend(dest.parent().map(Path::to_path_buf));
        }
        for (staged, record) in described {
            let diff_id = record.diff_id.clone();
            self.store.place_layer(staged, record)?;
            dirs.extend(
                self.store
                    .layer_dir(&diff_id)
                    .parent()
                    .map(Path::to_path_buf),
            );
            dirs.push(self.store.links_dir());
        }
        // The names last before the record that uses them (an fsync of each directory renamed
        // into: on journaling filesystems the first commits them all).
        dirs.sort();
        dirs.dedup();
        for d in &dirs {
            crate::fs::sync_dir(d);
        }
        self.store.update_images(records)
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        let layers = std::mem::take(self.layers.get_mut().unwrap_or_else(|p| p.into_inner()));
        for (staged, ..) in layers {
            staged.abandon();
        }
        let _ = crate::fs::remove_tree(&self.staging.path);
    }
}

impl Incoming {
    /// Finish an image den made itself (a build, an import): its configuration `config` and an
    /// OCI manifest over `layers` (already in the store, or added here) are written, then its
    /// record, named `name` (canonical) if given. Returns the record.
    pub fn finish_local(
        self,
        config: &serde_json::Value,
        layers: &[LayerRef],
        name: Option<&str>,
    ) -> Result<ImageRecord> {
        self.finish_local_as(config, layers, name, crate::image::manifest::Format::Oci)
    }

    /// [`Incoming::finish_local`] with the manifest in `format` (`build --format`).
    pub fn finish_local_as(
        self,
        config: &serde_json::Value,
        layers: &[LayerRef],
        name: Option<&str>,
        format: crate::image::manifest::Format,
    ) -> Result<ImageRecord> {
        let config_bytes = serde_json::to_vec(config).expect("config serializes");
        let config_digest = Digest::of(&config_bytes);
        // Parts of a base image's configuration travel into it: checked like any image's.
        let checked = crate::image::checks::config("the new image", &config_digest, &config_bytes)
            .map_err(StoreError::from)?;
        self.put_blob(&config_digest, &config_bytes)?;
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": format.manifest_type(),
            "config": {"mediaType": format.config_type(), "digest": config_digest, "size": config_bytes.len()},
            "layers": layers.iter().map(|l| serde_json::json!({"mediaType": format.layer_type(&l.media_type), "digest": l.blob, "size": l.size})).collect::<Vec<_>>(),
        });
        let manifest_bytes = serde_json::to_vec(&manifest).expect("manifest serializes");
        let manifest_digest = Digest::of(&manifest_bytes);
        self.put_blob(&manifest_digest, &manifest_bytes)?;
        let store = self.store.clone();
        self.finish(|images| {
            let record = record(
                &store,
                RecordParts {
                    config: &config_digest,
                    manifest: &manifest_digest,
                    manifest_media_type: format.manifest_type(),
                    layers: layers.to_vec(),
                    created: checked.created.as_deref(),
                    os: &checked.os,
                    architecture: &checked.architecture,
                    repo_digests: Vec::new(),
                },
            );
            // The same image built again in the other format carries the format asked for
            // last (the id is the config's, the same in both).
            if let Some(existing) = images.iter_mut().find(|i| i.id == record.id)
                && existing.manifest_media_type != record.manifest_media_type
            {
                existing.manifest = record.manifest.clone();
                existing.manifest_media_type = record.manifest_media_type.clone();
            }
            merge(images, record.clone(), name);
            Ok(images
                .iter()
                .find(|i| i.id == record.id)
                .cloned()
                .unwrap_or(record))
        })
    }
}

/// What an image record is made of, whatever the source.
pub struct RecordParts<'a> {
    pub config: &'a Digest,
    pub manifest: &'a Digest,
    pub manifest_media_type: &'a str,
    pub layers: Vec<LayerRef>,
    /// The image config's `created`, `os` and `architecture`.
    pub created: Option<&'a str>,
    pub os: &'a str,
    pub architecture: &'a str,
    pub repo_digests: Vec<String>,
}

/// The record for an image whose content is in the store (its layers' sizes are read from their
/// records). The one place an [`ImageRecord`] is made.
pub fn record(store: &Store, parts: RecordParts<'_>) -> ImageRecord {
    let size = parts
        .layers
        .iter()
        .map(|l| store.layer_record(&l.diff_id).map(|r| r.size).unwrap_or(0))
        .sum();
    ImageRecord {
        id: parts.config.clone(),
        names: Vec::new(),
        repo_digests: parts.repo_digests,
        manifest: parts.manifest.clone(),
        manifest_media_type: parts.manifest_media_type.into(),
        config: parts.config.clone(),
        layers: parts.layers,
        created: parts
            .created
            .and_then(|c| DateTime::parse_from_rfc3339(c).ok())
            .map(|c| c.with_timezone(&Utc)),
        size,
        os: parts.os.into(),
        architecture: parts.architecture.into(),
        added: Utc::now(),
    }
}

/// Put `record` among `images` and give it `name`, taking the name from any other image; an
/// image already there keeps its record and gains the name and repo digests.
pub fn merge(images: &mut Vec<ImageRecord>, mut record: ImageRecord, name: Option<&str>) {
    if let Some(c) = name {
        for other in images.iter_mut() {
            other.names.retain(|n| n != c);
        }
    }
    match images.iter_mut().find(|i| i.id == record.id) {
        Some(existing) => {
            if let Some(c) = name {
                existing.names.push(c.to_string());
            }
            for d in record.repo_digests.drain(..) {
                if !existing.repo_digests.contains(&d) {
                    existing.repo_digests.push(d);
                }
            }
        }
        None => {
            if let Some(c) = name
                && !record.names.iter().any(|n| n == c)
            {
                record.names.push(c.to_string());
            }
            images.push(record);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        (t, s)
    }

    #[test]
    fn nothing_is_visible_until_finish_and_a_dropped_intake_leaves_nothing() {
        let (t, s) = store();
        let blob = Digest::of(b"layer");
        let diff = Digest::of(b"diff");
        {
            let inc = s.incoming().unwrap();
            inc.put_blob(&blob, b"layer").unwrap();
            assert!(inc.put_blob(&Digest::of(b"x"), b"y").is_err());
            let st = s.stage_layer().unwrap();
            std::fs::write(st.diff().join("f"), b"x").unwrap();
            inc.add_layer(st, &diff, 1, 1);
            assert!(inc.has_blob(&blob) && inc.has_layer(&diff));
            assert!(!s.has_blob(&blob) && !s.has_layer(&diff));
        }
        // Dropped: its staging goes, the store is as it was.
        assert_eq!(std::fs::read_dir(t.path().join("tmp")).unwrap().count(), 0);
        assert!(!s.has_blob(&blob) && !s.has_layer(&diff));

        let inc = s.incoming().unwrap();
        inc.put_blob(&blob, b"layer").unwrap();
        let st = s.stage_layer().unwrap();
        inc.add_layer(st, &diff, 1, 1);
        let n = inc
            .finish(|images| {
                merge(
                    images,
                    crate::store::images::tests::record(&"a".repeat(64), &[]),
                    Some("docker.io/library/x:1"),
                );
                Ok(images.len())
            })
            .unwrap();
        assert_eq!(n, 1);
        assert!(s.has_blob(&blob) && s.has_layer(&diff));
        assert_eq!(s.find_image("x:1").unwrap().id.hex(), "a".repeat(64));
        assert_eq!(std::fs::read_dir(t.path().join("tmp")).unwrap().count(), 0);
    }
}
