//! The model: what a conforming server does with a case's bytes, by our own decoder,
//! and the judgment of a server's answer against it.

use std::time::Duration;

use crate::probe::catalogue::TOO_BIG;
use crate::probe::catalogue::judge::{judge_closes, judge_continues, judge_fail, open};
use crate::probe::session::{Evidence, Target};
use crate::probe::{Options, Verdict};
use crate::proto::raw::{Chunking, LenForm, RawFrame};
use crate::proto::{Decoder, FrameEvent, Role};

/// What a conforming server does with a case's bytes, by our decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// Valid: the conversation goes on.
    Continues,
    /// A rule is broken: the connection fails with this close code.
    Fails(u16),
    /// A valid close: answered, then TCP closed.
    Closes,
    /// The bytes end inside a frame: nothing to judge but survival.
    Incomplete,
}

impl Model {
    /// What `bytes` (a client's, after the handshake) call for.
    pub fn of(bytes: &[u8]) -> Model {
        let mut dec = Decoder::new(Role::Server);
        let mut buf = bytes.to_vec();
        let mut off = 0;
        // Each round consumes input or ends: bounded by the input's length.
        for _ in 0..=buf.len() + 1 {
            match dec.decode(&mut buf[off..]) {
                Err(e) => return Model::Fails(e.close_code().as_u16()),
                Ok((n, Some(FrameEvent::Close(_)))) => {
                    let _ = n;
                    return Model::Closes;
                }
                Ok((n, Some(_))) => off += n,
                Ok((0, None)) => {
                    return if off == buf.len() && !dec.mid_frame() {
                        Model::Continues
                    } else {
                        Model::Incomplete
                    };
                }
                Ok((n, None)) => off += n,
            }
        }
        Model::Incomplete
    }

    /// The model in words.
    pub fn describe(self) -> String {
        match self {
            Model::Continues => "valid: the connection goes on".into(),
            Model::Fails(c) => format!("breaks a rule: fail with {c}"),
            Model::Closes => "ends with a valid close: answer it, close TCP".into(),
            Model::Incomplete => "ends inside a frame: stay up".into(),
        }
    }
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
    model: Model,
) -> Verdict {
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
