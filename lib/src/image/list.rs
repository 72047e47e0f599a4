//! Manifest lists as data: what `den manifest` keeps in the store and what it pushes.
//!
//! A list is a named, ordered set of entries, each an image manifest (by digest, media type and
//! size) with the platform it is for. It is not an image: it has no layers or configuration of
//! its own, and an entry is only a pointer (to a local image, or to a manifest in a registry).
//! [`ManifestList::document`] writes it as an OCI image index or a Docker manifest list; both
//! have the same shape, only the media types differ, so one writer serves both.
//!
//! Everything a list holds came through a typed edge: digests are [`Digest`]s, platform words
//! are checked by [`platform_word`] (a platform string from the command line or from a
//! registry's index is short, printable and has no separators), and a list has at most
//! [`MAX_ENTRIES`] entries, the same cap den applies to an index a registry sends.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ImageError;
use super::manifest::{DOCKER_LIST, OCI_INDEX, Platform};
use crate::digest::Digest;

/// The most entries a list (den's, or an index a registry sends) may have. Real multi-platform
/// images have a dozen or two, with their attestations; this leaves room and bounds the work.
pub const MAX_ENTRIES: usize = 256;

/// Which document a list is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListFormat {
    /// An OCI image index (podman's default).
    #[default]
    Oci,
    /// A Docker manifest list (schema 2).
    V2s2,
}

impl ListFormat {
    pub fn parse(s: &str) -> Result<ListFormat, ImageError> {
        match s {
            "oci" => Ok(ListFormat::Oci),
            "v2s2" | "docker" => Ok(ListFormat::V2s2),
            other => Err(ImageError::BadListFormat(other.to_string())),
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            ListFormat::Oci => OCI_INDEX,
            ListFormat::V2s2 => DOCKER_LIST,
        }
    }
}

/// One entry: a manifest and the platform it is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The local image it was added from (its id), when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Digest>,
    /// The repository (`registry/repo`) it was found in, when it came from a registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl Entry {
    /// An entry for the manifest `digest` (of `media_type`, `size` bytes) whose image
    /// configuration is `config`: its platform fields, each checked.
    pub fn of_config(
        digest: Digest,
        media_type: &str,
        size: usize,
        config: &[u8],
    ) -> Result<Entry, ImageError> {
        #[derive(Deserialize, Default)]
        struct PlatformOf {
            #[serde(default)]
            os: Option<String>,
            #[serde(default)]
            architecture: Option<String>,
            #[serde(default)]
            variant: Option<String>,
            #[serde(default, rename = "os.version")]
            os_version: Option<String>,
        }
        let p: PlatformOf = serde_json::from_slice(config).unwrap_or_default();
        let word = |what: &str, v: Option<String>| v.map(|v| platform_word(what, &v)).transpose();
        Ok(Entry {
            digest,
            media_type: media_type.to_string(),
            size: size as u64,
            os: word("os", p.os)?.unwrap_or_else(|| "linux".into()),
            architecture: word("architecture", p.architecture)?
                .unwrap_or_else(|| Platform::host().arch),
            variant: word("variant", p.variant)?,
            os_version: word("os version", p.os_version)?,
            os_features: Vec::new(),
            annotations: BTreeMap::new(),
            image: None,
            source: None,
        })
    }

    pub fn platform(&self) -> Platform {
        Platform {
            os: self.os.clone(),
            arch: self.architecture.clone(),
            variant: self.variant.clone(),
        }
    }
}

/// A manifest list in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestList {
    /// Fixed when the list is made (podman prints it after each change).
    #[serde(with = "crate::digest::hex_only")]
    pub id: Digest,
    /// The list's name, canonical (`docker.io/library/app:latest`).
    pub name: String,
    pub entries: Vec<Entry>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    pub created: DateTime<Utc>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IndexDoc<'a> {
    schema_version: u32,
    media_type: &'a str,
    manifests: Vec<DescriptorDoc<'a>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DescriptorDoc<'a> {
    media_type: &'a str,
    size: u64,
    digest: &'a Digest,
    platform: PlatformDoc<'a>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct PlatformDoc<'a> {
    architecture: &'a str,
    os: &'a str,
    #[serde(rename = "os.version", skip_serializing_if = "Option::is_none")]
    os_version: Option<&'a str>,
    #[serde(rename = "os.features", skip_serializing_if = "<[String]>::is_empty")]
    os_features: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
}

impl ManifestList {
    /// A new, empty list named `name` (canonical).
    pub fn new(name: String) -> ManifestList {
        let created = Utc::now();
        let id = Digest::of(
            format!("{name}\n{}\n{}", created.to_rfc3339(), std::process::id()).as_bytes(),
        );
        ManifestList {
            id,
            name,
            entries: Vec::new(),
            annotations: BTreeMap::new(),
            created,
        }
    }

    /// Add `entry`, replacing an entry with the same digest (podman's rule: a manifest is in a
    /// list once). Refused past [`MAX_ENTRIES`].
    pub fn add(&mut self, entry: Entry) -> Result<(), ImageError> {
        if let Some(e) = self.entries.iter_mut().find(|e| e.digest == entry.digest) {
            *e = entry;
            return Ok(());
        }
        if self.entries.len() >= MAX_ENTRIES {
            return Err(ImageError::TooManyEntries {
                what: self.name.clone(),
                count: self.entries.len() + 1,
            });
        }
        self.entries.push(entry);
        Ok(())
    }

    /// The entry `digest` names, for `annotate`.
    pub fn entry_mut(&mut self, digest: &Digest) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| &e.digest == digest)
    }

    /// The entry for `want`, as a pull chooses one from an index (os and architecture, the
    /// variant when asked).
    pub fn select(&self, want: &Platform) -> Option<&Entry> {
        self.entries.iter().find(|e| {
            e.os == want.os
                && e.architecture == want.arch
                && match (&want.variant, &e.variant) {
                    (None, _) => true,
                    (Some(w), Some(h)) => w == h,
                    (Some(w), None) => want.arch == "arm64" && w == "v8",
                }
        })
    }

    /// The list as a document of `format`, pretty-printed with tabs as docker's `manifest
    /// inspect` prints one. The same bytes are pushed, so the digest inspect would compute is
    /// the one the registry holds.
    pub fn document(&self, format: ListFormat) -> Vec<u8> {
        let doc = IndexDoc {
            schema_version: 2,
            media_type: format.media_type(),
            manifests: self
                .entries
                .iter()
                .map(|e| DescriptorDoc {
                    media_type: &e.media_type,
                    size: e.size,
                    digest: &e.digest,
                    platform: PlatformDoc {
                        architecture: &e.architecture,
                        os: &e.os,
                        os_version: e.os_version.as_deref(),
                        os_features: &e.os_features,
                        variant: e.variant.as_deref(),
                    },
                    annotations: &e.annotations,
                })
                .collect(),
            annotations: &self.annotations,
        };
        let mut out = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
        doc.serialize(&mut ser).expect("a list serializes");
        out.push(b'\n');
        out
    }
}

/// A word of a platform (os, architecture, variant, os version, feature, annotation key), from
/// the command line or a registry: 1 to 64 characters of `[A-Za-z0-9._+-]`.
pub fn platform_word(what: &str, s: &str) -> Result<String, ImageError> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+'));
    if ok {
        Ok(s.to_string())
    } else {
        Err(ImageError::BadPlatformWord {
            what: what.to_string(),
            value: s.to_string(),
        })
    }
}

/// `--annotation KEY=VALUE`: a key as [`platform_word`] allows (plus `/`), any value up to 4 KiB.
pub fn annotation(s: &str) -> Result<(String, String), ImageError> {
    let bad = || ImageError::BadAnnotation(s.to_string());
    let (k, v) = s.split_once('=').ok_or_else(bad)?;
    let key_ok = !k.is_empty()
        && k.len() <= 256
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+' | b'/'));
    if !key_ok || v.len() > 4096 || v.chars().any(char::is_control) {
        return Err(bad());
    }
    Ok((k.to_string(), v.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::manifest::OCI_MANIFEST;

    fn entry(hex: char, arch: &str) -> Entry {
        Entry {
            digest: Digest::from_hex(&hex.to_string().repeat(64)).unwrap(),
            media_type: OCI_MANIFEST.into(),
            size: 10,
            os: "linux".into(),
            architecture: arch.into(),
            variant: None,
            os_version: None,
            os_features: vec![],
            annotations: BTreeMap::new(),
            image: None,
            source: None,
        }
    }

    #[test]
    fn a_manifest_is_in_a_list_once_and_the_list_is_capped() {
        let mut l = ManifestList::new("docker.io/library/app:latest".into());
        l.add(entry('a', "amd64")).unwrap();
        l.add(entry('a', "arm64")).unwrap();
        assert_eq!(l.entries.len(), 1);
        assert_eq!(l.entries[0].architecture, "arm64");
        let mut big = ManifestList::new("x".into());
        for i in 0..MAX_ENTRIES {
            let mut e = entry('b', "amd64");
            e.digest = Digest::of(i.to_string().as_bytes());
            big.add(e).unwrap();
        }
        assert!(matches!(
            big.add(entry('c', "amd64")),
            Err(ImageError::TooManyEntries { .. })
        ));
    }

    #[test]
    fn documents_have_docker_shape_and_either_media_type() {
        let mut l = ManifestList::new("x".into());
        let mut arm = entry('a', "arm64");
        arm.variant = Some("v8".into());
        l.add(entry('b', "amd64")).unwrap();
        l.add(arm).unwrap();
        for (format, mt) in [
            (ListFormat::Oci, OCI_INDEX),
            (ListFormat::V2s2, DOCKER_LIST),
        ] {
            let bytes = l.document(format);
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(v["schemaVersion"], 2);
            assert_eq!(v["mediaType"], mt);
            assert_eq!(v["manifests"][1]["platform"]["variant"], "v8");
            assert_eq!(v["manifests"][0]["platform"]["architecture"], "amd64");
            assert!(v["manifests"][0]["platform"].get("variant").is_none());
            assert!(v.get("annotations").is_none());
            // It reads back as an index through the same parser a pull uses.
            assert!(matches!(
                super::super::manifest::parse("x", &bytes, None).unwrap(),
                super::super::Fetched::Index(_)
            ));
        }
        let want = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(l.select(&want).unwrap().architecture, "arm64");
        assert!(l.select(&Platform::parse("linux/s390x").unwrap()).is_none());
    }

    #[test]
    fn platform_words_and_annotations_are_checked() {
        assert_eq!(platform_word("arch", "arm64").unwrap(), "arm64");
        assert!(platform_word("os.version", "10.0.17763.1879").is_ok());
        for bad in ["", "a/b", "a b", "x\n", &"a".repeat(65)] {
            assert!(platform_word("arch", bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            annotation("org.opencontainers.image.title=app").unwrap(),
            ("org.opencontainers.image.title".into(), "app".into())
        );
        for bad in ["novalue", "=x", "k\u{1}=v", "k=a\nb"] {
            assert!(annotation(bad).is_err(), "{bad:?}");
        }
        assert_eq!(ListFormat::parse("v2s2").unwrap(), ListFormat::V2s2);
        assert!(ListFormat::parse("zip").is_err());
    }
}
