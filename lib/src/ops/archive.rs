//! `save` and `load`: images to and from archives (docker's `docker save` tar, or an OCI layout
//! in a tar), on stdout and stdin or in files. The formats and the checks are
//! [`crate::archive`]'s; this is which images, which stream, and what is printed.

use std::io::{IsTerminal, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use super::Ctx;
use super::{Error, Result};
use crate::archive::{self, ArchiveError, Format, Loaded, SaveImage};
use crate::image::Reference;
use crate::store::{Event, ImageRecord, Store};

const CHUNK: usize = 1 << 20;

#[derive(Debug, Clone, Default)]
pub struct SaveOptions {
    pub images: Vec<String>,
    /// Write here instead of stdout (through a temporary file renamed when complete).
    pub output: Option<PathBuf>,
    /// `docker-archive` (the default) or `oci-archive`.
    pub format: Option<String>,
}

pub fn save(ctx: &Ctx, opts: &SaveOptions) -> Result<()> {
    let format = match &opts.format {
        Some(f) => Format::parse(f)?,
        None => Format::Docker,
    };
    let stdout = std::io::stdout();
    // docker refuses before it looks at the images.
    if opts.output.is_none() && stdout.is_terminal() {
        return Err(ArchiveError::StdoutTerminal.into());
    }
    let store = ctx.store()?;
    let images = resolve(&store, &opts.images)?;
    let saved = match &opts.output {
        Some(path) => save_to_file(&store, &images, format, path),
        None => {
            // A pipe of 1 MiB instead of 64 KiB: fewer wake-ups of the reader.
            let _ = crate::sys::set_pipe_size(stdout.as_fd(), CHUNK);
            let mut out = std::io::BufWriter::with_capacity(CHUNK, stdout.lock());
            match archive::save(&store, &images, format, &mut out, "stdout") {
                // The reader stopped (`den save x | den load` refused the archive); it has said
                // why.
                Err(ArchiveError::Write { source, .. })
                    if source.kind() == std::io::ErrorKind::BrokenPipe =>
                {
                    Err(crate::error::Reported(1).into())
                }
                other => Ok(other?),
            }
        }
    };
    if saved.is_ok() {
        for name in &opts.images {
            store.record_event(&Event::new("image", "save", name).with("name", name.clone()));
        }
    }
    saved
}

/// Write the archive next to `path` under a temporary name and rename it into place when it is
/// complete, so `path` never holds half an archive.
fn save_to_file(store: &Store, images: &[SaveImage], format: Format, path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "archive".into());
    let tmp = dir.join(format!(
        ".{name}.den-save-{}-{}",
        std::process::id(),
        crate::fs::random_hex(4)
    ));
    let write_err = |source| ArchiveError::Write {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(write_err)?;
    let mut out = std::io::BufWriter::with_capacity(CHUNK, file);
    let res = archive::save(store, images, format, &mut out, &path.display().to_string())
        .map_err(Error::from)
        .and_then(|()| {
            out.flush().map_err(write_err)?;
            std::fs::rename(&tmp, path).map_err(write_err)?;
            Ok(())
        });
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// The images `inputs` name, each once, with the names to record for them, as docker picks
/// them: `NAME:TAG` is that name, a bare `NAME` every tag of that repository, an id (or a
/// digest) the image without names.
pub fn resolve(store: &Store, inputs: &[String]) -> Result<Vec<SaveImage>> {
    let images = store.images()?;
    let mut out: Vec<SaveImage> = Vec::new();
    let mut add = |record: &ImageRecord, name: Option<Reference>| {
        let i = match out.iter().position(|s| s.record.id == record.id) {
            Some(i) => i,
            None => {
                out.push(SaveImage {
                    record: record.clone(),
                    names: Vec::new(),
                });
                out.len() - 1
            }
        };
        if let Some(n) = name
            && !out[i].names.contains(&n)
        {
            out[i].names.push(n);
        }
    };
    for input in inputs {
        if let Ok(r) = Reference::parse(input) {
            if r.digest().is_none() && name_only(input) {
                let repo = r.repo_name();
                let mut any = false;
                for img in &images {
                    for n in &img.names {
                        if n.rsplit_once(':').is_some_and(|(rp, _)| rp == repo)
                            && let Ok(named) = Reference::parse(n)
                        {
                            add(img, Some(named));
                            any = true;
                        }
                    }
                }
                if any {
                    continue;
                }
            } else if r.digest().is_none()
                && let Some(img) = images.iter().find(|i| i.names.contains(&r.canonical()))
            {
                add(img, Some(r));
                continue;
            }
        }
        let img = store.find_image(input)?;
        add(&img, None);
    }
    Ok(out)
}

/// Whether a reference as typed has neither a tag nor a digest (`busybox`, `host:5000/app`).
fn name_only(input: &str) -> bool {
    let last = input.rsplit('/').next().unwrap_or(input);
    !input.contains('@') && !last.contains(':')
}

#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Read this file instead of stdin.
    pub input: Option<PathBuf>,
}

/// Load an archive; the caller has entered den's user namespace (layer files keep their owners).
pub fn load(ctx: &Ctx, opts: &LoadOptions) -> Result<Vec<Loaded>> {
    let store = ctx.store()?;
    let loaded = load_from(&store, ctx, opts)?;
    for l in &loaded {
        let id = l.id.to_string();
        let name = l.names.first().map_or_else(
            || id.clone(),
            |n| crate::image::familiar_name(&n.canonical()),
        );
        store.record_event(&Event::new("image", "load", &id).with("name", name));
    }
    Ok(loaded)
}

fn load_from(store: &Store, ctx: &Ctx, opts: &LoadOptions) -> Result<Vec<Loaded>> {
    store.sweep();
    let unpack = crate::unpack::Options {
        owners: match ctx.idmap() {
            crate::userns::IdMap::Single { .. } => crate::unpack::Owners::Ignore,
            _ => crate::unpack::Owners::Keep,
        },
    };
    match &opts.input {
        Some(path) if is_squashfs(path) => Ok(vec![super::squash::load_file(ctx, path)?]),
        Some(path) => {
            let mut f = std::fs::File::open(path).map_err(|source| ArchiveError::Open {
                path: path.display().to_string(),
                source,
            })?;
            Ok(archive::load(
                store,
                &mut f,
                &path.display().to_string(),
                unpack,
            )?)
        }
        None => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                return Err(ArchiveError::StdinEmpty.into());
            }
            let _ = crate::sys::set_pipe_size(stdin.as_fd(), CHUNK);
            Ok(archive::load(store, &mut stdin.lock(), "stdin", unpack)?)
        }
    }
}

/// Whether `path` is a single-file image (it starts with SquashFS's magic), for `load -i`.
fn is_squashfs(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path).is_ok_and(|mut f| f.read_exact(&mut magic).is_ok())
        && &magic == b"hsqs"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_names_have_no_tag_or_digest() {
        assert!(name_only("busybox"));
        assert!(name_only("127.0.0.1:5000/library/busybox"));
        assert!(!name_only("busybox:1"));
        assert!(!name_only("127.0.0.1:5000/busybox:latest"));
        assert!(!name_only(&format!("busybox@sha256:{}", "a".repeat(64))));
    }
}
