//! `build --output` (`-o`): where a build's result goes besides the store, buildx's exporters
//! that make sense without a daemon.
//!
//! - `type=local,dest=DIR` (or `-o DIR`): the final stage's filesystem, written into DIR;
//! - `type=tar,dest=FILE` (or `-o -`, `dest=-`: stdout): the same filesystem as a tar;
//! - `type=oci,dest=FILE`: the image as an OCI archive, what `den save --format oci-archive`
//!   writes; `type=docker,dest=FILE` a docker archive, what `den save` writes (without `dest`,
//!   buildx loads the image into docker: den has already stored it).
//!
//! The image is stored (and tagged) as well, as podman's `build --output` does: den's build
//! works in its store, and the steps stay cached for the next build. (buildx with a
//! docker-container builder stores nothing; with docker's own driver it depends on the builder.)
//!
//! **DIR is written as the user, never through a symlink.** The layers are applied one by one
//! with the store's layer copy ([`crate::store::driver::copy_layer_as`]: whiteouts delete,
//! opaque directories empty) into DIR through the shared tree writer, which opens every
//! directory below DIR with `O_NOFOLLOW` and replaces a symlink at an entry's name rather
//! than following it: an image's `/etc -> /home/you` link is written as a link, never into.
//! Files get the user's own ids, as buildx's local exporter gives them (an image's uid 1000
//! would otherwise become a subordinate id the user cannot remove). A tar is made from such a
//! tree staged in the store with the image's own owners, so it carries them as `export` does.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use super::{BuildError, Result};
use crate::image::Reference;
use crate::store::{ImageRecord, Store, StoreError};

/// Where a `--output` tar or archive goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    Stdout,
    File(PathBuf),
}

/// A `--output` as buildx spells it, read into a type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// The final stage's filesystem in this directory.
    Local(PathBuf),
    /// The final stage's filesystem as a tar.
    Tar(Dest),
    /// The image as an OCI archive.
    Oci(Dest),
    /// The image as a docker archive (`docker load`'s input); None: only the store, where den
    /// puts every image it builds (buildx's `type=docker` without `dest` loads it).
    Docker(Option<Dest>),
}

impl Output {
    /// `type=local,dest=DIR`, `type=tar[,dest=FILE|-]`, `type=oci[,dest=FILE|-]`, or buildx's
    /// shorthands: `-` (a tar on stdout) and a bare path (a local directory).
    pub fn parse(spec: &str) -> Result<Output> {
        let bad = |reason: &str| BuildError::BadOutput {
            spec: spec.to_string(),
            reason: reason.to_string(),
        };
        if spec.is_empty() {
            return Err(bad("it is empty"));
        }
        if spec == "-" {
            return Ok(Output::Tar(Dest::Stdout));
        }
        if !spec.contains('=') {
            return Ok(Output::Local(PathBuf::from(spec)));
        }
        let (mut kind, mut dest, mut other) = (None, None, None);
        for part in spec.split(',') {
            match part.split_once('=') {
                Some(("type", v)) => kind = Some(v),
                Some(("dest", v)) if !v.is_empty() => dest = Some(v),
                Some((k, _)) if !k.is_empty() && k != "dest" => other = other.or(Some(k)),
                _ => return Err(bad(&format!("{part:?} is not KEY=VALUE"))),
            }
        }
        if let Some(k) = other
            && !matches!(kind, Some("image" | "registry" | "cacheonly"))
        {
            return Err(bad(&format!(
                "den's outputs take type= and dest=, not {k}="
            )));
        }
        let file = |d: Option<&str>| match d {
            None | Some("-") => Dest::Stdout,
            Some(f) => Dest::File(PathBuf::from(f)),
        };
        match kind {
            Some("local") => match dest {
                Some("-") | None => Err(bad("type=local needs dest=DIR")),
                Some(d) => Ok(Output::Local(PathBuf::from(d))),
            },
            Some("tar") => Ok(Output::Tar(file(dest))),
            Some("oci") => Ok(Output::Oci(file(dest))),
            Some("docker") => Ok(Output::Docker(dest.map(|d| file(Some(d))))),
            Some(other @ ("image" | "registry" | "cacheonly")) => Err(bad(&format!(
                "type={other} is buildx's; den stores every image it builds (push it with den push)"
            ))),
            Some(other) => Err(bad(&format!("den has no output type {other:?}"))),
            None => Err(bad("it names no type=")),
        }
    }

    /// Whether the output goes to stdout (then the image id does not).
    pub fn to_stdout(&self) -> bool {
        matches!(
            self,
            Output::Tar(Dest::Stdout)
                | Output::Oci(Dest::Stdout)
                | Output::Docker(Some(Dest::Stdout))
        )
    }

    /// Checked before anything is built: a tar is not written onto a terminal (as `save`), and
    /// relative paths are made absolute while the working directory is the user's.
    pub fn check(self) -> Result<Output> {
        if self.to_stdout() && std::io::stdout().is_terminal() {
            return Err(BuildError::OutputTerminal);
        }
        let abs = |p: PathBuf| match std::path::absolute(&p) {
            Ok(a) => a,
            Err(_) => p,
        };
        Ok(match self {
            Output::Local(d) => Output::Local(abs(d)),
            Output::Tar(Dest::File(f)) => Output::Tar(Dest::File(abs(f))),
            Output::Oci(Dest::File(f)) => Output::Oci(Dest::File(abs(f))),
            Output::Docker(Some(Dest::File(f))) => Output::Docker(Some(Dest::File(abs(f)))),
            o => o,
        })
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |source| {
        BuildError::Store(StoreError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Write the built `image` where `output` says; `tags` name it in an OCI archive.
pub fn write(
    store: &Store,
    image: &ImageRecord,
    tags: &[Reference],
    output: &Output,
) -> Result<()> {
    match output {
        Output::Local(dir) => {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
            apply_layers(store, image, dir, crate::fs::Owners::Unchanged)
        }
        Output::Tar(dest) => {
            let staging = store.staging_dir("output")?;
            let root = staging.path.join("rootfs");
            std::fs::create_dir(&root).map_err(io(&root))?;
            let res = apply_layers(store, image, &root, crate::fs::Owners::Keep).and_then(|()| {
                to_dest(dest, &mut |out| {
                    crate::build::layer::write_rootfs_tar(&root, out).map(|_| ())
                })
            });
            let _ = crate::fs::remove_tree(&staging.path);
            res
        }
        Output::Docker(None) => Ok(()),
        Output::Oci(dest) | Output::Docker(Some(dest)) => {
            let images = [crate::archive::SaveImage {
                record: image.clone(),
                names: tags.to_vec(),
            }];
            let format = match output {
                Output::Oci(_) => crate::archive::Format::Oci,
                _ => crate::archive::Format::Docker,
            };
            to_dest(dest, &mut |out| {
                crate::archive::save(store, &images, format, out, "the --output archive")
                    .map_err(std::io::Error::other)
            })
        }
    }
}

/// The image's layers, bottom first, applied onto `dir`.
fn apply_layers(
    store: &Store,
    image: &ImageRecord,
    dir: &Path,
    owners: crate::fs::Owners,
) -> Result<()> {
    for l in &image.layers {
        crate::store::driver::copy_layer_as(&store.layer_diff(&l.diff_id), dir, owners)?;
    }
    Ok(())
}

/// Run `write` onto stdout, or onto a file that appears only whole (a temporary name beside
/// it, renamed when done).
fn to_dest(
    dest: &Dest,
    write: &mut dyn FnMut(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    match dest {
        Dest::Stdout => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let shown = Path::new("stdout");
            write(&mut out).map_err(io(shown))?;
            out.flush().map_err(io(shown))
        }
        Dest::File(path) => {
            let dir = path.parent().unwrap_or(Path::new("/"));
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let tmp = dir.join(format!(
                ".{name}.den-output-{}-{}",
                std::process::id(),
                crate::fs::random_hex(4)
            ));
            let res = (|| {
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&tmp)?;
                let mut out = std::io::BufWriter::new(file);
                write(&mut out)?;
                out.flush()?;
                std::fs::rename(&tmp, path)
            })();
            if res.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            res.map_err(io(path))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_read_as_buildx_spells_them() {
        let p = |s: &str| Output::parse(s).unwrap();
        assert_eq!(p("out"), Output::Local("out".into()));
        assert_eq!(p("-"), Output::Tar(Dest::Stdout));
        assert_eq!(p("type=local,dest=d"), Output::Local("d".into()));
        assert_eq!(p("dest=d,type=local"), Output::Local("d".into()));
        assert_eq!(
            p("type=tar,dest=f.tar"),
            Output::Tar(Dest::File("f.tar".into()))
        );
        assert_eq!(p("type=tar,dest=-"), Output::Tar(Dest::Stdout));
        assert_eq!(p("type=tar"), Output::Tar(Dest::Stdout));
        assert_eq!(
            p("type=oci,dest=i.tar"),
            Output::Oci(Dest::File("i.tar".into()))
        );
        assert!(p("type=oci").to_stdout());
        assert_eq!(p("type=docker"), Output::Docker(None));
        assert_eq!(
            p("type=docker,dest=d.tar"),
            Output::Docker(Some(Dest::File("d.tar".into())))
        );
        assert!(!p("type=local,dest=x").to_stdout());
    }

    #[test]
    fn outputs_den_lacks_say_why() {
        let e = |s: &str| Output::parse(s).unwrap_err().to_string();
        assert!(
            e("type=local").contains("needs dest=DIR"),
            "{}",
            e("type=local")
        );
        assert!(e("type=registry,ref=x").contains("den push"));
        assert!(e("type=zip,dest=x").contains("no output type \"zip\""));
        assert!(e("type=tar,compression=gzip").contains("not compression="));
        assert!(e("dest=x").contains("no type="));
        assert!(e("").contains("empty"));
        assert!(e("type=tar,x").contains("not KEY=VALUE"));
    }
}
