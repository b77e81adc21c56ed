//! The handover's byte format: versioned, length-checked, little-endian. Every
//! field a decoder reads is bounded (strings, byte fields, list lengths); a record
//! must be consumed exactly. A decoding error refuses the whole handover before
//! the old process lets go of anything.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::proto::{ConnectionState, DeflateState, Role};

/// The first bytes of a handover: "silverback handover".
pub const MAGIC: [u8; 4] = *b"SBHO";

/// The version of the state format this build writes and reads. A build reads
/// exactly its own version; any other is refused (the old process keeps serving).
pub const VERSION: u16 = 1;

/// Longest string field (subprotocol, topic, Unix socket path).
const MAX_STR: usize = 64 * 1024;
/// Longest byte field (queued output, unprocessed input, the application's data).
const MAX_BYTES: usize = 64 * 1024 * 1024;
/// Longest deflate history (a 15-bit window).
const MAX_HISTORY: usize = 1 << 15;
/// Most topics or user timers per connection.
const MAX_LIST: usize = 65_536;

/// A malformed or unsupported record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError(pub &'static str);

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "handover state: {}", self.0)
    }
}

impl std::error::Error for FormatError {}

type Result<T> = std::result::Result<T, FormatError>;

/// A user timer as it moves: its token, its period (an interval) and how long
/// until it fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerRecord {
    /// The token `on_timer` gets.
    pub token: u64,
    /// Repeats with this period ([`Ctx::set_interval`](crate::event::Ctx::set_interval)).
    pub period: Option<Duration>,
    /// Time left until it fires.
    pub remaining: Duration,
}

/// One connection as it moves (its socket travels beside it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnRecord {
    /// The peer's address as the server knew it (a PROXY header's, if any).
    pub peer: SocketAddr,
    /// The socket is a Unix domain socket (else TCP).
    pub unix: bool,
    /// The protocol state.
    pub state: ConnectionState,
    /// Topics it is subscribed to.
    pub topics: Vec<String>,
    /// Its user timers.
    pub timers: Vec<TimerRecord>,
    /// Bytes received and not yet processed (a partial frame header).
    pub input: Vec<u8>,
    /// What the application saved for it ([`Handler::on_hand_over`](crate::event::Handler::on_hand_over)).
    pub data: Vec<u8>,
}

/// A listening socket as it moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerRecord {
    /// Its place among the server's listeners (the new server's listener with the
    /// same place wraps its connections: TLS or not).
    pub index: u16,
    /// A Unix domain socket listener and its path (else TCP).
    pub unix_path: Option<String>,
}

/// Builds a record.
#[derive(Default)]
pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn dur(&mut self, d: Duration) {
        self.u64(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
    }
    fn opt_u64(&mut self, v: Option<u64>) {
        match v {
            Some(v) => {
                self.u8(1);
                self.u64(v);
            }
            None => self.u8(0),
        }
    }
    fn opt_str(&mut self, v: Option<&str>) {
        match v {
            Some(s) => {
                self.u8(1);
                self.bytes(s.as_bytes());
            }
            None => self.u8(0),
        }
    }
}

/// Reads a record, every field checked.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(FormatError("truncated"));
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn bool(&mut self) -> Result<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(FormatError("bad flag")),
        }
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn dur(&mut self) -> Result<Duration> {
        Ok(Duration::from_nanos(self.u64()?))
    }
    fn bytes(&mut self, max: usize) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(FormatError("field too long"));
        }
        self.take(n)
    }
    fn string(&mut self) -> Result<String> {
        let b = self.bytes(MAX_STR)?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| FormatError("string not UTF-8"))
    }
    fn opt_u64(&mut self) -> Result<Option<u64>> {
        Ok(if self.bool()? {
            Some(self.u64()?)
        } else {
            None
        })
    }
    fn opt_string(&mut self) -> Result<Option<String>> {
        Ok(if self.bool()? {
            Some(self.string()?)
        } else {
            None
        })
    }
    fn list_len(&mut self) -> Result<usize> {
        let n = self.u32()? as usize;
        // Each element takes at least 4 bytes: a length beyond what is left is a lie.
        if n > MAX_LIST || n > self.buf.len() / 4 {
            return Err(FormatError("list too long"));
        }
        Ok(n)
    }
    pub(crate) fn end(&self) -> Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(FormatError("trailing bytes"))
        }
    }
}

/// The opening of a handover: magic and version.
pub fn encode_hello() -> Vec<u8> {
    let mut w = Writer::default();
    w.0.extend_from_slice(&MAGIC);
    w.u16(VERSION);
    w.0
}

/// Checks an opening: this build's magic and version.
pub fn decode_hello(b: &[u8]) -> Result<()> {
    let mut r = Reader::new(b);
    if r.array::<4>()? != MAGIC {
        return Err(FormatError("not a silverback handover"));
    }
    let v = r.u16()?;
    if v != VERSION {
        return Err(FormatError("unsupported format version"));
    }
    r.end()
}

fn encode_addr(w: &mut Writer, a: SocketAddr) {
    match a.ip() {
        IpAddr::V4(ip) => {
            w.u8(4);
            w.0.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            w.u8(6);
            w.0.extend_from_slice(&ip.octets());
        }
    }
    w.u16(a.port());
}

fn decode_addr(r: &mut Reader<'_>) -> Result<SocketAddr> {
    let ip = match r.u8()? {
        4 => IpAddr::V4(Ipv4Addr::from(r.array::<4>()?)),
        6 => IpAddr::V6(Ipv6Addr::from(r.array::<16>()?)),
        _ => return Err(FormatError("bad address family")),
    };
    Ok(SocketAddr::new(ip, r.u16()?))
}

/// Encodes a connection record.
pub fn encode_conn(c: &ConnRecord) -> Vec<u8> {
    let mut w = Writer::default();
    encode_addr(&mut w, c.peer);
    w.bool(c.unix);
    let s = &c.state;
    w.u8(match s.role {
        Role::Client => 0,
        Role::Server => 1,
    });
    w.opt_str(s.subprotocol.as_deref());
    w.bool(s.auto_pong);
    w.opt_u64(s.read_limit);
    w.dur(s.since_received);
    w.dur(s.since_ping);
    w.bool(s.awaiting_pong);
    match &s.deflate {
        None => w.u8(0),
        Some(d) => {
            w.u8(1);
            w.bool(d.server_no_context_takeover);
            w.bool(d.client_no_context_takeover);
            w.u8(d.server_max_window_bits);
            w.u8(d.client_max_window_bits);
            w.bool(d.write);
            w.bytes(&d.sent_history);
            w.bytes(&d.received_history);
        }
    }
    w.bytes(&s.output);
    w.u32(c.topics.len() as u32);
    for t in &c.topics {
        w.bytes(t.as_bytes());
    }
    w.u32(c.timers.len() as u32);
    for t in &c.timers {
        w.u64(t.token);
        w.opt_u64(
            t.period
                .map(|p| u64::try_from(p.as_nanos()).unwrap_or(u64::MAX)),
        );
        w.dur(t.remaining);
    }
    w.bytes(&c.input);
    w.bytes(&c.data);
    w.0
}

/// Decodes a connection record; every field checked, the record consumed exactly.
pub fn decode_conn(b: &[u8]) -> Result<ConnRecord> {
    let mut r = Reader::new(b);
    let peer = decode_addr(&mut r)?;
    let unix = r.bool()?;
    let role = match r.u8()? {
        0 => Role::Client,
        1 => Role::Server,
        _ => return Err(FormatError("bad role")),
    };
    let subprotocol = r.opt_string()?;
    let auto_pong = r.bool()?;
    let read_limit = r.opt_u64()?;
    let since_received = r.dur()?;
    let since_ping = r.dur()?;
    let awaiting_pong = r.bool()?;
    let deflate = match r.u8()? {
        0 => None,
        1 => Some(DeflateState {
            server_no_context_takeover: r.bool()?,
            client_no_context_takeover: r.bool()?,
            server_max_window_bits: r.u8()?,
            client_max_window_bits: r.u8()?,
            write: r.bool()?,
            sent_history: r.bytes(MAX_HISTORY)?.to_vec(),
            received_history: r.bytes(MAX_HISTORY)?.to_vec(),
        }),
        _ => return Err(FormatError("bad extension tag")),
    };
    let output = r.bytes(MAX_BYTES)?.to_vec();
    let n = r.list_len()?;
    let mut topics = Vec::with_capacity(n);
    for _ in 0..n {
        topics.push(r.string()?);
    }
    let n = r.list_len()?;
    let mut timers = Vec::with_capacity(n);
    for _ in 0..n {
        timers.push(TimerRecord {
            token: r.u64()?,
            period: r.opt_u64()?.map(Duration::from_nanos),
            remaining: r.dur()?,
        });
    }
    let input = r.bytes(MAX_BYTES)?.to_vec();
    let data = r.bytes(MAX_BYTES)?.to_vec();
    r.end()?;
    let state = ConnectionState {
        role,
        subprotocol,
        auto_pong,
        read_limit,
        since_received,
        since_ping,
        awaiting_pong,
        deflate,
        output,
    };
    // What a connection can be restored from is the core's rule (window bits,
    // history lengths, the `deflate` feature).
    state
        .check()
        .map_err(|_| FormatError("connection state not restorable in this build"))?;
    Ok(ConnRecord {
        peer,
        unix,
        state,
        topics,
        timers,
        input,
        data,
    })
}

/// Encodes a batch of connection records (already encoded): a count, then each
/// with its length.
pub fn encode_batch<'a>(records: impl ExactSizeIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut w = Writer::default();
    w.u32(records.len() as u32);
    for r in records {
        w.bytes(r);
    }
    w.0
}

/// Splits a batch into its records (not decoded).
pub fn decode_batch(b: &[u8]) -> Result<Vec<&[u8]>> {
    let mut r = Reader::new(b);
    let n = r.list_len()?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(r.bytes(MAX_BYTES * 2)?);
    }
    r.end()?;
    Ok(out)
}

/// Encodes a listener record.
pub fn encode_listener(l: &ListenerRecord) -> Vec<u8> {
    let mut w = Writer::default();
    w.u16(l.index);
    w.opt_str(l.unix_path.as_deref());
    w.0
}

/// Decodes a listener record.
pub fn decode_listener(b: &[u8]) -> Result<ListenerRecord> {
    let mut r = Reader::new(b);
    let l = ListenerRecord {
        index: r.u16()?,
        unix_path: r.opt_string()?,
    };
    r.end()?;
    Ok(l)
}

/// Encodes the end of the transfer: how many listeners and connections were sent.
pub fn encode_end(listeners: u32, conns: u32) -> Vec<u8> {
    let mut w = Writer::default();
    w.u32(listeners);
    w.u32(conns);
    w.0
}

/// Decodes the end of the transfer.
pub fn decode_end(b: &[u8]) -> Result<(u32, u32)> {
    let mut r = Reader::new(b);
    let v = (r.u32()?, r.u32()?);
    r.end()?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ConnRecord {
        ConnRecord {
            peer: "[::1]:4000".parse().unwrap(),
            unix: false,
            state: ConnectionState {
                role: Role::Server,
                subprotocol: Some("chat".into()),
                auto_pong: true,
                read_limit: Some(1 << 20),
                since_received: Duration::from_millis(1_500),
                since_ping: Duration::from_secs(3),
                awaiting_pong: true,
                deflate: Some(DeflateState {
                    server_no_context_takeover: false,
                    client_no_context_takeover: true,
                    server_max_window_bits: 15,
                    client_max_window_bits: 10,
                    write: true,
                    sent_history: b"hello hello".to_vec(),
                    received_history: vec![7; 1024],
                }),
                output: b"\x81\x02hi".to_vec(),
            },
            topics: vec!["news".into(), "all".into()],
            timers: vec![TimerRecord {
                token: 9,
                period: Some(Duration::from_secs(10)),
                remaining: Duration::from_millis(250),
            }],
            input: vec![0x81],
            data: b"user-42".to_vec(),
        }
    }

    #[test]
    fn a_record_round_trips_and_every_truncation_is_refused() {
        let c = sample();
        let b = encode_conn(&c);
        assert_eq!(decode_conn(&b).unwrap(), c);
        for n in 0..b.len() {
            assert!(
                decode_conn(&b[..n]).is_err(),
                "prefix of {n} bytes accepted"
            );
        }
        let mut longer = b.clone();
        longer.push(0);
        assert_eq!(decode_conn(&longer), Err(FormatError("trailing bytes")));
    }

    #[test]
    fn another_version_or_magic_is_refused() {
        assert!(decode_hello(&encode_hello()).is_ok());
        let mut v2 = encode_hello();
        v2[4] = 2;
        assert_eq!(
            decode_hello(&v2),
            Err(FormatError("unsupported format version"))
        );
        assert!(decode_hello(b"HTTP/1").is_err());
    }

    #[test]
    fn out_of_range_window_bits_and_huge_lists_are_refused() {
        let mut c = sample();
        if let Some(d) = c.state.deflate.as_mut() {
            d.server_max_window_bits = 16;
        }
        assert!(decode_conn(&encode_conn(&c)).is_err());
        let mut l = Writer::default();
        l.u32(u32::MAX);
        assert!(Reader::new(&l.0).list_len().is_err());
    }
}
