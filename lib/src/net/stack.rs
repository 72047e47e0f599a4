//! A container's network on den's side, in the process that holds the container (den-run in the
//! foreground, the monitor otherwise): the published ports bound before the container exists,
//! the userspace stack (slirp4netns, or pasta) started in its namespace once it does, and the
//! forwarding thread ([`super::forward`]). No process of den's own is added: slirp4netns is the
//! container's only helper, and it dies with the process that started it.
//!
//! The stack is started without waiting for it ([`Setup::start`]), so what den does next (the
//! user networks, the pty, the state) overlaps with slirp4netns coming up; [`Setup::ready`] waits
//! for it before the container's process is started, so the network is up when it runs.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use super::forward::{self, Forwarding, Listener};
use super::limits::Limits;
use super::{NetError, Network, PortMapping, Proto, SLIRP_MTU};

/// The running userspace stack; dropping it stops it.
pub(crate) struct Stack {
    child: Option<Child>,
}

impl Drop for Stack {
    /// Killed, and reaped on a thread of its own: slirp4netns takes some 20 ms to exit (closing
    /// its tap device waits for the kernel's RCU grace period), which a container's end need not
    /// wait for.
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            if !matches!(c.try_wait(), Ok(Some(_))) {
                let _ = std::thread::Builder::new()
                    .name("den-reap".into())
                    .stack_size(64 * 1024)
                    .spawn(move || c.wait());
            }
        }
    }
}

/// slirp4netns started, its readiness not yet read.
struct Pending {
    child: Child,
    ready: std::io::PipeReader,
}

impl Pending {
    /// Wait until slirp4netns has configured the namespace.
    fn wait(mut self) -> Result<Stack, NetError> {
        let mut buf = [0u8; 1];
        let n = self.ready.read(&mut buf).unwrap_or(0);
        if n == 0 {
            let out = self.child.wait_with_output().ok();
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
        drop(self.child.stderr.take());
        Ok(Stack {
            child: Some(self.child),
        })
    }
}

/// Start slirp4netns in process `pid`'s network namespace without waiting for it.
fn spawn_slirp(allow_host_loopback: bool, pid: i32) -> Result<Pending, NetError> {
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
    {
        return Err(NetError::Tun(e));
    }
    let prog = crate::config::find_in_path("slirp4netns").ok_or_else(|| NetError::Missing {
        program: "slirp4netns".into(),
    })?;
    let (ready, ready_w) = std::io::pipe().map_err(NetError::Spawn)?;
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
    let child = cmd.spawn().map_err(|_| NetError::Missing {
        program: "slirp4netns".into(),
    })?;
    drop(ready_w);
    Ok(Pending { child, ready })
}

/// Start the userspace stack of `network` in process `pid`'s network namespace and wait until
/// it is up.
pub(crate) fn start_stack(network: &Network, pid: i32) -> Result<Stack, NetError> {
    match network {
        Network::Slirp4netns {
            allow_host_loopback,
        } => spawn_slirp(*allow_host_loopback, pid)?.wait(),
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

/// Where the stack is: not started, started and coming up, or up.
enum Phase {
    Idle,
    Starting(Pending),
    /// Held: dropping it stops the stack.
    Up {
        _stack: Stack,
    },
}

/// A container's userspace network and published ports, held by the process that holds the
/// container; dropping it stops the forwarding and the stack.
pub struct Setup {
    network: Network,
    listeners: Vec<Listener>,
    limits: Limits,
    /// The published ports as bound (free ports chosen).
    pub ports: Vec<PortMapping>,
    pid: Option<i32>,
    phase: Phase,
    forwarding: Option<Forwarding>,
    /// The soft descriptor limit to give back once forwarding stops.
    nofile: Option<u64>,
}

impl Setup {
    /// Bind the published ports (a port in use fails now, before the container exists); None
    /// when the network needs nothing from den.
    pub fn bind(network: &Network, ports: &[PortMapping]) -> Result<Option<Setup>, NetError> {
        if !network.needs_helper() {
            return Ok(None);
        }
        let count = |p: Proto| ports.iter().filter(|m| m.proto == p).count();
        // The forwarding raises the soft limit to the hard one while it runs.
        let nofile = crate::sys::hard_limit(libc::RLIMIT_NOFILE);
        let limits = Limits::new(
            |k| std::env::var(k).ok(),
            nofile,
            count(Proto::Tcp),
            count(Proto::Udp),
        )?;
        tracing::debug!(nofile, ?limits, "port forwarding limits");
        let listeners = forward::bind_all(ports)?;
        let ports = listeners.iter().map(|l| l.mapping.clone()).collect();
        Ok(Some(Setup {
            network: network.clone(),
            listeners,
            limits,
            ports,
            pid: None,
            phase: Phase::Idle,
            forwarding: None,
            nofile: None,
        }))
    }

    /// Start the stack in the created container's (init `pid`'s) namespace; [`Setup::ready`]
    /// waits for it.
    pub fn start(&mut self, pid: i32) -> Result<(), NetError> {
        self.pid = Some(pid);
        self.phase = match &self.network {
            Network::Slirp4netns {
                allow_host_loopback,
            } => Phase::Starting(spawn_slirp(*allow_host_loopback, pid)?),
            other => Phase::Up {
                _stack: start_stack(other, pid)?,
            },
        };
        Ok(())
    }

    /// Wait until the stack is up, and start forwarding the published ports into the
    /// container's namespace.
    pub fn ready(&mut self) -> Result<(), NetError> {
        if let Phase::Starting(p) = std::mem::replace(&mut self.phase, Phase::Idle) {
            self.phase = Phase::Up { _stack: p.wait()? };
        }
        let (Some(pid), false) = (self.pid, self.listeners.is_empty()) else {
            return Ok(());
        };
        let netns = std::path::PathBuf::from(format!("/proc/{pid}/ns/net"));
        let ns = std::fs::File::open(&netns).map_err(|e| NetError::Bind {
            addr: netns.display().to_string(),
            source: e,
        })?;
        if self.nofile.is_none() {
            self.nofile = Some(crate::sys::nofile_soft());
            crate::sys::raise_nofile_limit();
        }
        let listeners = std::mem::take(&mut self.listeners);
        self.forwarding = forward::spawn_all(listeners, Arc::new(ns), self.limits)?;
        Ok(())
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        drop(self.forwarding.take());
        if let Some(soft) = self.nofile {
            crate::sys::set_nofile_soft(soft);
        }
    }
}
