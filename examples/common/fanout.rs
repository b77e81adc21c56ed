//! `loadgen fanout`: N subscribers on one client loop, a poster that POSTs R
//! messages a second to a push endpoint for S seconds, every delivery counted.
//!
//! Each posted body is JSON of exactly `--size` bytes:
//! `{"seq":"NNNNNNNNN","t":"TTTTTTTTTTTTTTTT","pad":"xx…"}` — its number and when it was
//! posted (µs since the run started, on this process's clock, which the
//! subscribers read too). A subscriber checks each message's length and prefix,
//! counts it by number and keeps the latest arrival per number, so the report
//! gives deliveries/s, the latency from the POST to the *last* subscriber that got
//! the message (p50/p99/max), the number lost (subscribers × posts − deliveries),
//! and with `--server-pid` the server's CPU time per delivered message, measured
//! from the first POST until every delivery arrived (or 10 s after the last POST).
//!
//! `--url` may contain `{i}`, replaced by the connection's index (the push
//! example's `userId` must differ per connection).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use silverback::Error;
use silverback::event::{Ctx, Handler, MessageRef};

use crate::http::HttpConn;
use crate::{cpu_us, percentile};

/// What a run is told.
pub struct Settings {
    pub url: String,
    pub conns: usize,
    /// POSTs per second.
    pub rate: f64,
    pub duration: f64,
    pub size: usize,
    /// `http://HOST:PORT/PATH?QUERY` the poster POSTs to.
    pub post: String,
    pub pid: Option<u32>,
    pub builder: silverback::event::ClientBuilder,
}

const PREFIX: &[u8] = b"{\"seq\":\"";
const SEQ: std::ops::Range<usize> = 8..17;
const T: std::ops::Range<usize> = 24..40;
/// Bytes of a body without its padding.
const FIXED: usize = 51;

/// A body of exactly `size` bytes for message `seq` posted at `t_us`.
fn body(seq: u64, t_us: u64, size: usize) -> Vec<u8> {
    let mut b = format!("{{\"seq\":\"{seq:09}\",\"t\":\"{t_us:016}\",\"pad\":\"").into_bytes();
    b.resize(size - 2, b'x');
    b.extend_from_slice(b"\"}");
    b
}

fn digits(b: &[u8]) -> Option<u64> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// Per message number: deliveries and the latest arrival (µs since the start).
#[derive(Default)]
struct Arrivals {
    got: Vec<u32>,
    last_us: Vec<u64>,
    sent_us: Vec<u64>,
}

struct Subscribers {
    origin: Instant,
    size: usize,
    opened: Arc<AtomicUsize>,
    delivered: Arc<AtomicU64>,
    arrivals: Arrivals,
    bad: u64,
    errors: u64,
    /// Connections that closed before the run ended.
    closed_early: u64,
    done: Arc<AtomicBool>,
    compressed: usize,
}

impl Handler for Subscribers {
    type Data = ();

    fn on_open(&mut self, ctx: &mut Ctx<'_, ()>) {
        self.compressed += usize::from(ctx.is_compressed());
        self.opened.fetch_add(1, Ordering::Relaxed);
    }

    fn on_message(&mut self, _: &mut Ctx<'_, ()>, msg: MessageRef<'_>) {
        let now = self.origin.elapsed().as_micros() as u64;
        let d = msg.data;
        let parsed = (d.len() == self.size && d.starts_with(PREFIX))
            .then(|| Some((digits(&d[SEQ])? as usize, digits(&d[T])?)))
            .flatten();
        let Some((seq, t)) = parsed else {
            self.bad += 1;
            return;
        };
        let a = &mut self.arrivals;
        if a.got.len() <= seq {
            a.got.resize(seq + 1, 0);
            a.last_us.resize(seq + 1, 0);
            a.sent_us.resize(seq + 1, 0);
        }
        a.got[seq] += 1;
        a.last_us[seq] = a.last_us[seq].max(now);
        a.sent_us[seq] = t;
        self.delivered.fetch_add(1, Ordering::Relaxed);
    }

    fn on_error(&mut self, _: &mut Ctx<'_, ()>, _: &Error) {
        self.errors += 1;
    }

    fn on_close(&mut self, _: &mut Ctx<'_, ()>, _: silverback::CloseCode, _: &str) {
        if !self.done.load(Ordering::Acquire) {
            self.closed_early += 1;
        }
    }
}

/// What the poster measured.
#[derive(Default)]
struct Posting {
    posts: u64,
    refused: u64,
    cpu_us: Option<u64>,
    /// From the first POST to the last delivery (or the give-up).
    elapsed: Duration,
    not_connected: usize,
}

/// `http://HOST:PORT/TARGET` → address and target.
fn split_post_url(url: &str) -> Result<(SocketAddr, String), Error> {
    let bad = || {
        Error::Io(std::io::Error::other(format!(
            "--post {url:?}: expected http://HOST:PORT/PATH"
        )))
    };
    let rest = url.strip_prefix("http://").ok_or_else(bad)?;
    let (host, target) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_owned()),
        None => (rest, "/".to_owned()),
    };
    let addr = host.parse().map_err(|_| bad())?;
    Ok((addr, target))
}

pub fn run(s: Settings) -> Result<String, Error> {
    if s.size < FIXED + 1 {
        return Err(Error::Io(std::io::Error::other(format!(
            "--size must be at least {} for the fan-out body",
            FIXED + 1
        ))));
    }
    let (post_addr, target) = split_post_url(&s.post)?;
    let origin = Instant::now();
    let opened = Arc::new(AtomicUsize::new(0));
    let delivered = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let mut client = s
        .builder
        .max_connections(s.conns + 16)
        .handshake_timeout(Duration::from_secs(60))
        .build(Subscribers {
            origin,
            size: s.size,
            opened: opened.clone(),
            delivered: delivered.clone(),
            arrivals: Arrivals::default(),
            bad: 0,
            errors: 0,
            closed_early: 0,
            done: done.clone(),
            compressed: 0,
        })?;
    for i in 0..s.conns {
        client.connect(&s.url.replace("{i}", &i.to_string()), ())?;
    }
    let handle = client.handle();
    let report = Arc::new(Mutex::new(Posting::default()));
    let poster = {
        let (report, done, opened, delivered) = (
            report.clone(),
            done.clone(),
            opened.clone(),
            delivered.clone(),
        );
        let (conns, rate, duration, size, pid) = (s.conns, s.rate, s.duration, s.size, s.pid);
        thread::spawn(move || {
            let mut r = Posting::default();
            let wait = Instant::now() + Duration::from_secs(120);
            while opened.load(Ordering::Relaxed) < conns && Instant::now() < wait {
                thread::sleep(Duration::from_millis(20));
            }
            r.not_connected = conns - opened.load(Ordering::Relaxed).min(conns);
            // Let the last handshakes' work settle before measuring.
            thread::sleep(Duration::from_millis(500));
            let mut http = HttpConn::new(post_addr, Duration::from_secs(10));
            let total = (rate * duration).round().max(1.0) as u64;
            let cpu0 = pid.and_then(cpu_us);
            let start = Instant::now();
            for seq in 0..total {
                let due = start + Duration::from_secs_f64(seq as f64 / rate);
                if let Some(w) = due.checked_duration_since(Instant::now()) {
                    thread::sleep(w);
                }
                let t = origin.elapsed().as_micros() as u64;
                match http.request("POST", &target, &body(seq, t, size)) {
                    Ok(a) if a.status == 200 => r.posts += 1,
                    _ => r.refused += 1,
                }
            }
            let want = r.posts * (conns - r.not_connected) as u64;
            let give_up = Instant::now() + Duration::from_secs(10);
            while delivered.load(Ordering::Relaxed) < want && Instant::now() < give_up {
                thread::sleep(Duration::from_millis(1));
            }
            r.elapsed = start.elapsed();
            r.cpu_us = pid
                .and_then(cpu_us)
                .zip(cpu0)
                .map(|(b, a)| b.saturating_sub(a));
            *report.lock().unwrap() = r;
            done.store(true, Ordering::Release);
            handle.shutdown(Duration::from_secs(5));
        })
    };
    client.run()?;
    let _ = poster.join();
    let r = std::mem::take(&mut *report.lock().unwrap());
    let h = client.handler();
    let delivered = delivered.load(Ordering::Relaxed);
    let expected = r.posts * s.conns as u64;
    let mut lat_us: Vec<u32> = (0..r.posts as usize)
        .filter(|&i| h.arrivals.got.get(i).is_some_and(|&g| g > 0))
        .map(|i| h.arrivals.last_us[i].saturating_sub(h.arrivals.sent_us[i]) as u32)
        .collect();
    lat_us.sort_unstable();
    let ms = |v: u32| f64::from(v) / 1000.0;
    let cpu_per = match r.cpu_us {
        Some(c) if delivered > 0 => format!("{:.3}", c as f64 / delivered as f64),
        _ => "null".into(),
    };
    let duplicated: u64 = h
        .arrivals
        .got
        .iter()
        .map(|&g| u64::from(g.saturating_sub(s.conns as u32)))
        .sum();
    Ok(format!(
        "{{\"mode\": \"fanout\", \"conns\": {}, \"connected\": {}, \"compressed\": {}, \"size\": {}, \"rate\": {}, \"posts\": {}, \"refused_posts\": {}, \"expected\": {expected}, \"delivered\": {delivered}, \"lost\": {}, \"duplicated\": {duplicated}, \"bad\": {}, \"errors\": {}, \"closed_early\": {}, \"deliveries_per_sec\": {:.0}, \"latency_last_ms_p50\": {:.2}, \"latency_last_ms_p99\": {:.2}, \"latency_last_ms_max\": {:.2}, \"server_cpu_us\": {}, \"server_cpu_us_per_delivery\": {cpu_per}, \"complete\": {}}}",
        s.conns,
        s.conns - r.not_connected,
        h.compressed,
        s.size,
        s.rate,
        r.posts,
        r.refused,
        expected.saturating_sub(delivered),
        h.bad,
        h.errors,
        h.closed_early,
        delivered as f64 / r.elapsed.as_secs_f64().max(1e-9),
        ms(percentile(&lat_us, 0.5)),
        ms(percentile(&lat_us, 0.99)),
        ms(lat_us.last().copied().unwrap_or(0)),
        r.cpu_us.map_or("null".into(), |c| c.to_string()),
        done.load(Ordering::Acquire),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn bodies_have_the_exact_size_and_parse_back() {
        for size in [super::FIXED + 1, 64, 1024] {
            let b = super::body(42, 1234, size);
            assert_eq!(b.len(), size);
            assert_eq!(super::digits(&b[super::SEQ]), Some(42));
            assert_eq!(super::digits(&b[super::T]), Some(1234));
            assert!(b.starts_with(super::PREFIX) && b.ends_with(b"x\"}"));
        }
    }
}
