//! The attach protocol between a container's monitor and `den attach` / `den start -a`.
//!
//! A unix stream socket in den's runtime directory (`attach/<id12>`), one connection per
//! client. Frames are `[kind: u8][len: u32 big-endian][payload]`:
//!
//! - monitor to client: [`OUT`] and [`ERR`] carry the container's output, [`EXIT`] its status
//!   (4 bytes, i32 BE) as the last frame;
//! - client to monitor: [`IN`] carries stdin, [`IN_EOF`] closes it, [`RESIZE`] is rows and
//!   columns (two u16 BE) for a pty, [`SIGNAL`] a signal number (i32 BE) for the container's
//!   init (docker's `--sig-proxy`).
//!
//! Hand-written: a dozen lines of framing; podman's attach is the same idea over SOCK_SEQPACKET.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::RuntimeError;

pub const OUT: u8 = 1;
pub const ERR: u8 = 2;
pub const EXIT: u8 = 3;
pub const IN: u8 = 10;
pub const IN_EOF: u8 = 11;
pub const RESIZE: u8 = 12;
pub const SIGNAL: u8 = 13;

/// The attach socket of container `id`.
pub fn socket_path(runtime_dir: &Path, id: &str) -> PathBuf {
    runtime_dir.join("attach").join(&id[..12.min(id.len())])
}

pub fn write_frame(w: &mut dyn Write, kind: u8, payload: &[u8]) -> std::io::Result<()> {
    let mut head = [0u8; 5];
    head[0] = kind;
    head[1..].copy_from_slice(&(payload.len() as u32).to_be_bytes());
    w.write_all(&head)?;
    w.write_all(payload)
}

/// Reassembles frames from a byte stream.
#[derive(Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    pub fn next_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        if self.buf.len() < 5 {
            return None;
        }
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if self.buf.len() < 5 + len {
            return None;
        }
        let kind = self.buf[0];
        let payload = self.buf[5..5 + len].to_vec();
        self.buf.drain(..5 + len);
        Some((kind, payload))
    }
}

/// What the client forwards.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Send our stdin to the container.
    pub stdin: bool,
    /// Print the container's stdout, its stderr (`run -a` picks; attach takes both).
    pub stdout: bool,
    pub stderr: bool,
    /// The container has a pty: put our terminal in raw mode, pass window sizes, and detach on
    /// the detach keys as docker does (without a pty, input passes unchanged, as docker's).
    pub tty: bool,
    pub detach_keys: super::detach::DetachKeys,
    /// Pass the signals den receives on to a container without a pty (docker's
    /// `--sig-proxy`); without, ctrl-c ends den alone and the container runs on.
    pub sig_proxy: bool,
}

impl ClientOptions {
    /// docker's attach: both outputs, the default detach keys, signals proxied.
    pub fn new(stdin: bool, tty: bool) -> ClientOptions {
        ClientOptions {
            stdin,
            stdout: true,
            stderr: true,
            tty,
            detach_keys: super::detach::DetachKeys::default(),
            sig_proxy: true,
        }
    }
}

/// The outcome of an attach.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    /// The user detached (the detach keys); the container keeps running.
    Detached,
    /// The monitor went away without a status (killed).
    Lost,
}

/// Attach to the monitor at `path` and copy streams until the container exits.
pub fn client(path: &Path, opts: &ClientOptions) -> Result<Ended, RuntimeError> {
    let io = |e: std::io::Error| RuntimeError::Io {
        path: path.into(),
        source: e,
    };
    let mut sock = UnixStream::connect(path).map_err(io)?;
    client_on(&mut sock, opts).map_err(io)
}

/// [`client`] on a connected socket.
pub fn client_on(sock: &mut UnixStream, opts: &ClientOptions) -> std::io::Result<Ended> {
    let stdin = std::io::stdin();
    let mut stdin_open = opts.stdin;
    let _raw = if opts.tty && opts.stdin {
        super::tty::RawMode::enter(stdin.as_fd())
    } else {
        None
    };
    let mut sigs = nix::sys::signal::SigSet::empty();
    sigs.add(Signal::SIGWINCH);
    if opts.sig_proxy && !opts.tty {
        // The signals a client passes on to a container without a terminal (docker's sig-proxy;
        // with a terminal, ctrl-c is a byte the container's terminal turns into its own SIGINT).
        for &s in crate::userns::FORWARDED {
            sigs.add(s);
        }
    }
    crate::sys::block_signals(&sigs);
    let sfd = SignalFd::with_flags(&sigs, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).ok();
    if opts.tty {
        send_size(sock);
    }
    let mut dec = Decoder::default();
    let mut buf = vec![0u8; 64 * 1024];
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let mut keys = super::detach::Matcher::new(opts.detach_keys.clone());
    loop {
        let mut fds = vec![PollFd::new(sock.as_fd(), PollFlags::POLLIN)];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        let sig_idx = sfd.as_ref().map(|s| {
            fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        let ready = |i: usize| {
            fds[i].revents().is_some_and(|r| {
                r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
            })
        };
        let (sock_ready, in_ready, sig_ready) =
            (ready(0), stdin_open && ready(1), sig_idx.is_some_and(ready));
        drop(fds);
        if sig_ready && let Some(s) = &sfd {
            pass_signals(sock, s, opts.tty)?;
        }
        if sock_ready {
            let n = match sock.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => 0,
            };
            if n == 0 {
                return Ok(Ended::Lost);
            }
            dec.push(&buf[..n]);
            if let Some(ended) = print_frames(&mut dec, opts, &stdout, &stderr)? {
                return Ok(ended);
            }
        }
        if in_ready {
            let n = nix::unistd::read(stdin.as_raw_fd(), &mut buf).unwrap_or(0);
            if n == 0 {
                stdin_open = false;
                write_frame(sock, IN_EOF, &[])?;
                continue;
            }
            if send_input(sock, &buf[..n], opts.tty, &mut keys)? {
                return Ok(Ended::Detached);
            }
        }
    }
}

/// Send the monitor the signals den received: a window size for a pty, the others for the
/// container's init (only those of docker's sig-proxy are caught).
fn pass_signals(sock: &mut UnixStream, sfd: &SignalFd, tty: bool) -> std::io::Result<()> {
    let mut winch = false;
    while let Ok(Some(info)) = sfd.read_signal() {
        if info.ssi_signo as i32 == Signal::SIGWINCH as i32 {
            winch = true;
        } else {
            write_frame(sock, SIGNAL, &(info.ssi_signo as i32).to_be_bytes())?;
        }
    }
    if winch && tty {
        send_size(sock);
    }
    Ok(())
}

/// Print the monitor's frames decoded so far; `Some` once it sent the container's exit status.
fn print_frames(
    dec: &mut Decoder,
    opts: &ClientOptions,
    stdout: &std::io::Stdout,
    stderr: &std::io::Stderr,
) -> std::io::Result<Option<Ended>> {
    while let Some((kind, data)) = dec.next_frame() {
        match kind {
            OUT if opts.stdout => {
                let mut o = stdout.lock();
                o.write_all(&data)?;
                o.flush()?;
            }
            ERR if opts.stderr => {
                let mut e = stderr.lock();
                e.write_all(&data)?;
                e.flush()?;
            }
            EXIT if data.len() == 4 => {
                return Ok(Some(Ended::Exited(i32::from_be_bytes([
                    data[0], data[1], data[2], data[3],
                ]))));
            }
            _ => {}
        }
    }
    Ok(None)
}

/// Send the user's input to the monitor; on a terminal, the detach keys (`keys` holding a
/// partial sequence across reads) send what came before them and return true.
fn send_input(
    sock: &mut UnixStream,
    data: &[u8],
    tty: bool,
    keys: &mut super::detach::Matcher,
) -> std::io::Result<bool> {
    if !tty {
        write_frame(sock, IN, data)?;
        return Ok(false);
    }
    let (pass, detached) = keys.feed(data);
    if !pass.is_empty() {
        write_frame(sock, IN, &pass)?;
    }
    Ok(detached)
}

fn send_size(sock: &mut UnixStream) {
    let size = crate::sys::get_winsize(std::io::stdout().as_fd())
        .or_else(|| crate::sys::get_winsize(std::io::stdin().as_fd()));
    if let Some(s) = size {
        let mut p = [0u8; 4];
        p[..2].copy_from_slice(&s.rows.to_be_bytes());
        p[2..].copy_from_slice(&s.cols.to_be_bytes());
        let _ = write_frame(sock, RESIZE, &p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_survive_any_split() {
        let mut wire = Vec::new();
        write_frame(&mut wire, OUT, b"hello").unwrap();
        write_frame(&mut wire, EXIT, &3i32.to_be_bytes()).unwrap();
        write_frame(&mut wire, IN_EOF, b"").unwrap();
        for split in 0..wire.len() {
            let mut d = Decoder::default();
            d.push(&wire[..split]);
            let mut got = Vec::new();
            while let Some(f) = d.next_frame() {
                got.push(f);
            }
            d.push(&wire[split..]);
            while let Some(f) = d.next_frame() {
                got.push(f);
            }
            assert_eq!(
                got,
                vec![
                    (OUT, b"hello".to_vec()),
                    (EXIT, vec![0, 0, 0, 3]),
                    (IN_EOF, vec![])
                ]
            );
        }
    }
}
