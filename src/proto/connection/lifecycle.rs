//! Where a connection is in its life, and everything its ending holds: one place
//! that answers "may I send", "did the peer close", "is it over" and "how did it
//! end", and the transitions between them (RFC 6455 §7).
//!
//! ```text
//!            our close                 peer's close
//!   Open ─────────────► CloseSent ───────────────────► Closed ──┐
//!    │ │  peer's close (echo queued)                      ▲      │ EOF, or the
//!    │ └──────────────────────────────────────────────────┘      │ close wait
//!    │  peer broke the protocol (our close queued)               ▼ ran out
//!    ├────────────────────────────────────► Failed ──────────► Done
//!    │  a write failed (nothing more can be sent)                ▲
//!    └────────────────────────────────────► WriteFailed ─────────┘
//!                                  (peer's close ► Closed)
//! ```
//!
//! An open connection holds nothing here (one null pointer); the ending's data (the
//! stage, the end code and reason, the wait's deadline, the echo mark) lives in a
//! box allocated when the closing begins.

use crate::proto::time::Time;
use alloc::{borrow::ToOwned, boxed::Box, string::String};

use super::Connection;
use crate::proto::Role;
use crate::proto::close_code::CloseCode;

/// Where a connection is in its life ([`Connection::state`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// Messages flow both ways.
    Open,
    /// We sent a close frame and wait for the peer's (up to the close timeout).
    CloseSent,
    /// The peer's close frame was received (and answered, unless our writes had
    /// failed): no more messages either way; the transport closes next (a server
    /// closes it once its close is transmitted, a client waits for the server to).
    Closed,
    /// The peer broke the protocol: the connection failed, our close with the
    /// matching code is queued (RFC 6455 §7.1.7).
    Failed,
    /// A transmission failed part-way: nothing more can be sent. The peer's close
    /// (which says why it stopped reading) or its end of input is awaited, up to the
    /// close timeout.
    WriteFailed,
    /// Over: end of input, or a wait ran out. Close the transport.
    Done,
}

impl State {
    /// True while messages may be sent and received.
    pub fn is_open(self) -> bool {
        self == State::Open
    }

    /// True once the connection is over.
    pub fn is_done(self) -> bool {
        self == State::Done
    }

    /// True once a close frame of ours was queued: our close, the echo of the
    /// peer's, or the close of a failure. (Unknown once [`Done`](State::Done).)
    pub fn close_sent(self) -> bool {
        matches!(self, State::CloseSent | State::Closed | State::Failed)
    }
}

/// How a connection ended, or is ending ([`Connection::end`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct End<'a> {
    /// The peer's close code once received; otherwise the code we sent (closing or
    /// failing the connection); otherwise [`CloseCode::ABNORMAL`] (1006): it ended
    /// without a close frame.
    pub code: CloseCode,
    /// The reason that goes with the code.
    pub reason: &'a str,
    /// The peer's close frame was received.
    pub received: bool,
}

/// The stage of an ending (see [`State`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    CloseSent,
    Closed,
    Failed,
    WriteFailed,
    Done,
}

/// The ending of a connection: allocated when the closing begins.
#[derive(Debug)]
pub(super) struct Ending {
    pub(super) stage: Stage,
    /// The peer's close frame was received.
    pub(super) peer_closed: bool,
    /// The code and reason it ends with, as far as known.
    pub(super) end: Option<(CloseCode, String)>,
    /// When the current wait ends: the peer's close after ours, its close or end of
    /// input after a failed write, the server's close of the transport for a client.
    pub(super) deadline: Option<Time>,
    /// Where our echo of the peer's close starts in the transmit queue (a stream
    /// offset): a close of ours replaces it while it is untransmitted.
    pub(super) echo_at: Option<u64>,
}

/// Where a connection is in its life (see [`State`]): `None` while open.
#[derive(Debug, Default)]
pub(super) struct Lifecycle(Option<Box<Ending>>);

impl Lifecycle {
    pub(super) fn ending(&self) -> Option<&Ending> {
        self.0.as_deref()
    }

    pub(super) fn ending_mut(&mut self) -> Option<&mut Ending> {
        self.0.as_deref_mut()
    }

    /// Moves to `stage`, starting the ending if the connection was open.
    pub(super) fn enter(&mut self, stage: Stage) -> &mut Ending {
        let e = self.0.get_or_insert_with(|| {
            Box::new(Ending {
                stage,
                peer_closed: false,
                end: None,
                deadline: None,
                echo_at: None,
            })
        });
        e.stage = stage;
        e
    }

    pub(super) fn state(&self) -> State {
        match self.ending().map(|e| e.stage) {
            None => State::Open,
            Some(Stage::CloseSent) => State::CloseSent,
            Some(Stage::Closed) => State::Closed,
            Some(Stage::Failed) => State::Failed,
            Some(Stage::WriteFailed) => State::WriteFailed,
            Some(Stage::Done) => State::Done,
        }
    }

    pub(super) fn is_open(&self) -> bool {
        self.0.is_none()
    }

    pub(super) fn peer_closed(&self) -> bool {
        self.ending().is_some_and(|e| e.peer_closed)
    }

    pub(super) fn deadline(&self) -> Option<Time> {
        self.ending().and_then(|e| e.deadline)
    }

    /// Records how the connection ends; `overwrite` replaces what was recorded.
    pub(super) fn set_end(&mut self, code: CloseCode, reason: &str, overwrite: bool) {
        if let Some(e) = self.ending_mut()
            && (overwrite || e.end.is_none())
        {
            e.end = Some((code, reason.to_owned()));
        }
    }
}

impl Connection {
    /// Where the connection is in its life.
    pub fn state(&self) -> State {
        self.life.state()
    }

    /// How the connection ended, or is ending; `None` while it is open (and after a
    /// failed write, until the peer's close or the end of input says more).
    pub fn end(&self) -> Option<End<'_>> {
        let e = self.life.ending()?;
        let (code, reason) = e.end.as_ref()?;
        Some(End {
            code: *code,
            reason,
            received: e.peer_closed,
        })
    }

    /// Whether the transport should now be closed. A server closes it once its close
    /// frame is transmitted after the closing handshake or a failure (§7.1.1); a
    /// client waits for the server to close it, up to `close_timeout`.
    pub fn should_close_transport(&self) -> bool {
        match self.life.state() {
            State::Done => true,
            State::Closed | State::Failed => {
                self.role() == Role::Server && self.tx().is_none_or(|tx| tx.is_empty())
            }
            State::Open | State::CloseSent | State::WriteFailed => false,
        }
    }

    /// The peer closed the transport (end of input). After the closing handshake
    /// this is the expected end; before it, the connection ends abnormally (1006).
    pub fn handle_eof(&mut self) {
        let e = self.life.enter(Stage::Done);
        e.deadline = None;
        if !e.peer_closed && e.end.is_none() {
            e.end = Some((CloseCode::ABNORMAL, String::new()));
        }
        self.out = None;
        #[cfg(feature = "deflate")]
        if let Some(a) = self.active.as_mut() {
            a.inflating = None;
        }
    }

    /// The driver could not transmit bytes it had taken from
    /// [`transmit`](Self::transmit) (the transport failed): the stream is no
    /// longer whole, so nothing more can be sent ([`SendError::Broken`]) and what was
    /// queued is dropped.
    ///
    /// Reading goes on: a peer that refused what we sent (a message over its read
    /// limit) usually closed with a reason before it closed the transport, and its
    /// close frame is still to be read ([`end`](Self::end) then reports it). The
    /// connection waits for that close, or the end of input, up to `close_timeout`
    /// after `now`, then is done (1006).
    ///
    /// [`SendError::Broken`]: crate::proto::SendError::Broken
    pub fn handle_write_failure(&mut self, now: impl Into<Time>) {
        let now = now.into();
        self.out = None;
        if let Some(a) = self.active.as_mut() {
            let queued = a.tx.len();
            a.tx.advance(queued);
        }
        let deadline = now + self.config.close_timeout;
        match self.life.state() {
            State::Open | State::CloseSent => {
                let e = self.life.enter(Stage::WriteFailed);
                e.echo_at = None;
                e.deadline = Some(e.deadline.map_or(deadline, |d| d.min(deadline)));
            }
            // Nothing more was to be sent: a server closes the transport now (its
            // queue is empty), a client still waits for the server to.
            State::Closed | State::Failed => {
                if let Some(e) = self.life.ending_mut() {
                    e.echo_at = None;
                }
            }
            State::WriteFailed | State::Done => {}
        }
    }

    /// The peer's close frame: echo it (§5.5.1) unless we already sent ours (or
    /// cannot send), and start waiting for the transport to close.
    pub(super) fn peer_close(&mut self, code: CloseCode, reason: &str, now: Time) {
        if self.life.is_open() {
            let mark = self.tx().map_or(0, |tx| tx.end());
            let echo = (code != CloseCode::NO_STATUS).then_some((code, ""));
            let queued = self.queue_close(echo).is_ok();
            self.life.enter(Stage::Closed).echo_at = queued.then_some(mark);
        } else {
            // Our close (sent, or lost with a failed write) is answered.
            self.life.enter(Stage::Closed);
        }
        if let Some(e) = self.life.ending_mut() {
            e.peer_closed = true;
        }
        self.life.set_end(code, reason, true);
        self.await_transport_close(now);
    }

    /// Fails the connection (RFC 6455 §7.1.7): queue the close code that goes with
    /// the violation (if we may still send); a server then closes the transport, a
    /// client waits for it.
    pub(super) fn fail(&mut self, code: CloseCode, now: Time) {
        if code.is_allowed_on_wire() && self.life.is_open() {
            let _ = self.queue_close(Some((code, "")));
        }
        self.life.enter(Stage::Failed);
        self.life.set_end(code, "", true);
        self.await_transport_close(now);
    }

    /// No more messages either way: a client waits (bounded) for the server to close
    /// the transport, the server closes it once its close is out (§7.1.1).
    fn await_transport_close(&mut self, now: Time) {
        let deadline = match self.role() {
            Role::Client => Some(now + self.config.close_timeout),
            Role::Server => None,
        };
        self.out = None;
        if let Some(e) = self.life.ending_mut() {
            e.deadline = deadline;
        }
        #[cfg(feature = "deflate")]
        if let Some(a) = self.active.as_mut() {
            a.inflating = None;
        }
    }
}
