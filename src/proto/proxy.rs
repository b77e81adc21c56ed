//! The PROXY protocol (HAProxy's, versions 1 and 2) without I/O: what a TCP load
//! balancer (HAProxy `send-proxy`/`send-proxy-v2`, nginx's stream module, AWS and
//! GCP network load balancers) writes before the client's own bytes, so that the
//! server learns the client's address rather than the balancer's.
//!
//! [`parse`] takes the bytes received so far and says whether they hold a whole
//! header ([`Parsed::Done`], with how many bytes it took), need more
//! ([`Parsed::Incomplete`]), or cannot be one ([`ProxyError`]). It never reads past
//! the header, so a driver that peeks at its socket can consume exactly the header
//! and leave the rest (a TLS ClientHello, an HTTP request) where it was. Both forms
//! are bounded: a version 1 line is at most [`V1_MAX`] bytes, a version 2 header at
//! most [`V2_MAX`]. Version 2's TLVs are checked to fit their block and skipped.
//!
//! [`detect`] answers the cheaper question a server asks of a connection from an
//! address it does not trust: does this start like a PROXY header?
//!
//! ```
//! use silverback::proto::proxy::{parse, Parsed};
//!
//! let input = b"PROXY TCP4 192.0.2.7 198.51.100.1 51234 443\r\nGET / HTTP/1.1\r\n";
//! let Ok(Parsed::Done(header, used)) = parse(input) else { panic!() };
//! assert_eq!(header.source().unwrap().to_string(), "192.0.2.7:51234");
//! assert_eq!(&input[used..used + 3], b"GET");
//! ```

use alloc::{format, string::String};
use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The longest version 1 header, `\r\n` included (the specification's bound).
pub const V1_MAX: usize = 107;

/// The longest version 2 header: 16 fixed bytes and a 16-bit length.
pub const V2_MAX: usize = 16 + 65_535;

/// The 12 bytes every version 2 header starts with.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

const V1_PREFIX: &[u8] = b"PROXY ";

/// A parsed PROXY header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyHeader {
    /// 1 or 2.
    pub version: u8,
    /// The addresses the balancer reports, when it reports IP addresses: `None`
    /// for version 1 `UNKNOWN`, version 2 `LOCAL` (the balancer's own health
    /// check) and version 2 families without IP addresses (`UNSPEC`, `UNIX`). The
    /// connection's own addresses are the ones to use then.
    pub addresses: Option<ProxyAddresses>,
}

/// The client's and the server's address as the balancer saw the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyAddresses {
    /// The client.
    pub source: SocketAddr,
    /// The address the client connected to (the balancer's listener).
    pub destination: SocketAddr,
}

impl ProxyHeader {
    /// The client's address, when the header carries one.
    pub fn source(&self) -> Option<SocketAddr> {
        self.addresses.map(|a| a.source)
    }

    /// The address the client connected to, when the header carries one.
    pub fn destination(&self) -> Option<SocketAddr> {
        self.addresses.map(|a| a.destination)
    }
}

/// What [`parse`] found in the bytes so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// A whole header, and the number of input bytes it took.
    Done(ProxyHeader, usize),
    /// A valid beginning. `need` is the whole header's length once it is known
    /// (version 2, after 16 bytes); a version 1 line ends at its `\r\n`.
    Incomplete {
        /// The header's total length, when known.
        need: Option<usize>,
    },
}

/// Why bytes are not a PROXY header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyError {
    /// They do not start with `PROXY ` or the version 2 signature.
    NotProxy,
    /// A version 1 line without `\r\n` within [`V1_MAX`] bytes.
    V1TooLong,
    /// A version 1 line that breaks the grammar; the text names the part.
    V1Malformed(&'static str),
    /// Version 2 with a version other than 2 in the version/command byte.
    V2Version(u8),
    /// Version 2 with a command other than `LOCAL` (0) or `PROXY` (1).
    V2Command(u8),
    /// Version 2 with an unknown address family or transport protocol.
    V2Family(u8),
    /// Version 2 whose length is too short for its address family.
    V2Short,
    /// Version 2 whose TLVs overrun their block.
    V2Tlv,
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyError::NotProxy => f.write_str("not a PROXY protocol header"),
            ProxyError::V1TooLong => write!(f, "PROXY v1 line longer than {V1_MAX} bytes"),
            ProxyError::V1Malformed(what) => write!(f, "malformed PROXY v1 header: {what}"),
            ProxyError::V2Version(b) => write!(f, "PROXY v2 header with version/command 0x{b:02x}"),
            ProxyError::V2Command(b) => write!(f, "PROXY v2 header with command 0x{b:02x}"),
            ProxyError::V2Family(b) => write!(f, "PROXY v2 header with family 0x{b:02x}"),
            ProxyError::V2Short => f.write_str("PROXY v2 length too short for its addresses"),
            ProxyError::V2Tlv => f.write_str("PROXY v2 TLV overruns the header"),
        }
    }
}

impl core::error::Error for ProxyError {}

/// Whether input starts like a PROXY header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detect {
    /// It does (a whole prefix of a signature is present).
    Proxy,
    /// It cannot be one.
    NotProxy,
    /// Too few bytes to say (a strict prefix of a signature, or nothing).
    Undecided,
}

/// Whether `input` starts like a PROXY header (version 1 or 2). Decided by the
/// first byte for TLS and for every HTTP method but `POST`/`PUT`/`PATCH` (two or
/// three bytes).
pub fn detect(input: &[u8]) -> Detect {
    let mut undecided = false;
    for sig in [V1_PREFIX, &V2_SIGNATURE[..]] {
        let n = input.len().min(sig.len());
        if input[..n] == sig[..n] {
            if n == sig.len() {
                return Detect::Proxy;
            }
            undecided = true;
        }
    }
    if undecided {
        Detect::Undecided
    } else {
        Detect::NotProxy
    }
}

/// Parses a PROXY header at the start of `input` (see the module docs).
pub fn parse(input: &[u8]) -> Result<Parsed, ProxyError> {
    match detect(input) {
        Detect::NotProxy => Err(ProxyError::NotProxy),
        Detect::Undecided => Ok(Parsed::Incomplete { need: None }),
        Detect::Proxy if input.starts_with(V1_PREFIX) => parse_v1(input),
        Detect::Proxy => parse_v2(input),
    }
}

fn parse_v1(input: &[u8]) -> Result<Parsed, ProxyError> {
    let window = &input[..input.len().min(V1_MAX)];
    let Some(cr) = window.iter().position(|&b| b == b'\r') else {
        return if input.len() >= V1_MAX {
            Err(ProxyError::V1TooLong)
        } else {
            Ok(Parsed::Incomplete { need: None })
        };
    };
    match window.get(cr + 1) {
        None if input.len() < V1_MAX => return Ok(Parsed::Incomplete { need: None }),
        Some(b'\n') => {}
        None => return Err(ProxyError::V1TooLong),
        Some(_) => return Err(ProxyError::V1Malformed("\\r not followed by \\n")),
    }
    let line = core::str::from_utf8(&window[V1_PREFIX.len()..cr])
        .map_err(|_| ProxyError::V1Malformed("not ASCII"))?;
    let header = v1_fields(line)?;
    Ok(Parsed::Done(header, cr + 2))
}

fn v1_fields(line: &str) -> Result<ProxyHeader, ProxyError> {
    let mut it = line.split(' ');
    let family = it.next().unwrap_or("");
    let v6 = match family {
        "TCP4" => false,
        "TCP6" => true,
        // Whatever follows UNKNOWN is to be ignored (the specification).
        "UNKNOWN" => {
            return Ok(ProxyHeader {
                version: 1,
                addresses: None,
            });
        }
        _ => {
            return Err(ProxyError::V1Malformed(
                "protocol is not TCP4, TCP6 or UNKNOWN",
            ));
        }
    };
    let mut field = |what| it.next().ok_or(ProxyError::V1Malformed(what));
    let (src, dst) = (field("source address")?, field("destination address")?);
    let (sport, dport) = (field("source port")?, field("destination port")?);
    if it.next().is_some() {
        return Err(ProxyError::V1Malformed("extra field"));
    }
    let ip = |s: &str| -> Result<IpAddr, ProxyError> {
        if v6 {
            s.parse::<Ipv6Addr>().map(IpAddr::V6)
        } else {
            s.parse::<Ipv4Addr>().map(IpAddr::V4)
        }
        .map_err(|_| ProxyError::V1Malformed("address does not match the protocol"))
    };
    let port = |s: &str| -> Result<u16, ProxyError> {
        let ok = !s.is_empty()
            && s.len() <= 5
            && s.bytes().all(|b| b.is_ascii_digit())
            && (s == "0" || !s.starts_with('0'));
        ok.then(|| s.parse::<u16>().ok())
            .flatten()
            .ok_or(ProxyError::V1Malformed("port is not 0-65535"))
    };
    Ok(ProxyHeader {
        version: 1,
        addresses: Some(ProxyAddresses {
            source: SocketAddr::new(ip(src)?, port(sport)?),
            destination: SocketAddr::new(ip(dst)?, port(dport)?),
        }),
    })
}

fn parse_v2(input: &[u8]) -> Result<Parsed, ProxyError> {
    if input.len() < 16 {
        return Ok(Parsed::Incomplete { need: None });
    }
    let ver_cmd = input[12];
    if ver_cmd >> 4 != 2 {
        return Err(ProxyError::V2Version(ver_cmd));
    }
    let local = match ver_cmd & 0x0f {
        0 => true,
        1 => false,
        _ => return Err(ProxyError::V2Command(ver_cmd)),
    };
    let fam = input[13];
    // Address block size by family; transport: 0 UNSPEC, 1 STREAM, 2 DGRAM.
    let addr_len = match fam >> 4 {
        0 => 0,
        1 => 12,
        2 => 36,
        3 => 216,
        _ => return Err(ProxyError::V2Family(fam)),
    };
    if fam & 0x0f > 2 {
        return Err(ProxyError::V2Family(fam));
    }
    let len = usize::from(u16::from_be_bytes([input[14], input[15]]));
    let total = 16 + len;
    if input.len() < total {
        return Ok(Parsed::Incomplete { need: Some(total) });
    }
    let body = &input[16..total];
    if local {
        // A balancer's own connection (a health check): the addresses, if any,
        // are to be ignored, as is the family.
        return Ok(Parsed::Done(
            ProxyHeader {
                version: 2,
                addresses: None,
            },
            total,
        ));
    }
    if body.len() < addr_len {
        return Err(ProxyError::V2Short);
    }
    skip_tlvs(&body[addr_len..])?;
    let stream = fam & 0x0f == 1;
    let addresses = match fam >> 4 {
        1 if stream => {
            let ip = |i: usize| {
                IpAddr::V4(Ipv4Addr::new(
                    body[i],
                    body[i + 1],
                    body[i + 2],
                    body[i + 3],
                ))
            };
            let port = |i: usize| u16::from_be_bytes([body[i], body[i + 1]]);
            Some(ProxyAddresses {
                source: SocketAddr::new(ip(0), port(8)),
                destination: SocketAddr::new(ip(4), port(10)),
            })
        }
        2 if stream => {
            let ip = |i: usize| {
                let mut o = [0u8; 16];
                o.copy_from_slice(&body[i..i + 16]);
                IpAddr::V6(Ipv6Addr::from(o))
            };
            let port = |i: usize| u16::from_be_bytes([body[i], body[i + 1]]);
            Some(ProxyAddresses {
                source: SocketAddr::new(ip(0), port(32)),
                destination: SocketAddr::new(ip(16), port(34)),
            })
        }
        // A datagram connection's addresses cannot be a stream's.
        1 | 2 if fam & 0x0f == 2 => return Err(ProxyError::V2Family(fam)),
        // UNSPEC, UNIX, or an IP family with an unspecified transport: no IP
        // addresses to report.
        _ => None,
    };
    Ok(Parsed::Done(
        ProxyHeader {
            version: 2,
            addresses,
        },
        total,
    ))
}

/// Walks the TLVs (type, 16-bit length, value) after the addresses: each must fit.
fn skip_tlvs(mut rest: &[u8]) -> Result<(), ProxyError> {
    // Each round consumes at least three bytes.
    while !rest.is_empty() {
        if rest.len() < 3 {
            return Err(ProxyError::V2Tlv);
        }
        let n = 3 + usize::from(u16::from_be_bytes([rest[1], rest[2]]));
        if rest.len() < n {
            return Err(ProxyError::V2Tlv);
        }
        rest = &rest[n..];
    }
    Ok(())
}

/// An IP network (`10.0.0.0/8`, `2001:db8::/32`, or one address): the balancers a
/// server trusts to send PROXY headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// The network of `addr` with `prefix` leading bits (at most 32 for IPv4, 128
    /// for IPv6); `None` for a longer prefix.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<IpNet> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(IpNet { addr, prefix })
    }

    /// Whether `ip` is in the network. An IPv4-mapped IPv6 address
    /// (`::ffff:192.0.2.1`, what a dual-stack listener reports) counts as its
    /// IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let bits = usize::from(bits);
    let (whole, part) = (bits / 8, bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    part == 0 || (a[whole] ^ b[whole]) >> (8 - part) == 0
}

impl core::str::FromStr for IpNet {
    type Err = String;

    /// `ADDR/PREFIX` or a single `ADDR` (a /32 or /128).
    fn from_str(s: &str) -> Result<IpNet, String> {
        let bad = || format!("{s:?} is not an IP network (ADDR or ADDR/PREFIX)");
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().map_err(|_| bad())?;
        let prefix = match p {
            Some(p) => p.parse::<u8>().map_err(|_| bad())?,
            None if addr.is_ipv4() => 32,
            None => 128,
        };
        IpNet::new(addr, prefix).ok_or_else(bad)
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
        let mut v = V2_SIGNATURE.to_vec();
        v.push(cmd);
        v.push(fam);
        v.extend_from_slice(&(body.len() as u16).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    fn done(input: &[u8]) -> (ProxyHeader, usize) {
        match parse(input) {
            Ok(Parsed::Done(h, n)) => (h, n),
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn v1_tcp4_tcp6_unknown() {
        let (h, n) = done(b"PROXY TCP4 192.0.2.7 198.51.100.1 51234 443\r\nrest");
        assert_eq!(n, 45);
        assert_eq!(h.source(), Some("192.0.2.7:51234".parse().unwrap()));
        assert_eq!(h.destination(), Some("198.51.100.1:443".parse().unwrap()));
        let (h, _) = done(b"PROXY TCP6 2001:db8::1 ::1 65535 0\r\n");
        assert_eq!(h.source(), Some("[2001:db8::1]:65535".parse().unwrap()));
        let (h, n) = done(b"PROXY UNKNOWN whatever 1 2\r\n");
        assert_eq!((h.addresses, h.version, n), (None, 1, 28));
        assert_eq!(done(b"PROXY UNKNOWN\r\n").1, 15);
    }

    #[test]
    fn v1_refusals() {
        let bad: &[&[u8]] = &[
            b"PROXY TCP4 192.0.2.7 198.51.100.1 51234\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 51234 443 9\r\n",
            b"PROXY TCP4 ::1 198.51.100.1 1 2\r\n",
            b"PROXY TCP6 192.0.2.7 ::1 1 2\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 65536 443\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 0443 443\r\n",
            b"PROXY TCP4 192.0.2.7  198.51.100.1 1 443\r\n",
            b"PROXY UDP4 192.0.2.7 198.51.100.1 1 443\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 1 443\rX",
        ];
        for b in bad {
            assert!(
                matches!(parse(b), Err(ProxyError::V1Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(b)
            );
        }
        let mut long = b"PROXY UNKNOWN ".to_vec();
        long.resize(V1_MAX, b'x');
        assert_eq!(parse(&long), Err(ProxyError::V1TooLong));
        long.truncate(V1_MAX - 1);
        assert_eq!(parse(&long), Ok(Parsed::Incomplete { need: None }));
        // The longest legal line: 107 bytes with its \r\n.
        let mut max = b"PROXY UNKNOWN ".to_vec();
        max.resize(V1_MAX - 2, b'x');
        max.extend_from_slice(b"\r\n");
        assert_eq!(done(&max).1, V1_MAX);
    }

    #[test]
    fn v2_inet_inet6_local_unix_and_tlvs() {
        let mut body = vec![192, 0, 2, 7, 198, 51, 100, 1];
        body.extend_from_slice(&51234u16.to_be_bytes());
        body.extend_from_slice(&443u16.to_be_bytes());
        body.extend_from_slice(&[0x04, 0, 0]); // PP2_TYPE_NOOP, empty
        body.extend_from_slice(&[0x20, 0, 2, 1, 2]); // PP2_TYPE_SSL, 2 bytes
        let mut input = v2(0x21, 0x11, &body);
        let len = input.len();
        input.extend_from_slice(b"\x16\x03\x01");
        let (h, n) = done(&input);
        assert_eq!(n, len);
        assert_eq!(h.source(), Some("192.0.2.7:51234".parse().unwrap()));
        assert_eq!(h.version, 2);

        let mut body6 = [0u8; 36];
        body6[15] = 1;
        body6[31] = 2;
        body6[32..34].copy_from_slice(&7u16.to_be_bytes());
        body6[34..36].copy_from_slice(&8u16.to_be_bytes());
        let (h, _) = done(&v2(0x21, 0x21, &body6));
        assert_eq!(h.source(), Some("[::1]:7".parse().unwrap()));
        assert_eq!(h.destination(), Some("[::2]:8".parse().unwrap()));

        assert_eq!(done(&v2(0x20, 0x00, &[])).0.addresses, None);
        assert_eq!(done(&v2(0x20, 0x11, &body)).0.addresses, None);
        assert_eq!(done(&v2(0x21, 0x31, &[0u8; 216])).0.addresses, None);
        assert_eq!(done(&v2(0x21, 0x00, &[])).0.addresses, None);
    }

    #[test]
    fn v2_refusals_and_bounds() {
        let body = [0u8; 12];
        assert_eq!(
            parse(&v2(0x11, 0x11, &body)),
            Err(ProxyError::V2Version(0x11))
        );
        assert_eq!(
            parse(&v2(0x22, 0x11, &body)),
            Err(ProxyError::V2Command(0x22))
        );
        assert_eq!(
            parse(&v2(0x21, 0x41, &body)),
            Err(ProxyError::V2Family(0x41))
        );
        assert_eq!(
            parse(&v2(0x21, 0x13, &body)),
            Err(ProxyError::V2Family(0x13))
        );
        assert_eq!(
            parse(&v2(0x21, 0x12, &body)),
            Err(ProxyError::V2Family(0x12))
        );
        assert_eq!(
            parse(&v2(0x21, 0x11, &body[..11])),
            Err(ProxyError::V2Short)
        );
        let mut tlv = body.to_vec();
        tlv.extend_from_slice(&[1, 0, 5, 0]);
        assert_eq!(parse(&v2(0x21, 0x11, &tlv)), Err(ProxyError::V2Tlv));
        tlv.truncate(14);
        assert_eq!(parse(&v2(0x21, 0x11, &tlv)), Err(ProxyError::V2Tlv));
        // The length is known after 16 bytes and bounds the header.
        let mut big = v2(0x21, 0x11, &[0u8; 12]);
        big[14..16].copy_from_slice(&u16::MAX.to_be_bytes());
        assert_eq!(parse(&big), Ok(Parsed::Incomplete { need: Some(V2_MAX) }));
    }

    #[test]
    fn every_prefix_is_incomplete_and_detect_agrees() {
        let mut body = vec![192, 0, 2, 7, 198, 51, 100, 1, 0, 1, 0, 2];
        body.extend_from_slice(&[0x04, 0, 1, 9]);
        for whole in [
            b"PROXY TCP4 192.0.2.7 198.51.100.1 51234 443\r\n".to_vec(),
            v2(0x21, 0x11, &body),
        ] {
            for i in 0..whole.len() {
                assert!(
                    matches!(parse(&whole[..i]), Ok(Parsed::Incomplete { .. })),
                    "prefix {i}"
                );
            }
            assert!(matches!(parse(&whole), Ok(Parsed::Done(_, n)) if n == whole.len()));
            assert_eq!(detect(&whole), Detect::Proxy);
        }
        assert_eq!(detect(b""), Detect::Undecided);
        assert_eq!(detect(b"PRO"), Detect::Undecided);
        assert_eq!(detect(b"POST / HTTP/1.1"), Detect::NotProxy);
        assert_eq!(detect(b"GET"), Detect::NotProxy);
        assert_eq!(detect(b"\x16\x03\x01"), Detect::NotProxy);
        assert_eq!(detect(b"\r\n\r\n\0"), Detect::Undecided);
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Err(ProxyError::NotProxy));
    }

    #[test]
    fn networks() {
        let n: IpNet = "10.0.0.0/8".parse().unwrap();
        assert!(n.contains("10.200.1.1".parse().unwrap()));
        assert!(n.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        let one: IpNet = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let v6: IpNet = "2001:db8::/33".parse().unwrap();
        assert!(v6.contains("2001:db8:7fff::1".parse().unwrap()));
        assert!(!v6.contains("2001:db8:8000::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("192.0.2.1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "::/129", "10.0.0/8", "x", "10.0.0.0/"] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
        assert_eq!(n.to_string(), "10.0.0.0/8");
    }
}
