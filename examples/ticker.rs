//! The tutorial's ticker: after a client connects to `ws://0.0.0.0:22345/websocket`,
//! push ten dots every 2 seconds until it goes away.
//!
//! ```text
//! cargo run --release --example ticker -- [--addr HOST:PORT] [--interval-ms 2000]
//! ```

mod common;

use std::time::Duration;

use silverback::CloseCode;
use silverback::event::{Ctx, Handler, HttpRequest, HttpResponse, LoopCtx, Server};

const PAGE: &str = include_str!("page.html");

struct Ticker {
    every: Duration,
}

impl Handler for Ticker {
    type Data = ();

    fn on_open(&mut self, ctx: &mut Ctx<'_, ()>) {
        println!("{} connected", ctx.peer_addr());
        ctx.set_interval(self.every, 0);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, ()>, _token: u64) {
        let _ = ctx.send_text("..........");
    }

    fn on_close(&mut self, ctx: &mut Ctx<'_, ()>, code: CloseCode, _: &str) {
        // The interval dies with the connection.
        println!("{} went away ({code})", ctx.peer_addr());
    }

    fn on_http(&mut self, req: &HttpRequest<'_>, _: &mut LoopCtx<'_, ()>) -> HttpResponse {
        match req.head.path() {
            "/" => HttpResponse::html(200, PAGE),
            _ => HttpResponse::upgrade_required(),
        }
    }
}

fn main() -> std::io::Result<()> {
    common::usage(
        "ticker [--addr HOST:PORT] [--interval-ms MS]   (default 0.0.0.0:22345, 2000 ms)",
    );
    let addr = common::addr("0.0.0.0:22345");
    let ms: u64 = common::flag_value("--interval-ms")
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let server = Server::builder()
        .addr(addr)
        .check_origin(|_| true)
        .build(move |_| Ticker {
            every: Duration::from_millis(ms),
        })?;
    println!(
        "ticker on ws://{}/websocket: ten dots every {ms} ms",
        server.local_addr()
    );
    server.run()
}
