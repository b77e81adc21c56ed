//! The tutorial's programs, run as processes and driven by our own client: each
//! behaves as its doc comment (and README) says. The push example is tested in
//! tests/event_loop.rs; real browsers and other libraries drive them in interop/.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use silverback::{CloseCode, Dialer, Error, Message, MessageKind};
use support::run_example;

const T: Duration = Duration::from_secs(10);

fn dial(addr: std::net::SocketAddr, path: &str) -> silverback::Conn<std::net::TcpStream> {
    let (mut c, _) = Dialer::new().dial(&format!("ws://{addr}{path}")).unwrap();
    c.set_read_deadline(Some(Instant::now() + T));
    c
}

/// Sends each message and expects it back, followed by ten dots of the same kind.
fn expect_echo_then_dots(c: &mut silverback::Conn<std::net::TcpStream>) {
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let msgs = [
        Message::Text("hello".into()),
        Message::Text(String::new()),
        Message::Binary(big),
    ];
    for m in &msgs {
        c.send(m).unwrap();
        assert_eq!(&c.read_message().unwrap(), m);
        let dots = c.read_message().unwrap();
        assert_eq!(dots.kind(), m.kind());
        assert_eq!(dots.as_bytes(), b"..........");
    }
    c.close(CloseCode::NORMAL, "").unwrap();
}

#[test]
fn echo_blocking_echoes_then_sends_dots() {
    let (_child, addr) = run_example("echo_blocking", &[]);
    expect_echo_then_dots(&mut dial(addr, "/websocket"));
    // Any other path is refused before the upgrade.
    assert!(Dialer::new().dial(&format!("ws://{addr}/other")).is_err());
}

#[test]
fn echo_blocking_plain_is_a_pure_echo_on_any_path() {
    let (_child, addr) = run_example("echo_blocking", &["--plain"]);
    let mut c = dial(addr, "/anything");
    for i in 0..3 {
        let m = Message::Text(format!("m{i}"));
        c.send(&m).unwrap();
        assert_eq!(c.read_message().unwrap(), m);
    }
    c.close(CloseCode::NORMAL, "").unwrap();
}

#[test]
fn sans_io_echo_echoes_then_sends_dots_and_keeps_the_rules() {
    let (_child, addr) = run_example("sans_io_echo", &["--ping", "0.2"]);
    let mut c = dial(addr, "/websocket");
    expect_echo_then_dots(&mut c);
    // The connection's heartbeat pings an idle client (the blocking client answers
    // while it reads), and the client's own ping is answered.
    let mut c = dial(addr, "/websocket");
    let pings = Arc::new(Mutex::new(0));
    let seen = pings.clone();
    c.set_ping_handler(move |data, ctl| {
        *seen.lock().unwrap() += 1;
        silverback::blocking::default_ping_handler(data, ctl)
    });
    c.set_read_deadline(Some(Instant::now() + Duration::from_millis(700)));
    assert!(matches!(c.read_message(), Err(Error::Timeout)));
    assert!(*pings.lock().unwrap() >= 2, "heartbeat pings");
    c.set_read_deadline(Some(Instant::now() + T));
    c.write_message(MessageKind::Text, b"still here").unwrap();
    assert_eq!(
        c.read_message().unwrap(),
        Message::Text("still here".into())
    );
    // A server-side close handshake: the server closes TCP first.
    c.close(CloseCode::NORMAL, "bye").unwrap();
    // Any other path is refused before the upgrade.
    assert!(Dialer::new().dial(&format!("ws://{addr}/other")).is_err());
}

#[test]
fn stream_echo_blocking_streams_then_sends_dots() {
    let (_child, addr) = run_example("stream_echo_blocking", &[]);
    let mut c = dial(addr, "/websocket");
    expect_echo_then_dots(&mut c);
    // A fragmented message comes back whole.
    let mut c = dial(addr, "/websocket");
    {
        let mut w = c.next_writer(MessageKind::Text).unwrap();
        for _ in 0..100 {
            std::io::Write::write_all(&mut w, "fragment ".as_bytes()).unwrap();
            std::io::Write::flush(&mut w).unwrap();
        }
        w.close().unwrap();
    }
    assert_eq!(
        c.read_message().unwrap(),
        Message::Text("fragment ".repeat(100))
    );
    assert_eq!(c.read_message().unwrap().as_bytes(), b"..........");
}

#[test]
fn echo_event_loop_echoes_then_sends_dots() {
    let (_child, addr) = run_example("echo", &["--quiet"]);
    expect_echo_then_dots(&mut dial(addr, "/websocket"));
}

#[test]
fn control_blocking_pings_answers_and_closes_with_write_control() {
    let (_child, addr) = run_example("control_blocking", &["--ping", "0.1"]);
    let mut c = dial(addr, "/websocket");
    let pings = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
    let seen = Arc::clone(&pings);
    c.set_ping_handler(move |data, ctl| {
        seen.lock().unwrap().push(data.to_vec());
        silverback::blocking::default_ping_handler(data, ctl)
    });
    let pongs = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
    let seen = Arc::clone(&pongs);
    c.set_pong_handler(move |data, _| {
        seen.lock().unwrap().push(data.to_vec());
        Ok(())
    });

    // Echo, with the ticker's pings arriving in between (answered by our handler).
    let deadline = Instant::now() + T;
    while pings.lock().unwrap().len() < 3 {
        assert!(Instant::now() < deadline, "no periodic pings");
        c.send(&Message::Text("x".into())).unwrap();
        assert_eq!(c.read_message().unwrap(), Message::Text("x".into()));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        pings.lock().unwrap()[..3]
            .iter()
            .all(|p| p.starts_with(b"tick ")),
        "{pings:?}"
    );

    // `ping` command: a ping with payload "ping" arrives.
    let before = pings.lock().unwrap().len();
    c.send(&Message::Text("ping".into())).unwrap();
    c.send(&Message::Text("after".into())).unwrap();
    assert_eq!(c.read_message().unwrap(), Message::Text("after".into()));
    assert!(
        pings.lock().unwrap()[before..].iter().any(|p| p == b"ping"),
        "{pings:?}"
    );

    // Our ping is answered with a pong carrying the same payload.
    c.write_control(silverback::OpCode::Ping, b"are you there", None)
        .unwrap();
    c.send(&Message::Text("sync".into())).unwrap();
    assert_eq!(c.read_message().unwrap(), Message::Text("sync".into()));
    assert!(pongs.lock().unwrap().iter().any(|p| p == b"are you there"));

    // `close` command: the server closes with 1000 "bye" through write_control.
    c.send(&Message::Text("close".into())).unwrap();
    match c.read_message() {
        Err(Error::Closed(f)) => {
            assert_eq!(f.code, CloseCode::NORMAL);
            assert_eq!(f.reason, "bye");
        }
        other => panic!("expected the server's close, got {other:?}"),
    }
}

#[test]
fn sans_io_client_talks_to_the_echo_example_with_heartbeats_both_ways() {
    // The server pings every 0.1 s (answered by the client's auto-pong), the client
    // pings every 0.1 s (answered by the server); the client pauses between
    // messages so both heartbeats run, then closes with 1000 and waits for EOF.
    let (_server, addr) = run_example("echo", &["--quiet", "--ping", "0.1"]);
    let out = std::process::Command::new(support::example("sans_io_client"))
        .args(["--url", &format!("ws://{addr}/websocket")])
        .args(["--count", "3", "--ping", "0.1", "--pause", "0.35"])
        .output()
        .expect("run sans_io_client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for line in [
        "< hello 1",
        "< hello 3",
        "< ..........",
        "ping from the server",
        "pong from the server",
        "the server answered the close: 1000",
        "the server closed the TCP connection",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    // A path the server refuses: the handshake error, exit status non-zero.
    let out = std::process::Command::new(support::example("sans_io_client"))
        .args(["--url", &format!("ws://{addr}/other")])
        .output()
        .expect("run sans_io_client");
    assert!(!out.status.success());
}

#[test]
fn an_unknown_flag_is_an_error_with_the_usage() {
    // A setting the example does not have must not be silently ignored. (A flag
    // that becomes real would start a server: each run is bounded and killed.)
    for (name, args) in [
        ("echo", &["--max-msgs-per-minute", "50"][..]),
        ("echo_blocking", &["--quiet"][..]),
        ("sans_io_client", &["--urll=ws://x/"][..]),
        ("client", &["ws://127.0.0.1:9/", "--proxxy", "http://x"][..]),
    ] {
        let child = std::process::Command::new(support::example(name))
            .args(args)
            .args(["--addr", "127.0.0.1:0"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run the example");
        let mut child = support::Child(child);
        let deadline = Instant::now() + T;
        let status = loop {
            if let Some(status) = child.0.try_wait().expect("wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "{name} {args:?} is still running: the flag was taken"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut stderr).unwrap();
        assert_eq!(status.code(), Some(2), "{name} {args:?}: {stderr}");
        assert!(
            stderr.contains("unknown flag") && stderr.contains("usage:"),
            "{name}: {stderr}"
        );
    }
}

#[test]
fn echo_prints_a_summary_line_for_binary_and_long_messages() {
    // Run with its output captured: a 1 MiB binary message is one short line. The
    // example binds port 0 and says where (a port picked here in advance could be
    // taken by a parallel test before it binds).
    use std::io::BufRead;
    let child = std::process::Command::new(support::example("echo"))
        .args(["--addr", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = support::Child(child);
    let mut lines = std::io::BufReader::new(child.0.stdout.take().unwrap()).lines();
    let mut out = String::new();
    let mut addr = None;
    for _ in 0..20 {
        let Some(Ok(line)) = lines.next() else { break };
        out.push_str(&line);
        out.push('\n');
        if let Some((_, rest)) = line.split_once("ws://") {
            let end = rest.find(['/', ' ']).unwrap_or(rest.len());
            addr = rest[..end].parse::<std::net::SocketAddr>().ok();
            break;
        }
    }
    let addr = addr.unwrap_or_else(|| panic!("echo printed no address: {out}"));
    // The rest of its output, read until it exits.
    let rest = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<String>>());
    let mut c = dial(addr, "/websocket");
    for m in [
        Message::Binary(vec![0xff; 1 << 20]),
        Message::Text("é".repeat(500)),
        Message::Text("short".into()),
    ] {
        c.send(&m).unwrap();
        assert_eq!(c.read_message().unwrap(), m);
        assert_eq!(c.read_message().unwrap().as_bytes(), b"..........");
    }
    c.close(CloseCode::NORMAL, "").unwrap();
    // Its close handler prints the close; then stop it and read what it printed.
    std::thread::sleep(Duration::from_millis(200));
    let _ = child.0.kill();
    let _ = child.0.wait();
    for line in rest.join().unwrap() {
        out.push_str(&line);
        out.push('\n');
    }
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("recv from")).collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].ends_with("(binary, 1048576 bytes)"),
        "{}",
        lines[0]
    );
    assert!(lines[1].ends_with("… (text, 1000 bytes)"), "{}", lines[1]);
    assert!(lines[1].len() < 250, "{}", lines[1]);
    assert!(lines[2].ends_with(": short"), "{}", lines[2]);
}

/// Runs examples/client with `args`, writes `input` to its stdin (kept open for
/// `hold`), and returns its exit code, stdout and stderr; killed after 20 s.
fn run_client(args: &[&str], input: &str, hold: Duration) -> (Option<i32>, String, String) {
    use std::io::Write;
    let child = std::process::Command::new(support::example("client"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the client example");
    let mut child = support::Child(child);
    let mut stdin = child.0.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    std::thread::sleep(hold);
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "client {args:?} did not end");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.0.stdout.take().unwrap(), &mut out).unwrap();
    std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut err).unwrap();
    (status.code(), out, err)
}

#[test]
fn the_client_example_sends_lines_and_prints_the_answers() {
    let (_server, addr) = run_example("echo", &["--quiet"]);
    let url = format!("ws://{addr}/websocket");
    // Ctrl-D right after the lines: the answers still come out (the close waits
    // for the pong of a ping sent behind them).
    let (code, out, err) = run_client(&[&url], "hello\nwörld\n", Duration::ZERO);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["hello", "..........", "wörld", ".........."],
        "{err}"
    );
    assert!(
        err.contains("# connected") && err.contains("closed (1000"),
        "{err}"
    );
    // --binary: the answers are binary too, printed as a summary.
    let (code, out, _) = run_client(&[&url, "--binary"], "abc\n", Duration::ZERO);
    assert_eq!(code, Some(0));
    assert!(out.contains("[binary message of 3 bytes]"), "{out}");
    // Nothing listening, or a path the server refuses: exit status 1.
    let dead = format!("ws://127.0.0.1:{}/", support::free_port());
    let (code, _, err) = run_client(&[&dead], "", Duration::ZERO);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no connection"), "{err}");
    let (code, _, err) = run_client(&[&format!("ws://{addr}/nope")], "", Duration::ZERO);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("404"), "{err}");
}

/// Reports the subprotocol and the `X-Device` header it was opened with.
struct Introspect;
impl silverback::event::Handler for Introspect {
    type Data = String;
    fn on_request(
        &mut self,
        req: &silverback::proto::handshake::Request,
        data: &mut String,
        _peer: std::net::SocketAddr,
    ) -> silverback::event::Decision {
        *data = req.header("X-Device").unwrap_or("none").to_owned();
        silverback::event::Decision::accept()
    }
    fn on_open(&mut self, ctx: &mut silverback::event::Ctx<'_, String>) {
        let protocol = ctx.subprotocol().unwrap_or("none").to_owned();
        let text = format!("protocol={protocol} device={}", ctx.data());
        let _ = ctx.send_text(&text);
    }
}

#[test]
fn the_client_example_sends_headers_and_subprotocols() {
    let (h, _) = silverback::event::Server::builder()
        .addr("127.0.0.1:0")
        .subprotocols(["chat.v2", "chat.v1"])
        .build(|_| Introspect)
        .unwrap()
        .spawn()
        .unwrap();
    let url = format!("ws://{}/", h.local_addr());
    let (code, out, err) = run_client(
        &[
            &url,
            "--header",
            "X-Device: gw-42",
            "--subprotocol",
            "chat.v1",
        ],
        "",
        Duration::from_millis(300),
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("protocol=chat.v1 device=gw-42"),
        "{out}\n{err}"
    );
    assert!(err.contains("(subprotocol chat.v1)"), "{err}");
    h.shutdown(Duration::ZERO);
}
