//! silverback's clients against another library's server, for the interop suite
//! (`interop/run.sh`). The server must echo every message, speak subprotocol
//! `chat.v1`, close `/close` with 4001 "custom reason", and on `/ping` ping us and
//! report `pong-ok` once our pong arrives.
//!
//! ```text
//! cargo run --release --example interop_client -- --url ws://127.0.0.1:PORT --mode blocking|loop --against NAME
//! ```
//!
//! Prints one JSON line per check and exits non-zero if any failed.

mod common;

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use silverback::event::{Client, Ctx, Handler, MessageRef};
use silverback::{CloseCode, Dialer, Error, Message, MessageKind, OpCode};

const SIZES: [usize; 4] = [0, 5, 64 * 1024, 16 << 20];

struct Report {
    who: String,
    against: String,
    failures: usize,
}

impl Report {
    fn check(&mut self, check: &str, ok: bool, detail: &str) {
        if !ok {
            self.failures += 1;
        }
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let detail: String = detail.chars().take(300).collect();
        println!(
            "{{\"peer\": \"{}\", \"against\": \"{}\", \"check\": \"{}\", \"ok\": {}, \"detail\": \"{}\"}}",
            esc(&self.who),
            esc(&self.against),
            esc(check),
            ok,
            esc(&detail)
        );
    }
}

fn payload(kind: MessageKind, n: usize) -> Vec<u8> {
    match kind {
        MessageKind::Text => {
            let unit = "κόσμε-abc ";
            let mut s = unit.repeat(n / unit.len() + 2).into_bytes();
            s.truncate(n);
            while std::str::from_utf8(&s).is_err() {
                s.pop();
            }
            s
        }
        MessageKind::Binary => (0..n).map(|i| (i * 31 + 7) as u8).collect(),
    }
}

fn kinds() -> [MessageKind; 2] {
    [MessageKind::Text, MessageKind::Binary]
}

fn name(kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::Text => "text",
        MessageKind::Binary => "binary",
    }
}

// ---- blocking ----

fn blocking(base: &str, r: &mut Report) -> Result<(), Error> {
    let dialer = Dialer::new()
        .max_message_size(64 << 20)
        .write_buffer_size(4096)
        .subprotocols(["chat.v2", "chat.v1"]);
    let (mut c, _) = common::dial(&dialer, &format!("{base}/"))?;
    c.set_read_deadline(Some(Instant::now() + Duration::from_secs(60)));
    r.check(
        "subprotocol negotiated (offered chat.v2, chat.v1)",
        c.subprotocol() == Some("chat.v1"),
        &format!("{:?}", c.subprotocol()),
    );
    for kind in kinds() {
        for n in SIZES {
            let data = payload(kind, n);
            let ok = c
                .write_message(kind, &data)
                .and_then(|()| c.read_message())
                .map(|m| m.kind() == kind && m.as_bytes() == data.as_slice());
            r.check(
                &format!("echo {} {n}B", name(kind)),
                matches!(ok, Ok(true)),
                &format!("{ok:?}"),
            );
        }
        // A fragmented message through next_writer, read back through next_reader.
        let data = payload(kind, 70_000);
        let sent = c.next_writer(kind).and_then(|mut w| {
            for piece in data.chunks(1000) {
                w.write_all(piece)?;
            }
            w.close()
        });
        let mut back = Vec::new();
        let got = sent.and_then(|()| {
            let mut rd = c.next_reader()?;
            rd.read_to_end(&mut back)?;
            Ok(rd.kind())
        });
        r.check(
            &format!("echo fragmented {}", name(kind)),
            matches!(got, Ok(k) if k == kind) && back == data,
            &format!("{} bytes back, {got:?}", back.len()),
        );
    }
    // Our ping: the pong handler sees it while we read the next echo.
    let pongs = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Vec<u8>>::new()));
    let p2 = pongs.clone();
    c.set_pong_handler(move |d, _| {
        p2.lock().unwrap().push(d.to_vec());
        Ok(())
    });
    c.write_control(OpCode::Ping, b"sb-ping", None)?;
    c.write_message(MessageKind::Text, b"after ping")?;
    let m = c.read_message();
    r.check(
        "our ping answered by the server",
        pongs.lock().unwrap().iter().any(|p| p == b"sb-ping")
            && matches!(m, Ok(Message::Text(ref t)) if t == "after ping"),
        &format!("{m:?}"),
    );
    let res = c.close(CloseCode::NORMAL, "bye");
    r.check(
        "clean close 1000, server replied",
        res.is_ok(),
        &format!("{res:?}"),
    );

    let (mut c, _) = common::dial(&dialer, &format!("{base}/close"))?;
    c.set_read_deadline(Some(Instant::now() + Duration::from_secs(10)));
    match c.read_message() {
        Err(Error::Closed(f)) => r.check(
            "server closes with a code and reason we report",
            f.code == CloseCode(4001) && f.reason == "custom reason",
            &f.to_string(),
        ),
        other => r.check(
            "server closes with a code and reason we report",
            false,
            &format!("{other:?}"),
        ),
    }

    let (mut c, _) = common::dial(&dialer, &format!("{base}/ping"))?;
    c.set_read_deadline(Some(Instant::now() + Duration::from_secs(10)));
    let m = c.read_message();
    r.check(
        "the server's ping answered by us",
        matches!(m, Ok(Message::Text(ref t)) if t == "pong-ok"),
        &format!("{m:?}"),
    );
    let _ = c.close(CloseCode::NORMAL, "");
    Ok(())
}

// ---- event loop ----

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Task {
    #[default]
    Echo,
    Close,
    Ping,
}

#[derive(Default)]
struct State {
    task: Task,
    step: usize,
}

struct LoopChecks {
    report: Report,
    steps: Vec<(MessageKind, Vec<u8>, bool)>,
    closed_ok: Option<bool>,
}

impl LoopChecks {
    fn send_step(&mut self, ctx: &mut Ctx<'_, State>) {
        let i = ctx.data().step;
        if let Some((kind, data, fragmented)) = self.steps.get(i) {
            let r = if *fragmented {
                ctx.writer(*kind).and_then(|mut w| {
                    for piece in data.chunks(1000) {
                        w.write_all(piece)?;
                    }
                    w.close()
                })
            } else {
                ctx.send(*kind, data)
            };
            if let Err(e) = r {
                self.report.check("send", false, &e.to_string());
            }
        } else {
            let _ = ctx.ping(b"sb-ping");
        }
    }
}

impl Handler for LoopChecks {
    type Data = State;

    fn on_open(&mut self, ctx: &mut Ctx<'_, State>) {
        if ctx.data().task == Task::Echo {
            let proto = ctx.subprotocol().map(str::to_owned);
            self.report.check(
                "subprotocol negotiated (offered chat.v2, chat.v1)",
                proto.as_deref() == Some("chat.v1"),
                &format!("{proto:?}"),
            );
            self.send_step(ctx);
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, State>, msg: MessageRef<'_>) {
        match ctx.data().task {
            Task::Echo => {
                let i = ctx.data().step;
                if let Some((kind, data, frag)) = self.steps.get(i) {
                    let label = if *frag {
                        format!("echo fragmented {}", name(*kind))
                    } else {
                        format!("echo {} {}B", name(*kind), data.len())
                    };
                    let ok = msg.kind == *kind && msg.data == data.as_slice();
                    self.report
                        .check(&label, ok, &format!("{} bytes back", msg.data.len()));
                    ctx.data().step += 1;
                    self.send_step(ctx);
                }
            }
            Task::Ping => {
                self.report.check(
                    "the server's ping answered by us",
                    msg.text() == Some("pong-ok"),
                    &String::from_utf8_lossy(msg.data),
                );
                let _ = ctx.close(CloseCode::NORMAL, "");
            }
            Task::Close => {}
        }
    }

    fn on_pong(&mut self, ctx: &mut Ctx<'_, State>, data: &[u8]) {
        if ctx.data().task == Task::Echo {
            self.report.check(
                "our ping answered by the server",
                data == b"sb-ping",
                &String::from_utf8_lossy(data),
            );
            let _ = ctx.close(CloseCode::NORMAL, "bye");
        }
    }

    fn on_close(&mut self, ctx: &mut Ctx<'_, State>, code: CloseCode, reason: &str) {
        match ctx.data().task {
            Task::Echo => {
                self.closed_ok = Some(code == CloseCode::NORMAL);
                self.report.check(
                    "clean close 1000, server replied",
                    code == CloseCode::NORMAL && ctx.data().step == self.steps.len(),
                    &format!("{code} {reason:?} after {} steps", ctx.data().step),
                );
            }
            Task::Close => self.report.check(
                "server closes with a code and reason we report",
                code == CloseCode(4001) && reason == "custom reason",
                &format!("{code} {reason:?}"),
            ),
            Task::Ping => {}
        }
    }

    fn on_error(&mut self, ctx: &mut Ctx<'_, State>, err: &Error) {
        if ctx.data().task != Task::Close {
            self.report.check("no errors", false, &err.to_string());
        }
    }
}

fn event_loop(base: &str, report: Report) -> Result<Report, Error> {
    let mut steps = Vec::new();
    for kind in kinds() {
        for n in SIZES {
            steps.push((kind, payload(kind, n), false));
        }
        steps.push((kind, payload(kind, 70_000), true));
    }
    let builder = Client::builder();
    #[cfg(feature = "tls")]
    let builder = match common::client_tls() {
        Some(cfg) => builder.tls(cfg),
        None => builder,
    };
    let mut client = builder
        .max_message_size(64 << 20)
        .max_output_buffer(64 << 20)
        .write_buffer_size(4096)
        .subprotocols(["chat.v2", "chat.v1"])
        .build(LoopChecks {
            report,
            steps,
            closed_ok: None,
        })?;
    client.connect(&format!("{base}/"), State::default())?;
    client.connect(
        &format!("{base}/close"),
        State {
            task: Task::Close,
            step: 0,
        },
    )?;
    client.connect(
        &format!("{base}/ping"),
        State {
            task: Task::Ping,
            step: 0,
        },
    )?;
    let handle = client.handle();
    let watchdog = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(60));
        handle.shutdown(Duration::ZERO);
    });
    client.run()?;
    drop(watchdog);
    let checks = std::mem::replace(
        client.handler_mut(),
        LoopChecks {
            report: Report {
                who: String::new(),
                against: String::new(),
                failures: 0,
            },
            steps: Vec::new(),
            closed_ok: None,
        },
    );
    let mut report = checks.report;
    if checks.closed_ok.is_none() {
        report.check(
            "clean close 1000, server replied",
            false,
            "the echo connection never closed",
        );
    }
    Ok(report)
}

fn main() -> ExitCode {
    common::usage(
        "interop_client --url ws://HOST:PORT|wss://HOST:PORT --mode blocking|loop --against NAME [--cafile PEM]",
    );
    let base = common::flag_value("--url").unwrap_or_else(|| "ws://127.0.0.1:9000".into());
    let base = base.trim_end_matches('/').to_owned();
    let mode = common::flag_value("--mode").unwrap_or_else(|| "blocking".into());
    let mut report = Report {
        who: format!("silverback-{mode}"),
        against: common::flag_value("--against").unwrap_or_default(),
        failures: 0,
    };
    if mode == "loop" {
        let who = report.who.clone();
        let against = report.against.clone();
        report = match event_loop(&base, report) {
            Ok(r) => r,
            Err(e) => {
                let mut r = Report {
                    who,
                    against,
                    failures: 0,
                };
                r.check("run", false, &e.to_string());
                r
            }
        };
    } else if let Err(e) = blocking(&base, &mut report) {
        report.check("run", false, &e.to_string());
    }
    if report.failures > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
