//! The blocking read side: a fixed read buffer, the decoder, read deadlines,
//! ping/pong/close handlers, and the streaming [`MessageReader`].
//!
//! Payloads are unmasked in place in the read buffer and copied once: into the
//! caller's buffer (`MessageReader`) or into the message (`read_message`). A message
//! of any size streams through a buffer of fixed size.

use std::io;
use std::time::Instant;

use crate::blocking::stream::Stream;
use crate::blocking::write::ControlSink;
use crate::error::{Error, ProtocolError, Result};
use crate::message::Message;
use crate::proto::close::{CloseCode, CloseFrame, encode_close_payload};
use crate::proto::frame::{MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode};
use crate::proto::{Decoder, Event, MessageKind, Role};

/// Smallest read buffer: one header plus the largest control payload.
pub(crate) const MIN_READ_BUFFER: usize = MAX_HEADER_LEN + MAX_CONTROL_PAYLOAD;

/// Handler for pings and pongs: gets the application data and a [`Control`].
pub type ControlHandler = Box<dyn FnMut(&[u8], &mut Control<'_>) -> Result<()> + Send>;

/// Handler for a close frame from the peer: gets its code
/// ([`CloseCode::NO_STATUS`] for an empty payload), reason and a [`Control`].
pub type CloseHandler = Box<dyn FnMut(CloseCode, &str, &mut Control<'_>) -> Result<()> + Send>;

/// What a ping, pong or close handler may do: answer on the write side and move the
/// read deadline (gorilla's keep-alive idiom: a pong extends the read deadline).
pub struct Control<'a> {
    sink: &'a mut dyn ControlSink,
    io: &'a mut dyn Stream,
    read_deadline: &'a mut Option<Instant>,
}

impl Control<'_> {
    /// Sends a pong with `data` (≤ 125 bytes).
    pub fn pong(&mut self, data: &[u8]) -> Result<()> {
        self.sink.send_control(self.io, OpCode::Pong, data)
    }

    /// Sends a ping with `data` (≤ 125 bytes).
    pub fn ping(&mut self, data: &[u8]) -> Result<()> {
        self.sink.send_control(self.io, OpCode::Ping, data)
    }

    /// Sends a close frame. [`CloseCode::NO_STATUS`] sends an empty payload.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        let mut payload = [0u8; 125];
        let close = (code != CloseCode::NO_STATUS).then_some((code, reason));
        let n = encode_close_payload(close, &mut payload)?;
        self.sink
            .send_control(self.io, OpCode::Close, &payload[..n])
    }

    /// True once a close frame has been sent on this connection.
    pub fn close_sent(&mut self) -> bool {
        self.sink.close_sent()
    }

    /// Moves the connection's read deadline.
    pub fn set_read_deadline(&mut self, deadline: Option<Instant>) {
        *self.read_deadline = deadline;
    }
}

/// gorilla's default ping handler: answer with a pong carrying the same data. A pong
/// that cannot be sent because a close went out first is not an error.
pub fn default_ping_handler(data: &[u8], ctl: &mut Control<'_>) -> Result<()> {
    match ctl.pong(data) {
        Err(Error::AlreadyClosed) => Ok(()),
        r => r,
    }
}

/// gorilla's default close handler: echo the peer's code with an empty reason (an
/// empty close for an empty one), completing the closing handshake.
pub fn default_close_handler(code: CloseCode, _reason: &str, ctl: &mut Control<'_>) -> Result<()> {
    match ctl.close(code, "") {
        Err(Error::AlreadyClosed) => Ok(()),
        r => r,
    }
}

pub(crate) struct Handlers {
    pub(crate) ping: ControlHandler,
    pub(crate) pong: ControlHandler,
    pub(crate) close: CloseHandler,
}

impl Default for Handlers {
    fn default() -> Self {
        Handlers {
            ping: Box::new(default_ping_handler),
            pong: Box::new(|_, _| Ok(())),
            close: Box::new(default_close_handler),
        }
    }
}

/// A data piece handed out by the decoder, located in the read buffer.
#[derive(Debug, Clone, Copy)]
struct Chunk {
    kind: MessageKind,
    last: bool,
    compressed: bool,
    start: usize,
    end: usize,
}

/// The message currently being read: the undelivered part of the current wire
/// piece (`buf[pend.0..pend.1]`: payload bytes, or compressed bytes not yet
/// inflated), whether that piece is the last, and for a compressed message whether
/// the inflater has seen its start and its end.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(feature = "deflate"), allow(dead_code))]
struct Current {
    kind: MessageKind,
    pend: (usize, usize),
    last: bool,
    compressed: bool,
    started: bool,
    finished: bool,
}

impl Current {
    fn from_chunk(c: &Chunk) -> Self {
        Current {
            kind: c.kind,
            pend: (c.start, c.end),
            last: c.last,
            compressed: c.compressed,
            started: false,
            finished: false,
        }
    }

    fn next(self, c: &Chunk) -> Self {
        Current {
            pend: (c.start, c.end),
            last: c.last,
            ..self
        }
    }
}

/// Compressed input inflated per step, so a highly compressible message streams
/// through `next_reader` in bounded memory (at most ~1 MiB per step).
#[cfg(feature = "deflate")]
const INFLATE_STEP: usize = 1024;

/// The most a connection's read buffer grows to while a large frame streams in.
const MAX_STREAM_BUFFER: usize = 64 * 1024;

pub(crate) struct ReadCore {
    dec: Decoder,
    buf: Vec<u8>,
    /// The configured buffer size, which `buf` returns to between frames.
    base_size: usize,
    start: usize,
    end: usize,
    cur: Option<Current>,
    /// Inflated bytes not yet handed out (`out[opos..]`).
    out: Vec<u8>,
    opos: usize,
    #[cfg(feature = "deflate")]
    inflater: Option<crate::proto::deflate::MessageInflater>,
    deadline: Option<Instant>,
    timeout_applied: bool,
    terminal: bool,
    pub(crate) handlers: Handlers,
}

impl ReadCore {
    pub(crate) fn new(role: Role, buffer_size: usize, max_message: u64, leftover: &[u8]) -> Self {
        let size = buffer_size.max(MIN_READ_BUFFER).max(leftover.len());
        let mut buf = vec![0u8; size];
        buf[..leftover.len()].copy_from_slice(leftover);
        let mut dec = Decoder::new(role);
        dec.set_max_message_size(max_message);
        // The header is consumed before the payload waits, so a payload as large as
        // the whole buffer can be delivered in one piece.
        dec.set_whole_frame_max(size);
        ReadCore {
            dec,
            buf,
            base_size: size,
            start: 0,
            end: leftover.len(),
            cur: None,
            out: Vec::new(),
            opos: 0,
            #[cfg(feature = "deflate")]
            inflater: None,
            deadline: None,
            timeout_applied: false,
            terminal: false,
            handlers: Handlers::default(),
        }
    }

    /// Turns on permessage-deflate decompression (RSV1 on first frames).
    #[cfg(feature = "deflate")]
    pub(crate) fn enable_deflate(&mut self, params: &crate::proto::deflate::DeflateParams) {
        let role = self.dec.role();
        self.dec.set_rsv1_allowed(true);
        self.inflater = Some(crate::proto::deflate::MessageInflater::new(
            params,
            role,
            self.dec.max_message_size(),
        ));
    }

    pub(crate) fn set_read_limit(&mut self, limit: u64) {
        self.dec.set_max_message_size(limit);
        #[cfg(feature = "deflate")]
        if let Some(i) = self.inflater.as_mut() {
            i.set_limit(limit);
        }
    }

    pub(crate) fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    #[cfg(test)]
    pub(crate) fn buffer_len(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn is_terminal(&self) -> bool {
        self.terminal
    }

    fn role(&self) -> Role {
        self.dec.role()
    }

    /// Reads more bytes from the stream into the buffer.
    ///
    /// While a frame larger than the buffer streams through, the buffer grows (up to
    /// [`MAX_STREAM_BUFFER`]) so the payload comes in a few large reads rather than
    /// many buffer-sized ones; it returns to its configured size at the next frame
    /// boundary, so an idle connection holds only the configured buffer.
    fn fill(&mut self, io: &mut dyn Stream) -> Result<()> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            let remaining = self.dec.streaming_remaining();
            if remaining > self.buf.len() as u64 && self.buf.len() < MAX_STREAM_BUFFER {
                let want = remaining.min(MAX_STREAM_BUFFER as u64) as usize;
                self.buf.resize(want, 0);
            } else if remaining == 0 && self.buf.len() > self.base_size {
                self.buf = vec![0u8; self.base_size];
            }
        } else if self.end == self.buf.len() {
            if self.start == 0 {
                // Cannot happen: every unit the decoder waits for fits the buffer.
                return Err(Error::Io(io::Error::other("read buffer full")));
            }
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        match self.deadline {
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return Err(Error::Timeout);
                }
                io.set_read_timeout(Some(d - now))?;
                self.timeout_applied = true;
            }
            None if self.timeout_applied => {
                io.set_read_timeout(None)?;
                self.timeout_applied = false;
            }
            None => {}
        }
        loop {
            match io.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.terminal = true;
                    return Err(Error::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed without a close frame",
                    )));
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let e = Error::from_io_timeout(e);
                    if !matches!(e, Error::Timeout) {
                        self.terminal = true;
                    }
                    return Err(e);
                }
            }
        }
    }

    /// Fails the connection (RFC 6455 §7.1.7): send the close code that goes with the
    /// violation, and as a server close the transport.
    fn fail(&mut self, e: Error, io: &mut dyn Stream, sink: &mut dyn ControlSink) -> Error {
        self.terminal = true;
        self.cur = None;
        if let Some(code) = e.close_code()
            && !sink.close_sent()
        {
            let mut payload = [0u8; 125];
            if let Ok(n) = encode_close_payload(Some((code, "")), &mut payload) {
                let _ = sink.send_control(io, OpCode::Close, &payload[..n]);
            }
        }
        if self.role() == Role::Server {
            let _ = io.shutdown();
        }
        e
    }

    /// The next data piece; pings, pongs and closes are handled on the way.
    fn next_chunk(&mut self, io: &mut dyn Stream, sink: &mut dyn ControlSink) -> Result<Chunk> {
        loop {
            if self.terminal {
                return Err(Error::AlreadyClosed);
            }
            let (n, ev) = match self.dec.decode(&mut self.buf[self.start..self.end]) {
                Ok(r) => r,
                Err(e) => return Err(self.fail(e, io, sink)),
            };
            let end = self.start + n;
            let (op, mut ctl_buf, ctl_len) = match ev {
                None => {
                    self.start = end;
                    self.fill(io)?;
                    continue;
                }
                Some(Event::Data(d)) => {
                    let chunk = Chunk {
                        kind: d.kind,
                        last: d.last,
                        compressed: d.compressed,
                        start: end - d.payload.len(),
                        end,
                    };
                    self.start = end;
                    return Ok(chunk);
                }
                Some(Event::Close(close)) => {
                    let frame = match close {
                        Some((code, reason)) => CloseFrame {
                            code,
                            reason: reason.to_owned(),
                        },
                        None => CloseFrame {
                            code: CloseCode::NO_STATUS,
                            reason: String::new(),
                        },
                    };
                    self.start = end;
                    return Err(self.on_close(frame, io, sink));
                }
                Some(Event::Ping(p)) => (OpCode::Ping, copy_control(p), p.len()),
                Some(Event::Pong(p)) => (OpCode::Pong, copy_control(p), p.len()),
            };
            self.start = end;
            let payload = &mut ctl_buf[..ctl_len];
            let mut ctl = Control {
                sink,
                io,
                read_deadline: &mut self.deadline,
            };
            let handler = if op == OpCode::Ping {
                &mut self.handlers.ping
            } else {
                &mut self.handlers.pong
            };
            handler(payload, &mut ctl)?;
        }
    }

    fn on_close(
        &mut self,
        frame: CloseFrame,
        io: &mut dyn Stream,
        sink: &mut dyn ControlSink,
    ) -> Error {
        self.terminal = true;
        self.cur = None;
        if !sink.close_sent() {
            let mut ctl = Control {
                sink,
                io,
                read_deadline: &mut self.deadline,
            };
            if let Err(e) = (self.handlers.close)(frame.code, &frame.reason, &mut ctl)
                && !matches!(e, Error::AlreadyClosed)
            {
                if self.role() == Role::Server {
                    let _ = io.shutdown();
                }
                return e;
            }
        }
        // RFC 6455 §7.1.1: the server closes the TCP connection first.
        if self.role() == Role::Server {
            let _ = io.shutdown();
        }
        Error::Closed(frame)
    }

    /// Inflates the next step of the current compressed piece into `out`.
    #[cfg(feature = "deflate")]
    fn inflate_step(&mut self, io: &mut dyn Stream, sink: &mut dyn ControlSink) -> Result<()> {
        let Some(cur) = self.cur.as_mut() else {
            return Ok(());
        };
        let (s, e) = cur.pend;
        let stop = s + (e - s).min(INFLATE_STEP);
        let last = cur.last && stop == e;
        let chunk = crate::proto::DataChunk {
            kind: cur.kind,
            payload: &self.buf[s..stop],
            first: !cur.started,
            last,
            compressed: true,
        };
        cur.pend.0 = stop;
        cur.started = true;
        cur.finished = last;
        self.out.clear();
        self.opos = 0;
        let out = &mut self.out;
        let r = match self.inflater.as_mut() {
            Some(inf) => inf.push(&chunk, &mut |piece| {
                out.extend_from_slice(piece);
                Ok(())
            }),
            None => Err(ProtocolError::InvalidCompressedData.into()),
        };
        r.map_err(|e| self.fail(e, io, sink))
    }

    #[cfg(not(feature = "deflate"))]
    fn inflate_step(&mut self, io: &mut dyn Stream, sink: &mut dyn ControlSink) -> Result<()> {
        // The decoder refuses RSV1 unless compression was negotiated.
        Err(self.fail(ProtocolError::InvalidCompressedData.into(), io, sink))
    }

    /// Makes the next bytes of the current message available: raw payload in
    /// `buf[pend]` (uncompressed) or inflated bytes in `out[opos..]`. Returns false at
    /// the end of the message.
    fn fill_piece(&mut self, io: &mut dyn Stream, sink: &mut dyn ControlSink) -> Result<bool> {
        loop {
            let Some(cur) = self.cur else {
                return Ok(false);
            };
            if self.opos < self.out.len() {
                return Ok(true);
            }
            if cur.pend.0 < cur.pend.1 {
                if !cur.compressed {
                    return Ok(true);
                }
                self.inflate_step(io, sink)?;
                continue;
            }
            if cur.last {
                if cur.compressed && !cur.finished {
                    // The last piece was empty: the inflater still has to end the message.
                    self.inflate_step(io, sink)?;
                    continue;
                }
                self.cur = None;
                return Ok(false);
            }
            let c = self.next_chunk(io, sink)?;
            self.cur = Some(cur.next(&c));
        }
    }

    /// Skips the rest of a message whose reader was dropped early.
    fn discard_current(&mut self, io: &mut dyn Stream, sink: &mut dyn ControlSink) -> Result<()> {
        while self.fill_piece(io, sink)? {
            self.opos = self.out.len();
            if let Some(cur) = self.cur.as_mut()
                && !cur.compressed
            {
                cur.pend.0 = cur.pend.1;
            }
        }
        Ok(())
    }

    /// Starts reading the next message (gorilla's `NextReader`).
    pub(crate) fn begin_message(
        &mut self,
        io: &mut dyn Stream,
        sink: &mut dyn ControlSink,
    ) -> Result<MessageKind> {
        self.discard_current(io, sink)?;
        let c = self.next_chunk(io, sink)?;
        self.out.clear();
        self.opos = 0;
        self.cur = Some(Current::from_chunk(&c));
        Ok(c.kind)
    }

    /// Copies the next bytes of the current message into `out`; 0 at its end.
    pub(crate) fn read_some(
        &mut self,
        out: &mut [u8],
        io: &mut dyn Stream,
        sink: &mut dyn ControlSink,
    ) -> Result<usize> {
        if out.is_empty() || !self.fill_piece(io, sink)? {
            return Ok(0);
        }
        if self.opos < self.out.len() {
            let n = out.len().min(self.out.len() - self.opos);
            out[..n].copy_from_slice(&self.out[self.opos..self.opos + n]);
            self.opos += n;
            return Ok(n);
        }
        let Some(cur) = self.cur.as_mut() else {
            return Ok(0);
        };
        let (s, e) = cur.pend;
        let n = out.len().min(e - s);
        out[..n].copy_from_slice(&self.buf[s..s + n]);
        cur.pend.0 += n;
        Ok(n)
    }

    /// Reads a whole message (gorilla's `ReadMessage`).
    pub(crate) fn read_message(
        &mut self,
        io: &mut dyn Stream,
        sink: &mut dyn ControlSink,
    ) -> Result<Message> {
        let kind = self.begin_message(io, sink)?;
        let mut data = Vec::new();
        while self.fill_piece(io, sink)? {
            if self.opos < self.out.len() {
                data.extend_from_slice(&self.out[self.opos..]);
                self.opos = self.out.len();
            } else if let Some(cur) = self.cur.as_mut() {
                data.extend_from_slice(&self.buf[cur.pend.0..cur.pend.1]);
                cur.pend.0 = cur.pend.1;
            }
        }
        Ok(match kind {
            MessageKind::Binary => Message::Binary(data),
            // The decoder (or the inflater) validated the text; this cannot fail.
            MessageKind::Text => {
                Message::Text(String::from_utf8(data).map_err(|_| ProtocolError::InvalidUtf8)?)
            }
        })
    }

    /// Reads until the peer's close frame arrives, discarding data (used by `close`).
    pub(crate) fn drain_until_close(
        &mut self,
        io: &mut dyn Stream,
        sink: &mut dyn ControlSink,
    ) -> Result<CloseFrame> {
        self.cur = None;
        loop {
            match self.next_chunk(io, sink) {
                Ok(_) => {}
                Err(Error::Closed(f)) => return Ok(f),
                Err(e) => return Err(e),
            }
        }
    }

    /// After the closing handshake, a client waits (bounded by the read deadline) for
    /// the server to close the transport (RFC 6455 §7.1.1).
    pub(crate) fn wait_for_eof(&mut self, io: &mut dyn Stream) {
        for _ in 0..64 {
            if let Some(d) = self.deadline {
                let now = Instant::now();
                if now >= d || io.set_read_timeout(Some(d - now)).is_err() {
                    return;
                }
            }
            match io.read(&mut self.buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }
}

fn copy_control(p: &[u8]) -> [u8; MAX_CONTROL_PAYLOAD] {
    let mut out = [0u8; MAX_CONTROL_PAYLOAD];
    out[..p.len()].copy_from_slice(p);
    out
}

/// An `io::Read` over one incoming message (gorilla's `NextReader`).
///
/// Frames are pulled from the connection as the message is read, so a message of
/// any size passes through the fixed read buffer. `read` returns 0 at the end of the
/// message. Dropping the reader early is fine: the next `next_reader`/`read_message`
/// skips the rest. Errors are `io::Error`s wrapping [`Error`] (`Error::from` unwraps
/// them).
pub struct MessageReader<'a> {
    pub(crate) rd: &'a mut ReadCore,
    pub(crate) sink: &'a mut dyn ControlSink,
    pub(crate) io: &'a mut dyn Stream,
    pub(crate) kind: MessageKind,
}

impl MessageReader<'_> {
    /// The kind of the message being read.
    pub fn kind(&self) -> MessageKind {
        self.kind
    }
}

impl io::Read for MessageReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.rd
            .read_some(out, self.io, self.sink)
            .map_err(Error::into_io)
    }
}
