//! cgroup v2, where the user has a delegated subtree: finding it, a cgroup of a container's own
//! inside it, and the freezer (`cgroup.freeze`, with `cgroup.events` saying when every process
//! is frozen), and resource limits ([`limits`]: `--memory`, `--cpus`, `--pids-limit`, ...) on
//! the same facts.
//!
//! # When den may use it
//!
//! A rootless user may touch only a cgroup that was delegated to it: a directory of the unified
//! (v2) hierarchy that it can write, with `cgroup.procs` it can write (systemd's `Delegate=yes`
//! chowns both to the user for `user@UID.service`). den looks at the cgroup a process is in
//! (`0::/PATH` in `/proc/PID/cgroup`), under the cgroup2 mount found in `/proc/self/mountinfo`,
//! and asks access(2) whether it may write there. Anything short of that (no cgroup2 mount, a
//! v1-only or hybrid host whose unified hierarchy is root's, a kernel without `cgroup.freeze`)
//! is a [`Refusal`] naming why, and the caller signals processes instead.
//!
//! # A container's cgroup
//!
//! den's containers start in the cgroup of whoever started them, with other processes (den's
//! monitor, the user's shell). To freeze only the container, its processes move into a child
//! cgroup `den-ID` made beside them when first needed; children the container forks later are
//! born there. The move needs write access to `cgroup.procs` of the common parent, which a
//! delegated subtree gives. No controller is enabled anywhere, so the "no internal processes"
//! rule of cgroup v2 does not apply.
//!
//! Every kernel file goes through [`Sys`] (`read_text`, `write_text`, `writable`, `mkdir`), so
//! the unit tests below run against [`crate::sys::RecordingSys`] with the facts of a v2 host.

pub mod limits;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::Diagnose;
use crate::sys::{Sys, SysError};

/// Why den cannot use a cgroup v2 freezer for a process (said by `den info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cannot make the container's cgroup {}", dir.display())]
    Make {
        dir: PathBuf,
        #[source]
        source: SysError,
    },
    #[error("cannot move process {pid} into the cgroup {}", dir.display())]
    Move {
        pid: i32,
        dir: PathBuf,
        #[source]
        source: SysError,
    },
    #[error("cannot {} the cgroup {}", if *frozen { "freeze" } else { "thaw" }, dir.display())]
    Freeze {
        dir: PathBuf,
        frozen: bool,
        #[source]
        source: SysError,
    },
    #[error("the cgroup {} did not report frozen {} within {waited:?}", dir.display(), u8::from(*frozen))]
    Timeout {
        dir: PathBuf,
        frozen: bool,
        waited: Duration,
    },
    #[error("invalid --{flag} {value}: {why}")]
    BadLimit {
        flag: &'static str,
        value: String,
        why: String,
    },
    #[error("{flags} need{} a cgroup v2 subtree delegated to you: {why}", if flags.contains(',') { "" } else { "s" })]
    Unavailable { flags: String, why: String },
    #[error("cannot write {value:?} to {}", path.display())]
    Limit {
        path: PathBuf,
        value: String,
        #[source]
        source: SysError,
    },
}

impl Diagnose for CgroupError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            CgroupError::Make { .. } | CgroupError::Move { .. } => {
                "den needs a delegated cgroup v2 subtree for this (see `den info`); it was there when \
                 den looked, so check that nothing changed its permissions"
                    .into()
            }
            CgroupError::Freeze { .. } => "check the cgroup's cgroup.freeze with `cat`; `den info` says what den uses".into(),
            CgroupError::Timeout { .. } => {
                "a process in the container may be in an uninterruptible wait (disk, fuse); try again".into()
            }
            CgroupError::BadLimit { flag, .. } => limits::flag_usage(flag).into(),
            CgroupError::Unavailable { .. } => {
                "run den inside a cgroup v2 group delegated to you: systemd's `systemd-run --user \
                 --scope -p Delegate=yes den ...` (user@.service has Delegate=yes), a site's \
                 directory in DEN_CGROUP or config.toml's [cgroup] parent, or a Slurm job with the \
                 cgroup/v2 plugin; or leave the limit out. `den info` says what den found"
                    .into()
            }
            CgroupError::Limit { .. } => {
                "the kernel refused the value; check the group's file with `cat`, and that the \
                 CPUs of --cpuset-cpus are the group's (cpuset.cpus.effective)"
                    .into()
            }
        })
    }
}

/// The mount point of the unified (cgroup2) hierarchy, from `/proc/self/mountinfo`.
pub fn unified_mount(sys: &dyn Sys) -> Option<PathBuf> {
    let info = sys.read_text(Path::new("/proc/self/mountinfo")).ok()?;
    info.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let fstype = right.split_whitespace().next()?;
        let point = left.split_whitespace().nth(4)?;
        (fstype == "cgroup2").then(|| PathBuf::from(point))
    })
}

/// The v2 cgroup of `pid` (`0::/PATH` in `/proc/PID/cgroup`; `self` for this process), as a
/// path relative to the hierarchy's root.
pub fn cgroup_of(sys: &dyn Sys, pid: &str) -> Option<PathBuf> {
    let text = sys
        .read_text(&Path::new("/proc").join(pid).join("cgroup"))
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| PathBuf::from(p.trim().trim_start_matches('/')))
}

/// The cgroup directory `pid` is in, if den may freeze it: on the unified hierarchy, writable
/// with its `cgroup.procs`, and with a `cgroup.freeze` (Linux 5.2 and later). Else why not.
pub fn delegated(sys: &dyn Sys, pid: &str) -> Result<PathBuf, Refusal> {
    let refuse = |s: String| Err(Refusal(s));
    let Some(mount) = unified_mount(sys) else {
        return refuse("no cgroup v2 hierarchy is mounted".into());
    };
    let Some(rel) = cgroup_of(sys, pid) else {
        return refuse("this process is in no cgroup v2 group".into());
    };
    if rel.as_os_str().is_empty() {
        return refuse(format!(
            "this process is in the root group of {}, which has no freezer and is nobody's \
             delegated subtree",
            mount.display()
        ));
    }
    let dir = mount.join(rel);
    if !sys.writable(&dir) || !sys.writable(&dir.join("cgroup.procs")) {
        return refuse(format!(
            "the cgroup v2 group {} is not delegated to this user (not writable)",
            dir.display()
        ));
    }
    if sys.read_text(&dir.join("cgroup.freeze")).is_err() {
        return refuse(format!(
            "{} has no cgroup.freeze (the kernel's freezer needs Linux 5.2)",
            dir.display()
        ));
    }
    Ok(dir)
}

/// The cgroup of a container's own, `den-ID` beside (or already holding) `init`'s processes:
/// made when missing, and every one of `pids` moved into it. `base` is what [`delegated`]
/// returned for `init`.
pub fn container_group(
    sys: &dyn Sys,
    base: &Path,
    id: &str,
    pids: &[i32],
) -> Result<PathBuf, CgroupError> {
    let name = format!("den-{id}");
    let dir = if base.file_name().is_some_and(|n| n == name.as_str()) {
        base.to_path_buf()
    } else {
        base.join(&name)
    };
    if dir != base {
        sys.mkdir(&dir).map_err(|source| CgroupError::Make {
            dir: dir.clone(),
            source,
        })?;
    }
    let procs = dir.join("cgroup.procs");
    for &pid in pids {
        match sys.write_text(&procs, &pid.to_string()) {
            // Gone meanwhile: nothing to move.
            Err(e) if e.errno() == Some(libc::ESRCH) => {}
            Err(source) => {
                return Err(CgroupError::Move {
                    pid,
                    dir: dir.clone(),
                    source,
                });
            }
            Ok(()) => {}
        }
    }
    Ok(dir)
}

/// Remove the container `id`'s own cgroup `dir` once it has no processes (rmdir refuses a
/// populated one, and anything not named `den-ID` is left alone); best effort, as a leftover
/// empty group costs nothing.
pub fn remove_group(sys: &dyn Sys, dir: &Path, id: &str) {
    if dir.file_name().is_some_and(|n| *n == *format!("den-{id}")) {
        let _ = sys.rmdir(dir);
    }
}

/// Whether the cgroup `dir` is frozen now (its `cgroup.events` says `frozen 1`).
pub fn is_frozen(sys: &dyn Sys, dir: &Path) -> bool {
    sys.read_text(&dir.join("cgroup.events"))
        .is_ok_and(|t| t.lines().any(|l| l.trim() == "frozen 1"))
}

/// Whether the cgroup `dir` was asked to freeze (its `cgroup.freeze` reads 1).
pub fn freeze_requested(sys: &dyn Sys, dir: &Path) -> bool {
    sys.read_text(&dir.join("cgroup.freeze"))
        .is_ok_and(|t| t.trim() == "1")
}

/// Freeze (`frozen`) or thaw the cgroup `dir`, then wait up to `wait` for `cgroup.events` to
/// agree: the kernel freezes a process at its next return to user space, so the write alone
/// does not mean every process is still.
pub fn set_frozen(
    sys: &dyn Sys,
    dir: &Path,
    frozen: bool,
    wait: Duration,
) -> Result<(), CgroupError> {
    sys.write_text(&dir.join("cgroup.freeze"), if frozen { "1" } else { "0" })
        .map_err(|source| CgroupError::Freeze {
            dir: dir.to_path_buf(),
            frozen,
            source,
        })?;
    let start = Instant::now();
    while is_frozen(sys, dir) != frozen {
        if start.elapsed() >= wait {
            return Err(CgroupError::Timeout {
                dir: dir.to_path_buf(),
                frozen,
                waited: wait,
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::{Call, RecordingSys};

    const MOUNTINFO: &str = "\
22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
26 1 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";
    const SCOPE: &str = "user.slice/user-1000.slice/user@1000.service/app.slice/app.scope";

    /// A cgroup v2 host (systemd, Linux 6.x) whose user service delegates its subtree.
    fn v2_host(delegated: bool) -> (RecordingSys, PathBuf) {
        let sys = RecordingSys::new();
        let dir = Path::new("/sys/fs/cgroup").join(SCOPE);
        sys.set_file("/proc/self/mountinfo", MOUNTINFO);
        sys.set_file("/proc/4242/cgroup", &format!("0::/{SCOPE}\n"));
        sys.set_file(dir.join("cgroup.freeze"), "0\n");
        if delegated {
            sys.allow_write(&dir);
        }
        (sys, dir)
    }

    #[test]
    fn a_delegated_v2_group_is_found_and_others_are_refused_with_the_reason() {
        let (sys, dir) = v2_host(true);
        assert_eq!(unified_mount(&sys), Some("/sys/fs/cgroup".into()));
        assert_eq!(delegated(&sys, "4242"), Ok(dir));

        let (root_owned, _) = v2_host(false);
        let why = delegated(&root_owned, "4242").unwrap_err().0;
        assert!(why.contains("not delegated"), "{why}");

        // This machine's kind: hybrid v1, its unified hierarchy root's, the process in `/`.
        let hybrid = RecordingSys::new();
        hybrid.set_file(
            "/proc/self/mountinfo",
            "30 25 0:26 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
             31 25 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
        );
        hybrid.set_file("/proc/self/cgroup", "4:memory:/\n0::/\n");
        let why = delegated(&hybrid, "self").unwrap_err().0;
        assert!(
            why.contains("root group of /sys/fs/cgroup/unified"),
            "{why}"
        );
        hybrid.set_file("/proc/self/cgroup", "0::/user/1000\n");
        let why = delegated(&hybrid, "self").unwrap_err().0;
        assert!(
            why.contains("/sys/fs/cgroup/unified/user/1000 is not delegated"),
            "{why}"
        );

        let v1 = RecordingSys::new();
        v1.set_file(
            "/proc/self/mountinfo",
            "31 25 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw\n",
        );
        assert_eq!(
            delegated(&v1, "self").unwrap_err().0,
            "no cgroup v2 hierarchy is mounted"
        );

        // A kernel before 5.2: the group is delegated but has no cgroup.freeze.
        let bare = RecordingSys::new();
        bare.set_file("/proc/self/mountinfo", MOUNTINFO);
        bare.set_file("/proc/9/cgroup", &format!("0::/{SCOPE}\n"));
        bare.allow_write(Path::new("/sys/fs/cgroup").join(SCOPE));
        assert!(delegated(&bare, "9").unwrap_err().0.contains("Linux 5.2"));
    }

    #[test]
    fn the_container_moves_into_its_own_group_and_freezes_and_thaws() {
        let (sys, base) = v2_host(true);
        let own = base.join("den-abc");
        // The kernel's answer once the processes are still.
        sys.set_file(own.join("cgroup.events"), "populated 1\nfrozen 1\n");
        let dir = container_group(&sys, &base, "abc", &[4242, 4243]).unwrap();
        assert_eq!(dir, own);
        set_frozen(&sys, &dir, true, Duration::from_millis(50)).unwrap();
        assert!(freeze_requested(&sys, &dir));
        sys.set_file(own.join("cgroup.events"), "populated 1\nfrozen 0\n");
        set_frozen(&sys, &dir, false, Duration::from_millis(50)).unwrap();
        let procs = own.join("cgroup.procs");
        let write = |path: &Path, data: &str| Call::Write {
            path: path.into(),
            data: data.into(),
        };
        assert_eq!(
            sys.calls(),
            vec![
                Call::Mkdir(own.clone()),
                write(&procs, "4242"),
                write(&procs, "4243"),
                write(&own.join("cgroup.freeze"), "1"),
                write(&own.join("cgroup.freeze"), "0"),
            ]
        );
        // Already in its own group (a second pause): no new group, the same one.
        let again = container_group(&sys, &own, "abc", &[]).unwrap();
        assert_eq!(again, own);
        // Removed with the container, and only a group of that container's name.
        remove_group(&sys, &base, "abc");
        remove_group(&sys, &own, "abd");
        remove_group(&sys, &own, "abc");
        assert_eq!(sys.calls().last(), Some(&Call::Rmdir(own.clone())));
        assert_eq!(
            sys.calls()
                .iter()
                .filter(|c| matches!(c, Call::Rmdir(_)))
                .count(),
            1
        );
    }

    #[test]
    fn a_group_that_never_reports_frozen_times_out() {
        let (sys, base) = v2_host(true);
        sys.set_file(base.join("cgroup.events"), "populated 1\nfrozen 0\n");
        let err = set_frozen(&sys, &base, true, Duration::from_millis(20)).unwrap_err();
        assert!(
            matches!(err, CgroupError::Timeout { frozen: true, .. }),
            "{err}"
        );
        assert!(err.hint().is_some());
    }

    #[test]
    fn a_refused_move_names_the_process() {
        let (sys, base) = v2_host(true);
        let own = base.join("den-x");
        sys.fail_on(
            Call::Write {
                path: own.join("cgroup.procs"),
                data: "7".into(),
            },
            nix::errno::Errno::EACCES,
        );
        let err = container_group(&sys, &base, "x", &[7]).unwrap_err();
        assert!(err.to_string().contains("process 7"), "{err}");
        // A process that exited meanwhile is not a failure.
        sys.fail_on(
            Call::Write {
                path: own.join("cgroup.procs"),
                data: "8".into(),
            },
            nix::errno::Errno::ESRCH,
        );
        container_group(&sys, &base, "x", &[8]).unwrap();
    }
}
