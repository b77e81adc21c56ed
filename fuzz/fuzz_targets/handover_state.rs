//! The handover's state decoder (`silverback::handover::format`) on arbitrary
//! bytes: what a new process reads from an old one. The first byte picks the
//! record (a connection, a listener, the end counts, the opening, a batch of
//! connections). Oracles: no
//! panic and bounded memory whatever the lengths claim; a record that decodes
//! re-encodes to exactly the same bytes (the format is canonical, so nothing is
//! silently dropped or altered); a decoded connection's state either restores into
//! a `Connection` at rest (deflate histories set as preset dictionaries) that saves
//! again with the same role, subprotocol, limits and queued output, or is refused
//! with a typed error.
#![no_main]

use std::sync::Arc;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use silverback::handover::format::{
    decode_batch, decode_conn, decode_end, decode_hello, decode_listener, encode_batch,
    encode_conn, encode_end, encode_listener,
};
use silverback::proto::{Connection, ConnectionConfig, Randomness};

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 5 {
        0 => {
            let Ok(rec) = decode_conn(rest) else {
                return;
            };
            assert_eq!(encode_conn(&rec), rest, "not canonical");
            let now = Instant::now();
            let config = Arc::new(ConnectionConfig::default());
            match Connection::restore(&rec.state, config, Randomness::seeded(1), now) {
                Ok(c) => {
                    assert!(c.is_at_rest());
                    let again = c.save(now).expect("a restored connection is at rest");
                    assert_eq!(again.role, rec.state.role);
                    assert_eq!(again.subprotocol, rec.state.subprotocol);
                    assert_eq!(again.read_limit, rec.state.read_limit);
                    assert_eq!(again.output, rec.state.output);
                    assert_eq!(again.awaiting_pong, rec.state.awaiting_pong);
                    assert_eq!(again.deflate.is_some(), rec.state.deflate.is_some());
                }
                Err(e) => {
                    let _ = e.to_string();
                }
            }
        }
        1 => {
            if let Ok(l) = decode_listener(rest) {
                assert_eq!(encode_listener(&l), rest, "not canonical");
            }
        }
        2 => {
            if let Ok((l, c)) = decode_end(rest) {
                assert_eq!(encode_end(l, c), rest);
            }
        }
        3 => {
            let _ = decode_hello(rest);
        }
        _ => {
            if let Ok(records) = decode_batch(rest) {
                assert_eq!(encode_batch(records.iter().copied()), rest);
                for r in records {
                    let _ = decode_conn(r);
                }
            }
        }
    }
});
