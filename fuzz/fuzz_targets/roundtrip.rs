//! Encode → decode round trip: arbitrary messages (fragmented, with pings and pongs
//! interleaved between fragments) encoded in one role decode unchanged in the other,
//! under arbitrary chunking and whole-frame limits.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use silverback::proto::CloseCode;
use silverback::proto::{Decoder, Encoder, FrameEvent, MessageKind, OpCode, Role};

#[derive(Arbitrary, Debug)]
enum Item {
    Text { text: String, cuts: Vec<u8>, ping_after: Option<u8> },
    Binary { data: Vec<u8>, cuts: Vec<u8>, ping_after: Option<u8> },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Input {
    client_sends: bool,
    items: Vec<Item>,
    chunks: Vec<u8>,
    whole_frame_max: u16,
    close: Option<(u16, String)>,
}

#[derive(Debug, PartialEq)]
enum Got {
    Msg(MessageKind, Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<(u16, String)>),
}

fn fragments<'a>(data: &'a [u8], cuts: &[u8]) -> Vec<&'a [u8]> {
    let mut pos: Vec<usize> = cuts.iter().map(|&c| usize::from(c).min(data.len())).collect();
    pos.sort_unstable();
    let mut out = Vec::new();
    let mut prev = 0;
    for p in pos {
        out.push(&data[prev..p]);
        prev = p;
    }
    out.push(&data[prev..]);
    out
}

fuzz_target!(|inp: Input| {
    let (tx, rx) = if inp.client_sends { (Role::Client, Role::Server) } else { (Role::Server, Role::Client) };
    let mut enc = Encoder::new(tx);
    let mut wire = Vec::new();
    let mut want = Vec::new();
    let mut mid = Vec::new();
    for it in inp.items.iter().take(32) {
        let (kind, data, cuts, ping_after): (MessageKind, &[u8], &[u8], Option<u8>) = match it {
            Item::Ping(p) => {
                let p = &p[..p.len().min(125)];
                enc.encode(OpCode::Ping, true, p, &mut wire).unwrap();
                want.push(Got::Ping(p.to_vec()));
                continue;
            }
            Item::Pong(p) => {
                let p = &p[..p.len().min(125)];
                enc.encode(OpCode::Pong, true, p, &mut wire).unwrap();
                want.push(Got::Pong(p.to_vec()));
                continue;
            }
            Item::Text { text, cuts, ping_after } => (MessageKind::Text, text.as_bytes(), cuts, *ping_after),
            Item::Binary { data, cuts, ping_after } => (MessageKind::Binary, data, cuts, *ping_after),
        };
        let frags = fragments(data, &cuts[..cuts.len().min(16)]);
        for (i, f) in frags.iter().enumerate() {
            let op = if i == 0 { kind.opcode() } else { OpCode::Continuation };
            let last = i + 1 == frags.len();
            enc.encode(op, last, f, &mut wire).unwrap();
            if !last && ping_after == Some(i as u8) {
                enc.encode(OpCode::Ping, true, b"mid", &mut wire).unwrap();
                mid.push(Got::Ping(b"mid".to_vec()));
            }
        }
        want.append(&mut mid);
        want.push(Got::Msg(kind, data.to_vec()));
    }
    let close = inp.close.as_ref().and_then(|(c, r)| {
        let code = CloseCode(*c);
        (code.is_allowed_on_wire() && r.len() <= 123).then_some((code, r.as_str()))
    });
    enc.encode_close(close, &mut wire).unwrap();
    want.push(Got::Close(close.map(|(c, r)| (c.0, r.to_owned()))));

    let mut dec = Decoder::new(rx);
    dec.set_max_message_size(u64::MAX >> 1);
    dec.set_whole_frame_max(usize::from(inp.whole_frame_max));
    let mut got = Vec::new();
    let mut cur: Option<(MessageKind, Vec<u8>)> = None;
    let mut buf = Vec::new();
    let (mut start, mut fed, mut ci) = (0usize, 0usize, 0usize);
    loop {
        let (n, ev) = dec.decode(&mut buf[start..]).expect("a valid stream decodes");
        start += n;
        match ev {
            Some(FrameEvent::Data(d)) => {
                if d.first {
                    cur = Some((d.kind, Vec::new()));
                }
                let (_, body) = cur.as_mut().unwrap();
                body.extend_from_slice(d.payload);
                if d.last {
                    let (k, b) = cur.take().unwrap();
                    got.push(Got::Msg(k, b));
                }
            }
            Some(FrameEvent::Ping(p)) => got.push(Got::Ping(p.to_vec())),
            Some(FrameEvent::Pong(p)) => got.push(Got::Pong(p.to_vec())),
            Some(FrameEvent::Close(c)) => {
                got.push(Got::Close(c.map(|(c, r)| (c.0, r.to_owned()))));
                break;
            }
            None => {
                assert!(fed < wire.len(), "the decoder wants more than the whole stream");
                let size = usize::from(inp.chunks.get(ci % inp.chunks.len().max(1)).copied().unwrap_or(200)).max(1);
                ci += 1;
                let end = (fed + size).min(wire.len());
                buf.drain(..start);
                start = 0;
                buf.extend_from_slice(&wire[fed..end]);
                fed = end;
            }
        }
    }
    // Pings sent between fragments come out before their message: compare in order.
    assert_eq!(got, want);
});
