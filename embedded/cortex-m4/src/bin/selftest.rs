//! silverback's protocol core running on a Cortex-M4 (QEMU's MPS2-AN386 board): a
//! client and a server `Connection` talking through smoltcp's loopback device,
//! with the heap a connection uses read from the allocator at each stage. Prints
//! its report over semihosting and exits 0 when every check held
//! (`embedded/sizes.sh` runs it: `cargo run --release --bin selftest`).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use panic_halt as _;
use rand::SeedableRng;
use rand::rngs::StdRng;
use silverback::proto::handshake::{ClientConfig, ClientHandshake, ServerConfig, ServerHandshake};
use silverback::proto::{
    CloseCode, Connection, Event, MessageKind, Randomness, Shared, State, Time,
};
use silverback_cortex_m4::{HEAP, HeapSize, SERVER, entropy, init_heap, tcp_socket};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Loopback, Medium};
use smoltcp::socket::tcp;
use smoltcp::wire::{HardwareAddress, IpCidr};

const STEPS: usize = 200_000;

struct Net {
    iface: Interface,
    dev: Loopback,
    sockets: SocketSet<'static>,
    ms: u64,
}

impl Net {
    fn poll(&mut self) {
        let t = smoltcp::time::Instant::from_millis(self.ms as i64);
        if self.iface.poll(t, &mut self.dev, &mut self.sockets) == smoltcp::iface::PollResult::None
        {
            self.ms += 1;
        }
    }
    fn now(&self) -> Time {
        Time::from_millis(self.ms)
    }
    fn sock(&mut self, h: SocketHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(h)
    }
    fn recv(&mut self, h: SocketHandle, into: &mut Vec<u8>) {
        let mut buf = [0u8; 512];
        while let Ok(n @ 1..) = self.sock(h).recv_slice(&mut buf) {
            into.extend_from_slice(&buf[..n]);
        }
    }
}

/// One end: socket, connection, received bytes, whole messages and pongs received.
struct End {
    h: SocketHandle,
    conn: Option<Connection>,
    rx: Vec<u8>,
    scratch: Vec<u8>,
    msg: Vec<u8>,
    messages: Vec<Vec<u8>>,
    pongs: usize,
    closes: usize,
}

impl End {
    fn new(h: SocketHandle) -> End {
        End {
            h,
            conn: None,
            rx: Vec::new(),
            scratch: Vec::new(),
            msg: Vec::new(),
            messages: Vec::new(),
            pongs: 0,
            closes: 0,
        }
    }

    fn turn(&mut self, net: &mut Net) {
        let now = net.now();
        net.recv(self.h, &mut self.rx);
        let Some(c) = self.conn.as_mut() else { return };
        while !self.rx.is_empty() {
            let Ok((n, ev)) = c.read(&mut self.rx, &mut self.scratch, now) else {
                break;
            };
            let more = ev.is_some();
            match ev {
                Some(Event::Message(m)) => {
                    self.msg.extend_from_slice(m.data);
                    if m.last {
                        self.messages.push(core::mem::take(&mut self.msg));
                    }
                }
                Some(Event::Pong(_)) => self.pongs += 1,
                Some(Event::Close { .. }) => self.closes += 1,
                _ => {}
            }
            self.rx.drain(..n);
            if !more {
                break;
            }
        }
        let sock = net.sock(self.h);
        let n = sock.send_slice(c.transmit()).unwrap_or(0);
        c.advance_transmit(n);
        if c.transmit().is_empty() && c.should_close_transport() {
            sock.close();
        }
        if !sock.may_recv()
            && sock.state() != tcp::State::Listen
            && sock.state() != tcp::State::SynSent
        {
            c.handle_eof();
        }
    }
}

fn run(
    net: &mut Net,
    a: &mut End,
    b: &mut End,
    mut done: impl FnMut(&mut End, &mut End) -> bool,
) -> bool {
    for _ in 0..STEPS {
        net.poll();
        a.turn(net);
        b.turn(net);
        if done(a, b) {
            return true;
        }
    }
    false
}

fn check(ok: bool, what: &str) {
    if !ok {
        hprintln!("FAILED: {}", what);
        debug::exit(debug::EXIT_FAILURE);
        loop {
            cortex_m::asm::wfi();
        }
    }
}

/// A client and a server connection on sockets `ch` and `sh`, opening handshake done.
fn open(net: &mut Net, ch: SocketHandle, sh: SocketHandle) -> (End, End) {
    let _ = net.sock(sh).listen(SERVER.1);
    let cx = net.iface.context();
    let port = 49_152 + (net.ms % 1000) as u16;
    let _ = net
        .sockets
        .get_mut::<tcp::Socket>(ch)
        .connect(cx, SERVER, port);
    let (mut client, mut server) = (End::new(ch), End::new(sh));
    let mut request = Vec::new();
    let mut chs = ClientHandshake::new(
        Shared::new(ClientConfig::default()),
        "192.168.69.1",
        "/websocket",
        Randomness::from_rng(StdRng::from_seed(entropy())),
        net.now(),
        &mut request,
    );
    let mut shs = Some(ServerHandshake::new(
        Shared::new(ServerConfig::default()),
        net.now(),
    ));
    let mut sent = 0;
    for _ in 0..STEPS {
        net.poll();
        if sent < request.len() {
            sent += net.sock(ch).send_slice(&request[sent..]).unwrap_or(0);
        }
        if let Some(hs) = shs.as_ref() {
            net.recv(sh, &mut server.rx);
            if let Ok(Some((req, len))) = hs.parse(&server.rx) {
                check(hs.check(&req).is_ok(), "the request is an upgrade");
                server.conn = Some(shs.take().unwrap().accept(&req, None, &[], net.now()));
                server.rx.drain(..len);
            }
        } else {
            server.turn(net);
        }
        net.recv(ch, &mut client.rx);
        if let Ok(Some((_resp, len, conn))) = chs.read(&client.rx, net.now()) {
            client.rx.drain(..len);
            client.conn = Some(conn);
            // Both ends settle (the 101 written, nothing queued).
            run(net, &mut client, &mut server, |_, _| false);
            return (client, server);
        }
    }
    check(false, "handshake");
    unreachable!()
}

/// Echoes 1 KiB, a ping and 16 KiB; returns the heap added to the client while
/// the 1 KiB message was queued.
fn traffic(net: &mut Net, client: &mut End, server: &mut End) -> usize {
    let kib = vec![b'x'; 1024];
    let before_send = HEAP.used();
    let _ = client
        .conn
        .as_mut()
        .unwrap()
        .send(MessageKind::Binary, &kib);
    let queued = HEAP.used() - before_send;
    let echoed = run(net, client, server, |c, s| {
        for m in s.messages.drain(..) {
            let _ = s.conn.as_mut().unwrap().send(MessageKind::Binary, &m);
        }
        c.messages.len() == 1
    });
    check(echoed && client.messages[0] == kib, "1 KiB echoed");
    let _ = client.conn.as_mut().unwrap().ping(b"p");
    check(run(net, client, server, |c, _| c.pongs == 1), "pong");
    let big: Vec<u8> = (0..16 * 1024u32).map(|i| (i * 7) as u8).collect();
    let _ = client
        .conn
        .as_mut()
        .unwrap()
        .send(MessageKind::Binary, &big);
    let echoed = run(net, client, server, |c, s| {
        for m in s.messages.drain(..) {
            let _ = s.conn.as_mut().unwrap().send(MessageKind::Binary, &m);
        }
        c.messages.len() == 2
    });
    check(echoed && client.messages[1] == big, "16 KiB echoed");
    run(net, client, server, |_, _| false);
    queued
}

/// The heap a connection holds: what dropping it gives back.
fn held(conn: Option<Connection>) -> usize {
    let before = HEAP.used();
    drop(conn);
    before - HEAP.used()
}

#[entry]
fn main() -> ! {
    init_heap(HeapSize::Large);
    // A client connection on its own, its configuration included.
    let before = HEAP.used();
    let lone = Connection::new(
        silverback::proto::Role::Client,
        Shared::new(silverback::proto::ConnectionConfig::default()),
        Randomness::from_rng(StdRng::from_seed(entropy())),
        Time::ZERO,
    );
    let lone_heap = HEAP.used() - before;
    drop(lone);
    let mut dev = Loopback::new(Medium::Ip);
    let mut iface = Interface::new(
        Config::new(HardwareAddress::Ip),
        &mut dev,
        smoltcp::time::Instant::ZERO,
    );
    iface.update_ip_addrs(|a| {
        let _ = a.push(IpCidr::new(SERVER.0, 24));
    });
    let mut sockets = SocketSet::new(vec![]);
    let sockets_of = [
        (sockets.add(tcp_socket()), sockets.add(tcp_socket())),
        (sockets.add(tcp_socket()), sockets.add(tcp_socket())),
        (sockets.add(tcp_socket()), sockets.add(tcp_socket())),
    ];
    let mut net = Net {
        iface,
        dev,
        sockets,
        ms: 0,
    };

    // Round 1: handshake, traffic, the closing handshake.
    let (ch, sh) = sockets_of[0];
    let (mut client, mut server) = open(&mut net, ch, sh);
    let queued = traffic(&mut net, &mut client, &mut server);
    // The closing handshake, started by the client.
    let now = net.now();
    let _ = client
        .conn
        .as_mut()
        .unwrap()
        .close(now, CloseCode::NORMAL, "bye");
    let closed = run(&mut net, &mut client, &mut server, |c, s| {
        c.conn.as_ref().unwrap().state() == State::Done
            && s.conn.as_ref().unwrap().state() == State::Done
    });
    check(
        closed && server.closes == 1 && client.closes == 1,
        "closing handshake",
    );

    hprintln!("selftest: handshake, 1 KiB and 16 KiB echoed, ping/pong, close: OK");
    hprintln!(
        "heap of a client connection made on its own (its configuration included): {} bytes",
        lone_heap
    );

    // Round 2: what an open connection holds, idle, after the handshake and after
    // traffic (given back when it is dropped).
    let (ch, sh) = sockets_of[1];
    let (c, s) = open(&mut net, ch, sh);
    let (idle_client, idle_server) = (held(c.conn), held(s.conn));
    let (ch, sh) = sockets_of[2];
    let (mut c, mut s) = open(&mut net, ch, sh);
    traffic(&mut net, &mut c, &mut s);
    let (busy_client, busy_server) = (held(c.conn), held(s.conn));
    hprintln!(
        "heap of a client connection, idle after its handshake: {} bytes",
        idle_client
    );
    hprintln!(
        "heap of a server connection, idle after its handshake: {} bytes",
        idle_server
    );
    hprintln!(
        "heap of a client connection, idle after 1 KiB and 16 KiB echoes and a ping: {} bytes",
        busy_client
    );
    hprintln!(
        "heap of a server connection, idle after the same: {} bytes",
        busy_server
    );
    hprintln!(
        "heap added to the client while a 1 KiB message is queued: {} bytes",
        queued
    );
    hprintln!(
        "size of a Connection value: {} bytes",
        core::mem::size_of::<Connection>()
    );
    hprintln!(
        "size of silverback's caller-supplied generator (ChaCha12, boxed in the client connection): {} bytes",
        core::mem::size_of::<StdRng>()
    );
    // The comparison's state: embedded-websocket keeps no heap; its client is this
    // value plus the caller's buffers (3 x 1 KiB in embedded_websocket_client.rs).
    hprintln!(
        "size of an embedded-websocket client value (its ChaCha20 generator included): {} bytes",
        core::mem::size_of::<embedded_websocket::WebSocketClient<rand_chacha_03::ChaCha20Rng>>()
    );
    debug::exit(debug::EXIT_SUCCESS);
    loop {
        cortex_m::asm::wfi();
    }
}
