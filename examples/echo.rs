//! The tutorial's echo server on the event loop, the project's main example:
//! `ws://0.0.0.0:22345/websocket`. Each message is printed (binary and long text
//! as a one-line summary), echoed, and followed by a message of ten dots. `GET /` serves a test page to poke at it from a browser.
//!
//! ```text
//! cargo run --release --example echo -- [--addr HOST:PORT] [--workers N] [--plain] [--quiet] [--ping SECS]
//! ```
//!
//! `--plain` is a pure echo (any path, no dots, no printing) for benchmarks and
//! Autobahn. `--deflate` (with `--features deflate`) accepts permessage-deflate.
//! `--tls-cert FILE --tls-key FILE` (PEM) or `--tls-self-signed` (with
//! `--features tls`) serve `wss://` and the page over `https://`.
//! `--proxy-protocol` serves behind a TCP balancer that sends PROXY headers
//! (HAProxy `send-proxy`/`send-proxy-v2`): connections from `--trusted-proxy CIDR`
//! (repeatable; default 127.0.0.1 and ::1) must start with one, and every line
//! the server prints names the client's address from it. `--max-conns-per-ip N`,
//! `--max-handshakes-per-ip N`, `--max-msgs-per-sec N`, `--max-bytes-per-sec N`
//! and `--rate-policy close|throttle` set the limits of `silverback::event::Limits`;
//! `--reuseport` (with `--features reuseport`) gives each worker its own listener.
//! `--handover PATH` (with `--features handover`): on SIGUSR2 the server hands its
//! listener and every open connection to a new process started with `--resume
//! PATH`, and exits; no client is disconnected (docs/handover.md).

mod common;

use silverback::event::{
    Ctx, Decision, Handler, HttpRequest, HttpResponse, LoopCtx, MessageRef, Server,
};
use silverback::proto::handshake::Request;
use silverback::{CloseCode, Error, MessageKind};

const PAGE: &str = include_str!("page.html");

struct Echo {
    plain: bool,
    quiet: bool,
}

impl Handler for Echo {
    type Data = ();

    fn on_request(&mut self, req: &Request, _: &mut (), _: std::net::SocketAddr) -> Decision {
        if self.plain || req.path() == "/websocket" {
            Decision::accept()
        } else {
            Decision::reject(404, "not found: the WebSocket endpoint is /websocket")
        }
    }

    fn on_http(&mut self, req: &HttpRequest<'_>, _: &mut LoopCtx<'_, ()>) -> HttpResponse {
        match req.head.path() {
            "/" | "/index.html" => HttpResponse::html(200, PAGE),
            "/health" => HttpResponse::text(200, "ok\n"),
            _ => HttpResponse::upgrade_required(),
        }
    }

    fn on_open(&mut self, ctx: &mut Ctx<'_, ()>) {
        if !self.quiet {
            // The client's address as the server sees it (behind a balancer with
            // --proxy-protocol: the address its PROXY header names).
            println!("{}: connected", ctx.peer_addr());
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, ()>, msg: MessageRef<'_>) {
        if !self.quiet {
            println!("recv from {}: {}", ctx.peer_addr(), summary(msg));
        }
        if let Err(e) = ctx.send(msg.kind, msg.data) {
            eprintln!("{}: send: {e}", ctx.peer_addr());
            return;
        }
        if !self.plain {
            let _ = ctx.send(msg.kind, b"..........");
        }
    }

    fn on_close(&mut self, ctx: &mut Ctx<'_, ()>, code: CloseCode, reason: &str) {
        if !self.quiet {
            println!("{}: closed ({code} {reason:?})", ctx.peer_addr());
        }
    }

    fn on_error(&mut self, ctx: &mut Ctx<'_, ()>, err: &Error) {
        if !self.quiet {
            eprintln!("{}: {err}", ctx.peer_addr());
        }
    }
}

/// What the log shows of a message: short text as it is; binary and long text as
/// a summary line (a 1 MiB message is one line, not a megabyte of noise).
fn summary(msg: MessageRef<'_>) -> String {
    const SHOWN: usize = 80;
    match msg.text() {
        Some(t) if msg.kind == MessageKind::Text && t.len() <= SHOWN => t.to_owned(),
        Some(t) if msg.kind == MessageKind::Text => {
            let mut end = SHOWN;
            while !t.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}… (text, {} bytes)", &t[..end], t.len())
        }
        _ => format!("(binary, {} bytes)", msg.data.len()),
    }
}

fn main() -> std::io::Result<()> {
    common::usage(
        "echo [--addr HOST:PORT] [--workers N] [--plain] [--quiet] [--ping SECS]\n\
         \x20    [--deflate [--deflate-mode fast|small|shared|dedicated:BITS:MEM|window:BITS]]\n\
         \x20    [--tls-cert FILE --tls-key FILE | --tls-self-signed]   (wss://, --features tls)\n\
         \x20    [--proxy-protocol [--trusted-proxy CIDR]...] [--max-conns-per-ip N]\n\
         \x20    [--max-handshakes-per-ip N] [--max-msgs-per-sec N] [--max-bytes-per-sec N]\n\
         \x20    [--rate-policy close|throttle] [--reuseport]   (SO_REUSEPORT, --features reuseport)\n\
         \x20    [--unix PATH]   (also on a Unix domain socket: ws+unix://%2FPATH/websocket)\n\
         \x20    [--handover PATH | --resume PATH]   (restart keeping connections, --features handover)\n\
         default 0.0.0.0:22345, WebSocket at /websocket, test page at /",
    );
    let addr = common::addr("0.0.0.0:22345");
    let workers: usize = common::flag_value("--workers")
        .and_then(|w| w.parse().ok())
        .unwrap_or(1);
    let plain = common::flag("--plain");
    let ping: Option<f64> = common::flag_value("--ping").and_then(|v| v.parse().ok());
    let quiet = plain || common::flag("--quiet");
    let mut builder = Server::builder();
    if common::flag("--deflate") {
        #[cfg(feature = "deflate")]
        {
            builder = builder.deflate(common::deflate_mode_config());
        }
        #[cfg(not(feature = "deflate"))]
        {
            eprintln!("--deflate needs a build with --features deflate");
            std::process::exit(2);
        }
    }
    if let Some(secs) = ping {
        // Heartbeat: a ping every SECS, a peer silent for 3 x SECS after one is dropped.
        let every = std::time::Duration::from_secs_f64(secs);
        builder = builder.heartbeat(every, every * 3);
    }
    let builder = common::with_resume(common::with_edge_flags(builder));
    let (builder, ws, http) = common::with_server_tls(builder);
    let server = builder
        .addr(addr)
        .workers(workers)
        // Autobahn and benchmarks send messages up to 16 MiB.
        .max_message_size(64 << 20)
        // The tutorial's clients (Postman, browsers on other pages) send any Origin.
        .check_origin(|_| true)
        .build(move |_| Echo { plain, quiet })?;
    common::hand_over_on_signal(server.handle());
    println!(
        "echo listening on {ws}://{}/websocket ({} worker{}{}); test page at {http}://{}/",
        server.local_addr(),
        workers,
        if workers == 1 { "" } else { "s" },
        if plain { ", plain" } else { "" },
        server.local_addr()
    );
    server.run()
}
