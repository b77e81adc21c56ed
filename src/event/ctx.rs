//! What callbacks get: [`Ctx`] for a connection, [`LoopCtx`] for the loop, plus the
//! cross-thread [`Sender`] and the encode-once [`Prepared`] message.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::proto::frame::OpCode;
use crate::proto::{CloseCode, Encoder, MessageKind, Role};

use super::conn::ConnIo;
use super::worker::{Command, LoopCore, WorkerHandle};

/// Identifies a connection: its loop, slot and generation. A stale id (the
/// connection ended, its slot was reused) never reaches another connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub(crate) u64);

impl ConnId {
    pub(crate) fn new(worker: usize, slot: usize, generation: u32) -> ConnId {
        ConnId(
            ((worker as u64 & 0xFF) << 56)
                | ((u64::from(generation) & 0xFF_FFFF) << 32)
                | slot as u64,
        )
    }
    pub(crate) fn worker(self) -> usize {
        (self.0 >> 56) as usize
    }
    pub(crate) fn generation(self) -> u32 {
        ((self.0 >> 32) & 0xFF_FFFF) as u32
    }
    pub(crate) fn slot(self) -> usize {
        (self.0 & 0xFFFF_FFFF) as usize
    }
    /// A number unique among the connections alive at one time (for logs and maps).
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}.{}", self.worker(), self.slot(), self.generation())
    }
}

/// Identifies a user timer of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerId(pub(crate) u64);

/// A message encoded once and sent to many connections (gorilla's
/// `PreparedMessage`): the server frame is built at creation; connections copy it
/// into their output queues without re-encoding. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Prepared(pub(crate) Arc<PreparedInner>);

#[derive(Debug)]
pub(crate) struct PreparedInner {
    pub(crate) kind: MessageKind,
    pub(crate) payload: Vec<u8>,
    /// Header + payload as a server sends it (unmasked).
    pub(crate) server_frame: Vec<u8>,
}

impl Prepared {
    /// Prepares a message. Text must be UTF-8.
    pub fn new(kind: MessageKind, payload: &[u8]) -> Result<Prepared> {
        if kind == MessageKind::Text && std::str::from_utf8(payload).is_err() {
            return Err(crate::error::UsageError::InvalidUtf8.into());
        }
        let mut server_frame = Vec::with_capacity(payload.len() + 10);
        Encoder::new(Role::Server).encode(kind.opcode(), true, payload, &mut server_frame)?;
        Ok(Prepared(Arc::new(PreparedInner {
            kind,
            payload: payload.to_vec(),
            server_frame,
        })))
    }

    /// A prepared text message.
    pub fn text(text: &str) -> Prepared {
        Self::new(MessageKind::Text, text.as_bytes()).unwrap_or_else(|_| unreachable!())
    }

    /// A prepared binary message.
    pub fn binary(data: &[u8]) -> Prepared {
        Self::new(MessageKind::Binary, data).unwrap_or_else(|_| unreachable!())
    }

    /// The message kind.
    pub fn kind(&self) -> MessageKind {
        self.0.kind
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        &self.0.payload
    }
}

/// A handle to one connection usable from any thread: send to it, close it.
/// `Send + Sync + Clone`. Delivery goes through the loop's channel and waker. Once
/// the connection has ended every call returns [`Error::AlreadyClosed`]; a message
/// posted just as it ends is dropped.
#[derive(Clone)]
pub struct Sender {
    pub(crate) id: ConnId,
    pub(crate) worker: WorkerHandle,
    pub(crate) alive: Arc<AtomicBool>,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("id", &self.id)
            .field("alive", &self.is_alive())
            .finish()
    }
}

impl Sender {
    /// The connection this sender targets.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// False once the connection has ended.
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    fn post(&self, cmd: Command) -> Result<()> {
        if !self.is_alive() {
            return Err(Error::AlreadyClosed);
        }
        self.worker.post(cmd)
    }

    /// Sends a message (copied). Text must be UTF-8.
    pub fn send(&self, kind: MessageKind, data: &[u8]) -> Result<()> {
        if kind == MessageKind::Text && std::str::from_utf8(data).is_err() {
            return Err(crate::error::UsageError::InvalidUtf8.into());
        }
        self.post(Command::Send {
            id: self.id,
            kind,
            data: data.to_vec(),
        })
    }

    /// Sends a text message.
    pub fn send_text(&self, text: &str) -> Result<()> {
        self.send(MessageKind::Text, text.as_bytes())
    }

    /// Sends a binary message.
    pub fn send_binary(&self, data: &[u8]) -> Result<()> {
        self.send(MessageKind::Binary, data)
    }

    /// Sends a prepared message (no copy of the payload until the loop queues it).
    pub fn send_prepared(&self, msg: &Prepared) -> Result<()> {
        self.post(Command::SendPrepared {
            id: self.id,
            msg: msg.clone(),
        })
    }

    /// Sends a ping.
    pub fn ping(&self, data: &[u8]) -> Result<()> {
        if data.len() > 125 {
            return Err(crate::error::UsageError::ControlPayloadTooBig(data.len()).into());
        }
        self.post(Command::Ping {
            id: self.id,
            data: data.to_vec(),
        })
    }

    /// Starts the closing handshake with `code` and `reason`.
    pub fn close(&self, code: CloseCode, reason: &str) -> Result<()> {
        if !code.is_allowed_on_wire() {
            return Err(crate::error::UsageError::InvalidCloseCode(code.0).into());
        }
        if reason.len() > crate::proto::close::MAX_CLOSE_REASON {
            return Err(crate::error::UsageError::CloseReasonTooLong(reason.len()).into());
        }
        self.post(Command::Close {
            id: self.id,
            code,
            reason: reason.to_owned(),
        })
    }
}

/// Loop-wide operations, available to every callback (and to the HTTP hook).
pub struct LoopCtx<'a, D> {
    pub(crate) core: &'a mut LoopCore<D>,
}

impl<D> LoopCtx<'_, D> {
    /// The loop's notion of now (read once per loop iteration).
    pub fn now(&self) -> Instant {
        self.core.now
    }

    /// Sends a prepared message to connection `id` (on any loop of this server).
    pub fn send_to(&mut self, id: ConnId, msg: &Prepared) -> Result<()> {
        self.core.send_to(id, msg)
    }

    /// Starts the closing handshake of connection `id` (on any loop of this server).
    pub fn close_conn(&mut self, id: ConnId, code: CloseCode, reason: &str) -> Result<()> {
        self.core.close_conn(id, code, reason)
    }

    /// Sends a prepared message to every open connection of every loop.
    pub fn broadcast(&mut self, msg: &Prepared) {
        self.core.broadcast(msg);
    }

    /// Opens a client connection from this loop to a `ws://` URL; `data` becomes its
    /// [`Handler::Data`](super::Handler::Data). The result arrives as `on_open`, or as
    /// `on_error` and `on_close`.
    pub fn connect(&mut self, url: &str, data: D) -> Result<ConnId> {
        self.core.connect(url, data)
    }

    /// Number of connections on this loop (handshaking and open).
    pub fn connections(&self) -> usize {
        self.core.live
    }
}

/// A connection's side of a callback: send, stream, ping, close, timers, data.
pub struct Ctx<'a, D> {
    pub(crate) io: &'a mut ConnIo,
    pub(crate) data: &'a mut D,
    pub(crate) core: &'a mut LoopCore<D>,
}

impl<'a, D> Ctx<'a, D> {
    /// This connection's id.
    pub fn id(&self) -> ConnId {
        self.io.id
    }

    /// The per-connection data.
    pub fn data(&mut self) -> &mut D {
        self.data
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.io.peer
    }

    /// The negotiated subprotocol, if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.io.subprotocol.as_deref()
    }

    /// True if permessage-deflate was negotiated on this connection (always false
    /// without the `deflate` feature).
    pub fn is_compressed(&self) -> bool {
        #[cfg(feature = "deflate")]
        {
            self.io.deflater.is_some()
        }
        #[cfg(not(feature = "deflate"))]
        {
            false
        }
    }

    /// Client or server side.
    pub fn role(&self) -> Role {
        self.io.role
    }

    /// The loop's notion of now.
    pub fn now(&self) -> Instant {
        self.core.now
    }

    /// Loop-wide operations.
    pub fn lp(&mut self) -> LoopCtx<'_, D> {
        LoopCtx { core: self.core }
    }

    /// Queues a message. Fails with [`Error::Backpressure`] while the connection is
    /// paused for back-pressure (see [`Backpressure::Pause`](super::Backpressure)),
    /// [`Error::AlreadyClosed`] after a close was sent, and a usage error for text
    /// that is not UTF-8 or while a fragmented message is open.
    pub fn send(&mut self, kind: MessageKind, data: &[u8]) -> Result<()> {
        if kind == MessageKind::Text && std::str::from_utf8(data).is_err() {
            return Err(crate::error::UsageError::InvalidUtf8.into());
        }
        self.io
            .send_data(&mut self.core.shared, kind.opcode(), true, data)
    }

    /// Queues a text message.
    pub fn send_text(&mut self, text: &str) -> Result<()> {
        self.io
            .send_data(&mut self.core.shared, OpCode::Text, true, text.as_bytes())
    }

    /// Queues a binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<()> {
        self.io
            .send_data(&mut self.core.shared, OpCode::Binary, true, data)
    }

    /// Queues a prepared message (encoded once, copied here).
    pub fn send_prepared(&mut self, msg: &Prepared) -> Result<()> {
        self.io.send_prepared(&mut self.core.shared, msg)
    }

    /// Queues one fragment of a message sent piece by piece across callbacks (for
    /// streaming senders paced by [`Handler::on_drain`](super::Handler::on_drain)):
    /// the first call starts a message of `kind`, `fin` ends it. Messages from other
    /// sources ([`Sender`], broadcasts) wait until it ends.
    ///
    /// Text is validated across fragments: bytes that cannot be UTF-8, or a final
    /// fragment that would end inside a code point, are refused with
    /// [`UsageError::InvalidUtf8`](crate::UsageError) and nothing is sent.
    pub fn send_fragment(&mut self, kind: MessageKind, data: &[u8], fin: bool) -> Result<()> {
        let continuing = self.io.enc.in_message();
        let (op, kind) = match (continuing, self.io.out_text.is_some()) {
            (true, true) => (OpCode::Continuation, MessageKind::Text),
            (true, false) => (OpCode::Continuation, MessageKind::Binary),
            (false, _) => (kind.opcode(), kind),
        };
        if kind == MessageKind::Text {
            let mut v = if continuing {
                self.io.out_text.clone().unwrap_or_default()
            } else {
                crate::proto::utf8::Utf8Validator::new()
            };
            let ok = v.feed(data).is_ok() && (!fin || v.is_complete());
            if !ok {
                return Err(crate::error::UsageError::InvalidUtf8.into());
            }
            self.io.send_data(&mut self.core.shared, op, fin, data)?;
            self.io.out_text = (!fin).then_some(v);
            Ok(())
        } else {
            self.io.send_data(&mut self.core.shared, op, fin, data)
        }
    }

    /// An `io::Write` for one message: fragments of `write_buffer_size` are queued as
    /// it fills, the final frame on [`LoopWriter::close`] or drop.
    pub fn writer(&mut self, kind: MessageKind) -> Result<LoopWriter<'_, 'a, D>> {
        if self.io.enc.is_close_sent() {
            return Err(Error::AlreadyClosed);
        }
        if self.io.enc.in_message() {
            return Err(crate::error::UsageError::MessageSequence.into());
        }
        // At least 4 bytes: room for a whole code point next to a held-back one.
        let cap = self.core.shared.config.write_buffer_size.max(4);
        Ok(LoopWriter {
            ctx: self,
            kind,
            buf: Vec::with_capacity(cap),
            cap,
            started: false,
            done: false,
            utf8: (kind == MessageKind::Text).then(crate::proto::utf8::Utf8Validator::new),
        })
    }

    /// Queues a ping.
    pub fn ping(&mut self, data: &[u8]) -> Result<()> {
        self.io
            .send_control(&mut self.core.shared, OpCode::Ping, data)
    }

    /// Starts the closing handshake: queues a close frame; the connection ends when
    /// the peer answers (or after `close_timeout`), with `on_close`.
    /// [`CloseCode::NO_STATUS`] sends an empty close payload.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        self.io.start_close(&mut self.core.shared, code, reason)
    }

    /// Bytes queued for this connection and not yet written to the socket.
    pub fn buffered(&self) -> usize {
        self.io.buffered()
    }

    /// Sets this connection's read limit (largest message; 1009 beyond).
    pub fn set_read_limit(&mut self, limit: u64) {
        self.io.read_limit = Some(limit);
    }

    /// Calls [`Handler::on_timer`](super::Handler::on_timer) with `token` once,
    /// after `after`.
    pub fn set_timer(&mut self, after: Duration, token: u64) -> TimerId {
        self.core.add_user_timer(self.io, after, None, token)
    }

    /// Calls [`Handler::on_timer`](super::Handler::on_timer) with `token` every
    /// `every` until cancelled or the connection ends.
    pub fn set_interval(&mut self, every: Duration, token: u64) -> TimerId {
        self.core.add_user_timer(
            self.io,
            every,
            Some(every.max(Duration::from_millis(1))),
            token,
        )
    }

    /// Cancels a timer; returns false if it had already fired (one-shot) or was
    /// cancelled.
    pub fn cancel_timer(&mut self, id: TimerId) -> bool {
        let before = self.io.user_timers.len();
        self.io.user_timers.retain(|t| t.id != id.0);
        self.io.user_timers.len() != before
    }

    /// A [`Sender`] for this connection, for other threads (or to keep in a registry).
    pub fn sender(&mut self) -> Sender {
        self.core.make_sender(self.io)
    }

    /// Sends a prepared message to every open connection of every loop (this one too).
    pub fn broadcast(&mut self, msg: &Prepared) {
        self.core.broadcast(msg);
    }
}

/// The streaming writer of [`Ctx::writer`].
pub struct LoopWriter<'c, 'a, D> {
    ctx: &'c mut Ctx<'a, D>,
    kind: MessageKind,
    buf: Vec<u8>,
    cap: usize,
    started: bool,
    done: bool,
    utf8: Option<crate::proto::utf8::Utf8Validator>,
}

impl<D> LoopWriter<'_, '_, D> {
    fn emit(&mut self, fin: bool) -> Result<()> {
        let op = if self.started {
            OpCode::Continuation
        } else {
            self.kind.opcode()
        };
        self.started = true;
        if fin {
            self.done = true;
        }
        // Text fragments end on a code point (see the blocking MessageWriter).
        let tail = if self.utf8.is_some() && !fin {
            crate::proto::utf8::incomplete_tail_len(&self.buf)
        } else {
            0
        };
        let end = self.buf.len() - tail;
        let r = self
            .ctx
            .io
            .queue_fragment(&mut self.ctx.core.shared, op, fin, &self.buf[..end]);
        self.buf.drain(..end);
        r
    }

    /// Queues the final frame.
    pub fn close(mut self) -> Result<()> {
        self.finish()
    }

    fn finish(&mut self) -> Result<()> {
        if self.done {
            return Ok(());
        }
        let bad = self.utf8.as_mut().is_some_and(|v| v.finish().is_err());
        if bad {
            // Drop the incomplete code point (held back by `emit`): the wire stays valid.
            let tail = crate::proto::utf8::incomplete_tail_len(&self.buf);
            self.buf.truncate(self.buf.len() - tail);
        }
        self.emit(true)?;
        if bad {
            return Err(crate::error::UsageError::InvalidUtf8.into());
        }
        Ok(())
    }
}

impl<D> io::Write for LoopWriter<'_, '_, D> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.done {
            return Err(Error::AlreadyClosed.into_io());
        }
        if let Some(v) = self.utf8.as_mut() {
            v.feed(data)
                .map_err(|_| Error::Usage(crate::error::UsageError::InvalidUtf8).into_io())?;
        }
        let mut rest = data;
        while !rest.is_empty() {
            if self.buf.len() == self.cap {
                self.emit(false).map_err(Error::into_io)?;
            }
            let n = (self.cap - self.buf.len()).min(rest.len());
            self.buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.done && !self.buf.is_empty() {
            self.emit(false).map_err(Error::into_io)?;
        }
        Ok(())
    }
}

impl<D> Drop for LoopWriter<'_, '_, D> {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

pub(crate) fn new_alive() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(true))
}

/// How commands reach a loop: the loop's handle, for [`Sender`]s built elsewhere.
pub(crate) fn sender(id: ConnId, worker: WorkerHandle, alive: Arc<AtomicBool>) -> Sender {
    Sender { id, worker, alive }
}
