//! The server side of the opening handshake over a blocking stream: a driver of
//! [`ServerHandshake`].

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::io::{read_head, write_head};
use crate::blocking::stream::Stream;
use crate::blocking::{Config, Conn};
use crate::error::{HandshakeError, Result};
use crate::proto::handshake::{Request, ServerConfig, ServerHandshake, write_http_response};

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
#[derive(Clone, Default)]
pub struct Upgrader {
    config: Config,
    server: ServerConfig,
}

impl std::fmt::Debug for Upgrader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upgrader")
            .field("config", &self.config)
            .field("server", &self.server)
            .finish()
    }
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
        self.server.timeout = t;
        self
    }

    /// Largest request head in bytes (431 beyond). Default: 16 KiB.
    pub fn max_head_size(mut self, n: usize) -> Self {
        self.server.limits.max_size = n;
        self
    }

    /// Largest number of request headers (431 beyond). Default: 64.
    pub fn max_headers(mut self, n: usize) -> Self {
        self.server.limits.max_headers = n;
        self
    }

    /// Subprotocols this server speaks, in preference order. Default: none.
    pub fn subprotocols<I, P>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.server.subprotocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Replaces the origin check. Default: [`Request::same_origin`] (no `Origin`, or
    /// one whose host equals `Host`). Refused requests get 403.
    pub fn check_origin(mut self, f: impl Fn(&Request) -> bool + Send + Sync + 'static) -> Self {
        self.server.check_origin = Some(Arc::new(f));
        self
    }

    /// Accepts permessage-deflate (RFC 7692) when a client offers it, on the terms of
    /// `cfg`. Default: off.
    #[cfg(feature = "deflate")]
    pub fn deflate(mut self, cfg: crate::proto::deflate::DeflateConfig) -> Self {
        self.server.deflate = Some(cfg);
        self
    }

    /// Adds a header to every `101` answer (a cookie, a server name).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.server.headers.push((name.into(), value.into()));
        self
    }

    /// The handshake of one connection, starting now.
    fn handshake(&self) -> ServerHandshake {
        let mut server = self.server.clone();
        server.connection = Arc::new(self.config.connection());
        ServerHandshake::new(Arc::new(server), Instant::now())
    }

    /// Reads the request, validates it and answers `101` (gorilla's `Upgrade`). A bad
    /// request is answered with its status (400, 403, 405, 426, 431) and a short
    /// reason, and returned as [`Error::Handshake`](crate::Error::Handshake).
    pub fn upgrade<S: Stream>(&self, stream: S) -> Result<Conn<S>> {
        self.read_request(stream)?.accept()
    }

    /// Reads the request head only, so the caller can route on the path, serve plain
    /// HTTP, or refuse, before accepting. Malformed and oversized heads are answered
    /// here (400/431).
    pub fn read_request<S: Stream>(&self, mut stream: S) -> Result<PendingUpgrade<'_, S>> {
        let hs = self.handshake();
        let deadline = hs.poll_timeout();
        let mut buf = Vec::with_capacity(1024);
        let max = hs.config().limits.max_size;
        let parsed = read_head(&mut stream, &mut buf, max, deadline, |b| hs.parse(b));
        let (request, head) = match parsed {
            Ok(r) => r,
            // A malformed or oversized head is answered (400, 431); a timeout or a
            // peer that went away is not.
            Err(crate::Error::Handshake(
                e @ (HandshakeError::MalformedHttp(_) | HandshakeError::HeadTooLarge),
            )) => {
                crate::logging::info!("{:?}: refused upgrade: {e}", stream.peer_addr().ok());
                let mut out = Vec::new();
                ServerHandshake::reject(&e, &mut out);
                let _ = write_head(&mut stream, &out, deadline);
                return Err(e.into());
            }
            Err(e) => return Err(e),
        };
        Ok(PendingUpgrade {
            upgrader: PhantomData,
            config: self.config,
            leftover: buf[head..].to_vec(),
            hs,
            stream,
            request,
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
        PendingUpgrade {
            upgrader: PhantomData,
            config: self.config,
            hs: self.handshake(),
            stream,
            request: request.clone(),
            leftover: leftover.to_vec(),
        }
        .accept()
    }
}

/// A request head that has been read but not yet answered.
pub struct PendingUpgrade<'u, S> {
    upgrader: PhantomData<&'u Upgrader>,
    config: Config,
    hs: ServerHandshake,
    stream: S,
    request: Request,
    leftover: Vec<u8>,
}

impl<S: Stream> PendingUpgrade<'_, S> {
    /// The request.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// Validates and accepts with the upgrader's subprotocol negotiation.
    pub fn accept(self) -> Result<Conn<S>> {
        let protocol = self.hs.select_protocol(&self.request).map(str::to_owned);
        self.accept_inner(protocol.as_deref(), &[])
    }

    /// Validates and accepts with an explicit subprotocol choice and extra headers.
    pub fn accept_with(
        self,
        protocol: Option<&str>,
        headers: &[(String, String)],
    ) -> Result<Conn<S>> {
        self.accept_inner(protocol, headers)
    }

    fn accept_inner(
        mut self,
        protocol: Option<&str>,
        headers: &[(String, String)],
    ) -> Result<Conn<S>> {
        let deadline = self.hs.poll_timeout();
        if let Err(e) = self.hs.check(&self.request) {
            crate::logging::info!("{:?}: refused upgrade: {e}", self.stream.peer_addr().ok());
            let mut out = Vec::new();
            ServerHandshake::reject(&e, &mut out);
            let _ = write_head(&mut self.stream, &out, deadline);
            return Err(e.into());
        }
        let mut response = Vec::with_capacity(160);
        let conn = self.hs.accept_into(
            &self.request,
            protocol,
            headers,
            Instant::now(),
            &mut response,
        );
        write_head(&mut self.stream, &response, deadline)?;
        Ok(Conn::from_connection(
            self.stream,
            conn,
            self.config,
            &self.leftover,
        ))
    }

    /// Answers with a plain HTTP response (a refusal, a health check, a page) and
    /// closes the stream.
    pub fn respond(mut self, status: u16, headers: &[(&str, &str)], body: &[u8]) -> Result<()> {
        let mut out = Vec::with_capacity(128 + body.len());
        write_http_response(status, headers, body, &mut out);
        write_head(&mut self.stream, &out, self.hs.poll_timeout())?;
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
