//! A connection's life on the loop after it exists: readiness events (read into a
//! pooled buffer, flush), the end of an event (back-pressure, drain, the protocol
//! timer, teardown), timers firing, and teardown with `on_close`.

use std::io;
use std::sync::atomic::Ordering;

use crate::error::{Error, HandshakeError};
use crate::proto::handshake::ServerHandshake;
use crate::proto::{CloseCode, Role};

use super::conn::Phase;
use super::ctx::Ctx;
use super::handler::Handler;
use super::timers::TimerKind;
use super::worker::{Worker, interrupted, would_block};

/// Reads per readiness event before yielding to other connections.
const READ_BUDGET: usize = 16;
/// Read buffers kept for reuse by the loop (a buffer is lent to a connection only
/// while it has input to process): at most 16 x 64 KiB (the default buffer size)
/// stay allocated after a burst.
const POOL_MAX: usize = 16;

/// Read states (without buffers) a loop keeps for connections that start reading.
const RD_SPARES: usize = 64;

impl<H: Handler> Worker<H> {
    /// Pooled read buffers: the read buffer size plus room for a frame header, so a
    /// frame of exactly `read_buffer_size` that arrives into an empty buffer is
    /// delivered in place (no compaction), and at least one whole HTTP head.
    fn buffer_size(&self) -> usize {
        let c = &self.config().settings;
        (c.read_buffer_size + crate::proto::MAX_HEADER_LEN).max(c.max_head_size + 1)
    }

    pub(crate) fn conn_event(&mut self, slot: usize, readable: bool, writable: bool, hup: bool) {
        let Some(c) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        if writable {
            if matches!(&c.io.phase, Phase::Client(s) if !s.connected) {
                self.finish_connect(slot);
            } else if let Err(e) = c.io.flush() {
                self.write_failed(slot, e);
            }
        }
        if readable {
            self.read_conn(slot, hup);
        }
        self.finalize(slot);
    }

    fn take_buffer(&mut self, size: usize) -> Vec<u8> {
        match self.pool.pop() {
            Some(b) if b.len() == size => b,
            _ => vec![0u8; size],
        }
    }

    fn read_conn(&mut self, slot: usize, hup: bool) {
        let size = self.buffer_size();
        // Input buffered before a back-pressure pause (or decompressed data still to
        // deliver) goes first.
        let backlog = self.slots[slot].as_ref().is_some_and(|c| {
            !c.io.paused
                && (!c.pending().is_empty() || c.io.conn().is_some_and(|conn| conn.wants_read()))
        });
        if backlog {
            self.process(slot);
        }
        for round in 0..READ_BUDGET {
            let (needs_buffer, discard) = match self.slots[slot].as_ref() {
                Some(c) if !c.io.paused && !c.io.dead => (
                    c.rd.as_deref().is_none_or(|rd| rd.buf.is_empty()),
                    match &c.io.phase {
                        Phase::Answer {
                            keep_alive: false, ..
                        } => true,
                        // A kept-alive HTTP connection's next request stays in the
                        // socket until this one is answered (the loop reads again
                        // then: `keep_alive_next`).
                        Phase::Answer { .. } | Phase::Deferred { .. } => return,
                        Phase::Client(s) => !s.connected,
                        _ => false,
                    },
                ),
                _ => return,
            };
            if discard {
                self.discard_input(slot);
                return;
            }
            if needs_buffer {
                let b = self.take_buffer(size);
                let spare = &mut self.rd_spares;
                if let Some(c) = self.slots[slot].as_mut() {
                    c.rd.get_or_insert_with(|| spare.pop().unwrap_or_default())
                        .buf = b;
                }
            }
            let Some(c) = self.slots[slot].as_mut() else {
                return;
            };
            let Some(rd) = c.rd.as_deref_mut() else {
                return;
            };
            if rd.end == rd.buf.len() {
                if rd.start > 0 {
                    rd.buf.copy_within(rd.start..rd.end, 0);
                    rd.end -= rd.start;
                    rd.start = 0;
                } else {
                    // Only an HTTP body larger than the buffer gets here; grow for it.
                    let n = rd.buf.len() * 2;
                    rd.buf.resize(n, 0);
                }
            }
            let space = rd.buf.len() - rd.end;
            let Some(sock) = c.io.sock.as_mut() else {
                return;
            };
            let short_read_drains = sock.short_read_drains();
            match sock.read(&mut rd.buf[rd.end..]) {
                Ok(0) => {
                    self.on_eof(slot);
                    return;
                }
                Ok(n) => {
                    rd.end += n;
                    self.process(slot);
                    if n < space && !hup && short_read_drains {
                        // A short read drained the socket: the next edge will tell us
                        // when more arrives.
                        break;
                    }
                    if round + 1 == READ_BUDGET {
                        self.ready.push(slot);
                    }
                }
                Err(e) if would_block(&e) => break,
                Err(e) if interrupted(&e) => {}
                // TLS without close_notify after the WebSocket closing handshake
                // finished: the close frames already ended the conversation, so this
                // is an ordinary end of input. Before that it is a truncation and
                // reported as the error it is.
                Err(e)
                    if e.kind() == io::ErrorKind::UnexpectedEof
                        && c.io
                            .conn()
                            .and_then(|conn| conn.end())
                            .is_some_and(|e| e.received) =>
                {
                    self.on_eof(slot);
                    return;
                }
                Err(e) => {
                    self.io_failed(slot, e);
                    return;
                }
            }
        }
        self.release_buffer(slot);
    }

    /// Reads and drops input we no longer care about (after an HTTP answer).
    fn discard_input(&mut self, slot: usize) {
        let Some(c) = self.slots[slot].as_mut() else {
            return;
        };
        let Some(sock) = c.io.sock.as_mut() else {
            return;
        };
        let mut scratch = [0u8; 4096];
        for _ in 0..READ_BUDGET {
            match sock.read(&mut scratch) {
                Ok(0) => {
                    c.io.dead = true;
                    return;
                }
                Ok(_) => {}
                Err(e) if interrupted(&e) => {}
                Err(_) => return,
            }
        }
    }

    /// Gives the read buffer back to the pool when nothing is pending, and the read
    /// state back to the spares when no message is being assembled either.
    fn release_buffer(&mut self, slot: usize) {
        let size = self.buffer_size();
        let Some(c) = self.slots[slot].as_mut() else {
            return;
        };
        let Some(rd) = c.rd.as_deref_mut() else {
            return;
        };
        if rd.start == rd.end && !rd.buf.is_empty() {
            rd.start = 0;
            rd.end = 0;
            let b = std::mem::take(&mut rd.buf);
            if b.len() == size && self.pool.len() < POOL_MAX {
                self.pool.push(b);
            }
        }
        if rd.at_rest()
            && let Some(b) = c.rd.take()
            && self.rd_spares.len() < RD_SPARES
        {
            self.rd_spares.push(b);
        }
    }

    /// The peer closed the transport.
    fn on_eof(&mut self, slot: usize) {
        // Frames that arrived with the FIN are still processed.
        self.process(slot);
        let Some(c) = self.slots[slot].as_mut() else {
            return;
        };
        c.io.dead = true;
        match &mut c.io.phase {
            Phase::Open(conn) => conn.handle_eof(),
            Phase::Client(_) => {
                let err = Error::Handshake(HandshakeError::ConnectionClosed);
                self.report_error(slot, &err);
            }
            _ => {}
        }
    }

    /// A write failed: see [`ConnIo::write_failed`](super::conn::ConnIo::write_failed).
    fn write_failed(&mut self, slot: usize, e: io::Error) {
        let now = self.core.now;
        let Some(c) = self.slots[slot].as_mut() else {
            return;
        };
        if c.io.conn().is_none() {
            return self.io_failed(slot, e);
        }
        c.io.write_failed(now);
        self.report_error(slot, &Error::Io(e));
    }

    /// The transport failed.
    pub(crate) fn io_failed(&mut self, slot: usize, e: io::Error) {
        let Some(c) = self.slots[slot].as_mut() else {
            return;
        };
        c.io.dead = true;
        let report = match &mut c.io.phase {
            Phase::Open(conn) => {
                conn.handle_eof();
                true
            }
            _ => c.io.role == Role::Client,
        };
        if report {
            self.report_error(slot, &Error::Io(e));
        }
    }

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
    /// [`Timers::compact`](super::timers::Timers::compact)).
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
        let Worker {
            slots,
            core,
            handler,
            ready,
            ..
        } = self;
        let Some(c) = slots[slot].as_mut() else {
            return;
        };
        if !c.io.dead && !c.io.out_is_empty() {
            let flushed = c.io.flush();
            if flushed.is_ok() && c.io.out_is_empty() {
                c.io.dirty = false;
            }
            if let Err(e) = flushed {
                c.io.write_failed(now);
                let mut ctx = Ctx {
                    io: &mut c.io,
                    data: &mut c.data,
                    core,
                };
                handler.on_error(&mut ctx, &Error::Io(e));
            }
        }
        if c.io.is_open() {
            c.io.apply_backpressure(&mut core.shared, now);
            let low = core.shared.config.max_output_buffer / 2;
            if c.io.buffered() < low {
                if c.io.paused {
                    c.io.paused = false;
                    ready.push(slot);
                }
                if c.io.drain_wanted {
                    c.io.drain_wanted = false;
                    let mut ctx = Ctx {
                        io: &mut c.io,
                        data: &mut c.data,
                        core,
                    };
                    handler.on_drain(&mut ctx);
                    if !c.io.out_is_empty() {
                        let _ = c.io.flush();
                    }
                }
            }
        }
        let done = c.io.dead
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
                && c.io.dirty
            {
                c.io.dirty = false;
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
            let _ = self.poll.registry().deregister(sock.tcp());
            sock.shutdown();
        }
        if let Some(a) = c.io.cold.as_mut().and_then(|cold| cold.alive.take()) {
            a.store(false, Ordering::Release);
        }
        c.io.dead = true;
        self.core.release_slot(slot);
        self.core.set_live(self.core.live.saturating_sub(1));
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
                    if c.io.next_deadline().is_some_and(|d| d <= now) {
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
        let Worker { slots, core, .. } = self;
        let Some(c) = slots[slot].as_mut() else {
            return;
        };
        let err = match &mut c.io.phase {
            Phase::Open(conn) => {
                let r = conn.handle_timeout(now);
                c.io.mark_dirty(&mut core.shared);
                r.err().map(Error::Lost)
            }
            Phase::Deferred { seq, .. } => {
                // The handler's worker did not answer in time: the loop does.
                let (id, seq) = (c.io.id, *seq);
                let resp = super::response::HttpResponse::text(504, "no answer in time\n");
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
                c.io.dead = true;
                let idle_keep_alive = c.io.http_served
                    && matches!(c.io.phase, Phase::Request(_))
                    && c.rd.as_deref().is_none_or(|rd| rd.start == rd.end);
                if idle_keep_alive {
                    return;
                }
                core.shared.stats.handshake_timeouts += 1;
                crate::logging::info!("{}: {} handshake timed out", c.io.id, c.io.peer());
                (c.io.role == Role::Client).then_some(Error::Handshake(HandshakeError::Timeout))
            }
        };
        if let Some(e) = err {
            if let Some(c) = self.slots[slot].as_mut() {
                c.io.dead = true;
            }
            self.report_error(slot, &e);
        }
    }
}
