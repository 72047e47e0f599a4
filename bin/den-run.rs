//! den-run: containers (run, create, start, stop, restart, kill, wait, ps, logs, attach, exec,
//! cp, export, rm, rename, diff, commit, pause, unpause, top, stats, inspect, prune), volumes, and `info`.
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

use std::path::Path;

use clap::{Parser, Subcommand};
use den::cli::container::*;
use den::cli::{GlobalArgs, RunArgs};
use den::ops::{self, Ctx};
use den::render;

#[path = "common.rs"]
mod common;

use common::{OnFailure, Result, each, enter, open, print};

#[derive(Parser)]
#[command(name = "den-run", version, about = "Containers: run them rootless")]
pub(crate) struct Cli {
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
    /// Rename a container
    Rename(RenameArgs),
    /// Make an image of a container's changes
    Commit(CommitArgs),
    /// Pause all processes of containers
    Pause(ContainersArgs),
    /// Show a container's processes (the host's ps, its options)
    Top(TopArgs),
    /// Show containers' resource use (CPU, memory, network, block I/O, pids)
    Stats(StatsArgs),
    /// Continue all processes of paused containers
    Unpause(ContainersArgs),
    /// Show what a container changed in its filesystem (A added, C changed, D deleted)
    Diff { container: String },
    /// Show containers as JSON
    Inspect(InspectArgs),
    /// Remove all stopped containers
    Prune(PruneArgs),
    /// Manage volumes
    Volume {
        #[command(subcommand)]
        verb: VolumeVerb,
    },
    /// Run containers' health checks (podman's)
    Healthcheck {
        #[command(subcommand)]
        verb: HealthcheckVerb,
    },
    /// Manage user networks
    Network {
        #[command(subcommand)]
        verb: NetworkVerb,
    },
    /// Show what den does on this machine, and why
    Info(den::cli::system::InfoArgs),
    /// Show den's version (docker's fields)
    Version(den::cli::system::VersionArgs),
    /// Show what den did (past events, then new ones until interrupted or --until)
    Events(den::cli::system::EventsArgs),
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
    /// Hold a detached `exec -it`'s terminal until its process ends (started by den itself).
    #[command(name = "__hold-pty", hide = true)]
    HoldPty,
}

#[derive(Subcommand)]
enum HealthcheckVerb {
    /// Run a container's health check now: exit 0 healthy, 1 unhealthy, 125 without a check
    Run { container: String },
    /// A container's health checker (started by its monitor or the foreground den)
    #[command(name = "__watch", hide = true)]
    Watch { id: String },
}

#[derive(Subcommand)]
enum NetworkVerb {
    /// Create a network
    Create {
        /// Driver (bridge only)
        #[arg(short, long)]
        driver: Option<String>,
        /// Subnet in CIDR form (default: the next free 10.89.N.0/24)
        #[arg(long)]
        subnet: Option<String>,
        /// Gateway address (default: the subnet's first)
        #[arg(long)]
        gateway: Option<String>,
        /// No outbound traffic: containers reach only each other
        #[arg(long)]
        internal: bool,
        /// Set a label (KEY=VALUE)
        #[arg(long = "label")]
        label: Vec<String>,
        name: String,
    },
    /// List networks
    #[command(alias = "list")]
    Ls {
        /// Only display network ids
        #[arg(short, long)]
        quiet: bool,
        /// Do not truncate ids
        #[arg(long)]
        no_trunc: bool,
        /// Filter: name=, id=, driver=, label=
        #[arg(short, long)]
        filter: Vec<String>,
        /// Format: table, json, or a Go template
        #[arg(long)]
        format: Option<String>,
    },
    /// Connect a container to a network
    Connect {
        /// Another name for the container on this network
        #[arg(long = "alias")]
        alias: Vec<String>,
        /// Its address on this network
        #[arg(long)]
        ip: Option<std::net::Ipv4Addr>,
        network: String,
        container: String,
    },
    /// Disconnect a container from a network
    Disconnect {
        /// Accepted for docker's sake (den has no endpoint to force)
        #[arg(short, long)]
        force: bool,
        network: String,
        container: String,
    },
    /// Show networks as JSON
    Inspect {
        #[arg(short, long)]
        format: Option<String>,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove networks
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove all networks no container uses
    Prune {
        #[arg(short, long)]
        force: bool,
        /// Filter: label=KEY[=VALUE]
        #[arg(long)]
        filter: Vec<String>,
    },
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

type Root<'a> = Option<&'a Path>;

fn main() -> std::process::ExitCode {
    // A container's hook, run for libcontainer (den::runtime::hooks): before any parsing, as
    // the hook's own arguments follow.
    let mut args = std::env::args_os();
    if args.nth(1).is_some_and(|a| a == "__hook") {
        let rest: Vec<String> = args.map(|a| a.to_string_lossy().into_owned()).collect();
        let code = den::runtime::hooks::wrapper_main(&rest);
        return std::process::ExitCode::from(code as u8);
    }
    let cli: Cli = common::parse();
    common::init_logging(&cli.global.log_level);
    // docker exits 125 when `run` itself fails, and 1 when a verb on a container fails.
    let on = match cli.verb {
        Verb::Run(_) | Verb::Create(_) | Verb::Healthcheck { .. } => OnFailure::Den,
        _ => OnFailure::One,
    };
    common::exit(run(cli.global.root.as_deref(), cli.verb), on)
}

fn run(root: Root, verb: Verb) -> Result<i32> {
    match verb {
        Verb::Run(a) => run_container(root, &a),
        Verb::Create(a) => create(root, &a),
        Verb::Start(a) => start(root, a),
        Verb::Stop(a) => stop(root, a),
        Verb::Restart(a) => restart(root, a),
        Verb::Kill(a) => kill(root, a),
        Verb::Wait(a) => wait(root, &a),
        Verb::Ps(a) => ps(root, a),
        Verb::Logs(a) => {
            ops::container::logs(&open(root)?, &a.container, &a.options()?)?;
            Ok(0)
        }
        Verb::Port { container, port } => {
            let ports = ops::container::port(&open(root)?, &container, port.as_deref())?;
            print(&render::containers::ports(&ports, port.is_some()));
            Ok(0)
        }
        Verb::Attach(a) => {
            let how = a.options()?;
            Ok(escaped(ops::container::attach(
                &open(root)?,
                &a.container,
                &how,
            )?))
        }
        Verb::Exec(a) => exec(root, &a),
        Verb::Cp(a) => cp(root, a),
        Verb::Export(a) => export(root, a),
        Verb::Rm(a) => rm(root, a),
        Verb::Commit(a) => commit(root, a),
        Verb::Stats(a) => stats(root, &a),
        Verb::Top(a) => {
            print(&render::containers::top(&ops::top::top(
                &open(root)?,
                &a.container,
                &a.ps_args,
            )?));
            Ok(0)
        }
        Verb::Pause(a) => pause(root, &a, ops::pause::pause),
        Verb::Unpause(a) => pause(root, &a, ops::pause::unpause),
        Verb::Diff { container } => {
            let ctx = enter(&open(root)?, root)?;
            print(&render::containers::changes(&ops::container::diff(
                &ctx, &container,
            )?));
            Ok(0)
        }
        Verb::Rename(a) => {
            ops::container::rename(&open(root)?, &a.container, &a.new_name)?;
            Ok(0)
        }
        Verb::Inspect(a) => {
            let (values, errors) = ops::inspect::inspect(&open(root)?, &a.names);
            Ok(common::print_objects(&values, a.format.as_deref(), errors))
        }
        Verb::Prune(a) => prune(root, a),
        Verb::Volume { verb } => volume(root, verb),
        Verb::Network { verb } => network(root, verb),
        Verb::Info(a) => info(root, &a),
        Verb::Events(a) => events(root, &a),
        Verb::Version(a) => {
            let v = ops::info::version();
            print(&match a.format.as_deref() {
                Some(f) => render::object(&ops::info::version_object(&v), f)?,
                None => render::system::version(&v),
            });
            Ok(0)
        }
        Verb::Reset { force } => reset(root, force),
        Verb::RunCreated { id } => Ok(ops::run::run_created(&enter(&open(root)?, root)?, &id)?),
        Verb::Monitor { id, wait_attach } => monitor(root, &id, wait_attach),
        Verb::HoldPty => Ok(den::runtime::tty::hold()),
        Verb::Healthcheck { verb } => healthcheck(root, verb),
    }
}

/// `wait`: each container's exit code, as it stops.
fn wait(root: Root, a: &ContainersArgs) -> Result<i32> {
    let ctx = open(root)?;
    Ok(each(&a.containers, |n| {
        Ok(Some(ops::container::wait(&ctx, n)?.to_string()))
    }))
}

/// `info`: den's report, or docker's fields through `--format`.
fn info(root: Root, a: &den::cli::system::InfoArgs) -> Result<i32> {
    let ctx = enter(&open(root)?, root)?;
    let info = ops::info::info(&ctx)?;
    print(&match a.format.as_deref() {
        Some(f) => {
            let counts = ops::info::counts(&ctx)?;
            render::object(&ops::info::info_object(&info, &counts), f)?
        }
        None => render::system::info(&info),
    });
    Ok(0)
}

/// `events`: a line per event as docker prints it (or `--format`), flushed as it comes; stops
/// when stdout closes.
fn events(root: Root, a: &den::cli::system::EventsArgs) -> Result<i32> {
    use std::io::Write;
    let opts = a.options()?;
    let format = a.format.as_deref().filter(|f| !f.is_empty());
    if let Some(f) = format.filter(|f| *f != "json") {
        render::Template::parse(f)?;
    }
    let ctx = open(root)?;
    let mut failed = None;
    ops::events::events(&ctx, &opts, &mut |e| {
        let text = match format {
            None => Ok(render::system::event_line(e)),
            Some(f) => render::object(&render::system::event_object(e), f),
        };
        match text {
            Ok(t) => {
                let mut out = std::io::stdout().lock();
                out.write_all(t.as_bytes())
                    .and_then(|()| out.flush())
                    .is_ok()
            }
            Err(err) => {
                failed = Some(err);
                false
            }
        }
    })?;
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(0),
    }
}

/// `run`: in the foreground, its exit status is the container's; with `-d`, its id.
fn run_container(root: Root, a: &RunArgs) -> Result<i32> {
    // Flags first: a bad one leaves the store as it was, --replace's container too.
    let opts = a.options()?;
    replace(root, a)?;
    if !opts.detach {
        // den holds a foreground container: it must not outlive the job or shell that runs it.
        den::runtime::tty::end_with_parent();
    }
    let join = match &opts.network {
        Some(den::net::Network::User(_)) => Join::UserNetworks,
        Some(den::net::Network::Container(owner)) => Join::NetworkOf(owner.clone()),
        _ => Join::Own,
    };
    let outside = open(root)?;
    // A foreground keep-id container's init is this process's clone: den must have been
    // re-executed inside for its /proc files to be den's (see den::userns::enter_in_place).
    let keep_id = opts.shared.keep_id.unwrap_or(outside.config.run.keep_id());
    let ctx = if matches!(join, Join::Own) && (opts.detach || !keep_id) {
        common::enter_in_place(&outside, root)?
    } else {
        enter_for(&outside, root, join)?
    };
    let report = den::cli::progress::PullReport::new(false, true);
    ctx.note_ownership(&mut |t| den::cli::note(t))?;
    ctx.note_placement(&mut |t| den::cli::note(t));
    if opts.detach {
        let id = ops::run::run_detached(&ctx, &opts, &report)?;
        print(&format!("{id}\n"));
        return Ok(0);
    }
    // docker prints the id when -a attaches neither stdout nor stderr.
    let quiet = opts.attach.is_some_and(|s| !s.stdout && !s.stderr);
    let mut created = |id: &str| {
        if quiet {
            print(&format!("{id}\n"));
        }
    };
    Ok(attached_code(ops::run::run(
        &ctx,
        &opts,
        &report,
        &mut created,
    )?))
}

/// Whose user namespace a verb that starts containers runs in.
enum Join {
    /// den's own (a new one).
    Own,
    /// The user networks' helper's (started if need be).
    UserNetworks,
    /// That of the container (a name or id) whose network namespace the container shares
    /// (`--network container:NAME`): only there may its network namespace be joined.
    NetworkOf(String),
}

/// [`enter`], for a verb that starts containers, in the user namespace `join` names.
fn enter_for(ctx: &Ctx, root: Root, join: Join) -> Result<Ctx> {
    use den::net::usernet;
    if matches!(join, Join::Own)
        || den::userns::IdMap::for_current_user() == den::userns::IdMap::Root
    {
        return enter(ctx, root);
    }
    ctx.paths.export()?;
    let dir = usernet::holder_dir(&ctx.runtime_dir()?);
    if let Join::NetworkOf(owner) = &join {
        if den::userns::current().is_some() {
            return open(root);
        }
        let c = ctx.store()?.lookup_container(owner)?;
        let pid = match c.state.pid {
            Some(pid) if c.state.status == den::store::Status::Running => pid,
            _ => {
                let name = c.record.name;
                return Err(ops::Error::from(den::net::NetError::OwnerNotRunning(name)).into());
            }
        };
        return Err(ops::Error::from(usernet::join_and_exec(pid, &[])).into());
    }
    if den::userns::current().is_none() {
        let survivors = || ops::network::survivors(ctx);
        let (pid, lock) = usernet::ensure_holder(&dir, &survivors).map_err(ops::Error::from)?;
        return Err(ops::Error::from(usernet::join(pid, lock)).into());
    }
    // Inside: the helper stays until this process has attached its container (or exits).
    usernet::holder::hold(&dir).map_err(ops::Error::from)?;
    if usernet::running_holder(&dir).is_none() {
        return Err(ops::Error::from(den::net::NetError::Helper {
            message: "the user network helper exited".into(),
            hint: Some("run the command again".into()),
        })
        .into());
    }
    open(root)
}

/// The user namespace to start the named containers in: the first one's on another's network,
/// else the helper's where any is on a user network.
fn join_for(ctx: &Ctx, names: &[String]) -> Join {
    let Ok(store) = ctx.store() else {
        return Join::Own;
    };
    let found: Vec<_> = names
        .iter()
        .filter_map(|n| store.lookup_container(n).ok())
        .collect();
    if let Some(owner) = found.iter().find_map(|c| match &c.record.spec.network {
        den::net::Network::Container(id) => Some(id.clone()),
        _ => None,
    }) {
        return Join::NetworkOf(owner);
    }
    if found.iter().any(|c| !c.record.spec.endpoints.is_empty()) {
        return Join::UserNetworks;
    }
    Join::Own
}

/// The exit status of `attach` or `exec`: the container's (the process's); when the user
/// detached, docker's line and 1 (its run and start say nothing and exit 0).
fn escaped(a: ops::container::Attached) -> i32 {
    match a {
        ops::container::Attached::Exited(code) => code,
        ops::container::Attached::Detached => {
            eprintln!("read escape sequence");
            1
        }
    }
}

/// The exit status of `run` or `start -a`: the container's, or 0 when the user detached.
fn attached_code(a: ops::container::Attached) -> i32 {
    match a {
        ops::container::Attached::Exited(code) => code,
        ops::container::Attached::Detached => 0,
    }
}

/// `--replace` (podman's): a container of the same name goes first, killed if it runs
/// (as the user, as `rm -f` does) and removed inside den's namespace.
fn replace(root: Root, a: &RunArgs) -> Result<()> {
    let (true, Some(name)) = (a.replace, &a.name) else {
        return Ok(());
    };
    let ctx = open(root)?;
    match ops::container::kill_for_removal(&ctx, name) {
        Err(ops::Error::Store(den::store::StoreError::ContainerUnknown(_))) => return Ok(()),
        r => r?,
    }
    ops::container::rm(&enter(&ctx, root)?, name, false)?;
    Ok(())
}

fn create(root: Root, a: &RunArgs) -> Result<i32> {
    let opts = a.create_options()?;
    replace(root, a)?;
    if !opts.detach {
        // den holds a foreground container: it must not outlive the job or shell that runs it.
        den::runtime::tty::end_with_parent();
    }
    let ctx = enter(&open(root)?, root)?;
    let report = den::cli::progress::PullReport::new(false, true);
    ctx.note_ownership(&mut |t| den::cli::note(t))?;
    ctx.note_placement(&mut |t| den::cli::note(t));
    let (record, _) = ops::run::create(&ctx, &opts, &report)?;
    print(&format!("{}\n", record.id));
    Ok(0)
}

fn start(root: Root, a: StartArgs) -> Result<i32> {
    if a.attach && a.containers.len() > 1 {
        return Err(den::copy::CopyError::BadPaths(
            "you cannot start and attach multiple containers at once".into(),
        )
        .into());
    }
    let how = a.attach_options()?;
    let outside = open(root)?;
    let names = targets(&outside, a.all, &a.containers, Some(false))?;
    let ctx = enter_for(&outside, root, join_for(&outside, &names))?;
    let mut out = std::io::stdout();
    Ok(attached_code(ops::container::start(
        &ctx,
        &names,
        how.as_ref(),
        &mut out,
    )?))
}

/// The containers a verb acts on: those named, or with `--all` those `running` (or not).
fn targets(ctx: &Ctx, all: bool, named: &[String], running: Option<bool>) -> Result<Vec<String>> {
    if all {
        Ok(ops::container::names(ctx, running)?)
    } else {
        Ok(named.to_vec())
    }
}

fn stop(root: Root, a: StopArgs) -> Result<i32> {
    let ctx = open(root)?;
    let names = targets(&ctx, a.all, &a.containers, Some(true))?;
    Ok(each(&names, |n| {
        ops::container::stop(&ctx, n, a.time, a.signal.as_deref())?;
        Ok(Some(n.to_string()))
    }))
}

/// Stopped as the user (signals need no namespace), started again inside.
fn restart(root: Root, a: StopArgs) -> Result<i32> {
    let ctx = open(root)?;
    let names = targets(&ctx, a.all, &a.containers, None)?;
    for n in &names {
        ops::container::stop(&ctx, n, a.time, a.signal.as_deref())?;
    }
    let ctx = enter_for(&ctx, root, join_for(&ctx, &names))?;
    let mut out = std::io::stdout();
    Ok(attached_code(ops::container::start(
        &ctx, &names, None, &mut out,
    )?))
}

fn kill(root: Root, a: KillArgs) -> Result<i32> {
    let ctx = open(root)?;
    Ok(each(&a.containers, |n| {
        ops::container::kill(&ctx, n, &a.signal)?;
        Ok(Some(n.to_string()))
    }))
}

fn ps(root: Root, a: PsArgs) -> Result<i32> {
    let list = ops::container::ps(&open(root)?, &a.options())?;
    let view = render::containers::PsView {
        quiet: a.quiet,
        no_trunc: a.no_trunc,
        format: a.format.as_deref(),
        noheading: a.noheading,
        sizes: list.sizes.as_deref().filter(|_| a.size),
    };
    let pairs: Vec<_> = list
        .containers
        .iter()
        .map(|c| (&c.record, &c.state))
        .collect();
    print(&render::containers::ps(&pairs, &view, chrono::Utc::now())?);
    // The process ends here: freeing 10,000 records one by one would cost it 8 ms.
    drop(pairs);
    std::mem::forget(list);
    Ok(0)
}

fn exec(root: Root, a: &ExecArgs) -> Result<i32> {
    let opts = a.options()?;
    let ctx = open(root)?;
    let runtime_dir = ctx.runtime_dir()?;
    ops::exec::record_start(&ctx, &a.container, &opts)?;
    let c = ops::exec::join(&ctx, &a.container)?;
    Ok(escaped(ops::exec::exec(&ctx, &c, &runtime_dir, &opts)?))
}

/// Where a container's files are reached from: its running monitor's namespaces, joined, or
/// den's user namespace, entered, when it is stopped.
fn container_root(ctx: &Ctx, root: Root, running: bool, container: &str) -> Result<Ctx> {
    if running {
        ops::exec::join(ctx, container)?;
        open(root)
    } else {
        enter(ctx, root)
    }
}

fn cp(root: Root, a: CpArgs) -> Result<i32> {
    let ctx = open(root)?;
    let plan = ops::cp::plan(&ctx, &a.src, &a.dest, a.follow_link)?;
    let inside = container_root(&ctx, root, plan.running, &plan.container)?;
    ops::cp::cp(&inside, &plan)?;
    Ok(0)
}

fn export(root: Root, a: den::cli::image::ExportArgs) -> Result<i32> {
    use den::archive::ArchiveError;
    use std::io::IsTerminal;
    if a.output.is_none() && std::io::stdout().is_terminal() {
        return Err(ArchiveError::TarToTerminal.into());
    }
    let ctx = open(root)?;
    let plan = ops::export::plan(&ctx, &a.container)?;
    // Opened before entering namespaces: a relative path is the user's.
    let sink: Box<dyn std::io::Write> = match &a.output {
        Some(p) => {
            Box::new(
                std::fs::File::create(p).map_err(|source| ArchiveError::WriteOutput {
                    path: p.clone(),
                    source,
                })?,
            )
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 20, sink);
    let inside = container_root(&ctx, root, plan.running, &plan.container)?;
    ops::export::export(&inside, &plan, &mut out)?;
    Ok(0)
}

fn rm(root: Root, a: RmArgs) -> Result<i32> {
    let ctx = open(root)?;
    let names = targets(&ctx, a.all, &a.containers, None)?;
    if a.force {
        for n in &names {
            let _ = match a.time {
                Some(t) => ops::container::stop(&ctx, n, Some(t), None),
                None => ops::container::kill_for_removal(&ctx, n),
            };
        }
    }
    let ctx = enter(&ctx, root)?;
    Ok(each(&names, |n| {
        match ops::container::rm(&ctx, n, a.volumes) {
            // `rm -f` of a container that does not exist is not an error in docker.
            Err(ops::Error::Store(den::store::StoreError::ContainerUnknown(_))) if a.force => {
                Ok(None)
            }
            r => Ok(r.map(|()| Some(n.to_string()))?),
        }
    }))
}

/// `commit`: in den-run with the other container verbs (docker's grouping: `container commit`);
/// the writable layer is read inside den's user namespace, running or not. Prints the image id.
fn commit(root: Root, a: CommitArgs) -> Result<i32> {
    let ctx = enter(&open(root)?, root)?;
    let opts = ops::commit::CommitOptions {
        container: a.container,
        reference: a.reference,
        changes: a.change,
        message: a.message,
        author: a.author,
        pause: a.pause,
    };
    let image = ops::commit::commit(&ctx, &opts)?;
    print(&format!("sha256:{}\n", image.id.hex()));
    Ok(0)
}

/// `pause` and `unpause`: each container named, docker's way (its name printed when done).
fn pause(root: Root, a: &ContainersArgs, verb: fn(&Ctx, &str) -> ops::Result<()>) -> Result<i32> {
    let ctx = open(root)?;
    Ok(each(&a.containers, |n| {
        verb(&ctx, n)?;
        Ok(Some(n.to_string()))
    }))
}

/// `stats`: once with `--no-stream`, else a reading a second or so until interrupted, the
/// screen cleared before each, as docker's stream is drawn.
fn stats(root: Root, a: &StatsArgs) -> Result<i32> {
    let ctx = open(root)?;
    loop {
        let text = render::containers::stats(
            &ops::stats::stats(&ctx, &a.containers, a.all)?,
            a.format.as_deref(),
            !a.no_trunc,
        )
        .map_err(render::FormatError::from)?;
        if a.no_stream {
            print(&text);
            return Ok(0);
        }
        print(&format!("\x1b[2J\x1b[H{text}"));
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

fn prune(root: Root, a: PruneArgs) -> Result<i32> {
    let ctx = open(root)?;
    if !a.force && !den::cli::confirm(PruneArgs::WARNING) {
        return Ok(0);
    }
    let removed = ops::container::prune(&enter(&ctx, root)?)?;
    print(&render::system::pruned(
        &[("Deleted Containers:", removed)],
        "0B",
    ));
    Ok(0)
}

/// `reset`: with `-f`, the containers are killed first (as the user), without asking.
fn reset(root: Root, force: bool) -> Result<i32> {
    let ctx = open(root)?;
    if force {
        ops::container::kill_all(&ctx)?;
    }
    let ctx = enter(&ctx, root)?;
    if !force && !den::cli::confirm(&reset_warning(&ctx.paths.root)) {
        return Ok(1);
    }
    ops::system::reset(&ctx)?;
    Ok(0)
}

/// `healthcheck run` (podman's): one check now; "unhealthy" and 1 when it fails.
fn healthcheck(root: Root, verb: HealthcheckVerb) -> Result<i32> {
    let container = match verb {
        HealthcheckVerb::Run { container } => container,
        HealthcheckVerb::Watch { id } => return health_watch(root, &id),
    };
    let passed = ops::health::run_now(&open(root)?, &container)?;
    if !passed {
        print("unhealthy\n");
    }
    Ok(ops::health::exit_status(passed))
}

/// A container's health checker, in the namespaces of the process that started it.
fn health_watch(root: Root, id: &str) -> Result<i32> {
    ops::health::watch(&enter(&open(root)?, root)?, id)?;
    Ok(0)
}

/// The per-container monitor: it owns the container until it ends, and exits with its status.
fn monitor(root: Root, id: &str, wait_attach: bool) -> Result<i32> {
    let ctx = enter(&open(root)?, root)?;
    let store = ctx.store()?;
    let runtime_dir = ctx.runtime_dir()?;
    let rctx = den::runtime::Context {
        sys: &den::sys::LinuxSys,
        store: &store,
        map: ctx.idmap(),
        runtime_dir: &runtime_dir,
    };
    Ok(den::runtime::monitor::run(&rctx, id, wait_attach))
}

/// `network ls --filter`: docker's name= (substring), id= (prefix), driver=, label=.
fn network_matches(v: &serde_json::Value, filters: &[String]) -> bool {
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    filters.iter().all(|f| match f.split_once('=') {
        Some(("name", n)) => s("Name").contains(n),
        Some(("id", i)) => s("Id").starts_with(i),
        Some(("driver", d)) => s("Driver") == d,
        Some(("label", l)) => match l.split_once('=') {
            Some((k, val)) => v["Labels"][k].as_str() == Some(val),
            None => v["Labels"].get(l).is_some(),
        },
        _ => true,
    })
}

fn network(root: Root, verb: NetworkVerb) -> Result<i32> {
    match verb {
        NetworkVerb::Create {
            driver,
            subnet,
            gateway,
            internal,
            label,
            name,
        } => {
            let o = den::net::usernet::CreateOptions {
                name,
                driver,
                subnet,
                gateway,
                internal,
                labels: label,
            };
            print(&format!("{}\n", ops::network::create(&open(root)?, &o)?.id));
            Ok(0)
        }
        NetworkVerb::Ls {
            quiet,
            no_trunc,
            filter,
            format,
        } => {
            let values: Vec<_> = ops::network::ls(&open(root)?)?
                .into_iter()
                .filter(|v| network_matches(v, &filter))
                .collect();
            let out = render::containers::networks(&values, quiet, no_trunc, format.as_deref())
                .map_err(render::FormatError::from)?;
            print(&out);
            Ok(0)
        }
        NetworkVerb::Connect {
            alias,
            ip,
            network,
            container,
        } => {
            let o = ops::network::ConnectOptions {
                network,
                container,
                aliases: alias,
                ip,
            };
            ops::network::connect(&open(root)?, &o)?;
            Ok(0)
        }
        NetworkVerb::Disconnect {
            force: _,
            network,
            container,
        } => {
            ops::network::disconnect(&open(root)?, &network, &container)?;
            Ok(0)
        }
        NetworkVerb::Inspect { format, names } => {
            let (values, errors) = ops::network::inspect(&open(root)?, &names);
            Ok(print_inspected(&values, errors, format.as_deref()))
        }
        NetworkVerb::Rm { names } => {
            let ctx = open(root)?;
            Ok(each(&names, |n| {
                ops::network::rm(&ctx, n)?;
                Ok(Some(n.to_string()))
            }))
        }
        NetworkVerb::Prune { force, filter } => network_prune(root, force, &filter),
    }
}

/// `network prune`: after asking, unless forced; docker's list of what went.
fn network_prune(root: Root, force: bool, filter: &[String]) -> Result<i32> {
    let ctx = open(root)?;
    if !force && !den::cli::confirm(NETWORK_PRUNE_WARNING) {
        return Ok(0);
    }
    let removed = ops::network::prune(&ctx, filter)?;
    let mut out = String::new();
    if !removed.is_empty() {
        out.push_str("Deleted Networks:\n");
        for n in &removed {
            out.push_str(&format!("{n}\n"));
        }
    }
    print(&out);
    Ok(0)
}

/// `network inspect` and `volume inspect`: the objects (or `--format`), then the names that
/// failed; the exit status says whether any did.
fn print_inspected(
    values: &[serde_json::Value],
    errors: Vec<ops::Error>,
    format: Option<&str>,
) -> i32 {
    let mut errors: Vec<common::Failure> = errors.into_iter().map(Into::into).collect();
    let out = render::containers::volume_objects(values, format).unwrap_or_else(|e| {
        errors.push(e.into());
        String::new()
    });
    common::print_and_fail(&out, errors)
}

const NETWORK_PRUNE_WARNING: &str = "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ";

fn volume(root: Root, verb: VolumeVerb) -> Result<i32> {
    match verb {
        VolumeVerb::Create { label, name } => {
            let v = ops::volume::create(&open(root)?, name.as_deref(), &label)?;
            print(&format!("{}\n", v.name));
            Ok(0)
        }
        VolumeVerb::Ls { quiet, format } => {
            let values = ops::volume::ls(&open(root)?)?;
            print(&render::containers::volumes(
                &values,
                quiet,
                format.as_deref(),
            )?);
            Ok(0)
        }
        VolumeVerb::Inspect { format, names } => {
            let (values, errors) = ops::volume::inspect(&open(root)?, &names);
            Ok(print_inspected(&values, errors, format.as_deref()))
        }
        VolumeVerb::Rm { force, names } => {
            let ctx = enter(&open(root)?, root)?;
            Ok(each(&names, |n| {
                ops::volume::rm(&ctx, n, force)?;
                Ok(Some(n.to_string()))
            }))
        }
        VolumeVerb::Prune { force, all } => {
            let ctx = open(root)?;
            if !force && !den::cli::confirm(VOLUME_PRUNE_WARNING) {
                return Ok(0);
            }
            let removed = ops::volume::prune(&enter(&ctx, root)?, all)?;
            print(&render::system::pruned(
                &[("Deleted Volumes:", removed)],
                "0B",
            ));
            Ok(0)
        }
    }
}
