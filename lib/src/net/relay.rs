//! den-net's relay: one thread, one epoll set, every published port of a container.
//!
//! The thread has joined the container's network namespace, so the socket it opens for each
//! accepted connection lives inside the container and connects to the container port on its
//! loopback (the kernel's, not a userspace stack). Bytes move with splice(2) through a pipe per
//! direction, never entering user space. A direction holds a pipe only while bytes are queued in
//! it (or once it has grown for a bulk transfer): pipes come from a small pool and go back to it
//! as soon as they are empty, so a short connection costs accept, socket, connect and a few
//! splices, and an idle one costs its two sockets and nothing else. UDP ports and their flows
//! ([`super::udp`]) are served by the same loop.
//!
//! Written by hand rather than on an async runtime: the whole job is a dozen non-blocking
//! calls per event, and tokio has no splice; a readiness loop over raw descriptors is what
//! rootlessport, pasta and socat do as well. (The thread-per-connection relay this replaced
//! served half the requests per second.)
//!
//! Nothing a client does starts a thread or holds descriptors without bound (see
//! [`super::limits`]): each port has a cap on live connections, beyond which a connection is
//! reset at once; a connection idle for the timeout is closed by a sweep of the loop; and a
//! connection the container refuses (its server is still starting) is retried for two seconds
//! from a timer of the loop, not on a thread of its own.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, connect, socket};

use super::limits::Limits;
use super::udp::Udp;

/// Default pipe capacity; a direction that has moved [`BULK`] bytes grows its pipe to [`BIG`].
const BIG: usize = 1 << 20;
const BULK: u64 = 4 * BIG as u64;
/// Idle pipes kept for reuse.
const POOL: usize = 64;
/// Rounds of splicing one event may do before others get a turn.
const ROUNDS: usize = 16;
/// Connections accepted per readiness report of a listener.
const ACCEPTS: usize = 64;
/// How long a connection the container refuses is retried (a server still starting), and the
/// first and longest pause between tries.
const RETRY_FOR: Duration = Duration::from_secs(2);
const RETRY_FIRST: Duration = Duration::from_millis(5);
const RETRY_MOST: Duration = Duration::from_millis(100);

// Token layout in an epoll event: generation << 32 | index << 3 | kind.
pub(super) const LISTENER: u64 = 0;
pub(super) const CLIENT: u64 = 1;
pub(super) const SERVER: u64 = 2;
pub(super) const UDP_PORT: u64 = 3;
pub(super) const UDP_FLOW: u64 = 4;
/// The read end of the pipe whose closing ends the loop ([`Relay::stop_on`]).
pub(super) const STOP: u64 = 5;

pub(super) fn token(idx: usize, generation: u32, kind: u64) -> u64 {
    (generation as u64) << 32 | (idx as u64) << 3 | kind
}

/// A pipe (read end, write end) and its capacity.
struct Pipe {
    r: OwnedFd,
    w: OwnedFd,
    cap: usize,
}

impl Pipe {
    fn new() -> std::io::Result<Pipe> {
        let (r, w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)?;
        Ok(Pipe {
            r,
            w,
            cap: 64 * 1024,
        })
    }
}

/// Keep an empty pipe of the default size for reuse (a grown one would count its whole
/// capacity against the user's pipe budget while it waits).
fn recycle(pool: &mut Vec<Pipe>, pipe: Pipe) {
    if pipe.cap < BIG && pool.len() < POOL {
        pool.push(pipe);
    }
}

/// One direction of a connection: bytes read from one socket, queued in a pipe, written to the
/// other.
struct Dir {
    /// Held while bytes are queued, or once grown for a bulk transfer.
    pipe: Option<Pipe>,
    queued: usize,
    moved: u64,
    eof: bool,
    shut: bool,
}

impl Dir {
    fn new() -> Dir {
        Dir {
            pipe: None,
            queued: 0,
            moved: 0,
            eof: false,
            shut: false,
        }
    }

    /// Move what can be moved now from `src` to `dst` through a pipe from `pool`, and give the
    /// pipe back if it is left empty.
    fn pump(
        &mut self,
        src: &TcpStream,
        dst: &TcpStream,
        pool: &mut Vec<Pipe>,
    ) -> std::io::Result<Flow> {
        if self.finished() {
            return Ok(Flow::Drained);
        }
        let mut pipe = match self.pipe.take().or_else(|| pool.pop()) {
            Some(p) => p,
            None => Pipe::new()?,
        };
        let flow = self.pump_through(&mut pipe, src, dst);
        if self.queued > 0 || pipe.cap >= BIG {
            self.pipe = Some(pipe);
        } else {
            recycle(pool, pipe);
        }
        flow
    }

    /// Splice until a side would block (the loop is edge-triggered: readiness is reported again
    /// only after EAGAIN) or the round budget is spent. An error ends the connection.
    fn pump_through(
        &mut self,
        pipe: &mut Pipe,
        src: &TcpStream,
        dst: &TcpStream,
    ) -> std::io::Result<Flow> {
        for _ in 0..ROUNDS {
            while self.queued > 0 {
                match crate::sys::splice(pipe.r.as_fd(), dst.as_fd(), self.queued) {
                    Ok(n) => self.queued -= n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        return Ok(Flow::Blocked);
                    }
                    Err(e) => return Err(e),
                }
            }
            if self.eof {
                return Ok(Flow::Drained);
            }
            if pipe.cap < BIG && self.moved >= BULK {
                // Fewer calls per byte for a bulk transfer; a refusal keeps the pipe as it is.
                pipe.cap = crate::sys::set_pipe_size(pipe.w.as_fd(), BIG).unwrap_or(BIG);
            }
            match crate::sys::splice(src.as_fd(), pipe.w.as_fd(), pipe.cap) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.queued += n;
                    self.moved += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(Flow::Blocked),
                Err(e) => return Err(e),
            }
        }
        Ok(Flow::More)
    }

    /// The source has ended and everything read has been written.
    fn finished(&self) -> bool {
        self.eof && self.queued == 0
    }
}

/// Why [`Dir::pump`] stopped.
#[derive(PartialEq)]
enum Flow {
    /// A socket would block: readiness will be reported.
    Blocked,
    /// The source ended and the pipe is empty.
    Drained,
    /// The round budget ran out with work left: drive the connection again.
    More,
}

struct Conn {
    client: TcpStream,
    server: TcpStream,
    /// Tells a reused slot's events from stale ones of the connection that had it before.
    generation: u32,
    /// The non-blocking connect into the container has not completed yet.
    connecting: bool,
    /// The published port (index into the relay's ports).
    port: usize,
    /// Until when a refusal by the container is retried.
    until: Instant,
    /// When the connection last had an event (bytes, or an end).
    last: Instant,
    /// Client to server, and server to client.
    up: Dir,
    down: Dir,
}

/// A published TCP port.
struct Port {
    listener: TcpListener,
    cport: u16,
    /// Connections held: live, connecting, or waiting to retry.
    live: usize,
    /// Taken out of the epoll set after accept(2) ran out of descriptors.
    paused: bool,
}

/// A connection the container refused, to be tried again at `at`.
struct Retry {
    client: TcpStream,
    port: usize,
    until: Instant,
    at: Instant,
    pause: Duration,
}

/// Readiness on either socket; sockets are registered once, edge-triggered, for both.
const WATCH: EpollFlags = EpollFlags::EPOLLIN
    .union(EpollFlags::EPOLLOUT)
    .union(EpollFlags::EPOLLRDHUP)
    .union(EpollFlags::EPOLLET);
const INPUT: EpollFlags = EpollFlags::EPOLLIN
    .union(EpollFlags::EPOLLRDHUP)
    .union(EpollFlags::EPOLLHUP)
    .union(EpollFlags::EPOLLERR);

/// The relay's state: ports, live connections (a slab indexed by token), the pipe pool, the
/// connections waiting to retry, the UDP flows.
pub struct Relay {
    epoll: Epoll,
    limits: Limits,
    ports: Vec<Port>,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    generation: u32,
    /// Connections whose round budget ran out, driven again after the current batch.
    again: Vec<(usize, u32)>,
    pool: Vec<Pipe>,
    retries: Vec<Retry>,
    udp: Udp,
    /// The time of the current batch of events (one clock read per wake-up).
    now: Instant,
    next_sweep: Instant,
}

impl Relay {
    /// A relay for `tcp` and `udp` (host socket, container port), within `limits`.
    pub fn new(
        tcp: Vec<(TcpListener, u16)>,
        udp: Vec<(UdpSocket, u16)>,
        limits: Limits,
    ) -> std::io::Result<Relay> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        let mut ports = Vec::new();
        for (i, (listener, cport)) in tcp.into_iter().enumerate() {
            listener.set_nonblocking(true)?;
            epoll.add(
                &listener,
                EpollEvent::new(EpollFlags::EPOLLIN, token(i, 0, LISTENER)),
            )?;
            ports.push(Port {
                listener,
                cport,
                live: 0,
                paused: false,
            });
        }
        let udp = Udp::new(udp, &epoll, limits)?;
        let now = Instant::now();
        Ok(Relay {
            epoll,
            limits,
            ports,
            conns: Vec::new(),
            free: Vec::new(),
            generation: 0,
            again: Vec::new(),
            pool: Vec::new(),
            retries: Vec::new(),
            udp,
            now,
            next_sweep: now + limits.sweep_every(),
        })
    }

    /// Serve forever on the calling thread, which must already be in the container's
    /// network namespace.
    pub fn run(mut self) {
        let mut events = vec![EpollEvent::empty(); 256];
        let mut stopped = false;
        while !stopped {
            let timeout = if self.again.is_empty() {
                self.until_next_timer()
            } else {
                EpollTimeout::ZERO
            };
            let n = match self.epoll.wait(&mut events, timeout) {
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "epoll_wait");
                    return;
                }
            };
            self.now = Instant::now();
            for ev in &events[..n] {
                let data = ev.data();
                let (idx, generation) = (((data & 0xffff_ffff) >> 3) as usize, (data >> 32) as u32);
                match data & 7 {
                    STOP => stopped = true,
                    LISTENER => self.accept(idx),
                    UDP_PORT => self.udp.client_datagrams(idx, &self.epoll, self.now),
                    UDP_FLOW => self.udp.server_datagrams(idx, generation, self.now),
                    kind => self.drive(idx, generation, kind, ev.events()),
                }
            }
            for (idx, generation) in std::mem::take(&mut self.again) {
                self.drive(idx, generation, CLIENT, INPUT | EpollFlags::EPOLLOUT);
            }
            if !self.retries.is_empty() {
                self.retry_due();
            }
            if self.now >= self.next_sweep {
                self.sweep();
                self.next_sweep = self.now + self.limits.sweep_every();
            }
        }
    }

    /// End [`Relay::run`] (dropping every connection and port) once `stop`, the read end of a
    /// pipe, reports its write end closed.
    pub fn stop_on(&self, stop: &OwnedFd) -> std::io::Result<()> {
        self.epoll.add(
            stop,
            EpollEvent::new(EpollFlags::EPOLLIN, token(0, 0, STOP)),
        )?;
        Ok(())
    }

    /// The wait until the next retry or sweep is due.
    fn until_next_timer(&self) -> EpollTimeout {
        let next = self
            .retries
            .iter()
            .map(|r| r.at)
            .fold(self.next_sweep, Instant::min);
        let wait = next.saturating_duration_since(Instant::now());
        // Rounded up: waking a little early would only spin until the timer is due.
        let ms = wait.as_micros().div_ceil(1000).min(u16::MAX as u128) as u16;
        EpollTimeout::from(ms)
    }

    fn accept(&mut self, p: usize) {
        for _ in 0..ACCEPTS {
            let client = match crate::sys::accept_nonblocking(&self.ports[p].listener) {
                Ok(c) => c,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => continue,
                Err(e) => {
                    // EMFILE and friends: the limits should make this impossible, but if it
                    // happens, stop listening (the listener is level-triggered: it would spin)
                    // until a connection closes or the next sweep.
                    tracing::debug!(error = %e, "accept");
                    self.pause(p);
                    return;
                }
            };
            if self.ports[p].live >= self.limits.tcp_max {
                tracing::debug!(port = self.ports[p].cport, "connection cap reached");
                refuse(client);
                continue;
            }
            self.ports[p].live += 1;
            let _ = client.set_nodelay(true);
            self.open(client, p, self.now + RETRY_FOR, RETRY_FIRST);
        }
    }

    /// Connect `client`'s connection on port `p` into the container; a refusal is tried again
    /// after `pause` until `until`, then the client is closed.
    fn open(&mut self, client: TcpStream, p: usize, until: Instant, pause: Duration) {
        match connect_nonblocking(self.ports[p].cport) {
            Ok((server, connecting)) => self.insert(client, server, connecting, p, until),
            Err(Errno::ECONNREFUSED) if self.now < until => self.retries.push(Retry {
                client,
                port: p,
                until,
                at: self.now + pause,
                pause: (pause * 2).min(RETRY_MOST),
            }),
            Err(e) => {
                tracing::debug!(error = %e, port = self.ports[p].cport, "connect into the container");
                self.release(p);
            }
        }
    }

    /// Try the connections whose pause is over.
    fn retry_due(&mut self) {
        let mut i = 0;
        while i < self.retries.len() {
            if self.retries[i].at <= self.now {
                let r = self.retries.swap_remove(i);
                self.open(r.client, r.port, r.until, r.pause);
            } else {
                i += 1;
            }
        }
    }

    fn insert(
        &mut self,
        client: TcpStream,
        server: TcpStream,
        connecting: bool,
        port: usize,
        until: Instant,
    ) {
        let idx = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        self.generation = self.generation.wrapping_add(1);
        let generation = self.generation;
        if self
            .epoll
            .add(
                &client,
                EpollEvent::new(WATCH, token(idx, generation, CLIENT)),
            )
            .is_err()
            || self
                .epoll
                .add(
                    &server,
                    EpollEvent::new(WATCH, token(idx, generation, SERVER)),
                )
                .is_err()
        {
            self.free.push(idx);
            self.release(port);
            return;
        }
        self.conns[idx] = Some(Conn {
            client,
            server,
            generation,
            connecting,
            port,
            until,
            last: self.now,
            up: Dir::new(),
            down: Dir::new(),
        });
    }

    /// Handle readiness `events` on one side (`kind`) of connection `idx`: pump the direction
    /// that side feeds when it has input, the one it drains when it can take output.
    fn drive(&mut self, idx: usize, generation: u32, kind: u64, events: EpollFlags) {
        let Some(conn) = self.conns.get_mut(idx).and_then(|c| c.as_mut()) else {
            return;
        };
        if conn.generation != generation {
            return;
        }
        conn.last = self.now;
        let (mut up, down) = match (
            kind,
            events.intersects(INPUT),
            events.contains(EpollFlags::EPOLLOUT),
        ) {
            (CLIENT, i, o) => (i, o),
            (_, i, o) => (o, i),
        };
        if conn.connecting {
            if kind != SERVER {
                // The client's first bytes wait in its socket until the server side is up.
                return;
            }
            if events.intersects(EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP) {
                let refused = matches!(conn.server.take_error(), Ok(Some(e)) if e.raw_os_error() == Some(libc::ECONNREFUSED));
                let (client, port, until) = self.remove(idx);
                if refused && self.now < until {
                    let _ = self.epoll.delete(&client);
                    self.retries.push(Retry {
                        client,
                        port,
                        until,
                        at: self.now + RETRY_FIRST,
                        pause: RETRY_FIRST * 2,
                    });
                } else {
                    self.release(port);
                }
                return;
            }
            // Connected. The client may have written already (its edge was passed over
            // above); the server's first bytes, if any, come with this same event.
            conn.connecting = false;
            up = true;
        }
        let mut flows = [Ok(Flow::Blocked), Ok(Flow::Blocked)];
        if up {
            flows[0] = conn.up.pump(&conn.client, &conn.server, &mut self.pool);
        }
        if down {
            flows[1] = conn.down.pump(&conn.server, &conn.client, &mut self.pool);
        }
        if flows.iter().any(|f| f.is_err()) {
            self.close(idx);
            return;
        }
        let more = flows.iter().any(|f| matches!(f, Ok(Flow::More)));
        match (conn.up.finished(), conn.down.finished()) {
            // Both ends are done: closing both sockets says all there is to say.
            (true, true) => {
                self.close(idx);
                return;
            }
            // One end is done: pass the half-close on, once.
            (true, false) if !conn.up.shut => {
                let _ = conn.server.shutdown(std::net::Shutdown::Write);
                conn.up.shut = true;
            }
            (false, true) if !conn.down.shut => {
                let _ = conn.client.shutdown(std::net::Shutdown::Write);
                conn.down.shut = true;
            }
            _ => {}
        }
        if more {
            self.again.push((idx, generation));
        }
    }

    /// Take a connection out, keeping its pipes for reuse when they are empty. The server
    /// socket is closed (which also takes it out of the epoll set); the client socket is
    /// returned, closed when the caller drops it, with its port and retry deadline. The port's
    /// count still includes it: see [`Relay::close`].
    fn remove(&mut self, idx: usize) -> (TcpStream, usize, Instant) {
        let conn = self.conns[idx].take().expect("live connection");
        self.free.push(idx);
        for d in [conn.up, conn.down] {
            if let Some(pipe) = d.pipe
                && d.queued == 0
            {
                recycle(&mut self.pool, pipe);
            }
        }
        (conn.client, conn.port, conn.until)
    }

    /// Close a connection and free its place under its port's cap.
    fn close(&mut self, idx: usize) {
        let (_, port, _) = self.remove(idx);
        self.release(port);
    }

    /// A connection of port `p` is gone: count it out, and listen again where accept(2) had
    /// run out of descriptors.
    fn release(&mut self, p: usize) {
        self.ports[p].live -= 1;
        self.resume();
    }

    fn pause(&mut self, p: usize) {
        let port = &mut self.ports[p];
        if !port.paused && self.epoll.delete(&port.listener).is_ok() {
            port.paused = true;
        }
    }

    fn resume(&mut self) {
        for (i, port) in self.ports.iter_mut().enumerate() {
            if port.paused
                && self
                    .epoll
                    .add(
                        &port.listener,
                        EpollEvent::new(EpollFlags::EPOLLIN, token(i, 0, LISTENER)),
                    )
                    .is_ok()
            {
                port.paused = false;
            }
        }
    }

    /// Close the connections and flows idle for their timeout; listen again on paused ports.
    fn sweep(&mut self) {
        if let Some(idle) = self.limits.tcp_idle {
            for idx in 0..self.conns.len() {
                if let Some(c) = &self.conns[idx]
                    && self.now.saturating_duration_since(c.last) >= idle
                {
                    tracing::debug!(port = self.ports[c.port].cport, "idle connection closed");
                    self.close(idx);
                }
            }
        }
        self.udp.sweep(self.now);
        self.resume();
    }
}

/// Turn a connection away beyond the cap: close it with a reset, which a client reports at once
/// (a plain close would look like a server that answered nothing).
fn refuse(client: TcpStream) {
    let _ = nix::sys::socket::setsockopt(
        &client,
        nix::sys::socket::sockopt::Linger,
        &libc::linger {
            l_onoff: 1,
            l_linger: 0,
        },
    );
}

/// Start a connection to the container port on the (container's) loopback without blocking:
/// a server whose accept queue is full would otherwise stall every other connection for the
/// SYN retry. Returns the socket and whether the connect is still in progress.
fn connect_nonblocking(cport: u16) -> Result<(TcpStream, bool), Errno> {
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let addr = SockaddrIn::from(SocketAddrV4::new(Ipv4Addr::LOCALHOST, cport));
    let connecting = match connect(fd.as_raw_fd(), &addr) {
        Ok(()) => false,
        Err(Errno::EINPROGRESS) => true,
        Err(e) => return Err(e),
    };
    let stream = TcpStream::from(fd);
    let _ = stream.set_nodelay(true);
    Ok((stream, connecting))
}
