//! The [`Sys`] trait: the namespace, mount and identity calls plans make, and [`LinuxSys`].

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

use super::{Result, SysError, cstring};

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
    Umount {
        target: PathBuf,
        detach: bool,
    },
    PivotRoot {
        new_root: PathBuf,
        put_old: PathBuf,
    },
    ReadonlyRecursive(PathBuf),
    Chdir(PathBuf),
    Mkdir(PathBuf),
    Rmdir(PathBuf),
    Symlink {
        target: PathBuf,
        link: PathBuf,
    },
    BecomeRoot,
    /// A directory held open (a cgroup reached later through `/proc/self/fd/N`).
    OpenDir(PathBuf),
    /// A write to a kernel interface file (cgroupfs: `cgroup.freeze`, `cgroup.procs`).
    Write {
        path: PathBuf,
        data: String,
    },
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
    /// Read a kernel interface file (`/proc/self/mountinfo`, `/proc/PID/cgroup`,
    /// `cgroup.events`): the facts of a host, which the fake is given by a test.
    fn read_text(&self, path: &Path) -> Result<String>;
    /// Write a kernel interface file (cgroupfs): a call that changes the kernel's view of
    /// processes (freezing them, moving them between cgroups), so it is recorded.
    fn write_text(&self, path: &Path, data: &str) -> Result<()>;
    /// Whether this process may write `path` (access(2) with W_OK): a delegated cgroup.
    fn writable(&self, path: &Path) -> bool;
    /// The magic number (statfs(2)'s `f_type`) of the filesystem that holds `path`: a fact of
    /// the host (NFS, Lustre, tmpfs, ...) that the fake is given by a test.
    fn statfs(&self, path: &Path) -> Result<u32>;
    /// Open the directory `path` and keep it open: its files stay reachable through
    /// `/proc/self/fd/N/...` after den's mount namespace hides where it is (a container's
    /// cgroup, once `/sys/fs/cgroup` is hidden from the runtime).
    fn open_dir(&self, path: &Path) -> Result<std::os::fd::OwnedFd>;
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

    fn read_text(&self, path: &Path) -> Result<String> {
        std::fs::read_to_string(path)
            .map_err(|e| SysError::io(format!("read {}", path.display()), e))
    }

    fn write_text(&self, path: &Path, data: &str) -> Result<()> {
        // cgroupfs files exist already: open without creating or truncating, one write.
        use std::io::Write;
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|mut f| f.write_all(data.as_bytes()))
            .map_err(|e| SysError::io(format!("write {data:?} to {}", path.display()), e))
    }

    fn writable(&self, path: &Path) -> bool {
        nix::unistd::access(path, nix::unistd::AccessFlags::W_OK).is_ok()
    }

    fn open_dir(&self, path: &Path) -> Result<std::os::fd::OwnedFd> {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(path)
            .map(std::os::fd::OwnedFd::from)
            .map_err(|e| SysError::io(format!("open {}", path.display()), e))
    }

    fn statfs(&self, path: &Path) -> Result<u32> {
        // f_type is a signed word on some targets; the magic numbers are 32-bit patterns
        // (CIFS's 0xFF534D42 reads negative as an i32), so keep the low 32 bits.
        nix::sys::statfs::statfs(path)
            .map(|s| (s.filesystem_type().0 as u64 & 0xFFFF_FFFF) as u32)
            .map_err(|e| SysError::new(format!("statfs {}", path.display()), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statfs_reads_the_filesystem_magic() {
        // /proc is procfs everywhere (PROC_SUPER_MAGIC).
        assert_eq!(LinuxSys.statfs(Path::new("/proc")).unwrap(), 0x9fa0);
        let err = LinuxSys.statfs(Path::new("/no/such/dir")).unwrap_err();
        assert_eq!(err.errno(), Some(libc::ENOENT));
    }

    #[test]
    fn mount_descriptions_name_the_target() {
        assert_eq!(describe(&Mount::rbind("/a", "/b")), "bind mount /a on /b");
        assert_eq!(
            describe(&Mount::tmpfs("/t", MsFlags::empty(), "")),
            "mount tmpfs on /t"
        );
    }
}
