//! `info`: what den will do on this machine, and why (id mapping, storage driver, cgroups,
//! helpers). Runs inside den's user namespace so the storage probe is the real one.
//!
//! Also `info --format` (docker's field names over what `info` knows, [`info_object`]) and
//! `version`. docker's `version` prints a Client and a Server (the daemon); den has no daemon, so
//! it follows podman's local engine: its engine is these programs, and the Server section is the
//! same build as the Client. It is printed (not left out, as docker does when no daemon
//! answers) because scripts read `{{.Server.Version}}` and should find den's.

use super::Ctx;
use super::Result;
use std::path::PathBuf;

use crate::userns::IdMap;

/// What `info` reports: what den will do on this machine, and why.
#[derive(Debug, Clone)]
pub struct Info {
    pub version: &'static str,
    pub store: PathBuf,
    /// The additional (read-only) stores in use, in lookup order.
    pub additional: Vec<PathBuf>,
    /// The filesystem that holds the store (None: the kernel did not say).
    pub store_fs: Option<crate::fs::FsKind>,
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
    /// Where resource limits go (the delegated cgroup v2 subtree) and the controllers it can
    /// give, else why `--memory`, `--cpus`, ... are refused.
    pub limits: Result<(PathBuf, Vec<String>), String>,
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
    /// How `pause` stops a container's processes, and why.
    pub pause: String,
    /// The log driver containers get by default (config.toml's `[log] driver`).
    pub log_driver: &'static str,
    /// The CDI spec directories and the devices their specs define (or why they cannot be
    /// read).
    pub cdi: (Vec<PathBuf>, std::result::Result<Vec<String>, String>),
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
        log_driver: ctx
            .config
            .log
            .log_config()
            .map(|c| c.driver.name())
            .unwrap_or("k8s-file"),
        version: env!("CARGO_PKG_VERSION"),
        store: ctx.paths.root.clone(),
        additional: store.additional().iter().map(|a| a.root.clone()).collect(),
        store_fs: crate::fs::FsKind::of(&crate::sys::LinuxSys, &ctx.paths.root),
        runtime_dir: ctx.paths.runtime.clone(),
        config: ctx.paths.config.clone(),
        config_exists: ctx.paths.config.exists(),
        idmap: ctx.idmap().clone(),
        driver: choice.driver.name(),
        driver_reason: choice.reason,
        cgroups: (v1, v2),
        limits: crate::cgroup::limits::subtree(&crate::sys::LinuxSys, &ctx.cgroup_where())
            .map_err(|r| r.0),
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
        pause: crate::runtime::freeze::mechanism(&crate::sys::LinuxSys).to_string(),
        cdi: {
            let (dirs, devices) = crate::cdi::summary();
            (dirs, devices.map_err(|e| crate::error::chain(&e)))
        },
    })
}

// ------------------------------------------------------------------------------------------
// version

/// docker 25's engine API version. den serves no API; it follows docker 25's CLI, so scripts
/// that compare API versions see the docker whose behaviour den matches.
pub const DOCKER_API_VERSION: &str = "1.44";

/// What `version` reports: the build of den that runs. The fields are docker's (`Version`,
/// `ApiVersion`, `GitCommit`, `BuildTime`, `Os`, `Arch`), with den's compiler in `RustVersion`
/// where docker has `GoVersion`.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Version {
    pub version: &'static str,
    pub api_version: &'static str,
    pub rust_version: &'static str,
    pub git_commit: &'static str,
    /// The commit's time (RFC 3339): the build's, reproducibly.
    pub build_time: String,
    pub os: &'static str,
    pub arch: String,
    /// The kernel's release (docker's Server has it).
    pub kernel_version: String,
}

pub fn version() -> Version {
    let time = env!("DEN_COMMIT_TIME").parse::<i64>().unwrap_or(0);
    Version {
        version: env!("CARGO_PKG_VERSION"),
        api_version: DOCKER_API_VERSION,
        rust_version: env!("DEN_RUST_VERSION"),
        git_commit: env!("DEN_GIT_COMMIT"),
        build_time: chrono::DateTime::from_timestamp(time, 0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default(),
        os: std::env::consts::OS,
        // docker's names: amd64, arm64 (Go's GOARCH).
        arch: crate::image::manifest::Platform::host().arch,
        kernel_version: kernel(),
    }
}

fn kernel() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `version`'s object in docker's shape: `Client` and `Server`. den has no daemon: its engine
/// is these programs, so `Server` reports the same build as `Client` (as podman's `version`
/// does for a local engine), and scripts that read `{{.Server.Version}}` keep working. The API
/// version is under docker's JSON key (`ApiVersion`) and its template name (`APIVersion`), as
/// docker's templates read the Go field.
pub fn version_object(v: &Version) -> serde_json::Value {
    let built = chrono::DateTime::parse_from_rfc3339(&v.build_time)
        .map(|t| t.format("%a %b %e %H:%M:%S %Y").to_string())
        .unwrap_or_default();
    let details = serde_json::json!({
        "ApiVersion": v.api_version,
        "Arch": v.arch,
        "BuildTime": v.build_time,
        "GitCommit": v.git_commit,
        "RustVersion": v.rust_version,
        "KernelVersion": v.kernel_version,
        "Os": v.os,
    });
    serde_json::json!({
        "Client": {
            "Platform": {"Name": "den"},
            "Version": v.version,
            "ApiVersion": v.api_version,
            "APIVersion": v.api_version,
            "DefaultAPIVersion": v.api_version,
            "GitCommit": v.git_commit,
            "RustVersion": v.rust_version,
            "Os": v.os,
            "Arch": v.arch,
            "BuildTime": built,
            "Context": "default",
        },
        "Server": {
            "Platform": {"Name": "den"},
            "Components": [{"Name": "Engine", "Version": v.version, "Details": details}],
            "Version": v.version,
            "ApiVersion": v.api_version,
            "APIVersion": v.api_version,
            "MinAPIVersion": v.api_version,
            "GitCommit": v.git_commit,
            "RustVersion": v.rust_version,
            "Os": v.os,
            "Arch": v.arch,
            "KernelVersion": v.kernel_version,
            "BuildTime": v.build_time,
        },
    })
}

// ------------------------------------------------------------------------------------------
// info --format

/// How many containers (by state) and images the store holds, as docker's `info` counts them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub containers: usize,
    pub running: usize,
    pub paused: usize,
    pub stopped: usize,
    pub images: usize,
}

pub fn counts(ctx: &Ctx) -> Result<Counts> {
    use crate::store::Status;
    let store = ctx.store()?;
    let containers = store.containers()?;
    let running = containers
        .iter()
        .filter(|c| c.state.status == Status::Running)
        .count();
    Ok(Counts {
        containers: containers.len(),
        running,
        paused: 0,
        // docker counts every container that is neither running nor paused (created too).
        stopped: containers.len() - running,
        images: store.images()?.len(),
    })
}

/// The host's facts docker's `info` reports that den's [`Info`] does not need.
fn os_release() -> (String, String) {
    let text = std::fs::read_to_string("/etc/os-release")
        .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
        .unwrap_or_default();
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_default()
    };
    let name = field("PRETTY_NAME");
    (
        if name.is_empty() {
            "Linux".into()
        } else {
            name
        },
        field("VERSION_ID"),
    )
}

fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            let line = t.lines().find(|l| l.starts_with("MemTotal:"))?.to_string();
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kb| kb * 1024)
}

/// The host's half of [`info_object`]: the system, the store's place, den's version and
/// security. (One json! of all of it passes the macro's recursion limit.)
fn host_object(i: &Info) -> serde_json::Value {
    let (os, os_version) = os_release();
    let machine = nix::sys::utsname::uname()
        .map(|u| u.machine().to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut security = Vec::new();
    if i.seccomp {
        security.push("name=seccomp,profile=builtin".to_string());
    }
    security.push("name=rootless".to_string());
    serde_json::json!({
        "KernelVersion": i.kernel,
        "OperatingSystem": os,
        "OSVersion": os_version,
        "OSType": "linux",
        "Architecture": machine,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "NCPU": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "MemTotal": mem_total(),
        "DockerRootDir": i.store,
        "CDISpecDirs": i.cdi.0,
        "AdditionalStores": i.additional,
        "Name": name,
        "Labels": [],
        "ExperimentalBuild": false,
        "ServerVersion": i.version,
        "Runtimes": {"libcontainer": {"path": "den-run"}},
        "DefaultRuntime": "libcontainer",
        "LiveRestoreEnabled": false,
        "Isolation": "",
        "InitBinary": "",
        "SecurityOptions": security,
        "Warnings": [],
        "ClientInfo": {
            "Debug": false,
            "Context": "default",
            "Plugins": [],
            "Warnings": null,
        },
    })
}

/// `info`'s object with docker's field names (`{{.Driver}}`, `{{.NCPU}}`, `{{json .}}`), from
/// what den knows. Where docker reports a daemon's setting den has none of, the value is what
/// den does instead: no cgroup driver where den has no delegated cgroup v2 subtree ("none", as
/// rootless docker on cgroup v1 reports; else "cgroupfs", den's own writes), den's
/// log format (`k8s-file`), its runtime (libcontainer, in-process). `DriverStatus` has docker's
/// `Backing Filesystem` (the store's: `extfs`, `xfs`, `tmpfs`, `nfs`, `lustre`, ...).
pub fn info_object(i: &Info, c: &Counts) -> serde_json::Value {
    let cgroup_version = match i.cgroups {
        (false, true) => "2",
        (true, _) => "1",
        (false, false) => "",
    };
    // What den can limit: the controllers of the delegated subtree (none without one).
    let has = |c: &str| {
        i.limits
            .as_ref()
            .is_ok_and(|(_, have)| have.iter().any(|h| h == c))
    };
    let mut networks = vec!["bridge", "host", "none"];
    if i.pasta.is_some() {
        networks.push("pasta");
    }
    if i.slirp4netns.is_some() {
        networks.push("slirp4netns");
    }
    let mut object = serde_json::json!({
        "ID": "",
        "Containers": c.containers,
        "ContainersRunning": c.running,
        "ContainersPaused": c.paused,
        "ContainersStopped": c.stopped,
        "Images": c.images,
        "Driver": i.driver,
        "DriverStatus": [
            ["Backing Filesystem", i.store_fs.map_or_else(String::new, |f| f.name())],
            ["Reason", i.driver_reason],
        ],
        "Plugins": {
            "Volume": ["local"],
            "Network": networks,
            "Authorization": null,
            "Log": ["k8s-file", "json-file", "none", "passthrough"],
        },
        "MemoryLimit": has("memory"),
        "SwapLimit": has("memory"),
        "CpuCfsPeriod": has("cpu"),
        "CpuCfsQuota": has("cpu"),
        "CPUShares": has("cpu"),
        "CPUSet": has("cpuset"),
        "PidsLimit": has("pids"),
        "IPv4Forwarding": true,
        "Debug": false,
        "OomKillDisable": false,
        "SystemTime": chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, false),
        "LoggingDriver": i.log_driver,
        "CgroupDriver": if i.limits.as_ref().is_ok_and(|(_, c)| !c.is_empty()) { "cgroupfs" } else { "none" },
        "CgroupVersion": cgroup_version,
        "NEventsListener": 0,
    });
    let rest = host_object(i);
    if let (Some(o), serde_json::Value::Object(r)) = (object.as_object_mut(), rest) {
        o.extend(r);
    }
    object
}
