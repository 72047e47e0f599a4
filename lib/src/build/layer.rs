//! Layers a build makes: a directory in overlay's format (a RUN step's writable layer, or a
//! COPY step's staged files) written as a tar layer, and committed to the store.
//!
//! The `tar` crate writes the headers (GNU long names and links); the walk is den's, because
//! the crate's own directory walk knows nothing of overlay whiteouts. Entries are in sorted
//! order with the files' own owners (or, in single-uid mode, the owners recorded for them:
//! [`crate::fs::owner`]), modes and times, so the same tree always gives the same
//! bytes (and diff id). Overlay's whiteouts (0/0 character devices) become `.wh.NAME`
//! entries and opaque directories (`user.overlay.opaque=y`, or fuse-overlayfs's own marker) a
//! `.wh..wh..opq` entry, as the OCI image spec's layer format says.
//!
//! The layer blob is kept uncompressed (media type `application/vnd.oci.image.layer.v1.tar`):
//! its digest is its diff id, a build spends no time compressing, and registries take it as it
//! is. Must run inside den's user namespace, where the files show their image owners.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::store::changes::{Change, ChangeKind};
use crate::store::{LayerRef, Store};

/// Media type of the layers den builds (an uncompressed OCI layer; the constant lives with the
/// other media types, in [`crate::image::manifest`]).
pub const TAR: &str = crate::image::manifest::OCI_LAYER;

/// What [`write_tar`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TarStats {
    /// Bytes of regular-file content.
    pub size: u64,
    pub entries: u64,
}

struct Walk<W: Write> {
    tar: tar::Builder<W>,
    /// First path seen for each multiply-linked inode, for hard links.
    links: HashMap<(u64, u64), String>,
    stats: TarStats,
    /// Write overlay's whiteouts and opaque markers as OCI whiteout entries (a layer), or
    /// take the tree as a plain filesystem (a container's merged root, for `export`).
    whiteouts: bool,
}

/// Write the tree under `dir` as a layer tar to `out`.
pub fn write_tar(dir: &Path, out: impl Write) -> std::io::Result<TarStats> {
    walk(dir, out, true)
}

/// Write what changed in a whole root filesystem `root` (a vfs container's copy: `changes` from
/// [`crate::store::changes::of_copy`], sorted by path) as a layer tar to `out`: `commit` of a
/// container whose driver keeps no writable layer.
pub fn write_changes_tar(
    root: &Path,
    changes: &[Change],
    out: impl Write,
) -> std::io::Result<TarStats> {
    let mut w = Walk {
        tar: tar::Builder::new(out),
        links: HashMap::new(),
        stats: TarStats::default(),
        whiteouts: false,
    };
    w.changes(root, changes)?;
    w.tar.into_inner()?.flush()?;
    Ok(w.stats)
}

/// Write a whole root filesystem (no layer below it) as a tar to `out`: `export`.
pub fn write_rootfs_tar(dir: &Path, out: impl Write) -> std::io::Result<TarStats> {
    walk(dir, out, false)
}

fn walk(dir: &Path, out: impl Write, whiteouts: bool) -> std::io::Result<TarStats> {
    let mut w = Walk {
        tar: tar::Builder::new(out),
        links: HashMap::new(),
        stats: TarStats::default(),
        whiteouts,
    };
    w.dir(dir, "")?;
    w.tar.into_inner()?.flush()?;
    Ok(w.stats)
}

/// The header of the file at `path`, whose metadata is `md`: its owner is the one recorded for
/// it in single-uid mode ([`crate::fs::owner`]), else the one it has.
fn header(path: &Path, md: &std::fs::Metadata, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut hd = tar::Header::new_gnu();
    hd.set_entry_type(kind);
    hd.set_mode(md.mode() & 0o7777);
    let recorded = match kind {
        // Symlinks cannot carry the record; a hard link's target has it.
        tar::EntryType::Symlink | tar::EntryType::Link => None,
        _ => crate::fs::owner::recorded(path),
    };
    let (uid, gid) = recorded.unwrap_or((md.uid(), md.gid()));
    hd.set_uid(uid as u64);
    hd.set_gid(gid as u64);
    hd.set_mtime(md.mtime().max(0) as u64);
    hd.set_size(size);
    hd
}

impl<W: Write> Walk<W> {
    fn empty(
        &mut self,
        path: &Path,
        rel: &str,
        md: &std::fs::Metadata,
        kind: tar::EntryType,
    ) -> std::io::Result<()> {
        let mut hd = header(path, md, kind, 0);
        self.stats.entries += 1;
        self.tar.append_data(&mut hd, rel, std::io::empty())
    }

    fn link(
        &mut self,
        path: &Path,
        rel: &str,
        md: &std::fs::Metadata,
        kind: tar::EntryType,
        target: &Path,
    ) -> std::io::Result<()> {
        let mut hd = header(path, md, kind, 0);
        self.stats.entries += 1;
        self.tar.append_link(&mut hd, rel, target)
    }

    fn dir(&mut self, dir: &Path, prefix: &str) -> std::io::Result<()> {
        let mut names: Vec<_> = std::fs::read_dir(dir)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort();
        if self.whiteouts && !prefix.is_empty() && crate::unpack::is_opaque(dir) {
            let md = std::fs::symlink_metadata(dir)?;
            self.empty(
                dir,
                &format!("{prefix}.wh..wh..opq"),
                &md,
                tar::EntryType::Regular,
            )?;
        }
        for name in names {
            let name = name.to_string_lossy().into_owned();
            let path = dir.join(&name);
            let rel = format!("{prefix}{name}");
            let md = std::fs::symlink_metadata(&path)?;
            if self.whiteouts && crate::unpack::is_whiteout(&md) {
                self.empty(
                    &path,
                    &format!("{prefix}.wh.{name}"),
                    &md,
                    tar::EntryType::Regular,
                )?;
            } else {
                self.entry(&path, &rel, &md)?;
                if md.is_dir() {
                    self.dir(&path, &format!("{rel}/"))?;
                }
            }
        }
        Ok(())
    }

    /// One entry (a directory's own header only, not what is in it).
    fn entry(&mut self, path: &Path, rel: &str, md: &std::fs::Metadata) -> std::io::Result<()> {
        let ft = md.file_type();
        if ft.is_dir() {
            self.empty(path, &format!("{rel}/"), md, tar::EntryType::Directory)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(path)?;
            self.link(path, rel, md, tar::EntryType::Symlink, &target)?;
        } else if ft.is_file() {
            if md.nlink() > 1 {
                let key = (md.dev(), md.ino());
                if let Some(first) = self.links.get(&key).cloned() {
                    return self.link(path, rel, md, tar::EntryType::Link, Path::new(&first));
                }
                self.links.insert(key, rel.to_string());
            }
            let mut hd = header(path, md, tar::EntryType::Regular, md.len());
            let f = std::fs::File::open(path)?;
            // A file that changes size meanwhile fails the append (short read).
            self.tar.append_data(&mut hd, rel, f)?;
            self.stats.size += md.len();
            self.stats.entries += 1;
        } else if ft.is_fifo() {
            self.empty(path, rel, md, tar::EntryType::Fifo)?;
        } else if ft.is_char_device() || ft.is_block_device() {
            let kind = if ft.is_char_device() {
                tar::EntryType::Char
            } else {
                tar::EntryType::Block
            };
            let mut hd = header(path, md, kind, 0);
            let rdev = md.rdev();
            hd.set_device_major(nix::sys::stat::major(rdev) as u32)?;
            hd.set_device_minor(nix::sys::stat::minor(rdev) as u32)?;
            self.stats.entries += 1;
            self.tar.append_data(&mut hd, rel, std::io::empty())?;
        }
        // Sockets are not archived, as tar does not.
        Ok(())
    }

    /// `changes` of the tree under `root` as layer entries: what was added or changed as it is
    /// now (a directory's header only; what is in it that changed has its own line), and a
    /// `.wh.NAME` entry for what was deleted.
    fn changes(&mut self, root: &Path, changes: &[Change]) -> std::io::Result<()> {
        for c in changes {
            let rel = c.path.trim_start_matches('/');
            if rel.is_empty() {
                continue;
            }
            if c.kind == ChangeKind::Deleted {
                let (dir, name) = rel.rsplit_once('/').map_or(("", rel), |(d, n)| (d, n));
                let prefix = if dir.is_empty() {
                    String::new()
                } else {
                    format!("{dir}/")
                };
                let mut hd = tar::Header::new_gnu();
                hd.set_entry_type(tar::EntryType::Regular);
                hd.set_mode(0o600);
                hd.set_size(0);
                self.stats.entries += 1;
                self.tar
                    .append_data(&mut hd, format!("{prefix}.wh.{name}"), std::io::empty())?;
                continue;
            }
            let path = root.join(rel);
            let md = std::fs::symlink_metadata(&path)?;
            self.entry(&path, rel, &md)?;
        }
        Ok(())
    }
}

/// Archive `dir` into a blob in the store; returns the layer's reference and stats. The
/// caller then commits the unpacked form with [`Store::commit_layer`].
pub fn store_tar(store: &Store, dir: &Path) -> super::Result<(LayerRef, TarStats)> {
    store_tar_by(store, dir, |out| write_tar(dir, out))
}

/// Archive what changed in `root` into a blob in the store, as [`store_tar`] does for a tree.
pub fn store_changes_tar(
    store: &Store,
    root: &Path,
    changes: &[Change],
) -> super::Result<(LayerRef, TarStats)> {
    store_tar_by(store, root, |out| write_changes_tar(root, changes, out))
}

fn store_tar_by(
    store: &Store,
    dir: &Path,
    write: impl FnOnce(BlobSink<'_>) -> std::io::Result<TarStats>,
) -> super::Result<(LayerRef, TarStats)> {
    let io = |e: std::io::Error| crate::store::StoreError::Io {
        path: dir.to_path_buf(),
        source: e,
    };
    let mut writer = store.blob_writer()?;
    let stats = write(BlobSink(&mut writer)).map_err(io)?;
    let size = writer.len();
    // The blob's bytes reach the disk before it takes its name: a crash must not leave a
    // named blob whose content was lost, which every later build and push would trust.
    crate::fs::sync_fs(store.root()).map_err(crate::store::io_err(store.root()))?;
    let digest = writer.commit_new(store)?;
    Ok((
        LayerRef {
            diff_id: digest.clone(),
            blob: digest,
            media_type: TAR.into(),
            size,
        },
        stats,
    ))
}

struct BlobSink<'a>(&'a mut crate::store::BlobWriter);

impl Write for BlobSink<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf).map_err(std::io::Error::other)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trees_become_sorted_tars_with_whiteouts_as_wh_entries() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        std::fs::create_dir_all(d.join("b/c")).unwrap();
        std::fs::write(d.join("b/c/f"), "hello").unwrap();
        std::fs::write(d.join("a"), "x").unwrap();
        std::os::unix::fs::symlink("a", d.join("l")).unwrap();
        std::fs::hard_link(d.join("a"), d.join("h")).unwrap();
        let long = "n".repeat(150);
        std::fs::write(d.join(&long), "").unwrap();
        let opaque = crate::sys::lsetxattr(&d.join("b"), crate::unpack::OPAQUE_XATTR, b"y").is_ok();
        let mut out = Vec::new();
        let stats = write_tar(d, &mut out).unwrap();
        let mut again = Vec::new();
        write_tar(d, &mut again).unwrap();
        assert_eq!(out, again, "the same tree gives the same bytes");
        let mut ar = tar::Archive::new(&out[..]);
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        let mut want = vec!["a", "b/"];
        if opaque {
            want.push("b/.wh..wh..opq");
        }
        want.extend(["b/c/", "b/c/f", "h", "l", long.as_str()]);
        assert_eq!(names, want);
        assert_eq!(stats.size, 6);
        assert_eq!(stats.entries as usize, want.len());
    }

    /// A tar entry with owners, after an optional PAX header of `xattrs`.
    fn entry(
        b: &mut tar::Builder<Vec<u8>>,
        path: &str,
        kind: tar::EntryType,
        ids: (u64, u64),
        xattrs: &[(&str, &str)],
    ) {
        if !xattrs.is_empty() {
            let mut pax = String::new();
            for (k, v) in xattrs {
                let rec = format!(" SCHILY.xattr.{k}={v}\n");
                // The length counts its own digits.
                let mut n = rec.len() + 1;
                while n.to_string().len() + rec.len() != n {
                    n += 1;
                }
                pax.push_str(&format!("{n}{rec}"));
            }
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::XHeader);
            h.set_size(pax.len() as u64);
            h.set_cksum();
            b.append(&h, pax.as_bytes()).unwrap();
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
        h.set_uid(ids.0);
        h.set_gid(ids.1);
        h.set_size(0);
        if kind.is_symlink() {
            b.append_link(&mut h, path, "www").unwrap();
        } else {
            b.append_data(&mut h, path, std::io::empty()).unwrap();
        }
    }

    #[test]
    fn owners_single_uid_mode_could_not_give_come_back_in_the_layer() {
        let mut b = tar::Builder::new(Vec::new());
        entry(&mut b, "srv/", tar::EntryType::Directory, (33, 33), &[]);
        // An image's own record is not taken: the header says who owns the file.
        let spoof = [(crate::fs::owner::OWNER_XATTR, "5:5")];
        entry(
            &mut b,
            "srv/www",
            tar::EntryType::Regular,
            (1000, 1001),
            &spoof,
        );
        entry(&mut b, "srv/l", tar::EntryType::Symlink, (7, 7), &[]);
        entry(&mut b, "srv/root", tar::EntryType::Regular, (0, 0), &[]);
        let bytes = b.into_inner().unwrap();
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("layer");
        std::fs::create_dir(&d).unwrap();
        // Single-uid mode's unpack: owners left as they are, and recorded.
        let opts = crate::unpack::Options {
            owners: crate::unpack::Owners::Ignore,
        };
        crate::unpack::unpack_blob(std::io::Cursor::new(bytes), &d, opts, None).unwrap();
        let mut out = Vec::new();
        write_tar(&d, &mut out).unwrap();
        let mut ar = tar::Archive::new(&out[..]);
        let owners: HashMap<String, (u64, u64)> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let name = e.path().unwrap().to_string_lossy().into_owned();
                (name, (e.header().uid().unwrap(), e.header().gid().unwrap()))
            })
            .collect();
        let own = |p: &str| {
            let md = std::fs::symlink_metadata(d.join(p)).unwrap();
            (md.uid() as u64, md.gid() as u64)
        };
        // The test's directory is on a filesystem with user xattrs (ext4, tmpfs from 6.6).
        assert_eq!(owners["srv/"], (33, 33));
        assert_eq!(owners["srv/www"], (1000, 1001));
        // Neither a symlink nor root's own file carries a record.
        assert_eq!(owners["srv/l"], own("srv/l"));
        assert_eq!(owners["srv/root"], own("srv/root"));
        assert_eq!(crate::fs::owner::recorded(&d.join("srv/root")), None);
    }

    #[test]
    fn a_copys_changes_become_entries_and_whiteouts() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        std::fs::create_dir_all(d.join("etc/new")).unwrap();
        std::fs::write(d.join("etc/new/f"), "hello").unwrap();
        std::fs::write(d.join("etc/unchanged"), "same").unwrap();
        std::os::unix::fs::symlink("new/f", d.join("etc/l")).unwrap();
        let change = |path: &str, kind| Change {
            path: path.into(),
            kind,
        };
        let changes = [
            change("/bin", ChangeKind::Deleted),
            change("/etc", ChangeKind::Changed),
            change("/etc/l", ChangeKind::Added),
            change("/etc/new", ChangeKind::Added),
            change("/etc/new/f", ChangeKind::Added),
            change("/etc/old", ChangeKind::Deleted),
        ];
        let mut out = Vec::new();
        let stats = write_changes_tar(d, &changes, &mut out).unwrap();
        let mut ar = tar::Archive::new(&out[..]);
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                ".wh.bin",
                "etc/",
                "etc/l",
                "etc/new/",
                "etc/new/f",
                "etc/.wh.old"
            ],
            "what is unchanged stays out"
        );
        assert_eq!(stats.size, 5);
        // A changed path that vanished meanwhile is an error, not a silent gap.
        assert!(write_changes_tar(d, &[change("/gone", ChangeKind::Added)], Vec::new()).is_err());
    }
}
