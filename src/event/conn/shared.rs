//! What a connection's write path needs from its loop: the configuration, the list
//! of connections with output to flush at the end of the iteration, a scratch
//! buffer and the counters.

use std::sync::Arc;

use crate::event::api::config::LoopConfig;
use crate::event::api::stats::Stats;

/// Loop state a connection's write path needs.
pub(crate) struct LoopShared {
    pub(crate) config: Arc<LoopConfig>,
    /// Connections with output to flush at the end of the iteration.
    pub(crate) dirty: Vec<usize>,
    /// Scratch for bytes written at once (a handshake response).
    pub(crate) scratch: Vec<u8>,
    /// The loop's counters (published to `me.stats` once per iteration).
    pub(crate) stats: Stats,
    /// A server's per-address table, shared by its loops (`None` in a client).
    pub(crate) ips: Option<Arc<crate::event::conn::rates::IpTable>>,
}
