//! The store: everything den keeps under its root directory.
//!
//! ```text
//! ROOT/
//!   store.json              format version, the id mapping layers were unpacked with, shared
//!   locks/meta.lock         held (exclusive, briefly) to rewrite images.json
//!   locks/content.lock      shared while content is added or pinned; exclusive to delete it
//!   locks/blob-HEX.lock     exclusive while a pull brings that blob in (others wait, then find it)
//!   images.json             image records by id, with their names
//!   manifests.json          manifest lists by name (see [`manifests`])
//!   blobs/sha256/<hex>      verified blobs as the registry sent them: manifests, configs,
//!                           compressed layers (push and save need them byte for byte)
//!   layers/<hex>/diff/      an unpacked layer, keyed by its diff id (overlay's own format:
//!   layers/<hex>/layer.json whiteouts are 0/0 devices, opaque dirs have user.overlay.opaque)
//!   layers/l/<short>        short links to diff dirs, so overlay's lowerdir= fits in a page
//!   containers/<id>/        container.json, the writable layer (upper, work), merged, userdata
//!   names/<name>            symlink to a container id: names are unique by symlink(2)
//!   containers.cache        the containers' records as last listed, checked by stamp (`listing`)
//!   tmp/KIND-PID-RANDOM     staging, flock'ed by process PID; renamed into place when complete
//!   volumes/, build-cache/  named volumes; build-cache steps and cache mounts (see `build::cache`)
//!   driver.json             the storage driver chosen for this kernel
//!   events.log, events.log.1  the event journal `events` reads (see [`events`]), rotated at 1 MiB
//! ```
//!
//! ([`check::TOP_LEVEL`] lists these names: a file at the top not among them was not den's.)
//!
//! Writes are atomic: a file is written under a temporary name (`.NAME.tmp-PID-RANDOM`), fsynced
//! and renamed, and its directory fsynced; a layer is unpacked into `tmp/` and renamed into
//! `layers/` whole, its short link made before it appears. What a pull, load or import brings
//! is staged unsynced, the filesystem synced once (`syncfs`), and only then renamed into place
//! (so a power loss never leaves a named blob or layer whose bytes were lost), the directories
//! renamed into fsynced, the record last. A killed den therefore leaves nothing
//! visible but leftovers: its staging in `tmp/`, a temporary file, content no record names yet.
//! The next writer sweeps what dead processes left ([`Store::sweep`]) and, having found some,
//! collects garbage; `den system check` (see `check`) lists leftovers and damage. A diff
//! directory is never modified once in place, so many containers and images share it.
//!
//! Nothing is deleted where it is used: removing an image removes its record, and
//! [`Store::collect_garbage`] then deletes the layers and blobs nothing refers to (see `gc`).
//!
//! A store may offer other stores' images too, read only ([`additional`]: a site's shared
//! store, looked up after this one and never written), and its owner may open it to others
//! as such a store ([`share`], `system share`).
//!
//! Entry point: [`Store::open`].

mod additional;
mod blobs;
pub mod changes;
pub mod check;
mod containers;
pub mod driver;
pub mod events;
mod gc;
pub mod health;
pub mod imagefile;
mod images;
pub mod incoming;
mod layers;
mod listing;
mod lock;
pub mod manifests;
pub mod placement;
mod prune;
mod share;
mod staging;

use std::path::{Path, PathBuf};

pub use additional::{Additional, Skipped};
pub use blobs::BlobWriter;
pub(crate) use blobs::verify;
pub use check::{CheckOptions, Checked, Problem, Repaired};
pub use containers::{
    AttachStreams, BUILD_STEP_LABEL, Container, ContainerRecord, ContainerState, ContainersError,
    RestartPolicy, RunSpec, Status, alive, parent_pid, process_start_time,
};
pub use events::Event;
pub use gc::{Collected, Referenced, disk_usage};
/// An image record for unit tests: id `hex` (64 hex digits), named `names`.
#[cfg(test)]
pub(crate) use images::tests::record as test_image;
pub use images::{ImageRecord, ImagesError, LayerRef, Sharing};
pub use incoming::Incoming;
pub use layers::{LayerRecord, StagedLayer};
pub use lock::Lock;
pub use prune::{Deleted, PruneFilter};
pub use share::Shared;
pub use staging::Staging;
pub(crate) use staging::{stale_staging, stale_temp, temp_file};

pub use crate::digest::{Digest, Hasher};
use crate::error::Diagnose;
use crate::userns::Ownership;

/// The on-disk format version; bumped when the layout changes incompatibly.
pub const FORMAT: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot use the store at {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("store record {path} is damaged")]
    Damaged {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("store at {path} has format {found}, this den reads format {FORMAT}")]
    Format { path: PathBuf, found: u32 },
    #[error("no such image: {0}")]
    ImageUnknown(String),
    #[error("no such manifest list: {0}")]
    ListUnknown(String),
    #[error("a manifest list named {0} already exists")]
    ListExists(String),
    #[error(
        "entry {digest} of manifest list {list} has no image in the store and no registry to pull it from"
    )]
    EntryMissing { list: String, digest: String },
    #[error("manifest list {list} has no entry for {image}")]
    EntryUnknown { list: String, image: String },
    #[error("image id prefix {0:?} is ambiguous")]
    ImageAmbiguous(String),
    /// `run --pull never` with the image missing: docker's daemon's words, with the name as
    /// docker shows it (`busybox:latest`).
    #[error("No such image: {0}")]
    NotPulled(String),
    #[error("blob {digest} does not match its digest (got {actual})")]
    DigestMismatch { digest: Digest, actual: Digest },
    #[error("no such container: {0}")]
    ContainerUnknown(String),
    #[error("the container name \"/{name}\" is already in use by container {id}")]
    NameInUse { name: String, id: String },
    #[error("invalid container name {0:?}")]
    BadName(String),
    #[error("no such object: {0}")]
    NoSuchObject(String),
    #[error("{path} is not a den store (it has no store.json) and is not empty")]
    NotAStore { path: PathBuf },
    #[error("{path} holds {what}: it was not written by den")]
    Forged { path: PathBuf, what: String },
    #[error(transparent)]
    Digest(#[from] crate::digest::DigestError),
    #[error(transparent)]
    Image(#[from] Box<crate::image::ImageError>),
    #[error("blob {digest} of image {image} is missing from the store")]
    MissingBlob { image: String, digest: String },
    #[error("the store at {path} has {problems} problem(s)")]
    Unclean { path: PathBuf, problems: usize },
    #[error(transparent)]
    Driver(#[from] driver::DriverError),
    /// flock(2) does not work on the store's filesystem (Lustre mounted without `-o flock`,
    /// NFS without its lock daemon): den cannot share the store safely between processes.
    #[error("cannot lock {path}: its filesystem does not support file locks")]
    NoLocks {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Diagnose for StoreError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            StoreError::Io { source, .. } if source.raw_os_error() == Some(libc::ENOSPC) => {
                "the disk is full: free space, or remove unused images with `den image prune -a`".into()
            }
            StoreError::Io { source, .. } if source.raw_os_error() == Some(libc::EACCES) => {
                "the store belongs to another user, or was written by a process outside den's user \
                 namespace; use your own --root"
                    .into()
            }
            StoreError::Io { .. } => "check that the store's disk is writable; --root chooses another place".into(),
            StoreError::Damaged { .. } => {
                "a file in the store was changed by something other than den; remove it to rebuild it".into()
            }
            StoreError::Format { .. } => "use the den release that wrote this store, or a new --root".into(),
            StoreError::ImageUnknown(_) => "pull it with `den pull NAME`, or list local images with `den images`".into(),
            StoreError::ListUnknown(_) => {
                "make one with `den manifest create LIST IMAGE...`; a name must be a valid image reference".into()
            }
            StoreError::ListExists(_) => {
                "add to it with `den manifest add`, pass --amend, or remove it with `den manifest rm`".into()
            }
            StoreError::EntryMissing { list, digest } => format!(
                "its image was removed: add it again (`den manifest add {list} IMAGE`) or drop the entry (`den manifest remove {list} {digest}`)"
            ),
            StoreError::EntryUnknown { list, .. } => {
                format!("`den manifest inspect {list}` lists its entries' digests")
            }
            StoreError::ImageAmbiguous(_) => "give more characters of the id, or the image's name".into(),
            StoreError::NotPulled(_) => {
                "--pull never uses local images only: pull it with `den pull NAME`, or drop --pull never".into()
            }
            StoreError::DigestMismatch { .. } => "the content was altered; it was not stored".into(),
            StoreError::ContainerUnknown(_) => "list containers with `den ps -a`".into(),
            StoreError::NameInUse { .. } => {
                "remove or rename that container, or choose another name with --name".into()
            }
            StoreError::BadName(_) => "names may use [a-zA-Z0-9][a-zA-Z0-9_.-]*".into(),
            StoreError::MissingBlob { .. } => {
                "remove the image with `den rmi` and pull or build it again".into()
            }
            StoreError::NotAStore { .. } => {
                "check --root and DEN_ROOT: den makes its store in a new or empty directory, and \
                 deletes only its own"
                    .into()
            }
            StoreError::Forged { .. } => {
                "another program changed den's store; run `den system check --repair`".into()
            }
            StoreError::Unclean { .. } => {
                "`den system check --repair` removes them (leftovers of a killed den also go at \
                 its next pull, build or prune); an image or container it removes is pulled or \
                 made again"
                    .into()
            }
            StoreError::Digest(e) => e.hint(),
            StoreError::Image(e) => return e.hint(),
            StoreError::Driver(e) => return e.hint(),
            StoreError::NoLocks { .. } => format!("den's store needs file locks: {}", placement::FIX),
            StoreError::NoSuchObject(_) => "list containers with `den ps -a` and images with `den images`".into(),
        })
    }
    /// `system check` exits 1 when it finds problems (it did its job; the store did not).
    fn exit_code(&self) -> i32 {
        match self {
            StoreError::Unclean { .. } => 1,
            _ => crate::error::EXIT_DEN,
        }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

impl From<crate::image::ImageError> for StoreError {
    fn from(e: crate::image::ImageError) -> Self {
        StoreError::Image(Box::new(e))
    }
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct StoreMeta {
    format: u32,
    #[serde(default)]
    ownership: Option<Ownership>,
    /// Opened to other users as an additional store (`system share`): the root and the
    /// records others read stay readable on later writes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    shared: bool,
}

/// Make a store at `root`, an existing directory: its skeleton is built beside it and renamed
/// over it, so other den processes opening it at the same moment see it empty or whole, never
/// half made. A store is made in a new or empty directory only: `--root ~` must not scatter
/// den's files among the user's, nor make `system reset` take them for its own. `ownership`
/// is recorded from the start when the caller is about to unpack (saving `store.json` a
/// second write and its two fsyncs). Returns whether this process made it.
fn init(root: &Path, ownership: Option<Ownership>) -> Result<bool> {
    use std::os::unix::fs::DirBuilderExt;
    // Through a symlinked root (`~/.local/share/den -> /scratch/den`) to the directory itself:
    // the rename must replace the empty directory, not the user's link.
    let root = std::fs::canonicalize(root).map_err(io_err(root))?;
    let refuse = || StoreError::NotAStore { path: root.clone() };
    if std::fs::read_dir(&root)
        .map_err(io_err(&root))?
        .next()
        .is_some()
    {
        return if root.join("store.json").exists() {
            Ok(false)
        } else {
            Err(refuse())
        };
    }
    let parent = root.parent().ok_or_else(refuse)?;
    let name = root.file_name().ok_or_else(refuse)?.to_string_lossy();
    let tmp = parent.join(format!(
        ".{name}.init-{}-{}",
        std::process::id(),
        crate::fs::random_hex(4)
    ));
    let made = (|| {
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&tmp)
            .map_err(io_err(&tmp))?;
        for d in [
            "blobs/sha256",
            "layers/l",
            "containers",
            "names",
            "tmp",
            "locks",
            "volumes",
        ] {
            let p = tmp.join(d);
            std::fs::create_dir_all(&p).map_err(io_err(&p))?;
        }
        let meta = StoreMeta {
            format: FORMAT,
            ownership,
            shared: false,
        };
        let mut bytes = serde_json::to_vec_pretty(&meta).expect("store records serialize");
        bytes.push(b'\n');
        let meta_path = tmp.join("store.json");
        crate::fs::write_atomic(&meta_path, &bytes).map_err(io_err(&meta_path))
    })();
    if let Err(e) = made {
        let _ = crate::fs::remove_tree(&tmp);
        return Err(e);
    }
    match std::fs::rename(&tmp, &root) {
        Ok(()) => Ok(true),
        // Another den made it first (or something else appeared): theirs stands.
        Err(_) if root.join("store.json").exists() => {
            let _ = crate::fs::remove_tree(&tmp);
            Ok(false)
        }
        Err(e) => {
            let _ = crate::fs::remove_tree(&tmp);
            if std::fs::read_dir(&root)
                .map(|mut d| d.next().is_some())
                .unwrap_or(false)
            {
                Err(refuse())
            } else {
                Err(io_err(&root)(e))
            }
        }
    }
}

/// An open store.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    /// The root's mode before [`Store::open`] made it private, when it had to.
    repaired: Option<u32>,
    /// Read-only stores whose images and content this one also offers (see [`additional`]).
    additional: std::sync::Arc<[Additional]>,
    /// Shared with other users ([`Store::share`]): records others read are written readable.
    shared: bool,
    /// Made by this process's [`Store::open_for`].
    created: bool,
}

impl Store {
    /// Open the store at `root`, creating its directories on first use. The root is private to
    /// its user (0700): records hold what containers were given (`-e DB_PASSWORD=...`), logs
    /// what they printed. A root others can enter is made private again (see
    /// [`Store::repaired`]); one that belongs to someone else is left as it is.
    pub fn open(root: &Path) -> Result<Store> {
        Store::open_for(root, None)
    }

    /// [`Store::open`] for a caller about to unpack layers in `ownership` mode: a store made
    /// here records it at once (see [`Store::note_ownership`]).
    pub fn open_for(root: &Path, ownership: Option<Ownership>) -> Result<Store> {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
        match std::fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(root)
        {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(root)(e)),
        }
        let mut store = Store {
            root: root.to_path_buf(),
            repaired: None,
            additional: Vec::new().into(),
            shared: false,
            created: false,
        };
        if !root.join("store.json").exists() {
            store.created = init(root, ownership)?;
        } else {
            let meta: StoreMeta = store.read_json(&root.join("store.json"))?;
            if meta.format != FORMAT {
                return Err(StoreError::Format {
                    path: root.into(),
                    found: meta.format,
                });
            }
            store.shared = meta.shared;
        }
        let md = std::fs::metadata(root).map_err(io_err(root))?;
        if !store.shared && md.mode() & 0o077 != 0 && md.uid() == nix::unistd::geteuid().as_raw() {
            std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700))
                .map_err(io_err(root))?;
            store.repaired = Some(md.mode() & 0o7777);
        }
        Ok(store)
    }

    /// This store with the additional stores `roots` (in lookup order) that are good; the
    /// others are returned, each with why it is skipped.
    pub fn with_additional(mut self, roots: &[PathBuf]) -> (Store, Vec<Skipped>) {
        let (good, skipped) = additional::open(&self.root, roots);
        self.additional = good.into();
        (self, skipped)
    }

    /// The additional stores in use, in lookup order.
    pub fn additional(&self) -> &[Additional] {
        &self.additional
    }

    /// Whether this store is shared with other users ([`Store::share`]).
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether this store was made when it was opened (by this process).
    pub fn created(&self) -> bool {
        self.created
    }

    /// The mode the root had when `open` found it open to others and made it 0700.
    pub fn repaired(&self) -> Option<u32> {
        self.repaired
    }

    /// Whether `root` holds a den store (its `store.json` says so): what `system reset` checks
    /// before it deletes anything.
    pub fn is_store(root: &Path) -> bool {
        std::fs::read(root.join("store.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<StoreMeta>(&b).ok())
            .is_some()
    }

    /// The ownership mode layers in this store were unpacked with, if any layer was.
    pub fn ownership(&self) -> Result<Option<Ownership>> {
        let meta: StoreMeta = self.read_json(&self.root.join("store.json"))?;
        Ok(meta.ownership)
    }

    /// Record the ownership mode on first unpack. Returns the mode recorded before, if it differs.
    pub fn note_ownership(&self, mode: Ownership) -> Result<Option<Ownership>> {
        let _g = self.lock_meta()?;
        let path = self.root.join("store.json");
        let mut meta: StoreMeta = self.read_json(&path)?;
        match meta.ownership {
            Some(m) if m == mode => Ok(None),
            Some(m) => Ok(Some(m)),
            None => {
                meta.ownership = Some(mode);
                self.write_json(&path, &meta)?;
                Ok(None)
            }
        }
    }

    // ------------------------------------------------------------------ locks

    /// The lock for read-modify-write of the record files.
    pub fn lock_meta(&self) -> Result<Lock> {
        Lock::exclusive(&self.root.join("locks/meta.lock"))
    }

    /// Held shared while content is added or pinned (a pull, a container being created).
    pub fn lock_content_shared(&self) -> Result<Lock> {
        Lock::shared(&self.root.join("locks/content.lock"))
    }

    /// Held exclusive while unreferenced content is deleted.
    pub fn lock_content_exclusive(&self) -> Result<Lock> {
        Lock::exclusive(&self.root.join("locks/content.lock"))
    }

    /// Exclusive locks on the blobs `digests` (`locks/blob-HEX.lock`), held by a pull from
    /// before it downloads them until its image is in the store: a second den pulling the same
    /// blobs (a job array's tasks on one store) waits, then finds them stored, instead of
    /// downloading everything again beside the first. Taken in digest order, so two pulls
    /// wanting overlapping sets never wait on each other in a cycle. The caller holds the
    /// content lock shared (garbage collection removes these files under it held exclusive).
    pub fn lock_blobs(&self, digests: &[Digest]) -> Result<Vec<Lock>> {
        let mut sorted: Vec<&Digest> = digests.iter().collect();
        sorted.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        sorted.dedup();
        sorted
            .into_iter()
            .map(|d| Lock::exclusive(&self.blob_lock_path(d)))
            .collect()
    }

    fn blob_lock_path(&self, digest: &Digest) -> PathBuf {
        self.root.join(format!("locks/blob-{}.lock", digest.hex()))
    }

    // ------------------------------------------------------------------ files

    /// Write `bytes` to `path` atomically and durably: temp file, fsync, rename, fsync dir.
    pub fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let mode = if self.shared && share::readable(&self.root, path) {
            0o644
        } else {
            0o600
        };
        crate::fs::write_atomic_mode(path, bytes, mode).map_err(io_err(path))
    }

    pub fn write_json<T: serde::Serialize>(&self, path: &Path, value: &T) -> Result<()> {
        self.write_json_as(path, value, true)
    }

    /// [`Store::write_json`], durably or not ([`crate::fs::write_atomic_volatile`]: atomic,
    /// not fsynced).
    pub fn write_json_as<T: serde::Serialize>(
        &self,
        path: &Path,
        value: &T,
        durable: bool,
    ) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(value).expect("store records serialize");
        bytes.push(b'\n');
        if durable {
            return self.write_atomic(path, &bytes);
        }
        let mode = if self.shared && share::readable(&self.root, path) {
            0o644
        } else {
            0o600
        };
        crate::fs::write_atomic_volatile(path, &bytes, mode).map_err(io_err(path))
    }

    pub fn read_json<T: serde::de::DeserializeOwned>(&self, path: &Path) -> Result<T> {
        let bytes = read_small(path).map_err(io_err(path))?;
        serde_json::from_slice(&bytes).map_err(|source| StoreError::Damaged {
            path: path.into(),
            source,
        })
    }
}

/// A file's bytes with no stat, no seek and no zeroed buffer: records are small and a listing
/// reads thousands, where `std::fs::read`'s size hint would double the system calls.
fn read_small(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path)?;
    let mut buf = Vec::with_capacity(4096);
    // Through `take`, which reads into the spare capacity without asking the file its size.
    f.take(u64::MAX).read_to_end(&mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_creates_the_layout_once() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        for d in [
            "blobs/sha256",
            "layers/l",
            "containers",
            "names",
            "tmp",
            "locks",
        ] {
            assert!(t.path().join(d).is_dir(), "{d}");
        }
        assert_eq!(s.ownership().unwrap(), None);
        Store::open(t.path()).unwrap();
    }

    #[test]
    fn refuses_other_formats() {
        let t = tempfile::tempdir().unwrap();
        Store::open(t.path()).unwrap();
        std::fs::write(t.path().join("store.json"), r#"{"format":99}"#).unwrap();
        assert!(matches!(
            Store::open(t.path()),
            Err(StoreError::Format { found: 99, .. })
        ));
    }

    #[test]
    fn stores_are_made_whole_once_and_only_in_empty_directories() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("s");
        let opened: Vec<bool> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..8)
                .map(|_| sc.spawn(|| Store::open(&root).is_ok()))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(opened.iter().all(|o| *o), "{opened:?}");
        assert!(Store::is_store(&root));
        // Nothing left beside it.
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 1);
        let mine = t.path().join("mine");
        std::fs::create_dir(&mine).unwrap();
        std::fs::write(mine.join("notes"), "x").unwrap();
        assert!(matches!(
            Store::open(&mine),
            Err(StoreError::NotAStore { .. })
        ));
        assert_eq!(std::fs::read_dir(&mine).unwrap().count(), 1);
    }

    #[test]
    fn ownership_is_recorded_once() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        assert_eq!(s.note_ownership(Ownership::Mapped).unwrap(), None);
        assert_eq!(s.note_ownership(Ownership::Mapped).unwrap(), None);
        assert_eq!(
            s.note_ownership(Ownership::Single).unwrap(),
            Some(Ownership::Mapped)
        );
        assert_eq!(s.ownership().unwrap(), Some(Ownership::Mapped));
    }

    #[test]
    fn a_store_made_for_an_unpack_records_its_ownership_at_once() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open_for(t.path(), Some(Ownership::Single)).unwrap();
        assert!(s.created());
        assert_eq!(s.ownership().unwrap(), Some(Ownership::Single));
        assert_eq!(s.note_ownership(Ownership::Single).unwrap(), None);
        // Opened again, it was made before; a store that exists keeps what it recorded.
        let again = Store::open_for(t.path(), Some(Ownership::Mapped)).unwrap();
        assert!(!again.created());
        assert_eq!(again.ownership().unwrap(), Some(Ownership::Single));
        let plain = tempfile::tempdir().unwrap();
        assert_eq!(
            Store::open(plain.path()).unwrap().ownership().unwrap(),
            None
        );
    }
}
