//! Image references as docker parses them: `busybox` is `docker.io/library/busybox:latest`,
//! `host:port/repo:tag`, `repo@sha256:<hex>`.
//!
//! The grammar is the distribution project's (`reference/regexp.go`, `normalize.go`), parsed by
//! hand here. oci-spec's parser, which oci-client uses, compiles a Unicode regular expression on
//! first use: about 100 ms, in every den process, a third of podman's whole `run`. den parses
//! with a few string splits and builds oci-spec's `Reference` from the parts without parsing.

use std::fmt;

use oci_spec::distribution::Reference as OciReference;

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
        let (registry, repository, tag, digest) =
            parse_parts(input).map_err(|reason| ReferenceError {
                input: input.into(),
                reason: reason.into(),
            })?;
        let inner = match (tag, digest) {
            (Some(t), Some(d)) => OciReference::with_tag_and_digest(registry, repository, t, d),
            (None, Some(d)) => OciReference::with_digest(registry, repository, d),
            (Some(t), None) => OciReference::with_tag(registry, repository, t),
            (None, None) => OciReference::with_tag(registry, repository, "latest".into()),
        };
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

    /// A name an image can be given: docker's reference rules, without a digest, and not a
    /// 64-digit hex string (it would read as an id).
    pub fn parse_tag(target: &str) -> Result<Reference, ReferenceError> {
        let bad = |reason: &str| ReferenceError {
            input: target.into(),
            reason: reason.into(),
        };
        let r = Reference::parse(target)?;
        if r.digest().is_some() {
            return Err(bad("a tag cannot have a digest"));
        }
        let repo = target
            .rsplit_once(':')
            .map_or(target, |(r, t)| if t.contains('/') { target } else { r });
        if repo.len() == 64 && repo.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("cannot specify 64-byte hexadecimal strings"));
        }
        Ok(r)
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

/// A stored name (`docker.io/library/busybox:latest`) as docker shows it (`busybox:latest`).
pub fn familiar_name(canonical: &str) -> String {
    let split = canonical.find('@').or_else(|| {
        canonical
            .rfind(':')
            .filter(|&i| !canonical[i..].contains('/'))
    });
    match split {
        Some(i) => format!("{}{}", familiar_repo(&canonical[..i]), &canonical[i..]),
        None => familiar_repo(canonical),
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

type Parts = (String, String, Option<String>, Option<String>);

/// Split a reference into registry, repository, tag and digest, with docker's defaults.
fn parse_parts(input: &str) -> Result<Parts, &'static str> {
    if input.is_empty() {
        return Err("empty");
    }
    if input.len() > 255 + 1 + 128 + 1 + 71 {
        return Err("too long");
    }
    let (rest, digest) = match input.split_once('@') {
        Some((r, d)) => {
            check_digest(d)?;
            (r, Some(d.to_string()))
        }
        None => (input, None),
    };
    // A tag follows the last ':' that comes after the last '/' (a registry may have a port).
    let (name, tag) = match rest.rfind(':') {
        Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    if let Some(t) = tag {
        check_tag(t)?;
    }
    // docker's splitDockerDomain: the first component is a registry if it looks like a host.
    let (registry, remote) = match name.split_once('/') {
        Some((first, rem))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (first.to_string(), rem.to_string())
        }
        _ => (DOCKER_HUB.to_string(), name.to_string()),
    };
    if !valid_host(&registry) {
        return Err("invalid registry host");
    }
    if remote.chars().any(|c| c.is_ascii_uppercase()) {
        return Err("repository name must be lowercase");
    }
    if remote.is_empty() || !remote.split('/').all(valid_path_component) {
        return Err("invalid repository name");
    }
    if remote.len() == 64 && registry == DOCKER_HUB && remote.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err("cannot specify 64-byte hexadecimal strings");
    }
    let repository = if registry == DOCKER_HUB && !remote.contains('/') {
        format!("library/{remote}")
    } else {
        remote
    };
    let repository = repository
        .strip_prefix("index.docker.io/")
        .map(String::from)
        .unwrap_or(repository);
    let registry = if registry == "index.docker.io" {
        DOCKER_HUB.to_string()
    } else {
        registry
    };
    if registry.len() + 1 + repository.len() > 255 {
        return Err("repository name must not be more than 255 characters");
    }
    Ok((registry, repository, tag.map(String::from), digest))
}

/// `ALGORITHM:HEX`, as the distribution spec allows; a sha256 digest exactly as den keeps it.
fn check_digest(d: &str) -> Result<(), &'static str> {
    let (algo, hex) = d.split_once(':').ok_or("digest must be ALGORITHM:HEX")?;
    let algo_ok = !algo.is_empty()
        && algo
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+._-".contains(c));
    if !algo_ok || hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("invalid digest");
    }
    if algo == "sha256" && (hex.len() != 64 || hex.bytes().any(|b| b.is_ascii_uppercase())) {
        return Err("a sha256 digest has 64 lower-case hex digits");
    }
    Ok(())
}

/// docker's tag grammar: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn check_tag(t: &str) -> Result<(), &'static str> {
    let mut chars = t.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    if !first_ok || t.len() > 128 || !chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        return Err("invalid tag");
    }
    Ok(())
}

/// `host[:port]`: DNS labels of [a-zA-Z0-9-] (not starting or ending with '-'), or `[IPv6]`.
fn valid_host(h: &str) -> bool {
    let (host, port) = if let Some(rest) = h.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip, after)) => {
                if ip.parse::<std::net::Ipv6Addr>().is_err() {
                    return false;
                }
                (None, after.strip_prefix(':'))
            }
            None => return false,
        }
    } else {
        match h.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(h), None),
        }
    };
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    host.is_none_or(|host| {
        !host.is_empty()
            && host.split('.').all(|l| {
                !l.is_empty()
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
    })
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_lowercase() || b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        // A separator: '.', '_', '__' or a run of '-'.
        let start = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == start || i >= b.len() || !b[i].is_ascii_alphanumeric() {
            return false;
        }
    }
    true
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

    #[test]
    fn tag_targets_follow_dockers_rules() {
        assert_eq!(
            Reference::parse_tag("app").unwrap().canonical(),
            "docker.io/library/app:latest"
        );
        assert_eq!(
            Reference::parse_tag("127.0.0.1:5000/x/app:v1")
                .unwrap()
                .canonical(),
            "127.0.0.1:5000/x/app:v1"
        );
        for bad in [
            "App",
            "app:",
            "app:-x",
            "app@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            &"a".repeat(64),
            "",
            "a b",
        ] {
            let e = Reference::parse_tag(bad).unwrap_err();
            assert_eq!(e.input, bad);
        }
    }

    #[test]
    fn names_show_as_docker_shows_them() {
        assert_eq!(
            familiar_name("docker.io/library/busybox:latest"),
            "busybox:latest"
        );
        assert_eq!(familiar_name("docker.io/user/app:1"), "user/app:1");
        assert_eq!(
            familiar_name("127.0.0.1:5000/library/busybox:latest"),
            "127.0.0.1:5000/library/busybox:latest"
        );
        assert_eq!(
            familiar_name("docker.io/library/busybox@sha256:abc"),
            "busybox@sha256:abc"
        );
        assert_eq!(familiar_name("localhost:5000/app"), "localhost:5000/app");
    }

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
        let hex64 = "f".repeat(64);
        for bad in [
            "",
            "library/UPPER",
            "a b",
            "busybox:",
            ":tag",
            "busybox:bad tag",
            "a//b",
            "-x",
            "a__-b",
            "x/.y",
            "busybox:-t",
            "h:port/x",
            "a_b.c/x",
            hex64.as_str(),
        ] {
            let e = Reference::parse(bad).unwrap_err();
            assert_eq!(e.input, bad, "{bad:?}");
            assert!(e.to_string().contains("invalid reference format"));
            assert!(e.hint().is_some());
        }
    }

    #[test]
    fn docker_corner_cases() {
        assert_eq!(
            canon("index.docker.io/library/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(canon("Registry.Example/x"), "Registry.Example/x:latest");
        assert_eq!(canon("a_b__c-d--e/g"), "docker.io/a_b__c-d--e/g:latest");
        assert_eq!(canon("[::1]:5000/x:v1.0_rc-1"), "[::1]:5000/x:v1.0_rc-1");
        assert_eq!(canon("x:Tag_1"), "docker.io/library/x:Tag_1");
        let d = format!("sha256:{}", "b".repeat(64));
        let both = Reference::parse(&format!("x:1@{d}")).unwrap();
        assert_eq!((both.tag(), both.digest()), (Some("1"), Some(d.as_str())));
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
