//! Case generation: a seeded generator, valid conversations, and the mutations
//! applied to them.

use crate::proto::raw::{LenForm, RawFrame};

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

    pub(super) fn chance(&mut self, one_in: usize) -> bool {
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

/// A valid conversation from `rng`: masked client frames.
pub(super) fn conversation(rng: &mut Rng) -> Vec<RawFrame> {
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
pub(super) fn mutate(rng: &mut Rng, frames: &mut Vec<RawFrame>) -> String {
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
