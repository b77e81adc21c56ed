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

mod accept;
mod client;
mod commands;
mod config;
mod conn;
mod connect;
mod core;
mod ctx;
mod dispatch;
mod handler;
mod id;
mod lifecycle;
mod mailbox;
mod prepared;
mod responder;
mod response;
mod server;
mod slab;
mod stats;
mod timers;
#[cfg(feature = "tls")]
mod tls;
mod transport;
mod types;
mod upgrade;
mod worker;

pub use client::{Client, ClientBuilder, ClientHandle};
pub use config::{Backpressure, LoopConfig};
pub use ctx::{Ctx, LoopCtx, LoopWriter};
pub use handler::Handler;
pub use id::{ConnId, TimerId};
pub use mailbox::Sender;
pub use prepared::Prepared;
pub use responder::{HttpRequest, Responder};
pub use response::HttpResponse;
pub use server::{NoHandler, Server, ServerBuilder, ServerHandle};
pub use stats::{Closes, Refusals, Stats};
pub use types::{Decision, Delivery, MessageRef};
