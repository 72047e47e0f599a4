//! `den-net holder`: the per-user helper that keeps the user networks' namespace.
//!
//! It runs in its own user namespace (made as [`crate::userns::enter`] makes den's, same id
//! map), which every container on a user network shares. A child of it (`den-net keeper`)
//! holds a network namespace where the bridges live; one slirp4netns gives that namespace
//! outbound traffic, which iptables masquerades for each network's subnet. The helper answers
//! den-run's attach requests on a unix socket (one JSON line each way), serves DNS per network
//! ([`super::dns`]), watches the attached containers' inits and exits once none is left and no
//! den-run holds `holder.lock` shared (it is between joining the namespace and attaching).
//!
//! Links, addresses and routes are set with iproute2's `ip` run through `nsenter`, and NAT with
//! `iptables`: the netlink crates need an async runtime, and iptables has no stable library.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{AttachReply, AttachRequest, Endpoint, Op, Subnet};
use crate::net::NetError;

pub const PID_FILE: &str = "holder.pid";
pub const SOCKET: &str = "holder.sock";
/// Held shared by den-run between joining the namespace and attaching its container.
pub const LOCK: &str = "holder.lock";
/// The environment variable naming the descriptor of `holder.lock` that [`super::join`] hands
/// across exec.
pub const ENV_LOCK: &str = "_DEN_NET_LOCK_FD";
/// The environment variable naming the readiness pipe's descriptor.
pub const ENV_READY: &str = "_DEN_NET_READY_FD";
/// How long a helper nobody attached to waits before it exits.
const GRACE: Duration = Duration::from_secs(10);
/// Attached containers at most.
const MAX_CONTAINERS: usize = 1024;

/// Start `den-net holder` for `dir` and wait until it serves; returns its pid. With `join`, it
/// joins that process's user namespace instead of making one.
pub fn spawn(dir: &Path, join: Option<i32>) -> Result<i32, NetError> {
    let tool = crate::config::tool_path("den-net").ok_or_else(|| NetError::Missing {
        program: "den-net".into(),
    })?;
    let (r, w) = std::io::pipe().map_err(NetError::Spawn)?;
    let wfd = std::os::fd::AsRawFd::as_raw_fd(&w);
    let log = std::fs::File::create(dir.join("holder.log")).map_err(NetError::Spawn)?;
    let mut cmd = Command::new(tool);
    cmd.arg("holder").arg(dir);
    if let Some(pid) = join {
        cmd.arg("--join").arg(pid.to_string());
    }
    cmd.env(ENV_READY, wfd.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    crate::sys::new_session_keeping_fd(&mut cmd, wfd);
    let mut child = cmd.spawn().map_err(NetError::Spawn)?;
    drop(w);
    let mut line = String::new();
    let _ = BufReader::new(r).read_line(&mut line);
    let _ = child.try_wait();
    std::mem::forget(child);
    match line.trim().strip_prefix("ok ").and_then(|p| p.parse().ok()) {
        Some(pid) => Ok(pid),
        None => Err(NetError::Helper {
            message: format!(
                "the user network helper did not start: {}",
                line.trim().strip_prefix("err ").unwrap_or("it exited")
            ),
            hint: Some(format!("see {}", dir.join("holder.log").display())),
        }),
    }
}

/// A network as the helper keeps it: its bridge and addresses in use.
struct Bridge {
    name: String,
    subnet: Subnet,
    gateway: Ipv4Addr,
}

/// A container attached to networks.
struct Attached {
    pid: i32,
    /// The inode of its network namespace: the same pid with another is another process.
    netns: Option<u64>,
    name: String,
    endpoints: Vec<Endpoint>,
}

/// What the helper knows, shared with its DNS servers.
#[derive(Default)]
pub struct State {
    bridges: BTreeMap<String, Bridge>,
    containers: BTreeMap<String, Attached>,
}

impl State {
    /// The address of `name` (a container's name, short id or alias, any case, a trailing dot
    /// or not) for a client on `network`.
    pub fn lookup(&self, network: &str, name: &str) -> Option<Ipv4Addr> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.containers.iter().find_map(|(id, c)| {
            let ep = c.endpoints.iter().find(|e| e.network == network)?;
            let known = c.name.eq_ignore_ascii_case(&name)
                || (name.len() >= 12 && id.starts_with(&name))
                || ep.aliases.iter().any(|a| a.eq_ignore_ascii_case(&name));
            known.then_some(ep.ip).flatten()
        })
    }

    /// [`State::lookup`] for the container at `client` on `network`: the names of every
    /// network it is on, `network`'s first (docker's resolver answers for all of them).
    pub fn lookup_from(&self, network: &str, client: Ipv4Addr, name: &str) -> Option<Ipv4Addr> {
        let theirs = self.containers.values().find(|c| {
            c.endpoints
                .iter()
                .any(|e| e.network == network && e.ip == Some(client))
        });
        let others = theirs
            .into_iter()
            .flat_map(|c| &c.endpoints)
            .map(|e| e.network.as_str())
            .filter(|n| *n != network);
        std::iter::once(network)
            .chain(others)
            .find_map(|n| self.lookup(n, name))
    }

    fn used(&self, network: &str) -> Vec<Ipv4Addr> {
        self.containers
            .values()
            .flat_map(|c| &c.endpoints)
            .filter(|e| e.network == network)
            .filter_map(|e| e.ip)
            .collect()
    }
}

/// The helper, inside its user namespace: set up, report ready on the pipe, serve.
pub fn serve(dir: &Path) -> Result<(), NetError> {
    let ready = crate::sys::take_inherited_fd(ENV_READY).map(std::fs::File::from);
    let report = |ready: Option<std::fs::File>, line: String| {
        if let Some(mut f) = ready {
            let _ = writeln!(f, "{line}");
        }
    };
    let setup = match set_up(dir) {
        Ok(s) => s,
        Err(e) => {
            report(ready, format!("err {}", crate::error::chain(&e)));
            return Err(e);
        }
    };
    report(ready, format!("ok {}", std::process::id()));
    let Setup {
        listener,
        keeper,
        stack,
    } = setup;
    let state = Arc::new(Mutex::new(State::default()));
    let netns = PathBuf::from(format!("/proc/{}/ns/net", keeper.id()));
    {
        let (state, dir) = (state.clone(), dir.to_path_buf());
        std::thread::spawn(move || reap(&state, &dir));
    }
    for conn in listener.incoming().flatten() {
        let mut out = match conn.try_clone() {
            Ok(o) => o,
            Err(_) => continue,
        };
        let mut line = String::new();
        let _ = BufReader::new(conn.take_ref()).read_line(&mut line);
        let reply = match serde_json::from_str::<AttachRequest>(&line) {
            Ok(req) if req.op == Op::Disconnect => disconnect(&state, keeper.id() as i32, &req),
            Ok(req) if req.op == Op::Connect => connect(&state, &netns, keeper.id() as i32, req),
            Ok(req) => attach(&state, &netns, keeper.id() as i32, req),
            Err(e) => Err(format!("bad request: {e}")),
        };
        let reply = match reply {
            Ok(endpoints) => AttachReply {
                endpoints,
                error: None,
            },
            Err(e) => AttachReply {
                endpoints: vec![],
                error: Some(e),
            },
        };
        let _ = writeln!(out, "{}", serde_json::to_string(&reply).unwrap_or_default());
    }
    drop((keeper, stack));
    Ok(())
}

/// `UnixStream::take` for a borrowed stream (reads at most one request).
trait TakeRef {
    fn take_ref(&self) -> std::io::Take<&std::os::unix::net::UnixStream>;
}

impl TakeRef for std::os::unix::net::UnixStream {
    fn take_ref(&self) -> std::io::Take<&std::os::unix::net::UnixStream> {
        std::io::Read::take(self, 1 << 20)
    }
}

struct Setup {
    listener: std::os::unix::net::UnixListener,
    keeper: std::process::Child,
    stack: crate::net::Stack,
}

/// The namespace, its outbound stack, the control socket and the pid file.
fn set_up(dir: &Path) -> Result<Setup, NetError> {
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg("keeper")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    crate::sys::die_with_parent(&mut cmd);
    let mut keeper = cmd.spawn().map_err(NetError::Spawn)?;
    let mut line = String::new();
    if let Some(o) = keeper.stdout.take() {
        let _ = BufReader::new(o).read_line(&mut line);
    }
    if line.trim() != "ok" {
        return Err(NetError::Stack {
            program: "den-net keeper".into(),
            message: "could not make a network namespace".into(),
        });
    }
    let k = keeper.id() as i32;
    let stack = crate::net::start_stack(
        &crate::net::Network::Slirp4netns {
            allow_host_loopback: false,
        },
        k,
    )?;
    run_in(k, &["ip", "link", "set", "lo", "up"])?;
    if let Err(e) = run_in(k, &["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]) {
        tracing::warn!(error = %crate::error::chain(&e), "no forwarding: containers have no outbound traffic");
    }
    let sock = dir.join(SOCKET);
    let _ = std::fs::remove_file(&sock);
    let listener = std::os::unix::net::UnixListener::bind(&sock).map_err(NetError::Spawn)?;
    crate::fs::write_atomic(
        &dir.join(PID_FILE),
        std::process::id().to_string().as_bytes(),
    )
    .map_err(NetError::Spawn)?;
    Ok(Setup {
        listener,
        keeper,
        stack,
    })
}

/// `den-net keeper`: a process in a network namespace of its own, until its stdin closes.
pub fn keep() -> Result<(), NetError> {
    use crate::sys::Sys;
    crate::sys::LinuxSys
        .unshare(nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| NetError::Stack {
            program: "unshare(CLONE_NEWNET)".into(),
            message: e.to_string(),
        })?;
    println_ok();
    let mut sink = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
    Ok(())
}

fn println_ok() {
    let mut out = std::io::stdout();
    let _ = writeln!(out, "ok");
    let _ = out.flush();
}

/// Run `args` in the network namespace of process `pid`.
fn run_in(pid: i32, args: &[&str]) -> Result<String, NetError> {
    let out = Command::new("nsenter")
        .arg(format!("--net=/proc/{pid}/ns/net"))
        .arg("--")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|_| NetError::Missing {
            program: format!("nsenter or {}", args[0]),
        })?;
    if !out.status.success() {
        return Err(NetError::Stack {
            program: args.join(" "),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Attach a container to each network it asks for; on failure nothing is kept.
fn attach(
    state: &Arc<Mutex<State>>,
    netns: &Path,
    keeper: i32,
    req: AttachRequest,
) -> Result<Vec<Endpoint>, String> {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    if st.containers.len() >= MAX_CONTAINERS {
        return Err(format!("{MAX_CONTAINERS} containers are attached already"));
    }
    st.containers.remove(&req.id);
    let mut done = Vec::new();
    for (i, ep) in req.endpoints.iter().enumerate() {
        let got = attach_one(&mut st, state, netns, keeper, &req, i, ep)
            .map_err(|e| crate::error::chain(&e))?;
        done.push(got);
        // Visible to DNS (and to the next endpoint's allocation) at once.
        st.containers.insert(
            req.id.clone(),
            Attached {
                pid: req.pid,
                netns: netns_inode(req.pid),
                name: req.name.clone(),
                endpoints: done.clone(),
            },
        );
    }
    Ok(done)
}

/// One more network for an attached container, on its first free interface.
fn connect(
    state: &Arc<Mutex<State>>,
    netns: &Path,
    keeper: i32,
    req: AttachRequest,
) -> Result<Vec<Endpoint>, String> {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    let Some(have) = st.containers.get(&req.id).map(|c| c.endpoints.clone()) else {
        return Err(format!(
            "container {} is not attached to a network",
            req.name
        ));
    };
    let mut got = Vec::new();
    for ep in &req.endpoints {
        if have
            .iter()
            .chain(&got)
            .any(|e: &Endpoint| e.network == ep.network)
        {
            return Err(format!(
                "endpoint with name {} already exists in network {}",
                req.name, ep.network
            ));
        }
        let taken: Vec<&str> = have
            .iter()
            .chain(&got)
            .map(|e| e.interface.as_str())
            .collect();
        let i = (0..)
            .find(|i| !taken.contains(&format!("eth{i}").as_str()))
            .unwrap_or(0);
        let e = attach_one(&mut st, state, netns, keeper, &req, i, ep)
            .map_err(|e| crate::error::chain(&e))?;
        got.push(e);
    }
    if let Some(c) = st.containers.get_mut(&req.id) {
        c.endpoints.extend(got.iter().cloned());
    }
    Ok(got)
}

/// One network less for an attached container: its interface there is deleted.
fn disconnect(
    state: &Arc<Mutex<State>>,
    keeper: i32,
    req: &AttachRequest,
) -> Result<Vec<Endpoint>, String> {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    let Some(c) = st.containers.get_mut(&req.id) else {
        return Ok(vec![]);
    };
    for ep in &req.endpoints {
        if let Some(pos) = c.endpoints.iter().position(|e| e.network == ep.network) {
            let gone = c.endpoints.remove(pos);
            let i = gone.interface.trim_start_matches("eth");
            let veth = format!("veth{}{i}", &req.id[..req.id.len().min(8)]);
            run_in(keeper, &["ip", "link", "del", &veth]).map_err(|e| crate::error::chain(&e))?;
        }
    }
    Ok(c.endpoints.clone())
}

fn attach_one(
    st: &mut State,
    shared: &Arc<Mutex<State>>,
    netns: &Path,
    keeper: i32,
    req: &AttachRequest,
    i: usize,
    ep: &Endpoint,
) -> Result<Endpoint, NetError> {
    let (subnet, gateway) = match (ep.subnet, ep.gateway) {
        (Some(s), Some(g)) => (s, g),
        _ => return Err(NetError::NetworkNotFound(ep.network.clone())),
    };
    if !st.bridges.contains_key(&ep.network) {
        let name = format!("den{}", st.bridges.len());
        make_bridge(keeper, &name, subnet, gateway, ep.internal)?;
        super::dns::spawn(
            shared.clone(),
            netns.to_path_buf(),
            ep.network.clone(),
            gateway,
        );
        st.bridges.insert(
            ep.network.clone(),
            Bridge {
                name,
                subnet,
                gateway,
            },
        );
    }
    let bridge = &st.bridges[&ep.network];
    let (bname, bsub, bgw) = (bridge.name.clone(), bridge.subnet, bridge.gateway);
    let ip = super::allocate(&bsub, bgw, &st.used(&ep.network), ep.ip)?;
    let veth = format!("veth{}{i}", &req.id[..req.id.len().min(8)]);
    let eth = format!("eth{i}");
    let pid = req.pid.to_string();
    let mtu = crate::net::SLIRP_MTU.to_string();
    let _ = run_in(keeper, &["ip", "link", "del", &veth]);
    let add = || {
        run_in(
            keeper,
            &[
                "ip", "link", "add", &veth, "mtu", &mtu, "type", "veth", "peer", "name", &eth,
                "mtu", &mtu, "netns", &pid,
            ],
        )
    };
    if add().is_err() {
        // Attached again after a helper died: the container's end of the old pair lives on
        // until the kernel has torn the dead helper's namespace down, which it does later, on
        // a work queue ("File exists"). Take it away and try once more.
        let _ = run_in(req.pid, &["ip", "link", "del", &eth]);
        add()?;
    }
    run_in(
        keeper,
        &["ip", "link", "set", &veth, "master", &bname, "up"],
    )?;
    let cidr = format!("{ip}/{}", bsub.prefix);
    run_in(req.pid, &["ip", "link", "set", "lo", "up"])?;
    run_in(req.pid, &["ip", "addr", "add", &cidr, "dev", &eth])?;
    run_in(req.pid, &["ip", "link", "set", &eth, "up"])?;
    if i == 0 && !ep.internal {
        run_in(
            req.pid,
            &["ip", "route", "add", "default", "via", &bgw.to_string()],
        )?;
    }
    let link = run_in(req.pid, &["ip", "-o", "link", "show", &eth]).unwrap_or_default();
    let mac = link
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    Ok(Endpoint {
        ip: Some(ip),
        mac,
        interface: eth,
        ..ep.clone()
    })
}

/// A bridge with the gateway's address, NAT for its subnet, and no traffic to other bridges.
/// An internal network's bridge gets no NAT and forwards nothing out at all (its containers
/// have no default route either).
fn make_bridge(
    keeper: i32,
    name: &str,
    subnet: Subnet,
    gateway: Ipv4Addr,
    internal: bool,
) -> Result<(), NetError> {
    let _ = run_in(keeper, &["ip", "link", "del", name]);
    run_in(keeper, &["ip", "link", "add", name, "type", "bridge"])?;
    let cidr = format!("{gateway}/{}", subnet.prefix);
    run_in(keeper, &["ip", "addr", "add", &cidr, "dev", name])?;
    run_in(keeper, &["ip", "link", "set", name, "up"])?;
    let sub = subnet.to_string();
    let outbound: &[&str] = if internal {
        &[
            "iptables", "-A", "FORWARD", "-i", name, "!", "-o", name, "-j", "DROP",
        ]
    } else {
        &[
            "iptables",
            "-t",
            "nat",
            "-A",
            "POSTROUTING",
            "-s",
            &sub,
            "!",
            "-o",
            name,
            "-j",
            "MASQUERADE",
        ]
    };
    let rules: [&[&str]; 3] = [
        outbound,
        &[
            "iptables", "-I", "FORWARD", "-i", name, "-o", name, "-j", "ACCEPT",
        ],
        &[
            "iptables", "-A", "FORWARD", "-i", name, "-o", "den+", "-j", "DROP",
        ],
    ];
    for r in rules {
        if let Err(e) = run_in(keeper, r) {
            tracing::warn!(error = %crate::error::chain(&e), "iptables");
        }
    }
    Ok(())
}

fn netns_inode(pid: i32) -> Option<u64> {
    std::fs::metadata(format!("/proc/{pid}/ns/net"))
        .ok()
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
}

/// Forget containers whose init is gone; exit when none is left and no den-run is about to
/// attach one.
fn reap(state: &Arc<Mutex<State>>, dir: &Path) {
    let born = Instant::now();
    let mut had_any = false;
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        st.containers
            .retain(|_, c| c.netns.is_some() && netns_inode(c.pid) == c.netns);
        had_any |= !st.containers.is_empty();
        if !st.containers.is_empty() || (!had_any && born.elapsed() < GRACE) {
            continue;
        }
        let Ok(f) = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK))
        else {
            // Its directory is gone (the store's runtime directory was removed).
            std::process::exit(0);
        };
        if nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock).is_ok() {
            let _ = std::fs::remove_file(dir.join(PID_FILE));
            let _ = std::fs::remove_file(dir.join(SOCKET));
            // The keeper and slirp4netns die with this process.
            std::process::exit(0);
        }
    }
}

/// `holder.lock` of `dir`, locked shared (waiting while an exiting helper holds it).
pub fn lock_shared(dir: &Path) -> Result<super::HolderLock, NetError> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK))
        .map_err(NetError::Spawn)?;
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockShared)
        .map_err(|(_, e)| NetError::Spawn(e.into()))
}

/// Hold `holder.lock` shared for the rest of this process: the helper stays until it exits.
/// The lock [`super::join`] handed across exec is taken over when the descriptor it names is
/// that file (the variable may have reached a child where the number means something else).
pub fn hold(dir: &Path) -> Result<(), NetError> {
    use std::os::unix::fs::MetadataExt;
    if let Some(fd) = crate::sys::take_inherited_fd(ENV_LOCK) {
        let f = std::fs::File::from(fd);
        let same = match (f.metadata(), std::fs::metadata(dir.join(LOCK))) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        };
        if same {
            crate::sys::set_cloexec(std::os::fd::AsFd::as_fd(&f));
            std::mem::forget(f);
            return Ok(());
        }
        std::mem::forget(f);
    }
    std::mem::forget(lock_shared(dir)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(network: &str, ip: [u8; 4], aliases: &[&str]) -> Endpoint {
        Endpoint {
            network: network.into(),
            ip: Some(Ipv4Addr::from(ip)),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            ..Default::default()
        }
    }

    fn attached(name: &str, endpoints: Vec<Endpoint>) -> Attached {
        Attached {
            pid: 0,
            netns: None,
            name: name.into(),
            endpoints,
        }
    }

    #[test]
    fn a_client_on_two_networks_resolves_the_names_of_both() {
        let mut st = State::default();
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        let c = "c".repeat(64);
        st.containers.insert(
            a,
            attached(
                "cli",
                vec![
                    on("left", [10, 89, 1, 2], &[]),
                    on("right", [10, 89, 2, 2], &[]),
                ],
            ),
        );
        st.containers.insert(
            b,
            attached("db", vec![on("right", [10, 89, 2, 3], &["store"])]),
        );
        st.containers
            .insert(c, attached("lonely", vec![on("left", [10, 89, 1, 9], &[])]));
        let cli = Ipv4Addr::new(10, 89, 1, 2);
        assert_eq!(
            st.lookup_from("left", cli, "STORE."),
            Some(Ipv4Addr::new(10, 89, 2, 3)),
            "an alias on its other network"
        );
        assert_eq!(
            st.lookup_from("left", cli, "lonely"),
            Some(Ipv4Addr::new(10, 89, 1, 9))
        );
        // A client only on `left` does not see `right`'s names.
        let lonely = Ipv4Addr::new(10, 89, 1, 9);
        assert_eq!(st.lookup_from("left", lonely, "db"), None);
        assert_eq!(st.lookup_from("left", lonely, &"b".repeat(12)), None);
        assert_eq!(
            st.lookup_from("right", Ipv4Addr::new(10, 89, 2, 3), &"b".repeat(12)),
            Some(Ipv4Addr::new(10, 89, 2, 3)),
            "short ids"
        );
    }
}
