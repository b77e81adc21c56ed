//! silverback: a WebSocket (RFC 6455) library on mio, written by hand.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod error;
pub mod proto;

pub use error::{Error, HandshakeError, ProtocolError, Result, UsageError};
