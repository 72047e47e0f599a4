//! Port forwarding in den-net: host sockets bound before the container starts, connections
//! relayed into the container's network namespace.
//!
//! One thread runs [`super::relay::Relay`], an epoll loop that has joined the container's
//! network namespace (setns(2) applies to the calling thread only), so the sockets it opens are
//! inside the container and reach the container port on its loopback. TCP: a socket per
//! connection, bytes moved with splice(2). UDP: a socket in the container per client address
//! ([`super::udp`]), datagrams relayed both ways. The loop's limits are [`super::limits`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;

use super::limits::Limits;
use super::{NetError, PortMapping, Proto};

/// A bound host socket and what it forwards to.
pub struct Listener {
    pub mapping: PortMapping,
    socket: Socket,
}

enum Socket {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

fn bind_error(m: &PortMapping, addr: SocketAddr, e: std::io::Error) -> NetError {
    let port = m.host_port;
    match e.raw_os_error() {
        Some(libc::EADDRINUSE) => NetError::PortInUse {
            port,
            addr: addr.to_string(),
        },
        Some(libc::EACCES) => NetError::PrivilegedPort {
            port,
            addr: addr.to_string(),
        },
        _ => NetError::Bind {
            addr: addr.to_string(),
            source: e,
        },
    }
}

fn bind_one(m: &PortMapping, ip: IpAddr) -> std::io::Result<(Socket, u16)> {
    let addr = SocketAddr::new(ip, m.host_port);
    Ok(match m.proto {
        Proto::Tcp => {
            let l = TcpListener::bind(addr)?;
            let port = l.local_addr()?.port();
            (Socket::Tcp(l), port)
        }
        Proto::Udp => {
            let s = UdpSocket::bind(addr)?;
            let port = s.local_addr()?.port();
            (Socket::Udp(s), port)
        }
    })
}

/// Bind every published port, or fail naming the first that cannot be bound. "All addresses"
/// is one dual-stack IPv6 socket, or IPv4 where the host has no IPv6.
pub fn bind_all(ports: &[PortMapping]) -> Result<Vec<Listener>, NetError> {
    let mut out = Vec::new();
    for m in ports {
        let (socket, port) = match m.host_ip {
            Some(ip) => {
                bind_one(m, ip).map_err(|e| bind_error(m, SocketAddr::new(ip, m.host_port), e))?
            }
            None => match bind_one(m, IpAddr::V6(Ipv6Addr::UNSPECIFIED)) {
                Ok(s) => s,
                Err(e)
                    if e.raw_os_error() == Some(libc::EAFNOSUPPORT)
                        || e.raw_os_error() == Some(libc::EADDRNOTAVAIL) =>
                {
                    let v4 = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
                    bind_one(m, v4)
                        .map_err(|e| bind_error(m, SocketAddr::new(v4, m.host_port), e))?
                }
                Err(e) => {
                    return Err(bind_error(
                        m,
                        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), m.host_port),
                        e,
                    ));
                }
            },
        };
        let mut mapping = m.clone();
        mapping.host_port = port;
        out.push(Listener { mapping, socket });
    }
    Ok(out)
}

/// The thread forwarding a container's published ports; dropping it stops the thread (closing
/// every connection and port) and waits for it.
pub struct Forwarding {
    stop: Option<std::os::fd::OwnedFd>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serve the listeners on one thread, which joins the container's network namespace `ns`
/// first: every TCP and UDP port of the container in one epoll loop ([`super::relay::Relay`]),
/// within `limits`. None when nothing is published.
pub fn spawn_all(
    listeners: Vec<Listener>,
    ns: Arc<std::fs::File>,
    limits: Limits,
) -> Result<Option<Forwarding>, NetError> {
    let mut tcp = Vec::new();
    let mut udp = Vec::new();
    for l in listeners {
        let cport = l.mapping.container_port;
        match l.socket {
            Socket::Tcp(listener) => tcp.push((listener, cport)),
            Socket::Udp(host) => udp.push((host, cport)),
        }
    }
    if tcp.is_empty() && udp.is_empty() {
        return Ok(None);
    }
    let (stop_r, stop_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| NetError::Spawn(e.into()))?;
    let thread = std::thread::Builder::new()
        .name("den-forward".into())
        // The loop keeps its state on the heap: a small stack keeps a monitor small.
        .stack_size(256 * 1024)
        .spawn(move || {
            if crate::sys::join_netns(&ns).is_err() {
                return;
            }
            match super::relay::Relay::new(tcp, udp, limits) {
                Ok(relay) => {
                    if let Err(e) = relay.stop_on(&stop_r) {
                        tracing::error!(error = %e, "port forwarding");
                        return;
                    }
                    relay.run();
                }
                Err(e) => tracing::error!(error = %e, "port forwarding"),
            }
        })
        .map_err(NetError::Spawn)?;
    Ok(Some(Forwarding {
        stop: Some(stop_w),
        thread: Some(thread),
    }))
}
