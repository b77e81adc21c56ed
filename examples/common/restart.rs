//! `loadgen restart`: what clients see while the server restarts by handing its
//! connections to a new process (`examples/echo --handover PATH` and a second
//! `examples/echo --resume PATH`; docs/handover.md).
//!
//! ```text
//! loadgen restart --url ws://127.0.0.1:9000/ --conns 10000 --busy 10 --size 64
//!                 [--interval MS] --duration 10 --at "4:kill -USR2 PID" [--deflate]
//! ```
//!
//! * Opens `--conns` connections (256 handshakes in flight). The first `--busy`
//!   keep one message of `--size` bytes in flight each (closed loop; with
//!   `--interval MS` each waits that long after an echo before its next message, so
//!   that the server is not saturated and a round trip is not mostly queueing), every echo
//!   checked byte for byte against what was sent (a connection number and a
//!   sequence number in each message, so a loss, a duplicate or a reordering is
//!   seen); the others stay idle.
//! * `--at SECS:COMMAND` runs COMMAND that many seconds after every connection is
//!   up (the SIGUSR2 that starts the handover).
//! * Round trips are split by when they were sent: `before` (the 2 s before the
//!   first `--at`) and `during` (the 2 s from it); each with p50, p99 and max in
//!   ms. `stall_ms` is the longest wait of any busy connection for an echo once
//!   all were up, `stall_sent_at_s` when (after all were up) that message was sent.
//! * At `--duration` the busy connections stop sending and their last echoes are
//!   awaited; then **every** connection sends one message and must get it back
//!   (`verified`), and closes.
//! * `lost_conns`: connections that closed or failed before the end;
//!   `lost_msgs`: messages without an echo at the end; `bad`: echoes that were not
//!   what was sent (altered, duplicated, out of order). All three must be 0.

use std::time::{Duration, Instant};

use silverback::event::{ClientBuilder, Ctx, Handler, MessageRef};
use silverback::{CloseCode, Error};

/// Handshakes kept in flight while the connections open.
const RAMP: usize = 256;
/// The timer token of the final check.
const VERIFY: u64 = 1;
/// The timer token of a paced busy connection's next message.
const NEXT: u64 = 2;

pub struct Settings {
    pub url: String,
    pub conns: usize,
    pub busy: usize,
    pub size: usize,
    pub interval: Duration,
    pub duration: f64,
    pub at: Vec<(f64, String)>,
    pub builder: ClientBuilder,
}

#[derive(Default)]
pub struct Peer {
    index: usize,
    /// Messages sent, echoes received.
    sent: u64,
    got: u64,
    sent_at: Option<Instant>,
    verified: bool,
}

struct Restart {
    url: String,
    conns: usize,
    busy: usize,
    size: usize,
    interval: Duration,
    started: usize,
    opened: usize,
    ready_at: Option<Instant>,
    at: Vec<(f64, String)>,
    duration: Duration,
    /// (seconds after ready when sent, round trip in µs).
    samples: Vec<(f64, u32)>,
    stall: Duration,
    /// When (seconds after ready) the message that waited longest was sent.
    stall_at: f64,
    bad: u64,
    lost_conns: u64,
    verified: usize,
    closed_ok: usize,
}

fn payload(i: usize, n: u64, size: usize) -> Vec<u8> {
    let mut v = format!("{i}:{n}:").into_bytes();
    let fill = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut k = 0;
    while v.len() < size {
        v.push(fill[(k + i) % fill.len()]);
        k += 1;
    }
    v
}

impl Restart {
    fn send(&mut self, ctx: &mut Ctx<'_, Peer>) {
        let (i, n) = (ctx.data().index, ctx.data().sent);
        ctx.data().sent_at = Some(Instant::now());
        if ctx.send_binary(&payload(i, n, self.size)).is_ok() {
            ctx.data().sent += 1;
        }
    }

    fn stop_at(&self) -> Option<Instant> {
        self.ready_at.map(|r| r + self.duration)
    }

    fn next(&mut self, ctx: &mut Ctx<'_, Peer>) {
        if self.started < self.conns {
            let index = self.started;
            self.started += 1;
            if ctx
                .lp()
                .connect(
                    &self.url,
                    Peer {
                        index,
                        ..Peer::default()
                    },
                )
                .is_err()
            {
                self.lost_conns += 1;
            }
        }
    }
}

impl Handler for Restart {
    type Data = Peer;

    fn on_open(&mut self, ctx: &mut Ctx<'_, Peer>) {
        self.opened += 1;
        self.next(ctx);
        if self.opened == self.conns {
            let ready = Instant::now();
            self.ready_at = Some(ready);
            for (secs, cmd) in self.at.clone() {
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_secs_f64(secs));
                    let _ = std::process::Command::new("sh")
                        .arg("-c")
                        .arg(&cmd)
                        .status();
                });
            }
            println!(
                "all {} connections up; load for {:?}",
                self.conns, self.duration
            );
        }
        // Every connection checks itself at the end (a little after the busy ones
        // stopped and drained).
        let verify_in = match self.ready_at {
            Some(r) => (r + self.duration + Duration::from_secs(2))
                .saturating_duration_since(Instant::now()),
            // Not all up yet: looks again in a second (`on_timer`).
            None => Duration::from_secs(1),
        };
        ctx.set_timer(verify_in, VERIFY);
        if ctx.data().index < self.busy {
            self.send(ctx);
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Peer>, msg: MessageRef<'_>) {
        let now = Instant::now();
        let (i, got) = (ctx.data().index, ctx.data().got);
        if msg.data != payload(i, got, self.size) {
            self.bad += 1;
        }
        ctx.data().got += 1;
        if let Some(t) = ctx.data().sent_at.take() {
            let rtt = now - t;
            if let Some(r) = self.ready_at {
                let at = t.saturating_duration_since(r).as_secs_f64();
                if rtt > self.stall {
                    self.stall = rtt;
                    self.stall_at = at;
                }
                self.samples
                    .push((at, rtt.as_micros().min(u128::from(u32::MAX)) as u32));
            }
        }
        if ctx.data().verified {
            let _ = ctx.close(CloseCode::NORMAL, "done");
            self.closed_ok += 1;
            self.verified += 1;
            return;
        }
        let busy = i < self.busy;
        if busy && self.stop_at().is_none_or(|s| now < s) {
            if self.interval.is_zero() {
                self.send(ctx);
            } else {
                ctx.set_timer(self.interval, NEXT);
            }
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Peer>, token: u64) {
        if token == NEXT {
            if self.stop_at().is_none_or(|s| Instant::now() < s) {
                self.send(ctx);
            }
            return;
        }
        let now = Instant::now();
        match self.ready_at {
            Some(r) if now >= r + self.duration => {
                if ctx.data().sent == ctx.data().got {
                    ctx.data().verified = true;
                    self.send(ctx);
                } else {
                    // A busy connection's last echo is late: look again shortly.
                    ctx.set_timer(Duration::from_millis(100), VERIFY);
                }
            }
            Some(r) => {
                ctx.set_timer((r + self.duration + Duration::from_secs(2)) - now, VERIFY);
            }
            None => {
                ctx.set_timer(Duration::from_secs(1), VERIFY);
            }
        }
    }

    fn on_error(&mut self, ctx: &mut Ctx<'_, Peer>, _err: &Error) {
        if self.ready_at.is_none() && ctx.data().sent == 0 {
            // A failed connect during the ramp: keep the ramp going.
            self.next(ctx);
        }
    }

    fn on_close(&mut self, ctx: &mut Ctx<'_, Peer>, _code: CloseCode, _reason: &str) {
        let p = ctx.data();
        if !(p.verified && p.got == p.sent) {
            self.lost_conns += 1;
        }
    }
}

fn stats(v: &mut [u32]) -> String {
    v.sort_unstable();
    let ms = |us: u32| f64::from(us) / 1e3;
    let pick = |p: f64| {
        if v.is_empty() {
            0.0
        } else {
            ms(v[((v.len() - 1) as f64 * p).round() as usize])
        }
    };
    format!(
        "{{\"n\": {}, \"p50_ms\": {:.2}, \"p99_ms\": {:.2}, \"max_ms\": {:.2}}}",
        v.len(),
        pick(0.5),
        pick(0.99),
        pick(1.0)
    )
}

/// `loadgen restart`.
pub fn run(s: Settings) -> Result<String, Error> {
    let first_at = s.at.iter().map(|(t, _)| *t).fold(f64::INFINITY, f64::min);
    let mut client = s
        .builder
        .max_connections(s.conns + 16)
        .handshake_timeout(Duration::from_secs(10))
        .build(Restart {
            url: s.url.clone(),
            conns: s.conns,
            busy: s.busy.min(s.conns),
            size: s.size.max(16),
            interval: s.interval,
            started: 0,
            opened: 0,
            ready_at: None,
            at: s.at,
            duration: Duration::from_secs_f64(s.duration),
            samples: Vec::new(),
            stall: Duration::ZERO,
            stall_at: 0.0,
            bad: 0,
            lost_conns: 0,
            verified: 0,
            closed_ok: 0,
        })?;
    let first = RAMP.min(s.conns);
    for index in 0..first {
        client.connect(
            &s.url,
            Peer {
                index,
                ..Peer::default()
            },
        )?;
    }
    client.handler_mut().started = first;
    // Bounded: ramp (at most 3 minutes), the load, the drain and the check.
    let guard = client.handle();
    let limit = Duration::from_secs_f64(s.duration + 200.0);
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        guard.shutdown(Duration::ZERO);
    });
    client.run()?;
    let h = client.handler_mut();
    let lost_msgs: u64 = 0;
    let window = 2.0;
    let (mut before, mut during): (Vec<u32>, Vec<u32>) = (Vec::new(), Vec::new());
    for &(t, rtt) in &h.samples {
        if first_at.is_finite() && t >= first_at - window && t < first_at {
            before.push(rtt);
        } else if first_at.is_finite() && t >= first_at && t < first_at + window {
            during.push(rtt);
        }
    }
    let lost_msgs = lost_msgs + (h.conns - h.verified) as u64;
    Ok(format!(
        "{{\"mode\": \"restart\", \"conns\": {}, \"busy\": {}, \"size\": {}, \"interval_ms\": {}, \"opened\": {}, \
\"verified\": {}, \"lost_conns\": {}, \"lost_msgs\": {}, \"bad\": {}, \"round_trips\": {}, \
\"before\": {}, \"during\": {}, \"stall_ms\": {:.2}, \"stall_sent_at_s\": {:.3}}}",
        h.conns,
        h.busy,
        h.size,
        h.interval.as_millis(),
        h.opened,
        h.verified,
        h.lost_conns,
        lost_msgs,
        h.bad,
        h.samples.len(),
        stats(&mut before),
        stats(&mut during),
        h.stall.as_secs_f64() * 1e3,
        h.stall_at,
    ))
}
