//! Making one entry's node: a directory, a file, a symlink, a hard link, a fifo; device nodes
//! are skipped (a user namespace cannot create them). Then its owner, mode, times and xattrs.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{Mode, SFlag};

use super::apply::Applier;
use super::paths::{clean, dir_key, io_err, show_path, shown, symlink_target_inside};
use super::{Owners, Result, UnpackError};

/// What a tar header says about the node it makes.
pub(super) struct Node {
    pub(super) kind: tar::EntryType,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: i64,
}

impl Node {
    pub(super) fn of(header: &tar::Header) -> Result<Node> {
        let kind = header.entry_type();
        let mode = header.mode().map_err(UnpackError::Tar)? & 0o7777;
        let (uid, gid) = (
            header.uid().map_err(UnpackError::Tar)?,
            header.gid().map_err(UnpackError::Tar)?,
        );
        let mtime = header.mtime().unwrap_or(0) as i64;
        Ok(Node {
            kind,
            mode,
            uid,
            gid,
            mtime,
        })
    }
}

impl Applier<'_> {
    /// A directory: an existing one is kept (its children stay), anything else replaced. Its
    /// time is set at the end, once its children are written.
    pub(super) fn directory<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        path: PathBuf,
        parts: &[OsString],
        node: &Node,
    ) -> Result<()> {
        match std::fs::create_dir(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if !self.clear(&path, true, parts)? {
                    std::fs::create_dir(&path).map_err(|e| io_err(parts, e))?;
                }
            }
            Err(e) => return Err(io_err(parts, e)),
        }
        self.dirs.remove(&dir_key(parts));
        self.owner(&path, node.uid, node.gid, parts)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(node.mode))
            .map_err(|e| io_err(parts, e))?;
        self.xattrs(entry, &path, parts)?;
        self.dir_times.push((path, node.mtime));
        Ok(())
    }

    /// A regular file: created new (never through a symlink), its contents written, then its
    /// owner, mode and times set on the open file.
    pub(super) fn file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        path: &Path,
        parts: &[OsString],
        node: &Node,
    ) -> Result<()> {
        let open = |p: &Path| {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .mode(0o600)
                .open(p)
        };
        let mut f = self.create(path, parts, open)?;
        let written = self.contents(entry, &mut f, parts, node.kind)?;
        self.stats.size += written;
        if self.opts.owners == Owners::Keep {
            nix::unistd::fchown(
                std::os::fd::AsRawFd::as_raw_fd(&f),
                Some(uid_of(node.uid)),
                Some(gid_of(node.gid)),
            )
            .map_err(|e| self.owner_err(e, parts, node.uid, node.gid))?;
        } else if let Some(ids) = intended(node.uid, node.gid) {
            crate::fs::owner::record(&f, ids);
        }
        // After chown, which clears set-id bits.
        f.set_permissions(std::fs::Permissions::from_mode(node.mode))
            .map_err(|e| io_err(parts, e))?;
        let t = nix::sys::time::TimeSpec::new(node.mtime, 0);
        let _ = nix::sys::stat::futimens(std::os::fd::AsRawFd::as_raw_fd(&f), &t, &t);
        drop(f);
        self.xattrs(entry, path, parts)
    }

    /// Write a file entry's bytes to `f`; returns how many it holds.
    fn contents<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        f: &mut std::fs::File,
        parts: &[OsString],
        kind: tar::EntryType,
    ) -> Result<u64> {
        let mut written = 0u64;
        // A layer inflated whole: write the file's bytes from the buffer, no copy.
        let whole = self.whole.filter(|_| kind != tar::EntryType::GNUSparse);
        if let Some(buf) = whole {
            let start = entry.raw_file_position() as usize;
            let end = start + entry.size() as usize;
            let data = buf.get(start..end).ok_or_else(|| {
                UnpackError::Tar(std::io::Error::other("entry beyond the archive"))
            })?;
            f.write_all(data).map_err(|e| io_err(parts, e))?;
            written = data.len() as u64;
        } else {
            // Runs of zeros become holes, as `tar --sparse` and `cp` make them: a sparse
            // entry (or a file of zeros) declaring gigabytes in a few bytes of layer
            // must not fill the disk with them.
            let mut holes = false;
            loop {
                let n = match entry.read(&mut self.buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(UnpackError::Tar(e)),
                };
                let chunk = &self.buf[..n];
                if chunk.iter().all(|b| *b == 0) {
                    use std::io::Seek;
                    f.seek(std::io::SeekFrom::Current(n as i64))
                        .map_err(|e| io_err(parts, e))?;
                    holes = true;
                } else {
                    f.write_all(chunk).map_err(|e| io_err(parts, e))?;
                }
                written += n as u64;
            }
            if holes {
                f.set_len(written).map_err(|e| io_err(parts, e))?;
            }
        }
        Ok(written)
    }

    /// A symlink, refused when its relative target climbs above the root.
    pub(super) fn symlink<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        path: &Path,
        parts: &[OsString],
        node: &Node,
    ) -> Result<()> {
        let target = entry
            .link_name_bytes()
            .map(|c| c.into_owned())
            .unwrap_or_default();
        if !symlink_target_inside(parts, &target) {
            return Err(UnpackError::LinkEscape {
                path: show_path(parts),
                target: shown(String::from_utf8_lossy(&target).into_owned()),
            });
        }
        self.create(path, parts, |p| {
            std::os::unix::fs::symlink(OsStr::from_bytes(&target), p)
        })?;
        self.owner(path, node.uid, node.gid, parts)?;
        set_times(path, node.mtime);
        Ok(())
    }

    /// A hard link to a node the layer already made, resolved in scope like any path.
    pub(super) fn hard_link<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        path: &Path,
        parts: &[OsString],
    ) -> Result<()> {
        let target = entry
            .link_name_bytes()
            .map(|c| c.into_owned())
            .unwrap_or_default();
        let escape = || UnpackError::LinkEscape {
            path: show_path(parts),
            target: shown(String::from_utf8_lossy(&target).into_owned()),
        };
        let tparts = clean(&target).ok_or_else(escape)?;
        let (tname, tparent) = tparts.split_last().ok_or_else(escape)?;
        let tdir = self.resolve_dir(tparent)?;
        let src = tdir.join(tname);
        match std::fs::symlink_metadata(&src) {
            Err(_) => {
                return Err(UnpackError::LinkMissing {
                    path: show_path(parts),
                    target: shown(String::from_utf8_lossy(&target).into_owned()),
                });
            }
            // link(2) refuses (EPERM): say it is the layer's fault, not the store's.
            Ok(md) if md.is_dir() => {
                return Err(UnpackError::LinkToDir {
                    path: show_path(parts),
                    target: shown(String::from_utf8_lossy(&target).into_owned()),
                });
            }
            Ok(_) => {}
        }
        if src == path {
            return Ok(());
        }
        // A symlink's target was checked where the symlink was made; a second name
        // elsewhere gives a relative target another meaning, so it is checked again
        // from here (`deep/.../link -> ../../etc` hard-linked at the top climbs out).
        if let Ok(t) = std::fs::read_link(&src)
            && !symlink_target_inside(parts, t.as_os_str().as_bytes())
        {
            return Err(escape());
        }
        // link(2) does not follow a symlink at `src`: the link is to the node itself.
        self.create(path, parts, |p| std::fs::hard_link(&src, p))?;
        Ok(())
    }

    pub(super) fn fifo(&mut self, path: &Path, parts: &[OsString], node: &Node) -> Result<()> {
        self.clear(path, false, parts)?;
        nix::sys::stat::mknod(path, SFlag::S_IFIFO, Mode::from_bits_truncate(node.mode), 0)
            .map_err(|e| UnpackError::Io {
                path: show_path(parts),
                source: e.into(),
            })?;
        self.owner(path, node.uid, node.gid, parts)?;
        set_times(path, node.mtime);
        Ok(())
    }

    /// A character or block device: skipped, unless it is a 0/0 character device (already
    /// overlay's whiteout format).
    pub(super) fn device(
        &mut self,
        header: &tar::Header,
        path: &Path,
        parts: &[OsString],
        kind: tar::EntryType,
    ) -> Result<()> {
        let (major, minor) = (
            header.device_major().ok().flatten().unwrap_or(0),
            header.device_minor().ok().flatten().unwrap_or(0),
        );
        if kind == tar::EntryType::Char && major == 0 && minor == 0 {
            // Already overlay's whiteout format.
            self.clear(path, false, parts)?;
            return self.whiteout(path, parts);
        }
        tracing::debug!(path = %show_path(parts), "skipping device node: not creatable in a user namespace");
        self.stats.skipped_devices += 1;
        Ok(())
    }

    fn owner(&self, path: &Path, uid: u64, gid: u64, parts: &[OsString]) -> Result<()> {
        if self.opts.owners == Owners::Ignore {
            if let Some(ids) = intended(uid, gid) {
                crate::fs::owner::record_path(path, ids);
            }
            return Ok(());
        }
        nix::unistd::fchownat(
            None,
            path,
            Some(uid_of(uid)),
            Some(gid_of(gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| self.owner_err(e, parts, uid, gid))
    }

    fn owner_err(
        &self,
        e: nix::errno::Errno,
        parts: &[OsString],
        uid: u64,
        gid: u64,
    ) -> UnpackError {
        if e == nix::errno::Errno::EINVAL {
            UnpackError::OwnerOutOfRange {
                path: show_path(parts),
                uid,
                gid,
            }
        } else {
            UnpackError::Io {
                path: show_path(parts),
                source: e.into(),
            }
        }
    }

    fn xattrs<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        path: &Path,
        parts: &[OsString],
    ) -> Result<()> {
        let Ok(Some(exts)) = entry.pax_extensions() else {
            return Ok(());
        };
        for ext in exts.flatten() {
            let Ok(key) = ext.key() else { continue };
            let Some(name) = key.strip_prefix("SCHILY.xattr.") else {
                continue;
            };
            // trusted.* needs real root; overlay's own markers and den's record of owners
            // (from the header, above) must not come from an image.
            if !(name.starts_with("user.") || name == "security.capability")
                || name.starts_with("user.overlay.")
                || name == crate::fs::owner::OWNER_XATTR
            {
                continue;
            }
            if let Err(e) = crate::sys::lsetxattr(path, name, ext.value_bytes()) {
                // A filesystem without user xattrs, or file capabilities refused: not fatal,
                // as in docker.
                tracing::debug!(path = %show_path(parts), xattr = name, error = %e.source, "xattr not set");
            }
        }
        Ok(())
    }
}

pub(super) fn set_times(path: &Path, mtime: i64) {
    let t = nix::sys::time::TimeSpec::new(mtime, 0);
    let _ = nix::sys::stat::utimensat(
        None,
        path,
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    );
}

/// The owner to record for an entry owned by `uid`:`gid` when owners are not applied
/// (single-uid mode, [`crate::fs::owner`]): None for root's (the user's own now) and for ids
/// beyond 32 bits.
fn intended(uid: u64, gid: u64) -> Option<(u32, u32)> {
    if uid == 0 && gid == 0 {
        return None;
    }
    Some((u32::try_from(uid).ok()?, u32::try_from(gid).ok()?))
}

fn uid_of(id: u64) -> nix::unistd::Uid {
    nix::unistd::Uid::from_raw(id as u32)
}
fn gid_of(id: u64) -> nix::unistd::Gid {
    nix::unistd::Gid::from_raw(id as u32)
}
