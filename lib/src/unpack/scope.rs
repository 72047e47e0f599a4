//! Resolving a path inside a root directory the way a process chrooted there would: symlinks are
//! followed with the root as `/`, and `..` never climbs above it.
//!
//! Used wherever den reads or writes a container's files from outside the container (the
//! image's /etc/passwd, the command's location on PATH, `cp`, COPY in a build), so that an
//! image's symlink cannot make den touch a host file.
//!
//! A resolved path is only a name: between resolving and opening, another process (a running
//! container, another user's process with access to the directory) could swap a directory on the
//! way for a symlink. So den opens what it resolved one plain name at a time from a descriptor of
//! the root, each with `O_NOFOLLOW` ([`open_beneath`]): a symlink met there is an error, never
//! followed, and the descriptor reached is always inside the root. [`read_small`] is the one way
//! den reads an image's small text files (/etc/passwd, /etc/group): besides staying inside the
//! root, it never blocks (a FIFO there would hang `den run`) and never reads more than a cap.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::error::Diagnose;

/// The most den reads of an image's small text files (/etc/passwd, /etc/group): far more than
/// any real one, far less than would hurt.
pub const SMALL_FILE_CAP: u64 = 4 << 20;

/// An image's file that den reads for itself (/etc/passwd, /etc/group) is not one it will read.
#[derive(Debug, thiserror::Error)]
pub enum ImageFileError {
    #[error("{path} in the image is {kind}, not a regular file")]
    NotRegular { path: String, kind: &'static str },
    #[error("{path} in the image is larger than {cap} bytes")]
    TooLarge { path: String, cap: u64 },
    #[error("cannot read {path} in the image")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl Diagnose for ImageFileError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            ImageFileError::NotRegular { path, .. } | ImageFileError::TooLarge { path, .. } => {
                format!(
                    "den reads {path} only as a regular file of at most {} MiB; fix it in the \
                     image, or check where the image came from",
                    SMALL_FILE_CAP >> 20
                )
            }
            ImageFileError::Io { .. } => {
                "check the image's file and the directories on the way to it".into()
            }
        })
    }
}

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

/// The plain names of `host` (a path [`resolve`] returned for `root`) below `root`.
pub fn names_below(root: &Path, host: &Path) -> Vec<OsString> {
    host.strip_prefix(root)
        .map(|r| {
            r.components()
                .filter_map(|c| match c {
                    Component::Normal(n) => Some(n.to_os_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Open the root directory itself, to walk from (den's own path: followed as it is).
pub fn open_root(root: &Path) -> std::io::Result<File> {
    crate::sys::open_at(
        None,
        root,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY,
        Mode::empty(),
    )
}

/// Open the directory reached from `dir` through `names`, one plain name at a time, each with
/// `O_NOFOLLOW`: a symlink on the way (one put there since the path was resolved) is an error
/// (`ELOOP`, or `ENOTDIR`), never followed, so the directory reached is always in `dir`'s tree.
pub fn open_beneath(dir: &File, names: &[OsString]) -> std::io::Result<File> {
    let mut cur: Option<File> = None;
    for n in names {
        if !is_plain(n) {
            return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
        }
        let next = crate::sys::open_at(
            Some(cur.as_ref().unwrap_or(dir).as_fd()),
            n.as_os_str(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
            Mode::empty(),
        )?;
        cur = Some(next);
    }
    match cur {
        Some(f) => Ok(f),
        None => dir.try_clone(),
    }
}

/// A single name: not empty, `.` or `..`, no `/`.
pub fn is_plain(name: &OsStr) -> bool {
    let b = name.as_bytes();
    !b.is_empty() && b != b"." && b != b".." && !b.contains(&b'/')
}

/// What kind of file a `st_mode` is, in words.
pub fn kind_of(mode: libc::mode_t) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFREG => "a regular file",
        libc::S_IFDIR => "a directory",
        libc::S_IFLNK => "a symbolic link",
        libc::S_IFIFO => "a fifo",
        libc::S_IFSOCK => "a socket",
        libc::S_IFCHR => "a character device",
        libc::S_IFBLK => "a block device",
        _ => "of an unknown kind",
    }
}

/// Read `path` (absolute in the image, such as `/etc/passwd`) from the root filesystem at `root`,
/// as a process chrooted there would find it; `None` when it does not exist. Resolved in scope,
/// then opened from the root's descriptor without following a symlink; opened `O_NONBLOCK`, so a
/// FIFO or a device is refused without a read that could wait forever; only a regular file of at
/// most `cap` bytes is read.
pub fn read_small(root: &Path, path: &str, cap: u64) -> Result<Option<Vec<u8>>, ImageFileError> {
    let io = |source: std::io::Error| ImageFileError::Io {
        path: path.into(),
        source,
    };
    let missing =
        |e: &std::io::Error| matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR));
    let host = match resolve(root, Path::new(path), true) {
        Ok(h) => h,
        Err(e) if missing(&e) => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let mut names = names_below(root, &host);
    let Some(name) = names.pop() else {
        return Err(ImageFileError::NotRegular {
            path: path.into(),
            kind: "a directory",
        });
    };
    let dir = match open_root(root).and_then(|r| open_beneath(&r, &names)) {
        Ok(d) => d,
        Err(e) if missing(&e) => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
    let f = match crate::sys::open_at(Some(dir.as_fd()), name.as_os_str(), flags, Mode::empty()) {
        Ok(f) => f,
        Err(e) if missing(&e) => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let st = nix::sys::stat::fstat(f.as_raw_fd()).map_err(|e| io(e.into()))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(ImageFileError::NotRegular {
            path: path.into(),
            kind: kind_of(st.st_mode),
        });
    }
    let too_large = || ImageFileError::TooLarge {
        path: path.into(),
        cap,
    };
    if st.st_size as u64 > cap {
        return Err(too_large());
    }
    let mut buf = Vec::with_capacity(st.st_size as usize);
    // One byte past the cap tells a file that grew since fstat.
    (&f).take(cap + 1).read_to_end(&mut buf).map_err(io)?;
    if buf.len() as u64 > cap {
        return Err(too_large());
    }
    Ok(Some(buf))
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
    fn small_files_are_read_in_scope_and_only_when_regular_and_small() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path().join("root");
        std::fs::create_dir_all(r.join("etc")).unwrap();
        let host = t.path().join("host-passwd");
        std::fs::write(&host, "host:x:1:1::/:/bin/sh\n").unwrap();
        std::fs::write(r.join("etc/group"), "g:x:5:\n").unwrap();
        // An absolute symlink to the host's file resolves inside the root, where it is missing.
        std::os::unix::fs::symlink(&host, r.join("etc/passwd")).unwrap();
        assert_eq!(read_small(&r, "/etc/passwd", 100).unwrap(), None);
        assert_eq!(
            read_small(&r, "/etc/group", 100).unwrap().unwrap(),
            b"g:x:5:\n"
        );
        assert_eq!(read_small(&r, "/etc/missing/x", 100).unwrap(), None);
        nix::unistd::mkfifo(&r.join("etc/fifo"), Mode::from_bits_truncate(0o644)).unwrap();
        assert!(matches!(
            read_small(&r, "/etc/fifo", 100),
            Err(ImageFileError::NotRegular { kind: "a fifo", .. })
        ));
        assert!(matches!(
            read_small(&r, "/etc", 100),
            Err(ImageFileError::NotRegular {
                kind: "a directory",
                ..
            })
        ));
        assert!(matches!(
            read_small(&r, "/etc/group", 3),
            Err(ImageFileError::TooLarge { cap: 3, .. })
        ));
    }

    #[test]
    fn open_beneath_follows_no_symlink() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("a/b")).unwrap();
        std::os::unix::fs::symlink("/", t.path().join("a/up")).unwrap();
        let root = open_root(t.path()).unwrap();
        let names = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(open_beneath(&root, &names(&["a", "b"])).is_ok());
        // With O_DIRECTORY, the kernel says ENOTDIR for a symlink it will not follow.
        assert_eq!(
            open_beneath(&root, &names(&["a", "up"]))
                .unwrap_err()
                .raw_os_error(),
            Some(libc::ENOTDIR)
        );
        assert!(open_beneath(&root, &names(&["a", ".."])).is_err());
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
