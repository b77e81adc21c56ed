//! The client side of the opening handshake over a blocking stream.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::blocking::stream::Stream;
use crate::blocking::upgrader::write_head;
use crate::blocking::{Config, Conn};
use crate::error::{Error, HandshakeError, Result};
use crate::proto::Role;
use crate::proto::handshake::{
    ClientOffer, HeadLimits, Response, generate_key, parse_response, write_request,
};
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
    config: Config,
    handshake_timeout: Option<Duration>,
    limits: HeadLimits,
    subprotocols: Vec<String>,
    headers: Vec<(String, String)>,
    #[cfg(feature = "deflate")]
    deflate: Option<crate::proto::deflate::DeflateConfig>,
}

impl Default for Dialer {
    fn default() -> Self {
        Dialer {
            config: Config::default(),
            handshake_timeout: Some(Duration::from_secs(45)),
            limits: HeadLimits::default(),
            subprotocols: Vec::new(),
            headers: Vec::new(),
            #[cfg(feature = "deflate")]
            deflate: None,
        }
    }
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
        self.handshake_timeout = t;
        self
    }

    /// Subprotocols to offer, in preference order. Default: none.
    pub fn subprotocols<I, P>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.subprotocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Offers permessage-deflate (RFC 7692) on the terms of `cfg`. Default: off.
    #[cfg(feature = "deflate")]
    pub fn deflate(mut self, cfg: crate::proto::deflate::DeflateConfig) -> Self {
        self.deflate = Some(cfg);
        self
    }

    /// Adds a header to the upgrade request (`Origin`, a cookie, a token).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Connects over TCP to a `ws://` URL and performs the handshake. Returns the
    /// connection and the server's `101` response.
    pub fn dial(&self, url: &str) -> Result<(Conn<TcpStream>, Response)> {
        let u = WsUrl::parse(url)?;
        let deadline = self.handshake_timeout.map(|t| Instant::now() + t);
        let addrs = (u.host.as_str(), u.port).to_socket_addrs()?;
        let mut last = None;
        let mut stream = None;
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
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let stream = match (stream, last) {
            (Some(s), _) => s,
            (None, Some(e)) => return Err(Error::Io(e)),
            (None, None) => {
                return Err(HandshakeError::InvalidUrl(format!("{url}: no address")).into());
            }
        };
        stream.set_nodelay(true)?;
        self.handshake(stream, &u, deadline)
    }

    /// Performs the client handshake over a stream the caller connected (a Unix
    /// socket, a TLS stream). `url` supplies the `Host` header and request target.
    pub fn dial_stream<S: Stream>(&self, stream: S, url: &str) -> Result<(Conn<S>, Response)> {
        let u = WsUrl::parse(url)?;
        let deadline = self.handshake_timeout.map(|t| Instant::now() + t);
        self.handshake(stream, &u, deadline)
    }

    fn handshake<S: Stream>(
        &self,
        mut stream: S,
        u: &WsUrl,
        deadline: Option<Instant>,
    ) -> Result<(Conn<S>, Response)> {
        let key = generate_key();
        let mut req = Vec::with_capacity(256);
        #[cfg(feature = "deflate")]
        let offer = self
            .deflate
            .as_ref()
            .map(crate::proto::deflate::client_offer);
        #[cfg(not(feature = "deflate"))]
        let offer: Option<String> = None;
        write_request(
            &ClientOffer {
                host: &u.authority,
                target: &u.target,
                key: &key,
                protocols: &self.subprotocols,
                extensions: offer.as_deref(),
                extra: &self.headers,
            },
            &mut req,
        );
        write_head(&mut stream, &req, deadline)?;
        let mut buf: Vec<u8> = Vec::with_capacity(1024);
        loop {
            if let Some(d) = deadline {
                let now = Instant::now();
                if now >= d {
                    return Err(HandshakeError::Timeout.into());
                }
                match stream.set_read_timeout(Some(d - now)) {
                    Err(e) if e.kind() != std::io::ErrorKind::Unsupported => return Err(e.into()),
                    _ => {}
                }
            }
            let len = buf.len();
            buf.resize(len + 4096, 0);
            let n = match stream.read(&mut buf[len..]) {
                Ok(0) => return Err(HandshakeError::ConnectionClosed.into()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => 0,
                Err(e) => {
                    return Err(match Error::from_io_timeout(e) {
                        Error::Timeout => HandshakeError::Timeout.into(),
                        other => other,
                    });
                }
            };
            buf.truncate(len + n);
            if let Some((resp, head)) = parse_response(
                &buf,
                &self.limits,
                &key,
                &self.subprotocols,
                offer.is_some(),
            )? {
                if deadline.is_some() {
                    let _ = stream.set_read_timeout(None);
                }
                let protocol = resp.protocol().map(str::to_owned);
                #[allow(unused_mut)]
                let mut conn =
                    Conn::from_raw(stream, Role::Client, self.config, &buf[head..], protocol);
                #[cfg(feature = "deflate")]
                if let Some(cfg) = self.deflate.as_ref()
                    && let Some(params) =
                        crate::proto::deflate::client_check_response(resp.extensions(), cfg)?
                {
                    conn.enable_deflate(&params, cfg);
                }
                return Ok((conn, resp));
            }
        }
    }
}
