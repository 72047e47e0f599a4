//! Writing an archive of images from the store to a stream (see the module docs of
//! [`crate::archive`] for the formats and for why compressed layers are inflated twice).

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};

use super::format::{self, DockerManifest, IndexEntry};
use super::{ArchiveError, Format};
use crate::digest::Digest;
use crate::image::manifest::OCI_LAYER;
use crate::image::{Compression, Reference};
use crate::store::{ImageRecord, Store};

/// Buffer size for blob reads and archive writes.
const CHUNK: usize = 1 << 20;

/// An image to save and the names to record for it (none when it was named by id).
#[derive(Debug, Clone)]
pub struct SaveImage {
    pub record: ImageRecord,
    pub names: Vec<Reference>,
}

/// Write `images` as an archive of `format` to `out`; `dest` names `out` in errors.
pub fn save(
    store: &Store,
    images: &[SaveImage],
    format: Format,
    out: &mut dyn Write,
    dest: &str,
) -> Result<(), ArchiveError> {
    let mut w = TarOut {
        out,
        dest,
        buf: vec![0u8; CHUNK],
    };
    w.dir("blobs/")?;
    w.dir("blobs/sha256/")?;
    match format {
        Format::Docker => save_docker(store, images, &mut w)?,
        Format::Oci => save_oci(store, images, &mut w)?,
    }
    w.finish()
}

/// A layer of a docker archive, written once however many images share it.
struct Layer {
    diff_id: Digest,
    blob: Digest,
    path: PathBuf,
    /// The tar's size when the blob is the tar itself; counted otherwise.
    size: Option<u64>,
    image: Digest,
}

fn save_docker(
    store: &Store,
    images: &[SaveImage],
    w: &mut TarOut<'_>,
) -> Result<(), ArchiveError> {
    // The layers in the order they will be written, so the counting thread works ahead.
    let mut layers = Vec::new();
    let mut seen = HashSet::new();
    for img in images {
        for l in &img.record.layers {
            if seen.insert(l.diff_id.clone()) {
                let path = store.blob_path(&l.blob);
                let (compression, len) =
                    sniff_file(&path).map_err(|e| blob_error(&img.record, &l.blob, e))?;
                layers.push(Layer {
                    diff_id: l.diff_id.clone(),
                    blob: l.blob.clone(),
                    path,
                    size: (compression == Compression::None).then_some(len),
                    image: img.record.id.clone(),
                });
            }
        }
    }
    let counts = spawn_counter(
        layers
            .iter()
            .filter(|l| l.size.is_none())
            .map(|l| l.path.clone())
            .collect(),
    );
    let mut next = layers.iter();
    let mut sizes: HashMap<Digest, u64> = HashMap::new();
    let mut written = HashSet::new();
    let mut manifests = Vec::new();
    let mut entries = Vec::new();
    let mut repos = Vec::new();
    for img in images {
        let mut descs = Vec::new();
        for l in &img.record.layers {
            if !sizes.contains_key(&l.diff_id) {
                let layer = next.next().expect("every new layer was listed");
                debug_assert_eq!(layer.diff_id, l.diff_id);
                let size = match layer.size {
                    Some(s) => s,
                    None => counts
                        .recv()
                        .expect("the counter sends one result per layer")
                        .map_err(|e| blob_error(&img.record, &layer.blob, e))?,
                };
                write_layer(w, layer, size)?;
                sizes.insert(l.diff_id.clone(), size);
            }
            descs.push((OCI_LAYER.to_string(), l.diff_id.clone(), sizes[&l.diff_id]));
        }
        let config = read_blob(store, &img.record, &img.record.config)?;
        let config_name = format::blob_path(&img.record.config);
        if written.insert(config_name.clone()) {
            w.bytes(&config_name, &config)?;
        }
        let manifest = format::oci_manifest(&img.record.config, config.len() as u64, &descs);
        let digest = Digest::of(&manifest);
        if written.insert(format::blob_path(&digest)) {
            w.bytes(&format::blob_path(&digest), &manifest)?;
        }
        manifests.push(DockerManifest {
            config: config_name,
            repo_tags: (!img.names.is_empty())
                .then(|| img.names.iter().map(|n| n.canonical()).collect()),
            layers: descs.iter().map(|d| format::blob_path(&d.1)).collect(),
        });
        entries.extend(index_entries(
            img,
            &digest,
            manifest.len() as u64,
            crate::image::manifest::OCI_MANIFEST,
        ));
        if let Some(top) = img.record.layers.last() {
            repos.push((img.names.clone(), top.diff_id.hex().to_string()));
        }
    }
    w.bytes(format::INDEX_JSON, &format::index_json(&entries))?;
    let manifest_json = serde_json::to_vec(&manifests).expect("manifest.json serializes");
    w.bytes(format::MANIFEST_JSON, &manifest_json)?;
    w.bytes(format::OCI_LAYOUT, format::OCI_LAYOUT_CONTENT)?;
    w.bytes(format::REPOSITORIES, &format::repositories(&repos))
}

fn save_oci(store: &Store, images: &[SaveImage], w: &mut TarOut<'_>) -> Result<(), ArchiveError> {
    let mut written = HashSet::new();
    let mut entries = Vec::new();
    for img in images {
        let r = &img.record;
        for l in &r.layers {
            if written.insert(l.blob.clone()) {
                let path = store.blob_path(&l.blob);
                let err = |e| blob_error(r, &l.blob, e);
                let f = std::fs::File::open(&path).map_err(err)?;
                let len = f.metadata().map_err(err)?.len();
                let mut src = std::io::BufReader::with_capacity(CHUNK, f);
                w.stream(&format::blob_path(&l.blob), len, &mut src, &|e| {
                    blob_error(r, &l.blob, e)
                })?;
            }
        }
        for digest in [&r.config, &r.manifest] {
            if written.insert(digest.clone()) {
                let bytes = read_blob(store, r, digest)?;
                w.bytes(&format::blob_path(digest), &bytes)?;
            }
        }
        let size = std::fs::metadata(store.blob_path(&r.manifest))
            .map_err(|e| blob_error(r, &r.manifest, e))?
            .len();
        entries.extend(index_entries(
            img,
            &r.manifest,
            size,
            &r.manifest_media_type,
        ));
    }
    w.bytes(format::INDEX_JSON, &format::index_json(&entries))?;
    w.bytes(format::OCI_LAYOUT, format::OCI_LAYOUT_CONTENT)
}

/// An image's entries in `index.json`: one per name, or one without a name.
fn index_entries(img: &SaveImage, digest: &Digest, size: u64, media_type: &str) -> Vec<IndexEntry> {
    let entry = |name: Option<Reference>| IndexEntry {
        media_type: media_type.to_string(),
        digest: digest.clone(),
        size,
        platform: Some((img.record.os.clone(), img.record.architecture.clone())),
        name,
    };
    if img.names.is_empty() {
        vec![entry(None)]
    } else {
        img.names.iter().cloned().map(|n| entry(Some(n))).collect()
    }
}

fn blob_error(record: &ImageRecord, digest: &Digest, source: std::io::Error) -> ArchiveError {
    ArchiveError::ReadBlob {
        image: record.short_id().to_string(),
        digest: digest.to_string(),
        source,
    }
}

fn read_blob(
    store: &Store,
    record: &ImageRecord,
    digest: &Digest,
) -> Result<Vec<u8>, ArchiveError> {
    std::fs::read(store.blob_path(digest)).map_err(|e| blob_error(record, digest, e))
}

/// A blob's compression (from its first bytes) and its size.
fn sniff_file(path: &Path) -> std::io::Result<(Compression, u64)> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let mut head = [0u8; 4];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok((Compression::sniff(&head[..n]), len))
}

/// The uncompressed content of a layer blob, as a stream.
pub(crate) fn open_layer(path: &Path) -> std::io::Result<Box<dyn Read + Send>> {
    let mut r = std::io::BufReader::with_capacity(CHUNK, std::fs::File::open(path)?);
    let compression = Compression::sniff(r.fill_buf()?);
    Ok(match compression {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(r)?),
        Compression::None => Box::new(r),
    })
}

/// Count the uncompressed bytes of each blob in `paths`, in order, on a thread of its own.
fn spawn_counter(paths: Vec<PathBuf>) -> std::sync::mpsc::Receiver<std::io::Result<u64>> {
    let (tx, rx) = std::sync::mpsc::sync_channel(paths.len().max(1));
    if paths.is_empty() {
        return rx;
    }
    std::thread::Builder::new()
        .name("den-count".into())
        .spawn(move || {
            let mut buf = vec![0u8; CHUNK];
            for p in paths {
                let counted = open_layer(&p).and_then(|mut r| {
                    let mut n = 0u64;
                    loop {
                        match r.read(&mut buf) {
                            Ok(0) => return Ok(n),
                            Ok(k) => n += k as u64,
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                            Err(e) => return Err(e),
                        }
                    }
                });
                if tx.send(counted).is_err() {
                    return; // the writer gave up
                }
            }
        })
        .expect("a thread can be started");
    rx
}

fn write_layer(w: &mut TarOut<'_>, layer: &Layer, size: u64) -> Result<(), ArchiveError> {
    let record_err = |e| ArchiveError::ReadBlob {
        image: layer.image.short().to_string(),
        digest: layer.blob.to_string(),
        source: e,
    };
    let mut src = open_layer(&layer.path).map_err(record_err)?;
    let name = format::blob_path(&layer.diff_id);
    w.stream(&name, size, &mut src, &record_err)
        .map_err(|e| match e {
            ArchiveError::LayerChanged {
                counted, written, ..
            } => ArchiveError::LayerChanged {
                digest: layer.diff_id.to_string(),
                counted,
                written,
            },
            other => other,
        })
}

/// A tar stream being written: ustar headers, data padded to 512-byte blocks.
struct TarOut<'a> {
    out: &'a mut dyn Write,
    dest: &'a str,
    buf: Vec<u8>,
}

impl TarOut<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), ArchiveError> {
        self.out
            .write_all(bytes)
            .map_err(|source| ArchiveError::Write {
                path: self.dest.to_string(),
                source,
            })
    }

    fn header(&mut self, path: &str, size: u64, kind: tar::EntryType) -> Result<(), ArchiveError> {
        let mut h = tar::Header::new_ustar();
        h.set_path(path).expect("archive paths fit a ustar header");
        h.set_size(size);
        h.set_entry_type(kind);
        h.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        self.write(h.as_bytes())
    }

    fn pad(&mut self, size: u64) -> Result<(), ArchiveError> {
        let rem = (size % 512) as usize;
        if rem != 0 {
            self.write(&[0u8; 512][..512 - rem])?;
        }
        Ok(())
    }

    fn dir(&mut self, path: &str) -> Result<(), ArchiveError> {
        self.header(path, 0, tar::EntryType::Directory)
    }

    fn bytes(&mut self, path: &str, data: &[u8]) -> Result<(), ArchiveError> {
        self.header(path, data.len() as u64, tar::EntryType::Regular)?;
        self.write(data)?;
        self.pad(data.len() as u64)
    }

    /// An entry of `size` bytes read from `src`, which must hold exactly that many.
    fn stream(
        &mut self,
        path: &str,
        size: u64,
        src: &mut dyn Read,
        read_err: &dyn Fn(std::io::Error) -> ArchiveError,
    ) -> Result<(), ArchiveError> {
        self.header(path, size, tar::EntryType::Regular)?;
        let mut buf = std::mem::take(&mut self.buf);
        let mut done = 0u64;
        let res = loop {
            let n = match src.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(read_err(e)),
            };
            if n == 0 || done + n as u64 > size {
                break if n == 0 && done == size {
                    Ok(())
                } else {
                    Err(ArchiveError::LayerChanged {
                        digest: path.to_string(),
                        counted: size,
                        written: done + n as u64,
                    })
                };
            }
            done += n as u64;
            if let Err(e) = self.write(&buf[..n]) {
                break Err(e);
            }
        };
        self.buf = buf;
        res?;
        self.pad(size)
    }

    /// The end-of-archive marker, and everything flushed.
    fn finish(&mut self) -> Result<(), ArchiveError> {
        self.write(&[0u8; 1024])?;
        self.out.flush().map_err(|source| ArchiveError::Write {
            path: self.dest.to_string(),
            source,
        })
    }
}
