//! Handshake probes (§4): requests a server must refuse, and the valid one.

use std::time::{Duration, Instant};

use super::judge::continues;
use super::{Expect, Probe};
use crate::probe::session::{End, Evidence, HttpAnswer, Session, Target};
use crate::probe::{Options, Verdict};
use crate::proto::handshake::generate_key;
use crate::proto::raw::Chunking;

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

pub(super) const PROBES: &[Probe] = &[
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
];
