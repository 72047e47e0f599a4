//! Advisory locks between den processes sharing one store: flock(2) on files under `locks/`.
//!
//! flock locks belong to the open file description, vanish when the process dies (a killed den
//! never leaves a store locked), and work between processes inside and outside den's user
//! namespace because they are on the same inode.

use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::{Result, StoreError};

/// A held lock; released on drop.
#[derive(Debug)]
pub struct Lock {
    _flock: Flock<std::fs::File>,
    path: PathBuf,
}

impl Lock {
    pub fn exclusive(path: &Path) -> Result<Lock> {
        Lock::take(path, FlockArg::LockExclusive)
    }

    pub fn shared(path: &Path) -> Result<Lock> {
        Lock::take(path, FlockArg::LockShared)
    }

    /// An exclusive lock if nobody holds one, else `None` at once.
    pub fn try_exclusive(path: &Path) -> Result<Option<Lock>> {
        match Lock::take(path, FlockArg::LockExclusiveNonblock) {
            Ok(l) => Ok(Some(l)),
            Err(StoreError::Io { source, .. })
                if source.raw_os_error() == Some(libc::EWOULDBLOCK) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn take(path: &Path, arg: FlockArg) -> Result<Lock> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(super::io_err(path))?;
        let flock = Flock::lock(file, arg).map_err(|(_, e)| lock_error(path, e))?;
        Ok(Lock {
            _flock: flock,
            path: path.into(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// flock's failure as the store's error: a filesystem without locks (ENOLCK from NFS with no
/// lock daemon, ENOSYS from Lustre without `-o flock`, EOPNOTSUPP) is told apart, as it names
/// its own fix.
fn lock_error(path: &Path, e: nix::errno::Errno) -> StoreError {
    use nix::errno::Errno;
    match e {
        Errno::ENOLCK | Errno::ENOSYS | Errno::EOPNOTSUPP => StoreError::NoLocks {
            path: path.into(),
            source: e.into(),
        },
        _ => StoreError::Io {
            path: path.into(),
            source: e.into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Diagnose;

    #[test]
    fn a_filesystem_without_locks_is_told_apart_and_names_the_fix() {
        for errno in [nix::errno::Errno::ENOLCK, nix::errno::Errno::ENOSYS] {
            let e = lock_error(Path::new("/lustre/den/locks/content.lock"), errno);
            assert_eq!(
                e.to_string(),
                "cannot lock /lustre/den/locks/content.lock: its filesystem does not support file locks"
            );
            let hint = e.hint().unwrap();
            assert!(
                hint.contains("storage.root") && hint.contains("DEN_ROOT"),
                "{hint}"
            );
        }
        let e = lock_error(Path::new("/x.lock"), nix::errno::Errno::EACCES);
        assert!(matches!(e, StoreError::Io { .. }));
    }

    #[test]
    fn exclusive_excludes_and_releases_on_drop() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("x.lock");
        let a = Lock::exclusive(&p).unwrap();
        assert!(Lock::try_exclusive(&p).unwrap().is_none());
        drop(a);
        assert!(Lock::try_exclusive(&p).unwrap().is_some());
    }

    #[test]
    fn shared_locks_coexist_but_block_exclusive() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("x.lock");
        let _a = Lock::shared(&p).unwrap();
        let _b = Lock::shared(&p).unwrap();
        assert!(Lock::try_exclusive(&p).unwrap().is_none());
    }
}
