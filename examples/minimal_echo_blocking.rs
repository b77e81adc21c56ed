//! The same minimal echo on the blocking layer, one thread per connection: the
//! program shape of the yardstick's tungstenite echo, for the binary-size and
//! memory comparison in docs/BENCHMARKS.md.
//!
//! ```text
//! cargo run --release --example minimal_echo_blocking -- [PORT]   (default 9001)
//! ```

use std::net::TcpListener;

use silverback::Upgrader;

fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(9001);
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let _ = stream.set_nodelay(true);
        std::thread::spawn(move || {
            let Ok(mut ws) = Upgrader::new().upgrade(stream) else {
                return;
            };
            while let Ok(msg) = ws.read_message() {
                if ws.send(&msg).is_err() {
                    break;
                }
            }
        });
    }
    Ok(())
}
