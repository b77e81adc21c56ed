//! The read side of the connection state machine: bytes in, [`FrameEvent`]s out.
//!
//! Every receive rule of RFC 6455 lives here once: masking direction, RSV bits,
//! opcodes, control frame size and fragmentation, continuation order, incremental
//! UTF-8 of text, the read limit, close payload validity, and silence after a close.
//! The caller owns the buffer; payloads are unmasked in place and handed out as
//! borrowed slices. No socket, no clock, no allocation.

use super::error::{ProtocolError, RecvError};
use crate::proto::close::parse_close_payload;
use crate::proto::close_code::CloseCode;
use crate::proto::frame::{FrameHeader, MAX_CONTROL_PAYLOAD, OpCode, RSV1};
use crate::proto::mask::apply_mask;
use crate::proto::utf8::Utf8Validator;
use crate::proto::{MessageKind, Role};

/// Default read limit: the largest message accepted (64 MiB).
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 64 << 20;

/// Default largest frame payload delivered whole rather than streamed (64 KiB).
pub const DEFAULT_WHOLE_FRAME_MAX: usize = 64 << 10;

/// A piece of a data message.
#[derive(Debug, PartialEq, Eq)]
pub struct DataChunk<'a> {
    /// Text or binary (the kind of the message this piece belongs to).
    pub kind: MessageKind,
    /// The unmasked payload bytes of this piece.
    pub payload: &'a [u8],
    /// This is the first piece of a message.
    pub first: bool,
    /// This is the last piece of a message: the message is complete.
    pub last: bool,
    /// The message has RSV1 set (permessage-deflate): `payload` is compressed and,
    /// for text, not yet UTF-8 validated.
    pub compressed: bool,
}

/// What the decoder found in the input.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameEvent<'a> {
    /// A piece of a text or binary message. A message that arrived in one frame
    /// whose payload fits the whole-frame limit is one piece with `first && last`.
    Data(DataChunk<'a>),
    /// A ping with its application data (≤ 125 bytes).
    Ping(&'a [u8]),
    /// A pong with its application data (≤ 125 bytes).
    Pong(&'a [u8]),
    /// A close frame: code and reason, or `None` for an empty close payload.
    Close(Option<(CloseCode, &'a str)>),
}

#[derive(Debug, Clone, Copy)]
struct Message {
    kind: MessageKind,
    size: u64,
    started: bool,
    compressed: bool,
}

#[derive(Debug, Clone, Copy)]
struct Frame {
    opcode: OpCode,
    fin: bool,
    mask: Option<[u8; 4]>,
    len: u64,
    /// Payload bytes already handed out (streamed frames only).
    done: u64,
    /// Whole-frame mode: bytes at the start of the caller's buffer already unmasked
    /// and validated on an earlier call (fail-fast UTF-8 before the frame completes).
    prepared: usize,
    whole: bool,
}

/// The receive state machine for one connection, in one role.
///
/// ```
/// use silverback::proto::{Decoder, Encoder, FrameEvent, OpCode, Role};
///
/// // A client frame (masked), decoded by the server side.
/// let mut wire = Vec::new();
/// Encoder::new(Role::Client).encode(OpCode::Text, true, b"hello", &mut wire)?;
/// let mut dec = Decoder::new(Role::Server);
/// let len = wire.len();
/// let (used, event) = dec.decode(&mut wire)?; // unmasks in place
/// assert_eq!(used, len);
/// match event {
///     Some(FrameEvent::Data(chunk)) => assert_eq!((chunk.payload, chunk.first, chunk.last), (&b"hello"[..], true, true)),
///     other => panic!("{other:?}"),
/// }
/// // Input is consumed as it comes: a partial frame asks for more.
/// let mut half = vec![0x81, 0x85];
/// assert!(matches!(dec.decode(&mut half)?, (0, None)));
/// # Ok::<(), silverback::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Decoder {
    role: Role,
    max_message_size: u64,
    whole_frame_max: usize,
    allowed_rsv: u8,
    /// A violation was found: every later call returns it again (the stream's
    /// framing is lost).
    failed: Option<RecvError>,
    msg: Option<Message>,
    frame: Option<Frame>,
    utf8: Utf8Validator,
}

impl Decoder {
    /// A decoder for an endpoint playing `role` (a server decodes client frames,
    /// which must be masked; a client decodes server frames, which must not be).
    pub fn new(role: Role) -> Self {
        Decoder {
            role,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            whole_frame_max: DEFAULT_WHOLE_FRAME_MAX,
            allowed_rsv: 0,
            failed: None,
            msg: None,
            frame: None,
            utf8: Utf8Validator::new(),
        }
    }

    /// Payload bytes still to come of the data frame being streamed (a frame larger
    /// than the whole-frame maximum), or 0. A reader can use it to size its next read.
    pub fn streaming_remaining(&self) -> u64 {
        match self.frame {
            Some(f) if !f.whole && !f.opcode.is_control() => f.len - f.done,
            _ => 0,
        }
    }

    /// Sets the read limit: a message whose total payload would exceed `limit` bytes
    /// fails with [`RecvError::MessageTooBig`] (close 1009) as soon as a frame header
    /// announces it, before its payload is read. Default: 64 MiB. A compressed
    /// message may take up to zlib's `compressBound(limit)` bytes on the wire (an
    /// incompressible message of `limit` bytes grows by a few bytes per 16 KiB); its
    /// decompressed size is held to `limit` by the inflater.
    pub fn set_max_message_size(&mut self, limit: u64) {
        self.max_message_size = limit;
    }

    /// The read limit.
    pub fn max_message_size(&self) -> u64 {
        self.max_message_size
    }

    /// Data frames with a payload up to `n` bytes are delivered whole (one borrowed
    /// slice, the caller keeps unconsumed bytes until the frame completes); larger
    /// frames are streamed piece by piece as bytes arrive. A caller whose buffer holds
    /// `B` bytes must set at most `B`. Default: 64 KiB.
    pub fn set_whole_frame_max(&mut self, n: usize) {
        self.whole_frame_max = n;
    }

    /// Allows RSV1 on the first frame of a data message (permessage-deflate).
    pub fn set_rsv1_allowed(&mut self, allowed: bool) {
        self.allowed_rsv = if allowed { RSV1 } else { 0 };
    }

    /// The role this decoder plays.
    pub fn role(&self) -> Role {
        self.role
    }

    /// True while a fragmented message is in progress.
    pub fn in_message(&self) -> bool {
        self.msg.is_some()
    }

    /// True while a frame's header has been read and its payload has not all
    /// arrived (wsprobe's fuzz model).
    #[cfg(feature = "probe")]
    pub(crate) fn mid_frame(&self) -> bool {
        self.frame.is_some()
    }

    /// True between frames of no message: nothing partly received, not failed.
    pub(crate) fn at_rest(&self) -> bool {
        self.failed.is_none() && self.msg.is_none() && self.frame.is_none()
    }

    /// True once the peer has violated the protocol.
    pub fn is_failed(&self) -> bool {
        self.failed.is_some()
    }

    fn fail(&mut self, f: RecvError) -> RecvError {
        self.failed = Some(f);
        self.frame = None;
        self.msg = None;
        f
    }

    /// Decodes the next event from `buf`.
    ///
    /// Returns `(consumed, event)`: the caller drops `buf[..consumed]` and passes the
    /// rest, unchanged and followed by any new bytes, to the next call (bytes are
    /// unmasked in place, so they must not be re-read from a copy). `None` means more
    /// input is needed; `consumed` may be non-zero even then (a header was absorbed).
    /// After an error every call returns the same error. A close frame is a frame
    /// like the others: what may follow it is the connection's rule, not the
    /// decoder's ([`Connection`](super::Connection) discards it).
    pub fn decode<'a>(
        &mut self,
        buf: &'a mut [u8],
    ) -> Result<(usize, Option<FrameEvent<'a>>), RecvError> {
        if let Some(f) = self.failed {
            return Err(f);
        }
        let mut consumed = 0;
        let frame = match self.frame {
            Some(f) => f,
            None => match FrameHeader::decode(buf) {
                Ok(None) => return Ok((0, None)),
                Ok(Some((header, n))) => {
                    consumed = n;
                    match self.begin_frame(header) {
                        Ok(f) => f,
                        Err(e) => return Err(self.fail(e)),
                    }
                }
                Err(e) => return Err(self.fail(RecvError::Protocol(e))),
            },
        };
        let avail = &mut buf[consumed..];
        let remaining = frame.len - frame.done;
        if frame.opcode.is_control() {
            // ≤ 125 bytes: wait until the whole payload is here.
            let n = remaining as usize;
            if avail.len() < n {
                self.frame = Some(frame);
                return Ok((consumed, None));
            }
            self.frame = None;
            let payload = &mut avail[..n];
            if let Some(key) = frame.mask {
                apply_mask(payload, key, 0);
            }
            return self
                .control(frame.opcode, payload)
                .map(|ev| (consumed + n, Some(ev)));
        }
        if frame.whole {
            let n = remaining as usize;
            let ready = avail.len().min(n);
            // Bytes prepared on an earlier call are still at the front of `avail`
            // (the caller's contract); only the new ones are unmasked and validated.
            let Some(fresh) = avail.get_mut(frame.prepared..ready) else {
                self.frame = Some(frame);
                return Ok((consumed, None));
            };
            if let Err(e) = self.prepare(&frame, fresh, frame.prepared) {
                return Err(self.fail(e));
            }
            if ready < n {
                self.frame = Some(Frame {
                    prepared: ready,
                    ..frame
                });
                return Ok((consumed, None));
            }
            self.frame = None;
            let payload = &avail[..n];
            return self
                .data(payload, frame.fin)
                .map(|ev| (consumed + n, Some(ev)));
        }
        // Streamed frame: hand out whatever part of the payload is here.
        let take = avail
            .len()
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        if take == 0 {
            self.frame = Some(frame);
            return Ok((consumed, None));
        }
        let offset = frame.done as usize & 3;
        if let Err(e) = self.prepare(&frame, &mut avail[..take], offset) {
            return Err(self.fail(e));
        }
        let done = frame.done + take as u64;
        let frame_end = done == frame.len;
        self.frame = if frame_end {
            None
        } else {
            Some(Frame { done, ..frame })
        };
        let payload = &avail[..take];
        self.data(payload, frame.fin && frame_end)
            .map(|ev| (consumed + take, Some(ev)))
    }

    /// Checks a new frame header against the role, extensions and message state.
    fn begin_frame(&mut self, h: FrameHeader) -> Result<Frame, RecvError> {
        use ProtocolError as P;
        let first_data_frame = matches!(h.opcode, OpCode::Text | OpCode::Binary);
        let allowed = if first_data_frame {
            self.allowed_rsv
        } else {
            0
        };
        if h.rsv & !allowed != 0 {
            return Err(RecvError::Protocol(P::ReservedBitsSet(h.rsv)));
        }
        match (self.role, h.mask.is_some()) {
            (Role::Server, false) => return Err(RecvError::Protocol(P::UnmaskedFrameFromClient)),
            (Role::Client, true) => return Err(RecvError::Protocol(P::MaskedFrameFromServer)),
            _ => {}
        }
        let frame = Frame {
            opcode: h.opcode,
            fin: h.fin,
            mask: h.mask,
            len: h.payload_len,
            done: 0,
            prepared: 0,
            whole: h.payload_len <= self.whole_frame_max as u64,
        };
        if h.opcode.is_control() {
            // RFC 6455 §5.5: control frames MUST NOT be fragmented and carry ≤ 125 bytes.
            if !h.fin {
                return Err(RecvError::Protocol(P::FragmentedControlFrame));
            }
            if h.payload_len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(RecvError::Protocol(P::ControlFrameTooBig));
            }
            return Ok(frame);
        }
        // RFC 6455 §5.4: a message is one start frame and then continuations only.
        let msg = match (h.opcode, self.msg) {
            (OpCode::Continuation, None) => {
                return Err(RecvError::Protocol(P::UnexpectedContinuation));
            }
            (OpCode::Continuation, Some(m)) => m,
            (_, Some(_)) => return Err(RecvError::Protocol(P::ExpectedContinuation)),
            (op, None) => {
                self.utf8.reset();
                Message {
                    kind: if op == OpCode::Text {
                        MessageKind::Text
                    } else {
                        MessageKind::Binary
                    },
                    size: 0,
                    started: false,
                    compressed: h.rsv & RSV1 != 0,
                }
            }
        };
        let size = msg.size.saturating_add(h.payload_len);
        // A compressed message is limited by its decompressed size (the inflater
        // enforces that exactly); its wire size may pass the limit by deflate's
        // worst-case overhead on incompressible data, never by more.
        let wire_limit = if msg.compressed {
            compressed_bound(self.max_message_size)
        } else {
            self.max_message_size
        };
        if size > wire_limit {
            return Err(RecvError::MessageTooBig {
                limit: self.max_message_size,
            });
        }
        self.msg = Some(Message { size, ..msg });
        Ok(frame)
    }

    /// Unmasks `bytes` (at payload offset `offset`) and validates text incrementally.
    fn prepare(&mut self, frame: &Frame, bytes: &mut [u8], offset: usize) -> Result<(), RecvError> {
        if bytes.is_empty() {
            return Ok(());
        }
        if let Some(key) = frame.mask {
            apply_mask(bytes, key, offset);
        }
        match self.msg {
            Some(Message {
                kind: MessageKind::Text,
                compressed: false,
                ..
            }) => self
                .utf8
                .feed(bytes)
                .map_err(|_| RecvError::Protocol(ProtocolError::InvalidUtf8)),
            _ => Ok(()),
        }
    }

    /// Builds the data event for a prepared piece; `last` ends the message.
    fn data<'a>(&mut self, payload: &'a [u8], last: bool) -> Result<FrameEvent<'a>, RecvError> {
        let Some(msg) = self.msg.as_mut() else {
            unreachable!("data frame without message state");
        };
        let first = !msg.started;
        msg.started = true;
        let msg = *msg;
        if last {
            self.msg = None;
            if msg.kind == MessageKind::Text && !msg.compressed && self.utf8.finish().is_err() {
                return Err(self.fail(RecvError::Protocol(ProtocolError::InvalidUtf8)));
            }
        }
        Ok(FrameEvent::Data(DataChunk {
            kind: msg.kind,
            payload,
            first,
            last,
            compressed: msg.compressed,
        }))
    }

    fn control<'a>(
        &mut self,
        opcode: OpCode,
        payload: &'a [u8],
    ) -> Result<FrameEvent<'a>, RecvError> {
        match opcode {
            OpCode::Ping => Ok(FrameEvent::Ping(payload)),
            OpCode::Pong => Ok(FrameEvent::Pong(payload)),
            _ => match parse_close_payload(payload) {
                Ok(close) => Ok(FrameEvent::Close(close)),
                Err(e) => Err(self.fail(RecvError::Protocol(e))),
            },
        }
    }
}

/// zlib's `compressBound`: the most a deflate stream of `n` input bytes can take
/// (stored blocks, their headers, the flush).
pub(crate) fn compressed_bound(n: u64) -> u64 {
    n.saturating_add(n >> 12)
        .saturating_add(n >> 14)
        .saturating_add(n >> 25)
        .saturating_add(13)
}
