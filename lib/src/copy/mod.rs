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
//! [`crate::unpack::scope::resolve`], symlinks followed with `root` as `/`, so a container's
//! symlink to `/etc` or to `../../..` stays inside it, as it would for a process in the
//! container. A running container can still swap a directory for a symlink while den works, so
//! every directory den reads or writes
//! under `root` is opened (`O_NOFOLLOW`), then checked through `/proc/self/fd` to really be under
//! `root`, and entries are then created relative to that descriptor (`*at` calls, `O_EXCL`,
//! `O_NOFOLLOW`), never through a path the container could redirect. Tar entries with `..` are
//! refused; a tar's symlink used as a parent resolves inside the root like any other.
//!
//! **Why by hand.** The tar format is the `tar` crate's. Docker's path rules (what `/.` and a
//! trailing `/` mean, when the destination is entered, created or renamed) live in docker's
//! archive package and have no crate, and `tar`'s own unpacking writes by path, which cannot keep
//! a live container's symlinks from redirecting it. So the planning is written here, over den's
//! one tree copy ([`crate::fs`]): its walk reads the source through descriptors and feeds either
//! a tar on stdout (`tarball::TarSink`) or its directory writer ([`crate::fs::Writer`]), which also
//! takes a tar from stdin (`tarball::extract`). What is `cp`'s own:
//!
//! - `paths`: docker's rules for reading the arguments and placing the copy;
//! - `place`: reaching a directory in a container's root and checking the descriptor got there
//!   (the writer's [`crate::fs::Place`]);
//! - `tarball`: the tar sink and the tar reader.
//!
//! The tar sink is a sink of the shared walk; the tar reader is not a walk (an archive is a
//! stream of entries, not a tree to open), so it hands its entries to the writer directly.

mod paths;
mod place;
mod tarball;
#[cfg(test)]
mod tests;

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::error::Diagnose;
use crate::fs::{Clash, Owners, Top, TreeError, Walk, Writer};

use paths::{
    Spec, container_dest, current_dir, host_dest, io_error, is_enotdir, is_missing, land,
    resolve_in,
};
use place::{Base, RootId, open_in_root};

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
    #[error("invalid copy paths: {0}")]
    BadPaths(String),
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
            CopyError::BadPaths(_) => {
                "one of the paths must name a container: CONTAINER:PATH".into()
            }
        })
    }
}

impl From<TreeError> for CopyError {
    fn from(e: TreeError) -> CopyError {
        match e {
            TreeError::Io { path, source } => CopyError::Io { path, source },
            TreeError::Read {
                from: Some(path),
                source,
            } => CopyError::Io { path, source },
            TreeError::Read { from: None, source } => CopyError::Archive(source),
            TreeError::OverwriteDir { path } => CopyError::OverwriteDir { path },
            TreeError::OverwriteNonDir { path } => CopyError::OverwriteNonDir { path },
            TreeError::Escape { path } => CopyError::Escape { path },
        }
    }
}

/// What `cp` reads from a tree: everything but sockets, symlinks as symlinks.
const WALK: Walk<'static> = Walk {
    keep: None,
    keep_rel: "",
    specials: true,
    opaque_xattr: None,
};

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
    let clash = if replace {
        Clash::Replace
    } else {
        Clash::Refuse
    };
    let mut sink = Writer::new(base, Owners::Keep, clash);
    tarball::extract(input, &mut sink)?;
    Ok(sink.finish()?)
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
            let mut sink = tarball::TarSink {
                b: tar::Builder::new(out),
            };
            let top_name = name.unwrap_or_else(|| ".".into());
            let rel = Some(PathBuf::from(top_name));
            crate::fs::walk(top, rel, &ctr, WALK, &mut Default::default(), &mut sink)?;
            sink.finish()
        }
        Dest::Path(p) => {
            let dst = host_dest(p)?;
            let landing = land(md.is_dir(), name, &dst, p)?;
            let mut sink = Writer::new(Base::Host(landing.dir), Owners::Unchanged, Clash::Refuse);
            let rel = landing.top.map(PathBuf::from);
            crate::fs::walk(top, rel, &ctr, WALK, &mut Default::default(), &mut sink)?;
            Ok(sink.finish()?)
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
            let open = |dir: &Path| {
                let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
                crate::sys::open_at(None, dir, flags, Mode::empty()).map_err(|e| io_error(p, e))
            };
            let top = if md.is_dir() {
                Top::Dir(open(&resolved)?)
            } else {
                Top::Named {
                    parent: open(resolved.parent().unwrap_or(Path::new("/")))?,
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
            let mut sink = Writer::new(base, Owners::Fixed(0, 0), Clash::Refuse);
            let rel = landing.top.map(PathBuf::from);
            crate::fs::walk(top, rel, p, WALK, &mut Default::default(), &mut sink)?;
            Ok(sink.finish()?)
        }
    }
}
