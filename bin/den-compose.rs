//! den-compose: `den compose`, docker compose's verbs over a Compose project (up, down, ps,
//! logs, exec, run, build, pull, push, start, stop, restart, kill, config, ls). Each verb reads
//! the project ([`den::compose::load::load`]) and calls one function of
//! [`den::compose::verbs`], which runs den's own binaries; `exec` and `run` end by becoming
//! `den exec` / `den run`, so their exit status is the command's.

#![deny(unsafe_code)]
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a binary is the edge: it writes what the user reads"
)]

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Mutex;

use clap::{Args, Parser, Subcommand};
use den::compose::engine::Den;
use den::compose::model::Project;
use den::compose::verbs::{self, down, logs, run, up};
use den::compose::{ComposeError, ProjectOptions};

#[path = "common.rs"]
mod common;

#[derive(Parser)]
#[command(
    name = "den-compose",
    bin_name = "den compose",
    version,
    about = "Define and run multi-container applications (the Compose Specification)"
)]
pub(crate) struct Cli {
    #[command(flatten)]
    global: den::cli::GlobalArgs,
    /// Compose configuration files (several are merged in order)
    #[arg(short = 'f', long = "file", global = true, value_name = "FILE")]
    file: Vec<PathBuf>,
    /// Project name (env COMPOSE_PROJECT_NAME)
    #[arg(short = 'p', long, global = true, value_name = "NAME")]
    project_name: Option<String>,
    /// Specify an alternate working directory (default: the first file's directory)
    #[arg(long, global = true, value_name = "DIR")]
    project_directory: Option<PathBuf>,
    /// Enable services of a profile (env COMPOSE_PROFILES)
    #[arg(long = "profile", global = true, value_name = "PROFILE")]
    profile: Vec<String>,
    /// Variables for interpolation (default: the project directory's .env)
    #[arg(long = "env-file", global = true, value_name = "FILE")]
    env_file: Vec<PathBuf>,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand)]
enum Verb {
    /// Create and start containers
    Up(UpArgs),
    /// Stop and remove containers, networks (volumes with -v, images with --rmi)
    Down(DownArgs),
    /// List containers
    Ps(PsArgs),
    /// View output from containers
    Logs(LogsArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Run a one-off command on a service
    Run(RunArgs),
    /// Build or rebuild services
    Build {
        /// Do not use cache when building the image
        #[arg(long)]
        no_cache: bool,
        services: Vec<String>,
    },
    /// Pull service images
    Pull { services: Vec<String> },
    /// Push service images
    Push { services: Vec<String> },
    /// Start services
    Start { services: Vec<String> },
    /// Stop services
    Stop(StopArgs),
    /// Restart service containers
    Restart(StopArgs),
    /// Force stop service containers
    Kill {
        /// SIGNAL to send to the container
        #[arg(short, long, default_value = "SIGKILL")]
        signal: String,
        services: Vec<String>,
    },
    /// Parse, resolve and render the compose file in canonical format
    Config {
        /// Print the service names, one per line
        #[arg(long)]
        services: bool,
        /// Print the volume names, one per line
        #[arg(long)]
        volumes: bool,
        /// Only validate the configuration, don't print anything
        #[arg(short, long)]
        quiet: bool,
    },
    /// List running compose projects
    Ls {
        /// Show all stopped Compose projects
        #[arg(short, long)]
        all: bool,
    },
    /// Show the den compose version information
    Version,
}

#[derive(Args)]
struct UpArgs {
    /// Detached mode: run containers in the background
    #[arg(short, long)]
    detach: bool,
    /// Build images before starting containers
    #[arg(long, conflicts_with = "no_build")]
    build: bool,
    /// Don't build an image, even if it's missing
    #[arg(long)]
    no_build: bool,
    /// Recreate containers even if their configuration hasn't changed
    #[arg(long)]
    force_recreate: bool,
    /// If containers already exist, don't recreate them
    #[arg(long, conflicts_with = "force_recreate")]
    no_recreate: bool,
    /// Don't start linked services
    #[arg(long)]
    no_deps: bool,
    /// Remove containers for services not defined in the Compose file
    #[arg(long)]
    remove_orphans: bool,
    /// Wait for services to be running|healthy (implies detached mode)
    #[arg(long)]
    wait: bool,
    /// Produce monochrome output
    #[arg(long)]
    no_color: bool,
    /// Don't print prefix in logs
    #[arg(long)]
    no_log_prefix: bool,
    services: Vec<String>,
}

#[derive(Args)]
struct DownArgs {
    /// Remove named volumes declared in the "volumes" section and anonymous volumes
    #[arg(short, long)]
    volumes: bool,
    /// Remove images used by services: "local" (no custom tag) or "all"
    #[arg(long, value_name = "TYPE", value_parser = ["local", "all"])]
    rmi: Option<String>,
    /// Remove containers for services not defined in the Compose file
    #[arg(long)]
    remove_orphans: bool,
    /// Shutdown timeout in seconds
    #[arg(short, long)]
    timeout: Option<u32>,
}

#[derive(Args)]
struct PsArgs {
    /// Show all stopped containers
    #[arg(short, long)]
    all: bool,
    /// Only display IDs
    #[arg(short, long)]
    quiet: bool,
    /// Display services
    #[arg(long)]
    services: bool,
    /// Format: table, json, or a Go template (den ps's fields)
    #[arg(long)]
    format: Option<String>,
    #[arg(value_name = "SERVICE")]
    names: Vec<String>,
}

#[derive(Args)]
struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    follow: bool,
    /// Number of lines to show from the end of the logs for each container
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Produce monochrome output
    #[arg(long)]
    no_color: bool,
    /// Don't print prefix in logs
    #[arg(long)]
    no_log_prefix: bool,
    /// Show timestamps
    #[arg(short, long)]
    timestamps: bool,
    services: Vec<String>,
}

#[derive(Args)]
struct ExecArgs {
    /// Detached mode: run the command in the background
    #[arg(short, long)]
    detach: bool,
    /// Set environment variables
    #[arg(short, long = "env", value_name = "KEY=VAL")]
    env: Vec<String>,
    /// Disable pseudo-TTY allocation (default: on when stdin is a terminal)
    #[arg(short = 'T', long = "no-TTY")]
    no_tty: bool,
    /// Run the command as this user
    #[arg(short, long)]
    user: Option<String>,
    /// Path to workdir directory for this command
    #[arg(short, long)]
    workdir: Option<String>,
    /// Index of the container if the service has several replicas
    #[arg(long, default_value_t = 1)]
    index: usize,
    /// Give extended privileges to the process
    #[arg(long)]
    privileged: bool,
    service: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    command: Vec<String>,
}

#[derive(Args)]
struct RunArgs {
    /// Automatically remove the container when it exits
    #[arg(long)]
    rm: bool,
    /// Run the container in the background and print its ID
    #[arg(short, long)]
    detach: bool,
    /// Set environment variables
    #[arg(short, long = "env", value_name = "KEY=VAL")]
    env: Vec<String>,
    /// Don't start linked services
    #[arg(long)]
    no_deps: bool,
    /// Assign a name to the container
    #[arg(long)]
    name: Option<String>,
    /// Disable pseudo-TTY allocation (default: on when stdin is a terminal)
    #[arg(short = 'T', long = "no-TTY")]
    no_tty: bool,
    /// Override the entrypoint of the image
    #[arg(long, allow_hyphen_values = true)]
    entrypoint: Option<String>,
    /// Run as this user
    #[arg(short, long)]
    user: Option<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    workdir: Option<String>,
    /// Bind mount a volume
    #[arg(short, long = "volume")]
    volume: Vec<String>,
    /// Publish a container's port(s) to the host
    #[arg(short, long = "publish")]
    publish: Vec<String>,
    /// Run the command with the service's ports published
    #[arg(long)]
    service_ports: bool,
    /// Build the image before starting the container
    #[arg(long)]
    build: bool,
    service: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(Args)]
struct StopArgs {
    /// Seconds to wait for the container to stop before killing it
    #[arg(short, long)]
    timeout: Option<u32>,
    services: Vec<String>,
}

fn main() -> std::process::ExitCode {
    let cli: Cli = common::parse();
    common::init_logging(&cli.global.log_level);
    let code = match dispatch(cli) {
        Ok(code) => code,
        Err(ComposeError::Reported(r)) => r.0,
        Err(e) => return common::fail(&e),
    };
    std::process::ExitCode::from(code.clamp(0, 255) as u8)
}

fn progress(line: &str) {
    eprintln!("{line}");
}

/// The project the command line and the environment name.
fn project(cli: &Cli) -> Result<Project, ComposeError> {
    let opts = ProjectOptions {
        files: cli.file.clone(),
        project_name: cli.project_name.clone(),
        project_directory: cli.project_directory.clone(),
        profiles: cli.profile.clone(),
        env_files: cli.env_file.clone(),
    };
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let p = den::compose::load::load(&opts, &env, &cwd)?;
    for w in &p.warnings {
        eprintln!("WARN {w}");
    }
    Ok(p)
}

fn dispatch(cli: Cli) -> Result<i32, ComposeError> {
    if let Verb::Version = cli.verb {
        println!("den compose version {}", env!("CARGO_PKG_VERSION"));
        return Ok(0);
    }
    let den = Den::find()?;
    if let Verb::Ls { all } = cli.verb {
        print!("{}", verbs::ls(&den, all)?);
        return Ok(0);
    }
    let p = project(&cli)?;
    match cli.verb {
        Verb::Up(a) => up_verb(&den, &p, a),
        Verb::Down(a) => {
            let opts = down::DownOptions {
                volumes: a.volumes,
                rmi: a.rmi.map(|r| {
                    if r == "all" {
                        down::Rmi::All
                    } else {
                        down::Rmi::Local
                    }
                }),
                remove_orphans: a.remove_orphans,
                timeout: a.timeout,
            };
            down::down(&den, &p, &opts, &progress)?;
            Ok(0)
        }
        Verb::Ps(a) => ps(&den, &p, a),
        Verb::Logs(a) => {
            let names: Vec<String> = verbs::containers(&den, &p, &a.services, true)?
                .into_iter()
                .map(|e| e.name)
                .collect();
            let opts = logs::LogOptions {
                follow: a.follow,
                tail: (a.tail != "all").then_some(a.tail),
                timestamps: a.timestamps,
                color: !a.no_color && std::io::stdout().is_terminal(),
                prefix: !a.no_log_prefix,
            };
            logs::follow(&den, &names, &opts, &stdout(), &|| false)?;
            Ok(0)
        }
        Verb::Exec(a) => exec(&den, &p, a),
        Verb::Run(a) => run_verb(&den, &p, a),
        Verb::Build { no_cache, services } => image_verb(&den, &p, "build", &services, no_cache),
        Verb::Pull { services } => image_verb(&den, &p, "pull", &services, false),
        Verb::Push { services } => image_verb(&den, &p, "push", &services, false),
        Verb::Start { services } => on_containers(&den, &p, "start", &[], &services),
        Verb::Stop(a) => on_containers(&den, &p, "stop", &timeout(a.timeout), &a.services),
        Verb::Restart(a) => on_containers(&den, &p, "restart", &timeout(a.timeout), &a.services),
        Verb::Kill { signal, services } => {
            on_containers(&den, &p, "kill", &["--signal".into(), signal], &services)
        }
        Verb::Config {
            services,
            volumes,
            quiet,
        } => {
            if services {
                p.active.iter().for_each(|s| println!("{s}"));
            } else if volumes {
                p.volumes.keys().for_each(|v| println!("{v}"));
            } else if !quiet {
                print!("{}", verbs::config(&p)?);
            }
            Ok(0)
        }
        Verb::Ls { .. } | Verb::Version => Ok(0),
    }
}

fn stdout() -> Mutex<Box<dyn std::io::Write + Send>> {
    Mutex::new(Box::new(std::io::stdout()))
}

fn timeout(t: Option<u32>) -> Vec<String> {
    t.map(|t| vec!["--time".to_string(), t.to_string()])
        .unwrap_or_default()
}

fn up_verb(den: &Den, p: &Project, a: UpArgs) -> Result<i32, ComposeError> {
    let opts = up::UpOptions {
        services: a.services,
        build: if a.build {
            Some(true)
        } else if a.no_build {
            Some(false)
        } else {
            None
        },
        force_recreate: a.force_recreate,
        no_recreate: a.no_recreate,
        no_deps: a.no_deps,
        remove_orphans: a.remove_orphans,
        wait: a.wait,
    };
    let names = up::up(den, p, &opts, &progress)?;
    if a.detach || a.wait {
        return Ok(0);
    }
    let log = logs::LogOptions {
        color: !a.no_color && std::io::stdout().is_terminal(),
        prefix: !a.no_log_prefix,
        ..Default::default()
    };
    run::attach(den, &names, &log, &stdout(), &progress)
}

fn ps(den: &Den, p: &Project, a: PsArgs) -> Result<i32, ComposeError> {
    if a.services {
        let found = verbs::containers(den, p, &a.names, a.all)?;
        let mut names: Vec<&str> = found.iter().map(|e| e.service()).collect();
        names.dedup();
        names.iter().for_each(|s| println!("{s}"));
        return Ok(0);
    }
    if let Some(format) = a.format {
        // den ps draws the template, for this project's containers.
        let mut args = vec!["ps".to_string(), "--format".to_string(), format];
        if a.all {
            args.push("--all".into());
        }
        args.extend([
            "--filter".to_string(),
            format!("label={}={}", den::compose::plan::PROJECT, p.name),
        ]);
        print!("{}", den.run(&args)?);
        return Ok(0);
    }
    let found = verbs::containers(den, p, &a.names, a.all)?;
    if a.quiet {
        found.iter().for_each(|e| println!("{}", e.id));
    } else {
        print!("{}", verbs::ps_table(&found));
    }
    Ok(0)
}

fn exec(den: &Den, p: &Project, a: ExecArgs) -> Result<i32, ComposeError> {
    let opts = run::ExecOptions {
        service: a.service,
        index: a.index,
        command: a.command,
        no_tty: a.no_tty,
        stdin_tty: std::io::stdin().is_terminal(),
        detach: a.detach,
        env: a.env,
        user: a.user,
        workdir: a.workdir,
        privileged: a.privileged,
    };
    become_den(den, run::exec(den, p, &opts)?)
}

fn run_verb(den: &Den, p: &Project, a: RunArgs) -> Result<i32, ComposeError> {
    let opts = run::RunOptions {
        service: a.service,
        command: a.command,
        rm: a.rm,
        detach: a.detach,
        no_deps: a.no_deps,
        name: a.name,
        no_tty: a.no_tty,
        stdin_tty: std::io::stdin().is_terminal(),
        service_ports: a.service_ports,
        build: a.build.then_some(true),
        make: den::compose::plan::Make {
            entrypoint: a.entrypoint,
            env: a.env,
            user: a.user,
            workdir: a.workdir,
            volumes: a.volume,
            publish: a.publish,
            ..Default::default()
        },
    };
    become_den(den, run::run(den, p, &opts, &progress)?)
}

/// Replace this process with `den ARGS`: the command's terminal, signals and exit status.
fn become_den(den: &Den, args: Vec<String>) -> Result<i32, ComposeError> {
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let err = den::sys::exec(&den.path, &args, &[] as &[(&str, &str)]);
    Err(ComposeError::Spawn {
        tool: den.path.clone(),
        source: std::io::Error::other(err.to_string()),
    })
}

fn image_verb(
    den: &Den,
    p: &Project,
    verb: &str,
    services: &[String],
    no_cache: bool,
) -> Result<i32, ComposeError> {
    for args in verbs::image_verbs(p, verb, services, no_cache)? {
        den.run(&args)?;
    }
    Ok(0)
}

fn on_containers(
    den: &Den,
    p: &Project,
    verb: &str,
    flags: &[String],
    services: &[String],
) -> Result<i32, ComposeError> {
    if let Some(args) = verbs::on_containers(den, p, verb, flags, services)? {
        den.run(&args)?;
    }
    Ok(0)
}
