//! `wsprobe serve`: the catalogue from the server side, for testing WebSocket
//! clients. The client under test connects to `ws://ADDR/NAME` for the probe
//! `NAME` (or to `/` for the next one in catalogue order); the prober answers its
//! upgrade — wrongly, for the handshake probes — sends what the probe sends, and
//! judges what the client does:
//!
//! * a defective handshake answer (wrong accept key, missing headers, a status that
//!   is not 101, an extension or subprotocol the client never offered): the client
//!   must fail the connection (§4.1): close TCP without sending a frame;
//! * an illegal frame from the server (masked, RSV bits, reserved opcode, oversized
//!   or fragmented control, a stray continuation, a 2^63 length, a forbidden close
//!   code, invalid UTF-8): the client must fail the connection with the code the
//!   rule calls for (or no close frame) and close TCP, or wait for us to close it
//!   after its close;
//! * legal frames (a ping, a ping inside a fragmented message, our close): the
//!   client answers the ping with a pong, our close with a close.
//!
//! Every frame the client sends must be masked (§5.3).

use std::net::TcpListener;
use std::time::{Duration, Instant};

use super::catalogue::{E1002, E1007, Expect, MSB_CODES, Probe, Run};
use super::session::{End, Session};
use super::{Options, ProbeResult, Verdict};
use crate::proto::handshake::accept_key;
use crate::proto::raw::{Chunking, RawFrame, fragments};

fn answer(s: &mut Session, status: &str, headers: &[(&str, String)]) -> Result<(), Verdict> {
    let mut head = format!("HTTP/1.1 {status}\r\n");
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.send(head.as_bytes(), &Chunking::Whole, Duration::ZERO)
        .map_err(|e| Verdict::NoAnswer(format!("the client went away: {e}")))
}

fn good_headers(key: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Upgrade", "websocket".into()),
        ("Connection", "Upgrade".into()),
        ("Sec-WebSocket-Accept", accept_key(key.as_bytes())),
    ]
}

/// Answers the upgrade properly.
fn accept(s: &mut Session, key: &str) -> Result<(), Verdict> {
    answer(s, "101 Switching Protocols", &good_headers(key))
}

fn client_frame_problem(f: &RawFrame) -> Option<String> {
    if f.mask.is_none() {
        return Some("the client sent an unmasked frame (§5.3: a client MUST mask)".into());
    }
    if f.rsv != 0 {
        return Some(format!("the client set RSV bits {:03b} (§5.2)", f.rsv));
    }
    None
}

/// After a defective answer: the client must close TCP without sending a frame.
fn judge_refused_answer(s: &mut Session, o: &Options) -> Verdict {
    let deadline = Instant::now() + o.deadline;
    if let Some(f) = s.next_frame(deadline) {
        return Verdict::Violated(format!(
            "the client took the answer and sent a frame (opcode {:#x}); §4.1: it MUST fail the connection",
            f.opcode
        ));
    }
    match s.end {
        End::Eof | End::Reset => Verdict::Held,
        End::Open => Verdict::NoAnswer(format!(
            "the client kept the connection open {:?} after an invalid answer",
            o.deadline
        )),
    }
}

/// After an illegal frame: the client fails the connection with one of `codes`.
fn judge_client_fails(s: &mut Session, o: &Options, codes: &[u16]) -> Verdict {
    let deadline = Instant::now() + o.deadline;
    loop {
        let Some(f) = s.next_frame(deadline) else {
            return match s.end {
                End::Eof | End::Reset => Verdict::Held,
                End::Open => Verdict::NoAnswer(format!(
                    "the client neither closed nor failed within {:?}",
                    o.deadline
                )),
            };
        };
        if let Some(p) = client_frame_problem(&f) {
            return Verdict::Violated(p);
        }
        if f.opcode == 0x8 {
            let code = f.payload.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]));
            return match code {
                Some(c) if !codes.contains(&c) => Verdict::Violated(format!(
                    "the client closed with {c}, the rule calls for {}",
                    codes
                        .iter()
                        .map(u16::to_string)
                        .collect::<Vec<_>>()
                        .join(" or ")
                )),
                // §7.1.1: the server closes TCP first; we do.
                _ => Verdict::Held,
            };
        }
    }
}

/// The client must answer our ping (payload `token`) with a pong, and stay open.
fn judge_client_pongs(s: &mut Session, o: &Options, token: &[u8]) -> Verdict {
    let deadline = Instant::now() + o.deadline;
    loop {
        let Some(f) = s.next_frame(deadline) else {
            return match s.end {
                End::Eof | End::Reset => {
                    Verdict::Violated("the client closed the connection".into())
                }
                End::Open => Verdict::NoAnswer(format!("no pong within {:?}", o.deadline)),
            };
        };
        if let Some(p) = client_frame_problem(&f) {
            return Verdict::Violated(p);
        }
        match f.opcode {
            0xA if f.payload == token => return Verdict::Held,
            0x8 => return Verdict::Violated("the client closed the connection".into()),
            _ => {}
        }
    }
}

fn frames(fs: &[RawFrame]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in fs {
        f.encode_into(&mut out);
    }
    out
}

/// Accepts, sends `wire`, expects the client to fail with `codes`.
fn client_fails(s: &mut Session, o: &Options, key: &str, wire: &[u8], codes: &[u16]) -> Verdict {
    if let Err(v) = accept(s, key) {
        return v;
    }
    if s.send(wire, &Chunking::Whole, Duration::ZERO).is_err() {
        return Verdict::Held;
    }
    judge_client_fails(s, o, codes)
}

fn defective_answer(
    s: &mut Session,
    o: &Options,
    status: &str,
    headers: Vec<(&str, String)>,
) -> Verdict {
    if let Err(v) = answer(s, status, &headers) {
        return v;
    }
    judge_refused_answer(s, o)
}

macro_rules! client_probe {
    ($($arg:tt)*) => { probe_entry!(Client, $($arg)*) };
}

/// A client probe that sends `$wire` after a good 101 and expects the client to
/// fail the connection with one of `$codes`.
macro_rules! client_fails_probe {
    ($name:expr, $section:expr, $req:ident, $summary:expr, $codes:expr, $wire:expr) => {
        client_probe!(
            $name,
            $section,
            $req,
            $summary,
            Expect::Fails($codes),
            |s, o, key| { client_fails(s, o, key, $wire, $codes) }
        )
    };
}

fn without(key: &str, name: &str) -> Vec<(&'static str, String)> {
    good_headers(key)
        .into_iter()
        .filter(|(n, _)| *n != name)
        .collect()
}

/// The probes `wsprobe serve` runs against clients, in order.
pub static CLIENT_PROBES: &[Probe] = &[
    client_probe!(
        "client-answer-wrong-accept",
        "4.1",
        Must,
        "a 101 with a wrong Sec-WebSocket-Accept",
        Expect::Refused,
        |s, o, key| {
            let mut h = without(key, "Sec-WebSocket-Accept");
            h.push(("Sec-WebSocket-Accept", accept_key(b"not the client's key")));
            defective_answer(s, o, "101 Switching Protocols", h)
        }
    ),
    client_probe!(
        "client-answer-no-accept",
        "4.1",
        Must,
        "a 101 without Sec-WebSocket-Accept",
        Expect::Refused,
        |s, o, key| {
            defective_answer(
                s,
                o,
                "101 Switching Protocols",
                without(key, "Sec-WebSocket-Accept"),
            )
        }
    ),
    client_probe!(
        "client-answer-no-upgrade",
        "4.1",
        Must,
        "a 101 without Upgrade: websocket",
        Expect::Refused,
        |s, o, key| { defective_answer(s, o, "101 Switching Protocols", without(key, "Upgrade")) }
    ),
    client_probe!(
        "client-answer-no-connection",
        "4.1",
        Must,
        "a 101 without Connection: Upgrade",
        Expect::Refused,
        |s, o, key| {
            defective_answer(s, o, "101 Switching Protocols", without(key, "Connection"))
        }
    ),
    client_probe!(
        "client-answer-200",
        "4.1",
        Must,
        "200 OK instead of 101",
        Expect::Refused,
        |s, o, key| { defective_answer(s, o, "200 OK", good_headers(key)) }
    ),
    client_probe!(
        "client-answer-unoffered-extension",
        "4.1",
        Must,
        "an extension the client did not offer",
        Expect::Refused,
        |s, o, key| {
            let mut h = good_headers(key);
            h.push(("Sec-WebSocket-Extensions", "x-wsprobe-unknown".into()));
            defective_answer(s, o, "101 Switching Protocols", h)
        }
    ),
    client_probe!(
        "client-answer-unoffered-protocol",
        "4.1",
        Must,
        "a subprotocol the client did not offer",
        Expect::Refused,
        |s, o, key| {
            let mut h = good_headers(key);
            h.push(("Sec-WebSocket-Protocol", "x-wsprobe-unknown".into()));
            defective_answer(s, o, "101 Switching Protocols", h)
        }
    ),
    client_fails_probe!(
        "client-frame-masked",
        "5.1",
        Must,
        "a masked server frame",
        E1002,
        &RawFrame::text("masked").masked([1, 2, 3, 4]).encode()
    ),
    client_fails_probe!(
        "client-frame-rsv1",
        "5.2",
        Must,
        "RSV1 with no extension negotiated",
        E1002,
        &RawFrame::text("x").rsv(0b100).encode()
    ),
    client_fails_probe!(
        "client-frame-opcode-3",
        "5.2",
        Must,
        "reserved opcode 0x3",
        E1002,
        &RawFrame::new(0x3, "x").encode()
    ),
    client_fails_probe!(
        "client-frame-ping-too-long",
        "5.5",
        Must,
        "a ping with 126 bytes",
        E1002,
        &RawFrame::ping(vec![b'p'; 126]).encode()
    ),
    client_fails_probe!(
        "client-frame-ping-fragmented",
        "5.5",
        Must,
        "a ping without FIN",
        E1002,
        &frames(&[RawFrame::ping("a").fin(false), RawFrame::continuation("b")])
    ),
    client_fails_probe!(
        "client-frame-stray-continuation",
        "5.4",
        Must,
        "a continuation with no message open",
        E1002,
        &RawFrame::continuation("x").encode()
    ),
    client_fails_probe!(
        "client-frame-length-msb",
        "5.2",
        Must,
        "a 64-bit length with the top bit set",
        MSB_CODES,
        &RawFrame::binary(vec![0; 4]).declared_len(1 << 63).encode()
    ),
    client_fails_probe!(
        "client-frame-close-code-1005",
        "7.4.1",
        Must,
        "close code 1005",
        E1002,
        &RawFrame::close(1005, b"").encode()
    ),
    client_fails_probe!(
        "client-utf8-invalid-text",
        "8.1",
        Must,
        "a text frame that is not UTF-8",
        E1007,
        &RawFrame::text(&b"ok \xC0\xAF"[..]).encode()
    ),
    client_fails_probe!(
        "client-utf8-invalid-across-fragments",
        "8.1",
        Must,
        "invalid UTF-8 split across fragments",
        E1007,
        &frames(&fragments(0x1, b"ab\xED\xA0\x80cd", &[3, 4]))
    ),
    client_probe!(
        "client-legal-ping",
        "5.5.2",
        Must,
        "a ping",
        Expect::Continues,
        |s, o, key| {
            if let Err(v) = accept(s, key) {
                return v;
            }
            let _ = s.send_frames(&[RawFrame::ping("wsprobe-ping")]);
            judge_client_pongs(s, o, b"wsprobe-ping")
        }
    ),
    client_probe!(
        "client-legal-ping-inside-fragmented",
        "5.4",
        Must,
        "a ping between two fragments of a text message",
        Expect::Continues,
        |s, o, key| {
            if let Err(v) = accept(s, key) {
                return v;
            }
            let _ = s.send_frames(&[
                RawFrame::text("frag").fin(false),
                RawFrame::ping("in-between"),
            ]);
            let v = judge_client_pongs(s, o, b"in-between");
            let _ = s.send_frames(&[RawFrame::continuation("mented")]);
            v
        }
    ),
    client_probe!(
        "client-close-echo",
        "5.5.1",
        Must,
        "close 1000 from the server",
        Expect::Closes,
        |s, o, key| {
            if let Err(v) = accept(s, key) {
                return v;
            }
            let _ = s.send_frames(&[RawFrame::close(1000, b"bye")]);
            let deadline = Instant::now() + o.deadline;
            loop {
                let Some(f) = s.next_frame(deadline) else {
                    return match s.end {
                        End::Open => {
                            Verdict::NoAnswer(format!("no close in answer within {:?}", o.deadline))
                        }
                        _ => Verdict::Violated(
                            "the client closed TCP without answering our close (§5.5.1)".into(),
                        ),
                    };
                };
                if let Some(p) = client_frame_problem(&f) {
                    return Verdict::Violated(p);
                }
                if f.opcode == 0x8 {
                    return Verdict::Held;
                }
            }
        }
    ),
];

/// The probe a request for `path` asks for: `/NAME`, or the next one for `/`.
fn pick(path: &str, next: &mut usize) -> Option<&'static Probe> {
    let name = path.trim_start_matches('/').split('?').next().unwrap_or("");
    if name.is_empty() || name == "next" {
        let p = CLIENT_PROBES.get(*next % CLIENT_PROBES.len());
        *next += 1;
        return p;
    }
    CLIENT_PROBES.iter().find(|p| p.name == name)
}

/// Serves `count` client connections on `listener`, one at a time, each judged by
/// the probe its path names; `each` sees every result.
pub fn serve(
    listener: &TcpListener,
    opts: &Options,
    count: usize,
    mut each: impl FnMut(&ProbeResult),
) -> Vec<ProbeResult> {
    let mut next = 0;
    let mut out = Vec::new();
    while out.len() < count {
        let Ok((sock, _)) = listener.accept() else {
            continue;
        };
        let Ok(mut s) = Session::accepted(sock) else {
            continue;
        };
        let started = Instant::now();
        let Ok(Some(req)) = s.read_request(Instant::now() + opts.deadline) else {
            continue;
        };
        let key = req.key().map(|k| k.trim().to_owned());
        let (Some(p), Some(key)) = (pick(req.path(), &mut next), key) else {
            let _ = s.send(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                &Chunking::Whole,
                Duration::ZERO,
            );
            continue;
        };
        let Run::Client(run) = p.run else {
            continue;
        };
        let verdict = run(&mut s, opts, &key);
        let r = ProbeResult {
            probe: p,
            verdict,
            evidence: s.evidence.clone(),
            elapsed: started.elapsed(),
            rss_kib: None,
        };
        // We close TCP (§7.1.1: the server does, after the closing handshake).
        drop(s);
        each(&r);
        out.push(r);
    }
    out
}
