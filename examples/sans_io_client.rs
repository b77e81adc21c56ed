//! A WebSocket client written straight on the sans-IO core (`proto::`), over a
//! plain blocking `std::net::TcpStream` with read timeouts: what a device with its
//! own network stack writes (swap the socket for smoltcp's, the clock for the
//! board's timer). No mio, no `Conn`, no event loop of ours.
//!
//! It runs the whole life of a client connection by hand:
//!
//! 1. [`ClientHandshake`] writes the upgrade request; the response is read until the
//!    handshake hands over a [`Connection`]. Bytes that arrived after the `101`
//!    head are the first frames: they are kept, not dropped.
//! 2. Every wait is a read with a timeout: the time until the connection's next
//!    deadline ([`Connection::poll_timeout`]) or our own, whichever is first. When
//!    it passes, [`Connection::handle_timeout`] runs the connection's timers.
//! 3. The connection answers the server's pings by itself (auto-pong) and sends its
//!    own heartbeat pings (`--ping SECS`); a server that answers nothing within the
//!    pong deadline ends the connection ([`Lost`](silverback::proto::Lost)).
//! 4. It sends `--count` messages, one at a time, and expects each back from
//!    `examples/echo`, followed by ten dots (`--plain`: just the echo); `--pause
//!    SECS` waits that long between messages (the heartbeat runs meanwhile).
//! 5. It closes with 1000 and waits for the server to close the TCP connection
//!    (RFC 6455 §7.1.1: the server closes first), bounded by the close timeout.
//!
//! ```text
//! cargo run --example echo &
//! cargo run --example sans_io_client -- [--url ws://127.0.0.1:22345/websocket] [--count 3]
//!     [--ping SECS] [--pause SECS] [--plain]
//! ```
//!
//! Exits 0 when every echo came back and the closing handshake completed.

mod common;

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use silverback::CloseCode;
use silverback::proto::handshake::{ClientConfig, ClientHandshake};
use silverback::proto::{Connection, ConnectionConfig, Event};
use silverback::proto::{MessageKind, Randomness};
use silverback::url::WsUrl;

type Fail = Box<dyn std::error::Error>;

/// How long we wait for an answer of the application's (an echo) before giving up.
const ANSWER_WAIT: Duration = Duration::from_secs(10);

/// The socket and the bytes received and not yet consumed by the protocol.
struct Wire {
    sock: TcpStream,
    input: Vec<u8>,
    start: usize,
}

impl Wire {
    /// Reads once, waiting until `deadline` at most. `Ok(false)`: nothing came in
    /// time (the deadline passed).
    fn read_until(&mut self, deadline: Instant) -> io::Result<Option<usize>> {
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        // A zero timeout means "block forever" to std: never pass one.
        let wait = (deadline - now).max(Duration::from_millis(1));
        self.sock.set_read_timeout(Some(wait))?;
        // Compact what was consumed, then read after what is pending.
        if self.start > 0 {
            self.input.drain(..self.start);
            self.start = 0;
        }
        let mut buf = [0u8; 16 * 1024];
        loop {
            match self.sock.read(&mut buf) {
                Ok(n) => {
                    self.input.extend_from_slice(&buf[..n]);
                    return Ok(Some(n));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes everything the connection has queued (frames, pongs, pings, close).
    fn flush(&mut self, conn: &mut Connection) -> io::Result<()> {
        while !conn.transmit().is_empty() {
            let n = self.sock.write(conn.transmit())?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            conn.advance_transmit(n);
        }
        Ok(())
    }
}

/// What the connection delivered, owned (events borrow the input buffer).
enum Got {
    Message(MessageKind, Vec<u8>),
    Closed(CloseCode, String),
}

/// Runs the connection until a whole message or the peer's close arrives, or
/// `deadline` passes (`Ok(None)`). Pings are answered and timers run on the way.
fn next(
    wire: &mut Wire,
    conn: &mut Connection,
    scratch: &mut Vec<u8>,
    message: &mut Vec<u8>,
    deadline: Instant,
) -> Result<Option<Got>, Fail> {
    // Each round consumes input, runs a timer or reads; the deadline bounds it.
    loop {
        let now = Instant::now();
        let (used, event) = conn.read(&mut wire.input[wire.start..], scratch, now)?;
        wire.start += used;
        let got = match event {
            Some(Event::Message(piece)) => {
                message.extend_from_slice(piece.data);
                piece
                    .last
                    .then(|| Got::Message(piece.kind, std::mem::take(message)))
            }
            Some(Event::Ping(p)) => {
                println!("ping from the server ({} bytes), answered", p.len());
                None
            }
            Some(Event::Pong(_)) => {
                println!("pong from the server");
                None
            }
            Some(Event::Close { code, reason }) => Some(Got::Closed(code, reason.to_owned())),
            None => None,
        };
        let had_event = event.is_some();
        // The automatic pong, our heartbeat ping, the echo of a close: out now.
        wire.flush(conn)?;
        if got.is_some() {
            return Ok(got);
        }
        if had_event {
            continue;
        }
        // Nothing more in the input: wait for bytes, our deadline or the
        // connection's, whichever comes first.
        let wake = conn.poll_timeout().map_or(deadline, |t| t.min(deadline));
        match wire.read_until(wake)? {
            Some(0) => {
                conn.handle_eof();
                return Err("the server closed the connection without a close frame".into());
            }
            Some(_) => {}
            None if Instant::now() >= deadline => return Ok(None),
            None => {
                // The connection's deadline: heartbeat ping, or the peer is gone.
                conn.handle_timeout(Instant::now())?;
                wire.flush(conn)?;
            }
        }
    }
}

fn main() -> Result<(), Fail> {
    common::usage(
        "sans_io_client [--url ws://127.0.0.1:22345/websocket] [--count N] [--ping SECS] [--pause SECS] [--plain]",
    );
    let url = WsUrl::parse(
        &common::flag_value("--url").unwrap_or_else(|| "ws://127.0.0.1:22345/websocket".into()),
    )?;
    let count: usize = common::flag_value("--count").map_or(Ok(3), |v| v.parse())?;
    let ping: Option<f64> = common::flag_value("--ping")
        .map(|v| v.parse())
        .transpose()?;
    let pause: f64 = common::flag_value("--pause").map_or(Ok(0.0), |v| v.parse())?;
    let dots = !common::flag("--plain");

    // The connection's settings: our own heartbeat (a ping every SECS, the server
    // must answer within 3 s) and how long the closing handshake may take.
    let connection = ConnectionConfig::default()
        .heartbeat(ping.map(Duration::from_secs_f64), Duration::from_secs(3))
        .close_timeout(Duration::from_secs(5));
    let config = Arc::new(ClientConfig::default().connection(connection));

    // 1. The opening handshake. Keys and masks come from the operating system's
    //    generator: a seeded one (Randomness::seeded) is for tests only.
    let mut sock = TcpStream::connect((url.host.as_str(), url.port))?;
    sock.set_nodelay(true)?;
    let mut request = Vec::new();
    let mut hs = ClientHandshake::for_url(
        config,
        &url,
        Randomness::thread(),
        Instant::now(),
        &mut request,
    );
    sock.write_all(&request)?;
    let mut wire = Wire {
        sock,
        input: Vec::new(),
        start: 0,
    };
    let (response, head_len, mut conn) = loop {
        if let Some(done) = hs.read(&wire.input, Instant::now())? {
            break done;
        }
        let deadline = hs.poll_timeout().unwrap_or(Instant::now() + ANSWER_WAIT);
        match wire.read_until(deadline)? {
            Some(0) => return Err("the server closed the connection during the handshake".into()),
            Some(_) => {}
            None => hs.handle_timeout(Instant::now())?,
        }
    };
    // Bytes past the response head are the server's first frames.
    wire.start = head_len;
    println!(
        "connected to {} ({} bytes of frames came with the 101)",
        url.authority,
        wire.input.len() - head_len
    );
    drop(response);

    // 2-4. Messages, one at a time, each answered by its echo (and ten dots).
    let mut scratch = Vec::new();
    let mut message = Vec::new();
    for i in 1..=count {
        if i > 1 && pause > 0.0 {
            // Idle: nothing is expected, but the connection's timers run (our
            // heartbeat pings) and the server's pings are answered.
            let until = Instant::now() + Duration::from_secs_f64(pause);
            if let Some(got) = next(&mut wire, &mut conn, &mut scratch, &mut message, until)? {
                return Err(match got {
                    Got::Closed(code, reason) => format!("the server closed: {code} {reason:?}"),
                    Got::Message(..) => "a message nobody asked for".into(),
                }
                .into());
            }
        }
        let text = format!("hello {i}");
        conn.send(MessageKind::Text, text.as_bytes())?;
        wire.flush(&mut conn)?;
        let expected: &[&[u8]] = if dots {
            &[text.as_bytes(), b".........."]
        } else {
            &[text.as_bytes()]
        };
        for want in expected {
            let deadline = Instant::now() + ANSWER_WAIT;
            match next(&mut wire, &mut conn, &mut scratch, &mut message, deadline)? {
                Some(Got::Message(MessageKind::Text, data)) if data == *want => {
                    println!("< {}", String::from_utf8_lossy(&data));
                }
                Some(Got::Message(kind, data)) => {
                    let (want, got) = (
                        String::from_utf8_lossy(want),
                        String::from_utf8_lossy(&data),
                    );
                    return Err(format!("expected text {want:?}, got {kind:?} {got:?}").into());
                }
                Some(Got::Closed(code, reason)) => {
                    return Err(format!("the server closed: {code} {reason:?}").into());
                }
                None => return Err("no answer in time".into()),
            }
        }
    }

    // 5. Close 1000 and wait for the server's close, then for its EOF.
    conn.close(Instant::now(), CloseCode::NORMAL, "done")?;
    wire.flush(&mut conn)?;
    // The close timeout bounds both waits (the connection's deadline).
    let deadline = Instant::now() + ANSWER_WAIT;
    loop {
        match next(&mut wire, &mut conn, &mut scratch, &mut message, deadline) {
            Ok(Some(Got::Closed(code, reason))) => {
                println!("the server answered the close: {code} {reason:?}");
                break;
            }
            // Messages still in flight before the server saw our close.
            Ok(Some(Got::Message(..))) => {}
            Ok(None) => return Err("no close from the server".into()),
            Err(e) => return Err(e),
        }
    }
    while !conn.should_close_transport() {
        let wake = conn.poll_timeout().unwrap_or(deadline);
        match wire.read_until(wake)? {
            Some(0) => conn.handle_eof(),
            // Anything after the close is discarded.
            Some(_) => wire.start = wire.input.len(),
            // The close wait ran out: the connection is done either way.
            None => {
                let _ = conn.handle_timeout(Instant::now());
            }
        }
    }
    match conn.end() {
        Some(end) if end.received => {
            println!(
                "closed ({}); the server closed the TCP connection",
                end.code
            );
            Ok(())
        }
        other => Err(format!("the connection ended as {other:?}").into()),
    }
}
