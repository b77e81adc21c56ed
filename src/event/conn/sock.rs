//! The socket under a connection: TCP, or a Unix domain socket (a local daemon,
//! a server behind nginx on a socket file). Everything above it (TLS, the
//! handshakes, the protocol) is the same for both.

use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;

use mio::event::Source;
use mio::net::TcpStream;
#[cfg(unix)]
use mio::net::UnixStream;
use mio::{Interest, Registry, Token};

/// The address a connection over a Unix domain socket reports as its peer
/// (`0.0.0.0:0`: such a peer has no IP address; per-address limits count all of
/// them as this one address).
pub(crate) const UNIX_PEER: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::UNSPECIFIED,
    0,
));

pub(crate) enum Sock {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(UnixStream),
}

impl Sock {
    /// The TCP socket, for what only TCP has (the PROXY protocol's peek).
    pub(crate) fn as_tcp_mut(&mut self) -> Option<&mut TcpStream> {
        match self {
            Sock::Tcp(s) => Some(s),
            #[cfg(unix)]
            Sock::Unix(_) => None,
        }
    }

    pub(crate) fn set_nodelay(&self, on: bool) -> io::Result<()> {
        match self {
            Sock::Tcp(s) => s.set_nodelay(on),
            #[cfg(unix)]
            Sock::Unix(_) => Ok(()),
        }
    }

    /// A pending connect's outcome (`SO_ERROR`).
    pub(crate) fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self {
            Sock::Tcp(s) => s.take_error(),
            #[cfg(unix)]
            Sock::Unix(s) => s.take_error(),
        }
    }

    /// The peer's address ([`UNIX_PEER`] for a Unix socket); `NotConnected`
    /// while a connect is under way.
    pub(crate) fn peer_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Sock::Tcp(s) => s.peer_addr(),
            #[cfg(unix)]
            Sock::Unix(s) => s.peer_addr().map(|_| UNIX_PEER),
        }
    }

    pub(crate) fn shutdown(&self, how: std::net::Shutdown) -> io::Result<()> {
        match self {
            Sock::Tcp(s) => s.shutdown(how),
            #[cfg(unix)]
            Sock::Unix(s) => s.shutdown(how),
        }
    }
}

#[cfg(all(unix, feature = "handover"))]
impl std::os::fd::AsFd for Sock {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            Sock::Tcp(s) => s.as_fd(),
            Sock::Unix(s) => s.as_fd(),
        }
    }
}

#[cfg(all(unix, feature = "handover"))]
impl From<Sock> for std::os::fd::OwnedFd {
    fn from(s: Sock) -> Self {
        match s {
            Sock::Tcp(s) => s.into(),
            Sock::Unix(s) => s.into(),
        }
    }
}

impl Read for Sock {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.read(buf),
            #[cfg(unix)]
            Sock::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Sock {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.write(buf),
            #[cfg(unix)]
            Sock::Unix(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.write_vectored(bufs),
            #[cfg(unix)]
            Sock::Unix(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Source for Sock {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Sock::Tcp(s) => s.register(r, t, i),
            #[cfg(unix)]
            Sock::Unix(s) => s.register(r, t, i),
        }
    }

    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Sock::Tcp(s) => s.reregister(r, t, i),
            #[cfg(unix)]
            Sock::Unix(s) => s.reregister(r, t, i),
        }
    }

    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Sock::Tcp(s) => s.deregister(r),
            #[cfg(unix)]
            Sock::Unix(s) => s.deregister(r),
        }
    }
}
