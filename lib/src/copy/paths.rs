//! docker's path rules for `cp`: how an argument is read ([`Spec`]), what a destination is once
//! its symlinks are followed ([`host_dest`], [`container_dest`]), and where the copied tree lands
//! ([`land`], docker's `PrepareArchiveCopy`).

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::unpack::scope;

use super::CopyError;

/// A path argument as docker reads it: cleaned lexically (`..` cannot climb above `/`), plus what
/// its spelling asserts.
#[derive(Debug)]
pub(super) struct Spec {
    pub(super) comps: Vec<OsString>,
    /// The last segment is `.` (`dir/.`): the directory's contents rather than the directory.
    pub(super) contents: bool,
    /// Ends in `/` or `/.`: the path must be a directory.
    pub(super) dir: bool,
}

impl Spec {
    /// `arg`, relative to `base` unless absolute.
    pub(super) fn parse(arg: &OsStr, base: &Path) -> Spec {
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

    pub(super) fn path(&self) -> PathBuf {
        let mut p = PathBuf::from("/");
        p.extend(&self.comps);
        p
    }
}

/// What the destination is, once its symlinks are followed.
#[derive(Debug)]
pub(super) struct Dst {
    /// Host path, or container path for [`super::copy_in`].
    pub(super) path: PathBuf,
    pub(super) exists: bool,
    pub(super) is_dir: bool,
    /// The argument ends in `/` or `/.`.
    pub(super) dir: bool,
}

/// Where the copied tree lands: the directory its entries are written into, and the name of the
/// top entry there (`None`: the source directory's contents go straight into it).
#[derive(Debug, PartialEq)]
pub(super) struct Landing {
    pub(super) dir: PathBuf,
    pub(super) top: Option<OsString>,
}

/// docker's `PrepareArchiveCopy`: enter an existing directory, or write beside under the
/// destination's name.
pub(super) fn land(
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
pub(super) fn host_dest(arg: &Path) -> Result<Dst, CopyError> {
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
pub(super) fn container_dest(root: &Path, ctr_path: &str) -> Result<Dst, CopyError> {
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
pub(super) fn resolve_in(
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
pub(super) fn is_enotdir(e: &CopyError) -> bool {
    matches!(e, CopyError::Io { source, .. } if source.raw_os_error() == Some(libc::ENOTDIR))
}

/// The absolute container path of `host`, a path under `root`.
pub(super) fn container_path(root: &Path, host: &Path) -> PathBuf {
    Path::new("/").join(host.strip_prefix(root).unwrap_or(Path::new("")))
}

pub(super) fn current_dir() -> Result<PathBuf, CopyError> {
    std::env::current_dir().map_err(|e| io_error(Path::new("."), e))
}

pub(super) fn is_missing(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR)
}

pub(super) fn io_error(path: &Path, source: io::Error) -> CopyError {
    CopyError::Io {
        path: path.into(),
        source,
    }
}
