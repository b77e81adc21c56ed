//! `loadgen soak`: a long, churning load against an echo server that verifies every
//! byte (examples/loadgen.rs; results in docs/soak.md).
//!
//! One event-loop client holds `--conns` connections. Each first echoes a 1 KiB
//! warm-up message, then wakes at random (on
//! average every `--interval` seconds) and sends a message of 0 B - 256 KiB
//! (log-uniform sizes; text from the JSON corpus or random binary; a quarter of them
//! fragmented), or pings, or closes and is replaced by a fresh connection. Every echo
//! is compared with what was sent, in order. Beside it, threads misbehave: some
//! reset their connection in the middle of a message (RST, half a frame sent), some
//! read 256 KiB echoes 4 KiB at a time with pauses (slow readers). After
//! `--duration` seconds everything drains and closes, and the server's RSS and open
//! descriptors are compared with the start.
//!
//! Output: one JSON line per `--report-every` seconds and a summary line. The exit
//! status is non-zero if any message or pong was lost or corrupted, if a connection
//! closed or failed unexpectedly, if the server's RSS with every connection idle
//! after the churn is not within 10 % of the same before it (plus 2 MiB: the spare
//! buffers and pooled zlib streams a loop thread keeps by design once it has been
//! busy; `strict_10pct` reports the plain 10 %), or if the server's descriptors do
//! not come back to their count before the first connection.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use silverback::event::{Client, Ctx, Handler, MessageRef};
use silverback::{CloseCode, Error, MessageKind};

use crate::corpus::{self, Rng};

/// The largest message: 256 KiB.
const MAX_SIZE: u64 = 256 * 1024;

/// Settings from the command line.
#[derive(Clone)]
pub struct Settings {
    /// ws:// URL of the echo server.
    pub url: String,
    /// Connections held by the event-loop client.
    pub conns: usize,
    /// Seconds of load (churn stops after this).
    pub duration: f64,
    /// Mean seconds between a connection's actions.
    pub interval: f64,
    /// Seconds between report lines.
    pub report_every: f64,
    /// Threads that reset mid-message, and threads that read slowly.
    pub resetters: usize,
    /// Slow-reader threads.
    pub slow_readers: usize,
    /// The server's pid (RSS, descriptors).
    pub pid: Option<u32>,
    /// Seed of everything random.
    pub seed: u64,
    /// Offer permessage-deflate.
    pub deflate: bool,
}

/// The deterministic content of a message: regenerated to verify the echo.
fn content(seed: u64, len: usize, text: bool) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    if text {
        corpus::text(&mut rng, len)
    } else {
        let mut v = vec![0u8; len];
        rng.fill(&mut v);
        v
    }
}

struct Sent {
    seed: u64,
    len: usize,
    text: bool,
    at: Instant,
}

#[derive(Default)]
pub struct Data {
    pending: VecDeque<Sent>,
    pings: VecDeque<u64>,
    closing: bool,
    /// The warm-up echo is still outstanding.
    warming: bool,
}

#[derive(Default, Clone, Copy)]
struct Totals {
    verified: u64,
    verified_bytes: u64,
    lost: u64,
    corrupted: u64,
    pings: u64,
    pongs_lost: u64,
    churned: u64,
    errors: u64,
    fragmented: u64,
}

struct Soak {
    s: Settings,
    rng: Rng,
    stop_at: Instant,
    start: Instant,
    next_report: Instant,
    open: usize,
    t: Totals,
    minute_lat_us: Vec<u32>,
    minute: u32,
    peak_rss: Arc<AtomicU64>,
    misbehaving: Arc<Counters>,
    stopping: bool,
    /// Echoes outstanding over all connections (read by the watcher).
    outstanding: Arc<AtomicU64>,
    /// Every connection has opened and echoed its warm-up message (the ramp-up is
    /// over; with compression, every connection holds its context).
    all_open: Arc<AtomicBool>,
    /// Warm-up echoes verified.
    warmed: usize,
    /// The watcher has sampled the drained state: close everything.
    close_now: Arc<AtomicBool>,
    /// Unexpected closes and errors, by close code or message (the first 20 kinds).
    unexpected: Vec<(String, u64)>,
}

impl Soak {
    fn note(&mut self, what: String) {
        if let Some(e) = self.unexpected.iter_mut().find(|(w, _)| *w == what) {
            e.1 += 1;
        } else if self.unexpected.len() < 20 {
            self.unexpected.push((what, 1));
        }
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

fn p99(v: &mut [u32]) -> u32 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[((v.len() - 1) as f64 * 0.99).round() as usize]
}

impl Soak {
    fn rearm(&mut self, ctx: &mut Ctx<'_, Data>) {
        let mean = self.s.interval;
        let after = mean * (0.5 + self.rng.below(1000) as f64 / 1000.0);
        ctx.set_timer(Duration::from_secs_f64(after), 0);
    }

    fn report(&mut self, now: Instant) {
        if now < self.next_report {
            return;
        }
        self.next_report += Duration::from_secs_f64(self.s.report_every);
        self.minute += 1;
        let rss = self.s.pid.and_then(rss_kib);
        let fd = self.s.pid.and_then(fds);
        let p = p99(&mut self.minute_lat_us);
        let n = self.minute_lat_us.len();
        self.minute_lat_us.clear();
        let m = self.misbehaving.snapshot();
        println!(
            "{{\"report\": {}, \"t_s\": {:.0}, \"open\": {}, \"verified\": {}, \"verified_mib\": {:.1}, \"lost\": {}, \"corrupted\": {}, \"churned\": {}, \"resets\": {}, \"slow_verified\": {}, \"msgs_this_period\": {n}, \"p99_ms\": {:.1}, \"server_rss_kib\": {}, \"server_fds\": {}}}",
            self.minute,
            now.duration_since(self.start).as_secs_f64(),
            self.open,
            self.t.verified,
            self.t.verified_bytes as f64 / (1 << 20) as f64,
            self.t.lost,
            self.t.corrupted + m.corrupted,
            self.t.churned,
            m.resets,
            m.verified,
            p as f64 / 1000.0,
            rss.map_or("null".into(), |v| v.to_string()),
            fd.map_or("null".into(), |v| v.to_string()),
        );
    }

    fn act(&mut self, ctx: &mut Ctx<'_, Data>) {
        let r = self.rng.below(100);
        if r < 3 && ctx.data().pending.is_empty() {
            // Churn: a normal close; on_close connects a replacement.
            ctx.data().closing = true;
            let _ = ctx.close(CloseCode::NORMAL, "churn");
            return;
        }
        if r < 12 {
            let tag = self.rng.next();
            if ctx.ping(&tag.to_le_bytes()).is_ok() {
                ctx.data().pings.push_back(tag);
                self.t.pings += 1;
            }
            self.rearm(ctx);
            return;
        }
        // Log-uniform size, 0 B to 256 KiB.
        let bits = self.rng.below(19);
        let len = (self.rng.below(1 << bits) as usize).min(MAX_SIZE as usize);
        let text = self.rng.below(2) == 0;
        let seed = self.rng.next();
        let data = content(seed, len, text);
        let kind = if text {
            MessageKind::Text
        } else {
            MessageKind::Binary
        };
        let ok = if self.rng.below(4) == 0 && len > 1 {
            // Fragmented: 2-8 pieces at random cuts.
            self.t.fragmented += 1;
            let pieces = 2 + self.rng.below(7) as usize;
            let mut cuts: Vec<usize> = (1..pieces)
                .map(|_| self.rng.below(len as u64) as usize)
                .collect();
            cuts.sort_unstable();
            let mut at = 0;
            let mut ok = true;
            for (i, &c) in cuts.iter().chain(std::iter::once(&len)).enumerate() {
                let c = c.max(at);
                ok &= ctx
                    .send_fragment(kind, &data[at..c], i + 1 == pieces)
                    .is_ok();
                at = c;
            }
            ok
        } else {
            ctx.send(kind, &data).is_ok()
        };
        if ok {
            self.outstanding.fetch_add(1, Ordering::Relaxed);
            ctx.data().pending.push_back(Sent {
                seed,
                len,
                text,
                at: Instant::now(),
            });
        }
        self.rearm(ctx);
    }
}

impl Handler for Soak {
    type Data = Data;

    fn on_open(&mut self, ctx: &mut Ctx<'_, Data>) {
        self.open += 1;
        // A warm-up: one 1 KiB corpus message, so that the idle baseline sampled
        // after the ramp-up already includes what a connection keeps once it has
        // talked (compression context, in the modes that keep one).
        let seed = self.rng.next();
        if ctx
            .send(MessageKind::Text, &content(seed, 1024, true))
            .is_ok()
        {
            self.outstanding.fetch_add(1, Ordering::Relaxed);
            ctx.data().pending.push_back(Sent {
                seed,
                len: 1024,
                text: true,
                at: Instant::now(),
            });
            ctx.data().warming = true;
        }
        self.rearm(ctx);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Data>, _: u64) {
        let now = Instant::now();
        self.report(now);
        if now >= self.stop_at {
            // The churn is over: no new traffic; the connections stay open, idle,
            // until the watcher has sampled the server, then close.
            self.stopping = true;
            if self.close_now.load(Ordering::Relaxed)
                && ctx.data().pending.is_empty()
                && !ctx.data().closing
            {
                ctx.data().closing = true;
                let _ = ctx.close(CloseCode::NORMAL, "done");
            } else {
                ctx.set_timer(Duration::from_millis(200), 0);
            }
            return;
        }
        self.act(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Data>, msg: MessageRef<'_>) {
        let now = Instant::now();
        let Some(sent) = ctx.data().pending.pop_front() else {
            self.t.corrupted += 1;
            return;
        };
        self.outstanding.fetch_sub(1, Ordering::Relaxed);
        let want_kind = if sent.text {
            MessageKind::Text
        } else {
            MessageKind::Binary
        };
        if msg.kind != want_kind
            || msg.data.len() != sent.len
            || msg.data != content(sent.seed, sent.len, sent.text).as_slice()
        {
            self.t.corrupted += 1;
        } else {
            self.t.verified += 1;
            self.t.verified_bytes += sent.len as u64;
        }
        if std::mem::take(&mut ctx.data().warming) && !self.stopping {
            self.warmed += 1;
            if self.warmed == self.s.conns {
                self.all_open.store(true, Ordering::Relaxed);
            }
        }
        self.minute_lat_us.push(
            now.duration_since(sent.at)
                .as_micros()
                .min(u32::MAX as u128) as u32,
        );
        self.report(now);
    }

    fn on_pong(&mut self, ctx: &mut Ctx<'_, Data>, data: &[u8]) {
        // Pongs answer pings in order; an unsolicited one (none here) would not match.
        if let Some(tag) = ctx.data().pings.pop_front()
            && data != tag.to_le_bytes()
        {
            self.t.corrupted += 1;
        }
    }

    fn on_close(&mut self, ctx: &mut Ctx<'_, Data>, code: CloseCode, _: &str) {
        self.open = self.open.saturating_sub(1);
        let d = ctx.data();
        self.t.lost += d.pending.len() as u64;
        self.outstanding
            .fetch_sub(d.pending.len() as u64, Ordering::Relaxed);
        self.t.pongs_lost += d.pings.len() as u64;
        let ours = d.closing && code == CloseCode::NORMAL;
        let pending = d.pending.len();
        if !ours {
            self.t.errors += 1;
            self.note(format!("close {} with {pending} pending", u16::from(code)));
        }
        if !self.stopping {
            self.t.churned += 1;
            let url = self.s.url.clone();
            if ctx.lp().connect(&url, Data::default()).is_err() {
                self.t.errors += 1;
            }
        }
    }

    fn on_error(&mut self, _: &mut Ctx<'_, Data>, e: &Error) {
        self.t.errors += 1;
        self.note(format!("error: {e}"));
    }
}

/// What the misbehaving threads did.
#[derive(Default)]
struct Counters {
    resets: AtomicU64,
    verified: AtomicU64,
    corrupted: AtomicU64,
    failures: AtomicU64,
}

#[derive(Default, Clone, Copy)]
struct CountersSnapshot {
    resets: u64,
    verified: u64,
    corrupted: u64,
    failures: u64,
}

impl Counters {
    fn snapshot(&self) -> CountersSnapshot {
        CountersSnapshot {
            resets: self.resets.load(Ordering::Relaxed),
            verified: self.verified.load(Ordering::Relaxed),
            corrupted: self.corrupted.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
        }
    }
}

/// host:port and path of a ws:// URL.
fn split_url(url: &str) -> (String, String) {
    let rest = url.strip_prefix("ws://").unwrap_or(url);
    match rest.find('/') {
        Some(i) => (rest[..i].to_owned(), rest[i..].to_owned()),
        None => (rest.to_owned(), "/".to_owned()),
    }
}

/// Handshakes by hand on a raw socket, sends a frame header for a large masked
/// message and part of its payload, then resets the connection (SO_LINGER 0).
fn reset_once(url: &str, rng: &mut Rng) -> std::io::Result<()> {
    let (host, path) = split_url(url);
    let mut s = TcpStream::connect(&host)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )?;
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b)? == 0 || head.len() > 8192 {
            return Err(std::io::Error::other("no handshake response"));
        }
        head.push(b[0]);
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        return Err(std::io::Error::other("handshake refused"));
    }
    // A whole message first, so the server is echoing when the reset comes.
    let len = 1024 + rng.below(MAX_SIZE - 1024) as usize;
    let mut frame = vec![0x82, 0xFF];
    frame.extend_from_slice(&(len as u64).to_be_bytes());
    frame.extend_from_slice(&[1, 2, 3, 4]);
    let body_len = if rng.below(2) == 0 { len } else { len / 2 };
    let mut body = vec![0u8; body_len];
    rng.fill(&mut body);
    frame.extend_from_slice(&body);
    if body_len == len {
        // Then the start of a second one, cut short.
        frame.extend_from_slice(&[0x82, 0xFE, 0x10, 0x00, 9, 9, 9, 9, 1, 2, 3]);
    }
    s.write_all(&frame)?;
    socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO))?;
    drop(s);
    Ok(())
}

/// A blocking client that sends a batch of large messages (up to 1 MiB) and only
/// then reads the echoes, 4 KiB at a time with pauses, verifying them: the server
/// must queue its output and apply back-pressure rather than drop or stall.
fn slow_reader(
    url: &str,
    rng: &mut Rng,
    stop: &AtomicBool,
    c: &Counters,
) -> silverback::Result<()> {
    let (mut conn, _) = silverback::blocking::Dialer::new().dial(url)?;
    for _ in 0..4 {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let mut sent = Vec::new();
        for _ in 0..4 {
            let len = 64 * 1024 + rng.below(MAX_SIZE - 64 * 1024) as usize;
            let seed = rng.next();
            conn.write_message(MessageKind::Binary, &content(seed, len, false))?;
            sent.push((seed, len));
        }
        for (seed, len) in sent {
            let mut got = Vec::with_capacity(len);
            let mut r = conn.next_reader()?;
            let mut buf = [0u8; 4096];
            loop {
                let n = r.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
                std::thread::sleep(Duration::from_millis(1));
            }
            if got == content(seed, len, false) {
                c.verified.fetch_add(1, Ordering::Relaxed);
            } else {
                c.corrupted.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    conn.close(CloseCode::NORMAL, "")?;
    Ok(())
}

/// Runs the soak; returns the summary line and whether it passed.
///
/// Server memory is compared idle with idle: RSS once every connection is open and
/// before the churn (`idle_start`), and again after the churn stops and every echo
/// is back, with the same number of connections open and idle (`idle_end`): it must
/// be within 10 %. Descriptors are compared before the first connection and after
/// the last one closes.
pub fn run(s: Settings) -> Result<(String, bool), Error> {
    let pid = s.pid;
    let rss_before = pid.and_then(rss_kib);
    let fds_start = pid.and_then(fds);
    let start = Instant::now();
    let stop_at = start + Duration::from_secs_f64(s.duration);
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(Counters::default());
    let peak = Arc::new(AtomicU64::new(rss_before.unwrap_or(0)));
    let outstanding = Arc::new(AtomicU64::new(0));
    let all_open = Arc::new(AtomicBool::new(false));
    let close_now = Arc::new(AtomicBool::new(false));

    // RSS sampler (peak), every 200 ms until stopped.
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some(r) = pid.and_then(rss_kib) {
                    peak.fetch_max(r, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let mut threads = Vec::new();
    for i in 0..s.resetters {
        let (url, stop, c) = (s.url.clone(), stop.clone(), counters.clone());
        let mut rng = Rng::new(s.seed ^ (0x1000 + i as u64));
        threads.push(std::thread::spawn(move || {
            while Instant::now() < stop_at && !stop.load(Ordering::Relaxed) {
                match reset_once(&url, &mut rng) {
                    Ok(()) => c.resets.fetch_add(1, Ordering::Relaxed),
                    Err(_) => c.failures.fetch_add(1, Ordering::Relaxed),
                };
                std::thread::sleep(Duration::from_millis(100));
            }
        }));
    }
    for i in 0..s.slow_readers {
        let (url, stop, c) = (s.url.clone(), stop.clone(), counters.clone());
        let mut rng = Rng::new(s.seed ^ (0x2000 + i as u64));
        threads.push(std::thread::spawn(move || {
            while Instant::now() < stop_at && !stop.load(Ordering::Relaxed) {
                if slow_reader(&url, &mut rng, &stop, &c).is_err() {
                    c.failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    // The watcher: samples the idle baseline after the ramp-up; after the churn,
    // waits for the misbehaving threads and every echo, samples again, then lets the
    // connections close. Bounded: each wait gives up after a minute.
    let watcher = {
        let (all_open, outstanding, close_now) =
            (all_open.clone(), outstanding.clone(), close_now.clone());
        std::thread::spawn(move || {
            let wait_for = |cond: &dyn Fn() -> bool| {
                let give_up = Instant::now() + Duration::from_secs(60);
                while !cond() && Instant::now() < give_up {
                    std::thread::sleep(Duration::from_millis(50));
                }
                cond()
            };
            let ramped = wait_for(&|| all_open.load(Ordering::Relaxed));
            std::thread::sleep(Duration::from_secs(1));
            let idle_start = pid.and_then(rss_kib);
            std::thread::sleep(stop_at.saturating_duration_since(Instant::now()));
            for t in threads {
                let _ = t.join();
            }
            let drained = wait_for(&|| outstanding.load(Ordering::Relaxed) == 0);
            std::thread::sleep(Duration::from_secs(2));
            let idle_end = pid.and_then(rss_kib);
            close_now.store(true, Ordering::Relaxed);
            (ramped, drained, idle_start, idle_end)
        })
    };

    let builder = crate::deflate(
        Client::builder()
            .max_connections(s.conns + 64)
            .max_message_size(MAX_SIZE + 1)
            .max_output_buffer(64 << 20)
            .handshake_timeout(Duration::from_secs(60)),
        s.deflate,
    )?;
    let mut client = builder.build(Soak {
        s: s.clone(),
        rng: Rng::new(s.seed),
        stop_at,
        start,
        next_report: start + Duration::from_secs_f64(s.report_every),
        open: 0,
        t: Totals::default(),
        minute_lat_us: Vec::new(),
        minute: 0,
        peak_rss: peak.clone(),
        misbehaving: counters.clone(),
        stopping: false,
        outstanding: outstanding.clone(),
        all_open: all_open.clone(),
        warmed: 0,
        close_now: close_now.clone(),
        unexpected: Vec::new(),
    })?;
    for _ in 0..s.conns {
        client.connect(&s.url, Data::default())?;
    }
    // The loop ends by itself once every connection has drained and closed; the
    // watchdog stops it if that takes more than four minutes past the end.
    let handle = client.handle();
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let done = done.clone();
        std::thread::spawn(move || {
            let deadline = stop_at + Duration::from_secs(240);
            while !done.load(Ordering::Relaxed) {
                if Instant::now() >= deadline {
                    handle.shutdown(Duration::from_secs(5));
                    return true;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            false
        })
    };
    client.run()?;
    done.store(true, Ordering::Relaxed);
    let forced = watchdog.join().unwrap_or(true);
    stop.store(true, Ordering::Relaxed);
    let (ramped, drained, idle_start, idle_end) = watcher.join().unwrap_or_default();
    let _ = sampler.join();
    // Let the server finish closing, then count its descriptors.
    std::thread::sleep(Duration::from_secs(3));
    let rss_closed = pid.and_then(rss_kib);
    let fds_end = pid.and_then(fds);
    let h = client.handler();
    let m = counters.snapshot();
    let peak = h.peak_rss.load(Ordering::Relaxed);
    // Within 10 %, plus what a loop thread keeps by design once it has been busy:
    // up to 16 read buffers of 64 KiB, 4 transmit buffers of 64 KiB and, with
    // permessage-deflate, a few pooled zlib streams (~340 KiB each): 2 MiB for
    // the one loop thread of the soak's server. `strict_10pct` says whether the
    // plain 10 % held as well.
    const LOOP_SPARES_KIB: f64 = 2048.0;
    let (rss_ok, strict) = match (idle_start, idle_end) {
        (Some(a), Some(b)) => (
            (b as f64) <= a as f64 * 1.10 + LOOP_SPARES_KIB,
            (b as f64) <= a as f64 * 1.10,
        ),
        _ => (true, true),
    };
    let fds_ok = fds_start == fds_end;
    let lost = h.t.lost;
    let corrupted = h.t.corrupted + m.corrupted;
    let pass = lost == 0
        && corrupted == 0
        && h.t.pongs_lost == 0
        && h.t.errors == 0
        && rss_ok
        && fds_ok
        && ramped
        && drained
        && !forced;
    let opt = |v: Option<u64>| v.map_or("null".into(), |v| v.to_string());
    let line = format!(
        "{{\"mode\": \"soak\", \"conns\": {}, \"duration_s\": {:.0}, \"compressed\": {}, \"verified\": {}, \"verified_mib\": {:.1}, \"fragmented_sent\": {}, \"lost\": {lost}, \"corrupted\": {corrupted}, \"pings\": {}, \"pongs_lost\": {}, \"churned\": {}, \"unexpected_closes_or_errors\": {}, \"resets\": {}, \"slow_verified\": {}, \"misbehaver_failures\": {}, \"server_rss_kib\": {{\"before\": {}, \"idle_start\": {}, \"peak\": {peak}, \"idle_end\": {}, \"all_closed\": {}}}, \"idle_rss_back\": {rss_ok}, \"strict_10pct\": {strict}, \"server_fds\": {{\"start\": {}, \"end\": {}}}, \"ramped\": {ramped}, \"drained\": {drained}, \"forced_stop\": {forced}, \"unexpected\": {:?}, \"pass\": {pass}}}",
        s.conns,
        start.elapsed().as_secs_f64(),
        s.deflate,
        h.t.verified,
        h.t.verified_bytes as f64 / (1 << 20) as f64,
        h.t.fragmented,
        h.t.pings,
        h.t.pongs_lost,
        h.t.churned,
        h.t.errors,
        m.resets,
        m.verified,
        m.failures,
        opt(rss_before),
        opt(idle_start),
        opt(idle_end),
        opt(rss_closed),
        opt(fds_start.map(|v| v as u64)),
        opt(fds_end.map(|v| v as u64)),
        h.unexpected
            .iter()
            .map(|(w, n)| format!("{w}: {n}"))
            .collect::<Vec<_>>(),
    );
    Ok((line, pass))
}
