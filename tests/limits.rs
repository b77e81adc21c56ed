//! Limits against abusive peers on the event loop (`Limits`): connections and
//! handshakes per source address (503 + Retry-After), messages and bytes per
//! second per connection (closed with 1008, or throttled to the rate while a
//! well-behaved client on the same loop keeps its latency). Run with
//! `cargo test --test limits -- --nocapture` to see the measured rates and the
//! bystander's round-trip percentiles.

mod support;
use support::until;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use silverback::event::{
    Ctx, Handler, MessageRef, RatePolicy, Server, ServerBuilder, ServerHandle,
};
use silverback::{CloseCode, Conn, Dialer, Error, MessageKind};

const T: Duration = Duration::from_secs(10);

/// Echoes text; records the arrival time and size of every binary message.
struct Meter {
    binary: Arc<Mutex<Vec<(Instant, usize)>>>,
}

impl Handler for Meter {
    type Data = ();
    fn on_message(&mut self, ctx: &mut Ctx<'_, ()>, msg: MessageRef<'_>) {
        match msg.kind {
            MessageKind::Text => {
                let _ = ctx.send(MessageKind::Text, msg.data);
            }
            MessageKind::Binary => self
                .binary
                .lock()
                .unwrap()
                .push((Instant::now(), msg.data.len())),
        }
    }
}

type Log = Arc<Mutex<Vec<(Instant, usize)>>>;

fn start(b: ServerBuilder) -> (ServerHandle, SocketAddr, Log) {
    let log: Log = Arc::default();
    let l = log.clone();
    let (h, _) = b
        .addr("127.0.0.1:0")
        .max_message_size(1 << 20)
        .build(move |_| Meter { binary: l.clone() })
        .unwrap()
        .spawn()
        .unwrap();
    let addr = h.local_addr();
    (h, addr, log)
}

fn dial(addr: SocketAddr) -> Result<Conn<TcpStream>, Error> {
    Dialer::new().dial(&format!("ws://{addr}/")).map(|(c, _)| c)
}

/// The raw HTTP answer to an upgrade request.
fn raw_answer(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    let _ = write!(
        s,
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn connections_per_address_are_capped_with_503_and_retry_after() {
    let (h, addr, _) = start(Server::builder().max_conns_per_ip(3).workers(2));
    let held: Vec<_> = (0..3).map(|_| dial(addr).unwrap()).collect();
    let answer = raw_answer(addr);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("Retry-After: 1"), "{answer}");
    assert!(dial(addr).is_err());
    until(|| h.stats().refused_per_ip == 2, "two refusals counted");
    // One leaves: room for one more (on either loop).
    drop(held);
    until(|| h.stats().connections == 0, "the held connections ended");
    let again: Vec<_> = (0..3).map(|_| dial(addr).unwrap()).collect();
    assert!(dial(addr).is_err());
    drop(again);
    until(
        || {
            h.stats()
                .prometheus("sb")
                .contains("sb_refused_per_ip_total 3")
        },
        "the third refusal in /metrics",
    );
    h.shutdown(Duration::from_secs(1));
}

#[test]
fn handshakes_per_address_per_second() {
    let (h, addr, _) = start(Server::builder().max_handshakes_per_ip(5));
    let t0 = Instant::now();
    let mut ok = 0;
    let mut refused = 0;
    for _ in 0..8 {
        match dial(addr) {
            Ok(mut c) => {
                ok += 1;
                let _ = c.close(CloseCode::NORMAL, "");
            }
            Err(_) => refused += 1,
        }
    }
    if t0.elapsed() < Duration::from_millis(500) {
        // At most 5 plus what refilled meanwhile (10 per second → < 5 more).
        assert!((5..=7).contains(&ok), "{ok} admitted");
        assert!(refused >= 1);
    }
    // A second later the budget is back.
    thread::sleep(Duration::from_millis(1100));
    dial(addr).expect("admitted once the bucket refilled");
    until(
        || h.stats().refused_per_ip == refused,
        "every refusal counted",
    );
    h.shutdown(Duration::from_secs(1));
}

/// Sends binary messages of `size` as fast as the connection takes them for
/// `secs`; returns how the connection ended (`None`: still open).
fn flood(addr: SocketAddr, size: usize, secs: f64) -> thread::JoinHandle<Option<Error>> {
    thread::spawn(move || {
        let mut c = dial(addr).unwrap();
        let payload = vec![7u8; size];
        let end = Instant::now() + Duration::from_secs_f64(secs);
        // Bounded by the time: each write returns within the server's throttle.
        while Instant::now() < end {
            if let Err(e) = c.write_message(MessageKind::Binary, &payload) {
                // Read what the server said (its close).
                c.set_read_deadline(Some(Instant::now() + T));
                let e2 = c.read_message().err();
                return Some(e2.unwrap_or(e));
            }
        }
        c.set_read_deadline(Some(Instant::now() + Duration::from_millis(50)));
        match c.read_message() {
            Err(e @ Error::Closed(_)) => Some(e),
            _ => None,
        }
    })
}

/// A well-behaved client: `n` text round trips, 10 ms apart; returns sorted RTTs.
fn bystander(addr: SocketAddr, n: usize) -> Vec<Duration> {
    let mut c = dial(addr).unwrap();
    let mut rtts = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        c.write_message(MessageKind::Text, format!("ping {i}").as_bytes())
            .unwrap();
        assert_eq!(
            c.read_message().unwrap().as_bytes(),
            format!("ping {i}").as_bytes()
        );
        rtts.push(t.elapsed());
        thread::sleep(Duration::from_millis(10));
    }
    rtts.sort();
    rtts
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Rate of binary messages (and bytes) the server delivered between `from` and
/// `to` seconds after `t0`.
fn rate(log: &Log, t0: Instant, from: f64, to: f64) -> (f64, f64) {
    let log = log.lock().unwrap();
    let (a, b) = (
        t0 + Duration::from_secs_f64(from),
        t0 + Duration::from_secs_f64(to),
    );
    let inside: Vec<_> = log.iter().filter(|(t, _)| *t >= a && *t < b).collect();
    let secs = to - from;
    (
        inside.len() as f64 / secs,
        inside.iter().map(|(_, n)| *n as f64).sum::<f64>() / secs,
    )
}

#[test]
fn a_message_flood_is_closed_with_1008() {
    let (h, addr, _) = start(Server::builder().max_messages_per_sec(200));
    let end = flood(addr, 16, 3.0).join().unwrap();
    match end {
        Some(Error::Closed(f)) => {
            assert_eq!(f.code, CloseCode::POLICY_VIOLATION);
            assert_eq!(f.reason, "rate limit");
        }
        other => panic!("the flooder was not closed with 1008: {other:?}"),
    }
    // A client within the rate is untouched.
    let rtts = bystander(addr, 50);
    assert_eq!(rtts.len(), 50);
    until(
        || h.stats().rate_limited == 1 && h.stats().closes.policy_violation == 1,
        "the flooder's 1008 counted once",
    );
    h.shutdown(Duration::from_secs(1));
}

#[test]
fn a_message_flood_is_throttled_to_the_rate_and_a_bystander_keeps_its_latency() {
    const RATE: f64 = 2000.0;
    let (h, addr, log) = start(
        Server::builder()
            .max_messages_per_sec(RATE as u32)
            .rate_policy(RatePolicy::Throttle),
    );
    // The bystander alone first, for its baseline.
    let alone = bystander(addr, 100);
    let t0 = Instant::now();
    let flooder = flood(addr, 16, 4.0);
    let during = bystander(addr, 200);
    assert!(flooder.join().unwrap().is_none(), "the flooder was closed");
    // Skip the first second (the bucket's one second of burst).
    let (msgs, _) = rate(&log, t0, 1.0, 3.5);
    println!(
        "throttle {RATE} msg/s: delivered {msgs:.0} msg/s; bystander RTT alone p50 {:?} p99 {:?}, \
         during the flood p50 {:?} p99 {:?} max {:?}; throttled {} times",
        pct(&alone, 0.5),
        pct(&alone, 0.99),
        pct(&during, 0.5),
        pct(&during, 0.99),
        during[during.len() - 1],
        h.stats().throttled
    );
    assert!(
        (msgs - RATE).abs() <= RATE * 0.1,
        "delivered {msgs:.0} msg/s, limit {RATE}"
    );
    until(|| h.stats().throttled > 0, "throttling counted");
    assert_eq!(h.stats().rate_limited, 0);
    assert!(
        pct(&during, 0.99) < Duration::from_millis(50),
        "the bystander's p99 {:?}",
        pct(&during, 0.99)
    );
    h.shutdown(Duration::from_secs(1));
}

#[test]
fn a_byte_flood_is_throttled_to_the_rate() {
    const RATE: f64 = 4.0 * 1024.0 * 1024.0;
    let (h, addr, log) = start(
        Server::builder()
            .max_bytes_per_sec(RATE as u64)
            .rate_policy(RatePolicy::Throttle),
    );
    let t0 = Instant::now();
    assert!(flood(addr, 32 * 1024, 4.0).join().unwrap().is_none());
    let (_, bytes) = rate(&log, t0, 1.0, 3.5);
    println!(
        "throttle {:.1} MiB/s: delivered {:.2} MiB/s",
        RATE / 1048576.0,
        bytes / 1048576.0
    );
    assert!(
        (bytes - RATE).abs() <= RATE * 0.1,
        "delivered {bytes:.0} B/s, limit {RATE}"
    );
    h.shutdown(Duration::from_secs(1));
}

/// `examples/echo` takes the limits as flags.
#[test]
fn echo_example_limits_flags() {
    let (_child, addr) = support::run_example(
        "echo",
        &[
            "--quiet",
            "--max-conns-per-ip",
            "1",
            "--max-msgs-per-sec",
            "50",
        ],
    );
    let url = format!("ws://{addr}/websocket");
    let (mut first, _) = Dialer::new().dial(&url).unwrap();
    let answer = raw_answer(addr);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    // 200 messages at once: over 50 per second, closed with 1008.
    let mut end = None;
    for _ in 0..200 {
        if let Err(e) = first.write_message(MessageKind::Text, b"x") {
            end = Some(e);
            break;
        }
    }
    first.set_read_deadline(Some(Instant::now() + T));
    let closed = loop {
        match first.read_message() {
            Ok(_) => {}
            Err(e) => break e,
        }
    };
    match closed {
        Error::Closed(f) => assert_eq!(f.code, CloseCode::POLICY_VIOLATION, "{end:?}"),
        e => panic!("not closed with 1008: {e} ({end:?})"),
    }
}
