//! The state behind [`Limits`](crate::event::Limits): token buckets, the
//! per-address table shared by a server's loops, and each connection's rates.
//! (The loop applies them in `reactor::limits`.)

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::event::api::limits::Limits;

/// Addresses tracked before entries without connections are swept out (each
/// entry is a few dozen bytes; entries with connections are bounded by the
/// connections themselves).
const MAX_TRACKED: usize = 65_536;

/// A token bucket holding one second's worth of `rate`, refilled continuously.
/// Takes may overdraw it (the input was already read); a negative level is the
/// time to wait.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bucket {
    level: f64,
    rate: f64,
    at: Instant,
}

impl Bucket {
    pub(crate) fn new(rate: f64, now: Instant) -> Bucket {
        Bucket {
            level: rate,
            rate,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.level = (self.level + dt * self.rate).min(self.rate);
        self.at = now;
    }

    /// Takes `n` tokens; returns how long until the level is back to zero
    /// (`None`: it did not go below).
    pub(crate) fn take(&mut self, n: f64, now: Instant) -> Option<Duration> {
        self.refill(now);
        self.level -= n;
        (self.level < 0.0).then(|| Duration::from_secs_f64(-self.level / self.rate))
    }

    fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.level >= self.rate
    }
}

/// One source address: its connections and its handshake bucket.
struct IpEntry {
    conns: u32,
    handshakes: Option<Bucket>,
}

/// Why an address was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IpRefusal {
    Connections,
    Handshakes,
}

impl IpRefusal {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            IpRefusal::Connections => "too many connections from this address",
            IpRefusal::Handshakes => "too many new connections per second from this address",
        }
    }
}

/// Connections and handshake rates per source address, over all loops of a server.
#[derive(Default)]
pub(crate) struct IpTable {
    map: Mutex<HashMap<IpAddr, IpEntry>>,
}

impl IpTable {
    /// Admits a new connection from `ip` (counted until [`release`](Self::release))
    /// or says why not.
    pub(crate) fn admit(&self, ip: IpAddr, limits: &Limits, now: Instant) -> Result<(), IpRefusal> {
        let ip = ip.to_canonical();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_TRACKED && !map.contains_key(&ip) {
            // Addresses without connections whose bucket refilled go first; if
            // that is not enough (a flood from many addresses), every address
            // without connections: forgetting a bucket only forgives its debt.
            map.retain(|_, e| {
                e.conns > 0 || e.handshakes.as_mut().is_some_and(|b| !b.is_full(now))
            });
            if map.len() >= MAX_TRACKED {
                map.retain(|_, e| e.conns > 0);
            }
        }
        let e = map.entry(ip).or_insert_with(|| IpEntry {
            conns: 0,
            handshakes: limits
                .max_handshakes_per_ip
                .map(|r| Bucket::new(f64::from(r), now)),
        });
        if limits.max_conns_per_ip.is_some_and(|max| e.conns >= max) {
            return Err(IpRefusal::Connections);
        }
        if let Some(b) = e.handshakes.as_mut() {
            // A refused attempt does not spend a token: a flood of refused
            // attempts must not lock the address out after it stops.
            let mut probe = *b;
            if probe.take(1.0, now).is_some() {
                return Err(IpRefusal::Handshakes);
            }
            *b = probe;
        }
        e.conns += 1;
        Ok(())
    }

    /// A connection admitted from `ip` ended.
    pub(crate) fn release(&self, ip: IpAddr, now: Instant) {
        let ip = ip.to_canonical();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = map.get_mut(&ip) {
            e.conns = e.conns.saturating_sub(1);
            if e.conns == 0 && e.handshakes.as_mut().is_none_or(|b| b.is_full(now)) {
                map.remove(&ip);
            }
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.map.lock().unwrap().len()
    }
}

/// A connection's message and byte budgets, and until when it is throttled.
#[derive(Debug, Clone)]
pub(crate) struct ConnRates {
    msgs: Option<Bucket>,
    bytes: Option<Bucket>,
    pub(crate) throttled_until: Option<Instant>,
}

impl ConnRates {
    pub(crate) fn new(limits: &Limits, now: Instant) -> ConnRates {
        ConnRates {
            msgs: limits
                .max_messages_per_sec
                .map(|r| Bucket::new(f64::from(r), now)),
            bytes: limits.max_bytes_per_sec.map(|r| Bucket::new(r as f64, now)),
            throttled_until: None,
        }
    }

    /// Charges one piece of a message (`bytes` payload bytes, `last` ending a
    /// message); returns how long the connection is over its budget.
    pub(crate) fn charge(&mut self, bytes: usize, last: bool, now: Instant) -> Option<Duration> {
        let b = self.bytes.as_mut().and_then(|b| b.take(bytes as f64, now));
        let m = match self.msgs.as_mut() {
            Some(m) if last => m.take(1.0, now),
            _ => None,
        };
        b.max(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_holds_one_second_and_refills() {
        let t0 = Instant::now();
        let mut b = Bucket::new(10.0, t0);
        for _ in 0..10 {
            assert_eq!(b.take(1.0, t0), None);
        }
        let wait = b.take(1.0, t0).unwrap();
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-9, "{wait:?}");
        // Half a second later: 5 refilled, 1 of them owed.
        assert_eq!(b.take(4.0, t0 + Duration::from_millis(500)), None);
        assert!(b.take(1.0, t0 + Duration::from_millis(500)).is_some());
        assert!(b.is_full(t0 + Duration::from_secs(5)));
    }

    #[test]
    fn ip_table_counts_connections_and_handshakes() {
        let t0 = Instant::now();
        let table = IpTable::default();
        let limits = Limits {
            max_conns_per_ip: Some(2),
            max_handshakes_per_ip: Some(3),
            ..Limits::default()
        };
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(table.admit(a, &limits, t0), Ok(()));
        assert_eq!(table.admit(mapped, &limits, t0), Ok(()));
        assert_eq!(table.admit(a, &limits, t0), Err(IpRefusal::Connections));
        assert_eq!(table.admit(b, &limits, t0), Ok(()));
        table.release(a, t0);
        // The third handshake of the second is allowed, the fourth is not.
        assert_eq!(table.admit(a, &limits, t0), Ok(()));
        table.release(a, t0);
        assert_eq!(table.admit(a, &limits, t0), Err(IpRefusal::Handshakes));
        // Refused attempts cost nothing: a second later the bucket is full again.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(table.admit(a, &limits, t1), Ok(()));
        table.release(a, t1);
        table.release(a, t1);
        table.release(b, t1);
        let t9 = t0 + Duration::from_secs(9);
        table.release(a, t9);
        assert_eq!(
            table.tracked(),
            0,
            "entries without connections and full buckets go"
        );
    }

    #[test]
    fn ip_table_stays_bounded() {
        let t0 = Instant::now();
        let table = IpTable::default();
        let limits = Limits {
            max_conns_per_ip: Some(1),
            max_handshakes_per_ip: Some(5),
            ..Limits::default()
        };
        // Each address keeps a bucket that has not refilled: the table sweeps.
        for i in 0..(3 * MAX_TRACKED as u32) {
            let ip = IpAddr::V6(std::net::Ipv6Addr::from(u128::from(i) + 1));
            assert_eq!(table.admit(ip, &limits, t0), Ok(()));
            table.release(ip, t0);
            assert!(table.tracked() <= MAX_TRACKED);
        }
    }

    #[test]
    fn conn_rates_charge_messages_at_their_end_and_bytes_per_piece() {
        let t0 = Instant::now();
        let limits = Limits {
            max_messages_per_sec: Some(2),
            max_bytes_per_sec: Some(100),
            ..Limits::default()
        };
        let mut r = ConnRates::new(&limits, t0);
        assert_eq!(r.charge(10, false, t0), None);
        assert_eq!(r.charge(10, true, t0), None);
        assert_eq!(r.charge(10, true, t0), None);
        assert!(r.charge(0, true, t0).is_some(), "third message in a second");
        let mut r = ConnRates::new(&limits, t0);
        let over = r.charge(150, false, t0).unwrap();
        assert!((over.as_secs_f64() - 0.5).abs() < 1e-9);
    }
}
