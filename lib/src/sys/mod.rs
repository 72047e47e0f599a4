//! The kernel seam: the only module with raw syscalls and `unsafe`.
//!
//! Namespace, mount and identity calls go through the [`Sys`] trait so that plans (the rootfs plan,
//! the user namespace set-up) can be applied to [`RecordingSys`] in unit tests and read back as typed
//! [`Call`]s, without root. [`LinuxSys`] is the real implementation. Everything else here is a small
//! safe wrapper around one `unsafe` call, each with the reason it holds.
//!
//! Plain file operations (open, read, mkdir in the store) use `std` and `nix` directly; they need
//! no fake because unit tests run them in a temporary directory.

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

use crate::error::Diagnose;

/// A failed system call, with what it was asked to do.
#[derive(Debug, thiserror::Error)]
#[error("{call} failed")]
pub struct SysError {
    /// The call and its main argument, e.g. `mount overlay on /x`.
    pub call: String,
    #[source]
    pub source: std::io::Error,
}

impl SysError {
    pub fn new(call: impl Into<String>, errno: nix::errno::Errno) -> Self {
        SysError {
            call: call.into(),
            source: std::io::Error::from_raw_os_error(errno as i32),
        }
    }
    pub fn io(call: impl Into<String>, source: std::io::Error) -> Self {
        SysError {
            call: call.into(),
            source,
        }
    }
    /// The errno behind this error, when there is one.
    pub fn errno(&self) -> Option<i32> {
        self.source.raw_os_error()
    }
}

impl Diagnose for SysError {}

impl From<SysError> for std::io::Error {
    fn from(e: SysError) -> std::io::Error {
        std::io::Error::new(e.source.kind(), e)
    }
}

pub type Result<T> = std::result::Result<T, SysError>;

/// One mount(2) call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub source: Option<PathBuf>,
    pub target: PathBuf,
    pub fstype: Option<String>,
    pub flags: MsFlags,
    pub data: Option<String>,
}

impl Mount {
    /// A recursive bind mount of `source` on `target`.
    pub fn rbind(source: impl Into<PathBuf>, target: impl Into<PathBuf>) -> Self {
        Mount {
            source: Some(source.into()),
            target: target.into(),
            fstype: None,
            flags: MsFlags::MS_BIND | MsFlags::MS_REC,
            data: None,
        }
    }
    /// A fresh tmpfs on `target` with the given options.
    pub fn tmpfs(target: impl Into<PathBuf>, flags: MsFlags, data: &str) -> Self {
        Mount {
            source: Some("tmpfs".into()),
            target: target.into(),
            fstype: Some("tmpfs".into()),
            flags,
            data: Some(data.into()),
        }
    }
    /// Make the mount at `target` and everything below it private (no propagation either way).
    pub fn make_rprivate(target: impl Into<PathBuf>) -> Self {
        Mount {
            source: None,
            target: target.into(),
            fstype: None,
            flags: MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            data: None,
        }
    }
}

/// A call made through [`Sys`], as [`RecordingSys`] records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Unshare(CloneFlags),
    Mount(Mount),
    Umount { target: PathBuf, detach: bool },
    PivotRoot { new_root: PathBuf, put_old: PathBuf },
    ReadonlyRecursive(PathBuf),
    Chdir(PathBuf),
    Mkdir(PathBuf),
    Rmdir(PathBuf),
    Symlink { target: PathBuf, link: PathBuf },
    BecomeRoot,
}

/// The namespace, mount and identity calls den makes.
pub trait Sys {
    fn unshare(&self, flags: CloneFlags) -> Result<()>;
    fn mount(&self, m: &Mount) -> Result<()>;
    fn umount(&self, target: &Path, detach: bool) -> Result<()>;
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<()>;
    /// Make `path` and every mount below it read-only (mount_setattr with AT_RECURSIVE).
    fn readonly_recursive(&self, path: &Path) -> Result<()>;
    fn chdir(&self, path: &Path) -> Result<()>;
    fn mkdir(&self, path: &Path) -> Result<()>;
    fn rmdir(&self, path: &Path) -> Result<()>;
    fn symlink(&self, target: &Path, link: &Path) -> Result<()>;
    /// setresgid(0,0,0) and setresuid(0,0,0) inside a fresh user namespace.
    fn become_root(&self) -> Result<()>;
}

/// The real kernel.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxSys;

fn describe(m: &Mount) -> String {
    match (&m.fstype, &m.source) {
        (Some(t), _) => format!("mount {t} on {}", m.target.display()),
        (None, Some(s)) if m.flags.contains(MsFlags::MS_BIND) => {
            format!("bind mount {} on {}", s.display(), m.target.display())
        }
        _ => format!("mount change of {}", m.target.display()),
    }
}

impl Sys for LinuxSys {
    fn unshare(&self, flags: CloneFlags) -> Result<()> {
        nix::sched::unshare(flags).map_err(|e| SysError::new(format!("unshare({flags:?})"), e))
    }

    fn mount(&self, m: &Mount) -> Result<()> {
        nix::mount::mount(
            m.source.as_deref(),
            &m.target,
            m.fstype.as_deref(),
            m.flags,
            m.data.as_deref(),
        )
        .map_err(|e| SysError::new(describe(m), e))
    }

    fn umount(&self, target: &Path, detach: bool) -> Result<()> {
        let flags = if detach {
            MntFlags::MNT_DETACH
        } else {
            MntFlags::empty()
        };
        nix::mount::umount2(target, flags)
            .map_err(|e| SysError::new(format!("umount {}", target.display()), e))
    }

    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<()> {
        nix::unistd::pivot_root(new_root, put_old)
            .map_err(|e| SysError::new(format!("pivot_root to {}", new_root.display()), e))
    }

    fn readonly_recursive(&self, path: &Path) -> Result<()> {
        // struct mount_attr from <linux/mount.h>; libc does not export it on every target.
        #[repr(C)]
        struct MountAttr {
            attr_set: u64,
            attr_clr: u64,
            propagation: u64,
            userns_fd: u64,
        }
        const MOUNT_ATTR_RDONLY: u64 = 0x1;
        const AT_RECURSIVE: libc::c_uint = 0x8000;
        let attr = MountAttr {
            attr_set: MOUNT_ATTR_RDONLY,
            attr_clr: 0,
            propagation: 0,
            userns_fd: 0,
        };
        let c = cstring(path)?;
        // SAFETY: `c` is a valid NUL-terminated path and `attr` a properly sized, initialised
        // struct mount_attr that outlives the call; the kernel only reads both.
        let r = unsafe {
            libc::syscall(
                libc::SYS_mount_setattr,
                libc::AT_FDCWD,
                c.as_ptr(),
                AT_RECURSIVE,
                &attr as *const MountAttr,
                std::mem::size_of::<MountAttr>(),
            )
        };
        if r != 0 {
            return Err(SysError::io(
                format!("mount_setattr(read-only, recursive) on {}", path.display()),
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    fn chdir(&self, path: &Path) -> Result<()> {
        nix::unistd::chdir(path).map_err(|e| SysError::new(format!("chdir {}", path.display()), e))
    }

    fn mkdir(&self, path: &Path) -> Result<()> {
        match std::fs::create_dir(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(SysError::io(format!("mkdir {}", path.display()), e)),
        }
    }

    fn rmdir(&self, path: &Path) -> Result<()> {
        std::fs::remove_dir(path).map_err(|e| SysError::io(format!("rmdir {}", path.display()), e))
    }

    fn symlink(&self, target: &Path, link: &Path) -> Result<()> {
        std::os::unix::fs::symlink(target, link)
            .map_err(|e| SysError::io(format!("symlink {}", link.display()), e))
    }

    fn become_root(&self) -> Result<()> {
        let root_g = nix::unistd::Gid::from_raw(0);
        let root_u = nix::unistd::Uid::from_raw(0);
        nix::unistd::setresgid(root_g, root_g, root_g)
            .map_err(|e| SysError::new("setresgid(0)", e))?;
        nix::unistd::setresuid(root_u, root_u, root_u).map_err(|e| SysError::new("setresuid(0)", e))
    }
}

/// A fake kernel that records every call and fails the ones it is told to.
#[derive(Debug, Default)]
pub struct RecordingSys {
    calls: Mutex<Vec<Call>>,
    failures: Mutex<Vec<(Call, nix::errno::Errno)>>,
}

impl RecordingSys {
    pub fn new() -> Self {
        Self::default()
    }
    /// Make the first call equal to `call` fail with `errno` (once).
    pub fn fail_on(&self, call: Call, errno: nix::errno::Errno) {
        self.failures.lock().expect("fake lock").push((call, errno));
    }
    /// Every call made so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("fake lock").clone()
    }
    fn record(&self, call: Call) -> Result<()> {
        self.calls.lock().expect("fake lock").push(call.clone());
        let mut failures = self.failures.lock().expect("fake lock");
        if let Some(i) = failures.iter().position(|(c, _)| *c == call) {
            let (_, errno) = failures.remove(i);
            return Err(SysError::new(format!("{call:?}"), errno));
        }
        Ok(())
    }
}

impl Sys for RecordingSys {
    fn unshare(&self, flags: CloneFlags) -> Result<()> {
        self.record(Call::Unshare(flags))
    }
    fn mount(&self, m: &Mount) -> Result<()> {
        self.record(Call::Mount(m.clone()))
    }
    fn umount(&self, target: &Path, detach: bool) -> Result<()> {
        self.record(Call::Umount {
            target: target.into(),
            detach,
        })
    }
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<()> {
        self.record(Call::PivotRoot {
            new_root: new_root.into(),
            put_old: put_old.into(),
        })
    }
    fn readonly_recursive(&self, path: &Path) -> Result<()> {
        self.record(Call::ReadonlyRecursive(path.into()))
    }
    fn chdir(&self, path: &Path) -> Result<()> {
        self.record(Call::Chdir(path.into()))
    }
    fn mkdir(&self, path: &Path) -> Result<()> {
        self.record(Call::Mkdir(path.into()))
    }
    fn rmdir(&self, path: &Path) -> Result<()> {
        self.record(Call::Rmdir(path.into()))
    }
    fn symlink(&self, target: &Path, link: &Path) -> Result<()> {
        self.record(Call::Symlink {
            target: target.into(),
            link: link.into(),
        })
    }
    fn become_root(&self) -> Result<()> {
        self.record(Call::BecomeRoot)
    }
}

fn cstring(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        SysError::io(
            format!("path {}", path.display()),
            std::io::Error::other("contains a NUL byte"),
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Process calls that are not part of any plan.

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

/// Drop this process's resident copies of read-only file pages (program code and constants it
/// has run or read so far), for a long-lived process whose remaining work touches little of
/// them: the kernel maps a page again from the page cache when it is next used. Mappings that
/// hold private (anonymous) pages, such as relocated read-only data, are left alone: dropping
/// those would lose their contents. Returns the bytes released from the mappings.
pub fn release_file_pages() -> u64 {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return 0;
    };
    let mut released = 0u64;
    let mut current: Option<(usize, usize, bool)> = None;
    let flush = |m: Option<(usize, usize, bool)>, anon_kb: u64, released: &mut u64| {
        if let Some((start, end, eligible)) = m
            && eligible
            && anon_kb == 0
        {
            // SAFETY: the range is a whole mapping of this process, read-only and backed by a
            // file with no private pages: discarding its pages only makes the next access fault
            // them in again from the file, unchanged.
            let r = unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED)
            };
            if r == 0 {
                *released += (end - start) as u64;
            }
        }
    };
    let mut anon_kb = 0u64;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-')
            && let (Ok(start), Ok(end)) =
                (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        {
            flush(current.take(), anon_kb, &mut released);
            let mut f = line.split_whitespace();
            let perms = f.nth(1).unwrap_or("");
            let path = f.nth(3).unwrap_or("");
            let eligible = !perms.contains('w') && path.starts_with('/');
            current = Some((start, end, eligible));
            anon_kb = 0;
        } else if let Some(v) = line.strip_prefix("Anonymous:") {
            anon_kb = v.trim().trim_end_matches("kB").trim().parse().unwrap_or(1);
        }
    }
    flush(current.take(), anon_kb, &mut released);
    released
}

/// Move the calling thread into the network namespace `ns` (an open /proc/PID/ns/net).
/// Network namespaces are per thread: sockets this thread creates afterwards live there.
pub fn join_netns(ns: &std::fs::File) -> Result<()> {
    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| SysError::new("setns(net)", e))
}

/// One splice(2) call between a stream and a pipe, without blocking on the pipe (the socket
/// side should be non-blocking too). Returns the bytes moved; 0 means `from` reached its end.
pub fn splice(from: BorrowedFd<'_>, to: BorrowedFd<'_>, len: usize) -> std::io::Result<usize> {
    loop {
        // SAFETY: splice(2) on descriptors the caller holds, with null offsets (streams and
        // pipes have none).
        let n = unsafe {
            libc::splice(
                from.as_raw_fd(),
                std::ptr::null_mut(),
                to.as_raw_fd(),
                std::ptr::null_mut(),
                len,
                libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Accept a connection as a non-blocking, close-on-exec socket in one call (accept4(2)).
pub fn accept_nonblocking(l: &std::net::TcpListener) -> std::io::Result<std::net::TcpStream> {
    use nix::sys::socket::{SockFlag, accept4};
    let fd = accept4(
        l.as_raw_fd(),
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
    )?;
    // SAFETY: accept4 returned a new descriptor that nothing else owns.
    Ok(std::net::TcpStream::from(unsafe {
        <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd)
    }))
}

/// Resize a pipe (F_SETPIPE_SZ); returns the new capacity, or None when the kernel refuses
/// (the per-user pipe budget is spent): the pipe keeps its size.
pub fn set_pipe_size(pipe: BorrowedFd<'_>, size: usize) -> Option<usize> {
    // SAFETY: F_SETPIPE_SZ takes an integer and returns the new size or -1.
    let n = unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, size as libc::c_int) };
    (n > 0).then_some(n as usize)
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

/// Raise this process's soft limit on open descriptors (RLIMIT_NOFILE) to its hard limit and
/// return the limit now in force. The soft limit is 1024 by default for select(2)'s sake; a
/// process that polls with epoll, as den-net does, has no reason to keep it (Go's runtime, and so
/// podman's rootlessport, raises it the same way). The hard limit is the administrator's and is
/// not touched. When the call is refused the soft limit stays and is returned.
pub fn raise_nofile_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1024;
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit reads the struct we pass; raising the soft limit up to the hard one
        // needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        }
    }
    lim.rlim_cur
}

/// Return free heap memory to the kernel (glibc's malloc_trim).
pub fn trim_heap() -> bool {
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// `openat(2)` relative to `dir` (the working directory when `None`), close-on-exec, as a
/// `File` that owns the new descriptor. The `*at` calls with `O_NOFOLLOW` are how den writes
/// and reads inside an image's root without a path the image could redirect.
pub fn open_at<P: ?Sized + nix::NixPath>(
    dir: Option<BorrowedFd<'_>>,
    path: &P,
    flags: nix::fcntl::OFlag,
    mode: nix::sys::stat::Mode,
) -> std::io::Result<std::fs::File> {
    use std::os::fd::FromRawFd;
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

/// A terminal's size in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WinSize {
    pub rows: u16,
    pub cols: u16,
}

/// The size of the terminal on `fd`, if it is one.
pub fn get_winsize(fd: BorrowedFd<'_>) -> Option<WinSize> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one struct winsize into `ws`, which is valid and writable.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_row > 0).then_some(WinSize {
        rows: ws.ws_row,
        cols: ws.ws_col,
    })
}

/// Set the size of the terminal on `fd` (the container's pty master).
pub fn set_winsize(fd: BorrowedFd<'_>, size: WinSize) -> Result<()> {
    let ws = libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one struct winsize from `ws`, which is valid for the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if r != 0 {
        return Err(SysError::io(
            "ioctl(TIOCSWINSZ)",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Set an extended attribute on `path` itself (not what a symlink points to).
pub fn lsetxattr(path: &Path, name: &str, value: &[u8]) -> Result<()> {
    let p = cstring(path)?;
    let n = CString::new(name)
        .map_err(|_| SysError::io("xattr name", std::io::Error::other("NUL byte")))?;
    // SAFETY: both strings are NUL-terminated and live across the call; `value` is a valid
    // slice whose pointer and length are passed together; the kernel only reads them.
    let r = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r != 0 {
        return Err(SysError::io(
            format!("setxattr {name} on {}", path.display()),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Read an extended attribute of `path` itself; `None` when it is not set.
pub fn lgetxattr(path: &Path, name: &str) -> Result<Option<Vec<u8>>> {
    let p = cstring(path)?;
    let n = CString::new(name)
        .map_err(|_| SysError::io("xattr name", std::io::Error::other("NUL byte")))?;
    let mut buf = vec![0u8; 256];
    // SAFETY: strings as above; `buf` is writable for `buf.len()` bytes and the kernel writes
    // at most that many.
    let r = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ENODATA) {
            return Ok(None);
        }
        return Err(SysError::io(
            format!("getxattr {name} on {}", path.display()),
            e,
        ));
    }
    buf.truncate(r as usize);
    Ok(Some(buf))
}

/// The extended attribute `name` of the open file `fd`, `None` when it has none (`fgetxattr`:
/// the file itself, whatever its path has become since it was opened).
pub fn fgetxattr(fd: BorrowedFd<'_>, name: &str) -> std::io::Result<Option<Vec<u8>>> {
    let n = CString::new(name).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut buf = vec![0u8; 256];
    // SAFETY: `fd` is a live descriptor borrowed for the call; `n` is NUL-terminated; `buf` is
    // writable for `buf.len()` bytes and the kernel writes at most that many.
    let r = unsafe {
        libc::fgetxattr(
            fd.as_raw_fd(),
            n.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENODATA) | Some(libc::ENOTSUP) => Ok(None),
            _ => Err(e),
        };
    }
    buf.truncate(r as usize);
    Ok(Some(buf))
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

/// Replace this process with `path`, keeping the environment.
pub fn exec(path: &Path, args: &[std::ffi::OsString]) -> SysError {
    use std::os::unix::process::CommandExt;
    let err = std::process::Command::new(path).args(args).exec();
    SysError::io(format!("exec {}", path.display()), err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recording_sys_records_in_order_and_fails_on_request() {
        let sys = RecordingSys::new();
        sys.fail_on(Call::Chdir("/b".into()), nix::errno::Errno::ENOENT);
        sys.mkdir(Path::new("/a")).unwrap();
        let err = sys.chdir(Path::new("/b")).unwrap_err();
        assert_eq!(err.errno(), Some(libc::ENOENT));
        sys.chdir(Path::new("/b")).unwrap(); // a failure fires once
        assert_eq!(
            sys.calls(),
            vec![
                Call::Mkdir("/a".into()),
                Call::Chdir("/b".into()),
                Call::Chdir("/b".into())
            ]
        );
    }

    #[test]
    fn mount_descriptions_name_the_target() {
        assert_eq!(describe(&Mount::rbind("/a", "/b")), "bind mount /a on /b");
        assert_eq!(
            describe(&Mount::tmpfs("/t", MsFlags::empty(), "")),
            "mount tmpfs on /t"
        );
    }

    #[test]
    fn thread_count_sees_this_test_thread() {
        assert!(thread_count() >= 1);
    }
}
