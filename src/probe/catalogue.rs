//! The probes: each names the RFC rule it tests, what the server must do, and runs
//! itself on a fresh connection.

use std::io::Write;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::session::{End, Evidence, HttpAnswer, Session, Target};
use super::{Options, Verdict};
use crate::proto::handshake::generate_key;
use crate::proto::raw::{Chunking, LenForm, RawFrame, fragments};

/// How binding the rule is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// A MUST of RFC 6455.
    Must,
    /// A SHOULD of RFC 6455.
    Should,
    /// No RFC rule: what a server exposed to the network needs to survive (limits,
    /// slow or abusive peers).
    Robustness,
}

impl Requirement {
    /// MUST, SHOULD or robustness.
    pub fn name(self) -> &'static str {
        match self {
            Requirement::Must => "MUST",
            Requirement::Should => "SHOULD",
            Requirement::Robustness => "robustness",
        }
    }
}

/// What the server is expected to do, as the report states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Refuse the upgrade with an HTTP error status.
    Refused,
    /// Fail the connection: close with one of these codes (or without a close
    /// frame), then close TCP.
    Fails(&'static [u16]),
    /// Go on: answer a later ping, echo what it echoes.
    Continues,
    /// Answer our close with a close and close TCP.
    Closes,
    /// Stay up (and, with `--pid`, within the RSS bound).
    Survives,
}

impl Expect {
    /// The expectation in words.
    pub fn describe(self) -> String {
        match self {
            Expect::Refused => "HTTP error status, no 101".into(),
            Expect::Fails(codes) => {
                let c: Vec<String> = codes.iter().map(u16::to_string).collect();
                format!("close {} (or none), then TCP close", c.join("/"))
            }
            Expect::Continues => "connection goes on (pong, echo)".into(),
            Expect::Closes => "close echoed, then TCP close".into(),
            Expect::Survives => "server stays up, RSS bounded".into(),
        }
    }
}

/// A named probe.
pub struct Probe {
    /// Unique name (`--only` matches substrings of it).
    pub name: &'static str,
    /// The RFC section the rule is in.
    pub section: &'static str,
    /// How binding the rule is.
    pub requirement: Requirement,
    /// What the probe sends.
    pub summary: &'static str,
    /// What the server must do.
    pub expect: Expect,
    /// Takes longer than the deadline (run unless `--fast`).
    pub slow: bool,
    /// Runs the probe.
    pub run: Run,
}

/// How a probe runs: against a server (`check`), or as the server a client under
/// test connected to (`serve`).
#[derive(Clone, Copy)]
pub enum Run {
    /// Opens its own connection to the target.
    Server(fn(&Target, &Options, &mut Evidence) -> Verdict),
    /// Answers the client's upgrade request (`key` is its `Sec-WebSocket-Key`) on
    /// the accepted connection and judges what the client does.
    Client(fn(&mut Session, &Options, &str) -> Verdict),
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probe").field("name", &self.name).finish()
    }
}

const MASK: [u8; 4] = [0x37, 0xFA, 0x21, 0x3D];

fn m(f: RawFrame) -> RawFrame {
    f.masked(MASK)
}

fn bytes(frames: &[RawFrame]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        f.encode_into(&mut out);
    }
    out
}

/// A problem with a frame the server sent, whatever the probe (§5.1, §5.2).
fn bad_server_frame(f: &RawFrame, deflate: bool) -> Option<String> {
    if f.mask.is_some() {
        return Some("the server sent a masked frame (§5.1: a server MUST NOT mask)".into());
    }
    let allowed_rsv = if deflate { 0b100 } else { 0 };
    if f.rsv & !allowed_rsv != 0 {
        return Some(format!(
            "the server set RSV bits {:03b} it did not negotiate (§5.2)",
            f.rsv
        ));
    }
    if matches!(f.opcode, 0x3..=0x7 | 0xB..=0xF) {
        return Some(format!(
            "the server sent reserved opcode {:#x} (§5.2)",
            f.opcode
        ));
    }
    None
}

fn close_code(f: &RawFrame) -> Option<u16> {
    f.payload.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]))
}

fn open(t: &Target, o: &Options, extra: &str) -> Result<(Session, HttpAnswer), Verdict> {
    Session::open(t, o.deadline, extra)
        .map_err(|e| Verdict::Violated(format!("a valid upgrade failed: {e}")))
}

/// Opens, sends `wire`, and expects the connection failed with one of `codes`.
fn fails(t: &Target, o: &Options, ev: &mut Evidence, wire: &[u8], codes: &[u16]) -> Verdict {
    fails_with(t, o, ev, "", wire, codes, false)
}

fn fails_with(
    t: &Target,
    o: &Options,
    ev: &mut Evidence,
    extra: &str,
    wire: &[u8],
    codes: &[u16],
    deflate: bool,
) -> Verdict {
    let (mut s, _) = match open(t, o, extra) {
        Ok(s) => s,
        Err(v) => return v,
    };
    let v = judge_fail(&mut s, o, wire, codes, deflate);
    *ev = s.evidence.clone();
    v
}

fn judge_fail(s: &mut Session, o: &Options, wire: &[u8], codes: &[u16], deflate: bool) -> Verdict {
    if let Err(e) = s.send(wire, &Chunking::Whole, Duration::ZERO) {
        // The server may close while we still send (it failed the connection
        // early): judge by what it sent.
        let _ = e;
    }
    let deadline = Instant::now() + o.deadline;
    let mut data_frames = 0;
    loop {
        let Some(f) = s.next_frame(deadline) else {
            return match s.end {
                End::Eof => Verdict::Held,
                End::Reset => Verdict::Reset,
                End::Open => Verdict::NoAnswer(format!(
                    "no close and the connection stayed open for {:?}{}",
                    o.deadline,
                    if data_frames > 0 {
                        format!(" ({data_frames} data frames answered)")
                    } else {
                        String::new()
                    }
                )),
            };
        };
        if let Some(bad) = bad_server_frame(&f, deflate) {
            return Verdict::Violated(bad);
        }
        match f.opcode {
            0x8 => {
                let code = close_code(&f);
                if let Some(c) = code
                    && !codes.contains(&c)
                {
                    return Verdict::Violated(format!(
                        "closed with {c}, the rule calls for {}",
                        codes
                            .iter()
                            .map(u16::to_string)
                            .collect::<Vec<_>>()
                            .join(" or ")
                    ));
                }
                // Answer as a client does, then the server must close TCP.
                let reply = m(match code {
                    Some(c) => RawFrame::close(c, b""),
                    None => RawFrame::close_raw(Vec::new()),
                });
                let _ = s.send_frames(&[reply]);
                s.drain_until_end(Instant::now() + o.deadline);
                return match s.end {
                    End::Open => Verdict::NoAnswer(format!(
                        "sent close {} but kept the TCP connection open for {:?}",
                        code.map_or("(empty)".into(), |c| c.to_string()),
                        o.deadline
                    )),
                    End::Eof | End::Reset => Verdict::Held,
                };
            }
            0x0..=0x2 => data_frames += 1,
            _ => {}
        }
    }
}

/// A data message from the server, reassembled.
struct Message {
    opcode: u8,
    payload: Vec<u8>,
}

/// Opens, sends `wire`, then a ping; the server must answer it (and, with
/// `echo`, echo that message first). With `flood_pings` the ping answer may be
/// any pong (the RFC lets a server answer only the most recent ping).
fn continues(
    t: &Target,
    o: &Options,
    ev: &mut Evidence,
    wire: &[u8],
    echo: Option<(u8, &[u8])>,
) -> Verdict {
    let (mut s, _) = match open(t, o, "") {
        Ok(s) => s,
        Err(v) => return v,
    };
    let v = judge_continues(&mut s, o, wire, echo);
    *ev = s.evidence.clone();
    let _ = s.send_frames(&[m(RawFrame::close(1000, b""))]);
    v
}

fn judge_continues(
    s: &mut Session,
    o: &Options,
    wire: &[u8],
    echo: Option<(u8, &[u8])>,
) -> Verdict {
    const TOKEN: &[u8] = b"wsprobe-still-there";
    if let Err(e) = s.send(wire, &Chunking::Whole, Duration::ZERO) {
        return Verdict::Violated(format!("the server stopped reading: {e}"));
    }
    if let Err(e) = s.send_frames(&[m(RawFrame::ping(TOKEN))]) {
        return Verdict::Violated(format!("the server stopped reading: {e}"));
    }
    let deadline = Instant::now() + o.deadline;
    let mut got_echo = echo.is_none();
    let mut got_pong = false;
    let mut msg: Option<Message> = None;
    while !(got_echo && got_pong) {
        let Some(f) = s.next_frame(deadline) else {
            return match s.end {
                End::Eof => Verdict::Violated("closed the connection".into()),
                End::Reset => Verdict::Violated("reset the connection".into()),
                End::Open if !got_pong => {
                    Verdict::NoAnswer(format!("no pong to a ping within {:?}", o.deadline))
                }
                End::Open => Verdict::Violated(format!(
                    "the message was not echoed within {:?}",
                    o.deadline
                )),
            };
        };
        if let Some(bad) = bad_server_frame(&f, false) {
            return Verdict::Violated(bad);
        }
        match f.opcode {
            0x8 => {
                return Verdict::Violated(format!(
                    "closed the connection ({})",
                    close_code(&f).map_or("empty close".into(), |c| format!("code {c}"))
                ));
            }
            0xA if f.payload == TOKEN => got_pong = true,
            0x1 | 0x2 => {
                if msg.is_some() {
                    return Verdict::Violated(
                        "a new data message inside an unfinished one (§5.4)".into(),
                    );
                }
                msg = Some(Message {
                    opcode: f.opcode,
                    payload: f.payload,
                });
                if f.fin {
                    got_echo |= echo_matches(msg.take(), echo);
                }
            }
            0x0 => {
                let Some(mm) = msg.as_mut() else {
                    return Verdict::Violated(
                        "a continuation frame with no message open (§5.4)".into(),
                    );
                };
                mm.payload.extend_from_slice(&f.payload);
                if f.fin {
                    got_echo |= echo_matches(msg.take(), echo);
                }
            }
            _ => {}
        }
    }
    Verdict::Held
}

fn echo_matches(msg: Option<Message>, want: Option<(u8, &[u8])>) -> bool {
    match (msg, want) {
        (Some(m), Some((op, p))) => m.opcode == op && m.payload == p,
        _ => false,
    }
}

/// How a refusal is judged.
#[derive(Clone, Copy)]
struct Refusal {
    /// Closing without an HTTP answer is acceptable too (a head too large to read).
    eof_ok: bool,
    /// Any answer but 101 is fine: the request is no upgrade at all (no
    /// `Upgrade: websocket`), so the server may answer it as plain HTTP.
    plain_ok: bool,
    /// Checks an error answer.
    check: fn(&HttpAnswer) -> Result<(), String>,
}

const ANY_ERROR: Refusal = Refusal {
    eof_ok: false,
    plain_ok: false,
    check: any_error,
};

/// Sends a request (cut and paced as asked) and expects it refused as `how` says.
fn refused(
    t: &Target,
    o: &Options,
    ev: &mut Evidence,
    request: &[u8],
    chunking: &Chunking,
    pause: Duration,
    how: Refusal,
) -> Verdict {
    let Refusal {
        eof_ok,
        plain_ok,
        check,
    } = how;
    let mut s = match Session::connect(t, o.deadline) {
        Ok(s) => s,
        Err(e) => return Verdict::ServerGone(format!("cannot connect: {e}")),
    };
    let sent = s.send(request, chunking, pause);
    let answer = s.read_head(Instant::now() + o.deadline);
    *ev = s.evidence.clone();
    match answer {
        Ok(Some(a)) if a.status == 101 => Verdict::Violated("accepted the upgrade (101)".into()),
        Ok(Some(a)) if a.status < 400 && !plain_ok => {
            Verdict::Violated(format!("answered {} instead of an error status", a.status))
        }
        Ok(Some(_)) if plain_ok => Verdict::Held,
        Ok(Some(a)) => match check(&a) {
            Ok(()) => Verdict::Held,
            Err(why) => Verdict::Violated(why),
        },
        Ok(None) | Err(_) => match s.end {
            End::Eof | End::Reset if eof_ok => Verdict::Held,
            End::Eof | End::Reset => Verdict::Violated(format!(
                "closed without an HTTP answer{} (§4.2.1: the server MUST return an HTTP error status)",
                if sent.is_err() {
                    " while the request was still being sent"
                } else {
                    ""
                }
            )),
            End::Open => Verdict::NoAnswer(format!("no HTTP answer within {:?}", o.deadline)),
        },
    }
}

fn any_error(_: &HttpAnswer) -> Result<(), String> {
    Ok(())
}

fn bad_request(t: &Target, o: &Options, ev: &mut Evidence, request: String) -> Verdict {
    refused(
        t,
        o,
        ev,
        request.as_bytes(),
        &Chunking::Whole,
        Duration::ZERO,
        ANY_ERROR,
    )
}

/// A request with every line of a valid one except those `drop` names, plus
/// `extra` lines.
fn request_without(t: &Target, drop: &[&str], extra: &str) -> String {
    let full = t.request(&generate_key(), extra);
    full.split("\r\n")
        .filter(|l| {
            !drop
                .iter()
                .any(|d| l.to_ascii_lowercase().starts_with(&d.to_ascii_lowercase()))
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

// ---- the catalogue ----

macro_rules! probe {
    ($($arg:tt)*) => { probe_entry!(Server, $($arg)*) };
}

/// A probe that sends `$wire` on an open connection and expects it failed with
/// one of `$codes`.
macro_rules! fails_probe {
    ($name:expr, $section:expr, $req:ident, $summary:expr, $codes:expr, $wire:expr) => {
        probe!(
            $name,
            $section,
            $req,
            $summary,
            Expect::Fails($codes),
            |t, o, ev| { fails(t, o, ev, $wire, $codes) }
        )
    };
}

pub(super) const E1002: &[u16] = &[1002];
/// A 2^63 length breaks §5.2 and is beyond any size limit: 1002 or 1009 (the RFC
/// does not order the two checks).
pub(super) const MSB_CODES: &[u16] = &[1002, 1009];
pub(super) const E1007: &[u16] = &[1007];
const E1002_1007: &[u16] = &[1002, 1007];
const TOO_BIG: &[u16] = &[1009, 1002, 1008];

/// Every probe, in the order `check` runs them.
pub static PROBES: &[Probe] = &[
    // ---- handshake ----
    probe!(
        "handshake-valid",
        "4.2.2",
        Must,
        "a valid upgrade request",
        Expect::Continues,
        |t, o, ev| { continues(t, o, ev, &[], None) }
    ),
    probe!(
        "handshake-no-upgrade-header",
        "4.2.1",
        Must,
        "no Upgrade header",
        Expect::Refused,
        |t, o, ev| {
            let req = request_without(t, &["upgrade:"], "");
            let how = Refusal {
                plain_ok: true,
                ..ANY_ERROR
            };
            refused(
                t,
                o,
                ev,
                req.as_bytes(),
                &Chunking::Whole,
                Duration::ZERO,
                how,
            )
        }
    ),
    probe!(
        "handshake-no-connection-upgrade",
        "4.2.1",
        Must,
        "Connection: keep-alive instead of Upgrade",
        Expect::Refused,
        |t, o, ev| {
            let req = request_without(t, &["connection:"], "Connection: keep-alive\r\n");
            let how = Refusal {
                plain_ok: true,
                ..ANY_ERROR
            };
            refused(
                t,
                o,
                ev,
                req.as_bytes(),
                &Chunking::Whole,
                Duration::ZERO,
                how,
            )
        }
    ),
    probe!(
        "handshake-no-key",
        "4.2.1",
        Must,
        "no Sec-WebSocket-Key",
        Expect::Refused,
        |t, o, ev| { bad_request(t, o, ev, request_without(t, &["sec-websocket-key:"], "")) }
    ),
    probe!(
        "handshake-bad-key",
        "4.2.1",
        Must,
        "a key that is not 16 bytes in base64",
        Expect::Refused,
        |t, o, ev| {
            bad_request(
                t,
                o,
                ev,
                request_without(
                    t,
                    &["sec-websocket-key:"],
                    "Sec-WebSocket-Key: c2hvcnQ=\r\n",
                ),
            )
        }
    ),
    // §11.3.1 puts "MUST NOT appear more than once" on the client; a server that
    // reads the two fields as one list value ("k1, k2", RFC 7230 §3.2.2) finds no
    // valid 16-byte key (§4.2.1 item 5): it SHOULD refuse.
    probe!(
        "handshake-duplicate-key",
        "11.3.1",
        Should,
        "Sec-WebSocket-Key twice",
        Expect::Refused,
        |t, o, ev| {
            let extra = format!("Sec-WebSocket-Key: {}\r\n", generate_key());
            bad_request(t, o, ev, t.request(&generate_key(), &extra))
        }
    ),
    probe!(
        "handshake-wrong-version",
        "4.4",
        Must,
        "Sec-WebSocket-Version: 12",
        Expect::Refused,
        |t, o, ev| {
            let req = request_without(
                t,
                &["sec-websocket-version:"],
                "Sec-WebSocket-Version: 12\r\n",
            );
            let how = Refusal {
                check: |a| match a.header("sec-websocket-version") {
                    Some(v) if v.split(',').any(|x| x.trim() == "13") => Ok(()),
                    Some(v) => Err(format!(
                        "refused ({}) but offered versions {v:?}, not 13",
                        a.status
                    )),
                    None => Err(format!(
                        "refused ({}) without Sec-WebSocket-Version (§4.4: MUST name the versions it understands)",
                        a.status
                    )),
                },
                ..ANY_ERROR
            };
            refused(
                t,
                o,
                ev,
                req.as_bytes(),
                &Chunking::Whole,
                Duration::ZERO,
                how,
            )
        }
    ),
    probe!(
        "handshake-no-version",
        "4.2.1",
        Must,
        "no Sec-WebSocket-Version",
        Expect::Refused,
        |t, o, ev| {
            bad_request(
                t,
                o,
                ev,
                request_without(t, &["sec-websocket-version:"], ""),
            )
        }
    ),
    probe!(
        "handshake-post",
        "4.2.1",
        Must,
        "method POST",
        Expect::Refused,
        |t, o, ev| {
            bad_request(
                t,
                o,
                ev,
                t.request(&generate_key(), "").replacen("GET ", "POST ", 1),
            )
        }
    ),
    probe!(
        "handshake-http10",
        "4.2.1",
        Must,
        "HTTP/1.0",
        Expect::Refused,
        |t, o, ev| {
            bad_request(
                t,
                o,
                ev,
                t.request(&generate_key(), "")
                    .replacen("HTTP/1.1", "HTTP/1.0", 1),
            )
        }
    ),
    probe!(
        "handshake-no-host",
        "4.2.1",
        Must,
        "no Host header",
        Expect::Refused,
        |t, o, ev| { bad_request(t, o, ev, request_without(t, &["host:"], "")) }
    ),
    probe!(
        "handshake-oversized-head",
        "4.2.1",
        Robustness,
        "an 8 MiB request head",
        Expect::Refused,
        |t, o, ev| {
            let filler = "X-Filler: ".to_owned() + &"a".repeat(1000) + "\r\n";
            let req = t.request(&generate_key(), &filler.repeat(8 * 1024));
            let how = Refusal {
                eof_ok: true,
                ..ANY_ERROR
            };
            refused(
                t,
                o,
                ev,
                req.as_bytes(),
                &Chunking::Whole,
                Duration::ZERO,
                how,
            )
        }
    ),
    Probe {
        slow: true,
        ..probe!(
            "handshake-slow-head",
            "none",
            Robustness,
            "a request head one byte per second",
            Expect::Refused,
            |t, o, ev| {
                // The server must give up on a head that never completes (slowloris):
                // an error status or a close within 6 x the deadline.
                let req = t.request(&generate_key(), "X-Slow: 1\r\n");
                let head = &req.as_bytes()[..req.len() - 2];
                let mut s = match Session::connect(t, o.deadline) {
                    Ok(s) => s,
                    Err(e) => return Verdict::ServerGone(format!("cannot connect: {e}")),
                };
                let give_up = Instant::now() + o.deadline * 6;
                let mut sent = 0;
                while sent < head.len() && Instant::now() < give_up {
                    if s.send(&head[sent..=sent], &Chunking::Whole, Duration::ZERO)
                        .is_err()
                    {
                        break;
                    }
                    sent += 1;
                    if let Ok(Some(a)) = s.read_head(Instant::now() + Duration::from_secs(1)) {
                        *ev = s.evidence.clone();
                        return if a.status >= 400 {
                            Verdict::Held
                        } else {
                            Verdict::Violated(format!("answered {}", a.status))
                        };
                    }
                    if s.end != End::Open {
                        *ev = s.evidence.clone();
                        return Verdict::Held;
                    }
                }
                *ev = s.evidence.clone();
                Verdict::NoAnswer(format!(
                    "still reading a head after {sent} bytes in {:?}",
                    o.deadline * 6
                ))
            }
        )
    },
    // ---- framing ----
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
    // ---- legal corner cases: the connection must go on ----
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
    // ---- closing handshake ----
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
    // ---- limits ----
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
    // ---- transport ----
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

/// A close code an endpoint may send (§7.4.1, §7.4.2).
fn sendable(c: u16) -> bool {
    matches!(c, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Sends our close (`wire`); the server must answer with a close and close TCP,
/// sending no data frame after its close.
fn closes(t: &Target, o: &Options, ev: &mut Evidence, wire: &[u8]) -> Verdict {
    let (mut s, _) = match open(t, o, "") {
        Ok(s) => s,
        Err(v) => return v,
    };
    let v = judge_closes(&mut s, o, wire);
    *ev = s.evidence.clone();
    v
}

fn judge_closes(s: &mut Session, o: &Options, wire: &[u8]) -> Verdict {
    let _ = s.send(wire, &Chunking::Whole, Duration::ZERO);
    let frames = s.drain_until_end(Instant::now() + o.deadline);
    let mut closed = None;
    for f in &frames {
        if let Some(bad) = bad_server_frame(f, false) {
            return Verdict::Violated(bad);
        }
        match (f.opcode, closed) {
            (0x8, None) => closed = Some(close_code(f)),
            (0x0..=0x2, Some(_)) => {
                return Verdict::Violated("a data frame after its close frame (§5.5.1)".into());
            }
            _ => {}
        }
    }
    match (closed, s.end) {
        (None, End::Open) => {
            Verdict::NoAnswer(format!("no close in answer within {:?}", o.deadline))
        }
        (None, _) => Verdict::Violated(
            "closed TCP without answering our close (§5.5.1: MUST send a close in response)".into(),
        ),
        (Some(got), End::Open) => Verdict::NoAnswer(format!(
            "answered close {} but kept the TCP connection open for {:?} (§7.1.1: the server closes first)",
            got.map_or("(empty)".into(), |c| c.to_string()),
            o.deadline
        )),
        (Some(Some(c)), _) if !sendable(c) => Verdict::Violated(format!(
            "answered with close code {c}, which may not be sent (§7.4)"
        )),
        (Some(_), _) => Verdict::Held,
    }
}

/// Sends `wire`; the server may echo (`echo`) or fail the connection with one of
/// `codes`, but must stay up; a hang is a failure.
fn survives(
    t: &Target,
    o: &Options,
    ev: &mut Evidence,
    wire: &[u8],
    codes: &[u16],
    echo: Option<(u8, &[u8])>,
) -> Verdict {
    let (mut s, _) = match open(t, o, "") {
        Ok(s) => s,
        Err(v) => return v,
    };
    let v = judge_continues(&mut s, o, wire, echo);
    *ev = s.evidence.clone();
    match v {
        Verdict::Violated(why) if why.starts_with("closed the connection") => {
            // Failing the connection is a fine answer to abuse, with a fitting code.
            if codes.iter().any(|c| why.contains(&format!("code {c}")))
                || why == "closed the connection"
            {
                Verdict::Held
            } else {
                Verdict::Violated(why)
            }
        }
        Verdict::Violated(why) if why.starts_with("reset") => Verdict::Held,
        v => v,
    }
}

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

/// True if some frame of `bytes` writes its length in a longer form than needed
/// (§5.2 puts that MUST on the sender; a receiver may refuse or accept it).
fn non_minimal_length(bytes: &[u8]) -> bool {
    let mut off = 0;
    while let Some((f, n)) = RawFrame::parse(&bytes[off..]) {
        if f.len_form != LenForm::Minimal {
            return true;
        }
        off += n;
    }
    false
}

/// True if `bytes` end inside a frame (the lenient reader leaves a tail).
fn ends_inside_frame(bytes: &[u8]) -> bool {
    let mut off = 0;
    while let Some((_, n)) = RawFrame::parse(&bytes[off..]) {
        off += n;
    }
    off < bytes.len()
}

/// Judges a fuzz case: `wire` on a fresh connection, against what the model says
/// a conforming server does with it.
pub(super) fn judge_bytes(
    t: &Target,
    o: &Options,
    ev: &mut Evidence,
    wire: &[u8],
    model: super::fuzz::Model,
) -> Verdict {
    use super::fuzz::Model;
    let (mut s, _) = match open(t, o, "") {
        Ok(s) => s,
        Err(v) => return v,
    };
    let v = match model {
        Model::Continues => match judge_continues(&mut s, o, wire, None) {
            Verdict::Violated(why) if why.contains("code 1002") && non_minimal_length(wire) => {
                Verdict::Held
            }
            v => v,
        },
        Model::Fails(code) => {
            let codes: &[u16] = match code {
                1002 => &[1002],
                1007 => &[1007, 1002],
                1009 => TOO_BIG,
                1003 => &[1003, 1002],
                _ => &[1002, 1007, 1009, 1003, 1008],
            };
            match judge_fail(&mut s, o, wire, codes, false) {
                // The bytes end inside a frame: a server may wait for the rest of
                // it before it judges it (our decoder fails as soon as the header
                // or the payload seen so far breaks a rule; the RFC does not say
                // when).
                Verdict::NoAnswer(_) if ends_inside_frame(wire) => Verdict::Held,
                v => v,
            }
        }
        Model::Closes => judge_closes(&mut s, o, wire),
        Model::Incomplete => {
            let _ = s.send(wire, &Chunking::Whole, Duration::ZERO);
            std::thread::sleep(o.deadline / 4);
            Verdict::Held
        }
    };
    *ev = s.evidence.clone();
    v
}
