//! Content digests: `sha256:` and 64 lowercase hex digits, checked once, where they come in.
//!
//! Every digest den reads from outside (a manifest, an image config's diff ids, an archive's
//! index, a record on disk, a command line) is parsed into a [`Digest`] at that edge, and only a
//! `Digest` names a blob or a layer in the store. A string like `sha256:../../tmp/x` therefore
//! never reaches a path: it fails to parse, with the input named.
//!
//! Only sha256 is accepted: it is what docker, podman and every registry den has met use, and what
//! the store's layout (`blobs/sha256/`) is made for; an image naming another algorithm is
//! refused with that said, rather than stored half-understood.
//!
//! A leaf module: it imports nothing of den, so every seam may use it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const PREFIX: &str = "sha256:";
const HEX_LEN: usize = 64;

/// A sha256 content digest, valid by construction.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("{input:?} is not a sha256 digest (sha256: and 64 lowercase hex digits)")]
    Malformed { input: String },
    #[error("{input:?} uses the digest algorithm {algorithm:?}; den reads sha256 only")]
    Algorithm { input: String, algorithm: String },
}

impl DigestError {
    pub fn hint(&self) -> String {
        match self {
            DigestError::Malformed { .. } => {
                "the image, archive or record that holds it is damaged or was made to attack den; \
                 nothing was stored"
                    .into()
            }
            DigestError::Algorithm { .. } => {
                "push the image with sha256 digests (docker's and podman's default)".into()
            }
        }
    }
}

/// The input as it may be shown: control characters escaped, at most 100 characters.
fn shown(input: &str) -> String {
    let mut s: String = input.chars().take(100).collect();
    if input.chars().count() > 100 {
        s.push('…');
    }
    s
}

fn is_hex(s: &str) -> bool {
    s.len() == HEX_LEN
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Digest {
    /// Parse `sha256:<64 lowercase hex>`.
    pub fn parse(input: &str) -> Result<Digest, DigestError> {
        match input.split_once(':') {
            Some(("sha256", hex)) if is_hex(hex) => Ok(Digest(input.to_string())),
            Some((algorithm, _))
                if !algorithm.is_empty()
                    && algorithm.len() <= 16
                    && algorithm.bytes().all(|b| b.is_ascii_alphanumeric())
                    && algorithm != "sha256" =>
            {
                Err(DigestError::Algorithm {
                    input: shown(input),
                    algorithm: algorithm.into(),
                })
            }
            _ => Err(DigestError::Malformed {
                input: shown(input),
            }),
        }
    }

    /// From the 64 hex digits alone (an image id as docker prints it in full).
    pub fn from_hex(hex: &str) -> Result<Digest, DigestError> {
        if is_hex(hex) {
            Ok(Digest(format!("{PREFIX}{hex}")))
        } else {
            Err(DigestError::Malformed { input: shown(hex) })
        }
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        let mut h = Hasher::new();
        h.update(bytes);
        h.finish()
    }

    /// `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 64 hex digits: a file name in the store, docker's full image id.
    pub fn hex(&self) -> &str {
        &self.0[PREFIX.len()..]
    }

    /// docker's 12-digit short form.
    pub fn short(&self) -> &str {
        &self.hex()[..12]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.0)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Digest, DigestError> {
        Digest::parse(s)
    }
}

impl AsRef<str> for Digest {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Digest {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Digest {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Records read back from disk are checked like anything else from outside.
impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Serde for a digest written as its hex digits alone (`images.json`'s image ids, as docker
/// writes them): `#[serde(with = "crate::digest::hex_only")]`.
pub mod hex_only {
    use super::Digest;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Digest, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(d.hex())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        Digest::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

/// A running sha256 (aws-lc-rs: assembly with AVX2 or SHA-NI where the CPU has them).
#[derive(Clone)]
pub struct Hasher(aws_lc_rs::digest::Context);

impl Hasher {
    pub fn new() -> Hasher {
        Hasher(aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256))
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn finish(self) -> Digest {
        Digest(format!("{PREFIX}{}", hex::encode(self.0.finish().as_ref())))
    }
}

impl Default for Hasher {
    fn default() -> Self {
        Hasher::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_only_sha256_with_64_lowercase_hex() {
        let d = Digest::parse(EMPTY).unwrap();
        assert_eq!(d, Digest::of(b""));
        assert_eq!(d.hex().len(), 64);
        assert_eq!(d.short(), "e3b0c44298fc");
        assert_eq!(Digest::from_hex(d.hex()).unwrap(), d);
        for bad in [
            "",
            "sha256:",
            "sha256:../../../../tmp/somedir",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            &EMPTY[..EMPTY.len() - 1],
            &format!("{EMPTY}0"),
            &format!("{EMPTY}/x"),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85\n",
        ] {
            assert!(
                matches!(Digest::parse(bad), Err(DigestError::Malformed { .. })),
                "{bad:?}"
            );
        }
        assert!(matches!(
            Digest::parse("sha512:abcd"),
            Err(DigestError::Algorithm { .. })
        ));
        assert!(Digest::from_hex("../x").is_err());
    }

    #[test]
    fn serde_checks_what_it_reads() {
        let d = Digest::of(b"x");
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
        assert!(serde_json::from_str::<Digest>("\"sha256:../../etc\"").is_err());
        #[derive(Serialize, Deserialize)]
        struct R {
            #[serde(with = "hex_only")]
            id: Digest,
        }
        let r = serde_json::to_string(&R { id: d.clone() }).unwrap();
        assert_eq!(r, format!("{{\"id\":\"{}\"}}", d.hex()));
        assert!(serde_json::from_str::<R>("{\"id\":\"../../x\"}").is_err());
    }

    #[test]
    fn long_inputs_are_shown_short() {
        let long = format!("sha256:{}", "z".repeat(10_000));
        let e = Digest::parse(&long).unwrap_err().to_string();
        assert!(e.len() < 200, "{e}");
    }
}
