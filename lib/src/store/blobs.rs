//! Blobs: content-addressed files under `blobs/sha256/`, as the registry sent them. Nothing
//! enters without its digest checked: whole ([`Store::put_blob`]) or while it streams
//! ([`BlobWriter`], written under `tmp/` and renamed into place once it hashes right).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::staging::hold;
use super::{Digest, Hasher, Result, Store, StoreError, io_err};

impl Store {
    /// Where the blob is: in this store, else in the first additional store that has it
    /// (see [`super::additional`]); where it would go in this store when none has it.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        let own = self.own_blob_path(digest);
        if own.exists() {
            return own;
        }
        self.additional
            .iter()
            .map(|a| a.blob_path(digest.hex()))
            .find(|p| p.exists())
            .unwrap_or(own)
    }

    /// The blob's place in this store (where writes go).
    pub(crate) fn own_blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// Whether the blob is here or in an additional store.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).exists()
    }

    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let p = self.blob_path(digest);
        std::fs::read(&p).map_err(io_err(&p))
    }

    /// Store `bytes` as the blob `digest`, after checking that they are.
    pub fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        verify(digest, bytes)?;
        if self.has_blob(digest) {
            return Ok(());
        }
        self.write_atomic(&self.own_blob_path(digest), bytes)
    }

    /// A writer for a blob whose content arrives in pieces; see [`BlobWriter::commit`].
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        let path = self.root.join("tmp").join(format!(
            "blob-{}-{}",
            std::process::id(),
            crate::fs::random_hex(6)
        ));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&path)
            .map_err(io_err(&path))?;
        let lock = hold(&path)?;
        Ok(BlobWriter {
            file: std::io::BufWriter::with_capacity(1 << 20, file),
            _lock: lock,
            path,
            hasher: Some(Hasher::new()),
            len: 0,
            committed: false,
        })
    }

    /// Total size of the blobs directory (for `den info`), best effort.
    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }
}

/// `bytes` are the blob `digest`.
pub(crate) fn verify(digest: &Digest, bytes: &[u8]) -> Result<()> {
    let actual = Digest::of(bytes);
    if &actual != digest {
        return Err(StoreError::DigestMismatch {
            digest: digest.clone(),
            actual,
        });
    }
    Ok(())
}

/// A blob being written; it appears in the store only if its digest is right.
pub struct BlobWriter {
    file: std::io::BufWriter<std::fs::File>,
    _lock: nix::fcntl::Flock<std::fs::File>,
    path: PathBuf,
    hasher: Option<Hasher>,
    len: u64,
    /// Moved into place: nothing to clean up on drop.
    committed: bool,
}

impl BlobWriter {
    pub fn write(&mut self, chunk: &[u8]) -> Result<()> {
        if let Some(h) = &mut self.hasher {
            h.update(chunk);
        }
        self.len += chunk.len() as u64;
        self.file.write_all(chunk).map_err(io_err(&self.path))
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Check the digest and move the blob into place. The file is not fsynced here: callers
    /// that publish records pointing at it sync the filesystem once for all their blobs.
    pub fn commit(self, store: &Store, expected: &Digest) -> Result<PathBuf> {
        let dest = store.own_blob_path(expected);
        self.commit_to(&dest, expected)?;
        store.publish(&dest, false)?;
        Ok(dest)
    }

    /// Check the digest and move the blob to `dest` (on the store's filesystem).
    pub fn commit_to(mut self, dest: &Path, expected: &Digest) -> Result<()> {
        let actual = self.hasher.take().expect("committed once").finish();
        self.file.flush().map_err(io_err(&self.path))?;
        if &actual != expected {
            return Err(StoreError::DigestMismatch {
                digest: expected.clone(),
                actual,
            });
        }
        std::fs::rename(&self.path, dest).map_err(io_err(dest))?;
        self.committed = true;
        Ok(())
    }

    /// Move the blob into place under the digest of what was written (content den made itself,
    /// with nothing to check it against); returns the digest.
    pub fn commit_new(self, store: &Store) -> Result<Digest> {
        let digest = self.hasher.clone().expect("committed once").finish();
        self.commit(store, &digest)?;
        Ok(digest)
    }

    /// Throw the partial blob away (dropping it does the same).
    pub fn abandon(self) {}
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{Digest, Store, StoreError};

    #[test]
    fn blob_writer_keeps_only_verified_blobs() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        let good = Digest::of(b"hello");
        let mut w = s.blob_writer().unwrap();
        w.write(b"hel").unwrap();
        w.write(b"lo").unwrap();
        w.commit(&s, &good).unwrap();
        assert_eq!(s.read_blob(&good).unwrap(), b"hello");

        let mut w = s.blob_writer().unwrap();
        w.write(b"tampered").unwrap();
        let other = Digest::of(b"other");
        assert!(matches!(
            w.commit(&s, &other),
            Err(StoreError::DigestMismatch { .. })
        ));
        assert!(!s.has_blob(&other));
        assert_eq!(std::fs::read_dir(t.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn put_blob_verifies() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        assert!(s.put_blob(&Digest::of(b"a"), b"b").is_err());
        s.put_blob(&Digest::of(b"a"), b"a").unwrap();
    }
}
