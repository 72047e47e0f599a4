//! Garbage collection: delete the layers and blobs that nothing refers to any more.
//!
//! Content is shared (two images with a common base share its layers; a container keeps the
//! layers it runs on; a build-cache step names the layers it produced), so removing an image only
//! removes its record. What is garbage is decided afterwards, in one place, from every root there
//! is:
//!
//! - each image record: its manifest, config and layer blobs, its layers (by diff id), and the
//!   manifests its repo digests name (an index pulled for a platform, when it was kept);
//! - each container record: its own layer list (a build step's container, or a container whose
//!   image was removed with `rmi -f`) and, while the image exists, its image's layers;
//! - each build-cache step (`build-cache/steps/*.json`, see `build::cache`): the layers and
//!   blobs it names, so a cached build stays valid until `den builder prune`.
//!
//! Safety against concurrent den processes rests on the content lock: whoever adds or pins
//! content (a pull, a build, a container being created) holds it shared for as long as it
//! works, and the collector holds it exclusive from reading the roots to the last deletion, so
//! it never sees a half-added image nor deletes what someone is about to use. Crash safety: a
//! layer is renamed aside into `tmp/` before its files go ([`Store::remove_layer`]), and a blob
//! is one unlink; a collector killed midway leaves only garbage that the next run removes.
//!
//! Layer files belong to subordinate ids, so the collector runs inside den's user namespace.

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;

use super::{Digest, LayerRef, Lock, Result, Store, StoreError, io_err};

/// What something still uses: layers by diff id, blobs by digest.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Referenced {
    pub layers: HashSet<Digest>,
    pub blobs: HashSet<Digest>,
}

/// What a collection removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Collected {
    pub layers: Vec<Digest>,
    pub blobs: Vec<Digest>,
    /// Containers left by killed dens: build steps' and half-created ones (ids).
    pub containers: Vec<String>,
    /// Bytes freed: the layers' file content and the blobs' sizes.
    pub bytes: u64,
}

/// The part of a build-cache step that names content (the rest is build's business).
#[derive(Deserialize)]
pub(super) struct CacheStep {
    #[serde(default)]
    pub(super) layers: Vec<LayerRef>,
}

impl Referenced {
    fn layer(&mut self, l: &LayerRef) {
        self.layers.insert(l.diff_id.clone());
        self.blobs.insert(l.blob.clone());
    }
}

impl Store {
    /// Every layer and blob that an image, a container or a build-cache step refers to.
    pub fn referenced(&self) -> Result<Referenced> {
        let mut keep = Referenced::default();
        let images = self.images()?;
        for i in &images {
            keep.blobs.insert(i.manifest.clone());
            keep.blobs.insert(i.config.clone());
            for l in &i.layers {
                keep.layer(l);
            }
            for d in &i.repo_digests {
                if let Some(digest) = d.split_once('@').and_then(|(_, d)| Digest::parse(d).ok()) {
                    self.keep_manifest(&mut keep, digest, 2);
                }
            }
        }
        for id in self.container_ids()? {
            let record = match self.container(&id) {
                Ok(r) => r,
                // Removed meanwhile (`rm` takes no content lock): it needs nothing.
                Err(StoreError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    continue;
                }
                Err(e) => return Err(e),
            };
            keep.layers.extend(record.layers.iter().cloned());
            if let Some(i) = images.iter().find(|i| i.id == record.image_id) {
                keep.layers
                    .extend(i.layers.iter().map(|l| l.diff_id.clone()));
            }
        }
        let steps = self.root.join("build-cache/steps");
        if let Ok(rd) = std::fs::read_dir(&steps) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !name.ends_with(".json") || name.starts_with('.') {
                    continue;
                }
                // A step that does not parse keeps nothing; the build cache ignores it too.
                if let Ok(bytes) = std::fs::read(e.path())
                    && let Ok(step) = serde_json::from_slice::<CacheStep>(&bytes)
                {
                    for l in &step.layers {
                        keep.layer(l);
                    }
                }
            }
        }
        Ok(keep)
    }

    /// Keep a manifest a repo digest names, and what it names in turn: the same image pulled
    /// from a registry after it was loaded from an archive (or the other way round) has a
    /// manifest and layer blobs of each source, all of which belong to it. An index names its
    /// platforms' manifests (`depth` bounds the nesting); what is not in the store is skipped.
    fn keep_manifest(&self, keep: &mut Referenced, digest: Digest, depth: u32) {
        let Ok(bytes) = self.read_blob(&digest) else {
            return;
        };
        keep.blobs.insert(digest);
        let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            return;
        };
        let digests = |field: &str| -> Vec<Digest> {
            doc.get(field)
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.get("digest")?.as_str())
                        .filter_map(|d| Digest::parse(d).ok())
                        .collect()
                })
                .unwrap_or_default()
        };
        keep.blobs.extend(digests("layers"));
        if let Some(c) = doc
            .pointer("/config/digest")
            .and_then(|d| d.as_str())
            .and_then(|d| Digest::parse(d).ok())
        {
            keep.blobs.insert(c);
        }
        if depth > 0 {
            for m in digests("manifests") {
                self.keep_manifest(keep, m, depth - 1);
            }
        }
    }

    /// Delete unreferenced layers and blobs, under the exclusive content lock.
    pub fn collect_garbage(&self) -> Result<Collected> {
        let lock = self.lock_content_exclusive()?;
        self.collect_garbage_locked(&lock)
    }

    /// [`Store::collect_garbage`] for a caller that already holds the content lock exclusive
    /// (`rmi` checks containers and removes records under the same lock).
    pub fn collect_garbage_locked(&self, held: &Lock) -> Result<Collected> {
        debug_assert_eq!(held.path(), self.root.join("locks/content.lock"));
        self.sweep_tmp();
        // Leftover containers first: a killed build's step container pins its layers.
        let mut out = Collected {
            containers: self.remove_leftover_containers()?,
            ..Collected::default()
        };
        let keep = self.referenced()?;
        for diff_id in self.layer_ids()? {
            if keep.layers.contains(&diff_id) {
                continue;
            }
            let size = self.layer_record(&diff_id).map(|r| r.size).unwrap_or(0);
            self.remove_layer(&diff_id)?;
            tracing::debug!(%diff_id, "removed unused layer");
            out.bytes += size;
            out.layers.push(diff_id);
        }
        let dir = self.blobs_dir();
        for e in std::fs::read_dir(&dir).map_err(io_err(&dir))?.flatten() {
            // Only finished blobs: `write_atomic`'s temporary files start with a dot.
            let Ok(digest) = Digest::from_hex(&e.file_name().to_string_lossy()) else {
                continue;
            };
            if keep.blobs.contains(&digest) {
                continue;
            }
            let size = e.metadata().map(|m| m.len()).unwrap_or(0);
            match std::fs::remove_file(e.path()) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(err) => return Err(io_err(&e.path())(err)),
            }
            out.bytes += size;
            out.blobs.push(digest);
        }
        self.remove_stale_links();
        self.remove_blob_locks();
        Ok(out)
    }

    /// The pulls' per-blob lock files: with the content lock exclusive no pull runs, so none
    /// is held or waited on.
    fn remove_blob_locks(&self) {
        let dir = self.root.join("locks");
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().starts_with("blob-") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    /// What killed dens left among the containers, removed under the exclusive content lock
    /// (creators and builds hold it shared): directories without a record (a create killed
    /// midway), the step containers of killed builds (unless a RUN step's den-run outlived its
    /// build and still runs one), and names whose container is gone (a killed `rm`).
    fn remove_leftover_containers(&self) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for id in self.partial_containers() {
            let dir = self.container_dir(&id);
            let aside = self.staging_dir("rm")?;
            std::fs::rename(&dir, aside.path.join("c")).map_err(io_err(&dir))?;
            crate::fs::remove_tree(&aside.path).map_err(io_err(&aside.path))?;
            removed.push(id);
        }
        for id in self.leftover_build_steps() {
            self.remove_container(&id)?;
            removed.push(id);
        }
        for (name, _) in self.dangling_names() {
            let _ = std::fs::remove_file(self.root.join("names").join(name));
        }
        Ok(removed)
    }

    /// Step containers of builds that were killed (see [`super::BUILD_STEP_LABEL`]); only
    /// meaningful under the exclusive content lock.
    pub fn leftover_build_steps(&self) -> Vec<String> {
        let Ok(ids) = self.container_ids() else {
            return Vec::new();
        };
        ids.into_iter()
            .filter(|id| {
                self.container(id)
                    .is_ok_and(|r| r.spec.labels.contains_key(super::BUILD_STEP_LABEL))
                    && self
                        .container_state(id)
                        .map_or(true, |s| s.observed().status != super::Status::Running)
            })
            .collect()
    }

    /// Links under `layers/l` whose layer is gone (a removal killed between its steps).
    fn remove_stale_links(&self) {
        let Ok(rd) = std::fs::read_dir(self.links_dir()) else {
            return;
        };
        for e in rd.flatten() {
            if std::fs::metadata(e.path()).is_err() {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Bytes of file content under `path` (apparent sizes, as `du --apparent-size`), best effort.
pub fn disk_usage(path: &Path) -> u64 {
    let Ok(md) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !md.is_dir() {
        return md.len();
    }
    std::fs::read_dir(path)
        .map(|rd| rd.flatten().map(|e| disk_usage(&e.path())).sum())
        .unwrap_or(0)
}

impl super::Store {
    /// Bytes of a container's own files: its writable layer (the whole copy for vfs), for
    /// `ps -s` and `system df`.
    pub fn container_size(&self, c: &super::Container) -> u64 {
        let l = super::driver::Layout::of(&self.container_dir(&c.record.id));
        if c.record.driver == "vfs" {
            disk_usage(&l.rootfs_copy)
        } else {
            disk_usage(&l.upper)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ContainerRecord, ImageRecord};
    use chrono::Utc;

    fn layer(s: &Store, content: &[u8]) -> LayerRef {
        let blob = Digest::of(content);
        s.put_blob(&blob, content).unwrap();
        let staged = s.stage_layer().unwrap();
        std::fs::write(staged.diff().join("f"), content).unwrap();
        s.commit_layer(staged, &blob, content.len() as u64, 1)
            .unwrap();
        LayerRef {
            diff_id: blob.clone(),
            blob,
            media_type: "application/vnd.oci.image.layer.v1.tar".into(),
            size: content.len() as u64,
        }
    }

    fn image(s: &Store, tag: &str, layers: Vec<LayerRef>) -> ImageRecord {
        let config = format!("{{\"tag\":\"{tag}\"}}");
        let config_digest = Digest::of(config.as_bytes());
        s.put_blob(&config_digest, config.as_bytes()).unwrap();
        let manifest = format!("{{\"m\":\"{tag}\"}}");
        let manifest_digest = Digest::of(manifest.as_bytes());
        s.put_blob(&manifest_digest, manifest.as_bytes()).unwrap();
        let r = ImageRecord {
            id: config_digest.clone(),
            names: vec![],
            repo_digests: vec![],
            manifest: manifest_digest,
            manifest_media_type: "m".into(),
            config: config_digest,
            layers,
            created: None,
            size: 0,
            os: "linux".into(),
            architecture: "amd64".into(),
            added: Utc::now(),
        };
        let name = crate::image::Reference::parse(tag).unwrap();
        s.put_image(r.clone(), Some(&name)).unwrap();
        r
    }

    #[test]
    fn only_unreferenced_content_goes() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        let base = layer(&s, b"base");
        let top = layer(&s, b"top");
        let cached = layer(&s, b"cached");
        let pinned = layer(&s, b"pinned");
        let loose = layer(&s, b"loose");
        let a = image(&s, "a", vec![base.clone()]);
        let b = image(&s, "b", vec![base.clone(), top.clone()]);
        // A build-cache step names `cached`; a container keeps `pinned` through its record.
        std::fs::create_dir_all(t.path().join("build-cache/steps")).unwrap();
        std::fs::write(
            t.path().join("build-cache/steps/k.json"),
            serde_json::to_vec(&serde_json::json!({"layers": [cached], "config": {}})).unwrap(),
        )
        .unwrap();
        s.create_container(
            ContainerRecord {
                id: String::new(),
                name: String::new(),
                image_id: Digest::of(b"gone"),
                image: "gone".into(),
                created: Utc::now(),
                driver: "vfs".into(),
                spec: Default::default(),
                auto_remove: false,
                layers: vec![pinned.diff_id.clone()],
                image_file: None,
            },
            None,
        )
        .unwrap();
        let got = s.collect_garbage().unwrap();
        assert_eq!(got.layers, vec![loose.diff_id.clone()]);
        // A container needs its layers, not their blobs (only images are pushed and saved).
        let mut blobs = got.blobs.clone();
        blobs.sort();
        let mut want = vec![loose.blob.clone(), pinned.blob.clone()];
        want.sort();
        assert_eq!(blobs, want);
        assert_eq!(got.bytes, (2 * b"loose".len() + b"pinned".len()) as u64);
        assert!(!s.has_layer(&loose.diff_id) && !s.has_blob(&loose.blob));
        for l in [&base, &top, &cached, &pinned] {
            assert!(s.has_layer(&l.diff_id), "{l:?}");
        }

        // Without b, its own layer and blobs go; the shared base stays with a.
        s.update_images(|images| {
            images.retain(|i| i.id != b.id);
            Ok(())
        })
        .unwrap();
        let got = s.collect_garbage().unwrap();
        assert_eq!(got.layers, vec![top.diff_id.clone()]);
        assert!(got.blobs.contains(&b.config) && got.blobs.contains(&b.manifest));
        assert!(s.has_layer(&base.diff_id) && s.has_blob(&a.config));
        assert_eq!(s.collect_garbage().unwrap(), Collected::default());
        assert_eq!(std::fs::read_dir(t.path().join("tmp")).unwrap().count(), 0);
        assert_eq!(
            std::fs::read_dir(s.links_dir()).unwrap().count(),
            3,
            "links of removed layers go with them"
        );
    }

    #[test]
    fn a_repo_digest_keeps_its_manifest_and_what_it_names() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        let base = layer(&s, b"base");
        let img = image(&s, "a", vec![base]);
        // The same image pulled after it was loaded: the registry's manifest and layer blob.
        let blob = Digest::of(b"compressed");
        s.put_blob(&blob, b"compressed").unwrap();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "config": {"digest": img.config},
            "layers": [{"digest": blob}],
        }))
        .unwrap();
        let digest = Digest::of(&manifest);
        s.put_blob(&digest, &manifest).unwrap();
        // An index naming it, as a pull by a multi-platform tag keeps.
        let index = serde_json::to_vec(&serde_json::json!({
            "manifests": [{"digest": digest}, {"digest": Digest::of(b"absent")}],
        }))
        .unwrap();
        let index_digest = Digest::of(&index);
        s.put_blob(&index_digest, &index).unwrap();
        s.update_images(|images| {
            images[0]
                .repo_digests
                .push(format!("reg.example/a@{index_digest}"));
            Ok(())
        })
        .unwrap();
        assert_eq!(s.collect_garbage().unwrap(), Collected::default());
        assert!(s.has_blob(&blob) && s.has_blob(&digest) && s.has_blob(&index_digest));
    }

    #[test]
    fn collection_waits_for_content_being_added() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        let pin = s.lock_content_shared().unwrap();
        assert!(
            Lock::try_exclusive(&t.path().join("locks/content.lock"))
                .unwrap()
                .is_none()
        );
        drop(pin);
        assert!(s.collect_garbage().is_ok());
    }

    #[test]
    fn blob_locks_exclude_other_pulls_and_go_with_collection() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        let (a, b) = (Digest::of(b"a"), Digest::of(b"b"));
        // A digest named twice is locked once (a second flock of it would wait on itself).
        let held = s.lock_blobs(&[b.clone(), a.clone(), b.clone()]).unwrap();
        assert_eq!(held.len(), 2);
        // In digest order.
        assert!(held[0].path() < held[1].path());
        let path = t.path().join(format!("locks/blob-{}.lock", a.hex()));
        assert!(Lock::try_exclusive(&path).unwrap().is_none());
        drop(held);
        assert!(Lock::try_exclusive(&path).unwrap().is_some());
        s.collect_garbage().unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn disk_usage_adds_file_sizes() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("a/b")).unwrap();
        std::fs::write(t.path().join("a/b/f"), b"12345").unwrap();
        std::fs::write(t.path().join("a/g"), b"12").unwrap();
        assert_eq!(disk_usage(&t.path().join("a")), 7);
        assert_eq!(disk_usage(&t.path().join("missing")), 0);
    }
}
