//! den-image: images in the local store and in registries (pull, images).

use clap::{Parser, Subcommand};
use den::cli::{GlobalArgs, ImagesArgs, PullArgs};
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
        Verb::Login(a) => {
            let ctx = Ctx::new(cli.global.root.as_deref())?;
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
            let ctx = Ctx::new(cli.global.root.as_deref())?;
            common::print(&ops::login::logout(&ctx, a.server.as_deref())?);
            Ok(0)
        }
        Verb::Push(a) => {
            let ctx = Ctx::new(cli.global.root.as_deref())?;
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
                std::fs::write(f, &pushed.digest).map_err(|source| {
                    den::store::StoreError::Io {
                        path: f.clone(),
                        source,
                    }
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
            let ctx = Ctx::new(cli.global.root.as_deref())?;
            let (out, errors) = ops::images::inspect(&ctx, &names, format.as_deref());
            common::print(&out);
            let failed = !errors.is_empty();
            for e in errors {
                den::cli::fail(&e);
            }
            Ok(if failed { 1 } else { 0 })
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
