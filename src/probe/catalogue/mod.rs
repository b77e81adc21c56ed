//! The probes: each names the RFC rule it tests, what the server must do, and runs
//! itself on a fresh connection.
//!
//! One file per category, in the order `check` runs them: [`handshake`], [`framing`],
//! [`utf8`], [`legal`] corner cases, [`closing`], [`limits`], [`transport`]; the
//! judgments they share live in [`judge`].

use super::session::{Evidence, Session, Target};
use super::{Options, Verdict};

/// How binding the rule is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// A MUST of RFC 6455.
    Must,
    /// A SHOULD of RFC 6455.
    Should,
    /// No RFC rule: what a server exposed to the network needs to survive (limits,
    /// slow or abusive peers).
    Robustness,
}

impl Requirement {
    /// MUST, SHOULD or robustness.
    pub fn name(self) -> &'static str {
        match self {
            Requirement::Must => "MUST",
            Requirement::Should => "SHOULD",
            Requirement::Robustness => "robustness",
        }
    }
}

/// What the server is expected to do, as the report states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Refuse the upgrade with an HTTP error status.
    Refused,
    /// Fail the connection: close with one of these codes (or without a close
    /// frame), then close TCP.
    Fails(&'static [u16]),
    /// Go on: answer a later ping, echo what it echoes.
    Continues,
    /// Answer our close with a close and close TCP.
    Closes,
    /// Stay up (and, with `--pid`, within the RSS bound).
    Survives,
}

impl Expect {
    /// The expectation in words.
    pub fn describe(self) -> String {
        match self {
            Expect::Refused => "HTTP error status, no 101".into(),
            Expect::Fails(codes) => {
                let c: Vec<String> = codes.iter().map(u16::to_string).collect();
                format!("close {} (or none), then TCP close", c.join("/"))
            }
            Expect::Continues => "connection goes on (pong, echo)".into(),
            Expect::Closes => "close echoed, then TCP close".into(),
            Expect::Survives => "server stays up, RSS bounded".into(),
        }
    }
}

/// A named probe.
#[derive(Clone, Copy)]
pub struct Probe {
    /// Unique name (`--only` matches substrings of it).
    pub name: &'static str,
    /// The RFC section the rule is in.
    pub section: &'static str,
    /// How binding the rule is.
    pub requirement: Requirement,
    /// What the probe sends.
    pub summary: &'static str,
    /// What the server must do.
    pub expect: Expect,
    /// Takes longer than the deadline (run unless `--fast`).
    pub slow: bool,
    /// Runs the probe.
    pub run: Run,
}

/// How a probe runs: against a server (`check`), or as the server a client under
/// test connected to (`serve`).
#[derive(Clone, Copy)]
pub enum Run {
    /// Opens its own connection to the target.
    Server(fn(&Target, &Options, &mut Evidence) -> Verdict),
    /// Answers the client's upgrade request (`key` is its `Sec-WebSocket-Key`) on
    /// the accepted connection and judges what the client does.
    Client(fn(&mut Session, &Options, &str) -> Verdict),
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probe").field("name", &self.name).finish()
    }
}

macro_rules! probe {
    ($($arg:tt)*) => { probe_entry!(Server, $($arg)*) };
}

/// A probe that sends `$wire` on an open connection and expects it failed with
/// one of `$codes`.
macro_rules! fails_probe {
    ($name:expr, $section:expr, $req:ident, $summary:expr, $codes:expr, $wire:expr) => {
        probe!(
            $name,
            $section,
            $req,
            $summary,
            Expect::Fails($codes),
            |t, o, ev| { fails(t, o, ev, $wire, $codes) }
        )
    };
}

pub(super) const E1002: &[u16] = &[1002];
/// A 2^63 length breaks §5.2 and is beyond any size limit: 1002 or 1009 (the RFC
/// does not order the two checks).
pub(super) const MSB_CODES: &[u16] = &[1002, 1009];
pub(super) const E1007: &[u16] = &[1007];
const E1002_1007: &[u16] = &[1002, 1007];
pub(super) const TOO_BIG: &[u16] = &[1009, 1002, 1008];

mod closing;
mod framing;
mod handshake;
pub(super) mod judge;
mod legal;
mod limits;
mod transport;
mod utf8;

/// The categories in the order `check` runs them.
const CATEGORIES: &[&[Probe]] = &[
    handshake::PROBES,
    framing::PROBES,
    utf8::PROBES,
    legal::PROBES,
    closing::PROBES,
    limits::PROBES,
    transport::PROBES,
];

const COUNT: usize = {
    let mut n = 0;
    let mut i = 0;
    while i < CATEGORIES.len() {
        n += CATEGORIES[i].len();
        i += 1;
    }
    n
};

/// The categories' probes in one array, built at compile time.
const fn concat<const N: usize>(parts: &[&[Probe]]) -> [Probe; N] {
    let mut out = [parts[0][0]; N];
    let mut k = 0;
    let mut p = 0;
    while p < parts.len() {
        let mut i = 0;
        while i < parts[p].len() {
            out[k] = parts[p][i];
            k += 1;
            i += 1;
        }
        p += 1;
    }
    assert!(k == N);
    out
}

static ALL: [Probe; COUNT] = concat(CATEGORIES);

/// Every probe, in the order `check` runs them.
pub static PROBES: &[Probe] = &ALL;
