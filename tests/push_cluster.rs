//! examples/push as a cluster: two processes sharing a real Redis server (Debian's
//! `redis-server`, started here on a free port with its own directory). A push or a
//! delete received by either process reaches the user wherever the user is
//! connected; a user who reconnects elsewhere is found there (and the old
//! connection is replaced); a crashed process's users leave the registry within
//! its expiry. Also the JSON rules of the single process: the body goes out as it
//! came, an invalid body is a 400 that pushes nothing.

mod support;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use silverback::{CloseCode, Conn, Dialer, Error, Message};
use support::{Child, free_port, http, spawn_listening};

const T: Duration = Duration::from_secs(10);

/// A redis-server on a free port, in its own directory, stopped on drop; it can be
/// paused, killed and started again (empty: no persistence) on the same port.
struct Redis {
    child: Child,
    dir: TempDir,
    port: u16,
    url: String,
}

impl Redis {
    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.0.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} redis-server");
    }

    /// SIGSTOP: Redis holds every connection open and answers nothing.
    fn pause(&self) {
        self.signal("-STOP");
    }

    fn resume(&self) {
        self.signal("-CONT");
    }

    /// Killed for good (SIGKILL): connections are reset.
    fn kill(&mut self) {
        let _ = self.child.0.kill();
        let _ = self.child.0.wait();
    }

    /// Killed and started again, empty, on the same port.
    fn restart(&mut self) {
        self.kill();
        self.child = spawn_redis(self.port, &self.dir.0);
        wait_port(self.port);
    }

    fn con(&self) -> redis::Connection {
        redis::Client::open(self.url.as_str())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// The process registered for `user` (the `NODE STAMP` value's node).
    fn owner(&self, user: &str) -> Option<String> {
        let v: Option<String> = redis::cmd("GET")
            .arg(format!("silverback:push:user:{user}"))
            .query(&mut self.con())
            .unwrap();
        v.map(|v| v.split(' ').next().unwrap_or_default().to_owned())
    }

    /// Waits until `user` is registered to `node`.
    fn until_owner(&self, user: &str, node: &str) {
        let deadline = Instant::now() + T;
        while self.owner(user).as_deref() != Some(node) {
            assert!(
                Instant::now() < deadline,
                "{user} never registered to {node}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

fn spawn_redis(port: u16, dir: &std::path::Path) -> Child {
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start redis-server ({e}): install the Debian package redis-server")
        });
    Child(child)
}

fn wait_port(port: u16) {
    let deadline = Instant::now() + T;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        thread::sleep(Duration::from_millis(20));
    }
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn start_redis() -> Redis {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("silverback-redis-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let child = spawn_redis(port, &dir);
    wait_port(port);
    Redis {
        child,
        dir: TempDir(dir),
        port,
        url: format!("redis://127.0.0.1:{port}/"),
    }
}

/// Builds examples/push with the `json` feature once.
fn push_binary() -> std::path::PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    BUILT.call_once(|| {
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "--quiet",
                "--features",
                "json",
                "--example",
                "push",
            ])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building examples/push failed");
    });
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/debug/examples/push")
}

fn start_push(extra: &[&str]) -> (Child, SocketAddr) {
    let mut cmd = Command::new(push_binary());
    cmd.args(extra);
    spawn_listening(cmd)
}

fn user(addr: SocketAddr, id: &str) -> Conn<std::net::TcpStream> {
    let (mut c, _) = Dialer::new()
        .dial(&format!("ws://{addr}/getPushNews?userId={id}"))
        .unwrap();
    c.set_read_deadline(Some(Instant::now() + T));
    c
}

/// Waits until `addr` lists `id` among its users (registration is done).
fn until_listed(addr: SocketAddr, id: &str) {
    let deadline = Instant::now() + T;
    while !http(addr, "GET", "/clients", b"")
        .1
        .contains(&format!("\"{id}\""))
    {
        assert!(Instant::now() < deadline, "{id} never registered on {addr}");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_single_process_pushes_json_as_it_came_and_refuses_what_is_not_json() {
    let (_p, addr) = start_push(&[]);
    let mut alice = user(addr, "alice");
    until_listed(addr, "alice");
    let body = br#"{ "title": "for alice", "n": [1, 2.5, null] }"#;
    let (status, answer) = http(addr, "POST", "/push?userId=alice", body);
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains(r#""mesg":"pushed to alice""#), "{answer}");
    assert_eq!(
        alice.read_message().unwrap(),
        Message::Text(String::from_utf8(body.to_vec()).unwrap()),
        "the body goes out exactly as it came"
    );
    for bad in [&b"{not json"[..], b"", b"\xff\xfe"] {
        let (status, answer) = http(addr, "POST", "/push?userId=alice", bad);
        assert_eq!(status, 400, "{answer}");
        assert!(answer.contains("\"mesg\""), "{answer}");
    }
    // Nothing of the refused bodies was pushed: the next message is the next push.
    assert_eq!(http(addr, "POST", "/push?userId=alice", b"[1]").0, 200);
    assert_eq!(alice.read_message().unwrap(), Message::Text("[1]".into()));
    assert_eq!(http(addr, "POST", "/push?userId=nobody", b"{}").0, 404);
}

fn subscriber(addr: SocketAddr, id: &str, topics: &[&str]) -> Conn<std::net::TcpStream> {
    let query: String = topics.iter().map(|t| format!("&topic={t}")).collect();
    let (mut c, _) = Dialer::new()
        .dial(&format!("ws://{addr}/getPushNews?userId={id}{query}"))
        .unwrap();
    c.set_read_deadline(Some(Instant::now() + T));
    c
}

fn text(c: &mut Conn<std::net::TcpStream>) -> String {
    match c.read_message().unwrap() {
        Message::Text(t) => t,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_single_process_pushes_to_topics_and_to_everyone() {
    let (_p, addr) = start_push(&[]);
    let mut alice = subscriber(addr, "alice", &["sport", "news"]);
    let mut bob = subscriber(addr, "bob", &["news"]);
    let mut carol = subscriber(addr, "carol", &[]);
    for id in ["alice", "bob", "carol"] {
        until_listed(addr, id);
    }
    let (status, answer) = http(addr, "POST", "/push?topic=sport", br#"{"score":"2-1"}"#);
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer.contains("pushed to 1 clients of topic sport"),
        "{answer}"
    );
    let (status, answer) = http(addr, "POST", "/push?topic=news", br#"{"n":1}"#);
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer.contains("pushed to 2 clients of topic news"),
        "{answer}"
    );
    let (status, answer) = http(addr, "POST", "/push?topic=weather", b"{}");
    assert!(
        status == 200 && answer.contains("pushed to 0 clients"),
        "{answer}"
    );
    let (status, answer) = http(addr, "POST", "/push", br#"{"all":1}"#);
    assert!(
        status == 200 && answer.contains("pushed to 3 clients"),
        "{answer}"
    );
    assert_eq!(text(&mut alice), r#"{"score":"2-1"}"#);
    assert_eq!(text(&mut alice), r#"{"n":1}"#);
    assert_eq!(text(&mut alice), r#"{"all":1}"#);
    assert_eq!(text(&mut bob), r#"{"n":1}"#);
    assert_eq!(text(&mut bob), r#"{"all":1}"#);
    assert_eq!(
        text(&mut carol),
        r#"{"all":1}"#,
        "no topic: only pushes to all"
    );
    // Everyone is in `all`, alice in two topics, bob in one.
    let metrics = http(addr, "GET", "/metrics", b"").1;
    assert!(
        metrics.contains("silverback_subscriptions 6\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("silverback_publish_deliveries_total 6\n"),
        "{metrics}"
    );
    // An empty topic is refused, on connect and on push.
    assert_eq!(http(addr, "POST", "/push?topic=", b"{}").0, 400);
    let refused = Dialer::new().dial(&format!("ws://{addr}/getPushNews?userId=dan&topic="));
    assert!(refused.is_err(), "an empty topic on connect is refused");
    // A closed connection's topics go with it.
    drop(alice);
    let deadline = Instant::now() + T;
    while !http(addr, "GET", "/metrics", b"")
        .1
        .contains("silverback_subscriptions 3\n")
    {
        assert!(Instant::now() < deadline, "alice's subscriptions stayed");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_push_to_a_topic_reaches_its_subscribers_on_every_process() {
    let redis = start_redis();
    let (_a, a) = node(&redis, "a", &[]);
    let (_b, b) = node(&redis, "b", &[]);
    let mut x = subscriber(a, "x", &["room"]);
    let mut y = subscriber(b, "y", &["room"]);
    let mut z = subscriber(b, "z", &[]);
    for (id, node) in [("x", "a"), ("y", "b"), ("z", "b")] {
        redis.until_owner(id, node);
    }
    let (status, answer) = http(a, "POST", "/push?topic=room", br#"{"room":1}"#);
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer.contains("pushed to 1 clients here and every client of 1 other processes"),
        "{answer}"
    );
    let (status, answer) = http(b, "POST", "/push", br#"{"all":1}"#);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(text(&mut x), r#"{"room":1}"#);
    assert_eq!(text(&mut y), r#"{"room":1}"#);
    assert_eq!(text(&mut x), r#"{"all":1}"#);
    assert_eq!(text(&mut y), r#"{"all":1}"#);
    assert_eq!(text(&mut z), r#"{"all":1}"#, "z is not in the room");
}

#[test]
fn pushes_and_deletes_reach_users_on_any_process_of_the_cluster() {
    let redis = start_redis();
    let (_a, a) = node(&redis, "a", &["--registry-ttl", "1.5"]);
    let (mut b_proc, b) = node(&redis, "b", &["--registry-ttl", "1.5"]);

    // user1 on a; a push and a broadcast received by b reach it.
    let mut u1 = user(a, "user1");
    redis.until_owner("user1", "a");
    let (status, answer) = http(b, "POST", "/push?userId=user1", br#"{"via":"b"}"#);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        u1.read_message().unwrap(),
        Message::Text(r#"{"via":"b"}"#.into())
    );
    let mut u2 = user(b, "user2");
    redis.until_owner("user2", "b");
    assert_eq!(http(a, "POST", "/push", br#"{"all":true}"#).0, 200);
    assert_eq!(
        u1.read_message().unwrap(),
        Message::Text(r#"{"all":true}"#.into())
    );
    assert_eq!(
        u2.read_message().unwrap(),
        Message::Text(r#"{"all":true}"#.into())
    );

    // user1 reconnects to b: found there, and the old connection on a is replaced.
    let mut u1b = user(b, "user1");
    redis.until_owner("user1", "b");
    match u1.read_message() {
        Err(Error::Closed(f)) => assert_eq!(f.code, CloseCode(4000)),
        other => panic!("the old connection was not replaced: {other:?}"),
    }
    let (status, answer) = http(a, "POST", "/push?userId=user1", br#"{"via":"a"}"#);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        u1b.read_message().unwrap(),
        Message::Text(r#"{"via":"a"}"#.into())
    );

    // A delete received by a closes user1 on b.
    let (status, answer) = http(a, "DELETE", "/deleteClient/user1", b"");
    assert_eq!(status, 200, "{answer}");
    match u1b.read_message() {
        Err(Error::Closed(f)) => {
            assert_eq!(
                (f.code, f.reason.as_str()),
                (CloseCode::NORMAL, "deleted by server")
            )
        }
        other => panic!("{other:?}"),
    }
    // The registry entry goes once b has run its close handler, which can be just
    // after the client saw the close frame: a push finds nobody shortly after.
    let deadline = Instant::now() + T;
    while http(a, "POST", "/push?userId=user1", b"{}").0 != 404 {
        assert!(
            Instant::now() < deadline,
            "user1 stayed registered after the delete"
        );
        thread::sleep(Duration::from_millis(20));
    }

    // b crashes with user2 connected: user2 leaves the registry in Redis within
    // its expiry (1.5 s), since nobody renews it any more.
    // Renewed while b lives: still there after more than one expiry.
    thread::sleep(Duration::from_millis(2000));
    assert_eq!(redis.owner("user2").as_deref(), Some("b"));
    let _ = b_proc.0.kill();
    let _ = b_proc.0.wait();
    let crashed = Instant::now();
    while redis.owner("user2").is_some() {
        assert!(
            crashed.elapsed() < Duration::from_millis(1500 + 1000),
            "user2 stayed in the registry after b crashed"
        );
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(http(a, "POST", "/push?userId=user2", b"{}").0, 404);
    drop(u2);
}

// ---- faults: Redis paused, restarted empty, gone; two owners after a partition ----

/// Two push processes on `redis` with short timeouts (Redis calls 0.3 s, registry
/// expiry 3 s).
fn cluster_of_two(redis: &Redis) -> ((Child, SocketAddr), (Child, SocketAddr)) {
    let short = ["--registry-ttl", "3", "--redis-timeout", "0.3"];
    (node(redis, "a", &short), node(redis, "b", &short))
}

/// A push process of the cluster on `redis`, named `name`.
fn node(redis: &Redis, name: &str, extra: &[&str]) -> (Child, SocketAddr) {
    let mut args = vec!["--redis", &redis.url, "--node", name];
    args.extend_from_slice(extra);
    start_push(&args)
}

/// A connection that pings every 20 ms and records each pong's round trip, on its
/// own thread, until `stop`; returns the round trips (and how many pings got none
/// within 1 s).
fn bystander(
    addr: SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> thread::JoinHandle<(Vec<Duration>, usize)> {
    use std::sync::atomic::Ordering;
    let mut c = user(addr, "bystander");
    thread::spawn(move || {
        let pong = std::sync::Arc::new(std::sync::Mutex::new(None::<Instant>));
        let seen = pong.clone();
        c.set_pong_handler(move |_, ctl| {
            *seen.lock().unwrap() = Some(Instant::now());
            // Return from the read at once.
            ctl.set_read_deadline(Some(Instant::now()));
            Ok(())
        });
        let (mut rtts, mut missing) = (Vec::new(), 0);
        // Bounded by the caller's stop (and 60 s at most).
        for _ in 0..3000 {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            *pong.lock().unwrap() = None;
            let sent = Instant::now();
            c.write_control(silverback::OpCode::Ping, b"hb", None)
                .unwrap();
            c.set_read_deadline(Some(sent + Duration::from_secs(1)));
            match c.read_message() {
                Err(Error::Timeout) => {}
                other => panic!("bystander: {other:?}"),
            }
            match *pong.lock().unwrap() {
                Some(at) => rtts.push(at - sent),
                None => missing += 1,
            }
            thread::sleep(Duration::from_millis(20));
        }
        (rtts, missing)
    })
}

/// Reads messages until `want` arrives (others, such as pushes refused with 503
/// during a pause that Redis ran after it, may come first).
fn read_until(c: &mut Conn<std::net::TcpStream>, want: &str) {
    for _ in 0..100 {
        match c.read_message() {
            Ok(Message::Text(t)) if t == want => return,
            Ok(_) => {}
            Err(e) => panic!("waiting for {want}: {e}"),
        }
    }
    panic!("{want} never came");
}

#[test]
fn a_paused_redis_holds_up_no_websocket_traffic_and_cross_process_pushes_get_503() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let redis = start_redis();
    let ((_a, a), (_b, b)) = cluster_of_two(&redis);
    let mut u1 = user(a, "u1");
    redis.until_owner("u1", "a");
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let pinger = bystander(a, stop.clone());
    thread::sleep(Duration::from_millis(300));

    redis.pause();
    let paused = Instant::now();
    // While Redis is paused for 3 s: cross-process pushes are refused with 503
    // within about the Redis timeout; local pushes and deletes work.
    let mut refused = 0;
    while paused.elapsed() < Duration::from_millis(2500) {
        let t = Instant::now();
        let (status, answer) = http(b, "POST", "/push?userId=u1", br#"{"during":"pause"}"#);
        assert_eq!(status, 503, "{answer}");
        assert!(
            t.elapsed() < Duration::from_millis(1500),
            "503 took {:?}",
            t.elapsed()
        );
        refused += 1;
        let (status, answer) = http(a, "POST", "/push?userId=u1", br#"{"local":1}"#);
        assert_eq!(status, 200, "{answer}");
        read_until(&mut u1, r#"{"local":1}"#);
    }
    assert!(refused >= 2);
    let mut gone = user(a, "gone");
    assert_eq!(http(a, "GET", "/deleteClient/gone", b"").0, 200);
    assert!(matches!(gone.read_message(), Err(Error::Closed(_))));
    while paused.elapsed() < Duration::from_secs(3) {
        thread::sleep(Duration::from_millis(20));
    }
    redis.resume();

    // After the pause: delivered again (retried until the worker's backoff ends).
    let deadline = Instant::now() + T;
    loop {
        let (status, _) = http(b, "POST", "/push?userId=u1", br#"{"after":"pause"}"#);
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "cross-process pushes never came back"
        );
        thread::sleep(Duration::from_millis(50));
    }
    read_until(&mut u1, r#"{"after":"pause"}"#);
    stop.store(true, Ordering::Relaxed);
    let (rtts, missing) = pinger.join().unwrap();
    let worst = rtts.iter().max().copied().unwrap_or_default();
    assert_eq!(missing, 0, "pings without a pong");
    assert!(rtts.len() > 50, "{} pings", rtts.len());
    assert!(worst < Duration::from_millis(100), "slowest pong {worst:?}");
}

#[test]
fn after_redis_restarts_empty_pushes_reach_users_connected_before_without_reconnecting() {
    let mut redis = start_redis();
    let ((_a, a), (_b, b)) = cluster_of_two(&redis);
    let mut u1 = user(a, "u1");
    let mut u2 = user(b, "u2");
    redis.until_owner("u1", "a");
    redis.until_owner("u2", "b");
    assert_eq!(http(b, "POST", "/push?userId=u1", br#"{"n":0}"#).0, 200);
    read_until(&mut u1, r#"{"n":0}"#);

    redis.restart();
    let restarted = Instant::now();
    // Both processes re-dial, re-subscribe and re-register their users at once.
    let mut n = 0;
    for (from, to, conn) in [(b, "u1", &mut u1), (a, "u2", &mut u2)] {
        loop {
            n += 1;
            let body = format!(r#"{{"n":{n}}}"#);
            let (status, answer) =
                http(from, "POST", &format!("/push?userId={to}"), body.as_bytes());
            if status == 200 {
                read_until(conn, &body);
                break;
            }
            assert!([404, 503].contains(&status), "{status} {answer}");
            assert!(
                restarted.elapsed() < Duration::from_secs(6),
                "{to} unreachable {:?} after the restart",
                restarted.elapsed()
            );
            thread::sleep(Duration::from_millis(25));
        }
    }
    assert_eq!(redis.owner("u1").as_deref(), Some("a"));
    assert_eq!(redis.owner("u2").as_deref(), Some("b"));
}

#[test]
fn with_redis_gone_processes_keep_serving_local_users_and_refuse_the_rest_with_503() {
    let mut redis = start_redis();
    let ((_a, a), (_b, b)) = cluster_of_two(&redis);
    let mut u1 = user(a, "u1");
    redis.until_owner("u1", "a");
    redis.kill();
    for i in 0..5 {
        // Local: delivered. Cross-process: refused, promptly.
        let body = format!(r#"{{"i":{i}}}"#);
        assert_eq!(http(a, "POST", "/push?userId=u1", body.as_bytes()).0, 200);
        read_until(&mut u1, &body);
        let t = Instant::now();
        let (status, answer) = http(b, "POST", "/push?userId=u1", b"{}");
        assert_eq!(status, 503, "{answer}");
        assert!(answer.contains("\"mesg\""), "{answer}");
        assert!(t.elapsed() < Duration::from_millis(1500));
        // A broadcast reaches the local users and says the rest was not reached.
        let (status, answer) = http(a, "POST", "/push", br#"{"all":1}"#);
        assert_eq!(status, 503, "{answer}");
        assert!(answer.contains("pushed to 1 clients here"), "{answer}");
        read_until(&mut u1, r#"{"all":1}"#);
    }
    // New users connect and are served locally.
    let mut u3 = user(b, "u3");
    until_listed(b, "u3");
    assert_eq!(http(b, "POST", "/push?userId=u3", br#"{"x":3}"#).0, 200);
    read_until(&mut u3, r#"{"x":3}"#);
    assert_eq!(http(b, "GET", "/deleteClient/u3", b"").0, 200);
}

#[test]
fn a_user_held_by_two_processes_after_an_outage_ends_with_the_newest_connection() {
    let mut redis = start_redis();
    let ((_a, a), (_b, b)) = cluster_of_two(&redis);
    let mut old = user(a, "twice");
    redis.until_owner("twice", "a");
    redis.kill();
    // During the outage the user connects again, to b: neither process can tell
    // the other.
    thread::sleep(Duration::from_millis(50));
    let mut new = user(b, "twice");
    until_listed(b, "twice");
    redis.restart();
    // Both re-register; the newer connection (b's) wins, a closes its own with 4000.
    match old.read_message() {
        Err(Error::Closed(f)) => assert_eq!(f.code, CloseCode(4000)),
        other => panic!("the older connection was not replaced: {other:?}"),
    }
    redis.until_owner("twice", "b");
    let deadline = Instant::now() + T;
    loop {
        let (status, _) = http(a, "POST", "/push?userId=twice", br#"{"to":"newest"}"#);
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline);
        thread::sleep(Duration::from_millis(25));
    }
    read_until(&mut new, r#"{"to":"newest"}"#);
}
