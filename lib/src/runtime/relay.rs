//! A foreground container's streams: den's one loop that waits for the container, forwards the
//! signals den receives (docker's sig-proxy), copies den's terminal to a pty container, and
//! relays the container's output to den's own stdout and stderr while it writes the log.
//!
//! The container never holds den's stdout or stderr: it writes to pipes (or a pty) that den
//! reads, as docker's and podman's monitors do. That is what keeps `den logs` true after a
//! foreground run, and what lets `den run ... >/dev/null` work at all: libcontainer replaces any
//! stdio descriptor that is `/dev/null` with the container's own `/dev/null`, opened read-only
//! (libcontainer 0.7, `reopen_dev_null`), so a container handed den's `/dev/null` could not write.
//!
//! Relaying keeps the bytes exact and keeps back-pressure: den reads a stream only when it has
//! written what it read before. den's output may be a pipe whose reader stalls; den's own
//! descriptor is shared with its shell and must stay blocking, so a pipe is opened again through
//! `/proc/self/fd` (a new open file description of the same pipe) and written without blocking:
//! a stalled reader then never stops den from forwarding a signal. A reader that goes away
//! (EPIPE) closes that stream: the container's next write to it fails as it would have, had it
//! held den's pipe itself (`den run img yes | head -1` ends).
//!
//! A foreground `den run` is told to end by SIGTERM or SIGHUP (a batch system cancelling the job,
//! `timeout`, a closed session). docker's client forwards those and keeps waiting, because its
//! daemon holds the container; den holds the container itself, so after forwarding it gives the
//! container its stop timeout ([`Stop`]) and then kills it, as `den stop` would, and returns its
//! status: the run's clean-up (`--rm`, unmounting) happens and no process outlives den. Slurm's
//! default process tracking (`proctrack/linuxproc`) sends SIGTERM once and then forgets processes
//! whose batch shell has died, so nothing else would stop them. SIGINT and the other signals are
//! only forwarded, as docker does: the program inside decides what they mean.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use chrono::Utc;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;

use super::RuntimeError;
use super::logs::Stream;
use super::tty::{Pty, copy_winsize, reap, supervised_signals, write_all_fd};

/// The log a foreground container's output is appended to.
pub type Log = super::logs::LogFile;

/// What the container's output is read from: its stdout and stderr pipes, or a pty master (as
/// stdout; a terminal has one stream).
pub struct Output {
    pub fd: OwnedFd,
    pub stream: Stream,
}

/// How long den goes on reading the container's output after its init exited: processes of
/// the container die with it (its pid namespace), so the pipes close at once; this bounds the
/// wait on a descriptor the container passed on to something outside.
const DRAIN: Duration = Duration::from_secs(2);

/// den's own stdout or stderr.
enum Den {
    Stdout(std::io::Stdout),
    Stderr(std::io::Stderr),
}

impl AsFd for Den {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Den::Stdout(s) => s.as_fd(),
            Den::Stderr(s) => s.as_fd(),
        }
    }
}

/// One of den's own output streams as the relay writes it.
struct Sink {
    den: Den,
    /// Whether the container's stream reaches den's (`run -a`); it goes to the log either way.
    shown: bool,
    /// A non-blocking descriptor of the same pipe, when den's stream is a pipe.
    own: Option<std::fs::File>,
    pending: Vec<u8>,
    open: bool,
}

impl Sink {
    fn new(den: Den, shown: bool) -> Sink {
        use std::os::unix::fs::OpenOptionsExt;
        let raw = den.as_fd().as_raw_fd();
        let is_pipe =
            nix::sys::stat::fstat(raw).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFIFO);
        // A new open file description of the same pipe, which den alone uses.
        let own = is_pipe
            .then(|| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(format!("/proc/self/fd/{raw}"))
                    .ok()
            })
            .flatten();
        Sink {
            den,
            shown,
            own,
            pending: Vec::new(),
            open: true,
        }
    }

    fn fd(&self) -> BorrowedFd<'_> {
        match &self.own {
            Some(f) => f.as_fd(),
            None => self.den.as_fd(),
        }
    }

    /// Write `data` (after anything pending); what a non-blocking pipe does not take now stays
    /// pending. A closed reader closes the sink.
    fn push(&mut self, data: &[u8]) {
        if !self.open || !self.shown {
            return;
        }
        if self.own.is_none() {
            if write_all_fd(self.fd(), data).is_err() {
                self.open = false;
            }
            return;
        }
        self.pending.extend_from_slice(data);
        self.flush();
    }

    /// Write what is pending, as far as the pipe takes it.
    fn flush(&mut self) {
        while self.open && !self.pending.is_empty() {
            match nix::unistd::write(self.fd(), &self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return,
                Err(_) => {
                    self.open = false;
                    self.pending.clear();
                }
            }
        }
    }
}

/// How a foreground container is stopped when den is told to end: the grace the container gets
/// after the forwarded signal before it is killed (its stop timeout), and when that ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stop {
    grace: Duration,
    kill_at: Option<Instant>,
}

impl Stop {
    pub fn new(grace: Duration) -> Stop {
        Stop {
            grace,
            kill_at: None,
        }
    }

    /// Whether `sig`, received by den, asks den itself to end (and so the container).
    pub fn ends_den(sig: Signal) -> bool {
        matches!(sig, Signal::SIGTERM | Signal::SIGHUP)
    }

    /// den received `sig` at `now`: the first that ends den starts the grace.
    pub fn received(&mut self, sig: Signal, now: Instant) {
        if Stop::ends_den(sig) && self.kill_at.is_none() {
            self.kill_at = Some(now + self.grace);
        }
    }

    /// Whether the grace is over at `now`.
    pub fn due(&self, now: Instant) -> bool {
        self.kill_at.is_some_and(|t| now >= t)
    }

    /// How long a wait may last from `now` before the grace ends (None: no grace running).
    pub fn remaining(&self, now: Instant) -> Option<Duration> {
        self.kill_at.map(|t| t.saturating_duration_since(now))
    }
}

/// Wait for the container's init `pid` to exit, forwarding signals; copy `outputs` to den's
/// stdout and stderr (those `shown`: `run -a`) and into `log`; for a pty container, copy den's
/// terminal to it. With `stop` (a container den holds), a SIGTERM or SIGHUP to den kills the
/// container once its grace is over ([`Stop`]). Returns the container's exit status
/// (128+signal when killed), or None when the user typed `detach` keys on the terminal
/// (`exec -it`): the pty goes to a holder ([`super::tty::hand_off`]) and the process runs on.
pub fn supervise(
    pid: Pid,
    pty: Option<Pty>,
    outputs: Vec<Output>,
    log: Option<&mut Log>,
    shown: crate::store::AttachStreams,
    detach: Option<super::detach::DetachKeys>,
    stop: Option<Stop>,
) -> Result<Option<i32>, RuntimeError> {
    let mut relay = Relay::new(pid, pty, outputs, log, shown)?;
    relay.keys = detach.map(super::detach::Matcher::new);
    relay.stop = stop;
    let mut status: Option<i32> = None;
    let mut deadline: Option<Instant> = None;
    loop {
        if relay.detached {
            if let Some(p) = &relay.pty {
                super::tty::hand_off(p.master.as_fd())?;
            }
            return Ok(None);
        }
        if status.is_none() {
            status = reap(pid);
            if status.is_some() {
                deadline = Some(Instant::now() + DRAIN);
            } else if relay.stop.is_some_and(|s| s.due(Instant::now())) {
                // The grace is over: the container's init, and with it its pid namespace.
                tracing::debug!("stop timeout over: killing the container");
                let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
                relay.stop = None;
            }
        }
        if let Some(code) = status
            && relay.drained(deadline)
        {
            relay.flush_log();
            return Ok(Some(code));
        }
        let polled = relay.poll(status.is_some())?;
        if polled.ready[0] {
            relay.forward_signals();
        }
        for (fi, si) in &polled.sinks {
            if polled.ready[*fi] {
                relay.sinks[*si].flush();
            }
        }
        relay.read_outputs(&polled);
        relay.flush_log();
        if let Some(i) = polled.stdin
            && polled.ready[i]
        {
            relay.copy_stdin();
        }
    }
}

/// The error for a failed call `what` of the relay.
fn io(what: &'static str) -> impl Fn(Errno) -> RuntimeError {
    move |e: Errno| RuntimeError::Io {
        path: what.into(),
        source: e.into(),
    }
}

/// What [`supervise`] works with: the container's streams, den's own, and the signals.
struct Relay<'l> {
    pid: Pid,
    pty: Option<Pty>,
    outputs: Vec<Output>,
    log: Option<&'l mut Log>,
    sfd: SignalFd,
    stdin: std::io::Stdin,
    sinks: [Sink; 2],
    stdin_open: bool,
    buf: Vec<u8>,
    /// The detach keys on a terminal, and whether the user typed them.
    keys: Option<super::detach::Matcher>,
    detached: bool,
    /// How the container is stopped when den is told to end (None: signals only forwarded).
    stop: Option<Stop>,
}

/// One poll's answer: which descriptors were ready, by their place in the poll set (the
/// signalfd first), and which output, sink or stdin each place was.
struct Polled {
    ready: Vec<bool>,
    /// (place, index in `outputs`)
    outputs: Vec<(usize, usize)>,
    /// (place, index in `sinks`)
    sinks: Vec<(usize, usize)>,
    stdin: Option<usize>,
}

/// The sink an output goes to: den's stdout, or its stderr.
fn sink_of(s: Stream) -> usize {
    (s == Stream::Stderr) as usize
}

impl<'l> Relay<'l> {
    fn new(
        pid: Pid,
        pty: Option<Pty>,
        outputs: Vec<Output>,
        log: Option<&'l mut Log>,
        shown: crate::store::AttachStreams,
    ) -> Result<Relay<'l>, RuntimeError> {
        let sfd = SignalFd::with_flags(
            &supervised_signals(),
            SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
        )
        .map_err(io("signalfd"))?;
        let sinks = [
            Sink::new(Den::Stdout(std::io::stdout()), shown.stdout),
            Sink::new(Den::Stderr(std::io::stderr()), shown.stderr),
        ];
        let stdin_open = pty.as_ref().is_some_and(|p| p.stdin);
        for o in &outputs {
            crate::sys::set_nonblocking(o.fd.as_fd());
        }
        if let Some(p) = &pty {
            crate::sys::set_nonblocking(p.master.as_fd());
        }
        Ok(Relay {
            pid,
            pty,
            outputs,
            log,
            sfd,
            stdin: std::io::stdin(),
            sinks,
            stdin_open,
            buf: vec![0u8; 64 * 1024],
            keys: None,
            detached: false,
            stop: None,
        })
    }

    /// Whether an exited container's output is all relayed, or `deadline` has passed.
    fn drained(&self, deadline: Option<Instant>) -> bool {
        let drained = self.outputs.is_empty() && self.sinks.iter().all(|s| s.pending.is_empty());
        drained || deadline.is_some_and(|d| Instant::now() > d)
    }

    fn flush_log(&mut self) {
        if let Some(l) = self.log.as_deref_mut() {
            let _ = l.flush();
        }
    }

    /// Wait until something can be done: a signal, an output to read (once its sink has taken
    /// what was read before), a sink that takes more, den's terminal input while the container
    /// runs. Once it has `exited`, wait at most 100 ms at a time.
    fn poll(&self, exited: bool) -> Result<Polled, RuntimeError> {
        let mut fds = vec![PollFd::new(self.sfd.as_fd(), PollFlags::POLLIN)];
        // An output is read only once its sink has taken what was read before.
        let mut outputs = Vec::new();
        for (i, o) in self.outputs.iter().enumerate() {
            if self.sinks[sink_of(o.stream)].pending.is_empty() {
                fds.push(PollFd::new(o.fd.as_fd(), PollFlags::POLLIN));
                outputs.push((fds.len() - 1, i));
            }
        }
        let mut sinks = Vec::new();
        for (i, s) in self.sinks.iter().enumerate() {
            if s.open && !s.pending.is_empty() {
                fds.push(PollFd::new(s.fd(), PollFlags::POLLOUT));
                sinks.push((fds.len() - 1, i));
            }
        }
        let stdin = match (&self.pty, self.stdin_open && !exited) {
            (Some(_), true) => {
                fds.push(PollFd::new(self.stdin.as_fd(), PollFlags::POLLIN));
                Some(fds.len() - 1)
            }
            _ => None,
        };
        let grace = self.stop.and_then(|s| s.remaining(Instant::now()));
        let timeout = match (exited, grace) {
            (true, _) => PollTimeout::from(100u16),
            // Wake when the grace ends (a poll waits at most u16::MAX ms; the loop comes back).
            (false, Some(d)) => PollTimeout::from(d.as_millis().min(u16::MAX.into()) as u16),
            (false, None) => PollTimeout::NONE,
        };
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(io("poll")(e)),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| {
                f.revents().is_some_and(|r| {
                    r.intersects(
                        PollFlags::POLLIN
                            | PollFlags::POLLOUT
                            | PollFlags::POLLHUP
                            | PollFlags::POLLERR,
                    )
                })
            })
            .collect();
        Ok(Polled {
            ready,
            outputs,
            sinks,
            stdin,
        })
    }

    /// Pass the signals den received on to the container (a window size to its pty).
    fn forward_signals(&mut self) {
        while let Ok(Some(info)) = self.sfd.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGCHLD) => {}
                Ok(Signal::SIGWINCH) => {
                    if let Some(p) = &self.pty {
                        copy_winsize(p.master.as_fd());
                    }
                }
                Ok(s) => {
                    let _ = nix::sys::signal::kill(self.pid, s);
                    if let Some(stop) = &mut self.stop {
                        stop.received(s, Instant::now());
                    }
                }
                Err(_) => {}
            }
        }
    }

    /// Read the outputs that are ready into the log and their sinks; drop those that closed.
    fn read_outputs(&mut self, polled: &Polled) {
        let mut closed = Vec::new();
        for &(fi, oi) in &polled.outputs {
            if !polled.ready[fi] {
                continue;
            }
            let o = &self.outputs[oi];
            let sink = &mut self.sinks[sink_of(o.stream)];
            match nix::unistd::read(o.fd.as_raw_fd(), &mut self.buf) {
                // EIO: a pty whose last slave descriptor closed.
                Ok(0) | Err(Errno::EIO) => closed.push(oi),
                Ok(n) => {
                    if let Some(l) = self.log.as_deref_mut() {
                        let _ = l.write(o.stream, &self.buf[..n], Utc::now());
                    }
                    sink.push(&self.buf[..n]);
                    if !sink.open {
                        // den's reader went away: so does the container's stream.
                        closed.push(oi);
                    }
                }
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                Err(_) => closed.push(oi),
            }
        }
        closed.sort_unstable();
        closed.dedup();
        for i in closed.into_iter().rev() {
            self.outputs.remove(i);
        }
    }

    /// Copy den's terminal input to the container's pty; at its end, send the terminal's
    /// end-of-file character once.
    fn copy_stdin(&mut self) {
        let Some(p) = &self.pty else { return };
        match nix::unistd::read(self.stdin.as_raw_fd(), &mut self.buf) {
            Ok(0) | Err(_) => {
                // End of input: send the terminal's end-of-file character once.
                let _ = write_all_fd(p.master.as_fd(), &[4]);
                self.stdin_open = false;
            }
            Ok(n) => {
                let (pass, detached) = match &mut self.keys {
                    Some(k) => k.feed(&self.buf[..n]),
                    None => (self.buf[..n].to_vec(), false),
                };
                if write_all_fd(p.master.as_fd(), &pass).is_err() {
                    self.stdin_open = false;
                }
                self.detached = detached;
            }
        }
    }
}

/// Pipes for a container's stdout and stderr: the write ends for the container, the read ends
/// for [`supervise`].
pub fn output_pipes() -> Result<([OwnedFd; 2], Vec<Output>), RuntimeError> {
    let pipe = || {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| RuntimeError::Io {
            path: "pipe".into(),
            source: e.into(),
        })
    };
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    Ok((
        [out_w, err_w],
        vec![
            Output {
                fd: out_r,
                stream: Stream::Stdout,
            },
            Output {
                fd: err_r,
                stream: Stream::Stderr,
            },
        ],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn term_and_hup_start_the_grace_once_and_others_do_not() {
        let t0 = Instant::now();
        let mut s = Stop::new(Duration::from_secs(10));
        for sig in [Signal::SIGINT, Signal::SIGUSR1, Signal::SIGQUIT] {
            s.received(sig, t0);
        }
        assert_eq!(s.remaining(t0), None);
        assert!(!s.due(t0 + Duration::from_secs(3600)));
        s.received(Signal::SIGTERM, t0);
        assert_eq!(s.remaining(t0), Some(Duration::from_secs(10)));
        // A second SIGTERM (Slurm signals every process of the job; den's namespace helper
        // forwards it too) does not push the kill further away.
        s.received(Signal::SIGHUP, t0 + Duration::from_secs(5));
        assert!(!s.due(t0 + Duration::from_secs(9)));
        assert!(s.due(t0 + Duration::from_secs(10)));
        assert_eq!(
            s.remaining(t0 + Duration::from_secs(11)),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn a_zero_grace_is_due_at_once() {
        let t0 = Instant::now();
        let mut s = Stop::new(Duration::ZERO);
        s.received(Signal::SIGHUP, t0);
        assert!(s.due(t0));
    }
}
