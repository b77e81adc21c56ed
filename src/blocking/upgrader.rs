//! The server side of the opening handshake over a blocking stream: a driver of
//! [`ServerHandshake`].

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Instant;

use super::io::{read_head, write_head};
use crate::blocking::Conn;
use crate::blocking::stream::Stream;
use crate::error::{HandshakeError, Result};
use crate::proto::handshake::{Request, ServerHandshake, write_http_response};
use crate::settings::Settings;

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
    settings: Settings,
}

impl std::fmt::Debug for Upgrader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upgrader")
            .field("settings", &self.settings)
            .finish()
    }
}

impl Upgrader {
    /// An upgrader with the defaults: 4 KiB buffers, 64 MiB read limit, 10 s handshake
    /// timeout, 16 KiB / 64-header request limit, gorilla's same-origin check, no
    /// subprotocols (see [`Settings`]).
    pub fn new() -> Self {
        Self::default()
    }

    crate::settings::settings_setters!(server settings);

    /// The handshake of one connection, starting now.
    fn handshake(&self) -> ServerHandshake {
        let connection = Arc::new(self.settings.connection_config());
        ServerHandshake::new(
            Arc::new(self.settings.server_config(connection)),
            Instant::now(),
        )
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
            read_buffer_size: self.settings.read_buffer_size,
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
            read_buffer_size: self.settings.read_buffer_size,
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
    read_buffer_size: usize,
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
            self.read_buffer_size,
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
