//! One WebSocket connection as a sans-IO state machine: bytes and time in, events
//! and bytes to transmit out.
//!
//! ```text
//!   received bytes ──► read() ──► Event (message piece, ping, pong, close)
//!                        │ obligated replies (pong, close echo, failure close)
//!   send / stream / ping / close ─────────┤
//!   handle_timeout(now) (heartbeat, idle, close wait) ──┤
//!                                                       ▼
//!                 transmit() ──► your transport ──► advance_transmit(n)
//!   poll_timeout() ──► when to call handle_timeout next
//!   should_close_transport() ──► when to close the transport (§7.1.1)
//! ```
//!
//! A [`Connection`] owns the decoder, the encoder, the permessage-deflate state, the
//! closing handshake and the keepalive, idle and close timers. It never reads a
//! clock, a socket or a thread: the caller passes the time in and moves the bytes.
//! Every rule that makes a connection correct lives here once, and both IO layers of
//! this crate (the blocking [`Conn`](crate::Conn) and the event loop) are drivers of
//! it: read bytes, feed them, write what it asks, wait until its deadline.
//!
//! The closing handshake, as this state machine runs it:
//!
//! * The peer's close frame is answered with a close echoing its code (RFC 6455
//!   §5.5.1), queued at once; calling [`Connection::close`] before that echo went out
//!   replaces it with your own code and reason.
//! * A server closes the transport once its close frame is transmitted and the
//!   peer's was received (or the connection failed): §7.1.1 has the server close the
//!   TCP connection first. A client waits up to
//!   [`close_timeout`](ConnectionConfig::close_timeout) for the server to do so
//!   ([`handle_eof`](Connection::handle_eof)), then gives up.
//! * A close we sent that the peer never answers ends the connection after
//!   `close_timeout`.
//! * A protocol violation by the peer fails the connection (§7.1.7): the matching
//!   close code is queued and [`read`](Connection::read) returns the error once;
//!   input after it is discarded.
//!
//! # Example
//!
//! A client and a server connection talking through two in-memory pipes:
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Instant;
//! use silverback::proto::connection::{Connection, ConnectionConfig, Event};
//! use silverback::proto::{MessageKind, Role};
//!
//! let now = Instant::now();
//! let config = Arc::new(ConnectionConfig::default());
//! let mut client = Connection::new(Role::Client, config.clone(), now);
//! let mut server = Connection::new(Role::Server, config, now);
//!
//! client.send(MessageKind::Text, b"hello").unwrap();
//! let mut wire = client.transmit().to_vec();
//! client.advance_transmit(wire.len());
//!
//! let mut scratch = Vec::new();
//! let (used, event) = server.read(&mut wire, &mut scratch, now).unwrap();
//! match event {
//!     Some(Event::Message(chunk)) => assert_eq!(chunk.data, b"hello"),
//!     other => panic!("{other:?}"),
//! }
//! assert_eq!(used, wire.len());
//! ```

mod recv;
mod send;
mod timers;
mod tx;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::proto::close::CloseCode;
use crate::proto::decoder::{DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_WHOLE_FRAME_MAX, Decoder};
use crate::proto::encoder::{EncodedHeader, Encoder};
use crate::proto::rng::Randomness;
use crate::proto::utf8::Utf8Validator;
use crate::proto::{MessageKind, Role};

use timers::Stamp;
use tx::TxQueue;

pub use send::{check_close, check_control, check_message};

/// The settings of a connection, shared (behind an `Arc`) by every connection of an
/// endpoint. Build with [`Default`] and the setters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionConfig {
    /// Largest message accepted; a larger one fails the connection with 1009 as soon
    /// as a frame header announces it (or, compressed, as it inflates past it).
    /// Default: 64 MiB.
    pub max_message_size: u64,
    /// Data frames with a payload up to this size are delivered whole, as one piece;
    /// larger ones are delivered piece by piece as their bytes arrive. A driver whose
    /// read buffer holds `B` bytes past a frame header must set at most `B`.
    /// Default: 64 KiB.
    pub whole_frame_max: usize,
    /// Size of the fragments the streaming writer ([`Connection::stream_write`])
    /// emits. Default: 4096.
    pub fragment_size: usize,
    /// Answer pings with pongs automatically. Default: true.
    pub auto_pong: bool,
    /// Send a ping this often while the connection is open (`None`: never).
    /// Default: none.
    pub ping_interval: Option<Duration>,
    /// Fail a peer that sent nothing at all within this time after our heartbeat
    /// ping. Default: 10 s.
    pub pong_timeout: Duration,
    /// Close (1001) a connection that received nothing for this long (`None`:
    /// never). Default: none.
    pub idle_timeout: Option<Duration>,
    /// How long to wait for the peer's close frame after ours, and, as a client, for
    /// the server to close the transport after the closing handshake. Default: 5 s.
    pub close_timeout: Duration,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            whole_frame_max: DEFAULT_WHOLE_FRAME_MAX,
            fragment_size: 4096,
            auto_pong: true,
            ping_interval: None,
            pong_timeout: Duration::from_secs(10),
            idle_timeout: None,
            close_timeout: Duration::from_secs(5),
        }
    }
}

impl ConnectionConfig {
    /// See [`max_message_size`](#structfield.max_message_size). Default: 64 MiB.
    pub fn max_message_size(mut self, n: u64) -> Self {
        self.max_message_size = n;
        self
    }

    /// See [`whole_frame_max`](#structfield.whole_frame_max). Default: 64 KiB.
    pub fn whole_frame_max(mut self, n: usize) -> Self {
        self.whole_frame_max = n;
        self
    }

    /// See [`fragment_size`](#structfield.fragment_size). Default: 4096 (at least 4).
    pub fn fragment_size(mut self, n: usize) -> Self {
        self.fragment_size = n;
        self
    }

    /// See [`auto_pong`](#structfield.auto_pong). Default: true.
    pub fn auto_pong(mut self, on: bool) -> Self {
        self.auto_pong = on;
        self
    }

    /// Heartbeat: ping every `interval`, fail a peer silent for `pong_timeout` after
    /// a ping. Default: off.
    pub fn heartbeat(mut self, interval: Option<Duration>, pong_timeout: Duration) -> Self {
        self.ping_interval = interval;
        self.pong_timeout = pong_timeout;
        self
    }

    /// See [`idle_timeout`](#structfield.idle_timeout). Default: none.
    pub fn idle_timeout(mut self, t: Option<Duration>) -> Self {
        self.idle_timeout = t;
        self
    }

    /// See [`close_timeout`](#structfield.close_timeout). Default: 5 s.
    pub fn close_timeout(mut self, t: Duration) -> Self {
        self.close_timeout = t;
        self
    }
}

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
    /// at most [`whole_frame_max`](ConnectionConfig::whole_frame_max) bytes (and was
    /// not compressed) is one piece with `first && last`.
    Message(Chunk<'a>),
    /// A ping; the pong is already queued when [`auto_pong`](ConnectionConfig::auto_pong)
    /// is on.
    Ping(&'a [u8]),
    /// A pong.
    Pong(&'a [u8]),
    /// The peer's close frame ([`CloseCode::NO_STATUS`] for an empty one). The echo
    /// is queued; [`Connection::close`] before it is transmitted replaces it.
    Close {
        /// The peer's close code.
        code: CloseCode,
        /// The peer's reason.
        reason: &'a str,
    },
}

/// A data frame accepted by [`Connection::send_direct`], to be written straight from
/// the caller's payload after the bytes already in [`Connection::transmit`].
#[derive(Debug)]
#[must_use = "the frame is part of the stream: write it, or queue what was not written"]
pub struct DirectFrame<'d> {
    header: EncodedHeader,
    payload: &'d [u8],
}

impl<'d> DirectFrame<'d> {
    /// The frame header.
    pub fn header(&self) -> &[u8] {
        self.header.as_bytes()
    }

    /// The payload, to be written after the header.
    pub fn payload(&self) -> &'d [u8] {
        self.payload
    }

    /// Header plus payload length.
    pub fn len(&self) -> usize {
        self.header.as_bytes().len() + self.payload.len()
    }

    /// True for an empty frame (never: a header is at least two bytes).
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Where the connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Messages flow both ways.
    Open,
    /// We sent a close frame and wait for the peer's.
    CloseSent,
    /// Both close frames were exchanged (ours may still be queued).
    Closed,
    /// We failed the connection (the peer broke the protocol); our close is queued.
    Failed,
    /// The transport is finished: end of input seen, or a timer ran out.
    Done,
}

/// The keepalive clock: what was received and pinged when (compact stamps: every
/// connection carries this).
#[derive(Debug, Clone, Copy)]
struct Keepalive {
    last_rx: Stamp,
    /// When the heartbeat last pinged (or tried to).
    last_ping: Stamp,
    /// Our heartbeat ping (sent at `last_ping`) has had no answer yet.
    awaiting_pong: bool,
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
}

/// A compressed message being inflated: its kind, whether a piece was delivered,
/// and the compressed piece the caller still holds at the front of its input.
#[cfg(feature = "deflate")]
#[derive(Debug, Clone, Copy)]
struct Inflating {
    kind: MessageKind,
    started: bool,
    /// Compressed bytes of the current piece still at the front of the input.
    pending: usize,
    /// The current piece ends the message.
    last: bool,
    /// A piece is being stepped through.
    active: bool,
}

/// permessage-deflate state of a connection.
#[cfg(feature = "deflate")]
#[derive(Debug)]
struct Compression {
    deflater: crate::proto::deflate::MessageDeflater,
    inflater: crate::proto::deflate::MessageInflater,
}

/// One WebSocket connection in one role. See the [module documentation](self).
#[derive(Debug)]
pub struct Connection {
    config: Arc<ConnectionConfig>,
    enc: Encoder,
    state: State,
    /// The peer's close frame was received.
    peer_closed: bool,
    /// Answer pings automatically (from the config; a driver may turn it off).
    auto_pong: bool,
    /// A write of ours failed mid-frame: nothing more can be sent.
    broken: bool,
    /// The state of frames and messages in flight; `None` while the connection is
    /// at rest (see [`Active`]).
    active: Option<Box<Active>>,
    /// Read limits set on this connection, when they differ from the config's.
    limits: Option<Box<Limits>>,
    keepalive: Keepalive,
    out: Option<Box<Outgoing>>,
    /// How the connection ended (or is ending): the peer's close, ours, or 1006.
    end: Option<Box<(CloseCode, String)>>,
    subprotocol: Option<Box<str>>,
    #[cfg(feature = "deflate")]
    z: Option<Box<Compression>>,
}

/// Read limits of one connection (see [`Connection::set_max_message_size`]).
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_message_size: u64,
    whole_frame_max: usize,
}

/// What a connection holds only while something is in flight: a frame or message
/// partly received, bytes queued for the transport, the closing handshake.
///
/// An idle open connection (between messages, nothing queued) holds none of it: the
/// box goes back to a per-thread pool ([`ACTIVE_SPARES`]) and the next read or send
/// takes one, so thousands of idle connections cost only their small fixed part.
#[derive(Debug)]
struct Active {
    dec: Decoder,
    tx: TxQueue,
    /// When a close-related wait ends (see [`State`]).
    close_deadline: Option<Instant>,
    /// Where the echo of the peer's close starts in the queue (it may be replaced
    /// until transmitted).
    echo_at: Option<u64>,
    #[cfg(feature = "deflate")]
    inflating: Option<Inflating>,
}

/// How many resting [`Active`] boxes a thread keeps for its next busy connection.
const ACTIVE_SPARES: usize = 16;

thread_local! {
    // Boxes, not values: a connection takes and returns the allocation itself.
    #[allow(clippy::vec_box)]
    static ACTIVE_POOL: std::cell::RefCell<Vec<Box<Active>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// `active`, taken from the pool with a decoder set up by `setup` if it is empty
/// (a free function so that callers can borrow other fields beside it).
fn activate(active: &mut Option<Box<Active>>, setup: DecoderSetup) -> &mut Active {
    active.get_or_insert_with(|| Active::take(setup))
}

/// What a fresh decoder of a connection is set up with.
#[derive(Debug, Clone, Copy)]
struct DecoderSetup {
    role: Role,
    limits: Limits,
    rsv1: bool,
}

impl Active {
    /// A box from the thread's pool (or a new one), its decoder set up afresh.
    fn take(setup: DecoderSetup) -> Box<Active> {
        let mut dec = Decoder::new(setup.role);
        dec.set_max_message_size(setup.limits.max_message_size);
        dec.set_whole_frame_max(setup.limits.whole_frame_max);
        dec.set_rsv1_allowed(setup.rsv1);
        let fresh = Active {
            dec,
            tx: TxQueue::default(),
            close_deadline: None,
            echo_at: None,
            #[cfg(feature = "deflate")]
            inflating: None,
        };
        match ACTIVE_POOL.try_with(|p| p.borrow_mut().pop()) {
            Ok(Some(mut b)) => {
                *b = fresh;
                b
            }
            _ => Box::new(fresh),
        }
    }

    /// Nothing in flight: the box can go back to the pool.
    fn at_rest(&self) -> bool {
        #[cfg(feature = "deflate")]
        if self.inflating.is_some() {
            return false;
        }
        self.dec.at_rest()
            && self.tx.is_empty()
            && self.close_deadline.is_none()
            && self.echo_at.is_none()
    }

    fn give_back(b: Box<Active>) {
        // During thread teardown the pool may be gone; the box is then just freed.
        let _ = ACTIVE_POOL.try_with(|p| {
            let mut p = p.borrow_mut();
            if p.len() < ACTIVE_SPARES {
                p.push(b);
            }
        });
    }
}

impl Connection {
    /// A connection whose opening handshake is done, playing `role`. A client's mask
    /// keys come from the thread-local generator.
    pub fn new(role: Role, config: Arc<ConnectionConfig>, now: Instant) -> Self {
        Self::with_randomness(role, config, Randomness::thread(), now)
    }

    /// A connection whose mask keys (client role) come from `rng` (seed it for a
    /// reproducible run).
    pub fn with_randomness(
        role: Role,
        config: Arc<ConnectionConfig>,
        rng: Randomness,
        now: Instant,
    ) -> Self {
        let auto_pong = config.auto_pong;
        Connection {
            config,
            enc: Encoder::with_randomness(role, rng),
            state: State::Open,
            peer_closed: false,
            auto_pong,
            broken: false,
            active: None,
            limits: None,
            keepalive: Keepalive {
                last_rx: Stamp::of(now),
                last_ping: Stamp::of(now),
                awaiting_pong: false,
            },
            out: None,
            end: None,
            subprotocol: None,
            #[cfg(feature = "deflate")]
            z: None,
        }
    }

    /// Turns on permessage-deflate with negotiated `params` (the handshake objects do
    /// this when they negotiate it).
    #[cfg(feature = "deflate")]
    pub fn enable_deflate(
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
            whole_frame_max: self.config.whole_frame_max,
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
        activate(&mut self.active, setup)
    }

    /// Gives the in-flight state back to the pool once nothing is in flight.
    fn settle(&mut self) {
        if self.state == State::Open
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

    fn close_deadline(&self) -> Option<Instant> {
        self.active.as_deref().and_then(|a| a.close_deadline)
    }

    fn echo_at(&self) -> Option<u64> {
        self.active.as_deref().and_then(|a| a.echo_at)
    }

    #[cfg(feature = "deflate")]
    fn inflating(&self) -> Option<Inflating> {
        self.active.as_deref().and_then(|a| a.inflating)
    }

    /// Turns automatic pongs on or off for this connection (a driver whose
    /// application answers pings itself turns them off).
    pub fn set_auto_pong(&mut self, on: bool) {
        self.auto_pong = on;
    }

    /// Records the subprotocol the handshake selected.
    pub fn set_subprotocol(&mut self, protocol: Option<&str>) {
        self.subprotocol = protocol.map(Into::into);
    }

    /// The subprotocol the handshake selected, if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }

    /// Client or server.
    pub fn role(&self) -> Role {
        self.enc.role()
    }

    /// The settings.
    pub fn config(&self) -> &Arc<ConnectionConfig> {
        &self.config
    }

    /// True if permessage-deflate is in use.
    pub fn is_compressed(&self) -> bool {
        #[cfg(feature = "deflate")]
        return self.z.is_some();
        #[cfg(not(feature = "deflate"))]
        false
    }

    /// True while messages may be sent: no close sent, not failed or finished.
    pub fn is_open(&self) -> bool {
        self.state == State::Open && !self.broken
    }

    /// True once we have sent (queued) a close frame.
    pub fn close_sent(&self) -> bool {
        self.enc.is_close_sent()
    }

    /// True once the peer's close frame was received.
    pub fn close_received(&self) -> bool {
        self.peer_closed
    }

    /// True once the connection is over: end of input seen or a timer ran out. The
    /// transport should be closed.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// True once the peer broke the protocol and we failed the connection.
    pub fn is_failed(&self) -> bool {
        self.state == State::Failed
    }

    /// Whether the transport should now be closed. A server closes it once its close
    /// frame is transmitted after the closing handshake or a failure (§7.1.1); a
    /// client waits for the server to close it, up to `close_timeout`.
    pub fn should_close_transport(&self) -> bool {
        match self.state {
            State::Done => true,
            State::Closed | State::Failed => {
                self.role() == Role::Server && self.tx().is_none_or(TxQueue::is_empty)
            }
            State::Open | State::CloseSent => false,
        }
    }

    /// How the connection ended, or is ending: the peer's close code and reason once
    /// received; otherwise the code we sent (closing or failing it); otherwise
    /// [`CloseCode::ABNORMAL`] (1006) once it ended without a close frame. `None`
    /// while open.
    pub fn end(&self) -> Option<(CloseCode, &str)> {
        self.end.as_deref().map(|(c, r)| (*c, r.as_str()))
    }

    fn set_end(&mut self, code: CloseCode, reason: &str, overwrite: bool) {
        if overwrite || self.end.is_none() {
            self.end = Some(Box::new((code, reason.to_owned())));
        }
    }

    /// True while a message we send fragment by fragment is open.
    pub fn in_message(&self) -> bool {
        self.enc.in_message() || self.out.is_some()
    }

    /// True if [`read`](Self::read) has something to deliver without new input (the
    /// rest of a compressed message): a driver with an empty input buffer can skip
    /// the call when this is false.
    pub fn wants_read(&self) -> bool {
        #[cfg(feature = "deflate")]
        return self.inflating().is_some_and(|i| i.active);
        #[cfg(not(feature = "deflate"))]
        false
    }

    /// True if [`read`](Self::read) uses its `now`: the heartbeat or the idle timeout
    /// counts from received bytes, or a client times its wait for the server's
    /// close. Otherwise a driver that reads its clock only for `read` may skip it
    /// and pass any earlier instant.
    pub fn needs_time(&self) -> bool {
        self.role() == Role::Client
            || self.config.ping_interval.is_some()
            || self.config.idle_timeout.is_some()
    }

    /// True while a message from the peer is partly received.
    pub fn receiving_message(&self) -> bool {
        self.active.as_deref().is_some_and(|a| a.dec.in_message())
    }

    /// The read limit (largest message accepted).
    pub fn max_message_size(&self) -> u64 {
        self.limits().max_message_size
    }

    /// Sets the read limit: a larger message fails the connection with 1009.
    pub fn set_max_message_size(&mut self, limit: u64) {
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

    /// Sets the largest payload delivered whole (see
    /// [`ConnectionConfig::whole_frame_max`]).
    pub fn set_whole_frame_max(&mut self, n: usize) {
        let limits = Limits {
            whole_frame_max: n,
            ..self.limits()
        };
        self.limits = Some(Box::new(limits));
        if let Some(a) = self.active.as_mut() {
            a.dec.set_whole_frame_max(n);
        }
    }

    /// Payload bytes still to come of a data frame being delivered piece by piece
    /// (0 otherwise): a driver can size its next read with it.
    pub fn streaming_remaining(&self) -> u64 {
        self.active
            .as_deref()
            .map_or(0, |a| a.dec.streaming_remaining())
    }

    // ---- transmit ----

    /// The bytes waiting to be transmitted, in order.
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

    /// Moves every byte waiting to be transmitted to the end of `dst` (for a driver
    /// that writes them while another thread uses the connection).
    pub fn take_transmit(&mut self, dst: &mut Vec<u8>) {
        if let Some(a) = self.active.as_mut() {
            a.tx.take_into(dst);
        }
        self.settle();
    }

    /// Queues raw bytes ahead of the frames (the `101` response of a handshake).
    pub(crate) fn queue_preamble(&mut self, bytes: &[u8]) {
        self.act().tx.push_raw(bytes);
    }

    /// Puts bytes taken with [`take_transmit`](Self::take_transmit) that could not be
    /// written back in front of the queue, so the stream stays whole.
    pub fn requeue_front(&mut self, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.act().tx.push_front(bytes);
        }
    }

    /// Number of bytes waiting to be transmitted.
    pub fn buffered(&self) -> usize {
        self.tx().map_or(0, TxQueue::len)
    }

    /// The driver could not transmit bytes it had taken (the transport failed, or a
    /// write timed out part-way through a frame): the stream is no longer whole, so
    /// nothing more can be sent ([`UsageError::BrokenWriter`](crate::UsageError))
    /// and what was queued is dropped.
    ///
    /// Reading goes on: a peer that refused what we sent (a message over its read
    /// limit) usually closed with a reason before it closed the transport, and its
    /// close frame is still to be read ([`end`](Self::end) then reports it). The
    /// connection waits for that close, or the end of input, up to `close_timeout`
    /// after `now`, then is done (1006).
    pub fn transmit_failed(&mut self, now: Instant) {
        self.broken = true;
        self.out = None;
        let deadline = now + self.config.close_timeout;
        let a = self.act();
        let queued = a.tx.len();
        a.tx.advance(queued);
        a.echo_at = None;
        if a.close_deadline.is_none_or(|d| deadline < d) {
            a.close_deadline = Some(deadline);
        }
    }
}

#[cfg(test)]
impl Connection {
    /// The layout behind docs/idle-memory.md.
    pub(crate) fn print_sizes() {
        use std::mem::size_of;
        println!(
            "Connection: config {}, Encoder {}, Keepalive {}, active {} (Active {}: Decoder {}, TxQueue {}), limits {}, out {}, end {}, subprotocol {}",
            size_of::<Arc<ConnectionConfig>>(),
            size_of::<Encoder>(),
            size_of::<Keepalive>(),
            size_of::<Option<Box<Active>>>(),
            size_of::<Active>(),
            size_of::<Decoder>(),
            size_of::<TxQueue>(),
            size_of::<Option<Box<Limits>>>(),
            size_of::<Option<Box<Outgoing>>>(),
            size_of::<Option<Box<(CloseCode, String)>>>(),
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
            std::mem::size_of::<super::Connection>()
        );
    }
}
