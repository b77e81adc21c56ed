//! The event-loop IO layer: many connections on one `mio::Poll` per thread.
//!
//! A [`Server`] runs N loops; each accepts (or is handed) sockets, parses the
//! upgrade with httparse inside the loop, and runs frames through the protocol core
//! into your [`Handler`]. A [`Client`] is the same loop without a listener, for
//! outgoing connections. Callbacks get a [`Ctx`] to send, stream, ping, close, set
//! timers and reach per-connection data; other threads use a [`Sender`] (a channel
//! plus a `mio::Waker`).
//!
//! ```text
//!   poll ─► readable ─► read into a pooled buffer ─► Connection ─► Handler callbacks
//!                                                               │ ctx.send(...)
//!   Sender (any thread) ─► channel + waker ─► command ──────────┤
//!   timers (heartbeat, idle, close, user) ──────────────────────┤
//!                                                               ▼
//!                      output queue (one write per connection per iteration)
//! ```
//!
//! Bounded everywhere: handshake size and time, message size, output queue per
//! connection ([`Backpressure`]), connections per loop.
//!
//! The code is in three rooms: `api` (what an application holds: the handler,
//! contexts, handles, builders, counters), `conn` (one connection's IO: transport,
//! TLS, the send paths, back-pressure and its life until the loop settles it) and
//! `reactor` (the loop: poll, timers, mailbox, accept, and driving each connection
//! through its phases).

mod api;
mod conn;
mod reactor;

pub use crate::proto::proxy::IpNet;
pub use api::client::{Client, ClientBuilder, ClientHandle};
pub use api::config::{Backpressure, LoopConfig, ProxyProtocol};
pub use api::ctx::{Ctx, LoopCtx, LoopWriter};
pub use api::handler::Handler;
#[cfg(feature = "handover")]
pub use api::handover::HandoverReport;
pub use api::id::{ConnId, TimerId};
pub use api::limits::{Limits, RatePolicy};
pub use api::prepared::Prepared;
pub use api::publisher::Publisher;
pub use api::responder::{HttpRequest, Responder};
pub use api::response::HttpResponse;
pub use api::sender::Sender;
pub use api::server::{NoHandler, Server, ServerBuilder, ServerHandle};
pub use api::stats::{Closes, Refusals, Stats};
pub use api::types::{Decision, Delivery, MessageRef};
