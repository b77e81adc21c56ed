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
//!   poll ─► readable ─► read into a pooled buffer ─► Decoder ─► Handler callbacks
//!                                                               │ ctx.send(...)
//!   Sender (any thread) ─► channel + waker ─► command ──────────┤
//!   timers (heartbeat, idle, close, user) ──────────────────────┤
//!                                                               ▼
//!                      output queue (one write per connection per iteration)
//! ```
//!
//! Bounded everywhere: handshake size and time, message size, output queue per
//! connection ([`Backpressure`]), connections per loop.

mod client;
mod config;
mod conn;
mod ctx;
mod handler;
mod server;
mod slab;
mod timer;
mod worker;

pub use client::{Client, ClientBuilder, ClientHandle};
pub use config::{Backpressure, LoopConfig};
pub use ctx::{ConnId, Ctx, LoopCtx, LoopWriter, Prepared, Sender, TimerId};
pub use handler::{Decision, Delivery, Handler, HttpRequest, HttpResponse, MessageRef};
pub use server::{NoHandler, Server, ServerBuilder, ServerHandle};
