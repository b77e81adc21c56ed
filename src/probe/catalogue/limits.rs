//! Limits: what a server exposed to the network needs to survive (huge lengths,
//! floods, a decompression bomb, a peer that never reads).

use std::io::Write;
use std::sync::OnceLock;
use std::time::Instant;

use super::judge::{bytes, continues, fails, judge_fail, m, open, survives};
use super::{Expect, Probe, TOO_BIG};
use crate::probe::session::{Evidence, Target};
use crate::probe::{Options, Verdict};
use crate::proto::raw::RawFrame;

pub(super) const PROBES: &[Probe] = &[
    fails_probe!(
        "limit-huge-declared-length",
        "10.4",
        Robustness,
        "a frame announcing 2^62 bytes",
        TOO_BIG,
        &m(RawFrame::binary(vec![0; 1024]).declared_len(1 << 62)).encode()
    ),
    probe!(
        "limit-fragment-flood",
        "10.4",
        Robustness,
        "a message of 100,000 empty fragments",
        Expect::Survives,
        |t, o, ev| {
            let mut frames = vec![m(RawFrame::binary(Vec::new()).fin(false))];
            frames.extend((0..100_000).map(|_| m(RawFrame::continuation(Vec::new()).fin(false))));
            frames.push(m(RawFrame::continuation("end")));
            survives(t, o, ev, &bytes(&frames), TOO_BIG, Some((0x2, b"end")))
        }
    ),
    probe!(
        "limit-ping-flood",
        "5.5.3",
        Robustness,
        "20,000 pings before reading anything",
        Expect::Continues,
        |t, o, ev| {
            let w = bytes(
                &(0..20_000)
                    .map(|i: u32| m(RawFrame::ping(i.to_be_bytes().to_vec())))
                    .collect::<Vec<_>>(),
            );
            continues(t, o, ev, &w, None)
        }
    ),
    probe!(
        "limit-decompression-bomb",
        "RFC 7692 8",
        Robustness,
        "permessage-deflate: 1 MiB that inflates to 512 MiB",
        Expect::Survives,
        decompression_bomb
    ),
    Probe {
        slow: true,
        ..probe!(
            "limit-never-reads",
            "10.4",
            Robustness,
            "64 MiB of messages to echo, never reading the echoes",
            Expect::Survives,
            never_reads
        )
    },
];

/// A compressed message that inflates to 512 MiB of zeros (about 0.5 MiB on the
/// wire), built once.
fn bomb() -> &'static [u8] {
    static BOMB: OnceLock<Vec<u8>> = OnceLock::new();
    BOMB.get_or_init(|| {
        let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..512 {
            let _ = z.write_all(&zeros);
        }
        let _ = z.flush();
        let mut out = z.finish().unwrap_or_default();
        // RFC 7692 7.2.1: the sender removes the trailing 00 00 FF FF of a sync
        // flush; a final block (finish) is fine as it is.
        if out.ends_with(&[0, 0, 0xFF, 0xFF]) {
            out.truncate(out.len() - 4);
        }
        out
    })
}

fn decompression_bomb(t: &Target, o: &Options, ev: &mut Evidence) -> Verdict {
    let (mut s, answer) = match open(t, o, "Sec-WebSocket-Extensions: permessage-deflate\r\n") {
        Ok(s) => s,
        Err(v) => return v,
    };
    let negotiated = answer
        .header("sec-websocket-extensions")
        .is_some_and(|e| e.contains("permessage-deflate"));
    if !negotiated {
        *ev = s.evidence.clone();
        return Verdict::Held;
    }
    let wire = m(RawFrame::binary(bomb().to_vec()).rsv(0b100)).encode();
    let v = judge_fail(&mut s, o, &wire, TOO_BIG, true);
    *ev = s.evidence.clone();
    match v {
        // An echo of 512 MiB would not come back within the deadline; staying up
        // within the RSS bound (checked by the runner) is what counts.
        Verdict::NoAnswer(_) | Verdict::Reset => Verdict::Held,
        v => v,
    }
}

fn never_reads(t: &Target, o: &Options, ev: &mut Evidence) -> Verdict {
    let (mut s, _) = match open(t, o, "") {
        Ok(s) => s,
        Err(v) => return v,
    };
    // 1 MiB messages until 64 MiB are out or the server stops reading for a
    // deadline (it applies back-pressure: fine).
    let msg = m(RawFrame::binary(vec![0x5A; 1 << 20])).encode();
    let stop = Instant::now() + o.deadline * 4;
    let mut sent = 0;
    while sent < 64 && Instant::now() < stop {
        if s.send_with_timeout(&msg, o.deadline).is_err() {
            break;
        }
        sent += 1;
    }
    *ev = s.evidence.clone();
    s.reset();
    Verdict::Held
}
