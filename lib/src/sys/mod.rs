//! The kernel seam: the only module with `unsafe` and with raw system calls that change the
//! kernel's view of a process.
//!
//! Namespace, mount and identity calls go through the [`Sys`] trait (`seam`) so that plans
//! (the rootfs plan, the user namespace set-up) can be applied to [`RecordingSys`] (`fake`)
//! in unit tests and read back as typed [`Call`]s, without root. [`LinuxSys`] is the real
//! implementation. The rest are small safe functions, grouped by concern: `process` (fork,
//! exec, the environment, what a child does before exec, prctl), `ns` (joining namespaces
//! and a new keyring), `signal`, `fd` (descriptors: opening inside a root, flags, inherited
//! and received descriptors), `hot` (the port relay's per-connection calls, errno as a
//! number), `tty` (window sizes, raw and no-echo modes), `xattr` and `resources` (memory,
//! descriptor limit). Each `unsafe` block says why it holds; the
//! crate root denies `unsafe` everywhere else.
//!
//! # What goes through here
//!
//! The rule the rest of den follows: a call comes here when it changes the kernel's view of the
//! process or when its soundness needs an argument, namely mounts and namespaces (mount,
//! unshare, setns, pivot_root, mount_setattr), identity (setresuid), process creation and
//! replacement (fork, exec, setsid, the environment, pre-exec hooks), prctl, keyctl, ioctl and
//! terminal modes, signal dispositions and masks, resource limits, and any descriptor adopted
//! by number (`from_raw_fd`). Outside `sys`, den may use `nix`'s and `libc`'s types and
//! constants (`Pid`, `Signal`, `Errno`, `OFlag`, `Mode`, `S_IFMT`, errno values), harmless
//! getters (getuid, uname, gethostname, isatty, stat), and `nix`'s safe calls on paths and
//! descriptors it holds, of the kind `std::fs` and `std::io` make: the `*at` family, chmod,
//! chown, utimens, mknod, read, write, pipes, poll, epoll, signalfd, flock, sockets, and
//! kill/waitpid on its own children. Those need no fake: unit tests run them in a temporary
//! directory. `libc` appears outside `sys` only for constants and types.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::Diagnose;

mod fake;
mod fd;
pub mod hot;
mod ns;
mod process;
mod resources;
mod seam;
mod signal;
mod tty;
mod xattr;

pub use fake::RecordingSys;
pub use fd::{
    keep_across_exec, open_at, recv_fd, set_cloexec, set_nonblocking, set_pipe_size,
    take_inherited_fd,
};
pub use ns::{join_namespaces, join_netns, join_new_session_keyring, join_userns, new_netns};
pub use process::{
    Forked, die_with_parent, exec, execvp, fork, keep_fds, new_session_alone,
    new_session_keeping_fd, new_user_ns_dying_with_parent, parent_death_signal,
    set_child_subreaper, set_dumpable, set_env, set_parent_death_signal, thread_count,
};
pub use resources::{
    hard_limit, nofile_soft, raise_nofile_limit, release_file_pages, set_nofile_soft, trim_heap,
};
pub use seam::{Call, LinuxSys, Mount, Sys};
pub use signal::{block_signals, reset_signals, set_signal_mask, sigkill};
pub use tty::{TerminalMode, WinSize, get_winsize, set_winsize};
pub use xattr::{fgetxattr, fsetxattr, lgetxattr, lsetxattr};

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
