//! `pause` and `unpause`: every process of a running container stopped and let go on, by the
//! cgroup v2 freezer where the user has a delegated subtree, else by SIGSTOP and SIGCONT
//! ([`crate::runtime::freeze`] chooses and says why; `den info` shows it).

use super::{Ctx, Result};
use crate::runtime::freeze;
use crate::runtime::procs::set_paused;
use crate::store::{Container, ContainersError, Status, Store};
use crate::sys::LinuxSys;

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
    let how = freeze::pause(&LinuxSys, &c.record.id, init)?;
    tracing::debug!("paused by {how}");
    crate::runtime::procs::record_group(&store, &c.record.id, &how)?;
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
    freeze::resume(&LinuxSys, init)?;
    set_paused(&store, &c.record.id, false)?;
    store.record_event(&crate::store::Event::container(&c.record, "unpause"));
    Ok(())
}
