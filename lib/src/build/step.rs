//! The filesystem side of a build step: a root to change (the layers so far under a fresh
//! writable layer), COPY's file rules into it, and the writable layer committed as a new layer.
//!
//! A COPY step mounts the root in den-build's own mount namespace (den's user namespace, where
//! files keep their image owners) and copies into it: overlay copies up the parent directories
//! with their attributes. A RUN step's root is a container's, made by den-run; either way the
//! new layer is the writable layer.
//!
//! **Nothing outside the root is written.** The base image is not trusted: its symlinks (say
//! `/etc/app.conf -> /home/you/.bashrc`) must not turn COPY into a write to a host file. A
//! destination is resolved as docker resolves it, symlinks followed with the root as `/`
//! ([`scope::resolve`]); then every directory on the way is opened from the root's descriptor
//! one name at a time with `O_NOFOLLOW` ([`scope::open_beneath`]), and files, directories,
//! links, owners, modes and times are made relative to those descriptors (`*at` calls,
//! `O_CREAT|O_EXCL|O_NOFOLLOW`, `fchmod`/`fchown` on the open file). A symlink that appears on
//! the way after resolving is an error, never followed.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::fs;
use crate::store::driver::{self, Driver, Layout};
use crate::store::{LayerRef, Store};
use crate::unpack::scope;

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
    ) -> super::Result<StepRoot> {
        if driver == Driver::Vfs {
            return Err(BuildError::NeedsOverlay);
        }
        let driver = driver::for_layers(driver, store, layers);
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

    /// The driver it is mounted with (its writable layer is in that driver's format).
    pub fn driver(&self) -> Driver {
        self.driver
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
        let _ = crate::fs::remove_tree(&self.dir);
    }
}

/// Make a layer of a writable layer directory `upper`: archive it into a blob, then move it into
/// the store as the unpacked layer (kernel overlay's upper is already in the store's format;
/// another driver's is unpacked from the archive instead). Returns the layer's reference.
pub fn commit_upper(store: &Store, upper: &Path, driver: Driver) -> super::Result<LayerRef> {
    if driver != Driver::Overlay {
        return copy_upper(store, upper);
    }
    layer_of_upper(store, upper, |_, diff| {
        std::fs::remove_dir(diff)
            .and_then(|_| std::fs::rename(upper, diff))
            .map_err(|e| {
                crate::store::StoreError::Io {
                    path: upper.to_path_buf(),
                    source: e,
                }
                .into()
            })
    })
}

/// Make a layer of a writable layer directory `upper` that stays where it is (another driver's
/// step, or a container's for `den commit`): archived into a blob, then unpacked from it into
/// the store.
pub fn copy_upper(store: &Store, upper: &Path) -> super::Result<LayerRef> {
    layer_of_upper(store, upper, |layer, diff| unpack_into(store, layer, diff))
}

/// Make a layer of what changed in a whole root filesystem `root` (a vfs container's copy;
/// `changes` from [`crate::store::changes::of_copy`]): archived into a blob, then unpacked from
/// it into the store. `commit` of a vfs container.
pub fn copy_changes(
    store: &Store,
    root: &Path,
    changes: &[crate::store::changes::Change],
) -> super::Result<LayerRef> {
    crate::fs::sync_fs(root).map_err(crate::store::io_err(root))?;
    let (layer, stats) = super::layer::store_changes_tar(store, root, changes)?;
    stage_layer(store, layer, stats, |layer, diff| {
        unpack_into(store, layer, diff)
    })
}

/// Unpack `layer`'s blob into the staged diff directory `diff`, owners as they are.
fn unpack_into(store: &Store, layer: &LayerRef, diff: &Path) -> super::Result<()> {
    crate::unpack::unpack_file(
        &store.blob_path(&layer.blob),
        diff,
        crate::unpack::Options {
            owners: crate::unpack::Owners::Keep,
        },
        Some(&layer.diff_id),
    )
    .map(|_| ())
    .map_err(BuildError::from)
}

/// The road both share: sync `upper`, archive it into a blob, and (unless the store has the
/// layer already) stage a layer whose diff directory `fill` makes, then commit it; a failed
/// fill abandons the staging.
fn layer_of_upper(
    store: &Store,
    upper: &Path,
    fill: impl FnOnce(&LayerRef, &Path) -> super::Result<()>,
) -> super::Result<LayerRef> {
    crate::fs::sync_fs(upper).map_err(crate::store::io_err(upper))?;
    let (layer, stats) = super::layer::store_tar(store, upper)?;
    stage_layer(store, layer, stats, fill)
}

/// Unless the store has `layer` already, stage it, let `fill` make its diff directory, and
/// commit it; a failed fill abandons the staging.
fn stage_layer(
    store: &Store,
    layer: LayerRef,
    stats: super::layer::TarStats,
    fill: impl FnOnce(&LayerRef, &Path) -> super::Result<()>,
) -> super::Result<LayerRef> {
    if store.has_layer(&layer.diff_id) {
        return Ok(layer);
    }
    let staged = store.stage_layer()?;
    if let Err(e) = fill(&layer, &staged.diff()) {
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

/// A directory inside the step root, open, reached from the root without following a symlink.
pub struct Dir {
    fd: File,
    /// Its names below the root: its path in the image.
    names: Vec<OsString>,
}

impl Dir {
    /// Its path in the image, for messages and for [`crate::copy`].
    pub fn path(&self) -> PathBuf {
        let mut p = PathBuf::from("/");
        p.extend(&self.names);
        p
    }

    fn shown(&self, name: &OsStr) -> String {
        self.path().join(name).display().to_string()
    }

    fn raw(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |e| {
        crate::store::StoreError::Io {
            path: path.to_path_buf(),
            source: e,
        }
        .into()
    }
}

fn io_at(shown: &str) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |e| io(Path::new(shown))(e)
}

/// The directory `path` (absolute, in the image) inside `root`, and its missing parents, made
/// as needed (root's, 0755, docker's; `attrs.owner` for those COPY makes), symlinks in the image
/// followed inside the root.
pub fn mkdir_inside(root: &Path, path: &Path, attrs: Attrs) -> super::Result<Dir> {
    let host = scope::resolve(root, path, true).map_err(io(path))?;
    open_or_make(root, scope::names_below(root, &host), attrs)
}

/// Where COPY writes `path` (absolute, in the image): its directory (made as needed) and its
/// name there. Every component, the last one too, is resolved inside the root as docker does:
/// a symlink in the image is followed with the image's root as `/`.
pub fn target_inside(root: &Path, path: &Path, attrs: Attrs) -> super::Result<(Dir, OsString)> {
    let host = scope::resolve(root, path, true).map_err(io(path))?;
    let mut names = scope::names_below(root, &host);
    let Some(name) = names.pop() else {
        return Err(BuildError::IsADirectory {
            path: path.display().to_string(),
        });
    };
    Ok((open_or_make(root, names, attrs)?, name))
}

/// Walk `names` from the root's descriptor, making each missing directory.
fn open_or_make(root: &Path, names: Vec<OsString>, attrs: Attrs) -> super::Result<Dir> {
    let mut dir = Dir {
        fd: scope::open_root(root).map_err(io(root))?,
        names: Vec::new(),
    };
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW;
    for n in names {
        let shown = dir.shown(&n);
        if !scope::is_plain(&n) {
            return Err(io_at(&shown)(std::io::Error::from_raw_os_error(
                libc::EINVAL,
            )));
        }
        let opened =
            match crate::sys::open_at(Some(dir.fd.as_fd()), n.as_os_str(), flags, Mode::empty()) {
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    match nix::sys::stat::mkdirat(
                        Some(dir.raw()),
                        n.as_os_str(),
                        Mode::from_bits_truncate(0o700),
                    ) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(io_at(&shown)(e.into())),
                    }
                    let f = crate::sys::open_at(
                        Some(dir.fd.as_fd()),
                        n.as_os_str(),
                        flags,
                        Mode::empty(),
                    );
                    if let Ok(f) = &f {
                        chown_fd(f, attrs.owner);
                        nix::sys::stat::fchmod(f.as_raw_fd(), Mode::from_bits_truncate(0o755))
                            .map_err(|e| io_at(&shown)(e.into()))?;
                    }
                    f
                }
                r => r,
            };
        let fd = match opened {
            Ok(f) => f,
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                return Err(BuildError::NotADirectory { path: shown });
            }
            Err(e) => return Err(io_at(&shown)(e)),
        };
        dir.fd = fd;
        dir.names.push(n);
    }
    Ok(dir)
}

/// Create the regular file `name` in `dir` for writing, replacing a non-directory there (a
/// symlink is replaced, not followed; a FIFO is never opened).
fn create_file(dir: &Dir, name: &OsStr) -> super::Result<File> {
    let shown = dir.shown(name);
    match fs::write::existing_at(&dir.fd, name).map_err(io_at(&shown))? {
        Some(true) => return Err(BuildError::IsADirectory { path: shown }),
        Some(false) => fs::write::remove_at(&dir.fd, name, false).map_err(io_at(&shown))?,
        None => {}
    }
    crate::sys::open_at(
        Some(dir.fd.as_fd()),
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(io_at(&shown))
}

/// Write a file COPY or ADD makes from bytes (a heredoc, a download) as `name` in `dir`: owned
/// by `attrs.owner`, mode `--chmod` or `default_mode`.
pub fn write_file(
    dir: &Dir,
    name: &OsStr,
    bytes: &[u8],
    attrs: Attrs,
    default_mode: u32,
) -> super::Result<()> {
    use std::io::Write;
    let shown = dir.shown(name);
    let mut f = create_file(dir, name)?;
    f.write_all(bytes).map_err(io_at(&shown))?;
    // Owner first: chown clears setuid and setgid.
    chown_fd(&f, attrs.owner);
    let bits = attrs.mode.unwrap_or(default_mode);
    nix::sys::stat::fchmod(f.as_raw_fd(), fs::write::mode(bits))
        .map_err(|e| io_at(&shown)(e.into()))?;
    Ok(())
}

/// fchown, tolerating ids the user namespace does not map (single-uid mode keeps root's).
fn chown_fd(f: &File, ids: (u32, u32)) {
    let _ = fs::write::fchown(f, ids);
}

/// The entries of directory `dir` (whose path in the context is `rel`) that `keep` accepts,
/// sorted by name, as (context path, host path). The build cache's key reads the context this
/// way; the copy itself reads it through [`crate::fs::walk`] with the same filter.
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

/// One COPY instruction's copies: the step root, open, and the files with other hard links it
/// has copied (their source's (device, inode), and where the first copy went below the root). A
/// second name of the same file becomes a hard link to the first copy, as docker's COPY keeps
/// them, across all the instruction's sources.
pub struct Links {
    root: File,
    first: fs::Links,
}

impl Links {
    /// An empty map for one instruction copying into `root`.
    pub fn new(root: &Path) -> super::Result<Links> {
        Ok(Links {
            root: scope::open_root(root).map_err(io(root))?,
            first: Default::default(),
        })
    }

    /// Walk `top` (the source `src`, at `rel` in the context) into the root at `to` (names
    /// below the root; empty: the root itself), as COPY writes: see [`copy_tree`].
    fn copy(
        &mut self,
        top: fs::Top,
        src: &Path,
        rel: &str,
        to: PathBuf,
        attrs: Attrs,
        keep: &fs::tree::Keep<'_>,
    ) -> super::Result<()> {
        let opts = fs::Walk {
            keep: Some(keep),
            keep_rel: rel,
            // Devices, fifos and sockets in a build context are skipped, as docker's tar of
            // the context does for sockets.
            specials: false,
            opaque_xattr: None,
        };
        let owner = fs::Owners::Fixed(attrs.owner.0, attrs.owner.1);
        let mut w = fs::Writer::new(InRoot(&self.root), owner, fs::Clash::NoFileOverDir)
            .with_mode(attrs.mode);
        fs::walk(top, Some(to), src, opts, &mut self.first, &mut w).map_err(tree_err)?;
        w.finish().map_err(tree_err)
    }
}

/// The step root as the place COPY's writer writes under: every directory is reached from the
/// root's descriptor one name at a time with `O_NOFOLLOW` ([`scope::open_beneath`]). Parents
/// always exist (the walk writes a directory before its entries; COPY's destination is made
/// by [`mkdir_inside`] or [`target_inside`]), so nothing is created on the way.
struct InRoot<'a>(&'a File);

impl fs::Place for InRoot<'_> {
    fn open_dir(&self, rel: &Path, _create: bool) -> Result<File, fs::TreeError> {
        let names: Vec<OsString> = rel.iter().map(OsStr::to_os_string).collect();
        scope::open_beneath(self.0, &names).map_err(|source| fs::TreeError::Io {
            path: self.shown(rel),
            source,
        })
    }

    /// Its path in the image.
    fn shown(&self, rel: &Path) -> PathBuf {
        Path::new("/").join(rel)
    }
}

/// A failed tree copy as a build error: a file over a directory is docker's "is a directory".
fn tree_err(e: fs::TreeError) -> BuildError {
    match e {
        fs::TreeError::OverwriteDir { path } => BuildError::IsADirectory {
            path: path.display().to_string(),
        },
        e => {
            let (path, source) = e.into_io();
            crate::store::StoreError::Io { path, source }.into()
        }
    }
}

/// Copy the contents of the host directory `src` (whose path in the context is `rel`) into the
/// directory `dst` of the root, then give `dst` the source's owner, mode and times, as COPY does
/// with a directory source.
pub fn copy_dir_into(
    src: &Path,
    rel: &str,
    dst: &Dir,
    attrs: Attrs,
    keep: &dyn Fn(&str, bool) -> bool,
    links: &mut Links,
) -> super::Result<()> {
    // A source named on the command line is followed (a symlink to a directory copies it).
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
    let top = crate::sys::open_at(None, src, flags, Mode::empty()).map_err(io(src))?;
    let to: PathBuf = dst.names.iter().collect();
    links.copy(fs::Top::Dir(top), src, rel, to, attrs, keep)
}

/// Copy the host file or tree `src` to `name` in the directory `dir` of the root, as COPY does:
/// contents, modes (or `--chmod`), times, symlinks and hard links (through `links`, one map per
/// instruction) kept, owned by `attrs.owner`; devices, FIFOs and sockets skipped. `keep` says
/// which context paths (relative to the context root, `rel` for `src`) are copied. What is there
/// is replaced, except that a file never replaces a directory ([`BuildError::IsADirectory`]).
pub fn copy_tree(
    src: &Path,
    rel: &str,
    dir: &Dir,
    name: &OsStr,
    attrs: Attrs,
    keep: &dyn Fn(&str, bool) -> bool,
    links: &mut Links,
) -> super::Result<()> {
    // The source itself is not followed: a symlink is copied as one.
    let top = fs::Top::named(src).map_err(io(src))?;
    let mut to: PathBuf = dir.names.iter().collect();
    to.push(name);
    links.copy(top, src, rel, to, attrs, keep)
}
