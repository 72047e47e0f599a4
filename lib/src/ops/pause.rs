//! `pause` and `unpause`: every process of a running container stopped (SIGSTOP) and continued
//! (SIGCONT).
//!
//! docker freezes the container's cgroup. den puts containers in no cgroup of their own (no
//! delegated cgroup v2 subtree is made for them; see `den info`), so it signals each process in
//! the container's pid namespace instead: found by comparing `/proc/PID/ns/pid` with the
//! container init's (the user owns the container's user namespace, so it may read those links
//! and signal those processes, as `kill` does). Processes forked while den stops the others are
//! caught by scanning again until every one is stopped. A process in the container that handles
//! SIGCONT sees it on unpause, which a freezer would hide: that is the difference `den info`
//! names.

use nix::sys::signal::Signal;

use super::{Ctx, Result};
use crate::runtime::procs::{container_pids, set_paused, signal_all, stopped};
use crate::store::{Container, ContainersError, Status, Store};

fn running(store: &Store, name: &str) -> Result<(Container, i32)> {
    let c = store.lookup_container(name)?;
    match (c.state.status, c.state.pid) {
        (Status::Running, Some(pid)) => Ok((c, pid)),
        _ => Err(ContainersError::NotRunning(name.into()).into()),
    }
}

pub fn pause(ctx: &Ctx, name: &str) -> Result<()> {
    let store = ctx.store()?;
    let (c, init) = running(&store, name)?;
    if c.state.paused {
        return Err(ContainersError::AlreadyPaused(name.into()).into());
    }
    for _ in 0..50 {
        signal_all(init, Signal::SIGSTOP)?;
        if container_pids(init).into_iter().all(stopped) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    set_paused(&store, &c.record.id, true)?;
    store.record_event(&crate::store::Event::container(&c.record, "pause"));
    Ok(())
}

pub fn unpause(ctx: &Ctx, name: &str) -> Result<()> {
    let store = ctx.store()?;
    let (c, init) = running(&store, name)?;
    if !c.state.paused {
        return Err(ContainersError::NotPaused(name.into()).into());
    }
    signal_all(init, Signal::SIGCONT)?;
    set_paused(&store, &c.record.id, false)?;
    store.record_event(&crate::store::Event::container(&c.record, "unpause"));
    Ok(())
}
