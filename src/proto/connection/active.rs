//! What a connection holds only while something is in flight, and the per-thread
//! pool those boxes return to.
//!
//! An idle open connection (between messages, nothing queued) holds none of it: the
//! box goes back to a per-thread pool ([`ACTIVE_SPARES`]) and the next read or send
//! takes one, so thousands of idle connections cost only their small fixed part.

use crate::proto::Role;
use crate::proto::decoder::Decoder;
use alloc::boxed::Box;
#[cfg(feature = "std")]
use alloc::vec::Vec;

use super::tx::TxQueue;

/// Read limits of one connection (see [`Connection::set_read_limit`](super::Connection::set_read_limit)).
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub(super) max_message_size: u64,
    pub(super) whole_frame_max: usize,
}

/// A compressed message being inflated: its kind, whether a piece was delivered,
/// and the compressed piece the caller still holds at the front of its input.
#[cfg(feature = "deflate")]
#[derive(Debug, Clone, Copy)]
pub(super) struct Inflating {
    pub(super) kind: crate::proto::MessageKind,
    pub(super) started: bool,
    /// Compressed bytes of the current piece still at the front of the input.
    pub(super) pending: usize,
    /// The current piece ends the message.
    pub(super) last: bool,
    /// A piece is being stepped through.
    pub(super) active: bool,
}

/// The state of frames and messages in flight: a frame or message partly received,
/// bytes queued for the transport, a compressed message being inflated.
#[derive(Debug)]
pub(super) struct Active {
    pub(super) dec: Decoder,
    pub(super) tx: TxQueue,
    #[cfg(feature = "deflate")]
    pub(super) inflating: Option<Inflating>,
}

/// How many resting [`Active`] boxes a thread keeps for its next busy connection.
#[cfg(feature = "std")]
const ACTIVE_SPARES: usize = 16;

// Without `std` (no thread-locals) a box comes from and goes back to the allocator.
#[cfg(feature = "std")]
std::thread_local! {
    // Boxes, not values: a connection takes and returns the allocation itself.
    #[allow(clippy::vec_box)]
    static ACTIVE_POOL: std::cell::RefCell<Vec<Box<Active>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// What a fresh decoder of a connection is set up with.
#[derive(Debug, Clone, Copy)]
pub(super) struct DecoderSetup {
    pub(super) role: Role,
    pub(super) limits: Limits,
    pub(super) rsv1: bool,
}

/// `active`, taken from the pool with a decoder set up by `setup` if it is empty
/// (a free function so that callers can borrow other fields beside it).
pub(super) fn activate(active: &mut Option<Box<Active>>, setup: DecoderSetup) -> &mut Active {
    active.get_or_insert_with(|| Active::take(setup))
}

impl Active {
    /// A box from the thread's pool (or a new one), its decoder set up afresh.
    fn take(setup: DecoderSetup) -> Box<Active> {
        let mut dec = Decoder::new(setup.role);
        dec.set_max_message_size(setup.limits.max_message_size);
        dec.set_whole_frame_max(setup.limits.whole_frame_max);
        dec.set_rsv1_allowed(setup.rsv1);
        let fresh = Active {
            dec,
            tx: TxQueue::default(),
            #[cfg(feature = "deflate")]
            inflating: None,
        };
        #[cfg(feature = "std")]
        if let Ok(Some(mut b)) = ACTIVE_POOL.try_with(|p| p.borrow_mut().pop()) {
            *b = fresh;
            return b;
        }
        Box::new(fresh)
    }

    /// Nothing in flight: the box can go back to the pool.
    pub(super) fn at_rest(&self) -> bool {
        #[cfg(feature = "deflate")]
        if self.inflating.is_some() {
            return false;
        }
        self.dec.at_rest() && self.tx.is_empty()
    }

    #[cfg(not(feature = "std"))]
    pub(super) fn give_back(_: Box<Active>) {}

    #[cfg(feature = "std")]
    pub(super) fn give_back(b: Box<Active>) {
        // During thread teardown the pool may be gone; the box is then just freed.
        let _ = ACTIVE_POOL.try_with(|p| {
            let mut p = p.borrow_mut();
            if p.len() < ACTIVE_SPARES {
                p.push(b);
            }
        });
    }
}
