//! den-net's TCP relay: one thread, one epoll set, every published TCP port of a container.
//!
//! The thread has joined the container's network namespace, so the socket it opens for each
//! accepted connection lives inside the container and connects to the container port on its
//! loopback (the kernel's, not a userspace stack). Bytes move with splice(2) through a pipe per
//! direction, never entering user space. Pipes come from a small pool, so a short connection
//! costs accept, socket, connect and a few splices, not thread or pipe creation.
//!
//! Written by hand rather than on an async runtime: the whole job is a dozen non-blocking
//! calls per event, and tokio has no splice; a readiness loop over raw descriptors is what
//! rootlessport, pasta and socat do as well. (The thread-per-connection relay this replaced
//! served half the requests per second.)
//!
//! A connection the container refuses (its server is still starting) is retried for two seconds
//! on a thread of its own, which hands the connected pair back through `incoming`.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, connect, socket};

/// Default pipe capacity; a direction that has moved [`BULK`] bytes grows its pipe to [`BIG`].
const BIG: usize = 1 << 20;
const BULK: u64 = 4 * BIG as u64;
/// Idle pipes kept for reuse.
const POOL: usize = 64;
/// Rounds of splicing one event may do before others get a turn.
const ROUNDS: usize = 16;

// Token layout in an epoll event: index << 2 | kind.
const LISTENER: u64 = 0;
const CLIENT: u64 = 1;
const SERVER: u64 = 2;
const WAKE: u64 = 3;

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

/// One direction of a connection: bytes read from one socket, queued in a pipe, written to the
/// other.
struct Dir {
    pipe: Pipe,
    queued: usize,
    moved: u64,
    eof: bool,
    shut: bool,
}

impl Dir {
    fn new(pipe: Pipe) -> Dir {
        Dir {
            pipe,
            queued: 0,
            moved: 0,
            eof: false,
            shut: false,
        }
    }

    /// Move what can be moved now from `src` to `dst`, until a side would block (the loop
    /// is edge-triggered: readiness is reported again only after EAGAIN) or the round budget is
    /// spent. An error ends the connection.
    fn pump(&mut self, src: &TcpStream, dst: &TcpStream) -> std::io::Result<Flow> {
        for _ in 0..ROUNDS {
            while self.queued > 0 {
                match crate::sys::splice(self.pipe.r.as_fd(), dst.as_fd(), self.queued) {
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
            if self.pipe.cap < BIG && self.moved >= BULK {
                // Fewer calls per byte for a bulk transfer; a refusal keeps the pipe as it is.
                self.pipe.cap = crate::sys::set_pipe_size(self.pipe.w.as_fd(), BIG).unwrap_or(BIG);
            }
            match crate::sys::splice(src.as_fd(), self.pipe.w.as_fd(), self.pipe.cap) {
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
    cport: u16,
    /// Client to server, and server to client.
    up: Dir,
    down: Dir,
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

/// The relay's state: listeners, live connections (a slab indexed by token), the pipe pool.
pub struct Relay {
    epoll: Epoll,
    listeners: Vec<(TcpListener, u16)>,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    generation: u32,
    /// Connections whose round budget ran out, driven again after the current batch.
    again: Vec<(usize, u32)>,
    pool: Vec<Pipe>,
    wake: EventFd,
    incoming: Arc<Mutex<Vec<(TcpStream, TcpStream, u16)>>>,
    ns: Arc<std::fs::File>,
}

fn token(idx: usize, generation: u32, kind: u64) -> u64 {
    (generation as u64) << 32 | (idx as u64) << 2 | kind
}

impl Relay {
    /// A relay for `listeners` (host socket, container port), connecting into `ns`.
    pub fn new(
        listeners: Vec<(TcpListener, u16)>,
        ns: Arc<std::fs::File>,
    ) -> std::io::Result<Relay> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        for (i, (l, _)) in listeners.iter().enumerate() {
            l.set_nonblocking(true)?;
            epoll.add(
                l,
                EpollEvent::new(EpollFlags::EPOLLIN, token(i, 0, LISTENER)),
            )?;
        }
        let wake = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
        epoll.add(wake.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, WAKE))?;
        Ok(Relay {
            epoll,
            listeners,
            conns: Vec::new(),
            free: Vec::new(),
            generation: 0,
            again: Vec::new(),
            pool: Vec::new(),
            wake,
            incoming: Arc::default(),
            ns,
        })
    }

    /// Serve forever on the calling thread, which must already be in the container's
    /// network namespace.
    pub fn run(mut self) {
        let mut events = vec![EpollEvent::empty(); 256];
        loop {
            let timeout = if self.again.is_empty() {
                EpollTimeout::NONE
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
            for ev in &events[..n] {
                let data = ev.data();
                let (idx, generation) = (((data & 0xffff_ffff) >> 2) as usize, (data >> 32) as u32);
                match data & 3 {
                    LISTENER => self.accept(idx),
                    WAKE => self.take_incoming(),
                    kind => self.drive(idx, generation, kind, ev.events()),
                }
            }
            for (idx, generation) in std::mem::take(&mut self.again) {
                self.drive(idx, generation, CLIENT, INPUT | EpollFlags::EPOLLOUT);
            }
        }
    }

    fn accept(&mut self, idx: usize) {
        for _ in 0..64 {
            let (listener, cport) = &self.listeners[idx];
            let cport = *cport;
            let client = match crate::sys::accept_nonblocking(listener) {
                Ok(c) => c,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    // EMFILE and friends: leave the connection queued and let others finish.
                    tracing::debug!(error = %e, "accept");
                    return;
                }
            };
            let _ = client.set_nodelay(true);
            match connect_nonblocking(cport) {
                Ok((server, connecting)) => self.insert(client, server, connecting, cport),
                Err(Errno::ECONNREFUSED) => self.retry(client, cport),
                Err(e) => tracing::debug!(error = %e, port = cport, "connect into the container"),
            }
        }
    }

    fn pipe(&mut self) -> Option<Pipe> {
        self.pool.pop().or_else(|| Pipe::new().ok())
    }

    fn insert(&mut self, client: TcpStream, server: TcpStream, connecting: bool, cport: u16) {
        let (Some(a), Some(b)) = (self.pipe(), self.pipe()) else {
            return;
        };
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
            return;
        }
        self.conns[idx] = Some(Conn {
            client,
            server,
            generation,
            connecting,
            cport,
            up: Dir::new(a),
            down: Dir::new(b),
        });
    }

    /// A refused connection: retry on a thread for a server still starting.
    fn retry(&self, client: TcpStream, cport: u16) {
        let (ns, incoming) = (self.ns.clone(), self.incoming.clone());
        let wake = self.wake.as_fd().try_clone_to_owned();
        std::thread::spawn(move || {
            if crate::sys::join_netns(&ns).is_err() {
                return;
            }
            let Some(server) = connect_retrying(cport) else {
                return;
            };
            let _ = server.set_nonblocking(true);
            if let Ok(mut q) = incoming.lock() {
                q.push((client, server, cport));
            }
            if let Ok(w) = wake {
                let _ = nix::unistd::write(&w, &1u64.to_ne_bytes());
            }
        });
    }

    fn take_incoming(&mut self) {
        let _ = self.wake.read();
        let pending = self
            .incoming
            .lock()
            .map(|mut q| std::mem::take(&mut *q))
            .unwrap_or_default();
        for (client, server, cport) in pending {
            self.insert(client, server, false, cport);
        }
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
                let (client, cport) = self.remove(idx);
                if refused {
                    let _ = self.epoll.delete(&client);
                    self.retry(client, cport);
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
            flows[0] = conn.up.pump(&conn.client, &conn.server);
        }
        if down {
            flows[1] = conn.down.pump(&conn.server, &conn.client);
        }
        if flows.iter().any(|f| f.is_err()) {
            self.remove(idx);
            return;
        }
        let more = flows.iter().any(|f| matches!(f, Ok(Flow::More)));
        match (conn.up.finished(), conn.down.finished()) {
            // Both ends are done: closing both sockets says all there is to say.
            (true, true) => {
                self.remove(idx);
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
    /// returned, closed when the caller drops it.
    fn remove(&mut self, idx: usize) -> (TcpStream, u16) {
        let conn = self.conns[idx].take().expect("live connection");
        self.free.push(idx);
        for d in [conn.up, conn.down] {
            if d.queued == 0 && self.pool.len() < POOL {
                self.pool.push(d.pipe);
            }
        }
        (conn.client, conn.cport)
    }
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

/// Connect to the container port, giving a server still starting two seconds.
fn connect_retrying(cport: u16) -> Option<TcpStream> {
    let target = SocketAddr::from((Ipv4Addr::LOCALHOST, cport));
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let mut pause = Duration::from_millis(5);
    loop {
        match TcpStream::connect(target) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Some(s);
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::ConnectionRefused
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(e) => {
                tracing::debug!(error = %e, port = cport, "container port refused");
                return None;
            }
        }
    }
}
