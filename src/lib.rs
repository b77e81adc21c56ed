//! silverback: a WebSocket (RFC 6455) library on mio, written by hand.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod blocking;
pub mod error;
pub mod message;
pub mod proto;
pub mod url;

pub use blocking::{Conn, Dialer, MessageReader, MessageWriter, Upgrader};
pub use error::{Error, HandshakeError, ProtocolError, Result, UsageError};
pub use message::Message;
pub use proto::close::{CloseCode, CloseFrame};
pub use proto::frame::OpCode;
pub use proto::{MessageKind, Role};
