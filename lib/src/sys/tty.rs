//! Terminals: window sizes, and modes (raw for a container's pty, no echo for a password),
//! each put back when its guard drops.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::termios::{LocalFlags, SetArg, Termios, tcgetattr, tcsetattr};

use super::{Result, SysError};

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

/// A terminal whose mode den changed; dropping it puts the saved settings back.
pub struct TerminalMode {
    fd: OwnedFd,
    saved: Termios,
}

impl TerminalMode {
    /// Put the terminal on `fd` in raw mode (no line editing, no echo, no signals from keys),
    /// as a container's pty needs. `None` when `fd` is not a terminal.
    pub fn raw(fd: BorrowedFd<'_>) -> Option<TerminalMode> {
        Self::change(fd, nix::sys::termios::cfmakeraw)
    }

    /// Stop the terminal on `fd` echoing what is typed (a password). `None` when `fd` is not
    /// a terminal.
    pub fn without_echo(fd: BorrowedFd<'_>) -> Option<TerminalMode> {
        Self::change(fd, |t| t.local_flags.remove(LocalFlags::ECHO))
    }

    fn change(fd: BorrowedFd<'_>, how: impl FnOnce(&mut Termios)) -> Option<TerminalMode> {
        let saved = tcgetattr(fd).ok()?;
        let fd = fd.try_clone_to_owned().ok()?;
        let mut changed = saved.clone();
        how(&mut changed);
        tcsetattr(fd.as_fd(), SetArg::TCSANOW, &changed).ok()?;
        Some(TerminalMode { fd, saved })
    }
}

impl Drop for TerminalMode {
    fn drop(&mut self) {
        let _ = tcsetattr(self.fd.as_fd(), SetArg::TCSANOW, &self.saved);
    }
}
