//! Sharing a store with other users, as an additional store of theirs (`den --root /sw/den
//! system share`, see [`super::additional`]).
//!
//! A store is private by default (0700: container records hold what containers were given,
//! `-e DB_PASSWORD=...`, and logs what they printed), and [`Store::open`] makes a root that
//! others can enter private again. A shared store is marked so in `store.json`; its root stays
//! 0755, and what others read is readable: `store.json`, `images.json`, `manifests.json`,
//! `blobs/`, `layers/` (each layer's directory and record, and the top of its `diff`). What
//! holds the owner's own state stays private: `containers/`, `names/`, `tmp/`, `locks/`,
//! `volumes/`, `build-cache/`, the event journal, `driver.json`. Files inside a layer keep the
//! modes the image gave them (a file the image makes 0600 stays unreadable to others, as in
//! any shared directory tree).
//!
//! Later writes by the owner keep this: records are written 0644 ([`readable`], used by
//! [`Store::write_atomic`]), and new blobs and layers are opened up as they are put in place
//! ([`Store::publish`]), whatever the owner's umask.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::{Result, Store, StoreMeta, io_err};

/// Top-level entries only the owner may read in a shared store.
const PRIVATE: &[&str] = &[
    "containers",
    "names",
    "tmp",
    "locks",
    "volumes",
    "build-cache",
    "events.log",
    "events.log.1",
    "driver.json",
];

/// Whether a record at `path` in a shared store at `root` is one others read.
pub(super) fn readable(root: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(root) else {
        return false;
    };
    let mut parts = rel.components().map(|c| c.as_os_str().to_string_lossy());
    match parts.next().as_deref() {
        Some("layers" | "blobs") => true,
        Some("store.json" | "images.json" | "manifests.json") => parts.next().is_none(),
        _ => false,
    }
}

/// What [`Store::share`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shared {
    /// Entries whose mode it changed.
    pub changed: usize,
    /// Images others can now use.
    pub images: usize,
}

fn set_mode(path: &Path, f: impl Fn(u32) -> u32, changed: &mut usize) -> Result<()> {
    let md = std::fs::symlink_metadata(path).map_err(io_err(path))?;
    if md.file_type().is_symlink() {
        return Ok(());
    }
    let old = md.mode() & 0o7777;
    let new = f(old);
    if new != old {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(new))
            .map_err(io_err(path))?;
        *changed += 1;
    }
    Ok(())
}

/// a+rX: readable by all, and searchable where it is a directory.
fn open_up(mode: u32, dir: bool) -> u32 {
    if dir { mode | 0o555 } else { mode | 0o444 }
}

impl Store {
    /// Open this store to other users as an additional store (read only: they never write
    /// in it), and keep it open on later writes. Run by its owner; idempotent.
    pub fn share(&self) -> Result<Shared> {
        let mut done = Shared::default();
        {
            let _g = self.lock_meta()?;
            let path = self.root.join("store.json");
            let mut meta: StoreMeta = self.read_json(&path)?;
            meta.shared = true;
            let mut shared = self.clone();
            shared.shared = true;
            shared.write_json(&path, &meta)?;
        }
        let c = &mut done.changed;
        for name in PRIVATE {
            let p = self.root.join(name);
            if p.exists() {
                set_mode(&p, |m| m & !0o077, c)?;
            }
        }
        set_mode(&self.root, |m| open_up(m, true), c)?;
        for name in ["store.json", "images.json", "manifests.json"] {
            let p = self.root.join(name);
            if p.exists() {
                set_mode(&p, |m| open_up(m, false), c)?;
            }
        }
        for dir in ["blobs", "blobs/sha256", "layers", "layers/l"] {
            set_mode(&self.root.join(dir), |m| open_up(m, true), c)?;
        }
        let blobs = self.blobs_dir();
        for e in std::fs::read_dir(&blobs).map_err(io_err(&blobs))?.flatten() {
            set_mode(&e.path(), |m| open_up(m, false), c)?;
        }
        for id in self.layer_ids()? {
            *c += self.publish_layer(&self.layer_dir(&id))?;
        }
        done.images = self.images()?.len();
        Ok(done)
    }

    /// In a shared store, make a blob or layer just put in place at `path` readable by
    /// others (the owner's umask may have made it private). Nothing elsewhere.
    pub(super) fn publish(&self, path: &Path, layer: bool) -> Result<()> {
        if !self.shared {
            return Ok(());
        }
        if layer {
            self.publish_layer(path)?;
        } else {
            set_mode(path, |m| open_up(m, false), &mut 0)?;
        }
        Ok(())
    }

    /// A layer's directory, its record and the top of its files, readable by others.
    fn publish_layer(&self, dir: &Path) -> Result<usize> {
        let mut changed = 0;
        set_mode(dir, |m| open_up(m, true), &mut changed)?;
        let record = dir.join("layer.json");
        if record.exists() {
            set_mode(&record, |m| open_up(m, false), &mut changed)?;
        }
        set_mode(&dir.join("diff"), |m| open_up(m, true), &mut changed)?;
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().mode() & 0o777
    }

    #[test]
    fn sharing_opens_what_others_read_and_keeps_it_open() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("s");
        let s = Store::open(&root).unwrap();
        let id = Digest::from_hex(&"a".repeat(64)).unwrap();
        let st = s.stage_layer().unwrap();
        std::fs::set_permissions(st.diff(), std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::write(st.diff().join("secret"), b"x").unwrap();
        std::fs::set_permissions(
            st.diff().join("secret"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        s.commit_layer(st, &id, 1, 1).unwrap();
        s.put_image(crate::store::test_image(&"b".repeat(64), &["x:1"]), None)
            .unwrap();
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&root.join("images.json")), 0o600);

        let shared = s.share().unwrap();
        assert_eq!(shared.images, 1);
        assert!(shared.changed > 0);
        assert_eq!(mode(&root), 0o755);
        for f in ["store.json", "images.json"] {
            assert_eq!(mode(&root.join(f)), 0o644, "{f}");
        }
        assert_eq!(mode(&s.layer_dir(&id).join("layer.json")), 0o644);
        assert_eq!(mode(&s.layer_diff(&id)), 0o755);
        // The image's own modes inside a layer are its own.
        assert_eq!(mode(&s.layer_diff(&id).join("secret")), 0o600);
        for d in ["containers", "tmp", "locks", "names"] {
            assert_eq!(mode(&root.join(d)) & 0o077, 0, "{d}");
        }
        // Open again: still shared, not made private; later writes stay readable.
        let s = Store::open(&root).unwrap();
        assert!(s.is_shared() && s.repaired().is_none());
        assert_eq!(mode(&root), 0o755);
        s.put_image(crate::store::test_image(&"c".repeat(64), &["y:1"]), None)
            .unwrap();
        assert_eq!(mode(&root.join("images.json")), 0o644);
        let id2 = Digest::from_hex(&"d".repeat(64)).unwrap();
        let st = s.stage_layer().unwrap();
        std::fs::set_permissions(&st.dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        s.commit_layer(st, &id2, 0, 0).unwrap();
        assert_eq!(mode(&s.layer_dir(&id2)), 0o755);
        assert_eq!(mode(&s.layer_dir(&id2).join("layer.json")), 0o644);
        // A private store's records stay private.
        let p = Store::open(&t.path().join("p")).unwrap();
        p.put_image(crate::store::test_image(&"b".repeat(64), &[]), None)
            .unwrap();
        assert_eq!(mode(&t.path().join("p/images.json")), 0o600);
        assert!(readable(&root, &root.join("layers/x/layer.json")));
        assert!(!readable(&root, &root.join("containers/x/container.json")));
        assert!(!readable(&root, &root.join("images.json/x")));
    }
}
