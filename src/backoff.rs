//! When a client tries again: exponential backoff with full jitter (the AWS
//! Architecture Blog's "Exponential Backoff and Jitter"), shared by the event
//! loop's reconnecting clients ([`ClientBuilder::reconnect`](crate::event::ClientBuilder::reconnect))
//! and the blocking [`Reconnector`](crate::blocking::Reconnector).

use std::time::{Duration, Instant};

/// A reconnection policy: attempt `n` (0 for the first retry) waits a random
/// time, uniform between zero and `min(max_delay, initial × factorⁿ)` ("full
/// jitter"), so that a fleet of clients dropped at the same moment comes back
/// spread over the window instead of in one spike. Retries stop after
/// `max_attempts` or once `max_elapsed` has passed since the first failure, if
/// set. A connection that stayed up for `reset_after` starts again from
/// attempt 0; one that drops sooner goes on where the last left off, so a
/// server that accepts and drops at once is not hammered.
///
/// ```
/// use std::time::Duration;
/// use silverback::Backoff;
///
/// let b = Backoff::new()
///     .initial(Duration::from_millis(500))
///     .factor(2.0)
///     .max_delay(Duration::from_secs(30))
///     .max_attempts(Some(10));
/// assert_eq!(b.ceiling(0), Duration::from_millis(500));
/// assert_eq!(b.ceiling(3), Duration::from_secs(4));
/// assert_eq!(b.ceiling(20), Duration::from_secs(30));
/// assert!(b.delay(3) <= Duration::from_secs(4));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    initial: Duration,
    factor: f64,
    max_delay: Duration,
    max_attempts: Option<u32>,
    max_elapsed: Option<Duration>,
    reset_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            factor: 2.0,
            max_delay: Duration::from_secs(60),
            max_attempts: None,
            max_elapsed: None,
            reset_after: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The defaults: 1 s initial window, factor 2, at most 60 s, retrying
    /// forever, reset after 30 s up.
    pub fn new() -> Self {
        Self::default()
    }

    /// The first retry's window (default 1 s).
    pub fn initial(mut self, d: Duration) -> Self {
        self.initial = d;
        self
    }

    /// How much each window grows (default 2; values below 1 count as 1).
    pub fn factor(mut self, f: f64) -> Self {
        self.factor = if f.is_finite() { f.max(1.0) } else { 1.0 };
        self
    }

    /// The largest window (default 60 s).
    pub fn max_delay(mut self, d: Duration) -> Self {
        self.max_delay = d;
        self
    }

    /// Gives up after this many retries in a row (default: never).
    pub fn max_attempts(mut self, n: Option<u32>) -> Self {
        self.max_attempts = n;
        self
    }

    /// Gives up once this long has passed since the first failure of a run of
    /// failures (default: never).
    pub fn max_elapsed(mut self, d: Option<Duration>) -> Self {
        self.max_elapsed = d;
        self
    }

    /// A connection up this long resets the attempt count (default 30 s).
    pub fn reset_after(mut self, d: Duration) -> Self {
        self.reset_after = d;
        self
    }

    /// The upper end of attempt `n`'s window: `min(max_delay, initial × factorⁿ)`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let grown = self.initial.as_secs_f64() * self.factor.powi(attempt.min(1024) as i32);
        if !grown.is_finite() || grown >= self.max_delay.as_secs_f64() {
            return self.max_delay;
        }
        Duration::from_secs_f64(grown).min(self.max_delay)
    }

    /// A random wait for attempt `n`, uniform in `[0, ceiling(n)]`.
    pub fn delay(&self, attempt: u32) -> Duration {
        self.ceiling(attempt).mul_f64(rand::random::<f64>())
    }

    /// The attempt count after a connection that was up for `up`: 0 if it
    /// stayed `reset_after` or longer, else `attempt` unchanged.
    pub fn after_connection(&self, attempt: u32, up: Duration) -> u32 {
        if up >= self.reset_after { 0 } else { attempt }
    }

    /// Whether attempt `n` may be made, for a run of failures that began at
    /// `since` (`now` is the caller's clock).
    pub fn allows(&self, attempt: u32, since: Instant, now: Instant) -> bool {
        self.max_attempts.is_none_or(|m| attempt < m)
            && self
                .max_elapsed
                .is_none_or(|m| now.saturating_duration_since(since) < m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_grow_to_the_cap_and_delays_are_spread_inside() {
        let b = Backoff::new()
            .initial(Duration::from_millis(100))
            .max_delay(Duration::from_secs(2));
        assert_eq!(b.ceiling(0), Duration::from_millis(100));
        assert_eq!(b.ceiling(1), Duration::from_millis(200));
        assert_eq!(b.ceiling(4), Duration::from_millis(1600));
        assert_eq!(b.ceiling(5), Duration::from_secs(2));
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(2));
        // Full jitter: 2,000 draws of attempt 0 cover the window evenly (each
        // tenth holds 200 ± 80; the bound is 5.6 standard deviations).
        let mut tenths = [0u32; 10];
        for _ in 0..2000 {
            let d = b.delay(0);
            assert!(d <= Duration::from_millis(100));
            tenths[((d.as_secs_f64() * 100.0) as usize).min(9)] += 1;
        }
        assert!(
            tenths.iter().all(|&n| (120..=280).contains(&n)),
            "{tenths:?}"
        );
    }

    #[test]
    fn limits_and_reset() {
        let t0 = Instant::now();
        let b = Backoff::new()
            .max_attempts(Some(3))
            .max_elapsed(Some(Duration::from_secs(10)))
            .reset_after(Duration::from_secs(5));
        assert!(b.allows(2, t0, t0));
        assert!(!b.allows(3, t0, t0));
        assert!(!b.allows(0, t0, t0 + Duration::from_secs(10)));
        assert_eq!(b.after_connection(7, Duration::from_secs(4)), 7);
        assert_eq!(b.after_connection(7, Duration::from_secs(5)), 0);
        assert_eq!(
            Backoff::new().factor(0.5).ceiling(3),
            Duration::from_secs(1)
        );
        assert_eq!(
            Backoff::new().factor(f64::NAN).ceiling(3),
            Duration::from_secs(1)
        );
    }
}
