//! A foreground container's terminal and signals.
//!
//! With `-t` the container gets a new pty: den receives its master over a console socket
//! ([`ConsoleSocket`]), puts its own terminal in raw mode ([`RawMode`]), and passes window-size
//! changes on ([`copy_winsize`]); [`super::relay`] copies the bytes both ways. The signals den
//! proxies to the container are blocked before it is created ([`block_signals`]), so none is lost.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::RuntimeError;

/// The socket libcontainer connects to with the pty master.
pub struct ConsoleSocket {
    listener: UnixListener,
    pub path: PathBuf,
}

impl ConsoleSocket {
    pub fn bind(path: &Path) -> Result<ConsoleSocket, RuntimeError> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).map_err(|e| RuntimeError::Io {
            path: path.into(),
            source: e,
        })?;
        Ok(ConsoleSocket {
            listener,
            path: path.into(),
        })
    }

    /// Receive the pty master. The init sent it while the container was being created, so it
    /// is already queued on the socket.
    pub fn receive(&self) -> Result<OwnedFd, RuntimeError> {
        let io = |e: std::io::Error| RuntimeError::Io {
            path: self.path.clone(),
            source: e,
        };
        self.listener.set_nonblocking(true).map_err(io)?;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let stream = loop {
            match self.listener.accept() {
                Ok((s, _)) => break s,
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(e) => return Err(io(e)),
            }
        };
        stream.set_nonblocking(false).map_err(io)?;
        crate::sys::recv_fd(&stream)
            .map_err(io)?
            .ok_or_else(|| io(std::io::Error::other("no pty master received")))
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Puts a terminal in raw mode and restores it when dropped.
pub struct RawMode {
    _mode: crate::sys::TerminalMode,
}

impl RawMode {
    pub fn enter(fd: BorrowedFd<'_>) -> Option<RawMode> {
        crate::sys::TerminalMode::raw(fd).map(|m| RawMode { _mode: m })
    }
}

/// For a container on a pty: receive its master, give it den's window size, and put den's
/// terminal in raw mode when stdin is attached. Keep both for as long as the container runs.
pub fn open_pty(
    console: Option<&ConsoleSocket>,
    stdin: bool,
) -> Result<(Option<Pty>, Option<RawMode>), RuntimeError> {
    let Some(c) = console else {
        return Ok((None, None));
    };
    let master = c.receive()?;
    copy_winsize(master.as_fd());
    let raw = if stdin {
        RawMode::enter(std::io::stdin().as_fd())
    } else {
        None
    };
    Ok((Some(Pty { master, stdin }), raw))
}

/// Whether a descriptor is a terminal.
pub fn is_tty(fd: BorrowedFd<'_>) -> bool {
    nix::unistd::isatty(fd.as_raw_fd()).unwrap_or(false)
}

/// The signals den proxies to the container, plus the two it handles itself.
pub fn supervised_signals() -> SigSet {
    let mut s = SigSet::empty();
    for &sig in crate::userns::FORWARDED
        .iter()
        .chain(&[Signal::SIGCHLD, Signal::SIGWINCH])
    {
        s.add(sig);
    }
    s
}

/// Block the supervised signals (before the container is created, so none is lost).
pub fn block_signals() -> SigSet {
    crate::sys::block_signals(&supervised_signals())
}

pub fn restore_signals(old: &SigSet) {
    crate::sys::set_signal_mask(old);
}

/// Make a foreground run end with the process that started it: when that parent dies (a batch
/// job's shell, killed by `scancel` or a time limit), this process gets SIGTERM, which stops
/// the container as a SIGTERM from a user does ([`super::relay::Stop`]). Without it den would
/// be orphaned and its container run on, out of the batch system's sight: Slurm's
/// `proctrack/linuxproc` tracks a job's processes by their parents. It acts in the process the
/// user started only (not in den's child in the user namespace, which dies with that one).
///
/// A den started under `nohup` (SIGHUP ignored) is meant to outlive its session and keeps
/// running. The parent death signal follows the parent *thread*; shells and batch systems
/// start den from their only one.
pub fn end_with_parent() {
    if crate::userns::current().is_some() {
        // den's child in the user namespace: it dies with the process the user started
        // (SIGKILL, set when it was forked), which is the one that follows its own parent.
        return;
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if ignores(&status, Signal::SIGHUP) {
        return;
    }
    let parent = nix::unistd::getppid();
    if crate::sys::set_parent_death_signal(Signal::SIGTERM).is_err() {
        return;
    }
    // The parent died before the signal was set: it would never come.
    if nix::unistd::getppid() != parent {
        let _ = nix::sys::signal::raise(Signal::SIGTERM);
    }
}

/// Whether a `/proc/PID/status` text says the process ignores `sig` (its SigIgn mask).
fn ignores(status: &str, sig: Signal) -> bool {
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        .is_some_and(|mask| mask & (1u64 << (sig as u32 - 1)) != 0)
}

/// The pty side of a foreground container.
pub struct Pty {
    pub master: OwnedFd,
    /// Copy den's stdin to the container (`-i`).
    pub stdin: bool,
}

/// The container's exit status once its init `pid` has exited (128+signal when killed).
pub(crate) fn reap(pid: Pid) -> Option<i32> {
    match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::Exited(_, c)) => Some(c),
        Ok(WaitStatus::Signaled(_, s, _)) => Some(128 + s as i32),
        Ok(_) => None,
        Err(nix::errno::Errno::ECHILD) => Some(crate::error::EXIT_DEN),
        Err(_) => None,
    }
}

pub fn write_all_fd(fd: BorrowedFd<'_>, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => {
                let mut p = [PollFd::new(fd, PollFlags::POLLOUT)];
                let _ = poll(&mut p, PollTimeout::from(100u16));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Give the pty the size of den's own terminal (stdout, else stdin). Called before the container
/// starts, so its first `stty size` sees the right size, and on every SIGWINCH.
pub fn copy_winsize(master: BorrowedFd<'_>) {
    let size = crate::sys::get_winsize(std::io::stdout().as_fd())
        .or_else(|| crate::sys::get_winsize(std::io::stdin().as_fd()));
    match size {
        Some(s) => {
            tracing::debug!(rows = s.rows, cols = s.cols, "window size");
            if let Err(e) = crate::sys::set_winsize(master, s) {
                tracing::debug!(error = %e, "window size not set");
            }
        }
        None => tracing::debug!("den's output is not a terminal: no window size to pass on"),
    }
}

/// The environment variable that passes a detached terminal's master to its holder.
pub const ENV_PTY_FD: &str = "_DEN_PTY_FD";

/// Keep a terminal whose user detached (`exec -it`, the detach keys) open after den exits:
/// a small process of den's own (`den-run __hold-pty`, a new session) holds `master` and reads
/// what the process writes until its last descriptor of the terminal closes. Without it, den's
/// exit would close the master and hang the process up; docker's daemon holds it the same way.
pub fn hand_off(master: BorrowedFd<'_>) -> Result<(), RuntimeError> {
    let io = |path: &str| {
        let path = path.to_string();
        move |e: std::io::Error| RuntimeError::Io {
            path: path.clone().into(),
            source: e,
        }
    };
    let fd = master.try_clone_to_owned().map_err(io("pty"))?;
    let exe = std::fs::read_link("/proc/self/exe").map_err(io("/proc/self/exe"))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("__hold-pty")
        .env(ENV_PTY_FD, fd.as_raw_fd().to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    crate::sys::new_session_keeping_fd(&mut cmd, fd.as_raw_fd());
    let child = cmd.spawn().map_err(io("den-run __hold-pty"))?;
    // It outlives this process, which exits soon: init reaps it.
    std::mem::forget(child);
    Ok(())
}

/// `den-run __hold-pty`: read the handed-off terminal until it closes ([`hand_off`]).
pub fn hold() -> i32 {
    let Some(master) = crate::sys::take_inherited_fd(ENV_PTY_FD) else {
        return crate::error::EXIT_DEN;
    };
    let mut buf = [0u8; 4096];
    loop {
        match nix::unistd::read(master.as_raw_fd(), &mut buf) {
            Ok(0) | Err(nix::errno::Errno::EIO) => return 0,
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {
                // The descriptor may be shared non-blocking with den's relay: wait for input.
                let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
                let _ = poll(&mut fds, PollTimeout::from(1000u16));
            }
            Ok(_) => {}
            Err(_) => return 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nohup_is_read_from_the_ignored_mask() {
        let status = "Name:\tden\nSigBlk:\t0000000000000001\nSigIgn:\t0000000000001001\n";
        assert!(ignores(status, Signal::SIGHUP));
        assert!(ignores(status, Signal::SIGPIPE));
        assert!(!ignores(status, Signal::SIGTERM));
        assert!(!ignores("SigIgn:\t0000000000000000\n", Signal::SIGHUP));
        assert!(!ignores("", Signal::SIGHUP));
    }
}
