//! Applying a tar stream's entries to a directory, one at a time: each entry's path is cleaned,
//! its parent resolved in scope (created where missing), then its node made (`nodes`) or, for a
//! whiteout, the hidden name removed (`whiteout`). Directory times are set last.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Read;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use super::nodes::{Node, set_times};
use super::paths::{clean, dir_key, io_err, show_path, shown};
use super::{Counts, Options, Result, UnpackError};

/// One layer being applied: where, how, and what is known of the tree so far.
pub(super) struct Applier<'a> {
    pub(super) root: &'a Path,
    /// The whole uncompressed layer, when it is in memory (see [`apply_whole`]).
    pub(super) whole: Option<&'a [u8]>,
    pub(super) opts: Options,
    /// Resolved real directories, by cleaned path; cleared whenever a node is replaced.
    pub(super) dirs: HashMap<Vec<u8>, PathBuf>,
    /// Directories whose mtime is set at the end (creating children changes it).
    pub(super) dir_times: Vec<(PathBuf, i64)>,
    pub(super) stats: Counts,
    pub(super) buf: Vec<u8>,
}

/// Apply the tar stream `reader` to the directory `root`.
pub fn apply(reader: impl Read, root: &Path, opts: Options) -> Result<Counts> {
    let mut archive = tar::Archive::new(reader);
    let mut a = Applier {
        root,
        whole: None,
        opts,
        dirs: HashMap::new(),
        dir_times: Vec::new(),
        stats: Counts::default(),
        buf: vec![0u8; 256 * 1024],
    };
    let entries = archive.entries().map_err(UnpackError::Tar)?;
    for entry in entries {
        let mut entry = entry.map_err(UnpackError::Tar)?;
        a.entry(&mut entry)?;
    }
    // Read what follows the end-of-archive blocks so the diff id covers the whole stream.
    let mut rest = archive.into_inner();
    std::io::copy(&mut rest, &mut std::io::sink()).map_err(UnpackError::Tar)?;
    Ok(a.finish())
}

/// Apply a whole uncompressed layer held in memory: entries are found by seeking and file
/// contents written straight from `tar`.
pub fn apply_whole(tar: &[u8], root: &Path, opts: Options) -> Result<Counts> {
    let mut archive = tar::Archive::new(std::io::Cursor::new(tar));
    let mut a = Applier {
        root,
        whole: Some(tar),
        opts,
        dirs: HashMap::new(),
        dir_times: Vec::new(),
        stats: Counts::default(),
        buf: vec![0u8; 64 * 1024],
    };
    for entry in archive.entries_with_seek().map_err(UnpackError::Tar)? {
        let mut entry = entry.map_err(UnpackError::Tar)?;
        a.entry(&mut entry)?;
    }
    Ok(a.finish())
}

impl Applier<'_> {
    /// Set directory times last: creating their children changed them.
    fn finish(self) -> Counts {
        for (dir, mtime) in self.dir_times.iter().rev() {
            set_times(dir, *mtime);
        }
        self.stats
    }
}

impl Applier<'_> {
    /// The real directory for `parts` inside the root, following symlinks in scope and creating
    /// missing directories (0755, owned by the unpacking user) on the way.
    pub(super) fn resolve_dir(&mut self, parts: &[OsString]) -> Result<PathBuf> {
        let key = dir_key(parts);
        if let Some(p) = self.dirs.get(&key) {
            return Ok(p.clone());
        }
        // Start from the parent's resolution when it is known, so that a deep tree costs one
        // lookup per level rather than a walk from the root (cubic in the depth: a layer of
        // 1,000 nested directories took seconds).
        let (mut cur, todo) = match parts.split_last() {
            Some((last, parent)) if !parent.is_empty() => match self.dirs.get(&dir_key(parent)) {
                Some(real) => (real.clone(), std::slice::from_ref(last)),
                None => (self.root.to_path_buf(), parts),
            },
            _ => (self.root.to_path_buf(), parts),
        };
        let mut queue: std::collections::VecDeque<OsString> = todo.iter().cloned().collect();
        let mut hops = 0;
        while let Some(c) = queue.pop_front() {
            if c == ".." {
                // `cur` is the root and plain components below it: never above the root.
                if cur.as_path() != self.root {
                    cur.pop();
                }
                continue;
            }
            if c.is_empty() || c == "." {
                continue;
            }
            let p = cur.join(&c);
            match std::fs::symlink_metadata(&p) {
                Ok(md) if md.is_dir() => cur = p,
                Ok(md) if md.file_type().is_symlink() => {
                    hops += 1;
                    if hops > 40 {
                        return Err(UnpackError::SymlinkLoop {
                            path: show_path(parts),
                        });
                    }
                    let target = std::fs::read_link(&p).map_err(|e| io_err(parts, e))?;
                    let tb = target.as_os_str().as_bytes();
                    if tb.starts_with(b"/") {
                        cur = self.root.to_path_buf();
                    }
                    let mut pre: Vec<OsString> = tb
                        .split(|b| *b == b'/')
                        .filter(|s| !s.is_empty())
                        .map(|s| OsString::from_vec(s.to_vec()))
                        .collect();
                    pre.extend(queue.drain(..));
                    queue = pre.into();
                }
                Ok(_) => {
                    return Err(UnpackError::Io {
                        path: show_path(parts),
                        source: std::io::Error::from_raw_os_error(libc::ENOTDIR),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::create_dir(&p).map_err(|e| io_err(parts, e))?;
                    cur = p;
                }
                Err(e) => return Err(io_err(parts, e)),
            }
        }
        self.dirs.insert(key, cur.clone());
        Ok(cur)
    }

    /// Create a node at `path` with `op`; if something is there already, remove it and retry
    /// (a later entry replaces an earlier one). Trying first saves an lstat per entry.
    pub(super) fn create<T>(
        &mut self,
        path: &Path,
        parts: &[OsString],
        op: impl Fn(&Path) -> std::io::Result<T>,
    ) -> Result<T> {
        match op(path) {
            Ok(v) => Ok(v),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                self.clear(path, false, parts)?;
                op(path).map_err(|e| io_err(parts, e))
            }
            Err(e) => Err(io_err(parts, e)),
        }
    }

    /// Remove whatever is at `path` (not following a symlink), unless it is a directory and
    /// `keep_dir` is set. Returns whether a directory was kept.
    pub(super) fn clear(
        &mut self,
        path: &Path,
        keep_dir: bool,
        parts: &[OsString],
    ) -> Result<bool> {
        match std::fs::symlink_metadata(path) {
            Ok(md) if md.is_dir() && keep_dir => Ok(true),
            Ok(md) => {
                if md.is_dir() {
                    crate::fs::remove_tree(path).map_err(|e| io_err(parts, e))?;
                } else {
                    std::fs::remove_file(path).map_err(|e| io_err(parts, e))?;
                }
                self.dirs.clear();
                Ok(false)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(parts, e)),
        }
    }

    /// Apply one entry: clean its path, resolve its parent in scope, then make its node.
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        self.stats.entries += 1;
        let raw = entry.path_bytes().into_owned();
        let Some(parts) = clean(&raw) else {
            return Err(UnpackError::PathEscape {
                path: shown(String::from_utf8_lossy(&raw).into_owned()),
            });
        };
        let Some((name, parent_parts)) = parts.split_last() else {
            return Ok(()); // the root directory itself
        };
        let parent = self.resolve_dir(parent_parts)?;
        if self.whiteout_entry(&parent, name, &parts)? {
            return Ok(());
        }
        let path = parent.join(name);
        let node = Node::of(entry.header())?;
        match node.kind {
            tar::EntryType::Directory => self.directory(entry, path, &parts, &node),
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                self.file(entry, &path, &parts, &node)
            }
            tar::EntryType::Symlink => self.symlink(entry, &path, &parts, &node),
            tar::EntryType::Link => self.hard_link(entry, &path, &parts),
            tar::EntryType::Fifo => self.fifo(&path, &parts, &node),
            tar::EntryType::Char | tar::EntryType::Block => {
                self.device(entry.header(), &path, &parts, node.kind)
            }
            // PAX and GNU long-name headers are consumed by the tar crate; anything else
            // (XGlobalHeader, unknown types) carries no file.
            _ => Ok(()),
        }
    }
}
