//! The tutorial's server-push service on the event loop (needs `--features json`),
//! on one process or several sharing a Redis server.
//!
//! * `GET /getPushNews?userId=ID` upgrades and registers the connection under `ID`
//!   (a newer connection for the same id replaces the older one, which is closed
//!   with 4000, on whichever process it was). `&topic=NAME`, repeatable, subscribes
//!   the connection to topics; every connection is subscribed to the topic `all`.
//! * `POST /push?userId=ID` with a JSON body pushes the body to that user exactly as
//!   it came (the tutorial's `WriteJSON(content)`); `POST /push?topic=NAME` pushes
//!   it to every subscriber of the topic, and `POST /push` without either to
//!   everyone (the topic `all`). A push to a topic is the loop's publish: the frame
//!   is encoded once (compressed once for clients without context takeover) and
//!   copied to each subscriber, and reaches the other loops with one post each and
//!   the other processes with one Redis message. A body that is not JSON is
//!   answered `400 {"mesg": ...}` and pushes nothing.
//! * `GET /deleteClient/ID` (or `DELETE`) closes that user's connection (1000);
//!   an unknown id is answered `404 {"mesg": "..."}`.
//! * A ping every 10 s (`--ping SECS`); a peer silent for 30 s after a ping is dropped.
//! * The close handler removes the user from the registry.
//! * `--tick SECS` starts a thread that pushes `{"type":"tick","n":N}` to every user
//!   through a `Publisher`: publishing from a thread that is not the loop.
//! * `GET /` serves the test page (connects as `user1`; edit the URL for others),
//!   `GET /clients` lists this process's users, `GET /metrics` serves the server's
//!   counters in the Prometheus text format.
//!
//! `--tls-cert FILE --tls-key FILE` or `--tls-self-signed` (with `--features tls`)
//! serve the same over `wss://` and `https://`.
//!
//! Restarting without disconnecting anyone (with `--features handover`): start the
//! new process with `--resume PATH` and send SIGUSR2 to the running one, started
//! with `--handover PATH`: every connection moves with its user id and topics, and
//! the new process registers the users (docs/handover.md).
//!
//! Several processes: `--redis redis://127.0.0.1:6379 --node NAME` (a distinct name
//! per process). Which process holds which user is kept in Redis with an expiry
//! (`--registry-ttl SECS`, default 30) that each process renews for its users, so a
//! crashed process's users leave the registry within that time. A push or a delete
//! received by any process reaches the user wherever the user is connected
//! (`cluster.rs` says how). Redis is never called from the event loop's thread:
//! requests that need it are deferred to `--redis-workers N` (default 2) worker
//! threads, each Redis call bounded by `--redis-timeout SECS` (default 1).
//!
//! What a Redis outage (paused, restarting, gone) does:
//!
//! * WebSocket traffic is unaffected: heartbeats, pushes and deletes for users
//!   connected to the process that gets the request (they never touch Redis), and
//!   closes.
//! * A push or delete for a user on another process, and the cross-process part of
//!   a push to a topic, is refused with `503 {"mesg": ...}` within the timeout; never
//!   silently dropped. (A push refused because Redis was *paused* may still be
//!   delivered once Redis resumes and runs the command it had received: retry only
//!   what must arrive at least once.)
//! * New connections are served locally and registered once Redis answers again.
//! * After Redis comes back, even empty after a restart, each process reconnects
//!   with backoff and jitter (50 ms doubling to 2 s) and re-registers all its users
//!   at once; cross-process pushes work again from then on, without any client
//!   reconnecting.
//! * A user registered by two processes while they could not see each other ends
//!   with one owner: the most recent connection wins, the other is closed with 4000.
//!
//! ```text
//! cargo run --release --features json --example push -- [--addr 0.0.0.0:22345] [--ping SECS] [--tick SECS]
//!     [--workers N] [--deflate [--deflate-mode MODE]]
//!     [--redis redis://127.0.0.1:6379 --node NAME [--registry-ttl SECS] [--redis-timeout SECS] [--redis-workers N]]
//! curl -X POST 'http://127.0.0.1:22345/push?userId=user1' -d '{"title":"hello"}'
//! curl -X POST 'http://127.0.0.1:22345/push?topic=sport' -d '{"score":"2-1"}'
//! curl 'http://127.0.0.1:22345/deleteClient/user1'
//! ```

mod cluster;
#[path = "../common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::json;
use serde_json::value::RawValue;
use silverback::event::{
    Ctx, Decision, Handler, HttpRequest, HttpResponse, LoopCtx, MessageRef, Prepared, Server,
};
use silverback::proto::handshake::Request;
use silverback::{CloseCode, Error};

use cluster::{ALL, Cluster, Job, Local, Registry, now_ms};

const PAGE: &str = include_str!("../page.html");

/// `{"mesg": text}`, the tutorial's answer format.
pub fn mesg(status: u16, text: &str) -> HttpResponse {
    HttpResponse::json(status, format!("{}\n", json!({ "mesg": text })))
}

struct Push {
    registry: Registry,
    cluster: Option<Arc<Cluster>>,
}

/// A connection's user id and the topics it asked for.
#[derive(Default)]
struct User {
    id: String,
    topics: Vec<String>,
}

impl Push {
    fn push(&mut self, req: &HttpRequest<'_>, lp: &mut LoopCtx<'_, User>) -> HttpResponse {
        // The body is pushed exactly as it came, once it is known to be JSON.
        let body: Box<RawValue> = match std::str::from_utf8(req.body)
            .ok()
            .and_then(|b| serde_json::from_str(b.trim()).ok())
        {
            Some(b) => b,
            None => return mesg(400, "the body must be JSON"),
        };
        match req.head.query_param("userId") {
            Some(user) => {
                let user = user.to_owned();
                // A user connected here needs no Redis.
                let local = self
                    .registry
                    .lock()
                    .unwrap()
                    .get(&user)
                    .map(|l| l.sender.clone());
                match (local, &self.cluster) {
                    (Some(sender), _) => match sender.send_json(&body) {
                        Ok(()) => mesg(200, &format!("pushed to {user}")),
                        Err(_) => mesg(404, &format!("client {user} not found")),
                    },
                    (None, None) => mesg(404, &format!("client {user} not found")),
                    (None, Some(c)) => {
                        c.submit(Job::Push {
                            user,
                            body,
                            resp: req.defer(),
                        });
                        HttpResponse::deferred()
                    }
                }
            }
            None => {
                let topic = req.head.query_param("topic").unwrap_or(ALL).to_owned();
                if topic.is_empty() {
                    return mesg(400, "topic must not be empty");
                }
                // Encoded once here; every loop of this process copies the frame to
                // its subscribers.
                lp.publish(&topic, &Prepared::text(body.get()));
                let local = {
                    let reg = self.registry.lock().unwrap();
                    if topic == ALL {
                        reg.len()
                    } else {
                        reg.values().filter(|l| l.topics.contains(&topic)).count()
                    }
                };
                let to = if topic == ALL {
                    String::new()
                } else {
                    format!(" of topic {topic}")
                };
                match &self.cluster {
                    None => mesg(200, &format!("pushed to {local} clients{to}")),
                    Some(c) => {
                        // Every other process publishes to its own subscribers.
                        c.submit(Job::Broadcast {
                            body,
                            topic,
                            local,
                            resp: req.defer(),
                        });
                        HttpResponse::deferred()
                    }
                }
            }
        }
    }

    fn delete(&mut self, req: &HttpRequest<'_>, user: &str) -> HttpResponse {
        let local = self
            .registry
            .lock()
            .unwrap()
            .get(user)
            .map(|l| l.sender.clone());
        match (local, &self.cluster) {
            (Some(sender), _) => match sender.close(CloseCode::NORMAL, "deleted by server") {
                Ok(()) => mesg(200, &format!("client {user} closed")),
                Err(_) => mesg(404, &format!("client {user} not found")),
            },
            (None, None) => mesg(404, &format!("client {user} not found")),
            (None, Some(c)) => {
                c.submit(Job::Delete {
                    user: user.to_owned(),
                    resp: req.defer(),
                });
                HttpResponse::deferred()
            }
        }
    }
}

impl Push {
    /// Registers the connection's user on this process (and in the cluster): a
    /// newer connection of a user replaces an older one.
    fn register(&mut self, ctx: &mut Ctx<'_, User>) {
        let sender = ctx.sender();
        let topics = ctx.data().topics.clone();
        let user = ctx.data().id.clone();
        let stamp = now_ms();
        let old = self.registry.lock().unwrap().insert(
            user.clone(),
            Local {
                sender,
                stamp,
                topics,
            },
        );
        if let Some(old) = old {
            let _ = old
                .sender
                .close(CloseCode(4000), "replaced by a new connection");
        }
        if let Some(c) = &self.cluster {
            // Registered by a worker; another process's older connection of this
            // user is closed from there.
            c.submit(Job::Register { user, stamp });
        }
    }
}

impl Handler for Push {
    /// The user id of the connection and its topics.
    type Data = User;

    fn on_request(&mut self, req: &Request, user: &mut User, _: SocketAddr) -> Decision {
        if req.path() != "/getPushNews" {
            return Decision::reject(404, "not found: connect to /getPushNews?userId=ID");
        }
        let topics: Vec<String> = req.query_params("topic").map(str::to_owned).collect();
        if topics.iter().any(String::is_empty) {
            return Decision::reject(400, "topic must not be empty");
        }
        match req.query_param("userId") {
            Some(id) if !id.is_empty() => {
                *user = User {
                    id: id.to_owned(),
                    topics,
                };
                Decision::accept()
            }
            _ => Decision::reject(400, "userId is required"),
        }
    }

    fn on_open(&mut self, ctx: &mut Ctx<'_, User>) {
        let topics = ctx.data().topics.clone();
        for t in std::iter::once(ALL).chain(topics.iter().map(String::as_str)) {
            // Open in on_open: subscribing cannot fail here.
            let _ = ctx.subscribe(t);
        }
        let peer = ctx.peer_addr();
        println!("user {} connected from {peer}", ctx.data().id);
        self.register(ctx);
    }

    /// A restart (`--handover`): the user id and topics go with the connection
    /// (its subscriptions move by themselves).
    #[cfg(feature = "handover")]
    fn on_hand_over(&mut self, ctx: &mut Ctx<'_, User>) -> Vec<u8> {
        let u = ctx.data();
        json!({ "id": u.id, "topics": u.topics })
            .to_string()
            .into_bytes()
    }

    /// The new process (`--resume`): the user is registered here, under this
    /// connection's new id.
    #[cfg(feature = "handover")]
    fn on_resume(&mut self, ctx: &mut Ctx<'_, User>, saved: &[u8]) {
        let v: serde_json::Value = serde_json::from_slice(saved).unwrap_or_default();
        *ctx.data() = User {
            id: v["id"].as_str().unwrap_or_default().to_owned(),
            topics: v["topics"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
        };
        self.register(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, User>, msg: MessageRef<'_>) {
        // The service is push-only; log what clients say.
        println!(
            "user {}: {}",
            ctx.data().id,
            String::from_utf8_lossy(msg.data)
        );
    }

    fn on_close(&mut self, ctx: &mut Ctx<'_, User>, code: CloseCode, reason: &str) {
        // The close handler: remove the user, unless a newer connection replaced it
        // (its topics end with the connection).
        let id = ctx.id();
        let user = ctx.data().id.clone();
        let removed = {
            let mut reg = self.registry.lock().unwrap();
            match reg.get(&user) {
                Some(l) if l.sender.id() == id => reg.remove(&user),
                _ => None,
            }
        };
        if let (Some(l), Some(c)) = (removed, &self.cluster) {
            c.submit(Job::Unregister {
                user: user.clone(),
                stamp: l.stamp,
            });
        }
        println!("user {user} disconnected ({code} {reason:?})");
    }

    fn on_error(&mut self, ctx: &mut Ctx<'_, User>, err: &Error) {
        eprintln!("user {}: {err}", ctx.data().id);
    }

    fn on_http(&mut self, req: &HttpRequest<'_>, lp: &mut LoopCtx<'_, User>) -> HttpResponse {
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
            ("POST", "/push") => self.push(req, lp),
            ("GET" | "DELETE", p) if p.starts_with("/deleteClient/") => {
                let user = p["/deleteClient/".len()..].to_owned();
                self.delete(req, &user)
            }
            // The server's counters for Prometheus (connections, refusals by status,
            // messages and bytes each way, back-pressure, closes by code).
            ("GET", "/metrics") => HttpResponse::new(
                200,
                "text/plain; version=0.0.4",
                lp.server_stats().prometheus("silverback"),
            ),
            ("GET", "/clients") => {
                let reg = self.registry.lock().unwrap();
                let mut ids: Vec<&String> = reg.keys().collect();
                ids.sort();
                HttpResponse::json(200, format!("{}\n", json!(ids)))
            }
            _ => mesg(404, "not found"),
        }
    }
}

fn main() -> std::io::Result<()> {
    common::usage(
        "push [--addr HOST:PORT] [--ping SECS] [--tick SECS] [--workers N]\n     \
         [--deflate [--deflate-mode fast|small|shared|dedicated:BITS:MEM|window:BITS]]   (--features deflate)\n     \
         [--redis redis://HOST:PORT --node NAME [--registry-ttl SECS] [--redis-timeout SECS] [--redis-workers N]]\n     \
         (default 0.0.0.0:22345)\n     \
         [--tls-cert FILE --tls-key FILE | --tls-self-signed]   (wss:// and https://, --features tls)\n     \
         [--proxy-protocol [--trusted-proxy CIDR]...] [--max-conns-per-ip N]\n     \
         [--max-handshakes-per-ip N] [--max-msgs-per-sec N] [--max-bytes-per-sec N] [--rate-policy close|throttle]\n     \
         [--reuseport]   (SO_REUSEPORT, --features reuseport)\n     \
         [--handover PATH | --resume PATH]   (restart keeping connections, --features handover)",
    );
    let addr = common::addr("0.0.0.0:22345");
    let secs = |name: &str, default: f64| -> f64 {
        common::flag_value(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let ping = Duration::from_secs_f64(secs("--ping", 10.0));
    let tick = secs("--tick", 0.0);
    let registry: Registry = Arc::new(Mutex::new(HashMap::new()));
    let cluster = match common::flag_value("--redis") {
        None => None,
        Some(url) => {
            let node = common::flag_value("--node").unwrap_or_else(|| {
                eprintln!("--redis needs --node NAME (a distinct name per process)");
                std::process::exit(2);
            });
            let ttl = Duration::from_secs_f64(secs("--registry-ttl", 30.0).max(0.3));
            let timeout = Duration::from_secs_f64(secs("--redis-timeout", 1.0).max(0.01));
            let workers = secs("--redis-workers", 2.0) as usize;
            let c = Cluster::start(&url, node, ttl, timeout, workers, registry.clone())
                .map_err(std::io::Error::other)?;
            println!("cluster node {} on {url}", c.node);
            Some(c)
        }
    };
    // Changed only with `deflate`.
    #[cfg_attr(not(feature = "deflate"), allow(unused_mut))]
    let (mut builder, ws, http) = common::with_server_tls(common::with_resume(
        common::with_edge_flags(Server::builder()),
    ));
    if common::deflate_requested() {
        // Pushes to topics compress once per publish for clients without context
        // takeover (`--deflate-mode shared`), per client otherwise.
        #[cfg(feature = "deflate")]
        {
            builder = builder.deflate(common::deflate_mode_config());
        }
    }
    let workers: usize = common::flag_value("--workers")
        .and_then(|w| w.parse().ok())
        .unwrap_or(1);
    let server = builder
        .addr(addr)
        .workers(workers)
        .heartbeat(ping, ping * 3)
        .check_origin(|_| true)
        // A deferred request waits at most a few Redis timeouts; the workers answer
        // 503 long before this.
        .http_answer_timeout(Duration::from_secs(10))
        .build({
            let cluster = cluster.clone();
            move |_| Push {
                registry: registry.clone(),
                cluster: cluster.clone(),
            }
        })?;
    let publisher = server.handle().publisher();
    if let Some(c) = &cluster {
        // Pushes to topics from other processes are published here.
        c.set_publisher(publisher.clone());
    }
    if tick > 0.0 {
        // A thread that is not the loop publishes to everyone.
        thread::spawn(move || {
            for n in 1u64.. {
                thread::sleep(Duration::from_secs_f64(tick));
                let msg = json!({ "type": "tick", "n": n });
                let Ok(msg) = Prepared::json(&msg) else {
                    continue;
                };
                if publisher.publish(ALL, &msg).is_err() {
                    return;
                }
            }
        });
    }
    common::hand_over_on_signal(server.handle());
    println!(
        "push service on {ws}://{}/getPushNews?userId=ID[&topic=NAME]; POST /push[?userId=ID|?topic=NAME]; GET /deleteClient/ID; page at {http}://{}/",
        server.local_addr(),
        server.local_addr()
    );
    server.run()
}
