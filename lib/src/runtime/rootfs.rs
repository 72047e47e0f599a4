//! Mount plans: the steps that prepare den's mount namespace, as plain data, applied in one place.
//!
//! [`hide_cgroups`] builds the plan that keeps the host's cgroup hierarchies out of
//! libcontainer's sight. On cgroup v1 and hybrid hosts libcontainer's cgroup manager creates a
//! directory under every v1 controller it finds in `/proc/self/mountinfo`; as an unprivileged user
//! that fails (EACCES) and no container is created. A tmpfs over `/sys/fs/cgroup` is not enough
//! (mountinfo still lists the hidden mounts, and inherited mounts are locked in a user namespace).
//! So den builds a new root from recursive binds of every top-level directory except `/sys`,
//! rebuilds `/sys` from binds of `/sys/*` and `/sys/fs/*` with an empty tmpfs as
//! `/sys/fs/cgroup`, makes the new `/sys` read-only recursively, and pivots into it. Every path
//! den uses resolves as before; no cgroup mount is left. Cost: about 2 ms.
//!
//! [`apply`] carries a plan out through the [`Sys`] seam, so unit tests read the calls back.

use std::path::{Path, PathBuf};

use nix::mount::MsFlags;

use crate::sys::{Mount, Sys, SysError};

/// One step of a mount plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Mkdir(PathBuf),
    Mount(Mount),
    Symlink {
        target: PathBuf,
        link: PathBuf,
    },
    ReadonlyRecursive(PathBuf),
    PivotRoot {
        new_root: PathBuf,
        put_old: PathBuf,
    },
    Chdir(PathBuf),
    /// Detach a mount, ignoring failure (cleanup).
    UmountDetach(PathBuf),
    Rmdir(PathBuf),
}

/// What a directory holds, for mirroring it: subdirectories and symlinks (with targets).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pub dirs: Vec<String>,
    pub symlinks: Vec<(String, PathBuf)>,
}

/// Read a directory's listing from the real filesystem.
pub fn list(dir: &Path) -> Listing {
    let mut l = Listing::default();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            match e.file_type() {
                Ok(t) if t.is_symlink() => {
                    if let Ok(target) = std::fs::read_link(e.path()) {
                        l.symlinks.push((name, target));
                    }
                }
                Ok(t) if t.is_dir() => l.dirs.push(name),
                // Plain files at these levels (/.dockerenv, ...) are left out.
                _ => {}
            }
        }
    }
    l.dirs.sort();
    l.symlinks.sort();
    l
}

fn mirror(plan: &mut Vec<Step>, src: &Path, dst: &Path, listing: &Listing, skip: &str) {
    for (name, target) in &listing.symlinks {
        plan.push(Step::Symlink {
            target: target.clone(),
            link: dst.join(name),
        });
    }
    for name in &listing.dirs {
        if name == skip {
            continue;
        }
        plan.push(Step::Mkdir(dst.join(name)));
        plan.push(Step::Mount(Mount::rbind(src.join(name), dst.join(name))));
    }
}

/// The plan that pivots into a copy of `/` without cgroup mounts, built in `new_root` (an empty
/// directory on any filesystem). `ls` lists a directory of the current root.
pub fn hide_cgroups(new_root: &Path, ls: &dyn Fn(&Path) -> Listing) -> Vec<Step> {
    let nr = new_root;
    let tmpfs = |p: PathBuf| {
        Step::Mount(Mount::tmpfs(
            p,
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            "mode=755,size=64k",
        ))
    };
    let mut plan = vec![
        Step::Mount(Mount::make_rprivate("/")),
        Step::Mkdir(nr.into()),
        tmpfs(nr.into()),
    ];
    mirror(&mut plan, Path::new("/"), nr, &ls(Path::new("/")), "sys");
    plan.push(Step::Mkdir(nr.join("sys")));
    plan.push(tmpfs(nr.join("sys")));
    mirror(
        &mut plan,
        Path::new("/sys"),
        &nr.join("sys"),
        &ls(Path::new("/sys")),
        "fs",
    );
    plan.push(Step::Mkdir(nr.join("sys/fs")));
    mirror(
        &mut plan,
        Path::new("/sys/fs"),
        &nr.join("sys/fs"),
        &ls(Path::new("/sys/fs")),
        "cgroup",
    );
    plan.push(Step::Mkdir(nr.join("sys/fs/cgroup")));
    plan.push(tmpfs(nr.join("sys/fs/cgroup")));
    // A container's "rbind,ro" /sys would only make the top tmpfs read-only; make all of it so.
    plan.push(Step::ReadonlyRecursive(nr.join("sys")));
    plan.push(Step::Mkdir(nr.join(".oldroot")));
    plan.push(Step::PivotRoot {
        new_root: nr.into(),
        put_old: nr.join(".oldroot"),
    });
    plan.push(Step::Chdir("/".into()));
    plan.push(Step::UmountDetach("/.oldroot".into()));
    plan.push(Step::Rmdir("/.oldroot".into()));
    // The bind of the directory that held `new_root` carried a copy of it; drop that.
    plan.push(Step::UmountDetach(nr.into()));
    plan.push(Step::Rmdir(nr.into()));
    plan
}

/// Whether the plan is needed: some cgroup hierarchy is mounted (v1, hybrid or v2).
pub fn cgroups_visible(mountinfo: &str) -> bool {
    mountinfo.lines().any(|l| {
        l.split(" - ")
            .nth(1)
            .is_some_and(|rest| rest.starts_with("cgroup"))
    })
}

/// Carry out `plan`. Binds of individual top-level directories may fail (an unreadable
/// automount point); those are logged and skipped, everything else is fatal.
pub fn apply(sys: &dyn Sys, plan: &[Step]) -> Result<(), SysError> {
    for step in plan {
        match step {
            Step::Mkdir(p) => sys.mkdir(p)?,
            Step::Mount(m) if m.flags.contains(MsFlags::MS_BIND) => {
                if let Err(e) = sys.mount(m) {
                    tracing::debug!(error = %e, "skipping a directory of the host root");
                }
            }
            Step::Mount(m) => sys.mount(m)?,
            Step::Symlink { target, link } => sys.symlink(target, link)?,
            Step::ReadonlyRecursive(p) => sys.readonly_recursive(p)?,
            Step::PivotRoot { new_root, put_old } => sys.pivot_root(new_root, put_old)?,
            Step::Chdir(p) => sys.chdir(p)?,
            Step::UmountDetach(p) => {
                let _ = sys.umount(p, true);
            }
            Step::Rmdir(p) => {
                let _ = sys.rmdir(p);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::{Call, RecordingSys};

    fn fake_ls(p: &Path) -> Listing {
        match p.to_str().unwrap() {
            "/" => Listing {
                dirs: vec!["etc".into(), "home".into(), "sys".into(), "tmp".into()],
                symlinks: vec![("bin".into(), "usr/bin".into())],
            },
            "/sys" => Listing {
                dirs: vec!["fs".into(), "kernel".into()],
                symlinks: vec![],
            },
            "/sys/fs" => Listing {
                dirs: vec!["cgroup".into(), "fuse".into()],
                symlinks: vec![],
            },
            _ => Listing::default(),
        }
    }

    #[test]
    fn the_plan_binds_everything_but_cgroups_and_pivots() {
        let plan = hide_cgroups(Path::new("/run/den/nr"), &fake_ls);
        let binds: Vec<(PathBuf, PathBuf)> = plan
            .iter()
            .filter_map(|s| match s {
                Step::Mount(m) if m.flags.contains(MsFlags::MS_BIND) => {
                    Some((m.source.clone().unwrap(), m.target.clone()))
                }
                _ => None,
            })
            .collect();
        let srcs: Vec<&str> = binds.iter().map(|(s, _)| s.to_str().unwrap()).collect();
        assert_eq!(
            srcs,
            ["/etc", "/home", "/tmp", "/sys/kernel", "/sys/fuse"]
                .map(|s| s.replace("/sys/fuse", "/sys/fs/fuse"))
        );
        assert!(!srcs.iter().any(|s| s.contains("cgroup")));
        assert!(plan.contains(&Step::Symlink {
            target: "usr/bin".into(),
            link: "/run/den/nr/bin".into()
        }));
        assert!(plan.contains(&Step::ReadonlyRecursive("/run/den/nr/sys".into())));
        let pivot = plan
            .iter()
            .position(|s| matches!(s, Step::PivotRoot { .. }))
            .unwrap();
        let ro = plan
            .iter()
            .position(|s| matches!(s, Step::ReadonlyRecursive(_)))
            .unwrap();
        assert!(ro < pivot, "read-only before pivot");
        assert_eq!(plan[0], Step::Mount(Mount::make_rprivate("/")));
    }

    #[test]
    fn apply_goes_through_the_seam_and_tolerates_failed_binds() {
        let sys = RecordingSys::new();
        let plan = hide_cgroups(Path::new("/nr"), &fake_ls);
        sys.fail_on(
            Call::Mount(Mount::rbind("/home", "/nr/home")),
            nix::errno::Errno::EACCES,
        );
        apply(&sys, &plan).unwrap();
        let calls = sys.calls();
        assert!(calls.contains(&Call::PivotRoot {
            new_root: "/nr".into(),
            put_old: "/nr/.oldroot".into()
        }));
        assert!(calls.contains(&Call::Umount {
            target: "/.oldroot".into(),
            detach: true
        }));

        let sys = RecordingSys::new();
        sys.fail_on(
            Call::PivotRoot {
                new_root: "/nr".into(),
                put_old: "/nr/.oldroot".into(),
            },
            nix::errno::Errno::EINVAL,
        );
        assert!(apply(&sys, &plan).is_err());
    }

    #[test]
    fn detects_cgroup_mounts_in_mountinfo() {
        let v1 = "35 24 0:31 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory\n";
        let v2 = "30 24 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let none = "22 1 8:1 / / rw - ext4 /dev/vda rw\n";
        assert!(cgroups_visible(v1));
        assert!(cgroups_visible(v2));
        assert!(!cgroups_visible(none));
    }
}
