//! The protocol core on its own: a client core and a server core paired in memory,
//! RFC examples byte for byte, every receive-side violation with its close code.

mod support;

use silverback::Error;
use silverback::proto::CloseCode;
use silverback::proto::{Decoder, Encoder, MessageKind, OpCode, Role};
use silverback::proto::{ProtocolError, RecvError};
use support::*;

fn text(s: &str, first: bool, last: bool) -> Ev {
    Ev::Data {
        kind: MessageKind::Text,
        payload: s.as_bytes().to_vec(),
        first,
        last,
    }
}

// ---- RFC 6455 §5.7 examples, byte for byte ----

#[test]
fn rfc_single_frame_unmasked_text() {
    let mut d = Decoder::new(Role::Client);
    let (ev, err) = drive(&mut d, &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f], &[]);
    assert!(err.is_none());
    assert_eq!(ev, vec![text("Hello", true, true)]);
}

#[test]
fn rfc_single_frame_masked_text() {
    let bytes = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    for chunk in 1..=bytes.len() {
        let mut d = Decoder::new(Role::Server);
        let (ev, err) = drive(&mut d, &bytes, &[chunk]);
        assert!(err.is_none());
        assert_eq!(
            assemble(&ev),
            vec![Msg::Text(b"Hello".to_vec())],
            "chunk {chunk}"
        );
    }
}

#[test]
fn rfc_fragmented_unmasked_text() {
    let bytes = [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f];
    let mut d = Decoder::new(Role::Client);
    let (ev, err) = drive(&mut d, &bytes, &[]);
    assert!(err.is_none());
    assert_eq!(ev, vec![text("Hel", true, false), text("lo", false, true)]);
}

#[test]
fn rfc_ping_and_masked_pong() {
    let mut d = Decoder::new(Role::Client);
    let (ev, _) = drive(&mut d, &[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f], &[]);
    assert_eq!(ev, vec![Ev::Ping(b"Hello".to_vec())]);
    let mut d = Decoder::new(Role::Server);
    let pong = [
        0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    let (ev, _) = drive(&mut d, &pong, &[]);
    assert_eq!(ev, vec![Ev::Pong(b"Hello".to_vec())]);
}

#[test]
fn rfc_256_and_64k_binary() {
    for (len, header) in [
        (256usize, vec![0x82, 0x7E, 0x01, 0x00]),
        (65536, vec![0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]),
    ] {
        let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mut bytes = header.clone();
        bytes.extend_from_slice(&payload);
        assert_eq!(sframe(0x82, &payload), bytes);
        let mut d = Decoder::new(Role::Client);
        let (ev, err) = drive(&mut d, &bytes, &[1000]);
        assert!(err.is_none());
        assert_eq!(assemble(&ev), vec![Msg::Binary(payload)]);
    }
}

// ---- Violations: each with its typed error and close code ----

macro_rules! violation_cases {
    ($($name:ident: ($role:expr, $bytes:expr) => $err:pat, $code:expr;)*) => {$(
        #[test]
        fn $name() {
            let bytes: Vec<u8> = $bytes;
            for chunk in [1usize, 3, 1 << 20] {
                let mut d = Decoder::new($role);
                d.set_max_message_size(1000);
                let (_, err) = drive(&mut d, &bytes, &[chunk]);
                let err = err.expect("expected a protocol error");
                assert!(matches!(err, $err), "got {err:?}");
                assert_eq!(err.close_code(), Some(CloseCode($code)));
                // After an error the decoder keeps failing and delivers nothing.
                let mut more = cframe(0x81, b"x");
                assert!(d.decode(&mut more).is_err());
            }
        }
    )*};
}

use Role::{Client, Server};

violation_cases! {
    unmasked_frame_from_client: (Server, sframe(0x81, b"hi")) => Error::Protocol(ProtocolError::UnmaskedFrameFromClient), 1002;
    masked_frame_from_server: (Client, cframe(0x81, b"hi")) => Error::Protocol(ProtocolError::MaskedFrameFromServer), 1002;
    rsv1_without_extension: (Server, cframe(0xC1, b"hi")) => Error::Protocol(ProtocolError::ReservedBitsSet(4)), 1002;
    rsv2: (Server, cframe(0xA1, b"hi")) => Error::Protocol(ProtocolError::ReservedBitsSet(2)), 1002;
    rsv3_on_ping: (Server, cframe(0x99, b"")) => Error::Protocol(ProtocolError::ReservedBitsSet(1)), 1002;
    reserved_opcode_3: (Server, cframe(0x83, b"")) => Error::Protocol(ProtocolError::ReservedOpcode(3)), 1002;
    reserved_opcode_f: (Server, cframe(0x8F, b"")) => Error::Protocol(ProtocolError::ReservedOpcode(0xF)), 1002;
    ping_too_big: (Server, cframe(0x89, &[0u8; 126])) => Error::Protocol(ProtocolError::ControlFrameTooBig), 1002;
    fragmented_ping: (Server, cframe(0x09, b"x")) => Error::Protocol(ProtocolError::FragmentedControlFrame), 1002;
    continuation_without_start: (Server, cframe(0x80, b"x")) => Error::Protocol(ProtocolError::UnexpectedContinuation), 1002;
    new_message_inside_message: (Server, [cframe(0x01, b"a"), cframe(0x81, b"b")].concat()) => Error::Protocol(ProtocolError::ExpectedContinuation), 1002;
    invalid_utf8_text: (Server, cframe(0x81, &[0xce, 0xba, 0xff])) => Error::Protocol(ProtocolError::InvalidUtf8), 1007;
    truncated_utf8_at_end: (Server, cframe(0x81, &[0xce])) => Error::Protocol(ProtocolError::InvalidUtf8), 1007;
    invalid_utf8_across_fragments: (Server, [cframe(0x01, &[0xe2, 0x82]), cframe(0x80, &[0x28])].concat()) => Error::Protocol(ProtocolError::InvalidUtf8), 1007;
    close_one_byte: (Server, cframe(0x88, &[0x03])) => Error::Protocol(ProtocolError::InvalidClosePayload), 1002;
    close_code_1005: (Server, cframe(0x88, &[0x03, 0xed])) => Error::Protocol(ProtocolError::InvalidCloseCode(1005)), 1002;
    close_code_999: (Server, cframe(0x88, &[0x03, 0xe7])) => Error::Protocol(ProtocolError::InvalidCloseCode(999)), 1002;
    close_code_2999: (Server, cframe(0x88, &[0x0b, 0xb7])) => Error::Protocol(ProtocolError::InvalidCloseCode(2999)), 1002;
    close_reason_not_utf8: (Server, cframe(0x88, &[0x03, 0xe8, 0xff])) => Error::Protocol(ProtocolError::InvalidUtf8), 1007;
    length_top_bit: (Client, vec![0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 1]) => Error::Protocol(ProtocolError::InvalidPayloadLength), 1002;
    frame_over_read_limit: (Server, cframe(0x82, &[0u8; 1001])) => Error::MessageTooBig { limit: 1000 }, 1009;
    message_over_read_limit: (Server, [cframe(0x02, &[0u8; 600]), cframe(0x80, &[0u8; 600])].concat()) => Error::MessageTooBig { limit: 1000 }, 1009;
}

#[test]
fn read_limit_fails_on_the_header_before_the_payload() {
    let mut d = Decoder::new(Role::Client);
    d.set_max_message_size(10);
    // Only the header of an 11-byte frame has arrived.
    let mut bytes = vec![0x82, 11];
    assert!(matches!(
        d.decode(&mut bytes),
        Err(RecvError::MessageTooBig { limit: 10 })
    ));
}

#[test]
fn invalid_utf8_fails_before_the_frame_completes() {
    // Autobahn 6.4.3: one text frame whose payload arrives in pieces; the invalid
    // bytes in the second piece must fail before the third arrives.
    let payload = ["κόσμε".as_bytes(), &[0xf4, 0x90, 0x80, 0x80], b"edited"].concat();
    let frame = cframe(0x81, &payload);
    // Header (2 + 4 mask) and the valid "κόσμε" (11 bytes) arrive first.
    let first = 6 + 11;
    let mut d = Decoder::new(Role::Server);
    let mut buf = frame[..first].to_vec();
    let (n, ev) = d.decode(&mut buf).unwrap();
    assert!(ev.is_none(), "the frame is not complete yet");
    // Then two more bytes: 0xF4 0x90 can no longer start valid UTF-8.
    let mut rest = buf[n..].to_vec();
    rest.extend_from_slice(&frame[first..first + 2]);
    let res = d.decode(&mut rest);
    assert!(
        matches!(res, Err(RecvError::Protocol(ProtocolError::InvalidUtf8))),
        "{res:?}"
    );
}

#[test]
fn control_frames_interleave_with_fragments() {
    let bytes = [
        cframe(0x01, b"Hel"),
        cframe(0x89, b"p1"),
        cframe(0x00, b"l"),
        cframe(0x8A, b"p2"),
        cframe(0x80, b"o"),
    ]
    .concat();
    let mut d = Decoder::new(Role::Server);
    let (ev, err) = drive(&mut d, &bytes, &[2]);
    assert!(err.is_none());
    assert_eq!(
        assemble(&ev),
        vec![
            Msg::Ping(b"p1".to_vec()),
            Msg::Pong(b"p2".to_vec()),
            Msg::Text(b"Hello".to_vec())
        ]
    );
}

#[test]
fn a_close_between_fragments_is_a_frame_like_any_other() {
    // Autobahn 7.1.5: a close arriving mid-message. The decoder reports it where it
    // arrived and keeps framing; ending the conversation there (discarding what
    // follows) is the connection's rule (tests/connection.rs).
    let bytes = [
        cframe(0x01, b"frag"),
        cframe(0x88, &[0x03, 0xe8]),
        cframe(0x80, b"ment"),
    ]
    .concat();
    let mut d = Decoder::new(Role::Server);
    let (ev, err) = drive(&mut d, &bytes, &[5]);
    assert!(err.is_none());
    assert_eq!(
        ev,
        vec![
            text("frag", true, false),
            Ev::Close(Some((1000, String::new()))),
            text("ment", false, true)
        ]
    );
}

#[test]
fn large_frames_stream_in_bounded_pieces() {
    let payload = vec![7u8; 1 << 20];
    let bytes = sframe(0x82, &payload);
    let mut d = Decoder::new(Role::Client);
    d.set_whole_frame_max(4096);
    let (ev, err) = drive(&mut d, &bytes, &[8192]);
    assert!(err.is_none());
    assert!(ev.len() > 100, "a 1 MiB frame is streamed, not buffered");
    for e in &ev {
        if let Ev::Data { payload, .. } = e {
            assert!(payload.len() <= 8192);
        }
    }
    assert_eq!(assemble(&ev), vec![Msg::Binary(payload)]);
}

#[test]
fn empty_messages_and_empty_fragments() {
    let bytes = [
        cframe(0x81, b""),
        cframe(0x02, b""),
        cframe(0x00, b""),
        cframe(0x80, b""),
    ]
    .concat();
    let mut d = Decoder::new(Role::Server);
    let (ev, err) = drive(&mut d, &bytes, &[1]);
    assert!(err.is_none());
    assert_eq!(assemble(&ev), vec![Msg::Text(vec![]), Msg::Binary(vec![])]);
}

// ---- Encoder: send-side rules ----

#[test]
fn encoder_refuses_out_of_sequence_frames() {
    let mut e = Encoder::new(Role::Server);
    let mut out = Vec::new();
    assert!(
        e.encode(OpCode::Continuation, true, b"x", &mut out)
            .is_err()
    );
    e.encode(OpCode::Text, false, b"a", &mut out).unwrap();
    assert!(e.encode(OpCode::Binary, true, b"x", &mut out).is_err());
    e.encode(OpCode::Ping, true, b"", &mut out).unwrap();
    assert!(e.encode(OpCode::Ping, false, b"", &mut out).is_err());
    assert!(e.encode(OpCode::Ping, true, &[0; 126], &mut out).is_err());
    e.encode(OpCode::Continuation, true, b"b", &mut out)
        .unwrap();
    e.encode_close(Some((CloseCode::NORMAL, "")), &mut out)
        .unwrap();
    // Whether anything may follow a close is the connection's rule, not framing's
    // (tests/connection.rs: nothing_is_sent_after_a_close...).
    assert!(
        e.encode_close(Some((CloseCode::NO_STATUS, "")), &mut Vec::new())
            .is_err()
    );
}

#[test]
fn server_frames_are_unmasked_and_client_frames_masked() {
    let mut out = Vec::new();
    Encoder::new(Role::Server)
        .encode(OpCode::Text, true, b"Hello", &mut out)
        .unwrap();
    assert_eq!(out, [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    let mut out = Vec::new();
    Encoder::new(Role::Client)
        .encode(OpCode::Text, true, b"Hello", &mut out)
        .unwrap();
    assert_eq!(out[1], 0x85);
    let mut d = Decoder::new(Role::Server);
    let (ev, _) = drive(&mut d, &out, &[]);
    assert_eq!(ev, vec![text("Hello", true, true)]);
}

// The property tests (proptest) of the decoder and encoder are in
// checks/tests/core_decoder_properties.rs.
