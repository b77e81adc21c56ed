//! The receive side: received bytes through the decoder (and the inflater) into
//! events, with the obligated replies (pong, close echo, failure close) queued on
//! the way.

use crate::proto::time::Time;
use alloc::{borrow::ToOwned, vec::Vec};

use super::lifecycle::State;
use super::{Chunk, Connection, Event};
use crate::proto::MessageKind;
use crate::proto::close_code::CloseCode;
use crate::proto::decoder::FrameEvent as Frame;
use crate::proto::error::{ProtocolError, RecvError};

/// What one `read` found, described by positions in the input so that the event can
/// be built once the loop that found it has released its borrows.
enum Found {
    /// More input is needed.
    Nothing,
    /// An uncompressed piece ending at `end` in the input.
    Data {
        kind: MessageKind,
        first: bool,
        last: bool,
        len: usize,
        end: usize,
    },
    /// Decompressed bytes in the scratch buffer.
    #[cfg(feature = "deflate")]
    Inflated {
        kind: MessageKind,
        first: bool,
        last: bool,
    },
    Ping {
        len: usize,
        end: usize,
    },
    Pong {
        len: usize,
        end: usize,
    },
    Close {
        code: CloseCode,
        reason_len: usize,
        end: usize,
    },
}

impl Connection {
    /// Decodes the next event from `input`, the received bytes not yet consumed.
    ///
    /// Returns `(consumed, event)`: drop `input[..consumed]` and pass the rest,
    /// unchanged and followed by any new bytes, to the next call (payloads are
    /// unmasked in place, so the bytes must not be re-read from a copy). `None`
    /// means more input is needed: call `read` until it says so, even once `input`
    /// is empty, since a compressed message can still have decompressed data to
    /// deliver after all of its input was consumed. Decompressed bytes are written to `scratch`
    /// (cleared first, at most its capacity or 16 KiB per event); keep one scratch
    /// buffer per driver and pass it every time. `now` is when the bytes were
    /// received (the idle and heartbeat timers count from it).
    ///
    /// An error means the peer broke the protocol (or sent a message over the read
    /// limit): the connection has [failed](super::State::Failed), the close frame
    /// with the matching code ([`RecvError::close_code`]) is queued, and later calls
    /// discard their input. After the peer's close (or once the connection is done)
    /// input is discarded too.
    // Without compression every round ends in an event or in "need more input".
    #[cfg_attr(not(feature = "deflate"), allow(clippy::never_loop))]
    pub fn read<'a>(
        &mut self,
        input: &'a mut [u8],
        scratch: &'a mut Vec<u8>,
        now: impl Into<Time> + Copy,
    ) -> Result<(usize, Option<Event<'a>>), RecvError> {
        // Converted where used: most calls (the one that finds the input used up,
        // every piece of a message) need no time at all.
        scratch.clear();
        if !input.is_empty() {
            self.keepalive.last_rx = now.into();
            self.keepalive.awaiting_pong = false;
        }
        if matches!(self.life.state(), State::Failed | State::Done) || self.life.peer_closed() {
            return Ok((input.len(), None));
        }
        let mut off = 0;
        let found = loop {
            #[cfg(feature = "deflate")]
            if self.inflating().is_some_and(|i| i.active) {
                match self.inflate_next(&input[off..], scratch) {
                    Ok((used, found)) => {
                        off += used;
                        match found {
                            Some(f) => break f,
                            None => continue,
                        }
                    }
                    Err(e) => return Err(self.failed(e, now.into())),
                }
            }
            let (n, ev) = match self.act().dec.decode(&mut input[off..]) {
                Ok(r) => r,
                Err(e) => return Err(self.failed(e, now.into())),
            };
            let end = off + n;
            match ev {
                None => {
                    off = end;
                    break Found::Nothing;
                }
                Some(Frame::Data(d)) if d.compressed => {
                    // Only the header is consumed now: the compressed payload stays
                    // at the front of the input and is inflated step by step.
                    #[cfg(feature = "deflate")]
                    {
                        off = end - d.payload.len();
                        self.begin_piece(d.kind, d.first, d.last, d.payload.len());
                    }
                    #[cfg(not(feature = "deflate"))]
                    {
                        // The decoder refuses RSV1 unless compression was negotiated.
                        let e = ProtocolError::InvalidCompressedData.into();
                        return Err(self.failed(e, now.into()));
                    }
                }
                Some(Frame::Data(d)) => {
                    break Found::Data {
                        kind: d.kind,
                        first: d.first,
                        last: d.last,
                        len: d.payload.len(),
                        end,
                    };
                }
                Some(Frame::Ping(p)) => {
                    if self.auto_pong && self.life.is_open() {
                        // Obligated reply (RFC 6455 §5.5.2); a full queue or a broken
                        // writer is the driver's to report, not the peer's fault.
                        let _ = self.pong(p);
                    }
                    break Found::Ping { len: p.len(), end };
                }
                Some(Frame::Pong(p)) => break Found::Pong { len: p.len(), end },
                Some(Frame::Close(close)) => {
                    let (code, reason) = close.unwrap_or((CloseCode::NO_STATUS, ""));
                    let reason_len = reason.len();
                    let reason = reason.to_owned();
                    self.peer_close(code, &reason, now.into());
                    break Found::Close {
                        code,
                        reason_len,
                        end,
                    };
                }
            }
        };
        self.settle();
        let input: &'a [u8] = input;
        #[cfg(feature = "deflate")]
        let scratch: &'a [u8] = scratch;
        Ok(match found {
            Found::Nothing => (off, None),
            Found::Data {
                kind,
                first,
                last,
                len,
                end,
            } => (
                end,
                Some(Event::Message(Chunk {
                    kind,
                    data: &input[end - len..end],
                    first,
                    last,
                    inflated: false,
                })),
            ),
            #[cfg(feature = "deflate")]
            Found::Inflated { kind, first, last } => (
                off,
                Some(Event::Message(Chunk {
                    kind,
                    data: scratch,
                    first,
                    last,
                    inflated: true,
                })),
            ),
            Found::Ping { len, end } => (end, Some(Event::Ping(&input[end - len..end]))),
            Found::Pong { len, end } => (end, Some(Event::Pong(&input[end - len..end]))),
            Found::Close {
                code,
                reason_len,
                end,
            } => {
                // The decoder validated the reason as UTF-8.
                let reason = core::str::from_utf8(&input[end - reason_len..end]).unwrap_or("");
                (end, Some(Event::Close { code, reason }))
            }
        })
    }

    /// The peer broke the protocol (or passed the read limit): fail the connection
    /// with the matching code and hand the error back.
    fn failed(&mut self, e: RecvError, now: Time) -> RecvError {
        self.fail(e.close_code(), now);
        e
    }

    /// A compressed piece from the decoder: it stays in the caller's input and is
    /// inflated by the next steps.
    #[cfg(feature = "deflate")]
    fn begin_piece(&mut self, kind: MessageKind, first: bool, last: bool, len: usize) {
        let i = match (first, self.inflating()) {
            (false, Some(i)) => i,
            _ => {
                if let Some(z) = self.z.as_mut() {
                    z.inflater.begin_message(kind);
                }
                super::active::Inflating {
                    kind,
                    started: false,
                    pending: 0,
                    last: false,
                    active: false,
                }
            }
        };
        self.act().inflating = Some(super::active::Inflating {
            pending: len,
            last,
            active: true,
            ..i
        });
    }

    /// One inflate step over the compressed bytes at the front of `input`.
    #[cfg(feature = "deflate")]
    fn inflate_next(
        &mut self,
        input: &[u8],
        scratch: &mut Vec<u8>,
    ) -> Result<(usize, Option<Found>), RecvError> {
        let (Some(mut i), Some(z)) = (self.inflating(), self.z.as_mut()) else {
            return Err(ProtocolError::InvalidCompressedData.into());
        };
        let piece = input.get(..i.pending).unwrap_or(input);
        let (used, done) = z.inflater.inflate_step(piece, i.last, scratch)?;
        i.pending -= used;
        let piece_over = i.pending == 0 && !i.last && !z.inflater.has_pending_output();
        let produced = !scratch.is_empty();
        if !produced && !done && !piece_over && used == 0 {
            // Cannot happen with a well-behaved inflater; never spin on it.
            return Err(ProtocolError::InvalidCompressedData.into());
        }
        let found = (produced || done).then(|| {
            let first = !i.started;
            i.started = true;
            Found::Inflated {
                kind: i.kind,
                first,
                last: done,
            }
        });
        if piece_over {
            i.active = false;
        }
        self.act().inflating = (!done).then_some(i);
        Ok((used, found))
    }

    #[cfg(feature = "deflate")]
    fn inflating(&self) -> Option<super::active::Inflating> {
        self.active.as_deref().and_then(|a| a.inflating)
    }
}
