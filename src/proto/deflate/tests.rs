//! The deflater and inflater together.

use super::*;
use crate::proto::decoder::DataChunk;
use crate::proto::error::{ProtocolError, RecvError};
use crate::proto::{MessageKind, Role};

fn roundtrip(params: &DeflateParams, messages: &[&[u8]]) {
    let cfg = DeflateConfig::default();
    let mut tx = MessageDeflater::new(params, Role::Client, &cfg);
    let mut rx = MessageInflater::new(params, Role::Server, 1 << 20);
    for m in messages {
        let mut wire = Vec::new();
        tx.compress_message(m, &mut wire).unwrap();
        let chunk = DataChunk {
            kind: MessageKind::Binary,
            payload: &wire,
            first: true,
            last: true,
            compressed: true,
        };
        let mut got = Vec::new();
        rx.push(&chunk, &mut |p| {
            got.extend_from_slice(p);
            Ok(())
        })
        .unwrap();
        assert_eq!(&got, m);
    }
}

#[test]
fn messages_round_trip_with_and_without_context_takeover() {
    let msgs: Vec<&[u8]> = vec![
        b"Hello",
        b"Hello",
        b"",
        b"",
        &[0u8; 100_000],
        b"Hello again Hello",
    ];
    for nct in [false, true] {
        for bits in [9, 15] {
            roundtrip(
                &DeflateParams {
                    server_no_context_takeover: nct,
                    client_no_context_takeover: nct,
                    server_max_window_bits: bits,
                    client_max_window_bits: bits,
                },
                &msgs,
            );
        }
    }
}

fn modes() -> [DeflateMemory; 4] {
    [
        DeflateMemory::default(),
        DeflateMemory::Dedicated { mem_level: 1 },
        DeflateMemory::Window { bits: 9 },
        DeflateMemory::Shared,
    ]
}

/// Every memory mode on either side reads every other: the wire is the same.
/// Messages of two connections interleave on one thread (the pooled streams must
/// carry nothing from one to the other), and one message is streamed in pieces
/// while the other connection sends whole messages in between.
#[test]
fn memory_modes_interoperate_and_share_pools_safely() {
    let mut x = 7u32;
    let mut text = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let alphabet = b"{\"user\":42,\"mesg\":\"hello\"} ";
                alphabet[(x >> 16) as usize % alphabet.len()]
            })
            .collect()
    };
    let msgs: Vec<Vec<u8>> = [0, 5, 300, 300, 600, 5000, 70_000, 40, 40]
        .iter()
        .map(|&n| text(n))
        .collect();
    for tx_mode in modes() {
        for rx_mode in modes() {
            for (nct, bits) in [(false, 9), (false, 15), (true, 9), (false, 11)] {
                let p = DeflateParams {
                    server_no_context_takeover: nct,
                    client_no_context_takeover: nct,
                    server_max_window_bits: bits,
                    client_max_window_bits: bits,
                };
                let cfg = DeflateConfig::default().memory(tx_mode);
                let mut txs = [
                    MessageDeflater::new(&p, Role::Client, &cfg),
                    MessageDeflater::new(&p, Role::Client, &cfg),
                ];
                let mut rxs = [
                    MessageInflater::with_memory(&p, Role::Server, 1 << 20, rx_mode),
                    MessageInflater::with_memory(&p, Role::Server, 1 << 20, rx_mode),
                ];
                for (i, m) in msgs.iter().enumerate() {
                    for c in 0..2 {
                        let mut wire = Vec::new();
                        if i % 3 == 2 {
                            // Streamed: the other connection compresses a
                            // whole message between the pieces.
                            let half = m.len() / 2;
                            txs[c].compress(&m[..half], &mut wire).unwrap();
                            let mut other = Vec::new();
                            txs[1 - c].compress(b"interleaved", &mut other).unwrap();
                            txs[c].compress(&m[half..], &mut wire).unwrap();
                            txs[c].finish(&mut wire).unwrap();
                            txs[1 - c].finish(&mut other).unwrap();
                            let got = inflate_all(&mut rxs[1 - c], &other);
                            assert_eq!(got, b"interleaved");
                        } else {
                            txs[c].compress_message(m, &mut wire).unwrap();
                        }
                        let got = inflate_all(&mut rxs[c], &wire);
                        assert_eq!(
                            got.len(),
                            m.len(),
                            "{tx_mode:?} -> {rx_mode:?} nct={nct} bits={bits} msg {i}"
                        );
                        assert!(got == *m, "{tx_mode:?} -> {rx_mode:?} msg {i}");
                    }
                }
                for t in &txs {
                    let kept = matches!(tx_mode, DeflateMemory::Dedicated { .. }) && !nct;
                    assert_eq!(t.is_allocated(), kept, "{tx_mode:?} nct={nct}");
                    let window = tx_mode != DeflateMemory::Dedicated { mem_level: 8 }
                        && tx_mode != DeflateMemory::Dedicated { mem_level: 1 }
                        && !nct;
                    assert_eq!(t.window_len(), if window { 512 } else { 0 });
                }
                for r in &rxs {
                    let kept = matches!(rx_mode, DeflateMemory::Dedicated { .. }) && !nct;
                    assert_eq!(r.is_allocated(), kept, "{rx_mode:?} nct={nct}");
                }
            }
        }
    }
}

/// A window-mode inflater fed a reference further back than its window (a peer
/// breaking the negotiated window size) fails with 1007, never reads outside it.
#[test]
fn window_mode_rejects_references_beyond_the_window() {
    let wide = DeflateParams {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    };
    let narrow = DeflateParams {
        client_max_window_bits: 9,
        ..wide
    };
    let mut tx = MessageDeflater::new(&wide, Role::Client, &DeflateConfig::default());
    let mut rx = MessageInflater::with_memory(
        &narrow,
        Role::Server,
        1 << 20,
        DeflateMemory::Window { bits: 9 },
    );
    let first: Vec<u8> = (0..2000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut wire = Vec::new();
    tx.compress_message(&first, &mut wire).unwrap();
    assert_eq!(inflate_all(&mut rx, &wire), first);
    // The second message repeats the start of the first: 2000 bytes back.
    let mut wire = Vec::new();
    tx.compress_message(&first[..600], &mut wire).unwrap();
    let chunk = DataChunk {
        kind: MessageKind::Binary,
        payload: &wire,
        first: true,
        last: true,
        compressed: true,
    };
    let r = rx.push(&chunk, &mut |_| Ok(()));
    assert!(
        matches!(
            r,
            Err(RecvError::Protocol(ProtocolError::InvalidCompressedData))
        ),
        "{r:?}"
    );
}

fn inflate_all(rx: &mut MessageInflater, wire: &[u8]) -> Vec<u8> {
    let chunk = DataChunk {
        kind: MessageKind::Binary,
        payload: wire,
        first: true,
        last: true,
        compressed: true,
    };
    let mut got = Vec::new();
    rx.push(&chunk, &mut |p| {
        got.extend_from_slice(p);
        Ok(())
    })
    .unwrap();
    got
}

#[test]
fn rfc7692_hello_examples() {
    // §7.2.3.1: "Hello" compressed: c2 ... per the RFC, 0xf2 0x48 0xcd 0xc9 0xc9 0x07 0x00.
    let p = DeflateParams {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    };
    let mut rx = MessageInflater::new(&p, Role::Client, 100);
    let wire = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    let mut got = Vec::new();
    let chunk = DataChunk {
        kind: MessageKind::Text,
        payload: &wire,
        first: true,
        last: true,
        compressed: true,
    };
    rx.push(&chunk, &mut |p| {
        got.extend_from_slice(p);
        Ok(())
    })
    .unwrap();
    assert_eq!(got, b"Hello");
    // §7.2.3.2: the second "Hello" with context takeover: f2 00 11 00 00.
    let wire2 = [0xf2, 0x00, 0x11, 0x00, 0x00];
    let mut got2 = Vec::new();
    let chunk2 = DataChunk {
        payload: &wire2,
        ..chunk
    };
    rx.push(&chunk2, &mut |p| {
        got2.extend_from_slice(p);
        Ok(())
    })
    .unwrap();
    assert_eq!(got2, b"Hello");
}

#[test]
fn decompression_bomb_stops_at_the_limit() {
    let p = DeflateParams {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    };
    let mut tx = MessageDeflater::new(&p, Role::Client, &DeflateConfig::default());
    let mut wire = Vec::new();
    tx.compress_message(&vec![0u8; 8 << 20], &mut wire).unwrap();
    assert!(
        wire.len() < 64 * 1024,
        "8 MiB of zeros compress to {} bytes",
        wire.len()
    );
    let mut rx = MessageInflater::new(&p, Role::Server, 1 << 20);
    let mut seen = 0usize;
    let chunk = DataChunk {
        kind: MessageKind::Binary,
        payload: &wire,
        first: true,
        last: true,
        compressed: true,
    };
    let r = rx.push(&chunk, &mut |piece| {
        seen += piece.len();
        Ok(())
    });
    assert!(
        matches!(r, Err(RecvError::MessageTooBig { limit: 1048576 })),
        "{r:?}"
    );
    assert!(seen <= 1 << 20, "handed out {seen} bytes before stopping");
}

#[test]
fn corrupt_data_is_1007() {
    let p = DeflateParams {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    };
    let mut rx = MessageInflater::new(&p, Role::Server, 1 << 20);
    let chunk = DataChunk {
        kind: MessageKind::Binary,
        payload: &[0xff, 0xff, 0xff, 0xff, 0xff],
        first: true,
        last: true,
        compressed: true,
    };
    let r = rx.push(&chunk, &mut |_| Ok(()));
    assert!(
        matches!(
            r,
            Err(RecvError::Protocol(ProtocolError::InvalidCompressedData))
        ),
        "{r:?}"
    );
}

/// Autobahn 12.1.7 (found while moving inflation into the connection): a
/// message whose output fills a step exactly, with all of its input consumed,
/// must finish on the next step (the drain finds nothing, the tail follows),
/// not stall or be judged corrupt.
#[test]
fn output_that_fills_a_step_exactly_finishes_on_the_next() {
    let p = DeflateParams {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    };
    let mut tx = MessageDeflater::new(&p, Role::Client, &DeflateConfig::default());
    let mut rx = MessageInflater::new(&p, Role::Server, 1 << 20);
    let mut x = 1u32;
    let msg: Vec<u8> = (0..INFLATE_CHUNK)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            b'a' + ((x >> 16) % 26) as u8
        })
        .collect();
    let mut wire = Vec::new();
    tx.compress_message(&msg, &mut wire).unwrap();
    rx.begin_message(MessageKind::Text);
    let mut out = Vec::with_capacity(INFLATE_CHUNK);
    let (used, done) = rx.inflate_step(&wire, true, &mut out).unwrap();
    assert_eq!((used, done, out.len()), (wire.len(), false, INFLATE_CHUNK));
    assert_eq!(out, msg);
    let (used, done) = rx.inflate_step(&[], true, &mut out).unwrap();
    assert_eq!((used, done, out.len()), (0, true, 0));
}
