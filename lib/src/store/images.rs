//! Image records: `images.json`, one file for all images so `den images` is one read.
//!
//! An image's id is the digest of its configuration blob, as docker's is. A name
//! (`registry/repository:tag`) points at exactly one image; tagging a name onto a new image takes it
//! from the old one, which stays, nameless ("dangling"), until pruned.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Digest, Result, Store, StoreError};
use crate::image::Reference;

/// One layer of an image, as the manifest and the configuration describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRef {
    /// Digest of the uncompressed tar: names the unpacked layer in `layers/`.
    pub diff_id: Digest,
    /// Digest of the blob as distributed (compressed), kept in `blobs/`.
    pub blob: Digest,
    pub media_type: String,
    /// Size of the blob in bytes.
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The config's digest (written as its hex digits, docker's full image id).
    #[serde(with = "crate::digest::hex_only")]
    pub id: Digest,
    /// Canonical names, `docker.io/library/busybox:latest`.
    pub names: Vec<String>,
    /// `repo@sha256:...` for each repository this image was pulled from or pushed to.
    #[serde(default)]
    pub repo_digests: Vec<String>,
    /// Digest of the manifest blob (kept in `blobs/`), and its media type.
    pub manifest: Digest,
    pub manifest_media_type: String,
    /// Digest of the config blob.
    pub config: Digest,
    pub layers: Vec<LayerRef>,
    /// When the image was built (from its config), if it says.
    pub created: Option<DateTime<Utc>>,
    /// Sum of the layers' unpacked sizes.
    pub size: u64,
    pub os: String,
    pub architecture: String,
    /// When this store got it.
    pub added: DateTime<Utc>,
}

impl ImageRecord {
    pub fn short_id(&self) -> &str {
        self.id.short()
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct ImagesFile {
    images: Vec<ImageRecord>,
}

/// Bytes of each image's layers that other images share, and the containers using each image
/// ([`Store::sharing`]).
#[derive(Debug, Clone, Default)]
pub struct Sharing {
    pub shared: HashMap<Digest, u64>,
    pub containers: HashMap<Digest, usize>,
}

impl Store {
    fn images_path(&self) -> PathBuf {
        self.root.join("images.json")
    }

    /// Every image, newest first. Reads one file; takes no lock (it is replaced atomically).
    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        let p = self.images_path();
        if !p.exists() {
            return Ok(Vec::new());
        }
        let f: ImagesFile = self.read_json(&p)?;
        Ok(f.images)
    }

    /// Change the image records under the meta lock; the closure's result is returned.
    pub fn update_images<T>(
        &self,
        f: impl FnOnce(&mut Vec<ImageRecord>) -> Result<T>,
    ) -> Result<T> {
        let _g = self.lock_meta()?;
        let mut images = self.images()?;
        let out = f(&mut images)?;
        images.sort_by(|a, b| b.added.cmp(&a.added).then_with(|| a.id.cmp(&b.id)));
        self.write_json(&self.images_path(), &ImagesFile { images })?;
        Ok(out)
    }

    /// Add or update `record` and give it `name`, taking the name from any other image.
    pub fn put_image(&self, record: ImageRecord, name: Option<&Reference>) -> Result<()> {
        let canonical = name.map(|n| n.canonical());
        self.update_images(|images| {
            super::incoming::merge(images, record, canonical.as_deref());
            Ok(())
        })
    }

    /// Give the image `input` means the name `name` (taken from any other image), in one
    /// read-modify-write of the records: an image removed meanwhile is not brought back.
    pub fn tag_image(&self, input: &str, name: &Reference) -> Result<ImageRecord> {
        self.update_images(|images| {
            let id = match find_in(images, input) {
                Ok(i) => i.id,
                // An additional store's image: its record (only) comes here under the new
                // name; its content stays where it is (see `additional`).
                Err(StoreError::ImageUnknown(_)) => match self.find_image_from(input)? {
                    (mut record, Some(_)) => {
                        record.names.clear();
                        let id = record.id.clone();
                        images.push(record);
                        id
                    }
                    (record, None) => record.id,
                },
                Err(e) => return Err(e),
            };
            let canonical = name.canonical();
            for other in images.iter_mut() {
                other.names.retain(|n| n != &canonical);
            }
            let image = images
                .iter_mut()
                .find(|i| i.id == id)
                .expect("found in the same list");
            image.names.push(canonical);
            Ok(image.clone())
        })
    }

    /// The image `input` means, in a list already read (see [`Store::find_image`]).
    pub fn find_in(images: &[ImageRecord], input: &str) -> Result<ImageRecord> {
        find_in(images, input)
    }

    /// An image's labels (`config.Labels` in its configuration); empty when it has none or
    /// its configuration cannot be read.
    pub fn image_labels(&self, image: &ImageRecord) -> BTreeMap<String, String> {
        let Ok(bytes) = self.read_blob(&image.config) else {
            return BTreeMap::new();
        };
        let config: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        config
            .pointer("/config/Labels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// For each of `images`, the bytes of its layers other images share too, and the
    /// containers using it (`images --format`, `system df -v`).
    pub fn sharing(&self, images: &[ImageRecord]) -> Result<Sharing> {
        let mut users: HashMap<&Digest, usize> = HashMap::new();
        for i in images {
            let mut seen = HashSet::new();
            for l in &i.layers {
                if seen.insert(&l.diff_id) {
                    *users.entry(&l.diff_id).or_default() += 1;
                }
            }
        }
        let mut shared = HashMap::new();
        for i in images {
            let mut seen = HashSet::new();
            let bytes = i
                .layers
                .iter()
                .filter(|l| seen.insert(&l.diff_id) && users[&l.diff_id] > 1)
                .map(|l| self.layer_record(&l.diff_id).map(|r| r.size).unwrap_or(0))
                .sum();
            shared.insert(i.id.clone(), bytes);
        }
        let mut containers = HashMap::new();
        for c in self.containers()? {
            *containers.entry(c.record.image_id).or_default() += 1;
        }
        Ok(Sharing { shared, containers })
    }

    /// The image a user means by `input`: a name (with docker's defaults), `sha256:<id>`, a full
    /// id, or a unique id prefix of at least 3 hex digits.
    /// Looked up in this store first, then in each additional store in order (see
    /// [`super::additional`]): an image in both is this store's.
    pub fn find_image(&self, input: &str) -> Result<ImageRecord> {
        Ok(self.find_image_from(input)?.0)
    }

    /// [`Store::find_image`], with the additional store's root when the image is there.
    pub fn find_image_from(&self, input: &str) -> Result<(ImageRecord, Option<PathBuf>)> {
        let images = self.images()?;
        match find_in(&images, input) {
            Err(StoreError::ImageUnknown(_)) => {}
            found => return found.map(|i| (i, None)),
        }
        for a in self.additional.iter() {
            match find_in(&a.images(), input) {
                Err(StoreError::ImageUnknown(_)) => {}
                found => return found.map(|i| (i, Some(a.root.clone()))),
            }
        }
        Err(StoreError::ImageUnknown(input.to_string()))
    }

    /// The images of the additional stores, each with its store's root, in lookup order.
    pub fn additional_images(&self) -> Vec<(ImageRecord, PathBuf)> {
        self.additional
            .iter()
            .flat_map(|a| a.images().into_iter().map(|i| (i, a.root.clone())))
            .collect()
    }
}

pub(super) fn is_hex(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn find_in(images: &[ImageRecord], input: &str) -> Result<ImageRecord> {
    let unknown = || StoreError::ImageUnknown(input.to_string());
    if let Some(hex) = input.strip_prefix("sha256:") {
        return by_id_prefix(images, hex, input)?.ok_or_else(unknown);
    }
    if let Ok(r) = Reference::parse(input) {
        let canonical = r.canonical();
        if let Some(i) = images.iter().find(|i| i.names.contains(&canonical)) {
            return Ok(i.clone());
        }
        if r.digest().is_some()
            && let Some(i) = images.iter().find(|i| i.repo_digests.contains(&canonical))
        {
            return Ok(i.clone());
        }
    }
    if input.len() >= 3
        && input.len() <= 64
        && is_hex(input)
        && let Some(i) = by_id_prefix(images, input, input)?
    {
        return Ok(i);
    }
    Err(unknown())
}

fn by_id_prefix(images: &[ImageRecord], hex: &str, input: &str) -> Result<Option<ImageRecord>> {
    let mut hits = images.iter().filter(|i| i.id.hex().starts_with(hex));
    match (hits.next(), hits.next()) {
        (Some(i), None) => Ok(Some(i.clone())),
        (Some(_), Some(_)) => Err(StoreError::ImageAmbiguous(input.into())),
        (None, _) => Ok(None),
    }
}

/// An image that cannot be removed while something uses it, or a filter over images that den
/// cannot read.
#[derive(Debug, thiserror::Error)]
pub enum ImagesError {
    #[error(
        "unable to remove repository reference {reference:?} (must force) - container {container} is using its referenced image {image}"
    )]
    NameInUse {
        reference: String,
        container: String,
        image: String,
    },
    #[error(
        "conflict: unable to delete {image} ({how}) - image is being used by {state} container {container}"
    )]
    InUse {
        image: String,
        container: String,
        /// `running` or `stopped`.
        state: &'static str,
        /// `must be forced`, or `cannot be forced` for a running container.
        how: &'static str,
    },
    #[error(
        "conflict: unable to delete {image} (must be forced) - image is referenced in multiple repositories"
    )]
    MultipleNames { image: String },
    #[error("invalid image filter {0:?}")]
    BadFilter(String),
    #[error("image {image} is in the read-only store {}: den never changes an additional store", store.display())]
    ReadOnly { image: String, store: PathBuf },
}

impl crate::error::Diagnose for ImagesError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            ImagesError::NameInUse { .. } => {
                "remove the container first (`den rm`), or untag and keep the image with `den rmi -f`"
                    .into()
            }
            ImagesError::InUse { state: "running", .. } => {
                "stop and remove the container first (`den rm -f CONTAINER`)".into()
            }
            ImagesError::InUse { .. } => {
                "remove the container first (`den rm`), or force it with `den rmi -f`; the container keeps its layers"
                    .into()
            }
            ImagesError::MultipleNames { .. } => {
                "remove the image by name (`den rmi NAME`), or all its names with `den rmi -f ID`".into()
            }
            ImagesError::ReadOnly { store, .. } => format!(
                "its owner removes it (`den --root {} rmi IMAGE`); to stop using the store, take it \
                 out of storage.additional in den's config (or DEN_ADDITIONAL_STORES)",
                store.display()
            ),
            ImagesError::BadFilter(_) => {
                "use dangling=true|false, reference=PATTERN, label=KEY[=VALUE], before=IMAGE, since=IMAGE or until=TIME"
                    .into()
            }
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn record(id: &str, names: &[&str]) -> ImageRecord {
        let id = Digest::from_hex(id).unwrap();
        ImageRecord {
            config: id.clone(),
            id,
            names: names.iter().map(|s| s.to_string()).collect(),
            repo_digests: vec![],
            manifest: Digest::of(b"m"),
            manifest_media_type: "m".into(),
            layers: vec![],
            created: None,
            size: 0,
            os: "linux".into(),
            architecture: "amd64".into(),
            added: Utc::now(),
        }
    }

    #[test]
    fn find_by_name_id_and_prefix() {
        let a = "a".repeat(64);
        let ab = format!("ab{}", "0".repeat(62));
        let images = vec![
            record(&a, &["docker.io/library/busybox:latest"]),
            record(&ab, &[]),
        ];
        assert_eq!(find_in(&images, "busybox").unwrap().id.hex(), a);
        assert_eq!(
            find_in(&images, "docker.io/library/busybox:latest")
                .unwrap()
                .id
                .hex(),
            a
        );
        assert_eq!(find_in(&images, "ab0").unwrap().id.hex(), ab);
        assert_eq!(
            find_in(&images, &format!("sha256:{a}")).unwrap().id.hex(),
            a
        );
        assert!(find_in(&images, "aaa").is_ok());
        assert!(matches!(
            find_in(&images, "busybox:1"),
            Err(StoreError::ImageUnknown(_))
        ));
        assert!(matches!(
            find_in(&images, "sha256:a"),
            Err(StoreError::ImageAmbiguous(_))
        ));
    }

    #[test]
    fn naming_an_image_takes_the_name_from_the_old_one() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        let name = Reference::parse("app:1").unwrap();
        s.put_image(record(&"1".repeat(64), &[]), Some(&name))
            .unwrap();
        s.put_image(record(&"2".repeat(64), &[]), Some(&name))
            .unwrap();
        let images = s.images().unwrap();
        assert_eq!(images.len(), 2);
        let old = images.iter().find(|i| i.id.hex().starts_with('1')).unwrap();
        assert!(old.names.is_empty());
        assert_eq!(s.find_image("app:1").unwrap().id.hex(), "2".repeat(64));
    }
}
