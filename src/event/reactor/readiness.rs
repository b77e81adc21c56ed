//! A readiness event on a connection: flush what is queued, read into a buffer
//! borrowed from the loop's pool until the socket is drained (or a budget is spent),
//! run the input through the connection's phase, and note the end of input or a
//! failed transport. The event always ends in `settle` (settle.rs).

use std::io;

use crate::error::{Error, HandshakeError};
use crate::proto::Role;
use crate::proto::tunnel::TunnelError;

use crate::event::api::handler::Handler;
use crate::event::conn::Phase;
use crate::event::reactor::worker::{Parts, Worker, interrupted, would_block};

/// Reads per readiness event before yielding to other connections.
const READ_BUDGET: usize = 16;
/// Read buffers kept for reuse by the loop (a buffer is lent to a connection only
/// while it has input to process): at most 16 x 64 KiB (the default buffer size)
/// stay allocated after a burst.
pub(super) const POOL_MAX: usize = 16;

/// Read states (without buffers) a loop keeps for connections that start reading.
const RD_SPARES: usize = 64;

impl<H: Handler> Worker<H> {
    /// Pooled read buffers: the read buffer size plus room for a frame header, so a
    /// frame of exactly `read_buffer_size` that arrives into an empty buffer is
    /// delivered in place (no compaction), and at least one whole HTTP head.
    pub(super) fn buffer_size(&self) -> usize {
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
            !c.io.is_held()
                && (!c.pending().is_empty() || c.io.conn().is_some_and(|conn| conn.wants_read()))
        });
        if backlog {
            self.process(slot);
        }
        for round in 0..READ_BUDGET {
            let (needs_buffer, discard) = match self.slots[slot].as_ref() {
                Some(c) if !c.io.is_held() && !c.io.is_dead() => (
                    c.rd.as_deref().is_none_or(|rd| rd.buf.is_empty()),
                    match &c.io.phase {
                        // The PROXY header first (peeked at, then consumed); the
                        // next round reads the request behind it.
                        Phase::Proxy(_) => {
                            if self.proxy_step(slot) {
                                continue;
                            }
                            return;
                        }
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
        let Some(Parts { conn: c, core, .. }) = self.parts(slot) else {
            return;
        };
        let Some(sock) = c.io.sock.as_mut() else {
            return;
        };
        let mut scratch = [0u8; 4096];
        for _ in 0..READ_BUDGET {
            match sock.read(&mut scratch) {
                Ok(0) => {
                    c.io.kill(&mut core.shared);
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
        let Some(Parts { conn: c, core, .. }) = self.parts(slot) else {
            return;
        };
        c.io.kill(&mut core.shared);
        match &mut c.io.phase {
            Phase::Open(conn) => conn.handle_eof(),
            Phase::Client(s) => {
                let err = Error::Handshake(match &s.tunnel {
                    Some(t) => HandshakeError::Proxy(TunnelError::Closed(t.hs.step())),
                    None => HandshakeError::ConnectionClosed,
                });
                self.report_error(slot, &err);
            }
            _ => {}
        }
    }

    /// A write failed: see [`ConnIo::write_failed`](crate::event::conn::ConnIo::write_failed).
    fn write_failed(&mut self, slot: usize, e: io::Error) {
        let now = self.core.now;
        let Some(Parts { conn: c, core, .. }) = self.parts(slot) else {
            return;
        };
        if c.io.conn().is_none() {
            return self.io_failed(slot, e);
        }
        c.io.write_failed(&mut core.shared, now);
        self.report_error(slot, &Error::Io(e));
    }

    /// The transport failed.
    pub(crate) fn io_failed(&mut self, slot: usize, e: io::Error) {
        let Some(Parts { conn: c, core, .. }) = self.parts(slot) else {
            return;
        };
        c.io.kill(&mut core.shared);
        let report = match &mut c.io.phase {
            Phase::Open(conn) => {
                conn.handle_eof();
                true
            }
            _ => c.io.role == Role::Client,
        };
        if report {
            let err = match &c.io.phase {
                Phase::Client(s) if s.connected => match &s.tunnel {
                    Some(t) => crate::forward_proxy::tunnel_io_error(t.hs.step(), e),
                    None => Error::Io(e),
                },
                _ => Error::Io(e),
            };
            self.report_error(slot, &err);
        }
    }
}
