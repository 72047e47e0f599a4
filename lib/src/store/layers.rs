//! Unpacked layers: `layers/<diff id hex>/diff`, shared by every image and container that has
//! the layer, never changed once in place.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Additional, Digest, Result, Store, StoreError, io_err};

/// `layers/<hex>/layer.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    pub diff_id: Digest,
    /// Bytes of file content in the layer (what docker counts as its size).
    pub size: u64,
    /// Number of tar entries.
    pub entries: u64,
    pub created: DateTime<Utc>,
    /// Short name under `layers/l/`, for overlay's lowerdir.
    pub link: String,
}

/// A layer being unpacked under `tmp/`; becomes visible only through [`Store::commit_layer`].
#[derive(Debug)]
pub struct StagedLayer {
    pub dir: PathBuf,
    _staging: super::Staging,
}

impl StagedLayer {
    /// Where the layer's files go.
    pub fn diff(&self) -> PathBuf {
        self.dir.join("diff")
    }

    /// Remove the staging directory (the unpack failed).
    pub fn abandon(self) {
        let _ = crate::fs::remove_tree(&self.dir);
    }
}

impl Store {
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(diff_id.hex())
    }

    /// Where the layer is: its directory in this store, else in the first additional store
    /// that has it (see [`super::additional`]); `None` when no store has it.
    fn find_layer(&self, diff_id: &Digest) -> Option<(PathBuf, Option<&Additional>)> {
        let own = self.layer_dir(diff_id);
        if own.join("layer.json").exists() {
            return Some((own, None));
        }
        self.additional.iter().find_map(|a| {
            let dir = a.layer_dir(diff_id.hex());
            dir.join("layer.json").exists().then_some((dir, Some(a)))
        })
    }

    /// The unpacked files of a layer (in an additional store when only one has it).
    pub fn layer_diff(&self, diff_id: &Digest) -> PathBuf {
        self.find_layer(diff_id)
            .map(|(d, _)| d)
            .unwrap_or_else(|| self.layer_dir(diff_id))
            .join("diff")
    }

    /// Whether the layer is unpacked and complete (its directory only appears when it is),
    /// here or in an additional store.
    pub fn has_layer(&self, diff_id: &Digest) -> bool {
        self.find_layer(diff_id).is_some()
    }

    /// Whether the layer is only in an additional store that belongs to another user (its
    /// files' owners are unmapped in den's user namespace).
    pub fn layer_is_foreign(&self, diff_id: &Digest) -> bool {
        matches!(self.find_layer(diff_id), Some((_, Some(a))) if a.foreign)
    }

    /// The layer's record, checked: it names this layer, and its link is one of the layer's
    /// own short names (the link becomes a path).
    pub fn layer_record(&self, diff_id: &Digest) -> Result<LayerRecord> {
        let dir = self
            .find_layer(diff_id)
            .map(|(d, _)| d)
            .unwrap_or_else(|| self.layer_dir(diff_id));
        let path = dir.join("layer.json");
        let record: LayerRecord = self.read_json(&path)?;
        let link_ok = record.link.len() >= 16 && diff_id.hex().starts_with(&record.link);
        if &record.diff_id != diff_id || !link_ok {
            return Err(StoreError::Forged {
                path,
                what: "a layer record that names another layer".into(),
            });
        }
        Ok(record)
    }

    /// The short path of a layer's diff relative to `layers/l`, for overlay mount options.
    pub fn layer_link(&self, diff_id: &Digest) -> Result<String> {
        Ok(self.layer_record(diff_id)?.link)
    }

    /// A layer's diff as an overlay lower directory: its short link relative to this store's
    /// `layers/l` (the mount runs there), or the absolute short link in the additional store
    /// that has it.
    pub fn layer_lower(&self, diff_id: &Digest) -> Result<PathBuf> {
        let link = self.layer_link(diff_id)?;
        Ok(match self.find_layer(diff_id) {
            Some((_, Some(a))) => a.root.join("layers/l").join(link),
            _ => PathBuf::from(link),
        })
    }

    pub fn links_dir(&self) -> PathBuf {
        self.root.join("layers/l")
    }

    /// A fresh staging directory with an empty `diff/`.
    pub fn stage_layer(&self) -> Result<StagedLayer> {
        let staging = self.staging_dir("layer")?;
        let diff = staging.path.join("diff");
        std::fs::create_dir(&diff).map_err(io_err(&diff))?;
        Ok(StagedLayer {
            dir: staging.path.clone(),
            _staging: staging,
        })
    }

    /// Move a fully unpacked layer into place. If another den process committed the same layer
    /// meanwhile, ours is dropped and theirs kept: both have the same content by construction.
    /// Its files and record reach the disk first (one sync of the filesystem): a crash leaves a
    /// staged layer (swept later), never a named one with lost content. A pull, which places
    /// many layers, stages them all and syncs once instead ([`super::Incoming`]).
    pub fn commit_layer(
        &self,
        staged: StagedLayer,
        diff_id: &Digest,
        size: u64,
        entries: u64,
    ) -> Result<LayerRecord> {
        let record = self.describe_layer(&staged, diff_id, size, entries)?;
        crate::fs::sync_fs(&self.root).map_err(io_err(&self.root))?;
        self.place_layer(staged, record)
    }

    /// The first half of [`Store::commit_layer`]: the staged layer's record, written into it
    /// unsynced (the caller syncs the filesystem before placing it).
    pub(crate) fn describe_layer(
        &self,
        staged: &StagedLayer,
        diff_id: &Digest,
        size: u64,
        entries: u64,
    ) -> Result<LayerRecord> {
        let record = LayerRecord {
            diff_id: diff_id.clone(),
            size,
            entries,
            created: Utc::now(),
            link: self.free_link(diff_id.hex())?,
        };
        self.write_json_as(&staged.dir.join("layer.json"), &record, false)?;
        Ok(record)
    }

    /// The second half of [`Store::commit_layer`]: the described layer's link, then the layer
    /// in place.
    pub(crate) fn place_layer(
        &self,
        staged: StagedLayer,
        record: LayerRecord,
    ) -> Result<LayerRecord> {
        let (diff_id, link) = (&record.diff_id, &record.link);
        let hex = diff_id.hex();
        // The link first: a den killed between the two steps leaves a link to nothing (garbage
        // that collection removes), never a layer in place without its link (which every
        // container using it would fail to mount).
        let link_path = self.links_dir().join(link);
        let made_link =
            match std::os::unix::fs::symlink(Path::new("..").join(hex).join("diff"), &link_path) {
                Ok(()) => true,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
                Err(e) => {
                    staged.abandon();
                    return Err(io_err(&link_path)(e));
                }
            };
        self.publish(&staged.dir, true)?;
        let dest = self.layer_dir(diff_id);
        match std::fs::rename(&staged.dir, &dest) {
            Ok(()) => Ok(record.clone()),
            Err(e) if dest.join("layer.json").exists() => {
                tracing::debug!(%diff_id, error = %e, "layer committed by another process");
                staged.abandon();
                self.layer_record(diff_id)
            }
            Err(e) => {
                staged.abandon();
                if made_link {
                    let _ = std::fs::remove_file(&link_path);
                }
                Err(io_err(&dest)(e))
            }
        }
    }

    /// A link name for `hex`: its first 16 digits, longer on the (unlikely) clash.
    fn free_link(&self, hex: &str) -> Result<String> {
        for len in [16, 24, 32, 64] {
            let name = &hex[..len.min(hex.len())];
            let p = self.links_dir().join(name);
            match std::fs::read_link(&p) {
                Err(_) => return Ok(name.into()),
                Ok(t) if t == Path::new("..").join(hex).join("diff") => return Ok(name.into()),
                Ok(_) => continue,
            }
        }
        Ok(hex.into())
    }

    /// Remove a layer (its record, files and link). The caller holds the content lock
    /// exclusively and knows no image uses it.
    pub fn remove_layer(&self, diff_id: &Digest) -> Result<()> {
        let dir = self.layer_dir(diff_id);
        let link = self.layer_record(diff_id).ok().map(|r| r.link);
        // Rename aside first so a half-deleted layer is never mistaken for a complete one; its
        // link goes after, so a killed removal leaves a link to nothing, never a layer without
        // its link. The aside is named for this process: no sweep takes it while it runs.
        let aside = self.root.join("tmp").join(format!(
            "rm-{}-{}",
            std::process::id(),
            crate::fs::random_hex(4)
        ));
        std::fs::rename(&dir, &aside).map_err(io_err(&dir))?;
        if let Some(link) = link {
            let _ = std::fs::remove_file(self.links_dir().join(link));
        }
        crate::fs::remove_tree(&aside).map_err(io_err(&aside))
    }

    /// Diff ids of every layer in the store.
    pub fn layer_ids(&self) -> Result<Vec<Digest>> {
        let dir = self.root.join("layers");
        let mut out = Vec::new();
        for e in std::fs::read_dir(&dir).map_err(io_err(&dir))?.flatten() {
            if let Ok(d) = Digest::from_hex(&e.file_name().to_string_lossy()) {
                out.push(d);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_layers_appear_only_when_committed() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        let id = Digest::from_hex(&"c".repeat(64)).unwrap();
        let st = s.stage_layer().unwrap();
        std::fs::write(st.diff().join("f"), b"x").unwrap();
        assert!(!s.has_layer(&id));
        let rec = s.commit_layer(st, &id, 1, 1).unwrap();
        assert!(s.has_layer(&id));
        assert_eq!(rec.link, "c".repeat(16));
        assert_eq!(
            std::fs::read(s.links_dir().join(&rec.link).join("f")).unwrap(),
            b"x"
        );

        // A second commit of the same layer keeps the first.
        let st = s.stage_layer().unwrap();
        let rec2 = s.commit_layer(st, &id, 1, 1).unwrap();
        assert_eq!(rec2.link, rec.link);
        assert_eq!(std::fs::read_dir(t.path().join("tmp")).unwrap().count(), 0);

        s.remove_layer(&id).unwrap();
        assert!(!s.has_layer(&id));
        assert!(!s.links_dir().join(&rec.link).exists());
    }
}
