//! Framing probes (§5): frames that break a rule of the base framing protocol.

use super::judge::{bytes, fails, m};
use super::{E1002, Expect, MSB_CODES, Probe};
use crate::proto::raw::RawFrame;

pub(super) const PROBES: &[Probe] = &[
    fails_probe!(
        "frame-unmasked",
        "5.1",
        Must,
        "an unmasked client frame",
        E1002,
        &RawFrame::text("x").encode()
    ),
    fails_probe!(
        "frame-rsv1",
        "5.2",
        Must,
        "RSV1 with no extension negotiated",
        E1002,
        &m(RawFrame::text("x").rsv(0b100)).encode()
    ),
    fails_probe!(
        "frame-rsv2",
        "5.2",
        Must,
        "RSV2 set",
        E1002,
        &m(RawFrame::text("x").rsv(0b010)).encode()
    ),
    fails_probe!(
        "frame-rsv3-on-ping",
        "5.2",
        Must,
        "RSV3 set on a ping",
        E1002,
        &m(RawFrame::ping("x").rsv(0b001)).encode()
    ),
    fails_probe!(
        "frame-opcode-3",
        "5.2",
        Must,
        "reserved data opcode 0x3",
        E1002,
        &m(RawFrame::new(0x3, "x")).encode()
    ),
    fails_probe!(
        "frame-opcode-b",
        "5.2",
        Must,
        "reserved control opcode 0xB",
        E1002,
        &m(RawFrame::new(0xB, "x")).encode()
    ),
    fails_probe!(
        "frame-length-msb",
        "5.2",
        Must,
        "a 64-bit length with the top bit set",
        MSB_CODES,
        &m(RawFrame::binary(vec![0; 4]).declared_len(1 << 63)).encode()
    ),
    fails_probe!(
        "frame-ping-too-long",
        "5.5",
        Must,
        "a ping with 126 bytes",
        E1002,
        &m(RawFrame::ping(vec![b'p'; 126])).encode()
    ),
    fails_probe!(
        "frame-ping-fragmented",
        "5.5",
        Must,
        "a ping without FIN",
        E1002,
        &bytes(&[
            m(RawFrame::ping("a").fin(false)),
            m(RawFrame::continuation("b")),
        ])
    ),
    fails_probe!(
        "frame-close-fragmented",
        "5.5",
        Must,
        "a close without FIN",
        E1002,
        &m(RawFrame::close(1000, b"").fin(false)).encode()
    ),
    fails_probe!(
        "frame-stray-continuation",
        "5.4",
        Must,
        "a continuation with no message open",
        E1002,
        &m(RawFrame::continuation("x")).encode()
    ),
    probe!(
        "frame-data-inside-fragmented",
        "5.4",
        Must,
        "a new text frame inside a fragmented message",
        Expect::Fails(E1002),
        |t, o, ev| {
            let w = bytes(&[m(RawFrame::text("a").fin(false)), m(RawFrame::text("b"))]);
            fails(t, o, ev, &w, E1002)
        }
    ),
    fails_probe!(
        "frame-close-one-byte",
        "5.5.1",
        Must,
        "a close with a 1-byte body",
        E1002,
        &m(RawFrame::close_raw(vec![0x03])).encode()
    ),
    fails_probe!(
        "frame-close-code-0",
        "7.4",
        Must,
        "close code 0",
        E1002,
        &m(RawFrame::close(0, b"")).encode()
    ),
    fails_probe!(
        "frame-close-code-1005",
        "7.4.1",
        Must,
        "close code 1005 (must not be sent)",
        E1002,
        &m(RawFrame::close(1005, b"")).encode()
    ),
    fails_probe!(
        "frame-close-code-1006",
        "7.4.1",
        Must,
        "close code 1006 (must not be sent)",
        E1002,
        &m(RawFrame::close(1006, b"")).encode()
    ),
    fails_probe!(
        "frame-close-code-1016",
        "7.4.2",
        Must,
        "close code 1016 (reserved)",
        E1002,
        &m(RawFrame::close(1016, b"")).encode()
    ),
    // §7.4.2 assigns no code above 4999; Autobahn (7.9.x) and most receivers fail
    // the connection on one: SHOULD.
    fails_probe!(
        "frame-close-code-5000",
        "7.4.2",
        Should,
        "close code 5000 (out of range)",
        E1002,
        &m(RawFrame::close(5000, b"")).encode()
    ),
];
