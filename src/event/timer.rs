//! The loop's timers: one binary heap of deadlines, cancelled lazily.
//!
//! An entry names a connection slot, its generation and what the timer is for; when
//! it pops, the loop checks that the connection (and, for user timers, the timer
//! itself) still exists before acting. Connection-level deadlines that move with
//! traffic (idle, heartbeat) are not re-inserted on every message: the entry fires,
//! the loop compares with the connection's last activity, and re-arms if early.
//! Time is passed in; nothing here reads a clock.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// What a timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TimerKind {
    /// The opening handshake (or a plain HTTP request) must finish by now.
    Handshake,
    /// Send the next heartbeat ping, or fail the peer if the last one went unanswered.
    Heartbeat,
    /// No traffic for the idle timeout.
    Idle,
    /// Our close frame went unanswered (or a client waits for the server's TCP close).
    Close,
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
        t.add(t0 + Duration::from_millis(30), 1, 0, TimerKind::Idle);
        t.add(t0 + Duration::from_millis(10), 2, 0, TimerKind::User(7));
        t.add(t0 + Duration::from_millis(20), 3, 0, TimerKind::Heartbeat);
        assert_eq!(t.next_deadline(), Some(t0 + Duration::from_millis(10)));
        assert!(t.pop_due(t0).is_none());
        let due: Vec<usize> =
            std::iter::from_fn(|| t.pop_due(t0 + Duration::from_millis(25)).map(|e| e.slot))
                .collect();
        assert_eq!(due, vec![2, 3]);
        assert_eq!(t.len(), 1);
    }
}
