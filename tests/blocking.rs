//! The blocking layer over real loopback TCP: Dialer ↔ Upgrader, streaming,
//! limits, deadlines, split halves, the closing handshake, and bad peers.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use silverback::Settings;
use silverback::{
    CloseCode, Conn, Dialer, Error, HandshakeError, Message, MessageKind, OpCode, ProtocolError,
    Upgrader, UsageError,
};
use support::*;

const T: Duration = Duration::from_secs(10);

/// A server that echoes every message until the connection ends, reporting how
/// each connection ended on `done`.
fn echo_server(upgrader: Upgrader) -> (std::net::SocketAddr, mpsc::Receiver<Error>) {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let addr = serve(move |s| {
        let mut conn = match upgrader.upgrade(s) {
            Ok(c) => c,
            Err(e) => {
                let _ = tx.lock().unwrap().send(e);
                return;
            }
        };
        conn.set_read_deadline(Some(Instant::now() + T));
        let err = loop {
            match conn.read_message() {
                Ok(m) => {
                    if let Err(e) = conn.send(&m) {
                        break e;
                    }
                }
                Err(e) => break e,
            }
        };
        let _ = tx.lock().unwrap().send(err);
    });
    (addr, rx)
}

fn dial(addr: std::net::SocketAddr) -> Conn<TcpStream> {
    let (mut c, _) = Dialer::new()
        .dial(&format!("ws://{addr}/echo"))
        .expect("dial");
    c.set_read_deadline(Some(Instant::now() + T));
    c
}

#[test]
fn text_binary_and_empty_messages_round_trip() {
    let (addr, _) = echo_server(Upgrader::new());
    let mut c = dial(addr);
    let cases = [
        Message::Text("Hello, κόσμε".into()),
        Message::Binary(vec![0, 1, 2, 255]),
        Message::Text(String::new()),
        Message::Binary(Vec::new()),
        Message::Binary(vec![9; 200_000]),
    ];
    for m in &cases {
        c.send(m).unwrap();
        assert_eq!(&c.read_message().unwrap(), m);
    }
    c.close(CloseCode::NORMAL, "done").unwrap();
}

#[test]
fn fragmented_message_with_interleaved_pings() {
    let (addr, _) = echo_server(Upgrader::new());
    let mut p = RawPeer::handshake(addr, "/");
    p.send(
        &[
            cframe(0x01, b"Hel"),
            cframe(0x89, b"ping-1"),
            cframe(0x00, b"l"),
            cframe(0x89, b"ping-2"),
            cframe(0x80, b"o"),
        ]
        .concat(),
    );
    let frames: Vec<RawFrame> = (0..3).map(|_| p.read_frame().unwrap()).collect();
    assert_eq!(frames[0].opcode, 0xA);
    assert_eq!(frames[0].payload, b"ping-1");
    assert_eq!(frames[1].payload, b"ping-2");
    assert_eq!(
        (frames[2].opcode, &frames[2].payload[..]),
        (1, &b"Hello"[..])
    );
    assert!(
        frames.iter().all(|f| !f.masked),
        "server frames are never masked"
    );
}

#[test]
fn next_writer_fragments_and_next_reader_streams() {
    let (addr, _) = echo_server(Upgrader::new().read_buffer_size(200));
    let (mut c, _) = Dialer::new()
        .write_buffer_size(100)
        .read_buffer_size(150)
        .dial(&format!("ws://{addr}/"))
        .unwrap();
    let text: String = "añb€𝄞".repeat(300);
    {
        let mut w = c.next_writer(MessageKind::Text).unwrap();
        // Odd-sized writes split code points across fragments.
        for piece in text.as_bytes().chunks(7) {
            w.write_all(piece).unwrap();
        }
        w.close().unwrap();
    }
    let mut r = c.next_reader().unwrap();
    assert_eq!(r.kind(), MessageKind::Text);
    let mut got = Vec::new();
    let mut small = [0u8; 13];
    loop {
        let n = r.read(&mut small).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&small[..n]);
    }
    assert_eq!(got, text.as_bytes());
}

#[test]
fn dropping_a_reader_early_skips_the_rest_of_the_message() {
    let (addr, _) = echo_server(Upgrader::new());
    let mut c = dial(addr);
    c.write_message(MessageKind::Binary, &vec![1u8; 50_000])
        .unwrap();
    c.write_message(MessageKind::Text, b"second").unwrap();
    {
        let mut r = c.next_reader().unwrap();
        let mut b = [0u8; 10];
        r.read_exact(&mut b).unwrap();
    }
    assert_eq!(c.read_message().unwrap(), Message::Text("second".into()));
}

#[test]
fn read_limit_closes_with_1009() {
    let (addr, done) = echo_server(Upgrader::new().max_message_size(1000));
    let mut c = dial(addr);
    c.write_message(MessageKind::Binary, &[0u8; 1001]).unwrap();
    match c.read_message() {
        Err(Error::Closed(f)) => assert_eq!(f.code, CloseCode::MESSAGE_TOO_BIG),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        done.recv_timeout(T).unwrap(),
        Error::MessageTooBig { limit: 1000 }
    ));
}

#[test]
fn read_deadline_fires_and_the_read_can_be_retried() {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let addr = serve(move |s| {
        let mut conn = Upgrader::new().upgrade(s).unwrap();
        conn.set_read_deadline(Some(Instant::now() + Duration::from_millis(100)));
        let first = conn.read_message();
        conn.set_read_deadline(Some(Instant::now() + T));
        let second = conn.read_message();
        tx.lock().unwrap().send((first, second)).unwrap();
    });
    let mut c = dial(addr);
    thread::sleep(Duration::from_millis(300));
    // Send in two halves around nothing in particular: the retry must see the whole.
    c.write_message(MessageKind::Text, b"late").unwrap();
    let (first, second) = rx.recv_timeout(T).unwrap();
    assert!(matches!(first, Err(Error::Timeout)), "{first:?}");
    assert_eq!(second.unwrap(), Message::Text("late".into()));
}

#[test]
fn partial_frame_survives_a_timeout() {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let addr = serve(move |s| {
        let mut conn = Upgrader::new().upgrade(s).unwrap();
        let mut results = Vec::new();
        for _ in 0..50 {
            conn.set_read_deadline(Some(Instant::now() + Duration::from_millis(20)));
            match conn.read_message() {
                Err(Error::Timeout) => results.push(None),
                Ok(m) => {
                    results.push(Some(m));
                    break;
                }
                Err(e) => panic!("{e}"),
            }
        }
        tx.lock().unwrap().send(results).unwrap();
    });
    let mut p = RawPeer::handshake(addr, "/");
    let frame = cframe(0x81, b"split across a timeout");
    p.send(&frame[..5]);
    thread::sleep(Duration::from_millis(150));
    p.send(&frame[5..]);
    let results = rx.recv_timeout(T).unwrap();
    assert!(results.len() > 1, "at least one timeout happened");
    assert_eq!(
        results.last().unwrap(),
        &Some(Message::Text("split across a timeout".into()))
    );
}

#[test]
fn write_deadline_fires_when_the_peer_never_reads() {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let addr = serve(move |s| {
        let mut conn = Upgrader::new().upgrade(s).unwrap();
        let big = vec![0u8; 1 << 20];
        let mut result = Ok(());
        for _ in 0..1000 {
            conn.set_write_deadline(Some(Instant::now() + Duration::from_millis(200)));
            result = conn.write_message(MessageKind::Binary, &big);
            if result.is_err() {
                break;
            }
        }
        tx.lock().unwrap().send(result).unwrap();
    });
    let _peer = RawPeer::handshake(addr, "/"); // never reads
    let result = rx.recv_timeout(T).unwrap();
    assert!(matches!(result, Err(Error::Timeout)), "{result:?}");
}

#[test]
fn split_halves_read_and_write_concurrently() {
    let (addr, _) = echo_server(Upgrader::new());
    let c = dial(addr);
    let (mut rd, mut wr) = c.split();
    const N: usize = 2000;
    let writer = thread::spawn(move || {
        for i in 0..N {
            // Some messages streamed in fragments, some whole.
            if i % 3 == 0 {
                let mut w = wr.next_writer(MessageKind::Text).unwrap();
                write!(w, "msg {i} ").unwrap();
                w.write_all(&vec![b'x'; i % 5000]).unwrap();
                w.close().unwrap();
            } else {
                let body = format!("msg {i} {}", "x".repeat(i % 5000));
                wr.write_message(MessageKind::Text, body.as_bytes())
                    .unwrap();
            }
        }
        wr
    });
    for i in 0..N {
        let m = rd.read_message().unwrap();
        let expect = format!("msg {i} {}", "x".repeat(i % 5000));
        assert_eq!(m.as_text(), Some(expect.as_str()), "message {i} in order");
    }
    let mut wr = writer.join().unwrap();
    wr.close(CloseCode::NORMAL, "").unwrap();
    assert!(matches!(rd.read_message(), Err(Error::Closed(_))));
}

#[test]
fn read_half_answers_pings_while_the_write_half_streams() {
    // The server pings between the fragments the client is writing; the client's
    // read half answers through the write half's lock.
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let addr = serve(move |s| {
        let mut conn = Upgrader::new().upgrade(s).unwrap();
        let pongs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let p2 = pongs.clone();
        conn.set_pong_handler(move |_, _| {
            p2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        });
        conn.set_read_deadline(Some(Instant::now() + T));
        for _ in 0..5 {
            conn.write_control(OpCode::Ping, b"hb", None).unwrap();
        }
        let m = conn.read_message().unwrap();
        tx.lock()
            .unwrap()
            .send((m.len(), pongs.load(std::sync::atomic::Ordering::SeqCst)))
            .unwrap();
        let _ = conn.close(CloseCode::NORMAL, "");
    });
    let (c, _) = Dialer::new()
        .write_buffer_size(64)
        .dial(&format!("ws://{addr}/"))
        .unwrap();
    let (mut rd, mut wr) = c.split();
    let reader = thread::spawn(move || {
        rd.set_read_deadline(Some(Instant::now() + T));
        rd.read_message()
    });
    let mut w = wr.next_writer(MessageKind::Binary).unwrap();
    for _ in 0..100 {
        w.write_all(&[7u8; 64]).unwrap();
        thread::sleep(Duration::from_millis(2));
    }
    w.close().unwrap();
    let (len, pongs) = rx.recv_timeout(T).unwrap();
    assert_eq!(len, 6400);
    assert_eq!(pongs, 5, "every ping answered mid-message");
    assert!(matches!(reader.join().unwrap(), Err(Error::Closed(_))));
}

#[test]
fn the_read_half_never_waits_on_a_write_half_stuck_on_a_large_message() {
    // The server writes 64 MiB to a peer that does not read, so its write half
    // blocks in the kernel. The peer meanwhile sends pings and messages: the read
    // half must deliver them at once (its pongs are queued, not written), and the
    // pongs must follow the big message once the peer reads.
    const BIG: usize = 64 << 20;
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let addr = serve(move |s| {
        // Made before the split, so the writer starts writing at once.
        let big = vec![0x5au8; BIG];
        let conn = Upgrader::new().upgrade(s).unwrap();
        let (mut rd, mut wr) = conn.split();
        let writer = thread::spawn(move || {
            wr.write_message(MessageKind::Binary, &big).unwrap();
            wr
        });
        rd.set_read_deadline(Some(Instant::now() + T));
        for _ in 0..5 {
            let m = rd.read_message().unwrap();
            let stuck = !writer.is_finished();
            tx.lock().unwrap().send((m, stuck)).unwrap();
        }
        let _wr = writer.join().unwrap();
        let _ = rd.read_message();
    });
    let mut peer = RawPeer::handshake(addr, "/");
    // Let the server fill the socket buffers with the big message first.
    thread::sleep(Duration::from_millis(300));
    for i in 0..5u8 {
        peer.send(&cframe(0x89, &[b'p', i]));
        peer.send(&cframe(0x81, &[b'm', i]));
        let (m, stuck) = rx
            .recv_timeout(T)
            .expect("the read half delivers while the writer is stuck");
        assert_eq!(m, Message::Text(format!("m{}", i as char)));
        assert!(stuck, "the writer was still blocked on the big message");
    }
    // Now read: the whole big message, then the five pongs (queued, never lost).
    let mut got = 0;
    let mut pongs = Vec::new();
    while pongs.len() < 5 {
        let f = peer.read_frame().expect("frame");
        match f.opcode {
            0x2 | 0x0 => got += f.payload.len(),
            0xA => {
                // Never inside the big frame (a pong written while the write side
                // was still idle goes before it, which is fine).
                assert!(
                    got == 0 || got == BIG,
                    "a pong interrupted a frame at {got}"
                );
                pongs.push(f.payload)
            }
            op => panic!("unexpected opcode {op}"),
        }
    }
    assert_eq!(pongs, (0..5u8).map(|i| vec![b'p', i]).collect::<Vec<_>>());
}

#[test]
fn client_initiated_close_handshake() {
    let (addr, done) = echo_server(Upgrader::new());
    let mut c = dial(addr);
    c.close(CloseCode::NORMAL, "bye").unwrap();
    match done.recv_timeout(T).unwrap() {
        Error::Closed(f) => {
            assert_eq!(f.code, CloseCode::NORMAL);
            assert_eq!(f.reason, "bye");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        c.write_message(MessageKind::Text, b"late"),
        Err(Error::AlreadyClosed)
    ));
}

#[test]
fn server_initiated_close_and_server_closes_tcp_first() {
    let addr = serve(|s| {
        let mut conn = Upgrader::new().upgrade(s).unwrap();
        conn.close(CloseCode::GOING_AWAY, "shutting down").unwrap();
    });
    let mut p = RawPeer::handshake(addr, "/");
    let f = p.read_frame().unwrap();
    assert_eq!(f.close_code(), Some(1001));
    assert_eq!(&f.payload[2..], b"shutting down");
    p.send(&cframe(0x88, &[0x03, 0xe9]));
    assert!(
        p.at_eof(),
        "server closes the TCP connection after the handshake"
    );
}

#[test]
fn client_sees_server_close_code_and_reason() {
    let addr = serve(|s| {
        let mut conn = Upgrader::new().upgrade(s).unwrap();
        let _ = conn.close(CloseCode(4001), "custom reason");
    });
    let mut c = dial(addr);
    match c.read_message() {
        Err(Error::Closed(f)) => {
            assert_eq!(f.code, CloseCode(4001));
            assert_eq!(f.reason, "custom reason");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn subprotocol_negotiation_follows_server_preference() {
    let (addr, _) = echo_server(Upgrader::new().subprotocols(["v2", "v1"]));
    let (c, resp) = Dialer::new()
        .subprotocols(["v1", "v2"])
        .dial(&format!("ws://{addr}/"))
        .unwrap();
    assert_eq!(c.subprotocol(), Some("v2"));
    assert_eq!(resp.protocol(), Some("v2"));
    let (c, _) = Dialer::new()
        .subprotocols(["other"])
        .dial(&format!("ws://{addr}/"))
        .unwrap();
    assert_eq!(c.subprotocol(), None);
}

#[test]
fn bytes_after_the_request_head_are_not_lost() {
    let (addr, _) = echo_server(Upgrader::new());
    let mut p = RawPeer::connect(addr);
    let mut bytes = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {RFC_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes();
    bytes.extend_from_slice(&cframe(0x81, b"early"));
    p.send(&bytes);
    assert_eq!(p.read_status(), 101);
    assert_eq!(p.read_frame().unwrap().payload, b"early");
}

#[test]
fn bytes_after_the_response_head_are_not_lost() {
    // A server that sends its first frame in the same write as the 101.
    let addr = answering_server(
        |accept| [switching(accept, ""), sframe(0x81, b"welcome")].concat(),
        false,
        Duration::from_millis(500),
    );
    let mut c = dial(addr);
    assert_eq!(c.read_message().unwrap(), Message::Text("welcome".into()));
}

// ---- Bad peers: handshake defects and their HTTP status ----

macro_rules! handshake_cases {
    ($($name:ident: $req:expr => $status:expr;)*) => {$(
        #[test]
        fn $name() {
            let (addr, done) = echo_server(Upgrader::new().max_head_size(2048).max_headers(16));
            let mut p = RawPeer::connect(addr);
            let req: String = $req;
            p.send(req.as_bytes());
            assert_eq!(p.read_status(), $status, "{req}");
            let err = done.recv_timeout(T).unwrap();
            assert_eq!(err.http_status(), Some($status), "{err:?}");
        }
    )*};
}

fn req(method: &str, version: &str, headers: &[&str]) -> String {
    let mut s = format!("{method} /chat {version}\r\n");
    for h in headers {
        s.push_str(h);
        s.push_str("\r\n");
    }
    s.push_str("\r\n");
    s
}

const HOST: &str = "Host: localhost";
const UPG: &str = "Upgrade: websocket";
const CONN: &str = "Connection: Upgrade";
const KEY: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==";
const VER: &str = "Sec-WebSocket-Version: 13";

handshake_cases! {
    hs_not_get: req("POST", "HTTP/1.1", &[HOST, UPG, CONN, KEY, VER]) => 405;
    hs_http10: req("GET", "HTTP/1.0", &[HOST, UPG, CONN, KEY, VER]) => 400;
    hs_no_host: req("GET", "HTTP/1.1", &[UPG, CONN, KEY, VER]) => 400;
    hs_plain_http: req("GET", "HTTP/1.1", &[HOST]) => 426;
    hs_no_upgrade_token: req("GET", "HTTP/1.1", &[HOST, "Upgrade: h2c", CONN, KEY, VER]) => 400;
    hs_no_connection_token: req("GET", "HTTP/1.1", &[HOST, UPG, "Connection: close", KEY, VER]) => 400;
    hs_bad_version: req("GET", "HTTP/1.1", &[HOST, UPG, CONN, KEY, "Sec-WebSocket-Version: 8"]) => 426;
    hs_no_key: req("GET", "HTTP/1.1", &[HOST, UPG, CONN, VER]) => 400;
    hs_short_key: req("GET", "HTTP/1.1", &[HOST, UPG, CONN, "Sec-WebSocket-Key: AAAA", VER]) => 400;
    hs_foreign_origin: req("GET", "HTTP/1.1", &[HOST, UPG, CONN, KEY, VER, "Origin: http://evil.example"]) => 403;
    hs_garbage: "\x16\x03\x01\x02\x00\x01 garbage\r\n\r\n".to_string() => 400;
    hs_head_too_large: req("GET", "HTTP/1.1", &[HOST, UPG, CONN, KEY, VER, &format!("X-Big: {}", "a".repeat(3000))]) => 431;
    hs_too_many_headers: req("GET", "HTTP/1.1", &[HOST, UPG, CONN, KEY, VER, "A: 1", "B: 1", "C: 1", "D: 1", "E: 1", "F: 1", "G: 1", "H: 1", "I: 1", "J: 1", "K: 1", "L: 1"]) => 431;
}

#[test]
fn version_426_names_the_supported_version() {
    let (addr, _) = echo_server(Upgrader::new());
    let mut p = RawPeer::connect(addr);
    p.send(
        req(
            "GET",
            "HTTP/1.1",
            &[HOST, UPG, CONN, KEY, "Sec-WebSocket-Version: 8"],
        )
        .as_bytes(),
    );
    let head = p.read_head();
    assert!(head.starts_with("HTTP/1.1 426"), "{head}");
    assert!(head.contains("Sec-WebSocket-Version: 13\r\n"), "{head}");
}

#[test]
fn handshake_timeout_drops_a_silent_peer() {
    let (addr, done) =
        echo_server(Upgrader::new().handshake_timeout(Some(Duration::from_millis(200))));
    let mut p = RawPeer::connect(addr);
    p.send(b"GET / HTTP/1.1\r\n");
    let err = done.recv_timeout(T).unwrap();
    assert!(
        matches!(err, Error::Handshake(HandshakeError::Timeout)),
        "{err:?}"
    );
}

// ---- Bad peers: malformed frames and their close codes ----

macro_rules! frame_cases {
    ($($name:ident: $bytes:expr => $code:expr, $err:pat,)*) => {$(
        #[test]
        fn $name() {
            let (addr, done) = echo_server(Upgrader::new().max_message_size(1 << 16));
            let mut p = RawPeer::handshake(addr, "/");
            let bytes: Vec<u8> = $bytes;
            p.send(&bytes);
            let close = loop {
                let f = p.read_frame().expect("a close frame before EOF");
                if f.opcode == 8 {
                    break f;
                }
            };
            assert_eq!(close.close_code(), Some($code));
            assert!(p.at_eof(), "the server closes TCP after failing the connection");
            let err = done.recv_timeout(T).unwrap();
            assert!(matches!(err, $err), "{err:?}");
        }
    )*};
}

use ProtocolError as PE;

frame_cases! {
    bad_unmasked_client_frame: sframe(0x81, b"hi") => 1002, Error::Protocol(PE::UnmaskedFrameFromClient),
    bad_oversized_ping: cframe(0x89, &[0; 126]) => 1002, Error::Protocol(PE::ControlFrameTooBig),
    bad_fragmented_ping: cframe(0x09, b"x") => 1002, Error::Protocol(PE::FragmentedControlFrame),
    bad_stray_continuation: cframe(0x80, b"x") => 1002, Error::Protocol(PE::UnexpectedContinuation),
    bad_new_message_mid_message: [cframe(0x01, b"a"), cframe(0x82, b"b")].concat() => 1002, Error::Protocol(PE::ExpectedContinuation),
    bad_rsv1: cframe(0xC1, b"x") => 1002, Error::Protocol(PE::ReservedBitsSet(_)),
    bad_opcode: cframe(0x85, b"") => 1002, Error::Protocol(PE::ReservedOpcode(5)),
    bad_utf8: cframe(0x81, &[0xff, 0xfe]) => 1007, Error::Protocol(PE::InvalidUtf8),
    bad_close_code: cframe(0x88, &[0x03, 0xec]) => 1002, Error::Protocol(PE::InvalidCloseCode(1004)),
    bad_close_one_byte: cframe(0x88, &[0x03]) => 1002, Error::Protocol(PE::InvalidClosePayload),
    bad_close_reason_utf8: cframe(0x88, &[0x03, 0xe8, 0xc0]) => 1007, Error::Protocol(PE::InvalidUtf8),
    bad_too_big: cframe(0x82, &vec![0; 70_000]) => 1009, Error::MessageTooBig { .. },
}

// ---- Client-side handshake checks ----

fn fake_server(response: &'static str) -> std::net::SocketAddr {
    serve(move |mut s| {
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        let _ = s.write_all(response.as_bytes());
        thread::sleep(Duration::from_millis(300));
    })
}

#[test]
fn dialer_refuses_a_wrong_accept_key() {
    let addr = fake_server(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
    );
    let err = Dialer::new().dial(&format!("ws://{addr}/")).unwrap_err();
    assert!(
        matches!(err, Error::Handshake(HandshakeError::InvalidAccept)),
        "{err:?}"
    );
}

#[test]
fn dialer_reports_a_refusal_status() {
    let addr = fake_server("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
    let err = Dialer::new().dial(&format!("ws://{addr}/")).unwrap_err();
    assert_eq!(err.http_status(), Some(403));
}

#[test]
fn dialer_refuses_wss_and_bad_urls() {
    for url in ["wss://127.0.0.1/", "http://x/", "ws://:80/"] {
        let err = Dialer::new().dial(url).unwrap_err();
        assert!(
            matches!(err, Error::Handshake(HandshakeError::InvalidUrl(_))),
            "{url}"
        );
    }
}

// ---- Caller misuse is a value, not a panic ----

#[test]
fn misuse_is_reported() {
    let (addr, _) = echo_server(Upgrader::new());
    let mut c = dial(addr);
    assert!(matches!(
        c.write_control(OpCode::Ping, &[0; 126], None),
        Err(Error::Usage(UsageError::ControlPayloadTooBig(126)))
    ));
    assert!(matches!(
        c.write_control(OpCode::Text, b"", None),
        Err(Error::Usage(UsageError::NotControl))
    ));
    assert!(matches!(
        c.write_message(MessageKind::Text, &[0xff]),
        Err(Error::Usage(UsageError::InvalidUtf8))
    ));
    assert!(matches!(
        c.close(CloseCode::ABNORMAL, ""),
        Err(Error::Usage(UsageError::InvalidCloseCode(1006)))
    ));
    assert!(matches!(
        c.close(CloseCode::NORMAL, &"r".repeat(124)),
        Err(Error::Usage(UsageError::CloseReasonTooLong(124)))
    ));
    // Still usable after refused calls.
    c.write_message(MessageKind::Text, b"ok").unwrap();
    assert_eq!(c.read_message().unwrap(), Message::Text("ok".into()));
}

#[test]
fn from_raw_and_config_work_over_any_stream() {
    // A Unix socket pair: no TCP, no handshake; both ends built with from_raw.
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let cfg = Settings::default();
    let mut server = Conn::from_raw(a, silverback::Role::Server, &cfg, &[], None);
    let mut client = Conn::from_raw(b, silverback::Role::Client, &cfg, &[], None);
    client
        .write_message(MessageKind::Binary, b"over unix")
        .unwrap();
    assert_eq!(
        server.read_message().unwrap(),
        Message::Binary(b"over unix".to_vec())
    );
}
