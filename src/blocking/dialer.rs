//! The client side of the opening handshake over a blocking stream: a driver of
//! [`ClientHandshake`].

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Instant;

use super::io::{read_head, write_head};
use crate::blocking::Conn;
use crate::blocking::stream::Stream;
use crate::error::{Error, HandshakeError, Result};
use crate::forward_proxy::{Proxy, ProxyChoice, tunnel_io_error};
use crate::proto::Randomness;
use crate::proto::handshake::{ClientHandshake, Response};
use crate::proto::tunnel::{TunnelError, TunnelStep};
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
    proxy: ProxyChoice,
    #[cfg(feature = "tls")]
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Default for Dialer {
    fn default() -> Self {
        Dialer {
            settings: Settings::client(),
            proxy: ProxyChoice::Direct,
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

    /// Dials every URL through this proxy (HTTP `CONNECT` or SOCKS5), which
    /// overrides the environment. For `wss://` the TLS session runs inside the
    /// tunnel, with SNI and certificate check against the URL's host. The proxy's
    /// handshake counts against the handshake timeout; a refusal, a malformed
    /// answer or a stall is a [`HandshakeError::Proxy`] naming the step.
    ///
    /// ```no_run
    /// use silverback::{Dialer, Proxy};
    /// let dialer = Dialer::new().proxy(Proxy::parse("http://user:pw@proxy.corp:3128")?);
    /// let (conn, _) = dialer.dial("ws://echo.example/")?;
    /// # Ok::<(), silverback::Error>(())
    /// ```
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.proxy = ProxyChoice::Fixed(proxy);
        self
    }

    /// Chooses the proxy from the environment for each URL, as curl does (see
    /// [`Proxy::from_env`]: `http_proxy`, `https_proxy`, `all_proxy`,
    /// `no_proxy`). Off by default: a dialer goes direct unless told otherwise.
    pub fn proxy_from_env(mut self) -> Self {
        self.proxy = ProxyChoice::FromEnv;
        self
    }

    /// The proxy this dialer would use for `url` (`None`: direct).
    pub fn proxy_for(&self, url: &WsUrl) -> Result<Option<Proxy>> {
        Ok(self.proxy.for_url(url)?)
    }

    /// Connects over TCP to a `ws://` URL and performs the handshake. Returns the
    /// connection and the server's `101` response. A `wss://` URL is refused here:
    /// `Dialer::dial_tls` (feature `tls`) dials it.
    pub fn dial(&self, url: &str) -> Result<(Conn<TcpStream>, Response)> {
        let u = WsUrl::parse(url)?;
        if u.unix.is_some() {
            return Err(HandshakeError::InvalidUrl(format!(
                "{url:?}: ws+unix:// is dialled by Dialer::dial_unix"
            ))
            .into());
        }
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
        if u.unix.is_some() {
            return Err(HandshakeError::InvalidUrl(format!(
                "{url:?}: wss+unix:// is not dialled by the blocking Dialer; dial_stream \
                 a TLS stream over your UnixStream"
            ))
            .into());
        }
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

    /// TCP to the URL's host (or through the proxy to it), trying its addresses
    /// in turn within the handshake timeout.
    fn connect_tcp(&self, u: &WsUrl, url: &str, started: Instant) -> Result<TcpStream> {
        let deadline = self.settings.handshake_timeout.map(|t| started + t);
        match self.proxy_for(u)? {
            None => Self::connect_to(&u.host, u.port, url, deadline),
            Some(p) => {
                let mut tcp =
                    Self::connect_to(p.host(), p.port(), url, deadline).map_err(|e| match e {
                        Error::Handshake(HandshakeError::Timeout) => {
                            HandshakeError::Proxy(TunnelError::Timeout(TunnelStep::Connect)).into()
                        }
                        e => e,
                    })?;
                tunnel(&mut tcp, &p, u, deadline)?;
                Ok(tcp)
            }
        }
    }

    fn connect_to(
        host: &str,
        port: u16,
        url: &str,
        deadline: Option<Instant>,
    ) -> Result<TcpStream> {
        let addrs = (host, port).to_socket_addrs()?;
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

    /// Connects to a `ws+unix://` URL (a server on a Unix domain socket, e.g.
    /// `ws+unix://%2Frun%2Fapp.sock/feed`) and performs the handshake, with
    /// `Host: localhost`.
    #[cfg(unix)]
    pub fn dial_unix(&self, url: &str) -> Result<(Conn<std::os::unix::net::UnixStream>, Response)> {
        let u = WsUrl::parse(url)?;
        let Some(path) = u.unix.as_ref().filter(|_| !u.secure) else {
            return Err(HandshakeError::InvalidUrl(format!(
                "{url:?}: dial_unix needs a ws+unix:// URL"
            ))
            .into());
        };
        let started = Instant::now();
        let stream = std::os::unix::net::UnixStream::connect(path)?;
        self.handshake(stream, &u, started)
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

/// Opens the tunnel through `proxy` to the URL's host on a connected socket,
/// within `deadline`.
fn tunnel(tcp: &mut TcpStream, proxy: &Proxy, u: &WsUrl, deadline: Option<Instant>) -> Result<()> {
    use std::io::{Read, Write};
    let mut out = Vec::with_capacity(128);
    let mut hs = proxy.tunnel_to(u, &mut out)?;
    let fail = |e| Error::Handshake(HandshakeError::Proxy(e));
    let left = |step| match deadline {
        None => Ok(None),
        Some(d) => match d.checked_duration_since(Instant::now()) {
            Some(t) if !t.is_zero() => Ok(Some(t)),
            _ => Err(fail(TunnelError::Timeout(step))),
        },
    };
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    // Each round reads at least one byte or fails; every answer is bounded
    // (MAX_HTTP_HEAD), and so are the rounds.
    for _ in 0..=crate::proto::tunnel::MAX_HTTP_HEAD {
        if !out.is_empty() {
            tcp.set_write_timeout(left(hs.step())?)?;
            tcp.write_all(&out)
                .map_err(|e| tunnel_io_error(hs.step(), e))?;
            out.clear();
        }
        if hs.is_done() {
            tcp.set_read_timeout(None)?;
            tcp.set_write_timeout(None)?;
            if !buf.is_empty() {
                // The target speaks only after our TLS ClientHello or request.
                return Err(fail(TunnelError::Malformed(
                    hs.step(),
                    "bytes after the proxy's answer",
                )));
            }
            return Ok(());
        }
        tcp.set_read_timeout(left(hs.step())?)?;
        let n = match tcp.read(&mut chunk) {
            Ok(0) => return Err(fail(TunnelError::Closed(hs.step()))),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(tunnel_io_error(hs.step(), e)),
        };
        buf.extend_from_slice(&chunk[..n]);
        let p = hs.read(&buf, &mut out).map_err(fail)?;
        buf.drain(..p.consumed);
    }
    Err(fail(TunnelError::Malformed(hs.step(), "answer too long")))
}
