//! A blocking TLS stream two threads can use at once: one reads while the other
//! writes, as [`Conn::split`](crate::Conn::split) needs. rustls keeps one state
//! machine for both directions, so it sits behind a lock that is held only to
//! hand it bytes or take bytes from it, never across a socket call: a reader
//! blocked on a quiet peer does not stop the writer, and a writer blocked on a
//! slow peer does not stop the reader (whose pongs go out between the writer's
//! frames, as on plain TCP).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::ops::DerefMut;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rustls::{ConnectionCommon, SideData, StreamOwned};

/// Ciphertext read from the socket per call.
const CHUNK: usize = 16 * 1024;

struct State<C> {
    conn: C,
    /// Ciphertext received and not yet taken by rustls (it takes records while no
    /// plaintext is waiting).
    incoming: Vec<u8>,
}

/// A TLS connection whose halves can be used from two threads through `&`
/// ([`Read`] and [`Write`] are implemented for `&SharedTls`). Made from a
/// handshaken [`ClientStream`](super::ClientStream) or
/// [`ServerStream`](super::ServerStream) by [`Conn::split_tls`](crate::Conn::split_tls).
///
/// A write hands the plaintext to rustls and writes the records; what the
/// socket does not take before the write deadline stays queued and goes out
/// first on the next write, flush or shutdown, so the stream stays whole.
pub struct SharedTls<C> {
    state: Mutex<State<C>>,
    sock: TcpStream,
    /// Records waiting for the socket. Its lock orders writers (records must not
    /// interleave) and is taken before the state's, never after.
    wire: Mutex<Vec<u8>>,
}

/// [`SharedTls`] over a client connection.
pub type SharedClientStream = SharedTls<rustls::ClientConnection>;
/// [`SharedTls`] over a server connection.
pub type SharedServerStream = SharedTls<rustls::ServerConnection>;

impl<C> std::fmt::Debug for SharedTls<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedTls")
            .field("sock", &self.sock)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<C, D> SharedTls<C>
where
    C: DerefMut<Target = ConnectionCommon<D>>,
    D: SideData,
{
    /// Takes over a handshaken stream.
    pub fn new(stream: StreamOwned<C, TcpStream>) -> Self {
        SharedTls {
            state: Mutex::new(State {
                conn: stream.conn,
                incoming: Vec::new(),
            }),
            sock: stream.sock,
            wire: Mutex::new(Vec::new()),
        }
    }

    /// The TCP socket underneath.
    pub fn get_ref(&self) -> &TcpStream {
        &self.sock
    }

    /// Moves what rustls has to send behind `wire` and writes `wire` to the
    /// socket; what the socket does not take stays in `wire`.
    fn send(&self, wire: &mut Vec<u8>) -> io::Result<()> {
        {
            let mut st = lock(&self.state);
            while st.conn.wants_write() {
                if st.conn.write_tls(wire)? == 0 {
                    break;
                }
            }
        }
        let mut sent = 0;
        let r = loop {
            if sent == wire.len() {
                break Ok(());
            }
            match (&self.sock).write(&wire[sent..]) {
                Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        wire.drain(..sent);
        r
    }

    /// Plaintext for `buf` if rustls has some (`Ok(None)`: it needs ciphertext).
    /// Feeds rustls from `incoming` as it goes.
    fn take_plaintext(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let mut st = lock(&self.state);
        let State { conn, incoming } = &mut *st;
        // Bounded: each round returns or hands rustls some of `incoming`.
        loop {
            match conn.reader().read(buf) {
                Ok(n) => return Ok(Some(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if incoming.is_empty() {
                return Ok(None);
            }
            let mut rd = &incoming[..];
            let used = conn.read_tls(&mut rd)?;
            incoming.drain(..used);
            if let Err(e) = conn.process_new_packets() {
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            if used == 0 {
                // rustls takes records whenever no plaintext waits (none does
                // here): refusing them would let `incoming` grow without bound.
                return Err(io::Error::other("TLS: received records not taken"));
            }
        }
    }
}

impl<C, D> Read for &SharedTls<C>
where
    C: DerefMut<Target = ConnectionCommon<D>>,
    D: SideData,
{
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // Bounded: each round returns or reads the socket (which blocks until
        // the peer sends, closes or the read deadline passes).
        loop {
            let plain = self.take_plaintext(buf);
            // What rustls produced meanwhile (an alert, a key update's answer)
            // goes out now if no write is under way; a writer (perhaps blocked on
            // a full socket: the reader must not wait for it) sends it with its
            // next records. A failure to send is the next write's to report.
            if lock(&self.state).conn.wants_write()
                && let Ok(mut wire) = self.wire.try_lock()
            {
                let _ = self.send(&mut wire);
            }
            if let Some(n) = plain? {
                return Ok(n);
            }
            // On the stack, and only when the socket must be read: a read served
            // from plaintext rustls already holds allocates nothing.
            let mut chunk = [0u8; CHUNK];
            let n = loop {
                match (&self.sock).read(&mut chunk) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    r => break r?,
                }
            };
            let mut st = lock(&self.state);
            if n == 0 {
                // The peer's TCP close: rustls says whether close_notify came
                // first (a clean end, `Ok(0)`) or not (`UnexpectedEof`).
                st.conn.read_tls(&mut io::empty())?;
                if let Err(e) = st.conn.process_new_packets() {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
                return match st.conn.reader().read(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        Err(io::ErrorKind::UnexpectedEof.into())
                    }
                    r => r,
                };
            }
            st.incoming.extend_from_slice(&chunk[..n]);
        }
    }
}

impl<C, D> Write for &SharedTls<C>
where
    C: DerefMut<Target = ConnectionCommon<D>>,
    D: SideData,
{
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut wire = lock(&self.wire);
        // An earlier write's records first: until they are out, nothing new is
        // taken (so a failure here loses and repeats nothing).
        if !wire.is_empty() {
            self.send(&mut wire)?;
        }
        let n = lock(&self.state).conn.writer().write(buf)?;
        // The plaintext is taken: what the socket does not take now stays queued
        // for the next write or flush, which report the failure.
        let _ = self.send(&mut wire);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut wire = lock(&self.wire);
        self.send(&mut wire)
    }
}

impl<C, D> crate::blocking::Stream for &SharedTls<C>
where
    C: DerefMut<Target = ConnectionCommon<D>>,
    D: SideData,
{
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.sock.set_read_timeout(timeout)
    }
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.sock.set_write_timeout(timeout)
    }
    /// Sends `close_notify` (after anything still queued), then ends our
    /// direction of TCP.
    fn shutdown(&mut self) -> io::Result<()> {
        let mut wire = lock(&self.wire);
        lock(&self.state).conn.send_close_notify();
        let r = self.send(&mut wire);
        match self.sock.shutdown(std::net::Shutdown::Write) {
            Err(e) if e.kind() == io::ErrorKind::NotConnected => r,
            Err(e) => Err(e),
            Ok(()) => r,
        }
    }
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock.peer_addr()
    }
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }
}

macro_rules! split_tls {
    ($stream:ty, $conn:ty) => {
        impl crate::Conn<$stream> {
            /// Splits a `wss://` connection into a read half and a write half
            /// for two threads, as [`split`](crate::Conn::split) does for plain
            /// ones: the TLS state machine is shared ([`SharedTls`]) behind a
            /// lock held only to hand it bytes, never across a socket call, so
            /// the read half is never stuck behind a write blocked on a slow
            /// peer.
            pub fn split_tls(
                self,
            ) -> (
                crate::blocking::ReadHalf<SharedTls<$conn>>,
                crate::blocking::WriteHalf<SharedTls<$conn>>,
            ) {
                self.split_with(SharedTls::new)
            }
        }
    };
}

split_tls!(super::ClientStream, rustls::ClientConnection);
split_tls!(super::ServerStream, rustls::ServerConnection);

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    /// A handshaken client and server over loopback.
    fn pair() -> (SharedClientStream, super::super::ServerStream) {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let (cert, key) = (ck.cert.pem(), ck.signing_key.serialize_pem());
        let scfg = super::super::server_config(cert.as_bytes(), key.as_bytes()).unwrap();
        let ccfg =
            super::super::client_config(super::super::roots_from_pem(cert.as_bytes()).unwrap());
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            super::super::accept(s, &scfg, Some(Duration::from_secs(10))).unwrap()
        });
        let c = TcpStream::connect(addr).unwrap();
        let client =
            super::super::connect(c, "localhost", &ccfg, Some(Duration::from_secs(10))).unwrap();
        (SharedTls::new(client), server.join().unwrap())
    }

    #[test]
    fn a_reader_never_waits_for_a_writer_holding_the_socket() {
        let (client, mut server) = pair();
        let client = Arc::new(client);
        // Records are waiting in rustls (written, not yet sent) while a writer
        // holds the wire, as one blocked on a full socket does.
        lock(&client.state)
            .conn
            .writer()
            .write_all(b"queued")
            .unwrap();
        assert!(lock(&client.state).conn.wants_write());
        let holder = {
            let client = client.clone();
            std::thread::spawn(move || {
                let _wire = lock(&client.wire);
                std::thread::sleep(Duration::from_secs(2));
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        server.write_all(b"hello").unwrap();
        server.flush().unwrap();
        let t0 = Instant::now();
        let mut buf = [0u8; 16];
        let n = (&*client).read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello");
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "the read waited {:?} for the writer",
            t0.elapsed()
        );
        holder.join().unwrap();
        // Once the wire is free, the queued records go out with the next write.
        (&*client).write_all(b" and more").unwrap();
        let mut got = Vec::new();
        while got.len() < b"queued and more".len() {
            let n = server.read(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"queued and more");
    }
}
