//! den's user namespace: where the user is root, and files keep the owners images give them.
//!
//! Entry points: [`IdMap::detect`] (read `/etc/subuid`, `/etc/subgid`) and [`enter`].
//!
//! The way in is podman's: the process the user started forks a child; the child unshares a user
//! and a mount namespace and waits; the parent writes the child's id maps, with
//! `newuidmap`/`newgidmap` (setuid helpers from the `uidmap` package) when the user has a
//! subordinate range, or directly when not (an unprivileged process may map exactly its own uid,
//! after writing "deny" to setgroups; see user_namespaces(7), "Defining user and group ID
//! mappings"). The child then becomes root in it and re-executes den ([`enter`]): a process
//! keeps the user namespace of its executable image for /proc ownership (`mm->user_ns` is set at
//! exec), and a process that has started a second thread cannot unshare a user namespace at all,
//! so everything that runs inside starts fresh and single-threaded. Where nothing it will clone
//! changes credentials in a namespace of its own, the child carries on as the program it was
//! instead ([`enter_in_place`]: a container start saves a second start-up of den), marking itself
//! dumpable again, which becoming root had undone. The parent stays behind only to wait, forward
//! signals sent to it, and exit with the child's status.
//!
//! Where the user's [`keeper`] holds a namespace with the same map, den joins it instead: no
//! fork, no helpers, no parent left waiting. A den that had to make its namespace starts a
//! keeper in it for the next.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, Signal};

use crate::error::Diagnose;
use crate::sys::{Forked, Sys};

pub mod keeper;
pub mod share;

/// Environment variable marking a den process that runs inside its user namespace; its value is
/// the [`IdMap`] in [`IdMap::encode`] form.
pub const ENV_INSIDE: &str = "_DEN_USERNS";

#[derive(Debug, thiserror::Error)]
pub enum UsernsError {
    #[error("cannot create a user namespace")]
    Unshare(#[source] crate::sys::SysError),
    #[error("{helper} failed to map ids {ranges} for pid {pid}: {stderr}")]
    Helper {
        helper: String,
        pid: i32,
        ranges: String,
        stderr: String,
    },
    #[error("{helper} could not be run")]
    HelperMissing {
        helper: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the id map of pid {pid}")]
    WriteMap {
        pid: i32,
        #[source]
        source: std::io::Error,
    },
    #[error("den must enter its user namespace before starting threads ({0} running)")]
    Threaded(usize),
    #[error("cannot start den inside its user namespace")]
    Fork(#[source] crate::sys::SysError),
}

impl Diagnose for UsernsError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            UsernsError::Unshare(e) if e.errno() == Some(libc::ENOSPC) => {
                "user namespaces are limited on this host: raise user.max_user_namespaces (sysctl)".into()
            }
            UsernsError::Unshare(_) => {
                "unprivileged user namespaces are disabled: enable kernel.unprivileged_userns_clone=1 \
                 (Debian/Ubuntu) or user.max_user_namespaces (sysctl)"
                    .into()
            }
            UsernsError::Helper { .. } => {
                "check your ranges in /etc/subuid and /etc/subgid, and that newuidmap/newgidmap are \
                 setuid root (package uidmap)"
                    .into()
            }
            UsernsError::HelperMissing { .. } => "install the uidmap package (newuidmap, newgidmap)".into(),
            UsernsError::WriteMap { .. } => "your kernel refused a single-id map; check /proc/sys/user".into(),
            UsernsError::Threaded(_) | UsernsError::Fork(_) => "this is a bug in den; please report it".into(),
        })
    }
}

pub type Result<T> = std::result::Result<T, UsernsError>;

/// One line of /etc/subuid: `count` ids from `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: u32,
    pub count: u32,
}

/// The ranges in a subuid/subgid file for a user, by name or numeric id, in file order.
pub fn parse_subid(content: &str, user: &str, id: u32) -> Vec<Range> {
    let id = id.to_string();
    content
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            if l.starts_with('#') {
                return None;
            }
            let mut f = l.split(':');
            let (who, start, count) = (f.next()?, f.next()?, f.next()?);
            if who != user && who != id {
                return None;
            }
            let r = Range {
                start: start.trim().parse().ok()?,
                count: count.trim().parse().ok()?,
            };
            (r.count > 0).then_some(r)
        })
        .collect()
}

/// How den maps ids in its user namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdMap {
    /// The user is root inside; subordinate ranges give ids 1.. inside.
    Mapped {
        uid: u32,
        gid: u32,
        uids: Vec<Range>,
        gids: Vec<Range>,
    },
    /// No subordinate ids (or no newuidmap): only the user's own id, as root.
    Single { uid: u32, gid: u32, reason: String },
    /// den runs as real root: no user namespace is needed.
    Root,
}

impl IdMap {
    /// Decide the mapping for `uid`/`gid` (named `user`), reading `etc/subuid` and `etc/subgid`
    /// under `etc` (injectable for tests) and looking for the helpers with `has_helpers`.
    pub fn detect(etc: &Path, user: &str, uid: u32, gid: u32, has_helpers: bool) -> IdMap {
        if uid == 0 {
            return IdMap::Root;
        }
        let read = |f: &str| std::fs::read_to_string(etc.join(f)).unwrap_or_default();
        let uids = parse_subid(&read("subuid"), user, uid);
        let gids = parse_subid(&read("subgid"), user, uid);
        if uids.is_empty() || gids.is_empty() {
            let which = if uids.is_empty() {
                "/etc/subuid"
            } else {
                "/etc/subgid"
            };
            return IdMap::Single {
                uid,
                gid,
                reason: format!("{user} has no range in {which}"),
            };
        }
        if !has_helpers {
            return IdMap::Single {
                uid,
                gid,
                reason: "newuidmap/newgidmap are not installed (package uidmap)".into(),
            };
        }
        IdMap::Mapped {
            uid,
            gid,
            uids,
            gids,
        }
    }

    /// The mapping for the calling user on this host.
    pub fn for_current_user() -> IdMap {
        let uid = nix::unistd::getuid().as_raw();
        let gid = nix::unistd::getgid().as_raw();
        let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(|u| u.name)
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_default();
        let has_helpers = crate::config::find_in_path("newuidmap").is_some()
            && crate::config::find_in_path("newgidmap").is_some();
        IdMap::detect(Path::new("/etc"), &user, uid, gid, has_helpers)
    }

    /// The host uid of the user.
    pub fn host_uid(&self) -> u32 {
        match self {
            IdMap::Mapped { uid, .. } | IdMap::Single { uid, .. } => *uid,
            IdMap::Root => 0,
        }
    }

    /// The host gid of the user.
    pub fn host_gid(&self) -> u32 {
        match self {
            IdMap::Mapped { gid, .. } | IdMap::Single { gid, .. } => *gid,
            IdMap::Root => 0,
        }
    }

    /// How many ids exist inside (1 in single-uid mode).
    pub fn size(&self) -> u64 {
        match self {
            IdMap::Mapped { uids, .. } => 1 + uids.iter().map(|r| r.count as u64).sum::<u64>(),
            IdMap::Single { .. } => 1,
            IdMap::Root => u32::MAX as u64,
        }
    }

    pub fn ownership(&self) -> Ownership {
        match self {
            IdMap::Single { .. } => Ownership::Single,
            _ => Ownership::Mapped,
        }
    }

    /// The lines of a uid or gid map of den's namespace: `own` as 0, then `ranges` stacked
    /// from 1, in order.
    pub fn map_lines(own: u32, ranges: &[Range]) -> Vec<share::MapLine> {
        let mut lines = vec![share::MapLine {
            inside: 0,
            outside: own,
            count: 1,
        }];
        let mut inside = 1u32;
        for r in ranges {
            lines.push(share::MapLine {
                inside,
                outside: r.start,
                count: r.count,
            });
            inside = inside.saturating_add(r.count);
        }
        lines
    }

    /// Arguments for newuidmap (after the pid): `0 UID 1 1 START COUNT ...`.
    pub fn helper_args(own: u32, ranges: &[Range]) -> Vec<String> {
        IdMap::map_lines(own, ranges)
            .iter()
            .flat_map(|l| [l.inside, l.outside, l.count])
            .map(|n| n.to_string())
            .collect()
    }

    /// A compact form for the environment of den's re-executed child.
    pub fn encode(&self) -> String {
        let ranges = |rs: &[Range]| {
            rs.iter()
                .map(|r| format!("{}+{}", r.start, r.count))
                .collect::<Vec<_>>()
                .join(",")
        };
        match self {
            IdMap::Mapped {
                uid,
                gid,
                uids,
                gids,
            } => format!("mapped:{uid}:{gid}:{}:{}", ranges(uids), ranges(gids)),
            IdMap::Single { uid, gid, reason } => format!("single:{uid}:{gid}:{reason}"),
            IdMap::Root => "root".into(),
        }
    }

    pub fn decode(s: &str) -> Option<IdMap> {
        let ranges = |s: &str| -> Option<Vec<Range>> {
            s.split(',')
                .map(|r| {
                    let (a, b) = r.split_once('+')?;
                    Some(Range {
                        start: a.parse().ok()?,
                        count: b.parse().ok()?,
                    })
                })
                .collect()
        };
        let mut f = s.splitn(5, ':');
        match f.next()? {
            "root" => Some(IdMap::Root),
            "mapped" => Some(IdMap::Mapped {
                uid: f.next()?.parse().ok()?,
                gid: f.next()?.parse().ok()?,
                uids: ranges(f.next()?)?,
                gids: ranges(f.next()?)?,
            }),
            "single" => {
                let uid = f.next()?.parse().ok()?;
                let gid = f.next()?.parse().ok()?;
                let rest: Vec<&str> = f.collect();
                Some(IdMap::Single {
                    uid,
                    gid,
                    reason: rest.join(":"),
                })
            }
            _ => None,
        }
    }

    /// Write the maps of process `pid`, which has just unshared its user namespace.
    pub fn apply(&self, pid: i32) -> Result<()> {
        match self {
            IdMap::Root => Ok(()),
            IdMap::Mapped {
                uid,
                gid,
                uids,
                gids,
            } => {
                // Both setuid helpers at once: each costs an exec of a setuid binary.
                let u = spawn_helper("newuidmap", pid, &IdMap::helper_args(*uid, uids))?;
                let g = spawn_helper("newgidmap", pid, &IdMap::helper_args(*gid, gids));
                let ur = finish_helper(u);
                ur.and(g.and_then(finish_helper))
            }
            IdMap::Single { uid, gid, .. } => {
                let w = |file: &str, text: String| {
                    std::fs::write(format!("/proc/{pid}/{file}"), text)
                        .map_err(|source| UsernsError::WriteMap { pid, source })
                };
                w("setgroups", "deny".into())?;
                w("uid_map", format!("0 {uid} 1\n"))?;
                w("gid_map", format!("0 {gid} 1\n"))
            }
        }
    }
}

struct Helper {
    name: &'static str,
    pid: i32,
    args: Vec<String>,
    child: std::process::Child,
}

fn spawn_helper(name: &'static str, pid: i32, args: &[String]) -> Result<Helper> {
    let child = std::process::Command::new(name)
        .arg(pid.to_string())
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|source| UsernsError::HelperMissing {
            helper: name.into(),
            source,
        })?;
    Ok(Helper {
        name,
        pid,
        args: args.to_vec(),
        child,
    })
}

fn finish_helper(h: Helper) -> Result<()> {
    let out = h
        .child
        .wait_with_output()
        .map_err(|source| UsernsError::HelperMissing {
            helper: h.name.into(),
            source,
        })?;
    if !out.status.success() {
        return Err(UsernsError::Helper {
            helper: h.name.into(),
            pid: h.pid,
            ranges: h.args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// How layer files were given their owners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ownership {
    /// Owners kept as in the image, through a subordinate id range.
    Mapped,
    /// Everything owned by the user (no subordinate ids).
    Single,
}

/// Where this process stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inside {
    /// In den's user namespace (or real root), with this mapping.
    Yes(IdMap),
}

impl Inside {
    pub fn map(&self) -> &IdMap {
        let Inside::Yes(m) = self;
        m
    }
}

/// The mapping this process runs under, if it is already inside den's user namespace.
pub fn current() -> Option<IdMap> {
    let map = IdMap::decode(&std::env::var(ENV_INSIDE).ok()?)?;
    if map == IdMap::Root {
        return Some(map);
    }
    // Trust the variable only where the kernel agrees: the initial namespace maps all 2^32 ids.
    let uid_map = std::fs::read_to_string("/proc/self/uid_map").ok()?;
    (!uid_map.contains("4294967295")).then_some(map)
}

/// Make sure this process runs inside den's user namespace (and a private mount namespace).
///
/// Inside already: returns at once. Outside: forks, maps the child, and re-executes this program
/// in it with the same arguments; this process then only waits and exits with the child's status,
/// so `enter` returns only in the re-executed child. Must be called before any thread starts.
///
/// `runtime` is den's runtime directory, where the [`keeper`] of the user's namespace is
/// recorded: joined when it runs, started when not. `None` (den-net's helpers): a namespace
/// of its own, always.
pub fn enter(sys: &dyn Sys, runtime: Option<&Path>) -> Result<Inside> {
    enter_as(sys, runtime, true)
}

/// [`enter`] without re-executing: the child carries on as the program it was, which saves a
/// second start-up of den on every container start. Its memory still belongs to the host's user
/// namespace (`mm->user_ns` is set at exec), so a process it clones and which then changes its
/// credentials in a namespace of its own (a keep-id container's init) has /proc files that no
/// process of den's may open: use [`enter`] where one will run in this process.
pub fn enter_in_place(sys: &dyn Sys, runtime: Option<&Path>) -> Result<Inside> {
    enter_as(sys, runtime, false)
}

fn enter_as(sys: &dyn Sys, runtime: Option<&Path>, exec: bool) -> Result<Inside> {
    if let Some(map) = current() {
        return Ok(Inside::Yes(map));
    }
    let map = IdMap::for_current_user();
    if map == IdMap::Root {
        // Real root: a private mount namespace is all den needs.
        sys.unshare(CloneFlags::CLONE_NEWNS)
            .map_err(UsernsError::Unshare)?;
        crate::sys::set_env(ENV_INSIDE, map.encode()).map_err(UsernsError::Fork)?;
        return Ok(Inside::Yes(map));
    }
    let threads = crate::sys::thread_count();
    if threads > 1 {
        return Err(UsernsError::Threaded(threads));
    }
    if let Some(keeper::Found::Keeper(ns)) = runtime.map(|dir| keeper::find(dir, &map)) {
        // A failed setns leaves this process as it was: it makes its namespace instead.
        if let Some(inside) = join_keeper(sys, &ns, map.clone(), exec)? {
            return Ok(inside);
        }
    }
    let (to_parent_r, to_parent_w) =
        nix::unistd::pipe().map_err(|e| UsernsError::Fork(crate::sys::SysError::new("pipe", e)))?;
    let (to_child_r, to_child_w) =
        nix::unistd::pipe().map_err(|e| UsernsError::Fork(crate::sys::SysError::new("pipe", e)))?;

    // Block the signals the parent will wait for before forking, so none is lost in between;
    // the child unblocks them before it execs.
    let mut sigs = SigSet::empty();
    for s in FORWARDED.iter().chain([Signal::SIGCHLD].iter()) {
        sigs.add(*s);
    }
    let old = crate::sys::block_signals(&sigs);

    let parent = nix::unistd::getpid();
    match crate::sys::fork().map_err(UsernsError::Fork)? {
        Forked::Child => {
            drop(to_parent_r);
            drop(to_child_w);
            child(sys, to_parent_w, to_child_r, &old, parent);
            if let Some(dir) = runtime {
                keeper::spawn(dir, &map);
            }
            carry_on(&map, exec);
            Ok(Inside::Yes(map))
        }
        Forked::Parent(pid) => {
            drop(to_parent_w);
            drop(to_child_r);
            // The child says "u" once unshared, or "e" and the errno of a failed unshare.
            let mut msg = Vec::new();
            let _ = std::fs::File::from(to_parent_r).read_to_end(&mut msg);
            let mapped = match msg.first() {
                Some(b'u') => map.apply(pid.as_raw()),
                _ => {
                    let errno = msg
                        .get(1..5)
                        .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .unwrap_or(libc::EPERM);
                    Err(UsernsError::Unshare(crate::sys::SysError::new(
                        "unshare(CLONE_NEWUSER)",
                        nix::errno::Errno::from_raw(errno),
                    )))
                }
            };
            let _ =
                std::fs::File::from(to_child_w).write_all(if mapped.is_ok() { b"m" } else { b"x" });
            if let Err(e) = mapped {
                let _ = nix::sys::wait::waitpid(pid, None);
                restore_mask(&old);
                return Err(e);
            }
            std::process::exit(wait_and_forward(pid, &sigs));
        }
    }
}

/// Join the keeper's user namespace `ns` with a mount namespace of our own and become root
/// there, then carry on as [`enter_as`] does; None when the namespace could not be joined.
fn join_keeper(
    sys: &dyn Sys,
    ns: &std::fs::File,
    map: IdMap,
    exec: bool,
) -> Result<Option<Inside>> {
    // Changing credentials (joining gives every capability there) clears the parent-death
    // signal a foreground den set; it comes back afterwards.
    let death = crate::sys::parent_death_signal();
    let parent = nix::unistd::getppid();
    if crate::sys::join_userns(ns).is_err() {
        return Ok(None);
    }
    tracing::debug!("joined the keeper's user namespace");
    sys.unshare(CloneFlags::CLONE_NEWNS)
        .map_err(UsernsError::Unshare)?;
    sys.become_root()
        .and_then(|()| crate::sys::set_dumpable(true))
        .map_err(UsernsError::Fork)?;
    if let Some(sig) = death {
        crate::sys::set_parent_death_signal(sig).map_err(UsernsError::Fork)?;
        if nix::unistd::getppid() != parent {
            let _ = nix::sys::signal::raise(sig);
        }
    }
    carry_on(&map, exec);
    Ok(Some(Inside::Yes(map)))
}

/// The signals a user sends to den that should reach the container's side: docker's sig-proxy
/// set, used here (den's namespace helper) and by the runtime's relay and attach clients.
pub const FORWARDED: &[Signal] = &[
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

fn restore_mask(old: &SigSet) {
    crate::sys::set_signal_mask(old);
}

/// The forked child's side: unshare, wait to be mapped, become root in the namespace. Exits
/// on a failure, which the parent reports.
fn child(
    sys: &dyn Sys,
    to_parent: OwnedFd,
    from_parent: OwnedFd,
    old_mask: &SigSet,
    parent: nix::unistd::Pid,
) {
    let mut w = std::fs::File::from(to_parent);
    // If the den the user started is killed (kill -9), this one goes too, and with it the
    // container, its network helper and its ports. (A detached container's monitor is a
    // process of its own, which this does not reach.)
    let _ = crate::sys::set_parent_death_signal(Signal::SIGKILL);
    if nix::unistd::getppid() != parent {
        std::process::exit(crate::error::EXIT_DEN);
    }
    if let Err(e) = sys.unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS) {
        let mut msg = vec![b'e'];
        msg.extend_from_slice(&e.errno().unwrap_or(libc::EPERM).to_le_bytes());
        let _ = w.write_all(&msg);
        std::process::exit(crate::error::EXIT_DEN);
    }
    let _ = w.write_all(b"u");
    drop(w);
    let mut b = [0u8; 1];
    if std::fs::File::from(from_parent).read_exact(&mut b).is_err() || b[0] != b'm' {
        // The parent failed to map us and reports why.
        std::process::exit(crate::error::EXIT_DEN);
    }
    // Becoming root changes the credentials, which makes the process non-dumpable: its /proc
    // files would belong to the host's root. An exec would reset that; set it back instead.
    if sys.become_root().is_err() || crate::sys::set_dumpable(true).is_err() {
        std::process::exit(crate::error::EXIT_DEN);
    }
    restore_mask(old_mask);
}

/// Inside, as root: re-execute den (`exec`) or carry on as the program it was. Exits on a
/// failure.
fn carry_on(map: &IdMap, exec: bool) {
    if exec {
        let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
        let inside = [(ENV_INSIDE, map.encode())];
        let err = crate::sys::exec(Path::new("/proc/self/exe"), &args, &inside);
        #[allow(
            clippy::print_stderr,
            reason = "an exec that failed has no caller to return to: it reports and exits"
        )]
        {
            eprintln!("den: error: {}: {}", err, err.source);
        }
        std::process::exit(crate::error::EXIT_DEN);
    }
    // What a re-executed den would have been told: it is inside (the monitor and helpers it
    // starts read this).
    if crate::sys::set_env(ENV_INSIDE, map.encode()).is_err() {
        std::process::exit(crate::error::EXIT_DEN);
    }
}

/// Wait for `pid`, forwarding the signals sent to this process by another process (a `kill`),
/// but not those the terminal sent to the whole process group (the child got those already).
/// Returns the exit status to use: the child's, or 128+signal.
fn wait_and_forward(pid: nix::unistd::Pid, sigs: &SigSet) -> i32 {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let Ok(sfd) =
        nix::sys::signalfd::SignalFd::with_flags(sigs, nix::sys::signalfd::SfdFlags::SFD_CLOEXEC)
    else {
        return status_code(waitpid(pid, None));
    };
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            other => return status_code(other),
        }
        let _ = sfd.as_fd();
        match sfd.read_signal() {
            Ok(Some(info)) => {
                let signo = info.ssi_signo as i32;
                if signo == libc::SIGCHLD {
                    continue;
                }
                // si_code <= 0: sent by kill(2)/sigqueue(2); SI_KERNEL: from the terminal driver.
                if info.ssi_code <= 0
                    && let Ok(s) = Signal::try_from(signo)
                {
                    let _ = nix::sys::signal::kill(pid, s);
                }
            }
            Ok(None) => {}
            Err(_) => return status_code(waitpid(pid, None)),
        }
    }
}

fn status_code(st: nix::Result<nix::sys::wait::WaitStatus>) -> i32 {
    use nix::sys::wait::WaitStatus;
    match st {
        Ok(WaitStatus::Exited(_, c)) => c,
        Ok(WaitStatus::Signaled(_, s, _)) => 128 + s as i32,
        _ => crate::error::EXIT_DEN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBUID: &str =
        "# comment\nalice:100000:65536\n1001:200000:1000\nbob:300000:0\nalice:500000:10\n";

    #[test]
    fn parses_ranges_by_name_or_id() {
        assert_eq!(
            parse_subid(SUBUID, "alice", 1000),
            vec![
                Range {
                    start: 100000,
                    count: 65536
                },
                Range {
                    start: 500000,
                    count: 10
                }
            ]
        );
        assert_eq!(
            parse_subid(SUBUID, "carol", 1001),
            vec![Range {
                start: 200000,
                count: 1000
            }]
        );
        assert!(
            parse_subid(SUBUID, "bob", 1002).is_empty(),
            "a zero-length range is no range"
        );
        assert!(parse_subid("garbage\n::\n", "alice", 1).is_empty());
    }

    #[test]
    fn detect_chooses_the_mode() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("subuid"), SUBUID).unwrap();
        std::fs::write(t.path().join("subgid"), SUBUID).unwrap();
        match IdMap::detect(t.path(), "alice", 1000, 1000, true) {
            IdMap::Mapped { uids, .. } => assert_eq!(uids.len(), 2),
            other => panic!("{other:?}"),
        }
        match IdMap::detect(t.path(), "dave", 1003, 1003, true) {
            IdMap::Single { reason, .. } => assert!(reason.contains("/etc/subuid")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            IdMap::detect(t.path(), "alice", 1000, 1000, false),
            IdMap::Single { .. }
        ));
        assert_eq!(IdMap::detect(t.path(), "root", 0, 0, true), IdMap::Root);
    }

    #[test]
    fn helper_arguments_stack_ranges_after_root() {
        let r = [
            Range {
                start: 100000,
                count: 65536,
            },
            Range {
                start: 500000,
                count: 10,
            },
        ];
        assert_eq!(
            IdMap::helper_args(1000, &r),
            [
                "0", "1000", "1", "1", "100000", "65536", "65537", "500000", "10"
            ]
        );
    }

    #[test]
    fn maps_round_trip_through_the_environment_form() {
        let maps = [
            IdMap::Mapped {
                uid: 1,
                gid: 2,
                uids: vec![Range { start: 3, count: 4 }],
                gids: vec![Range { start: 5, count: 6 }],
            },
            IdMap::Single {
                uid: 7,
                gid: 8,
                reason: "no range: in /etc/subuid".into(),
            },
            IdMap::Root,
        ];
        for m in maps {
            assert_eq!(IdMap::decode(&m.encode()), Some(m.clone()));
        }
        assert_eq!(IdMap::decode("nonsense"), None);
        assert_eq!(
            IdMap::Single {
                uid: 1,
                gid: 1,
                reason: String::new()
            }
            .size(),
            1
        );
    }
}
