//! `den cp`: copying files between a container's root filesystem and the host, with docker's rules.
//!
//! Entry points: [`copy_out`] (a container path to a host path, or to stdout as a tar) and
//! [`copy_in`] (a host path, or a tar on stdin, into a container path). den sees the container's
//! root filesystem mounted at a host directory `root` and runs these as root in the container's
//! user namespace.
//!
//! **The rules are `docker cp`'s** (its CLI and its daemon's archive code together):
//!
//! * A source file goes to a destination that does not exist under that name, overwrites an
//!   existing file, or lands in an existing directory under its own name. A destination ending in
//!   `/` that does not exist is an error for a file.
//! * A source directory creates a missing destination and fills it with its contents, or lands in
//!   an existing directory under its own name; with a source ending in `/.`, its contents go into
//!   the existing directory instead. A directory never replaces a file.
//! * A destination that is a symlink is followed. A source is not: its last component is copied as
//!   the symlink it is, unless the path ends in `/` or `/.`, or with `-L`. Inside a copied tree,
//!   symlinks are always copied as symlinks.
//! * Modes, times and symlinks are kept; hard links within a tree stay hard links. What lands in
//!   the container belongs to root, except entries of a tar read from stdin, which keep the
//!   archive's owners (as far as the user namespace maps them). What lands on the host belongs to
//!   the caller. A directory is never replaced by a non-directory, nor the other way round.
//! * `-` as the source extracts a tar (plain, gzip or zstd) into an existing directory; `-` as the
//!   destination writes a tar whose first entry is the source's base name (`./` for `/.`).
//!
//! **Nothing outside `root` is read or written.** Container paths are resolved with
//! [`scope::resolve`], symlinks followed with `root` as `/`, so a container's symlink to `/etc` or
//! to `../../..` stays inside it, as it would for a process in the container. A running container
//! can still swap a directory for a symlink while den works, so every directory den reads or writes
//! under `root` is opened (`O_NOFOLLOW`), then checked through `/proc/self/fd` to really be under
//! `root`, and entries are then created relative to that descriptor (`*at` calls, `O_EXCL`,
//! `O_NOFOLLOW`), never through a path the container could redirect. Tar entries with `..` are
//! refused; a tar's symlink used as a parent resolves inside the root like any other.
//!
//! **Why by hand.** The tar format is the `tar` crate's. Docker's path rules (what `/.` and a
//! trailing `/` mean, when the destination is entered, created or renamed) live in docker's
//! archive package and have no crate, and `tar`'s own unpacking writes by path, which cannot keep
//! a live container's symlinks from redirecting it. So the tree walk, the planning and the writes
//! are written here over one small `Sink` seam: the same walk feeds a tar on stdout or a
//! directory, and the same directory writer takes a walk or a tar from stdin.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use nix::NixPath;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FchmodatFlags, FileStat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags};

use crate::error::Diagnose;
use crate::unpack::scope;

/// Where [`copy_in`] takes its files from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// A host path (relative paths start at the current directory).
    Path(&'a Path),
    /// A tar archive on the `input` stream (`-`).
    Stdin,
}

/// Where [`copy_out`] puts its files.
#[derive(Debug, Clone, Copy)]
pub enum Dest<'a> {
    /// A host path (relative paths start at the current directory).
    Path(&'a Path),
    /// A tar archive on the `out` stream (`-`).
    Stdout,
}

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("Could not find the file {} in the container", path.display())]
    NotFound { path: PathBuf },
    #[error("no such file or directory: {}", path.display())]
    LocalNotFound { path: PathBuf },
    #[error("cannot copy a directory to a file: {} exists and is not a directory", path.display())]
    DirToFile { path: PathBuf },
    #[error("destination directory {} does not exist", path.display())]
    DirNotExists { path: PathBuf },
    #[error("{} is not a directory", path.display())]
    NotADirectory { path: PathBuf },
    #[error("destination {} must be a directory to extract a tar archive into", path.display())]
    ExtractTarget { path: PathBuf },
    #[error("cannot overwrite directory {} with a non-directory", path.display())]
    OverwriteDir { path: PathBuf },
    #[error("cannot overwrite non-directory {} with a directory", path.display())]
    OverwriteNonDir { path: PathBuf },
    #[error("{} would lead outside the container's filesystem", path.display())]
    Escape { path: PathBuf },
    #[error("cannot read the tar archive on standard input")]
    Archive(#[source] io::Error),
    #[error("cannot write the tar archive to standard output")]
    Stdout(#[source] io::Error),
    #[error("cannot copy {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl Diagnose for CopyError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            CopyError::NotFound { .. } => {
                "check the path inside the container; it is read from the container's /".into()
            }
            CopyError::LocalNotFound { .. } => {
                "check the path on this machine; a relative path starts at the current directory"
                    .into()
            }
            CopyError::DirToFile { .. } => {
                "copy into a directory, or to a path that does not exist yet (it is created)".into()
            }
            CopyError::DirNotExists { .. } => {
                "create the directory first, or drop the trailing `/` to copy to that name".into()
            }
            CopyError::NotADirectory { .. } => {
                "a path ending in `/` or `/.`, and every directory on the way, must be a directory"
                    .into()
            }
            CopyError::ExtractTarget { .. } => {
                "a tar archive on standard input is extracted into a directory: name an existing \
                 directory in the container"
                    .into()
            }
            CopyError::OverwriteDir { .. } | CopyError::OverwriteNonDir { .. } => {
                "remove the existing entry first, or copy to another path".into()
            }
            CopyError::Escape { .. } => {
                "the archive or path tries to leave the container's filesystem; nothing was written \
                 outside it. Check where the archive came from"
                    .into()
            }
            CopyError::Archive(_) => {
                "give a tar archive (plain, gzip or zstd) on standard input, such as \
                 `tar -c -C DIR . | den cp - CONTAINER:/PATH`"
                    .into()
            }
            CopyError::Stdout(_) => "standard output was closed before the archive ended".into(),
            CopyError::Io { source, .. } => match source.raw_os_error() {
                Some(libc::ENOSPC) | Some(libc::EDQUOT) => {
                    "the disk is full: free space and copy again".into()
                }
                Some(libc::EROFS) => "the destination is on a read-only filesystem".into(),
                Some(libc::EACCES) | Some(libc::EPERM) => {
                    "check the permissions of the path and the directories on the way".into()
                }
                Some(libc::ELOOP) => "the path's symlinks loop; check where they point".into(),
                _ => return None,
            },
        })
    }
}

/// Extract the tar archive (plain, gzip or zstd) on `input` into the existing directory
/// `ctr_path` of the container whose root filesystem is at `root`, as a build's ADD unpacks a
/// local archive: docker's untar rules, where an existing entry is replaced unless both it and
/// the archive's are directories (`cp` refuses to replace instead). Everything else is
/// [`copy_in`]'s: paths resolved inside the root, writes through descriptors, the archive's
/// owners kept as far as they are mapped.
pub fn untar_in(root: &Path, ctr_path: &str, input: &mut dyn Read) -> Result<(), CopyError> {
    untar(root, RootId::of(root)?, ctr_path, input, true)
}

fn untar(
    root: &Path,
    canon: RootId,
    ctr_path: &str,
    input: &mut dyn Read,
    replace: bool,
) -> Result<(), CopyError> {
    let dst = container_dest(root, ctr_path)?;
    if !dst.exists {
        return Err(CopyError::NotFound {
            path: ctr_path.into(),
        });
    }
    if !dst.is_dir {
        return Err(CopyError::ExtractTarget {
            path: ctr_path.into(),
        });
    }
    let base = Base::Container {
        root: root.to_owned(),
        canon,
        dir: dst.path,
    };
    let mut sink = DirSink::new(base, Owners::Keep);
    sink.replace = replace;
    extract(input, &mut sink)?;
    sink.finish()
}

/// Copy `ctr_path` (inside the container whose root filesystem is at `root`) to a host path, or
/// to `out` as a tar archive (`out` is only used with [`Dest::Stdout`]). `follow_link` is `-L`:
/// a symlink named as the source is followed, and its target copied under the link's name.
pub fn copy_out(
    root: &Path,
    ctr_path: &str,
    dest: Dest<'_>,
    follow_link: bool,
    out: &mut dyn Write,
) -> Result<(), CopyError> {
    let canon = RootId::of(root)?;
    let spec = Spec::parse(OsStr::new(ctr_path), Path::new("/"));
    let ctr = spec.path();
    let not_found = || CopyError::NotFound {
        path: ctr_path.into(),
    };
    // docker resolves the directories and leaves the last component alone, unless the path says
    // it means a directory (or -L).
    let follow = spec.dir || follow_link;
    let host = match resolve_in(root, &ctr, follow, &ctr) {
        Ok(h) => h,
        Err(e) if is_enotdir(&e) => return Err(not_found()),
        Err(e) => return Err(e),
    };
    let md = match std::fs::symlink_metadata(&host) {
        Ok(m) => m,
        Err(e) if is_missing(&e) => return Err(not_found()),
        Err(e) => return Err(io_error(&ctr, e)),
    };
    if spec.dir && !md.is_dir() {
        return Err(CopyError::NotADirectory {
            path: ctr_path.into(),
        });
    }
    let contents = spec.contents || spec.comps.is_empty();
    // With -L the entries keep the link's name, as docker's rebasing does.
    let name = if contents {
        None
    } else {
        spec.comps.last().cloned()
    };
    let top = if md.is_dir() {
        Top::Dir(open_in_root(root, canon, &host, &ctr)?)
    } else {
        let parent = host.parent().unwrap_or(root);
        Top::Named {
            parent: open_in_root(root, canon, parent, &ctr)?,
            name: host.file_name().unwrap_or_default().to_owned(),
        }
    };
    match dest {
        Dest::Stdout => {
            let mut sink = TarSink {
                b: tar::Builder::new(out),
            };
            let top_name = name.unwrap_or_else(|| ".".into());
            walk(top, Some(PathBuf::from(top_name)), &ctr, &mut sink)?;
            sink.finish()
        }
        Dest::Path(p) => {
            let dst = host_dest(p)?;
            let landing = land(md.is_dir(), name, &dst, p)?;
            let mut sink = DirSink::new(Base::Host(landing.dir), Owners::Unchanged);
            walk(top, landing.top.map(PathBuf::from), &ctr, &mut sink)?;
            sink.finish()
        }
    }
}

/// Copy a host path, or the tar archive on `input`, to `ctr_path` inside the container whose root
/// filesystem is at `root` (`input` is only used with [`Source::Stdin`]). A symlink named as the
/// source is copied as the symlink it is; see [`copy_in_with`] for `-L`.
pub fn copy_in(
    root: &Path,
    src: Source<'_>,
    ctr_path: &str,
    input: &mut dyn Read,
) -> Result<(), CopyError> {
    copy_in_with(root, src, ctr_path, input, false)
}

/// [`copy_in`] with `-L`: a host symlink named as the source is followed, and its target copied
/// under the link's name.
pub fn copy_in_with(
    root: &Path,
    src: Source<'_>,
    ctr_path: &str,
    input: &mut dyn Read,
    follow_link: bool,
) -> Result<(), CopyError> {
    let canon = RootId::of(root)?;
    match src {
        Source::Stdin => untar(root, canon, ctr_path, input, false),
        Source::Path(p) => {
            let spec = Spec::parse(p.as_os_str(), &current_dir()?);
            let missing = |e: io::Error| {
                if is_missing(&e) {
                    CopyError::LocalNotFound { path: p.into() }
                } else {
                    io_error(p, e)
                }
            };
            let full = spec.path();
            // The host is the user's own: its symlinks are followed as the kernel would, the last
            // one only when asked (docker's CopyInfoSourcePath).
            let resolved = match spec.comps.last() {
                None => full,
                Some(_) if spec.dir || follow_link => {
                    std::fs::canonicalize(&full).map_err(missing)?
                }
                Some(last) => {
                    let parent = full.parent().unwrap_or(Path::new("/"));
                    std::fs::canonicalize(parent).map_err(missing)?.join(last)
                }
            };
            let md = std::fs::symlink_metadata(&resolved).map_err(missing)?;
            if spec.dir && !md.is_dir() {
                return Err(CopyError::NotADirectory { path: p.into() });
            }
            let contents = spec.contents || spec.comps.is_empty();
            let name = if contents {
                None
            } else {
                spec.comps.last().cloned()
            };
            let dir_flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
            let top = if md.is_dir() {
                Top::Dir(open_at(None, &resolved, dir_flags, 0).map_err(|e| io_error(p, e))?)
            } else {
                let parent = resolved.parent().unwrap_or(Path::new("/"));
                Top::Named {
                    parent: open_at(None, parent, dir_flags, 0).map_err(|e| io_error(p, e))?,
                    name: resolved.file_name().unwrap_or_default().to_owned(),
                }
            };
            let dst = container_dest(root, ctr_path)?;
            let landing = land(md.is_dir(), name, &dst, Path::new(ctr_path))?;
            let base = Base::Container {
                root: root.to_owned(),
                canon,
                dir: landing.dir,
            };
            let mut sink = DirSink::new(base, Owners::Root);
            walk(top, landing.top.map(PathBuf::from), p, &mut sink)?;
            sink.finish()
        }
    }
}

// -------------------------------------------------------------------------------------------
// Paths and docker's placement rules.

/// A path argument as docker reads it: cleaned lexically (`..` cannot climb above `/`), plus what
/// its spelling asserts.
#[derive(Debug)]
struct Spec {
    comps: Vec<OsString>,
    /// The last segment is `.` (`dir/.`): the directory's contents rather than the directory.
    contents: bool,
    /// Ends in `/` or `/.`: the path must be a directory.
    dir: bool,
}

impl Spec {
    /// `arg`, relative to `base` unless absolute.
    fn parse(arg: &OsStr, base: &Path) -> Spec {
        let b = arg.as_bytes();
        let mut end = b.len();
        while end > 0 && b[end - 1] == b'/' {
            end -= 1;
        }
        let contents = b[..end].rsplit(|c| *c == b'/').next() == Some(b".".as_slice());
        let dir = contents || b.ends_with(b"/");
        let full = if b.starts_with(b"/") {
            PathBuf::from(arg)
        } else {
            base.join(arg)
        };
        let mut comps = Vec::new();
        for c in full.as_os_str().as_bytes().split(|c| *c == b'/') {
            match c {
                b"" | b"." => {}
                b".." => {
                    comps.pop();
                }
                c => comps.push(OsString::from_vec(c.to_vec())),
            }
        }
        Spec {
            comps,
            contents,
            dir,
        }
    }

    fn path(&self) -> PathBuf {
        let mut p = PathBuf::from("/");
        p.extend(&self.comps);
        p
    }
}

/// What the destination is, once its symlinks are followed.
#[derive(Debug)]
struct Dst {
    /// Host path, or container path for [`copy_in`].
    path: PathBuf,
    exists: bool,
    is_dir: bool,
    /// The argument ends in `/` or `/.`.
    dir: bool,
}

/// Where the copied tree lands: the directory its entries are written into, and the name of the
/// top entry there (`None`: the source directory's contents go straight into it).
#[derive(Debug, PartialEq)]
struct Landing {
    dir: PathBuf,
    top: Option<OsString>,
}

/// docker's `PrepareArchiveCopy`: enter an existing directory, or write beside under the
/// destination's name.
fn land(
    src_is_dir: bool,
    name: Option<OsString>,
    dst: &Dst,
    shown: &Path,
) -> Result<Landing, CopyError> {
    let beside = || Landing {
        dir: dst.path.parent().unwrap_or(Path::new("/")).to_owned(),
        top: dst.path.file_name().map(OsStr::to_owned),
    };
    if dst.exists && dst.is_dir {
        Ok(Landing {
            dir: dst.path.clone(),
            top: name,
        })
    } else if dst.exists && src_is_dir {
        Err(CopyError::DirToFile { path: shown.into() })
    } else if dst.exists || src_is_dir {
        Ok(beside())
    } else if dst.dir {
        Err(CopyError::DirNotExists { path: shown.into() })
    } else {
        Ok(beside())
    }
}

/// docker's `CopyInfoDestinationPath` on the host: symlinks at the end are followed; a missing
/// destination needs an existing parent directory.
fn host_dest(arg: &Path) -> Result<Dst, CopyError> {
    let spec = Spec::parse(arg.as_os_str(), &current_dir()?);
    let mut path = spec.path();
    for _ in 0..=MAX_DEST_LINKS {
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::read_link(&path).map_err(|e| io_error(arg, e))?;
                let joined = path.parent().unwrap_or(Path::new("/")).join(target);
                path = Spec::parse(joined.as_os_str(), Path::new("/")).path();
            }
            Ok(m) => {
                if spec.dir && !m.is_dir() {
                    return Err(CopyError::NotADirectory { path: arg.into() });
                }
                return Ok(Dst {
                    path,
                    exists: true,
                    is_dir: m.is_dir(),
                    dir: spec.dir,
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let parent = path.parent().unwrap_or(Path::new("/"));
                return match std::fs::metadata(parent) {
                    Ok(m) if m.is_dir() => Ok(Dst {
                        path,
                        exists: false,
                        is_dir: false,
                        dir: spec.dir,
                    }),
                    Ok(_) => Err(CopyError::NotADirectory {
                        path: parent.into(),
                    }),
                    Err(e) if is_missing(&e) => Err(CopyError::LocalNotFound {
                        path: parent.into(),
                    }),
                    Err(e) => Err(io_error(parent, e)),
                };
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                return Err(CopyError::NotADirectory { path: arg.into() });
            }
            Err(e) => return Err(io_error(arg, e)),
        }
    }
    Err(io_error(arg, io::Error::from_raw_os_error(libc::ELOOP)))
}

/// As many symlinks as docker follows at the end of a destination.
const MAX_DEST_LINKS: usize = 10;

/// The destination inside the container: symlinks followed in scope, the last one too (docker
/// extracts "to a symlink that points to a directory"). `path` is the resolved container path.
fn container_dest(root: &Path, ctr_path: &str) -> Result<Dst, CopyError> {
    let spec = Spec::parse(OsStr::new(ctr_path), Path::new("/"));
    let ctr = spec.path();
    let not_dir = |path: &Path| CopyError::NotADirectory { path: path.into() };
    let host = match resolve_in(root, &ctr, true, &ctr) {
        Ok(h) => h,
        Err(e) if is_enotdir(&e) => return Err(not_dir(&ctr)),
        Err(e) => return Err(e),
    };
    let resolved = container_path(root, &host);
    match std::fs::symlink_metadata(&host) {
        Ok(m) => {
            if spec.dir && !m.is_dir() {
                return Err(not_dir(Path::new(ctr_path)));
            }
            Ok(Dst {
                path: resolved,
                exists: true,
                is_dir: m.is_dir(),
                dir: spec.dir,
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let parent = resolved.parent().unwrap_or(Path::new("/")).to_owned();
            match std::fs::symlink_metadata(host.parent().unwrap_or(root)) {
                Ok(m) if m.is_dir() => Ok(Dst {
                    path: resolved,
                    exists: false,
                    is_dir: false,
                    dir: spec.dir,
                }),
                Ok(_) => Err(not_dir(&parent)),
                Err(e) if is_missing(&e) => Err(CopyError::NotFound { path: parent }),
                Err(e) => Err(io_error(&parent, e)),
            }
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => Err(not_dir(Path::new(ctr_path))),
        Err(e) => Err(io_error(&ctr, e)),
    }
}

/// [`scope::resolve`], checked once more to have stayed under `root`. `shown` names the path in
/// errors.
fn resolve_in(
    root: &Path,
    ctr: &Path,
    follow_final: bool,
    shown: &Path,
) -> Result<PathBuf, CopyError> {
    let host = scope::resolve(root, ctr, follow_final).map_err(|e| io_error(shown, e))?;
    if host.starts_with(root) {
        Ok(host)
    } else {
        Err(CopyError::Escape { path: shown.into() })
    }
}

/// The error is the OS's "not a directory" (a file used as a directory on the way).
fn is_enotdir(e: &CopyError) -> bool {
    matches!(e, CopyError::Io { source, .. } if source.raw_os_error() == Some(libc::ENOTDIR))
}

/// The absolute container path of `host`, a path under `root`.
fn container_path(root: &Path, host: &Path) -> PathBuf {
    Path::new("/").join(host.strip_prefix(root).unwrap_or(Path::new("")))
}

/// The root directory, as the file it is: its device and inode. `root` may be a running
/// container's `/proc/PID/root`, whose path names nothing outside that process's mount namespace;
/// the identity holds there too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RootId {
    dev: u64,
    ino: u64,
}

impl RootId {
    fn of(root: &Path) -> Result<RootId, CopyError> {
        let st = nix::sys::stat::stat(root).map_err(|e| io_error(root, e.into()))?;
        Ok(RootId::from_stat(&st))
    }

    fn from_stat(st: &FileStat) -> RootId {
        RootId {
            dev: st.st_dev,
            ino: st.st_ino,
        }
    }
}

fn current_dir() -> Result<PathBuf, CopyError> {
    std::env::current_dir().map_err(|e| io_error(Path::new("."), e))
}

fn is_missing(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR)
}

fn io_error(path: &Path, source: io::Error) -> CopyError {
    CopyError::Io {
        path: path.into(),
        source,
    }
}

// -------------------------------------------------------------------------------------------
// Entries, and the walk that produces them from a directory tree.

/// One node of the copied tree.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Dir,
    File(u64),
    Symlink(PathBuf),
    /// A hard link to an earlier entry (its path relative to the same base).
    Link(PathBuf),
    Fifo,
    Char(u64),
    Block(u64),
}

#[derive(Debug, Clone, Copy)]
struct Meta {
    /// Permission bits, with setuid, setgid and sticky.
    mode: u32,
    uid: u32,
    gid: u32,
    atime: (i64, i64),
    mtime: (i64, i64),
}

impl Meta {
    fn of(st: &FileStat) -> Meta {
        Meta {
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
            atime: (st.st_atime, st.st_atime_nsec),
            mtime: (st.st_mtime, st.st_mtime_nsec),
        }
    }
}

/// The content of a [`Kind::File`], and whom to blame when reading it fails.
struct Data<'a> {
    r: &'a mut dyn Read,
    origin: Origin<'a>,
}

enum Origin<'a> {
    File(&'a Path),
    Archive,
}

impl<'a> Data<'a> {
    /// For entries without content.
    fn none(empty: &'a mut io::Empty) -> Self {
        Data {
            r: empty,
            origin: Origin::Archive,
        }
    }

    fn read_error(&self, e: io::Error) -> CopyError {
        match self.origin {
            Origin::File(p) => io_error(p, e),
            Origin::Archive => CopyError::Archive(e),
        }
    }
}

/// What the walk and the tar reader write to: a tar on stdout, or a directory.
trait Sink {
    /// Write the entry at `rel` (relative to the sink's base; its parents came first).
    fn put(
        &mut self,
        rel: &Path,
        kind: &Kind,
        meta: &Meta,
        data: Data<'_>,
    ) -> Result<(), CopyError>;
}

/// Where a walk starts.
enum Top {
    /// The entry `name` (not followed) in the open directory `parent`.
    Named { parent: File, name: OsString },
    /// An open directory.
    Dir(File),
}

/// Walk the tree at `top`, symlinks never followed, giving it the name `rel` (`None`: only its
/// children are written, straight into the sink's base). `shown` names the source in errors.
fn walk(
    top: Top,
    rel: Option<PathBuf>,
    shown: &Path,
    sink: &mut dyn Sink,
) -> Result<(), CopyError> {
    let mut w = Walker {
        sink,
        links: HashMap::new(),
    };
    match top {
        Top::Named { parent, name } => {
            let rel = rel.unwrap_or_else(|| PathBuf::from(&name));
            w.named(&parent, &name, rel, shown)
        }
        Top::Dir(dir) => w.dir(dir, rel, shown),
    }
}

struct Walker<'s> {
    sink: &'s mut dyn Sink,
    /// Files with several links already written: (device, inode) to their path.
    links: HashMap<(u64, u64), PathBuf>,
}

impl Walker<'_> {
    fn named(
        &mut self,
        parent: &File,
        name: &OsStr,
        rel: PathBuf,
        shown: &Path,
    ) -> Result<(), CopyError> {
        let io = |e: Errno| io_error(shown, e.into());
        let pfd = Some(parent.as_raw_fd());
        let st = nix::sys::stat::fstatat(pfd, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(io)?;
        let meta = Meta::of(&st);
        let kind = match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => {
                let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW;
                let dir = open_at(Some(parent), name, flags, 0).map_err(|e| io_error(shown, e))?;
                return self.dir(dir, Some(rel), shown);
            }
            libc::S_IFREG => {
                // O_NONBLOCK: should it have become a fifo meanwhile, do not hang on it.
                let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK;
                let mut f =
                    open_at(Some(parent), name, flags, 0).map_err(|e| io_error(shown, e))?;
                let st = nix::sys::stat::fstat(f.as_raw_fd()).map_err(io)?;
                if st.st_mode & libc::S_IFMT != libc::S_IFREG {
                    return Ok(());
                }
                let meta = Meta::of(&st);
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
                return self
                    .sink
                    .put(&rel, &Kind::File(st.st_size as u64), &meta, data);
            }
            libc::S_IFLNK => {
                let target = nix::fcntl::readlinkat(pfd, name).map_err(io)?;
                Kind::Symlink(target.into())
            }
            libc::S_IFIFO => Kind::Fifo,
            libc::S_IFCHR => Kind::Char(st.st_rdev),
            libc::S_IFBLK => Kind::Block(st.st_rdev),
            // Sockets cannot be archived; tar skips them too.
            _ => return Ok(()),
        };
        self.sink
            .put(&rel, &kind, &meta, Data::none(&mut io::empty()))
    }

    fn dir(&mut self, dir: File, rel: Option<PathBuf>, shown: &Path) -> Result<(), CopyError> {
        if let Some(rel) = &rel {
            let st =
                nix::sys::stat::fstat(dir.as_raw_fd()).map_err(|e| io_error(shown, e.into()))?;
            self.sink.put(
                rel,
                &Kind::Dir,
                &Meta::of(&st),
                Data::none(&mut io::empty()),
            )?;
        }
        for name in list_dir(&dir).map_err(|e| io_error(shown, e))? {
            let child = match &rel {
                Some(r) => r.join(&name),
                None => PathBuf::from(&name),
            };
            self.named(&dir, &name, child, &shown.join(&name))?;
        }
        Ok(())
    }
}

/// The names in an open directory, sorted (docker's walk is in lexical order too).
fn list_dir(dir: &File) -> io::Result<Vec<OsString>> {
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

// -------------------------------------------------------------------------------------------
// Sinks.

/// Writes entries as a tar archive.
struct TarSink<'w> {
    b: tar::Builder<&'w mut dyn Write>,
}

impl TarSink<'_> {
    fn finish(self) -> Result<(), CopyError> {
        let out = self.b.into_inner().map_err(CopyError::Stdout)?;
        out.flush().map_err(CopyError::Stdout)
    }
}

impl Sink for TarSink<'_> {
    fn put(
        &mut self,
        rel: &Path,
        kind: &Kind,
        meta: &Meta,
        data: Data<'_>,
    ) -> Result<(), CopyError> {
        use tar::EntryType;
        let mut h = tar::Header::new_gnu();
        h.set_mode(meta.mode);
        h.set_uid(meta.uid.into());
        h.set_gid(meta.gid.into());
        h.set_mtime(meta.mtime.0.max(0) as u64);
        h.set_size(0);
        let dev = |h: &mut tar::Header, dev: u64| -> io::Result<()> {
            h.set_device_major(nix::sys::stat::major(dev) as u32)?;
            h.set_device_minor(nix::sys::stat::minor(dev) as u32)
        };
        let written = match kind {
            Kind::Dir => {
                h.set_entry_type(EntryType::Directory);
                let mut name = rel.as_os_str().to_owned();
                name.push("/");
                self.b.append_data(&mut h, Path::new(&name), io::empty())
            }
            Kind::File(size) => {
                h.set_entry_type(EntryType::Regular);
                h.set_size(*size);
                // Exactly `size` bytes, whatever the file does meanwhile: the archive must stay
                // well-formed.
                let mut src = Tracked::new(data.r);
                let r = (&mut src).take(*size).chain(io::repeat(0)).take(*size);
                let res = self.b.append_data(&mut h, rel, r);
                if let (Err(_), Some(e)) = (&res, src.failed.take()) {
                    return Err(data.read_error(e));
                }
                res
            }
            Kind::Symlink(target) => {
                h.set_entry_type(EntryType::Symlink);
                self.b.append_link(&mut h, rel, target)
            }
            Kind::Link(target) => {
                h.set_entry_type(EntryType::Link);
                self.b.append_link(&mut h, rel, target)
            }
            Kind::Fifo => {
                h.set_entry_type(EntryType::Fifo);
                self.b.append_data(&mut h, rel, io::empty())
            }
            Kind::Char(d) | Kind::Block(d) => {
                let t = match kind {
                    Kind::Char(_) => EntryType::Char,
                    _ => EntryType::Block,
                };
                h.set_entry_type(t);
                dev(&mut h, *d).and_then(|()| self.b.append_data(&mut h, rel, io::empty()))
            }
        };
        written.map_err(CopyError::Stdout)
    }
}

/// A reader that keeps its error, so that a failed copy can tell reading from writing.
struct Tracked<'a> {
    r: &'a mut dyn Read,
    failed: Option<io::Error>,
}

impl<'a> Tracked<'a> {
    fn new(r: &'a mut dyn Read) -> Self {
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

/// Whose ids the written entries get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owners {
    /// The writer's (the host side).
    Unchanged,
    /// 0:0 (copies into the container).
    Root,
    /// The entry's own, as far as they are mapped (a tar from stdin).
    Keep,
}

/// The directory a [`DirSink`] writes under.
enum Base {
    /// A host directory: the user's own, its symlinks followed as the kernel does.
    Host(PathBuf),
    /// `dir`, an absolute container path, in the container whose root filesystem is at `root`
    /// (`canon` is the root directory's identity).
    Container {
        root: PathBuf,
        canon: RootId,
        dir: PathBuf,
    },
}

/// Writes entries into a directory tree. Each entry's parent directory is opened (and, in a
/// container, checked to be under the root) and the entry made relative to it; directories get
/// their modes and times at the end, deepest first, so that read-only directories can be filled
/// and their times are not disturbed by their children.
struct DirSink {
    base: Base,
    owners: Owners,
    dirs: Vec<(PathBuf, Meta)>,
    /// The last parent opened, by its relative path.
    parent: Option<(PathBuf, File)>,
    /// Replace an existing entry of another kind (ADD's untar) instead of refusing (`cp`).
    replace: bool,
}

impl DirSink {
    fn new(base: Base, owners: Owners) -> Self {
        DirSink {
            base,
            owners,
            dirs: Vec::new(),
            parent: None,
            replace: false,
        }
    }

    /// How `rel` is named in errors: the host path, or the container path.
    fn shown(&self, rel: &Path) -> PathBuf {
        match &self.base {
            Base::Host(b) => b.join(rel),
            Base::Container { dir, .. } => dir.join(rel),
        }
    }

    /// Apply the directories' modes and times.
    fn finish(mut self) -> Result<(), CopyError> {
        self.parent = None;
        for (rel, meta) in self.dirs.iter().rev() {
            let shown = self.shown(rel);
            let io = |e: Errno| io_error(&shown, e.into());
            let dir = self.open_dir(rel, false)?;
            nix::sys::stat::fchmod(dir.as_raw_fd(), mode(meta.mode)).map_err(io)?;
            let (a, m) = times(meta);
            nix::sys::stat::futimens(dir.as_raw_fd(), &a, &m).map_err(io)?;
        }
        Ok(())
    }

    /// The directory `rel` under the base, opened; missing directories on the way are created
    /// (0755, root's in a container) when `create`.
    fn open_dir(&self, rel: &Path, create: bool) -> Result<File, CopyError> {
        let shown = self.shown(rel);
        let io = |e: io::Error| io_error(&shown, e);
        let (host, floor, canon) = match &self.base {
            Base::Host(b) => (b.join(rel), b.as_path(), None),
            Base::Container { root, canon, dir } => {
                let host = resolve_in(root, &dir.join(rel), true, &shown)?;
                (host, root.as_path(), Some(*canon))
            }
        };
        // The deepest directory that exists, and the names missing below it.
        let mut existing = host;
        let mut missing = Vec::new();
        loop {
            match std::fs::symlink_metadata(&existing) {
                Ok(_) => break,
                Err(e)
                    if e.kind() == io::ErrorKind::NotFound
                        && create
                        && existing != floor
                        && existing.starts_with(floor) =>
                {
                    missing.push(existing.file_name().unwrap_or_default().to_owned());
                    existing.pop();
                }
                Err(e) => return Err(io(e)),
            }
        }
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
        // Inside a container the path is resolved already: a symlink at its end now is a race.
        let first = if canon.is_some() && existing != floor {
            flags | OFlag::O_NOFOLLOW
        } else {
            flags
        };
        let mut dir = open_at(None, &existing, first, 0).map_err(io)?;
        if let Some(canon) = canon {
            check_inside(&dir, canon, &shown)?;
        }
        for name in missing.iter().rev() {
            let dfd = Some(dir.as_raw_fd());
            match nix::sys::stat::mkdirat(dfd, name.as_os_str(), mode(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(io(e.into())),
            }
            if self.owners != Owners::Unchanged {
                chown_at(dir.as_raw_fd(), name, (0, 0)).map_err(io)?;
            }
            dir =
                open_at(Some(&dir), name.as_os_str(), flags | OFlag::O_NOFOLLOW, 0).map_err(io)?;
        }
        Ok(dir)
    }

    fn owner(&self, meta: &Meta) -> Option<(u32, u32)> {
        match self.owners {
            Owners::Unchanged => None,
            Owners::Root => Some((0, 0)),
            Owners::Keep => Some((meta.uid, meta.gid)),
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
    ) -> Result<(), CopyError> {
        let shown = self.shown(rel);
        let io = |e: Errno| io_error(&shown, e.into());
        let pfd = parent.as_raw_fd();
        let existing = match nix::sys::stat::fstatat(Some(pfd), name, AtFlags::AT_SYMLINK_NOFOLLOW)
        {
            Ok(st) => Some(st.st_mode & libc::S_IFMT == libc::S_IFDIR),
            Err(Errno::ENOENT) => None,
            Err(e) => return Err(io(e)),
        };
        let owner = self.owner(meta);
        if *kind == Kind::Dir {
            match existing {
                Some(true) => {}
                Some(false) if self.replace => {
                    nix::unistd::unlinkat(Some(pfd), name, UnlinkatFlags::NoRemoveDir)
                        .map_err(io)?;
                    nix::sys::stat::mkdirat(Some(pfd), name, mode(0o700)).map_err(io)?
                }
                Some(false) => return Err(CopyError::OverwriteNonDir { path: shown }),
                // Owner-only until `finish` sets its mode, so that it can be filled.
                None => nix::sys::stat::mkdirat(Some(pfd), name, mode(0o700)).map_err(io)?,
            }
            if let Some(ids) = owner {
                chown_at(pfd, name, ids).map_err(|e| io_error(&shown, e))?;
            }
            self.dirs.push((rel.to_owned(), *meta));
            return Ok(());
        }
        match existing {
            Some(true) if self.replace => {
                // Through the parent's descriptor: no path above it is looked up again.
                let p = PathBuf::from(format!("/proc/self/fd/{pfd}")).join(name);
                crate::store::remove_tree(&p).map_err(|e| io_error(&shown, e))?
            }
            Some(true) => return Err(CopyError::OverwriteDir { path: shown }),
            Some(false) => {
                nix::unistd::unlinkat(Some(pfd), name, UnlinkatFlags::NoRemoveDir).map_err(io)?
            }
            None => {}
        }
        let (atime, mtime) = times(meta);
        let set_times = || {
            nix::sys::stat::utimensat(
                Some(pfd),
                name,
                &atime,
                &mtime,
                UtimensatFlags::NoFollowSymlink,
            )
            .map_err(io)
        };
        match kind {
            Kind::Dir => unreachable!("handled above"),
            Kind::File(size) => {
                let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW;
                let mut f =
                    open_at(Some(parent), name, flags, 0o600).map_err(|e| io_error(&shown, e))?;
                let mut src = Tracked::new(data.r);
                if let Err(e) = io::copy(&mut (&mut src).take(*size), &mut f) {
                    return Err(match src.failed.take() {
                        Some(re) => data.read_error(re),
                        None => io_error(&shown, e),
                    });
                }
                let fd = f.as_raw_fd();
                // Owner first: chown clears setuid and setgid.
                if let Some((u, g)) = owner {
                    match nix::unistd::fchown(fd, Some(Uid::from_raw(u)), Some(Gid::from_raw(g))) {
                        Ok(()) | Err(Errno::EPERM) | Err(Errno::EINVAL) => {}
                        Err(e) => return Err(io(e)),
                    }
                }
                nix::sys::stat::fchmod(fd, mode(meta.mode)).map_err(io)?;
                nix::sys::stat::futimens(fd, &atime, &mtime).map_err(io)?;
            }
            Kind::Symlink(target) => {
                nix::unistd::symlinkat(target.as_path(), Some(pfd), name).map_err(io)?;
                if let Some(ids) = owner {
                    chown_at(pfd, name, ids).map_err(|e| io_error(&shown, e))?;
                }
                set_times()?;
            }
            Kind::Link(target) => {
                let (tparent, tname) = split_rel(target).ok_or_else(|| CopyError::Escape {
                    path: self.shown(target),
                })?;
                let tdir = self.open_dir(&tparent, false)?;
                nix::unistd::linkat(
                    Some(tdir.as_raw_fd()),
                    tname.as_os_str(),
                    Some(pfd),
                    name,
                    AtFlags::empty(),
                )
                .map_err(|e| io_error(&self.shown(target), e.into()))?;
            }
            Kind::Fifo | Kind::Char(_) | Kind::Block(_) => {
                let (t, dev) = match kind {
                    Kind::Char(d) => (SFlag::S_IFCHR, *d),
                    Kind::Block(d) => (SFlag::S_IFBLK, *d),
                    _ => (SFlag::S_IFIFO, 0),
                };
                match nix::sys::stat::mknodat(Some(pfd), name, t, mode(0o600), dev) {
                    Ok(()) => {}
                    // Device nodes cannot be made in a user namespace; rootless docker and
                    // podman skip them too.
                    Err(Errno::EPERM) if t != SFlag::S_IFIFO => return Ok(()),
                    Err(e) => return Err(io(e)),
                }
                if let Some(ids) = owner {
                    chown_at(pfd, name, ids).map_err(|e| io_error(&shown, e))?;
                }
                // Without following a symlink someone may have put there meanwhile; a libc that
                // cannot leaves the node owner-only.
                match nix::sys::stat::fchmodat(
                    Some(pfd),
                    name,
                    mode(meta.mode),
                    FchmodatFlags::NoFollowSymlink,
                ) {
                    Ok(()) | Err(Errno::EOPNOTSUPP) => {}
                    Err(e) => return Err(io(e)),
                }
                set_times()?;
            }
        }
        Ok(())
    }
}

impl Sink for DirSink {
    fn put(
        &mut self,
        rel: &Path,
        kind: &Kind,
        meta: &Meta,
        data: Data<'_>,
    ) -> Result<(), CopyError> {
        let (prel, name) = split_rel(rel).ok_or_else(|| CopyError::Escape {
            path: self.shown(rel),
        })?;
        let parent = match self.parent.take() {
            Some((r, f)) if r == prel => (r, f),
            _ => {
                let f = self.open_dir(&prel, true)?;
                (prel, f)
            }
        };
        self.write(&parent.1, &name, rel, kind, meta, data)?;
        self.parent = Some(parent);
        Ok(())
    }
}

/// `rel` as its parent and last name, when it has only plain names.
fn split_rel(rel: &Path) -> Option<(PathBuf, OsString)> {
    if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return None;
    }
    let name = rel.file_name()?.to_owned();
    Some((rel.parent().unwrap_or(Path::new("")).to_owned(), name))
}

/// lchown, ignoring what a user namespace refuses (ids it does not map; with a single id only
/// root's is mapped).
fn chown_at(dir: RawFd, name: &OsStr, (uid, gid): (u32, u32)) -> io::Result<()> {
    match nix::unistd::fchownat(
        Some(dir),
        name,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    ) {
        Ok(()) | Err(Errno::EPERM) | Err(Errno::EINVAL) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn mode(bits: u32) -> Mode {
    Mode::from_bits_truncate(bits & 0o7777)
}

fn times(meta: &Meta) -> (TimeSpec, TimeSpec) {
    (
        TimeSpec::new(meta.atime.0, meta.atime.1),
        TimeSpec::new(meta.mtime.0, meta.mtime.1),
    )
}

/// Open `path` relative to `dir` (or the working directory), close-on-exec.
fn open_at<P: ?Sized + NixPath>(
    dir: Option<&File>,
    path: &P,
    flags: OFlag,
    perm: u32,
) -> io::Result<File> {
    let fd = nix::fcntl::openat(
        dir.map(|d| d.as_raw_fd()),
        path,
        flags | OFlag::O_CLOEXEC,
        mode(perm),
    )?;
    // SAFETY: openat just returned this descriptor; nothing else owns it.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Open the directory `host` (under `root`) to read from, checked to be inside.
fn open_in_root(root: &Path, canon: RootId, host: &Path, shown: &Path) -> Result<File, CopyError> {
    let mut flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
    if host != root {
        flags |= OFlag::O_NOFOLLOW;
    }
    let dir = open_at(None, host, flags, 0).map_err(|e| io_error(shown, e))?;
    check_inside(&dir, canon, shown)?;
    Ok(dir)
}

/// The open directory `dir` really is under the root `canon`: a running container may have
/// swapped a directory for a symlink since the path was resolved. Checked by climbing `..` from
/// the descriptor itself until the root is met, or the top of the mount tree (whose `..` is
/// itself): the walk follows the mounts the descriptor sits in, so it holds for a container's
/// `/proc/PID/root` (its own mounts, tmpfs and binds included) as for a mounted root directory.
fn check_inside(dir: &File, canon: RootId, shown: &Path) -> Result<(), CopyError> {
    let io = |e: Errno| io_error(shown, e.into());
    let mut here = nix::sys::stat::fstat(dir.as_raw_fd()).map_err(io)?;
    let mut cur: Option<File> = None;
    // Deeper than any path can be (PATH_MAX / 2): a loop is a refusal, not a hang.
    for _ in 0..2048 {
        if RootId::from_stat(&here) == canon {
            return Ok(());
        }
        // O_PATH: a parent that is not readable (a host directory above a bind source) can
        // still be named.
        let up = open_at(
            Some(cur.as_ref().unwrap_or(dir)),
            "..",
            OFlag::O_PATH | OFlag::O_DIRECTORY,
            0,
        )
        .map_err(|e| io_error(shown, e))?;
        let st = nix::sys::stat::fstat(up.as_raw_fd()).map_err(io)?;
        if (st.st_dev, st.st_ino) == (here.st_dev, here.st_ino) {
            break;
        }
        here = st;
        cur = Some(up);
    }
    Err(CopyError::Escape { path: shown.into() })
}

// -------------------------------------------------------------------------------------------
// A tar archive from stdin.

/// Extract the tar (plain, gzip or zstd) on `input` into the sink, entry by entry.
fn extract(input: &mut dyn Read, sink: &mut DirSink) -> Result<(), CopyError> {
    let mut head = [0u8; 4];
    let mut n = 0;
    while n < head.len() {
        match input.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(CopyError::Archive(e)),
        }
    }
    let chained = io::Cursor::new(head[..n].to_vec()).chain(input);
    let reader: Box<dyn Read + '_> = match head[..n] {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::MultiGzDecoder::new(chained)),
        [0x28, 0xb5, 0x2f, 0xfd] => {
            Box::new(zstd::stream::read::Decoder::new(chained).map_err(CopyError::Archive)?)
        }
        _ => Box::new(chained),
    };
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(CopyError::Archive)? {
        let mut entry = entry.map_err(CopyError::Archive)?;
        let name = entry.path_bytes().into_owned();
        let escape = |p: &[u8]| CopyError::Escape {
            path: sink.shown(Path::new(OsStr::from_bytes(p))),
        };
        let Some(rel) = entry_rel(&name).ok_or_else(|| escape(&name))? else {
            // `.`: the destination itself, which docker leaves as it is.
            continue;
        };
        let h = entry.header();
        let meta = Meta {
            mode: h.mode().unwrap_or(0o644) & 0o7777,
            uid: h
                .uid()
                .ok()
                .and_then(|u| u32::try_from(u).ok())
                .unwrap_or(0),
            gid: h
                .gid()
                .ok()
                .and_then(|g| u32::try_from(g).ok())
                .unwrap_or(0),
            atime: (h.mtime().unwrap_or(0) as i64, 0),
            mtime: (h.mtime().unwrap_or(0) as i64, 0),
        };
        let device = || -> Result<u64, CopyError> {
            let major = h.device_major().map_err(CopyError::Archive)?.unwrap_or(0);
            let minor = h.device_minor().map_err(CopyError::Archive)?.unwrap_or(0);
            Ok(nix::sys::stat::makedev(major.into(), minor.into()))
        };
        let link = || -> Vec<u8> {
            entry
                .link_name_bytes()
                .map(|l| l.into_owned())
                .unwrap_or_default()
        };
        use tar::EntryType;
        let kind = match h.entry_type() {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                Kind::File(entry.size())
            }
            EntryType::Directory => Kind::Dir,
            EntryType::Symlink => Kind::Symlink(PathBuf::from(OsString::from_vec(link()))),
            EntryType::Link => {
                let target = link();
                match entry_rel(&target) {
                    Some(Some(t)) => Kind::Link(t),
                    _ => return Err(escape(&target)),
                }
            }
            EntryType::Fifo => Kind::Fifo,
            EntryType::Char => Kind::Char(device()?),
            EntryType::Block => Kind::Block(device()?),
            // Global headers and anything else carry no file.
            _ => continue,
        };
        let data = Data {
            r: &mut entry,
            origin: Origin::Archive,
        };
        sink.put(&rel, &kind, &meta, data)?;
    }
    Ok(())
}

/// A tar entry's name as a path relative to the destination: a leading `/` and `.` segments are
/// dropped, as docker does; `None` when a `..` segment could climb out. `Some(None)` is `.`.
fn entry_rel(name: &[u8]) -> Option<Option<PathBuf>> {
    let mut rel = PathBuf::new();
    for c in name.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return None,
            c => rel.push(OsStr::from_bytes(c)),
        }
    }
    Some((!rel.as_os_str().is_empty()).then_some(rel))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

    struct Fx {
        t: tempfile::TempDir,
        root: PathBuf,
        host: PathBuf,
    }

    /// A container root with /etc/hello (0640, mtime 1e9) and /data/{a,sub/b,link}, and an empty
    /// host directory.
    fn fx() -> Fx {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let host = t.path().join("host");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(root.join("data/sub")).unwrap();
        std::fs::create_dir(&host).unwrap();
        file(&root.join("etc/hello"), "hi", 0o640);
        file(&root.join("etc/passwd"), "container passwd", 0o644);
        file(&root.join("data/a"), "A", 0o600);
        file(&root.join("data/sub/b"), "B", 0o755);
        symlink("/etc/passwd", root.join("data/link")).unwrap();
        chmod(&root.join("data"), 0o750);
        for p in ["etc/hello", "data/a", "data/sub/b", "data/sub", "data"] {
            set_mtime(&root.join(p), 1_000_000_000);
        }
        Fx { t, root, host }
    }

    fn file(p: &Path, content: &str, mode: u32) {
        std::fs::write(p, content).unwrap();
        chmod(p, mode);
    }

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn set_mtime(p: &Path, secs: i64) {
        let t = TimeSpec::new(secs, 0);
        nix::sys::stat::utimensat(None, p, &t, &t, UtimensatFlags::NoFollowSymlink).unwrap();
    }

    /// Root of the initial user namespace, or of one mapping every id.
    fn maps_all_ids() -> bool {
        nix::unistd::geteuid().is_root()
            && std::fs::read_to_string("/proc/self/uid_map")
                .is_ok_and(|m| m.split_whitespace().nth(2) == Some("4294967295"))
    }

    fn read(p: &Path) -> String {
        std::fs::read_to_string(p).unwrap()
    }

    fn mode_of(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
    }

    fn mtime_of(p: &Path) -> i64 {
        std::fs::symlink_metadata(p).unwrap().mtime()
    }

    fn out(f: &Fx, ctr: &str, dst: &Path) -> Result<(), CopyError> {
        copy_out(&f.root, ctr, Dest::Path(dst), false, &mut io::sink())
    }

    fn into(f: &Fx, src: &Path, ctr: &str) -> Result<(), CopyError> {
        copy_in(&f.root, Source::Path(src), ctr, &mut io::empty())
    }

    fn stdin(f: &Fx, tar: &[u8], ctr: &str) -> Result<(), CopyError> {
        copy_in(&f.root, Source::Stdin, ctr, &mut &tar[..])
    }

    fn to_stdout(f: &Fx, ctr: &str) -> Vec<u8> {
        let mut buf = Vec::new();
        copy_out(&f.root, ctr, Dest::Stdout, false, &mut buf).unwrap();
        buf
    }

    /// (name, type, mode, link name) of each entry.
    fn listing(tar: &[u8]) -> Vec<(String, char, u32, String)> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                let link = e
                    .link_name_bytes()
                    .map(|l| String::from_utf8_lossy(&l).into_owned())
                    .unwrap_or_default();
                (
                    String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                    h.entry_type().as_byte() as char,
                    h.mode().unwrap(),
                    link,
                )
            })
            .collect()
    }

    fn names(tar: &[u8]) -> Vec<String> {
        listing(tar).into_iter().map(|e| e.0).collect()
    }

    /// A tar written header by header, so that it can hold what `tar::Builder` refuses.
    /// Entries: (name, type, mode, uid, content or link target).
    fn raw_tar(entries: &[(&str, tar::EntryType, u32, u64, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, t, mode, uid, body) in entries {
            let mut h = tar::Header::new_gnu();
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_entry_type(*t);
            h.set_mode(*mode);
            h.set_uid(*uid);
            h.set_gid(*uid);
            h.set_mtime(1_234_567_890);
            let content = if matches!(t, tar::EntryType::Symlink | tar::EntryType::Link) {
                h.as_old_mut().linkname[..body.len()].copy_from_slice(body.as_bytes());
                ""
            } else {
                body
            };
            h.set_size(content.len() as u64);
            h.set_cksum();
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(content.as_bytes());
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
        out.resize(out.len() + 1024, 0);
        out
    }

    // --- Out of the container, to a host path.

    #[test]
    fn file_to_a_new_path_keeps_mode_and_time() {
        let f = fx();
        let dst = f.host.join("out.txt");
        out(&f, "/etc/hello", &dst).unwrap();
        assert_eq!(read(&dst), "hi");
        assert_eq!(mode_of(&dst), 0o640);
        assert_eq!(mtime_of(&dst), 1_000_000_000);
    }

    #[test]
    fn file_to_an_existing_directory_keeps_its_name() {
        let f = fx();
        out(&f, "etc/hello", &f.host).unwrap();
        assert_eq!(read(&f.host.join("hello")), "hi");
    }

    #[test]
    fn file_overwrites_an_existing_file() {
        let f = fx();
        let dst = f.host.join("f");
        file(&dst, "old content", 0o600);
        out(&f, "/etc/hello", &dst).unwrap();
        assert_eq!(read(&dst), "hi");
        assert_eq!(mode_of(&dst), 0o640);
    }

    #[test]
    fn destination_symlink_is_followed() {
        let f = fx();
        std::fs::create_dir(f.host.join("real")).unwrap();
        symlink("real", f.host.join("alias")).unwrap();
        out(&f, "/etc/hello", &f.host.join("alias")).unwrap();
        assert_eq!(read(&f.host.join("real/hello")), "hi");
    }

    #[test]
    fn directory_to_a_new_path_is_created_with_its_contents() {
        let f = fx();
        let dst = f.host.join("new");
        out(&f, "/data", &dst).unwrap();
        assert_eq!(read(&dst.join("a")), "A");
        assert_eq!(read(&dst.join("sub/b")), "B");
        assert_eq!(mode_of(&dst), 0o750);
        assert_eq!(mode_of(&dst.join("sub/b")), 0o755);
        assert_eq!(mtime_of(&dst), 1_000_000_000);
        assert_eq!(mtime_of(&dst.join("sub")), 1_000_000_000);
    }

    #[test]
    fn directory_into_an_existing_directory_keeps_its_name() {
        let f = fx();
        out(&f, "/data", &f.host).unwrap();
        assert_eq!(read(&f.host.join("data/a")), "A");
        assert_eq!(read(&f.host.join("data/sub/b")), "B");
    }

    #[test]
    fn dot_copies_the_contents_into_an_existing_directory() {
        let f = fx();
        chmod(&f.host, 0o700);
        out(&f, "/data/.", &f.host).unwrap();
        assert_eq!(read(&f.host.join("a")), "A");
        assert_eq!(read(&f.host.join("sub/b")), "B");
        assert!(!f.host.join("data").exists());
        // The destination itself is left as it was.
        assert_eq!(mode_of(&f.host), 0o700);
        // And `/.` on a missing destination creates it, like a plain directory.
        out(&f, "/data/.", &f.host.join("fresh")).unwrap();
        assert_eq!(read(&f.host.join("fresh/a")), "A");
    }

    #[test]
    fn a_directory_never_replaces_a_file() {
        let f = fx();
        let dst = f.host.join("f");
        file(&dst, "x", 0o644);
        let e = out(&f, "/data", &dst).unwrap_err();
        assert!(matches!(e, CopyError::DirToFile { .. }), "{e:?}");
        assert!(e.to_string().contains("cannot copy a directory to a file"));
        assert_eq!(read(&dst), "x");
    }

    #[test]
    fn a_missing_source_is_reported_as_docker_does() {
        let f = fx();
        let e = out(&f, "/nope", &f.host).unwrap_err();
        assert!(matches!(e, CopyError::NotFound { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "Could not find the file /nope in the container"
        );
        assert!(e.hint().is_some());
        let e = out(&f, "/etc/hello/x", &f.host).unwrap_err();
        assert!(matches!(e, CopyError::NotFound { .. }), "{e:?}");
    }

    #[test]
    fn trailing_slash_rules() {
        let f = fx();
        // A file to a missing path ending in `/`: docker's "no such directory".
        let e = out(&f, "/etc/hello", &f.host.join("newdir/")).unwrap_err();
        assert!(matches!(e, CopyError::DirNotExists { .. }), "{e:?}");
        assert!(!f.host.join("newdir").exists());
        // A directory to one is created.
        out(&f, "/data", &f.host.join("newdir/")).unwrap();
        assert_eq!(read(&f.host.join("newdir/a")), "A");
        // A source ending in `/` must be a directory.
        let e = out(&f, "/etc/hello/", &f.host).unwrap_err();
        assert!(matches!(e, CopyError::NotADirectory { .. }), "{e:?}");
        // So must a destination, when it exists.
        file(&f.host.join("plain"), "x", 0o644);
        let e = out(&f, "/etc/hello", &f.host.join("plain/")).unwrap_err();
        assert!(matches!(e, CopyError::NotADirectory { .. }), "{e:?}");
        // A missing parent is an error, not created.
        let e = out(&f, "/etc/hello", &f.host.join("no/such/file")).unwrap_err();
        assert!(matches!(e, CopyError::LocalNotFound { .. }), "{e:?}");
    }

    #[test]
    fn symlinks_are_copied_as_symlinks_never_followed() {
        let f = fx();
        out(&f, "/data", &f.host).unwrap();
        let link = f.host.join("data/link");
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
        assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("/etc/passwd"));
        // Named as the source, the link itself is copied...
        out(&f, "/data/link", &f.host.join("l2")).unwrap();
        assert!(
            std::fs::symlink_metadata(f.host.join("l2"))
                .unwrap()
                .is_symlink()
        );
        // ...unless -L: then its target in the container (not the host's /etc/passwd), under
        // the link's name.
        copy_out(
            &f.root,
            "/data/link",
            Dest::Path(&f.host),
            true,
            &mut io::sink(),
        )
        .unwrap();
        assert_eq!(read(&f.host.join("link")), "container passwd");
        // The same for a host symlink copied in.
        file(&f.host.join("target"), "target", 0o644);
        symlink("target", f.host.join("hostlink")).unwrap();
        into(&f, &f.host.join("hostlink"), "/etc").unwrap();
        assert!(
            std::fs::symlink_metadata(f.root.join("etc/hostlink"))
                .unwrap()
                .is_symlink()
        );
        let src = Source::Path(&f.host.join("hostlink"));
        copy_in_with(&f.root, src, "/data", &mut io::empty(), true).unwrap();
        assert_eq!(read(&f.root.join("data/hostlink")), "target");
    }

    #[test]
    fn hard_links_in_a_tree_stay_hard_links() {
        let f = fx();
        std::fs::hard_link(f.root.join("data/a"), f.root.join("data/a2")).unwrap();
        out(&f, "/data", &f.host.join("d")).unwrap();
        let a = std::fs::metadata(f.host.join("d/a")).unwrap();
        let a2 = std::fs::metadata(f.host.join("d/a2")).unwrap();
        assert_eq!(a.ino(), a2.ino());
        let tar = to_stdout(&f, "/data");
        let l = listing(&tar);
        assert!(
            l.contains(&("data/a2".into(), '1', 0o600, "data/a".into())),
            "{l:?}"
        );
    }

    // --- Out of the container, as a tar on stdout.

    #[test]
    fn stdout_tar_starts_with_the_source_base_name() {
        let f = fx();
        let tar = to_stdout(&f, "/data");
        assert_eq!(
            listing(&tar),
            [
                ("data/".into(), '5', 0o750, String::new()),
                ("data/a".into(), '0', 0o600, String::new()),
                ("data/link".into(), '2', 0o777, "/etc/passwd".into()),
                ("data/sub/".into(), '5', 0o755, String::new()),
                ("data/sub/b".into(), '0', 0o755, String::new()),
            ]
        );
        assert_eq!(names(&to_stdout(&f, "/etc/hello")), ["hello"]);
        assert_eq!(
            names(&to_stdout(&f, "/data/.")),
            ["./", "a", "link", "sub/", "sub/b"]
        );
        let mut a = tar::Archive::new(&tar[..]);
        let mut e = a.entries().unwrap().nth(1).unwrap().unwrap();
        let mut s = String::new();
        e.read_to_string(&mut s).unwrap();
        assert_eq!(s, "A");
        assert_eq!(e.header().mtime().unwrap(), 1_000_000_000);
    }

    // --- Into the container.

    #[test]
    fn host_file_into_the_container_belongs_to_root() {
        let f = fx();
        let src = f.host.join("hello");
        file(&src, "from host", 0o604);
        set_mtime(&src, 1_500_000_000);
        let _ = nix::unistd::chown(&src, Some(Uid::from_raw(1234)), Some(Gid::from_raw(1234)));
        into(&f, &src, "/etc/new").unwrap();
        let dst = f.root.join("etc/new");
        assert_eq!(read(&dst), "from host");
        assert_eq!(mode_of(&dst), 0o604);
        assert_eq!(mtime_of(&dst), 1_500_000_000);
        if nix::unistd::geteuid().is_root() {
            let md = std::fs::metadata(&dst).unwrap();
            assert_eq!((md.uid(), md.gid()), (0, 0));
        }
        into(&f, &src, "/etc/").unwrap();
        assert_eq!(read(&f.root.join("etc/hello")), "from host");
    }

    #[test]
    fn host_directory_into_the_container_keeps_modes_and_times() {
        let f = fx();
        let src = f.host.join("tree");
        std::fs::create_dir_all(src.join("inner")).unwrap();
        file(&src.join("inner/x"), "x", 0o754);
        symlink("../../../../etc/shadow", src.join("inner/up")).unwrap();
        chmod(&src.join("inner"), 0o511);
        set_mtime(&src.join("inner"), 1_100_000_000);
        into(&f, &src, "/").unwrap();
        let dst = f.root.join("tree/inner");
        assert_eq!(read(&dst.join("x")), "x");
        assert_eq!(mode_of(&dst.join("x")), 0o754);
        assert_eq!(mode_of(&dst), 0o511);
        assert_eq!(mtime_of(&dst), 1_100_000_000);
        assert_eq!(
            std::fs::read_link(dst.join("up")).unwrap(),
            Path::new("../../../../etc/shadow")
        );
        // `/.` copies the contents into a new directory.
        into(&f, &src.join("."), "/copy").unwrap();
        assert_eq!(read(&f.root.join("copy/inner/x")), "x");
        chmod(&src.join("inner"), 0o755);
    }

    #[test]
    fn container_destination_symlink_is_followed_in_scope() {
        let f = fx();
        symlink("/etc", f.root.join("cfg")).unwrap();
        let src = f.host.join("hello2");
        file(&src, "x", 0o644);
        into(&f, &src, "/cfg").unwrap();
        assert_eq!(read(&f.root.join("etc/hello2")), "x");
        let e = into(&f, &src, "/missing/dir/file").unwrap_err();
        assert!(matches!(e, CopyError::NotFound { .. }), "{e:?}");
    }

    #[test]
    fn container_symlinks_to_host_paths_stay_inside_the_root() {
        let f = fx();
        // A directory on the host, next to the root, with a secret in it.
        let outside = f.t.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        file(&outside.join("secret"), "host secret", 0o644);
        // Symlinks in the container aiming at it, absolutely and by climbing.
        symlink(&outside, f.root.join("abs")).unwrap();
        symlink("../../../../../../../../outside", f.root.join("up")).unwrap();
        for link in ["/abs/secret", "/up/secret"] {
            let e = out(&f, link, &f.host).unwrap_err();
            assert!(matches!(e, CopyError::NotFound { .. }), "{link}: {e:?}");
            let e = copy_out(&f.root, link, Dest::Stdout, false, &mut Vec::new()).unwrap_err();
            assert!(matches!(e, CopyError::NotFound { .. }), "{link}: {e:?}");
        }
        assert!(!f.host.join("secret").exists());
        // Writing through them lands inside the root.
        let inner = f.root.join(outside.strip_prefix("/").unwrap());
        std::fs::create_dir_all(&inner).unwrap();
        std::fs::create_dir_all(f.root.join("outside")).unwrap();
        let src = f.host.join("payload");
        file(&src, "payload", 0o644);
        into(&f, &src, "/abs/").unwrap();
        into(&f, &src, "/up/").unwrap();
        assert_eq!(read(&inner.join("payload")), "payload");
        assert_eq!(read(&f.root.join("outside/payload")), "payload");
        assert!(!outside.join("payload").exists());
        assert_eq!(read(&outside.join("secret")), "host secret");
        // And so does a tar's entry below them.
        let tar = raw_tar(&[("abs/x", tar::EntryType::Regular, 0o644, 0, "tar")]);
        stdin(&f, &tar, "/").unwrap();
        assert_eq!(read(&inner.join("x")), "tar");
        assert!(!outside.join("x").exists());
    }

    // --- A tar on stdin.

    #[test]
    fn stdin_tar_is_extracted_with_modes_owners_and_links() {
        let f = fx();
        std::fs::create_dir(f.root.join("dst")).unwrap();
        use tar::EntryType as T;
        let tar = raw_tar(&[
            ("./", T::Directory, 0o700, 0, ""),
            ("x/", T::Directory, 0o751, 0, ""),
            ("x/f", T::Regular, 0o640, 1234, "data"),
            ("x/l", T::Symlink, 0o777, 0, "/etc/passwd"),
            ("x/h", T::Link, 0o640, 0, "x/f"),
            ("/abs/name", T::Regular, 0o644, 0, "rooted"),
            ("deep/er/file", T::Regular, 0o644, 0, "parents made"),
        ]);
        stdin(&f, &tar, "/dst").unwrap();
        let d = f.root.join("dst");
        assert_eq!(read(&d.join("x/f")), "data");
        assert_eq!(mode_of(&d.join("x/f")), 0o640);
        assert_eq!(mode_of(&d.join("x")), 0o751);
        assert_eq!(mtime_of(&d.join("x/f")), 1_234_567_890);
        assert_eq!(mtime_of(&d.join("x")), 1_234_567_890);
        assert_eq!(
            std::fs::read_link(d.join("x/l")).unwrap(),
            Path::new("/etc/passwd")
        );
        let ino = |p: &str| std::fs::metadata(d.join(p)).unwrap().ino();
        assert_eq!(ino("x/f"), ino("x/h"));
        assert_eq!(read(&d.join("abs/name")), "rooted");
        assert_eq!(read(&d.join("deep/er/file")), "parents made");
        // `.` is the destination itself, left alone.
        assert_ne!(mode_of(&d), 0o700);
        // The archive's owner where it is mapped; in a single-id namespace, root.
        let uid = std::fs::metadata(d.join("x/f")).unwrap().uid();
        if maps_all_ids() {
            assert_eq!(uid, 1234);
        } else if nix::unistd::geteuid().is_root() {
            assert_eq!(uid, nix::unistd::geteuid().as_raw());
        }
    }

    #[test]
    fn stdin_tar_may_be_compressed() {
        let f = fx();
        let tar = raw_tar(&[("z", tar::EntryType::Regular, 0o644, 0, "zipped")]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        stdin(&f, &gz.finish().unwrap(), "/etc").unwrap();
        assert_eq!(read(&f.root.join("etc/z")), "zipped");
        let zst = zstd::encode_all(&tar[..], 1).unwrap();
        stdin(&f, &zst, "/data").unwrap();
        assert_eq!(read(&f.root.join("data/z")), "zipped");
    }

    #[test]
    fn stdin_needs_an_existing_directory() {
        let f = fx();
        let tar = raw_tar(&[("z", tar::EntryType::Regular, 0o644, 0, "z")]);
        let e = stdin(&f, &tar, "/etc/hello").unwrap_err();
        assert!(matches!(e, CopyError::ExtractTarget { .. }), "{e:?}");
        let e = stdin(&f, &tar, "/nowhere").unwrap_err();
        assert!(matches!(e, CopyError::NotFound { .. }), "{e:?}");
        let e = stdin(&f, b"this is not a tar archive, not at all, nope", "/etc").unwrap_err();
        assert!(matches!(e, CopyError::Archive(_)), "{e:?}");
    }

    #[test]
    fn tar_entries_climbing_out_are_refused_and_nothing_is_written() {
        let f = fx();
        std::fs::create_dir(f.root.join("dst")).unwrap();
        use tar::EntryType as T;
        for tar in [
            raw_tar(&[("../evil", T::Regular, 0o644, 0, "evil")]),
            raw_tar(&[("a/../../../evil", T::Regular, 0o644, 0, "evil")]),
            raw_tar(&[("evil", T::Link, 0o644, 0, "../../etc/hello")]),
        ] {
            let e = stdin(&f, &tar, "/dst").unwrap_err();
            assert!(matches!(e, CopyError::Escape { .. }), "{e:?}");
            assert!(e.hint().is_some());
        }
        assert!(!f.root.join("evil").exists());
        assert!(!f.t.path().join("evil").exists());
        assert_eq!(std::fs::read_dir(f.root.join("dst")).unwrap().count(), 0);
    }

    #[test]
    fn tar_symlink_used_as_a_parent_resolves_inside_the_root() {
        let f = fx();
        let outside = f.t.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        use tar::EntryType as T;
        let tar = raw_tar(&[
            ("l", T::Symlink, 0o777, 0, outside.to_str().unwrap()),
            ("l/evil", T::Regular, 0o644, 0, "evil"),
            ("r", T::Symlink, 0o777, 0, "../../../../../../outside"),
            ("r/evil", T::Regular, 0o644, 0, "evil"),
        ]);
        stdin(&f, &tar, "/").unwrap();
        assert!(!outside.join("evil").exists());
        let inner = f.root.join(outside.strip_prefix("/").unwrap());
        assert_eq!(read(&inner.join("evil")), "evil");
        assert_eq!(read(&f.root.join("outside/evil")), "evil");
    }

    #[test]
    fn tar_never_replaces_a_directory_with_a_file_or_back() {
        let f = fx();
        use tar::EntryType as T;
        let e = stdin(&f, &raw_tar(&[("data", T::Regular, 0o644, 0, "x")]), "/").unwrap_err();
        assert!(matches!(e, CopyError::OverwriteDir { .. }), "{e:?}");
        let e = stdin(
            &f,
            &raw_tar(&[("hello/", T::Directory, 0o755, 0, "")]),
            "/etc",
        )
        .unwrap_err();
        assert!(matches!(e, CopyError::OverwriteNonDir { .. }), "{e:?}");
        assert_eq!(read(&f.root.join("etc/hello")), "hi");
        // A file replaces a file, and a symlink is replaced rather than written through.
        symlink("/etc/passwd", f.root.join("etc/ln")).unwrap();
        stdin(&f, &raw_tar(&[("ln", T::Regular, 0o644, 0, "new")]), "/etc").unwrap();
        assert_eq!(read(&f.root.join("etc/ln")), "new");
        assert_eq!(read(&f.root.join("etc/passwd")), "container passwd");
    }

    // --- Pieces.

    #[test]
    fn a_directory_outside_the_root_is_caught_once_opened() {
        let f = fx();
        let canon = RootId::of(&f.root).unwrap();
        let inside = open_at(None, &f.root.join("data"), OFlag::O_RDONLY, 0).unwrap();
        check_inside(&inside, canon, Path::new("/data")).unwrap();
        let outside = open_at(None, &f.host, OFlag::O_RDONLY, 0).unwrap();
        let e = check_inside(&outside, canon, Path::new("/x")).unwrap_err();
        assert!(matches!(e, CopyError::Escape { .. }), "{e:?}");
        // A sibling whose name merely starts like the root's is outside too.
        std::fs::create_dir(f.t.path().join("rootx")).unwrap();
        let sibling = open_at(None, &f.t.path().join("rootx"), OFlag::O_RDONLY, 0).unwrap();
        assert!(check_inside(&sibling, canon, Path::new("/x")).is_err());
    }

    #[test]
    fn paths_are_read_as_docker_reads_them() {
        let s = Spec::parse(OsStr::new("a/../b/./c/."), Path::new("/"));
        assert_eq!(s.path(), Path::new("/b/c"));
        assert!(s.contents && s.dir);
        let s = Spec::parse(OsStr::new("../../x/"), Path::new("/"));
        assert_eq!(s.path(), Path::new("/x"));
        assert!(!s.contents && s.dir);
        let s = Spec::parse(OsStr::new("rel"), Path::new("/home/u"));
        assert_eq!(s.path(), Path::new("/home/u/rel"));
        assert!(!s.contents && !s.dir);
        let s = Spec::parse(OsStr::new("."), Path::new("/home/u"));
        assert!(s.contents);
        assert_eq!(entry_rel(b"/a//./b"), Some(Some(PathBuf::from("a/b"))));
        assert_eq!(entry_rel(b"./"), Some(None));
        assert_eq!(entry_rel(b"a/../b"), None);
    }
}
