//! `proto::Connection` with a simulated clock: a client and a server connection in
//! memory, no sockets, no sleeps. Every timer, both closing handshakes, failures,
//! the obligated replies, the streaming writer and the zero-copy path.

use std::sync::Arc;
use std::time::{Duration, Instant};

use silverback::proto::{
    CloseCode, Connection, ConnectionConfig, Decoder, Event, FrameEvent, Lost, MessageKind,
    ProtocolError, Randomness, RecvError, Role, SendError, State, UsageError,
};

/// An owned copy of a connection event.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Piece {
        kind: MessageKind,
        data: Vec<u8>,
        first: bool,
        last: bool,
    },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(u16, String),
}

/// The receiving end of a byte pipe into a connection.
struct Rx {
    buf: Vec<u8>,
    scratch: Vec<u8>,
}

impl Rx {
    fn new() -> Self {
        Rx {
            buf: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// Feeds `bytes` to `conn` and collects every event (stops at an error).
    fn feed(
        &mut self,
        conn: &mut Connection,
        bytes: &[u8],
        now: Instant,
    ) -> (Vec<Ev>, Option<RecvError>) {
        self.buf.extend_from_slice(bytes);
        let mut events = Vec::new();
        for _ in 0..1_000_000 {
            match conn.read(&mut self.buf, &mut self.scratch, now) {
                Err(e) => return (events, Some(e)),
                Ok((n, ev)) => {
                    let owned = ev.map(|ev| match ev {
                        Event::Message(c) => Ev::Piece {
                            kind: c.kind,
                            data: c.data.to_vec(),
                            first: c.first,
                            last: c.last,
                        },
                        Event::Ping(p) => Ev::Ping(p.to_vec()),
                        Event::Pong(p) => Ev::Pong(p.to_vec()),
                        Event::Close { code, reason } => Ev::Close(code.0, reason.to_owned()),
                    });
                    self.buf.drain(..n);
                    match owned {
                        Some(e) => events.push(e),
                        None => return (events, None),
                    }
                }
            }
        }
        panic!("read did not stop");
    }
}

/// Moves everything `from` wants to transmit into `to`.
fn pump(from: &mut Connection, to: &mut Connection, rx: &mut Rx, now: Instant) -> Vec<Ev> {
    let bytes = from.transmit().to_vec();
    from.advance_transmit(bytes.len());
    let (events, err) = rx.feed(to, &bytes, now);
    assert!(err.is_none(), "{err:?}");
    events
}

fn whole(events: &[Ev]) -> Vec<(MessageKind, Vec<u8>)> {
    let mut out = Vec::new();
    let mut cur: Option<(MessageKind, Vec<u8>)> = None;
    for e in events {
        if let Ev::Piece {
            kind,
            data,
            first,
            last,
        } = e
        {
            if *first {
                assert!(cur.is_none());
                cur = Some((*kind, Vec::new()));
            }
            cur.as_mut().expect("piece without a first").1.extend(data);
            if *last {
                out.push(cur.take().unwrap());
            }
        }
    }
    out
}

fn pair_with(config: ConnectionConfig, t0: Instant) -> (Connection, Connection) {
    let config = Arc::new(config);
    (
        Connection::new(Role::Client, config.clone(), Randomness::seeded(1), t0),
        Connection::new(Role::Server, config, Randomness::thread(), t0),
    )
}

fn pair(t0: Instant) -> (Connection, Connection) {
    pair_with(ConnectionConfig::default(), t0)
}

const S: Duration = Duration::from_secs(1);

/// How `conn` ended, owned: (code, reason).
fn end(conn: &Connection) -> Option<(CloseCode, String)> {
    conn.end().map(|e| (e.code, e.reason.to_owned()))
}

#[test]
fn messages_fragments_and_pings_cross_in_both_directions() {
    let t0 = Instant::now();
    let (mut c, mut s) = pair(t0);
    let (mut to_s, mut to_c) = (Rx::new(), Rx::new());
    c.send(MessageKind::Text, b"hello").unwrap();
    c.ping(b"p1").unwrap();
    c.send_fragment(MessageKind::Binary, b"ab", false).unwrap();
    c.ping(b"p2").unwrap();
    c.send_fragment(MessageKind::Text, b"cd", true).unwrap();
    let ev = pump(&mut c, &mut s, &mut to_s, t0);
    assert_eq!(
        whole(&ev),
        vec![
            (MessageKind::Text, b"hello".to_vec()),
            (MessageKind::Binary, b"abcd".to_vec())
        ],
        "the first fragment decides the kind"
    );
    assert!(ev.contains(&Ev::Ping(b"p1".to_vec())) && ev.contains(&Ev::Ping(b"p2".to_vec())));
    // Both pings were answered automatically, in order.
    let back = pump(&mut s, &mut c, &mut to_c, t0);
    assert_eq!(
        back,
        vec![Ev::Pong(b"p1".to_vec()), Ev::Pong(b"p2".to_vec())]
    );
}

#[test]
fn client_initiated_close_handshake() {
    let t0 = Instant::now();
    let (mut c, mut s) = pair(t0);
    let (mut to_s, mut to_c) = (Rx::new(), Rx::new());
    c.close(t0, CloseCode::NORMAL, "bye").unwrap();
    assert!(c.state().close_sent() && !c.state().is_open());
    assert!(matches!(
        c.send(MessageKind::Text, b"late"),
        Err(SendError::Closed)
    ));
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(5)));
    let ev = pump(&mut c, &mut s, &mut to_s, t0 + S);
    assert_eq!(ev, vec![Ev::Close(1000, "bye".into())]);
    // The server's echo is queued; once it is out, the server closes TCP first.
    assert!(!s.should_close_transport());
    let ev = pump(&mut s, &mut c, &mut to_c, t0 + S);
    assert_eq!(ev, vec![Ev::Close(1000, String::new())]);
    assert!(s.should_close_transport());
    assert_eq!(end(&s), Some((CloseCode::NORMAL, "bye".into())));
    // The client waits for the server's TCP close, bounded by close_timeout.
    assert!(!c.should_close_transport());
    assert_eq!(c.poll_timeout(), Some(t0 + S + Duration::from_secs(5)));
    c.handle_eof();
    assert!(c.state().is_done() && c.should_close_transport());
    assert_eq!(end(&c), Some((CloseCode::NORMAL, "".into())));
}

#[test]
fn server_initiated_close_and_a_client_that_never_sees_eof() {
    let t0 = Instant::now();
    let (mut c, mut s) = pair(t0);
    let (mut to_s, mut to_c) = (Rx::new(), Rx::new());
    s.close(t0, CloseCode::GOING_AWAY, "restart").unwrap();
    let ev = pump(&mut s, &mut c, &mut to_c, t0);
    assert_eq!(ev, vec![Ev::Close(1001, "restart".into())]);
    let ev = pump(&mut c, &mut s, &mut to_s, t0);
    assert_eq!(ev, vec![Ev::Close(1001, String::new())]);
    assert!(
        s.should_close_transport(),
        "server closes once both closes crossed"
    );
    // The client's bounded wait for the server's TCP close ends at close_timeout.
    let deadline = c.poll_timeout().expect("client waits");
    c.handle_timeout(deadline - Duration::from_millis(1))
        .unwrap();
    assert!(!c.state().is_done());
    c.handle_timeout(deadline).unwrap();
    assert!(c.state().is_done() && c.should_close_transport());
}

#[test]
fn an_unanswered_close_ends_after_the_close_timeout() {
    let t0 = Instant::now();
    let cfg = ConnectionConfig::default().close_timeout(Duration::from_secs(2));
    let (_c, mut s) = pair_with(cfg, t0);
    s.close(t0, CloseCode::NORMAL, "").unwrap();
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(2)));
    s.handle_timeout(t0 + S).unwrap();
    assert!(!s.state().is_done());
    let r = s.handle_timeout(t0 + 2 * S);
    assert!(matches!(r, Err(Lost::CloseTimeout)), "{r:?}");
    assert!(silverback::Error::from(r.unwrap_err()).is_terminal());
    assert!(s.state().is_done() && s.should_close_transport());
    assert_eq!(end(&s), Some((CloseCode::NORMAL, "".into())));
}

#[test]
fn heartbeat_pings_and_a_silent_peer_times_out() {
    let t0 = Instant::now();
    let cfg = ConnectionConfig::default().heartbeat(Some(10 * S), 3 * S);
    let (mut c, mut s) = pair_with(cfg, t0);
    let (mut to_s, mut to_c) = (Rx::new(), Rx::new());
    assert_eq!(s.poll_timeout(), Some(t0 + 10 * S));
    s.handle_timeout(t0 + 10 * S).unwrap();
    // The ping is queued; the pong is due within 3 s.
    assert_eq!(s.poll_timeout(), Some(t0 + 13 * S));
    let ev = pump(&mut s, &mut c, &mut to_c, t0 + 10 * S);
    assert_eq!(ev, vec![Ev::Ping(Vec::new())]);
    // The client's pong (anything at all) clears it; the next ping is due at 20 s.
    let ev = pump(&mut c, &mut s, &mut to_s, t0 + 11 * S);
    assert_eq!(ev, vec![Ev::Pong(Vec::new())]);
    assert_eq!(s.poll_timeout(), Some(t0 + 20 * S));
    s.handle_timeout(t0 + 20 * S).unwrap();
    let _ = pump(&mut s, &mut c, &mut to_c, t0 + 20 * S);
    // This time the client stays silent.
    let r = s.handle_timeout(t0 + 23 * S);
    assert!(matches!(r, Err(Lost::PongTimeout)), "{r:?}");
    // Fatal, and says so: a driver that trusts is_terminal drops the connection.
    let e = silverback::Error::from(r.unwrap_err());
    assert!(e.is_terminal());
    assert_eq!(e.close_code(), Some(CloseCode::ABNORMAL));
    assert!(s.state().is_done() && s.should_close_transport());
    assert_eq!(end(&s), Some((CloseCode::ABNORMAL, "pong timeout".into())));
}

#[test]
fn idle_connection_is_closed_with_1001() {
    let t0 = Instant::now();
    let cfg = ConnectionConfig::default().idle_timeout(Some(30 * S));
    let (mut c, mut s) = pair_with(cfg, t0);
    let (mut to_s, mut to_c) = (Rx::new(), Rx::new());
    c.send(MessageKind::Text, b"x").unwrap();
    pump(&mut c, &mut s, &mut to_s, t0 + 20 * S);
    assert_eq!(
        s.poll_timeout(),
        Some(t0 + 50 * S),
        "traffic moved the deadline"
    );
    s.handle_timeout(t0 + 49 * S).unwrap();
    assert!(s.state().is_open());
    s.handle_timeout(t0 + 50 * S).unwrap();
    assert!(s.state().close_sent());
    let ev = pump(&mut s, &mut c, &mut to_c, t0 + 50 * S);
    assert_eq!(ev, vec![Ev::Close(1001, "idle timeout".into())]);
}

#[test]
fn a_violation_fails_the_connection_once_with_its_code() {
    let t0 = Instant::now();
    let (mut c, mut s) = pair(t0);
    let (mut to_s, mut to_c) = (Rx::new(), Rx::new());
    // An unmasked frame from a client.
    let (ev, err) = to_s.feed(&mut s, b"\x81\x02hi", t0);
    assert!(ev.is_empty());
    assert!(matches!(
        err,
        Some(RecvError::Protocol(ProtocolError::UnmaskedFrameFromClient))
    ));
    assert!(s.state() == State::Failed);
    // Later input is discarded, not an error again.
    let (ev, err) = to_s.feed(&mut s, b"\x81\x82abcdxx", t0);
    assert!(ev.is_empty() && err.is_none());
    let ev = pump(&mut s, &mut c, &mut to_c, t0);
    assert_eq!(ev, vec![Ev::Close(1002, String::new())]);
    assert!(s.should_close_transport());
    assert_eq!(end(&s), Some((CloseCode::PROTOCOL_ERROR, "".into())));
    // Invalid UTF-8 in a fragmented text message: 1007 before the message ends.
    let (mut c2, mut s2) = pair(t0);
    c2.send_fragment(MessageKind::Binary, b"ok", false).unwrap();
    let mut raw = c2.transmit().to_vec();
    c2.advance_transmit(raw.len());
    let (_, err) = Rx::new().feed(&mut s2, &raw, t0);
    assert!(err.is_none());
    raw.clear();
    let (mut c3, mut s3) = pair(t0);
    c3.send_fragment(MessageKind::Text, b"ok", false).unwrap();
    let mut wire = c3.transmit().to_vec();
    // Hand-masked continuation carrying 0xff.
    wire.extend_from_slice(&[0x00, 0x81, 0, 0, 0, 0, 0xff]);
    let (_, err) = Rx::new().feed(&mut s3, &wire, t0);
    assert!(matches!(
        err,
        Some(RecvError::Protocol(ProtocolError::InvalidUtf8))
    ));
    assert_eq!(end(&s3), Some((CloseCode::INVALID_PAYLOAD, "".into())));
    drop((c2, s2));
}

#[test]
fn a_client_that_fails_waits_for_the_server_to_close() {
    let t0 = Instant::now();
    let (mut c, _s) = pair(t0);
    // A masked frame from a server.
    let (_, err) = Rx::new().feed(&mut c, b"\x81\x82abcdxx", t0);
    assert!(matches!(
        err,
        Some(RecvError::Protocol(ProtocolError::MaskedFrameFromServer))
    ));
    c.advance_transmit(c.transmit().len());
    assert!(
        !c.should_close_transport(),
        "§7.1.1: the server closes first"
    );
    c.handle_timeout(c.poll_timeout().unwrap()).unwrap();
    assert!(c.should_close_transport());
}

#[test]
fn a_close_handler_can_replace_the_echo_before_it_is_sent() {
    let t0 = Instant::now();
    let (mut c, mut s) = pair(t0);
    let (mut to_s, mut to_c) = (Rx::new(), Rx::new());
    c.close(t0, CloseCode::NORMAL, "").unwrap();
    pump(&mut c, &mut s, &mut to_s, t0);
    s.close(t0, CloseCode(4000), "custom").unwrap();
    s.close(t0, CloseCode::NORMAL, "").unwrap();
    let ev = pump(&mut s, &mut c, &mut to_c, t0);
    assert_eq!(
        ev,
        vec![Ev::Close(1000, String::new())],
        "the last replacement wins"
    );
    // Once transmitted, the echo stays what it was.
    s.close(t0, CloseCode(4001), "late").unwrap();
    assert_eq!(s.transmit().len(), 0);
}

#[test]
fn input_after_the_peers_close_is_discarded() {
    // Autobahn 7.1.5/7.1.6: a close between fragments ends the conversation there;
    // what follows (the rest of the message, more messages) is not delivered.
    let t0 = Instant::now();
    let (mut c, mut s) = pair(t0);
    c.send_fragment(MessageKind::Text, b"frag", false).unwrap();
    c.close(t0, CloseCode::NORMAL, "").unwrap();
    let mut wire = c.transmit().to_vec();
    c.advance_transmit(wire.len());
    // A hand-masked continuation and a whole message after the close.
    wire.extend_from_slice(&[0x80, 0x84, 0, 0, 0, 0, b'm', b'e', b'n', b't']);
    wire.extend_from_slice(&[0x81, 0x81, 0, 0, 0, 0, b'x']);
    let (ev, err) = Rx::new().feed(&mut s, &wire, t0);
    assert!(err.is_none());
    assert_eq!(
        ev,
        vec![
            Ev::Piece {
                kind: MessageKind::Text,
                data: b"frag".to_vec(),
                first: true,
                last: false
            },
            Ev::Close(1000, String::new())
        ]
    );
    assert_eq!(s.state(), State::Closed);
}

#[test]
fn nothing_is_sent_after_a_close_and_misuse_changes_nothing() {
    let t0 = Instant::now();
    let (mut c, _s) = pair(t0);
    assert!(matches!(
        c.send(MessageKind::Text, &[0xff]),
        Err(SendError::Usage(UsageError::InvalidUtf8))
    ));
    assert!(matches!(
        c.ping(&[0; 126]),
        Err(SendError::Usage(UsageError::ControlPayloadTooBig(126)))
    ));
    assert!(matches!(
        c.close(t0, CloseCode::ABNORMAL, ""),
        Err(SendError::Usage(UsageError::InvalidCloseCode(1006)))
    ));
    assert!(matches!(
        c.send_fragment(MessageKind::Text, &[0xe2, 0x82], true),
        Err(SendError::Usage(UsageError::InvalidUtf8))
    ));
    assert_eq!(c.transmit().len(), 0, "refused calls queue nothing");
    c.send_fragment(MessageKind::Text, &[0xe2, 0x82], false)
        .unwrap();
    assert!(matches!(
        c.send(MessageKind::Text, b"x"),
        Err(SendError::Usage(UsageError::MessageSequence))
    ));
    c.send_fragment(MessageKind::Text, &[0xac], true).unwrap();
    c.close(t0, CloseCode::NORMAL, "").unwrap();
    let before = c.transmit().len();
    assert!(matches!(c.ping(b""), Err(SendError::Closed)));
    assert!(matches!(
        c.stream_write(MessageKind::Binary, b""),
        Err(SendError::Closed)
    ));
    assert_eq!(c.transmit().len(), before);
    // What was queued is a valid client stream ending with the close.
    let mut wire = c.transmit().to_vec();
    let mut dec = Decoder::new(Role::Server);
    let mut pos = 0;
    let mut last = None;
    while let Ok((n, Some(ev))) = dec.decode(&mut wire[pos..]) {
        pos += n;
        last = Some(matches!(ev, FrameEvent::Close(_)));
    }
    assert_eq!(pos, wire.len());
    assert_eq!(last, Some(true));
}

#[test]
fn streaming_writer_holds_back_split_code_points() {
    let t0 = Instant::now();
    let cfg = ConnectionConfig::default().write_buffer_size(4);
    let (mut c, mut s) = pair_with(cfg, t0);
    let mut to_s = Rx::new();
    // "aaa€" then "bb": the euro sign straddles the 4-byte fragment boundary.
    c.stream_write(MessageKind::Text, b"aaa\xe2").unwrap();
    c.stream_write(MessageKind::Text, b"\x82\xacbb").unwrap();
    c.stream_end().unwrap();
    let ev = pump(&mut c, &mut s, &mut to_s, t0);
    for e in &ev {
        if let Ev::Piece { data, .. } = e {
            assert!(
                std::str::from_utf8(data).is_ok(),
                "fragment {data:?} ends on a code point"
            );
        }
    }
    assert_eq!(
        whole(&ev),
        vec![(MessageKind::Text, "aaa€bb".as_bytes().to_vec())]
    );
    // A message that stops inside a code point ends validly and reports the misuse.
    c.stream_write(MessageKind::Text, b"ok\xe2\x82").unwrap();
    assert!(matches!(
        c.stream_end(),
        Err(SendError::Usage(UsageError::InvalidUtf8))
    ));
    let ev = pump(&mut c, &mut s, &mut to_s, t0);
    assert_eq!(whole(&ev), vec![(MessageKind::Text, b"ok".to_vec())]);
}

#[test]
fn a_direct_frame_and_its_unsent_rest_keep_the_stream_whole() {
    let t0 = Instant::now();
    let (mut c, mut s) = pair(t0);
    let mut to_c = Rx::new();
    let big = vec![7u8; 100_000];
    s.ping(b"first").unwrap();
    let frame = s
        .send_direct(MessageKind::Binary, &big)
        .unwrap()
        .expect("direct");
    // The transport takes the queue and 1000 bytes of the frame, then blocks.
    let mut wire = s.transmit().to_vec();
    s.advance_transmit(wire.len());
    let mut framed = frame.header().to_vec();
    framed.extend_from_slice(frame.payload());
    wire.extend_from_slice(&framed[..1000]);
    frame.written(&mut s, 1000);
    s.send(MessageKind::Text, b"after").unwrap();
    wire.extend_from_slice(s.transmit());
    let (ev, err) = to_c.feed(&mut c, &wire, t0);
    assert!(err.is_none());
    assert_eq!(
        whole(&ev),
        vec![
            (MessageKind::Binary, big),
            (MessageKind::Text, b"after".to_vec())
        ]
    );
    // A client masks: its frames are always queued.
    assert!(c.send_direct(MessageKind::Binary, b"x").unwrap().is_none());
}

#[test]
fn the_same_seed_gives_the_same_bytes() {
    let t0 = Instant::now();
    let run = || {
        let cfg = Arc::new(ConnectionConfig::default());
        let mut c = Connection::new(Role::Client, cfg, Randomness::seeded(42), t0);
        c.send(MessageKind::Text, b"same").unwrap();
        c.ping(b"again").unwrap();
        c.transmit().to_vec()
    };
    assert_eq!(run(), run());
}

#[test]
fn read_limit_fails_with_1009_from_the_header() {
    let t0 = Instant::now();
    let cfg = ConnectionConfig::default().max_message_size(10);
    let (mut c, mut s) = pair_with(cfg, t0);
    c.send(MessageKind::Binary, &[0; 11]).unwrap();
    let header_only = c.transmit()[..6].to_vec();
    let (_, err) = Rx::new().feed(&mut s, &header_only, t0);
    assert!(matches!(err, Some(RecvError::MessageTooBig { limit: 10 })));
    assert_eq!(end(&s), Some((CloseCode::MESSAGE_TOO_BIG, "".into())));
}

#[cfg(feature = "deflate")]
mod compressed {
    use super::*;
    use silverback::proto::deflate::DeflateConfig;
    use silverback::proto::handshake::{
        ClientConfig, ClientHandshake, ServerConfig, ServerHandshake,
    };

    /// A client and a server that negotiated permessage-deflate through the
    /// handshake objects, in memory.
    pub(super) fn deflate_pair(t0: Instant, limit: u64, nct: bool) -> (Connection, Connection) {
        let connection = ConnectionConfig::default().max_message_size(limit);
        let dc = DeflateConfig::default()
            .min_message_size(0)
            .server_no_context_takeover(nct)
            .client_no_context_takeover(nct);
        let client = Arc::new(
            ClientConfig::default()
                .connection(connection.clone())
                .deflate(dc.clone()),
        );
        let server = Arc::new(ServerConfig::default().connection(connection).deflate(dc));
        let mut request = Vec::new();
        let mut chs =
            ClientHandshake::new(client, "h", "/", Randomness::seeded(1), t0, &mut request);
        let shs = ServerHandshake::new(server, t0);
        let (req, _) = shs.parse(&request).unwrap().unwrap();
        shs.check(&req).unwrap();
        let mut s = shs.accept(&req, None, &[], t0);
        let response = s.transmit().to_vec();
        s.advance_transmit(response.len());
        let (_, _, c) = chs.read(&response, t0).unwrap().unwrap();
        assert!(c.is_compressed() && s.is_compressed());
        (c, s)
    }

    #[test]
    fn a_large_compressed_message_arrives_in_bounded_pieces() {
        let t0 = Instant::now();
        let (mut c, mut s) = deflate_pair(t0, 64 << 20, false);
        let mut to_s = Rx::new();
        let text: String = (0..200_000).map(|i| format!("{{\"n\":{i}}}")).collect();
        c.send(MessageKind::Text, text.as_bytes()).unwrap();
        assert!(
            c.transmit().len() < text.len() / 4,
            "compressed on the wire"
        );
        let ev = pump(&mut c, &mut s, &mut to_s, t0);
        for e in &ev {
            if let Ev::Piece { data, .. } = e {
                assert!(data.len() <= 16 * 1024, "piece of {} bytes", data.len());
            }
        }
        assert_eq!(whole(&ev), vec![(MessageKind::Text, text.into_bytes())]);
        // Streamed and fragmented sends compress too, and round-trip.
        for i in 0..100u32 {
            c.stream_write(MessageKind::Binary, &i.to_be_bytes().repeat(500))
                .unwrap();
        }
        c.stream_end().unwrap();
        c.send_fragment(MessageKind::Text, "héllo ".as_bytes(), false)
            .unwrap();
        c.send_fragment(MessageKind::Text, b"world", true).unwrap();
        let ev = pump(&mut c, &mut s, &mut to_s, t0);
        let got = whole(&ev);
        let expect: Vec<u8> = (0..100u32)
            .flat_map(|i| i.to_be_bytes().repeat(500))
            .collect();
        assert_eq!(got[0], (MessageKind::Binary, expect));
        assert_eq!(
            got[1],
            (MessageKind::Text, "héllo world".as_bytes().to_vec())
        );
    }

    /// The first byte of each frame in `wire` (masked client frames): RSV1 is 0x40.
    fn frame_heads(mut wire: &[u8]) -> Vec<u8> {
        let mut heads = Vec::new();
        while wire.len() >= 2 {
            let masked = wire[1] & 0x80 != 0;
            let (len, at) = match wire[1] & 0x7f {
                126 => (u16::from_be_bytes([wire[2], wire[3]]) as usize, 4),
                127 => (
                    u64::from_be_bytes(wire[2..10].try_into().unwrap()) as usize,
                    10,
                ),
                n => (n as usize, 2),
            };
            heads.push(wire[0]);
            wire = &wire[at + if masked { 4 } else { 0 } + len..];
        }
        heads
    }

    #[test]
    fn write_compression_can_be_switched_off_per_message() {
        let t0 = Instant::now();
        // Context takeover on: an uncompressed message must not disturb the
        // deflate context the later compressed ones rely on.
        let (mut c, mut s) = deflate_pair(t0, 64 << 20, false);
        let mut to_s = Rx::new();
        let text = "compress me, compress me, compress me, compress me".repeat(40);
        let jpeg: Vec<u8> = (0..4000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        c.send(MessageKind::Text, text.as_bytes()).unwrap();
        c.set_write_compression(false);
        assert!(c.is_compressed(), "still negotiated; only our sends change");
        c.send(MessageKind::Binary, &jpeg).unwrap();
        c.stream_write(MessageKind::Binary, &jpeg).unwrap();
        // Turned back on in the middle of a streamed message: that message keeps
        // its choice (every frame of a message follows its first).
        c.set_write_compression(true);
        c.stream_write(MessageKind::Binary, &jpeg).unwrap();
        c.stream_end().unwrap();
        c.send_fragment(MessageKind::Text, text.as_bytes(), false)
            .unwrap();
        c.set_write_compression(false);
        c.send_fragment(MessageKind::Text, b" end", true).unwrap();
        c.send(MessageKind::Text, text.as_bytes()).unwrap();
        c.set_write_compression(true);
        c.send(MessageKind::Text, text.as_bytes()).unwrap();
        let wire = c.transmit().to_vec();
        let rsv1: Vec<bool> = frame_heads(&wire).iter().map(|h| h & 0x40 != 0).collect();
        let streamed_frames = rsv1.len() - 6;
        let mut want = vec![true, false];
        want.extend(std::iter::repeat_n(false, streamed_frames));
        want.extend([true, false, false, true]);
        assert_eq!(rsv1, want, "RSV1 per frame");
        let ev = pump(&mut c, &mut s, &mut to_s, t0);
        let got = whole(&ev);
        let mut fragmented = text.clone().into_bytes();
        fragmented.extend_from_slice(b" end");
        let both: Vec<u8> = jpeg.iter().chain(&jpeg).copied().collect();
        assert_eq!(
            got,
            vec![
                (MessageKind::Text, text.clone().into_bytes()),
                (MessageKind::Binary, jpeg.clone()),
                (MessageKind::Binary, both),
                (MessageKind::Text, fragmented),
                (MessageKind::Text, text.clone().into_bytes()),
                (MessageKind::Text, text.clone().into_bytes()),
            ]
        );
        // A server with compression off sends a prepared frame as it is.
        let p = silverback::proto::PreparedFrame::new(MessageKind::Text, text.as_bytes()).unwrap();
        let n = s.transmit().len();
        s.advance_transmit(n);
        s.set_write_compression(false);
        s.send_prepared(&p).unwrap();
        assert_eq!(s.transmit()[0], 0x81, "FIN, text, RSV1 clear");
        assert_eq!(s.transmit().len(), 4 + text.len());
        assert!(s.transmit().ends_with(text.as_bytes()));
        s.advance_transmit(4 + text.len());
        s.set_write_compression(true);
        s.send_prepared(&p).unwrap();
        assert_eq!(s.transmit()[0], 0xC1, "FIN, RSV1, text");
        assert!(s.transmit().len() < text.len() / 4);
    }

    #[test]
    fn a_decompression_bomb_stops_at_the_limit_with_1009() {
        let t0 = Instant::now();
        let (mut c, mut s) = deflate_pair(t0, 1 << 20, true);
        c.send(MessageKind::Binary, &vec![0u8; 8 << 20]).unwrap();
        let wire = c.transmit().to_vec();
        assert!(wire.len() < 64 * 1024);
        let (ev, err) = Rx::new().feed(&mut s, &wire, t0);
        let delivered: usize = ev
            .iter()
            .map(|e| match e {
                Ev::Piece { data, .. } => data.len(),
                _ => 0,
            })
            .sum();
        assert!(
            matches!(err, Some(RecvError::MessageTooBig { .. })),
            "{err:?}"
        );
        assert!(delivered <= 1 << 20);
        assert_eq!(end(&s), Some((CloseCode::MESSAGE_TOO_BIG, "".into())));
    }
}

#[cfg(feature = "deflate")]
mod compressed_sizes {
    use super::*;

    #[test]
    fn many_compressed_messages_of_every_size_round_trip() {
        let t0 = Instant::now();
        for size in [16_384usize, 16_383, 16_385, 32_768, 65_536, 131_072] {
            for kind in [MessageKind::Text, MessageKind::Binary] {
                let (mut c, mut s) = super::compressed::deflate_pair(t0, 64 << 20, false);
                let mut to_s = Rx::new();
                let mut x = 1u32;
                let mut sent = Vec::new();
                for _ in 0..20 {
                    let msg: Vec<u8> = (0..size)
                        .map(|_| {
                            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                            b'a' + ((x >> 16) % 26) as u8
                        })
                        .collect();
                    c.send(kind, &msg).unwrap();
                    sent.push((kind, msg));
                }
                let ev = pump(&mut c, &mut s, &mut to_s, t0);
                assert_eq!(whole(&ev), sent, "size {size} {kind:?}");
            }
        }
    }
}
