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
//! **Syncs** ([`sync_fs`], [`Writeback`]): a store syncs its filesystem once per image rather
//! than fsyncing each file, and starts the disk's writeback while more content is coming.
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

/// Writeback started before the sync that waits for it. A store writes an image's content
/// (gigabytes, for a large pull) and then syncs its filesystem once; the kernel starts writing
/// dirty pages back only when they are old or many, so that sync waited for all of it while the
/// CPUs idled (a second of a 6-second pull of 1.3 GB). [`Writeback::kick`] (after each unpacked
/// layer) has a thread of its own sync the filesystem, so the disk works while later layers are
/// unpacked and the final [`sync_fs`] finds little left. It adds no guarantee and removes none:
/// the final sync still comes before anything takes its name. Best effort: if the thread cannot
/// start, the final sync does it all, as before.
pub struct Writeback {
    shared: std::sync::Arc<WritebackShared>,
}

struct WritebackShared {
    path: std::path::PathBuf,
    state: std::sync::Mutex<WritebackState>,
    wake: std::sync::Condvar,
}

#[derive(Default)]
struct WritebackState {
    /// Asked since the last sync began.
    asked: bool,
    /// The owner is gone: the thread ends.
    closed: bool,
    running: bool,
    /// Syncs begun and finished.
    started: u64,
    synced: u64,
}

impl Writeback {
    /// Writeback of the filesystem holding `path`; no thread until the first kick.
    pub fn new(path: &Path) -> Writeback {
        Writeback {
            shared: std::sync::Arc::new(WritebackShared {
                path: path.to_path_buf(),
                state: Default::default(),
                wake: std::sync::Condvar::new(),
            }),
        }
    }

    /// Start writing back what is dirty now (a sync already running is followed by one more).
    pub fn kick(&self) {
        let mut st = self.shared.lock();
        st.asked = true;
        if !st.running {
            let shared = self.shared.clone();
            st.running = std::thread::Builder::new()
                .name("den-writeback".into())
                .stack_size(64 * 1024)
                .spawn(move || shared.run())
                .is_ok();
        }
        self.shared.wake.notify_all();
    }

    /// Wait until every kick so far has been followed by a finished sync (tests).
    #[cfg(test)]
    fn settle(&self) -> u64 {
        let mut st = self.shared.lock();
        while st.asked && st.running {
            st = self.shared.wake.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        let target = st.started;
        while st.synced < target {
            st = self.shared.wake.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        st.synced
    }
}

impl WritebackShared {
    fn lock(&self) -> std::sync::MutexGuard<'_, WritebackState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn run(&self) {
        let mut st = self.lock();
        loop {
            while !st.asked && !st.closed {
                st = self.wake.wait(st).unwrap_or_else(|p| p.into_inner());
            }
            if st.closed {
                st.running = false;
                return;
            }
            st.asked = false;
            st.started += 1;
            drop(st);
            self.wake.notify_all();
            let _ = sync_fs(&self.path);
            st = self.lock();
            st.synced += 1;
            self.wake.notify_all();
        }
    }
}

impl Drop for Writeback {
    /// The thread ends after the sync it is in, if any (nobody waits for it).
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_all();
    }
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
    fn writeback_syncs_on_a_thread_after_every_kick_and_ends_when_dropped() {
        let t = tempfile::tempdir().unwrap();
        let wb = Writeback::new(t.path());
        assert_eq!(wb.settle(), 0, "no thread and no sync before a kick");
        wb.kick();
        let first = wb.settle();
        assert!(first >= 1, "a kick is followed by a sync");
        wb.kick();
        wb.kick();
        assert!(
            wb.settle() > first,
            "kicks during or after a sync bring another"
        );
        let shared = wb.shared.clone();
        drop(wb);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while shared.lock().running {
            assert!(
                std::time::Instant::now() < deadline,
                "the thread ends once dropped"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

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
