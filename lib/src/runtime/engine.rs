//! The engine seam: what den needs from an OCI runtime, and its implementation on youki's
//! libcontainer.
//!
//! [`Engine::create`] makes the container's processes and namespaces and parks its init before
//! exec; [`Instance::start`] lets it run. The init is a child of the calling process (libcontainer
//! clones it with CLONE_PARENT), so the caller waits for it with waitpid(2). Another runtime
//! (crun, runc through its CLI) could implement the same two traits.
//!
//! libcontainer is driven the podman way: den has already made the user namespace and mounted
//! the root filesystem; the spec has no user namespace, and libcontainer, seeing it runs inside
//! one, switches to rootless mode. Two of its operations read the container's cgroup and fail
//! without one: `kill(all)` and `delete(force)` on a running container. den signals the init
//! only (its pid namespace takes the other processes with it) and deletes after it has exited.
//!
//! A keep-id container's processes become the user in [`DenExecutor`], just before they exec
//! ([`super::keepid::Become`]): libcontainer's `exec` never joins a container's user namespace,
//! and in single-uid mode its init cannot start in one (it becomes root in any it joins).
//!
//! Every container, and every process `exec` adds, gets a new session keyring (see
//! [`crate::sys::join_new_session_keyring`]), joined by den just before libcontainer forks.
//!
//! libcontainer 0.7 drops the container's seccomp filter from the spec of an `exec`'d process
//! (its tenant builder keeps only the namespaces), so such a process would run unfiltered. den
//! applies the filter itself, in [`DenExecutor`], just before the process execs: the process is
//! started with CAP_SYS_ADMIN and CAP_SETPCAP on top of the container's capabilities (loading a
//! filter without no-new-privileges needs the first, dropping from the bounding set the second),
//! loads the filter, then drops to exactly the container's capabilities. It never execs with
//! either left over: a failure ends the process.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use libcontainer::container::Container;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::RuntimeError;

/// The container's standard streams.
pub enum Stdio {
    /// These descriptors become the init's 0, 1 and 2.
    Fds {
        stdin: OwnedFd,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
    /// The init gets a new pty; its master is sent to this unix socket.
    Console { socket: PathBuf },
}

pub trait Engine {
    /// Create the container described by `bundle/config.json`; its init waits for `start`.
    fn create(
        &self,
        id: &str,
        bundle: &Path,
        stdio: Stdio,
    ) -> Result<Box<dyn Instance>, RuntimeError>;
}

/// A process to run in a running container (`exec`).
#[derive(Debug, Clone)]
pub struct ExecProcess {
    pub args: Vec<String>,
    /// The whole environment.
    pub env: Vec<String>,
    pub terminal: bool,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// Keep running when the calling process exits (`exec -d`, and `exec -it` with detach keys).
    pub detached: bool,
    /// A keep-id container's: how the process becomes the user ([`super::keepid`]).
    pub become_user: Option<super::keepid::Become>,
    /// The container's capabilities, no-new-privileges and seccomp filter.
    pub security: super::spec::ExecSecurity,
}

/// Run `process` in the running container `id`; its pid (a child of the caller).
pub trait Exec {
    fn exec(&self, id: &str, process: &ExecProcess, stdio: Stdio) -> Result<Pid, RuntimeError>;
}

pub trait Instance {
    fn pid(&self) -> Pid;
    fn start(&mut self) -> Result<(), RuntimeError>;
    /// Signal the init process.
    fn signal(&self, sig: Signal) -> Result<(), RuntimeError>;
    /// Remove the runtime's state. The init must have exited.
    fn delete(&mut self) -> Result<(), RuntimeError>;
}

/// libcontainer, with its state under `state_root`.
pub struct Youki {
    pub state_root: PathBuf,
    /// Whether the engine sees cgroups. When den has hidden them, deleting a container is
    /// removing its state directory: libcontainer's delete would build a cgroup manager only to
    /// find nothing to remove (5 ms of a 30 ms run).
    pub cgroups: bool,
}

impl Engine for Youki {
    fn create(
        &self,
        id: &str,
        bundle: &Path,
        stdio: Stdio,
    ) -> Result<Box<dyn Instance>, RuntimeError> {
        let err = |e: libcontainer::error::LibcontainerError| RuntimeError::Engine {
            id: id.into(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(&self.state_root).map_err(|e| RuntimeError::Io {
            path: self.state_root.clone(),
            source: e,
        })?;
        // State left behind by a den that was killed: the container is gone with its namespaces.
        let stale = self.state_root.join(id);
        if stale.exists() {
            let _ = std::fs::remove_dir_all(&stale);
        }
        new_session_keyring()?;
        super::hooks::clear_failure(bundle);
        let b = self.builder(id, stdio, true, None, None)?;
        // A hook's own failure (left by den-run __hook) says more than libcontainer's.
        let container = b
            .as_init(bundle)
            .with_systemd(false)
            .with_detach(true)
            .build()
            .map_err(|e| super::hooks::failure(bundle).unwrap_or_else(|| err(e)))?;
        let pid = container.pid().ok_or_else(|| RuntimeError::Engine {
            id: id.into(),
            message: "no init pid".into(),
        })?;
        Ok(Box::new(YoukiInstance {
            container,
            pid,
            cgroups: self.cgroups,
            state_dir: self.state_root.join(id),
            bundle: bundle.to_path_buf(),
        }))
    }
}

impl Youki {
    /// libcontainer's builder for container `id`: den's state root, executor and stdio.
    fn builder(
        &self,
        id: &str,
        stdio: Stdio,
        die_with_parent: bool,
        late: Option<LateSecurity>,
        exec_becomes: Option<Option<super::keepid::Become>>,
    ) -> Result<ContainerBuilder, RuntimeError> {
        let b = ContainerBuilder::new(id.to_string(), SyscallType::default())
            .with_root_path(&self.state_root)
            .map_err(|e| RuntimeError::Engine {
                id: id.into(),
                message: e.to_string(),
            })?
            .with_executor(DenExecutor {
                die_with_parent,
                late,
                exec_becomes,
            });
        Ok(match stdio {
            Stdio::Fds {
                stdin,
                stdout,
                stderr,
            } => b.with_stdin(stdin).with_stdout(stdout).with_stderr(stderr),
            Stdio::Console { socket } => b.with_console_socket(Some(socket)),
        })
    }
}

impl Exec for Youki {
    fn exec(&self, id: &str, p: &ExecProcess, stdio: Stdio) -> Result<Pid, RuntimeError> {
        let err = |e: libcontainer::error::LibcontainerError| RuntimeError::Engine {
            id: id.into(),
            message: e.to_string(),
        };
        let sec = &p.security;
        let late = match &sec.seccomp {
            None => None,
            Some(v) => Some(LateSecurity {
                seccomp: serde_json::from_value(v.clone()).map_err(|e| RuntimeError::Engine {
                    id: id.into(),
                    message: format!("the container's seccomp filter: {e}"),
                })?,
                caps: capabilities(&sec.caps).map_err(|message| RuntimeError::Engine {
                    id: id.into(),
                    message,
                })?,
            }),
        };
        // Started with what loading the filter needs; DenExecutor drops it.
        let mut caps: Vec<&str> = sec.caps.iter().map(String::as_str).collect();
        if late.is_some() {
            for extra in ["CAP_SYS_ADMIN", "CAP_SETPCAP"] {
                if !caps.contains(&extra) {
                    caps.push(extra);
                }
            }
        }
        new_session_keyring()?;
        let b = self.builder(id, stdio, !p.detached, late, Some(p.become_user.clone()))?;
        // The whole process goes in as a process.json, as `runc exec --process` takes it: only
        // that way can it ask for a terminal.
        let process = super::spec::process(&super::spec::Process {
            terminal: p.terminal,
            uid: p.uid,
            gid: p.gid,
            additional_gids: &p.additional_gids,
            args: &p.args,
            env: &p.env,
            cwd: &p.cwd.to_string_lossy(),
            caps: &caps,
            no_new_privileges: sec.no_new_privileges,
        });
        let path = self.state_root.join(format!(
            "exec-{}-{}.json",
            std::process::id(),
            &id[..12.min(id.len())]
        ));
        std::fs::write(&path, process.to_string()).map_err(|e| RuntimeError::Io {
            path: path.clone(),
            source: e,
        })?;
        let res = b
            .as_tenant()
            .with_detach(true)
            .with_process(Some(&path))
            .build()
            .map_err(err);
        let _ = std::fs::remove_file(&path);
        res
    }
}

struct YoukiInstance {
    container: Container,
    pid: Pid,
    cgroups: bool,
    state_dir: PathBuf,
    bundle: PathBuf,
}

impl Instance for YoukiInstance {
    fn pid(&self) -> Pid {
        self.pid
    }
    fn start(&mut self) -> Result<(), RuntimeError> {
        self.container.start().map_err(|e| {
            super::hooks::failure(&self.bundle).unwrap_or_else(|| RuntimeError::Engine {
                id: self.container.id().into(),
                message: e.to_string(),
            })
        })
    }
    fn signal(&self, sig: Signal) -> Result<(), RuntimeError> {
        nix::sys::signal::kill(self.pid, sig).map_err(|e| RuntimeError::Io {
            path: format!("/proc/{}", self.pid).into(),
            source: e.into(),
        })
    }
    /// Then the `poststop` hooks, which den runs itself ([`super::hooks`]).
    fn delete(&mut self) -> Result<(), RuntimeError> {
        let res = if !self.cgroups {
            std::fs::remove_dir_all(&self.state_dir).map_err(|e| RuntimeError::Io {
                path: self.state_dir.clone(),
                source: e,
            })
        } else {
            self.container
                .delete(false)
                .map_err(|e| RuntimeError::Engine {
                    id: self.container.id().into(),
                    message: e.to_string(),
                })
        };
        super::hooks::poststop(&self.bundle, self.container.id(), self.pid.as_raw());
        res
    }
}

/// Runs the container's command. It execs like execvp(3) and, when that fails, reports it the
/// way docker does: a message on the container's stderr and status 127 (not found) or 126
/// (cannot be invoked). den checks the command before it creates the container; this covers a
/// command that vanished in between, and keeps libcontainer's own check (which only knows PATH
/// from the host's view) out of the way.
#[derive(Clone)]
pub struct DenExecutor {
    /// Give the process a parent-death signal: it dies with the process that holds it.
    pub die_with_parent: bool,
    /// For an `exec`'d process: the filter to load and the capabilities to keep (see the
    /// module doc). None for a container's init, which libcontainer filters itself.
    late: Option<LateSecurity>,
    /// For an `exec`'d process: how it becomes a keep-id container's user (`Some(None)`: it
    /// does not). None for an init, which reads it from the spec's annotation.
    exec_becomes: Option<Option<super::keepid::Become>>,
}

#[derive(Clone)]
struct LateSecurity {
    seccomp: oci_spec::runtime::LinuxSeccomp,
    caps: oci_spec::runtime::LinuxCapabilities,
}

/// Capabilities by name, as the spec has them.
fn capabilities(names: &[String]) -> Result<oci_spec::runtime::LinuxCapabilities, String> {
    let set: oci_spec::runtime::Capabilities =
        serde_json::from_value(serde_json::json!(names)).map_err(|e| e.to_string())?;
    // Every set given: the builder would fill the others with defaults of its own.
    oci_spec::runtime::LinuxCapabilitiesBuilder::default()
        .bounding(set.clone())
        .effective(set.clone())
        .permitted(set)
        .inheritable(oci_spec::runtime::Capabilities::new())
        .ambient(oci_spec::runtime::Capabilities::new())
        .build()
        .map_err(|e| e.to_string())
}

/// The uid and gid a single-uid keep-id init becomes itself ([`super::keepid`]).
fn become_ids(spec: &oci_spec::runtime::Spec) -> Option<super::keepid::Become> {
    let v = spec
        .annotations()
        .as_ref()?
        .get(super::keepid::BECOME_ANNOTATION)?;
    let (u, g) = v.split_once(':')?;
    Some(super::keepid::Become::Unshare {
        uid: u.parse().ok()?,
        gid: g.parse().ok()?,
    })
}

/// Whether the container's first process is den's init (`--init`).
fn is_init(spec: &oci_spec::runtime::Spec) -> bool {
    spec.annotations()
        .as_ref()
        .and_then(|a| a.get(super::settings::INIT_ANNOTATION))
        .is_some_and(|v| v == "true")
}

/// Join a new session keyring; a kernel without keyrings has nothing to share.
fn new_session_keyring() -> Result<(), RuntimeError> {
    match crate::sys::join_new_session_keyring() {
        Ok(_) => Ok(()),
        Err(e) if e.errno() == Some(libc::ENOSYS) => Ok(()),
        Err(e) => Err(RuntimeError::Keyring(e)),
    }
}

impl Executor for DenExecutor {
    #[allow(
        clippy::print_stderr,
        reason = "this is the container's process: its stderr is the container's, where docker \
                  reports a command that cannot run"
    )]
    fn exec(&self, spec: &oci_spec::runtime::Spec) -> Result<(), ExecutorError> {
        let args = spec
            .process()
            .as_ref()
            .and_then(|p| p.args().as_ref())
            .ok_or(ExecutorError::InvalidArg)?;
        let cargs: Vec<std::ffi::CString> = args
            .iter()
            .map(|a| std::ffi::CString::new(a.as_bytes()))
            .collect::<Result<_, _>>()
            .map_err(|_| ExecutorError::InvalidArg)?;
        let Some(prog) = cargs.first() else {
            return Err(ExecutorError::InvalidArg);
        };
        crate::sys::reset_signals();
        let become_user = match &self.exec_becomes {
            Some(b) => b.clone(),
            None => become_ids(spec),
        };
        if let Some(b) = &become_user {
            // A new or joined user namespace comes with every capability in it: back to the
            // container's own, bounding set included, as libcontainer left them.
            let caps = spec
                .process()
                .as_ref()
                .and_then(|p| p.capabilities().clone());
            let applied = super::keepid::become_user(b)
                .map_err(|e| e.to_string())
                .and_then(|_| {
                    let syscall = libcontainer::syscall::syscall::create_syscall();
                    caps.map_or(Ok(()), |c| {
                        libcontainer::capabilities::drop_privileges(&c, syscall.as_ref())
                            .map_err(|e| e.to_string())
                    })
                });
            if let Err(e) = applied {
                eprintln!("den: exec: cannot become the keep-id user ({b:?}): {e}");
                std::process::exit(crate::error::EXIT_DEN);
            }
        }
        // The container dies with the process that holds it (den's monitor, or den itself in
        // the foreground), so nothing runs unaccounted for.
        if self.die_with_parent {
            let _ = crate::sys::set_parent_death_signal(Signal::SIGKILL);
        }
        if let Some(late) = &self.late {
            let applied = libcontainer::seccomp::initialize_seccomp(&late.seccomp)
                .map_err(|e| format!("cannot load the container's seccomp filter: {e}"))
                .and_then(|_| {
                    let syscall = libcontainer::syscall::syscall::create_syscall();
                    libcontainer::capabilities::drop_privileges(&late.caps, syscall.as_ref())
                        .map_err(|e| format!("cannot drop to the container's capabilities: {e}"))
                });
            if let Err(e) = applied {
                eprintln!("den: exec: {e}");
                std::process::exit(crate::error::EXIT_DEN);
            }
        }
        // A container's init (not an exec'd process) with --init.
        if self.exec_becomes.is_none() && is_init(spec) {
            super::init::become_init();
        }
        let err = crate::sys::execvp(prog, &cargs);
        let code = match err {
            nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR => crate::error::EXIT_NOT_FOUND,
            _ => crate::error::EXIT_CANNOT_INVOKE,
        };
        let what = if code == crate::error::EXIT_NOT_FOUND {
            "executable file not found in $PATH"
        } else {
            err.desc()
        };
        eprintln!("den: exec: {:?}: {what}", args[0]);
        std::process::exit(code);
    }

    /// Runs in the container's init before it waits for `start`: from here on it dies with the
    /// process that holds it, as it does once it runs. Without this, a den killed between
    /// create and start (a build's RUN step, a `run`) leaves an init waiting forever for a start
    /// that never comes.
    fn validate(&self, _spec: &oci_spec::runtime::Spec) -> Result<(), ExecutorValidationError> {
        if self.die_with_parent {
            let _ = crate::sys::set_parent_death_signal(Signal::SIGKILL);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    /// The v1 cgroup manager libcontainer makes on every start comes from the vendored libcgroups
    /// (vendor/README.md), which finds every controller in one read of mountinfo where it looked
    /// each one up on its own. What it finds must be what that lookup finds: the devices
    /// controller, where this host mounts one, at this process's own cgroup (which lists this
    /// process); where there is none, no devices controller at all.
    #[test]
    fn the_v1_cgroup_manager_finds_the_controllers_a_lookup_of_each_finds() {
        use libcgroups::common::CgroupManager;
        use libcgroups::v1::{ControllerType, util};
        let manager = libcgroups::v1::Manager::new(std::path::Path::new("")).unwrap();
        let pids = manager.get_all_pids();
        match util::get_subsystem_mount_point(&ControllerType::Devices) {
            Ok(_) => assert!(pids.unwrap().contains(&nix::unistd::Pid::this())),
            Err(_) => assert!(pids.is_err()),
        }
    }
}
