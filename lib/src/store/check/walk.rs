//! One pass over the store: each directory of the layout in turn, then the records against the
//! content they name, then what nothing uses. It only reads; [`super::Store::repair`] acts on
//! what it finds.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::{CheckOptions, Checked, Problem, TOP_LEVEL};
use crate::store::{
    Digest, Hasher, ImageRecord, Result, Status, Store, StoreError,
    containers::{BUILD_STEP_LABEL, valid_id, valid_name},
    gc::CacheStep,
    io_err, stale_staging, stale_temp, temp_file,
};

/// One pass over the store.
pub(super) struct Walk<'a> {
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
    pub(super) fn new(store: &'a Store, opts: CheckOptions) -> Walk<'a> {
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

    pub(super) fn run(mut self) -> Result<Checked> {
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
            // A pull's per-blob locks (Store::lock_blobs) stay until garbage collection.
            let blob_lock = name
                .strip_prefix("blob-")
                .and_then(|n| n.strip_suffix(".lock"))
                .is_some_and(|hex| crate::digest::Digest::from_hex(hex).is_ok());
            if name != "meta.lock" && name != "content.lock" && !blob_lock {
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
                let actual = hash_file(&self.store.own_blob_path(&digest))?;
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

    /// Whether a blob is in the store, or in an additional store (content an image built on
    /// a shared one uses in place: not missing).
    fn has_blob(&self, d: &Digest) -> bool {
        self.blobs.contains(d) || (!self.store.own_blob_path(d).exists() && self.store.has_blob(d))
    }

    /// Whether a layer is in the store (and sound), or in an additional store.
    fn has_layer(&self, d: &Digest) -> bool {
        self.layers.contains_key(d)
            || (!self.store.layer_dir(d).exists() && self.store.has_layer(d))
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
                if !self.has_blob(d) {
                    missing.push(format!("its {what} blobs/sha256/{}", d.hex()));
                }
            }
            for l in &i.layers {
                if !self.has_layer(&l.diff_id) {
                    missing.push(format!("its layer layers/{}", l.diff_id.hex()));
                }
                if !self.has_blob(&l.blob) {
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
                    // Its image is this store's, or an additional store's (run in place).
                    Some(images) => match images
                        .iter()
                        .find(|i| i.id == record.image_id)
                        .cloned()
                        .or_else(|| self.store.find_image(record.image_id.as_str()).ok())
                    {
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
                if !self.has_layer(&d) {
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
                let missing = if !self.has_layer(&l.diff_id) {
                    format!("its layer layers/{}", l.diff_id.hex())
                } else if !self.has_blob(&l.blob) {
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
