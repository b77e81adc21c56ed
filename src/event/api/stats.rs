//! Operator counters: what a loop (or a whole server) has done since it started.
//!
//! A loop counts in plain integers on its own thread and publishes them to atomics
//! once per iteration, so counting costs a few additions per message and readers on
//! other threads ([`ServerHandle::stats`](crate::event::ServerHandle::stats)) never slow
//! the loop down. Figures are as of the loop's last iteration.

use std::sync::atomic::{AtomicU64, Ordering};

/// HTTP refusals of upgrade requests, by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Refusals {
    /// 400: a malformed request or a bad WebSocket header.
    pub bad_request: u64,
    /// 403: cross-origin refused (or the handler refused with 403).
    pub forbidden: u64,
    /// 426: an unsupported `Sec-WebSocket-Version`.
    pub upgrade_required: u64,
    /// 431: a head over `max_head_size` or `max_headers`.
    pub too_large: u64,
    /// 503: the loop was at `max_connections` (on a TLS listener: closed without an
    /// answer).
    pub full: u64,
    /// Any other status (405, 505, or one the handler chose).
    pub other: u64,
}

/// Connections that ended, by the close code they ended with (the peer's, or ours
/// if we closed or failed them; 1006 when no close frame was exchanged).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Closes {
    /// 1000.
    pub normal: u64,
    /// 1001.
    pub going_away: u64,
    /// 1002.
    pub protocol_error: u64,
    /// 1003.
    pub unsupported_data: u64,
    /// 1006: the transport ended without a closing handshake.
    pub abnormal: u64,
    /// 1007.
    pub invalid_payload: u64,
    /// 1008.
    pub policy_violation: u64,
    /// 1009.
    pub message_too_big: u64,
    /// 1011.
    pub internal_error: u64,
    /// Any other code (1012-1014, 3000-4999).
    pub other: u64,
}

impl Closes {
    /// Each counter with its code (`None` for [`other`](Self::other)).
    pub fn by_code(&self) -> [(Option<u16>, u64); 10] {
        [
            (Some(1000), self.normal),
            (Some(1001), self.going_away),
            (Some(1002), self.protocol_error),
            (Some(1003), self.unsupported_data),
            (Some(1006), self.abnormal),
            (Some(1007), self.invalid_payload),
            (Some(1008), self.policy_violation),
            (Some(1009), self.message_too_big),
            (Some(1011), self.internal_error),
            (None, self.other),
        ]
    }

    pub(crate) fn count(&mut self, code: u16) {
        let c = match code {
            1000 => &mut self.normal,
            1001 => &mut self.going_away,
            1002 => &mut self.protocol_error,
            1003 => &mut self.unsupported_data,
            1006 => &mut self.abnormal,
            1007 => &mut self.invalid_payload,
            1008 => &mut self.policy_violation,
            1009 => &mut self.message_too_big,
            1011 => &mut self.internal_error,
            _ => &mut self.other,
        };
        *c += 1;
    }
}

/// Counters of a loop, or of a whole server (the sum over its loops). Totals since
/// start, except the gauges [`connections`](Self::connections),
/// [`open`](Self::open) and [`output_queued`](Self::output_queued).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Gauge: connections held (handshaking, answering plain HTTP, open).
    pub connections: u64,
    /// Gauge: open WebSocket connections.
    pub open: u64,
    /// Sockets accepted (server) or connects started (client).
    pub accepted: u64,
    /// Upgrade requests answered with an HTTP error, by status.
    pub refused: Refusals,
    /// Connections dropped because the opening handshake (TLS included) did not
    /// finish in time.
    pub handshake_timeouts: u64,
    /// Messages received (whole messages, however they were delivered).
    pub messages_in: u64,
    /// Payload bytes received (after decompression).
    pub bytes_in: u64,
    /// Messages sent (a broadcast counts once per connection).
    pub messages_out: u64,
    /// Payload bytes sent (before compression).
    pub bytes_out: u64,
    /// Gauge: bytes queued for sockets that did not take them yet (updated every
    /// 100 ms).
    pub output_queued: u64,
    /// Times a connection stopped being read because its output queue passed
    /// `max_output_buffer` ([`Backpressure::Pause`](crate::event::Backpressure::Pause)).
    pub backpressure_pauses: u64,
    /// Connections that ended, by close code.
    pub closes: Closes,
    /// Connections closed at the PROXY protocol step
    /// ([`ProxyProtocol`](crate::event::ProxyProtocol)): a PROXY header from an
    /// address not trusted, a malformed one, or none where one is required.
    pub proxy_refused: u64,
    /// Connections refused by a per-address limit
    /// ([`Limits`](crate::event::Limits): connections or handshakes per address).
    pub refused_per_ip: u64,
    /// Connections closed with 1008 for going over their message or byte rate.
    pub rate_limited: u64,
    /// Times a connection over its rate stopped being read
    /// ([`RatePolicy::Throttle`](crate::event::RatePolicy::Throttle)).
    pub throttled: u64,
    /// Gauge: topic subscriptions (a connection subscribed to three topics counts
    /// three; see [`Ctx::subscribe`](crate::event::Ctx::subscribe)).
    pub subscriptions: u64,
    /// Publishes this loop ran for its subscribers (a publish reaches every loop,
    /// so a server of four loops counts each publish four times).
    pub publishes: u64,
    /// Messages queued for subscribers by publishes (also in
    /// [`messages_out`](Self::messages_out)).
    pub publish_deliveries: u64,
    /// Open connections handed to a new process (feature `handover`; see
    /// [`ServerHandle::hand_over`](crate::event::ServerHandle)).
    pub handed_over: u64,
    /// Open connections taken over from an old process (feature `handover`).
    pub resumed: u64,
}

/// Number of counters in the flat form.
const N: usize = 35;

impl Stats {
    fn to_array(self) -> [u64; N] {
        let r = self.refused;
        let c = self.closes;
        [
            self.connections,
            self.open,
            self.accepted,
            r.bad_request,
            r.forbidden,
            r.upgrade_required,
            r.too_large,
            r.full,
            r.other,
            self.handshake_timeouts,
            self.messages_in,
            self.bytes_in,
            self.messages_out,
            self.bytes_out,
            self.output_queued,
            self.backpressure_pauses,
            c.normal,
            c.going_away,
            c.protocol_error,
            c.unsupported_data,
            c.abnormal,
            c.invalid_payload,
            c.policy_violation,
            c.message_too_big,
            c.internal_error,
            c.other,
            self.proxy_refused,
            self.refused_per_ip,
            self.rate_limited,
            self.throttled,
            self.subscriptions,
            self.publishes,
            self.publish_deliveries,
            self.handed_over,
            self.resumed,
        ]
    }

    fn from_array(a: [u64; N]) -> Stats {
        Stats {
            connections: a[0],
            open: a[1],
            accepted: a[2],
            refused: Refusals {
                bad_request: a[3],
                forbidden: a[4],
                upgrade_required: a[5],
                too_large: a[6],
                full: a[7],
                other: a[8],
            },
            handshake_timeouts: a[9],
            messages_in: a[10],
            bytes_in: a[11],
            messages_out: a[12],
            bytes_out: a[13],
            output_queued: a[14],
            backpressure_pauses: a[15],
            closes: Closes {
                normal: a[16],
                going_away: a[17],
                protocol_error: a[18],
                unsupported_data: a[19],
                abnormal: a[20],
                invalid_payload: a[21],
                policy_violation: a[22],
                message_too_big: a[23],
                internal_error: a[24],
                other: a[25],
            },
            proxy_refused: a[26],
            refused_per_ip: a[27],
            rate_limited: a[28],
            throttled: a[29],
            subscriptions: a[30],
            publishes: a[31],
            publish_deliveries: a[32],
            handed_over: a[33],
            resumed: a[34],
        }
    }

    /// Counts an HTTP refusal.
    pub(crate) fn refuse(&mut self, status: u16) {
        let r = &mut self.refused;
        let c = match status {
            400 => &mut r.bad_request,
            403 => &mut r.forbidden,
            426 => &mut r.upgrade_required,
            431 => &mut r.too_large,
            503 => &mut r.full,
            _ => &mut r.other,
        };
        *c += 1;
    }

    /// The counters in the Prometheus text exposition format, each name prefixed
    /// with `prefix` (e.g. `silverback`).
    pub fn prometheus(&self, prefix: &str) -> String {
        use std::fmt::Write;
        let mut o = String::new();
        let mut one = |name: &str, kind: &str, help: &str, v: u64| {
            let _ = writeln!(o, "# HELP {prefix}_{name} {help}");
            let _ = writeln!(o, "# TYPE {prefix}_{name} {kind}");
            let _ = writeln!(o, "{prefix}_{name} {v}");
        };
        one(
            "connections",
            "gauge",
            "Connections held (handshaking, answering, open).",
            self.connections,
        );
        one(
            "open_connections",
            "gauge",
            "Open WebSocket connections.",
            self.open,
        );
        one(
            "accepted_total",
            "counter",
            "Sockets accepted.",
            self.accepted,
        );
        one(
            "handshake_timeouts_total",
            "counter",
            "Handshakes that did not finish in time.",
            self.handshake_timeouts,
        );
        one(
            "messages_received_total",
            "counter",
            "Messages received.",
            self.messages_in,
        );
        one(
            "received_bytes_total",
            "counter",
            "Payload bytes received.",
            self.bytes_in,
        );
        one(
            "messages_sent_total",
            "counter",
            "Messages sent.",
            self.messages_out,
        );
        one(
            "sent_bytes_total",
            "counter",
            "Payload bytes sent.",
            self.bytes_out,
        );
        one(
            "output_queued_bytes",
            "gauge",
            "Bytes queued for sockets.",
            self.output_queued,
        );
        one(
            "backpressure_pauses_total",
            "counter",
            "Reads paused by back-pressure.",
            self.backpressure_pauses,
        );
        one(
            "proxy_refused_total",
            "counter",
            "Connections refused at the PROXY protocol step.",
            self.proxy_refused,
        );
        one(
            "refused_per_ip_total",
            "counter",
            "Connections refused by a per-address limit.",
            self.refused_per_ip,
        );
        one(
            "rate_limited_total",
            "counter",
            "Connections closed for going over their message or byte rate.",
            self.rate_limited,
        );
        one(
            "throttled_total",
            "counter",
            "Times a connection over its rate stopped being read.",
            self.throttled,
        );
        one(
            "subscriptions",
            "gauge",
            "Topic subscriptions (connection x topic).",
            self.subscriptions,
        );
        one(
            "publishes_total",
            "counter",
            "Publishes run by the loops (each loop counts each publish).",
            self.publishes,
        );
        one(
            "publish_deliveries_total",
            "counter",
            "Messages queued for topic subscribers.",
            self.publish_deliveries,
        );
        one(
            "handed_over_total",
            "counter",
            "Open connections handed to a new process.",
            self.handed_over,
        );
        one(
            "resumed_total",
            "counter",
            "Open connections taken over from an old process.",
            self.resumed,
        );
        let _ = writeln!(
            o,
            "# HELP {prefix}_refused_total Upgrade requests refused, by HTTP status."
        );
        let _ = writeln!(o, "# TYPE {prefix}_refused_total counter");
        let r = self.refused;
        for (status, v) in [
            ("400", r.bad_request),
            ("403", r.forbidden),
            ("426", r.upgrade_required),
            ("431", r.too_large),
            ("503", r.full),
            ("other", r.other),
        ] {
            let _ = writeln!(o, "{prefix}_refused_total{{status=\"{status}\"}} {v}");
        }
        let _ = writeln!(
            o,
            "# HELP {prefix}_closes_total Connections ended, by close code."
        );
        let _ = writeln!(o, "# TYPE {prefix}_closes_total counter");
        for (code, v) in self.closes.by_code() {
            match code {
                Some(c) => {
                    let _ = writeln!(o, "{prefix}_closes_total{{code=\"{c}\"}} {v}");
                }
                None => {
                    let _ = writeln!(o, "{prefix}_closes_total{{code=\"other\"}} {v}");
                }
            }
        }
        o
    }
}

/// The sum of two loops' counters.
impl std::ops::Add for Stats {
    type Output = Stats;
    fn add(self, other: Stats) -> Stats {
        let (a, b) = (self.to_array(), other.to_array());
        let mut s = [0u64; N];
        for ((s, a), b) in s.iter_mut().zip(a).zip(b) {
            *s = a.saturating_add(b);
        }
        Stats::from_array(s)
    }
}

impl std::iter::Sum for Stats {
    fn sum<I: Iterator<Item = Stats>>(iter: I) -> Stats {
        iter.fold(Stats::default(), |a, b| a + b)
    }
}

/// A loop's published counters, readable from any thread.
pub(crate) struct SharedStats([AtomicU64; N]);

impl Default for SharedStats {
    fn default() -> Self {
        SharedStats([const { AtomicU64::new(0) }; N])
    }
}

impl SharedStats {
    pub(crate) fn publish(&self, s: &Stats) {
        for (slot, v) in self.0.iter().zip(s.to_array()) {
            slot.store(v, Ordering::Relaxed);
        }
    }

    pub(crate) fn read(&self) -> Stats {
        let mut a = [0u64; N];
        for (v, slot) in a.iter_mut().zip(&self.0) {
            *v = slot.load(Ordering::Relaxed);
        }
        Stats::from_array(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_form_round_trips_every_field() {
        let mut a = [0u64; N];
        for (i, v) in a.iter_mut().enumerate() {
            *v = i as u64 + 1;
        }
        assert_eq!(Stats::from_array(a).to_array(), a);
        let s = Stats::from_array(a);
        assert_eq!((s + s).messages_out, 2 * s.messages_out);
        let text = s.prometheus("sb");
        assert!(
            text.contains("sb_refused_total{status=\"431\"} 7"),
            "{text}"
        );
        assert!(text.contains("sb_closes_total{code=\"1006\"} 21"), "{text}");
        for (name, v) in [
            ("proxy_refused_total", 27),
            ("refused_per_ip_total", 28),
            ("rate_limited_total", 29),
            ("throttled_total", 30),
            ("subscriptions", 31),
            ("publishes_total", 32),
            ("publish_deliveries_total", 33),
            ("handed_over_total", 34),
            ("resumed_total", 35),
        ] {
            assert!(text.contains(&format!("sb_{name} {v}\n")), "{name}: {text}");
        }
    }
}
