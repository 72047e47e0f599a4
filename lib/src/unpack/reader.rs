//! The decompressing, hashing reader thread: [`spawn_reader`] sniffs the compression, inflates
//! and hashes on its own thread, and hands the uncompressed stream over in chunks.

use std::io::Read;

use super::{Result, UnpackError};
use crate::digest::Digest;
use crate::image::Compression;

/// The uncompressed stream, produced by a thread that decompresses and hashes, so that the
/// file writes on the caller's thread overlap with inflating on another core. Buffers go back
/// to the producer once read, so a layer costs a few megabytes of memory however large it is.
pub struct ChannelReader {
    rx: std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    back: std::sync::mpsc::SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    pub(super) hasher: HashHandle,
}

/// The digest of everything the reader thread produced, available once it is done.
#[derive(Clone)]
pub struct HashHandle(std::sync::Arc<std::sync::Mutex<Option<std::io::Result<Digest>>>>);

impl HashHandle {
    pub(super) fn finish(&self) -> Result<Digest> {
        // The producer sets this before it drops its sender, and the consumer reads to EOF first.
        match self.0.lock().expect("hash lock").take() {
            Some(Ok(d)) => Ok(d),
            Some(Err(e)) => Err(UnpackError::Tar(e)),
            None => Err(UnpackError::Tar(std::io::Error::other(
                "layer stream ended early",
            ))),
        }
    }
}

const CHUNK: usize = 1 << 20;
const IN_FLIGHT: usize = 4;

/// Start the reader thread over a compressed (or plain) tar blob.
pub fn spawn_reader(mut blob: impl Read + Send + 'static) -> Result<ChannelReader> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<std::io::Result<Vec<u8>>>(IN_FLIGHT);
    let (back_tx, back_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT + 2);
    let handle = HashHandle(Default::default());
    let out = handle.clone();
    std::thread::Builder::new()
        .name("den-inflate".into())
        .spawn(move || {
            let res = (|| -> std::io::Result<Digest> {
                let mut head = [0u8; 4];
                let mut n = 0;
                while n < 4 {
                    let r = blob.read(&mut head[n..])?;
                    if r == 0 {
                        break;
                    }
                    n += r;
                }
                let chained = std::io::Cursor::new(head[..n].to_vec()).chain(blob);
                let mut inner: Box<dyn Read> = match Compression::sniff(&head[..n]) {
                    Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(
                        std::io::BufReader::with_capacity(CHUNK, chained),
                    )),
                    Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(chained)?),
                    Compression::None => Box::new(chained),
                };
                let mut hasher = crate::digest::Hasher::new();
                loop {
                    let mut buf = back_rx.try_recv().unwrap_or_else(|_| vec![0u8; CHUNK]);
                    buf.resize(CHUNK, 0);
                    let mut filled = 0;
                    while filled < CHUNK {
                        match inner.read(&mut buf[filled..]) {
                            Ok(0) => break,
                            Ok(k) => filled += k,
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                            Err(e) => return Err(e),
                        }
                    }
                    if filled == 0 {
                        break;
                    }
                    buf.truncate(filled);
                    hasher.update(&buf);
                    if tx.send(Ok(buf)).is_err() {
                        // The consumer gave up (an error); stop quietly.
                        return Err(std::io::Error::other("unpack stopped"));
                    }
                }
                Ok(hasher.finish())
            })();
            let err_copy = res
                .as_ref()
                .err()
                .map(|e| std::io::Error::new(e.kind(), e.to_string()));
            *out.0.lock().expect("hash lock") = Some(res);
            if let Some(e) = err_copy {
                let _ = tx.send(Err(e));
            }
        })
        .map_err(|e| UnpackError::Io {
            path: "<thread>".into(),
            source: e,
        })?;
    Ok(ChannelReader {
        rx,
        back: back_tx,
        cur: Vec::new(),
        pos: 0,
        hasher: handle,
    })
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    let spent = std::mem::replace(&mut self.cur, chunk);
                    if spent.capacity() > 0 {
                        let _ = self.back.try_send(spent);
                    }
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
