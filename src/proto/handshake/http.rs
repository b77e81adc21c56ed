//! HTTP/1.1 heads of the opening handshake (RFC 6455 §4): httparse in, bytes out.
//!
//! [`parse_request`] and [`parse_response`] read a head from the start of a buffer
//! (partial input is `Ok(None)`) and say how many bytes it took, so bytes after the
//! head (the first frames) are never lost. The `write_*` functions produce requests
//! and responses. Nothing here touches a socket.

use alloc::{borrow::ToOwned, format, string::String, string::ToString, vec, vec::Vec};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::{HeadLimits, Headers, accept_key};
use crate::proto::error::HandshakeError;

/// A parsed HTTP request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    method: String,
    target: String,
    minor_version: u8,
    headers: Headers,
}

fn map_parse_error(e: httparse::Error) -> HandshakeError {
    match e {
        httparse::Error::TooManyHeaders => HandshakeError::HeadTooLarge,
        other => HandshakeError::MalformedHttp(other.to_string()),
    }
}

/// Parses an HTTP request head from the start of `buf`.
///
/// Returns `Ok(Some((request, head_len)))` when the head is complete (`buf[head_len..]`
/// already belongs to the WebSocket stream), `Ok(None)` when more bytes are needed,
/// and an error for malformed or oversized heads (431 when `limits` are exceeded,
/// even if the head is still incomplete).
pub fn parse_request(
    buf: &[u8],
    limits: &HeadLimits,
) -> Result<Option<(Request, usize)>, HandshakeError> {
    let mut raw = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut req = httparse::Request::new(&mut raw);
    match req.parse(buf).map_err(map_parse_error)? {
        httparse::Status::Partial => {
            if buf.len() >= limits.max_size {
                Err(HandshakeError::HeadTooLarge)
            } else {
                Ok(None)
            }
        }
        httparse::Status::Complete(n) if n > limits.max_size => Err(HandshakeError::HeadTooLarge),
        httparse::Status::Complete(n) => {
            let request = Request {
                method: req.method.unwrap_or_default().to_owned(),
                target: req.path.unwrap_or_default().to_owned(),
                minor_version: req.version.unwrap_or(0),
                headers: Headers::from_httparse(req.headers),
            };
            Ok(Some((request, n)))
        }
    }
}

impl Request {
    /// Builds a request head from parts (for embedding in an HTTP server that parsed
    /// the request itself). `minor_version` is 1 for HTTP/1.1.
    pub fn from_parts(method: &str, target: &str, minor_version: u8, headers: Headers) -> Self {
        Request {
            method: method.to_owned(),
            target: target.to_owned(),
            minor_version,
            headers,
        }
    }

    /// The method, e.g. `GET`.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request target as sent, e.g. `/websocket?user=1`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The path part of the target (before any `?`).
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The query part of the target (after the first `?`), if any.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    /// The value of query parameter `name` (no percent-decoding).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query()?
            .split('&')
            .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    /// Every value of query parameter `name`, in order, for parameters that repeat
    /// (`?topic=a&topic=b`; no percent-decoding).
    pub fn query_params<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.query()
            .unwrap_or("")
            .split('&')
            .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
            .filter(move |(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    /// The HTTP minor version (1 for HTTP/1.1).
    pub fn minor_version(&self) -> u8 {
        self.minor_version
    }

    /// True if the client wants the connection kept open after the response
    /// (RFC 9112 §9.3): HTTP/1.1 unless it sent `Connection: close`, HTTP/1.0 only
    /// with `Connection: keep-alive`.
    pub fn wants_keep_alive(&self) -> bool {
        let h = &self.headers;
        if self.minor_version >= 1 {
            !h.has_token("Connection", "close")
        } else {
            h.has_token("Connection", "keep-alive")
        }
    }

    /// The header fields.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// True if this request asks for a WebSocket upgrade (`Upgrade: websocket`).
    /// Requests without it are plain HTTP.
    pub fn is_websocket_upgrade(&self) -> bool {
        self.headers.has_token("Upgrade", "websocket")
    }

    /// The `Origin` header, if present.
    pub fn origin(&self) -> Option<&str> {
        self.headers.get("Origin")
    }

    /// The subprotocols the client offers, in its order of preference.
    pub fn protocols(&self) -> impl Iterator<Item = &str> {
        self.headers.tokens("Sec-WebSocket-Protocol")
    }

    /// The `Sec-WebSocket-Key` header, if present.
    pub fn key(&self) -> Option<&str> {
        self.headers.get("Sec-WebSocket-Key")
    }

    /// Checks the request against RFC 6455 §4.2.1. On failure the error's
    /// [`status`](HandshakeError::status) is the HTTP status to answer with.
    pub fn validate_upgrade(&self) -> Result<(), HandshakeError> {
        if self.method != "GET" {
            return Err(HandshakeError::MethodNotGet);
        }
        if self.minor_version < 1 {
            return Err(HandshakeError::UnsupportedHttpVersion);
        }
        let upgrade = self.headers.has_token("Upgrade", "websocket");
        let connection = self.headers.has_token("Connection", "upgrade");
        match (upgrade, connection) {
            (false, false) => return Err(HandshakeError::NotUpgrade),
            (false, true) => return Err(HandshakeError::MissingUpgradeWebsocket),
            (true, false) => return Err(HandshakeError::MissingConnectionUpgrade),
            (true, true) => {}
        }
        if self.headers.get("Host").is_none_or(|h| h.trim().is_empty()) {
            return Err(HandshakeError::MissingHost);
        }
        if self.headers.get("Sec-WebSocket-Version").map(str::trim) != Some("13") {
            return Err(HandshakeError::UnsupportedVersion);
        }
        // §11.3.1: the key MUST NOT appear more than once (two keys are no key).
        if self.headers.get_all("Sec-WebSocket-Key").nth(1).is_some() {
            return Err(HandshakeError::InvalidKey);
        }
        let key = self.key().ok_or(HandshakeError::InvalidKey)?;
        match B64.decode(key.trim()) {
            Ok(raw) if raw.len() == 16 => Ok(()),
            _ => Err(HandshakeError::InvalidKey),
        }
    }

    /// gorilla's default origin policy: allowed if there is no `Origin` header, or if
    /// the origin's `host[:port]` equals the `Host` header (ASCII case-insensitive).
    pub fn same_origin(&self) -> bool {
        let Some(origin) = self.origin() else {
            return true;
        };
        let Some(host) = self.header("Host") else {
            return false;
        };
        let authority = origin
            .split_once("://")
            .map_or(origin, |(_, rest)| rest)
            .split('/')
            .next()
            .unwrap_or("");
        authority.eq_ignore_ascii_case(host.trim())
    }

    /// Picks the first of `supported` (server preference order) that the client offered.
    pub fn select_protocol<'a>(&self, supported: &'a [String]) -> Option<&'a str> {
        supported
            .iter()
            .find(|s| self.protocols().any(|p| p == s.as_str()))
            .map(String::as_str)
    }
}

/// Writes the `101 Switching Protocols` answer for `key` into `out`.
/// `extra` headers are appended as given (names and values must not contain CR/LF).
pub fn write_accept_response(
    key: &str,
    protocol: Option<&str>,
    extensions: Option<&str>,
    extra: &[(String, String)],
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ",
    );
    out.extend_from_slice(accept_key(key.trim().as_bytes()).as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Some(p) = protocol {
        push_header(out, "Sec-WebSocket-Protocol", p);
    }
    if let Some(e) = extensions {
        push_header(out, "Sec-WebSocket-Extensions", e);
    }
    for (n, v) in extra {
        push_header(out, n, v);
    }
    out.extend_from_slice(b"\r\n");
}

fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// The reason phrase for the statuses this crate produces.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        411 => "Length Required",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

/// Writes a complete HTTP/1.1 response with a body and `Connection: close`.
pub fn write_http_response(status: u16, headers: &[(&str, &str)], body: &[u8], out: &mut Vec<u8>) {
    write_http_answer(status, headers, body, false, out);
}

/// Writes a complete HTTP/1.1 response with a body; `keep_alive` says whether the
/// connection stays open for the next request (`Connection: keep-alive`) or closes
/// after it (`Connection: close`).
pub fn write_http_answer(
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
    keep_alive: bool,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status)).as_bytes());
    for (n, v) in headers {
        push_header(out, n, v);
    }
    push_header(out, "Content-Length", &body.len().to_string());
    push_header(
        out,
        "Connection",
        if keep_alive { "keep-alive" } else { "close" },
    );
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

/// Writes the answer to a failed handshake: the error's status, a short plain-text
/// reason, and `Sec-WebSocket-Version: 13` / `Upgrade: websocket` where §4.4 and
/// RFC 7231 §6.5.15 ask for them.
pub fn write_error_response(err: &HandshakeError, out: &mut Vec<u8>) {
    let status = match err.status() {
        0 => 400,
        s => s,
    };
    let body = format!("{err}\n");
    let mut headers: Vec<(&str, &str)> = vec![("Content-Type", "text/plain; charset=utf-8")];
    if status == 426 {
        headers.push(("Upgrade", "websocket"));
        headers.push(("Sec-WebSocket-Version", "13"));
    }
    if status == 405 {
        headers.push(("Allow", "GET"));
    }
    write_http_response(status, &headers, body.as_bytes(), out);
}

/// What a client offers in its upgrade request.
#[derive(Debug, Clone, Default)]
pub struct ClientOffer<'a> {
    /// `Host` header value (`host[:port]`).
    pub host: &'a str,
    /// Request target, e.g. `/chat?room=1`.
    pub target: &'a str,
    /// The `Sec-WebSocket-Key` (see [`generate_key`](super::generate_key)).
    pub key: &'a str,
    /// Subprotocols offered, in preference order.
    pub protocols: &'a [String],
    /// A `Sec-WebSocket-Extensions` offer, if any.
    pub extensions: Option<&'a str>,
    /// Extra header fields.
    pub extra: &'a [(String, String)],
}

/// Writes a client upgrade request (§4.1) into `out`.
pub fn write_request(offer: &ClientOffer<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"GET ");
    out.extend_from_slice(offer.target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    push_header(out, "Host", offer.host);
    out.extend_from_slice(
        b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n",
    );
    push_header(out, "Sec-WebSocket-Key", offer.key);
    if !offer.protocols.is_empty() {
        push_header(out, "Sec-WebSocket-Protocol", &offer.protocols.join(", "));
    }
    if let Some(e) = offer.extensions {
        push_header(out, "Sec-WebSocket-Extensions", e);
    }
    for (n, v) in offer.extra {
        push_header(out, n, v);
    }
    out.extend_from_slice(b"\r\n");
}

/// A parsed and checked `101` response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    headers: Headers,
}

impl Response {
    /// The status code (101 once checked).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The header fields.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The subprotocol the server selected, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.headers.get("Sec-WebSocket-Protocol").map(str::trim)
    }

    /// The `Sec-WebSocket-Extensions` the server selected, if any.
    pub fn extensions(&self) -> Option<&str> {
        self.headers.get("Sec-WebSocket-Extensions")
    }
}

/// Parses and checks the server's answer to an upgrade request sent with `key`,
/// `offered_protocols` and whether extensions were offered.
///
/// Returns `Ok(None)` when more bytes are needed, `Ok(Some((response, head_len)))`
/// when the head is complete and valid (`buf[head_len..]` are the first frames).
pub fn parse_response(
    buf: &[u8],
    limits: &HeadLimits,
    key: &str,
    offered_protocols: &[String],
    offered_extensions: bool,
) -> Result<Option<(Response, usize)>, HandshakeError> {
    let mut raw = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut resp = httparse::Response::new(&mut raw);
    let n = match resp.parse(buf).map_err(map_parse_error)? {
        httparse::Status::Partial if buf.len() >= limits.max_size => {
            return Err(HandshakeError::HeadTooLarge);
        }
        httparse::Status::Partial => return Ok(None),
        httparse::Status::Complete(n) if n > limits.max_size => {
            return Err(HandshakeError::HeadTooLarge);
        }
        httparse::Status::Complete(n) => n,
    };
    let status = resp.code.unwrap_or(0);
    if status != 101 {
        return Err(HandshakeError::UnexpectedStatus(status));
    }
    let response = Response {
        status,
        headers: Headers::from_httparse(resp.headers),
    };
    let h = &response.headers;
    if !h.has_token("Upgrade", "websocket") {
        return Err(HandshakeError::MissingUpgradeWebsocket);
    }
    if !h.has_token("Connection", "upgrade") {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }
    let expected = accept_key(key.as_bytes());
    if h.get("Sec-WebSocket-Accept").map(str::trim) != Some(expected.as_str()) {
        return Err(HandshakeError::InvalidAccept);
    }
    if let Some(p) = response.protocol()
        && !offered_protocols.iter().any(|o| o == p)
    {
        return Err(HandshakeError::UnexpectedSubprotocol(p.to_owned()));
    }
    if let Some(e) = response.extensions()
        && !offered_extensions
    {
        return Err(HandshakeError::UnexpectedExtension(e.to_owned()));
    }
    Ok(Some((response, n)))
}

#[cfg(test)]
mod tests;
