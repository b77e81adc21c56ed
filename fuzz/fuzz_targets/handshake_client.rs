//! The client's response parser on arbitrary bytes in arbitrary pieces.
//!
//! Input: `[flags, split seed]` then the response bytes; `flags & 1`: extensions
//! were offered, `flags & 2`: subprotocol "chat" was offered. The key is the RFC's.
//! "Need more" or a definite answer, consistent across longer prefixes; a success
//! really is a 101 with an offered subprotocol; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use silverback::proto::handshake::{HeadLimits, parse_response};

#[path = "common.rs"]
mod common;

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fuzz_target!(|data: &[u8]| {
    let [flags, seed, bytes @ ..] = data else {
        return;
    };
    let offered: Vec<String> = if flags & 2 != 0 { vec!["chat".into()] } else { vec![] };
    let limits = HeadLimits::default();
    let mut done = None;
    for c in common::pieces(*seed, bytes.len()) {
        match parse_response(&bytes[..c], &limits, KEY, &offered, flags & 1 != 0) {
            Ok(None) => assert!(done.is_none()),
            Ok(Some((resp, n))) => {
                assert!(n <= c);
                assert_eq!(resp.status(), 101);
                if let Some(p) = resp.protocol() {
                    assert!(offered.iter().any(|o| o == p));
                }
                if let Some((r0, n0)) = &done {
                    assert_eq!((r0, *n0), (&resp, n));
                }
                done = Some((resp, n));
            }
            Err(_) => return,
        }
    }
});
