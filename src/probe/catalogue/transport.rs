//! Transport probes: the TCP connection reset or half-closed mid-conversation.

use std::time::{Duration, Instant};

use super::judge::{m, open};
use super::{Expect, Probe};
use crate::probe::Verdict;
use crate::probe::session::End;
use crate::proto::raw::{Chunking, RawFrame};

pub(super) const PROBES: &[Probe] = &[
    probe!(
        "tcp-reset-mid-frame",
        "7.1.5",
        Robustness,
        "half of a 64 KiB frame, then RST",
        Expect::Survives,
        |t, o, ev| {
            let (mut s, _) = match open(t, o, "") {
                Ok(s) => s,
                Err(v) => return v,
            };
            let w = m(RawFrame::binary(vec![7; 64 * 1024])).encode();
            let _ = s.send(&w[..w.len() / 2], &Chunking::Whole, Duration::ZERO);
            *ev = s.evidence.clone();
            s.reset();
            std::thread::sleep(Duration::from_millis(100));
            Verdict::Held
        }
    ),
    probe!(
        "tcp-half-close",
        "7.1.5",
        Robustness,
        "a text message, then FIN (no close frame)",
        Expect::Fails(&[1000, 1001, 1002, 1006]),
        |t, o, ev| {
            let (mut s, _) = match open(t, o, "") {
                Ok(s) => s,
                Err(v) => return v,
            };
            let _ = s.send_frames(&[m(RawFrame::text("bye"))]);
            s.shutdown_write();
            s.drain_until_end(Instant::now() + o.deadline);
            *ev = s.evidence.clone();
            match s.end {
                End::Open => Verdict::NoAnswer(format!(
                    "kept the connection open {:?} after the peer's FIN",
                    o.deadline
                )),
                End::Eof | End::Reset => Verdict::Held,
            }
        }
    ),
];
