//! den: a rootless, daemonless container toolkit with docker's workflow.
//!
//! This crate is the library the den binaries share. A map of it, one line per module with its
//! entry point; dependencies point one way, from the top of this list to the bottom:
//!
//! - [`cli`]: clap flag structs shared by `den` and the den-* tools, docker's prompts
//!   ([`cli::confirm`]); the binaries print errors, once (`bin/common.rs`).
//! - [`ops`]: one function per verb, taking typed options and returning data (records, rows,
//!   reports; never text), notes for the user through [`ops::Report`]: [`ops::pull::pull`],
//!   [`ops::images::images`],
//!   [`ops::run::run`], [`ops::run::run_detached`], [`ops::build::build`],
//!   [`ops::container`] (ps, logs, start, stop,
//!   attach, rm, inspect, port, ...), [`ops::exec::exec`], [`ops::cp::cp`], [`ops::volume`],
//!   [`ops::info::info`], [`ops::rmi`] (tag, rmi, image prune), [`ops::history::history`],
//!   [`ops::import::import`], [`ops::export::export`], [`ops::system`] (df, prune, check, reset),
//!   [`ops::push::push`], [`ops::login`] (login, logout).
//! - [`render`]: how the binaries show what verbs return, as docker does: the `--format`
//!   engine ([`render::template::Template`]), tables, `json`, sizes and durations, and each
//!   listing's fields ([`render::containers::ps`], [`render::images::images`],
//!   [`render::system::df`]). It defines the shapes of the reports it draws, which the verbs
//!   fill; it imports neither `ops` nor `cli`.
//! - [`archive`]: `den save` and `den load` archives, docker's and OCI's
//!   ([`archive::save`], [`archive::load`]).
//! - [`build`]: `den build`'s seam ([`build::build`]): a Dockerfile planned as data
//!   ([`build::plan::Plan`], [`build::instruction::Step`]) and applied step by step, build layers
//!   and the build cache; what it needs from `ops` comes through [`build::Host`].
//! - [`image`]: references ([`image::Reference::parse`]), manifests, indexes and platforms.
//! - [`registry`]: the distribution protocol client ([`registry::Registry::connect`] to pull,
//!   [`registry::session::Session`] to log in and push).
//! - [`auth`]: registry credentials, den's auth.json and other tools' ([`auth::AuthFiles`]).
//! - [`store`]: blobs, layers, images and containers on disk ([`store::Store::open`]); unused
//!   content is deleted by [`store::Store::collect_garbage`], damage found by
//!   [`store::Store::check`].
//! - [`unpack`]: applying layer tars safely ([`unpack::unpack_blob`]).
//! - [`runtime`]: running containers ([`runtime::run_foreground`], the per-container monitor
//!   [`runtime::monitor::run`]): mounts, spec, engine, tty, the foreground relay, logs, attach.
//! - [`net`]: networks and port forwarding ([`net::Network::parse`], [`net::ports::parse`],
//!   den-net's [`net::serve`]).
//! - [`volume`]: `-v`/`--mount`/`--tmpfs` ([`volume::parse_volume_flag`],
//!   [`volume::parse_mount_flag`], [`volume::parse_tmpfs_flag`]), named volumes
//!   ([`volume::Volumes`]) and copy-up ([`volume::copy_up`]), one file each.
//! - [`security`]: capabilities, seccomp profiles, `--privileged` ([`security::Security::parse`]).
//! - [`copy`]: `cp`'s rules over a container's root ([`copy::copy_out`], [`copy::copy_in`]):
//!   docker's path rules, the container as a place to write, tar in and out, over [`fs`]'s copy.
//! - [`userns`]: den's user namespace and id mapping ([`userns::enter`]).
//! - [`config`]: paths and `config.toml` ([`config::Paths::resolve`], [`config::Config::load`]).
//! - [`fs`]: the filesystem helpers every seam shares ([`fs::write_atomic`], [`fs::remove_tree`],
//!   [`fs::random_hex`], ...) and the one tree copy: [`fs::walk`] reads a tree through
//!   descriptors into a [`fs::Sink`], [`fs::Writer`] writes one (used by `cp`, COPY, copy-up and
//!   the vfs driver). It imports only [`sys`].
//! - [`digest`]: [`digest::Digest`], a sha256 digest checked where it comes in (a leaf module).
//! - [`error`]: what every seam's error shares: [`error::Diagnose`] (hint, exit code), the
//!   exit codes, [`error::chain`]; a leaf. Each seam owns its error enum; [`ops::Error`] wraps
//!   them all for the binaries.
//! - [`sys`]: the kernel seam, the only place with `unsafe` and with calls that change the
//!   kernel's view of a process ([`sys::Sys`], [`sys::RecordingSys`]); its module doc states
//!   which calls go through it. The crate root denies `unsafe` everywhere else.

#![deny(unsafe_code)]

pub mod archive;
pub mod auth;
pub mod build;
pub mod cli;
pub mod config;
pub mod copy;
pub mod digest;
pub mod error;
pub mod fs;
pub mod image;
pub mod net;
pub mod ops;
pub mod registry;
pub mod render;
pub mod runtime;
pub mod security;
pub mod store;
// The one module allowed `unsafe`: each block there says why it holds.
#[allow(unsafe_code)]
pub mod sys;
pub mod unpack;
pub mod userns;
pub mod volume;

#[cfg(test)]
mod layering;
