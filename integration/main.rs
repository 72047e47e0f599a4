//! den's end-to-end tests: the real binaries, as an unprivileged user, against real registries
//! (`docker-registry` on loopback ports), real user namespaces, overlayfs and fuse-overlayfs.
//!
//! They fail when run as root. `make test` installs what they need, creates two users (one
//! with a subordinate id range, one without) and runs this binary as each of them; tests whose
//! outcome depends on the id mapping ask `den info` which mode they are in.

mod sandbox;
mod token;

mod archive;
mod build;
mod containers;
mod crash;
mod drivers;
mod firsthour;
mod hostile;
mod hostile_build;
mod images;
mod network;
mod pull;
mod push;
mod run;
mod safety;
mod security;
