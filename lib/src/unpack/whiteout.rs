//! Whiteouts: an OCI whiteout entry (`.wh.NAME`, `.wh..wh..opq`) written in overlay's format on
//! disk, a 0/0 character device or the opaque xattr, which kernel overlayfs (with `userxattr`)
//! and fuse-overlayfs read.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::sys::stat::{Mode, SFlag};

use super::apply::Applier;
use super::paths::show_path;
use super::{Result, UnpackError};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// The xattr kernel overlayfs reads with `userxattr`, and fuse-overlayfs reads too.
pub const OPAQUE_XATTR: &str = "user.overlay.opaque";

/// The marks of an opaque directory in a writable layer: overlay's (user or trusted xattr)
/// and fuse-overlayfs's own.
pub const OPAQUE_MARKERS: [&str; 3] = [
    OPAQUE_XATTR,
    "trusted.overlay.opaque",
    "user.fuseoverlayfs.opaque",
];

/// Whether the directory `path` in a writable layer is opaque (hides what is below it).
pub fn is_opaque(path: &Path) -> bool {
    OPAQUE_MARKERS.iter().any(
        |name| matches!(crate::sys::lgetxattr(path, name), Ok(Some(v)) if v.as_slice() == b"y"),
    )
}

impl Applier<'_> {
    /// Apply the entry `name` in `parent` if it is a whiteout; returns whether it was one.
    pub(super) fn whiteout_entry(
        &mut self,
        parent: &Path,
        name: &OsStr,
        parts: &[OsString],
    ) -> Result<bool> {
        let name_b = name.as_bytes();
        if name_b == OPAQUE_MARKER.as_bytes() {
            crate::sys::lsetxattr(parent, OPAQUE_XATTR, b"y").map_err(|e| UnpackError::Io {
                path: show_path(parts),
                source: e.source,
            })?;
            return Ok(true);
        }
        let Some(hidden) = name_b.strip_prefix(WHITEOUT_PREFIX.as_bytes()) else {
            return Ok(false);
        };
        if hidden.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            return Ok(true); // aufs bookkeeping (.wh..wh.plnk and the like)
        }
        // `.wh.`, `.wh..` and `.wh...` would hide the directory itself or its parent.
        if matches!(hidden, b"" | b"." | b"..") {
            return Err(UnpackError::PathEscape {
                path: show_path(parts),
            });
        }
        let target = parent.join(OsStr::from_bytes(hidden));
        self.clear(&target, false, parts)?;
        self.whiteout(&target, parts)?;
        Ok(true)
    }

    /// Overlay's whiteout at `target`: a 0/0 character device (no privilege needed since 5.8).
    pub(super) fn whiteout(&mut self, target: &Path, parts: &[OsString]) -> Result<()> {
        nix::sys::stat::mknod(target, SFlag::S_IFCHR, Mode::empty(), 0).map_err(|e| {
            UnpackError::Io {
                path: show_path(parts),
                source: e.into(),
            }
        })
    }
}

/// Whether a path inside a layer is overlay's whiteout (a 0/0 character device).
pub fn is_whiteout(md: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    md.file_type().is_char_device() && md.rdev() == 0
}
