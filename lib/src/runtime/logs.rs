//! Container logs: the file the monitor writes and `den logs` reads.
//!
//! The format is podman's `k8s-file` (the CRI log format): one record per line,
//!
//! ```text
//! 2026-11-28T03:57:44.123456789Z stdout F a complete line
//! 2026-11-28T03:57:44.123499999Z stderr P a partial line (no newline yet)
//! ```
//!
//! so stdout and stderr stay apart, every line has its time, and a reader needs no index. A
//! record's message never contains a newline: `F` ends a line, `P` continues it in the next
//! record. Written by hand: the format is four fields and a rule, and no crate implements it.

use std::io::{BufRead, Read, Seek, SeekFrom, Write};
use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};

/// The log file's name in the container's directory.
pub const LOG_FILE: &str = "ctr.log";

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

/// Appends output to a log, record by record.
pub struct LogWriter<W: Write> {
    out: W,
}

impl<W: Write> LogWriter<W> {
    pub fn new(out: W) -> Self {
        LogWriter { out }
    }

    /// Record `data`, as read from the container's `stream` at `now`.
    pub fn write(
        &mut self,
        stream: Stream,
        data: &[u8],
        now: DateTime<Utc>,
    ) -> std::io::Result<()> {
        let ts = now.to_rfc3339_opts(SecondsFormat::Nanos, true);
        let mut rest = data;
        while !rest.is_empty() {
            let (line, tag, next) = match memchr(b'\n', rest) {
                Some(i) => (&rest[..i], b'F', &rest[i + 1..]),
                None => (rest, b'P', &rest[rest.len()..]),
            };
            self.out.write_all(ts.as_bytes())?;
            self.out.write_all(b" ")?;
            self.out.write_all(stream.name().as_bytes())?;
            self.out.write_all(&[b' ', tag, b' '])?;
            self.out.write_all(line)?;
            self.out.write_all(b"\n")?;
            rest = next;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

fn memchr(b: u8, s: &[u8]) -> Option<usize> {
    s.iter().position(|&c| c == b)
}

/// One parsed record.
#[derive(Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub time: &'a str,
    pub stream: Stream,
    /// The record ends its line.
    pub full: bool,
    pub message: &'a [u8],
}

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
        time,
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
            && DateTime::parse_from_rfc3339(r.time).is_ok_and(|t| t < since)
        {
            return Ok(());
        }
        if let Some(until) = opts.until
            && DateTime::parse_from_rfc3339(r.time).is_ok_and(|t| t >= until)
        {
            return Ok(());
        }
        let i = (r.stream == Stream::Stderr) as usize;
        let w: &mut dyn Write = if i == 0 { self.out } else { self.err };
        if opts.timestamps && self.at_line_start[i] {
            w.write_all(r.time.as_bytes())?;
            w.write_all(b" ")?;
        }
        w.write_all(r.message)?;
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

/// The byte offset where the last `n` lines of the log begin. Reads the file backwards in
/// blocks, so `--tail 5` of a large log costs one or two reads. A line may span several
/// records (`P`... then `F`); lines are counted at their `F` record.
pub fn tail_offset(file: &mut std::fs::File, n: usize) -> std::io::Result<u64> {
    let len = file.seek(SeekFrom::End(0))?;
    if n == 0 {
        return Ok(len);
    }
    let mut pos = len;
    let mut seen = 0usize;
    // Start of the record after the one being looked at.
    let mut next_start = len;
    // The first bytes of the block read before (later in the file), where a record's tag may be.
    let mut carry: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while pos > 0 {
        let step = (buf.len() as u64).min(pos);
        pos -= step;
        file.seek(SeekFrom::Start(pos))?;
        let block = &mut buf[..step as usize];
        file.read_exact(block)?;
        // Record starts in this block: index 0 when pos == 0, and after every newline except one
        // that ends the file.
        let mut i = block.len();
        while i > 0 {
            i -= 1;
            let starts_here = if block[i] == b'\n' {
                Some(i + 1)
            } else if i == 0 && pos == 0 {
                Some(0)
            } else {
                None
            };
            let Some(start) = starts_here else { continue };
            let abs = pos + start as u64;
            if abs >= len {
                continue;
            }
            let mut head: Vec<u8> = block[start..].iter().take(64).copied().collect();
            if head.len() < 64 {
                head.extend(carry.iter().take(64 - head.len()));
            }
            // The last record ends a line even when it has no newline yet.
            let last = next_start == len;
            if record_is_full(&head) || last {
                if seen == n {
                    return Ok(next_start);
                }
                seen += 1;
            }
            next_start = abs;
        }
        carry = block.iter().take(64).copied().collect();
    }
    Ok(0)
}

/// Whether a record (its first bytes) ends its line: its tag, after the second space, is `F`.
fn record_is_full(head: &[u8]) -> bool {
    let mut spaces = 0;
    for (i, &c) in head.iter().enumerate() {
        if c == b' ' {
            spaces += 1;
            if spaces == 2 {
                return head.get(i + 1) == Some(&b'F');
            }
        }
    }
    true
}

/// Print the log from `offset` to its current end; returns the offset reached (the start of a
/// record not yet complete, if the writer is mid-record).
pub fn copy_from(
    path: &Path,
    offset: u64,
    opts: &ReadOptions,
    sink: &mut Sink<'_>,
) -> std::io::Result<u64> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(offset),
        Err(e) => return Err(e),
    };
    file.seek(SeekFrom::Start(offset))?;
    let mut reader = std::io::BufReader::with_capacity(256 * 1024, file);
    let mut pos = offset;
    let mut line = Vec::with_capacity(1024);
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 || line.last() != Some(&b'\n') {
            return Ok(pos);
        }
        pos += n as u64;
        if let Some(r) = parse(&line[..line.len() - 1]) {
            sink.emit(&r, opts)?;
        }
    }
}

/// Where printing starts for `opts`: the beginning, or the start of the last `tail` lines.
pub fn start_offset(path: &Path, opts: &ReadOptions) -> std::io::Result<u64> {
    match opts.tail {
        None => Ok(0),
        Some(n) => match std::fs::File::open(path) {
            Ok(mut f) => tail_offset(&mut f, n),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(records: &[(Stream, &[u8])]) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        let mut w = LogWriter::new(
            std::fs::OpenOptions::new()
                .append(true)
                .open(f.path())
                .unwrap(),
        );
        let t = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.123456789Z")
            .unwrap()
            .with_timezone(&Utc);
        for (s, d) in records {
            w.write(*s, d, t).unwrap();
        }
        w.flush().unwrap();
        f
    }

    fn read(f: &Path, opts: &ReadOptions) -> (String, String) {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let off = start_offset(f, opts).unwrap();
        let mut sink = Sink::new(&mut o, &mut e);
        copy_from(f, off, opts, &mut sink).unwrap();
        let _ = sink;
        (String::from_utf8(o).unwrap(), String::from_utf8(e).unwrap())
    }

    #[test]
    fn records_round_trip_and_streams_stay_apart() {
        let f = log(&[
            (Stream::Stdout, b"one\ntw"),
            (Stream::Stderr, b"err\n"),
            (Stream::Stdout, b"o\nthree\n"),
        ]);
        let text = std::fs::read_to_string(f.path()).unwrap();
        assert!(
            text.starts_with("2026-01-02T03:04:05.123456789Z stdout F one\n"),
            "{text}"
        );
        assert!(text.contains(" stdout P tw\n"));
        let (o, e) = read(f.path(), &ReadOptions::default());
        assert_eq!(o, "one\ntwo\nthree\n");
        assert_eq!(e, "err\n");
    }

    #[test]
    fn timestamps_start_lines_only() {
        let f = log(&[(Stream::Stdout, b"a"), (Stream::Stdout, b"b\n")]);
        let (o, _) = read(
            f.path(),
            &ReadOptions {
                timestamps: true,
                ..Default::default()
            },
        );
        assert_eq!(o, "2026-01-02T03:04:05.123456789Z ab\n");
    }

    #[test]
    fn tail_counts_lines_not_records() {
        let f = log(&[
            (Stream::Stdout, b"1\n2\n3"),
            (Stream::Stdout, b"3\n4\n"),
            (Stream::Stdout, b"5\n"),
        ]);
        let tail = |n| {
            read(
                f.path(),
                &ReadOptions {
                    tail: Some(n),
                    ..Default::default()
                },
            )
            .0
        };
        assert_eq!(tail(2), "4\n5\n");
        assert_eq!(tail(3), "33\n4\n5\n");
        assert_eq!(tail(0), "");
        assert_eq!(tail(100), "1\n2\n33\n4\n5\n");
    }

    #[test]
    fn tail_of_a_large_log() {
        let mut recs = Vec::new();
        let lines: Vec<String> = (0..20000).map(|i| format!("line {i}\n")).collect();
        for l in &lines {
            recs.push((Stream::Stdout, l.as_bytes()));
        }
        let f = log(&recs);
        let (o, _) = read(
            f.path(),
            &ReadOptions {
                tail: Some(5),
                ..Default::default()
            },
        );
        assert_eq!(
            o,
            "line 19995\nline 19996\nline 19997\nline 19998\nline 19999\n"
        );
    }

    #[test]
    fn a_record_being_written_is_left_for_later() {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            f.path(),
            "2026-01-02T03:04:05Z stdout F done\n2026-01-02T03:04:05Z stdout F hal",
        )
        .unwrap();
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let mut sink = Sink::new(&mut o, &mut e);
        let off = copy_from(f.path(), 0, &ReadOptions::default(), &mut sink).unwrap();
        let _ = sink;
        assert_eq!(o, b"done\n");
        assert_eq!(off, "2026-01-02T03:04:05Z stdout F done\n".len() as u64);
    }
}
