//! Which filesystem holds a path ([`FsKind`]), from statfs(2)'s magic number, and what that
//! means for den's store: on a cluster, home directories are on NFS and data on a parallel
//! filesystem (Lustre, GPFS, BeeGFS, CephFS), where the kernel's overlay cannot keep a
//! container's writable layer (it refuses an upper directory on a filesystem that revalidates
//! its names remotely) and flock(2) may be missing (Lustre without `-o flock`, NFS without a lock
//! daemon) or hold on one machine only. den asks the kernel rather than reading
//! `/proc/self/mountinfo` because statfs names the filesystem that really holds the path
//! (bind mounts, automounts and symlinks included) in one call through the [`Sys`] seam, which
//! the recording fake answers in tests, since no NFS or Lustre server runs where tests do.

use std::path::Path;

use crate::sys::Sys;

/// A filesystem as den tells them apart. The names are docker's "Backing Filesystem" names where
/// docker has one (`extfs` for ext2/3/4, which share one magic number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsKind {
    Ext,
    Xfs,
    Btrfs,
    Zfs,
    F2fs,
    Tmpfs,
    Ramfs,
    /// An overlay itself (den in a container whose root is an overlay).
    Overlay,
    /// A filesystem a program serves through FUSE: sshfs, s3fs, a site's gateway, ...
    Fuse,
    Squashfs,
    Erofs,
    Nfs,
    Cifs,
    Smb2,
    Afs,
    Lustre,
    Gpfs,
    BeeGfs,
    CephFs,
    PanFs,
    Gfs2,
    Ocfs2,
    /// A magic number den does not know.
    Other(u32),
}

/// How a filesystem is shared, which decides what den can do on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// On this machine's own disk or memory.
    Local,
    /// Served by a program (FUSE) or stacked on another filesystem (overlay).
    Stacked,
    /// Read-only by design (squashfs, erofs).
    ReadOnly,
    /// A network filesystem (NFS, SMB, AFS).
    Network,
    /// A parallel filesystem of a cluster (Lustre, GPFS, BeeGFS, CephFS, PanFS).
    Parallel,
    /// A shared-disk cluster filesystem (GFS2, OCFS2).
    Cluster,
}

const TABLE: &[(u32, FsKind)] = &[
    (0xEF53, FsKind::Ext),
    (0x5846_5342, FsKind::Xfs),
    (0x9123_683E, FsKind::Btrfs),
    (0x2FC1_2FC1, FsKind::Zfs),
    (0xF2F5_2010, FsKind::F2fs),
    (0x0102_1994, FsKind::Tmpfs),
    (0x8584_58F6, FsKind::Ramfs),
    (0x794C_7630, FsKind::Overlay),
    (0x6573_5546, FsKind::Fuse),
    (0x7371_7368, FsKind::Squashfs),
    (0xE0F5_E1E2, FsKind::Erofs),
    (0x6969, FsKind::Nfs),
    (0xFF53_4D42, FsKind::Cifs),
    (0xFE53_4D42, FsKind::Smb2),
    (0x5346_414F, FsKind::Afs),
    (0x6B41_4653, FsKind::Afs),
    (0x0BD0_0BD0, FsKind::Lustre),
    (0x4750_4653, FsKind::Gpfs),
    (0x1983_0326, FsKind::BeeGfs),
    (0x00C3_6400, FsKind::CephFs),
    (0xAAD7_AAEA, FsKind::PanFs),
    (0x0116_1970, FsKind::Gfs2),
    (0x7461_636F, FsKind::Ocfs2),
];

impl FsKind {
    /// The kind statfs's `f_type` names.
    pub fn from_magic(magic: u32) -> FsKind {
        TABLE
            .iter()
            .find(|(m, _)| *m == magic)
            .map_or(FsKind::Other(magic), |(_, k)| *k)
    }

    /// The filesystem that holds `path`, or that will hold it once made: a path that does not
    /// exist yet (a runtime directory made on first use) is asked of its nearest existing
    /// parent. None when the kernel does not say (a directory den may not search).
    pub fn of(sys: &dyn Sys, path: &Path) -> Option<FsKind> {
        for p in path.ancestors() {
            match sys.statfs(p) {
                Ok(magic) => return Some(FsKind::from_magic(magic)),
                Err(e) if e.errno() == Some(libc::ENOENT) => continue,
                Err(_) => return None,
            }
        }
        None
    }

    pub fn name(self) -> String {
        let s = match self {
            FsKind::Ext => "extfs",
            FsKind::Xfs => "xfs",
            FsKind::Btrfs => "btrfs",
            FsKind::Zfs => "zfs",
            FsKind::F2fs => "f2fs",
            FsKind::Tmpfs => "tmpfs",
            FsKind::Ramfs => "ramfs",
            FsKind::Overlay => "overlayfs",
            FsKind::Fuse => "fuse",
            FsKind::Squashfs => "squashfs",
            FsKind::Erofs => "erofs",
            FsKind::Nfs => "nfs",
            FsKind::Cifs => "cifs",
            FsKind::Smb2 => "smb2",
            FsKind::Afs => "afs",
            FsKind::Lustre => "lustre",
            FsKind::Gpfs => "gpfs",
            FsKind::BeeGfs => "beegfs",
            FsKind::CephFs => "cephfs",
            FsKind::PanFs => "panfs",
            FsKind::Gfs2 => "gfs2",
            FsKind::Ocfs2 => "ocfs2",
            FsKind::Other(m) => return format!("unknown (0x{m:x})"),
        };
        s.into()
    }

    pub fn reach(self) -> Reach {
        match self {
            FsKind::Ext
            | FsKind::Xfs
            | FsKind::Btrfs
            | FsKind::Zfs
            | FsKind::F2fs
            | FsKind::Tmpfs
            | FsKind::Ramfs
            | FsKind::Other(_) => Reach::Local,
            FsKind::Overlay | FsKind::Fuse => Reach::Stacked,
            FsKind::Squashfs | FsKind::Erofs => Reach::ReadOnly,
            FsKind::Nfs | FsKind::Cifs | FsKind::Smb2 | FsKind::Afs => Reach::Network,
            FsKind::Lustre | FsKind::Gpfs | FsKind::BeeGfs | FsKind::CephFs | FsKind::PanFs => {
                Reach::Parallel
            }
            FsKind::Gfs2 | FsKind::Ocfs2 => Reach::Cluster,
        }
    }

    /// Whether the kernel's overlay can keep upper (writable) directories here. It refuses
    /// network, parallel and FUSE filesystems (their names are revalidated remotely), an
    /// overlay, and read-only ones; an unknown filesystem is given the benefit of the doubt (the
    /// driver probe tries it).
    pub fn overlay_upper(self) -> bool {
        self.reach() == Reach::Local
    }

    /// Whether the filesystem is shared between machines, or may be (FUSE): locks and a store's
    /// layout written by one node are then not what another sees.
    pub fn shared(self) -> bool {
        matches!(
            self.reach(),
            Reach::Network | Reach::Parallel | Reach::Cluster
        ) || self == FsKind::Fuse
    }

    /// What the filesystem means for a store, for `den info`; None where nothing is amiss.
    pub fn remark(self) -> Option<&'static str> {
        Some(match self.reach() {
            Reach::Local => return None,
            Reach::Network => {
                "a network filesystem: no kernel overlay for containers, locks may not hold between machines"
            }
            Reach::Parallel => {
                "a parallel filesystem: no kernel overlay for containers, locks may be missing (Lustre without -o flock)"
            }
            Reach::Cluster => "a cluster filesystem: no kernel overlay for containers",
            Reach::ReadOnly => "read-only: a store here can only be read",
            Reach::Stacked if self == FsKind::Fuse => {
                "served by a program through FUSE, perhaps over the network: no kernel overlay for containers"
            }
            Reach::Stacked => "an overlay itself: no kernel overlay for containers on it",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::RecordingSys;

    #[test]
    fn magic_numbers_name_the_filesystems_of_a_cluster() {
        for (magic, name, reach) in [
            (0x6969, "nfs", Reach::Network),
            (0x0BD0_0BD0, "lustre", Reach::Parallel),
            (0x4750_4653, "gpfs", Reach::Parallel),
            (0x1983_0326, "beegfs", Reach::Parallel),
            (0x00C3_6400, "cephfs", Reach::Parallel),
            (0xFF53_4D42, "cifs", Reach::Network),
            (0xFE53_4D42, "smb2", Reach::Network),
            (0x6573_5546, "fuse", Reach::Stacked),
            (0x794C_7630, "overlayfs", Reach::Stacked),
            (0xEF53, "extfs", Reach::Local),
            (0x0102_1994, "tmpfs", Reach::Local),
            (0x5846_5342, "xfs", Reach::Local),
        ] {
            let k = FsKind::from_magic(magic);
            assert_eq!(
                (k.name(), k.reach()),
                (name.to_string(), reach),
                "{magic:x}"
            );
        }
        assert_eq!(FsKind::from_magic(0x1234).name(), "unknown (0x1234)");
    }

    #[test]
    fn overlay_upper_and_sharing_follow_the_reach() {
        assert!(FsKind::Ext.overlay_upper() && !FsKind::Ext.shared());
        assert!(FsKind::Other(7).overlay_upper());
        for k in [FsKind::Nfs, FsKind::Lustre, FsKind::Gpfs, FsKind::Fuse] {
            assert!(!k.overlay_upper() && k.shared(), "{k:?}");
            assert!(k.remark().is_some());
        }
        assert!(!FsKind::Overlay.overlay_upper() && !FsKind::Overlay.shared());
        assert_eq!(FsKind::Tmpfs.remark(), None);
    }

    #[test]
    fn a_path_not_made_yet_is_asked_of_its_parent() {
        let sys = RecordingSys::new();
        sys.mount_fs("/", 0xEF53);
        sys.mount_fs("/home", 0x6969);
        assert_eq!(
            FsKind::of(&sys, Path::new("/home/u/.local/share/den")),
            Some(FsKind::Nfs)
        );
        assert_eq!(
            FsKind::of(&sys, Path::new("/tmp/den-1000")),
            Some(FsKind::Ext)
        );
        // The real kernel: a missing directory under /proc is procfs's.
        assert_eq!(
            FsKind::of(&crate::sys::LinuxSys, Path::new("/proc/no/such")),
            Some(FsKind::Other(0x9fa0))
        );
    }
}
