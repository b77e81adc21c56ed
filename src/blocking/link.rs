//! How the blocking read and write paths reach their [`Connection`] and stream:
//! directly for a whole [`Conn`](super::Conn), through shared state for split
//! halves.
//!
//! A split connection keeps the connection behind one mutex, held only while bytes
//! are decoded or encoded, never across I/O, and the write side of the stream
//! behind another. So the read half never waits on a blocked write: its obligated
//! replies (pong, close echo) are queued in the connection and written by whichever
//! side holds the write side next (the read half writes them itself only when the
//! write half is idle).

use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use super::io::{WriteState, flush, put_back, write_after, write_direct, write_taken};
use super::stream::Stream;
use crate::error::{Error, Result};
use crate::proto::{Connection, MessageKind, SendError};

/// Rounds of a split connection's drain: each writes what was queued, and what the
/// read half queued meanwhile (pongs) is picked up by the next.
const DRAIN_ROUNDS: usize = 1024;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The state behind these locks stays consistent between operations: a panic
    // in another thread does not make it unusable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The connection, borrowed or locked.
pub(crate) enum ConnRef<'a> {
    Direct(&'a mut Connection),
    Locked(MutexGuard<'a, Connection>),
}

impl Deref for ConnRef<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        match self {
            ConnRef::Direct(c) => c,
            ConnRef::Locked(g) => g,
        }
    }
}

impl DerefMut for ConnRef<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        match self {
            ConnRef::Direct(c) => c,
            ConnRef::Locked(g) => g,
        }
    }
}

/// What the read path needs: the connection, the stream to read, a way to write
/// what the connection queued, and to close the transport.
pub(crate) trait Link {
    fn conn(&mut self) -> ConnRef<'_>;
    fn stream(&mut self) -> &mut dyn Stream;
    /// Writes the queued bytes: a whole connection blocks (under the write
    /// deadline); a read half writes only if the write half is idle.
    fn flush(&mut self) -> Result<()>;
    fn shutdown(&mut self);
}

/// What the write path needs: run an operation on the connection, then write what
/// it queued (blocking, under the write deadline).
pub(crate) trait Sink {
    fn run(
        &mut self,
        deadline: Option<Instant>,
        op: &mut dyn FnMut(&mut Connection) -> std::result::Result<(), SendError>,
    ) -> Result<()>;
    /// Sends a whole message, straight from `data` where the connection allows.
    fn send_message(&mut self, kind: MessageKind, data: &[u8]) -> Result<()>;
}

/// A whole connection: everything borrowed at once.
pub(crate) struct Solo<'a> {
    pub(crate) conn: &'a mut Connection,
    pub(crate) io: &'a mut dyn Stream,
    pub(crate) ws: &'a mut WriteState,
}

impl Link for Solo<'_> {
    fn conn(&mut self) -> ConnRef<'_> {
        ConnRef::Direct(self.conn)
    }
    fn stream(&mut self) -> &mut dyn Stream {
        self.io
    }
    fn flush(&mut self) -> Result<()> {
        flush(self.conn, self.io, self.ws, None)
    }
    fn shutdown(&mut self) {
        let _ = self.io.shutdown();
    }
}

impl Sink for Solo<'_> {
    fn run(
        &mut self,
        deadline: Option<Instant>,
        op: &mut dyn FnMut(&mut Connection) -> std::result::Result<(), SendError>,
    ) -> Result<()> {
        self.ws.check_deadline(deadline)?;
        // A refused operation may still have queued something (the final frame of
        // a text stream that ended inside a code point): flush either way.
        let r = op(self.conn).map_err(Error::from);
        let f = flush(self.conn, self.io, self.ws, deadline);
        r.and(f)
    }

    fn send_message(&mut self, kind: MessageKind, data: &[u8]) -> Result<()> {
        self.ws.check_deadline(None)?;
        match self.conn.send_direct(kind, data)? {
            Some(frame) => write_direct(self.conn, frame, self.io, self.ws),
            None => flush(self.conn, self.io, self.ws, None),
        }
    }
}

/// The write side of a split connection.
pub(crate) struct WriteSide<S> {
    pub(crate) io: S,
    pub(crate) ws: WriteState,
}

/// The state split halves share.
pub(crate) struct Split<S> {
    pub(crate) conn: Mutex<Connection>,
    pub(crate) write: Mutex<WriteSide<S>>,
}

/// A split connection, without its stream type: what the halves call.
pub(crate) trait Shared {
    fn conn(&self) -> MutexGuard<'_, Connection>;
    /// Writes the queued bytes, waiting for the write side (`wait`) or only if it
    /// is free.
    fn flush(&self, wait: bool, deadline: Option<Instant>) -> Result<()>;
    /// Holds the write side while `op` runs on the connection and its bytes are
    /// written (so fragments and queued control frames keep their order).
    fn run(
        &self,
        deadline: Option<Instant>,
        op: &mut dyn FnMut(&mut Connection) -> std::result::Result<(), SendError>,
    ) -> Result<()>;
    fn send_message(&self, kind: MessageKind, data: &[u8]) -> Result<()>;
    fn set_write_deadline(&self, deadline: Option<Instant>);
}

impl<S: Stream> Split<S> {
    /// Writes everything queued, taking it out of the connection so the lock is not
    /// held while writing. Bytes queued meanwhile (the read half's pongs) are
    /// picked up by the loop.
    fn drain(&self, side: &mut WriteSide<S>, deadline: Option<Instant>) -> Result<()> {
        for _ in 0..DRAIN_ROUNDS {
            {
                let mut c = lock(&self.conn);
                if c.buffered() == 0 {
                    return Ok(());
                }
                c.take_transmit(&mut side.ws.taken);
            }
            let WriteSide { io, ws } = side;
            let saved = ws.deadline;
            ws.deadline = deadline.or(saved);
            let r = write_taken(io, ws, |rest, e| put_back(&mut lock(&self.conn), rest, e));
            ws.deadline = saved;
            r?;
        }
        Ok(())
    }

    /// After the write side is released, bytes the read half queued while it was
    /// held (and could not write) are written here.
    fn recheck(&self) -> Result<()> {
        if lock(&self.conn).buffered() > 0 {
            return self.flush(false, None);
        }
        Ok(())
    }
}

impl<S: Stream> Shared for Split<S> {
    fn conn(&self) -> MutexGuard<'_, Connection> {
        lock(&self.conn)
    }

    fn flush(&self, wait: bool, deadline: Option<Instant>) -> Result<()> {
        let mut side = if wait {
            lock(&self.write)
        } else {
            match self.write.try_lock() {
                Ok(g) => g,
                Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
                // The write half is writing: it writes the queue when it is done.
                Err(std::sync::TryLockError::WouldBlock) => return Ok(()),
            }
        };
        let r = self.drain(&mut side, deadline);
        drop(side);
        r
    }

    fn run(
        &self,
        deadline: Option<Instant>,
        op: &mut dyn FnMut(&mut Connection) -> std::result::Result<(), SendError>,
    ) -> Result<()> {
        let mut side = lock(&self.write);
        side.ws.check_deadline(deadline)?;
        let r = op(&mut lock(&self.conn)).map_err(Error::from);
        let f = self.drain(&mut side, deadline);
        drop(side);
        r.and(f).and_then(|()| self.recheck())
    }

    fn send_message(&self, kind: MessageKind, data: &[u8]) -> Result<()> {
        let mut side = lock(&self.write);
        side.ws.check_deadline(None)?;
        let mut c = lock(&self.conn);
        let r = match c.send_direct(kind, data)? {
            None => {
                drop(c);
                self.drain(&mut side, None)
            }
            Some(frame) => {
                let WriteSide { io, ws } = &mut *side;
                let mut taken = std::mem::take(&mut ws.taken);
                c.take_transmit(&mut taken);
                drop(c);
                let r = match write_after(io, ws, &taken, &frame) {
                    Ok(()) => Ok(()),
                    Err((n, e)) => {
                        // What did not go out goes back in front of the queue.
                        let queued = taken.len();
                        let mut rest = taken[n.min(queued)..].to_vec();
                        let done = n.saturating_sub(queued);
                        let mut framed = frame.header().to_vec();
                        framed.extend_from_slice(frame.payload());
                        rest.extend_from_slice(&framed[done.min(framed.len())..]);
                        put_back(&mut lock(&self.conn), &rest, &e);
                        Err(e)
                    }
                };
                taken.clear();
                ws.taken = taken;
                r.and_then(|()| self.drain(&mut side, None))
            }
        };
        drop(side);
        r.and_then(|()| self.recheck())
    }

    fn set_write_deadline(&self, deadline: Option<Instant>) {
        lock(&self.write).ws.deadline = deadline;
    }
}

/// The read half's link: its own handle on the stream, the shared state for the rest.
pub(crate) struct ReaderLink<'a> {
    pub(crate) shared: &'a dyn Shared,
    pub(crate) io: &'a mut dyn Stream,
}

impl Link for ReaderLink<'_> {
    fn conn(&mut self) -> ConnRef<'_> {
        ConnRef::Locked(self.shared.conn())
    }
    fn stream(&mut self) -> &mut dyn Stream {
        self.io
    }
    fn flush(&mut self) -> Result<()> {
        self.shared.flush(false, None)
    }
    fn shutdown(&mut self) {
        let _ = self.io.shutdown();
    }
}

/// Either kind of link, by value (what a [`MessageReader`](super::MessageReader)
/// holds).
pub(crate) enum AnyLink<'a> {
    Solo(Solo<'a>),
    Reader(ReaderLink<'a>),
}

impl Link for AnyLink<'_> {
    fn conn(&mut self) -> ConnRef<'_> {
        match self {
            AnyLink::Solo(l) => l.conn(),
            AnyLink::Reader(l) => l.conn(),
        }
    }
    fn stream(&mut self) -> &mut dyn Stream {
        match self {
            AnyLink::Solo(l) => l.stream(),
            AnyLink::Reader(l) => l.stream(),
        }
    }
    fn flush(&mut self) -> Result<()> {
        match self {
            AnyLink::Solo(l) => l.flush(),
            AnyLink::Reader(l) => l.flush(),
        }
    }
    fn shutdown(&mut self) {
        match self {
            AnyLink::Solo(l) => l.shutdown(),
            AnyLink::Reader(l) => l.shutdown(),
        }
    }
}

/// Either kind of write path (what a [`MessageWriter`](super::MessageWriter) holds).
pub(crate) enum AnySink<'a> {
    Solo(Solo<'a>),
    Shared(&'a dyn Shared),
}

impl Sink for AnySink<'_> {
    fn run(
        &mut self,
        deadline: Option<Instant>,
        op: &mut dyn FnMut(&mut Connection) -> std::result::Result<(), SendError>,
    ) -> Result<()> {
        match self {
            AnySink::Solo(s) => s.run(deadline, op),
            AnySink::Shared(s) => s.run(deadline, op),
        }
    }
    fn send_message(&mut self, kind: MessageKind, data: &[u8]) -> Result<()> {
        match self {
            AnySink::Solo(s) => s.send_message(kind, data),
            AnySink::Shared(s) => s.send_message(kind, data),
        }
    }
}
