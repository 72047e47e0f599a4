//! How much of den-net one remote client may hold, and for how long.
//!
//! A published port faces whoever can reach the host: on a shared machine, any local user; with
//! a port on all addresses, the network. Every connection costs den-net descriptors (the accepted
//! socket, the socket into the container, and while bytes are queued a pipe per direction) and
//! every UDP client a socket into the container, so without limits one client can use up the
//! descriptor limit and the port stops answering for everyone. den-net therefore:
//!
//! - raises its soft descriptor limit to the hard limit at start ([`crate::sys::raise_nofile_limit`]);
//! - caps the pipes open at once (a sixteenth of the budget, at most [`PIPES`]: a direction that
//!   finds none moves its bytes without one) and the live TCP connections of each port, so that
//!   all ports together ([`FDS_PER_CONNECTION`] descriptors each) and the pipes fit in that
//!   limit with [`RESERVE`] to spare: a connection beyond the cap is reset at once, and the port
//!   answers again when others close;
//! - closes a TCP connection that moved no bytes either way for [`TCP_IDLE`] (pasta's inactivity
//!   timeout; rootlessport has none);
//! - keeps a bounded table of UDP flows per port (one socket each, no thread), expiring a flow
//!   idle for [`UDP_IDLE`] and making room for a new client by dropping the least recently
//!   active flow.
//!
//! Each can be changed through the environment of `den run`/`den start` (den-net inherits it),
//! which is how the tests shorten the timeouts; the caps can only be lowered below what the
//! descriptor limit allows.

use std::time::Duration;

use super::NetError;

/// Inactivity after which a TCP connection is closed (pasta's ACT_TIMEOUT, two hours, as long as
/// Linux waits before its first keepalive probe).
pub const TCP_IDLE: Duration = Duration::from_secs(2 * 60 * 60);
/// Inactivity after which a UDP flow is forgotten (what den-net has always used; docker-proxy
/// uses 90 s, pasta 180 s).
pub const UDP_IDLE: Duration = Duration::from_secs(120);
/// Most TCP connections per port when the descriptor limit allows more (each also costs kernel
/// memory for two sockets).
pub const TCP_MAX: usize = 16384;
/// Most UDP flows per port.
pub const UDP_MAX: usize = 1024;
/// Descriptors one TCP connection holds: its two sockets (pipes come out of their own budget).
pub const FDS_PER_CONNECTION: u64 = 2;
/// Most pipes open at once, in use or pooled (a pipe is two descriptors, held only while bytes
/// are queued in it or for a bulk transfer).
pub const PIPES: u64 = 1024;
/// Descriptors kept out of the budget: stdio, control socket, epoll, namespace, slirp4netns's
/// set-up, a connection being opened.
pub const RESERVE: u64 = 256;

/// The environment variables that change the limits.
pub const ENV_TCP_IDLE: &str = "DEN_NET_TCP_IDLE_TIMEOUT";
pub const ENV_TCP_MAX: &str = "DEN_NET_TCP_MAX_CONNECTIONS";
pub const ENV_UDP_IDLE: &str = "DEN_NET_UDP_IDLE_TIMEOUT";
pub const ENV_UDP_MAX: &str = "DEN_NET_UDP_MAX_FLOWS";

/// The limits one den-net applies, per published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// None: connections are never closed for inactivity.
    pub tcp_idle: Option<Duration>,
    pub tcp_max: usize,
    pub udp_idle: Option<Duration>,
    pub udp_max: usize,
    /// Pipes open at once, for all ports together.
    pub pipes: usize,
}

impl Limits {
    /// The limits for `tcp_ports` TCP and `udp_ports` UDP ports under a descriptor limit of
    /// `nofile`, with overrides read through `var` (the environment, in den-net).
    pub fn new(
        var: impl Fn(&str) -> Option<String>,
        nofile: u64,
        tcp_ports: usize,
        udp_ports: usize,
    ) -> Result<Limits, NetError> {
        let number = |name: &'static str| -> Result<Option<u64>, NetError> {
            match var(name) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<u64>()
                    .map(Some)
                    .map_err(|_| NetError::Limit {
                        var: name,
                        value: v,
                    }),
            }
        };
        let timeout = |name, default: Duration| -> Result<Option<Duration>, NetError> {
            Ok(match number(name)? {
                None => Some(default),
                Some(0) => None,
                Some(s) => Some(Duration::from_secs(s)),
            })
        };
        let (tcp_n, udp_n) = (tcp_ports.max(1) as u64, udp_ports.max(1) as u64);
        let budget = nofile
            .min(1 << 24)
            .saturating_sub(RESERVE + (tcp_ports + udp_ports) as u64);
        // UDP flows may take at most a quarter of the budget when TCP ports share it.
        let udp_share = if tcp_ports > 0 { budget / 4 } else { budget };
        let udp_fit = (udp_share / udp_n).max(1);
        let udp_max = number(ENV_UDP_MAX)?
            .unwrap_or(UDP_MAX as u64)
            .clamp(1, udp_fit);
        let udp_used = if udp_ports > 0 {
            udp_max * udp_ports as u64
        } else {
            0
        };
        let pipes = (budget / 32).min(PIPES);
        let tcp_fit =
            (budget.saturating_sub(udp_used + 2 * pipes) / FDS_PER_CONNECTION / tcp_n).max(1);
        let tcp_max = number(ENV_TCP_MAX)?
            .unwrap_or(TCP_MAX as u64)
            .clamp(1, tcp_fit);
        Ok(Limits {
            tcp_idle: timeout(ENV_TCP_IDLE, TCP_IDLE)?,
            tcp_max: tcp_max as usize,
            udp_idle: timeout(ENV_UDP_IDLE, UDP_IDLE)?,
            udp_max: udp_max as usize,
            pipes: pipes as usize,
        })
    }

    /// How often to look for idle connections and flows: an eighth of the shorter timeout, so
    /// one is closed at most an eighth late, between 50 ms and 30 s.
    pub fn sweep_every(&self) -> Duration {
        [self.tcp_idle, self.udp_idle]
            .into_iter()
            .flatten()
            .min()
            .map(|t| t / 8)
            .unwrap_or(Duration::from_secs(30))
            .clamp(Duration::from_millis(50), Duration::from_secs(30))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn defaults_under_a_generous_limit() {
        let l = Limits::new(env(&[]), 1 << 20, 2, 1).unwrap();
        assert_eq!(
            l,
            Limits {
                tcp_idle: Some(TCP_IDLE),
                tcp_max: TCP_MAX,
                udp_idle: Some(UDP_IDLE),
                udp_max: UDP_MAX,
                pipes: PIPES as usize,
            }
        );
    }

    #[test]
    fn caps_fit_the_descriptor_limit() {
        // Two TCP ports and one UDP port under 20000 descriptors.
        let l = Limits::new(env(&[]), 20000, 2, 1).unwrap();
        let worst = RESERVE
            + 3
            + (l.tcp_max as u64) * 2 * FDS_PER_CONNECTION
            + l.udp_max as u64
            + 2 * l.pipes as u64;
        assert!(worst <= 20000, "{l:?} needs {worst}");
        assert!(l.tcp_max > 4000 && l.pipes > 500, "{l:?}");
        // One port under 20000: room for over 9,000 connections.
        let l = Limits::new(env(&[]), 20000, 1, 0).unwrap();
        assert!(l.tcp_max > 9000, "{l:?}");
        // The default soft limit: still a usable cap, still inside the limit.
        let l = Limits::new(env(&[]), 1024, 1, 0).unwrap();
        let budget = 1024 - RESERVE - 1;
        assert_eq!(l.pipes as u64, budget / 32);
        assert_eq!(
            l.tcp_max as u64,
            (budget - 2 * l.pipes as u64) / FDS_PER_CONNECTION
        );
        // Absurdly many ports: one connection each rather than none.
        let l = Limits::new(env(&[]), 300, 100, 100).unwrap();
        assert_eq!((l.tcp_max, l.udp_max), (1, 1));
    }

    #[test]
    fn overrides_lower_but_never_exceed_the_budget() {
        let l = Limits::new(
            env(&[
                (ENV_TCP_IDLE, "3"),
                (ENV_TCP_MAX, "20"),
                (ENV_UDP_IDLE, "0"),
                (ENV_UDP_MAX, "64"),
            ]),
            1 << 20,
            1,
            1,
        )
        .unwrap();
        assert_eq!(l.tcp_idle, Some(Duration::from_secs(3)));
        assert_eq!((l.tcp_max, l.udp_max, l.udp_idle), (20, 64, None));
        assert_eq!(l.sweep_every(), Duration::from_millis(375));
        let l = Limits::new(env(&[(ENV_TCP_MAX, "1000000")]), 1024, 1, 0).unwrap();
        let fit = Limits::new(env(&[]), 1024, 1, 0).unwrap().tcp_max;
        assert!(l.tcp_max == fit && fit < 400, "{l:?}");
    }

    #[test]
    fn a_bad_value_is_named() {
        let e = Limits::new(env(&[(ENV_TCP_IDLE, "10m")]), 1024, 1, 0).unwrap_err();
        assert!(
            e.to_string().contains("DEN_NET_TCP_IDLE_TIMEOUT=10m"),
            "{e}"
        );
        let e = Limits::new(env(&[(ENV_UDP_MAX, "-1")]), 1024, 0, 1).unwrap_err();
        assert!(e.to_string().contains(ENV_UDP_MAX), "{e}");
    }
}
