//! examples/push as a cluster: two processes sharing a real Redis server (Debian's
//! `redis-server`, started here on a free port with its own directory). A push or a
//! delete received by either process reaches the user wherever the user is
//! connected; a user who reconnects elsewhere is found there (and the old
//! connection is replaced); a crashed process's users leave the registry within
//! its expiry. Also the JSON rules of the single process: the body goes out as it
//! came, an invalid body is a 400 that pushes nothing.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use silverback::{CloseCode, Conn, Dialer, Error, Message};
use support::{Child, http};

const T: Duration = Duration::from_secs(10);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A redis-server on a free port, in its own directory, stopped on drop.
struct Redis {
    _child: Child,
    _dir: TempDir,
    url: String,
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
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start redis-server ({e}): install the Debian package redis-server")
        });
    let child = Child(child);
    let deadline = Instant::now() + T;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        thread::sleep(Duration::from_millis(20));
    }
    Redis {
        _child: child,
        _dir: TempDir(dir),
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
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let child = Child(
        Command::new(push_binary())
            .arg("--addr")
            .arg(addr.to_string())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn push"),
    );
    let deadline = Instant::now() + T;
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "push did not start");
        thread::sleep(Duration::from_millis(20));
    }
    (child, addr)
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

#[test]
fn pushes_and_deletes_reach_users_on_any_process_of_the_cluster() {
    let redis = start_redis();
    let node = |name: &str| {
        start_push(&[
            "--redis",
            &redis.url,
            "--node",
            name,
            "--registry-ttl",
            "1.5",
        ])
    };
    let (_a, a) = node("a");
    let (mut b_proc, b) = node("b");

    // user1 on a; a push and a broadcast received by b reach it.
    let mut u1 = user(a, "user1");
    until_listed(a, "user1");
    let (status, answer) = http(b, "POST", "/push?userId=user1", br#"{"via":"b"}"#);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        u1.read_message().unwrap(),
        Message::Text(r#"{"via":"b"}"#.into())
    );
    let mut u2 = user(b, "user2");
    until_listed(b, "user2");
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
    until_listed(b, "user1");
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
    let mut r = redis::Client::open(redis.url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let owner = |r: &mut redis::Connection| -> Option<String> {
        redis::cmd("GET")
            .arg("silverback:push:user:user2")
            .query(r)
            .unwrap()
    };
    // Renewed while b lives: still there after more than one expiry.
    thread::sleep(Duration::from_millis(2000));
    assert_eq!(owner(&mut r).as_deref(), Some("b"));
    let _ = b_proc.0.kill();
    let _ = b_proc.0.wait();
    let crashed = Instant::now();
    while owner(&mut r).is_some() {
        assert!(
            crashed.elapsed() < Duration::from_millis(1500 + 1000),
            "user2 stayed in the registry after b crashed"
        );
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(http(a, "POST", "/push?userId=user2", b"{}").0, 404);
    drop(u2);
}
