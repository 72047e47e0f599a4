//! Namespaces and keyrings joined after start-up: a running container's (`exec`), a
//! container's network namespace (den-net), a fresh session keyring.

use super::{Result, SysError};

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

/// Move the calling process (single-threaded) into the user namespace `ns` (an open
/// /proc/PID/ns/user): a keep-id container's, for a process `exec` adds to it.
pub fn join_userns(ns: &std::fs::File) -> Result<()> {
    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWUSER)
        .map_err(|e| SysError::new("setns(user)", e))
}

/// A new, empty network namespace, owned by this process's user namespace, which no process
/// of ours is in: a short-lived thread unshares it and hands back its descriptor (network
/// namespaces are per thread), so the caller's own namespace never changes. A container's is
/// made this way so that its userspace stack can start while the container is being created.
pub fn new_netns() -> Result<std::fs::File> {
    std::thread::Builder::new()
        .name("den-netns".into())
        .stack_size(64 * 1024)
        .spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| SysError::new("unshare(net)", e))?;
            std::fs::File::open("/proc/thread-self/ns/net")
                .map_err(|e| SysError::io("open /proc/thread-self/ns/net", e))
        })
        .map_err(|e| SysError::io("thread", e))?
        .join()
        .unwrap_or_else(|_| Err(SysError::io("thread", std::io::Error::other("panicked"))))
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
