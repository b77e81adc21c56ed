//! Where compression state lives between messages: per-thread pools of idle
//! compressors and decompressors, and the window a direction keeps ([`Keep`]).

use alloc::vec::Vec;
use std::cell::RefCell;

use flate2::Decompress;
use zlib_rs::Deflate;

use super::DeflateMemory;

/// How many idle compressors (and decompressors) a thread keeps for connections
/// that hold none between messages.
pub(super) const POOL: usize = 4;

/// The window of pooled decompressors: 15 bits reads a stream made with any window.
pub(super) const POOL_INFLATE_BITS: u8 = 15;

/// The memory level of pooled compressors (shared by every connection of a thread,
/// so zlib's default costs nothing per connection).
pub(super) const POOL_MEM_LEVEL: i32 = 8;

thread_local! {
    /// Idle compressors by (level, window bits).
    static DEFLATERS: RefCell<Vec<(i32, u8, Deflate)>> = const { RefCell::new(Vec::new()) };
    /// Idle decompressors (15-bit windows).
    static INFLATERS: RefCell<Vec<Decompress>> = const { RefCell::new(Vec::new()) };
}

/// A raw-deflate compressor (negative window bits: no zlib header).
pub(super) fn new_deflate(level: i32, bits: u8, mem_level: i32) -> Deflate {
    Deflate::new_with_config(zlib_rs::DeflateConfig {
        level,
        method: zlib_rs::Method::Deflated,
        window_bits: -i32::from(bits),
        mem_level,
        strategy: zlib_rs::Strategy::Default,
    })
}

/// A compressor from this thread's pool (reset), or a new one.
pub(super) fn borrow_deflate(level: i32, bits: u8) -> Deflate {
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

pub(super) fn return_deflate(level: i32, bits: u8, d: Deflate) {
    DEFLATERS.with_borrow_mut(|pool| {
        if pool.len() < POOL {
            pool.push((level, bits, d));
        }
    });
}

pub(super) fn borrow_inflate() -> Decompress {
    match INFLATERS.with_borrow_mut(Vec::pop) {
        Some(mut d) => {
            d.reset(false);
            d
        }
        None => Decompress::new_with_window_bits(false, POOL_INFLATE_BITS),
    }
}

pub(super) fn return_inflate(d: Decompress) {
    INFLATERS.with_borrow_mut(|pool| {
        if pool.len() < POOL {
            pool.push(d);
        }
    });
}

/// Appends `data` to a window of at most `cap` bytes, dropping the oldest.
pub(super) fn remember(window: &mut Vec<u8>, data: &[u8], cap: usize) {
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
pub(super) enum Keep {
    /// Its own stream ([`DeflateMemory::Dedicated`]).
    Stream,
    /// The last `n` bytes; a pooled stream per message ([`DeflateMemory::Window`]).
    Window(usize),
    /// Nothing: no context takeover; a pooled stream per message.
    Nothing,
}

/// What a direction keeps. `window_bits`: the stream's window; `inbound`: a
/// decompressor, which needs the peer's whole window as history.
pub(super) fn keep(
    memory: DeflateMemory,
    no_context_takeover: bool,
    window_bits: u8,
    inbound: bool,
) -> Keep {
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

/// The last bytes a dedicated stream saw, kept only so that the connection can
/// move to another process (feature `handover`): zlib-rs and flate2 do not export
/// a stream's window through a safe API. A ring, so that keeping it costs a copy
/// of each message's bytes, not a shift of the whole window per message.
#[cfg(feature = "handover")]
#[derive(Debug, Default)]
pub(super) struct Ring {
    buf: Vec<u8>,
    /// Where the oldest byte is once the ring is full (0 until then).
    start: usize,
}

#[cfg(feature = "handover")]
impl Ring {
    /// Appends `data`, keeping the last `cap` bytes.
    pub(super) fn push(&mut self, mut data: &[u8], cap: usize) {
        if data.len() >= cap {
            self.buf.clear();
            self.buf.extend_from_slice(&data[data.len() - cap..]);
            self.start = 0;
            return;
        }
        if self.buf.len() < cap {
            let n = (cap - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
        // Full: overwrite the oldest bytes (bounded: at most two rounds).
        while !data.is_empty() {
            let n = (cap - self.start).min(data.len());
            self.buf[self.start..self.start + n].copy_from_slice(&data[..n]);
            self.start = (self.start + n) % cap;
            data = &data[n..];
        }
    }

    /// The bytes, oldest first.
    pub(super) fn to_vec(&self) -> Vec<u8> {
        let mut v = self.buf[self.start..].to_vec();
        v.extend_from_slice(&self.buf[..self.start]);
        v
    }

    pub(super) fn clear(&mut self) {
        self.buf.clear();
        self.start = 0;
    }
}

/// A direction's history for a handover: the window it keeps, or the ring of a
/// dedicated stream.
#[cfg(feature = "handover")]
pub(super) fn history_of(window: &[u8], ring: &Ring, keep: Keep) -> Vec<u8> {
    match keep {
        Keep::Window(_) => window.to_vec(),
        Keep::Stream => ring.to_vec(),
        Keep::Nothing => Vec::new(),
    }
}

/// Continues a direction from `history` (a handed-over connection's): the window
/// of [`Keep::Window`]; for a dedicated stream, the dictionary its next stream
/// starts from and the ring.
#[cfg(feature = "handover")]
pub(super) fn restore_window(
    window: &mut Vec<u8>,
    ring: &mut Ring,
    keep: Keep,
    bits: u8,
    history: &[u8],
) {
    window.clear();
    ring.clear();
    match keep {
        Keep::Window(cap) => remember(window, history, cap),
        Keep::Stream => {
            remember(window, history, 1 << bits);
            ring.push(history, 1 << bits);
        }
        Keep::Nothing => {}
    }
}

#[cfg(all(test, feature = "handover"))]
mod ring_tests {
    use super::Ring;

    #[test]
    fn a_ring_keeps_the_last_bytes_in_order() {
        let mut r = Ring::default();
        let mut all = Vec::new();
        for (i, n) in [3usize, 5, 1, 9, 2, 8, 20, 0, 7].into_iter().enumerate() {
            let data: Vec<u8> = (0..n).map(|k| (i * 31 + k) as u8).collect();
            r.push(&data, 8);
            all.extend_from_slice(&data);
            let want = &all[all.len().saturating_sub(8)..];
            assert_eq!(r.to_vec(), want, "after push {i}");
        }
    }
}
