//! The client side of the opening handshake over a blocking stream: a driver of
//! [`ClientHandshake`].

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Instant;

use super::io::{read_head, write_head};
use crate::blocking::Conn;
use crate::blocking::stream::Stream;
use crate::error::{Error, HandshakeError, Result};
use crate::proto::Randomness;
use crate::proto::handshake::{ClientHandshake, Response};
use crate::settings::Settings;
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
#[derive(Debug, Clone)]
pub struct Dialer {
    settings: Settings,
    #[cfg(feature = "tls")]
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Default for Dialer {
    fn default() -> Self {
        Dialer {
            settings: Settings::client(),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl Dialer {
    /// A dialer with the defaults: 4 KiB buffers, 64 MiB read limit, 45 s handshake
    /// timeout (connect included, as gorilla's `DefaultDialer`), no subprotocols (see
    /// [`Settings`]).
    pub fn new() -> Self {
        Self::default()
    }

    crate::settings::settings_setters!(settings);

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
            .settings
            .handshake_timeout
            .map(|t| t.saturating_sub(started.elapsed()));
        let stream = crate::tls::connect(tcp, &u.host, tls, left)?;
        self.handshake(stream, &u, started)
    }

    /// TCP to the URL's host, trying its addresses in turn within the handshake
    /// timeout.
    fn connect_tcp(&self, u: &WsUrl, url: &str, started: Instant) -> Result<TcpStream> {
        let deadline = self.settings.handshake_timeout.map(|t| started + t);
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
        let connection = Arc::new(self.settings.connection_config());
        let client = self.settings.client_config(connection);
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
        let max = self.settings.max_head_size;
        let (resp, head, conn) = read_head(&mut stream, &mut buf, max, deadline, |b| {
            hs.read(b, Instant::now())
        })?;
        let conn =
            Conn::from_connection(stream, conn, self.settings.read_buffer_size, &buf[head..]);
        Ok((conn, resp))
    }
}
