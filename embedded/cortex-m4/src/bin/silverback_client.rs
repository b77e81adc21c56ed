//! The minimal client on silverback's protocol core: opening handshake, one text
//! message sent, one received, the closing handshake; over smoltcp. Built for its
//! size (`embedded/sizes.sh`); the same program on embedded-websocket is
//! `embedded_websocket_client.rs`.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;

use cortex_m_rt::entry;
use panic_halt as _;
use rand::SeedableRng;
use rand::rngs::StdRng;
use silverback::proto::handshake::{ClientConfig, ClientHandshake};
use silverback::proto::{
    CloseCode, Connection, Event, MessageKind, MillisTick, Randomness, Shared,
};
use silverback_cortex_m4::{HeapSize, StubDevice, connect, entropy, init_heap, local, millis};
use smoltcp::socket::tcp;

#[entry]
fn main() -> ! {
    init_heap(HeapSize::Small);

    let mut dev = StubDevice::new();
    let (mut iface, mut sockets, h) = connect(&mut dev, local());
    let mut clock = MillisTick::new();
    let mut tick = 0u32;

    let rng = Randomness::from_rng(StdRng::from_seed(entropy()));
    let mut request = Vec::new();
    let mut handshake = Some(ClientHandshake::new(
        Shared::new(ClientConfig::default()),
        "192.168.69.1",
        "/websocket",
        rng,
        clock.time(millis(tick)),
        &mut request,
    ));
    let mut request_sent = 0;
    let mut conn: Option<Connection> = None;
    let (mut rx, mut scratch) = (Vec::new(), Vec::new());
    let mut buf = [0u8; 512];
    loop {
        tick = tick.wrapping_add(1);
        let now = clock.time(millis(tick));
        iface.poll(
            smoltcp::time::Instant::from_millis(now.as_nanos() / 1_000_000),
            &mut dev,
            &mut sockets,
        );
        let sock = sockets.get_mut::<tcp::Socket>(h);
        while let Ok(n @ 1..) = sock.recv_slice(&mut buf) {
            rx.extend_from_slice(&buf[..n]);
        }
        if let Some(hs) = handshake.as_mut() {
            if request_sent < request.len() && sock.may_send() {
                request_sent += sock.send_slice(&request[request_sent..]).unwrap_or(0);
            }
            match hs.read(&rx, now) {
                Ok(Some((_response, len, mut c))) => {
                    rx.drain(..len);
                    let _ = c.send(MessageKind::Text, b"hello");
                    conn = Some(c);
                    handshake = None;
                }
                Ok(None) => {}
                Err(_) => break,
            }
            if hs_timed_out(handshake.as_ref(), now) {
                break;
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let mut reply = false;
        while !rx.is_empty() {
            match c.read(&mut rx, &mut scratch, now) {
                Ok((n, ev)) => {
                    let got = matches!(ev, Some(Event::Message(ref m)) if m.last);
                    let more = ev.is_some();
                    rx.drain(..n);
                    reply |= got;
                    if !more {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        if reply {
            let _ = c.close(now, CloseCode::NORMAL, "");
        }
        if c.poll_deadline().is_some_and(|d| d <= now) {
            let _ = c.handle_timeout(now);
        }
        let n = sock.send_slice(c.transmit()).unwrap_or(0);
        c.advance_transmit(n);
        if !sock.may_recv() {
            c.handle_eof();
        }
        if c.state().is_done() {
            sock.close();
            break;
        }
    }
    loop {
        cortex_m::asm::wfi();
    }
}

fn hs_timed_out(hs: Option<&ClientHandshake>, now: silverback::proto::Time) -> bool {
    hs.is_some_and(|hs| hs.handle_timeout(now).is_err())
}
