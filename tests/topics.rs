//! Topics in the event loop over real loopback sockets: subscribe and unsubscribe,
//! subscriptions dropped with the connection, publishes from a callback, the server
//! handle and other threads reaching every loop with one post each, a subscriber
//! that never reads not holding up the others, and permessage-deflate subscribers
//! with and without context takeover (one compression per setting).

mod support;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::thread;
use std::time::Duration;

use silverback::event::{Ctx, Decision, Handler, MessageRef, Prepared, Server, ServerHandle};
use silverback::proto::handshake::Request;
use silverback::{CloseCode, Conn, Dialer};
use support::*;

/// Subscribes to the topics of `?topics=a,b` on open; answers the commands
/// `sub T`, `unsub T`, `topics` and `pub T TEXT` (a publish from a callback).
struct Rooms;

impl Handler for Rooms {
    type Data = Vec<String>;

    fn on_request(&mut self, req: &Request, topics: &mut Vec<String>, _: SocketAddr) -> Decision {
        if let Some(t) = req.query_param("topics") {
            *topics = t
                .split(',')
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect();
        }
        Decision::accept()
    }

    fn on_open(&mut self, ctx: &mut Ctx<'_, Vec<String>>) {
        for t in ctx.data().clone() {
            assert_eq!(ctx.subscribe(&t).ok(), Some(true));
        }
        let _ = ctx.send_text("ready");
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Vec<String>>, msg: MessageRef<'_>) {
        let text = String::from_utf8_lossy(msg.data).into_owned();
        let mut words = text.splitn(3, ' ');
        let answer = match (words.next(), words.next(), words.next()) {
            (Some("sub"), Some(t), None) => format!("sub {t} {}", ctx.subscribe(t).unwrap()),
            (Some("unsub"), Some(t), None) => format!("unsub {t} {}", ctx.unsubscribe(t)),
            (Some("topics"), None, None) => {
                let mut all: Vec<&str> = ctx.topics().collect();
                all.sort_unstable();
                assert!(all.iter().all(|t| ctx.is_subscribed(t)));
                format!("topics {}", all.join(","))
            }
            (Some("pub"), Some(t), Some(body)) => {
                ctx.publish(t, &Prepared::text(body));
                return;
            }
            _ => format!("unknown {text}"),
        };
        let _ = ctx.send_text(&answer);
    }
}

fn rooms(workers: usize) -> ServerHandle {
    Server::builder()
        .addr("127.0.0.1:0")
        .workers(workers)
        .build(|_| Rooms)
        .unwrap()
        .spawn()
        .unwrap()
        .0
}

fn join(addr: SocketAddr, topics: &str) -> Conn<std::net::TcpStream> {
    join_with(Dialer::new(), addr, topics)
}

fn join_with(d: Dialer, addr: SocketAddr, topics: &str) -> Conn<std::net::TcpStream> {
    let (mut c, _) = d.dial(&format!("ws://{addr}/?topics={topics}")).unwrap();
    c.get_ref()
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    assert_eq!(next(&mut c), "ready");
    c
}

fn next(c: &mut Conn<std::net::TcpStream>) -> String {
    c.read_message()
        .unwrap()
        .as_text()
        .expect("a text message")
        .to_owned()
}

fn ask(c: &mut Conn<std::net::TcpStream>, command: &str) -> String {
    c.write_message(silverback::MessageKind::Text, command.as_bytes())
        .unwrap();
    next(c)
}

#[test]
fn a_publish_reaches_exactly_the_subscribers_of_its_topic() {
    let server = rooms(1);
    let addr = server.local_addr();
    let mut a = join(addr, "news");
    let mut b = join(addr, "news,sport");
    let mut c = join(addr, "");
    assert_eq!(ask(&mut b, "topics"), "topics news,sport");
    assert_eq!(ask(&mut c, "topics"), "topics ");

    server.publish("news", &Prepared::text("n1"));
    server.publish("sport", &Prepared::text("s1"));
    server.publish("weather", &Prepared::text("nobody listens"));
    // The mailbox keeps order: the broadcast arrives after the publishes.
    server.broadcast(&Prepared::text("end"));
    assert_eq!(next(&mut a), "n1");
    assert_eq!(next(&mut a), "end");
    assert_eq!(next(&mut b), "n1");
    assert_eq!(next(&mut b), "s1");
    assert_eq!(next(&mut b), "end");
    assert_eq!(next(&mut c), "end", "no topic, no publish");

    // Subscribing twice is one subscription; unsubscribing ends it.
    assert_eq!(ask(&mut c, "sub sport"), "sub sport true");
    assert_eq!(ask(&mut c, "sub sport"), "sub sport false");
    assert_eq!(ask(&mut b, "unsub sport"), "unsub sport true");
    assert_eq!(ask(&mut b, "unsub sport"), "unsub sport false");
    assert_eq!(ask(&mut a, "unsub nothing"), "unsub nothing false");

    // A publish from a callback: the publisher gets it too when subscribed.
    a.write_message(silverback::MessageKind::Text, b"pub news n2")
        .unwrap();
    assert_eq!(next(&mut a), "n2");
    assert_eq!(next(&mut b), "n2");
    a.write_message(silverback::MessageKind::Text, b"pub sport s2")
        .unwrap();
    assert_eq!(next(&mut c), "s2", "once, though it subscribed twice");
    server.broadcast(&Prepared::text("end2"));
    assert_eq!(next(&mut a), "end2", "a is not in sport");
    assert_eq!(next(&mut b), "end2", "b left sport");
    assert_eq!(next(&mut c), "end2");

    until(
        || {
            let s = server.stats();
            s.subscriptions == 3 && s.publishes == 5 && s.publish_deliveries == 6
        },
        "subscriptions, publishes and deliveries counted",
    );
    let metrics = server.stats().prometheus("sb");
    assert!(metrics.contains("sb_subscriptions 3\n"), "{metrics}");
    assert!(
        metrics.contains("sb_publish_deliveries_total 6\n"),
        "{metrics}"
    );
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn a_closed_connection_loses_its_subscriptions() {
    let server = rooms(1);
    let addr = server.local_addr();
    let mut keep = join(addr, "x,y");
    let mut leave = join(addr, "x,y,z");
    until(|| server.stats().subscriptions == 5, "5 subscriptions");
    leave.close(CloseCode::NORMAL, "bye").unwrap();
    while leave.read_message().is_ok() {}
    until(
        || server.stats().subscriptions == 2,
        "the closed one's 3 dropped",
    );
    // A new connection may take the closed one's slot: it inherits nothing.
    let mut fresh = join(addr, "");
    server.publish("x", &Prepared::text("x1"));
    server.publish("z", &Prepared::text("z1"));
    server.broadcast(&Prepared::text("end"));
    assert_eq!(next(&mut keep), "x1");
    assert_eq!(next(&mut keep), "end");
    assert_eq!(next(&mut fresh), "end");
    until(
        || server.stats().publish_deliveries == 1,
        "one delivery: z has no subscriber left",
    );
    // Dropped without a closing handshake: the same.
    drop(keep);
    until(
        || server.stats().subscriptions == 0,
        &format!("every subscription gone: {:?}", server.stats()),
    );
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn publishes_cross_loops_with_one_post_per_loop_from_any_source() {
    const LOOPS: usize = 4;
    const CLIENTS: usize = 40;
    const EACH: usize = 10;
    let server = rooms(LOOPS);
    let addr = server.local_addr();
    let mut clients: Vec<_> = (0..CLIENTS).map(|_| join(addr, "all")).collect();
    until(
        || server.loop_stats().iter().all(|s| s.subscriptions > 0),
        "subscribers on every loop",
    );
    let publisher = server.publisher();
    let from_thread = thread::spawn(move || {
        for i in 0..EACH {
            publisher
                .publish("all", &Prepared::text(&format!("thread {i}")))
                .unwrap();
        }
    });
    for i in 0..EACH {
        server.publish("all", &Prepared::text(&format!("handle {i}")));
        let c = &mut clients[0];
        c.write_message(
            silverback::MessageKind::Text,
            format!("pub all ctx {i}").as_bytes(),
        )
        .unwrap();
    }
    from_thread.join().unwrap();
    for c in &mut clients {
        let mut got: Vec<String> = (0..3 * EACH).map(|_| next(c)).collect();
        // Each source's publishes arrive in the order it made them.
        for source in ["thread", "handle", "ctx"] {
            let seq: Vec<&String> = got.iter().filter(|m| m.starts_with(source)).collect();
            let want: Vec<String> = (0..EACH).map(|i| format!("{source} {i}")).collect();
            assert_eq!(seq, want.iter().collect::<Vec<_>>(), "{source}");
        }
        got.sort();
        let unique: HashSet<&String> = got.iter().collect();
        assert_eq!(unique.len(), 3 * EACH, "no duplicates");
    }
    until(
        || {
            server
                .loop_stats()
                .iter()
                .all(|s| s.publishes == (3 * EACH) as u64)
                && server.stats().publish_deliveries == (3 * EACH * CLIENTS) as u64
        },
        "every loop ran each publish once; one delivery per subscriber",
    );
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn a_subscriber_that_never_reads_does_not_hold_up_the_others() {
    const LIMIT: usize = 256 * 1024;
    const MSGS: usize = 400;
    let (server, _) = Server::builder()
        .addr("127.0.0.1:0")
        .max_output_buffer(LIMIT)
        .build(|_| Rooms)
        .unwrap()
        .spawn()
        .unwrap();
    let addr = server.local_addr();
    // Subscribes, then never reads again.
    let mut slow = RawPeer::handshake(addr, "/?topics=feed");
    let _ = slow.read_frame();
    let readers: Vec<_> = (0..8)
        .map(|_| {
            let mut c = join(addr, "feed");
            thread::spawn(move || {
                for i in 0..MSGS {
                    let m = c.read_message().unwrap();
                    assert_eq!(m.len(), 16 * 1024);
                    assert_eq!(&m.as_bytes()[..8], &(i as u64).to_be_bytes());
                }
            })
        })
        .collect();
    until(|| server.stats().subscriptions == 9, "9 subscribers");
    let publisher = server.publisher();
    for i in 0..MSGS {
        let mut body = vec![b'.'; 16 * 1024];
        body[..8].copy_from_slice(&(i as u64).to_be_bytes());
        // Never blocks, however full the slow subscriber is.
        publisher.publish("feed", &Prepared::binary(&body)).unwrap();
        thread::sleep(Duration::from_millis(1));
    }
    for r in readers {
        r.join()
            .expect("every reading subscriber got every message in order");
    }
    let s = server.stats();
    assert!(
        s.backpressure_pauses >= 1,
        "the slow subscriber was paused: {s:?}"
    );
    assert!(
        s.publish_deliveries < (9 * MSGS) as u64,
        "the paused one missed messages instead of queueing them all: {s:?}"
    );
    assert!(
        s.output_queued <= (LIMIT + 17 * 1024) as u64,
        "its queue stayed within the limit: {s:?}"
    );
    server.shutdown(Duration::ZERO);
}

#[cfg(feature = "deflate")]
#[test]
fn deflate_subscribers_share_one_compression_per_setting_unless_they_keep_context() {
    use silverback::proto::deflate::DeflateConfig;
    let (server, _) = Server::builder()
        .addr("127.0.0.1:0")
        .deflate(DeflateConfig::default())
        .build(|_| Rooms)
        .unwrap()
        .spawn()
        .unwrap();
    let addr = server.local_addr();
    let offer = |cfg: DeflateConfig| Dialer::new().deflate(cfg);
    let mut clients = Vec::new();
    // 6 without context takeover at the default window, 4 with a 10-bit window,
    // 5 with context takeover, 2 without permessage-deflate.
    for _ in 0..6 {
        let d = offer(DeflateConfig::default().server_no_context_takeover(true));
        clients.push(join_with(d, addr, "z"));
    }
    for _ in 0..4 {
        let d = offer(
            DeflateConfig::default()
                .server_no_context_takeover(true)
                .server_max_window_bits(Some(10)),
        );
        clients.push(join_with(d, addr, "z"));
    }
    for _ in 0..5 {
        clients.push(join_with(offer(DeflateConfig::default()), addr, "z"));
    }
    for _ in 0..2 {
        clients.push(join(addr, "z"));
    }
    let messages: Vec<Prepared> = (0..5)
        .map(|i| {
            let text: String = (0..200)
                .map(|j| format!("{{\"n\":{i},\"row\":{j},\"price\":{}}}", j * 7 + i))
                .collect();
            Prepared::text(&text)
        })
        .collect();
    for m in &messages {
        server.publish("z", m);
    }
    for c in &mut clients {
        for m in &messages {
            let got = c.read_message().unwrap();
            assert_eq!(got.as_bytes(), m.payload(), "byte-exact after inflation");
        }
    }
    for m in &messages {
        // One per window size without takeover (2), one per takeover subscriber (5).
        assert_eq!(m.compressions(), 2 + 5);
    }
    // A short message is sent uncompressed: no compression at all.
    let short = Prepared::text("hi");
    server.publish("z", &short);
    for c in &mut clients {
        assert_eq!(next(c), "hi");
    }
    assert_eq!(short.compressions(), 0);
    server.shutdown(Duration::from_secs(1));
}
