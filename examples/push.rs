//! The tutorial's server-push service on the event loop (needs `--features json`),
//! on one process or several sharing a Redis server.
//!
//! * `GET /getPushNews?userId=ID` upgrades and registers the connection under `ID`
//!   (a newer connection for the same id replaces the older one, which is closed
//!   with 4000, on whichever process it was).
//! * `POST /push?userId=ID` with a JSON body pushes the body to that user exactly as
//!   it came (the tutorial's `WriteJSON(content)`); `POST /push` without `userId`
//!   pushes it to everyone. A body that is not JSON is answered
//!   `400 {"mesg": ...}` and pushes nothing.
//! * `GET /deleteClient/ID` (or `DELETE`) closes that user's connection (1000);
//!   an unknown id is answered `404 {"mesg": "..."}`.
//! * A ping every 10 s (`--ping SECS`); a peer silent for 30 s after a ping is dropped.
//! * The close handler removes the user from the registry.
//! * `--tick SECS` starts a thread that pushes `{"type":"tick","n":N}` to every user
//!   through their `Sender`s: pushing from a thread that is not the loop.
//! * `GET /` serves the test page (connects as `user1`; edit the URL for others),
//!   `GET /clients` lists this process's users, `GET /metrics` serves the server's
//!   counters in the Prometheus text format.
//!
//! `--tls-cert FILE --tls-key FILE` or `--tls-self-signed` (with `--features tls`)
//! serve the same over `wss://` and `https://`.
//!
//! Several processes: `--redis redis://127.0.0.1:6379 --node NAME` (a distinct name
//! per process). Which process holds which user is kept in Redis
//! (`silverback:push:user:ID` = node name) with an expiry (`--registry-ttl SECS`,
//! default 30) that each process renews for its users every third of it, so a
//! crashed process's users leave the registry within that time. A push or a delete
//! received by any process reaches the user wherever the user is connected: the
//! receiving process looks the user up and publishes the command on the owner's
//! channel (`silverback:push:node:NAME`); a broadcast goes on
//! `silverback:push:all`. Each process runs one thread subscribed to its channels
//! (the `redis` crate's blocking client, no async runtime) that hands commands to
//! the loop through the users' `Sender`s. The HTTP endpoints ask Redis from the loop
//! thread (one round trip on a local Redis, well under a millisecond).
//!
//! ```text
//! cargo run --release --features json --example push -- [--addr 0.0.0.0:22345] [--ping SECS] [--tick SECS]
//!     [--redis redis://127.0.0.1:6379 --node NAME [--registry-ttl SECS]]
//! curl -X POST 'http://127.0.0.1:22345/push?userId=user1' -d '{"title":"hello"}'
//! curl 'http://127.0.0.1:22345/deleteClient/user1'
//! ```

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;
use silverback::event::{
    Ctx, Decision, Handler, HttpRequest, HttpResponse, LoopCtx, MessageRef, Sender, Server,
};
use silverback::proto::handshake::Request;
use silverback::{CloseCode, Error};

/// Every user connected to this process, by id: the tutorial's client registry.
type Registry = Arc<Mutex<HashMap<String, Sender>>>;

const PAGE: &str = include_str!("page.html");

/// `{"mesg": text}`, the tutorial's answer format.
fn mesg(status: u16, text: &str) -> HttpResponse {
    HttpResponse::json(status, format!("{}\n", json!({ "mesg": text })))
}

/// What one process asks another (or all) through Redis. (Externally tagged: serde
/// reads a `RawValue` only where it does not buffer, which an internal tag would.)
#[derive(Serialize, Deserialize)]
enum Command {
    /// Push `body` (raw JSON, sent unchanged) to `user`.
    Push { user: String, body: Box<RawValue> },
    /// Push `body` to every user of every process but `from`.
    PushAll { body: Box<RawValue>, from: String },
    /// Close `user`'s connection with `code`.
    Close {
        user: String,
        code: u16,
        reason: String,
    },
}

/// The Redis side of a process in a cluster.
struct Cluster {
    node: String,
    ttl: Duration,
    client: redis::Client,
}

const USER_KEY: &str = "silverback:push:user:";
const NODE_CHANNEL: &str = "silverback:push:node:";
const ALL_CHANNEL: &str = "silverback:push:all";

/// Renews the key only if it still names this node or has expired (a user who
/// moved to another process stays there).
const RENEW_IF_OURS: &str = "local v = redis.call('get', KEYS[1]) if v == false or v == ARGV[1] then return redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) else return 0 end";

/// Deletes the key only if it still names this node (the user may have moved).
const DEL_IF_OURS: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

impl Cluster {
    fn user_key(user: &str) -> String {
        format!("{USER_KEY}{user}")
    }

    /// Delivers a command to the users of this process.
    fn apply(&self, registry: &Registry, cmd: Command) {
        let reg = registry.lock().unwrap();
        match cmd {
            Command::Push { user, body } => {
                if let Some(s) = reg.get(&user) {
                    let _ = s.send_json(&body);
                }
            }
            Command::PushAll { body, from } => {
                if from != self.node {
                    for s in reg.values() {
                        let _ = s.send_json(&body);
                    }
                }
            }
            Command::Close { user, code, reason } => {
                if let Some(s) = reg.get(&user) {
                    let _ = s.close(CloseCode(code), &reason);
                }
            }
        }
    }

    /// The thread that receives this process's commands and hands them to the loop
    /// through the users' Senders.
    fn subscribe(self: &Arc<Self>, registry: Registry) -> redis::RedisResult<()> {
        let mut con = self.client.get_connection()?;
        let cluster = self.clone();
        thread::spawn(move || {
            let mut pubsub = con.as_pubsub();
            let mine = format!("{NODE_CHANNEL}{}", cluster.node);
            if let Err(e) = pubsub.subscribe(&[mine.as_str(), ALL_CHANNEL]) {
                eprintln!("redis subscribe: {e}");
                return;
            }
            loop {
                let msg = match pubsub.get_message() {
                    Ok(m) => m,
                    Err(e) => {
                        eprintln!("redis: {e}; the subscriber stops");
                        return;
                    }
                };
                let payload: String = msg.get_payload().unwrap_or_default();
                match serde_json::from_str::<Command>(&payload) {
                    Ok(cmd) => cluster.apply(&registry, cmd),
                    Err(e) => eprintln!("redis: bad command {payload:?}: {e}"),
                }
            }
        });
        Ok(())
    }

    /// The thread that renews this process's users in the registry every third of
    /// the expiry.
    fn heartbeat(self: &Arc<Self>, registry: Registry) -> redis::RedisResult<()> {
        let mut con = self.client.get_connection()?;
        let cluster = self.clone();
        thread::spawn(move || {
            loop {
                thread::sleep(cluster.ttl / 3);
                let users: Vec<String> = registry.lock().unwrap().keys().cloned().collect();
                let mut pipe = redis::pipe();
                for u in &users {
                    pipe.cmd("EVAL")
                        .arg(RENEW_IF_OURS)
                        .arg(1)
                        .arg(Cluster::user_key(u))
                        .arg(&cluster.node)
                        .arg(cluster.ttl.as_millis() as u64)
                        .ignore();
                }
                if let Err(e) = pipe.query::<()>(&mut con) {
                    eprintln!("redis heartbeat: {e}");
                }
            }
        });
        Ok(())
    }
}

struct Push {
    registry: Registry,
    cluster: Option<(Arc<Cluster>, redis::Connection)>,
}

impl Push {
    fn node(&self) -> &str {
        self.cluster.as_ref().map_or("", |(c, _)| c.node.as_str())
    }

    /// Registers `user` as connected here; returns the node that held the user
    /// before, if another one did.
    fn register(&mut self, user: &str) -> Option<String> {
        let (cluster, con) = self.cluster.as_mut()?;
        let previous: redis::RedisResult<Option<String>> = redis::cmd("SET")
            .arg(Cluster::user_key(user))
            .arg(&cluster.node)
            .arg("PX")
            .arg(cluster.ttl.as_millis() as u64)
            .arg("GET")
            .query(con);
        match previous {
            Ok(Some(n)) if n != cluster.node => Some(n),
            Ok(_) => None,
            Err(e) => {
                eprintln!("redis register {user}: {e}");
                None
            }
        }
    }

    /// Sends a command to `node`'s process; false if no process listens there.
    fn publish(&mut self, node: &str, cmd: &Command) -> bool {
        let Some((_, con)) = self.cluster.as_mut() else {
            return false;
        };
        let text = serde_json::to_string(cmd).unwrap_or_default();
        redis::cmd("PUBLISH")
            .arg(format!("{NODE_CHANNEL}{node}"))
            .arg(text)
            .query::<u64>(con)
            .is_ok_and(|n| n > 0)
    }

    /// The node `user` is connected to, per the registry in Redis.
    fn owner(&mut self, user: &str) -> Option<String> {
        let (_, con) = self.cluster.as_mut()?;
        redis::cmd("GET")
            .arg(Cluster::user_key(user))
            .query::<Option<String>>(con)
            .ok()
            .flatten()
    }

    /// Runs `cmd` for `user` here if the user is connected here, else on the
    /// process that holds the user. False if the user is nowhere.
    fn route(&mut self, user: &str, cmd: Command) -> bool {
        let local = self.registry.lock().unwrap().get(user).cloned();
        if let Some(sender) = local {
            return match &cmd {
                Command::Push { body, .. } => sender.send_json(body).is_ok(),
                Command::Close { code, reason, .. } => {
                    sender.close(CloseCode(*code), reason).is_ok()
                }
                Command::PushAll { .. } => false,
            };
        }
        match self.owner(user) {
            Some(node) => self.publish(&node, &cmd),
            None => false,
        }
    }

    fn push(&mut self, req: &HttpRequest<'_>) -> HttpResponse {
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
                if self.route(
                    &user,
                    Command::Push {
                        user: user.clone(),
                        body,
                    },
                ) {
                    mesg(200, &format!("pushed to {user}"))
                } else {
                    mesg(404, &format!("client {user} not found"))
                }
            }
            None => {
                let local = {
                    let reg = self.registry.lock().unwrap();
                    reg.values().filter(|s| s.send_json(&body).is_ok()).count()
                };
                let node = self.node().to_owned();
                match self.cluster.as_mut() {
                    None => mesg(200, &format!("pushed to {local} clients")),
                    Some((_, con)) => {
                        // Every other process pushes to its own users (this one hears
                        // the broadcast too, and ignores its own).
                        let cmd = Command::PushAll { body, from: node };
                        let others = redis::cmd("PUBLISH")
                            .arg(ALL_CHANNEL)
                            .arg(serde_json::to_string(&cmd).unwrap_or_default())
                            .query::<u64>(con)
                            .unwrap_or(1)
                            .saturating_sub(1);
                        mesg(
                            200,
                            &format!(
                                "pushed to {local} clients here and every client of {others} other processes"
                            ),
                        )
                    }
                }
            }
        }
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
        let old = self.registry.lock().unwrap().insert(user.clone(), sender);
        if let Some(old) = old {
            let _ = old.close(CloseCode(4000), "replaced by a new connection");
        }
        if let Some(node) = self.register(&user) {
            // The user was connected to another process: that connection is replaced.
            let close = Command::Close {
                user,
                code: 4000,
                reason: "replaced by a new connection".into(),
            };
            self.publish(&node, &close);
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
        let ours = {
            let mut reg = self.registry.lock().unwrap();
            let ours = reg.get(&user).is_some_and(|s| s.id() == id);
            if ours {
                reg.remove(&user);
            }
            ours
        };
        if ours && let Some((cluster, con)) = self.cluster.as_mut() {
            let _ = redis::cmd("EVAL")
                .arg(DEL_IF_OURS)
                .arg(1)
                .arg(Cluster::user_key(&user))
                .arg(&cluster.node)
                .query::<i64>(con);
        }
        println!("user {user} disconnected ({code} {reason:?})");
    }

    fn on_error(&mut self, ctx: &mut Ctx<'_, String>, err: &Error) {
        eprintln!("user {}: {err}", ctx.data());
    }

    fn on_http(&mut self, req: &HttpRequest<'_>, lp: &mut LoopCtx<'_, String>) -> HttpResponse {
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
            ("POST", "/push") => self.push(req),
            ("GET" | "DELETE", p) if p.starts_with("/deleteClient/") => {
                let user = p["/deleteClient/".len()..].to_owned();
                let close = Command::Close {
                    user: user.clone(),
                    code: CloseCode::NORMAL.0,
                    reason: "deleted by server".into(),
                };
                if self.route(&user, close) {
                    mesg(200, &format!("client {user} closed"))
                } else {
                    mesg(404, &format!("client {user} not found"))
                }
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
        "push [--addr HOST:PORT] [--ping SECS] [--tick SECS]\n     \
         [--redis redis://HOST:PORT --node NAME [--registry-ttl SECS]]   (default 0.0.0.0:22345)\n     \
         [--tls-cert FILE --tls-key FILE | --tls-self-signed]   (wss:// and https://, --features tls)",
    );
    let addr = common::addr("0.0.0.0:22345");
    let secs = |name: &str, default: f64| -> f64 {
        common::flag_value(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let ping = Duration::from_secs_f64(secs("--ping", 10.0));
    let tick = secs("--tick", 0.0);
    let registry: Registry = Arc::default();
    let cluster = match common::flag_value("--redis") {
        None => None,
        Some(url) => {
            let node = common::flag_value("--node").unwrap_or_else(|| {
                eprintln!("--redis needs --node NAME (a distinct name per process)");
                std::process::exit(2);
            });
            let ttl = Duration::from_secs_f64(secs("--registry-ttl", 30.0).max(0.3));
            let client = redis::Client::open(url.as_str()).map_err(std::io::Error::other)?;
            let cluster = Arc::new(Cluster { node, ttl, client });
            cluster
                .subscribe(registry.clone())
                .and_then(|()| cluster.heartbeat(registry.clone()))
                .map_err(std::io::Error::other)?;
            println!("cluster node {} on {url}", cluster.node);
            Some(cluster)
        }
    };
    if tick > 0.0 {
        // A thread that is not the loop pushes through the Senders.
        let registry = registry.clone();
        thread::spawn(move || {
            for n in 1u64.. {
                thread::sleep(Duration::from_secs_f64(tick));
                let msg = json!({ "type": "tick", "n": n });
                for s in registry.lock().unwrap().values() {
                    let _ = s.send_json(&msg);
                }
            }
        });
    }
    // The loop's own Redis connection, for the HTTP endpoints (one loop thread).
    let loop_redis = match &cluster {
        Some(c) => {
            let con = c.client.get_connection().map_err(std::io::Error::other)?;
            Some((c.clone(), con))
        }
        None => None,
    };
    let loop_redis = Mutex::new(loop_redis);
    let reg = registry.clone();
    let (builder, ws, http) = common::with_server_tls(Server::builder());
    let server = builder
        .addr(addr)
        .heartbeat(ping, ping * 3)
        .check_origin(|_| true)
        .build(move |_| Push {
            registry: reg.clone(),
            cluster: loop_redis.lock().unwrap().take(),
        })?;
    println!(
        "push service on {ws}://{}/getPushNews?userId=ID; POST /push?userId=ID; GET /deleteClient/ID; page at {http}://{}/",
        server.local_addr(),
        server.local_addr()
    );
    server.run()
}
