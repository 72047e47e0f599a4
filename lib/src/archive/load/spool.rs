//! The spool: every regular file of the archive copied into a staging directory while it is
//! hashed, small ones also kept in memory, large layers unpacked while they stream in (see
//! [`crate::archive::early`]); and reading entries back, checked against their digests.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use super::Result;
use crate::archive::ArchiveError;
use crate::archive::early::{self, EarlyUnpack};
use crate::archive::format;
use crate::digest::{Digest, Hasher};
use crate::image::{Compression, Reference, checks};
use crate::store::{StagedLayer, Staging, Store, StoreError};
use crate::unpack;

pub(super) const CHUNK: usize = 1 << 20;
/// The most entries an archive may have.
const MAX_ENTRIES: usize = 20_000;
/// Entries up to this size are also kept in memory (the JSON files are read back)...
const SMALL: u64 = 1 << 20;
/// ...up to this much in all: an archive of many small entries (a few hundred KiB once
/// compressed) must not hold them all in memory. Past it, entries are read back from disk.
const KEPT_MAX: u64 = 16 << 20;
/// Layers from this size on are unpacked while they stream in (see [`crate::archive::early`]).
const EARLY_MIN: u64 = 256 << 10;

/// A regular file of the archive, copied to the staging directory.
pub(super) struct Spooled {
    pub(super) path: PathBuf,
    pub(super) digest: Digest,
    pub(super) size: u64,
    pub(super) compression: Compression,
    /// The content, for small files.
    bytes: Option<Vec<u8>>,
}

/// Every file of the archive, by cleaned name, in a staging directory that is removed with it.
pub(super) struct Spool {
    pub(super) archive: String,
    store: Store,
    opts: unpack::Options,
    staging: Staging,
    pub(super) files: HashMap<String, Spooled>,
    /// Symbolic and hard links between entries (podman's `<id>/layer.tar -> ../<hex>.tar`).
    links: HashMap<String, String>,
    /// Layers unpacked as they streamed in, by spooled file.
    early: std::sync::Mutex<HashMap<PathBuf, EarlyUnpack>>,
    /// Bytes of entries kept in memory (at most [`KEPT_MAX`]).
    kept: u64,
}

impl Drop for Spool {
    fn drop(&mut self) {
        let early = std::mem::take(self.early.get_mut().unwrap_or_else(|p| p.into_inner()));
        for (_, e) in early {
            e.cancel();
        }
        let _ = crate::fs::remove_tree(&self.staging.path);
    }
}

impl Spool {
    pub(super) fn read(
        store: &Store,
        input: &mut dyn Read,
        archive: &str,
        opts: unpack::Options,
    ) -> Result<Spool> {
        let read_err = |source| ArchiveError::Read {
            archive: archive.into(),
            source,
        };
        // The first bytes tell a compressed archive (docker accepts `docker save | gzip`).
        let mut head = Vec::with_capacity(8);
        input.take(6).read_to_end(&mut head).map_err(read_err)?;
        if head.is_empty() {
            return Err(if archive == "stdin" {
                ArchiveError::StdinEmpty
            } else {
                ArchiveError::NotAnArchive {
                    archive: archive.into(),
                }
            });
        }
        let raw = std::io::BufReader::with_capacity(
            CHUNK,
            std::io::Cursor::new(head.clone()).chain(input),
        );
        let stream: Box<dyn Read + '_> = match Compression::sniff(&head) {
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(raw)),
            Compression::Zstd => {
                Box::new(zstd::stream::read::Decoder::with_buffer(raw).map_err(read_err)?)
            }
            Compression::None => Box::new(raw),
        };
        let mut spool = Spool {
            archive: archive.into(),
            store: store.clone(),
            opts,
            staging: store.staging_dir("load")?,
            files: HashMap::new(),
            links: HashMap::new(),
            early: Default::default(),
            kept: 0,
        };
        let mut tar = tar::Archive::new(stream);
        let mut buf = vec![0u8; CHUNK];
        for (n, entry) in tar.entries().map_err(read_err)?.enumerate() {
            // 500 layers of a few files each fit many times over.
            if n >= MAX_ENTRIES {
                return Err(ArchiveError::TooManyEntries {
                    archive: archive.into(),
                    limit: MAX_ENTRIES,
                });
            }
            let mut entry = entry.map_err(read_err)?;
            let Some(name) = format::clean_name(&entry.path_bytes()) else {
                continue;
            };
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let size = entry.size();
                    spool.add(name, size, &mut entry, &mut buf)?;
                }
                kind @ (tar::EntryType::Symlink | tar::EntryType::Link) => {
                    let Some(target) = entry.link_name_bytes() else {
                        continue;
                    };
                    // A symlink is relative to its directory, a hard link to the archive's root.
                    let mut full = Vec::new();
                    if kind == tar::EntryType::Symlink
                        && !target.starts_with(b"/")
                        && let Some((dir, _)) = name.rsplit_once('/')
                    {
                        full.extend_from_slice(dir.as_bytes());
                        full.push(b'/');
                    }
                    full.extend_from_slice(&target);
                    if let Some(t) = format::clean_name(&full) {
                        spool.links.insert(name, t);
                    }
                }
                _ => {}
            }
        }
        // Read to the end so that a writer piping into den is not cut off mid-padding.
        let mut rest = tar.into_inner();
        std::io::copy(&mut rest, &mut std::io::sink()).map_err(read_err)?;
        Ok(spool)
    }

    fn add(&mut self, name: String, size: u64, src: &mut dyn Read, buf: &mut [u8]) -> Result<()> {
        let path = self.staging.path.join(self.files.len().to_string());
        let io = |p: &PathBuf| {
            let p = p.clone();
            move |source| StoreError::Io { path: p, source }
        };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&path)
            .map_err(io(&path))?;
        let mut hasher = Hasher::new();
        let keep = size <= SMALL && self.kept + size <= KEPT_MAX;
        if keep {
            self.kept += size;
        }
        let mut bytes = keep.then(|| Vec::with_capacity(size as usize));
        let mut early: Option<EarlyUnpack> = None;
        let mut head = Vec::new();
        let mut done = 0u64;
        loop {
            let n = read_full(src, buf).map_err(|source| ArchiveError::Read {
                archive: self.archive.clone(),
                source,
            })?;
            if n == 0 {
                break;
            }
            let chunk = &buf[..n];
            if done == 0 {
                head.extend_from_slice(&chunk[..n.min(4)]);
                if size >= EARLY_MIN
                    && self.worth_unpacking(&name)
                    && let Some(plain) = early::looks_like_layer(chunk)
                {
                    early = EarlyUnpack::start(&self.store, plain, self.opts).ok();
                }
            }
            if let Some(e) = &mut early {
                e.feed(chunk);
            }
            hasher.update(chunk);
            file.write_all(chunk).map_err(io(&path))?;
            if let Some(b) = &mut bytes {
                b.extend_from_slice(chunk);
            }
            done += n as u64;
        }
        if done != size {
            return Err(ArchiveError::Read {
                archive: self.archive.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("the archive ends in the middle of {name}"),
                ),
            });
        }
        if let Some(mut e) = early {
            e.close();
            self.early
                .get_mut()
                .unwrap_or_else(|p| p.into_inner())
                .insert(path.clone(), e);
        }
        self.files.insert(
            name,
            Spooled {
                path,
                digest: hasher.finish(),
                size: done,
                compression: Compression::sniff(&head),
                bytes,
            },
        );
        Ok(())
    }

    /// Whether to unpack the file `name` as it streams in: not when its name says it is a
    /// layer or blob the store already has.
    fn worth_unpacking(&self, name: &str) -> bool {
        match format::digest_in_path(name) {
            Some(d) => !self.store.has_layer(&d) && !self.store.has_blob(&d),
            None => true,
        }
    }

    /// The layer unpacked from `file` as it streamed in, if it has the diff id `diff_id`.
    pub(super) fn early_layer(
        &self,
        file: &std::path::Path,
        digest: &Digest,
        diff_id: &Digest,
    ) -> Option<(StagedLayer, unpack::Stats)> {
        let e = self
            .early
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(file)?;
        let (staged, stats) = e.finish(digest)?;
        if stats.diff_id == *diff_id {
            Some((staged, stats))
        } else {
            staged.abandon();
            None
        }
    }

    /// The file `name` names, following links.
    pub(super) fn get(&self, name: &str) -> Option<&Spooled> {
        let mut name = format::clean_name(name.as_bytes())?;
        for _ in 0..16 {
            if let Some(f) = self.files.get(&name) {
                return Some(f);
            }
            name = self.links.get(&name)?.clone();
        }
        None
    }

    pub(super) fn entry(&self, name: &str) -> std::result::Result<&Spooled, ArchiveError> {
        self.get(name).ok_or_else(|| ArchiveError::Missing {
            archive: self.archive.clone(),
            entry: name.into(),
        })
    }

    fn bytes(&self, f: &Spooled) -> Result<Vec<u8>> {
        match &f.bytes {
            Some(b) => Ok(b.clone()),
            None => std::fs::read(&f.path).map_err(|source| {
                StoreError::Io {
                    path: f.path.clone(),
                    source,
                }
                .into()
            }),
        }
    }

    /// The bytes of a JSON document of the archive (an index, a manifest, a config), refused
    /// unread when larger than any such document may be.
    pub(super) fn document(&self, name: &str, f: &Spooled) -> Result<Vec<u8>> {
        checks::size(&format!("{name} in {}", self.archive), f.size)?;
        self.bytes(f)
    }

    pub(super) fn json<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
        f: &Spooled,
    ) -> Result<T> {
        serde_json::from_slice(&self.document(name, f)?).map_err(|source| ArchiveError::BadJson {
            archive: self.archive.clone(),
            entry: name.into(),
            source,
        })
    }

    pub(super) fn mismatch(&self, entry: &str, expected: &Digest, actual: &Digest) -> ArchiveError {
        ArchiveError::Mismatch {
            archive: self.archive.clone(),
            entry: entry.into(),
            expected: expected.to_string(),
            actual: actual.to_string(),
        }
    }

    /// The OCI blob `digest`, checked.
    pub(super) fn blob(&self, digest: &Digest) -> Result<(String, &Spooled)> {
        let name = format::blob_path(digest);
        let f = self.entry(&name)?;
        if f.digest != *digest {
            return Err(self.mismatch(&name, digest, &f.digest));
        }
        Ok((name, f))
    }

    pub(super) fn name(&self, name: &str) -> Result<Reference> {
        Reference::parse(name).map_err(|source| ArchiveError::BadName {
            archive: self.archive.clone(),
            name: name.into(),
            source,
        })
    }
}

/// Read until `buf` is full or the input ends; returns how much was read.
fn read_full(src: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match src.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
