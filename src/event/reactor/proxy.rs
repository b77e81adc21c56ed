//! The PROXY protocol step of an accepted connection (servers with
//! [`ProxyProtocol`](crate::event::ProxyProtocol) on): before TLS and the request,
//! the loop peeks at the socket, parses the header with
//! [`proto::proxy`](crate::proto::proxy) and consumes exactly its bytes, so
//! whatever the client sent behind it (a ClientHello, a request) stays in the
//! socket for the next phase.

use std::io::{self, Read};

use mio::net::TcpStream;

use crate::proto::proxy::{self, Detect, Parsed, ProxyHeader};

use crate::event::api::handler::Handler;
use crate::event::conn::transport::Transport;
use crate::event::conn::{Phase, ProxyWait};
use crate::event::reactor::worker::{Parts, Worker, interrupted, would_block};

/// Bytes peeked at first: a whole version 1 line (107) and every version 2 header
/// without large TLVs. A longer version 2 header is peeked at again whole, once its
/// length is known (at most [`proxy::V2_MAX`]).
const PEEK: usize = 256;

/// What the bytes so far decide.
enum Verdict {
    /// Not enough bytes yet.
    Wait,
    /// No header, and none needed: the connection is the client itself.
    Direct,
    /// A header of this many bytes.
    Header(ProxyHeader, usize),
    /// Close the connection, for this reason.
    Refuse(String),
}

impl<H: Handler> Worker<H> {
    /// Runs the PROXY step of a connection in [`Phase::Proxy`]. Returns true when
    /// the connection has moved on to its request (and its input should be read
    /// now), false when it waits for more bytes or was closed.
    #[cold]
    #[inline(never)]
    pub(crate) fn proxy_step(&mut self, slot: usize) -> bool {
        let required = self
            .config()
            .proxy_protocol
            .as_ref()
            .is_some_and(|p| p.is_required());
        let now = self.core.now;
        let Some(Parts { conn: c, core, .. }) = self.parts(slot) else {
            return false;
        };
        let Phase::Proxy(w) = &c.io.phase else {
            return true;
        };
        let trusted = w.trusted;
        let Some(sock) = c.io.sock.as_mut() else {
            return false;
        };
        // Only TCP connections wait for a PROXY header (see `adopt`).
        let Some(tcp) = sock.sock().as_tcp_mut() else {
            return false;
        };
        let verdict = match judge(tcp, trusted, required) {
            Ok(v) => v,
            Err(e) => {
                crate::logging::debug!(
                    "{}: {} left during the PROXY step: {e}",
                    c.io.id,
                    c.io.peer()
                );
                c.io.kill(&mut core.shared);
                return false;
            }
        };
        let header = match verdict {
            Verdict::Wait => return false,
            Verdict::Refuse(why) => {
                core.shared.stats.proxy_refused += 1;
                crate::logging::info!("{}: refused {}: {why}", c.io.id, c.io.peer());
                c.io.kill(&mut core.shared);
                return false;
            }
            Verdict::Direct => None,
            Verdict::Header(h, used) => {
                if let Err(e) = consume(tcp, used) {
                    crate::logging::debug!("{}: {}: {e}", c.io.id, c.io.peer());
                    c.io.kill(&mut core.shared);
                    return false;
                }
                Some(h)
            }
        };
        if let Some(src) = header.and_then(|h| h.source()) {
            crate::logging::debug!("{}: {} is {src} (PROXY header)", c.io.id, c.io.peer());
            c.io.set_peer(src);
        }
        // On to the request: TLS wraps the socket now, behind the header.
        let placeholder = Phase::Deferred {
            seq: 0,
            keep_alive: false,
            deadline: now,
        };
        let Phase::Proxy(w) = std::mem::replace(&mut c.io.phase, placeholder) else {
            return false;
        };
        let ProxyWait { hs, tls, .. } = *w;
        c.io.phase = Phase::Request(hs);
        if !self.admit(slot, tls.is_tls()) {
            return false;
        }
        let Some(c) = self.slots[slot].as_mut() else {
            return false;
        };
        if let Some(Transport::Plain(tcp)) = c.io.sock.take() {
            match tls.wrap(tcp) {
                Ok(t) => c.io.sock = Some(t),
                Err(_) => {
                    c.io.kill(&mut self.core.shared);
                    return false;
                }
            }
        }
        true
    }
}

/// Peeks at the socket and decides (see [`Verdict`]).
fn judge(tcp: &TcpStream, trusted: bool, required: bool) -> io::Result<Verdict> {
    let mut small = [0u8; PEEK];
    let Some(n) = peek(tcp, &mut small)? else {
        return Ok(Verdict::Wait);
    };
    if !trusted {
        return Ok(match proxy::detect(&small[..n]) {
            Detect::Undecided => Verdict::Wait,
            Detect::NotProxy => Verdict::Direct,
            Detect::Proxy => Verdict::Refuse("a PROXY header from an address not trusted".into()),
        });
    }
    let parsed = match proxy::parse(&small[..n]) {
        Ok(Parsed::Incomplete { need: Some(total) }) if total > PEEK => {
            // A version 2 header with large TLVs: peek at it whole.
            let mut big = vec![0u8; total];
            match peek(tcp, &mut big)? {
                Some(n) => proxy::parse(&big[..n]),
                None => return Ok(Verdict::Wait),
            }
        }
        r => r,
    };
    Ok(match parsed {
        Ok(Parsed::Done(h, used)) => Verdict::Header(h, used),
        Ok(Parsed::Incomplete { .. }) => Verdict::Wait,
        Err(proxy::ProxyError::NotProxy) if !required => Verdict::Direct,
        Err(proxy::ProxyError::NotProxy) => {
            Verdict::Refuse("no PROXY header from a balancer that must send one".into())
        }
        Err(e) => Verdict::Refuse(e.to_string()),
    })
}

/// Peeks at what the socket holds: `None` when nothing yet.
fn peek(tcp: &TcpStream, buf: &mut [u8]) -> io::Result<Option<usize>> {
    // Each round returns or retries after an interrupted call.
    for _ in 0..8 {
        match tcp.peek(buf) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed before its first bytes",
                ));
            }
            Ok(n) => return Ok(Some(n)),
            Err(e) if would_block(&e) => return Ok(None),
            Err(e) if interrupted(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// Reads (and drops) the `n` header bytes that were peeked at.
fn consume(tcp: &mut TcpStream, mut n: usize) -> io::Result<()> {
    let mut scratch = [0u8; 4096];
    // Every byte was peeked, so each read returns some; the bound is only a guard.
    for _ in 0..(proxy::V2_MAX / 1024 + 8) {
        if n == 0 {
            return Ok(());
        }
        let want = n.min(scratch.len());
        match tcp.read(&mut scratch[..want]) {
            Ok(0) => break,
            Ok(k) => n -= k,
            Err(e) if interrupted(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("PROXY header bytes vanished"))
}
