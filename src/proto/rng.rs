//! Where mask keys (RFC 6455 §5.3) and `Sec-WebSocket-Key`s (§4.1) come from.
//!
//! With `std`, each key is drawn by default from the thread-local generator that
//! `rand` seeds from the operating system: unpredictable, as §5.3 asks, and no state
//! per connection. Without `std` there is no operating system to ask, so the caller
//! supplies a cryptographically secure generator ([`Randomness::from_rng`]): a
//! client's masks exist to stop a hostile page from steering the bytes a proxy
//! sees (§10.3), which works only if the page cannot predict them, and the
//! handshake key must not repeat. On a board with a hardware RNG peripheral (ESP32,
//! STM32 with RNG, nRF), wrap the peripheral, or seed a ChaCha generator
//! (`rand::rngs::StdRng`, `rand_chacha`) from it once. On a board without one, seed
//! it from a secret stored per device at provisioning plus whatever is not
//! predictable at boot (ADC noise, clock jitter), and never from a constant or the
//! tick counter alone. A caller that wants a reproducible run (a test, a fuzzer, a
//! replay) gives a connection a seeded generator instead ([`Randomness::seeded`]).

use alloc::boxed::Box;
use core::fmt;

use rand::rngs::StdRng;
use rand::{CryptoRng, Rng, SeedableRng};

/// A connection's source of randomness: the thread-local CSPRNG (`std`, the
/// default there), a generator the caller supplies, or one seeded by the caller.
///
/// Without `std` the caller supplies a cryptographically secure generator
/// ([`Randomness::from_rng`]): a client's masks exist to stop a hostile page from
/// steering the bytes a proxy sees (RFC 6455 §10.3), which works only if the page
/// cannot predict them, and the handshake key must not repeat. On a board with a
/// hardware RNG peripheral (ESP32, STM32 with RNG, nRF), wrap the peripheral, or
/// seed a ChaCha generator (`rand::rngs::StdRng`) from it once. On a board without
/// one, seed it from a secret stored per device at provisioning plus whatever is
/// not predictable at boot (ADC noise, clock jitter), never from a constant or the
/// tick counter alone.
#[cfg_attr(feature = "std", derive(Default))]
pub struct Randomness(Source);

#[cfg_attr(feature = "std", derive(Default))]
enum Source {
    #[cfg(feature = "std")]
    #[cfg_attr(feature = "std", default)]
    Thread,
    Seeded(Box<StdRng>),
    Caller(Box<dyn Rng + Send>),
    Unused,
}

impl fmt::Debug for Randomness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            #[cfg(feature = "std")]
            Source::Thread => "Randomness::thread()",
            Source::Seeded(_) => "Randomness::seeded(..)",
            Source::Caller(_) => "Randomness::from_rng(..)",
            Source::Unused => "Randomness::unused()",
        })
    }
}

impl Randomness {
    /// The thread-local generator, seeded from the operating system (the default).
    #[cfg(feature = "std")]
    pub fn thread() -> Self {
        Randomness(Source::Thread)
    }

    /// The caller's cryptographically secure generator (a hardware RNG, a ChaCha
    /// generator seeded from one): what a build without `std` gives a client. See
    /// [`Randomness`] for what to use on a board.
    pub fn from_rng<R: CryptoRng + Send + 'static>(rng: R) -> Self {
        Randomness(Source::Caller(Box::new(rng)))
    }

    /// For a connection that never draws: a server's (servers neither mask nor
    /// make handshake keys). A client must never be given it: its keys would all
    /// be zero.
    pub fn unused() -> Self {
        Randomness(Source::Unused)
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
            #[cfg(feature = "std")]
            Source::Thread => rand::rng().fill_bytes(buf),
            Source::Seeded(r) => r.fill_bytes(buf),
            Source::Caller(r) => r.fill_bytes(buf),
            Source::Unused => buf.fill(0),
        }
    }

    /// A fresh masking key.
    #[inline]
    pub fn mask_key(&mut self) -> [u8; 4] {
        match &mut self.0 {
            #[cfg(feature = "std")]
            Source::Thread => rand::random(),
            Source::Seeded(r) => r.next_u32().to_ne_bytes(),
            Source::Caller(r) => r.next_u32().to_ne_bytes(),
            Source::Unused => [0; 4],
        }
    }

    /// A generator for a second stream derived from this one (a seeded generator
    /// gives a seeded child, so a whole run stays reproducible; the caller's
    /// generator seeds a ChaCha child).
    pub fn fork(&mut self) -> Randomness {
        match &mut self.0 {
            #[cfg(feature = "std")]
            Source::Thread => Randomness::thread(),
            Source::Seeded(r) => Randomness::seeded(r.next_u64()),
            // A child of the caller's generator: a ChaCha generator seeded from it.
            Source::Caller(r) => {
                let mut seed = <StdRng as SeedableRng>::Seed::default();
                r.fill_bytes(seed.as_mut());
                Randomness(Source::Caller(Box::new(StdRng::from_seed(seed))))
            }
            Source::Unused => Randomness::unused(),
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

    #[test]
    fn a_callers_generator_is_used_and_forks_into_an_independent_one() {
        let mut caller = Randomness::from_rng(StdRng::seed_from_u64(9));
        let mut same = StdRng::seed_from_u64(9);
        assert_eq!(caller.mask_key(), same.next_u32().to_ne_bytes());
        let (mut buf, mut want) = ([0u8; 16], [0u8; 16]);
        caller.fill(&mut buf);
        same.fill_bytes(&mut want);
        assert_eq!(buf, want);
        let mut child = caller.fork();
        assert_ne!(child.mask_key(), caller.mask_key());
        assert!(!child.is_seeded());
        assert_eq!(
            format!("{:?}", Randomness::unused()),
            "Randomness::unused()"
        );
    }
}
