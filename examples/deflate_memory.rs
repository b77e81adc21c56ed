//! Heap held by permessage-deflate state per connection, measured with a counting
//! allocator: a compressor and a decompressor after one message, for window sizes
//! 9-15 and with and without context takeover (without it, the state is released
//! after each message and rebuilt on the next).
//!
//! ```text
//! cargo run --release --features deflate --example deflate_memory
//! ```

#[path = "common/counting.rs"]
#[allow(dead_code)]
mod counting;

#[cfg(feature = "deflate")]
use std::sync::atomic::Ordering;

#[cfg(feature = "deflate")]
use counting::CURRENT;

#[cfg(feature = "deflate")]
fn main() {
    use silverback::proto::deflate::{
        DeflateConfig, DeflateParams, MessageDeflater, MessageInflater,
    };
    use silverback::proto::{DataChunk, MessageKind, Role};
    let msg = br#"{"event":"price","symbol":"ACME","bid":101.25,"ask":101.5}"#.repeat(20);
    println!(
        "| window bits | context takeover | compressor after a message (KiB) | decompressor after a message (KiB) |"
    );
    println!("|---|---|---|---|");
    for bits in [9u8, 12, 15] {
        for nct in [false, true] {
            let p = DeflateParams {
                server_no_context_takeover: nct,
                client_no_context_takeover: nct,
                server_max_window_bits: bits,
                client_max_window_bits: bits,
            };
            let base = CURRENT.load(Ordering::SeqCst);
            let mut def = MessageDeflater::new(&p, Role::Server, &DeflateConfig::default());
            let mut wire = Vec::new();
            def.compress_message(&msg, &mut wire).unwrap();
            let after_def = CURRENT.load(Ordering::SeqCst) - base - wire.capacity();
            let base2 = CURRENT.load(Ordering::SeqCst);
            let mut inf = MessageInflater::new(&p, Role::Client, u64::MAX);
            let chunk = DataChunk {
                kind: MessageKind::Text,
                payload: &wire,
                first: true,
                last: true,
                compressed: true,
            };
            inf.push(&chunk, &mut |_| Ok(())).unwrap();
            let after_inf = CURRENT.load(Ordering::SeqCst) - base2;
            println!(
                "| {bits} | {} | {:.1} | {:.1} |",
                if nct { "off (state released)" } else { "on" },
                after_def as f64 / 1024.0,
                after_inf as f64 / 1024.0
            );
            drop((def, inf));
        }
    }
}

#[cfg(not(feature = "deflate"))]
fn main() {
    eprintln!("build with --features deflate");
}
