//! Container networks: `none`, `host`, and the default, a private network namespace with a
//! userspace stack (slirp4netns, or pasta) for outbound traffic, plus port forwarding.
//!
//! Entry points: [`Network::parse`] (the `--network` value), [`ports::parse`] (`-p`), and
//! [`Helper`], den's side of `den-net`, the per-container helper that binds the published ports,
//! starts and supervises slirp4netns, and forwards connections ([`serve`]).
//!
//! Forwarding does not go through the userspace stack: den-net listens on the host and, for each
//! connection, opens a socket inside the container's network namespace (a thread joins it with
//! setns(2)) and connects to the container port on its loopback; bytes move with splice(2). The
//! server in the container therefore sees connections from 127.0.0.1, not the client's address
//! (podman's rootlesskit port driver has the same limit; its slirp4netns driver keeps the
//! address at a fraction of the speed).
//!
//! A published port faces clients den does not trust, so what they can make den-net hold is
//! bounded: descriptors, connections and UDP flows per port, idle time; and nothing a client
//! does starts a thread ([`limits`]).

pub mod forward;
pub mod limits;
pub mod ports;
mod relay;
mod udp;
pub mod usernet;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde::{Deserialize, Serialize};

pub use ports::{PortMapping, Proto};

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

/// What den-net is asked to do, passed as JSON in its environment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HelperConfig {
    pub network: Network,
    pub ports: Vec<PortMapping>,
}

/// The environment variable carrying [`HelperConfig`] to den-net.
pub const ENV_CONFIG: &str = "_DEN_NET_CONFIG";
/// The environment variable naming den-net's control socket descriptor.
pub const ENV_CONTROL_FD: &str = "_DEN_NET_FD";

/// den's handle on a running den-net. Dropping it ends den-net (and with it slirp4netns and the
/// published ports).
pub struct Helper {
    child: Child,
    control: BufReader<UnixStream>,
    /// The published ports as bound (free ports chosen), once den-net said so.
    pub ports: Vec<PortMapping>,
    bound: bool,
}

impl Helper {
    /// Start den-net; it binds the published ports while den creates the container, and
    /// [`Helper::attach`] reports a port that could not be bound before the container starts.
    pub fn spawn(config: &HelperConfig) -> Result<Helper, NetError> {
        let tool = crate::config::tool_path("den-net").ok_or_else(|| NetError::Missing {
            program: "den-net".into(),
        })?;
        let (ours, theirs) = UnixStream::pair().map_err(NetError::Spawn)?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&theirs);
        let mut cmd = Command::new(tool);
        cmd.arg("serve")
            .env(
                ENV_CONFIG,
                serde_json::to_string(config).unwrap_or_default(),
            )
            .env(ENV_CONTROL_FD, fd.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        crate::sys::keep_fd_and_die_with_parent(&mut cmd, fd);
        let child = cmd.spawn().map_err(NetError::Spawn)?;
        drop(theirs);
        Ok(Helper {
            child,
            control: BufReader::new(ours),
            ports: Vec::new(),
            bound: false,
        })
    }

    /// Wait until den-net has bound the published ports (or failed to).
    pub fn wait_bound(&mut self) -> Result<(), NetError> {
        if self.bound {
            return Ok(());
        }
        let line = self.read_line()?;
        let json = line
            .strip_prefix("bound ")
            .ok_or_else(|| self.failure(&line))?;
        self.ports = serde_json::from_str(json).map_err(|e| NetError::Helper {
            message: format!("bad reply {json:?}: {e}"),
            hint: None,
        })?;
        self.bound = true;
        Ok(())
    }

    /// Give den-net the container's init: it starts the network stack in its namespace and
    /// forwards the ports there. Returns when the network is up.
    pub fn attach(&mut self, pid: i32) -> Result<(), NetError> {
        let io = |e: std::io::Error| NetError::Helper {
            message: e.to_string(),
            hint: None,
        };
        self.wait_bound()?;
        writeln!(self.control.get_mut(), "pid {pid}").map_err(io)?;
        let line = self.read_line()?;
        if line == "ready" {
            return Ok(());
        }
        Err(self.failure(&line))
    }

    fn read_line(&mut self) -> Result<String, NetError> {
        let mut line = String::new();
        let _ = self.control.read_line(&mut line);
        Ok(line.trim_end().to_string())
    }

    /// The error den-net reported (`err CODE\tmessage\thint`), or that it died.
    fn failure(&mut self, line: &str) -> NetError {
        let mut f = line.strip_prefix("err ").unwrap_or("").splitn(2, '\t');
        match (f.next(), f.next()) {
            (Some(m), h) if !m.is_empty() => NetError::Helper {
                message: m.to_string(),
                hint: h.filter(|h| !h.is_empty()).map(String::from),
            },
            _ => {
                let status = self.child.wait().map(|s| s.to_string()).unwrap_or_default();
                NetError::Helper {
                    message: format!("den-net exited ({status})"),
                    hint: Some("run with --log-level debug".into()),
                }
            }
        }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// den-net's entry: the configuration and control socket den-run passed in the environment.
pub fn serve_from_env() -> Result<(), NetError> {
    let bad = |what: &str| NetError::Helper {
        message: format!("den-net: {what}"),
        hint: Some("den-net is started by den-run, not by hand".into()),
    };
    let config: HelperConfig = std::env::var(ENV_CONFIG)
        .ok()
        .and_then(|c| serde_json::from_str(&c).ok())
        .ok_or_else(|| bad("no configuration"))?;
    // den-run passed this descriptor, a unix socket, for this process to own.
    let control = crate::sys::take_inherited_fd(ENV_CONTROL_FD)
        .map(UnixStream::from)
        .ok_or_else(|| bad("no control socket"))?;
    serve(&config, control)
}

/// den-net's side: bind, wait for the container, start the stack, forward. Runs until the
/// control socket closes (den is done with the container) or the container's init exits.
pub fn serve(config: &HelperConfig, control: UnixStream) -> Result<(), NetError> {
    let mut out = control.try_clone().map_err(NetError::Spawn)?;
    let mut input = BufReader::new(control);
    let report = |out: &mut UnixStream, e: &NetError| {
        let msg = crate::error::chain(e).replace(['\t', '\n'], " ");
        let hint = e.hint().unwrap_or_default().replace(['\t', '\n'], " ");
        let _ = writeln!(out, "err {msg}\t{hint}");
    };
    let nofile = crate::sys::raise_nofile_limit();
    let count = |p: Proto| config.ports.iter().filter(|m| m.proto == p).count();
    let limits = match limits::Limits::new(
        |k| std::env::var(k).ok(),
        nofile,
        count(Proto::Tcp),
        count(Proto::Udp),
    ) {
        Ok(l) => l,
        Err(e) => {
            report(&mut out, &e);
            return Err(e);
        }
    };
    tracing::debug!(nofile, ?limits, "port forwarding limits");
    let listeners = match forward::bind_all(&config.ports) {
        Ok(l) => l,
        Err(e) => {
            report(&mut out, &e);
            return Err(e);
        }
    };
    let bound: Vec<PortMapping> = listeners.iter().map(|l| l.mapping.clone()).collect();
    let _ = writeln!(
        out,
        "bound {}",
        serde_json::to_string(&bound).unwrap_or_default()
    );
    let mut line = String::new();
    let _ = input.read_line(&mut line);
    let Some(pid) = line
        .trim()
        .strip_prefix("pid ")
        .and_then(|p| p.parse::<i32>().ok())
    else {
        return Ok(());
    };
    let stack = match start_stack(&config.network, pid) {
        Ok(s) => s,
        Err(e) => {
            report(&mut out, &e);
            return Err(e);
        }
    };
    let netns = PathBuf::from(format!("/proc/{pid}/ns/net"));
    let ns = std::fs::File::open(&netns).map_err(|e| NetError::Bind {
        addr: netns.display().to_string(),
        source: e,
    })?;
    let ns = std::sync::Arc::new(ns);
    forward::spawn_all(listeners, ns, limits);
    let _ = writeln!(out, "ready");
    // Until den closes the control socket or goes away.
    let mut rest = String::new();
    while input.read_line(&mut rest).map(|n| n > 0).unwrap_or(false) {
        rest.clear();
    }
    drop(stack);
    Ok(())
}

/// The running userspace stack; dropping it stops it.
pub(crate) struct Stack {
    child: Option<Child>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub(crate) fn start_stack(network: &Network, pid: i32) -> Result<Stack, NetError> {
    match network {
        Network::Slirp4netns {
            allow_host_loopback,
        } => {
            if let Err(e) = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/net/tun")
            {
                return Err(NetError::Tun(e));
            }
            let prog =
                crate::config::find_in_path("slirp4netns").ok_or_else(|| NetError::Missing {
                    program: "slirp4netns".into(),
                })?;
            let (ready_r, ready_w) = std::io::pipe().map_err(NetError::Spawn)?;
            let wfd = std::os::fd::AsRawFd::as_raw_fd(&ready_w);
            let mut cmd = Command::new(&prog);
            cmd.arg("--configure")
                .arg(format!("--mtu={SLIRP_MTU}"))
                .arg(format!("--ready-fd={wfd}"));
            if !allow_host_loopback {
                cmd.arg("--disable-host-loopback");
            }
            cmd.arg(pid.to_string())
                .arg("tap0")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            crate::sys::keep_fd_and_die_with_parent(&mut cmd, wfd);
            let mut child = cmd.spawn().map_err(|_| NetError::Missing {
                program: "slirp4netns".into(),
            })?;
            drop(ready_w);
            let mut buf = [0u8; 1];
            let n = std::io::Read::read(&mut { ready_r }, &mut buf).unwrap_or(0);
            if n == 0 {
                let out = child.wait_with_output().ok();
                let message = out
                    .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string())
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| "exited before the network was up".into());
                return Err(NetError::Stack {
                    program: "slirp4netns".into(),
                    message,
                });
            }
            // Its stderr is not read from here on: let it go to nowhere rather than block.
            drop(child.stderr.take());
            Ok(Stack { child: Some(child) })
        }
        Network::Pasta => start_pasta(pid),
        // A user network's outbound traffic goes through the helper's stack.
        Network::Host | Network::None | Network::User(_) | Network::Container(_) => {
            Ok(Stack { child: None })
        }
    }
}

/// pasta, configuring the container's network namespace; it daemonizes and ends with the
/// namespace.
fn start_pasta(pid: i32) -> Result<Stack, NetError> {
    let prog = crate::config::find_in_path("pasta").ok_or_else(|| NetError::Missing {
        program: "passt (pasta)".into(),
    })?;
    let out = Command::new(prog)
        .args(["--config-net", "--quiet", "--netns"])
        .arg(format!("/proc/{pid}/ns/net"))
        .args([
            "--no-map-gw",
            "-t",
            "none",
            "-u",
            "none",
            "-T",
            "none",
            "-U",
            "none",
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(NetError::Spawn)?;
    if !out.status.success() {
        return Err(NetError::Stack {
            program: "pasta".into(),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    // pasta daemonizes and ends with the namespace.
    Ok(Stack { child: None })
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
