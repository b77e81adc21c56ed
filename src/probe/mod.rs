//! `wsprobe`'s engine: a catalogue of named probes, each throwing one piece of
//! structured protocol abuse (or one legal corner case) at a live WebSocket server
//! and judging its answer by the rule of RFC 6455 it tests.
//!
//! A probe opens its own connection ([`Session`]), sends raw bytes built with
//! [`proto::raw`](crate::proto::raw), and expects one of:
//!
//! * a refused upgrade: an HTTP error status, not `101`;
//! * a failed connection (§7.1.7): a close frame with one of the codes the rule
//!   calls for (or none), then the TCP connection closed — after the prober answers
//!   the server's close, as a client does — within the deadline; the frame that
//!   broke the rule must not be echoed;
//! * a conversation that goes on: the server answers a ping sent after the probe's
//!   frames, and echoes what an echo server echoes;
//! * a closing handshake: our close echoed, then the TCP connection closed.
//!
//! Each probe ends [`Verdict::Held`], [`Violated`](Verdict::Violated),
//! [`NoAnswer`](Verdict::NoAnswer) (nothing within the deadline: a hang),
//! [`Reset`](Verdict::Reset) or [`ServerGone`](Verdict::ServerGone) (no new
//! connection could be opened after it), with the bytes sent and received as
//! evidence. Every frame the server sends is also checked: a masked server frame
//! is a violation (§5.1).
//!
//! Probes expect an echo server where they say so (`echo: true` in the catalogue):
//! the yardstick servers and `examples/echo` are.

/// A catalogue entry; `$side` is `Server` (run by `check`) or `Client` (run by
/// `serve`).
macro_rules! probe_entry {
    ($side:ident, $name:expr, $section:expr, $req:ident, $summary:expr, $expect:expr, $run:expr) => {
        $crate::probe::Probe {
            name: $name,
            section: $section,
            requirement: $crate::probe::Requirement::$req,
            summary: $summary,
            expect: $expect,
            slow: false,
            run: $crate::probe::Run::$side($run),
        }
    };
}

mod catalogue;
pub mod fuzz;
mod report;
mod serve;
mod session;

use std::time::{Duration, Instant};

/// Upgrades tried after a probe before the server counts as gone (a loaded server
/// may be slow to accept).
const REOPEN_TRIES: usize = 3;

pub use catalogue::{Expect, PROBES, Probe, Requirement, Run};
pub use report::{json, junit, table};
pub use serve::{CLIENT_PROBES, serve};
pub use session::{End, Evidence, HttpAnswer, Session, Target};

/// How a probe ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The server did what the rule asks.
    Held,
    /// The server broke the rule; the text says how.
    Violated(String),
    /// Nothing decisive within the deadline (the server hung or kept the
    /// connection open).
    NoAnswer(String),
    /// The server reset the connection instead of closing it.
    Reset,
    /// The server was unreachable after the probe.
    ServerGone(String),
}

impl Verdict {
    /// A short name: held, violated, no-answer, reset, server-gone.
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Held => "held",
            Verdict::Violated(_) => "violated",
            Verdict::NoAnswer(_) => "no-answer",
            Verdict::Reset => "reset",
            Verdict::ServerGone(_) => "server-gone",
        }
    }

    /// The detail text, if any.
    pub fn detail(&self) -> &str {
        match self {
            Verdict::Violated(s) | Verdict::NoAnswer(s) | Verdict::ServerGone(s) => s,
            Verdict::Held | Verdict::Reset => "",
        }
    }

    /// True for the outcomes that fail a check: a violation, a hang, a dead server.
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            Verdict::Violated(_) | Verdict::NoAnswer(_) | Verdict::ServerGone(_)
        )
    }
}

/// Settings of a check run.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long a probe waits for the server's answer.
    pub deadline: Duration,
    /// The server's process id: its RSS is read before and after each probe and
    /// its liveness checked (Linux `/proc`).
    pub pid: Option<u32>,
    /// A probe that grows the server's RSS by more than this (KiB) is a violation.
    pub rss_growth_kib: u64,
    /// Run only the probes whose name contains one of these (all when empty).
    pub only: Vec<String>,
    /// Also run the slow probes (a slow head, a peer that never reads).
    pub slow: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            deadline: Duration::from_secs(5),
            pid: None,
            rss_growth_kib: 256 * 1024,
            only: Vec::new(),
            slow: true,
        }
    }
}

/// One probe's result.
#[derive(Debug, Clone)]
pub struct ProbeResult {
    /// The probe.
    pub probe: &'static Probe,
    /// How it ended.
    pub verdict: Verdict,
    /// What went each way.
    pub evidence: Evidence,
    /// How long it took.
    pub elapsed: Duration,
    /// The server's RSS before and after (KiB), with `--pid`.
    pub rss_kib: Option<(u64, u64)>,
}

/// The server's resident set in KiB, from `/proc/PID/status`.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// True if a process with this id exists (and is not a zombie).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z'))
    })
}

/// The probes `opts` selects.
pub fn selected(opts: &Options) -> Vec<&'static Probe> {
    PROBES
        .iter()
        .filter(|p| opts.slow || !p.slow)
        .filter(|p| opts.only.is_empty() || opts.only.iter().any(|o| p.name.contains(o.as_str())))
        .collect()
}

/// Runs one probe, then checks that the server still takes a connection.
pub fn run_probe(t: &Target, p: &'static Probe, opts: &Options) -> ProbeResult {
    let started = Instant::now();
    let before = opts.pid.and_then(rss_kib);
    let mut evidence = Evidence::default();
    let mut verdict = match p.run {
        Run::Server(run) => run(t, opts, &mut evidence),
        Run::Client(_) => Verdict::Violated("a client probe: run it with `wsprobe serve`".into()),
    };
    let after = opts.pid.and_then(rss_kib);
    if let (Some(b), Some(a)) = (before, after)
        && a.saturating_sub(b) > opts.rss_growth_kib
        && !verdict.is_failure()
    {
        verdict = Verdict::Violated(format!(
            "server RSS grew by {} KiB (limit {} KiB)",
            a - b,
            opts.rss_growth_kib
        ));
    }
    if let Some(gone) = server_gone(t, opts) {
        verdict = Verdict::ServerGone(gone);
    }
    ProbeResult {
        probe: p,
        verdict,
        evidence,
        elapsed: started.elapsed(),
        rss_kib: before.zip(after),
    }
}

/// Why the server is unreachable, if it is: its process ended (with `--pid`) or a
/// valid upgrade fails.
pub(crate) fn server_gone(t: &Target, opts: &Options) -> Option<String> {
    if let Some(pid) = opts.pid
        && !alive(pid)
    {
        return Some(format!("process {pid} ended"));
    }
    // A fresh connection must still upgrade (a few tries: a loaded server may be
    // slow to accept).
    let mut last = String::new();
    for _ in 0..REOPEN_TRIES {
        match Session::open(t, opts.deadline, "") {
            Ok(_) => return None,
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Some(format!("a new connection fails: {last}"))
}

/// Runs the selected probes in catalogue order; `each` sees every result as it
/// comes. Once the server is gone the rest are not run.
pub fn check(t: &Target, opts: &Options, mut each: impl FnMut(&ProbeResult)) -> Vec<ProbeResult> {
    let mut out = Vec::new();
    for p in selected(opts) {
        let r = run_probe(t, p, opts);
        each(&r);
        let gone = matches!(r.verdict, Verdict::ServerGone(_));
        out.push(r);
        if gone {
            break;
        }
    }
    out
}
