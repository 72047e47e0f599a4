//! `export`: a container's filesystem as a tar, what the container sees at `/`: its image's
//! layers with its writable layer on top, whiteouts applied. Mounts (den's /etc/hosts,
//! /etc/hostname and /etc/resolv.conf, volumes, binds, tmpfs) are the container's, not its
//! filesystem's, and are not in the tar.
//!
//! As for `cp`, a running container's root is read where its monitor has mounted it (den joins
//! the monitor's namespaces first); a stopped container's is mounted for the export in a fresh
//! den user namespace. Either way den reads inside the user namespace, so files show the owners
//! the container sees (uid 0 for root, not the user's own uid) and subordinate-owned files can
//! be read.

use std::io::Write;
use std::path::PathBuf;

use super::Ctx;
use super::Result;
use crate::store::Status;
use crate::store::driver::{self, Driver, Layout};

/// Which container, and whether it runs (decided before entering any namespace).
#[derive(Debug, Clone)]
pub struct ExportPlan {
    pub container: String,
    pub id: String,
    pub running: bool,
}

pub fn plan(ctx: &Ctx, name: &str) -> Result<ExportPlan> {
    let c = ctx.store()?.lookup_container(name)?;
    Ok(ExportPlan {
        container: name.into(),
        id: c.record.id.clone(),
        running: c.state.status == Status::Running,
    })
}

/// Write the container's root filesystem as a tar to `out`, inside the namespace the binary
/// has put den in (the monitor's for a running container, a fresh one otherwise).
pub fn export(ctx: &Ctx, plan: &ExportPlan, out: &mut dyn Write) -> Result<()> {
    let store = ctx.store()?;
    let cdir = store.container_dir(&plan.id);
    let record = store.container(&plan.id)?;
    let d = Driver::from_name(&record.driver).unwrap_or(Driver::Vfs);
    let mut file = None;
    let (root, mounted): (PathBuf, bool) = if plan.running {
        let l = Layout::of(&cdir);
        (
            if d == Driver::Vfs {
                l.rootfs_copy
            } else {
                l.merged
            },
            false,
        )
    } else {
        let layers = store.rootfs_layers(&record)?;
        let (root, f) = crate::store::imagefile::mount_root(
            &crate::sys::LinuxSys,
            d,
            &store,
            &record,
            &layers,
            false,
        )
        .map_err(super::Error::from)?;
        file = f;
        (root, true)
    };
    let res = crate::build::layer::write_rootfs_tar(&root, out).map_err(|e| {
        crate::store::StoreError::Io {
            path: root.clone(),
            source: e,
        }
    });
    if mounted {
        driver::unmount(&crate::sys::LinuxSys, d, &cdir);
        crate::store::imagefile::release(file, &crate::sys::LinuxSys);
    }
    res?;
    Ok(())
}
