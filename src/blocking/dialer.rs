//! The client side of the opening handshake over a blocking stream: a driver of
//! [`ClientHandshake`].

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::io::{read_head, write_head};
use crate::blocking::stream::Stream;
use crate::blocking::{Config, Conn};
use crate::error::{Error, HandshakeError, Result};
use crate::proto::Randomness;
use crate::proto::handshake::{ClientConfig, ClientHandshake, Response};
use crate::url::WsUrl;

/// Opens client connections (gorilla's `Dialer`).
///
/// ```no_run
/// use silverback::{Dialer, MessageKind};
/// let (mut conn, response) = Dialer::new().dial("ws://127.0.0.1:22345/websocket")?;
/// conn.write_message(MessageKind::Text, b"hello")?;
/// let echo = conn.read_message()?;
/// # Ok::<(), silverback::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Dialer {
    config: Config,
    client: ClientConfig,
    #[cfg(feature = "tls")]
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Dialer {
    /// A dialer with the defaults: 4 KiB buffers, 64 MiB read limit, 45 s handshake
    /// timeout (connect included, as gorilla's `DefaultDialer`), no subprotocols.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the connection buffers and limits.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Read buffer size. Default: 4096.
    pub fn read_buffer_size(mut self, n: usize) -> Self {
        self.config.read_buffer_size = n;
        self
    }

    /// Write buffer size (fragment size of `next_writer`). Default: 4096.
    pub fn write_buffer_size(mut self, n: usize) -> Self {
        self.config.write_buffer_size = n;
        self
    }

    /// Largest message accepted. Default: 64 MiB.
    pub fn max_message_size(mut self, n: u64) -> Self {
        self.config.max_message_size = n;
        self
    }

    /// Time allowed for connect plus handshake. Default: 45 s.
    pub fn handshake_timeout(mut self, t: Option<Duration>) -> Self {
        self.client.timeout = t;
        self
    }

    /// Subprotocols to offer, in preference order. Default: none.
    pub fn subprotocols<I, P>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.client.subprotocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Offers permessage-deflate (RFC 7692) on the terms of `cfg`. Default: off.
    #[cfg(feature = "deflate")]
    pub fn deflate(mut self, cfg: crate::proto::deflate::DeflateConfig) -> Self {
        self.client.deflate = Some(cfg);
        self
    }

    /// Adds a header to the upgrade request (`Origin`, a cookie, a token).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.client.headers.push((name.into(), value.into()));
        self
    }

    /// Connects over TCP to a `ws://` URL and performs the handshake. Returns the
    /// connection and the server's `101` response. A `wss://` URL is refused here:
    /// `Dialer::dial_tls` (feature `tls`) dials it.
    pub fn dial(&self, url: &str) -> Result<(Conn<TcpStream>, Response)> {
        let u = WsUrl::parse(url)?;
        if u.secure {
            return Err(HandshakeError::InvalidUrl(format!(
                "{url:?}: wss:// is dialled by Dialer::dial_tls (feature `tls`)"
            ))
            .into());
        }
        let started = Instant::now();
        let stream = self.connect_tcp(&u, url, started)?;
        self.handshake(stream, &u, started)
    }

    /// The TLS configuration `wss://` URLs are dialled with: the roots that verify
    /// the server (see [`crate::tls::client_config`]). Default: none, and
    /// [`dial_tls`](Self::dial_tls) refuses to guess.
    #[cfg(feature = "tls")]
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Connects to a `wss://` URL: TCP, then TLS (SNI and certificate check against
    /// the URL's host, with the [`tls_config`](Self::tls_config) roots), then the
    /// WebSocket handshake, all within the handshake timeout. A certificate the
    /// roots do not vouch for, or one for another host name, is an
    /// [`Error::Io`] whose message names the reason (`invalid peer certificate:
    /// ...`).
    #[cfg(feature = "tls")]
    pub fn dial_tls(&self, url: &str) -> Result<(Conn<crate::tls::ClientStream>, Response)> {
        let u = WsUrl::parse(url)?;
        if !u.secure {
            return Err(HandshakeError::InvalidUrl(format!(
                "{url:?}: dial_tls needs a wss:// URL"
            ))
            .into());
        }
        let Some(tls) = self.tls.as_ref() else {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "wss://: no TLS configuration; set Dialer::tls_config",
            )));
        };
        let started = Instant::now();
        let tcp = self.connect_tcp(&u, url, started)?;
        let left = self
            .client
            .timeout
            .map(|t| t.saturating_sub(started.elapsed()));
        let stream = crate::tls::connect(tcp, &u.host, tls, left)?;
        self.handshake(stream, &u, started)
    }

    /// TCP to the URL's host, trying its addresses in turn within the handshake
    /// timeout.
    fn connect_tcp(&self, u: &WsUrl, url: &str, started: Instant) -> Result<TcpStream> {
        let deadline = self.client.timeout.map(|t| started + t);
        let addrs = (u.host.as_str(), u.port).to_socket_addrs()?;
        let mut last = None;
        for addr in addrs {
            let res = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(HandshakeError::Timeout.into());
                    }
                    TcpStream::connect_timeout(&addr, left)
                }
                None => TcpStream::connect(addr),
            };
            match res {
                Ok(s) => {
                    s.set_nodelay(true)?;
                    return Ok(s);
                }
                Err(e) => last = Some(e),
            }
        }
        match last {
            Some(e) => Err(Error::Io(e)),
            None => Err(HandshakeError::InvalidUrl(format!("{url}: no address")).into()),
        }
    }

    /// Performs the client handshake over a stream the caller connected (a Unix
    /// socket, a TLS stream). `url` supplies the `Host` header and request target.
    pub fn dial_stream<S: Stream>(&self, stream: S, url: &str) -> Result<(Conn<S>, Response)> {
        let u = WsUrl::parse(url)?;
        self.handshake(stream, &u, Instant::now())
    }

    fn handshake<S: Stream>(
        &self,
        mut stream: S,
        u: &WsUrl,
        started: Instant,
    ) -> Result<(Conn<S>, Response)> {
        let mut client = self.client.clone();
        client.connection = Arc::new(self.config.connection());
        let mut request = Vec::with_capacity(256);
        let mut hs = ClientHandshake::new(
            Arc::new(client),
            &u.authority,
            &u.target,
            Randomness::thread(),
            started,
            &mut request,
        );
        let deadline = hs.poll_timeout();
        write_head(&mut stream, &request, deadline)?;
        let mut buf = Vec::with_capacity(1024);
        let max = self.client.limits.max_size;
        let (resp, head, conn) = read_head(&mut stream, &mut buf, max, deadline, |b| {
            hs.read(b, Instant::now())
        })?;
        let conn = Conn::from_connection(stream, conn, self.config, &buf[head..]);
        Ok((conn, resp))
    }
}
