//! The protocol core's errors, grouped by who is at fault, with no I/O in them:
//!
//! * [`RecvError`]: what [`Connection::read`](super::Connection::read) reports when
//!   the peer broke RFC 6455 ([`ProtocolError`], each with the close code we
//!   answer) or sent a message over the read limit (1009);
//! * [`SendError`]: why a send was refused: the caller's misuse ([`UsageError`];
//!   nothing was sent), a connection that is closing or over, or one whose earlier
//!   write failed part-way;
//! * [`Lost`]: the terminal outcome of the connection's timers (the peer went quiet);
//! * [`HandshakeError`]: why an opening handshake failed, with its HTTP status.
//!
//! The IO layers wrap these in [`crate::Error`] beside their own (I/O, deadlines,
//! back-pressure).

use alloc::string::String;
use core::fmt;

use super::close_code::CloseCode;

/// What [`Connection::read`](super::Connection::read) (and the decoder) report: the
/// connection has failed, and the close frame with [`close_code`](Self::close_code)
/// is queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvError {
    /// The peer violated RFC 6455.
    Protocol(ProtocolError),
    /// A message exceeded the read limit (its header announced it, or it inflated
    /// past it); closed with 1009.
    MessageTooBig {
        /// The read limit in bytes.
        limit: u64,
    },
}

impl RecvError {
    /// The close code we answer with.
    pub fn close_code(self) -> CloseCode {
        match self {
            RecvError::Protocol(p) => p.close_code(),
            RecvError::MessageTooBig { .. } => CloseCode::MESSAGE_TOO_BIG,
        }
    }
}

impl From<ProtocolError> for RecvError {
    fn from(e: ProtocolError) -> Self {
        RecvError::Protocol(e)
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Protocol(p) => write!(f, "protocol violation by peer: {p}"),
            RecvError::MessageTooBig { limit } => {
                write!(f, "message exceeds the read limit of {limit} bytes")
            }
        }
    }
}

impl core::error::Error for RecvError {}

/// Why a send (a message, a fragment, a control frame) was refused. Nothing was
/// queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The caller asked for something RFC 6455 or this crate does not allow.
    Usage(UsageError),
    /// A close frame was sent (or the connection is over): nothing more may go out.
    Closed,
    /// An earlier transmission failed part-way through a frame (reported with
    /// [`Connection::handle_write_failure`](super::Connection::handle_write_failure)),
    /// or the compressor lost its state: the stream cannot be continued.
    Broken,
}

impl From<UsageError> for SendError {
    fn from(e: UsageError) -> Self {
        SendError::Usage(e)
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Usage(u) => write!(f, "API misuse: {u}"),
            SendError::Closed => f.write_str("connection already closed"),
            SendError::Broken => f.write_str(
                "an earlier write failed part-way through a frame; nothing more can be sent",
            ),
        }
    }
}

impl core::error::Error for SendError {}

/// Why a connection was lost to its own timers ([`Connection::handle_timeout`](super::Connection::handle_timeout); `Error::Lost` in the IO layers).
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

impl core::error::Error for Lost {}

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

impl core::error::Error for ProtocolError {}

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
    /// Client: the forward proxy did not open the tunnel (the error names the
    /// step of the proxy's handshake).
    Proxy(crate::proto::tunnel::TunnelError),
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
            | HandshakeError::ConnectionClosed
            | HandshakeError::Proxy(_) => 0,
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
            HandshakeError::Proxy(e) => write!(f, "proxy: {e}"),
        }
    }
}

impl core::error::Error for HandshakeError {}

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
        }
    }
}

impl core::error::Error for UsageError {}
