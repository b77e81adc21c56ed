//! What callbacks get: [`Ctx`] for a connection and [`LoopCtx`] for the loop, plus
//! the streaming [`LoopWriter`].

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::proto::{CloseCode, MessageKind, Role};

use crate::event::api::id::{ConnId, TimerId};
use crate::event::api::prepared::Prepared;
use crate::event::api::publisher::Publisher;
use crate::event::api::sender::{Sender, new_alive};
use crate::event::conn::{ConnIo, UserTimer};
use crate::event::reactor::core::LoopCore;
use crate::event::reactor::timers::TimerKind;

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

    /// Publishes a prepared message to every subscriber of `topic` on every loop
    /// (see [`Ctx::subscribe`]): this loop's subscribers get it once the callback
    /// returns, each other loop's through one mailbox post. The frame is encoded
    /// once (compressed once per compression setting for subscribers without
    /// context takeover); a slow subscriber is paused or dropped by its own
    /// back-pressure, never the publisher.
    pub fn publish(&mut self, topic: &str, msg: &Prepared) {
        self.core.publish(topic, msg);
    }

    /// A [`Publisher`] for other threads (publishes to every loop of this server).
    pub fn publisher(&self) -> Publisher {
        Publisher {
            loops: self.core.peers.clone(),
        }
    }

    /// Subscribers of `topic` on this loop.
    pub fn subscribers(&self, topic: &str) -> usize {
        self.core.topics.members(topic).len()
    }

    /// Opens a client connection from this loop to a `ws://` URL; `data` becomes its
    /// [`Handler::Data`](crate::event::Handler::Data). The result arrives as `on_open`, or as
    /// `on_error` and `on_close`.
    pub fn connect(&mut self, url: &str, data: D) -> Result<ConnId> {
        self.core.connect(url, data)
    }

    /// Every connection this loop holds: open WebSockets, handshakes in progress,
    /// and plain HTTP requests being answered — in [`on_http`](crate::event::Handler::on_http)
    /// that includes the request being answered. For "how many clients are
    /// connected", use [`open_connections`](Self::open_connections).
    pub fn connections(&self) -> usize {
        self.core.live
    }

    /// Open WebSocket connections on this loop: those that got `on_open` and have
    /// not yet got `on_close`.
    pub fn open_connections(&self) -> usize {
        self.core.open
    }

    /// This loop's counters (see [`Stats`](crate::event::Stats)).
    pub fn stats(&self) -> crate::event::Stats {
        self.core.stats()
    }

    /// The counters of every loop of the server (this loop's as of now, the
    /// others' as of their last iteration); a client loop's own.
    pub fn server_stats(&self) -> crate::event::Stats {
        self.core.server_stats()
    }
}

/// A connection's side of a callback: send, stream, ping, close, timers, data.
///
/// The tutorial's ticker: a message every 2 seconds from a timer, ended by the
/// client's `stop` (kept short here with 10 ms).
///
/// ```
/// use std::time::Duration;
/// use silverback::event::{Ctx, Handler, MessageRef, Server};
/// use silverback::{CloseCode, Dialer};
///
/// struct Ticker;
/// impl Handler for Ticker {
///     type Data = u32;
///     fn on_open(&mut self, ctx: &mut Ctx<'_, u32>) {
///         ctx.set_interval(Duration::from_millis(10), 0);
///     }
///     fn on_timer(&mut self, ctx: &mut Ctx<'_, u32>, _token: u64) {
///         *ctx.data() += 1;
///         let n = *ctx.data();
///         let _ = ctx.send_text(&format!("tick {n}"));
///     }
///     fn on_message(&mut self, ctx: &mut Ctx<'_, u32>, msg: MessageRef<'_>) {
///         if msg.data == b"stop" {
///             let _ = ctx.close(CloseCode::NORMAL, "stopped");
///         }
///     }
/// }
///
/// let server = Server::builder().addr("127.0.0.1:0").build(|_| Ticker)?;
/// let addr = server.local_addr();
/// let (handle, _) = server.spawn()?;
/// let (mut c, _) = Dialer::new().dial(&format!("ws://{addr}/"))?;
/// assert_eq!(c.read_message()?.as_text(), Some("tick 1"));
/// assert_eq!(c.read_message()?.as_text(), Some("tick 2"));
/// c.write_message(silverback::MessageKind::Text, b"stop")?;
/// handle.shutdown(Duration::from_secs(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
        self.io.peer()
    }

    /// The negotiated subprotocol, if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.io.conn().and_then(|c| c.subprotocol())
    }

    /// True if permessage-deflate was negotiated on this connection (always false
    /// without the `deflate` feature).
    pub fn is_compressed(&self) -> bool {
        self.io.conn().is_some_and(|c| c.is_compressed())
    }

    /// A reconnecting client ([`ClientBuilder::reconnect`](crate::event::ClientBuilder::reconnect)):
    /// how many times this connection has opened again after its first
    /// `on_open` (0 in the first; 1 in the `on_open` after the first
    /// reconnection). Always 0 otherwise.
    pub fn reconnects(&self) -> u32 {
        self.io
            .cold
            .as_ref()
            .and_then(|c| c.session.as_ref())
            .map_or(0, |s| s.reconnects)
    }

    /// In `on_close` of a reconnecting client: another attempt follows (the
    /// application did not close it, the loop is not shutting down, and the
    /// backoff has not given up). False otherwise.
    pub fn will_reconnect(&self) -> bool {
        self.io
            .cold
            .as_ref()
            .and_then(|c| c.session.as_ref())
            .is_some_and(|s| s.will_reconnect)
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
    /// paused for back-pressure (see [`Backpressure::Pause`](crate::event::Backpressure)),
    /// [`Error::AlreadyClosed`] after a close was sent, and a usage error for text
    /// that is not UTF-8 or while a fragmented message is open.
    pub fn send(&mut self, kind: MessageKind, data: &[u8]) -> Result<()> {
        self.io.send(&mut self.core.shared, kind, data)
    }

    /// Queues one message uncompressed (RSV1 clear) on a compressing connection,
    /// as [`send`](Self::send) otherwise: for data that does not shrink (JPEG,
    /// already-compressed blobs), which would cost the compressor's CPU for
    /// nothing.
    pub fn send_uncompressed(&mut self, kind: MessageKind, data: &[u8]) -> Result<()> {
        let was = self.io.conn().is_some_and(|c| c.write_compression());
        self.set_write_compression(false);
        let r = self.send(kind, data);
        self.set_write_compression(was);
        r
    }

    /// Compresses the messages this connection sends from now on (`true`, the
    /// default with permessage-deflate), or not (gorilla's
    /// `EnableWriteCompression`; see
    /// [`Connection::set_write_compression`](crate::proto::Connection::set_write_compression)).
    /// Messages from [`Sender`]s and broadcasts follow the setting in force when
    /// the loop sends them.
    pub fn set_write_compression(&mut self, on: bool) {
        if let Some(c) = self.io.conn_mut() {
            c.set_write_compression(on);
        }
    }

    /// Queues a text message.
    pub fn send_text(&mut self, text: &str) -> Result<()> {
        self.send(MessageKind::Text, text.as_bytes())
    }

    /// Queues a binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<()> {
        self.send(MessageKind::Binary, data)
    }

    /// Queues `value` as a JSON text message (gorilla's `WriteJSON`; the `json`
    /// feature). A value that cannot be serialized is
    /// [`Error::Json`](crate::Error::Json) and nothing is queued.
    #[cfg(feature = "json")]
    pub fn send_json<T: serde::Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let text = crate::json::encode(value)?;
        self.send(MessageKind::Text, &text)
    }

    /// Queues a prepared message (encoded once, copied here).
    pub fn send_prepared(&mut self, msg: &Prepared) -> Result<()> {
        self.io.send_prepared(&mut self.core.shared, msg)
    }

    /// Queues one fragment of a message sent piece by piece across callbacks (for
    /// streaming senders paced by [`Handler::on_drain`](crate::event::Handler::on_drain)):
    /// the first call starts a message of `kind`, `fin` ends it. Messages from other
    /// sources ([`Sender`], broadcasts) wait until it ends.
    ///
    /// Text is validated across fragments: bytes that cannot be UTF-8, or a final
    /// fragment that would end inside a code point, are refused with
    /// [`UsageError::InvalidUtf8`](crate::UsageError) and nothing is sent.
    pub fn send_fragment(&mut self, kind: MessageKind, data: &[u8], fin: bool) -> Result<()> {
        self.io
            .send_fragment(&mut self.core.shared, kind, data, fin)
    }

    /// An `io::Write` for one message: fragments of `write_buffer_size` are queued as
    /// it fills, the final frame on [`LoopWriter::close`] or drop.
    pub fn writer(&mut self, kind: MessageKind) -> Result<LoopWriter<'_, 'a, D>> {
        self.io
            .with_conn(&mut self.core.shared, |c| c.stream_write(kind, &[]))?;
        Ok(LoopWriter {
            ctx: self,
            kind,
            done: false,
        })
    }

    /// Queues a ping.
    pub fn ping(&mut self, data: &[u8]) -> Result<()> {
        self.io.ping(&mut self.core.shared, data)
    }

    /// Starts the closing handshake: queues a close frame; the connection ends when
    /// the peer answers (or after `close_timeout`), with `on_close`.
    /// [`CloseCode::NO_STATUS`] sends an empty close payload.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        let now = self.core.now;
        self.io.close(&mut self.core.shared, now, code, reason)
    }

    /// Bytes queued for this connection and not yet written to the socket.
    pub fn buffered(&self) -> usize {
        self.io.buffered()
    }

    /// Sets this connection's read limit (largest message; 1009 beyond).
    pub fn set_read_limit(&mut self, limit: u64) {
        if let Some(c) = self.io.conn_mut() {
            c.set_read_limit(limit);
        }
    }

    fn add_timer(&mut self, after: Duration, period: Option<Duration>, token: u64) -> TimerId {
        self.core.next_timer_id += 1;
        let id = self.core.next_timer_id;
        self.io
            .cold()
            .user_timers
            .push(UserTimer { id, token, period });
        self.core.timers.add(
            self.core.now + after,
            self.io.id.slot(),
            self.io.id.generation(),
            TimerKind::User(id),
        );
        TimerId(id)
    }

    /// Calls [`Handler::on_timer`](crate::event::Handler::on_timer) with `token` once,
    /// after `after`.
    pub fn set_timer(&mut self, after: Duration, token: u64) -> TimerId {
        self.add_timer(after, None, token)
    }

    /// Calls [`Handler::on_timer`](crate::event::Handler::on_timer) with `token` every
    /// `every` until cancelled or the connection ends.
    pub fn set_interval(&mut self, every: Duration, token: u64) -> TimerId {
        self.add_timer(every, Some(every.max(Duration::from_millis(1))), token)
    }

    /// Cancels a timer; returns false if it had already fired (one-shot) or was
    /// cancelled.
    pub fn cancel_timer(&mut self, id: TimerId) -> bool {
        let Some(cold) = self.io.cold.as_deref_mut() else {
            return false;
        };
        let before = cold.user_timers.len();
        cold.user_timers.retain(|t| t.id != id.0);
        let cancelled = cold.user_timers.len() != before;
        if cancelled {
            self.core.timers.forget(1);
        }
        cancelled
    }

    /// A [`Sender`] for this connection, for other threads (or to keep in a registry).
    pub fn sender(&mut self) -> Sender {
        let alive = self.io.cold().alive.get_or_insert_with(new_alive).clone();
        Sender {
            id: self.io.id,
            worker: self.core.me.clone(),
            alive,
        }
    }

    /// Sends a prepared message to every open connection of every loop (this one too).
    pub fn broadcast(&mut self, msg: &Prepared) {
        self.core.broadcast(msg);
    }

    /// Subscribes this connection to `topic` (uWebSockets' `subscribe`): it gets
    /// every message published to the topic from then on, by
    /// [`publish`](Self::publish), [`LoopCtx::publish`],
    /// [`ServerHandle::publish`](crate::event::ServerHandle::publish) or a
    /// [`Publisher`]. True if it was not subscribed yet. The subscription ends
    /// with [`unsubscribe`](Self::unsubscribe) or when the connection closes.
    /// Fails with [`Error::AlreadyClosed`] unless the connection is open.
    pub fn subscribe(&mut self, topic: &str) -> Result<bool> {
        if self.io.is_dead() || !self.io.conn().is_some_and(|c| c.state().is_open()) {
            return Err(Error::AlreadyClosed);
        }
        Ok(self.core.topics.subscribe(self.io.id, topic))
    }

    /// Ends this connection's subscription to `topic`; false if it had none.
    pub fn unsubscribe(&mut self, topic: &str) -> bool {
        self.core.topics.unsubscribe(self.io.id.slot(), topic)
    }

    /// True if this connection is subscribed to `topic`.
    pub fn is_subscribed(&self, topic: &str) -> bool {
        self.core
            .topics
            .of_slot(self.io.id.slot())
            .any(|t| t == topic)
    }

    /// This connection's topics, in no particular order.
    pub fn topics(&self) -> impl Iterator<Item = &str> + '_ {
        self.core.topics.of_slot(self.io.id.slot())
    }

    /// Publishes a prepared message to every subscriber of `topic` on every loop,
    /// this connection included if it is subscribed (see
    /// [`LoopCtx::publish`]).
    pub fn publish(&mut self, topic: &str, msg: &Prepared) {
        self.core.publish(topic, msg);
    }
}

/// The streaming writer of [`Ctx::writer`]: the connection's streaming send, which
/// fragments, keeps text on code point boundaries and compresses.
pub struct LoopWriter<'c, 'a, D> {
    ctx: &'c mut Ctx<'a, D>,
    kind: MessageKind,
    done: bool,
}

impl<D> LoopWriter<'_, '_, D> {
    /// Queues the final frame.
    pub fn close(mut self) -> Result<()> {
        self.finish()
    }

    fn finish(&mut self) -> Result<()> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        let Ctx { io, core, .. } = &mut *self.ctx;
        io.with_conn(&mut core.shared, |c| c.stream_end())?;
        core.shared.stats.messages_out += 1;
        Ok(())
    }
}

impl<D> io::Write for LoopWriter<'_, '_, D> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.done {
            return Err(Error::AlreadyClosed.into_io());
        }
        let kind = self.kind;
        let Ctx { io, core, .. } = &mut *self.ctx;
        io.with_conn(&mut core.shared, |c| c.stream_write(kind, data))
            .map_err(Error::into_io)?;
        core.shared.stats.bytes_out += data.len() as u64;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.done {
            return Ok(());
        }
        let Ctx { io, core, .. } = &mut *self.ctx;
        io.with_conn(&mut core.shared, |c| c.stream_flush())
            .map_err(Error::into_io)
    }
}

impl<D> Drop for LoopWriter<'_, '_, D> {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}
