//! `--cache-to` and `--cache-from`: the step cache ([`super::cache`]) exported to, and imported
//! from, a local OCI image layout directory (buildx's `type=local,dest=DIR` / `src=DIR`) or a
//! registry repository (podman's `--cache-to REGISTRY/REPO`, buildx's `type=registry,ref=REF`).
//!
//! **The format: one OCI image manifest.** Its config blob (media type [`CONFIG_TYPE`]) is a
//! JSON document listing the build's steps, each with its cache key, its layers (diff id,
//! blob, media type, size) and the image configuration after it, as the local cache keeps
//! them; its `layers` are every layer blob those steps name. Why a manifest and not an index
//! of per-step manifests (BuildKit's form): a registry checks that every blob a manifest names
//! is present before it accepts the manifest, and keeps them as long as it is tagged, so one
//! manifest carries the whole cache with nothing dangling; it is one request to read; and an
//! OCI layout holds it as it holds any image. The keys are den's own (SHA-256 of a step's
//! inputs), so only den reads this cache, as only BuildKit reads BuildKit's.
//!
//! **What comes from outside is untrusted.** The index, manifest and config are read with caps
//! ([`MAX_DOC`], [`MAX_CONFIG`]), each checked against its digest; the steps are capped
//! ([`MAX_STEPS`], [`MAX_LAYERS`] each), every digest in them parsed, every layer's blob must
//! be one the manifest names and of a media type den unpacks. A layer is brought in only when
//! a step needs it, through the store's intake ([`crate::store::Incoming`]): its blob checked
//! against its digest as it is copied, then unpacked and checked against its diff id; a
//! configuration is checked like any image's when the image is written. A cache that is
//! missing or unreachable is a warning (as buildx); one that is malformed, or a blob that does
//! not match, is ignored with a warning and the step runs.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{BuildError, Result, cache};
use crate::digest::Digest;
use crate::image::manifest::{self, OCI_INDEX, OCI_MANIFEST};
use crate::store::{LayerRef, Store, StoreError};

/// The config blob's media type: den's step list.
pub const CONFIG_TYPE: &str = "application/vnd.den.build.cache.steps.v1+json";
/// The annotation (and layout ref name) that marks a den build cache.
pub const REF_NAME: &str = "den-build-cache";
/// Caps on what a cache from outside may be: the index and manifest, the step list, the steps,
/// the layers of one step, one layer blob.
pub const MAX_DOC: u64 = 4 << 20;
pub const MAX_CONFIG: u64 = 64 << 20;
pub const MAX_STEPS: usize = 10_000;
pub const MAX_LAYERS: usize = 500;
pub const MAX_BLOB: u64 = 64 << 30;

/// Where a cache goes or comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheRef {
    /// An OCI image layout directory.
    Local(PathBuf),
    /// A registry repository (a reference; its tag names the cache, `latest` by default).
    Registry(String),
}

impl CacheRef {
    /// `--cache-to` (`from` false: `dest=`) or `--cache-from` (`from` true: `src=`): buildx's
    /// `type=local,dest|src=DIR` and `type=registry,ref=REF`, or podman's bare `REGISTRY/REPO`.
    pub fn parse(spec: &str, from: bool) -> Result<CacheRef> {
        let flag = if from { "--cache-from" } else { "--cache-to" };
        let bad = |reason: String| BuildError::BadCache {
            flag,
            spec: spec.to_string(),
            reason,
        };
        if spec.is_empty() {
            return Err(bad("it is empty".into()));
        }
        if !spec.contains('=') {
            crate::image::Reference::parse(spec)?;
            return Ok(CacheRef::Registry(spec.to_string()));
        }
        let path_key = if from { "src" } else { "dest" };
        let (mut kind, mut path, mut reference) = (None, None, None);
        for part in spec.split(',') {
            match part.split_once('=') {
                Some(("type", v)) => kind = Some(v),
                Some(("ref", v)) if !v.is_empty() => reference = Some(v),
                Some((k, v)) if k == path_key && !v.is_empty() => path = Some(v),
                // What buildx's exporters take that den's one way already is: every step is
                // exported (mode=max), with OCI media types, in an image manifest.
                Some(("mode" | "oci-mediatypes" | "image-manifest" | "ignore-error", _)) => {}
                Some(("src" | "dest", _)) => {
                    return Err(bad(format!("{flag} type=local needs {path_key}=DIR")));
                }
                Some((k, _)) => return Err(bad(format!("den's caches do not take {k}="))),
                None => return Err(bad(format!("{part:?} is not KEY=VALUE"))),
            }
        }
        match (kind, path, reference) {
            (Some("local"), Some(p), _) => Ok(CacheRef::Local(PathBuf::from(p))),
            (Some("local"), None, _) => Err(bad(format!("type=local needs {path_key}=DIR"))),
            (Some("registry"), _, Some(r)) => {
                crate::image::Reference::parse(r)?;
                Ok(CacheRef::Registry(r.to_string()))
            }
            (Some("registry"), _, None) => Err(bad("type=registry needs ref=REF".into())),
            (Some(other), _, _) => Err(bad(format!("den has no cache type {other:?}"))),
            (None, _, _) => Err(bad("it names no type=".into())),
        }
    }

    /// Relative paths made absolute while the working directory is the user's.
    pub fn absolute(self) -> CacheRef {
        match self {
            CacheRef::Local(p) => CacheRef::Local(std::path::absolute(&p).unwrap_or(p)),
            r => r,
        }
    }
}

/// One step as the cache document lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StepDoc {
    key: Digest,
    layers: Vec<LayerRef>,
    config: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StepsDoc {
    steps: Vec<StepDoc>,
}

/// Where a cache's blobs are read from: an OCI layout here, a registry through the [`Host`]
/// (`ops`, which has the credentials and the registry settings).
///
/// [`Host`]: super::Host
pub trait Blobs {
    /// The cache manifest's bytes, and its digest where the source names one (checked here).
    fn manifest(&self) -> std::result::Result<(Vec<u8>, Option<Digest>), String>;
    /// The blob `digest` into `incoming`, at most `cap` bytes, checked against its digest; where
    /// it is staged.
    fn fetch(
        &self,
        incoming: &crate::store::Incoming,
        digest: &Digest,
        cap: u64,
    ) -> std::result::Result<PathBuf, String>;
}

/// An OCI image layout directory.
pub struct Layout(pub PathBuf);

impl Layout {
    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.0.join("blobs/sha256").join(digest.hex())
    }
}

fn read_capped(path: &Path, cap: u64) -> std::result::Result<Vec<u8>, String> {
    let f =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    f.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > cap {
        return Err(format!("{} is larger than {cap} bytes", path.display()));
    }
    Ok(bytes)
}

impl Blobs for Layout {
    fn fetch(
        &self,
        incoming: &crate::store::Incoming,
        digest: &Digest,
        cap: u64,
    ) -> std::result::Result<PathBuf, String> {
        let path = self.blob_path(digest);
        let shown = |e: &dyn std::fmt::Display| format!("cannot read {}: {e}", path.display());
        let mut f = std::fs::File::open(&path).map_err(|e| shown(&e))?;
        let mut w = incoming.blob_writer().map_err(|e| shown(&e))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf).map_err(|e| shown(&e))?;
            if n == 0 {
                break;
            }
            if w.len() + n as u64 > cap {
                return Err(format!("{} is larger than {cap} bytes", path.display()));
            }
            w.write(&buf[..n]).map_err(|e| shown(&e))?;
        }
        incoming
            .commit_blob(w, digest)
            .map_err(|e| format!("blob {digest}: {e}"))
    }

    fn manifest(&self) -> std::result::Result<(Vec<u8>, Option<Digest>), String> {
        let index = read_capped(&self.0.join("index.json"), MAX_DOC)?;
        let index: Value =
            serde_json::from_slice(&index).map_err(|e| format!("index.json is not valid: {e}"))?;
        let entries = index["manifests"]
            .as_array()
            .ok_or("index.json lists no manifests")?;
        let entry = entries
            .iter()
            .find(|m| m["annotations"][crate::archive::format::REF_NAME] == REF_NAME)
            .ok_or("index.json names no den build cache")?;
        let digest = entry["digest"]
            .as_str()
            .and_then(|d| Digest::parse(d).ok())
            .ok_or("index.json names a bad digest")?;
        let bytes = read_capped(&self.blob_path(&digest), MAX_DOC)?;
        Ok((bytes, Some(digest)))
    }
}

/// The steps of the cache whose manifest is `manifest`, its step list read (and checked
/// against its digest) by `read_config`: every cap and cross-check of the module doc.
fn check(
    manifest: &[u8],
    read_config: &dyn Fn(&Digest) -> std::result::Result<Vec<u8>, String>,
) -> std::result::Result<HashMap<String, cache::Entry>, String> {
    let m: Value = serde_json::from_slice(manifest)
        .map_err(|e| format!("the cache manifest is not valid: {e}"))?;
    if m["config"]["mediaType"] != CONFIG_TYPE {
        return Err("the manifest is not a den build cache".into());
    }
    let config = m["config"]["digest"]
        .as_str()
        .and_then(|d| Digest::parse(d).ok())
        .ok_or("the cache manifest names a bad config digest")?;
    let listed: std::collections::HashSet<Digest> = m["layers"]
        .as_array()
        .map(|ls| {
            ls.iter()
                .filter_map(|l| l["digest"].as_str().and_then(|d| Digest::parse(d).ok()))
                .collect()
        })
        .unwrap_or_default();
    let doc: StepsDoc = serde_json::from_slice(&read_config(&config)?)
        .map_err(|e| format!("the cache's step list is not valid: {e}"))?;
    if doc.steps.len() > MAX_STEPS {
        return Err(format!("the cache lists more than {MAX_STEPS} steps"));
    }
    let mut steps = HashMap::new();
    for s in doc.steps {
        if s.layers.len() > MAX_LAYERS || !s.config.is_object() {
            return Err(format!("step {} of the cache is not valid", s.key));
        }
        if let Some(l) = s
            .layers
            .iter()
            .find(|l| !listed.contains(&l.blob) || !manifest::layer_supported(&l.media_type))
        {
            return Err(format!(
                "the cache's layer {} is not one it carries",
                l.blob
            ));
        }
        let entry = cache::Entry {
            layers: s.layers,
            config: s.config,
        };
        steps.insert(s.key.to_string(), entry);
    }
    Ok(steps)
}

/// A cache read from outside: its steps by key, and where their blobs are.
pub struct Imported {
    blobs: Box<dyn Blobs>,
    steps: HashMap<String, cache::Entry>,
}

/// Check that `bytes` are the blob `digest`.
fn verified(digest: &Digest, bytes: Vec<u8>) -> std::result::Result<Vec<u8>, String> {
    let actual = Digest::of(&bytes);
    if &actual != digest {
        return Err(format!(
            "blob {digest} does not match its digest (got {actual})"
        ));
    }
    Ok(bytes)
}

impl Imported {
    /// Read and check the cache at `blobs`; a message for the user's warning when it cannot be.
    pub fn open(store: &Store, blobs: Box<dyn Blobs>) -> std::result::Result<Imported, String> {
        let (bytes, digest) = blobs.manifest()?;
        let bytes = match digest {
            Some(d) => verified(&d, bytes)?,
            None => bytes,
        };
        let steps = check(&bytes, &|config| {
            // Staged only to be read (its digest checked on the way): dropping the intake
            // removes it.
            let incoming = store.incoming().map_err(|e| e.to_string())?;
            let path = blobs.fetch(&incoming, config, MAX_CONFIG)?;
            std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
        })?;
        Ok(Imported { blobs, steps })
    }

    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The step `key`, its layers brought into the store and its entry put in the local cache;
    /// None when the cache does not have it, an error message when it has it but it is bad.
    pub fn take(
        &self,
        store: &Store,
        key: &str,
        owners: crate::unpack::Owners,
    ) -> Option<std::result::Result<cache::Entry, String>> {
        let entry = self.steps.get(key)?;
        Some(self.bring_in(store, key, entry, owners))
    }

    fn bring_in(
        &self,
        store: &Store,
        key: &str,
        entry: &cache::Entry,
        owners: crate::unpack::Owners,
    ) -> std::result::Result<cache::Entry, String> {
        let err = |e: &dyn std::fmt::Display| e.to_string();
        let incoming = store.incoming().map_err(|e| err(&e))?;
        for l in &entry.layers {
            if store.has_layer(&l.diff_id) && store.has_blob(&l.blob) {
                continue;
            }
            let path = if incoming.has_blob(&l.blob) {
                incoming.blob_path(&l.blob)
            } else {
                self.blobs.fetch(&incoming, &l.blob, MAX_BLOB)?
            };
            if !incoming.has_layer(&l.diff_id) {
                let opts = crate::unpack::Options { owners };
                incoming
                    .unpack_layer::<BuildError>(&path, &l.diff_id, opts)
                    .map_err(|e| err(&e))?;
            }
        }
        incoming.finish(|_| Ok(())).map_err(|e| err(&e))?;
        cache::put(store, key, entry).map_err(|e| err(&e))?;
        Ok(entry.clone())
    }
}

/// A cache to export: its step list (the config blob), its manifest, the layers it carries.
pub struct Export {
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
    pub layers: Vec<LayerRef>,
}

/// The cache of the steps `keys` of the local cache, ready to write or push.
pub fn export(store: &Store, keys: &[String]) -> Result<Export> {
    let (config, manifest, layers) = documents(store, keys)?;
    Ok(Export {
        config,
        manifest,
        layers,
    })
}

/// The cache document and the manifest for the steps `keys` of the local cache: (config bytes,
/// manifest bytes, the layers' blobs).
fn documents(store: &Store, keys: &[String]) -> Result<(Vec<u8>, Vec<u8>, Vec<LayerRef>)> {
    let mut steps = Vec::new();
    let mut layers: Vec<LayerRef> = Vec::new();
    for key in keys {
        let (Some(entry), Ok(k)) = (cache::get(store, key), Digest::parse(key)) else {
            continue;
        };
        if steps.iter().any(|s: &StepDoc| s.key == k) {
            continue;
        }
        for l in &entry.layers {
            if !layers.iter().any(|x| x.blob == l.blob) {
                layers.push(l.clone());
            }
        }
        steps.push(StepDoc {
            key: k,
            layers: entry.layers,
            config: entry.config,
        });
    }
    let config = serde_json::to_vec(&StepsDoc { steps }).expect("steps serialize");
    let fmt = manifest::Format::Oci;
    let m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": CONFIG_TYPE, "digest": Digest::of(&config), "size": config.len()},
        "layers": layers.iter().map(|l| json!({"mediaType": fmt.layer_type(&l.media_type), "digest": l.blob, "size": l.size})).collect::<Vec<_>>(),
        "annotations": {crate::archive::format::REF_NAME: REF_NAME},
    });
    let manifest = serde_json::to_vec(&m).expect("manifest serializes");
    Ok((config, manifest, layers))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |source| {
        BuildError::Store(StoreError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Write `bytes` as the file `path` unless it is there (blobs are named by their digest).
fn put_file(path: &Path, write: &dyn Fn(&Path) -> std::io::Result<()>) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    let tmp = path.with_extension(format!(
        "den-{}-{}",
        std::process::id(),
        crate::fs::random_hex(4)
    ));
    let res = write(&tmp).and_then(|()| std::fs::rename(&tmp, path));
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map_err(io(path))
}

/// Export the steps `keys` as an OCI layout in `dir` (made if missing; blobs already there
/// are kept, index.json is replaced).
pub fn export_layout(store: &Store, keys: &[String], dir: &Path) -> Result<()> {
    let (config, manifest, layers) = documents(store, keys)?;
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).map_err(io(&blobs))?;
    let layout = dir.join(crate::archive::format::OCI_LAYOUT);
    crate::fs::write_atomic(&layout, crate::archive::format::OCI_LAYOUT_CONTENT)
        .map_err(io(&layout))?;
    for l in &layers {
        let src = store.blob_path(&l.blob);
        put_file(&blobs.join(l.blob.hex()), &|tmp| {
            std::fs::copy(&src, tmp).map(|_| ())
        })?;
    }
    for bytes in [&config, &manifest] {
        let d = Digest::of(bytes);
        put_file(&blobs.join(d.hex()), &|tmp| std::fs::write(tmp, bytes))?;
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{
            "mediaType": OCI_MANIFEST,
            "digest": Digest::of(&manifest),
            "size": manifest.len(),
            "annotations": {crate::archive::format::REF_NAME: REF_NAME},
        }],
    });
    let index_path = dir.join("index.json");
    let bytes = serde_json::to_vec(&index).expect("index serializes");
    crate::fs::write_atomic(&index_path, &bytes).map_err(io(&index_path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_refs_read_as_buildx_and_podman_spell_them() {
        let to = |s: &str| CacheRef::parse(s, false);
        let from = |s: &str| CacheRef::parse(s, true);
        assert_eq!(
            to("type=local,dest=d").unwrap(),
            CacheRef::Local("d".into())
        );
        assert_eq!(
            from("type=local,src=d").unwrap(),
            CacheRef::Local("d".into())
        );
        assert_eq!(
            to("type=registry,ref=r.example/c:1,mode=max").unwrap(),
            CacheRef::Registry("r.example/c:1".into())
        );
        assert_eq!(
            from("localhost:5000/cache").unwrap(),
            CacheRef::Registry("localhost:5000/cache".into())
        );
        let e = |r: Result<CacheRef>| r.unwrap_err().to_string();
        assert!(e(to("type=local,src=d")).contains("needs dest=DIR"));
        assert!(e(from("type=local,dest=d")).contains("needs src=DIR"));
        assert!(e(to("type=gha")).contains("no cache type \"gha\""));
        assert!(e(to("type=registry")).contains("needs ref=REF"));
        assert!(e(to("type=local,dest=d,compression=zstd")).contains("compression="));
        assert!(from("Not A Ref!").is_err());
    }

    fn layer(d: &Digest) -> LayerRef {
        LayerRef {
            diff_id: d.clone(),
            blob: d.clone(),
            media_type: manifest::OCI_LAYER.into(),
            size: 3,
        }
    }

    /// A manifest over `steps` (a JSON step list) carrying `carried`, and its step list.
    fn cache_of(steps: &Value, carried: &[&Digest]) -> (Vec<u8>, Vec<u8>) {
        let config = serde_json::to_vec(steps).unwrap();
        let m = json!({
            "schemaVersion": 2,
            "config": {"mediaType": CONFIG_TYPE, "digest": Digest::of(&config), "size": config.len()},
            "layers": carried.iter().map(|d| json!({"mediaType": manifest::OCI_LAYER, "digest": d, "size": 3})).collect::<Vec<_>>(),
        });
        (serde_json::to_vec(&m).unwrap(), config)
    }

    fn checked(
        m: &[u8],
        config: &[u8],
    ) -> std::result::Result<HashMap<String, cache::Entry>, String> {
        let config = config.to_vec();
        check(m, &move |d| verified(d, config.clone()))
    }

    #[test]
    fn a_cache_from_outside_is_checked_before_any_step_is_taken() {
        let l1 = Digest::of(b"one");
        let key = Digest::of(b"key");
        let step = |layers: Vec<LayerRef>, config: Value| json!({"steps": [{"key": key, "layers": layers, "config": config}]});
        let good = step(vec![layer(&l1)], json!({"config": {}}));
        let (m, c) = cache_of(&good, &[&l1]);
        let steps = checked(&m, &c).unwrap();
        assert_eq!(steps[key.as_str()].layers, vec![layer(&l1)]);

        // A step list that is not the one the manifest names.
        assert!(
            checked(&m, b"{\"steps\":[]}")
                .unwrap_err()
                .contains("does not match")
        );
        // A layer the manifest does not carry.
        let (m2, c2) = cache_of(&good, &[]);
        assert!(
            checked(&m2, &c2)
                .unwrap_err()
                .contains("not one it carries")
        );
        // A layer of a media type den does not unpack.
        let mut odd = layer(&l1);
        odd.media_type = "text/plain".into();
        let (m3, c3) = cache_of(&step(vec![odd], json!({})), &[&l1]);
        assert!(checked(&m3, &c3).is_err());
        // A configuration that is not an object; a bad key; too many layers in a step.
        let (m4, c4) = cache_of(&step(vec![], json!([1])), &[]);
        assert!(checked(&m4, &c4).unwrap_err().contains("not valid"));
        let bad_key = json!({"steps": [{"key": "sha256:zz", "layers": [], "config": {}}]});
        let (m5, c5) = cache_of(&bad_key, &[]);
        assert!(
            checked(&m5, &c5)
                .unwrap_err()
                .contains("step list is not valid")
        );
        let many = vec![layer(&l1); MAX_LAYERS + 1];
        let (m6, c6) = cache_of(&step(many, json!({})), &[&l1]);
        assert!(checked(&m6, &c6).is_err());
        // Not a den cache at all.
        let image = json!({"config": {"mediaType": manifest::OCI_CONFIG, "digest": l1}});
        let m7 = serde_json::to_vec(&image).unwrap();
        assert!(
            checked(&m7, &c)
                .unwrap_err()
                .contains("not a den build cache")
        );
        assert!(checked(b"[", &c).is_err());
    }
}
