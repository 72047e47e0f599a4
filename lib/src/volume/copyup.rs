//! docker's copy-up: a new volume seeded with the image's content at its mount point, over the
//! shared tree copy ([`crate::fs::walk`] into a [`crate::fs::Writer`]).
//!
//! The image directory is an image's files, so it is read like any hostile tree: through
//! descriptors, symlinks never followed. The volume's staging directory is den's own.

use std::fs;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::{VolumeError, io_err, is_not_found};

/// docker's copy-up: seeds an empty volume with the content of the image directory it is first
/// mounted over. `src` is that directory's host path in the container's rootfs; `data_dir` the
/// volume's `_data`.
///
/// Nothing happens unless `data_dir` is empty and `src` is a directory (a missing `src`, or a
/// symlink, is left alone). As in docker, the volume takes `src`'s owner and mode even when `src`
/// is empty (`RUN mkdir /data && chown app /data` + `VOLUME /data` gives a volume `app` owns).
/// Content keeps modes, times, owners (best effort: ids den cannot give are left as they are),
/// symlinks and hard links within `src`. Sockets, FIFOs and device nodes are skipped; extended
/// attributes are not copied.
///
/// The copy is built in a sibling `.copyup-<random>` directory and renamed over the empty
/// `data_dir`, so a copy cut short is never seen as the volume's content, and when two dens race
/// the first rename wins and the other copy is dropped. When `data_dir` is a mount point the copy
/// is made in place instead.
pub fn copy_up(src: &Path, data_dir: &Path) -> Result<(), VolumeError> {
    let src_meta = match fs::symlink_metadata(src) {
        Ok(m) => m,
        Err(e) if is_not_found(&e) => return Ok(()),
        Err(e) => return Err(io_err(src)(e)),
    };
    if !src_meta.is_dir() || !dir_is_empty(data_dir)? {
        return Ok(());
    }
    if dir_is_empty(src)? {
        // Only the owner, mode and times.
        return copy_tree(src, data_dir);
    }
    let Some(parent) = data_dir.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return copy_tree(src, data_dir);
    };
    let staging = parent.join(format!(".copyup-{}", crate::fs::random_hex(6)));
    {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&staging)
            .map_err(io_err(&staging))?;
    }
    if let Err(e) = copy_tree(src, &staging) {
        let _ = crate::fs::remove_tree(&staging);
        return Err(e);
    }
    match fs::rename(&staging, data_dir) {
        Ok(()) => {
            crate::fs::sync_dir(parent);
            Ok(())
        }
        Err(e) => {
            let _ = crate::fs::remove_tree(&staging);
            match e.raw_os_error() {
                // Another den filled the volume first.
                Some(libc::ENOTEMPTY) | Some(libc::EEXIST) => Ok(()),
                // A mount point cannot be replaced.
                Some(libc::EBUSY) | Some(libc::EXDEV) => copy_tree(src, data_dir),
                _ => Err(io_err(data_dir)(e)),
            }
        }
    }
}

fn dir_is_empty(dir: &Path) -> Result<bool, VolumeError> {
    let mut entries = fs::read_dir(dir).map_err(io_err(dir))?;
    Ok(entries.next().is_none())
}

/// Copy the content of the directory `src` into the existing directory `dst`, and give `dst`
/// `src`'s owner, mode and times: modes, times, owners (ids den cannot give are left as they
/// are), symlinks (as symlinks) and hard links kept; sockets, FIFOs and device nodes skipped.
fn copy_tree(src: &Path, dst: &Path) -> Result<(), VolumeError> {
    let vol = |e: crate::fs::TreeError| {
        let (path, source) = e.into_io();
        VolumeError::Io { path, source }
    };
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW;
    let top = crate::sys::open_at(None, src, flags, Mode::empty()).map_err(io_err(src))?;
    let mut w = crate::fs::Writer::new(
        crate::fs::HostDir(dst.to_path_buf()),
        crate::fs::Owners::Keep,
        crate::fs::Clash::Refuse,
    );
    let top = crate::fs::Top::Dir(top);
    let base = Some(PathBuf::new());
    let opts = crate::fs::Walk::default();
    crate::fs::walk(top, base, src, opts, &mut Default::default(), &mut w).map_err(vol)?;
    w.finish().map_err(vol)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use crate::volume::Volumes;

    #[test]
    fn copy_up_copies_content_modes_links() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("rootfs/var/lib/app");
        fs::create_dir_all(src.join("sub/deeper")).unwrap();
        fs::create_dir(src.join("empty")).unwrap();
        fs::write(src.join("conf"), "setting=1\n").unwrap();
        fs::set_permissions(src.join("conf"), fs::Permissions::from_mode(0o640)).unwrap();
        fs::write(src.join("sub/deeper/run.sh"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(
            src.join("sub/deeper/run.sh"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        fs::hard_link(src.join("conf"), src.join("sub/conf-link")).unwrap();
        std::os::unix::fs::symlink("../conf", src.join("sub/rel")).unwrap();
        std::os::unix::fs::symlink("/etc/app/absent", src.join("dangling")).unwrap();
        fs::set_permissions(src.join("sub"), fs::Permissions::from_mode(0o750)).unwrap();
        fs::set_permissions(&src, fs::Permissions::from_mode(0o711)).unwrap();
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
        fs::File::options()
            .write(true)
            .open(src.join("conf"))
            .unwrap()
            .set_modified(old)
            .unwrap();

        let vols = Volumes::new(&tmp.path().join("volumes"));
        vols.create(Some("appdata"), BTreeMap::new()).unwrap();
        let data = vols.data_dir("appdata");
        copy_up(&src, &data).unwrap();

        assert_eq!(
            fs::read_to_string(data.join("conf")).unwrap(),
            "setting=1\n"
        );
        let mode = |p: &Path| fs::symlink_metadata(p).unwrap().mode() & 0o7777;
        assert_eq!(mode(&data.join("conf")), 0o640);
        assert_eq!(mode(&data.join("sub")), 0o750);
        assert_eq!(mode(&data), 0o711);
        assert_eq!(mode(&data.join("sub/deeper/run.sh")), 0o755);
        assert!(data.join("empty").is_dir());
        assert_eq!(
            fs::read_link(data.join("sub/rel")).unwrap(),
            Path::new("../conf")
        );
        assert_eq!(
            fs::read_link(data.join("dangling")).unwrap(),
            Path::new("/etc/app/absent")
        );
        let ino = |p: &Path| fs::metadata(p).unwrap().ino();
        assert_eq!(ino(&data.join("conf")), ino(&data.join("sub/conf-link")));
        assert_ne!(ino(&data.join("conf")), ino(&src.join("conf")));
        assert_eq!(
            fs::metadata(data.join("conf")).unwrap().modified().unwrap(),
            old
        );
        let me = fs::metadata(&src).unwrap();
        assert_eq!(fs::metadata(&data).unwrap().uid(), me.uid());
        // No staging directory left, and the volume is still listed.
        let mut entries: Vec<_> = fs::read_dir(data.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        entries.sort();
        assert_eq!(entries, vec!["_data", "volume.json"]);
        assert_eq!(vols.list().unwrap().len(), 1);
    }

    #[test]
    fn copy_up_leaves_non_empty_volumes_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        fs::create_dir(&src).unwrap();
        fs::write(src.join("image-file"), "x").unwrap();
        let data = tmp.path().join("vol/_data");
        fs::create_dir_all(&data).unwrap();
        fs::write(data.join("mine"), "y").unwrap();
        copy_up(&src, &data).unwrap();
        assert!(!data.join("image-file").exists());
        assert_eq!(fs::read_dir(&data).unwrap().count(), 1);
    }

    #[test]
    fn copy_up_missing_or_empty_source() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("vol/_data");
        fs::create_dir_all(&data).unwrap();
        copy_up(&tmp.path().join("absent"), &data).unwrap();
        assert_eq!(fs::read_dir(&data).unwrap().count(), 0);
        // A file, not a directory, in the image: nothing.
        fs::write(tmp.path().join("file"), "x").unwrap();
        copy_up(&tmp.path().join("file"), &data).unwrap();
        assert_eq!(fs::read_dir(&data).unwrap().count(), 0);
        // An empty directory still gives the volume its mode.
        let empty = tmp.path().join("empty");
        fs::create_dir(&empty).unwrap();
        fs::set_permissions(&empty, fs::Permissions::from_mode(0o700)).unwrap();
        copy_up(&empty, &data).unwrap();
        assert_eq!(fs::metadata(&data).unwrap().mode() & 0o7777, 0o700);
        assert_eq!(fs::read_dir(&data).unwrap().count(), 0);
    }

    #[test]
    fn copy_up_concurrent_gives_one_copy() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        fs::create_dir_all(src.join("d")).unwrap();
        for i in 0..50 {
            fs::write(src.join(format!("d/f{i}")), format!("{i}")).unwrap();
        }
        let data = tmp.path().join("vol/_data");
        fs::create_dir_all(&data).unwrap();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (src, data, barrier) = (src.clone(), data.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    copy_up(&src, &data).unwrap();
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(fs::read_dir(data.join("d")).unwrap().count(), 50);
        assert_eq!(fs::read_dir(tmp.path().join("vol")).unwrap().count(), 1);
    }
}
