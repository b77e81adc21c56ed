//! The Autobahn test client: asks the fuzzing server for the case count, runs every
//! case (echoing each text and binary message back), then asks for the report.
//!
//! * default: the event loop (`Client`): one connection after another from the
//!   handler's `on_close`;
//! * `--blocking`: the blocking `Dialer`/`Conn`.
//! * `--deflate` (build with `--features deflate`): offer permessage-deflate.
//!
//! ```text
//! cargo run --release --example autobahn_client -- --url ws://127.0.0.1:9001 --agent silverback [--blocking]
//! ```

mod common;

use std::process::ExitCode;

use silverback::event::{Client, Ctx, Handler, MessageRef};
use silverback::{CloseCode, Dialer, Error, Message};

const MAX_MESSAGE: u64 = 64 << 20;

fn blocking(base: &str, agent: &str) -> Result<(), Error> {
    #[allow(unused_mut)]
    let mut dialer = Dialer::new()
        .max_message_size(MAX_MESSAGE)
        .read_buffer_size(64 * 1024);
    if common::deflate_requested() {
        #[cfg(feature = "deflate")]
        {
            dialer = dialer.deflate(common::autobahn_deflate_config());
        }
    }
    let (mut c, _) = common::dial(&dialer, &format!("{base}/getCaseCount"))?;
    let count: u32 = match c.read_message()? {
        Message::Text(t) => t.trim().parse().unwrap_or(0),
        Message::Binary(_) => 0,
    };
    let _ = c.close(CloseCode::NORMAL, "");
    println!("{count} cases");
    for case in 1..=count {
        let (mut c, _) = match common::dial(
            &dialer,
            &format!("{base}/runCase?case={case}&agent={agent}"),
        ) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("case {case}: {e}");
                continue;
            }
        };
        loop {
            match c.read_message() {
                Ok(m) => {
                    if c.send(&m).is_err() {
                        break;
                    }
                }
                Err(Error::Closed(_)) => {
                    // The server closes TCP after the handshake (RFC 6455 §7.1.1).
                    let _ = c.close(CloseCode::NORMAL, "");
                    break;
                }
                Err(_) => {
                    // We failed the connection (the close frame is already sent):
                    // let the server close TCP first instead of resetting it with
                    // unread data in our receive buffer (RFC 6455 §7.1.1, §7.1.7).
                    let _ = c.close(CloseCode::PROTOCOL_ERROR, "");
                    break;
                }
            }
        }
    }
    let (mut c, _) = common::dial(&dialer, &format!("{base}/updateReports?agent={agent}"))?;
    let _ = c.close(CloseCode::NORMAL, "");
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq, Default)]
enum Stage {
    #[default]
    Count,
    Case(u32),
    Report,
}

struct Runner {
    base: String,
    agent: String,
    count: u32,
    failed: bool,
}

impl Runner {
    fn next(&mut self, ctx: &mut Ctx<'_, Stage>, after: Stage) {
        let next = match after {
            Stage::Count if self.count > 0 => Stage::Case(1),
            Stage::Case(n) if n < self.count => Stage::Case(n + 1),
            Stage::Report => return,
            _ => Stage::Report,
        };
        let url = match next {
            Stage::Count => unreachable!(),
            Stage::Case(n) => format!("{}/runCase?case={n}&agent={}", self.base, self.agent),
            Stage::Report => format!("{}/updateReports?agent={}", self.base, self.agent),
        };
        if let Err(e) = ctx.lp().connect(&url, next) {
            eprintln!("connect {url}: {e}");
            self.failed = true;
        }
    }
}

impl Handler for Runner {
    type Data = Stage;

    fn on_open(&mut self, ctx: &mut Ctx<'_, Stage>) {
        if *ctx.data() == Stage::Report {
            let _ = ctx.close(CloseCode::NORMAL, "");
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Stage>, msg: MessageRef<'_>) {
        match *ctx.data() {
            Stage::Count => {
                self.count = msg.text().and_then(|t| t.trim().parse().ok()).unwrap_or(0);
                println!("{} cases", self.count);
                let _ = ctx.close(CloseCode::NORMAL, "");
            }
            Stage::Case(_) => {
                let _ = ctx.send(msg.kind, msg.data);
            }
            Stage::Report => {}
        }
    }

    fn on_close(&mut self, ctx: &mut Ctx<'_, Stage>, _: CloseCode, _: &str) {
        let stage = *ctx.data();
        self.next(ctx, stage);
    }

    fn on_error(&mut self, ctx: &mut Ctx<'_, Stage>, err: &Error) {
        if let Stage::Count | Stage::Report = *ctx.data() {
            eprintln!("{err}");
        }
    }
}

fn event_loop(base: &str, agent: &str) -> Result<(), Error> {
    #[allow(unused_mut)]
    let mut builder = Client::builder();
    if common::deflate_requested() {
        #[cfg(feature = "deflate")]
        {
            builder = builder.deflate(common::autobahn_deflate_config());
        }
    }
    #[cfg(feature = "tls")]
    if let Some(cfg) = common::client_tls() {
        builder = builder.tls(cfg);
    }
    let mut client = builder
        .max_message_size(MAX_MESSAGE)
        .max_output_buffer(64 << 20)
        .build(Runner {
            base: base.to_owned(),
            agent: agent.to_owned(),
            count: 0,
            failed: false,
        })?;
    client.connect(&format!("{base}/getCaseCount"), Stage::Count)?;
    client.run()?;
    if client.handler().failed {
        return Err(Error::Io(std::io::Error::other(
            "a case could not be started",
        )));
    }
    Ok(())
}

fn main() -> ExitCode {
    common::usage(
        "autobahn_client --url ws://HOST:PORT|wss://HOST:PORT --agent NAME [--blocking] \
         [--deflate [--deflate-min N] [--deflate-mode MODE]] [--cafile PEM]",
    );
    let base = common::flag_value("--url").unwrap_or_else(|| "ws://127.0.0.1:9001".into());
    let base = base.trim_end_matches('/').to_owned();
    let agent = common::flag_value("--agent").unwrap_or_else(|| "silverback".into());
    let r = if common::flag("--blocking") {
        blocking(&base, &agent)
    } else {
        event_loop(&base, &agent)
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("autobahn client: {e}");
            ExitCode::FAILURE
        }
    }
}
