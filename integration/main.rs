//! den's end-to-end tests: the real binaries, as an unprivileged user, against real registries
//! (`docker-registry` on loopback ports), real user namespaces, overlayfs and fuse-overlayfs.
//!
//! They fail when run as root. `make test` installs what they need, creates two users (one
//! with a subordinate id range, one without) and runs this binary as each of them; tests whose
//! outcome depends on the id mapping ask `den info` which mode they are in.

#![deny(unsafe_code)]
#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::too_many_lines,
    reason = "tests: a failed unwrap is a failed test, what they print is for whoever reads the log, and a scenario reads best whole"
)]

mod sandbox;
mod token;

mod archive;
mod attaching;
mod build;
mod build_mounts;
mod build_outputs;
mod compose;
mod containers;
mod crash;
mod credentials;
mod devices;
mod drivers;
mod firsthour;
mod flags;
mod health;
mod hooks;
mod hostile;
mod hostile_build;
mod hpcfs;
mod hpcrun;
mod images;
mod info;
mod keeper;
mod limits;
mod logging;
mod manifests;
mod network;
mod procsettings;
mod pull;
mod push;
mod run;
mod safety;
mod security;
mod singleuid;
mod slurm;
mod sqsh;
mod stores;
mod surface;
mod usernet;
mod verbs;
