//! den-net: the user networks' helper (`holder`): the network namespace where den's user
//! networks live, their DNS servers, and their outbound stack. Started by den-run when a
//! container joins a user network (never by hand). Also the keeper of den's user namespace
//! (`userns`, [`den::userns::keeper`]), started by the den that made the namespace.
//!
//! A container on the default network needs no den-net: the den process that holds it binds
//! its published ports, starts slirp4netns and forwards connections itself
//! ([`den::net::Setup`]).

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
#[command(name = "den-net", version, about = "The helper of den's user networks")]
struct Cli {
    #[command(flatten)]
    global: den::cli::GlobalArgs,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand)]
enum Verb {
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
    /// Keep den's user namespace for the dens that start later (den starts this)
    #[command(hide = true)]
    Userns { record: std::path::PathBuf },
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
            if let Err(e) = den::userns::enter(&den::sys::LinuxSys, None) {
                eprintln!("den-net: {}", den::error::chain(&e));
                return std::process::ExitCode::from(1);
            }
            done(den::net::usernet::holder::serve(&dir))
        }
        Verb::Keeper => done(den::net::usernet::holder::keep()),
        Verb::Userns { record } => {
            let code = den::userns::keeper::serve(&den::sys::LinuxSys, &record);
            std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
    }
}
