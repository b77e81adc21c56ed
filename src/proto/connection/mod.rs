//! One WebSocket connection as a sans-IO state machine ([`Connection`]): bytes and
//! time in, events and bytes to transmit out. One concept per file: the lifecycle
//! (`lifecycle.rs`), receiving (`recv.rs`), sending (`send.rs`) and the streaming
//! writer (`stream.rs`), the timers (`timers.rs`), the transmit queue (`tx.rs`), the
//! in-flight state and its pool (`active.rs`), the settings (`config.rs`).

use alloc::{boxed::Box, vec::Vec};

mod active;
mod config;
mod lifecycle;
mod recv;
mod send;
#[cfg(feature = "handover")]
mod snapshot;
mod stream;
mod timers;
mod tx;

use crate::proto::Shared;
use crate::proto::time::Time;

use crate::proto::encoder::Encoder;
use crate::proto::rng::Randomness;
use crate::proto::utf8::Utf8Validator;
use crate::proto::{MessageKind, Role};

use active::{Active, DecoderSetup, Limits};
use lifecycle::Lifecycle;
use timers::Keepalive;
use tx::TxQueue;

pub use config::ConnectionConfig;
pub use lifecycle::{End, State};
pub use send::{DirectFrame, PreparedFrame, check_close, check_control, check_message};
#[cfg(feature = "handover")]
pub use snapshot::{ConnectionState, DeflateState, SnapshotError};

/// A piece of a data message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk<'a> {
    /// Text or binary.
    pub kind: MessageKind,
    /// The payload bytes of this piece (decompressed, and for text validated as
    /// UTF-8 up to here; a code point may be split between pieces).
    pub data: &'a [u8],
    /// The first piece of its message.
    pub first: bool,
    /// The last piece: the message is complete (and its text valid UTF-8).
    pub last: bool,
    /// The bytes were decompressed into the caller's scratch buffer. Otherwise they
    /// are the last `data.len()` bytes of the input consumed by this `read`.
    pub inflated: bool,
}

/// What [`Connection::read`] found in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A piece of a text or binary message. A message that arrived in one frame of
    /// at most [`read_buffer_size`](ConnectionConfig::read_buffer_size) bytes (and
    /// was not compressed) is one piece with `first && last`.
    Message(Chunk<'a>),
    /// A ping; the pong is already queued when [`auto_pong`](ConnectionConfig::auto_pong)
    /// is on.
    Ping(&'a [u8]),
    /// A pong.
    Pong(&'a [u8]),
    /// The peer's close frame ([`CloseCode::NO_STATUS`](crate::proto::CloseCode) for
    /// an empty one). The echo is queued; [`Connection::close`] before it is
    /// transmitted replaces it.
    Close {
        /// The peer's close code.
        code: crate::proto::CloseCode,
        /// The peer's reason.
        reason: &'a str,
    },
}

/// A message being sent piece by piece: its kind, UTF-8 state and staged bytes.
#[derive(Debug)]
struct Outgoing {
    kind: MessageKind,
    /// A frame of this message went out (the next one is a continuation).
    started: bool,
    /// Written through the buffered writer (`stream_*`): text is held back at code
    /// point boundaries. Otherwise sent fragment by fragment (`send_fragment`).
    buffered: bool,
    utf8: Option<Utf8Validator>,
    /// Bytes waiting to fill a fragment (compressed bytes with permessage-deflate).
    stage: Vec<u8>,
    /// Compressed text: an incomplete code point kept uncompressed until the next
    /// write completes it (so a message that stops inside one can still end validly).
    #[cfg_attr(not(feature = "deflate"), allow(dead_code))]
    ztail: Vec<u8>,
    /// The message is compressed (decided when it started; every frame of a
    /// message follows its first).
    compressed: bool,
}

/// permessage-deflate state of a connection.
#[cfg(feature = "deflate")]
#[derive(Debug)]
struct Compression {
    /// What was negotiated (a handover saves it).
    #[cfg_attr(not(feature = "handover"), allow(dead_code))]
    params: crate::proto::deflate::DeflateParams,
    deflater: crate::proto::deflate::MessageDeflater,
    inflater: crate::proto::deflate::MessageInflater,
    /// Messages we start are compressed (see `set_write_compression`).
    write: bool,
}

/// One WebSocket connection as a sans-IO state machine: bytes and time in, events
/// and bytes to transmit out.
///
/// ```text
///   received bytes ──► read() ──► Event (message piece, ping, pong, close)
///                        │ obligated replies (pong, close echo, failure close)
///   send / stream / ping / close ─────────┤
///   handle_timeout(now) (heartbeat, idle, close wait) ──┤
///                                                       ▼
///                 transmit() ──► your transport ──► advance_transmit(n)
///   poll_timeout() ──► when to call handle_timeout next
///   should_close_transport() ──► when to close the transport (§7.1.1)
/// ```
///
/// A [`Connection`] owns the decoder, the encoder, the permessage-deflate state, the
/// closing handshake (its [`State`]) and the keepalive, idle and close timers. It
/// never reads a clock, a socket or a thread: the caller passes the time in and
/// moves the bytes. Every rule that makes a connection correct lives here once, and
/// both IO layers of this crate (the blocking [`Conn`](crate::Conn) and the event
/// loop) are drivers of it.
///
/// # Driving it
///
/// The methods fall in five groups (quinn-proto's shape):
///
/// * **inputs** — what happened: [`read`](Connection::read) (bytes received),
///   [`handle_timeout`](Connection::handle_timeout) (time passed),
///   [`handle_eof`](Connection::handle_eof) (the peer closed the transport),
///   [`handle_write_failure`](Connection::handle_write_failure) (the transport
///   refused our bytes);
/// * **outputs** — what to do: [`transmit`](Connection::transmit) /
///   [`advance_transmit`](Connection::advance_transmit) (bytes to write),
///   [`poll_timeout`](Connection::poll_timeout) (when to call `handle_timeout`),
///   [`should_close_transport`](Connection::should_close_transport);
/// * **sends** — what the application says: [`send`](Connection::send),
///   [`send_fragment`](Connection::send_fragment), the streaming writer
///   ([`stream_write`](Connection::stream_write),
///   [`stream_flush`](Connection::stream_flush),
///   [`stream_end`](Connection::stream_end)), [`ping`](Connection::ping),
///   [`pong`](Connection::pong), [`close`](Connection::close),
///   [`send_prepared`](Connection::send_prepared) (a frame encoded once for many
///   connections), and one zero-copy path for large frames,
///   [`send_direct`](Connection::send_direct);
/// * **settings** — [`set_read_limit`](Connection::set_read_limit),
///   [`set_write_compression`](Connection::set_write_compression);
/// * **getters** — [`state`](Connection::state), [`end`](Connection::end),
///   [`role`](Connection::role), [`subprotocol`](Connection::subprotocol),
///   [`is_compressed`](Connection::is_compressed).
///
/// A driver loops: feed what arrived to `read` until it returns no event (each
/// event borrows the input; handle it, drop the consumed bytes); write
/// `transmit()` and report what went out with `advance_transmit`; if
/// `should_close_transport()`, close the transport; otherwise wait for input, at
/// most until `poll_timeout()`, and call `handle_timeout(now)` when that passes.
/// Sends may come at any point between; they only queue bytes for `transmit`.
///
/// # The closing handshake
///
/// * The peer's close frame is answered with a close echoing its code (RFC 6455
///   §5.5.1), queued at once; calling [`Connection::close`] before that echo went out
///   replaces it with your own code and reason.
/// * A server closes the transport once its close frame is transmitted and the
///   peer's was received (or the connection failed): §7.1.1 has the server close the
///   TCP connection first. A client waits up to
///   [`close_timeout`](ConnectionConfig::close_timeout) for the server to do so.
/// * A close we sent that the peer never answers ends the connection after
///   `close_timeout` ([`Lost::CloseTimeout`](crate::proto::Lost)).
/// * A protocol violation by the peer fails the connection (§7.1.7): the matching
///   close code is queued and [`read`](Connection::read) returns the error once;
///   input after it is discarded, as is input after the peer's close.
///
/// # Example
///
/// A client and a server connection talking through two in-memory pipes:
///
/// ```
/// use std::sync::Arc;
/// use std::time::Instant;
/// use silverback::proto::{Connection, ConnectionConfig, Event, MessageKind, Randomness, Role};
///
/// let now = Instant::now();
/// let config = Arc::new(ConnectionConfig::default());
/// let mut client = Connection::new(Role::Client, config.clone(), Randomness::thread(), now);
/// let mut server = Connection::new(Role::Server, config, Randomness::thread(), now);
///
/// client.send(MessageKind::Text, b"hello").unwrap();
/// let mut wire = client.transmit().to_vec();
/// client.advance_transmit(wire.len());
///
/// let mut scratch = Vec::new();
/// let (used, event) = server.read(&mut wire, &mut scratch, now).unwrap();
/// match event {
///     Some(Event::Message(chunk)) => assert_eq!(chunk.data, b"hello"),
///     other => panic!("{other:?}"),
/// }
/// assert_eq!(used, wire.len());
/// ```
#[derive(Debug)]
pub struct Connection {
    config: Shared<ConnectionConfig>,
    /// Framing rules of what we send (sequence, control limits, masking).
    enc: Encoder,
    /// Where the connection is in its life, with its ending's data.
    life: Lifecycle,
    /// Answer pings automatically (from the config; a driver may turn it off).
    auto_pong: bool,
    /// The state of frames and messages in flight; `None` while the connection is
    /// at rest (see [`Active`]).
    active: Option<Box<Active>>,
    /// Read limits set on this connection, when they differ from the config's.
    limits: Option<Box<Limits>>,
    keepalive: Keepalive,
    out: Option<Box<Outgoing>>,
    subprotocol: Option<Box<str>>,
    #[cfg(feature = "deflate")]
    z: Option<Box<Compression>>,
}

impl Connection {
    /// A connection whose opening handshake is done, playing `role`, at `now`. A
    /// client's mask keys come from `rng`: [`Randomness::thread`] (the operating
    /// system's generator) unless a run must be reproduced.
    pub fn new(
        role: Role,
        config: Shared<ConnectionConfig>,
        rng: Randomness,
        now: impl Into<Time>,
    ) -> Self {
        let now = now.into();
        let auto_pong = config.auto_pong;
        Connection {
            config,
            enc: Encoder::with_randomness(role, rng),
            life: Lifecycle::default(),
            auto_pong,
            active: None,
            limits: None,
            keepalive: Keepalive {
                last_rx: now,
                last_ping: now,
                awaiting_pong: false,
            },
            out: None,
            subprotocol: None,
            #[cfg(feature = "deflate")]
            z: None,
        }
    }

    /// Turns on permessage-deflate with negotiated `params` (the handshake objects do
    /// this when they negotiate it).
    #[cfg(feature = "deflate")]
    pub(crate) fn enable_deflate(
        &mut self,
        params: &crate::proto::deflate::DeflateParams,
        cfg: &crate::proto::deflate::DeflateConfig,
    ) {
        use crate::proto::deflate::{MessageDeflater, MessageInflater};
        let role = self.role();
        if let Some(a) = self.active.as_mut() {
            a.dec.set_rsv1_allowed(true);
        }
        self.z = Some(Box::new(Compression {
            params: *params,
            write: true,
            deflater: MessageDeflater::new(params, role, cfg),
            inflater: MessageInflater::with_memory(
                params,
                role,
                self.max_message_size(),
                cfg.memory,
            ),
        }));
    }

    /// The read limits in force.
    fn limits(&self) -> Limits {
        self.limits.as_deref().copied().unwrap_or(Limits {
            max_message_size: self.config.max_message_size,
            whole_frame_max: self.config.read_buffer_size,
        })
    }

    fn decoder_setup(&self) -> DecoderSetup {
        DecoderSetup {
            role: self.role(),
            limits: self.limits(),
            rsv1: self.is_compressed(),
        }
    }

    /// The in-flight state, taken from the pool if the connection was at rest.
    fn act(&mut self) -> &mut Active {
        let setup = self.decoder_setup();
        active::activate(&mut self.active, setup)
    }

    /// Gives the in-flight state back to the pool once nothing is in flight.
    fn settle(&mut self) {
        if self.life.is_open()
            && self.active.as_deref().is_some_and(Active::at_rest)
            && let Some(b) = self.active.take()
        {
            Active::give_back(b);
        }
    }

    /// The transmit queue, if the connection holds one.
    fn tx(&self) -> Option<&TxQueue> {
        self.active.as_deref().map(|a| &a.tx)
    }

    // ---- getters ----

    /// Client or server.
    pub fn role(&self) -> Role {
        self.enc.role()
    }

    /// The subprotocol the handshake selected, if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }

    /// True if permessage-deflate is in use.
    pub fn is_compressed(&self) -> bool {
        #[cfg(feature = "deflate")]
        return self.z.is_some();
        #[cfg(not(feature = "deflate"))]
        false
    }

    /// True if the messages we start now are compressed: permessage-deflate is in
    /// use and [`set_write_compression`](Self::set_write_compression) has not
    /// turned it off. (Small messages go uncompressed all the same, below the
    /// configured threshold.)
    pub(crate) fn write_compression(&self) -> bool {
        #[cfg(feature = "deflate")]
        return self.z.as_ref().is_some_and(|z| z.write);
        #[cfg(not(feature = "deflate"))]
        false
    }

    // ---- settings ----

    /// Compresses the messages we start from now on (`true`, the default once
    /// permessage-deflate is negotiated) or sends them uncompressed, RSV1 clear
    /// (RFC 7692 §6: an endpoint may send any message uncompressed), as gorilla's
    /// `EnableWriteCompression`. For data that does not shrink (JPEG frames,
    /// already-compressed blobs) it saves the compressor's CPU. A message already
    /// started keeps its choice; the peer's messages are unaffected; without
    /// permessage-deflate it does nothing.
    pub fn set_write_compression(&mut self, on: bool) {
        #[cfg(feature = "deflate")]
        if let Some(z) = self.z.as_mut() {
            z.write = on;
        }
        #[cfg(not(feature = "deflate"))]
        let _ = on;
    }

    /// Sets this connection's read limit (largest message; 1009 beyond).
    pub fn set_read_limit(&mut self, limit: u64) {
        let limits = Limits {
            max_message_size: limit,
            ..self.limits()
        };
        self.limits = Some(Box::new(limits));
        if let Some(a) = self.active.as_mut() {
            a.dec.set_max_message_size(limit);
        }
        #[cfg(feature = "deflate")]
        if let Some(z) = self.z.as_mut() {
            z.inflater.set_limit(limit);
        }
    }

    // ---- outputs ----

    /// The bytes waiting to be transmitted, in order (empty when there are none).
    pub fn transmit(&self) -> &[u8] {
        self.tx().map_or(&[], TxQueue::pending)
    }

    /// Marks the first `n` bytes of [`transmit`](Self::transmit) as transmitted.
    pub fn advance_transmit(&mut self, n: usize) {
        if let Some(a) = self.active.as_mut() {
            a.tx.advance(n);
        }
        self.settle();
    }

    // ---- for this crate's drivers ----

    /// Number of bytes waiting to be transmitted.
    #[cfg_attr(not(feature = "std"), allow(dead_code))] // used by the IO layers
    pub(crate) fn buffered(&self) -> usize {
        self.tx().map_or(0, TxQueue::len)
    }

    /// Turns automatic pongs on or off (a blocking connection whose application
    /// answers pings itself turns them off).
    #[cfg_attr(not(feature = "std"), allow(dead_code))] // used by the IO layers
    pub(crate) fn set_auto_pong(&mut self, on: bool) {
        self.auto_pong = on;
    }

    /// Records the subprotocol the handshake selected.
    pub(crate) fn set_subprotocol(&mut self, protocol: Option<&str>) {
        self.subprotocol = protocol.map(Into::into);
    }

    /// The read limit (largest message accepted).
    #[cfg(feature = "deflate")]
    fn max_message_size(&self) -> u64 {
        self.limits().max_message_size
    }

    /// Sets the largest payload delivered whole (the driver's read buffer).
    #[cfg_attr(not(feature = "std"), allow(dead_code))] // used by the IO layers
    pub(crate) fn set_read_buffer_size(&mut self, n: usize) {
        let limits = Limits {
            whole_frame_max: n,
            ..self.limits()
        };
        self.limits = Some(Box::new(limits));
        if let Some(a) = self.active.as_mut() {
            a.dec.set_whole_frame_max(n);
        }
    }

    /// True while a message we send fragment by fragment is open.
    pub(crate) fn in_message(&self) -> bool {
        self.enc.in_message() || self.out.is_some()
    }

    /// True if [`read`](Self::read) has something to deliver without new input (the
    /// rest of a compressed message).
    #[cfg_attr(not(feature = "std"), allow(dead_code))] // used by the IO layers
    pub(crate) fn wants_read(&self) -> bool {
        #[cfg(feature = "deflate")]
        return self
            .active
            .as_deref()
            .and_then(|a| a.inflating)
            .is_some_and(|i| i.active);
        #[cfg(not(feature = "deflate"))]
        false
    }

    /// True if [`read`](Self::read) uses its `now` (the heartbeat or the idle timeout
    /// counts from received bytes, or a client times its wait for the server's
    /// close): a driver may skip reading its clock otherwise.
    #[cfg_attr(not(feature = "std"), allow(dead_code))] // used by the IO layers
    pub(crate) fn needs_time(&self) -> bool {
        self.role() == Role::Client
            || self.config.ping_interval.is_some()
            || self.config.idle_timeout.is_some()
    }

    /// Payload bytes still to come of a data frame being delivered piece by piece
    /// (0 otherwise): a driver can size its next read with it.
    #[cfg_attr(not(feature = "std"), allow(dead_code))] // used by the IO layers
    pub(crate) fn streaming_remaining(&self) -> u64 {
        self.active
            .as_deref()
            .map_or(0, |a| a.dec.streaming_remaining())
    }

    /// Moves every byte waiting to be transmitted to the end of `dst` (a blocking
    /// split connection writes them without holding the connection's lock).
    #[cfg_attr(not(feature = "std"), allow(dead_code))] // used by the IO layers
    pub(crate) fn take_transmit(&mut self, dst: &mut Vec<u8>) {
        if let Some(a) = self.active.as_mut() {
            a.tx.take_into(dst);
        }
        self.settle();
    }

    /// Puts bytes taken with [`take_transmit`](Self::take_transmit) that could not be
    /// written back in front of the queue (a write that timed out), or the part of
    /// a `101` a driver could not write, so the stream stays whole.
    #[cfg_attr(not(feature = "std"), allow(dead_code))] // used by the IO layers
    pub(crate) fn requeue_front(&mut self, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.act().tx.push_front(bytes);
        }
    }

    /// Queues raw bytes ahead of the frames (the `101` response of a handshake).
    pub(crate) fn queue_preamble(&mut self, bytes: &[u8]) {
        self.act().tx.push_raw(bytes);
    }
}

#[cfg(test)]
impl Connection {
    /// The layout behind docs/idle-memory.md.
    pub(crate) fn print_sizes() {
        use core::mem::size_of;
        println!(
            "Connection: config {}, Encoder {}, Lifecycle {}, Keepalive {}, active {} (Active {}), limits {}, out {}, subprotocol {}",
            size_of::<Shared<ConnectionConfig>>(),
            size_of::<Encoder>(),
            size_of::<Lifecycle>(),
            size_of::<Keepalive>(),
            size_of::<Option<Box<Active>>>(),
            size_of::<Active>(),
            size_of::<Option<Box<Limits>>>(),
            size_of::<Option<Box<Outgoing>>>(),
            size_of::<Option<Box<str>>>(),
        );
    }
}

#[cfg(test)]
mod size_tests {
    #[test]
    fn print_size() {
        println!(
            "Connection: {} bytes",
            core::mem::size_of::<super::Connection>()
        );
    }
}

/// What the fuzz targets reach besides the public API (built only with `--cfg
/// fuzzing`, as cargo-fuzz builds): the paths this crate's own drivers use.
#[cfg(fuzzing)]
#[doc(hidden)]
impl Connection {
    #[cfg(feature = "deflate")]
    pub fn fuzz_enable_deflate(
        &mut self,
        params: &crate::proto::deflate::DeflateParams,
        cfg: &crate::proto::deflate::DeflateConfig,
    ) {
        self.enable_deflate(params, cfg);
    }

    pub fn fuzz_take_transmit(&mut self, dst: &mut Vec<u8>) {
        self.take_transmit(dst);
    }

    pub fn fuzz_requeue_front(&mut self, bytes: &[u8]) {
        self.requeue_front(bytes);
    }

    pub fn fuzz_send_control(
        &mut self,
        now: impl Into<Time>,
        op: crate::proto::OpCode,
        payload: &[u8],
    ) -> Result<(), crate::proto::SendError> {
        self.send_control(now.into(), op, payload)
    }
}
