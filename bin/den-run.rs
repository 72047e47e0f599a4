//! den-run: containers (run, create, start, stop, restart, kill, wait, ps, logs, attach, exec,
//! cp, export, rm, inspect, prune), volumes, and `info`.
//!
//! The only den tool that enters namespaces. Verbs that only read records or send signals run
//! as the user on the host; verbs that mount or remove a container's files enter den's user
//! namespace first; `exec` (and `cp` on a running container) join the container's monitor.

#![deny(unsafe_code)]
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a binary is the edge: it writes what the user reads"
)]

use clap::{Parser, Subcommand};
use den::cli::container::*;
use den::cli::{GlobalArgs, RunArgs};
use den::error::UsageError;
use den::ops::{self, Ctx};
use den::render;

#[path = "common.rs"]
mod common;

#[derive(Parser)]
#[command(name = "den-run", version, about = "Containers: run them rootless")]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand)]
enum Verb {
    /// Create and run a container from an image
    Run(Box<RunArgs>),
    /// Create a container without starting it
    Create(Box<RunArgs>),
    /// Start stopped containers
    Start(StartArgs),
    /// Stop running containers (the stop signal, then SIGKILL)
    Stop(StopArgs),
    /// Restart containers
    Restart(StopArgs),
    /// Send a signal to running containers
    Kill(KillArgs),
    /// Wait for containers to stop and print their exit codes
    Wait(ContainersArgs),
    /// List containers
    #[command(alias = "ls", alias = "list")]
    Ps(PsArgs),
    /// Print a container's logs
    Logs(LogsArgs),
    /// List a container's published ports
    Port {
        container: String,
        /// PORT[/PROTO]
        port: Option<String>,
    },
    /// Attach to a running container's output (and input)
    Attach(AttachArgs),
    /// Run a command in a running container
    Exec(Box<ExecArgs>),
    /// Copy files between a container and the host
    Cp(CpArgs),
    /// Write a container's filesystem as a tar archive
    Export(den::cli::image::ExportArgs),
    /// Remove containers
    Rm(RmArgs),
    /// Show containers as JSON
    Inspect(InspectArgs),
    /// Remove all stopped containers
    Prune(PruneArgs),
    /// Manage volumes
    Volume {
        #[command(subcommand)]
        verb: VolumeVerb,
    },
    /// Show what den does on this machine, and why
    Info,
    /// Remove all of den's containers, images and layers for this user
    Reset {
        /// Do not ask for confirmation
        #[arg(short, long)]
        force: bool,
    },
    /// The per-container monitor (started by den itself)
    #[command(name = "__monitor", hide = true)]
    Monitor {
        id: String,
        #[arg(long)]
        wait_attach: bool,
    },
    /// Run a created container in the foreground and exit with its status (den-build's RUN).
    #[command(name = "__run-created", hide = true)]
    RunCreated { id: String },
}

#[derive(Subcommand)]
enum VolumeVerb {
    /// Create a volume
    Create {
        /// Set a label (KEY=VALUE)
        #[arg(short = 'l', long = "label")]
        label: Vec<String>,
        name: Option<String>,
    },
    /// List volumes
    #[command(alias = "list")]
    Ls {
        /// Only display volume names
        #[arg(short, long)]
        quiet: bool,
        /// Format: table, json, or a Go template
        #[arg(long)]
        format: Option<String>,
    },
    /// Remove volumes
    #[command(alias = "remove")]
    Rm {
        /// Remove even when a container uses it
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Show volumes as JSON
    Inspect {
        #[arg(short, long)]
        format: Option<String>,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove volumes no container uses
    Prune {
        #[arg(short, long)]
        force: bool,
        /// Remove named volumes too, not only anonymous ones
        #[arg(short, long)]
        all: bool,
    },
}

fn main() -> std::process::ExitCode {
    let cli: Cli = common::parse();
    common::init_logging(&cli.global.log_level);
    // docker exits 125 when `run` itself fails, and 1 when a verb on a container fails.
    let manage = !matches!(cli.verb, Verb::Run(_) | Verb::Create(_));
    let result = run(cli);
    match result {
        Err(e) if manage && den::error::Diagnose::exit_code(&e) == den::error::EXIT_DEN => {
            den::cli::fail(&e);
            std::process::ExitCode::from(1)
        }
        r => common::exit_with(r),
    }
}

/// Enter den's user namespace (re-executing this program inside), then open the context again.
fn enter(ctx: &Ctx, root: Option<&std::path::Path>) -> den::Result<Ctx> {
    // Paths are resolved outside (inside, den is uid 0 and would pick the wrong runtime
    // directory) and passed on through the environment.
    ctx.paths.export()?;
    den::userns::enter(&den::sys::LinuxSys)?;
    Ctx::new(root, &den::cli::Notes)
}

/// Run `f` on each name: docker prints each success and reports each failure, and fails if any did.
fn each(
    names: &[String],
    mut f: impl FnMut(&str) -> den::Result<Option<String>>,
) -> den::Result<i32> {
    let mut failed = false;
    for n in names {
        match f(n) {
            Ok(Some(line)) => common::print(&format!("{line}\n")),
            Ok(None) => {}
            Err(e) => {
                den::cli::fail(&e);
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

fn run(cli: Cli) -> den::Result<i32> {
    let root = cli.global.root.clone();
    let root = root.as_deref();
    let ctx = Ctx::new(root, &den::cli::Notes)?;
    match cli.verb {
        Verb::Run(a) => {
            let ctx = enter(&ctx, root)?;
            let report = den::cli::progress::PullReport::new(false, true);
            ctx.note_ownership(&mut |t| den::cli::note(t))?;
            let opts = a.options();
            if opts.detach {
                let id = ops::run::run_detached(&ctx, &opts, &report)?;
                common::print(&format!("{id}\n"));
                return Ok(0);
            }
            ops::run::run(&ctx, &opts, &report)
        }
        Verb::Create(a) => {
            let ctx = enter(&ctx, root)?;
            let report = den::cli::progress::PullReport::new(false, true);
            ctx.note_ownership(&mut |t| den::cli::note(t))?;
            let (record, _) = ops::run::create(&ctx, &a.options(), &report)?;
            common::print(&format!("{}\n", record.id));
            Ok(0)
        }
        Verb::Start(a) => {
            if a.attach && a.containers.len() > 1 {
                return Err(den::error::UsageError::BadCopyPaths(
                    "you cannot start and attach multiple containers at once".into(),
                )
                .into());
            }
            let ctx = enter(&ctx, root)?;
            let mut out = std::io::stdout();
            ops::container::start(&ctx, &a.containers, a.attach, a.interactive, &mut out)
        }
        Verb::Stop(a) => each(&a.containers, |n| {
            ops::container::stop(&ctx, n, a.time, a.signal.as_deref())?;
            Ok(Some(n.to_string()))
        }),
        Verb::Restart(a) => {
            for n in &a.containers {
                ops::container::stop(&ctx, n, a.time, a.signal.as_deref())?;
            }
            let ctx = enter(&ctx, root)?;
            let mut out = std::io::stdout();
            ops::container::start(&ctx, &a.containers, false, false, &mut out)
        }
        Verb::Kill(a) => each(&a.containers, |n| {
            ops::container::kill(&ctx, n, &a.signal)?;
            Ok(Some(n.to_string()))
        }),
        Verb::Wait(a) => each(&a.containers, |n| {
            Ok(Some(ops::container::wait(&ctx, n)?.to_string()))
        }),
        Verb::Ps(a) => {
            let opts = ops::container::PsOptions {
                all: a.all,
                last: if a.latest { Some(1) } else { a.last },
                filters: a.filter.clone(),
            };
            let list = ops::container::ps(&ctx, &opts)?;
            let view = render::containers::PsView {
                quiet: a.quiet,
                no_trunc: a.no_trunc,
                format: a.format.as_deref(),
            };
            let pairs: Vec<_> = list.iter().map(|c| (&c.record, &c.state)).collect();
            let out = render::containers::ps(&pairs, &view, chrono::Utc::now())
                .map_err(UsageError::Format)?;
            common::print(&out);
            Ok(0)
        }
        Verb::Logs(a) => {
            ops::container::logs(&ctx, &a.container, &a.options()?)?;
            Ok(0)
        }
        Verb::Port { container, port } => {
            let ports = ops::container::port(&ctx, &container, port.as_deref())?;
            common::print(&render::containers::ports(&ports, port.is_some()));
            Ok(0)
        }
        Verb::Attach(a) => ops::container::attach(&ctx, &a.container, a.no_stdin),
        Verb::Exec(a) => {
            let runtime_dir = ctx.runtime_dir()?;
            let c = ops::exec::join(&ctx, &a.container)?;
            let opts = ops::exec::ExecOptions {
                interactive: a.interactive,
                tty: a.tty,
                detach: a.detach,
                env: a.env.clone(),
                env_files: a.env_file.clone(),
                workdir: a.workdir.clone(),
                user: a.user.clone(),
                command: a.command.clone(),
            };
            ops::exec::exec(&ctx, &c, &runtime_dir, &opts)
        }
        Verb::Cp(a) => {
            let plan = ops::cp::plan(&ctx, &a.src, &a.dest, a.follow_link)?;
            let rootfs_ctx = if plan.running {
                ops::exec::join(&ctx, &plan.container)?;
                Ctx::new(root, &den::cli::Notes)?
            } else {
                enter(&ctx, root)?
            };
            ops::cp::cp(&rootfs_ctx, &plan)?;
            Ok(0)
        }
        Verb::Export(a) => {
            use std::io::IsTerminal;
            if a.output.is_none() && std::io::stdout().is_terminal() {
                den::cli::fail(&den::error::UsageError::TarToTerminal.into());
                return Ok(1);
            }
            let plan = ops::export::plan(&ctx, &a.container)?;
            // Opened before entering namespaces: a relative path is the user's.
            let sink: Box<dyn std::io::Write> = match &a.output {
                Some(p) => Box::new(std::fs::File::create(p).map_err(|source| {
                    den::error::UsageError::WriteOutput {
                        path: p.clone(),
                        source,
                    }
                })?),
                None => Box::new(std::io::stdout().lock()),
            };
            let mut out = std::io::BufWriter::with_capacity(1 << 20, sink);
            let rootfs_ctx = if plan.running {
                ops::exec::join(&ctx, &plan.container)?;
                Ctx::new(root, &den::cli::Notes)?
            } else {
                enter(&ctx, root)?
            };
            ops::export::export(&rootfs_ctx, &plan, &mut out)?;
            Ok(0)
        }
        Verb::Rm(a) => {
            if a.force {
                for n in &a.containers {
                    let _ = ops::container::kill_for_removal(&ctx, n);
                }
            }
            let ctx = enter(&ctx, root)?;
            each(&a.containers, |n| {
                match ops::container::rm(&ctx, n, a.volumes) {
                    // `rm -f` of a container that does not exist is not an error in docker.
                    Err(den::Error::Store(den::store::StoreError::ContainerUnknown(_)))
                        if a.force =>
                    {
                        Ok(None)
                    }
                    r => r.map(|()| Some(n.to_string())),
                }
            })
        }
        Verb::Inspect(a) => {
            let (values, errors) = ops::container::inspect(&ctx, &a.names);
            Ok(common::print_objects(&values, a.format.as_deref(), errors))
        }
        Verb::Prune(a) => {
            if !a.force && !confirm("This will remove all stopped containers.") {
                return Ok(0);
            }
            let ctx = enter(&ctx, root)?;
            let removed = ops::container::prune(&ctx)?;
            let mut out = String::new();
            if !removed.is_empty() {
                out.push_str("Deleted Containers:\n");
                for id in &removed {
                    out.push_str(id);
                    out.push('\n');
                }
                out.push('\n');
            }
            out.push_str("Total reclaimed space: 0B\n");
            common::print(&out);
            Ok(0)
        }
        Verb::Volume { verb } => volume(ctx, root, verb),
        Verb::Info => {
            let ctx = enter(&ctx, root)?;
            common::print(&render::system::info(&ops::info::info(&ctx)?));
            Ok(0)
        }
        Verb::Reset { force } => {
            if force {
                ops::container::kill_all(&ctx)?;
            }
            let ctx = enter(&ctx, root)?;
            if !force
                && !confirm(&format!(
                    "This removes every container, image and layer in {}.",
                    ctx.paths.root.display()
                ))
            {
                return Ok(1);
            }
            ops::system::reset(&ctx)?;
            Ok(0)
        }
        Verb::RunCreated { id } => {
            let ctx = enter(&ctx, root)?;
            ops::run::run_created(&ctx, &id)
        }
        Verb::Monitor { id, wait_attach } => {
            let ctx = enter(&ctx, root)?;
            let store = ctx.store()?;
            let runtime_dir = ctx.runtime_dir()?;
            let rctx = den::runtime::Context {
                sys: &den::sys::LinuxSys,
                store: &store,
                map: ctx.idmap(),
                runtime_dir: &runtime_dir,
            };
            Ok(den::runtime::monitor::run(&rctx, &id, wait_attach))
        }
    }
}

fn volume(ctx: Ctx, root: Option<&std::path::Path>, verb: VolumeVerb) -> den::Result<i32> {
    match verb {
        VolumeVerb::Create { label, name } => {
            let v = ops::volume::create(&ctx, name.as_deref(), &label)?;
            common::print(&format!("{}\n", v.name));
            Ok(0)
        }
        VolumeVerb::Ls { quiet, format } => {
            let values = ops::volume::ls(&ctx)?;
            let out = render::containers::volumes(&values, quiet, format.as_deref())
                .map_err(UsageError::Format)?;
            common::print(&out);
            Ok(0)
        }
        VolumeVerb::Inspect { format, names } => {
            let (values, mut errors) = ops::volume::inspect(&ctx, &names);
            let out = match render::containers::volume_objects(&values, format.as_deref()) {
                Ok(out) => out,
                Err(e) => {
                    errors.push(UsageError::Format(e).into());
                    String::new()
                }
            };
            Ok(common::print_and_fail(&out, errors))
        }
        VolumeVerb::Rm { force, names } => {
            let ctx = enter(&ctx, root)?;
            each(&names, |n| {
                ops::volume::rm(&ctx, n, force)?;
                Ok(Some(n.to_string()))
            })
        }
        VolumeVerb::Prune { force, all } => {
            if !force
                && !confirm(
                    "This will remove anonymous local volumes not used by at least one container.",
                )
            {
                return Ok(0);
            }
            let ctx = enter(&ctx, root)?;
            let removed = ops::volume::prune(&ctx, all)?;
            let mut out = String::new();
            if !removed.is_empty() {
                out.push_str("Deleted Volumes:\n");
                for n in &removed {
                    out.push_str(n);
                    out.push('\n');
                }
                out.push('\n');
            }
            out.push_str("Total reclaimed space: 0B\n");
            common::print(&out);
            Ok(0)
        }
    }
}

fn confirm(what: &str) -> bool {
    eprint!("WARNING! {what}\nAre you sure you want to continue? [y/N] ");
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes")
}
