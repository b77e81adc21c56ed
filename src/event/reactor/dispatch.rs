//! Input to the handler: each connection's buffered input through its phase, and,
//! once open, the protocol connection's events to the handler's callbacks in the
//! delivery mode the handler chose for each message.

use crate::event::api::limits::RatePolicy;
use crate::proto::{Chunk, CloseCode, Event};

use crate::event::api::ctx::Ctx;
use crate::event::api::handler::Handler;
use crate::event::api::types::{Delivery, MessageRef};
use crate::event::conn::{Phase, Slot};
use crate::event::reactor::worker::{Parts, Worker};

/// Phase changes per call of `process`: a connection goes through at most four
/// before it opens.
const PHASE_STEPS: usize = 8;

impl<H: Handler> Worker<H> {
    /// Runs a connection's buffered input through its phase.
    pub(crate) fn process(&mut self, slot: usize) {
        // Each round either changes the phase or returns; a connection has at most
        // four phases before it opens.
        for _ in 0..PHASE_STEPS {
            let Some(c) = self.slots[slot].as_ref() else {
                return;
            };
            // Without new input only a plain HTTP body (complete already) or an open
            // connection (decompressed data still to deliver) has anything to do.
            let idle_ok = matches!(c.io.phase, Phase::HttpBody { .. } | Phase::Open(_));
            if c.io.is_dead() || (c.pending().is_empty() && !idle_ok) {
                return;
            }
            let more = match &c.io.phase {
                Phase::Request(_) => self.server_handshake(slot),
                Phase::HttpBody { .. } => self.http_body(slot),
                Phase::Client(s) if s.connected => self.client_handshake(slot),
                Phase::Open(_) => {
                    self.frames(slot);
                    return;
                }
                Phase::Proxy(_)
                | Phase::Backoff { .. }
                | Phase::Client(_)
                | Phase::Answer { .. }
                | Phase::Deferred { .. } => {
                    return;
                }
            };
            if !more {
                return;
            }
        }
    }

    /// Runs buffered frames through the connection and the handler.
    fn frames(&mut self, slot: usize) {
        let now = self.core.now;
        let Some(Parts {
            conn: Slot { io, rd, data },
            core,
            handler,
            inflated,
        }) = self.parts(slot)
        else {
            return;
        };
        // Until the connection needs more input: each round consumes input or
        // delivers decompressed data (a compressed message can still have some when
        // all of its input is consumed), and the connection's input is bounded.
        while !(io.is_dead() || io.is_held()) {
            let Phase::Open(conn) = &mut io.phase else {
                break;
            };
            let has_input = rd.as_deref().is_some_and(|r| r.start < r.end);
            if !has_input && !conn.wants_read() {
                break;
            }
            // Decompressed data to deliver with no input held: a read state for the
            // message's delivery (rare; given back with the next read's buffer).
            let rs = &mut **rd.get_or_insert_with(Box::default);
            // The loop's policy: after the handler's close, the peer's data is not
            // delivered (the handler asked to end the conversation).
            let closing = conn.state().close_sent();
            let (n, ev) = match conn.read(&mut rs.buf[rs.start..rs.end], inflated, now) {
                Ok(r) => r,
                Err(e) => {
                    // The connection failed itself (RFC 6455 §7.1.7): its close is
                    // queued; the transport closes as it says.
                    rs.start = rs.end;
                    rs.delivery = None;
                    rs.msg = Vec::new();
                    crate::logging::info!("{}: {} failed the connection: {e}", io.id, io.peer());
                    let mut ctx = Ctx {
                        io: &mut *io,
                        data: &mut *data,
                        core: &mut *core,
                    };
                    handler.on_error(&mut ctx, &e.into());
                    break;
                }
            };
            let Some(ev) = ev else {
                rs.start += n;
                break;
            };
            let mut ctx = Ctx {
                io: &mut *io,
                data: &mut *data,
                core: &mut *core,
            };
            let mut over_rate = None;
            match ev {
                Event::Message(chunk) => {
                    if ctx.io.rated {
                        over_rate = charge(ctx.io, chunk.data.len(), chunk.last, now);
                    }
                    let stats = &mut ctx.core.shared.stats;
                    stats.bytes_in += chunk.data.len() as u64;
                    stats.messages_in += u64::from(chunk.last);
                    if !closing {
                        if chunk.first {
                            let mode = handler.on_message_start(&mut ctx, chunk.kind);
                            rs.delivery = Some((chunk.kind, mode));
                        }
                        if let Some((kind, mode)) = rs.delivery {
                            if chunk.first && chunk.last && mode == Delivery::Whole {
                                // Arrived whole: straight from the buffer, no copy.
                                let msg = MessageRef {
                                    kind,
                                    data: chunk.data,
                                };
                                handler.on_message(&mut ctx, msg);
                            } else {
                                deliver_piece(handler, &mut ctx, &mut rs.msg, &chunk, mode);
                            }
                        }
                    }
                    if chunk.last {
                        rs.delivery = None;
                    }
                    // Back-pressure takes effect as soon as a callback passes the
                    // limit, not after the rest of the buffered input.
                    ctx.io.apply_backpressure(&mut ctx.core.shared, now);
                }
                Event::Ping(p) => handler.on_ping(&mut ctx, p),
                Event::Pong(p) => handler.on_pong(&mut ctx, p),
                Event::Close { .. } => {
                    // The echo is queued; nothing after a close frame matters.
                    rs.start = rs.end;
                    rs.delivery = None;
                    rs.msg = Vec::new();
                    break;
                }
            }
            rs.start += n;
            if let Some(over) = over_rate
                && over_the_rate(io, core, over, now)
            {
                break;
            }
        }
        if !io.out_is_empty() {
            io.mark_dirty(&mut core.shared);
        }
    }
}

/// Charges a piece of a message to a connection's budgets (connections with
/// rates only; kept out of line).
#[cold]
#[inline(never)]
fn charge(
    io: &mut crate::event::conn::ConnIo,
    bytes: usize,
    last: bool,
    now: std::time::Instant,
) -> Option<std::time::Duration> {
    io.cold
        .as_deref_mut()
        .and_then(|c| c.rates.as_mut())
        .and_then(|r| r.charge(bytes, last, now))
}

/// A connection went over its message or byte rate by `over` (the time its budget
/// needs to refill): closed with 1008, or throttled until then. True when it must
/// not be read on now.
#[cold]
#[inline(never)]
fn over_the_rate<D>(
    io: &mut crate::event::conn::ConnIo,
    core: &mut crate::event::reactor::core::LoopCore<D>,
    over: std::time::Duration,
    now: std::time::Instant,
) -> bool {
    match core.shared.config.limits.rate_policy {
        RatePolicy::Close => {
            let Phase::Open(conn) = &mut io.phase else {
                return true;
            };
            if !conn.state().close_sent() {
                core.shared.stats.rate_limited += 1;
                let _ = conn.close(now, CloseCode::POLICY_VIOLATION, "rate limit");
                crate::logging::info!("{}: {} over its rate: closed", io.id, io.peer());
                io.mark_dirty(&mut core.shared);
            }
            false
        }
        RatePolicy::Throttle => {
            core.shared.stats.throttled += 1;
            if let Some(r) = io.cold().rates.as_mut() {
                r.throttled_until = Some(now + over);
                io.throttled = true;
            }
            true
        }
    }
}

/// Feeds one piece of a message to the handler in its chosen delivery mode.
fn deliver_piece<H: Handler>(
    handler: &mut H,
    ctx: &mut Ctx<'_, H::Data>,
    msg: &mut Vec<u8>,
    chunk: &Chunk<'_>,
    mode: Delivery,
) {
    match mode {
        Delivery::Stream => handler.on_chunk(ctx, chunk.data),
        Delivery::Whole => msg.extend_from_slice(chunk.data),
    }
    if !chunk.last {
        return;
    }
    match mode {
        Delivery::Stream => handler.on_message_end(ctx),
        Delivery::Whole => {
            handler.on_message(
                ctx,
                MessageRef {
                    kind: chunk.kind,
                    data: msg,
                },
            );
            // Released, not cleared: an idle connection holds no message buffer
            // (keeping the capacity cost ~100 KiB per connection that once got a
            // 100 KB message; the soak found it).
            *msg = Vec::new();
        }
    }
}
