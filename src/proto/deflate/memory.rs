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

/// How much history a direction keeps between messages, if any: the window of
/// [`Keep::Window`]; with feature `handover` a dedicated stream keeps a copy of its
/// whole window (2^`bits` bytes) too, so that the connection can move to another
/// process.
pub(super) fn tracked(keep: Keep, bits: u8) -> Option<usize> {
    match keep {
        Keep::Window(cap) => Some(cap),
        #[cfg(feature = "handover")]
        Keep::Stream => Some(1 << bits),
        _ => {
            let _ = bits;
            None
        }
    }
}

/// Replaces a direction's kept window with (the end of) `history`, a handed-over
/// connection's.
#[cfg(feature = "handover")]
pub(super) fn restore_window(window: &mut Vec<u8>, keep: Keep, bits: u8, history: &[u8]) {
    window.clear();
    if let Some(cap) = tracked(keep, bits) {
        remember(window, history, cap);
    }
}
