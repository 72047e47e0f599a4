//! What a container changed in its root filesystem against its image: docker's `diff` lines
//! (`A` added, `C` changed, `D` deleted), one per path, sorted by path.
//!
//! The image's tree is its layers applied in order (overlay's whiteouts delete, opaque
//! directories hide what is below), kept as a map of paths to their metadata; file contents are
//! not read. Then, per driver:
//! * `overlay` and `fuse-overlayfs`: the container's writable layer (`upper`) is walked. An entry
//!   there is `C` when the image has the path, else `A`; a whiteout is `D`; an opaque directory
//!   also deletes what the image had below it. This is docker's overlay2 diff.
//! * `vfs`: the container's copy is walked and compared entry by entry with the image's tree
//!   (type, mode, owner, size, mtime, link target, device): docker's "naive" diff for drivers
//!   without a writable layer of their own. A deleted directory is one `D` line, not one per
//!   file below it, as docker prints it.
//!
//! Either way the directories above a change that the image has are `C` too, as overlay copies
//! them up. Must run inside den's user namespace, where the files show their image owners and
//! can all be read.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{Result, io_err};

/// What happened to a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    Changed,
    Added,
    Deleted,
}

impl ChangeKind {
    /// docker's letter (and the number its API uses is `Kind` in `--format` / JSON).
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Changed => 'C',
            ChangeKind::Added => 'A',
            ChangeKind::Deleted => 'D',
        }
    }
}

/// One line of `diff`: an absolute path in the container and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub kind: ChangeKind,
}

/// What `diff` compares of an entry (directories: type, mode and owner only, since their
/// size and mtime follow their children, which are reported themselves).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime: (i64, i64),
    rdev: u64,
    link: Option<PathBuf>,
}

impl Entry {
    fn of(path: &Path, md: &std::fs::Metadata) -> Result<Entry> {
        let dir = md.is_dir();
        let link = if md.file_type().is_symlink() {
            Some(std::fs::read_link(path).map_err(io_err(path))?)
        } else {
            None
        };
        Ok(Entry {
            mode: md.mode(),
            uid: md.uid(),
            gid: md.gid(),
            size: if dir { 0 } else { md.len() },
            mtime: if dir {
                (0, 0)
            } else {
                (md.mtime(), md.mtime_nsec())
            },
            rdev: md.rdev(),
            link,
        })
    }

    fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }
}

/// A tree as relative paths (no leading `/`) to their entries.
type Tree = BTreeMap<PathBuf, Entry>;

fn sorted_names(dir: &Path) -> Result<Vec<std::ffi::OsString>> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map_err(io_err(dir))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
        .map_err(io_err(dir))?;
    names.sort();
    Ok(names)
}

/// Remove `rel`'s descendants (not `rel` itself) from `tree`.
fn remove_below(tree: &mut Tree, rel: &Path) {
    let below: Vec<PathBuf> = tree
        .range(rel.to_path_buf()..)
        .skip_while(|(p, _)| p.as_path() == rel)
        .take_while(|(p, _)| p.starts_with(rel))
        .map(|(p, _)| p.clone())
        .collect();
    for p in below {
        tree.remove(&p);
    }
}

/// Apply one layer directory (overlay format) onto `tree`.
fn apply_layer(tree: &mut Tree, dir: &Path, rel: &Path) -> Result<()> {
    for name in sorted_names(dir)? {
        let path = dir.join(&name);
        let r = rel.join(&name);
        let md = std::fs::symlink_metadata(&path).map_err(io_err(&path))?;
        if crate::unpack::is_whiteout(&md) {
            remove_below(tree, &r);
            tree.remove(&r);
            continue;
        }
        let e = Entry::of(&path, &md)?;
        let was_dir = tree.get(&r).is_some_and(Entry::is_dir);
        if !e.is_dir() || crate::unpack::is_opaque(&path) || !was_dir {
            remove_below(tree, &r);
        }
        let is_dir = e.is_dir();
        tree.insert(r.clone(), e);
        if is_dir {
            apply_layer(tree, &path, &r)?;
        }
    }
    Ok(())
}

/// The image's tree: `layers` (unpacked layer directories, bottom first) applied in order.
fn image_tree(layers: &[PathBuf]) -> Result<Tree> {
    let mut tree = Tree::new();
    for l in layers {
        apply_layer(&mut tree, l, Path::new(""))?;
    }
    Ok(tree)
}

/// A plain tree (a vfs copy) as a [`Tree`].
fn read_tree(tree: &mut Tree, dir: &Path, rel: &Path) -> Result<()> {
    for name in sorted_names(dir)? {
        let path = dir.join(&name);
        let r = rel.join(&name);
        let md = std::fs::symlink_metadata(&path).map_err(io_err(&path))?;
        let e = Entry::of(&path, &md)?;
        let is_dir = e.is_dir();
        tree.insert(r.clone(), e);
        if is_dir {
            read_tree(tree, &path, &r)?;
        }
    }
    Ok(())
}

/// Collects changes; [`Changes::finish`] drops what den made itself, adds the parents, sorts
/// and removes duplicates.
struct Changes<'a> {
    image: &'a Tree,
    out: BTreeMap<PathBuf, ChangeKind>,
    /// Paths den itself makes in every container (mount points: `/etc/hosts`, `/proc`, ...)
    /// relative, with everything below them: docker keeps these in an "init" layer under the
    /// container's, so its `diff` never shows them; den's are in the writable layer.
    own: &'a [&'a str],
}

impl Changes<'_> {
    fn add(&mut self, rel: &Path, kind: ChangeKind) {
        self.out.insert(rel.to_path_buf(), kind);
    }

    /// Added or changed, as the image has the path or not.
    fn present(&mut self, rel: &Path) {
        let kind = if self.image.contains_key(rel) {
            ChangeKind::Changed
        } else {
            ChangeKind::Added
        };
        self.add(rel, kind);
    }

    /// The image's children of `rel` that `keep` does not have are deleted.
    fn hidden_children(&mut self, rel: &Path, keep: &dyn Fn(&Path) -> bool) {
        let gone: Vec<PathBuf> = self
            .image
            .keys()
            .filter(|p| p.parent() == Some(rel) && !keep(p))
            .cloned()
            .collect();
        for p in gone {
            self.add(&p, ChangeKind::Deleted);
        }
    }

    fn finish(mut self) -> Vec<Change> {
        let own: Vec<&Path> = self.own.iter().map(Path::new).collect();
        let is_own = |p: &Path| own.iter().any(|o| p.starts_with(o));
        let own_or_above = |p: &Path| own.iter().any(|o| p.starts_with(o) || o.starts_with(p));
        // A directory above den's own paths (`/etc`, copied up for `/etc/hosts`) is dropped
        // too, unless something else changed below it.
        let above_own = |p: &Path, out: &BTreeMap<PathBuf, ChangeKind>| {
            own.iter().any(|o| o.starts_with(p) && o != &p)
                && !out
                    .keys()
                    .any(|q| q != p && q.starts_with(p) && !own_or_above(q))
        };
        let before = self.out.clone();
        self.out.retain(|p, _| !is_own(p) && !above_own(p, &before));
        let paths: Vec<PathBuf> = self.out.keys().cloned().collect();
        for p in paths {
            for a in p.ancestors().skip(1) {
                if a.as_os_str().is_empty() || self.out.contains_key(a) {
                    continue;
                }
                if self.image.contains_key(a) {
                    self.out.insert(a.to_path_buf(), ChangeKind::Changed);
                }
            }
        }
        self.out
            .into_iter()
            .map(|(p, kind)| Change {
                path: format!("/{}", p.display()),
                kind,
            })
            .collect()
    }
}

/// Changes of a writable layer `upper` (overlay or fuse-overlayfs) over `layers`.
/// `own`: the paths den makes in every container, relative (see [`Changes`]).
pub fn of_upper(upper: &Path, layers: &[PathBuf], own: &[&str]) -> Result<Vec<Change>> {
    let image = image_tree(layers)?;
    let mut c = Changes {
        image: &image,
        out: BTreeMap::new(),
        own,
    };
    walk_upper(&mut c, upper, Path::new(""))?;
    Ok(c.finish())
}

fn walk_upper(c: &mut Changes<'_>, dir: &Path, rel: &Path) -> Result<()> {
    let names = sorted_names(dir)?;
    for name in &names {
        let path = dir.join(name);
        let r = rel.join(name);
        let bytes = name.as_bytes();
        // fuse-overlayfs, where it cannot make a 0/0 device, writes `.wh.NAME` files.
        if bytes == b".wh..wh..opq" {
            continue;
        }
        if let Some(hidden) = bytes.strip_prefix(b".wh.") {
            let gone = rel.join(std::ffi::OsStr::from_bytes(hidden));
            if c.image.contains_key(&gone) {
                c.add(&gone, ChangeKind::Deleted);
            }
            continue;
        }
        let md = std::fs::symlink_metadata(&path).map_err(io_err(&path))?;
        if crate::unpack::is_whiteout(&md) {
            if c.image.contains_key(&r) {
                c.add(&r, ChangeKind::Deleted);
            }
            continue;
        }
        c.present(&r);
        if md.is_dir() {
            if crate::unpack::is_opaque(&path) || path.join(".wh..wh..opq").exists() {
                let here: std::collections::HashSet<_> = sorted_names(&path)?.into_iter().collect();
                c.hidden_children(&r, &|p: &Path| {
                    p.file_name().is_some_and(|n| here.contains(n))
                });
            }
            walk_upper(c, &path, &r)?;
        }
    }
    Ok(())
}

/// Changes of a vfs container's copy `rootfs` against `layers`.
pub fn of_copy(rootfs: &Path, layers: &[PathBuf], own: &[&str]) -> Result<Vec<Change>> {
    let image = image_tree(layers)?;
    let mut now = Tree::new();
    read_tree(&mut now, rootfs, Path::new(""))?;
    let mut c = Changes {
        image: &image,
        out: BTreeMap::new(),
        own,
    };
    for (p, e) in &now {
        match image.get(p) {
            None => c.add(p, ChangeKind::Added),
            Some(old) if old != e => c.add(p, ChangeKind::Changed),
            Some(_) => {}
        }
    }
    for p in image.keys() {
        // One line for a deleted directory, not one per file below it.
        let parent_gone = p
            .parent()
            .is_some_and(|d| !d.as_os_str().is_empty() && !now.contains_key(d));
        if !now.contains_key(p) && !parent_gone {
            c.add(p, ChangeKind::Deleted);
        }
    }
    Ok(c.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whiteout(p: &Path) {
        nix::sys::stat::mknod(
            p,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
    }

    fn lines(c: &[Change]) -> Vec<String> {
        c.iter()
            .map(|c| format!("{} {}", c.kind.letter(), c.path))
            .collect()
    }

    /// An image of two layers: /etc/{a,b}, /opq/old, /gone/x, /keep; the second deletes /etc/b.
    fn image(t: &Path) -> Vec<PathBuf> {
        let (l1, l2) = (t.join("l1"), t.join("l2"));
        for d in ["etc", "opq", "gone"] {
            std::fs::create_dir_all(l1.join(d)).unwrap();
        }
        std::fs::write(l1.join("etc/a"), b"a").unwrap();
        std::fs::write(l1.join("etc/b"), b"b").unwrap();
        std::fs::write(l1.join("opq/old"), b"o").unwrap();
        std::fs::write(l1.join("gone/x"), b"x").unwrap();
        std::fs::write(l1.join("keep"), b"k").unwrap();
        std::fs::create_dir_all(l2.join("etc")).unwrap();
        whiteout(&l2.join("etc/b"));
        vec![l1, l2]
    }

    #[test]
    fn upper_layer_changes() {
        let t = tempfile::tempdir().unwrap();
        let layers = image(t.path());
        let up = t.path().join("upper");
        std::fs::create_dir_all(up.join("etc")).unwrap();
        std::fs::write(up.join("etc/a"), b"changed").unwrap();
        std::fs::write(up.join("etc/b"), b"back").unwrap(); // deleted by the image: added
        std::fs::create_dir_all(up.join("new/deep")).unwrap();
        std::fs::write(up.join("new/deep/f"), b"f").unwrap();
        whiteout(&up.join("gone"));
        whiteout(&up.join("never")); // not in the image: no line
        std::fs::create_dir(up.join("opq")).unwrap();
        crate::sys::lsetxattr(&up.join("opq"), crate::unpack::OPAQUE_XATTR, b"y").unwrap();
        std::fs::write(up.join("opq/new"), b"n").unwrap();
        std::fs::write(up.join(".wh.keep"), b"").unwrap(); // fuse-overlayfs's form
        std::fs::create_dir_all(up.join("run/den")).unwrap(); // den's own, not a change
        std::fs::write(up.join("run/den/hosts"), b"").unwrap();
        assert_eq!(
            lines(&of_upper(&up, &layers, &["run/den/hosts"]).unwrap()),
            [
                "C /etc",
                "C /etc/a",
                "A /etc/b",
                "D /gone",
                "D /keep",
                "A /new",
                "A /new/deep",
                "A /new/deep/f",
                "C /opq",
                "A /opq/new",
                "D /opq/old",
            ]
        );
    }

    #[test]
    fn copied_tree_changes() {
        let t = tempfile::tempdir().unwrap();
        let layers = image(t.path());
        let root = t.path().join("rootfs");
        std::fs::create_dir(&root).unwrap();
        for l in &layers {
            crate::store::driver::copy_layer(l, &root).unwrap();
        }
        std::fs::write(root.join("etc/hosts"), b"").unwrap();
        assert!(of_copy(&root, &layers, &["etc/hosts"]).unwrap().is_empty());
        std::fs::write(root.join("etc/a"), b"changed").unwrap();
        std::fs::remove_dir_all(root.join("gone")).unwrap();
        std::fs::create_dir_all(root.join("new/deep")).unwrap();
        std::fs::remove_file(root.join("keep")).unwrap();
        assert_eq!(
            lines(&of_copy(&root, &layers, &["etc/hosts"]).unwrap()),
            [
                "C /etc",
                "C /etc/a",
                "D /gone",
                "D /keep",
                "A /new",
                "A /new/deep"
            ]
        );
    }
}
