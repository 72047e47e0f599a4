//! den-image: images in the local store and in registries (pull, push, login, logout, images,
//! inspect, tag, rmi, prune, history, import, save, load), and the store as a whole (system df,
//! system prune, system check).
//!
//! Verbs that write or delete layer files (pull, rmi, prune, import, system prune, system check)
//! and `df`, which reads writable layers, enter den's user namespace first, while
//! single-threaded.

#![deny(unsafe_code)]
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a binary is the edge: it writes what the user reads"
)]

use clap::{Parser, Subcommand};
use den::cli::image::{
    CheckArgs, DfArgs, HistoryArgs, ImagePruneArgs, ImportArgs, RmiArgs, SystemPruneArgs, TagArgs,
};
use den::cli::{GlobalArgs, ImagesArgs, LoadArgs, PullArgs, SaveArgs};
use den::error::UsageError;
use den::ops::{self, Ctx};
use den::render;

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
    /// Log in to a registry
    Login(den::cli::registry::LoginArgs),
    /// Log out from a registry
    Logout(den::cli::registry::LogoutArgs),
    /// Upload an image to a registry
    Push(den::cli::registry::PushArgs),
    /// Show images' details as JSON
    Inspect {
        /// Format the output with a Go template, or `json`
        #[arg(short, long)]
        format: Option<String>,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Give an image another name
    Tag(TagArgs),
    /// Remove images
    #[command(alias = "rm", alias = "remove")]
    Rmi(RmiArgs),
    /// Remove unused images and the layers only they used
    Prune(ImagePruneArgs),
    /// Show the steps that made an image
    History(HistoryArgs),
    /// Make an image from a root filesystem tar
    Import(ImportArgs),
    /// Show how much space images, containers, volumes and the build cache use
    Df(DfArgs),
    /// Remove stopped containers, unused images and the build cache
    #[command(name = "system-prune")]
    SystemPrune(SystemPruneArgs),
    /// Check the store for leftovers and damage; --repair removes them
    #[command(name = "system-check")]
    SystemCheck(CheckArgs),
    /// Write images to a tar archive (docker-archive or oci-archive)
    Save(SaveArgs),
    /// Load images from a tar archive (docker's or OCI's, as save and podman write them)
    Load(LoadArgs),
}

/// Resolve paths as the user, then enter den's user namespace (single-threaded still).
fn enter(root: Option<&std::path::Path>) -> den::Result<Ctx> {
    let ctx = Ctx::new(root, &den::cli::Notes)?;
    ctx.paths.export()?;
    den::userns::enter(&den::sys::LinuxSys)?;
    Ctx::new(root, &den::cli::Notes)
}

/// Errors about the image a user named exit 1, as docker's do; den's own failures 125.
fn user_error(e: den::Error) -> den::Result<i32> {
    use den::store::StoreError;
    match e {
        den::Error::Store(StoreError::ImageUnknown(_) | StoreError::ImageAmbiguous(_)) => {
            den::cli::fail(&e);
            Ok(1)
        }
        e => Err(e),
    }
}

/// docker asks before pruning; den asks when a person can answer (stdin is a terminal) and
/// proceeds in scripts.
fn confirm(what: &str) -> bool {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return true;
    }
    eprint!("WARNING! {what}\nAre you sure you want to continue? [y/N] ");
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes")
}

fn reclaimed(bytes: u64) -> String {
    format!(
        "Total reclaimed space: {}\n",
        render::units::human_size4(bytes)
    )
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
            let ctx = Ctx::new(cli.global.root.as_deref(), &den::cli::Notes)?;
            ctx.paths.export()?;
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
        Verb::Login(a) => {
            let ctx = Ctx::new(cli.global.root.as_deref(), &den::cli::Notes)?;
            let registry = den::auth::registry_arg(a.server.as_deref());
            let credentials = den::cli::registry::login_credentials(&a, &registry)?;
            let opts = ops::login::LoginOptions {
                registry: Some(registry),
                credentials,
                tls_verify: a.tls_verify,
            };
            match ops::login::login(&ctx, &opts) {
                Ok(_) => {
                    common::print("Login Succeeded\n");
                    Ok(0)
                }
                // docker exits 1 on a refused login (125 is for den's own failures).
                Err(e @ den::Error::Registry(_)) => Ok(den::cli::fail(&e).min(1)),
                Err(e) => Err(e),
            }
        }
        Verb::Logout(a) => {
            let ctx = Ctx::new(cli.global.root.as_deref(), &den::cli::Notes)?;
            let l = ops::login::logout(&ctx, a.server.as_deref())?;
            common::print(&render::images::logout(
                &l.registry,
                l.removed,
                &l.elsewhere,
            ));
            Ok(0)
        }
        Verb::Push(a) => {
            let ctx = Ctx::new(cli.global.root.as_deref(), &den::cli::Notes)?;
            struct Lines(bool);
            impl ops::push::PushReport for Lines {
                fn line(&self, text: &str) {
                    if !self.0 {
                        eprintln!("{text}");
                    }
                }
            }
            let opts = ops::push::PushOptions {
                image: a.image.clone(),
                destination: a.destination.clone(),
                tls_verify: a.tls_verify,
            };
            let pushed = match ops::push::push(&ctx, &opts, &Lines(a.quiet)) {
                Ok(p) => p,
                Err(e @ den::Error::Registry(_)) => return Ok(den::cli::fail(&e).min(1)),
                Err(e) => return Err(e),
            };
            if let Some(f) = &a.digestfile {
                std::fs::write(f, &pushed.digest).map_err(|source| den::store::StoreError::Io {
                    path: f.clone(),
                    source,
                })?;
            }
            common::print(&format!(
                "{}: digest: {} size: {}\n",
                pushed.reference.tag().unwrap_or("latest"),
                pushed.digest,
                pushed.size
            ));
            Ok(0)
        }
        Verb::Inspect { format, names } => {
            let ctx = Ctx::new(cli.global.root.as_deref(), &den::cli::Notes)?;
            let (values, errors) = ops::images::inspect(&ctx, &names);
            Ok(common::print_objects(&values, format.as_deref(), errors))
        }
        Verb::Save(a) => {
            let ctx = Ctx::new(cli.global.root.as_deref(), &den::cli::Notes)?;
            user_verb(ops::archive::save(&ctx, &a.options()).map(|()| 0))
        }
        Verb::Load(a) => {
            // Layers keep their owners only inside den's user namespace (as for pull).
            den::userns::enter(&den::sys::LinuxSys)?;
            let ctx = Ctx::new(cli.global.root.as_deref(), &den::cli::Notes)?;
            ctx.paths.export()?;
            ctx.note_ownership(&mut |t| den::cli::note(t))?;
            user_verb(ops::archive::load(&ctx, &a.options()).map(|loaded| {
                common::print(&render::images::loaded(&loaded));
                0
            }))
        }
        Verb::Images(a) => {
            let ctx = Ctx::new(cli.global.root.as_deref(), &den::cli::Notes)?;
            let view = render::images::ImagesView {
                quiet: a.quiet,
                no_trunc: a.no_trunc,
                digests: a.digests,
                format: a.format.as_deref(),
            };
            let listed = ops::images::images(
                &ctx,
                &ops::images::ImagesOptions {
                    filter: a.repository.clone(),
                    filters: a.filter.clone(),
                    usage: view.custom_format().is_some(),
                },
            );
            match listed {
                Ok(rows) => {
                    let out = render::images::images(&rows, &view, chrono::Utc::now())
                        .map_err(UsageError::Format)?;
                    common::print(&out);
                    Ok(0)
                }
                Err(e) => user_error(e),
            }
        }
        Verb::Tag(a) => {
            let ctx = Ctx::new(cli.global.root.as_deref(), &den::cli::Notes)?;
            match ops::rmi::tag(&ctx, &a.source, &a.target) {
                Ok(_) => Ok(0),
                Err(e) => user_error(e),
            }
        }
        Verb::Rmi(a) => {
            let ctx = enter(cli.global.root.as_deref())?;
            let report = ops::rmi::rmi(
                &ctx,
                &a.images,
                ops::rmi::RmiOptions {
                    force: a.force,
                    no_prune: a.no_prune,
                },
            )?;
            let mut failed = false;
            for (_, result) in report.results {
                match result {
                    Ok(lines) => common::print(
                        &lines
                            .iter()
                            .map(|l| format!("{}\n", l.line()))
                            .collect::<String>(),
                    ),
                    Err(e) => {
                        den::cli::fail(&e);
                        failed = true;
                    }
                }
            }
            Ok(if failed { 1 } else { 0 })
        }
        Verb::Prune(a) => {
            let what = if a.all {
                "This will remove all images without at least one container associated to them."
            } else {
                "This will remove all dangling images."
            };
            // Asked inside: `enter` runs this program again in the namespace.
            let ctx = enter(cli.global.root.as_deref())?;
            if !a.force && !confirm(what) {
                return Ok(0);
            }
            let pruned = ops::rmi::prune(
                &ctx,
                &ops::rmi::PruneOptions {
                    all: a.all,
                    filters: a.filter.clone(),
                },
            )?;
            let mut out = String::new();
            if !pruned.removed.is_empty() {
                out.push_str("Deleted Images:\n");
                for r in &pruned.removed {
                    out.push_str(&r.prune_line());
                    out.push('\n');
                }
                out.push('\n');
            }
            out.push_str(&reclaimed(pruned.reclaimed));
            common::print(&out);
            Ok(0)
        }
        Verb::History(a) => {
            let ctx = Ctx::new(cli.global.root.as_deref(), &den::cli::Notes)?;
            let view = render::images::HistoryView {
                no_trunc: a.no_trunc,
                quiet: a.quiet,
                format: a.format.as_deref(),
            };
            match ops::history::history(&ctx, &a.image) {
                Ok(h) => {
                    let out =
                        render::images::history(&h.image.id, &h.steps, &view, chrono::Utc::now())
                            .map_err(UsageError::Format)?;
                    common::print(&out);
                    Ok(0)
                }
                Err(e) => user_error(e),
            }
        }
        Verb::Import(a) => {
            let ctx = enter(cli.global.root.as_deref())?;
            ctx.note_ownership(&mut |t| den::cli::note(t))?;
            let image = ops::import::import(
                &ctx,
                &ops::import::ImportOptions {
                    source: a.source.clone(),
                    reference: a.reference.clone(),
                    changes: a.change.clone(),
                    message: a.message.clone(),
                },
            )?;
            common::print(&format!("{}\n", image.id));
            Ok(0)
        }
        Verb::Df(a) => {
            let ctx = enter(cli.global.root.as_deref())?;
            let usage = ops::system::df(&ctx)?;
            let out =
                render::system::df(&usage, a.verbose, a.format.as_deref(), chrono::Utc::now())
                    .map_err(UsageError::Format)?;
            common::print(&out);
            Ok(0)
        }
        Verb::SystemCheck(a) => {
            let ctx = enter(cli.global.root.as_deref())?;
            let opts = ops::system::CheckOptions {
                repair: a.repair,
                full: a.full,
            };
            let report = ops::system::check(&ctx, &opts, &den::cli::Notes)?;
            let mut out = String::new();
            for p in &report.fixed {
                out.push_str(&format!("repaired: {p}\n"));
            }
            for p in &report.checked.problems {
                out.push_str(&format!("{p}\n"));
            }
            let c = &report.checked;
            if c.problems.is_empty() {
                out.push_str(&format!(
                    "{}: no problems ({} images, {} layers, {} blobs, {} containers)\n",
                    report.root.display(),
                    c.images,
                    c.layers,
                    c.blobs,
                    c.containers
                ));
            }
            common::print(&out);
            Ok(match report.unclean() {
                Some(e) => den::cli::fail(&e.into()).min(1),
                None => 0,
            })
        }
        Verb::SystemPrune(a) => {
            let mut what = String::from("This will remove:\n  - all stopped containers\n");
            if a.volumes {
                what.push_str("  - all anonymous volumes not used by at least one container\n");
            }
            what.push_str(if a.all {
                "  - all images without at least one container associated to them\n"
            } else {
                "  - all dangling images\n"
            });
            what.push_str("  - unused build cache\n");
            let ctx = enter(cli.global.root.as_deref())?;
            if !a.force && !confirm(&what) {
                return Ok(0);
            }
            let pruned = ops::system::prune(
                &ctx,
                &ops::system::SystemPruneOptions {
                    all: a.all,
                    volumes: a.volumes,
                    filters: a.filter.clone(),
                },
            )?;
            let mut out = String::new();
            let mut section = |title: &str, lines: Vec<String>| {
                if !lines.is_empty() {
                    out.push_str(title);
                    out.push('\n');
                    for l in lines {
                        out.push_str(&l);
                        out.push('\n');
                    }
                    out.push('\n');
                }
            };
            section("Deleted Containers:", pruned.containers.clone());
            section("Deleted Volumes:", pruned.volumes.clone());
            section(
                "Deleted Images:",
                pruned.images.iter().map(|r| r.prune_line()).collect(),
            );
            out.push_str(&reclaimed(pruned.reclaimed));
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
