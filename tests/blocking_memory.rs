//! A 64 MiB message streamed through `next_writer` → server `next_reader` →
//! `io::copy` → `next_writer` → client `next_reader`, with the heap measured by a
//! counting allocator: peak usage must stay far below the message size.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use silverback::{Dialer, MessageKind, Upgrader};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as System.alloc.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
            PEAK.fetch_max(now, Ordering::SeqCst);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as System.dealloc.
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const SIZE: u64 = 64 << 20;

fn pattern(i: u64) -> u8 {
    (i.wrapping_mul(2654435761) >> 13) as u8
}

#[test]
fn a_64_mib_message_streams_in_bounded_memory() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        let conn = Upgrader::new().upgrade(s).unwrap();
        let (mut rd, mut wr) = conn.split();
        rd.set_read_deadline(Some(Instant::now() + Duration::from_secs(120)));
        let mut r = rd.next_reader().unwrap();
        let mut w = wr.next_writer(r.kind()).unwrap();
        let n = std::io::copy(&mut r, &mut w).unwrap();
        w.close().unwrap();
        n
    });
    let (conn, _) = Dialer::new().dial(&format!("ws://{addr}/")).unwrap();
    let (mut rd, mut wr) = conn.split();
    rd.set_read_deadline(Some(Instant::now() + Duration::from_secs(120)));
    let baseline = CURRENT.load(Ordering::SeqCst);
    PEAK.store(baseline, Ordering::SeqCst);

    let writer = thread::spawn(move || {
        let mut w = wr.next_writer(MessageKind::Binary).unwrap();
        let mut chunk = vec![0u8; 50_000];
        let mut i = 0u64;
        while i < SIZE {
            let n = chunk.len().min((SIZE - i) as usize);
            for (k, b) in chunk[..n].iter_mut().enumerate() {
                *b = pattern(i + k as u64);
            }
            w.write_all(&chunk[..n]).unwrap();
            i += n as u64;
        }
        w.close().unwrap();
        wr
    });
    let mut r = rd.next_reader().unwrap();
    let mut buf = vec![0u8; 40_000];
    let mut got = 0u64;
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        for (k, b) in buf[..n].iter().enumerate() {
            assert_eq!(*b, pattern(got + k as u64), "byte {}", got + k as u64);
        }
        got += n as u64;
    }
    let _wr = writer.join().unwrap();
    assert_eq!(server.join().unwrap(), SIZE);
    assert_eq!(got, SIZE);
    let peak = PEAK.load(Ordering::SeqCst) - baseline;
    println!("peak heap above baseline while streaming 64 MiB: {peak} bytes");
    assert!(peak < 2 << 20, "peak heap {peak} bytes is not bounded");
}
