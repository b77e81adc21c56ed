//! silverback: a WebSocket (RFC 6455) library on `mio`, written by hand.
//!
//! ```text
//!        your program (echo server, push service, load generator, fuzzer)
//!  ┌────────────────────────────┬──────────────────────────────────┐
//!  │ blocking: Upgrader, Dialer │ event loop (mio): Server, Client │   IO layers
//!  │ Conn, MessageReader/Writer │ Handler, Ctx, Sender, timers     │
//!  └─────────────┬──────────────┴────────────────┬─────────────────┘
//!  ┌─────────────┴───────────────────────────────┴─────────────────┐
//!  │ proto: Connection (decoder, encoder, deflate, closing         │   sans-IO core:
//!  │ handshake, timers), handshake objects, frame codec, UTF-8     │   bytes in, events out
//!  └───────────────────────────────────────────────────────────────┘
//! ```
//!
//! * [`proto`] is the protocol core: every rule of RFC 6455 lives there once, with no
//!   socket, clock or thread. [`proto::Connection`] is one connection's state
//!   machine (bytes and time in; events, bytes to transmit and deadlines out) and
//!   [`proto::handshake`] has the opening handshake in both roles; both IO layers
//!   below are drivers of them. It is what the fuzzers hammer.
//! * [`blocking`] mirrors gorilla/websocket over any `Read + Write`:
//!   [`Conn::read_message`], [`Conn::next_reader`] (a message as an `io::Read`, pulled
//!   frame by frame), [`Conn::next_writer`] (an `io::Write` that emits fragments),
//!   [`Conn::write_control`], handlers, deadlines, and [`Conn::split`] for a reader
//!   thread and a writer thread.
//! * [`event`] runs many connections on one `mio::Poll` per thread: a [`Handler`]
//!   with callbacks, [`Sender`](event::Sender)s for other threads, timers.
//!
//! [`Handler`]: event::Handler
//!
//! The default build depends on `mio`, `httparse`, `sha1`, `base64` and `rand` only.
//! Without its default feature `std` the crate is `#![no_std]` + `alloc` and holds
//! the protocol core alone, for microcontrollers (docs/no_std.md).
//! Optional features: `deflate` (permessage-deflate, flate2), `json` (serde_json
//! helpers), `tls` (`wss://` in both roles and both layers, rustls with ring; see
//! the `tls` module) and `tls-webpki-roots` (Mozilla's roots for clients).
//!
//! # Example
//!
//! An echo server and a client, over loopback:
//!
//! ```
//! use silverback::{CloseCode, Dialer, Error, Message, Upgrader};
//!
//! let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
//! let addr = listener.local_addr()?;
//! let server = std::thread::spawn(move || -> silverback::Result<()> {
//!     let (stream, _) = listener.accept()?;
//!     let mut conn = Upgrader::new().upgrade(stream)?;
//!     loop {
//!         match conn.read_message() {
//!             Ok(msg) => conn.send(&msg)?,
//!             Err(Error::Closed(_)) => return Ok(()), // the client said goodbye
//!             Err(e) => return Err(e),
//!         }
//!     }
//! });
//!
//! let (mut client, _response) = Dialer::new().dial(&format!("ws://{addr}/echo"))?;
//! client.send(&Message::Text("hello".into()))?;
//! assert_eq!(client.read_message()?, Message::Text("hello".into()));
//! client.close(CloseCode::NORMAL, "bye")?;
//! server.join().unwrap()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

#[cfg(feature = "std")]
mod backoff;
#[cfg(feature = "std")]
pub mod blocking;
#[cfg(feature = "std")]
mod error;
#[cfg(feature = "std")]
pub mod event;
#[cfg(feature = "std")]
mod forward_proxy;
#[cfg(feature = "handover")]
pub mod handover;
#[cfg(all(feature = "handover", not(unix)))]
compile_error!("feature `handover` passes sockets over a Unix socket: Unix only");
#[cfg(feature = "json")]
pub mod json;
#[cfg(feature = "std")]
mod logging;
#[cfg(feature = "std")]
mod message;
#[cfg(feature = "probe")]
pub mod probe;
pub mod proto;
#[cfg(feature = "std")]
mod settings;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(feature = "std")]
pub mod url;

#[cfg(feature = "std")]
pub use blocking::{Conn, Dialer, MessageReader, MessageWriter, Upgrader};

/// The code blocks of README.md, compiled (and run where not marked `no_run`) as
/// documentation tests, so the README stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
/// The gorilla/websocket guide's Rust blocks, compiled the same way.
#[cfg(doctest)]
#[doc = include_str!("../docs/from-gorilla.md")]
pub struct FromGorillaDoctests;
/// The tungstenite guide's Rust blocks, compiled the same way.
#[cfg(doctest)]
#[doc = include_str!("../docs/from-tungstenite.md")]
pub struct FromTungsteniteDoctests;
/// The no_std guide's Rust blocks, compiled the same way.
#[cfg(doctest)]
#[doc = include_str!("../docs/no_std.md")]
pub struct NoStdDoctests;
/// The topics guide's Rust blocks, compiled and run the same way.
#[cfg(all(doctest, feature = "std"))]
#[doc = include_str!("../docs/pubsub.md")]
pub struct PubSubDoctests;
/// The handover guide's Rust blocks, compiled the same way (feature `handover`).
#[cfg(all(doctest, feature = "handover"))]
#[doc = include_str!("../docs/handover.md")]
pub struct HandoverDoctests;
#[cfg(feature = "std")]
pub use backoff::Backoff;
#[cfg(feature = "std")]
pub use error::{Error, Result};
#[cfg(feature = "std")]
pub use forward_proxy::{Proxy, ProxyChoice, ProxyScheme, no_proxy_matches};
#[cfg(feature = "std")]
pub use message::Message;
pub use proto::{CloseCode, CloseFrame, OpCode};
pub use proto::{HandshakeError, Lost, ProtocolError, UsageError};
pub use proto::{MessageKind, Role};
#[cfg(feature = "std")]
pub use settings::Settings;
