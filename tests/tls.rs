//! wss:// over loopback: both IO layers in both roles, subprotocols and compression
//! over TLS, certificate checks (wrong host, untrusted issuer), and hostile or broken
//! peers (garbage instead of a ClientHello, plain HTTP on the TLS port, a stall in
//! the TLS handshake, TCP closed without close_notify). Certificates are made here
//! with rcgen; nothing leaves the machine.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use silverback::event::{Client, Ctx, Handler, MessageRef, Server, ServerHandle};
use silverback::tls::{self, rustls};
use silverback::{CloseCode, Dialer, Error, MessageKind, Upgrader};

const T: Duration = Duration::from_secs(20);

struct Cert {
    cert_pem: String,
    key_pem: String,
}

/// A self-signed certificate for `names`.
fn cert(names: &[&str]) -> Cert {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let ck = rcgen::generate_simple_self_signed(names).unwrap();
    Cert {
        cert_pem: ck.cert.pem(),
        key_pem: ck.signing_key.serialize_pem(),
    }
}

fn server_cfg(c: &Cert) -> Arc<rustls::ServerConfig> {
    tls::server_config(c.cert_pem.as_bytes(), c.key_pem.as_bytes()).unwrap()
}

/// A client trusting exactly `c`.
fn client_cfg(c: &Cert) -> Arc<rustls::ClientConfig> {
    tls::client_config(tls::roots_from_pem(c.cert_pem.as_bytes()).unwrap())
}

/// What the server side saw.
#[derive(Default)]
struct Seen {
    errors: Vec<String>,
    closes: Vec<(u16, String)>,
    protocols: Vec<Option<String>>,
    compressed: Vec<bool>,
}

struct Echo(Arc<Mutex<Seen>>);

impl Handler for Echo {
    type Data = ();
    fn on_open(&mut self, ctx: &mut Ctx<'_, ()>) {
        let mut s = self.0.lock().unwrap();
        s.protocols.push(ctx.subprotocol().map(str::to_owned));
        s.compressed.push(ctx.is_compressed());
    }
    fn on_message(&mut self, ctx: &mut Ctx<'_, ()>, msg: MessageRef<'_>) {
        if msg.data == b"close please" {
            let _ = ctx.close(CloseCode::NORMAL, "as asked");
            return;
        }
        let _ = ctx.send(msg.kind, msg.data);
    }
    fn on_error(&mut self, _ctx: &mut Ctx<'_, ()>, err: &Error) {
        self.0.lock().unwrap().errors.push(err.to_string());
    }
    fn on_close(&mut self, _ctx: &mut Ctx<'_, ()>, code: CloseCode, reason: &str) {
        self.0
            .lock()
            .unwrap()
            .closes
            .push((code.as_u16(), reason.to_owned()));
    }
}

struct TlsServer {
    handle: ServerHandle,
    seen: Arc<Mutex<Seen>>,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.handle.shutdown(Duration::ZERO);
    }
}

fn loop_server(
    c: &Cert,
    tune: impl FnOnce(silverback::event::ServerBuilder) -> silverback::event::ServerBuilder,
) -> TlsServer {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s2 = seen.clone();
    let b = Server::builder()
        .addr("127.0.0.1:0")
        .tls(server_cfg(c))
        .subprotocols(["chat.v2", "chat.v1"]);
    let server = tune(b).build(move |_| Echo(s2.clone())).unwrap();
    let (handle, _) = server.spawn().unwrap();
    TlsServer { handle, seen }
}

/// A blocking `wss://localhost` connection to `srv`, trusting `c`.
fn dial(srv: &TlsServer, c: &Cert) -> silverback::Conn<tls::ClientStream> {
    let url = format!("wss://localhost:{}/", srv.handle.local_addr().port());
    Dialer::new()
        .tls_config(client_cfg(c))
        .dial_tls(&url)
        .unwrap()
        .0
}

/// Runs a loop client until it has no connection left (at most `T`).
fn run_bounded<H: Handler>(client: &mut Client<H>) {
    let guard = client.handle();
    let watchdog = thread::spawn(move || {
        thread::sleep(T);
        guard.shutdown(Duration::ZERO);
    });
    client.run().unwrap();
    drop(watchdog);
}

/// A blocking TLS server for one connection: accepts, runs the TLS handshake, then
/// `serve` on the stream. Returns its port and thread.
fn blocking_tls_server<R: Send + 'static>(
    c: &Cert,
    serve: impl FnOnce(tls::ServerStream) -> R + Send + 'static,
) -> (u16, thread::JoinHandle<R>) {
    let scfg = server_cfg(c);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let t = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        serve(tls::accept(tcp, &scfg, Some(T)).unwrap())
    });
    (port, t)
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + T;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

// ---- both layers, both roles ----

#[test]
fn blocking_client_to_loop_server_echoes_with_subprotocol() {
    let c = cert(&["localhost"]);
    let srv = loop_server(&c, |b| b);
    let url = format!("wss://localhost:{}/chat", srv.handle.local_addr().port());
    let (mut conn, resp) = Dialer::new()
        .tls_config(client_cfg(&c))
        .subprotocols(["chat.v1"])
        .dial_tls(&url)
        .unwrap();
    assert_eq!(resp.status(), 101);
    assert_eq!(conn.subprotocol(), Some("chat.v1"));
    for size in [0usize, 5, 125, 126, 16 * 1024, 70_000, 1 << 20] {
        let body: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        conn.write_message(MessageKind::Binary, &body).unwrap();
        let m = conn.read_message().unwrap();
        assert_eq!(m.len(), size);
        assert!(m.as_bytes() == body, "echo of {size} bytes differs");
    }
    // The whole closing handshake (close, echo, the server's TCP close) over TLS.
    conn.close(CloseCode::NORMAL, "bye").unwrap();
    assert!(matches!(conn.read_message(), Err(Error::AlreadyClosed)));
    wait_for("the server's on_close", || {
        !srv.seen.lock().unwrap().closes.is_empty()
    });
    let seen = srv.seen.lock().unwrap();
    assert_eq!(seen.protocols, vec![Some("chat.v1".to_owned())]);
    assert_eq!(seen.closes, vec![(1000, "bye".to_owned())]);
    assert!(seen.errors.is_empty(), "{:?}", seen.errors);
}

#[test]
fn server_close_sends_close_notify() {
    let c = cert(&["localhost"]);
    let srv = loop_server(&c, |b| b);
    let mut conn = dial(&srv, &c);
    conn.write_message(MessageKind::Text, b"close please")
        .unwrap();
    match conn.read_message() {
        Err(Error::Closed(f)) => {
            assert_eq!((f.code, f.reason.as_str()), (CloseCode::NORMAL, "as asked"))
        }
        other => panic!("expected the server's close, got {other:?}"),
    }
    // Underneath, the TLS stream must end with close_notify: rustls reports a clean
    // end (Ok(0)), not UnexpectedEof.
    let s = conn.get_mut();
    s.sock.set_read_timeout(Some(T)).unwrap();
    let mut buf = [0u8; 64];
    let n = s
        .read(&mut buf)
        .expect("TLS stream ended with close_notify");
    assert_eq!(n, 0);
}

#[test]
fn loop_client_to_blocking_server() {
    let c = cert(&["localhost"]);
    let (port, server) = blocking_tls_server(&c, move |stream| {
        let mut conn = Upgrader::new()
            .subprotocols(["p1"])
            .upgrade(stream)
            .unwrap();
        loop {
            match conn.read_message() {
                Ok(m) => conn.write_message(m.kind(), m.as_bytes()).unwrap(),
                Err(Error::Closed(f)) => return f.code,
                Err(e) => panic!("server: {e}"),
            }
        }
    });

    #[derive(Default)]
    struct Once {
        got: Vec<String>,
        protocol: Option<String>,
        closed: Option<u16>,
        errors: Vec<String>,
    }
    impl Handler for Once {
        type Data = ();
        fn on_open(&mut self, ctx: &mut Ctx<'_, ()>) {
            self.protocol = ctx.subprotocol().map(str::to_owned);
            ctx.send_text("hello over tls").unwrap();
        }
        fn on_message(&mut self, ctx: &mut Ctx<'_, ()>, msg: MessageRef<'_>) {
            self.got.push(msg.text().unwrap().to_owned());
            ctx.close(CloseCode::NORMAL, "").unwrap();
        }
        fn on_error(&mut self, _: &mut Ctx<'_, ()>, e: &Error) {
            self.errors.push(e.to_string());
        }
        fn on_close(&mut self, _: &mut Ctx<'_, ()>, code: CloseCode, _: &str) {
            self.closed = Some(code.as_u16());
        }
    }
    let mut client = Client::builder()
        .tls(client_cfg(&c))
        .subprotocols(["p1"])
        .build(Once::default())
        .unwrap();
    client
        .connect(&format!("wss://localhost:{port}/"), ())
        .unwrap();
    run_bounded(&mut client);
    let h = client.handler();
    assert!(h.errors.is_empty(), "{:?}", h.errors);
    assert_eq!(h.got, vec!["hello over tls".to_owned()]);
    assert_eq!(h.protocol.as_deref(), Some("p1"));
    assert_eq!(h.closed, Some(1000));
    assert_eq!(server.join().unwrap(), CloseCode::NORMAL);
}

/// Loop client against loop server: many connections through TLS on one thread each.
#[test]
fn loop_client_to_loop_server_many() {
    let c = cert(&["localhost"]);
    let srv = loop_server(&c, |b| b.workers(2));
    #[derive(Default)]
    struct Many {
        done: usize,
        errors: Vec<String>,
    }
    impl Handler for Many {
        type Data = u32;
        fn on_open(&mut self, ctx: &mut Ctx<'_, u32>) {
            ctx.send_binary(&[0u8; 3000]).unwrap();
        }
        fn on_message(&mut self, ctx: &mut Ctx<'_, u32>, msg: MessageRef<'_>) {
            assert_eq!(msg.data.len(), 3000);
            *ctx.data() += 1;
            if *ctx.data() == 10 {
                self.done += 1;
                ctx.close(CloseCode::NORMAL, "").unwrap();
            } else {
                ctx.send_binary(msg.data).unwrap();
            }
        }
        fn on_error(&mut self, _: &mut Ctx<'_, u32>, e: &Error) {
            self.errors.push(e.to_string());
        }
    }
    let mut client = Client::builder()
        .tls(client_cfg(&c))
        .build(Many::default())
        .unwrap();
    const N: usize = 100;
    let url = format!("wss://localhost:{}/", srv.handle.local_addr().port());
    for _ in 0..N {
        client.connect(&url, 0).unwrap();
    }
    run_bounded(&mut client);
    let h = client.handler();
    assert!(
        h.errors.is_empty(),
        "{:?}",
        &h.errors[..h.errors.len().min(5)]
    );
    assert_eq!(h.done, N);
    wait_for("every server on_close", || {
        srv.seen.lock().unwrap().closes.len() == N
    });
    assert!(srv.seen.lock().unwrap().errors.is_empty());
}

#[test]
fn blocking_both_sides() {
    let c = cert(&["localhost"]);
    let (port, server) = blocking_tls_server(&c, move |stream| {
        let mut conn = Upgrader::new().upgrade(stream).unwrap();
        let m = conn.read_message().unwrap();
        conn.write_message(m.kind(), m.as_bytes()).unwrap();
        // The client drops TCP without close_notify (and without a close frame):
        // an error, not a clean close.
        conn.read_message().unwrap_err()
    });
    let (mut conn, _) = Dialer::new()
        .tls_config(client_cfg(&c))
        .dial_tls(&format!("wss://localhost:{port}/"))
        .unwrap();
    conn.write_message(MessageKind::Text, b"ping").unwrap();
    assert_eq!(conn.read_message().unwrap().as_bytes(), b"ping");
    conn.get_ref()
        .sock
        .shutdown(std::net::Shutdown::Both)
        .unwrap();
    match server.join().unwrap() {
        Error::Io(e) => assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}"),
        other => panic!("expected an I/O error (UnexpectedEof), got {other:?}"),
    }
}

/// Split halves over TLS, both roles: the client's writer thread sends large
/// messages while its reader thread takes the echoes; the blocking server echoes
/// from its read half through its write half on another thread.
#[test]
fn wss_connections_split_into_halves_on_both_sides() {
    const N: usize = 40;
    const SIZE: usize = 100_000;
    let c = cert(&["localhost"]);
    let (port, server) = blocking_tls_server(&c, move |stream| {
        let conn = Upgrader::new().upgrade(stream).unwrap();
        let (mut rd, mut wr) = conn.split_tls();
        let (tx, rx) = mpsc::channel::<silverback::Message>();
        let writer = thread::spawn(move || {
            for m in rx {
                wr.write_message(m.kind(), m.as_bytes()).unwrap();
            }
            wr.close(CloseCode::NORMAL, "done").unwrap();
        });
        let mut echoed = 0;
        while let Ok(m) = rd.read_message() {
            tx.send(m).unwrap();
            echoed += 1;
            if echoed == N {
                break;
            }
        }
        drop(tx);
        writer.join().unwrap();
        echoed
    });
    let (conn, _) = Dialer::new()
        .tls_config(client_cfg(&c))
        .dial_tls(&format!("wss://localhost:{port}/"))
        .unwrap();
    let (mut rd, mut wr) = conn.split_tls();
    let writer = thread::spawn(move || {
        for i in 0..N {
            wr.write_message(MessageKind::Binary, &vec![i as u8; SIZE])
                .unwrap();
        }
        wr
    });
    for i in 0..N {
        let m = rd.read_message().unwrap();
        assert_eq!(m.as_bytes(), &vec![i as u8; SIZE][..], "message {i}");
    }
    // The server closes after the last echo.
    match rd.read_message() {
        Err(Error::Closed(f)) => assert_eq!(f.code, CloseCode::NORMAL),
        other => panic!("expected the server's close, got {other:?}"),
    }
    drop(writer.join().unwrap());
    assert_eq!(server.join().unwrap(), N);
}

/// A split TLS reader is never stuck behind a blocked writer: the server stops
/// reading for four seconds while it sends 80 ticks; the client's writer is blocked
/// meanwhile on a 32 MiB message the full socket cannot take, and the client's
/// reader still gets every tick as it comes (the TLS state's lock is never held
/// across a socket call).
#[test]
fn a_split_wss_reader_is_not_stuck_behind_a_blocked_writer() {
    use std::sync::atomic::{AtomicBool, Ordering};
    const TICKS: usize = 80;
    const BIG: usize = 32 << 20;
    let c = cert(&["localhost"]);
    let (port, server) = blocking_tls_server(&c, move |stream| {
        let mut conn = Upgrader::new()
            .max_message_size(64 << 20)
            .upgrade(stream)
            .unwrap();
        for i in 0..TICKS {
            conn.write_message(MessageKind::Text, format!("tick {i}").as_bytes())
                .unwrap();
            thread::sleep(Duration::from_millis(50));
        }
        // Now read: the client's big message, then its close.
        let m = conn.read_message().unwrap();
        assert_eq!(m.as_bytes().len(), BIG);
        conn.read_message().unwrap_err()
    });
    let (conn, _) = Dialer::new()
        .tls_config(client_cfg(&c))
        .dial_tls(&format!("wss://localhost:{port}/"))
        .unwrap();
    let (mut rd, mut wr) = conn.split_tls();
    let written = Arc::new(AtomicBool::new(false));
    let w2 = written.clone();
    let writer = thread::spawn(move || {
        wr.write_message(MessageKind::Binary, &vec![1u8; BIG])
            .unwrap();
        w2.store(true, Ordering::SeqCst);
        wr
    });
    let t0 = Instant::now();
    let mut last = t0;
    let mut worst = Duration::ZERO;
    for i in 0..TICKS {
        let m = rd.read_message().unwrap();
        assert_eq!(m.as_bytes(), format!("tick {i}").as_bytes());
        worst = worst.max(last.elapsed());
        last = Instant::now();
    }
    // All ticks came while the writer was still blocked, none late.
    assert!(
        !written.load(Ordering::SeqCst),
        "the writer was never blocked"
    );
    // (Stuck behind the writer, a tick would wait until the server reads
    // again: four seconds. Under qemu on a loaded 2-core machine a free reader's
    // gap reached 1.45 s while the writer thread encrypted, hence the margin.)
    assert!(
        worst < Duration::from_millis(2_500),
        "a tick waited {worst:?}"
    );
    let mut wr = writer.join().unwrap();
    wr.close(CloseCode::NORMAL, "").unwrap();
    assert!(matches!(rd.read_message(), Err(Error::Closed(_))));
    assert!(matches!(server.join().unwrap(), Error::Closed(_)));
}

#[cfg(feature = "deflate")]
#[test]
fn deflate_over_tls() {
    use silverback::proto::deflate::DeflateConfig;
    let c = cert(&["localhost"]);
    let srv = loop_server(&c, |b| b.deflate(DeflateConfig::default()));
    let (mut conn, _) = Dialer::new()
        .tls_config(client_cfg(&c))
        .deflate(DeflateConfig::default())
        .dial_tls(&format!(
            "wss://localhost:{}/",
            srv.handle.local_addr().port()
        ))
        .unwrap();
    assert!(conn.is_compressed());
    let text = "{\"user\":\"ada\",\"text\":\"hello\"}".repeat(500);
    for _ in 0..3 {
        conn.write_message(MessageKind::Text, text.as_bytes())
            .unwrap();
        assert_eq!(conn.read_message().unwrap().as_bytes(), text.as_bytes());
    }
    assert_eq!(srv.seen.lock().unwrap().compressed, vec![true]);
}

// ---- certificates ----

/// The blocking dialer's error for `url` with a client trusting `trusted`.
fn dial_error(url: &str, trusted: &Cert) -> String {
    Dialer::new()
        .tls_config(client_cfg(trusted))
        .dial_tls(url)
        .unwrap_err()
        .to_string()
}

#[test]
fn wrong_host_name_is_refused() {
    let c = cert(&["localhost"]);
    let srv = loop_server(&c, |b| b);
    // The certificate names localhost; the URL says 127.0.0.1.
    let msg = dial_error(
        &format!("wss://127.0.0.1:{}/", srv.handle.local_addr().port()),
        &c,
    );
    assert!(msg.contains("certificate not valid for name"), "{msg}");
}

#[test]
fn untrusted_certificate_is_refused() {
    let c = cert(&["localhost"]);
    let other = cert(&["localhost"]);
    let srv = loop_server(&c, |b| b);
    let url = format!("wss://localhost:{}/", srv.handle.local_addr().port());
    let msg = dial_error(&url, &other);
    // A self-signed certificate from another key: rejected as not vouched for
    // (webpki says BadSignature or UnknownIssuer depending on the names).
    assert!(msg.contains("invalid peer certificate"), "{msg}");
    // The loop client reports it through on_error, and the connection never opens.
    #[derive(Default)]
    struct Errs(Vec<String>, bool);
    impl Handler for Errs {
        type Data = ();
        fn on_open(&mut self, _: &mut Ctx<'_, ()>) {
            self.1 = true;
        }
        fn on_error(&mut self, _: &mut Ctx<'_, ()>, e: &Error) {
            self.0.push(e.to_string());
        }
    }
    let mut client = Client::builder()
        .tls(client_cfg(&other))
        .build(Errs::default())
        .unwrap();
    client.connect(&url, ()).unwrap();
    client.run().unwrap();
    let h = client.handler();
    assert!(!h.1, "opened despite an untrusted certificate");
    assert!(
        h.0.iter().any(|e| e.contains("invalid peer certificate")),
        "{:?}",
        h.0
    );
}

#[test]
fn insecure_config_is_opt_in_and_works() {
    let c = cert(&["localhost"]);
    let srv = loop_server(&c, |b| b);
    let url = format!("wss://127.0.0.1:{}/", srv.handle.local_addr().port());
    let (mut conn, _) = Dialer::new()
        .tls_config(tls::dangerous_client_config_accepting_any_certificate())
        .dial_tls(&url)
        .unwrap();
    conn.write_message(MessageKind::Text, b"x").unwrap();
    assert_eq!(conn.read_message().unwrap().as_bytes(), b"x");
    // Without a TLS configuration nothing is guessed.
    let err = Dialer::new().dial_tls(&url).unwrap_err();
    assert!(err.to_string().contains("tls_config"), "{err}");
    // And the plain dialer refuses wss:// rather than talking plain text to it.
    let err = Dialer::new().dial(&url).unwrap_err();
    assert!(err.to_string().contains("dial_tls"), "{err}");
}

// ---- hostile and broken peers ----

/// Reads until EOF or error; returns what arrived and whether the connection ended
/// within `limit`.
fn read_to_end_within(s: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    s.set_read_timeout(Some(limit)).unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while started.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return (got, false);
            }
            Err(_) => return (got, true),
        }
    }
    (got, false)
}

fn still_serves(addr: SocketAddr, c: &Cert) {
    let (mut conn, _) = Dialer::new()
        .tls_config(client_cfg(c))
        .dial_tls(&format!("wss://localhost:{}/", addr.port()))
        .unwrap();
    conn.write_message(MessageKind::Text, b"still here")
        .unwrap();
    assert_eq!(conn.read_message().unwrap().as_bytes(), b"still here");
}

#[test]
fn garbage_instead_of_client_hello_is_dropped() {
    let c = cert(&["localhost"]);
    let srv = loop_server(&c, |b| b);
    let addr = srv.handle.local_addr();
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&[0x16, 0x03, 0x01, 0x00, 0x05, 0xde, 0xad, 0xbe, 0xef, 0x00])
        .unwrap();
    s.write_all(&[0xffu8; 64]).unwrap();
    let (got, ended) = read_to_end_within(&mut s, Duration::from_secs(5));
    assert!(ended, "server kept a connection that sent garbage");
    // At most a TLS alert record came back, never an HTTP answer.
    assert!(got.is_empty() || got[0] == 0x15, "{got:?}");
    still_serves(addr, &c);
}

#[test]
fn plain_http_on_the_tls_port_is_dropped() {
    let c = cert(&["localhost"]);
    let srv = loop_server(&c, |b| b);
    let addr = srv.handle.local_addr();
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(
        b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let (got, ended) = read_to_end_within(&mut s, Duration::from_secs(5));
    assert!(ended, "plain HTTP on the TLS port was not dropped");
    assert!(
        !got.starts_with(b"HTTP/1.1 101"),
        "upgraded over plain text"
    );
    assert_eq!(srv.seen.lock().unwrap().protocols.len(), 0);
    still_serves(addr, &c);
}

#[test]
fn stalled_tls_handshake_is_dropped_at_the_deadline() {
    let c = cert(&["localhost"]);
    let srv = loop_server(&c, |b| b.handshake_timeout(Duration::from_millis(400)));
    let addr = srv.handle.local_addr();
    // Half a ClientHello, then nothing.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00])
        .unwrap();
    let started = Instant::now();
    let (_, ended) = read_to_end_within(&mut s, Duration::from_secs(10));
    assert!(ended, "stalled handshake kept open");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300),
        "dropped too early: {took:?}"
    );
    assert!(srv.handle.connections() <= 1);
    still_serves(addr, &c);
}

#[test]
fn tcp_close_without_close_notify_is_an_error() {
    let c = cert(&["localhost"]);
    let srv = loop_server(&c, |b| b);
    let mut conn = dial(&srv, &c);
    conn.write_message(MessageKind::Text, b"hi").unwrap();
    assert_eq!(conn.read_message().unwrap().as_bytes(), b"hi");
    // Truncate: TCP FIN with neither a close frame nor close_notify.
    conn.get_ref()
        .sock
        .shutdown(std::net::Shutdown::Both)
        .unwrap();
    wait_for("the server's on_close", || {
        !srv.seen.lock().unwrap().closes.is_empty()
    });
    let seen = srv.seen.lock().unwrap();
    assert_eq!(seen.closes[0].0, 1006);
    assert!(
        seen.errors.iter().any(|e| e.contains("close_notify")),
        "{:?}",
        seen.errors
    );
}

#[test]
fn plain_and_tls_listeners_in_one_server() {
    let c = cert(&["localhost"]);
    let srv = loop_server(&c, |b| b.listen("127.0.0.1:0"));
    let addrs = srv.handle.local_addrs().to_vec();
    assert_eq!(addrs.len(), 2);
    still_serves(addrs[0], &c);
    let (mut plain, _) = Dialer::new().dial(&format!("ws://{}/", addrs[1])).unwrap();
    plain.write_message(MessageKind::Text, b"plain").unwrap();
    assert_eq!(plain.read_message().unwrap().as_bytes(), b"plain");
    // The TLS port refuses plain text; the plain port refuses TLS.
    assert!(Dialer::new().dial(&format!("ws://{}/", addrs[0])).is_err());
    assert!(
        Dialer::new()
            .tls_config(client_cfg(&c))
            .dial_tls(&format!("wss://localhost:{}/", addrs[1].port()))
            .is_err()
    );
}

#[test]
fn blocking_accept_times_out_on_a_stall() {
    let c = cert(&["localhost"]);
    let scfg = server_cfg(&c);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let started = Instant::now();
        let r = tls::accept(tcp, &scfg, Some(Duration::from_millis(300)));
        tx.send((r.map(|_| ()).map_err(|e| e.kind()), started.elapsed()))
            .unwrap();
    });
    let _s = TcpStream::connect(addr).unwrap();
    let (r, took) = rx.recv_timeout(T).unwrap();
    assert_eq!(r, Err(std::io::ErrorKind::TimedOut));
    assert!(took < Duration::from_secs(5), "{took:?}");
}
