//! Frames as bytes, legal or not: for probing and fuzzing other implementations.
//!
//! **Nothing here checks RFC 6455.** [`RawFrame`] writes whatever it is told: any
//! opcode (reserved ones too), any RSV bits, a mask or none whatever the role, a
//! length in a non-minimal form or one that lies about the payload (up to 2^64 − 1,
//! whose top bit the RFC forbids), control frames that are fragmented or longer than
//! 125 bytes, close frames with any code and any reason bytes. The normal API
//! ([`Encoder`](super::Encoder), [`Connection`](super::Connection), the IO layers)
//! cannot send any of that; this module exists only with the `raw` feature (which
//! `probe` turns on), so a build that does not ask for it cannot either.
//!
//! [`RawFrame::parse`] reads frames as leniently as they are written here, for
//! showing what a peer sent as evidence; [`chunks`] cuts bytes the way a prober
//! wants them on the wire (one write, every n bytes, at chosen offsets).
//!
//! ```
//! use silverback::proto::raw::{LenForm, RawFrame};
//!
//! // A masked ping with 200 bytes of payload (control frames may carry 125 at most),
//! // its length written in the 64-bit form (the minimal form is the 16-bit one).
//! let bytes = RawFrame::ping(vec![b'x'; 200])
//!     .masked([1, 2, 3, 4])
//!     .len_form(LenForm::Len64)
//!     .encode();
//! assert_eq!(bytes[0], 0x89);
//! assert_eq!(bytes[1], 0x80 | 127);
//! let (back, used) = RawFrame::parse(&bytes).unwrap();
//! assert_eq!(used, bytes.len());
//! assert_eq!(back.payload, vec![b'x'; 200]);
//! ```

use super::mask::apply_mask;
use alloc::{vec, vec::Vec};

/// How the payload length is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LenForm {
    /// The shortest form for the length (the only one the RFC allows).
    #[default]
    Minimal,
    /// Always the 7-bit field (a length above 125 is cut to its low 7 bits; 126 and
    /// 127 then announce an extended length that does not follow).
    Len7,
    /// Always the 16-bit form (non-minimal below 126; cut to 16 bits above 65,535).
    Len16,
    /// Always the 64-bit form (non-minimal below 65,536).
    Len64,
}

/// One frame, exactly as it will be written. Build it with a constructor, change
/// any part with the setters, then [`encode`](Self::encode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    /// The FIN bit.
    pub fin: bool,
    /// RSV1-3 as the low three bits (`0b100` is RSV1); higher bits are ignored.
    pub rsv: u8,
    /// The opcode as the low four bits (0x3-0x7 and 0xB-0xF are reserved).
    pub opcode: u8,
    /// The masking key, if the frame is masked (clients must mask, servers must not).
    pub mask: Option<[u8; 4]>,
    /// The length written in the header, when it should differ from the payload's.
    pub declared_len: Option<u64>,
    /// How the length is written.
    pub len_form: LenForm,
    /// The payload (unmasked; [`encode`](Self::encode) masks it).
    pub payload: Vec<u8>,
}

impl RawFrame {
    /// A final, unmasked frame with `opcode` (low four bits) and `payload`.
    pub fn new(opcode: u8, payload: impl Into<Vec<u8>>) -> RawFrame {
        RawFrame {
            fin: true,
            rsv: 0,
            opcode: opcode & 0x0F,
            mask: None,
            declared_len: None,
            len_form: LenForm::Minimal,
            payload: payload.into(),
        }
    }

    /// A continuation frame (opcode 0x0).
    pub fn continuation(payload: impl Into<Vec<u8>>) -> RawFrame {
        RawFrame::new(0x0, payload)
    }

    /// A text frame (opcode 0x1); the bytes need not be UTF-8.
    pub fn text(payload: impl Into<Vec<u8>>) -> RawFrame {
        RawFrame::new(0x1, payload)
    }

    /// A binary frame (opcode 0x2).
    pub fn binary(payload: impl Into<Vec<u8>>) -> RawFrame {
        RawFrame::new(0x2, payload)
    }

    /// A close frame (opcode 0x8) with a raw payload (empty, one byte, anything).
    pub fn close_raw(payload: impl Into<Vec<u8>>) -> RawFrame {
        RawFrame::new(0x8, payload)
    }

    /// A close frame with `code` (any value, 0-65535) and `reason` (any bytes).
    pub fn close(code: u16, reason: &[u8]) -> RawFrame {
        let mut p = code.to_be_bytes().to_vec();
        p.extend_from_slice(reason);
        RawFrame::close_raw(p)
    }

    /// A ping (opcode 0x9).
    pub fn ping(payload: impl Into<Vec<u8>>) -> RawFrame {
        RawFrame::new(0x9, payload)
    }

    /// A pong (opcode 0xA).
    pub fn pong(payload: impl Into<Vec<u8>>) -> RawFrame {
        RawFrame::new(0xA, payload)
    }

    /// Sets the FIN bit.
    pub fn fin(mut self, fin: bool) -> RawFrame {
        self.fin = fin;
        self
    }

    /// Sets RSV1-3 (low three bits of `rsv`).
    pub fn rsv(mut self, rsv: u8) -> RawFrame {
        self.rsv = rsv & 0b111;
        self
    }

    /// Sets the opcode (low four bits).
    pub fn opcode(mut self, opcode: u8) -> RawFrame {
        self.opcode = opcode & 0x0F;
        self
    }

    /// Masks the frame with `key` (as a client must).
    pub fn masked(mut self, key: [u8; 4]) -> RawFrame {
        self.mask = Some(key);
        self
    }

    /// Sends the frame unmasked (as a server must).
    pub fn unmasked(mut self) -> RawFrame {
        self.mask = None;
        self
    }

    /// Writes `len` as the payload length whatever the payload is (more than is
    /// sent, less, 2^63 ...).
    pub fn declared_len(mut self, len: u64) -> RawFrame {
        self.declared_len = Some(len);
        self
    }

    /// Writes the length in `form`.
    pub fn len_form(mut self, form: LenForm) -> RawFrame {
        self.len_form = form;
        self
    }

    /// The frame's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(14 + self.payload.len());
        self.encode_into(&mut out);
        out
    }

    /// Appends the frame's bytes to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let len = self.declared_len.unwrap_or(self.payload.len() as u64);
        out.push(u8::from(self.fin) << 7 | (self.rsv & 0b111) << 4 | (self.opcode & 0x0F));
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let form = match self.len_form {
            LenForm::Minimal if len < 126 => LenForm::Len7,
            LenForm::Minimal if len <= 0xFFFF => LenForm::Len16,
            LenForm::Minimal => LenForm::Len64,
            f => f,
        };
        match form {
            LenForm::Len7 | LenForm::Minimal => out.push(mask_bit | (len as u8 & 0x7F)),
            LenForm::Len16 => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            LenForm::Len64 => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&len.to_be_bytes());
            }
        }
        let start = out.len();
        match self.mask {
            Some(key) => {
                out.extend_from_slice(&key);
                out.extend_from_slice(&self.payload);
                apply_mask(&mut out[start + 4..], key, 0);
            }
            None => out.extend_from_slice(&self.payload),
        }
    }

    /// Reads one frame from the front of `buf` as leniently as frames are written
    /// here (any opcode, RSV bits, length form, masked or not). Returns the frame,
    /// unmasked, and the bytes it took; `None` until the whole frame is in `buf`.
    /// `declared_len` is set when the length was not written in the minimal form.
    pub fn parse(buf: &[u8]) -> Option<(RawFrame, usize)> {
        let (&b0, rest) = buf.split_first()?;
        let (&b1, _) = rest.split_first()?;
        let masked = b1 & 0x80 != 0;
        let (len, form, mut pos) = match b1 & 0x7F {
            126 => (
                u64::from(u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?)),
                LenForm::Len16,
                4,
            ),
            127 => (
                u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?),
                LenForm::Len64,
                10,
            ),
            n => (u64::from(n), LenForm::Len7, 2),
        };
        let mask = if masked {
            let k: [u8; 4] = buf.get(pos..pos + 4)?.try_into().ok()?;
            pos += 4;
            Some(k)
        } else {
            None
        };
        let n = usize::try_from(len).ok()?;
        let end = pos.checked_add(n)?;
        let mut payload = buf.get(pos..end)?.to_vec();
        if let Some(key) = mask {
            apply_mask(&mut payload, key, 0);
        }
        let minimal = match form {
            LenForm::Len16 => len >= 126,
            LenForm::Len64 => len > 0xFFFF,
            _ => true,
        };
        let frame = RawFrame {
            fin: b0 & 0x80 != 0,
            rsv: (b0 >> 4) & 0b111,
            opcode: b0 & 0x0F,
            mask,
            declared_len: None,
            len_form: if minimal { LenForm::Minimal } else { form },
            payload,
        };
        Some((frame, end))
    }
}

/// `payload` as a message of `opcode` cut into frames at `cuts` (payload offsets,
/// ascending; out-of-range ones are ignored): the first frame has `opcode`, the
/// others are continuations, the last has FIN. Empty pieces are kept (two equal
/// cuts make an empty frame). Invalid UTF-8 split anywhere, a code point cut in two
/// across frames: choose the cuts.
pub fn fragments(opcode: u8, payload: &[u8], cuts: &[usize]) -> Vec<RawFrame> {
    let mut frames = Vec::new();
    let mut start = 0;
    for &c in cuts.iter().filter(|&&c| c <= payload.len()) {
        let c = c.max(start);
        frames.push(RawFrame::continuation(&payload[start..c]).fin(false));
        start = c;
    }
    frames.push(RawFrame::continuation(&payload[start..]));
    frames[0].opcode = opcode & 0x0F;
    frames
}

/// How bytes are cut into writes on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Chunking {
    /// One write.
    #[default]
    Whole,
    /// Writes of `n` bytes (1: byte by byte).
    Every(usize),
    /// Cut at these offsets (ascending; out-of-range ones are ignored).
    At(Vec<usize>),
}

/// `bytes` cut as `chunking` says (never an empty piece, unless `bytes` is empty).
pub fn chunks<'a>(bytes: &'a [u8], chunking: &Chunking) -> Vec<&'a [u8]> {
    match chunking {
        Chunking::Whole => vec![bytes],
        Chunking::Every(n) => bytes.chunks((*n).max(1)).collect(),
        Chunking::At(cuts) => {
            let mut out = Vec::new();
            let mut start = 0;
            for &c in cuts {
                if c > start && c < bytes.len() {
                    out.push(&bytes[start..c]);
                    start = c;
                }
            }
            out.push(&bytes[start..]);
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Decoder, FrameEvent, Role};

    #[test]
    fn legal_frames_encode_as_our_encoder_does_and_decode() {
        let bytes = RawFrame::text("hello").masked([9, 8, 7, 6]).encode();
        let mut wire = bytes.clone();
        let mut dec = Decoder::new(Role::Server);
        let (n, ev) = dec.decode(&mut wire).unwrap();
        assert_eq!(n, bytes.len());
        match ev {
            Some(FrameEvent::Data(d)) => assert_eq!(d.payload, b"hello"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn header_bits_lengths_and_lies_are_written_as_asked() {
        let f = RawFrame::binary(vec![0; 3])
            .rsv(0b011)
            .fin(false)
            .opcode(0xB);
        assert_eq!(f.encode()[..2], [0x3B, 3]);
        // Non-minimal 16- and 64-bit forms.
        assert_eq!(
            RawFrame::binary(vec![1; 5])
                .len_form(LenForm::Len16)
                .encode()[..4],
            [0x82, 126, 0, 5]
        );
        let b = RawFrame::binary(vec![]).len_form(LenForm::Len64).encode();
        assert_eq!(b, [0x82, 127, 0, 0, 0, 0, 0, 0, 0, 0]);
        // 2^63: the top bit the RFC forbids; no payload follows.
        let b = RawFrame::binary(vec![]).declared_len(1 << 63).encode();
        assert_eq!(b, [0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0]);
        // A close with code 5 and a reason that is not UTF-8.
        assert_eq!(RawFrame::close(5, &[0xFF]).encode(), [0x88, 3, 0, 5, 0xFF]);
    }

    #[test]
    fn our_decoder_refuses_what_the_rfc_forbids() {
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "reserved opcode",
                RawFrame::new(0x3, "x").masked([1; 4]).encode(),
            ),
            (
                "rsv2",
                RawFrame::text("x").rsv(0b010).masked([1; 4]).encode(),
            ),
            ("unmasked client frame", RawFrame::text("x").encode()),
            (
                "fragmented ping",
                RawFrame::ping("x").fin(false).masked([1; 4]).encode(),
            ),
            (
                "long ping",
                RawFrame::ping(vec![0; 126]).masked([1; 4]).encode(),
            ),
            (
                "2^63 length",
                RawFrame::binary(vec![])
                    .declared_len(1 << 63)
                    .masked([1; 4])
                    .encode(),
            ),
            (
                "close code 5",
                RawFrame::close(5, b"").masked([1; 4]).encode(),
            ),
            (
                "close one byte",
                RawFrame::close_raw(vec![3]).masked([1; 4]).encode(),
            ),
            (
                "close bad reason",
                RawFrame::close(1000, &[0xC0]).masked([1; 4]).encode(),
            ),
            (
                "stray continuation",
                RawFrame::continuation("x").masked([1; 4]).encode(),
            ),
        ];
        for (name, mut wire) in cases {
            let mut dec = Decoder::new(Role::Server);
            assert!(dec.decode(&mut wire).is_err(), "{name}: accepted");
        }
        // §5.2 puts "the minimal number of bytes MUST be used" on the sender; like
        // most receivers, ours reads a non-minimal length.
        let mut wire = RawFrame::text("x")
            .len_form(LenForm::Len16)
            .masked([1; 4])
            .encode();
        assert!(Decoder::new(Role::Server).decode(&mut wire).is_ok());
    }

    #[test]
    fn parse_reads_back_what_encode_wrote() {
        let frames = [
            RawFrame::new(0xF, vec![7; 300])
                .rsv(0b101)
                .fin(false)
                .masked([1, 2, 3, 4]),
            RawFrame::ping(vec![1; 5]).len_form(LenForm::Len64),
            RawFrame::close(4000, b"bye"),
            RawFrame::binary(vec![2; 70_000]),
        ];
        for f in frames {
            let bytes = f.encode();
            assert_eq!(
                RawFrame::parse(&bytes[..bytes.len() - 1]),
                None,
                "incomplete"
            );
            let (back, used) = RawFrame::parse(&bytes).unwrap();
            assert_eq!(used, bytes.len());
            assert_eq!(back, f);
        }
        // A declared length larger than memory: never a panic, just "incomplete".
        let lie = RawFrame::binary(vec![]).declared_len(u64::MAX).encode();
        assert_eq!(RawFrame::parse(&lie), None);
    }

    #[test]
    fn fragments_and_chunks_cut_where_asked() {
        let f = fragments(0x1, "héllo".as_bytes(), &[2, 2, 4]);
        let ops: Vec<(u8, bool, usize)> = f
            .iter()
            .map(|f| (f.opcode, f.fin, f.payload.len()))
            .collect();
        // "h\xC3" | "" | "\xA9l" | "lo": a code point split across frames, an empty frame.
        assert_eq!(
            ops,
            [(1, false, 2), (0, false, 0), (0, false, 2), (0, true, 2)]
        );
        let b = [1u8, 2, 3, 4, 5];
        assert_eq!(
            chunks(&b, &Chunking::Every(2)),
            [&b[..2], &b[2..4], &b[4..]]
        );
        assert_eq!(
            chunks(&b, &Chunking::At(vec![0, 1, 3, 9])),
            [&b[..1], &b[1..3], &b[3..]]
        );
        assert_eq!(chunks(&b, &Chunking::Whole), [&b[..]]);
    }
}
