//! UDP through published ports, on the relay's loop: a bounded table of flows.
//!
//! UDP has no connections, so a flow is a client address: the first datagram from an address
//! opens a socket inside the container, connected to the container port, and the server's
//! replies on it go back to that address from the published port. The table is the relay's
//! only per-client state for UDP, so it is bounded: at most [`Limits::udp_max`] flows per port
//! (a new client beyond that takes the place of the least recently active flow, as a NAT's
//! table does under pressure), each forgotten after [`Limits::udp_idle`] without a datagram
//! either way. No thread per flow and no blocking call: every socket is non-blocking and a
//! datagram that cannot be sent at once is dropped, which UDP allows.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};

use nix::sys::epoll::{Epoll, EpollEvent, EpollFlags};

use super::limits::Limits;
use super::relay::{Ms, UDP_FLOW, UDP_PORT, ms, token};

/// Datagrams handled per readiness report before other sockets get a turn.
const BATCH: usize = 64;

/// A published UDP port: the host socket and its flows by client address.
struct Port {
    host: UdpSocket,
    cport: u16,
    flows: HashMap<SocketAddr, usize>,
}

/// One client's flow: its socket in the container.
struct Flow {
    socket: UdpSocket,
    client: SocketAddr,
    port: usize,
    generation: u32,
    last: Ms,
}

/// The UDP ports of a relay and their flows (a slab indexed by token).
pub struct Udp {
    ports: Vec<Port>,
    flows: Vec<Option<Flow>>,
    free: Vec<usize>,
    generation: u32,
    max: usize,
    idle: Option<Ms>,
    buf: Vec<u8>,
}

impl Udp {
    /// Register the host sockets `ports` (socket, container port) with `epoll`.
    pub fn new(
        ports: Vec<(UdpSocket, u16)>,
        epoll: &Epoll,
        limits: Limits,
    ) -> std::io::Result<Udp> {
        let mut out = Vec::new();
        for (i, (host, cport)) in ports.into_iter().enumerate() {
            host.set_nonblocking(true)?;
            epoll.add(
                &host,
                EpollEvent::new(EpollFlags::EPOLLIN, token(i, 0, UDP_PORT)),
            )?;
            out.push(Port {
                host,
                cport,
                flows: HashMap::new(),
            });
        }
        Ok(Udp {
            buf: if out.is_empty() {
                Vec::new()
            } else {
                vec![0; 65536]
            },
            ports: out,
            flows: Vec::new(),
            free: Vec::new(),
            generation: 0,
            max: limits.udp_max,
            idle: limits.udp_idle.map(ms),
        })
    }

    /// Datagrams from clients on port `p`: each to its flow's socket, opening one for a new
    /// client.
    pub fn client_datagrams(&mut self, p: usize, epoll: &Epoll, now: Ms) {
        for _ in 0..BATCH {
            let (n, client) = match self.ports[p].host.recv_from(&mut self.buf) {
                Ok(r) => r,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(_) => continue,
            };
            let idx = match self.ports[p].flows.get(&client) {
                Some(&idx) => idx,
                None => match self.open(p, client, epoll, now) {
                    Some(idx) => idx,
                    None => continue,
                },
            };
            if let Some(flow) = self.flows[idx].as_mut() {
                flow.last = now;
                // Dropped when the socket is full, and an error from an earlier datagram
                // (ECONNREFUSED: nothing listens yet) is no reason to stop.
                let _ = flow.socket.send(&self.buf[..n]);
            }
        }
    }

    /// Replies from the container on flow `idx`, back to its client from the published port.
    pub fn server_datagrams(&mut self, idx: usize, generation: u32, now: Ms) {
        let Some(flow) = self.flows.get_mut(idx).and_then(|f| f.as_mut()) else {
            return;
        };
        if flow.generation != generation {
            return;
        }
        flow.last = now;
        for _ in 0..BATCH {
            match flow.socket.recv(&mut self.buf) {
                Ok(n) => {
                    let _ = self.ports[flow.port]
                        .host
                        .send_to(&self.buf[..n], flow.client);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(_) => continue,
            }
        }
    }

    /// A flow for a new `client` of port `p`, making room under the cap first.
    fn open(&mut self, p: usize, client: SocketAddr, epoll: &Epoll, now: Ms) -> Option<usize> {
        if self.ports[p].flows.len() >= self.max {
            let oldest = self.ports[p]
                .flows
                .values()
                .copied()
                .min_by_key(|&i| self.flows[i].as_ref().map(|f| f.last))?;
            self.close(oldest);
        }
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).ok()?;
        socket
            .connect((Ipv4Addr::LOCALHOST, self.ports[p].cport))
            .ok()?;
        socket.set_nonblocking(true).ok()?;
        let idx = self.free.pop().unwrap_or_else(|| {
            self.flows.push(None);
            self.flows.len() - 1
        });
        self.generation = self.generation.wrapping_add(1);
        let generation = self.generation;
        if epoll
            .add(
                &socket,
                EpollEvent::new(EpollFlags::EPOLLIN, token(idx, generation, UDP_FLOW)),
            )
            .is_err()
        {
            self.free.push(idx);
            return None;
        }
        self.flows[idx] = Some(Flow {
            socket,
            client,
            port: p,
            generation,
            last: now,
        });
        self.ports[p].flows.insert(client, idx);
        Some(idx)
    }

    /// Forget a flow; closing its socket takes it out of the epoll set.
    fn close(&mut self, idx: usize) {
        if let Some(flow) = self.flows[idx].take() {
            self.ports[flow.port].flows.remove(&flow.client);
            self.free.push(idx);
        }
    }

    /// Forget the flows idle for the timeout.
    pub fn sweep(&mut self, now: Ms) {
        let Some(idle) = self.idle else { return };
        for idx in 0..self.flows.len() {
            if self.flows[idx]
                .as_ref()
                .is_some_and(|f| now.saturating_sub(f.last) >= idle)
            {
                self.close(idx);
            }
        }
    }
}
