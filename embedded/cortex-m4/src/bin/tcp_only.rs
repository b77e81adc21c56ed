//! The baseline of the two client programs: the same board, network and loop with
//! no WebSocket layer (send "hello" over TCP, read an answer, close). Its size is
//! what smoltcp, the allocator and the runtime cost; the clients' sizes minus this
//! are what their WebSocket layers cost (`embedded/sizes.sh`).
#![no_std]
#![no_main]

extern crate alloc;

use cortex_m_rt::entry;
use panic_halt as _;
use silverback_cortex_m4::{HeapSize, StubDevice, connect, init_heap, local, millis};
use smoltcp::socket::tcp;

#[entry]
fn main() -> ! {
    init_heap(HeapSize::Small);
    let mut dev = StubDevice::new();
    let (mut iface, mut sockets, h) = connect(&mut dev, local());
    let mut tick = 0u32;
    let mut sent = false;
    let mut buf = [0u8; 512];
    loop {
        tick = tick.wrapping_add(1);
        let now = smoltcp::time::Instant::from_millis(i64::from(millis(tick)));
        iface.poll(now, &mut dev, &mut sockets);
        let sock = sockets.get_mut::<tcp::Socket>(h);
        if !sent && sock.may_send() {
            sent = sock.send_slice(b"hello").is_ok();
        }
        if let Ok(n @ 1..) = sock.recv_slice(&mut buf) {
            core::hint::black_box(&buf[..n]);
            sock.close();
            break;
        }
    }
    loop {
        cortex_m::asm::wfi();
    }
}
