//! What an endpoint offers or accepts ([`DeflateConfig`]), how a connection keeps
//! its compression state ([`DeflateMemory`]), and what was negotiated
//! ([`DeflateParams`]).

use crate::proto::Role;

/// How a connection keeps its compression state between messages: the trade
/// between memory per connection and CPU per message. Whatever the mode, a
/// direction without context takeover keeps nothing between messages: it borrows a
/// compressor or decompressor from a small per-thread pool for the length of one
/// message and gives it back.
///
/// | mode | held per idle connection (context takeover) | cost |
/// |---|---|---|
/// | [`Dedicated`](Self::Dedicated) | zlib streams: about 300 KiB at 15 bits and `mem_level` 8 | none |
/// | [`Window`](Self::Window) | the last 2^bits bytes each way: 1 KiB at 9 bits | a pooled stream is reset and primed with that history per message |
/// | [`Shared`](Self::Shared) | nothing (negotiates no context takeover both ways) | messages compress independently |
///
/// Measured figures (memory at 10,000 connections, ratio, CPU) are in
/// `docs/compression-modes.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeflateMemory {
    /// Each connection keeps its own compressor and decompressor between messages
    /// (zlib's model). `mem_level` (1-9, zlib's `memLevel`) sizes the compressor's
    /// literal buffers: 8 (the default) holds 112 KiB of them, 1 holds 1 KiB. The
    /// windows are `server_max_window_bits` / `client_max_window_bits`.
    Dedicated {
        /// zlib's `memLevel`, 1-9.
        mem_level: u8,
    },
    /// Each connection keeps only the last 2^`bits` bytes it sent and received; a
    /// per-thread compressor and decompressor are primed with them at the start of
    /// each message. Outgoing messages still compress with the full negotiated
    /// window inside a message (the peer's decoder keeps that much); only what they
    /// may reuse from earlier messages is limited to 2^`bits` bytes. Incoming
    /// messages need the peer's whole window as history, so a server asks the client
    /// for `client_max_window_bits` ≤ `bits` (set by [`DeflateConfig::small`]), or, if
    /// the offer lacks that parameter, for `client_no_context_takeover`.
    Window {
        /// log2 of the history kept each way, 9-15.
        bits: u8,
    },
    /// No context takeover in either direction (negotiated), per-thread compressor and
    /// decompressor: nothing at all per connection.
    Shared,
}

impl Default for DeflateMemory {
    fn default() -> Self {
        DeflateMemory::Dedicated { mem_level: 8 }
    }
}

/// The extension token.
pub const EXTENSION: &str = "permessage-deflate";

/// What an endpoint offers (client) or accepts (server). Defaults: level 6, context
/// takeover in both directions, 15-bit windows, compress messages of 32 bytes or more.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// zlib compression level, 0-9. Default: 6.
    pub level: u32,
    /// Messages shorter than this are sent uncompressed (the streaming writers always
    /// compress). Default: 32.
    pub min_message_size: usize,
    /// Server: always reset the server's compressor after each message. Client: ask
    /// the server to. Default: false.
    pub server_no_context_takeover: bool,
    /// Server: ask the client to reset its compressor after each message. Client:
    /// reset ours regardless (and say so in the offer). Default: false.
    pub client_no_context_takeover: bool,
    /// Server: the largest window the server compresses with. Client: ask the server
    /// for at most this. `None`: 15. Values 9-15.
    pub server_max_window_bits: Option<u8>,
    /// Server: ask the client for at most this window. Client: the largest window the
    /// client compresses with. `None`: 15. Values 9-15.
    pub client_max_window_bits: Option<u8>,
    /// Server: accept a client's request for `server_no_context_takeover`.
    /// Default: true.
    pub accept_no_context_takeover: bool,
    /// Server: accept a client's request for a smaller `server_max_window_bits`.
    /// Default: true.
    pub accept_max_window_bits: bool,
    /// How compression state is held between messages. Default:
    /// [`DeflateMemory::Dedicated`] with `mem_level` 8.
    pub memory: DeflateMemory,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig {
            level: 6,
            min_message_size: 32,
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: None,
            client_max_window_bits: None,
            accept_no_context_takeover: true,
            accept_max_window_bits: true,
            memory: DeflateMemory::default(),
        }
    }
}

impl DeflateConfig {
    /// Context takeover in both directions in about 1 KiB per idle connection:
    /// [`DeflateMemory::Window`] keeping 512 bytes each way. Our messages compress
    /// with a 15-bit window and may reuse the last 512 bytes we sent; the client is
    /// asked for `client_max_window_bits=9` (or, if it cannot be limited, for
    /// `client_no_context_takeover`). Costs a pooled compressor reset per message.
    pub fn small() -> Self {
        Self::window(9)
    }

    /// [`DeflateMemory::Window`] keeping 2^`bits` bytes (9-15) each way, with
    /// `client_max_window_bits` = `bits`.
    pub fn window(bits: u8) -> Self {
        let bits = bits.clamp(9, 15);
        DeflateConfig {
            client_max_window_bits: Some(bits),
            memory: DeflateMemory::Window { bits },
            ..DeflateConfig::default()
        }
    }

    /// No context takeover in either direction and per-thread compressors: nothing
    /// is held per connection ([`DeflateMemory::Shared`]).
    pub fn shared() -> Self {
        DeflateConfig {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            memory: DeflateMemory::Shared,
            ..DeflateConfig::default()
        }
    }

    /// Dedicated per-connection streams with `window_bits` (9-15) in both
    /// directions and zlib's `mem_level` (1-9) for our compressor.
    pub fn dedicated(window_bits: u8, mem_level: u8) -> Self {
        DeflateConfig {
            server_max_window_bits: Some(window_bits.clamp(9, 15)),
            client_max_window_bits: Some(window_bits.clamp(9, 15)),
            memory: DeflateMemory::Dedicated {
                mem_level: mem_level.clamp(1, 9),
            },
            ..DeflateConfig::default()
        }
    }

    /// See [`DeflateConfig::memory`](#structfield.memory).
    pub fn memory(mut self, memory: DeflateMemory) -> Self {
        self.memory = match memory {
            DeflateMemory::Dedicated { mem_level } => DeflateMemory::Dedicated {
                mem_level: mem_level.clamp(1, 9),
            },
            DeflateMemory::Window { bits } => DeflateMemory::Window {
                bits: bits.clamp(9, 15),
            },
            m => m,
        };
        if memory == DeflateMemory::Shared {
            self.server_no_context_takeover = true;
            self.client_no_context_takeover = true;
        }
        self
    }

    /// Whether our end must ask the peer to drop its context: a server in
    /// [`DeflateMemory::Window`] mode whose client offered no window limit.
    pub(super) fn client_must_reset(&self, client_bits: u8) -> bool {
        self.client_no_context_takeover
            || matches!(self.memory, DeflateMemory::Window { bits } if client_bits > bits)
    }

    /// Client: the `server_max_window_bits` to ask for: the configured one, or in
    /// [`DeflateMemory::Window`] mode the history size (our inbound history must
    /// hold the server's whole window).
    pub(super) fn asked_server_bits(&self) -> Option<u8> {
        match (self.server_max_window_bits, self.memory) {
            (Some(b), _) => Some(b),
            (None, DeflateMemory::Window { bits }) => Some(bits),
            _ => None,
        }
    }

    /// zlib compression level, 0-9. Default: 6.
    pub fn level(mut self, level: u32) -> Self {
        self.level = level.min(9);
        self
    }

    /// Messages shorter than this are sent uncompressed. Default: 32.
    pub fn min_message_size(mut self, n: usize) -> Self {
        self.min_message_size = n;
        self
    }

    /// See [`DeflateConfig::server_no_context_takeover`](#structfield.server_no_context_takeover).
    pub fn server_no_context_takeover(mut self, on: bool) -> Self {
        self.server_no_context_takeover = on;
        self
    }

    /// See [`DeflateConfig::client_no_context_takeover`](#structfield.client_no_context_takeover).
    pub fn client_no_context_takeover(mut self, on: bool) -> Self {
        self.client_no_context_takeover = on;
        self
    }

    /// See [`DeflateConfig::server_max_window_bits`](#structfield.server_max_window_bits)
    /// (clamped to 9-15).
    pub fn server_max_window_bits(mut self, bits: Option<u8>) -> Self {
        self.server_max_window_bits = bits.map(|b| b.clamp(9, 15));
        self
    }

    /// See [`DeflateConfig::client_max_window_bits`](#structfield.client_max_window_bits)
    /// (clamped to 9-15).
    pub fn client_max_window_bits(mut self, bits: Option<u8>) -> Self {
        self.client_max_window_bits = bits.map(|b| b.clamp(9, 15));
        self
    }

    /// See [`DeflateConfig::accept_no_context_takeover`](#structfield.accept_no_context_takeover).
    pub fn accept_no_context_takeover(mut self, on: bool) -> Self {
        self.accept_no_context_takeover = on;
        self
    }

    /// See [`DeflateConfig::accept_max_window_bits`](#structfield.accept_max_window_bits).
    pub fn accept_max_window_bits(mut self, on: bool) -> Self {
        self.accept_max_window_bits = on;
        self
    }
}

/// The negotiated parameters of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server resets its compressor after each message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after each message.
    pub client_no_context_takeover: bool,
    /// The server's compression window (9-15).
    pub server_max_window_bits: u8,
    /// The client's compression window (8-15; we decompress 8 with 9).
    pub client_max_window_bits: u8,
}

impl DeflateParams {
    /// (our window bits, our no-context-takeover, peer's window bits, peer's
    /// no-context-takeover) for an endpoint playing `role`.
    pub(crate) fn split(&self, role: Role) -> (u8, bool, u8, bool) {
        match role {
            Role::Server => (
                self.server_max_window_bits,
                self.server_no_context_takeover,
                self.client_max_window_bits,
                self.client_no_context_takeover,
            ),
            Role::Client => (
                self.client_max_window_bits,
                self.client_no_context_takeover,
                self.server_max_window_bits,
                self.server_no_context_takeover,
            ),
        }
    }
}
