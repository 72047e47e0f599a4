//! The files of an archive besides the blobs: docker's `manifest.json` and `repositories`, the
//! OCI layout's `index.json` and `oci-layout`, and the names they carry.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::digest::Digest;
use crate::image::Reference;
use crate::image::manifest::{OCI_CONFIG, OCI_INDEX, OCI_MANIFEST};

pub const MANIFEST_JSON: &str = "manifest.json";
pub const REPOSITORIES: &str = "repositories";
pub const INDEX_JSON: &str = "index.json";
pub const OCI_LAYOUT: &str = "oci-layout";
pub const OCI_LAYOUT_CONTENT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// The OCI annotation for a name; docker 25 puts only the tag in it.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's (and docker 25's) annotation for the full name.
pub const IMAGE_NAME: &str = "io.containerd.image.name";

/// One image of docker's `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerManifest {
    /// Path of the config file in the archive.
    #[serde(rename = "Config")]
    pub config: String,
    /// Names; docker writes `null` for an image saved by id.
    #[serde(rename = "RepoTags", default)]
    pub repo_tags: Option<Vec<String>>,
    /// Paths of the layer tars, bottom first.
    #[serde(rename = "Layers", default)]
    pub layers: Vec<String>,
}

/// The archive path of a blob: `blobs/sha256/<hex>`.
pub fn blob_path(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

/// The digest an archive path names, if its last component is one: `blobs/sha256/<hex>`,
/// `<hex>.json` (docker's older config files), `<hex>.tar` (podman's layers).
pub fn digest_in_path(path: &str) -> Option<Digest> {
    let last = path.rsplit('/').next()?;
    let hex = last
        .strip_suffix(".json")
        .or_else(|| last.strip_suffix(".tar"))
        .unwrap_or(last);
    Digest::from_hex(hex).ok()
}

/// An archive entry's name in one canonical form (no `./`, no trailing `/`), or `None` for a
/// name that climbs out of the archive's root (it can never be what an index refers to).
pub fn clean_name(raw: &[u8]) -> Option<String> {
    let parts = crate::unpack::clean(raw)?;
    let parts: Vec<String> = parts
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    Some(parts.join("/"))
}

/// The OCI manifest den makes for a docker-archive image: the config and the layers as they are
/// in the archive. Save and load make it the same way, so the same image gets the same digest.
pub fn oci_manifest(
    config: &Digest,
    config_size: u64,
    layers: &[(String, Digest, u64)],
) -> Vec<u8> {
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config, "size": config_size},
        "layers": layers
            .iter()
            .map(|(media_type, digest, size)| json!({"mediaType": media_type, "digest": digest, "size": size}))
            .collect::<Vec<_>>(),
    });
    serde_json::to_vec(&manifest).expect("manifest serializes")
}

/// One entry of `index.json`.
#[derive(Debug, Clone)]
pub struct IndexEntry {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    pub platform: Option<(String, String)>,
    pub name: Option<Reference>,
}

/// `index.json` for `entries`: docker 25's annotations on the named ones.
pub fn index_json(entries: &[IndexEntry]) -> Vec<u8> {
    let manifests: Vec<serde_json::Value> = entries
        .iter()
        .map(|e| {
            let mut d = json!({"mediaType": e.media_type, "digest": e.digest, "size": e.size});
            if let Some((os, arch)) = &e.platform {
                d["platform"] = json!({"os": os, "architecture": arch});
            }
            if let Some(n) = &e.name {
                d["annotations"] = json!({
                    IMAGE_NAME: n.canonical(),
                    REF_NAME: n.tag().unwrap_or("latest"),
                });
            }
            d
        })
        .collect();
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
    serde_json::to_vec(&index).expect("index serializes")
}

/// The name an `index.json` entry gives its image: containerd's full name, else the OCI
/// ref name when it is a full name (podman writes `localhost/app:1` there). A bare tag
/// (docker 25's `latest`) names nothing by itself.
pub fn name_from_annotations(
    annotations: Option<&std::collections::HashMap<String, String>>,
) -> Option<String> {
    let a = annotations?;
    if let Some(n) = a.get(IMAGE_NAME).filter(|n| !n.is_empty()) {
        return Some(n.clone());
    }
    a.get(REF_NAME)
        .filter(|n| n.contains('/') || n.contains(':'))
        .cloned()
}

/// docker's `repositories` file: `{repository: {tag: top layer}}`.
pub fn repositories(images: &[(Vec<Reference>, String)]) -> Vec<u8> {
    let mut repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (names, top) in images {
        for n in names {
            if let Some(tag) = n.tag() {
                repos
                    .entry(n.repo_name())
                    .or_default()
                    .insert(tag.to_string(), top.clone());
            }
        }
    }
    serde_json::to_vec(&repos).expect("repositories serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_the_digests_they_name() {
        let hex = "a".repeat(64);
        let d = Digest::from_hex(&hex).unwrap();
        assert_eq!(blob_path(&d), format!("blobs/sha256/{hex}"));
        let want = Some(d);
        assert_eq!(digest_in_path(&format!("blobs/sha256/{hex}")), want);
        assert_eq!(digest_in_path(&format!("{hex}.json")), want);
        assert_eq!(digest_in_path(&format!("{hex}.tar")), want);
        assert_eq!(digest_in_path(&format!("{hex}/layer.tar")), None);
        assert_eq!(digest_in_path("manifest.json"), None);
        assert_eq!(
            clean_name(b"./blobs//sha256/x/").as_deref(),
            Some("blobs/sha256/x")
        );
        assert_eq!(clean_name(b"a/../b").as_deref(), Some("b"));
        assert_eq!(clean_name(b"../etc/passwd"), None);
    }

    #[test]
    fn names_come_from_containerd_then_full_ref_names() {
        let mut a = std::collections::HashMap::new();
        a.insert(REF_NAME.to_string(), "latest".to_string());
        assert_eq!(name_from_annotations(Some(&a)), None);
        a.insert(REF_NAME.to_string(), "localhost/app:1".to_string());
        assert_eq!(
            name_from_annotations(Some(&a)).as_deref(),
            Some("localhost/app:1")
        );
        a.insert(
            IMAGE_NAME.to_string(),
            "docker.io/library/busybox:1".to_string(),
        );
        assert_eq!(
            name_from_annotations(Some(&a)).as_deref(),
            Some("docker.io/library/busybox:1")
        );
        assert_eq!(name_from_annotations(None), None);
    }

    #[test]
    fn index_and_repositories_carry_full_names() {
        let n = Reference::parse("busybox:1.36").unwrap();
        let idx: serde_json::Value = serde_json::from_slice(&index_json(&[IndexEntry {
            media_type: OCI_MANIFEST.into(),
            digest: Digest::of(b"m"),
            size: 3,
            platform: Some(("linux".into(), "amd64".into())),
            name: Some(n.clone()),
        }]))
        .unwrap();
        let ann = &idx["manifests"][0]["annotations"];
        assert_eq!(ann[IMAGE_NAME], "docker.io/library/busybox:1.36");
        assert_eq!(ann[REF_NAME], "1.36");
        assert_eq!(idx["manifests"][0]["platform"]["architecture"], "amd64");
        let r: serde_json::Value =
            serde_json::from_slice(&repositories(&[(vec![n], "top".into())])).unwrap();
        assert_eq!(r["docker.io/library/busybox"]["1.36"], "top");
        let m: Vec<DockerManifest> = serde_json::from_str(
            r#"[{"Config":"c.json","RepoTags":null,"Layers":["l/layer.tar"]}]"#,
        )
        .unwrap();
        assert_eq!(m[0].repo_tags, None);
    }
}
