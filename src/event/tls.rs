//! TLS on the loop with rustls' unbuffered API: the session holds only its keys and
//! state; every buffer is ours and released when empty, so an idle `wss://`
//! connection holds no I/O buffer (rustls' buffered API keeps a 4 KiB receive
//! buffer per connection for its whole life).

use std::io::{self, Read, Write};

use mio::net::TcpStream;
use rustls::client::UnbufferedClientConnection;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, InsufficientSizeError};

/// Encrypted output or early plaintext held before the socket or the handshake
/// takes it; beyond this a write reports `WouldBlock`.
const LIMIT: usize = 64 * 1024;

/// Ciphertext read from the socket per read: a whole maximum-size record and its
/// header fit.
const READ_CHUNK: usize = 16 * 1024 + 512;

/// Largest write encrypted through the thread's scratch (larger ones go through the
/// connection's queue, so the scratch never holds more than this).
const SCRATCH_MAX: usize = 64 * 1024;

pub(crate) enum Session {
    Server(Box<UnbufferedServerConnection>),
    Client(Box<UnbufferedClientConnection>),
}

/// Runs `$body` with `$c` bound to the session of either side (the two have the same
/// API on different types).
macro_rules! either {
    ($s:expr, $c:ident => $body:expr) => {
        match $s {
            Session::Server($c) => $body,
            Session::Client($c) => $body,
        }
    };
}

pub(crate) struct TlsIo {
    pub(crate) sock: TcpStream,
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

/// What one round of record processing ended on.
enum Stop {
    /// More ciphertext is needed.
    NeedInput,
    /// `close_notify` received.
    PeerClosed,
}

fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Appends `n` zeroed bytes to `v` and returns where they start.
fn grow(v: &mut Vec<u8>, n: usize) -> usize {
    let start = v.len();
    v.resize(start + n, 0);
    start
}

impl TlsIo {
    pub(crate) fn new(sock: TcpStream, session: Session) -> TlsIo {
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
        let mut filled = 0;
        let mut used = 0;
        if self.failed {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "TLS session failed",
            ));
        }
        // Bounded: each round consumes input, emits a record, or stops.
        loop {
            let TlsIo {
                session,
                plain,
                out,
                early,
                established,
                peer_closed,
                failed,
                ..
            } = self;
            let mut stop = None;
            let mut error = None;
            let discard = either!(session, s => {
                let status = s.process_tls_records(&mut incoming[used..]);
                let mut discard = status.discard;
                match status.state {
                    Err(e) => {
                        *failed = true;
                        error = Some(e);
                    }
                    Ok(ConnectionState::ReadTraffic(mut r)) => {
                        while let Some(rec) = r.next_record() {
                            match rec {
                                Ok(rec) => {
                                    discard += rec.discard;
                                    let n = rec.payload.len().min(buf.len() - filled);
                                    buf[filled..filled + n].copy_from_slice(&rec.payload[..n]);
                                    filled += n;
                                    plain.extend_from_slice(&rec.payload[n..]);
                                }
                                Err(e) => {
                                    *failed = true;
                                    error = Some(e);
                                    break;
                                }
                            }
                        }
                    }
                    Ok(ConnectionState::EncodeTlsData(mut e)) => {
                        let mut want = 1024;
                        // Bounded: the second try has the size rustls asked for.
                        for _ in 0..2 {
                            let start = grow(out, want);
                            match e.encode(&mut out[start..]) {
                                Ok(n) => {
                                    out.truncate(start + n);
                                    break;
                                }
                                Err(EncodeError::InsufficientSize(InsufficientSizeError {
                                    required_size,
                                })) => {
                                    out.truncate(start);
                                    want = required_size;
                                }
                                Err(_) => {
                                    out.truncate(start);
                                    break;
                                }
                            }
                        }
                    }
                    Ok(ConnectionState::TransmitTlsData(t)) => {
                        // `out` goes to the socket below, in order.
                        t.done();
                    }
                    Ok(ConnectionState::WriteTraffic(mut w)) => {
                        *established = true;
                        if !early.is_empty() {
                            let data = std::mem::take(early);
                            if let Err(e) = encrypt(&mut w, &data, out) {
                                error = Some(e);
                                *failed = true;
                            }
                        }
                        stop = Some(Stop::NeedInput);
                    }
                    Ok(ConnectionState::PeerClosed) | Ok(ConnectionState::Closed) => {
                        *peer_closed = true;
                        stop = Some(Stop::PeerClosed);
                    }
                    // BlockedHandshake, and early data (not enabled: rustls refuses it).
                    Ok(_) => stop = Some(Stop::NeedInput),
                }
                discard
            });
            used += discard;
            if let Some(e) = error {
                // The alert rustls queued for the peer, best effort.
                let _ = self.flush_out();
                return Err(tls_error(e));
            }
            if let Some(stop) = stop {
                return Ok((filled, stop, used));
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
            early,
            ..
        } = self;
        let sock = &mut self.sock;
        let out_pos = &mut self.out_pos;
        let r = either!(session, s => {
            match s.process_tls_records(&mut inbuf[..]).state {
                Ok(ConnectionState::WriteTraffic(mut w)) if out.is_empty() && buf.len() <= SCRATCH_MAX => {
                    // Nothing queued ahead: encrypt into the thread's scratch and
                    // write from there; only what the socket does not take is kept.
                    OUT_SCRATCH.with(|cell| {
                        let mut scratch = cell.borrow_mut();
                        let n = encrypt_into(&mut w, buf, &mut scratch)?;
                        let sent = write_some(sock, &scratch[..n]).unwrap_or(0);
                        if sent < n {
                            out.extend_from_slice(&scratch[sent..n]);
                            *out_pos = 0;
                        }
                        Ok(())
                    })
                }
                Ok(ConnectionState::WriteTraffic(mut w)) => encrypt(&mut w, buf, out),
                Ok(_) => {
                    // Handshake records first (a key update): queue the plaintext
                    // behind them.
                    early.extend_from_slice(buf);
                    Ok(())
                }
                Err(e) => Err(e),
            }
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
            let TlsIo {
                session,
                inbuf,
                out,
                ..
            } = self;
            either!(session, s => {
                if let Ok(ConnectionState::WriteTraffic(mut w)) = s.process_tls_records(&mut inbuf[..]).state {
                    let start = grow(out, 64);
                    match w.queue_close_notify(&mut out[start..]) {
                        Ok(n) => out.truncate(start + n),
                        Err(_) => out.truncate(start),
                    }
                }
            });
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
    /// Records encrypted on this thread on their way to a socket.
    static OUT_SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn truncated() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "TCP closed without TLS close_notify",
    )
}

/// Writes what the socket takes of `bytes` now (0 when it is full).
fn write_some(sock: &mut TcpStream, bytes: &[u8]) -> io::Result<usize> {
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

/// Encrypts `data` into `scratch` (kept at its size, grown when rustls asks for more);
/// returns the length of the records.
fn encrypt_into<D>(
    w: &mut rustls::unbuffered::WriteTraffic<'_, D>,
    data: &[u8],
    scratch: &mut Vec<u8>,
) -> Result<usize, rustls::Error> {
    let want = data.len() + (data.len() / 16384 + 1) * 64;
    if scratch.len() < want {
        scratch.resize(want, 0);
    }
    // Bounded: the second try has the size rustls asked for.
    for _ in 0..2 {
        match w.encrypt(data, &mut scratch[..]) {
            Ok(n) => return Ok(n),
            Err(EncryptError::InsufficientSize(InsufficientSizeError { required_size })) => {
                scratch.resize(required_size, 0);
            }
            Err(EncryptError::EncryptExhausted) => return Err(rustls::Error::EncryptError),
        }
    }
    Err(rustls::Error::General("TLS encryption: buffer size".into()))
}

/// Encrypts `data` into records appended to `out`.
fn encrypt<D>(
    w: &mut rustls::unbuffered::WriteTraffic<'_, D>,
    data: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), rustls::Error> {
    let mut want = data.len() + (data.len() / 16384 + 1) * 64;
    // Bounded: the second try has the size rustls asked for.
    for _ in 0..2 {
        let start = grow(out, want);
        match w.encrypt(data, &mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                return Ok(());
            }
            Err(EncryptError::InsufficientSize(InsufficientSizeError { required_size })) => {
                out.truncate(start);
                want = required_size;
            }
            Err(EncryptError::EncryptExhausted) => {
                out.truncate(start);
                return Err(rustls::Error::EncryptError);
            }
        }
    }
    Err(rustls::Error::General("TLS encryption: buffer size".into()))
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
        let server = Session::Server(Box::new(
            UnbufferedServerConnection::new(Arc::clone(&scfg)).unwrap(),
        ));
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let client = Session::Client(Box::new(
            UnbufferedClientConnection::new(ccfg, name).unwrap(),
        ));
        (
            TlsIo::new(TcpStream::from_std(s), server),
            TlsIo::new(TcpStream::from_std(c), client),
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
