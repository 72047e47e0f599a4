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
//!   are kept as in the image; without one everything belongs to the user. Device nodes cannot be
//!   created in a user namespace and are skipped, as rootless docker and podman skip them.
//! * **Speed.** Decompression and hashing run on one thread and the file writes on another
//!   ([`spawn_reader`]); no fsync per file (the caller syncs the filesystem once).

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{Mode, SFlag};

use crate::digest::Digest;
use crate::error::Diagnose;
use crate::image::Compression;

pub mod scope;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// The xattr kernel overlayfs reads with `userxattr`, and fuse-overlayfs reads too.
pub const OPAQUE_XATTR: &str = "user.overlay.opaque";

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

// -------------------------------------------------------------------------------------------
// The decompressing, hashing reader thread.

/// The uncompressed stream, produced by a thread that decompresses and hashes, so that the
/// file writes on the caller's thread overlap with inflating on another core. Buffers go back
/// to the producer once read, so a layer costs a few megabytes of memory however large it is.
pub struct ChannelReader {
    rx: std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    back: std::sync::mpsc::SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    hasher: HashHandle,
}

/// The digest of everything the reader thread produced, available once it is done.
#[derive(Clone)]
pub struct HashHandle(std::sync::Arc<std::sync::Mutex<Option<std::io::Result<Digest>>>>);

impl HashHandle {
    fn finish(&self) -> Result<Digest> {
        // The producer sets this before it drops its sender, and the consumer reads to EOF first.
        match self.0.lock().expect("hash lock").take() {
            Some(Ok(d)) => Ok(d),
            Some(Err(e)) => Err(UnpackError::Tar(e)),
            None => Err(UnpackError::Tar(std::io::Error::other(
                "layer stream ended early",
            ))),
        }
    }
}

const CHUNK: usize = 1 << 20;
const IN_FLIGHT: usize = 4;

/// Start the reader thread over a compressed (or plain) tar blob.
pub fn spawn_reader(mut blob: impl Read + Send + 'static) -> Result<ChannelReader> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<std::io::Result<Vec<u8>>>(IN_FLIGHT);
    let (back_tx, back_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT + 2);
    let handle = HashHandle(Default::default());
    let out = handle.clone();
    std::thread::Builder::new()
        .name("den-inflate".into())
        .spawn(move || {
            let res = (|| -> std::io::Result<Digest> {
                let mut head = [0u8; 4];
                let mut n = 0;
                while n < 4 {
                    let r = blob.read(&mut head[n..])?;
                    if r == 0 {
                        break;
                    }
                    n += r;
                }
                let chained = std::io::Cursor::new(head[..n].to_vec()).chain(blob);
                let mut inner: Box<dyn Read> = match Compression::sniff(&head[..n]) {
                    Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(
                        std::io::BufReader::with_capacity(CHUNK, chained),
                    )),
                    Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(chained)?),
                    Compression::None => Box::new(chained),
                };
                let mut hasher = crate::digest::Hasher::new();
                loop {
                    let mut buf = back_rx.try_recv().unwrap_or_else(|_| vec![0u8; CHUNK]);
                    buf.resize(CHUNK, 0);
                    let mut filled = 0;
                    while filled < CHUNK {
                        match inner.read(&mut buf[filled..]) {
                            Ok(0) => break,
                            Ok(k) => filled += k,
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                            Err(e) => return Err(e),
                        }
                    }
                    if filled == 0 {
                        break;
                    }
                    buf.truncate(filled);
                    hasher.update(&buf);
                    if tx.send(Ok(buf)).is_err() {
                        // The consumer gave up (an error); stop quietly.
                        return Err(std::io::Error::other("unpack stopped"));
                    }
                }
                Ok(hasher.finish())
            })();
            let err_copy = res
                .as_ref()
                .err()
                .map(|e| std::io::Error::new(e.kind(), e.to_string()));
            *out.0.lock().expect("hash lock") = Some(res);
            if let Some(e) = err_copy {
                let _ = tx.send(Err(e));
            }
        })
        .map_err(|e| UnpackError::Io {
            path: "<thread>".into(),
            source: e,
        })?;
    Ok(ChannelReader {
        rx,
        back: back_tx,
        cur: Vec::new(),
        pos: 0,
        hasher: handle,
    })
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    let spent = std::mem::replace(&mut self.cur, chunk);
                    if spent.capacity() > 0 {
                        let _ = self.back.try_send(spent);
                    }
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

// -------------------------------------------------------------------------------------------
// Applying entries.

/// Clean a tar path lexically: drop `.` and empty parts, apply `..`, refuse to climb above root.
/// Returns `None` for a path that escapes.
pub fn clean(path: &[u8]) -> Option<Vec<OsString>> {
    let mut out: Vec<OsString> = Vec::new();
    for part in path.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                out.pop()?;
            }
            p => out.push(OsString::from_vec(p.to_vec())),
        }
    }
    Some(out)
}

/// Whether a symlink at `link` (cleaned components) with `target` stays inside the root when
/// resolved lexically from the link's directory. Absolute targets are rooted at the container's
/// root and always stay inside.
pub fn symlink_target_inside(link: &[OsString], target: &[u8]) -> bool {
    if target.starts_with(b"/") {
        return true;
    }
    let mut depth = link.len().saturating_sub(1) as isize;
    for part in target.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => depth += 1,
        }
    }
    true
}

struct Applier<'a> {
    root: &'a Path,
    /// The whole uncompressed layer, when it is in memory (see [`apply_whole`]).
    whole: Option<&'a [u8]>,
    opts: Options,
    /// Resolved real directories, by cleaned path; cleared whenever a node is replaced.
    dirs: HashMap<Vec<u8>, PathBuf>,
    /// Directories whose mtime is set at the end (creating children changes it).
    dir_times: Vec<(PathBuf, i64)>,
    stats: Counts,
    buf: Vec<u8>,
}

/// The key of [`Applier::dirs`] for cleaned components: their bytes joined by `/` (one
/// allocation, where a list of components would make one per level of a deep tree).
fn dir_key(parts: &[OsString]) -> Vec<u8> {
    let mut key = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for p in parts {
        key.extend_from_slice(p.as_bytes());
        key.push(b'/');
    }
    key
}

/// The error for a failed write of the entry at `parts` (built only when there is one).
fn io_err(parts: &[OsString], source: std::io::Error) -> UnpackError {
    UnpackError::Io {
        path: show_path(parts),
        source,
    }
}

/// An entry's path for a message (see [`shown`]): a hostile layer's path can be many kilobytes.
fn show_path(parts: &[OsString]) -> String {
    let joined: Vec<_> = parts
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    shown(joined.join("/"))
}

/// A path or link target from a layer, cut in the middle to at most [`SHOWN`] characters.
fn shown(full: String) -> String {
    let n = full.chars().count();
    if n <= SHOWN {
        return full;
    }
    let head: String = full.chars().take(SHOWN / 2).collect();
    let tail: String = full.chars().skip(n - SHOWN / 2).collect();
    format!("{head}…{tail}")
}

/// The most characters of a path [`show_path`] shows.
const SHOWN: usize = 200;

/// Apply the tar stream `reader` to the directory `root`.
pub fn apply(reader: impl Read, root: &Path, opts: Options) -> Result<Counts> {
    let mut archive = tar::Archive::new(reader);
    let mut a = Applier {
        root,
        whole: None,
        opts,
        dirs: HashMap::new(),
        dir_times: Vec::new(),
        stats: Counts::default(),
        buf: vec![0u8; 256 * 1024],
    };
    let entries = archive.entries().map_err(UnpackError::Tar)?;
    for entry in entries {
        let mut entry = entry.map_err(UnpackError::Tar)?;
        a.entry(&mut entry)?;
    }
    // Read what follows the end-of-archive blocks so the diff id covers the whole stream.
    let mut rest = archive.into_inner();
    std::io::copy(&mut rest, &mut std::io::sink()).map_err(UnpackError::Tar)?;
    Ok(a.finish())
}

/// Apply a whole uncompressed layer held in memory: entries are found by seeking and file
/// contents written straight from `tar`.
pub fn apply_whole(tar: &[u8], root: &Path, opts: Options) -> Result<Counts> {
    let mut archive = tar::Archive::new(std::io::Cursor::new(tar));
    let mut a = Applier {
        root,
        whole: Some(tar),
        opts,
        dirs: HashMap::new(),
        dir_times: Vec::new(),
        stats: Counts::default(),
        buf: vec![0u8; 64 * 1024],
    };
    for entry in archive.entries_with_seek().map_err(UnpackError::Tar)? {
        let mut entry = entry.map_err(UnpackError::Tar)?;
        a.entry(&mut entry)?;
    }
    Ok(a.finish())
}

impl Applier<'_> {
    /// Set directory times last: creating their children changed them.
    fn finish(self) -> Counts {
        for (dir, mtime) in self.dir_times.iter().rev() {
            set_times(dir, *mtime);
        }
        self.stats
    }
}

fn set_times(path: &Path, mtime: i64) {
    let t = nix::sys::time::TimeSpec::new(mtime, 0);
    let _ = nix::sys::stat::utimensat(
        None,
        path,
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    );
}

impl Applier<'_> {
    /// The real directory for `parts` inside the root, following symlinks in scope and creating
    /// missing directories (0755, owned by the unpacking user) on the way.
    fn resolve_dir(&mut self, parts: &[OsString]) -> Result<PathBuf> {
        let key = dir_key(parts);
        if let Some(p) = self.dirs.get(&key) {
            return Ok(p.clone());
        }
        // Start from the parent's resolution when it is known, so that a deep tree costs one
        // lookup per level rather than a walk from the root (cubic in the depth: a layer of
        // 1,000 nested directories took seconds).
        let (mut cur, todo) = match parts.split_last() {
            Some((last, parent)) if !parent.is_empty() => match self.dirs.get(&dir_key(parent)) {
                Some(real) => (real.clone(), std::slice::from_ref(last)),
                None => (self.root.to_path_buf(), parts),
            },
            _ => (self.root.to_path_buf(), parts),
        };
        let mut queue: std::collections::VecDeque<OsString> = todo.iter().cloned().collect();
        let mut hops = 0;
        while let Some(c) = queue.pop_front() {
            if c == ".." {
                // `cur` is the root and plain components below it: never above the root.
                if cur.as_path() != self.root {
                    cur.pop();
                }
                continue;
            }
            if c.is_empty() || c == "." {
                continue;
            }
            let p = cur.join(&c);
            match std::fs::symlink_metadata(&p) {
                Ok(md) if md.is_dir() => cur = p,
                Ok(md) if md.file_type().is_symlink() => {
                    hops += 1;
                    if hops > 40 {
                        return Err(UnpackError::SymlinkLoop {
                            path: show_path(parts),
                        });
                    }
                    let target = std::fs::read_link(&p).map_err(|e| io_err(parts, e))?;
                    let tb = target.as_os_str().as_bytes();
                    if tb.starts_with(b"/") {
                        cur = self.root.to_path_buf();
                    }
                    let mut pre: Vec<OsString> = tb
                        .split(|b| *b == b'/')
                        .filter(|s| !s.is_empty())
                        .map(|s| OsString::from_vec(s.to_vec()))
                        .collect();
                    pre.extend(queue.drain(..));
                    queue = pre.into();
                }
                Ok(_) => {
                    return Err(UnpackError::Io {
                        path: show_path(parts),
                        source: std::io::Error::from_raw_os_error(libc::ENOTDIR),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::create_dir(&p).map_err(|e| io_err(parts, e))?;
                    cur = p;
                }
                Err(e) => return Err(io_err(parts, e)),
            }
        }
        self.dirs.insert(key, cur.clone());
        Ok(cur)
    }

    /// Create a node at `path` with `op`; if something is there already, remove it and retry
    /// (a later entry replaces an earlier one). Trying first saves an lstat per entry.
    fn create<T>(
        &mut self,
        path: &Path,
        parts: &[OsString],
        op: impl Fn(&Path) -> std::io::Result<T>,
    ) -> Result<T> {
        match op(path) {
            Ok(v) => Ok(v),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                self.clear(path, false, parts)?;
                op(path).map_err(|e| io_err(parts, e))
            }
            Err(e) => Err(io_err(parts, e)),
        }
    }

    /// Remove whatever is at `path` (not following a symlink), unless it is a directory and
    /// `keep_dir` is set. Returns whether a directory was kept.
    fn clear(&mut self, path: &Path, keep_dir: bool, parts: &[OsString]) -> Result<bool> {
        match std::fs::symlink_metadata(path) {
            Ok(md) if md.is_dir() && keep_dir => Ok(true),
            Ok(md) => {
                if md.is_dir() {
                    crate::fs::remove_tree(path).map_err(|e| io_err(parts, e))?;
                } else {
                    std::fs::remove_file(path).map_err(|e| io_err(parts, e))?;
                }
                self.dirs.clear();
                Ok(false)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(parts, e)),
        }
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        self.stats.entries += 1;
        let raw = entry.path_bytes().into_owned();
        let Some(parts) = clean(&raw) else {
            return Err(UnpackError::PathEscape {
                path: shown(String::from_utf8_lossy(&raw).into_owned()),
            });
        };
        let Some((name, parent_parts)) = parts.split_last() else {
            return Ok(()); // the root directory itself
        };
        let parent = self.resolve_dir(parent_parts)?;
        let name_b = name.as_bytes();

        // Whiteouts.
        if name_b == OPAQUE_MARKER.as_bytes() {
            crate::sys::lsetxattr(&parent, OPAQUE_XATTR, b"y").map_err(|e| UnpackError::Io {
                path: show_path(&parts),
                source: e.source,
            })?;
            return Ok(());
        }
        if let Some(hidden) = name_b.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            if hidden.starts_with(WHITEOUT_PREFIX.as_bytes()) {
                return Ok(()); // aufs bookkeeping (.wh..wh.plnk and the like)
            }
            // `.wh.`, `.wh..` and `.wh...` would hide the directory itself or its parent.
            if matches!(hidden, b"" | b"." | b"..") {
                return Err(UnpackError::PathEscape {
                    path: show_path(&parts),
                });
            }
            let target = parent.join(OsStr::from_bytes(hidden));
            self.clear(&target, false, &parts)?;
            return self.whiteout(&target, &parts);
        }

        let path = parent.join(name);
        let header = entry.header();
        let kind = header.entry_type();
        let mode = header.mode().map_err(UnpackError::Tar)? & 0o7777;
        let (uid, gid) = (
            header.uid().map_err(UnpackError::Tar)?,
            header.gid().map_err(UnpackError::Tar)?,
        );
        let mtime = header.mtime().unwrap_or(0) as i64;

        match kind {
            tar::EntryType::Directory => {
                match std::fs::create_dir(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        if !self.clear(&path, true, &parts)? {
                            std::fs::create_dir(&path).map_err(|e| io_err(&parts, e))?;
                        }
                    }
                    Err(e) => return Err(io_err(&parts, e)),
                }
                self.dirs.remove(&dir_key(&parts));
                self.owner(&path, uid, gid, &parts)?;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                    .map_err(|e| io_err(&parts, e))?;
                self.xattrs(entry, &path, &parts)?;
                self.dir_times.push((path, mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let open = |p: &Path| {
                    std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                        .mode(0o600)
                        .open(p)
                };
                let mut f = self.create(&path, &parts, open)?;
                let mut written = 0u64;
                // A layer inflated whole: write the file's bytes from the buffer, no copy.
                let whole = self.whole.filter(|_| kind != tar::EntryType::GNUSparse);
                if let Some(buf) = whole {
                    let start = entry.raw_file_position() as usize;
                    let end = start + entry.size() as usize;
                    let data = buf.get(start..end).ok_or_else(|| {
                        UnpackError::Tar(std::io::Error::other("entry beyond the archive"))
                    })?;
                    f.write_all(data).map_err(|e| io_err(&parts, e))?;
                    written = data.len() as u64;
                } else {
                    // Runs of zeros become holes, as `tar --sparse` and `cp` make them: a sparse
                    // entry (or a file of zeros) declaring gigabytes in a few bytes of layer
                    // must not fill the disk with them.
                    let mut holes = false;
                    loop {
                        let n = match entry.read(&mut self.buf) {
                            Ok(0) => break,
                            Ok(n) => n,
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                            Err(e) => return Err(UnpackError::Tar(e)),
                        };
                        let chunk = &self.buf[..n];
                        if chunk.iter().all(|b| *b == 0) {
                            use std::io::Seek;
                            f.seek(std::io::SeekFrom::Current(n as i64))
                                .map_err(|e| io_err(&parts, e))?;
                            holes = true;
                        } else {
                            f.write_all(chunk).map_err(|e| io_err(&parts, e))?;
                        }
                        written += n as u64;
                    }
                    if holes {
                        f.set_len(written).map_err(|e| io_err(&parts, e))?;
                    }
                }
                self.stats.size += written;
                if self.opts.owners == Owners::Keep {
                    nix::unistd::fchown(
                        std::os::fd::AsRawFd::as_raw_fd(&f),
                        Some(uid_of(uid)),
                        Some(gid_of(gid)),
                    )
                    .map_err(|e| self.owner_err(e, &parts, uid, gid))?;
                }
                // After chown, which clears set-id bits.
                f.set_permissions(std::fs::Permissions::from_mode(mode))
                    .map_err(|e| io_err(&parts, e))?;
                let t = nix::sys::time::TimeSpec::new(mtime, 0);
                let _ = nix::sys::stat::futimens(std::os::fd::AsRawFd::as_raw_fd(&f), &t, &t);
                drop(f);
                self.xattrs(entry, &path, &parts)?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|c| c.into_owned())
                    .unwrap_or_default();
                if !symlink_target_inside(&parts, &target) {
                    return Err(UnpackError::LinkEscape {
                        path: show_path(&parts),
                        target: shown(String::from_utf8_lossy(&target).into_owned()),
                    });
                }
                self.create(&path, &parts, |p| {
                    std::os::unix::fs::symlink(OsStr::from_bytes(&target), p)
                })?;
                self.owner(&path, uid, gid, &parts)?;
                set_times(&path, mtime);
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|c| c.into_owned())
                    .unwrap_or_default();
                let escape = || UnpackError::LinkEscape {
                    path: show_path(&parts),
                    target: shown(String::from_utf8_lossy(&target).into_owned()),
                };
                let tparts = clean(&target).ok_or_else(escape)?;
                let (tname, tparent) = tparts.split_last().ok_or_else(escape)?;
                let tdir = self.resolve_dir(tparent)?;
                let src = tdir.join(tname);
                match std::fs::symlink_metadata(&src) {
                    Err(_) => {
                        return Err(UnpackError::LinkMissing {
                            path: show_path(&parts),
                            target: shown(String::from_utf8_lossy(&target).into_owned()),
                        });
                    }
                    // link(2) refuses (EPERM): say it is the layer's fault, not the store's.
                    Ok(md) if md.is_dir() => {
                        return Err(UnpackError::LinkToDir {
                            path: show_path(&parts),
                            target: shown(String::from_utf8_lossy(&target).into_owned()),
                        });
                    }
                    Ok(_) => {}
                }
                if src == path {
                    return Ok(());
                }
                // A symlink's target was checked where the symlink was made; a second name
                // elsewhere gives a relative target another meaning, so it is checked again
                // from here (`deep/.../link -> ../../etc` hard-linked at the top climbs out).
                if let Ok(t) = std::fs::read_link(&src)
                    && !symlink_target_inside(&parts, t.as_os_str().as_bytes())
                {
                    return Err(escape());
                }
                // link(2) does not follow a symlink at `src`: the link is to the node itself.
                self.create(&path, &parts, |p| std::fs::hard_link(&src, p))?;
            }
            tar::EntryType::Fifo => {
                self.clear(&path, false, &parts)?;
                nix::sys::stat::mknod(&path, SFlag::S_IFIFO, Mode::from_bits_truncate(mode), 0)
                    .map_err(|e| UnpackError::Io {
                        path: show_path(&parts),
                        source: e.into(),
                    })?;
                self.owner(&path, uid, gid, &parts)?;
                set_times(&path, mtime);
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                let (major, minor) = (
                    header.device_major().ok().flatten().unwrap_or(0),
                    header.device_minor().ok().flatten().unwrap_or(0),
                );
                if kind == tar::EntryType::Char && major == 0 && minor == 0 {
                    // Already overlay's whiteout format.
                    self.clear(&path, false, &parts)?;
                    return self.whiteout(&path, &parts);
                }
                tracing::debug!(path = %show_path(&parts), "skipping device node: not creatable in a user namespace");
                self.stats.skipped_devices += 1;
            }
            // PAX and GNU long-name headers are consumed by the tar crate; anything else
            // (XGlobalHeader, unknown types) carries no file.
            _ => {}
        }
        Ok(())
    }

    fn whiteout(&mut self, target: &Path, parts: &[OsString]) -> Result<()> {
        nix::sys::stat::mknod(target, SFlag::S_IFCHR, Mode::empty(), 0).map_err(|e| {
            UnpackError::Io {
                path: show_path(parts),
                source: e.into(),
            }
        })
    }

    fn owner(&self, path: &Path, uid: u64, gid: u64, parts: &[OsString]) -> Result<()> {
        if self.opts.owners == Owners::Ignore {
            return Ok(());
        }
        nix::unistd::fchownat(
            None,
            path,
            Some(uid_of(uid)),
            Some(gid_of(gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| self.owner_err(e, parts, uid, gid))
    }

    fn owner_err(
        &self,
        e: nix::errno::Errno,
        parts: &[OsString],
        uid: u64,
        gid: u64,
    ) -> UnpackError {
        if e == nix::errno::Errno::EINVAL {
            UnpackError::OwnerOutOfRange {
                path: show_path(parts),
                uid,
                gid,
            }
        } else {
            UnpackError::Io {
                path: show_path(parts),
                source: e.into(),
            }
        }
    }

    fn xattrs<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        path: &Path,
        parts: &[OsString],
    ) -> Result<()> {
        let Ok(Some(exts)) = entry.pax_extensions() else {
            return Ok(());
        };
        for ext in exts.flatten() {
            let Ok(key) = ext.key() else { continue };
            let Some(name) = key.strip_prefix("SCHILY.xattr.") else {
                continue;
            };
            // trusted.* needs real root; overlay's own markers must not leak from an image.
            if !(name.starts_with("user.") || name == "security.capability")
                || name.starts_with("user.overlay.")
            {
                continue;
            }
            if let Err(e) = crate::sys::lsetxattr(path, name, ext.value_bytes()) {
                // A filesystem without user xattrs, or file capabilities refused: not fatal,
                // as in docker.
                tracing::debug!(path = %show_path(parts), xattr = name, error = %e.source, "xattr not set");
            }
        }
        Ok(())
    }
}

fn uid_of(id: u64) -> nix::unistd::Uid {
    nix::unistd::Uid::from_raw(id as u32)
}
fn gid_of(id: u64) -> nix::unistd::Gid {
    nix::unistd::Gid::from_raw(id as u32)
}

/// Whether a path inside a layer is overlay's whiteout (a 0/0 character device).
pub fn is_whiteout(md: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    md.file_type().is_char_device() && md.rdev() == 0
}

#[cfg(test)]
mod tests;
