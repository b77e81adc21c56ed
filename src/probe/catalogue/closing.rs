//! Closing-handshake probes (§5.5.1, §7): our close must be answered, then TCP
//! closed.

use super::judge::{bytes, closes, m};
use super::{Expect, Probe};
use crate::proto::raw::RawFrame;

pub(super) const PROBES: &[Probe] = &[
    probe!(
        "close-echo",
        "5.5.1",
        Must,
        "close 1000 with a reason",
        Expect::Closes,
        |t, o, ev| { closes(t, o, ev, &m(RawFrame::close(1000, b"bye")).encode()) }
    ),
    probe!(
        "close-empty",
        "5.5.1",
        Must,
        "an empty close",
        Expect::Closes,
        |t, o, ev| { closes(t, o, ev, &m(RawFrame::close_raw(Vec::new())).encode()) }
    ),
    probe!(
        "close-then-data",
        "5.5.1",
        Must,
        "close 1000 followed by a text frame",
        Expect::Closes,
        |t, o, ev| {
            let w = bytes(&[
                m(RawFrame::close(1000, b"")),
                m(RawFrame::text("after close")),
            ]);
            closes(t, o, ev, &w)
        }
    ),
];
