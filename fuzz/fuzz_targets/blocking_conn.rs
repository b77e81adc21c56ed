//! The blocking `Conn` over an in-memory duplex stream that returns arbitrary short
//! reads and accepts arbitrary short writes (never WouldBlock), driven by an
//! arbitrary sequence of API calls, so `next_reader`/`next_writer`, handlers and
//! the closing handshake are reached. The peer's bytes are arbitrary frames (valid
//! or not). Oracle: everything the `Conn` wrote re-parses cleanly in the opposite
//! role, in message order, with nothing after its close frame.
#![no_main]

use std::io::{self, Read, Write};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use silverback::Settings;
use silverback::blocking::Stream;
use silverback::proto::{Decoder, Encoder, FrameEvent, MessageKind, OpCode, Role};
use silverback::{CloseCode, Conn};

struct Mem {
    input: Vec<u8>,
    pos: usize,
    read_sizes: Vec<u8>,
    ri: usize,
    out: Vec<u8>,
    write_sizes: Vec<u8>,
    wi: usize,
}

impl Read for Mem {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let size = usize::from(self.read_sizes.get(self.ri % self.read_sizes.len().max(1)).copied().unwrap_or(255)).max(1);
        self.ri += 1;
        let n = size.min(buf.len()).min(self.input.len() - self.pos);
        buf[..n].copy_from_slice(&self.input[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for Mem {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let size = usize::from(self.write_sizes.get(self.wi % self.write_sizes.len().max(1)).copied().unwrap_or(255)).max(1);
        self.wi += 1;
        let n = size.min(buf.len());
        self.out.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream for Mem {}

#[derive(Arbitrary, Debug)]
enum PeerFrame {
    Text(String, bool),
    Binary(Vec<u8>, bool),
    Continuation(Vec<u8>, bool),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Op {
    ReadMessage,
    ReadSome(u16),
    WriteMessage(bool, Vec<u8>),
    Stream(bool, Vec<Vec<u8>>),
    Control(u8, Vec<u8>),
    Close(u16),
}

#[derive(Arbitrary, Debug)]
struct Input {
    server: bool,
    read_buffer: u16,
    write_buffer: u16,
    max_message: u16,
    read_sizes: Vec<u8>,
    write_sizes: Vec<u8>,
    peer: Vec<PeerFrame>,
    ops: Vec<Op>,
}

fuzz_target!(|inp: Input| {
    let role = if inp.server { Role::Server } else { Role::Client };
    let peer_role = if inp.server { Role::Client } else { Role::Server };
    // The peer's stream: frames encoded by a raw peer (state rules not enforced).
    let mut input = Vec::new();
    for f in inp.peer.iter().take(64) {
        let mut enc = Encoder::new(peer_role);
        let r = match f {
            PeerFrame::Text(t, fin) => enc.encode(OpCode::Text, *fin, t.as_bytes(), &mut input),
            PeerFrame::Binary(b, fin) => enc.encode(OpCode::Binary, *fin, b, &mut input),
            PeerFrame::Continuation(b, fin) => {
                let _ = enc.encode(OpCode::Binary, false, b"", &mut Vec::new());
                enc.encode(OpCode::Continuation, *fin, b, &mut input)
            }
            PeerFrame::Ping(p) => enc.encode(OpCode::Ping, true, &p[..p.len().min(125)], &mut input),
            PeerFrame::Pong(p) => enc.encode(OpCode::Pong, true, &p[..p.len().min(125)], &mut input),
            PeerFrame::Close(c) => enc.encode_close(c.map(|c| (CloseCode(c), "")), &mut input),
            PeerFrame::Raw(b) => {
                input.extend_from_slice(b);
                Ok(())
            }
        };
        let _ = r;
    }
    let mem = Mem {
        input,
        pos: 0,
        read_sizes: inp.read_sizes,
        ri: 0,
        out: Vec::new(),
        write_sizes: inp.write_sizes,
        wi: 0,
    };
    let mut cfg = Settings::default();
    cfg.read_buffer_size = usize::from(inp.read_buffer);
    cfg.write_buffer_size = usize::from(inp.write_buffer).max(1);
    cfg.max_message_size = u64::from(inp.max_message);
    let mut conn = Conn::from_raw(mem, role, &cfg, &[], None);
    let mut scratch = vec![0u8; 4096];
    for op in inp.ops.iter().take(64) {
        let _ = match op {
            Op::ReadMessage => conn.read_message().map(|_| ()),
            Op::ReadSome(n) => conn.next_reader().and_then(|mut r| {
                let n = usize::from(*n).min(scratch.len());
                r.read(&mut scratch[..n]).map(|_| ()).map_err(Into::into)
            }),
            Op::WriteMessage(text, data) => {
                let kind = if *text { MessageKind::Text } else { MessageKind::Binary };
                conn.write_message(kind, data)
            }
            Op::Stream(text, pieces) => {
                let kind = if *text { MessageKind::Text } else { MessageKind::Binary };
                conn.next_writer(kind).and_then(|mut w| {
                    for p in pieces.iter().take(16) {
                        w.write_all(p)?;
                    }
                    w.close()
                })
            }
            Op::Control(o, data) => {
                let op = match o % 3 {
                    0 => OpCode::Ping,
                    1 => OpCode::Pong,
                    _ => OpCode::Close,
                };
                conn.write_control(op, data, None)
            }
            Op::Close(code) => conn.close(CloseCode(*code), "bye"),
        };
    }
    // Oracle: what we wrote is a valid stream for the peer's decoder.
    let out = std::mem::take(&mut conn.get_mut().out);
    let mut dec = Decoder::new(peer_role);
    dec.set_max_message_size(u64::MAX >> 1);
    let mut buf = out;
    let mut start = 0;
    let mut closed = false;
    loop {
        let rest = buf.len() - start;
        match dec.decode(&mut buf[start..]) {
            Ok((n, ev)) => {
                if closed {
                    assert!(ev.is_none());
                    assert_eq!(n, rest, "nothing after our close frame");
                    // A non-empty tail after the close is a bug.
                    assert_eq!(rest, 0, "bytes after our close frame");
                    break;
                }
                start += n;
                match ev {
                    None => break,
                    Some(FrameEvent::Close(_)) => closed = true,
                    Some(_) => {}
                }
            }
            Err(e) => panic!("the Conn wrote an invalid stream: {e}"),
        }
    }
});
