//! The transmit queue: encoded bytes waiting for the transport, in order.
//!
//! Frames are appended whole (header, then payload, masked in place for a client).
//! A frame whose length is known only after its payload is produced (a compressed
//! message) reserves [`MAX_HEADER_LEN`] bytes in front of the payload and writes the
//! header into them when it is done (gorilla's trick).

use crate::proto::encoder::EncodedHeader;
use crate::proto::frame::MAX_HEADER_LEN;
use crate::proto::mask::apply_mask;

/// Queued bytes past this capacity are given back to the allocator once the queue
/// drains, so a burst does not stay allocated on an idle connection.
const KEEP_CAPACITY: usize = 256 * 1024;

#[derive(Debug, Default)]
pub(super) struct TxQueue {
    buf: Vec<u8>,
    /// Bytes before `pos` have been transmitted.
    pos: usize,
    /// Bytes transmitted over the queue's life: marks are offsets in the whole stream,
    /// so they stay meaningful when the buffer is reset.
    sent: u64,
}

impl TxQueue {
    /// The bytes waiting to be transmitted.
    pub(super) fn pending(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    pub(super) fn len(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(super) fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }

    /// Stream offset of the next byte appended, as a mark for
    /// [`truncate`](Self::truncate).
    pub(super) fn end(&self) -> u64 {
        self.sent + self.len() as u64
    }

    /// True if nothing from `mark` on has been transmitted yet.
    pub(super) fn untransmitted(&self, mark: u64) -> bool {
        self.sent <= mark && mark <= self.end()
    }

    /// Drops what was appended from `mark` on (it must be untransmitted).
    pub(super) fn truncate(&mut self, mark: u64) {
        if self.untransmitted(mark) {
            self.buf.truncate(self.pos + (mark - self.sent) as usize);
        }
    }

    /// `n` bytes went out.
    pub(super) fn advance(&mut self, n: usize) {
        let n = n.min(self.len());
        self.sent += n as u64;
        self.pos += n;
        if self.pos == self.buf.len() {
            self.pos = 0;
            if self.buf.capacity() > KEEP_CAPACITY {
                self.buf = Vec::new();
            } else {
                self.buf.clear();
            }
        } else if self.pos > KEEP_CAPACITY && self.pos > self.buf.len() / 2 {
            // A queue that never quite drains must not keep its sent prefix.
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
    }

    /// Moves every pending byte to the end of `dst` (a driver that writes outside
    /// the connection's lock).
    pub(super) fn take_into(&mut self, dst: &mut Vec<u8>) {
        let n = self.len();
        if dst.is_empty() && self.pos == 0 {
            std::mem::swap(dst, &mut self.buf);
            self.buf.clear();
            self.sent += n as u64;
        } else {
            dst.extend_from_slice(&self.buf[self.pos..]);
            self.advance(n);
        }
    }

    /// Puts bytes taken with [`take_into`](Self::take_into) back in front of the
    /// queue (a driver could not write them).
    pub(super) fn push_front(&mut self, bytes: &[u8]) {
        let n = bytes.len();
        if self.pos >= n {
            self.pos -= n;
            self.buf[self.pos..self.pos + n].copy_from_slice(bytes);
        } else {
            self.buf.splice(self.pos..self.pos, bytes.iter().copied());
        }
        self.sent -= n as u64;
    }

    /// Appends raw bytes (a handshake response that precedes the frames).
    pub(super) fn push_raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Appends a whole frame; a client's payload is masked in place.
    pub(super) fn push_frame(&mut self, h: &EncodedHeader, payload: &[u8]) {
        self.buf.reserve(h.as_bytes().len() + payload.len());
        self.buf.extend_from_slice(h.as_bytes());
        let start = self.buf.len();
        self.buf.extend_from_slice(payload);
        if let Some(key) = h.mask {
            apply_mask(&mut self.buf[start..], key, 0);
        }
    }

    /// Reserves room for a header in front of a payload the caller appends to
    /// [`payload_buf`](Self::payload_buf); returns the mark for
    /// [`commit`](Self::commit).
    #[cfg_attr(not(feature = "deflate"), allow(dead_code))]
    pub(super) fn reserve(&mut self) -> usize {
        let mark = self.buf.len();
        self.buf.resize(mark + MAX_HEADER_LEN, 0);
        mark
    }

    /// The queue's buffer, to append a payload after [`reserve`](Self::reserve).
    #[cfg_attr(not(feature = "deflate"), allow(dead_code))]
    pub(super) fn payload_buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Length of the payload appended after the reservation at `mark`.
    #[cfg_attr(not(feature = "deflate"), allow(dead_code))]
    pub(super) fn reserved_len(&self, mark: usize) -> usize {
        self.buf.len() - mark - MAX_HEADER_LEN
    }

    /// Drops a reservation whose frame will not be sent.
    #[cfg_attr(not(feature = "deflate"), allow(dead_code))]
    pub(super) fn cancel(&mut self, mark: usize) {
        self.buf.truncate(mark);
    }

    /// Writes the header into the reservation at `mark` and masks the payload.
    #[cfg_attr(not(feature = "deflate"), allow(dead_code))]
    pub(super) fn commit(&mut self, mark: usize, h: &EncodedHeader) {
        let header = h.as_bytes();
        let hl = header.len();
        let payload_at = mark + MAX_HEADER_LEN;
        if let Some(key) = h.mask {
            apply_mask(&mut self.buf[payload_at..], key, 0);
        }
        if self.pos == mark {
            // Nothing queued ahead: the frame starts where its header ends up.
            self.buf[payload_at - hl..payload_at].copy_from_slice(header);
            self.pos = payload_at - hl;
        } else {
            let end = self.buf.len();
            self.buf.copy_within(payload_at..end, mark + hl);
            self.buf.truncate(end - (MAX_HEADER_LEN - hl));
            self.buf[mark..mark + hl].copy_from_slice(header);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Role;
    use crate::proto::encoder::Encoder;
    use crate::proto::frame::OpCode;

    #[test]
    fn reserved_frames_come_out_contiguous_at_the_front_and_behind_others() {
        let mut enc = Encoder::new(Role::Server);
        let mut q = TxQueue::default();
        let mark = q.reserve();
        q.payload_buf().extend_from_slice(b"abc");
        let h = enc.header(OpCode::Text, true, false, 3).unwrap();
        q.commit(mark, &h);
        assert_eq!(q.pending(), b"\x81\x03abc");
        q.push_frame(&enc.header(OpCode::Ping, true, false, 0).unwrap(), b"");
        let mark = q.reserve();
        q.payload_buf().extend_from_slice(b"de");
        let h = enc.header(OpCode::Binary, true, false, 2).unwrap();
        q.commit(mark, &h);
        assert_eq!(q.pending(), b"\x81\x03abc\x89\x00\x82\x02de");
        q.advance(5);
        assert_eq!(q.pending(), b"\x89\x00\x82\x02de");
        let mut out = Vec::new();
        q.take_into(&mut out);
        assert!(q.is_empty());
        assert_eq!(out, b"\x89\x00\x82\x02de");
    }
}
