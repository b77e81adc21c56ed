//! The tutorial's server-push service on the event loop.
//!
//! * `GET /getPushNews?userId=ID` upgrades and registers the connection under `ID`
//!   (a newer connection for the same id replaces the older one, closed with 4000).
//! * `POST /push?userId=ID` with a JSON body pushes it to that user;
//!   `POST /push` without `userId` pushes it to everyone.
//! * `GET /deleteClient/ID` (or `DELETE`) closes that user's connection (1000);
//!   an unknown id is answered `404 {"mesg": "..."}`.
//! * A ping every 10 s (`--ping SECS`); a peer silent for 30 s after a ping is dropped.
//! * The close handler removes the user from the registry.
//! * `--tick SECS` starts a thread that pushes `{"type":"tick",...}` to every user
//!   through their `Sender`s: pushing from a thread that is not the loop.
//! * `GET /` serves the test page (connects as `user1`; edit the URL for others).
//!
//! ```text
//! cargo run --release --example push -- [--addr 0.0.0.0:22345] [--ping SECS] [--tick SECS]
//! curl -X POST 'http://127.0.0.1:22345/push?userId=user1' -d '{"title":"hello"}'
//! curl 'http://127.0.0.1:22345/deleteClient/user1'
//! ```

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use silverback::event::{
    Ctx, Decision, Handler, HttpRequest, HttpResponse, LoopCtx, MessageRef, Sender, Server,
};
use silverback::proto::handshake::Request;
use silverback::{CloseCode, Error};

/// Every connected user's [`Sender`]: the tutorial's client registry.
type Registry = Arc<Mutex<HashMap<String, Sender>>>;

const PAGE: &str = include_str!("page.html");

struct Push {
    registry: Registry,
}

/// Minimal JSON string escaping (the default build has no JSON crate).
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn mesg(status: u16, text: &str) -> HttpResponse {
    HttpResponse::json(status, format!("{{\"mesg\": {}}}\n", json_str(text)))
}

/// The pushed message: `{"userId": ..., "data": <body>}` (the body if it is a JSON
/// object or array, else as a JSON string).
fn envelope(user: Option<&str>, body: &str) -> String {
    let body = body.trim();
    let data = if body.starts_with('{') || body.starts_with('[') {
        body.to_owned()
    } else {
        json_str(body)
    };
    match user {
        Some(u) => format!("{{\"userId\": {}, \"data\": {data}}}", json_str(u)),
        None => format!("{{\"userId\": null, \"data\": {data}}}"),
    }
}

impl Handler for Push {
    /// The user id of the connection.
    type Data = String;

    fn on_request(&mut self, req: &Request, user: &mut String, _: SocketAddr) -> Decision {
        if req.path() != "/getPushNews" {
            return Decision::reject(404, "not found: connect to /getPushNews?userId=ID");
        }
        match req.query_param("userId") {
            Some(id) if !id.is_empty() => {
                *user = id.to_owned();
                Decision::accept()
            }
            _ => Decision::reject(400, "userId is required"),
        }
    }

    fn on_open(&mut self, ctx: &mut Ctx<'_, String>) {
        let sender = ctx.sender();
        let user = ctx.data().clone();
        println!("user {user} connected from {}", ctx.peer_addr());
        let old = self.registry.lock().unwrap().insert(user, sender);
        if let Some(old) = old {
            let _ = old.close(CloseCode(4000), "replaced by a new connection");
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, String>, msg: MessageRef<'_>) {
        // The service is push-only; log what clients say.
        println!("user {}: {}", ctx.data(), String::from_utf8_lossy(msg.data));
    }

    fn on_close(&mut self, ctx: &mut Ctx<'_, String>, code: CloseCode, reason: &str) {
        // The close handler: remove the user, unless a newer connection replaced it.
        let id = ctx.id();
        let user = ctx.data().clone();
        let mut reg = self.registry.lock().unwrap();
        if reg.get(&user).is_some_and(|s| s.id() == id) {
            reg.remove(&user);
        }
        println!("user {user} disconnected ({code} {reason:?})");
    }

    fn on_error(&mut self, ctx: &mut Ctx<'_, String>, err: &Error) {
        eprintln!("user {}: {err}", ctx.data());
    }

    fn on_http(&mut self, req: &HttpRequest<'_>, _: &mut LoopCtx<'_, String>) -> HttpResponse {
        let head = req.head;
        let path = head.path();
        match (head.method(), path) {
            ("GET", "/" | "/index.html") => HttpResponse::html(
                200,
                PAGE.replace(
                    "const DEFAULT_PATH = \"/websocket\";",
                    "const DEFAULT_PATH = \"/getPushNews?userId=user1\";",
                ),
            ),
            ("POST", "/push") => {
                let Ok(body) = std::str::from_utf8(req.body) else {
                    return mesg(400, "body must be UTF-8 JSON");
                };
                let reg = self.registry.lock().unwrap();
                match head.query_param("userId") {
                    Some(user) => match reg.get(user) {
                        Some(s) if s.send_text(&envelope(Some(user), body)).is_ok() => {
                            mesg(200, &format!("pushed to {user}"))
                        }
                        _ => mesg(404, &format!("client {user} not found")),
                    },
                    None => {
                        let text = envelope(None, body);
                        let n = reg.values().filter(|s| s.send_text(&text).is_ok()).count();
                        mesg(200, &format!("pushed to {n} clients"))
                    }
                }
            }
            ("GET" | "DELETE", p) if p.starts_with("/deleteClient/") => {
                let user = &p["/deleteClient/".len()..];
                let sender = self.registry.lock().unwrap().get(user).cloned();
                match sender {
                    Some(s) if s.close(CloseCode::NORMAL, "deleted by server").is_ok() => {
                        mesg(200, &format!("client {user} closed"))
                    }
                    _ => mesg(404, &format!("client {user} not found")),
                }
            }
            ("GET", "/clients") => {
                let reg = self.registry.lock().unwrap();
                let mut ids: Vec<&String> = reg.keys().collect();
                ids.sort();
                let list: Vec<String> = ids.iter().map(|i| json_str(i)).collect();
                HttpResponse::json(200, format!("[{}]\n", list.join(", ")))
            }
            _ => mesg(404, "not found"),
        }
    }
}

fn main() -> std::io::Result<()> {
    common::usage("push [--addr HOST:PORT] [--ping SECS] [--tick SECS]   (default 0.0.0.0:22345)");
    let addr = common::addr("0.0.0.0:22345");
    let secs = |name: &str, default: f64| -> f64 {
        common::flag_value(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let ping = Duration::from_secs_f64(secs("--ping", 10.0));
    let tick = secs("--tick", 0.0);
    let registry: Registry = Arc::default();
    if tick > 0.0 {
        // A thread that is not the loop pushes through the Senders.
        let registry = registry.clone();
        thread::spawn(move || {
            for n in 1u64.. {
                thread::sleep(Duration::from_secs_f64(tick));
                let text = format!("{{\"type\": \"tick\", \"n\": {n}}}");
                for s in registry.lock().unwrap().values() {
                    let _ = s.send_text(&text);
                }
            }
        });
    }
    let reg = registry.clone();
    let server = Server::builder()
        .addr(addr)
        .heartbeat(ping, ping * 3)
        .check_origin(|_| true)
        .build(move |_| Push {
            registry: reg.clone(),
        })?;
    println!(
        "push service on ws://{}/getPushNews?userId=ID; POST /push?userId=ID; GET /deleteClient/ID; page at http://{}/",
        server.local_addr(),
        server.local_addr()
    );
    server.run()
}
