//! Restarting a server without closing its connections (feature `handover`,
//! Unix): the old process hands its listening sockets and every open connection
//! (socket and protocol state) to a new process over a Unix socket, then lets go.
//!
//! ```text
//!  old: ServerHandle::hand_over(path)      new: ServerBuilder::resume_from(path).build()
//!   connect(path) ─────── HELLO (magic, version) ──────►  listens on path, waits
//!                 ◄────── accept / refuse ─────────────
//!   loops stop accepting, set aside each connection at a message boundary
//!                 ─────── LISTENER × n, CONN × m (SCM_RIGHTS) ─►  decodes, checks all
//!                 ─────── END (counts) ────────────────►
//!                 ◄────── ready / refuse ──────────────
//!                 ─────── COMMIT ──────────────────────►
//!                 ◄────── ack ─────────────────────────  owns everything now
//!   loops let go (no close frame, no FIN);
//!   TLS and unfinished connections closed with 1012                  serves
//! ```
//!
//! Until the ack, the old process only *paused* the connections it set aside
//! (nothing read or written, its own descriptors kept): a refusal, a hang-up or a
//! timeout at any step puts everything back and the old process serves on as if
//! nothing happened. See `docs/handover.md` for what moves and what does not.
//!
//! This module is the byte format of the state ([`format`](mod@format), versioned, public so
//! that it can be fuzzed and inspected) and the framing over the Unix socket; the
//! steps run inside the event loop's server.

pub mod format;
pub(crate) mod wire;

pub use crate::event::HandoverReport;
