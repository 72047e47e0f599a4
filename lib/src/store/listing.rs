//! The listing of every container (`ps -a`, `container prune`, `network rm`, `system df`):
//! read through `containers.cache`, a copy of each container's record and state as last read,
//! with the stamp of its directory at that time.
//!
//! Every write to a container's `container.json`, `state.json` and `health.json` is a rename
//! into `containers/<id>/` ([`crate::fs::write_atomic`]), which changes the directory's mtime
//! and ctime; its logs and writable layer live in files and subdirectories whose changes do
//! not. So one `lstat` of the directory tells whether what the cache holds for it is still
//! what its files say, and a listing of 10,000 containers makes 10,000 `lstat`s instead of
//! 20,000 opens, reads and closes. A container whose stamp differs (or that the cache lacks) is
//! read from its files, stat first, so a change made while it is read shows as a new stamp
//! next time.
//!
//! The cache's first line holds the stamp of `containers/` itself, which changes when a
//! container is created or removed: while it holds, the cache's lines are the containers, in
//! the order last listed, and `containers/` is not read at all. Each line is
//! `ID INO MTIME CTIME LEN JSON` (LEN the JSON's length, so finding the lines reads no JSON);
//! a container that cannot be cached yet has a line with a zero stamp and no JSON.
//!
//! The stamps are git's index rule, racy entries included: a timestamp has the granularity of
//! the kernel's coarse clock (a tick, at most 10 ms), or of a second on a filesystem that keeps
//! no more, so a change made in the same tick as the read that cached the entry would go
//! unseen. An entry is therefore cached only when its directory last changed more than
//! [`RACY_FINE`] before the listing began ([`RACY`] when its stamp has no nanoseconds); a
//! younger one is read from its files every time until then. The cache is a cache: written atomically but not fsynced, rewritten whole
//! only when it was missing or wrong about something, never trusted beyond its stamps, and a
//! line of it that does not parse is read from the files instead. A store that cannot be
//! written (another user's, read only) is listed from its files, as before.
//!
//! Written by hand: it is forty lines of bookkeeping over serde_json and `lstat`, and no crate
//! keeps a stat-validated cache of a directory of records.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::containers::{Container, ContainerRecord, ContainerState, valid_id};
use super::health::Health;
use super::{Store, io_err};

/// The cache's file, at the store's top level.
pub const CACHE_FILE: &str = "containers.cache";
/// Its first line starts so, then the stamp of `containers/`: a cache of another format is
/// ignored (and replaced).
const HEADER: &[u8] = b"den containers cache 2 ";
/// Its last line.
const END: &[u8] = b"end\n";
/// How long after a directory's last change its entry may be cached (see the module doc): on a
/// filesystem that stamps whole seconds...
const RACY: Duration = Duration::from_secs(2);
/// ...and on one that stamps the kernel's ticks (ten of them at HZ=100).
const RACY_FINE: Duration = Duration::from_millis(100);
/// A larger cache than this is not read (a store of 100,000 containers is about 100 MB).
const MAX_CACHE: u64 = 512 << 20;
/// Below this many containers the listing is read on one thread.
const PARALLEL_FROM: usize = 256;

/// What a container directory's `lstat` says about its contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Stamp {
    ino: u64,
    mtime: i64,
    ctime: i64,
}

impl Stamp {
    fn of(st: &nix::sys::stat::FileStat) -> Stamp {
        let ns = |s: i64, n: i64| s.saturating_mul(1_000_000_000).saturating_add(n);
        Stamp {
            ino: st.st_ino,
            mtime: ns(st.st_mtime, st.st_mtime_nsec),
            ctime: ns(st.st_ctime, st.st_ctime_nsec),
        }
    }

    /// This stamp if it was made long enough before `now` (see [`RACY`]), else the zero
    /// stamp, which no directory has.
    fn settled(self, now: i64) -> Stamp {
        let racy = if self.ctime % 1_000_000_000 == 0 {
            RACY
        } else {
            RACY_FINE
        };
        if self.ctime < now.saturating_sub(racy.as_nanos() as i64) {
            self
        } else {
            Stamp::default()
        }
    }

    fn write(self, out: &mut Vec<u8>) {
        use std::io::Write;
        let _ = write!(out, "{} {} {}", self.ino, self.mtime, self.ctime);
    }
}

/// One line's JSON: a container as its files say, its state as written (not yet observed).
#[derive(Serialize)]
struct EntryOut<'a> {
    record: &'a ContainerRecord,
    state: &'a ContainerState,
    #[serde(skip_serializing_if = "Option::is_none")]
    health: Option<&'a Health>,
}

#[derive(Deserialize)]
struct EntryIn {
    record: ContainerRecord,
    state: ContainerState,
    #[serde(default)]
    health: Option<Health>,
}

/// A cached line: `ID INO MTIME CTIME LEN JSON`; `line` is the whole of it, newline included.
struct Cached<'a> {
    id: &'a str,
    stamp: Stamp,
    json: &'a [u8],
    line: &'a [u8],
}

/// The cache read: the stamp `containers/` had (the zero stamp unless the cache is whole, up to
/// its last line `end`) and the lines, in order. A malformed line ends the lines.
fn parse(bytes: &[u8]) -> Option<(Stamp, Vec<Cached<'_>>)> {
    let mut rest = bytes.strip_prefix(HEADER)?;
    let stamp = |rest: &mut &[u8], last: u8| -> Option<Stamp> {
        Some(Stamp {
            ino: word(rest, b' ')?,
            mtime: word(rest, b' ')?,
            ctime: word(rest, last)?,
        })
    };
    let dir = stamp(&mut rest, b'\n')?;
    let mut lines = Vec::new();
    while rest.len() > 65 {
        let whole = rest;
        let id = std::str::from_utf8(&rest[..64])
            .ok()
            .filter(|id| valid_id(id));
        let (Some(id), b' ') = (id, rest[64]) else {
            break;
        };
        rest = &rest[65..];
        let Some(stamp) = stamp(&mut rest, b' ') else {
            break;
        };
        let Some(len) = word::<usize>(&mut rest, b' ') else {
            break;
        };
        if rest.get(len) != Some(&b'\n') {
            break;
        }
        let json = &rest[..len];
        rest = &rest[len + 1..];
        let line = &whole[..whole.len() - rest.len()];
        lines.push(Cached {
            id,
            stamp,
            json,
            line,
        });
    }
    // Cut short (a crash after the rename but before the data reached the disk): the lines
    // there are may be used, but not as the list of the containers.
    let whole = rest == END;
    Some((if whole { dir } else { Stamp::default() }, lines))
}

/// The number at the start of `rest` up to `end`, which it consumes.
fn word<T: std::str::FromStr>(rest: &mut &[u8], end: u8) -> Option<T> {
    let at = rest.iter().position(|&b| b == end)?;
    let n = std::str::from_utf8(&rest[..at]).ok()?.parse().ok()?;
    *rest = &rest[at + 1..];
    Some(n)
}

/// One container of the listing and what the next cache holds for it.
struct Listed<'a> {
    container: Container,
    line: Line<'a>,
}

enum Line<'a> {
    /// The cache's line holds: that line again.
    Kept(&'a [u8]),
    /// A new line (read from the files).
    New(Vec<u8>),
}

impl Store {
    /// Every container, newest first, through the cache (see the module doc). A store of
    /// thousands is read on a thread per core.
    pub(super) fn listing(&self) -> super::Result<Vec<Container>> {
        let begun = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        let dir = self.root.join("containers");
        // Stamped before it is read: a container made meanwhile changes the stamp. Each
        // container's directory is stamped relative to it (one name to look up, not seven).
        let opened = std::fs::File::open(&dir).map_err(io_err(&dir))?;
        let fd = opened.as_raw_fd();
        let stat = nix::sys::stat::fstat(fd).map_err(|e| io_err(&dir)(e.into()))?;
        let now = Stamp::of(&stat).settled(begun);
        let path = self.root.join(CACHE_FILE);
        let bytes = read_capped(&path).unwrap_or_default();
        let (then, lines) = parse(&bytes).unwrap_or_default();
        let same_set = now == then && now != Stamp::default();
        // Unless the cache lists the containers there are, the names under `containers/` (a
        // directory without a record fails to load and is skipped).
        let names: Vec<String> = if same_set {
            Vec::new()
        } else {
            std::fs::read_dir(&dir)
                .map_err(io_err(&dir))?
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| valid_id(n))
                .collect()
        };
        let items: Vec<(&str, Option<&Cached>)> = if same_set {
            lines.iter().map(|c| (c.id, Some(c))).collect()
        } else {
            let cached: HashMap<&str, &Cached> = lines.iter().map(|c| (c.id, c)).collect();
            let get = |id: &str| cached.get(id).copied();
            names.iter().map(|id| (id.as_str(), get(id))).collect()
        };
        // Each thread fills its own stretch of one list: at 10,000 containers every copy of the
        // list is thousands of pages the kernel must fault in, more than its sorting costs.
        let mut slots: Vec<Option<Listed>> = Vec::with_capacity(items.len());
        slots.resize_with(items.len(), || None);
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(8);
        if threads < 2 || items.len() < PARALLEL_FROM {
            self.fill(fd, &items, begun, &mut slots);
        } else {
            let chunk = items.len().div_ceil(threads);
            std::thread::scope(|s| {
                for (items, out) in items.chunks(chunk).zip(slots.chunks_mut(chunk)) {
                    s.spawn(move || self.fill(fd, items, begun, out));
                }
            });
        }
        let listed = || slots.iter().flatten();
        let changed = now != then
            || listed().count() != lines.len()
            || listed().any(|l| matches!(l.line, Line::New(_)));
        if changed {
            let mut out = HEADER.to_vec();
            now.write(&mut out);
            out.push(b'\n');
            for l in listed() {
                match &l.line {
                    Line::Kept(line) => out.extend_from_slice(line),
                    Line::New(line) => out.extend_from_slice(line),
                }
            }
            out.extend_from_slice(END);
            // A store this user cannot write is listed all the same.
            let _ = crate::fs::write_atomic_volatile(&path, &out, 0o600);
        }
        // In place, as is the sort (ties stay in the order listed).
        let mut list: Vec<Container> = slots
            .into_iter()
            .filter_map(|l| l.map(|l| l.container))
            .collect();
        list.sort_by_cached_key(|c| Reverse(c.record.created));
        Ok(list)
    }

    /// [`Store::listed`] for each item, into `out`.
    fn fill<'a>(
        &self,
        dir: RawFd,
        items: &[(&str, Option<&Cached<'a>>)],
        begun: i64,
        out: &mut [Option<Listed<'a>>],
    ) {
        for (&(id, cached), slot) in items.iter().zip(out) {
            *slot = self.listed(dir, id, cached, begun);
        }
    }

    /// The container `id` for the listing: from its cache line when the stamps agree, else from
    /// its files. None for a directory without a (whole) record.
    fn listed<'a>(
        &self,
        dir: RawFd,
        id: &str,
        cached: Option<&Cached<'a>>,
        begun: i64,
    ) -> Option<Listed<'a>> {
        let no_follow = nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW;
        let stamp = Stamp::of(&nix::sys::stat::fstatat(Some(dir), id, no_follow).ok()?);
        if let Some(c) = cached.filter(|c| c.stamp == stamp && c.stamp != Stamp::default())
            && let Ok(e) = serde_json::from_slice::<EntryIn>(c.json)
        {
            let mut state = e.state;
            state.health = e.health;
            let container = Container {
                record: e.record,
                state: state.observed(),
            };
            return Some(Listed {
                container,
                line: Line::Kept(c.line),
            });
        }
        let (record, state) = self.read_container(id)?;
        // A container changed too recently is listed with the zero stamp and no JSON: read
        // from its files again next time.
        let stamp = stamp.settled(begun);
        let json = if stamp == Stamp::default() {
            Vec::new()
        } else {
            let entry = EntryOut {
                record: &record,
                state: &state,
                health: state.health.as_ref(),
            };
            serde_json::to_vec(&entry).expect("records serialize")
        };
        let mut line = format!("{id} ").into_bytes();
        stamp.write(&mut line);
        line.extend_from_slice(format!(" {} ", json.len()).as_bytes());
        line.extend_from_slice(&json);
        line.push(b'\n');
        let line = match cached {
            Some(c) if c.line == &line[..] => Line::Kept(c.line),
            _ => Line::New(line),
        };
        Some(Listed {
            container: Container {
                record,
                state: state.observed(),
            },
            line,
        })
    }
}

/// The cache's bytes, if it is no larger than [`MAX_CACHE`].
fn read_capped(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path).ok()?;
    let size = f.metadata().ok()?.len();
    if size > MAX_CACHE {
        return None;
    }
    let mut bytes = Vec::with_capacity(size as usize + 1);
    f.take(MAX_CACHE + 1).read_to_end(&mut bytes).ok()?;
    (bytes.len() as u64 <= MAX_CACHE).then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Digest, Status};

    fn record() -> ContainerRecord {
        ContainerRecord {
            id: String::new(),
            name: String::new(),
            image_id: Digest::of(b"i"),
            image: "busybox".into(),
            created: chrono::Utc::now(),
            driver: "vfs".into(),
            spec: Default::default(),
            auto_remove: false,
            layers: Vec::new(),
            image_file: None,
        }
    }

    fn names(s: &Store) -> Vec<String> {
        let list = s.containers().unwrap();
        list.into_iter().map(|c| c.record.name).collect()
    }

    #[test]
    fn the_cache_is_used_while_stamps_hold_and_every_change_is_seen() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        let a = s.create_container(record(), Some("a")).unwrap();
        let cache = t.path().join(CACHE_FILE);
        // Changed just now: listed from its files (cached with the zero stamp only).
        assert_eq!(names(&s), ["a"]);
        std::thread::sleep(RACY_FINE + Duration::from_millis(50));
        assert_eq!(names(&s), ["a"]);
        let settled = std::fs::read(&cache).unwrap();
        assert!(settled.ends_with(b"}\nend\n"));
        // Nothing changed: the cache is read, and not written again.
        let before = std::fs::metadata(&cache).unwrap().modified().unwrap();
        assert_eq!(names(&s), ["a"]);
        assert_eq!(
            std::fs::metadata(&cache).unwrap().modified().unwrap(),
            before
        );
        // While the stamps hold, the cache is what is listed (a name put there shows).
        let text = String::from_utf8(settled).unwrap();
        let forged = text.replace("\"name\":\"a\"", "\"name\":\"z\"");
        std::fs::write(&cache, &forged).unwrap();
        assert_eq!(names(&s), ["z"]);
        // A change to the container's state is seen at once.
        let mut state = ContainerState::created();
        state.status = Status::Exited;
        state.exit_code = Some(3);
        s.set_container_state(&a.id, &state).unwrap();
        let list = s.containers().unwrap();
        assert_eq!(
            (list[0].record.name.as_str(), list[0].state.exit_code),
            ("a", Some(3))
        );
        // So are a new container and a removed one, newest first.
        std::thread::sleep(Duration::from_millis(20));
        let b = s.create_container(record(), Some("b")).unwrap();
        assert_eq!(names(&s), ["b", "a"]);
        s.remove_container(&a.id).unwrap();
        assert_eq!(names(&s), ["b"]);
        s.remove_container(&b.id).unwrap();
        assert!(names(&s).is_empty());
        // A cache cut short, or not a cache, is read around.
        std::fs::write(&cache, &text[..text.len() / 2]).unwrap();
        assert!(names(&s).is_empty());
        std::fs::write(&cache, "nonsense").unwrap();
        assert!(names(&s).is_empty());
    }

    #[test]
    fn a_stamp_settles_after_its_filesystems_granularity() {
        let now = 1_000_000_000_000;
        let at = |ctime| Stamp {
            ino: 1,
            mtime: ctime,
            ctime,
        };
        assert_eq!(
            at(now - 150_000_000 + 1).settled(now),
            at(now - 150_000_000 + 1)
        );
        assert_eq!(at(now - 50_000_000 + 1).settled(now), Stamp::default());
        // Whole seconds: the filesystem may keep no more.
        assert_eq!(at(now - 1_000_000_000).settled(now), Stamp::default());
        assert_eq!(
            at(now - 3_000_000_000).settled(now),
            at(now - 3_000_000_000)
        );
    }

    #[test]
    fn parse_finds_lines_by_their_lengths_and_stops_at_a_malformed_one() {
        let (a, b, c) = ("a".repeat(64), "b".repeat(64), "c".repeat(64));
        let mut bytes = HEADER.to_vec();
        bytes.extend_from_slice(b"5 6 7\n");
        bytes.extend_from_slice(format!("{a} 7 100 200 11 {{\"x\":\"a\nb\"}}\n").as_bytes());
        bytes.extend_from_slice(format!("{b} 0 0 0 0 \n").as_bytes());
        let mut whole = bytes.clone();
        whole.extend_from_slice(END);
        bytes.extend_from_slice(format!("{c} 1 2 3 9 {{\"cut\":").as_bytes());
        let (dir, lines) = parse(&bytes).unwrap();
        // Cut short: the lines, but not as the whole list.
        assert_eq!(dir, Stamp::default());
        assert_eq!(
            parse(&whole).unwrap().0,
            Stamp {
                ino: 5,
                mtime: 6,
                ctime: 7
            }
        );
        assert_eq!(lines.len(), 2);
        assert_eq!((lines[0].id, lines[1].id), (&a[..], &b[..]));
        assert_eq!(
            lines[0].stamp,
            Stamp {
                ino: 7,
                mtime: 100,
                ctime: 200
            }
        );
        assert_eq!(lines[0].json, b"{\"x\":\"a\nb\"}");
        assert!(lines[0].line.starts_with(a.as_bytes()) && lines[0].line.ends_with(b"}\n"));
        assert_eq!(
            (lines[1].stamp, lines[1].json),
            (Stamp::default(), &b""[..])
        );
        // Another format, or a path where an id should be.
        assert!(parse(b"den containers cache 1\n").is_none());
        let evil = format!(
            "den containers cache 2 1 2 3\n../../../../etc/passwd{} 1 2 3 2 {{}}\nend\n",
            "x".repeat(42)
        );
        assert_eq!(parse(evil.as_bytes()).unwrap().0, Stamp::default());
        assert!(parse(evil.as_bytes()).unwrap().1.is_empty());
    }
}
