//! Additional stores: other den stores, read only, whose images this store's user can list,
//! inspect, run and build on without copying them (`[storage] additional` in the config,
//! `DEN_ADDITIONAL_STORES`), as podman's `additionalimagestores`. A site's admin makes one with
//! `den --root /sw/den pull ...` and opens it to others with `den --root /sw/den system share`.
//!
//! Such a store belongs to someone else and may sit on a read-only mount, so den never writes
//! there, never locks it (a lock file opened for writing would need write access, and a shared
//! flock on a file opened read-only proves nothing to a writer that takes none), never sweeps
//! it and never collects its garbage. It reads only what the owner replaces atomically
//! (`images.json`) or never changes once in place (`blobs/`, `layers/<hex>/`): a reader sees
//! the old records or the new, never half of them. An admin who removes an image while users
//! run it breaks their containers, as deleting a SIF file under a running Apptainer job does.
//!
//! Trust: listing a store is trusting its owner as one trusts a registry: its image named
//! `busybox` is what `den run busybox` runs when the user has none of that name (podman's
//! additional stores behave the same). Its owner gains nothing over the user's files: den reads
//! it as the user, and a link in it that points elsewhere reaches only what the user could
//! read anyway (a layer record still names its own layer; [`Store::layer_record`] checks).
//!
//! Lookup order: a name (or id) is looked up in the user's own store first, then in each
//! additional store in the configured order, so an image in both resolves to the user's own.
//! Content (blobs and unpacked layers) is addressed by digest and the same wherever it lives:
//! [`Store::has_layer`], [`Store::layer_diff`], [`Store::blob_path`] and the like look in the
//! own store first, then in the additional ones, so every reader (run, build, save, push,
//! inspect) uses a shared layer in place. What writes or deletes (commits, gc, check, prune,
//! rmi, reset) works on the own store's files only.
//!
//! Containers on such images keep their writable layer in the user's own store; the lower
//! layers are the additional store's `layers/<hex>/diff` directories. Where those belong to
//! another user, their inodes' owners are unmapped in the user's namespace, and kernel
//! overlayfs refuses every copy-up below them (the namespace's root has no capability over an
//! unmapped inode: `touch /etc/x` fails with Permission denied). Such containers therefore use
//! fuse-overlayfs with `squash_to_root`, which serves every lower file as owned by root and
//! copies up as the user ([`super::driver::for_layers`]); a store of the user's own is mounted
//! with kernel overlayfs as usual.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{FORMAT, ImageRecord, StoreMeta};

/// An additional store, found good when the store was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Additional {
    pub root: PathBuf,
    /// Owned by another user than the own store: its files' owners are unmapped in den's
    /// user namespace.
    pub foreign: bool,
}

/// Why an additional store is skipped (a warning, never an error: one bad entry in a site's
/// config must not stop every user's den).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Skipped {
    #[error("the additional store {0} does not exist or cannot be read")]
    Missing(PathBuf),
    #[error("the additional store {0} is not a den store (it has no readable store.json)")]
    NotAStore(PathBuf),
    #[error("the additional store {path} has format {found}, this den reads format {FORMAT}")]
    Format { path: PathBuf, found: u32 },
    #[error("the additional store {0} has a damaged store.json")]
    Damaged(PathBuf),
    #[error(
        "the additional store {0} has ':', ',' or '\\' in its path, which overlay's options cannot hold"
    )]
    BadPath(PathBuf),
}

impl Skipped {
    /// The one line den prints for it.
    pub fn warning(&self) -> String {
        let fix = match self {
            Skipped::Format { .. } => {
                "its owner must rewrite it with this den's release, or remove it from the list"
            }
            Skipped::BadPath(_) => "move it to a path without those characters",
            _ => "fix storage.additional in den's config (or DEN_ADDITIONAL_STORES)",
        };
        format!("warning: {self}: skipped; {fix}")
    }
}

/// Check each of `roots` (in order) and keep the good ones; `own` is the user's own store's
/// root, which is never its own additional store (an admin's `--root /sw/den` with `/sw/den`
/// in the config).
pub(super) fn open(own: &Path, roots: &[PathBuf]) -> (Vec<Additional>, Vec<Skipped>) {
    let own_canon = std::fs::canonicalize(own).ok();
    let own_uid = std::fs::metadata(own).map(|m| m.uid()).ok();
    let (mut good, mut skipped) = (Vec::new(), Vec::new());
    for root in roots {
        let Ok(canon) = std::fs::canonicalize(root) else {
            skipped.push(Skipped::Missing(root.clone()));
            continue;
        };
        if canon
            .as_os_str()
            .as_encoded_bytes()
            .iter()
            .any(|b| matches!(b, b':' | b',' | b'\\'))
        {
            skipped.push(Skipped::BadPath(root.clone()));
            continue;
        }
        if Some(&canon) == own_canon.as_ref() || good.iter().any(|a: &Additional| a.root == canon) {
            continue;
        }
        let Ok(md) = std::fs::metadata(&canon) else {
            skipped.push(Skipped::Missing(root.clone()));
            continue;
        };
        let Ok(bytes) = std::fs::read(canon.join("store.json")) else {
            skipped.push(Skipped::NotAStore(root.clone()));
            continue;
        };
        match serde_json::from_slice::<StoreMeta>(&bytes) {
            Err(_) => skipped.push(Skipped::Damaged(root.clone())),
            Ok(m) if m.format != FORMAT => skipped.push(Skipped::Format {
                path: root.clone(),
                found: m.format,
            }),
            Ok(_) => good.push(Additional {
                foreign: own_uid != Some(md.uid()),
                root: canon,
            }),
        }
    }
    (good, skipped)
}

impl Additional {
    /// Its image records; none when it has none or they cannot be read (said once, in the log).
    pub fn images(&self) -> Vec<ImageRecord> {
        #[derive(serde::Deserialize)]
        struct ImagesFile {
            images: Vec<ImageRecord>,
        }
        let p = self.root.join("images.json");
        match std::fs::read(&p) {
            Ok(bytes) => match serde_json::from_slice::<ImagesFile>(&bytes) {
                Ok(f) => f.images,
                Err(e) => {
                    tracing::warn!(path = %p.display(), error = %e, "additional store's images unreadable");
                    Vec::new()
                }
            },
            Err(_) => Vec::new(),
        }
    }

    pub(super) fn layer_dir(&self, hex: &str) -> PathBuf {
        self.root.join("layers").join(hex)
    }

    pub(super) fn blob_path(&self, hex: &str) -> PathBuf {
        self.root.join("blobs/sha256").join(hex)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn bad_entries_are_skipped_with_a_reason_and_the_own_store_never_counts() {
        let t = tempfile::tempdir().unwrap();
        let own = t.path().join("own");
        Store::open(&own).unwrap();
        let good = t.path().join("good");
        Store::open(&good).unwrap();
        let old = t.path().join("old");
        Store::open(&old).unwrap();
        std::fs::write(old.join("store.json"), r#"{"format":99}"#).unwrap();
        let empty = t.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let comma = t.path().join("a,b");
        Store::open(&comma).unwrap();
        let roots = vec![
            comma.clone(),
            t.path().join("missing"),
            empty.clone(),
            old.clone(),
            own.clone(),
            good.clone(),
            good.clone(),
        ];
        let (found, skipped) = open(&own, &roots);
        assert_eq!(
            found,
            vec![Additional {
                root: std::fs::canonicalize(&good).unwrap(),
                foreign: false
            }]
        );
        assert_eq!(
            skipped,
            vec![
                Skipped::BadPath(comma),
                Skipped::Missing(t.path().join("missing")),
                Skipped::NotAStore(empty),
                Skipped::Format {
                    path: old.clone(),
                    found: 99
                },
            ]
        );
        let w = skipped[3].warning();
        assert!(w.starts_with("warning: the additional store "), "{w}");
        assert!(w.contains("format 99") && !w.contains('\n'), "{w}");
        // Nothing was written in the stores it read.
        assert_eq!(
            std::fs::read_to_string(old.join("store.json")).unwrap(),
            r#"{"format":99}"#
        );
    }

    fn layer(s: &Store, c: &str) -> crate::digest::Digest {
        let id = crate::digest::Digest::from_hex(&c.repeat(64)).unwrap();
        let st = s.stage_layer().unwrap();
        std::fs::write(st.diff().join(c), c).unwrap();
        s.commit_layer(st, &id, 1, 1).unwrap();
        id
    }

    #[test]
    fn names_resolve_own_store_first_and_content_is_read_in_place() {
        let t = tempfile::tempdir().unwrap();
        let own = Store::open(&t.path().join("own")).unwrap();
        let shared = Store::open(&t.path().join("shared")).unwrap();
        let name = crate::image::Reference::parse("solver:2.1").unwrap();
        let base = layer(&shared, "a");
        let mut theirs = crate::store::test_image(&"1".repeat(64), &[]);
        theirs.layers = vec![crate::store::LayerRef {
            diff_id: base.clone(),
            blob: base.clone(),
            media_type: "m".into(),
            size: 1,
        }];
        shared.put_image(theirs, Some(&name)).unwrap();
        shared
            .put_blob(&crate::digest::Digest::of(b"cfg"), b"cfg")
            .unwrap();
        let before = std::fs::read(t.path().join("shared/images.json")).unwrap();

        let (own, skipped) = own.with_additional(&[t.path().join("shared")]);
        assert!(skipped.is_empty());
        let (found, from) = own.find_image_from("solver:2.1").unwrap();
        assert_eq!(found.id.hex(), "1".repeat(64));
        assert_eq!(
            from,
            Some(std::fs::canonicalize(t.path().join("shared")).unwrap())
        );
        assert_eq!(own.additional_images().len(), 1);
        assert!(own.images().unwrap().is_empty());
        // Content by digest, in place: no copy into the own store.
        assert!(own.has_layer(&base) && !own.layer_dir(&base).exists());
        assert_eq!(
            std::fs::read(own.layer_diff(&base).join("a")).unwrap(),
            b"a"
        );
        assert!(!own.layer_is_foreign(&base), "the same user's store");
        assert!(own.layer_lower(&base).unwrap().is_absolute());
        assert_eq!(
            own.read_blob(&crate::digest::Digest::of(b"cfg")).unwrap(),
            b"cfg"
        );
        // A blob written here goes here, even when the additional store has it.
        own.put_blob(&crate::digest::Digest::of(b"cfg"), b"cfg")
            .unwrap();
        assert!(
            !own.own_blob_path(&crate::digest::Digest::of(b"cfg"))
                .exists()
        );

        // The own store's image of that name wins.
        own.put_image(crate::store::test_image(&"2".repeat(64), &[]), Some(&name))
            .unwrap();
        assert_eq!(
            own.find_image("solver:2.1").unwrap().id.hex(),
            "2".repeat(64)
        );
        assert_eq!(
            own.find_image(&"1".repeat(12)).unwrap().id.hex(),
            "1".repeat(64)
        );
        assert_eq!(
            std::fs::read(t.path().join("shared/images.json")).unwrap(),
            before
        );
    }

    #[test]
    fn overlay_lowers_from_an_additional_store_are_absolute() {
        use crate::store::driver::{self, Driver};
        use crate::sys::{Call, RecordingSys};
        let t = tempfile::tempdir().unwrap();
        let own = Store::open(&t.path().join("own")).unwrap();
        let shared = Store::open(&t.path().join("shared")).unwrap();
        let (a, b) = (layer(&shared, "a"), layer(&own, "b"));
        let (own, _) = own.with_additional(&[t.path().join("shared")]);
        let ids = vec![a, b];
        // The same user's store: kernel overlay stays.
        assert_eq!(
            driver::for_layers(Driver::Overlay, &own, &ids),
            Driver::Overlay
        );
        let cdir = t.path().join("c");
        driver::prepare(Driver::Overlay, &own, &ids, &cdir).unwrap();
        let sys = RecordingSys::new();
        driver::mount(&sys, Driver::Overlay, &own, &ids, &cdir, false).unwrap();
        let data = sys
            .calls()
            .into_iter()
            .find_map(|c| match c {
                Call::Mount(m) => m.data,
                _ => None,
            })
            .unwrap();
        let shared_link = std::fs::canonicalize(t.path().join("shared"))
            .unwrap()
            .join("layers/l")
            .join("a".repeat(16));
        assert!(
            data.starts_with(&format!(
                "lowerdir={}:{},",
                "b".repeat(16),
                shared_link.display()
            )),
            "{data}"
        );
    }
}
