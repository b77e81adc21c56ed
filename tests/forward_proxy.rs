//! Clients through real forward proxies from Debian, started here on free
//! loopback ports: `tinyproxy` (HTTP CONNECT, with and without Basic credentials)
//! and `microsocks` (SOCKS5, with and without username/password), `ws://` and
//! `wss://` through each, from the blocking `Dialer` and the event-loop client.
//! Also: proxies that refuse, answer garbage or stall (a typed error naming the
//! step, within the handshake timeout), and the environment's `no_proxy`.

mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use silverback::event::{Client, Ctx, Handler, MessageRef, Server, ServerHandle};
use silverback::proto::tunnel::{Credentials, TunnelError, TunnelStep};
use silverback::tls::{self, rustls};
use silverback::{Dialer, Error, HandshakeError, Message, MessageKind, Proxy};
use support::{Child, Greeter, free_port};

const T: Duration = Duration::from_secs(10);

struct Certs {
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
}

fn certs() -> Certs {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (ck.cert.pem(), ck.signing_key.serialize_pem());
    Certs {
        server: tls::server_config(cert.as_bytes(), key.as_bytes()).unwrap(),
        client: tls::client_config(tls::roots_from_pem(cert.as_bytes()).unwrap()),
    }
}

/// A plain and a TLS echo server; the URLs to reach them.
struct Targets {
    _plain: ServerHandle,
    _tls: ServerHandle,
    ws: String,
    wss: String,
    certs: Certs,
}

fn targets() -> Targets {
    let certs = certs();
    let start = |tls: Option<Arc<rustls::ServerConfig>>| {
        let mut b = Server::builder().addr("127.0.0.1:0");
        if let Some(cfg) = tls {
            b = b.tls(cfg);
        }
        b.build(|_| Greeter).unwrap().spawn().unwrap().0
    };
    let plain = start(None);
    let secure = start(Some(certs.server.clone()));
    Targets {
        ws: format!("ws://127.0.0.1:{}/", plain.local_addr().port()),
        // The name the certificate is for; the proxy resolves it (or the client
        // does, for socks5://) to the loopback address the server listens on.
        wss: format!("wss://localhost:{}/", secure.local_addr().port()),
        _plain: plain,
        _tls: secure,
        certs,
    }
}

struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// tinyproxy on a free port (Basic credentials required when `auth`); stopped
/// on drop.
fn tinyproxy(auth: Option<(&str, &str)>) -> (Child, TempDir, SocketAddr) {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!(
        "silverback-tinyproxy-{}-{port}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    // No ConnectPort line: CONNECT to any port (the targets' are random).
    let mut cfg = format!(
        "Port {port}\nListen 127.0.0.1\nTimeout 30\nAllow 127.0.0.1\nMaxClients 64\n\
         LogLevel Info\nLogFile \"{}\"\nPidFile \"{}\"\n",
        dir.join("log").display(),
        dir.join("pid").display()
    );
    if let Some((u, p)) = auth {
        cfg += &format!("BasicAuth {u} {p}\n");
    }
    let conf = dir.join("tinyproxy.conf");
    std::fs::write(&conf, cfg).unwrap();
    let child = Command::new("tinyproxy")
        .arg("-d")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start tinyproxy ({e}): install the Debian package tinyproxy")
        });
    let child = Child(child);
    support::wait_port(port, "tinyproxy");
    (
        child,
        TempDir(dir),
        SocketAddr::from(([127, 0, 0, 1], port)),
    )
}

/// microsocks on a free port (username/password required when `auth`).
fn microsocks(auth: Option<(&str, &str)>) -> (Child, SocketAddr) {
    let port = free_port();
    let mut cmd = Command::new("microsocks");
    cmd.args(["-i", "127.0.0.1", "-p", &port.to_string()]);
    if let Some((u, p)) = auth {
        cmd.args(["-u", u, "-P", p]);
    }
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start microsocks ({e}): install the Debian package microsocks")
        });
    let child = Child(child);
    support::wait_port(port, "microsocks");
    (child, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// Through `proxy` with the blocking dialer: the connection is to the proxy,
/// the target greets and echoes.
fn blocking_round_trip(t: &Targets, proxy: &Proxy, proxy_addr: SocketAddr) {
    let d = Dialer::new()
        .handshake_timeout(T)
        .proxy(proxy.clone())
        .tls_config(t.certs.client.clone());
    let (mut c, _) = d
        .dial(&t.ws)
        .unwrap_or_else(|e| panic!("ws via {proxy:?}: {e}"));
    assert_eq!(c.peer_addr().unwrap(), proxy_addr);
    // The server sees the proxy's side of the second leg, not our socket.
    let Message::Text(greeting) = c.read_message().unwrap() else {
        panic!("no greeting")
    };
    assert_ne!(greeting, c.local_addr().unwrap().to_string());
    c.write_message(MessageKind::Text, b"through").unwrap();
    assert_eq!(c.read_message().unwrap(), Message::Text("through".into()));

    let (mut c, _) = d
        .dial_tls(&t.wss)
        .unwrap_or_else(|e| panic!("wss via {proxy:?}: {e}"));
    assert_eq!(c.peer_addr().unwrap(), proxy_addr);
    assert!(matches!(c.read_message().unwrap(), Message::Text(_)));
    let big = vec![7u8; 300_000];
    c.write_message(MessageKind::Binary, &big).unwrap();
    assert_eq!(c.read_message().unwrap(), Message::Binary(big));
}

/// What a loop client saw of one connection.
#[derive(Default, Debug)]
struct Outcome {
    peer: Option<SocketAddr>,
    echoed: bool,
    error: Option<String>,
    handshake_error: Option<HandshakeError>,
}

struct Probe(Arc<Mutex<Vec<Outcome>>>);
impl Handler for Probe {
    type Data = usize;
    fn on_open(&mut self, ctx: &mut Ctx<'_, usize>) {
        self.0.lock().unwrap()[*ctx.data()].peer = Some(ctx.peer_addr());
        let _ = ctx.send_text("via the loop");
    }
    fn on_message(&mut self, ctx: &mut Ctx<'_, usize>, msg: MessageRef<'_>) {
        if msg.data == b"via the loop" {
            self.0.lock().unwrap()[*ctx.data()].echoed = true;
            let _ = ctx.close(silverback::CloseCode::NORMAL, "");
        }
    }
    fn on_error(&mut self, ctx: &mut Ctx<'_, usize>, err: &Error) {
        let mut o = self.0.lock().unwrap();
        let o = &mut o[*ctx.data()];
        o.error = Some(err.to_string());
        if let Error::Handshake(h) = err {
            o.handshake_error = Some(h.clone());
        }
    }
}

/// Connects to each URL through `proxy` from one loop client; what each saw.
fn loop_dial(t: &Targets, proxy: &Proxy, urls: &[&str], timeout: Duration) -> Vec<Outcome> {
    let seen = Arc::new(Mutex::new(
        urls.iter().map(|_| Outcome::default()).collect::<Vec<_>>(),
    ));
    let mut client = Client::builder()
        .handshake_timeout(timeout)
        .proxy(proxy.clone())
        .tls(t.certs.client.clone())
        .build(Probe(seen.clone()))
        .unwrap();
    for (i, u) in urls.iter().enumerate() {
        client.connect(u, i).unwrap();
    }
    let guard = client.handle();
    let watchdog = thread::spawn(move || {
        thread::sleep(T * 2);
        guard.shutdown(Duration::ZERO);
    });
    client.run().unwrap();
    drop(watchdog);
    std::mem::take(&mut *seen.lock().unwrap())
}

fn loop_round_trip(t: &Targets, proxy: &Proxy, proxy_addr: SocketAddr) {
    for (url, o) in [&t.ws, &t.wss]
        .into_iter()
        .zip(loop_dial(t, proxy, &[&t.ws, &t.wss], T))
    {
        assert!(o.echoed, "{url} via {proxy:?}: {o:?}");
        assert_eq!(o.peer, Some(proxy_addr), "{url}");
    }
}

fn proxy_error(e: Error) -> TunnelError {
    match e {
        Error::Handshake(HandshakeError::Proxy(e)) => e,
        other => panic!("not a proxy error: {other:?}"),
    }
}

#[test]
fn http_connect_through_tinyproxy() {
    let t = targets();
    let (_p, _dir, addr) = tinyproxy(None);
    let proxy = Proxy::parse(&format!("http://{addr}")).unwrap();
    blocking_round_trip(&t, &proxy, addr);
    loop_round_trip(&t, &proxy, addr);
}

#[test]
fn http_connect_with_basic_credentials() {
    let t = targets();
    let (_p, _dir, addr) = tinyproxy(Some(("device", "s3cret")));
    let good = Proxy::parse(&format!("http://device:s3cret@{addr}")).unwrap();
    blocking_round_trip(&t, &good, addr);
    loop_round_trip(&t, &good, addr);
    // Without credentials: 407; with wrong ones tinyproxy 1.11 answers 401. Either
    // is the proxy's refusal, with its status.
    for (p, want) in [
        (format!("http://{addr}"), 407),
        (format!("http://device:wrong@{addr}"), 401),
    ] {
        let proxy = Proxy::parse(&p).unwrap();
        let e = Dialer::new().proxy(proxy.clone()).dial(&t.ws).unwrap_err();
        match proxy_error(e) {
            TunnelError::HttpRefused { status, .. } => assert_eq!(status, want, "{p}"),
            other => panic!("{p}: {other:?}"),
        }
        let o = &loop_dial(&t, &proxy, &[&t.ws], T)[0];
        assert!(
            matches!(
                o.handshake_error,
                Some(HandshakeError::Proxy(TunnelError::HttpRefused { status, .. })) if status == want
            ),
            "{o:?}"
        );
        assert!(!o.echoed);
    }
}

#[test]
fn socks5_through_microsocks() {
    let t = targets();
    let (_p, addr) = microsocks(None);
    // socks5h: the proxy resolves "localhost"; socks5: the client resolves it.
    for scheme in ["socks5h", "socks5"] {
        let proxy = Proxy::parse(&format!("{scheme}://{addr}")).unwrap();
        blocking_round_trip(&t, &proxy, addr);
        loop_round_trip(&t, &proxy, addr);
    }
}

#[test]
fn socks5_with_credentials() {
    let t = targets();
    let (_p, addr) = microsocks(Some(("device", "s3cret")));
    let good = Proxy::parse(&format!("socks5h://device:s3cret@{addr}")).unwrap();
    blocking_round_trip(&t, &good, addr);
    loop_round_trip(&t, &good, addr);
    let none = Proxy::parse(&format!("socks5h://{addr}")).unwrap();
    let e = Dialer::new().proxy(none.clone()).dial(&t.ws).unwrap_err();
    assert_eq!(proxy_error(e), TunnelError::SocksNoAcceptableMethod);
    let o = &loop_dial(&t, &none, &[&t.ws], T)[0];
    assert_eq!(
        o.handshake_error,
        Some(HandshakeError::Proxy(TunnelError::SocksNoAcceptableMethod))
    );
    let wrong = Proxy::parse(&format!("socks5h://device:wrong@{addr}")).unwrap();
    let e = Dialer::new().proxy(wrong.clone()).dial(&t.ws).unwrap_err();
    assert!(matches!(proxy_error(e), TunnelError::SocksAuthRefused(_)));
    let o = &loop_dial(&t, &wrong, &[&t.ws], T)[0];
    assert!(
        matches!(
            o.handshake_error,
            Some(HandshakeError::Proxy(TunnelError::SocksAuthRefused(_)))
        ),
        "{o:?}"
    );
}

#[test]
fn socks5_target_refused_names_the_reply() {
    let t = targets();
    let (_p, addr) = microsocks(None);
    // A port nobody listens on: the proxy's connect fails, reply 5 (or 1).
    let closed = format!("ws://127.0.0.1:{}/", free_port());
    let proxy = Proxy::parse(&format!("socks5://{addr}")).unwrap();
    let e = Dialer::new()
        .proxy(proxy.clone())
        .dial(&closed)
        .unwrap_err();
    let e = proxy_error(e);
    assert!(matches!(e, TunnelError::SocksRefused(_)), "{e:?}");
    println!("microsocks to a closed port: {e}");
    let o = &loop_dial(&t, &proxy, &[&closed], T)[0];
    assert!(
        matches!(
            o.handshake_error,
            Some(HandshakeError::Proxy(TunnelError::SocksRefused(_)))
        ),
        "{o:?}"
    );
}

/// A "proxy" that accepts and then does `act` with each connection.
fn fake_proxy(act: fn(TcpStream)) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        for s in l.incoming().take(8).flatten() {
            thread::spawn(move || act(s));
        }
    });
    addr
}

#[test]
fn a_stalled_proxy_times_out_naming_the_step() {
    let t = targets();
    let stall = fake_proxy(|s| {
        thread::sleep(Duration::from_secs(5));
        drop(s);
    });
    let limit = Duration::from_millis(400);
    for (scheme, step) in [
        ("http", TunnelStep::HttpConnect),
        ("socks5h", TunnelStep::SocksGreeting),
    ] {
        let proxy = Proxy::parse(&format!("{scheme}://{stall}")).unwrap();
        let t0 = Instant::now();
        let e = Dialer::new()
            .handshake_timeout(limit)
            .proxy(proxy.clone())
            .dial(&t.ws)
            .unwrap_err();
        let took = t0.elapsed();
        assert_eq!(proxy_error(e), TunnelError::Timeout(step));
        assert!(took >= limit && took < limit * 4, "{scheme}: {took:?}");
        let t0 = Instant::now();
        let o = &loop_dial(&t, &proxy, &[&t.ws], limit)[0];
        assert_eq!(
            o.handshake_error,
            Some(HandshakeError::Proxy(TunnelError::Timeout(step))),
            "{scheme}"
        );
        assert!(t0.elapsed() < limit * 4, "{scheme}: {:?}", t0.elapsed());
    }
}

#[test]
fn garbage_and_a_closing_proxy_are_typed_errors() {
    let t = targets();
    let garbage = fake_proxy(|mut s| {
        let _ = s.write_all(b"SSH-2.0-OpenSSH_9.2\r\n\r\n");
        thread::sleep(Duration::from_millis(500));
    });
    let closing = fake_proxy(drop);
    for (scheme, step) in [
        ("http", TunnelStep::HttpConnect),
        ("socks5h", TunnelStep::SocksGreeting),
    ] {
        let proxy = Proxy::parse(&format!("{scheme}://{garbage}")).unwrap();
        let e = Dialer::new().proxy(proxy.clone()).dial(&t.ws).unwrap_err();
        assert!(
            matches!(proxy_error(e), TunnelError::Malformed(s, _) if s == step),
            "{scheme}"
        );
        let o = &loop_dial(&t, &proxy, &[&t.ws], T)[0];
        assert!(
            matches!(&o.handshake_error, Some(HandshakeError::Proxy(TunnelError::Malformed(s, _))) if *s == step),
            "{scheme}: {o:?}"
        );
        let proxy = Proxy::parse(&format!("{scheme}://{closing}")).unwrap();
        let e = Dialer::new().proxy(proxy.clone()).dial(&t.ws).unwrap_err();
        assert_eq!(proxy_error(e), TunnelError::Closed(step), "{scheme}");
        let o = &loop_dial(&t, &proxy, &[&t.ws], T)[0];
        assert_eq!(
            o.handshake_error,
            Some(HandshakeError::Proxy(TunnelError::Closed(step))),
            "{scheme}"
        );
    }
    // Credentials never show in errors or debug output.
    let p = Proxy::parse("http://u:topsecret@127.0.0.1:1").unwrap();
    assert!(!format!("{p:?}").contains("topsecret"));
    assert_eq!(p.credentials(), Some(&Credentials::new("u", "topsecret")));
}

/// The environment, read by a child process (this test binary, running
/// `env_child` with the variables set): `http_proxy` is used, `no_proxy`
/// exempts what it lists, loopback included only when listed.
#[test]
fn the_environment_and_no_proxy() {
    let t = targets();
    let (_p, _dir, addr) = tinyproxy(None);
    let run = |no_proxy: &str| {
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "env_child", "--ignored", "--nocapture"])
            .env("SB_CHILD_URL", &t.ws)
            .env("http_proxy", format!("http://{addr}"))
            .env("no_proxy", no_proxy)
            .env_remove("NO_PROXY")
            .env_remove("all_proxy")
            .env_remove("ALL_PROXY")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{text}");
        text.lines()
            .find_map(|l| l.strip_prefix("peer="))
            .unwrap_or_else(|| panic!("{text}"))
            .to_owned()
    };
    let target = t.ws.trim_start_matches("ws://").trim_end_matches('/');
    assert_eq!(
        run(""),
        addr.to_string(),
        "loopback is not exempt by default"
    );
    assert_eq!(run("example.com"), addr.to_string());
    assert_eq!(run("example.com,127.0.0.0/8"), target);
    assert_eq!(run("127.0.0.1"), target);
    assert_eq!(run("*"), target);
}

#[test]
#[ignore = "run by the_environment_and_no_proxy with its variables"]
fn env_child() {
    let url = std::env::var("SB_CHILD_URL").unwrap();
    let (c, _) = Dialer::new().proxy_from_env().dial(&url).unwrap();
    println!("peer={}", c.peer_addr().unwrap());
}

/// examples/client through tinyproxy, named by `--proxy` and by `http_proxy`;
/// tinyproxy's log shows the CONNECT.
#[test]
fn the_client_example_goes_through_the_proxy() {
    let t = targets();
    let (_p, dir, addr) = tinyproxy(None);
    let target =
        t.ws.trim_start_matches("ws://")
            .trim_end_matches('/')
            .to_owned();
    for via_env in [false, true] {
        let mut cmd = Command::new(support::example("client"));
        cmd.arg(&t.ws)
            .env_remove("no_proxy")
            .env_remove("NO_PROXY")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if via_env {
            cmd.env("http_proxy", format!("http://{addr}"));
        } else {
            cmd.env_remove("http_proxy")
                .args(["--proxy", &format!("http://{addr}")]);
        }
        let mut child = cmd.spawn().unwrap();
        child.stdin.take().unwrap().write_all(b"through\n").unwrap();
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        let lines: Vec<&str> = stdout.lines().collect();
        // The greeting (the address the server saw: tinyproxy's side), the echo.
        assert_eq!(lines.len(), 2, "{stdout}");
        assert_eq!(lines[1], "through");
        let log = std::fs::read_to_string(dir.0.join("log")).unwrap_or_default();
        // One CONNECT per run so far: this run went through the proxy too.
        assert_eq!(
            log.matches(&format!("CONNECT {target}")).count(),
            1 + usize::from(via_env),
            "tinyproxy's CONNECTs to {target}:\n{log}"
        );
    }
}
