//! The two halves of a split [`Conn`](super::Conn): one thread reads, another
//! writes. See the `link` module for how they share the connection.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::io::WriteState;
use super::link::{AnyLink, AnySink, ReaderLink, Shared as _, Split, WriteSide, lock};
use super::read::{Control, MessageReader, ReadCore};
use super::stream::{Shared, Stream};
use super::write::MessageWriter;
use crate::error::Result;
use crate::message::Message;
use crate::proto::CloseCode;
use crate::proto::OpCode;
use crate::proto::{Connection, MessageKind};

pub(crate) fn split<S>(
    io: S,
    conn: Connection,
    rd: ReadCore,
    ws: WriteState,
) -> (ReadHalf<S>, WriteHalf<S>)
where
    for<'a> &'a S: Stream,
{
    let io = Shared(Arc::new(io));
    let subprotocol = conn.subprotocol().map(str::to_owned);
    let shared = Arc::new(Split {
        conn: Mutex::new(conn),
        write: Mutex::new(WriteSide { io: io.clone(), ws }),
    });
    (
        ReadHalf {
            shared: shared.clone(),
            io,
            rd,
            subprotocol,
        },
        WriteHalf { shared },
    )
}

/// The reading half of a split [`Conn`](super::Conn).
pub struct ReadHalf<S> {
    shared: Arc<Split<Shared<S>>>,
    io: Shared<S>,
    rd: ReadCore,
    subprotocol: Option<String>,
}

impl<S> ReadHalf<S>
where
    for<'a> &'a S: Stream,
{
    /// See [`Conn::read_message`](super::Conn::read_message).
    pub fn read_message(&mut self) -> Result<Message> {
        let mut link = ReaderLink {
            shared: &*self.shared,
            io: &mut self.io,
        };
        self.rd.read_message(&mut link)
    }

    /// See [`Conn::read_json`](super::Conn::read_json).
    #[cfg(feature = "json")]
    pub fn read_json<T: serde::de::DeserializeOwned>(&mut self) -> Result<T> {
        let msg = self.read_message()?;
        crate::json::decode(msg.as_bytes())
    }

    /// See [`Conn::next_reader`](super::Conn::next_reader).
    pub fn next_reader(&mut self) -> Result<MessageReader<'_>> {
        let mut link = AnyLink::Reader(ReaderLink {
            shared: &*self.shared,
            io: &mut self.io,
        });
        let kind = self.rd.begin_message(&mut link)?;
        Ok(MessageReader {
            rd: &mut self.rd,
            link,
            kind,
        })
    }

    /// See [`Conn::set_ping_handler`](super::Conn::set_ping_handler).
    pub fn set_ping_handler(
        &mut self,
        f: impl FnMut(&[u8], &mut Control<'_>) -> Result<()> + Send + 'static,
    ) {
        lock(&self.shared.conn).set_auto_pong(false);
        self.rd.handlers.ping = Some(Box::new(f));
    }

    /// See [`Conn::set_pong_handler`](super::Conn::set_pong_handler).
    pub fn set_pong_handler(
        &mut self,
        f: impl FnMut(&[u8], &mut Control<'_>) -> Result<()> + Send + 'static,
    ) {
        self.rd.handlers.pong = Some(Box::new(f));
    }

    /// See [`Conn::set_close_handler`](super::Conn::set_close_handler).
    pub fn set_close_handler(
        &mut self,
        f: impl FnMut(CloseCode, &str, &mut Control<'_>) -> Result<()> + Send + 'static,
    ) {
        self.rd.handlers.close = Some(Box::new(f));
    }

    /// See [`Conn::set_read_limit`](super::Conn::set_read_limit).
    pub fn set_read_limit(&mut self, limit: u64) {
        lock(&self.shared.conn).set_read_limit(limit);
    }

    /// See [`Conn::set_read_deadline`](super::Conn::set_read_deadline).
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

/// The writing half of a split [`Conn`](super::Conn).
pub struct WriteHalf<S> {
    shared: Arc<Split<Shared<S>>>,
}

impl<S> WriteHalf<S>
where
    for<'a> &'a S: Stream,
{
    /// See [`Conn::write_message`](super::Conn::write_message).
    pub fn write_message(&mut self, kind: MessageKind, data: &[u8]) -> Result<()> {
        self.shared.send_message(kind, data)
    }

    /// See [`Conn::send`](super::Conn::send).
    pub fn send(&mut self, msg: &Message) -> Result<()> {
        self.write_message(msg.kind(), msg.as_bytes())
    }

    /// See [`Conn::set_write_compression`](super::Conn::set_write_compression).
    pub fn set_write_compression(&mut self, on: bool) {
        lock(&self.shared.conn).set_write_compression(on);
    }

    /// See [`Conn::write_uncompressed`](super::Conn::write_uncompressed).
    pub fn write_uncompressed(&mut self, kind: MessageKind, data: &[u8]) -> Result<()> {
        let was = {
            let mut c = lock(&self.shared.conn);
            let was = c.write_compression();
            c.set_write_compression(false);
            was
        };
        let r = self.write_message(kind, data);
        lock(&self.shared.conn).set_write_compression(was);
        r
    }

    /// See [`Conn::write_json`](super::Conn::write_json).
    #[cfg(feature = "json")]
    pub fn write_json<T: serde::Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let text = crate::json::encode(value)?;
        self.write_message(MessageKind::Text, &text)
    }

    /// See [`Conn::next_writer`](super::Conn::next_writer). The write side is taken
    /// per fragment, so the read half's pongs can go out between fragments.
    pub fn next_writer(&mut self, kind: MessageKind) -> Result<MessageWriter<'_>> {
        lock(&self.shared.conn).stream_write(kind, &[])?;
        Ok(MessageWriter {
            sink: AnySink::Shared(&*self.shared),
            kind,
            finished: false,
        })
    }

    /// See [`Conn::write_control`](super::Conn::write_control).
    pub fn write_control(
        &mut self,
        op: OpCode,
        payload: &[u8],
        deadline: Option<Instant>,
    ) -> Result<()> {
        let now = Instant::now();
        self.shared
            .run(deadline, &mut |c| c.send_control(now, op, payload))
    }

    /// Sends a close frame. The read half's next read returns
    /// [`Error::Closed`](crate::Error::Closed) when the peer answers (and as a server
    /// closes the transport).
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        let now = Instant::now();
        self.shared.run(None, &mut |c| c.close(now, code, reason))
    }

    /// See [`Conn::set_write_deadline`](super::Conn::set_write_deadline).
    pub fn set_write_deadline(&mut self, deadline: Option<Instant>) {
        self.shared.set_write_deadline(deadline);
    }
}
