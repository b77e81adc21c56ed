//! The smallest useful server: an echo on the event loop, nothing else (no page, no
//! printing). What the binary-size and memory figures in docs/BENCHMARKS.md
//! measure, beside the same program on tungstenite.
//!
//! ```text
//! cargo run --release --example minimal_echo -- [PORT]   (default 9001, 127.0.0.1)
//! ```

use silverback::event::{Ctx, Handler, MessageRef, Server};

struct Echo;

impl Handler for Echo {
    type Data = ();
    fn on_message(&mut self, ctx: &mut Ctx<'_, ()>, msg: MessageRef<'_>) {
        let _ = ctx.send(msg.kind, msg.data);
    }
}

fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(9001);
    Server::builder()
        .addr(format!("127.0.0.1:{port}"))
        .build(|_| Echo)?
        .run()
}
