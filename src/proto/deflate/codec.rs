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

use std::cell::RefCell;

use flate2::{Decompress, FlushDecompress, Status};
use zlib_rs::{Deflate, DeflateFlush};

use super::{DeflateConfig, DeflateMemory, DeflateParams};
use crate::proto::decoder::DataChunk;
use crate::proto::error::{ProtocolError, RecvError, SendError};
use crate::proto::utf8::Utf8Validator;
use crate::proto::{MessageKind, Role};

/// The marker a sync flush ends with; stripped on send, appended on receive (§7.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The most decompressed output one inflate step produces when the caller's output
/// buffer has no larger capacity (16 KiB).
pub const INFLATE_CHUNK: usize = 16 * 1024;

/// How many idle compressors (and decompressors) a thread keeps for connections
/// that hold none between messages.
const POOL: usize = 4;

/// The window of pooled decompressors: 15 bits reads a stream made with any window.
const POOL_INFLATE_BITS: u8 = 15;

/// The memory level of pooled compressors (shared by every connection of a thread,
/// so zlib's default costs nothing per connection).
const POOL_MEM_LEVEL: i32 = 8;

thread_local! {
    /// Idle compressors by (level, window bits).
    static DEFLATERS: RefCell<Vec<(i32, u8, Deflate)>> = const { RefCell::new(Vec::new()) };
    /// Idle decompressors (15-bit windows).
    static INFLATERS: RefCell<Vec<Decompress>> = const { RefCell::new(Vec::new()) };
}

/// A compressed stream that does not inflate (1007).
fn zerr() -> RecvError {
    RecvError::Protocol(ProtocolError::InvalidCompressedData)
}

/// A raw-deflate compressor (negative window bits: no zlib header).
fn new_deflate(level: i32, bits: u8, mem_level: i32) -> Deflate {
    Deflate::new_with_config(zlib_rs::DeflateConfig {
        level,
        method: zlib_rs::Method::Deflated,
        window_bits: -i32::from(bits),
        mem_level,
        strategy: zlib_rs::Strategy::Default,
    })
}

/// A compressor from this thread's pool (reset), or a new one.
fn borrow_deflate(level: i32, bits: u8) -> Deflate {
    let pooled = DEFLATERS.with_borrow_mut(|pool| {
        let i = pool
            .iter()
            .position(|(l, b, _)| *l == level && *b == bits)?;
        Some(pool.swap_remove(i).2)
    });
    match pooled {
        Some(mut d) => {
            d.reset();
            d
        }
        None => new_deflate(level, bits, POOL_MEM_LEVEL),
    }
}

fn return_deflate(level: i32, bits: u8, d: Deflate) {
    DEFLATERS.with_borrow_mut(|pool| {
        if pool.len() < POOL {
            pool.push((level, bits, d));
        }
    });
}

fn borrow_inflate() -> Decompress {
    match INFLATERS.with_borrow_mut(Vec::pop) {
        Some(mut d) => {
            d.reset(false);
            d
        }
        None => Decompress::new_with_window_bits(false, POOL_INFLATE_BITS),
    }
}

fn return_inflate(d: Decompress) {
    INFLATERS.with_borrow_mut(|pool| {
        if pool.len() < POOL {
            pool.push(d);
        }
    });
}

/// Appends `data` to a window of at most `cap` bytes, dropping the oldest.
fn remember(window: &mut Vec<u8>, data: &[u8], cap: usize) {
    if data.len() >= cap {
        window.clear();
        window.extend_from_slice(&data[data.len() - cap..]);
    } else {
        let over = (window.len() + data.len()).saturating_sub(cap);
        window.drain(..over);
        window.extend_from_slice(data);
    }
}

/// What a direction keeps between messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// Its own stream ([`DeflateMemory::Dedicated`]).
    Stream,
    /// The last `n` bytes; a pooled stream per message ([`DeflateMemory::Window`]).
    Window(usize),
    /// Nothing: no context takeover; a pooled stream per message.
    Nothing,
}

/// What a direction keeps. `window_bits`: the stream's window; `inbound`: a
/// decompressor, which needs the peer's whole window as history.
fn keep(memory: DeflateMemory, no_context_takeover: bool, window_bits: u8, inbound: bool) -> Keep {
    let whole = 1usize << window_bits;
    match memory {
        _ if no_context_takeover => Keep::Nothing,
        DeflateMemory::Dedicated { .. } => Keep::Stream,
        DeflateMemory::Window { .. } if inbound => Keep::Window(whole),
        DeflateMemory::Window { bits } => Keep::Window(whole.min(1 << bits.clamp(9, 15))),
        // Shared negotiates no context takeover; if a peer did not agree to it in
        // some direction, keeping the window is the smallest correct state.
        DeflateMemory::Shared => Keep::Window(if inbound { whole } else { 512 }),
    }
}

/// Compresses `input` into `out` (appended) with `flush`.
fn deflate_into(
    d: &mut Deflate,
    mut input: &[u8],
    out: &mut Vec<u8>,
    flush: DeflateFlush,
) -> Result<(), SendError> {
    // Bounded: every round either consumes input or, with all input consumed, ends
    // once the output is not full; zlib's flush output is bounded.
    loop {
        let start = out.len();
        let room = input.len() / 2 + 64;
        out.resize(start + room, 0);
        let (before_in, before_out) = (d.total_in(), d.total_out());
        let r = d.compress(input, &mut out[start..], flush);
        let used = (d.total_in() - before_in) as usize;
        let wrote = (d.total_out() - before_out) as usize;
        out.truncate(start + wrote);
        r.map_err(|_| SendError::Broken)?;
        input = &input[used..];
        if input.is_empty() && (flush == DeflateFlush::NoFlush || wrote < room) {
            return Ok(());
        }
    }
}

/// Compresses outgoing messages for one connection.
pub struct MessageDeflater {
    /// The stream: kept between messages (dedicated) or borrowed for one message.
    state: Option<Deflate>,
    /// The last 2^bits bytes compressed, in [`Keep::Window`].
    window: Vec<u8>,
    keep: Keep,
    level: i32,
    mem_level: i32,
    bits: u8,
    min_size: usize,
}

impl std::fmt::Debug for MessageDeflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageDeflater")
            .field("allocated", &self.state.is_some())
            .field("bits", &self.bits)
            .field("keep", &self.keep)
            .field("window", &self.window.len())
            .finish()
    }
}

impl MessageDeflater {
    /// The compressor of an endpoint playing `role` under `params`.
    pub fn new(params: &DeflateParams, role: Role, cfg: &DeflateConfig) -> Self {
        let (bits, nct, _, _) = params.split(role);
        let mem_level = match cfg.memory {
            DeflateMemory::Dedicated { mem_level } => i32::from(mem_level.clamp(1, 9)),
            _ => POOL_MEM_LEVEL,
        };
        MessageDeflater {
            state: None,
            window: Vec::new(),
            keep: keep(cfg.memory, nct, bits.clamp(9, 15), false),
            level: cfg.level.min(9) as i32,
            mem_level,
            bits: bits.clamp(9, 15),
            min_size: cfg.min_message_size,
        }
    }

    /// Whether a whole message of `len` bytes is worth compressing.
    pub fn wants(&self, len: usize) -> bool {
        len >= self.min_size
    }

    fn state(&mut self) -> Result<&mut Deflate, SendError> {
        if self.state.is_none() {
            let d = match self.keep {
                Keep::Stream => new_deflate(self.level, self.bits, self.mem_level),
                Keep::Nothing => borrow_deflate(self.level, self.bits),
                Keep::Window(_) => {
                    let mut d = borrow_deflate(self.level, self.bits);
                    if !self.window.is_empty() {
                        d.set_dictionary(&self.window)
                            .map_err(|_| SendError::Broken)?;
                    }
                    d
                }
            };
            self.state = Some(d);
        }
        Ok(self.state.as_mut().expect("just set"))
    }

    /// Compresses `input` into `out` (appended), without ending the message.
    pub fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), SendError> {
        deflate_into(self.state()?, input, out, DeflateFlush::NoFlush)?;
        if let Keep::Window(cap) = self.keep {
            if self.window.capacity() < cap {
                self.window.reserve_exact(cap - self.window.len());
            }
            remember(&mut self.window, input, cap);
        }
        Ok(())
    }

    /// Ends the message: flushes, removes the `00 00 ff ff` tail (§7.2.1), and gives
    /// a borrowed stream back to the thread's pool.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), SendError> {
        let start = out.len();
        deflate_into(self.state()?, &[], out, DeflateFlush::SyncFlush)?;
        if out.len() >= start + TAIL.len() && out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if out.len() == start {
            // zlib emits nothing for a second sync flush in a row (an empty message
            // right after another); RFC 7692 §7.2.3.6: the payload is then 0x00, an
            // empty stored block without its LEN/NLEN tail.
            out.push(0x00);
        }
        if self.keep != Keep::Stream
            && let Some(d) = self.state.take()
        {
            return_deflate(self.level, self.bits, d);
        }
        Ok(())
    }

    /// Compresses a whole message into `out` (appended).
    pub fn compress_message(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), SendError> {
        self.compress(input, out)?;
        self.finish(out)
    }

    /// True while compressor state is allocated (for memory accounting): always
    /// after the first message in [`DeflateMemory::Dedicated`] mode with context
    /// takeover, otherwise only in the middle of a message.
    pub fn is_allocated(&self) -> bool {
        self.state.is_some()
    }

    /// Bytes of window kept between messages ([`DeflateMemory::Window`]).
    pub fn window_len(&self) -> usize {
        self.window.capacity()
    }
}

/// Decompresses incoming messages for one connection, step by step.
pub struct MessageInflater {
    /// The stream: kept between messages (dedicated) or borrowed for one message.
    state: Option<Decompress>,
    /// The last 2^bits bytes decompressed, in [`Keep::Window`].
    window: Vec<u8>,
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

impl std::fmt::Debug for MessageInflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
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
                Keep::Stream => Decompress::new_with_window_bits(false, self.bits),
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::decoder::DataChunk;
    use crate::proto::error::{ProtocolError, RecvError};

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

    fn modes() -> [DeflateMemory; 4] {
        [
            DeflateMemory::default(),
            DeflateMemory::Dedicated { mem_level: 1 },
            DeflateMemory::Window { bits: 9 },
            DeflateMemory::Shared,
        ]
    }

    /// Every memory mode on either side reads every other: the wire is the same.
    /// Messages of two connections interleave on one thread (the pooled streams must
    /// carry nothing from one to the other), and one message is streamed in pieces
    /// while the other connection sends whole messages in between.
    #[test]
    fn memory_modes_interoperate_and_share_pools_safely() {
        let mut x = 7u32;
        let mut text = |n: usize| -> Vec<u8> {
            (0..n)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    let alphabet = b"{\"user\":42,\"mesg\":\"hello\"} ";
                    alphabet[(x >> 16) as usize % alphabet.len()]
                })
                .collect()
        };
        let msgs: Vec<Vec<u8>> = [0, 5, 300, 300, 600, 5000, 70_000, 40, 40]
            .iter()
            .map(|&n| text(n))
            .collect();
        for tx_mode in modes() {
            for rx_mode in modes() {
                for (nct, bits) in [(false, 9), (false, 15), (true, 9), (false, 11)] {
                    let p = DeflateParams {
                        server_no_context_takeover: nct,
                        client_no_context_takeover: nct,
                        server_max_window_bits: bits,
                        client_max_window_bits: bits,
                    };
                    let cfg = DeflateConfig::default().memory(tx_mode);
                    let mut txs = [
                        MessageDeflater::new(&p, Role::Client, &cfg),
                        MessageDeflater::new(&p, Role::Client, &cfg),
                    ];
                    let mut rxs = [
                        MessageInflater::with_memory(&p, Role::Server, 1 << 20, rx_mode),
                        MessageInflater::with_memory(&p, Role::Server, 1 << 20, rx_mode),
                    ];
                    for (i, m) in msgs.iter().enumerate() {
                        for c in 0..2 {
                            let mut wire = Vec::new();
                            if i % 3 == 2 {
                                // Streamed: the other connection compresses a
                                // whole message between the pieces.
                                let half = m.len() / 2;
                                txs[c].compress(&m[..half], &mut wire).unwrap();
                                let mut other = Vec::new();
                                txs[1 - c].compress(b"interleaved", &mut other).unwrap();
                                txs[c].compress(&m[half..], &mut wire).unwrap();
                                txs[c].finish(&mut wire).unwrap();
                                txs[1 - c].finish(&mut other).unwrap();
                                let got = inflate_all(&mut rxs[1 - c], &other);
                                assert_eq!(got, b"interleaved");
                            } else {
                                txs[c].compress_message(m, &mut wire).unwrap();
                            }
                            let got = inflate_all(&mut rxs[c], &wire);
                            assert_eq!(
                                got.len(),
                                m.len(),
                                "{tx_mode:?} -> {rx_mode:?} nct={nct} bits={bits} msg {i}"
                            );
                            assert!(got == *m, "{tx_mode:?} -> {rx_mode:?} msg {i}");
                        }
                    }
                    for t in &txs {
                        let kept = matches!(tx_mode, DeflateMemory::Dedicated { .. }) && !nct;
                        assert_eq!(t.is_allocated(), kept, "{tx_mode:?} nct={nct}");
                        let window = tx_mode != DeflateMemory::Dedicated { mem_level: 8 }
                            && tx_mode != DeflateMemory::Dedicated { mem_level: 1 }
                            && !nct;
                        assert_eq!(t.window_len(), if window { 512 } else { 0 });
                    }
                    for r in &rxs {
                        let kept = matches!(rx_mode, DeflateMemory::Dedicated { .. }) && !nct;
                        assert_eq!(r.is_allocated(), kept, "{rx_mode:?} nct={nct}");
                    }
                }
            }
        }
    }

    /// A window-mode inflater fed a reference further back than its window (a peer
    /// breaking the negotiated window size) fails with 1007, never reads outside it.
    #[test]
    fn window_mode_rejects_references_beyond_the_window() {
        let wide = DeflateParams {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        };
        let narrow = DeflateParams {
            client_max_window_bits: 9,
            ..wide
        };
        let mut tx = MessageDeflater::new(&wide, Role::Client, &DeflateConfig::default());
        let mut rx = MessageInflater::with_memory(
            &narrow,
            Role::Server,
            1 << 20,
            DeflateMemory::Window { bits: 9 },
        );
        let first: Vec<u8> = (0..2000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut wire = Vec::new();
        tx.compress_message(&first, &mut wire).unwrap();
        assert_eq!(inflate_all(&mut rx, &wire), first);
        // The second message repeats the start of the first: 2000 bytes back.
        let mut wire = Vec::new();
        tx.compress_message(&first[..600], &mut wire).unwrap();
        let chunk = DataChunk {
            kind: MessageKind::Binary,
            payload: &wire,
            first: true,
            last: true,
            compressed: true,
        };
        let r = rx.push(&chunk, &mut |_| Ok(()));
        assert!(
            matches!(
                r,
                Err(RecvError::Protocol(ProtocolError::InvalidCompressedData))
            ),
            "{r:?}"
        );
    }

    fn inflate_all(rx: &mut MessageInflater, wire: &[u8]) -> Vec<u8> {
        let chunk = DataChunk {
            kind: MessageKind::Binary,
            payload: wire,
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
        got
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
            matches!(r, Err(RecvError::MessageTooBig { limit: 1048576 })),
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
                Err(RecvError::Protocol(ProtocolError::InvalidCompressedData))
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
