//! Port forwarding in den-net: host sockets bound before the container starts, connections
//! relayed into the container's network namespace.
//!
//! TCP: one thread runs [`super::relay::Relay`], an epoll loop that has joined the container's
//! network namespace (setns(2) applies to the calling thread only), so the socket it opens for
//! each connection is inside the container and connects to the container port on its loopback;
//! splice(2) moves the bytes. UDP: one thread per published port keeps a socket in the
//! container per client address and relays datagrams both ways.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

/// Serve the listeners: every TCP port on one relay thread, each UDP port on a thread of its
/// own. The threads join the container's network namespace `ns` first.
pub fn spawn_all(listeners: Vec<Listener>, ns: Arc<std::fs::File>) {
    let mut tcp = Vec::new();
    for l in listeners {
        let cport = l.mapping.container_port;
        match l.socket {
            Socket::Tcp(listener) => tcp.push((listener, cport)),
            Socket::Udp(host) => {
                let ns = ns.clone();
                std::thread::spawn(move || {
                    if crate::sys::join_netns(&ns).is_ok() {
                        udp_relay(host, cport);
                    }
                });
            }
        }
    }
    if tcp.is_empty() {
        return;
    }
    std::thread::spawn(move || {
        if crate::sys::join_netns(&ns).is_err() {
            return;
        }
        match super::relay::Relay::new(tcp, ns) {
            Ok(relay) => relay.run(),
            Err(e) => tracing::error!(error = %e, "port forwarding"),
        }
    });
}

/// UDP: a socket in the container per client; replies go back from the published port.
fn udp_relay(host: UdpSocket, cport: u16) {
    let flows: Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>> = Arc::default();
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, client)) = host.recv_from(&mut buf) else {
            continue;
        };
        let existing = flows.lock().ok().and_then(|f| f.get(&client).cloned());
        let inner = match existing {
            Some(s) => s,
            None => {
                let Ok(s) = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)) else {
                    continue;
                };
                if s.connect((Ipv4Addr::LOCALHOST, cport)).is_err() {
                    continue;
                }
                let _ = s.set_read_timeout(Some(Duration::from_secs(120)));
                let s = Arc::new(s);
                if let Ok(mut f) = flows.lock() {
                    f.insert(client, s.clone());
                }
                let (back, replies, flows) = (host.try_clone(), s.clone(), flows.clone());
                std::thread::spawn(move || {
                    let Ok(back) = back else { return };
                    let mut buf = vec![0u8; 65536];
                    // Until the flow is idle for the timeout.
                    while let Ok(n) = replies.recv(&mut buf) {
                        let _ = back.send_to(&buf[..n], client);
                    }
                    if let Ok(mut f) = flows.lock() {
                        f.remove(&client);
                    }
                });
                s
            }
        };
        let _ = inner.send(&buf[..n]);
    }
}
