//! `proto::Connection` in either role, driven by an arbitrary sequence of API calls,
//! input chunks, transport behaviour (short writes, direct frames, bytes taken and
//! put back) and clock steps, against a peer that sends arbitrary frames (valid,
//! compressed, or raw bytes).
//!
//! Oracles:
//! - everything the connection transmits re-parses cleanly in the opposite role
//!   (compressed messages inflate, text is UTF-8), and nothing follows our close;
//! - at most one close frame; the peer's close is answered; a failure sends the
//!   close code that goes with the error, unless a close was already sent;
//! - the transport rule: a server asks to close the transport once the closing
//!   handshake is over (or it failed) and its queue is empty; a client only once
//!   it is done (EOF or its close wait ran out);
//! - after `handle_timeout(now)` the next deadline is in the future (no timer spins);
//! - memory: a delivered piece of inflated data fits the scratch buffer, a message
//!   never exceeds the read limit, after an error input is discarded.
#![no_main]

use std::sync::Arc;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use silverback::proto::{Connection, ConnectionConfig, Event};
use silverback::proto::deflate::{
    DeflateConfig, DeflateMemory, DeflateParams, MessageDeflater, MessageInflater,
};
use silverback::proto::{
    CloseCode, Decoder, Encoder, FrameEvent as Frame, MessageKind, OpCode, Randomness, Role, State,
};

#[derive(Arbitrary, Debug)]
enum PeerFrame {
    Text(String, bool),
    Binary(Vec<u8>, bool),
    Continuation(Vec<u8>, bool),
    Compressed(bool, Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Op {
    Feed(u8),
    Send(bool, Vec<u8>),
    Direct(bool, Vec<u8>, u16),
    Fragment(bool, Vec<u8>, bool),
    StreamWrite(bool, Vec<u8>),
    StreamFlush,
    StreamEnd,
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Control(u8, Vec<u8>),
    Close(u16, String),
    Transmit(u16),
    TakeSome(u16),
    Advance(u16),
    Timeout,
    Eof,
    WriteFail,
    SetLimit(u16),
}

#[derive(Arbitrary, Debug)]
struct Input {
    server: bool,
    seed: u64,
    deflate: Option<(bool, u8)>,
    max_message: u16,
    whole_frame_max: u16,
    fragment_size: u8,
    auto_pong: bool,
    heartbeat: Option<(u8, u8)>,
    idle: Option<u8>,
    close_timeout: u8,
    peer: Vec<PeerFrame>,
    ops: Vec<Op>,
}

fn kind(text: bool) -> MessageKind {
    if text { MessageKind::Text } else { MessageKind::Binary }
}

fuzz_target!(|inp: Input| {
    let role = if inp.server { Role::Server } else { Role::Client };
    let peer_role = if inp.server { Role::Client } else { Role::Server };
    let ms = |x: u8| Duration::from_millis(u64::from(x) * 10);
    let mut cfg = ConnectionConfig::default()
        .max_message_size(u64::from(inp.max_message))
        .read_buffer_size(usize::from(inp.whole_frame_max).max(1))
        .write_buffer_size(usize::from(inp.fragment_size))
        .auto_pong(inp.auto_pong)
        .idle_timeout(inp.idle.map(|i| ms(i) + Duration::from_millis(1)))
        .close_timeout(ms(inp.close_timeout));
    if let Some((i, p)) = inp.heartbeat {
        cfg = cfg.heartbeat(Some(ms(i) + Duration::from_millis(1)), ms(p));
    }
    let whole_max = cfg.read_buffer_size;
    let limit = cfg.max_message_size;
    let t0 = Instant::now();
    let mut now = t0;
    let mut conn = Connection::new(role, Arc::new(cfg), Randomness::seeded(inp.seed), t0);
    let params = inp.deflate.map(|(nct, bits)| DeflateParams {
        server_no_context_takeover: nct,
        client_no_context_takeover: nct,
        server_max_window_bits: 9 + bits % 7,
        client_max_window_bits: 9 + bits % 7,
    });
    let dcfg = DeflateConfig::default().min_message_size(usize::from(inp.seed as u8 % 64));
    // The connection's memory mode (dedicated, window history, shared pools); the
    // peer keeps the default, the wire does not depend on it.
    let ours = dcfg.clone().memory(match (inp.seed >> 8) % 3 {
        0 => DeflateMemory::default(),
        1 => DeflateMemory::Window { bits: 9 + (inp.seed >> 10) as u8 % 7 },
        _ => DeflateMemory::Shared,
    });
    if let Some(p) = &params {
        conn.fuzz_enable_deflate(p, &ours);
    }

    // The peer's byte stream.
    let mut input = Vec::new();
    let mut peer_deflater = params.as_ref().map(|p| MessageDeflater::new(p, peer_role, &dcfg));
    for f in inp.peer.iter().take(48) {
        let mut enc = Encoder::with_randomness(peer_role, Randomness::seeded(inp.seed ^ 1));
        let _ = match f {
            PeerFrame::Text(t, fin) => enc.encode(OpCode::Text, *fin, t.as_bytes(), &mut input),
            PeerFrame::Binary(b, fin) => enc.encode(OpCode::Binary, *fin, b, &mut input),
            PeerFrame::Continuation(b, fin) => {
                let _ = enc.encode(OpCode::Binary, false, b"", &mut Vec::new());
                enc.encode(OpCode::Continuation, *fin, b, &mut input)
            }
            PeerFrame::Compressed(text, data) => match peer_deflater.as_mut() {
                Some(d) => {
                    let data = if *text { String::from_utf8_lossy(data).into_owned().into_bytes() } else { data.clone() };
                    let mut z = Vec::new();
                    if d.compress_message(&data, &mut z).is_ok() {
                        let op = if *text { OpCode::Text } else { OpCode::Binary };
                        if let Ok(h) = enc.header(op, true, true, z.len() as u64) {
                            input.extend_from_slice(h.as_bytes());
                            let start = input.len();
                            input.extend_from_slice(&z);
                            if let Some(k) = h.mask {
                                silverback::proto::apply_mask(&mut input[start..], k, 0);
                            }
                        }
                    }
                    Ok(())
                }
                None => Ok(()),
            },
            PeerFrame::Ping(p) => enc.encode(OpCode::Ping, true, &p[..p.len().min(125)], &mut input),
            PeerFrame::Pong(p) => enc.encode(OpCode::Pong, true, &p[..p.len().min(125)], &mut input),
            PeerFrame::Close(c, r) => {
                let r: String = r.chars().take(30).collect();
                enc.encode_close(c.map(|c| (CloseCode(c), r.as_str())), &mut input)
            }
            PeerFrame::Raw(b) => {
                input.extend_from_slice(b);
                Ok(())
            }
        };
    }

    let mut wire: Vec<u8> = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut fed = 0usize;
    let mut scratch = Vec::new();
    // The close code of a failure, and whether a close had been sent before it.
    let mut failed_with: Option<(Option<CloseCode>, bool)> = None;
    let mut msg_len = 0u64;
    let mut current_limit = limit;
    let mut peer_closed = false;
    let mut eof = false;
    let mut write_failed = false;

    for op in inp.ops.iter().take(96) {
        match op {
            Op::Feed(n) => {
                if eof {
                    continue;
                }
                let end = (fed + usize::from(*n) + 1).min(input.len());
                buf.extend_from_slice(&input[fed..end]);
                fed = end;
                for _ in 0..100_000 {
                    let before_failed = failed_with.is_some();
                    let sent_before = conn.state().close_sent();
                    let (avail, cap) = (buf.len(), scratch.capacity().max(16 * 1024));
                    match conn.read(&mut buf, &mut scratch, now) {
                        Ok((n, ev)) => {
                            assert!(n <= avail);
                            if before_failed {
                                assert!(ev.is_none(), "an event after a failure");
                                assert_eq!(n, avail, "input after a failure is discarded");
                            }
                            let done = ev.is_none();
                            match ev {
                                Some(Event::Message(c)) => {
                                    if c.first {
                                        msg_len = 0;
                                    }
                                    msg_len += c.data.len() as u64;
                                    assert!(msg_len <= current_limit.max(limit), "message over the read limit");
                                    if c.inflated {
                                        assert!(c.data.len() <= cap);
                                    } else {
                                        assert!(c.data.len() <= whole_max.max(avail));
                                    }
                                    if c.last && c.kind == MessageKind::Text && msg_len == c.data.len() as u64 {
                                        assert!(std::str::from_utf8(c.data).is_ok());
                                    }
                                }
                                Some(Event::Close { .. }) => peer_closed = true,
                                Some(_) | None => {}
                            }
                            buf.drain(..n);
                            if done {
                                break;
                            }
                        }
                        Err(e) => {
                            assert!(failed_with.is_none(), "a second error: {e}");
                            assert_eq!(conn.state(), State::Failed);
                            failed_with = Some((Some(e.close_code()), sent_before));
                            buf.clear();
                            break;
                        }
                    }
                }
            }
            Op::Send(t, d) => {
                let _ = conn.send(kind(*t), d);
            }
            Op::Direct(t, d, w) => {
                // A transport that takes the queue and part of the direct frame.
                wire.extend_from_slice(conn.transmit());
                conn.advance_transmit(conn.transmit().len());
                if let Ok(Some(frame)) = conn.send_direct(kind(*t), d) {
                    let w = usize::from(*w).min(frame.len());
                    let mut all = frame.header().to_vec();
                    all.extend_from_slice(frame.payload());
                    wire.extend_from_slice(&all[..w]);
                    frame.written(&mut conn, w);
                }
            }
            Op::Fragment(t, d, fin) => {
                let _ = conn.send_fragment(kind(*t), d, *fin);
            }
            Op::StreamWrite(t, d) => {
                let _ = conn.stream_write(kind(*t), d);
            }
            Op::StreamFlush => {
                let _ = conn.stream_flush();
            }
            Op::StreamEnd => {
                let _ = conn.stream_end();
            }
            Op::Ping(d) => {
                let _ = conn.ping(d);
            }
            Op::Pong(d) => {
                let _ = conn.pong(d);
            }
            Op::Control(o, d) => {
                let op = match o % 4 {
                    0 => OpCode::Ping,
                    1 => OpCode::Pong,
                    2 => OpCode::Close,
                    _ => OpCode::Binary,
                };
                let _ = conn.fuzz_send_control(now, op, d);
            }
            Op::Close(c, r) => {
                let _ = conn.close(now, CloseCode(*c), r);
            }
            Op::Transmit(n) => {
                let n = usize::from(*n).min(conn.transmit().len());
                wire.extend_from_slice(&conn.transmit()[..n]);
                conn.advance_transmit(n);
            }
            Op::TakeSome(n) => {
                // A split driver: take everything, write some, put the rest back.
                let mut taken = Vec::new();
                conn.fuzz_take_transmit(&mut taken);
                let n = usize::from(*n).min(taken.len());
                wire.extend_from_slice(&taken[..n]);
                conn.fuzz_requeue_front(&taken[n..]);
            }
            Op::Advance(ms) => now += Duration::from_millis(u64::from(*ms)),
            Op::Timeout => {
                // Timers due at `now` settle within a few calls (a ping, then its
                // zero pong timeout, then the close wait): none spins.
                let mut rounds = 0;
                while conn.poll_timeout().is_some_and(|d| d <= now) && !conn.state().is_done() {
                    rounds += 1;
                    assert!(rounds <= 4, "a timer that does not move");
                    let _ = conn.handle_timeout(now);
                }
            }
            Op::Eof => {
                conn.handle_eof();
                eof = true;
            }
            Op::WriteFail => {
                // The transport refused our bytes: nothing more goes out.
                conn.handle_write_failure(now);
                write_failed = true;
                assert!(conn.transmit().is_empty());
                assert!(!conn.state().is_open());
            }
            Op::SetLimit(l) => {
                current_limit = current_limit.max(u64::from(*l));
                conn.set_read_limit(u64::from(*l));
            }
        }
        // The transport rule, at every step.
        let state = conn.state();
        let received = conn.end().is_some_and(|e| e.received);
        if conn.should_close_transport() && !state.is_done() {
            assert_eq!(role, Role::Server, "a client closes the transport only when done");
            assert!(conn.transmit().is_empty(), "the server's close goes out first");
            assert!(state == State::Failed || (state.close_sent() && received) || write_failed);
        }
        if role == Role::Server && state.close_sent() && received && conn.transmit().is_empty() {
            assert!(conn.should_close_transport(), "the server closes the TCP connection first");
        }
    }

    // Drain what is left and judge the whole stream in the peer's role.
    wire.extend_from_slice(conn.transmit());
    let drained = conn.transmit().len();
    conn.advance_transmit(drained);
    let mut dec = Decoder::new(peer_role);
    dec.set_max_message_size(u64::MAX >> 1);
    dec.set_whole_frame_max(usize::MAX >> 1);
    let mut inflater = params.as_ref().map(|p| {
        dec.set_rsv1_allowed(true);
        MessageInflater::new(p, peer_role, u64::MAX >> 1)
    });
    let mut pos = 0;
    let mut closes = Vec::new();
    let mut closed_at = None;
    let mut guard = 0;
    loop {
        guard += 1;
        assert!(guard < 1_000_000);
        match dec.decode(&mut wire[pos..]) {
            Err(e) => panic!("the connection transmitted an invalid stream: {e}"),
            Ok((_, None)) => break,
            Ok((n, Some(ev))) => {
                match ev {
                    Frame::Close(c) => {
                        closes.push(c.map(|(c, _)| c));
                        closed_at = Some(pos + n);
                    }
                    Frame::Data(d) if d.compressed => {
                        let inf = inflater.as_mut().expect("RSV1 only with deflate");
                        inf.push(&d, &mut |_| Ok(())).expect("compressed data that inflates");
                    }
                    _ => {}
                }
                pos += n;
            }
        }
    }
    if let Some(at) = closed_at {
        assert_eq!(at, wire.len(), "bytes after our close frame");
    }
    assert!(closes.len() <= 1, "more than one close frame");
    // After a failed write the stream on the wire is cut where it failed: nothing
    // more was owed.
    if peer_closed && !write_failed {
        assert_eq!(closes.len(), 1, "the peer's close was answered");
    }
    if let Some((code, sent_before)) = failed_with.filter(|_| !write_failed) {
        assert_eq!(closes.len(), 1, "a failure sends a close frame");
        if !sent_before {
            assert_eq!(closes[0], code, "the close carries the failure's code");
        }
    }
});
