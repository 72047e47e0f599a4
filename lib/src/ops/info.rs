//! `info`: what den will do on this machine, and why (id mapping, storage driver, cgroups,
//! helpers). Runs inside den's user namespace so the storage probe is the real one.

use super::Ctx;
use crate::error::Result;
use crate::userns::IdMap;

pub fn info(ctx: &Ctx) -> Result<String> {
    let store = ctx.store()?;
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<20}{v}\n"));
    line("version:", env!("CARGO_PKG_VERSION").to_string());
    line("store:", ctx.paths.root.display().to_string());
    line("runtime dir:", ctx.paths.runtime.display().to_string());
    line(
        "config file:",
        format!(
            "{}{}",
            ctx.paths.config.display(),
            if ctx.paths.config.exists() {
                ""
            } else {
                " (absent: defaults)"
            }
        ),
    );
    line(
        "id mapping:",
        match ctx.idmap() {
            IdMap::Mapped { uid, uids, .. } => format!(
                "subordinate ids: root is uid {uid}; {} more ids from {}",
                uids.iter().map(|r| r.count as u64).sum::<u64>(),
                uids.iter()
                    .map(|r| format!("{}+{}", r.start, r.count))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            IdMap::Single { uid, reason, .. } => {
                format!("single-uid: only uid {uid} (root inside); {reason}")
            }
            IdMap::Root => "none: den runs as root".into(),
        },
    );
    let choice =
        crate::runtime::driver::choose(&crate::sys::LinuxSys, &store, ctx.config.storage.driver);
    line(
        "storage driver:",
        format!("{} ({})", choice.driver.name(), choice.reason),
    );
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let v1 = mountinfo.lines().any(|l| l.contains(" - cgroup "));
    let v2 = mountinfo.lines().any(|l| l.contains(" - cgroup2 "));
    line(
        "cgroups:",
        match (v1, v2) {
            (true, true) => "hybrid (v1 + v2); not used: no delegation to this user, containers run without limits".into(),
            (true, false) => "v1; not used: no delegation to this user, containers run without limits".into(),
            (false, true) => "v2; not used yet: containers run without limits".into(),
            (false, false) => "none mounted".into(),
        },
    );
    let tool = |n: &str| {
        crate::userns::find_in_path(n)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "not installed".into())
    };
    line(
        "fuse-overlayfs:",
        match crate::runtime::driver::fuse_usable() {
            Ok(()) => tool("fuse-overlayfs"),
            Err(e) => e,
        },
    );
    line("slirp4netns:", tool("slirp4netns"));
    line("pasta:", tool("pasta"));
    line("newuidmap:", tool("newuidmap"));
    line(
        "seccomp:",
        if crate::security::seccomp_available() {
            "on: den's default profile, docker's policy (off with --security-opt seccomp=unconfined or --privileged)".into()
        } else {
            "off: this kernel has no seccomp filters".into()
        },
    );
    line(
        "no-new-privileges:",
        "off (on with --security-opt no-new-privileges)".into(),
    );
    line(
        "capabilities:",
        format!(
            "docker's default {}, in den's user namespace only: {}",
            crate::security::DEFAULT_CAPS.len(),
            crate::security::DEFAULT_CAPS
                .iter()
                .map(|c| c.name().trim_start_matches("CAP_"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    line(
        "keyring:",
        "a new session keyring per container: the user's keys stay out".into(),
    );
    line(
        "kernel:",
        nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default(),
    );
    Ok(out)
}
