//! Handing live connections to a new server (feature `handover`): the old and the
//! new server run in this process and talk over a Unix socket as two processes
//! would (file descriptors pass with SCM_RIGHTS all the same). 1,000 connections,
//! plain and with permessage-deflate context takeover, keep exchanging messages
//! through the handover: none is closed, no message lost, duplicated or altered.
//! A new side that refuses, or hangs up half-way, leaves the old server serving.

mod support;

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use silverback::event::{Client, Ctx, Handler, MessageRef, Server, ServerBuilder, ServerHandle};
use silverback::proto::deflate::DeflateConfig;
use silverback::{CloseCode, Dialer, MessageKind};

/// Echoes; saves and restores a per-connection counter through the handover.
struct Echo;

impl Handler for Echo {
    type Data = u64;
    fn on_message(&mut self, ctx: &mut Ctx<'_, u64>, msg: MessageRef<'_>) {
        *ctx.data() += 1;
        let _ = ctx.send(msg.kind, msg.data);
    }
    fn on_hand_over(&mut self, ctx: &mut Ctx<'_, u64>) -> Vec<u8> {
        ctx.data().to_le_bytes().to_vec()
    }
    fn on_resume(&mut self, ctx: &mut Ctx<'_, u64>, saved: &[u8]) {
        *ctx.data() = u64::from_le_bytes(saved.try_into().expect("8 bytes saved"));
    }
}

fn socket_path(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("sb-handover-{}-{name}.sock", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

fn builder(deflate: bool) -> ServerBuilder {
    let b = Server::builder().addr("127.0.0.1:0").max_connections(4096);
    if deflate {
        b.deflate(DeflateConfig::default())
    } else {
        b
    }
}

/// The message `n` of connection `i`: text that repeats earlier messages' words
/// (so that a compressor with context takeover refers back into its history) and
/// varies in length.
fn message(i: usize, n: usize) -> String {
    let words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"];
    let mut s = format!("conn {i} message {n}:");
    for k in 0..(20 + (i * 7 + n * 13) % 200) {
        s.push(' ');
        s.push_str(words[(i + n + k) % words.len()]);
    }
    s
}

const MESSAGES: usize = 30;

#[derive(Default)]
struct Peer {
    /// Messages sent so far.
    sent: usize,
    /// Echoes received so far (each checked against what was sent).
    got: usize,
    index: usize,
}

struct Load {
    echoes: Arc<AtomicUsize>,
    bad: Arc<Mutex<Vec<String>>>,
    closed_early: Arc<AtomicUsize>,
    done: Arc<AtomicUsize>,
    /// Each connection waits this long between an echo and its next message.
    pace: Duration,
}

impl Handler for Load {
    type Data = Peer;
    fn on_open(&mut self, ctx: &mut Ctx<'_, Peer>) {
        let i = ctx.data().index;
        let _ = ctx.send_text(&message(i, 0));
        ctx.data().sent = 1;
    }
    fn on_message(&mut self, ctx: &mut Ctx<'_, Peer>, msg: MessageRef<'_>) {
        let (i, got) = (ctx.data().index, ctx.data().got);
        if msg.data != message(i, got).as_bytes() {
            self.bad.lock().unwrap().push(format!(
                "conn {i}: echo {got} was {:?}",
                String::from_utf8_lossy(&msg.data[..msg.data.len().min(60)])
            ));
        }
        ctx.data().got += 1;
        self.echoes.fetch_add(1, Ordering::Relaxed);
        if ctx.data().got == MESSAGES {
            self.done.fetch_add(1, Ordering::Relaxed);
            let _ = ctx.close(CloseCode::NORMAL, "done");
        } else {
            ctx.set_timer(self.pace, 0);
        }
    }
    fn on_timer(&mut self, ctx: &mut Ctx<'_, Peer>, _: u64) {
        let (i, n) = (ctx.data().index, ctx.data().sent);
        let _ = ctx.send_text(&message(i, n));
        ctx.data().sent += 1;
    }
    fn on_close(&mut self, ctx: &mut Ctx<'_, Peer>, code: CloseCode, reason: &str) {
        let (index, got) = (ctx.data().index, ctx.data().got);
        if got < MESSAGES {
            self.closed_early.fetch_add(1, Ordering::Relaxed);
            self.bad.lock().unwrap().push(format!(
                "conn {index} closed after {got} echoes: {code} {reason}"
            ));
        }
    }
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// Starts the new server's build (it waits on `path`) on a thread.
fn new_server(
    path: PathBuf,
    deflate: bool,
) -> thread::JoinHandle<std::io::Result<(ServerHandle, thread::JoinHandle<std::io::Result<()>>)>> {
    thread::spawn(move || {
        builder(deflate)
            .workers(2)
            .resume_from(path)
            .build(|_| Echo)?
            .spawn()
    })
}

fn thousand_through_a_handover(deflate: bool) {
    const N: usize = 1000;
    let old = builder(deflate).workers(2).build(|_| Echo).unwrap();
    let addr = old.local_addr();
    let (old_h, old_t) = old.spawn().unwrap();

    let echoes = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let bad = Arc::new(Mutex::new(Vec::new()));
    let closed_early = Arc::new(AtomicUsize::new(0));
    let load = Load {
        echoes: echoes.clone(),
        bad: bad.clone(),
        closed_early: closed_early.clone(),
        done: done.clone(),
        pace: Duration::from_millis(20),
    };
    let url = format!("ws://{addr}/");
    let client_t = thread::spawn(move || {
        let mut b = Client::builder().max_connections(4096);
        if deflate {
            b = b.deflate(DeflateConfig::default());
        }
        let mut c = b.build(load).unwrap();
        for index in 0..N {
            c.connect(
                &url,
                Peer {
                    index,
                    ..Peer::default()
                },
            )
            .unwrap();
        }
        c.run().unwrap();
    });
    // Every connection open and a third of the messages through: hand over.
    wait_for(
        "every connection open and a third of the echoes",
        Duration::from_secs(60),
        || old_h.open_connections() == N && echoes.load(Ordering::Relaxed) >= N * MESSAGES / 3,
    );
    let path = socket_path(if deflate { "deflate" } else { "plain" });
    let new_t = new_server(path.clone(), deflate);
    wait_for("the new server to listen", Duration::from_secs(10), || {
        path.exists()
    });
    let at_handover = echoes.load(Ordering::Relaxed);
    let report = old_h.hand_over(&path).expect("handover");
    assert_eq!(report.connections, N, "{report:?}");
    assert_eq!(report.closed, 0, "{report:?}");
    assert_eq!(report.listeners, 1);
    let (new_h, new_t) = new_t.join().unwrap().expect("the new server");
    assert!(
        at_handover < N * MESSAGES,
        "the load ended before the handover"
    );
    // The old server has nothing left; it stops.
    wait_for("the old server to let go", Duration::from_secs(10), || {
        old_h.open_connections() == 0
    });
    let old_in = old_h.stats().messages_in;
    old_h.shutdown(Duration::from_secs(1));
    old_t.join().unwrap().unwrap();
    assert_eq!(old_h.stats().handed_over, N as u64);

    client_t.join().unwrap();
    let bad = bad.lock().unwrap();
    assert!(
        bad.is_empty(),
        "{} problems, first: {:?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );
    assert_eq!(closed_early.load(Ordering::Relaxed), 0);
    assert_eq!(done.load(Ordering::Relaxed), N);
    assert_eq!(echoes.load(Ordering::Relaxed), N * MESSAGES);
    let s = new_h.stats();
    assert_eq!(s.resumed, N as u64);
    // Every message went through exactly one of the two servers.
    assert_eq!(
        old_in + s.messages_in,
        (N * MESSAGES) as u64,
        "old {old_in}, new {}",
        s.messages_in
    );
    assert!(s.messages_in > 0 && at_handover > 0);
    // New connections reach the new server on the old address.
    let (mut c, _) = Dialer::new().dial(&format!("ws://{addr}/")).unwrap();
    c.write_message(MessageKind::Text, b"after").unwrap();
    assert_eq!(c.read_message().unwrap().as_bytes(), b"after");
    drop(c);
    new_h.shutdown(Duration::from_secs(1));
    new_t.join().unwrap().unwrap();
}

#[test]
fn a_thousand_plain_connections_move_with_nothing_lost() {
    thousand_through_a_handover(false);
}

#[test]
fn a_thousand_compressed_connections_with_context_takeover_move_with_nothing_lost() {
    thousand_through_a_handover(true);
}

/// `n` connections to `url`, each having exchanged its message 0.
fn dial_and_greet(
    dialer: &Dialer,
    url: &str,
    n: usize,
) -> Vec<silverback::Conn<std::net::TcpStream>> {
    let mut conns: Vec<_> = (0..n).map(|_| dialer.dial(url).unwrap().0).collect();
    for (i, c) in conns.iter_mut().enumerate() {
        c.write_message(MessageKind::Text, message(i, 0).as_bytes())
            .unwrap();
        assert_eq!(
            c.read_message().unwrap().as_bytes(),
            message(i, 0).as_bytes()
        );
    }
    conns
}

/// Each connection `i` gets the echo of `message(i, 1)` (sent before), then
/// exchanges messages 2 to `upto - 1`, byte-exact.
fn echoes_go_on(conns: &mut [silverback::Conn<std::net::TcpStream>], upto: usize) {
    for (i, c) in conns.iter_mut().enumerate() {
        assert_eq!(
            c.read_message().unwrap().as_bytes(),
            message(i, 1).as_bytes()
        );
        for n in 2..upto {
            c.write_message(MessageKind::Text, message(i, n).as_bytes())
                .unwrap();
            assert_eq!(
                c.read_message().unwrap().as_bytes(),
                message(i, n).as_bytes()
            );
        }
    }
}

/// A stand-in for a new process that fails: speaks the framing
/// (`[kind][u32 length][payload]`; descriptors that come with plain reads are
/// dropped by the kernel) and gives up at a chosen point.
#[derive(Clone, Copy, Debug)]
enum Failing {
    /// Refuses the opening (another format version, say).
    RefuseHello,
    /// Takes everything, then refuses (a connection it cannot restore).
    RefuseAtEnd,
    /// Dies after `n` frames of the transfer.
    HangUpAfter(usize),
}

fn read_frame(s: &mut UnixStream) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 5];
    s.read_exact(&mut head).ok()?;
    let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
    let mut p = vec![0; len];
    s.read_exact(&mut p).ok()?;
    Some((head[0], p))
}

fn reply(s: &mut UnixStream, refusal: Option<&str>) {
    let mut p = vec![u8::from(refusal.is_some())];
    p.extend_from_slice(refusal.unwrap_or("").as_bytes());
    let mut f = vec![2u8];
    f.extend_from_slice(&(p.len() as u32).to_le_bytes());
    f.extend_from_slice(&p);
    let _ = s.write_all(&f);
}

fn failing_peer(path: PathBuf, how: Failing) -> thread::JoinHandle<usize> {
    let l = UnixListener::bind(&path).unwrap();
    thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let _ = std::fs::remove_file(&path);
        let (kind, hello) = read_frame(&mut s).unwrap();
        assert_eq!((kind, &hello[..4]), (1, &b"SBHO"[..]));
        if let Failing::RefuseHello = how {
            reply(&mut s, Some("unsupported format version"));
            return 0;
        }
        reply(&mut s, None);
        let mut frames = 0;
        while let Some((kind, _)) = read_frame(&mut s) {
            frames += 1;
            match how {
                Failing::HangUpAfter(n) if frames >= n => return frames,
                Failing::RefuseAtEnd if kind == 5 => {
                    reply(&mut s, Some("cannot restore"));
                    return frames;
                }
                _ => {}
            }
        }
        frames
    })
}

fn old_serves_on_after(how: Failing) {
    let old = builder(true).workers(2).build(|_| Echo).unwrap();
    let addr = old.local_addr();
    let (h, t) = old.spawn().unwrap();
    let url = format!("ws://{addr}/");
    let dialer = Dialer::new().deflate(DeflateConfig::default());
    let mut conns = dial_and_greet(&dialer, &url, 20);
    // Messages in flight while the handover runs and fails.
    for (i, c) in conns.iter_mut().enumerate() {
        c.write_message(MessageKind::Text, message(i, 1).as_bytes())
            .unwrap();
    }
    let path = socket_path(&format!("{how:?}").replace(['(', ')'], ""));
    let peer = failing_peer(path.clone(), how);
    let err = h.hand_over(&path).expect_err("a failing new process");
    let frames = peer.join().unwrap();
    match how {
        Failing::RefuseHello => assert_eq!(frames, 0),
        // The listener, a batch of connections from each of the two loops, the end.
        Failing::RefuseAtEnd => assert_eq!(frames, 4, "{err}"),
        Failing::HangUpAfter(n) => assert_eq!(frames, n),
    }
    // Everything is served on: the messages sent meanwhile, and more.
    echoes_go_on(&mut conns, 5);
    assert_eq!(h.open_connections(), 20);
    assert_eq!(h.stats().handed_over, 0);
    // And it still accepts.
    let (mut c, _) = dialer.dial(&url).unwrap();
    c.write_message(MessageKind::Binary, b"still here").unwrap();
    assert_eq!(c.read_message().unwrap().as_bytes(), b"still here");
    // A handover that fails can be tried again (here: nobody listens any more).
    assert!(h.hand_over(&path).is_err());
    c.write_message(MessageKind::Binary, b"again").unwrap();
    assert_eq!(c.read_message().unwrap().as_bytes(), b"again");
    h.shutdown(Duration::from_secs(1));
    t.join().unwrap().unwrap();
}

#[test]
fn a_new_process_that_refuses_the_format_leaves_the_old_one_serving() {
    old_serves_on_after(Failing::RefuseHello);
}

#[test]
fn a_new_process_that_refuses_the_state_leaves_the_old_one_serving() {
    old_serves_on_after(Failing::RefuseAtEnd);
}

#[test]
fn a_new_process_that_dies_mid_handover_leaves_the_old_one_serving() {
    // After the listener and the first loop's connections.
    old_serves_on_after(Failing::HangUpAfter(2));
}

/// The new side refuses an opening of another format version, and `build`
/// fails without serving anything.
#[test]
fn the_new_side_refuses_another_format_version() {
    let path = socket_path("version");
    let p = path.clone();
    let t = thread::spawn(move || builder(false).resume_from(p).build(|_| Echo).map(drop));
    wait_for("the new server to listen", Duration::from_secs(10), || {
        path.exists()
    });
    let mut s = UnixStream::connect(&path).unwrap();
    let mut hello = b"SBHO".to_vec();
    hello.extend_from_slice(&99u16.to_le_bytes());
    let mut f = vec![1u8];
    f.extend_from_slice(&(hello.len() as u32).to_le_bytes());
    f.extend_from_slice(&hello);
    s.write_all(&f).unwrap();
    let (kind, reply) = read_frame(&mut s).unwrap();
    assert_eq!(kind, 2);
    assert_eq!(reply[0], 1, "refused");
    assert!(String::from_utf8_lossy(&reply[1..]).contains("version"));
    let err = t.join().unwrap().expect_err("build must fail");
    assert!(err.to_string().contains("version"), "{err}");
}

/// Subscribes every connection to "news", ticks every 50 ms, answers "who" with
/// what it knows of the connection (restored from the old process's save).
struct Stateful;

impl Handler for Stateful {
    type Data = String;
    fn on_open(&mut self, ctx: &mut Ctx<'_, String>) {
        *ctx.data() = format!("opened-as-{}", ctx.id());
        ctx.subscribe("news").unwrap();
        ctx.set_interval(Duration::from_millis(50), 7);
    }
    fn on_message(&mut self, ctx: &mut Ctx<'_, String>, msg: MessageRef<'_>) {
        if msg.data == b"who" {
            let me = ctx.data().clone();
            let _ = ctx.send_text(&me);
        } else {
            let _ = ctx.send(msg.kind, msg.data);
        }
    }
    fn on_timer(&mut self, ctx: &mut Ctx<'_, String>, token: u64) {
        let _ = ctx.send_text(&format!("tick {token}"));
    }
    fn on_hand_over(&mut self, ctx: &mut Ctx<'_, String>) -> Vec<u8> {
        ctx.data().clone().into_bytes()
    }
    fn on_resume(&mut self, ctx: &mut Ctx<'_, String>, saved: &[u8]) {
        *ctx.data() = format!("resumed:{}", String::from_utf8_lossy(saved));
    }
}

/// The next data message that is not a tick.
fn next_not_tick(c: &mut silverback::Conn<std::net::TcpStream>, ticks: &mut usize) -> Vec<u8> {
    loop {
        let m = c.read_message().unwrap();
        if m.as_bytes() == b"tick 7" {
            *ticks += 1;
        } else {
            return m.as_bytes().to_vec();
        }
    }
}

/// Topics, user timers, the application's data and a message under way move;
/// a TLS connection is closed with 1012 (Service Restart).
#[test]
fn topics_timers_data_and_a_message_under_way_move_and_tls_gets_1012() {
    use support::{RawPeer, cframe};
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_pem, key_pem) = (ck.cert.pem(), ck.signing_key.serialize_pem());
    let scfg = silverback::tls::server_config(cert_pem.as_bytes(), key_pem.as_bytes()).unwrap();
    let ccfg = silverback::tls::client_config(
        silverback::tls::roots_from_pem(cert_pem.as_bytes()).unwrap(),
    );
    let new_builder = |p: PathBuf, scfg| {
        Server::builder()
            .addr("127.0.0.1:0")
            .listen_tls("127.0.0.1:0", scfg)
            .resume_from(p)
    };
    let old = Server::builder()
        .addr("127.0.0.1:0")
        .listen_tls("127.0.0.1:0", scfg.clone())
        .build(|_| Stateful)
        .unwrap();
    let (plain, tls_addr) = (old.local_addrs()[0], old.local_addrs()[1]);
    let (old_h, old_t) = old.spawn().unwrap();

    let (mut b, _) = Dialer::new().dial(&format!("ws://{plain}/")).unwrap();
    let mut ticks = 0;
    b.write_message(MessageKind::Text, b"who").unwrap();
    let before = String::from_utf8(next_not_tick(&mut b, &mut ticks)).unwrap();
    assert!(before.starts_with("opened-as-"), "{before}");
    let (mut secure, _) = Dialer::new()
        .tls_config(ccfg)
        .dial_tls(&format!("wss://localhost:{}/", tls_addr.port()))
        .unwrap();
    // A: the first fragment of a message now, the last after the handover began.
    let mut a = RawPeer::handshake(plain, "/");
    a.send(&cframe(0x01, b"first half, "));

    let path = socket_path("state");
    let p = path.clone();
    let s2 = scfg.clone();
    let new_t = thread::spawn(move || new_builder(p, s2).build(|_| Stateful)?.spawn());
    wait_for("the new server to listen", Duration::from_secs(10), || {
        path.exists()
    });
    let h2 = old_h.clone();
    let p = path.clone();
    let over = thread::spawn(move || h2.hand_over(&p));
    thread::sleep(Duration::from_millis(300));
    a.send(&cframe(0x80, b"second half"));
    let report = over.join().unwrap().expect("handover");
    let (new_h, new_t) = new_t.join().unwrap().expect("the new server");
    // A waited for the end of its message and moved; B moved; TLS could not.
    assert_eq!(
        (report.connections, report.closed, report.listeners),
        (2, 1, 2),
        "{report:?}"
    );
    assert!(report.paused >= Duration::from_millis(250), "{report:?}");
    // The TLS client is told to come back.
    loop {
        match secure.read_message() {
            Ok(m) if m.as_bytes() == b"tick 7" => {}
            Err(silverback::Error::Closed(f)) => {
                assert_eq!(f.code, CloseCode::SERVICE_RESTART);
                break;
            }
            other => panic!("expected a 1012 close, got {other:?}"),
        }
    }
    // A's message is echoed whole (by whichever process finished it).
    let echo = loop {
        let f = a.read_frame().expect("A's echo");
        if f.payload != b"tick 7" {
            break f;
        }
    };
    assert_eq!(echo.payload, b"first half, second half");
    // B: the new process knows it through its saved data, keeps ticking, and
    // publishes to its topic reach it.
    b.write_message(MessageKind::Text, b"who").unwrap();
    let after = String::from_utf8(next_not_tick(&mut b, &mut ticks)).unwrap();
    assert_eq!(after, format!("resumed:{before}"));
    let ticks_then = ticks;
    new_h.publish("news", &silverback::event::Prepared::text("extra"));
    assert_eq!(next_not_tick(&mut b, &mut ticks), b"extra");
    thread::sleep(Duration::from_millis(200));
    b.write_message(MessageKind::Text, b"who").unwrap();
    next_not_tick(&mut b, &mut ticks);
    assert!(
        ticks > ticks_then,
        "the interval timer moved ({ticks} ticks)"
    );
    assert_eq!(new_h.stats().subscriptions, 2);
    // The TLS listener moved too: a new wss:// client reaches the new process.
    old_h.shutdown(Duration::from_secs(1));
    old_t.join().unwrap().unwrap();
    let ccfg = silverback::tls::client_config(
        silverback::tls::roots_from_pem(cert_pem.as_bytes()).unwrap(),
    );
    let (mut again, _) = Dialer::new()
        .tls_config(ccfg)
        .dial_tls(&format!("wss://localhost:{}/", tls_addr.port()))
        .unwrap();
    again.write_message(MessageKind::Text, b"who").unwrap();
    let mut t = 0;
    loop {
        let m = again.read_message().unwrap();
        if m.as_bytes() != b"tick 7" {
            assert!(m.as_text().unwrap().starts_with("opened-as-"));
            break;
        }
        t += 1;
        assert!(t < 100);
    }
    new_h.shutdown(Duration::from_secs(1));
    new_t.join().unwrap().unwrap();
}

/// An example built with the handover, copied aside (`NAME-handover`) so that the
/// other tests' builds of the examples (other features, same path) do not replace
/// it under us.
fn handover_example(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/debug/examples");
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--example", name])
        .args(["--features", "handover,json,deflate"])
        .status()
        .expect("run cargo build");
    assert!(status.success(), "building example {name} failed");
    let copy = dir.join(format!("{name}-handover"));
    std::fs::copy(dir.join(name), &copy).unwrap();
    copy
}

/// Starts the process that waits for a handover on `path`; returns it and its
/// output lines.
fn resuming(
    bin: &PathBuf,
    path: &PathBuf,
    extra: &[&str],
) -> (support::Child, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let mut child = support::Child(
        std::process::Command::new(bin)
            .args(extra)
            .args(["--addr", "127.0.0.1:0", "--resume"])
            .arg(path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let out = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

fn sigusr2(child: &support::Child) {
    let pid = rustix::process::Pid::from_raw(child.0.id() as i32).expect("a child's pid");
    rustix::process::kill_process(pid, rustix::process::Signal::USR2).expect("SIGUSR2");
}

/// Waits (bounded) for the process to exit; its exit status.
fn exits(child: &mut support::Child) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            return s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the old process did not exit"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// `examples/echo --handover PATH` hands its clients to `echo --resume PATH` on
/// SIGUSR2 and exits; the clients notice nothing.
#[test]
fn the_echo_example_restarts_on_sigusr2_without_closing_anyone() {
    let bin = handover_example("echo");
    let path = socket_path("echo-example");
    let mut cmd = std::process::Command::new(&bin);
    cmd.args(["--plain", "--deflate", "--handover"]).arg(&path);
    let (mut old, addr) = support::spawn_listening(cmd);
    let url = format!("ws://{addr}/websocket");
    let dialer = Dialer::new().deflate(DeflateConfig::default());
    let mut conns = dial_and_greet(&dialer, &url, 50);
    let (_new, lines) = resuming(&bin, &path, &["--plain", "--deflate"]);
    wait_for("the new process to listen", Duration::from_secs(20), || {
        path.exists()
    });
    // In flight while the handover runs.
    for (i, c) in conns.iter_mut().enumerate() {
        c.write_message(MessageKind::Text, message(i, 1).as_bytes())
            .unwrap();
    }
    sigusr2(&old);
    assert!(exits(&mut old).success());
    echoes_go_on(&mut conns, 6);
    // The new process serves the old address, to new clients too.
    let listening: Vec<String> = lines.try_iter().collect();
    assert!(
        listening
            .iter()
            .any(|l| l.contains(&format!("ws://{addr}/"))),
        "{listening:?}"
    );
    let (mut c, _) = dialer.dial(&url).unwrap();
    c.write_message(MessageKind::Binary, b"new").unwrap();
    assert_eq!(c.read_message().unwrap().as_bytes(), b"new");
}

/// `examples/push`: the registry of users moves with the connections, so pushes
/// by user id and by topic reach them through the new process.
#[test]
fn the_push_example_moves_its_users_on_sigusr2() {
    let bin = handover_example("push");
    let path = socket_path("push-example");
    let mut cmd = std::process::Command::new(&bin);
    cmd.arg("--handover").arg(&path);
    let (mut old, addr) = support::spawn_listening(cmd);
    let mut users: Vec<_> = (0..10)
        .map(|i| {
            Dialer::new()
                .dial(&format!(
                    "ws://{addr}/getPushNews?userId=u{i}&topic=t{}",
                    i % 2
                ))
                .unwrap()
                .0
        })
        .collect();
    let (status, _) = support::http(addr, "POST", "/push?userId=u3", b"{\"n\":1}");
    assert_eq!(status, 200);
    assert_eq!(users[3].read_message().unwrap().as_bytes(), b"{\"n\":1}");
    let (_new, _lines) = resuming(&bin, &path, &[]);
    wait_for("the new process to listen", Duration::from_secs(20), || {
        path.exists()
    });
    sigusr2(&old);
    assert!(exits(&mut old).success());
    // Now the new process answers on the same address.
    let (status, body) = support::http(addr, "GET", "/clients", b"");
    assert_eq!(status, 200);
    let mut ids: Vec<String> = serde_json::from_str(&body).unwrap();
    ids.sort();
    let mut want: Vec<String> = (0..10).map(|i| format!("u{i}")).collect();
    want.sort();
    assert_eq!(ids, want);
    let (status, _) = support::http(addr, "POST", "/push?userId=u7", b"{\"n\":2}");
    assert_eq!(status, 200);
    assert_eq!(users[7].read_message().unwrap().as_bytes(), b"{\"n\":2}");
    let (status, body) = support::http(addr, "POST", "/push?topic=t1", b"{\"n\":3}");
    assert_eq!(status, 200, "{body}");
    for (i, u) in users.iter_mut().enumerate() {
        if i % 2 == 1 {
            assert_eq!(u.read_message().unwrap().as_bytes(), b"{\"n\":3}");
        }
    }
    let (status, _) = support::http(addr, "GET", "/deleteClient/u0", b"");
    assert_eq!(status, 200);
    assert!(users[0].read_message().is_err());
}

/// The fuzz target's seeds (written by fuzz/seeds.py, which re-implements the
/// format in Python) decode, and their connections restore.
#[test]
fn the_fuzz_seeds_follow_the_format() {
    use silverback::handover::format::decode_conn;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/handover_state");
    let mut conns = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(e.unwrap().path()).unwrap();
        if bytes[0] == 0 {
            let rec = decode_conn(&bytes[1..]).expect("a seed decodes");
            silverback::proto::Connection::restore(
                &rec.state,
                Arc::new(silverback::proto::ConnectionConfig::default()),
                silverback::proto::Randomness::thread(),
                Instant::now(),
            )
            .expect("a seed restores");
            conns += 1;
        }
    }
    assert_eq!(conns, 2);
}
