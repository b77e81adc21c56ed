//! Handing live connections to a new server (feature `handover`): the old and the
//! new server run in this process and talk over a Unix socket as two processes
//! would (file descriptors pass with SCM_RIGHTS all the same). 1,000 connections,
//! plain and with permessage-deflate context takeover, keep exchanging messages
//! through the handover: none is closed, no message lost, duplicated or altered.
//! A new side that refuses, or hangs up half-way, leaves the old server serving.

mod support;

use std::os::unix::net::UnixListener;
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
    let t = thread::spawn(move || {
        builder(deflate)
            .workers(2)
            .resume_from(path)
            .build(|_| Echo)?
            .spawn()
    });
    t
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
            c.connect(&url, Peer {
                index,
                ..Peer::default()
            })
            .unwrap();
        }
        c.run().unwrap();
    });
    // Every connection open and a third of the messages through: hand over.
    wait_for("a third of the echoes", Duration::from_secs(60), || {
        echoes.load(Ordering::Relaxed) >= N * MESSAGES / 3
    });
    assert_eq!(old_h.open_connections(), N);
    let path = socket_path(if deflate { "deflate" } else { "plain" });
    let new_t = new_server(path.clone(), deflate);
    wait_for("the new server to listen", Duration::from_secs(10), || path.exists());
    let at_handover = echoes.load(Ordering::Relaxed);
    let report = old_h.hand_over(&path).expect("handover");
    assert_eq!(report.connections, N, "{report:?}");
    assert_eq!(report.closed, 0, "{report:?}");
    assert_eq!(report.listeners, 1);
    let (new_h, new_t) = new_t.join().unwrap().expect("the new server");
    assert!(
        echoes.load(Ordering::Relaxed) < N * MESSAGES,
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
    assert!(bad.is_empty(), "{} problems, first: {:?}", bad.len(), &bad[..bad.len().min(5)]);
    assert_eq!(closed_early.load(Ordering::Relaxed), 0);
    assert_eq!(done.load(Ordering::Relaxed), N);
    assert_eq!(echoes.load(Ordering::Relaxed), N * MESSAGES);
    let s = new_h.stats();
    assert_eq!(s.resumed, N as u64);
    // Every message went through exactly one of the two servers.
    assert_eq!(old_in + s.messages_in, (N * MESSAGES) as u64, "old {old_in}, new {}", s.messages_in);
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
