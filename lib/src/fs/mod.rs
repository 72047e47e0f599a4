//! Filesystem helpers every seam shares: atomic and private writes, removing a tree, random
//! names, and the one tree copy ([`mod@tree`] walks a source, [`mod@write`] writes what it meets).
//!
//! This seam sits just above [`crate::sys`] and imports nothing else of den, so the store,
//! volumes, unpacking, `cp`, COPY and the storage drivers can all use it. Its functions return
//! plain [`std::io::Error`]s (or [`TreeError`] for a copy); each caller names the failing path in
//! its own seam's error, so messages and hints stay where the user's verb is.
//!
//! **Atomic writes** ([`write_atomic`], [`write_atomic_mode`]): the bytes go to a temporary file
//! beside the target (`.NAME.tmp-PID-RANDOM`, a name the store's sweep recognises by its pid),
//! which is fsynced, renamed over the target, and the directory fsynced: a reader sees the old
//! file or the new one, and a crash leaves at worst a temporary file. The mode is given at
//! creation, so a credential is never readable by others, not even for an instant.
//!
//! **Intended owners** ([`mod@owner`]): in single-uid mode, the owners a file could not be given,
//! kept in an xattr for the layer tars den writes.
//!
//! **Removal** ([`remove_tree`]): image layers and containers' files may hold read-only
//! directories, which `remove_dir_all` cannot empty; the tree is made writable and removed again.
//!
//! **Which filesystem** ([`FsKind`], [`mod@kind`]): NFS, Lustre, GPFS, tmpfs, ... from statfs,
//! and what each means for a store (kernel overlay, locks).

pub mod kind;
pub mod owner;
pub mod tree;
pub mod write;

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

pub use kind::{FsKind, Reach};
pub use tree::{Data, Kind, Links, Meta, Origin, Sink, Top, Walk, walk};
pub use write::{Clash, HostDir, Owners, Place, TreeError, Writer};

/// `n` random bytes as hex: from the kernel, or, should `/dev/urandom` be unreadable, from std's
/// per-process random hash keys mixed with the time and the pid (names, not secrets).
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    let from_kernel = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_ok();
    if !from_kernel {
        use std::hash::{BuildHasher, Hasher};
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        for (i, chunk) in buf.chunks_mut(8).enumerate() {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(nanos);
            h.write_u32(std::process::id());
            h.write_usize(i);
            let bytes = h.finish().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
    hex::encode(buf)
}

/// Write `bytes` to `path`, readable by the user alone, neither atomically nor durably: for
/// files made again on every use (a container's spec).
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)
}

/// Write `bytes` to `path` atomically and durably, readable by the user alone.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_mode(path, bytes, 0o600)
}

/// [`write_atomic`] with the file's mode (0600 for credentials: never readable by others,
/// not even for the instant before a chmod).
pub fn write_atomic_mode(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    replace_file(path, bytes, mode, true)
}

/// Write `bytes` to `path` atomically (a reader sees the old file or the new one, never a
/// torn one, whatever happens to the writer) but not durably: nothing is fsynced, so a power
/// loss may lose the change. For records that need not outlive the machine's next boot (a
/// `--rm` container's).
pub fn write_atomic_volatile(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    replace_file(path, bytes, mode, false)
}

/// Temp file, (fsync,) rename, (fsync the directory).
fn replace_file(path: &Path, bytes: &[u8], mode: u32, durable: bool) -> std::io::Result<()> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(std::io::Error::from_raw_os_error(libc::EISDIR));
    };
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        random_hex(4)
    ));
    let res = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        if !durable {
            return std::fs::rename(&tmp, path);
        }
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // A relative path's parent is "": the working directory.
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        std::fs::File::open(dir)?.sync_all()
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// fsync a directory so that a rename or mkdir in it lasts; best effort.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Sync the filesystem holding `path` (one call instead of an fsync per file).
pub fn sync_fs(path: &Path) -> std::io::Result<()> {
    let f = std::fs::File::open(path)?;
    nix::unistd::syncfs(std::os::fd::AsRawFd::as_raw_fd(&f)).map_err(std::io::Error::from)
}

/// Remove a file or a tree (nothing there is not an error), making read-only directories
/// writable on the way (image layers and containers' files have them).
pub fn remove_tree(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
        Ok(md) if !md.is_dir() => return std::fs::remove_file(path),
        Ok(_) => {}
    }
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(_) => {
            make_writable(path);
            match std::fs::remove_dir_all(path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                r => r,
            }
        }
    }
}

/// Give every directory of the tree at `path` its owner's rwx, best effort (symlinks are not
/// followed).
pub fn make_writable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(md) = std::fs::symlink_metadata(path)
        && md.is_dir()
    {
        let mode = md.permissions().mode() & 0o7777;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode | 0o700));
        if let Ok(rd) = std::fs::read_dir(path) {
            for e in rd.flatten() {
                make_writable(&e.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_whole_files() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 1);
    }

    #[test]
    fn write_atomic_mode_gives_the_mode_at_creation() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("auth.json");
        write_atomic_mode(&p, b"{}", 0o644).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o600, 0o600);
        assert_eq!(mode & 0o077 & !0o044, 0, "never more than asked: {mode:o}");
        write_private(&p, b"secret").unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read(&p).unwrap(), b"secret");
    }

    #[test]
    fn remove_tree_handles_read_only_dirs_files_and_nothing() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("d/e");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("f"), b"x").unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o555)).unwrap();
        remove_tree(&t.path().join("d")).unwrap();
        assert!(!t.path().join("d").exists());
        remove_tree(&t.path().join("d")).unwrap();
        std::fs::write(t.path().join("f"), b"x").unwrap();
        remove_tree(&t.path().join("f")).unwrap();
        assert!(!t.path().join("f").exists());
    }

    #[test]
    fn random_hex_is_hex_of_the_length_asked() {
        let a = random_hex(6);
        assert_eq!(a.len(), 12);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, random_hex(6));
    }
}
