//! Limits against peers that flood within the rules: connections and handshakes
//! per source address, messages and bytes per second per connection. Each is off
//! by default; the setters are on [`ServerBuilder`](crate::event::ServerBuilder).

/// What a connection over its message or byte rate gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RatePolicy {
    /// Close it with 1008 (policy violation) and the reason `rate limit` (default).
    #[default]
    Close,
    /// Stop reading from it until its budget refills: the peer's bytes wait in the
    /// kernel and TCP pushes back on the peer, which is held to the rate.
    Throttle,
}

/// The abuse limits of a server's loops (see [`LoopConfig::limits`](crate::event::LoopConfig::limits)).
///
/// * Per source address (the PROXY header's address behind a balancer), over all
///   loops of the server: at most `max_conns_per_ip` connections at once
///   (handshaking or open) and `max_handshakes_per_ip` new connections per second
///   (a token bucket holding one second's worth). A connection over either is
///   answered `503` with `Retry-After: 1` and closed at once, before its request
///   is read (on a `wss://` listener it is closed without an answer: a plain-text
///   answer would be garbage to the peer's TLS). Counted in
///   [`Stats::refused_per_ip`](crate::event::Stats::refused_per_ip).
/// * Per connection: `max_messages_per_sec` whole messages and
///   `max_bytes_per_sec` payload bytes (after decompression), each a token bucket
///   holding one second's worth. Over either, [`RatePolicy`] applies; counted in
///   [`Stats::rate_limited`](crate::event::Stats::rate_limited) (closes) and
///   [`Stats::throttled`](crate::event::Stats::throttled) (pauses).
///
/// The whole-server cap [`LoopConfig::max_connections`](crate::event::LoopConfig::max_connections)
/// applies first; a connection refused by it is not counted against its address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Connections held at once per source address. Default: none.
    pub max_conns_per_ip: Option<u32>,
    /// New connections per second per source address. Default: none.
    pub max_handshakes_per_ip: Option<u32>,
    /// Messages per second per connection. Default: none.
    pub max_messages_per_sec: Option<u32>,
    /// Payload bytes per second per connection. Default: none.
    pub max_bytes_per_sec: Option<u64>,
    /// What a connection over its rate gets. Default: [`RatePolicy::Close`].
    pub rate_policy: RatePolicy,
}

impl Limits {
    /// Whether any per-address limit is set.
    pub(crate) fn per_ip(&self) -> bool {
        self.max_conns_per_ip.is_some() || self.max_handshakes_per_ip.is_some()
    }

    /// Whether any per-connection rate is set.
    pub(crate) fn per_conn(&self) -> bool {
        self.max_messages_per_sec.is_some() || self.max_bytes_per_sec.is_some()
    }
}
