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

use crate::proto::{CloseCode, CloseFrame};

pub use crate::proto::{HandshakeError, Lost, ProtocolError, UsageError};
use crate::proto::{RecvError, SendError};

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

impl From<RecvError> for Error {
    fn from(e: RecvError) -> Self {
        match e {
            RecvError::Protocol(p) => Error::Protocol(p),
            RecvError::MessageTooBig { limit } => Error::MessageTooBig { limit },
        }
    }
}

/// A send refused by the protocol core: the caller's misuse stays a usage error, a
/// closed connection is [`Error::AlreadyClosed`], and a stream broken by an earlier
/// failed write is the I/O error it is (`BrokenPipe`).
impl From<SendError> for Error {
    fn from(e: SendError) -> Self {
        match e {
            SendError::Usage(u) => Error::Usage(u),
            SendError::Closed => Error::AlreadyClosed,
            SendError::Broken => Error::Io(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "an earlier write failed part-way through a frame; nothing more can be sent",
            )),
        }
    }
}

impl From<Lost> for Error {
    fn from(e: Lost) -> Self {
        Error::Lost(e)
    }
}
