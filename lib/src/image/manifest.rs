//! Manifests, indexes and platforms.
//!
//! A registry answers a manifest request with one of four documents: an OCI image manifest, an OCI
//! image index, a Docker schema 2 manifest or a Docker manifest list. [`parse`] tells them apart
//! (by media type, then by shape) and [`select`] picks the entry of an index for a platform, the
//! way docker does: os and architecture must match, the variant too when one is asked for.

use std::fmt;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

use super::ImageError;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// An uncompressed layer: what `den build` and `den import` make, and `den save` writes.
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// An uncompressed layer in a Docker schema 2 manifest (`den build --format docker`).
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// The manifest format of an image den writes: `build --format`, podman's `BUILDAH_FORMAT`.
/// The configuration's bytes are the same in both (docker's JSON, which the OCI config is a
/// subset of), so the format changes the manifest and its media types, never the image id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// An OCI image manifest (den's default, as podman's).
    #[default]
    Oci,
    /// A Docker schema 2 manifest.
    Docker,
}

impl Format {
    /// `oci` or `docker` (podman's names; `oci-archive`-style names are `save`'s, not these).
    pub fn parse(s: &str) -> Result<Format, ImageError> {
        match s {
            "oci" => Ok(Format::Oci),
            "docker" => Ok(Format::Docker),
            other => Err(ImageError::BadFormat(other.to_string())),
        }
    }

    pub fn manifest_type(self) -> &'static str {
        match self {
            Format::Oci => OCI_MANIFEST,
            Format::Docker => DOCKER_MANIFEST,
        }
    }

    pub fn config_type(self) -> &'static str {
        match self {
            Format::Oci => OCI_CONFIG,
            Format::Docker => DOCKER_CONFIG,
        }
    }

    /// A layer's media type in this format: tar and gzip layers take this format's name for
    /// them; others (zstd, foreign layers) keep theirs, which have no name in the other format.
    pub fn layer_type(self, media_type: &str) -> String {
        let gzip = media_type == OCI_LAYER_GZIP || media_type == DOCKER_LAYER_GZIP;
        let tar = media_type == OCI_LAYER || media_type == DOCKER_LAYER;
        match (self, tar, gzip) {
            (Format::Oci, true, _) => OCI_LAYER.into(),
            (Format::Oci, _, true) => OCI_LAYER_GZIP.into(),
            (Format::Docker, true, _) => DOCKER_LAYER.into(),
            (Format::Docker, _, true) => DOCKER_LAYER_GZIP.into(),
            _ => media_type.into(),
        }
    }
}

/// Every manifest media type den accepts, for the `Accept` header.
pub const ACCEPTED: &[&str] = &[OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

/// A manifest document as fetched.
#[derive(Debug, Clone)]
pub enum Fetched {
    Index(Box<ImageIndex>),
    Manifest(Box<ImageManifest>),
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    schema_version: Option<u32>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    layers: Option<serde_json::Value>,
}

/// Parse a manifest or index. `content_type` is the registry's Content-Type header, if any.
pub fn parse(
    reference: &str,
    bytes: &[u8],
    content_type: Option<&str>,
) -> Result<Fetched, ImageError> {
    let bad = |source| ImageError::BadManifest {
        reference: reference.into(),
        source,
    };
    let probe: Probe = serde_json::from_slice(bytes).map_err(bad)?;
    let media_type = probe
        .media_type
        .clone()
        .or_else(|| content_type.map(|c| c.split(';').next().unwrap_or(c).trim().to_string()))
        // A generic Content-Type says nothing about the document.
        .filter(|t| {
            !matches!(
                t.as_str(),
                "application/json" | "text/plain" | "application/octet-stream"
            )
        })
        .unwrap_or_default();
    // The shape decides only when nothing names a media type (OCI allows leaving it out); a
    // media type den does not know is refused, never read as if it were OCI.
    let is_index = match media_type.as_str() {
        OCI_INDEX | DOCKER_LIST => true,
        OCI_MANIFEST | DOCKER_MANIFEST => false,
        "" if probe.schema_version == Some(2) && probe.manifests.is_some() => true,
        "" if probe.schema_version == Some(2) && probe.layers.is_some() => false,
        other => {
            return Err(ImageError::UnsupportedManifest {
                reference: reference.into(),
                media_type: if other.is_empty() {
                    format!("schemaVersion {}", probe.schema_version.unwrap_or(0))
                } else {
                    other.into()
                },
            });
        }
    };
    if is_index {
        Ok(Fetched::Index(Box::new(
            serde_json::from_slice(bytes).map_err(bad)?,
        )))
    } else {
        Ok(Fetched::Manifest(Box::new(
            serde_json::from_slice(bytes).map_err(bad)?,
        )))
    }
}

/// os/architecture[/variant], as `--platform` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl Platform {
    /// The platform den runs on.
    pub fn host() -> Platform {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", None),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" => ("ppc64le", None),
            other => (other, None),
        };
        Platform {
            os: "linux".into(),
            arch: arch.into(),
            variant: variant.map(Into::into),
        }
    }

    pub fn parse(s: &str) -> Option<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        if parts
            .iter()
            .any(|p| p.is_empty() || p.chars().any(char::is_whitespace))
        {
            return None;
        }
        match parts.as_slice() {
            [os, arch] => Some(Platform {
                os: os.to_string(),
                arch: arch.to_string(),
                variant: None,
            }),
            [os, arch, v] => Some(Platform {
                os: os.to_string(),
                arch: arch.to_string(),
                variant: Some(v.to_string()),
            }),
            _ => None,
        }
    }

    fn matches(&self, d: &Descriptor) -> bool {
        let Some(p) = d.platform() else { return false };
        if p.os().to_string() != self.os || p.architecture().to_string() != self.arch {
            return false;
        }
        match (&self.variant, p.variant()) {
            (None, _) => true,
            (Some(want), Some(have)) => want == have,
            // arm64 images often omit the implied "v8".
            (Some(want), None) => self.arch == "arm64" && want == "v8",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// The entry of `index` for `want`. Attestation manifests (platform unknown/unknown) never match.
pub fn select<'a>(
    reference: &str,
    index: &'a ImageIndex,
    want: &Platform,
) -> Result<&'a Descriptor, ImageError> {
    index
        .manifests()
        .iter()
        .find(|d| want.matches(d))
        .ok_or_else(|| ImageError::NoMatchingPlatform {
            reference: reference.into(),
            platform: want.to_string(),
            available: index
                .manifests()
                .iter()
                .filter_map(|d| d.platform().as_ref())
                .filter(|p| p.os().to_string() != "unknown")
                .map(|p| match p.variant() {
                    Some(v) => format!("{}/{}/{v}", p.os(), p.architecture()),
                    None => format!("{}/{}", p.os(), p.architecture()),
                })
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// Recognise the compression from the first bytes of a blob, as docker does: media types are
    /// sometimes wrong, magic numbers are not.
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// Whether a layer media type is one den can apply (tar, gzip or zstd; OCI or Docker).
pub fn layer_supported(media_type: &str) -> bool {
    media_type.starts_with("application/vnd.oci.image.layer.")
        || media_type.starts_with("application/vnd.docker.image.rootfs.diff.tar")
        || media_type == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_format_names_tar_and_gzip_layers_its_own_way_and_keeps_others() {
        let zstd = "application/vnd.oci.image.layer.v1.tar+zstd";
        assert_eq!(Format::Docker.layer_type(OCI_LAYER), DOCKER_LAYER);
        assert_eq!(Format::Docker.layer_type(OCI_LAYER_GZIP), DOCKER_LAYER_GZIP);
        assert_eq!(Format::Oci.layer_type(DOCKER_LAYER_GZIP), OCI_LAYER_GZIP);
        assert_eq!(Format::Oci.layer_type(OCI_LAYER), OCI_LAYER);
        assert_eq!(Format::Docker.layer_type(zstd), zstd);
        assert_eq!(
            Format::parse("docker").unwrap().manifest_type(),
            DOCKER_MANIFEST
        );
        assert_eq!(Format::parse("oci").unwrap().config_type(), OCI_CONFIG);
        assert!(Format::parse("v2s2").is_err());
    }

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn index(media_type: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{media_type}","manifests":[
              {{"mediaType":"{OCI_MANIFEST}","digest":"{D1}","size":10,"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}},
              {{"mediaType":"{OCI_MANIFEST}","digest":"{D2}","size":10,"platform":{{"os":"linux","architecture":"amd64"}}}},
              {{"mediaType":"{OCI_MANIFEST}","digest":"{D1}","size":10,"platform":{{"os":"unknown","architecture":"unknown"}}}}]}}"#
        )
    }

    fn manifest(media_type: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{media_type}","config":{{"mediaType":"{DOCKER_CONFIG}","digest":"{D1}","size":5}},
               "layers":[{{"mediaType":"{DOCKER_LAYER_GZIP}","digest":"{D2}","size":7}}]}}"#
        )
    }

    #[test]
    fn tells_indexes_from_manifests_for_both_formats() {
        for mt in [OCI_INDEX, DOCKER_LIST] {
            assert!(matches!(
                parse("r", index(mt).as_bytes(), None).unwrap(),
                Fetched::Index(_)
            ));
        }
        for mt in [OCI_MANIFEST, DOCKER_MANIFEST] {
            match parse("r", manifest(mt).as_bytes(), None).unwrap() {
                Fetched::Manifest(m) => assert_eq!(m.layers().len(), 1),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn oci_manifest_without_media_type_uses_header_or_shape() {
        let body = manifest(OCI_MANIFEST).replace(&format!(r#""mediaType":"{OCI_MANIFEST}","#), "");
        assert!(matches!(
            parse("r", body.as_bytes(), Some(OCI_MANIFEST)).unwrap(),
            Fetched::Manifest(_)
        ));
        assert!(matches!(
            parse("r", body.as_bytes(), None).unwrap(),
            Fetched::Manifest(_)
        ));
    }

    #[test]
    fn schema1_is_refused_with_a_hint() {
        let body = r#"{"schemaVersion":1,"name":"x","fsLayers":[]}"#;
        let e = parse(
            "r",
            body.as_bytes(),
            Some("application/vnd.docker.distribution.manifest.v1+prettyjws"),
        )
        .unwrap_err();
        assert!(matches!(e, ImageError::UnsupportedManifest { .. }));
        use crate::error::Diagnose;
        assert!(e.hint().unwrap().contains("schema 1"));
    }

    #[test]
    fn selects_platforms_like_docker() {
        let Fetched::Index(idx) = parse("r", index(OCI_INDEX).as_bytes(), None).unwrap() else {
            panic!()
        };
        let amd = Platform::parse("linux/amd64").unwrap();
        assert_eq!(select("r", &idx, &amd).unwrap().digest().to_string(), D2);
        let arm = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(select("r", &idx, &arm).unwrap().digest().to_string(), D1);
        let e = select("r", &idx, &Platform::parse("linux/s390x").unwrap()).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("linux/s390x") && msg.contains("linux/amd64") && !msg.contains("unknown"),
            "{msg}"
        );
    }

    #[test]
    fn platform_strings() {
        assert_eq!(
            Platform::parse("linux/arm/v7").unwrap().to_string(),
            "linux/arm/v7"
        );
        assert!(Platform::parse("linux").is_none());
        assert!(Platform::parse("linux//x").is_none());
        assert_eq!(Platform::host().os, "linux");
    }

    #[test]
    fn compression_is_sniffed() {
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(
            Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0]),
            Compression::Zstd
        );
        assert_eq!(Compression::sniff(b"etc/\0\0"), Compression::None);
        assert!(layer_supported(DOCKER_LAYER_GZIP));
        assert!(layer_supported(
            "application/vnd.oci.image.layer.v1.tar+zstd"
        ));
        assert!(!layer_supported(
            "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
        ));
    }
}
