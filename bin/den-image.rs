//! den-image: images in the local store and in registries (pull, images, save, load).

use clap::{Parser, Subcommand};
use den::cli::{GlobalArgs, ImagesArgs, LoadArgs, PullArgs, SaveArgs};
use den::ops::{self, Ctx};

#[path = "common.rs"]
mod common;

#[derive(Parser)]
#[command(
    name = "den-image",
    version,
    about = "Images: pull from registries, list the local store"
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand)]
enum Verb {
    /// Download an image from a registry
    Pull(PullArgs),
    /// List images
    #[command(alias = "ls", alias = "list")]
    Images(ImagesArgs),
    /// Show images' details as JSON
    Inspect {
        /// Format the output with a Go template, or `json`
        #[arg(short, long)]
        format: Option<String>,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Write images to a tar archive (docker-archive or oci-archive)
    Save(SaveArgs),
    /// Load images from a tar archive (docker's or OCI's, as save and podman write them)
    Load(LoadArgs),
}

fn main() -> std::process::ExitCode {
    let cli: Cli = common::parse();
    common::init_logging(&cli.global.log_level);
    common::exit_with(run(cli))
}

fn run(cli: Cli) -> den::Result<i32> {
    match cli.verb {
        Verb::Pull(a) => {
            // Layers keep their owners only inside den's user namespace; enter it while
            // this process is still single-threaded.
            den::userns::enter(&den::sys::LinuxSys)?;
            tracing::debug!("inside the user namespace");
            let ctx = Ctx::new(cli.global.root.as_deref())?;
            ctx.paths.export();
            let report = den::cli::progress::PullReport::new(a.quiet, false);
            ctx.note_ownership(&mut |t| den::cli::note(t))?;
            let pulled = ops::pull::pull(
                &ctx,
                &ops::pull::PullOptions {
                    reference: a.image.clone(),
                    platform: a.platform.clone(),
                },
                &report,
            )?;
            let shown = if pulled.reference.tag().is_some() {
                pulled.reference.canonical()
            } else {
                format!("{}@{}", pulled.reference.repo_name(), pulled.digest)
            };
            let familiar = shown.replacen(
                &pulled.reference.repo_name(),
                &pulled.reference.familiar_repo(),
                1,
            );
            report.line(&if pulled.changed {
                format!("Status: Downloaded newer image for {familiar}")
            } else {
                format!("Status: Image is up to date for {familiar}")
            });
            common::print(&format!("{shown}\n"));
            Ok(0)
        }
        Verb::Inspect { format, names } => {
            let ctx = Ctx::new(cli.global.root.as_deref())?;
            let (out, errors) = ops::images::inspect(&ctx, &names, format.as_deref());
            common::print(&out);
            let failed = !errors.is_empty();
            for e in errors {
                den::cli::fail(&e);
            }
            Ok(if failed { 1 } else { 0 })
        }
        Verb::Save(a) => {
            let ctx = Ctx::new(cli.global.root.as_deref())?;
            user_verb(ops::archive::save(&ctx, &a.options()).map(|()| 0))
        }
        Verb::Load(a) => {
            // Layers keep their owners only inside den's user namespace (as for pull).
            den::userns::enter(&den::sys::LinuxSys)?;
            let ctx = Ctx::new(cli.global.root.as_deref())?;
            ctx.paths.export();
            ctx.note_ownership(&mut |t| den::cli::note(t))?;
            user_verb(ops::archive::load(&ctx, &a.options()).map(|loaded| {
                common::print(&ops::archive::report(&loaded));
                0
            }))
        }
        Verb::Images(a) => {
            let ctx = Ctx::new(cli.global.root.as_deref())?;
            let out = ops::images::images(
                &ctx,
                &ops::images::ImagesOptions {
                    quiet: a.quiet,
                    no_trunc: a.no_trunc,
                    filter: a.repository.clone(),
                },
            )?;
            common::print(&out);
            Ok(0)
        }
    }
}

/// docker exits 1 when save or load fails (125 is for its usage errors); den's own failures
/// there are the user's too (an unknown image, a damaged archive).
fn user_verb(result: den::Result<i32>) -> den::Result<i32> {
    match result {
        Err(den::Error::Reported(code)) => Ok(code),
        Err(e) => {
            let code = den::cli::fail(&e);
            Ok(if code == den::error::EXIT_DEN {
                1
            } else {
                code
            })
        }
        ok => ok,
    }
}
