//! Per-message compression and decompression (RFC 7692 §7.2), shared by every
//! driver of the protocol core.
//!
//! [`MessageDeflater`] compresses outgoing messages, removing the trailing
//! `00 00 ff ff` of the sync flush (§7.2.1). [`MessageInflater`] decompresses incoming
//! ones in steps of bounded output ([`MessageInflater::inflate_step`]): each step
//! consumes some compressed input and produces at most one output buffer, so a
//! message of any size (and a decompression bomb) passes through in bounded memory.
//! The read limit applies to the decompressed size and text is checked as UTF-8 as
//! it inflates.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::{DeflateConfig, DeflateParams};
use crate::error::{Error, ProtocolError};
use crate::proto::decoder::DataChunk;
use crate::proto::utf8::Utf8Validator;
use crate::proto::{MessageKind, Role};

/// The marker a sync flush ends with; stripped on send, appended on receive (§7.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The most decompressed output one inflate step produces when the caller's output
/// buffer has no larger capacity (16 KiB).
pub const INFLATE_CHUNK: usize = 16 * 1024;

fn zerr() -> Error {
    Error::Protocol(ProtocolError::InvalidCompressedData)
}

/// Compresses outgoing messages for one connection.
pub struct MessageDeflater {
    state: Option<Compress>,
    level: Compression,
    bits: u8,
    no_context_takeover: bool,
    min_size: usize,
}

impl std::fmt::Debug for MessageDeflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageDeflater")
            .field("allocated", &self.state.is_some())
            .field("bits", &self.bits)
            .field("no_context_takeover", &self.no_context_takeover)
            .finish()
    }
}

impl MessageDeflater {
    /// The compressor of an endpoint playing `role` under `params`.
    pub fn new(params: &DeflateParams, role: Role, cfg: &DeflateConfig) -> Self {
        let (bits, nct, _, _) = params.split(role);
        MessageDeflater {
            state: None,
            level: Compression::new(cfg.level.min(9)),
            bits: bits.clamp(9, 15),
            no_context_takeover: nct,
            min_size: cfg.min_message_size,
        }
    }

    /// Whether a whole message of `len` bytes is worth compressing.
    pub fn wants(&self, len: usize) -> bool {
        len >= self.min_size
    }

    fn state(&mut self) -> &mut Compress {
        let (level, bits) = (self.level, self.bits);
        self.state
            .get_or_insert_with(|| Compress::new_with_window_bits(level, false, bits))
    }

    /// Compresses `input` into `out` (appended), without ending the message.
    pub fn compress(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        let c = self.state();
        while !input.is_empty() {
            out.reserve(input.len() / 2 + 64);
            let before = c.total_in();
            c.compress_vec(input, out, FlushCompress::None)
                .map_err(|_| zerr())?;
            let used = (c.total_in() - before) as usize;
            input = &input[used..];
        }
        Ok(())
    }

    /// Ends the message: flushes, removes the `00 00 ff ff` tail (§7.2.1), and resets
    /// the context if context takeover is off.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        let start = out.len();
        let c = self.state();
        loop {
            out.reserve(64);
            c.compress_vec(&[], out, FlushCompress::Sync)
                .map_err(|_| zerr())?;
            if out.len() < out.capacity() {
                break;
            }
        }
        if out.len() >= start + TAIL.len() && out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if out.len() == start {
            // zlib emits nothing for a second sync flush in a row (an empty message
            // right after another); RFC 7692 §7.2.3.6: the payload is then 0x00, an
            // empty stored block without its LEN/NLEN tail.
            out.push(0x00);
        }
        if self.no_context_takeover {
            // No context to keep: give the memory back; it is rebuilt on the next message.
            self.state = None;
        }
        Ok(())
    }

    /// Compresses a whole message into `out` (appended).
    pub fn compress_message(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        self.compress(input, out)?;
        self.finish(out)
    }

    /// True while compressor state is allocated (for memory accounting).
    pub fn is_allocated(&self) -> bool {
        self.state.is_some()
    }
}

/// Decompresses incoming messages for one connection, step by step.
pub struct MessageInflater {
    state: Option<Decompress>,
    bits: u8,
    no_context_takeover: bool,
    /// The deflate stream ended (BFINAL): only padding may follow in this message.
    ended: bool,
    /// Compressed bytes seen in the current message.
    fed: u64,
    /// Bytes of the sync-flush tail fed at the end of the current message (0-4).
    tail: u8,
    /// The last step filled its output: zlib may hold more output for this input.
    draining: bool,
    limit: u64,
    total: u64,
    text: bool,
    utf8: Utf8Validator,
}

impl std::fmt::Debug for MessageInflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageInflater")
            .field("allocated", &self.state.is_some())
            .field("bits", &self.bits)
            .field("limit", &self.limit)
            .finish()
    }
}

impl MessageInflater {
    /// The decompressor of an endpoint playing `role` under `params`, with a read
    /// limit on the decompressed size of a message.
    pub fn new(params: &DeflateParams, role: Role, limit: u64) -> Self {
        let (_, _, bits, nct) = params.split(role);
        MessageInflater {
            state: None,
            bits: bits.clamp(9, 15),
            no_context_takeover: nct,
            ended: false,
            fed: 0,
            tail: 0,
            draining: false,
            limit,
            total: 0,
            text: false,
            utf8: Utf8Validator::new(),
        }
    }

    /// Changes the read limit (decompressed bytes per message).
    pub fn set_limit(&mut self, limit: u64) {
        self.limit = limit;
    }

    /// Starts a compressed message of `kind`.
    pub fn begin_message(&mut self, kind: MessageKind) {
        self.total = 0;
        self.fed = 0;
        self.tail = 0;
        self.draining = false;
        self.text = kind == MessageKind::Text;
        self.utf8.reset();
    }

    /// One step of decompression: consumes a prefix of `input` (compressed bytes of
    /// the current message) and appends at most `out`'s spare capacity (at least
    /// [`INFLATE_CHUNK`]) of decompressed bytes to `out` (cleared first). `end` says
    /// that `input` holds the last compressed bytes of the message.
    ///
    /// Returns `(consumed, done)`: `done` is true once the whole message has been
    /// decompressed (all of `input` consumed with `end`, nothing left inside zlib).
    /// Call again with the unconsumed rest (and, after `done == false` with nothing
    /// left, with more input or `end`) until it is. Fails with 1009 as soon as the
    /// message passes the read limit, with 1007 for text that is not UTF-8 or data
    /// that does not inflate.
    pub fn inflate_step(
        &mut self,
        input: &[u8],
        end: bool,
        out: &mut Vec<u8>,
    ) -> Result<(usize, bool), Error> {
        out.clear();
        if out.capacity() < INFLATE_CHUNK {
            out.reserve_exact(INFLATE_CHUNK);
        }
        let bits = self.bits;
        let d = self
            .state
            .get_or_insert_with(|| Decompress::new_with_window_bits(false, bits));
        let mut used_total = 0;
        loop {
            if self.ended {
                // Data after a final block is not part of this deflate stream: only
                // the padding a sync flush would add may follow.
                let rest = &input[used_total..];
                if !(rest.iter().all(|&b| b == 0) || rest == TAIL) {
                    return Err(zerr());
                }
                used_total = input.len();
                self.draining = false;
                break;
            }
            let (src, flush, is_tail): (&[u8], FlushDecompress, bool) = if used_total < input.len()
            {
                (&input[used_total..], FlushDecompress::None, false)
            } else if self.draining {
                (&[], FlushDecompress::None, false)
            } else if end && self.fed > 0 && self.tail < TAIL.len() as u8 {
                (&TAIL[usize::from(self.tail)..], FlushDecompress::Sync, true)
            } else {
                break;
            };
            let before_in = d.total_in();
            let before_out = out.len();
            let status = d.decompress_vec(src, out, flush).map_err(|_| zerr())?;
            let used = (d.total_in() - before_in) as usize;
            let produced = out.len() - before_out;
            if is_tail {
                self.tail += used as u8;
            } else {
                used_total += used;
                self.fed += used as u64;
            }
            if status == Status::StreamEnd {
                self.ended = true;
            }
            if out.len() == out.capacity() {
                // Output full: zlib may hold more; the next step drains it first.
                self.draining = true;
                break;
            }
            self.draining = false;
            if used == 0 && produced == 0 && !self.ended {
                if src.is_empty() {
                    // A drain that found nothing left: on to the tail, if any.
                    continue;
                }
                // No progress with input left and room to write: corrupt stream.
                return Err(zerr());
            }
        }
        if !out.is_empty() {
            self.total += out.len() as u64;
            if self.total > self.limit {
                return Err(Error::MessageTooBig { limit: self.limit });
            }
            if self.text && self.utf8.feed(out).is_err() {
                return Err(ProtocolError::InvalidUtf8.into());
            }
        }
        let tail_done = self.fed == 0 || self.ended || usize::from(self.tail) == TAIL.len();
        let done = end && used_total == input.len() && !self.draining && tail_done;
        if done {
            if self.text && self.utf8.finish().is_err() {
                return Err(ProtocolError::InvalidUtf8.into());
            }
            if self.no_context_takeover || self.ended {
                // A final block (BFINAL) or no context takeover: start afresh next time.
                self.state = None;
                self.ended = false;
            }
        }
        Ok((used_total, done))
    }

    /// Inflates one whole compressed piece from the decoder and passes the
    /// decompressed bytes to `sink`, in pieces of at most [`INFLATE_CHUNK`]. A
    /// convenience over [`inflate_step`](Self::inflate_step) for callers that hold
    /// the piece until it is consumed.
    pub fn push(
        &mut self,
        chunk: &DataChunk<'_>,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), Error>,
    ) -> Result<(), Error> {
        if chunk.first {
            self.begin_message(chunk.kind);
        }
        let mut out = Vec::with_capacity(INFLATE_CHUNK);
        let mut input = chunk.payload;
        loop {
            let (used, done) = self.inflate_step(input, chunk.last, &mut out)?;
            input = &input[used..];
            if !out.is_empty() {
                sink(&out)?;
            }
            if done || (input.is_empty() && !chunk.last && !self.draining) {
                return Ok(());
            }
        }
    }

    /// True if the last step filled its output and zlib may hold more for the input
    /// it consumed: the next step (even with no new input) produces it.
    pub fn has_pending_output(&self) -> bool {
        self.draining
    }

    /// True while decompressor state is allocated (for memory accounting).
    pub fn is_allocated(&self) -> bool {
        self.state.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ProtocolError;
    use crate::proto::decoder::DataChunk;

    fn roundtrip(params: &DeflateParams, messages: &[&[u8]]) {
        let cfg = DeflateConfig::default();
        let mut tx = MessageDeflater::new(params, Role::Client, &cfg);
        let mut rx = MessageInflater::new(params, Role::Server, 1 << 20);
        for m in messages {
            let mut wire = Vec::new();
            tx.compress_message(m, &mut wire).unwrap();
            let chunk = DataChunk {
                kind: MessageKind::Binary,
                payload: &wire,
                first: true,
                last: true,
                compressed: true,
            };
            let mut got = Vec::new();
            rx.push(&chunk, &mut |p| {
                got.extend_from_slice(p);
                Ok(())
            })
            .unwrap();
            assert_eq!(&got, m);
        }
    }

    #[test]
    fn messages_round_trip_with_and_without_context_takeover() {
        let msgs: Vec<&[u8]> = vec![
            b"Hello",
            b"Hello",
            b"",
            b"",
            &[0u8; 100_000],
            b"Hello again Hello",
        ];
        for nct in [false, true] {
            for bits in [9, 15] {
                roundtrip(
                    &DeflateParams {
                        server_no_context_takeover: nct,
                        client_no_context_takeover: nct,
                        server_max_window_bits: bits,
                        client_max_window_bits: bits,
                    },
                    &msgs,
                );
            }
        }
    }

    #[test]
    fn rfc7692_hello_examples() {
        // §7.2.3.1: "Hello" compressed: c2 ... per the RFC, 0xf2 0x48 0xcd 0xc9 0xc9 0x07 0x00.
        let p = DeflateParams {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        };
        let mut rx = MessageInflater::new(&p, Role::Client, 100);
        let wire = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        let mut got = Vec::new();
        let chunk = DataChunk {
            kind: MessageKind::Text,
            payload: &wire,
            first: true,
            last: true,
            compressed: true,
        };
        rx.push(&chunk, &mut |p| {
            got.extend_from_slice(p);
            Ok(())
        })
        .unwrap();
        assert_eq!(got, b"Hello");
        // §7.2.3.2: the second "Hello" with context takeover: f2 00 11 00 00.
        let wire2 = [0xf2, 0x00, 0x11, 0x00, 0x00];
        let mut got2 = Vec::new();
        let chunk2 = DataChunk {
            payload: &wire2,
            ..chunk
        };
        rx.push(&chunk2, &mut |p| {
            got2.extend_from_slice(p);
            Ok(())
        })
        .unwrap();
        assert_eq!(got2, b"Hello");
    }

    #[test]
    fn decompression_bomb_stops_at_the_limit() {
        let p = DeflateParams {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        };
        let mut tx = MessageDeflater::new(&p, Role::Client, &DeflateConfig::default());
        let mut wire = Vec::new();
        tx.compress_message(&vec![0u8; 8 << 20], &mut wire).unwrap();
        assert!(
            wire.len() < 64 * 1024,
            "8 MiB of zeros compress to {} bytes",
            wire.len()
        );
        let mut rx = MessageInflater::new(&p, Role::Server, 1 << 20);
        let mut seen = 0usize;
        let chunk = DataChunk {
            kind: MessageKind::Binary,
            payload: &wire,
            first: true,
            last: true,
            compressed: true,
        };
        let r = rx.push(&chunk, &mut |piece| {
            seen += piece.len();
            Ok(())
        });
        assert!(
            matches!(r, Err(Error::MessageTooBig { limit: 1048576 })),
            "{r:?}"
        );
        assert!(seen <= 1 << 20, "handed out {seen} bytes before stopping");
    }

    #[test]
    fn corrupt_data_is_1007() {
        let p = DeflateParams {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        };
        let mut rx = MessageInflater::new(&p, Role::Server, 1 << 20);
        let chunk = DataChunk {
            kind: MessageKind::Binary,
            payload: &[0xff, 0xff, 0xff, 0xff, 0xff],
            first: true,
            last: true,
            compressed: true,
        };
        let r = rx.push(&chunk, &mut |_| Ok(()));
        assert!(
            matches!(
                r,
                Err(Error::Protocol(ProtocolError::InvalidCompressedData))
            ),
            "{r:?}"
        );
    }

    /// Autobahn 12.1.7 (found while moving inflation into the connection): a
    /// message whose output fills a step exactly, with all of its input consumed,
    /// must finish on the next step (the drain finds nothing, the tail follows),
    /// not stall or be judged corrupt.
    #[test]
    fn output_that_fills_a_step_exactly_finishes_on_the_next() {
        let p = DeflateParams {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        };
        let mut tx = MessageDeflater::new(&p, Role::Client, &DeflateConfig::default());
        let mut rx = MessageInflater::new(&p, Role::Server, 1 << 20);
        let mut x = 1u32;
        let msg: Vec<u8> = (0..INFLATE_CHUNK)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                b'a' + ((x >> 16) % 26) as u8
            })
            .collect();
        let mut wire = Vec::new();
        tx.compress_message(&msg, &mut wire).unwrap();
        rx.begin_message(MessageKind::Text);
        let mut out = Vec::with_capacity(INFLATE_CHUNK);
        let (used, done) = rx.inflate_step(&wire, true, &mut out).unwrap();
        assert_eq!((used, done, out.len()), (wire.len(), false, INFLATE_CHUNK));
        assert_eq!(out, msg);
        let (used, done) = rx.inflate_step(&[], true, &mut out).unwrap();
        assert_eq!((used, done, out.len()), (0, true, 0));
    }
}
