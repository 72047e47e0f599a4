//! `--init`: den's own init as the container's PID 1. It reaps zombies (a PID 1 that does not
//! wait for the orphans the kernel gives it fills the process table) and forwards the signals
//! it receives to the command, then exits with the command's status (128+N when a signal N
//! ended it), as docker's `docker-init` (tini) does.
//!
//! Built in rather than a binary bound into the container: den's binaries are dynamically
//! linked against the host's C library, which an image (musl, another glibc) may not have, and
//! catatonit or tini may not be installed. The container's first process already runs den's
//! code until it execs the command ([`super::engine`]'s `DenExecutor`); with `--init` it forks
//! there: the child execs the command, the parent stays PID 1 and runs [`become_init`]'s loop.
//! Signals are blocked before the fork and waited for with sigwait(2): a PID 1 ignores a
//! signal with the default action, but never one it has blocked and waits for.

use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// Fork; in the child return (to exec the command); in the parent be the init until the
/// command exits, then exit with its status.
pub fn become_init() {
    let all = SigSet::all();
    let old = crate::sys::block_signals(&all);
    match crate::sys::fork() {
        Ok(crate::sys::Forked::Child) => crate::sys::set_signal_mask(&old),
        Ok(crate::sys::Forked::Parent(child)) => std::process::exit(supervise(child, &all)),
        // No init then: the command runs as PID 1 itself, as without --init.
        Err(_) => crate::sys::set_signal_mask(&old),
    }
}

/// Wait for signals: reap on SIGCHLD, forward the others to `child`; its exit status.
fn supervise(child: Pid, set: &SigSet) -> i32 {
    loop {
        let Ok(sig) = set.wait() else {
            continue;
        };
        if sig != Signal::SIGCHLD {
            let _ = nix::sys::signal::kill(child, sig);
            continue;
        }
        if let Some(code) = reap(child) {
            return code;
        }
    }
}

/// Reap every child that has exited; the command's status once it has.
fn reap(child: Pid) -> Option<i32> {
    let mut status = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == child => status = Some(code),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == child => {
                status = Some(128 + sig as i32)
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return status,
            Ok(_) => {}
        }
    }
}
