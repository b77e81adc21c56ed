//! A connection's send paths on the loop: messages from callbacks (back-pressure
//! applies), from other sources (they wait behind an open fragmented message), the
//! large-frame write-through, control frames and the close.

use std::time::Instant;

use crate::error::{Error, Result};
use crate::proto::{CloseCode, Connection, MessageKind, SendError};

use super::shared::LoopShared;
use super::sockio::write_through;
use super::{ConnIo, Phase};
use crate::event::api::prepared::Prepared;

/// Server frames at least this large are written straight from the caller's slice
/// when nothing is queued ahead of them.
const WRITE_THROUGH_MIN: usize = 16 * 1024;

/// A message from another source ([`Sender`](crate::event::Sender), broadcast) waiting for
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

impl ConnIo {
    pub(crate) fn deferred_bytes(&self) -> usize {
        self.cold.as_deref().map_or(0, |c| c.deferred_bytes)
    }

    /// The connection to send on, or [`Error::AlreadyClosed`].
    fn writable(&mut self) -> Result<&mut Connection> {
        if self.dead {
            return Err(Error::AlreadyClosed);
        }
        self.conn_mut().ok_or(Error::AlreadyClosed)
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
        if self.is_away() {
            // A reconnecting client between connections: queued up to the bound,
            // sent after the next `on_open`.
            let limit = shared.config.offline_queue;
            let buffered = self.deferred_bytes();
            if buffered + d.len() > limit {
                return Err(Error::Backpressure { buffered, limit });
            }
            let cold = self.cold();
            cold.deferred_bytes += d.len();
            cold.deferred.push_back(d);
            return Ok(());
        }
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

    /// A reconnecting client between connections (or dialing again): not dead,
    /// not open, with a session.
    pub(crate) fn is_away(&self) -> bool {
        !self.dead
            && self.conn().is_none()
            && self.cold.as_ref().is_some_and(|c| c.session.is_some())
    }

    /// Once no fragmented message of ours is open, deferred messages go out.
    pub(crate) fn after_message(&mut self, shared: &mut LoopShared) {
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
        if let Some(s) = self.cold.as_mut().and_then(|c| c.session.as_mut()) {
            // The application's close ends a reconnecting client for good.
            s.closed_by_app = true;
        }
        let Phase::Open(conn) = &mut self.phase else {
            self.kill(shared);
            return Ok(());
        };
        conn.close(now, code, reason)?;
        self.mark_dirty(shared);
        Ok(())
    }
}
