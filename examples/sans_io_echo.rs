//! The tutorial's echo server driven straight from the sans-IO core (`proto::`)
//! over `std::net` non-blocking sockets: no mio, no event loop of ours. This is what
//! an embedded user with their own poller (or a smoltcp stack) writes: read bytes,
//! feed them to the handshake and then the connection, write what it asks, wake up
//! at its deadline.
//!
//! ```text
//! cargo run --release --example sans_io_echo -- [--addr HOST:PORT] [--plain] [--ping SECS]
//! ```
//!
//! Each message on `/websocket` is echoed and followed by ten dots (`--plain`: a
//! pure echo on any path). `--ping SECS` turns on the connection's heartbeat.

mod common;

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use silverback::proto::handshake::{ServerConfig, ServerHandshake};
use silverback::proto::{Connection, ConnectionConfig, Event};

/// One client: its socket, the bytes received and not yet consumed, and where it
/// is in its life.
struct Client {
    sock: TcpStream,
    input: Vec<u8>,
    state: State,
}

enum State {
    /// Reading the request head.
    Handshake(ServerHandshake),
    /// A refusal is being written; drop the client once it is out.
    Refused(Vec<u8>),
    /// WebSocket frames; `message` collects a message that arrives in pieces.
    Open {
        conn: Box<Connection>,
        message: Vec<u8>,
        scratch: Vec<u8>,
    },
}

/// Writes what it can without blocking; returns how many bytes went out.
fn write_some(sock: &mut TcpStream, bytes: &[u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < bytes.len() {
        match sock.write(&bytes[done..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Reads what is there without blocking. `Ok(false)`: the peer closed its side.
fn read_available(sock: &mut TcpStream, into: &mut Vec<u8>) -> io::Result<bool> {
    let mut buf = [0u8; 16 * 1024];
    // Bounded: a peer that keeps the socket full yields to the others after 16 reads.
    for _ in 0..16 {
        match sock.read(&mut buf) {
            Ok(0) => return Ok(false),
            Ok(n) => into.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

impl Client {
    /// One round for this client: read, run the protocol, write. Returns false when
    /// the client should be dropped.
    fn poll(&mut self, now: Instant, plain: bool) -> bool {
        let open = match read_available(&mut self.sock, &mut self.input) {
            Ok(open) => open,
            Err(_) => return false,
        };
        if let State::Handshake(hs) = &self.state {
            match hs.parse(&self.input) {
                Ok(None) if open && hs.handle_timeout(now).is_ok() => return true,
                Ok(None) => return false,
                Ok(Some((req, head_len))) => {
                    let checked = hs.check(&req).and_then(|()| {
                        if plain || req.path() == "/websocket" {
                            Ok(())
                        } else {
                            Err(silverback::HandshakeError::Refused(404, "not found".into()))
                        }
                    });
                    self.state = match checked {
                        Ok(()) => {
                            let hs = match std::mem::replace(
                                &mut self.state,
                                State::Refused(Vec::new()),
                            ) {
                                State::Handshake(hs) => hs,
                                _ => unreachable!("checked above"),
                            };
                            let protocol = hs.select_protocol(&req).map(str::to_owned);
                            self.input.drain(..head_len);
                            State::Open {
                                conn: Box::new(hs.accept(&req, protocol.as_deref(), &[], now)),
                                message: Vec::new(),
                                scratch: Vec::new(),
                            }
                        }
                        Err(e) => {
                            let mut out = Vec::new();
                            match &e {
                                silverback::HandshakeError::Refused(status, body) => {
                                    ServerHandshake::refuse(*status, body, &mut out)
                                }
                                e => ServerHandshake::reject(e, &mut out),
                            }
                            State::Refused(out)
                        }
                    };
                }
                Err(e) => {
                    let mut out = Vec::new();
                    ServerHandshake::reject(&e, &mut out);
                    self.state = State::Refused(out);
                }
            }
        }
        match &mut self.state {
            State::Handshake(_) => true,
            State::Refused(out) => match write_some(&mut self.sock, out) {
                Ok(n) => {
                    out.drain(..n);
                    !out.is_empty()
                }
                Err(_) => false,
            },
            State::Open {
                conn,
                message,
                scratch,
            } => {
                // Every event the buffered input holds: `read` until it needs more
                // input (a compressed message may deliver data after its last byte
                // was consumed); each round consumes input or delivers data.
                loop {
                    let (used, ev) = match conn.read(&mut self.input, scratch, now) {
                        Ok(r) => r,
                        Err(e) => {
                            // The connection failed itself (its close is queued).
                            eprintln!("{}: {e}", peer(&self.sock));
                            break;
                        }
                    };
                    let echo = match ev {
                        None => {
                            self.input.drain(..used);
                            break;
                        }
                        Some(Event::Message(c)) => {
                            message.extend_from_slice(c.data);
                            c.last.then_some(c.kind)
                        }
                        // Pings were answered and the close echoed by the connection.
                        Some(_) => None,
                    };
                    self.input.drain(..used);
                    if let Some(kind) = echo {
                        let _ = conn.send(kind, message);
                        if !plain {
                            let _ = conn.send(kind, b"..........");
                        }
                        message.clear();
                    }
                }
                if !open {
                    conn.handle_eof();
                }
                if conn.poll_timeout().is_some_and(|d| d <= now) {
                    let _ = conn.handle_timeout(now);
                }
                match write_some(&mut self.sock, conn.transmit()) {
                    Ok(n) => conn.advance_transmit(n),
                    Err(_) => return false,
                }
                // RFC 6455 §7.1.1: the server closes the TCP connection first.
                !conn.should_close_transport()
            }
        }
    }

    /// When this client needs attention even if no byte arrives.
    fn deadline(&self) -> Option<Instant> {
        match &self.state {
            State::Handshake(hs) => hs.poll_timeout(),
            State::Open { conn, .. } => conn.poll_timeout(),
            State::Refused(_) => None,
        }
    }
}

fn peer(sock: &TcpStream) -> String {
    sock.peer_addr()
        .map_or_else(|_| "?".into(), |a| a.to_string())
}

fn main() -> io::Result<()> {
    common::usage(
        "sans_io_echo [--addr HOST:PORT] [--plain] [--ping SECS]\n\
         The echo server on the sans-IO core over std::net non-blocking sockets (no mio).",
    );
    let addr = common::addr("0.0.0.0:22345");
    let plain = common::flag("--plain");
    let mut connection = ConnectionConfig::default();
    if let Some(secs) = common::flag_value("--ping").and_then(|v| v.parse::<f64>().ok()) {
        connection =
            connection.heartbeat(Some(Duration::from_secs_f64(secs)), Duration::from_secs(10));
    }
    let mut server = ServerConfig::default();
    server.connection = Arc::new(connection);
    server.check_origin = Some(Arc::new(|_| true));
    let server = Arc::new(server);

    let listener = TcpListener::bind(&addr)?;
    listener.set_nonblocking(true)?;
    println!("sans-IO echo on ws://{}/websocket", listener.local_addr()?);
    let mut clients: Vec<Client> = Vec::new();
    loop {
        let now = Instant::now();
        // Accept what is waiting (bounded per round).
        for _ in 0..64 {
            match listener.accept() {
                Ok((sock, _)) => {
                    sock.set_nonblocking(true)?;
                    let _ = sock.set_nodelay(true);
                    clients.push(Client {
                        sock,
                        input: Vec::new(),
                        state: State::Handshake(ServerHandshake::new(server.clone(), now)),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        clients.retain_mut(|c| c.poll(now, plain));
        // Our "poller": sleep a little, never past the earliest deadline. A real one
        // (epoll, smoltcp's poll) would wake on readiness instead.
        let next = clients.iter().filter_map(Client::deadline).min();
        let nap = next.map_or(Duration::from_millis(1), |d| {
            d.saturating_duration_since(Instant::now())
                .min(Duration::from_millis(1))
        });
        std::thread::sleep(nap);
    }
}
