//! The forward-proxy handshakes (`proto::tunnel`) on arbitrary proxy answers, fed
//! in arbitrary pieces. The first byte picks the handshake (HTTP CONNECT or
//! SOCKS5, with or without credentials, by name or by address) and the second how
//! the answer is cut. Oracles: no panic; `read` never consumes more than it was
//! given; once the tunnel is open it stays open and consumes nothing more; the
//! outcome does not depend on how the answer was cut (one piece or many: the
//! same error, or the same bytes used and the same bytes to send); what the
//! client sends is bounded (a SOCKS5 message at most 513 bytes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use silverback::proto::tunnel::{
    Credentials, MAX_HTTP_HEAD, Progress, SocksTarget, TunnelError, TunnelHandshake,
};

fn start(kind: u8, out: &mut Vec<u8>) -> TunnelHandshake {
    let creds = Credentials::new("user", "password");
    let creds = (kind & 1 == 1).then_some(&creds);
    match kind % 6 {
        0 | 1 => TunnelHandshake::http_connect("example.com", 443, creds, out),
        2 | 3 => TunnelHandshake::socks5(SocksTarget::Name("example.com"), 443, creds, out)
            .unwrap(),
        _ => TunnelHandshake::socks5(SocksTarget::Ip([192, 0, 2, 1].into()), 80, creds, out)
            .unwrap(),
    }
}

/// Feeds `answer` in pieces of `cut` bytes (0: all at once) the way a driver
/// does: keeps what was not used, appends what arrives. Returns the outcome,
/// the bytes used and everything the client sent.
fn drive(kind: u8, answer: &[u8], cut: usize) -> (Result<bool, TunnelError>, usize, Vec<u8>) {
    let mut out = Vec::new();
    let mut hs = start(kind, &mut out);
    let mut pending: Vec<u8> = Vec::new();
    let mut used = 0;
    let step = if cut == 0 { answer.len().max(1) } else { cut };
    for piece in answer.chunks(step) {
        pending.extend_from_slice(piece);
        let before = out.len();
        match hs.read(&pending, &mut out) {
            Ok(Progress { consumed, done }) => {
                assert!(consumed <= pending.len());
                assert!(out.len() - before <= 513, "a SOCKS message or nothing");
                pending.drain(..consumed);
                used += consumed;
                if done {
                    assert!(hs.is_done());
                    let again = hs.read(&pending, &mut out).unwrap();
                    assert_eq!(again, Progress { consumed: 0, done: true });
                    return (Ok(true), used, out);
                }
                assert!(pending.len() < MAX_HTTP_HEAD, "unbounded pending answer");
            }
            Err(e) => return (Err(e), used, out),
        }
    }
    (Ok(false), used, out)
}

fuzz_target!(|data: &[u8]| {
    let [kind, cut, answer @ ..] = data else {
        return;
    };
    let whole = drive(*kind, answer, 0);
    let pieces = drive(*kind, answer, usize::from(*cut % 16) + 1);
    match (&whole.0, &pieces.0) {
        // Cut short, a piecewise run may still wait for bytes the whole run
        // already judged; otherwise both agree.
        (Err(a), Err(b)) => assert_eq!(a, b),
        (Ok(true), Ok(true)) => assert_eq!((whole.1, &whole.2), (pieces.1, &pieces.2)),
        (a, b) => assert_eq!(a, b, "one piece and many disagree"),
    }
});
