//! Time as the caller's clock gives it: the core never reads a clock.
//!
//! Every deadline of a [`Connection`](super::Connection) and of the handshakes is
//! computed from the [`Time`]s passed in. With `std`, a `std::time::Instant`
//! converts into a `Time` (and back), so a driver on an operating system passes
//! `Instant::now()` as before; without `std`, the caller passes its own monotonic
//! clock: a `Duration` since any origin (boot, say), or, for the 32-bit
//! millisecond tick most microcontroller HALs and RTOSes keep, a [`MillisTick`]
//! that carries it across its wrap-around.

use core::ops::Add;
use core::time::Duration;

/// A point on the caller's monotonic clock: nanoseconds from an origin the caller
/// chooses (signed, so instants before it are exact too; ±292 years around it).
///
/// Make one from a `Duration` since the origin ([`Time::from`]`(duration)`,
/// [`Time::from_millis`], …) or, with `std`, from a `std::time::Instant` (all
/// `Instant`s of a process share one origin). Every time given to one connection
/// must come from the same clock.
///
/// ```
/// use core::time::Duration;
/// use silverback::proto::Time;
///
/// let t = Time::from_millis(1_500);
/// assert_eq!(t, Time::from(Duration::from_millis(1_500)));
/// assert_eq!((t + Duration::from_secs(1)).duration_since(t), Duration::from_secs(1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time(i64);

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

impl Time {
    /// The origin of the caller's clock.
    pub const ZERO: Time = Time(0);

    /// `n` nanoseconds after the origin (saturating at 292 years).
    pub const fn from_nanos(n: u64) -> Time {
        Time(if n > i64::MAX as u64 {
            i64::MAX
        } else {
            n as i64
        })
    }

    /// `ms` milliseconds after the origin.
    pub const fn from_millis(ms: u64) -> Time {
        Time::from_nanos(ms.saturating_mul(1_000_000))
    }

    /// `us` microseconds after the origin.
    pub const fn from_micros(us: u64) -> Time {
        Time::from_nanos(us.saturating_mul(1_000))
    }

    /// Nanoseconds from the origin (negative before it).
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// `d` before this (saturating).
    #[cfg_attr(not(feature = "handover"), allow(dead_code))]
    pub(crate) fn before(self, d: Duration) -> Time {
        Time(self.0.saturating_sub(nanos(d)))
    }

    /// How long after `earlier` this is (zero if it is not after it).
    pub fn duration_since(self, earlier: Time) -> Duration {
        Duration::from_nanos(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }
}

impl From<Duration> for Time {
    /// The time `since_origin` after the caller's origin.
    fn from(since_origin: Duration) -> Time {
        Time(nanos(since_origin))
    }
}

impl Add<Duration> for Time {
    type Output = Time;
    /// Saturating: a deadline beyond 292 years is never reached.
    fn add(self, d: Duration) -> Time {
        Time(self.0.saturating_add(nanos(d)))
    }
}

#[cfg(feature = "std")]
mod instant {
    use super::{Time, nanos};
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    /// The origin of the `Time`s made from `Instant`s: fixed once per process.
    fn origin() -> Instant {
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        *ORIGIN.get_or_init(Instant::now)
    }

    impl From<Instant> for Time {
        /// The instant on the process-wide clock every `Instant` converts on.
        fn from(t: Instant) -> Time {
            let o = origin();
            match t.checked_duration_since(o) {
                Some(after) => Time(nanos(after)),
                None => Time(-nanos(o - t)),
            }
        }
    }

    impl Time {
        /// The `Instant` this time was made from (for times made from `Instant`s;
        /// a time from another clock converts as if its origin were the process's
        /// first conversion).
        pub fn to_instant(self) -> Instant {
            let o = origin();
            let d = Duration::from_nanos(self.0.unsigned_abs());
            let t = if self.0 >= 0 {
                o.checked_add(d)
            } else {
                o.checked_sub(d)
            };
            // Beyond what the platform's Instant holds: the farthest it can say.
            t.unwrap_or(o)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn instants_round_trip_before_and_after_the_origin_and_keep_order() {
            let now = Instant::now();
            let o = origin();
            let mut ts = vec![
                now,
                o,
                o + Duration::from_nanos(1),
                o + Duration::from_secs(86_400 * 365),
                o + Duration::from_millis(1234),
            ];
            // Instants before the origin (negative times), where the clock allows.
            ts.extend(o.checked_sub(Duration::from_nanos(1)));
            ts.extend(o.checked_sub(Duration::from_millis(5)));
            for &t in &ts {
                assert_eq!(Time::from(t).to_instant(), t);
            }
            for &a in &ts {
                for &b in &ts {
                    assert_eq!(Time::from(a).cmp(&Time::from(b)), a.cmp(&b));
                }
            }
        }
    }
}

/// A 32-bit millisecond tick (FreeRTOS `xTaskGetTickCount` at 1 kHz, a HAL's
/// `millis()`, a SysTick counter) turned into [`Time`]s that keep counting when the
/// tick wraps around (every 49.7 days).
///
/// Keep one per clock and ask it for the time at least once per wrap period
/// (every event loop iteration does); one `MillisTick` serves every connection.
///
/// ```
/// use silverback::proto::{MillisTick, Time};
///
/// let mut clock = MillisTick::new();
/// assert_eq!(clock.time(u32::MAX - 9), Time::from_millis(u32::MAX as u64 - 9));
/// // The tick wrapped: 20 ms later, not 49.7 days earlier.
/// assert_eq!(clock.time(10), Time::from_millis(u32::MAX as u64 + 11));
/// ```
#[derive(Debug, Clone, Default)]
pub struct MillisTick {
    last: u32,
    wraps: u64,
}

impl MillisTick {
    /// A clock whose origin is tick 0 of its first period.
    pub const fn new() -> Self {
        MillisTick { last: 0, wraps: 0 }
    }

    /// The time at `tick`: a tick below the last one seen is taken as the tick
    /// having wrapped around.
    pub fn time(&mut self, tick: u32) -> Time {
        if tick < self.last {
            self.wraps += 1;
        }
        self.last = tick;
        Time::from_millis((self.wraps << 32) | u64::from(tick))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_milliseconds_agree_and_saturate() {
        assert_eq!(Time::from(Duration::from_millis(7)), Time::from_millis(7));
        assert_eq!(Time::from_micros(7_000), Time::from_millis(7));
        assert_eq!(Time::from_nanos(u64::MAX).as_nanos(), i64::MAX);
        let far = Time::from_nanos(u64::MAX) + Duration::from_secs(1);
        assert_eq!(far.as_nanos(), i64::MAX);
        let t = Time::from_millis(5);
        assert_eq!(
            t.duration_since(t + Duration::from_millis(1)),
            Duration::ZERO
        );
    }

    #[test]
    fn a_millisecond_tick_keeps_counting_across_wraps() {
        let mut clock = MillisTick::new();
        let mut tick = u32::MAX - 2_500;
        let mut last = clock.time(tick);
        for _ in 0..10 {
            tick = tick.wrapping_add(1_000);
            let t = clock.time(tick);
            assert_eq!(t.duration_since(last), Duration::from_secs(1));
            last = t;
        }
    }
}
