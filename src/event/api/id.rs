//! Names for connections and timers on the loops.

/// Identifies a connection: its loop, slot and generation. A stale id (the
/// connection ended, its slot was reused) never reaches another connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub(crate) u64);

impl ConnId {
    pub(crate) fn new(worker: usize, slot: usize, generation: u32) -> ConnId {
        ConnId(
            ((worker as u64 & 0xFF) << 56)
                | ((u64::from(generation) & 0xFF_FFFF) << 32)
                | slot as u64,
        )
    }
    pub(crate) fn worker(self) -> usize {
        (self.0 >> 56) as usize
    }
    pub(crate) fn generation(self) -> u32 {
        ((self.0 >> 32) & 0xFF_FFFF) as u32
    }
    pub(crate) fn slot(self) -> usize {
        (self.0 & 0xFFFF_FFFF) as usize
    }
    /// A number unique among the connections alive at one time (for logs and maps).
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

/// Shows `worker:slot.generation`, e.g. `0:17.3`: the loop (thread) the connection
/// lives on, its slot in that loop, and how many connections used the slot before
/// it. Stable for the connection's life and unique among live connections, so it
/// fits logs and registries; [`ConnId::as_u64`] gives the same identity as a number.
impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}.{}", self.worker(), self.slot(), self.generation())
    }
}

/// Identifies a user timer of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerId(pub(crate) u64);
