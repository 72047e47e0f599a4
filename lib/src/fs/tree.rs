//! The one tree walk: a source tree read through descriptors, handed entry by entry to a
//! [`Sink`].
//!
//! Four things in den copy a tree, each with its own rules on the writing side: `cp` (docker's
//! rules, a tar on stdout or a directory in a live container), a build's COPY (owner and mode
//! overrides, the `.dockerignore` filter, writes that never leave the step's root), the vfs
//! storage driver (a layer applied over the ones below: whiteouts and opaque directories), and a
//! volume's copy-up (an image directory into a new volume, owners kept). The reading side is the
//! same for all: this walk. Its sinks are [`super::Writer`] (a directory, written through
//! descriptors) and `cp`'s tar writer; the driver wraps the writer to read whiteouts.
//!
//! **The source is not trusted.** It may be an image's files or a running container's, so it is
//! read like a hostile tree: every directory is opened from its parent's descriptor with
//! `O_NOFOLLOW`, a symlink is read with `readlinkat` and handed on as a symlink (never followed),
//! a regular file is opened `O_NOFOLLOW|O_NONBLOCK` and checked again on the descriptor (a FIFO
//! swapped in meanwhile is skipped, never blocked on). Names are visited sorted, as docker's walk
//! is, so archives and hard links come out the same every time.
//!
//! **Hard links** ([`Links`]): the first name of a file with several links is written as a file,
//! each later one as [`Kind::Link`] to the first's path in the sink. The map belongs to the caller,
//! so that one COPY with several sources keeps links across them.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode};

use super::TreeError;

/// One node of a copied tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    /// A regular file of this many bytes.
    File(u64),
    Symlink(PathBuf),
    /// A hard link to an earlier entry (its path relative to the same base).
    Link(PathBuf),
    Fifo,
    /// A character device (overlay's whiteout is the one with device 0).
    Char(u64),
    Block(u64),
}

/// An entry's attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// Permission bits, with setuid, setgid and sticky.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// (seconds, nanoseconds)
    pub atime: (i64, i64),
    pub mtime: (i64, i64),
    /// A directory that hides what the layers below have there (overlay's opaque mark); read
    /// only when the walk is asked to ([`Walk::opaque_xattr`]).
    pub opaque: bool,
}

impl Meta {
    pub fn of(st: &FileStat) -> Meta {
        Meta {
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
            atime: (st.st_atime, st.st_atime_nsec),
            mtime: (st.st_mtime, st.st_mtime_nsec),
            opaque: false,
        }
    }

    /// With the owner single-uid mode recorded for the open file `fd` ([`super::owner`]), if
    /// any: a copy passes it on (and a tar made from the walk shows it).
    fn recorded(mut self, fd: BorrowedFd<'_>) -> Meta {
        if let Ok(Some(v)) = crate::sys::fgetxattr(fd, super::owner::OWNER_XATTR)
            && let Some((uid, gid)) = super::owner::parse(&v)
        {
            (self.uid, self.gid) = (uid, gid);
        }
        self
    }
}

/// The content of a [`Kind::File`], and whom to blame when reading it fails.
pub struct Data<'a> {
    pub r: &'a mut dyn Read,
    pub origin: Origin<'a>,
}

/// Where a file's content comes from.
#[derive(Debug, Clone, Copy)]
pub enum Origin<'a> {
    /// A file at this path (as shown in errors).
    File(&'a Path),
    /// An archive on a stream.
    Archive,
}

impl<'a> Data<'a> {
    /// For entries without content.
    pub fn none(empty: &'a mut io::Empty) -> Self {
        Data {
            r: empty,
            origin: Origin::Archive,
        }
    }

    /// The error for a failed read of this content.
    pub fn read_error(&self, source: io::Error) -> TreeError {
        TreeError::Read {
            from: match self.origin {
                Origin::File(p) => Some(p.to_owned()),
                Origin::Archive => None,
            },
            source,
        }
    }
}

/// A reader that keeps its error, so that a failed copy can tell reading from writing.
pub struct Tracked<'a> {
    r: &'a mut dyn Read,
    pub failed: Option<io::Error>,
}

impl<'a> Tracked<'a> {
    pub fn new(r: &'a mut dyn Read) -> Self {
        Tracked { r, failed: None }
    }
}

impl Read for Tracked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.r.read(buf) {
            Err(e) if e.kind() != io::ErrorKind::Interrupted => {
                let copy = io::Error::new(e.kind(), e.to_string());
                self.failed = Some(e);
                Err(copy)
            }
            other => other,
        }
    }
}

/// What a walk (or a tar reader) writes to: a directory ([`super::Writer`]), a tar, a layer.
pub trait Sink {
    type Error: From<TreeError>;
    /// Write the entry at `rel` (relative to the sink's base; its parents came first).
    fn put(
        &mut self,
        rel: &Path,
        kind: &Kind,
        meta: &Meta,
        data: Data<'_>,
    ) -> Result<(), Self::Error>;
}

/// Files with several links already written: (device, inode) to their path in the sink.
pub type Links = HashMap<(u64, u64), PathBuf>;

/// Where a walk starts.
pub enum Top {
    /// The entry `name` (not followed) in the open directory `parent`.
    Named { parent: File, name: OsString },
    /// An open directory.
    Dir(File),
}

impl Top {
    /// The entry at the host path `path`, not followed (a symlink is copied as one): its
    /// parent directory, open, and its name.
    pub fn named(path: &Path) -> io::Result<Top> {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        };
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
        Ok(Top::Named {
            parent: crate::sys::open_at(None, parent, flags, Mode::empty())?,
            name: name.to_owned(),
        })
    }
}

/// A filter on a walk's entries: (path relative to the source's base, is a directory) -> copy it.
pub type Keep<'a> = dyn Fn(&str, bool) -> bool + 'a;

/// What a walk reads and passes on.
#[derive(Clone, Copy, Default)]
pub struct Walk<'a> {
    /// Which entries below the top are copied (COPY's `.dockerignore`): called with the entry's
    /// path relative to the source's base (`keep_rel` for the top, `a/b`) and whether it is a
    /// directory. A directory left out is not entered.
    pub keep: Option<&'a Keep<'a>>,
    /// The top's path for `keep` (empty: the top is the base).
    pub keep_rel: &'a str,
    /// Pass FIFOs and device nodes on (`cp`, layers); otherwise they are skipped (COPY and
    /// copy-up skip them, as docker's context tar skips sockets). Sockets are always skipped.
    pub specials: bool,
    /// Read this extended attribute of each directory into [`Meta::opaque`] (overlay's
    /// `user.overlay.opaque`, for the vfs driver).
    pub opaque_xattr: Option<&'a str>,
}

/// Walk the tree at `top`, symlinks never followed, giving it the name `rel` in the sink (`None`:
/// only its children are written, straight into the sink's base; `Some("")`: the top directory
/// is the sink's base itself). `shown` names the source in errors.
pub fn walk<S: Sink + ?Sized>(
    top: Top,
    rel: Option<PathBuf>,
    shown: &Path,
    opts: Walk<'_>,
    links: &mut Links,
    sink: &mut S,
) -> Result<(), S::Error> {
    let mut w = Walker { sink, links, opts };
    let from = opts.keep_rel.to_owned();
    match top {
        Top::Named { parent, name } => {
            let rel = rel.unwrap_or_else(|| PathBuf::from(&name));
            w.named(&parent, &name, rel, &from, shown)
        }
        Top::Dir(dir) => w.dir(dir, rel, &from, shown),
    }
}

struct Walker<'w, 'o, S: Sink + ?Sized> {
    sink: &'w mut S,
    links: &'w mut Links,
    opts: Walk<'o>,
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

impl<S: Sink + ?Sized> Walker<'_, '_, S> {
    /// The entry `name` in `parent`, written as `rel`; `from` is its path for the filter.
    fn named(
        &mut self,
        parent: &File,
        name: &OsStr,
        rel: PathBuf,
        from: &str,
        shown: &Path,
    ) -> Result<(), S::Error> {
        let pfd = Some(parent.as_raw_fd());
        let st = nix::sys::stat::fstatat(pfd, name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(errno_at(shown))?;
        let meta = Meta::of(&st);
        let specials = self.opts.specials;
        let special = |k: Kind| specials.then_some(k);
        let kind = match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => {
                let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW;
                let dir = crate::sys::open_at(Some(parent.as_fd()), name, flags, Mode::empty())
                    .map_err(io_at(shown))?;
                return self.dir(dir, Some(rel), from, shown);
            }
            libc::S_IFREG => return self.file(parent, name, rel, shown),
            libc::S_IFLNK => {
                let target = nix::fcntl::readlinkat(pfd, name).map_err(errno_at(shown))?;
                Some(Kind::Symlink(target.into()))
            }
            libc::S_IFIFO => special(Kind::Fifo),
            libc::S_IFCHR => special(Kind::Char(st.st_rdev)),
            libc::S_IFBLK => special(Kind::Block(st.st_rdev)),
            // Sockets cannot be archived; tar skips them too.
            _ => None,
        };
        match kind {
            Some(kind) => self
                .sink
                .put(&rel, &kind, &meta, Data::none(&mut io::empty())),
            None => Ok(()),
        }
    }

    /// A regular file: opened without following a symlink, and without blocking should it have
    /// become a FIFO meanwhile (then it is skipped).
    fn file(
        &mut self,
        parent: &File,
        name: &OsStr,
        rel: PathBuf,
        shown: &Path,
    ) -> Result<(), S::Error> {
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK;
        let mut f = crate::sys::open_at(Some(parent.as_fd()), name, flags, Mode::empty())
            .map_err(io_at(shown))?;
        let st = nix::sys::stat::fstat(f.as_raw_fd()).map_err(errno_at(shown))?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Ok(());
        }
        let meta = Meta::of(&st).recorded(f.as_fd());
        if st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key) {
                let kind = Kind::Link(first.clone());
                return self
                    .sink
                    .put(&rel, &kind, &meta, Data::none(&mut io::empty()));
            }
            self.links.insert(key, rel.clone());
        }
        let data = Data {
            r: &mut f,
            origin: Origin::File(shown),
        };
        self.sink
            .put(&rel, &Kind::File(st.st_size as u64), &meta, data)
    }

    /// The open directory `dir`, written as `rel` (`None`: its children straight into the base),
    /// then its children; `from` is its path for the filter.
    fn dir(
        &mut self,
        dir: File,
        rel: Option<PathBuf>,
        from: &str,
        shown: &Path,
    ) -> Result<(), S::Error> {
        if let Some(rel) = &rel {
            let st = nix::sys::stat::fstat(dir.as_raw_fd()).map_err(errno_at(shown))?;
            let mut meta = Meta::of(&st).recorded(dir.as_fd());
            if let Some(x) = self.opts.opaque_xattr {
                meta.opaque =
                    matches!(crate::sys::fgetxattr(dir.as_fd(), x), Ok(Some(v)) if v == b"y");
            }
            self.sink
                .put(rel, &Kind::Dir, &meta, Data::none(&mut io::empty()))?;
        }
        for name in list_dir(&dir).map_err(io_at(shown))? {
            let child_from = match from {
                "" => name.to_string_lossy().into_owned(),
                f => format!("{f}/{}", name.to_string_lossy()),
            };
            if let Some(keep) = self.opts.keep {
                let is_dir = nix::sys::stat::fstatat(
                    Some(dir.as_raw_fd()),
                    name.as_os_str(),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR);
                if !keep(&child_from, is_dir) {
                    continue;
                }
            }
            let child = match &rel {
                Some(r) => r.join(&name),
                None => PathBuf::from(&name),
            };
            self.named(&dir, &name, child, &child_from, &shown.join(&name))?;
        }
        Ok(())
    }
}

/// The names in an open directory, sorted (docker's walk is in lexical order too).
pub fn list_dir(dir: &File) -> io::Result<Vec<OsString>> {
    let mut d = nix::dir::Dir::from(dir.try_clone()?)?;
    let mut names = Vec::new();
    for e in d.iter() {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(OsString::from_vec(n.to_vec()));
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_owner_is_the_entrys() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f");
        let f = File::create(&p).unwrap();
        let st = nix::sys::stat::fstat(f.as_raw_fd()).unwrap();
        let plain = Meta::of(&st).recorded(f.as_fd());
        assert_eq!((plain.uid, plain.gid), (st.st_uid, st.st_gid));
        super::super::owner::record(&f, (1000, 1001));
        // The test's directory is on a filesystem with user xattrs (ext4, tmpfs from 6.6).
        let meta = Meta::of(&st).recorded(f.as_fd());
        assert_eq!((meta.uid, meta.gid), (1000, 1001));
        assert_eq!(meta.mode, plain.mode);
    }
}
