//! A deterministic corpus of JSON chat and push messages (100 B - 4 KiB), for
//! compression measurements that look like real traffic rather than one repeated
//! record: rooms, users, timestamps, prices and prose drawn from a word list, each
//! message different.
#![allow(dead_code)]

/// xorshift64*: small, fast, reproducible from a seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value).
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Fills `out` with random bytes.
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

const WORDS: &[&str] = &[
    "the",
    "a",
    "to",
    "and",
    "of",
    "in",
    "is",
    "it",
    "you",
    "that",
    "for",
    "on",
    "we",
    "this",
    "with",
    "be",
    "are",
    "have",
    "not",
    "at",
    "was",
    "just",
    "so",
    "can",
    "do",
    "what",
    "if",
    "meeting",
    "deploy",
    "release",
    "server",
    "client",
    "latency",
    "build",
    "test",
    "green",
    "red",
    "merge",
    "branch",
    "review",
    "ticket",
    "customer",
    "invoice",
    "order",
    "shipped",
    "tomorrow",
    "today",
    "yesterday",
    "lunch",
    "coffee",
    "please",
    "thanks",
    "sure",
    "maybe",
    "great",
    "looks",
    "good",
    "bad",
    "broken",
    "fixed",
    "again",
    "still",
    "waiting",
    "done",
    "friday",
    "monday",
    "weekend",
    "weather",
    "train",
    "late",
    "early",
    "call",
    "now",
    "later",
    "dashboard",
    "alert",
    "cpu",
    "memory",
    "disk",
    "network",
    "rollback",
    "canary",
    "staging",
    "production",
    "database",
    "index",
    "query",
    "slow",
    "fast",
    "cache",
    "miss",
    "hit",
];

const NAMES: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter",
];

const ROOMS: &[&str] = &["general", "random", "ops", "release", "support", "design"];
const SYMBOLS: &[&str] = &[
    "ACME", "GLOBX", "INITECH", "UMBRL", "HOOLI", "VANDL", "WAYNE",
];

fn prose(rng: &mut Rng, out: &mut String, words: usize) {
    for i in 0..words {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
    }
}

/// One message of about `target` bytes (at least 100): a chat line, a price tick
/// batch, a presence update or a notification, as a JSON object.
pub fn message(rng: &mut Rng, target: usize) -> String {
    let ts = 1_764_700_000_000u64 + rng.below(10_000_000);
    let user = NAMES[rng.below(NAMES.len() as u64) as usize];
    let uid = 1000 + rng.below(9000);
    let mut s = String::with_capacity(target + 64);
    match rng.below(4) {
        0 => {
            let room = ROOMS[rng.below(ROOMS.len() as u64) as usize];
            s.push_str(&format!(
                r#"{{"type":"chat","room":"{room}","id":"{:016x}","from":{{"id":{uid},"name":"{user}"}},"ts":{ts},"text":""#,
                rng.next()
            ));
            while s.len() + 2 < target {
                prose(rng, &mut s, 4);
                s.push(' ');
            }
            s.push_str("\"}");
        }
        1 => {
            s.push_str(&format!(r#"{{"type":"ticks","ts":{ts},"ticks":["#));
            let mut first = true;
            while s.len() + 2 < target {
                if !first {
                    s.push(',');
                }
                first = false;
                let sym = SYMBOLS[rng.below(SYMBOLS.len() as u64) as usize];
                let bid = 5_000 + rng.below(10_000);
                s.push_str(&format!(
                    r#"{{"s":"{sym}","bid":{}.{:02},"ask":{}.{:02},"v":{}}}"#,
                    bid / 100,
                    bid % 100,
                    (bid + 5) / 100,
                    (bid + 5) % 100,
                    rng.below(100_000)
                ));
            }
            s.push_str("]}");
        }
        2 => {
            s.push_str(&format!(r#"{{"type":"presence","ts":{ts},"users":["#));
            let mut first = true;
            while s.len() + 2 < target {
                if !first {
                    s.push(',');
                }
                first = false;
                let n = NAMES[rng.below(NAMES.len() as u64) as usize];
                let st = ["online", "away", "busy", "offline"][rng.below(4) as usize];
                s.push_str(&format!(
                    r#"{{"id":{},"name":"{n}","status":"{st}"}}"#,
                    1000 + rng.below(9000)
                ));
            }
            s.push_str("]}");
        }
        _ => {
            s.push_str(&format!(
                r#"{{"type":"notification","to":{uid},"ts":{ts},"title":""#
            ));
            prose(rng, &mut s, 3);
            s.push_str(r#"","body":""#);
            while s.len() + 2 < target {
                prose(rng, &mut s, 5);
                s.push(' ');
            }
            s.push_str("\"}");
        }
    }
    s
}

/// A message size between 100 B and 4 KiB, log-uniform (most messages are small).
pub fn size(rng: &mut Rng) -> usize {
    let f = (rng.below(1 << 20) as f64) / (1u64 << 20) as f64;
    (100.0 * (4096.0f64 / 100.0).powf(f)) as usize
}

/// Exactly `len` bytes of corpus text (messages joined by newlines, cut at `len`):
/// ASCII, so any cut is valid UTF-8.
pub fn text(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 4096);
    while out.len() < len {
        let n = size(rng);
        out.extend_from_slice(message(rng, n).as_bytes());
        out.push(b'\n');
    }
    out.truncate(len);
    out
}
