//! Where `cp` writes: a host directory, or a directory in a container's root filesystem that
//! must be reached without leaving it ([`Base`], the [`crate::fs::Place`] of `cp`'s writer).
//!
//! A container path is resolved in scope ([`scope::resolve`]), opened, and the descriptor then
//! checked to really be under the root ([`check_inside`]): a running container can swap a
//! directory for a symlink between the two, and only the descriptor tells where it went.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{FileStat, Mode};

use crate::fs::TreeError;
use crate::fs::write::{chown_at, mode};
use crate::unpack::scope;

use super::CopyError;
use super::paths::io_error;

/// The root directory, as the file it is: its device and inode. `root` may be a running
/// container's `/proc/PID/root`, whose path names nothing outside that process's mount namespace;
/// the identity holds there too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RootId {
    dev: u64,
    ino: u64,
}

impl RootId {
    pub(super) fn of(root: &Path) -> Result<RootId, CopyError> {
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

/// The directory `cp`'s writer writes under.
pub(super) enum Base {
    /// A host directory: the user's own, its symlinks followed as the kernel does.
    Host(PathBuf),
    /// `dir`, an absolute container path, in the container whose root filesystem is at `root`
    /// (`canon` is the root directory's identity). Directories `cp` makes on the way are root's.
    Container {
        root: PathBuf,
        canon: RootId,
        dir: PathBuf,
    },
}

fn io_at(shown: &Path) -> impl FnOnce(io::Error) -> TreeError + '_ {
    move |source| TreeError::Io {
        path: shown.to_owned(),
        source,
    }
}

impl crate::fs::Place for Base {
    /// How `rel` is named in errors: the host path, or the container path.
    fn shown(&self, rel: &Path) -> PathBuf {
        match self {
            Base::Host(b) => b.join(rel),
            Base::Container { dir, .. } => dir.join(rel),
        }
    }

    /// The directory `rel` under the base, opened; missing directories on the way are created
    /// (0755, root's in a container) when `create`.
    fn open_dir(&self, rel: &Path, create: bool) -> Result<File, TreeError> {
        let shown = self.shown(rel);
        let (host, floor, canon) = match self {
            Base::Host(b) => (b.join(rel), b.as_path(), None),
            Base::Container { root, canon, dir } => {
                let host = scope::resolve(root, &dir.join(rel), true).map_err(io_at(&shown))?;
                if !host.starts_with(root) {
                    return Err(TreeError::Escape { path: shown });
                }
                (host, root.as_path(), Some(*canon))
            }
        };
        let (existing, missing) = deepest_existing(host, floor, create).map_err(io_at(&shown))?;
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
        // Inside a container the path is resolved already: a symlink at its end now is a race.
        let first = if canon.is_some() && existing != floor {
            flags | OFlag::O_NOFOLLOW
        } else {
            flags
        };
        let mut dir =
            crate::sys::open_at(None, &existing, first, Mode::empty()).map_err(io_at(&shown))?;
        if let Some(canon) = canon {
            check_inside(&dir, canon, &shown)?;
        }
        for name in missing.iter().rev() {
            let dfd = Some(dir.as_raw_fd());
            match nix::sys::stat::mkdirat(dfd, name.as_os_str(), mode(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(io_at(&shown)(e.into())),
            }
            if canon.is_some() {
                chown_at(dir.as_raw_fd(), name, (0, 0)).map_err(io_at(&shown))?;
            }
            let nofollow = flags | OFlag::O_NOFOLLOW;
            dir = crate::sys::open_at(Some(dir.as_fd()), name.as_os_str(), nofollow, Mode::empty())
                .map_err(io_at(&shown))?;
        }
        Ok(dir)
    }
}

/// The deepest directory of `host` that exists, and the names missing below it (only when
/// `create`, and never above `floor`).
fn deepest_existing(
    mut existing: PathBuf,
    floor: &Path,
    create: bool,
) -> io::Result<(PathBuf, Vec<OsString>)> {
    let mut missing = Vec::new();
    loop {
        match std::fs::symlink_metadata(&existing) {
            Ok(_) => return Ok((existing, missing)),
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    && create
                    && existing != floor
                    && existing.starts_with(floor) =>
            {
                missing.push(existing.file_name().unwrap_or_default().to_owned());
                existing.pop();
            }
            Err(e) => return Err(e),
        }
    }
}

/// Open the directory `host` (under `root`) to read from, checked to be inside.
pub(super) fn open_in_root(
    root: &Path,
    canon: RootId,
    host: &Path,
    shown: &Path,
) -> Result<File, CopyError> {
    let mut flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
    if host != root {
        flags |= OFlag::O_NOFOLLOW;
    }
    let dir =
        crate::sys::open_at(None, host, flags, Mode::empty()).map_err(|e| io_error(shown, e))?;
    check_inside(&dir, canon, shown)?;
    Ok(dir)
}

/// The open directory `dir` really is under the root `canon`: a running container may have
/// swapped a directory for a symlink since the path was resolved. Checked by climbing `..` from
/// the descriptor itself until the root is met, or the top of the mount tree (whose `..` is
/// itself): the walk follows the mounts the descriptor sits in, so it holds for a container's
/// `/proc/PID/root` (its own mounts, tmpfs and binds included) as for a mounted root directory.
pub(super) fn check_inside(dir: &File, canon: RootId, shown: &Path) -> Result<(), TreeError> {
    let io = |e: Errno| io_at(shown)(e.into());
    let mut here = nix::sys::stat::fstat(dir.as_raw_fd()).map_err(io)?;
    let mut cur: Option<File> = None;
    // Deeper than any path can be (PATH_MAX / 2): a loop is a refusal, not a hang.
    for _ in 0..2048 {
        if RootId::from_stat(&here) == canon {
            return Ok(());
        }
        // O_PATH: a parent that is not readable (a host directory above a bind source) can
        // still be named.
        let up = crate::sys::open_at(
            Some(cur.as_ref().unwrap_or(dir).as_fd()),
            "..",
            OFlag::O_PATH | OFlag::O_DIRECTORY,
            Mode::empty(),
        )
        .map_err(io_at(shown))?;
        let st = nix::sys::stat::fstat(up.as_raw_fd()).map_err(io)?;
        if (st.st_dev, st.st_ino) == (here.st_dev, here.st_ino) {
            break;
        }
        here = st;
        cur = Some(up);
    }
    Err(TreeError::Escape { path: shown.into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(p: &Path) -> File {
        crate::sys::open_at(None, p, OFlag::O_RDONLY, Mode::empty()).unwrap()
    }

    #[test]
    fn a_directory_outside_the_root_is_caught_once_opened() {
        let t = tempfile::tempdir().unwrap();
        let (root, host) = (t.path().join("root"), t.path().join("host"));
        std::fs::create_dir_all(root.join("data")).unwrap();
        std::fs::create_dir(&host).unwrap();
        let canon = RootId::of(&root).unwrap();
        check_inside(&open(&root.join("data")), canon, Path::new("/data")).unwrap();
        let e = check_inside(&open(&host), canon, Path::new("/x")).unwrap_err();
        assert!(matches!(e, TreeError::Escape { .. }), "{e:?}");
        // A sibling whose name merely starts like the root's is outside too.
        std::fs::create_dir(t.path().join("rootx")).unwrap();
        let sibling = open(&t.path().join("rootx"));
        assert!(check_inside(&sibling, canon, Path::new("/x")).is_err());
    }
}
