//! A client whose write failed still learns why: a server with a 1 MiB read limit
//! closes with 1009 when a larger message's header arrives and closes its socket
//! with the rest unread (the kernel answers the rest with a reset). The client's
//! write fails (broken pipe or reset) part-way, but the server's close frame sits in
//! its socket: reading after the failed write must find it and report 1009, as
//! Python `websockets` and gorilla do. Checked for the blocking `Conn`, its split
//! halves and the event-loop client, against our event-loop server and our
//! blocking server, each message sent as one frame, 10 times per size.

use std::net::{SocketAddr, TcpListener};
use std::thread;
use std::time::{Duration, Instant};

use silverback::event::{Client, Ctx, Handler, Server, ServerHandle};
use silverback::{CloseCode, Dialer, Error, MessageKind, Upgrader};

const LIMIT: u64 = 1 << 20;
const SIZES: [usize; 3] = [(1 << 20) + 1, 2 << 20, 8 << 20];
const RUNS: usize = 10;
const T: Duration = Duration::from_secs(20);

struct Quiet;
impl Handler for Quiet {
    type Data = ();
}

fn loop_server() -> ServerHandle {
    Server::builder()
        .addr("127.0.0.1:0")
        .max_message_size(LIMIT)
        .build(|_| Quiet)
        .unwrap()
        .spawn()
        .unwrap()
        .0
}

/// A blocking server: one thread per connection, reads until the connection ends.
fn blocking_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            thread::spawn(move || {
                let Ok(mut c) = Upgrader::new().max_message_size(LIMIT).upgrade(stream) else {
                    return;
                };
                // Bounded: the connection fails at the first oversized header.
                for _ in 0..16 {
                    if c.read_message().is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// What the reading side finally reported, as a close code.
fn code_of(r: Result<silverback::Message, Error>) -> Result<CloseCode, String> {
    match r {
        Err(Error::Closed(f)) => Ok(f.code),
        other => Err(format!("{other:?}")),
    }
}

fn blocking_client_learns_1009(addr: SocketAddr, size: usize) -> Result<(), String> {
    let (mut c, _) = Dialer::new()
        .dial(&format!("ws://{addr}/"))
        .map_err(|e| e.to_string())?;
    c.set_read_deadline(Some(Instant::now() + T));
    let big = vec![b'x'; size];
    // The write may fail (broken pipe, reset) or, for a message the socket buffers
    // take whole, succeed: either way the answer is in the read.
    let _ = c.write_message(MessageKind::Binary, &big);
    let code = code_of(c.read_message())?;
    if code != CloseCode::MESSAGE_TOO_BIG {
        return Err(format!("close {code}"));
    }
    match c.connection().end() {
        Some(e) if e.code == CloseCode::MESSAGE_TOO_BIG && e.received => Ok(()),
        other => Err(format!("end() = {other:?}")),
    }
}

fn split_client_learns_1009(addr: SocketAddr, size: usize) -> Result<(), String> {
    let (c, _) = Dialer::new()
        .dial(&format!("ws://{addr}/"))
        .map_err(|e| e.to_string())?;
    let (mut rd, mut wr) = c.split();
    rd.set_read_deadline(Some(Instant::now() + T));
    let writer = thread::spawn(move || {
        let big = vec![b'x'; size];
        wr.write_message(MessageKind::Binary, &big).is_err()
    });
    let code = code_of(rd.read_message())?;
    let _ = writer.join();
    if code == CloseCode::MESSAGE_TOO_BIG {
        Ok(())
    } else {
        Err(format!("close {code}"))
    }
}

/// The event-loop client: sends one large message on open, records how it ended.
#[derive(Default)]
struct Sends {
    size: usize,
    closed: Vec<CloseCode>,
}

impl Handler for Sends {
    type Data = ();
    fn on_open(&mut self, ctx: &mut Ctx<'_, ()>) {
        let big = vec![b'x'; self.size];
        let _ = ctx.send(MessageKind::Binary, &big);
    }
    fn on_close(&mut self, _: &mut Ctx<'_, ()>, code: CloseCode, _: &str) {
        self.closed.push(code);
    }
}

fn loop_client_learns_1009(addr: SocketAddr, size: usize) -> Result<(), String> {
    let mut client = Client::builder()
        .build(Sends {
            size,
            ..Sends::default()
        })
        .map_err(|e| e.to_string())?;
    client
        .connect(&format!("ws://{addr}/"), ())
        .map_err(|e| e.to_string())?;
    // Returns once the connection is gone (bounded by the close timeout).
    client.run().map_err(|e| e.to_string())?;
    match client.handler().closed.as_slice() {
        [CloseCode::MESSAGE_TOO_BIG] => Ok(()),
        other => Err(format!("on_close codes {other:?}")),
    }
}

fn check(name: &str, addr: SocketAddr, run: fn(SocketAddr, usize) -> Result<(), String>) {
    let mut failures = Vec::new();
    for size in SIZES {
        for i in 0..RUNS {
            if let Err(e) = run(addr, size) {
                failures.push(format!("{size} bytes, run {i}: {e}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{name}: {} of {} runs did not report 1009:\n{}",
        failures.len(),
        SIZES.len() * RUNS,
        failures.join("\n")
    );
}

#[test]
fn a_blocking_client_reads_the_close_after_its_write_failed() {
    let server = loop_server();
    check(
        "blocking vs loop",
        server.local_addr(),
        blocking_client_learns_1009,
    );
    check(
        "blocking vs blocking",
        blocking_server(),
        blocking_client_learns_1009,
    );
}

#[test]
fn split_halves_read_the_close_after_the_write_half_failed() {
    let server = loop_server();
    check(
        "split vs loop",
        server.local_addr(),
        split_client_learns_1009,
    );
}

#[test]
fn an_event_loop_client_reads_the_close_after_its_write_failed() {
    let server = loop_server();
    check("loop vs loop", server.local_addr(), loop_client_learns_1009);
    check(
        "loop vs blocking",
        blocking_server(),
        loop_client_learns_1009,
    );
}
