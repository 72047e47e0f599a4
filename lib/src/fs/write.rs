//! The writing side of the tree copy: [`Writer`] makes the entries a walk ([`super::walk`]) or a
//! tar reader hands it, under a base directory, through descriptors.
//!
//! **Nothing is written through a path someone else could redirect.** Each entry's parent
//! directory is opened by the [`Place`] (which knows how to stay inside its base: `cp` resolves a
//! container's paths in scope and checks the descriptor it got; COPY walks down from the step
//! root's descriptor; den's own directories are walked name by name with `O_NOFOLLOW`), and the
//! entry is made relative to that descriptor: `mkdirat`, `openat(O_CREAT|O_EXCL|O_NOFOLLOW)`,
//! `symlinkat`, `linkat`, `mknodat`, then `fchown`/`fchmod`/`futimens` on the open file (or the
//! `*at` calls with `AT_SYMLINK_NOFOLLOW`). A symlink already there is replaced, never followed.
//!
//! **Directories are finished last.** They are made owner-only, filled, and given their owner,
//! mode and times at [`Writer::finish`], deepest first, so that a read-only directory can be
//! filled and its time is not disturbed by its children.
//!
//! **Policies, per copy:** whose ids the entries get ([`Owners`]), a mode for every file and
//! directory (COPY's `--chmod`), and what an entry does to one of another kind already there
//! ([`Clash`]). Owners the user namespace cannot map (`EPERM`, `EINVAL`: single-uid mode maps
//! only root) are left as they are, as rootless docker and podman do.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FchmodatFlags, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags};

use super::tree::{Data, Kind, Meta, Sink, Tracked};

/// A tree copy that failed. Callers name it in their own seam's error (`cp`'s, a build's, ...).
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("cannot copy {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Reading an entry's content failed: the file at `from`, or (`None`) the archive.
    #[error("cannot read {}", from.as_deref().unwrap_or(Path::new("the archive")).display())]
    Read {
        from: Option<PathBuf>,
        #[source]
        source: io::Error,
    },
    #[error("cannot overwrite directory {} with a non-directory", path.display())]
    OverwriteDir { path: PathBuf },
    #[error("cannot overwrite non-directory {} with a directory", path.display())]
    OverwriteNonDir { path: PathBuf },
    #[error("{} would lead outside the directory copied into", path.display())]
    Escape { path: PathBuf },
}

impl TreeError {
    /// The path and an OS error for it, for a seam whose error has a single I/O variant.
    pub fn into_io(self) -> (PathBuf, io::Error) {
        let os = |n| io::Error::from_raw_os_error(n);
        match self {
            TreeError::Io { path, source } => (path, source),
            TreeError::Read { from, source } => (from.unwrap_or_default(), source),
            TreeError::OverwriteDir { path } => (path, os(libc::EISDIR)),
            TreeError::OverwriteNonDir { path } => (path, os(libc::ENOTDIR)),
            TreeError::Escape { path } => (path, os(libc::EXDEV)),
        }
    }
}

fn io_at(shown: &Path) -> impl FnOnce(io::Error) -> TreeError + '_ {
    move |source| TreeError::Io {
        path: shown.to_owned(),
        source,
    }
}

fn errno_at(shown: &Path) -> impl FnOnce(Errno) -> TreeError + '_ {
    move |e| io_at(shown)(e.into())
}

/// The base directory a [`Writer`] writes under, and how its directories are reached safely.
pub trait Place {
    /// The directory `rel` (relative to the base; empty: the base itself), open; missing
    /// directories on the way are made when `create`.
    fn open_dir(&self, rel: &Path, create: bool) -> Result<File, TreeError>;
    /// How `rel` is named in errors.
    fn shown(&self, rel: &Path) -> PathBuf;
}

/// One of den's own directories (a volume being filled, a vfs root being built): the base is
/// opened as it is, and every name below it with `O_NOFOLLOW`.
pub struct HostDir(pub PathBuf);

impl Place for HostDir {
    fn open_dir(&self, rel: &Path, create: bool) -> Result<File, TreeError> {
        let shown = self.shown(rel);
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
        let mut dir =
            crate::sys::open_at(None, &self.0, flags, Mode::empty()).map_err(io_at(&shown))?;
        for c in rel.components() {
            let Component::Normal(name) = c else {
                return Err(TreeError::Escape { path: shown });
            };
            if create {
                match nix::sys::stat::mkdirat(Some(dir.as_raw_fd()), name, mode(0o755)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(errno_at(&shown)(e)),
                }
            }
            let nofollow = flags | OFlag::O_NOFOLLOW;
            dir = crate::sys::open_at(Some(dir.as_fd()), name, nofollow, Mode::empty())
                .map_err(io_at(&shown))?;
        }
        Ok(dir)
    }

    fn shown(&self, rel: &Path) -> PathBuf {
        self.0.join(rel)
    }
}

/// Whose ids the written entries get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owners {
    /// The writer's own (`cp` to the host).
    Unchanged,
    /// These (`cp` into a container: root's; COPY: `--chown`'s).
    Fixed(u32, u32),
    /// The entry's own, as far as they are mapped (a tar from stdin, a layer, copy-up).
    Keep,
}

/// What an entry does to one of another kind already at its name. Directories always merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clash {
    /// `cp`'s rule: a directory never replaces a non-directory, nor the other way round (an
    /// error); a non-directory replaces a non-directory.
    Refuse,
    /// Untar's and a layer's: whatever is there is replaced.
    Replace,
    /// COPY's: a file or a hard link never replaces a directory (an error); anything else is
    /// replaced.
    NoFileOverDir,
}

/// Writes entries into a directory tree under a [`Place`]; see the module doc.
pub struct Writer<P: Place> {
    place: P,
    owners: Owners,
    mode: Option<u32>,
    clash: Clash,
    dirs: Vec<(PathBuf, Meta)>,
    /// The last parent opened, by its relative path.
    parent: Option<(PathBuf, File)>,
}

impl<P: Place> Writer<P> {
    pub fn new(place: P, owners: Owners, clash: Clash) -> Self {
        Writer {
            place,
            owners,
            mode: None,
            clash,
            dirs: Vec::new(),
            parent: None,
        }
    }

    /// Give every file and directory this mode instead of its own (COPY's `--chmod`).
    pub fn with_mode(mut self, mode: Option<u32>) -> Self {
        self.mode = mode;
        self
    }

    pub fn place(&self) -> &P {
        &self.place
    }

    /// How `rel` is named in errors.
    pub fn shown(&self, rel: &Path) -> PathBuf {
        self.place.shown(rel)
    }

    /// Give the directories written their owners, modes and times, deepest first.
    pub fn finish(mut self) -> Result<(), TreeError> {
        self.parent = None;
        for (rel, meta) in self.dirs.iter().rev() {
            let shown = self.place.shown(rel);
            let dir = self.place.open_dir(rel, false)?;
            if let Some(ids) = self.owner(meta) {
                fchown(&dir, ids).map_err(io_at(&shown))?;
            }
            let m = self.mode.unwrap_or(meta.mode);
            nix::sys::stat::fchmod(dir.as_raw_fd(), mode(m)).map_err(errno_at(&shown))?;
            let (a, m) = times(meta);
            nix::sys::stat::futimens(dir.as_raw_fd(), &a, &m).map_err(errno_at(&shown))?;
        }
        Ok(())
    }

    /// Remove whatever is at `rel` (a whole tree for a directory); nothing there is fine.
    pub fn remove(&mut self, rel: &Path) -> Result<(), TreeError> {
        let (parent, name) = self.parent_of(rel)?;
        let shown = self.place.shown(rel);
        let found = existing_at(&parent, &name).map_err(io_at(&shown));
        let done = match found {
            Ok(Some(is_dir)) => remove_at(&parent, &name, is_dir).map_err(io_at(&shown)),
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        self.parent = Some((rel.parent().unwrap_or(Path::new("")).to_owned(), parent));
        done
    }

    fn owner(&self, meta: &Meta) -> Option<(u32, u32)> {
        match self.owners {
            Owners::Unchanged => None,
            Owners::Fixed(u, g) => Some((u, g)),
            Owners::Keep => Some((meta.uid, meta.gid)),
        }
    }

    /// The open parent of `rel` (the last one is kept: a walk writes siblings in a row) and
    /// `rel`'s name in it.
    fn parent_of(&mut self, rel: &Path) -> Result<(File, OsString), TreeError> {
        let (prel, name) = split_rel(rel).ok_or_else(|| TreeError::Escape {
            path: self.place.shown(rel),
        })?;
        let parent = match self.parent.take() {
            Some((r, f)) if r == prel => f,
            _ => self.place.open_dir(&prel, true)?,
        };
        Ok((parent, name))
    }

    /// Make the directory `name` in `parent` (or keep the one there); finished later.
    fn write_dir(
        &mut self,
        parent: &File,
        name: &OsStr,
        rel: &Path,
        existing: Option<bool>,
        meta: &Meta,
    ) -> Result<(), TreeError> {
        let shown = self.place.shown(rel);
        let pfd = Some(parent.as_raw_fd());
        match existing {
            Some(true) => {}
            Some(false) if self.clash == Clash::Refuse => {
                return Err(TreeError::OverwriteNonDir { path: shown });
            }
            Some(false) => {
                nix::unistd::unlinkat(pfd, name, UnlinkatFlags::NoRemoveDir)
                    .map_err(errno_at(&shown))?;
                nix::sys::stat::mkdirat(pfd, name, mode(0o700)).map_err(errno_at(&shown))?
            }
            // Owner-only until `finish` sets its mode, so that it can be filled.
            None => nix::sys::stat::mkdirat(pfd, name, mode(0o700)).map_err(errno_at(&shown))?,
        }
        self.dirs.push((rel.to_owned(), *meta));
        Ok(())
    }

    /// Clear the way for a non-directory at `name`, as [`Clash`] says.
    fn clear(
        &self,
        parent: &File,
        name: &OsStr,
        kind: &Kind,
        existing: Option<bool>,
        shown: &Path,
    ) -> Result<(), TreeError> {
        let refused = match self.clash {
            Clash::Refuse => true,
            Clash::Replace => false,
            Clash::NoFileOverDir => matches!(kind, Kind::File(_) | Kind::Link(_)),
        };
        match existing {
            Some(true) if refused => Err(TreeError::OverwriteDir {
                path: shown.to_owned(),
            }),
            Some(is_dir) => remove_at(parent, name, is_dir).map_err(io_at(shown)),
            None => Ok(()),
        }
    }

    fn write(
        &mut self,
        parent: &File,
        name: &OsStr,
        rel: &Path,
        kind: &Kind,
        meta: &Meta,
        data: Data<'_>,
    ) -> Result<(), TreeError> {
        let shown = self.place.shown(rel);
        let existing = existing_at(parent, name).map_err(io_at(&shown))?;
        if *kind == Kind::Dir {
            return self.write_dir(parent, name, rel, existing, meta);
        }
        self.clear(parent, name, kind, existing, &shown)?;
        let owner = self.owner(meta);
        match kind {
            Kind::Dir => unreachable!("handled above"),
            Kind::File(size) => {
                let m = self.mode.unwrap_or(meta.mode);
                write_file(parent, name, *size, owner, m, meta, data, &shown)
            }
            Kind::Symlink(target) => {
                let pfd = Some(parent.as_raw_fd());
                nix::unistd::symlinkat(target.as_path(), pfd, name).map_err(errno_at(&shown))?;
                if let Some(ids) = owner {
                    chown_at(parent.as_raw_fd(), name, ids).map_err(io_at(&shown))?;
                }
                set_times_at(parent, name, meta).map_err(errno_at(&shown))
            }
            Kind::Link(target) => self.link(parent, name, target),
            Kind::Fifo | Kind::Char(_) | Kind::Block(_) => {
                write_special(parent, name, kind, owner, meta, &shown)
            }
        }
    }

    /// A hard link `name` in `parent` to the entry already written at `target`.
    fn link(&mut self, parent: &File, name: &OsStr, target: &Path) -> Result<(), TreeError> {
        let shown = self.place.shown(target);
        let (tparent, tname) = split_rel(target).ok_or_else(|| TreeError::Escape {
            path: shown.clone(),
        })?;
        let tdir = self.place.open_dir(&tparent, false)?;
        // No AT_SYMLINK_FOLLOW: the link is to the entry itself, whatever it is now.
        nix::unistd::linkat(
            Some(tdir.as_raw_fd()),
            tname.as_os_str(),
            Some(parent.as_raw_fd()),
            name,
            AtFlags::empty(),
        )
        .map_err(errno_at(&shown))
    }
}

impl<P: Place> Sink for Writer<P> {
    type Error = TreeError;

    fn put(
        &mut self,
        rel: &Path,
        kind: &Kind,
        meta: &Meta,
        data: Data<'_>,
    ) -> Result<(), TreeError> {
        if rel.as_os_str().is_empty() && *kind == Kind::Dir {
            // The base itself: only finished.
            self.dirs.push((PathBuf::new(), *meta));
            return Ok(());
        }
        let (parent, name) = self.parent_of(rel)?;
        let res = self.write(&parent, &name, rel, kind, meta, data);
        self.parent = Some((rel.parent().unwrap_or(Path::new("")).to_owned(), parent));
        res
    }
}

/// A regular file `name` in `parent`: exactly `size` bytes of `data`, then owner, mode, times.
#[allow(clippy::too_many_arguments)]
fn write_file(
    parent: &File,
    name: &OsStr,
    size: u64,
    owner: Option<(u32, u32)>,
    bits: u32,
    meta: &Meta,
    data: Data<'_>,
    shown: &Path,
) -> Result<(), TreeError> {
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW;
    let mut f = crate::sys::open_at(Some(parent.as_fd()), name, flags, mode(0o600))
        .map_err(io_at(shown))?;
    let mut src = Tracked::new(data.r);
    if let Err(e) = io::copy(&mut (&mut src).take(size), &mut f) {
        return Err(match src.failed.take() {
            Some(re) => data.read_error(re),
            None => io_at(shown)(e),
        });
    }
    // Owner first: chown clears setuid and setgid.
    if let Some(ids) = owner {
        fchown(&f, ids).map_err(io_at(shown))?;
    }
    let fd = f.as_raw_fd();
    nix::sys::stat::fchmod(fd, mode(bits)).map_err(errno_at(shown))?;
    let (atime, mtime) = times(meta);
    nix::sys::stat::futimens(fd, &atime, &mtime).map_err(errno_at(shown))
}

/// A FIFO or device node `name` in `parent`. Device nodes cannot be made in a user namespace;
/// they are skipped then, as rootless docker and podman do.
fn write_special(
    parent: &File,
    name: &OsStr,
    kind: &Kind,
    owner: Option<(u32, u32)>,
    meta: &Meta,
    shown: &Path,
) -> Result<(), TreeError> {
    let pfd = parent.as_raw_fd();
    let (t, dev) = match kind {
        Kind::Char(d) => (SFlag::S_IFCHR, *d),
        Kind::Block(d) => (SFlag::S_IFBLK, *d),
        _ => (SFlag::S_IFIFO, 0),
    };
    match nix::sys::stat::mknodat(Some(pfd), name, t, mode(0o600), dev) {
        Ok(()) => {}
        Err(Errno::EPERM) if t != SFlag::S_IFIFO => return Ok(()),
        Err(e) => return Err(errno_at(shown)(e)),
    }
    if let Some(ids) = owner {
        chown_at(pfd, name, ids).map_err(io_at(shown))?;
    }
    // Without following a symlink someone may have put there meanwhile; a libc that cannot
    // leaves the node owner-only.
    match nix::sys::stat::fchmodat(
        Some(pfd),
        name,
        mode(meta.mode),
        FchmodatFlags::NoFollowSymlink,
    ) {
        Ok(()) | Err(Errno::EOPNOTSUPP) => {}
        Err(e) => return Err(errno_at(shown)(e)),
    }
    set_times_at(parent, name, meta).map_err(errno_at(shown))
}

/// `rel` as its parent and last name, when it has only plain names.
pub fn split_rel(rel: &Path) -> Option<(PathBuf, OsString)> {
    if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return None;
    }
    let name = rel.file_name()?.to_owned();
    Some((rel.parent().unwrap_or(Path::new("")).to_owned(), name))
}

/// What is at `name` in `dir` now (not following a symlink): `Some(true)` for a directory.
pub fn existing_at(dir: &File, name: &OsStr) -> io::Result<Option<bool>> {
    match nix::sys::stat::fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st.st_mode & libc::S_IFMT == libc::S_IFDIR)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Remove what is at `name` in `dir`, a whole tree if it is a directory.
pub fn remove_at(dir: &File, name: &OsStr, is_dir: bool) -> io::Result<()> {
    if is_dir {
        // Through the directory's descriptor: no path above it is looked up again.
        let p = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name);
        super::remove_tree(&p)
    } else {
        nix::unistd::unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir)
            .map_err(io::Error::from)
    }
}

/// Whether a chown error is the user namespace refusing ids it does not map.
fn unmapped(e: Errno) -> bool {
    matches!(e, Errno::EPERM | Errno::EINVAL)
}

/// fchown, leaving ids the user namespace does not map as they are (and recording them:
/// [`super::owner`]).
pub fn fchown(f: &File, (uid, gid): (u32, u32)) -> io::Result<()> {
    let (u, g) = (Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)));
    match nix::unistd::fchown(f.as_raw_fd(), u, g) {
        Err(Errno::EINVAL) => {
            super::owner::record(f, (uid, gid));
            Ok(())
        }
        Err(e) if !unmapped(e) => Err(e.into()),
        _ => Ok(()),
    }
}

/// lchown of `name` in `dir`, leaving ids the user namespace does not map as they are (and
/// recording them, except on a symlink: [`super::owner`]).
pub fn chown_at(dir: RawFd, name: &OsStr, (uid, gid): (u32, u32)) -> io::Result<()> {
    let (u, g) = (Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)));
    match nix::unistd::fchownat(Some(dir), name, u, g, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Err(Errno::EINVAL) => {
            super::owner::record_at(dir, name, (uid, gid));
            Ok(())
        }
        Err(e) if !unmapped(e) => Err(e.into()),
        _ => Ok(()),
    }
}

/// Permission bits as a [`Mode`].
pub fn mode(bits: u32) -> Mode {
    Mode::from_bits_truncate(bits & 0o7777)
}

fn times(meta: &Meta) -> (TimeSpec, TimeSpec) {
    (
        TimeSpec::new(meta.atime.0, meta.atime.1),
        TimeSpec::new(meta.mtime.0, meta.mtime.1),
    )
}

fn set_times_at(dir: &File, name: &OsStr, meta: &Meta) -> Result<(), Errno> {
    let (atime, mtime) = times(meta);
    let flags = UtimensatFlags::NoFollowSymlink;
    nix::sys::stat::utimensat(Some(dir.as_raw_fd()), name, &atime, &mtime, flags)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

    use super::*;
    use crate::fs::{Links, Top, Walk, walk};

    fn copy(
        src: &Path,
        rel: Option<&str>,
        w: &mut Writer<HostDir>,
        opts: Walk<'_>,
        links: &mut Links,
    ) -> Result<(), TreeError> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
        let top = crate::sys::open_at(None, src, flags, Mode::empty()).unwrap();
        walk(Top::Dir(top), rel.map(PathBuf::from), src, opts, links, w)
    }

    fn mode_of(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
    }

    /// src/{a (0640, two links: a and sub/a2), sub/ (0750), link -> /etc/passwd, fifo, skip/x}.
    fn tree(t: &Path) -> (PathBuf, PathBuf) {
        let (src, dst) = (t.join("src"), t.join("dst"));
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::create_dir_all(src.join("skip")).unwrap();
        std::fs::create_dir(&dst).unwrap();
        std::fs::write(src.join("a"), b"A").unwrap();
        std::fs::write(src.join("skip/x"), b"x").unwrap();
        std::fs::set_permissions(src.join("a"), std::fs::Permissions::from_mode(0o640)).unwrap();
        std::fs::hard_link(src.join("a"), src.join("sub/a2")).unwrap();
        std::fs::set_permissions(src.join("sub"), std::fs::Permissions::from_mode(0o750)).unwrap();
        symlink("/etc/passwd", src.join("link")).unwrap();
        nix::unistd::mkfifo(&src.join("fifo"), Mode::from_bits_truncate(0o644)).unwrap();
        (src, dst)
    }

    #[test]
    fn a_walk_copies_modes_symlinks_and_hard_links_through_the_filter() {
        let t = tempfile::tempdir().unwrap();
        let (src, dst) = tree(t.path());
        let keep = |rel: &str, _dir: bool| rel != "skip";
        let opts = Walk {
            keep: Some(&keep),
            ..Default::default()
        };
        let mut w = Writer::new(HostDir(dst.clone()), Owners::Unchanged, Clash::Refuse);
        let mut links = Links::new();
        copy(&src, None, &mut w, opts, &mut links).unwrap();
        w.finish().unwrap();
        assert_eq!(std::fs::read(dst.join("a")).unwrap(), b"A");
        assert_eq!(mode_of(&dst.join("a")), 0o640);
        assert_eq!(mode_of(&dst.join("sub")), 0o750);
        let ino = |p: &str| std::fs::metadata(dst.join(p)).unwrap().ino();
        assert_eq!(ino("a"), ino("sub/a2"));
        assert_eq!(
            std::fs::read_link(dst.join("link")).unwrap(),
            Path::new("/etc/passwd")
        );
        assert!(!dst.join("skip").exists(), "filtered out");
        assert!(!dst.join("fifo").exists(), "specials skipped unless asked");
    }

    #[test]
    fn a_mode_override_and_the_base_itself() {
        let t = tempfile::tempdir().unwrap();
        let (src, dst) = tree(t.path());
        let mut w = Writer::new(HostDir(dst.clone()), Owners::Unchanged, Clash::Refuse)
            .with_mode(Some(0o711));
        let opts = Walk {
            specials: true,
            ..Default::default()
        };
        copy(&src, Some(""), &mut w, opts, &mut Links::new()).unwrap();
        w.finish().unwrap();
        assert_eq!(mode_of(&dst), 0o711, "the base is the top directory");
        assert_eq!(mode_of(&dst.join("a")), 0o711);
        assert_eq!(mode_of(&dst.join("sub")), 0o711);
        assert_eq!(
            mode_of(&dst.join("fifo")),
            0o644,
            "only files and directories"
        );
    }

    #[test]
    fn clashes_follow_the_policy() {
        let t = tempfile::tempdir().unwrap();
        let (src, dst) = tree(t.path());
        // A directory where the source has a file, a file where it has a directory.
        std::fs::create_dir(dst.join("a")).unwrap();
        std::fs::write(dst.join("sub"), b"file").unwrap();
        let opts = Walk::default();
        let mut w = Writer::new(HostDir(dst.clone()), Owners::Unchanged, Clash::Refuse);
        let e = copy(&src, None, &mut w, opts, &mut Links::new()).unwrap_err();
        assert!(matches!(e, TreeError::OverwriteDir { .. }), "{e:?}");
        let mut w = Writer::new(
            HostDir(dst.clone()),
            Owners::Unchanged,
            Clash::NoFileOverDir,
        );
        let e = copy(&src, None, &mut w, opts, &mut Links::new()).unwrap_err();
        assert!(matches!(e, TreeError::OverwriteDir { .. }), "{e:?}");
        let mut w = Writer::new(HostDir(dst.clone()), Owners::Unchanged, Clash::Replace);
        copy(&src, None, &mut w, opts, &mut Links::new()).unwrap();
        w.finish().unwrap();
        assert!(dst.join("a").is_file() && dst.join("sub").is_dir());
        // A file where the source has a directory: refused by cp's rule only.
        std::fs::remove_dir_all(dst.join("sub")).unwrap();
        std::fs::write(dst.join("sub"), b"file").unwrap();
        let mut w = Writer::new(HostDir(dst.clone()), Owners::Unchanged, Clash::Refuse);
        let e = copy(&src, None, &mut w, opts, &mut Links::new()).unwrap_err();
        assert!(matches!(e, TreeError::OverwriteNonDir { .. }), "{e:?}");
    }

    #[test]
    fn links_span_walks_and_a_symlinked_parent_is_never_followed() {
        let t = tempfile::tempdir().unwrap();
        let (src, dst) = tree(t.path());
        let outside = t.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let mut links = Links::new();
        let opts = Walk::default();
        let mut w = Writer::new(HostDir(dst.clone()), Owners::Unchanged, Clash::Replace);
        copy(&src.join("sub"), Some("one"), &mut w, opts, &mut links).unwrap();
        copy(&src, Some("two"), &mut w, opts, &mut links).unwrap();
        w.finish().unwrap();
        let ino = |p: &str| std::fs::metadata(dst.join(p)).unwrap().ino();
        assert_eq!(ino("one/a2"), ino("two/a"), "one file, as in the source");
        // A parent swapped for a symlink: the write fails rather than land outside.
        std::fs::remove_dir_all(dst.join("one")).unwrap();
        symlink(&outside, dst.join("one")).unwrap();
        let mut w = Writer::new(HostDir(dst.clone()), Owners::Unchanged, Clash::Replace);
        let kind = Kind::File(1);
        let meta = Meta::of(&nix::sys::stat::stat(&src.join("a")).unwrap());
        let data = Data {
            r: &mut &b"x"[..],
            origin: crate::fs::Origin::Archive,
        };
        assert!(w.put(Path::new("one/x"), &kind, &meta, data).is_err());
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        // And `remove` takes the link itself, not what it points to.
        w.remove(Path::new("one")).unwrap();
        assert!(!dst.join("one").exists() && outside.exists());
    }
}
