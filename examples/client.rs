//! A command-line WebSocket client for poking at any server (a small `websocat`):
//! every line of stdin becomes a message, every message received goes to stdout
//! (binary ones as a length summary), pings are answered, Ctrl-D closes with
//! 1000 (once a ping sent behind the last line comes back, so its answers are
//! printed). Runs on the event loop's client, so `--reconnect` brings it back after
//! a server restart and lines typed meanwhile are sent once it is back.
//!
//! ```text
//! cargo run --example client -- ws://127.0.0.1:22345/websocket
//! cargo run --features tls,deflate --example client -- wss://echo.example/ --deflate
//! cargo run --example client -- ws://10.0.0.5/feed --proxy socks5h://127.0.0.1:1080 --reconnect
//! ```
//!
//! Exit status: 0 once a connection opened and then closed, 1 if none opened
//! (the handshake failed: refused, bad answer, proxy refusal), 2 on bad usage.

mod common;

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use silverback::event::{Client, Ctx, Handler, MessageRef, Sender};
use silverback::{Backoff, CloseCode, Error, MessageKind, Proxy};

const USAGE: &str = "client URL [--proxy URL] [--header 'K: V']... [--subprotocol P] \
[--cafile PEM | --insecure] [--reconnect] [--deflate] [--binary]

  URL            ws:// or wss:// (wss needs --features tls), or
                 ws+unix://%2Fpath%2Fto.sock/target
  --proxy URL    http://[user:pass@]host:port, socks5://..., socks5h://...
                 (default: the environment, as curl: http_proxy, https_proxy,
                 all_proxy, no_proxy)
  --header       an extra request header (repeatable)
  --subprotocol  offer this subprotocol (repeatable)
  --cafile PEM   trust these roots for wss:// (default: the Mozilla roots,
                 with --features tls-webpki-roots)
  --insecure     accept any certificate (testing only)
  --reconnect    reconnect with backoff and jitter when the connection drops
  --deflate      offer permessage-deflate (needs --features deflate)
  --binary       send stdin lines as binary messages";

/// The ping sent at the end of stdin; its pong says the server has answered
/// every line before it.
const EOF_PING: &[u8] = b"client: end of input";

struct Cli {
    sender_out: Option<mpsc::Sender<Sender>>,
    opened: bool,
    last_error: Option<String>,
}

impl Handler for Cli {
    type Data = ();

    fn on_open(&mut self, ctx: &mut Ctx<'_, ()>) {
        self.opened = true;
        let how = match ctx.subprotocol() {
            Some(p) => format!(" (subprotocol {p})"),
            None => String::new(),
        };
        if ctx.reconnects() > 0 {
            eprintln!("# reconnected{how}");
        } else {
            eprintln!("# connected{how}");
        }
        if let Some(tx) = self.sender_out.take() {
            let _ = tx.send(ctx.sender());
        }
    }

    fn on_message(&mut self, _ctx: &mut Ctx<'_, ()>, msg: MessageRef<'_>) {
        let mut out = std::io::stdout().lock();
        let _ = match msg.kind {
            MessageKind::Text => writeln!(out, "{}", String::from_utf8_lossy(msg.data)),
            MessageKind::Binary => writeln!(out, "[binary message of {} bytes]", msg.data.len()),
        };
        let _ = out.flush();
    }

    fn on_pong(&mut self, ctx: &mut Ctx<'_, ()>, data: &[u8]) {
        if data == EOF_PING {
            let _ = ctx.close(CloseCode::NORMAL, "");
        }
    }

    fn on_error(&mut self, _ctx: &mut Ctx<'_, ()>, err: &Error) {
        eprintln!("# error: {err}");
        self.last_error = Some(err.to_string());
    }

    fn on_close(&mut self, ctx: &mut Ctx<'_, ()>, code: CloseCode, reason: &str) {
        if ctx.will_reconnect() {
            eprintln!("# closed ({code} {reason:?}); reconnecting");
        } else if self.opened {
            eprintln!("# closed ({code} {reason:?})");
        }
    }
}

fn main() -> ExitCode {
    common::usage(USAGE);
    let Some(url) = std::env::args().skip(1).find(|a| {
        ["ws://", "wss://", "ws+unix://", "wss+unix://"]
            .iter()
            .any(|s| a.starts_with(s))
    }) else {
        eprintln!("usage: {USAGE}");
        return ExitCode::from(2);
    };
    let mut b = Client::builder().handshake_timeout(Duration::from_secs(30));
    b = match common::flag_value("--proxy") {
        Some(p) => match Proxy::parse(&p) {
            Ok(p) => b.proxy(p),
            Err(e) => {
                eprintln!("--proxy: {e}");
                return ExitCode::from(2);
            }
        },
        None => b.proxy_from_env(),
    };
    for h in common::flag_values("--header") {
        let Some((k, v)) = h.split_once(':') else {
            eprintln!("--header {h:?}: expected 'Name: value'");
            return ExitCode::from(2);
        };
        b = b.header(k.trim(), v.trim());
    }
    let protocols = common::flag_values("--subprotocol");
    if !protocols.is_empty() {
        b = b.subprotocols(protocols);
    }
    if common::flag("--reconnect") {
        b = b.reconnect(Backoff::new().max_delay(Duration::from_secs(30)));
    }
    if common::deflate_requested() {
        #[cfg(feature = "deflate")]
        {
            b = b.deflate(silverback::proto::deflate::DeflateConfig::default());
        }
    }
    if url.starts_with("wss://") || url.starts_with("wss+unix://") {
        #[cfg(feature = "tls")]
        {
            let cfg = if common::flag("--insecure") {
                silverback::tls::dangerous_client_config_accepting_any_certificate()
            } else if let Some(cfg) = common::client_tls() {
                cfg
            } else {
                #[cfg(feature = "tls-webpki-roots")]
                {
                    silverback::tls::client_config_webpki_roots()
                }
                #[cfg(not(feature = "tls-webpki-roots"))]
                {
                    eprintln!(
                        "wss://: give --cafile PEM (or build with --features tls-webpki-roots \
                         for the Mozilla roots)"
                    );
                    return ExitCode::from(2);
                }
            };
            b = b.tls(cfg);
        }
        #[cfg(not(feature = "tls"))]
        {
            eprintln!("wss:// needs a build with --features tls");
            return ExitCode::from(2);
        }
    }
    let binary = common::flag("--binary");
    let (tx, rx) = mpsc::channel();
    let mut client = match b.build(Cli {
        sender_out: Some(tx),
        opened: false,
        last_error: None,
    }) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("# {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = client.connect(&url, ()) {
        eprintln!("# {e}");
        return ExitCode::from(1);
    }
    // stdin → messages, once the first connection is open; EOF closes with 1000.
    std::thread::spawn(move || {
        let Ok(sender) = rx.recv() else { return };
        let kind = if binary {
            MessageKind::Binary
        } else {
            MessageKind::Text
        };
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if let Err(e) = sender.send(kind, line.as_bytes()) {
                eprintln!("# not sent: {e}");
                if matches!(e, Error::AlreadyClosed) {
                    return;
                }
            }
        }
        // End of input: a ping first, and the close once its pong is back, so
        // that the answers to the last lines are printed (the loop stops
        // delivering messages once we have sent our close). A server that never
        // answers gets the close after 2 s.
        if sender.ping(EOF_PING).is_ok() {
            std::thread::sleep(Duration::from_secs(2));
        }
        let _ = sender.close(CloseCode::NORMAL, "");
    });
    if let Err(e) = client.run() {
        eprintln!("# {e}");
        return ExitCode::from(1);
    }
    let cli = client.handler();
    if cli.opened {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "# no connection: {}",
            cli.last_error.as_deref().unwrap_or("closed")
        );
        ExitCode::from(1)
    }
}
