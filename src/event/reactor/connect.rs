//! Client connections on the loop: a non-blocking TCP connect, then the request and
//! the response head through [`ClientHandshake`].

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use mio::net::TcpStream;
use mio::{Interest, Token};

use crate::error::Error;
use crate::proto::handshake::ClientHandshake;
use crate::proto::{Randomness, Role};
use crate::url::WsUrl;

use crate::event::api::handler::Handler;
use crate::event::api::id::ConnId;
use crate::event::conn::transport::Transport;
use crate::event::conn::{ClientStart, ConnIo, Outbox, Phase, ReadState, Slot};
use crate::event::reactor::worker::{Parts, Worker};

impl<H: Handler> Worker<H> {
    /// Starts connecting to `url`; the slot was reserved by `LoopCore::connect`.
    pub(crate) fn start_connect(
        &mut self,
        slot: usize,
        generation: u32,
        url: WsUrl,
        data: H::Data,
    ) {
        let id = ConnId::new(self.core.me.index, slot, generation);
        self.core.shared.stats.accepted += 1;
        let addr = (url.host.as_str(), url.port)
            .to_socket_addrs()
            .and_then(|mut a| a.next().ok_or_else(|| io::Error::other("no address")));
        let sock = addr.and_then(|a| {
            let mut s = self.client_transport(&url, TcpStream::connect(a)?)?;
            self.poll.registry().register(
                s.tcp(),
                Token(slot),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            Ok((s, a))
        });
        let mut request = Vec::with_capacity(256);
        let hs = ClientHandshake::new(
            self.client.clone(),
            &url.authority,
            &url.target,
            Randomness::thread(),
            self.core.now,
            &mut request,
        );
        let (sock, peer, failed) = match sock {
            Ok((s, a)) => (Some(s), a, None),
            Err(e) => (None, SocketAddr::from(([0, 0, 0, 0], 0)), Some(e)),
        };
        let start = ClientStart {
            hs,
            request: Outbox {
                buf: request,
                pos: 0,
            },
            connected: false,
        };
        let io = ConnIo::new(sock, id, peer, Role::Client, Phase::Client(Box::new(start)));
        self.insert(slot, Slot { io, rd: None, data });
        if let Some(e) = failed {
            self.io_failed(slot, e);
            self.finalize(slot);
            return;
        }
        self.arm_timer(slot);
    }

    /// Plain TCP for `ws://`; a TLS client session (SNI and certificate check for the
    /// URL's host) for `wss://`.
    fn client_transport(&self, url: &WsUrl, sock: TcpStream) -> io::Result<Transport> {
        #[cfg(feature = "tls")]
        if url.secure {
            let cfg = self.config().tls_client.clone().ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "wss:// without ClientBuilder::tls",
                )
            })?;
            let session = crate::event::conn::tls::Session::client(cfg, &url.host)?;
            return Ok(Transport::tls(sock, session));
        }
        let _ = url;
        Ok(Transport::Plain(sock))
    }

    /// The socket became writable while connecting: the connect finished (or
    /// failed); the request goes out.
    pub(crate) fn finish_connect(&mut self, slot: usize) {
        let Some(Parts { conn: c, core, .. }) = self.parts(slot) else {
            return;
        };
        let Some(sock) = c.io.sock.as_ref().map(|s| s.tcp_ref()) else {
            return;
        };
        if let Ok(Some(e)) | Err(e) = sock.take_error() {
            self.io_failed(slot, e);
            return;
        }
        match sock.peer_addr() {
            Ok(peer) => {
                if core.shared.config.nodelay {
                    let _ = sock.set_nodelay(true);
                }
                c.io.set_peer(peer);
                if let Phase::Client(s) = &mut c.io.phase {
                    s.connected = true;
                }
                c.io.mark_dirty(&mut core.shared);
                if let Err(e) = c.io.flush() {
                    self.io_failed(slot, e);
                }
            }
            // Spurious wake-up: still connecting.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => {}
            Err(e) => self.io_failed(slot, e),
        }
    }

    /// Reads the response head. Returns true if the connection opened and
    /// processing should continue with the rest of the input (the first frames).
    pub(crate) fn client_handshake(&mut self, slot: usize) -> bool {
        let now = self.core.now;
        let Some(Parts { conn: c, core, .. }) = self.parts(slot) else {
            return false;
        };
        let Phase::Client(s) = &mut c.io.phase else {
            return false;
        };
        let pending = c.rd.as_deref().map_or(&[][..], ReadState::pending);
        match s.hs.read(pending, now) {
            Ok(None) => false,
            Ok(Some((_response, head_len, conn))) => {
                c.io.phase = Phase::Open(conn);
                c.consume(head_len);
                self.open(slot);
                true
            }
            Err(e) => {
                c.io.kill(&mut core.shared);
                self.report_error(slot, &Error::Handshake(e));
                false
            }
        }
    }
}
