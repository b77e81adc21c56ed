//! `SO_REUSEPORT` listeners (feature `reuseport`): every loop listens on the same
//! address (port 0 resolved once) and accepts for itself; the kernel spreads the
//! connections. Checked: both loops of a two-loop server get connections, every
//! connection is served by the loop that accepted it, and the per-address limit
//! still counts over both loops.

mod support;

use std::time::Duration;

use silverback::event::{Ctx, Handler, Server};
use silverback::{Dialer, Message};

/// Greets each connection with its loop's number.
struct Which(usize);
impl Handler for Which {
    type Data = ();
    fn on_open(&mut self, ctx: &mut Ctx<'_, ()>) {
        let _ = ctx.send_text(&self.0.to_string());
    }
}

#[test]
fn the_kernel_spreads_connections_over_the_loops() {
    let (h, _) = Server::builder()
        .addr("127.0.0.1:0")
        .workers(2)
        .reuseport(true)
        .build(Which)
        .unwrap()
        .spawn()
        .unwrap();
    let url = format!("ws://{}/", h.local_addr());
    let mut per_loop = [0usize; 2];
    let mut held = Vec::new();
    for _ in 0..200 {
        let (mut c, _) = Dialer::new().dial(&url).unwrap();
        match c.read_message().unwrap() {
            Message::Text(t) => per_loop[t.parse::<usize>().unwrap()] += 1,
            m => panic!("{m:?}"),
        }
        held.push(c);
    }
    println!("connections per loop: {per_loop:?}");
    assert!(per_loop[0] > 20 && per_loop[1] > 20, "{per_loop:?}");
    support::until(|| h.stats().open == 200, "200 open");
    drop(held);
    h.shutdown(Duration::from_secs(1));
}

#[test]
fn the_per_address_limit_counts_over_every_loop() {
    let (h, _) = Server::builder()
        .addr("127.0.0.1:0")
        .workers(2)
        .reuseport(true)
        .max_conns_per_ip(10)
        .build(Which)
        .unwrap()
        .spawn()
        .unwrap();
    let url = format!("ws://{}/", h.local_addr());
    let held: Vec<_> = (0..10).map(|_| Dialer::new().dial(&url).unwrap()).collect();
    for _ in 0..5 {
        assert!(Dialer::new().dial(&url).is_err());
    }
    support::until(|| h.stats().refused_per_ip == 5, "five refusals counted");
    drop(held);
    h.shutdown(Duration::from_secs(1));
}
