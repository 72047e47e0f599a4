//! Resource limits (`--memory`, `--memory-swap`, `--cpus`, `--cpu-shares`, `--pids-limit`,
//! `--cpuset-cpus`) through cgroup v2, where the user has a delegated subtree.
//!
//! # Who applies them: den, not libcontainer
//!
//! den hides the host's cgroups from libcontainer (see `runtime::rootfs`): on the hybrid and
//! v1 hosts den must run on, libcontainer's cgroup manager fails as soon as it sees a v1
//! controller it cannot write, and rootless libcontainer on v2 wants systemd's D-Bus or a
//! cgroup path it was given. den already finds the delegated subtree for `pause`'s freezer
//! (this seam's [`super::delegated`]); the limits are six files written into a group of the
//! container's own, so den writes them itself, through [`Sys`], where the unit tests read the
//! calls back against a fake v2 host. crun and runc do the same writes (`memory.max`,
//! `memory.swap.max`, `cpu.max`, `cpu.weight`, `pids.max`, `cpuset.cpus`).
//!
//! # Where the container's group goes
//!
//! The subtree ([`subtree`]) is, first found first: the directory in `DEN_CGROUP`, config.toml's
//! `[cgroup] parent`, else the highest group above den's own process that the user may write
//! (`cgroup.procs` and `cgroup.subtree_control` too): systemd's `user@UID.service` for a
//! process in the user's services, a batch scheduler's job cgroup (Slurm's cgroup/v2 plugin), a
//! site's delegated directory whose leaf holds the login shell. A process can only be moved
//! between groups whose common parent the user may write, so den itself must run inside the
//! subtree; else the flags are refused with how to get there.
//!
//! The container gets `SUBTREE/den-ID`. cgroup v2 lets a group hand controllers to its
//! children (`cgroup.subtree_control`) only while it holds no process itself ("no internal
//! processes"); when the subtree still holds some (den's own shell, in a job cgroup), they move
//! into a leaf `SUBTREE/den-init` first, as crun and podman do. The limits are written before
//! the container's init runs its first instruction: the init, parked by the engine before exec,
//! is moved into the group, and every process it forks is born there (`exec` moves its own
//! process in before it starts one, [`enter`]). The group is reached
//! through a descriptor held open ([`Group`]), since den's mount namespace hides
//! `/sys/fs/cgroup` from the runtime; it is removed when the container exits, and by `rm` (or
//! a store's crash clean-up) for a container whose monitor died.
//!
//! # docker's numbers
//!
//! `--memory-swap` is memory plus swap (`-1`: unlimited swap); unset, it is twice `--memory`,
//! as docker's daemon sets it, so the group's `memory.swap.max` is their difference. `--cpus`
//! is `cpu.max`'s quota over a 100 ms period; `--cpu-shares` becomes `cpu.weight` by runc's and
//! crun's conversion (`1 + (shares - 2) * 9999 / 262142`); `--pids-limit` 0 or below is
//! unlimited.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{CgroupError, Refusal, cgroup_of, unified_mount};
use crate::sys::Sys;

/// `cpu.max`'s period, as docker's `--cpus` uses: 100 ms.
pub const CPU_PERIOD: u64 = 100_000;
/// docker's smallest `--memory`: 6 MiB.
pub const MIN_MEMORY: u64 = 6 * 1024 * 1024;

/// A container's resource limits, checked (docker's `HostConfig` fields).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// `--memory`, bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    /// `--memory-swap`: memory plus swap, bytes; -1 unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_swap: Option<i64>,
    /// `--cpus`, in billionths of a CPU (docker's `NanoCpus`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nano_cpus: Option<u64>,
    /// `--cpu-shares` (relative weight, docker's 1024 default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_shares: Option<u64>,
    /// `--pids-limit`; 0 or below: unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
    /// `--cpuset-cpus`: the CPUs allowed (`0-3,5`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpuset_cpus: Option<String>,
    /// The delegated subtree the container's group goes in (found when it was created).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<PathBuf>,
}

/// The flags as given, before they are checked ([`Limits::parse`]).
#[derive(Debug, Clone, Default)]
pub struct LimitFlags<'a> {
    pub memory: Option<&'a str>,
    pub memory_swap: Option<&'a str>,
    pub cpus: Option<&'a str>,
    pub cpu_shares: Option<i64>,
    pub pids_limit: Option<i64>,
    pub cpuset_cpus: Option<&'a str>,
}

fn bad(flag: &'static str, value: &str, why: impl Into<String>) -> CgroupError {
    CgroupError::BadLimit {
        flag,
        value: value.into(),
        why: why.into(),
    }
}

/// docker's sizes (`RAMInBytes`): a number with an optional `b`, `k`, `m`, `g`, `t` or `p`
/// (powers of 1024, an `i` and a `b` after it allowed: `512m`, `2g`, `1.5GiB`).
pub fn parse_bytes(flag: &'static str, s: &str) -> Result<u64, CgroupError> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let t = t.strip_suffix('i').unwrap_or(t);
    let (num, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c),
        _ => (t, 'b'),
    };
    let power = "bkmgtp"
        .find(unit)
        .ok_or_else(|| bad(flag, s, "the unit is none of b, k, m, g, t, p"))?;
    let n: f64 = num
        .trim()
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n >= 0.0)
        .ok_or_else(|| bad(flag, s, "not a size (a number and b, k, m, g: 512m, 2g)"))?;
    let bytes = n * 1024f64.powi(power as i32);
    if bytes >= u64::MAX as f64 {
        return Err(bad(flag, s, "too large"));
    }
    Ok(bytes as u64)
}

/// What a flag takes, for the hint of a value that does not parse.
pub fn flag_usage(flag: &str) -> &'static str {
    match flag {
        "memory" => "--memory takes a size of at least 6m: a number and b, k, m or g (512m, 2g)",
        "memory-swap" => {
            "--memory-swap is memory plus swap (at least --memory, e.g. 2g), or -1 for unlimited swap"
        }
        "cpus" => "--cpus takes a number of CPUs, e.g. 1.5 (at most the machine's)",
        "cpu-shares" => "--cpu-shares takes a relative weight, 1024 by default (e.g. 512)",
        _ => "--cpuset-cpus takes CPU numbers and ranges, e.g. 0-3,5",
    }
}

/// `--cpuset-cpus`'s list: CPU numbers and ranges, comma-separated (`0-3,5`).
fn check_cpuset(s: &str) -> Result<(), CgroupError> {
    let why = "not a list of CPUs (0-3,5)";
    for part in s.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b) = (a.parse::<u32>(), b.parse::<u32>());
        match (a, b) {
            (Ok(a), Ok(b)) if a <= b => {}
            _ => return Err(bad("cpuset-cpus", s, why)),
        }
    }
    Ok(())
}

impl Limits {
    /// The flags checked as docker checks them; `ncpu` is the number of CPUs (`--cpus` may not
    /// ask for more).
    pub fn parse(f: &LimitFlags<'_>, ncpu: usize) -> Result<Limits, CgroupError> {
        let memory = f
            .memory
            .map(|m| parse_bytes("memory", m))
            .transpose()?
            .filter(|m| *m > 0);
        if let (Some(m), Some(s)) = (memory, f.memory)
            && m < MIN_MEMORY
        {
            return Err(bad("memory", s, "the smallest memory limit is 6MB"));
        }
        let memory_swap = match (f.memory_swap, memory) {
            (None, m) => m.map(|m| (m * 2) as i64),
            (Some("-1"), _) => Some(-1),
            (Some(s), None) => return Err(bad("memory-swap", s, "it needs --memory too")),
            (Some(s), Some(m)) => {
                let total = parse_bytes("memory-swap", s)?;
                if total < m {
                    return Err(bad(
                        "memory-swap",
                        s,
                        "it is memory plus swap: at least --memory",
                    ));
                }
                Some(total as i64)
            }
        };
        let nano_cpus = f
            .cpus
            .map(|c| parse_cpus(c, ncpu))
            .transpose()?
            .filter(|n| *n > 0);
        let cpu_shares = match f.cpu_shares {
            Some(s) if s < 0 => {
                return Err(bad("cpu-shares", &s.to_string(), "a weight of 0 or more"));
            }
            Some(0) | None => None,
            Some(s) => Some(s as u64),
        };
        if let Some(c) = f.cpuset_cpus {
            check_cpuset(c)?;
        }
        Ok(Limits {
            memory,
            memory_swap,
            nano_cpus,
            cpu_shares,
            pids_limit: f.pids_limit.filter(|p| *p != 0),
            cpuset_cpus: f.cpuset_cpus.map(str::to_string),
            parent: None,
        })
    }

    /// Whether no limit is asked for (the container needs no cgroup).
    pub fn is_empty(&self) -> bool {
        self.flags().is_empty()
    }

    /// The flags given, docker's spelling (for the refusal line).
    pub fn flags(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        let mut add = |on: bool, f| on.then(|| v.push(f));
        add(self.memory.is_some(), "--memory");
        add(
            self.memory_swap.is_some() && self.memory.is_none(),
            "--memory-swap",
        );
        add(self.nano_cpus.is_some(), "--cpus");
        add(self.cpu_shares.is_some(), "--cpu-shares");
        add(self.pids_limit.is_some(), "--pids-limit");
        add(self.cpuset_cpus.is_some(), "--cpuset-cpus");
        v
    }

    /// The controllers the limits need, in the kernel's names.
    pub fn controllers(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.cpuset_cpus.is_some() {
            v.push("cpuset");
        }
        if self.nano_cpus.is_some() || self.cpu_shares.is_some() {
            v.push("cpu");
        }
        if self.memory.is_some() {
            v.push("memory");
        }
        if self.pids_limit.is_some() {
            v.push("pids");
        }
        v
    }

    /// The group's files and what each is given.
    pub fn files(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        if let Some(c) = &self.cpuset_cpus {
            v.push(("cpuset.cpus", c.clone()));
        }
        if let Some(n) = self.nano_cpus {
            v.push((
                "cpu.max",
                format!("{} {CPU_PERIOD}", n * CPU_PERIOD / 1_000_000_000),
            ));
        }
        if let Some(s) = self.cpu_shares {
            v.push(("cpu.weight", cpu_weight(s).to_string()));
        }
        if let Some(m) = self.memory {
            v.push(("memory.max", m.to_string()));
            match self.memory_swap {
                Some(-1) => v.push(("memory.swap.max", "max".into())),
                Some(total) => v.push(("memory.swap.max", (total as u64 - m).to_string())),
                None => {}
            }
        }
        if let Some(p) = self.pids_limit {
            v.push(("pids.max", if p > 0 { p.to_string() } else { "max".into() }));
        }
        v
    }
}

/// `--cpus`: a decimal number of CPUs, 0.01 up to `ncpu`, as billionths.
fn parse_cpus(s: &str, ncpu: usize) -> Result<u64, CgroupError> {
    let n: f64 = s
        .trim()
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n >= 0.0)
        .ok_or_else(|| bad("cpus", s, "not a number of CPUs (1.5)"))?;
    if n > 0.0 && (n < 0.01 || n > ncpu as f64) {
        return Err(bad(
            "cpus",
            s,
            format!("the range is 0.01 to {ncpu}.00, as there are only {ncpu} CPUs"),
        ));
    }
    Ok((n * 1e9).round() as u64)
}

/// `--cpu-shares` (cgroup v1's 2..262144) as cgroup v2's `cpu.weight` (1..10000), the way runc
/// converts it: the default 1024 becomes 39.
pub fn cpu_weight(shares: u64) -> u64 {
    let s = shares.clamp(2, 262_144);
    1 + ((s - 2) * 9999) / 262_142
}

/// What the caller knows of where a user's subtree is: `DEN_CGROUP`, config.toml's
/// `[cgroup] parent`, and the user's uid (for systemd's `user@UID.service`).
#[derive(Debug, Clone, Default)]
pub struct Where {
    pub env: Option<PathBuf>,
    pub configured: Option<PathBuf>,
    pub uid: u32,
}

/// The delegated cgroup v2 subtree den's containers get their groups in, and the controllers it
/// can give them (its `cgroup.controllers`); else why there is none. `den info` shows this.
pub fn subtree(sys: &dyn Sys, w: &Where) -> Result<(PathBuf, Vec<String>), Refusal> {
    let refuse = |s: String| Err(Refusal(s));
    let Some(mount) = unified_mount(sys) else {
        return refuse("no cgroup v2 hierarchy is mounted (cgroup v1 only)".into());
    };
    let own = cgroup_of(sys, "self").map(|rel| mount.join(rel));
    if w.env.is_none() && w.configured.is_none() && own.as_deref() == Some(mount.as_path()) {
        return refuse(format!(
            "den runs in the root group of {}, which is nobody's delegated subtree",
            mount.display()
        ));
    }
    let named = w.env.clone().or(w.configured.clone());
    let base = match (&named, &own) {
        (Some(dir), _) => dir.clone(),
        (None, Some(own)) => match highest_writable(sys, &mount, own) {
            Some(dir) => dir,
            None => {
                let slice =
                    mount.join(format!("user.slice/user-{0}.slice/user@{0}.service", w.uid));
                if !delegated_dir(sys, &slice) {
                    return refuse(format!(
                        "den's cgroup {} is not delegated to this user, nor is any group above it",
                        own.display()
                    ));
                }
                slice
            }
        },
        (None, None) => return refuse("this process is in no cgroup v2 group".into()),
    };
    if !base.starts_with(&mount) || base == mount {
        return refuse(format!(
            "{} is not a group of the cgroup v2 hierarchy at {}",
            base.display(),
            mount.display()
        ));
    }
    if !delegated_dir(sys, &base) {
        return refuse(format!(
            "the cgroup v2 group {} is not delegated to this user (it, its cgroup.procs and \
             cgroup.subtree_control must be writable)",
            base.display()
        ));
    }
    if !own.as_ref().is_some_and(|o| o.starts_with(&base)) {
        return refuse(format!(
            "den runs outside the delegated group {} (in {}), and a process can only be moved \
             within it",
            base.display(),
            own.map_or_else(|| "no group".into(), |o| o.display().to_string())
        ));
    }
    let controllers = sys
        .read_text(&base.join("cgroup.controllers"))
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    Ok((base, controllers))
}

/// Whether `dir` is a group the user may manage: it, its `cgroup.procs` and its
/// `cgroup.subtree_control` writable.
fn delegated_dir(sys: &dyn Sys, dir: &Path) -> bool {
    sys.writable(dir)
        && sys.writable(&dir.join("cgroup.procs"))
        && sys.writable(&dir.join("cgroup.subtree_control"))
}

/// The highest group from `own` up (below the hierarchy's root) that is delegated.
fn highest_writable(sys: &dyn Sys, mount: &Path, own: &Path) -> Option<PathBuf> {
    own.ancestors()
        .take_while(|d| d.starts_with(mount) && *d != mount)
        .take_while(|d| delegated_dir(sys, d))
        .last()
        .map(Path::to_path_buf)
}

/// Check that `limits` can be applied here: the subtree, with every controller they need.
/// Returns the limits with the subtree as their parent, or the refusal naming the flags.
pub fn resolve(sys: &dyn Sys, w: &Where, limits: &Limits) -> Result<Limits, CgroupError> {
    if limits.is_empty() {
        return Ok(limits.clone());
    }
    let unavailable = |why: String| CgroupError::Unavailable {
        flags: limits.flags().join(", "),
        why,
    };
    let (base, have) = subtree(sys, w).map_err(|r| unavailable(r.0))?;
    let missing: Vec<&str> = limits
        .controllers()
        .into_iter()
        .filter(|c| !have.iter().any(|h| h == c))
        .collect();
    if !missing.is_empty() {
        return Err(unavailable(format!(
            "{} does not get the {} controller{} (its cgroup.controllers: {})",
            base.display(),
            missing.join(", "),
            if missing.len() > 1 { "s" } else { "" },
            if have.is_empty() {
                "none".into()
            } else {
                have.join(" ")
            }
        )));
    }
    Ok(Limits {
        parent: Some(base),
        ..limits.clone()
    })
}

/// A container's own group with its limits, reached through a descriptor of its parent held
/// open (the parent's path may be hidden from den's mount namespace later).
#[derive(Debug)]
pub struct Group {
    /// The group's path on the host (recorded for `stats`, `top`, `pause` and `rm`).
    pub host: PathBuf,
    parent: std::os::fd::OwnedFd,
    name: String,
}

impl Group {
    /// The group's directory through the held descriptor.
    pub fn via_fd(&self) -> PathBuf {
        use std::os::fd::AsRawFd;
        PathBuf::from(format!("/proc/self/fd/{}", self.parent.as_raw_fd())).join(&self.name)
    }

    /// Move `pid` (the container's init, parked before exec; or a process `exec` adds) in.
    pub fn add(&self, sys: &dyn Sys, pid: i32) -> Result<(), CgroupError> {
        move_pid(sys, &self.via_fd(), pid)
    }

    /// Remove the group once the container's processes are gone (the kernel may take a moment
    /// to let go of the last ones after the init is reaped).
    pub fn remove(&self, sys: &dyn Sys) {
        for _ in 0..100 {
            if sys.rmdir(&self.via_fd()).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        tracing::debug!(group = %self.host.display(), "cgroup not removed");
    }
}

/// Move this process into the group `dir` (`exec`: what it starts is born there).
pub fn enter(sys: &dyn Sys, dir: &Path) -> Result<(), CgroupError> {
    move_pid(sys, dir, 0)
}

fn move_pid(sys: &dyn Sys, dir: &Path, pid: i32) -> Result<(), CgroupError> {
    sys.write_text(&dir.join("cgroup.procs"), &pid.to_string())
        .map_err(|source| CgroupError::Move {
            pid,
            dir: dir.to_path_buf(),
            source,
        })
}

/// Make the container `id`'s group under `limits.parent` and give it the limits: the
/// controllers enabled in the parent first (its processes moved into `den-init` when the
/// kernel says it holds some), then the files. Nothing to do for empty limits.
pub fn setup(sys: &dyn Sys, limits: &Limits, id: &str) -> Result<Option<Group>, CgroupError> {
    let Some(parent) = limits.parent.as_deref().filter(|_| !limits.is_empty()) else {
        return Ok(None);
    };
    enable(sys, parent, &limits.controllers())?;
    let name = format!("den-{id}");
    let host = parent.join(&name);
    sys.mkdir(&host).map_err(|source| CgroupError::Make {
        dir: host.clone(),
        source,
    })?;
    let group = Group {
        parent: sys.open_dir(parent).map_err(|source| CgroupError::Make {
            dir: parent.to_path_buf(),
            source,
        })?,
        host,
        name,
    };
    for (file, value) in limits.files() {
        let path = group.host.join(file);
        if file == "memory.swap.max" && sys.read_text(&path).is_err() {
            // A kernel without swap accounting has no such file: swap is then not limited.
            continue;
        }
        if let Err(source) = sys.write_text(&path, &value) {
            group.remove(sys);
            return Err(CgroupError::Limit {
                path,
                value,
                source,
            });
        }
    }
    Ok(Some(group))
}

/// Enable `controllers` in `parent`'s `cgroup.subtree_control` where they are not yet. The
/// kernel refuses (EBUSY) while `parent` holds processes; they move into `den-init`, a leaf,
/// and the write is tried again.
fn enable(sys: &dyn Sys, parent: &Path, controllers: &[&str]) -> Result<(), CgroupError> {
    let control = parent.join("cgroup.subtree_control");
    let on = sys.read_text(&control).unwrap_or_default();
    let want: Vec<String> = controllers
        .iter()
        .filter(|c| !on.split_whitespace().any(|o| o == **c))
        .map(|c| format!("+{c}"))
        .collect();
    if want.is_empty() {
        return Ok(());
    }
    let line = want.join(" ");
    let err = |source| CgroupError::Limit {
        path: control.clone(),
        value: line.clone(),
        source,
    };
    match sys.write_text(&control, &line) {
        Err(e) if e.errno() == Some(libc::EBUSY) => {
            let leaf = parent.join("den-init");
            sys.mkdir(&leaf).map_err(|source| CgroupError::Make {
                dir: leaf.clone(),
                source,
            })?;
            let procs = sys
                .read_text(&parent.join("cgroup.procs"))
                .unwrap_or_default();
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                match move_pid(sys, &leaf, pid) {
                    Err(CgroupError::Move { source, .. })
                        if source.errno() == Some(libc::ESRCH) => {}
                    other => other?,
                }
            }
            sys.write_text(&control, &line).map_err(err)
        }
        other => other.map_err(err),
    }
}

/// What a container's group says of its use (`stats`, `top`): each figure where its
/// controller is on in the group, else None (the caller reads /proc instead).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// `memory.current`, bytes.
    pub memory: Option<u64>,
    /// `memory.max`, bytes (None: `max`, or no memory controller).
    pub memory_max: Option<u64>,
    /// `cpu.stat`'s `usage_usec` (there without the cpu controller too).
    pub cpu_usec: Option<u64>,
    /// `pids.current`.
    pub pids: Option<u64>,
}

/// Read the use of the group `dir`.
pub fn usage(sys: &dyn Sys, dir: &Path) -> Usage {
    let number = |file: &str| {
        sys.read_text(&dir.join(file))
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
    };
    let cpu_usec = sys.read_text(&dir.join("cpu.stat")).ok().and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("usage_usec "))
            .and_then(|v| v.trim().parse().ok())
    });
    Usage {
        memory: number("memory.current"),
        memory_max: number("memory.max"),
        cpu_usec,
        pids: number("pids.current"),
    }
}

/// The processes in the group `dir` (`cgroup.procs`), for `top`.
pub fn procs(sys: &dyn Sys, dir: &Path) -> Option<Vec<i32>> {
    let text = sys.read_text(&dir.join("cgroup.procs")).ok()?;
    Some(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Diagnose;
    use crate::sys::{Call, RecordingSys};

    const MOUNTINFO: &str =
        "26 1 0:23 / /sys/fs/cgroup rw,nsdelegate - cgroup2 cgroup2 rw,nsdelegate\n";
    const SITE: &str = "/sys/fs/cgroup/den-users/u1000";

    /// A cgroup v2 host with memory, pids, cpu and cpuset, where root delegated `SITE` (den
    /// runs in its leaf `session`); `controllers` is what the site group gets.
    fn v2_host(controllers: &str) -> RecordingSys {
        let sys = RecordingSys::new();
        sys.set_file("/proc/self/mountinfo", MOUNTINFO);
        sys.set_file("/proc/self/cgroup", "0::/den-users/u1000/session\n");
        for d in [SITE.to_string(), format!("{SITE}/session")] {
            sys.allow_write(&d);
        }
        sys.set_file(format!("{SITE}/cgroup.controllers"), controllers);
        sys.set_file(format!("{SITE}/cgroup.subtree_control"), "");
        sys
    }

    fn flags(memory: &str) -> LimitFlags<'_> {
        LimitFlags {
            memory: Some(memory),
            ..Default::default()
        }
    }

    #[test]
    fn sizes_and_numbers_follow_docker() {
        assert_eq!(parse_bytes("memory", "2g").unwrap(), 2 << 30);
        assert_eq!(parse_bytes("memory", "512M").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("memory", "1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_bytes("memory", "100000000").unwrap(), 100_000_000);
        assert!(parse_bytes("memory", "2x").is_err());
        assert!(parse_bytes("memory", "-2m").is_err());
        let l = Limits::parse(&flags("64m"), 2).unwrap();
        assert_eq!((l.memory, l.memory_swap), (Some(64 << 20), Some(128 << 20)));
        let err = Limits::parse(&flags("4m"), 2).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid --memory 4m: the smallest memory limit is 6MB"
        );
        assert!(err.hint().is_some());
        let swap = |s| LimitFlags {
            memory_swap: Some(s),
            ..flags("64m")
        };
        assert_eq!(Limits::parse(&swap("-1"), 2).unwrap().memory_swap, Some(-1));
        assert!(Limits::parse(&swap("32m"), 2).is_err());
        let alone = LimitFlags {
            memory_swap: Some("1g"),
            ..Default::default()
        };
        assert!(
            Limits::parse(&alone, 2)
                .unwrap_err()
                .to_string()
                .contains("needs --memory")
        );
        let cpus = |c| LimitFlags {
            cpus: Some(c),
            ..Default::default()
        };
        assert_eq!(
            Limits::parse(&cpus("1.5"), 2).unwrap().nano_cpus,
            Some(1_500_000_000)
        );
        let err = Limits::parse(&cpus("3"), 2).unwrap_err().to_string();
        assert!(err.contains("0.01 to 2.00"), "{err}");
        assert!(Limits::parse(&cpus("x"), 2).is_err());
        let set = |c| LimitFlags {
            cpuset_cpus: Some(c),
            ..Default::default()
        };
        assert!(Limits::parse(&set("0-3,5"), 2).is_ok());
        assert!(Limits::parse(&set("3-1"), 2).is_err());
        assert!(Limits::parse(&set("a"), 2).is_err());
        assert!(Limits::parse(&LimitFlags::default(), 2).unwrap().is_empty());
        let pids = LimitFlags {
            pids_limit: Some(-1),
            ..Default::default()
        };
        assert_eq!(
            Limits::parse(&pids, 2).unwrap().files(),
            [("pids.max", "max".to_string())]
        );
    }

    #[test]
    fn each_flag_has_its_file_and_value() {
        let l = Limits::parse(
            &LimitFlags {
                memory: Some("100m"),
                memory_swap: Some("150m"),
                cpus: Some("1.5"),
                cpu_shares: Some(512),
                pids_limit: Some(100),
                cpuset_cpus: Some("0-1"),
            },
            2,
        )
        .unwrap();
        let files: Vec<(&str, String)> = l.files();
        let want = [
            ("cpuset.cpus", "0-1"),
            ("cpu.max", "150000 100000"),
            ("cpu.weight", "20"),
            ("memory.max", "104857600"),
            ("memory.swap.max", "52428800"),
            ("pids.max", "100"),
        ];
        assert_eq!(files, want.map(|(f, v)| (f, v.to_string())));
        assert_eq!(l.controllers(), ["cpuset", "cpu", "memory", "pids"]);
        assert_eq!(cpu_weight(1024), 39);
        assert_eq!(cpu_weight(2), 1);
        assert_eq!(cpu_weight(262_144), 10_000);
    }

    #[test]
    fn the_subtree_is_found_from_the_environment_the_config_or_den_s_own_group() {
        let sys = v2_host("cpuset cpu io memory pids");
        let w = Where::default();
        let (base, have) = subtree(&sys, &w).unwrap();
        assert_eq!(base, Path::new(SITE));
        assert_eq!(have, ["cpuset", "cpu", "io", "memory", "pids"]);
        let named = Where {
            env: Some(format!("{SITE}/session").into()),
            configured: Some("/sys/fs/cgroup/elsewhere".into()),
            uid: 1000,
        };
        assert_eq!(
            subtree(&sys, &named).unwrap().0,
            Path::new(SITE).join("session")
        );
        let outside = Where {
            configured: Some("/sys/fs/cgroup/elsewhere".into()),
            ..Default::default()
        };
        let why = subtree(&sys, &outside).unwrap_err().0;
        assert!(why.contains("not delegated"), "{why}");

        // systemd: den in the user's session scope (root's), the user's service delegated.
        let sd = RecordingSys::new();
        sd.set_file("/proc/self/mountinfo", MOUNTINFO);
        sd.set_file(
            "/proc/self/cgroup",
            "0::/user.slice/user-1000.slice/session-3.scope\n",
        );
        sd.allow_write("/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service");
        let why = subtree(
            &sd,
            &Where {
                uid: 1000,
                ..Default::default()
            },
        )
        .unwrap_err()
        .0;
        assert!(
            why.contains("den runs outside the delegated group"),
            "{why}"
        );
        sd.set_file(
            "/proc/self/cgroup",
            "0::/user.slice/user-1000.slice/user@1000.service/app.slice/den.scope\n",
        );
        sd.allow_write("/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice");
        sd.allow_write(
            "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice/den.scope",
        );
        assert_eq!(
            subtree(&sd, &Where::default()).unwrap().0,
            Path::new("/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service")
        );
    }

    #[test]
    fn limits_are_refused_with_the_reason_on_v1_hybrid_and_controllerless_hosts() {
        let limits = Limits::parse(&flags("64m"), 2).unwrap();
        let v1 = RecordingSys::new();
        v1.set_file(
            "/proc/self/mountinfo",
            "31 25 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
        );
        let err = resolve(&v1, &Where::default(), &limits).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--memory needs a cgroup v2 subtree delegated to you: no cgroup v2 hierarchy is \
             mounted (cgroup v1 only)"
        );
        assert!(err.hint().unwrap().contains("Delegate=yes"));

        // This machine's kind: hybrid, den in the unified hierarchy's root group.
        let hybrid = RecordingSys::new();
        hybrid.set_file(
            "/proc/self/mountinfo",
            "30 25 0:26 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
        );
        hybrid.set_file("/proc/self/cgroup", "4:memory:/\n0::/\n");
        let why = resolve(&hybrid, &Where::default(), &limits)
            .unwrap_err()
            .to_string();
        assert!(why.ends_with("den runs in the root group of /sys/fs/cgroup/unified, which is nobody's delegated subtree"), "{why}");
        hybrid.set_file("/proc/self/cgroup", "0::/user/1000\n");
        let why = resolve(&hybrid, &Where::default(), &limits)
            .unwrap_err()
            .to_string();
        assert!(
            why.contains("/sys/fs/cgroup/unified/user/1000 is not delegated"),
            "{why}"
        );

        // Delegated on the hybrid's unified hierarchy, but every controller is v1's.
        hybrid.set_file("/proc/self/cgroup", "0::/den/u/session\n");
        hybrid.allow_write("/sys/fs/cgroup/unified/den/u");
        hybrid.allow_write("/sys/fs/cgroup/unified/den/u/session");
        hybrid.set_file("/sys/fs/cgroup/unified/den/u/cgroup.controllers", "\n");
        let pids = Limits {
            pids_limit: Some(10),
            ..limits.clone()
        };
        let why = resolve(&hybrid, &Where::default(), &pids)
            .unwrap_err()
            .to_string();
        assert_eq!(
            why,
            "--memory, --pids-limit need a cgroup v2 subtree delegated to you: \
             /sys/fs/cgroup/unified/den/u does not get the memory, pids controllers (its \
             cgroup.controllers: none)"
        );
        // Nothing asked: nothing checked.
        assert_eq!(
            resolve(&v1, &Where::default(), &Limits::default()).unwrap(),
            Limits::default()
        );
    }

    #[test]
    fn the_group_is_made_with_its_controllers_and_limits_and_removed() {
        let sys = v2_host("cpu memory pids");
        let limits = Limits::parse(
            &LimitFlags {
                pids_limit: Some(50),
                ..flags("64m")
            },
            2,
        )
        .unwrap();
        let limits = resolve(&sys, &Where::default(), &limits).unwrap();
        assert_eq!(limits.parent.as_deref(), Some(Path::new(SITE)));
        let own = Path::new(SITE).join("den-c1");
        sys.set_file(own.join("memory.swap.max"), "max\n");
        let group = setup(&sys, &limits, "c1").unwrap().unwrap();
        assert_eq!(group.host, own);
        sys.allow_write(group.via_fd());
        group.add(&sys, 4242).unwrap();
        // exec: den's own process moves in (pid 0 is the writer), by the host's path.
        enter(&sys, &own).unwrap();
        group.remove(&sys);
        let write = |p: &Path, d: &str| Call::Write {
            path: p.into(),
            data: d.into(),
        };
        assert_eq!(
            sys.calls(),
            vec![
                write(
                    &Path::new(SITE).join("cgroup.subtree_control"),
                    "+memory +pids"
                ),
                Call::Mkdir(own.clone()),
                Call::OpenDir(SITE.into()),
                write(&own.join("memory.max"), "67108864"),
                write(&own.join("memory.swap.max"), "67108864"),
                write(&own.join("pids.max"), "50"),
                write(&group.via_fd().join("cgroup.procs"), "4242"),
                write(&own.join("cgroup.procs"), "0"),
                Call::Rmdir(group.via_fd()),
            ]
        );
        assert!(setup(&sys, &Limits::default(), "c2").unwrap().is_none());
    }

    #[test]
    fn processes_in_the_subtree_move_to_a_leaf_so_controllers_can_be_enabled() {
        let sys = v2_host("memory pids");
        let control = Path::new(SITE).join("cgroup.subtree_control");
        sys.set_file(Path::new(SITE).join("cgroup.procs"), "77\n78\n");
        sys.fail_on(
            Call::Write {
                path: control.clone(),
                data: "+pids".into(),
            },
            nix::errno::Errno::EBUSY,
        );
        let limits = Limits {
            pids_limit: Some(5),
            parent: Some(SITE.into()),
            ..Default::default()
        };
        let group = setup(&sys, &limits, "c3").unwrap().unwrap();
        let leaf = Path::new(SITE).join("den-init/cgroup.procs");
        let calls = sys.calls();
        let moved: Vec<&Call> = calls
            .iter()
            .filter(|c| matches!(c, Call::Write { path, .. } if *path == leaf))
            .collect();
        assert_eq!(moved.len(), 2, "{calls:?}");
        assert_eq!(sys.file(&control).as_deref(), Some("+pids"));
        assert_eq!(sys.file(&group.host.join("pids.max")).as_deref(), Some("5"));
    }

    #[test]
    fn use_is_read_from_the_group() {
        let sys = RecordingSys::new();
        let g = Path::new(SITE).join("den-c5");
        sys.set_file(g.join("memory.current"), "1048576\n");
        sys.set_file(g.join("memory.max"), "67108864\n");
        sys.set_file(g.join("cpu.stat"), "usage_usec 2500\nuser_usec 2000\n");
        sys.set_file(g.join("pids.current"), "3\n");
        sys.set_file(g.join("cgroup.procs"), "10\n11\n");
        let want = Usage {
            memory: Some(1 << 20),
            memory_max: Some(64 << 20),
            cpu_usec: Some(2500),
            pids: Some(3),
        };
        assert_eq!(usage(&sys, &g), want);
        assert_eq!(procs(&sys, &g), Some(vec![10, 11]));
        sys.set_file(g.join("memory.max"), "max\n");
        assert_eq!(usage(&sys, &g).memory_max, None);
    }

    #[test]
    fn a_refused_limit_names_the_file_and_leaves_no_group() {
        let sys = v2_host("memory");
        let own = Path::new(SITE).join("den-c4");
        sys.fail_on(
            Call::Write {
                path: own.join("memory.max"),
                data: "67108864".into(),
            },
            nix::errno::Errno::EINVAL,
        );
        let limits = Limits {
            parent: Some(SITE.into()),
            ..Limits::parse(&flags("64m"), 2).unwrap()
        };
        let err = setup(&sys, &limits, "c4").unwrap_err();
        assert!(err.to_string().contains("memory.max"), "{err}");
        assert!(matches!(sys.calls().last(), Some(Call::Rmdir(_))));
    }
}
