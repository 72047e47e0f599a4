//! Transfers that must keep moving: the [`stall`] window and the least a transfer brings in it,
//! the next chunk of a body under that rule, and a server's text made fit to print.

use std::time::Duration;

use futures_util::StreamExt;

use super::{Registry, RegistryError, Result};

/// A transfer that brings less than [`MIN_PROGRESS`] bytes in this long is given up: a slow
/// but moving link is fine, a server that stops sending (or drips a byte now and then to hold
/// den) is not. `DEN_STALL_SECS` shortens it for tests.
pub fn stall() -> Duration {
    std::env::var("DEN_STALL_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(30))
}

/// The least a transfer must bring in each [`stall`] window: 16 KiB, half a kilobyte a second.
pub const MIN_PROGRESS: u64 = 16 << 10;

/// A transfer's progress, measured in windows of [`stall`].
pub(super) struct Progress {
    window: tokio::time::Instant,
    bytes: u64,
}

impl Progress {
    pub(super) fn new() -> Progress {
        Progress {
            window: tokio::time::Instant::now(),
            bytes: 0,
        }
    }

    /// Count `n` bytes; false when a whole window brought too little.
    fn moved(&mut self, n: usize) -> bool {
        self.bytes += n as u64;
        if self.window.elapsed() < stall() {
            return true;
        }
        let enough = self.bytes >= MIN_PROGRESS;
        *self = Progress::new();
        enough
    }
}

/// The most of a server's error body den reads and shows.
const SERVER_TEXT: usize = 300;

/// Text a server sent, made fit to print: at most [`SERVER_TEXT`] characters, control characters
/// (terminal escape sequences among them) replaced, whitespace collapsed.
pub fn server_text(raw: &str) -> String {
    let mut out = String::new();
    let mut space = false;
    for c in raw.chars() {
        if out.chars().count() >= SERVER_TEXT {
            out.push('…');
            break;
        }
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(if c.is_control() { '?' } else { c });
    }
    out
}

/// The start of a response's body as [`server_text`], read no further than needed.
pub async fn body_text(mut resp: reqwest::Response) -> String {
    let mut buf = Vec::new();
    while buf.len() < 4 * SERVER_TEXT {
        match tokio::time::timeout(stall(), resp.chunk()).await {
            Ok(Ok(Some(c))) => buf.extend_from_slice(&c),
            _ => break,
        }
    }
    server_text(&String::from_utf8_lossy(&buf))
}

/// The status and what the server said about it.
pub(super) async fn failure_text(resp: reqwest::Response) -> String {
    let status = resp.status();
    match body_text(resp).await {
        b if b.is_empty() => status.to_string(),
        b => format!("{status}: {b}"),
    }
}

impl Registry {
    /// The next chunk of a transfer, or the end; too little progress (see [`stall`]) is an
    /// error.
    pub(super) async fn next_chunk(
        &self,
        stream: &mut (impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
        progress: &mut Progress,
        what: &str,
    ) -> Result<Option<bytes::Bytes>> {
        let stalled = || RegistryError::Stalled {
            registry: self.reference.registry().into(),
            what: what.into(),
            secs: stall().as_secs(),
        };
        match tokio::time::timeout(stall(), stream.next()).await {
            Err(_) => Err(stalled()),
            Ok(None) => Ok(None),
            Ok(Some(Ok(c))) if progress.moved(c.len()) => Ok(Some(c)),
            Ok(Some(Ok(_))) => Err(stalled()),
            Ok(Some(Err(e))) => Err(self.transfer_error(what, e)),
        }
    }

    /// A failed request or transfer: stalled (no data for [`stall`]), or unreachable.
    pub(super) fn transfer_error(&self, what: &str, e: reqwest::Error) -> RegistryError {
        if e.is_timeout() {
            RegistryError::Stalled {
                registry: self.reference.registry().into(),
                what: what.into(),
                secs: stall().as_secs(),
            }
        } else {
            RegistryError::Unreachable {
                registry: self.reference.registry().into(),
                message: server_text(&crate::error::chain(&e)),
            }
        }
    }
}
