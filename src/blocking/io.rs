//! Moving bytes between a blocking [`Stream`] and a [`Connection`] under deadlines.
//!
//! Deadlines become socket timeouts just before each call. A write that cannot
//! finish in time keeps its unsent rest in the connection's queue, so the stream
//! stays whole: the rest goes out first on the next write.

use std::io::{self, IoSlice};
use std::time::Instant;

use crate::blocking::stream::Stream;
use crate::error::{Error, Result};
use crate::proto::Connection;
use crate::proto::DirectFrame;
use crate::proto::MAX_HEADER_LEN;

/// Server frames with a payload up to this size are built in one buffer and written
/// with one plain write; larger ones go out header + payload in one vectored write,
/// with no copy of the payload.
pub(crate) const COALESCE_MAX: usize = 1024;

/// Which socket timeout a deadline is applied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    Read,
    Write,
}

/// A deadline as applied to one direction of a stream, remembering whether a
/// timeout is set so that clearing it costs nothing when none is.
#[derive(Debug, Default)]
pub(crate) struct Timeout {
    applied: bool,
}

impl Timeout {
    /// Sets the stream's timeout for `deadline` (`None`: block). Fails with
    /// [`Error::Timeout`] if the deadline has passed. Streams without timeouts
    /// (`ErrorKind::Unsupported`) block.
    pub(crate) fn apply(
        &mut self,
        io: &mut dyn Stream,
        dir: Dir,
        deadline: Option<Instant>,
    ) -> Result<()> {
        let t = match deadline {
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return Err(Error::Timeout);
                }
                Some(d - now)
            }
            None if !self.applied => return Ok(()),
            None => None,
        };
        let r = match dir {
            Dir::Read => io.set_read_timeout(t),
            Dir::Write => io.set_write_timeout(t),
        };
        match r {
            Ok(()) => {
                self.applied = t.is_some();
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::Unsupported => Ok(()),
            Err(e) => Err(Error::Io(e)),
        }
    }
}

/// The write side of a blocking connection: its deadline and a buffer for bytes
/// taken out of a shared connection.
#[derive(Debug, Default)]
pub(crate) struct WriteState {
    pub(crate) deadline: Option<Instant>,
    timeout: Timeout,
    /// Bytes taken from a shared connection's queue to be written without its lock.
    pub(crate) taken: Vec<u8>,
}

impl WriteState {
    /// Fails with [`Error::Timeout`] if the write deadline has passed: checked
    /// before a send changes anything, so such a send can simply be retried.
    pub(crate) fn check_deadline(&self, deadline: Option<Instant>) -> Result<()> {
        match deadline.or(self.deadline) {
            Some(d) if Instant::now() >= d => Err(Error::Timeout),
            _ => Ok(()),
        }
    }

    /// Writes all of `bufs` under `deadline` (or the write deadline). On failure,
    /// returns how many bytes went out with the error.
    pub(crate) fn write_all(
        &mut self,
        io: &mut dyn Stream,
        mut bufs: &mut [IoSlice<'_>],
        deadline: Option<Instant>,
    ) -> std::result::Result<(), (usize, Error)> {
        let deadline = deadline.or(self.deadline);
        let mut written = 0;
        while !bufs.is_empty() {
            if let Err(e) = self.timeout.apply(io, Dir::Write, deadline) {
                return Err((written, e));
            }
            let r = if let [one] = bufs {
                io.write(one)
            } else {
                io.write_vectored(bufs)
            };
            match r {
                Ok(0) => return Err((written, Error::Io(io::ErrorKind::WriteZero.into()))),
                Ok(n) => {
                    written += n;
                    IoSlice::advance_slices(&mut bufs, n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err((written, Error::from_io_timeout(e))),
            }
        }
        Ok(())
    }
}

/// A transport failure (not a timeout) leaves nothing more to send; reading goes
/// on, so the peer's close (why it stopped reading) can still be learned.
fn note_failure(conn: &mut Connection, e: &Error) {
    if !matches!(e, Error::Timeout) {
        conn.handle_write_failure(Instant::now());
    }
}

/// Writes everything `conn` has queued, straight from its queue.
pub(crate) fn flush(
    conn: &mut Connection,
    io: &mut dyn Stream,
    ws: &mut WriteState,
    deadline: Option<Instant>,
) -> Result<()> {
    let deadline = deadline.or(ws.deadline);
    // Each round writes some bytes or returns.
    while conn.buffered() > 0 {
        if let Err(e) = ws.timeout.apply(io, Dir::Write, deadline) {
            note_failure(conn, &e);
            return Err(e);
        }
        match io.write(conn.transmit()) {
            Ok(0) => {
                let e = Error::Io(io::ErrorKind::WriteZero.into());
                note_failure(conn, &e);
                return Err(e);
            }
            Ok(n) => conn.advance_transmit(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                let e = Error::from_io_timeout(e);
                note_failure(conn, &e);
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Writes the queue and then a direct frame, in one vectored write where the
/// stream allows; what does not go out is queued in order.
pub(crate) fn write_direct(
    conn: &mut Connection,
    frame: DirectFrame<'_>,
    io: &mut dyn Stream,
    ws: &mut WriteState,
) -> Result<()> {
    let queued = conn.buffered();
    match write_after(io, ws, conn.transmit(), &frame) {
        Ok(()) => {
            conn.advance_transmit(queued);
            Ok(())
        }
        Err((n, e)) => {
            conn.advance_transmit(n.min(queued));
            frame.written(conn, n.saturating_sub(queued));
            note_failure(conn, &e);
            Err(e)
        }
    }
}

/// Writes `queued` bytes, then a direct frame. A small frame with nothing queued
/// ahead goes out as one contiguous buffer built on the stack (one plain write:
/// cheaper in the kernel than a two-piece vectored write, and in the cache, unlike
/// a per-connection buffer); otherwise one vectored write, no copy of the payload.
pub(crate) fn write_after(
    io: &mut dyn Stream,
    ws: &mut WriteState,
    queued: &[u8],
    frame: &DirectFrame<'_>,
) -> std::result::Result<(), (usize, Error)> {
    let (h, p) = (frame.header(), frame.payload());
    if queued.is_empty() && p.len() <= COALESCE_MAX {
        let mut small = [0u8; MAX_HEADER_LEN + COALESCE_MAX];
        small[..h.len()].copy_from_slice(h);
        small[h.len()..h.len() + p.len()].copy_from_slice(p);
        return ws.write_all(io, &mut [IoSlice::new(&small[..h.len() + p.len()])], None);
    }
    ws.write_all(
        io,
        &mut [IoSlice::new(queued), IoSlice::new(h), IoSlice::new(p)],
        None,
    )
}

/// Writes bytes taken out of a shared connection (`ws.taken`); on failure the
/// unsent rest goes back in front of the connection's queue.
pub(crate) fn write_taken(
    io: &mut dyn Stream,
    ws: &mut WriteState,
    put_back: impl FnOnce(&[u8], &Error),
) -> Result<()> {
    let taken = std::mem::take(&mut ws.taken);
    let r = ws.write_all(io, &mut [IoSlice::new(&taken)], None);
    ws.taken = taken;
    let res = match r {
        Ok(()) => Ok(()),
        Err((n, e)) => {
            put_back(&ws.taken[n..], &e);
            Err(e)
        }
    };
    ws.taken.clear();
    if ws.taken.capacity() > 256 * 1024 {
        ws.taken = Vec::new();
    }
    res
}

/// Puts bytes back in front of a connection's queue after a failed write.
pub(crate) fn put_back(conn: &mut Connection, rest: &[u8], e: &Error) {
    conn.requeue_front(rest);
    note_failure(conn, e);
}

/// Writes an HTTP head (a request, a response) under `deadline`, then clears the
/// write timeout.
pub(crate) fn write_head(
    stream: &mut dyn Stream,
    bytes: &[u8],
    deadline: Option<Instant>,
) -> Result<()> {
    let mut ws = WriteState::default();
    let r = ws
        .write_all(stream, &mut [IoSlice::new(bytes)], deadline)
        .map_err(|(_, e)| e)
        .and_then(|()| stream.flush().map_err(Error::from_io_timeout));
    let _ = ws.timeout.apply(stream, Dir::Write, None);
    r
}

/// Reads an HTTP head (request or response) into `buf` until `parse` finds it
/// complete, under `deadline`; returns what `parse` returned.
pub(crate) fn read_head<T>(
    stream: &mut dyn Stream,
    buf: &mut Vec<u8>,
    max: usize,
    deadline: Option<Instant>,
    mut parse: impl FnMut(&[u8]) -> std::result::Result<Option<T>, crate::HandshakeError>,
) -> Result<T> {
    use crate::error::HandshakeError;
    let mut timeout = Timeout::default();
    let res = (|| {
        // Each round reads at least one byte or returns; the head is bounded.
        for _ in 0..=max {
            match timeout.apply(stream, Dir::Read, deadline) {
                Err(Error::Timeout) => return Err(HandshakeError::Timeout.into()),
                r => r?,
            }
            let len = buf.len();
            let want = (max + 1 - len.min(max)).clamp(1, 4096);
            buf.resize(len + want, 0);
            let n = match stream.read(&mut buf[len..]) {
                Ok(0) => {
                    buf.truncate(len);
                    return Err(HandshakeError::ConnectionClosed.into());
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
                Err(e) => {
                    buf.truncate(len);
                    return Err(match Error::from_io_timeout(e) {
                        Error::Timeout => HandshakeError::Timeout.into(),
                        other => other,
                    });
                }
            };
            buf.truncate(len + n);
            if let Some(t) = parse(buf)? {
                return Ok(t);
            }
        }
        Err(HandshakeError::HeadTooLarge.into())
    })();
    let _ = timeout.apply(stream, Dir::Read, None);
    res
}
