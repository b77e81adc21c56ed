//! The proxy handshakes against hand-written answers.
use super::*;
use std::net::Ipv4Addr;

fn feed_bytewise(hs: &mut TunnelHandshake, input: &[u8], out: &mut Vec<u8>) -> Progress {
    // The answer arrives one byte at a time; the driver keeps what was not used.
    let mut pending = Vec::new();
    let mut total = 0;
    for &b in input {
        pending.push(b);
        let p = hs.read(&pending, out).unwrap();
        pending.drain(..p.consumed);
        total += p.consumed;
        if p.done {
            return Progress {
                consumed: total,
                done: true,
            };
        }
    }
    Progress {
        consumed: total,
        done: false,
    }
}

#[test]
fn http_connect_with_and_without_credentials() {
    let mut out = Vec::new();
    let mut hs = TunnelHandshake::http_connect("example.com", 443, None, &mut out);
    assert_eq!(
        out,
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
    );
    let answer = b"HTTP/1.1 200 Connection established\r\nVia: x\r\n\r\n\x16\x03";
    let p = feed_bytewise(&mut hs, answer, &mut Vec::new());
    assert_eq!(p.consumed, answer.len() - 2);
    assert!(p.done && hs.is_done());

    out.clear();
    let c = Credentials::new("Aladdin", "open sesame");
    TunnelHandshake::http_connect("::1", 8080, Some(&c), &mut out);
    let s = String::from_utf8(out).unwrap();
    assert!(s.starts_with("CONNECT [::1]:8080 HTTP/1.1\r\nHost: [::1]:8080\r\n"));
    assert!(s.contains("Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n"));
    assert!(!format!("{c:?}").contains("sesame"));
}

#[test]
fn http_refusals_and_garbage() {
    let mut hs = TunnelHandshake::http_connect("h", 1, None, &mut Vec::new());
    let e = hs
        .read(
            b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n",
            &mut Vec::new(),
        )
        .unwrap_err();
    assert_eq!(
        e,
        TunnelError::HttpRefused {
            status: 407,
            reason: "Proxy Authentication Required".into()
        }
    );
    let mut hs = TunnelHandshake::http_connect("h", 1, None, &mut Vec::new());
    assert!(matches!(
        hs.read(b"SSH-2.0-OpenSSH\r\n\r\n", &mut Vec::new()),
        Err(TunnelError::Malformed(TunnelStep::HttpConnect, _))
    ));
    // A head that never ends is refused at the bound, not buffered forever.
    let mut hs = TunnelHandshake::http_connect("h", 1, None, &mut Vec::new());
    let mut long = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
    long.resize(MAX_HTTP_HEAD, b'a');
    assert!(matches!(
        hs.read(&long, &mut Vec::new()),
        Err(TunnelError::Malformed(TunnelStep::HttpConnect, _))
    ));
}

#[test]
fn socks5_without_credentials_by_address() {
    let mut out = Vec::new();
    let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
    let mut hs = TunnelHandshake::socks5(SocksTarget::Ip(ip), 80, None, &mut out).unwrap();
    assert_eq!(out, [5, 1, 0]);
    out.clear();
    let answer = [
        5, 0, 5, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 80,
    ];
    let p = feed_bytewise(&mut hs, &answer, &mut out);
    assert!(p.done);
    assert_eq!(p.consumed, answer.len());
    assert_eq!(out, [5, 1, 0, 1, 127, 0, 0, 1, 0, 80]);
}

#[test]
fn socks5_refusals() {
    let c = Credentials::new("u", "p");
    let start =
        |creds| TunnelHandshake::socks5(SocksTarget::Name("h"), 1, creds, &mut Vec::new()).unwrap();
    let err = |hs: &mut TunnelHandshake, b: &[u8]| hs.read(b, &mut Vec::new()).unwrap_err();
    assert_eq!(
        err(&mut start(None), &[5, 0xff]),
        TunnelError::SocksNoAcceptableMethod
    );
    // Username/password chosen though none was offered.
    assert!(matches!(
        err(&mut start(None), &[5, 2]),
        TunnelError::Malformed(TunnelStep::SocksGreeting, _)
    ));
    assert!(matches!(
        err(&mut start(None), b"HTTP/1.1 400"),
        TunnelError::Malformed(TunnelStep::SocksGreeting, _)
    ));
    assert_eq!(
        err(&mut start(Some(&c)), &[5, 2, 1, 1]),
        TunnelError::SocksAuthRefused(1)
    );
    assert_eq!(
        err(&mut start(None), &[5, 0, 5, 5, 0, 1]),
        TunnelError::SocksRefused(5)
    );
    assert_eq!(socks_reply_meaning(5), "connection refused");
    assert!(matches!(
        err(&mut start(None), &[5, 0, 5, 0, 0, 9]),
        TunnelError::Malformed(TunnelStep::SocksConnect, _)
    ));
    let long = "x".repeat(256);
    assert!(matches!(
        TunnelHandshake::socks5(SocksTarget::Name(&long), 1, None, &mut Vec::new()),
        Err(TunnelError::InvalidRequest(_))
    ));
}

#[test]
fn any_input_is_an_answer_or_a_typed_error() {
    // Every 3-byte prefix after each SOCKS state: no panic, consumption within
    // the input, and the step reported stays a SOCKS step.
    for creds in [None, Some(Credentials::new("u", "p"))] {
        for a in 0..=255u8 {
            for b in [0u8, 1, 2, 5, 0xff] {
                let mut hs = TunnelHandshake::socks5(
                    SocksTarget::Name("h"),
                    1,
                    creds.as_ref(),
                    &mut Vec::new(),
                )
                .unwrap();
                let input = [5, 2, 1, 0, a, b, 0, 3, 1, b'x', 0, 1];
                if let Ok(p) = hs.read(&input, &mut Vec::new()) {
                    assert!(p.consumed <= input.len());
                }
            }
        }
    }
}
