//! den-net's relay: one thread, one epoll set, every published port of a container.
//!
//! The thread has joined the container's network namespace, so the socket it opens for each
//! accepted connection lives inside the container and connects to the container port on its
//! loopback (the kernel's, not a userspace stack). Bytes move with splice(2) through a pipe per
//! direction, never entering user space. A direction holds a pipe only while bytes are queued in
//! it (or once it has grown for a bulk transfer): pipes come from a small pool and go back to it
//! as soon as they are empty, so a short connection costs accept, socket, connect and a few
//! splices, and an idle one costs its two sockets and nothing else. When every pipe the
//! descriptor budget allows is in use, a direction moves its bytes without one: it peeks at
//! what the source holds, writes what the destination takes, and only then consumes that much,
//! so nothing is held in between and no connection waits for a pipe. UDP ports and their flows
//! ([`super::udp`]) are served by the same loop.
//!
//! Memory: a live connection is one 80-byte slot in a table whose room for the whole cap is
//! reserved (address space only) when the relay starts, so the table never moves as it grows
//! (a growing `Vec` leaves each smaller copy behind in the heap, which doubled what every
//! connection cost); times are milliseconds since the relay began, not 16-byte `Instant`s.
//! The per-connection calls are `sys::hot`'s, which report errno as a number: a monitor keeps
//! resident every folio of code its relay runs, and std's and nix's errno conversions, clock
//! and `u128` division each sit in one (see that module).
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

use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

use crate::sys::hot::{self, OsErr};

use super::limits::Limits;
use super::udp::Udp;

/// Default pipe capacity; a direction that has moved [`BULK`] bytes grows its pipe to [`BIG`].
const BIG: usize = 1 << 20;
const BULK: u32 = 4 * BIG as u32;
/// Idle pipes kept for reuse.
const POOL: usize = 64;
/// What the pipeless path reads at once.
const PEEK: usize = 64 * 1024;
/// Table slots reserved (as address space) when the relay starts; beyond, the table grows.
const RESERVED_SLOTS: usize = 1 << 16;
/// Rounds of splicing one event may do before others get a turn.
const ROUNDS: usize = 16;
/// Connections accepted per readiness report of a listener.
const ACCEPTS: usize = 64;
/// How long a connection the container refuses is retried (a server still starting), and the
/// first and longest pause between tries.
const RETRY_FOR: Ms = 2000;
const RETRY_FIRST: Ms = 5;
const RETRY_MOST: Ms = 100;

// Token layout in an epoll event: generation << 32 | index << 3 | kind.
pub(super) const LISTENER: u64 = 0;
pub(super) const CLIENT: u64 = 1;
pub(super) const SERVER: u64 = 2;
pub(super) const UDP_PORT: u64 = 3;
pub(super) const UDP_FLOW: u64 = 4;
/// The read end of the pipe whose closing ends the loop ([`Relay::stop_on`]).
pub(super) const STOP: u64 = 5;

/// Milliseconds since the relay started (the times a connection keeps: 8 bytes, not 16).
pub(super) type Ms = u64;

/// A duration in [`Ms`], saturating (without `as_millis`'s `u128` division).
pub(super) fn ms(d: Duration) -> Ms {
    d.as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(d.subsec_millis()))
}

pub(super) fn token(idx: usize, generation: u32, kind: u64) -> u64 {
    (generation as u64) << 32 | (idx as u64) << 3 | kind
}

/// A pipe (read end, write end) and its capacity.
struct Pipe {
    r: OwnedFd,
    w: OwnedFd,
    cap: u32,
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

    fn grown(&self) -> bool {
        self.cap as usize >= BIG
    }
}

/// Every pipe of the relay: the empty ones kept for reuse, how many are open (in the pool or
/// held by a direction), the most that may be, and the buffer of the path that needs none.
struct Pipes {
    pool: Vec<Pipe>,
    open: usize,
    max: usize,
    peek: Vec<u8>,
}

impl Pipes {
    fn new(max: usize) -> Pipes {
        Pipes {
            pool: Vec::new(),
            open: 0,
            max,
            peek: Vec::new(),
        }
    }

    /// A pipe from the pool, or a new one while the budget and the kernel allow.
    fn take(&mut self) -> Option<Pipe> {
        if let Some(p) = self.pool.pop() {
            return Some(p);
        }
        if self.open >= self.max {
            return None;
        }
        let pipe = Pipe::new().ok()?;
        self.open += 1;
        Some(pipe)
    }

    /// Keep an empty pipe of the default size for reuse (a grown one would count its whole
    /// capacity against the user's pipe budget while it waits); close any other.
    fn give(&mut self, pipe: Pipe) {
        if !pipe.grown() && self.pool.len() < POOL {
            self.pool.push(pipe);
        } else {
            self.close(pipe);
        }
    }

    fn close(&mut self, pipe: Pipe) {
        drop(pipe);
        self.open -= 1;
    }

    /// The buffer of the pipeless path, made on first use.
    fn buffer(&mut self) -> &mut [u8] {
        if self.peek.is_empty() {
            self.peek = vec![0; PEEK];
        }
        &mut self.peek
    }
}

/// One direction of a connection: bytes read from one socket, queued in a pipe, written to the
/// other.
struct Dir {
    /// Held while bytes are queued, or once grown for a bulk transfer.
    pipe: Option<Pipe>,
    queued: u32,
    /// Bytes moved, counted up to [`BULK`] (all that is asked of it).
    moved: u32,
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

    /// Move what can be moved now from `src` to `dst` through a pipe from `pipes`, and give the
    /// pipe back if it is left empty; with no pipe to be had, move it without one.
    fn pump(&mut self, src: &TcpStream, dst: &TcpStream, pipes: &mut Pipes) -> Result<Flow, OsErr> {
        if self.finished() {
            return Ok(Flow::Drained);
        }
        // A direction with bytes queued holds its pipe, so the pipeless path never overtakes them.
        let Some(mut pipe) = self.pipe.take().or_else(|| pipes.take()) else {
            return self.pump_unpiped(src, dst, pipes.buffer());
        };
        let flow = self.pump_through(&mut pipe, src, dst);
        if self.queued > 0 || pipe.grown() {
            self.pipe = Some(pipe);
        } else {
            pipes.give(pipe);
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
    ) -> Result<Flow, OsErr> {
        for _ in 0..ROUNDS {
            while self.queued > 0 {
                match hot::splice(pipe.r.as_fd(), dst.as_fd(), self.queued as usize) {
                    Ok(n) => self.queued -= n as u32,
                    Err(e) if e.would_block() => return Ok(Flow::Blocked),
                    Err(e) => return Err(e),
                }
            }
            if self.eof {
                return Ok(Flow::Drained);
            }
            if !pipe.grown() && self.moved >= BULK {
                // Fewer calls per byte for a bulk transfer; a refusal keeps the pipe as it is.
                let cap = crate::sys::set_pipe_size(pipe.w.as_fd(), BIG).unwrap_or(BIG);
                pipe.cap = cap.min(u32::MAX as usize) as u32;
            }
            match hot::splice(src.as_fd(), pipe.w.as_fd(), pipe.cap as usize) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.queued += n as u32;
                    self.moved = self.moved.saturating_add(n as u32).min(BULK);
                }
                Err(e) if e.would_block() => return Ok(Flow::Blocked),
                Err(e) => return Err(e),
            }
        }
        Ok(Flow::More)
    }

    /// The path without a pipe: peek at what `src` holds, write what `dst` takes, then consume
    /// exactly that much from `src`. Nothing is held here between calls (`queued` stays 0).
    fn pump_unpiped(
        &mut self,
        src: &TcpStream,
        dst: &TcpStream,
        buf: &mut [u8],
    ) -> Result<Flow, OsErr> {
        for _ in 0..ROUNDS {
            let n = match hot::recv(src.as_fd(), buf, libc::MSG_PEEK) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(Flow::Drained);
                }
                Ok(n) => n,
                Err(e) if e.would_block() => return Ok(Flow::Blocked),
                Err(e) => return Err(e),
            };
            let sent = match hot::send(dst.as_fd(), &buf[..n]) {
                Ok(m) => m,
                Err(e) if e.would_block() => return Ok(Flow::Blocked),
                Err(e) => return Err(e),
            };
            // TCP discards what MSG_TRUNC receives; what was peeked is still there to take.
            hot::recv(src.as_fd(), &mut buf[..sent], libc::MSG_TRUNC)?;
            self.moved = self.moved.saturating_add(sent as u32).min(BULK);
            if sent < n {
                // The destination is full: its readiness will bring this direction back.
                return Ok(Flow::Blocked);
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
    /// The published port (index into the relay's ports; [`Relay::new`] refuses more than fit).
    port: u16,
    /// Until when a refusal by the container is retried.
    until: Ms,
    /// When the connection last had an event (bytes, or an end).
    last: Ms,
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
    until: Ms,
    at: Ms,
    pause: Ms,
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
    free: Vec<u32>,
    generation: u32,
    /// Connections whose round budget ran out, driven again after the current batch.
    again: Vec<(usize, u32)>,
    pipes: Pipes,
    retries: Vec<Retry>,
    udp: Udp,
    /// The time of the current batch of events (one clock read per wake-up), in milliseconds
    /// since `epoch`, the relay's start on the monotonic clock.
    now_ms: Ms,
    epoch: u64,
    next_sweep: Ms,
    sweep_every: Ms,
    tcp_idle: Option<Ms>,
}

impl Relay {
    /// A relay for `tcp` and `udp` (host socket, container port), within `limits`.
    pub fn new(
        tcp: Vec<(TcpListener, u16)>,
        udp: Vec<(UdpSocket, u16)>,
        limits: Limits,
    ) -> std::io::Result<Relay> {
        if tcp.len() > usize::from(u16::MAX) + 1 {
            return Err(std::io::Error::other(
                "more TCP ports than one relay serves",
            ));
        }
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
        // Room for every connection the caps allow, as address space: pages are only made
        // resident as slots are used, and the table never moves.
        let slots = limits
            .tcp_max
            .saturating_mul(ports.len())
            .min(RESERVED_SLOTS);
        Ok(Relay {
            epoll,
            limits,
            ports,
            conns: Vec::with_capacity(slots),
            free: Vec::with_capacity(slots),
            generation: 0,
            again: Vec::new(),
            pipes: Pipes::new(limits.pipes),
            retries: Vec::new(),
            udp,
            now_ms: 0,
            epoch: hot::monotonic_ms(),
            next_sweep: ms(limits.sweep_every()),
            sweep_every: ms(limits.sweep_every()),
            tcp_idle: limits.tcp_idle.map(ms),
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
            self.now_ms = self.clock();
            for ev in &events[..n] {
                let data = ev.data();
                let (idx, generation) = (((data & 0xffff_ffff) >> 3) as usize, (data >> 32) as u32);
                match data & 7 {
                    STOP => stopped = true,
                    LISTENER => self.accept(idx),
                    UDP_PORT => self.udp.client_datagrams(idx, &self.epoll, self.now_ms),
                    UDP_FLOW => self.udp.server_datagrams(idx, generation, self.now_ms),
                    kind => self.drive(idx, generation, kind, ev.events()),
                }
            }
            for (idx, generation) in std::mem::take(&mut self.again) {
                self.drive(idx, generation, CLIENT, INPUT | EpollFlags::EPOLLOUT);
            }
            if !self.retries.is_empty() {
                self.retry_due();
            }
            if self.now_ms >= self.next_sweep {
                self.sweep();
                self.next_sweep = self.now_ms + self.sweep_every;
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

    /// Milliseconds since the relay started.
    fn clock(&self) -> Ms {
        hot::monotonic_ms().saturating_sub(self.epoch)
    }

    /// The wait until the next retry or sweep is due. Clock and timers count whole
    /// milliseconds, so a wait ends at or after the millisecond its timer is due in.
    fn until_next_timer(&self) -> EpollTimeout {
        let next = self
            .retries
            .iter()
            .map(|r| r.at)
            .fold(self.next_sweep, Ms::min);
        let wait = next.saturating_sub(self.clock()).min(u64::from(u16::MAX)) as u16;
        EpollTimeout::from(wait)
    }

    fn accept(&mut self, p: usize) {
        for _ in 0..ACCEPTS {
            let client = match hot::accept(self.ports[p].listener.as_fd()) {
                Ok(c) => TcpStream::from(c),
                Err(e) if e.would_block() => return,
                Err(OsErr(libc::ECONNABORTED)) => continue,
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
            hot::set_nodelay(client.as_fd());
            self.open(client, p, self.now_ms + RETRY_FOR, RETRY_FIRST);
        }
    }

    /// Connect `client`'s connection on port `p` into the container; a refusal is tried again
    /// after `pause` until `until`, then the client is closed.
    fn open(&mut self, client: TcpStream, p: usize, until: Ms, pause: Ms) {
        // Not blocking: a server whose accept queue is full would otherwise stall every other
        // connection for the SYN retry.
        match hot::connect_loopback(self.ports[p].cport) {
            Ok((server, connecting)) => {
                self.insert(client, TcpStream::from(server), connecting, p, until);
            }
            Err(OsErr(libc::ECONNREFUSED)) if self.now_ms < until => self.retries.push(Retry {
                client,
                port: p,
                until,
                at: self.now_ms + pause,
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
            if self.retries[i].at <= self.now_ms {
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
        until: Ms,
    ) {
        let idx = match self.free.pop() {
            Some(i) => i as usize,
            None => {
                self.conns.push(None);
                self.conns.len() - 1
            }
        };
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
            self.free.push(idx as u32);
            self.release(port);
            return;
        }
        self.conns[idx] = Some(Conn {
            client,
            server,
            generation,
            connecting,
            port: port as u16,
            until,
            last: self.now_ms,
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
        conn.last = self.now_ms;
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
                if refused && self.now_ms < until {
                    let _ = self.epoll.delete(&client);
                    self.retries.push(Retry {
                        client,
                        port,
                        until,
                        at: self.now_ms + RETRY_FIRST,
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
            flows[0] = conn.up.pump(&conn.client, &conn.server, &mut self.pipes);
        }
        if down {
            flows[1] = conn.down.pump(&conn.server, &conn.client, &mut self.pipes);
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
                hot::shutdown_write(conn.server.as_fd());
                conn.up.shut = true;
            }
            (false, true) if !conn.down.shut => {
                hot::shutdown_write(conn.client.as_fd());
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
    fn remove(&mut self, idx: usize) -> (TcpStream, usize, Ms) {
        let conn = self.conns[idx].take().expect("live connection");
        self.free.push(idx as u32);
        for d in [conn.up, conn.down] {
            match d.pipe {
                Some(pipe) if d.queued == 0 => self.pipes.give(pipe),
                Some(pipe) => self.pipes.close(pipe),
                None => {}
            }
        }
        (conn.client, usize::from(conn.port), conn.until)
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
        if let Some(idle) = self.tcp_idle {
            for idx in 0..self.conns.len() {
                if let Some(c) = &self.conns[idx]
                    && self.now_ms.saturating_sub(c.last) >= idle
                {
                    let port = self.ports[usize::from(c.port)].cport;
                    tracing::debug!(port, "idle connection closed");
                    self.close(idx);
                }
            }
        }
        self.udp.sweep(self.now_ms);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::Shutdown;
    use std::thread;

    fn limits(pipes: usize) -> Limits {
        Limits {
            tcp_idle: None,
            tcp_max: 64,
            udp_idle: None,
            udp_max: 1,
            pipes,
        }
    }

    /// A relay in the test's own network namespace, from a loopback port to an echo server.
    /// Returns that port, the pipe end whose closing stops the relay, and its thread.
    fn echo_relay(pipes: usize) -> (u16, OwnedFd, thread::JoinHandle<()>) {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let server_port = server.local_addr().unwrap().port();
        thread::spawn(move || {
            for s in server.incoming() {
                let mut s = s.unwrap();
                thread::spawn(move || {
                    let mut r = s.try_clone().unwrap();
                    std::io::copy(&mut r, &mut s).unwrap();
                    s.shutdown(Shutdown::Write).unwrap();
                });
            }
        });
        let front = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = front.local_addr().unwrap().port();
        let relay = Relay::new(vec![(front, server_port)], vec![], limits(pipes)).unwrap();
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        relay.stop_on(&r).unwrap();
        let h = thread::spawn(move || {
            let _r = r;
            relay.run();
        });
        (port, w, h)
    }

    /// Send `len` bytes through the relay and its echo, half-close, and read them all back.
    fn round_trip(port: u16, len: usize) {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut w = c.try_clone().unwrap();
        let sent = data.clone();
        let writer = thread::spawn(move || {
            w.write_all(&sent).unwrap();
            w.shutdown(Shutdown::Write).unwrap();
        });
        let mut back = Vec::new();
        c.read_to_end(&mut back).unwrap();
        writer.join().unwrap();
        assert_eq!(back.len(), len);
        assert!(back == data, "the bytes came back changed");
    }

    #[test]
    fn bytes_cross_with_pipes_without_and_with_too_few() {
        // 0: every direction takes the pipeless path; 1: most of the eight at once do.
        for pipes in [64, 1, 0] {
            let (port, stop, relay) = echo_relay(pipes);
            round_trip(port, 10);
            // Past BULK: the pipe grows (or, without one, the peek path carries it all).
            round_trip(port, 6 << 20);
            let many: Vec<_> = (0..8)
                .map(|_| thread::spawn(move || round_trip(port, 300_000)))
                .collect();
            for t in many {
                t.join().unwrap();
            }
            drop(stop);
            relay.join().unwrap();
        }
    }

    #[test]
    fn a_connection_costs_80_bytes_of_table() {
        assert!(std::mem::size_of::<Option<Conn>>() <= 80);
    }
}
