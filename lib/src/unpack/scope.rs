//! Resolving a path inside a root directory the way a process chrooted there would: symlinks are
//! followed with the root as `/`, and `..` never climbs above it.
//!
//! Used wherever den reads or writes a container's files from outside the container (the
//! image's /etc/passwd, the command's location on PATH, `cp`), so that an image's symlink cannot
//! make den touch a host file.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// The host path of `path` (absolute or relative to `/`) inside `root`. With `follow_final`, a
/// symlink in the last component is followed too. The result need not exist; everything up to
/// the first missing component has been resolved.
pub fn resolve(root: &Path, path: &Path, follow_final: bool) -> std::io::Result<PathBuf> {
    let mut cur: Vec<OsString> = Vec::new();
    let mut queue: std::collections::VecDeque<OsString> = split(path.as_os_str().as_bytes()).into();
    let mut hops = 0;
    while let Some(c) = queue.pop_front() {
        if c == ".." {
            cur.pop();
            continue;
        }
        let mut p = root.to_path_buf();
        p.extend(&cur);
        p.push(&c);
        let last = queue.is_empty();
        match std::fs::symlink_metadata(&p) {
            Ok(md) if md.file_type().is_symlink() && (!last || follow_final) => {
                hops += 1;
                if hops > 40 {
                    return Err(std::io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = std::fs::read_link(&p)?;
                let tb = target.as_os_str().as_bytes();
                if tb.starts_with(b"/") {
                    cur.clear();
                }
                let mut pre = split(tb);
                pre.extend(queue.drain(..));
                queue = pre.into();
            }
            Ok(_) => cur.push(c),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                cur.push(c);
                cur.extend(queue.drain(..).filter(|c| c != ".."));
                break;
            }
            Err(e) => return Err(e),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&cur);
    Ok(out)
}

fn split(b: &[u8]) -> Vec<OsString> {
    b.split(|c| *c == b'/')
        .filter(|s| !s.is_empty() && *s != b".")
        .map(|s| OsString::from_vec(s.to_vec()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("bin")).unwrap();
        std::fs::write(r.join("bin/busybox"), b"").unwrap();
        std::os::unix::fs::symlink("/bin/busybox", r.join("bin/sh")).unwrap();
        std::os::unix::fs::symlink("../../../../etc", r.join("evil")).unwrap();
        std::os::unix::fs::symlink("/", r.join("up")).unwrap();
        assert_eq!(
            resolve(r, Path::new("/bin/sh"), true).unwrap(),
            r.join("bin/busybox")
        );
        assert_eq!(
            resolve(r, Path::new("/bin/sh"), false).unwrap(),
            r.join("bin/sh")
        );
        assert_eq!(
            resolve(r, Path::new("evil/passwd"), true).unwrap(),
            r.join("etc/passwd")
        );
        assert_eq!(
            resolve(r, Path::new("/up/up/../bin"), true).unwrap(),
            r.join("bin")
        );
        assert_eq!(
            resolve(r, Path::new("/missing/x"), true).unwrap(),
            r.join("missing/x")
        );
    }

    #[test]
    fn loops_are_errors() {
        let t = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("b", t.path().join("a")).unwrap();
        std::os::unix::fs::symlink("a", t.path().join("b")).unwrap();
        assert_eq!(
            resolve(t.path(), Path::new("a"), true)
                .unwrap_err()
                .raw_os_error(),
            Some(libc::ELOOP)
        );
    }
}
