//! The server side of the opening handshake over a blocking stream.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::blocking::stream::Stream;
use crate::blocking::{Config, Conn};
use crate::error::{Error, HandshakeError, Result};
use crate::proto::Role;
use crate::proto::handshake::{
    HeadLimits, Request, parse_request, write_accept_response, write_error_response,
    write_http_response,
};

type OriginCheck = Arc<dyn Fn(&Request) -> bool + Send + Sync>;

/// Upgrades HTTP requests to WebSocket connections (gorilla's `Upgrader`).
///
/// ```no_run
/// use silverback::{MessageKind, Upgrader};
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let upgrader = Upgrader::new().subprotocols(["chat"]);
/// let (stream, _) = listener.accept()?;
/// let mut conn = upgrader.upgrade(stream)?;
/// let msg = conn.read_message()?;
/// conn.write_message(msg.kind(), msg.as_bytes())?;
/// # Ok::<(), silverback::Error>(())
/// ```
#[derive(Clone)]
pub struct Upgrader {
    config: Config,
    handshake_timeout: Option<Duration>,
    limits: HeadLimits,
    subprotocols: Vec<String>,
    check_origin: Option<OriginCheck>,
    headers: Vec<(String, String)>,
    #[cfg(feature = "deflate")]
    deflate: Option<crate::proto::deflate::DeflateConfig>,
}

impl Default for Upgrader {
    fn default() -> Self {
        Upgrader {
            config: Config::default(),
            handshake_timeout: Some(Duration::from_secs(10)),
            limits: HeadLimits::default(),
            subprotocols: Vec::new(),
            check_origin: None,
            headers: Vec::new(),
            #[cfg(feature = "deflate")]
            deflate: None,
        }
    }
}

impl std::fmt::Debug for Upgrader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upgrader")
            .field("config", &self.config)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("limits", &self.limits)
            .field("subprotocols", &self.subprotocols)
            .field("check_origin", &self.check_origin.is_some())
            .finish()
    }
}

/// Sets a timeout from a deadline, ignoring transports that do not support one.
fn set_timeout(
    stream: &mut dyn Stream,
    deadline: Option<Instant>,
    write: bool,
) -> std::result::Result<(), HandshakeError> {
    let t = match deadline {
        Some(d) => {
            let now = Instant::now();
            if now >= d {
                return Err(HandshakeError::Timeout);
            }
            Some(d - now)
        }
        None => None,
    };
    let r = if write {
        stream.set_write_timeout(t)
    } else {
        stream.set_read_timeout(t)
    };
    match r {
        Err(e) if e.kind() != std::io::ErrorKind::Unsupported => {
            Err(HandshakeError::MalformedHttp(e.to_string()))
        }
        _ => Ok(()),
    }
}

pub(crate) fn write_head(
    stream: &mut dyn Stream,
    bytes: &[u8],
    deadline: Option<Instant>,
) -> Result<()> {
    set_timeout(stream, deadline, true)?;
    let r = stream.write_all(bytes).and_then(|()| stream.flush());
    let _ = set_timeout(stream, None, true);
    r.map_err(Error::from_io_timeout)
}

impl Upgrader {
    /// An upgrader with the defaults: 4 KiB buffers, 64 MiB read limit, 10 s handshake
    /// timeout, 16 KiB / 64-header request limit, gorilla's same-origin check, no
    /// subprotocols.
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

    /// Time allowed to read the request and write the answer. Default: 10 s.
    pub fn handshake_timeout(mut self, t: Option<Duration>) -> Self {
        self.handshake_timeout = t;
        self
    }

    /// Largest request head in bytes (431 beyond). Default: 16 KiB.
    pub fn max_head_size(mut self, n: usize) -> Self {
        self.limits.max_size = n;
        self
    }

    /// Largest number of request headers (431 beyond). Default: 64.
    pub fn max_headers(mut self, n: usize) -> Self {
        self.limits.max_headers = n;
        self
    }

    /// Subprotocols this server speaks, in preference order. Default: none.
    pub fn subprotocols<I, P>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.subprotocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Replaces the origin check. Default: [`Request::same_origin`] (no `Origin`, or
    /// one whose host equals `Host`). Refused requests get 403.
    pub fn check_origin(mut self, f: impl Fn(&Request) -> bool + Send + Sync + 'static) -> Self {
        self.check_origin = Some(Arc::new(f));
        self
    }

    /// Accepts permessage-deflate (RFC 7692) when a client offers it, on the terms of
    /// `cfg`. Default: off.
    #[cfg(feature = "deflate")]
    pub fn deflate(mut self, cfg: crate::proto::deflate::DeflateConfig) -> Self {
        self.deflate = Some(cfg);
        self
    }

    /// Adds a header to every `101` answer (a cookie, a server name).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Reads the request, validates it and answers `101` (gorilla's `Upgrade`). A bad
    /// request is answered with its status (400, 403, 405, 426, 431) and a short
    /// reason, and returned as [`Error::Handshake`].
    pub fn upgrade<S: Stream>(&self, stream: S) -> Result<Conn<S>> {
        self.read_request(stream)?.accept()
    }

    /// Reads the request head only, so the caller can route on the path, serve plain
    /// HTTP, or refuse, before accepting. Malformed and oversized heads are answered
    /// here (400/431).
    pub fn read_request<S: Stream>(&self, mut stream: S) -> Result<PendingUpgrade<'_, S>> {
        let deadline = self.handshake_timeout.map(|t| Instant::now() + t);
        let mut buf: Vec<u8> = Vec::with_capacity(1024);
        let res = loop {
            if let Err(e) = set_timeout(&mut stream, deadline, false) {
                break Err(Error::Handshake(e));
            }
            let len = buf.len();
            let want = (self.limits.max_size + 1 - len.min(self.limits.max_size)).min(4096);
            buf.resize(len + want, 0);
            let n = match stream.read(&mut buf[len..]) {
                Ok(0) => break Err(HandshakeError::ConnectionClosed.into()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => 0,
                Err(e) => match Error::from_io_timeout(e) {
                    Error::Timeout => break Err(HandshakeError::Timeout.into()),
                    other => break Err(other),
                },
            };
            buf.truncate(len + n);
            match parse_request(&buf, &self.limits) {
                Ok(None) => {}
                Ok(Some((request, head))) => {
                    break Ok(PendingUpgrade {
                        upgrader: self,
                        leftover: buf[head..].to_vec(),
                        stream,
                        request,
                        deadline,
                    });
                }
                Err(e) => {
                    let mut out = Vec::new();
                    write_error_response(&e, &mut out);
                    let _ = write_head(&mut stream, &out, deadline);
                    break Err(e.into());
                }
            }
        };
        res.map(|mut p| {
            let _ = set_timeout(&mut p.stream, None, false);
            p
        })
    }

    /// Upgrades a request that an embedding HTTP server already parsed; `leftover` are
    /// any bytes it read past the head. Invalid requests are answered and refused.
    pub fn upgrade_request<S: Stream>(
        &self,
        stream: S,
        request: &Request,
        leftover: &[u8],
    ) -> Result<Conn<S>> {
        let deadline = self.handshake_timeout.map(|t| Instant::now() + t);
        self.accept_inner(stream, request, leftover, deadline, None, &[])
    }

    fn accept_inner<S: Stream>(
        &self,
        mut stream: S,
        request: &Request,
        leftover: &[u8],
        deadline: Option<Instant>,
        protocol: Option<Option<&str>>,
        extra: &[(String, String)],
    ) -> Result<Conn<S>> {
        let check = request.validate_upgrade().and_then(|()| {
            let allowed = match &self.check_origin {
                Some(f) => f(request),
                None => request.same_origin(),
            };
            if allowed {
                Ok(())
            } else {
                Err(HandshakeError::OriginRefused)
            }
        });
        let mut out = Vec::with_capacity(256);
        if let Err(e) = check {
            write_error_response(&e, &mut out);
            let _ = write_head(&mut stream, &out, deadline);
            return Err(e.into());
        }
        let protocol = match protocol {
            Some(p) => p,
            None => request.select_protocol(&self.subprotocols),
        };
        let mut headers = self.headers.clone();
        headers.extend_from_slice(extra);
        let key = request.key().unwrap_or_default();
        #[cfg(feature = "deflate")]
        let negotiated = self.deflate.as_ref().and_then(|cfg| {
            crate::proto::deflate::server_accept(
                request.headers().get_all("Sec-WebSocket-Extensions"),
                cfg,
            )
            .map(|(params, answer)| (params, answer, cfg))
        });
        #[cfg(feature = "deflate")]
        let extensions = negotiated.as_ref().map(|(_, a, _)| a.as_str());
        #[cfg(not(feature = "deflate"))]
        let extensions = None;
        write_accept_response(key, protocol, extensions, &headers, &mut out);
        write_head(&mut stream, &out, deadline)?;
        #[allow(unused_mut)]
        let mut conn = Conn::from_raw(
            stream,
            Role::Server,
            self.config,
            leftover,
            protocol.map(str::to_owned),
        );
        #[cfg(feature = "deflate")]
        if let Some((params, _, cfg)) = negotiated {
            conn.enable_deflate(&params, cfg);
        }
        Ok(conn)
    }
}

/// A request head that has been read but not yet answered.
pub struct PendingUpgrade<'u, S> {
    upgrader: &'u Upgrader,
    stream: S,
    request: Request,
    leftover: Vec<u8>,
    deadline: Option<Instant>,
}

impl<S: Stream> PendingUpgrade<'_, S> {
    /// The request.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// Validates and accepts with the upgrader's subprotocol negotiation.
    pub fn accept(self) -> Result<Conn<S>> {
        self.upgrader.accept_inner(
            self.stream,
            &self.request,
            &self.leftover,
            self.deadline,
            None,
            &[],
        )
    }

    /// Validates and accepts with an explicit subprotocol choice and extra headers.
    pub fn accept_with(
        self,
        protocol: Option<&str>,
        headers: &[(String, String)],
    ) -> Result<Conn<S>> {
        self.upgrader.accept_inner(
            self.stream,
            &self.request,
            &self.leftover,
            self.deadline,
            Some(protocol),
            headers,
        )
    }

    /// Answers with a plain HTTP response (a refusal, a health check, a page) and
    /// closes the stream.
    pub fn respond(mut self, status: u16, headers: &[(&str, &str)], body: &[u8]) -> Result<()> {
        let mut out = Vec::with_capacity(128 + body.len());
        write_http_response(status, headers, body, &mut out);
        write_head(&mut self.stream, &out, self.deadline)?;
        let _ = self.stream.shutdown();
        Ok(())
    }

    /// Refuses the upgrade with `status` and a plain-text `reason`.
    pub fn reject(self, status: u16, reason: &str) -> Result<()> {
        let body = format!("{reason}\n");
        self.respond(
            status,
            &[("Content-Type", "text/plain; charset=utf-8")],
            body.as_bytes(),
        )
    }

    /// Takes the stream, the request and any bytes read past its head.
    pub fn into_parts(self) -> (S, Request, Vec<u8>) {
        (self.stream, self.request, self.leftover)
    }
}
