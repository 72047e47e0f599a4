//! den: a rootless, daemonless container toolkit with docker's workflow.
//!
//! This crate is the library the den binaries share. Its seams form layers; a seam uses only
//! seams on lower rows (and seams of its own row, without cycles), never one above it. The
//! rows, top first, as `lib/src/layering.rs` checks them (a unit test that reads every
//! `crate::` path under `lib/src` and fails on an edge pointing up or on a cycle):
//!
//! ```text
//! cli, render                      the edge: flags into typed options; what the user reads
//! compose                          `den compose`: a Compose project over den's own tools
//! ops                              one function per verb
//! build                            the Dockerfile planner and executor
//! archive, registry, runtime       save/load, the distribution protocol, running containers
//! auth                             registry credentials
//! store                            blobs, layers, images, containers, the storage driver
//! net, volume, copy, unpack, userns    the data a container record holds, and what fills it
//! image, security, config, fs,     references and manifests, capabilities and seccomp, paths,
//!   cgroup, cdi, hooks             cgroups, devices, hooks.d
//! sys                              the kernel seam
//! error, digest                    leaves
//! ```
//!
//! `store` uses the data types of `net`, `volume`, `security` and `userns` (a container
//! record holds its ports, mounts, security settings and the id mode of its layers), so those
//! never use `store`. `render` reads the shapes `ops` defines; `ops` never uses `render` or
//! `cli`. `error` imports nothing of den: each seam owns its error enum, and [`ops::Error`]
//! wraps them all for the binaries.
//!
//! The modules, one line each with its entry points, top layer first:
//!
//! - [`cli`]: clap flag structs shared by `den` and the den-* tools, and the flags parsed into
//!   the verbs' typed options ([`cli::run`]: `run`'s mounts, ports, network, restart policy,
//!   security and environment), docker's prompts ([`cli::confirm`]); the binaries print errors,
//!   once (`bin/common.rs`).
//! - [`render`]: how the binaries show what verbs return, as docker does: the `--format`
//!   engine ([`render::template::Template`]), tables, `json`, sizes and durations, and each
//!   listing's fields ([`render::containers::ps`], [`render::images::images`],
//!   [`render::system::df`]), over the shapes `ops` defines.
//! - [`compose`]: `den compose` (den-compose's verbs, [`compose::verbs`]): a Compose project
//!   read, interpolated, merged and checked into types ([`compose::load::load`],
//!   [`compose::model::Project`]), planned as den's argument vectors ([`compose::plan`]) and
//!   carried out by running den's binaries ([`compose::engine::Den`]), services in parallel
//!   after their `depends_on` conditions.
//! - [`ops`]: one function per verb, taking typed options and returning data (records, rows,
//!   reports; never text), notes for the user through [`ops::Report`]: [`ops::pull::pull`],
//!   [`ops::images::images`], [`ops::run::run`], [`ops::run::run_detached`],
//!   [`ops::build::build`], [`ops::container`] (ps, logs, start, stop, attach, rm, port, ...),
//!   [`ops::inspect`], [`ops::exec::exec`], [`ops::cp::cp`], [`ops::volume`],
//!   [`ops::info::info`] (and version), [`ops::events::events`] (den's journal),
//!   [`ops::search::search`], [`ops::rmi`] (tag, rmi, image prune), [`ops::history::history`],
//!   [`ops::import::import`], [`ops::export::export`], [`ops::health`] (the health checker,
//!   `healthcheck run`), [`ops::system`] (df, prune, check,
//!   reset), [`ops::push::push`], [`ops::login`] (login, logout), [`ops::manifest`]
//!   (manifest lists: create, add, annotate, inspect, push, rm), [`ops::squash::squash`]
//!   (`image squash`, and `load`/`images` of a `.sqsh`).
//! - [`build`]: `den build`'s seam ([`build::build`]): a Dockerfile planned as data
//!   ([`build::plan::Plan`], [`build::instruction::Step`]) and applied step by step, build layers
//!   and the build cache (shared through an OCI layout or a registry: [`build::share`]), and
//!   `--output` ([`build::output`]); what it needs from `ops` comes through [`build::Host`].
//! - [`archive`]: `den save` and `den load` archives, docker's and OCI's
//!   ([`archive::save`], [`archive::load`]).
//! - [`registry`]: the distribution protocol client ([`registry::Registry::connect`] to pull,
//!   [`registry::session::Session`] to log in and push).
//! - [`runtime`]: running containers ([`runtime::run_foreground`], the per-container monitor
//!   [`runtime::monitor::run`]): rootfs plan, spec, engine, tty, the foreground relay, logs,
//!   attach; the hooks in den's flow ([`runtime::hooks`]) and `--init` ([`runtime::init`]).
//! - [`auth`]: registry credentials, den's auth.json and other tools' ([`auth::AuthFiles`]).
//! - [`store`]: blobs, layers, images and containers on disk ([`store::Store::open`]), the
//!   container lookup every verb starts with ([`store::Store::lookup_container`]), the intake
//!   ([`store::incoming`]), the storage driver ([`store::driver`]: overlay, fuse-overlayfs,
//!   vfs, mounted through [`sys`]); unused content is deleted by
//!   [`store::Store::collect_garbage`], damage found by [`store::Store::check`]; manifest
//!   lists by name ([`store::manifests`]); a container's root over a single-file image
//!   ([`store::imagefile`]: squashfuse under the driver's overlay).
//! - [`net`]: networks and port forwarding ([`net::Network`], parsed once and stored typed;
//!   [`net::ports::parse`]; den-net's [`net::serve`]), user networks ([`net::usernet`]: the
//!   definitions, the per-user helper [`net::usernet::holder`], its DNS [`net::usernet::dns`]).
//! - [`volume`]: `-v`/`--mount`/`--tmpfs` ([`volume::parse_volume_flag`],
//!   [`volume::parse_mount_flag`], [`volume::parse_tmpfs_flag`]), named volumes
//!   ([`volume::Volumes`]) and copy-up ([`volume::copy_up`]), one file each.
//! - [`copy`]: `cp`'s rules over a container's root ([`copy::copy_out`], [`copy::copy_in`]):
//!   docker's path rules, the container as a place to write, tar in and out, over [`fs`]'s copy.
//! - [`unpack`]: applying layer tars safely ([`unpack::unpack_blob`]).
//! - [`userns`]: den's user namespace and id mapping ([`userns::enter`]), the id mode
//!   layers were unpacked in ([`userns::Ownership`]), and what a container shares with the
//!   host: PID, IPC, the user's own id ([`userns::share::Shared`], keep-id's map).
//! - [`image`]: references ([`image::Reference::parse`], tag names
//!   [`image::Reference::parse_tag`]), manifests, indexes and platforms, manifest lists as
//!   data ([`image::list::ManifestList`], kept by [`store::manifests`]), single-file
//!   images' format and checks ([`image::sqsh::check`]).
//! - [`security`]: capabilities, seccomp profiles, `--privileged` ([`security::Security::parse`]);
//!   what a container's processes get beside them: `--init`, `--sysctl`, `--ulimit`,
//!   `--shm-size` ([`security::process::Settings::parse`]).
//! - [`cgroup`]: cgroup v2 where the user has a delegated subtree: finding it
//!   ([`cgroup::delegated`], or the reason not), a container's own group, the freezer
//!   ([`cgroup::set_frozen`]) for `pause`, and resource limits ([`cgroup::limits`]: `--memory`,
//!   `--cpus`, `--pids-limit`, ..., [`cgroup::limits::resolve`], [`cgroup::limits::setup`]).
//! - [`cdi`]: devices in containers: CDI specs read and resolved ([`cdi::Registry::load`],
//!   [`cdi::Registry::resolve`]), `--device`, `--gpus`, `--group-add keep-groups`
//!   ([`cdi::DeviceRequest::parse`]).
//! - [`hooks`]: OCI hooks from `hooks.d` directories (podman's 1.0.0 format): reading them
//!   ([`hooks::load`]), which a container gets ([`hooks::Definitions::matching`]), running one
//!   with the state on stdin and its timeout ([`hooks::run`]).
//! - [`config`]: paths and `config.toml` ([`config::Paths::resolve`], [`config::Config::load`],
//!   `run`'s site defaults [`config::run::RunTable`]),
//!   where programs are ([`config::find_in_path`], [`config::tool_path`]), and a container's
//!   log driver and options ([`config::logging::LogConfig`], the file's `[log]` default).
//! - [`fs`]: the filesystem helpers every seam shares ([`fs::write_atomic`], [`fs::remove_tree`],
//!   [`fs::random_hex`], ...) and the one tree copy: [`fs::walk`] reads a tree through
//!   descriptors into a [`fs::Sink`], [`fs::Writer`] writes one (used by `cp`, COPY, copy-up and
//!   the vfs driver), and which filesystem holds a path ([`fs::FsKind`]: NFS, Lustre, tmpfs, ...,
//!   by statfs through [`sys`]). It imports only [`sys`].
//! - [`sys`]: the kernel seam, the only place with `unsafe` and with calls that change the
//!   kernel's view of a process ([`sys::Sys`], [`sys::RecordingSys`]); its module doc states
//!   which calls go through it. The crate root denies `unsafe` everywhere else.
//! - [`digest`]: [`digest::Digest`], a sha256 digest checked where it comes in (a leaf module).
//! - [`error`]: what every seam's error shares: [`error::Diagnose`] (hint, exit code), the
//!   exit codes, [`error::chain`]; a leaf. Each seam owns its error enum; [`ops::Error`] wraps
//!   them all for the binaries.

#![deny(unsafe_code)]

pub mod archive;
pub mod auth;
pub mod build;
pub mod cdi;
pub mod cgroup;
pub mod cli;
pub mod compose;
pub mod config;
pub mod copy;
pub mod digest;
pub mod error;
pub mod fs;
pub mod hooks;
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
