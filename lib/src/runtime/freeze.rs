//! Stopping every process of a running container and letting them go on: `pause`/`unpause`,
//! `commit --pause`, and `stop`/`kill` of a paused container.
//!
//! Two ways, chosen per container when it is paused:
//! * the cgroup v2 freezer, where the user has a delegated cgroup v2 subtree ([`crate::cgroup`]):
//!   the container's processes move into a cgroup of their own (`den-ID`) and den writes 1 to
//!   its `cgroup.freeze`, waiting for `cgroup.events` to say `frozen 1`. This is docker's way
//!   (runc freezes the container's cgroup); the processes see no signal.
//! * else SIGSTOP to each process in the container's pid namespace ([`super::procs`]), scanning
//!   again until every one is stopped (one forked meanwhile is caught), and SIGCONT to resume.
//!   A process that handles SIGCONT sees it on unpause, which a freezer would hide.
//!
//! `resume` needs no record of which was used: a container frozen by cgroup is in a cgroup
//! whose `cgroup.freeze` reads 1. `den info` says which way this user gets, and why.

use std::time::Duration;

use nix::sys::signal::Signal;

use super::RuntimeError;
use super::procs::{container_pids, signal_all, stopped};
use crate::cgroup;
use crate::sys::Sys;

/// How long the kernel may take to report a cgroup frozen or thawed.
const WAIT: Duration = Duration::from_secs(5);

/// How a container's processes were (or would be) stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    /// The cgroup v2 freezer, in this cgroup directory (the group den makes for a container
    /// goes inside it).
    Freezer(std::path::PathBuf),
    /// SIGSTOP/SIGCONT, because of this (the cgroup seam's refusal).
    Signals(String),
}

/// What `den info` says: the way a container started by this process would be paused.
pub fn mechanism(sys: &dyn Sys) -> Mechanism {
    match cgroup::delegated(sys, "self") {
        Ok(dir) => Mechanism::Freezer(dir),
        Err(why) => Mechanism::Signals(why.0),
    }
}

impl std::fmt::Display for Mechanism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mechanism::Freezer(dir) => write!(
                f,
                "cgroup v2 freezer (each container frozen in its own group under {})",
                dir.display()
            ),
            Mechanism::Signals(why) => write!(
                f,
                "SIGSTOP/SIGCONT to each process in the container's pid namespace ({why})"
            ),
        }
    }
}

/// Stop every process of the container `id` whose init is `init`.
pub fn pause(sys: &dyn Sys, id: &str, init: i32) -> Result<Mechanism, RuntimeError> {
    let base = match cgroup::delegated(sys, &init.to_string()) {
        Ok(base) => base,
        Err(why) => {
            stop_all(init)?;
            return Ok(Mechanism::Signals(why.0));
        }
    };
    let dir = cgroup::container_group(sys, &base, id, &container_pids(init))?;
    cgroup::set_frozen(sys, &dir, true, WAIT)?;
    // A process forked in the old group while the others moved: moved now, it freezes too.
    cgroup::container_group(sys, &dir, id, &container_pids(init))?;
    Ok(Mechanism::Freezer(dir))
}

/// Let every process of the container whose init is `init` go on, the way it was stopped.
pub fn resume(sys: &dyn Sys, init: i32) -> Result<(), RuntimeError> {
    let frozen = cgroup::unified_mount(sys)
        .zip(cgroup::cgroup_of(sys, &init.to_string()))
        .map(|(mount, rel)| mount.join(rel))
        .filter(|dir| cgroup::freeze_requested(sys, dir));
    match frozen {
        Some(dir) => cgroup::set_frozen(sys, &dir, false, WAIT)?,
        None => signal_all(init, Signal::SIGCONT)?,
    }
    Ok(())
}

/// SIGSTOP to every process in `init`'s pid namespace until each is stopped (a process forked
/// between two scans is caught by the next).
fn stop_all(init: i32) -> Result<(), RuntimeError> {
    for _ in 0..50 {
        signal_all(init, Signal::SIGSTOP)?;
        if container_pids(init).into_iter().all(stopped) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Run `f` with the container paused (given its init when it is running and not paused), and
/// resume it afterwards whether `f` succeeded or not: `commit --pause`. `paused` hears how it
/// was paused (to record a cgroup made for it).
pub fn while_paused<T, E: From<RuntimeError>>(
    sys: &dyn Sys,
    id: &str,
    running_init: Option<i32>,
    paused: impl FnOnce(&Mechanism) -> Result<(), E>,
    f: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    let Some(init) = running_init else {
        return f();
    };
    let how = pause(sys, id, init)?;
    if let Err(e) = paused(&how) {
        resume(sys, init)?;
        return Err(e);
    }
    let out = f();
    let resumed = resume(sys, init);
    let value = out?;
    resumed?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::{Call, RecordingSys};
    use std::path::{Path, PathBuf};

    const SCOPE: &str = "user.slice/user-1000.slice/user@1000.service/app.slice/app.scope";

    /// A delegated cgroup v2 host; the container's init (a pid no process has, so no
    /// processes are found to move) in the user's scope.
    fn v2_host() -> (RecordingSys, PathBuf, i32) {
        let sys = RecordingSys::new();
        let init = i32::MAX - 7;
        let base = Path::new("/sys/fs/cgroup").join(SCOPE);
        sys.set_file(
            "/proc/self/mountinfo",
            "26 1 0:23 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n",
        );
        sys.set_file(format!("/proc/{init}/cgroup"), &format!("0::/{SCOPE}\n"));
        sys.set_file("/proc/self/cgroup", &format!("0::/{SCOPE}\n"));
        sys.set_file(base.join("cgroup.freeze"), "0\n");
        sys.allow_write(&base);
        (sys, base, init)
    }

    #[test]
    fn info_names_the_freezer_or_why_not() {
        let (sys, base, _) = v2_host();
        assert_eq!(mechanism(&sys), Mechanism::Freezer(base));
        assert!(mechanism(&sys).to_string().starts_with("cgroup v2 freezer"));
        let none = RecordingSys::new();
        let m = mechanism(&none).to_string();
        assert!(
            m.starts_with("SIGSTOP/SIGCONT") && m.contains("no cgroup v2"),
            "{m}"
        );
    }

    #[test]
    fn commit_pauses_through_the_freezer_and_resumes_even_when_it_fails() {
        let (sys, base, init) = v2_host();
        let own = base.join("den-c1");
        sys.set_file(own.join("cgroup.events"), "populated 1\nfrozen 1\n");
        // After the freeze, the init is in its own group (as the kernel would show it).
        let mut heard = None;
        let result: Result<(), RuntimeError> = while_paused(
            &sys,
            "c1",
            Some(init),
            |m| {
                heard = Some(m.clone());
                Ok(())
            },
            || {
                sys.set_file(
                    format!("/proc/{init}/cgroup"),
                    &format!("0::/{SCOPE}/den-c1\n"),
                );
                sys.set_file(own.join("cgroup.events"), "populated 1\nfrozen 0\n");
                Err(RuntimeError::Engine {
                    id: "c1".into(),
                    message: "the copy failed".into(),
                })
            },
        );
        assert!(result.is_err());
        let freezes: Vec<String> = sys
            .calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Write { path, data } if path == own.join("cgroup.freeze") => Some(data),
                _ => None,
            })
            .collect();
        assert_eq!(
            freezes,
            ["1", "0"],
            "frozen for the copy, thawed after its failure"
        );
        assert_eq!(sys.file(&own.join("cgroup.freeze")).as_deref(), Some("0"));
        assert_eq!(heard, Some(Mechanism::Freezer(own)));
    }

    #[test]
    fn a_stopped_container_is_not_paused_for_commit() {
        let sys = RecordingSys::new();
        let v: Result<u8, RuntimeError> = while_paused(&sys, "c", None, |_| Ok(()), || Ok(7));
        assert_eq!(v.unwrap(), 7);
        assert!(sys.calls().is_empty());
    }
}
