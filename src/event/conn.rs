//! One connection on the loop: its phase, its output queue and encoder (the part
//! callbacks may touch, [`ConnIo`]), and its read side ([`ReadState`]), kept apart so
//! a handler can borrow a payload from the read buffer while it sends.
//!
//! Idle connections hold no buffers: the read buffer is borrowed from the loop's
//! pool only while unprocessed input remains, and the output queue is freed when it
//! empties (if it had grown).

use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crate::error::{Error, Result, UsageError};
use crate::proto::close::encode_close_payload;
use crate::proto::frame::OpCode;
use crate::proto::handshake::Request;
use crate::proto::mask::apply_mask;
use crate::proto::{CloseCode, Decoder, Encoder, MessageKind, Role};

use super::config::Backpressure;
use super::ctx::{ConnId, Prepared};
use super::handler::Delivery;
use super::worker::LoopShared;

/// Server frames at least this large are written straight from the caller's slice
/// when nothing is queued ahead of them.
const WRITE_THROUGH_MIN: usize = 16 * 1024;

/// Where a connection is in its life.
pub(crate) enum Phase {
    /// Server: reading the request head.
    ServerHandshake,
    /// Server: a plain HTTP request whose body is still arriving.
    HttpBody {
        head: Box<Request>,
        head_len: usize,
        body_len: usize,
    },
    /// Server: a plain HTTP response (or a refusal) is queued; close once it is sent.
    HttpDone,
    /// Client: TCP connect in progress; the request goes out once connected.
    ClientConnecting { request: Vec<u8>, key: String },
    /// Client: request sent, reading the response head.
    ClientHandshake { key: String },
    /// WebSocket frames.
    Open,
}

/// A message from another source ([`Sender`](super::Sender), broadcast) waiting for
/// the handler's open fragmented message to end.
pub(crate) enum Deferred {
    Owned(MessageKind, Vec<u8>),
    Prepared(Prepared),
}

pub(crate) struct UserTimer {
    pub(crate) id: u64,
    pub(crate) token: u64,
    pub(crate) period: Option<std::time::Duration>,
}

/// The state callbacks reach through [`Ctx`](super::Ctx).
pub(crate) struct ConnIo {
    pub(crate) sock: Option<mio::net::TcpStream>,
    pub(crate) id: ConnId,
    pub(crate) peer: SocketAddr,
    pub(crate) role: Role,
    pub(crate) phase: Phase,
    pub(crate) enc: Encoder,
    out: Vec<u8>,
    out_pos: usize,
    deferred: VecDeque<Deferred>,
    deferred_bytes: usize,
    pub(crate) subprotocol: Option<String>,
    /// `on_open` was called (so `on_close` will be).
    pub(crate) opened: bool,
    /// Reading is suspended for back-pressure.
    pub(crate) paused: bool,
    /// Call `on_drain` when the queue falls below the low watermark.
    pub(crate) drain_wanted: bool,
    /// Close the transport once the output queue is empty.
    pub(crate) close_after_flush: bool,
    /// A close timer must be armed (we sent a close, or wait for the server's EOF).
    pub(crate) arm_close_timer: bool,
    /// The peer's EOF was seen.
    pub(crate) read_eof: bool,
    /// Drop the connection now.
    pub(crate) kill: bool,
    /// On the loop's dirty list (output to flush at the end of the iteration).
    pub(crate) dirty: bool,
    /// What `on_close` reports.
    pub(crate) end: Option<(CloseCode, String)>,
    pub(crate) last_rx: Instant,
    pub(crate) last_ping: Instant,
    pub(crate) ping_sent: Option<Instant>,
    pub(crate) user_timers: Vec<UserTimer>,
    pub(crate) alive: Option<Arc<AtomicBool>>,
    /// A read limit set by a callback, applied by the loop.
    pub(crate) read_limit: Option<u64>,
    /// UTF-8 state of a text message sent fragment by fragment (`send_fragment`).
    pub(crate) out_text: Option<crate::proto::utf8::Utf8Validator>,
    /// permessage-deflate compressor, when negotiated.
    #[cfg(feature = "deflate")]
    pub(crate) deflater: Option<Box<crate::proto::deflate::MessageDeflater>>,
}

impl ConnIo {
    pub(crate) fn new(
        sock: Option<mio::net::TcpStream>,
        id: ConnId,
        peer: SocketAddr,
        role: Role,
        phase: Phase,
        now: Instant,
    ) -> ConnIo {
        ConnIo {
            sock,
            id,
            peer,
            role,
            phase,
            enc: Encoder::new(role),
            out: Vec::new(),
            out_pos: 0,
            deferred: VecDeque::new(),
            deferred_bytes: 0,
            subprotocol: None,
            opened: false,
            paused: false,
            drain_wanted: false,
            close_after_flush: false,
            arm_close_timer: false,
            read_eof: false,
            kill: false,
            dirty: false,
            end: None,
            last_rx: now,
            last_ping: now,
            ping_sent: None,
            user_timers: Vec::new(),
            alive: None,
            read_limit: None,
            out_text: None,
            #[cfg(feature = "deflate")]
            deflater: None,
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open) && !self.kill
    }

    /// Queued output bytes (including messages deferred behind an open fragment).
    pub(crate) fn buffered(&self) -> usize {
        self.out.len() - self.out_pos + self.deferred_bytes
    }

    pub(crate) fn out_is_empty(&self) -> bool {
        self.out_pos == self.out.len()
    }

    fn mark_dirty(&mut self, shared: &mut LoopShared) {
        if !self.dirty {
            self.dirty = true;
            shared.dirty.push(self.id.slot());
        }
    }

    /// Appends raw bytes (an HTTP head) to the output queue.
    pub(crate) fn queue_raw(&mut self, shared: &mut LoopShared, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
        self.mark_dirty(shared);
    }

    fn writable_check(&self) -> Result<()> {
        if self.kill || self.enc.is_close_sent() || !matches!(self.phase, Phase::Open) {
            return Err(Error::AlreadyClosed);
        }
        Ok(())
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

    /// Encodes one frame into the output queue (no back-pressure check). A whole
    /// message is compressed when permessage-deflate is on and it is big enough.
    pub(crate) fn queue_frame(
        &mut self,
        shared: &mut LoopShared,
        op: OpCode,
        fin: bool,
        payload: &[u8],
    ) -> Result<()> {
        self.writable_check()?;
        #[cfg(feature = "deflate")]
        if fin
            && matches!(op, OpCode::Text | OpCode::Binary)
            && let Some(d) = self.deflater.as_mut()
            && d.wants(payload.len())
        {
            let mut z = std::mem::take(&mut shared.zbuf);
            z.clear();
            let r = d
                .compress_message(payload, &mut z)
                .and_then(|()| self.queue_raw_frame(shared, op, fin, true, &z));
            if z.capacity() <= 256 * 1024 {
                shared.zbuf = z;
            }
            return r;
        }
        self.queue_raw_frame(shared, op, fin, false, payload)
    }

    /// Encodes one frame with `payload` as given (already compressed if `rsv1`).
    pub(crate) fn queue_raw_frame(
        &mut self,
        shared: &mut LoopShared,
        op: OpCode,
        fin: bool,
        rsv1: bool,
        payload: &[u8],
    ) -> Result<()> {
        self.writable_check()?;
        let h = self.enc.header(op, fin, rsv1, payload.len() as u64)?;
        if h.mask.is_none() && payload.len() >= WRITE_THROUGH_MIN && self.out_is_empty() {
            // Nothing queued: write header + payload straight from the caller's slice
            // (one vectored write, no copy); queue only what the socket did not take.
            let written = self.write_through(h.as_bytes(), payload);
            let hl = h.as_bytes().len();
            if written < hl {
                self.out.extend_from_slice(&h.as_bytes()[written..]);
                self.out.extend_from_slice(payload);
            } else if written < hl + payload.len() {
                self.out.extend_from_slice(&payload[written - hl..]);
            }
        } else {
            self.out.reserve(h.as_bytes().len() + payload.len());
            self.out.extend_from_slice(h.as_bytes());
            let start = self.out.len();
            self.out.extend_from_slice(payload);
            if let Some(key) = h.mask {
                apply_mask(&mut self.out[start..], key, 0);
            }
        }
        self.mark_dirty(shared);
        if !op.is_control() && fin && !self.deferred.is_empty() {
            self.undefer(shared);
        }
        Ok(())
    }

    /// Queues one fragment of a message sent piece by piece (`send_fragment`, the
    /// streaming writer). With permessage-deflate the piece is compressed into the
    /// message's deflate stream (RSV1 on the first fragment), ended on `fin`.
    pub(crate) fn queue_fragment(
        &mut self,
        shared: &mut LoopShared,
        op: OpCode,
        fin: bool,
        data: &[u8],
    ) -> Result<()> {
        self.writable_check()?;
        #[cfg(feature = "deflate")]
        if let Some(d) = self.deflater.as_mut() {
            let first = op != OpCode::Continuation;
            let mut z = std::mem::take(&mut shared.zbuf);
            z.clear();
            let r = d
                .compress(data, &mut z)
                .and_then(|()| if fin { d.finish(&mut z) } else { Ok(()) });
            let r = r.and_then(|()| self.queue_raw_frame(shared, op, fin, first, &z));
            if z.capacity() <= 256 * 1024 {
                shared.zbuf = z;
            }
            return r;
        }
        self.queue_raw_frame(shared, op, fin, false, data)
    }

    /// A data frame from a callback: back-pressure applies.
    pub(crate) fn send_data(
        &mut self,
        shared: &mut LoopShared,
        op: OpCode,
        fin: bool,
        payload: &[u8],
    ) -> Result<()> {
        self.writable_check()?;
        if op != OpCode::Continuation {
            self.backpressure_check(shared)?;
        }
        if fin && op != OpCode::Continuation {
            self.queue_frame(shared, op, fin, payload)
        } else {
            self.queue_fragment(shared, op, fin, payload)
        }
    }

    /// A control frame (≤ 125 bytes); never refused for back-pressure.
    pub(crate) fn send_control(
        &mut self,
        shared: &mut LoopShared,
        op: OpCode,
        payload: &[u8],
    ) -> Result<()> {
        if !op.is_control() {
            return Err(UsageError::NotControl.into());
        }
        self.queue_frame(shared, op, true, payload)
    }

    /// A prepared message from a callback: refused while a fragmented message is open.
    pub(crate) fn send_prepared(&mut self, shared: &mut LoopShared, msg: &Prepared) -> Result<()> {
        self.writable_check()?;
        self.backpressure_check(shared)?;
        self.queue_prepared(shared, msg)
    }

    fn queue_prepared(&mut self, shared: &mut LoopShared, msg: &Prepared) -> Result<()> {
        #[cfg(feature = "deflate")]
        let compressing = self.deflater.is_some();
        #[cfg(not(feature = "deflate"))]
        let compressing = false;
        if self.role == Role::Client || compressing {
            // Masked, or compressed with this connection's own context.
            return self.queue_frame(shared, msg.0.kind.opcode(), true, &msg.0.payload);
        }
        if self.role == Role::Client {
            return self.queue_frame(shared, msg.0.kind.opcode(), true, &msg.0.payload);
        }
        // Advances the encoder's state (sequence, close) like any frame, then copies the
        // frame encoded once at preparation.
        self.enc
            .header(msg.0.kind.opcode(), true, false, msg.0.payload.len() as u64)?;
        self.out.extend_from_slice(&msg.0.server_frame);
        self.mark_dirty(shared);
        Ok(())
    }

    /// A message from another source (Sender, broadcast, another connection): waits
    /// behind an open fragmented message instead of failing.
    pub(crate) fn deliver(&mut self, shared: &mut LoopShared, d: Deferred) -> Result<()> {
        self.writable_check()?;
        self.backpressure_check(shared)?;
        if self.enc.in_message() {
            self.deferred_bytes += match &d {
                Deferred::Owned(_, v) => v.len(),
                Deferred::Prepared(p) => p.0.payload.len(),
            };
            self.deferred.push_back(d);
            return Ok(());
        }
        match d {
            Deferred::Owned(kind, data) => self.queue_frame(shared, kind.opcode(), true, &data),
            Deferred::Prepared(p) => self.queue_prepared(shared, &p),
        }
    }

    fn undefer(&mut self, shared: &mut LoopShared) {
        while let Some(d) = self.deferred.pop_front() {
            let r = match &d {
                Deferred::Owned(k, v) => {
                    self.deferred_bytes -= v.len();
                    self.queue_frame(shared, k.opcode(), true, v)
                }
                Deferred::Prepared(p) => {
                    self.deferred_bytes -= p.0.payload.len();
                    self.queue_prepared(shared, p)
                }
            };
            if r.is_err() {
                // Closed meanwhile: the rest cannot be sent either.
                self.deferred.clear();
                self.deferred_bytes = 0;
                return;
            }
        }
    }

    /// Starts the closing handshake (idempotent once a close was sent).
    pub(crate) fn start_close(
        &mut self,
        shared: &mut LoopShared,
        code: CloseCode,
        reason: &str,
    ) -> Result<()> {
        if self.enc.is_close_sent() || self.kill {
            return Ok(());
        }
        if !matches!(self.phase, Phase::Open) {
            // Not yet a WebSocket: there is nothing to close politely.
            self.kill = true;
            return Ok(());
        }
        let mut payload = [0u8; 125];
        let close = (code != CloseCode::NO_STATUS).then_some((code, reason));
        let n = encode_close_payload(close, &mut payload)?;
        self.queue_frame(shared, OpCode::Close, true, &payload[..n])?;
        if self.end.is_none() {
            self.end = Some((code, reason.to_owned()));
        }
        self.arm_close_timer = true;
        Ok(())
    }

    /// One vectored write of `head` + `body`; returns how many bytes went out (0 on
    /// WouldBlock or error: the queue takes over and `flush` reports any error).
    fn write_through(&mut self, head: &[u8], body: &[u8]) -> usize {
        let Some(sock) = self.sock.as_mut() else {
            return 0;
        };
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

    /// Writes as much queued output as the socket takes.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        let Some(sock) = self.sock.as_mut() else {
            return Ok(());
        };
        while self.out_pos < self.out.len() {
            match sock.write(&self.out[self.out_pos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.out_pos += n,
                // The socket is full: the loop is registered for WRITABLE and resumes.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.out_pos = 0;
        if self.out.capacity() > 256 * 1024 {
            // A burst is over: give the memory back rather than keep it per connection.
            self.out = Vec::new();
        } else {
            self.out.clear();
        }
        Ok(())
    }

    /// Applies the back-pressure policy after a callback or a flush.
    pub(crate) fn apply_backpressure(&mut self, shared: &mut LoopShared) {
        let limit = shared.config.max_output_buffer;
        let buffered = self.buffered();
        if buffered >= limit {
            match shared.config.backpressure {
                Backpressure::Pause => self.paused = true,
                Backpressure::Close(code) => {
                    let _ = self.start_close(shared, code, "output buffer limit");
                }
            }
        }
        if buffered >= limit / 2 {
            self.drain_wanted = true;
        }
    }
}

/// The read side: decoder, pooled read buffer, message accumulator.
pub(crate) struct ReadState {
    pub(crate) dec: Decoder,
    /// Empty (no allocation) while the connection has no pending input.
    pub(crate) buf: Vec<u8>,
    pub(crate) start: usize,
    pub(crate) end: usize,
    /// Whole-delivery accumulator for messages that arrive in several pieces.
    pub(crate) msg: Vec<u8>,
    pub(crate) delivery: Option<(MessageKind, Delivery)>,
    /// permessage-deflate decompressor, when negotiated.
    #[cfg(feature = "deflate")]
    pub(crate) inflater: Option<Box<crate::proto::deflate::MessageInflater>>,
}

impl ReadState {
    pub(crate) fn new(role: Role, max_message: u64, whole_frame_max: usize) -> Self {
        let mut dec = Decoder::new(role);
        dec.set_max_message_size(max_message);
        dec.set_whole_frame_max(whole_frame_max);
        ReadState {
            dec,
            buf: Vec::new(),
            start: 0,
            end: 0,
            msg: Vec::new(),
            delivery: None,
            #[cfg(feature = "deflate")]
            inflater: None,
        }
    }

    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }
}

/// A connection: what callbacks reach, what the reader owns, and the user's data.
pub(crate) struct Conn<D> {
    pub(crate) io: ConnIo,
    pub(crate) rd: ReadState,
    pub(crate) data: D,
}

#[cfg(test)]
mod size_tests {
    #[test]
    fn print_sizes() {
        println!(
            "Conn<()>: {} bytes (ConnIo {}, ReadState {}, Decoder {}, Encoder {}, Phase {})",
            std::mem::size_of::<Option<super::Conn<()>>>(),
            std::mem::size_of::<super::ConnIo>(),
            std::mem::size_of::<super::ReadState>(),
            std::mem::size_of::<crate::proto::Decoder>(),
            std::mem::size_of::<crate::proto::Encoder>(),
            std::mem::size_of::<super::Phase>(),
        );
    }
}
