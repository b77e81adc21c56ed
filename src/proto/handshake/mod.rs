//! The opening handshake (RFC 6455 §4) in both roles, without I/O.
//!
//! * [`ServerHandshake`]: request bytes in → a parsed [`Request`] → checks (§4.2.1,
//!   the origin policy) → your decision → the `101` response queued in a new
//!   [`Connection`](crate::proto::Connection), or an HTTP refusal.
//! * [`ClientHandshake`]: the request bytes out → response bytes in → a checked
//!   [`Response`] and a [`Connection`](crate::proto::Connection).
//!
//! Both carry the handshake deadline ([`ServerHandshake::poll_timeout`]) and
//! negotiate permessage-deflate (with the `deflate` feature), so the blocking layer
//! and the event loop run the same code. Underneath, [`parse_request`],
//! [`parse_response`] and the `write_*` functions are the HTTP/1.1 heads.

use alloc::{borrow::ToOwned, string::String, vec::Vec};

mod client;
mod http;
mod server;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sha1::{Digest, Sha1};

use crate::proto::rng::Randomness;

pub use client::{ClientConfig, ClientHandshake};
pub use http::{
    ClientOffer, Request, Response, parse_request, parse_response, reason_phrase,
    write_accept_response, write_error_response, write_http_answer, write_http_response,
    write_request,
};
pub use server::{OriginCheck, ServerConfig, ServerHandshake};

/// The setters [`ClientConfig`] and [`ServerConfig`] share (one implementation for
/// both sides of the handshake); `$what` says what happens to the subprotocols and
/// the compression terms on that side.
macro_rules! handshake_setters {
    ($what:literal) => {
        /// Bounds on the HTTP head (431 beyond). Default: 16 KiB, 64 headers.
        pub fn limits(mut self, limits: super::HeadLimits) -> Self {
            self.limits = limits;
            self
        }

        /// Time allowed for the whole handshake (`None`: unbounded).
        pub fn timeout(mut self, t: Option<core::time::Duration>) -> Self {
            self.timeout = t;
            self
        }

        #[doc = concat!("Subprotocols ", $what, ", in preference order. Default: none.")]
        pub fn subprotocols<I, P>(mut self, protocols: I) -> Self
        where
            I: IntoIterator<Item = P>,
            P: Into<String>,
        {
            self.subprotocols = protocols.into_iter().map(Into::into).collect();
            self
        }

        /// Adds a header to the request (client) or every `101` (server). Default:
        /// none.
        pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
            self.headers.push((name.into(), value.into()));
            self
        }

        #[doc = concat!("permessage-deflate, ", $what, " on the terms of `cfg`. Default: off.")]
        #[cfg(feature = "deflate")]
        pub fn deflate(mut self, cfg: crate::proto::deflate::DeflateConfig) -> Self {
            self.deflate = Some(cfg);
            self
        }

        /// The settings of the connections it opens. Default:
        /// [`ConnectionConfig::default`](crate::proto::ConnectionConfig::default).
        pub fn connection(mut self, config: crate::proto::ConnectionConfig) -> Self {
            self.connection = crate::proto::Shared::new(config);
            self
        }
    };
}

use handshake_setters;

/// The GUID of RFC 6455 §1.3, appended to the key before hashing.
pub const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Bounds on an HTTP head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLimits {
    /// Largest head in bytes (request line or status line, headers, blank line).
    /// Default: 16 KiB.
    pub max_size: usize,
    /// Largest number of header fields. Default: 64.
    pub max_headers: usize,
}

impl Default for HeadLimits {
    fn default() -> Self {
        HeadLimits {
            max_size: 16 * 1024,
            max_headers: 64,
        }
    }
}

/// An ordered list of HTTP header fields with case-insensitive lookup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    /// An empty list.
    pub fn new() -> Self {
        Headers(Vec::new())
    }

    /// The first value of `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name` (case-insensitive), in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Appends a field.
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.push((name.into(), value.into()));
    }

    /// Iterates over `(name, value)` pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if there are no fields.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True if any value of `name` contains `token` in its comma-separated list
    /// (case-insensitive, as `Connection` and `Upgrade` require).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.tokens(name).any(|t| t.eq_ignore_ascii_case(token))
    }

    /// The comma-separated tokens of every value of `name`, trimmed, empty ones skipped.
    pub fn tokens<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.get_all(name)
            .flat_map(|v| v.split(','))
            .map(|t| t.trim_matches(|c| c == ' ' || c == '\t'))
            .filter(|t| !t.is_empty())
    }

    pub(super) fn from_httparse(raw: &[httparse::Header<'_>]) -> Headers {
        Headers(
            raw.iter()
                .map(|h| {
                    (
                        h.name.to_owned(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect(),
        )
    }
}

/// Computes `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (§4.2.2).
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(WEBSOCKET_GUID.as_bytes());
    B64.encode(sha.finalize())
}

/// A fresh random `Sec-WebSocket-Key`: 16 random bytes, base64-encoded (§4.1).
#[cfg(feature = "std")]
pub fn generate_key() -> String {
    generate_key_with(&mut Randomness::thread())
}

/// A `Sec-WebSocket-Key` from `rng` (seed it for a reproducible run).
pub fn generate_key_with(rng: &mut Randomness) -> String {
    let mut bytes = [0u8; 16];
    rng.fill(&mut bytes);
    B64.encode(bytes)
}
