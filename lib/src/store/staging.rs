//! Staging under `tmp/` and what dead den processes leave: a staging entry is named for its
//! process and flock'ed while it lives, so a sweep can tell one in use from one a killed den
//! left; temporary files of atomic writes are told apart by name the same way.

use std::path::{Path, PathBuf};

use super::{Lock, Result, Store, StoreError, io_err};

impl Store {
    /// A new private staging directory under `tmp/`, named so that a later sweep can tell
    /// whether its owner still runs.
    pub fn staging_dir(&self, kind: &str) -> Result<Staging> {
        let path = self.root.join("tmp").join(format!(
            "{kind}-{}-{}",
            std::process::id(),
            crate::fs::random_hex(6)
        ));
        std::fs::create_dir(&path).map_err(io_err(&path))?;
        let lock = hold(&path)?;
        Ok(Staging { path, _lock: lock })
    }

    /// Remove what den processes that no longer run left behind (a killed pull, build or rm):
    /// stale entries under `tmp/` (see `stale_staging`) and the temporary files of atomic
    /// writes whose writer is gone (see `stale_temp`). Returns how many it removed.
    pub fn sweep_tmp(&self) -> usize {
        let mut removed = 0;
        let tmp = self.root.join("tmp");
        if let Ok(rd) = std::fs::read_dir(&tmp) {
            for e in rd.flatten() {
                if let Some(_stale) = stale_staging(&e.path()) {
                    tracing::debug!(path = %e.path().display(), "removing stale staging entry");
                    if crate::fs::remove_tree(&e.path()).is_ok() {
                        removed += 1;
                    }
                }
            }
        }
        for dir in self.record_dirs() {
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in rd.flatten() {
                if stale_temp(&e.file_name().to_string_lossy())
                    && std::fs::remove_file(e.path()).is_ok()
                {
                    tracing::debug!(path = %e.path().display(), "removing a dead writer's temporary file");
                    removed += 1;
                }
            }
        }
        removed
    }

    /// What a writer does before it adds content (pull, load, import, build, rm): sweep what
    /// dead den processes left. When it found something, a den was killed, and a den killed
    /// while adding or removing content can also leave content that no record names (a pull
    /// between moving its content in and writing its record, a build between committing a layer
    /// and caching it): then garbage is collected too, if no other den uses the store right now
    /// (never waiting: the next writer or `den system check --repair` does it otherwise).
    pub fn sweep(&self) {
        if self.sweep_tmp() == 0 {
            return;
        }
        if let Ok(Some(lock)) = Lock::try_exclusive(&self.root.join("locks/content.lock")) {
            match self.collect_garbage_locked(&lock) {
                Ok(c) => tracing::debug!(
                    layers = c.layers.len(),
                    blobs = c.blobs.len(),
                    "collected what a killed den left"
                ),
                Err(e) => tracing::debug!(error = %e, "could not collect what a killed den left"),
            }
        }
    }

    /// Directories where records are written atomically (and a killed writer can leave its
    /// temporary file): the root, `blobs/sha256`, the build cache's steps, each container's.
    fn record_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = vec![
            self.root.clone(),
            self.blobs_dir(),
            self.root.join("build-cache/steps"),
        ];
        if let Ok(rd) = std::fs::read_dir(self.root.join("containers")) {
            dirs.extend(rd.flatten().map(|e| e.path()));
        }
        dirs
    }
}

/// A staging directory under `tmp/`, locked for as long as this value lives (see
/// [`Store::sweep_tmp`]), and removed when it goes (whatever is still in it: what was staged
/// for the store has been moved into place by then).
#[derive(Debug)]
pub struct Staging {
    pub path: PathBuf,
    _lock: nix::fcntl::Flock<std::fs::File>,
}

impl Drop for Staging {
    fn drop(&mut self) {
        // Removed while still locked: the lock goes with the fields, after this.
        let _ = crate::fs::remove_tree(&self.path);
    }
}

/// The process that made a staging entry or a temporary file, from its name: staging entries
/// are `KIND-PID-RANDOM` ([`Store::staging_dir`], [`Store::blob_writer`], the asides of removals),
/// temporary files `.NAME.tmp-PID-RANDOM` ([`crate::fs::write_atomic`]).
fn owner_pid(name: &str) -> Option<i32> {
    let mut parts = name.rsplitn(3, '-');
    let random = parts.next()?;
    let pid = parts.next()?;
    parts.next()?;
    if random.is_empty() || !random.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    pid.parse().ok().filter(|p| *p > 0)
}

/// Whether the process `pid` runs (a zombie does not: its files, and so its flocks, are closed).
pub(crate) fn running(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next());
    !matches!(state, Some("Z" | "X") | None)
}

/// A staging entry under `tmp/` whose owner is gone, locked for its removal; `None` while it is
/// in use. Two facts tell: the process named in the entry's name no longer runs (this covers the
/// instant between making an entry and locking it, and the unlocked asides a removal deletes),
/// and nobody holds the entry's flock (the kernel drops it when its holder dies, even before the
/// holder is reaped). Where the name holds no pid, the flock alone decides.
pub(crate) fn stale_staging(path: &Path) -> Option<nix::fcntl::Flock<std::fs::File>> {
    let name = path.file_name()?.to_string_lossy();
    if owner_pid(&name).is_some_and(running) {
        return None;
    }
    let f = std::fs::File::open(path).ok()?;
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock).ok()
}

/// Whether `name` is a temporary file of [`crate::fs::write_atomic`] whose writer no longer runs.
pub(crate) fn stale_temp(name: &str) -> bool {
    temp_file(name) && !owner_pid(name).is_some_and(running)
}

/// Whether `name` is a temporary file of [`crate::fs::write_atomic`] (`.NAME.tmp-PID-RANDOM`).
pub(crate) fn temp_file(name: &str) -> bool {
    name.starts_with('.')
        && owner_pid(name).is_some()
        && name
            .rsplitn(3, '-')
            .nth(2)
            .is_some_and(|s| s.ends_with(".tmp"))
}

/// An exclusive flock on `path` (a file or a directory), held by the returned value.
pub(super) fn hold(path: &Path) -> Result<nix::fcntl::Flock<std::fs::File>> {
    let f = std::fs::File::open(path).map_err(io_err(path))?;
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(|(_, e)| {
        StoreError::Io {
            path: path.into(),
            source: e.into(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_removes_dead_owners_only() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        let mine = s.staging_dir("pull").unwrap();
        let dead = t.path().join("tmp/pull-999999999-abc");
        std::fs::create_dir(&dead).unwrap();
        let writer = s.blob_writer().unwrap();
        s.sweep_tmp();
        assert!(mine.path.exists(), "held entries stay");
        assert!(!dead.exists(), "unheld entries go");
        assert_eq!(std::fs::read_dir(t.path().join("tmp")).unwrap().count(), 2);
        writer.abandon();
        // A staging directory goes with its value.
        let path = mine.path.clone();
        drop(mine);
        assert!(!path.exists());
        // Unlocked but named for a process that runs (an entry an instant before its lock, or
        // a removal's aside): it stays until that process is gone.
        let aside = t.path().join(format!("tmp/rm-{}-abcd", std::process::id()));
        std::fs::create_dir(&aside).unwrap();
        assert_eq!(s.sweep_tmp(), 0);
        assert!(aside.exists());
        std::fs::rename(&aside, t.path().join("tmp/layer-999999999-abcd")).unwrap();
        std::fs::write(t.path().join(".images.json.tmp-999999999-abcd"), b"{").unwrap();
        std::fs::write(t.path().join(".images.json.tmp-1-abcd"), b"{").unwrap();
        assert_eq!(s.sweep_tmp(), 2);
        assert_eq!(std::fs::read_dir(t.path().join("tmp")).unwrap().count(), 0);
        assert!(
            t.path().join(".images.json.tmp-1-abcd").exists(),
            "a writer that runs keeps its file"
        );
    }

    #[test]
    fn names_of_staging_entries_and_temporary_files() {
        assert_eq!(owner_pid("layer-1234-abcdef"), Some(1234));
        assert_eq!(owner_pid("rm-cache-1234-abcdef"), Some(1234));
        assert_eq!(owner_pid(".images.json.tmp-77-ab12"), Some(77));
        assert_eq!(owner_pid("rm-cache-abcdef"), None);
        assert_eq!(owner_pid("x-y-zz"), None);
        assert!(temp_file(".state.json.tmp-77-ab12"));
        assert!(!temp_file("state.json"));
        assert!(!temp_file(".hidden-77-ab12"));
        assert!(running(std::process::id() as i32));
        assert!(!running(999_999_999));
    }
}
