//! Client connections on the loop: a non-blocking TCP connect, then the request and
//! the response head through [`ClientHandshake`].

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use mio::net::TcpStream;

use crate::event::conn::sock::Sock;
use mio::{Interest, Token};

use crate::error::{Error, HandshakeError};
use crate::proto::handshake::ClientHandshake;
use crate::proto::tunnel::TunnelError;
use crate::proto::{Randomness, Role};
use crate::url::WsUrl;

use crate::event::api::handler::Handler;
use crate::event::api::id::ConnId;
use crate::event::conn::transport::Transport;
use crate::event::conn::{ClientStart, ConnIo, Outbox, Phase, ReadState, Session, Slot, Tunnel};
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
        self.dial(slot, generation, url, data, None);
    }

    /// A reconnecting client's session dials again at the end of its backoff,
    /// in the same slot, with the same id, data and cold state (its queue).
    pub(crate) fn redial(&mut self, slot: usize) {
        let Some(c) = self.slots.get_mut(slot).and_then(Option::take) else {
            return;
        };
        let Some(url) =
            c.io.cold
                .as_ref()
                .and_then(|k| k.session.as_ref())
                .map(|s| s.url.clone())
        else {
            return;
        };
        crate::logging::debug!("{}: reconnecting to {}", c.io.id, url.authority);
        let cold = c.io.cold;
        self.dial(slot, c.io.id.generation(), url, c.data, cold);
    }

    fn dial(
        &mut self,
        slot: usize,
        generation: u32,
        url: WsUrl,
        data: H::Data,
        cold: Option<Box<crate::event::conn::Cold>>,
    ) {
        let id = ConnId::new(self.core.me.index, slot, generation);
        self.core.shared.stats.accepted += 1;
        let mut request = Vec::with_capacity(256);
        let hs = ClientHandshake::new(
            self.client.clone(),
            &url.authority,
            &url.target,
            Randomness::thread(),
            self.core.now,
            &mut request,
        );
        let opened = self.open_socket(&url, slot);
        let (sock, peer, tunnel, failed) = match opened {
            Ok((s, a, t)) => (Some(s), a, t, None),
            Err(e) => (None, SocketAddr::from(([0, 0, 0, 0], 0)), None, Some(e)),
        };
        let start = ClientStart {
            hs,
            request: Outbox {
                buf: request,
                pos: 0,
            },
            connected: false,
            tunnel,
        };
        let session = self
            .config()
            .reconnect
            .is_some()
            .then(|| Box::new(Session::new(url.clone())));
        let mut io = ConnIo::new(sock, id, peer, Role::Client, Phase::Client(Box::new(start)));
        match cold {
            Some(cold) => io.cold = Some(cold),
            None if session.is_some() => io.cold().session = session,
            None => {}
        }
        self.insert(slot, Slot { io, rd: None, data });
        if let Some(e) = failed {
            match e {
                Error::Io(e) => self.io_failed(slot, e),
                e => {
                    if let Some(p) = self.parts(slot) {
                        p.conn.io.kill(&mut p.core.shared);
                    }
                    self.report_error(slot, &e);
                }
            }
            self.finalize(slot);
            return;
        }
        self.arm_timer(slot);
    }

    /// Starts the TCP connect (to the target, or to the proxy the configuration
    /// names for it) and registers the socket; through a proxy, the tunnel's
    /// handshake is prepared and TLS waits for it.
    fn open_socket(
        &mut self,
        url: &WsUrl,
        slot: usize,
    ) -> Result<(Transport, SocketAddr, Option<Box<Tunnel>>), Error> {
        let resolve = |host: &str, port: u16| {
            (host, port)
                .to_socket_addrs()
                .and_then(|mut a| a.next().ok_or_else(|| io::Error::other("no address")))
        };
        #[cfg(unix)]
        if let Some(path) = &url.unix {
            let s = Sock::Unix(mio::net::UnixStream::connect(path)?);
            let mut t = self.client_transport(url, s)?;
            self.poll.registry().register(
                t.sock(),
                Token(slot),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            return Ok((t, crate::event::conn::sock::UNIX_PEER, None));
        }
        let proxy = self.config().client_proxy.for_url(url)?;
        let (sock, addr, tunnel) = match proxy {
            None => {
                let a = resolve(&url.host, url.port)?;
                let s = Sock::Tcp(TcpStream::connect(a)?);
                (self.client_transport(url, s)?, a, None)
            }
            Some(p) => {
                let a = resolve(p.host(), p.port())?;
                let mut out = Vec::with_capacity(128);
                let hs = p.tunnel_to(url, &mut out)?;
                let tunnel = Tunnel {
                    hs,
                    out: Outbox { buf: out, pos: 0 },
                    #[cfg(feature = "tls")]
                    tls: self.client_session(url)?,
                };
                (
                    Transport::Plain(Sock::Tcp(TcpStream::connect(a)?)),
                    a,
                    Some(Box::new(tunnel)),
                )
            }
        };
        let mut sock = sock;
        self.poll.registry().register(
            sock.sock(),
            Token(slot),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        Ok((sock, addr, tunnel))
    }

    /// The TLS client session for a `wss://` URL (SNI and certificate check for
    /// its host); `None` for `ws://`.
    #[cfg(feature = "tls")]
    fn client_session(&self, url: &WsUrl) -> io::Result<Option<crate::event::conn::tls::Session>> {
        if !url.secure {
            return Ok(None);
        }
        let cfg = self.config().tls_client.clone().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "wss:// without ClientBuilder::tls",
            )
        })?;
        crate::event::conn::tls::Session::client(cfg, &url.host).map(Some)
    }

    /// Plain TCP for `ws://`; a TLS client session (SNI and certificate check for the
    /// URL's host) for `wss://`.
    fn client_transport(&self, url: &WsUrl, sock: Sock) -> io::Result<Transport> {
        #[cfg(feature = "tls")]
        if let Some(session) = self.client_session(url)? {
            return Ok(Transport::tls(sock, session));
        }
        #[cfg(not(feature = "tls"))]
        if url.secure {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "wss:// needs the `tls` feature",
            ));
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
        let Some(sock) = c.io.sock.as_ref().map(|s| s.sock_ref()) else {
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
        let tunnelling = self.slots[slot]
            .as_ref()
            .is_some_and(|c| matches!(&c.io.phase, Phase::Client(s) if s.tunnel.is_some()));
        if tunnelling {
            return self.tunnel_step(slot);
        }
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

    /// Reads the proxy's answers while the tunnel opens. Returns true when the
    /// tunnel opened and what follows should be processed (nothing should: the
    /// target speaks only after our request or ClientHello).
    fn tunnel_step(&mut self, slot: usize) -> bool {
        let Some(Parts { conn: c, core, .. }) = self.parts(slot) else {
            return false;
        };
        let Phase::Client(s) = &mut c.io.phase else {
            return false;
        };
        let Some(t) = s.tunnel.as_mut() else {
            return true;
        };
        let pending = c.rd.as_deref().map_or(&[][..], ReadState::pending);
        if t.out.pos == t.out.buf.len() {
            t.out.buf.clear();
            t.out.pos = 0;
        }
        let (consumed, err) = match t.hs.read(pending, &mut t.out.buf) {
            Ok(p) if p.done && p.consumed < pending.len() => (
                p.consumed,
                Some(TunnelError::Malformed(
                    t.hs.step(),
                    "bytes after the proxy's answer",
                )),
            ),
            Ok(p) => (p.consumed, None),
            Err(e) => (0, Some(e)),
        };
        let done = t.hs.is_done();
        c.consume(consumed);
        if let Some(e) = err {
            c.io.kill(&mut core.shared);
            self.report_error(slot, &Error::Handshake(HandshakeError::Proxy(e)));
            return false;
        }
        c.io.mark_dirty(&mut core.shared);
        if !done {
            return false;
        }
        let Phase::Client(s) = &mut c.io.phase else {
            return false;
        };
        // The tunnel is open: TLS (for wss://) wraps the socket, and the upgrade
        // request goes out through it.
        let Some(t) = s.tunnel.take() else {
            return false;
        };
        #[cfg(feature = "tls")]
        if let Some(session) = t.tls
            && let Some(Transport::Plain(tcp)) = c.io.sock.take()
        {
            c.io.sock = Some(Transport::tls(tcp, session));
        }
        let _ = t;
        if let Err(e) = c.io.flush() {
            self.io_failed(slot, e);
            return false;
        }
        false
    }
}
