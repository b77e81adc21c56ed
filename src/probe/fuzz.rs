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

use super::catalogue::judge_bytes;
use super::session::{Evidence, Target};
use super::{Options, Verdict, rss_kib, server_gone};
use crate::proto::raw::{LenForm, RawFrame};
use crate::proto::{Decoder, FrameEvent, Role};

/// SplitMix64: a generator whose sequence never changes, so that a seed names the
/// same cases in every version.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }

    fn bytes_upto(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max);
        self.bytes(n)
    }

    fn key(&mut self) -> [u8; 4] {
        (self.next_u64() as u32).to_be_bytes()
    }
}

/// What a conforming server does with a case's bytes, by our decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// Valid: the conversation goes on.
    Continues,
    /// A rule is broken: the connection fails with this close code.
    Fails(u16),
    /// A valid close: answered, then TCP closed.
    Closes,
    /// The bytes end inside a frame: nothing to judge but survival.
    Incomplete,
}

impl Model {
    /// What `bytes` (a client's, after the handshake) call for.
    pub fn of(bytes: &[u8]) -> Model {
        let mut dec = Decoder::new(Role::Server);
        let mut buf = bytes.to_vec();
        let mut off = 0;
        // Each round consumes input or ends: bounded by the input's length.
        for _ in 0..=buf.len() + 1 {
            match dec.decode(&mut buf[off..]) {
                Err(e) => return Model::Fails(e.close_code().as_u16()),
                Ok((n, Some(FrameEvent::Close(_)))) => {
                    let _ = n;
                    return Model::Closes;
                }
                Ok((n, Some(_))) => off += n,
                Ok((0, None)) => {
                    return if off == buf.len() && !dec.mid_frame() {
                        Model::Continues
                    } else {
                        Model::Incomplete
                    };
                }
                Ok((n, None)) => off += n,
            }
        }
        Model::Incomplete
    }

    /// The model in words.
    pub fn describe(self) -> String {
        match self {
            Model::Continues => "valid: the connection goes on".into(),
            Model::Fails(c) => format!("breaks a rule: fail with {c}"),
            Model::Closes => "ends with a valid close: answer it, close TCP".into(),
            Model::Incomplete => "ends inside a frame: stay up".into(),
        }
    }
}

/// A valid conversation from `rng`: masked client frames.
fn conversation(rng: &mut Rng) -> Vec<RawFrame> {
    const WORDS: [&str; 6] = ["hello", "κόσμε", "wsprobe", "", "0123456789", "ünïcödé 😀"];
    let mut frames = Vec::new();
    for _ in 0..1 + rng.below(4) {
        match rng.below(6) {
            0 => frames.push(RawFrame::text(WORDS[rng.below(WORDS.len())])),
            1 => {
                let n = rng.below(300);
                frames.push(RawFrame::binary(rng.bytes(n)));
            }
            2 => {
                let text = WORDS[rng.below(WORDS.len())].repeat(1 + rng.below(3));
                let b = text.as_bytes();
                let cut = rng.below(b.len() + 1);
                frames.push(RawFrame::text(&b[..cut]).fin(false));
                if rng.chance(2) {
                    frames.push(RawFrame::ping(rng.bytes_upto(20)));
                }
                frames.push(RawFrame::continuation(&b[cut..]));
            }
            3 => frames.push(RawFrame::ping(rng.bytes_upto(126))),
            4 => frames.push(RawFrame::pong(rng.bytes_upto(10))),
            _ => {
                let n = 200 + rng.below(70_000);
                frames.push(RawFrame::binary(vec![b'z'; n]));
            }
        }
    }
    if rng.chance(4) {
        frames.push(RawFrame::close(1000, b"done"));
    }
    for f in &mut frames {
        f.mask = Some(rng.key());
    }
    frames
}

/// One mutation of `frames`, described.
fn mutate(rng: &mut Rng, frames: &mut Vec<RawFrame>) -> String {
    if frames.is_empty() {
        frames.push(RawFrame::text("x").masked(rng.key()));
    }
    let i = rng.below(frames.len());
    match rng.below(16) {
        0 => {
            frames[i].fin = !frames[i].fin;
            format!("frame {i}: FIN flipped")
        }
        1 => {
            frames[i].rsv = 1 + rng.below(7) as u8;
            format!("frame {i}: RSV {:03b}", frames[i].rsv)
        }
        2 => {
            frames[i].opcode = rng.below(16) as u8;
            format!("frame {i}: opcode {:#x}", frames[i].opcode)
        }
        3 => {
            frames[i].mask = None;
            format!("frame {i}: unmasked")
        }
        4 => {
            let len = match rng.below(3) {
                0 => frames[i].payload.len() as u64 + 1 + rng.below(10) as u64,
                1 => 1 << 62,
                _ => 1 << 63,
            };
            frames[i].declared_len = Some(len);
            format!("frame {i}: declares {len} bytes")
        }
        5 => {
            frames[i].len_form = if rng.chance(2) {
                LenForm::Len16
            } else {
                LenForm::Len64
            };
            format!("frame {i}: length in the {:?} form", frames[i].len_form)
        }
        6 => {
            let n = rng.below(frames[i].payload.len() + 1);
            frames[i].payload.truncate(n);
            format!("frame {i}: payload cut to {n} bytes")
        }
        7 => {
            let at = rng.below(frames[i].payload.len() + 1);
            frames[i]
                .payload
                .insert(at, [0xC0, 0xFF, 0xED, 0x80][rng.below(4)]);
            format!("frame {i}: a byte that is never UTF-8 at {at}")
        }
        8 => {
            let dup = frames[i].clone();
            frames.insert(i, dup);
            format!("frame {i}: duplicated")
        }
        9 if frames.len() > 1 => {
            frames.remove(i);
            format!("frame {i}: dropped")
        }
        10 if frames.len() > 1 => {
            let j = rng.below(frames.len());
            frames.swap(i, j);
            format!("frames {i} and {j}: swapped")
        }
        11 => {
            let p = std::mem::take(&mut frames[i].payload);
            let cut = rng.below(p.len() + 1);
            let mut second = RawFrame::continuation(&p[cut..]).masked(rng.key());
            second.fin = frames[i].fin;
            frames[i].payload = p[..cut].to_vec();
            frames[i].fin = false;
            frames.insert(i + 1, second);
            format!("frame {i}: split at {cut}")
        }
        12 => {
            let n = 126 + rng.below(200);
            frames.insert(i, RawFrame::ping(vec![b'p'; n]).masked(rng.key()));
            format!("a {n}-byte ping before frame {i}")
        }
        13 => {
            frames.insert(i, RawFrame::ping("frag").fin(false).masked(rng.key()));
            format!("a fragmented ping before frame {i}")
        }
        14 => {
            let code = [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535][rng.below(10)];
            frames.insert(i, RawFrame::close(code, b"").masked(rng.key()));
            format!("close code {code} before frame {i}")
        }
        _ => {
            frames.insert(i, RawFrame::close_raw(vec![0x03]).masked(rng.key()));
            format!("a 1-byte close before frame {i}")
        }
    }
}

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
