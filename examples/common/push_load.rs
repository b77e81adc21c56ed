//! `loadgen push`: a load against examples/push running as a cluster, with every
//! delivery checked (examples/loadgen.rs; figures in docs/push-cluster.md).
//!
//! * Users `lg-u0` .. `lg-u{N-1}`: user i connects to process `i % P` (the `--url`s
//!   in order), at `/getPushNews?userId=lg-uI`. A process may hold at most about
//!   19,000 sockets here (the open-file limit), so the connections are held by
//!   child processes (`loadgen push-holder`, up to 9,000 connections each) that
//!   report every delivery on their standard output.
//! * A bystander connection on the first process pings every 20 ms and records each
//!   pong's round trip: what a user on a process sees while its cluster is in
//!   trouble.
//! * Warm-up: one push to every user, retried until answered 200 and delivered
//!   (registration in Redis is asynchronous).
//! * Then `--pushers` threads (default 8) post pushes for `--duration` seconds, each
//!   in a closed loop on kept-alive HTTP connections: a random user through a
//!   random process, the body `{"u":USER,"s":SEQ,"t":NANOS}` (t: wall clock at
//!   sending). A push is *same-process* when it is posted to the process the user is
//!   connected to, *cross-process* otherwise.
//! * `--at SECS:COMMAND` (repeatable) runs a shell command at that time of the
//!   measured phase (`kill -STOP PID`, a Redis restart); its mark is the moment the
//!   command returned (Redis stopped; Redis up again). The report gives, for each
//!   window between marks, the pushes answered and refused, the bystander's pong
//!   round trips, and the time from the mark to the first delivery of a
//!   cross-process push sent after it and answered 200.
//!
//! Checked for every push answered 200: delivered exactly once, to the right user,
//! byte for byte. A push refused (503, 404) must not count as lost; one refused but
//! delivered anyway (Redis paused, then ran the command) is counted apart. The last
//! line is a JSON record with `"lost": N`; the exit status is non-zero if anything
//! answered 200 was lost, duplicated, misdelivered or corrupted, or, without `--at`,
//! if any push was refused.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use silverback::event::{Client, Ctx, Handler, MessageRef};
use silverback::{CloseCode, Error};

use crate::http::HttpConn;

/// Connections per holder process (the open-file limit is 20,000 here).
const PER_HOLDER: usize = 9000;
/// The bystander's user index.
const BYSTANDER: u32 = u32::MAX;

/// Wall-clock nanoseconds: comparable between the processes of one machine.
pub fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn user_name(i: u32) -> String {
    format!("lg-u{i}")
}

/// The exact body of push `seq` to user `u` sent at `t`.
fn body(u: u32, seq: u64, t: u64) -> String {
    format!(r#"{{"u":"{}","s":{seq},"t":{t}}}"#, user_name(u))
}

/// Parses a body made by [`body`]: (user, seq, t), if it is one.
fn parse_body(b: &[u8]) -> Option<(u32, u64, u64)> {
    let s = std::str::from_utf8(b).ok()?;
    let rest = s.strip_prefix(r#"{"u":"lg-u"#)?;
    let (u, rest) = rest.split_once(r#"","s":"#)?;
    let (seq, rest) = rest.split_once(r#","t":"#)?;
    let t = rest.strip_suffix('}')?;
    Some((u.parse().ok()?, seq.parse().ok()?, t.parse().ok()?))
}

// ---------------------------------------------------------------- holder process

/// A holder's connections: deliveries and pongs go to standard output.
struct Holder {
    want: usize,
    opened: usize,
    failed: usize,
    out: BufWriter<std::io::Stdout>,
}

impl Handler for Holder {
    /// The user index (or [`BYSTANDER`]).
    type Data = u32;

    fn on_open(&mut self, ctx: &mut Ctx<'_, u32>) {
        self.opened += 1;
        if *ctx.data() == BYSTANDER {
            ctx.set_interval(Duration::from_millis(20), 0);
        }
        if self.opened == self.want {
            let _ = writeln!(self.out, "ready {}", self.opened);
            let _ = self.out.flush();
        }
        // Deliveries are flushed every 50 ms (their times are taken on arrival).
        if self.opened == 1 {
            ctx.set_interval(Duration::from_millis(50), 1);
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, u32>, msg: MessageRef<'_>) {
        let now = wall_ns();
        let me = *ctx.data();
        match parse_body(msg.data) {
            Some((u, seq, t)) => {
                let ok = u == me && msg.data == body(u, seq, t).as_bytes();
                let _ = writeln!(self.out, "d {seq} {me} {now} {}", u8::from(ok));
            }
            None => {
                let _ = writeln!(self.out, "x {me} {}", msg.data.len());
            }
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, u32>, token: u64) {
        if token == 0 {
            let _ = ctx.ping(&wall_ns().to_le_bytes());
        } else {
            let _ = self.out.flush();
        }
    }

    fn on_pong(&mut self, _: &mut Ctx<'_, u32>, data: &[u8]) {
        if let Ok(b) = <[u8; 8]>::try_from(data) {
            let sent = u64::from_le_bytes(b);
            let _ = writeln!(self.out, "p {sent} {}", wall_ns().saturating_sub(sent));
        }
    }

    fn on_close(&mut self, ctx: &mut Ctx<'_, u32>, code: CloseCode, reason: &str) {
        let _ = writeln!(
            self.out,
            "c {} {} {code} {reason:?}",
            wall_ns(),
            *ctx.data()
        );
    }

    fn on_error(&mut self, _: &mut Ctx<'_, u32>, e: &Error) {
        self.failed += 1;
        let _ = writeln!(self.out, "e {} {e}", wall_ns());
    }
}

/// `loadgen push-holder`: holds users `first .. first + count` (and the bystander
/// with `--bystander`) until its standard input closes.
pub fn holder(urls: &[String], first: u32, count: u32, bystander: bool) -> Result<(), Error> {
    let want = count as usize + usize::from(bystander);
    let mut client = Client::builder()
        .max_connections(want + 16)
        .handshake_timeout(Duration::from_secs(60))
        .close_timeout(Duration::from_secs(2))
        .build(Holder {
            want,
            opened: 0,
            failed: 0,
            out: BufWriter::with_capacity(64 * 1024, std::io::stdout()),
        })?;
    let p = urls.len() as u32;
    for i in first..first + count {
        let url = format!(
            "{}getPushNews?userId={}",
            urls[(i % p) as usize],
            user_name(i)
        );
        client.connect(&url, i)?;
    }
    if bystander {
        client.connect(
            &format!("{}getPushNews?userId=lg-bystander", urls[0]),
            BYSTANDER,
        )?;
    }
    let handle = client.handle();
    thread::spawn(move || {
        // Until the orchestrator closes our standard input.
        let mut sink = String::new();
        let _ = std::io::stdin().read_line(&mut sink);
        handle.shutdown(Duration::from_secs(5));
    });
    client.run()?;
    let h = client.handler_mut();
    let _ = writeln!(h.out, "done {} {}", h.opened, h.failed);
    let _ = h.out.flush();
    Ok(())
}

// ---------------------------------------------------------------- orchestrator

/// Settings from the command line.
pub struct Settings {
    /// The processes' WebSocket base URLs (`ws://HOST:PORT/`).
    pub urls: Vec<String>,
    pub conns: usize,
    pub duration: f64,
    pub pushers: usize,
    /// `(seconds into the measured phase, shell command)`.
    pub at: Vec<(f64, String)>,
}

/// What the holders reported.
#[derive(Default)]
struct Seen {
    /// seq -> (user, receive time, verified) for every delivery.
    deliveries: HashMap<u64, Vec<(u32, u64, bool)>>,
    /// (sent, round trip) of the bystander's pings.
    pongs: Vec<(u64, u64)>,
    ready: usize,
    /// Closes and errors, with their time.
    closes: Vec<(u64, String)>,
    junk: u64,
}

/// One push as its pusher saw it.
#[derive(Clone, Copy)]
struct Sent {
    seq: u64,
    user: u32,
    via: u32,
    t: u64,
    /// HTTP status, 0 for a transport error.
    status: u16,
    measured: bool,
}

fn http_addr(url: &str) -> Result<SocketAddr, Error> {
    let u = silverback::url::WsUrl::parse(url)?;
    format!("{}:{}", u.host, u.port)
        .parse()
        .map_err(|e| Error::Io(std::io::Error::other(format!("{url}: {e}"))))
}

fn spawn_holders(s: &Settings, seen: &Arc<Mutex<Seen>>) -> Result<Vec<(Child, ChildStdin)>, Error> {
    let exe = std::env::current_exe()?;
    let mut holders = Vec::new();
    let mut first = 0;
    while first < s.conns || holders.is_empty() {
        let count = (s.conns - first).min(PER_HOLDER);
        let mut cmd = Command::new(&exe);
        cmd.arg("push-holder")
            .args(["--first", &first.to_string(), "--conns", &count.to_string()]);
        for u in &s.urls {
            cmd.args(["--url", u]);
        }
        if holders.is_empty() {
            cmd.arg("--bystander");
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let seen = seen.clone();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let f: Vec<&str> = line.split(' ').collect();
                let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
                let mut g = seen.lock().unwrap();
                match f.first().copied() {
                    Some("d") => g.deliveries.entry(num(1)).or_default().push((
                        num(2) as u32,
                        num(3),
                        num(4) == 1,
                    )),
                    Some("p") => g.pongs.push((num(1), num(2))),
                    Some("ready") => g.ready += 1,
                    Some("c") | Some("e") => g.closes.push((num(1), line.clone())),
                    Some("x") => g.junk += 1,
                    _ => {}
                }
            }
        });
        holders.push((child, stdin));
        first += count;
    }
    Ok(holders)
}

/// One pusher's connections, one per process.
struct Pusher {
    conns: Vec<HttpConn>,
    rng: u64,
}

impl Pusher {
    fn next_rand(&mut self) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn push(&mut self, seq: &AtomicU64, user: u32, via: u32, measured: bool) -> Sent {
        let seq = seq.fetch_add(1, Ordering::Relaxed);
        let t = wall_ns();
        let b = body(user, seq, t);
        let target = format!("/push?userId={}", user_name(user));
        let status = self.conns[via as usize]
            .request("POST", &target, b.as_bytes())
            .map_or(0, |a| a.status);
        Sent {
            seq,
            user,
            via,
            t,
            status,
            measured,
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize] as f64
}

fn ms(ns: f64) -> String {
    if ns.is_nan() {
        "null".into()
    } else {
        format!("{:.2}", ns / 1e6)
    }
}

/// Runs the load; returns the report's last line and whether it passed.
pub fn run(s: Settings) -> Result<(String, bool), Error> {
    let p = s.urls.len() as u32;
    if p == 0 || s.conns == 0 {
        return Err(Error::Io(std::io::Error::other(
            "push needs --url (one per process) and --conns",
        )));
    }
    let addrs: Vec<SocketAddr> = s
        .urls
        .iter()
        .map(|u| http_addr(u))
        .collect::<Result<_, _>>()?;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut holders = spawn_holders(&s, &seen)?;
    let t0 = Instant::now();
    while seen.lock().unwrap().ready < holders.len() {
        if t0.elapsed() > Duration::from_secs(120) {
            return Err(Error::Io(std::io::Error::other(
                "the holders did not connect in 120 s",
            )));
        }
        thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "push: {} connections open in {:.1} s",
        s.conns,
        t0.elapsed().as_secs_f64()
    );

    let seq = Arc::new(AtomicU64::new(0));
    let sent: Arc<Mutex<Vec<Sent>>> = Arc::default();
    let pushers = s.pushers.max(1);
    let new_pusher = |k: usize| Pusher {
        conns: addrs
            .iter()
            .map(|a| HttpConn::new(*a, Duration::from_secs(30)))
            .collect(),
        rng: 0x9E37_79B9_7F4A_7C15 ^ (k as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9),
    };

    // Warm-up: every user answered 200 once (registration is asynchronous).
    let warm = Instant::now();
    thread::scope(|sc| {
        for k in 0..pushers {
            let (seq, sent) = (&seq, &sent);
            let mut pu = new_pusher(k);
            let users: Vec<u32> = (0..s.conns as u32)
                .filter(|u| *u as usize % pushers == k)
                .collect();
            sc.spawn(move || {
                for u in users {
                    for attempt in 0..600 {
                        let via = (u + 1 + attempt) % p;
                        let r = pu.push(seq, u, via, false);
                        sent.lock().unwrap().push(r);
                        if r.status == 200 {
                            break;
                        }
                        thread::sleep(Duration::from_millis(50));
                    }
                }
            });
        }
    });
    eprintln!(
        "push: warm-up done in {:.1} s",
        warm.elapsed().as_secs_f64()
    );

    // The measured phase, with the marks' commands on their own thread.
    let start_ns = wall_ns();
    let stop = AtomicBool::new(false);
    let marks: Mutex<Vec<(u64, String)>> = Mutex::default();
    let duration = Duration::from_secs_f64(s.duration);
    let (conns, plan) = (s.conns, s.at.clone());
    thread::scope(|sc| {
        let (stop, marks) = (&stop, &marks);
        sc.spawn(move || {
            let begin = Instant::now();
            let mut at = plan;
            at.sort_by(|a, b| a.0.total_cmp(&b.0));
            for (secs, cmd) in at {
                let due = Duration::from_secs_f64(secs);
                while begin.elapsed() < due && !stop.load(Ordering::Relaxed) {
                    thread::sleep(Duration::from_millis(5));
                }
                let ok = Command::new("sh")
                    .args(["-c", &cmd])
                    .status()
                    .is_ok_and(|st| st.success());
                // The mark is when the command is done (Redis stopped, or up again).
                let when = wall_ns();
                eprintln!(
                    "push: at {secs} s ran {cmd:?} ({})",
                    if ok { "ok" } else { "FAILED" }
                );
                marks.lock().unwrap().push((when, cmd));
            }
        });
        for k in 0..pushers {
            let (seq, sent) = (&seq, &sent);
            let mut pu = new_pusher(k + 1000);
            sc.spawn(move || {
                let begin = Instant::now();
                let mut mine = Vec::new();
                // Bounded by the duration.
                while begin.elapsed() < duration {
                    let user = (pu.next_rand() % conns as u64) as u32;
                    let via = (pu.next_rand() % u64::from(p)) as u32;
                    mine.push(pu.push(seq, user, via, true));
                }
                sent.lock().unwrap().extend(mine);
            });
        }
        thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
    });
    let end_ns = wall_ns();

    // Let deliveries in flight arrive (bounded), then end the holders.
    let sent = std::mem::take(&mut *sent.lock().unwrap());
    let settle = Instant::now();
    loop {
        let missing = {
            let g = seen.lock().unwrap();
            sent.iter()
                .filter(|x| x.status == 200 && !g.deliveries.contains_key(&x.seq))
                .count()
        };
        if missing == 0 || settle.elapsed() > Duration::from_secs(5) {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    let stop_ns = wall_ns();
    for (_, stdin) in &mut holders {
        let _ = stdin.write_all(b"\n");
    }
    for (mut child, stdin) in holders {
        drop(stdin);
        let _ = child.wait();
    }
    let g = seen.lock().unwrap();
    let marks = marks.into_inner().unwrap();
    Ok(report(&s, &sent, &g, (start_ns, end_ns, stop_ns), &marks))
}

/// Every figure of the run, as one JSON line (and whether it passed).
fn report(
    s: &Settings,
    sent: &[Sent],
    seen: &Seen,
    (start_ns, end_ns, stop_ns): (u64, u64, u64),
    marks: &[(u64, String)],
) -> (String, bool) {
    // Connections that ended before the holders were told to stop.
    let closes: Vec<&String> = seen
        .closes
        .iter()
        .filter(|(t, _)| *t < stop_ns)
        .map(|(_, l)| l)
        .collect();
    let p = s.urls.len() as u32;
    let (mut lost, mut dup, mut wrong, mut refused_delivered) = (0u64, 0u64, 0u64, 0u64);
    let mut refused: HashMap<u16, u64> = HashMap::new();
    let (mut same, mut cross) = (Vec::new(), Vec::new());
    let mut ok_measured = 0u64;
    for x in sent {
        let d = seen.deliveries.get(&x.seq);
        if x.status != 200 {
            *refused.entry(x.status).or_default() += u64::from(x.measured);
            refused_delivered += u64::from(d.is_some());
            continue;
        }
        match d.map(Vec::as_slice) {
            None | Some([]) => lost += 1,
            Some([(user, at, ok)]) => {
                if *user != x.user || !*ok {
                    wrong += 1;
                } else if x.measured {
                    ok_measured += 1;
                    let lat = at.saturating_sub(x.t);
                    if x.via == x.user % p {
                        same.push(lat);
                    } else {
                        cross.push(lat);
                    }
                }
            }
            Some(_) => dup += 1,
        }
    }
    // Deliveries of pushes nobody sent.
    let numbers: std::collections::HashSet<u64> = sent.iter().map(|x| x.seq).collect();
    let unknown = seen
        .deliveries
        .keys()
        .filter(|k| !numbers.contains(k))
        .count() as u64;
    same.sort_unstable();
    cross.sort_unstable();
    let secs = (end_ns - start_ns) as f64 / 1e9;
    let mut pongs: Vec<u64> = seen
        .pongs
        .iter()
        .filter(|(t, _)| *t >= start_ns && *t < end_ns)
        .map(|(_, r)| *r)
        .collect();
    pongs.sort_unstable();
    let refused_total: u64 = refused.values().sum();
    let mut refused_list: Vec<_> = refused.iter().collect();
    refused_list.sort();
    let refused_json = refused_list
        .iter()
        .map(|(k, v)| format!("\"{k}\": {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut windows = Vec::new();
    for (i, (at, cmd)) in marks.iter().enumerate() {
        let until = marks.get(i + 1).map_or(end_ns, |m| m.0);
        let mut w: Vec<u64> = seen
            .pongs
            .iter()
            .filter(|(t, _)| *t >= *at && *t < until)
            .map(|(_, r)| *r)
            .collect();
        w.sort_unstable();
        let in_window = |x: &&Sent| x.measured && x.t >= *at && x.t < until;
        let ok = sent
            .iter()
            .filter(in_window)
            .filter(|x| x.status == 200)
            .count();
        let no = sent
            .iter()
            .filter(in_window)
            .filter(|x| x.status != 200)
            .count();
        // The first cross-process push sent after the mark that got through.
        let first = sent
            .iter()
            .filter(|x| x.measured && x.t >= *at && x.status == 200 && x.via != x.user % p)
            .filter_map(|x| {
                seen.deliveries
                    .get(&x.seq)
                    .and_then(|d| d.first())
                    .map(|d| d.1.saturating_sub(*at))
            })
            .min();
        windows.push(format!(
            "{{\"at_s\": {:.3}, \"cmd\": {:?}, \"ok\": {ok}, \"refused\": {no}, \"pong_p50_ms\": {}, \"pong_p99_ms\": {}, \"pong_max_ms\": {}, \"pongs\": {}, \"first_cross_delivery_after_ms\": {}}}",
            (at - start_ns) as f64 / 1e9,
            cmd,
            ms(percentile(&w, 0.5)),
            ms(percentile(&w, 0.99)),
            ms(w.last().map_or(f64::NAN, |v| *v as f64)),
            w.len(),
            first.map_or("null".into(), |f| format!("{:.1}", f as f64 / 1e6)),
        ));
    }
    let pass = lost == 0
        && dup == 0
        && wrong == 0
        && unknown == 0
        && seen.junk == 0
        && (s.at.is_empty() && closes.is_empty() || !s.at.is_empty())
        && (refused_total == 0 || !s.at.is_empty());
    let line = format!(
        "{{\"mode\": \"push\", \"processes\": {p}, \"conns\": {}, \"pushers\": {}, \"secs\": {secs:.2}, \"pushes_ok\": {ok_measured}, \"pushes_per_s\": {:.0}, \
\"same\": {{\"n\": {}, \"p50_ms\": {}, \"p99_ms\": {}, \"max_ms\": {}}}, \"cross\": {{\"n\": {}, \"p50_ms\": {}, \"p99_ms\": {}, \"max_ms\": {}}}, \
\"refused\": {{{refused_json}}}, \"refused_but_delivered\": {refused_delivered}, \"duplicated\": {dup}, \"misdelivered\": {}, \"unknown\": {unknown}, \
\"pong_p50_ms\": {}, \"pong_p99_ms\": {}, \"pong_max_ms\": {}, \"closes\": {}, \"marks\": [{}], \"lost\": {lost}, \"pass\": {pass}}}",
        s.conns,
        s.pushers,
        ok_measured as f64 / secs,
        same.len(),
        ms(percentile(&same, 0.5)),
        ms(percentile(&same, 0.99)),
        ms(same.last().map_or(f64::NAN, |v| *v as f64)),
        cross.len(),
        ms(percentile(&cross, 0.5)),
        ms(percentile(&cross, 0.99)),
        ms(cross.last().map_or(f64::NAN, |v| *v as f64)),
        wrong + seen.junk,
        ms(percentile(&pongs, 0.5)),
        ms(percentile(&pongs, 0.99)),
        ms(pongs.last().map_or(f64::NAN, |v| *v as f64)),
        closes.len(),
        windows.join(", "),
    );
    for c in closes.iter().take(10) {
        eprintln!("push: unexpected: {c}");
    }
    (line, pass)
}
