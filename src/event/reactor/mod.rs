//! The loop itself: one `mio::Poll` per thread, its timers, its mailbox, the
//! listener, and the driving of every connection through its phases (the server
//! handshake and the HTTP hook, the client handshake, frames to the handler) with
//! the handler's callbacks, until the connection is settled after each event.
//! One concern per file: `worker` (the run loop and the borrows a callback needs),
//! `core` (loop state callbacks reach), `mailbox` (other threads' commands),
//! `timers`, `topics` (who subscribed to what), `handover` (moving connections to a new process), `slab`, `accept`, `commands`, `readiness` (reading and writing on a
//! readiness event), `settle` (the end of every event: flush, back-pressure, timers,
//! teardown), `upgrade`, `connect`, `dispatch`.

mod accept;
mod commands;
mod connect;
pub(crate) mod core;
mod dispatch;
#[cfg(feature = "handover")]
pub(crate) mod handover;
pub(crate) mod limits;
pub(crate) mod mailbox;
mod proxy;
mod readiness;
mod settle;
pub(crate) mod slab;
pub(crate) mod timers;
pub(crate) mod topics;
mod upgrade;
pub(crate) mod worker;
