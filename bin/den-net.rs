//! den-net: the userspace network and port forwarding of one container.
//!
//! Started by den-run for each container on the default network (never by hand): it binds the
//! published ports, starts slirp4netns (or pasta) in the container's network namespace, and
//! forwards connections until the container ends. It dies with the den process that started it.

#![deny(unsafe_code)]
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a binary is the edge: it writes what the user reads"
)]

use clap::{Parser, Subcommand};

#[path = "common.rs"]
mod common;

#[derive(Parser)]
#[command(
    name = "den-net",
    version,
    about = "Userspace network and port forwarding for one container"
)]
struct Cli {
    #[command(flatten)]
    global: den::cli::GlobalArgs,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand)]
enum Verb {
    /// Serve one container (den-run starts this; the configuration comes in the environment)
    Serve,
    /// Keep the user networks' namespace (den-run starts this once per user)
    #[command(hide = true)]
    Holder {
        dir: std::path::PathBuf,
        /// Join this process's user namespace (a running container's) instead of making one
        #[arg(long)]
        join: Option<i32>,
    },
    /// Hold a network namespace for the holder
    #[command(hide = true)]
    Keeper,
}

fn main() -> std::process::ExitCode {
    let cli: Cli = common::parse();
    common::init_logging(&cli.global.log_level);
    let done = |r: Result<(), den::net::NetError>| match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("den-net: {}", den::error::chain(&e));
            std::process::ExitCode::from(1)
        }
    };
    match cli.verb {
        Verb::Holder { dir, join } => {
            // The holder's user namespace is made as den's own is, with the same id map, or is
            // that of the containers a killed helper left running.
            if let (Some(pid), None) = (join, den::userns::current()) {
                let e = den::net::usernet::join_and_exec(pid, &[]);
                eprintln!("den-net: {}", den::error::chain(&e));
                return std::process::ExitCode::from(1);
            }
            if let Err(e) = den::userns::enter(&den::sys::LinuxSys) {
                eprintln!("den-net: {}", den::error::chain(&e));
                return std::process::ExitCode::from(1);
            }
            done(den::net::usernet::holder::serve(&dir))
        }
        Verb::Keeper => done(den::net::usernet::holder::keep()),
        // A failure was reported to den-run over the control socket; den-run prints it.
        Verb::Serve => match den::net::serve_from_env() {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                tracing::debug!(error = %den::error::chain(&e), "den-net failed");
                std::process::ExitCode::from(1)
            }
        },
    }
}
