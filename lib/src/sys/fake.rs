//! [`RecordingSys`]: a fake kernel for unit tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::sched::CloneFlags;

use super::{Call, Mount, Result, Sys, SysError};

/// A fake kernel that records every call and fails the ones it is told to. Kernel interface
/// files read what a test put there with [`RecordingSys::set_file`] (a write replaces the
/// contents, as cgroupfs's `cgroup.freeze` reads back what was written); paths given to
/// [`RecordingSys::allow_write`] are the writable ones; [`RecordingSys::mount_fs`] says which
/// filesystem (statfs magic) holds a directory and everything below it.
#[derive(Debug, Default)]
pub struct RecordingSys {
    calls: Mutex<Vec<Call>>,
    failures: Mutex<Vec<(Call, nix::errno::Errno)>>,
    files: Mutex<BTreeMap<PathBuf, String>>,
    writable: Mutex<BTreeSet<PathBuf>>,
    filesystems: Mutex<BTreeMap<PathBuf, u32>>,
}

impl RecordingSys {
    pub fn new() -> Self {
        Self::default()
    }
    /// Make the first call equal to `call` fail with `errno` (once).
    pub fn fail_on(&self, call: Call, errno: nix::errno::Errno) {
        self.failures.lock().expect("fake lock").push((call, errno));
    }
    /// Give the kernel interface file `path` these contents.
    pub fn set_file(&self, path: impl Into<PathBuf>, text: &str) {
        self.files
            .lock()
            .expect("fake lock")
            .insert(path.into(), text.into());
    }
    /// What `path` reads now.
    pub fn file(&self, path: &Path) -> Option<String> {
        self.files.lock().expect("fake lock").get(path).cloned()
    }
    /// Let this process write `path` and the files in it (a delegated cgroup directory).
    pub fn allow_write(&self, path: impl Into<PathBuf>) {
        self.writable.lock().expect("fake lock").insert(path.into());
    }
    /// Put a filesystem with statfs magic `magic` at `path`: statfs of `path` and of every path
    /// below it (up to a deeper one given here) answers `magic`.
    pub fn mount_fs(&self, path: impl Into<PathBuf>, magic: u32) {
        self.filesystems
            .lock()
            .expect("fake lock")
            .insert(path.into(), magic);
    }
    /// Every call made so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("fake lock").clone()
    }
    fn record(&self, call: Call) -> Result<()> {
        self.calls.lock().expect("fake lock").push(call.clone());
        let mut failures = self.failures.lock().expect("fake lock");
        if let Some(i) = failures.iter().position(|(c, _)| *c == call) {
            let (_, errno) = failures.remove(i);
            return Err(SysError::new(format!("{call:?}"), errno));
        }
        Ok(())
    }
}

impl Sys for RecordingSys {
    fn unshare(&self, flags: CloneFlags) -> Result<()> {
        self.record(Call::Unshare(flags))
    }
    fn mount(&self, m: &Mount) -> Result<()> {
        self.record(Call::Mount(m.clone()))
    }
    fn umount(&self, target: &Path, detach: bool) -> Result<()> {
        self.record(Call::Umount {
            target: target.into(),
            detach,
        })
    }
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<()> {
        self.record(Call::PivotRoot {
            new_root: new_root.into(),
            put_old: put_old.into(),
        })
    }
    fn readonly_recursive(&self, path: &Path) -> Result<()> {
        self.record(Call::ReadonlyRecursive(path.into()))
    }
    fn chdir(&self, path: &Path) -> Result<()> {
        self.record(Call::Chdir(path.into()))
    }
    fn mkdir(&self, path: &Path) -> Result<()> {
        self.record(Call::Mkdir(path.into()))?;
        // As cgroupfs does, a new directory's files belong to (are writable by) its maker.
        self.allow_write(path);
        Ok(())
    }
    fn rmdir(&self, path: &Path) -> Result<()> {
        self.record(Call::Rmdir(path.into()))
    }
    fn symlink(&self, target: &Path, link: &Path) -> Result<()> {
        self.record(Call::Symlink {
            target: target.into(),
            link: link.into(),
        })
    }
    fn become_root(&self) -> Result<()> {
        self.record(Call::BecomeRoot)
    }
    fn read_text(&self, path: &Path) -> Result<String> {
        self.file(path).ok_or_else(|| {
            SysError::new(
                format!("read {}", path.display()),
                nix::errno::Errno::ENOENT,
            )
        })
    }
    fn write_text(&self, path: &Path, data: &str) -> Result<()> {
        self.record(Call::Write {
            path: path.into(),
            data: data.into(),
        })?;
        if !self.writable(path) {
            return Err(SysError::new(
                format!("write {}", path.display()),
                nix::errno::Errno::EACCES,
            ));
        }
        self.set_file(path, data);
        Ok(())
    }
    fn writable(&self, path: &Path) -> bool {
        let w = self.writable.lock().expect("fake lock");
        w.contains(path) || path.parent().is_some_and(|d| w.contains(d))
    }
    fn open_dir(&self, path: &Path) -> Result<std::os::fd::OwnedFd> {
        self.record(Call::OpenDir(path.into()))?;
        // Any real descriptor does: the fake's files are reached by the paths built on it.
        std::fs::File::open("/")
            .map(std::os::fd::OwnedFd::from)
            .map_err(|e| SysError::io("open /", e))
    }
    fn statfs(&self, path: &Path) -> Result<u32> {
        let fs = self.filesystems.lock().expect("fake lock");
        path.ancestors()
            .find_map(|a| fs.get(a).copied())
            .ok_or_else(|| {
                SysError::new(
                    format!("statfs {}", path.display()),
                    nix::errno::Errno::ENOENT,
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recording_sys_records_in_order_and_fails_on_request() {
        let sys = RecordingSys::new();
        sys.fail_on(Call::Chdir("/b".into()), nix::errno::Errno::ENOENT);
        sys.mkdir(Path::new("/a")).unwrap();
        let err = sys.chdir(Path::new("/b")).unwrap_err();
        assert_eq!(err.errno(), Some(libc::ENOENT));
        sys.chdir(Path::new("/b")).unwrap(); // a failure fires once
        assert_eq!(
            sys.calls(),
            vec![
                Call::Mkdir("/a".into()),
                Call::Chdir("/b".into()),
                Call::Chdir("/b".into())
            ]
        );
    }

    #[test]
    fn statfs_answers_the_deepest_filesystem_given() {
        let sys = RecordingSys::new();
        sys.mount_fs("/", 0xEF53);
        sys.mount_fs("/home", 0x6969);
        assert_eq!(sys.statfs(Path::new("/home/u/.local")).unwrap(), 0x6969);
        assert_eq!(sys.statfs(Path::new("/tmp/x")).unwrap(), 0xEF53);
        assert_eq!(sys.statfs(Path::new("/home")).unwrap(), 0x6969);
        assert!(RecordingSys::new().statfs(Path::new("/x")).is_err());
    }
}
