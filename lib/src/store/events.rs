//! The event journal: den has no daemon to tell `events` what happened, so the verbs and the
//! monitors write it down. One JSON line per event in `events.log`, appended with `O_APPEND` in
//! one `write()` of at most [`MAX_LINE`] bytes (under `PIPE_BUF`, so concurrent writers' lines
//! never interleave), the file private (0600). When it passes [`CAP`] bytes it is renamed to
//! `events.log.1` (the one before is dropped), so the journal never holds more than twice the
//! cap. Recording is best effort: a verb never fails because its event could not be written.

use std::collections::BTreeMap;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ContainerRecord, Store};

/// The journal's size before it rotates.
pub const CAP: u64 = 1 << 20;
/// The longest line written: one `write()` under `PIPE_BUF` (4096) is atomic for appends.
pub const MAX_LINE: usize = 4000;

/// One event, in docker's terms: `container start ID (image=..., name=...)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Nanoseconds since the epoch.
    pub time: i64,
    /// `container` or `image`.
    #[serde(rename = "type")]
    pub kind: String,
    pub action: String,
    pub id: String,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

impl Event {
    pub fn new(kind: &str, action: &str, id: &str) -> Event {
        Event {
            time: chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0),
            kind: kind.into(),
            action: action.into(),
            id: id.into(),
            attributes: BTreeMap::new(),
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<String>) -> Event {
        self.attributes.insert(key.into(), value.into());
        self
    }

    /// A container's event: its image and name, and its labels, as docker attributes them.
    pub fn container(record: &ContainerRecord, action: &str) -> Event {
        let mut e = Event::new("container", action, &record.id)
            .with("image", record.image.clone())
            .with("name", record.name.clone());
        for (k, v) in &record.spec.labels {
            e.attributes.entry(k.clone()).or_insert_with(|| v.clone());
        }
        e
    }

    /// The line written: the event's JSON, with attributes dropped (labels last) until it fits.
    fn line(&self) -> Option<Vec<u8>> {
        let mut e = self.clone();
        loop {
            let mut line = serde_json::to_vec(&e).ok()?;
            line.push(b'\n');
            if line.len() <= MAX_LINE {
                return Some(line);
            }
            let key = e
                .attributes
                .keys()
                .rfind(|k| !matches!(k.as_str(), "image" | "name"))?
                .clone();
            e.attributes.remove(&key);
        }
    }
}

impl Store {
    pub fn events_path(&self) -> PathBuf {
        self.root.join("events.log")
    }

    /// Append `event` to the journal (best effort; a failure is logged).
    pub fn record_event(&self, event: &Event) {
        if let Err(e) = self.append_event(event) {
            tracing::warn!("could not record the {} event: {e}", event.action);
        }
    }

    fn append_event(&self, event: &Event) -> std::io::Result<()> {
        let Some(line) = event.line() else {
            return Ok(());
        };
        let path = self.events_path();
        if std::fs::metadata(&path).is_ok_and(|m| m.len() > CAP) {
            let _ = std::fs::rename(&path, path.with_extension("log.1"));
        }
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)?;
        let n = f.write(&line)?;
        if n != line.len() {
            return Err(std::io::Error::other("short write"));
        }
        Ok(())
    }

    /// Every event in the journal, oldest first (the rotated file, then the current one).
    /// Lines that do not parse (a torn tail after a crash) are skipped.
    pub fn events(&self) -> Vec<Event> {
        let path = self.events_path();
        let mut out = Vec::new();
        for p in [path.with_extension("log.1"), path] {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            out.extend(text.lines().filter_map(|l| serde_json::from_str(l).ok()));
        }
        out
    }
}

/// Follows the journal from its end: new events as they are appended, across a rotation.
pub struct Follow {
    path: PathBuf,
    offset: u64,
    inode: u64,
    partial: Vec<u8>,
}

impl Follow {
    pub fn new(store: &Store) -> Follow {
        use std::os::unix::fs::MetadataExt;
        let path = store.events_path();
        let md = std::fs::metadata(&path).ok();
        Follow {
            offset: md.as_ref().map_or(0, |m| m.len()),
            inode: md.as_ref().map_or(0, |m| m.ino()),
            path,
            partial: Vec::new(),
        }
    }

    /// The events appended since the last call.
    pub fn poll(&mut self) -> Vec<Event> {
        use std::os::unix::fs::MetadataExt;
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        let Ok(md) = f.metadata() else {
            return Vec::new();
        };
        if md.ino() != self.inode || md.len() < self.offset {
            // Rotated: the new file is read from its start.
            self.inode = md.ino();
            self.offset = 0;
            self.partial.clear();
        }
        let mut buf = Vec::new();
        if f.seek(std::io::SeekFrom::Start(self.offset)).is_err()
            || f.take(16 * CAP).read_to_end(&mut buf).is_err()
        {
            return Vec::new();
        }
        self.offset += buf.len() as u64;
        self.partial.extend(buf);
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return Vec::new();
        };
        let whole: Vec<u8> = self.partial.drain(..=end).collect();
        String::from_utf8_lossy(&whole)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_lose_labels_not_names() {
        let mut e = Event::new("container", "start", "abc")
            .with("name", "n")
            .with("image", "i");
        for i in 0..200 {
            e.attributes.insert(format!("label{i:03}"), "x".repeat(40));
        }
        let line = e.line().unwrap();
        assert!(line.len() <= MAX_LINE);
        let back: Event = serde_json::from_slice(&line).unwrap();
        assert_eq!(back.attributes["name"], "n");
        assert_eq!(back.attributes["image"], "i");
    }
}
