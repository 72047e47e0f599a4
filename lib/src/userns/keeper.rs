//! The keeper: one process per user (per runtime directory) that holds den's user namespace,
//! so that a den started later joins it with setns(2) instead of making a namespace and having
//! its ids mapped. Making one costs every start a fork, two setuid helpers (newuidmap,
//! newgidmap) and a parent that waits for the child to finish, about 4 ms of a 26 ms
//! `run --rm`; podman keeps its namespace the same way, in its pause process.
//!
//! - `den-net userns RECORD` is the keeper ([`serve`]). A den that had to make its namespace
//!   starts one there right after its ids are mapped ([`spawn`]). The keeper takes an exclusive
//!   lock on RECORD (`userns.keeper` in the runtime directory: a second keeper finds it taken and
//!   exits at once), writes its pid and start time into it, and moves to a mount namespace of
//!   its own that holds an empty tmpfs and nothing else, so it keeps no filesystem of the host
//!   busy (a FUSE mount the user unmounts, a stick). It runs in a session of its own and holds
//!   no descriptor of its caller's (a shell's `$(den run ...)` waits for every writer).
//! - A den joins it ([`find`]) only when the process RECORD names is the one that wrote it
//!   (pid and start time from `/proc/PID/stat`, read through one handle of `/proc/PID`, so a
//!   reused pid cannot slip in between) and its namespace maps exactly the ids den would map
//!   now. A keeper whose maps are stale (`/etc/subuid` changed, newuidmap installed since) is
//!   told to exit and the den makes a namespace as before. Joining touches RECORD.
//! - The keeper exits when RECORD has not been touched for [`IDLE`] (it sleeps until then: no
//!   wake-ups in between), at once when RECORD is removed (`den system reset`, the runtime
//!   directory cleaned away; inotify tells it), and on SIGTERM ([`stop`]). Nothing depends on
//!   it staying: each container holds the namespace through its own processes, and den works
//!   with containers from any namespace with the same map, as it did when every den made its
//!   own.
//!
//! The record is a plain file, not a lock-and-rename pair: a reader that catches it half
//! written finds no process with that pid and start time and makes a namespace as before.

use std::io::{Read, Seek, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;
use std::time::{Duration, SystemTime};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::IdMap;
use super::share::MapLine;
use crate::sys::{Mount, Sys};

/// The record's name in the runtime directory.
pub const RECORD: &str = "userns.keeper";
/// How long the keeper waits for a den to join before it exits.
pub const IDLE: Duration = Duration::from_secs(600);
/// The environment variable that shortens [`IDLE`] (seconds), for den's tests.
pub const ENV_IDLE: &str = "_DEN_KEEPER_IDLE_S";

/// What RECORD says: the keeper's pid and its start time (clock ticks after boot, field 22 of
/// `/proc/PID/stat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    pub pid: i32,
    pub start: u64,
}

impl Record {
    pub fn parse(text: &str) -> Option<Record> {
        let mut f = text.split_whitespace();
        let pid: i32 = f.next()?.parse().ok().filter(|p| *p > 0)?;
        let start = f.next()?.parse().ok()?;
        f.next().is_none().then_some(Record { pid, start })
    }

    fn text(&self) -> String {
        format!("{} {}\n", self.pid, self.start)
    }
}

/// The start time in a `/proc/PID/stat` text (after the command name, which may hold spaces
/// and parentheses: the last `)` ends it), of a live process: None for a zombie, which still
/// has its user namespace (a dead keeper no init has reaped yet) but holds no lock, so a new
/// keeper may run beside it.
pub fn start_time(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    if matches!(f.next()?, "Z" | "X" | "x") {
        return None;
    }
    f.nth(18)?.parse().ok()
}

/// The lines of a `uid_map` or `gid_map` text.
pub fn parse_map(text: &str) -> Option<Vec<MapLine>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut f = l.split_whitespace().map(|n| n.parse::<u32>().ok());
            let line = MapLine {
                inside: f.next()??,
                outside: f.next()??,
                count: f.next()??,
            };
            f.next().is_none().then_some(line)
        })
        .collect()
}

/// The uid and gid maps a namespace of den's has under `map`, as the host sees them: what
/// [`IdMap::apply`] writes. None for real root, which has no namespace.
pub fn expected_maps(map: &IdMap) -> Option<(Vec<MapLine>, Vec<MapLine>)> {
    match map {
        IdMap::Mapped {
            uid,
            gid,
            uids,
            gids,
        } => Some((IdMap::map_lines(*uid, uids), IdMap::map_lines(*gid, gids))),
        IdMap::Single { uid, gid, .. } => {
            Some((IdMap::map_lines(*uid, &[]), IdMap::map_lines(*gid, &[])))
        }
        IdMap::Root => None,
    }
}

/// What [`find`] found in the runtime directory.
#[derive(Debug)]
pub enum Found {
    /// A keeper with den's map: its user namespace, open.
    Keeper(std::fs::File),
    /// None, or none that may be joined.
    Nothing,
}

/// The user namespace of the keeper recorded in `dir`, when it is alive and maps exactly what
/// `map` maps. Touches the record (the keeper's idle clock). A live keeper with other maps is
/// sent SIGTERM. Every failure is [`Found::Nothing`]: den then makes its namespace itself.
pub fn find(dir: &Path, map: &IdMap) -> Found {
    let Some((uids, gids)) = expected_maps(map) else {
        return Found::Nothing;
    };
    let read = |file: &mut std::fs::File| {
        let mut s = String::new();
        file.read_to_string(&mut s).ok().map(|_| s)
    };
    let Ok(mut record_file) = crate::sys::open_at(
        None,
        &dir.join(RECORD),
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW,
        Mode::empty(),
    ) else {
        return Found::Nothing;
    };
    let Some(record) = read(&mut record_file).and_then(|t| Record::parse(&t)) else {
        return Found::Nothing;
    };
    // One handle of the process's /proc directory: every file below is that process's, or
    // gone (ESRCH) if it has exited, whatever has taken its pid since.
    let Ok(proc) = crate::sys::open_at(
        None,
        format!("/proc/{}", record.pid).as_str(),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY,
        Mode::empty(),
    ) else {
        return Found::Nothing;
    };
    let file = |name: &str, flags: OFlag| {
        crate::sys::open_at(
            Some(proc.as_fd()),
            name,
            OFlag::O_RDONLY | flags,
            Mode::empty(),
        )
        .ok()
    };
    let text = |name: &str| file(name, OFlag::O_NOFOLLOW).and_then(|mut f| read(&mut f));
    if text("stat").and_then(|s| start_time(&s)) != Some(record.start) {
        return Found::Nothing;
    }
    let maps_match = text("uid_map").and_then(|t| parse_map(&t)) == Some(uids)
        && text("gid_map").and_then(|t| parse_map(&t)) == Some(gids);
    if !maps_match {
        tracing::debug!(
            pid = record.pid,
            "the user namespace's keeper has other id maps: stopping it"
        );
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(record.pid),
            nix::sys::signal::Signal::SIGTERM,
        );
        return Found::Nothing;
    }
    // A magic link of procfs to the namespace, not a path: followed.
    let Some(ns) = file("ns/user", OFlag::empty()) else {
        return Found::Nothing;
    };
    let now = nix::sys::time::TimeSpec::UTIME_NOW;
    let _ = nix::sys::stat::futimens(record_file.as_raw_fd(), &now, &now);
    Found::Keeper(ns)
}

/// Start a keeper for `dir` in this process's user namespace (just made and mapped); it
/// exits at once when another holds the record. Errors are ignored: den works without one.
pub fn spawn(dir: &Path, map: &IdMap) {
    let Some(tool) = crate::config::tool_path("den-net") else {
        return;
    };
    let mut cmd = std::process::Command::new(tool);
    // None of den's environment either (the store's paths, credentials' helpers).
    cmd.arg("userns")
        .arg(dir.join(RECORD))
        .env_clear()
        .env(super::ENV_INSIDE, map.encode())
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    if let Some(idle) = std::env::var_os(ENV_IDLE) {
        cmd.env(ENV_IDLE, idle);
    }
    crate::sys::new_session_alone(&mut cmd);
    match cmd.spawn() {
        // Not waited for: it outlives this process, and init reaps it.
        Ok(child) => std::mem::forget(child),
        Err(e) => tracing::debug!(error = %e, "could not start the user namespace's keeper"),
    }
}

/// Stop the keeper recorded in `dir`, if it runs (`den system reset`), and remove its record.
pub fn stop(dir: &Path) {
    let path = dir.join(RECORD);
    let Some(record) = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| Record::parse(&t))
    else {
        return;
    };
    let alive = std::fs::read_to_string(format!("/proc/{}/stat", record.pid))
        .ok()
        .and_then(|s| start_time(&s))
        == Some(record.start);
    if alive {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(record.pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let _ = std::fs::remove_file(&path);
}

/// The keeper's main (`den-net userns RECORD`), in den's user namespace: returns when it is
/// time to exit, with the exit status.
pub fn serve(sys: &dyn Sys, record: &Path) -> i32 {
    if super::current().is_none() {
        return 1;
    }
    let (Some(dir), Some(name)) = (record.parent(), record.file_name()) else {
        return 1;
    };
    let Ok(dir_fd) =
        crate::sys::open_at(None, dir, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())
    else {
        return 1;
    };
    let Some(lock) = take_record(&dir_fd, name) else {
        return 1;
    };
    // Told when the record goes; watched before the host's filesystems are let go.
    let watch = nix::sys::inotify::Inotify::init(nix::sys::inotify::InitFlags::IN_CLOEXEC)
        .ok()
        .filter(|i| {
            use nix::sys::inotify::AddWatchFlags as W;
            i.add_watch(
                dir,
                W::IN_DELETE | W::IN_MOVED_FROM | W::IN_DELETE_SELF | W::IN_MOVE_SELF,
            )
            .is_ok()
        });
    // From here on it only sleeps: the code and heap its start-up touched go back to the
    // kernel (read while /proc is still in sight), about 2 MiB of its 2.5 MiB PSS.
    crate::sys::trim_heap();
    crate::sys::release_file_pages();
    if let Err(e) = hold_no_mounts(sys, dir) {
        tracing::debug!(error = %e, "the keeper keeps a copy of the host's mounts");
    }
    let idle = std::env::var(ENV_IDLE)
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(IDLE, Duration::from_secs);
    loop {
        // Idle since the record was last touched (written by this keeper, or joined).
        let touched = lock
            .metadata()
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let waited = SystemTime::now()
            .duration_since(touched)
            .unwrap_or_default();
        let Some(left) = idle.checked_sub(waited).filter(|d| !d.is_zero()) else {
            let _ = nix::unistd::unlinkat(
                Some(dir_fd.as_raw_fd()),
                name,
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
            return 0;
        };
        if !wait(watch.as_ref(), name, left) {
            return 0;
        }
    }
}

/// Lock the record `name` in `dir` and write this process's pid and start time into it. None
/// when that failed, or another keeper holds the lock: the process exits.
fn take_record(
    dir: &std::fs::File,
    name: &std::ffi::OsStr,
) -> Option<nix::fcntl::Flock<std::fs::File>> {
    let file = crate::sys::open_at(
        Some(dir.as_fd()),
        name,
        OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NOFOLLOW,
        Mode::from_bits_truncate(0o600),
    )
    .ok()?;
    let mut lock =
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).ok()?;
    let me = Record {
        pid: std::process::id() as i32,
        start: std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| start_time(&s))?,
    };
    let written = lock.set_len(0).is_ok()
        && lock.rewind().is_ok()
        && lock.write_all(me.text().as_bytes()).is_ok();
    if !written {
        let _ = nix::unistd::unlinkat(
            Some(dir.as_raw_fd()),
            name,
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        );
        return None;
    }
    Some(lock)
}

/// Sleep up to `left`, or until the watch reports `name` removed from its directory (or the
/// directory itself gone): false then.
fn wait(
    watch: Option<&nix::sys::inotify::Inotify>,
    name: &std::ffi::OsStr,
    left: Duration,
) -> bool {
    let Some(watch) = watch else {
        std::thread::sleep(left);
        return true;
    };
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use nix::sys::inotify::AddWatchFlags as W;
    let ms = i32::try_from(left.as_millis().max(1)).unwrap_or(i32::MAX);
    let mut fds = [PollFd::new(watch.as_fd(), PollFlags::POLLIN)];
    match poll(
        &mut fds,
        PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
    ) {
        Ok(0) | Err(_) => return true,
        Ok(_) => {}
    }
    let Ok(events) = watch.read_events() else {
        return true;
    };
    !events.iter().any(|e| {
        e.mask
            .intersects(W::IN_DELETE_SELF | W::IN_MOVE_SELF | W::IN_IGNORED)
            || e.name.as_deref() == Some(name)
    })
}

/// Move to a mount namespace of this process's own whose only mount is an empty tmpfs: the
/// copy of the host's mounts the namespace was made with is let go, so the keeper holds no
/// filesystem busy. `dir` (a directory of the user's) is where the tmpfs goes before it
/// becomes the root.
fn hold_no_mounts(sys: &dyn Sys, dir: &Path) -> crate::sys::Result<()> {
    use nix::mount::MsFlags;
    sys.unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
    sys.mount(&Mount::make_rprivate("/"))?;
    sys.mount(&Mount::tmpfs(
        dir,
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        "size=4k,mode=0700",
    ))?;
    let cd = |p: &Path| {
        nix::unistd::chdir(p)
            .map_err(|e| crate::sys::SysError::new(format!("chdir {}", p.display()), e))
    };
    cd(dir)?;
    sys.pivot_root(Path::new("."), Path::new("."))?;
    sys.umount(Path::new("."), true)?;
    cd(Path::new("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::userns::Range;

    #[test]
    fn the_record_is_a_pid_and_a_start_time() {
        let r = Record {
            pid: 4242,
            start: 987654,
        };
        assert_eq!(Record::parse(&r.text()), Some(r));
        for bad in ["", "4242", "x 1", "0 5", "-3 5", "1 2 3", "12\n"] {
            assert_eq!(Record::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_start_time_follows_a_command_name_with_spaces_and_parentheses() {
        let stat = "77 (den (x) y) S 1 77 77 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 123456 \
                    8192 100 18446744073709551615";
        assert_eq!(start_time(stat), Some(123456));
        assert_eq!(start_time("77 (short) S 1"), None);
        assert_eq!(start_time(&stat.replace(") S ", ") Z ")), None, "a zombie");
    }

    #[test]
    fn maps_read_as_the_kernel_prints_them() {
        let text = "         0       1000          1\n         1     200000      65536\n";
        assert_eq!(
            parse_map(text),
            Some(vec![
                MapLine {
                    inside: 0,
                    outside: 1000,
                    count: 1
                },
                MapLine {
                    inside: 1,
                    outside: 200000,
                    count: 65536
                }
            ])
        );
        assert_eq!(parse_map("0 1000\n"), None);
        assert_eq!(parse_map("0 1000 1 7\n"), None);
    }

    #[test]
    fn a_keeper_is_joined_only_with_the_maps_den_writes() {
        let mapped = IdMap::Mapped {
            uid: 1000,
            gid: 1001,
            uids: vec![
                Range {
                    start: 200000,
                    count: 65536,
                },
                Range {
                    start: 500000,
                    count: 10,
                },
            ],
            gids: vec![Range {
                start: 300000,
                count: 100,
            }],
        };
        let (uids, gids) = expected_maps(&mapped).unwrap();
        // The same lines newuidmap and newgidmap are given (IdMap::helper_args).
        let args = |lines: &[MapLine]| {
            lines
                .iter()
                .flat_map(|l| [l.inside, l.outside, l.count])
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
        };
        let IdMap::Mapped {
            uids: ur, gids: gr, ..
        } = &mapped
        else {
            unreachable!()
        };
        assert_eq!(args(&uids), IdMap::helper_args(1000, ur));
        assert_eq!(args(&gids), IdMap::helper_args(1001, gr));
        let kernel = "0 1000 1\n1 200000 65536\n65537 500000 10\n";
        assert_eq!(parse_map(kernel), Some(uids.clone()));
        // A single-uid namespace is not a mapped one, and the reverse.
        let single = IdMap::Single {
            uid: 1000,
            gid: 1001,
            reason: String::new(),
        };
        let (su, sg) = expected_maps(&single).unwrap();
        assert_eq!(crate::userns::share::map_text(&su), "0 1000 1\n");
        assert_eq!(crate::userns::share::map_text(&sg), "0 1001 1\n");
        assert_ne!(su, uids);
        assert_eq!(expected_maps(&IdMap::Root), None);
    }

    #[test]
    fn nothing_is_found_where_no_keeper_is_recorded_or_alive() {
        let map = IdMap::Single {
            uid: 1000,
            gid: 1000,
            reason: String::new(),
        };
        let t = tempfile::tempdir().unwrap();
        assert!(matches!(find(t.path(), &map), Found::Nothing));
        // A record of a process that is not the one that wrote it: this test process's pid
        // with a start time it does not have.
        let stale = Record {
            pid: std::process::id() as i32,
            start: 1,
        };
        std::fs::write(t.path().join(RECORD), stale.text()).unwrap();
        assert!(matches!(find(t.path(), &map), Found::Nothing));
        std::fs::write(t.path().join(RECORD), "garbage").unwrap();
        assert!(matches!(find(t.path(), &map), Found::Nothing));
        // Real root has no namespace to keep.
        assert!(matches!(find(t.path(), &IdMap::Root), Found::Nothing));
    }
}
