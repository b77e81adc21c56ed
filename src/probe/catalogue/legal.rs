//! Legal corner cases: unusual but valid input after which the connection must go
//! on.

use std::time::Duration;

use super::judge::{bytes, continues, judge_continues, m, open};
use super::{Expect, Probe};
use crate::probe::Verdict;
use crate::proto::raw::{Chunking, LenForm, RawFrame, fragments};

pub(super) const PROBES: &[Probe] = &[
    probe!(
        "legal-ping-125",
        "5.5.2",
        Must,
        "a ping with 125 bytes",
        Expect::Continues,
        |t, o, ev| {
            // The pong check is the generic one; this ping is answered too.
            continues(t, o, ev, &m(RawFrame::ping(vec![b'p'; 125])).encode(), None)
        }
    ),
    probe!(
        "legal-unsolicited-pong",
        "5.5.3",
        Must,
        "an unsolicited pong",
        Expect::Continues,
        |t, o, ev| { continues(t, o, ev, &m(RawFrame::pong("heartbeat")).encode(), None) }
    ),
    probe!(
        "legal-ping-inside-fragmented",
        "5.4",
        Must,
        "a ping between two fragments of a text message",
        Expect::Continues,
        |t, o, ev| {
            let w = bytes(&[
                m(RawFrame::text("frag").fin(false)),
                m(RawFrame::ping("in")),
                m(RawFrame::continuation("mented")),
            ]);
            continues(t, o, ev, &w, Some((0x1, b"fragmented")))
        }
    ),
    probe!(
        "legal-utf8-split-code-point",
        "5.6",
        Must,
        "a text message with a code point split across fragments",
        Expect::Continues,
        |t, o, ev| {
            let text = "κόσμε".as_bytes();
            let frames: Vec<RawFrame> = fragments(0x1, text, &[1, 2, 5])
                .into_iter()
                .map(m)
                .collect();
            continues(t, o, ev, &bytes(&frames), Some((0x1, text)))
        }
    ),
    probe!(
        "legal-empty-fragments",
        "5.4",
        Must,
        "a binary message of empty fragments around one byte",
        Expect::Continues,
        |t, o, ev| {
            let frames: Vec<RawFrame> = fragments(0x2, b"x", &[0, 0, 1, 1])
                .into_iter()
                .map(m)
                .collect();
            continues(t, o, ev, &bytes(&frames), Some((0x2, b"x")))
        }
    ),
    probe!(
        "legal-non-minimal-length",
        "5.2",
        Should,
        "a length in the 64-bit form (the MUST is on the sender)",
        Expect::Continues,
        |t, o, ev| {
            continues(
                t,
                o,
                ev,
                &m(RawFrame::text("short").len_form(LenForm::Len64)).encode(),
                Some((0x1, b"short")),
            )
        }
    ),
    probe!(
        "legal-byte-by-byte",
        "5.2",
        Must,
        "a text frame written one byte at a time",
        Expect::Continues,
        |t, o, ev| {
            let (mut s, _) = match open(t, o, "") {
                Ok(s) => s,
                Err(v) => return v,
            };
            let w = m(RawFrame::text("one byte at a time")).encode();
            if let Err(e) = s.send(&w, &Chunking::Every(1), Duration::from_millis(2)) {
                *ev = s.evidence.clone();
                return Verdict::Violated(format!("the server stopped reading: {e}"));
            }
            let v = judge_continues(&mut s, o, &[], Some((0x1, b"one byte at a time")));
            *ev = s.evidence.clone();
            v
        }
    ),
];
