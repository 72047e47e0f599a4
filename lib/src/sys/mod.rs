//! The kernel seam: the only module with raw syscalls and `unsafe`.
//!
//! Namespace, mount and identity calls go through the [`Sys`] trait so that plans (the rootfs plan,
//! the user namespace set-up) can be applied to [`RecordingSys`] in unit tests and read back as typed
//! [`Call`]s, without root. [`LinuxSys`] is the real implementation. Everything else here is a small
//! safe wrapper around one `unsafe` call, each with the reason it holds.
//!
//! Plain file operations (open, read, mkdir in the store) use `std` and `nix` directly; they need
//! no fake because unit tests run them in a temporary directory.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::Diagnose;

mod fake;
mod fd;
mod process;
mod resources;
mod seam;
mod tty;
mod xattr;

pub use fake::RecordingSys;
pub use fd::{accept_nonblocking, open_at, set_nonblocking, set_pipe_size, splice};
pub use process::{
    Forked, exec, fork, join_namespaces, join_netns, join_new_session_keyring,
    keep_fd_and_die_with_parent, reset_signals, set_child_subreaper, set_parent_death_signal,
    thread_count,
};
pub use resources::{raise_nofile_limit, release_file_pages, trim_heap};
pub use seam::{Call, LinuxSys, Mount, Sys};
pub use tty::{WinSize, get_winsize, set_winsize};
pub use xattr::{fgetxattr, lgetxattr, lsetxattr};

/// A failed system call, with what it was asked to do.
#[derive(Debug, thiserror::Error)]
#[error("{call} failed")]
pub struct SysError {
    /// The call and its main argument, e.g. `mount overlay on /x`.
    pub call: String,
    #[source]
    pub source: std::io::Error,
}

impl SysError {
    pub fn new(call: impl Into<String>, errno: nix::errno::Errno) -> Self {
        SysError {
            call: call.into(),
            source: std::io::Error::from_raw_os_error(errno as i32),
        }
    }
    pub fn io(call: impl Into<String>, source: std::io::Error) -> Self {
        SysError {
            call: call.into(),
            source,
        }
    }
    /// The errno behind this error, when there is one.
    pub fn errno(&self) -> Option<i32> {
        self.source.raw_os_error()
    }
}

impl Diagnose for SysError {}

impl From<SysError> for std::io::Error {
    fn from(e: SysError) -> std::io::Error {
        std::io::Error::new(e.source.kind(), e)
    }
}

pub type Result<T> = std::result::Result<T, SysError>;

fn cstring(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        SysError::io(
            format!("path {}", path.display()),
            std::io::Error::other("contains a NUL byte"),
        )
    })
}
