//! Command-line flags shared by `den` and the den-* tools, and how they report.
//!
//! Each verb's flags are one clap struct here, flattened into the tool that serves the verb;
//! `den VERB ...` passes its arguments unchanged to that tool, so both parse the same flags the
//! same way. [`note`] and [`confirm`] speak to the user on stderr; errors are printed by the
//! binaries (`bin/common.rs`), once.

pub mod container;
pub mod coverage;
pub mod docker;
pub mod health;
pub mod image;
pub mod limits;
pub mod manifest;
pub mod progress;
pub mod registry;
pub mod run;
pub mod system;

use std::path::PathBuf;

use clap::Args;

/// Flags every tool takes.
#[derive(Debug, Clone, Args, Default)]
pub struct GlobalArgs {
    /// Store root [default: $XDG_DATA_HOME/den, ~/.local/share/den]
    #[arg(long, global = true, env = "DEN_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Log level: error, warn, info, debug, trace
    #[arg(
        long,
        global = true,
        env = "DEN_LOG",
        value_name = "LEVEL",
        default_value = "warn"
    )]
    pub log_level: String,
}

#[derive(Debug, Clone, Args)]
pub struct PullArgs {
    /// Image to pull: NAME[:TAG|@DIGEST]
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub image: String,
    /// Print only the image's name
    #[arg(short, long)]
    pub quiet: bool,
    /// Platform to pull from a multi-platform image (os/arch[/variant])
    #[arg(long)]
    pub platform: Option<String>,
    #[command(flatten)]
    pub access: registry::AccessArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ImagesArgs {
    /// Only this repository (and tag)
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub repository: Option<String>,
    /// Print only image ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate ids
    #[arg(long)]
    pub no_trunc: bool,
    /// Show all images (accepted for docker compatibility; den keeps no intermediate images)
    #[arg(short, long)]
    pub all: bool,
    /// Filter: dangling=true|false, reference=PATTERN, label=KEY[=VALUE], before=IMAGE,
    /// since=IMAGE
    #[arg(short, long, value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Format: table, json, or a Go template ({{.Repository}}:{{.Tag}})
    #[arg(long)]
    pub format: Option<String>,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Order: created (newest first), id, repository, size, tag (podman's)
    #[arg(long, value_name = "KEY", value_parser = ["created", "id", "repository", "size", "tag"])]
    pub sort: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct SaveArgs {
    /// Write to a file instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Archive format: docker-archive (docker's, also an OCI layout) or oci-archive (blobs as
    /// stored, compressed)
    #[arg(
        long,
        value_name = "FORMAT",
        default_value = "docker-archive",
        value_parser = ["docker-archive", "oci-archive"]
    )]
    pub format: String,
    /// Several images in one archive (podman's; den's archives always hold every image named)
    #[arg(short = 'm', long)]
    pub multi_image_archive: bool,
    /// Images to save: NAME[:TAG] (a bare NAME saves every tag of it) or ID
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

impl SaveArgs {
    pub fn options(&self) -> crate::ops::archive::SaveOptions {
        crate::ops::archive::SaveOptions {
            images: self.images.clone(),
            output: self.output.clone(),
            format: Some(self.format.clone()),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Read from a file instead of stdin (plain, gzip or zstd compressed)
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Print only the loaded images' names (den shows no progress either way)
    #[arg(short, long)]
    pub quiet: bool,
}

impl LoadArgs {
    pub fn options(&self) -> crate::ops::archive::LoadOptions {
        crate::ops::archive::LoadOptions {
            input: self.input.clone(),
        }
    }
}

#[derive(Debug, Clone, Args)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Print help (docker's -h is --hostname)
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Run in the background and print the container's id
    #[arg(short, long)]
    pub detach: bool,
    /// Bind mount or volume: HOST-DIR:CTR-DIR[:ro], NAME:CTR-DIR, or CTR-DIR (anonymous)
    #[arg(short, long = "volume", value_name = "SRC:DST[:OPTS]")]
    pub volume: Vec<String>,
    /// Mount: type=bind|volume|tmpfs,source=...,target=...[,readonly]
    #[arg(long, value_name = "SPEC")]
    pub mount: Vec<String>,
    /// Mount a tmpfs: CTR-DIR[:OPTIONS]
    #[arg(long, value_name = "DIR[:OPTS]")]
    pub tmpfs: Vec<String>,
    /// Restart policy: no, always, unless-stopped, on-failure[:N]
    #[arg(long, value_name = "POLICY", default_value = "no")]
    pub restart: String,
    /// Set a label (KEY=VALUE)
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Seconds `stop` waits before killing the container
    #[arg(long, value_name = "SECONDS")]
    pub stop_timeout: Option<u32>,
    /// Signal `stop` sends (default: the image's STOPSIGNAL, else SIGTERM)
    #[arg(long, value_name = "SIGNAL")]
    pub stop_signal: Option<String>,
    /// Publish a container port: [IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp]
    #[arg(short = 'p', long = "publish", value_name = "SPEC")]
    pub publish: Vec<String>,
    /// Publish every port the image exposes on a free host port
    #[arg(short = 'P', long)]
    pub publish_all: bool,
    /// Add a line to /etc/hosts: NAME:IP
    #[arg(long, value_name = "NAME:IP")]
    pub add_host: Vec<String>,
    /// DNS server for /etc/resolv.conf
    #[arg(long, value_name = "IP")]
    pub dns: Vec<String>,
    /// Keep stdin open and pass it to the container
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal
    #[arg(short, long)]
    pub tty: bool,
    /// Attach STDIN, STDOUT or STDERR (repeatable; the default is STDOUT and STDERR)
    #[arg(short = 'a', long = "attach", value_name = "STREAM")]
    pub attach: Vec<String>,
    /// Keys that detach from a terminal container: ctrl-<x> or characters, comma-separated
    /// (default ctrl-p,ctrl-q; "" disables)
    #[arg(long, value_name = "KEYS")]
    pub detach_keys: Option<String>,
    /// Pass the signals den receives to the container; with =false, ctrl-c leaves it running
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub sig_proxy: bool,
    /// Name the container
    #[arg(long)]
    pub name: Option<String>,
    /// Set an environment variable (KEY=VALUE, or KEY to pass den's own)
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read environment variables from a file, one KEY=VALUE per line
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// User to run as: UID[:GID] or NAME[:GROUP]
    #[arg(short, long)]
    pub user: Option<String>,
    /// Override the image's entrypoint ("" clears it)
    #[arg(long, allow_hyphen_values = true)]
    pub entrypoint: Option<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Network: slirp4netns (the default; :allow_host_loopback=true to reach the host's
    /// loopback at 10.0.2.2), pasta, host, or none
    #[arg(long, alias = "net", value_name = "MODE")]
    pub network: Option<String>,
    /// Another name for the container on its user network
    #[arg(long = "network-alias", alias = "net-alias", value_name = "NAME")]
    pub network_alias: Vec<String>,
    /// The container's IPv4 address on its user network
    #[arg(long, value_name = "ADDRESS")]
    pub ip: Option<String>,
    /// Platform to pull if the image is not local
    #[arg(long)]
    pub platform: Option<String>,
    /// Pull the image: missing (the default), always, never (podman's true/false/newer too)
    #[arg(long, value_name = "POLICY", num_args = 0..=1, default_missing_value = "always")]
    pub pull: Option<String>,
    /// Write the container's id to FILE (which must not exist)
    #[arg(long, value_name = "FILE")]
    pub cidfile: Option<PathBuf>,
    /// Remove a container of the same --name first, running or not (podman's)
    #[arg(long, requires = "name")]
    pub replace: bool,
    /// Add an annotation to the container's OCI spec (KEY=VALUE)
    #[arg(long, value_name = "KEY=VALUE")]
    pub annotation: Vec<String>,
    /// A host device (HOST[:CONTAINER][:rwm]) or a CDI device (vendor/class=name)
    #[arg(long, value_name = "DEVICE")]
    pub device: Vec<String>,
    /// GPUs as NVIDIA CDI devices: all, a count, or device=ID[,ID]
    #[arg(long, value_name = "GPUS")]
    pub gpus: Option<String>,
    /// keep-groups: keep your supplementary groups in the container (podman's)
    #[arg(long, value_name = "GROUP")]
    pub group_add: Vec<String>,
    /// Time zone: a name under /usr/share/zoneinfo, or local for the host's (podman's)
    #[arg(long, value_name = "TZ")]
    pub tz: Option<String>,
    /// UTS namespace: private (the default) or host (the host's host name)
    #[arg(long, value_name = "MODE")]
    pub uts: Option<String>,
    /// IPC namespace: private (the default) or host (the host's shared memory and SysV IPC)
    #[arg(long, value_name = "MODE")]
    pub ipc: Option<String>,
    /// PID namespace: private (the default) or host (the host's processes, and its /proc)
    #[arg(long, value_name = "MODE")]
    pub pid: Option<String>,
    /// User namespace: host (den's, where the container's root is you; the default) or
    /// keep-id (your own uid and gid inside, podman's)
    #[arg(long, value_name = "MODE")]
    pub userns: Option<String>,
    /// Pass den's whole environment to the container, under -e and --env-file (podman's;
    /// the config's [run] env_host makes it the default, =false turns it off)
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub env_host: Option<bool>,
    /// Mount the container's root filesystem read-only
    #[arg(long)]
    pub read_only: bool,
    #[command(flatten)]
    pub limits: limits::LimitArgs,
    #[command(flatten)]
    pub health: health::HealthArgs,
    /// Log driver: k8s-file (the default), json-file, none, passthrough
    #[arg(long, value_name = "DRIVER")]
    pub log_driver: Option<String>,
    /// Log driver option: max-size=SIZE (10k, 10m, 1g), max-file=N
    #[arg(long, value_name = "KEY=VALUE")]
    pub log_opt: Vec<String>,
    /// Security option: seccomp=unconfined, seccomp=PROFILE.json (docker's or OCI's format),
    /// no-new-privileges, fake-ids (single-uid mode: chown, setuid, setgroups succeed)
    #[arg(long, value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// Add a capability (NET_ADMIN, CAP_NET_ADMIN or ALL) to docker's default set
    #[arg(long, value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop a capability (CHOWN, CAP_CHOWN or ALL) from docker's default set
    #[arg(long, value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Every capability of den's user namespace, no seccomp filter, and the host devices you
    /// may open (never more than your own user's rights)
    #[arg(long)]
    pub privileged: bool,
    /// Run a small init as PID 1 that reaps zombies and forwards signals (den's own)
    #[arg(long)]
    pub init: bool,
    /// Set a namespaced sysctl: net.* (own network), kernel.shm*, kernel.msg*, kernel.sem,
    /// fs.mqueue.* (own IPC)
    #[arg(long, value_name = "KEY=VALUE")]
    pub sysctl: Vec<String>,
    /// Set a resource limit: NAME=SOFT[:HARD] (nofile, nproc, core, stack, ...; -1 unlimited)
    #[arg(long, value_name = "NAME=SOFT[:HARD]")]
    pub ulimit: Vec<String>,
    /// Size of /dev/shm (64m by default)
    #[arg(long, value_name = "SIZE")]
    pub shm_size: Option<String>,
    /// Read OCI hook definitions from DIR instead of den's hooks.d directories (repeatable;
    /// later ones win)
    #[arg(long, value_name = "DIR")]
    pub hooks_dir: Vec<PathBuf>,
    /// Run a single-file image (`den image squash`) instead of a store image; then every
    /// argument is the command
    #[arg(long, value_name = "FILE")]
    pub image_file: Option<PathBuf>,
    /// Image to run: a name, an id, or a .sqsh file's path
    #[arg(value_name = "IMAGE", required_unless_present = "image_file")]
    pub image: Option<String>,
    /// Command and arguments (default: the image's)
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
}

/// Verbs whose first positional argument is an image followed by the container's command.
const IMAGE_THEN_COMMAND: &[&str] = &["run", "create", "exec"];

/// docker stops reading options at the image: in `den run busybox ls -l`, `-l` is the command's.
/// clap would take a flag it knows (`den run busybox id -u`) for den's own, so an `--` is put
/// after the image of those verbs. Which options take values comes from `cmd` itself, so every
/// flag added later is handled. Arguments are returned unchanged when there is no such verb.
pub fn end_options_after_image(
    cmd: &clap::Command,
    args: Vec<std::ffi::OsString>,
) -> Vec<std::ffi::OsString> {
    let strs: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let Some(vpos) = strs
        .iter()
        .skip(1)
        .position(|a| IMAGE_THEN_COMMAND.contains(&a.as_str()))
        .map(|p| p + 1)
    else {
        return args;
    };
    let Some(sub) = cmd.find_subcommand(&strs[vpos]) else {
        return args;
    };
    let takes_value_long = |name: &str| {
        sub.get_arguments().chain(cmd.get_arguments()).any(|a| {
            (a.get_long() == Some(name) || a.get_all_aliases().is_some_and(|al| al.contains(&name)))
                && a.get_action().takes_values()
                && !a.is_require_equals_set()
        })
    };
    let takes_value_short = |c: char| {
        sub.get_arguments()
            .chain(cmd.get_arguments())
            .any(|a| a.get_short() == Some(c) && a.get_action().takes_values())
    };
    let mut i = vpos + 1;
    while i < strs.len() {
        let a = &strs[i];
        if a == "--" {
            return args; // already explicit
        }
        if let Some(long) = a.strip_prefix("--") {
            if !long.contains('=') && takes_value_long(long) {
                i += 1;
            }
        } else if a.len() > 1 && a.starts_with('-') {
            for (k, c) in a.chars().skip(1).enumerate() {
                if takes_value_short(c) {
                    // The value is the rest of this argument, or the next one.
                    if k + 2 == a.chars().count() {
                        i += 1;
                    }
                    break;
                }
            }
        } else {
            // The image: what follows is the command.
            let mut out = args;
            out.insert(i + 1, "--".into());
            return out;
        }
        i += 1;
    }
    args
}

/// The tracing level for a `--log-level` value (the binaries install the subscriber).
pub fn log_level(level: &str) -> tracing::Level {
    match level {
        "trace" => tracing::Level::TRACE,
        "debug" => tracing::Level::DEBUG,
        "info" => tracing::Level::INFO,
        "error" => tracing::Level::ERROR,
        _ => tracing::Level::WARN,
    }
}

/// Print a note for the user on stderr.
#[allow(
    clippy::print_stderr,
    reason = "the edge: notes for the user go to stderr"
)]
pub fn note(text: &str) {
    eprintln!("den: {text}");
}

/// docker's question before it deletes (`prune`, `reset`): `WARNING! {what}` and a y/N answer
/// read from stdin. True for `y`, `Y` or `yes`.
#[allow(
    clippy::print_stderr,
    reason = "the edge: docker's prompt goes to stderr"
)]
pub fn confirm(what: &str) -> bool {
    eprint!("WARNING! {what}\nAre you sure you want to continue? [y/N] ");
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes")
}

/// [`confirm`] when a person can answer (stdin is a terminal); in scripts, proceed.
pub fn confirm_at_terminal(what: &str) -> bool {
    use std::io::IsTerminal;
    !std::io::stdin().is_terminal() || confirm(what)
}

/// A `--since`/`--until` value in docker's time syntax ([`crate::ops::filter::parse_time`],
/// relative to `now`), or the error `bad` makes of it.
pub(crate) fn optional_time<E: Into<crate::ops::Error>>(
    value: &Option<String>,
    now: chrono::DateTime<chrono::Utc>,
    bad: impl Fn(String) -> E,
) -> crate::ops::Result<Option<chrono::DateTime<chrono::Utc>>> {
    match value {
        None => Ok(None),
        Some(t) => crate::ops::filter::parse_time(t, now)
            .map(Some)
            .ok_or_else(|| bad(t.clone()).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser, Subcommand};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        global: GlobalArgs,
        #[command(subcommand)]
        verb: Verb,
    }

    #[derive(Subcommand)]
    enum Verb {
        Run(Box<RunArgs>),
    }

    fn parse(args: &[&str]) -> RunArgs {
        let argv: Vec<std::ffi::OsString> = std::iter::once("den-run")
            .chain(args.iter().copied())
            .map(Into::into)
            .collect();
        let argv = end_options_after_image(&Cli::command(), argv);
        match Cli::try_parse_from(argv).unwrap().verb {
            Verb::Run(r) => *r,
        }
    }

    #[test]
    fn options_stop_at_the_image() {
        let r = parse(&[
            "run", "--rm", "-u", "0", "-e", "A=1", "-it", "busybox", "id", "-u", "--rm",
        ]);
        assert!(r.rm && r.interactive && r.tty);
        assert_eq!(r.user.as_deref(), Some("0"));
        assert_eq!(r.image.as_deref(), Some("busybox"));
        assert_eq!(r.command, ["id", "-u", "--rm"]);
        let r = parse(&[
            "--root",
            "/x",
            "run",
            "--name=web",
            "-eB=2",
            "--entrypoint",
            "sh",
            "img",
            "-c",
            "echo",
        ]);
        assert_eq!(
            (
                r.name.as_deref(),
                r.env.clone(),
                r.image.as_deref().unwrap_or_default()
            ),
            (Some("web"), vec!["B=2".to_string()], "img")
        );
        assert_eq!(r.command, ["-c", "echo"]);
        let r = parse(&["run", "img"]);
        assert!(r.command.is_empty());
    }
}
