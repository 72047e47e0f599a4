//! The calls of the port relay's per-connection path (accept, connect, splice, recv, send, the
//! clock), reporting a failure as the kernel's errno number ([`OsErr`]).
//!
//! Written by hand over `libc` for where code lives, not for what it does. The relay runs in a
//! container's monitor for the container's whole life, after the monitor has let go of the
//! pages of code that started the container (`release_file_pages`); each page of code it
//! touches afterwards stays resident, and the kernel maps a whole page-cache folio (128 KiB or
//! more of the binary) on each such fault. Turning an errno into `std::io::Error` or nix's
//! `Errno`, reading the clock through `Instant`, or dividing a `u128` of `Duration::as_millis`
//! each runs a function of std, nix or the compiler's runtime that sits in a folio of its own:
//! a few hundred KiB of resident memory per monitor for calls that fail with EAGAIN on every
//! connection. These wrappers are small enough to be inlined into the relay.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// A failed call's errno, as the kernel's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OsErr(pub i32);

impl OsErr {
    #[inline]
    fn last() -> OsErr {
        // SAFETY: __errno_location returns this thread's errno, valid for the thread's life.
        OsErr(unsafe { *libc::__errno_location() })
    }

    /// EAGAIN: the call would have blocked.
    #[inline]
    pub fn would_block(self) -> bool {
        self.0 == libc::EAGAIN || self.0 == libc::EWOULDBLOCK
    }
}

impl std::fmt::Display for OsErr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::io::Error::from_raw_os_error(self.0).fmt(f)
    }
}

impl From<OsErr> for std::io::Error {
    fn from(e: OsErr) -> std::io::Error {
        std::io::Error::from_raw_os_error(e.0)
    }
}

/// A call's result: `r` when it is not negative, else errno.
#[inline]
fn check(r: isize) -> Result<usize, OsErr> {
    if r < 0 {
        Err(OsErr::last())
    } else {
        Ok(r as usize)
    }
}

/// `call`'s result, calling it again while it fails with EINTR.
#[inline]
fn again<T>(mut call: impl FnMut() -> Result<T, OsErr>) -> Result<T, OsErr> {
    loop {
        match call() {
            Err(OsErr(libc::EINTR)) => {}
            r => return r,
        }
    }
}

/// Milliseconds on the monotonic clock (CLOCK_MONOTONIC), from an arbitrary start.
#[inline]
pub fn monotonic_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1000 + (ts.tv_nsec as u64) / 1_000_000
}

/// Accept a connection as a non-blocking, close-on-exec socket (accept4(2)), again on EINTR.
#[inline]
pub fn accept(listener: BorrowedFd<'_>) -> Result<OwnedFd, OsErr> {
    let fd = again(|| {
        // SAFETY: accept4 on a descriptor the caller holds, with no address asked for.
        check(unsafe {
            libc::accept4(
                listener.as_raw_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            )
        } as isize)
    })?;
    // SAFETY: accept4 returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// Start a TCP connection to `port` on 127.0.0.1 of the calling thread's network namespace,
/// without blocking, with TCP_NODELAY. Returns the socket and whether the connect is still in
/// progress (EINPROGRESS).
#[inline]
pub fn connect_loopback(port: u16) -> Result<(OwnedFd, bool), OsErr> {
    // SAFETY: socket(2) takes no pointer; a non-negative result is a new descriptor.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    check(fd as isize)?;
    // SAFETY: as above, the descriptor is new and owned here alone.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    set_nodelay(sock.as_fd());
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: the address is a sockaddr_in of the size given, alive for the call.
    let r = unsafe {
        libc::connect(
            fd,
            (&raw const addr).cast::<libc::sockaddr>(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    match check(r as isize) {
        Ok(_) => Ok((sock, false)),
        Err(OsErr(libc::EINPROGRESS)) => Ok((sock, true)),
        Err(e) => Err(e),
    }
}

/// TCP_NODELAY on a TCP socket; a refusal leaves the socket as it was.
#[inline]
pub fn set_nodelay(sock: BorrowedFd<'_>) {
    let on: libc::c_int = 1;
    // SAFETY: the option value is a c_int of the size given, alive for the call.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&raw const on).cast::<libc::c_void>(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}

/// Shut down the sending side of a socket (a half-close); a failure is left to the next call.
#[inline]
pub fn shutdown_write(sock: BorrowedFd<'_>) {
    // SAFETY: shutdown(2) takes no pointer.
    unsafe { libc::shutdown(sock.as_raw_fd(), libc::SHUT_WR) };
}

/// One splice(2) call between a stream and a pipe, without blocking on the pipe (the socket
/// side should be non-blocking too), again on EINTR. Returns the bytes moved; 0 means `from`
/// reached its end.
#[inline]
pub fn splice(from: BorrowedFd<'_>, to: BorrowedFd<'_>, len: usize) -> Result<usize, OsErr> {
    again(|| {
        // SAFETY: splice(2) on descriptors the caller holds, with null offsets (streams and
        // pipes have none).
        check(unsafe {
            libc::splice(
                from.as_raw_fd(),
                std::ptr::null_mut(),
                to.as_raw_fd(),
                std::ptr::null_mut(),
                len,
                libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
            )
        })
    })
}

/// recv(2) into `buf` with `flags` (MSG_PEEK, MSG_TRUNC), again on EINTR.
#[inline]
pub fn recv(sock: BorrowedFd<'_>, buf: &mut [u8], flags: libc::c_int) -> Result<usize, OsErr> {
    again(|| {
        // SAFETY: the buffer is writable for its length for the call.
        check(unsafe {
            libc::recv(
                sock.as_raw_fd(),
                buf.as_mut_ptr().cast::<libc::c_void>(),
                buf.len(),
                flags,
            )
        })
    })
}

/// send(2) of `buf` without SIGPIPE (MSG_NOSIGNAL), again on EINTR.
#[inline]
pub fn send(sock: BorrowedFd<'_>, buf: &[u8]) -> Result<usize, OsErr> {
    again(|| {
        // SAFETY: the buffer is readable for its length for the call.
        check(unsafe {
            libc::send(
                sock.as_raw_fd(),
                buf.as_ptr().cast::<libc::c_void>(),
                buf.len(),
                libc::MSG_NOSIGNAL,
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn a_loopback_connection_carries_bytes_and_reports_errno() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        assert!(accept(l.as_fd()).unwrap_err().would_block());
        let port = l.local_addr().unwrap().port();
        let (c, _) = connect_loopback(port).unwrap();
        let mut server = loop {
            match accept(l.as_fd()) {
                Ok(s) => break std::net::TcpStream::from(s),
                Err(e) if e.would_block() => std::thread::yield_now(),
                Err(e) => panic!("accept: {e}"),
            }
        };
        let mut buf = [0u8; 8];
        assert!(recv(c.as_fd(), &mut buf, 0).unwrap_err().would_block());
        server.write_all(b"hi").unwrap();
        let n = loop {
            match recv(c.as_fd(), &mut buf, libc::MSG_PEEK) {
                Ok(n) => break n,
                Err(e) if e.would_block() => std::thread::yield_now(),
                Err(e) => panic!("recv: {e}"),
            }
        };
        assert_eq!(&buf[..n], b"hi");
        assert_eq!(recv(c.as_fd(), &mut buf, libc::MSG_TRUNC).unwrap(), 2);
        assert_eq!(send(c.as_fd(), b"yo").unwrap(), 2);
        shutdown_write(c.as_fd());
        let mut got = Vec::new();
        server.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"yo");
        // Nothing listens on the listener's port once it is closed.
        drop(l);
        let refused = match connect_loopback(port) {
            Err(e) => e,
            Ok((s, _)) => {
                let mut b = [0u8; 1];
                loop {
                    match recv(s.as_fd(), &mut b, 0) {
                        Err(e) if e.would_block() => std::thread::yield_now(),
                        Err(e) => break e,
                        Ok(n) => panic!("{n} bytes from nowhere"),
                    }
                }
            }
        };
        assert_eq!(refused, OsErr(libc::ECONNREFUSED));
        assert!(refused.to_string().contains("refused"), "{refused}");
        let a = monotonic_ms();
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(monotonic_ms() >= a + 5);
    }
}
