//! Removing image records and choosing what a prune removes: the parts `rmi`, `image prune`
//! and `system prune` share.
//!
//! An image's record goes first; its layers and blobs stay until [`Store::collect_garbage`]
//! finds nothing refers to them. A stopped container that uses the image keeps running on its
//! layers: they are written into its own record before the image's record goes, which keeps
//! them referenced. Callers hold the content lock exclusive, so no container is created from
//! an image between the check that none uses it and its removal.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};

use super::{Digest, ImageRecord, Result, Store};

/// What removing an image's record took away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    pub id: Digest,
    /// The names it had (`docker.io/library/busybox:latest`).
    pub names: Vec<String>,
    /// Its repository digests (`docker.io/library/busybox@sha256:...`).
    pub repo_digests: Vec<String>,
}

/// A filter of `image prune` (and `system prune`): which unused images it may remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PruneFilter {
    /// `until=TIME`: images created before the time.
    Until(DateTime<Utc>),
    /// `label=K[=V]`, or with `negate` `label!=K[=V]`.
    Label {
        key: String,
        value: Option<String>,
        negate: bool,
    },
}

impl PruneFilter {
    /// Whether the filter lets `image` (with its `labels`) be removed.
    pub fn keeps(&self, image: &ImageRecord, labels: &BTreeMap<String, String>) -> bool {
        match self {
            PruneFilter::Until(t) => image.created.unwrap_or(image.added) < *t,
            PruneFilter::Label { key, value, negate } => {
                let has = match value {
                    Some(v) => labels.get(key) == Some(v),
                    None => labels.contains_key(key),
                };
                has != *negate
            }
        }
    }
}

impl Store {
    /// Remove `image`'s record, after writing its layers into the records of the containers
    /// `users` (their ids), which then keep the layers. What the record held, as it was when
    /// it went.
    pub fn delete_image(&self, image: &ImageRecord, users: &[&str]) -> Result<Deleted> {
        for id in users {
            self.pin_layers(id, image)?;
        }
        let mut out = Deleted {
            id: image.id.clone(),
            names: Vec::new(),
            repo_digests: Vec::new(),
        };
        self.update_images(|images| {
            if let Some(i) = images.iter().find(|i| i.id == image.id) {
                out.names = i.names.clone();
                out.repo_digests = i.repo_digests.clone();
            }
            images.retain(|i| i.id != image.id);
            Ok(())
        })?;
        Ok(out)
    }

    /// Make a container's record name its layers itself, so they outlive its image's record.
    fn pin_layers(&self, id: &str, image: &ImageRecord) -> Result<()> {
        let mut record = self.container(id)?;
        if record.layers.is_empty() {
            record.layers = image.layers.iter().map(|l| l.diff_id.clone()).collect();
            let path = self.container_dir(id).join("container.json");
            self.write_json(&path, &record)?;
        }
        Ok(())
    }

    /// Remove the records of the images no container uses that a prune takes: the dangling
    /// ones (every unused one with `all`) that every filter lets go. The caller holds the
    /// content lock exclusive and collects garbage after.
    pub fn prune_images(&self, all: bool, filters: &[PruneFilter]) -> Result<Vec<Deleted>> {
        let used: HashSet<Digest> = self
            .containers()?
            .into_iter()
            .map(|c| c.record.image_id)
            .collect();
        let mut doomed: HashSet<Digest> = HashSet::new();
        for image in self.images()? {
            if used.contains(&image.id) || (!all && !image.names.is_empty()) {
                continue;
            }
            if !filters.is_empty() {
                let labels = self.image_labels(&image);
                if !filters.iter().all(|f| f.keeps(&image, &labels)) {
                    continue;
                }
            }
            doomed.insert(image.id);
        }
        if doomed.is_empty() {
            return Ok(Vec::new());
        }
        // One write of the records for all of them (not one per image, which made a prune of
        // a thousand images quadratic), and all or nothing if den is killed.
        let mut removed = Vec::new();
        self.update_images(|images| {
            for i in images.iter().filter(|i| doomed.contains(&i.id)) {
                removed.push(Deleted {
                    id: i.id.clone(),
                    names: i.names.clone(),
                    repo_digests: i.repo_digests.clone(),
                });
            }
            images.retain(|i| !doomed.contains(&i.id));
            Ok(())
        })?;
        Ok(removed)
    }
}
