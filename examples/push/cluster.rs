//! The Redis side of a push process in a cluster: which process holds which user,
//! and commands between processes. Nothing here runs on the event loop's thread:
//! the loop hands work to a small pool of Redis workers over a bounded queue and
//! answers the HTTP request when a worker is done (`HttpRequest::defer`), so a slow
//! or dead Redis never holds up heartbeats, local pushes or closes.
//!
//! * Registry: `silverback:push:user:ID` = `NODE STAMP` (STAMP: when the user
//!   connected, ms since the epoch), expiring after the TTL; each process renews
//!   its users every third of it. The most recent connection wins: a registration
//!   older than the one in Redis loses (its connection is closed with 4000), a newer
//!   one replaces it and tells the previous holder to close its older connection.
//! * Commands: a push or delete is published on the holder's channel
//!   (`silverback:push:node:NAME`) by one Lua script that looks the holder up and
//!   publishes in one round trip; a push to a topic (everyone is the topic `all`)
//!   goes on `silverback:push:all` once, whatever the number of users, and each
//!   process publishes it to its own subscribers.
//! * Faults: every Redis call has a timeout (`--redis-timeout`); a connection that
//!   fails or times out is dropped and re-dialled with exponential backoff and
//!   jitter (50 ms doubling to 2 s); while a worker waits for its next attempt, its
//!   jobs are refused with 503 at once. The subscriber re-dials the same way and,
//!   once subscribed again, has every local user re-registered at once, so an empty
//!   Redis that was restarted is repopulated within one reconnect interval.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use silverback::CloseCode;
use silverback::event::{Prepared, Publisher, Responder, Sender};

use crate::mesg;

/// A user connected to this process.
pub struct Local {
    pub sender: Sender,
    /// When the user connected (ms since the epoch): the newest connection wins.
    pub stamp: u64,
    /// The topics the connection subscribed to (besides [`ALL`]).
    pub topics: Vec<String>,
}

/// The topic every connection subscribes to: a push without user or topic.
pub const ALL: &str = "all";

/// Every user connected to this process, by id: the tutorial's client registry.
pub type Registry = Arc<Mutex<HashMap<String, Local>>>;

/// Milliseconds since the epoch, for registration stamps.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What one process asks another (or all) through Redis. (Externally tagged: serde
/// reads a `RawValue` only where it does not buffer, which an internal tag would.)
#[derive(Serialize, Deserialize)]
pub enum Command {
    /// Push `body` (raw JSON, sent unchanged) to `user`.
    Push { user: String, body: Box<RawValue> },
    /// Push `body` to every subscriber of `topic` ([`ALL`] when absent) of every
    /// process but `from`.
    PushAll {
        body: Box<RawValue>,
        from: String,
        #[serde(default)]
        topic: Option<String>,
    },
    /// Close `user`'s connection with `code`, if it connected before `older_than`
    /// (ms since the epoch; `None`: whenever it connected).
    Close {
        user: String,
        code: u16,
        reason: String,
        older_than: Option<u64>,
    },
}

/// Work the loop hands to the Redis workers.
pub enum Job {
    Push {
        user: String,
        body: Box<RawValue>,
        resp: Responder,
    },
    Delete {
        user: String,
        resp: Responder,
    },
    /// The cross-process part of `POST /push` to a topic (without a user); `local`
    /// users of this process were published to on the loop already.
    Broadcast {
        body: Box<RawValue>,
        topic: String,
        local: usize,
        resp: Responder,
    },
    Register {
        user: String,
        stamp: u64,
    },
    Unregister {
        user: String,
        stamp: u64,
    },
}

const USER_KEY: &str = "silverback:push:user:";
const NODE_CHANNEL: &str = "silverback:push:node:";
const ALL_CHANNEL: &str = "silverback:push:all";

/// Registers `NODE STAMP` unless a newer registration holds the key. Returns
/// `{won, previous}` (previous: the value replaced, or false).
const REGISTER: &str = r"
local v = redis.call('get', KEYS[1])
if v then
  local sp = string.find(v, ' ')
  local stamp = sp and tonumber(string.sub(v, sp + 1)) or 0
  if stamp > tonumber(ARGV[2]) then return {0, v} end
end
redis.call('set', KEYS[1], ARGV[1] .. ' ' .. ARGV[2], 'PX', ARGV[3])
if v and v ~= ARGV[1] .. ' ' .. ARGV[2] then return {1, v} end
return {1, false}";

/// Deletes the key only if it still holds this registration.
const UNREGISTER: &str = r"
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0";

/// Publishes ARGV[2] on the channel of the process holding the user: -1 if nobody
/// holds it, else the number of subscribers that got it.
const TO_HOLDER: &str = r"
local v = redis.call('get', KEYS[1])
if not v then return -1 end
local sp = string.find(v, ' ')
local node = sp and string.sub(v, 1, sp - 1) or v
return redis.call('publish', ARGV[1] .. node, ARGV[2])";

fn user_key(user: &str) -> String {
    format!("{USER_KEY}{user}")
}

/// Exponential backoff with jitter: 50 ms doubling to 2 s, each wait drawn
/// uniformly from its upper half (so a fleet that lost Redis together does not
/// come back in lockstep).
struct Backoff {
    next: Duration,
}

impl Backoff {
    const MIN: Duration = Duration::from_millis(50);
    const MAX: Duration = Duration::from_secs(2);

    fn new() -> Backoff {
        Backoff { next: Self::MIN }
    }

    fn reset(&mut self) {
        self.next = Self::MIN;
    }

    /// The wait before the next attempt.
    fn wait(&mut self) -> Duration {
        let upper = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        let half = upper / 2;
        half + half.mul_f64(rand::random::<f64>())
    }
}

/// One Redis connection that re-dials after a failure, not before its backoff.
struct Link {
    client: redis::Client,
    timeout: Duration,
    con: Option<redis::Connection>,
    backoff: Backoff,
    retry_at: Option<Instant>,
    scripts: Scripts,
}

/// The scripts' SHA-1s, loaded on each new connection (a restarted Redis has none).
#[derive(Default)]
struct Scripts {
    register: String,
    unregister: String,
    to_holder: String,
}

impl Link {
    fn new(client: redis::Client, timeout: Duration) -> Link {
        Link {
            client,
            timeout,
            con: None,
            backoff: Backoff::new(),
            retry_at: None,
            scripts: Scripts::default(),
        }
    }

    /// The connection, dialled if needed; an error while the backoff runs.
    fn get(&mut self) -> redis::RedisResult<&mut redis::Connection> {
        if self.con.is_none() {
            if self.retry_at.is_some_and(|t| Instant::now() < t) {
                return Err(redis::RedisError::from((
                    redis::ErrorKind::Io,
                    "redis unreachable (waiting to reconnect)",
                )));
            }
            match self.dial() {
                Ok(c) => self.con = Some(c),
                Err(e) => {
                    self.failed();
                    return Err(e);
                }
            }
        }
        Ok(self.con.as_mut().expect("set above"))
    }

    fn dial(&mut self) -> redis::RedisResult<redis::Connection> {
        let mut con = self.client.get_connection_with_timeout(self.timeout)?;
        con.set_read_timeout(Some(self.timeout))?;
        con.set_write_timeout(Some(self.timeout))?;
        let load = |con: &mut redis::Connection, src: &str| -> redis::RedisResult<String> {
            redis::cmd("SCRIPT").arg("LOAD").arg(src).query(con)
        };
        self.scripts = Scripts {
            register: load(&mut con, REGISTER)?,
            unregister: load(&mut con, UNREGISTER)?,
            to_holder: load(&mut con, TO_HOLDER)?,
        };
        Ok(con)
    }

    /// A call failed or timed out: the connection's state is unknown (a late reply
    /// would answer the next command), so it is dropped and re-dialled later.
    fn failed(&mut self) {
        self.con = None;
        self.retry_at = Some(Instant::now() + self.backoff.wait());
    }

    /// Runs `f` on the connection; a failure drops it.
    fn run<T>(
        &mut self,
        f: impl FnOnce(&mut redis::Connection, &Scripts) -> redis::RedisResult<T>,
    ) -> redis::RedisResult<T> {
        self.get()?;
        let (con, scripts) = (self.con.as_mut().expect("connected"), &self.scripts);
        match f(con, scripts) {
            Ok(v) => {
                self.backoff.reset();
                self.retry_at = None;
                Ok(v)
            }
            Err(e) => {
                self.failed();
                Err(e)
            }
        }
    }
}

/// Wakes the renewal thread at once (after the subscriber re-subscribed).
#[derive(Default)]
struct Wake {
    now: Mutex<bool>,
    cv: Condvar,
}

impl Wake {
    fn signal(&self) {
        *self.now.lock().unwrap() = true;
        self.cv.notify_all();
    }

    /// Waits up to `d` or until signalled; true if signalled.
    fn wait(&self, d: Duration) -> bool {
        let g = self.now.lock().unwrap();
        let (mut g, _) = self.cv.wait_timeout_while(g, d, |now| !*now).unwrap();
        std::mem::replace(&mut *g, false)
    }
}

/// The Redis side of a process in a cluster.
pub struct Cluster {
    pub node: String,
    ttl: Duration,
    timeout: Duration,
    client: redis::Client,
    registry: Registry,
    jobs: SyncSender<(Instant, Job)>,
    renew: Wake,
    /// Publishes other processes' pushes to this process's subscribers (set once
    /// the server is built).
    publisher: OnceLock<Publisher>,
}

/// How many jobs may wait for a worker; beyond, the loop answers 503 at once.
const QUEUE: usize = 4096;

impl Cluster {
    /// Starts the workers, the subscriber and the renewal thread.
    pub fn start(
        url: &str,
        node: String,
        ttl: Duration,
        timeout: Duration,
        workers: usize,
        registry: Registry,
    ) -> redis::RedisResult<Arc<Cluster>> {
        let client = redis::Client::open(url)?;
        let (jobs, rx) = sync_channel(QUEUE);
        let cluster = Arc::new(Cluster {
            node,
            ttl,
            timeout,
            client,
            registry,
            jobs,
            renew: Wake::default(),
            publisher: OnceLock::new(),
        });
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..workers.max(1) {
            let (c, rx) = (cluster.clone(), rx.clone());
            thread::spawn(move || c.work(&rx));
        }
        let c = cluster.clone();
        thread::spawn(move || c.subscribe());
        let c = cluster.clone();
        thread::spawn(move || c.renew_loop());
        Ok(cluster)
    }

    /// Where pushes to topics from other processes are published.
    pub fn set_publisher(&self, p: Publisher) {
        let _ = self.publisher.set(p);
    }

    /// Hands a job to the workers; a full queue answers 503 at once.
    pub fn submit(&self, job: Job) {
        match self.jobs.try_send((Instant::now(), job)) {
            Ok(()) => {}
            Err(TrySendError::Full((_, job)) | TrySendError::Disconnected((_, job))) => {
                refuse(job, "too many requests waiting for redis");
            }
        }
    }

    fn link(&self) -> Link {
        Link::new(self.client.clone(), self.timeout)
    }

    /// A worker: takes jobs until the process ends.
    fn work(&self, rx: &Mutex<Receiver<(Instant, Job)>>) {
        let mut link = self.link();
        loop {
            let next = rx.lock().unwrap().recv();
            let Ok((queued, job)) = next else { return };
            if queued.elapsed() > self.timeout {
                // Its client waited a whole timeout already: Redis is slow or down.
                refuse(job, "redis did not answer in time");
                continue;
            }
            self.run_job(&mut link, job);
        }
    }

    fn run_job(&self, link: &mut Link, job: Job) {
        match job {
            Job::Push { user, body, resp } => {
                let cmd = Command::Push {
                    user: user.clone(),
                    body,
                };
                let r = self.to_holder(link, &user, &cmd);
                let _ = resp.respond(match r {
                    Ok(n) if n > 0 => mesg(200, &format!("pushed to {user}")),
                    Ok(-1) => mesg(404, &format!("client {user} not found")),
                    Ok(_) => mesg(503, &format!("the process holding {user} is unreachable")),
                    Err(e) => mesg(503, &format!("redis: {e}")),
                });
            }
            Job::Delete { user, resp } => {
                let cmd = Command::Close {
                    user: user.clone(),
                    code: CloseCode::NORMAL.0,
                    reason: "deleted by server".into(),
                    older_than: None,
                };
                let r = self.to_holder(link, &user, &cmd);
                let _ = resp.respond(match r {
                    Ok(n) if n > 0 => mesg(200, &format!("client {user} closed")),
                    Ok(-1) => mesg(404, &format!("client {user} not found")),
                    Ok(_) => mesg(503, &format!("the process holding {user} is unreachable")),
                    Err(e) => mesg(503, &format!("redis: {e}")),
                });
            }
            Job::Broadcast {
                body,
                topic,
                local,
                resp,
            } => {
                let cmd = Command::PushAll {
                    body,
                    from: self.node.clone(),
                    topic: (topic != ALL).then_some(topic),
                };
                let text = serde_json::to_string(&cmd).unwrap_or_default();
                let r = link.run(|con, _| {
                    redis::cmd("PUBLISH")
                        .arg(ALL_CHANNEL)
                        .arg(&text)
                        .query::<u64>(con)
                });
                let _ = resp.respond(match r {
                    // This process hears its own broadcast too, and ignores it.
                    Ok(n) => mesg(
                        200,
                        &format!(
                            "pushed to {local} clients here and every client of {} other processes",
                            n.saturating_sub(1)
                        ),
                    ),
                    Err(e) => mesg(
                        503,
                        &format!("pushed to {local} clients here; other processes unreachable (redis: {e})"),
                    ),
                });
            }
            Job::Register { user, stamp } => {
                let r = link.run(|con, s| {
                    redis::cmd("EVALSHA")
                        .arg(&s.register)
                        .arg(1)
                        .arg(user_key(&user))
                        .arg(&self.node)
                        .arg(stamp)
                        .arg(self.ttl.as_millis() as u64)
                        .query::<(i64, Option<String>)>(con)
                });
                match r {
                    Ok(outcome) => self.registered(link, &user, stamp, outcome),
                    // The renewal registers the user once Redis answers again.
                    Err(e) => eprintln!("redis register {user}: {e}"),
                }
            }
            Job::Unregister { user, stamp } => {
                let value = format!("{} {stamp}", self.node);
                let r = link.run(|con, s| {
                    redis::cmd("EVALSHA")
                        .arg(&s.unregister)
                        .arg(1)
                        .arg(user_key(&user))
                        .arg(&value)
                        .query::<i64>(con)
                });
                if let Err(e) = r {
                    // It expires with the TTL, unrenewed.
                    eprintln!("redis unregister {user}: {e}");
                }
            }
        }
    }

    /// Publishes `cmd` to the process holding `user` (one round trip).
    fn to_holder(&self, link: &mut Link, user: &str, cmd: &Command) -> redis::RedisResult<i64> {
        let text = serde_json::to_string(cmd).unwrap_or_default();
        link.run(|con, s| {
            redis::cmd("EVALSHA")
                .arg(&s.to_holder)
                .arg(1)
                .arg(user_key(user))
                .arg(NODE_CHANNEL)
                .arg(&text)
                .query::<i64>(con)
        })
    }

    /// Acts on a registration's outcome: a loser closes its connection (a newer one
    /// exists elsewhere); a winner tells the previous holder to close its older one.
    fn registered(
        &self,
        link: &mut Link,
        user: &str,
        stamp: u64,
        (won, previous): (i64, Option<String>),
    ) {
        if won == 0 {
            self.close_local(user, 4000, "replaced by a new connection", Some(stamp + 1));
            return;
        }
        let Some((node, _)) = previous.as_deref().and_then(|p| p.split_once(' ')) else {
            return;
        };
        let close = Command::Close {
            user: user.to_owned(),
            code: 4000,
            reason: "replaced by a new connection".into(),
            older_than: Some(stamp),
        };
        if node == self.node {
            self.apply(close);
            return;
        }
        let text = serde_json::to_string(&close).unwrap_or_default();
        let channel = format!("{NODE_CHANNEL}{node}");
        if let Err(e) = link.run(|con, _| {
            redis::cmd("PUBLISH")
                .arg(&channel)
                .arg(&text)
                .query::<u64>(con)
        }) {
            eprintln!("redis: telling {node} to close {user}: {e}");
        }
    }

    /// Closes the local connection of `user` if it connected before `older_than`.
    fn close_local(&self, user: &str, code: u16, reason: &str, older_than: Option<u64>) {
        let reg = self.registry.lock().unwrap();
        if let Some(l) = reg.get(user)
            && older_than.is_none_or(|t| l.stamp < t)
        {
            let _ = l.sender.close(CloseCode(code), reason);
        }
    }

    /// Delivers a command to the users of this process.
    fn apply(&self, cmd: Command) {
        match cmd {
            Command::Push { user, body } => {
                if let Some(l) = self.registry.lock().unwrap().get(&user) {
                    let _ = l.sender.send_json(&body);
                }
            }
            Command::PushAll { body, from, topic } => {
                // Encoded once for all of this process's subscribers.
                if from != self.node
                    && let Some(p) = self.publisher.get()
                {
                    let topic = topic.as_deref().unwrap_or(ALL);
                    let _ = p.publish(topic, &Prepared::text(body.get()));
                }
            }
            Command::Close {
                user,
                code,
                reason,
                older_than,
            } => self.close_local(&user, code, &reason, older_than),
        }
    }

    /// The subscriber: receives this process's commands and hands them to the loop
    /// through the users' Senders or the publisher. Re-dials with backoff when Redis goes away;
    /// once subscribed again, asks for every local user to be re-registered.
    fn subscribe(&self) {
        let mine = format!("{NODE_CHANNEL}{}", self.node);
        let mut backoff = Backoff::new();
        loop {
            let session = (|| -> redis::RedisResult<()> {
                let mut con = self.client.get_connection_with_timeout(self.timeout)?;
                let mut pubsub = con.as_pubsub();
                pubsub.subscribe(&[mine.as_str(), ALL_CHANNEL])?;
                backoff.reset();
                // Subscribed: a Redis that restarted empty gets our users back now.
                self.renew.signal();
                loop {
                    let msg = pubsub.get_message()?;
                    let payload: String = msg.get_payload().unwrap_or_default();
                    match serde_json::from_str::<Command>(&payload) {
                        Ok(cmd) => self.apply(cmd),
                        Err(e) => eprintln!("redis: bad command {payload:?}: {e}"),
                    }
                }
            })();
            if let Err(e) = session {
                eprintln!("redis subscriber: {e}; reconnecting");
            }
            thread::sleep(backoff.wait());
        }
    }

    /// Renews every local user's registration every third of the TTL, at once when
    /// the subscriber re-subscribed, and soon after a failed attempt.
    fn renew_loop(&self) {
        let mut link = self.link();
        let mut retry = Backoff::new();
        let mut wait = self.ttl / 3;
        loop {
            self.renew.wait(wait);
            let users: Vec<(String, u64)> = self
                .registry
                .lock()
                .unwrap()
                .iter()
                .map(|(u, l)| (u.clone(), l.stamp))
                .collect();
            let ttl = self.ttl.as_millis() as u64;
            let r = link.run(|con, s| {
                if users.is_empty() {
                    // Nothing to renew (an empty pipeline is an error to the
                    // client): a PING keeps the link checked.
                    return redis::cmd("PING").query::<String>(con).map(|_| Vec::new());
                }
                let mut pipe = redis::pipe();
                for (u, stamp) in &users {
                    pipe.cmd("EVALSHA")
                        .arg(&s.register)
                        .arg(1)
                        .arg(user_key(u))
                        .arg(&self.node)
                        .arg(*stamp)
                        .arg(ttl);
                }
                pipe.query::<Vec<(i64, Option<String>)>>(con)
            });
            match r {
                Ok(outcomes) => {
                    retry.reset();
                    wait = self.ttl / 3;
                    for ((user, stamp), outcome) in users.iter().zip(outcomes) {
                        if outcome.0 == 0 || outcome.1.is_some() {
                            self.registered(&mut link, user, *stamp, outcome);
                        }
                    }
                }
                Err(e) => {
                    eprintln!("redis renewal: {e}");
                    wait = retry.wait().min(self.ttl / 3);
                }
            }
        }
    }
}

/// Answers a job that cannot run with 503 (jobs without a client are dropped: the
/// renewal re-registers, the TTL unregisters).
fn refuse(job: Job, why: &str) {
    let resp = match job {
        Job::Push { resp, .. } | Job::Delete { resp, .. } => resp,
        Job::Broadcast { resp, local, .. } => {
            let _ = resp.respond(mesg(
                503,
                &format!("pushed to {local} clients here; other processes unreachable ({why})"),
            ));
            return;
        }
        Job::Register { .. } | Job::Unregister { .. } => return,
    };
    let _ = resp.respond(mesg(503, why));
}
