//! The streaming [`MessageWriter`] (gorilla's `NextWriter`): an `io::Write` over the
//! connection's streaming send, which fragments, holds text back at code point
//! boundaries and compresses; each fragment is written as it is produced.

use std::io;

use super::link::{AnySink, Sink};
use crate::error::Error;
use crate::proto::MessageKind;

/// An `io::Write` for one outgoing message (gorilla's `NextWriter`).
///
/// Bytes are buffered; when the buffer is full and more bytes follow, it goes out as a
/// non-final fragment. [`close`](Self::close) (or drop) sends the rest as the final
/// frame, so an N-byte message is ⌈N / buffer⌉ frames. Text is checked to be UTF-8 as
/// it is written (an invalid write fails and nothing of it is sent); text fragments
/// end on code point boundaries, so what goes on the wire is always valid, even if
/// the caller stops inside a code point (`close` then drops the incomplete bytes and
/// returns [`UsageError::InvalidUtf8`](crate::UsageError)). `flush` sends what is
/// buffered as a fragment. On split halves the write half's lock is taken per
/// fragment, so the read half's pongs go out between fragments.
pub struct MessageWriter<'a> {
    pub(crate) sink: AnySink<'a>,
    pub(crate) kind: MessageKind,
    pub(crate) finished: bool,
}

impl MessageWriter<'_> {
    /// The kind of message being written.
    pub fn kind(&self) -> MessageKind {
        self.kind
    }

    /// Sends the final frame and ends the message.
    pub fn close(mut self) -> crate::Result<()> {
        self.finish()
    }

    fn finish(&mut self) -> crate::Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        self.sink.run(None, &mut |c| c.stream_end())
    }
}

impl io::Write for MessageWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.finished {
            return Err(Error::AlreadyClosed.into_io());
        }
        let kind = self.kind;
        self.sink
            .run(None, &mut |c| c.stream_write(kind, data))
            .map(|()| data.len())
            .map_err(Error::into_io)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.finished {
            return Ok(());
        }
        self.sink
            .run(None, &mut |c| c.stream_flush())
            .map_err(Error::into_io)
    }
}

impl Drop for MessageWriter<'_> {
    fn drop(&mut self) {
        // Best effort: end the message so the connection stays in sequence. Call
        // `close()` to see errors.
        let _ = self.finish();
    }
}
