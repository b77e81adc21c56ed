//! The one error type of the crate, grouped by who is at fault.
//!
//! * the peer broke RFC 6455 ([`ProtocolError`], each with the close code we answer with),
//! * the peer sent a message larger than our read limit ([`Error::MessageTooBig`], 1009),
//! * the opening handshake failed ([`HandshakeError`], each with its HTTP status),
//! * the peer closed the connection ([`Error::Closed`], with its code and reason),
//! * the caller misused the API ([`UsageError`]),
//! * the peer went quiet and the connection is lost ([`Error::Lost`], 1006),
//! * a deadline of the caller's passed ([`Error::Timeout`]) or the transport failed
//!   ([`Error::Io`]).

use std::fmt;
use std::io;

use crate::proto::close_code::{CloseCode, CloseFrame};

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong on a WebSocket connection.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The transport failed.
    Io(io::Error),
    /// The peer violated RFC 6455; we close with [`ProtocolError::close_code`].
    Protocol(ProtocolError),
    /// A message exceeded the configured read limit; we close with 1009.
    MessageTooBig {
        /// The configured limit in bytes.
        limit: u64,
    },
    /// The opening handshake failed.
    Handshake(HandshakeError),
    /// The peer closed the connection (closing handshake), with its code and reason.
    /// A close frame without a payload is reported as [`CloseCode::NO_STATUS`].
    Closed(CloseFrame),
    /// The connection was already closed (by us, by the peer, or after an error);
    /// nothing more can be read or written.
    AlreadyClosed,
    /// A read or write deadline the caller set passed (blocking layer). Not
    /// terminal: the operation can be retried (see [`Error::is_terminal`]). A
    /// connection lost to its own timers is [`Error::Lost`].
    Timeout,
    /// The connection is over because the peer went quiet: it left our heartbeat
    /// ping unanswered, or our close (or, after our write failed, its own close)
    /// never came. Terminal; the connection ended as
    /// [`CloseCode::ABNORMAL`] (1006) or with the code of the close we sent.
    Lost(Lost),
    /// The caller used the API in a way RFC 6455 or this crate does not allow.
    Usage(UsageError),
    /// Event loop: the connection's output queue is over its limit; the message was
    /// not queued. Wait for `on_drain`, or drop the message.
    Backpressure {
        /// Bytes queued when the send was refused.
        buffered: usize,
        /// The configured limit.
        limit: usize,
    },
    /// JSON (the `json` feature): a value that could not be serialized (nothing was
    /// sent), or a received message that is not the JSON expected (the message was
    /// consumed; the connection stays open, as with gorilla's `ReadJSON`).
    #[cfg(feature = "json")]
    Json(serde_json::Error),
}

impl Error {
    /// The close code we send (or sent) to the peer because of this error, if any.
    pub fn close_code(&self) -> Option<CloseCode> {
        match self {
            Error::Protocol(p) => Some(p.close_code()),
            Error::MessageTooBig { .. } => Some(CloseCode::MESSAGE_TOO_BIG),
            Error::Closed(f) => Some(f.code),
            Error::Lost(_) => Some(CloseCode::ABNORMAL),
            _ => None,
        }
    }

    /// The HTTP status of a failed handshake, if this is one.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Error::Handshake(h) => Some(h.status()),
            _ => None,
        }
    }

    /// True if this error means the connection is finished for good: a close by
    /// either side, a protocol violation, a handshake failure, a connection lost to
    /// its timers ([`Error::Lost`]) or an I/O failure. Not terminal: a deadline of
    /// the caller's ([`Error::Timeout`]: the read or write can be retried), API
    /// misuse, back-pressure, and a JSON message that did not decode.
    pub fn is_terminal(&self) -> bool {
        #[cfg(feature = "json")]
        if matches!(self, Error::Json(_)) {
            return false;
        }
        !matches!(
            self,
            Error::Timeout | Error::Usage(_) | Error::Backpressure { .. }
        )
    }

    /// Converts this error into an `io::Error` (used by the `io::Read`/`io::Write`
    /// adapters). The original error is kept as the inner error so callers can
    /// downcast to [`Error`].
    pub fn into_io(self) -> io::Error {
        match self {
            Error::Io(e) => e,
            Error::Timeout => io::Error::new(io::ErrorKind::TimedOut, Error::Timeout),
            Error::Lost(_) => io::Error::new(io::ErrorKind::TimedOut, self),
            Error::Protocol(_) | Error::MessageTooBig { .. } => {
                io::Error::new(io::ErrorKind::InvalidData, self)
            }
            Error::Closed(_) | Error::AlreadyClosed => {
                io::Error::new(io::ErrorKind::ConnectionAborted, self)
            }
            other => io::Error::other(other),
        }
    }

    /// Maps an I/O error, turning read/write timeouts into [`Error::Timeout`].
    pub(crate) fn from_io_timeout(e: io::Error) -> Error {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::Timeout,
            _ => Error::Io(e),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Protocol(p) => write!(f, "protocol violation by peer: {p}"),
            Error::MessageTooBig { limit } => {
                write!(f, "message exceeds the read limit of {limit} bytes")
            }
            Error::Handshake(h) => write!(f, "handshake failed: {h}"),
            Error::Closed(c) => write!(f, "connection closed by peer: {c}"),
            Error::AlreadyClosed => f.write_str("connection already closed"),
            Error::Timeout => f.write_str("deadline exceeded"),
            Error::Lost(l) => write!(f, "connection lost: {l}"),
            Error::Usage(u) => write!(f, "API misuse: {u}"),
            Error::Backpressure { buffered, limit } => write!(
                f,
                "output queue full ({buffered} bytes queued, limit {limit})"
            ),
            #[cfg(feature = "json")]
            Error::Json(e) => write!(f, "JSON: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            #[cfg(feature = "json")]
            Error::Json(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        // An io::Error that wraps one of ours (from the Read/Write adapters) is unwrapped.
        if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            let kind = e.kind();
            match e.into_inner().map(|b| b.downcast::<Error>()) {
                Some(Ok(inner)) => return *inner,
                Some(Err(other)) => return Error::Io(io::Error::new(kind, other)),
                None => unreachable!("get_ref was Some"),
            }
        }
        Error::Io(e)
    }
}

impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Self {
        Error::Protocol(e)
    }
}

impl From<HandshakeError> for Error {
    fn from(e: HandshakeError) -> Self {
        Error::Handshake(e)
    }
}

impl From<UsageError> for Error {
    fn from(e: UsageError) -> Self {
        Error::Usage(e)
    }
}

/// Why a connection was lost to its own timers ([`Error::Lost`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lost {
    /// Our heartbeat ping got no answer (nothing at all was received) within
    /// `pong_timeout`.
    PongTimeout,
    /// Our close frame got no answer within `close_timeout`; or our write failed
    /// and the peer neither closed nor ended the transport within it.
    CloseTimeout,
}

impl fmt::Display for Lost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Lost::PongTimeout => "no answer to the heartbeat ping (pong timeout)",
            Lost::CloseTimeout => "no close frame from the peer (close timeout)",
        })
    }
}

/// A violation of RFC 6455 by the peer. Each variant names the rule that was broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// §5.1: a client sent an unmasked frame.
    UnmaskedFrameFromClient,
    /// §5.1: a server sent a masked frame.
    MaskedFrameFromServer,
    /// §5.2: RSV1-3 set without a negotiated extension that defines them.
    ReservedBitsSet(u8),
    /// §5.2: an opcode reserved for future use (3-7, 0xB-0xF).
    ReservedOpcode(u8),
    /// §5.2: a 64-bit payload length with the most significant bit set.
    InvalidPayloadLength,
    /// §5.5: a control frame with a payload longer than 125 bytes.
    ControlFrameTooBig,
    /// §5.5: a control frame with FIN clear.
    FragmentedControlFrame,
    /// §5.4: a continuation frame with no message in progress.
    UnexpectedContinuation,
    /// §5.4: a new text or binary frame while a fragmented message is in progress.
    ExpectedContinuation,
    /// §8.1: a text message (or close reason) that is not valid UTF-8. Closed with 1007.
    InvalidUtf8,
    /// §5.5.1: a close frame with a one-byte payload.
    InvalidClosePayload,
    /// §7.4: a close code that must not appear on the wire.
    InvalidCloseCode(u16),
    /// RFC 7692: a compressed message that does not inflate (only with the `deflate` feature).
    InvalidCompressedData,
}

impl ProtocolError {
    /// The close code we answer this violation with.
    pub fn close_code(self) -> CloseCode {
        match self {
            ProtocolError::InvalidUtf8 | ProtocolError::InvalidCompressedData => {
                CloseCode::INVALID_PAYLOAD
            }
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::UnmaskedFrameFromClient => f.write_str("client frame is not masked"),
            ProtocolError::MaskedFrameFromServer => f.write_str("server frame is masked"),
            ProtocolError::ReservedBitsSet(r) => {
                write!(f, "reserved bits {r:#05b} set without an extension")
            }
            ProtocolError::ReservedOpcode(o) => write!(f, "reserved opcode {o:#x}"),
            ProtocolError::InvalidPayloadLength => {
                f.write_str("64-bit payload length has its most significant bit set")
            }
            ProtocolError::ControlFrameTooBig => {
                f.write_str("control frame payload longer than 125 bytes")
            }
            ProtocolError::FragmentedControlFrame => f.write_str("fragmented control frame"),
            ProtocolError::UnexpectedContinuation => {
                f.write_str("continuation frame without a message in progress")
            }
            ProtocolError::ExpectedContinuation => {
                f.write_str("new data frame while a fragmented message is in progress")
            }
            ProtocolError::InvalidUtf8 => f.write_str("text is not valid UTF-8"),
            ProtocolError::InvalidClosePayload => f.write_str("close frame with 1-byte payload"),
            ProtocolError::InvalidCloseCode(c) => write!(f, "close code {c} is not allowed"),
            ProtocolError::InvalidCompressedData => f.write_str("compressed data is invalid"),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Why an opening handshake failed. [`HandshakeError::status`] is the HTTP status a
/// server answers with; on the client side it is the status we got (or 0 when the
/// response itself was at fault).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The HTTP head could not be parsed.
    MalformedHttp(String),
    /// The HTTP head exceeds the configured size or header count (431).
    HeadTooLarge,
    /// The request method is not GET (405).
    MethodNotGet,
    /// The request is not HTTP/1.1 (400).
    UnsupportedHttpVersion,
    /// No `Host` header (400).
    MissingHost,
    /// Neither `Upgrade: websocket` nor `Connection: upgrade`: a plain HTTP request (426).
    NotUpgrade,
    /// `Upgrade` lacks the `websocket` token (400).
    MissingUpgradeWebsocket,
    /// `Connection` lacks the `upgrade` token (400).
    MissingConnectionUpgrade,
    /// `Sec-WebSocket-Version` is absent or not 13 (426 with `Sec-WebSocket-Version: 13`).
    UnsupportedVersion,
    /// `Sec-WebSocket-Key` is absent or does not decode to 16 bytes (400).
    InvalidKey,
    /// The origin check refused the request (403).
    OriginRefused,
    /// The application refused the request with this status and reason.
    Refused(u16, String),
    /// Client: the server answered with a status other than 101.
    UnexpectedStatus(u16),
    /// Client: `Sec-WebSocket-Accept` is missing or wrong.
    InvalidAccept,
    /// Client: the server selected a subprotocol we did not offer.
    UnexpectedSubprotocol(String),
    /// Client: the server selected an extension we did not offer.
    UnexpectedExtension(String),
    /// Client: the server's answer to our extension offer is malformed or asks for
    /// something we cannot do (RFC 7692 §5).
    InvalidExtension(String),
    /// A bad `ws://` URL given to the dialer.
    InvalidUrl(String),
    /// The handshake did not finish within its deadline.
    Timeout,
    /// The peer closed the connection during the handshake.
    ConnectionClosed,
}

impl HandshakeError {
    /// The HTTP status that goes with this failure.
    pub fn status(&self) -> u16 {
        match self {
            HandshakeError::HeadTooLarge => 431,
            HandshakeError::MethodNotGet => 405,
            HandshakeError::NotUpgrade | HandshakeError::UnsupportedVersion => 426,
            HandshakeError::OriginRefused => 403,
            HandshakeError::Refused(s, _) => *s,
            HandshakeError::UnexpectedStatus(s) => *s,
            HandshakeError::Timeout => 408,
            HandshakeError::InvalidAccept
            | HandshakeError::UnexpectedSubprotocol(_)
            | HandshakeError::UnexpectedExtension(_)
            | HandshakeError::InvalidExtension(_)
            | HandshakeError::InvalidUrl(_)
            | HandshakeError::ConnectionClosed => 0,
            _ => 400,
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::MalformedHttp(m) => write!(f, "malformed HTTP head: {m}"),
            HandshakeError::HeadTooLarge => f.write_str("HTTP head too large"),
            HandshakeError::MethodNotGet => f.write_str("request method is not GET"),
            HandshakeError::UnsupportedHttpVersion => f.write_str("HTTP version is not 1.1"),
            HandshakeError::MissingHost => f.write_str("missing Host header"),
            HandshakeError::NotUpgrade => {
                f.write_str("not a WebSocket upgrade request (no Upgrade: websocket)")
            }
            HandshakeError::MissingUpgradeWebsocket => {
                f.write_str("'websocket' token not found in Upgrade header")
            }
            HandshakeError::MissingConnectionUpgrade => {
                f.write_str("'upgrade' token not found in Connection header")
            }
            HandshakeError::UnsupportedVersion => f.write_str("Sec-WebSocket-Version must be 13"),
            HandshakeError::InvalidKey => f.write_str("missing or invalid Sec-WebSocket-Key"),
            HandshakeError::OriginRefused => f.write_str("origin not allowed"),
            HandshakeError::Refused(s, r) => write!(f, "refused with {s}: {r}"),
            HandshakeError::UnexpectedStatus(s) => write!(f, "server answered HTTP {s}"),
            HandshakeError::InvalidAccept => f.write_str("missing or wrong Sec-WebSocket-Accept"),
            HandshakeError::UnexpectedSubprotocol(p) => {
                write!(f, "server chose subprotocol {p:?} that was not offered")
            }
            HandshakeError::UnexpectedExtension(e) => {
                write!(f, "server chose extension {e:?} that was not offered")
            }
            HandshakeError::InvalidExtension(e) => write!(f, "invalid extension answer: {e}"),
            HandshakeError::InvalidUrl(u) => write!(f, "invalid URL: {u}"),
            HandshakeError::Timeout => f.write_str("handshake timed out"),
            HandshakeError::ConnectionClosed => {
                f.write_str("connection closed during the handshake")
            }
        }
    }
}

impl std::error::Error for HandshakeError {}

/// A misuse of the API by the caller: nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UsageError {
    /// §5.5: control frame payloads are limited to 125 bytes.
    ControlPayloadTooBig(usize),
    /// The close reason does not fit a control frame (at most 123 bytes).
    CloseReasonTooLong(usize),
    /// This close code may not be sent (1005, 1006, 1015, or outside the allowed ranges).
    InvalidCloseCode(u16),
    /// A text message or fragment that is not valid UTF-8.
    InvalidUtf8,
    /// A data frame sent in the wrong order (continuation without a message, or a new
    /// message while a fragmented one is open).
    MessageSequence,
    /// The opcode is not a control opcode (for `write_control`).
    NotControl,
    /// A previous write failed part-way through a frame; the stream is no longer usable.
    BrokenWriter,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsageError::ControlPayloadTooBig(n) => {
                write!(f, "control payload of {n} bytes exceeds 125")
            }
            UsageError::CloseReasonTooLong(n) => write!(f, "close reason of {n} bytes exceeds 123"),
            UsageError::InvalidCloseCode(c) => write!(f, "close code {c} may not be sent"),
            UsageError::InvalidUtf8 => f.write_str("text is not valid UTF-8"),
            UsageError::MessageSequence => f.write_str("data frame out of message sequence"),
            UsageError::NotControl => f.write_str("not a control opcode"),
            UsageError::BrokenWriter => {
                f.write_str("an earlier write failed mid-frame; the connection is unusable")
            }
        }
    }
}

impl std::error::Error for UsageError {}
