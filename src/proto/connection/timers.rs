//! The connection's timers: heartbeat ping and pong timeout, idle timeout, and the
//! waits of the closing handshake. Time is passed in; nothing here reads a clock.

use crate::proto::time::Time;

use super::Connection;
use super::lifecycle::{Stage, State};
use crate::proto::close_code::CloseCode;
use crate::proto::error::Lost;

/// The keepalive clock: what was received and pinged when (every connection
/// carries this).
#[derive(Debug, Clone, Copy)]
pub(super) struct Keepalive {
    pub(super) last_rx: Time,
    /// When the heartbeat last pinged (or tried to).
    pub(super) last_ping: Time,
    /// Our heartbeat ping (sent at `last_ping`) has had no answer yet.
    pub(super) awaiting_pong: bool,
}

impl Connection {
    /// When [`handle_timeout`](Self::handle_timeout) must next be called, if ever,
    /// as an `Instant` (for times given as `Instant`s; see
    /// [`poll_deadline`](Self::poll_deadline)). Changes after `read`, sends, closes
    /// and `handle_timeout`: ask again after each.
    #[cfg(feature = "std")]
    pub fn poll_timeout(&self) -> Option<std::time::Instant> {
        self.poll_deadline().map(Time::to_instant)
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called, if ever,
    /// on the clock the connection's times come from. Changes after `read`, sends,
    /// closes and `handle_timeout`: ask again after each.
    pub fn poll_deadline(&self) -> Option<Time> {
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
                let due = k.last_ping + wait;
                next = Some(next.map_or(due, |n| n.min(due)));
            }
            if let Some(idle) = cfg.idle_timeout {
                let due = k.last_rx + idle;
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
    pub fn handle_timeout(&mut self, now: impl Into<Time>) -> Result<(), Lost> {
        let now = now.into();
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
            if k.awaiting_pong && now >= k.last_ping + cfg.pong_timeout {
                // Nothing at all from the peer since our ping: it is gone.
                self.life.enter(Stage::Done);
                self.life.set_end(CloseCode::ABNORMAL, "pong timeout", true);
                return Err(Lost::PongTimeout);
            }
            if !k.awaiting_pong && now >= k.last_ping + interval {
                self.keepalive.awaiting_pong = self.ping(b"").is_ok();
                self.keepalive.last_ping = now;
            }
        }
        if let Some(idle) = cfg.idle_timeout
            && now >= self.keepalive.last_rx + idle
        {
            // An open connection can always send its close.
            let _ = self.close(now, CloseCode::GOING_AWAY, "idle timeout");
        }
        Ok(())
    }
}
