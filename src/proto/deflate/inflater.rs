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

use alloc::vec::Vec;
use flate2::{Decompress, FlushDecompress, Status};

use super::memory::{Keep, borrow_inflate, keep, remember, return_inflate};
#[cfg(feature = "handover")]
use super::memory::{Ring, history_of, restore_window};
use super::{DeflateMemory, DeflateParams, TAIL};
use crate::proto::decoder::DataChunk;
use crate::proto::error::{ProtocolError, RecvError};
use crate::proto::utf8::Utf8Validator;
use crate::proto::{MessageKind, Role};

/// The most decompressed output one inflate step produces when the caller's output
/// buffer has no larger capacity (16 KiB).
pub const INFLATE_CHUNK: usize = 16 * 1024;

/// A compressed stream that does not inflate (1007).
fn zerr() -> RecvError {
    RecvError::Protocol(ProtocolError::InvalidCompressedData)
}

/// Decompresses incoming messages for one connection, step by step.
pub struct MessageInflater {
    /// The stream: kept between messages (dedicated) or borrowed for one message.
    state: Option<Decompress>,
    /// The last 2^bits bytes decompressed, in [`Keep::Window`].
    window: Vec<u8>,
    /// A dedicated stream's last 2^bits bytes, for a handover.
    #[cfg(feature = "handover")]
    ring: Ring,
    keep: Keep,
    bits: u8,
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

impl core::fmt::Debug for MessageInflater {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MessageInflater")
            .field("allocated", &self.state.is_some())
            .field("bits", &self.bits)
            .field("keep", &self.keep)
            .field("window", &self.window.len())
            .field("limit", &self.limit)
            .finish()
    }
}

impl MessageInflater {
    /// The decompressor of an endpoint playing `role` under `params`, with a read
    /// limit on the decompressed size of a message, in the default
    /// [`DeflateMemory::Dedicated`] mode.
    pub fn new(params: &DeflateParams, role: Role, limit: u64) -> Self {
        Self::with_memory(params, role, limit, DeflateMemory::default())
    }

    /// [`new`](Self::new) in a chosen memory mode.
    pub fn with_memory(
        params: &DeflateParams,
        role: Role,
        limit: u64,
        memory: DeflateMemory,
    ) -> Self {
        let (_, _, bits, nct) = params.split(role);
        MessageInflater {
            state: None,
            window: Vec::new(),
            #[cfg(feature = "handover")]
            ring: Ring::default(),
            keep: keep(memory, nct, bits.clamp(9, 15), true),
            bits: bits.clamp(9, 15),
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
    ) -> Result<(usize, bool), RecvError> {
        out.clear();
        if out.capacity() < INFLATE_CHUNK {
            out.reserve_exact(INFLATE_CHUNK);
        }
        if self.state.is_none() {
            let d = match self.keep {
                Keep::Stream => {
                    let mut d = Decompress::new_with_window_bits(false, self.bits);
                    // Only after a handover: the history the peer compresses against.
                    if !self.window.is_empty() {
                        d.set_dictionary(&self.window).map_err(|_| zerr())?;
                        self.window = Vec::new();
                    }
                    d
                }
                Keep::Nothing => borrow_inflate(),
                Keep::Window(_) => {
                    let mut d = borrow_inflate();
                    if !self.window.is_empty() {
                        d.set_dictionary(&self.window).map_err(|_| zerr())?;
                    }
                    d
                }
            };
            self.state = Some(d);
        }
        let d = self.state.as_mut().expect("just set");
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
                return Err(RecvError::MessageTooBig { limit: self.limit });
            }
            if self.text && self.utf8.feed(out).is_err() {
                return Err(ProtocolError::InvalidUtf8.into());
            }
            #[cfg(feature = "handover")]
            if self.keep == Keep::Stream {
                self.ring.push(out, 1 << self.bits);
            }
            if let Keep::Window(cap) = self.keep {
                if self.window.capacity() < cap {
                    self.window.reserve_exact(cap - self.window.len());
                }
                remember(&mut self.window, out, cap);
            }
        }
        let tail_done = self.fed == 0 || self.ended || usize::from(self.tail) == TAIL.len();
        let done = end && used_total == input.len() && !self.draining && tail_done;
        if done {
            if self.text && self.utf8.finish().is_err() {
                return Err(ProtocolError::InvalidUtf8.into());
            }
            if self.ended {
                // A final block (BFINAL): the next message starts a new stream with
                // no history.
                self.state = None;
                self.window.clear();
                #[cfg(feature = "handover")]
                self.ring.clear();
                self.ended = false;
            }
            if self.keep != Keep::Stream
                && let Some(d) = self.state.take()
            {
                return_inflate(d);
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
        sink: &mut dyn FnMut(&[u8]) -> Result<(), RecvError>,
    ) -> Result<(), RecvError> {
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

    /// True while decompressor state is allocated (for memory accounting): always
    /// after the first message in [`DeflateMemory::Dedicated`] mode with context
    /// takeover, otherwise only in the middle of a message.
    pub fn is_allocated(&self) -> bool {
        self.state.is_some()
    }

    /// Bytes of window kept between messages ([`DeflateMemory::Window`]).
    pub fn window_len(&self) -> usize {
        self.window.capacity()
    }

    /// The history the peer's compressor may refer to (the last 2^bits bytes
    /// decompressed), for a handover; empty without context takeover.
    #[cfg(feature = "handover")]
    pub(crate) fn history(&self) -> Vec<u8> {
        history_of(&self.window, &self.ring, self.keep)
    }

    /// Continues from `history` (a handed-over connection's).
    #[cfg(feature = "handover")]
    pub(crate) fn restore_history(&mut self, history: &[u8]) {
        self.state = None;
        restore_window(
            &mut self.window,
            &mut self.ring,
            self.keep,
            self.bits,
            history,
        );
    }
}
