//! The event loop over real loopback sockets: many connections, cross-thread push,
//! broadcast, heartbeat, handshake deadline, back-pressure, graceful shutdown, and
//! the tutorial's push example end to end.

mod support;

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use silverback::event::{
    Backpressure, Client, Ctx, Delivery, Handler, MessageRef, Prepared, Sender, Server,
    ServerHandle,
};
use silverback::{CloseCode, Dialer, Error, Message, MessageKind};
use support::*;

const T: Duration = Duration::from_secs(20);

struct Echo;

impl Handler for Echo {
    type Data = ();
    fn on_message(&mut self, ctx: &mut Ctx<'_, ()>, msg: MessageRef<'_>) {
        let _ = ctx.send(msg.kind, msg.data);
    }
}

fn spawn_echo(workers: usize) -> ServerHandle {
    let server = Server::builder()
        .addr("127.0.0.1:0")
        .workers(workers)
        .build(|_| Echo)
        .unwrap();
    server.spawn().unwrap().0
}

// ---- many connections ----

/// Client side of the load test: each connection sends `MSGS` numbered messages one
/// after another and checks every echo arrives, in order.
const MSGS: u32 = 20;

#[derive(Default)]
struct Seq {
    expect: u32,
}

#[derive(Default)]
struct Load {
    opened: usize,
    finished: usize,
    errors: Vec<String>,
}

impl Handler for Load {
    type Data = Seq;
    fn on_open(&mut self, ctx: &mut Ctx<'_, Seq>) {
        self.opened += 1;
        ctx.send_text("0").unwrap();
    }
    fn on_message(&mut self, ctx: &mut Ctx<'_, Seq>, msg: MessageRef<'_>) {
        let got: u32 = msg.text().and_then(|t| t.parse().ok()).unwrap_or(u32::MAX);
        let expect = ctx.data().expect;
        if got != expect {
            self.errors
                .push(format!("{}: got {got}, expected {expect}", ctx.id()));
        }
        ctx.data().expect += 1;
        if expect + 1 == MSGS {
            ctx.close(CloseCode::NORMAL, "done").unwrap();
        } else {
            // Alternate sizes so some echoes span several reads.
            let body = if expect % 3 == 0 {
                format!("{}{}", expect + 1, "")
            } else {
                (expect + 1).to_string()
            };
            ctx.send_text(&body).unwrap();
        }
    }
    fn on_close(&mut self, ctx: &mut Ctx<'_, Seq>, code: CloseCode, _: &str) {
        if ctx.data().expect == MSGS && code == CloseCode::NORMAL {
            self.finished += 1;
        } else {
            self.errors.push(format!(
                "{} closed early: {code} after {}",
                ctx.id(),
                ctx.data().expect
            ));
        }
    }
    fn on_error(&mut self, ctx: &mut Ctx<'_, Seq>, err: &Error) {
        self.errors.push(format!("{}: {err}", ctx.id()));
    }
}

#[test]
fn two_thousand_connections_echo_in_order_on_one_client_loop() {
    let server = spawn_echo(2);
    let mut client = Client::builder().build(Load::default()).unwrap();
    let url = format!("ws://{}/", server.local_addr());
    const N: usize = 2000;
    for _ in 0..N {
        client.connect(&url, Seq::default()).unwrap();
    }
    let started = Instant::now();
    let guard = client.handle();
    let watchdog = thread::spawn(move || {
        thread::sleep(T);
        guard.shutdown(Duration::ZERO);
    });
    client.run().unwrap();
    drop(watchdog);
    let h = client.handler();
    assert!(
        h.errors.is_empty(),
        "{:?}",
        &h.errors[..h.errors.len().min(10)]
    );
    assert_eq!(h.opened, N);
    assert_eq!(
        h.finished, N,
        "all {N} connections echoed {MSGS} messages in order"
    );
    assert!(started.elapsed() < T);
    server.shutdown(Duration::from_secs(1));
}

// ---- cross-thread push and broadcast ----

struct Registering {
    senders: Arc<Mutex<Vec<Sender>>>,
}

impl Handler for Registering {
    type Data = ();
    fn on_open(&mut self, ctx: &mut Ctx<'_, ()>) {
        let s = ctx.sender();
        self.senders.lock().unwrap().push(s);
    }
}

#[derive(Default)]
struct Counter {
    got: HashMap<String, usize>,
    per_conn_only: usize,
    closed: usize,
}

impl Handler for Counter {
    type Data = ();
    fn on_message(&mut self, ctx: &mut Ctx<'_, ()>, msg: MessageRef<'_>) {
        let t = msg.text().unwrap_or("").to_owned();
        if t == "only you" {
            self.per_conn_only += 1;
        }
        *self.got.entry(t.clone()).or_default() += 1;
        if t == "bye" {
            ctx.close(CloseCode::NORMAL, "").unwrap();
        }
    }
    fn on_close(&mut self, _: &mut Ctx<'_, ()>, _: CloseCode, _: &str) {
        self.closed += 1;
    }
}

#[test]
fn push_from_another_thread_and_broadcast_to_a_thousand() {
    let senders = Arc::new(Mutex::new(Vec::new()));
    let s2 = senders.clone();
    let (server, _) = Server::builder()
        .addr("127.0.0.1:0")
        .workers(2)
        .build(move |_| Registering {
            senders: s2.clone(),
        })
        .unwrap()
        .spawn()
        .unwrap();
    const N: usize = 1000;
    let url = format!("ws://{}/", server.local_addr());
    let (done_tx, done_rx) = mpsc::channel();
    let client_thread = thread::spawn(move || {
        let mut client = Client::builder().build(Counter::default()).unwrap();
        for _ in 0..N {
            client.connect(&url, ()).unwrap();
        }
        client.run().unwrap();
        done_tx.send(()).unwrap();
        std::mem::take(client.handler_mut())
    });
    let deadline = Instant::now() + T;
    while senders.lock().unwrap().len() < N {
        assert!(Instant::now() < deadline, "clients did not all connect");
        thread::sleep(Duration::from_millis(10));
    }
    // From this (non-loop) thread: one connection, then everyone, then goodbye.
    let one = senders.lock().unwrap()[N / 2].clone();
    one.send_text("only you").unwrap();
    server.broadcast(&Prepared::text("to everyone"));
    for s in senders.lock().unwrap().iter() {
        s.send_text("bye").unwrap();
    }
    done_rx.recv_timeout(T).expect("clients finished");
    let counts = client_thread.join().unwrap();
    assert_eq!(counts.per_conn_only, 1);
    assert_eq!(counts.got.get("to everyone"), Some(&N));
    assert_eq!(counts.closed, N);
    // Every connection is gone: its Sender says so and refuses politely.
    let deadline = Instant::now() + T;
    while one.is_alive() {
        assert!(Instant::now() < deadline);
        thread::sleep(Duration::from_millis(5));
    }
    assert!(matches!(one.send_text("late"), Err(Error::AlreadyClosed)));
    assert!(matches!(
        one.close(CloseCode::NORMAL, ""),
        Err(Error::AlreadyClosed)
    ));
    server.shutdown(Duration::from_secs(1));
}

// ---- heartbeat ----

struct Reporting {
    tx: Mutex<mpsc::Sender<(CloseCode, String)>>,
}

impl Handler for Reporting {
    type Data = ();
    fn on_close(&mut self, _: &mut Ctx<'_, ()>, code: CloseCode, reason: &str) {
        let _ = self.tx.lock().unwrap().send((code, reason.to_owned()));
    }
    fn on_message(&mut self, ctx: &mut Ctx<'_, ()>, msg: MessageRef<'_>) {
        let _ = ctx.send(msg.kind, msg.data);
    }
}

fn reporting_server(
    b: silverback::event::ServerBuilder,
) -> (ServerHandle, mpsc::Receiver<(CloseCode, String)>) {
    let (tx, rx) = mpsc::channel();
    let tx = Arc::new(Mutex::new(tx));
    let server = b
        .addr("127.0.0.1:0")
        .build(move |_| Reporting {
            tx: Mutex::new(tx.lock().unwrap().clone()),
        })
        .unwrap();
    (server.spawn().unwrap().0, rx)
}

#[test]
fn heartbeat_drops_a_peer_that_never_answers() {
    let (server, closed) = reporting_server(
        Server::builder().heartbeat(Duration::from_millis(100), Duration::from_millis(200)),
    );
    let started = Instant::now();
    let mut peer = RawPeer::handshake(server.local_addr(), "/");
    let ping = peer.read_frame().expect("a ping");
    assert_eq!(ping.opcode, 0x9);
    assert!(peer.at_eof(), "server dropped the silent peer");
    let (code, reason) = closed.recv_timeout(T).unwrap();
    assert_eq!(
        (code, reason.as_str()),
        (CloseCode::ABNORMAL, "pong timeout")
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn heartbeat_keeps_a_peer_that_answers() {
    let (server, closed) = reporting_server(
        Server::builder().heartbeat(Duration::from_millis(50), Duration::from_millis(150)),
    );
    let (mut c, _) = Dialer::new()
        .dial(&format!("ws://{}/", server.local_addr()))
        .unwrap();
    // The blocking client's default ping handler answers while it reads.
    c.set_read_deadline(Some(Instant::now() + Duration::from_millis(800)));
    assert!(matches!(c.read_message(), Err(Error::Timeout)));
    c.set_read_deadline(Some(Instant::now() + T));
    c.write_message(MessageKind::Text, b"still here").unwrap();
    assert_eq!(
        c.read_message().unwrap(),
        Message::Text("still here".into())
    );
    assert!(closed.try_recv().is_err(), "not dropped");
}

// ---- handshake deadline ----

#[test]
fn handshake_deadline_drops_a_dribbling_peer() {
    let (server, _) =
        reporting_server(Server::builder().handshake_timeout(Duration::from_millis(300)));
    let mut peer = RawPeer::connect(server.local_addr());
    let request = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {RFC_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    let started = Instant::now();
    let mut dropped = false;
    for b in request.bytes() {
        if peer.stream.write_all(&[b]).is_err() {
            dropped = true;
            break;
        }
        thread::sleep(Duration::from_millis(100));
        if started.elapsed() > Duration::from_millis(600) {
            peer.stream
                .set_read_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            dropped = peer.at_eof();
            break;
        }
    }
    assert!(
        dropped,
        "the server dropped a peer sending one byte per 100 ms"
    );
}

#[test]
fn oversized_head_gets_431_and_plain_http_gets_426() {
    let (server, _) = reporting_server(Server::builder().max_head_size(1024));
    let mut peer = RawPeer::connect(server.local_addr());
    peer.send(format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(2000)).as_bytes());
    assert_eq!(peer.read_status(), 431);
    let (status, _) = http(server.local_addr(), "GET", "/", b"");
    assert_eq!(status, 426);
}

#[test]
fn full_loop_answers_503() {
    let (server, _) = reporting_server(Server::builder().max_connections(2));
    let _a = RawPeer::handshake(server.local_addr(), "/");
    let _b = RawPeer::handshake(server.local_addr(), "/");
    let mut c = RawPeer::connect(server.local_addr());
    assert_eq!(c.read_status(), 503);
}

// ---- back-pressure ----

struct Measuring {
    max_buffered: Arc<AtomicUsize>,
    closes: Arc<Mutex<Vec<CloseCode>>>,
}

impl Handler for Measuring {
    type Data = ();
    fn on_message(&mut self, ctx: &mut Ctx<'_, ()>, msg: MessageRef<'_>) {
        let _ = ctx.send(msg.kind, msg.data);
        self.max_buffered
            .fetch_max(ctx.buffered(), Ordering::SeqCst);
    }
    fn on_close(&mut self, _: &mut Ctx<'_, ()>, code: CloseCode, _: &str) {
        self.closes.lock().unwrap().push(code);
    }
}

fn flood_without_reading(policy: Backpressure) -> (usize, Vec<CloseCode>, usize) {
    const LIMIT: usize = 256 * 1024;
    let max_buffered = Arc::new(AtomicUsize::new(0));
    let closes = Arc::new(Mutex::new(Vec::new()));
    let (m, c) = (max_buffered.clone(), closes.clone());
    let (server, _) = Server::builder()
        .addr("127.0.0.1:0")
        .max_output_buffer(LIMIT)
        .backpressure(policy)
        .close_timeout(Duration::from_millis(300))
        .build(move |_| Measuring {
            max_buffered: m.clone(),
            closes: c.clone(),
        })
        .unwrap()
        .spawn()
        .unwrap();
    let peer = RawPeer::handshake(server.local_addr(), "/");
    peer.stream
        .set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let frame = cframe(0x82, &vec![7u8; 64 * 1024]);
    let mut sent = 0usize;
    let mut s = &peer.stream;
    for _ in 0..2000 {
        if s.write_all(&frame).is_err() {
            break;
        }
        sent += 1;
    }
    thread::sleep(Duration::from_millis(800));
    let max = max_buffered.load(Ordering::SeqCst);
    let codes = closes.lock().unwrap().clone();
    server.shutdown(Duration::ZERO);
    (max, codes, sent)
}

#[test]
fn a_peer_that_never_reads_does_not_grow_server_memory() {
    let (max, closes, sent) = flood_without_reading(Backpressure::Pause);
    // The peer could only push a bounded amount before the server stopped reading.
    assert!(
        sent < 2000,
        "the server stopped reading (sent {sent} frames)"
    );
    assert!(
        max <= 256 * 1024 + 64 * 1024 + 16,
        "queued output {max} stayed within the limit plus one message"
    );
    assert!(closes.is_empty(), "paused, not closed: {closes:?}");
}

#[test]
fn backpressure_close_policy_closes_the_slow_peer() {
    let (max, closes, _) = flood_without_reading(Backpressure::Close(CloseCode::TRY_AGAIN_LATER));
    assert!(max <= 256 * 1024 + 64 * 1024 + 16, "{max}");
    assert_eq!(closes, vec![CloseCode::TRY_AGAIN_LATER]);
}

// ---- streaming receive and send in the loop ----

#[derive(Default)]
struct Streamer {
    chunks: usize,
    total: u64,
    max_chunk: usize,
}

impl Handler for Streamer {
    type Data = ();
    fn on_message_start(&mut self, _: &mut Ctx<'_, ()>, _: MessageKind) -> Delivery {
        Delivery::Stream
    }
    fn on_chunk(&mut self, _: &mut Ctx<'_, ()>, data: &[u8]) {
        self.chunks += 1;
        self.total += data.len() as u64;
        self.max_chunk = self.max_chunk.max(data.len());
    }
    fn on_message_end(&mut self, ctx: &mut Ctx<'_, ()>) {
        // Answer with a streamed message of the same length, through the io::Write.
        let total = self.total;
        let mut w = ctx.writer(MessageKind::Binary).unwrap();
        let block = [0x5au8; 10_000];
        let mut left = total;
        while left > 0 {
            let n = left.min(block.len() as u64) as usize;
            w.write_all(&block[..n]).unwrap();
            left -= n as u64;
        }
        w.close().unwrap();
    }
}

#[test]
fn streaming_receive_and_streaming_send_in_the_loop() {
    let (server, _) = Server::builder()
        .addr("127.0.0.1:0")
        .read_buffer_size(16 * 1024)
        .write_buffer_size(32 * 1024)
        .max_output_buffer(64 << 20)
        .build(|_| Streamer::default())
        .unwrap()
        .spawn()
        .unwrap();
    let (mut c, _) = Dialer::new()
        .dial(&format!("ws://{}/", server.local_addr()))
        .unwrap();
    c.set_read_deadline(Some(Instant::now() + T));
    const SIZE: usize = 8 << 20;
    {
        let mut w = c.next_writer(MessageKind::Binary).unwrap();
        w.write_all(&vec![1u8; SIZE]).unwrap();
        w.close().unwrap();
    }
    let m = c.read_message().unwrap();
    assert_eq!(m.len(), SIZE);
    assert!(m.as_bytes().iter().all(|&b| b == 0x5a));
}

// ---- graceful shutdown ----

#[test]
fn graceful_shutdown_sends_1001_and_returns_within_the_deadline() {
    let server = Server::builder()
        .addr("127.0.0.1:0")
        .build(|_| Echo)
        .unwrap();
    let addr = server.local_addr();
    let (handle, joined) = server.spawn().unwrap();
    let clients: Vec<_> = (0..50)
        .map(|_| {
            let (mut c, _) = Dialer::new().dial(&format!("ws://{addr}/")).unwrap();
            c.set_read_deadline(Some(Instant::now() + T));
            c
        })
        .collect();
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut c| thread::spawn(move || c.read_message()))
        .collect();
    let started = Instant::now();
    handle.shutdown(Duration::from_secs(2));
    joined.join().unwrap().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "run returned within the deadline"
    );
    for r in readers {
        match r.join().unwrap() {
            Err(Error::Closed(f)) => assert_eq!(f.code, CloseCode::GOING_AWAY),
            other => panic!("{other:?}"),
        }
    }
}

// ---- user timers ----

struct Ticks {
    fired: Arc<Mutex<Vec<u64>>>,
}

impl Handler for Ticks {
    type Data = Option<silverback::event::TimerId>;
    fn on_open(&mut self, ctx: &mut Ctx<'_, Self::Data>) {
        ctx.set_timer(Duration::from_millis(30), 1);
        let id = ctx.set_interval(Duration::from_millis(20), 2);
        *ctx.data() = Some(id);
        let cancelled = ctx.set_timer(Duration::from_millis(10), 3);
        assert!(ctx.cancel_timer(cancelled));
    }
    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self::Data>, token: u64) {
        let mut f = self.fired.lock().unwrap();
        f.push(token);
        if f.iter().filter(|&&t| t == 2).count() == 3 {
            let id = ctx.data().take().unwrap();
            assert!(ctx.cancel_timer(id));
            let _ = ctx.send_text("done");
        }
    }
}

#[test]
fn one_shot_interval_and_cancelled_timers() {
    let fired = Arc::new(Mutex::new(Vec::new()));
    let f2 = fired.clone();
    let (server, _) = Server::builder()
        .addr("127.0.0.1:0")
        .build(move |_| Ticks { fired: f2.clone() })
        .unwrap()
        .spawn()
        .unwrap();
    let (mut c, _) = Dialer::new()
        .dial(&format!("ws://{}/", server.local_addr()))
        .unwrap();
    c.set_read_deadline(Some(Instant::now() + T));
    assert_eq!(c.read_message().unwrap(), Message::Text("done".into()));
    thread::sleep(Duration::from_millis(100));
    let f = fired.lock().unwrap().clone();
    assert_eq!(f.iter().filter(|&&t| t == 1).count(), 1, "{f:?}");
    assert_eq!(f.iter().filter(|&&t| t == 2).count(), 3, "{f:?}");
    assert!(!f.contains(&3), "{f:?}");
}

// ---- the tutorial's push example, end to end ----

#[test]
fn push_example_end_to_end() {
    let (_child, addr) = run_example("push", &["--ping", "1"]);
    let dial = |user: &str| {
        let (mut c, _) = Dialer::new()
            .dial(&format!("ws://{addr}/getPushNews?userId={user}"))
            .unwrap();
        c.set_read_deadline(Some(Instant::now() + T));
        c
    };
    let mut alice = dial("alice");
    let mut bob = dial("bob");
    let deadline = Instant::now() + T;
    loop {
        let (_, body) = http(addr, "GET", "/clients", b"");
        if body.contains("alice") && body.contains("bob") {
            break;
        }
        assert!(Instant::now() < deadline);
        thread::sleep(Duration::from_millis(20));
    }
    // The operator's page: two users connected.
    let (status, metrics) = http(addr, "GET", "/metrics", b"");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("silverback_open_connections 2"),
        "{metrics}"
    );
    let (status, body) = http(
        addr,
        "POST",
        "/push?userId=alice",
        br#"{"title":"for alice"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let m = alice.read_message().unwrap();
    assert_eq!(
        m.as_text(),
        Some(r#"{"title":"for alice"}"#),
        "pushed as it came"
    );
    // Bob got nothing meant for alice.
    bob.set_read_deadline(Some(Instant::now() + Duration::from_millis(300)));
    assert!(matches!(bob.read_message(), Err(Error::Timeout)));
    // Delete alice: her socket closes with the code we send, and she leaves the registry.
    let (status, body) = http(addr, "GET", "/deleteClient/alice", b"");
    assert_eq!(status, 200, "{body}");
    match alice.read_message() {
        Err(Error::Closed(f)) => assert_eq!(f.code, CloseCode::NORMAL),
        other => panic!("{other:?}"),
    }
    let deadline = Instant::now() + T;
    loop {
        let (_, body) = http(addr, "GET", "/clients", b"");
        if body.trim() == r#"["bob"]"# {
            break;
        }
        assert!(Instant::now() < deadline, "alice left the registry: {body}");
        thread::sleep(Duration::from_millis(20));
    }
    let (status, body) = http(addr, "GET", "/deleteClient/alice", b"");
    assert_eq!(status, 404);
    assert!(body.contains("\"mesg\""), "{body}");
}

// ---- EOF that arrives in the same readiness event as data ----

#[derive(Default)]
struct CloseTimer {
    closed: Option<(CloseCode, Instant)>,
}

impl Handler for CloseTimer {
    type Data = ();
    fn on_close(&mut self, ctx: &mut Ctx<'_, ()>, code: CloseCode, _: &str) {
        self.closed = Some((code, ctx.now()));
    }
}

#[test]
fn client_notices_eof_that_came_with_the_last_data() {
    // A server that answers 101, sends a close frame and its FIN in one burst.
    let addr = answering_server(
        |accept| [switching(accept, ""), sframe(0x88, &[0x03, 0xe8])].concat(),
        true,
        Duration::from_secs(3),
    );
    let mut client = Client::builder()
        .close_timeout(Duration::from_secs(5))
        .build(CloseTimer::default())
        .unwrap();
    let started = Instant::now();
    client.connect(&format!("ws://{addr}/"), ()).unwrap();
    client.run().unwrap();
    let (code, at) = client.handler().closed.expect("closed");
    assert_eq!(code, CloseCode::NORMAL);
    assert!(
        at.duration_since(started) < Duration::from_secs(1),
        "EOF seen at once, not after the close timeout"
    );
}

// ---- what is counted, and who gets on_close (issue: a new user's rough edges) ----

/// A stats page and a record of every `on_open` / `on_close`, per path.
#[derive(Default)]
struct Stats {
    log: Arc<Mutex<Vec<String>>>,
}

impl Handler for Stats {
    type Data = String;
    fn on_request(
        &mut self,
        req: &silverback::proto::handshake::Request,
        data: &mut String,
        _: std::net::SocketAddr,
    ) -> silverback::event::Decision {
        *data = req.path().to_owned();
        if req.path() == "/refuse" {
            silverback::event::Decision::reject(403, "no")
        } else {
            silverback::event::Decision::accept()
        }
    }
    fn on_http(
        &mut self,
        _: &silverback::event::HttpRequest<'_>,
        lp: &mut silverback::event::LoopCtx<'_, String>,
    ) -> silverback::event::HttpResponse {
        let body = format!("{} {}", lp.connections(), lp.open_connections());
        silverback::event::HttpResponse::text(200, body)
    }
    fn on_open(&mut self, ctx: &mut Ctx<'_, String>) {
        let path = ctx.data().clone();
        self.log.lock().unwrap().push(format!("open {path}"));
    }
    fn on_close(&mut self, ctx: &mut Ctx<'_, String>, code: CloseCode, _: &str) {
        let path = ctx.data().clone();
        self.log
            .lock()
            .unwrap()
            .push(format!("close {path} {code}"));
    }
}

#[test]
fn a_stats_page_counts_open_websockets_apart_from_the_request_it_answers() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l2 = log.clone();
    let server = Server::builder()
        .addr("127.0.0.1:0")
        .build(move |_| Stats { log: l2.clone() })
        .unwrap();
    let (handle, _) = server.spawn().unwrap();
    let addr = handle.local_addr();
    // No WebSocket client: the page counts itself as a connection, not as open.
    assert_eq!(http(addr, "GET", "/stats", b""), (200, "1 0".into()));
    assert_eq!(handle.open_connections(), 0);
    let (mut a, _) = Dialer::new().dial(&format!("ws://{addr}/a")).unwrap();
    let (mut b, _) = Dialer::new().dial(&format!("ws://{addr}/b")).unwrap();
    assert_eq!(http(addr, "GET", "/stats", b""), (200, "3 2".into()));
    assert_eq!(handle.open_connections(), 2);
    a.close(CloseCode::NORMAL, "").unwrap();
    b.close(CloseCode::NORMAL, "").unwrap();
    let deadline = Instant::now() + T;
    while handle.open_connections() != 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(handle.open_connections(), 0);
    assert_eq!(handle.connections(), 0);
    handle.shutdown(Duration::ZERO);
}

#[test]
fn on_close_runs_exactly_for_server_connections_that_opened() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l2 = log.clone();
    let server = Server::builder()
        .addr("127.0.0.1:0")
        .handshake_timeout(Duration::from_millis(200))
        .build(move |_| Stats { log: l2.clone() })
        .unwrap();
    let (handle, _) = server.spawn().unwrap();
    let addr = handle.local_addr();
    // A plain HTTP request, an upgrade refused by on_request, one refused by the
    // checks (wrong version), a handshake abandoned half-way, one that times out:
    // none of them opened.
    assert_eq!(http(addr, "GET", "/stats", b"").0, 200);
    assert!(Dialer::new().dial(&format!("ws://{addr}/refuse")).is_err());
    let mut p = RawPeer::connect(addr);
    p.send(b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n");
    assert_eq!(p.read_status(), 426);
    drop(RawPeer::connect(addr));
    let mut slow = RawPeer::connect(addr);
    slow.send(b"GET / HTTP/1.1\r\n");
    assert!(slow.at_eof(), "dropped at the handshake deadline");
    // One that opens gets both calls, once.
    let (mut c, _) = Dialer::new().dial(&format!("ws://{addr}/open")).unwrap();
    c.close(CloseCode::NORMAL, "bye").unwrap();
    let deadline = Instant::now() + T;
    while log.lock().unwrap().len() < 2 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    thread::sleep(Duration::from_millis(300));
    assert_eq!(
        *log.lock().unwrap(),
        vec!["open /open".to_owned(), "close /open 1000".to_owned()]
    );
    handle.shutdown(Duration::ZERO);
}

/// Client connections: every one gets on_close once, also when it never opened.
#[derive(Default)]
struct ClientLog {
    events: Vec<String>,
}

impl Handler for ClientLog {
    type Data = &'static str;
    fn on_open(&mut self, ctx: &mut Ctx<'_, &'static str>) {
        let name = *ctx.data();
        self.events.push(format!("open {name}"));
        let _ = ctx.close(CloseCode::NORMAL, "");
    }
    fn on_error(&mut self, ctx: &mut Ctx<'_, &'static str>, _: &Error) {
        let name = *ctx.data();
        self.events.push(format!("error {name}"));
    }
    fn on_close(&mut self, ctx: &mut Ctx<'_, &'static str>, code: CloseCode, _: &str) {
        let name = *ctx.data();
        self.events.push(format!("close {name} {code}"));
    }
}

#[test]
fn on_close_runs_once_for_every_client_connection_even_one_that_never_opened() {
    let server = spawn_echo(1);
    let refused_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut client = Client::builder()
        .close_timeout(Duration::from_secs(2))
        .build(ClientLog::default())
        .unwrap();
    client
        .connect(&format!("ws://{}/", server.local_addr()), "ok")
        .unwrap();
    client
        .connect(&format!("ws://127.0.0.1:{refused_port}/"), "refused")
        .unwrap();
    client.run().unwrap();
    let mut events = client.handler().events.clone();
    events.sort();
    assert_eq!(
        events,
        vec![
            "close ok 1000",
            "close refused 1006",
            "error refused",
            "open ok"
        ]
    );
}

// ---- operator counters ----

struct Metered;

impl Handler for Metered {
    type Data = ();
    fn on_message(&mut self, ctx: &mut Ctx<'_, ()>, msg: MessageRef<'_>) {
        if msg.data == b"bye" {
            let _ = ctx.close(CloseCode::GOING_AWAY, "as asked");
            return;
        }
        let _ = ctx.send(msg.kind, msg.data);
    }
    fn on_http(
        &mut self,
        _: &silverback::event::HttpRequest<'_>,
        lp: &mut silverback::event::LoopCtx<'_, ()>,
    ) -> silverback::event::HttpResponse {
        silverback::event::HttpResponse::text(200, lp.server_stats().prometheus("sb"))
    }
}

#[test]
fn counters_count_what_happened() {
    let server = Server::builder()
        .addr("127.0.0.1:0")
        .workers(2)
        .max_head_size(1024)
        .build(|_| Metered)
        .unwrap();
    let addr = server.local_addr();
    let (handle, _) = server.spawn().unwrap();
    let url = format!("ws://{addr}/");
    // Three clients: 2 messages each (5 + 3 bytes) echoed, then two close normally
    // and one is closed by the server (1001).
    for i in 0..3 {
        let (mut c, _) = Dialer::new().dial(&url).unwrap();
        for m in [&b"hello"[..], b"abc"] {
            c.write_message(MessageKind::Binary, m).unwrap();
            assert_eq!(c.read_message().unwrap().as_bytes(), m);
        }
        if i == 2 {
            c.write_message(MessageKind::Text, b"bye").unwrap();
            assert!(
                matches!(c.read_message(), Err(Error::Closed(f)) if f.code == CloseCode::GOING_AWAY)
            );
        } else {
            c.close(CloseCode::NORMAL, "").unwrap();
        }
    }
    // Refusals: a bad key (400), another origin (403), version 8 (426), a huge head
    // (431).
    let req = |extra: &str| {
        format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{extra}\r\n"
        )
    };
    let cases = [
        (
            req("Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n"),
            400,
        ),
        (
            req(
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: http://evil.example\r\n",
            ),
            403,
        ),
        (
            req("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n"),
            426,
        ),
        (req(&format!("X-Pad: {}\r\n", "x".repeat(2000))), 431),
    ];
    for (raw, status) in &cases {
        let mut p = RawPeer::connect(addr);
        p.send(raw.as_bytes());
        assert_eq!(p.read_status(), *status, "{raw:.60}");
    }
    let want_closed = 3;
    let deadline = Instant::now() + T;
    let s = loop {
        let s = handle.stats();
        if s.closes.normal + s.closes.going_away == want_closed && s.connections == 0 {
            break s;
        }
        assert!(Instant::now() < deadline, "counters never settled: {s:?}");
        thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(s.accepted, 3 + 4);
    assert_eq!(s.open, 0);
    assert_eq!(
        (
            s.refused.bad_request,
            s.refused.forbidden,
            s.refused.upgrade_required,
            s.refused.too_large
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(s.refused.full, 0);
    // 2 echoed messages each, plus the "bye".
    assert_eq!(s.messages_in, 3 * 2 + 1);
    assert_eq!(s.bytes_in, 3 * 8 + 3);
    assert_eq!((s.messages_out, s.bytes_out), (3 * 2, 3 * 8));
    assert_eq!(
        (s.closes.normal, s.closes.going_away, s.closes.abnormal),
        (2, 1, 0)
    );
    assert_eq!(s.handshake_timeouts, 0);
    assert_eq!(handle.loop_stats().len(), 2);
    // The same figures from a handler, as a Prometheus page.
    let (status, body) = http(addr, "GET", "/metrics", b"");
    assert_eq!(status, 200);
    assert!(body.contains("sb_messages_received_total 7"), "{body}");
    assert!(
        body.contains("sb_refused_total{status=\"431\"} 1"),
        "{body}"
    );
    assert!(body.contains("sb_closes_total{code=\"1000\"} 2"), "{body}");
    handle.shutdown(Duration::ZERO);
}
