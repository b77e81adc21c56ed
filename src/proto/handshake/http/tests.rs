//! Tests of the HTTP heads: parsing at every split, limits, §4.2.1 checks, and a
//! request/response round trip.

use super::super::generate_key;
use super::*;

const RFC_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn request(extra: &str) -> Vec<u8> {
    format!(
        "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {RFC_KEY}\r\n\
         Sec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
    .into_bytes()
}

#[test]
fn rfc_key_accept_pair() {
    // RFC 6455 §1.3.
    assert_eq!(
        accept_key(RFC_KEY.as_bytes()),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}

#[test]
fn request_parses_and_validates() {
    let mut bytes = request("Origin: http://example.com\r\n");
    bytes.extend_from_slice(&[0x81, 0x80]);
    let (req, n) = parse_request(&bytes, &HeadLimits::default())
        .unwrap()
        .unwrap();
    assert_eq!(&bytes[n..], &[0x81, 0x80], "bytes after the head are kept");
    assert_eq!(req.path(), "/chat");
    assert_eq!(req.validate_upgrade(), Ok(()));
    assert!(!req.same_origin());
}

#[test]
fn partial_request_needs_more_at_every_split() {
    let bytes = request("");
    for i in 0..bytes.len() {
        assert_eq!(
            parse_request(&bytes[..i], &HeadLimits::default()),
            Ok(None),
            "{i}"
        );
    }
}

#[test]
fn head_limits() {
    let limits = HeadLimits {
        max_size: 64,
        max_headers: 4,
    };
    assert_eq!(
        parse_request(&request(""), &limits),
        Err(HandshakeError::HeadTooLarge)
    );
    let limits = HeadLimits {
        max_size: 4096,
        max_headers: 4,
    };
    assert_eq!(
        parse_request(&request(""), &limits),
        Err(HandshakeError::HeadTooLarge)
    );
    // An endless partial head is refused once it passes the limit.
    let limits = HeadLimits {
        max_size: 32,
        max_headers: 4,
    };
    assert_eq!(
        parse_request(b"GET / HTTP/1.1\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaa", &limits),
        Err(HandshakeError::HeadTooLarge)
    );
}

macro_rules! validate_cases {
    ($($name:ident: $raw:expr => $expected:expr;)*) => {$(
        #[test]
        fn $name() {
            let raw: &str = $raw;
            let (req, _) = parse_request(raw.as_bytes(), &HeadLimits::default()).unwrap().unwrap();
            assert_eq!(req.validate_upgrade(), $expected);
        }
    )*};
}

validate_cases! {
    valid_lowercase_tokens: "GET / HTTP/1.1\r\nHost: h\r\nupgrade: WebSocket\r\nconnection: keep-alive, Upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n" => Ok(());
    not_get: "POST / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n" => Err(HandshakeError::MethodNotGet);
    http_1_0: "GET / HTTP/1.0\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n" => Err(HandshakeError::UnsupportedHttpVersion);
    plain_http: "GET / HTTP/1.1\r\nHost: h\r\n\r\n" => Err(HandshakeError::NotUpgrade);
    no_upgrade_token: "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n" => Err(HandshakeError::MissingUpgradeWebsocket);
    no_connection_token: "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n" => Err(HandshakeError::MissingConnectionUpgrade);
    no_host: "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n" => Err(HandshakeError::MissingHost);
    version_8: "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n" => Err(HandshakeError::UnsupportedVersion);
    no_version: "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n" => Err(HandshakeError::UnsupportedVersion);
    no_key: "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n" => Err(HandshakeError::InvalidKey);
    short_key: "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n\r\n" => Err(HandshakeError::InvalidKey);
    key_not_base64: "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!!!\r\nSec-WebSocket-Version: 13\r\n\r\n" => Err(HandshakeError::InvalidKey);
}

#[test]
fn status_codes() {
    assert_eq!(HandshakeError::MethodNotGet.status(), 405);
    assert_eq!(HandshakeError::NotUpgrade.status(), 426);
    assert_eq!(HandshakeError::UnsupportedVersion.status(), 426);
    assert_eq!(HandshakeError::InvalidKey.status(), 400);
    assert_eq!(HandshakeError::OriginRefused.status(), 403);
    assert_eq!(HandshakeError::HeadTooLarge.status(), 431);
    let mut out = Vec::new();
    write_error_response(&HandshakeError::UnsupportedVersion, &mut out);
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
    assert!(text.contains("Sec-WebSocket-Version: 13\r\n"));
}

#[test]
fn origin_policy() {
    let (req, _) = parse_request(
        &request("Origin: https://SERVER.example.com\r\n"),
        &HeadLimits::default(),
    )
    .unwrap()
    .unwrap();
    assert!(req.same_origin());
    let (req, _) = parse_request(&request(""), &HeadLimits::default())
        .unwrap()
        .unwrap();
    assert!(req.same_origin());
}

#[test]
fn protocol_selection_follows_server_preference() {
    let (req, _) = parse_request(
        &request("Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Protocol: v3\r\n"),
        &HeadLimits::default(),
    )
    .unwrap()
    .unwrap();
    let supported = vec!["v3".to_owned(), "chat".to_owned()];
    assert_eq!(req.select_protocol(&supported), Some("v3"));
    assert_eq!(req.select_protocol(&["x".to_owned()]), None);
}

#[test]
fn client_round_trip() {
    let key = generate_key();
    let protocols = vec!["chat".to_owned()];
    let mut out = Vec::new();
    write_request(
        &ClientOffer {
            host: "localhost:1",
            target: "/x?y=1&t=a&flag&t=b&t=",
            key: &key,
            protocols: &protocols,
            ..Default::default()
        },
        &mut out,
    );
    let (req, _) = parse_request(&out, &HeadLimits::default())
        .unwrap()
        .unwrap();
    assert_eq!(req.validate_upgrade(), Ok(()));
    assert_eq!(req.query_param("y"), Some("1"));
    assert_eq!(req.query_param("flag"), Some(""));
    assert_eq!(req.query_params("t").collect::<Vec<_>>(), ["a", "b", ""]);
    assert_eq!(req.query_params("none").count(), 0);
    let mut resp = Vec::new();
    write_accept_response(&key, req.select_protocol(&protocols), None, &[], &mut resp);
    resp.extend_from_slice(b"\x81\x00");
    let (r, n) = parse_response(&resp, &HeadLimits::default(), &key, &protocols, false)
        .unwrap()
        .unwrap();
    assert_eq!(r.protocol(), Some("chat"));
    assert_eq!(&resp[n..], b"\x81\x00");
    for i in 0..n {
        assert_eq!(
            parse_response(&resp[..i], &HeadLimits::default(), &key, &protocols, false),
            Ok(None)
        );
    }
    // A wrong key, an unoffered protocol, a non-101 status.
    assert_eq!(
        parse_response(&resp, &HeadLimits::default(), RFC_KEY, &protocols, false),
        Err(HandshakeError::InvalidAccept)
    );
    assert_eq!(
        parse_response(&resp, &HeadLimits::default(), &key, &[], false),
        Err(HandshakeError::UnexpectedSubprotocol("chat".into()))
    );
    assert_eq!(
        parse_response(
            b"HTTP/1.1 403 Forbidden\r\n\r\n",
            &HeadLimits::default(),
            &key,
            &[],
            false
        ),
        Err(HandshakeError::UnexpectedStatus(403))
    );
}
