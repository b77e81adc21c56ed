//! permessage-deflate's receive path: arbitrary compressed payloads, split into
//! arbitrary fragments, under arbitrary negotiated parameters and read limits; and a
//! differential round trip (compress with our deflater, inflate, compare).
//!
//! Invariants: never a panic; decompressed output never passes the read limit (a
//! bomb stops with 1009 at the limit); text that inflates successfully is UTF-8;
//! every error maps to close code 1007 or 1009; the round trip is exact under any
//! window size, context-takeover setting and memory mode (dedicated, window
//! history, shared) on either side, across several messages.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

use silverback::proto::deflate::{
    DeflateConfig, DeflateMemory, DeflateParams, MessageDeflater, MessageInflater,
};
use silverback::proto::{DataChunk, MessageKind, RecvError, Role};

#[derive(Arbitrary, Debug)]
struct Input {
    server_nct: bool,
    client_nct: bool,
    server_bits: u8,
    client_bits: u8,
    limit: u16,
    level: u8,
    /// Memory modes of the inflater and of the deflater (each any of the three).
    rx_mode: u8,
    tx_mode: u8,
    text: bool,
    /// Raw compressed messages, each split into fragments at these lengths.
    raw: Vec<(Vec<u8>, Vec<u8>)>,
    /// Messages to compress and inflate back.
    plain: Vec<Vec<u8>>,
}

fn mode(m: u8) -> DeflateMemory {
    match m % 4 {
        0 => DeflateMemory::default(),
        1 => DeflateMemory::Dedicated { mem_level: 1 + m / 4 % 9 },
        2 => DeflateMemory::Window { bits: 9 + m / 4 % 7 },
        _ => DeflateMemory::Shared,
    }
}

fuzz_target!(|inp: Input| {
    let params = DeflateParams {
        server_no_context_takeover: inp.server_nct,
        client_no_context_takeover: inp.client_nct,
        server_max_window_bits: 8 + inp.server_bits % 8,
        client_max_window_bits: 8 + inp.client_bits % 8,
    };
    let limit = u64::from(inp.limit) + 1;
    let kind = if inp.text { MessageKind::Text } else { MessageKind::Binary };

    // Arbitrary compressed input: bounded output, correct error codes.
    let rx_mode = mode(inp.rx_mode);
    let mut inf = MessageInflater::with_memory(&params, Role::Server, limit, rx_mode);
    for (data, cuts) in inp.raw.iter().take(8) {
        let mut pieces = Vec::new();
        let mut rest = &data[..];
        for &c in cuts.iter().take(16) {
            let n = usize::from(c).min(rest.len());
            pieces.push(&rest[..n]);
            rest = &rest[n..];
        }
        pieces.push(rest);
        let mut out = Vec::new();
        let mut result = Ok(());
        for (i, p) in pieces.iter().enumerate() {
            let chunk = DataChunk { kind, payload: p, first: i == 0, last: i + 1 == pieces.len(), compressed: true };
            result = inf.push(&chunk, &mut |piece| {
                out.extend_from_slice(piece);
                Ok(())
            });
            assert!(out.len() as u64 <= limit, "output passed the read limit");
            if result.is_err() {
                break;
            }
        }
        match result {
            Ok(()) => {
                if inp.text {
                    assert!(std::str::from_utf8(&out).is_ok(), "invalid UTF-8 inflated");
                }
            }
            Err(e) => {
                let code = e.close_code().0;
                assert!(matches!(code, 1007 | 1009), "{e:?}");
                if let RecvError::MessageTooBig { limit: l } = e {
                    assert_eq!(l, limit);
                }
                // A failed connection is torn down: start a fresh inflater.
                inf = MessageInflater::with_memory(&params, Role::Server, limit, rx_mode);
            }
        }
    }

    // Differential: our deflater's output inflates back exactly, message after message.
    // Any memory mode on either side: the wire format does not depend on it.
    let cfg = DeflateConfig::default()
        .level(u32::from(inp.level % 10))
        .memory(mode(inp.tx_mode));
    let mut def = MessageDeflater::new(&params, Role::Client, &cfg);
    let mut inf = MessageInflater::with_memory(&params, Role::Server, u64::MAX, rx_mode);
    for m in inp.plain.iter().take(8) {
        let mut wire = Vec::new();
        def.compress_message(m, &mut wire).unwrap();
        let chunk = DataChunk { kind: MessageKind::Binary, payload: &wire, first: true, last: true, compressed: true };
        let mut back = Vec::new();
        inf.push(&chunk, &mut |piece| {
            back.extend_from_slice(piece);
            Ok(())
        })
        .unwrap();
        assert_eq!(&back, m);
    }
});
