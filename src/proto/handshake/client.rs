//! The client side of the opening handshake as a sans-IO object.

use crate::proto::Shared;
use alloc::{string::String, vec::Vec};
use core::time::Duration;

use crate::proto::time::Time;

use super::http::{ClientOffer, Response, parse_response, write_request};
use super::{HeadLimits, generate_key_with};
use crate::proto::Role;
use crate::proto::connection::{Connection, ConnectionConfig};
use crate::proto::error::HandshakeError;
use crate::proto::rng::Randomness;
#[cfg(feature = "std")]
use crate::url::WsUrl;

/// What a client offers, shared by every handshake of an endpoint.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Bounds on the response head. Default: 16 KiB, 64 headers.
    pub limits: HeadLimits,
    /// Time allowed for the whole handshake (a driver may count the TCP connect in
    /// it). Default: 45 s, as gorilla's `DefaultDialer`.
    pub timeout: Option<Duration>,
    /// Subprotocols offered, in preference order. Default: none.
    pub subprotocols: Vec<String>,
    /// Headers added to the request (`Origin`, a cookie, a token).
    pub headers: Vec<(String, String)>,
    /// permessage-deflate (RFC 7692), offered on these terms. Default: off.
    #[cfg(feature = "deflate")]
    pub deflate: Option<crate::proto::deflate::DeflateConfig>,
    /// The settings of the connection it opens.
    pub connection: Shared<ConnectionConfig>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            limits: HeadLimits::default(),
            timeout: Some(Duration::from_secs(45)),
            subprotocols: Vec::new(),
            headers: Vec::new(),
            #[cfg(feature = "deflate")]
            deflate: None,
            connection: Shared::new(ConnectionConfig::default()),
        }
    }
}

impl ClientConfig {
    super::handshake_setters!("offered");
}

/// The client side of one opening handshake.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Instant;
/// use silverback::proto::handshake::{ClientConfig, ClientHandshake};
/// use silverback::proto::Randomness;
/// use silverback::url::WsUrl;
///
/// let url = WsUrl::parse("ws://example.com:8080/chat")?;
/// let mut request = Vec::new();
/// let hs = ClientHandshake::for_url(
///     Arc::new(ClientConfig::default()),
///     &url,
///     // Keys and masks must be unpredictable (RFC 6455 §5.3, §10.3): the operating
///     // system's generator. `Randomness::seeded` is for tests and replays only.
///     Randomness::thread(),
///     Instant::now(),
///     &mut request,
/// );
/// assert!(request.starts_with(b"GET /chat HTTP/1.1\r\nHost: example.com:8080\r\n"));
/// // Send `request`, then feed the response with `hs.read(...)` until it returns a
/// // `Connection` (examples/sans_io_client.rs does the whole conversation).
/// # let _ = hs;
/// # Ok::<(), silverback::HandshakeError>(())
/// ```
#[derive(Debug)]
pub struct ClientHandshake {
    config: Shared<ClientConfig>,
    key: String,
    deadline: Option<Time>,
    rng: Randomness,
}

impl ClientHandshake {
    /// Starts a handshake at `now` and writes the upgrade request for the URL into
    /// `out` (its [`authority`](WsUrl::authority) as the `Host` header, its
    /// [`target`](WsUrl::target) as the request target). The key and the
    /// connection's mask keys come from `rng`: [`Randomness::thread`] outside tests.
    #[cfg(feature = "std")]
    pub fn for_url(
        config: Shared<ClientConfig>,
        url: &WsUrl,
        rng: Randomness,
        now: impl Into<Time>,
        out: &mut Vec<u8>,
    ) -> Self {
        Self::new(config, &url.authority, &url.target, rng, now, out)
    }

    /// Starts a handshake at `now` and writes the upgrade request into `out`:
    /// `authority` is the `Host` header's value (`host` or `host:port`, as
    /// [`WsUrl::authority`]), `target` the path and query. The key and the
    /// connection's mask keys come from `rng`: a cryptographically secure
    /// generator ([`Randomness::thread`] with `std`, [`Randomness::from_rng`]
    /// without), a seeded one in tests only.
    pub fn new(
        config: Shared<ClientConfig>,
        authority: &str,
        target: &str,
        mut rng: Randomness,
        now: impl Into<Time>,
        out: &mut Vec<u8>,
    ) -> Self {
        let now = now.into();
        let key = generate_key_with(&mut rng);
        #[cfg(feature = "deflate")]
        let offer = config
            .deflate
            .as_ref()
            .map(crate::proto::deflate::client_offer);
        #[cfg(not(feature = "deflate"))]
        let offer: Option<String> = None;
        write_request(
            &ClientOffer {
                host: authority,
                target,
                key: &key,
                protocols: &config.subprotocols,
                extensions: offer.as_deref(),
                extra: &config.headers,
            },
            out,
        );
        let deadline = config.timeout.map(|t| now + t);
        ClientHandshake {
            config,
            key,
            deadline,
            rng,
        }
    }

    /// The `Sec-WebSocket-Key` sent.
    pub fn key(&self) -> &str {
        &self.key
    }

    fn offers_extensions(&self) -> bool {
        #[cfg(feature = "deflate")]
        return self.config.deflate.is_some();
        #[cfg(not(feature = "deflate"))]
        false
    }

    /// Reads the server's answer from the bytes received so far (all of them, from
    /// the first). `Ok(None)`: more bytes are needed. Once the head is complete and
    /// valid (101, the accept key, a subprotocol and extensions we offered), returns
    /// the response, its length (bytes past it are the first frames) and the open
    /// connection; the handshake is then spent.
    pub fn read(
        &mut self,
        received: &[u8],
        now: impl Into<Time>,
    ) -> Result<Option<(Response, usize, Connection)>, HandshakeError> {
        let Some((resp, head_len)) = parse_response(
            received,
            &self.config.limits,
            &self.key,
            &self.config.subprotocols,
            self.offers_extensions(),
        )?
        else {
            return Ok(None);
        };
        let rng = core::mem::replace(&mut self.rng, Randomness::unused());
        #[allow(unused_mut)]
        let mut conn = Connection::new(Role::Client, self.config.connection.clone(), rng, now);
        #[cfg(feature = "deflate")]
        if let Some(cfg) = self.config.deflate.as_ref()
            && let Some(params) =
                crate::proto::deflate::client_check_response(resp.extensions(), cfg)?
        {
            conn.enable_deflate(&params, cfg);
        }
        conn.set_subprotocol(resp.protocol());
        Ok(Some((resp, head_len, conn)))
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

    /// [`HandshakeError::Timeout`] once the deadline has passed at `now`.
    pub fn handle_timeout(&self, now: impl Into<Time>) -> Result<(), HandshakeError> {
        let now = now.into();
        match self.deadline {
            Some(d) if now >= d => Err(HandshakeError::Timeout),
            _ => Ok(()),
        }
    }
}
