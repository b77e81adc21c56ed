//! The tutorial's first program on the blocking API: an echo server on
//! `ws://0.0.0.0:22345/websocket`. A thread per connection reads a message, prints
//! who sent what, writes it back, then writes a second message of ten dots.
//!
//! ```text
//! cargo run --example echo_blocking -- [--addr 0.0.0.0:22345] [--plain]
//! ```
//!
//! `--plain`: a pure echo on any path, no dots, no printing (for benchmarks).

mod common;

use std::net::TcpListener;
use std::thread;

use silverback::{Error, Upgrader};

fn main() -> std::io::Result<()> {
    common::usage(
        "echo_blocking [--addr HOST:PORT] [--plain]   (default 0.0.0.0:22345, path /websocket)",
    );
    let addr = common::addr("0.0.0.0:22345");
    let plain = common::flag("--plain");
    let listener = TcpListener::bind(&addr)?;
    println!(
        "echo (blocking) listening on ws://{}/websocket",
        listener.local_addr()?
    );
    let upgrader = Upgrader::new().check_origin(|_| true);
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let _ = stream.set_nodelay(true);
        let upgrader = upgrader.clone();
        thread::spawn(move || {
            // (No getpeername for the benchmark echo.)
            let peer = if plain {
                String::new()
            } else {
                stream
                    .peer_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_default()
            };
            let pending = match upgrader.read_request(stream) {
                Ok(p) => p,
                Err(e) => return eprintln!("{peer}: handshake: {e}"),
            };
            if !plain && pending.request().path() != "/websocket" {
                let _ = pending.reject(404, "not found: try /websocket");
                return;
            }
            let mut conn = match pending.accept() {
                Ok(c) => c,
                Err(e) => return eprintln!("{peer}: upgrade: {e}"),
            };
            loop {
                let msg = match conn.read_message() {
                    Ok(m) => m,
                    Err(_) if plain => break,
                    Err(Error::Closed(f)) => break println!("{peer}: closed ({f})"),
                    Err(e) => break eprintln!("{peer}: read: {e}"),
                };
                if plain {
                    if conn.send(&msg).is_err() {
                        break;
                    }
                    continue;
                }
                println!(
                    "recv from {peer}: {}",
                    String::from_utf8_lossy(msg.as_bytes())
                );
                if let Err(e) = conn
                    .send(&msg)
                    .and_then(|()| conn.write_message(msg.kind(), b".........."))
                {
                    break eprintln!("{peer}: write: {e}");
                }
            }
        });
    }
    Ok(())
}
