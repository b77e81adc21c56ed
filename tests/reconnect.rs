//! Reconnecting clients: the event loop's `ClientBuilder::reconnect` against a
//! server process killed (SIGKILL: no close frame) and restarted on the same
//! port, the offline queue and its bound, the application's close ending a
//! session, a backoff that gives up; and the blocking `Reconnector`.

mod support;

use std::net::TcpStream;
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use silverback::blocking::Reconnector;
use silverback::event::{Client, Ctx, Handler, MessageRef, Sender};
use silverback::{Backoff, CloseCode, Dialer, Error, Message, MessageKind};
use support::Child;

const T: Duration = Duration::from_secs(20);

/// examples/echo on `127.0.0.1:port`, once it accepts.
fn echo_on(port: u16) -> Child {
    let child = Child(
        Command::new(support::example("echo"))
            .args(["--addr", &format!("127.0.0.1:{port}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + T;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "echo did not listen on {port}");
        thread::sleep(Duration::from_millis(10));
    }
    child
}

/// What the client loop reports to the test thread.
#[derive(Debug)]
enum Ev {
    Open { reconnects: u32, at: Instant },
    Closed { will_reconnect: bool },
    Message(String),
    Error(String),
}

/// Resubscribes in every `on_open`, hands its first `Sender` out, reports
/// everything; closes itself on the message "bye".
struct Device {
    tx: mpsc::Sender<Ev>,
    senders: Option<mpsc::Sender<Sender>>,
}

impl Handler for Device {
    type Data = ();
    fn on_open(&mut self, ctx: &mut Ctx<'_, ()>) {
        let _ = self.tx.send(Ev::Open {
            reconnects: ctx.reconnects(),
            at: Instant::now(),
        });
        ctx.send_text(&format!("subscribe #{}", ctx.reconnects()))
            .unwrap();
        if let Some(s) = self.senders.take() {
            let _ = s.send(ctx.sender());
        }
    }
    fn on_message(&mut self, ctx: &mut Ctx<'_, ()>, msg: MessageRef<'_>) {
        let text = String::from_utf8_lossy(msg.data).into_owned();
        if text == "bye" {
            let _ = ctx.close(CloseCode::NORMAL, "done");
        }
        let _ = self.tx.send(Ev::Message(text));
    }
    fn on_error(&mut self, _ctx: &mut Ctx<'_, ()>, err: &Error) {
        let _ = self.tx.send(Ev::Error(err.to_string()));
    }
    fn on_close(&mut self, ctx: &mut Ctx<'_, ()>, _code: CloseCode, _reason: &str) {
        let _ = self.tx.send(Ev::Closed {
            will_reconnect: ctx.will_reconnect(),
        });
    }
}

struct Running {
    events: mpsc::Receiver<Ev>,
    sender: Sender,
    loop_thread: thread::JoinHandle<()>,
}

fn start_client(url: String, backoff: Backoff, queue: usize) -> Running {
    let (tx, events) = mpsc::channel();
    let (stx, srx) = mpsc::channel();
    let loop_thread = thread::spawn(move || {
        let mut client = Client::builder()
            .handshake_timeout(Duration::from_secs(2))
            .reconnect(backoff)
            .offline_queue(queue)
            .build(Device {
                tx,
                senders: Some(stx),
            })
            .unwrap();
        client.connect(&url, ()).unwrap();
        let guard = client.handle();
        let watchdog = thread::spawn(move || {
            thread::sleep(T * 2);
            guard.shutdown(Duration::ZERO);
        });
        client.run().unwrap();
        drop(watchdog);
    });
    let sender = srx.recv_timeout(T).expect("the first connection opened");
    Running {
        events,
        sender,
        loop_thread,
    }
}

/// The next event that `want` accepts (others are skipped), within `T`.
fn next(events: &mpsc::Receiver<Ev>, what: &str, want: impl Fn(&Ev) -> bool) -> Ev {
    let deadline = Instant::now() + T;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(e) if want(&e) => return e,
            Ok(_) => {}
            Err(_) => panic!("no {what} within {T:?}"),
        }
    }
}

fn message(events: &mpsc::Receiver<Ev>, text: &str) {
    next(events, text, |e| matches!(e, Ev::Message(m) if m == text));
}

#[test]
fn a_killed_and_restarted_server_gets_its_client_back() {
    let port = support::free_port();
    let mut server = echo_on(port);
    let backoff = Backoff::new()
        .initial(Duration::from_millis(100))
        .max_delay(Duration::from_millis(400));
    let r = start_client(
        format!("ws://127.0.0.1:{port}/websocket"),
        backoff.clone(),
        64 * 1024,
    );
    message(&r.events, "subscribe #0");
    r.sender.send_text("first").unwrap();
    message(&r.events, "first");

    // SIGKILL: no close frame, the socket just goes.
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    let closed = next(&r.events, "on_close", |e| matches!(e, Ev::Closed { .. }));
    assert!(matches!(
        closed,
        Ev::Closed {
            will_reconnect: true
        }
    ));
    // Sent while away: queued, and the same Sender still works.
    assert!(r.sender.is_alive());
    r.sender.send_text("while away").unwrap();
    thread::sleep(Duration::from_millis(600));
    let restarted = Instant::now();
    let _server = echo_on(port);
    let Ev::Open { reconnects, at } = next(&r.events, "reopen", |e| matches!(e, Ev::Open { .. }))
    else {
        unreachable!()
    };
    assert_eq!(reconnects, 1);
    let back = at.saturating_duration_since(restarted);
    println!("back {back:?} after the restart");
    // Within the largest window (400 ms) and the handshake.
    assert!(
        back < Duration::from_millis(400 + 600),
        "back after {back:?}"
    );
    // The resubscription first, then what was queued while away.
    message(&r.events, "subscribe #1");
    message(&r.events, "while away");
    r.sender.send_text("bye").unwrap();
    message(&r.events, "bye");
    let closed = next(&r.events, "final on_close", |e| {
        matches!(e, Ev::Closed { .. })
    });
    assert!(matches!(
        closed,
        Ev::Closed {
            will_reconnect: false
        }
    ));
    // The application closed it: no more attempts, the loop ends.
    r.loop_thread.join().unwrap();
    assert!(!r.sender.is_alive());
    assert!(matches!(
        r.sender.send_text("after"),
        Err(Error::AlreadyClosed)
    ));
}

#[test]
fn the_offline_queue_is_bounded_and_a_backoff_gives_up() {
    let port = support::free_port();
    let mut server = echo_on(port);
    let backoff = Backoff::new()
        .initial(Duration::from_millis(20))
        .max_delay(Duration::from_millis(50))
        .max_attempts(Some(4));
    let r = start_client(format!("ws://127.0.0.1:{port}/websocket"), backoff, 10);
    message(&r.events, "subscribe #0");
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    next(&r.events, "on_close", |e| {
        matches!(
            e,
            Ev::Closed {
                will_reconnect: true
            }
        )
    });
    r.sender.send_text("0123456789").unwrap(); // 10 bytes: fits
    r.sender.send_text("x").unwrap(); // over the bound: refused
    let e = next(
        &r.events,
        "the refusal",
        |e| matches!(e, Ev::Error(m) if m.contains("queue full")),
    );
    println!("refused: {e:?}");
    // Four attempts, each refused by the closed port, then the end.
    let mut attempts = 0;
    while let Ev::Closed {
        will_reconnect: true,
    } = next(&r.events, "on_close", |e| matches!(e, Ev::Closed { .. }))
    {
        attempts += 1;
        assert!(attempts < 100, "the backoff never gave up");
    }
    assert_eq!(attempts, 3, "three more attempts after the first failure");
    r.loop_thread.join().unwrap();
    assert!(!r.sender.is_alive());
}

#[test]
fn the_blocking_reconnector_backs_off_and_resets() {
    let port = support::free_port();
    let url = format!("ws://127.0.0.1:{port}/websocket");
    let backoff = Backoff::new()
        .initial(Duration::from_millis(50))
        .max_delay(Duration::from_millis(200))
        .max_elapsed(Some(Duration::from_secs(10)));
    let mut r = Reconnector::new(Dialer::new(), &url, backoff);
    support::example("echo"); // built before the clock starts
    // The server comes up 500 ms after the first attempt: the reconnector keeps
    // trying, within its windows.
    let starter = thread::spawn(move || {
        thread::sleep(Duration::from_millis(500));
        echo_on(port)
    });
    let t0 = Instant::now();
    let (mut c, _) = r.connect().unwrap();
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(450), "{took:?}");
    assert!(took < Duration::from_millis(500 + 200 + 500), "{took:?}");
    assert!(r.failures() >= 2, "{} failures", r.failures());
    c.write_message(MessageKind::Text, b"hi").unwrap();
    assert_eq!(c.read_message().unwrap(), Message::Text("hi".into()));
    let mut server = starter.join().unwrap();
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    drop(c);
    // Down again, for good: it gives up once max_elapsed has passed.
    let mut r = Reconnector::new(
        Dialer::new(),
        &url,
        Backoff::new()
            .initial(Duration::from_millis(10))
            .max_delay(Duration::from_millis(20))
            .max_elapsed(Some(Duration::from_millis(300))),
    );
    let t0 = Instant::now();
    assert!(r.connect().is_err());
    assert!(t0.elapsed() >= Duration::from_millis(300) && t0.elapsed() < T);
}
