//! The seam between the loop and rustls: the only file that talks to rustls'
//! connection API (today its unbuffered API, `UnbufferedServerConnection` /
//! `UnbufferedClientConnection` and their `process_tls_records` state machine). The
//! rest of the TLS driver (`mod.rs`) speaks in the terms below: process received
//! records into a [`Sink`], write application data, queue `close_notify`. A later
//! rustls whose connection API differs is adopted here alone.

use std::io;
use std::sync::Arc;

use rustls::client::UnbufferedClientConnection;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncryptError, InsufficientSizeError, WriteTraffic,
};

/// Largest write encrypted through the thread's scratch (larger ones go through the
/// connection's queue, so the scratch never holds more than this).
const SCRATCH_MAX: usize = 64 * 1024;

/// Tries to encode or encrypt into a buffer: the second has the size rustls asked
/// for.
const ENCODE_TRIES: usize = 2;

thread_local! {
    /// Records encrypted on this thread on their way to a socket.
    static OUT_SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// One TLS session, either side.
pub(crate) enum Session {
    Server(Box<UnbufferedServerConnection>),
    Client(Box<UnbufferedClientConnection>),
}

/// Runs `$body` with `$c` bound to the session of either side (the two have the same
/// API on different types).
macro_rules! either {
    ($s:expr, $c:ident => $body:expr) => {
        match $s {
            Session::Server($c) => $body,
            Session::Client($c) => $body,
        }
    };
}

/// What one round of record processing ended on.
pub(super) enum Stop {
    /// More ciphertext is needed.
    NeedInput,
    /// `close_notify` received.
    PeerClosed,
}

/// Where record processing puts what it produces.
pub(super) struct Sink<'a> {
    /// The caller's buffer for plaintext, and how much of it is filled.
    pub(super) buf: &'a mut [u8],
    pub(super) filled: usize,
    /// Plaintext beyond what `buf` took.
    pub(super) plain: &'a mut Vec<u8>,
    /// Records to send (handshake, alerts, early data once encrypted).
    pub(super) out: &'a mut Vec<u8>,
    /// Plaintext written before the handshake finished.
    pub(super) early: &'a mut Vec<u8>,
    /// Set once application data may be sent.
    pub(super) established: &'a mut bool,
    /// Set once the peer's `close_notify` arrived.
    pub(super) peer_closed: &'a mut bool,
}

/// Appends `n` zeroed bytes to `v` and returns where they start.
pub(super) fn grow(v: &mut Vec<u8>, n: usize) -> usize {
    let start = v.len();
    v.resize(start + n, 0);
    start
}

impl Session {
    /// A server session for an accepted socket.
    pub(crate) fn server(cfg: Arc<rustls::ServerConfig>) -> io::Result<Session> {
        let conn = UnbufferedServerConnection::new(cfg).map_err(io::Error::other)?;
        Ok(Session::Server(Box::new(conn)))
    }

    /// A client session for `host` (SNI and the certificate's name).
    pub(crate) fn client(cfg: Arc<rustls::ClientConfig>, host: &str) -> io::Result<Session> {
        let name = crate::tls::server_name(host)?;
        let conn = UnbufferedClientConnection::new(cfg, name)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(Session::Client(Box::new(conn)))
    }

    /// Processes every complete record in `incoming` into `sink`: plaintext, records
    /// to send, early plaintext encrypted once the handshake allows. Returns what
    /// stopped it and how many bytes of `incoming` were used (the rest is a partial
    /// record).
    pub(super) fn process(
        &mut self,
        incoming: &mut [u8],
        sink: &mut Sink<'_>,
    ) -> Result<(Stop, usize), rustls::Error> {
        let mut used = 0;
        // Bounded: each round consumes input, emits a record, or stops.
        loop {
            let mut stop = None;
            let mut error = None;
            let discard = either!(self, s => {
                let status = s.process_tls_records(&mut incoming[used..]);
                let mut discard = status.discard;
                match status.state {
                    Err(e) => error = Some(e),
                    Ok(ConnectionState::ReadTraffic(mut r)) => {
                        while let Some(rec) = r.next_record() {
                            match rec {
                                Ok(rec) => {
                                    discard += rec.discard;
                                    let room = sink.buf.len() - sink.filled;
                                    let n = rec.payload.len().min(room);
                                    sink.buf[sink.filled..sink.filled + n]
                                        .copy_from_slice(&rec.payload[..n]);
                                    sink.filled += n;
                                    sink.plain.extend_from_slice(&rec.payload[n..]);
                                }
                                Err(e) => {
                                    error = Some(e);
                                    break;
                                }
                            }
                        }
                    }
                    Ok(ConnectionState::EncodeTlsData(mut e)) => {
                        let out = &mut *sink.out;
                        let mut want = 1024;
                        // Bounded: the second try has the size rustls asked for.
                        for _ in 0..ENCODE_TRIES {
                            let start = grow(out, want);
                            match e.encode(&mut out[start..]) {
                                Ok(n) => {
                                    out.truncate(start + n);
                                    break;
                                }
                                Err(EncodeError::InsufficientSize(InsufficientSizeError {
                                    required_size,
                                })) => {
                                    out.truncate(start);
                                    want = required_size;
                                }
                                Err(_) => {
                                    out.truncate(start);
                                    break;
                                }
                            }
                        }
                    }
                    Ok(ConnectionState::TransmitTlsData(t)) => {
                        // `out` goes to the socket after this, in order.
                        t.done();
                    }
                    Ok(ConnectionState::WriteTraffic(mut w)) => {
                        *sink.established = true;
                        if !sink.early.is_empty() {
                            let data = std::mem::take(sink.early);
                            if let Err(e) = encrypt(&mut w, &data, sink.out) {
                                error = Some(e);
                            }
                        }
                        stop = Some(Stop::NeedInput);
                    }
                    Ok(ConnectionState::PeerClosed) | Ok(ConnectionState::Closed) => {
                        *sink.peer_closed = true;
                        stop = Some(Stop::PeerClosed);
                    }
                    // BlockedHandshake, and early data (not enabled: rustls refuses it).
                    Ok(_) => stop = Some(Stop::NeedInput),
                }
                discard
            });
            used += discard;
            if let Some(e) = error {
                return Err(e);
            }
            if let Some(stop) = stop {
                return Ok((stop, used));
            }
        }
    }

    /// Encrypts application data `buf`. While the session is not ready for it (a
    /// key update's handshake records first), `buf` waits in `early`. With `direct`
    /// (nothing queued ahead), a write of at most 64 KiB is encrypted into the
    /// thread's scratch and handed to `send`, which returns what the socket took;
    /// only the rest is appended to `out`. Otherwise the records go to `out`.
    pub(super) fn write(
        &mut self,
        incoming: &mut [u8],
        buf: &[u8],
        early: &mut Vec<u8>,
        out: &mut Vec<u8>,
        direct: bool,
        send: &mut dyn FnMut(&[u8]) -> usize,
    ) -> Result<(), rustls::Error> {
        either!(self, s => {
            match s.process_tls_records(incoming).state {
                Ok(ConnectionState::WriteTraffic(mut w)) if direct && buf.len() <= SCRATCH_MAX => {
                    OUT_SCRATCH.with(|cell| {
                        let mut scratch = cell.borrow_mut();
                        let n = encrypt_into(&mut w, buf, &mut scratch)?;
                        let sent = send(&scratch[..n]);
                        if sent < n {
                            out.extend_from_slice(&scratch[sent..n]);
                        }
                        Ok(())
                    })
                }
                Ok(ConnectionState::WriteTraffic(mut w)) => encrypt(&mut w, buf, out),
                Ok(_) => {
                    early.extend_from_slice(buf);
                    Ok(())
                }
                Err(e) => Err(e),
            }
        })
    }

    /// Queues `close_notify` into `out` (the handshake must be done).
    pub(super) fn close_notify(&mut self, incoming: &mut [u8], out: &mut Vec<u8>) {
        either!(self, s => {
            if let Ok(ConnectionState::WriteTraffic(mut w)) = s.process_tls_records(incoming).state {
                let start = grow(out, 64);
                match w.queue_close_notify(&mut out[start..]) {
                    Ok(n) => out.truncate(start + n),
                    Err(_) => out.truncate(start),
                }
            }
        });
    }
}

/// Encrypts `data` into `scratch` (kept at its size, grown when rustls asks for more);
/// returns the length of the records.
fn encrypt_into<D>(
    w: &mut WriteTraffic<'_, D>,
    data: &[u8],
    scratch: &mut Vec<u8>,
) -> Result<usize, rustls::Error> {
    let want = data.len() + (data.len() / 16384 + 1) * 64;
    if scratch.len() < want {
        scratch.resize(want, 0);
    }
    // Bounded: the second try has the size rustls asked for.
    for _ in 0..ENCODE_TRIES {
        match w.encrypt(data, &mut scratch[..]) {
            Ok(n) => return Ok(n),
            Err(EncryptError::InsufficientSize(InsufficientSizeError { required_size })) => {
                scratch.resize(required_size, 0);
            }
            Err(EncryptError::EncryptExhausted) => return Err(rustls::Error::EncryptError),
        }
    }
    Err(rustls::Error::General("TLS encryption: buffer size".into()))
}

/// Encrypts `data` into records appended to `out`.
fn encrypt<D>(
    w: &mut WriteTraffic<'_, D>,
    data: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), rustls::Error> {
    let mut want = data.len() + (data.len() / 16384 + 1) * 64;
    // Bounded: the second try has the size rustls asked for.
    for _ in 0..ENCODE_TRIES {
        let start = grow(out, want);
        match w.encrypt(data, &mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                return Ok(());
            }
            Err(EncryptError::InsufficientSize(InsufficientSizeError { required_size })) => {
                out.truncate(start);
                want = required_size;
            }
            Err(EncryptError::EncryptExhausted) => {
                out.truncate(start);
                return Err(rustls::Error::EncryptError);
            }
        }
    }
    Err(rustls::Error::General("TLS encryption: buffer size".into()))
}
