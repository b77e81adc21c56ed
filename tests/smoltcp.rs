//! The protocol core over a TCP/IP stack without an operating system's sockets:
//! smoltcp's loopback device, a client and a server `proto::Connection` in one
//! process, driven the way a microcontroller drives them (a millisecond clock
//! passed in as `proto::Time`, randomness from a caller-supplied generator, no
//! `std::time`, no OS sockets). Handshake, echo of text and binary up to 1 MiB,
//! ping/pong, the closing handshake in both directions, Autobahn-style framing
//! cases replayed as wire bytes, and the decoder fuzz corpus replayed as a client's
//! byte stream.

use std::fmt::Write as _;

use rand::SeedableRng;
use rand::rngs::StdRng;
use silverback::proto::handshake::{ClientConfig, ClientHandshake, ServerConfig, ServerHandshake};
use silverback::proto::{
    CloseCode, Connection, Event, Lost, MessageKind, MillisTick, Randomness, Shared, State, Time,
};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Loopback, Medium};
use smoltcp::socket::tcp;
use smoltcp::time::Instant as NetInstant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};

const PORT: u16 = 8080;
/// Every loop here is bounded by this many network iterations.
const MAX_STEPS: usize = 2_000_000;

/// The board's 32-bit millisecond tick starts this close to wrapping around, so
/// that every test runs across the wrap (at 3 s).
const TICK_START: u32 = u32::MAX - 2_999;

/// The network: one interface on a loopback device, two TCP sockets, a virtual
/// millisecond clock. smoltcp sees it as milliseconds since start; the connections
/// see what a board gives them: a wrapping 32-bit tick made monotonic by a
/// `MillisTick`.
struct Net {
    iface: Interface,
    dev: Loopback,
    sockets: SocketSet<'static>,
    ms: u64,
    tick: MillisTick,
    client: SocketHandle,
    server: SocketHandle,
}

impl Net {
    fn new() -> Net {
        let mut dev = Loopback::new(Medium::Ip);
        let mut iface = Interface::new(
            Config::new(HardwareAddress::Ip),
            &mut dev,
            NetInstant::from_millis(0),
        );
        iface.update_ip_addrs(|a| {
            a.push(IpCidr::new(IpAddress::v4(127, 0, 0, 1), 8)).unwrap();
        });
        let socket = || {
            tcp::Socket::new(
                tcp::SocketBuffer::new(vec![0; 64 * 1024]),
                tcp::SocketBuffer::new(vec![0; 64 * 1024]),
            )
        };
        let mut sockets = SocketSet::new(Vec::new());
        let server = sockets.add(socket());
        let client = sockets.add(socket());
        let mut net = Net {
            iface,
            dev,
            sockets,
            ms: 0,
            tick: MillisTick::new(),
            client,
            server,
        };
        net.sock(server).listen(PORT).unwrap();
        let cx = net.iface.context();
        net.sockets
            .get_mut::<tcp::Socket>(client)
            .connect(cx, (IpAddress::v4(127, 0, 0, 1), PORT), 49_152)
            .unwrap();
        net
    }

    fn now(&mut self) -> Time {
        self.tick.time(TICK_START.wrapping_add(self.ms as u32))
    }

    fn sock(&mut self, h: SocketHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(h)
    }

    /// One turn of the stack; the clock moves 1 ms when nothing happened.
    fn poll(&mut self) {
        let t = NetInstant::from_millis(self.ms as i64);
        let changed = self.iface.poll(t, &mut self.dev, &mut self.sockets);
        if changed == smoltcp::iface::PollResult::None {
            self.ms += 1;
        }
    }

    /// Everything the socket has received.
    fn recv(&mut self, h: SocketHandle, into: &mut Vec<u8>) {
        let s = self.sock(h);
        let mut buf = [0u8; 4096];
        while s.can_recv() {
            match s.recv_slice(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => into.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// As much of `bytes` as the socket takes now.
    fn send(&mut self, h: SocketHandle, bytes: &[u8]) -> usize {
        let s = self.sock(h);
        if !s.may_send() {
            return 0;
        }
        s.send_slice(bytes).unwrap_or(0)
    }
}

/// An owned connection event.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Message(MessageKind, Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(u16, String),
}

/// One end: its socket, its connection (once the handshake is done) and what it
/// received.
struct End {
    h: SocketHandle,
    conn: Option<Connection>,
    rx: Vec<u8>,
    scratch: Vec<u8>,
    partial: Option<(MessageKind, Vec<u8>)>,
    events: Vec<Ev>,
    error: Option<String>,
    lost: Option<Lost>,
    transport_closed: bool,
}

impl End {
    fn new(h: SocketHandle) -> End {
        End {
            h,
            conn: None,
            rx: Vec::new(),
            scratch: Vec::new(),
            partial: None,
            events: Vec::new(),
            error: None,
            lost: None,
            transport_closed: false,
        }
    }

    fn conn(&mut self) -> &mut Connection {
        self.conn.as_mut().expect("handshake done")
    }

    /// Reads what arrived, hands it to the connection, writes what it transmits,
    /// runs its timers and closes the transport when the protocol says so.
    fn turn(&mut self, net: &mut Net) {
        let now = net.now();
        net.recv(self.h, &mut self.rx);
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        while !self.rx.is_empty() && self.error.is_none() {
            match conn.read(&mut self.rx, &mut self.scratch, now) {
                Err(e) => self.error = Some(e.to_string()),
                Ok((n, ev)) => {
                    let ev = ev.map(|ev| match ev {
                        Event::Message(c) => {
                            let p = self.partial.get_or_insert_with(|| (c.kind, Vec::new()));
                            p.1.extend_from_slice(c.data);
                            if c.last {
                                self.partial.take().map(|(k, d)| Ev::Message(k, d))
                            } else {
                                None
                            }
                        }
                        Event::Ping(p) => Some(Ev::Ping(p.to_vec())),
                        Event::Pong(p) => Some(Ev::Pong(p.to_vec())),
                        Event::Close { code, reason } => Some(Ev::Close(code.0, reason.to_owned())),
                    });
                    self.rx.drain(..n);
                    match ev {
                        Some(Some(e)) => self.events.push(e),
                        Some(None) => {}
                        None => break,
                    }
                }
            }
        }
        if conn.poll_deadline().is_some_and(|d| d <= now)
            && let Err(lost) = conn.handle_timeout(now)
        {
            self.lost = Some(lost);
        }
        let out = conn.transmit();
        if !out.is_empty() {
            let n = net.send(self.h, out);
            conn.advance_transmit(n);
        }
        let s = net.sock(self.h);
        if conn.transmit().is_empty() && conn.should_close_transport() && !self.transport_closed {
            s.close();
            self.transport_closed = true;
        }
        if !s.may_recv() && s.state() != tcp::State::Listen && s.state() != tcp::State::SynSent {
            conn.handle_eof();
        }
    }

    /// Whole messages received, removed from the event list.
    fn take_messages(&mut self) -> Vec<(MessageKind, Vec<u8>)> {
        let mut out = Vec::new();
        self.events.retain(|e| match e {
            Ev::Message(k, d) => {
                out.push((*k, d.clone()));
                false
            }
            _ => true,
        });
        out
    }
}

fn client_rng(seed: u64) -> Randomness {
    // What a board does: a CSPRNG the caller supplies (here a ChaCha generator).
    Randomness::from_rng(StdRng::seed_from_u64(seed))
}

/// A network with the opening handshake done: (net, client end, server end).
fn open() -> (Net, End, End) {
    let mut net = Net::new();
    let mut client = End::new(net.client);
    let mut server = End::new(net.server);
    let mut request = Vec::new();
    let mut chs = ClientHandshake::new(
        Shared::new(ClientConfig::default()),
        "127.0.0.1:8080",
        "/websocket",
        client_rng(7),
        net.now(),
        &mut request,
    );
    let shs = ServerHandshake::new(Shared::new(ServerConfig::default()), net.now());
    let mut shs = Some(shs);
    let mut sent = 0;
    for _ in 0..MAX_STEPS {
        net.poll();
        if sent < request.len() {
            sent += net.send(client.h, &request[sent..]);
        }
        if let Some(hs) = shs.as_ref() {
            net.recv(server.h, &mut server.rx);
            if let Some((req, len)) = hs.parse(&server.rx).expect("a valid request") {
                hs.check(&req).expect("an upgrade");
                assert_eq!(req.path(), "/websocket");
                let conn = shs.take().unwrap().accept(&req, None, &[], net.now());
                server.rx.drain(..len);
                server.conn = Some(conn);
            }
        } else {
            server.turn(&mut net);
        }
        if client.conn.is_none() {
            net.recv(client.h, &mut client.rx);
            if let Some((resp, len, conn)) = chs.read(&client.rx, net.now()).expect("a 101") {
                assert_eq!(resp.status(), 101);
                client.rx.drain(..len);
                client.conn = Some(conn);
                return (net, client, server);
            }
            assert!(chs.handle_timeout(net.now()).is_ok(), "handshake timed out");
        }
    }
    panic!("no handshake within {MAX_STEPS} steps");
}

/// Runs both ends until `done` holds.
fn run(net: &mut Net, a: &mut End, b: &mut End, mut done: impl FnMut(&mut End, &mut End) -> bool) {
    run_at(net, a, b, |_, a, b| done(a, b))
}

/// Runs both ends until `done` holds (it also sees the clock).
fn run_at(
    net: &mut Net,
    a: &mut End,
    b: &mut End,
    mut done: impl FnMut(u64, &mut End, &mut End) -> bool,
) {
    for _ in 0..MAX_STEPS {
        net.poll();
        a.turn(net);
        b.turn(net);
        if done(net.ms, a, b) {
            return;
        }
    }
    panic!("not done within {MAX_STEPS} steps (at {} ms)", net.ms);
}

/// The server echoes every whole message it has received.
fn echo(server: &mut End) {
    for (k, d) in server.take_messages() {
        server.conn().send(k, &d).unwrap();
    }
}

fn payload(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[test]
fn handshake_echo_ping_and_close_over_smoltcp() {
    let (mut net, mut client, mut server) = open();
    assert_eq!(client.conn().state(), State::Open);
    assert_eq!(server.conn().state(), State::Open);

    // Text (with multi-byte UTF-8) and binary messages up to 1 MiB, each echoed
    // byte for byte.
    let mut text = String::new();
    for i in 0..40_000 {
        write!(text, "{i}é€😀").unwrap();
    }
    let mut sent: Vec<(MessageKind, Vec<u8>)> = vec![
        (MessageKind::Text, b"hello".to_vec()),
        (MessageKind::Text, text.into_bytes()),
        (MessageKind::Binary, Vec::new()),
    ];
    for (i, len) in [1, 125, 126, 65_535, 65_536, 300_001, 1 << 20]
        .into_iter()
        .enumerate()
    {
        sent.push((MessageKind::Binary, payload(len, i as u32)));
    }
    for (k, d) in &sent {
        client.conn().send(*k, d).unwrap();
    }
    let mut echoed = Vec::new();
    run(&mut net, &mut client, &mut server, |c, s| {
        echo(s);
        echoed.extend(c.take_messages());
        echoed.len() == sent.len()
    });
    assert_eq!(echoed, sent, "every message echoed byte for byte, in order");

    // Ping and pong both ways.
    client.conn().ping(b"from client").unwrap();
    server.conn().ping(b"from server").unwrap();
    run(&mut net, &mut client, &mut server, |c, s| {
        c.events.contains(&Ev::Pong(b"from client".to_vec()))
            && s.events.contains(&Ev::Pong(b"from server".to_vec()))
    });
    assert!(server.events.contains(&Ev::Ping(b"from client".to_vec())));
    assert!(client.events.contains(&Ev::Ping(b"from server".to_vec())));

    // The client closes: the server sees the close, echoes it, closes the TCP
    // connection; both end done with 1000.
    let now = net.now();
    client.conn().close(now, CloseCode::NORMAL, "bye").unwrap();
    run(&mut net, &mut client, &mut server, |c, s| {
        c.conn().state() == State::Done && s.conn().state() == State::Done
    });
    assert!(server.events.contains(&Ev::Close(1000, "bye".into())));
    // The client's close was answered: both ends ended with 1000.
    for end in [&mut client, &mut server] {
        assert_eq!(end.conn().end().expect("ended").code, CloseCode::NORMAL);
    }
    assert!(
        server.transport_closed,
        "the server closes the TCP connection"
    );
    assert_eq!(client.error, None);
    assert_eq!(server.error, None);
}

#[test]
fn the_server_closes_first_over_smoltcp() {
    let (mut net, mut client, mut server) = open();
    let now = net.now();
    server
        .conn()
        .close(now, CloseCode::GOING_AWAY, "restart")
        .unwrap();
    run(&mut net, &mut client, &mut server, |c, s| {
        c.conn().state() == State::Done && s.conn().state() == State::Done
    });
    assert!(client.events.contains(&Ev::Close(1001, "restart".into())));
    assert_eq!(server.conn().end().unwrap().code, CloseCode::GOING_AWAY);
    assert_eq!(client.error, None);
    assert!(server.transport_closed);
}

#[test]
fn heartbeat_and_pong_timeout_run_on_the_callers_clock() {
    use silverback::proto::{ConnectionConfig, Role};
    use std::time::Duration;
    // A server that pings every 2 s and waits 1 s for the pong: with the client
    // answering, still open after 10 s of the virtual clock (across the wrap of the
    // 32-bit tick at 3 s: no ping storm, no stall); then the client stops reading
    // and the server gives up on its own clock.
    let (mut net, mut client, mut server) = open();
    let cfg =
        ConnectionConfig::default().heartbeat(Some(Duration::from_secs(2)), Duration::from_secs(1));
    server.conn = Some(Connection::new(
        Role::Server,
        Shared::new(cfg),
        Randomness::unused(),
        net.now(),
    ));
    let start = net.ms;
    run_at(&mut net, &mut client, &mut server, |ms, _, _| {
        ms >= start + 10_000
    });
    let pings = client
        .events
        .iter()
        .filter(|e| matches!(e, Ev::Ping(_)))
        .count();
    assert!((4..=5).contains(&pings), "{pings} heartbeat pings in 10 s");
    assert_eq!(server.conn().state(), State::Open);
    // The client goes quiet: only the server's end turns now.
    let silent_from = net.ms;
    for _ in 0..MAX_STEPS {
        net.poll();
        server.turn(&mut net);
        if server.conn().state() == State::Done {
            break;
        }
    }
    assert_eq!(server.lost, Some(Lost::PongTimeout));
    let waited = net.ms - silent_from;
    assert!(
        waited <= 3_001,
        "gave up after {waited} ms (ping every 2 s + 1 s)"
    );
    assert_eq!(server.conn().end().unwrap().code, CloseCode::ABNORMAL);
}

/// A client frame as wire bytes: FIN, RSV bits, opcode, masked (unless `unmasked`).
fn frame(fin: bool, rsv: u8, op: u8, data: &[u8], unmasked: bool) -> Vec<u8> {
    let mut f = vec![(u8::from(fin) << 7) | (rsv << 4) | op];
    let m = if unmasked { 0 } else { 0x80 };
    match data.len() {
        n if n < 126 => f.push(m | n as u8),
        n if n < 65_536 => {
            f.push(m | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(m | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if unmasked {
        f.extend_from_slice(data);
    } else {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        f.extend_from_slice(&key);
        f.extend(data.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    }
    f
}

fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    p
}

/// What the server must answer a case with.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Want {
    /// These frames back (opcode, payload), then an open connection.
    Frames(Vec<(u8, Vec<u8>)>),
    /// Fail the connection with this close code.
    Fail(u16),
}

/// Frames the server sent (unmasked): (opcode, payload).
fn server_frames(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while bytes.len() >= 2 {
        let op = bytes[0] & 0x0f;
        let (len, head) = match bytes[1] & 0x7f {
            126 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
            127 => (
                u64::from_be_bytes(bytes[2..10].try_into().unwrap()) as usize,
                10,
            ),
            n => (n as usize, 2),
        };
        if bytes.len() < head + len {
            break;
        }
        out.push((op, bytes[head..head + len].to_vec()));
        bytes = &bytes[head + len..];
    }
    out
}

/// Autobahn-style cases (sections 1-7 of the suite), each written as wire bytes by
/// a raw client, delivered through smoltcp one byte per segment and whole, and
/// judged on what the echoing server answers.
#[test]
fn autobahn_style_framing_cases_replayed_through_smoltcp() {
    let big = payload(65_536, 3);
    let cases: Vec<(&str, Vec<u8>, Want)> = vec![
        (
            "1.1.1 empty text",
            frame(true, 0, 1, b"", false),
            Want::Frames(vec![(1, vec![])]),
        ),
        (
            "1.1.2 text 125",
            frame(true, 0, 1, &[b'*'; 125], false),
            Want::Frames(vec![(1, vec![b'*'; 125])]),
        ),
        (
            "1.2.6 binary 65536",
            frame(true, 0, 2, &big, false),
            Want::Frames(vec![(2, big.clone())]),
        ),
        (
            "2.2 ping with payload",
            frame(true, 0, 9, b"hi", false),
            Want::Frames(vec![(10, b"hi".to_vec())]),
        ),
        (
            "2.4 ping 125",
            frame(true, 0, 9, &[7; 125], false),
            Want::Frames(vec![(10, vec![7; 125])]),
        ),
        (
            "2.5 ping 126",
            frame(true, 0, 9, &[7; 126], false),
            Want::Fail(1002),
        ),
        (
            "2.6 unsolicited pong",
            frame(true, 0, 10, b"x", false),
            Want::Frames(vec![]),
        ),
        (
            "3.1 RSV1 without an extension",
            frame(true, 4, 1, b"x", false),
            Want::Fail(1002),
        ),
        (
            "3.4 RSV1|RSV2 on ping",
            frame(true, 6, 9, b"", false),
            Want::Fail(1002),
        ),
        (
            "4.1.1 reserved opcode 3",
            frame(true, 0, 3, b"", false),
            Want::Fail(1002),
        ),
        (
            "4.2.1 reserved opcode 11",
            frame(true, 0, 11, b"", false),
            Want::Fail(1002),
        ),
        (
            "5.1 fragmented ping",
            [
                frame(false, 0, 9, b"a", false),
                frame(true, 0, 0, b"b", false),
            ]
            .concat(),
            Want::Fail(1002),
        ),
        (
            "5.3 text in two fragments",
            [
                frame(false, 0, 1, b"frag", false),
                frame(true, 0, 0, b"ment", false),
            ]
            .concat(),
            Want::Frames(vec![(1, b"fragment".to_vec())]),
        ),
        (
            "5.6 ping between fragments",
            [
                frame(false, 0, 1, b"ab", false),
                frame(true, 0, 9, b"p", false),
                frame(true, 0, 0, b"cd", false),
            ]
            .concat(),
            Want::Frames(vec![(10, b"p".to_vec()), (1, b"abcd".to_vec())]),
        ),
        (
            "5.9 continuation without a start",
            frame(true, 0, 0, b"x", false),
            Want::Fail(1002),
        ),
        (
            "5.18 text while a text is open",
            [
                frame(false, 0, 1, b"a", false),
                frame(true, 0, 1, b"b", false),
            ]
            .concat(),
            Want::Fail(1002),
        ),
        (
            "6.2.3 UTF-8 split inside a code point",
            [
                frame(false, 0, 1, &"κόσμε".as_bytes()[..3], false),
                frame(true, 0, 0, &"κόσμε".as_bytes()[3..], false),
            ]
            .concat(),
            Want::Frames(vec![(1, "κόσμε".as_bytes().to_vec())]),
        ),
        (
            "6.3.1 invalid UTF-8",
            frame(
                true,
                0,
                1,
                b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64",
                false,
            ),
            Want::Fail(1007),
        ),
        (
            "6.4.1 invalid UTF-8 in a later fragment",
            [
                frame(false, 0, 1, b"ok", false),
                frame(true, 0, 0, b"\xf4\x90\x80\x80", false),
            ]
            .concat(),
            Want::Fail(1007),
        ),
        (
            "7.3.2 close with a 1-byte payload",
            frame(true, 0, 8, b"\x03", false),
            Want::Fail(1002),
        ),
        (
            "7.5.1 close with an invalid UTF-8 reason",
            frame(
                true,
                0,
                8,
                &close_payload(
                    1000,
                    b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80",
                ),
                false,
            ),
            Want::Fail(1007),
        ),
        (
            "7.9.1 close code 0",
            frame(true, 0, 8, &close_payload(0, b""), false),
            Want::Fail(1002),
        ),
        (
            "7.9.3 close code 1004",
            frame(true, 0, 8, &close_payload(1004, b""), false),
            Want::Fail(1002),
        ),
        (
            "7.9.9 close code 5000",
            frame(true, 0, 8, &close_payload(5000, b""), false),
            Want::Fail(1002),
        ),
        (
            "7.7.x close code 4000 answered with its code",
            frame(true, 0, 8, &close_payload(4000, b"app"), false),
            Want::Frames(vec![(8, close_payload(4000, b""))]),
        ),
        (
            "unmasked client frame",
            frame(true, 0, 1, b"x", true),
            Want::Fail(1002),
        ),
    ];
    for (name, bytes, want) in &cases {
        for per_segment in [1, bytes.len().max(1)] {
            let got = replay(bytes, per_segment);
            match want {
                Want::Frames(frames) => {
                    assert_eq!(
                        &got.frames, frames,
                        "{name} ({per_segment} bytes a segment)"
                    );
                    let is_close = frames.iter().any(|f| f.0 == 8);
                    assert!(is_close || got.error.is_none(), "{name}: {:?}", got.error);
                }
                Want::Fail(code) => {
                    assert!(got.error.is_some(), "{name}: the server must fail it");
                    let close = got.frames.iter().find(|f| f.0 == 8);
                    let sent = close.map(|f| u16::from_be_bytes([f.1[0], f.1[1]]));
                    assert_eq!(sent, Some(*code), "{name} ({per_segment} bytes a segment)");
                }
            }
        }
    }
}

/// What an echoing server made of a raw client's bytes.
struct Replay {
    frames: Vec<(u8, Vec<u8>)>,
    error: Option<String>,
}

/// Writes `bytes` through smoltcp `per_segment` bytes at a time into an echoing
/// server connection, then lets it answer; returns what came back.
fn replay(bytes: &[u8], per_segment: usize) -> Replay {
    let (mut net, mut client, mut server) = open();
    // The client's connection object is set aside: the client is raw bytes now.
    client.conn = None;
    let mut sent = 0;
    let mut back = Vec::new();
    let mut quiet = 0;
    for _ in 0..MAX_STEPS {
        net.poll();
        if sent < bytes.len() {
            let end = (sent + per_segment).min(bytes.len());
            sent += net.send(client.h, &bytes[sent..end]);
        }
        server.turn(&mut net);
        echo(&mut server);
        let before = back.len();
        net.recv(client.h, &mut back);
        let s = server.conn();
        let settled = sent == bytes.len() && s.transmit().is_empty();
        quiet = if settled && back.len() == before {
            quiet + 1
        } else {
            0
        };
        if settled && (quiet > 50 || s.state() == State::Done) {
            break;
        }
    }
    Replay {
        frames: server_frames(&back),
        error: server.error,
    }
}

/// The decoder fuzz corpus (inputs that reached every corner of the decoder),
/// each replayed as a client's byte stream through smoltcp into a server
/// connection: none may panic or hang, and whatever the server sends is either
/// an echo or a close with a code a server may send.
#[test]
fn the_decoder_fuzz_corpus_replayed_through_smoltcp() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/decoder");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("fuzz/corpus/decoder is in the repository")
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 20, "{} corpus files", files.len());
    let (mut failed, mut echoed) = (0, 0);
    for f in &files {
        let data = std::fs::read(f).unwrap();
        // The target's input: 6 bytes of settings, then the stream.
        let stream = data.get(6..).unwrap_or_default();
        let got = replay(stream, 1 + stream.len() / 3);
        for (op, p) in &got.frames {
            match op {
                1 | 2 | 10 => {}
                8 if p.is_empty() => {} // a close without a code (answering one)
                8 => {
                    let code = u16::from_be_bytes([p[0], p[1]]);
                    assert!(
                        [1000, 1002, 1007, 1009].contains(&code) || (3000..5000).contains(&code),
                        "{}: close {code}",
                        f.display()
                    );
                }
                _ => panic!("{}: the server sent opcode {op}", f.display()),
            }
        }
        if got.error.is_some() {
            failed += 1;
        } else if got.frames.iter().any(|f| f.0 <= 2) {
            echoed += 1;
        }
    }
    // The corpus holds both kinds: inputs a server must refuse and valid traffic.
    assert!(failed > 0 && echoed > 0, "{failed} failed, {echoed} echoed");
}
