//! `den system check`: walk the store, say what is wrong with it, and with `--repair` put it
//! right.
//!
//! The store is built so that a den killed at any moment leaves it usable (see the module doc of
//! `store`): content appears by rename, records are replaced whole, deletions rename aside
//! first. What a killed den can leave is therefore of two kinds, and the check tells them apart:
//!
//! - **Leftovers** ([`Problem::leftover`]): staging entries under `tmp/` and temporary files of
//!   atomic writes whose writer is gone, content that no record names (what garbage collection
//!   deletes: a pull killed between moving its content in and writing its record, a build killed
//!   between committing a layer and caching it, an `rmi` killed between its records and its
//!   collection), links to removed layers, names of removed containers, containers half created
//!   or left by a killed build. Nothing uses them and nothing sees them; den removes them by
//!   itself the next time it writes ([`Store::sweep`]) or collects.
//! - **Damage**: everything else: a layer directory without a valid record, a record that points
//!   at nothing (an image whose blob or layer is missing, a container whose image or layers are
//!   gone, a build-cache step whose layers are gone), a layer without its link, a blob whose
//!   content does not hash to its name (`--full`), an image record that disagrees with its
//!   manifest or configuration (`--full`), files den did not write. den never makes these; a
//!   disk error, a full disk that lost a write, or another program does.
//!
//! Both are reported, one line each, so that what garbage collection would delete is not
//! deleted silently. [`Store::repair`] removes leftovers (one collection) and damage: a broken
//! record goes (the image is pulled again, the container made again), a broken layer or blob
//! goes, a missing link is made again; it repeats until nothing changes, since removing a broken
//! image can leave its content unused.
//!
//! The check runs under the exclusive content lock, so it never sees a pull, a build or a
//! container being created halfway (they hold the lock shared), and it runs inside den's user
//! namespace like garbage collection: layer files belong to subordinate ids. (`rm` takes no
//! lock: a check that races one may see the removed container's name for an instant.)
//!
//! Not checked: the files inside an unpacked layer (no tar made from them would reproduce the
//! layer's diff id, so there is nothing to re-hash them against), volumes' contents, the
//! writable layers of containers.

use std::path::Path;

use super::{Lock, Result, Store, io_err};

mod problem;
mod walk;

pub use problem::Problem;
use walk::Walk;

/// The names den writes at the top of its store (see the layout in the `store` module doc).
pub const TOP_LEVEL: &[&str] = &[
    "store.json",
    "images.json",
    "manifests.json",
    "driver.json",
    "locks",
    "blobs",
    "layers",
    "containers",
    "containers.cache",
    "names",
    "tmp",
    "volumes",
    "build-cache",
    "events.log",
    "events.log.1",
];

/// What to check beyond the store's structure.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckOptions {
    /// Re-hash every blob; compare each image's record with its manifest and configuration.
    pub full: bool,
}

/// What a check looked at, and what it found.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    pub images: usize,
    pub layers: usize,
    pub blobs: usize,
    pub containers: usize,
    pub problems: Vec<Problem>,
}

/// What a repair did: the problems it fixed, and those still there.
#[derive(Debug, Clone, Default)]
pub struct Repaired {
    pub fixed: Vec<Problem>,
    pub remaining: Checked,
}

impl Store {
    /// Check the store; the caller holds the content lock exclusive (`held`).
    pub fn check(&self, held: &Lock, opts: CheckOptions) -> Result<Checked> {
        debug_assert_eq!(held.path(), self.root.join("locks/content.lock"));
        Walk::new(self, opts).run()
    }

    /// Repair the store (see the module doc); the caller holds the content lock exclusive.
    pub fn repair(&self, held: &Lock, opts: CheckOptions) -> Result<Repaired> {
        let mut seen: Vec<Problem> = Vec::new();
        let mut last = self.check(held, opts)?;
        // Each round can leave new leftovers (an image removed for a missing layer leaves its
        // other content unused); a few rounds reach the fixed point.
        for _ in 0..4 {
            if last.problems.is_empty() {
                break;
            }
            for p in &last.problems {
                if !seen.contains(p) {
                    seen.push(p.clone());
                }
                if let Err(e) = self.fix(p) {
                    tracing::debug!(problem = %p, error = %e, "could not repair");
                }
            }
            // Refused while a record does not parse (what is unused cannot be told then): the
            // damaged record stays reported.
            if let Err(e) = self.collect_garbage_locked(held) {
                tracing::debug!(error = %e, "no collection");
            }
            let next = self.check(held, opts)?;
            let stuck = next.problems == last.problems;
            last = next;
            if stuck {
                break;
            }
        }
        let fixed = seen
            .into_iter()
            .filter(|p| !last.problems.contains(p))
            .collect();
        Ok(Repaired {
            fixed,
            remaining: last,
        })
    }

    /// Put one problem right (leftovers are left to the collection that follows).
    fn fix(&self, p: &Problem) -> Result<()> {
        match p {
            Problem::PartialLayer { dir, .. } => {
                self.remove_aside(&self.root.join("layers").join(dir))
            }
            Problem::Unknown { path } => self.remove_aside(&self.root.join(path)),
            Problem::StaleTemp { path } => {
                let p = self.root.join(path);
                std::fs::remove_file(&p).map_err(io_err(&p))
            }
            Problem::MissingLink { diff_id, link } => {
                let path = self.links_dir().join(link);
                let _ = std::fs::remove_file(&path);
                std::os::unix::fs::symlink(Path::new("..").join(diff_id.hex()).join("diff"), &path)
                    .map_err(io_err(&path))
            }
            Problem::BrokenImage { id, .. } | Problem::ImageMismatch { id, .. } => self
                .update_images(|images| {
                    images.retain(|i| &i.id != id);
                    Ok(())
                }),
            Problem::BrokenContainer { id, running, .. } if !running => self.remove_container(id),
            Problem::DamagedRecord { path } => {
                let full = self.root.join(path);
                match path
                    .components()
                    .next()
                    .and_then(|c| c.as_os_str().to_str())
                {
                    // The container cannot be known without its record: it goes whole.
                    Some("containers") => match path.parent() {
                        Some(dir) => self.remove_aside(&self.root.join(dir)),
                        None => Ok(()),
                    },
                    Some("build-cache") => std::fs::remove_file(&full).map_err(io_err(&full)),
                    // images.json: every image record is in it; den does not guess them.
                    _ => Ok(()),
                }
            }
            Problem::BrokenCacheStep { path, .. } => {
                let full = self.root.join(path);
                std::fs::remove_file(&full).map_err(io_err(&full))
            }
            Problem::CorruptBlob { digest, .. } => {
                let p = self.own_blob_path(digest);
                std::fs::remove_file(&p).map_err(io_err(&p))
            }
            _ => Ok(()),
        }
    }

    /// Rename `path` into a staging entry of this process, then delete it: a repair killed
    /// midway leaves only a stale entry, never half a layer where a layer belongs.
    fn remove_aside(&self, path: &Path) -> Result<()> {
        let aside = self.staging_dir("rm")?;
        std::fs::rename(path, aside.path.join("x")).map_err(io_err(path))?;
        crate::fs::remove_tree(&aside.path).map_err(io_err(&aside.path))
    }
}

#[cfg(test)]
mod tests;
