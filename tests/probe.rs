//! wsprobe's probes, proven both ways: every probe holds against our servers (the
//! event loop and the blocking layer, in process), and every probe catches a
//! deliberately broken server.
//!
//! The broken servers are mutants made at the wire: a proxy in front of our event
//! loop server that breaks one rule on the way back (accepts refused upgrades,
//! rewrites close codes, keeps TCP open, drops pongs, corrupts echoes, masks frames,
//! sends data after its close, dies after one connection ...), the way
//! `autobahn/mutants.py` proves the Autobahn wire validator. With no mutation the
//! proxy is transparent (every probe holds through it), so a caught mutant is the
//! probe's doing. Every probe in the catalogue must name the mutant that proves it.
#![cfg(feature = "probe")]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use silverback::Upgrader;
use silverback::event::{Ctx, Handler, MessageRef, Server};
use silverback::probe::{self, Options, PROBES, Target, Verdict};
use silverback::proto::deflate::DeflateConfig;
use silverback::proto::raw::RawFrame;

struct Echo;

impl Handler for Echo {
    type Data = ();
    fn on_message(&mut self, ctx: &mut Ctx<'_, ()>, msg: MessageRef<'_>) {
        let _ = ctx.send(msg.kind, msg.data);
    }
}

/// Our event-loop echo server (permessage-deflate on offer, 1 s handshake
/// deadline so the slow-head probe is quick).
fn loop_server() -> SocketAddr {
    let server = Server::builder()
        .addr("127.0.0.1:0")
        .workers(1)
        .handshake_timeout(Duration::from_secs(1))
        .deflate(DeflateConfig::default())
        .build(|_| Echo)
        .unwrap();
    let (handle, _) = server.spawn().unwrap();
    let addr = handle.local_addr();
    std::mem::forget(handle);
    addr
}

/// Our blocking echo server, a thread per connection.
fn blocking_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let upgrader = Upgrader::new()
        .handshake_timeout(Some(Duration::from_secs(1)))
        .deflate(DeflateConfig::default());
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let upgrader = upgrader.clone();
            thread::spawn(move || {
                let Ok(mut conn) = upgrader.upgrade(stream) else {
                    return;
                };
                while let Ok(m) = conn.read_message() {
                    if conn.send(&m).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

fn opts() -> Options {
    Options {
        deadline: Duration::from_secs(2),
        ..Options::default()
    }
}

fn target(addr: SocketAddr) -> Target {
    Target::new(&format!("ws://{addr}/")).unwrap()
}

#[test]
fn every_probe_holds_against_the_event_loop_server() {
    let t = target(loop_server());
    let results = probe::check(&t, &opts(), |_| {});
    assert_eq!(results.len(), PROBES.len());
    let failed = failures(&results);
    assert!(failed.is_empty(), "{failed:#?}");
}

#[test]
fn every_probe_holds_against_the_blocking_server() {
    let t = target(blocking_server());
    let results = probe::check(&t, &opts(), |_| {});
    assert_eq!(results.len(), PROBES.len());
    let failed = failures(&results);
    assert!(failed.is_empty(), "{failed:#?}");
}

// ---- mutants ----

/// One broken rule, applied by the proxy on the server's side of the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mutant {
    /// Transparent.
    None,
    /// A wrong `Sec-WebSocket-Accept` in the 101.
    WrongAccept,
    /// Every HTTP answer becomes `101 Switching Protocols` (refusals accepted).
    AcceptEverything,
    /// `Sec-WebSocket-Version` is dropped from the answers (a 426 without it).
    NoVersionHeader,
    /// Every close frame from the server says 1000.
    CloseAs1000,
    /// The server's TCP close is not passed on: the connection stays open.
    KeepTcpOpen,
    /// The server's close frames are dropped, and its TCP close too.
    SwallowClose,
    /// Pongs are dropped.
    DropPongs,
    /// The first payload byte of every data frame is flipped.
    CorruptEcho,
    /// Server frames are masked.
    MaskFrames,
    /// A text frame follows the server's close frame.
    DataAfterClose,
    /// The server takes one connection, then is gone.
    Die,
    /// Nothing the server sends gets through, and its TCP close neither.
    Silent,
}

/// The mutant that must make `probe` fail.
fn mutant_for(probe: &str) -> Mutant {
    match probe {
        "handshake-valid" => Mutant::WrongAccept,
        "handshake-wrong-version" => Mutant::NoVersionHeader,
        p if p.starts_with("handshake-slow-head") => Mutant::Silent,
        p if p.starts_with("handshake-") => Mutant::AcceptEverything,
        p if p.starts_with("frame-") || p.starts_with("utf8-") => Mutant::CloseAs1000,
        "limit-huge-declared-length" | "limit-decompression-bomb" => Mutant::CloseAs1000,
        "legal-ping-125" | "legal-unsolicited-pong" | "limit-ping-flood" => Mutant::DropPongs,
        p if p.starts_with("legal-") => Mutant::CorruptEcho,
        "limit-fragment-flood" => Mutant::CorruptEcho,
        "close-echo" => Mutant::SwallowClose,
        "close-empty" => Mutant::KeepTcpOpen,
        "close-then-data" => Mutant::DataAfterClose,
        "limit-never-reads" | "tcp-reset-mid-frame" => Mutant::Die,
        "tcp-half-close" => Mutant::KeepTcpOpen,
        other => panic!("probe {other} has no mutant to prove it: add one"),
    }
}

fn transform_head(head: &[u8], m: Mutant) -> Vec<u8> {
    let text = String::from_utf8_lossy(head).into_owned();
    let mut lines: Vec<String> = text.split("\r\n").map(str::to_owned).collect();
    match m {
        Mutant::WrongAccept => {
            for l in &mut lines {
                if l.to_ascii_lowercase().starts_with("sec-websocket-accept:") {
                    *l = "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=".into();
                }
            }
        }
        Mutant::AcceptEverything => lines[0] = "HTTP/1.1 101 Switching Protocols".into(),
        Mutant::NoVersionHeader => {
            lines.retain(|l| !l.to_ascii_lowercase().starts_with("sec-websocket-version:"))
        }
        _ => {}
    }
    lines.join("\r\n").into_bytes()
}

/// Frames from the server, transformed; `closed` tracks the server's close.
fn transform_frame(f: RawFrame, m: Mutant, out: &mut Vec<u8>) {
    match (m, f.opcode) {
        (Mutant::CloseAs1000, 0x8) if f.payload.len() >= 2 => {
            let mut f = f;
            f.payload[..2].copy_from_slice(&1000u16.to_be_bytes());
            f.encode_into(out);
        }
        (Mutant::SwallowClose | Mutant::Silent, 0x8) => {}
        (Mutant::DropPongs, 0xA) => {}
        (Mutant::CorruptEcho, 0x0..=0x2) if !f.payload.is_empty() => {
            let mut f = f;
            f.payload[0] ^= 0x20;
            f.encode_into(out);
        }
        (Mutant::MaskFrames, _) => f.masked([1, 2, 3, 4]).encode_into(out),
        (Mutant::DataAfterClose, 0x8) => {
            f.encode_into(out);
            RawFrame::text("after close").encode_into(out);
        }
        (Mutant::Silent, _) => {}
        _ => f.encode_into(out),
    }
}

/// Server to client: the HTTP head, then frames, each transformed.
fn server_to_client(mut from: TcpStream, mut to: TcpStream, m: Mutant) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    let mut head_done = false;
    loop {
        let n = match from.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut out = Vec::new();
        if !head_done {
            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            if m != Mutant::Silent {
                out.extend(transform_head(&buf[..end + 4], m));
            }
            buf.drain(..end + 4);
            head_done = true;
        }
        while let Some((f, used)) = RawFrame::parse(&buf) {
            buf.drain(..used);
            transform_frame(f, m, &mut out);
        }
        if to.write_all(&out).is_err() {
            break;
        }
    }
    if matches!(
        m,
        Mutant::KeepTcpOpen | Mutant::SwallowClose | Mutant::Silent
    ) {
        // Hold the client's side open well past the probes' deadline.
        thread::sleep(Duration::from_secs(10));
    } else {
        let _ = to.shutdown(Shutdown::Write);
    }
}

/// A proxy in front of `upstream` applying `m`.
fn mutant_proxy(upstream: SocketAddr, m: Mutant) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(upstream) else {
                return;
            };
            let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            thread::spawn(move || server_to_client(s2, c2, m));
            thread::spawn(move || {
                let mut client = client;
                let mut server = server;
                let _ = std::io::copy(&mut client, &mut server);
                let _ = server.shutdown(Shutdown::Write);
            });
            if m == Mutant::Die {
                // One connection, then the listener is gone.
                return;
            }
        }
    });
    addr
}

#[test]
fn every_probe_holds_through_the_transparent_proxy() {
    let upstream = loop_server();
    let t = target(mutant_proxy(upstream, Mutant::None));
    let results = probe::check(&t, &opts(), |_| {});
    let failed = failures(&results);
    assert!(
        failed.is_empty(),
        "the proxy is not transparent: {failed:#?}"
    );
}

#[test]
fn every_probe_catches_its_mutant() {
    let upstream = loop_server();
    let o = opts();
    // Each probe against its own proxy; many wait out their deadline (that is
    // what they catch), so they run side by side.
    let missed: Vec<String> = thread::scope(|scope| {
        let runs: Vec<_> = PROBES
            .iter()
            .map(|p| {
                let o = &o;
                scope.spawn(move || {
                    let m = mutant_for(p.name);
                    let t = target(mutant_proxy(upstream, m));
                    let r = probe::run_probe(&t, p, o);
                    (!r.verdict.is_failure())
                        .then(|| format!("{} did not catch {m:?}: {:?}", p.name, r.verdict))
                })
            })
            .collect();
        runs.into_iter().filter_map(|h| h.join().unwrap()).collect()
    });
    assert!(missed.is_empty(), "{missed:#?}");
}

#[test]
fn masked_server_frames_are_caught_wherever_a_frame_is_read() {
    let upstream = loop_server();
    let t = target(mutant_proxy(upstream, Mutant::MaskFrames));
    let p = PROBES.iter().find(|p| p.name == "legal-ping-125").unwrap();
    let r = probe::run_probe(&t, p, &opts());
    assert!(
        matches!(&r.verdict, Verdict::Violated(why) if why.contains("masked")),
        "{:?}",
        r.verdict
    );
}

#[test]
fn reports_name_every_probe_and_count_failures() {
    let upstream = loop_server();
    let t = target(mutant_proxy(upstream, Mutant::CloseAs1000));
    let o = Options {
        only: vec!["frame-rsv".into(), "legal-ping-125".into()],
        ..opts()
    };
    let results = probe::check(&t, &o, |_| {});
    assert_eq!(results.len(), 4);
    let table = probe::table(&results);
    assert!(table.contains("violated    frame-rsv1"), "{table}");
    assert!(table.contains("4 probes, 1 held, 3 failed"), "{table}");
    let json = probe::json("ws://x/", &results);
    assert!(
        json.contains("\"name\":\"frame-rsv2\"") && json.ends_with("\"failed\":3}"),
        "{json}"
    );
    let xml = probe::junit("ws://x/", &results);
    assert_eq!(xml.matches("<testcase").count(), 4);
    assert_eq!(xml.matches("<failure").count(), 3);
    assert!(
        xml.contains("closed with 1000, the rule calls for 1002"),
        "{xml}"
    );
}

// ---- fuzz and replay ----

#[test]
fn fuzzing_our_server_finds_nothing() {
    let t = target(loop_server());
    let mut judged = 0;
    let findings = probe::fuzz::run(&t, &opts(), 7, 150, 3, |_, _, _| judged += 1);
    assert_eq!(judged, 150);
    let shown: Vec<String> = findings
        .iter()
        .map(|f| format!("{:?}: {:?} {:?}", f.case.mutations, f.model, f.verdict))
        .collect();
    assert!(findings.is_empty(), "{shown:#?}");
}

#[test]
fn fuzzing_a_mutant_finds_it_shrinks_the_case_and_replays_it() {
    let upstream = loop_server();
    let bad = target(mutant_proxy(upstream, Mutant::CloseAs1000));
    let findings = probe::fuzz::run(&bad, &opts(), 7, 100, 1, |_, _, _| {});
    let f = findings
        .first()
        .expect("the mutant rewrites every close code: found");
    assert!(f.verdict.is_failure(), "{:?}", f.verdict);
    assert!(f.bytes.len() <= f.case.bytes.len());
    let file = probe::fuzz::reproducer("ws://mutant/", &f.case, f.model, &f.verdict, &f.bytes);
    let bytes = probe::fuzz::parse_reproducer(&file).unwrap();
    assert_eq!(bytes, f.bytes);
    let mut ev = probe::Evidence::default();
    let (_, again) = probe::fuzz::judge(&bad, &opts(), &bytes, &mut ev);
    assert!(again.is_failure(), "replay against the mutant: {again:?}");
    let (_, good) = probe::fuzz::judge(&target(upstream), &opts(), &bytes, &mut ev);
    assert_eq!(good, Verdict::Held, "replay against the real server");
}

// ---- serve: probing clients ----

/// `wsprobe serve` on a free port, for `count` connections, in a thread.
fn serving(count: usize) -> (SocketAddr, thread::JoinHandle<Vec<probe::ProbeResult>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let h = thread::spawn(move || probe::serve(&listener, &opts(), count, |_| {}));
    (addr, h)
}

fn failures(results: &[probe::ProbeResult]) -> Vec<String> {
    results
        .iter()
        .filter(|r| r.verdict != Verdict::Held)
        .map(|r| format!("{}: {:?}", r.probe.name, r.verdict))
        .collect()
}

#[test]
fn our_blocking_client_holds_every_client_probe() {
    let (addr, server) = serving(probe::CLIENT_PROBES.len());
    for p in probe::CLIENT_PROBES {
        let url = format!("ws://{addr}/{}", p.name);
        if let Ok((mut conn, _)) = silverback::Dialer::new().dial(&url) {
            conn.set_read_deadline(Some(std::time::Instant::now() + Duration::from_secs(5)));
            while conn.read_message().is_ok() {}
        }
    }
    let results = server.join().unwrap();
    assert_eq!(results.len(), probe::CLIENT_PROBES.len());
    let failed = failures(&results);
    assert!(failed.is_empty(), "{failed:#?}");
}

/// A client that checks nothing: it takes any answer, sends a message, and then
/// neither fails nor answers anything.
fn careless_client(addr: SocketAddr, name: &str) {
    let mut s = TcpStream::connect(addr).unwrap();
    let req = format!(
        "GET /{name} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && s.read(&mut b).unwrap_or(0) == 1 {
        head.push(b[0]);
    }
    let _ = s.write_all(&RawFrame::text("hi").masked([1, 2, 3, 4]).encode());
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let until = std::time::Instant::now() + Duration::from_secs(3);
    let mut sink = [0u8; 4096];
    while std::time::Instant::now() < until {
        if let Ok(0) = s.read(&mut sink) {
            break;
        }
    }
}

#[test]
fn every_client_probe_catches_a_careless_client() {
    let (addr, server) = serving(probe::CLIENT_PROBES.len());
    for p in probe::CLIENT_PROBES {
        careless_client(addr, p.name);
    }
    let results = server.join().unwrap();
    let missed: Vec<String> = results
        .iter()
        .filter(|r| !r.verdict.is_failure())
        .map(|r| format!("{}: {:?}", r.probe.name, r.verdict))
        .collect();
    assert!(missed.is_empty(), "{missed:#?}");
}

// ---- wss:// ----

#[cfg(feature = "tls")]
#[test]
fn every_probe_holds_against_the_event_loop_server_over_tls() {
    use silverback::tls;
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (ck.cert.pem(), ck.signing_key.serialize_pem());
    let server = Server::builder()
        .addr("127.0.0.1:0")
        .workers(1)
        .handshake_timeout(Duration::from_secs(1))
        .tls(tls::server_config(cert.as_bytes(), key.as_bytes()).unwrap())
        .build(|_| Echo)
        .unwrap();
    let (handle, _) = server.spawn().unwrap();
    let port = handle.local_addr().port();
    std::mem::forget(handle);
    let roots = tls::client_config(tls::roots_from_pem(cert.as_bytes()).unwrap());
    let t = Target::with_tls(&format!("wss://localhost:{port}/"), roots).unwrap();
    let results = probe::check(&t, &opts(), |_| {});
    assert_eq!(results.len(), PROBES.len());
    let failed = failures(&results);
    assert!(failed.is_empty(), "{failed:#?}");
}
