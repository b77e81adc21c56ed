//! The `log` feature: accepts, refusals, protocol errors and closes go to the `log`
//! facade under the target `silverback`.

mod support;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use silverback::event::{Ctx, Handler, MessageRef, Server};
use silverback::{CloseCode, Dialer, MessageKind};
use support::*;

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.target() == "silverback"
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            LINES
                .lock()
                .unwrap()
                .push(format!("{} {}", r.level(), r.args()));
        }
    }
    fn flush(&self) {}
}

struct Echo;

impl Handler for Echo {
    type Data = ();
    fn on_message(&mut self, ctx: &mut Ctx<'_, ()>, msg: MessageRef<'_>) {
        let _ = ctx.send(msg.kind, msg.data);
    }
}

fn wait_for_line(what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(l) = LINES.lock().unwrap().iter().find(|l| l.contains(what)) {
            return l.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no log line with {what:?}: {:?}",
            LINES.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn operator_events_are_logged() {
    log::set_logger(&Capture).unwrap();
    log::set_max_level(log::LevelFilter::Debug);
    let server = Server::builder()
        .addr("127.0.0.1:0")
        .build(|_| Echo)
        .unwrap();
    let addr = server.local_addr();
    let (handle, _) = server.spawn().unwrap();
    // An open, an echo and a clean close.
    let (mut c, _) = Dialer::new().dial(&format!("ws://{addr}/")).unwrap();
    c.write_message(MessageKind::Text, b"hi").unwrap();
    c.read_message().unwrap();
    c.close(CloseCode::NORMAL, "done").unwrap();
    assert!(wait_for_line("accepted 127.0.0.1").starts_with("DEBUG"));
    assert!(wait_for_line("closed (1000").starts_with("DEBUG"));
    // A refused upgrade (version 8: 426).
    let mut p = RawPeer::connect(addr);
    p.send(
        format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(p.read_status(), 426);
    assert!(wait_for_line("(426)").starts_with("INFO"));
    // A protocol error from the peer: an unmasked frame from a client.
    let mut p = RawPeer::handshake(addr, "/");
    p.send(&[0x81, 0x02, b'h', b'i']);
    assert!(wait_for_line("failed the connection").starts_with("INFO"));
    handle.shutdown(Duration::ZERO);
}
