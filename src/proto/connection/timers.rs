//! The connection's timers: heartbeat ping and pong timeout, idle timeout, and the
//! waits of the closing handshake. Time is passed in; nothing here reads a clock.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::Connection;
use super::lifecycle::{Stage, State};
use crate::proto::close_code::CloseCode;
use crate::proto::error::Lost;

/// The keepalive clock: what was received and pinged when (compact stamps: every
/// connection carries this).
#[derive(Debug, Clone, Copy)]
pub(super) struct Keepalive {
    pub(super) last_rx: Stamp,
    /// When the heartbeat last pinged (or tried to).
    pub(super) last_ping: Stamp,
    /// Our heartbeat ping (sent at `last_ping`) has had no answer yet.
    pub(super) awaiting_pong: bool,
}

impl Connection {
    /// When [`handle_timeout`](Self::handle_timeout) must next be called, if ever.
    /// Changes after `read`, sends, closes and `handle_timeout`: ask again after
    /// each.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next = self.life.deadline();
        if self.life.is_open() {
            let cfg = &self.config;
            let k = &self.keepalive;
            if let Some(interval) = cfg.ping_interval {
                let wait = if k.awaiting_pong {
                    cfg.pong_timeout
                } else {
                    interval
                };
                let due = k.last_ping.instant() + wait;
                next = Some(next.map_or(due, |n| n.min(due)));
            }
            if let Some(idle) = cfg.idle_timeout {
                let due = k.last_rx.instant() + idle;
                next = Some(next.map_or(due, |n| n.min(due)));
            }
        }
        next
    }

    /// Runs the timers due at `now`: sends the heartbeat ping, closes (1001) an idle
    /// connection, ends the waits of the closing handshake (the connection is then
    /// [done](State::Done)).
    ///
    /// Returns the [`Lost`] outcome when the connection ended because the peer went
    /// quiet (the connection is then done; [`end`](Self::end) says how it ended):
    /// [`Lost::PongTimeout`] when our heartbeat ping went unanswered for
    /// `pong_timeout` (ended as 1006 "pong timeout"), [`Lost::CloseTimeout`] when
    /// our close went unanswered, or a failed transmission was never followed by
    /// the peer's close or end of input, within `close_timeout`. After a complete
    /// closing handshake, or a failure [`read`](Self::read) already reported, a
    /// transport the server does not close ends the connection with `Ok`: the
    /// conversation had ended.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Lost> {
        if self.life.deadline().is_some_and(|d| now >= d) {
            // Our close went unanswered, the server never closed the transport, or
            // our writes failed and the peer never said why. Lost if we were still
            // waiting for the peer's word (an answer to our close, or its close after
            // our writes failed); after the closing handshake, or a failure already
            // reported, the conversation had ended: only the transport's close is
            // late.
            let lost = matches!(self.life.state(), State::CloseSent | State::WriteFailed);
            let e = self.life.enter(Stage::Done);
            e.deadline = None;
            self.life.set_end(CloseCode::ABNORMAL, "", false);
            if lost {
                return Err(Lost::CloseTimeout);
            }
            return Ok(());
        }
        if !self.life.is_open() {
            return Ok(());
        }
        let cfg = self.config.clone();
        if let Some(interval) = cfg.ping_interval {
            let k = self.keepalive;
            if k.awaiting_pong && now >= k.last_ping.instant() + cfg.pong_timeout {
                // Nothing at all from the peer since our ping: it is gone.
                self.life.enter(Stage::Done);
                self.life.set_end(CloseCode::ABNORMAL, "pong timeout", true);
                return Err(Lost::PongTimeout);
            }
            if !k.awaiting_pong && now >= k.last_ping.instant() + interval {
                self.keepalive.awaiting_pong = self.ping(b"").is_ok();
                self.keepalive.last_ping = Stamp::of(now);
            }
        }
        if let Some(idle) = cfg.idle_timeout
            && now >= self.keepalive.last_rx.instant() + idle
        {
            // An open connection can always send its close.
            let _ = self.close(now, CloseCode::GOING_AWAY, "idle timeout");
        }
        Ok(())
    }
}

/// An instant in 8 bytes (an [`Instant`] takes 16): signed nanoseconds from a
/// process-wide origin, so instants taken before the origin was fixed are exact
/// too. Covers ±292 years around the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Stamp(i64);

fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

impl Stamp {
    pub(super) fn of(t: Instant) -> Stamp {
        let o = origin();
        match t.checked_duration_since(o) {
            Some(after) => Stamp(nanos(after)),
            None => Stamp(-nanos(o - t)),
        }
    }

    pub(super) fn instant(self) -> Instant {
        let o = origin();
        let d = Duration::from_nanos(self.0.unsigned_abs());
        let t = if self.0 >= 0 {
            o.checked_add(d)
        } else {
            o.checked_sub(d)
        };
        // A stamp comes from an instant, so it converts back; never panic if not.
        t.unwrap_or(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_before_and_after_the_origin_and_keep_order() {
        let now = Instant::now();
        let o = origin();
        let mut ts = vec![
            now,
            o,
            o + Duration::from_nanos(1),
            o + Duration::from_secs(86_400 * 365),
            o + Duration::from_millis(1234),
        ];
        // Instants before the origin (negative stamps), where the clock allows.
        ts.extend(o.checked_sub(Duration::from_nanos(1)));
        ts.extend(o.checked_sub(Duration::from_millis(5)));
        for &t in &ts {
            assert_eq!(Stamp::of(t).instant(), t);
        }
        for &a in &ts {
            for &b in &ts {
                assert_eq!(Stamp::of(a).cmp(&Stamp::of(b)), a.cmp(&b));
            }
        }
    }
}
