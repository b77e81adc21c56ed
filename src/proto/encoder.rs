//! The write side of the connection state machine: which frames may be sent, in
//! which order, and their headers (with a fresh random mask key for clients).
//!
//! The framing rules of sending live here once: control frames ≤ 125 bytes and
//! never fragmented, continuation only inside a message, a new message only outside
//! one, clients mask and servers do not. Whether anything may be sent at all (a
//! close went out, the connection is over) is the connection's lifecycle
//! ([`Connection`](super::Connection)), not the encoder's.

use super::error::UsageError;
use crate::proto::Role;
use crate::proto::close::encode_close_payload;
use crate::proto::close_code::CloseCode;
use crate::proto::frame::{FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode, RSV1};
use crate::proto::mask::apply_mask;
use crate::proto::rng::Randomness;
use alloc::vec::Vec;

/// An encoded frame header, ready to be written.
#[derive(Debug, Clone, Copy)]
pub struct EncodedHeader {
    bytes: [u8; MAX_HEADER_LEN],
    len: u8,
    /// The masking key the payload must be masked with (clients only).
    pub mask: Option<[u8; 4]>,
}

impl EncodedHeader {
    /// The header bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// The send state machine for one connection, in one role.
///
/// ```
/// use silverback::proto::{Encoder, OpCode, Role};
///
/// let mut out = Vec::new();
/// let mut enc = Encoder::new(Role::Server);
/// enc.encode(OpCode::Text, true, b"Hello", &mut out)?;
/// assert_eq!(out, [0x81, 0x05, b'H', b'e', b'l', b'l', b'o']); // RFC 6455 §5.7
/// // The rules are enforced: no control frame over 125 bytes.
/// assert!(enc.encode(OpCode::Ping, true, &[0; 126], &mut out).is_err());
/// # Ok::<(), silverback::UsageError>(())
/// ```
#[derive(Debug)]
pub struct Encoder {
    role: Role,
    msg_open: bool,
    rng: Randomness,
}

impl Encoder {
    /// An encoder for an endpoint playing `role`; a client's mask keys come from the
    /// thread-local generator.
    #[cfg(feature = "std")]
    pub fn new(role: Role) -> Self {
        Self::with_randomness(role, Randomness::thread())
    }

    /// An encoder whose mask keys (client role) come from `rng`.
    pub fn with_randomness(role: Role, rng: Randomness) -> Self {
        Encoder {
            role,
            msg_open: false,
            rng,
        }
    }

    /// The role this encoder plays.
    pub fn role(&self) -> Role {
        self.role
    }

    /// True while a fragmented message is open (a non-final data frame was sent).
    pub fn in_message(&self) -> bool {
        self.msg_open
    }

    /// Checks that a frame may be sent now, without changing the state: the error
    /// [`header`](Self::header) would return.
    pub fn check(&self, opcode: OpCode, fin: bool, payload_len: u64) -> Result<(), UsageError> {
        if opcode.is_control() {
            if payload_len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(UsageError::ControlPayloadTooBig(payload_len as usize));
            }
            if !fin {
                return Err(UsageError::MessageSequence);
            }
        } else if (opcode == OpCode::Continuation) != self.msg_open {
            return Err(UsageError::MessageSequence);
        }
        Ok(())
    }

    /// Checks that a frame may be sent now, advances the state, and encodes its header.
    ///
    /// `compressed` sets RSV1 (only meaningful on the first frame of a message with
    /// permessage-deflate negotiated). Errors leave the state unchanged.
    pub fn header(
        &mut self,
        opcode: OpCode,
        fin: bool,
        compressed: bool,
        payload_len: u64,
    ) -> Result<EncodedHeader, UsageError> {
        self.check(opcode, fin, payload_len)?;
        if !opcode.is_control() {
            self.msg_open = !fin;
        }
        Ok(self.encode_header(opcode, fin, compressed && !opcode.is_control(), payload_len))
    }

    fn encode_header(
        &mut self,
        opcode: OpCode,
        fin: bool,
        rsv1: bool,
        payload_len: u64,
    ) -> EncodedHeader {
        let mask = match self.role {
            Role::Client => Some(self.rng.mask_key()),
            Role::Server => None,
        };
        let header = FrameHeader {
            fin,
            rsv: if rsv1 { RSV1 } else { 0 },
            opcode,
            mask,
            payload_len,
        };
        let mut bytes = [0u8; MAX_HEADER_LEN];
        let len = header.encode(&mut bytes) as u8;
        EncodedHeader { bytes, len, mask }
    }

    /// Appends a whole frame (header and, for clients, masked payload) to `out`.
    pub fn encode(
        &mut self,
        opcode: OpCode,
        fin: bool,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), UsageError> {
        let h = self.header(opcode, fin, false, payload.len() as u64)?;
        out.reserve(h.as_bytes().len() + payload.len());
        out.extend_from_slice(h.as_bytes());
        let start = out.len();
        out.extend_from_slice(payload);
        if let Some(key) = h.mask {
            apply_mask(&mut out[start..], key, 0);
        }
        Ok(())
    }

    /// Appends a close frame with `close` (or an empty payload) to `out`.
    pub fn encode_close(
        &mut self,
        close: Option<(CloseCode, &str)>,
        out: &mut Vec<u8>,
    ) -> Result<(), UsageError> {
        let mut payload = [0u8; 125];
        let n = encode_close_payload(close, &mut payload)?;
        self.encode(OpCode::Close, true, &payload[..n], out)
    }
}
