//! Shared vocabulary for the protocol tests: owned events, a driver that feeds a
//! decoder in arbitrary chunks, and a raw frame builder for malformed input.
#![allow(dead_code)]

use silverback::Error;
use silverback::proto::close::CloseCode;
use silverback::proto::mask::apply_mask;
use silverback::proto::{Decoder, Event, MessageKind};

/// An owned copy of a decoder event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ev {
    Data {
        kind: MessageKind,
        payload: Vec<u8>,
        first: bool,
        last: bool,
    },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<(u16, String)>),
}

impl Ev {
    pub fn from_event(e: &Event<'_>) -> Ev {
        match e {
            Event::Data(d) => Ev::Data {
                kind: d.kind,
                payload: d.payload.to_vec(),
                first: d.first,
                last: d.last,
            },
            Event::Ping(p) => Ev::Ping(p.to_vec()),
            Event::Pong(p) => Ev::Pong(p.to_vec()),
            Event::Close(c) => Ev::Close(c.map(|(c, r): (CloseCode, &str)| (c.0, r.to_owned()))),
        }
    }
}

/// A whole message or control frame, as an application sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    Text(Vec<u8>),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<(u16, String)>),
}

/// Feeds `input` to `dec` in chunks whose sizes cycle through `chunks` (0 entries are
/// skipped), the way a socket would deliver it, with a caller-owned buffer that keeps
/// unconsumed bytes. Returns every event, and the error if one occurred.
pub fn drive(dec: &mut Decoder, input: &[u8], chunks: &[usize]) -> (Vec<Ev>, Option<Error>) {
    let mut buf: Vec<u8> = Vec::new();
    let mut start = 0;
    let mut fed = 0;
    let mut events = Vec::new();
    let mut ci = 0;
    let mut steps = 0usize;
    loop {
        steps += 1;
        assert!(steps < 10_000_000, "decoder loop did not terminate");
        match dec.decode(&mut buf[start..]) {
            Err(e) => return (events, Some(e)),
            Ok((n, Some(ev))) => {
                events.push(Ev::from_event(&ev));
                start += n;
            }
            Ok((n, None)) => {
                start += n;
                if fed == input.len() {
                    return (events, None);
                }
                let size = chunks
                    .get(ci % chunks.len().max(1))
                    .copied()
                    .unwrap_or(input.len())
                    .max(1);
                ci += 1;
                let end = (fed + size).min(input.len());
                buf.drain(..start);
                start = 0;
                buf.extend_from_slice(&input[fed..end]);
                fed = end;
            }
        }
    }
}

/// Joins data pieces into whole messages; control events pass through.
pub fn assemble(events: &[Ev]) -> Vec<Msg> {
    let mut out = Vec::new();
    let mut cur: Option<(MessageKind, Vec<u8>)> = None;
    for e in events {
        match e {
            Ev::Data {
                kind,
                payload,
                first,
                last,
            } => {
                if *first {
                    assert!(cur.is_none(), "first piece while a message is open");
                    cur = Some((*kind, Vec::new()));
                }
                let (k, buf) = cur.as_mut().expect("piece without a first piece");
                assert_eq!(k, kind, "kind changed mid-message");
                buf.extend_from_slice(payload);
                if *last {
                    let (k, buf) = cur.take().unwrap();
                    out.push(match k {
                        MessageKind::Text => Msg::Text(buf),
                        MessageKind::Binary => Msg::Binary(buf),
                    });
                }
            }
            Ev::Ping(p) => out.push(Msg::Ping(p.clone())),
            Ev::Pong(p) => out.push(Msg::Pong(p.clone())),
            Ev::Close(c) => out.push(Msg::Close(c.clone())),
        }
    }
    out
}

/// Builds a raw frame with any header bits, masked with `mask` if given.
pub fn raw_frame(b0: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![b0];
    let mbit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(mbit | n as u8),
        n @ 126..=0xFFFF => {
            out.push(mbit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mbit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(k) = mask {
        out.splice(start..start, k);
        apply_mask(&mut out[start + 4..], k, 0);
    }
    out
}

/// A frame as a client sends it (masked with a fixed key).
pub fn cframe(b0: u8, payload: &[u8]) -> Vec<u8> {
    raw_frame(b0, Some([0x11, 0x22, 0x33, 0x44]), payload)
}

/// A frame as a server sends it (unmasked).
pub fn sframe(b0: u8, payload: &[u8]) -> Vec<u8> {
    raw_frame(b0, None, payload)
}
