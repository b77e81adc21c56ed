//! Streaming UTF-8 validation, differential against `std::str::from_utf8`, for any
//! chunking: same verdict, and a failure only once the prefix fed is really invalid
//! (and never a miss of an invalid prefix).
//!
//! Input: `[split seed]` then the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use silverback::proto::Utf8Validator;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let [seed, bytes @ ..] = data else {
        return;
    };
    let mut v = Utf8Validator::new();
    let mut prev = 0;
    for c in common::pieces(*seed, bytes.len()) {
        if v.feed(&bytes[prev..c]).is_err() {
            let e = std::str::from_utf8(&bytes[..c]).unwrap_err();
            assert!(e.error_len().is_some(), "failed on a prefix that could still be valid");
            return;
        }
        if let Err(e) = std::str::from_utf8(&bytes[..c]) {
            assert!(e.error_len().is_none(), "missed an invalid prefix");
        }
        prev = c;
    }
    assert_eq!(v.finish().is_ok(), std::str::from_utf8(bytes).is_ok());
});
