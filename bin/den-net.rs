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
}

fn main() -> std::process::ExitCode {
    let cli: Cli = common::parse();
    common::init_logging(&cli.global.log_level);
    match cli.verb {
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
