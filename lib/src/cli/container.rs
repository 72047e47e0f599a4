//! Flags of the container verbs after `run`: ps, logs, start, stop, kill, wait, attach, exec,
//! cp, rm, inspect, prune, volume.

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Only display container ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Show the last N created containers (includes all states)
    #[arg(short = 'n', long = "last", value_name = "N")]
    pub last: Option<usize>,
    /// Show the latest created container (includes all states)
    #[arg(short, long)]
    pub latest: bool,
    /// Filter: status=, name=, id=, label=, exited=, ancestor=
    #[arg(short, long = "filter", value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
    /// Format: table, json, or a Go template such as '{{.Names}}'
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Display total file sizes: the writable layer's and, as virtual, with the image's
    #[arg(short, long)]
    pub size: bool,
    /// Print no header line (podman's)
    #[arg(long, alias = "no-heading")]
    pub noheading: bool,
    /// Order: created, id, image, names, runningfor, size, status (podman's)
    #[arg(long, value_name = "KEY", value_parser = ["created", "id", "image", "names", "runningfor", "size", "status"])]
    pub sort: Option<String>,
}

impl StartArgs {
    /// How `start -a` attaches; None without `-a`.
    pub fn attach_options(&self) -> crate::ops::Result<Option<crate::ops::container::Attach>> {
        if !self.attach {
            return Ok(None);
        }
        Ok(Some(crate::ops::container::Attach {
            detach_keys: crate::runtime::detach::choose(self.detach_keys.as_deref())?,
            sig_proxy: self.sig_proxy,
            ..crate::ops::container::Attach::new(self.interactive)
        }))
    }
}

impl AttachArgs {
    /// How `attach` attaches.
    pub fn options(&self) -> crate::ops::Result<crate::ops::container::Attach> {
        Ok(crate::ops::container::Attach {
            detach_keys: crate::runtime::detach::choose(self.detach_keys.as_deref())?,
            sig_proxy: self.sig_proxy,
            ..crate::ops::container::Attach::new(!self.no_stdin)
        })
    }
}

impl PsArgs {
    /// Which containers `ps` lists, in which order, with sizes or not.
    pub fn options(&self) -> crate::ops::container::PsOptions {
        crate::ops::container::PsOptions {
            all: self.all,
            last: if self.latest { Some(1) } else { self.last },
            filters: self.filter.clone(),
            sort: self
                .sort
                .as_deref()
                .and_then(crate::ops::container::PsSort::parse),
            size: self.size,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    /// Follow log output until the container stops
    #[arg(short, long)]
    pub follow: bool,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Number of lines to show from the end ("all" for every line)
    #[arg(short = 'n', long, value_name = "N", default_value = "all")]
    pub tail: String,
    /// Show logs since a time (RFC 3339) or a duration ago (10s, 5m, 1h)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Show logs before a time (RFC 3339) or a duration ago
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Container
    pub container: String,
}

#[derive(Debug, Clone, Args)]
pub struct StartArgs {
    /// Attach stdout and stderr and return the container's exit status
    #[arg(short, long)]
    pub attach: bool,
    /// Attach stdin
    #[arg(short, long)]
    pub interactive: bool,
    /// Keys that detach from a terminal container (default ctrl-p,ctrl-q; "" disables)
    #[arg(long, value_name = "KEYS")]
    pub detach_keys: Option<String>,
    /// Pass the signals den receives to the container (podman's; with -a)
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub sig_proxy: bool,
    /// Start every container that is not running (podman's)
    #[arg(long, conflicts_with = "containers")]
    pub all: bool,
    /// Containers
    #[arg(required_unless_present = "all")]
    pub containers: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "time", alias = "timeout", value_name = "SECONDS")]
    pub time: Option<u32>,
    /// Signal to send (default: the container's stop signal)
    #[arg(short, long)]
    pub signal: Option<String>,
    /// Every running container (podman's)
    #[arg(short, long, conflicts_with = "containers")]
    pub all: bool,
    /// Containers
    #[arg(required_unless_present = "all")]
    pub containers: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct KillArgs {
    /// Signal to send
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    /// Containers
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ContainersArgs {
    /// Containers
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct CommitArgs {
    /// Apply a Dockerfile instruction: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME,
    /// WORKDIR, ONBUILD
    #[arg(short, long = "change", value_name = "INSTRUCTION")]
    pub change: Vec<String>,
    /// The commit message
    #[arg(short, long)]
    pub message: Option<String>,
    /// The author ("Name <email>")
    #[arg(short, long)]
    pub author: Option<String>,
    /// Pause the container while committing (default true; --pause=false copies it running)
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub pause: bool,
    /// The container (name, id or id prefix)
    pub container: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct StatsArgs {
    /// Show every container (default: the running ones); stopped ones read zero, as docker's do
    #[arg(short, long)]
    pub all: bool,
    /// Print one reading and exit
    #[arg(long)]
    pub no_stream: bool,
    /// Show full container ids (.ID)
    #[arg(long)]
    pub no_trunc: bool,
    /// Format: table, json, or a Go template (.Container, .Name, .ID, .CPUPerc, .MemUsage,
    /// .MemPerc, .NetIO, .BlockIO, .PIDs)
    #[arg(long)]
    pub format: Option<String>,
    /// Containers (default: every running one)
    pub containers: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct TopArgs {
    /// The container (name, id or id prefix)
    pub container: String,
    /// Options for the host's ps (default -ef)
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ps OPTIONS"
    )]
    pub ps_args: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct RenameArgs {
    /// The container (name, id or id prefix)
    pub container: String,
    /// Its new name
    pub new_name: String,
}

#[derive(Debug, Clone, Args)]
pub struct AttachArgs {
    /// Do not attach stdin
    #[arg(long)]
    pub no_stdin: bool,
    /// Keys that detach from a terminal container (default ctrl-p,ctrl-q; "" disables)
    #[arg(long, value_name = "KEYS")]
    pub detach_keys: Option<String>,
    /// Pass the signals den receives to a container without a terminal; with =false, ctrl-c
    /// ends den alone and the container runs on
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub sig_proxy: bool,
    /// Container
    pub container: String,
}

#[derive(Debug, Clone, Args)]
#[command(disable_help_flag = true)]
pub struct ExecArgs {
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Keep stdin open
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal
    #[arg(short, long)]
    pub tty: bool,
    /// Run in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Set an environment variable
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read environment variables from a file
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<std::path::PathBuf>,
    /// Working directory inside the container
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// User: UID[:GID] or NAME[:GROUP]
    #[arg(short, long)]
    pub user: Option<String>,
    /// Keys that detach from the process's terminal, which runs on (default ctrl-p,ctrl-q; ""
    /// disables)
    #[arg(long, value_name = "KEYS")]
    pub detach_keys: Option<String>,
    /// Give extended privileges (accepted; the container's root is the user's own anyway)
    #[arg(long)]
    pub privileged: bool,
    /// Container
    pub container: String,
    /// Command and arguments
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct CpArgs {
    /// Always follow symbolic links in SRC_PATH
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// Archive mode (accepted; ownership is that of the container's root)
    #[arg(short, long)]
    pub archive: bool,
    /// Suppress progress output (accepted; den prints none)
    #[arg(short, long)]
    pub quiet: bool,
    /// CONTAINER:SRC_PATH or a host path, or - for a tar on stdin
    pub src: String,
    /// CONTAINER:DEST_PATH or a host path, or - for a tar on stdout
    pub dest: String,
}

#[derive(Debug, Clone, Args)]
pub struct RmArgs {
    /// Kill and remove a running container
    #[arg(short, long)]
    pub force: bool,
    /// Remove anonymous volumes of the container
    #[arg(short, long)]
    pub volumes: bool,
    /// Remove every container (running ones too with -f) (podman's)
    #[arg(short, long, conflicts_with = "containers")]
    pub all: bool,
    /// With -f, seconds to wait for the stop signal to end a running container before
    /// killing it (podman's; default: kill at once)
    #[arg(short = 't', long = "time", value_name = "SECONDS")]
    pub time: Option<u32>,
    /// Containers
    #[arg(required_unless_present = "all")]
    pub containers: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// Format the output with a Go template
    #[arg(short, long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Display total file sizes (accepted)
    #[arg(short, long)]
    pub size: bool,
    /// Type of object (container, volume)
    #[arg(long = "type", value_name = "TYPE")]
    pub kind: Option<String>,
    /// Containers
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct PruneArgs {
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Filter (accepted: until=, label=)
    #[arg(long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
}

impl PruneArgs {
    /// docker's warning before `container prune`.
    pub const WARNING: &str = "This will remove all stopped containers.";
}

/// docker's warning before `volume prune`.
pub const VOLUME_PRUNE_WARNING: &str =
    "This will remove anonymous local volumes not used by at least one container.";

/// The warning before `system reset` removes everything in the store at `root`.
pub fn reset_warning(root: &std::path::Path) -> String {
    format!(
        "This removes every container, image and layer in {}.",
        root.display()
    )
}

impl LogsArgs {
    pub fn options(&self) -> crate::ops::Result<crate::ops::container::LogsOptions> {
        use crate::store::ContainersError;
        let now = chrono::Utc::now();
        let time = |t: &Option<String>| super::optional_time(t, now, ContainersError::BadFilter);
        let tail = match self.tail.as_str() {
            "all" | "-1" => None,
            n => Some(
                n.parse()
                    .map_err(|_| ContainersError::BadFilter(format!("--tail {n}")))?,
            ),
        };
        Ok(crate::ops::container::LogsOptions {
            follow: self.follow,
            read: crate::runtime::logs::ReadOptions {
                timestamps: self.timestamps,
                tail,
                since: time(&self.since)?,
                until: time(&self.until)?,
            },
        })
    }
}
