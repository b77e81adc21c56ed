//! Compression of outgoing messages (RFC 7692 §7.2.1): the trailing `00 00 ff ff`
//! of the sync flush removed.

use alloc::vec::Vec;
use zlib_rs::{Deflate, DeflateFlush};

use super::memory::{
    Keep, POOL_MEM_LEVEL, borrow_deflate, keep, new_deflate, remember, return_deflate,
};
#[cfg(feature = "handover")]
use super::memory::{Ring, history_of, restore_window};
use super::{DeflateConfig, DeflateMemory, DeflateParams, TAIL};
use crate::proto::Role;
use crate::proto::error::SendError;

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
    /// A dedicated stream's last 2^bits bytes, for a handover.
    #[cfg(feature = "handover")]
    ring: Ring,
    keep: Keep,
    level: i32,
    mem_level: i32,
    bits: u8,
    min_size: usize,
}

impl core::fmt::Debug for MessageDeflater {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
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
            #[cfg(feature = "handover")]
            ring: Ring::default(),
            keep: keep(cfg.memory, nct, bits.clamp(9, 15), false),
            level: cfg.level.min(9) as i32,
            mem_level,
            bits: bits.clamp(9, 15),
            min_size: cfg.min_message_size,
        }
    }

    /// Where every message starts from an empty compressor (no context takeover on
    /// this side) and none is under way: a key for the setting that alone
    /// determines the compressed bytes (level and window size), so one message's
    /// compression can be shared by every connection with the same key.
    pub fn shared_key(&self) -> Option<u32> {
        (self.keep == Keep::Nothing && self.state.is_none())
            .then(|| (self.level as u32 & 0xFF) | (u32::from(self.bits) << 8))
    }

    /// Whether a whole message of `len` bytes is worth compressing.
    pub fn wants(&self, len: usize) -> bool {
        len >= self.min_size
    }

    fn state(&mut self) -> Result<&mut Deflate, SendError> {
        if self.state.is_none() {
            let d = match self.keep {
                Keep::Stream => {
                    let mut d = new_deflate(self.level, self.bits, self.mem_level);
                    // Only after a handover: the history the peer's decoder holds.
                    if !self.window.is_empty() {
                        d.set_dictionary(&self.window)
                            .map_err(|_| SendError::Broken)?;
                        self.window = Vec::new();
                    }
                    d
                }
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
        #[cfg(feature = "handover")]
        if self.keep == Keep::Stream {
            self.ring.push(input, 1 << self.bits);
        }
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

    /// The history the peer's decompressor holds from us (the last 2^bits bytes
    /// we compressed, fewer in [`DeflateMemory::Window`]), for a handover; empty
    /// without context takeover.
    #[cfg(feature = "handover")]
    pub(crate) fn history(&self) -> Vec<u8> {
        history_of(&self.window, &self.ring, self.keep)
    }

    /// Starts the next message from `history` (a handed-over connection's).
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
