//! UTF-8 probes (§8.1): text that is not UTF-8, in one frame, across fragments,
//! at the end, in a close reason.

use super::judge::{bytes, fails, m};
use super::{E1002_1007, E1007, Expect, Probe};
use crate::proto::raw::{RawFrame, fragments};

pub(super) const PROBES: &[Probe] = &[
    fails_probe!(
        "utf8-invalid-text",
        "8.1",
        Must,
        "a text frame that is not UTF-8",
        E1007,
        &m(RawFrame::text(&b"ok \xC0\xAF"[..])).encode()
    ),
    probe!(
        "utf8-invalid-across-fragments",
        "8.1",
        Must,
        "invalid UTF-8 split across three fragments",
        Expect::Fails(E1007),
        |t, o, ev| {
            let frames: Vec<RawFrame> = fragments(0x1, b"ab\xED\xA0\x80cd", &[3, 4])
                .into_iter()
                .map(m)
                .collect();
            fails(t, o, ev, &bytes(&frames), E1007)
        }
    ),
    fails_probe!(
        "utf8-truncated-at-end",
        "8.1",
        Must,
        "a text message ending inside a code point",
        E1007,
        &m(RawFrame::text(&b"end \xE2\x82"[..])).encode()
    ),
    fails_probe!(
        "utf8-invalid-close-reason",
        "7.1.6",
        Must,
        "a close reason that is not UTF-8",
        E1002_1007,
        &m(RawFrame::close(1000, b"\xFF\xFE")).encode()
    ),
];
