//! Shared vocabulary for the protocol tests: owned events, a driver that feeds a
//! decoder in arbitrary chunks, and a raw frame builder for malformed input.
#![allow(dead_code)]

use silverback::Error;
use silverback::proto::CloseCode;
use silverback::proto::apply_mask;
use silverback::proto::{Decoder, FrameEvent, MessageKind};

/// An owned copy of a decoder event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ev {
    Data {
        kind: MessageKind,
        payload: Vec<u8>,
        first: bool,
        last: bool,
    },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<(u16, String)>),
}

impl Ev {
    pub fn from_event(e: &FrameEvent<'_>) -> Ev {
        match e {
            FrameEvent::Data(d) => Ev::Data {
                kind: d.kind,
                payload: d.payload.to_vec(),
                first: d.first,
                last: d.last,
            },
            FrameEvent::Ping(p) => Ev::Ping(p.to_vec()),
            FrameEvent::Pong(p) => Ev::Pong(p.to_vec()),
            FrameEvent::Close(c) => {
                Ev::Close(c.map(|(c, r): (CloseCode, &str)| (c.0, r.to_owned())))
            }
        }
    }
}

/// A whole message or control frame, as an application sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    Text(Vec<u8>),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<(u16, String)>),
}

/// Feeds `input` to `dec` in chunks whose sizes cycle through `chunks` (0 entries are
/// skipped), the way a socket would deliver it, with a caller-owned buffer that keeps
/// unconsumed bytes. Returns every event, and the error if one occurred.
pub fn drive(dec: &mut Decoder, input: &[u8], chunks: &[usize]) -> (Vec<Ev>, Option<Error>) {
    let mut buf: Vec<u8> = Vec::new();
    let mut start = 0;
    let mut fed = 0;
    let mut events = Vec::new();
    let mut ci = 0;
    let mut steps = 0usize;
    loop {
        steps += 1;
        assert!(steps < 10_000_000, "decoder loop did not terminate");
        match dec.decode(&mut buf[start..]) {
            Err(e) => return (events, Some(e.into())),
            Ok((n, Some(ev))) => {
                events.push(Ev::from_event(&ev));
                start += n;
            }
            Ok((n, None)) => {
                start += n;
                if fed == input.len() {
                    return (events, None);
                }
                let size = chunks
                    .get(ci % chunks.len().max(1))
                    .copied()
                    .unwrap_or(input.len())
                    .max(1);
                ci += 1;
                let end = (fed + size).min(input.len());
                buf.drain(..start);
                start = 0;
                buf.extend_from_slice(&input[fed..end]);
                fed = end;
            }
        }
    }
}

/// Joins data pieces into whole messages; control events pass through.
pub fn assemble(events: &[Ev]) -> Vec<Msg> {
    let mut out = Vec::new();
    let mut cur: Option<(MessageKind, Vec<u8>)> = None;
    for e in events {
        match e {
            Ev::Data {
                kind,
                payload,
                first,
                last,
            } => {
                if *first {
                    assert!(cur.is_none(), "first piece while a message is open");
                    cur = Some((*kind, Vec::new()));
                }
                let (k, buf) = cur.as_mut().expect("piece without a first piece");
                assert_eq!(k, kind, "kind changed mid-message");
                buf.extend_from_slice(payload);
                if *last {
                    let (k, buf) = cur.take().unwrap();
                    out.push(match k {
                        MessageKind::Text => Msg::Text(buf),
                        MessageKind::Binary => Msg::Binary(buf),
                    });
                }
            }
            Ev::Ping(p) => out.push(Msg::Ping(p.clone())),
            Ev::Pong(p) => out.push(Msg::Pong(p.clone())),
            Ev::Close(c) => out.push(Msg::Close(c.clone())),
        }
    }
    out
}

/// Builds a raw frame with any header bits, masked with `mask` if given.
pub fn raw_frame(b0: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![b0];
    let mbit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(mbit | n as u8),
        n @ 126..=0xFFFF => {
            out.push(mbit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mbit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(k) = mask {
        out.splice(start..start, k);
        apply_mask(&mut out[start + 4..], k, 0);
    }
    out
}

/// A frame as a client sends it (masked with a fixed key).
pub fn cframe(b0: u8, payload: &[u8]) -> Vec<u8> {
    raw_frame(b0, Some([0x11, 0x22, 0x33, 0x44]), payload)
}

/// A frame as a server sends it (unmasked).
pub fn sframe(b0: u8, payload: &[u8]) -> Vec<u8> {
    raw_frame(b0, None, payload)
}

// ---- Real sockets: a raw peer that speaks bytes, and a test server ----

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use silverback::proto::FrameHeader;

/// A frame as read off the wire by a [`RawPeer`], unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    pub fin: bool,
    pub rsv: u8,
    pub opcode: u8,
    pub masked: bool,
    pub payload: Vec<u8>,
}

impl RawFrame {
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == 8 && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// A peer that writes raw bytes and reads raw frames, for malformed-input tests.
pub struct RawPeer {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

pub const RFC_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

impl RawPeer {
    pub fn connect(addr: std::net::SocketAddr) -> RawPeer {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        RawPeer {
            stream,
            buf: Vec::new(),
        }
    }

    /// Connects and completes a client handshake on `path`.
    pub fn handshake(addr: std::net::SocketAddr, path: &str) -> RawPeer {
        let mut p = RawPeer::connect(addr);
        p.send(
            format!(
                "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: {RFC_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            .as_bytes(),
        );
        let head = p.read_head();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        p
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("raw write");
    }

    fn fill(&mut self) -> usize {
        let mut tmp = [0u8; 65536];
        match self.stream.read(&mut tmp) {
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                n
            }
            Err(e) => panic!("raw read: {e}"),
        }
    }

    /// Reads an HTTP head (status line and headers) and returns it as text.
    pub fn read_head(&mut self) -> String {
        loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.buf.drain(..i + 4).collect();
                return String::from_utf8_lossy(&head).into_owned();
            }
            assert!(self.fill() > 0, "EOF before the end of the HTTP head");
        }
    }

    /// Reads the HTTP status code of a response (and the rest of what arrives).
    pub fn read_status(&mut self) -> u16 {
        let head = self.read_head();
        head.split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    /// Reads one frame, or `None` at EOF.
    pub fn read_frame(&mut self) -> Option<RawFrame> {
        loop {
            if let Some((h, n)) = FrameHeader::decode(&self.buf).expect("peer sent a bad header") {
                let total = n + h.payload_len as usize;
                if self.buf.len() >= total {
                    let mut payload: Vec<u8> = self.buf[n..total].to_vec();
                    if let Some(k) = h.mask {
                        apply_mask(&mut payload, k, 0);
                    }
                    self.buf.drain(..total);
                    return Some(RawFrame {
                        fin: h.fin,
                        rsv: h.rsv,
                        opcode: h.opcode.as_u8(),
                        masked: h.mask.is_some(),
                        payload,
                    });
                }
            }
            if self.fill() == 0 {
                return None;
            }
        }
    }

    /// True if the peer closed the TCP connection (EOF or reset) with nothing more
    /// to read.
    pub fn at_eof(&mut self) -> bool {
        let mut tmp = [0u8; 1024];
        loop {
            match self.stream.read(&mut tmp) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }
}

/// Runs `handle` for each accepted connection on a fresh loopback port, one thread
/// per connection; returns the address.
pub fn serve<F>(handle: F) -> std::net::SocketAddr
where
    F: Fn(TcpStream) + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::sync::Arc::new(handle);
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            let h = handle.clone();
            std::thread::spawn(move || h(s));
        }
    });
    addr
}

/// A one-shot HTTP/1.1 request over a fresh connection; returns status and body.
pub fn http(addr: std::net::SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Builds an example once (debug profile) and returns the path of its binary.
pub fn example(name: &str) -> std::path::PathBuf {
    use std::sync::Mutex;
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|b| b == name) {
        // examples/push needs the `json` feature.
        let features: &[&str] = if name == "push" {
            &["--features", "json"]
        } else {
            &[]
        };
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--example", name])
            .args(features)
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building example {name} failed");
        built.push(name.to_owned());
    }
    let mut p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    p.push("target/debug/examples");
    p.push(name);
    p
}

/// A child process killed on drop.
pub struct Child(pub std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts an example on a loopback port of its own choosing and returns once it
/// listens.
pub fn run_example(name: &str, extra: &[&str]) -> (Child, std::net::SocketAddr) {
    let mut cmd = std::process::Command::new(example(name));
    cmd.args(extra);
    spawn_listening(cmd)
}

/// Runs `cmd` (one of our examples) with `--addr 127.0.0.1:0` and reads the address
/// it bound from the line it prints when it listens (`... ws://ADDR/...` or
/// `wss://`): no port
/// is picked in advance, so parallel tests cannot race for one. The rest of its
/// output is drained on a thread.
pub fn spawn_listening(mut cmd: std::process::Command) -> (Child, std::net::SocketAddr) {
    use std::io::BufRead;
    let mut child = Child(
        cmd.arg("--addr")
            .arg("127.0.0.1:0")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn example"),
    );
    let stdout = child.0.stdout.take().expect("piped stdout");
    let mut lines = std::io::BufReader::new(stdout).lines();
    // The address line is the first the examples print; a few more are allowed.
    for _ in 0..20 {
        let Some(Ok(line)) = lines.next() else {
            break;
        };
        // The WebSocket address (a line may name others, such as Redis's).
        let ws = line
            .split_once("ws://")
            .or_else(|| line.split_once("wss://"));
        let addr = ws.and_then(|(_, rest)| {
            let end = rest.find(['/', ' ', ';']).unwrap_or(rest.len());
            rest[..end].parse::<std::net::SocketAddr>().ok()
        });
        if let Some(addr) = addr {
            std::thread::spawn(move || lines.for_each(drop));
            return (child, addr);
        }
    }
    panic!("{cmd:?} printed no listening address");
}

/// An in-memory stream: reads from `input`, records writes in `out`.
pub struct MemStream {
    pub input: std::io::Cursor<Vec<u8>>,
    pub out: Vec<u8>,
}

impl MemStream {
    pub fn new(input: Vec<u8>) -> Self {
        MemStream {
            input: std::io::Cursor::new(input),
            out: Vec::new(),
        }
    }
}

impl Read for MemStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for MemStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl silverback::blocking::Stream for MemStream {}

/// A server that reads one upgrade request and answers with `answer(accept)`, where
/// `accept` is the correct `Sec-WebSocket-Accept` for the request's key; then it
/// optionally half-closes, and keeps the socket open for `linger`.
pub fn answering_server<F>(answer: F, half_close: bool, linger: Duration) -> std::net::SocketAddr
where
    F: Fn(&str) -> Vec<u8> + Send + Sync + 'static,
{
    serve(move |mut s| {
        let mut buf = [0u8; 4096];
        let mut got = Vec::new();
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        let text = String::from_utf8_lossy(&got).into_owned();
        let key = text
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap_or("");
        let accept = silverback::proto::handshake::accept_key(key.trim().as_bytes());
        let _ = s.write_all(&answer(&accept));
        if half_close {
            let _ = s.shutdown(std::net::Shutdown::Write);
        }
        std::thread::sleep(linger);
    })
}

/// A `101` head with the given accept key and extra header lines.
pub fn switching(accept: &str, extra: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n{extra}\r\n"
    )
    .into_bytes()
}

/// A loopback port free a moment ago, for a program that cannot bind port 0 and
/// report it (redis-server, HAProxy). Another process may take it in between;
/// tests that can start a server on port 0 do.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (at most 10 s, polling every 10 ms) until `ok` holds; panics with
/// `what` otherwise. For the event loop's counters: a loop publishes its
/// `Stats` at the end of an iteration, so a client can see the effect of an
/// event (a 503, a close) before the counter that records it.
pub fn until(ok: impl Fn() -> bool, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Greets every connection with the peer address it sees (what a PROXY header,
/// a forward proxy or a Unix socket makes of it), then echoes.
pub struct Greeter;
impl silverback::event::Handler for Greeter {
    type Data = ();
    fn on_open(&mut self, ctx: &mut silverback::event::Ctx<'_, ()>) {
        let peer = ctx.peer_addr().to_string();
        let _ = ctx.send_text(&peer);
    }
    fn on_message(
        &mut self,
        ctx: &mut silverback::event::Ctx<'_, ()>,
        msg: silverback::event::MessageRef<'_>,
    ) {
        let _ = ctx.send(msg.kind, msg.data);
    }
}

/// Waits (at most 10 s) until something accepts on `127.0.0.1:port`; `what`
/// names it in the failure.
pub fn wait_port(port: u16, what: &str) {
    until(
        || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        &format!("{what} did not listen on {port}"),
    );
}
