//! Descriptors: opening inside a root, flags, pipes, sockets.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Mutex;

/// `openat(2)` relative to `dir` (the working directory when `None`), close-on-exec, as a
/// `File` that owns the new descriptor. The `*at` calls with `O_NOFOLLOW` are how den writes
/// and reads inside an image's root without a path the image could redirect.
pub fn open_at<P: ?Sized + nix::NixPath>(
    dir: Option<BorrowedFd<'_>>,
    path: &P,
    flags: nix::fcntl::OFlag,
    mode: nix::sys::stat::Mode,
) -> std::io::Result<std::fs::File> {
    let fd = nix::fcntl::openat(
        dir.map(|d| d.as_raw_fd()),
        path,
        flags | nix::fcntl::OFlag::O_CLOEXEC,
        mode,
    )?;
    // SAFETY: openat just returned this descriptor; nothing else owns or closes it.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

/// Make a descriptor non-blocking.
pub fn set_nonblocking(fd: BorrowedFd<'_>) {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    if let Ok(flags) = fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL) {
        let _ = fcntl(
            fd.as_raw_fd(),
            FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
        );
    }
}

/// Close `fd` when this process execs (FD_CLOEXEC).
pub fn set_cloexec(fd: BorrowedFd<'_>) {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    let _ = fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
}

/// Keep `fd` open when this process execs (clear FD_CLOEXEC): a lock handed to the program
/// this process becomes.
pub fn keep_across_exec(fd: BorrowedFd<'_>) {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    let _ = fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::empty()));
}

/// The descriptors [`take_inherited_fd`] has handed out.
static TAKEN: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());

/// Take ownership of a descriptor this process inherited from the one that started it, whose
/// number that process put in the environment variable `var` (den's monitor's readiness pipe,
/// den-net's control socket). `None` when the variable is unset or not a number above 2, when
/// no such descriptor is open, or when it was taken before.
pub fn take_inherited_fd(var: &str) -> Option<OwnedFd> {
    let fd: RawFd = std::env::var(var).ok()?.parse().ok().filter(|fd| *fd > 2)?;
    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).ok()?;
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    if taken.contains(&fd) {
        return None;
    }
    taken.push(fd);
    // SAFETY: the descriptor is open (F_GETFD just succeeded) and was passed across exec for
    // this process to own; nothing else in den adopts a descriptor by number, and this function
    // hands each number out once (TAKEN), so no other owner will close it.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Receive one descriptor sent over `sock` with SCM_RIGHTS (the pty master a container's init
/// sends to the console socket). `None` when the message carried none; any further
/// descriptors in it are closed.
pub fn recv_fd(sock: &UnixStream) -> std::io::Result<Option<OwnedFd>> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let mut buf = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )?;
    let mut received = Vec::new();
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the kernel just installed these descriptors in our table for us
            // (SCM_RIGHTS); nothing else knows their numbers, so each gets one owner here.
            received.extend(
                fds.into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    Ok(received.into_iter().next())
}

/// Resize a pipe (F_SETPIPE_SZ); returns the new capacity, or None when the kernel refuses
/// (the per-user pipe budget is spent): the pipe keeps its size.
pub fn set_pipe_size(pipe: BorrowedFd<'_>, size: usize) -> Option<usize> {
    // SAFETY: F_SETPIPE_SZ takes an integer and returns the new size or -1.
    let n = unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, size as libc::c_int) };
    (n > 0).then_some(n as usize)
}
