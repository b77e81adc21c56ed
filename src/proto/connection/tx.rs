//! The transmit queue: encoded bytes waiting for the transport, in order.
//!
//! Frames are appended whole (header, then payload, masked in place for a client).
//! A frame whose length is known only after its payload is produced (a compressed
//! message) reserves [`MAX_HEADER_LEN`] bytes in front of the payload and writes the
//! header into them when it is done (gorilla's trick).

use alloc::vec::Vec;

use crate::proto::encoder::EncodedHeader;
use crate::proto::frame::MAX_HEADER_LEN;
use crate::proto::mask::apply_mask;

/// A queue that never quite drains gives back its sent prefix once it passes this.
const KEEP_CAPACITY: usize = 256 * 1024;

/// Drained buffers up to this capacity go to the thread's spare list; larger ones
/// go back to the allocator.
#[cfg(feature = "std")]
const SPARE_MAX_CAPACITY: usize = 64 * 1024;

/// How many drained buffers a thread keeps for the next connection that sends
/// (at most 4 x 64 KiB stay allocated after a burst).
#[cfg(feature = "std")]
const SPARES: usize = 4;

#[cfg(feature = "std")]
std::thread_local! {
    /// Empty transmit buffers: a connection holds its buffer only while bytes are
    /// queued, so an idle connection holds none, and a busy thread still does not
    /// allocate per message.
    static SPARE: std::cell::RefCell<Vec<Vec<u8>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

#[cfg(feature = "std")]
fn spare_buffer() -> Vec<u8> {
    SPARE.with_borrow_mut(Vec::pop).unwrap_or_default()
}

// Without `std` (no threads, no thread-locals): buffers come from and go back to
// the allocator.
#[cfg(not(feature = "std"))]
fn spare_buffer() -> Vec<u8> {
    Vec::new()
}

#[cfg(not(feature = "std"))]
fn give_back(_: Vec<u8>) {}

#[cfg(feature = "std")]
fn give_back(mut b: Vec<u8>) {
    if b.capacity() == 0 || b.capacity() > SPARE_MAX_CAPACITY {
        return;
    }
    b.clear();
    // During thread teardown the list may be gone; the buffer is then just freed.
    let _ = SPARE.try_with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < SPARES {
            s.push(b);
        }
    });
}

/// Holds a buffer only while bytes are queued (see [`SPARE`]).
#[derive(Debug, Default)]
pub(super) struct TxQueue {
    buf: Vec<u8>,
    /// Bytes before `pos` have been transmitted.
    pos: usize,
    /// Bytes transmitted over the queue's life: marks are offsets in the whole stream,
    /// so they stay meaningful when the buffer is reset.
    sent: u64,
}

impl Drop for TxQueue {
    fn drop(&mut self) {
        give_back(core::mem::take(&mut self.buf));
    }
}

impl TxQueue {
    /// Makes sure the queue has a buffer (a spare one if the thread has it).
    fn ensure_buffer(&mut self) {
        if self.buf.capacity() == 0 {
            self.buf = spare_buffer();
        }
    }

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
            give_back(core::mem::take(&mut self.buf));
        } else if self.pos > KEEP_CAPACITY && self.pos > self.buf.len() / 2 {
            // A queue that never quite drains must not keep its sent prefix.
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
    }

    /// Moves every pending byte to the end of `dst` (a driver that writes outside
    /// the connection's lock).
    #[cfg_attr(not(feature = "std"), allow(dead_code))] // used by the IO layers
    pub(super) fn take_into(&mut self, dst: &mut Vec<u8>) {
        let n = self.len();
        if dst.is_empty() && self.pos == 0 {
            core::mem::swap(dst, &mut self.buf);
            give_back(core::mem::take(&mut self.buf));
            self.sent += n as u64;
        } else {
            dst.extend_from_slice(&self.buf[self.pos..]);
            self.advance(n);
        }
    }

    /// Puts bytes taken with [`take_into`](Self::take_into) back in front of the
    /// queue (a driver could not write them).
    #[cfg_attr(not(feature = "std"), allow(dead_code))] // used by the IO layers
    pub(super) fn push_front(&mut self, bytes: &[u8]) {
        let n = bytes.len();
        self.ensure_buffer();
        if self.pos >= n {
            self.pos -= n;
            self.buf[self.pos..self.pos + n].copy_from_slice(bytes);
        } else {
            self.buf.splice(self.pos..self.pos, bytes.iter().copied());
        }
        // A queue the connection took afresh after resting has counted nothing;
        // no marks exist then.
        self.sent = self.sent.saturating_sub(n as u64);
    }

    /// Appends raw bytes (a handshake response that precedes the frames).
    pub(super) fn push_raw(&mut self, bytes: &[u8]) {
        self.ensure_buffer();
        self.buf.extend_from_slice(bytes);
    }

    /// Appends a whole frame; a client's payload is masked in place.
    pub(super) fn push_frame(&mut self, h: &EncodedHeader, payload: &[u8]) {
        self.ensure_buffer();
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
        self.ensure_buffer();
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

    /// A drained queue holds no buffer (an idle connection keeps nothing), and the
    /// next frame reuses the thread's spare instead of allocating.
    #[test]
    fn a_drained_queue_holds_no_buffer() {
        let mut enc = Encoder::new(Role::Server);
        let mut q = TxQueue::default();
        q.push_frame(
            &enc.header(OpCode::Binary, true, false, 1000).unwrap(),
            &[7; 1000],
        );
        let cap = q.buf.capacity();
        assert!(cap >= 1004);
        let ptr = q.buf.as_ptr();
        q.advance(q.len());
        assert_eq!(q.buf.capacity(), 0);
        q.push_frame(
            &enc.header(OpCode::Binary, true, false, 10).unwrap(),
            &[7; 10],
        );
        assert_eq!(q.buf.as_ptr(), ptr, "the spare buffer was reused");
        q.advance(q.len());
        // A burst larger than a spare is freed, not kept.
        q.push_frame(
            &enc.header(OpCode::Binary, true, false, 300_000).unwrap(),
            &vec![1; 300_000],
        );
        q.advance(q.len());
        assert_eq!(q.buf.capacity(), 0);
        assert!(SPARE.with_borrow(|s| s.iter().all(|b| b.capacity() <= SPARE_MAX_CAPACITY)));
    }
}
