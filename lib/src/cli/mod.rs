//! Command-line flags shared by `den` and the den-* tools, and how they report.
//!
//! Each verb's flags are one clap struct here, flattened into the tool that serves the verb;
//! `den VERB ...` passes its arguments unchanged to that tool, so both parse the same flags the
//! same way. [`fail`] prints an error once, docker-style, with its hint.

pub mod progress;

use std::path::PathBuf;

use clap::Args;

use crate::error::Diagnose;

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
    /// Keep stdin open and pass it to the container
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal
    #[arg(short, long)]
    pub tty: bool,
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
    /// Network: host (the default for now) or none
    #[arg(long, alias = "net", value_name = "MODE")]
    pub network: Option<String>,
    /// Platform to pull if the image is not local
    #[arg(long)]
    pub platform: Option<String>,
    /// Mount the container's root filesystem read-only
    #[arg(long)]
    pub read_only: bool,
    /// Image to run
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// Command and arguments (default: the image's)
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
}

impl RunArgs {
    pub fn options(&self) -> crate::ops::run::RunOptions {
        crate::ops::run::RunOptions {
            image: self.image.clone(),
            command: self.command.clone(),
            rm: self.rm,
            interactive: self.interactive,
            tty: self.tty,
            name: self.name.clone(),
            env: self.env.clone(),
            env_files: self.env_file.clone(),
            workdir: self.workdir.clone(),
            user: self.user.clone(),
            entrypoint: self.entrypoint.clone(),
            hostname: self.hostname.clone(),
            network: self.network.clone(),
            platform: self.platform.clone(),
            read_only: self.read_only,
        }
    }
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

/// Print `err` once (`den: error: ...` and `hint: ...`) and return the exit status for it.
pub fn fail(err: &crate::error::Error) -> i32 {
    if let crate::error::Error::Reported(code) = err {
        return *code;
    }
    eprintln!("den: error: {}", crate::error::chain(err));
    if let Some(h) = err.hint() {
        eprintln!("hint: {h}");
    }
    err.exit_code()
}

/// Print a note for the user on stderr.
pub fn note(text: &str) {
    eprintln!("den: {text}");
}
