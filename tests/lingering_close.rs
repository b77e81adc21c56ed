//! A server that ends a connection while the peer still sends must end it with a
//! FIN, not a reset: closing a socket with unread input makes the kernel reset the
//! connection, and a reset can destroy what the server sent last (its close frame,
//! its final echo) before the peer's application reads it. Python's asyncio streams
//! raise the reset before buffered data, which is how the Autobahn run over TLS saw
//! an echo go missing (case 4.2.5, NON-STRICT).
//!
//! The peer here is a raw socket: it fails the connection with a reserved opcode,
//! reads the server's close (1002), sends more bytes after it (a ping, as in
//! Autobahn's 4.2.5) and then its own FIN. A server that closed without reading
//! those bytes resets the connection, and the peer's read ends in
//! `ConnectionReset`; one that lingers reads them and the peer sees a clean end.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use silverback::Upgrader;

const T: Duration = Duration::from_secs(10);

/// A raw client socket after the opening handshake.
fn handshake(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut b).unwrap(), 1, "handshake answer cut short");
        head.push(b[0]);
        assert!(head.len() < 4096);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    s
}

/// The handshake, then a masked frame with the reserved opcode 15.
fn fail_the_connection(addr: SocketAddr) -> TcpStream {
    let mut s = handshake(addr);
    s.write_all(&[0x8F, 0x80, 1, 2, 3, 4]).unwrap();
    s
}

/// Reads the server's close frame (unmasked, code 1002), sends a ping after it,
/// half-closes, and reads to the end: a clean end is `Ok`, a reset an error.
fn after_the_close(mut s: TcpStream) -> std::io::Result<()> {
    let mut hdr = [0u8; 2];
    s.read_exact(&mut hdr)?;
    assert_eq!(hdr[0], 0x88, "expected a close frame");
    let mut body = vec![0u8; usize::from(hdr[1] & 0x7f)];
    s.read_exact(&mut body)?;
    assert_eq!(&body[..2], &1002u16.to_be_bytes(), "close code");
    // The server has closed (or is closing) the connection when this arrives.
    thread::sleep(Duration::from_millis(50));
    s.write_all(&[0x89, 0x80, 1, 2, 3, 4])?;
    thread::sleep(Duration::from_millis(50));
    s.shutdown(std::net::Shutdown::Write)?;
    let mut rest = Vec::new();
    s.read_to_end(&mut rest)?;
    assert!(rest.is_empty(), "bytes after the close frame: {rest:?}");
    Ok(())
}

#[test]
fn blocking_server_lingers_instead_of_resetting() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        for _ in 0..3 {
            let (stream, _) = listener.accept().unwrap();
            let mut conn = Upgrader::new().upgrade(stream).unwrap();
            let err = conn.read_message().unwrap_err();
            assert_eq!(err.close_code().map(|c| c.as_u16()), Some(1002), "{err}");
            // The connection (and its socket) is dropped here.
        }
    });
    for round in 0..3 {
        let s = fail_the_connection(addr);
        if let Err(e) = after_the_close(s) {
            panic!(
                "round {round}: the server reset the connection: {e} ({:?})",
                e.kind()
            );
        }
    }
    server.join().unwrap();
}
