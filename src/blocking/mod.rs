//! The blocking IO layer: gorilla/websocket's API over any [`Stream`].
//!
//! [`Upgrader`] turns an accepted stream into a server [`Conn`]; [`Dialer`] connects a
//! client one. A `Conn` reads whole messages ([`Conn::read_message`]) or streams them
//! ([`Conn::next_reader`]), writes whole messages or streams them
//! ([`Conn::next_writer`]), answers pings and closes through handlers, and can be
//! [`split`](Conn::split) so one thread reads while another writes: the split halves
//! make concurrent misuse a compile error rather than gorilla's run-time panic.

mod dialer;
mod read;
mod stream;
mod upgrader;
mod write;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use dialer::Dialer;
pub use read::{
    CloseHandler, Control, ControlHandler, MessageReader, default_close_handler,
    default_ping_handler,
};
pub use stream::{Shared, Stream};
pub use upgrader::{PendingUpgrade, Upgrader};
pub use write::MessageWriter;

use crate::error::{Error, Result, UsageError};
use crate::message::Message;
use crate::proto::close::{CloseCode, encode_close_payload, parse_close_payload};
use crate::proto::frame::OpCode;
use crate::proto::{MessageKind, Role};
use read::ReadCore;
use write::{CoreRef, RESERVE, WriteCore, lock};

/// Buffer sizes and limits of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Read buffer size; frames up to this size are unmasked in place and delivered
    /// without an extra copy, larger ones stream through it. Default: 4096 (min 139).
    pub read_buffer_size: usize,
    /// Size of the fragments `next_writer` emits. Default: 4096.
    pub write_buffer_size: usize,
    /// Largest message accepted; larger ones are refused with 1009. Default: 64 MiB.
    pub max_message_size: u64,
    /// How long [`Conn::close`] waits for the peer's close frame when no read
    /// deadline is set. Default: 5 s.
    pub close_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            read_buffer_size: 4096,
            write_buffer_size: 4096,
            max_message_size: crate::proto::decoder::DEFAULT_MAX_MESSAGE_SIZE,
            close_timeout: Duration::from_secs(5),
        }
    }
}

/// A WebSocket connection over a blocking [`Stream`].
///
/// One reader and one writer at a time is enforced by `&mut self`; to read and write
/// from two threads, [`split`](Self::split) it.
pub struct Conn<S> {
    io: S,
    rd: ReadCore,
    wr: WriteCore,
    stage: Vec<u8>,
    config: Config,
    subprotocol: Option<String>,
}

fn check_text(kind: MessageKind, data: &[u8]) -> Result<()> {
    if kind == MessageKind::Text && std::str::from_utf8(data).is_err() {
        return Err(UsageError::InvalidUtf8.into());
    }
    Ok(())
}

fn close_payload(code: CloseCode, reason: &str, out: &mut [u8; 125]) -> Result<usize> {
    let close = (code != CloseCode::NO_STATUS).then_some((code, reason));
    Ok(encode_close_payload(close, out)?)
}

fn check_control(op: OpCode, payload: &[u8]) -> Result<()> {
    if op == OpCode::Close && parse_close_payload(payload).is_err() {
        // A close payload we would refuse from a peer is refused from the caller too.
        let code = payload
            .get(..2)
            .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
        return Err(UsageError::InvalidCloseCode(code).into());
    }
    Ok(())
}

impl<S: Stream> Conn<S> {
    /// Wraps a stream on which the opening handshake is already done. `leftover` holds
    /// bytes read past the handshake (the first frames), if any.
    pub fn from_raw(
        io: S,
        role: Role,
        config: Config,
        leftover: &[u8],
        subprotocol: Option<String>,
    ) -> Self {
        let rd = ReadCore::new(
            role,
            config.read_buffer_size,
            config.max_message_size,
            leftover,
        );
        Conn {
            io,
            rd,
            wr: WriteCore::new(role),
            stage: Vec::with_capacity(RESERVE + config.write_buffer_size.max(1)),
            config,
            subprotocol,
        }
    }

    /// Turns on permessage-deflate with negotiated `params` (the [`Upgrader`] and
    /// [`Dialer`] do this when they negotiate it; call it yourself only for a
    /// connection whose handshake happened elsewhere).
    #[cfg(feature = "deflate")]
    pub fn enable_deflate(
        &mut self,
        params: &crate::proto::deflate::DeflateParams,
        cfg: &crate::proto::deflate::DeflateConfig,
    ) {
        self.rd.enable_deflate(params);
        self.wr.enable_deflate(params, cfg);
    }

    /// True if permessage-deflate is in use on this connection.
    pub fn is_compressed(&self) -> bool {
        self.wr.compressing()
    }

    /// Reads the next whole message (gorilla's `ReadMessage`). Pings, pongs and closes
    /// that arrive first go to their handlers. A close from the peer returns
    /// [`Error::Closed`] with its code and reason, after the close handler answered it.
    pub fn read_message(&mut self) -> Result<Message> {
        self.rd.read_message(&mut self.io, &mut self.wr)
    }

    /// Starts reading the next message as a stream (gorilla's `NextReader`). Any unread
    /// rest of the previous message is skipped.
    pub fn next_reader(&mut self) -> Result<MessageReader<'_>> {
        let kind = self.rd.begin_message(&mut self.io, &mut self.wr)?;
        Ok(MessageReader {
            rd: &mut self.rd,
            sink: &mut self.wr,
            io: &mut self.io,
            kind,
        })
    }

    /// Sends `data` as one message in a single frame (gorilla's `WriteMessage`). Text
    /// must be UTF-8 ([`UsageError::InvalidUtf8`] otherwise; nothing is sent).
    pub fn write_message(&mut self, kind: MessageKind, data: &[u8]) -> Result<()> {
        check_text(kind, data)?;
        self.wr
            .send_data(&mut self.io, kind.opcode(), true, data, &mut self.stage)
    }

    /// Sends a [`Message`].
    pub fn send(&mut self, msg: &Message) -> Result<()> {
        self.write_message(msg.kind(), msg.as_bytes())
    }

    /// Starts a message written as a stream (gorilla's `NextWriter`): fragments of
    /// [`Config::write_buffer_size`] go out as the writer fills; `close()` or drop sends
    /// the final frame.
    pub fn next_writer(&mut self, kind: MessageKind) -> Result<MessageWriter<'_>> {
        if self.wr.close_sent() {
            return Err(Error::AlreadyClosed);
        }
        Ok(MessageWriter::new(
            CoreRef::Direct(&mut self.wr),
            &mut self.io,
            &mut self.stage,
            self.config.write_buffer_size,
            kind,
        ))
    }

    /// Sends a ping, pong or close frame (gorilla's `WriteControl`), with its own
    /// `deadline` (or the write deadline if `None`). A close payload must be a valid
    /// one (empty, or an allowed code and UTF-8 reason). Sending a close does not wait
    /// for the answer; [`close`](Self::close) does the whole handshake.
    pub fn write_control(
        &mut self,
        op: OpCode,
        payload: &[u8],
        deadline: Option<Instant>,
    ) -> Result<()> {
        check_control(op, payload)?;
        self.wr.send_control(&mut self.io, op, payload, deadline)
    }

    /// Performs the closing handshake: sends a close with `code` and `reason`, waits
    /// (bounded by the read deadline, or [`Config::close_timeout`]) for the peer's
    /// close, discarding any data that arrives first, then closes the transport (a
    /// client first waits briefly for the server to close it, RFC 6455 §7.1.1).
    /// [`CloseCode::NO_STATUS`] sends an empty close payload.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        if !self.wr.close_sent() {
            let mut p = [0u8; 125];
            let n = close_payload(code, reason, &mut p)?;
            self.wr
                .send_control(&mut self.io, OpCode::Close, &p[..n], None)?;
        }
        let saved = self.rd.deadline();
        let bound = saved.unwrap_or_else(|| Instant::now() + self.config.close_timeout);
        self.rd.set_deadline(Some(bound));
        let res = if self.rd.is_terminal() {
            Ok(())
        } else {
            self.rd
                .drain_until_close(&mut self.io, &mut self.wr)
                .map(|_| ())
        };
        if res.is_ok() && self.wr.role() == Role::Client {
            self.rd.wait_for_eof(&mut self.io);
        }
        self.rd.set_deadline(saved);
        let _ = self.io.shutdown();
        res
    }

    /// Sets the handler for pings from the peer. Default: [`default_ping_handler`]
    /// (answer with a pong).
    pub fn set_ping_handler(
        &mut self,
        f: impl FnMut(&[u8], &mut Control<'_>) -> Result<()> + Send + 'static,
    ) {
        self.rd.handlers.ping = Box::new(f);
    }

    /// Sets the handler for pongs from the peer. Default: do nothing.
    pub fn set_pong_handler(
        &mut self,
        f: impl FnMut(&[u8], &mut Control<'_>) -> Result<()> + Send + 'static,
    ) {
        self.rd.handlers.pong = Box::new(f);
    }

    /// Sets the handler for a close from the peer. Default: [`default_close_handler`]
    /// (echo the code). The read that received the close then returns
    /// [`Error::Closed`].
    pub fn set_close_handler(
        &mut self,
        f: impl FnMut(CloseCode, &str, &mut Control<'_>) -> Result<()> + Send + 'static,
    ) {
        self.rd.handlers.close = Box::new(f);
    }

    /// Sets the largest message accepted (gorilla's `SetReadLimit`); a larger one is
    /// refused with close 1009 and [`Error::MessageTooBig`].
    pub fn set_read_limit(&mut self, limit: u64) {
        self.rd.set_read_limit(limit);
    }

    /// Sets the read deadline: a read that has not completed by then returns
    /// [`Error::Timeout`]. Unlike gorilla, a timed-out read can be retried: no bytes
    /// are lost. `None` (the default) blocks forever.
    pub fn set_read_deadline(&mut self, deadline: Option<Instant>) {
        self.rd.set_deadline(deadline);
    }

    /// Sets the write deadline: a write not done by then returns [`Error::Timeout`]
    /// (and if part of a frame went out, the connection is unusable afterwards).
    /// `None` (the default) blocks forever.
    pub fn set_write_deadline(&mut self, deadline: Option<Instant>) {
        self.wr.set_deadline(deadline);
    }

    /// The negotiated subprotocol, if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }

    /// Client or server.
    pub fn role(&self) -> Role {
        self.wr.role()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> std::io::Result<SocketAddr> {
        self.io.peer_addr()
    }

    /// Our address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// The underlying stream, mutably (reading or writing it directly corrupts the
    /// WebSocket stream).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.io
    }

    /// Splits the connection into a read half and a write half that can live on two
    /// threads. The read half's automatic replies (pong, close echo) go through the
    /// write side under a lock held for one frame, so they may interleave with the
    /// fragments of a message being written, as RFC 6455 §5.4 allows.
    pub fn split(self) -> (ReadHalf<S>, WriteHalf<S>)
    where
        for<'a> &'a S: Stream,
    {
        let io = Shared(Arc::new(self.io));
        let wr = Arc::new(Mutex::new(self.wr));
        (
            ReadHalf {
                io: io.clone(),
                rd: self.rd,
                wr: Arc::clone(&wr),
                subprotocol: self.subprotocol.clone(),
            },
            WriteHalf {
                io,
                wr,
                stage: self.stage,
                config: self.config,
            },
        )
    }
}

impl write::ControlSink for Arc<Mutex<WriteCore>> {
    fn send_control(&mut self, io: &mut dyn Stream, op: OpCode, payload: &[u8]) -> Result<()> {
        lock(self).send_control(io, op, payload, None)
    }
    fn close_sent(&mut self) -> bool {
        lock(self).close_sent()
    }
}

/// The reading half of a split [`Conn`].
pub struct ReadHalf<S> {
    io: Shared<S>,
    rd: ReadCore,
    wr: Arc<Mutex<WriteCore>>,
    subprotocol: Option<String>,
}

impl<S> ReadHalf<S>
where
    for<'a> &'a S: Stream,
{
    /// See [`Conn::read_message`].
    pub fn read_message(&mut self) -> Result<Message> {
        self.rd.read_message(&mut self.io, &mut self.wr)
    }

    /// See [`Conn::next_reader`].
    pub fn next_reader(&mut self) -> Result<MessageReader<'_>> {
        let kind = self.rd.begin_message(&mut self.io, &mut self.wr)?;
        Ok(MessageReader {
            rd: &mut self.rd,
            sink: &mut self.wr,
            io: &mut self.io,
            kind,
        })
    }

    /// See [`Conn::set_ping_handler`].
    pub fn set_ping_handler(
        &mut self,
        f: impl FnMut(&[u8], &mut Control<'_>) -> Result<()> + Send + 'static,
    ) {
        self.rd.handlers.ping = Box::new(f);
    }

    /// See [`Conn::set_pong_handler`].
    pub fn set_pong_handler(
        &mut self,
        f: impl FnMut(&[u8], &mut Control<'_>) -> Result<()> + Send + 'static,
    ) {
        self.rd.handlers.pong = Box::new(f);
    }

    /// See [`Conn::set_close_handler`].
    pub fn set_close_handler(
        &mut self,
        f: impl FnMut(CloseCode, &str, &mut Control<'_>) -> Result<()> + Send + 'static,
    ) {
        self.rd.handlers.close = Box::new(f);
    }

    /// See [`Conn::set_read_limit`].
    pub fn set_read_limit(&mut self, limit: u64) {
        self.rd.set_read_limit(limit);
    }

    /// See [`Conn::set_read_deadline`].
    pub fn set_read_deadline(&mut self, deadline: Option<Instant>) {
        self.rd.set_deadline(deadline);
    }

    /// The negotiated subprotocol, if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> std::io::Result<SocketAddr> {
        self.io.peer_addr()
    }
}

/// The writing half of a split [`Conn`].
pub struct WriteHalf<S> {
    io: Shared<S>,
    wr: Arc<Mutex<WriteCore>>,
    stage: Vec<u8>,
    config: Config,
}

impl<S> WriteHalf<S>
where
    for<'a> &'a S: Stream,
{
    /// See [`Conn::write_message`].
    pub fn write_message(&mut self, kind: MessageKind, data: &[u8]) -> Result<()> {
        check_text(kind, data)?;
        lock(&self.wr).send_data(&mut self.io, kind.opcode(), true, data, &mut self.stage)
    }

    /// See [`Conn::send`].
    pub fn send(&mut self, msg: &Message) -> Result<()> {
        self.write_message(msg.kind(), msg.as_bytes())
    }

    /// See [`Conn::next_writer`]. The lock is taken per fragment, so the read half's
    /// pongs can go out between fragments.
    pub fn next_writer(&mut self, kind: MessageKind) -> Result<MessageWriter<'_>> {
        if lock(&self.wr).close_sent() {
            return Err(Error::AlreadyClosed);
        }
        Ok(MessageWriter::new(
            CoreRef::Shared(&self.wr),
            &mut self.io,
            &mut self.stage,
            self.config.write_buffer_size,
            kind,
        ))
    }

    /// See [`Conn::write_control`].
    pub fn write_control(
        &mut self,
        op: OpCode,
        payload: &[u8],
        deadline: Option<Instant>,
    ) -> Result<()> {
        check_control(op, payload)?;
        lock(&self.wr).send_control(&mut self.io, op, payload, deadline)
    }

    /// Sends a close frame. The read half's next read returns [`Error::Closed`] when
    /// the peer answers (and as a server closes the transport).
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        let mut p = [0u8; 125];
        let n = close_payload(code, reason, &mut p)?;
        lock(&self.wr).send_control(&mut self.io, OpCode::Close, &p[..n], None)
    }

    /// See [`Conn::set_write_deadline`].
    pub fn set_write_deadline(&mut self, deadline: Option<Instant>) {
        lock(&self.wr).set_deadline(deadline);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Encoder;
    use std::io::{Read, Write};

    /// Input from a vector, counting read calls.
    struct Counted {
        input: std::io::Cursor<Vec<u8>>,
        reads: usize,
    }
    impl Read for Counted {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.reads += 1;
            self.input.read(buf)
        }
    }
    impl Write for Counted {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Stream for Counted {}

    #[test]
    fn a_large_frame_is_read_in_large_pieces_and_the_buffer_shrinks_back() {
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        let mut wire = Vec::new();
        let mut enc = Encoder::new(Role::Client);
        enc.encode(OpCode::Binary, true, &big, &mut wire).unwrap();
        enc.encode(OpCode::Text, true, b"small", &mut wire).unwrap();
        let io = Counted {
            input: std::io::Cursor::new(wire),
            reads: 0,
        };
        let mut c = Conn::from_raw(io, Role::Server, Config::default(), &[], None);
        assert_eq!(c.read_message().unwrap(), Message::Binary(big));
        // 300 kB through a 4 KiB buffer would take 74 reads; grown to 64 KiB, 6.
        assert!(c.io.reads <= 8, "{} reads", c.io.reads);
        assert_eq!(c.read_message().unwrap(), Message::Text("small".into()));
        // Waiting for the next message (here: end of input), the buffer is back to
        // its configured size.
        assert!(c.read_message().is_err());
        assert_eq!(c.rd.buffer_len(), Config::default().read_buffer_size);
    }
}
