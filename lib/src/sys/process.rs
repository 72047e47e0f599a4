//! Processes: fork, exec, the environment, namespaces joined by pid, signals, prctl.

use std::path::Path;

use super::{Result, SysError};

/// The result of [`fork`].
pub enum Forked {
    Parent(nix::unistd::Pid),
    Child,
}

/// fork(2).
///
/// # Safety
/// The caller must be single-threaded, or the child must only make async-signal-safe calls
/// until it execs: after fork only the calling thread exists, and locks held by other threads
/// (the allocator's among them) stay locked forever in the child.
pub unsafe fn fork() -> Result<Forked> {
    // SAFETY: the contract is passed on to our caller, see above.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { child }) => Ok(Forked::Parent(child)),
        Ok(nix::unistd::ForkResult::Child) => Ok(Forked::Child),
        Err(e) => Err(SysError::new("fork", e)),
    }
}

/// How many threads this process has (from /proc/self/status), to assert the
/// single-threaded precondition of user namespace creation.
pub fn thread_count() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("Threads:")
                    .map(|v| v.trim().parse().unwrap_or(1))
            })
        })
        .unwrap_or(1)
}

/// Replace this process with `path`, keeping the environment.
pub fn exec(path: &Path, args: &[std::ffi::OsString]) -> SysError {
    use std::os::unix::process::CommandExt;
    let err = std::process::Command::new(path).args(args).exec();
    SysError::io(format!("exec {}", path.display()), err)
}

/// Ask the kernel to make this process the reaper of its orphaned descendants.
pub fn set_child_subreaper() -> Result<()> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer argument and touches no memory of ours.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if r != 0 {
        return Err(SysError::io(
            "prctl(PR_SET_CHILD_SUBREAPER)",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Deliver `sig` to this process when its parent dies.
pub fn set_parent_death_signal(sig: nix::sys::signal::Signal) -> Result<()> {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number and touches no memory of ours.
    let r = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) };
    if r != 0 {
        return Err(SysError::io(
            "prctl(PR_SET_PDEATHSIG)",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Set up `cmd` so the child keeps descriptor `fd` across exec and is killed when the process
/// that started it dies.
pub fn keep_fd_and_die_with_parent(cmd: &mut std::process::Command, fd: i32) {
    use std::os::unix::process::CommandExt;
    // SAFETY: fcntl and prctl are async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) < 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Join the user and mount namespaces of process `pid` (a container's monitor), as nsenter
/// does. The caller must be single-threaded (setns(2) refuses a user namespace to a threaded
/// process). Afterwards its root and working directory are the namespace's root.
pub fn join_namespaces(pid: i32) -> Result<()> {
    use nix::sched::{CloneFlags, setns};
    let open = |ns: &str| {
        let p = format!("/proc/{pid}/ns/{ns}");
        std::fs::File::open(&p).map_err(|e| SysError::io(format!("open {p}"), e))
    };
    let user = open("user")?;
    let mnt = open("mnt")?;
    setns(&user, CloneFlags::CLONE_NEWUSER).map_err(|e| SysError::new("setns(user)", e))?;
    setns(&mnt, CloneFlags::CLONE_NEWNS).map_err(|e| SysError::new("setns(mnt)", e))?;
    Ok(())
}

/// Move the calling thread into the network namespace `ns` (an open /proc/PID/ns/net).
/// Network namespaces are per thread: sockets this thread creates afterwards live there.
pub fn join_netns(ns: &std::fs::File) -> Result<()> {
    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| SysError::new("setns(net)", e))
}

/// Give this process (and every process it starts afterwards) a new, empty, anonymous session
/// keyring, as `keyctl new_session` does. Returns its serial.
///
/// The kernel's keyrings are not namespaced: without this a container inherits the user's
/// session keyring, and with it the Kerberos or AFS tickets kept in `KEYRING:` caches. runc
/// and crun do the same in the container's init; den does it in the process that creates the
/// container, because libcontainer loads the seccomp filter (which refuses keyctl) before
/// den's code runs in the init. The old keyring stays with the processes that hold it.
pub fn join_new_session_keyring() -> Result<i32> {
    // <linux/keyctl.h>
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: KEYCTL_JOIN_SESSION_KEYRING with a null name reads no memory of ours; it only
    // replaces the calling thread's session keyring.
    let r = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            std::ptr::null::<libc::c_char>(),
        )
    };
    if r < 0 {
        return Err(SysError::io(
            "keyctl(KEYCTL_JOIN_SESSION_KEYRING)",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(r as i32)
}

/// Give this process a clean signal state: every signal unblocked and at its default action.
/// Signal masks and ignored signals survive fork and exec; a container's command must not
/// inherit den's (den blocks the signals it proxies; Rust ignores SIGPIPE).
pub fn reset_signals() {
    for sig in nix::sys::signal::Signal::iterator() {
        if matches!(
            sig,
            nix::sys::signal::Signal::SIGKILL | nix::sys::signal::Signal::SIGSTOP
        ) {
            continue;
        }
        // SAFETY: installing SIG_DFL runs no code of ours in signal context.
        unsafe {
            let _ = nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigDfl);
        }
    }
    let _ = nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_count_sees_this_test_thread() {
        assert!(thread_count() >= 1);
    }
}
