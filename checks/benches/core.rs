//! Micro-benchmarks of the protocol core. Throughput in bytes/s (or elements/s).
//!
//!     cargo bench --bench core                 # everything
//!     cargo bench --bench core -- mask         # one group
//!
//! Masking and UTF-8 are compared with the byte loop and `std::str::from_utf8`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use silverback::proto::Utf8Validator;
use silverback::proto::handshake::{HeadLimits, parse_request, write_accept_response};
use silverback::proto::{Decoder, Encoder, FrameEvent, Role};
use silverback::proto::{FrameHeader, OpCode};
use silverback::proto::{apply_mask, apply_mask_naive};

fn mask(c: &mut Criterion) {
    let mut g = c.benchmark_group("mask");
    let key = [0x37, 0xfa, 0x21, 0x3d];
    for size in [16usize, 128, 1024, 16 * 1024, 64 * 1024, 1 << 20] {
        let mut buf = vec![0x5au8; size + 8];
        g.throughput(Throughput::Bytes(size as u64));
        for align in [0usize, 1, 3, 7] {
            g.bench_with_input(
                BenchmarkId::new(format!("word/align{align}"), size),
                &size,
                |b, &n| b.iter(|| apply_mask(black_box(&mut buf[align..align + n]), key, 0)),
            );
        }
        g.bench_with_input(BenchmarkId::new("naive", size), &size, |b, &n| {
            b.iter(|| apply_mask_naive(black_box(&mut buf[..n]), key, 0))
        });
    }
    g.finish();
}

fn utf8(c: &mut Criterion) {
    let mut g = c.benchmark_group("utf8");
    let ascii: Vec<u8> = "The quick brown fox jumps over the lazy dog. "
        .bytes()
        .cycle()
        .take(64 * 1024)
        .collect();
    let mixed: Vec<u8> = "Grüße, κόσμε, 日本語, 𝄞 and plain ASCII text. "
        .bytes()
        .cycle()
        .take(64 * 1024)
        .collect();
    let mixed = &mixed[..mixed.len() - silverback::proto::incomplete_tail_len(&mixed)];
    for (name, data) in [("ascii", &ascii[..]), ("mixed", mixed)] {
        g.throughput(Throughput::Bytes(data.len() as u64));
        g.bench_function(BenchmarkId::new("streaming", name), |b| {
            b.iter(|| {
                let mut v = Utf8Validator::new();
                v.feed(black_box(data)).unwrap();
                v.finish().unwrap();
            })
        });
        g.bench_function(BenchmarkId::new("streaming-4k-pieces", name), |b| {
            b.iter(|| {
                let mut v = Utf8Validator::new();
                for p in black_box(data).chunks(4096) {
                    v.feed(p).unwrap();
                }
                v.finish().unwrap();
            })
        });
        g.bench_function(BenchmarkId::new("std", name), |b| {
            b.iter(|| std::str::from_utf8(black_box(data)).unwrap())
        });
    }
    g.finish();
}

fn header(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame_header");
    g.throughput(Throughput::Elements(1));
    for (name, len, mask) in [
        ("small-unmasked", 20u64, None),
        ("64k-masked", 65536, Some([1, 2, 3, 4])),
    ] {
        let h = FrameHeader {
            fin: true,
            rsv: 0,
            opcode: OpCode::Binary,
            mask,
            payload_len: len,
        };
        let mut out = [0u8; 14];
        let n = h.encode(&mut out);
        g.bench_function(BenchmarkId::new("encode", name), |b| {
            b.iter(|| black_box(&h).encode(black_box(&mut out)))
        });
        g.bench_function(BenchmarkId::new("decode", name), |b| {
            b.iter(|| FrameHeader::decode(black_box(&out[..n])).unwrap())
        });
    }
    g.finish();
}

fn handshake(c: &mut Criterion) {
    let req = b"GET /websocket HTTP/1.1\r\nHost: 127.0.0.1:22345\r\nUser-Agent: bench\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
Origin: http://127.0.0.1:22345\r\nAccept-Encoding: gzip\r\n\r\n";
    let mut g = c.benchmark_group("handshake");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse+validate+accept", |b| {
        let mut out = Vec::with_capacity(256);
        b.iter(|| {
            let (r, _) = parse_request(black_box(req), &HeadLimits::default())
                .unwrap()
                .unwrap();
            r.validate_upgrade().unwrap();
            out.clear();
            write_accept_response(r.key().unwrap(), None, None, &[], &mut out);
            black_box(&out);
        })
    });
    g.finish();
}

fn decode_message(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode_message");
    for size in [1024usize, 64 * 1024] {
        let mut wire = Vec::new();
        Encoder::new(Role::Client)
            .encode(OpCode::Binary, true, &vec![7u8; size], &mut wire)
            .unwrap();
        let mut text_wire = Vec::new();
        Encoder::new(Role::Client)
            .encode(
                OpCode::Text,
                true,
                &"a".repeat(size).into_bytes(),
                &mut text_wire,
            )
            .unwrap();
        g.throughput(Throughput::Bytes(size as u64));
        for (name, w) in [("binary", &wire), ("text", &text_wire)] {
            let mut buf = w.clone();
            g.bench_function(BenchmarkId::new(name, size), |b| {
                b.iter(|| {
                    buf.copy_from_slice(w);
                    let mut d = Decoder::new(Role::Server);
                    d.set_whole_frame_max(size);
                    match d.decode(black_box(&mut buf)).unwrap() {
                        (_, Some(FrameEvent::Data(d))) => black_box(d.payload.len()),
                        _ => unreachable!(),
                    }
                })
            });
        }
    }
    g.finish();
}

/// Moves what `from` transmits into `to`, reading every event; asks both for their
/// next deadline as a driver does.
fn hop(
    from: &mut silverback::proto::Connection,
    to: &mut silverback::proto::Connection,
    wire: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    size: usize,
) {
    use silverback::proto::Event;
    use std::time::Instant;
    wire.clear();
    wire.extend_from_slice(from.transmit());
    let n = wire.len();
    from.advance_transmit(n);
    black_box(from.poll_timeout());
    let mut got = 0;
    let mut input = &mut wire[..];
    loop {
        let (used, ev) = to.read(input, scratch, Instant::now()).unwrap();
        let more = match ev {
            Some(Event::Message(m)) => {
                got += m.data.len();
                true
            }
            Some(_) => true,
            None => false,
        };
        input = &mut input[used..];
        if !more {
            break;
        }
    }
    black_box(to.poll_timeout());
    assert_eq!(got, size);
}

/// One message through a client and a server `Connection` and back (send, read,
/// echo, read), with the time passed in as an `Instant` on every call as the IO
/// layers do, and the next deadline asked after each step: the per-message cost of
/// the core itself, no sockets.
fn connection(c: &mut Criterion) {
    use silverback::proto::{Connection, ConnectionConfig, MessageKind, Randomness};
    use std::sync::Arc;
    use std::time::Instant;
    let mut g = c.benchmark_group("connection");
    for size in [20usize, 1024, 16 * 1024] {
        g.throughput(Throughput::Elements(1));
        let config = Arc::new(ConnectionConfig::default().heartbeat(
            Some(std::time::Duration::from_secs(30)),
            std::time::Duration::from_secs(10),
        ));
        let t0 = Instant::now();
        let mut client = Connection::new(Role::Client, config.clone(), Randomness::seeded(1), t0);
        let mut server = Connection::new(Role::Server, config, Randomness::thread(), t0);
        let payload = vec![b'a'; size];
        let (mut wire, mut scratch) = (Vec::new(), Vec::new());
        g.bench_function(BenchmarkId::new("echo", size), |b| {
            b.iter(|| {
                client.send(MessageKind::Text, black_box(&payload)).unwrap();
                hop(&mut client, &mut server, &mut wire, &mut scratch, size);
                server.send(MessageKind::Text, &payload).unwrap();
                hop(&mut server, &mut client, &mut wire, &mut scratch, size);
            })
        });
    }
    g.finish();
}

#[cfg(feature = "deflate")]
fn deflate(c: &mut Criterion) {
    use silverback::proto::DataChunk;
    use silverback::proto::MessageKind;
    use silverback::proto::deflate::{
        DeflateConfig, DeflateParams, MessageDeflater, MessageInflater,
    };
    let p = DeflateParams {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    };
    let mut g = c.benchmark_group("deflate");
    let json = r#"{"user":"alice","event":"price","symbol":"ACME","bid":101.25,"ask":101.5,"ts":1795631120}"#;
    for size in [128usize, 1024, 16 * 1024] {
        let msg: Vec<u8> = json.bytes().cycle().take(size).collect();
        g.throughput(Throughput::Bytes(size as u64));
        for (name, level) in [("level1", 1), ("level6", 6)] {
            let mut def =
                MessageDeflater::new(&p, Role::Server, &DeflateConfig::default().level(level));
            let mut out = Vec::new();
            g.bench_function(BenchmarkId::new(format!("compress-{name}"), size), |b| {
                b.iter(|| {
                    out.clear();
                    def.compress_message(black_box(&msg), &mut out).unwrap();
                })
            });
        }
        let mut def = MessageDeflater::new(&p, Role::Server, &DeflateConfig::default());
        let mut wire = Vec::new();
        def.compress_message(&msg, &mut wire).unwrap();
        // A fresh inflater each time would measure setup; with context takeover the
        // same message compresses differently next time, so use no-context params.
        let p2 = DeflateParams {
            server_no_context_takeover: true,
            ..p
        };
        let mut def2 = MessageDeflater::new(&p2, Role::Server, &DeflateConfig::default());
        let mut wire2 = Vec::new();
        def2.compress_message(&msg, &mut wire2).unwrap();
        let mut inf = MessageInflater::new(&p2, Role::Client, u64::MAX);
        g.bench_function(BenchmarkId::new("inflate", size), |b| {
            b.iter(|| {
                let chunk = DataChunk {
                    kind: MessageKind::Text,
                    payload: &wire2,
                    first: true,
                    last: true,
                    compressed: true,
                };
                let mut n = 0;
                inf.push(&chunk, &mut |piece| {
                    n += piece.len();
                    Ok(())
                })
                .unwrap();
                black_box(n)
            })
        });
        let _ = wire;
    }
    g.finish();
}

#[cfg(not(feature = "deflate"))]
fn deflate(_: &mut Criterion) {}

criterion_group!(
    benches,
    mask,
    utf8,
    header,
    handshake,
    decode_message,
    connection,
    deflate
);
criterion_main!(benches);
