//! A container whose image is a single SquashFS file ([`crate::image::sqsh`]): the file is
//! mounted with squashfuse and the storage driver's overlay goes on top, its writable layer in
//! the container's directory as for a store image. Nothing is unpacked and nothing is copied into
//! the store: 32 containers from one file share its pages, and the store grows only by their
//! upper directories.
//!
//! squashfuse (not the kernel's squashfs) because an unprivileged user may mount FUSE in a user
//! namespace (Linux 4.18) but not a block filesystem, and a loop device needs root. It runs
//! inside den's user namespace, so the file's uid 0 is the container's root, and inside the mount
//! namespace of the den process that holds the container (the foreground `run`, or the monitor of
//! a detached one), so the mount is that process's alone.
//!
//! Lifetime: squashfuse runs in the foreground (`-f`) as a child of that process with a parent
//! death signal (SIGKILL): a normal end unmounts it ([`FileMount::release`], after the overlay),
//! which ends it; a den killed outright takes it along, so no squashfuse outlives its container
//! (fuse-overlayfs daemonizes and is left to the end of the mount namespace instead; a FUSE
//! server, being in that namespace itself, would keep it alive forever). Its messages go to
//! `squashfuse.log` in the container's directory, not a pipe nobody reads.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::driver::{Driver, DriverError, Layout};
use crate::image::sqsh;
use crate::sys::Sys;

/// squashfuse's low-level server (same package): it keeps entries and attributes in the
/// kernel's cache for good (the image cannot change), where the high-level one asks again every
/// second and answers each request through a path lookup; a container's start reads hundreds of
/// entries.
const SQUASHFUSE: &str = "squashfuse_ll";
/// How long squashfuse may take to mount (it reads the superblock and the root inode).
const MOUNT_TIMEOUT: Duration = Duration::from_secs(10);

/// A squashfuse mount and the process serving it; [`FileMount::release`] ends both, and
/// dropping it kills the server if release was not called.
pub struct FileMount {
    at: PathBuf,
    child: Option<std::process::Child>,
}

/// Where a container's image file is mounted.
pub fn mount_point(cdir: &Path) -> PathBuf {
    cdir.join("image")
}

/// Mount `file` (checked first) at `at` with squashfuse; returns once the mount is there.
pub fn mount_file(file: &Path, at: &Path, log: &Path) -> Result<FileMount, DriverError> {
    use std::os::unix::fs::MetadataExt;
    sqsh::check(file)?;
    let io = |path: &Path, source| DriverError::Io {
        path: path.into(),
        source,
    };
    std::fs::create_dir_all(at).map_err(|e| io(at, e))?;
    let before = std::fs::metadata(at).map_err(|e| io(at, e))?.dev();
    let log_file = std::fs::File::create(log).map_err(|e| io(log, e))?;
    let mut cmd = std::process::Command::new(SQUASHFUSE);
    cmd.arg("-f")
        .arg("-o")
        .arg("allow_other")
        .arg(file)
        .arg(at)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log_file);
    crate::sys::die_with_parent(&mut cmd);
    let child = cmd.spawn().map_err(|source| sqsh::SqshError::Missing {
        program: "squashfuse",
        source,
    })?;
    let mut m = FileMount {
        at: at.into(),
        child: Some(child),
    };
    let start = Instant::now();
    loop {
        if std::fs::metadata(at).is_ok_and(|md| md.dev() != before) {
            return Ok(m);
        }
        let exited = m.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
        if exited.is_some() || start.elapsed() > MOUNT_TIMEOUT {
            m.kill();
            let said = std::fs::read_to_string(log).unwrap_or_default();
            return Err(sqsh::SqshError::Tool {
                program: "squashfuse",
                path: file.into(),
                stderr: match said.trim() {
                    "" if exited.is_none() => "it did not mount within 10 seconds".into(),
                    "" => "it exited".into(),
                    s => s.lines().last().unwrap_or(s).to_string(),
                },
            }
            .into());
        }
        // A stat of a directory costs microseconds; the mount takes a few milliseconds.
        std::thread::sleep(Duration::from_micros(300));
    }
}

impl FileMount {
    /// The mounted file's `rootfs/`, a directory in the file itself: a symlink there (to `/`,
    /// say) would be followed by the overlay's mount on the host side, so it is refused.
    pub fn rootfs(&self, file: &Path) -> Result<PathBuf, DriverError> {
        let root = self.at.join("rootfs");
        match std::fs::symlink_metadata(&root) {
            Ok(m) if m.file_type().is_dir() => Ok(root),
            _ => Err(sqsh::SqshError::NoRootfs { path: file.into() }.into()),
        }
    }

    /// Unmount, then end squashfuse: once its mount is gone it has nothing left to serve (the
    /// image is read-only, nothing to flush), so it is killed and reaped at once rather than
    /// waited for.
    pub fn release(mut self, sys: &dyn Sys) {
        if sys.umount(&self.at, false).is_err() {
            let _ = sys.umount(&self.at, true);
        }
        self.kill();
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Mount a container's root filesystem: over its image file when it has one, else over its
/// layers (`layers`, bottom first) with [`super::driver::mount`]. The file's mount, if any, is
/// released (with [`release`]) after [`super::driver::unmount`].
pub fn mount_root(
    sys: &dyn Sys,
    driver: Driver,
    store: &super::Store,
    record: &super::ContainerRecord,
    layers: &[crate::digest::Digest],
    volatile: bool,
) -> super::Result<(PathBuf, Option<FileMount>)> {
    let cdir = store.container_dir(&record.id);
    Ok(match &record.image_file {
        Some(file) => {
            let (root, m) = mount(sys, driver, file, &cdir, volatile)?;
            (root, Some(m))
        }
        None => (
            super::driver::mount(sys, driver, store, layers, &cdir, volatile)?,
            None,
        ),
    })
}

/// Release `m` if there is one (a container from layers has none).
pub fn release(m: Option<FileMount>, sys: &dyn Sys) {
    if let Some(m) = m {
        m.release(sys);
    }
}

impl Drop for FileMount {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Mount a container's root filesystem from the image file `file`: squashfuse at
/// [`mount_point`], the driver's overlay over its `rootfs/` with the writable layer in `cdir`.
/// Returns the root and the file's mount, to be released after [`super::driver::unmount`].
pub fn mount(
    sys: &dyn Sys,
    driver: Driver,
    file: &Path,
    cdir: &Path,
    volatile: bool,
) -> super::Result<(PathBuf, FileMount)> {
    let at = mount_point(cdir);
    let fm = mount_file(file, &at, &cdir.join("squashfuse.log"))?;
    let lowers = match fm.rootfs(file) {
        Ok(r) => [r],
        Err(e) => {
            fm.release(sys);
            return Err(e.into());
        }
    };
    let l = Layout::of(cdir);
    let r = match driver {
        Driver::Overlay => {
            super::driver::mount_kernel(sys, &lowers, &l.upper, &l.work, &l.merged, volatile)
        }
        Driver::FuseOverlayfs => super::driver::mount_fuse(&lowers, &l.upper, &l.work, &l.merged),
        Driver::Vfs => Err(DriverError::Mount {
            driver: "vfs",
            source: std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "an image file runs over overlay or fuse-overlayfs; vfs would copy it",
            ),
        }),
    };
    match r {
        Ok(()) => Ok((l.merged, fm)),
        Err(e) => {
            fm.release(sys);
            Err(e.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_file_is_refused_before_squashfuse_runs() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("bad.sqsh");
        std::fs::write(&f, vec![0u8; 4096]).unwrap();
        let sys = crate::sys::RecordingSys::new();
        let err = match mount(&sys, Driver::Overlay, &f, t.path(), false) {
            Err(e) => crate::error::chain(&e),
            Ok(_) => panic!("mounted a damaged file"),
        };
        assert!(err.contains("not a SquashFS image"), "{err}");
        assert!(sys.calls().is_empty());
        assert!(!mount_point(t.path()).exists());
    }
}
