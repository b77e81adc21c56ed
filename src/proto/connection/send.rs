//! The send side: whole messages, messages sent fragment by fragment, the buffered
//! streaming writer, control frames and the close.
//!
//! Every send checks, before anything is queued, that it may happen now (the
//! encoder's sequence rules, text is UTF-8, no close sent): a refused call leaves
//! the stream as it was. Text sent piece by piece is validated across pieces; the
//! streaming writer ends its fragments on code point boundaries, so what goes on the
//! wire stays valid UTF-8 even when the caller stops inside a code point.

use std::time::Instant;

use super::{Connection, DirectFrame, Outgoing, State};
use crate::error::{Error, UsageError};
use crate::proto::MessageKind;
use crate::proto::close::{CloseCode, encode_close_payload, parse_close_payload};
use crate::proto::frame::{MAX_CONTROL_PAYLOAD, OpCode};
use crate::proto::utf8::{Utf8Validator, incomplete_tail_len};

/// Checks that `data` may be sent as a message of `kind` (text must be UTF-8):
/// the check [`Connection::send`] makes, for callers that hand a message on to
/// another thread first.
pub fn check_message(kind: MessageKind, data: &[u8]) -> Result<(), Error> {
    if kind == MessageKind::Text && std::str::from_utf8(data).is_err() {
        return Err(UsageError::InvalidUtf8.into());
    }
    Ok(())
}

/// Checks that `payload` fits a control frame (at most 125 bytes, RFC 6455 §5.5).
pub fn check_control(payload: &[u8]) -> Result<(), Error> {
    if payload.len() > MAX_CONTROL_PAYLOAD {
        return Err(UsageError::ControlPayloadTooBig(payload.len()).into());
    }
    Ok(())
}

/// Checks that a close with `code` and `reason` may be sent (§7.4: an allowed
/// code, a reason of at most 123 bytes; [`CloseCode::NO_STATUS`] for none).
pub fn check_close(code: CloseCode, reason: &str) -> Result<(), Error> {
    let close = (code != CloseCode::NO_STATUS).then_some((code, reason));
    encode_close_payload(close, &mut [0u8; MAX_CONTROL_PAYLOAD])?;
    Ok(())
}

impl Connection {
    /// Refuses sends once the stream is broken or the connection is closing.
    fn check_writable(&self) -> Result<(), Error> {
        if self.broken {
            return Err(UsageError::BrokenWriter.into());
        }
        if self.enc.is_close_sent() || self.state != State::Open {
            return Err(Error::AlreadyClosed);
        }
        Ok(())
    }

    /// A whole message may start now (no message of ours is open).
    fn check_new_message(&self) -> Result<(), Error> {
        self.check_writable()?;
        if self.in_message() {
            return Err(UsageError::MessageSequence.into());
        }
        Ok(())
    }

    #[cfg(feature = "deflate")]
    fn compresses(&self, len: usize) -> bool {
        self.z.as_ref().is_some_and(|z| z.deflater.wants(len))
    }

    #[cfg(not(feature = "deflate"))]
    fn compresses(&self, _len: usize) -> bool {
        false
    }

    /// Queues a whole message as one frame (gorilla's `WriteMessage`), compressed
    /// when permessage-deflate is on and the message is large enough. Text must be
    /// UTF-8 ([`UsageError::InvalidUtf8`] otherwise; nothing is queued).
    pub fn send(&mut self, kind: MessageKind, data: &[u8]) -> Result<(), Error> {
        self.check_new_message()?;
        check_message(kind, data)?;
        self.queue_message(kind.opcode(), data)
    }

    fn queue_message(&mut self, op: OpCode, data: &[u8]) -> Result<(), Error> {
        #[cfg(feature = "deflate")]
        if self.compresses(data.len()) {
            return self.queue_compressed(op, true, true, data, true);
        }
        let h = self.enc.header(op, true, false, data.len() as u64)?;
        self.act().tx.push_frame(&h, data);
        Ok(())
    }

    /// Compresses `data` into the message's deflate stream and queues it as one
    /// frame (RSV1 on the first frame of the message; `end` ends the message).
    #[cfg(feature = "deflate")]
    fn queue_compressed(
        &mut self,
        op: OpCode,
        fin: bool,
        first: bool,
        data: &[u8],
        end: bool,
    ) -> Result<(), Error> {
        self.enc.check(op, fin, 0)?;
        let setup = self.decoder_setup();
        let Some(z) = self.z.as_mut() else {
            return Err(UsageError::MessageSequence.into());
        };
        let tx = &mut super::activate(&mut self.active, setup).tx;
        let mark = tx.reserve();
        let buf = tx.payload_buf();
        let r = z
            .deflater
            .compress(data, buf)
            .and_then(|()| if end { z.deflater.finish(buf) } else { Ok(()) });
        if let Err(e) = r {
            // The compressor's context no longer matches the peer's: nothing more
            // can be sent on this stream.
            tx.cancel(mark);
            self.broken = true;
            return Err(e);
        }
        let len = tx.reserved_len(mark) as u64;
        let h = self.enc.header(op, fin, first, len)?;
        tx.commit(mark, &h);
        Ok(())
    }

    /// Like [`send`](Self::send), but lets the caller write the frame straight from
    /// `data` (no copy into the queue) where that is possible: an uncompressed frame
    /// from a server. Then it returns the frame, which the caller must write after
    /// everything in [`transmit`](Self::transmit), and hand back any part the
    /// transport did not take with [`queue_unsent`](Self::queue_unsent). Otherwise
    /// (a client masks, a compressed message is new bytes) the frame is queued as by
    /// `send` and `None` is returned.
    pub fn send_direct<'d>(
        &mut self,
        kind: MessageKind,
        data: &'d [u8],
    ) -> Result<Option<DirectFrame<'d>>, Error> {
        self.check_new_message()?;
        check_message(kind, data)?;
        if self.role() == crate::proto::Role::Client || self.compresses(data.len()) {
            self.queue_message(kind.opcode(), data)?;
            return Ok(None);
        }
        let header = self
            .enc
            .header(kind.opcode(), true, false, data.len() as u64)?;
        Ok(Some(DirectFrame {
            header,
            payload: data,
        }))
    }

    /// Queues the part of a [`DirectFrame`] the transport did not take (`written`
    /// bytes of it went out), so the stream stays whole.
    pub fn queue_unsent(&mut self, frame: &DirectFrame<'_>, written: usize) {
        let h = frame.header();
        if written < h.len() {
            let tx = &mut self.act().tx;
            tx.push_raw(&h[written..]);
            tx.push_raw(frame.payload);
        } else if written < frame.len() {
            self.act().tx.push_raw(&frame.payload[written - h.len()..]);
        }
    }

    /// Sends a message whose server frame was encoded once for many connections
    /// (gorilla's `PreparedMessage`): a server without compression queues a copy of
    /// `server_frame`; a client or a compressing connection encodes `payload` as
    /// [`send`](Self::send) does. `server_frame` must be the unmasked, uncompressed
    /// single frame of `payload`.
    pub fn send_prepared(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        server_frame: &[u8],
    ) -> Result<(), Error> {
        self.check_new_message()?;
        if self.role() == crate::proto::Role::Client || self.is_compressed() {
            check_message(kind, payload)?;
            return self.queue_message(kind.opcode(), payload);
        }
        self.enc
            .header(kind.opcode(), true, false, payload.len() as u64)?;
        self.act().tx.push_raw(server_frame);
        Ok(())
    }

    /// Queues one fragment of a message sent piece by piece: the first call starts a
    /// message of `kind` (later calls keep its kind), `fin` ends it. Fragment
    /// boundaries are the caller's. Text is validated across fragments: bytes that
    /// cannot be UTF-8, or a final fragment that ends inside a code point, are refused
    /// with [`UsageError::InvalidUtf8`] and nothing is queued. With permessage-deflate
    /// each fragment is compressed into the message's deflate stream.
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) -> Result<(), Error> {
        self.check_writable()?;
        let (kind, started, mut utf8) = match self.out.as_deref() {
            Some(o) if o.buffered => return Err(UsageError::MessageSequence.into()),
            Some(o) => (o.kind, o.started, o.utf8.clone()),
            None if self.enc.in_message() => return Err(UsageError::MessageSequence.into()),
            None => (
                kind,
                false,
                (kind == MessageKind::Text).then(Utf8Validator::new),
            ),
        };
        if let Some(v) = utf8.as_mut()
            && (v.feed(data).is_err() || (fin && !v.is_complete()))
        {
            return Err(UsageError::InvalidUtf8.into());
        }
        let op = if started {
            OpCode::Continuation
        } else {
            kind.opcode()
        };
        if self.is_compressed() {
            #[cfg(feature = "deflate")]
            self.queue_compressed(op, fin, !started, data, fin)?;
        } else {
            let h = self.enc.header(op, fin, false, data.len() as u64)?;
            self.act().tx.push_frame(&h, data);
        }
        self.out = (!fin).then(|| {
            Box::new(Outgoing {
                kind,
                started: true,
                buffered: false,
                utf8,
                stage: Vec::new(),
                ztail: Vec::new(),
            })
        });
        Ok(())
    }

    // ---- the buffered streaming writer (gorilla's NextWriter) ----

    /// Starts a message written as a stream (gorilla's `NextWriter`): bytes given to
    /// [`stream_write`](Self::stream_write) go out in fragments of
    /// [`fragment_size`](super::ConnectionConfig::fragment_size) as they fill,
    /// [`stream_end`](Self::stream_end) sends the final frame. Messages cannot be
    /// sent while it is open; control frames can.
    pub fn stream_begin(&mut self, kind: MessageKind) -> Result<(), Error> {
        self.check_new_message()?;
        self.out = Some(Box::new(Outgoing {
            kind,
            started: false,
            buffered: true,
            utf8: (kind == MessageKind::Text).then(Utf8Validator::new),
            stage: Vec::new(),
            ztail: Vec::new(),
        }));
        Ok(())
    }

    /// Writes bytes of the open streamed message. A full fragment goes out only once
    /// more bytes follow, so the last full one becomes the final frame (no empty
    /// trailing frame). Text is checked as it is written: an invalid write is
    /// refused whole ([`UsageError::InvalidUtf8`]).
    pub fn stream_write(&mut self, data: &[u8]) -> Result<(), Error> {
        self.check_writable()?;
        let size = self.config.fragment_size.max(4);
        let compress = self.is_compressed();
        let Some(o) = self.out.as_deref_mut().filter(|o| o.buffered) else {
            return Err(UsageError::MessageSequence.into());
        };
        if let Some(v) = o.utf8.as_mut() {
            v.feed(data).map_err(|_| UsageError::InvalidUtf8)?;
        }
        if compress {
            #[cfg(feature = "deflate")]
            return self.stream_compress(data, size);
        }
        let mut rest = data;
        while !rest.is_empty() {
            let Some(o) = self.out.as_deref_mut() else {
                break;
            };
            if o.stage.len() >= size {
                self.emit(false)?;
                continue;
            }
            if o.stage.capacity() == 0 {
                o.stage.reserve_exact(size);
            }
            let n = (size - o.stage.len()).min(rest.len());
            o.stage.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
        }
        Ok(())
    }

    /// Compresses written bytes into the stage; full stages go out as fragments. An
    /// incomplete code point at the end of text stays uncompressed until completed.
    #[cfg(feature = "deflate")]
    fn stream_compress(&mut self, data: &[u8], size: usize) -> Result<(), Error> {
        let (Some(o), Some(z)) = (self.out.as_deref_mut(), self.z.as_mut()) else {
            return Err(UsageError::MessageSequence.into());
        };
        let joined;
        let mut input = data;
        if !o.ztail.is_empty() {
            o.ztail.extend_from_slice(data);
            joined = std::mem::take(&mut o.ztail);
            input = &joined;
        }
        let keep = if o.utf8.is_some() {
            incomplete_tail_len(input)
        } else {
            0
        };
        let (now, later) = input.split_at(input.len() - keep);
        if let Err(e) = z.deflater.compress(now, &mut o.stage) {
            self.broken = true;
            return Err(e);
        }
        o.ztail.extend_from_slice(later);
        if o.stage.len() >= size {
            self.emit(false)?;
        }
        Ok(())
    }

    /// Sends what the streaming writer holds as a fragment (a compressed fragment
    /// goes as it is: the receiver inflates what it gets).
    pub fn stream_flush(&mut self) -> Result<(), Error> {
        self.check_writable()?;
        match self.out.as_deref() {
            Some(o) if o.buffered && !o.stage.is_empty() => self.emit(false),
            Some(o) if o.buffered => Ok(()),
            _ => Err(UsageError::MessageSequence.into()),
        }
    }

    /// Ends the streamed message with its final frame. Text that stopped inside a
    /// code point has the incomplete bytes dropped (the wire stays valid) and
    /// returns [`UsageError::InvalidUtf8`].
    pub fn stream_end(&mut self) -> Result<(), Error> {
        self.check_writable()?;
        let compress = self.is_compressed();
        let Some(o) = self.out.as_deref_mut().filter(|o| o.buffered) else {
            return Err(UsageError::MessageSequence.into());
        };
        let bad = o.utf8.as_mut().is_some_and(|v| v.finish().is_err());
        if compress {
            #[cfg(feature = "deflate")]
            {
                // An incomplete code point held back uncompressed is dropped, never sent.
                o.ztail.clear();
                let r = match self.z.as_mut() {
                    Some(z) => z.deflater.finish(&mut o.stage),
                    None => Ok(()),
                };
                if let Err(e) = r {
                    self.broken = true;
                    return Err(e);
                }
            }
        } else if bad {
            let tail = incomplete_tail_len(&o.stage);
            o.stage.truncate(o.stage.len() - tail);
        }
        self.emit(true)?;
        if bad {
            return Err(UsageError::InvalidUtf8.into());
        }
        Ok(())
    }

    /// Queues the stage as one fragment of the streamed message.
    fn emit(&mut self, fin: bool) -> Result<(), Error> {
        let compress = self.is_compressed();
        let setup = self.decoder_setup();
        let Some(o) = self.out.as_deref_mut() else {
            return Err(UsageError::MessageSequence.into());
        };
        let op = if o.started {
            OpCode::Continuation
        } else {
            o.kind.opcode()
        };
        // Text fragments end on a code point: an incomplete one stays staged for the
        // next fragment, so the message can still end validly.
        let tail = if o.utf8.is_some() && !fin && !compress {
            incomplete_tail_len(&o.stage)
        } else {
            0
        };
        let end = o.stage.len() - tail;
        let h = self
            .enc
            .header(op, fin, compress && !o.started, end as u64)?;
        super::activate(&mut self.active, setup)
            .tx
            .push_frame(&h, &o.stage[..end]);
        o.stage.drain(..end);
        o.started = true;
        if fin {
            self.out = None;
        }
        Ok(())
    }

    // ---- control frames and the close ----

    /// Queues a ping (at most 125 bytes).
    pub fn ping(&mut self, data: &[u8]) -> Result<(), Error> {
        self.queue_control(OpCode::Ping, data)
    }

    /// Queues a pong (at most 125 bytes); an unsolicited pong is a heartbeat.
    pub fn pong(&mut self, data: &[u8]) -> Result<(), Error> {
        self.queue_control(OpCode::Pong, data)
    }

    fn queue_control(&mut self, op: OpCode, payload: &[u8]) -> Result<(), Error> {
        if self.broken {
            return Err(UsageError::BrokenWriter.into());
        }
        check_control(payload)?;
        if matches!(self.state, State::Done) {
            return Err(Error::AlreadyClosed);
        }
        let h = self.enc.header(op, true, false, payload.len() as u64)?;
        self.act().tx.push_frame(&h, payload);
        Ok(())
    }

    /// Queues a ping, pong or close frame with a raw payload (gorilla's
    /// `WriteControl`). A close payload must be one we would accept from a peer
    /// (empty, or an allowed code and a UTF-8 reason); it starts the closing
    /// handshake like [`close`](Self::close), but a second close is refused with
    /// [`Error::AlreadyClosed`].
    pub fn send_control(&mut self, now: Instant, op: OpCode, payload: &[u8]) -> Result<(), Error> {
        match op {
            OpCode::Ping | OpCode::Pong => self.queue_control(op, payload),
            OpCode::Close => {
                check_control(payload)?;
                let (code, reason) = match parse_close_payload(payload) {
                    Ok(c) => c.unwrap_or((CloseCode::NO_STATUS, "")),
                    Err(_) => {
                        // A close payload we would refuse from a peer is refused from
                        // the caller too.
                        let code = payload
                            .get(..2)
                            .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
                        return Err(UsageError::InvalidCloseCode(code).into());
                    }
                };
                if self.enc.is_close_sent() && !self.echo_replaceable() {
                    return Err(Error::AlreadyClosed);
                }
                let reason = reason.to_owned();
                self.close(now, code, &reason)
            }
            _ => Err(UsageError::NotControl.into()),
        }
    }

    fn echo_replaceable(&self) -> bool {
        self.active
            .as_deref()
            .is_some_and(|a| a.echo_at.is_some_and(|m| a.tx.untransmitted(m)))
    }

    /// Starts the closing handshake with `code` and `reason`
    /// ([`CloseCode::NO_STATUS`] sends an empty close payload). Idempotent: once a
    /// close was sent this does nothing, except that it replaces our echo of the
    /// peer's close while that is still queued. The connection then waits up to
    /// `close_timeout` for the peer's close.
    pub fn close(&mut self, now: Instant, code: CloseCode, reason: &str) -> Result<(), Error> {
        let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
        let close = (code != CloseCode::NO_STATUS).then_some((code, reason));
        let n = encode_close_payload(close, &mut payload)?;
        if let Some(mark) = self.echo_at().filter(|_| self.echo_replaceable()) {
            let h = self.enc.replacement_close_header(n as u64);
            let tx = &mut self.act().tx;
            tx.truncate(mark);
            tx.push_frame(&h, &payload[..n]);
            return Ok(());
        }
        if self.enc.is_close_sent() || self.state != State::Open {
            return Ok(());
        }
        if self.broken {
            return Err(UsageError::BrokenWriter.into());
        }
        let h = self.enc.header(OpCode::Close, true, false, n as u64)?;
        let deadline = now + self.config.close_timeout;
        let a = self.act();
        a.tx.push_frame(&h, &payload[..n]);
        a.close_deadline = Some(deadline);
        self.state = State::CloseSent;
        self.set_end(code, reason, false);
        self.out = None;
        Ok(())
    }

    /// Queues a close frame without touching the state (the echo, a failure).
    pub(super) fn queue_close(&mut self, close: Option<(CloseCode, &str)>) -> Result<(), Error> {
        let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
        let n = encode_close_payload(close, &mut payload)?;
        let h = self.enc.header(OpCode::Close, true, false, n as u64)?;
        self.act().tx.push_frame(&h, &payload[..n]);
        Ok(())
    }
}
