//! `down` and the foreground `up`'s end: containers stopped (their stop signal, then the
//! grace period) and removed in parallel, then the project's networks, and with `-v` its
//! volumes, with `--rmi` its images.

use super::Progress;
use crate::compose::ComposeError;
use crate::compose::engine::{Den, Existing};
use crate::compose::model::Project;
use crate::compose::plan;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rmi {
    /// Images built without an `image:` name.
    Local,
    All,
}

#[derive(Debug, Clone, Default)]
pub struct DownOptions {
    pub volumes: bool,
    pub rmi: Option<Rmi>,
    pub remove_orphans: bool,
    pub timeout: Option<u32>,
}

pub fn down(
    den: &Den,
    project: &Project,
    opts: &DownOptions,
    progress: Progress,
) -> Result<(), ComposeError> {
    let existing = den.containers(&project.name)?;
    super::orphans(den, project, &existing, opts.remove_orphans, progress)?;
    let ours: Vec<Existing> = existing
        .into_iter()
        .filter(|e| e.oneoff() || project.services.contains_key(e.service()))
        .collect();
    remove(den, &ours, opts.timeout, opts.volumes, progress)?;
    for def in project.networks.values().filter(|n| !n.external) {
        if den.exists("network", &def.name) {
            den.run(&["network".into(), "rm".into(), def.name.clone()])?;
            progress(&format!(" Network {}  Removed", def.name));
        }
    }
    if opts.volumes {
        for def in project.volumes.values().filter(|v| !v.external) {
            if den.exists("volume", &def.name) {
                den.run(&["volume".into(), "rm".into(), def.name.clone()])?;
                progress(&format!(" Volume {}  Removed", def.name));
            }
        }
    }
    if let Some(rmi) = opts.rmi {
        for (name, svc) in &project.services {
            let local = svc.build.is_some() && svc.image.is_none();
            if rmi == Rmi::All || local {
                let image = plan::image(project, name);
                if den.probe(&["rmi", &image]).is_some() {
                    progress(&format!(" Image {image}  Removed"));
                }
            }
        }
    }
    Ok(())
}

/// Stop (gracefully) and remove `containers`, each in its own thread.
pub fn remove(
    den: &Den,
    containers: &[Existing],
    timeout: Option<u32>,
    volumes: bool,
    progress: Progress,
) -> Result<(), ComposeError> {
    let results: Vec<Result<(), ComposeError>> = std::thread::scope(|s| {
        let handles: Vec<_> = containers
            .iter()
            .map(|e| {
                s.spawn(move || {
                    if e.running() {
                        stop(den, &e.name, timeout, progress)?;
                    }
                    let mut args = vec!["rm".to_string(), "-f".to_string()];
                    if volumes {
                        args.push("-v".into());
                    }
                    args.push(e.name.clone());
                    den.run(&args)?;
                    progress(&format!(" Container {}  Removed", e.name));
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Ok(())))
            .collect()
    });
    results.into_iter().collect()
}

/// `den stop [-t T] NAME`.
pub fn stop(
    den: &Den,
    name: &str,
    timeout: Option<u32>,
    progress: Progress,
) -> Result<(), ComposeError> {
    progress(&format!(" Container {name}  Stopping"));
    let mut args = vec!["stop".to_string()];
    if let Some(t) = timeout {
        args.extend(["-t".to_string(), t.to_string()]);
    }
    args.push(name.to_string());
    den.run(&args)?;
    progress(&format!(" Container {name}  Stopped"));
    Ok(())
}
