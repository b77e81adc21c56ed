//! The connection's timers: heartbeat ping and pong timeout, idle timeout, and the
//! waits of the closing handshake. Time is passed in; nothing here reads a clock.

use std::time::Instant;

use super::{Connection, State};
use crate::error::Error;
use crate::proto::close::CloseCode;

impl Connection {
    /// When [`handle_timeout`](Self::handle_timeout) must next be called, if ever.
    /// Changes after `read`, sends, closes and `handle_timeout`: ask again after
    /// each.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next = self.close_deadline();
        if self.state == State::Open {
            let cfg = &self.config;
            let k = &self.keepalive;
            if let Some(interval) = cfg.ping_interval {
                let due = match k.ping_sent {
                    Some(sent) => sent + cfg.pong_timeout,
                    None => k.last_ping + interval,
                };
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
    /// [done](Self::is_done)). Returns [`Error::Timeout`] when the peer left our
    /// heartbeat ping unanswered for `pong_timeout`: the connection is done, ended
    /// as 1006 "pong timeout".
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        if self.close_deadline().is_some_and(|d| now >= d) {
            // Our close went unanswered, or the server never closed the transport.
            if let Some(a) = self.active.as_mut() {
                a.close_deadline = None;
            }
            self.state = State::Done;
            return Ok(());
        }
        if self.state != State::Open {
            return Ok(());
        }
        let cfg = self.config.clone();
        if let Some(interval) = cfg.ping_interval {
            let k = self.keepalive;
            if let Some(sent) = k.ping_sent
                && now >= sent + cfg.pong_timeout
            {
                // Nothing at all from the peer since our ping: it is gone.
                self.set_end(CloseCode::ABNORMAL, "pong timeout", true);
                self.state = State::Done;
                return Err(Error::Timeout);
            }
            if k.ping_sent.is_none() && now >= k.last_ping + interval {
                if self.ping(b"").is_ok() {
                    self.keepalive.ping_sent = Some(now);
                }
                self.keepalive.last_ping = now;
            }
        }
        if let Some(idle) = cfg.idle_timeout
            && now >= self.keepalive.last_rx + idle
        {
            self.close(now, CloseCode::GOING_AWAY, "idle timeout")?;
        }
        Ok(())
    }
}
