//! A foreground container's terminal and signals: one poll loop, on one thread.
//!
//! Without `-t` the container writes straight to den's own stdout and stderr (the descriptors are
//! handed to it), so pipelines are byte-exact and cost nothing; den only waits and forwards the
//! signals it receives (docker's sig-proxy). With `-t` the container gets a new pty: den receives
//! its master over a console socket, puts its own terminal in raw mode, copies bytes both ways,
//! and passes window-size changes on.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
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
        let mut buf = [0u8; 256];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut cmsg = nix::cmsg_space!([RawFd; 1]);
        let msg = nix::sys::socket::recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            nix::sys::socket::MsgFlags::empty(),
        )
        .map_err(|e| io(e.into()))?;
        for c in msg.cmsgs().map_err(|e| io(e.into()))? {
            if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c
                && let Some(fd) = fds.first()
            {
                // SAFETY: the kernel just installed this descriptor in our table for us
                // (SCM_RIGHTS); nothing else owns it.
                return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
        Err(io(std::io::Error::other("no pty master received")))
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Puts a terminal in raw mode and restores it when dropped.
pub struct RawMode {
    fd: OwnedFd,
    saved: nix::sys::termios::Termios,
}

impl RawMode {
    pub fn enter(fd: BorrowedFd<'_>) -> Option<RawMode> {
        let saved = nix::sys::termios::tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        nix::sys::termios::cfmakeraw(&mut raw);
        nix::sys::termios::tcsetattr(fd, nix::sys::termios::SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode {
            fd: fd.try_clone_to_owned().ok()?,
            saved,
        })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = nix::sys::termios::tcsetattr(
            self.fd.as_fd(),
            nix::sys::termios::SetArg::TCSANOW,
            &self.saved,
        );
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
    for sig in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGCHLD,
        Signal::SIGWINCH,
    ] {
        s.add(sig);
    }
    s
}

/// Block the supervised signals (before the container is created, so none is lost).
pub fn block_signals() -> SigSet {
    let mut old = SigSet::empty();
    let _ = nix::sys::signal::pthread_sigmask(
        SigmaskHow::SIG_BLOCK,
        Some(&supervised_signals()),
        Some(&mut old),
    );
    old
}

pub fn restore_signals(old: &SigSet) {
    let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(old), None);
}

/// The pty side of a foreground container.
pub struct Pty {
    pub master: OwnedFd,
    /// Copy den's stdin to the container (`-i`).
    pub stdin: bool,
}

/// Wait for the container's init `pid` to exit, forwarding signals, and for a pty container
/// copying its terminal. Returns the container's exit status (128+signal when killed).
pub fn supervise(pid: Pid, pty: Option<Pty>) -> Result<i32, RuntimeError> {
    let sfd = SignalFd::with_flags(
        &supervised_signals(),
        SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
    )
    .map_err(|e| RuntimeError::Io {
        path: "signalfd".into(),
        source: e.into(),
    })?;
    let stdin = std::io::stdin();
    let stdout_fd = std::io::stdout();
    let mut stdin_open = pty.as_ref().is_some_and(|p| p.stdin);
    let mut master_open = pty.is_some();
    let mut buf = vec![0u8; 64 * 1024];
    if let Some(p) = &pty {
        crate::sys::set_nonblocking(p.master.as_fd());
    }
    let mut status: Option<i32> = None;
    loop {
        if status.is_none() {
            status = reap(pid);
        }
        if let Some(code) = status
            && !master_open
        {
            return Ok(code);
        }
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        let master_idx = match (&pty, master_open) {
            (Some(p), true) => {
                fds.push(PollFd::new(p.master.as_fd(), PollFlags::POLLIN));
                Some(fds.len() - 1)
            }
            _ => None,
        };
        let stdin_idx = if stdin_open && status.is_none() {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            Some(fds.len() - 1)
        } else {
            None
        };
        // After the init exited, drain what is left on the master, then stop.
        let timeout = if status.is_some() {
            PollTimeout::from(50u16)
        } else {
            PollTimeout::NONE
        };
        match poll(&mut fds, timeout) {
            Ok(0) if status.is_some() => master_open = false,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                return Err(RuntimeError::Io {
                    path: "poll".into(),
                    source: e.into(),
                });
            }
        }
        let ready = |i: Option<usize>| {
            i.and_then(|i| fds[i].revents()).is_some_and(|r| {
                r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
            })
        };
        let (sig_ready, m_ready, in_ready) = (ready(Some(0)), ready(master_idx), ready(stdin_idx));
        drop(fds);
        if sig_ready {
            while let Ok(Some(info)) = sfd.read_signal() {
                match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGCHLD) => {}
                    Ok(Signal::SIGWINCH) => {
                        if let Some(p) = &pty {
                            copy_winsize(p.master.as_fd());
                        }
                    }
                    Ok(s) => {
                        let _ = nix::sys::signal::kill(pid, s);
                    }
                    Err(_) => {}
                }
            }
        }
        if let (true, Some(p)) = (m_ready, &pty) {
            match nix::unistd::read(p.master.as_raw_fd(), &mut buf) {
                Ok(0) | Err(nix::errno::Errno::EIO) => master_open = false,
                Ok(n) => {
                    let mut out = stdout_fd.lock();
                    if out.write_all(&buf[..n]).and_then(|_| out.flush()).is_err() {
                        master_open = false;
                    }
                }
                Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => {}
                Err(_) => master_open = false,
            }
        }
        if let (true, Some(p)) = (in_ready, &pty) {
            match stdin.lock().read(&mut buf) {
                Ok(0) | Err(_) => {
                    // End of input: send the terminal's end-of-file character once.
                    let _ = write_all_fd(p.master.as_fd(), &[4]);
                    stdin_open = false;
                }
                Ok(n) => {
                    if write_all_fd(p.master.as_fd(), &buf[..n]).is_err() {
                        stdin_open = false;
                    }
                }
            }
        }
    }
}

fn reap(pid: Pid) -> Option<i32> {
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
