//! `info`: what den will do on this machine, and why (id mapping, storage driver, cgroups,
//! helpers). Runs inside den's user namespace so the storage probe is the real one.

use super::Ctx;
use super::Result;
use std::path::PathBuf;

use crate::userns::IdMap;

/// What `info` reports: what den will do on this machine, and why.
#[derive(Debug, Clone)]
pub struct Info {
    pub version: &'static str,
    pub store: PathBuf,
    pub runtime_dir: PathBuf,
    pub config: PathBuf,
    /// Whether the configuration file exists (else den uses its defaults).
    pub config_exists: bool,
    pub idmap: IdMap,
    /// The storage driver den chose, and why.
    pub driver: &'static str,
    pub driver_reason: String,
    /// Which cgroup hierarchies are mounted: (v1, v2).
    pub cgroups: (bool, bool),
    /// fuse-overlayfs's path (None: not installed), or why it cannot be used.
    pub fuse_overlayfs: Result<Option<PathBuf>, String>,
    pub slirp4netns: Option<PathBuf>,
    pub pasta: Option<PathBuf>,
    pub newuidmap: Option<PathBuf>,
    /// Whether this kernel filters system calls (den's default profile applies).
    pub seccomp: bool,
    /// docker's default capabilities (`CAP_CHOWN`, ...).
    pub capabilities: Vec<&'static str>,
    /// The kernel's release.
    pub kernel: String,
}

pub fn info(ctx: &Ctx) -> Result<Info> {
    let store = ctx.store()?;
    let choice =
        crate::store::driver::choose(&crate::sys::LinuxSys, &store, ctx.config.storage.driver);
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let v1 = mountinfo.lines().any(|l| l.contains(" - cgroup "));
    let v2 = mountinfo.lines().any(|l| l.contains(" - cgroup2 "));
    let tool = crate::config::find_in_path;
    Ok(Info {
        version: env!("CARGO_PKG_VERSION"),
        store: ctx.paths.root.clone(),
        runtime_dir: ctx.paths.runtime.clone(),
        config: ctx.paths.config.clone(),
        config_exists: ctx.paths.config.exists(),
        idmap: ctx.idmap().clone(),
        driver: choice.driver.name(),
        driver_reason: choice.reason,
        cgroups: (v1, v2),
        fuse_overlayfs: crate::store::driver::fuse_usable().map(|()| tool("fuse-overlayfs")),
        slirp4netns: tool("slirp4netns"),
        pasta: tool("pasta"),
        newuidmap: tool("newuidmap"),
        seccomp: crate::security::seccomp_available(),
        capabilities: crate::security::DEFAULT_CAPS
            .iter()
            .map(|c| c.name())
            .collect(),
        kernel: nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default(),
    })
}
