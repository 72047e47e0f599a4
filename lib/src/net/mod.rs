//! Container networks: `none`, `host`, and the default, a private network namespace with a
//! userspace stack (slirp4netns, or pasta) for outbound traffic, plus port forwarding.
//!
//! Entry points: [`Network::parse`] (the `--network` value), [`ports::parse`] (`-p`), and
//! [`Setup`], which binds a container's published ports, starts slirp4netns (or pasta) and
//! forwards connections, in the den process that holds the container (no helper of its own).
//!
//! Forwarding does not go through the userspace stack: den listens on the host and, for each
//! connection, opens a socket inside the container's network namespace (a thread joins it with
//! setns(2)) and connects to the container port on its loopback; bytes move with splice(2). The
//! server in the container therefore sees connections from 127.0.0.1, not the client's address
//! (podman's rootlesskit port driver has the same limit; its slirp4netns driver keeps the
//! address at a fraction of the speed).
//!
//! A published port faces clients den does not trust, so what they can make den hold is
//! bounded: descriptors, connections and UDP flows per port, idle time; and nothing a client
//! does starts a thread ([`limits`]).

pub mod forward;
pub mod limits;
pub mod ports;
mod relay;
mod stack;
mod udp;
pub mod usernet;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use ports::{PortMapping, Proto};
pub use stack::Setup;
pub(crate) use stack::{Stack, start_stack};

use crate::error::Diagnose;

/// slirp4netns's fixed addresses (its defaults with `--configure`).
pub const SLIRP_GATEWAY: &str = "10.0.2.2";
pub const SLIRP_DNS: &str = "10.0.2.3";
pub const SLIRP_MTU: u32 = 65520;

/// The `--network` value, parsed once where it comes in (the flag, a stored record). It is
/// written as the flag's canonical form (`host`, `none`, `slirp4netns`,
/// `slirp4netns:allow_host_loopback=true`, `pasta`), which is what a container record has
/// always held, so records written before it was typed read the same.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Network {
    Host,
    /// No network but loopback (also the default of an empty spec: nothing unasked).
    #[default]
    None,
    /// The default: a userspace stack.
    Slirp4netns {
        allow_host_loopback: bool,
    },
    Pasta,
    /// A user network, by name ([`usernet`]).
    User(String),
    /// Another container's network namespace (`container:NAME`; the record keeps its id).
    Container(String),
}

/// Whether `s` may name a container (a name or an id): a letter or digit, then letters, digits,
/// `_`, `.` or `-`. The store's own check is the same; net sits below the store.
fn container_ref(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && s.len() <= 128
}

impl Network {
    /// The built-in mode a name stands for (`host`, `none`, `bridge`, ...), if any.
    pub fn builtin(name: &str) -> Option<Network> {
        Some(match name {
            "host" => Network::Host,
            "none" => Network::None,
            "" | "default" | "bridge" | "private" | "slirp4netns" => Network::Slirp4netns {
                allow_host_loopback: false,
            },
            "pasta" => Network::Pasta,
            _ => return None,
        })
    }

    /// `host`, `none`, `slirp4netns[:allow_host_loopback=true]`, `pasta`, or empty for the
    /// default.
    pub fn parse(s: &str) -> Option<Network> {
        let (name, opts) = s.split_once(':').unwrap_or((s, ""));
        Some(match name {
            "host" => Network::Host,
            "none" => Network::None,
            "" | "default" | "bridge" | "private" | "slirp4netns" => {
                let mut allow = false;
                for o in opts.split(',').filter(|o| !o.is_empty()) {
                    match o {
                        "allow_host_loopback=true" => allow = true,
                        "allow_host_loopback=false" => allow = false,
                        _ => return None,
                    }
                }
                Network::Slirp4netns {
                    allow_host_loopback: allow,
                }
            }
            "pasta" => Network::Pasta,
            "container" if container_ref(opts) => Network::Container(opts.into()),
            "container" => return None,
            user if opts.is_empty() && usernet::valid_name(user) => Network::User(user.into()),
            _ => return None,
        })
    }

    /// The name docker shows (`NetworkMode`).
    pub fn name(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Network::Host => "host".into(),
            Network::None => "none".into(),
            Network::Slirp4netns { .. } => "slirp4netns".into(),
            Network::Pasta => "pasta".into(),
            Network::User(n) => n.as_str().into(),
            Network::Container(c) => format!("container:{c}").into(),
        }
    }

    /// Whether the container has a network namespace of its own.
    pub fn private(&self) -> bool {
        !matches!(self, Network::Host)
    }

    /// Whether den-net runs for it.
    pub fn needs_helper(&self) -> bool {
        matches!(
            self,
            Network::Slirp4netns { .. } | Network::Pasta | Network::User(_)
        )
    }
}

/// The canonical form of the flag, as records store it.
impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Network::Slirp4netns {
                allow_host_loopback: true,
            } => f.write_str("slirp4netns:allow_host_loopback=true"),
            other => f.write_str(&other.name()),
        }
    }
}

impl From<Network> for String {
    fn from(n: Network) -> String {
        n.to_string()
    }
}

impl TryFrom<String> for Network {
    type Error = String;

    fn try_from(s: String) -> Result<Network, String> {
        Network::parse(&s).ok_or_else(|| format!("unknown network mode {s:?}"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot publish port {port}: the address {addr} is already in use")]
    PortInUse { port: u16, addr: String },
    #[error("cannot publish port {port} on {addr}: permission denied")]
    PrivilegedPort { port: u16, addr: String },
    #[error("cannot publish {addr}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} is not installed")]
    Missing { program: String },
    #[error("{program} failed: {message}")]
    Stack { program: String, message: String },
    #[error("/dev/net/tun cannot be opened")]
    Tun(#[source] std::io::Error),
    #[error("{message}")]
    Helper {
        message: String,
        hint: Option<String>,
    },
    #[error("den-net could not be started")]
    Spawn(#[source] std::io::Error),
    #[error(transparent)]
    Port(#[from] ports::PortError),
    #[error("{var}={value} is not a whole number")]
    Limit { var: &'static str, value: String },
    #[error("network mode {0:?} is not supported")]
    BadNetwork(String),
    #[error("ports cannot be published with --network {0}")]
    PortsNeedNetwork(String),
    #[error("invalid --add-host {0:?}")]
    BadAddHost(String),
    #[error("no public port {0:?} published for {1}")]
    NoPort(String, String),
    #[error("network {0} not found")]
    NetworkNotFound(String),
    #[error("invalid network name {0:?}")]
    BadNetworkName(String),
    #[error("network driver {0:?} is not supported")]
    BadDriver(String),
    #[error("network with name {0} already exists")]
    NetworkExists(String),
    #[error("at most {0} networks")]
    TooManyNetworks(usize),
    #[error("invalid subnet {0:?}")]
    BadSubnet(String),
    #[error("subnet {subnet} overlaps with network {other}")]
    SubnetOverlap { subnet: String, other: String },
    #[error("gateway {0:?} is not an address of subnet {1}")]
    BadGateway(String, String),
    #[error("address {0} is not one a container may have in subnet {1}")]
    BadIp(String, String),
    #[error("address {0} is already in use")]
    IpInUse(String),
    #[error("no free address left in subnet {0}")]
    SubnetFull(String),
    #[error("error while removing network: network {0} id {1} has active endpoints")]
    NetworkInUse(String, String),
    #[error("{0} is a built-in network and cannot be removed")]
    Builtin(String),
    #[error("cannot join the user networks' namespace")]
    Join(#[source] crate::sys::SysError),
    #[error("cannot keep networks in {path}")]
    Store {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    UserNetworkConflict(String),
    #[error("conflicting options: {0} and the container network mode")]
    ModeConflict(&'static str),
    #[error("cannot join network of a non running container: {0}")]
    OwnerNotRunning(String),
    #[error(
        "container {0} shares a network namespace (host's or another container's) and cannot be connected to a network"
    )]
    SharedNamespace(String),
    #[error("endpoint with name {0} already exists in network {1}")]
    AlreadyConnected(String, String),
    #[error("container {0} is not connected to network {1}")]
    NotConnected(String, String),
    #[error(
        "container {0} runs on den's default network, which cannot be combined with a user network while it runs"
    )]
    NotOnUserNetwork(String),
    #[error("container {0} would have no network left without {1} while it runs")]
    LastNetwork(String, String),
}

impl Diagnose for NetError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            NetError::PortInUse { .. } => "choose another host port (-p OTHER:PORT), or stop what uses this one".into(),
            NetError::PrivilegedPort { .. } => "ports below net.ipv4.ip_unprivileged_port_start (1024 by default) need root: \
                 publish on a higher port (-p 8080:80), or ask your admin to lower it with sysctl"
                .into(),
            NetError::Bind { .. } => "check the address: it must be one of this host's".into(),
            NetError::Missing { program } => format!(
                "install the {program} package, or run with --network host or --network none"
            ),
            NetError::Stack { .. } => "run with --log-level debug for details, or use --network host".into(),
            NetError::Tun(_) => "/dev/net/tun must be readable and writable by you (mode 0666), or use --network host".into(),
            NetError::Helper { hint, .. } => return hint.clone(),
            NetError::Spawn(_) => "install all den binaries together (make install)".into(),
            NetError::Port(e) => return e.hint(),
            NetError::Limit { var, .. } => format!(
                "set {var} to a whole number (seconds for a timeout, 0 for none), or unset it"
            ),
            NetError::BadNetwork(_) => {
                "use --network slirp4netns (the default), pasta, host or none".into()
            }
            NetError::PortsNeedNetwork(_) => {
                "drop --network to use the default userspace network, or drop -p".into()
            }
            NetError::BadAddHost(_) => "write it as NAME:IP, e.g. --add-host db:10.0.2.2".into(),
            NetError::NoPort(..) => "list the published ports with `den port CONTAINER`".into(),
            NetError::NetworkNotFound(_) => "list networks with `den network ls`, or create it with `den network create NAME`".into(),
            NetError::BadNetworkName(_) => format!("a name starts with a letter or digit, then letters, digits, '_', '.' or '-' (at most {} characters), and is not host, none or bridge", usernet::MAX_NAME),
            NetError::BadDriver(_) => "den's user networks are bridges: drop --driver or use -d bridge".into(),
            NetError::NetworkExists(_) => "choose another name, or remove the old network with `den network rm`".into(),
            NetError::TooManyNetworks(_) => "remove unused networks with `den network prune`".into(),
            NetError::BadSubnet(_) => "write it as ADDRESS/PREFIX with no host bits, prefix 8 to 30, e.g. --subnet 10.90.0.0/24".into(),
            NetError::SubnetOverlap { .. } => "choose a subnet no other network uses (`den network inspect` shows theirs), or leave --subnet out".into(),
            NetError::BadGateway(..) => "give an address inside the subnet, or leave --gateway out".into(),
            NetError::BadIp(..) => "give a free address inside the network's subnet, other than its gateway (`den network inspect NET`)".into(),
            NetError::IpInUse(_) => "leave --ip out to get a free address, or stop the container that has it".into(),
            NetError::SubnetFull(_) => "remove containers from the network, or create one with a larger --subnet".into(),
            NetError::NetworkInUse(..) => "remove or disconnect its containers first (`den ps -a --filter network=NAME`)".into(),
            NetError::Builtin(_) => "only networks made with `den network create` can be removed".into(),
            NetError::Join(_) => "run with --log-level debug; `den network ls` shows the networks".into(),
            NetError::Store { .. } => "check that den's root is writable".into(),
            NetError::ModeConflict(what) => format!("a container on another's network (--network container:NAME) has that one's {what}: drop it"),
            NetError::SharedNamespace(_) => "recreate it with --network NAME".into(),
            NetError::AlreadyConnected(..) => "it is connected already: `den network disconnect` it first to change its address or aliases".into(),
            NetError::NotConnected(..) => "`den inspect --format '{{json .NetworkSettings.Networks}}' CONTAINER` lists its networks".into(),
            NetError::NotOnUserNetwork(name) => format!("stop it, connect it, and start it again (`den stop {name}`), or run it with --network NAME"),
            NetError::LastNetwork(..) => "connect it to another network first, or stop it".into(),
            NetError::OwnerNotRunning(name) => format!("start it first with `den start {name}`"),
            NetError::UserNetworkConflict(_) => "create a network with `den network create NAME` and run the container with --network NAME".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_are_stored_as_the_flag_was_written() {
        for (stored, net) in [
            ("\"host\"", Network::Host),
            ("\"none\"", Network::None),
            ("\"pasta\"", Network::Pasta),
            (
                "\"slirp4netns\"",
                Network::Slirp4netns {
                    allow_host_loopback: false,
                },
            ),
            (
                "\"slirp4netns:allow_host_loopback=true\"",
                Network::Slirp4netns {
                    allow_host_loopback: true,
                },
            ),
        ] {
            assert_eq!(serde_json::to_string(&net).unwrap(), stored);
            assert_eq!(serde_json::from_str::<Network>(stored).unwrap(), net);
        }
        // What older records may hold: the flag as the user wrote it.
        assert_eq!(
            serde_json::from_str::<Network>("\"bridge\"").unwrap(),
            Network::Slirp4netns {
                allow_host_loopback: false
            }
        );
        assert!(serde_json::from_str::<Network>("\"we ave\"").is_err());
    }

    #[test]
    fn network_modes() {
        assert_eq!(
            Network::parse(""),
            Some(Network::Slirp4netns {
                allow_host_loopback: false
            })
        );
        assert_eq!(
            Network::parse("slirp4netns:allow_host_loopback=true"),
            Some(Network::Slirp4netns {
                allow_host_loopback: true
            })
        );
        assert_eq!(Network::parse("host"), Some(Network::Host));
        assert_eq!(Network::parse("none"), Some(Network::None));
        assert_eq!(Network::parse("pasta"), Some(Network::Pasta));
        assert_eq!(Network::parse("weave"), Some(Network::User("weave".into())));
        assert_eq!(
            Network::parse("container:db"),
            Some(Network::Container("db".into()))
        );
        assert_eq!(Network::Container("db".into()).to_string(), "container:db");
        assert_eq!(Network::parse("container:"), None);
        assert_eq!(Network::parse("container:../x"), None);
        assert_eq!(Network::parse("a b"), None);
        assert_eq!(Network::parse("slirp4netns:mtu=1"), None);
        assert!(!Network::Host.private() && Network::None.private());
    }
}
