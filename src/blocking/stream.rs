//! The transport the blocking layer runs over.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// A byte stream a [`Conn`](super::Conn) can run over: `Read + Write`, plus the
/// optional abilities deadlines and the closing handshake use. Every method has a
/// default, so `impl Stream for MyStream {}` is enough for a custom transport (a TLS
/// stream, an in-memory pipe); deadlines then fail with `ErrorKind::Unsupported`.
pub trait Stream: Read + Write {
    /// Sets the timeout of blocking reads (`None`: block forever).
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let _ = timeout;
        Err(io::ErrorKind::Unsupported.into())
    }

    /// Sets the timeout of blocking writes (`None`: block forever).
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let _ = timeout;
        Err(io::ErrorKind::Unsupported.into())
    }

    /// Ends our direction of the transport (a server does this after the closing
    /// handshake: RFC 6455 §7.1.1): TCP and Unix sockets send their FIN, TLS sends
    /// `close_notify` first. The input stays readable, so a closing server can read
    /// until the peer's end rather than reset a peer that still sends; dropping the
    /// stream closes it. Default: nothing (dropping the stream closes it).
    fn shutdown(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// The remote address, where the transport has one.
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        Err(io::ErrorKind::Unsupported.into())
    }

    /// The local address, where the transport has one.
    fn local_addr(&self) -> io::Result<SocketAddr> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

macro_rules! tcp_stream_impl {
    ($t:ty) => {
        impl Stream for $t {
            fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
                TcpStream::set_read_timeout(self, timeout)
            }
            fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
                TcpStream::set_write_timeout(self, timeout)
            }
            fn shutdown(&mut self) -> io::Result<()> {
                match TcpStream::shutdown(self, Shutdown::Write) {
                    // Already shut down or reset by the peer: nothing left to close.
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
                    r => r,
                }
            }
            fn peer_addr(&self) -> io::Result<SocketAddr> {
                TcpStream::peer_addr(self)
            }
            fn local_addr(&self) -> io::Result<SocketAddr> {
                TcpStream::local_addr(self)
            }
        }
    };
}

tcp_stream_impl!(TcpStream);
tcp_stream_impl!(&TcpStream);

#[cfg(unix)]
macro_rules! unix_stream_impl {
    ($t:ty) => {
        impl Stream for $t {
            fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
                std::os::unix::net::UnixStream::set_read_timeout(self, timeout)
            }
            fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
                std::os::unix::net::UnixStream::set_write_timeout(self, timeout)
            }
            fn shutdown(&mut self) -> io::Result<()> {
                match std::os::unix::net::UnixStream::shutdown(self, Shutdown::Write) {
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
                    r => r,
                }
            }
        }
    };
}

#[cfg(unix)]
unix_stream_impl!(std::os::unix::net::UnixStream);
#[cfg(unix)]
unix_stream_impl!(&std::os::unix::net::UnixStream);

impl<S: Stream + ?Sized> Stream for Box<S> {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_read_timeout(timeout)
    }
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_write_timeout(timeout)
    }
    fn shutdown(&mut self) -> io::Result<()> {
        (**self).shutdown()
    }
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        (**self).peer_addr()
    }
    fn local_addr(&self) -> io::Result<SocketAddr> {
        (**self).local_addr()
    }
}

/// One half's handle on a stream shared by a [`ReadHalf`](super::ReadHalf) and a
/// [`WriteHalf`](super::WriteHalf): all I/O goes through `&S`, which is how
/// `TcpStream` and `UnixStream` allow a reader and a writer on two threads.
#[derive(Debug)]
pub struct Shared<S>(pub(crate) Arc<S>);

impl<S> Clone for Shared<S> {
    fn clone(&self) -> Self {
        Shared(Arc::clone(&self.0))
    }
}

impl<S> Read for Shared<S>
where
    for<'a> &'a S: Read,
{
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.0).read(buf)
    }
}

impl<S> Write for Shared<S>
where
    for<'a> &'a S: Write,
{
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.0).write(buf)
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        (&*self.0).write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        (&*self.0).flush()
    }
}

impl<S> Stream for Shared<S>
where
    for<'a> &'a S: Stream,
{
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        (&*self.0).set_read_timeout(timeout)
    }
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        (&*self.0).set_write_timeout(timeout)
    }
    fn shutdown(&mut self) -> io::Result<()> {
        (&*self.0).shutdown()
    }
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        (&*self.0).peer_addr()
    }
    fn local_addr(&self) -> io::Result<SocketAddr> {
        (&*self.0).local_addr()
    }
}
