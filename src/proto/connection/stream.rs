//! The buffered streaming writer (gorilla's `NextWriter`): bytes written in any
//! pieces go out as fragments of `write_buffer_size`, text held back at code point
//! boundaries so what goes on the wire stays valid UTF-8 even when the caller stops
//! inside a code point, and compressed into the message's deflate stream when
//! permessage-deflate is on.

use super::{Connection, Outgoing};
use crate::proto::MessageKind;
use crate::proto::error::{SendError, UsageError};
use crate::proto::frame::OpCode;
use crate::proto::utf8::{Utf8Validator, incomplete_tail_len};
use alloc::{boxed::Box, vec::Vec};

impl Connection {
    /// Writes bytes of a message sent as a stream (gorilla's `NextWriter`): the first
    /// call starts a message of `kind` (an empty `data` just starts it; later calls
    /// must name the same kind), bytes go out in fragments of
    /// [`write_buffer_size`](super::ConnectionConfig::write_buffer_size) as they
    /// fill, and [`stream_end`](Self::stream_end) sends the final frame. Messages
    /// cannot be sent while it is open; control frames can.
    ///
    /// A full fragment goes out only once more bytes follow, so the last full one
    /// becomes the final frame (no empty trailing frame). Text is checked as it is
    /// written: an invalid write is refused whole ([`UsageError::InvalidUtf8`]).
    pub fn stream_write(&mut self, kind: MessageKind, data: &[u8]) -> Result<(), SendError> {
        match self.out.as_deref() {
            Some(o) if o.buffered && o.kind == kind => self.check_writable()?,
            Some(_) => return Err(UsageError::MessageSequence.into()),
            None => {
                self.check_new_message()?;
                self.out = Some(Box::new(Outgoing {
                    kind,
                    started: false,
                    buffered: true,
                    utf8: (kind == MessageKind::Text).then(Utf8Validator::new),
                    stage: Vec::new(),
                    ztail: Vec::new(),
                    compressed: self.write_compression(),
                }));
            }
        }
        let size = self.config.write_buffer_size.max(4);
        let Some(o) = self.out.as_deref_mut().filter(|o| o.buffered) else {
            return Err(UsageError::MessageSequence.into());
        };
        let compress = o.compressed;
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
    fn stream_compress(&mut self, data: &[u8], size: usize) -> Result<(), SendError> {
        let (Some(o), Some(z)) = (self.out.as_deref_mut(), self.z.as_mut()) else {
            return Err(UsageError::MessageSequence.into());
        };
        let joined;
        let mut input = data;
        if !o.ztail.is_empty() {
            o.ztail.extend_from_slice(data);
            joined = core::mem::take(&mut o.ztail);
            input = &joined;
        }
        let keep = if o.utf8.is_some() {
            incomplete_tail_len(input)
        } else {
            0
        };
        let (now, later) = input.split_at(input.len() - keep);
        if z.deflater.compress(now, &mut o.stage).is_err() {
            return Err(self.compressor_failed());
        }
        o.ztail.extend_from_slice(later);
        if o.stage.len() >= size {
            self.emit(false)?;
        }
        Ok(())
    }

    /// Sends what the streaming writer holds as a fragment (a compressed fragment
    /// goes as it is: the receiver inflates what it gets).
    pub fn stream_flush(&mut self) -> Result<(), SendError> {
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
    pub fn stream_end(&mut self) -> Result<(), SendError> {
        self.check_writable()?;
        let Some(o) = self.out.as_deref_mut().filter(|o| o.buffered) else {
            return Err(UsageError::MessageSequence.into());
        };
        let compress = o.compressed;
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
                if r.is_err() {
                    return Err(self.compressor_failed());
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
    fn emit(&mut self, fin: bool) -> Result<(), SendError> {
        let setup = self.decoder_setup();
        let Some(o) = self.out.as_deref_mut() else {
            return Err(UsageError::MessageSequence.into());
        };
        let compress = o.compressed;
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
        super::active::activate(&mut self.active, setup)
            .tx
            .push_frame(&h, &o.stage[..end]);
        o.stage.drain(..end);
        o.started = true;
        if fin {
            self.out = None;
        }
        Ok(())
    }
}
