//! A message encoded once and sent to many connections.

use std::sync::Arc;

use crate::error::Result;
use crate::proto::{MessageKind, PreparedFrame};

/// A message encoded once and sent to many connections (gorilla's
/// `PreparedMessage`): the server frame is built at creation (by the protocol core,
/// [`PreparedFrame`]); connections copy it into their output queues without
/// re-encoding. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Prepared(pub(crate) Arc<PreparedFrame>);

impl Prepared {
    /// Prepares a message. Text must be UTF-8.
    pub fn new(kind: MessageKind, payload: &[u8]) -> Result<Prepared> {
        Ok(Prepared(Arc::new(PreparedFrame::new(kind, payload)?)))
    }

    /// A prepared text message.
    pub fn text(text: &str) -> Prepared {
        Self::new(MessageKind::Text, text.as_bytes()).unwrap_or_else(|_| unreachable!())
    }

    /// A prepared binary message.
    pub fn binary(data: &[u8]) -> Prepared {
        Self::new(MessageKind::Binary, data).unwrap_or_else(|_| unreachable!())
    }

    /// A prepared JSON text message (the `json` feature): serialized once, sent to
    /// many.
    #[cfg(feature = "json")]
    pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> Result<Prepared> {
        let text = crate::json::encode(value)?;
        Self::new(MessageKind::Text, &text)
    }

    /// The message kind.
    pub fn kind(&self) -> MessageKind {
        self.0.kind()
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        self.0.payload()
    }

    /// How many times this message was compressed for the connections it reached
    /// (see [`PreparedFrame::compressions`]): once per compression setting for
    /// subscribers without context takeover, once per subscriber with it.
    pub fn compressions(&self) -> u64 {
        self.0.compressions()
    }
}
