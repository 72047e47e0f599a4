//! `image squash IMAGE -o FILE.sqsh`: write a store image as one SquashFS file, the single-file
//! image [`crate::image::sqsh`] describes (`image.json` and the flattened `rootfs/`). Must run
//! inside den's user namespace, so the file records the owners the container sees.
//!
//! The tree is the image's layers merged by a read-only kernel overlay (whiteouts applied, no
//! copy); where the store's driver is not kernel overlay, the layers are copied into a staging
//! directory in the store instead, as the vfs driver does.
//!
//! The file is written by `mksquashfs` (squashfs-tools), an external program, not by a crate:
//! the `backhand` crate writes SquashFS too, single-threaded and with a young writer, while
//! mksquashfs compresses on every core (a 1 GB image is written in seconds), is the format's
//! reference implementation maintained with the kernel's reader, and is what apptainer and enroot
//! use; the users who run `.sqsh` files have squashfs-tools and squashfuse installed anyway. It
//! writes to a temporary name in the target's directory, renamed over the target when complete:
//! a failed or killed squash leaves no partial file under the target's name.

use std::path::{Path, PathBuf};

use super::{Ctx, Result};
use crate::image::sqsh::{self, ImageJson, SqshError};
use crate::store::driver::{self, Driver};

/// `image squash`'s options.
#[derive(Debug, Clone)]
pub struct SquashOptions {
    pub image: String,
    pub output: PathBuf,
}

/// What was written.
#[derive(Debug, Clone)]
pub struct Squashed {
    pub output: PathBuf,
    pub size: u64,
}

/// Write `opts.image` to `opts.output`.
pub fn squash(ctx: &Ctx, opts: &SquashOptions) -> Result<Squashed> {
    check_output(&opts.output)?;
    let store = ctx.store()?;
    let _pin = store.lock_content_shared()?;
    let image = store.find_image(&opts.image)?;
    let config: serde_json::Value = serde_json::from_slice(&store.read_blob(&image.config)?)
        .map_err(|source| crate::image::ImageError::BadConfig {
            digest: image.config.to_string(),
            source,
        })?;
    let json = ImageJson {
        format: sqsh::FORMAT.into(),
        name: image
            .names
            .first()
            .map(|n| crate::image::familiar_name(n))
            .unwrap_or_default(),
        source: image.id.to_string(),
        created: image.created.unwrap_or(image.added),
        config,
    };
    let staging = store.staging_dir("squash")?;
    let rootfs = staging.path.join("rootfs");
    let empty = staging.path.join("empty");
    let meta = staging.path.join("image.json");
    for d in [&rootfs, &empty] {
        std::fs::create_dir(d).map_err(|source| SqshError::Write {
            path: d.clone(),
            source,
        })?;
    }
    let bytes = serde_json::to_vec_pretty(&json).map_err(|e| SqshError::Write {
        path: meta.clone(),
        source: e.into(),
    })?;
    std::fs::write(&meta, bytes).map_err(|source| SqshError::Write {
        path: meta.clone(),
        source,
    })?;
    let layers: Vec<crate::digest::Digest> =
        image.layers.iter().map(|l| l.diff_id.clone()).collect();
    let sys = crate::sys::LinuxSys;
    let chosen = driver::choose(&sys, &store, ctx.config.storage.driver).driver;
    let mounted = chosen == Driver::Overlay
        && driver::mount_layers_readonly(&sys, &store, &layers, &rootfs, &empty).is_ok();
    if !mounted {
        for l in &layers {
            driver::copy_layer(&store.layer_diff(l), &rootfs)?;
        }
    }
    let written = write_file(&rootfs, &meta, &opts.output);
    if mounted {
        let _ = crate::sys::Sys::umount(&sys, &rootfs, true);
    }
    let size = written?;
    Ok(Squashed {
        output: opts.output.clone(),
        size,
    })
}

/// `load -i FILE.sqsh`: the file's `rootfs/` as one layer (a tar of the tree read through
/// squashfuse, unpacked as `import` unpacks), its `image.json` configuration with that one diff
/// id, under the name it had. Must run inside den's user namespace (owners are kept).
pub fn load_file(ctx: &Ctx, path: &Path) -> Result<crate::archive::load::Loaded> {
    let json = sqsh::read_image_json(path)?;
    let name = match json.name.as_str() {
        "" => None,
        n => Some(crate::image::Reference::parse(n)?),
    };
    let store = ctx.store()?;
    store.sweep();
    let _pin = store.lock_content_shared()?;
    let staging = store.staging_dir("load")?;
    let mnt = staging.path.join("image");
    let tar_path = staging.path.join("layer.tar");
    let fm = crate::store::imagefile::mount_file(path, &mnt, &staging.path.join("squashfuse.log"))
        .map_err(crate::store::StoreError::from)?;
    let tarred = match fm.rootfs(path) {
        Ok(root) => write_tar(&root, &tar_path),
        Err(e) => Err(crate::store::StoreError::from(e).into()),
    };
    fm.release(&crate::sys::LinuxSys);
    let (diff_id, size) = tarred?;
    let incoming = store.incoming()?;
    if !store.has_layer(&diff_id) {
        let owners = match ctx.idmap() {
            crate::userns::IdMap::Single { .. } => crate::unpack::Owners::Ignore,
            _ => crate::unpack::Owners::Keep,
        };
        incoming.unpack_layer::<super::Error>(
            &tar_path,
            &diff_id,
            crate::unpack::Options { owners },
        )?;
    }
    incoming.adopt_blob(&diff_id, &tar_path);
    let layer = crate::store::LayerRef {
        diff_id: diff_id.clone(),
        blob: diff_id.clone(),
        media_type: crate::build::layer::TAR.into(),
        size,
    };
    let mut config = json.config.clone();
    config["rootfs"] = serde_json::json!({"type": "layers", "diff_ids": [diff_id.to_string()]});
    config["history"] = serde_json::json!([{
        "created": json.created,
        "created_by": format!("den image squash {}", json.source),
    }]);
    let canonical = name.as_ref().map(|n| n.canonical());
    let image = incoming.finish_local(&config, &[layer], canonical.as_deref())?;
    Ok(crate::archive::load::Loaded {
        id: image.id,
        names: name.into_iter().collect(),
        renamed: Vec::new(),
    })
}

/// The tree at `root` as a tar in the new file `dest`; its digest and size.
fn write_tar(root: &Path, dest: &Path) -> Result<(crate::digest::Digest, u64)> {
    use std::io::Write;
    struct Hashing<W> {
        inner: W,
        hasher: crate::digest::Hasher,
        size: u64,
    }
    impl<W: Write> Write for Hashing<W> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let n = self.inner.write(buf)?;
            self.hasher.update(&buf[..n]);
            self.size += n as u64;
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.inner.flush()
        }
    }
    let io = |source| crate::store::StoreError::Io {
        path: dest.into(),
        source,
    };
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dest)
        .map_err(io)?;
    let mut w = Hashing {
        inner: std::io::BufWriter::with_capacity(1 << 20, f),
        hasher: crate::digest::Hasher::new(),
        size: 0,
    };
    crate::build::layer::write_rootfs_tar(root, &mut w).map_err(io)?;
    w.flush().map_err(io)?;
    Ok((w.hasher.finish(), w.size))
}

/// `images FILE.sqsh`: the file's one row (its name, the id it was made from, its size).
pub fn row(path: &Path) -> Result<super::images::Row> {
    let json = sqsh::read_image_json(path)?;
    let size = std::fs::metadata(path)
        .map_err(|source| SqshError::Read {
            path: path.into(),
            source,
        })?
        .len();
    let (repository, tag) = match crate::image::Reference::parse(&json.name) {
        Ok(r) => (r.familiar_repo(), r.tag().unwrap_or("<none>").to_string()),
        Err(_) => ("<none>".into(), "<none>".into()),
    };
    Ok(super::images::Row {
        repository,
        tag,
        id: source_id(path, &json)?,
        created: Some(json.created),
        size,
        digest: None,
        shared: 0,
        containers: 0,
        // Not the user's store: a file den reads and never writes.
        read_only: true,
    })
}

/// `image inspect FILE.sqsh`: docker's fields that a file has.
pub fn inspect_value(path: &Path) -> Result<serde_json::Value> {
    let json = sqsh::read_image_json(path)?;
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let c = &json.config;
    Ok(serde_json::json!({
        "Id": json.source,
        "RepoTags": if json.name.is_empty() { vec![] } else { vec![json.name.clone()] },
        "Created": json.created,
        "Size": size,
        "Architecture": c.get("architecture"),
        "Os": c.get("os"),
        "Config": c.get("config"),
        "ImageFile": path,
    }))
}

/// The id of the image a file was made from.
pub fn source_id(path: &Path, json: &ImageJson) -> Result<crate::digest::Digest, SqshError> {
    crate::digest::Digest::parse(&json.source).map_err(|e| SqshError::NoImageJson {
        path: path.into(),
        reason: format!("source {:?}: {e}", json.source),
    })
}

/// The output must be a file name: not a directory, not a terminal or other device.
fn check_output(out: &Path) -> Result<(), SqshError> {
    match std::fs::metadata(out) {
        Ok(m) if !m.is_file() => Err(SqshError::BadOutput { path: out.into() }),
        _ if out.as_os_str().is_empty() || out.as_os_str() == "-" => {
            Err(SqshError::BadOutput { path: out.into() })
        }
        _ => match out.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(dir) if !dir.is_dir() => Err(SqshError::Write {
                path: out.into(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{} is not a directory", dir.display()),
                ),
            }),
            _ => Ok(()),
        },
    }
}

/// Run mksquashfs over `rootfs` and `meta` into a temporary file beside `out`, then rename it
/// into place; returns the file's size.
fn write_file(rootfs: &Path, meta: &Path, out: &Path) -> Result<u64, SqshError> {
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = out
        .file_name()
        .ok_or_else(|| SqshError::BadOutput { path: out.into() })?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        crate::fs::random_hex(4)
    ));
    let run = std::process::Command::new("mksquashfs")
        .arg(rootfs)
        .arg(meta)
        .arg(&tmp)
        .args(["-noappend", "-quiet", "-no-progress", "-comp", "zstd"])
        .stdin(std::process::Stdio::null())
        .output();
    let fail = |e: SqshError| {
        let _ = std::fs::remove_file(&tmp);
        Err(e)
    };
    let out_of = match run {
        Err(source) => {
            return fail(SqshError::Missing {
                program: "mksquashfs",
                source,
            });
        }
        Ok(o) => o,
    };
    if !out_of.status.success() {
        let said = String::from_utf8_lossy(&out_of.stderr);
        return fail(SqshError::Tool {
            program: "mksquashfs",
            path: out.into(),
            stderr: said.trim().lines().last().unwrap_or("failed").to_string(),
        });
    }
    let size = match std::fs::metadata(&tmp) {
        Ok(m) => m.len(),
        Err(source) => {
            return fail(SqshError::Write {
                path: tmp.clone(),
                source,
            });
        }
    };
    if let Err(source) = std::fs::rename(&tmp, out) {
        return fail(SqshError::Write {
            path: out.into(),
            source,
        });
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_and_devices_are_not_outputs() {
        let t = tempfile::tempdir().unwrap();
        assert!(check_output(t.path()).is_err());
        assert!(check_output(Path::new("/dev/null")).is_err());
        assert!(check_output(Path::new("-")).is_err());
        assert!(check_output(&t.path().join("new.sqsh")).is_ok());
        assert!(check_output(&t.path().join("no/new.sqsh")).is_err());
        assert!(check_output(Path::new("new.sqsh")).is_ok());
    }
}
