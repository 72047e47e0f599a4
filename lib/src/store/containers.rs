//! Container records: `containers/<id>/container.json` (what to run, fixed at create) and
//! `containers/<id>/state.json` (status, pid, exit code; rewritten atomically on each change).
//!
//! Names are claimed with symlink(2) under `names/`, which fails if the name exists: two den
//! processes creating `--name web` at once cannot both win, and no lock is needed. `ps` reads the
//! records without any lock, through a cache validated by each directory's stamp ([`super::listing`]).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Digest, Result, Store, StoreError, io_err};

/// docker's `Config.AttachStdin`, `AttachStdout` and `AttachStderr`: the streams a foreground
/// `run` attaches (`-a`; none for `run -d`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachStreams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// What a container runs, resolved at create time from the image and the flags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSpec {
    /// The command line: entrypoint followed by cmd.
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    /// As given (`1000`, `1000:1000`, `nobody`), resolved in the rootfs at start; empty = root.
    pub user: String,
    pub hostname: String,
    pub tty: bool,
    pub stdin: bool,
    /// The network, parsed when the container was created (stored as the flag's text).
    pub network: crate::net::Network,
    /// The user networks it is on (`--network NAME`, `network connect`), as asked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<crate::net::usernet::Endpoint>,
    /// docker's STOPSIGNAL, if the image sets one.
    #[serde(default)]
    pub stop_signal: Option<String>,
    #[serde(default)]
    pub read_only: bool,
    /// The image's entrypoint and cmd as applied (for `inspect`; `args` is what runs).
    #[serde(default)]
    pub entrypoint: Vec<String>,
    #[serde(default)]
    pub cmd: Vec<String>,
    /// Bind mounts, volumes and tmpfs (`-v`, `--mount`, `--tmpfs`).
    #[serde(default)]
    pub mounts: Vec<crate::volume::MountSpec>,
    /// `--restart`: the monitor restarts the container by this policy while it lives.
    #[serde(default)]
    pub restart: RestartPolicy,
    /// `--stop-timeout`: seconds `stop` waits before SIGKILL (docker's default 10).
    #[serde(default)]
    pub stop_timeout: Option<u32>,
    /// `--label`.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// `--tz`: the host's zoneinfo file the container's /etc/localtime is copied from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<std::path::PathBuf>,
    /// `--uts host`: the host's UTS namespace (its host name) instead of the container's own.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub host_uts: bool,
    /// `--pid host`, `--ipc host`, `--userns keep-id` (or the config's `[run]` defaults).
    #[serde(
        default,
        skip_serializing_if = "crate::userns::share::Shared::is_private"
    )]
    pub shared: crate::userns::share::Shared,
    /// `-a` (all false for `run -d`); None: docker's default, stdout and stderr, and stdin
    /// with -i.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach: Option<AttachStreams>,
    /// `--annotation`: the OCI spec's annotations.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: std::collections::BTreeMap<String, String>,
    /// `-p` and `-P`: the ports asked for (host port 0: any free one).
    #[serde(default)]
    pub ports: Vec<crate::net::PortMapping>,
    /// `--add-host NAME:IP`.
    #[serde(default)]
    pub add_hosts: Vec<String>,
    /// `--dns IP`.
    #[serde(default)]
    pub dns: Vec<String>,
    /// `--security-opt`, `--cap-add`, `--cap-drop`, `--privileged` (records from before these
    /// existed read as docker's defaults).
    #[serde(default)]
    pub security: crate::security::Security,
    /// `--log-driver`, `--log-opt` (records from before these existed: k8s-file).
    #[serde(default)]
    pub log: crate::config::logging::LogConfig,
    /// `--device`, `--gpus`, `--group-add keep-groups`.
    #[serde(default)]
    pub devices: crate::cdi::DeviceRequest,
    /// `--memory`, `--cpus`, `--pids-limit`, ...: the container's own cgroup's limits, and the
    /// delegated subtree it goes in.
    #[serde(
        default,
        skip_serializing_if = "crate::cgroup::limits::Limits::is_empty"
    )]
    pub limits: crate::cgroup::limits::Limits,
    /// The hooks from `hooks.d` this container matched when it was created.
    #[serde(default, skip_serializing_if = "crate::hooks::Hooks::is_empty")]
    pub hooks: crate::hooks::Hooks,
    /// `--init`, `--sysctl`, `--ulimit`, `--shm-size`.
    #[serde(
        default,
        skip_serializing_if = "crate::security::process::Settings::is_default"
    )]
    pub process: crate::security::process::Settings,
    /// The health check: the image's HEALTHCHECK under the `--health-*` flags, merged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<super::health::HealthConfig>,
}

impl RunSpec {
    /// The streams a foreground run attaches, as `inspect` reports them ([`RunSpec::attach`]).
    pub fn attached(&self) -> AttachStreams {
        self.attach.unwrap_or(AttachStreams {
            stdin: self.stdin,
            stdout: true,
            stderr: true,
        })
    }
}

/// docker's `--restart` policies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "name")]
pub enum RestartPolicy {
    #[default]
    No,
    Always,
    UnlessStopped,
    OnFailure {
        /// 0: no limit.
        max_retries: u32,
    },
}

impl RestartPolicy {
    /// Parse `no`, `always`, `unless-stopped`, `on-failure[:N]`.
    pub fn parse(s: &str) -> Option<RestartPolicy> {
        Some(match s.split_once(':') {
            None => match s {
                "" | "no" => RestartPolicy::No,
                "always" => RestartPolicy::Always,
                "unless-stopped" => RestartPolicy::UnlessStopped,
                "on-failure" => RestartPolicy::OnFailure { max_retries: 0 },
                _ => return None,
            },
            Some(("on-failure", n)) => RestartPolicy::OnFailure {
                max_retries: n.parse().ok()?,
            },
            Some(_) => return None,
        })
    }

    /// docker's name for it (`HostConfig.RestartPolicy.Name`).
    pub fn name(&self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::Always => "always",
            RestartPolicy::UnlessStopped => "unless-stopped",
            RestartPolicy::OnFailure { .. } => "on-failure",
        }
    }

    /// Whether a container that exited with `code`, after `restarts` restarts, runs again.
    /// `stopped`: a user stopped or killed it.
    pub fn restarts(&self, code: i32, restarts: u32, stopped: bool) -> bool {
        if stopped {
            return false;
        }
        match self {
            RestartPolicy::No => false,
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
            RestartPolicy::OnFailure { max_retries } => {
                code != 0 && (*max_retries == 0 || restarts < *max_retries)
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    pub name: String,
    #[serde(with = "crate::digest::hex_only")]
    pub image_id: Digest,
    /// The image as the user named it (`busybox`), for `ps`.
    pub image: String,
    pub created: DateTime<Utc>,
    /// Storage driver of the writable layer (`overlay`, `fuse-overlayfs`, `vfs`).
    pub driver: String,
    /// Boxed: a listing of 10,000 containers moves records, and the spec is most of one.
    pub spec: Box<RunSpec>,
    /// Remove when it exits (`--rm`).
    #[serde(default)]
    pub auto_remove: bool,
    /// The root filesystem's layers (diff ids, bottom first) when they are not the image's:
    /// a build step's container, whose parent is the build so far.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<Digest>,
    /// The single-file image (`run FILE.sqsh`, absolute) the root filesystem is mounted from
    /// instead of layers ([`crate::store::imagefile`]); `image_id` is then the id it was made
    /// from, which need not be in the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Exited,
}

impl Status {
    /// docker's name for it (`State.Status`, `ps --filter status=`).
    pub fn name(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Exited => "exited",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerState {
    pub status: Status,
    #[serde(default)]
    pub pid: Option<i32>,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    /// Why it could not start, when it could not.
    #[serde(default)]
    pub error: Option<String>,
    /// The process that holds the container (den's monitor, or the foreground den), and its
    /// start time in clock ticks since boot (/proc/PID/stat field 22), so a reused pid is not
    /// mistaken for it.
    #[serde(default)]
    pub monitor: Option<(i32, u64)>,
    #[serde(default)]
    pub restart_count: u32,
    /// The published ports as bound while it runs.
    #[serde(default)]
    pub ports: Vec<crate::net::PortMapping>,
    /// Its places on user networks as attached while it runs (addresses, MACs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<crate::net::usernet::Endpoint>,
    /// Whether `den pause` stopped its processes (only while it runs).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// The cgroup of its own the freezer made for it (`.../den-ID`), removed with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<PathBuf>,
    /// Its health check's state (`State.Health`), kept in a file of its own
    /// ([`super::health`]) and read with the state; None without a check.
    #[serde(skip)]
    pub health: Option<super::health::Health>,
}

impl ContainerState {
    pub fn created() -> Self {
        ContainerState {
            endpoints: vec![],
            status: Status::Created,
            pid: None,
            exit_code: None,
            started_at: None,
            finished_at: None,
            error: None,
            monitor: None,
            restart_count: 0,
            ports: Vec::new(),
            paused: false,
            cgroup: None,
            health: None,
        }
    }

    /// The state as it really is: a record that says running whose monitor is gone (killed,
    /// or the machine rebooted) is exited. The container's init dies with its monitor (den
    /// gives it a parent-death signal), so "running" can only be true while the monitor lives.
    /// docker's `State.Status`: `paused` for a running container that is paused.
    pub fn status_name(&self) -> &'static str {
        if self.paused && self.status == Status::Running {
            "paused"
        } else {
            self.status.name()
        }
    }

    pub fn observed(mut self) -> ContainerState {
        if self.status == Status::Running
            && !self.monitor.is_some_and(|(pid, start)| alive(pid, start))
        {
            self.status = Status::Exited;
            self.pid = None;
            if self.exit_code.is_none() {
                self.exit_code = Some(137);
            }
            if self.error.is_none() {
                self.error = Some(
                    "den's monitor for this container was killed; the container was killed with it"
                        .into(),
                );
            }
            if self.finished_at.is_none() {
                self.finished_at = Some(Utc::now());
            }
        }
        self.paused &= self.status == Status::Running;
        self
    }
}

/// A container's record with its state as it really is ([`ContainerState::observed`]).
#[derive(Debug, Clone)]
pub struct Container {
    pub record: ContainerRecord,
    pub state: ContainerState,
}

impl ContainerRecord {
    /// Whether the container mounts the named volume `name`.
    pub fn mounts_volume(&self, name: &str) -> bool {
        self.spec
            .mounts
            .iter()
            .any(|m| m.kind == crate::volume::MountKind::Volume && m.source == name)
    }
}

/// A process's start time (clock ticks after boot), from /proc/PID/stat.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: fields after it are counted
    // from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The parent of process `pid`, from /proc.
pub fn parent_pid(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Whether the process `pid` that started at `start` still runs (and is not a zombie).
pub fn alive(pid: i32, start: u64) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some(close) = stat.rfind(')') else {
        return false;
    };
    let mut f = stat[close + 1..].split_whitespace();
    let state = f.next().unwrap_or("");
    if state == "Z" || state == "X" {
        return false;
    }
    f.nth(18).and_then(|s| s.parse::<u64>().ok()) == Some(start)
}

/// The label den-build gives the container of a RUN step. A build holds the content lock shared
/// while its step containers exist, so one seen under the exclusive lock, not running, was left
/// by a build that was killed.
pub const BUILD_STEP_LABEL: &str = "den.build-step";

/// A container id: 64 lowercase hex digits.
pub fn valid_id(id: &str) -> bool {
    id.len() == 64
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A valid container name: docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && name.len() <= 128
}

const ADJECTIVES: &[&str] = &[
    "brave", "calm", "clever", "eager", "fervent", "gentle", "happy", "jolly", "keen", "lucid",
    "merry", "nifty", "proud", "quiet", "sharp", "sleepy", "stoic", "tender", "vivid", "witty",
    "zealous",
];
const NAMES: &[&str] = &[
    "babbage", "curie", "dijkstra", "euler", "feynman", "gauss", "hopper", "knuth", "lamport",
    "lovelace", "noether", "pascal", "ritchie", "shannon", "thompson", "turing", "wirth",
    "wozniak",
];

fn generated_name(seed: &[u8]) -> String {
    let a = ADJECTIVES[seed[0] as usize % ADJECTIVES.len()];
    let n = NAMES[seed[1] as usize % NAMES.len()];
    format!("{a}_{n}")
}

impl Store {
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }

    /// Create a container's record and directory, claiming its name. With no name, one is
    /// generated as docker does (`adjective_surname`). The record's id is kept when the caller
    /// chose one (a fresh [`crate::fs::random_hex`]), else made here.
    pub fn create_container(
        &self,
        mut record: ContainerRecord,
        name: Option<&str>,
    ) -> Result<ContainerRecord> {
        if !valid_id(&record.id) {
            record.id = crate::fs::random_hex(32);
        }
        let names = self.root.join("names");
        let claimed = match name {
            Some(n) => {
                if !valid_name(n) {
                    return Err(StoreError::BadName(n.into()));
                }
                self.claim_name(n, &record.id)?;
                n.to_string()
            }
            None => {
                let mut attempt = 0u32;
                loop {
                    let seed = hex::decode(crate::fs::random_hex(2)).expect("hex");
                    let mut n = generated_name(&seed);
                    if attempt > 8 {
                        n = format!("{n}_{attempt}");
                    }
                    match self.claim_name(&n, &record.id) {
                        Ok(()) => break n,
                        Err(StoreError::NameInUse { .. }) => attempt += 1,
                        Err(e) => return Err(e),
                    }
                }
            }
        };
        record.name = claimed.clone();
        let dir = self.container_dir(&record.id);
        let res = (|| {
            std::fs::create_dir(&dir).map_err(io_err(&dir))?;
            // A `--rm` container's records are not fsynced: after a power loss it would have
            // been removed anyway (`den system check` removes what is left of one).
            let durable = !record.auto_remove;
            self.write_json_as(&dir.join("container.json"), &record, durable)?;
            self.write_json_as(&dir.join("state.json"), &ContainerState::created(), durable)
        })();
        if let Err(e) = res {
            let _ = std::fs::remove_file(names.join(&claimed));
            let _ = crate::fs::remove_tree(&dir);
            return Err(e);
        }
        self.record_event(&super::Event::container(&record, "create"));
        Ok(record)
    }

    fn claim_name(&self, name: &str, id: &str) -> Result<()> {
        let link = self.root.join("names").join(name);
        match std::os::unix::fs::symlink(id, &link) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let owner = std::fs::read_link(&link)
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                // A name left behind by a container whose directory is gone (a crash between
                // the two steps of removal) is free again.
                if !owner.is_empty() && !self.container_dir(&owner).exists() {
                    let _ = std::fs::remove_file(&link);
                    return self.claim_name(name, id);
                }
                Err(StoreError::NameInUse {
                    name: name.into(),
                    id: owner,
                })
            }
            Err(e) => Err(io_err(&link)(e)),
        }
    }

    /// `rename`: the container `id` is called `new` from now on (ops refuses its own name). The new name is claimed first
    /// (so a clash leaves everything as it was), then the record says it, then the old name
    /// goes; a crash between the steps leaves both names pointing at the container, which
    /// `den system check` reports as a dangling name.
    pub fn rename_container(&self, id: &str, new: &str) -> Result<()> {
        if !valid_name(new) {
            return Err(StoreError::BadName(new.into()));
        }
        let mut record = self.container(id)?;
        self.claim_name(new, id)?;
        let old = std::mem::replace(&mut record.name, new.to_string());
        let dir = self.container_dir(id);
        if let Err(e) = self.write_json(&dir.join("container.json"), &record) {
            let _ = std::fs::remove_file(self.root.join("names").join(new));
            return Err(e);
        }
        let link = self.root.join("names").join(&old);
        if std::fs::read_link(&link).is_ok_and(|t| t == Path::new(id)) {
            let _ = std::fs::remove_file(&link);
        }
        Ok(())
    }

    /// The layers of a container's root filesystem, bottom first: its own list (a build
    /// step's), else its image's.
    pub fn rootfs_layers(&self, record: &ContainerRecord) -> Result<Vec<Digest>> {
        if record.image_file.is_some() {
            return Ok(Vec::new());
        }
        if !record.layers.is_empty() {
            return Ok(record.layers.clone());
        }
        let image = self.find_image(record.image_id.as_str())?;
        Ok(image.layers.iter().map(|l| l.diff_id.clone()).collect())
    }

    pub fn container(&self, id: &str) -> Result<ContainerRecord> {
        self.read_json(&self.container_dir(id).join("container.json"))
    }

    pub fn container_state(&self, id: &str) -> Result<ContainerState> {
        let mut state: ContainerState =
            self.read_json(&self.container_dir(id).join("state.json"))?;
        state.health = self.container_health(id);
        Ok(state)
    }

    /// Write a container's state; a change to running or to exited is its `start` or `die`
    /// event (with `exitCode`).
    pub fn set_container_state(&self, id: &str, state: &ContainerState) -> Result<()> {
        let path = self.container_dir(id).join("state.json");
        let before = self
            .read_json::<ContainerState>(&path)
            .ok()
            .map(|s| s.status);
        let record = self.container(id).ok();
        let durable = !record.as_ref().is_some_and(|r| r.auto_remove);
        self.write_json_as(&path, state, durable)?;
        let action = match state.status {
            Status::Running => "start",
            Status::Exited if state.exit_code.is_some() => "die",
            _ => return Ok(()),
        };
        if before != Some(state.status)
            && let Some(record) = record
        {
            let mut e = super::Event::container(&record, action);
            if let (Status::Exited, Some(code)) = (state.status, state.exit_code) {
                e = e.with("exitCode", code.to_string());
            }
            self.record_event(&e);
        }
        Ok(())
    }

    /// The id of the container a user means: a name, a full id or a unique id prefix.
    pub fn find_container(&self, input: &str) -> Result<String> {
        let unknown = || StoreError::ContainerUnknown(input.to_string());
        if input.is_empty() {
            return Err(unknown());
        }
        if valid_name(input)
            && let Ok(id) = std::fs::read_link(self.root.join("names").join(input))
        {
            let id = id.to_string_lossy().into_owned();
            if self.container_dir(&id).join("container.json").exists() {
                return Ok(id);
            }
        }
        if !input.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(unknown());
        }
        let ids = self.container_ids()?;
        let mut hits = ids.iter().filter(|id| id.starts_with(input));
        match (hits.next(), hits.next()) {
            (Some(id), None) => Ok(id.clone()),
            (Some(_), Some(_)) => Err(StoreError::ContainerUnknown(format!(
                "{input} (ambiguous prefix)"
            ))),
            _ => Err(unknown()),
        }
    }

    /// The container `id`: its record, and its state as it really is (a container whose
    /// monitor died shows as exited).
    pub fn load_container(&self, id: &str) -> Result<Container> {
        let record = self.container(id)?;
        Ok(self.with_state(id, record))
    }

    /// `record` with its container's state as it really is ([`ContainerState::observed`]).
    fn with_state(&self, id: &str, record: ContainerRecord) -> Container {
        let state = self.written_state(id, &record).observed();
        Container { record, state }
    }

    /// A container's state as its files say (not yet observed); `health.json` is looked for
    /// only when the container has a check.
    fn written_state(&self, id: &str, record: &ContainerRecord) -> ContainerState {
        let mut state = self
            .read_json::<ContainerState>(&self.container_dir(id).join("state.json"))
            .unwrap_or_else(|_| ContainerState::created());
        if record.spec.healthcheck.is_some() {
            state.health = self.container_health(id);
        }
        state
    }

    /// A container's record and written state, for the listing: None for a directory without
    /// a (whole) record.
    pub(super) fn read_container(&self, id: &str) -> Option<(ContainerRecord, ContainerState)> {
        let record = self.container(id).ok()?;
        let state = self.written_state(id, &record);
        Some((record, state))
    }

    /// The container a user names (name, id, or id prefix): the one lookup every verb on a
    /// container starts with.
    pub fn lookup_container(&self, input: &str) -> Result<Container> {
        let id = self.find_container(input)?;
        self.load_container(&id)
    }

    /// Every container, newest first, read through the listing cache ([`super::listing`]):
    /// `ps -a` over 10,000 containers makes one `lstat` per container.
    pub fn containers(&self) -> Result<Vec<Container>> {
        self.listing()
    }

    /// The named volumes, under `volumes/`.
    pub fn volumes(&self) -> crate::volume::Volumes {
        crate::volume::Volumes::new(&self.root.join("volumes"))
    }

    /// Names of the containers that mount the named volume `name`.
    pub fn volume_users(&self, name: &str) -> Result<Vec<String>> {
        Ok(self
            .containers()?
            .into_iter()
            .filter(|c| c.record.mounts_volume(name))
            .map(|c| c.record.name)
            .collect())
    }

    /// The named volumes some container mounts.
    pub fn volumes_in_use(&self) -> Result<std::collections::HashSet<String>> {
        Ok(self
            .containers()?
            .iter()
            .flat_map(|c| &c.record.spec.mounts)
            .filter(|m| m.kind == crate::volume::MountKind::Volume)
            .map(|m| m.source.clone())
            .collect())
    }

    /// Remove every container not running (`container prune`, `system prune`); their ids.
    pub fn prune_containers(&self) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for c in self.containers()? {
            if c.state.status != Status::Running && self.remove_container(&c.record.id).is_ok() {
                removed.push(c.record.id);
            }
        }
        Ok(removed)
    }

    /// Ids of all containers with a complete record.
    pub fn container_ids(&self) -> Result<Vec<String>> {
        let dir = self.root.join("containers");
        let mut out = Vec::new();
        for e in std::fs::read_dir(&dir).map_err(io_err(&dir))?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.len() == 64 && e.path().join("container.json").exists() {
                out.push(name);
            }
        }
        Ok(out)
    }

    /// Names under `names/` whose container is gone, with the id each names: a removal killed
    /// between moving the container aside and removing its name leaves one. (A name is also
    /// claimed an instant before its container's directory is made: only a caller holding the
    /// content lock exclusive, which creators hold shared, may take these for leftovers.)
    pub fn dangling_names(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let Ok(rd) = std::fs::read_dir(self.root.join("names")) else {
            return out;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Ok(target) = std::fs::read_link(e.path()) {
                let id = target.to_string_lossy().into_owned();
                if valid_id(&id) && !self.container_dir(&id).join("container.json").exists() {
                    out.push((name, id));
                }
            }
        }
        out
    }

    /// Remove the name `name` if it names a container that is gone (see
    /// [`Store::dangling_names`]; the caller holds the content lock exclusive). Returns whether
    /// it did: `rm` then finishes the removal a killed `rm` began.
    pub fn remove_dangling_name(&self, name: &str) -> bool {
        self.dangling_name(name) && std::fs::remove_file(self.root.join("names").join(name)).is_ok()
    }

    /// Whether `name` names a container that is gone.
    pub fn dangling_name(&self, name: &str) -> bool {
        valid_name(name)
            && std::fs::read_link(self.root.join("names").join(name)).is_ok_and(|target| {
                !self
                    .container_dir(&target.to_string_lossy())
                    .join("container.json")
                    .exists()
            })
    }

    /// Directories under `containers/` without a record: a create killed between making the
    /// directory and writing its record, or a `--rm` container's record (not fsynced) emptied
    /// by a power loss (the caller holds the content lock exclusive, as for
    /// [`Store::dangling_names`]).
    pub fn partial_containers(&self) -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(self.root.join("containers")) else {
            return Vec::new();
        };
        rd.flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|id| {
                valid_id(id)
                    && std::fs::metadata(self.container_dir(id).join("container.json"))
                        .map_or(true, |m| m.len() == 0)
            })
            .collect()
    }

    /// Delete a container's record, name and files. The caller has made sure it is not running
    /// and that its rootfs is unmounted.
    pub fn remove_container(&self, id: &str) -> Result<()> {
        let dir = self.container_dir(id);
        let record = self.container(id).ok();
        if let Some(group) = self.container_state(id).ok().and_then(|s| s.cgroup) {
            crate::cgroup::remove_group(&crate::sys::LinuxSys, &group, id);
        }
        // Rename aside first: a container directory without its record is never listed.
        let aside = self.root.join("tmp").join(format!(
            "rm-{}-{}",
            std::process::id(),
            crate::fs::random_hex(4)
        ));
        std::fs::rename(&dir, &aside).map_err(io_err(&dir))?;
        if let Some(r) = &record {
            self.record_event(&super::Event::container(r, "destroy"));
        }
        if let Some(r) = record {
            let link = self.root.join("names").join(&r.name);
            if std::fs::read_link(&link).is_ok_and(|t| t == Path::new(id)) {
                let _ = std::fs::remove_file(&link);
            }
        }
        crate::fs::remove_tree(&aside).map_err(io_err(&aside))
    }
}

/// A container in the wrong state for what was asked of it, or a filter over containers that
/// den cannot read.
#[derive(Debug, thiserror::Error)]
pub enum ContainersError {
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("container {0} has no defined healthcheck")]
    NoHealthcheck(String),
    #[error("cannot remove container {0}: container is running")]
    RemoveRunning(String),
    #[error("invalid filter {0:?}")]
    BadFilter(String),
    #[error("invalid events filter or time {0:?}")]
    BadEventFilter(String),
    #[error("renaming a container with the same name as its current name ({0})")]
    SameName(String),
    #[error("container {0} is already paused")]
    AlreadyPaused(String),
    #[error("container {0} is not paused")]
    NotPaused(String),
    #[error("container {0} is paused, unpause the container before exec")]
    PausedExec(String),
    #[error("ps {args} failed: {reason}")]
    Ps { args: String, reason: String },
    #[error("configured logging driver does not support reading")]
    LogNotKept { name: String, driver: &'static str },
}

impl crate::error::Diagnose for ContainersError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            ContainersError::NotRunning(_) => "start it first with `den start`".into(),
            ContainersError::NoHealthcheck(_) => {
                "create it with --health-cmd, or from an image with a HEALTHCHECK".into()
            }
            ContainersError::RemoveRunning(_) => {
                "stop the container before removing it, or force it with `den rm -f`".into()
            }
            ContainersError::BadEventFilter(_) => {
                "filter with type=container|image, event=ACTION, container=NAME|ID, image=NAME, label=KEY[=VALUE]; give times as RFC 3339, a Unix timestamp or a duration ago (10m)".into()
            }
            ContainersError::BadFilter(_) => {
                "use KEY=VALUE with status (created, running, exited, ...), name, id, label, exited, ancestor or health (starting, healthy, unhealthy, none)".into()
            }
            ContainersError::SameName(_) => "choose a name the container does not have".into(),
            ContainersError::AlreadyPaused(_) => "`den unpause` continues it".into(),
            ContainersError::NotPaused(_) => "`den pause` pauses a running container".into(),
            ContainersError::PausedExec(name) => format!("continue it first: den unpause {name}"),
            ContainersError::Ps { .. } => {
                "the options after the container are the host's ps's (`man ps`); den needs its PID column".into()
            }
            ContainersError::LogNotKept { name, driver } => format!(
                "container {name} uses the {driver} log driver, which keeps no log; create it with --log-driver k8s-file or json-file to read its output with `den logs`"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> ContainerRecord {
        ContainerRecord {
            id: String::new(),
            name: String::new(),
            image_id: Digest::of(b"i"),
            image: "busybox".into(),
            created: Utc::now(),
            driver: "vfs".into(),
            spec: Default::default(),
            auto_remove: false,
            layers: Vec::new(),
            image_file: None,
        }
    }

    #[test]
    fn names_are_unique_and_found() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        let a = s.create_container(rec(), Some("web")).unwrap();
        assert_eq!(a.id.len(), 64);
        match s.create_container(rec(), Some("web")) {
            Err(StoreError::NameInUse { name, id }) => {
                assert_eq!(name, "web");
                assert_eq!(id, a.id);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(s.find_container("web").unwrap(), a.id);
        assert_eq!(s.find_container(&a.id[..12]).unwrap(), a.id);
        assert!(s.find_container("nope").is_err());
        assert_eq!(s.container_state(&a.id).unwrap().status, Status::Created);
        s.remove_container(&a.id).unwrap();
        assert!(s.find_container("web").is_err());
        s.create_container(rec(), Some("web")).unwrap();
    }

    #[test]
    fn generated_names_and_validation() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        let a = s.create_container(rec(), None).unwrap();
        assert!(a.name.contains('_'));
        assert!(matches!(
            s.create_container(rec(), Some("/bad")),
            Err(StoreError::BadName(_))
        ));
        assert!(valid_name("a.b-c_1"));
        assert!(!valid_name("-a"));
    }

    #[test]
    fn rename_moves_the_name() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        let a = s.create_container(rec(), Some("old")).unwrap();
        let b = s.create_container(rec(), Some("other")).unwrap();
        assert!(matches!(
            s.rename_container(&a.id, "other"),
            Err(StoreError::NameInUse { ref id, .. }) if *id == b.id
        ));
        assert!(matches!(
            s.rename_container(&a.id, "/bad"),
            Err(StoreError::BadName(_))
        ));
        assert_eq!(s.container(&a.id).unwrap().name, "old");
        s.rename_container(&a.id, "new").unwrap();
        assert_eq!(s.container(&a.id).unwrap().name, "new");
        assert_eq!(s.find_container("new").unwrap(), a.id);
        assert!(s.find_container("old").is_err());
        s.create_container(rec(), Some("old")).unwrap();
    }

    #[test]
    fn stale_names_are_reclaimed() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        std::os::unix::fs::symlink("0".repeat(64), t.path().join("names/ghost")).unwrap();
        s.create_container(rec(), Some("ghost")).unwrap();
    }
}
