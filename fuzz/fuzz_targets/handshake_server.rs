//! The server's request parser on arbitrary bytes delivered in arbitrary pieces.
//!
//! Input: `[max_size: u16 BE, max_headers, split seed]` then the request bytes.
//! Partial input only ever answers "need more"; once a prefix completes, every
//! longer prefix gives the same request and head length; errors produce a
//! well-formed HTTP answer; validation never panics; a request that validates gets
//! an answer that the client parser accepts with the same key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use silverback::proto::handshake::{
    HeadLimits, parse_request, parse_response, write_accept_response, write_error_response,
};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let [s0, s1, h, seed, bytes @ ..] = data else {
        return;
    };
    let limits = HeadLimits {
        max_size: usize::from(u16::from_be_bytes([*s0, *s1])).max(16),
        max_headers: usize::from(*h).clamp(1, 64),
    };
    let mut done: Option<(silverback::proto::handshake::Request, usize)> = None;
    for c in common::pieces(*seed, bytes.len()) {
        match parse_request(&bytes[..c], &limits) {
            Ok(None) => assert!(done.is_none(), "complete, then partial again"),
            Ok(Some((req, n))) => {
                assert!(n <= c && n <= limits.max_size);
                if let Some((r0, n0)) = &done {
                    assert_eq!((r0, *n0), (&req, n), "a longer prefix changed the result");
                }
                done = Some((req, n));
            }
            Err(e) => {
                let mut out = Vec::new();
                write_error_response(&e, &mut out);
                assert!(out.starts_with(b"HTTP/1.1 4") || out.starts_with(b"HTTP/1.1 5"));
                return;
            }
        }
    }
    let Some((req, _)) = done else { return };
    let _ = (req.path(), req.query(), req.query_param("userId"), req.same_origin(), req.origin());
    if req.validate_upgrade().is_ok() {
        let key = req.key().unwrap_or_default().to_owned();
        let protos: Vec<String> = req.protocols().map(str::to_owned).collect();
        let mut out = Vec::new();
        write_accept_response(&key, protos.first().map(String::as_str), None, &[], &mut out);
        let parsed = parse_response(&out, &HeadLimits::default(), key.trim(), &protos, false);
        assert!(matches!(parsed, Ok(Some(_))), "{parsed:?}");
    }
});
