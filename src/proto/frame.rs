//! Frame header codec (RFC 6455 §5.2): FIN, RSV1-3, opcode, mask key and the
//! 7/16/64-bit payload length, decoded from and encoded into caller-owned bytes.
//!
//! Never allocates, never touches the payload. "Need more bytes" is `Ok(None)`,
//! not an error.

use super::error::ProtocolError;

/// Longest possible frame header: 2 + 8 (64-bit length) + 4 (mask key).
pub const MAX_HEADER_LEN: usize = 14;

/// Largest payload a control frame may carry (§5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// RSV1 bit as stored in [`FrameHeader::rsv`] (used by permessage-deflate).
pub const RSV1: u8 = 0b100;
/// RSV2 bit as stored in [`FrameHeader::rsv`].
pub const RSV2: u8 = 0b010;
/// RSV3 bit as stored in [`FrameHeader::rsv`].
pub const RSV3: u8 = 0b001;

/// A frame opcode (§5.2). Reserved opcodes are not representable: decoding one is
/// a [`ProtocolError::ReservedOpcode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// 0x0: continues a fragmented message.
    Continuation,
    /// 0x1: first frame of a text message.
    Text,
    /// 0x2: first frame of a binary message.
    Binary,
    /// 0x8: connection close.
    Close,
    /// 0x9: ping.
    Ping,
    /// 0xA: pong.
    Pong,
}

impl OpCode {
    /// Parses the 4-bit opcode field.
    pub fn from_u8(v: u8) -> Result<OpCode, ProtocolError> {
        Ok(match v {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            other => return Err(ProtocolError::ReservedOpcode(other)),
        })
    }

    /// The 4-bit wire value.
    pub fn as_u8(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// Close, Ping and Pong are control opcodes (§5.5).
    pub fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: this is the final frame of a message.
    pub fin: bool,
    /// RSV1-3 as a 3-bit value (`RSV1 = 0b100`).
    pub rsv: u8,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, present on frames sent by a client.
    pub mask: Option<[u8; 4]>,
    /// Payload length in bytes.
    pub payload_len: u64,
}

impl FrameHeader {
    /// Decodes a header from the start of `buf`.
    ///
    /// Returns `Ok(Some((header, header_len)))`, or `Ok(None)` when `buf` does not yet
    /// hold the whole header. Non-minimal length encodings are accepted (the RFC asks
    /// senders for the minimal form but does not make receivers reject others); a
    /// 64-bit length with its top bit set is refused (§5.2), as is a reserved opcode.
    /// Semantic rules (control frame size, masking direction, RSV bits) are checked by
    /// the [`Decoder`](super::Decoder), which knows the role and extensions.
    #[inline]
    pub fn decode(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
        let (b0, b1) = match buf {
            [b0, b1, ..] => (*b0, *b1),
            _ => return Ok(None),
        };
        let fin = b0 & 0x80 != 0;
        let rsv = (b0 >> 4) & 0x07;
        let opcode = OpCode::from_u8(b0 & 0x0F)?;
        let masked = b1 & 0x80 != 0;
        let (payload_len, mut pos) = match b1 & 0x7F {
            126 => match buf.get(2..4) {
                Some(&[a, b]) => (u64::from(u16::from_be_bytes([a, b])), 4),
                _ => return Ok(None),
            },
            127 => match buf.get(2..10) {
                Some(b) => {
                    let mut arr = [0u8; 8];
                    arr.copy_from_slice(b);
                    let len = u64::from_be_bytes(arr);
                    if len >> 63 != 0 {
                        return Err(ProtocolError::InvalidPayloadLength);
                    }
                    (len, 10)
                }
                None => return Ok(None),
            },
            n => (u64::from(n), 2),
        };
        let mask = if masked {
            match buf.get(pos..pos + 4) {
                Some(&[a, b, c, d]) => {
                    pos += 4;
                    Some([a, b, c, d])
                }
                _ => return Ok(None),
            }
        } else {
            None
        };
        Ok(Some((
            FrameHeader {
                fin,
                rsv,
                opcode,
                mask,
                payload_len,
            },
            pos,
        )))
    }

    /// Number of bytes [`encode`](Self::encode) writes for this header (minimal length form).
    #[inline]
    pub fn encoded_len(&self) -> usize {
        let len = match self.payload_len {
            0..=125 => 2,
            126..=0xFFFF => 4,
            _ => 10,
        };
        if self.mask.is_some() { len + 4 } else { len }
    }

    /// Encodes the header into `dst` with the minimal length form and returns the
    /// number of bytes written (2 to 14).
    #[inline]
    pub fn encode(&self, dst: &mut [u8; MAX_HEADER_LEN]) -> usize {
        dst[0] = (u8::from(self.fin) << 7) | ((self.rsv & 0x07) << 4) | self.opcode.as_u8();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut pos = match self.payload_len {
            n @ 0..=125 => {
                dst[1] = mask_bit | n as u8;
                2
            }
            n @ 126..=0xFFFF => {
                dst[1] = mask_bit | 126;
                dst[2..4].copy_from_slice(&(n as u16).to_be_bytes());
                4
            }
            n => {
                dst[1] = mask_bit | 127;
                dst[2..10].copy_from_slice(&n.to_be_bytes());
                10
            }
        };
        if let Some(key) = self.mask {
            dst[pos..pos + 4].copy_from_slice(&key);
            pos += 4;
        }
        pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table of `(name, bytes, expected)` rows, each its own `#[test]`, as httparse does.
    macro_rules! decode_cases {
        ($($name:ident: $bytes:expr => $expected:expr;)*) => {$(
            #[test]
            fn $name() {
                let bytes: &[u8] = &$bytes;
                assert_eq!(FrameHeader::decode(bytes), $expected);
            }
        )*};
    }

    fn hdr(fin: bool, opcode: OpCode, mask: Option<[u8; 4]>, len: u64) -> FrameHeader {
        FrameHeader {
            fin,
            rsv: 0,
            opcode,
            mask,
            payload_len: len,
        }
    }

    decode_cases! {
        // RFC 6455 §5.7 examples.
        rfc_unmasked_hello: [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
            => Ok(Some((hdr(true, OpCode::Text, None, 5), 2)));
        rfc_masked_hello: [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
            => Ok(Some((hdr(true, OpCode::Text, Some([0x37, 0xfa, 0x21, 0x3d]), 5), 6)));
        rfc_fragment_hel: [0x01, 0x03, 0x48, 0x65, 0x6c]
            => Ok(Some((hdr(false, OpCode::Text, None, 3), 2)));
        rfc_fragment_lo: [0x80, 0x02, 0x6c, 0x6f]
            => Ok(Some((hdr(true, OpCode::Continuation, None, 2), 2)));
        rfc_unmasked_ping: [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
            => Ok(Some((hdr(true, OpCode::Ping, None, 5), 2)));
        rfc_masked_pong: [0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
            => Ok(Some((hdr(true, OpCode::Pong, Some([0x37, 0xfa, 0x21, 0x3d]), 5), 6)));
        rfc_256_bytes_binary: [0x82, 0x7E, 0x01, 0x00]
            => Ok(Some((hdr(true, OpCode::Binary, None, 256), 4)));
        rfc_64k_binary: [0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]
            => Ok(Some((hdr(true, OpCode::Binary, None, 65536), 10)));
        // Truncations at every length form.
        empty: [] => Ok(None);
        one_byte: [0x81] => Ok(None);
        len16_truncated: [0x82, 0x7E, 0x01] => Ok(None);
        len64_truncated: [0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00] => Ok(None);
        mask_truncated: [0x81, 0x85, 0x37, 0xfa, 0x21] => Ok(None);
        // Non-minimal lengths are accepted.
        non_minimal_16: [0x82, 0x7E, 0x00, 0x05] => Ok(Some((hdr(true, OpCode::Binary, None, 5), 4)));
        non_minimal_64: [0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0, 0x05]
            => Ok(Some((hdr(true, OpCode::Binary, None, 5), 10)));
        // Top bit of a 64-bit length.
        len64_top_bit: [0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0] => Err(ProtocolError::InvalidPayloadLength);
        reserved_opcode_3: [0x83, 0x00] => Err(ProtocolError::ReservedOpcode(3));
        reserved_opcode_b: [0x8B, 0x00] => Err(ProtocolError::ReservedOpcode(0xB));
        rsv_bits_kept: [0xF1, 0x00] => Ok(Some((FrameHeader { rsv: 0b111, ..hdr(true, OpCode::Text, None, 0) }, 2)));
    }

    #[test]
    fn encode_matches_rfc_examples() {
        let mut out = [0u8; MAX_HEADER_LEN];
        let n = hdr(true, OpCode::Text, Some([0x37, 0xfa, 0x21, 0x3d]), 5).encode(&mut out);
        assert_eq!(&out[..n], &[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d]);
        let n = hdr(true, OpCode::Binary, None, 256).encode(&mut out);
        assert_eq!(&out[..n], &[0x82, 0x7E, 0x01, 0x00]);
        let n = hdr(true, OpCode::Binary, None, 65536).encode(&mut out);
        assert_eq!(&out[..n], &[0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]);
        let n = hdr(false, OpCode::Text, None, 3).encode(&mut out);
        assert_eq!(&out[..n], &[0x01, 0x03]);
    }

    #[test]
    fn encoded_len_agrees_with_encode() {
        let mut out = [0u8; MAX_HEADER_LEN];
        for len in [0u64, 125, 126, 65535, 65536, u64::MAX >> 1] {
            for mask in [None, Some([1, 2, 3, 4])] {
                let h = hdr(true, OpCode::Binary, mask, len);
                assert_eq!(h.encode(&mut out), h.encoded_len());
            }
        }
    }
}
