//! JSON messages (the `json` feature): gorilla's `WriteJSON` and `ReadJSON`.
//!
//! A value is serialized into a text message before anything is sent, so a value
//! that cannot be serialized is an [`Error::Json`] with nothing on the wire. A
//! received message that is not the JSON expected is an [`Error::Json`] for the
//! caller, and the connection stays open (gorilla's behaviour): the peer sent a
//! valid WebSocket message, only not the one the application wanted.
//!
//! Where the methods are: [`Conn::write_json`](crate::Conn::write_json) /
//! [`read_json`](crate::Conn::read_json) (and on the split halves),
//! [`Message::json`](crate::Message::json), and on the event loop
//! [`Ctx::send_json`](crate::event::Ctx::send_json),
//! [`Sender::send_json`](crate::event::Sender::send_json),
//! [`MessageRef::json`](crate::event::MessageRef::json) and
//! [`Prepared::json`](crate::event::Prepared::json).

use serde::Serialize;
use serde::de::Deserialize;

use crate::error::{Error, Result};

/// Serializes `value` as JSON text.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(Error::Json)
}

/// Parses a received payload as JSON.
pub(crate) fn decode<'a, T: Deserialize<'a>>(data: &'a [u8]) -> Result<T> {
    serde_json::from_slice(data).map_err(Error::Json)
}
