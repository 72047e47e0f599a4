//! Paths from a layer: cleaned lexically before anything touches the disk, a symlink's target
//! checked against the root, and shown shortened in messages (a hostile layer's path can be many
//! kilobytes).

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use super::UnpackError;

/// Clean a tar path lexically: drop `.` and empty parts, apply `..`, refuse to climb above root.
/// Returns `None` for a path that escapes.
pub fn clean(path: &[u8]) -> Option<Vec<OsString>> {
    let mut out: Vec<OsString> = Vec::new();
    for part in path.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                out.pop()?;
            }
            p => out.push(OsString::from_vec(p.to_vec())),
        }
    }
    Some(out)
}

/// Whether a symlink at `link` (cleaned components) with `target` stays inside the root when
/// resolved lexically from the link's directory. Absolute targets are rooted at the container's
/// root and always stay inside.
pub fn symlink_target_inside(link: &[OsString], target: &[u8]) -> bool {
    if target.starts_with(b"/") {
        return true;
    }
    let mut depth = link.len().saturating_sub(1) as isize;
    for part in target.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => depth += 1,
        }
    }
    true
}

/// The key of [`super::apply::Applier::dirs`] for cleaned components: their bytes joined by `/` (one
/// allocation, where a list of components would make one per level of a deep tree).
pub(super) fn dir_key(parts: &[OsString]) -> Vec<u8> {
    let mut key = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for p in parts {
        key.extend_from_slice(p.as_bytes());
        key.push(b'/');
    }
    key
}

/// The error for a failed write of the entry at `parts` (built only when there is one).
pub(super) fn io_err(parts: &[OsString], source: std::io::Error) -> UnpackError {
    UnpackError::Io {
        path: show_path(parts),
        source,
    }
}

/// An entry's path for a message (see [`shown`]): a hostile layer's path can be many kilobytes.
pub(super) fn show_path(parts: &[OsString]) -> String {
    let joined: Vec<_> = parts
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    shown(joined.join("/"))
}

/// A path or link target from a layer, cut in the middle to at most [`SHOWN`] characters.
pub(super) fn shown(full: String) -> String {
    let n = full.chars().count();
    if n <= SHOWN {
        return full;
    }
    let head: String = full.chars().take(SHOWN / 2).collect();
    let tail: String = full.chars().skip(n - SHOWN / 2).collect();
    format!("{head}…{tail}")
}

/// The most characters of a path [`show_path`] shows.
pub(super) const SHOWN: usize = 200;
