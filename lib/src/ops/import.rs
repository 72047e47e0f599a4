//! `import`: a one-layer image from a root filesystem tar (a file, a URL, or stdin), as
//! `docker import` makes it.
//!
//! The tar may be plain, gzip or zstd (told by its first bytes). It is stored uncompressed, so
//! the layer blob's digest is its diff id, and it is unpacked by the same unpacker as pulled
//! layers, which refuses paths that would escape the layer. Until the unpack has succeeded the
//! tar lives in a staging directory under `tmp/`: a malformed archive leaves the store as it
//! was. Then come an OCI configuration (the host's os and architecture, the layer, one history
//! entry, and the `--change` instructions applied) and an OCI manifest, written as `den build`
//! writes its images.

use std::io::{BufRead, Read, Write};

use chrono::Utc;
use serde_json::{Map, Value, json};

use super::Ctx;
use super::Result;
use crate::digest::{Digest, Hasher};
use crate::image::manifest::{Compression, Platform};
use crate::store::{ImageRecord, LayerRef};
use crate::unpack::{Options, Owners};

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// A file, an http(s) URL, or `-` for stdin.
    pub source: String,
    /// `REPOSITORY[:TAG]` to name the image.
    pub reference: Option<String>,
    /// `--change` instructions: CMD, ENTRYPOINT, ENV, WORKDIR, EXPOSE, USER, LABEL.
    pub changes: Vec<String>,
    /// `--message`: the history entry's comment.
    pub message: Option<String>,
}

pub fn import(ctx: &Ctx, opts: &ImportOptions) -> Result<ImageRecord> {
    let name = match &opts.reference {
        Some(r) => Some(crate::image::Reference::parse_tag(r)?),
        None => None,
    };
    let mut container_config = Map::new();
    for c in &opts.changes {
        crate::image::change::apply(&mut container_config, c)?;
    }
    let store = ctx.store()?;
    store.sweep();
    // Content added below must not be collected before the record names it.
    let _pin = store.lock_content_shared()?;
    let staging = store.staging_dir("import")?;
    let tar_path = staging.path.join("layer.tar");
    let result = (|| {
        let (diff_id, size) = stage_tar(&opts.source, &tar_path)?;
        let incoming = store.incoming()?;
        if !store.has_layer(&diff_id) {
            let owners = match ctx.idmap() {
                crate::userns::IdMap::Single { .. } => Owners::Ignore,
                _ => Owners::Keep,
            };
            incoming.unpack_layer::<super::Error>(&tar_path, &diff_id, Options { owners })?;
        }
        incoming.adopt_blob(&diff_id, &tar_path);
        let layer = LayerRef {
            diff_id: diff_id.clone(),
            blob: diff_id.clone(),
            media_type: crate::build::layer::TAR.into(),
            size,
        };
        let config = image_config(
            diff_id.as_str(),
            container_config,
            &opts.source,
            opts.message.as_deref(),
        );
        let canonical = name.as_ref().map(|n| n.canonical());
        Ok::<_, super::Error>(incoming.finish_local(&config, &[layer], canonical.as_deref())?)
    })();
    let _ = crate::fs::remove_tree(&staging.path);
    if let Ok(image) = &result {
        let id = image.id.to_string();
        let name = name.map_or_else(
            || id.clone(),
            |n| crate::image::familiar_name(&n.canonical()),
        );
        store.record_event(&crate::store::Event::new("image", "import", &id).with("name", name));
    }
    result
}

fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> crate::store::StoreError + '_ {
    move |source| crate::store::StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Read the source, decompress it and write the tar to `dest`; returns its digest and size.
fn stage_tar(source: &str, dest: &std::path::Path) -> Result<(Digest, u64)> {
    let read_err = |e: std::io::Error| crate::archive::ArchiveError::ImportRead {
        name: source.to_string(),
        source: e,
    };
    let input: Box<dyn Read> = if source == "-" {
        Box::new(std::io::stdin().lock())
    } else if source.starts_with("http://") || source.starts_with("https://") {
        let downloaded = dest.with_extension("download");
        download(source, &downloaded).map_err(read_err)?;
        Box::new(std::fs::File::open(&downloaded).map_err(read_err)?)
    } else {
        Box::new(std::fs::File::open(source).map_err(read_err)?)
    };
    let mut input = std::io::BufReader::with_capacity(1 << 20, input);
    let head = input.fill_buf().map_err(read_err)?.to_vec();
    let mut tar: Box<dyn Read> = match Compression::sniff(&head) {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::with_buffer(input).map_err(read_err)?)
        }
        Compression::None => Box::new(input),
    };
    let out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dest)
        .map_err(io_err(dest))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, out);
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = match tar.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(e).into()),
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(io_err(dest))?;
        size += n as u64;
    }
    out.flush().map_err(io_err(dest))?;
    let _ = std::fs::remove_file(dest.with_extension("download"));
    Ok((hasher.finish(), size))
}

/// Fetch `url` into the file `dest`.
fn download(url: &str, dest: &std::path::Path) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut resp = reqwest::get(url)
            .await
            .map_err(|e| std::io::Error::other(crate::error::chain(&e)))?;
        if !resp.status().is_success() {
            return Err(std::io::Error::other(format!("HTTP {}", resp.status())));
        }
        let mut f = std::io::BufWriter::new(std::fs::File::create(dest)?);
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| std::io::Error::other(crate::error::chain(&e)))?
        {
            f.write_all(&chunk)?;
        }
        f.flush()
    })
}

/// The image configuration of an imported root filesystem.
fn image_config(
    diff_id: &str,
    config: Map<String, Value>,
    source: &str,
    message: Option<&str>,
) -> Value {
    let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let host = Platform::host();
    let comment = message
        .map(str::to_string)
        .unwrap_or_else(|| format!("Imported from {source}"));
    let mut c = json!({
        "created": now,
        "architecture": host.arch,
        "os": host.os,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": now, "created_by": "den import", "comment": comment}],
    });
    if let Some(v) = host.variant {
        c["variant"] = Value::String(v);
    }
    if let Some(m) = message {
        c["comment"] = Value::String(m.into());
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(changes: &[&str]) -> Result<Value> {
        let mut m = Map::new();
        for c in changes {
            crate::image::change::apply(&mut m, c)?;
        }
        Ok(Value::Object(m))
    }

    #[test]
    fn changes_apply_as_dockerfile_instructions() {
        let c = apply(&[
            r#"CMD ["sh", "-c", "echo hi"]"#,
            "ENTRYPOINT /bin/init --x",
            "ENV A=1 B=\"two words\"",
            "env C 3 4",
            "ENV A=5",
            "WORKDIR /srv",
            "USER 1000:1000",
            "EXPOSE 80 53/udp",
            "LABEL org.x=y z=\"w w\"",
        ])
        .unwrap();
        assert_eq!(c["Cmd"], json!(["sh", "-c", "echo hi"]));
        assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c", "/bin/init --x"]));
        assert_eq!(c["Env"], json!(["B=two words", "C=3 4", "A=5"]));
        assert_eq!(c["WorkingDir"], "/srv");
        assert_eq!(c["User"], "1000:1000");
        assert_eq!(c["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(c["Labels"], json!({"org.x": "y", "z": "w w"}));
    }

    #[test]
    fn bad_changes_name_the_input() {
        for bad in [
            "RUN echo",
            "CMD [\"unterminated\"",
            "EXPOSE http",
            "ENV",
            "LABEL a=\"b",
            "FROM x",
        ] {
            match apply(&[bad]) {
                Err(crate::ops::Error::Image(crate::image::ImageError::BadChange {
                    change,
                    ..
                })) => {
                    assert_eq!(change, bad)
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn configs_have_the_layer_and_a_history_entry() {
        let c = image_config("sha256:abc", Map::new(), "-", Some("msg"));
        assert_eq!(c["rootfs"]["diff_ids"], json!(["sha256:abc"]));
        assert_eq!(c["history"][0]["created_by"], "den import");
        assert_eq!(c["history"][0]["comment"], "msg");
        assert_eq!(c["os"], "linux");
        let c = image_config("sha256:abc", Map::new(), "x.tar", None);
        assert_eq!(c["history"][0]["comment"], "Imported from x.tar");
    }
}
