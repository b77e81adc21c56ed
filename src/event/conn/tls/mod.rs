//! TLS on the loop: our buffers and the socket around a [`Session`] (session.rs, the
//! one file that talks to rustls' connection API). The session holds only its keys
//! and state; every buffer is ours and released when empty, so an idle `wss://`
//! connection holds no I/O buffer (rustls' buffered API keeps a 4 KiB receive
//! buffer per connection for its whole life).

use std::io::{self, Read, Write};

use crate::event::conn::sock::Sock;

mod session;

pub(crate) use session::Session;
use session::{Sink, Stop};

/// Encrypted output or early plaintext held before the socket or the handshake
/// takes it; beyond this a write reports `WouldBlock`.
const LIMIT: usize = 64 * 1024;

/// Ciphertext read from the socket per read: a whole maximum-size record and its
/// header fit.
const READ_CHUNK: usize = 16 * 1024 + 512;

pub(crate) struct TlsIo {
    pub(crate) sock: Sock,
    session: Session,
    /// Ciphertext received and not yet processed (a partial record); no allocation
    /// while empty.
    inbuf: Vec<u8>,
    /// Plaintext decrypted beyond what the caller's buffer took.
    plain: Vec<u8>,
    plain_pos: usize,
    /// Records encoded and not yet written to the socket.
    out: Vec<u8>,
    out_pos: usize,
    /// Plaintext written before the handshake finished (a client's upgrade request).
    early: Vec<u8>,
    /// The handshake finished: application data may be sent.
    established: bool,
    /// The peer sent `close_notify`.
    peer_closed: bool,
    /// The session failed; nothing more is processed.
    failed: bool,
}

fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

use session::grow;

impl TlsIo {
    pub(crate) fn new(sock: Sock, session: Session) -> TlsIo {
        TlsIo {
            sock,
            session,
            inbuf: Vec::new(),
            plain: Vec::new(),
            plain_pos: 0,
            out: Vec::new(),
            out_pos: 0,
            early: Vec::new(),
            established: false,
            peer_closed: false,
            failed: false,
        }
    }

    /// [`process_from`](Self::process_from) over `inbuf`, which keeps what is left
    /// (a partial record) and is released when empty.
    fn process(&mut self, buf: &mut [u8]) -> io::Result<(usize, Stop)> {
        let mut inbuf = std::mem::take(&mut self.inbuf);
        let r = self.process_from(&mut inbuf, buf);
        match &r {
            Ok((_, _, used)) => {
                inbuf.drain(..*used);
            }
            Err(_) => inbuf.clear(),
        }
        if !inbuf.is_empty() {
            self.inbuf = inbuf;
        }
        r.map(|(n, stop, _)| (n, stop))
    }

    /// Processes every complete record in `incoming`: plaintext into `buf` (then into
    /// `plain`), handshake records and alerts into `out`, early plaintext encrypted
    /// once the handshake allows. Returns the plaintext bytes put into `buf` and how
    /// many bytes of `incoming` were used (the rest is a partial record).
    fn process_from(
        &mut self,
        incoming: &mut [u8],
        buf: &mut [u8],
    ) -> io::Result<(usize, Stop, usize)> {
        if self.failed {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "TLS session failed",
            ));
        }
        let TlsIo {
            session,
            plain,
            out,
            early,
            established,
            peer_closed,
            ..
        } = self;
        let mut sink = Sink {
            buf,
            filled: 0,
            plain,
            out,
            early,
            established,
            peer_closed,
        };
        match session.process(incoming, &mut sink) {
            Ok((stop, used)) => Ok((sink.filled, stop, used)),
            Err(e) => {
                self.failed = true;
                // The alert rustls queued for the peer, best effort.
                let _ = self.flush_out();
                Err(tls_error(e))
            }
        }
    }

    /// Reads plaintext: `Ok(0)` after the peer's `close_notify`; a TCP close without
    /// one is `UnexpectedEof`.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.plain_pos < self.plain.len() {
            let n = buf.len().min(self.plain.len() - self.plain_pos);
            buf[..n].copy_from_slice(&self.plain[self.plain_pos..self.plain_pos + n]);
            self.plain_pos += n;
            if self.plain_pos == self.plain.len() {
                self.plain = Vec::new();
                self.plain_pos = 0;
            }
            return Ok(n);
        }
        // Bounded: each round reads the socket or returns.
        loop {
            if self.peer_closed {
                return Ok(0);
            }
            if !self.inbuf.is_empty() {
                let (n, stop) = self.process(buf)?;
                self.flush_out()?;
                if n > 0 {
                    return Ok(n);
                }
                if matches!(stop, Stop::PeerClosed) {
                    return Ok(0);
                }
            }
            if self.inbuf.is_empty() {
                // The usual case: ciphertext lands in the thread's scratch and is
                // decrypted from there; only a partial record is kept.
                let got = SCRATCH.with(|cell| -> io::Result<Option<usize>> {
                    let mut scratch = cell.borrow_mut();
                    if scratch.len() < READ_CHUNK {
                        scratch.resize(READ_CHUNK, 0);
                    }
                    let k = match self.sock.read(&mut scratch[..]) {
                        Ok(0) => return Err(truncated()),
                        Ok(k) => k,
                        Err(e) => return Err(e),
                    };
                    let (n, stop, used) = self.process_from(&mut scratch[..k], buf)?;
                    self.inbuf.extend_from_slice(&scratch[used..k]);
                    Ok(match stop {
                        _ if n > 0 => Some(n),
                        Stop::PeerClosed => Some(0),
                        Stop::NeedInput => None,
                    })
                })?;
                self.flush_out()?;
                match got {
                    Some(n) => return Ok(n),
                    None => continue,
                }
            }
            let start = grow(&mut self.inbuf, READ_CHUNK);
            let r = self.sock.read(&mut self.inbuf[start..]);
            let got = *r.as_ref().unwrap_or(&0);
            self.inbuf.truncate(start + got);
            match r {
                Ok(0) => return Err(truncated()),
                Ok(_) => {}
                Err(e) => {
                    if self.inbuf.is_empty() {
                        self.inbuf = Vec::new();
                    }
                    return Err(e);
                }
            }
        }
    }

    /// Encrypts and queues `buf` (before the handshake finishes: holds it until it
    /// does); `WouldBlock` when more than [`LIMIT`] is waiting.
    pub(crate) fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.flush_out()?;
        if self.out.len() - self.out_pos >= LIMIT || self.early.len() >= LIMIT {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if !self.established {
            self.early.extend_from_slice(buf);
            let mut none = [0u8; 0];
            self.process(&mut none)?;
            self.flush_out()?;
            return Ok(buf.len());
        }
        let TlsIo {
            session,
            inbuf,
            out,
            out_pos,
            early,
            sock,
            ..
        } = self;
        // Nothing queued ahead: the records may go straight to the socket; only what
        // it does not take is kept.
        let direct = out.is_empty();
        let r = session.write(inbuf, buf, early, out, direct, &mut |records| {
            *out_pos = 0;
            write_some(sock, records).unwrap_or(0)
        });
        if let Err(e) = r {
            self.failed = true;
            return Err(tls_error(e));
        }
        if !self.early.is_empty() {
            let mut none = [0u8; 0];
            self.process(&mut none)?;
        }
        self.flush_out()?;
        Ok(buf.len())
    }

    /// Handshake records (a client's ClientHello first of all) and queued output to
    /// the socket.
    pub(crate) fn flush_pending(&mut self) -> io::Result<()> {
        if !self.established && !self.failed {
            let mut none = [0u8; 0];
            self.process(&mut none)?;
        }
        self.flush_out()
    }

    /// Writes `out` until the socket is full; releases it once written.
    fn flush_out(&mut self) -> io::Result<()> {
        while self.out_pos < self.out.len() {
            match self.sock.write(&self.out[self.out_pos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.out = Vec::new();
        self.out_pos = 0;
        Ok(())
    }

    pub(crate) fn has_pending(&self) -> bool {
        self.out_pos < self.out.len() || (!self.early.is_empty() && self.established)
    }

    /// Queues `close_notify` (once the handshake is done) and writes what it can.
    pub(crate) fn close_notify(&mut self) {
        if self.established && !self.failed {
            self.session.close_notify(&mut self.inbuf, &mut self.out);
        }
        let _ = self.flush_out();
    }

    #[cfg(test)]
    pub(crate) fn held_bytes(&self) -> usize {
        self.inbuf.capacity() + self.plain.capacity() + self.out.capacity() + self.early.capacity()
    }
}

thread_local! {
    /// Ciphertext read from sockets on this thread, decrypted from here (one per loop
    /// thread: no connection holds a receive buffer between reads).
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn truncated() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "TCP closed without TLS close_notify",
    )
}

/// Writes what the socket takes of `bytes` now (0 when it is full).
fn write_some(sock: &mut Sock, bytes: &[u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < bytes.len() {
        match sock.write(&bytes[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A server and a client session over loopback, driven by hand (non-blocking,
    /// bounded polling).
    fn pair() -> (TlsIo, TlsIo) {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let scfg = crate::tls::server_config(
            ck.cert.pem().as_bytes(),
            ck.signing_key.serialize_pem().as_bytes(),
        )
        .unwrap();
        let roots = crate::tls::roots_from_pem(ck.cert.pem().as_bytes()).unwrap();
        let ccfg = crate::tls::client_config(roots);
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        for t in [&c, &s] {
            t.set_nonblocking(true).unwrap();
        }
        let server = Session::server(Arc::clone(&scfg)).unwrap();
        let client = Session::client(ccfg, "localhost").unwrap();
        (
            TlsIo::new(Sock::Tcp(mio::net::TcpStream::from_std(s)), server),
            TlsIo::new(Sock::Tcp(mio::net::TcpStream::from_std(c)), client),
        )
    }

    /// Reads from `t` until `want` bytes of plaintext arrived, driving `other`'s
    /// output meanwhile.
    fn read_exact(t: &mut TlsIo, other: &mut TlsIo, want: usize) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 4096];
        let mut scratch = [0u8; 64];
        for _ in 0..20_000 {
            // The other side runs its half of the handshake.
            match other.read(&mut scratch) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
            other.flush_pending().unwrap();
            match t.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_micros(100));
                }
                Err(e) => panic!("{e}"),
            }
            if got.len() >= want {
                break;
            }
        }
        got
    }

    #[test]
    fn idle_sessions_hold_no_buffers() {
        let (mut server, mut client) = pair();
        // The client's request goes out once the handshake allows.
        let request = b"GET / HTTP/1.1\r\n\r\n".repeat(100);
        assert_eq!(client.write(&request).unwrap(), request.len());
        assert_eq!(read_exact(&mut server, &mut client, request.len()), request);
        let reply = vec![7u8; 100_000];
        let mut sent = 0;
        let mut got = Vec::new();
        let mut buf = vec![0u8; 8192];
        for _ in 0..20_000 {
            if sent < reply.len() {
                match server.write(&reply[sent..(sent + 10_000).min(reply.len())]) {
                    Ok(n) => sent += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("{e}"),
                }
            }
            server.flush_pending().unwrap();
            if let Err(e) = server.read(&mut [0u8; 16]) {
                assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
            }
            match client.read(&mut buf) {
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
            if got.len() == reply.len() {
                break;
            }
        }
        assert_eq!(got, reply);
        // Drained both ways: no buffer left on either side.
        let mut buf = [0u8; 16];
        assert_eq!(
            client.read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        assert_eq!(
            server.read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        assert!(!server.has_pending() && !client.has_pending());
        assert_eq!(server.held_bytes(), 0);
        assert_eq!(client.held_bytes(), 0);
        // close_notify: the client sees a clean end, then the server's EOF.
        server.close_notify();
        let mut end = None;
        for _ in 0..20_000 {
            match client.read(&mut buf) {
                Ok(0) => {
                    end = Some(());
                    break;
                }
                Ok(_) => panic!("data after close_notify"),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_micros(100));
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert!(end.is_some(), "close_notify never arrived");
    }

    #[test]
    fn tcp_close_without_close_notify_is_unexpected_eof() {
        let (mut server, mut client) = pair();
        client.write(b"hello").unwrap();
        assert_eq!(read_exact(&mut server, &mut client, 5), b"hello");
        client.sock.shutdown(std::net::Shutdown::Both).unwrap();
        let mut buf = [0u8; 16];
        let mut err = None;
        for _ in 0..20_000 {
            match server.read(&mut buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_micros(100));
                }
                r => {
                    err = r.err();
                    break;
                }
            }
        }
        assert_eq!(err.map(|e| e.kind()), Some(io::ErrorKind::UnexpectedEof));
    }
}
