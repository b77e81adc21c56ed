//! Where mask keys (RFC 6455 §5.3) and `Sec-WebSocket-Key`s (§4.1) come from.
//!
//! By default each key is drawn from the thread-local generator that `rand` seeds
//! from the operating system: unpredictable, as §5.3 asks, and no state per
//! connection. A caller that wants a reproducible run (a test, a fuzzer, a replay)
//! gives a connection its own seeded generator instead.

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng};

/// A connection's source of randomness: the thread-local CSPRNG (default) or a
/// generator seeded by the caller.
#[derive(Debug, Default)]
pub struct Randomness(Source);

#[derive(Debug, Default)]
enum Source {
    #[default]
    Thread,
    Seeded(Box<StdRng>),
}

impl Randomness {
    /// The thread-local generator, seeded from the operating system (the default).
    pub fn thread() -> Self {
        Randomness(Source::Thread)
    }

    /// A generator seeded with `seed`: the same seed gives the same keys, so a run
    /// can be reproduced. Not unpredictable: for tests, fuzzing and replays only.
    pub fn seeded(seed: u64) -> Self {
        Randomness(Source::Seeded(Box::new(StdRng::seed_from_u64(seed))))
    }

    /// True for a caller-seeded generator.
    pub fn is_seeded(&self) -> bool {
        matches!(self.0, Source::Seeded(_))
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        match &mut self.0 {
            Source::Thread => rand::rng().fill_bytes(buf),
            Source::Seeded(r) => r.fill_bytes(buf),
        }
    }

    /// A fresh masking key.
    #[inline]
    pub fn mask_key(&mut self) -> [u8; 4] {
        match &mut self.0 {
            Source::Thread => rand::random(),
            Source::Seeded(r) => r.next_u32().to_ne_bytes(),
        }
    }

    /// A generator for a second stream derived from this one (a seeded generator
    /// gives a seeded child, so a whole run stays reproducible).
    pub fn fork(&mut self) -> Randomness {
        match &mut self.0 {
            Source::Thread => Randomness::thread(),
            Source::Seeded(r) => Randomness::seeded(r.next_u64()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_generators_repeat_and_thread_ones_do_not() {
        let (mut a, mut b) = (Randomness::seeded(7), Randomness::seeded(7));
        let ka: Vec<[u8; 4]> = (0..8).map(|_| a.mask_key()).collect();
        let kb: Vec<[u8; 4]> = (0..8).map(|_| b.mask_key()).collect();
        assert_eq!(ka, kb);
        let mut t = Randomness::thread();
        let kt: Vec<[u8; 4]> = (0..8).map(|_| t.mask_key()).collect();
        assert_ne!(kt, ka);
        let (mut fa, mut fb) = (a.fork(), b.fork());
        assert_eq!(fa.mask_key(), fb.mask_key());
    }
}
