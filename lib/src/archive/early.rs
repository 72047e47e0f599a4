//! Unpacking a layer while the archive still streams in.
//!
//! Which files of an archive are layers, and which diff ids they must have, is known only from
//! the index files, which docker, podman and den all write *after* the layers. Waiting for them
//! would mean spooling a whole layer to disk and reading it back before unpacking it, one step
//! after the other. Instead, a file that looks like a layer (a tar, or gzip or zstd data) is
//! unpacked into a staged layer directory on threads of its own while the spooling thread
//! copies and hashes it: the unpack overlaps the transfer. The result is only a candidate: it is
//! used when the plan later wants a layer from that file with the diff id the unpack found, and
//! thrown away otherwise (a file that was not a layer, an archive that failed its checks). The
//! staged directory is invisible to the store until then, and the unpacker's path rules apply
//! as for any layer.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};

use crate::digest::Digest;
use crate::image::Compression;
use crate::store::{StagedLayer, Store, StoreError};
use crate::unpack::{self, UnpackError};

/// Chunks in flight between the spooling thread and the unpack.
const IN_FLIGHT: usize = 8;

/// The staged layer, what it held, and its diff id when the unpack computed it (a compressed
/// layer; a plain tar's is the spooled file's digest).
type Outcome = Result<(StagedLayer, unpack::Counts, Option<Digest>), UnpackError>;

/// A layer being unpacked from chunks handed over by the spooling thread.
pub(super) struct EarlyUnpack {
    tx: Option<SyncSender<Vec<u8>>>,
    /// Chunks the unpack has consumed, to be filled again.
    spent: Receiver<Vec<u8>>,
    cancel: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Outcome>,
    /// A plain tar: its diff id is the digest of the spooled file, which the spooler computes.
    plain: bool,
}

/// Whether a file beginning with `head` (at least its first 512 bytes, when it has them) looks
/// like a layer, and if so whether it is a plain tar.
pub(super) fn looks_like_layer(head: &[u8]) -> Option<bool> {
    match Compression::sniff(head) {
        Compression::Gzip | Compression::Zstd => Some(false),
        // ustar and GNU tar headers have "ustar" at offset 257.
        Compression::None => (head.get(257..262) == Some(b"ustar".as_slice())).then_some(true),
    }
}

impl EarlyUnpack {
    pub(super) fn start(
        store: &Store,
        plain: bool,
        opts: unpack::Options,
    ) -> Result<EarlyUnpack, StoreError> {
        let staged = store.stage_layer()?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT);
        let (back, spent) = std::sync::mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT + 2);
        let cancel = Arc::new(AtomicBool::new(false));
        let reader = ChunkReader {
            rx,
            back,
            cur: Vec::new(),
            pos: 0,
            cancel: cancel.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("den-early-unpack".into())
            .spawn(move || {
                let diff = staged.diff();
                let res = if plain {
                    unpack::apply(reader, &diff, opts).map(|c| (c, None))
                } else {
                    unpack::unpack_blob(reader, &diff, opts, None).map(|s| {
                        let counts = unpack::Counts {
                            size: s.size,
                            entries: s.entries,
                            skipped_devices: s.skipped_devices,
                        };
                        (counts, Some(s.diff_id))
                    })
                };
                match res {
                    Ok((counts, diff_id)) => Ok((staged, counts, diff_id)),
                    Err(e) => {
                        staged.abandon();
                        Err(e)
                    }
                }
            })
            .map_err(|source| StoreError::Io {
                path: "<thread>".into(),
                source,
            })?;
        Ok(EarlyUnpack {
            tx: Some(tx),
            spent,
            cancel,
            handle,
            plain,
        })
    }

    /// Hand over the next piece of the file; once the unpack has stopped (the file was not a
    /// valid layer), pieces are dropped.
    pub(super) fn feed(&mut self, chunk: &[u8]) {
        if let Some(tx) = &self.tx {
            let mut buf = self.spent.try_recv().unwrap_or_default();
            buf.clear();
            buf.extend_from_slice(chunk);
            if tx.send(buf).is_err() {
                self.tx = None;
            }
        }
    }

    /// The whole file was handed over.
    pub(super) fn close(&mut self) {
        self.tx = None;
    }

    /// Wait for the unpack. `digest` is the spooled file's digest (a plain tar's diff id).
    pub(super) fn finish(mut self, digest: &Digest) -> Option<(StagedLayer, unpack::Stats)> {
        self.tx = None;
        match self.handle.join() {
            Ok(Ok((staged, counts, diff_id))) => {
                let diff_id = if self.plain { digest.clone() } else { diff_id? };
                Some((staged, counts.with_diff_id(diff_id)))
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "early unpack failed; unpacking again from the spool");
                None
            }
            Err(_) => None,
        }
    }

    /// Stop the unpack and remove what it wrote.
    pub(super) fn cancel(mut self) {
        self.cancel.store(true, Ordering::SeqCst);
        self.tx = None;
        if let Ok(Ok((staged, _, _))) = self.handle.join() {
            staged.abandon();
        }
    }
}

/// The file's bytes as the spooling thread hands them over.
struct ChunkReader {
    rx: Receiver<Vec<u8>>,
    back: SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    cancel: Arc<AtomicBool>,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("load stopped"));
        }
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    let spent = std::mem::replace(&mut self.cur, chunk);
                    if spent.capacity() > 0 {
                        let _ = self.back.try_send(spent);
                    }
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_are_told_by_their_first_bytes() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_cksum();
        b.append_data(&mut h, "f", &b"x"[..]).unwrap();
        let tar = b.into_inner().unwrap();
        assert_eq!(looks_like_layer(&tar), Some(true));
        assert_eq!(looks_like_layer(&[0x1f, 0x8b, 8, 0]), Some(false));
        assert_eq!(looks_like_layer(b"{\"architecture\":\"amd64\"}"), None);
    }

    #[test]
    fn an_early_unpack_yields_the_layer_or_nothing() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path()).unwrap();
        let opts = unpack::Options {
            owners: unpack::Owners::Ignore,
        };
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        b.append_data(&mut h, "etc/hello", &b"hello"[..]).unwrap();
        let tar = b.into_inner().unwrap();
        let mut e = EarlyUnpack::start(&store, true, opts).unwrap();
        for piece in tar.chunks(100) {
            e.feed(piece);
        }
        e.close();
        let x = Digest::of(b"x");
        let (staged, stats) = e.finish(&x).unwrap();
        assert_eq!(stats.diff_id, x);
        assert_eq!(
            std::fs::read(staged.diff().join("etc/hello")).unwrap(),
            b"hello"
        );
        staged.abandon();

        // Not a tar after all: nothing, and nothing left behind.
        let mut e = EarlyUnpack::start(&store, true, opts).unwrap();
        e.feed(&[7u8; 4096]);
        assert!(e.finish(&Digest::of(b"y")).is_none());
        let e = EarlyUnpack::start(&store, false, opts).unwrap();
        e.cancel();
        assert_eq!(std::fs::read_dir(t.path().join("tmp")).unwrap().count(), 0);
    }
}
