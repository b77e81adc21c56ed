//! The Autobahn test server: a plain echo of every text and binary message.
//!
//! * default: the event loop (`Server`, one worker), whole-message echo;
//! * `--blocking`: the blocking API, each message streamed `next_reader` → `io::copy`
//!   → `next_writer`, so Autobahn judges the streaming API; the read half and the
//!   write half of each connection run on two threads joined by a pipe.
//!
//! Limits admit the suite's 16 MiB messages and 65,536-fragment messages.
//!
//! `--deflate` (build with `--features deflate`) accepts permessage-deflate. Every
//! message is then compressed, even small ones: kosoku 0.1.0 errors on cases
//! 13.{2,5,6,7}.{1,2,3} when a server that negotiated server_no_context_takeover
//! sends a small echo uncompressed (which RFC 7692 allows); see autobahn/README.md.
//!
//! ```text
//! cargo run --release --example autobahn_server -- --addr 127.0.0.1:9001 [--blocking]
//! ```

mod common;

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;

use silverback::event::{Ctx, Handler, MessageRef, Server};
use silverback::{Error, MessageKind, Upgrader};

const MAX_MESSAGE: u64 = 64 << 20;

struct Echo;

impl Handler for Echo {
    type Data = ();
    fn on_message(&mut self, ctx: &mut Ctx<'_, ()>, msg: MessageRef<'_>) {
        let _ = ctx.send(msg.kind, msg.data);
    }
}

/// What the reading thread hands the writing thread: message boundaries and bytes.
enum Piece {
    Start(MessageKind),
    Data(Vec<u8>),
    End,
}

/// The reading thread's end of the pipe: an `io::Write` that forwards each write.
struct PipeWriter(mpsc::Sender<Piece>);

impl Write for PipeWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .send(Piece::Data(buf.to_vec()))
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The writing thread's end: an `io::Read` over one message's pieces.
struct PipeReader<'a> {
    rx: &'a mpsc::Receiver<Piece>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for PipeReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(Piece::Data(d)) => {
                    self.cur = d;
                    self.pos = 0;
                }
                Ok(Piece::End) => return Ok(0),
                Ok(Piece::Start(_)) | Err(_) => {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Streams every message back on two threads: within a message the read half keeps
/// reading while the write half may block on a peer that does not read while it
/// sends (kosoku sends a 16 MiB frame without reading; a same-thread streaming echo
/// would deadlock). Between messages the reader waits for the writer to finish the
/// echo, so an echo is never overtaken by the close that a later bad frame causes.
fn serve_blocking(conn: silverback::Conn<TcpStream>) {
    let (mut rd, mut wr) = conn.split();
    let (tx, rx) = mpsc::channel::<Piece>();
    let (ack_tx, ack_rx) = mpsc::channel::<()>();
    let writer = thread::spawn(move || -> Result<(), Error> {
        while let Ok(Piece::Start(kind)) = rx.recv() {
            let mut w = wr.next_writer(kind)?;
            let mut r = PipeReader {
                rx: &rx,
                cur: Vec::new(),
                pos: 0,
            };
            io::copy(&mut r, &mut w)?;
            w.close()?;
            let _ = ack_tx.send(());
        }
        Ok(())
    });
    loop {
        let r = (|| -> Result<(), Error> {
            let mut reader = rd.next_reader()?;
            let _ = tx.send(Piece::Start(reader.kind()));
            io::copy(&mut reader, &mut PipeWriter(tx.clone()))?;
            let _ = tx.send(Piece::End);
            Ok(())
        })();
        if r.is_err() || ack_rx.recv().is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer.join();
}

/// Over TLS the connection cannot be split (rustls' stream is one state machine),
/// so each message is read whole and echoed whole: no deadlock with a peer that
/// sends 16 MiB without reading, at the cost of holding the message.
#[cfg(feature = "tls")]
fn serve_blocking_whole<S: silverback::blocking::Stream>(mut conn: silverback::Conn<S>) {
    while let Ok(m) = conn.read_message() {
        if conn.write_message(m.kind(), m.as_bytes()).is_err() {
            break;
        }
    }
}

fn blocking(addr: &str) -> io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    println!(
        "autobahn echo (blocking, streaming) on ws://{}",
        listener.local_addr()?
    );
    #[allow(unused_mut)]
    let mut upgrader = Upgrader::new()
        .max_message_size(MAX_MESSAGE)
        .read_buffer_size(64 * 1024)
        .write_buffer_size(64 * 1024);
    if common::deflate_requested() {
        #[cfg(feature = "deflate")]
        {
            upgrader = upgrader.deflate(common::autobahn_deflate_config());
        }
    }
    let tls = common::server_tls();
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let _ = stream.set_nodelay(true);
        let upgrader = upgrader.clone();
        #[cfg(feature = "tls")]
        if let Some(cfg) = tls.clone() {
            thread::spawn(move || {
                let timeout = Some(std::time::Duration::from_secs(10));
                if let Ok(s) = silverback::tls::accept(stream, &cfg, timeout)
                    && let Ok(conn) = upgrader.upgrade(s)
                {
                    serve_blocking_whole(conn);
                }
            });
            continue;
        }
        let _ = &tls;
        thread::spawn(move || {
            if let Ok(conn) = upgrader.upgrade(stream) {
                serve_blocking(conn);
            }
        });
    }
    Ok(())
}

fn main() -> io::Result<()> {
    common::usage(
        "autobahn_server --addr HOST:PORT [--blocking] [--deflate [--deflate-min N] [--deflate-mode MODE]] \
         [--tls-cert FILE --tls-key FILE | --tls-self-signed]",
    );
    let addr = common::addr("127.0.0.1:9001");
    if common::flag("--blocking") {
        return blocking(&addr);
    }
    #[allow(unused_mut)]
    let mut builder = Server::builder();
    if common::deflate_requested() {
        #[cfg(feature = "deflate")]
        {
            builder = builder.deflate(common::autobahn_deflate_config());
        }
    }
    let tls = common::server_tls();
    #[cfg(feature = "tls")]
    if let Some(cfg) = &tls {
        builder = builder.tls(cfg.clone());
    }
    let _ = &tls;
    let server = builder
        .addr(addr)
        .max_message_size(MAX_MESSAGE)
        .max_output_buffer(64 << 20)
        .check_origin(|_| true)
        .build(|_| Echo)?;
    println!("autobahn echo (event loop) on ws://{}", server.local_addr());
    server.run()
}
