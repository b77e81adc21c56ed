//! The end of every event for a connection (settle): flush, back-pressure, drain,
//! the protocol timer, a kept-alive HTTP connection's next request, and teardown
//! with `on_close`; and the loop's timers firing.

use std::sync::atomic::Ordering;

use crate::error::{Error, HandshakeError};
use crate::proto::handshake::ServerHandshake;
use crate::proto::tunnel::{TunnelError, TunnelStep};
use crate::proto::{CloseCode, Role};

use crate::event::api::ctx::Ctx;
use crate::event::api::handler::Handler;
use crate::event::conn::{ConnIo, Phase};
use crate::event::reactor::timers::TimerKind;
use crate::event::reactor::worker::{Parts, Worker};

use super::readiness::POOL_MAX;

impl<H: Handler> Worker<H> {
    /// Registers the connection's protocol deadline in the timer heap if it moved
    /// earlier than the one registered.
    pub(crate) fn arm_timer(&mut self, slot: usize) {
        let Some(c) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        match c.io.next_deadline() {
            Some(d) if c.io.timer_at.is_none_or(|t| d < t) => {
                if c.io.timer_at.is_some() {
                    // The earlier entry is superseded.
                    self.core.timers.forget(1);
                }
                let id = c.io.id;
                self.core
                    .timers
                    .add(d, id.slot(), id.generation(), TimerKind::Conn);
                c.io.timer_at = Some(d);
            }
            // No deadline any more (a connection without keepalive timers opened):
            // the registered entry is dead and the next compaction drops it.
            None => {
                if c.io.timer_at.take().is_some() {
                    self.core.timers.forget(1);
                }
            }
            Some(_) => {}
        }
    }

    /// Drops timer entries that can no longer fire anything (see
    /// [`Timers::compact`](crate::event::reactor::timers::Timers::compact)).
    pub(crate) fn compact_timers(&mut self) {
        let slots = &self.slots;
        self.core.timers.compact(|e| {
            let Some(Some(c)) = slots.get(e.slot) else {
                return false;
            };
            if c.io.id.generation() != e.generation {
                return false;
            }
            match e.kind {
                TimerKind::Conn => c.io.timer_at == Some(e.at),
                TimerKind::User(id) => {
                    c.io.cold
                        .as_deref()
                        .is_some_and(|cold| cold.user_timers.iter().any(|t| t.id == id))
                }
            }
        });
    }

    /// The end of every event for a connection: flush, back-pressure, drain, the
    /// protocol timer, and teardown when the transport should close.
    pub(crate) fn finalize(&mut self, slot: usize) {
        let now = self.core.now;
        let Some(mut p) = self.parts(slot) else {
            return;
        };
        if let Err(e) = p.conn.io.settle_output() {
            p.conn.io.write_failed(&mut p.core.shared, now);
            p.call(|h, ctx| h.on_error(ctx, &Error::Io(e)));
        }
        if p.conn.io.is_open() {
            let relief = p.conn.io.settle_backpressure(&mut p.core.shared, now);
            if relief.drain {
                p.call(|h, ctx| h.on_drain(ctx));
                if !p.conn.io.out_is_empty() {
                    let _ = p.conn.io.flush();
                }
            }
            if relief.resume {
                self.ready.push(slot);
            }
        }
        let Some(c) = self.slots[slot].as_ref() else {
            return;
        };
        let done = c.io.is_dead()
            || match &c.io.phase {
                Phase::Open(conn) => conn.should_close_transport(),
                // TLS records of the answer still to write keep it (bounded by the
                // handshake deadline).
                Phase::Answer {
                    keep_alive: false, ..
                } => c.io.out_is_empty(),
                Phase::Answer { .. } if c.io.out_is_empty() => {
                    self.keep_alive_next(slot);
                    false
                }
                _ => false,
            };
        if done {
            self.teardown(slot);
        } else {
            self.arm_timer(slot);
        }
    }

    /// A kept-alive HTTP connection's answer is out: it reads the next request,
    /// within a fresh handshake deadline (which also ends an idle one). Input that
    /// waited in the buffer or the socket is read now.
    fn keep_alive_next(&mut self, slot: usize) {
        let now = self.core.now;
        let Some(c) = self.slots[slot].as_mut() else {
            return;
        };
        c.io.phase = Phase::Request(ServerHandshake::new(self.server.clone(), now));
        c.io.http_served = true;
        self.ready.push(slot);
    }

    pub(crate) fn flush_dirty(&mut self) {
        let dirty = std::mem::take(&mut self.core.shared.dirty);
        for &slot in &dirty {
            // Connections already flushed in their own event were unmarked there.
            if let Some(c) = self.slots.get_mut(slot).and_then(Option::as_mut)
                && c.io.take_dirty()
            {
                self.finalize(slot);
            }
        }
        let mut dirty = dirty;
        dirty.clear();
        if self.core.shared.dirty.is_empty() {
            self.core.shared.dirty = dirty;
        }
    }

    /// Drops a connection: deregisters and closes its socket (when the protocol
    /// connection said the transport should close, or the transport is gone) and
    /// reports `on_close` for a connection that opened (and for every client
    /// connection).
    fn teardown(&mut self, slot: usize) {
        let Some(mut c) = self.slots.get_mut(slot).and_then(Option::take) else {
            return;
        };
        if let Some(mut sock) = c.io.sock.take() {
            let _ = self.poll.registry().deregister(sock.sock());
            sock.shutdown();
        }
        let retry = self.retry_after(&mut c.io);
        if retry.is_none()
            && let Some(a) = c.io.cold.as_mut().and_then(|cold| cold.alive.take())
        {
            a.store(false, Ordering::Release);
        }
        c.io.kill(&mut self.core.shared);
        self.release_ip(&c.io);
        if retry.is_none() {
            self.core.release_slot(slot);
            self.core.set_live(self.core.live.saturating_sub(1));
        }
        if c.io.conn().is_some() {
            self.core.count_open(false);
        }
        let end = match c.io.conn() {
            Some(conn) => Some(
                conn.end()
                    .map(|e| (e.code, e.reason.to_owned()))
                    .unwrap_or((CloseCode::ABNORMAL, String::new())),
            ),
            None if c.io.role == Role::Client => Some((CloseCode::ABNORMAL, String::new())),
            None => None,
        };
        if let Some((code, reason)) = end {
            self.core.shared.stats.closes.count(code.as_u16());
            crate::logging::debug!("{}: {} closed ({code} {reason:?})", c.io.id, c.io.peer());
            let mut ctx = Ctx {
                io: &mut c.io,
                data: &mut c.data,
                core: &mut self.core,
            };
            self.handler.on_close(&mut ctx, code, &reason);
        }
        // Its timer entries are dead now (counted after `on_close`, which may still
        // set timers).
        let user_timers =
            c.io.cold
                .as_deref()
                .map_or(0, |cold| cold.user_timers.len());
        self.core
            .timers
            .forget(usize::from(c.io.timer_at.is_some()) + user_timers);
        let size = self.buffer_size();
        if let Some(rd) = c.rd.take() {
            let buf = rd.buf;
            if buf.len() == size && self.pool.len() < POOL_MAX {
                self.pool.push(buf);
            }
        }
        if let Some(wait) = retry {
            // The session waits in its slot, with its id, data, senders and queue.
            let due = self.core.now + wait;
            crate::logging::debug!("{}: reconnecting in {wait:?}", c.io.id);
            let mut io = ConnIo::new(
                None,
                c.io.id,
                c.io.peer(),
                Role::Client,
                Phase::Backoff { due },
            );
            io.cold = c.io.cold.take();
            if let Some(k) = io.cold.as_mut() {
                k.user_timers.clear();
            }
            self.insert(
                slot,
                crate::event::conn::Slot {
                    io,
                    rd: None,
                    data: c.data,
                },
            );
            self.arm_timer(slot);
        }
    }

    /// Whether a client connection that ends now reconnects, and after how long:
    /// it has a session the application did not close, the loop is not shutting
    /// down, and the backoff allows another attempt. Advances the session.
    fn retry_after(&mut self, io: &mut ConnIo) -> Option<std::time::Duration> {
        let now = self.core.now;
        let shutting_down = self.shutdown.is_some();
        let backoff = self.config().reconnect.clone()?;
        let s = io.cold.as_mut()?.session.as_mut()?;
        s.will_reconnect = false;
        if s.closed_by_app || shutting_down {
            return None;
        }
        if let Some(opened) = s.opened_at.take() {
            s.attempt = backoff.after_connection(s.attempt, now.saturating_duration_since(opened));
            if s.attempt == 0 {
                s.failing_since = None;
            }
        }
        let since = *s.failing_since.get_or_insert(now);
        if !backoff.allows(s.attempt, since, now) {
            return None;
        }
        let wait = backoff.delay(s.attempt);
        s.attempt = s.attempt.saturating_add(1);
        s.will_reconnect = true;
        Some(wait)
    }

    pub(crate) fn fire_timers(&mut self) {
        let now = self.core.now;
        while let Some(e) = self.core.timers.pop_due(now) {
            let slot = e.slot;
            let Some(c) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
                self.core.timers.popped_dead();
                continue;
            };
            if c.io.id.generation() != e.generation {
                self.core.timers.popped_dead();
                continue;
            }
            match e.kind {
                TimerKind::Conn => {
                    if c.io.timer_at == Some(e.at) {
                        c.io.timer_at = None;
                    } else {
                        self.core.timers.popped_dead();
                    }
                    // A throttled connection's budget refilled: read it again
                    // (its input waited in the buffer and the socket).
                    if c.io.throttled_until().is_some_and(|t| t <= now) {
                        if let Some(r) = c.io.cold().rates.as_mut() {
                            r.throttled_until = None;
                        }
                        c.io.throttled = false;
                        self.ready.push(slot);
                    }
                    if c.io.phase_deadline().is_some_and(|d| d <= now) {
                        self.conn_timeout(slot);
                    }
                }
                TimerKind::User(id) => {
                    let Some(pos) =
                        c.io.cold
                            .as_deref()
                            .and_then(|cold| cold.user_timers.iter().position(|t| t.id == id))
                    else {
                        // Cancelled.
                        self.core.timers.popped_dead();
                        continue;
                    };
                    let cold = c.io.cold();
                    let token = cold.user_timers[pos].token;
                    match cold.user_timers[pos].period {
                        Some(p) => {
                            self.core
                                .timers
                                .add(now + p, slot, e.generation, TimerKind::User(id))
                        }
                        None => {
                            cold.user_timers.swap_remove(pos);
                        }
                    }
                    let open = self.slots[slot].as_ref().is_some_and(|c| c.io.is_open());
                    if open {
                        self.call(slot, |h, ctx| h.on_timer(ctx, token));
                    }
                }
            }
            self.finalize(slot);
        }
    }

    /// The connection's protocol deadline passed: its timers run (heartbeat, idle,
    /// close waits); before it opened, the handshake took too long.
    fn conn_timeout(&mut self, slot: usize) {
        let now = self.core.now;
        let Some(Parts { conn: c, core, .. }) = self.parts(slot) else {
            return;
        };
        let err = match &mut c.io.phase {
            Phase::Backoff { .. } => {
                self.redial(slot);
                return;
            }
            Phase::Open(conn) => {
                let r = conn.handle_timeout(now);
                c.io.mark_dirty(&mut core.shared);
                r.err().map(Error::Lost)
            }
            Phase::Deferred { seq, .. } => {
                // The handler's worker did not answer in time: the loop does.
                let (id, seq) = (c.io.id, *seq);
                let resp =
                    crate::event::api::response::HttpResponse::text(504, "no answer in time\n");
                if let Some(c) = self.slots[slot].as_mut()
                    && let Phase::Deferred { keep_alive, .. } = &mut c.io.phase
                {
                    // A late answer must not be taken for the next request's.
                    *keep_alive = false;
                }
                self.deferred_answer(id, seq, &resp);
                return;
            }
            _ => {
                c.io.kill(&mut core.shared);
                let idle_keep_alive = c.io.http_served
                    && matches!(c.io.phase, Phase::Request(_))
                    && c.rd.as_deref().is_none_or(|rd| rd.start == rd.end);
                if idle_keep_alive {
                    return;
                }
                core.shared.stats.handshake_timeouts += 1;
                crate::logging::info!("{}: {} handshake timed out", c.io.id, c.io.peer());
                match &c.io.phase {
                    Phase::Client(s) => Some(Error::Handshake(match &s.tunnel {
                        Some(t) => HandshakeError::Proxy(TunnelError::Timeout(if s.connected {
                            t.hs.step()
                        } else {
                            TunnelStep::Connect
                        })),
                        None => HandshakeError::Timeout,
                    })),
                    _ => (c.io.role == Role::Client)
                        .then_some(Error::Handshake(HandshakeError::Timeout)),
                }
            }
        };
        if let Some(e) = err {
            if let Some(p) = self.parts(slot) {
                p.conn.io.kill(&mut p.core.shared);
            }
            self.report_error(slot, &e);
        }
    }
}
