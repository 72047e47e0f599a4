//! The attach protocol between a container's monitor and `den attach` / `den start -a`.
//!
//! A unix stream socket in den's runtime directory (`attach/<id12>`), one connection per
//! client. Frames are `[kind: u8][len: u32 big-endian][payload]`:
//!
//! - monitor to client: [`OUT`] and [`ERR`] carry the container's output, [`EXIT`] its status
//!   (4 bytes, i32 BE) as the last frame;
//! - client to monitor: [`IN`] carries stdin, [`IN_EOF`] closes it, [`RESIZE`] is rows and
//!   columns (two u16 BE) for a pty.
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
pub struct ClientOptions {
    /// Send our stdin to the container.
    pub stdin: bool,
    /// The container has a pty: put our terminal in raw mode, pass window sizes, and detach on
    /// ctrl-p ctrl-q as docker does.
    pub tty: bool,
}

/// The outcome of an attach.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    /// The user detached (ctrl-p ctrl-q); the container keeps running.
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
    crate::sys::block_signals(&sigs);
    let sfd = SignalFd::with_flags(&sigs, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).ok();
    if opts.tty {
        send_size(sock);
    }
    let mut dec = Decoder::default();
    let mut buf = vec![0u8; 64 * 1024];
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let mut saw_ctrl_p = false;
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
        if sig_ready {
            if let Some(s) = &sfd {
                while let Ok(Some(_)) = s.read_signal() {}
            }
            if opts.tty {
                send_size(sock);
            }
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
            if let Some(ended) = print_frames(&mut dec, &stdout, &stderr)? {
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
            if send_input(sock, &buf[..n], opts.tty, &mut saw_ctrl_p)? {
                return Ok(Ended::Detached);
            }
        }
    }
}

/// Print the monitor's frames decoded so far; `Some` once it sent the container's exit status.
fn print_frames(
    dec: &mut Decoder,
    stdout: &std::io::Stdout,
    stderr: &std::io::Stderr,
) -> std::io::Result<Option<Ended>> {
    while let Some((kind, data)) = dec.next_frame() {
        match kind {
            OUT => {
                let mut o = stdout.lock();
                o.write_all(&data)?;
                o.flush()?;
            }
            ERR => {
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

/// Send the user's input to the monitor; on a terminal, docker's detach keys (ctrl-p ctrl-q,
/// `saw_ctrl_p` carrying a ctrl-p across reads) send what came before them and return true.
fn send_input(
    sock: &mut UnixStream,
    data: &[u8],
    tty: bool,
    saw_ctrl_p: &mut bool,
) -> std::io::Result<bool> {
    if tty {
        for (i, &b) in data.iter().enumerate() {
            if *saw_ctrl_p && b == 0x11 {
                let _ = write_frame(sock, IN, &data[..i.saturating_sub(1)]);
                return Ok(true);
            }
            *saw_ctrl_p = b == 0x10;
        }
    }
    write_frame(sock, IN, data)?;
    Ok(false)
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
