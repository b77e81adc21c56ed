//! The loop's timers: one binary heap of deadlines, cancelled lazily.
//!
//! An entry names a connection slot, its generation and what the timer is for; when
//! it pops, the loop checks that the connection (and, for user timers, the timer
//! itself) still exists before acting. A connection has one protocol timer: the
//! next deadline its state machine asks for (handshake, heartbeat, idle, close
//! wait). It is re-armed only when that deadline moves earlier; a deadline that
//! moved later (traffic) lets the old entry fire, find nothing due, and re-arm.
//! Time is passed in; nothing here reads a clock.
//!
//! Entries that can no longer do anything (their connection is gone, its deadline
//! moved earlier or went away, the user timer was cancelled) are counted as they
//! die and dropped in one pass once they are half the heap, so the heap stays
//! proportional to the timers that exist, not to the connections that ever had one
//! (10,000 handshakes would otherwise leave 10,000 dead handshake deadlines behind,
//! 56 bytes each, until they came due).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// What a timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TimerKind {
    /// The connection's protocol deadline: the handshake deadline before it opens,
    /// then [`Connection::poll_timeout`](crate::proto::Connection::poll_timeout).
    Conn,
    /// A user timer, by id.
    User(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Entry {
    pub(crate) at: Instant,
    pub(crate) seq: u64,
    pub(crate) slot: usize,
    pub(crate) generation: u32,
    pub(crate) kind: TimerKind,
}

/// The heap is never compacted below this many entries.
const COMPACT_MIN: usize = 1024;

#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
    /// Entries known to be dead (see [`forget`](Self::forget)).
    dead: usize,
}

impl Timers {
    pub(crate) fn add(&mut self, at: Instant, slot: usize, generation: u32, kind: TimerKind) {
        self.seq += 1;
        self.heap.push(Reverse(Entry {
            at,
            seq: self.seq,
            slot,
            generation,
            kind,
        }));
    }

    /// The earliest deadline, if any (for the poll timeout).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(e)| e.at)
    }

    /// `n` entries can no longer do anything (their connection went, its deadline
    /// went away or moved earlier, a user timer was cancelled).
    pub(crate) fn forget(&mut self, n: usize) {
        self.dead += n;
    }

    /// A popped entry turned out dead (it was counted by `forget`).
    pub(crate) fn popped_dead(&mut self) {
        self.dead = self.dead.saturating_sub(1);
    }

    /// Once dead entries are half the heap (and the heap is not small), keeps only
    /// the entries `live` accepts: amortised O(1) per dead entry.
    pub(crate) fn compact(&mut self, mut live: impl FnMut(&Entry) -> bool) {
        if self.heap.len() < COMPACT_MIN || self.dead * 2 < self.heap.len() {
            return;
        }
        self.heap.retain(|Reverse(e)| live(e));
        self.dead = 0;
        self.heap.shrink_to((self.heap.len() * 2).max(COMPACT_MIN));
    }

    /// Pops the next entry due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Entry> {
        match self.heap.peek() {
            Some(Reverse(e)) if e.at <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    /// Every entry, in no order (a handover reads the user timers' deadlines).
    #[cfg(feature = "handover")]
    pub(crate) fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.heap.iter().map(|Reverse(e)| e)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pops_in_deadline_order_and_only_when_due() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        t.add(t0 + Duration::from_millis(30), 1, 0, TimerKind::Conn);
        t.add(t0 + Duration::from_millis(10), 2, 0, TimerKind::User(7));
        t.add(t0 + Duration::from_millis(20), 3, 0, TimerKind::Conn);
        assert_eq!(t.next_deadline(), Some(t0 + Duration::from_millis(10)));
        assert!(t.pop_due(t0).is_none());
        let due: Vec<usize> =
            std::iter::from_fn(|| t.pop_due(t0 + Duration::from_millis(25)).map(|e| e.slot))
                .collect();
        assert_eq!(due, vec![2, 3]);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn compaction_drops_dead_entries_once_they_are_half_the_heap() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        let at = |i: usize| t0 + Duration::from_millis(i as u64);
        for i in 0..COMPACT_MIN {
            t.add(at(i), i, 0, TimerKind::Conn);
        }
        // Odd slots die; until half the heap is known dead nothing is looked at.
        t.forget(COMPACT_MIN / 2 - 1);
        t.compact(|_| panic!("compacted too early"));
        t.forget(1);
        t.compact(|e| e.slot % 2 == 0);
        assert_eq!(t.len(), COMPACT_MIN / 2);
        // Below the minimum size nothing is looked at, dead or not.
        t.forget(COMPACT_MIN / 2);
        t.compact(|_| panic!("compacted a small heap"));
        let due: Vec<usize> =
            std::iter::from_fn(|| t.pop_due(at(10_000)).map(|e| e.slot)).collect();
        assert_eq!(due.len(), COMPACT_MIN / 2);
        assert!(due.iter().all(|s| s % 2 == 0));
        assert!(
            due.windows(2).all(|w| w[0] < w[1]),
            "still in deadline order"
        );
    }
}
