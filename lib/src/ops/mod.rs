//! One function per verb, each taking its `<Verb>Options` (flags already parsed into types by
//! [`crate::cli`]) and returning data (records, rows, reports), never text: the binaries show
//! it with [`crate::render`], which reads the shapes defined here ([`images::Row`],
//! [`system::DiskUsage`], [`info::Info`], ...). Notes for the user go through a [`Report`].
//! Verbs that touch layers or run containers call [`crate::userns::enter`] first (the binaries
//! do, while still single-threaded).
//!
//! ops is the one module that combines seams for a verb, and a verb does not call another:
//! what two verbs share lives in the seam that owns it (the container lookup in
//! [`crate::store`], image removal in `store::prune`, the registry runtime in
//! [`crate::registry::session`]), or here on [`Ctx`] (the store, pulling an image through
//! den-image), or in [`filter`] (docker's filter and time syntax).
//!
//! Entry points: [`pull::pull`], [`images::images`], [`run::run`], [`info::info`],
//! [`archive::save`], [`archive::load`], [`inspect::inspect`].
//!
//! Every verb returns [`Error`] ([`error`]): each seam's own error, unchanged, in one enum.

pub mod archive;
pub mod build;
pub mod commit;
pub mod container;
pub mod cp;
pub mod error;
pub mod events;
pub mod exec;
pub mod export;
pub mod filter;
pub mod health;
pub mod history;
pub mod images;
pub mod import;
pub mod info;
pub mod inspect;
pub mod login;
pub mod manifest;
pub mod network;
pub mod pause;
pub mod pull;
pub mod push;
pub mod rmi;
pub mod run;
pub mod search;
pub mod squash;
pub mod stats;
pub mod system;
pub mod top;
pub mod volume;

pub use error::{Error, Result};

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::config::{Config, Paths, ProcessEnv};
use crate::image::Reference;
use crate::store::{ImageRecord, Store, StoreError};
use crate::userns::IdMap;

/// Set once the skipped additional stores were reported, for the processes this one starts.
const STORES_WARNED: &str = "DEN_ADDITIONAL_STORES_WARNED";

/// What every verb needs: where things are, the configuration, the store, the id mapping, and
/// where notes for the user go.
pub struct Ctx {
    pub paths: Paths,
    pub config: Config,
    store: OnceLock<Store>,
    idmap: IdMap,
    notes: &'static dyn Report,
}

impl Ctx {
    /// Resolve paths (the `--root` flag first) and read the configuration. `notes` hears what
    /// verbs tell the user beside their result (a store made private again, the errors of
    /// `start` before its last); the binaries print them on stderr.
    pub fn new(root_flag: Option<&Path>, notes: &'static dyn Report) -> Result<Ctx> {
        let mut paths = Paths::resolve(root_flag, &ProcessEnv)?;
        let config = Config::load(&paths.config)?;
        paths.use_configured_root(root_flag, &ProcessEnv, config.storage.root.as_deref())?;
        let idmap = crate::userns::current().unwrap_or_else(IdMap::for_current_user);
        Ok(Ctx {
            paths,
            config,
            store: OnceLock::new(),
            idmap,
            notes,
        })
    }

    /// The store, opened (and created) on first use.
    pub fn store(&self) -> Result<Store> {
        self.store_for(None)
    }

    /// [`Ctx::store`] for a verb about to unpack in `ownership` mode (see [`Store::open_for`]).
    fn store_for(&self, ownership: Option<crate::userns::Ownership>) -> Result<Store> {
        if let Some(s) = self.store.get() {
            return Ok(s.clone());
        }
        let (s, skipped) = Store::open_for(&self.paths.root, ownership)?
            .with_additional(&self.config.storage.additional);
        // Once per command: den's tools start each other (build runs den-run per step, a
        // verb re-executes itself in the user namespace), and the children inherit the mark.
        if !skipped.is_empty() && std::env::var_os(STORES_WARNED).is_none() {
            for why in &skipped {
                self.notes.note(&why.warning());
            }
            let _ = crate::sys::set_env(STORES_WARNED, "1");
        }
        if let Some(mode) = s.repaired() {
            self.notes.note(&format!(
                "note: the store {} was open to other users (mode {mode:04o}); it is private (0700) again",
                self.paths.root.display()
            ));
        }
        let _ = self.store.set(s.clone());
        Ok(s)
    }

    pub fn idmap(&self) -> &IdMap {
        &self.idmap
    }

    /// Where a container's cgroup may go: `DEN_CGROUP`, config.toml's `[cgroup] parent`
    /// (`$USER` replaced), the user's uid (for the cgroup seam's [`crate::cgroup::limits::subtree`]).
    pub fn cgroup_where(&self) -> crate::cgroup::limits::Where {
        let user = std::env::var("USER").unwrap_or_default();
        crate::cgroup::limits::Where {
            env: std::env::var_os("DEN_CGROUP")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            configured: self
                .config
                .cgroup
                .parent
                .as_ref()
                .map(|p| PathBuf::from(p.to_string_lossy().replace("$USER", &user))),
            uid: nix::unistd::getuid().as_raw(),
        }
    }

    /// Where notes for the user go.
    pub fn notes(&self) -> &dyn Report {
        self.notes
    }

    /// The runtime directory, created private on first use. Inside the user namespace den is
    /// uid 0, which is the user's own uid on the host.
    pub fn runtime_dir(&self) -> Result<PathBuf> {
        let uid = if crate::userns::current().is_some() {
            0
        } else {
            self.idmap.host_uid()
        };
        Ok(self.paths.ensure_runtime_dir(uid)?.to_path_buf())
    }

    /// What the runtime needs to run a container: the kernel, the store, the id mapping and
    /// the runtime directory.
    pub fn runtime_ctx<'a>(
        &'a self,
        store: &'a Store,
        runtime_dir: &'a Path,
    ) -> crate::runtime::Context<'a> {
        crate::runtime::Context {
            sys: &crate::sys::LinuxSys,
            store,
            map: self.idmap(),
            runtime_dir,
        }
    }

    /// Find the image, pulling it through `den-image` when it is not in the store.
    pub fn find_or_pull(
        &self,
        image: &str,
        platform: Option<&str>,
        report: &dyn Report,
    ) -> Result<ImageRecord> {
        self.find_or_pull_as(image, platform, &crate::auth::Access::default(), report)
    }

    /// [`Ctx::find_or_pull`] with the command's `--authfile` and `--creds`.
    pub fn find_or_pull_as(
        &self,
        image: &str,
        platform: Option<&str>,
        access: &crate::auth::Access,
        report: &dyn Report,
    ) -> Result<ImageRecord> {
        let store = self.store()?;
        match store.find_image(image) {
            Ok(i) => return Ok(i),
            Err(StoreError::ImageUnknown(_)) => {}
            Err(e) => return Err(e.into()),
        }
        if let Some(i) = self.image_of_list(&store, image, platform)? {
            return Ok(i);
        }
        let reference = crate::image::Reference::parse(image)?;
        report.note(&format!(
            "Unable to find image '{}' locally",
            reference.canonical()
        ));
        self.pull_image_as(image, platform, access)
    }

    /// The image of the manifest list `name`'s entry for `platform` (the host's by default), as
    /// podman runs a list: the local image whose manifest it is, else pulled by digest from the
    /// repository the entry came from. None when there is no such list.
    fn image_of_list(
        &self,
        store: &Store,
        name: &str,
        platform: Option<&str>,
    ) -> Result<Option<ImageRecord>> {
        let list = match store.find_list(name) {
            Ok(l) => l,
            Err(StoreError::ListUnknown(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let want = match platform {
            Some(p) => crate::image::Platform::parse(p)
                .ok_or_else(|| crate::image::ImageError::BadPlatform(p.to_string()))?,
            None => crate::image::Platform::host(),
        };
        let entry =
            list.select(&want)
                .ok_or_else(|| crate::image::ImageError::NoMatchingPlatform {
                    reference: name.to_string(),
                    platform: want.to_string(),
                    available: list
                        .entries
                        .iter()
                        .map(|e| e.platform().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                })?;
        if let Some(i) = store
            .images()?
            .into_iter()
            .find(|i| i.manifest == entry.digest)
        {
            return Ok(Some(i));
        }
        match &entry.source {
            Some(source) => Ok(Some(
                self.pull_image(&format!("{source}@{}", entry.digest), None)?,
            )),
            None => Err(StoreError::EntryMissing {
                list: crate::image::familiar_name(&list.name),
                digest: entry.digest.to_string(),
            }
            .into()),
        }
    }

    /// Pull `image` through `den-image` (its progress on stderr) and return its record.
    pub fn pull_image(&self, image: &str, platform: Option<&str>) -> Result<ImageRecord> {
        self.pull_image_as(image, platform, &crate::auth::Access::default())
    }

    /// [`Ctx::pull_image`] with the command's `--authfile` and `--creds` (the credentials go
    /// in den-image's environment, not on its command line, where every user could read them).
    pub fn pull_image_as(
        &self,
        image: &str,
        platform: Option<&str>,
        access: &crate::auth::Access,
    ) -> Result<ImageRecord> {
        let reference = crate::image::Reference::parse(image)?;
        let tool = crate::config::tool_path("den-image")
            .ok_or_else(|| StoreError::ImageUnknown(image.into()))?;
        let mut cmd = std::process::Command::new(tool);
        cmd.arg("pull").arg(image);
        if let Some(p) = platform {
            cmd.arg("--platform").arg(p);
        }
        if let Some(f) = &access.authfile {
            cmd.arg("--authfile").arg(f);
        }
        cmd.env_remove(crate::auth::CREDS_ENV);
        cmd.env(PLACEMENT_TOLD, "1");
        if let Some(c) = &access.creds {
            cmd.env(
                crate::auth::CREDS_ENV,
                format!("{}:{}", c.username, c.password),
            );
        }
        // docker prints the pull's progress on stderr when `run` pulls; stdout stays the container's.
        let stderr = std::io::stderr();
        let out = std::os::fd::AsFd::as_fd(&stderr)
            .try_clone_to_owned()
            .map_err(|e| StoreError::Io {
                path: "stderr".into(),
                source: e,
            })?;
        let status = cmd
            .stdout(std::process::Stdio::from(out))
            .status()
            .map_err(|e| StoreError::Io {
                path: "den-image".into(),
                source: e,
            })?;
        if !status.success() {
            // den-image said why; exit with its status.
            return Err(
                crate::error::Reported(status.code().unwrap_or(crate::error::EXIT_DEN)).into(),
            );
        }
        Ok(self.store()?.find_image(&reference.canonical())?)
    }

    /// Warn (one line each) when the store or the runtime directory is on a filesystem shared
    /// between machines (NFS, Lustre, GPFS, ...), naming the fix: `run`, `create` and `pull`
    /// call it. A `den-image pull` that `run` starts does not say it again.
    pub fn note_placement(&self, warn: &mut dyn FnMut(&str)) {
        if std::env::var_os(PLACEMENT_TOLD).is_some() {
            return;
        }
        let sys = crate::sys::LinuxSys;
        for w in crate::store::placement::warnings(&sys, &self.paths.root, &self.paths.runtime) {
            warn(&w);
        }
    }

    /// Say once per store that it uses single-uid mode, and warn when the mode changed.
    pub fn note_ownership(&self, warn: &mut dyn FnMut(&str)) -> Result<()> {
        let mode = self.idmap.ownership();
        let store = self.store_for(Some(mode))?;
        let first = store.created() || store.ownership()?.is_none();
        match store.note_ownership(mode)? {
            Some(prev) => warn(&format!(
                "this store's layers were unpacked in {prev:?} id mode, den now runs in {mode:?} mode: \
                 file owners in containers may look wrong; use a separate --root for each mode"
            )),
            None if first => {
                if let IdMap::Single { reason, .. } = &self.idmap {
                    warn(&format!(
                        "single-uid mode ({reason}): every file in containers belongs to you, and only root exists inside"
                    ));
                }
            }
            None => {}
        }
        Ok(())
    }
}

/// Set in the environment of a `den-image pull` that a verb starts after it said
/// [`Ctx::note_placement`]'s warnings, so that they are said once.
const PLACEMENT_TOLD: &str = "DEN_PLACEMENT_TOLD";

/// Progress of one layer during a pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerEvent {
    /// Will be downloaded; its size in bytes.
    Waiting(u64),
    AlreadyExists,
    /// This many more bytes arrived.
    Downloaded(u64),
    Verified,
    Extracting,
    Complete,
}

/// Where verbs report progress; the binaries decide how it looks.
pub trait Report: Sync {
    fn pulling(&self, _reference: &Reference) {}
    fn digest(&self, _digest: &str) {}
    fn layer(&self, _short: &str, _event: LayerEvent) {}
    /// A note for the user (stderr).
    fn note(&self, _text: &str) {}
    /// An error the verb reports and carries on past (a container `start` could not start,
    /// before the next); the verb returns its last error itself.
    fn error(&self, _err: &Error) {}
}

/// Reports nothing.
pub struct Silent;
impl Report for Silent {}
