//! Plain values passed between the loop and the application: the answer to an
//! upgrade request, how a message is delivered, a received message. (The HTTP
//! hook's request is in `responder.rs`, its response in `response.rs`.)

use crate::proto::MessageKind;

/// The answer to an upgrade request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Accept. `protocol: None` negotiates from the configured subprotocols;
    /// `headers` are added to the `101`.
    Accept {
        /// The subprotocol to select, or `None` to negotiate from the configuration.
        protocol: Option<String>,
        /// Extra response headers.
        headers: Vec<(String, String)>,
    },
    /// Refuse with an HTTP status and a plain-text body.
    Reject {
        /// HTTP status (400-599).
        status: u16,
        /// Response body.
        body: String,
    },
}

impl Decision {
    /// Accept with the configured subprotocol negotiation.
    pub fn accept() -> Decision {
        Decision::Accept {
            protocol: None,
            headers: Vec::new(),
        }
    }

    /// Refuse with `status` and `reason`.
    pub fn reject(status: u16, reason: impl Into<String>) -> Decision {
        Decision::Reject {
            status,
            body: reason.into(),
        }
    }
}

/// How a message is handed to the handler, chosen when it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Collect the whole message and call [`Handler::on_message`](crate::event::Handler::on_message) (a message that
    /// arrived in one frame is passed straight from the read buffer, no copy).
    Whole,
    /// Call [`Handler::on_chunk`](crate::event::Handler::on_chunk) with each piece as it arrives and
    /// [`Handler::on_message_end`](crate::event::Handler::on_message_end) at the end: any size in bounded memory.
    Stream,
}

/// A received message, borrowed from the loop's buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageRef<'a> {
    /// Text or binary.
    pub kind: MessageKind,
    /// The payload.
    pub data: &'a [u8],
}

impl<'a> MessageRef<'a> {
    /// The payload of a text message as `&str`. Text was validated as UTF-8 while it
    /// arrived; for a binary message this is `None` unless its bytes happen to be UTF-8.
    pub fn text(&self) -> Option<&'a str> {
        std::str::from_utf8(self.data).ok()
    }

    /// Parses the payload as JSON (gorilla's `ReadJSON`; the `json` feature). A
    /// payload that is not the JSON expected is [`Error::Json`](crate::Error::Json)
    /// for the handler to answer as it likes; the connection stays open.
    #[cfg(feature = "json")]
    pub fn json<T: serde::Deserialize<'a>>(&self) -> crate::Result<T> {
        crate::json::decode(self.data)
    }
}
