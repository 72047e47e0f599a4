//! `cp`: copy between a container and the host (or a tar stream), docker's rules in
//! [`crate::copy`].
//!
//! A running container is seen as a process inside it sees itself: den joins its monitor's
//! namespaces (see [`super::exec::join`]) and copies under `/proc/PID/root` of the container's
//! init, a path that walks the container's own mount namespace, so its tmpfs mounts, binds,
//! volumes and den's /etc files are the container's view, while the host's paths stay the
//! host's. A stopped container's root filesystem is mounted for the copy in a fresh den user
//! namespace; paths under its mounts (den's /etc/hosts, /etc/hostname, /etc/resolv.conf, bind
//! mounts and volumes) are copied from and to the mount's source, as podman does. A stopped
//! container has no tmpfs.

use std::path::PathBuf;

use super::Ctx;
use super::Result;
use crate::store::Status;
use crate::store::driver;

#[derive(Debug, Clone)]
pub enum Direction {
    /// Container path to a host path (None: a tar on stdout).
    Out { ctr: String, host: Option<PathBuf> },
    /// Host path (None: a tar on stdin) to a container path.
    In { host: Option<PathBuf>, ctr: String },
}

#[derive(Debug, Clone)]
pub struct CpPlan {
    pub container: String,
    pub id: String,
    pub running: bool,
    /// The running container's init, whose `/proc/PID/root` is the container's view, and its
    /// monitor.
    pub pid: Option<(i32, i32)>,
    pub direction: Direction,
    pub follow_link: bool,
}

/// docker's split: `NAME:PATH` names a container unless the argument starts like a local path.
fn split(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') || arg == "-" {
        return None;
    }
    let (c, p) = arg.split_once(':')?;
    (!c.is_empty() && !c.contains('/')).then_some((c, p))
}

fn host_path(p: &str) -> Option<PathBuf> {
    if p == "-" {
        return None;
    }
    let p = PathBuf::from(p);
    let abs = if p.is_absolute() {
        p
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| "/".into())
            .join(p)
    };
    // Keep a trailing "/" or "/.": they matter to docker's rules.
    Some(abs)
}

/// A container path as docker takes it: absolute, `..` and `.` cleaned lexically first (so
/// `/mnt/file/../bar` is `/mnt/bar`, and is routed as such, never to beside a bind-mounted
/// file's source), with a trailing `/` or `/.` kept, since they matter to docker's rules
/// (docker's `PreserveTrailingDotOrSeparator`).
fn ctr_path(p: &str) -> String {
    let mut clean = crate::volume::clean_path(p);
    if p.ends_with("/.") || p == "." {
        if !clean.ends_with('/') {
            clean.push('/');
        }
        clean.push('.');
    } else if p.ends_with('/') && !clean.ends_with('/') {
        clean.push('/');
    }
    clean
}

pub fn plan(ctx: &Ctx, src: &str, dest: &str, follow_link: bool) -> Result<CpPlan> {
    let (name, direction) = match (split(src), split(dest)) {
        (Some((c, p)), None) => (
            c,
            Direction::Out {
                ctr: ctr_path(p),
                host: host_path(dest),
            },
        ),
        (None, Some((c, p))) => (
            c,
            Direction::In {
                host: host_path(src),
                ctr: ctr_path(p),
            },
        ),
        (Some(_), Some(_)) => {
            return Err(crate::copy::CopyError::BadPaths(
                "copying between containers is not supported".into(),
            )
            .into());
        }
        (None, None) => {
            return Err(crate::copy::CopyError::BadPaths(
                "must specify at least one container source".into(),
            )
            .into());
        }
    };
    let c = ctx.store()?.lookup_container(name)?;
    Ok(CpPlan {
        container: name.into(),
        id: c.record.id.clone(),
        running: c.state.status == Status::Running,
        pid: c
            .state
            .pid
            .zip(c.state.monitor.map(|(m, _)| m))
            .filter(|_| c.state.status == Status::Running),
        direction,
        follow_link,
    })
}

/// Copy, inside the namespace the binary has put den in.
pub fn cp(ctx: &Ctx, plan: &CpPlan) -> Result<()> {
    let store = ctx.store()?;
    let cdir = store.container_dir(&plan.id);
    let mounted = if plan.running {
        None
    } else {
        let record = store.container(&plan.id)?;
        let layers = store.rootfs_layers(&record)?;
        let d = driver::Driver::from_name(&record.driver).unwrap_or(driver::Driver::Vfs);
        let (_, file) = crate::store::imagefile::mount_root(
            &crate::sys::LinuxSys,
            d,
            &store,
            &record,
            &layers,
            false,
        )
        .map_err(super::Error::from)?;
        Some((d, file))
    };
    let ctr_of = |d: &Direction| match d {
        Direction::Out { ctr, .. } | Direction::In { ctr, .. } => ctr.clone(),
    };
    // The init is the monitor's child: a pid reused since the state was read is not taken for
    // the container.
    let init = plan
        .pid
        .filter(|(pid, monitor)| crate::store::parent_pid(*pid) == Some(*monitor))
        .map(|(pid, _)| PathBuf::from(format!("/proc/{pid}/root")));
    let (root, ctr_path_routed) = match init {
        // The container's own view, mounts and all.
        Some(r) if plan.running && r.is_dir() => (r, ctr_of(&plan.direction)),
        _ => {
            let mounts = mount_sources(&store, &plan.id)?;
            route(&mounts, &cdir.join("merged"), &ctr_of(&plan.direction))
        }
    };
    let res = copy(plan, &root, &ctr_path_routed);
    if let Some((d, file)) = mounted {
        driver::unmount(&crate::sys::LinuxSys, d, &cdir);
        crate::store::imagefile::release(file, &crate::sys::LinuxSys);
    }
    res
}

/// Copy in the direction `plan` says, with the container's root filesystem at `root`.
fn copy(plan: &CpPlan, root: &std::path::Path, ctr_path: &str) -> Result<()> {
    let c = super::Error::Copy;
    match &plan.direction {
        Direction::Out { host, .. } => {
            let mut out = std::io::stdout().lock();
            let dest = match host {
                Some(p) => crate::copy::Dest::Path(p),
                None => crate::copy::Dest::Stdout,
            };
            crate::copy::copy_out(root, ctr_path, dest, plan.follow_link, &mut out).map_err(c)?;
        }
        Direction::In { host, .. } => {
            let mut input = std::io::stdin().lock();
            let src = match host {
                Some(p) => crate::copy::Source::Path(p),
                None => crate::copy::Source::Stdin,
            };
            crate::copy::copy_in_with(root, src, ctr_path, &mut input, plan.follow_link)
                .map_err(c)?;
        }
    }
    Ok(())
}

/// A stopped container's mounts that outlive it, as (destination, host source): den's /etc files,
/// binds and volumes.
fn mount_sources(store: &crate::store::Store, id: &str) -> Result<Vec<(String, PathBuf)>> {
    let cdir = store.container_dir(id);
    let record = store.container(id)?;
    let vols = store.volumes();
    let mut mounts: Vec<(String, PathBuf)> = ["hosts", "hostname", "resolv.conf"]
        .iter()
        .map(|f| (format!("/etc/{f}"), cdir.join("userdata").join(f)))
        .collect();
    for m in &record.spec.mounts {
        match m.kind {
            crate::volume::MountKind::Bind => {
                mounts.push((m.destination.clone(), m.source.clone().into()))
            }
            crate::volume::MountKind::Volume => {
                mounts.push((m.destination.clone(), vols.data_dir(&m.source)))
            }
            crate::volume::MountKind::Tmpfs => {}
        }
    }
    Ok(mounts)
}

/// The host directory and path for container path `ctr`: under the longest mount destination
/// that contains it, the mount's source; else the root filesystem. A mount of a file is reached
/// through its directory.
fn route(mounts: &[(String, PathBuf)], rootfs: &std::path::Path, ctr: &str) -> (PathBuf, String) {
    let clean = |s: &str| s.trim_end_matches('/').to_string();
    let mut best: Option<(&String, &PathBuf)> = None;
    for (dest, src) in mounts {
        let d = clean(dest);
        let under = ctr == d || ctr.strip_prefix(&d).is_some_and(|r| r.starts_with('/'));
        if under && best.is_none_or(|(b, _)| clean(b).len() < d.len()) {
            best = Some((dest, src));
        }
    }
    match best {
        None => (rootfs.to_path_buf(), ctr.to_string()),
        Some((dest, src)) => {
            let rest = &ctr[clean(dest).len()..];
            if src.is_dir() {
                (
                    src.clone(),
                    if rest.is_empty() {
                        "/".into()
                    } else {
                        rest.to_string()
                    },
                )
            } else {
                let dir = src
                    .parent()
                    .map(PathBuf::from)
                    .unwrap_or_else(|| "/".into());
                let name = src
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                (dir, format!("/{name}{rest}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths_are_split_as_docker_splits_them() {
        assert_eq!(split("web:/etc/hostname"), Some(("web", "/etc/hostname")));
        assert_eq!(split("./a:b"), None);
        assert_eq!(split("/abs/x:y"), None);
        assert_eq!(split("-"), None);
        assert_eq!(split("file"), None);
    }

    #[test]
    fn container_paths_are_cleaned_before_routing() {
        assert_eq!(ctr_path("/mnt/file/../bar"), "/mnt/bar");
        assert_eq!(ctr_path("mnt/./x/"), "/mnt/x/");
        assert_eq!(ctr_path("/data/."), "/data/.");
        assert_eq!(ctr_path("/data/sub/../."), "/data/.");
        assert_eq!(ctr_path("/"), "/");
        assert_eq!(ctr_path("/."), "/.");
        assert_eq!(ctr_path("."), "/.");
        assert_eq!(ctr_path("/a/.."), "/");
        assert_eq!(ctr_path("../../etc/passwd"), "/etc/passwd");
        let t = tempfile::tempdir().unwrap();
        let file = t.path().join("file");
        std::fs::write(&file, "f").unwrap();
        let mounts = vec![("/mnt/file".to_string(), file)];
        let rootfs = std::path::Path::new("/rootfs");
        assert_eq!(
            route(&mounts, rootfs, &ctr_path("/mnt/file/../bar")),
            (rootfs.to_path_buf(), "/mnt/bar".into())
        );
    }

    #[test]
    fn paths_under_mounts_go_to_the_mount_source() {
        let t = tempfile::tempdir().unwrap();
        let vol = t.path().join("vol");
        std::fs::create_dir(&vol).unwrap();
        let hostname = t.path().join("hostname");
        std::fs::write(&hostname, "h").unwrap();
        let mounts = vec![
            ("/etc/hostname".to_string(), hostname.clone()),
            ("/data".to_string(), vol.clone()),
        ];
        let rootfs = std::path::Path::new("/rootfs");
        assert_eq!(
            route(&mounts, rootfs, "/etc/hostname"),
            (t.path().to_path_buf(), "/hostname".into())
        );
        assert_eq!(
            route(&mounts, rootfs, "/data/x/y"),
            (vol.clone(), "/x/y".into())
        );
        assert_eq!(
            route(&mounts, rootfs, "/data/."),
            (vol.clone(), "/.".into())
        );
        assert_eq!(route(&mounts, rootfs, "/data"), (vol, "/".into()));
        assert_eq!(
            route(&mounts, rootfs, "/database"),
            (rootfs.to_path_buf(), "/database".into())
        );
        assert_eq!(
            route(&mounts, rootfs, "/etc/passwd"),
            (rootfs.to_path_buf(), "/etc/passwd".into())
        );
    }
}
