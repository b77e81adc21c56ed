//! The PROXY protocol on the event loop's listeners, behind a real HAProxy (Debian
//! package `haproxy`, started here on free loopback ports with a generated
//! configuration) sending version 1 (`send-proxy`) and version 2
//! (`send-proxy-v2`), plain and in front of a `wss://` listener (the header comes
//! before TLS): the server must see the client's own address and port, not
//! HAProxy's. Without HAProxy: a connection from an address not trusted that
//! forges a header is refused, a trusted one without a header is refused when
//! headers are required, a malformed header is refused, a `LOCAL` header (a
//! balancer's health check) keeps the socket's address; each refusal is counted.

mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use silverback::event::{ProxyProtocol, Server, ServerHandle};
use silverback::tls::{self, rustls};
use silverback::{Dialer, Message};
use support::{Child, Greeter, free_port, until};

const T: Duration = Duration::from_secs(10);

fn server(proxy: ProxyProtocol, tls: Option<Arc<rustls::ServerConfig>>) -> ServerHandle {
    let mut b = Server::builder()
        .addr("127.0.0.1:0")
        .handshake_timeout(T)
        .proxy_protocol(proxy);
    if let Some(cfg) = tls {
        b = b.tls(cfg);
    }
    b.build(|_| Greeter).unwrap().spawn().unwrap().0
}

fn trusting_loopback() -> ProxyProtocol {
    ProxyProtocol::trusting(["127.0.0.1/32".parse().unwrap()])
}

struct TempFile(std::path::PathBuf);
impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// HAProxy in TCP mode: one frontend per `(backend address, server option)`, on
/// the returned ports. Stopped on drop.
fn haproxy(backends: &[(SocketAddr, &str)]) -> (Child, TempFile, Vec<u16>) {
    let ports: Vec<u16> = backends.iter().map(|_| free_port()).collect();
    let mut cfg = String::from(
        "global\n  maxconn 256\ndefaults\n  mode tcp\n  timeout connect 5s\n  \
         timeout client 30s\n  timeout server 30s\n",
    );
    for (i, ((addr, option), port)) in backends.iter().zip(&ports).enumerate() {
        cfg += &format!(
            "frontend f{i}\n  bind 127.0.0.1:{port}\n  default_backend b{i}\n\
             backend b{i}\n  server s{i} {addr} {option}\n"
        );
    }
    let path = std::env::temp_dir().join(format!(
        "silverback-haproxy-{}-{}.cfg",
        std::process::id(),
        ports[0]
    ));
    std::fs::write(&path, cfg).unwrap();
    let child = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start haproxy ({e}): install the Debian package haproxy")
        });
    let child = Child(child);
    for port in &ports {
        support::wait_port(*port, "haproxy");
    }
    (child, TempFile(path), ports)
}

/// A socket to `port` and the address it has (what the server must report).
fn dial_from(port: u16) -> (TcpStream, String) {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    let me = s.local_addr().unwrap().to_string();
    (s, me)
}

fn greeting(m: Message) -> String {
    match m {
        Message::Text(t) => t,
        m => panic!("expected the greeting, got {m:?}"),
    }
}

struct Cert {
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
}

fn cert() -> Cert {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (ck.cert.pem(), ck.signing_key.serialize_pem());
    Cert {
        server: tls::server_config(cert.as_bytes(), key.as_bytes()).unwrap(),
        client: tls::client_config(tls::roots_from_pem(cert.as_bytes()).unwrap()),
    }
}

#[test]
fn behind_haproxy_the_server_sees_the_client_v1_v2_plain_and_tls() {
    let plain = server(trusting_loopback().required(true), None);
    let c = cert();
    let secure = server(trusting_loopback().required(true), Some(c.server.clone()));
    let (_h, _cfg, ports) = haproxy(&[
        (plain.local_addr(), "send-proxy"),
        (plain.local_addr(), "send-proxy-v2"),
        (secure.local_addr(), "send-proxy-v2"),
        (secure.local_addr(), "send-proxy"),
    ]);
    for (i, &port) in ports.iter().enumerate() {
        for _ in 0..3 {
            let (s, me) = dial_from(port);
            let seen = if i < 2 {
                let (mut conn, _) = Dialer::new()
                    .dial_stream(s, &format!("ws://127.0.0.1:{port}/"))
                    .unwrap();
                let seen = greeting(conn.read_message().unwrap());
                let _ = conn.close(silverback::CloseCode::NORMAL, "");
                seen
            } else {
                let s = tls::connect(s, "localhost", &c.client, Some(T)).unwrap();
                let (mut conn, _) = Dialer::new()
                    .dial_stream(s, &format!("wss://localhost:{port}/"))
                    .unwrap();
                let seen = greeting(conn.read_message().unwrap());
                let _ = conn.close(silverback::CloseCode::NORMAL, "");
                seen
            };
            assert_eq!(
                seen, me,
                "frontend {i}: the server saw HAProxy, not the client"
            );
        }
    }
    assert_eq!(plain.stats().proxy_refused, 0);
    assert_eq!(secure.stats().proxy_refused, 0);
    // Without HAProxy, a trusted address must send a header: refused.
    let (s, _) = dial_from(plain.local_addr().port());
    let url = format!("ws://{}/", plain.local_addr());
    assert!(Dialer::new().dial_stream(s, &url).is_err());
    until(
        || plain.stats().proxy_refused == 1,
        "the direct connection counted",
    );
}

/// The server's answer to `bytes` sent first on a fresh connection, then an
/// upgrade request: the greeting, or `None` when the server closed instead.
fn after(addr: SocketAddr, prefix: &[u8]) -> (Option<String>, String) {
    let (mut s, me) = dial_from(addr.port());
    s.write_all(prefix).unwrap();
    let url = format!("ws://{addr}/");
    let seen = Dialer::new()
        .dial_stream(s, &url)
        .ok()
        .map(|(mut c, _)| greeting(c.read_message().unwrap()));
    (seen, me)
}

#[test]
fn untrusted_forged_malformed_and_local_headers() {
    // Trusts only 10.0.0.0/8: loopback clients are direct clients.
    let strict = server(
        ProxyProtocol::trusting(["10.0.0.0/8".parse().unwrap()]),
        None,
    );
    let addr = strict.local_addr();
    let (seen, me) = after(addr, b"");
    assert_eq!(seen, Some(me), "a direct client, served as itself");
    let (seen, _) = after(addr, b"PROXY TCP4 192.0.2.1 192.0.2.2 1234 80\r\n");
    assert_eq!(
        seen, None,
        "a forged header from an untrusted address was accepted"
    );
    until(|| strict.stats().proxy_refused == 1, "the forgery counted");

    // Trusts loopback, header optional.
    let open = server(trusting_loopback(), None);
    let addr = open.local_addr();
    let (seen, _) = after(addr, b"PROXY TCP4 192.0.2.1 192.0.2.2 1234 80\r\n");
    assert_eq!(seen.as_deref(), Some("192.0.2.1:1234"));
    let (seen, me) = after(addr, b"");
    assert_eq!(
        seen,
        Some(me),
        "no header from a trusted address, not required"
    );
    let (seen, _) = after(addr, b"PROXY TCP4 192.0.2.1 192.0.2.2 1234 99999\r\n");
    assert_eq!(seen, None, "a malformed header was accepted");
    // Version 2 LOCAL (a health check): the socket's own address.
    let mut local = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    local.extend_from_slice(&[0x20, 0x11, 0, 12]);
    local.extend_from_slice(&[192, 0, 2, 1, 192, 0, 2, 2, 0, 1, 0, 2]);
    let (seen, me) = after(addr, &local);
    assert_eq!(seen, Some(me), "LOCAL keeps the connection's address");
    // Version 2 PROXY with a TLV, IPv6.
    let mut v6 = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    v6.extend_from_slice(&[0x21, 0x21, 0, 36 + 5]);
    let mut body = [0u8; 36];
    body[..16].copy_from_slice(
        &"2001:db8::7"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    body[32..34].copy_from_slice(&4321u16.to_be_bytes());
    v6.extend_from_slice(&body);
    v6.extend_from_slice(&[0x05, 0, 2, 0xab, 0xcd]);
    let (seen, _) = after(addr, &v6);
    assert_eq!(seen.as_deref(), Some("[2001:db8::7]:4321"));
    until(
        || open.stats().proxy_refused == 1,
        "the malformed header counted",
    );
    assert!(
        open.stats()
            .prometheus("sb")
            .contains("sb_proxy_refused_total 1")
    );
}

/// `examples/echo --proxy-protocol` behind HAProxy prints the client's own address
/// for its connection (what an operator reads in the log).
#[test]
fn echo_example_behind_haproxy_logs_the_client() {
    use std::io::BufRead;
    let mut child = Child(
        Command::new(support::example("echo"))
            .args(["--proxy-protocol", "--trusted-proxy", "127.0.0.1/32"])
            .args(["--addr", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn examples/echo"),
    );
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stdout = child.0.stdout.take().unwrap();
    thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let first = rx.recv_timeout(T).expect("echo printed nothing");
    let addr: SocketAddr = first
        .split_once("ws://")
        .and_then(|(_, r)| r.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {first:?}"));
    let (_h, _cfg, ports) = haproxy(&[(addr, "send-proxy-v2")]);
    let (s, me) = dial_from(ports[0]);
    let (mut conn, _) = Dialer::new()
        .dial_stream(s, &format!("ws://127.0.0.1:{}/websocket", ports[0]))
        .unwrap();
    conn.write_message(silverback::MessageKind::Text, b"hi")
        .unwrap();
    assert_eq!(conn.read_message().unwrap().as_bytes(), b"hi");
    let want = format!("{me}: connected");
    let deadline = Instant::now() + T;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("echo never printed {want:?}"));
        if line == want {
            break;
        }
        assert!(
            !line.ends_with(": connected"),
            "echo logged {line:?}, want {want:?}"
        );
    }
}
