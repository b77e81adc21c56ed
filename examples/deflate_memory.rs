//! permessage-deflate memory modes, measured in-process with a counting allocator:
//! for each mode, a server connection negotiates with a browser's offer
//! (`permessage-deflate; client_max_window_bits`), then 2,000 JSON chat/push
//! messages of 100 B - 4 KiB (examples/common/corpus.rs) go each way. Prints, per
//! mode: the heap the connection holds between messages (compressor, decompressor
//! and windows), the heap shared by the thread (pooled streams), the compression
//! ratio of the server's messages, and the in-process CPU per message (compressing
//! one way and inflating the other).
//!
//! ```text
//! cargo run --release --features deflate --example deflate_memory
//! ```

#[path = "common/counting.rs"]
#[allow(dead_code)]
mod counting;

#[path = "common/corpus.rs"]
mod corpus;

/// One whole compressed text message, as the decoder hands it over.
#[cfg(feature = "deflate")]
fn whole(payload: &[u8]) -> silverback::proto::DataChunk<'_> {
    silverback::proto::DataChunk {
        kind: silverback::proto::MessageKind::Text,
        payload,
        first: true,
        last: true,
        compressed: true,
    }
}

#[cfg(feature = "deflate")]
fn main() {
    use std::sync::atomic::Ordering;

    use counting::CURRENT;
    use silverback::proto::Role;
    use silverback::proto::deflate::{
        DeflateConfig, MessageDeflater, MessageInflater, server_accept,
    };

    let mut rng = corpus::Rng::new(42);
    let msgs: Vec<String> = (0..2000)
        .map(|_| {
            let n = corpus::size(&mut rng);
            corpus::message(&mut rng, n)
        })
        .collect();
    let raw: usize = msgs.iter().map(String::len).sum();
    let modes: Vec<(&str, DeflateConfig)> = vec![
        (
            "fast (dedicated 15 bits, memLevel 8; default)",
            DeflateConfig::default(),
        ),
        ("dedicated:12:4", DeflateConfig::dedicated(12, 4)),
        ("dedicated:9:1", DeflateConfig::dedicated(9, 1)),
        ("window:12", DeflateConfig::window(12)),
        ("small (= window:9)", DeflateConfig::small()),
        ("shared (no context takeover)", DeflateConfig::shared()),
    ];
    println!(
        "corpus: {} messages, {} bytes, {:.0} B average",
        msgs.len(),
        raw,
        raw as f64 / msgs.len() as f64
    );
    println!(
        "| mode | negotiated (browser offer) | held per idle connection (KiB) | shared per thread (KiB) | server → client size | µs per message (compress + inflate) |"
    );
    println!("|---|---|---|---|---|---|");
    // The browser's side: a default client config (it offers client_max_window_bits).
    let browser = DeflateConfig::default();
    for (name, cfg) in modes {
        // Each mode on a fresh thread, so its per-thread pools start empty.
        let (msgs, browser) = (&msgs, &browser);
        std::thread::scope(|sc| {
            sc.spawn(move || {
                let (params, resp) = server_accept(
                    std::iter::once("permessage-deflate; client_max_window_bits"),
                    &cfg,
                )
                .expect("accepted");
                let base = CURRENT.load(Ordering::SeqCst);
                let mut server_tx = MessageDeflater::new(&params, Role::Server, &cfg);
                let mut server_rx =
                    MessageInflater::with_memory(&params, Role::Server, u64::MAX, cfg.memory);
                let mut client_tx = MessageDeflater::new(&params, Role::Client, browser);
                let mut client_rx = MessageInflater::new(&params, Role::Client, u64::MAX);
                let mut compressed = 0usize;
                let mut wire = Vec::with_capacity(8192);
                let mut out = Vec::new();
                let mut held = 0usize;
                let mut server_us = 0f64;
                for (i, m) in msgs.iter().enumerate() {
                    // Client → server: the server inflates.
                    wire.clear();
                    client_tx.compress_message(m.as_bytes(), &mut wire).unwrap();
                    let t = std::time::Instant::now();
                    let chunk = whole(&wire);
                    out.clear();
                    server_rx
                        .push(&chunk, &mut |p| {
                            out.extend_from_slice(p);
                            Ok(())
                        })
                        .unwrap();
                    assert_eq!(out, m.as_bytes());
                    // Server → client: the server compresses.
                    wire.clear();
                    server_tx.compress_message(m.as_bytes(), &mut wire).unwrap();
                    server_us += t.elapsed().as_secs_f64() * 1e6;
                    compressed += wire.len();
                    let chunk = whole(&wire);
                    out.clear();
                    client_rx
                        .push(&chunk, &mut |p| {
                            out.extend_from_slice(p);
                            Ok(())
                        })
                        .unwrap();
                    assert_eq!(out, m.as_bytes());
                    if i == 0 {
                        // Held by the server's pair after its first exchange: measured by
                        // building a second pair and exchanging one message (the pools are
                        // warm by now, so what stays is per connection).
                        let b2 = CURRENT.load(Ordering::SeqCst);
                        let mut t2 = MessageDeflater::new(&params, Role::Server, &cfg);
                        let mut r2 = MessageInflater::with_memory(
                            &params,
                            Role::Server,
                            u64::MAX,
                            cfg.memory,
                        );
                        let mut w2 = Vec::new();
                        MessageDeflater::new(&params, Role::Client, browser)
                            .compress_message(m.as_bytes(), &mut w2)
                            .unwrap();
                        let c2 = whole(&w2);
                        r2.push(&c2, &mut |_| Ok(())).unwrap();
                        let mut w3 = Vec::new();
                        t2.compress_message(m.as_bytes(), &mut w3).unwrap();
                        held = CURRENT.load(Ordering::SeqCst) - b2 - w2.capacity() - w3.capacity()
                            + std::mem::size_of::<MessageDeflater>()
                            + std::mem::size_of::<MessageInflater>();
                        drop((t2, r2, w2, w3));
                    }
                }
                drop((server_tx, server_rx, client_tx, client_rx, wire, out));
                // What is left allocated now is the thread's pools.
                let shared = CURRENT.load(Ordering::SeqCst).saturating_sub(base);
                println!(
                    "| {name} | `{}` | {:.2} | {:.0} | {:.1} % | {:.2} |",
                    resp.trim_start_matches("permessage-deflate")
                        .trim_start_matches("; "),
                    held as f64 / 1024.0,
                    shared as f64 / 1024.0,
                    compressed as f64 * 100.0 / raw as f64,
                    server_us / msgs.len() as f64,
                );
            });
        });
    }
}

#[cfg(not(feature = "deflate"))]
fn main() {
    eprintln!("build with --features deflate");
}
