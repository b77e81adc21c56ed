//! One probe's connection to the server under test: raw bytes out (cut and paced
//! as asked), the server's answer in, everything kept as evidence.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::proto::handshake::{HeadLimits, Request, accept_key, generate_key, parse_request};
use crate::proto::raw::{Chunking, RawFrame, chunks};
use crate::url::WsUrl;

/// Bytes of each direction kept as evidence (the totals are counted beyond it).
const EVIDENCE_MAX: usize = 2048;

/// Where the probes go.
#[derive(Debug, Clone)]
pub struct Target {
    /// The parsed URL.
    pub url: WsUrl,
    /// The address connected to.
    pub addr: SocketAddr,
    /// For `wss://`: the TLS client settings (feature `tls`).
    #[cfg(feature = "tls")]
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

fn resolve(u: &WsUrl) -> io::Result<SocketAddr> {
    (u.host.as_str(), u.port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::other("no address"))
}

fn parse_url(url: &str) -> io::Result<WsUrl> {
    WsUrl::parse(url).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))
}

impl Target {
    /// Resolves a `ws://` URL (`wss://` needs `Target::with_tls`, feature `tls`).
    pub fn new(url: &str) -> io::Result<Target> {
        let u = parse_url(url)?;
        if u.secure {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "wss:// needs TLS settings (a build with the `tls` feature; --ca FILE or --insecure)",
            ));
        }
        let addr = resolve(&u)?;
        Ok(Target {
            url: u,
            addr,
            #[cfg(feature = "tls")]
            tls: None,
        })
    }

    /// Resolves a `ws://` or `wss://` URL; `wss://` connections use `tls`.
    #[cfg(feature = "tls")]
    pub fn with_tls(url: &str, tls: std::sync::Arc<rustls::ClientConfig>) -> io::Result<Target> {
        let u = parse_url(url)?;
        let addr = resolve(&u)?;
        let tls = u.secure.then_some(tls);
        Ok(Target { url: u, addr, tls })
    }

    /// A valid upgrade request with `key`, plus `extra` header lines (each ending
    /// in CRLF).
    pub fn request(&self, key: &str, extra: &str) -> String {
        format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n",
            self.url.target, self.url.authority
        )
    }
}

/// What was sent and received, for the report.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// The first bytes sent.
    pub sent: Vec<u8>,
    /// All bytes sent.
    pub sent_total: u64,
    /// The first bytes received.
    pub received: Vec<u8>,
    /// All bytes received.
    pub received_total: u64,
}

impl Evidence {
    fn keep(v: &mut Vec<u8>, total: &mut u64, bytes: &[u8]) {
        let room = EVIDENCE_MAX.saturating_sub(v.len());
        v.extend_from_slice(&bytes[..bytes.len().min(room)]);
        *total += bytes.len() as u64;
    }

    fn sent_bytes(&mut self, bytes: &[u8]) {
        Self::keep(&mut self.sent, &mut self.sent_total, bytes);
    }

    fn received_bytes(&mut self, bytes: &[u8]) {
        Self::keep(&mut self.received, &mut self.received_total, bytes);
    }
}

/// How the server's side of the connection ended, if it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Still open when the wait ran out.
    Open,
    /// The server closed the TCP connection (FIN).
    Eof,
    /// The connection was reset.
    Reset,
}

/// An HTTP answer to an upgrade request.
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    /// The status code.
    pub status: u16,
    /// The header fields.
    pub headers: Vec<(String, String)>,
}

impl HttpAnswer {
    /// The first header field named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The transport: plain TCP, or TLS over it (`wss://`).
enum Stream {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            #[cfg(feature = "tls")]
            Stream::Tls(s) => &s.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// A probe's connection.
pub struct Session {
    sock: Stream,
    rx: Vec<u8>,
    /// What went each way.
    pub evidence: Evidence,
    /// How the server's side ended (once it did).
    pub end: End,
}

impl Session {
    /// A TCP connection to the target.
    pub fn connect(t: &Target, timeout: Duration) -> io::Result<Session> {
        let tcp = TcpStream::connect_timeout(&t.addr, timeout)?;
        tcp.set_nodelay(true)?;
        #[cfg(feature = "tls")]
        let sock = match &t.tls {
            Some(cfg) => {
                let name = rustls::pki_types::ServerName::try_from(t.url.host.clone())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
                let conn =
                    rustls::ClientConnection::new(cfg.clone(), name).map_err(io::Error::other)?;
                // The TLS handshake runs within the first write or read.
                tcp.set_read_timeout(Some(timeout))?;
                Stream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp)))
            }
            None => Stream::Plain(tcp),
        };
        #[cfg(not(feature = "tls"))]
        let sock = Stream::Plain(tcp);
        Ok(Session {
            sock,
            rx: Vec::new(),
            evidence: Evidence::default(),
            end: End::Open,
        })
    }

    /// A session on a connection a client opened to us (`wsprobe serve`).
    pub fn accepted(sock: TcpStream) -> io::Result<Session> {
        sock.set_nodelay(true)?;
        Ok(Session {
            sock: Stream::Plain(sock),
            rx: Vec::new(),
            evidence: Evidence::default(),
            end: End::Open,
        })
    }

    /// Reads a client's request head with the handshake's own parser (`None`: the
    /// connection ended or the deadline passed first).
    pub fn read_request(&mut self, deadline: Instant) -> io::Result<Option<Request>> {
        self.read_until(deadline, |b| b.windows(4).any(|w| w == b"\r\n\r\n"));
        match parse_request(&self.rx, &HeadLimits::default()) {
            Ok(Some((req, n))) => {
                self.rx.drain(..n);
                Ok(Some(req))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
        }
    }

    /// A connection upgraded with a valid request (`extra` header lines added).
    /// Fails unless the server answers 101 with the right accept key.
    pub fn open(t: &Target, timeout: Duration, extra: &str) -> io::Result<(Session, HttpAnswer)> {
        let mut s = Session::connect(t, timeout)?;
        let key = generate_key();
        s.send(
            t.request(&key, extra).as_bytes(),
            &Chunking::Whole,
            Duration::ZERO,
        )?;
        let answer = s
            .read_head(Instant::now() + timeout)?
            .ok_or_else(|| io::Error::other("no HTTP answer to a valid upgrade request"))?;
        if answer.status != 101 {
            return Err(io::Error::other(format!(
                "a valid upgrade request was answered {}",
                answer.status
            )));
        }
        if answer.header("sec-websocket-accept") != Some(accept_key(key.as_bytes()).as_str()) {
            return Err(io::Error::other("wrong or missing Sec-WebSocket-Accept"));
        }
        Ok((s, answer))
    }

    /// Sends `bytes` cut as `chunking` says, pausing `pause` between pieces.
    pub fn send(&mut self, bytes: &[u8], chunking: &Chunking, pause: Duration) -> io::Result<()> {
        let pieces = chunks(bytes, chunking);
        let n = pieces.len();
        for (i, p) in pieces.into_iter().enumerate() {
            self.sock.write_all(p)?;
            self.evidence.sent_bytes(p);
            if i + 1 < n && !pause.is_zero() {
                std::thread::sleep(pause);
            }
        }
        Ok(())
    }

    /// Sends `bytes` in one write that gives up after `timeout` (a server that
    /// stopped reading).
    pub fn send_with_timeout(&mut self, bytes: &[u8], timeout: Duration) -> io::Result<()> {
        self.sock.tcp().set_write_timeout(Some(timeout))?;
        let r = self.sock.write_all(bytes);
        let _ = self.sock.tcp().set_write_timeout(None);
        self.evidence.sent_bytes(bytes);
        r
    }

    /// Sends frames, each in one write.
    pub fn send_frames(&mut self, frames: &[RawFrame]) -> io::Result<()> {
        let mut bytes = Vec::new();
        for f in frames {
            f.encode_into(&mut bytes);
        }
        self.send(&bytes, &Chunking::Whole, Duration::ZERO)
    }

    /// Closes our sending side (TCP half-close).
    pub fn shutdown_write(&mut self) {
        #[cfg(feature = "tls")]
        if let Stream::Tls(s) = &mut self.sock {
            s.conn.send_close_notify();
            let _ = s.flush();
        }
        let _ = self.sock.tcp().shutdown(Shutdown::Write);
    }

    /// Reads what arrives until `deadline`, the end of the connection, or `enough`
    /// says the received bytes suffice. Returns false if the deadline passed first.
    fn read_until(&mut self, deadline: Instant, mut enough: impl FnMut(&[u8]) -> bool) -> bool {
        let mut buf = [0u8; 16 * 1024];
        loop {
            if enough(&self.rx) {
                return true;
            }
            if self.end != End::Open {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let _ = self
                .sock
                .tcp()
                .set_read_timeout(Some((deadline - now).max(Duration::from_millis(1))));
            match self.sock.read(&mut buf) {
                Ok(0) => self.end = End::Eof,
                Ok(n) => {
                    self.rx.extend_from_slice(&buf[..n]);
                    self.evidence.received_bytes(&buf[..n]);
                    // Never hold more than a bounded amount: a flood is evidence
                    // enough.
                    if self.rx.len() > 64 << 20 {
                        self.rx.drain(..32 << 20);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => self.end = End::Reset,
                // TLS without close_notify: the TCP connection ended all the same.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => self.end = End::Eof,
                Err(_) => self.end = End::Reset,
            }
        }
    }

    /// Reads an HTTP answer head (`None`: the connection ended or the deadline
    /// passed before a whole head arrived).
    pub fn read_head(&mut self, deadline: Instant) -> io::Result<Option<HttpAnswer>> {
        self.read_until(deadline, |b| b.windows(4).any(|w| w == b"\r\n\r\n"));
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&self.rx) {
            Ok(httparse::Status::Complete(n)) => {
                let answer = HttpAnswer {
                    status: resp.code.unwrap_or(0),
                    headers: resp
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_owned(),
                                String::from_utf8_lossy(h.value).into_owned(),
                            )
                        })
                        .collect(),
                };
                self.rx.drain(..n);
                Ok(Some(answer))
            }
            Ok(httparse::Status::Partial) => Ok(None),
            Err(e) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad HTTP answer: {e}"),
            )),
        }
    }

    /// The next whole frame from the server, waiting until `deadline`.
    pub fn next_frame(&mut self, deadline: Instant) -> Option<RawFrame> {
        self.read_until(deadline, |b| RawFrame::parse(b).is_some());
        let (f, n) = RawFrame::parse(&self.rx)?;
        self.rx.drain(..n);
        Some(f)
    }

    /// Waits until the server ends the connection or `deadline` passes; frames
    /// that arrive meanwhile are returned.
    pub fn drain_until_end(&mut self, deadline: Instant) -> Vec<RawFrame> {
        let mut frames = Vec::new();
        loop {
            if let Some(f) = self.next_frame(deadline) {
                frames.push(f);
                continue;
            }
            if self.end != End::Open || Instant::now() >= deadline {
                return frames;
            }
        }
    }

    /// Bytes received and not yet parsed as a frame.
    pub fn unparsed(&self) -> usize {
        self.rx.len()
    }

    /// Resets the connection (RST instead of FIN): linger 0, then close.
    pub fn reset(self) {
        let _ = socket2::SockRef::from(self.sock.tcp()).set_linger(Some(Duration::ZERO));
        drop(self.sock);
    }
}
