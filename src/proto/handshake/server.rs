//! The server side of the opening handshake as a sans-IO object.

use crate::proto::Shared;
use alloc::{string::String, vec::Vec};
use core::time::Duration;

use crate::proto::time::Time;

use super::HeadLimits;
use super::http::{
    Request, parse_request, write_accept_response, write_error_response, write_http_response,
};
use crate::proto::Role;
use crate::proto::connection::{Connection, ConnectionConfig};
use crate::proto::error::HandshakeError;
use crate::proto::rng::Randomness;

/// An origin policy: true lets the request through, false refuses it with 403.
pub type OriginCheck = Shared<dyn Fn(&Request) -> bool + Send + Sync>;

/// What a server accepts, shared by every handshake of an endpoint.
#[derive(Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Bounds on the request head (431 beyond). Default: 16 KiB, 64 headers.
    pub limits: HeadLimits,
    /// Time allowed for the whole handshake. Default: 10 s.
    pub timeout: Option<Duration>,
    /// Subprotocols this server speaks, in preference order. Default: none.
    pub subprotocols: Vec<String>,
    /// The origin policy. Default (`None`): [`Request::same_origin`], gorilla's rule.
    pub check_origin: Option<OriginCheck>,
    /// Headers added to every `101` (a cookie, a server name).
    pub headers: Vec<(String, String)>,
    /// permessage-deflate (RFC 7692), accepted on these terms. Default: off.
    #[cfg(feature = "deflate")]
    pub deflate: Option<crate::proto::deflate::DeflateConfig>,
    /// The settings of the connections it opens.
    pub connection: Shared<ConnectionConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            limits: HeadLimits::default(),
            timeout: Some(Duration::from_secs(10)),
            subprotocols: Vec::new(),
            check_origin: None,
            headers: Vec::new(),
            #[cfg(feature = "deflate")]
            deflate: None,
            connection: Shared::new(ConnectionConfig::default()),
        }
    }
}

impl ServerConfig {
    super::handshake_setters!("accepted");

    /// The origin policy: `f` returns true to let a request through (403
    /// otherwise). Default: [`Request::same_origin`], gorilla's rule.
    pub fn check_origin(mut self, f: impl Fn(&Request) -> bool + Send + Sync + 'static) -> Self {
        self.check_origin = Some(Shared::new(f));
        self
    }
}

impl core::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("limits", &self.limits)
            .field("timeout", &self.timeout)
            .field("subprotocols", &self.subprotocols)
            .field("check_origin", &self.check_origin.is_some())
            .field("headers", &self.headers)
            .field("connection", &self.connection)
            .finish_non_exhaustive()
    }
}

/// The server side of one opening handshake.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Instant;
/// use silverback::proto::handshake::{ServerConfig, ServerHandshake};
///
/// let hs = ServerHandshake::new(Arc::new(ServerConfig::default()), Instant::now());
/// let received = b"GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\
///     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
///     Sec-WebSocket-Version: 13\r\n\r\n";
/// let (request, head_len) = hs.parse(received).unwrap().expect("a whole head");
/// hs.check(&request).unwrap();
/// let protocol = hs.select_protocol(&request).map(str::to_owned);
/// let conn = hs.accept(&request, protocol.as_deref(), &[], Instant::now());
/// assert!(conn.transmit().starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
/// assert_eq!(head_len, received.len()); // bytes past the head are the first frames
/// ```
#[derive(Clone)]
pub struct ServerHandshake {
    config: Shared<ServerConfig>,
    deadline: Option<Time>,
}

impl core::fmt::Debug for ServerHandshake {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerHandshake")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl ServerHandshake {
    /// A handshake that started (the connection was accepted) at `now`.
    pub fn new(config: Shared<ServerConfig>, now: impl Into<Time>) -> Self {
        let now = now.into();
        let deadline = config.timeout.map(|t| now + t);
        ServerHandshake { config, deadline }
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Parses the request head from the bytes received so far (all of them, from
    /// the first). `Ok(None)`: more bytes are needed. `Ok(Some((request, head_len)))`:
    /// bytes past `head_len` are the first frames. An error is answered with
    /// [`reject`](Self::reject) (400 for a malformed head, 431 for an oversized one,
    /// even before it is complete).
    pub fn parse(&self, received: &[u8]) -> Result<Option<(Request, usize)>, HandshakeError> {
        parse_request(received, &self.config.limits)
    }

    /// Checks an upgrade request: RFC 6455 §4.2.1 (405, 400, 426), then the origin
    /// policy (403). A request without `Upgrade: websocket` is plain HTTP
    /// ([`HandshakeError::NotUpgrade`], 426): a server on a shared port may answer
    /// it itself instead.
    pub fn check(&self, req: &Request) -> Result<(), HandshakeError> {
        req.validate_upgrade()?;
        let allowed = match &self.config.check_origin {
            Some(f) => f(req),
            None => req.same_origin(),
        };
        if allowed {
            Ok(())
        } else {
            Err(HandshakeError::OriginRefused)
        }
    }

    /// The subprotocol the configuration picks: the first of its list (server
    /// preference) that the client offered.
    pub fn select_protocol(&self, req: &Request) -> Option<&str> {
        req.select_protocol(&self.config.subprotocols)
    }

    /// Accepts a checked request: the `101` response (selecting `protocol`, the
    /// negotiated extensions, the configured headers and `headers`) is the first
    /// thing queued in the returned connection's
    /// [`transmit`](Connection::transmit).
    pub fn accept(
        self,
        req: &Request,
        protocol: Option<&str>,
        headers: &[(String, String)],
        now: impl Into<Time>,
    ) -> Connection {
        let mut response = Vec::with_capacity(160);
        let mut conn = self.accept_into(req, protocol, headers, now, &mut response);
        conn.queue_preamble(&response);
        conn
    }

    /// Like [`accept`](Self::accept), but appends the `101` response to `response`
    /// instead of queueing it: the caller writes it before anything the connection
    /// transmits (and queues what the transport did not take in front of the
    /// connection's output). The event loop writes it at once from a scratch buffer,
    /// so an idle connection holds no transmit buffer.
    pub(crate) fn accept_into(
        self,
        req: &Request,
        protocol: Option<&str>,
        headers: &[(String, String)],
        now: impl Into<Time>,
        response: &mut Vec<u8>,
    ) -> Connection {
        let mut conn = Connection::new(
            Role::Server,
            self.config.connection.clone(),
            // A server neither masks nor makes keys.
            #[cfg(feature = "std")]
            Randomness::thread(),
            #[cfg(not(feature = "std"))]
            Randomness::unused(),
            now,
        );
        #[cfg(feature = "deflate")]
        let negotiated = self.config.deflate.as_ref().and_then(|cfg| {
            crate::proto::deflate::server_accept(
                req.headers().get_all("Sec-WebSocket-Extensions"),
                cfg,
            )
            .map(|(params, answer)| {
                conn.enable_deflate(&params, cfg);
                answer
            })
        });
        #[cfg(not(feature = "deflate"))]
        let negotiated: Option<String> = None;
        let all: Vec<(String, String)>;
        let extra = if headers.is_empty() {
            &self.config.headers[..]
        } else {
            all = self.config.headers.iter().chain(headers).cloned().collect();
            &all[..]
        };
        write_accept_response(
            req.key().unwrap_or_default(),
            protocol,
            negotiated.as_deref(),
            extra,
            response,
        );
        conn.set_subprotocol(protocol);
        conn
    }

    /// Writes the HTTP answer to a failed handshake (its status, a short reason,
    /// and `Sec-WebSocket-Version: 13` with a 426).
    pub fn reject(err: &HandshakeError, out: &mut Vec<u8>) {
        write_error_response(err, out);
    }

    /// Writes a refusal chosen by the application: `status` with a plain-text body.
    pub fn refuse(status: u16, body: &str, out: &mut Vec<u8>) {
        write_http_response(
            status,
            &[("Content-Type", "text/plain; charset=utf-8")],
            body.as_bytes(),
            out,
        );
    }

    /// When the handshake times out, if it can (for times given as `Instant`s).
    #[cfg(feature = "std")]
    pub fn poll_timeout(&self) -> Option<std::time::Instant> {
        self.deadline.map(Time::to_instant)
    }

    /// When the handshake times out, if it can, on the clock its times come from.
    pub fn poll_deadline(&self) -> Option<Time> {
        self.deadline
    }

    /// [`HandshakeError::Timeout`] once the deadline has passed at `now`: close the
    /// transport.
    pub fn handle_timeout(&self, now: impl Into<Time>) -> Result<(), HandshakeError> {
        let now = now.into();
        match self.deadline {
            Some(d) if now >= d => Err(HandshakeError::Timeout),
            _ => Ok(()),
        }
    }
}
