//! The loop's timers: one binary heap of deadlines, cancelled lazily.
//!
//! An entry names a connection slot, its generation and what the timer is for; when
//! it pops, the loop checks that the connection (and, for user timers, the timer
//! itself) still exists before acting. A connection has one protocol timer: the
//! next deadline its state machine asks for (handshake, heartbeat, idle, close
//! wait). It is re-armed only when that deadline moves earlier; a deadline that
//! moved later (traffic) lets the old entry fire, find nothing due, and re-arm.
//! Time is passed in; nothing here reads a clock.

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

#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
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

    /// Pops the next entry due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Entry> {
        match self.heap.peek() {
            Some(Reverse(e)) if e.at <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
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
}
