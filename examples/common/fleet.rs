//! Client-side measurements for devices in the field (loadgen's `handshake` and
//! `reconnect` modes).
//!
//! * `handshake`: COUNT opening handshakes one after another with the blocking
//!   `Dialer` (TCP connect, the proxy's handshake with `--proxy`, TLS for
//!   `wss://`, the upgrade), each closed at once; prints the latency p50/p99/mean.
//!   Run once direct and once per proxy to see what a proxy adds
//!   (benches/proxies.sh).
//! * `reconnect`: N event-loop clients with `ClientBuilder::reconnect` (backoff
//!   with full jitter, first window `--window`); `--at SECS:COMMAND` runs shell
//!   commands at those times (kill the server, start it again). Prints, for the
//!   clients that lost their connection, when each made its first attempt after
//!   the loss (relative to that loss: the jitter's spread), when each was back
//!   (relative to the first loss), and the peak rate of successful reconnects
//!   (the server's accept rate) in 100 ms buckets (benches/reconnect_storm.sh).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use silverback::event::{Client, Ctx, Handler};
use silverback::{Backoff, CloseCode, Dialer, Error, Proxy};

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// `loadgen handshake`.
pub fn handshake(url: &str, count: usize, proxy: Option<&str>) -> Result<String, Error> {
    let mut d = Dialer::new().handshake_timeout(Duration::from_secs(10));
    if let Some(p) = proxy {
        d = d.proxy(Proxy::parse(p)?);
    }
    #[cfg(feature = "tls")]
    if let Some(cfg) = crate::common::client_tls() {
        d = d.tls_config(cfg);
    }
    let secure = url.starts_with("wss://");
    let mut us = Vec::with_capacity(count);
    for _ in 0..count {
        let t0 = Instant::now();
        if secure {
            #[cfg(feature = "tls")]
            {
                let (mut c, _) = d.dial_tls(url)?;
                us.push(t0.elapsed().as_secs_f64() * 1e6);
                let _ = c.close(CloseCode::NORMAL, "");
            }
            #[cfg(not(feature = "tls"))]
            return Err(Error::Io(std::io::Error::other(
                "wss:// needs --features tls",
            )));
        } else {
            let (mut c, _) = d.dial(url)?;
            us.push(t0.elapsed().as_secs_f64() * 1e6);
            let _ = c.close(CloseCode::NORMAL, "");
        }
    }
    us.sort_by(f64::total_cmp);
    let mean = us.iter().sum::<f64>() / us.len().max(1) as f64;
    Ok(format!(
        "{{\"mode\": \"handshake\", \"url\": \"{url}\", \"proxy\": \"{}\", \"count\": {count}, \"p50_us\": {:.0}, \"p99_us\": {:.0}, \"mean_us\": {mean:.0}}}",
        proxy.unwrap_or("none"),
        pct(&us, 0.5),
        pct(&us, 0.99),
    ))
}

/// One client's story, in seconds since the run began.
#[derive(Default, Clone)]
struct Story {
    opened: bool,
    lost_at: Option<f64>,
    first_attempt_at: Option<f64>,
    back_at: Option<f64>,
}

struct Fleet {
    t0: Instant,
    stories: Arc<Mutex<Vec<Story>>>,
}

impl Fleet {
    fn now(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    /// Any callback after a loss ends the first attempt (refused at once on
    /// loopback, or opened).
    fn attempt_seen(&mut self, i: usize) {
        let now = self.now();
        let mut s = self.stories.lock().unwrap();
        let st = &mut s[i];
        if st.lost_at.is_some() && st.first_attempt_at.is_none() {
            st.first_attempt_at = Some(now);
        }
    }
}

impl Handler for Fleet {
    type Data = usize;
    fn on_open(&mut self, ctx: &mut Ctx<'_, usize>) {
        let i = *ctx.data();
        self.attempt_seen(i);
        let now = self.now();
        let mut s = self.stories.lock().unwrap();
        let st = &mut s[i];
        if ctx.reconnects() > 0 && st.back_at.is_none() {
            st.back_at = Some(now);
        }
        st.opened = true;
    }
    fn on_error(&mut self, ctx: &mut Ctx<'_, usize>, _err: &Error) {
        let i = *ctx.data();
        self.attempt_seen(i);
    }
    fn on_close(&mut self, ctx: &mut Ctx<'_, usize>, _code: CloseCode, _reason: &str) {
        let i = *ctx.data();
        let now = self.now();
        let mut s = self.stories.lock().unwrap();
        let st = &mut s[i];
        // The loss of an open connection (not a failed attempt).
        if st.opened && st.lost_at.is_none() {
            st.lost_at = Some(now);
        }
    }
}

/// `loadgen reconnect`.
pub fn reconnect(
    url: &str,
    conns: usize,
    window: f64,
    max_delay: f64,
    duration: f64,
    at: Vec<(f64, String)>,
) -> Result<String, Error> {
    let stories = Arc::new(Mutex::new(vec![Story::default(); conns]));
    let t0 = Instant::now();
    let backoff = Backoff::new()
        .initial(Duration::from_secs_f64(window))
        .max_delay(Duration::from_secs_f64(max_delay));
    let mut client = Client::builder()
        .max_connections(conns + 16)
        .handshake_timeout(Duration::from_secs(5))
        .reconnect(backoff)
        .build(Fleet {
            t0,
            stories: stories.clone(),
        })?;
    for i in 0..conns {
        client.connect(url, i)?;
    }
    for (secs, cmd) in at {
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs_f64(secs).saturating_sub(t0.elapsed()));
            let _ = std::process::Command::new("sh")
                .arg("-c")
                .arg(&cmd)
                .status();
        });
    }
    let guard = client.handle();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs_f64(duration));
        guard.shutdown(Duration::ZERO);
    });
    client.run()?;
    let s = stories.lock().unwrap().clone();
    let lost: Vec<&Story> = s.iter().filter(|x| x.lost_at.is_some()).collect();
    let first_loss = lost
        .iter()
        .filter_map(|x| x.lost_at)
        .fold(f64::INFINITY, f64::min);
    let mut first: Vec<f64> = lost
        .iter()
        .filter_map(|x| Some((x.first_attempt_at? - x.lost_at?) * 1e3))
        .collect();
    first.sort_by(f64::total_cmp);
    let mut back: Vec<f64> = lost
        .iter()
        .filter_map(|x| Some((x.back_at? - first_loss) * 1e3))
        .collect();
    back.sort_by(f64::total_cmp);
    // First attempts per 100 ms after the loss, and reconnects per 100 ms.
    let buckets = |v: &[f64]| {
        let n = v
            .iter()
            .map(|&ms| (ms / 100.0) as usize)
            .max()
            .map_or(0, |m| m + 1);
        let mut h = vec![0u32; n];
        for &ms in v {
            h[(ms / 100.0) as usize] += 1;
        }
        h
    };
    let first_hist = buckets(&first);
    let back_hist = buckets(&back);
    let peak = back_hist.iter().copied().max().unwrap_or(0);
    let list = |h: &[u32]| h.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
    Ok(format!(
        "{{\"mode\": \"reconnect\", \"conns\": {conns}, \"window_s\": {window}, \"lost\": {}, \"back\": {}, \
\"first_attempt_ms\": {{\"min\": {:.0}, \"p10\": {:.0}, \"p50\": {:.0}, \"p90\": {:.0}, \"max\": {:.0}}}, \
\"first_attempts_per_100ms\": [{}], \
\"back_ms_after_first_loss\": {{\"min\": {:.0}, \"p50\": {:.0}, \"p99\": {:.0}, \"max\": {:.0}}}, \
\"reconnects_per_100ms\": [{}], \"peak_accepts_per_s\": {}}}",
        lost.len(),
        back.len(),
        pct(&first, 0.0),
        pct(&first, 0.1),
        pct(&first, 0.5),
        pct(&first, 0.9),
        pct(&first, 1.0),
        list(&first_hist),
        pct(&back, 0.0),
        pct(&back, 0.5),
        pct(&back, 0.99),
        pct(&back, 1.0),
        list(&back_hist),
        peak * 10,
    ))
}
