//! Extended attributes (overlayfs whiteouts and opaque directories, file capabilities).

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::Path;

use super::{Result, SysError, cstring};

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

/// Set the extended attribute `name` of the open file `fd` (the file itself, whatever its path
/// has become since it was opened).
pub fn fsetxattr(fd: BorrowedFd<'_>, name: &str, value: &[u8]) -> std::io::Result<()> {
    let n = CString::new(name).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `fd` is a live descriptor borrowed for the call; `n` is NUL-terminated; `value`
    // is a valid slice whose pointer and length are passed together; the kernel only reads them.
    let r = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
