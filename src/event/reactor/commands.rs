//! Work that does not come from a connection's own socket: commands from other
//! threads (through the mailbox), operations a callback asked for on other
//! connections, broadcasts, and the graceful shutdown.

use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::error::Error;
use crate::proto::CloseCode;

use crate::event::api::handler::Handler;
use crate::event::api::id::ConnId;
use crate::event::api::prepared::Prepared;
use crate::event::conn::Deferred;
use crate::event::reactor::core::Op;
use crate::event::reactor::mailbox::Command;
use crate::event::reactor::worker::Worker;

/// Rounds of cross-connection operations per iteration (each runs what the
/// previous one queued): a handler that queues operations forever stops here.
const OP_ROUNDS: usize = 1024;

impl<H: Handler> Worker<H> {
    pub(crate) fn drain_commands(&mut self) {
        self.core.me.wake_pending.store(false, Ordering::Release);
        while let Ok(cmd) = self.rx.try_recv() {
            match cmd {
                Command::Send { id, kind, data } => {
                    self.deliver(id, Deferred::Owned(kind, data));
                }
                Command::SendPrepared { id, msg } => {
                    self.deliver(id, Deferred::Prepared(msg));
                }
                Command::Ping { id, data } => {
                    if let Some(p) = self.live_slot(id).and_then(|slot| self.parts(slot)) {
                        let _ = p.conn.io.ping(&mut p.core.shared, &data);
                    }
                }
                Command::Close { id, code, reason } => self.close_conn(id, code, &reason),
                // Applied now, so it keeps its place among this channel's commands.
                Command::Broadcast(msg) => self.broadcast_now(&msg),
                Command::Publish(topic, msg) => self.publish_now(&topic, &msg),
                Command::Adopt(sock, peer, tls) => {
                    // The acceptor counted this socket already; adopt() counts it again.
                    self.core.me.live.fetch_sub(1, Ordering::Relaxed);
                    self.adopt(sock, peer, &tls);
                }
                Command::HttpAnswer { id, seq, response } => {
                    self.deferred_answer(id, seq, &response)
                }
                Command::Shutdown { deadline } => self.begin_shutdown(deadline),
                #[cfg(feature = "handover")]
                Command::HandOver(step) => self.handover_command(step),
            }
        }
    }

    /// A message from another source: waits behind an open fragmented message.
    /// True if it was queued (or waits).
    fn deliver(&mut self, id: ConnId, d: Deferred) -> bool {
        let Some(slot) = self.live_slot(id) else {
            return false;
        };
        let Some(p) = self.parts(slot) else {
            return false;
        };
        match p.conn.io.deliver(&mut p.core.shared, d) {
            Ok(()) => true,
            Err(Error::AlreadyClosed) => false,
            Err(e) => {
                self.report_error(slot, &e);
                false
            }
        }
    }

    fn close_conn(&mut self, id: ConnId, code: CloseCode, reason: &str) {
        let now = self.core.now;
        if let Some(slot) = self.live_slot(id) {
            if let Some(p) = self.parts(slot) {
                let _ = p.conn.io.close(&mut p.core.shared, now, code, reason);
            }
            self.finalize(slot);
        }
    }

    /// Graceful shutdown: stop accepting, close every open connection with 1001 and
    /// drop the rest; `run` returns once all are gone or at `deadline`.
    fn begin_shutdown(&mut self, deadline: Instant) {
        if self.shutdown.is_some() {
            return;
        }
        self.shutdown = Some(deadline);
        for mut l in std::mem::take(&mut self.listeners) {
            let _ = self.poll.registry().deregister(&mut l.sock);
        }
        let now = self.core.now;
        for slot in 0..self.slots.len() {
            let Some(p) = self.parts(slot) else {
                continue;
            };
            let _ = p.conn.io.close(
                &mut p.core.shared,
                now,
                CloseCode::GOING_AWAY,
                "server shutting down",
            );
            self.finalize(slot);
        }
    }

    /// Runs what callbacks asked for on other connections (and what that asks for).
    pub(crate) fn run_ops(&mut self) {
        // Each round runs what the previous one queued; a callback that queues
        // operations forever is the application's loop, bounded here.
        for _ in 0..OP_ROUNDS {
            if self.core.ops.is_empty()
                && self.core.broadcasts.is_empty()
                && self.core.publishes.is_empty()
            {
                return;
            }
            for op in std::mem::take(&mut self.core.ops) {
                match op {
                    Op::SendTo(id, msg) => {
                        self.deliver(id, Deferred::Prepared(msg));
                    }
                    Op::Close(id, code, reason) => self.close_conn(id, code, &reason),
                    Op::Connect(slot, generation, url, data) => {
                        self.start_connect(slot, generation, url, data)
                    }
                }
            }
            for msg in std::mem::take(&mut self.core.broadcasts) {
                self.broadcast_now(&msg);
            }
            for (topic, msg) in std::mem::take(&mut self.core.publishes) {
                self.publish_now(&topic, &msg);
            }
        }
    }

    /// Queues `msg` on every open connection of this loop.
    fn broadcast_now(&mut self, msg: &Prepared) {
        for slot in 0..self.slots.len() {
            let id = match self.slots[slot].as_ref() {
                Some(c)
                    if c.io.conn().is_some_and(|conn| conn.state().is_open())
                        && !c.io.is_dead() =>
                {
                    c.io.id
                }
                _ => continue,
            };
            self.deliver(id, Deferred::Prepared(msg.clone()));
        }
    }

    /// Queues `msg` on every subscriber of `topic` on this loop (the frame was
    /// encoded once; each subscriber gets a copy in its output queue, or waits
    /// behind its open fragmented message; back-pressure applies per subscriber).
    fn publish_now(&mut self, topic: &str, msg: &Prepared) {
        self.core.shared.stats.publishes += 1;
        // Copied out: a delivery can end a connection, which edits the topic.
        let mut ids = std::mem::take(&mut self.core.member_scratch);
        ids.extend_from_slice(self.core.topics.members(topic));
        let mut queued = 0;
        for &id in &ids {
            queued += u64::from(self.deliver(id, Deferred::Prepared(msg.clone())));
        }
        self.core.shared.stats.publish_deliveries += queued;
        ids.clear();
        self.core.member_scratch = ids;
    }
}
