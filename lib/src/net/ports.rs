//! docker's `-p` grammar: `[ip:][hostPort:]containerPort[/tcp|udp]`, with ranges
//! (`8000-8010:80-90`), IPv6 host addresses in brackets (`[::1]:8080:80`), and `-P`.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// One published port: a host address and port forwarded to a container port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortMapping {
    /// None: every address (docker's 0.0.0.0 and ::).
    pub host_ip: Option<IpAddr>,
    /// 0: a free port chosen when the container starts.
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

impl PortMapping {
    /// docker's `0.0.0.0:3000->80/tcp`.
    pub fn display(&self) -> String {
        let ip = match self.host_ip {
            None => "0.0.0.0".to_string(),
            Some(IpAddr::V6(a)) => format!("[{a}]"),
            Some(a) => a.to_string(),
        };
        format!(
            "{ip}:{}->{}/{}",
            self.host_port,
            self.container_port,
            self.proto.name()
        )
    }

    /// The key docker uses in `NetworkSettings.Ports`: `80/tcp`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.container_port, self.proto.name())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("invalid port specification {spec:?}: {reason}")]
    Bad { spec: String, reason: String },
}

impl PortError {
    pub fn hint(&self) -> Option<String> {
        Some("write it as [IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp], e.g. -p 3000:80 or -p 127.0.0.1:8080:80/tcp".into())
    }
}

fn bad(spec: &str, reason: impl Into<String>) -> PortError {
    PortError::Bad {
        spec: spec.into(),
        reason: reason.into(),
    }
}

/// A port or a range of ports: `80`, `8000-8010`.
fn range(spec: &str, s: &str, what: &str) -> Result<(u16, u16), PortError> {
    let one = |p: &str| -> Result<u16, PortError> {
        match p.parse::<u32>() {
            Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
            Ok(_) => Err(bad(spec, format!("{what} {p:?} is out of range 1-65535"))),
            Err(_) => Err(bad(spec, format!("{what} {p:?} is not a number"))),
        }
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (one(a)?, one(b)?);
            if a > b {
                return Err(bad(
                    spec,
                    format!("{what} range {s:?} ends before it starts"),
                ));
            }
            Ok((a, b))
        }
        None => {
            let p = one(s)?;
            Ok((p, p))
        }
    }
}

/// Parse one `-p` value into its mappings (one per port of a range).
pub fn parse(spec: &str) -> Result<Vec<PortMapping>, PortError> {
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, "tcp")) => (r, Proto::Tcp),
        Some((r, "udp")) => (r, Proto::Udp),
        Some((_, p)) => return Err(bad(spec, format!("protocol {p:?} is not tcp or udp"))),
        None => (spec, Proto::Tcp),
    };
    // An IPv6 address comes in brackets; the rest splits on ':'.
    let (ip, rest) = if let Some(r) = rest.strip_prefix('[') {
        let (addr, after) = r
            .split_once(']')
            .ok_or_else(|| bad(spec, "an IPv6 address needs its closing ]"))?;
        let after = after
            .strip_prefix(':')
            .ok_or_else(|| bad(spec, "the address must be followed by :PORT"))?;
        (Some(addr.to_string()), after.to_string())
    } else {
        (None, rest.to_string())
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host, ctr) = match (ip, parts.as_slice()) {
        (None, [c]) => (None, None, *c),
        (None, [h, c]) => (None, Some(*h), *c),
        (None, [i, h, c]) => (Some(i.to_string()), Some(*h), *c),
        (Some(i), [h, c]) => (Some(i), Some(*h), *c),
        (Some(i), [c]) => (Some(i), None, *c),
        _ => return Err(bad(spec, "too many ':'")),
    };
    let host_ip = match ip.as_deref() {
        None | Some("") => None,
        Some(i) => Some(
            i.parse::<IpAddr>()
                .map_err(|_| bad(spec, format!("{i:?} is not an IP address")))?,
        ),
    };
    let host_ip = host_ip.filter(|a| !a.is_unspecified() || a.is_ipv6());
    let (c0, c1) = range(spec, ctr, "container port")?;
    let host = host.filter(|h| !h.is_empty());
    let hosts: Vec<u16> = match host {
        None => vec![0; (c1 - c0 + 1) as usize],
        Some(h) => {
            let (h0, h1) = range(spec, h, "host port")?;
            if h1 - h0 != c1 - c0 {
                if h0 != h1 && c0 == c1 {
                    // docker: a host range for one container port picks one free port of it;
                    // den takes the first.
                    vec![h0]
                } else {
                    return Err(bad(
                        spec,
                        "the host and container port ranges differ in size",
                    ));
                }
            } else {
                (h0..=h1).collect()
            }
        }
    };
    Ok((c0..=c1)
        .zip(hosts)
        .map(|(c, h)| PortMapping {
            host_ip,
            host_port: h,
            container_port: c,
            proto,
        })
        .collect())
}

/// `-P`: the image's ExposedPorts (`80/tcp`, `53/udp`, `8080`) on free host ports.
pub fn publish_all(exposed: &[String]) -> Vec<PortMapping> {
    exposed
        .iter()
        .filter_map(|e| {
            let (port, proto) = match e.split_once('/') {
                Some((p, "udp")) => (p, Proto::Udp),
                Some((p, _)) => (p, Proto::Tcp),
                None => (e.as_str(), Proto::Tcp),
            };
            Some(PortMapping {
                host_ip: None,
                host_port: 0,
                container_port: port.parse().ok()?,
                proto,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> PortMapping {
        let v = parse(s).unwrap();
        assert_eq!(v.len(), 1, "{s}");
        v.into_iter().next().unwrap()
    }

    #[test]
    fn docker_forms() {
        assert_eq!(one("3000:80").display(), "0.0.0.0:3000->80/tcp");
        assert_eq!(one("80").host_port, 0);
        assert_eq!(one("127.0.0.1:8080:80").display(), "127.0.0.1:8080->80/tcp");
        assert_eq!(one("127.0.0.1::80").host_port, 0);
        assert_eq!(one("5353:53/udp").display(), "0.0.0.0:5353->53/udp");
        assert_eq!(one("[::1]:8080:80").display(), "[::1]:8080->80/tcp");
        assert_eq!(one("0.0.0.0:1:2").host_ip, None);
        let r = parse("8000-8002:80-82").unwrap();
        assert_eq!(
            r.iter()
                .map(|m| (m.host_port, m.container_port))
                .collect::<Vec<_>>(),
            [(8000, 80), (8001, 81), (8002, 82)]
        );
        assert_eq!(parse("90-91").unwrap().len(), 2);
    }

    #[test]
    fn errors_name_the_wrong_part() {
        let e = |s: &str| parse(s).unwrap_err().to_string();
        assert!(e("3000:80/sctp").contains("sctp"));
        assert!(e("3000:eighty").contains("eighty"));
        assert!(e("70000:80").contains("70000"));
        assert!(e("nope:1:2").contains("nope"));
        assert!(e("1:2:3:4").contains("too many"));
        assert!(e("8000-8001:80-82").contains("differ"));
        assert!(e("[::1:80").contains("]"));
    }

    #[test]
    fn publish_all_takes_exposed_ports() {
        let v = publish_all(&["80/tcp".into(), "53/udp".into(), "8080".into()]);
        assert_eq!(v.len(), 3);
        assert_eq!(v[1].proto, Proto::Udp);
        assert!(v.iter().all(|m| m.host_port == 0));
    }
}
