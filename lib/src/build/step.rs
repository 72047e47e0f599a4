//! The filesystem side of a build step: a root to change (the layers so far under a fresh
//! writable layer), COPY's file rules into it, and the writable layer committed as a new layer.
//!
//! A COPY step mounts the root in den-build's own mount namespace (den's user namespace, where
//! files keep their image owners) and copies into it: overlay copies up the parent directories
//! with their attributes, and symlinks in the image resolve inside the root. A RUN step's root
//! is a container's, made by den-run; either way the new layer is the writable layer.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::runtime::driver::{self, Driver, Layout};
use crate::store::{LayerRef, Store};

use super::BuildError;

/// A mounted root for a step that den-build changes itself (COPY, ADD).
pub struct StepRoot {
    pub dir: PathBuf,
    pub merged: PathBuf,
    driver: Driver,
    mounted: bool,
    /// Locks `dir` (a staging entry under `tmp/`) so other dens' sweeps leave it alone; dropped
    /// after `Drop::drop` has removed it.
    _staging: crate::store::Staging,
}

impl StepRoot {
    /// Mount `layers` (bottom first) under a fresh writable layer in a staging directory.
    pub fn mount(
        store: &Store,
        layers: &[crate::digest::Digest],
        driver: Driver,
    ) -> crate::Result<StepRoot> {
        if driver == Driver::Vfs {
            return Err(BuildError::NeedsOverlay.into());
        }
        let staging = store.staging_dir("step")?;
        let dir = staging.path.clone();
        driver::prepare(driver, store, layers, &dir)?;
        let merged = driver::mount(&crate::sys::LinuxSys, driver, store, layers, &dir, false)?;
        Ok(StepRoot {
            dir,
            merged,
            driver,
            mounted: true,
            _staging: staging,
        })
    }

    pub fn upper(&self) -> PathBuf {
        Layout::of(&self.dir).upper
    }

    /// Unmount, keeping the writable layer for [`commit_upper`].
    pub fn unmount(&mut self) {
        if self.mounted {
            driver::unmount(&crate::sys::LinuxSys, self.driver, &self.dir);
            self.mounted = false;
        }
    }
}

impl Drop for StepRoot {
    fn drop(&mut self) {
        self.unmount();
        let _ = crate::store::remove_tree(&self.dir);
    }
}

/// Make a layer of a writable layer directory `upper`: archive it into a blob, then move it into
/// the store as the unpacked layer (kernel overlay's upper is already in the store's format;
/// another driver's is unpacked from the archive instead). Returns the layer's reference.
pub fn commit_upper(store: &Store, upper: &Path, driver: Driver) -> crate::Result<LayerRef> {
    crate::store::sync_fs(upper)?;
    let (layer, stats) = super::layer::store_tar(store, upper)?;
    if store.has_layer(&layer.diff_id) {
        return Ok(layer);
    }
    let staged = store.stage_layer()?;
    let placed = if driver == Driver::Overlay {
        std::fs::remove_dir(staged.diff())
            .and_then(|_| std::fs::rename(upper, staged.diff()))
            .map_err(|e| crate::store::StoreError::Io {
                path: upper.to_path_buf(),
                source: e,
            })
            .map_err(crate::Error::from)
    } else {
        crate::unpack::unpack_file(
            &store.blob_path(&layer.blob),
            &staged.diff(),
            crate::unpack::Options {
                owners: crate::unpack::Owners::Keep,
            },
            Some(&layer.diff_id),
        )
        .map(|_| ())
        .map_err(crate::Error::from)
    };
    if let Err(e) = placed {
        staged.abandon();
        return Err(e);
    }
    store.commit_layer(staged, &layer.diff_id, stats.size, stats.entries)?;
    Ok(layer)
}

/// Owner and mode COPY gives what it copies.
#[derive(Debug, Clone, Copy, Default)]
pub struct Attrs {
    /// `--chown` (uid, gid); root otherwise.
    pub owner: (u32, u32),
    /// `--chmod`.
    pub mode: Option<u32>,
}

/// Create `path` (absolute, in the root) and its missing parents inside `root`, resolving the
/// image's symlinks inside the root. New directories are root's, 0755 (docker's).
pub fn mkdir_inside(root: &Path, path: &str, attrs: Attrs) -> crate::Result<PathBuf> {
    let mut done = PathBuf::from("/");
    for comp in Path::new(path).components() {
        let std::path::Component::Normal(c) = comp else {
            continue;
        };
        done.push(c);
        let host = crate::unpack::scope::resolve(root, &done, true).map_err(io(&done))?;
        match std::fs::metadata(&host) {
            Ok(md) if md.is_dir() => {}
            Ok(_) => {
                return Err(BuildError::NotADirectory {
                    path: done.display().to_string(),
                }
                .into());
            }
            Err(_) => {
                std::fs::create_dir(&host).map_err(io(&host))?;
                std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o755))
                    .map_err(io(&host))?;
                chown(&host, attrs.owner);
            }
        }
    }
    crate::unpack::scope::resolve(root, Path::new(path), true).map_err(io(Path::new(path)))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> crate::Error + '_ {
    move |e| {
        crate::store::StoreError::Io {
            path: path.to_path_buf(),
            source: e,
        }
        .into()
    }
}

/// Write a file COPY or ADD makes from bytes (a heredoc, a download): owned by
/// `attrs.owner`, mode `--chmod` or `default_mode`.
pub fn write_file(path: &Path, bytes: &[u8], attrs: Attrs, default_mode: u32) -> crate::Result<()> {
    std::fs::write(path, bytes).map_err(io(path))?;
    chown(path, attrs.owner);
    std::fs::set_permissions(
        path,
        std::fs::Permissions::from_mode(attrs.mode.unwrap_or(default_mode)),
    )
    .map_err(io(path))?;
    Ok(())
}

/// lchown, tolerating ids the user namespace does not map (single-uid mode keeps root's).
fn chown(path: &Path, (uid, gid): (u32, u32)) {
    let _ = std::os::unix::fs::lchown(path, Some(uid), Some(gid));
}

/// The entries of directory `dir` (whose path in the context is `rel`) that `keep` accepts,
/// sorted by name, as (context path, host path).
pub fn kept_children(
    dir: &Path,
    rel: &str,
    keep: &dyn Fn(&str, bool) -> bool,
) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut names: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    names.sort();
    Ok(names
        .into_iter()
        .filter_map(|n| {
            let child_rel = if rel.is_empty() {
                n.to_string_lossy().into_owned()
            } else {
                format!("{rel}/{}", n.to_string_lossy())
            };
            let child = dir.join(&n);
            let is_dir = std::fs::symlink_metadata(&child).is_ok_and(|m| m.is_dir());
            keep(&child_rel, is_dir).then_some((child_rel, child))
        })
        .collect())
}

/// Files one COPY instruction has copied that have other hard links: (device, inode) of the
/// source, and the path it was copied to. A second name of the same file becomes a hard link to
/// the first copy, as docker's COPY keeps them.
pub type Links = std::collections::HashMap<(u64, u64), PathBuf>;

/// Copy the host file or tree `src` to the host path `dst` inside the root, as COPY does:
/// contents, modes (or `--chmod`), times, symlinks and hard links (through `links`, one map per
/// instruction) kept, owned by `attrs.owner`. `keep` says which context paths (relative to the
/// context root, `rel` for `src`) are copied.
pub fn copy_tree(
    src: &Path,
    rel: &str,
    dst: &Path,
    attrs: Attrs,
    keep: &dyn Fn(&str, bool) -> bool,
    links: &mut Links,
) -> crate::Result<()> {
    let md = std::fs::symlink_metadata(src).map_err(io(src))?;
    let ft = md.file_type();
    if ft.is_dir() {
        match std::fs::symlink_metadata(dst) {
            Ok(d) if d.is_dir() => {}
            Ok(_) => {
                std::fs::remove_file(dst).map_err(io(dst))?;
                std::fs::create_dir(dst).map_err(io(dst))?;
            }
            Err(_) => std::fs::create_dir(dst).map_err(io(dst))?,
        }
        for (child_rel, child) in kept_children(src, rel, keep).map_err(io(src))? {
            let n = child.file_name().unwrap_or_default().to_os_string();
            copy_tree(&child, &child_rel, &dst.join(&n), attrs, keep, links)?;
        }
    } else if ft.is_symlink() {
        let target = std::fs::read_link(src).map_err(io(src))?;
        if std::fs::symlink_metadata(dst).is_ok() {
            crate::store::remove_tree(dst).map_err(io(dst))?;
        }
        std::os::unix::fs::symlink(&target, dst).map_err(io(dst))?;
    } else if ft.is_file() {
        if std::fs::symlink_metadata(dst).is_ok_and(|d| d.is_dir()) {
            return Err(BuildError::NotADirectory {
                path: dst.display().to_string(),
            }
            .into());
        }
        let _ = std::fs::remove_file(dst);
        if md.nlink() > 1 {
            let key = (md.dev(), md.ino());
            if let Some(first) = links.get(&key) {
                // The first copy already has the owner, mode and times.
                return std::fs::hard_link(first, dst).map_err(io(dst));
            }
            links.insert(key, dst.to_path_buf());
        }
        std::fs::copy(src, dst).map_err(io(src))?;
    } else {
        // Devices, fifos and sockets in a build context are skipped, as docker's tar of the
        // context does for sockets.
        return Ok(());
    }
    chown(dst, attrs.owner);
    if !ft.is_symlink() {
        let mode = attrs.mode.unwrap_or(md.mode() & 0o7777);
        std::fs::set_permissions(dst, std::fs::Permissions::from_mode(mode)).map_err(io(dst))?;
    }
    let times = [
        nix::sys::time::TimeSpec::new(md.atime(), md.atime_nsec()),
        nix::sys::time::TimeSpec::new(md.mtime(), md.mtime_nsec()),
    ];
    let _ = nix::sys::stat::utimensat(
        None,
        dst,
        &times[0],
        &times[1],
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    );
    Ok(())
}
