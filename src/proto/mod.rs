//! The protocol core: RFC 6455 without I/O.
//!
//! ```text
//!   bytes from the peer ──► Decoder ──► FrameEvent (Data / Ping / Pong / Close)
//!   your frames ──► Encoder ──► header bytes (+ masked payload) ──► to the peer
//!   HTTP head ──► handshake::parse_request / parse_response ──► Request / Response
//! ```
//!
//! Everything here takes bytes and gives bytes or events back. It never touches a
//! socket, a clock or a thread, so it can be driven by the blocking layer, the event
//! loop, a fuzzer or a test that pairs a client with a server in memory. Time, where
//! it matters (deadlines, heartbeats), belongs to the IO layers.

pub mod close;
pub mod close_code;
pub mod connection;
pub mod decoder;
#[cfg(feature = "deflate")]
pub mod deflate;
pub mod encoder;
pub mod frame;
pub mod handshake;
pub mod mask;
#[cfg(feature = "raw")]
pub mod raw;
pub mod rng;
pub mod utf8;

pub use close::{CloseCode, CloseFrame};
pub use connection::{Chunk, Connection, ConnectionConfig, DirectFrame, Event};
pub use decoder::{DataChunk, Decoder, FrameEvent};
pub use encoder::{EncodedHeader, Encoder};
pub use frame::{FrameHeader, OpCode};
pub use rng::Randomness;

/// Which end of the connection an endpoint is. Clients mask what they send and
/// expect unmasked frames; servers the reverse (RFC 6455 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The endpoint that sent the upgrade request.
    Client,
    /// The endpoint that accepted it.
    Server,
}

/// The type of a data message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// UTF-8 text (opcode 0x1).
    Text,
    /// Binary data (opcode 0x2).
    Binary,
}

impl MessageKind {
    /// The opcode of the first frame of a message of this kind.
    pub fn opcode(self) -> OpCode {
        match self {
            MessageKind::Text => OpCode::Text,
            MessageKind::Binary => OpCode::Binary,
        }
    }
}
