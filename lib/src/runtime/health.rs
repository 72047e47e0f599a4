//! Starting a container's health checker: `den-run healthcheck __watch ID`, a child of the process that
//! holds the container (its monitor, or the foreground den), in the same user and mount
//! namespaces, so each check can start a process in the container the way `exec` does
//! ([`crate::ops::health::watch`]). A process of its own: the holder's loop stays as it is, and
//! reaps the checker only when it ends. It ends when the container's init is gone or the
//! holder drops the [`Checker`] (and with a parent-death signal if the holder dies).

use crate::store::ContainerRecord;
use crate::store::health::Health;

/// The running checker; killed when dropped.
pub struct Checker(std::process::Child);

impl Drop for Checker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start the checker of `record`'s container (just started, its state written): its health
/// reset to `starting`. None when it has no check, or the checker could not start (the
/// container runs on, its health stays `starting`, as docker's when a probe cannot run).
pub fn start(store: &crate::store::Store, record: &ContainerRecord) -> Option<Checker> {
    record.spec.healthcheck.as_ref()?.argv()?;
    let _ = store.set_container_health(&record.id, &Health::starting());
    let exe = std::fs::read_link("/proc/self/exe").ok()?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["healthcheck", "__watch", &record.id])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    match cmd.spawn() {
        Ok(child) => Some(Checker(child)),
        Err(e) => {
            tracing::debug!(error = %e, "health checker not started");
            None
        }
    }
}
