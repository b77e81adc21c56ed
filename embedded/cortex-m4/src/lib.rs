//! What the programs of this crate share: a board's network (smoltcp over a
//! device), its clock and its entropy, so that the two client programs differ only
//! in their WebSocket layer.
#![no_std]

extern crate alloc;

use alloc::vec;
use core::hint::black_box;
use core::sync::atomic::{AtomicBool, Ordering};

use embedded_alloc::LlffHeap as Heap;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};

/// The heap every program of this crate allocates from (`alloc` needs one).
#[global_allocator]
pub static HEAP: Heap = Heap::empty();

/// How much memory the heap gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeapSize {
    /// 32 KiB: the client programs (their figures in `embedded/sizes.sh`).
    Small,
    /// 256 KiB: the self-test (two connections and 16 KiB messages).
    Large,
}

/// Gives the heap its memory: call it first thing; later calls do nothing.
pub fn init_heap(size: HeapSize) {
    static DONE: AtomicBool = AtomicBool::new(false);
    if DONE.swap(true, Ordering::AcqRel) {
        return;
    }
    match size {
        // SAFETY: runs once (the flag above), before anything allocates; the
        // macro gives the allocator a static array of the size named, which
        // nothing else can reach.
        HeapSize::Small => unsafe {
            embedded_alloc::init!(HEAP, 32 * 1024);
        },
        // SAFETY: as above.
        HeapSize::Large => unsafe {
            embedded_alloc::init!(HEAP, 256 * 1024);
        },
    }
}

/// The server the clients talk to.
pub const SERVER: (IpAddress, u16) = (IpAddress::v4(192, 168, 69, 1), 80);
/// The board's address.
pub fn local() -> IpCidr {
    IpCidr::new(IpAddress::v4(192, 168, 69, 2), 24)
}
/// The size of each TCP socket buffer.
pub const SOCKET_BUFFER: usize = 2048;

/// A network device standing in for a board's Ethernet MAC: what it receives is
/// opaque to the compiler (so nothing that handles received bytes is optimized
/// away), what it transmits is dropped. For measuring code size, not for running.
pub struct StubDevice {
    rx: [u8; 1500],
    tx: [u8; 1500],
}

impl StubDevice {
    /// A device with empty buffers.
    pub const fn new() -> Self {
        StubDevice {
            rx: [0; 1500],
            tx: [0; 1500],
        }
    }
}

impl Default for StubDevice {
    fn default() -> Self {
        Self::new()
    }
}

/// A received packet.
pub struct StubRx<'a>(&'a [u8]);
/// Room for a packet to send.
pub struct StubTx<'a>(&'a mut [u8]);

impl RxToken for StubRx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(black_box(self.0))
    }
}

impl TxToken for StubTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let r = f(&mut self.0[..len]);
        black_box(&self.0[..len]);
        r
    }
}

impl Device for StubDevice {
    type RxToken<'a> = StubRx<'a>;
    type TxToken<'a> = StubTx<'a>;

    fn receive(&mut self, _: Instant) -> Option<(StubRx<'_>, StubTx<'_>)> {
        let len = black_box(0usize).min(self.rx.len());
        if len == 0 {
            return None;
        }
        Some((StubRx(&self.rx[..len]), StubTx(&mut self.tx)))
    }

    fn transmit(&mut self, _: Instant) -> Option<StubTx<'_>> {
        Some(StubTx(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = 1500;
        caps
    }
}

/// A TCP socket with [`SOCKET_BUFFER`]-byte buffers on the heap.
pub fn tcp_socket() -> tcp::Socket<'static> {
    tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; SOCKET_BUFFER]),
        tcp::SocketBuffer::new(vec![0; SOCKET_BUFFER]),
    )
}

/// The interface on `dev` at `addr`, its socket set, and a socket connecting to
/// [`SERVER`].
pub fn connect(
    dev: &mut impl Device,
    addr: IpCidr,
) -> (Interface, SocketSet<'static>, SocketHandle) {
    let mut iface = Interface::new(Config::new(HardwareAddress::Ip), dev, Instant::ZERO);
    iface.update_ip_addrs(|a| {
        let _ = a.push(addr);
    });
    let mut sockets = SocketSet::new(vec![]);
    let h = sockets.add(tcp_socket());
    let cx = iface.context();
    let _ = sockets
        .get_mut::<tcp::Socket>(h)
        .connect(cx, SERVER, 49_152);
    (iface, sockets, h)
}

/// The board's millisecond tick (a SysTick counter on a real board; here one tick
/// per loop iteration, opaque to the compiler). Wraps around like the real one.
pub fn millis(iteration: u32) -> u32 {
    black_box(iteration)
}

/// 32 bytes from the board's entropy source: on a real board its RNG peripheral
/// (STM32 RNG, nRF RNG, ESP32 RNG), never a constant. The stand-in here is opaque
/// to the compiler, for code size only.
pub fn entropy() -> [u8; 32] {
    black_box([0x5a; 32])
}
