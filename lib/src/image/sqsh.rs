//! Single-file images: a SquashFS file holding an image's flattened root filesystem and its
//! configuration, the format `den image squash` writes and `den run FILE.sqsh`,
//! `den run --image-file FILE`, `den load -i FILE.sqsh` and `den images FILE.sqsh` read.
//!
//! The layout inside the file is den's own (SquashFS has no image format of its own; apptainer's
//! SIF wraps one with its own headers, enroot's is a bare root filesystem):
//!
//! ```text
//! image.json     ImageJson: the image's name, its source id, its OCI configuration
//! rootfs/        the layers applied in order, owners as the container sees them
//! ```
//!
//! Entry points: [`check`] (the superblock, before anything mounts or reads the file),
//! [`read_image_json`] and [`is_image_file`] (does a `run` argument name such a file).
//!
//! Threat: the file is someone else's (copied from a shared filesystem) and may be damaged or
//! crafted. [`check`] validates the superblock at the edge: the magic, version 4.0, a block
//! size the format allows, every table inside `bytes_used`, and `bytes_used` inside the file (a
//! truncated copy is refused here with one line rather than as I/O errors in the container).
//! Past that, the file is only parsed by squashfuse and unsquashfs, which bound-check what they
//! read. Nothing in the file is resolved on the host: `image.json` is read with
//! `unsquashfs -cat`, which reads the file's own directory tree (a symlink in the image is never
//! looked up on the host side), and its output is capped at [`MAX_IMAGE_JSON`] before parsing.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Diagnose;

/// The superblock's size (SquashFS 4.0).
pub const SUPERBLOCK_LEN: usize = 96;
/// "hsqs", little-endian.
const MAGIC: u32 = 0x7371_7368;
/// The most `image.json` den reads.
pub const MAX_IMAGE_JSON: u64 = 1 << 20;
/// What `image.json` says it is, so a later layout can be told apart.
pub const FORMAT: &str = "den.sqsh.v1";
/// A table offset that says "absent".
const ABSENT: u64 = u64::MAX;

#[derive(Debug, thiserror::Error)]
pub enum SqshError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a regular file")]
    NotFile { path: PathBuf },
    #[error("{path} is not a SquashFS image: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{path} is truncated: its superblock says {used} bytes, the file has {len}")]
    Truncated { path: PathBuf, used: u64, len: u64 },
    #[error("{path} has no den image.json: {reason}")]
    NoImageJson { path: PathBuf, reason: String },
    #[error("{path} has no rootfs directory (a symlink or another file is not followed)")]
    NoRootfs { path: PathBuf },
    #[error("{program} is not installed")]
    Missing {
        program: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} failed on {path}: {stderr}")]
    Tool {
        program: &'static str,
        path: PathBuf,
        stderr: String,
    },
    #[error("{path} is a directory or a device, not a file den can write")]
    BadOutput { path: PathBuf },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Diagnose for SqshError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            SqshError::Read { .. } | SqshError::NotFile { .. } => {
                "name a .sqsh file made by `den image squash IMAGE -o FILE.sqsh`".into()
            }
            SqshError::Corrupt { .. } | SqshError::Truncated { .. } => {
                "the file is damaged or was not fully copied: copy it again, or make it again with \
                 `den image squash IMAGE -o FILE.sqsh`"
                    .into()
            }
            SqshError::NoImageJson { .. } | SqshError::NoRootfs { .. } => {
                "den runs .sqsh files made by `den image squash`; make one with `den image squash IMAGE -o FILE.sqsh`".into()
            }
            SqshError::Missing { program, .. } => format!(
                "install {} (package {})",
                program,
                if *program == "squashfuse" { "squashfuse" } else { "squashfs-tools" }
            ),
            SqshError::Tool { .. } => {
                "the message is the tool's own: check the file, its directory and the free space".into()
            }
            SqshError::BadOutput { .. } => "give -o a file name, e.g. -o image.sqsh".into(),
            SqshError::Write { .. } => "check that the output's directory exists and is writable".into(),
        })
    }
}

/// The fields of a SquashFS 4.0 superblock den checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Superblock {
    pub inodes: u32,
    pub block_size: u32,
    pub compressor: u16,
    pub bytes_used: u64,
}

/// Parse and check a superblock read from a file of `len` bytes; the reason when it is bad,
/// `Err(None)` when the file is truncated.
pub fn parse_superblock(b: &[u8; SUPERBLOCK_LEN], len: u64) -> Result<Superblock, Option<String>> {
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    let u64_at = |o: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[o..o + 8]);
        u64::from_le_bytes(a)
    };
    if u32_at(0) != MAGIC {
        return Err(Some("bad magic (not \"hsqs\")".into()));
    }
    let (major, minor) = (u16_at(28), u16_at(30));
    if (major, minor) != (4, 0) {
        return Err(Some(format!("version {major}.{minor}, den reads 4.0")));
    }
    let block_size = u32_at(12);
    let block_log = u16_at(22);
    if !(12..=20).contains(&block_log) || block_size != 1 << block_log {
        return Err(Some(format!(
            "block size {block_size} (log {block_log}) is not a power of two from 4 KiB to 1 MiB"
        )));
    }
    let compressor = u16_at(20);
    if !(1..=6).contains(&compressor) {
        return Err(Some(format!("unknown compressor {compressor}")));
    }
    let bytes_used = u64_at(40);
    if bytes_used < SUPERBLOCK_LEN as u64 {
        return Err(Some(format!("bytes_used {bytes_used} is too small")));
    }
    // id, inode and directory tables must be there; xattr, fragment and export may be absent.
    for (name, off, optional) in [
        ("id table", 48, false),
        ("xattr table", 56, true),
        ("inode table", 64, false),
        ("directory table", 72, false),
        ("fragment table", 80, true),
        ("export table", 88, true),
    ] {
        let at = u64_at(off);
        if optional && at == ABSENT {
            continue;
        }
        if at < SUPERBLOCK_LEN as u64 || at >= bytes_used {
            return Err(Some(format!("{name} at {at} is outside the image")));
        }
    }
    if bytes_used > len {
        return Err(None);
    }
    Ok(Superblock {
        inodes: u32_at(4),
        block_size,
        compressor,
        bytes_used,
    })
}

/// Check that `path` is a regular file holding a sound SquashFS 4.0 superblock whose image fits
/// in the file. Reads 96 bytes; mounts and runs nothing.
pub fn check(path: &Path) -> Result<Superblock, SqshError> {
    let read = |source| SqshError::Read {
        path: path.into(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read)?;
    if !meta.is_file() {
        return Err(SqshError::NotFile { path: path.into() });
    }
    let mut f = std::fs::File::open(path).map_err(read)?;
    let len = f.metadata().map_err(read)?.len();
    let mut b = [0u8; SUPERBLOCK_LEN];
    if len < SUPERBLOCK_LEN as u64 {
        return Err(SqshError::Truncated {
            path: path.into(),
            used: SUPERBLOCK_LEN as u64,
            len,
        });
    }
    f.read_exact(&mut b).map_err(read)?;
    match parse_superblock(&b, len) {
        Ok(s) => Ok(s),
        Err(Some(reason)) => Err(SqshError::Corrupt {
            path: path.into(),
            reason,
        }),
        Err(None) => Err(SqshError::Truncated {
            path: path.into(),
            used: u64::from_le_bytes(b[40..48].try_into().unwrap_or_default()),
            len,
        }),
    }
}

/// Whether `run`'s image argument names a single-file image rather than a store image: a path
/// (it has a `/`, or ends in `.sqsh`) to an existing file. A name such as `app.sqsh` with no
/// such file stays a reference.
pub fn is_image_file(arg: &str) -> bool {
    (arg.contains('/') || arg.ends_with(".sqsh"))
        && (arg.starts_with('/') || arg.starts_with('.') || arg.ends_with(".sqsh"))
        && std::fs::metadata(arg).is_ok_and(|m| m.is_file())
}

/// `image.json`: what the file says about the image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageJson {
    /// [`FORMAT`].
    pub format: String,
    /// The name the image had in the store (`busybox:latest`), or "" for an id.
    #[serde(default)]
    pub name: String,
    /// The image id it was made from (`sha256:...`).
    pub source: String,
    pub created: chrono::DateTime<chrono::Utc>,
    /// The OCI image configuration, as the store had it.
    pub config: serde_json::Value,
}

impl ImageJson {
    /// Parse `image.json`'s bytes (already capped).
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<ImageJson, SqshError> {
        let bad = |reason: String| SqshError::NoImageJson {
            path: path.into(),
            reason,
        };
        let j: ImageJson = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if j.format != FORMAT {
            return Err(bad(format!("format {:?}, den reads {FORMAT:?}", j.format)));
        }
        if !j.config.is_object() {
            return Err(bad("its config is not an object".into()));
        }
        Ok(j)
    }

    /// The configuration as the OCI type.
    pub fn image_config(
        &self,
        path: &Path,
    ) -> Result<oci_spec::image::ImageConfiguration, SqshError> {
        serde_json::from_value(self.config.clone()).map_err(|e| SqshError::NoImageJson {
            path: path.into(),
            reason: e.to_string(),
        })
    }
}

/// Read `image.json` out of the checked file `path` with `unsquashfs -cat` (see the module doc
/// for why), at most [`MAX_IMAGE_JSON`] bytes.
pub fn read_image_json(path: &Path) -> Result<ImageJson, SqshError> {
    check(path)?;
    let mut child = std::process::Command::new("unsquashfs")
        .arg("-cat")
        .arg(path)
        .arg("image.json")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|source| SqshError::Missing {
            program: "unsquashfs",
            source,
        })?;
    let mut bytes = Vec::new();
    let read = child
        .stdout
        .take()
        .map(|o| o.take(MAX_IMAGE_JSON + 1).read_to_end(&mut bytes));
    let too_big = bytes.len() as u64 > MAX_IMAGE_JSON;
    if too_big {
        let _ = child.kill();
    }
    let out = child.wait_with_output().map_err(|source| SqshError::Read {
        path: path.into(),
        source,
    })?;
    if too_big {
        return Err(SqshError::NoImageJson {
            path: path.into(),
            reason: format!("image.json is larger than {MAX_IMAGE_JSON} bytes"),
        });
    }
    if let Some(Err(source)) = read {
        return Err(SqshError::Read {
            path: path.into(),
            source,
        });
    }
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(SqshError::NoImageJson {
            path: path.into(),
            reason: stderr
                .lines()
                .last()
                .unwrap_or("unsquashfs failed")
                .trim()
                .to_string(),
        });
    }
    ImageJson::parse(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A superblock as mksquashfs 4.5 writes one for a small image.
    fn good() -> [u8; SUPERBLOCK_LEN] {
        let mut b = [0u8; SUPERBLOCK_LEN];
        b[0..4].copy_from_slice(b"hsqs");
        b[4..8].copy_from_slice(&5u32.to_le_bytes());
        b[12..16].copy_from_slice(&131072u32.to_le_bytes());
        b[20..22].copy_from_slice(&6u16.to_le_bytes());
        b[22..24].copy_from_slice(&17u16.to_le_bytes());
        b[28..30].copy_from_slice(&4u16.to_le_bytes());
        b[40..48].copy_from_slice(&1000u64.to_le_bytes());
        for (off, v) in [
            (48, 990u64),
            (56, u64::MAX),
            (64, 100),
            (72, 400),
            (80, 900),
            (88, 980),
        ] {
            b[off..off + 8].copy_from_slice(&v.to_le_bytes());
        }
        b
    }

    #[test]
    fn a_sound_superblock_parses() {
        let s = parse_superblock(&good(), 4096).unwrap();
        assert_eq!(s.bytes_used, 1000);
        assert_eq!(s.block_size, 131072);
        assert_eq!(s.compressor, 6);
    }

    #[test]
    fn damage_is_named() {
        let cases: Vec<(usize, Vec<u8>, &str)> = vec![
            (0, b"hsqr".to_vec(), "magic"),
            (28, 3u16.to_le_bytes().to_vec(), "version 3.0"),
            (22, 16u16.to_le_bytes().to_vec(), "block size"),
            (20, 9u16.to_le_bytes().to_vec(), "compressor 9"),
            (64, 5000u64.to_le_bytes().to_vec(), "inode table"),
            (40, 10u64.to_le_bytes().to_vec(), "too small"),
        ];
        for (off, bytes, want) in cases {
            let mut b = good();
            b[off..off + bytes.len()].copy_from_slice(&bytes);
            let why = parse_superblock(&b, 4096).unwrap_err().unwrap();
            assert!(why.contains(want), "{off}: {why}");
        }
    }

    #[test]
    fn a_short_file_is_truncated() {
        assert_eq!(parse_superblock(&good(), 999), Err(None));
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("x.sqsh");
        let mut b = good().to_vec();
        b.resize(500, 0);
        std::fs::write(&p, &b).unwrap();
        let e = check(&p).unwrap_err();
        assert!(
            matches!(
                e,
                SqshError::Truncated {
                    used: 1000,
                    len: 500,
                    ..
                }
            ),
            "{e}"
        );
        std::fs::write(&p, b"hsqs").unwrap();
        assert!(matches!(
            check(&p).unwrap_err(),
            SqshError::Truncated { .. }
        ));
        assert!(matches!(
            check(t.path()).unwrap_err(),
            SqshError::NotFile { .. }
        ));
    }

    #[test]
    fn image_json_is_checked() {
        let p = Path::new("x.sqsh");
        let ok = br#"{"format":"den.sqsh.v1","name":"a:1","source":"sha256:00","created":"2026-01-01T00:00:00Z","config":{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}}"#;
        let j = ImageJson::parse(p, ok).unwrap();
        assert_eq!(j.name, "a:1");
        assert!(j.image_config(p).is_ok());
        let other = String::from_utf8_lossy(ok).replace("den.sqsh.v1", "x");
        assert!(ImageJson::parse(p, other.as_bytes()).is_err());
        assert!(ImageJson::parse(p, b"[]").is_err());
    }

    #[test]
    fn run_arguments_that_name_files() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("a.sqsh");
        std::fs::write(&f, b"x").unwrap();
        assert!(is_image_file(f.to_str().unwrap()));
        assert!(!is_image_file(t.path().to_str().unwrap()));
        assert!(!is_image_file("busybox"));
        assert!(!is_image_file("localhost:5000/x/y"));
        assert!(!is_image_file("nonexistent.sqsh"));
    }
}
