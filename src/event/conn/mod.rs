//! One connection on the loop: its socket, where it is in its life ([`Phase`]), the
//! protocol [`Connection`] once open, and the loop's bookkeeping (output to flush,
//! back-pressure, timers, messages waiting behind an open fragmented message). The
//! read side ([`ReadState`]) is kept apart so a handler can borrow a payload from
//! the read buffer while it sends.
//!
//! Every protocol rule is the [`Connection`]'s; this file moves its bytes and
//! applies the loop's policies. Idle connections hold no buffers: the read buffer is
//! borrowed from the loop's pool only while unprocessed input remains.

pub(crate) mod rates;
mod send;
pub(crate) mod shared;
pub(crate) mod sock;
mod sockio;
#[cfg(feature = "tls")]
pub(crate) mod tls;
pub(crate) mod transport;

use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crate::proto::handshake::{ClientHandshake, Request, ServerHandshake};
use crate::proto::{Connection, MessageKind, Role};

use crate::event::api::config::Backpressure;
use crate::event::api::id::ConnId;
use crate::event::api::types::Delivery;
use crate::event::conn::transport::Transport;
pub(crate) use send::Deferred;
use shared::LoopShared;
pub(crate) use sockio::write_through;
use sockio::{flush_outbox, write_some};

/// Bytes of an HTTP head (a request or an answer) not yet written.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    pub(crate) buf: Vec<u8>,
    pub(crate) pos: usize,
}

/// A client connection before it opens.
pub(crate) struct ClientStart {
    pub(crate) hs: ClientHandshake,
    /// The upgrade request, written once the TCP connect completes (and the
    /// tunnel, if any, is open).
    pub(crate) request: Outbox,
    pub(crate) connected: bool,
    /// Through a forward proxy: its handshake runs first, on the plain socket.
    pub(crate) tunnel: Option<Box<Tunnel>>,
}

impl ClientStart {
    /// What goes out now: the proxy's handshake while the tunnel is not open,
    /// then the upgrade request.
    pub(crate) fn outbox(&mut self) -> &mut Outbox {
        match &mut self.tunnel {
            Some(t) => &mut t.out,
            None => &mut self.request,
        }
    }

    fn outbox_ref(&self) -> &Outbox {
        match &self.tunnel {
            Some(t) => &t.out,
            None => &self.request,
        }
    }
}

/// A client's tunnel through a forward proxy, while it opens.
pub(crate) struct Tunnel {
    pub(crate) hs: crate::proto::tunnel::TunnelHandshake,
    pub(crate) out: Outbox,
    /// `wss://`: the TLS session that wraps the socket once the tunnel is open
    /// (TLS runs inside the tunnel, end to end with the target).
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<crate::event::conn::tls::Session>,
}

/// Where a connection is in its life.
// `Open` is where a connection spends its life: kept inline, since boxing it would
// cost an allocation per connection to save bytes only in the short phases.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Phase {
    /// Server with the PROXY protocol on: the header (or its absence) is read
    /// before TLS and the request; the handshake's deadline bounds it.
    Proxy(Box<ProxyWait>),
    /// Server: reading the request head.
    Request(ServerHandshake),
    /// Server: a plain HTTP request whose body is still arriving.
    HttpBody {
        head: Box<Request>,
        head_len: usize,
        body_len: usize,
        /// The handshake deadline (the request's).
        deadline: Option<Instant>,
    },
    /// Server: a plain HTTP request deferred by the handler
    /// ([`HttpRequest::defer`](crate::event::HttpRequest::defer)) waits for its answer.
    /// Input is left in the socket meanwhile.
    Deferred {
        /// Which request of the connection is waited for.
        seq: u32,
        /// The connection stays open for the next request after the answer.
        keep_alive: bool,
        /// When the loop answers 504 itself.
        deadline: Instant,
    },
    /// Server: a plain HTTP answer (or a refusal) is being written, before the
    /// handshake deadline. Then the connection closes, or, kept alive, reads the
    /// client's next request.
    Answer {
        out: Outbox,
        deadline: Option<Instant>,
        keep_alive: bool,
    },
    /// Client: connecting, sending the request, reading the response head.
    Client(Box<ClientStart>),
    /// A reconnecting client between connections: it dials again at `due`.
    Backoff { due: Instant },
    /// WebSocket frames, through the protocol state machine.
    Open(Connection),
}

/// A connection waiting for its PROXY header: the handshake that follows, the TLS
/// that wraps the socket once the header is consumed, and whether the peer may
/// send one.
pub(crate) struct ProxyWait {
    pub(crate) hs: ServerHandshake,
    pub(crate) tls: crate::event::conn::transport::ServerTls,
    pub(crate) trusted: bool,
}

pub(crate) struct UserTimer {
    pub(crate) id: u64,
    pub(crate) token: u64,
    pub(crate) period: Option<std::time::Duration>,
}

/// The part of a connection few connections use (user timers, a `Sender`, messages
/// deferred behind an open fragmented message): out of line, so that an idle
/// connection that uses none of it does not carry it.
#[derive(Default)]
pub(crate) struct Cold {
    deferred: VecDeque<Deferred>,
    deferred_bytes: usize,
    pub(crate) user_timers: Vec<UserTimer>,
    pub(crate) alive: Option<Arc<AtomicBool>>,
    /// Message and byte budgets (servers with per-connection rates).
    pub(crate) rates: Option<rates::ConnRates>,
    /// A reconnecting client's session (client loops with a reconnect policy).
    pub(crate) session: Option<Box<Session>>,
}

/// What a reconnecting client keeps from one connection to the next: its
/// [`ConnId`], its data, its [`Sender`](crate::event::Sender)s, the messages
/// queued while it is away, and where it is in its backoff.
pub(crate) struct Session {
    pub(crate) url: crate::url::WsUrl,
    /// Retries made in the current run of failures.
    pub(crate) attempt: u32,
    /// When the current run of failures began.
    pub(crate) failing_since: Option<Instant>,
    /// When the current connection opened.
    pub(crate) opened_at: Option<Instant>,
    /// The application closed it: it stays closed.
    pub(crate) closed_by_app: bool,
    /// Connections opened after the first.
    pub(crate) reconnects: u32,
    /// A connection of this session has opened.
    pub(crate) ever_opened: bool,
    /// Decided at teardown, for `on_close`: another attempt follows.
    pub(crate) will_reconnect: bool,
}

impl Session {
    pub(crate) fn new(url: crate::url::WsUrl) -> Session {
        Session {
            url,
            attempt: 0,
            failing_since: None,
            opened_at: None,
            closed_by_app: false,
            reconnects: 0,
            ever_opened: false,
            will_reconnect: false,
        }
    }
}

/// A peer address in 16 bytes (a `SocketAddr` takes 32): IPv4 inline, IPv6 boxed.
enum PeerAddr {
    V4(SocketAddrV4),
    V6(Box<SocketAddrV6>),
}

impl PeerAddr {
    fn new(a: SocketAddr) -> PeerAddr {
        match a {
            SocketAddr::V4(a) => PeerAddr::V4(a),
            SocketAddr::V6(a) => PeerAddr::V6(Box::new(a)),
        }
    }
}

/// The state callbacks reach through [`Ctx`](crate::event::Ctx).
pub(crate) struct ConnIo {
    pub(crate) sock: Option<Transport>,
    pub(crate) id: ConnId,
    peer: PeerAddr,
    pub(crate) role: Role,
    pub(crate) phase: Phase,
    /// The protocol deadline registered in the timer heap.
    pub(crate) timer_at: Option<Instant>,
    /// What few connections use, allocated on first use.
    pub(crate) cold: Option<Box<Cold>>,
    /// Reading is suspended for back-pressure.
    paused: bool,
    /// Call `on_drain` when the queue falls below the low watermark.
    drain_wanted: bool,
    /// On the loop's dirty list: settled (flushed, or torn down) at the end of the
    /// iteration.
    dirty: bool,
    /// The transport is gone or must go now: set only by [`kill`](Self::kill), which
    /// also puts the connection on the dirty list, so that it is always torn down.
    dead: bool,
    /// A write failed: nothing more goes out, but reading goes on until the peer's
    /// close (which says why it stopped reading) or the end of input.
    pub(crate) write_failed: bool,
    /// A plain HTTP request was answered on this (kept-alive) connection: a later
    /// request deadline that passes with nothing received is an idle keep-alive
    /// connection closing, not a handshake timeout.
    pub(crate) http_served: bool,
    /// Counted against its source address in the server's table (released at
    /// teardown).
    pub(crate) ip_counted: bool,
    /// Has message and byte budgets (`cold.rates`); checked before the cold part
    /// is touched, so connections without limits pay one flag per message.
    pub(crate) rated: bool,
    /// Not read until `cold.rates.throttled_until`.
    pub(crate) throttled: bool,
}

impl ConnIo {
    pub(crate) fn new(
        sock: Option<Transport>,
        id: ConnId,
        peer: SocketAddr,
        role: Role,
        phase: Phase,
    ) -> ConnIo {
        ConnIo {
            sock,
            id,
            peer: PeerAddr::new(peer),
            role,
            phase,
            timer_at: None,
            cold: None,
            paused: false,
            drain_wanted: false,
            dirty: false,
            dead: false,
            write_failed: false,
            http_served: false,
            ip_counted: false,
            rated: false,
            throttled: false,
        }
    }

    /// The peer's address.
    pub(crate) fn peer(&self) -> SocketAddr {
        match &self.peer {
            PeerAddr::V4(a) => SocketAddr::V4(*a),
            PeerAddr::V6(a) => SocketAddr::V6(**a),
        }
    }

    pub(crate) fn set_peer(&mut self, peer: SocketAddr) {
        self.peer = PeerAddr::new(peer);
    }

    /// The cold part, allocated on first use.
    pub(crate) fn cold(&mut self) -> &mut Cold {
        self.cold.get_or_insert_with(Box::default)
    }

    /// The protocol connection, once open.
    pub(crate) fn conn(&self) -> Option<&Connection> {
        match &self.phase {
            Phase::Open(c) => Some(c),
            _ => None,
        }
    }

    /// The protocol connection, once open.
    pub(crate) fn conn_mut(&mut self) -> Option<&mut Connection> {
        match &mut self.phase {
            Phase::Open(c) => Some(c),
            _ => None,
        }
    }

    /// The WebSocket is open and the transport alive.
    pub(crate) fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open(_)) && !self.dead
    }

    /// When the connection's next protocol deadline is: the handshake deadline until
    /// it opens, then its state machine's.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let phase = self.phase_deadline();
        match (phase, self.throttled_until()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The deadline of the connection's phase (handshake, protocol timers).
    pub(crate) fn phase_deadline(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Open(c) => c.poll_timeout(),
            Phase::Request(hs) => hs.poll_timeout(),
            Phase::Proxy(w) => w.hs.poll_timeout(),
            Phase::Client(s) => s.hs.poll_timeout(),
            Phase::HttpBody { deadline, .. } | Phase::Answer { deadline, .. } => *deadline,
            Phase::Deferred { deadline, .. } => Some(*deadline),
            Phase::Backoff { due } => Some(*due),
        }
    }

    /// Queued output bytes (including messages deferred behind an open fragment).
    pub(crate) fn buffered(&self) -> usize {
        let queued = match &self.phase {
            Phase::Open(c) => c.buffered(),
            Phase::Answer { out: o, .. } => o.buf.len() - o.pos,
            Phase::Client(s) => s.outbox_ref().buf.len() - s.outbox_ref().pos,
            _ => 0,
        };
        queued + self.deferred_bytes()
    }

    pub(crate) fn out_is_empty(&self) -> bool {
        if self.write_failed {
            return true;
        }
        let phase_empty = match &self.phase {
            Phase::Open(c) => c.buffered() == 0,
            Phase::Answer { out: o, .. } => o.pos == o.buf.len(),
            Phase::Client(s) => s.outbox_ref().pos == s.outbox_ref().buf.len(),
            _ => true,
        };
        phase_empty && !self.sock.as_ref().is_some_and(Transport::has_pending)
    }

    /// Puts the connection on the loop's dirty list: the loop settles it (flushes
    /// its output, or tears it down) at the end of the iteration at the latest.
    pub(crate) fn mark_dirty(&mut self, shared: &mut LoopShared) {
        if !self.dirty {
            self.dirty = true;
            shared.dirty.push(self.id.slot());
        }
    }

    /// Takes the connection off the dirty list's count: true if it was on it.
    pub(crate) fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// The transport is gone or the connection must go now: nothing more is read or
    /// sent, and the loop tears it down when it settles it (at the end of the
    /// current event, or of the iteration: the connection is marked dirty, so
    /// teardown cannot be forgotten).
    pub(crate) fn kill(&mut self, shared: &mut LoopShared) {
        self.dead = true;
        self.mark_dirty(shared);
    }

    /// Killed: waiting for teardown.
    pub(crate) fn is_dead(&self) -> bool {
        self.dead
    }

    /// Until when reading is suspended for going over a rate
    /// ([`RatePolicy::Throttle`](crate::event::RatePolicy::Throttle)).
    pub(crate) fn throttled_until(&self) -> Option<Instant> {
        if !self.throttled {
            return None;
        }
        self.cold
            .as_deref()
            .and_then(|c| c.rates.as_ref())
            .and_then(|r| r.throttled_until)
    }

    /// Reading is suspended: back-pressure or a rate.
    pub(crate) fn is_held(&self) -> bool {
        self.paused || self.throttled
    }

    /// Settles output at the end of an event: flushes what is queued (unless the
    /// connection is dead) and takes it off the dirty list once nothing is left.
    pub(crate) fn settle_output(&mut self) -> io::Result<()> {
        if self.dead || self.out_is_empty() {
            return Ok(());
        }
        self.flush()?;
        if self.out_is_empty() {
            self.dirty = false;
        }
        Ok(())
    }

    /// Back-pressure after an event: applies the policy, and once the queue is
    /// below the low watermark lifts a pause (returns `resume`: read again) and
    /// reports a wanted drain (`drain`: call `on_drain`), each once.
    pub(crate) fn settle_backpressure(&mut self, shared: &mut LoopShared, now: Instant) -> Relief {
        self.apply_backpressure(shared, now);
        let mut relief = Relief::default();
        if self.buffered() < shared.config.max_output_buffer / 2 {
            relief.resume = std::mem::take(&mut self.paused);
            relief.drain = std::mem::take(&mut self.drain_wanted);
        }
        relief
    }

    /// Answers a plain HTTP request (or refuses an upgrade): the connection closes
    /// once the answer is out, unless `keep_alive` (then it reads the next request).
    pub(crate) fn answer(&mut self, shared: &mut LoopShared, bytes: Vec<u8>, keep_alive: bool) {
        let deadline = match self.phase {
            // A deferred answer has the rest of the request's time to go out.
            Phase::Deferred { deadline, .. } => Some(deadline),
            _ => self.next_deadline(),
        };
        self.phase = Phase::Answer {
            out: Outbox { buf: bytes, pos: 0 },
            deadline,
            keep_alive,
        };
        self.mark_dirty(shared);
    }

    /// A write to the transport failed. An open connection records it (nothing more
    /// is sent) and keeps reading: the peer's close frame, if it sent one before it
    /// stopped reading, is still to come, and says why (a message over its limit:
    /// 1009). Before the connection opened there is nothing to wait for.
    pub(crate) fn write_failed(&mut self, shared: &mut LoopShared, now: Instant) {
        match &mut self.phase {
            Phase::Open(conn) if !conn.state().is_done() => {
                conn.handle_write_failure(now);
                self.write_failed = true;
            }
            _ => self.kill(shared),
        }
    }

    /// Writes as much queued output as the socket takes.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        let Some(sock) = self.sock.as_mut().filter(|_| !self.write_failed) else {
            return Ok(());
        };
        if matches!(&self.phase, Phase::Client(s) if !s.connected) {
            // Nothing goes out before the TCP connect finished (not even a TLS
            // ClientHello).
            return Ok(());
        }
        sock.flush_pending()?;
        match &mut self.phase {
            Phase::Open(conn) => {
                while conn.buffered() > 0 {
                    match write_some(sock, conn.transmit())? {
                        0 => return Ok(()),
                        n => conn.advance_transmit(n),
                    }
                }
                Ok(())
            }
            Phase::Answer { out: o, .. } => flush_outbox(sock, o),
            Phase::Client(s) if s.connected => flush_outbox(sock, s.outbox()),
            _ => Ok(()),
        }
    }

    /// Applies the back-pressure policy after a callback or a flush.
    pub(crate) fn apply_backpressure(&mut self, shared: &mut LoopShared, now: Instant) {
        let limit = shared.config.max_output_buffer;
        let buffered = self.buffered();
        if buffered >= limit {
            match shared.config.backpressure {
                Backpressure::Pause => {
                    if !self.paused {
                        shared.stats.backpressure_pauses += 1;
                    }
                    self.paused = true;
                }
                Backpressure::Close(code) => {
                    let _ = self.close(shared, now, code, "output buffer limit");
                }
            }
        }
        if buffered >= limit / 2 {
            self.drain_wanted = true;
        }
    }
}

/// What settling back-pressure lifted (see [`ConnIo::settle_backpressure`]).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Relief {
    /// A back-pressure pause ended: read the connection again.
    pub(crate) resume: bool,
    /// The handler asked for `on_drain`.
    pub(crate) drain: bool,
}

/// The read side: pooled read buffer, message accumulator, delivery mode. A
/// connection holds one only while it has input or a message in progress (the box
/// comes from the loop's spares, the buffer from its pool).
#[derive(Default)]
pub(crate) struct ReadState {
    /// Empty (no allocation) while the connection has no pending input.
    pub(crate) buf: Vec<u8>,
    pub(crate) start: usize,
    pub(crate) end: usize,
    /// Whole-delivery accumulator for messages that arrive in several pieces.
    pub(crate) msg: Vec<u8>,
    pub(crate) delivery: Option<(MessageKind, Delivery)>,
}

impl ReadState {
    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Nothing buffered and no message being assembled: the connection can give the
    /// box back.
    pub(crate) fn at_rest(&self) -> bool {
        self.buf.is_empty() && self.msg.capacity() == 0 && self.delivery.is_none()
    }
}

/// A connection: what callbacks reach, what the reader owns, and the user's data.
pub(crate) struct Slot<D> {
    pub(crate) io: ConnIo,
    /// `None` while the connection has nothing to read (see [`ReadState`]).
    pub(crate) rd: Option<Box<ReadState>>,
    pub(crate) data: D,
}

impl<D> Slot<D> {
    /// Input received and not yet processed.
    pub(crate) fn pending(&self) -> &[u8] {
        self.rd.as_deref().map_or(&[], ReadState::pending)
    }

    /// The first `n` pending bytes were processed.
    pub(crate) fn consume(&mut self, n: usize) {
        if let Some(rd) = self.rd.as_deref_mut() {
            rd.start = (rd.start + n).min(rd.end);
        }
    }

    /// Drops the pending input.
    pub(crate) fn discard_pending(&mut self) {
        if let Some(rd) = self.rd.as_deref_mut() {
            rd.start = rd.end;
        }
    }
}

#[cfg(test)]
mod size_tests {
    #[test]
    fn print_sizes() {
        println!(
            "Slot<()>: {} bytes (ConnIo {}, ReadState {}, Connection {}, Phase {})",
            std::mem::size_of::<Option<super::Slot<()>>>(),
            std::mem::size_of::<super::ConnIo>(),
            std::mem::size_of::<Option<Box<super::ReadState>>>(),
            std::mem::size_of::<crate::proto::Connection>(),
            std::mem::size_of::<super::Phase>(),
        );
        println!(
            "ConnIo besides Phase: sock {}, id {}, peer {}, timer_at {}, cold {} (Cold {}), flags and role 5",
            std::mem::size_of::<Option<super::Transport>>(),
            std::mem::size_of::<crate::event::ConnId>(),
            std::mem::size_of::<super::PeerAddr>(),
            std::mem::size_of::<Option<std::time::Instant>>(),
            std::mem::size_of::<Option<Box<super::Cold>>>(),
            std::mem::size_of::<super::Cold>(),
        );
        crate::proto::Connection::print_sizes();
    }
}
