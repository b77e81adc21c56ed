//! The judgments the probes share: open a connection, send bytes, and judge the
//! server's answer (failed, goes on, closes, survives).

use std::time::{Duration, Instant};

use super::super::session::{End, Evidence, HttpAnswer, Session, Target};
use super::super::{Options, Verdict};
use crate::proto::raw::{Chunking, RawFrame};

const MASK: [u8; 4] = [0x37, 0xFA, 0x21, 0x3D];

pub(in crate::probe) fn m(f: RawFrame) -> RawFrame {
    f.masked(MASK)
}

pub(in crate::probe) fn bytes(frames: &[RawFrame]) -> Vec<u8> {
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

pub(in crate::probe) fn open(
    t: &Target,
    o: &Options,
    extra: &str,
) -> Result<(Session, HttpAnswer), Verdict> {
    Session::open(t, o.deadline, extra)
        .map_err(|e| Verdict::Violated(format!("a valid upgrade failed: {e}")))
}

/// Opens, sends `wire`, and expects the connection failed with one of `codes`.
pub(in crate::probe) fn fails(
    t: &Target,
    o: &Options,
    ev: &mut Evidence,
    wire: &[u8],
    codes: &[u16],
) -> Verdict {
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

pub(in crate::probe) fn judge_fail(
    s: &mut Session,
    o: &Options,
    wire: &[u8],
    codes: &[u16],
    deflate: bool,
) -> Verdict {
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
pub(in crate::probe) fn continues(
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

pub(in crate::probe) fn judge_continues(
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

/// A close code an endpoint may send (§7.4.1, §7.4.2).
fn sendable(c: u16) -> bool {
    matches!(c, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Sends our close (`wire`); the server must answer with a close and close TCP,
/// sending no data frame after its close.
pub(in crate::probe) fn closes(t: &Target, o: &Options, ev: &mut Evidence, wire: &[u8]) -> Verdict {
    let (mut s, _) = match open(t, o, "") {
        Ok(s) => s,
        Err(v) => return v,
    };
    let v = judge_closes(&mut s, o, wire);
    *ev = s.evidence.clone();
    v
}

pub(in crate::probe) fn judge_closes(s: &mut Session, o: &Options, wire: &[u8]) -> Verdict {
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
pub(in crate::probe) fn survives(
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
