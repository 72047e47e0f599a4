//! A container's network on den's side, in the process that holds the container (den-run in the
//! foreground, the monitor otherwise): the published ports bound before the container exists,
//! the userspace stack (slirp4netns, or pasta) started in its namespace once it does, and the
//! forwarding thread ([`super::forward`]). No process of den's own is added: slirp4netns is the
//! container's only helper. It exits when den's end of its exit pipe closes (`--exit-fd`): when
//! the stack is dropped, or den dies, whichever thread started it (a parent-death signal would
//! follow the thread, not the process).
//!
//! slirp4netns is started before the container is created, in a network namespace den makes for
//! it ([`crate::sys::new_netns`]), which the container's spec then joins: slirp4netns comes up
//! while den mounts the root filesystem and the runtime creates the container, instead of
//! after. [`Setup::ready`] waits for it before the container's process is started, so the
//! network is up when it runs.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use super::forward::{self, Forwarding, Listener};
use super::limits::Limits;
use super::{NetError, Network, PortMapping, Proto, SLIRP_MTU};

/// The running userspace stack; dropping it stops it.
pub(crate) struct Stack {
    child: Option<Child>,
    /// slirp4netns's exit pipe (closed last, after the kill).
    _exit: Option<std::io::PipeWriter>,
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

/// slirp4netns started, its readiness not yet read. Dropped on a failure before the
/// container runs: the exit pipe closes and slirp4netns goes.
struct Pending {
    child: Child,
    ready: std::io::PipeReader,
    exit: std::io::PipeWriter,
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
            _exit: Some(self.exit),
        })
    }
}

/// The network namespace slirp4netns serves: a process's, or one den holds a descriptor of.
enum Target {
    Pid(i32),
    Fd(std::os::fd::RawFd),
}

/// Start slirp4netns in `target`'s network namespace without waiting for it.
fn spawn_slirp(allow_host_loopback: bool, target: Target) -> Result<Pending, NetError> {
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
    let (exit_r, exit) = std::io::pipe().map_err(NetError::Spawn)?;
    let wfd = std::os::fd::AsRawFd::as_raw_fd(&ready_w);
    let efd = std::os::fd::AsRawFd::as_raw_fd(&exit_r);
    let mut cmd = Command::new(&prog);
    cmd.arg("--configure")
        .arg(format!("--mtu={SLIRP_MTU}"))
        .arg(format!("--ready-fd={wfd}"))
        .arg(format!("--exit-fd={efd}"));
    if !allow_host_loopback {
        cmd.arg("--disable-host-loopback");
    }
    match target {
        Target::Pid(pid) => {
            cmd.arg(pid.to_string());
            crate::sys::keep_fds(&mut cmd, [Some(wfd), Some(efd), None]);
        }
        Target::Fd(fd) => {
            cmd.arg("--netns-type=path").arg(fd_path(fd));
            crate::sys::keep_fds(&mut cmd, [Some(wfd), Some(efd), Some(fd)]);
        }
    };
    cmd.arg("tap0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = cmd.spawn().map_err(|_| NetError::Missing {
        program: "slirp4netns".into(),
    })?;
    drop(ready_w);
    drop(exit_r);
    Ok(Pending { child, ready, exit })
}

/// Start the userspace stack of `network` in process `pid`'s network namespace and wait until
/// it is up.
pub(crate) fn start_stack(network: &Network, pid: i32) -> Result<Stack, NetError> {
    match network {
        Network::Slirp4netns {
            allow_host_loopback,
        } => spawn_slirp(*allow_host_loopback, Target::Pid(pid))?.wait(),
        Network::Pasta => start_pasta(pid),
        // A user network's outbound traffic goes through the helper's stack.
        Network::Host | Network::None | Network::User(_) | Network::Container(_) => Ok(Stack {
            child: None,
            _exit: None,
        }),
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
    Ok(Stack {
        child: None,
        _exit: None,
    })
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
    /// The namespace den made for the container ([`Setup::bind`] with `early`).
    netns: Option<std::fs::File>,
    phase: Phase,
    forwarding: Option<Forwarding>,
    /// The soft descriptor limit to give back once forwarding stops.
    nofile: Option<u64>,
}

impl Setup {
    /// Bind the published ports (a port in use fails now, before the container exists); None
    /// when the network needs nothing from den. With `early`, a slirp4netns network's namespace
    /// is made now and slirp4netns started in it, to come up while the container is created in
    /// it ([`Setup::netns_path`]); not for a container in a user namespace of its own (keep-id),
    /// which could not join a namespace owned by den's.
    pub fn bind(
        network: &Network,
        ports: &[PortMapping],
        early: bool,
    ) -> Result<Option<Setup>, NetError> {
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
        let mut setup = Setup {
            network: network.clone(),
            listeners,
            limits,
            ports,
            pid: None,
            netns: None,
            phase: Phase::Idle,
            forwarding: None,
            nofile: None,
        };
        if let (
            true,
            Network::Slirp4netns {
                allow_host_loopback,
            },
        ) = (early, network)
        {
            let ns = crate::sys::new_netns().map_err(|e| NetError::Spawn(e.into()))?;
            let fd = std::os::fd::AsRawFd::as_raw_fd(&ns);
            setup.netns = Some(ns);
            setup.phase = Phase::Starting(spawn_slirp(*allow_host_loopback, Target::Fd(fd))?);
        }
        Ok(Some(setup))
    }

    /// The network namespace made for the container, for its spec to join; None when the
    /// container makes its own.
    pub fn netns_path(&self) -> Option<std::path::PathBuf> {
        self.netns
            .as_ref()
            .map(|ns| fd_path(std::os::fd::AsRawFd::as_raw_fd(ns)).into())
    }

    /// Start the stack in the created container's (init `pid`'s) namespace; [`Setup::ready`]
    /// waits for it.
    pub fn start(&mut self, pid: i32) -> Result<(), NetError> {
        self.pid = Some(pid);
        if self.netns.is_some() {
            return Ok(());
        }
        self.phase = match &self.network {
            Network::Slirp4netns {
                allow_host_loopback,
            } => Phase::Starting(spawn_slirp(*allow_host_loopback, Target::Pid(pid))?),
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
        let ns = match &self.netns {
            Some(ns) => ns.try_clone().map_err(NetError::Spawn)?,
            None => {
                let netns = std::path::PathBuf::from(format!("/proc/{pid}/ns/net"));
                std::fs::File::open(&netns).map_err(|e| NetError::Bind {
                    addr: netns.display().to_string(),
                    source: e,
                })?
            }
        };
        if self.nofile.is_none() {
            self.nofile = Some(crate::sys::nofile_soft());
            crate::sys::raise_nofile_limit();
        }
        let listeners = std::mem::take(&mut self.listeners);
        self.forwarding = forward::spawn_all(listeners, Arc::new(ns), self.limits)?;
        Ok(())
    }
}

/// The path by which a process that has descriptor `fd` (slirp4netns, kept across its exec;
/// the container's init, a clone of this process) opens it: its own, always its own to open.
fn fd_path(fd: std::os::fd::RawFd) -> String {
    format!("/proc/self/fd/{fd}")
}

impl Drop for Setup {
    fn drop(&mut self) {
        drop(self.forwarding.take());
        if let Some(soft) = self.nofile {
            crate::sys::set_nofile_soft(soft);
        }
    }
}
