//! Storage drivers: how a container's root filesystem is made from image layers plus its own
//! writable layer.
//!
//! * `overlay`: kernel overlayfs, mounted inside den's user namespace with `userxattr` (Linux 5.11
//!   and later). Fastest; nothing is copied.
//! * `fuse-overlayfs`: the same layout served by the fuse-overlayfs program, for kernels or
//!   filesystems where the kernel's overlay cannot be mounted unprivileged. Needs `/dev/fuse`.
//! * `vfs`: a plain copy of the layers into the container's directory, the last resort: always
//!   works, costs the image's size per container and time to copy.
//!
//! With `auto` (the default) den probes the three in that order once per store and kernel, and
//! remembers the result and the reason in `ROOT/driver.json`; `den info` shows both. A container
//! keeps the driver it was created with, since its writable layer is in that driver's format.
//! On a store whose filesystem the kernel's overlay refuses as an upper directory (NFS, Lustre,
//! GPFS, FUSE, ...: [`FsKind::overlay_upper`]) the probe does not try it and its reason names
//! the filesystem, so `den info` shows why and what to change (a store on local disk).
//!
//! The driver lives in the store because it is the store's layout for a container's root (its
//! `upper`, `work`, `merged` or `rootfs` directories over the store's layers); the runtime, `cp`,
//! `export` and the build mount through it, and every mount goes through [`Sys`] so the
//! recording fake sees it. Its errors ([`DriverError`]) come out as the store's.

use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::sys::stat::Mode;
use serde::{Deserialize, Serialize};

use super::Store;
use crate::config::DriverChoice;
use crate::error::Diagnose;
use crate::fs;
use crate::fs::FsKind;
use crate::sys::{Mount, Sys};

/// What can go wrong making or mounting a container's root filesystem.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("cannot mount the container's root filesystem with {driver}")]
    Mount {
        driver: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    ImageFile(#[from] crate::image::sqsh::SqshError),
    #[error("cannot prepare {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Diagnose for DriverError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            DriverError::Mount { driver: "overlay", .. } => {
                "choose another storage driver: DEN_STORAGE_DRIVER=fuse-overlayfs or vfs (see `den info`)".into()
            }
            DriverError::Mount { .. } => "see `den info` for the storage driver and why it was chosen".into(),
            DriverError::Io { .. } => "check that den's store and runtime directory are writable".into(),
            DriverError::ImageFile(e) => return e.hint(),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Driver {
    Overlay,
    FuseOverlayfs,
    Vfs,
}

impl Driver {
    pub fn name(self) -> &'static str {
        match self {
            Driver::Overlay => "overlay",
            Driver::FuseOverlayfs => "fuse-overlayfs",
            Driver::Vfs => "vfs",
        }
    }

    pub fn from_name(s: &str) -> Option<Driver> {
        match s {
            "overlay" => Some(Driver::Overlay),
            "fuse-overlayfs" => Some(Driver::FuseOverlayfs),
            "vfs" => Some(Driver::Vfs),
            _ => None,
        }
    }
}

/// The driver den uses and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    pub driver: Driver,
    pub reason: String,
    /// The kernel release the probe ran on.
    #[serde(default)]
    pub kernel: String,
}

fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Choose the driver for new containers. Must run inside den's user and mount namespace.
pub fn choose(sys: &dyn Sys, store: &Store, want: DriverChoice) -> Choice {
    let kernel = kernel_release();
    match want {
        DriverChoice::Overlay => {
            return Choice {
                driver: Driver::Overlay,
                reason: "chosen in the configuration".into(),
                kernel,
            };
        }
        DriverChoice::FuseOverlayfs => {
            return Choice {
                driver: Driver::FuseOverlayfs,
                reason: "chosen in the configuration".into(),
                kernel,
            };
        }
        DriverChoice::Vfs => {
            return Choice {
                driver: Driver::Vfs,
                reason: "chosen in the configuration".into(),
                kernel,
            };
        }
        DriverChoice::Auto => {}
    }
    let cache = store.root().join("driver.json");
    if let Ok(c) = store.read_json::<Choice>(&cache)
        && c.kernel == kernel
    {
        return c;
    }
    let choice = probe(sys, store, kernel);
    let _ = store.write_json(&cache, &choice);
    choice
}

fn probe(sys: &dyn Sys, store: &Store, kernel: String) -> Choice {
    let Ok(staging) = store.staging_dir("probe") else {
        return Choice {
            driver: Driver::Vfs,
            reason: "the store's tmp directory is not writable".into(),
            kernel,
        };
    };
    let dir = staging.path.clone();
    let layout = |sub: &str| {
        let d = dir.join(sub);
        for p in ["lower", "upper", "work", "merged"] {
            let _ = std::fs::create_dir_all(d.join(p));
        }
        d
    };
    let kernel_err = match kernel_overlay(sys, store, &layout("kernel")) {
        Ok(()) => {
            let _ = crate::fs::remove_tree(&dir);
            return Choice {
                driver: Driver::Overlay,
                reason: "kernel overlayfs mounts in a user namespace here".into(),
                kernel,
            };
        }
        Err(why) => why,
    };
    let f = layout("fuse");
    let fuse = match fuse_usable() {
        Err(why) => Err(why),
        Ok(()) => match mount_fuse(
            &[f.join("lower")],
            &f.join("upper"),
            &f.join("work"),
            &f.join("merged"),
        ) {
            Ok(()) => {
                let _ = unmount_fuse(sys, &f.join("merged"));
                Ok(())
            }
            Err(e) => Err(crate::error::chain(&e)),
        },
    };
    let _ = crate::fs::remove_tree(&dir);
    match fuse {
        Ok(()) => Choice {
            driver: Driver::FuseOverlayfs,
            reason: format!("{kernel_err}; fuse-overlayfs works"),
            kernel,
        },
        Err(fuse_err) => Choice {
            driver: Driver::Vfs,
            reason: format!("{kernel_err}; fuse-overlayfs unusable ({fuse_err}); copying layers"),
            kernel,
        },
    }
}

/// Whether the kernel's overlay mounts with its upper directory in the store (the probe's
/// directory `k`, with `lower`, `upper`, `work` and `merged` in it), or why not. On a
/// filesystem where the kernel refuses upper directories (NFS, Lustre, GPFS, FUSE, ...) den
/// does not try: it says which filesystem it is, which names the fix (a store on local disk).
fn kernel_overlay(sys: &dyn Sys, store: &Store, k: &Path) -> Result<(), String> {
    if let Some(fs) = FsKind::of(sys, store.root()).filter(|f| !f.overlay_upper()) {
        return Err(format!(
            "kernel overlayfs cannot keep containers' writable layers on {}, the store's filesystem",
            fs.name()
        ));
    }
    let merged = k.join("merged");
    match mount_kernel(
        sys,
        &[k.join("lower")],
        &k.join("upper"),
        &k.join("work"),
        &merged,
        false,
    ) {
        Ok(()) => {
            let _ = sys.umount(&merged, true);
            Ok(())
        }
        Err(e) => Err(format!(
            "kernel overlayfs failed ({})",
            crate::error::chain(&e)
        )),
    }
}

/// Why fuse-overlayfs cannot be used, if it cannot.
pub fn fuse_usable() -> Result<(), String> {
    if crate::config::find_in_path("fuse-overlayfs").is_none() {
        return Err("fuse-overlayfs is not installed (package fuse-overlayfs)".into());
    }
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
    {
        Ok(_) => Ok(()),
        Err(e) => Err(format!(
            "/dev/fuse cannot be opened ({e}); an administrator can run `chmod 0666 /dev/fuse`"
        )),
    }
}

fn overlay_options(lowers: &[PathBuf], upper: &Path, work: &Path) -> String {
    let lower: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
    format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    )
}

pub(super) fn mount_kernel(
    sys: &dyn Sys,
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    merged: &Path,
    volatile: bool,
) -> Result<(), DriverError> {
    let mut data = format!("{},userxattr", overlay_options(lowers, upper, work));
    if volatile {
        // No sync of the upper layer at unmount (20 ms here): for containers thrown away
        // on exit (--rm), as podman does.
        data.push_str(",volatile");
    }
    sys.mount(&Mount {
        source: Some("overlay".into()),
        target: merged.into(),
        fstype: Some("overlay".into()),
        flags: MsFlags::empty(),
        data: Some(data),
    })
    .map_err(|source| DriverError::Mount {
        driver: "overlay",
        source: source.into(),
    })
}

/// The driver for a new container (or build step) on `layers`: `driver`, except that kernel
/// overlayfs gives way to fuse-overlayfs where a layer comes from another user's additional
/// store (see [`super::additional`]: the kernel refuses copy-up below inodes whose owner is
/// unmapped; fuse-overlayfs, mounted with `squash_to_root`, serves them as root's).
pub fn for_layers(driver: Driver, store: &Store, layers: &[crate::digest::Digest]) -> Driver {
    if driver == Driver::Overlay
        && layers.iter().any(|d| store.layer_is_foreign(d))
        && fuse_usable().is_ok()
    {
        return Driver::FuseOverlayfs;
    }
    driver
}

pub(super) fn mount_fuse(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    merged: &Path,
) -> Result<(), DriverError> {
    mount_fuse_opts(lowers, upper, work, merged, false)
}

/// fuse-overlayfs over `lowers`; `squash`: every lower file shown as owned by root (0:0),
/// for layers whose owners are unmapped here.
fn mount_fuse_opts(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    merged: &Path,
    squash: bool,
) -> Result<(), DriverError> {
    let mut opts = overlay_options(lowers, upper, work);
    if squash {
        opts.push_str(",squash_to_root");
    }
    let out = std::process::Command::new("fuse-overlayfs")
        .arg("-o")
        .arg(opts)
        .arg(merged)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| DriverError::Mount {
            driver: "fuse-overlayfs",
            source: e,
        })?;
    if !out.status.success() {
        return Err(DriverError::Mount {
            driver: "fuse-overlayfs",
            source: std::io::Error::other(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        });
    }
    Ok(())
}

fn unmount_fuse(sys: &dyn Sys, merged: &Path) -> Result<(), DriverError> {
    // We own the mount namespace, so umount(2) works and the daemon exits when its mount goes.
    sys.umount(merged, false)
        .map_err(|source| DriverError::Mount {
            driver: "fuse-overlayfs",
            source: source.into(),
        })
}

/// The directories of a container's root filesystem under its directory `cdir`.
pub struct Layout {
    pub upper: PathBuf,
    pub work: PathBuf,
    pub merged: PathBuf,
    pub rootfs_copy: PathBuf,
}

impl Layout {
    pub fn of(cdir: &Path) -> Layout {
        Layout {
            upper: cdir.join("upper"),
            work: cdir.join("work"),
            merged: cdir.join("merged"),
            rootfs_copy: cdir.join("rootfs"),
        }
    }
}

/// Create the container's directories for `driver` (at create time).
pub fn prepare(
    driver: Driver,
    store: &Store,
    layers: &[crate::digest::Digest],
    cdir: &Path,
) -> super::Result<()> {
    let l = Layout::of(cdir);
    let mk = |p: &Path| {
        std::fs::create_dir_all(p).map_err(|e| DriverError::Io {
            path: p.into(),
            source: e,
        })
    };
    match driver {
        Driver::Overlay | Driver::FuseOverlayfs => {
            mk(&l.upper)?;
            mk(&l.work)?;
            Ok(mk(&l.merged)?)
        }
        Driver::Vfs => {
            if l.rootfs_copy.exists() {
                return Ok(());
            }
            let staging = cdir.join("rootfs.tmp");
            let _ = crate::fs::remove_tree(&staging);
            mk(&staging)?;
            for diff_id in layers {
                copy_layer(&store.layer_diff(diff_id), &staging)?;
            }
            std::fs::rename(&staging, &l.rootfs_copy).map_err(|e| DriverError::Io {
                path: l.rootfs_copy.clone(),
                source: e,
            })?;
            Ok(())
        }
    }
}

/// Mount the container's root filesystem; returns its path. Layers are bottom first.
/// `volatile`: the writable layer is discarded after this run, so it need not be synced.
pub fn mount(
    sys: &dyn Sys,
    driver: Driver,
    store: &Store,
    layers: &[crate::digest::Digest],
    cdir: &Path,
    volatile: bool,
) -> super::Result<PathBuf> {
    let l = Layout::of(cdir);
    if driver == Driver::Vfs {
        return Ok(l.rootfs_copy);
    }
    let mut lowers = Vec::with_capacity(layers.len().max(1));
    for diff_id in layers.iter().rev() {
        lowers.push(store.layer_lower(diff_id)?);
    }
    if lowers.is_empty() {
        let empty = cdir.join("empty");
        std::fs::create_dir_all(&empty).map_err(|e| DriverError::Io {
            path: empty.clone(),
            source: e,
        })?;
        lowers.push(empty);
    }
    match driver {
        Driver::Overlay => {
            // Short lower paths relative to layers/l keep the options within one page.
            let prev = std::env::current_dir().ok();
            sys.chdir(&store.links_dir())
                .map_err(|source| DriverError::Mount {
                    driver: "overlay",
                    source: source.into(),
                })?;
            let r = mount_kernel(sys, &lowers, &l.upper, &l.work, &l.merged, volatile);
            if let Some(p) = prev {
                let _ = sys.chdir(&p);
            }
            r?;
        }
        Driver::FuseOverlayfs => {
            let abs: Vec<PathBuf> = lowers
                .iter()
                .map(|p| {
                    if p.is_absolute() {
                        p.clone()
                    } else {
                        store.links_dir().join(p)
                    }
                })
                .collect();
            let squash = layers.iter().any(|d| store.layer_is_foreign(d));
            mount_fuse_opts(&abs, &l.upper, &l.work, &l.merged, squash)?;
        }
        Driver::Vfs => unreachable!(),
    }
    Ok(l.merged)
}

/// Mount `layers` (bottom first) read-only at `target`, merged as a container sees them
/// (whiteouts applied), with kernel overlay and no upper layer: `image squash` reads the image's
/// tree from it without a copy. `empty` is an empty directory, the second lower a single layer
/// needs (overlay wants two without an upper).
pub fn mount_layers_readonly(
    sys: &dyn Sys,
    store: &Store,
    layers: &[crate::digest::Digest],
    target: &Path,
    empty: &Path,
) -> super::Result<()> {
    let mut lowers = Vec::with_capacity(layers.len() + 1);
    for diff_id in layers.iter().rev() {
        lowers.push(store.layer_link(diff_id)?);
    }
    while lowers.len() < 2 {
        lowers.push(empty.display().to_string());
    }
    let mount_err = |source: crate::sys::SysError| DriverError::Mount {
        driver: "overlay",
        source: source.into(),
    };
    // Short lower paths relative to layers/l keep the options within one page.
    let prev = std::env::current_dir().ok();
    sys.chdir(&store.links_dir()).map_err(mount_err)?;
    let r = sys.mount(&Mount {
        source: Some("overlay".into()),
        target: target.into(),
        fstype: Some("overlay".into()),
        flags: MsFlags::MS_RDONLY,
        data: Some(format!("lowerdir={},userxattr", lowers.join(":"))),
    });
    if let Some(p) = prev {
        let _ = sys.chdir(&p);
    }
    r.map_err(mount_err)?;
    Ok(())
}

/// Mount a throwaway writable layer over the host directory `lower`: an overlay whose upper and
/// work directories are under `dir`, mounted at `Layout::of(dir).merged` (returned). What is
/// written there lands under `dir` and never in `lower`; undone by [`unmount`] with the same
/// `dir`. A build's `RUN --mount=type=bind,rw` binds this instead of the build context, as
/// BuildKit throws such writes away.
pub fn mount_over(
    sys: &dyn Sys,
    driver: Driver,
    lower: &Path,
    dir: &Path,
) -> super::Result<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let l = Layout::of(dir);
    for p in [&l.upper, &l.work, &l.merged] {
        std::fs::create_dir_all(p).map_err(|e| DriverError::Io {
            path: p.clone(),
            source: e,
        })?;
    }
    // overlay's options separate layers with ':' and options with ','.
    if lower
        .as_os_str()
        .as_bytes()
        .iter()
        .any(|b| matches!(b, b':' | b',' | b'\\'))
    {
        return Err(DriverError::Mount {
            driver: driver.name(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} has ':', ',' or '\\' in its path", lower.display()),
            ),
        }
        .into());
    }
    let lowers = [lower.to_path_buf()];
    match driver {
        Driver::Overlay => mount_kernel(sys, &lowers, &l.upper, &l.work, &l.merged, true)?,
        Driver::FuseOverlayfs => mount_fuse(&lowers, &l.upper, &l.work, &l.merged)?,
        Driver::Vfs => {
            return Err(DriverError::Mount {
                driver: driver.name(),
                source: std::io::Error::from(std::io::ErrorKind::Unsupported),
            }
            .into());
        }
    }
    Ok(l.merged)
}

/// Unmount what [`mount`] mounted (no-op for vfs).
pub fn unmount(sys: &dyn Sys, driver: Driver, cdir: &Path) {
    let merged = Layout::of(cdir).merged;
    match driver {
        Driver::Overlay => {
            let _ = sys.umount(&merged, true);
        }
        Driver::FuseOverlayfs => {
            if unmount_fuse(sys, &merged).is_err() {
                let _ = sys.umount(&merged, true);
            }
        }
        Driver::Vfs => {}
    }
}

// ------------------------------------------------------------------------------- vfs copy

/// Apply one unpacked layer (overlay format) onto `dest`: whiteouts delete, opaque directories
/// are emptied first, everything else is copied with owner, mode, times and hard links kept,
/// replacing what the layers below had at its name. The layer is read with the shared walk and
/// written with the shared writer ([`crate::fs`]); a small sink reads overlay's marks on the way.
pub fn copy_layer(layer: &Path, dest: &Path) -> super::Result<()> {
    copy_layer_as(layer, dest, fs::Owners::Keep)
}

/// [`copy_layer`], the entries given `owners` (`build --output type=local` writes the user's
/// own files, as buildx's local exporter does).
pub fn copy_layer_as(layer: &Path, dest: &Path, owners: fs::Owners) -> super::Result<()> {
    let rt = |e: fs::TreeError| {
        let (path, source) = e.into_io();
        DriverError::Io { path, source }
    };
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
    let top = crate::sys::open_at(None, layer, flags, Mode::empty()).map_err(|source| {
        DriverError::Io {
            path: layer.into(),
            source,
        }
    })?;
    let opts = fs::Walk {
        specials: true,
        opaque_xattr: Some(crate::unpack::OPAQUE_XATTR),
        ..Default::default()
    };
    let writer = fs::Writer::new(fs::HostDir(dest.to_path_buf()), owners, fs::Clash::Replace);
    let mut sink = Layer(writer);
    fs::walk(
        fs::Top::Dir(top),
        None,
        layer,
        opts,
        &mut Default::default(),
        &mut sink,
    )
    .map_err(rt)?;
    Ok(sink.0.finish().map_err(rt)?)
}

/// The writer, reading a layer's whiteouts (character devices 0/0: what is below is deleted)
/// and opaque directories (what is below is emptied first).
struct Layer(fs::Writer<fs::HostDir>);

impl fs::Sink for Layer {
    type Error = fs::TreeError;

    fn put(
        &mut self,
        rel: &Path,
        kind: &fs::Kind,
        meta: &fs::Meta,
        data: fs::Data<'_>,
    ) -> Result<(), fs::TreeError> {
        match kind {
            fs::Kind::Char(0) => self.0.remove(rel),
            fs::Kind::Dir if meta.opaque => {
                self.0.remove(rel)?;
                self.0.put(rel, kind, meta, data)
            }
            _ => self.0.put(rel, kind, meta, data),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::{Call, RecordingSys};
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn vfs_copy_applies_whiteouts_and_opaque_dirs() {
        let t = tempfile::tempdir().unwrap();
        let (l1, l2, out) = (
            t.path().join("l1"),
            t.path().join("l2"),
            t.path().join("out"),
        );
        for d in [&l1, &l2, &out] {
            std::fs::create_dir(d).unwrap();
        }
        std::fs::create_dir_all(l1.join("etc")).unwrap();
        std::fs::write(l1.join("etc/a"), b"a").unwrap();
        std::fs::write(l1.join("etc/b"), b"b").unwrap();
        std::fs::create_dir_all(l1.join("opq")).unwrap();
        std::fs::write(l1.join("opq/old"), b"o").unwrap();
        std::fs::hard_link(l1.join("etc/a"), l1.join("etc/a2")).unwrap();
        std::fs::create_dir_all(l2.join("etc")).unwrap();
        nix::sys::stat::mknod(
            &l2.join("etc/a"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        std::fs::create_dir(l2.join("opq")).unwrap();
        crate::sys::lsetxattr(&l2.join("opq"), crate::unpack::OPAQUE_XATTR, b"y").unwrap();
        std::fs::write(l2.join("opq/new"), b"n").unwrap();
        copy_layer(&l1, &out).unwrap();
        assert_eq!(
            std::fs::metadata(out.join("etc/a")).unwrap().ino(),
            std::fs::metadata(out.join("etc/a2")).unwrap().ino()
        );
        copy_layer(&l2, &out).unwrap();
        assert!(!out.join("etc/a").exists());
        assert!(out.join("etc/b").exists());
        assert!(!out.join("opq/old").exists());
        assert!(out.join("opq/new").exists());
    }

    #[test]
    fn kernel_overlay_is_not_tried_on_a_store_on_nfs() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path()).unwrap();
        let sys = RecordingSys::new();
        sys.mount_fs("/", 0x6969);
        let why = kernel_overlay(&sys, &store, &t.path().join("k")).unwrap_err();
        assert_eq!(
            why,
            "kernel overlayfs cannot keep containers' writable layers on nfs, the store's filesystem"
        );
        assert_eq!(sys.calls(), vec![]);
        // On a local disk the probe mounts (the fake says yes) and unmounts.
        let sys = RecordingSys::new();
        sys.mount_fs("/", 0xEF53);
        kernel_overlay(&sys, &store, &t.path().join("k")).unwrap();
        let calls = sys.calls();
        assert!(
            matches!(&calls[..], [Call::Mount(m), Call::Umount { .. }] if m.fstype.as_deref() == Some("overlay")),
            "{calls:?}"
        );
        // A filesystem the kernel does not name: tried, and its own error told.
        let sys = RecordingSys::new();
        let m = t.path().join("k/merged");
        sys.fail_on(
            Call::Mount(Mount {
                source: Some("overlay".into()),
                target: m,
                fstype: Some("overlay".into()),
                flags: MsFlags::empty(),
                data: Some(format!(
                    "{},userxattr",
                    overlay_options(
                        &[t.path().join("k/lower")],
                        &t.path().join("k/upper"),
                        &t.path().join("k/work")
                    )
                )),
            }),
            nix::errno::Errno::EINVAL,
        );
        let why = kernel_overlay(&sys, &store, &t.path().join("k")).unwrap_err();
        assert!(why.starts_with("kernel overlayfs failed ("), "{why}");
    }

    #[test]
    fn overlay_mounts_with_short_lowers_top_first() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path()).unwrap();
        let ids: Vec<crate::digest::Digest> = ["a", "b"]
            .iter()
            .map(|c| crate::digest::Digest::from_hex(&c.repeat(64)).unwrap())
            .collect();
        for id in &ids {
            let st = store.stage_layer().unwrap();
            store.commit_layer(st, id, 0, 0).unwrap();
        }
        let cdir = t.path().join("c");
        prepare(Driver::Overlay, &store, &ids, &cdir).unwrap();
        let sys = RecordingSys::new();
        let merged = mount(&sys, Driver::Overlay, &store, &ids, &cdir, false).unwrap();
        assert_eq!(merged, cdir.join("merged"));
        let mounts: Vec<Mount> = sys
            .calls()
            .into_iter()
            .filter_map(|c| {
                if let Call::Mount(m) = c {
                    Some(m)
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(mounts.len(), 1);
        let data = mounts[0].data.clone().unwrap();
        assert!(
            data.starts_with(&format!("lowerdir={}:{},", "b".repeat(16), "a".repeat(16))),
            "{data}"
        );
        assert!(data.ends_with(",userxattr"));
        assert_eq!(sys.calls()[0], Call::Chdir(store.links_dir()));
    }
}
