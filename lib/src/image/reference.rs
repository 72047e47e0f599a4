//! Image references as docker parses them: `busybox` is `docker.io/library/busybox:latest`,
//! `host:port/repo:tag`, `repo@sha256:<hex>`.
//!
//! The grammar is the distribution project's; den uses `oci_spec::distribution::Reference` (the
//! parser oci-client speaks) and adds what a command line needs on top: docker's "familiar" short
//! form for display, the canonical form for the store, and errors that name the input.

use std::fmt;

use oci_spec::distribution::{ParseError, Reference as OciReference};

use crate::error::Diagnose;

pub const DOCKER_HUB: &str = "docker.io";

#[derive(Debug, thiserror::Error)]
#[error("invalid reference format {input:?}: {reason}")]
pub struct ReferenceError {
    pub input: String,
    pub reason: String,
}

impl Diagnose for ReferenceError {
    fn hint(&self) -> Option<String> {
        Some(
            "write an image as [REGISTRY[:PORT]/]NAME[:TAG][@sha256:DIGEST] in lower case, \
             e.g. busybox, busybox:1.36 or 127.0.0.1:5000/library/busybox:latest"
                .into(),
        )
    }
}

/// A parsed image reference, always with a registry, a repository and a tag or digest.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    inner: OciReference,
}

impl Reference {
    /// Parse what a user typed.
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        let err = |reason: String| ReferenceError {
            input: input.into(),
            reason,
        };
        if input.is_empty() {
            return Err(err("empty".into()));
        }
        if input.chars().any(|c| c.is_whitespace()) {
            return Err(err("contains white space".into()));
        }
        let inner: OciReference = input.parse().map_err(|e: ParseError| err(e.to_string()))?;
        // The parser lets an upper-case first path component through (it takes it for a
        // registry, then puts it under docker.io); docker refuses it, and so does den.
        if inner.repository().chars().any(|c| c.is_ascii_uppercase()) {
            return Err(err("repository name must be lowercase".into()));
        }
        Ok(Reference { inner })
    }

    /// A reference to `repo` (a canonical `registry/repository`) at `tag`.
    pub fn with_tag(registry: &str, repository: &str, tag: &str) -> Reference {
        Reference {
            inner: OciReference::with_tag(registry.into(), repository.into(), tag.into()),
        }
    }

    /// The same repository at `digest` (and no tag).
    pub fn with_digest(&self, digest: &str) -> Reference {
        Reference {
            inner: OciReference::with_digest(
                self.registry().into(),
                self.repository().into(),
                digest.into(),
            ),
        }
    }

    /// `docker.io`, `127.0.0.1:5000`, ...
    pub fn registry(&self) -> &str {
        self.inner.registry()
    }

    /// `library/busybox`, ...
    pub fn repository(&self) -> &str {
        self.inner.repository()
    }

    /// The tag; `latest` when neither a tag nor a digest was given.
    pub fn tag(&self) -> Option<&str> {
        match (self.inner.tag(), self.inner.digest()) {
            (Some(t), _) => Some(t),
            (None, Some(_)) => None,
            (None, None) => Some("latest"),
        }
    }

    pub fn digest(&self) -> Option<&str> {
        self.inner.digest()
    }

    /// `registry/repository`, the name images are grouped under.
    pub fn repo_name(&self) -> String {
        format!("{}/{}", self.registry(), self.repository())
    }

    /// The full form the store keeps: `docker.io/library/busybox:latest`, or `...@sha256:...`
    /// when the reference has a digest and no tag.
    pub fn canonical(&self) -> String {
        match (self.tag(), self.digest()) {
            (Some(t), _) => format!("{}:{t}", self.repo_name()),
            (None, Some(d)) => format!("{}@{d}", self.repo_name()),
            (None, None) => unreachable!("tag() defaults to latest"),
        }
    }

    /// docker's short form of the repository: `busybox`, `user/app`, `127.0.0.1:5000/x`.
    pub fn familiar_repo(&self) -> String {
        familiar_repo(&self.repo_name())
    }

    /// The reference oci-client speaks.
    pub fn oci(&self) -> &OciReference {
        &self.inner
    }

    /// The same reference with another registry host (a mirror).
    pub fn on_registry(&self, registry: &str) -> Reference {
        let mut inner = self.inner.clone();
        inner.set_mirror_registry(registry.into());
        Reference { inner }
    }
}

/// docker's short form of a canonical `registry/repository`.
pub fn familiar_repo(repo_name: &str) -> String {
    match repo_name.strip_prefix("docker.io/") {
        Some(rest) => rest
            .strip_prefix("library/")
            .filter(|r| !r.contains('/'))
            .unwrap_or(rest)
            .into(),
        None => repo_name.into(),
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({})", self.canonical())
    }
}

/// A digest string `sha256:<64 hex>`: the only algorithm den accepts.
pub fn parse_digest(s: &str) -> Option<&str> {
    let hex = s.strip_prefix("sha256:")?;
    (hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then_some(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        Reference::parse(s).unwrap().canonical()
    }

    #[test]
    fn short_names_go_to_docker_hub_library_latest() {
        assert_eq!(canon("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(canon("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(canon("user/app"), "docker.io/user/app:latest");
        assert_eq!(
            canon("docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
    }

    #[test]
    fn registries_with_ports_and_localhost() {
        let r = Reference::parse("127.0.0.1:5000/library/busybox:latest").unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "library/busybox");
        assert_eq!(r.tag(), Some("latest"));
        assert_eq!(r.familiar_repo(), "127.0.0.1:5000/library/busybox");
        assert_eq!(canon("localhost:5000/a/b/c"), "localhost:5000/a/b/c:latest");
        assert_eq!(canon("localhost/app"), "localhost/app:latest");
    }

    #[test]
    fn digests() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("busybox@{d}")).unwrap();
        assert_eq!(r.digest(), Some(d.as_str()));
        assert_eq!(r.tag(), None);
        assert_eq!(r.canonical(), format!("docker.io/library/busybox@{d}"));
        assert!(Reference::parse("busybox@sha256:abc").is_err());
    }

    #[test]
    fn malformed_references_name_the_input() {
        for bad in [
            "",
            "UPPER/case",
            "a b",
            "busybox:",
            ":tag",
            "busybox:bad tag",
            "a//b",
            "-x",
        ] {
            let e = Reference::parse(bad).unwrap_err();
            assert_eq!(e.input, bad, "{bad:?}");
            assert!(e.to_string().contains("invalid reference format"));
            assert!(e.hint().is_some());
        }
    }

    #[test]
    fn familiar_forms() {
        assert_eq!(familiar_repo("docker.io/library/busybox"), "busybox");
        assert_eq!(familiar_repo("docker.io/user/app"), "user/app");
        assert_eq!(familiar_repo("docker.io/library/a/b"), "library/a/b");
        assert_eq!(familiar_repo("quay.io/x/y"), "quay.io/x/y");
    }

    #[test]
    fn mirrors_keep_the_repository() {
        let r = Reference::parse("busybox")
            .unwrap()
            .on_registry("mirror.local:5000");
        assert_eq!(r.oci().resolve_registry(), "mirror.local:5000");
        assert_eq!(r.repository(), "library/busybox");
    }

    #[test]
    fn digest_strings() {
        assert!(parse_digest(&format!("sha256:{}", "0".repeat(64))).is_some());
        assert!(parse_digest(&format!("sha256:{}", "A".repeat(64))).is_none());
        assert!(parse_digest("md5:abc").is_none());
    }
}
