//! Container logs: the files the monitor writes and `den logs` reads.
//!
//! Two formats, one per log driver that keeps a file ([`LogDriver`]). podman's `k8s-file`
//! (the CRI log format, den's default), one record per line:
//!
//! ```text
//! 2026-11-28T03:57:44.123456789Z stdout F a complete line
//! 2026-11-28T03:57:44.123499999Z stderr P a partial line (no newline yet)
//! ```
//!
//! and docker's `json-file`, one JSON object per line:
//!
//! ```text
//! {"log":"a complete line\n","stream":"stdout","time":"2026-11-28T03:57:44.123456789Z"}
//! {"log":"a partial line","stream":"stderr","time":"2026-11-28T03:57:44.123499999Z"}
//! ```
//!
//! so stdout and stderr stay apart, every line has its time, and a reader needs no index. A
//! k8s-file record's message never contains a newline: `F` ends a line, `P` continues it in
//! the next record; a json-file record ends its line when its `log` ends with `\n`. Invalid
//! UTF-8 becomes U+FFFD in json-file (JSON strings are Unicode; docker's writer does the same)
//! and is kept as it is in k8s-file. Written by hand: the k8s format is four fields and a
//! rule, and no crate implements it; serde_json encodes and decodes the JSON strings.
//!
//! With `max-size` the writer rotates, as docker's json-file does: `ctr.log` is renamed
//! `ctr.log.1` (each older file one number up, the oldest beyond `max-file` dropped) and a new
//! `ctr.log` begun; renames are atomic, so a reader sees whole files. `den logs` reads the
//! files oldest first ([`LogReader`]), and with `-f` follows the live file across rotations by
//! its inode.
//!
//! The container chooses what it writes, so the reader trusts nothing in the file: records are
//! read up to [`MAX_RECORD`] bytes (a longer line is skipped, not buffered), a record that does
//! not parse is skipped, and no length in a record is believed.

use std::borrow::Cow;
use std::io::{BufRead, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};

pub use crate::config::logging::{LogConfig, LogDriver};

/// The log file's name in the container's directory.
pub const LOG_FILE: &str = "ctr.log";

/// The longest record a reader takes: the writer's records are at most 64 KiB of output
/// (k8s-file: one read of the monitor's) or 16 KiB escaped (json-file), so anything longer was
/// not written by den.
pub const MAX_RECORD: usize = 1 << 20;

/// json-file's longest message per record, as docker's (16 KiB): a longer line is split into
/// partial records, so a reader never needs more.
const JSON_CHUNK: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// The format of a log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    K8sFile,
    JsonFile,
}

impl Format {
    /// The format `driver` writes; None for drivers that keep no file.
    pub fn of(driver: LogDriver) -> Option<Format> {
        match driver {
            LogDriver::K8sFile => Some(Format::K8sFile),
            LogDriver::JsonFile => Some(Format::JsonFile),
            LogDriver::None | LogDriver::Passthrough => None,
        }
    }

    /// Parse one record (a line without its newline).
    pub fn parse(self, line: &[u8]) -> Option<Record<'_>> {
        match self {
            Format::K8sFile => parse(line),
            Format::JsonFile => parse_json(line),
        }
    }
}

/// Append the records of `data` to `rec`.
fn encode(format: Format, stream: Stream, data: &[u8], now: DateTime<Utc>, rec: &mut Vec<u8>) {
    let ts = now.to_rfc3339_opts(SecondsFormat::Nanos, true);
    let mut rest = data;
    while !rest.is_empty() {
        let (mut line, mut full, mut next) = match memchr(b'\n', rest) {
            Some(i) => (&rest[..i], true, &rest[i + 1..]),
            None => (rest, false, &rest[rest.len()..]),
        };
        match format {
            Format::K8sFile => {
                rec.extend_from_slice(ts.as_bytes());
                rec.push(b' ');
                rec.extend_from_slice(stream.name().as_bytes());
                rec.extend_from_slice(&[b' ', if full { b'F' } else { b'P' }, b' ']);
                rec.extend_from_slice(line);
                rec.push(b'\n');
            }
            Format::JsonFile => {
                if line.len() > JSON_CHUNK {
                    // The rest of the line goes in the next record, cut between characters.
                    let cut = char_boundary(line, JSON_CHUNK);
                    next = &rest[cut..];
                    line = &line[..cut];
                    full = false;
                }
                let mut text = String::from_utf8_lossy(line).into_owned();
                if full {
                    text.push('\n');
                }
                rec.extend_from_slice(b"{\"log\":");
                // A String always serializes.
                let _ = serde_json::to_writer(&mut *rec, &text);
                rec.extend_from_slice(b",\"stream\":\"");
                rec.extend_from_slice(stream.name().as_bytes());
                rec.extend_from_slice(b"\",\"time\":\"");
                rec.extend_from_slice(ts.as_bytes());
                rec.extend_from_slice(b"\"}\n");
            }
        }
        rest = next;
    }
}

/// Where to cut `s` at or before `at` without splitting a UTF-8 character (at most 3 bytes
/// back; at `at` when `s` is not UTF-8 there).
fn char_boundary(s: &[u8], at: usize) -> usize {
    (at.saturating_sub(3)..=at)
        .rev()
        .find(|&i| s.get(i).is_none_or(|&b| b & 0xC0 != 0x80))
        .unwrap_or(at)
}

/// How many bytes at the end of `s` begin a UTF-8 character that the next read completes.
fn incomplete_utf8(s: &[u8]) -> usize {
    let from = s.len().saturating_sub(3);
    let Some(i) = (from..s.len()).rev().find(|&i| s[i] & 0xC0 != 0x80) else {
        return 0;
    };
    let need = match s[i] {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => return 0,
    };
    if s.len() - i < need { s.len() - i } else { 0 }
}

/// The log a container's output is written to: its format, and rotation by `max-size` and
/// `max-file`.
pub struct LogFile {
    dir: PathBuf,
    out: std::io::BufWriter<std::fs::File>,
    format: Format,
    size: u64,
    max_size: Option<u64>,
    max_file: u32,
    rec: Vec<u8>,
    /// json-file: each stream's bytes that begin a character its next read completes (a 64
    /// KiB read may end inside one), held so the character is not written as two U+FFFD.
    held: [Vec<u8>; 2],
}

fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

impl LogFile {
    /// Open the log in the container directory `dir` for `config`, to append to; None for a
    /// driver that keeps no file.
    pub fn open(dir: &Path, config: &LogConfig) -> std::io::Result<Option<LogFile>> {
        let Some(format) = Format::of(config.driver) else {
            return Ok(None);
        };
        let file = open_append(&dir.join(LOG_FILE))?;
        let size = file.metadata()?.len();
        Ok(Some(LogFile {
            dir: dir.to_path_buf(),
            out: std::io::BufWriter::with_capacity(64 * 1024, file),
            format,
            size,
            max_size: config.max_size,
            max_file: config.max_file.max(1),
            rec: Vec::new(),
            held: [Vec::new(), Vec::new()],
        }))
    }

    /// Record `data`, as read from the container's `stream` at `now`, rotating before a record
    /// that would take the file past `max-size` (a single record larger than it gets a file of
    /// its own).
    pub fn write(
        &mut self,
        stream: Stream,
        data: &[u8],
        now: DateTime<Utc>,
    ) -> std::io::Result<()> {
        let mut rec = std::mem::take(&mut self.rec);
        rec.clear();
        if self.format == Format::JsonFile {
            let held = &mut self.held[stream as usize];
            let joined;
            let data = if held.is_empty() {
                data
            } else {
                held.extend_from_slice(data);
                joined = std::mem::take(held);
                &joined[..]
            };
            let keep = incomplete_utf8(data);
            let (now_part, later) = data.split_at(data.len() - keep);
            encode(self.format, stream, now_part, now, &mut rec);
            *held = later.to_vec();
        } else {
            encode(self.format, stream, data, now, &mut rec);
        }
        let result = self.append(&rec);
        self.rec = rec;
        result
    }

    /// Append encoded records (each ends with the only newline it holds).
    fn append(&mut self, mut recs: &[u8]) -> std::io::Result<()> {
        let Some(max) = self.max_size else {
            self.size += recs.len() as u64;
            return self.out.write_all(recs);
        };
        while !recs.is_empty() {
            // As many whole records as fit, at least one.
            let mut end = 0;
            while end < recs.len() {
                let next = memchr(b'\n', &recs[end..]).map_or(recs.len(), |i| end + i + 1);
                if end > 0 && self.size + next as u64 > max {
                    break;
                }
                end = next;
            }
            if self.size > 0 && self.size + end as u64 > max {
                self.rotate()?;
                continue;
            }
            self.out.write_all(&recs[..end])?;
            self.size += end as u64;
            recs = &recs[end..];
        }
        Ok(())
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        // The monitor asks after every wake-up; with nothing buffered there is nothing to do
        // (and no reason to run, and keep resident, BufWriter's flush path).
        if self.out.buffer().is_empty() {
            return Ok(());
        }
        self.out.flush()
    }

    /// `ctr.log.N-1` → `ctr.log.N` ... `ctr.log` → `ctr.log.1` (dropping what passes
    /// `max-file`), then a new `ctr.log`. With `max-file` 1 the new file replaces the old in
    /// one rename.
    fn rotate(&mut self) -> std::io::Result<()> {
        self.out.flush()?;
        let live = self.dir.join(LOG_FILE);
        if self.max_file == 1 {
            let tmp = self.dir.join(format!("{LOG_FILE}.new"));
            let file = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            std::fs::rename(&tmp, &live)?;
            self.reopen(file);
            return Ok(());
        }
        for i in (1..self.max_file - 1).rev() {
            match std::fs::rename(rotated(&self.dir, i), rotated(&self.dir, i + 1)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        std::fs::rename(&live, rotated(&self.dir, 1))?;
        let file = open_append(&live)?;
        self.reopen(file);
        Ok(())
    }

    fn reopen(&mut self, file: std::fs::File) {
        self.out = std::io::BufWriter::with_capacity(64 * 1024, file);
        self.size = 0;
    }
}

impl Drop for LogFile {
    /// Bytes held for a character that never came are written (as U+FFFD) when the log closes.
    fn drop(&mut self) {
        for (i, stream) in [Stream::Stdout, Stream::Stderr].into_iter().enumerate() {
            let held = std::mem::take(&mut self.held[i]);
            if !held.is_empty() {
                let mut rec = Vec::new();
                encode(self.format, stream, &held, Utc::now(), &mut rec);
                let _ = self.append(&rec);
            }
        }
        let _ = self.out.flush();
    }
}

/// `ctr.log.N`.
fn rotated(dir: &Path, n: u32) -> PathBuf {
    dir.join(format!("{LOG_FILE}.{n}"))
}

/// A container's log files, oldest first: `ctr.log.N` ... `ctr.log.1`, then `ctr.log` (which
/// may not exist yet).
pub fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = (1..=crate::config::logging::MAX_FILES)
        .rev()
        .map(|n| rotated(dir, n))
        .filter(|p| p.exists())
        .collect();
    files.push(dir.join(LOG_FILE));
    files
}

fn memchr(b: u8, s: &[u8]) -> Option<usize> {
    s.iter().position(|&c| c == b)
}

/// One parsed record.
#[derive(Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub time: Cow<'a, str>,
    pub stream: Stream,
    /// The record ends its line.
    pub full: bool,
    pub message: Cow<'a, [u8]>,
}

/// Parse a k8s-file record.
pub fn parse(line: &[u8]) -> Option<Record<'_>> {
    let mut parts = line.splitn(4, |&c| c == b' ');
    let time = std::str::from_utf8(parts.next()?).ok()?;
    let stream = match parts.next()? {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return None,
    };
    let full = match parts.next()? {
        b"F" => true,
        b"P" => false,
        _ => return None,
    };
    let message = parts.next().unwrap_or(b"");
    Some(Record {
        time: Cow::Borrowed(time),
        stream,
        full,
        message: Cow::Borrowed(message),
    })
}

#[derive(serde::Deserialize)]
struct JsonRecord<'a> {
    #[serde(borrow)]
    log: Cow<'a, str>,
    #[serde(borrow)]
    stream: Cow<'a, str>,
    #[serde(borrow)]
    time: Cow<'a, str>,
}

/// Parse a json-file record.
pub fn parse_json(line: &[u8]) -> Option<Record<'_>> {
    let r: JsonRecord<'_> = serde_json::from_slice(line).ok()?;
    let stream = match r.stream.as_ref() {
        "stdout" => Stream::Stdout,
        "stderr" => Stream::Stderr,
        _ => return None,
    };
    let full = r.log.ends_with('\n');
    let message: Cow<'_, [u8]> = match r.log {
        Cow::Borrowed(s) => Cow::Borrowed(s.strip_suffix('\n').unwrap_or(s).as_bytes()),
        Cow::Owned(mut s) => {
            if full {
                s.pop();
            }
            Cow::Owned(s.into_bytes())
        }
    };
    Some(Record {
        time: r.time,
        stream,
        full,
        message,
    })
}
/// What `den logs` prints.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Prefix each line with its time.
    pub timestamps: bool,
    /// Only the last N lines.
    pub tail: Option<usize>,
    /// Only records at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only records before this time.
    pub until: Option<DateTime<Utc>>,
}

/// Where the lines go: stdout records to `out`, stderr records to `err`.
pub struct Sink<'a> {
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
    /// Whether the previous record of each stream ended its line (for `-t`).
    at_line_start: [bool; 2],
}

impl<'a> Sink<'a> {
    pub fn new(out: &'a mut dyn Write, err: &'a mut dyn Write) -> Self {
        Sink {
            out,
            err,
            at_line_start: [true, true],
        }
    }

    fn emit(&mut self, r: &Record<'_>, opts: &ReadOptions) -> std::io::Result<()> {
        if let Some(since) = opts.since
            && DateTime::parse_from_rfc3339(&r.time).is_ok_and(|t| t < since)
        {
            return Ok(());
        }
        if let Some(until) = opts.until
            && DateTime::parse_from_rfc3339(&r.time).is_ok_and(|t| t >= until)
        {
            return Ok(());
        }
        let i = (r.stream == Stream::Stderr) as usize;
        let w: &mut dyn Write = if i == 0 { self.out } else { self.err };
        if opts.timestamps && self.at_line_start[i] {
            w.write_all(r.time.as_bytes())?;
            w.write_all(b" ")?;
        }
        w.write_all(&r.message)?;
        if r.full {
            w.write_all(b"\n")?;
        }
        self.at_line_start[i] = r.full;
        Ok(())
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()?;
        self.err.flush()
    }
}

/// The byte offset where the last `n` lines of the log file begin, and how many lines were
/// found (fewer than `n` when the file holds fewer: the rest are in older files). Reads the
/// file backwards in blocks, so `--tail 5` of a large log costs a few reads. A line may span
/// several records; lines are counted at the record that ends them, and in the `live` file
/// (the one being written) at its last record too.
pub fn tail_offset(
    file: &std::fs::File,
    format: Format,
    n: usize,
    live: bool,
) -> std::io::Result<(u64, usize)> {
    let len = file.metadata()?.len();
    if n == 0 {
        return Ok((len, 0));
    }
    let mut pos = len;
    let mut seen = 0usize;
    // Start of the record after the one being looked at.
    let mut next_start = len;
    let mut buf = vec![0u8; 64 * 1024];
    while pos > 0 {
        let step = (buf.len() as u64).min(pos);
        pos -= step;
        let block = &mut buf[..step as usize];
        file.read_exact_at(block, pos)?;
        // Record starts in this block: index 0 when pos == 0, and after every newline except one
        // that ends the file.
        let mut i = block.len();
        while i > 0 {
            i -= 1;
            let start = if block[i] == b'\n' {
                i + 1
            } else if i == 0 && pos == 0 {
                0
            } else {
                continue;
            };
            let abs = pos + start as u64;
            if abs >= len {
                continue;
            }
            // The last record ends a line even when it has no newline yet.
            if (live && next_start == len) || record_is_full(file, format, abs, next_start)? {
                if seen == n {
                    return Ok((next_start, seen));
                }
                seen += 1;
            }
            next_start = abs;
        }
    }
    Ok((0, seen))
}

/// Whether the record in `start..end` (its newline included) ends its line. k8s-file: its tag,
/// after the second space, is `F`. json-file: its `log` string ends with an escaped `\n`,
/// read from the record's end (the stream and time after it hold no quotes).
fn record_is_full(
    file: &std::fs::File,
    format: Format,
    start: u64,
    end: u64,
) -> std::io::Result<bool> {
    match format {
        Format::K8sFile => {
            let mut head = [0u8; 64];
            let len = ((end - start) as usize).min(head.len());
            file.read_exact_at(&mut head[..len], start)?;
            let mut spaces = 0;
            for (i, &c) in head[..len].iter().enumerate() {
                if c == b' ' {
                    spaces += 1;
                    if spaces == 2 {
                        return Ok(head.get(i + 1) == Some(&b'F'));
                    }
                }
            }
            Ok(true)
        }
        Format::JsonFile => {
            let mut tail = [0u8; 256];
            let len = ((end - start) as usize).min(tail.len());
            file.read_exact_at(&mut tail[..len], end - len as u64)?;
            Ok(json_tail_is_full(&tail[..len]))
        }
    }
}

/// Whether a json-file record, seen by its last bytes, ends its line.
fn json_tail_is_full(tail: &[u8]) -> bool {
    const KEY: &[u8] = b"\",\"stream\":\"";
    let Some(at) = tail.windows(KEY.len()).rposition(|w| w == KEY) else {
        return true;
    };
    let before = &tail[..at];
    if !before.ends_with(b"n") {
        return false;
    }
    // `\n` escaped: an odd run of backslashes before the `n`.
    let slashes = before[..before.len() - 1]
        .iter()
        .rev()
        .take_while(|&&c| c == b'\\')
        .count();
    slashes % 2 == 1
}

/// Print the records of `file` from `offset` to its end; returns the offset reached (the start
/// of a record not yet complete, if the writer is mid-record). A record longer than
/// [`MAX_RECORD`] is skipped.
fn copy_records(
    file: &std::fs::File,
    offset: u64,
    format: Format,
    opts: &ReadOptions,
    sink: &mut Sink<'_>,
) -> std::io::Result<u64> {
    let mut f = file;
    f.seek(SeekFrom::Start(offset))?;
    let mut reader = std::io::BufReader::with_capacity(256 * 1024, f);
    let mut pos = offset;
    let mut line = Vec::with_capacity(1024);
    loop {
        line.clear();
        let (n, ended) = read_bounded(&mut reader, &mut line)?;
        if !ended {
            return Ok(pos);
        }
        pos += n as u64;
        if line.len() <= MAX_RECORD
            && let Some(r) = format.parse(&line[..line.len() - 1])
        {
            sink.emit(&r, opts)?;
        }
    }
}

/// Read a line into `line`, keeping at most [`MAX_RECORD`] + 1 bytes of it (the rest is read
/// and dropped); returns the bytes consumed and whether the line ended.
fn read_bounded(reader: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<(usize, bool)> {
    let mut consumed = 0;
    loop {
        let buf = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok((consumed, false));
        }
        let (take, ended) = match memchr(b'\n', buf) {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        let room = (MAX_RECORD + 1).saturating_sub(line.len());
        line.extend_from_slice(&buf[..take.min(room)]);
        if ended && take > room {
            // Keep the newline, so the caller sees an ended (overlong) line.
            line.push(b'\n');
        }
        reader.consume(take);
        consumed += take;
        if ended {
            return Ok((consumed, true));
        }
    }
}

/// Reads a container's log files in order, and follows the live one across rotations.
pub struct LogReader {
    dir: PathBuf,
    format: Format,
    /// The file being read, its inode, and the offset reached in it.
    current: Option<(std::fs::File, u64, u64)>,
}

impl LogReader {
    pub fn new(dir: &Path, format: Format) -> LogReader {
        LogReader {
            dir: dir.to_path_buf(),
            format,
            current: None,
        }
    }

    /// Print what is there now, as `opts` says (the last `tail` lines across the files, or
    /// all), leaving the reader at the end of the live file.
    pub fn print_all(&mut self, opts: &ReadOptions, sink: &mut Sink<'_>) -> std::io::Result<()> {
        let files: Vec<(std::fs::File, u64)> = log_files(&self.dir)
            .iter()
            .filter_map(|p| std::fs::File::open(p).ok())
            .filter_map(|f| f.metadata().ok().map(|m| (f, m.ino())))
            .collect();
        // Where to begin: (index into files, offset).
        let mut begin = (0, 0);
        if let Some(mut want) = opts.tail {
            begin = (files.len(), 0);
            let last = files.len().saturating_sub(1);
            for (i, (f, _)) in files.iter().enumerate().rev() {
                let (off, seen) = tail_offset(f, self.format, want, i == last)?;
                begin = (i, off);
                if seen >= want {
                    break;
                }
                want -= seen;
            }
        }
        for (i, (f, ino)) in files.into_iter().enumerate().skip(begin.0) {
            let from = if i == begin.0 { begin.1 } else { 0 };
            let reached = copy_records(&f, from, self.format, opts, sink)?;
            self.current = Some((f, ino, reached));
        }
        Ok(())
    }

    /// Print what was written since; follows `ctr.log` when the writer rotated it. Returns
    /// whether anything was read.
    pub fn follow(&mut self, opts: &ReadOptions, sink: &mut Sink<'_>) -> std::io::Result<bool> {
        let mut progressed = false;
        loop {
            let Some((file, ino, pos)) = &mut self.current else {
                // No log yet: begin with the live file once it exists.
                match std::fs::File::open(self.dir.join(LOG_FILE)) {
                    Ok(f) => {
                        let ino = f.metadata()?.ino();
                        self.current = Some((f, ino, 0));
                        continue;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(progressed),
                    Err(e) => return Err(e),
                }
            };
            let reached = copy_records(file, *pos, self.format, opts, sink)?;
            progressed |= reached != *pos;
            *pos = reached;
            let live = match std::fs::metadata(self.dir.join(LOG_FILE)) {
                Ok(m) => m.ino(),
                // Mid-rotation: the new file is not there yet.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(progressed),
                Err(e) => return Err(e),
            };
            if live == *ino {
                return Ok(progressed);
            }
            // Rotated: the old file is written no more. Read its end, then the file after it.
            let reached = copy_records(file, *pos, self.format, opts, sink)?;
            progressed |= reached != *pos;
            let old = *ino;
            let files = log_files(&self.dir);
            let after = files
                .iter()
                .position(|p| std::fs::metadata(p).is_ok_and(|m| m.ino() == old))
                .map(|i| i + 1)
                .unwrap_or(files.len() - 1);
            let next = files[after.min(files.len() - 1)].clone();
            match std::fs::File::open(&next) {
                Ok(f) => {
                    let ino = f.metadata()?.ino();
                    self.current = Some((f, ino, 0));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    self.current = None;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-02T03:04:05.123456789Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn log_in(dir: &Path, config: &LogConfig, records: &[(Stream, &[u8])]) {
        let mut w = LogFile::open(dir, config).unwrap().unwrap();
        for (s, d) in records {
            w.write(*s, d, t0()).unwrap();
        }
        w.flush().unwrap();
    }

    fn k8s() -> LogConfig {
        LogConfig::k8s_file()
    }

    fn json() -> LogConfig {
        LogConfig::new(LogDriver::JsonFile, Default::default()).unwrap()
    }

    fn rotating(driver: LogDriver, size: &str, files: &str) -> LogConfig {
        LogConfig::new(
            driver,
            [
                ("max-size".to_string(), size.to_string()),
                ("max-file".to_string(), files.to_string()),
            ]
            .into(),
        )
        .unwrap()
    }

    fn read(dir: &Path, format: Format, opts: &ReadOptions) -> (String, String) {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let mut sink = Sink::new(&mut o, &mut e);
        LogReader::new(dir, format)
            .print_all(opts, &mut sink)
            .unwrap();
        let _ = sink;
        (String::from_utf8(o).unwrap(), String::from_utf8(e).unwrap())
    }

    fn tail(n: usize) -> ReadOptions {
        ReadOptions {
            tail: Some(n),
            ..Default::default()
        }
    }

    #[test]
    fn records_round_trip_and_streams_stay_apart() {
        for (config, format) in [(k8s(), Format::K8sFile), (json(), Format::JsonFile)] {
            let d = tempfile::tempdir().unwrap();
            log_in(
                d.path(),
                &config,
                &[
                    (Stream::Stdout, b"one\ntw"),
                    (Stream::Stderr, b"err\n"),
                    (Stream::Stdout, b"o\nthree\n"),
                ],
            );
            let (o, e) = read(d.path(), format, &ReadOptions::default());
            assert_eq!(o, "one\ntwo\nthree\n");
            assert_eq!(e, "err\n");
        }
    }

    #[test]
    fn k8s_file_records() {
        let d = tempfile::tempdir().unwrap();
        log_in(d.path(), &k8s(), &[(Stream::Stdout, b"one\ntw")]);
        let text = std::fs::read_to_string(d.path().join(LOG_FILE)).unwrap();
        assert_eq!(
            text,
            "2026-01-02T03:04:05.123456789Z stdout F one\n2026-01-02T03:04:05.123456789Z stdout P tw\n"
        );
    }

    #[test]
    fn json_file_records_are_dockers() {
        let d = tempfile::tempdir().unwrap();
        log_in(d.path(), &json(), &[(Stream::Stdout, b"one\ntw")]);
        let text = std::fs::read_to_string(d.path().join(LOG_FILE)).unwrap();
        assert_eq!(
            text,
            "{\"log\":\"one\\n\",\"stream\":\"stdout\",\"time\":\"2026-01-02T03:04:05.123456789Z\"}\n\
             {\"log\":\"tw\",\"stream\":\"stdout\",\"time\":\"2026-01-02T03:04:05.123456789Z\"}\n"
        );
    }

    #[test]
    fn hostile_output_is_encoded_and_read_back_safely() {
        let d = tempfile::tempdir().unwrap();
        let fake = b"{\"log\":\"forged\\n\",\"stream\":\"stderr\",\"time\":\"x\"}\\\n";
        let long = vec![b'a'; 3 * JSON_CHUNK + 5];
        log_in(
            d.path(),
            &json(),
            &[
                (Stream::Stdout, fake),
                (Stream::Stdout, b"bad \xff\xfe utf-8\n"),
                (Stream::Stdout, &long),
                (Stream::Stdout, b"\n\\\\n\n"),
            ],
        );
        let text = std::fs::read_to_string(d.path().join(LOG_FILE)).unwrap();
        // The long line went in 16 KiB records.
        assert_eq!(text.lines().count(), 1 + 1 + 4 + 1 + 1);
        let (o, e) = read(d.path(), Format::JsonFile, &ReadOptions::default());
        let want = format!(
            "{}bad \u{fffd}\u{fffd} utf-8\n{}\n\\\\n\n",
            String::from_utf8_lossy(fake),
            String::from_utf8(long).unwrap()
        );
        assert_eq!(o, want);
        assert_eq!(e, "");
        let (o, _) = read(d.path(), Format::JsonFile, &tail(2));
        assert!(
            o.starts_with("aaaa") && o.ends_with("a\n\\\\n\n"),
            "{o:.20}"
        );
    }

    #[test]
    fn junk_and_overlong_lines_are_skipped() {
        let d = tempfile::tempdir().unwrap();
        let mut junk = b"2026-01-02T03:04:05Z stdout F ok\nnot a record\n".to_vec();
        junk.extend(vec![b'x'; MAX_RECORD + 10]);
        junk.extend(b"\n2026-01-02T03:04:05Z stderr F after\n{\"log\":5}\n");
        std::fs::write(d.path().join(LOG_FILE), &junk).unwrap();
        let (o, e) = read(d.path(), Format::K8sFile, &ReadOptions::default());
        assert_eq!((o.as_str(), e.as_str()), ("ok\n", "after\n"));
        let (o, e) = read(d.path(), Format::JsonFile, &ReadOptions::default());
        assert_eq!((o.as_str(), e.as_str()), ("", ""));
    }

    #[test]
    fn timestamps_start_lines_only() {
        let d = tempfile::tempdir().unwrap();
        log_in(
            d.path(),
            &k8s(),
            &[(Stream::Stdout, b"a"), (Stream::Stdout, b"b\n")],
        );
        let (o, _) = read(
            d.path(),
            Format::K8sFile,
            &ReadOptions {
                timestamps: true,
                ..Default::default()
            },
        );
        assert_eq!(o, "2026-01-02T03:04:05.123456789Z ab\n");
    }

    #[test]
    fn tail_counts_lines_not_records() {
        for (config, format) in [(k8s(), Format::K8sFile), (json(), Format::JsonFile)] {
            let d = tempfile::tempdir().unwrap();
            log_in(
                d.path(),
                &config,
                &[
                    (Stream::Stdout, b"1\n2\n3"),
                    (Stream::Stdout, b"3\n4\n"),
                    (Stream::Stdout, b"5\n"),
                ],
            );
            let tail = |n| read(d.path(), format, &tail(n)).0;
            assert_eq!(tail(2), "4\n5\n");
            assert_eq!(tail(3), "33\n4\n5\n");
            assert_eq!(tail(0), "");
            assert_eq!(tail(100), "1\n2\n33\n4\n5\n");
        }
    }

    #[test]
    fn tail_of_a_large_log() {
        let d = tempfile::tempdir().unwrap();
        let lines: Vec<String> = (0..20000).map(|i| format!("line {i}\n")).collect();
        let recs: Vec<(Stream, &[u8])> = lines
            .iter()
            .map(|l| (Stream::Stdout, l.as_bytes()))
            .collect();
        log_in(d.path(), &k8s(), &recs);
        let (o, _) = read(d.path(), Format::K8sFile, &tail(5));
        assert_eq!(
            o,
            "line 19995\nline 19996\nline 19997\nline 19998\nline 19999\n"
        );
    }

    #[test]
    fn rotation_keeps_max_file_files_and_reads_across_them() {
        for driver in [LogDriver::K8sFile, LogDriver::JsonFile] {
            let format = Format::of(driver).unwrap();
            let d = tempfile::tempdir().unwrap();
            let lines: Vec<String> = (0..100).map(|i| format!("line {i}\n")).collect();
            let recs: Vec<(Stream, &[u8])> = lines
                .iter()
                .map(|l| (Stream::Stdout, l.as_bytes()))
                .collect();
            log_in(d.path(), &rotating(driver, "1k", "3"), &recs);
            let names: Vec<String> = log_files(d.path())
                .iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect();
            assert_eq!(names, ["ctr.log.2", "ctr.log.1", "ctr.log"]);
            for p in log_files(d.path()) {
                assert!(std::fs::metadata(&p).unwrap().len() <= 1024);
            }
            let (o, _) = read(d.path(), format, &ReadOptions::default());
            let got: Vec<&str> = o.lines().collect();
            let last = got.last().copied();
            assert_eq!(last, Some("line 99"));
            // Consecutive, from the oldest line kept.
            let first: usize = got[0][5..].parse().unwrap();
            assert!(first > 0);
            let want: Vec<String> = (first..100).map(|i| format!("line {i}")).collect();
            assert_eq!(got, want);
            // --tail across the files: more lines than ctr.log holds.
            let n = got.len() - 2;
            let (o, _) = read(d.path(), format, &tail(n));
            assert_eq!(o.lines().count(), n);
            assert!(o.ends_with("line 99\n"));
        }
    }

    #[test]
    fn one_large_read_is_rotated_between_its_records() {
        let d = tempfile::tempdir().unwrap();
        let all = lines_text(0..200);
        log_in(
            d.path(),
            &rotating(LogDriver::K8sFile, "1k", "100"),
            &[(Stream::Stdout, all.as_bytes())],
        );
        let files = log_files(d.path());
        assert!(files.len() > 5);
        for p in &files {
            assert!(std::fs::metadata(p).unwrap().len() <= 1024);
        }
        let (o, _) = read(d.path(), Format::K8sFile, &ReadOptions::default());
        assert_eq!(o, all);
    }

    fn lines_text(r: std::ops::Range<usize>) -> String {
        r.map(|i| format!("line {i}\n")).collect()
    }

    #[test]
    fn max_file_one_replaces_the_file() {
        let d = tempfile::tempdir().unwrap();
        let lines: Vec<String> = (0..100).map(|i| format!("line {i}\n")).collect();
        let recs: Vec<(Stream, &[u8])> = lines
            .iter()
            .map(|l| (Stream::Stdout, l.as_bytes()))
            .collect();
        log_in(d.path(), &rotating(LogDriver::JsonFile, "1k", "1"), &recs);
        assert_eq!(log_files(d.path()).len(), 1);
        let (o, _) = read(d.path(), Format::JsonFile, &ReadOptions::default());
        assert!(o.ends_with("line 99\n") && !o.starts_with("line 0\n"));
    }

    #[test]
    fn follow_reads_across_rotations() {
        let d = tempfile::tempdir().unwrap();
        let mut w = LogFile::open(d.path(), &rotating(LogDriver::JsonFile, "300", "2"))
            .unwrap()
            .unwrap();
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let mut sink = Sink::new(&mut o, &mut e);
        let opts = ReadOptions::default();
        let mut r = LogReader::new(d.path(), Format::JsonFile);
        r.print_all(&opts, &mut sink).unwrap();
        let mut want = String::new();
        for i in 0..60 {
            let line = format!("line {i}\n");
            w.write(Stream::Stdout, line.as_bytes(), t0()).unwrap();
            w.flush().unwrap();
            want.push_str(&line);
            // Every few lines the reader looks; the writer has rotated once or more meanwhile
            // (with max-file 2, at most one file back is kept: read in time, nothing is lost).
            if i % 2 == 1 {
                r.follow(&opts, &mut sink).unwrap();
            }
        }
        r.follow(&opts, &mut sink).unwrap();
        let _ = sink;
        assert_eq!(String::from_utf8(o).unwrap(), want);
    }

    #[test]
    fn a_record_being_written_is_left_for_later() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join(LOG_FILE);
        std::fs::write(
            &path,
            "2026-01-02T03:04:05Z stdout F done\n2026-01-02T03:04:05Z stdout F hal",
        )
        .unwrap();
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let mut sink = Sink::new(&mut o, &mut e);
        let mut r = LogReader::new(d.path(), Format::K8sFile);
        r.print_all(&ReadOptions::default(), &mut sink).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"f\n").unwrap();
        assert!(r.follow(&ReadOptions::default(), &mut sink).unwrap());
        let _ = sink;
        assert_eq!(o, b"done\nhalf\n");
    }

    #[test]
    fn json_file_never_splits_a_character() {
        let d = tempfile::tempdir().unwrap();
        // A read that ends inside "é", and a long line of 3-byte characters.
        let long = "€".repeat(JSON_CHUNK);
        log_in(
            d.path(),
            &json(),
            &[
                (Stream::Stdout, b"caf\xc3"),
                (Stream::Stderr, b"x\xe2\x82"),
                (Stream::Stdout, b"\xa9\n"),
                (Stream::Stderr, b"\xac\n"),
                (Stream::Stdout, long.as_bytes()),
                (Stream::Stdout, b"\n"),
                (Stream::Stdout, b"end \xf0\x9f"),
            ],
        );
        let (o, e) = read(d.path(), Format::JsonFile, &ReadOptions::default());
        assert_eq!(e, "x€\n");
        // What never completed is written when the log closes.
        assert_eq!(o, format!("café\n{long}\nend \u{fffd}"));
        assert_eq!(incomplete_utf8(b"ab"), 0);
        assert_eq!(incomplete_utf8(b"a\xe2\x82\xac"), 0);
        assert_eq!(incomplete_utf8(b"a\xf0\x9f\x98"), 3);
        assert_eq!(char_boundary("a€".as_bytes(), 2), 1);
    }

    #[test]
    fn json_tails() {
        assert!(json_tail_is_full(
            b"{\"log\":\"a\\n\",\"stream\":\"stdout\",\"time\":\"t\"}"
        ));
        assert!(!json_tail_is_full(
            b"{\"log\":\"a\\\\n\",\"stream\":\"stdout\",\"time\":\"t\"}"
        ));
        assert!(!json_tail_is_full(
            b"{\"log\":\"a\",\"stream\":\"stdout\",\"time\":\"t\"}"
        ));
    }
}
