//! The processes of a running container, seen from the host: every process in its pid
//! namespace (found by comparing `/proc/PID/ns/pid` with the container init's; the user owns the
//! container's user namespace, so it may read those links and signal those processes, as `kill`
//! does), whether each is stopped, and signals to all of them. `pause` (through
//! [`super::freeze`]), `top` and `stats` use it.

use std::os::unix::fs::MetadataExt;

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::store::{Container, Store, StoreError};

/// The pid namespace of `pid` as (device, inode), if it can be read.
fn pid_ns(pid: i32) -> Option<(u64, u64)> {
    let md = std::fs::metadata(format!("/proc/{pid}/ns/pid")).ok()?;
    Some((md.dev(), md.ino()))
}

/// The host pids of every process in the pid namespace of `init` (init included), sorted.
pub fn container_pids(init: i32) -> Vec<i32> {
    let Some(ns) = pid_ns(init) else {
        return Vec::new();
    };
    let mut pids: Vec<i32> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| pid_ns(p) == Some(ns))
        .collect();
    pids.sort_unstable();
    pids
}

/// Whether `pid` is stopped (state `T` in /proc/PID/stat), or gone.
pub fn stopped(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    stat.rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next())
        .is_none_or(|c| c == 'T' || c == 't' || c == 'Z' || c == 'X')
}

pub fn signal_all(init: i32, sig: Signal) -> Result<(), StoreError> {
    for pid in container_pids(init) {
        match nix::sys::signal::kill(Pid::from_raw(pid), sig) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => {
                return Err(StoreError::Io {
                    path: format!("/proc/{pid}").into(),
                    source: e.into(),
                });
            }
        }
    }
    Ok(())
}

/// Record whether a container is paused, in its state.
pub fn set_paused(store: &Store, id: &str, paused: bool) -> Result<(), StoreError> {
    let mut state = store.container_state(id)?;
    state.paused = paused;
    store.set_container_state(id, &state)?;
    Ok(())
}

/// Remember the cgroup the freezer made for a container (`how` it was paused), so that
/// removing the container removes the group.
pub fn record_group(
    store: &Store,
    id: &str,
    how: &super::freeze::Mechanism,
) -> Result<(), StoreError> {
    if let super::freeze::Mechanism::Freezer(dir) = how {
        let mut state = store.container_state(id)?;
        state.cgroup = Some(dir.clone());
        store.set_container_state(id, &state)?;
    }
    Ok(())
}

/// For `stop` and `kill` of a paused container, after their signal: continue (or thaw) its
/// processes so they act on it, as docker's stop and kill do.
pub fn resume_after_signal(store: &Store, c: &Container) -> Result<(), super::RuntimeError> {
    if let (true, Some(init)) = (c.state.paused, c.state.pid) {
        super::freeze::resume(&crate::sys::LinuxSys, init)?;
        set_paused(store, &c.record.id, false)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_in_its_own_namespace_list() {
        let me = std::process::id() as i32;
        assert!(container_pids(me).contains(&me));
        assert!(!stopped(me));
        assert!(container_pids(-1).is_empty());
    }
}
