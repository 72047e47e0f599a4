//! Whether the store and the runtime directory are on filesystems that suit them, and the one
//! line den says when not.
//!
//! On a cluster the default store (`~/.local/share/den`) is on the NFS home directory, and users
//! point `--root` at a parallel filesystem. den still works there (the driver probe falls back
//! to fuse-overlayfs or copies), so this is a warning, not an error: slower containers, and
//! locks that may not hold between nodes (two jobs on two nodes pulling into one store). It is
//! said at `run`, `create` and `pull`, where it matters, and names the fix: a store on the
//! node's own disk. Where locks do not work at all, the lock itself fails with
//! [`super::StoreError::NoLocks`], an error naming the same fix.

use std::path::Path;

use crate::fs::FsKind;
use crate::sys::Sys;

/// The fix every warning names.
pub const FIX: &str =
    "put it on the node's own disk: `storage.root` in den's config, or DEN_ROOT=$TMPDIR/den";

/// What den says (one line each) about a store at `root` and a runtime directory at
/// `runtime`, empty when both are on local filesystems.
pub fn warnings(sys: &dyn Sys, root: &Path, runtime: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(kind) = FsKind::of(sys, root).filter(|k| k.shared()) {
        out.push(store_warning(root, kind));
    }
    if let Some(kind) = FsKind::of(sys, runtime).filter(|k| k.shared()) {
        out.push(format!(
            "warning: the runtime directory {} is on {}, shared between machines: containers' \
             state and locks belong on this one; set DEN_RUNTIME_DIR to a local directory (/tmp/den-$UID)",
            runtime.display(),
            kind.name()
        ));
    }
    out
}

fn store_warning(root: &Path, kind: FsKind) -> String {
    format!(
        "warning: the store {} is on {} ({}); {FIX}",
        root.display(),
        kind.name(),
        kind.remark().unwrap_or("shared between machines"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::RecordingSys;

    #[test]
    fn a_store_on_nfs_is_warned_of_in_one_line_naming_the_fix() {
        let sys = RecordingSys::new();
        sys.mount_fs("/", 0xEF53);
        sys.mount_fs("/tmp", 0x0102_1994);
        sys.mount_fs("/home", 0x6969);
        let w = warnings(
            &sys,
            Path::new("/home/u/.local/share/den"),
            Path::new("/tmp/den-1000"),
        );
        assert_eq!(
            w,
            vec![
                "warning: the store /home/u/.local/share/den is on nfs (a network filesystem: no \
                 kernel overlay for containers, locks may not hold between machines); put it on the \
                 node's own disk: `storage.root` in den's config, or DEN_ROOT=$TMPDIR/den"
            ]
        );
        assert!(!w[0].contains('\n'));
    }

    #[test]
    fn parallel_and_fuse_stores_are_warned_of_and_local_ones_not() {
        let sys = RecordingSys::new();
        sys.mount_fs("/", 0xEF53);
        sys.mount_fs("/lustre", 0x0BD0_0BD0);
        sys.mount_fs("/gpfs", 0x4750_4653);
        sys.mount_fs("/sshfs", 0x6573_5546);
        sys.mount_fs("/ovl", 0x794C_7630);
        let rt = Path::new("/tmp/rt");
        for (root, name) in [
            ("/lustre/u/den", "lustre"),
            ("/gpfs/den", "gpfs"),
            ("/sshfs/den", "fuse"),
        ] {
            let w = warnings(&sys, Path::new(root), rt);
            assert_eq!(w.len(), 1, "{w:?}");
            assert!(
                w[0].starts_with(&format!("warning: the store {root} is on {name} (")),
                "{}",
                w[0]
            );
            assert!(w[0].ends_with(FIX));
        }
        // Local disks, and an overlay (slower, says `den info`, but not shared): nothing.
        assert!(warnings(&sys, Path::new("/home/den"), rt).is_empty());
        assert!(warnings(&sys, Path::new("/ovl/den"), rt).is_empty());
        // The kernel not answering is not a reason to warn.
        assert!(warnings(&RecordingSys::new(), Path::new("/x"), rt).is_empty());
    }

    #[test]
    fn a_runtime_directory_on_nfs_is_warned_of() {
        let sys = RecordingSys::new();
        sys.mount_fs("/", 0xEF53);
        sys.mount_fs("/home", 0x6969);
        let w = warnings(&sys, Path::new("/scratch/den"), Path::new("/home/u/rt"));
        assert_eq!(w.len(), 1);
        assert!(
            w[0].starts_with("warning: the runtime directory /home/u/rt is on nfs,"),
            "{}",
            w[0]
        );
        assert!(w[0].contains("DEN_RUNTIME_DIR"));
    }
}
