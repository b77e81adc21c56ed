//! A load generator built on silverback's event-loop client.
//!
//! ```text
//! loadgen echo    --url ws://127.0.0.1:9000/ --conns 100 --size 20 --duration 5 [--text] [--server-pid PID]
//!                 [--count N]   (exactly N round trips per connection, then close)
//! loadgen idle    --url ws://127.0.0.1:9000/ --conns 10000 --hold 5 --server-pid PID
//! (any mode: `--url wss://... --cafile PEM` with `--features tls`)
//! loadgen connect --url ws://127.0.0.1:9000/ --conns 16 --duration 5 [--server-pid PID]
//! loadgen soak    --url ws://127.0.0.1:9000/ --conns 10000 --duration 1200 --server-pid PID
//!                 [--interval 10] [--report-every 60] [--resetters 2] [--slow-readers 2] [--seed N] [--deflate]
//! loadgen push    --url ws://127.0.0.1:9001/ --url ws://127.0.0.1:9002/ --conns 20000 --duration 20
//!                 [--pushers 8] [--at "5:kill -STOP PID"]...
//! loadgen fanout  --url 'ws://127.0.0.1:22345/getPushNews?userId=u{i}' --conns 10000 --rate 10
//!                 --duration 8 --size 1024 --post 'http://127.0.0.1:22345/push' [--server-pid PID] [--deflate]
//! loadgen restart --url ws://127.0.0.1:9000/ --conns 10000 --busy 10 --size 64 --duration 10
//!                 --at "4:kill -USR2 PID" [--deflate]
//! loadgen handshake --url ws://127.0.0.1:9000/ --count 500 [--proxy http://127.0.0.1:3128]
//! loadgen reconnect --url ws://127.0.0.1:9000/ --conns 1000 --window 1 --max-delay 8 --duration 12
//!                 --at "3:kill -9 PID" --at "3.5:COMMAND THAT STARTS IT AGAIN"
//! ```
//!
//! * `echo`: closed loop, each connection has one message in flight (like
//!   uWebSockets' load_test and ../shared/bench's wsload). Prints msgs/s, round-trip
//!   latency p50/p99, and with `--server-pid` the server's CPU time per message.
//!   The server must echo every message once (e.g. `examples/echo --plain`).
//!   `--deflate` (with `--features deflate`) offers permessage-deflate
//!   (`--deflate-mode` as in examples/echo); `--text` sends one JSON-like record
//!   repeated; `--corpus` sends text messages of `--size` bytes cut from a corpus of
//!   varied JSON chat/push messages (64 different ones in rotation), checking each
//!   echo byte for byte.
//! * `idle`: opens N connections (256 handshakes in flight), holds them for
//!   `--hold` seconds once all are up, prints the server's RSS growth per
//!   connection (from /proc/PID/status). `--message BYTES`: each connection first
//!   exchanges one corpus message of that size (so compression state exists).
//! * `connect`: keeps N handshakes in flight (connect, upgrade, close) and prints
//!   handshakes/s and server CPU per handshake.
//! * `soak`: a long, churning, byte-verified load (examples/common/soak.rs says
//!   what it does); exits non-zero if anything was lost or corrupted or the server's
//!   memory or descriptors did not come back.
//! * `push`: against examples/push running as a cluster (one `--url` per process):
//!   pushes through random processes to random users, every delivery checked,
//!   latency same-process and cross-process, faults injected with `--at`
//!   (examples/common/push_load.rs says what it does).
//! * `fanout`: N subscribers, R posts/s to a push endpoint, every delivery counted:
//!   deliveries/s, latency from the POST to the last subscriber (p50/p99/max),
//!   lost, and the server's CPU per delivered message (examples/common/fanout.rs
//!   says how).
//! * `restart`: what clients see while the server hands its connections to a new
//!   process (round trips before and during, connections and messages lost;
//!   examples/common/restart.rs says how).
//! * `handshake`, `reconnect`: what a device sees through a proxy and after a
//!   server restart (examples/common/fleet.rs says what they measure).
//!
//! Output is one JSON line. Run it pinned to another core than the server
//! (`taskset -c 1 ...`) so the two do not compete.

mod common;
#[path = "common/corpus.rs"]
mod corpus;
#[path = "common/fanout.rs"]
mod fanout;
#[path = "common/fleet.rs"]
mod fleet;
#[path = "common/http.rs"]
mod http;
#[path = "common/push_load.rs"]
mod push_load;
#[path = "common/restart.rs"]
mod restart;
#[path = "common/soak.rs"]
mod soak;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use silverback::event::{Client, Ctx, Handler, MessageRef};
use silverback::{CloseCode, Error, MessageKind};

/// utime + stime of a process, in microseconds (Linux /proc).
fn cpu_us(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on Linux.
    Some(ticks * 10_000)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[derive(Default)]
struct Conn {
    sent_at: Option<Instant>,
    /// Which of the payloads is in flight.
    next: usize,
    /// Round trips done (with `--count`).
    done: u64,
}

struct Echo {
    payloads: Vec<Vec<u8>>,
    kind: MessageKind,
    start: Option<Instant>,
    warmup_until: Option<Instant>,
    stop_at: Option<Instant>,
    warmup: Duration,
    duration: Duration,
    opened: usize,
    conns: usize,
    measured: u64,
    latencies_us: Vec<u32>,
    errors: u64,
    measure_cpu: Option<(u32, u64)>,
    server_pid: Option<u32>,
    cpu_used_us: Option<u64>,
    /// Connections that negotiated permessage-deflate.
    compressed: usize,
    /// `--count N`: every connection makes exactly N round trips, all measured (no
    /// warm-up, no duration), then closes.
    count: Option<u64>,
}

impl Echo {
    fn send(&self, ctx: &mut Ctx<'_, Conn>) {
        ctx.data().sent_at = Some(Instant::now());
        let i = ctx.data().next % self.payloads.len();
        let _ = ctx.send(self.kind, &self.payloads[i]);
    }
}

impl Handler for Echo {
    type Data = Conn;

    fn on_open(&mut self, ctx: &mut Ctx<'_, Conn>) {
        self.opened += 1;
        self.compressed += usize::from(ctx.is_compressed());
        if self.opened == self.conns {
            // Everyone is connected: start the clock.
            let now = Instant::now();
            self.start = Some(now);
            self.warmup_until = Some(now + self.warmup);
            self.stop_at = Some(now + self.warmup + self.duration);
        }
        self.send(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Conn>, msg: MessageRef<'_>) {
        let now = Instant::now();
        let i = ctx.data().next % self.payloads.len();
        if msg.data != self.payloads[i].as_slice() {
            self.errors += 1;
        }
        ctx.data().next = i + 1;
        if let Some(count) = self.count {
            self.measured += 1;
            if let Some(sent) = ctx.data().sent_at {
                self.latencies_us
                    .push(now.duration_since(sent).as_micros() as u32);
            }
            ctx.data().done += 1;
            if ctx.data().done >= count {
                let _ = ctx.close(CloseCode::NORMAL, "");
                return;
            }
        } else if let (Some(sent), Some(w), Some(stop)) =
            (ctx.data().sent_at, self.warmup_until, self.stop_at)
        {
            if now >= w && now < stop {
                if self.measured == 0
                    && let Some(pid) = self.server_pid
                {
                    self.measure_cpu = cpu_us(pid).map(|c| (pid, c));
                }
                self.measured += 1;
                self.latencies_us
                    .push(now.duration_since(sent).as_micros() as u32);
            }
            if now >= stop {
                if let Some((pid, c0)) = self.measure_cpu.take() {
                    self.cpu_used_us = cpu_us(pid).map(|c| c.saturating_sub(c0));
                }
                let _ = ctx.close(CloseCode::NORMAL, "");
                return;
            }
        }
        self.send(ctx);
    }

    fn on_error(&mut self, _: &mut Ctx<'_, Conn>, _: &Error) {
        self.errors += 1;
    }
}

fn echo(
    url: &str,
    conns: usize,
    size: usize,
    duration: f64,
    text: bool,
    corpus: bool,
    pid: Option<u32>,
) -> Result<String, Error> {
    let builder = deflate(
        tls(Client::builder())
            .max_connections(conns + 16)
            .max_message_size(64 << 20)
            .max_output_buffer(64 << 20),
        common::flag("--deflate"),
    )?;
    let count: Option<u64> = common::flag_value("--count").and_then(|v| v.parse().ok());
    let mut rng = corpus::Rng::new(1);
    let mut client = builder.build(Echo {
        payloads: if corpus {
            (0..64).map(|_| corpus::text(&mut rng, size)).collect()
        } else if text {
            // One JSON-like record repeated (compresses far better than real traffic).
            vec![
            br#"{"user":"alice","event":"price","symbol":"ACME","bid":101.25,"ask":101.5,"seq":"#
                .iter()
                .copied()
                .cycle()
                .take(size)
                .collect()]
        } else {
            vec![vec![b'x'; size]]
        },
        kind: if text || corpus {
            MessageKind::Text
        } else {
            MessageKind::Binary
        },
        start: None,
        warmup_until: None,
        stop_at: None,
        warmup: Duration::from_secs(1),
        duration: Duration::from_secs_f64(duration),
        opened: 0,
        conns,
        measured: 0,
        latencies_us: Vec::new(),
        errors: 0,
        measure_cpu: None,
        server_pid: pid,
        cpu_used_us: None,
        compressed: 0,
        count,
    })?;
    let began = Instant::now();
    for _ in 0..conns {
        client.connect(url, Conn::default())?;
    }
    client.run()?;
    let h = client.handler_mut();
    h.latencies_us.sort_unstable();
    let secs = match count {
        Some(_) => began.elapsed().as_secs_f64(),
        None => duration,
    };
    let rate = h.measured as f64 / secs;
    let cpu_per_msg = h.cpu_used_us.map(|c| c as f64 / h.measured.max(1) as f64);
    Ok(format!(
        "{{\"mode\": \"echo\", \"conns\": {conns}, \"size\": {size}, \"msgs\": {}, \"msgs_per_s\": {:.0}, \"p50_us\": {}, \"p99_us\": {}, \"server_cpu_us_per_msg\": {}, \"compressed_conns\": {}, \"errors\": {}}}",
        h.measured,
        rate,
        percentile(&h.latencies_us, 0.50),
        percentile(&h.latencies_us, 0.99),
        cpu_per_msg.map_or("null".into(), |c| format!("{c:.2}")),
        h.compressed,
        h.errors
    ))
}

/// Handshakes `idle` keeps in flight: a TLS handshake costs the server about a
/// millisecond here, so 10,000 at once would outlast its handshake timeout.
const IDLE_IN_FLIGHT: usize = 256;

struct Idle {
    want: usize,
    open: usize,
    failed: usize,
    /// One message to exchange per connection (`--message BYTES`).
    message: Option<Vec<u8>>,
    echoed: usize,
    compressed: usize,
    url: String,
    /// Connections not started yet (started as others settle).
    to_start: usize,
    /// Connections settled: open (and echoed, with `--message`) or failed.
    settled: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Idle {
    /// This connection is done with its start; the next one begins.
    fn settle(&mut self, ctx: &mut Ctx<'_, bool>) {
        if std::mem::replace(ctx.data(), true) {
            return;
        }
        self.settled
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if self.to_start > 0 {
            self.to_start -= 1;
            let _ = ctx.lp().connect(&self.url, false);
        }
    }
}

impl Handler for Idle {
    /// Settled yet.
    type Data = bool;
    fn on_open(&mut self, ctx: &mut Ctx<'_, bool>) {
        self.open += 1;
        self.compressed += usize::from(ctx.is_compressed());
        match &self.message {
            Some(m) => {
                let _ = ctx.send(MessageKind::Text, m);
            }
            None => self.settle(ctx),
        }
    }
    fn on_message(&mut self, ctx: &mut Ctx<'_, bool>, msg: MessageRef<'_>) {
        if self.message.as_deref() == Some(msg.data) {
            self.echoed += 1;
        } else {
            self.failed += 1;
        }
        self.settle(ctx);
    }
    fn on_error(&mut self, ctx: &mut Ctx<'_, bool>, _: &Error) {
        self.failed += 1;
        self.settle(ctx);
    }
    fn on_close(&mut self, ctx: &mut Ctx<'_, bool>, _: CloseCode, _: &str) {
        self.settle(ctx);
    }
}

/// `wss://` URLs: trust `--cafile PEM` (build with `--features tls`).
fn tls(b: silverback::event::ClientBuilder) -> silverback::event::ClientBuilder {
    #[cfg(feature = "tls")]
    if let Some(cfg) = common::client_tls() {
        return b.tls(cfg);
    }
    b
}

/// `--deflate`: offer permessage-deflate (`--deflate-mode` as in examples/echo);
/// an error in a build without the `deflate` feature.
fn deflate(
    b: silverback::event::ClientBuilder,
    on: bool,
) -> Result<silverback::event::ClientBuilder, Error> {
    if !on {
        return Ok(b);
    }
    #[cfg(feature = "deflate")]
    return Ok(b.deflate(common::deflate_mode_config()));
    #[cfg(not(feature = "deflate"))]
    Err(Error::Io(std::io::Error::other(
        "--deflate needs a build with --features deflate",
    )))
}

fn idle(
    url: &str,
    conns: usize,
    hold: f64,
    message: Option<usize>,
    pid: Option<u32>,
) -> Result<String, Error> {
    let before = pid.and_then(rss_kib);
    let builder = deflate(
        tls(Client::builder())
            .max_connections(conns + 16)
            .handshake_timeout(Duration::from_secs(60)),
        common::flag("--deflate"),
    )?;
    let settled = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let first = conns.min(IDLE_IN_FLIGHT);
    let mut client = builder.build(Idle {
        want: conns,
        open: 0,
        failed: 0,
        message: message.map(|n| corpus::text(&mut corpus::Rng::new(7), n)),
        echoed: 0,
        compressed: 0,
        url: url.to_owned(),
        to_start: conns - first,
        settled: settled.clone(),
    })?;
    for _ in 0..first {
        client.connect(url, false)?;
    }
    let handle = client.handle();
    let hold = Duration::from_secs_f64(hold);
    let (tx, rx) = std::sync::mpsc::channel();
    let watcher = std::thread::spawn(move || {
        // Wait until every connection is up (or failed; at most 3 minutes), hold
        // them, sample the server, then stop.
        let give_up = Instant::now() + Duration::from_secs(180);
        while settled.load(std::sync::atomic::Ordering::Relaxed) < conns && Instant::now() < give_up
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(hold);
        let after = pid.and_then(rss_kib);
        let _ = tx.send(after);
        handle.shutdown(Duration::from_secs(10));
    });
    client.run()?;
    let _ = watcher.join();
    let after = rx.recv().ok().flatten();
    let h = client.handler();
    let per = match (before, after) {
        (Some(b), Some(a)) if h.open > 0 => {
            format!("{:.2}", (a.saturating_sub(b)) as f64 / h.open as f64)
        }
        _ => "null".into(),
    };
    Ok(format!(
        "{{\"mode\": \"idle\", \"wanted\": {}, \"established\": {}, \"compressed\": {}, \"echoed\": {}, \"failed\": {}, \"rss_before_kib\": {}, \"rss_after_kib\": {}, \"kib_per_conn\": {per}}}",
        h.want,
        h.open,
        h.compressed,
        h.echoed,
        h.failed,
        before.map_or("null".into(), |v| v.to_string()),
        after.map_or("null".into(), |v| v.to_string())
    ))
}

struct Connect {
    url: String,
    stop_at: Instant,
    done: u64,
    failed: u64,
}

impl Handler for Connect {
    type Data = ();
    fn on_open(&mut self, ctx: &mut Ctx<'_, ()>) {
        let _ = ctx.close(CloseCode::NORMAL, "");
    }
    fn on_close(&mut self, ctx: &mut Ctx<'_, ()>, code: CloseCode, _: &str) {
        if code == CloseCode::NORMAL {
            self.done += 1;
        } else {
            self.failed += 1;
        }
        if Instant::now() < self.stop_at {
            let url = self.url.clone();
            let _ = ctx.lp().connect(&url, ());
        }
    }
}

fn connect(url: &str, conns: usize, duration: f64, pid: Option<u32>) -> Result<String, Error> {
    let d = Duration::from_secs_f64(duration);
    let mut client = tls(Client::builder())
        .max_connections(conns + 16)
        .close_timeout(Duration::from_secs(2))
        .build(Connect {
            url: url.to_owned(),
            stop_at: Instant::now() + d,
            done: 0,
            failed: 0,
        })?;
    let cpu0 = pid.and_then(cpu_us);
    let t0 = Instant::now();
    for _ in 0..conns {
        client.connect(url, ())?;
    }
    client.run()?;
    let secs = t0.elapsed().as_secs_f64();
    let cpu = match (pid.and_then(cpu_us), cpu0) {
        (Some(a), Some(b)) => format!(
            "{:.1}",
            (a - b) as f64 / client.handler().done.max(1) as f64
        ),
        _ => "null".into(),
    };
    let h = client.handler();
    Ok(format!(
        "{{\"mode\": \"connect\", \"concurrency\": {conns}, \"handshakes\": {}, \"per_s\": {:.0}, \"server_cpu_us_per_handshake\": {cpu}, \"failed\": {}}}",
        h.done,
        h.done as f64 / secs,
        h.failed
    ))
}

/// Prints a checked run's report line; its exit status says whether it passed.
fn verdict(r: Result<(String, bool), Error>) -> ExitCode {
    match r {
        Ok((line, pass)) => {
            println!("{line}");
            if pass {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The `--at SECS:COMMAND` flags; `None` (after a message) if one is malformed.
fn at_flags() -> Option<Vec<(f64, String)>> {
    let mut at = Vec::new();
    for spec in common::flag_values("--at") {
        match spec
            .split_once(':')
            .and_then(|(t, c)| Some((t.parse().ok()?, c.to_owned())))
        {
            Some(a) => at.push(a),
            None => {
                eprintln!("--at {spec:?}: expected SECS:COMMAND");
                return None;
            }
        }
    }
    Some(at)
}

fn main() -> ExitCode {
    common::usage(
        "loadgen echo|idle|connect|soak|push --url ws://HOST:PORT/ [--conns N] [--size BYTES] \
         [--duration SECS | --count N] [--hold SECS] [--text] [--corpus] [--message BYTES] [--server-pid PID]\n    \
         [--deflate [--deflate-mode MODE]] [--cafile PEM]\n    \
         soak: [--interval SECS] [--report-every SECS] [--resetters N] [--slow-readers N] [--seed N]\n    \
         push: --url ws://A/ --url ws://B/ ... [--pushers N] [--at SECS:COMMAND]...   (examples/push processes)\n    \
         push-holder (started by push): [--first I] [--bystander]\n    \
         fanout: --url 'ws://HOST:PORT/PATH?id={i}' --post http://HOST:PORT/PATH [--rate POSTS_PER_SEC] [--size BYTES] [--deflate]\n    \
         handshake: [--count N] [--proxy URL]\n    \
         reconnect: [--window SECS] [--max-delay SECS] [--at SECS:COMMAND]...\n    \
         restart: [--busy N] [--size BYTES] [--interval MS] [--duration SECS] [--at SECS:COMMAND]... [--deflate]",
    );
    let mode = std::env::args().nth(1).unwrap_or_default();
    let url = common::flag_value("--url").unwrap_or_else(|| "ws://127.0.0.1:22345/".into());
    let num = |name: &str, default: f64| -> f64 {
        common::flag_value(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let pid = common::flag_value("--server-pid").and_then(|v| v.parse().ok());
    let conns = num("--conns", 1.0) as usize;
    let r = match mode.as_str() {
        "echo" => echo(
            &url,
            conns,
            num("--size", 20.0) as usize,
            num("--duration", 5.0),
            common::flag("--text"),
            common::flag("--corpus"),
            pid,
        ),
        "idle" => idle(
            &url,
            conns,
            num("--hold", 5.0),
            common::flag_value("--message").and_then(|v| v.parse().ok()),
            pid,
        ),
        "soak" => {
            let settings = soak::Settings {
                url: url.clone(),
                conns,
                duration: num("--duration", 60.0),
                interval: num("--interval", 10.0),
                report_every: num("--report-every", 60.0),
                resetters: num("--resetters", 2.0) as usize,
                slow_readers: num("--slow-readers", 2.0) as usize,
                pid,
                seed: num("--seed", 1.0) as u64,
                deflate: common::flag("--deflate"),
            };
            return verdict(soak::run(settings));
        }
        "connect" => connect(&url, conns, num("--duration", 5.0), pid),
        "fanout" => match deflate(tls(Client::builder()), common::flag("--deflate")) {
            Ok(builder) => fanout::run(fanout::Settings {
                url: url.clone(),
                conns,
                rate: num("--rate", 20.0).max(0.01),
                duration: num("--duration", 8.0),
                size: num("--size", 1024.0) as usize,
                post: common::flag_value("--post").unwrap_or_default(),
                pid,
                builder,
            }),
            Err(e) => Err(e),
        },
        "restart" => {
            let Some(at) = at_flags() else {
                return ExitCode::from(2);
            };
            match deflate(tls(Client::builder()), common::flag("--deflate")) {
                Ok(builder) => restart::run(restart::Settings {
                    url: url.clone(),
                    conns,
                    busy: num("--busy", 10.0) as usize,
                    size: num("--size", 64.0) as usize,
                    interval: Duration::from_secs_f64(num("--interval", 0.0) / 1e3),
                    duration: num("--duration", 10.0),
                    at,
                    builder,
                }),
                Err(e) => Err(e),
            }
        }
        "handshake" => fleet::handshake(
            &url,
            num("--count", 200.0) as usize,
            common::flag_value("--proxy").as_deref(),
        ),
        "reconnect" => {
            let Some(at) = at_flags() else {
                return ExitCode::from(2);
            };
            fleet::reconnect(
                &url,
                conns,
                num("--window", 1.0),
                num("--max-delay", 8.0),
                num("--duration", 12.0),
                at,
            )
        }
        "push" => {
            let Some(at) = at_flags() else {
                return ExitCode::from(2);
            };
            let settings = push_load::Settings {
                urls: common::flag_values("--url"),
                conns,
                duration: num("--duration", 10.0),
                pushers: num("--pushers", 8.0) as usize,
                at,
            };
            return verdict(push_load::run(settings));
        }
        "push-holder" => {
            let r = push_load::holder(
                &common::flag_values("--url"),
                num("--first", 0.0) as u32,
                conns as u32,
                common::flag("--bystander"),
            );
            return match r {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("loadgen push-holder: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        other => {
            eprintln!(
                "unknown mode {other:?}: echo, idle, connect, soak, push, fanout, restart, handshake or reconnect"
            );
            return ExitCode::FAILURE;
        }
    };
    match r {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}
