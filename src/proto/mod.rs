//! The protocol core: RFC 6455 without I/O.
//!
//! ```text
//!   HTTP head ──► handshake::{ServerHandshake, ClientHandshake} ──► Connection
//!   bytes from the peer ──► Connection::read ──► Event (message piece, ping, pong, close)
//!   sends, time ──► Connection ──► transmit() bytes, poll_timeout(), state()
//! ```
//!
//! Everything here takes bytes and gives bytes or events back. It never touches a
//! socket, a clock or a thread: the caller passes the time in (every deadline of a
//! [`Connection`] and of the handshakes is computed from the [`Time`]s it is
//! given: `std::time::Instant`s convert into them, and a microcontroller passes
//! its own clock) and moves the bytes, so the blocking layer, the event loop, a fuzzer or a
//! test that pairs a client with a server in memory all drive the same code.
//!
//! What a driver uses is re-exported here: [`Connection`] (the state machine of one
//! connection) with its [`ConnectionConfig`], [`Event`], [`State`] and errors
//! ([`RecvError`], [`SendError`], [`Lost`]); the opening handshake in [`handshake`];
//! permessage-deflate in `deflate` (feature `deflate`). The framing pieces
//! underneath ([`Decoder`], [`Encoder`], [`FrameHeader`], [`apply_mask`],
//! [`Utf8Validator`]) are public for fuzzers, benchmarks and probes.

mod close;
mod close_code;
mod connection;
mod decoder;
#[cfg(feature = "deflate")]
pub mod deflate;
mod encoder;
mod error;
mod frame;
pub mod handshake;
mod mask;
pub mod proxy;
#[cfg(feature = "raw")]
pub mod raw;
mod rng;
mod time;
pub mod tunnel;
mod utf8;

pub use close::{encode_close_payload, parse_close_payload};
pub use close_code::{CloseCode, CloseFrame, MAX_CLOSE_REASON};
pub use connection::{
    Chunk, Connection, ConnectionConfig, DirectFrame, End, Event, PreparedFrame, State,
    check_close, check_control, check_message,
};
#[cfg(feature = "handover")]
pub use connection::{ConnectionState, DeflateState, SnapshotError};
pub use decoder::{DataChunk, Decoder, FrameEvent};
pub use encoder::{EncodedHeader, Encoder};
pub use error::{HandshakeError, Lost, ProtocolError, RecvError, SendError, UsageError};
pub use frame::{FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode, RSV1, RSV2, RSV3};
pub use mask::{apply_mask, apply_mask_naive};
pub use rng::Randomness;
pub use time::{MillisTick, Time};
pub use utf8::{InvalidUtf8, Utf8Validator, incomplete_tail_len};

#[cfg(feature = "std")]
pub(crate) use decoder::DEFAULT_MAX_MESSAGE_SIZE;

/// How a configuration is shared by the connections made with it: `Arc` on every
/// target with atomic pointers (every target with `std`, Cortex-M3 and up), `Rc` on
/// the few without (`riscv32imc`, `thumbv6m`), where nothing can cross threads anyway.
#[cfg(target_has_atomic = "ptr")]
pub type Shared<T> = alloc::sync::Arc<T>;
/// How a configuration is shared by the connections made with it: `Arc` on every
/// target with atomic pointers (every target with `std`, Cortex-M3 and up), `Rc` on
/// the few without (`riscv32imc`, `thumbv6m`), where nothing can cross threads anyway.
#[cfg(not(target_has_atomic = "ptr"))]
pub type Shared<T> = alloc::rc::Rc<T>;

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
