//! A connection's byte pipe on the loop: a plain non-blocking TCP socket, or (feature
//! `tls`) TLS over one, run by rustls from the same partial reads and writes.

use std::io::{self, Read, Write};

use super::sock::Sock;

#[cfg(feature = "tls")]
use crate::event::conn::tls::{Session, TlsIo};

pub(crate) enum Transport {
    Plain(Sock),
    #[cfg(feature = "tls")]
    Tls(Box<TlsIo>),
}

/// How a listener's sockets are wrapped: plain, or TLS with a server configuration.
#[derive(Clone, Default)]
pub(crate) struct ServerTls {
    #[cfg(feature = "tls")]
    pub(crate) config: Option<std::sync::Arc<rustls::ServerConfig>>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_tls() { "tls" } else { "plain" })
    }
}

impl ServerTls {
    /// Sockets from this listener run TLS.
    pub(crate) fn is_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.config.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }

    /// The transport for an accepted socket (a fresh TLS server session for a TLS
    /// listener: the handshake runs from the connection's first reads).
    pub(crate) fn wrap(&self, sock: Sock) -> io::Result<Transport> {
        #[cfg(feature = "tls")]
        if let Some(cfg) = &self.config {
            return Ok(Transport::tls(sock, Session::server(cfg.clone())?));
        }
        Ok(Transport::Plain(sock))
    }
}

impl Transport {
    #[cfg(feature = "tls")]
    pub(crate) fn tls(sock: Sock, session: Session) -> Transport {
        Transport::Tls(Box::new(TlsIo::new(sock, session)))
    }

    /// The socket underneath (registration, connect state, addresses).
    pub(crate) fn sock(&mut self) -> &mut Sock {
        match self {
            Transport::Plain(s) => s,
            #[cfg(feature = "tls")]
            Transport::Tls(t) => &mut t.sock,
        }
    }

    /// The socket underneath, shared.
    pub(crate) fn sock_ref(&self) -> &Sock {
        match self {
            Transport::Plain(s) => s,
            #[cfg(feature = "tls")]
            Transport::Tls(t) => &t.sock,
        }
    }

    /// A short read means the socket is drained (true for TCP; TLS reads the socket
    /// in record-sized pieces, so only `WouldBlock` says so).
    pub(crate) fn short_read_drains(&self) -> bool {
        matches!(self, Transport::Plain(_))
    }

    /// Output can go straight from the caller's buffers to the socket (vectored
    /// write-through of large frames).
    pub(crate) fn writes_through(&self) -> bool {
        matches!(self, Transport::Plain(_))
    }

    /// Reads plaintext. `Ok(0)`: the peer closed cleanly (for TLS: after
    /// `close_notify`); TLS over a TCP close without `close_notify` is
    /// `UnexpectedEof`.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Transport::Tls(t) => t.read(buf),
        }
    }

    /// Writes plaintext; `WouldBlock` when nothing could be taken.
    pub(crate) fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Transport::Tls(t) => t.write(buf),
        }
    }

    /// A vectored write (plain TCP only: see [`writes_through`](Self::writes_through)).
    pub(crate) fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.write_vectored(bufs),
            #[cfg(feature = "tls")]
            Transport::Tls(_) => {
                let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| b);
                self.write(first)
            }
        }
    }

    /// Writes what the transport itself still holds (TLS records); Ok when done or
    /// the socket is full.
    pub(crate) fn flush_pending(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(_) => Ok(()),
            #[cfg(feature = "tls")]
            Transport::Tls(t) => t.flush_pending(),
        }
    }

    /// The transport holds output of its own that has not reached the socket.
    pub(crate) fn has_pending(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            #[cfg(feature = "tls")]
            Transport::Tls(t) => t.has_pending(),
        }
    }

    /// Closes the transport: `close_notify` first for TLS (best effort), then TCP
    /// both ways.
    pub(crate) fn shutdown(&mut self) {
        #[cfg(feature = "tls")]
        if let Transport::Tls(t) = self {
            t.close_notify();
        }
        let _ = self.sock().shutdown(std::net::Shutdown::Both);
    }
}
