//! The blocking IO layer: gorilla/websocket's API over any [`Stream`].
//!
//! [`Upgrader`] turns an accepted stream into a server [`Conn`]; [`Dialer`] connects a
//! client one. A `Conn` reads whole messages ([`Conn::read_message`]) or streams them
//! ([`Conn::next_reader`]), writes whole messages or streams them
//! ([`Conn::next_writer`]), answers pings and closes, and can be
//! [`split`](Conn::split) so one thread reads while another writes: the split halves
//! make concurrent misuse a compile error rather than gorilla's run-time panic.
//!
//! Every protocol rule comes from [`proto::Connection`](crate::proto::Connection):
//! this layer reads bytes, feeds them to it, writes what it asks and applies its
//! deadlines as socket timeouts.

mod dialer;
mod io;
mod link;
mod read;
mod reconnect;
mod split;
mod stream;
mod upgrader;
mod write;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

pub use dialer::Dialer;
pub use read::{
    CloseHandler, Control, ControlHandler, MessageReader, default_close_handler,
    default_ping_handler,
};
pub use reconnect::Reconnector;
pub use split::{ReadHalf, WriteHalf};
pub use stream::{Shared, Stream};
pub use upgrader::{PendingUpgrade, Upgrader};
pub use write::MessageWriter;

use crate::error::Result;
use crate::message::Message;
use crate::proto::CloseCode;
use crate::proto::OpCode;
use crate::proto::{Connection, MessageKind, Randomness, Role};
use crate::settings::Settings;
use io::WriteState;
use link::{AnyLink, AnySink, Sink, Solo};
use read::ReadCore;

/// A WebSocket connection over a blocking [`Stream`].
///
/// One reader and one writer at a time is enforced by `&mut self`; to read and write
/// from two threads, [`split`](Self::split) it.
///
/// ```
/// use std::io::{Read, Write};
/// use silverback::{CloseCode, Dialer, Error, MessageKind, Upgrader};
///
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let addr = listener.local_addr()?;
/// let server = std::thread::spawn(move || -> silverback::Result<()> {
///     let mut conn = Upgrader::new().upgrade(listener.accept()?.0)?;
///     // The tutorial's stream echo: next_reader → io::copy → next_writer.
///     loop {
///         let mut r = match conn.next_reader() {
///             Ok(r) => r,
///             Err(Error::Closed(_)) => return Ok(()),
///             Err(e) => return Err(e),
///         };
///         let mut body = Vec::new();
///         r.read_to_end(&mut body)?;
///         let kind = r.kind();
///         let mut w = conn.next_writer(kind)?;
///         w.write_all(&body)?;
///         w.close()?;
///     }
/// });
/// let (mut conn, _) = Dialer::new().dial(&format!("ws://{addr}/"))?;
/// conn.write_message(MessageKind::Text, b"hello")?;
/// assert_eq!(conn.read_message()?.as_bytes(), b"hello");
/// conn.close(CloseCode::NORMAL, "bye")?;
/// server.join().unwrap()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Conn<S> {
    io: S,
    conn: Connection,
    rd: ReadCore,
    ws: WriteState,
}

impl<S> std::fmt::Debug for Conn<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("role", &self.conn.role())
            .field("subprotocol", &self.conn.subprotocol())
            .field("state", &self.conn.state())
            .finish_non_exhaustive()
    }
}

impl<S: Stream> Conn<S> {
    /// Wraps a stream on which the opening handshake is already done. `leftover` holds
    /// bytes read past the handshake (the first frames), if any.
    pub fn from_raw(
        io: S,
        role: Role,
        settings: &Settings,
        leftover: &[u8],
        subprotocol: Option<String>,
    ) -> Self {
        let mut conn = Connection::new(
            role,
            Arc::new(settings.connection_config()),
            Randomness::thread(),
            Instant::now(),
        );
        conn.set_subprotocol(subprotocol.as_deref());
        Self::from_connection(io, conn, settings.read_buffer_size, leftover)
    }

    /// Drives a connection that a handshake object produced.
    pub(crate) fn from_connection(
        io: S,
        mut conn: Connection,
        read_buffer_size: usize,
        leftover: &[u8],
    ) -> Self {
        let rd = ReadCore::new(read_buffer_size, leftover);
        conn.set_read_buffer_size(rd.whole_frame_max());
        Conn {
            io,
            conn,
            rd,
            ws: WriteState::default(),
        }
    }

    fn solo(&mut self) -> Solo<'_> {
        Solo {
            conn: &mut self.conn,
            io: &mut self.io,
            ws: &mut self.ws,
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
        self.conn.enable_deflate(params, cfg);
    }

    /// True if permessage-deflate is in use on this connection.
    pub fn is_compressed(&self) -> bool {
        self.conn.is_compressed()
    }

    /// Compresses the messages sent from now on (`true`, the default with
    /// permessage-deflate) or sends them uncompressed (gorilla's
    /// `EnableWriteCompression`; see [`Connection::set_write_compression`]). For
    /// one message, [`write_uncompressed`](Self::write_uncompressed).
    pub fn set_write_compression(&mut self, on: bool) {
        self.conn.set_write_compression(on);
    }

    /// Sends one message uncompressed (RSV1 clear) on a compressing connection,
    /// as [`write_message`](Self::write_message) otherwise: for data that does
    /// not shrink (JPEG, already-compressed blobs).
    pub fn write_uncompressed(&mut self, kind: MessageKind, data: &[u8]) -> Result<()> {
        let was = self.conn.write_compression();
        self.conn.set_write_compression(false);
        let r = self.write_message(kind, data);
        self.conn.set_write_compression(was);
        r
    }

    /// The protocol state machine this connection drives.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Reads the next whole message (gorilla's `ReadMessage`). Pings, pongs and closes
    /// that arrive first go to their handlers. A close from the peer returns
    /// [`Error::Closed`](crate::Error::Closed) with its code and reason, after it was answered.
    pub fn read_message(&mut self) -> Result<Message> {
        let Conn { io, conn, rd, ws } = self;
        rd.read_message(&mut Solo { conn, io, ws })
    }

    /// Starts reading the next message as a stream (gorilla's `NextReader`). Any unread
    /// rest of the previous message is skipped.
    ///
    /// The reader borrows the whole `Conn`, so no writer can exist beside it. To
    /// stream a message into another one (gorilla's `io.Copy(w, r)` echo), use the
    /// halves of [`split`](Self::split): `rd.next_reader()` and `wr.next_writer(..)`
    /// can be held at once (examples/stream_echo_blocking.rs).
    pub fn next_reader(&mut self) -> Result<MessageReader<'_>> {
        let Conn { io, conn, rd, ws } = self;
        let mut link = AnyLink::Solo(Solo { conn, io, ws });
        let kind = rd.begin_message(&mut link)?;
        Ok(MessageReader { rd, link, kind })
    }

    /// Sends `data` as one message in a single frame (gorilla's `WriteMessage`). Text
    /// must be UTF-8 ([`UsageError::InvalidUtf8`](crate::UsageError) otherwise;
    /// nothing is sent).
    pub fn write_message(&mut self, kind: MessageKind, data: &[u8]) -> Result<()> {
        self.solo().send_message(kind, data)
    }

    /// Sends a [`Message`].
    pub fn send(&mut self, msg: &Message) -> Result<()> {
        self.write_message(msg.kind(), msg.as_bytes())
    }

    /// Sends `value` as a JSON text message (gorilla's `WriteJSON`; the `json`
    /// feature). A value that cannot be serialized is
    /// [`Error::Json`](crate::Error::Json) and nothing is sent.
    #[cfg(feature = "json")]
    pub fn write_json<T: serde::Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let text = crate::json::encode(value)?;
        self.write_message(MessageKind::Text, &text)
    }

    /// Reads the next message and parses it as JSON (gorilla's `ReadJSON`; the
    /// `json` feature). A message that is not the JSON expected is
    /// [`Error::Json`](crate::Error::Json): it is consumed and the connection stays
    /// open.
    #[cfg(feature = "json")]
    pub fn read_json<T: serde::de::DeserializeOwned>(&mut self) -> Result<T> {
        let msg = self.read_message()?;
        crate::json::decode(msg.as_bytes())
    }

    /// Starts a message written as a stream (gorilla's `NextWriter`): fragments of
    /// [`Settings::write_buffer_size`] go out as the writer fills; `close()` or drop sends
    /// the final frame.
    ///
    /// The writer borrows the whole `Conn`; a streaming echo that reads one message
    /// while writing another needs the halves of [`split`](Self::split) (see
    /// [`next_reader`](Self::next_reader)).
    pub fn next_writer(&mut self, kind: MessageKind) -> Result<MessageWriter<'_>> {
        self.conn.stream_write(kind, &[])?;
        Ok(MessageWriter {
            sink: AnySink::Solo(self.solo()),
            kind,
            finished: false,
        })
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
        let now = Instant::now();
        self.solo()
            .run(deadline, &mut |c| c.send_control(now, op, payload))
    }

    /// Performs the closing handshake: sends a close with `code` and `reason`, waits
    /// (bounded by the read deadline and [`Settings::close_timeout`]) for the peer's
    /// close, discarding any data that arrives first, then closes the transport (a
    /// client first waits, as long again, for the server to close it: RFC 6455
    /// §7.1.1). [`CloseCode::NO_STATUS`] sends an empty close payload.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        let now = Instant::now();
        let Conn { io, conn, rd, ws } = self;
        let mut link = Solo { conn, io, ws };
        link.run(None, &mut |c| c.close(now, code, reason))?;
        let res = if rd.is_terminal() {
            Ok(())
        } else {
            rd.drain_until_close(&mut link).map(|_| ())
        };
        if res.is_ok() {
            rd.wait_for_eof(&mut link);
        }
        let _ = self.io.shutdown();
        res
    }

    /// Sets the handler for pings from the peer (it answers them itself, for
    /// instance with [`default_ping_handler`]). Default: pongs are sent
    /// automatically.
    pub fn set_ping_handler(
        &mut self,
        f: impl FnMut(&[u8], &mut Control<'_>) -> Result<()> + Send + 'static,
    ) {
        self.conn.set_auto_pong(false);
        self.rd.handlers.ping = Some(Box::new(f));
    }

    /// Sets the handler for pongs from the peer. Default: do nothing.
    pub fn set_pong_handler(
        &mut self,
        f: impl FnMut(&[u8], &mut Control<'_>) -> Result<()> + Send + 'static,
    ) {
        self.rd.handlers.pong = Some(Box::new(f));
    }

    /// Sets the handler for a close from the peer. The connection echoes the peer's
    /// code by itself (RFC 6455 §5.5.1); a handler may replace that echo with
    /// [`Control::close`]. The read that received the close then returns
    /// [`Error::Closed`](crate::Error::Closed).
    pub fn set_close_handler(
        &mut self,
        f: impl FnMut(CloseCode, &str, &mut Control<'_>) -> Result<()> + Send + 'static,
    ) {
        self.rd.handlers.close = Some(Box::new(f));
    }

    /// Sets the largest message accepted (gorilla's `SetReadLimit`); a larger one is
    /// refused with close 1009 and [`Error::MessageTooBig`](crate::Error::MessageTooBig).
    pub fn set_read_limit(&mut self, limit: u64) {
        self.conn.set_read_limit(limit);
    }

    /// Sets the read deadline: a read that has not completed by then returns
    /// [`Error::Timeout`](crate::Error::Timeout). Unlike gorilla, a timed-out read can be retried: no bytes
    /// are lost. `None` (the default) blocks forever.
    pub fn set_read_deadline(&mut self, deadline: Option<Instant>) {
        self.rd.set_deadline(deadline);
    }

    /// Sets the write deadline: a write not done by then returns [`Error::Timeout`](crate::Error::Timeout).
    /// A write that times out before it starts changes nothing and can be retried;
    /// one that times out part-way keeps the unsent rest of its frame queued, so the
    /// stream stays whole and the rest goes out first on the next write (do not send
    /// the message again). `None` (the default) blocks forever.
    pub fn set_write_deadline(&mut self, deadline: Option<Instant>) {
        self.ws.deadline = deadline;
    }

    /// The negotiated subprotocol, if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.conn.subprotocol()
    }

    /// Client or server.
    pub fn role(&self) -> Role {
        self.conn.role()
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
    /// threads. The read half never waits on a blocked write: its automatic replies
    /// (pong, close echo) are queued and written by the write half between its
    /// frames, or by the read half itself while the write half is idle.
    pub fn split(self) -> (ReadHalf<S>, WriteHalf<S>)
    where
        for<'a> &'a S: Stream,
    {
        split::split(self.io, self.conn, self.rd, self.ws)
    }

    /// [`split`](Self::split) for a stream that two threads cannot share as it
    /// is: `share` turns it into one they can (through `&`), keeping what the
    /// connection buffered. `wss://` streams use it through `split_tls`
    /// (feature `tls`).
    pub fn split_with<T>(self, share: impl FnOnce(S) -> T) -> (ReadHalf<T>, WriteHalf<T>)
    where
        for<'a> &'a T: Stream,
    {
        split::split(share(self.io), self.conn, self.rd, self.ws)
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
        let mut c = Conn::from_raw(io, Role::Server, &Settings::default(), &[], None);
        assert_eq!(c.read_message().unwrap(), Message::Binary(big));
        // 300 kB through a 4 KiB buffer would take 74 reads; grown to 64 KiB, 6.
        assert!(c.io.reads <= 8, "{} reads", c.io.reads);
        assert_eq!(c.read_message().unwrap(), Message::Text("small".into()));
        // Waiting for the next message (here: end of input), the buffer is back to
        // its configured size.
        assert!(c.read_message().is_err());
        assert_eq!(c.rd.buffer_len(), Settings::default().read_buffer_size);
    }
}
