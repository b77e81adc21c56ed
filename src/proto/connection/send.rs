//! The send side: whole messages, messages sent fragment by fragment, messages
//! encoded once for many connections, the zero-copy path for large frames, control
//! frames and the close. (The buffered streaming writer is in `stream.rs`.)
//!
//! Every send checks, before anything is queued, that it may happen now (the
//! lifecycle says the connection is open, the encoder's sequence rules, text is
//! UTF-8): a refused call leaves the stream as it was. Text sent piece by piece is
//! validated across pieces.

use crate::proto::time::Time;
use alloc::{borrow::ToOwned, boxed::Box, vec::Vec};

use super::lifecycle::{Stage, State};
use super::{Connection, Outgoing};
use crate::proto::MessageKind;
use crate::proto::Role;
use crate::proto::close::{encode_close_payload, parse_close_payload};
use crate::proto::close_code::CloseCode;
use crate::proto::encoder::{EncodedHeader, Encoder};
use crate::proto::error::{SendError, UsageError};
use crate::proto::frame::{MAX_CONTROL_PAYLOAD, OpCode};
use crate::proto::utf8::Utf8Validator;

/// Checks that `data` may be sent as a message of `kind` (text must be UTF-8):
/// the check [`Connection::send`] makes, for callers that hand a message on to
/// another thread first.
pub fn check_message(kind: MessageKind, data: &[u8]) -> Result<(), UsageError> {
    if kind == MessageKind::Text && core::str::from_utf8(data).is_err() {
        return Err(UsageError::InvalidUtf8);
    }
    Ok(())
}

/// Checks that `payload` fits a control frame (at most 125 bytes, RFC 6455 §5.5).
pub fn check_control(payload: &[u8]) -> Result<(), UsageError> {
    if payload.len() > MAX_CONTROL_PAYLOAD {
        return Err(UsageError::ControlPayloadTooBig(payload.len()));
    }
    Ok(())
}

/// Checks that a close with `code` and `reason` may be sent (§7.4: an allowed
/// code, a reason of at most 123 bytes; [`CloseCode::NO_STATUS`] for none).
pub fn check_close(code: CloseCode, reason: &str) -> Result<(), UsageError> {
    let close = (code != CloseCode::NO_STATUS).then_some((code, reason));
    encode_close_payload(close, &mut [0u8; MAX_CONTROL_PAYLOAD])?;
    Ok(())
}

/// A data frame accepted by [`Connection::send_direct`], to be written straight from
/// the caller's payload after the bytes already in [`Connection::transmit`]; then
/// [`written`](Self::written) tells the connection how much of it went out.
#[derive(Debug)]
#[must_use = "the frame is part of the stream: write it, then report what was written"]
pub struct DirectFrame<'d> {
    header: EncodedHeader,
    payload: &'d [u8],
}

impl<'d> DirectFrame<'d> {
    /// The frame header.
    pub fn header(&self) -> &[u8] {
        self.header.as_bytes()
    }

    /// The payload, to be written after the header.
    pub fn payload(&self) -> &'d [u8] {
        self.payload
    }

    /// Header plus payload length.
    pub fn len(&self) -> usize {
        self.header.as_bytes().len() + self.payload.len()
    }

    /// True for an empty frame (never: a header is at least two bytes).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// `written` bytes of the frame went out (after everything that was in
    /// [`Connection::transmit`]); the rest is queued in `conn`, so the stream stays
    /// whole.
    pub fn written(self, conn: &mut Connection, written: usize) {
        let h = self.header();
        if written < h.len() {
            let tx = &mut conn.act().tx;
            tx.push_raw(&h[written..]);
            tx.push_raw(self.payload);
        } else if written < self.len() {
            conn.act().tx.push_raw(&self.payload[written - h.len()..]);
        }
    }
}

/// A message encoded once as the single unmasked, uncompressed frame a server sends
/// (gorilla's `PreparedMessage`): [`Connection::send_prepared`] copies it into a
/// server connection's queue without encoding it again; a client (which masks)
/// encodes the payload as [`Connection::send`] does.
///
/// With permessage-deflate, a server connection without context takeover on its
/// sending side starts every message from an empty compressor, so the compressed
/// frame depends only on the compression level and window size: it is compressed
/// by the first such connection and kept here for the others (one compression per
/// setting, whatever the number of connections; `Sync`, so connections on several
/// threads share it). A connection with context takeover compresses with its own
/// context, as it must.
#[derive(Debug)]
pub struct PreparedFrame {
    kind: MessageKind,
    /// Header + payload as a server sends it.
    frame: Vec<u8>,
    header_len: usize,
    #[cfg(feature = "deflate")]
    deflated: SharedDeflate,
}

/// The compressed frames of a [`PreparedFrame`], by compression setting, and a
/// count of compressions made for it.
#[cfg(feature = "deflate")]
#[derive(Debug, Default)]
struct SharedDeflate {
    frames: std::sync::Mutex<Vec<(u32, DeflatedFrame)>>,
    compressions: core::sync::atomic::AtomicU64,
}

/// A compressed whole frame and its header's length.
#[cfg(feature = "deflate")]
#[derive(Debug, Clone)]
struct DeflatedFrame {
    bytes: alloc::sync::Arc<[u8]>,
    header_len: usize,
}

impl Clone for PreparedFrame {
    fn clone(&self) -> Self {
        PreparedFrame {
            kind: self.kind,
            frame: self.frame.clone(),
            header_len: self.header_len,
            #[cfg(feature = "deflate")]
            deflated: SharedDeflate::default(),
        }
    }
}

impl PreparedFrame {
    /// Encodes a message (text must be UTF-8).
    pub fn new(kind: MessageKind, payload: &[u8]) -> Result<PreparedFrame, UsageError> {
        check_message(kind, payload)?;
        let mut frame = Vec::with_capacity(payload.len() + 10);
        Encoder::with_randomness(Role::Server, crate::proto::Randomness::unused()).encode(
            kind.opcode(),
            true,
            payload,
            &mut frame,
        )?;
        Ok(PreparedFrame {
            kind,
            header_len: frame.len() - payload.len(),
            frame,
            #[cfg(feature = "deflate")]
            deflated: SharedDeflate::default(),
        })
    }

    /// The message kind.
    pub fn kind(&self) -> MessageKind {
        self.kind
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        &self.frame[self.header_len..]
    }

    /// How many times this message was compressed for the connections it was sent
    /// to: once per compression setting for connections without context takeover,
    /// once per connection with it (the `deflate` feature; 0 otherwise).
    pub fn compressions(&self) -> u64 {
        #[cfg(feature = "deflate")]
        return self
            .deflated
            .compressions
            .load(core::sync::atomic::Ordering::Relaxed);
        #[cfg(not(feature = "deflate"))]
        0
    }

    #[cfg(feature = "deflate")]
    fn count_compression(&self) {
        self.deflated
            .compressions
            .fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    }

    /// The compressed frame for setting `key`, made by `make` the first time.
    #[cfg(feature = "deflate")]
    fn deflated_frame(
        &self,
        key: u32,
        make: impl FnOnce() -> Result<DeflatedFrame, SendError>,
    ) -> Result<DeflatedFrame, SendError> {
        // A poisoned lock only means another thread panicked mid-lookup; the
        // list itself is always whole.
        let mut frames = self
            .deflated
            .frames
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, f)) = frames.iter().find(|(k, _)| *k == key) {
            return Ok(f.clone());
        }
        let f = make()?;
        self.count_compression();
        frames.push((key, f.clone()));
        Ok(f)
    }
}

impl Connection {
    /// Refuses sends unless the connection is open.
    pub(super) fn check_writable(&self) -> Result<(), SendError> {
        match self.life.state() {
            State::Open => Ok(()),
            State::WriteFailed => Err(SendError::Broken),
            _ => Err(SendError::Closed),
        }
    }

    /// A whole message may start now (no message of ours is open).
    pub(super) fn check_new_message(&self) -> Result<(), SendError> {
        self.check_writable()?;
        if self.in_message() {
            return Err(UsageError::MessageSequence.into());
        }
        Ok(())
    }

    /// The compressor failed: its context no longer matches the peer's, so nothing
    /// more can be sent on this stream.
    #[cfg(feature = "deflate")]
    pub(super) fn compressor_failed(&mut self) -> SendError {
        self.out = None;
        if self.life.is_open() {
            self.life.enter(Stage::WriteFailed);
        }
        SendError::Broken
    }

    #[cfg(feature = "deflate")]
    fn compresses(&self, len: usize) -> bool {
        self.z
            .as_ref()
            .is_some_and(|z| z.write && z.deflater.wants(len))
    }

    #[cfg(not(feature = "deflate"))]
    fn compresses(&self, _len: usize) -> bool {
        false
    }

    /// Queues a whole message as one frame (gorilla's `WriteMessage`), compressed
    /// when permessage-deflate is on and the message is large enough. Text must be
    /// UTF-8 ([`UsageError::InvalidUtf8`] otherwise; nothing is queued).
    pub fn send(&mut self, kind: MessageKind, data: &[u8]) -> Result<(), SendError> {
        self.check_new_message()?;
        check_message(kind, data)?;
        self.queue_message(kind.opcode(), data)
    }

    fn queue_message(&mut self, op: OpCode, data: &[u8]) -> Result<(), SendError> {
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
    pub(super) fn queue_compressed(
        &mut self,
        op: OpCode,
        fin: bool,
        first: bool,
        data: &[u8],
        end: bool,
    ) -> Result<(), SendError> {
        self.enc.check(op, fin, 0)?;
        let setup = self.decoder_setup();
        let Some(z) = self.z.as_mut() else {
            return Err(UsageError::MessageSequence.into());
        };
        let tx = &mut super::active::activate(&mut self.active, setup).tx;
        let mark = tx.reserve();
        let buf = tx.payload_buf();
        let r = z
            .deflater
            .compress(data, buf)
            .and_then(|()| if end { z.deflater.finish(buf) } else { Ok(()) });
        if r.is_err() {
            tx.cancel(mark);
            return Err(self.compressor_failed());
        }
        let len = tx.reserved_len(mark) as u64;
        let h = self.enc.header(op, fin, first, len)?;
        tx.commit(mark, &h);
        Ok(())
    }

    /// Like [`send`](Self::send), but lets the caller write the frame straight from
    /// `data` (no copy into the queue) where that is possible: an uncompressed frame
    /// from a server. Then it returns the frame, which the caller writes after
    /// everything in [`transmit`](Self::transmit), reporting what went out with
    /// [`DirectFrame::written`]. Otherwise (a client masks, a compressed message is
    /// new bytes) the frame is queued as by `send` and `None` is returned.
    pub fn send_direct<'d>(
        &mut self,
        kind: MessageKind,
        data: &'d [u8],
    ) -> Result<Option<DirectFrame<'d>>, SendError> {
        self.check_new_message()?;
        check_message(kind, data)?;
        if self.role() == Role::Client || self.compresses(data.len()) {
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

    /// Sends a message encoded once for many connections: a server queues a copy of
    /// its frame (compressed once per setting where its compressor starts every
    /// message empty, see [`PreparedFrame`]); a client, or a server compressing with
    /// context takeover, encodes the payload as [`send`](Self::send) does.
    pub fn send_prepared(&mut self, msg: &PreparedFrame) -> Result<(), SendError> {
        self.check_new_message()?;
        let op = msg.kind.opcode();
        if self.role() == Role::Client {
            return self.queue_message(op, msg.payload());
        }
        #[cfg(feature = "deflate")]
        if self.compresses(msg.payload().len()) {
            let Some(key) = self.z.as_ref().and_then(|z| z.deflater.shared_key()) else {
                msg.count_compression();
                return self.queue_message(op, msg.payload());
            };
            let f = msg.deflated_frame(key, || self.compress_frame(op, msg.payload()))?;
            // The encoder checks the sequence as for any frame it writes itself.
            self.enc
                .header(op, true, true, (f.bytes.len() - f.header_len) as u64)?;
            self.act().tx.push_raw(&f.bytes);
            return Ok(());
        }
        self.enc
            .header(op, true, false, msg.payload().len() as u64)?;
        self.act().tx.push_raw(&msg.frame);
        Ok(())
    }

    /// A whole server frame (RSV1 set) of `data` compressed by this connection's
    /// compressor, for a [`PreparedFrame`]'s shared copy.
    #[cfg(feature = "deflate")]
    fn compress_frame(&mut self, op: OpCode, data: &[u8]) -> Result<DeflatedFrame, SendError> {
        let mut payload = Vec::with_capacity(data.len() / 2 + 64);
        let Some(z) = self.z.as_mut() else {
            return Err(UsageError::MessageSequence.into());
        };
        if z.deflater.compress_message(data, &mut payload).is_err() {
            return Err(self.compressor_failed());
        }
        let h = Encoder::with_randomness(Role::Server, crate::proto::Randomness::unused()).header(
            op,
            true,
            true,
            payload.len() as u64,
        )?;
        let mut frame = Vec::with_capacity(h.as_bytes().len() + payload.len());
        frame.extend_from_slice(h.as_bytes());
        frame.extend_from_slice(&payload);
        Ok(DeflatedFrame {
            header_len: h.as_bytes().len(),
            bytes: frame.into(),
        })
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
    ) -> Result<(), SendError> {
        self.check_writable()?;
        let (kind, started, compressed, mut utf8) = match self.out.as_deref() {
            Some(o) if o.buffered => return Err(UsageError::MessageSequence.into()),
            Some(o) => (o.kind, o.started, o.compressed, o.utf8.clone()),
            None if self.enc.in_message() => return Err(UsageError::MessageSequence.into()),
            None => (
                kind,
                false,
                self.write_compression(),
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
        if compressed {
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
                compressed,
            })
        });
        Ok(())
    }

    // ---- control frames and the close ----

    /// Queues a ping (at most 125 bytes).
    pub fn ping(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.queue_control(OpCode::Ping, data)
    }

    /// Queues a pong (at most 125 bytes); an unsolicited pong is a heartbeat.
    pub fn pong(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.queue_control(OpCode::Pong, data)
    }

    fn queue_control(&mut self, op: OpCode, payload: &[u8]) -> Result<(), SendError> {
        check_control(payload)?;
        self.check_writable()?;
        let h = self.enc.header(op, true, false, payload.len() as u64)?;
        self.act().tx.push_frame(&h, payload);
        Ok(())
    }

    /// Queues a ping, pong or close frame with a raw payload (gorilla's
    /// `WriteControl`). A close payload must be one we would accept from a peer
    /// (empty, or an allowed code and a UTF-8 reason); it starts the closing
    /// handshake like [`close`](Self::close), but a second close is refused with
    /// [`SendError::Closed`].
    #[cfg_attr(not(feature = "std"), allow(dead_code))] // used by the IO layers
    pub(crate) fn send_control(
        &mut self,
        now: impl Into<Time>,
        op: OpCode,
        payload: &[u8],
    ) -> Result<(), SendError> {
        let now = now.into();
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
                if !self.life.is_open() && !self.echo_replaceable() {
                    return Err(self.check_writable().err().unwrap_or(SendError::Closed));
                }
                let reason = reason.to_owned();
                self.close(now, code, &reason)
            }
            _ => Err(UsageError::NotControl.into()),
        }
    }

    /// Our echo of the peer's close is still queued, untransmitted: a close of ours
    /// may replace it.
    fn echo_replaceable(&self) -> bool {
        let Some(mark) = self.life.ending().and_then(|e| e.echo_at) else {
            return false;
        };
        self.tx().is_some_and(|tx| tx.untransmitted(mark))
    }

    /// Starts the closing handshake with `code` and `reason`
    /// ([`CloseCode::NO_STATUS`] sends an empty close payload). Idempotent: once a
    /// close was sent this does nothing, except that it replaces our echo of the
    /// peer's close while that is still queued. The connection then waits up to
    /// `close_timeout` for the peer's close.
    pub fn close(
        &mut self,
        now: impl Into<Time>,
        code: CloseCode,
        reason: &str,
    ) -> Result<(), SendError> {
        let now = now.into();
        let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
        let close = (code != CloseCode::NO_STATUS).then_some((code, reason));
        let n = encode_close_payload(close, &mut payload)?;
        if self.echo_replaceable()
            && let Some(mark) = self.life.ending().and_then(|e| e.echo_at)
        {
            let h = self.enc.header(OpCode::Close, true, false, n as u64)?;
            let tx = &mut self.act().tx;
            tx.truncate(mark);
            tx.push_frame(&h, &payload[..n]);
            return Ok(());
        }
        match self.life.state() {
            State::Open => {}
            State::WriteFailed => return Err(SendError::Broken),
            _ => return Ok(()),
        }
        let h = self.enc.header(OpCode::Close, true, false, n as u64)?;
        self.act().tx.push_frame(&h, &payload[..n]);
        let deadline = now + self.config.close_timeout;
        let e = self.life.enter(Stage::CloseSent);
        e.deadline = Some(deadline);
        e.end = Some((code, reason.to_owned()));
        self.out = None;
        Ok(())
    }

    /// Queues a close frame without touching the lifecycle (the echo, a failure).
    pub(super) fn queue_close(
        &mut self,
        close: Option<(CloseCode, &str)>,
    ) -> Result<(), SendError> {
        let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
        let n = encode_close_payload(close, &mut payload)?;
        let h = self.enc.header(OpCode::Close, true, false, n as u64)?;
        self.act().tx.push_frame(&h, &payload[..n]);
        Ok(())
    }
}
