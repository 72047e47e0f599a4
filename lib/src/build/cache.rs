//! The build cache: what each build step produced, keyed by everything that decides it.
//!
//! ```text
//! ROOT/build-cache/steps/<key>.json   the layers and image config after the step
//! ROOT/build-cache/mounts/<id>/       RUN --mount=type=cache directories
//! ```
//!
//! A step's key is the SHA-256 of its parent's key (which starts from the base image's id), the
//! instruction after expansion, the build arguments in scope, and for COPY and ADD the content
//! of what is copied (names, modes and bytes; not times). So an unchanged rebuild finds every
//! step, and reuses its config byte for byte: the same image id. Entries are written atomically
//! and survive across builds and projects; `den builder prune` removes them (and their cache
//! mounts); layers they name stay until `den image prune` finds them unused.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::store::{LayerRef, Store};

/// What a step produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub layers: Vec<LayerRef>,
    /// The image configuration (docker's JSON) after the step.
    pub config: serde_json::Value,
}

/// A running digest of a step's inputs.
pub struct Key(crate::digest::Hasher);

impl Key {
    /// A key that continues from `parent`.
    pub fn new(parent: &str) -> Key {
        let mut h = crate::digest::Hasher::new();
        h.update(parent.as_bytes());
        h.update(b"\n");
        Key(h)
    }

    pub fn add(&mut self, part: &str) -> &mut Key {
        self.0.update(part.as_bytes());
        self.0.update(&[0]);
        self
    }

    pub fn add_bytes(&mut self, part: &[u8]) -> &mut Key {
        self.0.update(part);
        self
    }

    /// `sha256:<hex>`: den's own name for the step (never read from outside).
    pub fn finish(self) -> String {
        self.0.finish().to_string()
    }
}

fn steps_dir(store: &Store) -> PathBuf {
    store.root().join("build-cache/steps")
}

/// Where `RUN --mount=type=cache,id=ID` keeps its files.
pub fn mount_dir(store: &Store, id: &str) -> PathBuf {
    let key = crate::digest::Digest::of(id.as_bytes());
    store
        .root()
        .join("build-cache/mounts")
        .join(&key.hex()[..32])
}

fn entry_path(store: &Store, key: &str) -> PathBuf {
    steps_dir(store).join(format!("{}.json", key.trim_start_matches("sha256:")))
}

/// The entry for `key`, if there is one and every layer it names is still in the store.
pub fn get(store: &Store, key: &str) -> Option<Entry> {
    let bytes = std::fs::read(entry_path(store, key)).ok()?;
    let entry: Entry = serde_json::from_slice(&bytes).ok()?;
    entry
        .layers
        .iter()
        .all(|l| store.has_layer(&l.diff_id) && store.has_blob(&l.blob))
        .then_some(entry)
}

pub fn put(store: &Store, key: &str, entry: &Entry) -> super::Result<()> {
    let dir = steps_dir(store);
    std::fs::create_dir_all(&dir).map_err(|e| crate::store::StoreError::Io {
        path: dir.clone(),
        source: e,
    })?;
    let bytes = serde_json::to_vec(entry).expect("cache entries serialize");
    store.write_atomic(&entry_path(store, key), &bytes)?;
    Ok(())
}

/// Remove every cache entry and cache mount; returns the bytes they held.
pub fn prune(store: &Store) -> super::Result<u64> {
    let root = store.root().join("build-cache");
    let bytes = du(&root);
    if root.exists() {
        let aside = store.root().join("tmp").join(format!(
            "rm-cache-{}-{}",
            std::process::id(),
            crate::fs::random_hex(4)
        ));
        std::fs::rename(&root, &aside).map_err(|e| crate::store::StoreError::Io {
            path: root.clone(),
            source: e,
        })?;
        crate::fs::remove_tree(&aside).map_err(|e| crate::store::StoreError::Io {
            path: aside.clone(),
            source: e,
        })?;
    }
    Ok(bytes)
}

fn du(p: &Path) -> u64 {
    let Ok(md) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    if !md.is_dir() {
        return md.len();
    }
    std::fs::read_dir(p)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| du(&e.path())).sum())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_every_part_and_its_boundaries() {
        let k = |parts: &[&str]| {
            let mut k = Key::new("parent");
            for p in parts {
                k.add(p);
            }
            k.finish()
        };
        assert_eq!(k(&["RUN a", "X=1"]), k(&["RUN a", "X=1"]));
        assert_ne!(k(&["RUN a", "X=1"]), k(&["RUN a", "X=2"]));
        assert_ne!(k(&["RUN aX", "=1"]), k(&["RUN a", "X=1"]));
    }
}
