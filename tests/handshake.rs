//! The sans-IO handshake objects with a simulated clock: a client and a server
//! handshake in memory, their deadlines, refusals, and reproducible keys.

use std::sync::Arc;
use std::time::{Duration, Instant};

use silverback::proto::Event;
use silverback::proto::handshake::{ClientConfig, ClientHandshake, ServerConfig, ServerHandshake};
use silverback::proto::{MessageKind, Randomness};
use silverback::{HandshakeError, Role};

fn client_config(protocols: &[&str]) -> Arc<ClientConfig> {
    let mut c = ClientConfig::default();
    c.subprotocols = protocols.iter().map(|p| p.to_string()).collect();
    Arc::new(c)
}

fn server_config(protocols: &[&str]) -> Arc<ServerConfig> {
    let mut s = ServerConfig::default();
    s.subprotocols = protocols.iter().map(|p| p.to_string()).collect();
    Arc::new(s)
}

#[test]
fn a_client_and_a_server_handshake_in_memory_and_talk() {
    let t0 = Instant::now();
    let mut request = Vec::new();
    let mut client = ClientHandshake::new(
        client_config(&["chat.v2", "chat.v1"]),
        "example.com:80",
        "/chat?room=1",
        Randomness::seeded(7),
        t0,
        &mut request,
    );
    // The request arrives with the first client frame right behind it.
    let server = ServerHandshake::new(server_config(&["chat.v1"]), t0);
    for cut in 0..request.len() {
        assert_eq!(
            server.parse(&request[..cut]),
            Ok(None),
            "partial head at {cut}"
        );
    }
    let (req, head_len) = server.parse(&request).unwrap().unwrap();
    assert_eq!((req.path(), req.query_param("room")), ("/chat", Some("1")));
    assert_eq!(head_len, request.len());
    server.check(&req).unwrap();
    let protocol = server.select_protocol(&req).map(str::to_owned);
    assert_eq!(protocol.as_deref(), Some("chat.v1"));
    let mut s = server.accept(
        &req,
        protocol.as_deref(),
        &[("X-Test".into(), "1".into())],
        t0,
    );
    s.send(MessageKind::Text, b"welcome").unwrap();
    // The response head and the first frame, fed to the client byte by byte.
    let response = s.transmit().to_vec();
    s.advance_transmit(response.len());
    assert!(response.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
    let mut opened = None;
    for end in 1..=response.len() {
        if let Some(r) = client.read(&response[..end], t0).unwrap() {
            opened = Some(r);
            break;
        }
    }
    let (resp, head, mut c) = opened.expect("the handshake completes");
    assert_eq!(resp.protocol(), Some("chat.v1"));
    assert_eq!(resp.headers().get("X-Test"), Some("1"));
    assert_eq!(c.subprotocol(), Some("chat.v1"));
    assert_eq!(s.subprotocol(), Some("chat.v1"));
    assert_eq!(c.role(), Role::Client);
    // Bytes past the head are the first frames: not lost.
    assert!(head < response.len());
    let mut input = response[head..].to_vec();
    let mut scratch = Vec::new();
    let (_, ev) = c.read(&mut input, &mut scratch, t0).unwrap();
    match ev {
        Some(Event::Message(m)) => assert_eq!(m.data, b"welcome"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn handshake_deadlines_with_a_simulated_clock() {
    let t0 = Instant::now();
    let mut cfg = ServerConfig::default();
    cfg.timeout = Some(Duration::from_secs(3));
    let server = ServerHandshake::new(Arc::new(cfg), t0);
    assert_eq!(server.poll_timeout(), Some(t0 + Duration::from_secs(3)));
    assert_eq!(
        server.handle_timeout(t0 + Duration::from_millis(2999)),
        Ok(())
    );
    assert_eq!(
        server.handle_timeout(t0 + Duration::from_secs(3)),
        Err(HandshakeError::Timeout)
    );
    let mut out = Vec::new();
    let client = ClientHandshake::new(
        Arc::new(ClientConfig::default()),
        "h",
        "/",
        Randomness::seeded(1),
        t0,
        &mut out,
    );
    assert_eq!(client.poll_timeout(), Some(t0 + Duration::from_secs(45)));
    assert_eq!(
        client.handle_timeout(t0 + Duration::from_secs(45)),
        Err(HandshakeError::Timeout)
    );
    // No deadline at all when the timeout is off.
    let mut cfg = ServerConfig::default();
    cfg.timeout = None;
    let server = ServerHandshake::new(Arc::new(cfg), t0);
    assert_eq!(server.poll_timeout(), None);
    assert_eq!(
        server.handle_timeout(t0 + Duration::from_secs(1 << 20)),
        Ok(())
    );
}

#[test]
fn refusals_carry_their_status() {
    let t0 = Instant::now();
    let mut cfg = ServerConfig::default();
    cfg.check_origin = Some(Arc::new(|req| req.origin() == Some("https://ok.example")));
    let server = ServerHandshake::new(Arc::new(cfg), t0);
    let head = b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
                 Origin: https://evil.example\r\n\r\n";
    let (req, _) = server.parse(head).unwrap().unwrap();
    let err = server.check(&req).unwrap_err();
    assert_eq!(err, HandshakeError::OriginRefused);
    let mut out = Vec::new();
    ServerHandshake::reject(&err, &mut out);
    assert!(out.starts_with(b"HTTP/1.1 403 Forbidden\r\n"));
    // A version the server does not speak: 426 naming the one it does.
    let old = b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n";
    let (req, _) = server.parse(old).unwrap().unwrap();
    let err = server.check(&req).unwrap_err();
    let mut out = Vec::new();
    ServerHandshake::reject(&err, &mut out);
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
    assert!(text.contains("Sec-WebSocket-Version: 13\r\n"));
    // Two keys (§11.3.1: the key MUST NOT appear more than once): 400.
    let twice = b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                  Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
                  Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\r\n\r\n";
    let (req, _) = server.parse(twice).unwrap().unwrap();
    let err = server.check(&req).unwrap_err();
    assert_eq!(err, HandshakeError::InvalidKey);
    assert_eq!(err.status(), 400);
    // A wrong accept key is refused by the client.
    let mut request = Vec::new();
    let mut client = ClientHandshake::new(
        Arc::new(ClientConfig::default()),
        "h",
        "/",
        Randomness::seeded(3),
        t0,
        &mut request,
    );
    let bad = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    assert!(matches!(
        client.read(bad, t0),
        Err(HandshakeError::InvalidAccept)
    ));
}

#[test]
fn the_same_seed_gives_the_same_request() {
    let t0 = Instant::now();
    let request = |seed| {
        let mut out = Vec::new();
        ClientHandshake::new(
            Arc::new(ClientConfig::default()),
            "h",
            "/",
            Randomness::seeded(seed),
            t0,
            &mut out,
        );
        out
    };
    assert_eq!(request(9), request(9));
    assert_ne!(request(9), request(10));
}

#[cfg(feature = "deflate")]
#[test]
fn deflate_is_negotiated_by_the_handshake_objects() {
    use silverback::proto::deflate::DeflateConfig;
    let t0 = Instant::now();
    let mut cc = ClientConfig::default();
    cc.deflate = Some(DeflateConfig::default().server_no_context_takeover(true));
    let mut sc = ServerConfig::default();
    sc.deflate = Some(DeflateConfig::default());
    let mut request = Vec::new();
    let mut client = ClientHandshake::new(
        Arc::new(cc),
        "h",
        "/",
        Randomness::seeded(5),
        t0,
        &mut request,
    );
    let server = ServerHandshake::new(Arc::new(sc), t0);
    let (req, _) = server.parse(&request).unwrap().unwrap();
    server.check(&req).unwrap();
    let mut s = server.accept(&req, None, &[], t0);
    let response = s.transmit().to_vec();
    s.advance_transmit(response.len());
    let (resp, _, c) = client.read(&response, t0).unwrap().unwrap();
    assert!(
        resp.extensions()
            .is_some_and(|e| e.contains("server_no_context_takeover"))
    );
    assert!(c.is_compressed() && s.is_compressed());
}
