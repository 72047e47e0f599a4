//! Applying a layer tar to a directory: whiteouts, links, ownership, and path safety.
//!
//! Entry point: [`unpack`]. The tar format itself (ustar, GNU and PAX long names, PAX xattrs) is
//! parsed by the `tar` crate; what happens on disk is written here because no crate does what a
//! container layer needs:
//!
//! * **Overlay's format on disk.** An OCI whiteout `.wh.NAME` becomes a 0/0 character device
//!   `NAME` and `.wh..wh..opq` sets `user.overlay.opaque=y` on its directory: what kernel overlayfs
//!   (with `userxattr`, inside a user namespace) and fuse-overlayfs read, so an unpacked layer is
//!   used as a lower directory as it is. Creating a 0/0 device needs no privilege since Linux 5.8.
//! * **Nothing lands outside the layer directory.** Entry paths are cleaned lexically and a path
//!   that climbs above the root is refused. Parent directories are resolved *in scope*, the way the
//!   container will see them: a symlink in the path is followed with the layer directory as `/`
//!   (an absolute target or `..` never leaves it). A symlink whose relative target climbs above the
//!   root, and a hard link to anything outside the layer, are refused, as docker refuses them.
//!   The final component is never followed: an existing node there is replaced.
//! * **Ownership.** With a subordinate id range (den runs this inside its user namespace) owners
//!   are kept as in the image; without one everything belongs to the user, and an entry's owner
//!   other than root is recorded beside it ([`crate::fs::owner`]). Device nodes cannot be
//!   created in a user namespace and are skipped, as rootless docker and podman skip them.
//! * **Speed.** Decompression and hashing run on one thread and the file writes on another
//!   ([`spawn_reader`]); no fsync per file (the caller syncs the filesystem once).

use std::io::Read;
use std::path::Path;

use crate::digest::Digest;
use crate::error::Diagnose;
use crate::image::Compression;

mod apply;
mod nodes;
mod paths;
mod reader;
pub mod scope;
mod whiteout;

pub use apply::{apply, apply_whole};
pub use paths::{clean, symlink_target_inside};
pub use reader::{ChannelReader, HashHandle, spawn_reader};
pub use whiteout::{OPAQUE_MARKERS, OPAQUE_XATTR, is_opaque, is_whiteout};

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("layer entry {path:?} would land outside the layer directory")]
    PathEscape { path: String },
    #[error("layer entry {path:?} links to {target:?}, outside the layer directory")]
    LinkEscape { path: String, target: String },
    #[error("layer entry {path:?} is a hard link to {target:?}, which the layer does not contain")]
    LinkMissing { path: String, target: String },
    #[error("layer entry {path:?} is a hard link to the directory {target:?}")]
    LinkToDir { path: String, target: String },
    #[error("layer entry {path:?} is owned by {uid}:{gid}, outside the ids den can map")]
    OwnerOutOfRange { path: String, uid: u64, gid: u64 },
    #[error("layer entry {path:?} cannot be written")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("layer is not a valid tar archive")]
    Tar(#[source] std::io::Error),
    #[error("layer does not match its diff id {expected} (got {actual})")]
    DiffIdMismatch { expected: Digest, actual: Digest },
    #[error("too many levels of symbolic links under {path:?}")]
    SymlinkLoop { path: String },
}

impl Diagnose for UnpackError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            UnpackError::PathEscape { .. }
            | UnpackError::LinkEscape { .. }
            | UnpackError::LinkMissing { .. }
            | UnpackError::LinkToDir { .. } => {
                "this layer is malformed or malicious; nothing was stored. Rebuild the image with a \
                 standard tool"
                    .into()
            }
            UnpackError::OwnerOutOfRange { .. } => {
                "give your user a range of 65536 subordinate ids in /etc/subuid and /etc/subgid \
                 (ask an administrator: usermod --add-subuids 100000-165535 USER)"
                    .into()
            }
            UnpackError::Io { source, .. } if source.raw_os_error() == Some(libc::ENOSPC) => {
                "the disk is full: free space, or remove unused images with `den image prune -a`".into()
            }
            UnpackError::Io { source, .. } if source.raw_os_error() == Some(libc::ENAMETOOLONG) => {
                "the layer holds a path longer than this system allows (4096 bytes, 255 a name); \
                 nothing was stored. Rebuild the image with shorter paths"
                    .into()
            }
            UnpackError::Io { .. } => "check the store's filesystem; nothing was stored".into(),
            UnpackError::Tar(_) | UnpackError::DiffIdMismatch { .. } => {
                "the layer is damaged; nothing was stored. Pull again, or rebuild the image".into()
            }
            UnpackError::SymlinkLoop { .. } => "the layer's symlinks loop; rebuild the image".into(),
        })
    }
}

pub type Result<T> = std::result::Result<T, UnpackError>;

/// How owners are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owners {
    /// lchown to the ids in the tar (den runs inside its user namespace with a full range).
    Keep,
    /// Leave everything owned by the unpacking user.
    Ignore,
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub owners: Owners,
}

/// What applying a layer's entries found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Bytes of regular-file content.
    pub size: u64,
    pub entries: u64,
    /// Device nodes that could not be created in a user namespace.
    pub skipped_devices: u64,
}

impl Counts {
    pub fn with_diff_id(self, diff_id: Digest) -> Stats {
        Stats {
            diff_id,
            size: self.size,
            entries: self.entries,
            skipped_devices: self.skipped_devices,
        }
    }
}

/// What unpacking a layer found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// The digest of the uncompressed tar stream.
    pub diff_id: Digest,
    /// Bytes of regular-file content.
    pub size: u64,
    pub entries: u64,
    /// Device nodes that could not be created in a user namespace.
    pub skipped_devices: u64,
}

/// Decompress `blob` (compression sniffed from its first bytes), apply it to `dest` (an empty
/// directory) and return its stats. When `expected_diff_id` is given, a mismatch is an error.
/// Streams: see [`unpack_file`] for the faster path from a file.
pub fn unpack_blob(
    blob: impl Read + Send + 'static,
    dest: &Path,
    opts: Options,
    expected_diff_id: Option<&Digest>,
) -> Result<Stats> {
    let reader = spawn_reader(blob)?;
    let hashed = reader.hasher.clone();
    let counts = apply(reader, dest, opts)?;
    check_diff_id(counts.with_diff_id(hashed.finish()?), expected_diff_id)
}

fn check_diff_id(stats: Stats, expected: Option<&Digest>) -> Result<Stats> {
    match expected {
        Some(e) if *e != stats.diff_id => Err(UnpackError::DiffIdMismatch {
            expected: e.clone(),
            actual: stats.diff_id,
        }),
        _ => Ok(stats),
    }
}

/// The largest layer (compressed plus uncompressed bytes) inflated whole in memory.
const WHOLE_MAX: u64 = 1 << 30;
/// The most a layer inflated whole may grow (uncompressed over compressed). Real layers grow
/// 2-5 times; a gzip bomb grows a thousand times, and streams through a few MiB of buffers
/// instead of asking for the size its trailer claims.
const WHOLE_MAX_RATIO: u64 = 16;

/// Apply the layer blob in the file `blob` to `dest`.
///
/// A gzip layer that fits in memory is inflated in one call to libdeflate (twice zlib's speed),
/// then hashed on one thread while its entries are written on another. Anything else (zstd,
/// plain tar, very large or multi-member gzip) streams through [`unpack_blob`].
pub fn unpack_file(
    blob: &Path,
    dest: &Path,
    opts: Options,
    expected_diff_id: Option<&Digest>,
) -> Result<Stats> {
    let io = |e| UnpackError::Io {
        path: blob.display().to_string(),
        source: e,
    };
    let mut f = std::fs::File::open(blob).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    let mut head = [0u8; 4];
    let n = f.read(&mut head).map_err(io)?;
    if Compression::sniff(&head[..n]) == Compression::Gzip && len >= 18 {
        use std::io::{Seek, SeekFrom};
        let mut tail = [0u8; 4];
        f.seek(SeekFrom::End(-4))
            .and_then(|_| f.read_exact(&mut tail))
            .map_err(io)?;
        // ISIZE: the uncompressed size modulo 2^32 (exact below 4 GiB).
        let isize = u32::from_le_bytes(tail) as u64;
        if len + isize <= WHOLE_MAX.min(available_memory() / 4)
            && isize <= len.saturating_mul(WHOLE_MAX_RATIO)
        {
            let compressed = std::fs::read(blob).map_err(io)?;
            let mut out = BufferPool::take(isize as usize);
            let inflated = libdeflater::Decompressor::new()
                .gzip_decompress(&compressed, &mut out[..isize as usize]);
            drop(compressed);
            let result = match inflated {
                Ok(n) if n as u64 == isize => {
                    Some(unpack_buffer(&out[..n], dest, opts, expected_diff_id))
                }
                _ => None,
            };
            BufferPool::give(out);
            match result {
                // A gzip stream of several members decodes its first one only and fails the
                // diff id check: start over, streaming.
                Some(Err(UnpackError::DiffIdMismatch { .. })) => clear_dir(dest).map_err(io)?,
                Some(other) => return other,
                None => {}
            }
            tracing::debug!(blob = %blob.display(), "gzip layer not decoded whole; streaming it");
        }
    }
    f.seek_to_start().map_err(io)?;
    unpack_blob(f, dest, opts, expected_diff_id)
}

trait SeekStart {
    fn seek_to_start(&mut self) -> std::io::Result<()>;
}
impl SeekStart for std::fs::File {
    fn seek_to_start(&mut self) -> std::io::Result<()> {
        use std::io::Seek;
        self.seek(std::io::SeekFrom::Start(0)).map(|_| ())
    }
}

/// Inflate buffers kept for the next layer of the same pull: fresh memory costs a page fault per
/// 4 KiB, and libdeflate writes every byte of the buffer it is given, so reuse is safe.
struct BufferPool;

static POOL: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());

impl BufferPool {
    /// A buffer of at least `len` bytes (its contents are stale).
    fn take(len: usize) -> Vec<u8> {
        let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
        match pool.iter().position(|b| b.len() >= len) {
            Some(i) => pool.swap_remove(i),
            None => vec![0u8; len],
        }
    }

    fn give(buf: Vec<u8>) {
        let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
        pool.push(buf);
        // Keep the largest few.
        pool.sort_by_key(|b| std::cmp::Reverse(b.len()));
        pool.truncate(2);
    }
}

/// Hash an uncompressed layer on one thread while its entries are applied on this one.
fn unpack_buffer(
    tar: &[u8],
    dest: &Path,
    opts: Options,
    expected: Option<&Digest>,
) -> Result<Stats> {
    let (stats, digest) = std::thread::scope(|s| {
        let hasher = s.spawn(|| Digest::of(tar));
        let stats = apply_whole(tar, dest, opts);
        (stats, hasher.join().expect("hashing does not panic"))
    });
    check_diff_id(stats?.with_diff_id(digest), expected)
}

fn clear_dir(dir: &Path) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        crate::fs::remove_tree(&e?.path())?;
    }
    Ok(())
}

/// MemAvailable from /proc/meminfo, in bytes (a generous guess if it cannot be read).
fn available_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().find_map(|l| {
                l.strip_prefix("MemAvailable:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(4 << 30)
}

#[cfg(test)]
mod tests;
