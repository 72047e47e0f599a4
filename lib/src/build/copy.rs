//! COPY and ADD: what they copy, as a digest for the cache key (`sources_digest`),
//! and the copy itself into a mounted root whose writable layer becomes the new layer
//! (`copy`).
//!
//! Sources come from the build context (patterns matched inside it, `.dockerignore` applied,
//! `..` refused), from another stage or image (`--from`, mounted read-only beside), from a
//! heredoc, or for ADD from a URL or a local archive (unpacked). Writes go through
//! [`super::step`], which never follows the image's symlinks out of the root; an archive is
//! unpacked by `cp`'s writer ([`crate::copy::untar_in`]) with the same rule.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::path::{Path, PathBuf};

use super::Result;
use super::cache::Key;
use super::exec::Build;
use super::instruction::Scope;
use super::state::State;
use super::step::{self, StepRoot};
use super::syntax::Node;
use super::{BuildError, expand};
use crate::store::LayerRef;
use crate::unpack::scope;

/// COPY's and ADD's flags, read.
struct Flags {
    attrs: step::Attrs,
    from: Option<String>,
    chown: Option<String>,
}

/// Where a COPY writes: the mounted root, the destination, and whether it is a directory.
struct Dest<'a> {
    root: &'a Path,
    abs: PathBuf,
    is_dir: bool,
    attrs: step::Attrs,
}

impl Dest<'_> {
    /// Where a source named `name` goes: its directory in the root, open, and its name there.
    fn into(&self, name: &OsStr) -> Result<(step::Dir, OsString)> {
        let path = if self.is_dir {
            self.abs.join(name)
        } else {
            self.abs.clone()
        };
        step::target_inside(self.root, &path, self.attrs)
    }
}

impl Build<'_> {
    /// The digest of what a COPY/ADD would copy: names, modes and contents (not times); for
    /// `--from`, the other stage's key or the image's id.
    pub(super) fn sources_digest(&self, node: &Node, srcs: &[String]) -> Result<String> {
        let mut key = Key::new("sources");
        if let Some(from) = node.flag("from") {
            // Another stage's or image's files: its key (or id) decides them.
            key.add(&self.source_key(node, from)?);
            for s in srcs {
                key.add(s);
            }
            return Ok(key.finish());
        }
        let mut links = HashMap::new();
        for s in srcs {
            if heredoc(node, s).is_some() {
                continue;
            }
            if is_url(s) {
                // Fetched to learn its content, as docker does on every build.
                key.add(s);
                let bytes =
                    fetch(s).map_err(|m| self.err(node, &m, "check the URL and the network"))?;
                key.add_bytes(&bytes);
                continue;
            }
            for (rel, path) in self.matches(node, s)? {
                let keep = |r: &str, d: bool| self.ignore.keeps(r, d);
                hash_tree(&mut key, &path, &rel, &keep, &mut links)?;
            }
        }
        Ok(key.finish())
    }

    pub(super) fn source_key(&self, node: &Node, from: &str) -> Result<String> {
        if let Some(stage) = self.built_stage(from) {
            return Ok(stage.key.clone());
        }
        let image = self
            .host
            .find_or_pull(from, self.opts.platform.as_deref())
            .map_err(|e| {
                self.err(
                    node,
                    &crate::error::chain(&e),
                    "name an earlier stage or an image",
                )
            })?;
        Ok(format!("image:{}", image.id))
    }

    /// Context paths a source pattern names, relative and absolute, sorted; ignored ones left out.
    fn matches(&self, node: &Node, src: &str) -> Result<Vec<(String, PathBuf)>> {
        let ctxdir = self.opts.context.as_ref().ok_or_else(|| {
            self.err(
                node,
                "there is no build context to copy from",
                "build with a context directory: den build -f - DIR",
            )
        })?;
        let clean: Vec<&str> = src
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        if clean.contains(&"..") {
            return Err(self.err(
                node,
                &format!("{src} is outside the build context"),
                "copy files from inside the context directory",
            ));
        }
        let rel = clean.join("/");
        let mut out = if rel.contains(['*', '?', '[']) {
            self.glob(node, ctxdir, src, &rel)?
        } else {
            let p = if rel.is_empty() {
                ctxdir.clone()
            } else {
                ctxdir.join(&rel)
            };
            let found = std::fs::symlink_metadata(&p).is_ok()
                && (rel.is_empty() || !self.ignore.excluded(&rel));
            if found { vec![(rel, p)] } else { Vec::new() }
        };
        if out.is_empty() {
            return Err(self.err(
                node,
                &format!("{src}: no such file or directory in the build context"),
                "check the path (relative to the context directory) and .dockerignore",
            ));
        }
        out.sort();
        Ok(out)
    }

    /// The context paths a pattern (`rel`, cleaned) matches, ignored ones left out.
    fn glob(
        &self,
        node: &Node,
        ctxdir: &Path,
        src: &str,
        rel: &str,
    ) -> Result<Vec<(String, PathBuf)>> {
        let pattern = format!(
            "{}/{}",
            glob::Pattern::escape(&ctxdir.to_string_lossy()),
            rel
        );
        let paths = glob::glob(&pattern)
            .map_err(|e| self.err(node, &format!("bad pattern {src}: {e}"), "fix the pattern"))?;
        let mut out = Vec::new();
        for p in paths.flatten() {
            let r = p
                .strip_prefix(ctxdir)
                .unwrap_or(&p)
                .to_string_lossy()
                .into_owned();
            if !self.ignore.excluded(&r) {
                out.push((r, p));
            }
        }
        Ok(out)
    }

    /// COPY/ADD `srcs` to `dest` on `state`; returns the new layer.
    pub(super) fn copy(
        &self,
        state: &State,
        node: &Node,
        add: bool,
        srcs: &[String],
        dest: &str,
    ) -> Result<LayerRef> {
        let scope = self.scope(node, state);
        let Flags {
            mut attrs,
            from,
            chown,
        } = self.copy_flags(&scope)?;
        // docker cleans the destination lexically (filepath.Join) before resolving it.
        let abs = PathBuf::from(if dest.starts_with('/') {
            crate::volume::clean_path(dest)
        } else {
            crate::volume::clean_path(&format!("{}/{}", state.workdir(), dest))
        });
        let mut root = StepRoot::mount(self.store, &state.diff_ids(), self.driver)?;
        if let Some(spec) = &chown {
            // Names are looked up in the root as it is, all layers merged.
            attrs.owner = self.owner(&root.merged, node, spec)?;
        }
        // --from: the other stage's or image's files, mounted read-only beside.
        let from_root = match &from {
            Some(f) => Some(self.mount_from(f)?),
            None => None,
        };
        let many = srcs.len() > 1 || srcs.iter().any(|s| s.contains(['*', '?', '[']));
        let host_dest = scope::resolve(&root.merged, &abs, true)
            .map_err(|e| self.err(node, &e.to_string(), "check the destination"))?;
        let exists_as_dir = std::fs::symlink_metadata(&host_dest).is_ok_and(|m| m.is_dir());
        if many && !dest.ends_with('/') && !exists_as_dir {
            return Err(self.err(
                node,
                &format!("with several sources the destination {dest} must end with /"),
                "add a / to the destination",
            ));
        }
        let to = Dest {
            root: &root.merged,
            abs,
            is_dir: dest.ends_with('/') || many || exists_as_dir,
            attrs,
        };
        let mut links = step::Links::new(&root.merged)?;
        for s in srcs {
            let from = from_root
                .as_ref()
                .map(|r| (r, from.as_deref().unwrap_or("")));
            self.copy_source(&scope, add, s, from, &to, &mut links)?;
        }
        drop(links);
        drop(from_root);
        root.unmount();
        step::commit_upper(self.store, &root.upper(), root.driver())
    }

    /// `--from`, `--chown` and `--chmod` (expanded); `--link` and friends are accepted and
    /// change nothing here.
    fn copy_flags(&self, s: &Scope<'_>) -> Result<Flags> {
        let mut flags = Flags {
            attrs: step::Attrs::default(),
            from: None,
            chown: None,
        };
        for (k, v) in &s.node.flags {
            match k.as_str() {
                "from" => flags.from = Some(s.word(v)?),
                "chown" => flags.chown = Some(s.word(v)?),
                "chmod" => {
                    flags.attrs.mode = Some(u32::from_str_radix(&s.word(v)?, 8).map_err(|_| {
                        s.err(
                            &format!("--chmod={v} is not an octal mode"),
                            "write e.g. --chmod=755",
                        )
                    })?)
                }
                "link" | "parents" | "keep-git-dir" | "checksum" | "exclude" => {}
                other => {
                    return Err(s.err(
                        &format!("unknown flag --{other}"),
                        "COPY takes --from, --chown, --chmod and --link",
                    ));
                }
            }
        }
        Ok(flags)
    }

    /// The root of an earlier stage or of an image, mounted read-only.
    pub(super) fn mount_from(&self, from: &str) -> Result<StepRoot> {
        let layers = match self.built_stage(from) {
            Some(stage) => stage.diff_ids(),
            None => {
                let image = self
                    .host
                    .find_or_pull(from, self.opts.platform.as_deref())?;
                image.layers.iter().map(|l| l.diff_id.clone()).collect()
            }
        };
        StepRoot::mount(self.store, &layers, self.driver)
    }

    /// One source of a COPY/ADD: a heredoc, a URL (ADD), a path in `from` (a mounted stage or
    /// image, with its name for messages), or context paths.
    fn copy_source(
        &self,
        s: &Scope<'_>,
        add: bool,
        src: &str,
        from: Option<(&StepRoot, &str)>,
        to: &Dest<'_>,
        links: &mut step::Links,
    ) -> Result<()> {
        let node = s.node;
        if src.starts_with("<<")
            && let Some(h) = heredoc(node, src)
        {
            let (dir, name) = to.into(h.name.as_ref())?;
            let body = if h.expand {
                expand::text(&h.body, s.escape, &|n| s.state.lookup(n))
                    .map_err(|m| s.err(&m, "check the heredoc's variables"))?
            } else {
                h.body.clone()
            };
            return step::write_file(&dir, &name, body.as_bytes(), to.attrs, 0o644);
        }
        if add && is_url(src) {
            let base = src
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .filter(|b| scope::is_plain(b.as_ref()))
                .unwrap_or("download")
                .to_string();
            let (dir, name) = to.into(base.as_ref())?;
            let bytes = fetch(src).map_err(|m| s.err(&m, "check the URL and the network"))?;
            // docker gives a download mode 0600.
            return step::write_file(&dir, &name, &bytes, to.attrs, 0o600);
        }
        let sources: Vec<(String, PathBuf)> = match from {
            Some((fr, name)) => {
                let p = scope::resolve(&fr.merged, Path::new(src), true)
                    .map_err(|e| s.err(&e.to_string(), "check the path"))?;
                if std::fs::symlink_metadata(&p).is_err() {
                    return Err(s.err(
                        &format!("{src}: no such file or directory in {name}"),
                        "check the path in that stage or image",
                    ));
                }
                vec![(String::new(), p)]
            }
            None => self.matches(node, src)?,
        };
        let keep = |r: &str, d: bool| from.is_some() || self.ignore.keeps(r, d);
        for (rel, path) in sources {
            let is_dir = std::fs::metadata(&path).is_ok_and(|m| m.is_dir());
            if is_dir {
                let d = step::mkdir_inside(to.root, &to.abs, to.attrs)?;
                step::copy_dir_into(&path, &rel, &d, to.attrs, &keep, links)?;
            } else if add && from.is_none() && is_archive(&path) {
                let d = step::mkdir_inside(to.root, &to.abs, to.attrs)?;
                self.extract(node, &path, to.root, &d)?;
            } else {
                let (dir, name) = to.into(path.file_name().unwrap_or_default())?;
                step::copy_tree(&path, &rel, &dir, &name, to.attrs, &keep, links)?;
            }
        }
        Ok(())
    }

    /// ADD of a local archive: unpacked into the directory `dest` of the root by `cp`'s writer
    /// ([`crate::copy::untar_in`]), which resolves the archive's paths inside the root and
    /// writes through descriptors, with docker's untar rules; the archive's owners are kept.
    fn extract(&self, node: &Node, archive: &Path, root: &Path, dest: &step::Dir) -> Result<()> {
        let mut f = std::fs::File::open(archive).map_err(|e| BuildError::Read {
            path: archive.display().to_string(),
            source: e,
        })?;
        let dest = dest.path();
        crate::copy::untar_in(root, &dest.to_string_lossy(), &mut f).map_err(|e| {
            let hint =
                crate::error::Diagnose::hint(&e).unwrap_or_else(|| "check the archive".into());
            self.err(
                node,
                &format!("{}: {}", archive.display(), crate::error::chain(&e)),
                &hint,
            )
        })
    }

    /// `--chown=user[:group]`: numbers, or names from the image's /etc/passwd and /etc/group,
    /// read in the mounted root `root` (see [`crate::unpack::scope::read_small`]).
    fn owner(&self, root: &Path, node: &Node, spec: &str) -> Result<(u32, u32)> {
        let (u, g) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        let Some((uid, primary)) = self.id_entry(root, node, "/etc/passwd", u)? else {
            return Err(self.err(
                node,
                &format!("user {u:?} is not in the image's /etc/passwd"),
                "use a numeric uid:gid",
            ));
        };
        let gid = match g {
            Some(g) => match self.id_entry(root, node, "/etc/group", g)? {
                Some((gid, _)) => gid,
                None => {
                    return Err(self.err(
                        node,
                        &format!("group {g:?} is not in the image's /etc/group"),
                        "use a numeric gid",
                    ));
                }
            },
            None if u.parse::<u32>().is_ok() => uid,
            None => primary,
        };
        Ok((uid, gid))
    }

    /// A number as itself, else `name`'s third and fourth fields in `file` of the root.
    fn id_entry(
        &self,
        root: &Path,
        node: &Node,
        file: &str,
        name: &str,
    ) -> Result<Option<(u32, u32)>> {
        if let Ok(n) = name.parse::<u32>() {
            return Ok(Some((n, n)));
        }
        let bytes = scope::read_small(root, file, scope::SMALL_FILE_CAP)
            .map_err(|e| {
                let hint = crate::error::Diagnose::hint(&e).unwrap_or_default();
                self.err(node, &e.to_string(), &hint)
            })?
            .unwrap_or_default();
        Ok(String::from_utf8_lossy(&bytes).lines().find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.first() == Some(&name) && f.len() > 3)
                .then(|| (f[2].parse().unwrap_or(0), f[3].parse().unwrap_or(0)))
        }))
    }
}

/// The heredoc a source names (`<<EOF`, `<<-EOF`, `<<"EOF"`), if it is one of the node's.
fn heredoc<'n>(node: &'n Node, src: &str) -> Option<&'n super::syntax::Heredoc> {
    let name = src
        .trim_start_matches("<<")
        .trim_start_matches('-')
        .trim_matches(|c| c == '"' || c == '\'');
    node.heredocs.iter().find(|h| h.name == name)
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// Hash a context tree for the cache: relative names, kinds, modes, contents, and which names
/// are hard links to a file hashed before (`links`: (device, inode) to its first name), since
/// COPY keeps them.
fn hash_tree(
    key: &mut Key,
    path: &Path,
    rel: &str,
    keep: &dyn Fn(&str, bool) -> bool,
    links: &mut HashMap<(u64, u64), String>,
) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let read_err = |e| BuildError::Read {
        path: path.display().to_string(),
        source: e,
    };
    let md = std::fs::symlink_metadata(path).map_err(read_err)?;
    key.add(rel);
    key.add(&format!("{:o}", md.mode()));
    if md.is_dir() {
        for (r, p) in step::kept_children(path, rel, keep).map_err(read_err)? {
            hash_tree(key, &p, &r, keep, links)?;
        }
    } else if md.file_type().is_symlink() {
        let t = std::fs::read_link(path).unwrap_or_default();
        key.add(&t.to_string_lossy());
    } else if md.is_file() {
        if md.nlink() > 1 {
            match links.entry((md.dev(), md.ino())) {
                std::collections::hash_map::Entry::Occupied(first) => {
                    key.add(&format!("hard link to {}", first.get()));
                    return Ok(());
                }
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(rel.to_string());
                }
            }
        }
        let mut f = std::fs::File::open(path).map_err(read_err)?;
        let mut buf = vec![0u8; 1 << 16];
        key.add(&md.len().to_string());
        loop {
            let n = f.read(&mut buf).map_err(read_err)?;
            if n == 0 {
                break;
            }
            key.add_bytes(&buf[..n]);
        }
    }
    Ok(())
}

/// ADD's local archives: tar, gzip- or zstd-compressed tar (by their first bytes).
fn is_archive(path: &Path) -> bool {
    let mut head = [0u8; 262];
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let n = f.read(&mut head).unwrap_or(0);
    head[..n].starts_with(&[0x1f, 0x8b])
        || head[..n].starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || (n >= 262 && &head[257..262] == b"ustar")
}

/// ADD of a URL: its bytes.
fn fetch(url: &str) -> std::result::Result<Vec<u8>, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let resp = reqwest::get(url)
            .await
            .map_err(|e| format!("{url}: {}", crate::error::chain(&e)))?;
        if !resp.status().is_success() {
            return Err(format!("{url}: HTTP {}", resp.status()));
        }
        resp.bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(|e| e.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(dir: &Path, rel: &str) -> String {
        let mut key = Key::new("sources");
        hash_tree(
            &mut key,
            &dir.join(rel),
            rel,
            &|_, _| true,
            &mut HashMap::new(),
        )
        .unwrap();
        key.finish()
    }

    #[test]
    fn the_sources_digest_follows_content_and_hard_links_not_times() {
        let d = std::env::temp_dir().join(format!("den-copy-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("src")).unwrap();
        std::fs::write(d.join("src/a"), "one").unwrap();
        std::fs::write(d.join("src/b"), "two").unwrap();
        let first = digest(&d, "src");
        let f = std::fs::File::options()
            .write(true)
            .open(d.join("src/a"))
            .unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(digest(&d, "src"), first, "a time is no input");
        std::fs::write(d.join("src/a"), "ONE").unwrap();
        let changed = digest(&d, "src");
        assert_ne!(changed, first);
        std::fs::remove_file(d.join("src/b")).unwrap();
        std::fs::write(d.join("src/b"), "ONE").unwrap();
        let copy = digest(&d, "src");
        std::fs::remove_file(d.join("src/b")).unwrap();
        std::fs::hard_link(d.join("src/a"), d.join("src/b")).unwrap();
        assert_ne!(digest(&d, "src"), copy, "a hard link is not a copy");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn heredoc_sources_and_urls_are_told_apart() {
        let df =
            crate::build::syntax::parse("Dockerfile", "COPY <<-\"EOF\" /x\nhi\nEOF\n").unwrap();
        let node = &df.nodes[0];
        assert_eq!(heredoc(node, "<<-\"EOF\"").unwrap().body, "hi\n");
        assert!(heredoc(node, "EOF2").is_none());
        assert!(is_url("https://example.com/x") && !is_url("file.txt"));
    }
}
