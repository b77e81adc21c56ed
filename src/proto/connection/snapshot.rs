//! A connection at rest as plain data ([`ConnectionState`]), and back: what a
//! handover moves to another process besides the socket (feature `handover`).
//!
//! Only a connection between messages can be saved: open, no frame or message
//! partly received or sent, no compressed message being inflated. Bytes queued for
//! the transport move with it. Time moves as durations (how long ago the last input
//! arrived and the last heartbeat ping went out), so that the new process's clock
//! need not be the old one's.

use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use super::Connection;
use crate::proto::Role;
use crate::proto::Shared;
use crate::proto::rng::Randomness;
use crate::proto::time::Time;

/// A connection at rest as plain data: see [`Connection::save`] and
/// [`Connection::restore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionState {
    /// Client or server.
    pub role: Role,
    /// The subprotocol the handshake selected.
    pub subprotocol: Option<String>,
    /// Pings are answered automatically.
    pub auto_pong: bool,
    /// The read limit set on this connection, if it differs from the config's.
    pub read_limit: Option<u64>,
    /// How long ago the last bytes arrived (the idle timeout counts from it).
    pub since_received: Duration,
    /// How long ago the heartbeat last pinged.
    pub since_ping: Duration,
    /// That ping is still unanswered (the pong timeout runs).
    pub awaiting_pong: bool,
    /// permessage-deflate, if negotiated.
    pub deflate: Option<DeflateState>,
    /// Bytes queued for the transport and not yet written, in order.
    pub output: Vec<u8>,
}

/// The permessage-deflate part of a [`ConnectionState`]: the negotiated parameters
/// and each direction's history (with context takeover), which the new process's
/// compressor and decompressor start from as a preset dictionary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeflateState {
    /// `server_no_context_takeover` was negotiated.
    pub server_no_context_takeover: bool,
    /// `client_no_context_takeover` was negotiated.
    pub client_no_context_takeover: bool,
    /// The server's window bits (9-15).
    pub server_max_window_bits: u8,
    /// The client's window bits (8-15).
    pub client_max_window_bits: u8,
    /// Messages we start are compressed ([`Connection::set_write_compression`]).
    pub write: bool,
    /// The last bytes we compressed (at most 2^bits; empty without takeover).
    pub sent_history: Vec<u8>,
    /// The last bytes we decompressed (at most 2^bits; empty without takeover).
    pub received_history: Vec<u8>,
}

/// Why a connection could not be saved or restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Not open, or a frame or message is partly received or sent: save it again
    /// once the message is through.
    NotAtRest,
    /// The state asks for permessage-deflate and this build has no `deflate`
    /// feature.
    NoDeflate,
    /// The state is inconsistent (window bits out of range, a history longer than
    /// its window).
    Invalid,
}

impl core::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            SnapshotError::NotAtRest => "the connection is not between messages",
            SnapshotError::NoDeflate => "permessage-deflate state, but no `deflate` feature",
            SnapshotError::Invalid => "inconsistent connection state",
        })
    }
}

impl core::error::Error for SnapshotError {}

impl DeflateState {
    /// The window bits are in range and no history is longer than its window.
    fn check(&self) -> Result<(), SnapshotError> {
        let bits_ok = (9..=15).contains(&self.server_max_window_bits)
            && (8..=15).contains(&self.client_max_window_bits);
        let window = 1usize << 15;
        if !bits_ok || self.sent_history.len() > window || self.received_history.len() > window {
            return Err(SnapshotError::Invalid);
        }
        Ok(())
    }
}

impl ConnectionState {
    /// Whether [`Connection::restore`] can take this state in this build: its
    /// deflate part is consistent (window bits 9-15 and 8-15, histories within a
    /// window) and the build has the `deflate` feature if it needs it. Cheap: no
    /// connection is built.
    pub fn check(&self) -> Result<(), SnapshotError> {
        let Some(d) = &self.deflate else {
            return Ok(());
        };
        d.check()?;
        if cfg!(feature = "deflate") {
            Ok(())
        } else {
            Err(SnapshotError::NoDeflate)
        }
    }
}

impl Connection {
    /// True between messages: open, nothing partly received or sent. Bytes queued
    /// for the transport do not count (they move with a saved connection).
    pub fn is_at_rest(&self) -> bool {
        if !self.life.is_open() || self.in_message() {
            return false;
        }
        let Some(a) = self.active.as_deref() else {
            return true;
        };
        #[cfg(feature = "deflate")]
        if a.inflating.is_some() {
            return false;
        }
        a.dec.at_rest()
    }

    /// The connection as plain data at `now`, to continue it elsewhere with
    /// [`restore`](Self::restore) (a handover to a new process). Fails with
    /// [`SnapshotError::NotAtRest`] unless [`is_at_rest`](Self::is_at_rest).
    pub fn save(&self, now: impl Into<Time>) -> Result<ConnectionState, SnapshotError> {
        if !self.is_at_rest() {
            return Err(SnapshotError::NotAtRest);
        }
        let now = now.into();
        #[cfg(feature = "deflate")]
        let deflate = self.z.as_deref().map(|z| {
            let p = &z.params;
            DeflateState {
                server_no_context_takeover: p.server_no_context_takeover,
                client_no_context_takeover: p.client_no_context_takeover,
                server_max_window_bits: p.server_max_window_bits,
                client_max_window_bits: p.client_max_window_bits,
                write: z.write,
                sent_history: z.deflater.history(),
                received_history: z.inflater.history(),
            }
        });
        #[cfg(not(feature = "deflate"))]
        let deflate = None;
        Ok(ConnectionState {
            role: self.role(),
            subprotocol: self.subprotocol.as_deref().map(Into::into),
            auto_pong: self.auto_pong,
            read_limit: self.limits.as_deref().map(|l| l.max_message_size),
            since_received: now.duration_since(self.keepalive.last_rx),
            since_ping: now.duration_since(self.keepalive.last_ping),
            awaiting_pong: self.keepalive.awaiting_pong,
            deflate,
            output: self.transmit().to_vec(),
        })
    }

    /// Continues a connection saved with [`save`](Self::save) (in this process or
    /// another) at `now`, under `config`. A state with permessage-deflate keeps its
    /// compression state in the default [`DeflateConfig`](crate::proto::deflate::DeflateConfig)'s
    /// way; see [`restore_compressed`](Self::restore_compressed) to choose.
    pub fn restore(
        state: &ConnectionState,
        config: Shared<super::ConnectionConfig>,
        rng: Randomness,
        now: impl Into<Time>,
    ) -> Result<Connection, SnapshotError> {
        Self::restore_in(
            state,
            config,
            rng,
            #[cfg(feature = "deflate")]
            None,
            now.into(),
        )
    }

    /// [`restore`](Self::restore) with the compression level and memory mode of
    /// `deflate` (the new process's setting) for a state with permessage-deflate.
    #[cfg(feature = "deflate")]
    pub fn restore_compressed(
        state: &ConnectionState,
        config: Shared<super::ConnectionConfig>,
        rng: Randomness,
        deflate: &crate::proto::deflate::DeflateConfig,
        now: impl Into<Time>,
    ) -> Result<Connection, SnapshotError> {
        Self::restore_in(state, config, rng, Some(deflate), now.into())
    }

    fn restore_in(
        state: &ConnectionState,
        config: Shared<super::ConnectionConfig>,
        rng: Randomness,
        #[cfg(feature = "deflate")] deflate: Option<&crate::proto::deflate::DeflateConfig>,
        now: Time,
    ) -> Result<Connection, SnapshotError> {
        state.check()?;
        let mut c = Connection::new(state.role, config, rng, now);
        #[cfg(feature = "deflate")]
        if let Some(d) = &state.deflate {
            {
                let params = crate::proto::deflate::DeflateParams {
                    server_no_context_takeover: d.server_no_context_takeover,
                    client_no_context_takeover: d.client_no_context_takeover,
                    server_max_window_bits: d.server_max_window_bits,
                    client_max_window_bits: d.client_max_window_bits,
                };
                let fallback = crate::proto::deflate::DeflateConfig::default();
                c.enable_deflate(&params, deflate.unwrap_or(&fallback));
                if let Some(z) = c.z.as_deref_mut() {
                    z.write = d.write;
                    z.deflater.restore_history(&d.sent_history);
                    z.inflater.restore_history(&d.received_history);
                }
            }
        }
        c.set_subprotocol(state.subprotocol.as_deref());
        c.auto_pong = state.auto_pong;
        if let Some(limit) = state.read_limit {
            c.set_read_limit(limit);
        }
        c.keepalive.last_rx = now.before(state.since_received);
        c.keepalive.last_ping = now.before(state.since_ping);
        c.keepalive.awaiting_pong = state.awaiting_pong;
        if !state.output.is_empty() {
            c.act().tx.push_raw(&state.output);
        }
        Ok(c)
    }
}
