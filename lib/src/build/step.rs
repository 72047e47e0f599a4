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
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::Mode;
use nix::sys::time::TimeSpec;

use crate::runtime::driver::{self, Driver, Layout};
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
        let _ = crate::fs::remove_tree(&self.dir);
    }
}

/// Make a layer of a writable layer directory `upper`: archive it into a blob, then move it into
/// the store as the unpacked layer (kernel overlay's upper is already in the store's format;
/// another driver's is unpacked from the archive instead). Returns the layer's reference.
pub fn commit_upper(store: &Store, upper: &Path, driver: Driver) -> crate::Result<LayerRef> {
    crate::fs::sync_fs(upper).map_err(|source| crate::store::StoreError::Io {
        path: upper.to_path_buf(),
        source,
    })?;
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

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> crate::Error + '_ {
    move |e| {
        crate::store::StoreError::Io {
            path: path.to_path_buf(),
            source: e,
        }
        .into()
    }
}

fn io_at(shown: &str) -> impl FnOnce(std::io::Error) -> crate::Error + '_ {
    move |e| io(Path::new(shown))(e)
}

/// The directory `path` (absolute, in the image) inside `root`, and its missing parents, made
/// as needed (root's, 0755, docker's; `attrs.owner` for those COPY makes), symlinks in the image
/// followed inside the root.
pub fn mkdir_inside(root: &Path, path: &Path, attrs: Attrs) -> crate::Result<Dir> {
    let host = scope::resolve(root, path, true).map_err(io(path))?;
    open_or_make(root, scope::names_below(root, &host), attrs)
}

/// Where COPY writes `path` (absolute, in the image): its directory (made as needed) and its
/// name there. Every component, the last one too, is resolved inside the root as docker does:
/// a symlink in the image is followed with the image's root as `/`.
pub fn target_inside(root: &Path, path: &Path, attrs: Attrs) -> crate::Result<(Dir, OsString)> {
    let host = scope::resolve(root, path, true).map_err(io(path))?;
    let mut names = scope::names_below(root, &host);
    let Some(name) = names.pop() else {
        return Err(BuildError::IsADirectory {
            path: path.display().to_string(),
        }
        .into());
    };
    Ok((open_or_make(root, names, attrs)?, name))
}

/// Walk `names` from the root's descriptor, making each missing directory.
fn open_or_make(root: &Path, names: Vec<OsString>, attrs: Attrs) -> crate::Result<Dir> {
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
                return Err(BuildError::NotADirectory { path: shown }.into());
            }
            Err(e) => return Err(io_at(&shown)(e)),
        };
        dir.fd = fd;
        dir.names.push(n);
    }
    Ok(dir)
}

/// What is at `name` in `dir` now (not following a symlink): `Some(true)` for a directory.
fn existing(dir: &Dir, name: &OsStr) -> crate::Result<Option<bool>> {
    match nix::sys::stat::fstatat(Some(dir.raw()), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st.st_mode & libc::S_IFMT == libc::S_IFDIR)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(io_at(&dir.shown(name))(e.into())),
    }
}

/// Remove what is at `name` in `dir`, a whole tree if it is a directory.
fn remove_at(dir: &Dir, name: &OsStr, is_dir: bool) -> crate::Result<()> {
    let shown = dir.shown(name);
    if is_dir {
        // Through the directory's descriptor: no path above it is looked up again.
        let p = PathBuf::from(format!("/proc/self/fd/{}", dir.raw())).join(name);
        crate::fs::remove_tree(&p).map_err(io_at(&shown))
    } else {
        nix::unistd::unlinkat(
            Some(dir.raw()),
            name,
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        )
        .map_err(|e| io_at(&shown)(e.into()))
    }
}

/// Create the regular file `name` in `dir` for writing, replacing a non-directory there (a
/// symlink is replaced, not followed; a FIFO is never opened).
fn create_file(dir: &Dir, name: &OsStr) -> crate::Result<File> {
    match existing(dir, name)? {
        Some(true) => {
            return Err(BuildError::IsADirectory {
                path: dir.shown(name),
            }
            .into());
        }
        Some(false) => remove_at(dir, name, false)?,
        None => {}
    }
    crate::sys::open_at(
        Some(dir.fd.as_fd()),
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(io_at(&dir.shown(name)))
}

/// Write a file COPY or ADD makes from bytes (a heredoc, a download) as `name` in `dir`: owned
/// by `attrs.owner`, mode `--chmod` or `default_mode`.
pub fn write_file(
    dir: &Dir,
    name: &OsStr,
    bytes: &[u8],
    attrs: Attrs,
    default_mode: u32,
) -> crate::Result<()> {
    use std::io::Write;
    let shown = dir.shown(name);
    let mut f = create_file(dir, name)?;
    f.write_all(bytes).map_err(io_at(&shown))?;
    // Owner first: chown clears setuid and setgid.
    chown_fd(&f, attrs.owner);
    nix::sys::stat::fchmod(f.as_raw_fd(), mode(attrs.mode.unwrap_or(default_mode)))
        .map_err(|e| io_at(&shown)(e.into()))?;
    Ok(())
}

fn mode(bits: u32) -> Mode {
    Mode::from_bits_truncate(bits & 0o7777)
}

/// fchown, tolerating ids the user namespace does not map (single-uid mode keeps root's).
fn chown_fd(f: &File, (uid, gid): (u32, u32)) {
    let _ = nix::unistd::fchown(
        f.as_raw_fd(),
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
    );
}

/// The same for `name` in `dir` itself (a symlink is not followed).
fn chown_at(dir: &Dir, name: &OsStr, (uid, gid): (u32, u32)) {
    let _ = nix::unistd::fchownat(
        Some(dir.raw()),
        name,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    );
}

fn times(md: &std::fs::Metadata) -> [TimeSpec; 2] {
    [
        TimeSpec::new(md.atime(), md.atime_nsec()),
        TimeSpec::new(md.mtime(), md.mtime_nsec()),
    ]
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
/// source, and the path (names below the root) it was copied to. A second name of the same file
/// becomes a hard link to the first copy, as docker's COPY keeps them.
pub struct Links {
    root: File,
    first: std::collections::HashMap<(u64, u64), Vec<OsString>>,
}

impl Links {
    /// An empty map for one instruction copying into `root`.
    pub fn new(root: &Path) -> crate::Result<Links> {
        Ok(Links {
            root: scope::open_root(root).map_err(io(root))?,
            first: Default::default(),
        })
    }

    /// Link `name` in `dir` to the first copy of the file with `key`; false when this is the
    /// first (which is then recorded).
    fn link(&mut self, key: (u64, u64), dir: &Dir, name: &OsStr) -> crate::Result<bool> {
        let Some(first) = self.first.get(&key) else {
            let mut names = dir.names.clone();
            names.push(name.to_os_string());
            self.first.insert(key, names);
            return Ok(false);
        };
        let (last, parent) = first.split_last().expect("a copied file has a name");
        let shown = dir.shown(name);
        let pdir = scope::open_beneath(&self.root, parent).map_err(io_at(&shown))?;
        // No AT_SYMLINK_FOLLOW: the link is to the copy itself, whatever it is now.
        nix::unistd::linkat(
            Some(pdir.as_raw_fd()),
            last.as_os_str(),
            Some(dir.raw()),
            name,
            AtFlags::empty(),
        )
        .map_err(|e| io_at(&shown)(e.into()))?;
        Ok(true)
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
) -> crate::Result<()> {
    // A source named on the command line is followed (a symlink to a directory copies it).
    let md = std::fs::metadata(src).map_err(io(src))?;
    for (child_rel, child) in kept_children(src, rel, keep).map_err(io(src))? {
        let n = child.file_name().unwrap_or_default().to_os_string();
        copy_tree(&child, &child_rel, dst, &n, attrs, keep, links)?;
    }
    finish(&dst.fd, &dst.path().display().to_string(), &md, attrs)
}

/// Owner, mode (`--chmod` or the source's) and times for a file or directory COPY made.
fn finish(f: &File, shown: &str, md: &std::fs::Metadata, attrs: Attrs) -> crate::Result<()> {
    chown_fd(f, attrs.owner);
    let m = attrs.mode.unwrap_or(md.mode() & 0o7777);
    nix::sys::stat::fchmod(f.as_raw_fd(), mode(m)).map_err(|e| io_at(shown)(e.into()))?;
    let [atime, mtime] = times(md);
    let _ = nix::sys::stat::futimens(f.as_raw_fd(), &atime, &mtime);
    Ok(())
}

/// Copy the host file or tree `src` to `name` in the directory `dir` of the root, as COPY does:
/// contents, modes (or `--chmod`), times, symlinks and hard links (through `links`, one map per
/// instruction) kept, owned by `attrs.owner`. `keep` says which context paths (relative to the
/// context root, `rel` for `src`) are copied.
pub fn copy_tree(
    src: &Path,
    rel: &str,
    dir: &Dir,
    name: &OsStr,
    attrs: Attrs,
    keep: &dyn Fn(&str, bool) -> bool,
    links: &mut Links,
) -> crate::Result<()> {
    let shown = dir.shown(name);
    let md = std::fs::symlink_metadata(src).map_err(io(src))?;
    let ft = md.file_type();
    let now = existing(dir, name)?;
    if ft.is_dir() {
        match now {
            Some(true) => {}
            Some(false) => {
                remove_at(dir, name, false)?;
                mkdir_at(dir, name)?;
            }
            None => mkdir_at(dir, name)?,
        }
        let child = Dir {
            fd: crate::sys::open_at(
                Some(dir.fd.as_fd()),
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
                Mode::empty(),
            )
            .map_err(io_at(&shown))?,
            names: {
                let mut n = dir.names.clone();
                n.push(name.to_os_string());
                n
            },
        };
        for (child_rel, c) in kept_children(src, rel, keep).map_err(io(src))? {
            let n = c.file_name().unwrap_or_default().to_os_string();
            copy_tree(&c, &child_rel, &child, &n, attrs, keep, links)?;
        }
        finish(&child.fd, &shown, &md, attrs)
    } else if ft.is_symlink() {
        let target = std::fs::read_link(src).map_err(io(src))?;
        if let Some(is_dir) = now {
            remove_at(dir, name, is_dir)?;
        }
        nix::unistd::symlinkat(target.as_path(), Some(dir.raw()), name)
            .map_err(|e| io_at(&shown)(e.into()))?;
        chown_at(dir, name, attrs.owner);
        let [atime, mtime] = times(&md);
        let _ = nix::sys::stat::utimensat(
            Some(dir.raw()),
            name,
            &atime,
            &mtime,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        );
        Ok(())
    } else if ft.is_file() {
        if now == Some(true) {
            return Err(BuildError::IsADirectory { path: shown }.into());
        }
        if md.nlink() > 1 {
            if now.is_some() {
                remove_at(dir, name, false)?;
            }
            // The first copy already has the owner, mode and times.
            if links.link((md.dev(), md.ino()), dir, name)? {
                return Ok(());
            }
        }
        // The source is opened without following a symlink, and never blocks on a FIFO put
        // in its place (a --from stage's files are an image's).
        let mut from = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(src)
            .map_err(io(src))?;
        if !from.metadata().map_err(io(src))?.is_file() {
            return Ok(());
        }
        let mut to = create_file(dir, name)?;
        std::io::copy(&mut from, &mut to).map_err(io_at(&shown))?;
        finish(&to, &shown, &md, attrs)
    } else {
        // Devices, fifos and sockets in a build context are skipped, as docker's tar of the
        // context does for sockets.
        Ok(())
    }
}

/// A new directory `name` in `dir`, owner-only until [`finish`] gives it its mode.
fn mkdir_at(dir: &Dir, name: &OsStr) -> crate::Result<()> {
    nix::sys::stat::mkdirat(Some(dir.raw()), name, Mode::from_bits_truncate(0o700))
        .map_err(|e| io_at(&dir.shown(name))(e.into()))
}
