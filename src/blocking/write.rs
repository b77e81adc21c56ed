//! The blocking write side: frames onto a [`Stream`], write deadlines, and the
//! streaming [`MessageWriter`].
//!
//! Frames go out in one write each: a server payload goes as header + payload in one
//! vectored write (no copy); a client payload is masked through the staging buffer,
//! whose first 14 bytes are reserved so the header lands in front of the payload
//! once its length is known (gorilla's trick).

use std::io::{self, IoSlice};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use crate::blocking::stream::Stream;
use crate::error::{Error, Result, UsageError};
use crate::proto::frame::{MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode};
use crate::proto::mask::apply_mask;
use crate::proto::utf8::{Utf8Validator, incomplete_tail_len};
use crate::proto::{Encoder, MessageKind, Role};

/// Bytes reserved at the front of the staging buffer for a frame header.
pub(crate) const RESERVE: usize = MAX_HEADER_LEN;

/// Largest payload a server frame is copied into one buffer for (see `send_frame`).
const COALESCE_MAX: usize = 1024;

/// Encoder state plus the write deadline; shared by the two halves of a split
/// connection behind a mutex, held only for the duration of one frame.
#[derive(Debug)]
pub(crate) struct WriteCore {
    enc: Encoder,
    deadline: Option<Instant>,
    timeout_applied: bool,
    broken: bool,
    #[cfg(feature = "deflate")]
    deflater: Option<crate::proto::deflate::MessageDeflater>,
    /// Compressed payload of a whole message being sent.
    #[cfg(feature = "deflate")]
    zbuf: Vec<u8>,
}

impl WriteCore {
    pub(crate) fn new(role: Role) -> Self {
        WriteCore {
            enc: Encoder::new(role),
            deadline: None,
            timeout_applied: false,
            broken: false,
            #[cfg(feature = "deflate")]
            deflater: None,
            #[cfg(feature = "deflate")]
            zbuf: Vec::new(),
        }
    }

    /// Turns on permessage-deflate compression of outgoing messages.
    #[cfg(feature = "deflate")]
    pub(crate) fn enable_deflate(
        &mut self,
        params: &crate::proto::deflate::DeflateParams,
        cfg: &crate::proto::deflate::DeflateConfig,
    ) {
        let role = self.enc.role();
        self.deflater = Some(crate::proto::deflate::MessageDeflater::new(
            params, role, cfg,
        ));
    }

    /// True if messages are compressed (permessage-deflate negotiated).
    pub(crate) fn compressing(&self) -> bool {
        #[cfg(feature = "deflate")]
        return self.deflater.is_some();
        #[cfg(not(feature = "deflate"))]
        false
    }

    /// Compresses `data` into `out` (streaming writer), without ending the message.
    #[cfg(feature = "deflate")]
    pub(crate) fn compress(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<()> {
        match self.deflater.as_mut() {
            Some(d) => d.compress(data, out),
            None => {
                out.extend_from_slice(data);
                Ok(())
            }
        }
    }

    /// Ends a compressed message in `out` (streaming writer).
    #[cfg(feature = "deflate")]
    pub(crate) fn finish_compressed(&mut self, out: &mut Vec<u8>) -> Result<()> {
        match self.deflater.as_mut() {
            Some(d) => d.finish(out),
            None => Ok(()),
        }
    }

    pub(crate) fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    pub(crate) fn role(&self) -> Role {
        self.enc.role()
    }

    pub(crate) fn close_sent(&self) -> bool {
        self.enc.is_close_sent()
    }

    fn apply_deadline(&mut self, io: &mut dyn Stream, deadline: Option<Instant>) -> Result<()> {
        match deadline {
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return Err(Error::Timeout);
                }
                io.set_write_timeout(Some(d - now))?;
                self.timeout_applied = true;
            }
            None if self.timeout_applied => {
                io.set_write_timeout(None)?;
                self.timeout_applied = false;
            }
            None => {}
        }
        Ok(())
    }

    /// Writes all of `bufs` (one frame), applying `deadline`. A failure after part of
    /// the frame went out leaves the stream mid-frame: the writer is marked broken.
    fn write_frame(
        &mut self,
        io: &mut dyn Stream,
        mut bufs: &mut [IoSlice<'_>],
        deadline: Option<Instant>,
    ) -> Result<()> {
        let mut written = 0usize;
        while !bufs.is_empty() {
            let res = self.apply_deadline(io, deadline).and_then(|()| {
                let r = if let [one] = bufs {
                    io.write(one)
                } else {
                    io.write_vectored(bufs)
                };
                r.map_err(Error::from_io_timeout)
            });
            match res {
                Ok(0) => {
                    self.broken = true;
                    return Err(Error::Io(io::ErrorKind::WriteZero.into()));
                }
                Ok(n) => {
                    written += n;
                    IoSlice::advance_slices(&mut bufs, n);
                }
                Err(Error::Io(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if written > 0 || !matches!(e, Error::Timeout) {
                        self.broken = true;
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    fn check(&self) -> Result<()> {
        if self.broken {
            Err(UsageError::BrokenWriter.into())
        } else {
            Ok(())
        }
    }

    /// Sends a control frame (≤ 125 bytes), with `deadline` or the write deadline.
    pub(crate) fn send_control(
        &mut self,
        io: &mut dyn Stream,
        op: OpCode,
        payload: &[u8],
        deadline: Option<Instant>,
    ) -> Result<()> {
        self.check()?;
        if !op.is_control() {
            return Err(UsageError::NotControl.into());
        }
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(UsageError::ControlPayloadTooBig(payload.len()).into());
        }
        let h = self.enc.header(op, true, false, payload.len() as u64)?;
        let mut frame = [0u8; MAX_HEADER_LEN + MAX_CONTROL_PAYLOAD];
        let hl = h.as_bytes().len();
        frame[..hl].copy_from_slice(h.as_bytes());
        frame[hl..hl + payload.len()].copy_from_slice(payload);
        if let Some(key) = h.mask {
            apply_mask(&mut frame[hl..hl + payload.len()], key, 0);
        }
        let deadline = deadline.or(self.deadline);
        self.write_frame(
            io,
            &mut [IoSlice::new(&frame[..hl + payload.len()])],
            deadline,
        )
    }

    /// Sends one data frame carrying `payload`. Servers write header and payload in one
    /// vectored write; clients mask through `stage` (header reserve included).
    pub(crate) fn send_data(
        &mut self,
        io: &mut dyn Stream,
        op: OpCode,
        fin: bool,
        payload: &[u8],
        stage: &mut Vec<u8>,
    ) -> Result<()> {
        self.check()?;
        #[cfg(feature = "deflate")]
        if fin
            && op != OpCode::Continuation
            && let Some(d) = self.deflater.as_mut()
            && d.wants(payload.len())
        {
            let mut z = std::mem::take(&mut self.zbuf);
            z.clear();
            let r = d
                .compress_message(payload, &mut z)
                .and_then(|()| self.send_frame(io, op, fin, true, &z, stage));
            if z.capacity() <= 64 * 1024 {
                self.zbuf = z;
            }
            return r;
        }
        self.send_frame(io, op, fin, false, payload, stage)
    }

    fn send_frame(
        &mut self,
        io: &mut dyn Stream,
        op: OpCode,
        fin: bool,
        compressed: bool,
        payload: &[u8],
        stage: &mut Vec<u8>,
    ) -> Result<()> {
        let h = self.enc.header(op, fin, compressed, payload.len() as u64)?;
        let deadline = self.deadline;
        let Some(key) = h.mask else {
            if payload.len() <= COALESCE_MAX {
                // A small frame goes out as one contiguous buffer (one plain write):
                // cheaper in the kernel than a two-piece vectored write.
                let mut frame = [0u8; MAX_HEADER_LEN + COALESCE_MAX];
                let hl = h.as_bytes().len();
                frame[..hl].copy_from_slice(h.as_bytes());
                frame[hl..hl + payload.len()].copy_from_slice(payload);
                return self.write_frame(
                    io,
                    &mut [IoSlice::new(&frame[..hl + payload.len()])],
                    deadline,
                );
            }
            return self.write_frame(
                io,
                &mut [IoSlice::new(h.as_bytes()), IoSlice::new(payload)],
                deadline,
            );
        };
        // Client: mask chunk by chunk through the staging buffer; the header goes out
        // with the first chunk.
        let chunk = stage.capacity().saturating_sub(RESERVE).max(1024);
        let mut offset = 0;
        let mut first = true;
        loop {
            let end = (offset + chunk).min(payload.len());
            stage.clear();
            if first {
                stage.extend_from_slice(h.as_bytes());
            }
            let start = stage.len();
            stage.extend_from_slice(&payload[offset..end]);
            apply_mask(&mut stage[start..], key, offset);
            let res = self.write_frame(io, &mut [IoSlice::new(stage)], deadline);
            if res.is_err() && !first {
                self.broken = true;
            }
            res?;
            first = false;
            offset = end;
            if offset == payload.len() {
                stage.clear();
                return Ok(());
            }
        }
    }

    /// Sends the staged payload `stage[RESERVE..]` as one frame, writing the header
    /// into the reserved bytes in front of it (one write, no copy of the payload).
    pub(crate) fn send_staged(
        &mut self,
        io: &mut dyn Stream,
        op: OpCode,
        fin: bool,
        compressed: bool,
        stage: &mut [u8],
    ) -> Result<()> {
        self.check()?;
        let len = stage.len() - RESERVE;
        let h = self.enc.header(op, fin, compressed, len as u64)?;
        if let Some(key) = h.mask {
            apply_mask(&mut stage[RESERVE..], key, 0);
        }
        let hl = h.as_bytes().len();
        stage[RESERVE - hl..RESERVE].copy_from_slice(h.as_bytes());
        let deadline = self.deadline;
        self.write_frame(io, &mut [IoSlice::new(&stage[RESERVE - hl..])], deadline)
    }
}

/// Where the read side sends its automatic replies (pong, close echo): the write
/// side of the same connection, directly or through the split halves' mutex.
pub(crate) trait ControlSink {
    fn send_control(&mut self, io: &mut dyn Stream, op: OpCode, payload: &[u8]) -> Result<()>;
    fn close_sent(&mut self) -> bool;
}

impl ControlSink for WriteCore {
    fn send_control(&mut self, io: &mut dyn Stream, op: OpCode, payload: &[u8]) -> Result<()> {
        WriteCore::send_control(self, io, op, payload, None)
    }
    fn close_sent(&mut self) -> bool {
        self.enc.is_close_sent()
    }
}

pub(crate) fn lock(m: &Mutex<WriteCore>) -> MutexGuard<'_, WriteCore> {
    // A panic while holding the lock cannot leave WriteCore inconsistent in a way
    // that matters more than `broken` already records.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ControlSink for &Mutex<WriteCore> {
    fn send_control(&mut self, io: &mut dyn Stream, op: OpCode, payload: &[u8]) -> Result<()> {
        lock(self).send_control(io, op, payload, None)
    }
    fn close_sent(&mut self) -> bool {
        lock(self).close_sent()
    }
}

/// The write core of an unsplit connection (owned) or of a split one (shared).
pub(crate) enum CoreRef<'a> {
    Direct(&'a mut WriteCore),
    Shared(&'a Mutex<WriteCore>),
}

impl CoreRef<'_> {
    fn with<R>(&mut self, f: impl FnOnce(&mut WriteCore) -> R) -> R {
        match self {
            CoreRef::Direct(c) => f(c),
            CoreRef::Shared(m) => f(&mut lock(m)),
        }
    }
}

/// An `io::Write` for one outgoing message (gorilla's `NextWriter`).
///
/// Bytes are buffered; when the buffer is full and more bytes follow, it goes out as a
/// non-final fragment. [`close`](Self::close) (or drop) sends the rest as the final
/// frame, so an N-byte message is ⌈N / buffer⌉ frames. On a server, a write larger
/// than the buffer goes out as a fragment straight from the caller's slice, no copy.
/// Text is checked to be UTF-8 as it is written (an invalid write fails and nothing
/// of it is sent); text fragments end on code point boundaries, so what goes on the
/// wire is always valid, even if the caller stops inside a code point (`close` then
/// drops the incomplete bytes and returns [`UsageError::InvalidUtf8`]). `flush` sends
/// what is buffered as a fragment.
pub struct MessageWriter<'a> {
    core: CoreRef<'a>,
    io: &'a mut dyn Stream,
    stage: &'a mut Vec<u8>,
    frame_size: usize,
    kind: MessageKind,
    server: bool,
    started: bool,
    finished: bool,
    utf8: Option<Utf8Validator>,
    /// permessage-deflate: the stage holds compressed bytes.
    compress: bool,
    /// Compressed text: the incomplete code point at the end of what was written,
    /// kept uncompressed until the next write completes it (so a message that stops
    /// inside one can still end validly).
    #[cfg_attr(not(feature = "deflate"), allow(dead_code))]
    ztail: Vec<u8>,
}

impl<'a> MessageWriter<'a> {
    pub(crate) fn new(
        core: CoreRef<'a>,
        io: &'a mut dyn Stream,
        stage: &'a mut Vec<u8>,
        frame_size: usize,
        kind: MessageKind,
    ) -> Self {
        stage.clear();
        stage.resize(RESERVE, 0);
        let mut core = core;
        let (server, compress) = core.with(|c| (c.role() == Role::Server, c.compressing()));
        MessageWriter {
            compress,
            ztail: Vec::new(),
            server,
            core,
            io,
            stage,
            // At least 4: a text fragment must have room for a whole code point next
            // to a held-back incomplete one.
            frame_size: frame_size.max(4),
            kind,
            started: false,
            finished: false,
            utf8: (kind == MessageKind::Text).then(Utf8Validator::new),
        }
    }

    /// The kind of message being written.
    pub fn kind(&self) -> MessageKind {
        self.kind
    }

    fn opcode(&self) -> OpCode {
        if self.started {
            OpCode::Continuation
        } else {
            self.kind.opcode()
        }
    }

    fn flush_frame(&mut self, fin: bool) -> Result<()> {
        let op = self.opcode();
        // Text fragments end on a code point: an incomplete one stays buffered for
        // the next fragment, so the message can still end validly.
        let tail = if self.utf8.is_some() && !fin && !self.compress {
            incomplete_tail_len(&self.stage[RESERVE..])
        } else {
            0
        };
        let end = self.stage.len() - tail;
        let rsv1 = self.compress && !self.started;
        let (io, stage) = (&mut *self.io, &mut self.stage[..end]);
        let res = self.core.with(|c| c.send_staged(io, op, fin, rsv1, stage));
        self.stage.copy_within(end.., RESERVE);
        self.stage.truncate(RESERVE + tail);
        self.started = true;
        if fin {
            self.finished = true;
        }
        res
    }

    fn write_inner(&mut self, data: &[u8]) -> Result<usize> {
        if self.finished {
            return Err(Error::AlreadyClosed);
        }
        if let Some(v) = self.utf8.as_mut() {
            v.feed(data).map_err(|_| UsageError::InvalidUtf8)?;
        }
        #[cfg(feature = "deflate")]
        if self.compress {
            return self.write_compressed(data);
        }
        let mut rest = data;
        while !rest.is_empty() {
            // A full buffer goes out only once more data follows, so the last full
            // buffer of a message becomes its final frame (no empty trailing frame).
            if self.stage.len() == RESERVE + self.frame_size {
                self.flush_frame(false)?;
            }
            if self.server && self.stage.len() == RESERVE && rest.len() > self.frame_size {
                // Large write, nothing buffered: one fragment straight from `rest`
                // (header + data in one vectored write); `stage` is untouched. The
                // tail stays buffered so the message can still end on it (for text,
                // the fragment also ends on a code point).
                let mut direct = rest.len() - self.frame_size;
                if self.utf8.is_some() {
                    direct -= incomplete_tail_len(&rest[..direct]);
                }
                let op = self.opcode();
                let (io, stage) = (&mut *self.io, &mut *self.stage);
                self.core
                    .with(|c| c.send_data(io, op, false, &rest[..direct], stage))?;
                self.started = true;
                rest = &rest[direct..];
            }
            let room = RESERVE + self.frame_size - self.stage.len();
            let n = room.min(rest.len());
            self.stage.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
        }
        Ok(data.len())
    }

    /// Compresses `data` into the stage; full stages go out as fragments.
    #[cfg(feature = "deflate")]
    fn write_compressed(&mut self, data: &[u8]) -> Result<usize> {
        let mut input: &[u8] = data;
        let joined;
        if !self.ztail.is_empty() {
            self.ztail.extend_from_slice(data);
            joined = std::mem::take(&mut self.ztail);
            input = &joined;
        }
        let keep = if self.utf8.is_some() {
            incomplete_tail_len(input)
        } else {
            0
        };
        let (now, later) = input.split_at(input.len() - keep);
        let stage = &mut *self.stage;
        self.core.with(|c| c.compress(now, stage))?;
        self.ztail.extend_from_slice(later);
        while self.stage.len() >= RESERVE + self.frame_size {
            self.flush_frame(false)?;
        }
        Ok(data.len())
    }

    /// Sends the final frame and ends the message.
    pub fn close(mut self) -> Result<()> {
        self.finish()
    }

    fn finish(&mut self) -> Result<()> {
        if self.finished {
            return Ok(());
        }
        #[cfg(feature = "deflate")]
        if self.compress {
            // An incomplete code point held back uncompressed is dropped, never sent.
            let bad = self.utf8.as_mut().is_some_and(|v| v.finish().is_err());
            self.ztail.clear();
            let stage = &mut *self.stage;
            self.core.with(|c| c.finish_compressed(stage))?;
            self.flush_frame(true)?;
            return if bad {
                Err(UsageError::InvalidUtf8.into())
            } else {
                Ok(())
            };
        }
        if let Some(v) = self.utf8.as_mut()
            && v.finish().is_err()
        {
            // The text stopped inside a code point. Its bytes are still buffered (see
            // flush_frame): drop them, end the message validly, report the misuse.
            let tail = incomplete_tail_len(&self.stage[RESERVE..]);
            self.stage.truncate(self.stage.len() - tail);
            self.flush_frame(true)?;
            return Err(UsageError::InvalidUtf8.into());
        }
        self.flush_frame(true)
    }
}

impl io::Write for MessageWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.write_inner(data).map_err(Error::into_io)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.finished || self.stage.len() == RESERVE {
            return Ok(());
        }
        // A compressed fragment is sent as it is: the receiver inflates what it gets.
        self.flush_frame(false).map_err(Error::into_io)
    }
}

impl Drop for MessageWriter<'_> {
    fn drop(&mut self) {
        // Best effort: end the message so the connection stays in sequence. Call
        // `close()` to see errors.
        let _ = self.finish();
    }
}
