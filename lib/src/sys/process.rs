//! Processes: fork, exec, the environment, what a child does between fork and exec, prctl.
//!
//! Three of these are unsafe in `std` or `nix` only because of other threads: `fork` (locks
//! other threads hold stay locked in the child), `set_var` (C's `getenv` in another thread
//! reads the environment without a lock) and a `pre_exec` hook (it runs in the forked child of
//! a threaded process). den makes the first two only while it is single-threaded, before it
//! starts an async runtime or a thread pool; [`fork`] and [`set_env`] check that, and refuse
//! rather than assume it.

use std::ffi::{CStr, CString, OsStr};
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;

use nix::errno::Errno;
use nix::sys::signal::Signal;

use super::{Result, SysError};

/// The result of [`fork`].
pub enum Forked {
    Parent(nix::unistd::Pid),
    Child,
}

/// fork(2), for a single-threaded process: refuses, without forking, when other threads run.
pub fn fork() -> Result<Forked> {
    only_thread("fork")?;
    // SAFETY: this process has one thread (checked just above; only this thread could start
    // another, and it is here). The child is then a copy of a process in which no other thread
    // held a lock, so it may do whatever the parent could.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { child }) => Ok(Forked::Parent(child)),
        Ok(nix::unistd::ForkResult::Child) => Ok(Forked::Child),
        Err(e) => Err(SysError::new("fork", e)),
    }
}

/// Set an environment variable of this process, for the programs it starts or becomes.
/// Refuses when other threads run (see the module doc).
pub fn set_env(key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Result<()> {
    let key = key.as_ref();
    only_thread(&format!("set {}", key.to_string_lossy()))?;
    // SAFETY: this process has one thread (checked just above), so no other thread reads the
    // environment while it changes.
    unsafe { std::env::set_var(key, value) };
    Ok(())
}

/// How many threads this process has (from /proc/self/status), to assert the
/// single-threaded precondition of user namespace creation.
pub fn thread_count() -> usize {
    threads().unwrap_or(1)
}

fn threads() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Fail `call` unless this process has exactly one thread (an unreadable count counts as many).
fn only_thread(call: &str) -> Result<()> {
    match threads() {
        Some(1) => Ok(()),
        n => Err(SysError::io(
            call,
            std::io::Error::other(match n {
                Some(n) => format!("{n} threads are running; den must be single-threaded here"),
                None => "cannot count this process's threads (/proc/self/status)".into(),
            }),
        )),
    }
}

/// Replace this process with `path`, keeping the environment and adding `env` to it.
pub fn exec<K, V>(path: &Path, args: &[std::ffi::OsString], env: &[(K, V)]) -> SysError
where
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let mut cmd = std::process::Command::new(path);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let err = cmd.exec();
    SysError::io(format!("exec {}", path.display()), err)
}

/// execvp(3): replace this process with `prog` (looked up on PATH), as the container's init
/// does at its end. Returns only on failure, with the error.
pub fn execvp(prog: &CStr, args: &[CString]) -> Errno {
    match nix::unistd::execvp(prog, args) {
        Err(e) => e,
        Ok(never) => match never {},
    }
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

/// Set this process's dumpable flag (PR_SET_DUMPABLE): whether its /proc files are its own.
pub fn set_dumpable(on: bool) -> Result<()> {
    // SAFETY: PR_SET_DUMPABLE takes an integer and touches no memory of ours.
    let r = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, libc::c_ulong::from(on), 0, 0, 0) };
    if r != 0 {
        return Err(SysError::io(
            "prctl(PR_SET_DUMPABLE)",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// The signal this process gets when its parent dies (PR_GET_PDEATHSIG), if any: changing
/// credentials clears it, so a caller that does restores it afterwards.
pub fn parent_death_signal() -> Option<Signal> {
    let mut sig: libc::c_int = 0;
    // SAFETY: PR_GET_PDEATHSIG writes one int through the pointer, which points at `sig`.
    let r = unsafe {
        libc::prctl(
            libc::PR_GET_PDEATHSIG,
            &mut sig as *mut libc::c_int,
            0,
            0,
            0,
        )
    };
    if r != 0 || sig == 0 {
        return None;
    }
    Signal::try_from(sig).ok()
}

/// Deliver `sig` to this process when its parent dies.
pub fn set_parent_death_signal(sig: Signal) -> Result<()> {
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

/// Set up `cmd` so the child keeps the descriptors `fds` across exec (slirp4netns's readiness
/// pipe, its exit pipe, the network namespace it serves).
pub fn keep_fds(cmd: &mut std::process::Command, fds: [Option<RawFd>; 3]) {
    before_exec(
        cmd,
        ChildSetup {
            new_session: false,
            keep_fds: fds,
            death_signal: None,
            new_user_ns: false,
            close_others: false,
        },
    );
}

/// Set up `cmd` so the child is killed when the thread that started it dies (a FUSE server
/// den runs for a container's image must not outlive den, even when den is killed).
pub fn die_with_parent(cmd: &mut std::process::Command) {
    before_exec(
        cmd,
        ChildSetup {
            new_session: false,
            keep_fds: [None, None, None],
            death_signal: Some(Signal::SIGKILL),
            new_user_ns: false,
            close_others: false,
        },
    );
}

/// Set up `cmd` so the child starts a session of its own (setsid: no controlling terminal, out
/// of den's process group, so a terminal's signals miss it) and keeps descriptor `fd` across
/// exec.
pub fn new_session_keeping_fd(cmd: &mut std::process::Command, fd: RawFd) {
    before_exec(
        cmd,
        ChildSetup {
            new_session: true,
            keep_fds: [Some(fd), None, None],
            death_signal: None,
            new_user_ns: false,
            close_others: false,
        },
    );
}

/// Set up `cmd` so the child starts a session of its own and keeps none of this process's
/// descriptors but its standard ones: a process meant to outlive den (the user namespace's
/// keeper), which must hold no pipe or terminal of the caller's open (a shell's `$(den ...)`
/// waits for every writer of its pipe to close it).
pub fn new_session_alone(cmd: &mut std::process::Command) {
    before_exec(
        cmd,
        ChildSetup {
            new_session: true,
            keep_fds: [None, None, None],
            death_signal: None,
            new_user_ns: false,
            close_others: true,
        },
    );
}

/// Set up `cmd` so the child unshares a new user namespace before it execs (its id maps are
/// the caller's to write) and is killed when the process that started it dies.
pub fn new_user_ns_dying_with_parent(cmd: &mut std::process::Command) {
    before_exec(
        cmd,
        ChildSetup {
            new_session: false,
            keep_fds: [None, None, None],
            death_signal: Some(Signal::SIGKILL),
            new_user_ns: true,
            close_others: false,
        },
    );
}

/// What a child does between fork and exec, in this order.
struct ChildSetup {
    new_session: bool,
    keep_fds: [Option<RawFd>; 3],
    death_signal: Option<Signal>,
    new_user_ns: bool,
    /// Mark every descriptor above 2 close-on-exec (close_range(2) with CLOSE_RANGE_CLOEXEC,
    /// Linux 5.11; on an older kernel they stay as they are): closed by the exec, while the
    /// pipe that reports a failed exec to the parent keeps working until then.
    close_others: bool,
}

fn before_exec(cmd: &mut std::process::Command, setup: ChildSetup) {
    let hook = move || {
        let check = |r: libc::c_int| {
            if r < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(())
            }
        };
        // SAFETY: setsid, fcntl(F_SETFD), prctl(PR_SET_PDEATHSIG), unshare and close_range take
        // integers, touch no memory of ours and are async-signal-safe, which is all a forked
        // child of a threaded process may call before it execs (the child itself has one
        // thread, so it may unshare a user namespace).
        unsafe {
            if setup.new_session {
                check(libc::setsid())?;
            }
            for fd in setup.keep_fds.into_iter().flatten() {
                check(libc::fcntl(fd, libc::F_SETFD, 0))?;
            }
            if let Some(sig) = setup.death_signal {
                check(libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    sig as libc::c_ulong,
                    0,
                    0,
                    0,
                ))?;
            }
            if setup.new_user_ns {
                check(libc::unshare(libc::CLONE_NEWUSER))?;
            }
            if setup.close_others {
                const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
                let _ = libc::syscall(
                    libc::SYS_close_range,
                    3 as libc::c_uint,
                    libc::c_uint::MAX,
                    CLOSE_RANGE_CLOEXEC,
                );
            }
        }
        Ok(())
    };
    // SAFETY: the hook only makes the async-signal-safe calls above and allocates nothing
    // (its captures are plain integers and `check` builds an io::Error from an errno).
    unsafe {
        cmd.pre_exec(hook);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_count_sees_this_test_thread() {
        assert!(thread_count() >= 1);
    }

    #[test]
    fn fork_and_set_env_refuse_while_other_threads_run() {
        // The test harness runs this test on a thread of its own, and this one waits too.
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || rx.recv());
        let err = set_env("DEN_TEST_SET_ENV_REFUSED", "1").unwrap_err();
        assert!(
            err.source.to_string().contains("threads are running"),
            "{err:?}"
        );
        assert!(std::env::var_os("DEN_TEST_SET_ENV_REFUSED").is_none());
        assert!(fork().is_err());
        drop(tx);
        let _ = other.join();
    }
}
