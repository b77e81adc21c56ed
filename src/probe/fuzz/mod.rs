//! `wsprobe fuzz`: seeded, reproducible mutation of valid conversations against a
//! live server, judged by our own decoder as the model of what the server must do.
//!
//! Each case starts from a valid client conversation (text, binary, fragmented
//! messages with pings between the fragments, pongs, sometimes a close), applies a
//! few mutations at frame level (FIN, RSV bits, opcode, mask, declared length,
//! length form, payload truncated or replaced by invalid UTF-8, frames duplicated,
//! dropped, swapped or split, oversized or fragmented controls, odd close codes) and
//! at byte level (bit flips, truncation), sends the bytes on a fresh connection, and
//! asks the model — `proto::Decoder` in the server role, the same rules our servers
//! run — what a conforming server does with them:
//!
//! * the bytes break a rule: the server fails the connection with the model's close
//!   code (1002 / 1007 / 1009, with the same tolerance as `check`);
//! * they end with a close: the server answers it and closes TCP;
//! * they are valid: the server answers a ping sent after them;
//! * they end inside a frame: only that the server stays up is judged.
//!
//! Every case is also judged for server death and, with `--pid`, RSS growth. A
//! failing case is shrunk (frames dropped, then bytes cut from the end) while it
//! keeps failing, and written as a reproducer file that `wsprobe replay` runs again.

use std::fmt::Write as _;
use std::time::Duration;

mod model;
mod mutate;

pub use model::Model;
use model::judge_bytes;
pub use mutate::Rng;
use mutate::{conversation, mutate};

use super::session::{Evidence, Target};
use super::{Options, Verdict, rss_kib, server_gone};
use crate::proto::raw::RawFrame;

/// One generated case.
#[derive(Debug, Clone)]
pub struct Case {
    /// The seed of the run and the case's index in it.
    pub seed: u64,
    /// The case's index.
    pub index: u64,
    /// The mutations applied.
    pub mutations: Vec<String>,
    /// The bytes sent after the handshake.
    pub bytes: Vec<u8>,
}

/// Case `index` of the run seeded with `seed`.
pub fn case(seed: u64, index: u64) -> Case {
    let mut rng = Rng::new(seed ^ index.wrapping_mul(0xA24B_AED4_963E_E407));
    let mut frames = conversation(&mut rng);
    let mut mutations = Vec::new();
    for _ in 0..1 + rng.below(3) {
        mutations.push(mutate(&mut rng, &mut frames));
    }
    let mut bytes = Vec::new();
    for f in &frames {
        f.encode_into(&mut bytes);
    }
    if rng.chance(8) && !bytes.is_empty() {
        let at = rng.below(bytes.len());
        let bit = rng.below(8);
        bytes[at] ^= 1 << bit;
        mutations.push(format!("byte {at}: bit {bit} flipped"));
    }
    if rng.chance(10) && !bytes.is_empty() {
        let n = rng.below(bytes.len());
        bytes.truncate(n);
        mutations.push(format!("cut to {n} bytes"));
    }
    Case {
        seed,
        index,
        mutations,
        bytes,
    }
}

/// Sends `bytes` on a fresh connection and judges the server's answer by the
/// model, then checks the server is still up.
pub fn judge(t: &Target, o: &Options, bytes: &[u8], ev: &mut Evidence) -> (Model, Verdict) {
    let model = Model::of(bytes);
    let before = o.pid.and_then(rss_kib);
    let mut v = judge_bytes(t, o, ev, bytes, model);
    if let (Some(b), Some(a)) = (before, o.pid.and_then(rss_kib))
        && a.saturating_sub(b) > o.rss_growth_kib
        && !v.is_failure()
    {
        v = Verdict::Violated(format!("server RSS grew by {} KiB", a - b));
    }
    if let Some(gone) = server_gone(t, o) {
        v = Verdict::ServerGone(gone);
    }
    (model, v)
}

/// Frames of `bytes` as the lenient reader sees them, and what is left after them.
fn split_frames(bytes: &[u8]) -> (Vec<Vec<u8>>, Vec<u8>) {
    let mut frames = Vec::new();
    let mut off = 0;
    while let Some((_, n)) = RawFrame::parse(&bytes[off..]) {
        frames.push(bytes[off..off + n].to_vec());
        off += n;
    }
    (frames, bytes[off..].to_vec())
}

/// Shrinks `bytes` while `fails` says they still fail: whole frames dropped first,
/// then the tail cut. Bounded by `budget` calls of `fails`.
pub fn shrink(bytes: &[u8], budget: usize, mut fails: impl FnMut(&[u8]) -> bool) -> Vec<u8> {
    let mut best = bytes.to_vec();
    let mut calls = 0;
    let (mut frames, tail) = split_frames(&best);
    if !tail.is_empty() {
        frames.push(tail);
    }
    let mut i = 0;
    while i < frames.len() && calls < budget {
        let mut fewer = frames.clone();
        fewer.remove(i);
        let candidate: Vec<u8> = fewer.concat();
        calls += 1;
        if !candidate.is_empty() && fails(&candidate) {
            frames = fewer;
            best = candidate;
        } else {
            i += 1;
        }
    }
    let mut cut = best.len() / 2;
    while cut > 0 && calls < budget {
        let candidate = &best[..best.len() - cut];
        calls += 1;
        if !candidate.is_empty() && fails(candidate) {
            best = candidate.to_vec();
        } else {
            cut /= 2;
        }
    }
    best
}

/// A reproducer file: comments, then the bytes as hex, 32 to a line.
pub fn reproducer(target: &str, c: &Case, model: Model, v: &Verdict, bytes: &[u8]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# wsprobe reproducer: run with `wsprobe replay FILE ws://HOST:PORT/PATH`"
    );
    let _ = writeln!(s, "# target: {target}");
    let _ = writeln!(
        s,
        "# seed {} case {} (wsprobe fuzz --seed {} finds it again)",
        c.seed, c.index, c.seed
    );
    for m in &c.mutations {
        let _ = writeln!(s, "# mutation: {m}");
    }
    let _ = writeln!(s, "# model: {}", model.describe());
    let _ = writeln!(s, "# verdict: {}: {}", v.name(), v.detail());
    let _ = writeln!(
        s,
        "# bytes after the handshake, shrunk from {} to {}:",
        c.bytes.len(),
        bytes.len()
    );
    for line in bytes.chunks(32) {
        for b in line {
            let _ = write!(s, "{b:02x}");
        }
        s.push('\n');
    }
    s
}

/// The bytes of a reproducer file (`#` lines are comments).
pub fn parse_reproducer(text: &str) -> Result<Vec<u8>, String> {
    let hex: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
        .collect();
    if !hex.len().is_multiple_of(2) {
        return Err("odd number of hex digits".into());
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|e| format!("at digit {i}: {e}")))
        .collect()
}

/// A failing case, shrunk.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The case.
    pub case: Case,
    /// What the model called for.
    pub model: Model,
    /// How the server answered the shrunk bytes.
    pub verdict: Verdict,
    /// The shrunk bytes.
    pub bytes: Vec<u8>,
    /// The evidence of the shrunk bytes' run.
    pub evidence: Evidence,
}

/// Runs cases `0..cases` of `seed`; `each` sees every case's verdict. Stops after
/// `max_findings` failures (each shrunk) or once the server is gone.
pub fn run(
    t: &Target,
    o: &Options,
    seed: u64,
    cases: u64,
    max_findings: usize,
    mut each: impl FnMut(&Case, Model, &Verdict),
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for index in 0..cases {
        let c = case(seed, index);
        let mut ev = Evidence::default();
        let (model, v) = judge(t, o, &c.bytes, &mut ev);
        each(&c, model, &v);
        if !v.is_failure() {
            continue;
        }
        let gone = matches!(v, Verdict::ServerGone(_));
        let bytes = if gone {
            // A dead server cannot judge the shrinking.
            c.bytes.clone()
        } else {
            shrink(&c.bytes, 40, |b| {
                judge(t, o, b, &mut Evidence::default()).1.is_failure()
            })
        };
        let mut evidence = Evidence::default();
        let (model, verdict) = if gone {
            (model, v)
        } else {
            judge(t, o, &bytes, &mut evidence)
        };
        findings.push(Finding {
            case: c,
            model,
            verdict,
            bytes,
            evidence,
        });
        if gone || findings.len() >= max_findings {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(frames: &[RawFrame]) -> Vec<u8> {
        frames.iter().flat_map(RawFrame::encode).collect()
    }

    #[test]
    fn the_model_is_our_decoder() {
        let k = [1, 2, 3, 4];
        let valid = wire(&[
            RawFrame::text("a").fin(false).masked(k),
            RawFrame::ping("p").masked(k),
        ]);
        assert_eq!(
            Model::of(&valid),
            Model::Continues,
            "an open message still takes pings"
        );
        assert_eq!(
            Model::of(&wire(&[RawFrame::text("a")])),
            Model::Fails(1002),
            "unmasked"
        );
        assert_eq!(
            Model::of(&wire(&[RawFrame::text(&b"\xFF"[..]).masked(k)])),
            Model::Fails(1007)
        );
        assert_eq!(
            Model::of(&wire(&[RawFrame::close(1000, b"").masked(k)])),
            Model::Closes
        );
        let header_only = &wire(&[RawFrame::pong("abc").masked(k)])[..6];
        assert_eq!(Model::of(header_only), Model::Incomplete);
        assert_eq!(Model::of(&[0x81]), Model::Incomplete);
        assert_eq!(Model::of(&[]), Model::Continues);
    }

    #[test]
    fn a_seed_names_the_same_cases_forever() {
        // SplitMix64's first outputs for seed 0 (the published reference values).
        let mut r = Rng::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        let (a, b) = (case(42, 7), case(42, 7));
        assert_eq!(a.bytes, b.bytes);
        assert_eq!(a.mutations, b.mutations);
        assert_ne!(case(42, 8).bytes, a.bytes);
    }

    #[test]
    fn shrinking_keeps_what_fails_and_drops_the_rest() {
        let k = [9; 4];
        let bytes = wire(&[
            RawFrame::text("one").masked(k),
            RawFrame::new(0x3, "bad").masked(k),
            RawFrame::binary(vec![0; 50]).masked(k),
        ]);
        // "Fails" while the reserved opcode is in there.
        let fails = |b: &[u8]| Model::of(b) == Model::Fails(1002);
        let small = shrink(&bytes, 100, fails);
        assert_eq!(
            small,
            wire(&[RawFrame::new(0x3, "bad").masked(k)])[..small.len()]
        );
        assert!(
            small.len() <= 2,
            "cut down to the header that breaks the rule: {small:?}"
        );
        assert!(fails(&small));
    }

    #[test]
    fn reproducers_round_trip() {
        let c = case(1, 2);
        let text = reproducer("ws://x/", &c, Model::Fails(1002), &Verdict::Held, &c.bytes);
        assert_eq!(parse_reproducer(&text).unwrap(), c.bytes);
        assert!(parse_reproducer("abc").is_err());
    }
}
