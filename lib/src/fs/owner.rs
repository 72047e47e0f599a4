//! Owners a file was meant to have but could not be given: single-uid mode's record of them.
//!
//! Without a subordinate id range only root (the user) exists in den's user namespace, so a
//! `COPY --chown=1000:1000` or a base image's file owned by `www-data` ends up the user's. The
//! owner it was meant to have is kept beside it, in the extended attribute [`OWNER_XATTR`]
//! (`"UID:GID"`, decimal), and the layer tars den writes (`build::layer`: a build's layers,
//! `commit`, `export`) take their headers' owners from it, so an image pushed from single-uid
//! mode has the owners its Dockerfile and base image asked for. A tree copy passes the record on
//! ([`super::walk`] reads it as the entry's owner: the vfs driver's copies, copy-up, `cp`'s tar).
//!
//! Set where den gives owners itself and the kernel refuses the ids as unmapped (EINVAL from
//! chown: [`super::write::fchown`], [`super::write::chown_at`], which COPY and `cp` use), and by
//! `unpack` for layer entries not owned by root when it leaves owners as they are. A `user.*`
//! attribute lives in the file's inode: overlay's copy-up keeps it (a RUN step that appends to
//! such a file keeps its owner), and a hard link shares it. Symlinks cannot carry `user.*`
//! attributes (the kernel refuses them), so a symlink's intended owner is not kept; a RUN step's
//! own chown calls (answered by `security::fakeids`) are not recorded either.
//!
//! A file that has none keeps the owner the filesystem shows. A value that does not parse is
//! ignored, so an attribute a layer brings cannot do more than a tar header could: `unpack`
//! drops this attribute from images' own extended attributes all the same.

use std::fs::File;
use std::os::fd::{AsFd, RawFd};
use std::path::{Path, PathBuf};

/// The extended attribute holding a file's intended owner.
pub const OWNER_XATTR: &str = "user.den.owner";

/// The attribute's value for `uid`, `gid`.
pub fn format((uid, gid): (u32, u32)) -> String {
    format!("{uid}:{gid}")
}

/// An attribute value, read back; None unless it is exactly `UID:GID` in decimal.
pub fn parse(value: &[u8]) -> Option<(u32, u32)> {
    let s = std::str::from_utf8(value).ok()?;
    let (u, g) = s.split_once(':')?;
    let num = |t: &str| {
        (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    };
    Some((num(u)?, num(g)?))
}

/// Record `ids` on the open file `f`. Best effort: a filesystem without user xattrs keeps no
/// record, as before.
pub fn record(f: &File, ids: (u32, u32)) {
    let _ = crate::sys::fsetxattr(f.as_fd(), OWNER_XATTR, format(ids).as_bytes());
}

/// Record `ids` on `name` in the directory `dir` (not following a symlink there; a symlink
/// itself cannot carry the record).
pub fn record_at(dir: RawFd, name: &std::ffi::OsStr, ids: (u32, u32)) {
    // Through the directory's descriptor: no path above it is looked up again.
    let p = PathBuf::from(format!("/proc/self/fd/{dir}")).join(name);
    record_path(&p, ids);
}

/// Record `ids` on `path` itself (not what a symlink there points to).
pub fn record_path(path: &Path, ids: (u32, u32)) {
    let _ = crate::sys::lsetxattr(path, OWNER_XATTR, format(ids).as_bytes());
}

/// The owner recorded on `path` itself, if any.
pub fn recorded(path: &Path) -> Option<(u32, u32)> {
    crate::sys::lgetxattr(path, OWNER_XATTR)
        .ok()
        .flatten()
        .and_then(|v| parse(&v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_uid_colon_gid_in_decimal() {
        assert_eq!(parse(format((1000, 33)).as_bytes()), Some((1000, 33)));
        assert_eq!(parse(b"4294967295:0"), Some((u32::MAX, 0)));
        for bad in [
            &b""[..],
            b"1000",
            b"1000:",
            b":1",
            b"-1:0",
            b"+1:0",
            b"1:2:3",
            b"4294967296:0",
            b" 1:2",
            b"\xff:1",
        ] {
            assert_eq!(parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn a_record_is_read_back_where_user_xattrs_work() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("f");
        let file = File::create(&f).unwrap();
        record(&file, (1000, 1001));
        // tmpfs before Linux 6.6 has no user xattrs: then nothing is recorded, nothing read.
        let back = recorded(&f);
        assert!(back.is_none() || back == Some((1000, 1001)), "{back:?}");
        let d = File::open(t.path()).unwrap();
        std::fs::write(t.path().join("g"), b"").unwrap();
        record_at(std::os::fd::AsRawFd::as_raw_fd(&d), "g".as_ref(), (7, 8));
        if back.is_some() {
            assert_eq!(recorded(&t.path().join("g")), Some((7, 8)));
        }
        std::os::unix::fs::symlink("f", t.path().join("l")).unwrap();
        record_path(&t.path().join("l"), (1, 1));
        assert_eq!(recorded(&t.path().join("l")), None);
    }
}
