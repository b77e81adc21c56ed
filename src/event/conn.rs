//! One connection on the loop: its socket, where it is in its life ([`Phase`]), the
//! protocol [`Connection`] once open, and the loop's bookkeeping (output to flush,
//! back-pressure, timers, messages waiting behind an open fragmented message). The
//! read side ([`ReadState`]) is kept apart so a handler can borrow a payload from
//! the read buffer while it sends.
//!
//! Every protocol rule is the [`Connection`]'s; this file moves its bytes and
//! applies the loop's policies. Idle connections hold no buffers: the read buffer is
//! borrowed from the loop's pool only while unprocessed input remains.

use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::proto::handshake::{ClientHandshake, Request, ServerHandshake};
use crate::proto::{CloseCode, Connection, MessageKind, Role, SendError};

use super::config::Backpressure;
use super::core::LoopShared;
use super::id::ConnId;
use super::prepared::Prepared;
use super::transport::Transport;
use super::types::Delivery;

/// Server frames at least this large are written straight from the caller's slice
/// when nothing is queued ahead of them.
const WRITE_THROUGH_MIN: usize = 16 * 1024;

/// Bytes of an HTTP head (a request or an answer) not yet written.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    pub(crate) buf: Vec<u8>,
    pub(crate) pos: usize,
}

/// A client connection before it opens.
pub(crate) struct ClientStart {
    pub(crate) hs: ClientHandshake,
    /// The upgrade request, written once the TCP connect completes.
    pub(crate) request: Outbox,
    pub(crate) connected: bool,
}

/// Where a connection is in its life.
// `Open` is where a connection spends its life: kept inline, since boxing it would
// cost an allocation per connection to save bytes only in the short phases.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Phase {
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
    /// ([`HttpRequest::defer`](super::HttpRequest::defer)) waits for its answer.
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
    /// WebSocket frames, through the protocol state machine.
    Open(Connection),
}

/// A message from another source ([`Sender`](super::Sender), broadcast) waiting for
/// the handler's open fragmented message to end.
pub(crate) enum Deferred {
    Owned(MessageKind, Vec<u8>),
    Prepared(Prepared),
}

impl Deferred {
    fn len(&self) -> usize {
        match self {
            Deferred::Owned(_, v) => v.len(),
            Deferred::Prepared(p) => p.payload().len(),
        }
    }
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

/// The state callbacks reach through [`Ctx`](super::Ctx).
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
    pub(crate) paused: bool,
    /// Call `on_drain` when the queue falls below the low watermark.
    pub(crate) drain_wanted: bool,
    /// On the loop's dirty list (output to flush at the end of the iteration).
    pub(crate) dirty: bool,
    /// The transport is gone or must go now: drop the connection.
    pub(crate) dead: bool,
    /// A write failed: nothing more goes out, but reading goes on until the peer's
    /// close (which says why it stopped reading) or the end of input.
    pub(crate) write_failed: bool,
    /// A plain HTTP request was answered on this (kept-alive) connection: a later
    /// request deadline that passes with nothing received is an idle keep-alive
    /// connection closing, not a handshake timeout.
    pub(crate) http_served: bool,
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

    fn deferred_bytes(&self) -> usize {
        self.cold.as_deref().map_or(0, |c| c.deferred_bytes)
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

    /// The connection to send on, or [`Error::AlreadyClosed`].
    fn writable(&mut self) -> Result<&mut Connection> {
        if self.dead {
            return Err(Error::AlreadyClosed);
        }
        self.conn_mut().ok_or(Error::AlreadyClosed)
    }

    /// When the connection's next protocol deadline is: the handshake deadline until
    /// it opens, then its state machine's.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Open(c) => c.poll_timeout(),
            Phase::Request(hs) => hs.poll_timeout(),
            Phase::Client(s) => s.hs.poll_timeout(),
            Phase::HttpBody { deadline, .. } | Phase::Answer { deadline, .. } => *deadline,
            Phase::Deferred { deadline, .. } => Some(*deadline),
        }
    }

    /// Queued output bytes (including messages deferred behind an open fragment).
    pub(crate) fn buffered(&self) -> usize {
        let queued = match &self.phase {
            Phase::Open(c) => c.buffered(),
            Phase::Answer { out: o, .. } => o.buf.len() - o.pos,
            Phase::Client(s) => s.request.buf.len() - s.request.pos,
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
            Phase::Client(s) => s.request.pos == s.request.buf.len(),
            _ => true,
        };
        phase_empty && !self.sock.as_ref().is_some_and(Transport::has_pending)
    }

    pub(crate) fn mark_dirty(&mut self, shared: &mut LoopShared) {
        if !self.dirty {
            self.dirty = true;
            shared.dirty.push(self.id.slot());
        }
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

    /// Sends are refused while the connection is paused for back-pressure: its queue
    /// passed the limit at the end of an earlier callback, so reading stopped and
    /// only timers and other threads could still grow it.
    fn backpressure_check(&self, shared: &LoopShared) -> Result<()> {
        if self.paused {
            return Err(Error::Backpressure {
                buffered: self.buffered(),
                limit: shared.config.max_output_buffer,
            });
        }
        Ok(())
    }

    /// A whole message from a callback: back-pressure applies. A large server frame
    /// with nothing queued ahead is written straight from `data`.
    pub(crate) fn send(
        &mut self,
        shared: &mut LoopShared,
        kind: MessageKind,
        data: &[u8],
    ) -> Result<()> {
        self.writable()?;
        self.backpressure_check(shared)?;
        self.queue_message(shared, kind, data)
    }

    /// Queues a whole message (no back-pressure check).
    fn queue_message(
        &mut self,
        shared: &mut LoopShared,
        kind: MessageKind,
        data: &[u8],
    ) -> Result<()> {
        let ConnIo { phase, sock, .. } = self;
        let (Phase::Open(conn), false) = (phase, self.dead) else {
            return Err(Error::AlreadyClosed);
        };
        match sock.as_mut() {
            Some(sock)
                if data.len() >= WRITE_THROUGH_MIN
                    && conn.buffered() == 0
                    && sock.writes_through() =>
            {
                if let Some(frame) = conn.send_direct(kind, data)? {
                    // One vectored write straight from the caller's slice; only what
                    // the socket does not take is queued.
                    let n = write_through(sock, frame.header(), frame.payload());
                    frame.written(conn, n);
                }
            }
            _ => conn.send(kind, data)?,
        }
        shared.stats.messages_out += 1;
        shared.stats.bytes_out += data.len() as u64;
        self.mark_dirty(shared);
        self.after_message(shared);
        Ok(())
    }

    /// One fragment of a message sent piece by piece (`Ctx::send_fragment`).
    pub(crate) fn send_fragment(
        &mut self,
        shared: &mut LoopShared,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) -> Result<()> {
        let conn = self.writable()?;
        if !conn.in_message() {
            self.backpressure_check(shared)?;
        }
        self.with_conn(shared, |c| c.send_fragment(kind, data, fin))?;
        shared.stats.bytes_out += data.len() as u64;
        shared.stats.messages_out += u64::from(fin);
        Ok(())
    }

    /// Runs a send on the connection, marks the output for flushing and lets
    /// deferred messages through once no fragmented message is open.
    pub(crate) fn with_conn(
        &mut self,
        shared: &mut LoopShared,
        op: impl FnOnce(&mut Connection) -> std::result::Result<(), SendError>,
    ) -> Result<()> {
        let r = op(self.writable()?).map_err(Error::from);
        self.mark_dirty(shared);
        self.after_message(shared);
        r
    }

    /// A control frame (≤ 125 bytes); never refused for back-pressure.
    pub(crate) fn ping(&mut self, shared: &mut LoopShared, data: &[u8]) -> Result<()> {
        self.writable()?.ping(data)?;
        self.mark_dirty(shared);
        Ok(())
    }

    /// A prepared message from a callback: refused while a fragmented message is open.
    pub(crate) fn send_prepared(&mut self, shared: &mut LoopShared, msg: &Prepared) -> Result<()> {
        self.writable()?;
        self.backpressure_check(shared)?;
        self.queue_prepared(shared, msg)
    }

    fn queue_prepared(&mut self, shared: &mut LoopShared, msg: &Prepared) -> Result<()> {
        let m = &msg.0;
        self.with_conn(shared, |c| c.send_prepared(m))?;
        shared.stats.messages_out += 1;
        shared.stats.bytes_out += m.payload().len() as u64;
        Ok(())
    }

    /// A message from another source (Sender, broadcast, another connection): waits
    /// behind an open fragmented message instead of failing.
    pub(crate) fn deliver(&mut self, shared: &mut LoopShared, d: Deferred) -> Result<()> {
        let conn = self.writable()?;
        let open_message = conn.in_message();
        self.backpressure_check(shared)?;
        if open_message {
            let cold = self.cold();
            cold.deferred_bytes += d.len();
            cold.deferred.push_back(d);
            return Ok(());
        }
        match d {
            Deferred::Owned(kind, data) => self.queue_message(shared, kind, &data),
            Deferred::Prepared(p) => self.queue_prepared(shared, &p),
        }
    }

    /// Once no fragmented message of ours is open, deferred messages go out.
    fn after_message(&mut self, shared: &mut LoopShared) {
        if self.cold.as_ref().is_none_or(|c| c.deferred.is_empty())
            || self.conn().is_none_or(Connection::in_message)
        {
            return;
        }
        while let Some(d) = self.cold().deferred.pop_front() {
            self.cold().deferred_bytes -= d.len();
            let r = match &d {
                Deferred::Owned(k, v) => self.queue_message(shared, *k, v),
                Deferred::Prepared(p) => self.queue_prepared(shared, p),
            };
            if r.is_err() {
                // Closed meanwhile: the rest cannot be sent either.
                let cold = self.cold();
                cold.deferred.clear();
                cold.deferred_bytes = 0;
                return;
            }
        }
    }

    /// Starts the closing handshake (idempotent once a close was sent). Before the
    /// connection opens there is nothing to close politely: it is dropped.
    pub(crate) fn close(
        &mut self,
        shared: &mut LoopShared,
        now: Instant,
        code: CloseCode,
        reason: &str,
    ) -> Result<()> {
        if self.dead {
            return Ok(());
        }
        let Phase::Open(conn) = &mut self.phase else {
            self.dead = true;
            return Ok(());
        };
        conn.close(now, code, reason)?;
        self.mark_dirty(shared);
        Ok(())
    }

    /// A write to the transport failed. An open connection records it (nothing more
    /// is sent) and keeps reading: the peer's close frame, if it sent one before it
    /// stopped reading, is still to come, and says why (a message over its limit:
    /// 1009). Before the connection opened there is nothing to wait for.
    pub(crate) fn write_failed(&mut self, now: Instant) {
        match &mut self.phase {
            Phase::Open(conn) if !conn.state().is_done() => {
                conn.handle_write_failure(now);
                self.write_failed = true;
            }
            _ => self.dead = true,
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
            Phase::Client(s) if s.connected => flush_outbox(sock, &mut s.request),
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

/// One write; 0 when the socket is full (the loop is registered for WRITABLE and
/// resumes).
fn write_some(sock: &mut Transport, bytes: &[u8]) -> io::Result<usize> {
    loop {
        match sock.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn flush_outbox(sock: &mut Transport, o: &mut Outbox) -> io::Result<()> {
    while o.pos < o.buf.len() {
        match write_some(sock, &o.buf[o.pos..])? {
            0 => return Ok(()),
            n => o.pos += n,
        }
    }
    Ok(())
}

/// One vectored write of `head` + `body`; returns how many bytes went out (0 on
/// WouldBlock or error: the queue takes over and `flush` reports any error).
pub(crate) fn write_through(sock: &mut Transport, head: &[u8], body: &[u8]) -> usize {
    let total = head.len() + body.len();
    let mut done = 0;
    while done < total {
        let r = if done < head.len() {
            sock.write_vectored(&[io::IoSlice::new(&head[done..]), io::IoSlice::new(body)])
        } else {
            sock.write(&body[done - head.len()..])
        };
        match r {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    done
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
            std::mem::size_of::<super::ConnId>(),
            std::mem::size_of::<super::PeerAddr>(),
            std::mem::size_of::<Option<std::time::Instant>>(),
            std::mem::size_of::<Option<Box<super::Cold>>>(),
            std::mem::size_of::<super::Cold>(),
        );
        crate::proto::Connection::print_sizes();
    }
}
