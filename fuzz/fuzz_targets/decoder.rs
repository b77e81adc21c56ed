//! The receive state machine in either role, fed an arbitrary byte stream split at
//! arbitrary points, under an arbitrary read limit and whole-frame limit.
//!
//! Input: `[flags, max_message: u16 BE, whole_frame_max: u16 BE, split seed]` then the
//! stream. `flags & 1`: server role. `max_message == 0` means 64 KiB.
//!
//! Invariants checked (not just "no panic"): every delivered message is valid per
//! the RFC (text is UTF-8, size within the read limit, pieces start with `first`
//! and end with `last`, kinds do not change mid-message); control payloads are at
//! most 125 bytes; a close carries an allowed code; every error maps to a close
//! code that may be sent; after an error nothing more is delivered and the same
//! error repeats; a close is one frame among others (discarding what follows it is
//! the connection's rule, fuzzed by `connection`); the decoder never consumes
//! more than it was given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use silverback::proto::{Decoder, FrameEvent, MessageKind, Role};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let [flags, m0, m1, w0, w1, seed, stream @ ..] = data else {
        return;
    };
    let role = if flags & 1 == 1 { Role::Server } else { Role::Client };
    let mut dec = Decoder::new(role);
    let limit = match u16::from_be_bytes([*m0, *m1]) {
        0 => 65536,
        n => u64::from(n),
    };
    dec.set_max_message_size(limit);
    dec.set_whole_frame_max(usize::from(u16::from_be_bytes([*w0, *w1])));
    let cuts = common::pieces(*seed, stream.len());
    let mut buf: Vec<u8> = Vec::new();
    let mut start = 0usize;
    let mut fed = 0usize;
    let mut next_cut = cuts.iter();
    let mut msg: Option<(MessageKind, Vec<u8>)> = None;
    loop {
        let avail = buf.len() - start;
        match dec.decode(&mut buf[start..]) {
            Err(e) => {
                let code = e.close_code();
                assert!(code.is_allowed_on_wire(), "{code}");
                assert!(dec.is_failed());
                let mut more = buf[start..].to_vec();
                more.extend_from_slice(&[0x81, 0x80, 0, 0, 0, 0]);
                assert!(dec.decode(&mut more).is_err(), "failed, then recovered");
                return;
            }
            Ok((n, ev)) => {
                assert!(n <= avail);
                start += n;
                match ev {
                    Some(FrameEvent::Data(d)) => {
                        if d.first {
                            assert!(msg.is_none(), "a new message while one is open");
                            msg = Some((d.kind, Vec::new()));
                        }
                        let (kind, body) = msg.as_mut().expect("a piece without a first piece");
                        assert_eq!(*kind, d.kind);
                        body.extend_from_slice(d.payload);
                        assert!(body.len() as u64 <= limit, "message over the read limit");
                        if d.last {
                            let (kind, body) = msg.take().unwrap();
                            if kind == MessageKind::Text {
                                assert!(std::str::from_utf8(&body).is_ok(), "invalid UTF-8 delivered");
                            }
                        }
                    }
                    Some(FrameEvent::Ping(p)) | Some(FrameEvent::Pong(p)) => assert!(p.len() <= 125),
                    Some(FrameEvent::Close(c)) => {
                        if let Some((code, _)) = c {
                            assert!(code.is_allowed_on_wire());
                        }
                        // A close is a frame like the others: framing goes on (what
                        // may follow it is the connection's rule).
                    }
                    None => {
                        let Some(&end) = next_cut.next() else {
                            return;
                        };
                        buf.drain(..start);
                        start = 0;
                        buf.extend_from_slice(&stream[fed..end]);
                        fed = end;
                    }
                }
            }
        }
    }
});
