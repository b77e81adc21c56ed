//! The blocking read side: a read buffer, read deadlines, ping/pong/close handlers
//! and the streaming [`MessageReader`], driving a [`Connection`](crate::proto::Connection).
//!
//! Payloads are unmasked in place in the read buffer and copied once: into the
//! caller's buffer (`MessageReader`) or into the message (`read_message`). A message
//! of any size streams through a buffer of bounded size.

use std::io;
use std::time::{Duration, Instant};

use super::io::{Dir, Timeout};
use super::link::{AnyLink, Link};
use crate::error::{Error, ProtocolError, Result};
use crate::message::Message;
use crate::proto::{
    CloseCode, CloseFrame, Event, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, MessageKind, Role, SendError,
};

/// Smallest read buffer: one header plus the largest control payload.
pub(crate) const MIN_READ_BUFFER: usize = MAX_HEADER_LEN + MAX_CONTROL_PAYLOAD;

/// The most a connection's read buffer grows to while a large frame streams in.
const MAX_STREAM_BUFFER: usize = 64 * 1024;

/// Rounds of one blocking read: each reads, or runs a due timer (which moves the
/// deadline on), or returns; the bound only guards against a timer that would not
/// move.
const WAIT_ROUNDS: usize = 1_000_000;

/// Pieces discarded while waiting for the peer's close: as many as a peer can send
/// before its close timeout (every piece holds at least one byte of input).
const DRAIN_PIECES: u32 = u32::MAX;

/// How long a closing server waits for the peer's end of input (see [`linger`]).
const LINGER: Duration = Duration::from_secs(1);

/// The most input a closing server reads and drops while it lingers.
const LINGER_BYTES: usize = 256 * 1024;

/// Rounds of waiting for the transport's end after the closing handshake (each
/// reads, or times out on the close or read deadline).
const EOF_WAIT_ROUNDS: usize = 1024;

/// Handler for pings and pongs: gets the application data and a [`Control`].
pub type ControlHandler = Box<dyn FnMut(&[u8], &mut Control<'_>) -> Result<()> + Send>;

/// Handler for a close frame from the peer: gets its code
/// ([`CloseCode::NO_STATUS`] for an empty payload), reason and a [`Control`].
pub type CloseHandler = Box<dyn FnMut(CloseCode, &str, &mut Control<'_>) -> Result<()> + Send>;

/// What a ping, pong or close handler may do: answer on the write side and move the
/// read deadline (gorilla's keep-alive idiom: a pong extends the read deadline).
pub struct Control<'a> {
    link: &'a mut dyn Link,
    read_deadline: &'a mut Option<Instant>,
}

impl Control<'_> {
    fn send(
        &mut self,
        op: impl FnOnce(&mut crate::proto::Connection) -> std::result::Result<(), SendError>,
    ) -> Result<()> {
        op(&mut self.link.conn())?;
        self.link.flush()
    }

    /// Sends a pong with `data` (≤ 125 bytes).
    pub fn pong(&mut self, data: &[u8]) -> Result<()> {
        self.send(|c| c.pong(data))
    }

    /// Sends a ping with `data` (≤ 125 bytes).
    pub fn ping(&mut self, data: &[u8]) -> Result<()> {
        self.send(|c| c.ping(data))
    }

    /// Sends a close frame ([`CloseCode::NO_STATUS`] sends an empty payload). In a
    /// close handler this replaces the automatic echo of the peer's close.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        let now = Instant::now();
        self.send(|c| c.close(now, code, reason))
    }

    /// True once a close frame has been sent (or queued) on this connection.
    pub fn close_sent(&mut self) -> bool {
        self.link.conn().state().close_sent()
    }

    /// Moves the connection's read deadline.
    pub fn set_read_deadline(&mut self, deadline: Option<Instant>) {
        *self.read_deadline = deadline;
    }
}

/// A server that closes the transport while the peer still sends (after failing
/// the connection, or after the closing handshake before the client's FIN) reads
/// and drops that input until the peer's end of input, for at most [`LINGER`] and
/// [`LINGER_BYTES`]: closing a socket with unread input makes the kernel send a
/// reset, and a reset can destroy what we sent last (the close frame, the final
/// messages) before the peer's application reads it (asyncio's streams raise the
/// reset before buffered data). Streams without read timeouts do not linger.
fn linger(link: &mut dyn Link) {
    let until = Instant::now() + LINGER;
    let mut scratch = [0u8; 4096];
    for _ in 0..LINGER_BYTES / scratch.len() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || link.stream().set_read_timeout(Some(left)).is_err() {
            return;
        }
        match link.stream().read(&mut scratch) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// gorilla's default ping handler: answer with a pong carrying the same data. A pong
/// that cannot be sent because a close went out first is not an error. (Without a
/// ping handler of your own, pongs are sent automatically; this is for handlers
/// that add to the default.)
pub fn default_ping_handler(data: &[u8], ctl: &mut Control<'_>) -> Result<()> {
    match ctl.pong(data) {
        Err(Error::AlreadyClosed) => Ok(()),
        r => r,
    }
}

/// gorilla's default close handler: echo the peer's code with an empty reason (an
/// empty close for an empty one), completing the closing handshake. The connection
/// queues this echo by itself; the handler is for handlers that add to the default.
pub fn default_close_handler(code: CloseCode, _reason: &str, ctl: &mut Control<'_>) -> Result<()> {
    match ctl.close(code, "") {
        Err(Error::AlreadyClosed) => Ok(()),
        r => r,
    }
}

/// The application's handlers; `None` is the built-in behaviour.
#[derive(Default)]
pub(crate) struct Handlers {
    pub(crate) ping: Option<ControlHandler>,
    pub(crate) pong: Option<ControlHandler>,
    pub(crate) close: Option<CloseHandler>,
}

/// The message being read: where its undelivered bytes are (`buf[pend]`, or
/// `scratch[pend]` for decompressed ones) and whether they end it.
#[derive(Debug, Clone, Copy)]
struct Current {
    kind: MessageKind,
    pend: (usize, usize),
    inflated: bool,
    last: bool,
}

/// What one decode step found, owned (copied out of the connection's lock; a
/// control payload goes to `ReadCore::control`).
enum Step {
    More,
    Piece(Current),
    /// A ping (`true`) or pong with this many bytes of payload.
    Control(bool, usize),
    Close(Box<CloseFrame>),
    Failed(Box<Error>),
}

pub(crate) struct ReadCore {
    buf: Vec<u8>,
    /// The configured buffer size, which `buf` returns to between frames.
    base_size: usize,
    start: usize,
    end: usize,
    /// Decompressed bytes of the current piece (permessage-deflate).
    scratch: Vec<u8>,
    /// The payload of the last ping or pong, for its handler.
    control: [u8; MAX_CONTROL_PAYLOAD],
    cur: Option<Current>,
    deadline: Option<Instant>,
    timeout: Timeout,
    /// When the buffered bytes were read (the connection's timers count from it).
    received_at: Instant,
    terminal: bool,
    pub(crate) handlers: Handlers,
}

impl ReadCore {
    pub(crate) fn new(buffer_size: usize, leftover: &[u8]) -> Self {
        let size = buffer_size.max(MIN_READ_BUFFER).max(leftover.len());
        let mut buf = vec![0u8; size];
        buf[..leftover.len()].copy_from_slice(leftover);
        ReadCore {
            buf,
            base_size: size,
            start: 0,
            end: leftover.len(),
            scratch: Vec::new(),
            control: [0; MAX_CONTROL_PAYLOAD],
            cur: None,
            deadline: None,
            timeout: Timeout::default(),
            received_at: Instant::now(),
            terminal: false,
            handlers: Handlers::default(),
        }
    }

    /// The largest payload the buffer can deliver whole (the header is consumed
    /// before the payload waits).
    pub(crate) fn whole_frame_max(&self) -> usize {
        self.base_size
    }

    pub(crate) fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    #[cfg(test)]
    pub(crate) fn buffer_len(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn is_terminal(&self) -> bool {
        self.terminal
    }

    /// Reads more bytes from the stream into the buffer, running the connection's
    /// timers while it waits.
    ///
    /// While a frame larger than the buffer streams through, the buffer grows (up to
    /// [`MAX_STREAM_BUFFER`]) so the payload comes in a few large reads rather than
    /// many buffer-sized ones; it returns to its configured size at the next frame
    /// boundary, so an idle connection holds only the configured buffer.
    fn fill(&mut self, link: &mut dyn Link) -> Result<()> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            let remaining = link.conn().streaming_remaining();
            if remaining > self.buf.len() as u64 && self.buf.len() < MAX_STREAM_BUFFER {
                let want = remaining.min(MAX_STREAM_BUFFER as u64) as usize;
                self.buf.resize(want, 0);
            } else if remaining == 0 && self.buf.len() > self.base_size {
                self.buf = vec![0u8; self.base_size];
            }
        } else if self.end == self.buf.len() {
            if self.start == 0 {
                // Cannot happen: every unit the connection waits for fits the buffer.
                return Err(Error::Io(io::Error::other("read buffer full")));
            }
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        // Each round reads, or runs a due timer (which moves the deadline on), or
        // returns: the bound only guards against a timer that would not move.
        for _ in 0..WAIT_ROUNDS {
            let due = link.conn().poll_timeout();
            let wait = match (self.deadline, due) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            // The clock is read only when a deadline is set.
            if let Some(w) = wait {
                let now = Instant::now();
                if self.deadline.is_some_and(|d| now >= d) {
                    return Err(Error::Timeout);
                }
                if now >= w {
                    let r = link.conn().handle_timeout(now);
                    let _ = link.flush();
                    if let Err(e) = r {
                        return Err(self.finish(link, e.into()));
                    }
                    if link.conn().state().is_done() {
                        // The server never closed the TCP connection after the
                        // closing handshake: the conversation is over.
                        return Err(self.finish(link, Error::AlreadyClosed));
                    }
                    continue;
                }
            }
            match self.timeout.apply(link.stream(), Dir::Read, wait) {
                Err(Error::Timeout) => continue,
                r => r?,
            }
            match link.stream().read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    link.conn().handle_eof();
                    let e = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed without a close frame",
                    );
                    return Err(self.finish(link, Error::Io(e)));
                }
                Ok(n) => {
                    self.end += n;
                    if link.conn().needs_time() {
                        self.received_at = Instant::now();
                    }
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => match Error::from_io_timeout(e) {
                    // A socket timeout: the loop decides whose deadline it was.
                    Error::Timeout => {}
                    e => {
                        link.conn().handle_eof();
                        return Err(self.finish(link, e));
                    }
                },
            }
        }
        Err(Error::Io(io::Error::other(
            "connection timers did not advance",
        )))
    }

    /// The connection is over for this reader: write what is queued (a close), and
    /// close the transport when the connection says so (a server, §7.1.1).
    fn finish(&mut self, link: &mut dyn Link, e: Error) -> Error {
        self.terminal = true;
        self.cur = None;
        let _ = link.flush();
        if link.conn().should_close_transport() {
            link.shutdown();
            if link.conn().role() == Role::Server && !link.conn().state().is_done() {
                linger(link);
            }
        }
        e
    }

    /// The next data piece; pings, pongs and closes are handled on the way.
    fn next_piece(&mut self, link: &mut dyn Link) -> Result<Current> {
        loop {
            if self.terminal {
                return Err(Error::AlreadyClosed);
            }
            let now = self.received_at;
            let start = self.start;
            let step = {
                let mut conn = link.conn();
                match conn.read(&mut self.buf[start..self.end], &mut self.scratch, now) {
                    Ok((n, ev)) => {
                        let step = match ev {
                            None => Step::More,
                            Some(Event::Message(c)) => Step::Piece(Current {
                                kind: c.kind,
                                pend: if c.inflated {
                                    (0, c.data.len())
                                } else {
                                    (start + n - c.data.len(), start + n)
                                },
                                inflated: c.inflated,
                                last: c.last,
                            }),
                            Some(Event::Ping(p)) => {
                                self.control[..p.len()].copy_from_slice(p);
                                Step::Control(true, p.len())
                            }
                            Some(Event::Pong(p)) => {
                                self.control[..p.len()].copy_from_slice(p);
                                Step::Control(false, p.len())
                            }
                            Some(Event::Close { code, reason }) => {
                                Step::Close(Box::new(CloseFrame {
                                    code,
                                    reason: reason.to_owned(),
                                }))
                            }
                        };
                        self.start += n;
                        step
                    }
                    Err(e) => {
                        crate::logging::info!("the peer failed the connection: {e}");
                        Step::Failed(Box::new(e.into()))
                    }
                }
            };
            match step {
                Step::More => {
                    flush_replies(link)?;
                    self.fill(link)?;
                }
                Step::Piece(c) => return Ok(c),
                Step::Control(ping, len) => {
                    let handler = if ping {
                        &mut self.handlers.ping
                    } else {
                        &mut self.handlers.pong
                    };
                    if let Some(h) = handler.as_mut() {
                        let mut ctl = Control {
                            link,
                            read_deadline: &mut self.deadline,
                        };
                        h(&self.control[..len], &mut ctl)?;
                    }
                    // The automatic pong, if any.
                    flush_replies(link)?;
                }
                Step::Close(frame) => return Err(self.on_close(*frame, link)),
                Step::Failed(e) => return Err(self.finish(link, *e)),
            }
        }
    }

    fn on_close(&mut self, frame: CloseFrame, link: &mut dyn Link) -> Error {
        if let Some(h) = self.handlers.close.as_mut() {
            let mut ctl = Control {
                link,
                read_deadline: &mut self.deadline,
            };
            if let Err(e) = h(frame.code, &frame.reason, &mut ctl)
                && !matches!(e, Error::AlreadyClosed)
            {
                return self.finish(link, e);
            }
        }
        self.finish(link, Error::Closed(frame))
    }

    /// Makes the next bytes of the current message available in `buf[pend]` or
    /// `scratch[pend]`. Returns false at the end of the message.
    fn fill_piece(&mut self, link: &mut dyn Link) -> Result<bool> {
        loop {
            let Some(cur) = self.cur else {
                return Ok(false);
            };
            if cur.pend.0 < cur.pend.1 {
                return Ok(true);
            }
            if cur.last {
                self.cur = None;
                return Ok(false);
            }
            let next = self.next_piece(link)?;
            self.cur = Some(Current {
                kind: cur.kind,
                ..next
            });
        }
    }

    fn pending(&self) -> &[u8] {
        match self.cur {
            Some(c) if c.inflated => &self.scratch[c.pend.0..c.pend.1],
            Some(c) => &self.buf[c.pend.0..c.pend.1],
            None => &[],
        }
    }

    fn consume(&mut self, n: usize) {
        if let Some(c) = self.cur.as_mut() {
            c.pend.0 += n;
        }
    }

    /// Starts reading the next message (gorilla's `NextReader`), skipping the rest
    /// of one whose reader was dropped early.
    pub(crate) fn begin_message(&mut self, link: &mut dyn Link) -> Result<MessageKind> {
        while self.fill_piece(link)? {
            let n = self.pending().len();
            self.consume(n);
        }
        let c = self.next_piece(link)?;
        self.cur = Some(c);
        Ok(c.kind)
    }

    /// Copies the next bytes of the current message into `out`; 0 at its end.
    pub(crate) fn read_some(&mut self, out: &mut [u8], link: &mut dyn Link) -> Result<usize> {
        if out.is_empty() || !self.fill_piece(link)? {
            return Ok(0);
        }
        let src = self.pending();
        let n = out.len().min(src.len());
        out[..n].copy_from_slice(&src[..n]);
        self.consume(n);
        Ok(n)
    }

    /// Reads a whole message (gorilla's `ReadMessage`).
    pub(crate) fn read_message(&mut self, link: &mut dyn Link) -> Result<Message> {
        let kind = self.begin_message(link)?;
        let mut data = Vec::new();
        while self.fill_piece(link)? {
            data.extend_from_slice(self.pending());
            let n = self.pending().len();
            self.consume(n);
        }
        Ok(match kind {
            MessageKind::Binary => Message::Binary(data),
            // The connection validated the text; this cannot fail.
            MessageKind::Text => {
                Message::Text(String::from_utf8(data).map_err(|_| ProtocolError::InvalidUtf8)?)
            }
        })
    }

    /// Reads until the peer's close frame arrives, discarding data (used by `close`).
    pub(crate) fn drain_until_close(&mut self, link: &mut dyn Link) -> Result<CloseFrame> {
        self.cur = None;
        for _ in 0..DRAIN_PIECES {
            match self.next_piece(link) {
                Ok(_) => {}
                Err(Error::Closed(f)) => return Ok(f),
                Err(e) => return Err(e),
            }
        }
        Err(Error::AlreadyClosed)
    }

    /// After the closing handshake, waits until the connection says the transport
    /// may close (a client waits for the server to close it, RFC 6455 §7.1.1),
    /// bounded by the connection's close timeout and the read deadline; data that
    /// still arrives is discarded.
    pub(crate) fn wait_for_eof(&mut self, link: &mut dyn Link) {
        for _ in 0..EOF_WAIT_ROUNDS {
            if link.conn().should_close_transport() {
                return;
            }
            let now = Instant::now();
            let due = link.conn().poll_timeout();
            let wait = match (self.deadline, due) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(d) => d,
                    None => return,
                },
            };
            if now >= wait
                || self
                    .timeout
                    .apply(link.stream(), Dir::Read, Some(wait))
                    .is_err()
            {
                break;
            }
            match link.stream().read(&mut self.buf) {
                Ok(0) => {
                    link.conn().handle_eof();
                    return;
                }
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted
                            | io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return,
            }
        }
    }
}

/// Writes the replies the read path queued (pongs). A transport that failed does
/// not stop reading: the connection recorded the failure (nothing more is sent)
/// and the peer's close, which says why, may still be on its way.
fn flush_replies(link: &mut dyn Link) -> Result<()> {
    match link.flush() {
        Err(Error::Io(_)) => Ok(()),
        r => r,
    }
}

/// An `io::Read` over one incoming message (gorilla's `NextReader`).
///
/// Frames are pulled from the connection as the message is read, so a message of
/// any size passes through the read buffer. `read` returns 0 at the end of the
/// message. Dropping the reader early is fine: the next `next_reader`/`read_message`
/// skips the rest. Errors are `io::Error`s wrapping [`Error`] (`Error::from` unwraps
/// them).
pub struct MessageReader<'a> {
    pub(crate) rd: &'a mut ReadCore,
    pub(crate) link: AnyLink<'a>,
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
            .read_some(out, &mut self.link)
            .map_err(Error::into_io)
    }
}
