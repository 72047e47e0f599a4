//! User networks (`den network create`, `run --network NAME`): private subnets where containers
//! reach each other by name.
//!
//! A network is a definition on disk ([`Networks`]: `networks/NAME.json` under den's root,
//! written atomically under a lock) and, while a container uses it, a bridge in a network
//! namespace kept by one per-user helper ([`holder`], `den-net holder`), podman's rootless-netns
//! model: the helper owns a user namespace shared by every container on a user network (a veth
//! can only be moved by a process with CAP_NET_ADMIN over both ends' namespaces), one
//! slirp4netns for everyone's outbound traffic, a bridge and a DNS server ([`dns`]) per
//! network. den-run joins that user namespace ([`join`]) instead of making one of its own, and
//! asks the helper to attach the container once it is created ([`attach`]).

pub mod dns;
pub mod holder;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::NetError;

/// The longest network name (docker has no limit; podman's bridge names need short ones).
pub const MAX_NAME: usize = 64;
/// Networks one user may define (each is a /24 of 10.89.0.0/16 unless given a subnet).
pub const MAX_NETWORKS: usize = 256;

/// A user network's definition, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserNetwork {
    pub name: String,
    pub id: String,
    pub created: chrono::DateTime<chrono::Utc>,
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// An IPv4 subnet, `ADDR/PREFIX` with no host bits set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Subnet {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    /// `10.89.1.0/24`; host bits set, a prefix outside 8..=30 (room for a gateway and
    /// containers) or anything else is refused.
    pub fn parse(s: &str) -> Option<Subnet> {
        let (a, p) = s.split_once('/')?;
        let addr: Ipv4Addr = a.parse().ok()?;
        let prefix: u8 = p.parse().ok()?;
        if !(8..=30).contains(&prefix) {
            return None;
        }
        let net = Subnet { addr, prefix };
        (u32::from(addr) & !net.mask() == 0).then_some(net)
    }

    pub fn mask(&self) -> u32 {
        u32::MAX << (32 - self.prefix)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr)
    }

    /// Whether two subnets share an address.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        let m = self.mask() & other.mask();
        u32::from(self.addr) & m == u32::from(other.addr) & m
    }

    /// The addresses containers may get: not the network's, not the broadcast.
    pub fn hosts(&self) -> impl Iterator<Item = Ipv4Addr> {
        let first = u32::from(self.addr) + 1;
        let last = u32::from(self.addr) | !self.mask();
        (first..last).map(Ipv4Addr::from)
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl From<Subnet> for String {
    fn from(s: Subnet) -> String {
        s.to_string()
    }
}

impl TryFrom<String> for Subnet {
    type Error = String;
    fn try_from(s: String) -> Result<Subnet, String> {
        Subnet::parse(&s).ok_or_else(|| format!("bad subnet {s:?}"))
    }
}

/// Whether `name` may name a network: docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most
/// [`MAX_NAME`] characters, and not one of the built-in modes.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && name.len() <= MAX_NAME
        && super::Network::builtin(name).is_none()
}

/// One container's place on one network: what `run` asked and, once attached, what it got.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub network: String,
    #[serde(default)]
    pub network_id: String,
    #[serde(default)]
    pub subnet: Option<Subnet>,
    #[serde(default)]
    pub gateway: Option<Ipv4Addr>,
    /// `--ip`, or the address given at attach.
    #[serde(default)]
    pub ip: Option<Ipv4Addr>,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub mac: String,
    /// `network create --internal`: no route out and no NAT, only the network's own members.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub internal: bool,
    /// The container's interface for it (`eth0`, `eth1`, ...), once attached.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interface: String,
}

/// What `network create` asks.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub name: String,
    pub driver: Option<String>,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub internal: bool,
    pub labels: Vec<String>,
}

/// The network definitions of one store.
pub struct Networks {
    dir: PathBuf,
}

impl Networks {
    /// The definitions under `root` (den's store root).
    pub fn new(root: &Path) -> Networks {
        Networks {
            dir: root.join("networks"),
        }
    }

    fn io(&self, e: std::io::Error) -> NetError {
        NetError::Store {
            path: self.dir.clone(),
            source: e,
        }
    }

    fn lock(&self) -> Result<nix::fcntl::Flock<std::fs::File>, NetError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| self.io(e))?;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join(".lock"))
            .map_err(|e| self.io(e))?;
        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| self.io(e.into()))
    }

    /// Every definition, by name.
    pub fn list(&self) -> Result<Vec<UserNetwork>, NetError> {
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(self.io(e)),
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(n) = name.strip_suffix(".json")
                && let Ok(net) = self.get(n)
            {
                out.push(net);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The definition named `name` (or whose id starts with it).
    pub fn get(&self, name: &str) -> Result<UserNetwork, NetError> {
        let missing = || NetError::NetworkNotFound(name.to_string());
        if valid_name(name)
            && let Ok(text) = std::fs::read(self.dir.join(format!("{name}.json")))
        {
            return serde_json::from_slice(&text).map_err(|_| missing());
        }
        if name.len() >= 3 && name.chars().all(|c| c.is_ascii_hexdigit()) {
            let found: Vec<UserNetwork> = self
                .list()?
                .into_iter()
                .filter(|n| n.id.starts_with(name))
                .collect();
            if let [one] = &found[..] {
                return Ok(one.clone());
            }
        }
        Err(missing())
    }

    /// Create a network: the name checked, the subnet given (refused if it overlaps another)
    /// or the first free 10.89.N.0/24.
    pub fn create(&self, o: &CreateOptions) -> Result<UserNetwork, NetError> {
        if !valid_name(&o.name) {
            return Err(NetError::BadNetworkName(o.name.clone()));
        }
        if let Some(d) = o.driver.as_deref().filter(|d| *d != "bridge") {
            return Err(NetError::BadDriver(d.to_string()));
        }
        let mut labels = BTreeMap::new();
        for kv in &o.labels {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            labels.insert(k.to_string(), v.to_string());
        }
        let _lock = self.lock()?;
        let existing = self.list()?;
        if existing.iter().any(|n| n.name == o.name) {
            return Err(NetError::NetworkExists(o.name.clone()));
        }
        if existing.len() >= MAX_NETWORKS {
            return Err(NetError::TooManyNetworks(MAX_NETWORKS));
        }
        let taken: Vec<Subnet> = existing.iter().map(|n| n.subnet).collect();
        let subnet = choose_subnet(o.subnet.as_deref(), &taken)?;
        let gateway = choose_gateway(o.gateway.as_deref(), &subnet)?;
        let net = UserNetwork {
            name: o.name.clone(),
            id: crate::fs::random_hex(32),
            created: chrono::Utc::now(),
            subnet,
            gateway,
            internal: o.internal,
            labels,
        };
        let bytes = serde_json::to_vec_pretty(&net).unwrap_or_default();
        crate::fs::write_atomic(&self.dir.join(format!("{}.json", net.name)), &bytes)
            .map_err(|e| self.io(e))?;
        Ok(net)
    }

    /// Remove a definition (the caller checked no container uses it).
    pub fn remove(&self, name: &str) -> Result<(), NetError> {
        let _lock = self.lock()?;
        let net = self.get(name)?;
        std::fs::remove_file(self.dir.join(format!("{}.json", net.name))).map_err(|e| self.io(e))
    }
}

/// `--subnet`'s value checked against the networks there are, or the first free /24 of
/// 10.89.0.0/16 (podman's range).
pub fn choose_subnet(asked: Option<&str>, taken: &[Subnet]) -> Result<Subnet, NetError> {
    if let Some(s) = asked {
        let net = Subnet::parse(s).ok_or_else(|| NetError::BadSubnet(s.to_string()))?;
        if let Some(t) = taken.iter().find(|t| t.overlaps(&net)) {
            return Err(NetError::SubnetOverlap {
                subnet: net.to_string(),
                other: t.to_string(),
            });
        }
        return Ok(net);
    }
    (1..=255u8)
        .map(|n| Subnet {
            addr: Ipv4Addr::new(10, 89, n, 0),
            prefix: 24,
        })
        .find(|c| !taken.iter().any(|t| t.overlaps(c)))
        .ok_or(NetError::TooManyNetworks(MAX_NETWORKS))
}

/// `--gateway` (inside the subnet), or the subnet's first address.
fn choose_gateway(asked: Option<&str>, subnet: &Subnet) -> Result<Ipv4Addr, NetError> {
    match asked {
        Some(g) => g
            .parse::<Ipv4Addr>()
            .ok()
            .filter(|ip| subnet.hosts().any(|h| h == *ip))
            .ok_or_else(|| NetError::BadGateway(g.to_string(), subnet.to_string())),
        None => subnet
            .hosts()
            .next()
            .ok_or_else(|| NetError::BadSubnet(subnet.to_string())),
    }
}

/// The address for a container: `wanted` if it is free and a host of the subnet other than the
/// gateway, else the first free one.
pub fn allocate(
    subnet: &Subnet,
    gateway: Ipv4Addr,
    used: &[Ipv4Addr],
    wanted: Option<Ipv4Addr>,
) -> Result<Ipv4Addr, NetError> {
    let free = |ip: &Ipv4Addr| *ip != gateway && !used.contains(ip);
    match wanted {
        Some(ip) if !subnet.hosts().any(|h| h == ip) || ip == gateway => {
            Err(NetError::BadIp(ip.to_string(), subnet.to_string()))
        }
        Some(ip) if !free(&ip) => Err(NetError::IpInUse(ip.to_string())),
        Some(ip) => Ok(ip),
        None => subnet
            .hosts()
            .find(free)
            .ok_or_else(|| NetError::SubnetFull(subnet.to_string())),
    }
}

/// Where the helper keeps its pid file, control socket and locks.
pub fn holder_dir(runtime_dir: &Path) -> PathBuf {
    runtime_dir.join("usernet")
}

/// What den asks the helper: attach the container whose init is `pid` to its networks, or
/// connect it to one more, or disconnect it from one (`network connect|disconnect`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttachRequest {
    pub pid: i32,
    pub id: String,
    pub name: String,
    pub endpoints: Vec<Endpoint>,
    #[serde(default)]
    pub op: Op,
}

/// What an [`AttachRequest`] asks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// Its networks, in order (a container being created, or one a killed helper left).
    #[default]
    Attach,
    /// One more network for an attached container.
    Connect,
    /// One network less.
    Disconnect,
}

/// The helper's answer: the endpoints as attached, or why not.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttachReply {
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
    #[serde(default)]
    pub error: Option<String>,
}

/// The helper's pid, if one runs for this user (its pid file names a live `den-net`).
pub fn running_holder(dir: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(dir.join(holder::PID_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let alive = cmd.split(|b| *b == 0).any(|a| a == b"holder")
        && std::path::Path::new(&format!("/proc/{pid}/ns/net")).exists();
    alive.then_some(pid)
}

/// Make sure the helper runs (start it, under a lock so two den processes never start two)
/// and return its pid with `holder.lock` held shared: the helper cannot exit until the lock is
/// let go, which [`join`] hands on to the program it execs. Taking the lock before looking for
/// a helper closes the window where one that is exiting (it holds the lock exclusively while
/// it removes its pid file and socket) is joined, or removes a newer helper's socket. Called
/// outside any user namespace, single-threaded.
pub fn ensure_holder(
    dir: &Path,
    survivors: &dyn Fn() -> Vec<AttachRequest>,
) -> Result<(i32, HolderLock), NetError> {
    let io = |e: std::io::Error| NetError::Store {
        path: dir.to_path_buf(),
        source: e,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("start.lock"))
        .map_err(io)?;
    let _start = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| io(e.into()))?;
    let held = holder::lock_shared(dir)?;
    if let Some(pid) = running_holder(dir) {
        return Ok((pid, held));
    }
    // No helper, yet containers on user networks run: the last helper was killed, and their
    // interfaces went with its network namespace. The new one joins their user namespace (new
    // containers must share it with them) and attaches them again with the same addresses.
    // The store is read only here, not on every start.
    let survivors = survivors();
    let joined = survivors.iter().map(|r| r.pid).find(|p| own_process(*p));
    let pid = holder::spawn(dir, joined)?;
    for req in survivors.iter().filter(|_| joined.is_some()) {
        if let Err(e) = attach(dir, req) {
            tracing::warn!(container = %req.name, error = %crate::error::chain(&e),
                "could not attach a running container to its networks again");
        }
    }
    Ok((pid, held))
}

/// Whether `pid` is a live process of this user (its user namespace may be joined).
fn own_process(pid: i32) -> bool {
    std::fs::metadata(format!("/proc/{pid}/ns/user")).is_ok()
        && std::fs::metadata(format!("/proc/{pid}")).is_ok_and(|m| {
            std::os::unix::fs::MetadataExt::uid(&m) == nix::unistd::getuid().as_raw()
        })
}

/// `holder.lock`, held shared.
pub type HolderLock = nix::fcntl::Flock<std::fs::File>;

/// Join the helper's user namespace (pid `holder`) with a mount namespace of our own, become
/// root there and re-execute this program, as [`crate::userns::enter`] does for den's own
/// namespace, handing `lock` on to it ([`holder::hold`] takes it over): returns only on
/// failure. The caller must be single-threaded.
pub fn join(holder: i32, lock: HolderLock) -> NetError {
    use std::os::fd::AsFd;
    crate::sys::keep_across_exec(lock.as_fd());
    let fd = std::os::fd::AsRawFd::as_raw_fd(&lock.as_fd()).to_string();
    join_and_exec(holder, &[(holder::ENV_LOCK, fd)])
}

/// Join the user namespace of process `pid` with a mount namespace of our own, become root
/// there and re-execute this program with `env` added: returns only on failure. The caller
/// must be single-threaded.
pub fn join_and_exec(pid: i32, env: &[(&str, String)]) -> NetError {
    use crate::sys::Sys;
    let map = crate::userns::IdMap::for_current_user();
    let sys = crate::sys::LinuxSys;
    let res = (|| -> Result<std::convert::Infallible, crate::sys::SysError> {
        let path = format!("/proc/{pid}/ns/user");
        let ns = std::fs::File::open(&path).map_err(|e| crate::sys::SysError::io(path, e))?;
        crate::sys::join_userns(&ns)?;
        sys.unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
        sys.become_root()?;
        let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
        let mut vars = vec![(crate::userns::ENV_INSIDE, map.encode())];
        vars.extend(env.iter().map(|(k, v)| (*k, v.clone())));
        Err(crate::sys::exec(Path::new("/proc/self/exe"), &args, &vars))
    })();
    match res {
        Err(e) => NetError::Join(e),
        Ok(never) => match never {},
    }
}

/// Ask the helper to attach container `req.pid`; returns the endpoints it got.
pub fn attach(dir: &Path, req: &AttachRequest) -> Result<Vec<Endpoint>, NetError> {
    use std::io::{BufRead, Write};
    let helper = |m: String| NetError::Helper {
        message: format!("the user network helper: {m}"),
        hint: Some("run with --log-level debug; `den network ls` shows the networks".into()),
    };
    let sock = dir.join(holder::SOCKET);
    let mut s = std::os::unix::net::UnixStream::connect(&sock)
        .map_err(|e| helper(format!("{}: {e}", sock.display())))?;
    let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(30)));
    let line = serde_json::to_string(req).unwrap_or_default();
    writeln!(s, "{line}").map_err(|e| helper(e.to_string()))?;
    let mut reply = String::new();
    std::io::BufReader::new(&s)
        .read_line(&mut reply)
        .map_err(|e| helper(e.to_string()))?;
    let reply: AttachReply =
        serde_json::from_str(&reply).map_err(|_| helper("no answer".into()))?;
    match reply.error {
        Some(e) => Err(helper(e)),
        None => Ok(reply.endpoints),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_docker() {
        for ok in ["appnet", "a", "my_net.1-x", "A9"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "-x",
            ".x",
            "a b",
            "a/b",
            "host",
            "none",
            "bridge",
            &"x".repeat(65),
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn subnets_parse_and_overlap() {
        let a = Subnet::parse("10.89.1.0/24").unwrap();
        assert!(Subnet::parse("10.89.1.1/24").is_none(), "host bits");
        assert!(Subnet::parse("10.89.1.0/31").is_none());
        assert!(Subnet::parse("nonsense").is_none());
        assert!(a.overlaps(&Subnet::parse("10.89.0.0/16").unwrap()));
        assert!(!a.overlaps(&Subnet::parse("10.89.2.0/24").unwrap()));
        assert!(a.contains("10.89.1.7".parse().unwrap()));
        assert_eq!(a.hosts().count(), 254);
    }

    #[test]
    fn subnets_are_allocated_without_overlap() {
        let taken = [Subnet::parse("10.89.1.0/24").unwrap()];
        assert_eq!(
            choose_subnet(None, &taken).unwrap().to_string(),
            "10.89.2.0/24"
        );
        assert!(matches!(
            choose_subnet(Some("10.89.0.0/16"), &taken),
            Err(NetError::SubnetOverlap { .. })
        ));
        assert!(matches!(
            choose_subnet(Some("10.89.300.0/24"), &taken),
            Err(NetError::BadSubnet(_))
        ));
    }

    #[test]
    fn addresses_are_allocated_in_the_subnet() {
        let s = Subnet::parse("10.89.1.0/24").unwrap();
        let gw = Ipv4Addr::new(10, 89, 1, 1);
        let used = [Ipv4Addr::new(10, 89, 1, 2)];
        assert_eq!(
            allocate(&s, gw, &used, None).unwrap(),
            Ipv4Addr::new(10, 89, 1, 3)
        );
        let want = Ipv4Addr::new(10, 89, 1, 50);
        assert_eq!(allocate(&s, gw, &used, Some(want)).unwrap(), want);
        assert!(matches!(
            allocate(&s, gw, &used, Some(used[0])),
            Err(NetError::IpInUse(_))
        ));
        assert!(matches!(
            allocate(&s, gw, &used, Some(gw)),
            Err(NetError::BadIp(..))
        ));
        let outside = Ipv4Addr::new(10, 0, 0, 5);
        assert!(matches!(
            allocate(&s, gw, &used, Some(outside)),
            Err(NetError::BadIp(..))
        ));
    }

    #[test]
    fn definitions_are_stored_and_refused_when_bad() {
        let t = tempfile::tempdir().unwrap();
        let nets = Networks::new(t.path());
        let o = |name: &str, subnet: Option<&str>| CreateOptions {
            name: name.into(),
            subnet: subnet.map(String::from),
            ..Default::default()
        };
        let a = nets.create(&o("a", None)).unwrap();
        assert_eq!(a.gateway, Ipv4Addr::new(10, 89, 1, 1));
        assert!(matches!(
            nets.create(&o("a", None)),
            Err(NetError::NetworkExists(_))
        ));
        assert!(nets.create(&o("b", Some("10.89.1.128/25"))).is_err());
        assert!(nets.create(&o("bad name", None)).is_err());
        assert_eq!(
            nets.list().unwrap().len(),
            1,
            "refusals leave the store unchanged"
        );
        assert_eq!(nets.get(&a.id[..12]).unwrap().name, "a");
        nets.remove("a").unwrap();
        assert!(matches!(nets.get("a"), Err(NetError::NetworkNotFound(_))));
    }
}
