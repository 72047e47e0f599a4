//! den-run: containers (run, info).

use clap::{Parser, Subcommand};
use den::cli::{GlobalArgs, RunArgs};
use den::ops::{self, Ctx};

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
    /// Show what den does on this machine, and why
    Info,
    /// Remove all of den's containers, images and layers for this user
    Reset {
        /// Do not ask for confirmation
        #[arg(short, long)]
        force: bool,
    },
}

fn main() -> std::process::ExitCode {
    let cli: Cli = common::parse();
    common::init_logging(&cli.global.log_level);
    common::exit_with(run(cli))
}

fn run(cli: Cli) -> den::Result<i32> {
    // Resolve paths before entering the user namespace (inside, den is uid 0 and would pick
    // the wrong runtime directory) and pass them on through the environment.
    let ctx = Ctx::new(cli.global.root.as_deref())?;
    ctx.paths.export();
    tracing::debug!("entering the user namespace");
    den::userns::enter(&den::sys::LinuxSys)?;
    tracing::debug!("inside the user namespace");
    let ctx = Ctx::new(cli.global.root.as_deref())?;
    match cli.verb {
        Verb::Run(a) => {
            let report = den::cli::progress::PullReport::new(false, true);
            ctx.note_ownership(&mut |t| den::cli::note(t))?;
            tracing::debug!("store opened");
            ops::run::run(&ctx, &a.options(), &report)
        }
        Verb::Info => {
            common::print(&ops::info::info(&ctx)?);
            Ok(0)
        }
        Verb::Reset { force } => {
            if !force {
                eprint!(
                    "This removes every container, image and layer in {}.\nAre you sure you want to continue? [y/N] ",
                    ctx.paths.root.display()
                );
                let mut answer = String::new();
                let _ = std::io::stdin().read_line(&mut answer);
                if !matches!(answer.trim(), "y" | "Y" | "yes") {
                    return Ok(1);
                }
            }
            ops::system::reset(&ctx)?;
            Ok(0)
        }
    }
}
