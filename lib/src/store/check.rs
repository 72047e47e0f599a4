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

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use super::{
    Digest, Hasher, ImageRecord, Lock, Result, Status, Store, StoreError,
    containers::{BUILD_STEP_LABEL, valid_id, valid_name},
    gc::CacheStep,
    io_err, stale_staging, stale_temp, temp_file,
};

/// The names den writes at the top of its store (see the layout in the `store` module doc).
pub const TOP_LEVEL: &[&str] = &[
    "store.json",
    "images.json",
    "driver.json",
    "locks",
    "blobs",
    "layers",
    "containers",
    "names",
    "tmp",
    "volumes",
    "build-cache",
];

/// One thing wrong with the store. Paths are relative to the store's root.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Problem {
    /// `tmp/<entry>` whose den process is gone.
    StaleStaging { path: PathBuf },
    /// `.NAME.tmp-PID-RANDOM` of a writer that is gone.
    StaleTemp { path: PathBuf },
    /// A layer no image, container or build-cache step uses.
    UnusedLayer { diff_id: Digest },
    /// A blob no image or build-cache step uses.
    UnusedBlob { digest: Digest },
    /// `layers/l/<name>` whose layer is gone.
    DanglingLink { name: String },
    /// `names/<name>` whose container is gone.
    DanglingName { name: String, id: String },
    /// `containers/<id>/` without its record.
    PartialContainer { id: String },
    /// A build step's container whose build was killed.
    BuildLeftover { id: String, name: String },
    /// `layers/<dir>` that is not a complete layer.
    PartialLayer { dir: String, why: &'static str },
    /// A layer whose short link under `layers/l` is missing or points elsewhere.
    MissingLink { diff_id: Digest, link: String },
    /// An image record that names content the store does not have.
    BrokenImage {
        image: String,
        id: Digest,
        missing: String,
    },
    /// A container whose image or layers are gone.
    BrokenContainer {
        id: String,
        name: String,
        missing: String,
        running: bool,
    },
    /// A record that does not parse.
    DamagedRecord { path: PathBuf },
    /// A build-cache step that names content the store does not have.
    BrokenCacheStep { path: PathBuf, missing: String },
    /// A file den did not write.
    Unknown { path: PathBuf },
    /// A blob whose content does not hash to its name (`--full`).
    CorruptBlob { digest: Digest, actual: Digest },
    /// An image record whose layers differ from its manifest's or configuration's (`--full`).
    ImageMismatch {
        image: String,
        id: Digest,
        what: &'static str,
    },
}

impl Problem {
    /// Left by a killed den and removed by den itself at its next write or collection; the
    /// rest is damage (see the module doc).
    pub fn leftover(&self) -> bool {
        matches!(
            self,
            Problem::StaleStaging { .. }
                | Problem::StaleTemp { .. }
                | Problem::UnusedLayer { .. }
                | Problem::UnusedBlob { .. }
                | Problem::DanglingLink { .. }
                | Problem::DanglingName { .. }
                | Problem::PartialContainer { .. }
                | Problem::BuildLeftover { .. }
        )
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::StaleStaging { path } => write!(
                f,
                "stale staging entry: {} (its den process is gone)",
                path.display()
            ),
            Problem::StaleTemp { path } => write!(
                f,
                "stale temporary file: {} (its writer is gone)",
                path.display()
            ),
            Problem::UnusedLayer { diff_id } => write!(
                f,
                "unused layer: layers/{} (no image, container or build-cache step uses it)",
                diff_id.hex()
            ),
            Problem::UnusedBlob { digest } => write!(
                f,
                "unused blob: blobs/sha256/{} (no image or build-cache step uses it)",
                digest.hex()
            ),
            Problem::DanglingLink { name } => {
                write!(f, "dangling link: layers/l/{name} (its layer is gone)")
            }
            Problem::DanglingName { name, id } => write!(
                f,
                "dangling name: names/{name} (its container {} is gone)",
                &id[..12]
            ),
            Problem::PartialContainer { id } => {
                write!(f, "partial container: containers/{id} (it has no record)")
            }
            Problem::BuildLeftover { id, name } => write!(
                f,
                "build step container left by a killed build: containers/{id} ({name})"
            ),
            Problem::PartialLayer { dir, why } => {
                write!(f, "partial layer: layers/{dir} ({why})")
            }
            Problem::MissingLink { diff_id, link } => write!(
                f,
                "missing layer link: layers/l/{link} (for layers/{})",
                diff_id.hex()
            ),
            Problem::BrokenImage { image, id, missing } => write!(
                f,
                "image with missing content: {image} ({}) lacks {missing}",
                id.short()
            ),
            Problem::BrokenContainer {
                id,
                name,
                missing,
                running,
            } => write!(
                f,
                "container with missing content: {name} ({}) lacks {missing}{}",
                &id[..12],
                if *running { " (running)" } else { "" }
            ),
            Problem::DamagedRecord { path } => {
                write!(f, "damaged record: {} (it does not parse)", path.display())
            }
            Problem::BrokenCacheStep { path, missing } => write!(
                f,
                "build-cache step with missing content: {} lacks {missing}",
                path.display()
            ),
            Problem::Unknown { path } => {
                write!(f, "not den's: {} (den did not write it)", path.display())
            }
            Problem::CorruptBlob { digest, actual } => write!(
                f,
                "corrupt blob: blobs/sha256/{} (its content hashes to {actual})",
                digest.hex()
            ),
            Problem::ImageMismatch { image, id, what } => write!(
                f,
                "image record disagrees with its {what}: {image} ({})",
                id.short()
            ),
        }
    }
}

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
                let p = self.blob_path(digest);
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

/// One pass over the store.
struct Walk<'a> {
    store: &'a Store,
    opts: CheckOptions,
    out: Checked,
    /// Complete layers, with their links.
    layers: HashMap<Digest, String>,
    /// Every layer directory, complete or not.
    layer_dirs: HashSet<Digest>,
    blobs: HashSet<Digest>,
    /// Records that did not parse: what is unused cannot be told without them.
    unreadable: bool,
}

impl<'a> Walk<'a> {
    fn new(store: &'a Store, opts: CheckOptions) -> Walk<'a> {
        Walk {
            store,
            opts,
            out: Checked::default(),
            layers: HashMap::new(),
            layer_dirs: HashSet::new(),
            blobs: HashSet::new(),
            unreadable: false,
        }
    }

    fn root(&self) -> &Path {
        &self.store.root
    }

    fn problem(&mut self, p: Problem) {
        self.out.problems.push(p);
    }

    /// Entries of `rel` (relative to the root), sorted by name; none if it does not exist.
    fn entries(&self, rel: &str) -> Result<Vec<(String, std::fs::Metadata)>> {
        let dir = self.root().join(rel);
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&dir)(e)),
        };
        let mut out: Vec<(String, std::fs::Metadata)> = rd
            .flatten()
            .filter_map(|e| {
                let md = e.path().symlink_metadata().ok()?;
                Some((e.file_name().to_string_lossy().into_owned(), md))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// A temporary file of an atomic write: reported when its writer is gone, skipped while it
    /// runs. Returns whether `name` was one.
    fn temp(&mut self, rel: &str, name: &str) -> bool {
        if !temp_file(name) {
            return false;
        }
        if stale_temp(name) {
            self.problem(Problem::StaleTemp {
                path: Path::new(rel).join(name),
            });
        }
        true
    }

    fn unknown(&mut self, rel: &str, name: &str) {
        self.problem(Problem::Unknown {
            path: Path::new(rel).join(name),
        });
    }

    fn run(mut self) -> Result<Checked> {
        self.top_level()?;
        self.tmp()?;
        self.layers()?;
        self.links()?;
        self.blobs()?;
        let images = self.images()?;
        self.containers(images.as_deref())?;
        self.names()?;
        self.build_cache()?;
        if images.is_some() {
            self.unused()?;
        }
        self.out.images = images.map_or(0, |i| i.len());
        self.out.layers = self.layers.len();
        self.out.blobs = self.blobs.len();
        Ok(self.out)
    }

    fn top_level(&mut self) -> Result<()> {
        for (name, _) in self.entries("")? {
            if !TOP_LEVEL.contains(&name.as_str()) && !self.temp("", &name) {
                self.unknown("", &name);
            }
        }
        for (name, _) in self.entries("locks")? {
            if name != "meta.lock" && name != "content.lock" {
                self.unknown("locks", &name);
            }
        }
        Ok(())
    }

    fn tmp(&mut self) -> Result<()> {
        for (name, _) in self.entries("tmp")? {
            let path = self.root().join("tmp").join(&name);
            if stale_staging(&path).is_some() {
                self.problem(Problem::StaleStaging {
                    path: Path::new("tmp").join(name),
                });
            }
        }
        Ok(())
    }

    fn layers(&mut self) -> Result<()> {
        for (name, md) in self.entries("layers")? {
            if name == "l" && md.is_dir() {
                continue;
            }
            let Ok(diff_id) = Digest::from_hex(&name) else {
                self.unknown("layers", &name);
                continue;
            };
            if !md.is_dir() {
                self.unknown("layers", &name);
                continue;
            }
            self.layer_dirs.insert(diff_id.clone());
            let why = match self.store.layer_record(&diff_id) {
                Ok(record) if self.store.layer_diff(&diff_id).is_dir() => {
                    self.layers.insert(diff_id.clone(), record.link);
                    None
                }
                Ok(_) => Some("it has no diff directory"),
                Err(StoreError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    Some("it has no layer.json")
                }
                Err(StoreError::Forged { .. }) => Some("its layer.json names another layer"),
                Err(_) => Some("its layer.json does not parse"),
            };
            if let Some(why) = why {
                self.problem(Problem::PartialLayer { dir: name, why });
                continue;
            }
            let rel = format!("layers/{name}");
            for (inner, _) in self.entries(&rel)? {
                if inner != "diff" && inner != "layer.json" && !self.temp(&rel, &inner) {
                    self.unknown(&rel, &inner);
                }
            }
        }
        Ok(())
    }

    fn links(&mut self) -> Result<()> {
        let mut linked = HashSet::new();
        for (name, md) in self.entries("layers/l")? {
            let target = std::fs::read_link(self.store.links_dir().join(&name)).ok();
            let layer = target.as_ref().and_then(|t| {
                let mut c = t.components();
                match (c.next(), c.next(), c.next(), c.next()) {
                    (
                        Some(std::path::Component::ParentDir),
                        Some(std::path::Component::Normal(hex)),
                        Some(std::path::Component::Normal(diff)),
                        None,
                    ) if diff == "diff" => Digest::from_hex(&hex.to_string_lossy()).ok(),
                    _ => None,
                }
            });
            match layer {
                _ if !md.file_type().is_symlink() => self.unknown("layers/l", &name),
                None => self.unknown("layers/l", &name),
                Some(d) => match self.layers.get(&d) {
                    Some(link) if *link == name => {
                        linked.insert(d);
                    }
                    // A layer being removed by repair, or half a layer: its link goes with it.
                    None if self.layer_dirs.contains(&d) => {}
                    None => self.problem(Problem::DanglingLink { name }),
                    Some(_) => self.unknown("layers/l", &name),
                },
            }
        }
        let mut missing: Vec<(Digest, String)> = self
            .layers
            .iter()
            .filter(|(d, _)| !linked.contains(*d))
            .map(|(d, l)| (d.clone(), l.clone()))
            .collect();
        missing.sort();
        for (diff_id, link) in missing {
            self.problem(Problem::MissingLink { diff_id, link });
        }
        Ok(())
    }

    fn blobs(&mut self) -> Result<()> {
        for (name, _) in self.entries("blobs")? {
            if name != "sha256" {
                self.unknown("blobs", &name);
            }
        }
        for (name, md) in self.entries("blobs/sha256")? {
            if self.temp("blobs/sha256", &name) {
                continue;
            }
            let digest = match Digest::from_hex(&name) {
                Ok(d) if md.is_file() => d,
                _ => {
                    self.unknown("blobs/sha256", &name);
                    continue;
                }
            };
            if self.opts.full {
                let actual = hash_file(&self.store.blob_path(&digest))?;
                if actual != digest {
                    self.problem(Problem::CorruptBlob {
                        digest: digest.clone(),
                        actual,
                    });
                }
            }
            self.blobs.insert(digest);
        }
        Ok(())
    }

    /// The image records, checked against the content; `None` when `images.json` is damaged.
    fn images(&mut self) -> Result<Option<Vec<ImageRecord>>> {
        let images = match self.store.images() {
            Ok(i) => i,
            Err(StoreError::Damaged { .. }) => {
                self.unreadable = true;
                self.problem(Problem::DamagedRecord {
                    path: "images.json".into(),
                });
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        for i in &images {
            let image = i.names.first().cloned().unwrap_or_else(|| "<none>".into());
            let mut missing = Vec::new();
            for (what, d) in [("manifest", &i.manifest), ("config", &i.config)] {
                if !self.blobs.contains(d) {
                    missing.push(format!("its {what} blobs/sha256/{}", d.hex()));
                }
            }
            for l in &i.layers {
                if !self.layers.contains_key(&l.diff_id) {
                    missing.push(format!("its layer layers/{}", l.diff_id.hex()));
                }
                if !self.blobs.contains(&l.blob) {
                    missing.push(format!("its layer blob blobs/sha256/{}", l.blob.hex()));
                }
            }
            for m in missing {
                self.problem(Problem::BrokenImage {
                    image: image.clone(),
                    id: i.id.clone(),
                    missing: m,
                });
            }
            if self.opts.full
                && let Some(what) = self.disagrees(i)
            {
                self.problem(Problem::ImageMismatch {
                    image: image.clone(),
                    id: i.id.clone(),
                    what,
                });
            }
        }
        Ok(Some(images))
    }

    /// Whether an image's record names other layers than its manifest and configuration do
    /// (`--full`); blobs that are missing or corrupt are reported on their own.
    fn disagrees(&self, i: &ImageRecord) -> Option<&'static str> {
        let read = |d: &Digest| -> Option<serde_json::Value> {
            let bytes = self.store.read_blob(d).ok()?;
            (Digest::of(&bytes) == *d).then_some(())?;
            serde_json::from_slice(&bytes).ok()
        };
        let strings = |v: Option<&serde_json::Value>, field: Option<&str>| -> Vec<String> {
            v.and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|x| match field {
                            Some(f) => x.get(f).and_then(|s| s.as_str()),
                            None => x.as_str(),
                        })
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default()
        };
        if let Some(m) = read(&i.manifest) {
            let blobs: Vec<String> = i.layers.iter().map(|l| l.blob.to_string()).collect();
            if strings(m.get("layers"), Some("digest")) != blobs
                || m.pointer("/config/digest").and_then(|d| d.as_str()) != Some(i.config.as_str())
            {
                return Some("manifest");
            }
        }
        if let Some(c) = read(&i.config) {
            let diffs: Vec<String> = i.layers.iter().map(|l| l.diff_id.to_string()).collect();
            if strings(c.pointer("/rootfs/diff_ids"), None) != diffs {
                return Some("configuration");
            }
        }
        None
    }

    /// The container records, checked against the images and layers.
    fn containers(&mut self, images: Option<&[ImageRecord]>) -> Result<()> {
        for (id, md) in self.entries("containers")? {
            if !valid_id(&id) || !md.is_dir() {
                self.unknown("containers", &id);
                continue;
            }
            let rel = format!("containers/{id}");
            for (name, _) in self.entries(&rel)? {
                self.temp(&rel, &name);
            }
            let dir = self.store.container_dir(&id);
            if !dir.join("container.json").exists() {
                self.problem(Problem::PartialContainer { id });
                continue;
            }
            let record = match self.store.container(&id) {
                Ok(r) => r,
                Err(StoreError::Damaged { .. }) => {
                    self.unreadable = true;
                    self.problem(Problem::DamagedRecord {
                        path: Path::new(&rel).join("container.json"),
                    });
                    continue;
                }
                Err(e) => return Err(e),
            };
            let running = match self.store.container_state(&id) {
                Ok(s) => s.observed().status == Status::Running,
                Err(StoreError::Damaged { .. }) => {
                    self.problem(Problem::DamagedRecord {
                        path: Path::new(&rel).join("state.json"),
                    });
                    false
                }
                // A container made by a den older than state.json: nothing runs it.
                Err(_) => false,
            };
            self.out.containers += 1;
            if record.spec.labels.contains_key(BUILD_STEP_LABEL) && !running {
                self.problem(Problem::BuildLeftover {
                    id: id.clone(),
                    name: record.name.clone(),
                });
            }
            let broken = |missing: String| Problem::BrokenContainer {
                id: id.clone(),
                name: record.name.clone(),
                missing,
                running,
            };
            let layers: Option<Vec<Digest>> = if !record.layers.is_empty() {
                Some(record.layers.clone())
            } else {
                match images {
                    Some(images) => match images.iter().find(|i| i.id == record.image_id) {
                        Some(i) => Some(i.layers.iter().map(|l| l.diff_id.clone()).collect()),
                        None => {
                            let p = broken(format!("its image {}", record.image_id.short()));
                            self.problem(p);
                            None
                        }
                    },
                    None => None,
                }
            };
            for d in layers.unwrap_or_default() {
                if !self.layers.contains_key(&d) {
                    let p = broken(format!("its layer layers/{}", d.hex()));
                    self.problem(p);
                }
            }
        }
        Ok(())
    }

    fn names(&mut self) -> Result<()> {
        let dangling: HashMap<String, String> = self.store.dangling_names().into_iter().collect();
        for (name, md) in self.entries("names")? {
            let target = std::fs::read_link(self.root().join("names").join(&name)).ok();
            let ok = md.file_type().is_symlink()
                && valid_name(&name)
                && target.is_some_and(|t| valid_id(&t.to_string_lossy()));
            if !ok {
                self.unknown("names", &name);
            } else if let Some(id) = dangling.get(&name) {
                self.problem(Problem::DanglingName {
                    name,
                    id: id.clone(),
                });
            }
        }
        Ok(())
    }

    fn build_cache(&mut self) -> Result<()> {
        for (name, _) in self.entries("build-cache")? {
            if name != "steps" && name != "mounts" {
                self.unknown("build-cache", &name);
            }
        }
        let rel = "build-cache/steps";
        for (name, _) in self.entries(rel)? {
            if self.temp(rel, &name) {
                continue;
            }
            if !name.ends_with(".json") || name.starts_with('.') {
                self.unknown(rel, &name);
                continue;
            }
            let path = Path::new(rel).join(&name);
            let step = std::fs::read(self.root().join(&path))
                .ok()
                .and_then(|b| serde_json::from_slice::<CacheStep>(&b).ok());
            let Some(step) = step else {
                self.problem(Problem::DamagedRecord { path });
                continue;
            };
            for l in &step.layers {
                let missing = if !self.layers.contains_key(&l.diff_id) {
                    format!("its layer layers/{}", l.diff_id.hex())
                } else if !self.blobs.contains(&l.blob) {
                    format!("its layer blob blobs/sha256/{}", l.blob.hex())
                } else {
                    continue;
                };
                self.problem(Problem::BrokenCacheStep {
                    path: path.clone(),
                    missing,
                });
            }
        }
        Ok(())
    }

    /// Content nothing uses: what garbage collection deletes, computed from the same roots.
    fn unused(&mut self) -> Result<()> {
        if self.unreadable {
            return Ok(());
        }
        let keep = self.store.referenced()?;
        let mut layers: Vec<&Digest> = self.layers.keys().collect();
        layers.sort();
        let unused: Vec<Problem> = layers
            .into_iter()
            .filter(|d| !keep.layers.contains(*d))
            .map(|d| Problem::UnusedLayer { diff_id: d.clone() })
            .collect();
        self.out.problems.extend(unused);
        let mut blobs: Vec<&Digest> = self.blobs.iter().collect();
        blobs.sort();
        let unused: Vec<Problem> = blobs
            .into_iter()
            .filter(|d| !keep.blobs.contains(*d))
            .map(|d| Problem::UnusedBlob { digest: d.clone() })
            .collect();
        self.out.problems.extend(unused);
        Ok(())
    }
}

/// The sha256 of a file, streamed.
fn hash_file(path: &Path) -> Result<Digest> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(io_err(path))?;
    let mut h = Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ContainerRecord, ContainerState, LayerRef, RunSpec};
    use chrono::Utc;

    fn store() -> (tempfile::TempDir, Store) {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        (t, s)
    }

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

    /// An image whose manifest and config name its layers, as a pull stores them.
    fn image(s: &Store, tag: &str, layers: Vec<LayerRef>) -> ImageRecord {
        let config = serde_json::to_vec(&serde_json::json!({
            "tag": tag,
            "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>()},
        }))
        .unwrap();
        let config_digest = Digest::of(&config);
        s.put_blob(&config_digest, &config).unwrap();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "config": {"digest": config_digest.to_string()},
            "layers": layers.iter().map(|l| serde_json::json!({"digest": l.blob.to_string()})).collect::<Vec<_>>(),
        }))
        .unwrap();
        let manifest_digest = Digest::of(&manifest);
        s.put_blob(&manifest_digest, &manifest).unwrap();
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
        s.find_image(tag).unwrap()
    }

    fn container(s: &Store, image: &ImageRecord, name: &str) -> ContainerRecord {
        s.create_container(
            ContainerRecord {
                id: String::new(),
                name: String::new(),
                image_id: image.id.clone(),
                image: "app".into(),
                created: Utc::now(),
                driver: "vfs".into(),
                spec: RunSpec::default(),
                auto_remove: false,
                layers: vec![],
            },
            Some(name),
        )
        .unwrap()
    }

    /// A store with one image of two layers and one container of it.
    fn populated() -> (tempfile::TempDir, Store, ImageRecord, ContainerRecord) {
        let (t, s) = store();
        let a = layer(&s, b"base");
        let b = layer(&s, b"top");
        let img = image(&s, "app:1", vec![a, b]);
        let c = container(&s, &img, "web");
        (t, s, img, c)
    }

    fn lock(s: &Store) -> Lock {
        s.lock_content_exclusive().unwrap()
    }

    fn check(s: &Store) -> Vec<Problem> {
        s.check(&lock(s), CheckOptions::default()).unwrap().problems
    }

    fn full(s: &Store) -> Vec<Problem> {
        s.check(&lock(s), CheckOptions { full: true })
            .unwrap()
            .problems
    }

    /// Repair, expecting everything fixed; returns what was.
    fn repair(s: &Store) -> Vec<Problem> {
        let r = s.repair(&lock(s), CheckOptions { full: true }).unwrap();
        assert_eq!(r.remaining.problems, vec![], "left after repair");
        r.fixed
    }

    #[test]
    fn a_store_den_made_is_clean() {
        let (_t, s, _, _) = populated();
        let l = lock(&s);
        let c = s.check(&l, CheckOptions { full: true }).unwrap();
        assert_eq!(c.problems, vec![]);
        assert_eq!((c.images, c.layers, c.blobs, c.containers), (1, 2, 4, 1));
        // Staging in use and an atomic write in progress are not problems.
        let _held = s.staging_dir("pull").unwrap();
        std::fs::write(
            s.root()
                .join(format!(".images.json.tmp-{}-abcd", std::process::id())),
            b"",
        )
        .unwrap();
        assert_eq!(
            s.check(&l, CheckOptions::default()).unwrap().problems,
            vec![]
        );
    }

    #[test]
    fn stale_staging_and_temporary_files_are_leftovers() {
        let (t, s, _, c) = populated();
        std::fs::create_dir(t.path().join("tmp/layer-999999999-abcd")).unwrap();
        std::fs::write(t.path().join("tmp/blob-999999999-ef01"), b"x").unwrap();
        std::fs::write(t.path().join(".images.json.tmp-999999999-abcd"), b"{").unwrap();
        let in_container = format!("containers/{}/.state.json.tmp-999999999-abcd", c.id);
        std::fs::write(t.path().join(&in_container), b"{").unwrap();
        let got = check(&s);
        assert_eq!(
            got,
            vec![
                Problem::StaleTemp {
                    path: ".images.json.tmp-999999999-abcd".into()
                },
                Problem::StaleStaging {
                    path: "tmp/blob-999999999-ef01".into()
                },
                Problem::StaleStaging {
                    path: "tmp/layer-999999999-abcd".into()
                },
                Problem::StaleTemp {
                    path: in_container.into()
                },
            ]
        );
        assert!(got.iter().all(Problem::leftover));
        assert_eq!(
            got[0].to_string(),
            "stale temporary file: .images.json.tmp-999999999-abcd (its writer is gone)"
        );
        assert_eq!(repair(&s).len(), 4);
        assert_eq!(std::fs::read_dir(t.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn unused_content_is_reported_not_silently_collected() {
        let (_t, s, img, _) = populated();
        let loose = layer(&s, b"loose");
        let got = check(&s);
        assert_eq!(
            got,
            vec![
                Problem::UnusedLayer {
                    diff_id: loose.diff_id.clone()
                },
                Problem::UnusedBlob {
                    digest: loose.blob.clone()
                },
            ]
        );
        assert!(got[0].to_string().starts_with("unused layer: layers/"));
        assert!(s.has_layer(&loose.diff_id), "a check removes nothing");
        assert_eq!(repair(&s), got);
        assert!(!s.has_layer(&loose.diff_id) && !s.has_blob(&loose.blob));
        assert!(s.has_layer(&img.layers[0].diff_id));
    }

    #[test]
    fn partial_layers_are_damage_and_go() {
        let (t, s, _, _) = populated();
        // No layer.json.
        let a = "a".repeat(64);
        std::fs::create_dir_all(t.path().join("layers").join(&a).join("diff")).unwrap();
        // A layer.json that names another layer.
        let b = "b".repeat(64);
        let forged = layer(&s, b"forged");
        std::fs::rename(
            s.layer_dir(&forged.diff_id),
            t.path().join("layers").join(&b),
        )
        .unwrap();
        // A record without its files.
        let c = layer(&s, b"nodiff");
        std::fs::remove_dir_all(s.layer_diff(&c.diff_id)).unwrap();
        // A record that does not parse.
        let d = layer(&s, b"garbled");
        std::fs::write(s.layer_dir(&d.diff_id).join("layer.json"), b"{").unwrap();
        let got: Vec<Problem> = check(&s)
            .into_iter()
            .filter(|p| matches!(p, Problem::PartialLayer { .. }))
            .collect();
        let mut want = vec![
            Problem::PartialLayer {
                dir: a,
                why: "it has no layer.json",
            },
            Problem::PartialLayer {
                dir: b,
                why: "its layer.json names another layer",
            },
            Problem::PartialLayer {
                dir: c.diff_id.hex().into(),
                why: "it has no diff directory",
            },
            Problem::PartialLayer {
                dir: d.diff_id.hex().into(),
                why: "its layer.json does not parse",
            },
        ];
        want.sort_by_key(|p| p.to_string());
        let mut got = got;
        got.sort_by_key(|p| p.to_string());
        assert_eq!(got, want);
        assert!(!got[0].leftover());
        repair(&s);
        assert_eq!(
            s.layer_ids().unwrap().len(),
            2,
            "only the image's layers stay"
        );
    }

    #[test]
    fn links_missing_or_dangling() {
        let (_t, s, img, _) = populated();
        let rec = s.layer_record(&img.layers[0].diff_id).unwrap();
        std::fs::remove_file(s.links_dir().join(&rec.link)).unwrap();
        std::os::unix::fs::symlink(
            format!("../{}/diff", "e".repeat(64)),
            s.links_dir().join("e".repeat(16)),
        )
        .unwrap();
        assert_eq!(
            check(&s),
            vec![
                Problem::DanglingLink {
                    name: "e".repeat(16)
                },
                Problem::MissingLink {
                    diff_id: img.layers[0].diff_id.clone(),
                    link: rec.link.clone()
                },
            ]
        );
        repair(&s);
        assert!(s.links_dir().join(&rec.link).join("f").exists());
        assert!(!s.links_dir().join("e".repeat(16)).exists());
    }

    #[test]
    fn images_that_point_at_nothing_are_removed_with_their_content() {
        let (_t, s, img, c) = populated();
        std::fs::remove_file(s.blob_path(&img.layers[1].blob)).unwrap();
        let got = check(&s);
        assert_eq!(
            got,
            vec![Problem::BrokenImage {
                image: "docker.io/library/app:1".into(),
                id: img.id.clone(),
                missing: format!("its layer blob blobs/sha256/{}", img.layers[1].blob.hex()),
            }]
        );
        assert!(
            got[0]
                .to_string()
                .starts_with("image with missing content: docker.io/library/app:1 (")
        );
        let fixed = repair(&s);
        // The image goes; its container, which needs it, goes too; then the content.
        assert!(fixed.contains(&got[0]));
        assert!(s.images().unwrap().is_empty());
        assert!(s.container(&c.id).is_err());
        assert!(s.layer_ids().unwrap().is_empty());
    }

    #[test]
    fn containers_whose_image_or_layers_are_gone() {
        let (_t, s, img, c) = populated();
        s.update_images(|i| {
            i.clear();
            Ok(())
        })
        .unwrap();
        let got = check(&s);
        assert_eq!(
            got[0],
            Problem::BrokenContainer {
                id: c.id.clone(),
                name: "web".into(),
                missing: format!("its image {}", img.id.short()),
                running: false
            }
        );
        // Its image's content is unused meanwhile.
        assert!(got[1..].iter().all(Problem::leftover));
        repair(&s);
        assert!(s.container_ids().unwrap().is_empty());

        // A container with its own layer list (a build step's, or after `rmi -f`).
        let (_t, s, img, _) = populated();
        let mut r = container(&s, &img, "own");
        r.layers = vec![Digest::of(b"gone")];
        s.write_json(&s.container_dir(&r.id).join("container.json"), &r)
            .unwrap();
        assert_eq!(
            check(&s),
            vec![Problem::BrokenContainer {
                id: r.id.clone(),
                name: "own".into(),
                missing: format!("its layer layers/{}", Digest::of(b"gone").hex()),
                running: false
            }]
        );
    }

    #[test]
    fn names_half_created_containers_and_killed_builds() {
        let (t, s, img, c) = populated();
        // A killed rm: the container moved aside, its name left.
        std::fs::rename(
            s.container_dir(&c.id),
            t.path().join("tmp/rm-999999999-abcd"),
        )
        .unwrap();
        // A killed create: a directory without its record.
        let half = "d".repeat(64);
        std::fs::create_dir(s.container_dir(&half)).unwrap();
        // A killed build: its step container, not running.
        let mut step = container(&s, &img, "step");
        step.spec
            .labels
            .insert(BUILD_STEP_LABEL.into(), "999999999".into());
        s.write_json(&s.container_dir(&step.id).join("container.json"), &step)
            .unwrap();
        let got = check(&s);
        assert!(got.contains(&Problem::DanglingName {
            name: "web".into(),
            id: c.id.clone()
        }));
        assert!(got.contains(&Problem::PartialContainer { id: half.clone() }));
        assert!(got.contains(&Problem::BuildLeftover {
            id: step.id.clone(),
            name: "step".into()
        }));
        assert!(got.contains(&Problem::StaleStaging {
            path: "tmp/rm-999999999-abcd".into()
        }));
        assert!(got.iter().all(Problem::leftover), "{got:?}");
        repair(&s);
        assert!(s.container_ids().unwrap().is_empty());
        assert_eq!(
            std::fs::read_dir(t.path().join("names")).unwrap().count(),
            0
        );

        // A running step container (its den-run outlived the build) stays.
        let mut step = container(&s, &img, "step2");
        step.spec.labels.insert(BUILD_STEP_LABEL.into(), "1".into());
        s.write_json(&s.container_dir(&step.id).join("container.json"), &step)
            .unwrap();
        let me = std::process::id() as i32;
        s.set_container_state(
            &step.id,
            &ContainerState {
                status: Status::Running,
                monitor: Some((me, crate::store::process_start_time(me).unwrap())),
                ..ContainerState::created()
            },
        )
        .unwrap();
        assert_eq!(check(&s), vec![]);
    }

    #[test]
    fn files_den_did_not_write() {
        let (t, s, _, _) = populated();
        for p in [
            "junk",
            "blobs/md5",
            "blobs/sha256/nothex",
            "layers/junk",
            "containers/junk",
            "names/.hidden",
            "locks/other.lock",
            "build-cache/steps/notes.txt",
        ] {
            let p = t.path().join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x").unwrap();
        }
        std::os::unix::fs::symlink("/etc", t.path().join("layers/l/escape")).unwrap();
        let got = check(&s);
        assert_eq!(got.len(), 9, "{got:?}");
        assert!(got.iter().all(|p| matches!(p, Problem::Unknown { .. })));
        assert!(got.contains(&Problem::Unknown {
            path: "layers/l/escape".into()
        }));
        assert_eq!(got[0].to_string(), "not den's: junk (den did not write it)");
        repair(&s);
        assert!(!t.path().join("junk").exists());
        assert!(std::path::Path::new("/etc").exists());
    }

    #[test]
    fn full_rehashes_blobs_and_reads_manifests() {
        let (_t, s, img, _) = populated();
        std::fs::write(s.blob_path(&img.layers[0].blob), b"tampered").unwrap();
        assert_eq!(check(&s), vec![], "only --full reads the blobs");
        let got = full(&s);
        assert_eq!(
            got,
            vec![Problem::CorruptBlob {
                digest: img.layers[0].blob.clone(),
                actual: Digest::of(b"tampered")
            }]
        );
        repair(&s);
        assert!(
            s.images().unwrap().is_empty(),
            "the image lost a blob: it goes"
        );

        // A record that names layers its manifest and config do not.
        let (_t, s, img, _) = populated();
        s.update_images(|images| {
            images[0].layers.swap(0, 1);
            Ok(())
        })
        .unwrap();
        assert_eq!(
            full(&s),
            vec![Problem::ImageMismatch {
                image: "docker.io/library/app:1".into(),
                id: img.id.clone(),
                what: "manifest"
            }]
        );
    }

    #[test]
    fn damaged_records() {
        let (t, s, _, c) = populated();
        std::fs::write(s.container_dir(&c.id).join("container.json"), b"{").unwrap();
        // With a record unread, nothing is called unused: it may be what the record names.
        let got = check(&s);
        assert_eq!(
            got,
            vec![Problem::DamagedRecord {
                path: format!("containers/{}/container.json", c.id).into()
            }]
        );
        repair(&s);
        assert!(s.container_ids().unwrap().is_empty());

        std::fs::write(t.path().join("images.json"), b"{").unwrap();
        let r = s.repair(&lock(&s), CheckOptions::default()).unwrap();
        assert_eq!(
            r.remaining.problems,
            vec![Problem::DamagedRecord {
                path: "images.json".into()
            }],
            "den does not guess image records"
        );
    }

    #[test]
    fn build_cache_steps_that_point_at_nothing() {
        let (t, s, img, _) = populated();
        let steps = t.path().join("build-cache/steps");
        std::fs::create_dir_all(&steps).unwrap();
        let mut gone = img.layers[0].clone();
        gone.diff_id = Digest::of(b"gone");
        std::fs::write(
            steps.join("k.json"),
            serde_json::to_vec(&serde_json::json!({"layers": [gone], "config": {}})).unwrap(),
        )
        .unwrap();
        std::fs::write(steps.join("bad.json"), b"{").unwrap();
        assert_eq!(
            check(&s),
            vec![
                Problem::DamagedRecord {
                    path: "build-cache/steps/bad.json".into()
                },
                Problem::BrokenCacheStep {
                    path: "build-cache/steps/k.json".into(),
                    missing: format!("its layer layers/{}", Digest::of(b"gone").hex())
                },
            ]
        );
        repair(&s);
        assert_eq!(std::fs::read_dir(&steps).unwrap().count(), 0);
    }
}
